//! Reading blobs: random access by chunk, with a small cache of decompressed chunks (solid
//! chunks are up to 64 MiB and must be decompressed whole to read any byte of them).

use alloc::vec;
use alloc::vec::Vec;

use sha1::{Digest, Sha1};

use crate::blob_table::{Blob, BlobLocation, Sha1Hash};
use crate::codec::{Codec, DecompressError, Decompressor};
use crate::header::ResHdr;
use crate::io::{IoError, ReadAt};
use crate::mem::AllocError;
use crate::resource::{parse_table, table_span, ChunkTable, ResourceError};
use crate::wim::Wim;

/// Why reading a blob failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Reading the file failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A chunk table is invalid.
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// A chunk did not decompress.
    #[error("chunk at file offset {offset} (part {part})")]
    Decompress {
        /// 1-based part.
        part: u16,
        /// The chunk's file offset.
        offset: u64,
        /// The codec's error.
        #[source]
        source: DecompressError,
    },
    /// A stored (uncompressed) chunk in a resource without a codec had the wrong size.
    #[error("chunk at file offset {offset} is compressed but its resource has no codec")]
    NoCodec {
        /// Its file offset.
        offset: u64,
    },
    /// The request reaches past the end of the blob.
    #[error("read of {len} bytes at {offset} passes the end of a {size}-byte blob")]
    Range {
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// The blob's size.
        size: u64,
    },
    /// A chunk larger than the limit set with [`Wim::set_max_chunk_size`].
    #[error("chunk at file offset {offset} would decompress to {size} bytes (limit {limit})")]
    ChunkTooLarge {
        /// Its file offset.
        offset: u64,
        /// Its uncompressed size.
        size: u32,
        /// The limit.
        limit: u32,
    },
    /// The data's SHA-1 differs from the blob table's.
    #[error("blob {} has SHA-1 {} after reading", hex(expected), hex(actual))]
    Hash {
        /// The blob table's hash.
        expected: Sha1Hash,
        /// What the data hashes to.
        actual: Sha1Hash,
    },
    /// A stream references a blob the table does not have.
    #[error("blob {} is not in the blob table", hex(hash))]
    Missing {
        /// The hash.
        hash: Sha1Hash,
    },
    /// A buffer sized by the file (a chunk table, a chunk, a whole blob) is larger than
    /// the memory at hand.
    #[error(transparent)]
    OutOfMemory(#[from] AllocError),
}

/// Lower-case hex of a hash.
pub fn hex(h: &Sha1Hash) -> alloc::string::String {
    let mut s = alloc::string::String::with_capacity(40);
    for b in h {
        let d = b"0123456789abcdef";
        s.push(d[(b >> 4) as usize] as char);
        s.push(d[(b & 15) as usize] as char);
    }
    s
}

/// SHA-1 of `data`.
pub fn sha1(data: &[u8]) -> Sha1Hash {
    Sha1::digest(data).into()
}

/// Identifies a resource: part and offset.
type ResKey = (u16, u64);

/// A resource as the chunk reader sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResRef {
    pub part: u16,
    pub reshdr: ResHdr,
    /// `None`: an uncompressed resource read directly.
    pub kind: ResKind,
}

/// How a resource is stored.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ResKind {
    Uncompressed,
    Compressed {
        codec: Codec,
        chunk_size: u32,
        pipable: bool,
    },
    Solid(crate::resource::SolidHeader),
}

const CACHE_SLOTS: usize = 2;

/// Per-thread reading state: decompressors, buffers, the last chunk tables and chunks.
pub struct BlobReader<'w, R> {
    wim: &'w Wim<R>,
    decompressors: Vec<Decompressor>,
    cbuf: Vec<u8>,
    tables: Vec<(ResKey, ChunkTable)>,
    chunks: Vec<(ResKey, u64, Vec<u8>)>,
}

impl<R> core::fmt::Debug for BlobReader<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlobReader")
            .field("cached_chunks", &self.chunks.len())
            .finish()
    }
}

impl<'w, R: ReadAt> BlobReader<'w, R> {
    pub(crate) fn new(wim: &'w Wim<R>) -> Self {
        BlobReader {
            wim,
            decompressors: Vec::new(),
            cbuf: Vec::new(),
            tables: Vec::new(),
            chunks: Vec::new(),
        }
    }

