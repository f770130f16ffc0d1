//! The chunk compressors: XPRESS, LZX and LZMS, with fast and near-optimal parsers.
//!
//! [`Compressor`] is the public face; the per-codec encoders live in the submodules and
//! share the match finders ([`mf`], [`hc16`], [`bt`]), the Huffman code builder ([`huffman`]) and the bit
//! writers ([`bitout`]). Levels follow wimlib's scale and thresholds per codec (see
//! [`Level`]). All memory is allocated by [`Compressor::new`], sized for the largest chunk;
//! compressing allocates nothing.

mod bitout;
mod bt;
mod hc16;
mod huffman;
mod lzms;
mod lzms_delta;
mod lzms_opt;
mod lzx;
mod lzx_block;
mod lzx_lazy;
mod lzx_opt;
mod mf;
mod xpress;

use super::alloc::boxed::Box;
use super::Codec;
use core::fmt;

/// Compression effort on wimlib's scale: 1 to 100 (wimlib's default is 50; larger values
/// are accepted and treated as 300 at most).
///
/// Per codec, as in wimlib: XPRESS parses greedily below 30, lazily below 60 and
/// near-optimally from 60; LZX parses lazily up to 34 and near-optimally above (one
/// cost-model pass from a greedy parse's code, a second from 70, a third from 150, where
/// wimlib makes a second from 45: the seed makes up for it); LZMS parses near-optimally at every level, looks
/// for delta matches from 35 and tries match + literal + repeat steps from 45 and 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(pub u32);

impl Level {
    /// A fast level (20): greedy XPRESS, lazy LZX.
    pub const FAST: Level = Level(20);
    /// wimlib's default level (50).
    pub const DEFAULT: Level = Level(50);
    /// The top of the usual scale (100).
    pub const MAX: Level = Level(100);
}

impl Default for Level {
    fn default() -> Self {
        Level::DEFAULT
    }
}

/// Why a [`Compressor`] could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompressError {
    /// The maximum chunk size is zero or above what the codec can describe.
    #[error("{codec:?} cannot compress chunks of {size} bytes (allowed: 1 to {max})")]
    ChunkSize {
        /// The codec.
        codec: Codec,
        /// The requested maximum chunk size.
        size: usize,
        /// The codec's largest chunk.
        max: usize,
    },
    /// Level 0 (the scale starts at 1).
    #[error("compression level {level} is out of range (1 or more)")]
    Level {
        /// The level given.
        level: u32,
    },
    /// The codec has no compressor in this build. (Every codec has one now; the variant
    /// stays for callers written against the first, XPRESS-only version.)
    #[error("no {codec:?} compressor is available")]
    Unsupported {
        /// The codec.
        codec: Codec,
    },
    /// The state for chunks of the size asked (about 9 bytes per byte of chunk for LZMS,
    /// whose chunks may be 1 GiB) could not be allocated.
    #[error(transparent)]
    OutOfMemory(#[from] crate::mem::AllocError),
}

/// Heap bytes of `n` values of `T`, as the encoders' `heap_bytes` functions add them up
/// for [`Compressor::memory_needed`].
pub(crate) fn heap<T>(n: usize) -> u64 {
    (n as u64).saturating_mul(core::mem::size_of::<T>() as u64)
}

/// One parsed item: a literal (`len == 1`, `off` = the byte) or a match.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) len: u32,
    pub(crate) off: u32,
}

impl Item {
    #[inline(always)]
    pub(crate) fn literal(b: u8) -> Self {
        Item {
            len: 1,
            off: u32::from(b),
        }
    }
}

enum Encoder {
    Xpress(Box<xpress::XpressEncoder>),
    Lzx(Box<lzx::LzxEncoder>),
    Lzms(Box<lzms_opt::LzmsEncoder>),
}

