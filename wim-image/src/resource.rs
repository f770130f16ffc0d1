//! Chunked resources: the chunk tables of non-solid compressed resources (4- or 8-byte
//! offsets, at the start, or at the end in pipable WIMs) and of solid resources (a 16-byte
//! header and one 4-byte compressed size per chunk).
//!
//! Everything here works on bytes already read; the reader decides what to read.

use alloc::vec::Vec;

use crate::codec::Codec;
use crate::defs::{CompressionFormat, SolidHeaderDisk};
use crate::header::{check_chunk_size, ResHdr};

/// Why a resource's layout was rejected. Offsets are absolute file offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// The resource does not fit in its file.
    #[error("resource at offset {offset} of {size} bytes passes the end of the file ({file_size} bytes)")]
    OutOfFile {
        /// Its offset.
        offset: u64,
        /// Its stored size.
        size: u64,
        /// The file's size.
        file_size: u64,
    },
    /// An uncompressed resource whose stored and uncompressed sizes differ.
    #[error("uncompressed resource at offset {offset}: stored size {size} differs from its size {uncompressed}")]
    SizeMismatch {
        /// Its offset.
        offset: u64,
        /// Stored size.
        size: u64,
        /// Uncompressed size.
        uncompressed: u64,
    },
    /// The chunk table does not fit in the resource, or the chunks cannot fit after it.
    #[error(
        "resource at offset {offset}: chunk table for {chunks} chunks does not fit in {size} bytes"
    )]
    ChunkTableSize {
        /// The resource's offset.
        offset: u64,
        /// Number of chunks.
        chunks: u64,
        /// Its stored size.
        size: u64,
    },
    /// A chunk whose compressed size is zero or larger than its uncompressed size, or that
    /// runs past the end of the resource.
    #[error("resource at offset {offset}: chunk {chunk} has an invalid compressed size {csize} (uncompressed {usize})")]
    ChunkSize {
        /// The resource's offset.
        offset: u64,
        /// Chunk index.
        chunk: u64,
        /// Its compressed size (as computed; may be negative as an i128).
        csize: i128,
        /// Its uncompressed size.
        usize: u32,
    },
    /// A solid resource header with an unknown compression format.
    #[error("solid resource at offset {offset}: unknown compression format {format:?}")]
    SolidFormat {
        /// The resource's offset.
        offset: u64,
        /// The field.
        format: CompressionFormat,
    },
    /// A chunk size that is not valid for the codec.
    #[error("resource at offset {offset}: chunk size {chunk_size} is invalid")]
    SolidChunkSize {
        /// The resource's offset.
        offset: u64,
        /// The field.
        chunk_size: u32,
    },
    /// A solid resource shorter than its header.
    #[error("solid resource at offset {offset} of {size} bytes is shorter than its header")]
    SolidTooShort {
        /// The resource's offset.
        offset: u64,
        /// Its stored size.
        size: u64,
    },
    /// The chunk table (one offset per chunk) is larger than the memory at hand.
    #[error(transparent)]
    OutOfMemory(#[from] crate::mem::AllocError),
}

/// One chunk's place: where its compressed bytes are and how big it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Absolute file offset of the compressed bytes.
    pub file_offset: u64,
    /// Compressed size (equal to `usize` for a stored chunk).
    pub csize: u32,
    /// Uncompressed size.
    pub usize: u32,
}

/// The chunk layout of a compressed resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkTable {
    /// The codec (`None`: a solid resource whose chunks are all stored).
    pub codec: Option<Codec>,
    /// Uncompressed chunk size.
    pub chunk_size: u32,
    /// Uncompressed size of the resource.
    pub uncompressed_size: u64,
    data_base: u64,
    prefix: u64,
    /// Compressed start offsets relative to `data_base`, one per chunk plus the end.
    offsets: Vec<u64>,
}

impl ChunkTable {
    /// Number of chunks.
    pub fn num_chunks(&self) -> u64 {
        self.offsets.len() as u64 - 1
    }

    /// Chunk `i`; `None` past the end.
    pub fn chunk(&self, i: u64) -> Option<ChunkSpan> {
        let i = usize::try_from(i).ok()?;
        let start = *self.offsets.get(i)?;
        let end = *self.offsets.get(i + 1)?;
        let chunk_start = i as u64 * self.chunk_size as u64;
        let usize = (self.uncompressed_size - chunk_start).min(self.chunk_size as u64) as u32;
        Some(ChunkSpan {
            file_offset: self.data_base + start + self.prefix * (i as u64 + 1),
            csize: (end - start) as u32,
            usize,
        })
    }
}

/// Where the chunk table of a non-solid compressed resource is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSpan {
    /// Absolute file offset of the table.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Number of chunks.
    pub chunks: u64,
}

/// Checks that a resource lies within a file of `file_size` bytes.
pub fn check_in_file(r: &ResHdr, file_size: u64) -> Result<(), ResourceError> {
    if r.end().is_none_or(|e| e > file_size) {
        return Err(ResourceError::OutOfFile {
            offset: r.offset,
            size: r.size_in_wim,
            file_size,
        });
    }
    Ok(())
}

