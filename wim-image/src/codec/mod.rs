//! The chunk codecs of WIM resources: XPRESS (Huffman), LZX (WIM variant) and LZMS.
//!
//! A compressed resource is a sequence of independently compressed chunks; the container layer
//! (chunk tables, solid resources, stored chunks whose compressed size equals their size) lives
//! elsewhere in the crate. This module turns one compressed chunk into its bytes, and (with
//! `alloc`) one chunk into its compressed form: see [`Compressor`].
//!
//! ```text
//!  compressed chunk ──► Decompressor::decompress ──► exactly output.len() bytes
//!                        │  XPRESS: 256-byte length table, one canonical Huffman code,
//!                        │          16-bit LE words read MSB first, raw bytes interleaved
//!                        │  LZX:    blocks (verbatim / aligned / uncompressed), pretree-coded
//!                        │          lengths, 3 repeat offsets, then E8 call translation undone
//!                        │  LZMS:   range-coded item types ▸ forward words, adaptive Huffman
//!                        │          symbols ▸ backward words; LZ + delta matches, x86 filter
//! ```
//!
//! # Use
//!
//! [`Decompressor`] (needs the `alloc` feature) holds the reusable state of one codec: the
//! Huffman decode tables, and for LZMS the probability tables, the adaptive codes and the x86
//! filter's 64 Ki-entry table. Create one per thread and codec, then decompress any number of
//! chunks; no call allocates.
//!
//! * `input` is one compressed chunk, `output.len()` its exact uncompressed size. Stored chunks
//!   (compressed size = uncompressed size) never reach the decompressor: the container copies
//!   them.
//! * Size limits follow wimlib: XPRESS chunks up to 64 KiB, LZX up to 2 MiB, LZMS up to 1 GiB.
//!   Zero or larger sizes are [`DecompressError::OutputSize`].
//! * **LZX needs the resource's chunk size.** The LZX window (and with it the number of main
//!   symbols and the width of the block-size field) is derived from the chunk size the
//!   compressor was created with, not from the size of the chunk at hand. The window used is
//!   the larger of [`Decompressor::chunk_size`] (32 KiB unless set) and `output.len()`, so every
//!   chunk of a 32 KiB resource, and every full chunk of any resource, decodes without further
//!   setup; for the *last* chunk of a resource with larger LZX chunks call
//!   [`Decompressor::set_chunk_size`] first (or create the decompressor with
//!   [`Decompressor::with_chunk_size`]). XPRESS and LZMS ignore the chunk size.
//!
//! ```
//! # #[cfg(feature = "alloc")] {
//! use wim_image::codec::{Codec, Decompressor};
//! // An XPRESS chunk: 256 bytes of code lengths (here: literals 'a' and 'b' and the
//! // end-of-data symbol 256, two bits each except 'b' with one), then the bitstream.
//! let mut chunk = [0u8; 258];
//! chunk[b'a' as usize / 2] = 0x20; // 'a' = 97 is odd: high nibble
//! chunk[b'b' as usize / 2] = 0x01; // 'b' = 98 is even: low nibble
//! chunk[128] = 0x02; // symbol 256: low nibble
//! // Codes: 'b' = 0, 'a' = 10, 256 = 11. "abba" = 10 0 0 10, padded to one 16-bit word.
//! chunk[256..].copy_from_slice(&0b1000_1000_0000_0000u16.to_le_bytes());
//! let mut out = [0u8; 4];
//! Decompressor::new(Codec::Xpress).decompress(&chunk, &mut out).unwrap();
//! assert_eq!(&out, b"abba");
//! # }
//! ```
//!
//! # Compression
//!
//! [`Compressor`] (needs `alloc`) holds one codec's reusable state for a maximum chunk size
//! and a [`Level`] on wimlib's 1–100 scale, with wimlib's parser per level: XPRESS greedy
//! (< 30), lazy (< 60) or near-optimal; LZX lazy (≤ 34) or near-optimal; LZMS near-optimal
//! at every level, with delta matches from 35 and gap-bridging steps from 45 and 60. Its
//! output decodes with [`Decompressor`] and with wimlib (the tests check both); a chunk that
//! would not shrink comes back as `None`, to be stored raw. XPRESS always ends with the
//! end-of-data symbol Microsoft's decoder wants; LZX chunks are E8-translated and use the
//! window of the maximum chunk size; LZMS chunks go through the x86 filter.
//!
//! # Hostile input
//!
//! Every decoder checks each match against the start and the end of the output, each Huffman
//! code for completeness (an empty code is accepted, as wimlib does), and each block size
//! against what is left of the chunk. Bits wanted past the end of the input read as zero
//! while decoding (as in wimlib); if any were actually consumed the chunk is reported as
//! [`DecompressError::Truncated`]. No input makes a decoder panic, loop without producing
//! output, or read or write out of bounds; the fuzz targets in `wim-image/fuzz` check this.
//!
//! # Sources
//!
//! XPRESS: `[MS-XCA]` §2.1–2.2 ("LZ77+Huffman"). LZX: the 1997 LZX CAB specification as
//! corrected by `[MS-PATCH]`, with the WIM differences (window = chunk size, no sliding window,
//! E8 translation always on with file size 12,000,000). LZMS is undocumented; the facts come
//! from the comments of wimlib's decoder (read for facts only; this is an independent
//! implementation).

