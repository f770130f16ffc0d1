//! LZX block output: Huffman codes for a block's items, the choice between a verbatim,
//! aligned-offset and uncompressed block, the pretree-coded code lengths, and the items.

use super::super::lzx::{
    EXTRA_BITS, MAX_MAIN_SYMS, NUM_ALIGNED_SYMS, NUM_CHARS, NUM_LEN_SYMS, NUM_PRE_SYMS, OFFSET_BASE,
};
use super::bitout::WordWriter;
use super::huffman::make_code;
use super::Item;

const MAIN_LIMIT: u32 = 16;
const LEN_LIMIT: u32 = 16;
const ALIGNED_LIMIT: u32 = 7;
const PRE_LIMIT: u32 = 15;
/// Largest number of pretree items one length run can need.
const MAX_PRE_ITEMS: usize = MAX_MAIN_SYMS;

/// Main symbol and length symbol (or `None`) of a match with offset code `code` (0–2 =
/// repeat offsets, else the offset plus 2) and length `len` (2–257).
#[inline(always)]
pub(crate) fn match_symbols(len: u32, code: u32) -> (usize, Option<usize>) {
    let slot = if code < 3 {
        code as usize
    } else {
        offset_slot(code - 2)
    };
    let adj = len as usize - 2;
    (
        NUM_CHARS + slot * 8 + adj.min(7),
        (adj >= 7).then(|| adj - 7),
    )
}

/// The offset slot of an explicit offset (1 or more).
#[inline(always)]
pub(crate) fn offset_slot(off: u32) -> usize {
    let pb = off + 2;
    if pb < 1 << 18 {
        let l = 31 - pb.leading_zeros();
        (2 * l + ((pb >> (l - 1)) & 1)) as usize
    } else {
        34 + (pb >> 17) as usize
    }
}

/// Per-block code state; `prev_*` are the lengths of the chunk's previous compressed block
/// (all zero at the start of a chunk), which the pretree codes differences against.
pub(crate) struct BlockCoder {
    pub(crate) num_main: usize,
    /// Whether the block-size field has the 8 extra bits (windows of 64 KiB or more).
    pub(crate) wide_sizes: bool,
    main_freqs: [u32; MAX_MAIN_SYMS],
    len_freqs: [u32; NUM_LEN_SYMS],
    aligned_freqs: [u32; NUM_ALIGNED_SYMS],
    main_lens: [u8; MAX_MAIN_SYMS],
    main_codes: [u32; MAX_MAIN_SYMS],
    len_lens: [u8; NUM_LEN_SYMS],
    len_codes: [u32; NUM_LEN_SYMS],
    aligned_lens: [u8; NUM_ALIGNED_SYMS],
    aligned_codes: [u32; NUM_ALIGNED_SYMS],
    prev_main: [u8; MAX_MAIN_SYMS],
    prev_len: [u8; NUM_LEN_SYMS],
    pre: [PreItem; MAX_PRE_ITEMS],
}

/// One pretree symbol with its extra bits.
#[derive(Clone, Copy, Default)]
struct PreItem {
    sym: u8,
    extra: u8,
    extra_bits: u8,
}

impl BlockCoder {
    pub(crate) fn new(num_main: usize, wide_sizes: bool) -> Self {
        BlockCoder {
            num_main,
            wide_sizes,
            main_freqs: [0; MAX_MAIN_SYMS],
            len_freqs: [0; NUM_LEN_SYMS],
            aligned_freqs: [0; NUM_ALIGNED_SYMS],
            main_lens: [0; MAX_MAIN_SYMS],
            main_codes: [0; MAX_MAIN_SYMS],
            len_lens: [0; NUM_LEN_SYMS],
            len_codes: [0; NUM_LEN_SYMS],
            aligned_lens: [0; NUM_ALIGNED_SYMS],
            aligned_codes: [0; NUM_ALIGNED_SYMS],
            prev_main: [0; MAX_MAIN_SYMS],
            prev_len: [0; NUM_LEN_SYMS],
            pre: [PreItem::default(); MAX_PRE_ITEMS],
        }
    }

    /// Forgets the previous block's lengths (a new chunk).
    pub(crate) fn start_chunk(&mut self) {
        self.prev_main.fill(0);
        self.prev_len.fill(0);
    }

    /// Code lengths the items of a block would get (for the near-optimal parser's prices):
    /// main and length lengths.
    pub(crate) fn lens_for(&mut self, items: &[Item]) -> (&[u8], &[u8]) {
        self.count(items);
        self.build_codes();
        (&self.main_lens[..self.num_main], &self.len_lens)
    }

    /// The main and length codes for the counted frequencies.
    fn build_codes(&mut self) {
        let m = self.num_main;
        make_code(
            &self.main_freqs[..m],
            MAIN_LIMIT,
            &mut self.main_lens,
            &mut self.main_codes,
        );
        make_code(
            &self.len_freqs,
            LEN_LIMIT,
            &mut self.len_lens,
            &mut self.len_codes,
        );
    }