/// Checks an uncompressed resource (stored size = size).
pub fn check_uncompressed(r: &ResHdr) -> Result<(), ResourceError> {
    if r.size_in_wim != r.uncompressed_size {
        return Err(ResourceError::SizeMismatch {
            offset: r.offset,
            size: r.size_in_wim,
            uncompressed: r.uncompressed_size,
        });
    }
    Ok(())
}

/// Finds the chunk table of a non-solid compressed resource (`pipable`: table at the end,
/// each chunk prefixed by its 4-byte size). Checks that it, and one byte per chunk, fit.
pub fn table_span(r: &ResHdr, chunk_size: u32, pipable: bool) -> Result<TableSpan, ResourceError> {
    let chunks = r.uncompressed_size.div_ceil(chunk_size as u64);
    let entry = if r.uncompressed_size > u32::MAX as u64 {
        8
    } else {
        4
    };
    let too_big = || ResourceError::ChunkTableSize {
        offset: r.offset,
        chunks,
        size: r.size_in_wim,
    };
    let len = chunks.saturating_sub(1) * entry;
    let prefixes = if pipable { 4 * chunks } else { 0 };
    // Each chunk needs at least one byte.
    let need = len
        .checked_add(prefixes)
        .and_then(|n| n.checked_add(chunks))
        .ok_or_else(too_big)?;
    if chunks == 0 || need > r.size_in_wim {
        return Err(too_big());
    }
    let offset = if pipable {
        r.offset + r.size_in_wim - len
    } else {
        r.offset
    };
    Ok(TableSpan {
        offset,
        len,
        chunks,
    })
}

/// Builds the chunk table of a non-solid compressed resource from the bytes at
/// [`table_span`].
pub fn parse_table(
    r: &ResHdr,
    codec: Codec,
    chunk_size: u32,
    pipable: bool,
    span: &TableSpan,
    bytes: &[u8],
) -> Result<ChunkTable, ResourceError> {
    let entry = if r.uncompressed_size > u32::MAX as u64 {
        8
    } else {
        4
    };
    let mut offsets = offsets_for(span)?;
    for e in bytes.chunks_exact(entry) {
        let v = if entry == 4 {
            u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as u64
        } else {
            u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]])
        };
        offsets.push(v);
    }
    let data_len = r.size_in_wim - span.len - if pipable { 4 * span.chunks } else { 0 };
    offsets.push(data_len);
    let (data_base, prefix) = if pipable {
        (r.offset, 4)
    } else {
        (r.offset + span.len, 0)
    };
    finish(
        r,
        Some(codec),
        chunk_size,
        r.uncompressed_size,
        data_base,
        prefix,
        offsets,
    )
}

/// The offsets of a table of `span.chunks` chunks, reserved (one per chunk plus the end),
/// starting with the first chunk's 0.
fn offsets_for(span: &TableSpan) -> Result<Vec<u64>, ResourceError> {
    let n = span.chunks.saturating_add(1);
    let mut offsets = crate::mem::with_capacity(crate::mem::len::<u64>(n)?)?;
    offsets.push(0);
    Ok(offsets)
}

/// Validates every chunk's compressed size.
fn finish(
    r: &ResHdr,
    codec: Option<Codec>,
    chunk_size: u32,
    uncompressed_size: u64,
    data_base: u64,
    prefix: u64,
    offsets: Vec<u64>,
) -> Result<ChunkTable, ResourceError> {
    let t = ChunkTable {
        codec,
        chunk_size,
        uncompressed_size,
        data_base,
        prefix,
        offsets,
    };
    for (i, w) in t.offsets.windows(2).enumerate() {
        let csize = w[1] as i128 - w[0] as i128;
        let usize = (uncompressed_size - i as u64 * chunk_size as u64).min(chunk_size as u64);
        if csize <= 0 || csize > usize as i128 {
            return Err(ResourceError::ChunkSize {
                offset: r.offset,
                chunk: i as u64,
                csize,
                usize: usize as u32,
            });
        }
    }
    Ok(t)
}

/// The header of a solid resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SolidHeader {
    /// Uncompressed size of the resource.
    pub uncompressed_size: u64,
    /// Chunk size.
    pub chunk_size: u32,
    /// The codec (`None` for format 0, stored chunks).
    pub codec: Option<Codec>,
}

impl SolidHeader {
    /// Parses and checks the 16-byte header of solid resource `r`.
    pub fn parse(r: &ResHdr, bytes: &[u8; 16]) -> Result<SolidHeader, ResourceError> {
        let d: SolidHeaderDisk = zerocopy::transmute!(*bytes);
        let format = CompressionFormat(d.compression_format.get());
        let codec = match format {
            CompressionFormat::NONE => None,
            CompressionFormat::XPRESS => Some(Codec::Xpress),
            CompressionFormat::LZX => Some(Codec::Lzx),
            CompressionFormat::LZMS => Some(Codec::Lzms),
            _ => {
                return Err(ResourceError::SolidFormat {
                    offset: r.offset,
                    format,
                })
            }
        };
        let chunk_size = d.chunk_size.get();
        let ok = match codec {
            Some(c) => check_chunk_size(c, chunk_size).is_ok(),
            None => chunk_size.is_power_of_two() && chunk_size <= 1 << 30,
        };
        if !ok {
            return Err(ResourceError::SolidChunkSize {
                offset: r.offset,
                chunk_size,
            });
        }
        Ok(SolidHeader {
            uncompressed_size: d.uncompressed_size.get(),
            chunk_size,
            codec,
        })
    }

