//! # `vhd-format`: the VHD virtual hard disk format
//!
//! VHD is the disk image format of Hyper-V, Virtual PC, Virtual Server, Azure, Xen and
//! disk2vhd, defined by Microsoft's *Virtual Hard Disk Image Format Specification* 1.0
//! (October 2006). This crate reads and writes all three disk types and implements every
//! operation of Hyper-V's Edit Disk wizard — in `no_std` where it can, over any storage.
//!
//! ```text
//!  fixed          [ data ........................................ ][footer]
//!  dynamic        [footer copy][dynamic header][BAT][ block ][ block ] … [footer]
//!  differencing   same as dynamic + parent id/name + parent locators    │
//!                 block = [sector bitmap, MSB first][data: block_size]  │
//!                 a clear bitmap bit means "read the parent" ───────────┘
//! ```
//!
//! ## Layers
//!
//! | module | what | needs |
//! |---|---|---|
//! | [`defs`] | zerocopy layouts with big-endian field types and pinned sizes ([`defs::Footer`], [`defs::DynamicHeader`], [`defs::ParentLocatorEntry`]), checksums, the spec's CHS algorithm ([`defs::Geometry`]), timestamps, creator codes, UUIDs, sector bitmaps | `core` |
//! | [`io`] | the positional-I/O seam [`Storage`] (`read_at`/`write_at`/`len`/`set_len`/`flush`), [`MemStorage`] and `std::fs::File` or `&File` (pread/pwrite: no seek races) | `core` (+`alloc`/`std` for the impls) |
//! | [`Vhd`], [`Disk`] | open any VHD, read and write by byte offset or sector; a differencing disk owns its parent as a `Box<dyn` [`ParentDisk`]`>`, so a chain of any depth reads as one disk; `Vhd<S>` is `Send + Sync` when `S` is | `alloc` |
//! | [`create_fixed`], [`create_dynamic`], [`create_differencing`] | new disks that qemu, libvhdi, VirtualBox and Hyper-V accept | `alloc` |
//! | [`ops`] | [`inspect`][Vhd::inspect], [`check`][ops::check], [`repair`][ops::repair], [`compact`][ops::compact], [`convert`][ops::convert_to_vhd], [`expand`][ops::expand], [`merge`][ops::merge_into_parent], with progress callbacks that can cancel | `alloc` |
//! | [`Vhd::open_path`], [`snapshot`][crate::snapshot()] | parent resolution on the file system under a [`ParentPolicy`]; one-call snapshots | `std` |
//!
//! ## Example
//!
//! ```
//! use vhd_format::defs::Uuid;
//! use vhd_format::ops::{self, NoProgress, Target};
//! use vhd_format::{create_differencing, create_dynamic, CreateOptions, Disk, MemStorage, ParentLink};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A 64 MiB dynamic disk in memory (any `Storage` works: a `std::fs::File`, your own). With
//! // `std` a random unique id is made up when none is given; without, pass one.
//! let options = |id: u8| CreateOptions::new(64 << 20).unique_id(Uuid([id; 16]));
//! let mut base = create_dynamic(MemStorage::new(), &options(1))?;
//! base.write_at(1 << 20, b"hello from the base disk")?;
//!
//! // A snapshot: a differencing child over it. Writes go to the child only.
//! let id = base.identity().expect("a VHD has an identity");
//! let link = ParentLink {
//!     unique_id: id.unique_id,
//!     timestamp: id.timestamp,
//!     name: "base.vhd".into(),
//!     relative_path: Some(".\\base.vhd".into()),
//!     absolute_path: None,
//! };
//! let mut child = create_differencing(MemStorage::new(), Box::new(base), &link, &options(2))?;
//! child.write_at((1 << 20) + 11, b"child")?;
//!
//! let mut buf = [0u8; 24];
//! child.read_at(1 << 20, &mut buf)?;
//! assert_eq!(&buf[..16], b"hello from child");
//!
//! // Inspect, check, then flatten the chain into a new fixed disk.
//! let info = child.inspect()?;
//! assert_eq!(info.allocated_blocks, 1);
//! assert!(ops::check(child.storage())?.is_clean());
//! let flat = ops::convert_to_vhd(&child, MemStorage::new(), Target::Fixed, &options(3), &mut NoProgress)?;
//! let mut again = [0u8; 24];
//! flat.read_at(1 << 20, &mut again)?;
//! assert_eq!(again, buf);
//! # Ok(())
//! # }
//! ```
//!
//! ## Rules this crate gets right (and peers do not)
//!
//! - **Differencing disks are read with their parent.** qemu opens a differencing VHD as a
//!   standalone dynamic disk and silently loses the parent's data; libvhdi 20210425 treats
//!   sub-byte bitmap runs wrongly. Here bitmaps are exact per sector, MSB first.
//! - **Zeros written into a child still allocate when an ancestor has data** (the shortcut
//!   "zeros need no block" is only valid when nothing below has data: [`Disk::is_unallocated`]).
//! - **Partial-sector writes** into sectors a child does not hold yet read the parent's
//!   sector first (read-modify-write), so a sector is only ever marked present whole.
//! - **Size** comes from `current_size` ([`SizePolicy::CurrentSize`]); the CHS size and qemu's
//!   per-creator rule are explicit options ([`SizePolicy::Chs`], [`SizePolicy::Qemu`]).
//! - **Writers** emit a real geometry, creator `win `, host `Wi2k`, all-ones unused offsets,
//!   a footer copy at 0, exactly `ceil(size / block)` BAT entries, W2ku + W2ru locators
//!   (UTF-16LE, byte-count data space) and the UTF-16BE parent name.
//! - **Parents are resolved the robust way** — `W2ru` relative to the child's directory, then
//!   `W2ku`, then the unicode name beside the child — never outside the caller's
//!   [`ParentPolicy`], with the unique id verified and a timestamp mismatch only a [`Warning`].
//!
//! ## Crash consistency
//!
//! A block allocation writes the bitmap and data, sets the file length, flushes (unless
//! [`OpenOptions::barriers`] is off), writes the BAT entry, then the footer at the new end. A
//! file cut at any point opens (from the footer copy at offset 0 if the tail was lost, with
//! [`Warning::TailFooterInvalid`]), every write flushed before the cut reads back, and
//! [`ops::repair`] restores the tail footer and cuts unreferenced bytes.
//!
//! ## Hostile input
//!
//! Every field read from a file is untrusted: sizes are checked against the file length before
//! anything is allocated in proportion to them, BAT entries must lie inside the data area and
//! outside the metadata, locator payloads are bounded, and no input can make an operation
//! panic or touch bytes outside the file. A cargo-fuzz package lives in `fuzz/`; checksum
//! checks are bypassed under `cfg(fuzzing)` so the fuzzer reaches the deeper layers.
//!
//! ## Not supported
//!
//! - VHDX (a different format; only VHD v1 is implemented).
//! - Opening a differencing disk without any parent (reads would be meaningless); use
//!   [`Vhd::probe`] to look at its headers, or [`ops::check`].
//! - Compacting or expanding a disk with the saved-state flag set (refused, per the spec).
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | the I/O layer, creation and every operation |
//! | `std` | yes | `std::fs::File` storage, parent resolution, `snapshot` (errors implement `core::error::Error` in every build) |
//!
//! With `default-features = false` only [`defs`] and the [`Storage`] trait remain: `core` only.
//!
#![cfg_attr(
    not(feature = "alloc"),
    doc = r"
