//! # `wim-image`: the Windows Imaging (WIM) format
//!
//! WIM is the file-based disk image format Windows setup and deployment tools use: a header, a
//! resource table of single-instance-stored streams (uncompressed, XPRESS, LZX or LZMS, solid or
//! not), per-image metadata resources holding directory trees with security descriptors and
//! alternate data streams, an integrity table and an XML description. This crate reads, verifies,
//! applies, captures, appends and exports WIM images.
//!
//! ## Layers
//!
//! ```text
//!  defs (layouts, flags, open enums)   header   resource (chunk tables, solid headers)
//!  blob_table   integrity   metadata + dentry (security data, tree)   xml   reparse
//!        ── pure decoding of bytes, no I/O; `alloc` except defs/header ──
//!  io::ReadAt ─► wim::Wim (open one file, a split set, a pipable WIM)
//!             ─► read::BlobReader (random access by chunk, cached chunks)  ─► verify
//!             ─► apply (std on Unix: files, links, symlinks, times, UNIX data; threads)
//!  codec (XPRESS, LZX, LZMS chunk decompressors and compressors)
//! ```
//!
//! ## Example
//!
//! ```no_run
//! # #[cfg(feature = "std")] {
//! use wim_image::{FileSource, Wim};
//! let wim = Wim::open(FileSource::open("install.wim").unwrap()).unwrap();
//! for i in 1..=wim.image_count() {
//!     println!("{i}: {:?}", wim.xml().image(i).and_then(|x| x.name()));
//! }
//! let tree = wim.image(1).unwrap();
//! let file = tree.lookup("/Windows/notepad.exe").unwrap();
//! let hash = tree.get(file).and_then(|n| n.dentry.data).unwrap();
//! let blob = wim.blob(&hash).unwrap();
//! let mut head = [0u8; 2];
//! wim.reader().read_at(blob, 0, &mut head).unwrap();
//! assert_eq!(&head, b"MZ");
//! # }
//! ```
//!
//! ## Status
//!
//! Reading, listing, verifying and applying (to a Linux directory) every WIM wimlib and
//! Microsoft's tools write: uncompressed, XPRESS, LZX, LZMS, solid (ESD), split (`.swm`) and
//! pipable. Writing ([`write`](mod@write)): capture of a Linux directory tree, in-place append,
//! export, delete (as a rebuild, or in place), and update (add, replace, delete and rename
//! paths of an image, committed in place), optimize (a rebuild without holes, optionally
//! recompressed) and split into `.swm` parts; uncompressed, XPRESS, LZX or LZMS, and solid
//! output (LZMS or any other codec in solid resources, version 0xE00), with integrity tables.
//!
//! ## File names
//!
//! Names in a WIM are UTF-16, as on NTFS, and like NTFS names they may hold unpaired
//! surrogates. A [`Dentry`](dentry::Dentry) keeps its long name as a `String`; when the stored
//! name is not valid Unicode, that string is the lossy form (U+FFFD for each unpaired
//! surrogate) and [`Dentry::name_utf16`](dentry::Dentry::name_utf16) holds the exact units.
//! Export, append and update write the exact units back; apply on Linux creates the file
//! with the [WTF-8](wtf8) bytes of the units, and capture reads a Linux name that is
//! well-formed WTF-8 back into them, as wimlib does. [`Tree::lookup`] compares the lossy
//! strings; [`Tree::lookup_wtf8`], extraction by path and update paths
//! ([`ImagePath`](write::update::ImagePath)) take WTF-8 and reach every name exactly. Short
//! names and named-stream names must be valid UTF-16 (an image holding one that is not is
//! refused).
//!
//! ## Memory
//!
//! Sizes read from a file are checked against what can be genuine before anything is
//! allocated for them, and every buffer sized by a file or a caller (tables, chunks,
//! metadata, compressor state) is reserved fallibly: a size the system cannot provide is an
//! error of the operation (an `OutOfMemory` variant carrying an [`AllocError`]), never an
//! abort (see [`mem`]). Work whose memory grows with its thread count (a compressor per
//! writer thread, up to 9 GiB each for 1 GiB LZMS chunks; chunk buffers per decoder thread)
//! uses fewer threads when they would not fit in the available memory
//! ([`mem::ThreadCount`], [`WriteOptions::memory_limit`]).
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | (none) | | [`codec`] (every compressor and decompressor), [`defs`], [`header`], the [`ReadAt`] seam |
//! | `alloc` | via `std` | everything over a [`ReadAt`] and a [`WriteAt`](write::WriteAt) of the caller's: open, list, read, [`verify`](Wim::verify), build images in memory, write, append, update, export, optimize, split; needs only `core` + `alloc` |
//! | `std` | yes | files ([`FileSource`], `WriteAt` for `std::fs::File`) on every platform, threads for compression and decoding, the system clock and a GUID for new WIMs; on Unix also [`apply`] to a directory and [`capture`](write::capture) of one (and update from one): ownership, modes, links, device nodes; implies `alloc` |
//!
//! The error types implement `core::error::Error` in every build. Without `std`, a new WIM's
//! GUID and timestamp come from the caller ([`WriteOptions::guid`]). With
//! `default-features = false` the crate is `#![no_std]` and needs only `core`. On Windows the
//! default build reads, verifies, writes, appends, exports and splits WIMs (files included);
//! apply and capture, which restore and read Unix metadata, are Unix-only.

#![cfg_attr(not(feature = "std"), no_std)]
// Items behind `alloc` or `std` that the crate docs name are missing from the smaller builds.
#![cfg_attr(
    not(all(feature = "std", unix)),
    allow(rustdoc::broken_intra_doc_links)
)]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc --all-features`) marks items
// that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(all(feature = "std", unix))]
pub mod apply;
pub mod codec;
pub mod defs;
pub mod header;
pub mod io;

#[cfg(feature = "alloc")]
pub mod blob_table;
#[cfg(feature = "alloc")]
pub mod dentry;
#[cfg(feature = "alloc")]
pub mod integrity;
#[cfg(feature = "alloc")]
pub mod mem;
#[cfg(feature = "alloc")]
pub mod metadata;
#[cfg(feature = "alloc")]
pub mod read;
#[cfg(feature = "alloc")]
pub mod reparse;
#[cfg(feature = "alloc")]
pub mod resource;
#[cfg(feature = "alloc")]
pub mod verify;
#[cfg(feature = "alloc")]
pub mod wim;
#[cfg(feature = "alloc")]
pub mod write;
#[cfg(feature = "alloc")]
pub mod wtf8;
#[cfg(feature = "alloc")]
pub mod xml;

/// The `zerocopy` version whose types (`U16`, `U32`, `U64`, `FromBytes`, `IntoBytes`) appear
/// in this crate's on-disk layouts ([`defs`]): use it to read and write them without a
/// matching dependency.
pub use zerocopy;

#[cfg(feature = "alloc")]
pub use blob_table::{Blob, BlobTable, Sha1Hash};
#[cfg(feature = "std")]
pub use io::FileSource;
pub use io::{IoError, ReadAt};
#[cfg(feature = "alloc")]
pub use mem::AllocError;
#[cfg(feature = "alloc")]
pub use metadata::{NodeId, Tree};
#[cfg(feature = "alloc")]
pub use read::{BlobReader, ReadError};
#[cfg(feature = "alloc")]
pub use wim::{ImageError, OpenError, Wim};
#[cfg(feature = "alloc")]
pub use write::{WimWriter, WriteError, WriteOptions};

#[cfg(all(test, feature = "alloc"))]
mod error_chain_tests;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
