//! Opening a VHD: find and validate the footer, the dynamic header and the BAT.
//!
//! Everything read here is untrusted. Each size field is checked against the file length
//! before anything is allocated in proportion to it, and every BAT entry is checked to lie
//! inside the file and outside the metadata before the first read goes through it.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use zerocopy::FromBytes;

use super::{Layout, Sparse, Vhd, Warning};
use crate::defs::{
    bitmap_bytes, DiskType, DynamicHeader, Footer, FourCc, Uuid, BAT_UNALLOCATED, DYNAMIC_COOKIE,
    FOOTER_COOKIE, SECTOR_SIZE,
};
use crate::disk::{Disk, DiskIdentity, ParentDisk};
use crate::io::{IoError, Storage};

/// Which size a reader reports: VHD stores both a byte count and a CHS geometry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizePolicy {
    /// `current_size` (Hyper-V, Azure, VirtualBox). The default. (libvhdi reports
    /// `original_size` instead, which equals `current_size` unless a tool grew the disk
    /// without updating it; [`expand`](crate::ops::expand) updates both.)
    #[default]
    CurrentSize,
    /// C·H·S·512 from the footer geometry (how Virtual PC sized disks).
    Chs,
    /// qemu's per-creator rule (qemu ≥ 10): CHS for `vpc ` and `qemu` images unless the
    /// geometry is saturated, `current_size` otherwise.
    Qemu,
}

impl SizePolicy {
    /// The virtual size this policy gives for `footer`.
    pub fn size_of(self, footer: &Footer) -> u64 {
        let chs = footer.geometry();
        let cur = footer.current_size.get();
        match self {
            Self::CurrentSize => cur,
            Self::Chs => chs.size(),
            Self::Qemu => {
                if creator_sizes_by_chs(footer) && !chs.is_saturated() {
                    chs.size()
                } else {
                    cur
                }
            }
        }
    }
}

/// Whether the footer's creator application sizes the disk by its CHS geometry (Virtual PC
/// and qemu without `force_size`: `vpc ` and `qemu`), as qemu ≥ 10 decides.
pub(crate) fn creator_sizes_by_chs(footer: &Footer) -> bool {
    let app = footer.creator_application();
    app == FourCc::VIRTUAL_PC || app == FourCc::QEMU
}

/// How to open a VHD.
///
/// [`OpenOptions::new`] and [`OpenOptions::default`] are the same: read-only, `current_size`,
/// write barriers on. The options are `Copy`, so one value can open several disks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    pub(crate) writable: bool,
    pub(crate) size_policy: SizePolicy,
    pub(crate) barriers: bool,
    pub(crate) ignore_parent_id: bool,
    pub(crate) writable_parent: bool,
}

impl Default for OpenOptions {
    /// The same as [`OpenOptions::new`]: barriers are on.
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// Read-only, `current_size`, with write barriers (when later made writable), the unique
    /// id of a parent checked, the parent read-only.
    pub fn new() -> Self {
        Self {
            writable: false,
            size_policy: SizePolicy::CurrentSize,
            barriers: true,
            ignore_parent_id: false,
            writable_parent: false,
        }
    }

    /// Allow writes.
    pub fn writable(mut self, yes: bool) -> Self {
        self.writable = yes;
        self
    }

    /// Which size to report.
    pub fn size_policy(mut self, policy: SizePolicy) -> Self {
        self.size_policy = policy;
        self
    }

    /// Flush between a new block's data and its BAT entry, and between newly present sectors'
    /// data and the bitmap bits that mark them (on by default), so that data is durable before
    /// anything points at it even on storage that reorders writes. Writes are always issued in
    /// crash-consistent order; this adds the barrier.
    pub fn barriers(mut self, yes: bool) -> Self {
        self.barriers = yes;
        self
    }

    /// Open the immediate parent writable too (what merging into the parent needs). Only
    /// meaningful when the parent is resolved from the file system.
    pub fn writable_parent(mut self, yes: bool) -> Self {
        self.writable_parent = yes;
        self
    }

    /// Accept a parent whose unique id differs from the one the child recorded (dangerous:
    /// reads then mix two unrelated disks). Off by default.
    pub fn ignore_parent_id(mut self, yes: bool) -> Self {
        self.ignore_parent_id = yes;
        self
    }
}

