//! The LZMS compressor: the encoder side of [`super::super::lzms`].
//!
//! The chunk is run through the x86 filter, parsed (see [`super::lzms_opt`]), and each
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
use super::heap;
use super::huffman::assign_codewords;
use crate::codec::alloc::{vec, vec::Vec};

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
        state: &mut u8,
        probs: &mut [Probability; N],
    ) {
        let entry = &mut probs[usize::from(*state) % N];
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
        *state = next_state::<N>(*state, bit);
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

/// The context after coding `bit` in a context of `N` (a power of two) entries.
#[inline(always)]
pub(crate) fn next_state<const N: usize>(state: u8, bit: u32) -> u8 {
    (((usize::from(state) << 1) | bit as usize) % N) as u8
}

/// The encoder's copy of one adaptive code (same counts, same rebuilds as the decoder's).
pub(crate) struct AdaptiveEncoder<const S: usize> {
    freqs: [u32; S],
    lens: [u8; S],
    codes: [u32; S],
    num_syms: usize,
    rebuild_freq: u32,
    until_rebuild: u32,
    /// Counts the rebuilds, so that a cost table built from `lens` knows when it is stale.
    generation: u32,
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
            generation: 0,
        }
    }

    pub(crate) fn reset(&mut self, num_syms: usize, nodes: &mut [u32]) {
        self.num_syms = num_syms.min(S);
        self.freqs.fill(1);
        self.build(nodes);
    }

    fn build(&mut self, nodes: &mut [u32]) {
        self.until_rebuild = self.rebuild_freq;
        self.generation = self.generation.wrapping_add(1);
        let n = self.num_syms;
        if n < 2 {
            self.lens.fill(0);
            return;
        }
        code_lengths(&self.freqs[..n], &mut self.lens[..n], nodes);
        assign_codewords(&self.lens[..n], MAX_LEN, &mut self.codes[..n]);
    }

    /// The current codeword lengths (what a symbol costs now, in bits).
    #[inline(always)]
    pub(crate) fn lens(&self) -> &[u8; S] {
        &self.lens
    }

    /// Changes whenever the code is rebuilt.
    #[inline(always)]
    pub(crate) fn generation(&self) -> u32 {
        self.generation
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

/// Kinds of the previous item (for the queues' delayed insertion).
const LITERAL: u8 = 0;
const LZ: u8 = 1;
const DELTA: u8 = 2;

/// Delta (power, raw offset) pairs are packed as `power << PAIR_SHIFT | raw`; the parser
/// only makes raw offsets below `2^PAIR_SHIFT`.
pub(crate) const PAIR_SHIFT: u32 = 28;

/// One coded item. `src` says what it is:
/// * `len == 1`: a literal, `src` = the byte;
/// * LZ: `src < REPS` = the repeat index, else `src - REPS + 1` = the offset;
/// * delta (`src & DELTA_TAG`): the rest likewise, a repeat index or `pair + REPS - 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LzmsItem {
    pub(crate) len: u32,
    pub(crate) src: u32,
}

/// Repeat indices per queue.
pub(crate) const REPS: u32 = 3;
/// Marks a delta item's `src`.
pub(crate) const DELTA_TAG: u32 = 1 << 31;

impl LzmsItem {
    #[inline(always)]
    pub(crate) fn literal(b: u8) -> Self {
        LzmsItem {
            len: 1,
            src: u32::from(b),
        }
    }

    #[inline(always)]
    pub(crate) fn lz_rep(len: u32, rep: usize) -> Self {
        LzmsItem {
            len,
            src: rep as u32,
        }
    }

    #[inline(always)]
    pub(crate) fn lz(len: u32, off: u32) -> Self {
        LzmsItem {
            len,
            src: off + REPS - 1,
        }
    }

    #[inline(always)]
    pub(crate) fn delta_rep(len: u32, rep: usize) -> Self {
        LzmsItem {
            len,
            src: DELTA_TAG | rep as u32,
        }
    }

    #[inline(always)]
    pub(crate) fn delta(len: u32, pair: u32) -> Self {
        LzmsItem {
            len,
            src: DELTA_TAG | (pair + REPS - 1),
        }
    }
}

