//! LZX as WIM uses it (the 1997 LZX CAB specification, corrected by `[MS-PATCH]`).
//!
//! WIM differences from CAB: the window is the resource's chunk size (32 KiB for Microsoft's
//! software; wimlib allows up to 2 MiB) and does not slide across chunks; there is no E8
//! header bit, E8 call translation is always on with the file size fixed at 12,000,000 and
//! positions relative to the chunk; a block-size field is a 1-bit "32,768" flag or 16 bits
//! (plus 8 more when the window is 64 KiB or larger, a wimlib extension).
//!
//! A chunk is a sequence of blocks (3-bit type: 1 verbatim, 2 aligned offset, 3
//! uncompressed). Compressed blocks carry the main code (256 literals + 8 length headers per
//! offset slot) and the length code (249 symbols) as differences from the previous block's
//! lengths, coded with a 20-symbol pretree; aligned blocks also carry an 8-symbol code for
//! the low 3 offset bits. Offset slots 0–2 repeat one of three recent offsets. An
//! uncompressed block starts at the next 16-bit boundary (skipping 16 bits when already
//! aligned), sets the three recent offsets, and holds raw bytes padded to an even count.

use super::bits::BitReader;
use super::copy::copy_match;
use super::huffman;
use super::xpress::match_error;
use super::{check_output_size, Codec, DecompressError, HuffmanCode};

/// wimlib's LZX limit (window order 21).
pub(crate) const MAX_CHUNK_SIZE: usize = 1 << 21;

pub(crate) const MIN_WINDOW_ORDER: u32 = 15;
pub(crate) const NUM_CHARS: usize = 256;
pub(crate) const MAX_OFFSET_SLOTS: usize = 50;
pub(crate) const MAX_MAIN_SYMS: usize = NUM_CHARS + 8 * MAX_OFFSET_SLOTS;
pub(crate) const NUM_LEN_SYMS: usize = 249;
pub(crate) const NUM_PRE_SYMS: usize = 20;
pub(crate) const NUM_ALIGNED_SYMS: usize = 8;
/// A pretree run can write up to 50 lengths past the end of the range being read (wimlib
/// lets it, and so do we: the overflow lands in the next range or in this slack).
const LENS_SLACK: usize = 50;

const MAIN_TABLE_BITS: u32 = 11;
const LEN_TABLE_BITS: u32 = 10;
const PRE_TABLE_BITS: u32 = 6;
const ALIGNED_TABLE_BITS: u32 = 7;
/// zlib `enough 656 11 16`, `enough 249 10 16`, `enough 20 6 15`; the aligned code needs no
/// subtables.
const MAIN_TABLE_SIZE: usize = 2726;
const LEN_TABLE_SIZE: usize = 1326;
const PRE_TABLE_SIZE: usize = 582;
const ALIGNED_TABLE_SIZE: usize = 1 << ALIGNED_TABLE_BITS;
/// Main-table root entries below this are literals needing no subtable.
const LITERAL_ENTRY_LIMIT: u32 = (NUM_CHARS as u32) << 4;

/// Verbatim bits after each offset slot: 0 for slots 0–3, then 1, 1, 2, 2, …, 16, 16, then 17.
/// (Padded to 64 entries so that a masked index needs no bounds check.)
pub(crate) const EXTRA_BITS: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut s = 4;
    while s < MAX_OFFSET_SLOTS {
        t[s] = if s < 36 { (s as u8 - 2) / 2 } else { 17 };
        s += 1;
    }
    t
};

/// First "formatted offset" of each slot (position base minus the 2 repeat-offset codes):
/// the match offset is this plus the slot's verbatim bits.
pub(crate) const OFFSET_BASE: [u32; 64] = {
    let mut t = [0u32; 64];
    let mut base = 0u32;
    let mut s = 0;
    while s < MAX_OFFSET_SLOTS {
        t[s] = base.wrapping_sub(2);
        base += 1 << EXTRA_BITS[s];
        s += 1;
    }
    t[MAX_OFFSET_SLOTS] = base - 2;
    t
};

/// Number of offset slots for a window of `2^order` bytes (the largest offset is
/// window − 3: a match cannot copy the first two bytes onto the last two).
pub(crate) const fn num_offset_slots(order: u32) -> usize {
    let max_offset = (1u32 << order) - 3;
    let mut n = 30;
    while max_offset >= OFFSET_BASE[n] {
        n += 1;
    }
    n
}

/// E8 translation's fixed "file size".
pub(crate) const E8_FILE_SIZE: i32 = 12_000_000;