// The match copier (`copy`) uses raw pointers in its hot loop; it opts in to `unsafe` itself.

#[cfg(feature = "alloc")]
extern crate alloc;

mod bits;
mod copy;
#[cfg(feature = "alloc")]
mod enc;
mod huffman;
mod lzms;
mod lzx;
mod xpress;

#[cfg(feature = "alloc")]
pub use enc::{CompressError, Compressor, Level};
pub use lzms::LzmsDecoder;
pub use lzx::LzxDecoder;
pub use xpress::XpressDecoder;

use core::fmt;

/// The chunk compression formats a WIM resource can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// XPRESS with Huffman coding (`[MS-XCA]` "LZ77+Huffman"), WIM framing.
    Xpress,
    /// LZX, WIM variant (E8 translation over the whole chunk, no LZX-DELTA header).
    Lzx,
    /// LZMS (Windows 8 and later; solid resources of ESD files).
    Lzms,
}

impl Codec {
    /// The largest chunk this codec decodes: 64 KiB for XPRESS, 2 MiB for LZX, 1 GiB for LZMS
    /// (wimlib's limits; Microsoft's software writes 32 KiB chunks, 64 MiB for solid LZMS).
    pub const fn max_chunk_size(self) -> usize {
        match self {
            Codec::Xpress => xpress::MAX_CHUNK_SIZE,
            Codec::Lzx => lzx::MAX_CHUNK_SIZE,
            Codec::Lzms => lzms::MAX_CHUNK_SIZE,
        }
    }

    /// The smallest chunk size a resource may declare for this codec (4 KiB for XPRESS,
    /// 32 KiB for LZX and LZMS, following wimlib).
    pub const fn min_chunk_size(self) -> usize {
        match self {
            Codec::Xpress => 1 << 12,
            Codec::Lzx | Codec::Lzms => 1 << 15,
        }
    }
}

/// Which Huffman code of a chunk was invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HuffmanCode {
    /// The one XPRESS code (512 symbols).
    Xpress,
    /// An LZX pretree (the code that codes code lengths).
    LzxPretree,
    /// An LZX main code (literals and match headers).
    LzxMain,
    /// An LZX length code.
    LzxLength,
    /// An LZX aligned-offset code.
    LzxAligned,
}