/// Why a VHD could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file is shorter than one footer.
    #[error("file of {len} bytes is too small to be a VHD")]
    TooSmall {
        /// File length.
        len: u64,
    },
    /// No valid footer at the end of the file (nor a usable copy at offset 0).
    #[error("no valid footer at offset {offset}: {problem}")]
    BadFooter {
        /// Where the footer was looked for.
        offset: u64,
        /// What was wrong with it.
        problem: StructureProblem,
    },
    /// The dynamic header is missing or invalid.
    #[error("invalid dynamic header at offset {offset}: {problem}")]
    BadHeader {
        /// Where the header was.
        offset: u64,
        /// What was wrong with it.
        problem: StructureProblem,
    },
    /// A disk type this crate does not handle.
    #[error("unsupported disk type {0:?}")]
    UnsupportedDiskType(DiskType),
    /// The block size is not a power of two between 512 bytes and 2 GiB.
    #[error("invalid block size {0}")]
    BadBlockSize(u32),
    /// The BAT has fewer entries than the disk size needs.
    #[error("BAT has {entries} entries but the disk size needs {needed}")]
    BatTooSmall {
        /// Entries stored.
        entries: u32,
        /// Entries needed.
        needed: u64,
    },
    /// The BAT does not fit inside the file.
    #[error(
        "BAT of {entries} entries at offset {offset} does not fit in the file ({file_len} bytes)"
    )]
    BatOutOfRange {
        /// BAT offset.
        offset: u64,
        /// Entries.
        entries: u32,
        /// File length.
        file_len: u64,
    },
    /// The BAT is larger than this platform can address (a 32-bit target; no real disk has
    /// such a table).
    #[error("BAT of {entries} entries is larger than this platform can address")]
    BatTooLarge {
        /// Entries.
        entries: u32,
    },
    /// A BAT entry points outside the file or into metadata.
    #[error("BAT entry {block} (sector {sector}) {problem}")]
    BadBatEntry {
        /// Block index.
        block: u32,
        /// The entry.
        sector: u32,
        /// What is wrong.
        problem: BatProblem,
    },
    /// A fixed disk file is shorter than its size.
    #[error("fixed disk of {size} bytes needs a file of {needed} bytes, found {file_len}")]
    FixedTruncated {
        /// Virtual size.
        size: u64,
        /// Needed file length.
        needed: u64,
        /// Actual length.
        file_len: u64,
    },
    /// The disk is differencing and no parent was supplied.
    #[error("differencing disk needs its parent (unique id {parent_id})")]
    NeedsParent {
        /// The parent unique id the child records.
        parent_id: Uuid,
    },
    /// The supplied parent is not the disk the child was made from.
    #[error("parent unique id {found:?} does not match {expected} recorded by the child")]
    ParentMismatch {
        /// What the child records.
        expected: Uuid,
        /// What the parent has (`None`: the parent is not a VHD).
        found: Option<Uuid>,
    },
    /// The storage failed.
    #[error("storage error while opening")]
    Io(#[from] IoError),
    /// The parent could not be resolved or opened.
    #[cfg(feature = "std")]
    #[error(transparent)]
    Parent(#[from] crate::parent::ParentError),
    /// The file could not be opened (`Vhd::open_path`): it is missing, or not accessible.
    #[cfg(feature = "std")]
    #[error("cannot open {path}")]
    File {
        /// The path given.
        path: std::path::PathBuf,
        /// Why the system refused it.
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with a footer or header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StructureProblem {
    /// The cookie is not the expected one.
    #[error("bad cookie {0:02x?}")]
    Cookie([u8; 8]),
    /// The checksum does not match.
    #[error("checksum {stored:#010x} stored, {computed:#010x} computed")]
    Checksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        computed: u32,
    },
    /// An unsupported format version.
    #[error("unsupported version {0:#x}")]
    Version(u32),
    /// The structure does not fit in the file.
    #[error("it lies outside the file")]
    OutOfFile,
}

/// What is wrong with a BAT entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatProblem {
    /// The block ends beyond the data area of the file.
    #[error("ends beyond the end of the data area ({data_end} bytes)")]
    BeyondEof {
        /// End of the data area.
        data_end: u64,
    },
    /// The block overlaps the footer copy, the dynamic header or the BAT.
    #[error("overlaps the image metadata")]
    OverlapsMetadata,
    /// The block overlaps another block in the file. Reading such an image is harmless, so
    /// this is only refused when opening for writing (a write would change both blocks).
    #[error("overlaps block {other} in the file")]
    OverlapsBlock {
        /// The other block.
        other: u32,
    },
}

pub(crate) fn validate_footer(f: &Footer) -> Result<(), StructureProblem> {
    if f.cookie != FOOTER_COOKIE {
        return Err(StructureProblem::Cookie(f.cookie));
    }
    if !cfg!(fuzzing) && !f.checksum_ok() {
        return Err(StructureProblem::Checksum {
            stored: f.checksum.get(),
            computed: f.compute_checksum(),
        });
    }
    if f.file_format_version.get() >> 16 != 1 {
        return Err(StructureProblem::Version(f.file_format_version.get()));
    }
    Ok(())
}

pub(crate) fn validate_header(h: &DynamicHeader) -> Result<(), StructureProblem> {
    if h.cookie != DYNAMIC_COOKIE {
        return Err(StructureProblem::Cookie(h.cookie));
    }
    if !cfg!(fuzzing) && !h.checksum_ok() {
        return Err(StructureProblem::Checksum {
            stored: h.checksum.get(),
            computed: h.compute_checksum(),
        });
    }
    if h.header_version.get() >> 16 != 1 {
        return Err(StructureProblem::Version(h.header_version.get()));
    }
    Ok(())
}

/// Reads a footer at `offset`.
pub(crate) fn read_footer<S: Storage>(storage: &S, offset: u64) -> Result<Footer, IoError> {
    let mut buf = [0u8; 512];
    storage.read_at(offset, &mut buf)?;
    Ok(Footer::read_from_bytes(&buf).expect("512 bytes"))
}

/// Finds the footer: the tail copy, else (for sparse disks) the head copy.
/// Returns the footer and whether the tail copy was valid.
pub(crate) fn find_footer<S: Storage>(storage: &S, len: u64) -> Result<(Footer, bool), OpenError> {
    if len < SECTOR_SIZE {
        return Err(OpenError::TooSmall { len });
    }
    let (offset, tail) = read_tail_footer(storage, len)?;
    let tail_problem = match validate_footer(&tail) {
        Ok(()) => return Ok((tail, true)),
        Err(p) => p,
    };
    // A sparse disk cut off mid-allocation (or with a damaged tail) keeps its copy at 0.
    let head = read_footer(storage, 0)?;
    if validate_footer(&head).is_ok()
        && matches!(head.disk_type(), DiskType::DYNAMIC | DiskType::DIFFERENCING)
    {
        return Ok((head, false));
    }
    Err(OpenError::BadFooter {
        offset,
        problem: tail_problem,
    })
}

/// Reads the tail footer: at EOF−512, or, when that one is invalid and the length is 511 mod
/// 512, the 511-byte footer Virtual PC wrote before VPC 2004 (its missing last byte is reserved,
/// read as zero). Returns its offset and contents, valid or not. `len` must be at least 512.
pub(crate) fn read_tail_footer<S: Storage>(
    storage: &S,
    len: u64,
) -> Result<(u64, Footer), IoError> {
    let tail = read_footer(storage, len - SECTOR_SIZE)?;
    if validate_footer(&tail).is_err() && len % SECTOR_SIZE == 511 {
        let mut buf = [0u8; 512];
        storage.read_at(len - 511, &mut buf[..511])?;
        let old = Footer::read_from_bytes(&buf).expect("512 bytes");
        if validate_footer(&old).is_ok() {
            return Ok((len - 511, old));
        }
    }
    Ok((len - SECTOR_SIZE, tail))
}

/// Where the tail footer starts: EOF−512, or EOF−511 for an old 511-byte footer.
fn tail_footer_offset<S: Storage>(storage: &S, len: u64) -> Result<u64, IoError> {
    Ok(read_tail_footer(storage, len)?.0)
}

impl<S: Storage> Vhd<S> {
    /// Opens a fixed or dynamic VHD. A differencing disk fails with
    /// [`OpenError::NeedsParent`]; open it with [`Vhd::open_with_parent`] (or, with `std`,
    /// [`Vhd::open_path`], which resolves the parent from the locators).
    ///
    #[cfg_attr(feature = "std", doc = "[`Vhd::open_path`]: crate::Vhd::open_path")]
    #[cfg_attr(not(feature = "std"), doc = "[`Vhd::open_path`]: crate#features")]
    pub fn open(storage: S, options: OpenOptions) -> Result<Self, OpenError> {
        Self::open_inner(storage, options, None)
    }

    /// Opens a VHD whose parent the caller supplies (any [`Disk`] that is `Send + Sync +
    /// 'static`, a [`ParentDisk`]: another `Vhd`, a whole chain, a raw image). The parent's
    /// unique id must match the child's record unless [`OpenOptions::ignore_parent_id`] is
    /// set; a timestamp mismatch is only a [`Warning`]. The child is `Send` and `Sync` whenever
    /// its storage is; [`Vhd::into_parts`] gives the parent back.
    pub fn open_with_parent(
        storage: S,
        parent: Box<dyn ParentDisk>,
        options: OpenOptions,
    ) -> Result<Self, OpenError> {
        Self::open_inner(storage, options, Some(parent))
    }

    /// Reads the footer and, for differencing disks, the parent link, without opening the
    /// disk for I/O (what parent resolution needs).
    pub fn probe(storage: &S) -> Result<(Footer, Option<DynamicHeader>), OpenError> {
        let len = storage.len()?;
        let (footer, _) = find_footer(storage, len)?;
        let header = match footer.disk_type() {
            DiskType::DYNAMIC | DiskType::DIFFERENCING => {
                Some(read_header(storage, &footer, len)?.1)
            }
            _ => None,
        };
        Ok((footer, header))
    }

    fn open_inner(
        storage: S,
        options: OpenOptions,
        parent: Option<Box<dyn ParentDisk>>,
    ) -> Result<Self, OpenError> {
        let len = storage.len()?;
        let (footer, tail_ok) = find_footer(&storage, len)?;
        let mut warnings = Vec::new();
        if !tail_ok {
            warnings.push(Warning::TailFooterInvalid);
        }
        let size = options.size_policy.size_of(&footer);
        let layout =
            match footer.disk_type() {
                DiskType::FIXED => {
                    let needed = footer.current_size.get().saturating_add(SECTOR_SIZE);
                    if size > tail_footer_offset(&storage, len)? || needed > len + 1 {
                        return Err(OpenError::FixedTruncated {
                            size,
                            needed,
                            file_len: len,
                        });
                    }
                    Layout::Fixed
                }
                DiskType::DYNAMIC | DiskType::DIFFERENCING => Layout::Sparse(Box::new(
                    open_sparse(&storage, &footer, len, tail_ok, size, options.writable)?,
                )),
                other => return Err(OpenError::UnsupportedDiskType(other)),
            };
        if let Layout::Sparse(sparse) = &layout {
            if let Some(&block) = sparse.shared.first() {
                warnings.push(Warning::BlocksShareSpace {
                    block,
                    count: sparse.shared.len() as u32,
                });
            }
        }
        let parent = match (&layout, footer.disk_type()) {
            (Layout::Sparse(sparse), DiskType::DIFFERENCING) => {
                let expected = sparse.header.parent_unique_id();
                let parent = parent.ok_or(OpenError::NeedsParent {
                    parent_id: expected,
                })?;
                match parent.identity() {
                    Some(DiskIdentity {
                        unique_id,
                        timestamp,
                    }) if unique_id == expected => {
                        if timestamp != sparse.header.parent_timestamp() {
                            warnings.push(Warning::ParentTimestampMismatch {
                                recorded: sparse.header.parent_timestamp(),
                                found: timestamp,
                            });
                        }
                    }
                    found if !options.ignore_parent_id => {
                        return Err(OpenError::ParentMismatch {
                            expected,
                            found: found.map(|f| f.unique_id),
                        })
                    }
                    _ => warnings.push(Warning::ParentIdIgnored),
                }
                Some(parent)
            }
            _ => None,
        };
        Ok(Self {
            storage,
            footer,
            size,
            layout,
            parent,
            writable: options.writable,
            barriers: options.barriers,
            warnings,
        })
    }
}

/// Reads and validates the dynamic header; returns its offset and the header.
pub(crate) fn read_header<S: Storage>(
    storage: &S,
    footer: &Footer,
    len: u64,
) -> Result<(u64, DynamicHeader), OpenError> {
    let offset = footer.data_offset().unwrap_or(u64::MAX);
    if offset.checked_add(1024).is_none_or(|end| end > len) {
        return Err(OpenError::BadHeader {
            offset,
            problem: StructureProblem::OutOfFile,
        });
    }
    let mut buf = [0u8; 1024];
    storage.read_at(offset, &mut buf)?;
    let header = DynamicHeader::read_from_bytes(&buf).expect("1024 bytes");
    validate_header(&header).map_err(|problem| OpenError::BadHeader { offset, problem })?;
    Ok((offset, header))
}

fn open_sparse<S: Storage>(
    storage: &S,
    footer: &Footer,
    len: u64,
    tail_ok: bool,
    size: u64,
    writable: bool,
) -> Result<Sparse, OpenError> {
    let (header_offset, header) = read_header(storage, footer, len)?;
    let block_size = header.block_size.get();
    if !block_size.is_power_of_two() || block_size < 512 {
        return Err(OpenError::BadBlockSize(block_size));
    }
    let entries = header.max_table_entries.get();
    let needed = size.div_ceil(u64::from(block_size));
    if u64::from(entries) < needed {
        return Err(OpenError::BatTooSmall { entries, needed });
    }
    let bat_offset = header.table_offset.get();
    let bat_bytes = u64::from(entries) * 4;
    if bat_offset
        .checked_add(bat_bytes)
        .is_none_or(|end| end > len)
    {
        return Err(OpenError::BatOutOfRange {
            offset: bat_offset,
            entries,
            file_len: len,
        });
    }
    // Bounded by the file length checked just above; on a 32-bit target that bound can still
    // exceed the address space.
    let raw_len = usize::try_from(bat_bytes).map_err(|_| OpenError::BatTooLarge { entries })?;
    let mut raw = vec![0u8; raw_len];
    storage.read_at(bat_offset, &mut raw)?;
    let bat: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    drop(raw);

    let bitmap = u64::from(bitmap_bytes(block_size));
    let span = bitmap + u64::from(block_size);
    // The data ends where the footer starts.
    let data_end = if tail_ok {
        tail_footer_offset(storage, len)?
    } else {
        len
    };
    let bat_end = (bat_offset + bat_bytes).next_multiple_of(SECTOR_SIZE);
    let metadata: [(u64, u64); 3] = [
        (0, SECTOR_SIZE),
        (header_offset, header_offset + 1024),
        (bat_offset, bat_end),
    ];
    let locators_end = header
        .parent_locators
        .iter()
        .filter_map(|l| super::locator_end(l, data_end))
        .max()
        .unwrap_or(0);
    let mut end_of_data = metadata
        .iter()
        .map(|m| m.1)
        .max()
        .unwrap_or(0)
        .max(locators_end);
    for (block, &sector) in bat.iter().enumerate() {
        if sector == BAT_UNALLOCATED {
            continue;
        }
        let start = u64::from(sector) * SECTOR_SIZE;
        let end = start + span;
        let bad = |problem| OpenError::BadBatEntry {
            block: block as u32,
            sector,
            problem,
        };
        if end > data_end {
            return Err(bad(BatProblem::BeyondEof { data_end }));
        }
        if metadata.iter().any(|&(a, b)| start < b && a < end) {
            return Err(bad(BatProblem::OverlapsMetadata));
        }
        end_of_data = end_of_data.max(end);
    }
    // Blocks that share file space: refused for writing; for reading (as qemu and libvhdi
    // read them) they are remembered, so `inspect` does not expand each alias's bitmap (a
    // 1 MB file of aliased entries made a map of 33 million extents).
    let mut starts: Vec<(u32, u32)> = bat
        .iter()
        .enumerate()
        .filter(|(_, &e)| e != BAT_UNALLOCATED)
        .map(|(b, &e)| (e, b as u32))
        .collect();
    starts.sort_unstable();
    let mut shared: Vec<u32> = Vec::new();
    // The furthest end so far, and its block: a block overlaps any earlier one reaching it.
    let mut reach: Option<(u64, u32)> = None;
    for &(sector, block) in &starts {
        let start = u64::from(sector) * SECTOR_SIZE;
        if let Some((end, other)) = reach.filter(|&(end, _)| start < end) {
            if writable {
                return Err(OpenError::BadBatEntry {
                    block,
                    sector,
                    problem: BatProblem::OverlapsBlock { other },
                });
            }
            shared.push(other);
            shared.push(block);
            if start + span <= end {
                continue;
            }
        }
        reach = Some((start + span, block));
    }
    shared.sort_unstable();
    shared.dedup();
    let blocks = bat.len();
    Ok(Sparse {
        header,
        header_offset,
        bat_offset,
        bat,
        block_size,
        bitmap_bytes: bitmap as u32,
        full: (0..blocks)
            .map(|_| core::sync::atomic::AtomicU8::new(0))
            .collect(),
        end_of_data,
        locators_end,
        shared,
    })
}