/// The part of the adaptive state the parser follows per position: both recent-source
/// queues and the decision contexts (not the probabilities or the codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct State {
    /// LZ offsets, newest first; slot 0 still pending when `prev` is [`LZ`].
    pub(crate) lz: [u32; 4],
    /// Delta pairs likewise (pending when `prev` is [`DELTA`]).
    pub(crate) delta: [u32; 4],
    prev: u8,
    pub(crate) main: u8,
    pub(crate) matched: u8,
    pub(crate) lz_ctx: u8,
    pub(crate) lz_rep: [u8; 2],
    pub(crate) delta_ctx: u8,
    pub(crate) delta_rep: [u8; 2],
}

impl State {
    pub(crate) const INITIAL: State = State {
        lz: [1, 2, 3, 4],
        delta: [1, 2, 3, 4],
        prev: LITERAL,
        main: 0,
        matched: 0,
        lz_ctx: 0,
        lz_rep: [0; 2],
        delta_ctx: 0,
        delta_rep: [0; 2],
    };

    /// The LZ offsets a repeat match may use now (index = repeat index).
    #[inline(always)]
    pub(crate) fn lz_reps(&self) -> [u32; 3] {
        let k = usize::from(self.prev == LZ);
        [self.lz[k], self.lz[k + 1], self.lz[k + 2]]
    }

    /// The delta pairs a repeat delta match may use now.
    #[inline(always)]
    pub(crate) fn delta_reps(&self) -> [u32; 3] {
        let k = usize::from(self.prev == DELTA);
        [self.delta[k], self.delta[k + 1], self.delta[k + 2]]
    }

    /// The state after `item`, exactly as the decoder moves.
    #[inline(always)]
    pub(crate) fn apply(&mut self, item: LzmsItem) {
        if item.len == 1 {
            self.main = next_state::<16>(self.main, 0);
            self.prev = LITERAL;
            return;
        }
        self.main = next_state::<16>(self.main, 1);
        let delta = item.src & DELTA_TAG != 0;
        let src = item.src & !DELTA_TAG;
        self.matched = next_state::<32>(self.matched, u32::from(delta));
        let (queue, ctx, reps, kind) = if delta {
            (
                &mut self.delta,
                &mut self.delta_ctx,
                &mut self.delta_rep,
                DELTA,
            )
        } else {
            (&mut self.lz, &mut self.lz_ctx, &mut self.lz_rep, LZ)
        };
        let v = if src >= REPS {
            *ctx = next_state::<64>(*ctx, 0);
            queue.copy_within(0..3, 1);
            src - (REPS - 1)
        } else {
            let r = src as usize;
            *ctx = next_state::<64>(*ctx, 1);
            reps[0] = next_state::<64>(reps[0], u32::from(r > 0));
            if r > 0 {
                reps[1] = next_state::<64>(reps[1], u32::from(r > 1));
            }
            take_repeat(queue, r, usize::from(self.prev == kind))
        };
        queue[0] = v;
        self.prev = kind;
    }
}

/// The item coder: decisions, codes and queues, in the decoder's order.
pub(crate) struct ItemCoder {
    pub(crate) d: Decisions,
    pub(crate) literal: AdaptiveEncoder<256>,
    pub(crate) lz_offset: AdaptiveEncoder<NUM_OFFSET_SLOTS>,
    pub(crate) length: AdaptiveEncoder<NUM_LENGTH_SLOTS>,
    pub(crate) delta_offset: AdaptiveEncoder<NUM_OFFSET_SLOTS>,
    pub(crate) delta_power: AdaptiveEncoder<8>,
    nodes: [u32; NUM_OFFSET_SLOTS],
    pub(crate) st: State,
    pub(crate) slots: SlotTable,
}

impl ItemCoder {
    pub(crate) fn new(max_chunk: usize) -> Self {
        ItemCoder {
            d: Decisions::INITIAL,
            literal: AdaptiveEncoder::new(1024),
            lz_offset: AdaptiveEncoder::new(1024),
            length: AdaptiveEncoder::new(512),
            delta_offset: AdaptiveEncoder::new(1024),
            delta_power: AdaptiveEncoder::new(512),
            nodes: [0; NUM_OFFSET_SLOTS],
            st: State::INITIAL,
            slots: SlotTable::new(max_chunk),
        }
    }

