//! XPRESS with Huffman coding (`[MS-XCA]` §2.1 "LZ77+Huffman"), as used for WIM chunks.
//!
//! A chunk is 256 bytes holding 512 four-bit codeword lengths (symbol `2i` in the low nibble
//! of byte `i`, `2i + 1` in the high nibble), then one bitstream of canonical Huffman
//! symbols (at most 15 bits each). Symbols below 256 are literals. A symbol `256 + (k << 4 |
//! l)` is a match: the offset is `2^k` plus `k` further bits, the length header `l`; `l = 15`
//! continues with a raw byte added to it, and a total of `15 + 255` with a raw little-endian
//! u16 that replaces it; the length is that value plus 3. WIM chunks are at most 64 KiB, so
//! one code covers the chunk (the 64 KiB code resets of `[MS-XCA]` never occur), and the
//! end-of-data symbol the Microsoft decoder wants after the data is not needed here.

use super::bits::BitReader;
use super::copy::copy_match;
use super::huffman;
use super::{check_output_size, Codec, DecompressError, HuffmanCode};

/// wimlib's XPRESS limit (offsets reach at most 65,535 bytes back).
pub(crate) const MAX_CHUNK_SIZE: usize = 1 << 16;

const NUM_SYMS: usize = 512;
const TABLE_BITS: u32 = 11;
/// zlib `enough 512 11 15`.
const TABLE_SIZE: usize = 2566;
/// Root entries below this are literals (symbol < 256) needing no subtable.
const LITERAL_ENTRY_LIMIT: u32 = 256 << 4;

/// Decoder state for XPRESS chunks (one decode table, about 5 KiB); usable without `alloc`.
pub struct XpressDecoder {
    table: [u16; TABLE_SIZE],
}

impl core::fmt::Debug for XpressDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("XpressDecoder").finish_non_exhaustive()
    }
}

impl Default for XpressDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XpressDecoder {
    /// Fresh state.
    pub const fn new() -> Self {
        XpressDecoder {
            table: [0; TABLE_SIZE],
        }
    }

    #[cfg(feature = "alloc")]
    pub(crate) fn new_boxed() -> super::alloc::boxed::Box<Self> {
        super::alloc::boxed::Box::new(Self::new())
    }

    /// Decompresses one chunk into exactly `output.len()` bytes (at most 64 KiB).
    pub fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), DecompressError> {
        check_output_size(Codec::Xpress, output.len())?;
        let Some((header, stream)) = input.split_first_chunk::<{ NUM_SYMS / 2 }>() else {
            return Err(DecompressError::InputTooShort {
                len: input.len(),
                min: NUM_SYMS / 2,
            });
        };
        let mut lens = [0u8; NUM_SYMS];
        for (pair, &b) in lens.chunks_exact_mut(2).zip(header.iter()) {
            pair[0] = b & 15;
            pair[1] = b >> 4;
        }
        if !huffman::build(&mut self.table, TABLE_BITS, &lens, 15) {
            return Err(DecompressError::InvalidCode {
                code: HuffmanCode::Xpress,
                offset: NUM_SYMS / 2,
            });
        }
        let mut r = BitReader::new(stream);
        let table = &self.table;
        let end = output.len();
        let mut pos = 0usize;
        while pos < end {
            // A symbol (<= 15 bits) and its offset bits (<= 15).
            r.refill();
            let entry = huffman::root_entry(table, TABLE_BITS, &r);
            if entry < LITERAL_ENTRY_LIMIT {
                // A literal with no subtable (one compare covers both). With >= 48 bits
                // buffered, two more symbols fit without a refill: try them as literals too.
                r.consume(entry & 15);
                output[pos] = (entry >> 4) as u8;
                pos += 1;
                let entry = huffman::root_entry(table, TABLE_BITS, &r);
                if entry < LITERAL_ENTRY_LIMIT && pos < end {
                    r.consume(entry & 15);
                    output[pos] = (entry >> 4) as u8;
                    pos += 1;
                    let entry = huffman::root_entry(table, TABLE_BITS, &r);
                    if entry < LITERAL_ENTRY_LIMIT && pos < end {
                        r.consume(entry & 15);
                        output[pos] = (entry >> 4) as u8;
                        pos += 1;
                    }
                }
                continue;
            }
            let sym = huffman::finish_decode(table, TABLE_BITS, entry, &mut r);
            if sym < 256 {
                output[pos] = sym as u8;
                pos += 1;
                continue;
            }
            let mut length = (sym & 15) as usize;
            let log2_offset = (sym >> 4) & 15;
            if length == 15 {
                // The raw length byte comes after the words a lazy reader (one that keeps
                // 16..31 bits here) has loaded; give back what we read ahead.
                r.unread_words_above(31);
            }
            let offset = (1usize << log2_offset) | r.take(log2_offset) as usize;
            if length == 15 {
                length += usize::from(r.raw_u8());
                if length == 15 + 255 {
                    length = usize::from(r.raw_u16());
                }
            }
            length += 3;
            if !copy_match(output, pos, offset, length, end) {
                return Err(match_error(pos, offset, length, end, &r));
            }
            pos += length;
        }
        if r.overran() {
            return Err(DecompressError::Truncated { len: input.len() });
        }
        Ok(())
    }
}

