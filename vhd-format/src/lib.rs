//! # `vhd-format`: the VHD virtual hard disk format
//!
//! (crate docs are written in `docs.md` at the end of this issue)

#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod defs;
pub mod io;

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
pub use create::{create_differencing, create_dynamic, create_fixed, CreateError, CreateOptions, ParentLink};
#[cfg(feature = "alloc")]
pub use disk::{Disk, DiskError, DiskIdentity, RawDisk};
pub use io::{IoError, Storage};
#[cfg(feature = "alloc")]
pub use io::MemStorage;
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