/// Reusable compression state for one codec, level and maximum chunk size.
///
/// Create one per thread, then compress any number of chunks: no call allocates. Memory
/// grows with the maximum chunk size ([`Compressor::memory_needed`] gives it: about 9 bytes
/// per byte of chunk for LZMS); what the chunk size decides is allocated fallibly, so a
/// size the system cannot provide is [`CompressError::OutOfMemory`].
///
/// ```
/// use wim_image::codec::{Codec, Compressor, Decompressor, Level};
/// let data = b"hello hello hello hello hello hello hello hello".repeat(20);
/// let mut c = Compressor::new(Codec::Xpress, Level::DEFAULT, 32 * 1024).unwrap();
/// let mut out = vec![0u8; data.len()];
/// let n = c.compress(&data, &mut out).expect("repetitive data shrinks");
/// let mut back = vec![0u8; data.len()];
/// Decompressor::new(Codec::Xpress).decompress(&out[..n], &mut back).unwrap();
/// assert_eq!(back, data);
/// ```
pub struct Compressor {
    codec: Codec,
    level: Level,
    max_chunk_size: usize,
    encoder: Encoder,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("codec", &self.codec)
            .field("level", &self.level)
            .field("max_chunk_size", &self.max_chunk_size)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// State for `codec` at `level`, for chunks of at most `max_chunk_size` bytes.
    ///
    /// `max_chunk_size` is the resource's chunk size: for LZX it also fixes the window (the
    /// next power of two, at least 32 KiB), exactly as the decompressor derives it from the
    /// resource's chunk size, so use the same value for every chunk of a resource, the
    /// short last one included.
    pub fn new(codec: Codec, level: Level, max_chunk_size: usize) -> Result<Self, CompressError> {
        let max = codec.max_chunk_size();
        if max_chunk_size == 0 || max_chunk_size > max {
            return Err(CompressError::ChunkSize {
                codec,
                size: max_chunk_size,
                max,
            });
        }
        if level.0 == 0 {
            return Err(CompressError::Level { level: level.0 });
        }
        let eff = Level(level.0.min(300));
        let encoder = match codec {
            Codec::Xpress => {
                Encoder::Xpress(Box::new(xpress::XpressEncoder::new(eff, max_chunk_size)?))
            }
            Codec::Lzx => Encoder::Lzx(Box::new(lzx::LzxEncoder::new(eff, max_chunk_size)?)),
            Codec::Lzms => {
                Encoder::Lzms(Box::new(lzms_opt::LzmsEncoder::new(eff, max_chunk_size)?))
            }
        };
        Ok(Compressor {
            codec,
            level,
            max_chunk_size,
            encoder,
        })
    }

    /// The bytes a [`Compressor`] for `codec` at `level` and chunks of at most
    /// `max_chunk_size` bytes allocates when [`new`](Self::new) makes it (all of its memory:
    /// compressing allocates nothing).
    ///
    /// Computed from the sizes the encoders allocate, so it is what the allocator is asked
    /// for, to the byte (a test holds the two together with a counting allocator); pages
    /// are committed as the compressor first touches them. Roughly:
    ///
    /// | codec, chunk | parser (levels) | bytes per byte of chunk | fixed |
    /// |---|---|---|---|
    /// | XPRESS (≤ 64 KiB) | hash chains (< 60) | 8 | 0.6 MiB |
    /// | XPRESS | near-optimal (≥ 60) | 88 | 1.1 MiB |
    /// | LZX ≤ 64 KiB | lazy (≤ 34) / near-optimal | 9 / 105 | 0.45 / 1.1 MiB |
    /// | LZX > 64 KiB (≤ 2 MiB) | lazy / near-optimal | 13 / 17 | 0.65 / 6.8 MiB |
    /// | LZMS ≤ 2 MiB | near-optimal (all) | 17 | 2 MiB |
    /// | LZMS > 2 MiB | near-optimal (all) | 9 | 18 MiB |
    ///
    /// So LZMS takes about 95 MiB for 8 MiB chunks, 600 MiB for the 64 MiB solid default
    /// and 9 GiB for 1 GiB chunks (the largest). For what [`new`](Self::new) refuses (a
    /// size of 0 or above the codec's largest chunk, level 0), the estimate is that of the
    /// nearest accepted values.
    pub fn memory_needed(codec: Codec, level: Level, max_chunk_size: usize) -> u64 {
        let size = max_chunk_size.clamp(1, codec.max_chunk_size());
        let level = Level(level.0.clamp(1, 300));
        match codec {
            Codec::Xpress => {
                heap::<xpress::XpressEncoder>(1) + xpress::XpressEncoder::heap_bytes(level, size)
            }
            Codec::Lzx => heap::<lzx::LzxEncoder>(1) + lzx::LzxEncoder::heap_bytes(level, size),
            Codec::Lzms => {
                heap::<lzms_opt::LzmsEncoder>(1) + lzms_opt::LzmsEncoder::heap_bytes(size)
            }
        }
    }

    /// The codec this state compresses with.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The level it was created with.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The largest chunk it accepts.
    pub fn max_chunk_size(&self) -> usize {
        self.max_chunk_size
    }

    /// Compresses one chunk (`input.len()` from 1 to [`max_chunk_size`](Self::max_chunk_size))
    /// into `output`, returning the compressed size, or `None` when the result would not be
    /// smaller than `input` (store the chunk raw) or `input` is empty or too long. Never
    /// writes past `output`; `output.len() >= input.len()` is always enough.
    pub fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        if input.is_empty() || input.len() > self.max_chunk_size {
            return None;
        }
        let limit = output.len().min(input.len() - 1);
        let out = &mut output[..limit];
        let n = match &mut self.encoder {
            Encoder::Xpress(e) => e.compress(input, out)?,
            Encoder::Lzx(e) => e.compress(input, out)?,
            Encoder::Lzms(e) => e.compress(input, out)?,
        };
        (n < input.len()).then_some(n)
    }
}
