//! # `vmbus-ring`: VMBus rings, packets, GPADLs and channel management
//!
//! VMBus is the Hyper-V inter-partition bus: a pair of ring buffers per channel in memory shared
//! by guest and host, described by a GPADL (a list of guest page frame numbers), a control protocol
//! carried in SynIC messages (version negotiation, offers, open/close, GPADL setup and teardown,
//! rescind, unload), and the integration services (heartbeat, shutdown, time synchronization,
//! key/value pair exchange) layered on in-band packets.
//!
//! The host side of VMBus is a security boundary: the guest may rewrite the ring at any moment and lie
//! about every index and length. This crate is written for that threat model.
//!
//! ## Status
//!
//! Nothing is implemented yet. The ring buffers, packet formats and GPADL transfer arrive with the
//! ring issue; the channel-management protocol and integration services with the protocol issue.
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | heap-backed conveniences; needs only `core` + `alloc` |
//! | `std` | yes | operating-system conveniences (files, `std::error::Error`); implies `alloc` |
//!
//! With `default-features = false` the crate is `#![no_std]` and needs only `core`.

#![cfg_attr(not(feature = "std"), no_std)]
