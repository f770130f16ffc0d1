//! The [`Disk`] abstraction: a virtual block device addressed by byte offset.
//!
//! A [`Vhd`](crate::Vhd) of any type is a `Disk`; so is a [`RawDisk`] (a plain image file). A
//! differencing VHD holds its parent as a `Box<dyn Disk + Send>`, so a chain of any depth
//! behaves like one disk, and a caller can put any `Send` disk (a raw file, an in-memory model)
//! under a child.

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

#[cfg(feature = "alloc")]
impl<D: Disk + ?Sized> Disk for alloc::boxed::Box<D> {
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
