//! `merge`: write a differencing child's data into its parent.
//!
//! Merging a child *and its parents into a new disk* is [`convert_to_vhd`](super::convert_to_vhd)
//! of the child: a chain reads as one disk.

use alloc::vec;

use super::{Progress, ProgressEvent};
use crate::defs::{DiskType, SectorBitmap, BAT_UNALLOCATED, SECTOR_SIZE};
use crate::disk::DiskError;
use crate::io::{IoError, Storage};
use crate::vhd::{Layout, Vhd};

/// Why a merge failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// Only differencing disks have a parent to merge into.
    #[error("only a differencing disk can be merged into its parent")]
    NotDifferencing,
    /// Writing the parent failed (it must have been opened writable).
    #[error("writing the parent failed")]
    Parent(#[source] DiskError),
    /// Reading the child failed.
    #[error("reading the child failed")]
    Io(#[from] IoError),
}

/// Writes every sector present in the differencing disk `child` into its parent, which must
/// have been opened writable (see [`Vhd::open_with_parent`]). Afterwards the parent alone reads
/// as the child did, and the child is redundant (delete it; any other child of the parent is
/// now invalid, as with Hyper-V's merge).
///
/// Returns the number of bytes merged. Safe to re-run after an interruption: it only copies.
pub fn merge_into_parent<S: Storage>(
    child: &mut Vhd<S>,
    progress: &mut dyn Progress,
) -> Result<u64, MergeError> {
    if child.disk_type() != DiskType::DIFFERENCING {
        return Err(MergeError::NotDifferencing);
    }
    let Layout::Sparse(sparse) = &child.layout else {
        return Err(MergeError::NotDifferencing);
    };
    let parent = child.parent.as_mut().ok_or(MergeError::NotDifferencing)?;
    let bs = u64::from(sparse.block_size);
    let bitmap_len = sparse.bitmap_bytes as usize;
    let mut bitmap = vec![0u8; bitmap_len];
    let mut data = vec![0u8; bs as usize];
    let total = sparse.bat.len() as u64;
    let psize = parent.size();
    let mut merged = 0;
    for (block, &entry) in sparse.bat.iter().enumerate() {
        progress.report(ProgressEvent {
            phase: "merge",
            done: block as u64 + 1,
            total,
        });
        if entry == BAT_UNALLOCATED {
            continue;
        }
        let file = u64::from(entry) * SECTOR_SIZE;
        let start = block as u64 * bs;
        let len = bs.min(child.size.min(psize).saturating_sub(start));
        if len == 0 {
            continue;
        }
        child.storage.read_at(file, &mut bitmap)?;
        let bits = SectorBitmap(&bitmap);
        let sectors = len.div_ceil(SECTOR_SIZE) as usize;
        let mut k = 0;
        while k < sectors {
            let (present, run) = bits.run(k, sectors - k);
            if present {
                let off = k as u64 * SECTOR_SIZE;
                let n = (run as u64 * SECTOR_SIZE).min(len - off) as usize;
                child
                    .storage
                    .read_at(file + bitmap_len as u64 + off, &mut data[..n])?;
                parent
                    .write_at(start + off, &data[..n])
                    .map_err(MergeError::Parent)?;
                merged += n as u64;
            }
            k += run;
        }
    }
    parent.flush().map_err(MergeError::Parent)?;
    Ok(merged)
}