    fn count(&mut self, items: &[Item]) {
        self.main_freqs.fill(0);
        self.len_freqs.fill(0);
        self.aligned_freqs.fill(0);
        for it in items {
            if it.len == 1 {
                self.main_freqs[it.off as usize] += 1;
                continue;
            }
            let (main, len) = match_symbols(it.len, it.off);
            self.main_freqs[main] += 1;
            if let Some(l) = len {
                self.len_freqs[l] += 1;
            }
            if it.off >= 3 {
                let slot = (main - NUM_CHARS) >> 3;
                if EXTRA_BITS[slot] >= 3 {
                    let extra = it.off - 2 - OFFSET_BASE[slot];
                    self.aligned_freqs[(extra & 7) as usize] += 1;
                }
            }
        }
    }

    /// Bits the counted items take in a verbatim block with the built codes: symbols and
    /// extra offset bits, without the block header and code lengths.
    fn verbatim_bits(&self) -> u64 {
        let m = self.num_main;
        let mut bits: u64 = 0;
        for (f, &l) in self.main_freqs[..m].iter().zip(&self.main_lens[..m]) {
            bits += u64::from(*f) * u64::from(l);
        }
        for (f, &l) in self.len_freqs.iter().zip(&self.len_lens) {
            bits += u64::from(*f) * u64::from(l);
        }
        let slots = self.main_freqs[NUM_CHARS..m].chunks_exact(8);
        for (row, &extra) in slots.zip(&EXTRA_BITS).skip(3) {
            let n: u64 = row.iter().map(|&f| u64::from(f)).sum();
            bits += n * u64::from(extra);
        }
        bits
    }

    /// Whether a block of `raw_len` bytes is not worth a near-optimal parse, judged from
    /// `items`, the block's greedy parse, whose codes [`Self::lens_for`] has just built:
    /// at most 1/32 of the bytes are in matches, so a better choice of matches can gain
    /// little, and the items with their code lengths already take at least as many bits as
    /// the bytes themselves. (Compressed or random data: the block ends up stored.)
    pub(crate) fn incompressible(&mut self, items: &[Item], raw_len: usize) -> bool {
        let matched: usize = items
            .iter()
            .filter(|it| it.len > 1)
            .map(|it| it.len as usize)
            .sum();
        if matched > raw_len / 32 {
            return false;
        }
        let bits = self.verbatim_bits() as i64 + self.lens_bits();
        bits >= 8 * raw_len as i64
    }

    /// Writes one block holding `items`, which cover `raw` (the E8-translated bytes of the
    /// block); `queue` is the repeat-offset state after the block, which an uncompressed
    /// block must carry.
    pub(crate) fn write_block(
        &mut self,
        w: &mut WordWriter<'_>,
        items: &[Item],
        raw: &[u8],
        queue: [u32; 3],
    ) {
        self.count(items);
        self.build_codes();
        make_code(
            &self.aligned_freqs,
            ALIGNED_LIMIT,
            &mut self.aligned_lens,
            &mut self.aligned_codes,
        );
        // Bits of the items in a verbatim block, and what aligned coding saves.
        let bits = self.verbatim_bits();
        let mut aligned_delta: i64 = 24;
        for (f, &l) in self.aligned_freqs.iter().zip(&self.aligned_lens) {
            aligned_delta += i64::from(*f) * (i64::from(l) - 3);
        }
        let aligned = aligned_delta < 0;
        let code_bits = self.lens_bits();
        let header_bits = 3 + if raw.len() == 32768 {
            1
        } else if self.wide_sizes {
            25
        } else {
            17
        };
        let compressed =
            header_bits + code_bits + bits as i64 + if aligned { aligned_delta } else { 0 };
        let uncompressed = (header_bits + 16 + (12 + raw.len() as i64 + 1) * 8) & !15;
        if uncompressed < compressed {
            self.write_header(w, 3, raw.len());
            w.align_for_raw();
            for q in queue {
                w.raw(&q.to_le_bytes());
            }
            w.raw(raw);
            if raw.len() % 2 == 1 {
                w.raw(&[0]);
            }
            return;
        }
        self.write_header(w, if aligned { 2 } else { 1 }, raw.len());
        if aligned {
            for &l in &self.aligned_lens {
                w.bits(u32::from(l), 3);
            }
        }
        self.write_lens(w);
        self.write_items(w, items, aligned);
        self.prev_main.copy_from_slice(&self.main_lens);
        self.prev_len.copy_from_slice(&self.len_lens);
    }

    fn write_header(&self, w: &mut WordWriter<'_>, block_type: u32, size: usize) {
        w.bits(block_type, 3);
        if size == 32768 {
            w.bits(1, 1);
        } else {
            w.bits(0, 1);
            if self.wide_sizes {
                w.bits((size >> 8) as u32, 16);
                w.bits((size & 0xff) as u32, 8);
            } else {
                w.bits(size as u32, 16);
            }
        }
    }

