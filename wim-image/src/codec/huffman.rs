//! Canonical Huffman decode tables, shared by the three codecs.
//!
//! A code is given by one codeword length per symbol (0 = unused); canonical codewords are
//! assigned in order of (length, symbol). The table is indexed by the next `table_bits`
//! input bits. Each 16-bit entry is `symbol << 4 | length`; for codewords longer than
//! `table_bits` the root entry instead points at a subtable, `start << 4 | index_bits`,
//! where `start >= 1 << table_bits` (every symbol is below that, which tells the two apart),
//! and the subtable entry stores `length - table_bits`.
//!
//! Table sizes: the largest number of entries a complete code can need for a given
//! (symbols, root bits, longest codeword) is what zlib's `enough` utility computes; the
//! callers size their tables with those values.

/// Longest codeword any WIM codec uses (LZX main and length codes).
pub(crate) const MAX_LEN: usize = 16;

/// Most symbols in any code (LZMS offset slots).
pub(crate) const MAX_SYMS: usize = 799;

/// A source of bits for table lookups (forward XPRESS/LZX or backward LZMS reader).
pub(crate) trait Bits {
    /// The next `n` bits, most significant first (the caller guarantees they are buffered).
    fn peek(&self, n: u32) -> u32;
    /// Drops `n` bits.
    fn consume(&mut self, n: u32);
}

impl Bits for super::bits::BitReader<'_> {
    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        super::bits::BitReader::peek(self, n)
    }
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        super::bits::BitReader::consume(self, n)
    }
}

/// Decodes one symbol; the reader must hold at least the code's longest codeword.
#[inline(always)]
pub(crate) fn decode<B: Bits, const N: usize>(table: &[u16; N], table_bits: u32, r: &mut B) -> u32 {
    let entry = root_entry(table, table_bits, r);
    finish_decode(table, table_bits, entry, r)
}

/// The root-table entry for the next bits (nothing consumed).
#[inline(always)]
pub(crate) fn root_entry<B: Bits, const N: usize>(table: &[u16; N], table_bits: u32, r: &B) -> u32 {
    u32::from(table[r.peek(table_bits) as usize])
}

/// Finishes [`decode`] from the root entry [`root_entry`] gave.
#[inline(always)]
pub(crate) fn finish_decode<B: Bits, const N: usize>(
    table: &[u16; N],
    table_bits: u32,
    mut entry: u32,
    r: &mut B,
) -> u32 {
    if entry >> 4 >= 1 << table_bits {
        r.consume(table_bits);
        let start = (entry >> 4) as usize;
        let index = r.peek(entry & 15) as usize;
        entry = u32::from(*table.get(start + index).unwrap_or(&0));
    }
    r.consume(entry & 15);
    entry >> 4
}

/// Builds the decode table for `lens` (each at most `max_len`, `max_len <= 16`).
///
/// Returns `false` if the lengths over-fill the code space or fill only part of it. An empty
/// code (all lengths 0) is accepted, as wimlib does: it decodes symbol 0 from zero bits.
pub(crate) fn build(table: &mut [u16], table_bits: u32, lens: &[u8], max_len: u32) -> bool {
    debug_assert!(lens.len() <= MAX_SYMS && max_len as usize <= MAX_LEN);
    let mut counts = [0u16; MAX_LEN + 1];
    for &l in lens {
        match counts.get_mut(usize::from(l)) {
            Some(c) if u32::from(l) <= max_len => *c += 1,
            _ => return false,
        }
    }
    // Kraft: the lengths must fill the code space exactly.
    let mut remainder: i32 = 1;
    for &c in &counts[1..=max_len as usize] {
        remainder = (remainder << 1) - i32::from(c);
        if remainder < 0 {
            return false;
        }
    }
    let root_size = 1usize << table_bits;
    if table.len() < root_size {
        return false;
    }
    if remainder != 0 {
        if remainder != 1 << max_len {
            return false;
        }
        table[..root_size].fill(0);
        return true;
    }
    let mut sorted = [0u16; MAX_SYMS];
    fill(table, table_bits, lens, max_len, &counts, &mut sorted)
}

/// Builds the decode table for a code known to be complete, given its length counts
/// (`counts[l]` = symbols of length `l`); `sorted` is working space of `lens.len()` entries.
pub(crate) fn build_complete(
    table: &mut [u16],
    table_bits: u32,
    lens: &[u8],
    max_len: u32,
    counts: &[u16; MAX_LEN + 1],
    sorted: &mut [u16],
) -> bool {
    table.len() >= 1 << table_bits && fill(table, table_bits, lens, max_len, counts, sorted)
}