[`MemStorage`]: #features
[`Vhd`]: #features
[`Disk`]: #features
[`ParentDisk`]: #features
[`create_fixed`]: #features
[`create_dynamic`]: #features
[`create_differencing`]: #features
[`ops`]: #features
[Vhd::inspect]: #features
[ops::check]: #features
[ops::repair]: #features
[ops::compact]: #features
[ops::convert_to_vhd]: #features
[ops::expand]: #features
[ops::merge_into_parent]: #features
[`Disk::is_unallocated`]: #features
[`SizePolicy::CurrentSize`]: #features
[`SizePolicy::Chs`]: #features
[`SizePolicy::Qemu`]: #features
[`Warning`]: #features
[`OpenOptions::barriers`]: #features
[`Warning::TailFooterInvalid`]: #features
[`ops::repair`]: #features
[`Vhd::probe`]: #features
[`ops::check`]: #features
"
)]
#![cfg_attr(
    not(feature = "std"),
    doc = r"
[`Vhd::open_path`]: #features
[crate::snapshot()]: #features
[`ParentPolicy`]: #features
"
)]
#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc --all-features`) marks items
// that need a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

/// The `zerocopy` version whose types (`U16`, `U32`, `U64`, `FromBytes`, `IntoBytes`) appear in
/// this crate's on-disk layouts: use it to read and write them without a matching dependency
/// (`Footer::read_from_bytes`, say).
pub use zerocopy;

pub mod defs;
pub mod io;

#[cfg(all(doctest, feature = "alloc"))]
mod doctests;

#[cfg(feature = "alloc")]
mod create;
#[cfg(feature = "alloc")]
mod disk;
#[cfg(feature = "alloc")]
pub mod ops;
#[cfg(feature = "alloc")]
mod parent;
#[cfg(feature = "std")]
mod snapshot;
#[cfg(feature = "alloc")]
mod vhd;

#[cfg(feature = "alloc")]
pub use create::{
    create_differencing, create_dynamic, create_fixed, CreateError, CreateOptions, ParentLink,
};
#[cfg(feature = "alloc")]
pub use disk::{Disk, DiskError, DiskIdentity, ParentDisk, RawDisk};
#[cfg(feature = "alloc")]
pub use io::MemStorage;
pub use io::{IoError, Storage};
#[cfg(feature = "alloc")]
pub use parent::Locator;
#[cfg(feature = "std")]
pub use parent::{ParentError, ParentPolicy};
#[cfg(feature = "std")]
pub use snapshot::{parent_link, snapshot, SnapshotError};
#[cfg(feature = "alloc")]
pub use vhd::{BatProblem, OpenError, OpenOptions, SizePolicy, StructureProblem, Vhd, Warning};

/// A random (v4) unique id from the standard library's per-process random hasher keys.
#[cfg(feature = "std")]
pub fn random_uuid() -> defs::Uuid {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_exact_mut(8).enumerate() {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(nanos);
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_usize(i);
        h.write_u32(std::process::id());
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    defs::Uuid::from_random_bytes(bytes)
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