    /// Starts a chunk of `size` bytes.
    pub(crate) fn reset(&mut self, size: usize) {
        self.d = Decisions::INITIAL;
        let offset_syms = num_offset_slots(size);
        self.literal.reset(256, &mut self.nodes);
        self.lz_offset.reset(offset_syms, &mut self.nodes);
        self.length.reset(NUM_LENGTH_SLOTS, &mut self.nodes);
        self.delta_offset.reset(offset_syms, &mut self.nodes);
        self.delta_power.reset(8, &mut self.nodes);
        self.st = State::INITIAL;
    }

    /// Codes `item` (which must be valid at this point of the chunk).
    pub(crate) fn encode(&mut self, s: &mut Streams<'_>, item: LzmsItem) {
        let st = &mut self.st;
        let d = &mut self.d;
        if item.len == 1 {
            let mut main = st.main;
            s.bit(0, &mut main, &mut d.main);
            self.literal.encode(item.src as usize, s, &mut self.nodes);
            st.apply(item);
            return;
        }
        // The decisions go through copies of the contexts; `apply` then moves the real
        // ones (the same way).
        let mut ctx = *st;
        s.bit(1, &mut ctx.main, &mut d.main);
        let delta = item.src & DELTA_TAG != 0;
        let src = item.src & !DELTA_TAG;
        s.bit(u32::from(delta), &mut ctx.matched, &mut d.matched);
        let (c, reps, probs, rep_probs) = if delta {
            (
                &mut ctx.delta_ctx,
                &mut ctx.delta_rep,
                &mut d.delta,
                &mut d.delta_rep,
            )
        } else {
            (&mut ctx.lz_ctx, &mut ctx.lz_rep, &mut d.lz, &mut d.lz_rep)
        };
        if src >= REPS {
            s.bit(0, c, probs);
            let v = src - (REPS - 1);
            if delta {
                let power = (v >> PAIR_SHIFT) as usize;
                self.delta_power.encode(power, s, &mut self.nodes);
                let raw = v & ((1 << PAIR_SHIFT) - 1);
                let slot = self.slots.slot(raw);
                self.delta_offset.encode(slot, s, &mut self.nodes);
                let (base, extra) = OFFSET_SLOTS[slot];
                s.back_bits(raw - base, u32::from(extra));
            } else {
                let slot = self.slots.slot(v);
                self.lz_offset.encode(slot, s, &mut self.nodes);
                let (base, extra) = OFFSET_SLOTS[slot];
                s.back_bits(v - base, u32::from(extra));
            }
        } else {
            s.bit(1, c, probs);
            s.bit(u32::from(src > 0), &mut reps[0], &mut rep_probs[0]);
            if src > 0 {
                s.bit(u32::from(src > 1), &mut reps[1], &mut rep_probs[1]);
            }
        }
        st.apply(item);
        debug_assert_eq!(
            (st.main, st.matched, st.lz_ctx, st.lz_rep),
            (ctx.main, ctx.matched, ctx.lz_ctx, ctx.lz_rep)
        );
        let slot = length_slot(item.len);
        self.length.encode(slot, s, &mut self.nodes);
        let (base, extra) = LENGTH_SLOTS[slot];
        if extra > 0 {
            s.back_bits(item.len - base, u32::from(extra));
        }
    }
}

/// Offset → offset slot without a search: a byte per offset up to the first slot with
/// more than `FINE_BITS` extra bits (there are fewer than 256 slots before it), then one
/// entry per `2^(FINE_BITS + 1)` offsets (every later slot is a multiple of that wide, so
/// each starts on such a boundary, counted from that first slot's base).
pub(crate) struct SlotTable {
    fine: Vec<u8>,
    coarse: Vec<u16>,
    split: u32,
}

const FINE_BITS: u32 = 10;
const COARSE_SHIFT: u32 = FINE_BITS + 1;

