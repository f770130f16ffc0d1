//! `check`: every structural invariant of an image, each problem reported precisely.
//!
//! `check` works on the raw storage rather than on an open [`Vhd`](crate::Vhd), so it can
//! describe images that do not open at all.

use alloc::vec;
use alloc::vec::Vec;

use zerocopy::IntoBytes;

use crate::defs::{bitmap_bytes, DiskType, Footer, BAT_UNALLOCATED, SECTOR_SIZE};
use crate::io::{IoError, Storage};
use crate::vhd::{
    locator_space, read_footer, read_header, read_tail_footer, validate_footer, OpenError,
    StructureProblem,
};

/// How bad a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing; the image is fine.
    Info,
    /// The image works but deviates from what other tools expect; `repair` may fix it.
    Warning,
    /// The image is damaged: some data or metadata cannot be trusted.
    Error,
}

/// One finding of [`check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file is too short to hold a footer.
    #[error("file of {len} bytes is too small to be a VHD")]
    TooSmall {
        /// File length.
        len: u64,
    },
    /// The footer at the end of the file is invalid.
    #[error("tail footer at offset {offset}: {problem}")]
    TailFooter {
        /// Its offset.
        offset: u64,
        /// What is wrong.
        problem: StructureProblem,
    },
    /// The footer copy at offset 0 of a sparse disk is invalid.
    #[error("footer copy at offset 0: {problem}")]
    HeadFooter {
        /// What is wrong.
        problem: StructureProblem,
    },
    /// The two footer copies differ.
    #[error("footer copy at offset 0 differs from the tail footer")]
    FootersDiffer,
    /// The dynamic header is invalid or missing.
    #[error("dynamic header at offset {offset}: {problem}")]
    Header {
        /// Its offset.
        offset: u64,
        /// What is wrong.
        problem: StructureProblem,
    },
    /// The image does not open for a structural reason not covered above.
    #[error("image does not open: {0}")]
    Unopenable(&'static str),
    /// A disk type this crate cannot check.
    #[error("unsupported disk type {0}")]
    UnsupportedDiskType(u32),
    /// The current size is not a multiple of 512.
    #[error("current size {0} is not a multiple of 512")]
    UnalignedSize(u64),
    /// A fixed disk's file length is not size + 512.
    #[error("fixed disk of {size} bytes has a file of {file_len} bytes (expected {expected})")]
    FixedLength {
        /// Virtual size.
        size: u64,
        /// File length.
        file_len: u64,
        /// Expected length.
        expected: u64,
    },
    /// The BAT has fewer entries than the size needs.
    #[error("BAT has {entries} entries, the size needs {needed}")]
    BatTooSmall {
        /// Stored entries.
        entries: u32,
        /// Needed entries.
        needed: u64,
    },
    /// The BAT has more entries than the size needs (qemu before 5.0 wrote one extra; Azure rejects it).
    #[error("BAT has {entries} entries, the size needs only {needed}")]
    BatTooLarge {
        /// Stored entries.
        entries: u32,
        /// Needed entries.
        needed: u64,
    },
    /// The BAT lies outside the file.
    #[error("BAT at offset {offset} ({entries} entries) lies outside the file")]
    BatOutOfFile {
        /// BAT offset.
        offset: u64,
        /// Entries.
        entries: u32,
    },
    /// The block size is invalid.
    #[error("block size {0} is not a power of two of at least 512")]
    BadBlockSize(u32),
    /// A block ends beyond the data area.
    #[error("block {block} at sector {sector} ends beyond the data area ({data_end} bytes)")]
    BlockBeyondEof {
        /// Block.
        block: u32,
        /// Its BAT entry.
        sector: u32,
        /// End of the data area.
        data_end: u64,
    },
    /// A block overlaps the metadata (footer copy, header, BAT).
    #[error("block {block} at sector {sector} overlaps image metadata")]
    BlockOverlapsMetadata {
        /// Block.
        block: u32,
        /// Its BAT entry.
        sector: u32,
    },
    /// A block overlaps the payload of a parent locator. Readers use the block (locators are
    /// only consulted to find a parent), so the locator's payload is what is damaged;
    /// [`repair`](super::repair) clears the locator entry and keeps the block.
    #[error("block {block} at sector {sector} overlaps the payload of parent locator {index}")]
    BlockOverlapsLocator {
        /// Block.
        block: u32,
        /// Its BAT entry.
        sector: u32,
        /// The locator entry.
        index: u32,
    },
    /// Two blocks overlap in the file.
    #[error("blocks {first} and {second} overlap in the file (sectors {first_sector} and {second_sector})")]
    BlocksOverlap {
        /// One block.
        first: u32,
        /// Its entry.
        first_sector: u32,
        /// The other.
        second: u32,
        /// Its entry.
        second_sector: u32,
    },
    /// An allocated block's bitmap marks no sector (space wasted; `compact` drops it).
    #[error("block {block} is allocated but its bitmap marks no sector")]
    EmptyBitmap {
        /// Block.
        block: u32,
    },
    /// Bitmap bits are set for sectors past the end of the disk.
    #[error("block {block}'s bitmap marks sectors past the end of the disk")]
    BitmapBeyondDisk {
        /// Block.
        block: u32,
    },
    /// A parent locator's data lies outside the file.
    #[error("parent locator {index} data at offset {offset} lies outside the file")]
    LocatorOutOfFile {
        /// Entry index.
        index: u32,
        /// Data offset.
        offset: u64,
    },
    /// Bytes after the data area besides the footer (left by an interrupted allocation).
    #[error("{extra} bytes of unreferenced data between the last block (ends at {data_end}) and the footer")]
    TrailingData {
        /// End of the referenced data.
        data_end: u64,
        /// Extra bytes.
        extra: u64,
    },
    /// The file length is not a multiple of 512.
    #[error("file length {0} is not a multiple of 512")]
    UnalignedFileLength(u64),
    /// The saved-state flag is set (compact and expand will refuse the disk).
    #[error("the saved-state flag is set")]
    SavedState,
}