/// Decoder state for LZX chunks (decode tables and code lengths, about 10 KiB); usable
/// without `alloc`.
pub struct LzxDecoder {
    main_table: [u16; MAIN_TABLE_SIZE],
    len_table: [u16; LEN_TABLE_SIZE],
    aligned_table: [u16; ALIGNED_TABLE_SIZE],
    pre_table: [u16; PRE_TABLE_SIZE],
    main_lens: [u8; MAX_MAIN_SYMS + LENS_SLACK],
    len_lens: [u8; NUM_LEN_SYMS + LENS_SLACK],
}

impl core::fmt::Debug for LzxDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LzxDecoder").finish_non_exhaustive()
    }
}

impl Default for LzxDecoder {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockType {
    Verbatim,
    Aligned,
    Uncompressed,
}

impl LzxDecoder {
    /// Fresh state.
    pub const fn new() -> Self {
        LzxDecoder {
            main_table: [0; MAIN_TABLE_SIZE],
            len_table: [0; LEN_TABLE_SIZE],
            aligned_table: [0; ALIGNED_TABLE_SIZE],
            pre_table: [0; PRE_TABLE_SIZE],
            main_lens: [0; MAX_MAIN_SYMS + LENS_SLACK],
            len_lens: [0; NUM_LEN_SYMS + LENS_SLACK],
        }
    }

    #[cfg(feature = "alloc")]
    pub(crate) fn new_boxed() -> super::alloc::boxed::Box<Self> {
        super::alloc::boxed::Box::new(Self::new())
    }

    /// Decompresses one chunk of a resource with `chunk_size`-byte chunks into exactly
    /// `output.len()` bytes (at most 2 MiB). The window is the larger of `chunk_size` and
    /// `output.len()`, rounded up to a power of two of at least 32 KiB.
    pub fn decompress(
        &mut self,
        input: &[u8],
        output: &mut [u8],
        chunk_size: usize,
    ) -> Result<(), DecompressError> {
        check_output_size(Codec::Lzx, output.len())?;
        let window = chunk_size
            .max(output.len())
            .min(MAX_CHUNK_SIZE)
            .next_power_of_two();
        let order = window.trailing_zeros().max(MIN_WINDOW_ORDER);
        let num_main_syms = NUM_CHARS + 8 * num_offset_slots(order);

        self.main_lens.fill(0);
        self.len_lens.fill(0);
        let mut recent = [1u32; 3];
        let mut may_have_e8 = false;
        let mut r = BitReader::new(input);
        let end = output.len();
        let mut pos = 0usize;
        while pos < end {
            let block_type = match r.read(3) {
                1 => BlockType::Verbatim,
                2 => BlockType::Aligned,
                3 => BlockType::Uncompressed,
                t => {
                    return Err(DecompressError::InvalidBlockType {
                        block_type: t as u8,
                        offset: r.offset(),
                    })
                }
            };
            let size = if r.read(1) == 1 {
                32768
            } else if order >= 16 {
                let hi = r.read(16);
                (hi << 8) | r.read(8)
            } else {
                r.read(16)
            };
            if size == 0 || size as usize > end - pos {
                return Err(DecompressError::BlockSize {
                    size,
                    remaining: end - pos,
                    offset: r.offset(),
                });
            }
            let block_end = pos + size as usize;
            if block_type == BlockType::Uncompressed {
                Self::read_uncompressed(&mut r, &mut recent, &mut output[pos..block_end])?;
                may_have_e8 = true;
            } else {
                let aligned = block_type == BlockType::Aligned;
                self.read_codes(&mut r, aligned, num_main_syms)?;
                if aligned {
                    self.decode_block::<true>(&mut r, output, pos, block_end, &mut recent)?;
                } else {
                    self.decode_block::<false>(&mut r, output, pos, block_end, &mut recent)?;
                }
                // The first E8 byte of a chunk can only come from a literal.
                may_have_e8 |= self.main_lens[0xe8] != 0;
            }
            pos = block_end;
        }
        if r.overran() {
            return Err(DecompressError::Truncated { len: input.len() });
        }
        if may_have_e8 {
            undo_e8(output);
        }
        Ok(())
    }

