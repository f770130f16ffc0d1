//! The positional-I/O seam every VHD operation goes through.
//!
//! [`Storage`] is deliberately small: exact reads and writes at absolute offsets, the length,
//! truncation/extension and a durability barrier. It is implemented for `&mut S` and `Box<S>`
//! of any storage `S`, for [`MemStorage`] (an in-memory buffer, for tests and `no_std` users)
//! and, with `std`, for [`File`] and `&File` (positional `pread`/`pwrite` on Unix, so no shared
//! seek cursor to race on; `seek_read`/`seek_write` on Windows; elsewhere a seek then a read or
//! write, under a lock). `&File` works because positional I/O needs no `&mut`: `Vhd::open(&file,
//! …)` leaves the file with the caller. A shared `&MemStorage` is not a storage: writing it
//! needs `&mut`.
//!
//! A caller's own storage (a block device in firmware, say) reports its faults as
//! [`IoError::Device`], in every build.
//!
#![cfg_attr(feature = "std", doc = "[`File`]: std::fs::File")]
#![cfg_attr(not(feature = "std"), doc = "[`File`]: crate#features")]
#![cfg_attr(not(feature = "alloc"), doc = "[`MemStorage`]: crate#features")]

#[cfg(feature = "alloc")]
use alloc::{boxed::Box, vec::Vec};

/// An error from the storage under a VHD.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A read reached past the end of the storage.
    #[error("read of {len} bytes at offset {offset} runs past the end of the storage ({storage_len} bytes)")]
    UnexpectedEof {
        /// Offset of the read.
        offset: u64,
        /// Bytes asked for.
        len: usize,
        /// Length of the storage.
        storage_len: u64,
    },
    /// The storage refuses writes.
    #[error("the storage is read-only")]
    ReadOnly,
    /// The storage cannot grow to the length asked for.
    #[error("the storage cannot hold {requested} bytes (limit {limit})")]
    NoSpace {
        /// Length asked for.
        requested: u64,
        /// The storage's limit.
        limit: u64,
    },
    /// The storage is gone (e.g. a simulated power cut in a crash test).
    #[error("the storage is disconnected")]
    Disconnected,
    /// The device under a caller's own [`Storage`] failed, with the device's status code and
    /// what it means. Present in every build, so a `no_std` block driver can report its
    /// faults; with `std`, an `std::io::Error` goes in `IoError::Os` instead.
    #[error("device error at offset {offset}: {reason} (code {code:#x})")]
    Device {
        /// Offset of the failed operation (0 for `len`/`flush`).
        offset: u64,
        /// The device's status or error code.
        code: u32,
        /// What the code means, for messages (e.g. `"media error"`).
        reason: &'static str,
    },
    /// An operating-system error.
    #[cfg(feature = "std")]
    #[error("i/o error at offset {offset}")]
    Os {
        /// Offset of the failed operation (0 for `len`/`flush`).
        offset: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Positional reads and writes on a file-like object.
///
/// Reads take `&self` so that a disk can be read through shared references; writes take
/// `&mut self`. Implementations must make `read_at` exact: a short read is
/// [`IoError::UnexpectedEof`], never a partially filled buffer.
// `len` is a file length, not a collection size; an `is_empty` would mean nothing useful.
#[allow(clippy::len_without_is_empty)]
pub trait Storage {
    /// Fills `buf` from `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes all of `buf` at `offset`, extending the storage if needed.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError>;
    /// The current length in bytes.
    fn len(&self) -> Result<u64, IoError>;
    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&mut self, len: u64) -> Result<(), IoError>;
    /// Makes every completed write durable before any later one.
    fn flush(&mut self) -> Result<(), IoError>;
}

impl<T: Storage + ?Sized> Storage for &mut T {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write_at(offset, buf)
    }
    fn len(&self) -> Result<u64, IoError> {
        (**self).len()
    }
    fn set_len(&mut self, len: u64) -> Result<(), IoError> {
        (**self).set_len(len)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
}

