//! # `vswitch-core`: an 802.1D/802.1Q learning switch
//!
//! A virtual switch core in the style of the Hyper-V virtual switch: IEEE 802.1D MAC learning and
//! forwarding with ageing, IEEE 802.1Q VLAN tagging (access and trunk ports), and Hyper-V port
//! features such as MAC spoofing protection, DHCP guard, router guard and port ACLs. It moves
//! frames between ports it does not own: the caller supplies the frames and delivers the output.
//!
//! ## Status
//!
//! Nothing is implemented yet. The bridge, VLANs and port features arrive with the switch issue.
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
