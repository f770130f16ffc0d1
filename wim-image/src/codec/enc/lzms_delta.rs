//! The delta match finder for LZMS.
//!
//! A delta match of power `p` (span `s = 2^p`) at offset `o` (a multiple of `s`) copies the
//! *differences* `b[i] - b[i - s]` from `o` bytes back, which is what a table of 8-, 16-
//! or 32-bit samples or fixed-size records that change steadily looks like. So the finder
//! hashes, for each power, the next three differences at that span (plus the span and the
//! position modulo the span, which keeps differently aligned sequences apart) into one
//! table of the newest position per hash; a hit at a multiple of the span whose three
//! differences really agree is extended as far as they keep agreeing. (Three zero
//! differences, bytes that simply repeat with the span, and a candidate whose first span
//! of bytes equals this position's, which makes it an LZ match at the same offset, are
//! left to the LZ matches.)

use super::super::alloc::{boxed::Box, vec};
use super::heap;
use super::lzms::PAIR_SHIFT;
use super::mf::prefetch;

/// Differences hashed, which is also the shortest explicit delta match.
pub(crate) const HASHED: usize = 3;
/// Powers the finder tries (LZMS allows 8; wimlib tries 6, spans up to 32 bytes).
pub(crate) const POWERS: usize = 6;

/// One delta match: length and (power, raw offset) pair.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DeltaMatch {
    pub(crate) len: u32,
    pub(crate) pair: u32,
}

/// Newest position per hash of (span, alignment, three differences), with that key.
pub(crate) struct DeltaFinder {
    /// `key << 32 | position`; a key is never 0 (it holds the span), so an empty entry
    /// matches nothing. Keeping the key makes a check one compare, with no read of the
    /// buffer at the candidate.
    table: Box<[u64; TABLE_LEN]>,
    bits: u32,
    /// The keys and slots of positions `batch..batch + BATCH` for every power (filled a
    /// batch at a time: straight loops over arrays, which the compiler vectorizes).
    keys: [[u32; BATCH]; POWERS],
    slots: [[u32; BATCH]; POWERS],
    batch: usize,
}

/// Most hash bits (a table of 1 MiB).
const MAX_BITS: u32 = 17;
const TABLE_LEN: usize = 1 << MAX_BITS;
/// Positions whose keys are computed together.
const BATCH: usize = 64;
/// The largest span.
const MAX_SPAN: usize = 1 << (POWERS - 1);
/// Bytes a batch reads: the largest span before it, and the differences hashed after.
const WINDOW: usize = MAX_SPAN + BATCH + HASHED - 1;
/// How many positions ahead the table slots are prefetched.
const PREFETCH_AHEAD: usize = 2;

const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bytewise `a - b` (mod 256 in each byte, no borrow between bytes).
#[inline(always)]
fn bytes_sub(a: u64, b: u64) -> u64 {
    ((a | HIGH).wrapping_sub(b & !HIGH)) ^ ((a ^ !b) & HIGH)
}

#[inline(always)]
fn load32(buf: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        buf[i..i + 4].try_into().unwrap_or([0; 4]),
    ))
}

/// The hash key of position `pos` for span `span` whose first three differences are
/// `d`: the differences, and above them the span plus the position modulo the span
/// (which keeps differently aligned sequences apart). Never 0.
#[inline(always)]
fn key(d: u64, pos: usize, span: usize) -> u32 {
    d as u32 | (((span + (pos & (span - 1))) as u32) << 24)
}

/// Whether the first two differences at `a` and `b` with span `span` agree (`a < b`,
/// `a >= span`, `b + 2 <= buf.len()`).
#[inline(always)]
pub(crate) fn delta_starts(buf: &[u8], a: usize, b: usize, span: usize) -> bool {
    let (x, y) = (&buf[a - span..a + 2], &buf[b - span..b + 2]);
    x[span].wrapping_sub(x[0]) == y[span].wrapping_sub(y[0])
        && x[span + 1].wrapping_sub(x[1]) == y[span + 1].wrapping_sub(y[1])
}