    /// Reads the codes of a verbatim or aligned block and builds their decode tables.
    fn read_codes(
        &mut self,
        r: &mut BitReader<'_>,
        aligned: bool,
        num_main_syms: usize,
    ) -> Result<(), DecompressError> {
        if aligned {
            let mut lens = [0u8; NUM_ALIGNED_SYMS];
            for l in &mut lens {
                *l = r.read(3) as u8;
            }
            if !huffman::build(&mut self.aligned_table, ALIGNED_TABLE_BITS, &lens, 7) {
                return Err(invalid(HuffmanCode::LzxAligned, r));
            }
        }
        let pre = &mut self.pre_table;
        read_lens(pre, r, &mut self.main_lens, 0, NUM_CHARS)?;
        read_lens(
            pre,
            r,
            &mut self.main_lens,
            NUM_CHARS,
            num_main_syms - NUM_CHARS,
        )?;
        read_lens(pre, r, &mut self.len_lens, 0, NUM_LEN_SYMS)?;
        if !huffman::build(
            &mut self.main_table,
            MAIN_TABLE_BITS,
            &self.main_lens[..num_main_syms],
            16,
        ) {
            return Err(invalid(HuffmanCode::LzxMain, r));
        }
        if !huffman::build(
            &mut self.len_table,
            LEN_TABLE_BITS,
            &self.len_lens[..NUM_LEN_SYMS],
            16,
        ) {
            return Err(invalid(HuffmanCode::LzxLength, r));
        }
        Ok(())
    }

    /// An uncompressed block: alignment, three recent offsets, raw bytes, pad byte.
    fn read_uncompressed(
        r: &mut BitReader<'_>,
        recent: &mut [u32; 3],
        out: &mut [u8],
    ) -> Result<(), DecompressError> {
        // Pad to the next word boundary; 16 bits if already on one. A lazy reader holds
        // 1..=16 bits here.
        r.ensure(1);
        r.unread_words_above(16);
        r.discard_buffer();
        let offset = r.offset();
        let truncated = DecompressError::Truncated { len: r.input_len() };
        let Some(head) = r.raw_bytes(12) else {
            return Err(truncated);
        };
        for (slot, b) in recent.iter_mut().zip(head.chunks_exact(4)) {
            *slot = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if *slot == 0 {
                return Err(DecompressError::ZeroRepeatOffset { offset });
            }
        }
        let Some(raw) = r.raw_bytes(out.len()) else {
            return Err(truncated);
        };
        out.copy_from_slice(raw);
        if out.len() % 2 == 1 {
            // The pad byte may be missing at the very end of the chunk (wimlib allows it).
            let _ = r.raw_bytes(1);
        }
        Ok(())
    }

