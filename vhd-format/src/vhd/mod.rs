//! [`Vhd`]: an open VHD of any type, readable and writable by virtual offset.

mod open;
mod rw;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::AtomicU8;

pub(crate) use open::{
    creator_sizes_by_chs, find_footer, read_footer, read_header, read_tail_footer, validate_footer,
};
pub use open::{BatProblem, OpenError, OpenOptions, SizePolicy, StructureProblem};

use crate::defs::{
    DiskType, DynamicHeader, Footer, ParentLocatorEntry, VhdTime, BAT_UNALLOCATED, SECTOR_SIZE,
};
use crate::disk::{Disk, DiskError, DiskIdentity, ParentDisk};
use crate::io::Storage;

/// Something worth knowing about an image that did not stop it from opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The footer at the end of the file is missing or invalid; the copy at offset 0 was used
    /// (typical after a crash during block allocation). `repair` rewrites the tail.
    TailFooterInvalid,
    /// The parent's timestamp differs from the one recorded when the child was made (files
    /// copied across time zones or touched by tools do this); the unique id matched.
    ParentTimestampMismatch {
        /// Recorded in the child.
        recorded: VhdTime,
        /// Found in the parent.
        found: VhdTime,
    },
    /// The parent's unique id was not checked ([`OpenOptions::ignore_parent_id`]).
    ParentIdIgnored,
    /// Some blocks share file space (`count` of them, the first being `block`): the image is
    /// corrupt, as `check` reports, but reads the way qemu and libvhdi read it. Such an
    /// image opens read-only only; `inspect` maps each of these blocks as one extent.
    BlocksShareSpace {
        /// The lowest such block.
        block: u32,
        /// How many blocks share space with another.
        count: u32,
    },
}

/// An open VHD: fixed, dynamic or differencing.
///
/// Reads and writes go through the [`Disk`] trait. A differencing disk owns its parent (a
/// `Box<dyn` [`ParentDisk`]`>`, itself possibly a differencing `Vhd`), so a chain of any depth
/// reads and writes as one disk; writes only ever go to the top. A `Vhd<S>` is `Send` and
/// `Sync` when `S` is: a disk can be handed to an I/O thread, or shared by several behind an
/// `Arc` (reads take `&self`; the sector-bitmap cache is atomic).
pub struct Vhd<S> {
    pub(crate) storage: S,
    pub(crate) footer: Footer,
    pub(crate) size: u64,
    pub(crate) layout: Layout,
    pub(crate) parent: Option<Box<dyn ParentDisk>>,
    pub(crate) writable: bool,
    pub(crate) barriers: bool,
    pub(crate) warnings: Vec<Warning>,
}

pub(crate) enum Layout {
    Fixed,
    /// Boxed: the header alone is 1 KiB.
    Sparse(Box<Sparse>),
}

// Shared by I/O threads (`Arc<Vhd<File>>`): reads take `&self`, and the only state they touch,
// the sector-bitmap cache, is atomic.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Vhd<crate::io::MemStorage>>();
    send_sync::<crate::disk::RawDisk<crate::io::MemStorage>>();
    send_sync::<Box<dyn ParentDisk>>();
    #[cfg(feature = "std")]
    send_sync::<Vhd<std::fs::File>>();
    #[cfg(feature = "std")]
    send_sync::<Vhd<&std::fs::File>>();
};

/// Per-block state of the sector-bitmap cache.
pub(crate) const BLOCK_UNKNOWN: u8 = 0;
/// Every bit of the block's bitmap is set: reads can skip the bitmap.
pub(crate) const BLOCK_FULL: u8 = 1;
/// Some bits are clear: reads consult the bitmap.
pub(crate) const BLOCK_PARTIAL: u8 = 2;

pub(crate) struct Sparse {
    pub(crate) header: DynamicHeader,
    pub(crate) header_offset: u64,
    pub(crate) bat_offset: u64,
    pub(crate) bat: Vec<u32>,
    pub(crate) block_size: u32,
    pub(crate) bitmap_bytes: u32,
    /// `BLOCK_*` per BAT entry, filled lazily.
    pub(crate) full: Vec<AtomicU8>,
    /// First byte after the last block or metadata: where the next block (and the tail footer) goes.
    pub(crate) end_of_data: u64,
    /// End (rounded up to a sector) of the furthest parent-locator payload that lay inside the
    /// data area when the disk was opened; 0 if none. Payloads outside the file are ignored
    /// here as everywhere else ([`locator_end`]).
    pub(crate) locators_end: u64,
    /// Blocks whose file space overlaps another block's, ascending (only a read-only open
    /// accepts them; usually empty).
    pub(crate) shared: Vec<u32>,
}