    /// Where the chunk-size table of the solid resource is (right after the header).
    pub fn table_span(&self, r: &ResHdr) -> Result<TableSpan, ResourceError> {
        let chunks = self.uncompressed_size.div_ceil(self.chunk_size as u64);
        let too_big = || ResourceError::ChunkTableSize {
            offset: r.offset,
            chunks,
            size: r.size_in_wim,
        };
        let len = chunks.checked_mul(4).ok_or_else(too_big)?;
        let need = len
            .checked_add(16)
            .and_then(|n| n.checked_add(chunks))
            .ok_or_else(too_big)?;
        if need > r.size_in_wim {
            return Err(too_big());
        }
        Ok(TableSpan {
            offset: r.offset + 16,
            len,
            chunks,
        })
    }

    /// Builds the chunk table from the size table at [`table_span`](Self::table_span).
    pub fn parse_table(
        &self,
        r: &ResHdr,
        span: &TableSpan,
        bytes: &[u8],
    ) -> Result<ChunkTable, ResourceError> {
        let mut offsets = offsets_for(span)?;
        let mut cur = 0u64;
        for e in bytes.chunks_exact(4) {
            cur += u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as u64;
            offsets.push(cur);
        }
        let data_base = r.offset + 16 + span.len;
        if cur > r.size_in_wim - 16 - span.len {
            return Err(ResourceError::ChunkTableSize {
                offset: r.offset,
                chunks: span.chunks,
                size: r.size_in_wim,
            });
        }
        finish(
            r,
            self.codec,
            self.chunk_size,
            self.uncompressed_size,
            data_base,
            0,
            offsets,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::ResourceFlags;

    fn rh(offset: u64, size: u64, usize: u64) -> ResHdr {
        ResHdr {
            offset,
            size_in_wim: size,
            uncompressed_size: usize,
            flags: ResourceFlags::COMPRESSED,
        }
    }

    #[test]
    fn normal_table() {
        // 3 chunks of 32 KiB max: 70000 bytes; table 2×4 bytes; chunks 100, 200, 300 bytes.
        let r = rh(1000, 8 + 600, 70000);
        let span = table_span(&r, 32768, false).unwrap();
        assert_eq!((span.offset, span.len, span.chunks), (1000, 8, 3));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(&300u32.to_le_bytes());
        let t = parse_table(&r, Codec::Lzx, 32768, false, &span, &bytes).unwrap();
        assert_eq!(
            t.chunk(2).unwrap(),
            ChunkSpan {
                file_offset: 1008 + 300,
                csize: 300,
                usize: 70000 - 65536
            }
        );
        assert_eq!(t.chunk(3), None);
        // Decreasing offsets are rejected.
        bytes[4..8].copy_from_slice(&50u32.to_le_bytes());
        assert!(matches!(
            parse_table(&r, Codec::Lzx, 32768, false, &span, &bytes),
            Err(ResourceError::ChunkSize { chunk: 1, .. })
        ));
    }

    #[test]
    fn pipable_table() {
        let r = rh(1000, 8 + 12 + 600, 70000);
        let span = table_span(&r, 32768, true).unwrap();
        assert_eq!(span.offset, 1000 + 620 - 8);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(&300u32.to_le_bytes());
        let t = parse_table(&r, Codec::Lzx, 32768, true, &span, &bytes).unwrap();
        assert_eq!(t.chunk(0).unwrap().file_offset, 1004);
        assert_eq!(t.chunk(1).unwrap().file_offset, 1000 + 100 + 8);
        assert_eq!(t.chunk(2).unwrap().csize, 300);
    }

    #[test]
    fn table_too_big_for_resource() {
        let r = rh(0, 10, 1 << 40);
        assert!(table_span(&r, 32768, false).is_err());
    }

    #[test]
    fn solid() {
        let r = rh(212, 16 + 8 + 150, 0);
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(&100_000u64.to_le_bytes());
        h[8..12].copy_from_slice(&65536u32.to_le_bytes());
        h[12..].copy_from_slice(&3u32.to_le_bytes());
        let sh = SolidHeader::parse(&r, &h).unwrap();
        assert_eq!(sh.codec, Some(Codec::Lzms));
        let span = sh.table_span(&r).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&100u32.to_le_bytes());
        bytes.extend_from_slice(&50u32.to_le_bytes());
        let t = sh.parse_table(&r, &span, &bytes).unwrap();
        assert_eq!(t.chunk(1).unwrap().file_offset, 212 + 24 + 100);
        h[12..].copy_from_slice(&9u32.to_le_bytes());
        assert!(SolidHeader::parse(&r, &h).is_err());
    }
}
