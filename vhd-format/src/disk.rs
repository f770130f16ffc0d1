//! The [`Disk`] abstraction: a virtual block device addressed by byte offset.
//!
//! A [`Vhd`](crate::Vhd) of any type is a `Disk`; so is a [`RawDisk`] (a plain image file). A
//! differencing VHD holds its parent as a `Box<dyn ParentDisk>` (a [`Disk`] that is `Send +
//! Sync + 'static`), so a chain of any depth behaves like one disk, and a caller can put any
//! such disk (a raw file, an in-memory model) under a child, and take it back out by its type.

use alloc::boxed::Box;
use core::any::Any;

use crate::defs::{Uuid, VhdTime, SECTOR_SIZE};
use crate::io::{IoError, Storage};

/// An error reading or writing a disk's virtual contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// The range is not inside the disk.
    #[error("range of {len} bytes at offset {offset} is outside the disk ({size} bytes)")]
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// The disk's virtual size.
        size: u64,
    },
    /// The disk was opened read-only.
    #[error("the disk is read-only")]
    ReadOnly,
    /// A block would be placed beyond what a VHD can address (32-bit sector numbers in the BAT).
    #[error(
        "the image file cannot grow to {needed} bytes: VHD block offsets are 32-bit sector numbers"
    )]
    FileTooLarge {
        /// File length the allocation needed.
        needed: u64,
    },
    /// The disk's metadata was found to be inconsistent while using it.
    #[error(
        "corrupt image: block {block} at sector {sector} ends beyond the file ({file_len} bytes)"
    )]
    BlockBeyondEof {
        /// Block index.
        block: u32,
        /// Its BAT entry.
        sector: u32,
        /// The file's length.
        file_len: u64,
    },
    /// The storage failed.
    #[error("storage error")]
    Io(#[from] IoError),
}

/// The identity a VHD parent must present: what a child's header links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskIdentity {
    /// The footer's unique id.
    pub unique_id: Uuid,
    /// The footer's timestamp.
    pub timestamp: VhdTime,
}

/// A virtual disk: a fixed number of bytes, read and written by offset.
pub trait Disk {
    /// Virtual size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` with the bytes at virtual `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;

    /// Writes `buf` at virtual `offset`.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError>;

    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), DiskError>;

    /// Whether the range is known to read as zeros because nothing in this disk (or below it)
    /// holds data there. `false` means "unknown or holds data" and is always a safe answer.
    fn is_unallocated(&self, offset: u64, len: u64) -> Result<bool, DiskError> {
        let _ = (offset, len);
        Ok(false)
    }

    /// The VHD identity of this disk, if it is a VHD.
    fn identity(&self) -> Option<DiskIdentity> {
        None
    }

    /// Reads whole sectors starting at sector `lba`.
    fn read_sectors(&self, lba: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let offset = lba.checked_mul(SECTOR_SIZE).ok_or(DiskError::OutOfRange {
            offset: u64::MAX,
            len: buf.len() as u64,
            size: self.size(),
        })?;
        self.read_at(offset, buf)
    }

    /// Writes whole sectors starting at sector `lba`.
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> Result<(), DiskError> {
        let offset = lba.checked_mul(SECTOR_SIZE).ok_or(DiskError::OutOfRange {
            offset: u64::MAX,
            len: buf.len() as u64,
            size: self.size(),
        })?;
        self.write_at(offset, buf)
    }
}