    /// Decodes the literals and matches of one compressed block into `out[pos..block_end]`.
    fn decode_block<const ALIGNED: bool>(
        &self,
        r: &mut BitReader<'_>,
        out: &mut [u8],
        mut pos: usize,
        block_end: usize,
        recent: &mut [u32; 3],
    ) -> Result<(), DecompressError> {
        let main = &self.main_table;
        let lens = &self.len_table;
        let aligned = &self.aligned_table;
        while pos < block_end {
            // Main symbol and length symbol: at most 16 bits each.
            r.refill();
            let entry = huffman::root_entry(main, MAIN_TABLE_BITS, r);
            if entry < LITERAL_ENTRY_LIMIT {
                // A literal needing no subtable. With >= 48 bits buffered two more main
                // symbols fit without a refill: try them as literals too.
                r.consume(entry & 15);
                out[pos] = (entry >> 4) as u8;
                pos += 1;
                let entry = huffman::root_entry(main, MAIN_TABLE_BITS, r);
                if entry < LITERAL_ENTRY_LIMIT && pos < block_end {
                    r.consume(entry & 15);
                    out[pos] = (entry >> 4) as u8;
                    pos += 1;
                    let entry = huffman::root_entry(main, MAIN_TABLE_BITS, r);
                    if entry < LITERAL_ENTRY_LIMIT && pos < block_end {
                        r.consume(entry & 15);
                        out[pos] = (entry >> 4) as u8;
                        pos += 1;
                    }
                }
                continue;
            }
            let sym = huffman::finish_decode(main, MAIN_TABLE_BITS, entry, r) as usize;
            if sym < NUM_CHARS {
                out[pos] = sym as u8;
                pos += 1;
                continue;
            }
            let header = sym - NUM_CHARS;
            let mut length = header & 7;
            let slot = header >> 3;
            if length == 7 {
                length += huffman::decode(lens, LEN_TABLE_BITS, r) as usize;
            }
            length += 2;
            let offset = if slot < 3 {
                let o = recent[slot];
                recent[slot] = recent[0];
                o
            } else {
                // Up to 17 verbatim bits, or 14 and a 7-bit aligned symbol.
                r.ensure(24);
                let extra = u32::from(EXTRA_BITS[slot & 63]);
                let bits = if ALIGNED && extra >= 3 {
                    (r.take(extra - 3) << 3) | huffman::decode(aligned, ALIGNED_TABLE_BITS, r)
                } else {
                    r.take(extra)
                };
                recent[2] = recent[1];
                recent[1] = recent[0];
                OFFSET_BASE[slot & 63].wrapping_add(bits)
            };
            recent[0] = offset;
            let offset = offset as usize;
            if !copy_match(out, pos, offset, length, block_end) {
                return Err(match_error(pos, offset, length, block_end, r));
            }
            pos += length;
        }
        Ok(())
    }
}

/// Reads a pretree, then `count` code lengths starting at `lens[start]`, each coded as a
/// difference (mod 17) from the length already there.
fn read_lens(
    pre_table: &mut [u16; PRE_TABLE_SIZE],
    r: &mut BitReader<'_>,
    lens: &mut [u8],
    start: usize,
    count: usize,
) -> Result<(), DecompressError> {
    let mut pre_lens = [0u8; NUM_PRE_SYMS];
    for l in &mut pre_lens {
        *l = r.read(4) as u8;
    }
    if !huffman::build(pre_table, PRE_TABLE_BITS, &pre_lens, 15) {
        return Err(invalid(HuffmanCode::LzxPretree, r));
    }
    let table = &*pre_table;
    let end = start + count;
    let mut i = start;
    while i < end {
        // A pretree symbol (<= 15 bits), a run (<= 5 bits), another symbol (<= 15).
        r.ensure(35);
        let presym = huffman::decode(table, PRE_TABLE_BITS, r);
        let (run, value) = match presym {
            0..=16 => (1, (lens[i] + 17 - presym as u8) % 17),
            17 => (4 + r.take(4) as usize, 0),
            18 => (20 + r.take(5) as usize, 0),
            _ => {
                let run = 4 + r.take(1) as usize;
                let sym = huffman::decode(table, PRE_TABLE_BITS, r);
                if sym > 17 {
                    return Err(DecompressError::InvalidPretreeSymbol {
                        symbol: sym as u16,
                        offset: r.offset(),
                    });
                }
                (run, (lens[i] + 17 - sym as u8) % 17)
            }
        };
        // At most 50 past `end`, which `lens` has room for.
        lens[i..i + run].fill(value);
        i += run;
    }
    Ok(())
}

fn invalid(code: HuffmanCode, r: &BitReader<'_>) -> DecompressError {
    DecompressError::InvalidCode {
        code,
        offset: r.offset(),
    }
}

/// E8 call translation, forwards: each 0xE8 byte before the last 10 bytes of the chunk is
/// taken as a call; a relative target `rel` in `-pos..12,000,000` becomes absolute
/// (`rel + pos`, or `rel - 12,000,000` when that would reach past the "file size"), and
/// the four operand bytes are skipped.
#[cfg(any(feature = "alloc", test))]
pub(crate) fn e8_translate(data: &mut [u8]) {
    if data.len() <= 10 {
        return;
    }
    let limit = data.len() - 10;
    let mut i = 0;
    while i < limit {
        let Some(k) = data[i..limit].iter().position(|&b| b == 0xe8) else {
            return;
        };
        i += k;
        let t = &mut data[i + 1..i + 5];
        let rel = i32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let pos = i as i32;
        if rel >= -pos && rel < E8_FILE_SIZE {
            let abs = if rel < E8_FILE_SIZE - pos {
                rel + pos
            } else {
                rel - E8_FILE_SIZE
            };
            t.copy_from_slice(&abs.to_le_bytes());
        }
        i += 5;
    }
}

/// Undoes E8 translation: for each 0xE8 byte at position `i < len − 10` (skipping the four
/// bytes after a translated one), the following little-endian i32 was turned from a relative
/// call target into an absolute one; turn it back.
fn undo_e8(data: &mut [u8]) {
    if data.len() <= 10 {
        return;
    }
    let limit = data.len() - 10;
    // `next`: the first position not inside an already translated operand.
    let mut next = 0;
    let mut p = 0;
    // 32 bytes at a time: a mask with bit k set where byte p + k is 0xE8.
    while p + 32 <= limit {
        let block: &[u8; 32] = data[p..p + 32].try_into().unwrap_or(&[0; 32]);
        let mut mask = e8_mask32(block);
        while mask != 0 {
            let at = p + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if at >= next {
                // Rewrites bytes at+1..at+5; those still in `mask` are skipped (< next).
                translate_e8(data, at);
                next = at + 5;
            }
        }
        p += 32;
    }
    for at in p.max(next)..limit {
        if at >= next && data[at] == 0xe8 {
            translate_e8(data, at);
            next = at + 5;
        }
    }
}

/// Bit k set for each byte k of `block` that is 0xE8.
#[inline(always)]
fn e8_mask32(block: &[u8; 32]) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    // SAFETY: the only requirement of `e8_mask_sse2` is SSE2, which this build enables (the
    // cfg above; it is part of the x86-64 baseline).
    #[allow(unsafe_code)]
    return unsafe { e8_mask_sse2(block) };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return e8_mask(block);
}

