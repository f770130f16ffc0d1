//! # `vhd-format`: the VHD virtual hard disk format
//!
//! VHD (Microsoft Virtual Hard Disk Image Format Specification 1.0) is the disk image format of
//! Hyper-V, Virtual PC, Virtual Server, Azure and Xen: a 512-byte big-endian footer, and for sparse
//! disks a dynamic header, a block allocation table, per-block sector bitmaps and, for differencing
//! disks, parent locators.
//!
//! ## Status
//!
//! Nothing is implemented yet: the definitions, the I/O layer and every Edit Disk operation arrive
//! with the VHD issue.
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