/// A [`Disk`] that can be a differencing disk's parent: implemented for every `Disk + Send +
/// Sync + 'static` type; there is nothing to implement.
///
/// `Send + Sync` because the child owns the parent and is itself `Send` and `Sync` when its
/// storage is: a `Vhd<File>` can be shared by I/O threads behind an `Arc` (reads take `&self`;
/// the bitmap cache is atomic). A caller's own parent disk must therefore keep any interior
/// mutability in atomics or locks, not `Cell`/`RefCell`.
///
/// `'static` so that the parent's concrete type can be recovered from the `Box<dyn
/// ParentDisk>` that [`Vhd::into_parts`](crate::Vhd::into_parts) returns (after
/// [`merge_into_parent`](crate::ops::merge_into_parent), say) with
/// [`downcast`](#method.downcast), or borrowed through [`Vhd::parent`](crate::Vhd::parent)
/// with [`downcast_ref`](#method.downcast_ref):
///
/// ```
/// use vhd_format::defs::Uuid;
/// use vhd_format::{create_differencing, create_dynamic, CreateOptions, Disk, MemStorage, ParentLink, Vhd};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let base = create_dynamic(MemStorage::new(), &CreateOptions::new(1 << 20).unique_id(Uuid([1; 16])))?;
/// let id = base.identity().expect("a VHD has an identity");
/// let link = ParentLink {
///     unique_id: id.unique_id,
///     timestamp: id.timestamp,
///     name: "base.vhd".into(),
///     relative_path: None,
///     absolute_path: None,
/// };
/// let options = CreateOptions::new(0).unique_id(Uuid([2; 16]));
/// let child = create_differencing(MemStorage::new(), Box::new(base), &link, &options)?;
///
/// // Borrowed:
/// let parent = child.parent().expect("a differencing disk has a parent");
/// assert!(parent.downcast_ref::<Vhd<MemStorage>>().is_some());
///
/// // Owned: the parent's storage, bytes and all.
/// let (_child_storage, parent) = child.into_parts();
/// let base = parent.expect("a parent").downcast::<Vhd<MemStorage>>().expect("the base");
/// let bytes: Vec<u8> = base.into_storage().into_vec();
/// assert_eq!(&bytes[..8], b"conectix");
/// # Ok(())
/// # }
/// ```
///
/// The type to ask for is the one that was boxed: a parent passed as `Box::new(vhd)` comes
/// back as `Vhd<S>`.
pub trait ParentDisk: Disk + Send + Sync + 'static {
    /// This disk as `Any` (what [`downcast_ref`](#method.downcast_ref) uses).
    #[doc(hidden)]
    fn as_any(&self) -> &(dyn Any + Send + Sync);

    /// This disk as `Any` (what [`downcast_mut`](#method.downcast_mut) uses).
    #[doc(hidden)]
    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync);

    /// The boxed disk as `Box<dyn Any>` (what [`downcast`](#method.downcast) uses).
    #[doc(hidden)]
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync>;
}

impl<D: Disk + Send + Sync + 'static> ParentDisk for D {
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync> {
        self
    }
}

impl dyn ParentDisk {
    // The calls below name `ParentDisk::…` on `dyn ParentDisk` explicitly: a `Box<dyn
    // ParentDisk>` is itself a `ParentDisk` (through the blanket impl), so method syntax on the
    // box would view the box, not the disk in it.

    /// The parent as its concrete type `D`, if it is one.
    pub fn downcast_ref<D: ParentDisk>(&self) -> Option<&D> {
        ParentDisk::as_any(self).downcast_ref()
    }

    /// The parent as its concrete type `D`, mutably, if it is one.
    pub fn downcast_mut<D: ParentDisk>(&mut self) -> Option<&mut D> {
        ParentDisk::as_any_mut(self).downcast_mut()
    }

    /// The boxed parent as its concrete type `D`; the box unchanged if it is not one.
    pub fn downcast<D: ParentDisk>(self: Box<Self>) -> Result<Box<D>, Box<Self>> {
        if !ParentDisk::as_any(&*self).is::<D>() {
            return Err(self);
        }
        // `as_any` and `into_any` view the same value: every sized disk gets them from the one
        // blanket impl above.
        Ok(ParentDisk::into_any(self)
            .downcast()
            .expect("as_any and into_any agree"))
    }
}

impl core::fmt::Debug for dyn ParentDisk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ParentDisk")
            .field("size", &self.size())
            .field("identity", &self.identity())
            .finish_non_exhaustive()
    }
}

/// Checks that `[offset, offset + len)` lies inside a disk of `size` bytes.
pub(crate) fn check_range(offset: u64, len: usize, size: u64) -> Result<(), DiskError> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DiskError::OutOfRange {
            offset,
            len: len as u64,
            size,
        }),
    }
}

impl<D: Disk + ?Sized> Disk for Box<D> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        (**self).write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        (**self).flush()
    }
    fn is_unallocated(&self, offset: u64, len: u64) -> Result<bool, DiskError> {
        (**self).is_unallocated(offset, len)
    }
    fn identity(&self) -> Option<DiskIdentity> {
        (**self).identity()
    }
}

/// A raw image: the storage's bytes are the disk's bytes.
#[derive(Debug)]
pub struct RawDisk<S> {
    storage: S,
    size: u64,
    writable: bool,
}

impl<S: Storage> RawDisk<S> {
    /// A raw disk over all of `storage`.
    pub fn new(storage: S, writable: bool) -> Result<Self, IoError> {
        let size = storage.len()?;
        Ok(Self {
            storage,
            size,
            writable,
        })
    }

    /// The storage, back.
    pub fn into_inner(self) -> S {
        self.storage
    }
}

impl<S: Storage> Disk for RawDisk<S> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        Ok(self.storage.read_at(offset, buf)?)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        if !self.writable {
            return Err(DiskError::ReadOnly);
        }
        check_range(offset, buf.len(), self.size)?;
        Ok(self.storage.write_at(offset, buf)?)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(self.storage.flush()?)
    }
}