/// [`e8_mask32`] with SSE2 compare and move-mask (the loads are plain safe reads).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn e8_mask_sse2(block: &[u8; 32]) -> u32 {
    use core::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x};
    let word = |i: usize| {
        let b = &block[i..i + 8];
        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    };
    let e8 = _mm_set1_epi8(0xe8u8 as i8);
    let lo = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_set_epi64x(word(8), word(0)), e8));
    let hi = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_set_epi64x(word(24), word(16)), e8));
    (lo as u32 & 0xffff) | ((hi as u32) << 16)
}

/// [`e8_mask32`], portable: an exact per-byte zero test of `word ^ 0xE8..`, whose high bits
/// are then gathered by a multiply.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn e8_mask(block: &[u8; 32]) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut mask = 0;
    for (k, b) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            ^ 0xe8e8_e8e8_e8e8_e8e8;
        let zero_bytes = !(((x & LOW7) + LOW7) | x) & !LOW7;
        let bits = ((zero_bytes >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
        mask |= bits << (8 * k);
    }
    mask
}

/// Turns the absolute call target after the 0xE8 at `at` back into a relative one.
#[inline]
fn translate_e8(data: &mut [u8], at: usize) {
    let t = &mut data[at + 1..at + 5];
    let abs = i32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let pos = at as i32;
    let rel = if abs >= 0 {
        (abs < E8_FILE_SIZE).then(|| abs - pos)
    } else {
        (abs >= -pos).then(|| abs + E8_FILE_SIZE)
    };
    if let Some(rel) = rel {
        t.copy_from_slice(&rel.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_tables_match_the_spec() {
        assert_eq!(num_offset_slots(15), 30);
        assert_eq!(num_offset_slots(16), 32);
        assert_eq!(num_offset_slots(17), 34);
        assert_eq!(num_offset_slots(21), 50);
        assert_eq!(OFFSET_BASE[3], 1);
        assert_eq!(OFFSET_BASE[4], 2);
        assert_eq!(OFFSET_BASE[30], 32766);
        assert_eq!(OFFSET_BASE[50], 2_097_150);
        assert_eq!(EXTRA_BITS[35], 16);
        assert_eq!(EXTRA_BITS[36], 17);
    }

    #[test]
    fn e8_translation_round_trips_with_the_forward_rule() {
        let mut seed = 0x1234_5678u32;
        for len in [0usize, 5, 10, 11, 15, 100, 4096] {
            let orig: Vec<u8> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    if i % 7 == 0 {
                        0xe8
                    } else {
                        (seed >> 16) as u8
                    }
                })
                .collect();
            let mut data = orig.clone();
            e8_translate(&mut data);
            undo_e8(&mut data);
            assert_eq!(data, orig, "len {len}");
        }
        for b in 0..=255u8 {
            let mut block = [b; 32];
            for k in [1, 4, 6, 17, 31] {
                block[k] = 0xe8;
            }
            block[5] = 0xe9;
            let expect = (0..32)
                .filter(|&k| block[k] == 0xe8)
                .fold(0u32, |m, k| m | 1 << k);
            assert_eq!(e8_mask(&block), expect, "{b:#x}");
            assert_eq!(e8_mask32(&block), expect, "{b:#x}");
        }
    }

    #[test]
    fn e8_translation_is_what_the_decoder_undoes() {
        let mut data = [0u8; 64];
        data[3] = 0xe8;
        data[4..8].copy_from_slice(&100i32.to_le_bytes());
        data[20] = 0xe8;
        data[21..25].copy_from_slice(&(-10i32).to_le_bytes());
        data[60] = 0xe8; // within the last 10 bytes: untouched
        let orig = data;
        e8_translate(&mut data);
        assert_eq!(i32::from_le_bytes(data[4..8].try_into().unwrap()), 103);
        assert_eq!(i32::from_le_bytes(data[21..25].try_into().unwrap()), 10);
        assert_eq!(data[56..], orig[56..]);
    }
}
