//! The LZMS compressor: the encoder side of [`super::super::lzms`].
//!
//! The chunk is run through the x86 filter, parsed (see [`super::lzms_parse`]), and each
//! item is coded as it is chosen, with exactly the decoder's adaptive state: the binary
//! decisions go through a range encoder (forward stream, from the start of the output);
//! Huffman symbols of the five adaptive codes and verbatim bits go into the backward
//! stream, written in 16-bit units from the end of the output down. The codes are rebuilt
//! on the decoder's schedule with the decoder's own construction, and the repeat-offset
//! queue follows the decoder's delayed-insertion rule. At the end the backward stream is
//! moved down to follow the forward one.

use super::super::lzms::adaptive::code_lengths;
use super::super::lzms::streams::Probability;
use super::super::lzms::tables::{
    num_offset_slots, LENGTH_SLOTS, NUM_LENGTH_SLOTS, NUM_OFFSET_SLOTS, OFFSET_SLOTS,
};
use super::super::lzms::{take_repeat, Decisions};
use super::huffman::assign_codewords;

/// Both output streams over one buffer.
pub(crate) struct Streams<'a> {
    out: &'a mut [u8],
    /// Forward: next byte to write, and the range coder.
    pos: usize,
    low: u64,
    range: u32,
    cache: u16,
    cache_size: u64,
    skip_first: bool,
    /// Backward: lowest byte written, and pending bits (MSB first).
    end: usize,
    bits: u64,
    count: u32,
    overflow: bool,
}

impl<'a> Streams<'a> {
    pub(crate) fn new(out: &'a mut [u8]) -> Self {
        let end = out.len() & !1;
        Streams {
            out,
            pos: 0,
            low: 0,
            range: 0xffff_ffff,
            cache: 0,
            cache_size: 1,
            skip_first: true,
            end,
            bits: 0,
            count: 0,
            overflow: false,
        }
    }

    fn put_forward(&mut self, unit: u16) {
        if self.skip_first {
            // The range coder's first unit is the carry slot above the 32-bit code window;
            // the decoder starts after it.
            self.skip_first = false;
            return;
        }
        if self.pos + 2 <= self.end {
            self.out[self.pos..self.pos + 2].copy_from_slice(&unit.to_le_bytes());
        } else {
            self.overflow = true;
        }
        self.pos += 2;
    }

    fn shift_low(&mut self) {
        if (self.low as u32) < 0xffff_0000 || (self.low >> 32) != 0 {
            let carry = (self.low >> 32) as u16;
            let mut unit = self.cache;
            loop {
                self.put_forward(unit.wrapping_add(carry));
                unit = 0xffff;
                self.cache_size -= 1;
                if self.cache_size == 0 {
                    break;
                }
            }
            self.cache = (self.low >> 16) as u16;
        }
        self.cache_size += 1;
        self.low = (self.low & 0xffff) << 16;
    }

    /// Codes `bit` in the context `probs[*state]` and updates both, as the decoder does.
    #[inline(always)]
    pub(crate) fn bit<const N: usize>(
        &mut self,
        bit: u32,
        state: &mut usize,
        probs: &mut [Probability; N],
    ) {
        let entry = &mut probs[*state % N];
        let prob = entry.get();
        if self.range & 0xffff_0000 == 0 {
            self.range <<= 16;
            self.shift_low();
        }
        let bound = (self.range >> 6) * prob;
        if bit == 0 {
            self.range = bound;
        } else {
            self.low += u64::from(bound);
            self.range -= bound;
        }
        entry.update(bit);
        *state = ((*state << 1) | bit as usize) % N;
    }

    /// Appends `n <= 32` bits to the backward stream.
    #[inline(always)]
    pub(crate) fn back_bits(&mut self, v: u32, n: u32) {
        self.bits = (self.bits << n) | u64::from(v);
        self.count += n;
        while self.count >= 16 {
            self.count -= 16;
            self.put_back((self.bits >> self.count) as u16);
        }
    }

    fn put_back(&mut self, unit: u16) {
        if self.end >= self.pos + 2 {
            self.end -= 2;
            self.out[self.end..self.end + 2].copy_from_slice(&unit.to_le_bytes());
        } else {
            self.overflow = true;
        }
    }

    /// Flushes both streams and joins them; the chunk size, or `None` if it did not fit.
    pub(crate) fn finish(mut self) -> Option<usize> {
        for _ in 0..3 {
            self.shift_low();
        }
        if self.count > 0 {
            let unit = (self.bits << (16 - self.count)) as u16;
            self.put_back(unit);
        }
        if self.overflow {
            return None;
        }
        let len = self.out.len() & !1;
        self.out.copy_within(self.end..len, self.pos);
        Some(self.pos + len - self.end)
    }
}

/// Longest LZMS codeword.
const MAX_LEN: u32 = 15;

/// The encoder's copy of one adaptive code (same counts, same rebuilds as the decoder's).
pub(crate) struct AdaptiveEncoder<const S: usize> {
    freqs: [u32; S],
    lens: [u8; S],
    codes: [u32; S],
    num_syms: usize,
    rebuild_freq: u32,
    until_rebuild: u32,
}

impl<const S: usize> AdaptiveEncoder<S> {
    pub(crate) const fn new(rebuild_freq: u32) -> Self {
        AdaptiveEncoder {
            freqs: [1; S],
            lens: [0; S],
            codes: [0; S],
            num_syms: 0,
            rebuild_freq,
            until_rebuild: rebuild_freq,
        }
    }

    pub(crate) fn reset(&mut self, num_syms: usize, nodes: &mut [u32]) {
        self.num_syms = num_syms.min(S);
        self.freqs.fill(1);
        self.build(nodes);
    }