#[cfg(feature = "alloc")]
impl<T: Storage + ?Sized> Storage for Box<T> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write_at(offset, buf)
    }
    fn len(&self) -> Result<u64, IoError> {
        (**self).len()
    }
    fn set_len(&mut self, len: u64) -> Result<(), IoError> {
        (**self).set_len(len)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
}

/// An in-memory [`Storage`] (a growable byte vector) with an optional size limit.
#[cfg(feature = "alloc")]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MemStorage {
    data: Vec<u8>,
    limit: Option<u64>,
}

#[cfg(feature = "alloc")]
impl MemStorage {
    /// An empty buffer with no size limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer holding `data`.
    pub fn from_vec(data: Vec<u8>) -> Self {
        Self { data, limit: None }
    }

    /// Refuses to grow beyond `limit` bytes (writes past it fail with [`IoError::NoSpace`]).
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// The bytes, by value.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    /// Grows the bytes to `len` (never past the limit, nor past what this platform can
    /// address: a caller's limit above `isize::MAX` is held to it, so every length that passes
    /// fits a `usize`, also on 32-bit targets), fallibly: a length the allocator refuses is
    /// `NoSpace`, not an abort.
    fn grow_to(&mut self, len: u64) -> Result<(), IoError> {
        let limit = self.limit.unwrap_or(u64::MAX).min(isize::MAX as u64);
        let no_space = || IoError::NoSpace {
            requested: len,
            limit,
        };
        if len > limit {
            return Err(no_space());
        }
        let len = usize::try_from(len).map_err(|_| no_space())?;
        if let Some(more) = len.checked_sub(self.data.len()).filter(|&n| n > 0) {
            self.data.try_reserve_exact(more).map_err(|_| no_space())?;
            self.data.resize(len, 0);
        }
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl core::fmt::Debug for MemStorage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemStorage")
            .field("len", &self.data.len())
            .field("limit", &self.limit)
            .finish()
    }
}

#[cfg(feature = "alloc")]
impl Storage for MemStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let eof = || IoError::UnexpectedEof {
            offset,
            len: buf.len(),
            storage_len: self.data.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = self.data.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(IoError::NoSpace {
                requested: u64::MAX,
                limit: self.limit.unwrap_or(u64::MAX),
            })?;
        self.grow_to(end)?;
        // `grow_to` succeeded, so `offset <= end <= isize::MAX`: both fit a `usize`.
        self.data[offset as usize..end as usize].copy_from_slice(buf);
        Ok(())
    }

    fn len(&self) -> Result<u64, IoError> {
        Ok(self.data.len() as u64)
    }

    fn set_len(&mut self, len: u64) -> Result<(), IoError> {
        self.grow_to(len)?;
        self.data.truncate(len as usize);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// `std::fs::File` storage: every operation works through a shared reference (positional
/// I/O), so both `File` and `&File` are [`Storage`]; a `Vhd<&File>` leaves the file with the
/// caller.
#[cfg(feature = "std")]
mod file_storage {
    use std::fs::File;

    use super::{file_io, IoError, Storage};

    fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        file_io::read_exact_at(file, buf, offset).map_err(|source| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                IoError::UnexpectedEof {
                    offset,
                    len: buf.len(),
                    storage_len: file.metadata().map_or(0, |m| m.len()),
                }
            } else {
                IoError::Os { offset, source }
            }
        })
    }

    fn write_at(file: &File, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        file_io::write_all_at(file, buf, offset).map_err(|source| IoError::Os { offset, source })
    }

    fn len(file: &File) -> Result<u64, IoError> {
        file.metadata()
            .map(|m| m.len())
            .map_err(|source| IoError::Os { offset: 0, source })
    }

    fn set_len(file: &File, len: u64) -> Result<(), IoError> {
        file.set_len(len).map_err(|source| IoError::Os {
            offset: len,
            source,
        })
    }

    fn flush(file: &File) -> Result<(), IoError> {
        file.sync_data()
            .map_err(|source| IoError::Os { offset: 0, source })
    }

    /// `Storage` for `File` and `&File` alike: positional I/O on a file takes `&self`.
    macro_rules! file_storage {
        ($($t:ty),*) => {$(
            impl Storage for $t {
                fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
                    read_at(self, offset, buf)
                }
                fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
                    write_at(self, offset, buf)
                }
                fn len(&self) -> Result<u64, IoError> {
                    len(self)
                }
                fn set_len(&mut self, new_len: u64) -> Result<(), IoError> {
                    set_len(self, new_len)
                }
                fn flush(&mut self) -> Result<(), IoError> {
                    flush(self)
                }
            }
        )*};
    }
    file_storage!(File, &File);
}