    /// The three length runs: main literals, main match headers, length code.
    fn runs(&self) -> [(usize, usize, bool); 3] {
        [
            (0, NUM_CHARS, true),
            (NUM_CHARS, self.num_main, true),
            (0, 0, false),
        ]
    }

    /// Run-length codes one run into `self.pre` and builds its pretree: (items, lengths,
    /// codewords).
    fn pretree(
        &mut self,
        (lo, hi, is_main): (usize, usize, bool),
    ) -> (usize, [u8; NUM_PRE_SYMS], [u32; NUM_PRE_SYMS]) {
        let n = self.rle(lo, hi, is_main);
        let mut freqs = [0u32; NUM_PRE_SYMS];
        for p in &self.pre[..n] {
            freqs[usize::from(p.sym)] += 1;
        }
        let mut lens = [0u8; NUM_PRE_SYMS];
        let mut codes = [0u32; NUM_PRE_SYMS];
        make_code(&freqs, PRE_LIMIT, &mut lens, &mut codes);
        (n, lens, codes)
    }

    /// Bits the three pretree-coded length runs take.
    fn lens_bits(&mut self) -> i64 {
        let mut total = 0;
        for run in self.runs() {
            let (n, lens, _) = self.pretree(run);
            total += 80;
            for p in &self.pre[..n] {
                total += i64::from(lens[usize::from(p.sym)]) + i64::from(p.extra_bits);
            }
        }
        total
    }

    fn write_lens(&mut self, w: &mut WordWriter<'_>) {
        for run in self.runs() {
            let (n, lens, codes) = self.pretree(run);
            for &l in &lens {
                w.bits(u32::from(l), 4);
            }
            for p in &self.pre[..n] {
                let s = usize::from(p.sym);
                w.bits(codes[s], u32::from(lens[s]));
                w.bits(u32::from(p.extra), u32::from(p.extra_bits));
            }
        }
    }

    /// Run-length codes lengths `lo..hi` of the main code (or all length-code lengths)
    /// against the previous block's into `self.pre`; returns the item count.
    fn rle(&mut self, lo: usize, hi: usize, is_main: bool) -> usize {
        let (cur, prev): (&[u8], &[u8]) = if is_main {
            (&self.main_lens[lo..hi], &self.prev_main[lo..hi])
        } else {
            (&self.len_lens[..], &self.prev_len[..])
        };
        let delta = |i: usize| (prev[i] + 17 - cur[i]) % 17;
        let mut n = 0;
        let mut push = |sym: u8, extra: u8, extra_bits: u8| {
            self.pre[n] = PreItem {
                sym,
                extra,
                extra_bits,
            };
            n += 1;
        };
        let mut i = 0;
        while i < cur.len() {
            let v = cur[i];
            let mut run = 1;
            while i + run < cur.len() && cur[i + run] == v {
                run += 1;
            }
            let end = i + run;
            if v == 0 {
                while end - i >= 20 {
                    let r = (end - i).min(51);
                    push(18, (r - 20) as u8, 5);
                    i += r;
                }
                if end - i >= 4 {
                    push(17, (end - i - 4) as u8, 4);
                    i = end;
                }
            } else {
                while end - i >= 4 {
                    let r = (end - i).min(5);
                    push(19, (r - 4) as u8, 1);
                    push(delta(i), 0, 0);
                    i += r;
                }
            }
            while i < end {
                push(delta(i), 0, 0);
                i += 1;
            }
        }
        n
    }

    fn write_items(&self, w: &mut WordWriter<'_>, items: &[Item], aligned: bool) {
        for it in items {
            if it.len == 1 {
                let s = it.off as usize;
                w.bits(self.main_codes[s], u32::from(self.main_lens[s]));
                continue;
            }
            let (main, len) = match_symbols(it.len, it.off);
            w.bits(self.main_codes[main], u32::from(self.main_lens[main]));
            if let Some(l) = len {
                w.bits(self.len_codes[l], u32::from(self.len_lens[l]));
            }
            if it.off >= 3 {
                let slot = (main - NUM_CHARS) >> 3;
                let nbits = u32::from(EXTRA_BITS[slot]);
                let extra = it.off - 2 - OFFSET_BASE[slot];
                if aligned && nbits >= 3 {
                    w.long_bits(extra >> 3, nbits - 3);
                    let a = (extra & 7) as usize;
                    w.bits(self.aligned_codes[a], u32::from(self.aligned_lens[a]));
                } else {
                    w.long_bits(extra, nbits);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_slots_agree_with_the_decoder_tables() {
        for off in 1..(1u32 << 21) - 2 {
            let s = offset_slot(off);
            assert!((3..50).contains(&s), "{off}");
            assert!(
                OFFSET_BASE[s] <= off && off < OFFSET_BASE[s + 1],
                "{off} slot {s}"
            );
        }
    }
}