    fn build(&mut self, nodes: &mut [u32]) {
        self.until_rebuild = self.rebuild_freq;
        let n = self.num_syms;
        if n < 2 {
            self.lens.fill(0);
            return;
        }
        code_lengths(&self.freqs[..n], &mut self.lens[..n], nodes);
        assign_codewords(&self.lens[..n], MAX_LEN, &mut self.codes[..n]);
    }

    #[inline(always)]
    pub(crate) fn encode(&mut self, sym: usize, s: &mut Streams<'_>, nodes: &mut [u32]) {
        s.back_bits(self.codes[sym], u32::from(self.lens[sym]));
        if let Some(f) = self.freqs.get_mut(sym) {
            *f += 1;
        }
        self.until_rebuild -= 1;
        if self.until_rebuild == 0 {
            self.build(nodes);
            for f in &mut self.freqs[..self.num_syms] {
                *f = (*f >> 1) + 1;
            }
        }
    }
}

const LITERAL: u32 = 0;
const LZ: u32 = 1;

/// The item coder: decisions, codes and queues, in the decoder's order.
pub(crate) struct ItemCoder {
    d: Decisions,
    pub(crate) literal: AdaptiveEncoder<256>,
    pub(crate) lz_offset: AdaptiveEncoder<NUM_OFFSET_SLOTS>,
    pub(crate) length: AdaptiveEncoder<NUM_LENGTH_SLOTS>,
    nodes: [u32; NUM_OFFSET_SLOTS],
    recent_lz: [u32; 4],
    prev: u32,
    main_state: usize,
    match_state: usize,
    lz_state: usize,
    lz_rep_states: [usize; 2],
}

impl ItemCoder {
    pub(crate) fn new() -> Self {
        ItemCoder {
            d: Decisions::INITIAL,
            literal: AdaptiveEncoder::new(1024),
            lz_offset: AdaptiveEncoder::new(1024),
            length: AdaptiveEncoder::new(512),
            nodes: [0; NUM_OFFSET_SLOTS],
            recent_lz: [1, 2, 3, 4],
            prev: LITERAL,
            main_state: 0,
            match_state: 0,
            lz_state: 0,
            lz_rep_states: [0; 2],
        }
    }

    /// Starts a chunk of `size` bytes.
    pub(crate) fn reset(&mut self, size: usize) {
        self.d = Decisions::INITIAL;
        self.literal.reset(256, &mut self.nodes);
        self.lz_offset
            .reset(num_offset_slots(size), &mut self.nodes);
        self.length.reset(NUM_LENGTH_SLOTS, &mut self.nodes);
        self.recent_lz = [1, 2, 3, 4];
        self.prev = LITERAL;
        self.main_state = 0;
        self.match_state = 0;
        self.lz_state = 0;
        self.lz_rep_states = [0; 2];
    }

    /// The three offsets a repeat match may use now (index = repeat index).
    #[inline(always)]
    pub(crate) fn reps(&self) -> [u32; 3] {
        let k = (self.prev & 1) as usize;
        [
            self.recent_lz[k],
            self.recent_lz[k + 1],
            self.recent_lz[k + 2],
        ]
    }

    /// The repeat offsets right after a literal (the queue's first three).
    #[inline(always)]
    pub(crate) fn reps_after_literal(&self) -> [u32; 3] {
        [self.recent_lz[0], self.recent_lz[1], self.recent_lz[2]]
    }

    pub(crate) fn literal(&mut self, s: &mut Streams<'_>, b: u8) {
        s.bit(0, &mut self.main_state, &mut self.d.main);
        self.literal.encode(usize::from(b), s, &mut self.nodes);
        self.prev = LITERAL;
    }

    /// An LZ match of `len` bytes at offset `off`, with repeat index `rep` if it repeats.
    pub(crate) fn lz(&mut self, s: &mut Streams<'_>, off: u32, len: u32, rep: Option<usize>) {
        s.bit(1, &mut self.main_state, &mut self.d.main);
        s.bit(0, &mut self.match_state, &mut self.d.matched);
        match rep {
            None => {
                s.bit(0, &mut self.lz_state, &mut self.d.lz);
                let slot = offset_slot(off);
                self.lz_offset.encode(slot, s, &mut self.nodes);
                let (base, extra) = OFFSET_SLOTS[slot];
                s.back_bits(off - base, u32::from(extra));
                self.recent_lz.copy_within(0..3, 1);
            }
            Some(r) => {
                s.bit(1, &mut self.lz_state, &mut self.d.lz);
                let st = &mut self.lz_rep_states;
                s.bit(u32::from(r > 0), &mut st[0], &mut self.d.lz_rep[0]);
                if r > 0 {
                    s.bit(u32::from(r > 1), &mut st[1], &mut self.d.lz_rep[1]);
                }
                let k = (self.prev & 1) as usize;
                let taken = take_repeat(&mut self.recent_lz, r, k);
                debug_assert_eq!(taken, off);
            }
        }
        self.recent_lz[0] = off;
        self.prev = LZ;
        let slot = length_slot(len);
        self.length.encode(slot, s, &mut self.nodes);
        let (base, extra) = LENGTH_SLOTS[slot];
        if extra > 0 {
            s.back_bits(len - base, u32::from(extra));
        }
    }
}

/// The offset slot of `off` (1 or more).
#[inline(always)]
pub(crate) fn offset_slot(off: u32) -> usize {
    OFFSET_SLOTS[..NUM_OFFSET_SLOTS].partition_point(|&(base, _)| base <= off) - 1
}

/// The length slot of `len` (1 or more).
#[inline(always)]
pub(crate) fn length_slot(len: u32) -> usize {
    LENGTH_SLOTS[..NUM_LENGTH_SLOTS].partition_point(|&(base, _)| base <= len) - 1
}