/// The table fill shared by [`build`] and [`build_complete`]: `counts` describes a complete
/// code, `table` has at least `2^table_bits` entries.
fn fill(
    table: &mut [u16],
    table_bits: u32,
    lens: &[u8],
    max_len: u32,
    counts: &[u16; MAX_LEN + 1],
    sorted: &mut [u16],
) -> bool {
    let root_size = 1usize << table_bits;
    // Symbols sorted by (length, symbol).
    let mut offsets = [0u16; MAX_LEN + 2];
    for len in 1..=max_len as usize {
        offsets[len + 1] = offsets[len] + counts[len];
    }
    for (sym, &l) in lens.iter().enumerate() {
        if l != 0 {
            if let Some(o) = offsets.get_mut(usize::from(l)) {
                if let Some(slot) = sorted.get_mut(usize::from(*o)) {
                    *slot = sym as u16;
                }
                *o += 1;
            }
        }
    }
    let used = usize::from(offsets[max_len as usize + 1]).min(sorted.len());
    let sorted = &sorted[..used];

    // Root entries, shortest codewords first: each fills 2^(table_bits - len) slots.
    let mut pos = 0usize;
    let mut idx = 0usize;
    let mut len = 1u32;
    while len <= table_bits && len <= max_len {
        let n = 1usize << (table_bits - len);
        for _ in 0..counts[len as usize] {
            let entry = (sorted[idx] << 4) | len as u16;
            table[pos..pos + n].fill(entry);
            pos += n;
            idx += 1;
        }
        len += 1;
    }
    if idx == used {
        return pos == root_size;
    }

    // Subtables for the longer codewords.
    let mut counts = *counts;
    let mut codeword = (pos as u32) << 1;
    let mut len = table_bits + 1;
    let mut sub_pos = root_size;
    let mut sub_bits = 0u32;
    let mut prefix = u32::MAX;
    for &sym in &sorted[idx..] {
        while counts[len as usize] == 0 {
            len += 1;
            codeword <<= 1;
            if len > max_len {
                return false;
            }
        }
        let p = codeword >> (len - table_bits);
        if p != prefix {
            prefix = p;
            // The subtable must be big enough for its whole prefix's share of the codes.
            sub_bits = len - table_bits;
            let mut rem: i32 = 1 << sub_bits;
            loop {
                rem -= i32::from(counts[(table_bits + sub_bits) as usize]);
                if rem <= 0 || table_bits + sub_bits >= max_len {
                    break;
                }
                sub_bits += 1;
                rem <<= 1;
            }
            if sub_pos >= 1 << 12 {
                return false;
            }
            table[p as usize] = ((sub_pos as u16) << 4) | sub_bits as u16;
        }
        let n = 1usize << (sub_bits - (len - table_bits));
        match table.get_mut(sub_pos..sub_pos + n) {
            Some(s) => s.fill((sym << 4) | (len - table_bits) as u16),
            None => return false,
        }
        sub_pos += n;
        counts[len as usize] -= 1;
        codeword += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vec16 {
        bits: u64,
        n: u32,
    }
    impl Bits for Vec16 {
        fn peek(&self, n: u32) -> u32 {
            ((self.bits << (64 - self.n)) >> (64 - n)) as u32
        }
        fn consume(&mut self, n: u32) {
            self.n -= n;
        }
    }

    /// Canonical codewords for `lens`, by the textbook construction.
    fn codewords(lens: &[u8]) -> Vec<(u32, u32)> {
        let mut next = [0u32; 18];
        let mut count = [0u32; 18];
        for &l in lens {
            count[l as usize] += 1;
        }
        count[0] = 0;
        for l in 1..17 {
            next[l + 1] = (next[l] + count[l]) << 1;
        }
        lens.iter()
            .map(|&l| {
                let c = next[l as usize];
                next[l as usize] += 1;
                (c, u32::from(l))
            })
            .collect()
    }

    fn check_code(lens: &[u8], table_bits: u32, max_len: u32) {
        let mut table = [0u16; 4096];
        assert!(build(&mut table, table_bits, lens, max_len));
        let mut t = [0u16; 4096];
        t.copy_from_slice(&table);
        for (sym, (cw, l)) in codewords(lens).into_iter().enumerate() {
            if l == 0 {
                continue;
            }
            // The codeword followed by ones, then by zeros: both decode to `sym`.
            for pad in [0u64, u64::MAX] {
                let bits = (u64::from(cw) << (32 - l)) | (pad >> (32 + l));
                let mut r = Vec16 { bits, n: 32 };
                assert_eq!(decode(&t, table_bits, &mut r), sym as u32);
                assert_eq!(32 - r.n, l, "symbol {sym}");
            }
        }
    }

    #[test]
    fn decodes_every_codeword() {
        // Lengths 1..16 (a maximally skewed code) plus a flat one.
        let mut skew: Vec<u8> = (1..=16).collect();
        skew.push(16);
        check_code(&skew, 9, 16);
        check_code(&skew, 11, 16);
        check_code(&[3u8; 8], 7, 7);
        check_code(&[9u8; 512], 11, 15);
        let mut mixed = vec![9u8; 256];
        mixed.extend([10u8; 512]);
        check_code(&mixed, 11, 15);
    }

    #[test]
    fn rejects_incomplete_and_oversubscribed_codes() {
        let mut t = [0u16; 4096];
        assert!(!build(&mut t, 6, &[1, 2, 3], 15));
        assert!(!build(&mut t, 6, &[1, 1, 1], 15));
        assert!(!build(&mut t, 6, &[1], 15));
        assert!(!build(&mut t, 6, &[16, 1], 15));
        assert!(build(&mut t, 6, &[0, 0, 0], 15));
        assert_eq!(t[0], 0);
    }
}
