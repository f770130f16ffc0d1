//! `merge`: write a differencing child's data into its parent.
//!
//! Merging a child *and its parents into a new disk* is [`convert_to_vhd`](super::convert_to_vhd)
//! of the child: a chain reads as one disk.

use alloc::vec;
use alloc::vec::Vec;

use super::{stop_at, Progress, BLOCK_CHUNK};
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
    /// The parent is smaller than the child, so the child's data beyond the parent's end
    /// would have nowhere to go. Nothing was written: expand the parent to the child's size
    /// first (see [`expand`](super::expand)), then merge.
    #[error(
        "the parent ({parent} bytes) is smaller than the child ({child} bytes); \
         expand the parent to the child's size first"
    )]
    ParentTooSmall {
        /// The child's virtual size.
        child: u64,
        /// The parent's virtual size.
        parent: u64,
    },
    /// Writing the parent failed (it must have been opened writable).
    #[error("writing the parent failed")]
    Parent(#[source] DiskError),
    /// Reading the child failed.
    #[error("reading the child failed")]
    Io(#[from] IoError),
    /// The [`Progress`] callback asked to stop. The child is untouched and reads as before;
    /// the parent holds the child's data for the blocks merged so far (it was flushed), so it
    /// no longer reads as it did on its own. Run the merge again to finish it.
    #[error("the merge was cancelled")]
    Cancelled,
}

/// Writes every sector present in the differencing disk `child` into its parent, which must
/// have been opened writable (see [`Vhd::open_with_parent`]). Afterwards the parent alone reads
/// as the child did, and the child is redundant (delete it; any other child of the parent is
/// now invalid, as with Hyper-V's merge).
///
/// The parent must be at least as large as the child (a child may be larger than its parent,
/// which then reads as zeros beyond its end): otherwise [`MergeError::ParentTooSmall`] is
/// returned before anything is written, and the parent must be expanded first.
///
/// Returns the number of bytes merged. Safe to re-run after an interruption: it only copies.
/// `progress` sees each block (phase `"merge"`) and may cancel before any of them: see
/// [`MergeError::Cancelled`].
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
    let psize = parent.size();
    if child.size > psize {
        return Err(MergeError::ParentTooSmall {
            child: child.size,
            parent: psize,
        });
    }
    let bs = u64::from(sparse.block_size);
    let bitmap_len = sparse.bitmap_bytes as usize;
    // Allocated at the first allocated block, whose span open has bounded by the file length;
    // the data goes through a bounded chunk, whatever the header's block size says.
    let mut bitmap = Vec::new();
    let mut data = vec![0u8; bs.min(BLOCK_CHUNK) as usize];
    let total = sparse.bat.len() as u64;
    let mut merged = 0;
    for (block, &entry) in sparse.bat.iter().enumerate() {
        if stop_at(progress, "merge", block as u64 + 1, total) {
            parent.flush().map_err(MergeError::Parent)?;
            return Err(MergeError::Cancelled);
        }
        if entry == BAT_UNALLOCATED {
            continue;
        }
        let file = u64::from(entry) * SECTOR_SIZE;
        let start = block as u64 * bs;
        let len = bs.min(child.size.saturating_sub(start));
        if len == 0 {
            continue;
        }
        bitmap.resize(bitmap_len, 0);
        child.storage.read_at(file, &mut bitmap)?;
        let bits = SectorBitmap(&bitmap);
        let sectors = len.div_ceil(SECTOR_SIZE) as usize;
        let mut k = 0;
        while k < sectors {
            let (present, run) = bits.run(k, sectors - k);
            if present {
                let first = k as u64 * SECTOR_SIZE;
                let end = (first + run as u64 * SECTOR_SIZE).min(len);
                let mut off = first;
                while off < end {
                    let n = (end - off).min(data.len() as u64) as usize;
                    child
                        .storage
                        .read_at(file + bitmap_len as u64 + off, &mut data[..n])?;
                    parent
                        .write_at(start + off, &data[..n])
                        .map_err(MergeError::Parent)?;
                    off += n as u64;
                }
                merged += end - first;
            }
            k += run;
        }
    }
    parent.flush().map_err(MergeError::Parent)?;
    Ok(merged)
}
