//! # `wim-image`: the Windows Imaging (WIM) format
//!
//! WIM is the file-based disk image format Windows setup and deployment tools use: a header, a
//! resource table of single-instance-stored streams (uncompressed, XPRESS, LZX or LZMS, solid or
//! not), per-image metadata resources holding directory trees with security descriptors and
//! alternate data streams, an integrity table and an XML description. This crate reads, verifies,
//! applies, captures, appends and exports WIM images.
//!
//! ## Status
//!
//! Nothing is implemented yet. Reading, verifying and applying arrive with the first WIM issue;
//! capture, append, export and optimize with the second.
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

pub mod codec;