impl fmt::Display for HuffmanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HuffmanCode::Xpress => "XPRESS",
            HuffmanCode::LzxPretree => "LZX pretree",
            HuffmanCode::LzxMain => "LZX main",
            HuffmanCode::LzxLength => "LZX length",
            HuffmanCode::LzxAligned => "LZX aligned-offset",
        })
    }
}

/// Why a chunk could not be decompressed.
///
/// `offset` fields are byte offsets into the compressed chunk near where the problem was
/// found (bit-level codecs read ahead, so they are approximate to a few bytes); `position`
/// fields are offsets into the output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// The requested output size is zero or above the codec's limit.
    #[error("{codec:?} cannot produce a chunk of {size} bytes (allowed: 1 to {max})")]
    OutputSize {
        /// The codec asked.
        codec: Codec,
        /// The requested size.
        size: usize,
        /// The codec's largest chunk.
        max: usize,
    },
    /// A chunk size given to [`Decompressor::set_chunk_size`] is not a power of two within
    /// the codec's range.
    #[error(
        "{chunk_size} is not a valid {codec:?} chunk size (a power of two from {min} to {max})"
    )]
    ChunkSize {
        /// The codec.
        codec: Codec,
        /// The rejected chunk size.
        chunk_size: usize,
        /// The smallest valid chunk size.
        min: usize,
        /// The largest valid chunk size.
        max: usize,
    },
    /// The compressed chunk is shorter than the codec's fixed header.
    #[error("compressed chunk of {len} bytes is too short (at least {min} needed)")]
    InputTooShort {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// An LZMS chunk must be a whole number of 16-bit units.
    #[error("compressed LZMS chunk has an odd length ({len} bytes)")]
    OddLength {
        /// Its length.
        len: usize,
    },
    /// Huffman code lengths that over-fill the code space, or fill only part of it.
    #[error("invalid {code} Huffman code near input offset {offset}")]
    InvalidCode {
        /// Which code.
        code: HuffmanCode,
        /// Where its lengths ended.
        offset: usize,
    },
    /// An LZX block type other than 1 (verbatim), 2 (aligned) or 3 (uncompressed).
    #[error("invalid LZX block type {block_type} near input offset {offset}")]
    InvalidBlockType {
        /// The 3-bit type read.
        block_type: u8,
        /// Where.
        offset: usize,
    },
    /// An LZX block that is empty or larger than what is left of the chunk.
    #[error("LZX block of {size} bytes near input offset {offset} does not fit the {remaining} bytes left in the chunk")]
    BlockSize {
        /// The block size read.
        size: u32,
        /// Output bytes still to produce.
        remaining: usize,
        /// Where.
        offset: usize,
    },
    /// An LZX uncompressed block header sets a repeat offset to zero.
    #[error("LZX uncompressed block at input offset {offset} sets a zero repeat offset")]
    ZeroRepeatOffset {
        /// Where the three offsets start.
        offset: usize,
    },
    /// An LZX pretree "same length" run (symbol 19) followed by a symbol above 17.
    #[error("LZX pretree symbol {symbol} after a same-length run near input offset {offset}")]
    InvalidPretreeSymbol {
        /// The symbol (18 or 19).
        symbol: u16,
        /// Where.
        offset: usize,
    },
    /// A match that reaches back before the start of the chunk.
    #[error("match at output position {position} reaches {distance} bytes back, before the start of the chunk (near input offset {offset})")]
    MatchDistance {
        /// Output position of the match.
        position: usize,
        /// How far back it reaches (for LZMS delta matches: offset plus span).
        distance: u64,
        /// Where in the input.
        offset: usize,
    },
    /// A match that runs past the end of its block or chunk.
    #[error("match of {length} bytes at output position {position} runs past the end ({end}) of its block (near input offset {offset})")]
    MatchLength {
        /// Output position of the match.
        position: usize,
        /// Its length.
        length: u64,
        /// Where the block or chunk ends.
        end: usize,
        /// Where in the input.
        offset: usize,
    },
    /// Decoding consumed bits or bytes past the end of the compressed chunk.
    #[error("compressed chunk of {len} bytes ends before its data does")]
    Truncated {
        /// The chunk's length.
        len: usize,
    },
}

