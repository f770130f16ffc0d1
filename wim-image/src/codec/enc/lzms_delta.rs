//! The delta match finder for LZMS.
//!
//! A delta match of power `p` (span `s = 2^p`) at offset `o` (a multiple of `s`) copies the
//! *differences* `b[i] - b[i - s]` from `o` bytes back, which is what a table of 8-, 16-
//! or 32-bit samples or fixed-size records that change steadily looks like. So the finder
//! hashes, for each power, the next three differences at that span (plus the span and the
//! position modulo the span, which keeps differently aligned sequences apart) into one
//! table of the newest position per hash; a hit at a multiple of the span whose three
//! differences really agree is extended as far as they keep agreeing.

use super::super::alloc::{vec, vec::Vec};
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

/// Newest position + 1 (0 = none) per hash of (span, alignment, three differences).
pub(crate) struct DeltaFinder {
    table: Vec<u32>,
    bits: u32,
    /// The differences and hashes of position `next_pos` for every power, computed (and
    /// their slots prefetched) by the call at the position before.
    next: [(u64, usize); POWERS],
    next_pos: usize,
}

const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bytewise `a - b` (mod 256 in each byte, no borrow between bytes).
#[inline(always)]
fn bytes_sub(a: u64, b: u64) -> u64 {
    ((a | HIGH).wrapping_sub(b & !HIGH)) ^ ((a ^ !b) & HIGH)
}

#[inline(always)]
fn load64(buf: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(buf[i..i + 8].try_into().unwrap_or([0; 8]))
}

#[inline(always)]
fn load32(buf: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        buf[i..i + 4].try_into().unwrap_or([0; 4]),
    ))
}

/// The differences `buf[i + k] - buf[i + k - span]` for k = 0..3 (the fourth byte is
/// cleared).
#[inline(always)]
fn diffs3(buf: &[u8], i: usize, span: usize) -> u64 {
    bytes_sub(load32(buf, i), load32(buf, i - span)) & 0xff_ffff
}

/// Whether the first two differences at `a` and `b` with span `span` agree (`b + 4 <=
/// buf.len()`, `a >= span`).
#[inline(always)]
pub(crate) fn delta_starts(buf: &[u8], a: usize, b: usize, span: usize) -> bool {
    let x = bytes_sub(load32(buf, a), load32(buf, a - span));
    let y = bytes_sub(load32(buf, b), load32(buf, b - span));
    (x ^ y) & 0xffff == 0
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
    let mut n = start;
    while n + 8 <= max {
        let x = bytes_sub(load64(buf, a + n), load64(buf, a + n - span));
        let y = bytes_sub(load64(buf, b + n), load64(buf, b + n - span));
        if x != y {
            return n + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max
        && buf[a + n].wrapping_sub(buf[a + n - span]) == buf[b + n].wrapping_sub(buf[b + n - span])
    {
        n += 1;
    }
    n
}

impl DeltaFinder {
    pub(crate) fn new(max_chunk: usize) -> Self {
        let order = max_chunk.next_power_of_two().trailing_zeros();
        let bits = order.clamp(12, 17);
        DeltaFinder {
            table: vec![0; 1 << bits],
            bits,
            next: [(0, 0); POWERS],
            next_pos: 0,
        }
    }

    /// Forgets the previous chunk.
    pub(crate) fn reset(&mut self) {
        self.table.fill(0);
        self.next_pos = 0;
    }

    /// The hash of three differences `d` at `pos` with span `span`.
    #[inline(always)]
    fn hash(&self, d: u64, pos: usize, span: usize) -> usize {
        let v = d as u32 | (((span + (pos & (span - 1))) as u32) << 24);
        (v.wrapping_mul(0x1e35_a7bd) >> (32 - self.bits)) as usize
    }

    /// Inserts `pos` (which needs `HASHED + 1` bytes from it) for every power and stores
    /// in `out` the delta matches found there, up to `max_len` bytes each; returns how
    /// many.
    // Plain index loops over the powers: they unroll to straight-line code, where the
    // iterator adapters did not (measured).
    #[allow(clippy::needless_range_loop)]
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
        // The differences and hashes for every span: from the call before, or from one
        // window (constant indices once the loop over the powers is unrolled), which
        // also gives the next position's (their slots are prefetched for the next call),
        // or one by one near the start.
        const BACK: usize = 1 << (POWERS - 1);
        let mut found = 0;
        if let Some(w) = pos
            .checked_sub(BACK)
            .and_then(|from| buf.get(from..pos + 5))
            .and_then(|w| <&[u8; BACK + 5]>::try_from(w).ok())
        {
            let at = |i: usize| u64::from(u32::from_le_bytes([w[i], w[i + 1], w[i + 2], w[i + 3]]));
            let (now, next) = (at(BACK), at(BACK + 1));
            let reuse = self.next_pos == pos && pos != 0;
            self.next_pos = pos + 1;
            for power in 0..POWERS {
                let span = 1 << power;
                let (d, h) = if reuse {
                    self.next[power]
                } else {
                    let d = bytes_sub(now, at(BACK - span)) & 0xff_ffff;
                    (d, self.hash(d, pos, span))
                };
                let dn = bytes_sub(next, at(BACK + 1 - span)) & 0xff_ffff;
                let hn = self.hash(dn, pos + 1, span);
                prefetch(&self.table[hn]);
                self.next[power] = (dn, hn);
                found += self.try_power(buf, pos, power, (d, h), max_len, &mut out[found]);
            }
        } else {
            let powers = POWERS.min(usize::BITS as usize - pos.leading_zeros() as usize);
            for power in 0..powers {
                let d = diffs3(buf, pos, 1 << power);
                let h = self.hash(d, pos, 1 << power);
                found += self.try_power(buf, pos, power, (d, h), max_len, &mut out[found]);
            }
        }
        found
    }

    /// Inserts `pos` for `power` (differences and hash `(d, h)`) and checks the entry it
    /// replaces: 1 with the match in `out`, else 0.
    #[inline(always)]
    fn try_power(
        &mut self,
        buf: &[u8],
        pos: usize,
        power: usize,
        (d, h): (u64, usize),
        max_len: usize,
        out: &mut DeltaMatch,
    ) -> usize {
        let span = 1usize << power;
        let cand = core::mem::replace(&mut self.table[h], pos as u32 + 1) as usize;
        // (An entry just made for another power of this position may collide.)
        if cand == 0 || cand > pos {
            return 0;
        }
        let c = cand - 1;
        let off = pos - c;
        let raw = off >> power;
        if off & (span - 1) != 0 || c < span || raw >= (1 << PAIR_SHIFT) - 3 {
            return 0;
        }
        if diffs3(buf, c, span) != d {
            return 0;
        }
        *out = DeltaMatch {
            len: delta_len(buf, c, pos, span, HASHED, max_len) as u32,
            pair: ((power as u32) << PAIR_SHIFT) | raw as u32,
        };
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
