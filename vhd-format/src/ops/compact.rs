//! `compact`: drop blocks that hold nothing (or that the caller says are unused) and close the
//! holes, shrinking the file.
//!
//! Runs in place. Every step keeps the image consistent for a reader that opens it after a
//! cut: a dropped block is first unhooked from the BAT; a moved block is copied to its new
//! place, flushed, and only then re-pointed in the BAT (a move onto its own old location goes
//! through a spare copy at the end of the file first); the footer is written at the new end
//! before the file is cut.

use alloc::vec;
use alloc::vec::Vec;

use zerocopy::IntoBytes;

use super::convert::is_zero;
use super::{Progress, ProgressEvent};
use crate::defs::{DiskType, SectorBitmap, BAT_UNALLOCATED, SECTOR_SIZE};
use crate::disk::DiskError;
use crate::io::{IoError, Storage};
use crate::vhd::{Layout, Vhd, BLOCK_UNKNOWN};

/// Why compaction was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The saved-state flag is set: the spec forbids compacting such a disk.
    #[error("the disk is in a saved state; compacting it is not allowed")]
    SavedState,
    /// Only dynamic and differencing disks can be compacted.
    #[error("only dynamic and differencing disks can be compacted (this one is fixed)")]
    NotSparse,
    /// The disk was opened read-only.
    #[error("the disk is read-only")]
    ReadOnly,
    /// Reading the disk failed.
    #[error("reading the disk failed")]
    Disk(#[from] DiskError),
    /// The storage failed.
    #[error("storage error while compacting")]
    Io(#[from] IoError),
}

/// What [`compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Blocks dropped because they held only zeros (dynamic) or nothing (no sector present).
    pub dropped_zero: u64,
    /// Blocks dropped because the caller said they are unused.
    pub dropped_unused: u64,
    /// Blocks moved to close holes.
    pub moved: u64,
    /// File length before.
    pub old_len: u64,
    /// File length after.
    pub new_len: u64,
}

/// Compacts `vhd` in place.
///
/// A block is dropped when no sector of it is present, when (dynamic disks) all its data is
/// zero, or when `unused(virtual_offset, length)` says the whole block is unused (e.g. free
/// space reported by the file system inside). In a differencing disk, zeros are data — they
/// hide the parent — so only the first and last rules apply there.
pub fn compact<S: Storage>(
    vhd: &mut Vhd<S>,
    unused: Option<&dyn Fn(u64, u64) -> bool>,
    progress: &mut dyn Progress,
) -> Result<CompactReport, CompactError> {
    if vhd.saved_state() {
        return Err(CompactError::SavedState);
    }
    if !vhd.writable {
        return Err(CompactError::ReadOnly);
    }
    let differencing = vhd.disk_type() == DiskType::DIFFERENCING;
    let size = vhd.size;
    let footer = vhd.footer;
    let Layout::Sparse(sparse) = &mut vhd.layout else {
        return Err(CompactError::NotSparse);
    };
    let storage = &mut vhd.storage;
    let mut report = CompactReport {
        old_len: storage.len()?,
        ..Default::default()
    };
    let bs = u64::from(sparse.block_size);
    let bitmap_len = sparse.bitmap_bytes as usize;
    let span = bitmap_len as u64 + bs;
    let mut buf = vec![0u8; span as usize];
    let total = sparse.bat.len() as u64;

    // 1. Drop empty and unused blocks.
    for block in 0..sparse.bat.len() {
        let entry = sparse.bat[block];
        progress.report(ProgressEvent {
            phase: "scan",
            done: block as u64 + 1,
            total,
        });
        if entry == BAT_UNALLOCATED {
            continue;
        }
        let start = block as u64 * bs;
        let len = bs.min(size.saturating_sub(start));
        let file = u64::from(entry) * SECTOR_SIZE;
        let drop_unused = unused.is_some_and(|f| len > 0 && f(start, len));
        let drop_zero = !drop_unused && {
            storage.read_at(file, &mut buf)?;
            let bits = SectorBitmap(&buf[..bitmap_len]);
            let sectors = (bs / SECTOR_SIZE) as usize;
            let nothing_present = bits.run(0, sectors) == (false, sectors);
            nothing_present || (!differencing && is_zero(&buf[bitmap_len..]))
        };
        if drop_unused || drop_zero {
            storage.write_at(
                sparse.bat_offset + block as u64 * 4,
                &BAT_UNALLOCATED.to_be_bytes(),
            )?;
            sparse.bat[block] = BAT_UNALLOCATED;
            sparse.full[block].store(BLOCK_UNKNOWN, core::sync::atomic::Ordering::Relaxed);
            if drop_unused {
                report.dropped_unused += 1;
            } else {
                report.dropped_zero += 1;
            }
        }
    }
    storage.flush()?;

    // 2. Close the holes: move blocks, in file order, down to the first free place.
    let bat_end = (sparse.bat_offset + sparse.bat.len() as u64 * 4).next_multiple_of(SECTOR_SIZE);
    let metadata_end = [SECTOR_SIZE, sparse.header_offset + 1024, bat_end]
        .into_iter()
        .chain(
            sparse
                .header
                .parent_locators
                .iter()
                .filter(|l| l.platform_code.get() != 0)
                .map(|l| {
                    (l.platform_data_offset.get() + crate::vhd::locator_space(l))
                        .next_multiple_of(SECTOR_SIZE)
                }),
        )
        .max()
        .unwrap_or(0);
    let mut order: Vec<(u32, usize)> = sparse
        .bat
        .iter()
        .enumerate()
        .filter(|(_, &e)| e != BAT_UNALLOCATED)
        .map(|(b, &e)| (e, b))
        .collect();
    order.sort_unstable();
    let mut next = metadata_end;
    let mut spare = sparse.end_of_data.max(metadata_end);
    for (i, &(entry, block)) in order.iter().enumerate() {
        let old = u64::from(entry) * SECTOR_SIZE;
        progress.report(ProgressEvent {
            phase: "move",
            done: i as u64 + 1,
            total: order.len() as u64,
        });
        if old <= next {
            next = next.max(old + span);
            continue;
        }
        storage.read_at(old, &mut buf)?;
        let point = |storage: &mut S, at: u64| -> Result<(), IoError> {
            storage.flush()?;
            storage.write_at(
                sparse.bat_offset + block as u64 * 4,
                &((at / SECTOR_SIZE) as u32).to_be_bytes(),
            )?;
            storage.flush()
        };
        if next + span > old {
            // The new place overlaps the old one: go through a spare copy so that a cut never
            // leaves the BAT pointing at a half-overwritten block.
            storage.write_at(spare, &buf)?;
            point(storage, spare)?;
            spare += span;
        }
        storage.write_at(next, &buf)?;
        point(storage, next)?;
        sparse.bat[block] = (next / SECTOR_SIZE) as u32;
        report.moved += 1;
        next += span;
    }
    // 3. Footer at the new end, then cut.
    storage.write_at(next, footer.as_bytes())?;
    storage.flush()?;
    storage.set_len(next + SECTOR_SIZE)?;
    storage.flush()?;
    sparse.end_of_data = next;
    report.new_len = next + SECTOR_SIZE;
    Ok(report)
}