/// Positional reads and writes on a file, per platform: `pread`/`pwrite` on Unix (no shared
/// cursor), `seek_read`/`seek_write` on Windows (they move the cursor, which nothing here
/// relies on), and elsewhere a seek followed by a read or write, made one step by a lock (the
/// cursor is shared, and a `Vhd<File>` may be read from several threads at once).
#[cfg(all(feature = "std", unix))]
mod file_io {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        file.read_exact_at(buf, offset)
    }

    pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }
}

#[cfg(all(feature = "std", windows))]
mod file_io {
    use std::fs::File;
    use std::io;
    use std::os::windows::fs::FileExt;

    pub(super) fn read_exact_at(
        file: &File,
        mut buf: &mut [u8],
        mut offset: u64,
    ) -> io::Result<()> {
        while !buf.is_empty() {
            match file.seek_read(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(super) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match file.seek_write(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(all(feature = "std", not(any(unix, windows))))]
mod file_io {
    use std::fs::File;
    use std::io::{self, Read, Seek, SeekFrom, Write};
    use std::sync::Mutex;

    /// Makes each seek and the read or write after it one step for every file this crate
    /// touches (a per-file lock would need state a `File` does not have).
    static CURSOR: Mutex<()> = Mutex::new(());

    pub(super) fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let _cursor = CURSOR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }

    pub(super) fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let _cursor = CURSOR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length the allocator cannot give (a header's claimed size, say) is `NoSpace`, not an
    /// abort; and no limit lets a length past `isize::MAX` through (on a 32-bit target such a
    /// length was cut to its low bits and the bytes written at the wrong offset).
    #[test]
    fn mem_storage_growth_is_fallible_and_addressable() {
        let mut m = MemStorage::new();
        assert!(matches!(
            m.set_len(1 << 62),
            Err(IoError::NoSpace { requested, .. }) if requested == 1 << 62
        ));
        assert!(matches!(
            m.write_at((1 << 62) - 1, b"x"),
            Err(IoError::NoSpace { .. })
        ));
        let mut m = MemStorage::new().with_limit(u64::MAX);
        assert!(matches!(
            m.write_at(u64::MAX - 8, b"x"),
            Err(IoError::NoSpace { limit, .. }) if limit == isize::MAX as u64
        ));
        assert_eq!(m.len().unwrap(), 0);
        m.write_at(3, b"ok").unwrap();
        assert_eq!(m.len().unwrap(), 5);
    }

    #[test]
    fn mem_storage_reads_are_exact_and_writes_extend() {
        let mut m = MemStorage::new().with_limit(4096);
        m.write_at(10, b"abc").unwrap();
        assert_eq!(m.len().unwrap(), 13);
        let mut buf = [0u8; 4];
        m.read_at(9, &mut buf).unwrap();
        assert_eq!(&buf, b"\0abc");
        assert!(matches!(
            m.read_at(11, &mut buf),
            Err(IoError::UnexpectedEof {
                offset: 11,
                len: 4,
                storage_len: 13
            })
        ));
        assert!(matches!(
            m.read_at(u64::MAX, &mut buf),
            Err(IoError::UnexpectedEof { .. })
        ));
        assert!(matches!(
            m.write_at(4095, b"xy"),
            Err(IoError::NoSpace { .. })
        ));
        assert!(matches!(
            m.write_at(u64::MAX, b"xy"),
            Err(IoError::NoSpace { .. })
        ));
        m.set_len(2).unwrap();
        assert_eq!(m.as_slice(), &[0, 0]);
    }
}