/// Bytes reserved for a locator's payload: the field is bytes in practice (Virtual PC, Hyper-V,
/// VirtualBox) though the spec says sectors. A value smaller than the payload length can only
/// be sectors.
pub(crate) fn locator_space(entry: &ParentLocatorEntry) -> u64 {
    let space = u64::from(entry.platform_data_space.get());
    let length = u64::from(entry.platform_data_length.get());
    if space < length {
        space * SECTOR_SIZE
    } else {
        space
    }
}

/// Where a parent locator's payload ends, rounded up to a sector: `None` for an unused entry
/// and for a payload that does not lie inside the first `data_end` bytes of the file. Every
/// reader (open, check, compact) ignores such a payload, so a hostile offset can neither make
/// arithmetic overflow nor push metadata past the end of the file.
pub(crate) fn locator_end(entry: &ParentLocatorEntry, data_end: u64) -> Option<u64> {
    if entry.platform_code.get() == 0 {
        return None;
    }
    let end = entry
        .platform_data_offset
        .get()
        .checked_add(locator_space(entry))?;
    if end > data_end {
        return None;
    }
    end.checked_next_multiple_of(SECTOR_SIZE)
}

impl<S> core::fmt::Debug for Vhd<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vhd")
            .field("disk_type", &self.footer.disk_type())
            .field("size", &self.size)
            .field("writable", &self.writable)
            .field("has_parent", &self.parent.is_some())
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Vhd<S> {
    /// The footer in effect.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// The dynamic header (dynamic and differencing disks).
    pub fn header(&self) -> Option<&DynamicHeader> {
        match &self.layout {
            Layout::Sparse(s) => Some(&s.header),
            Layout::Fixed => None,
        }
    }

    /// The disk type.
    pub fn disk_type(&self) -> DiskType {
        self.footer.disk_type()
    }

    /// `current_size` from the footer.
    pub fn current_size(&self) -> u64 {
        self.footer.current_size.get()
    }

    /// The size the CHS geometry addresses (C·H·S·512).
    pub fn chs_size(&self) -> u64 {
        self.footer.geometry().size()
    }

    /// Block size of a sparse disk.
    pub fn block_size(&self) -> Option<u32> {
        match &self.layout {
            Layout::Sparse(s) => Some(s.block_size),
            Layout::Fixed => None,
        }
    }

    /// The BAT of a sparse disk (sector numbers, [`BAT_UNALLOCATED`] for holes).
    pub fn bat(&self) -> Option<&[u32]> {
        match &self.layout {
            Layout::Sparse(s) => Some(&s.bat),
            Layout::Fixed => None,
        }
    }

    /// Number of allocated blocks of a sparse disk (0 for fixed disks).
    pub fn allocated_blocks(&self) -> usize {
        self.bat()
            .map_or(0, |b| b.iter().filter(|&&e| e != BAT_UNALLOCATED).count())
    }

    /// What was noticed while opening.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Whether the footer's saved-state flag is set.
    pub fn saved_state(&self) -> bool {
        self.footer.saved_state != 0
    }

    /// The parent of a differencing disk (its concrete type through
    /// `downcast_ref` on [`ParentDisk`]).
    pub fn parent(&self) -> Option<&dyn ParentDisk> {
        self.parent.as_deref()
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The underlying storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Gives back the storage (and drops the parent).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Splits into the storage and the parent. The parent's concrete type comes back through
    /// `downcast` on [`ParentDisk`]: after
    /// [`merge_into_parent`](crate::ops::merge_into_parent) on in-memory storage, say,
    /// `parent.downcast::<Vhd<MemStorage>>()` gives the merged parent and its bytes.
    pub fn into_parts(self) -> (S, Option<Box<dyn ParentDisk>>) {
        (self.storage, self.parent)
    }

    /// Where the tail footer belongs: the end of the data.
    pub(crate) fn footer_offset(&self) -> u64 {
        match &self.layout {
            Layout::Fixed => self.footer.current_size.get(),
            Layout::Sparse(s) => s.end_of_data,
        }
    }
}

impl<S: Storage> Disk for Vhd<S> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.read_impl(offset, buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.write_impl(offset, buf)
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(self.storage.flush()?)
    }

    fn is_unallocated(&self, offset: u64, len: u64) -> Result<bool, DiskError> {
        self.is_unallocated_impl(offset, len)
    }

    fn identity(&self) -> Option<DiskIdentity> {
        Some(DiskIdentity {
            unique_id: self.footer.unique_id(),
            timestamp: self.footer.timestamp(),
        })
    }
}