    /// The WIM this reader reads.
    pub fn wim(&self) -> &'w Wim<R> {
        self.wim
    }

    /// The resource holding `blob`, and the blob's offset in it.
    pub(crate) fn locate(&self, blob: &Blob) -> Option<(ResRef, u64)> {
        match blob.location {
            BlobLocation::Resource { part, reshdr } => {
                let kind = if reshdr
                    .flags
                    .contains(crate::defs::ResourceFlags::COMPRESSED)
                {
                    let (codec, chunk_size) = self.wim.compression?;
                    ResKind::Compressed {
                        codec,
                        chunk_size,
                        pipable: self.wim.is_pipable(),
                    }
                } else {
                    ResKind::Uncompressed
                };
                Some((ResRef { part, reshdr, kind }, 0))
            }
            BlobLocation::Solid { run, offset } => {
                let (r, rel) = self.wim.solid_place(run, offset, blob.size)?;
                Some((
                    ResRef {
                        part: r.part,
                        reshdr: r.reshdr,
                        kind: ResKind::Solid(r.header),
                    },
                    rel,
                ))
            }
        }
    }

    fn source(&self, part: u16) -> &'w R {
        // Parts were checked when the blob table was read.
        self.wim
            .part(part)
            .unwrap_or_else(|| self.wim.part(1).expect("part 1"))
    }

    /// The chunk table of `r` (cached).
    pub(crate) fn table(&mut self, r: &ResRef) -> Result<&ChunkTable, ReadError> {
        let key = (r.part, r.reshdr.offset);
        if let Some(p) = self.tables.iter().position(|(k, _)| *k == key) {
            let t = self.tables.remove(p);
            self.tables.push(t);
        } else {
            let src = self.source(r.part);
            let t = match r.kind {
                ResKind::Compressed {
                    codec,
                    chunk_size,
                    pipable,
                } => {
                    let span = table_span(&r.reshdr, chunk_size, pipable)?;
                    let mut b = crate::mem::filled(0u8, crate::mem::len::<u8>(span.len)?)?;
                    src.read_exact_at(&mut b, span.offset)?;
                    parse_table(&r.reshdr, codec, chunk_size, pipable, &span, &b)?
                }
                ResKind::Solid(h) => {
                    let span = h.table_span(&r.reshdr)?;
                    let mut b = crate::mem::filled(0u8, crate::mem::len::<u8>(span.len)?)?;
                    src.read_exact_at(&mut b, span.offset)?;
                    h.parse_table(&r.reshdr, &span, &b)?
                }
                ResKind::Uncompressed => {
                    return Err(ReadError::NoCodec {
                        offset: r.reshdr.offset,
                    })
                }
            };
            if self.tables.len() >= 4 {
                self.tables.remove(0);
            }
            self.tables.push((key, t));
        }
        Ok(&self.tables.last().expect("just pushed").1)
    }

    fn decompressor(
        &mut self,
        codec: Codec,
        chunk_size: u32,
    ) -> Result<&mut Decompressor, DecompressError> {
        let i = match self.decompressors.iter().position(|d| d.codec() == codec) {
            Some(i) => i,
            None => {
                self.decompressors.push(Decompressor::new(codec));
                self.decompressors.len() - 1
            }
        };
        let d = &mut self.decompressors[i];
        if codec == Codec::Lzx && d.chunk_size() != chunk_size as usize {
            d.set_chunk_size(chunk_size as usize)?;
        }
        Ok(d)
    }

    /// Decompresses chunk `i` of `r` into `out` (exactly the chunk's size).
    pub(crate) fn decode_chunk(
        &mut self,
        r: &ResRef,
        i: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        self.decode_chunk_at(r, i, out, 0)
    }

    /// Decompresses chunk `i` of `r` into `out[at..]`, leaving `out` exactly `at` plus the
    /// chunk's size long. Bytes already there are overwritten, not zeroed first: a reused
    /// buffer costs no memset.
    pub(crate) fn decode_chunk_at(
        &mut self,
        r: &ResRef,
        i: u64,
        out: &mut Vec<u8>,
        at: usize,
    ) -> Result<(), ReadError> {
        let t = self.table(r)?;
        let (codec, chunk_size) = (t.codec, t.chunk_size);
        let Some(c) = t.chunk(i) else {
            return Err(ReadError::Range {
                offset: i,
                len: 1,
                size: t.num_chunks(),
            });
        };
        if c.usize > self.wim.max_chunk {
            return Err(ReadError::ChunkTooLarge {
                offset: c.file_offset,
                size: c.usize,
                limit: self.wim.max_chunk,
            });
        }
        let end = at
            .checked_add(c.usize as usize)
            .ok_or(AllocError::of::<u8>(u64::MAX))?;
        set_len(out, end)?;
        let out = &mut out[at..];
        let src = self.source(r.part);
        if c.csize == c.usize {
            src.read_exact_at(out, c.file_offset)?;
            return Ok(());
        }
        let Some(codec) = codec else {
            return Err(ReadError::NoCodec {
                offset: c.file_offset,
            });
        };
        let mut cbuf = core::mem::take(&mut self.cbuf);
        let res = set_len(&mut cbuf, c.csize as usize)
            .map_err(ReadError::from)
            .and_then(|()| Ok(src.read_exact_at(&mut cbuf, c.file_offset)?))
            .and_then(|()| {
                let part = r.part;
                let derr = |source| ReadError::Decompress {
                    part,
                    offset: c.file_offset,
                    source,
                };
                self.decompressor(codec, chunk_size)
                    .map_err(derr)?
                    .decompress(&cbuf, out)
                    .map_err(derr)
            });
        self.cbuf = cbuf;
        res
    }

    /// Chunk `i` of `r`, from the cache or decoded into it.
    fn cached_chunk(&mut self, r: &ResRef, i: u64) -> Result<&[u8], ReadError> {
        let key = (r.part, r.reshdr.offset);
        if let Some(p) = self
            .chunks
            .iter()
            .position(|(k, c, _)| *k == key && *c == i)
        {
            let e = self.chunks.remove(p);
            self.chunks.push(e);
        } else {
            let mut buf = if self.chunks.len() >= CACHE_SLOTS {
                self.chunks.remove(0).2
            } else {
                Vec::new()
            };
            self.decode_chunk(r, i, &mut buf)?;
            self.chunks.push((key, i, buf));
        }
        Ok(&self.chunks.last().expect("just pushed").2)
    }

    /// Fills `out` from `offset` of the blob: only the chunks covering the range are read.
    pub fn read_at(&mut self, blob: &Blob, offset: u64, out: &mut [u8]) -> Result<(), ReadError> {
        let mut done = 0usize;
        self.for_each_piece(blob, offset, out.len() as u64, &mut |piece| {
            out[done..done + piece.len()].copy_from_slice(piece);
            done += piece.len();
            Ok(())
        })
    }

    /// Calls `sink` with consecutive pieces of `[offset, offset + len)` of the blob.
    pub fn for_each_piece(
        &mut self,
        blob: &Blob,
        offset: u64,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        if offset.checked_add(len).is_none_or(|e| e > blob.size) {
            return Err(ReadError::Range {
                offset,
                len,
                size: blob.size,
            });
        }
        if len == 0 {
            return Ok(());
        }
        let (r, base) = self
            .locate(blob)
            .ok_or(ReadError::Missing { hash: blob.hash })?;
        let start = base + offset;
        if let ResKind::Uncompressed = r.kind {
            let src = self.source(r.part);
            let mut buf = vec![0u8; len.min(1 << 20) as usize];
            let mut pos = 0;
            while pos < len {
                let n = (len - pos).min(buf.len() as u64) as usize;
                src.read_exact_at(&mut buf[..n], r.reshdr.offset + start + pos)?;
                sink(&buf[..n])?;
                pos += n as u64;
            }
            return Ok(());
        }
        let chunk_size = self.table(&r)?.chunk_size as u64;
        let end = start + len;
        let mut pos = start;
        while pos < end {
            let i = pos / chunk_size;
            let chunk_start = i * chunk_size;
            let c = self.cached_chunk(&r, i)?;
            let from = (pos - chunk_start) as usize;
            let to = ((end - chunk_start) as usize).min(c.len());
            if from >= to {
                return Err(ReadError::Range {
                    offset,
                    len,
                    size: blob.size,
                });
            }
            sink(&c[from..to])?;
            pos = chunk_start + to as u64;
        }
        Ok(())
    }

    /// Reads the whole blob into memory and checks its SHA-1. The buffer is reserved whole
    /// first: a size the system cannot provide is [`ReadError::OutOfMemory`].
    pub fn read_verified(&mut self, blob: &Blob) -> Result<Vec<u8>, ReadError> {
        let mut out = crate::mem::with_capacity(crate::mem::len::<u8>(blob.size)?)?;
        let mut h = Sha1::new();
        self.for_each_piece(blob, 0, blob.size, &mut |p| {
            h.update(p);
            out.extend_from_slice(p);
            Ok(())
        })?;
        check_hash(&blob.hash, h.finalize().into())?;
        Ok(out)
    }

    /// Reads the whole blob through `sink` and checks its SHA-1 at the end.
    pub fn stream_verified(
        &mut self,
        blob: &Blob,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let mut h = Sha1::new();
        self.for_each_piece(blob, 0, blob.size, &mut |p| {
            h.update(p);
            sink(p)
        })?;
        check_hash(&blob.hash, h.finalize().into())
    }
}

/// Compares a computed hash with the expected one.
pub(crate) fn check_hash(expected: &Sha1Hash, actual: Sha1Hash) -> Result<(), ReadError> {
    if *expected != actual {
        return Err(ReadError::Hash {
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

/// Makes `v` exactly `len` bytes long, zero-filling only what it grows by; the growth is
/// reserved fallibly.
pub(crate) fn set_len(v: &mut Vec<u8>, len: usize) -> Result<(), AllocError> {
    crate::mem::resize(v, len, 0)
}