impl Problem {
    /// How serious the problem is.
    pub fn severity(&self) -> Severity {
        match self {
            Self::SavedState | Self::EmptyBitmap { .. } => Severity::Info,
            Self::BatTooLarge { .. }
            | Self::TrailingData { .. }
            | Self::HeadFooter { .. }
            | Self::FootersDiffer
            | Self::UnalignedFileLength(_)
            | Self::BitmapBeyondDisk { .. } => Severity::Warning,
            Self::TailFooter { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// The result of [`check`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CheckReport {
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
    /// Blocks allocated.
    pub allocated_blocks: u64,
}

impl CheckReport {
    /// Whether no problem of [`Severity::Warning`] or worse was found.
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.severity() == Severity::Info)
    }

    /// Whether an [`Severity::Error`] was found.
    pub fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.severity() == Severity::Error)
    }
}

/// Checks every structural invariant of the image in `storage`: footer copies and checksums,
/// header, BAT range and entries (in range, outside metadata, non-overlapping), bitmaps against
/// allocation, locator data, and the file length. Reads are bounded by the file length.
pub fn check<S: Storage>(storage: &S) -> Result<CheckReport, IoError> {
    let mut r = CheckReport::default();
    let len = storage.len()?;
    if len < SECTOR_SIZE {
        r.problems.push(Problem::TooSmall { len });
        return Ok(r);
    }
    let (tail_offset, tail) = read_tail_footer(storage, len)?;
    if len % SECTOR_SIZE != 0 && tail_offset != len - 511 {
        r.problems.push(Problem::UnalignedFileLength(len));
    }
    let tail_ok = match validate_footer(&tail) {
        Ok(()) => true,
        Err(problem) => {
            r.problems.push(Problem::TailFooter {
                offset: tail_offset,
                problem,
            });
            false
        }
    };
    let head = read_footer(storage, 0)?;
    let head_ok = validate_footer(&head).is_ok();
    let footer: Footer = match (tail_ok, head_ok) {
        (true, _) => tail,
        (false, true) if matches!(head.disk_type(), DiskType::DYNAMIC | DiskType::DIFFERENCING) => {
            head
        }
        _ => {
            // Without a footer nothing else can be read: the image is damaged, whatever the
            // severity of the footer problems found so far.
            r.problems.push(Problem::Unopenable("no valid footer"));
            return Ok(r);
        }
    };
    if footer.saved_state != 0 {
        r.problems.push(Problem::SavedState);
    }
    let size = footer.current_size.get();
    if !size.is_multiple_of(SECTOR_SIZE) {
        r.problems.push(Problem::UnalignedSize(size));
    }
    match footer.disk_type() {
        DiskType::FIXED => {
            // The footer must start right after the data (512 or, for old images, 511 bytes long).
            let expected = size.saturating_add(len - tail_offset);
            if tail_offset != size {
                r.problems.push(Problem::FixedLength {
                    size,
                    file_len: len,
                    expected,
                });
            }
            return Ok(r);
        }
        DiskType::DYNAMIC | DiskType::DIFFERENCING => {}
        other => {
            r.problems.push(Problem::UnsupportedDiskType(other.0));
            return Ok(r);
        }
    }
    if let Err(problem) = validate_footer(&head) {
        r.problems.push(Problem::HeadFooter { problem });
    } else if tail_ok && head.as_bytes() != tail.as_bytes() {
        r.problems.push(Problem::FootersDiffer);
    }
    let (header_offset, header) = match read_header(storage, &footer, len) {
        Ok(h) => h,
        Err(OpenError::BadHeader { offset, problem }) => {
            r.problems.push(Problem::Header { offset, problem });
            return Ok(r);
        }
        Err(OpenError::Io(e)) => return Err(e),
        Err(_) => {
            r.problems
                .push(Problem::Unopenable("dynamic header unreadable"));
            return Ok(r);
        }
    };
    let block_size = header.block_size.get();
    if !block_size.is_power_of_two() || block_size < 512 {
        r.problems.push(Problem::BadBlockSize(block_size));
        return Ok(r);
    }
    let entries = header.max_table_entries.get();
    let needed = size.div_ceil(u64::from(block_size));
    if u64::from(entries) < needed {
        r.problems.push(Problem::BatTooSmall { entries, needed });
    } else if u64::from(entries) > needed {
        r.problems.push(Problem::BatTooLarge { entries, needed });
    }
    let bat_offset = header.table_offset.get();
    let bat_bytes = u64::from(entries) * 4;
    if bat_offset
        .checked_add(bat_bytes)
        .is_none_or(|end| end > len)
    {
        r.problems.push(Problem::BatOutOfFile {
            offset: bat_offset,
            entries,
        });
        return Ok(r);
    }
    // Bounded by the file length checked just above; on a 32-bit target that bound can still
    // exceed the address space, and such a table is as unreadable as one outside the file.
    let Ok(raw_len) = usize::try_from(bat_bytes) else {
        r.problems.push(Problem::BatOutOfFile {
            offset: bat_offset,
            entries,
        });
        return Ok(r);
    };
    let mut raw = vec![0u8; raw_len];
    storage.read_at(bat_offset, &mut raw)?;
    let bat: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    drop(raw);

    let data_end = if tail_ok { tail_offset } else { len };
    let metadata: Vec<(u64, u64)> = vec![
        (0, SECTOR_SIZE),
        (header_offset, header_offset + 1024),
        (
            bat_offset,
            (bat_offset + bat_bytes).next_multiple_of(SECTOR_SIZE),
        ),
    ];
    let mut locators: Vec<(u64, u64, u32)> = Vec::new();
    for (index, loc) in header.parent_locators.iter().enumerate() {
        if loc.platform_code.get() == 0 {
            continue;
        }
        let offset = loc.platform_data_offset.get();
        match offset.checked_add(locator_space(loc)) {
            Some(end) if end <= data_end => locators.push((offset, end, index as u32)),
            _ => r.problems.push(Problem::LocatorOutOfFile {
                index: index as u32,
                offset,
            }),
        }
    }
    let bitmap_len = bitmap_bytes(block_size);
    let span = u64::from(bitmap_len) + u64::from(block_size);
    let mut end_of_data = metadata
        .iter()
        .map(|m| m.1)
        .chain(locators.iter().map(|l| l.1))
        .map(|end| end.next_multiple_of(SECTOR_SIZE))
        .max()
        .unwrap_or(0);
    let mut blocks: Vec<(u64, u32)> = Vec::new();
    // Allocated at the first block that lies inside the file, so its size (set by the header)
    // is bounded by the file's length.
    let mut bitmap = Vec::new();
    let sectors_per_block = u64::from(block_size) / SECTOR_SIZE;
    for (block, &sector) in bat.iter().enumerate() {
        if sector == BAT_UNALLOCATED {
            continue;
        }
        let block = block as u32;
        let start = u64::from(sector) * SECTOR_SIZE;
        let end = start + span;
        if end > data_end {
            r.problems.push(Problem::BlockBeyondEof {
                block,
                sector,
                data_end,
            });
            continue;
        }
        if metadata.iter().any(|&(a, b)| start < b && a < end) {
            r.problems
                .push(Problem::BlockOverlapsMetadata { block, sector });
            continue;
        }
        // Reported, and the block kept: `open` reads it, whatever the locator says.
        for &(a, b, index) in &locators {
            if start < b.next_multiple_of(SECTOR_SIZE) && a < end {
                r.problems.push(Problem::BlockOverlapsLocator {
                    block,
                    sector,
                    index,
                });
            }
        }
        r.allocated_blocks += 1;
        end_of_data = end_of_data.max(end);
        blocks.push((start, block));
        bitmap.resize(bitmap_len as usize, 0);
        storage.read_at(start, &mut bitmap)?;
        let in_disk = size.saturating_sub(u64::from(block) * u64::from(block_size)) / SECTOR_SIZE;
        let in_disk = in_disk.min(sectors_per_block) as usize;
        let bits = crate::defs::SectorBitmap(&bitmap);
        if in_disk > 0 && !bits.get(0) && bits.run(0, in_disk).1 == in_disk {
            r.problems.push(Problem::EmptyBitmap { block });
        }
        let total = sectors_per_block as usize;
        if in_disk < total && bits.run(in_disk, total - in_disk) != (false, total - in_disk) {
            // qemu and we set whole bitmaps on dynamic disks, so only flag differencing disks.
            if footer.disk_type() == DiskType::DIFFERENCING {
                r.problems.push(Problem::BitmapBeyondDisk { block });
            }
        }
    }
    blocks.sort_unstable();
    for pair in blocks.windows(2) {
        let ((a_start, a), (b_start, b)) = (pair[0], pair[1]);
        if b_start < a_start + span {
            r.problems.push(Problem::BlocksOverlap {
                first: a,
                first_sector: (a_start / SECTOR_SIZE) as u32,
                second: b,
                second_sector: (b_start / SECTOR_SIZE) as u32,
            });
        }
    }
    if data_end > end_of_data {
        r.problems.push(Problem::TrailingData {
            data_end: end_of_data,
            extra: data_end - end_of_data,
        });
    }
    Ok(r)
}
