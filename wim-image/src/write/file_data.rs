//! File data and times from the operating system, on every platform `std` supports: a
//! [`Content::File`](super::image::Content::File) stream is read from its path when written,
//! and a new WIM's timestamp is the system clock's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha1::{Digest, Sha1};

use crate::blob_table::Sha1Hash;
use crate::defs::FILETIME_UNIX_EPOCH;

use super::progress::Meter;
use super::resource::{BlobOut, Source};
use super::{WriteAt, WriteError};

/// Files up to this size are read whole and hashed before writing (duplicates cost no
/// write); larger ones are hashed while written.
const PRELOAD_LIMIT: u64 = 8 << 20;

/// FILETIME of a UNIX time.
pub fn unix_to_filetime(secs: i64, nanos: i64) -> u64 {
    let t = secs as i128 * 10_000_000 + (nanos / 100) as i128 + FILETIME_UNIX_EPOCH as i128;
    t.clamp(0, u64::MAX as i128) as u64
}

/// The current time as a FILETIME.
pub fn filetime_now() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    unix_to_filetime(d.as_secs() as i64, d.subsec_nanos() as i64)
}

/// Writes a captured file's data (checking it still has the scanned size).
///
/// Files up to [`PRELOAD_LIMIT`] are read whole and hashed before anything is written.
/// Larger ones are streamed and hashed while written. With `prehash` (the caller knows of
/// another blob of the same size, so this one may be a duplicate), a large file is first
/// read once only to hash it: a duplicate then costs a read instead of a compression.
/// wimlib decides the same way, by size.
///
/// `meter` (if the progress counts this file) is told of the bytes as they are handed to
/// the writer; a pass that only hashes reports (and may be cancelled) without counting.
pub(crate) fn write_file<W: WriteAt>(
    blobs: &mut BlobOut<W>,
    path: &Path,
    size: u64,
    refs: u32,
    prehash: bool,
    mut meter: Option<&mut Meter<'_>>,
) -> Result<Sha1Hash, WriteError> {
    let err = |source| WriteError::Source {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(err)?;
    if f.metadata().map_err(err)?.len() != size {
        return Err(WriteError::Changed {
            path: path.to_path_buf(),
        });
    }
    if size <= PRELOAD_LIMIT {
        let mut buf = vec![0u8; size as usize];
        f.read_exact(&mut buf).map_err(err)?;
        let mut tick = |n| meter.as_mut().map_or(Ok(()), |m| m.stored(n));
        return blobs.add_blob(Source::slice(&buf).ticking(Some(&mut tick)), refs);
    }
    let known = if prehash {
        let mut tick = |n| meter.as_mut().map_or(Ok(()), |m| m.read(n));
        let hash = hash_file(&mut f, size, &mut tick, err)?;
        if blobs.add_ref(&hash, refs) {
            return Ok(hash);
        }
        f.seek(SeekFrom::Start(0)).map_err(err)?;
        Some(hash)
    } else {
        None
    };
    let mut fill = |buf: &mut [u8]| f.read_exact(buf).map_err(err);
    let mut tick = |n| meter.as_mut().map_or(Ok(()), |m| m.stored(n));
    let src = Source::reader(size, &mut fill).ticking(Some(&mut tick));
    let hash = blobs.add_blob(src, refs)?;
    if known.is_some_and(|k| k != hash) {
        return Err(WriteError::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok(hash)
}

/// The SHA-1 of the first `size` bytes of `f`, read in 1 MiB pieces, each told to `tick`
/// (a read failing is `err`'s error).
fn hash_file(
    f: &mut File,
    size: u64,
    tick: &mut dyn FnMut(u64) -> Result<(), WriteError>,
    err: impl Fn(std::io::Error) -> WriteError,
) -> Result<Sha1Hash, WriteError> {
    let mut h = Sha1::new();
    let mut buf = vec![0u8; size.min(1 << 20) as usize];
    let mut left = size;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        f.read_exact(&mut buf[..n]).map_err(&err)?;
        h.update(&buf[..n]);
        left -= n as u64;
        tick(n as u64)?;
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetimes() {
        assert_eq!(unix_to_filetime(0, 0), FILETIME_UNIX_EPOCH);
        assert_eq!(unix_to_filetime(1, 250), FILETIME_UNIX_EPOCH + 10_000_002);
    }
}
