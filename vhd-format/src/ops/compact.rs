//! `compact`: drop blocks that hold nothing (or that the caller says are unused) and close the
//! holes, shrinking the file.
//!
//! Runs in place. Every step keeps the image consistent for a reader that opens it after a
//! cut: a dropped block is first unhooked from the BAT; a moved block is copied to its new
//! place, flushed, and only then re-pointed in the BAT (a move onto its own old location goes
//! through a spare copy at the end of the file first); the footer is written at the new end
//! before the file is cut. Cancelling (through [`Progress`]) stops before the next block and
//! ends the same way: footer at the end of what is still referenced, then the cut.

use alloc::vec;
use alloc::vec::Vec;

use zerocopy::IntoBytes;

use super::convert::is_zero;
use super::{stop_at, Progress, BLOCK_CHUNK};
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
    /// The [`Progress`] callback asked to stop. The image is valid and partly compacted: the
    /// blocks dropped and moved so far stay so, and the file ends after the last block still
    /// in use. Running `compact` again finishes the job.
    #[error("compaction was cancelled")]
    Cancelled,
}

/// What [`compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
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
///
/// `progress` sees each block twice (phase `"scan"`, then `"move"`) and may cancel before any
/// of them: see [`CompactError::Cancelled`].
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
    let bitmap_len = u64::from(sparse.bitmap_bytes);
    let span = bitmap_len + bs;
    // The header's block size (up to 2 GiB) must not decide how much memory this takes: blocks
    // are scanned and copied a bounded chunk at a time.
    let mut buf = vec![0u8; span.min(BLOCK_CHUNK) as usize];
    let total = sparse.bat.len() as u64;

    // 1. Drop empty and unused blocks.
    let mut cancelled = false;
    for block in 0..sparse.bat.len() {
        let entry = sparse.bat[block];
        if stop_at(progress, "scan", block as u64 + 1, total) {
            cancelled = true;
            break;
        }
        if entry == BAT_UNALLOCATED {
            continue;
        }
        let start = block as u64 * bs;
        let len = bs.min(size.saturating_sub(start));
        let file = u64::from(entry) * SECTOR_SIZE;
        let drop_unused = unused.is_some_and(|f| len > 0 && f(start, len));
        let drop_zero = !drop_unused && {
            nothing_present(storage, file, bitmap_len, bs / SECTOR_SIZE, &mut buf)?
                || (!differencing && all_zero(storage, file + bitmap_len, bs, &mut buf)?)
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

    // 2. Close the holes: move blocks, in file order, down to the first free place. The
    // metadata (footer copy, header, BAT, and the locator payloads that lie inside the file, as
    // open found them) stays where it is; a locator offset outside the file is ignored.
    let bat_end = (sparse.bat_offset + sparse.bat.len() as u64 * 4).next_multiple_of(SECTOR_SIZE);
    let header_end = (sparse.header_offset + 1024).next_multiple_of(SECTOR_SIZE);
    let metadata_end = SECTOR_SIZE
        .max(header_end)
        .max(bat_end)
        .max(sparse.locators_end);
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
        if cancelled {
            break;
        }
        let old = u64::from(entry) * SECTOR_SIZE;
        if stop_at(progress, "move", i as u64 + 1, order.len() as u64) {
            cancelled = true;
            break;
        }
        if old <= next {
            next = next.max(old + span);
            continue;
        }
        let point = |storage: &mut S, at: u64| -> Result<(), CompactError> {
            let sector = u32::try_from(at / SECTOR_SIZE)
                .map_err(|_| DiskError::FileTooLarge { needed: at + span })?;
            storage.flush()?;
            storage.write_at(sparse.bat_offset + block as u64 * 4, &sector.to_be_bytes())?;
            storage.flush()?;
            Ok(())
        };
        let from = if next + span > old {
            // The new place overlaps the old one: go through a spare copy so that a cut never
            // leaves the BAT pointing at a half-overwritten block.
            copy(storage, old, spare, span, &mut buf)?;
            point(storage, spare)?;
            spare += span;
            spare - span
        } else {
            old
        };
        copy(storage, from, next, span, &mut buf)?;
        point(storage, next)?;
        sparse.bat[block] = (next / SECTOR_SIZE) as u32;
        report.moved += 1;
        next += span;
    }
    // 3. Footer at the new end, then cut. When cancelled, blocks not moved yet may lie beyond
    // `next`: the end is after the last block still in use (spare copies are not).
    if cancelled {
        next = sparse
            .bat
            .iter()
            .filter(|&&e| e != BAT_UNALLOCATED)
            .map(|&e| u64::from(e) * SECTOR_SIZE + span)
            .fold(metadata_end, u64::max);
    }
    storage.write_at(next, footer.as_bytes())?;
    storage.flush()?;
    storage.set_len(next + SECTOR_SIZE)?;
    storage.flush()?;
    sparse.end_of_data = next;
    report.new_len = next + SECTOR_SIZE;
    if cancelled {
        return Err(CompactError::Cancelled);
    }
    Ok(report)
}

/// Whether none of the first `sectors` bits of the bitmap at `file` (`bitmap_len` bytes) is
/// set, read `buf.len()` bytes at a time.
fn nothing_present<S: Storage>(
    storage: &S,
    file: u64,
    bitmap_len: u64,
    sectors: u64,
    buf: &mut [u8],
) -> Result<bool, IoError> {
    let mut seen = 0u64;
    let mut at = 0u64;
    while seen < sectors && at < bitmap_len {
        let n = (bitmap_len - at).min(buf.len() as u64) as usize;
        storage.read_at(file + at, &mut buf[..n])?;
        let bits = (n as u64 * 8).min(sectors - seen) as usize;
        if SectorBitmap(&buf[..n]).run(0, bits) != (false, bits) {
            return Ok(false);
        }
        seen += bits as u64;
        at += n as u64;
    }
    Ok(true)
}

/// Whether the `len` bytes at `file` are all zero, read `buf.len()` bytes at a time.
fn all_zero<S: Storage>(storage: &S, file: u64, len: u64, buf: &mut [u8]) -> Result<bool, IoError> {
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        storage.read_at(file + at, &mut buf[..n])?;
        if !is_zero(&buf[..n]) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Copies `len` bytes from `from` to `to` through `buf`, in ascending order (so a copy to a
/// lower, overlapping place is still exact).
fn copy<S: Storage>(
    storage: &mut S,
    from: u64,
    to: u64,
    len: u64,
    buf: &mut [u8],
) -> Result<(), IoError> {
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        storage.read_at(from + at, &mut buf[..n])?;
        storage.write_at(to + at, &buf[..n])?;
        at += n as u64;
    }
    Ok(())
}