impl SlotTable {
    /// The first offset of the coarse table, and the lengths of the fine and coarse tables
    /// for chunks of at most `max_chunk` bytes.
    fn sizes(max_chunk: usize) -> (u32, usize, usize) {
        let first_coarse = OFFSET_SLOTS[..NUM_OFFSET_SLOTS]
            .iter()
            .position(|&(_, extra)| u32::from(extra) > FINE_BITS)
            .unwrap_or(NUM_OFFSET_SLOTS);
        let split = OFFSET_SLOTS[first_coarse].0;
        let max = max_chunk.max(2) as u32;
        let fine_len = max.min(split) as usize;
        let coarse_len = (max.saturating_sub(split) >> COARSE_SHIFT) as usize + 1;
        (split, fine_len, coarse_len)
    }

    /// The heap bytes [`new`](Self::new) allocates (about one per 1 KiB of chunk).
    pub(crate) fn heap_bytes(max_chunk: usize) -> u64 {
        let (_, fine, coarse) = Self::sizes(max_chunk);
        heap::<u8>(fine) + heap::<u16>(coarse)
    }

    pub(crate) fn new(max_chunk: usize) -> Self {
        let (split, fine_len, coarse_len) = Self::sizes(max_chunk);
        let mut fine = vec![0u8; fine_len];
        for (off, f) in fine.iter_mut().enumerate().skip(1) {
            *f = offset_slot(off as u32) as u8;
        }
        let mut coarse = vec![0u16; coarse_len];
        for (k, c) in coarse.iter_mut().enumerate() {
            let off = u64::from(split) + ((k as u64) << COARSE_SHIFT);
            *c = offset_slot(off.min(u64::from(u32::MAX)) as u32) as u16;
        }
        SlotTable {
            fine,
            coarse,
            split,
        }
    }

    /// The slot of `off` (1 to the largest chunk size).
    #[inline(always)]
    pub(crate) fn slot(&self, off: u32) -> usize {
        if off < self.split {
            usize::from(self.fine[off as usize])
        } else {
            usize::from(self.coarse[((off - self.split) >> COARSE_SHIFT) as usize])
        }
    }
}

/// The offset slot of `off` (1 or more), by search.
#[inline(always)]
pub(crate) fn offset_slot(off: u32) -> usize {
    OFFSET_SLOTS[..NUM_OFFSET_SLOTS].partition_point(|&(base, _)| base <= off) - 1
}

/// The length slot of `len` (1 or more).
#[inline(always)]
pub(crate) fn length_slot(len: u32) -> usize {
    LENGTH_SLOTS[..NUM_LENGTH_SLOTS].partition_point(|&(base, _)| base <= len) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_table_agrees_with_the_search() {
        let t = SlotTable::new(1 << 24);
        let mut off = 1u32;
        while off < 1 << 24 {
            assert_eq!(t.slot(off), offset_slot(off), "offset {off}");
            assert_eq!(t.slot(off + 1), offset_slot(off + 1), "offset {}", off + 1);
            off = off + 1 + off / 97;
        }
        for (slot, &(base, extra)) in OFFSET_SLOTS[..NUM_OFFSET_SLOTS].iter().enumerate() {
            if base < 1 << 24 {
                assert_eq!(t.slot(base), slot);
                let last = base + (1u32 << extra) - 1;
                if last < 1 << 24 {
                    assert_eq!(t.slot(last), slot);
                }
            }
        }
    }

    #[test]
    fn state_follows_the_decoders_queues() {
        let mut st = State::INITIAL;
        st.apply(LzmsItem::lz(5, 100));
        // Right after an LZ match its offset is pending: repeat 0 is still the old head.
        assert_eq!(st.lz_reps(), [1, 2, 3]);
        st.apply(LzmsItem::literal(7));
        assert_eq!(st.lz_reps(), [100, 1, 2]);
        st.apply(LzmsItem::lz_rep(4, 1));
        assert_eq!(st.lz[0], 1);
        assert_eq!(st.lz_reps(), [100, 2, 3]);
        st.apply(LzmsItem::delta(3, (2 << PAIR_SHIFT) | 9));
        assert_eq!(st.delta_reps(), [1, 2, 3]);
        assert_eq!(st.lz_reps(), [1, 100, 2]);
        st.apply(LzmsItem::delta_rep(3, 0));
        assert_eq!(st.delta[0], 1);
        assert_eq!(st.delta_reps(), [(2 << PAIR_SHIFT) | 9, 2, 3]);
    }
}
