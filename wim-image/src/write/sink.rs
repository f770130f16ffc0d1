//! The positional-write seam: a WIM is written through [`WriteAt`], implemented for byte
//! vectors (memory) and, with `std`, for files.
//!
//! Writes go to explicit offsets; [`WriteAt::sync`] is the ordering barrier of the
//! write-in-progress protocol (everything written before it is durable before anything
//! written after it). A test can wrap a sink to drop every write after the n-th and so
//! simulate a crash at each write boundary.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// Why a write (or a read of data written before) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink cannot hold the data (a fixed buffer, or an offset beyond what memory holds).
    #[error("write of {len} bytes at offset {offset} does not fit the output")]
    Full {
        /// Where the write started.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// Reading back passed the end of what was written.
    #[error("read of {len} bytes at offset {offset} passes the end of the output ({size} bytes)")]
    Eof {
        /// Where the read started.
        offset: u64,
        /// How many bytes.
        len: u64,
        /// The output's size.
        size: u64,
    },
    /// The caller's device (a [`WriteAt`] of its own, such as a block driver in firmware)
    /// failed, with its own code and what the code means. Present in every build, so a
    /// `no_std` sink can report its faults; with `std`, an `std::io::Error` goes in
    /// `SinkError::Os` instead.
    #[error("device error at offset {offset}: {reason} (code {code:#x})")]
    Device {
        /// Offset of the failed operation (0 for `sync`).
        offset: u64,
        /// The device's status or error code.
        code: u32,
        /// What the code means, for messages (e.g. `"media error"`).
        reason: &'static str,
    },
    /// The operating system reported an error.
    #[cfg(feature = "std")]
    #[error("{op} of {len} bytes at offset {offset} failed")]
    Os {
        /// `"write"`, `"read"`, `"sync"` or `"truncate"`.
        op: &'static str,
        /// Where.
        offset: u64,
        /// How many bytes.
        len: u64,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Random-access output with read-back (for the integrity table, which hashes what was
/// written).
pub trait WriteAt {
    /// The current size of the output.
    fn size(&self) -> u64;

    /// Writes all of `buf` at `offset`, growing the output (with zeros) if needed.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<(), SinkError>;

    /// Reads back `buf.len()` bytes at `offset`.
    fn read_back(&self, buf: &mut [u8], offset: u64) -> Result<(), SinkError>;

    /// Cuts or extends the output to `len` bytes.
    fn set_len(&mut self, len: u64) -> Result<(), SinkError>;

    /// Makes every write so far durable before any later one (a file's `fsync`).
    fn sync(&mut self) -> Result<(), SinkError>;
}

impl<T: WriteAt + ?Sized> WriteAt for &mut T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<(), SinkError> {
        (**self).write_all_at(buf, offset)
    }
    fn read_back(&self, buf: &mut [u8], offset: u64) -> Result<(), SinkError> {
        (**self).read_back(buf, offset)
    }
    fn set_len(&mut self, len: u64) -> Result<(), SinkError> {
        (**self).set_len(len)
    }
    fn sync(&mut self) -> Result<(), SinkError> {
        (**self).sync()
    }
}

#[cfg(feature = "alloc")]
impl WriteAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<(), SinkError> {
        let full = || SinkError::Full {
            offset,
            len: buf.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| full())?;
        let end = start.checked_add(buf.len()).ok_or_else(full)?;
        if end > self.len() {
            crate::mem::resize(self, end, 0).map_err(|_| full())?;
        }
        self[start..end].copy_from_slice(buf);
        Ok(())
    }

    fn read_back(&self, buf: &mut [u8], offset: u64) -> Result<(), SinkError> {
        let eof = || SinkError::Eof {
            offset,
            len: buf.len() as u64,
            size: self.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> Result<(), SinkError> {
        let full = || SinkError::Full {
            offset: len,
            len: 0,
        };
        let n = usize::try_from(len).map_err(|_| full())?;
        crate::mem::resize(self, n, 0).map_err(|_| full())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(feature = "std")]
impl WriteAt for std::fs::File {
    fn size(&self) -> u64 {
        self.metadata().map_or(0, |m| m.len())
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<(), SinkError> {
        crate::io::file_io::write_all_at(self, buf, offset).map_err(|source| SinkError::Os {
            op: "write",
            offset,
            len: buf.len() as u64,
            source,
        })
    }

    fn read_back(&self, buf: &mut [u8], offset: u64) -> Result<(), SinkError> {
        crate::io::file_io::read_exact_at(self, buf, offset).map_err(|source| SinkError::Os {
            op: "read",
            offset,
            len: buf.len() as u64,
            source,
        })
    }

    fn set_len(&mut self, len: u64) -> Result<(), SinkError> {
        std::fs::File::set_len(self, len).map_err(|source| SinkError::Os {
            op: "truncate",
            offset: len,
            len: 0,
            source,
        })
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.sync_data().map_err(|source| SinkError::Os {
            op: "sync",
            offset: 0,
            len: 0,
            source,
        })
    }
}
