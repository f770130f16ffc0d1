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
    /// The caller's device (a [`ReadAt`] of its own, such as a block driver in firmware)
    /// failed, with its own code and what the code means. Present in every build, so a
    /// `no_std` source can report its faults; with `std`, an `std::io::Error` goes in
    /// `IoError::Os` instead.
    #[error("device error at offset {offset}: {reason} (code {code:#x})")]
    Device {
        /// Where the read started.
        offset: u64,
        /// The device's status or error code.
        code: u32,
        /// What the code means, for messages (e.g. `"media error"`).
        reason: &'static str,
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
        file_io::read_exact_at(&self.file, buf, offset)
            .map_err(|source| IoError::Os { offset, source })
    }
}

/// Positional reads and writes on a file, per platform: `pread`/`pwrite` on Unix (no shared
/// cursor); `seek_read`/`seek_write` in a loop on Windows (they move the cursor, which nothing
/// here relies on); elsewhere a seek followed by a read or write, made one step by a lock
/// (the cursor is shared, and a [`FileSource`] is read from several threads at once).
#[cfg(all(feature = "std", unix))]
pub(crate) mod file_io {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        file.read_exact_at(buf, offset)
    }

    pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }
}

/// See the Unix version.
#[cfg(all(feature = "std", windows))]
pub(crate) mod file_io {
    use std::fs::File;
    use std::io;
    use std::os::windows::fs::FileExt;

    pub(crate) fn read_exact_at(
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

    pub(crate) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
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

/// See the Unix version.
#[cfg(all(feature = "std", not(any(unix, windows))))]
pub(crate) mod file_io {
    use std::fs::File;
    use std::io::{self, Read, Seek, SeekFrom, Write};
    use std::sync::Mutex;

    /// Makes each seek and the read or write after it one step for every file this crate
    /// touches (a per-file lock would need state a `File` does not have).
    static CURSOR: Mutex<()> = Mutex::new(());

    pub(crate) fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let _cursor = CURSOR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }

    pub(crate) fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let _cursor = CURSOR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(buf)
    }
}