/// The error for a match `copy_match` refused.
pub(crate) fn match_error(
    pos: usize,
    offset: usize,
    length: usize,
    end: usize,
    r: &BitReader<'_>,
) -> DecompressError {
    let input_offset = r.offset();
    if offset > pos {
        DecompressError::MatchDistance {
            position: pos,
            distance: offset as u64,
            offset: input_offset,
        }
    } else {
        DecompressError::MatchLength {
            position: pos,
            length: length as u64,
            end,
            offset: input_offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk whose code gives literals 0..=254 length 9, and 257 further symbols (literal
    /// 255 and match symbols 256..=511) lengths 9/10, from a flat table: all 512 symbols 9
    /// bits. Then `bits` (a string of '0'/'1') as the bitstream, and `raw` spliced in at
    /// word boundary `raw_at` (in 16-bit words).
    fn flat_chunk(bits: &str, raw_at: usize, raw: &[u8]) -> Vec<u8> {
        let mut c = vec![0x99u8; 256];
        let mut words: Vec<u16> = Vec::new();
        let b: Vec<u8> = bits.bytes().filter(|c| *c != b' ').collect();
        for w in b.chunks(16) {
            let mut v = 0u16;
            for (i, &bit) in w.iter().enumerate() {
                if bit == b'1' {
                    v |= 1 << (15 - i);
                }
            }
            words.push(v);
        }
        for (i, w) in words.iter().enumerate() {
            if i == raw_at {
                c.extend_from_slice(raw);
            }
            c.extend_from_slice(&w.to_le_bytes());
        }
        if raw_at >= words.len() {
            c.extend_from_slice(raw);
        }
        c
    }

    fn sym(s: u32) -> String {
        format!("{s:09b}")
    }

    #[test]
    fn literals_and_a_short_match() {
        // 'a' 'b', then match offset 2 (log2 1, one extra bit 0), length 3+3 = 6.
        let bits = format!(
            "{}{}{}0",
            sym(u32::from(b'a')),
            sym(u32::from(b'b')),
            sym(256 | 1 << 4 | 3)
        );
        let chunk = flat_chunk(&bits, 99, &[]);
        let mut out = [0u8; 8];
        XpressDecoder::new().decompress(&chunk, &mut out).unwrap();
        assert_eq!(&out, b"abababab");
    }

    #[test]
    fn long_match_lengths_come_from_raw_bytes() {
        // 'x', then offset 1 length header 15: raw byte 10 -> length 15 + 10 + 3 = 28.
        // Bits used before the raw byte: 9 + 9 = 18; a lazy reader that keeps at least 16
        // bits for the offset has loaded 3 words (the encoder reserved the third).
        let bits = format!(
            "{}{}{}",
            sym(u32::from(b'x')),
            sym(256 | 15),
            "0".repeat(30)
        );
        let chunk = flat_chunk(&bits, 3, &[10]);
        let mut out = [0u8; 29];
        XpressDecoder::new().decompress(&chunk, &mut out).unwrap();
        assert_eq!(out, [b'x'; 29]);
        // Header 15 + byte 255 -> a raw u16 gives the length (1000 + 3).
        let chunk = flat_chunk(&bits, 3, &[255, 0xe8, 0x03]);
        let mut out = vec![0u8; 1004];
        XpressDecoder::new().decompress(&chunk, &mut out).unwrap();
        assert!(out.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mut d = XpressDecoder::new();
        let mut out = [0u8; 16];
        assert!(matches!(
            d.decompress(&[0; 100], &mut out),
            Err(DecompressError::InputTooShort { len: 100, min: 256 })
        ));
        assert!(matches!(
            d.decompress(&[0x11; 300], &mut out),
            Err(DecompressError::InvalidCode { .. })
        ));
        // A match before the start.
        let chunk = flat_chunk(&sym(256 | 1 << 4), 99, &[]);
        assert!(matches!(
            d.decompress(&chunk, &mut out),
            Err(DecompressError::MatchDistance { position: 0, .. })
        ));
        // Too long for the output.
        let bits = format!("{}{}", sym(u32::from(b'x')), sym(256 | 14));
        let chunk = flat_chunk(&bits, 99, &[]);
        assert!(matches!(
            d.decompress(&chunk, &mut out),
            Err(DecompressError::MatchLength {
                position: 1,
                length: 17,
                ..
            })
        ));
        // Symbols wanted past the end of the input.
        let chunk = flat_chunk(&sym(u32::from(b'x')), 99, &[]);
        assert!(matches!(
            d.decompress(&chunk, &mut out),
            Err(DecompressError::Truncated { .. })
        ));
        assert!(matches!(
            d.decompress(&chunk, &mut []),
            Err(DecompressError::OutputSize { size: 0, .. })
        ));
    }
}