/// Reusable decompression state for one codec.
///
/// Create one per thread (the LZMS state is about 300 KiB; XPRESS and LZX need a few KiB),
/// then call [`decompress`](Self::decompress) for any number of chunks: no call allocates.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub struct Decompressor {
    chunk_size: usize,
    state: State,
}

#[cfg(feature = "alloc")]
#[derive(Debug)]
enum State {
    Xpress(alloc::boxed::Box<XpressDecoder>),
    Lzx(alloc::boxed::Box<LzxDecoder>),
    Lzms(alloc::boxed::Box<LzmsDecoder>),
}

#[cfg(feature = "alloc")]
impl Decompressor {
    /// State for `codec`, assuming the WIM default chunk size of 32 KiB (which only LZX uses;
    /// see the [module documentation](self)).
    pub fn new(codec: Codec) -> Self {
        let state = match codec {
            Codec::Xpress => State::Xpress(XpressDecoder::new_boxed()),
            Codec::Lzx => State::Lzx(LzxDecoder::new_boxed()),
            Codec::Lzms => State::Lzms(LzmsDecoder::new_boxed()),
        };
        Decompressor {
            chunk_size: 32 * 1024,
            state,
        }
    }

    /// The bytes [`new`](Self::new) allocates for `codec`: fixed tables, whatever the chunk
    /// size (the output is the caller's).
    pub fn memory_needed(codec: Codec) -> u64 {
        let n = match codec {
            Codec::Xpress => core::mem::size_of::<XpressDecoder>(),
            Codec::Lzx => core::mem::size_of::<LzxDecoder>(),
            Codec::Lzms => core::mem::size_of::<LzmsDecoder>(),
        };
        n as u64
    }

    /// State for `codec` and resources with chunks of `chunk_size` bytes.
    pub fn with_chunk_size(codec: Codec, chunk_size: usize) -> Result<Self, DecompressError> {
        let mut d = Self::new(codec);
        d.set_chunk_size(chunk_size)?;
        Ok(d)
    }

    /// The codec this state decodes.
    pub fn codec(&self) -> Codec {
        match self.state {
            State::Xpress(_) => Codec::Xpress,
            State::Lzx(_) => Codec::Lzx,
            State::Lzms(_) => Codec::Lzms,
        }
    }

    /// The chunk size of the resource being read (32 KiB unless set).
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Sets the chunk size of the resource being read: a power of two from
    /// [`Codec::min_chunk_size`] to [`Codec::max_chunk_size`]. Only LZX depends on it.
    pub fn set_chunk_size(&mut self, chunk_size: usize) -> Result<(), DecompressError> {
        let codec = self.codec();
        let (min, max) = (codec.min_chunk_size(), codec.max_chunk_size());
        if !chunk_size.is_power_of_two() || chunk_size < min || chunk_size > max {
            return Err(DecompressError::ChunkSize {
                codec,
                chunk_size,
                min,
                max,
            });
        }
        self.chunk_size = chunk_size;
        Ok(())
    }

    /// Decompresses one chunk: `input` is the compressed chunk, `output.len()` its exact
    /// uncompressed size. On error the contents of `output` are unspecified.
    pub fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        match &mut self.state {
            State::Xpress(d) => d.decompress(input, output),
            State::Lzx(d) => d.decompress(input, output, self.chunk_size),
            State::Lzms(d) => d.decompress(input, output),
        }
    }
}

/// Checks `output.len()` against the codec's limit.
fn check_output_size(codec: Codec, size: usize) -> Result<(), DecompressError> {
    let max = codec.max_chunk_size();
    if size == 0 || size > max {
        return Err(DecompressError::OutputSize { codec, size, max });
    }
    Ok(())
}
