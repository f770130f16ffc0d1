//! `repair`: fix what can be fixed without guessing at data.

use alloc::vec::Vec;

use zerocopy::IntoBytes;

use super::check::{check, CheckReport, Problem};
use crate::defs::{bitmap_bytes, DiskType, ParentLocatorEntry, BAT_UNALLOCATED, SECTOR_SIZE};
use crate::io::{IoError, Storage};
use crate::vhd::{find_footer, read_header, OpenError, OpenOptions, Vhd};

/// One thing [`repair`] changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RepairAction {
    /// Cleared a BAT entry that pointed outside the data area or into metadata (the block
    /// now reads from the backing: zeros or the parent).
    ClearedBatEntry {
        /// Block.
        block: u32,
        /// The entry it held.
        sector: u32,
    },
    /// Cleared a parent locator entry whose payload a block overlaps (the block is what
    /// readers use). A differencing disk left with no locator still names its parent in the
    /// header ([`Vhd::parent_name`](crate::Vhd::parent_name)); open it with the parent given.
    ClearedLocator {
        /// The entry.
        index: u32,
    },
    /// Extended a file cut short with zeros to the end of the last block that begins inside
    /// it (the lost part of that block reads as zeros; the rest of its data is kept).
    Extended {
        /// Old length.
        from: u64,
        /// New length (before the footer).
        to: u64,
    },
    /// Cut unreferenced bytes after the last block.
    Truncated {
        /// Old length.
        from: u64,
        /// New length (before the footer).
        to: u64,
    },
    /// Wrote the footer at the end of the file (it was missing, damaged or misplaced).
    RewroteTailFooter,
    /// Rewrote the footer copy at offset 0 from the tail footer.
    RewroteHeadFooter,
}

/// The most zeros [`repair`] appends to complete a block cut short (a crafted block size of
/// 2 GiB must not make it write gigabytes); a larger gap clears the block instead.
const MAX_EXTEND: u64 = 64 << 20;

/// Marks `block` unallocated in the BAT.
fn clear_bat_entry<S: Storage>(
    storage: &mut S,
    header: &crate::defs::DynamicHeader,
    block: u32,
) -> Result<(), IoError> {
    let at = header.table_offset.get() + u64::from(block) * 4;
    storage.write_at(at, &BAT_UNALLOCATED.to_be_bytes())
}

/// Why [`repair`] could not make the image sound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepairError {
    /// Damage that cannot be repaired without losing or inventing data; the report lists it.
    #[error("the image has damage repair cannot fix safely ({} problems remain)", .0.problems.len())]
    NotRepairable(CheckReport),
    /// The storage failed.
    #[error("storage error while repairing")]
    Io(#[from] IoError),
}