/// How far the differences at `a` and `b` (`a < b`) with span `span` agree, from `start`
/// up to `max` (`b + max <= buf.len()`, `a >= span`).
#[inline(always)]
pub(crate) fn delta_len(
    buf: &[u8],
    a: usize,
    b: usize,
    span: usize,
    start: usize,
    max: usize,
) -> usize {
    if start >= max {
        return start;
    }
    // Each side and the bytes a span before it as slices of `max - start` bytes: the
    // word loads below need no bounds checks.
    let n = max - start;
    let (a, b) = (a + start, b + start);
    let (x, xs) = (&buf[a..a + n], &buf[a - span..a - span + n]);
    let (y, ys) = (&buf[b..b + n], &buf[b - span..b - span + n]);
    let words = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]));
    let mut i = 0;
    while i + 8 <= n {
        let d = bytes_sub(words(x, i), words(xs, i)) ^ bytes_sub(words(y, i), words(ys, i));
        if d != 0 {
            return start + i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && x[i].wrapping_sub(xs[i]) == y[i].wrapping_sub(ys[i]) {
        i += 1;
    }
    start + i
}

impl DeltaFinder {
    /// The heap bytes [`new`](Self::new) allocates (fixed: the hash table).
    pub(crate) fn heap_bytes() -> u64 {
        heap::<[u64; TABLE_LEN]>(1)
    }

    pub(crate) fn new(max_chunk: usize) -> Self {
        let order = max_chunk.next_power_of_two().trailing_zeros();
        let bits = order.clamp(12, MAX_BITS);
        DeltaFinder {
            table: vec![0u64; TABLE_LEN]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("the vector has TABLE_LEN entries")),
            bits,
            keys: [[0; BATCH]; POWERS],
            slots: [[0; BATCH]; POWERS],
            batch: usize::MAX,
        }
    }

    /// Forgets the previous chunk.
    pub(crate) fn reset(&mut self) {
        self.table[..1 << self.bits].fill(0);
        self.batch = usize::MAX;
    }

    /// The table slot of `key`.
    #[inline(always)]
    fn slot(&self, key: u32) -> usize {
        (key.wrapping_mul(0x1e35_a7bd) >> (32 - self.bits)) as usize
    }

    /// Computes the keys and slots of the batch of positions from `start` (at least
    /// [`MAX_SPAN`]); bytes past the end of `buf` count as 0 (the positions that would
    /// need them are never looked up).
    fn fill(&mut self, buf: &[u8], start: usize) {
        let mut w = [0u8; WINDOW];
        let src = &buf[start - MAX_SPAN..buf.len().min(start - MAX_SPAN + WINDOW)];
        w[..src.len()].copy_from_slice(src);
        let shift = 32 - self.bits;
        for power in 0..POWERS {
            let span = 1 << power;
            let mut d = [0u8; BATCH + HASHED - 1];
            let now = &w[MAX_SPAN..];
            let before = &w[MAX_SPAN - span..];
            for ((d, &a), &b) in d.iter_mut().zip(now).zip(before) {
                *d = a.wrapping_sub(b);
            }
            let (keys, slots) = (&mut self.keys[power], &mut self.slots[power]);
            let align = span - 1;
            for (i, (k, h)) in keys.iter_mut().zip(slots.iter_mut()).enumerate() {
                let tag = (span + ((start + i) & align)) as u32;
                let v = u32::from(d[i])
                    | u32::from(d[i + 1]) << 8
                    | u32::from(d[i + 2]) << 16
                    | tag << 24;
                *k = v;
                *h = v.wrapping_mul(0x1e35_a7bd) >> shift;
            }
        }
        self.batch = start;
    }

    /// Inserts `pos` (which needs `HASHED + 1` bytes from it) for every power and stores
    /// in `out` the delta matches found there, up to `max_len` bytes each; returns how
    /// many.
    #[inline]
    pub(crate) fn find(
        &mut self,
        buf: &[u8],
        pos: usize,
        max_len: usize,
        out: &mut [DeltaMatch; POWERS],
    ) -> usize {
        if pos + HASHED >= buf.len() {
            return 0;
        }
        let mut found = 0;
        if pos < MAX_SPAN {
            // Near the start, one by one, for the spans that fit.
            let powers = POWERS.min(usize::BITS as usize - pos.leading_zeros() as usize);
            for power in 0..powers {
                let span = 1 << power;
                let d = bytes_sub(load32(buf, pos), load32(buf, pos - span)) & 0xff_ffff;
                let k = key(d, pos, span);
                if let Some(m) = self.try_power(buf, pos, power, k, self.slot(k), max_len) {
                    out[found] = m;
                    found += 1;
                }
            }
            return found;
        }
        let mut i = pos.wrapping_sub(self.batch);
        if pos < self.batch || i >= BATCH {
            self.fill(buf, pos);
            i = 0;
        }
        // One call per power with the power a constant: the loop unrolls and the spans
        // and shifts fold.
        const _: () = assert!(POWERS == 6, "one call per power");
        self.at::<0>(buf, pos, i, max_len, out, &mut found);
        self.at::<1>(buf, pos, i, max_len, out, &mut found);
        self.at::<2>(buf, pos, i, max_len, out, &mut found);
        self.at::<3>(buf, pos, i, max_len, out, &mut found);
        self.at::<4>(buf, pos, i, max_len, out, &mut found);
        self.at::<5>(buf, pos, i, max_len, out, &mut found);
        found
    }

    /// [`find`](Self::find) for power `P` at entry `i` of the batch.
    #[inline(always)]
    fn at<const P: usize>(
        &mut self,
        buf: &[u8],
        pos: usize,
        i: usize,
        max_len: usize,
        out: &mut [DeltaMatch; POWERS],
        found: &mut usize,
    ) {
        let (keys, slots) = (&self.keys[P], &self.slots[P]);
        if let Some(&ahead) = slots.get(i + PREFETCH_AHEAD) {
            prefetch(&self.table[ahead as usize % TABLE_LEN]);
        }
        let (k, h) = (keys[i % BATCH], slots[i % BATCH] as usize);
        if let Some(m) = self.try_power(buf, pos, P, k, h, max_len) {
            if let Some(o) = out.get_mut(*found) {
                *o = m;
                *found += 1;
            }
        }
    }

    /// Inserts `pos` for `power` (key `k`, slot `h`) and checks the entry it replaces.
    #[inline(always)]
    fn try_power(
        &mut self,
        buf: &[u8],
        pos: usize,
        power: usize,
        k: u32,
        h: usize,
        max_len: usize,
    ) -> Option<DeltaMatch> {
        let slot = &mut self.table[h % TABLE_LEN];
        let old = core::mem::replace(slot, u64::from(k) << 32 | pos as u64);
        // The same key: the same span, the same alignment (so the offset is a multiple
        // of the span) and the same three differences; the position is an earlier one
        // (this position's entries for other powers have other spans).
        // Three zero differences: the bytes repeat with the span here, which the LZ
        // matches at that offset already cover; such a position is inserted but not
        // matched (measured: 1.5% fewer instructions, output within 0.01% on the bench
        // input).
        if (old >> 32) as u32 != k || k & 0xff_ffff == 0 {
            return None;
        }
        let c = old as u32 as usize;
        // The first span of bytes repeats literally: then so does every byte the delta
        // match covers (along a delta match, the difference between a byte here and the
        // byte at the candidate repeats with the span, so zeros over the first span stay
        // zero), which makes it an LZ match at the same offset, a case the LZ matches
        // cover. On the `wim_compress` bench input three hits in four are of
        // this kind (an LZ repeat at an offset that is a multiple of the span shows up for
        // every such span); skipping them saves 3-4% of the LZMS solid compression time,
        // and the output is a few bytes smaller.
        let span = 1usize << power;
        if pos + span <= buf.len() && buf[c..c + span] == buf[pos..pos + span] {
            return None;
        }
        let raw = (pos - c) >> power;
        if raw >= (1 << PAIR_SHIFT) - 3 {
            return None;
        }
        Some(DeltaMatch {
            len: delta_len(buf, c, pos, 1 << power, HASHED, max_len) as u32,
            pair: ((power as u32) << PAIR_SHIFT) | raw as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// What the finder must report, computed byte by byte: per power, the newest earlier
    /// position that hashed to the same slot (a table of one entry per slot), if its span,
    /// alignment and three differences are this position's, extended as far as the
    /// differences agree.
    fn reference(buf: &[u8], bits: u32, max_len: impl Fn(usize) -> usize) -> Vec<Vec<(u32, u32)>> {
        let mut table: HashMap<u32, (u32, usize)> = HashMap::new();
        let diff = |i: usize, span: usize| buf[i].wrapping_sub(buf[i - span]);
        let mut all = Vec::new();
        for pos in 0..buf.len() {
            let mut here = Vec::new();
            if pos + HASHED < buf.len() {
                for power in 0..POWERS {
                    let span = 1usize << power;
                    if span > pos {
                        break;
                    }
                    let d = [diff(pos, span), diff(pos + 1, span), diff(pos + 2, span)];
                    let tag = (span + pos % span) as u32;
                    let k = u32::from_le_bytes([d[0], d[1], d[2], tag as u8]);
                    let slot = k.wrapping_mul(0x1e35_a7bd) >> (32 - bits);
                    if let Some(&(old, c)) = table.get(&slot) {
                        let raw = (pos - c) / span;
                        let periodic = d == [0; 3];
                        let literal =
                            pos + span <= buf.len() && buf[c..c + span] == buf[pos..pos + span];
                        if old == k && raw < (1 << PAIR_SHIFT) - 3 && !periodic && !literal {
                            let mut len = HASHED;
                            while len < max_len(pos) && diff(c + len, span) == diff(pos + len, span)
                            {
                                len += 1;
                            }
                            here.push((len as u32, ((power as u32) << PAIR_SHIFT) | raw as u32));
                        }
                    }
                    table.insert(slot, (k, pos));
                }
            }
            all.push(here);
        }
        all
    }

    fn finder_output(buf: &[u8], max_len: impl Fn(usize) -> usize) -> (Vec<Vec<(u32, u32)>>, u32) {
        let mut f = DeltaFinder::new(buf.len());
        let mut out = [DeltaMatch::default(); POWERS];
        let all = (0..buf.len())
            .map(|pos| {
                let n = f.find(buf, pos, max_len(pos), &mut out);
                out[..n].iter().map(|m| (m.len, m.pair)).collect()
            })
            .collect();
        (all, f.bits)
    }

    fn check(buf: &[u8]) {
        let max_len = |pos: usize| buf.len() - pos;
        let (got, bits) = finder_output(buf, max_len);
        assert_eq!(got, reference(buf, bits, max_len));
    }

    proptest! {
        #[test]
        fn matches_equal_the_reference_on_random_data(buf in proptest::collection::vec(any::<u8>(), 0..3000)) {
            check(&buf);
        }

        #[test]
        fn matches_equal_the_reference_on_records(
            record in proptest::collection::vec(any::<u8>(), 1..40),
            step in proptest::collection::vec(any::<u8>(), 1..40),
            n in 1usize..200,
            noise in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..20),
        ) {
            // Records that change by a fixed step (what delta matches are for), with some
            // bytes overwritten.
            let mut buf = Vec::new();
            let mut r = record.clone();
            for _ in 0..n {
                buf.extend_from_slice(&r);
                for (b, s) in r.iter_mut().zip(step.iter().cycle()) {
                    *b = b.wrapping_add(*s);
                }
            }
            for (i, b) in noise {
                let len = buf.len();
                buf[i % len] = b;
            }
            check(&buf);
        }
    }

    #[test]
    fn matches_equal_the_reference_across_batches_and_gaps() {
        // Positions visited out of batch order: a chunk whose parse skips stretches.
        let buf: Vec<u8> = (0..5000u32).map(|i| (i * i / 7 + i % 13) as u8).collect();
        let mut f = DeltaFinder::new(buf.len());
        let mut out = [DeltaMatch::default(); POWERS];
        let want = reference(&buf, f.bits, |pos| buf.len() - pos);
        let mut pos = 0;
        while pos < buf.len() {
            let n = f.find(&buf, pos, buf.len() - pos, &mut out);
            let got: Vec<(u32, u32)> = out[..n].iter().map(|m| (m.len, m.pair)).collect();
            // After a gap the finder misses the skipped positions' entries, so only
            // matches it reports are checked against the bytes.
            for &(len, pair) in &got {
                let power = pair >> PAIR_SHIFT;
                let span = 1usize << power;
                let off = ((pair & ((1 << PAIR_SHIFT) - 1)) as usize) << power;
                let c = pos - off;
                for k in 0..len as usize {
                    assert_eq!(
                        buf[c + k].wrapping_sub(buf[c + k - span]),
                        buf[pos + k].wrapping_sub(buf[pos + k - span])
                    );
                }
            }
            if pos < 100 {
                assert_eq!(got, want[pos], "position {pos}");
            }
            pos += 1 + (pos % 97 == 0) as usize * 70;
        }
    }

    #[test]
    fn bytewise_subtraction_has_no_borrows() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1000 {
            x = x.rotate_left(17).wrapping_mul(0xff51_afd7_ed55_8ccd);
            let y = x.rotate_left(31) ^ 0x00ff_8001_7f80_fe01;
            let (xb, yb) = (x.to_le_bytes(), y.to_le_bytes());
            let want: Vec<u8> = xb.iter().zip(yb).map(|(a, b)| a.wrapping_sub(b)).collect();
            assert_eq!(
                bytes_sub(x, y).to_le_bytes()[..],
                want[..],
                "{x:#x} - {y:#x}"
            );
        }
    }

    #[test]
    fn finds_a_ramp_of_16_bit_samples() {
        // Two-byte records whose first byte rises by 3 (mod 256) and whose second byte
        // falls by 5: the differences at span 2 are constant, those at span 1 are not.
        let mut buf = Vec::new();
        for i in 0..200u8 {
            buf.extend_from_slice(&[i.wrapping_mul(3), 200u8.wrapping_sub(i.wrapping_mul(5))]);
        }
        let mut f = DeltaFinder::new(buf.len());
        let mut out = [DeltaMatch::default(); POWERS];
        for pos in 0..100 {
            f.find(&buf, pos, 0, &mut out);
        }
        let found = f.find(&buf, 100, buf.len() - 100, &mut out);
        let m = out[..found]
            .iter()
            .find(|m| m.pair >> PAIR_SHIFT == 1)
            .expect("a span-2 match");
        let raw = (m.pair & ((1 << PAIR_SHIFT) - 1)) as usize;
        assert!(raw >= 1 && 100 >= 2 * raw + 2);
        assert_eq!(m.len as usize, buf.len() - 100);
    }
}
