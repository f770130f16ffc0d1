//! The positional-read seam: a WIM is read through [`ReadAt`], implemented for byte slices
//! (memory, memory maps) and, with `std`, for files.

#[cfg(feature = "std")]
use core::fmt;

/// Why a positional read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The read would pass the end of the source.
    #[error("read of {len} bytes at offset {offset} passes the end of the file ({size} bytes)")]
    Eof {
        /// Where the read started.
        offset: u64,
        /// How many bytes were wanted.
        len: usize,
        /// The size of the source.
        size: u64,
    },
    /// The operating system reported an error.
    #[cfg(feature = "std")]
    #[error("read at offset {offset} failed")]
    Os {
        /// Where the read started.
        offset: u64,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Random-access reads from an immutable source: a file, a memory map or a byte slice.
///
/// `&self` so that several threads can read one source at once (files use `pread`).
pub trait ReadAt {
    /// The size of the source in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `offset`; fails if the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        let eof = || IoError::Eof {
            offset,
            len: buf.len(),
            size: self.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        (**self).read_exact_at(buf, offset)
    }
}

#[cfg(feature = "alloc")]
impl ReadAt for alloc::vec::Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

#[cfg(feature = "alloc")]
impl<T: ReadAt + ?Sized> ReadAt for alloc::sync::Arc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        (**self).read_exact_at(buf, offset)
    }
}

/// A file opened for reading, with its size taken once at open.
#[cfg(feature = "std")]
pub struct FileSource {
    file: std::fs::File,
    size: u64,
}

#[cfg(feature = "std")]
impl FileSource {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        Self::new(std::fs::File::open(path)?)
    }

    /// Wraps an open file.
    pub fn new(file: std::fs::File) -> std::io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(FileSource { file, size })
    }
}

#[cfg(feature = "std")]
impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("size", &self.size)
            .finish()
    }
}

#[cfg(feature = "std")]
impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        use std::os::unix::fs::FileExt;
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(IoError::Eof {
                offset,
                len: buf.len(),
                size: self.size,
            });
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| IoError::Os { offset, source })
    }
}