/// Repairs what can be repaired safely: a missing or damaged tail footer (restored from the
/// copy at offset 0), a damaged head copy (restored from the tail), unreferenced data after
/// the last block (cut), a file cut short inside its last blocks (extended with zeros to their
/// end, keeping what survives of their data), BAT entries pointing past the end of the file or
/// into metadata (cleared), and parent locator entries whose payload a block overlaps
/// (cleared; the block is kept).
/// Overlapping blocks and damaged headers are reported, not touched.
///
/// Returns what was done; [`check`] is clean (apart from informational findings) afterwards.
pub fn repair<S: Storage>(storage: &mut S) -> Result<Vec<RepairAction>, RepairError> {
    let mut actions = Vec::new();
    let before = check(storage)?;
    let len = storage.len()?;
    let (footer, tail_ok) = match find_footer(storage, len) {
        Ok(f) => f,
        Err(OpenError::Io(e)) => return Err(e.into()),
        Err(_) => return Err(RepairError::NotRepairable(before)),
    };
    if footer.disk_type() == DiskType::FIXED {
        return if before.is_clean() {
            Ok(actions)
        } else {
            Err(RepairError::NotRepairable(before))
        };
    }
    let (header_offset, mut header) = match read_header(storage, &footer, len) {
        Ok(found) => found,
        Err(OpenError::Io(e)) => return Err(e.into()),
        Err(_) => return Err(RepairError::NotRepairable(before)),
    };
    // A file cut short (its tail footer gone) keeps the blocks that begin inside it: the file
    // is extended with zeros to the end of the last of them, so what survives of their data
    // stays readable. A block wholly past the end, or one whose footer is intact, is cleared.
    let block_size = header.block_size.get();
    let span = u64::from(bitmap_bytes(block_size)) + u64::from(block_size);
    let metadata_end = (header.table_offset.get())
        .saturating_add(u64::from(header.max_table_entries.get()) * 4)
        .max(header_offset.saturating_add(1024));
    let mut extend_to = None;
    for p in &before.problems {
        match *p {
            Problem::BlockBeyondEof {
                block,
                sector,
                data_end,
            } => {
                let start = u64::from(sector) * SECTOR_SIZE;
                let missing = (start + span).saturating_sub(data_end);
                if !tail_ok && start < data_end && start >= metadata_end && missing <= MAX_EXTEND {
                    extend_to = Some(extend_to.unwrap_or(0).max(start + span));
                } else {
                    clear_bat_entry(storage, &header, block)?;
                    actions.push(RepairAction::ClearedBatEntry { block, sector });
                }
            }
            Problem::BlockOverlapsMetadata { block, sector } => {
                clear_bat_entry(storage, &header, block)?;
                actions.push(RepairAction::ClearedBatEntry { block, sector });
            }
            _ => {}
        }
    }
    if let Some(to) = extend_to {
        storage.set_len(to)?;
        actions.push(RepairAction::Extended { from: len, to });
    }
    let mut cleared = false;
    for p in &before.problems {
        if let Problem::BlockOverlapsLocator { index, .. } = *p {
            let entry = &mut header.parent_locators[index as usize];
            if entry.platform_code.get() != 0 {
                *entry = ParentLocatorEntry::default();
                actions.push(RepairAction::ClearedLocator { index });
                cleared = true;
            }
        }
    }
    if cleared {
        header.update_checksum();
        storage.write_at(header_offset, header.as_bytes())?;
    }
    // With the BAT sane, the disk opens (from the head copy if the tail is bad) and knows where
    // its data ends.
    let end = match Vhd::open(&mut *storage, OpenOptions::new().ignore_parent_id(true)) {
        Ok(vhd) => vhd.footer_offset(),
        Err(OpenError::NeedsParent { .. }) => {
            // Differencing: opening needs no parent to find the end; use a stand-in.
            let stand_in = alloc::boxed::Box::new(crate::disk::RawDisk::new(
                crate::io::MemStorage::new(),
                false,
            )?);
            match Vhd::open_with_parent(
                &mut *storage,
                stand_in,
                OpenOptions::new().ignore_parent_id(true),
            ) {
                Ok(vhd) => vhd.footer_offset(),
                Err(_) => return Err(RepairError::NotRepairable(before)),
            }
        }
        Err(_) => return Err(RepairError::NotRepairable(before)),
    };
    let expected_len = end + SECTOR_SIZE;
    let tail_in_place = tail_ok && len == expected_len;
    if len > expected_len {
        actions.push(RepairAction::Truncated { from: len, to: end });
    }
    if !tail_in_place {
        storage.set_len(end)?;
        storage.write_at(end, footer.as_bytes())?;
        actions.push(RepairAction::RewroteTailFooter);
    }
    let head = crate::vhd::read_footer(storage, 0)?;
    if head.as_bytes() != footer.as_bytes() {
        storage.write_at(0, footer.as_bytes())?;
        actions.push(RepairAction::RewroteHeadFooter);
    }
    storage.flush()?;
    let after = check(storage)?;
    if after.is_clean()
        || !after.problems.iter().any(|p| {
            p.severity() >= super::Severity::Warning && !matches!(p, Problem::BatTooLarge { .. })
        })
    {
        Ok(actions)
    } else {
        Err(RepairError::NotRepairable(after))
    }
}
