//! Hash chains for chunks of at most 64 KiB (every XPRESS chunk, LZX's default 32 KiB):
//! 16-bit positions in fixed-size tables.
//!
//! Same search as [`HashChains`](super::mf::HashChains) (and the same results for the
//! same table sizes), cheaper per position: an entry is a position (0 = empty, so position
//! 0 is never a candidate) in a `u16`, so a hash index or a position indexes its 64
//! Ki-entry table without a bounds check and the tables take half the cache. The price is clearing the used part of the
//! two head tables at each chunk.

use super::super::alloc::{boxed::Box, vec};
use super::heap;
use super::mf::{load_u32, prefetch, walk, ChainFinder};

/// Positions (and table entries) of a chunk.
pub(crate) const WINDOW: usize = 1 << 16;
const MAX_HASH4_BITS: u32 = 16;
const MAX_HASH3_BITS: u32 = 15;
/// The smallest 4-byte table (as [`HashChains`](super::mf::HashChains)).
const MIN_HASH4_BITS: u32 = 14;

/// The three tables in one allocation: 3-byte heads, 4-byte heads, then the links
/// (`prev`), each [`WINDOW`] entries, so one base pointer reaches all three.
type Tables = Box<[u16; 3 * WINDOW]>;
const HEAD3: usize = 0;
const HEAD4: usize = WINDOW;
const PREV: usize = 2 * WINDOW;

fn tables() -> Tables {
    vec![0u16; 3 * WINDOW]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("the vector has 3 * WINDOW entries"))
}

/// The 16-bit hash of the four bytes `v` (the top half of the product, as
/// [`HashChains`](super::mf::HashChains) takes its top bits).
#[inline(always)]
pub(crate) fn hash16(v: u32) -> u16 {
    (v.wrapping_mul(0x1e35_a7bd) >> 16) as u16
}

/// Hash chains over one chunk of at most [`WINDOW`] bytes.
pub(crate) struct SmallChains {
    tab: Tables,
    /// Right shifts of [`hash16`] giving the 3-byte and 4-byte head indices.
    shift3: u32,
    shift4: u32,
    /// `log2` of the 4-byte table's size, from the maximum chunk.
    bits4: u32,
    /// Head indices of the next position to insert.
    next: (u16, u16),
}

impl SmallChains {
    /// The heap bytes [`new`](Self::new) allocates (fixed: three tables of 64 Ki entries).
    pub(crate) fn heap_bytes() -> u64 {
        heap::<[u16; 3 * WINDOW]>(1)
    }

    /// Chains for chunks up to `max_chunk` (at most [`WINDOW`]) bytes.
    pub(crate) fn new(max_chunk: usize) -> Self {
        debug_assert!(max_chunk <= WINDOW);
        let order = max_chunk.next_power_of_two().trailing_zeros();
        SmallChains {
            tab: tables(),
            shift3: 0,
            shift4: 0,
            bits4: (order + 1).clamp(MIN_HASH4_BITS, MAX_HASH4_BITS),
            next: (0, 0),
        }
    }

    /// The head indices of the four bytes `v`.
    #[inline(always)]
    fn heads(&self, v: u32) -> (u16, u16) {
        (
            hash16(v & 0xff_ffff) >> self.shift3,
            hash16(v) >> self.shift4,
        )
    }

    /// Inserts `pos` (which has at least five bytes from it): returns the old 3-byte and
    /// 4-byte heads (entries) and moves the hashes to `pos + 1`.
    #[inline(always)]
    fn insert(&mut self, data: &[u8], pos: usize) -> (u16, u16) {
        let (h3, h4) = self.next;
        self.next = self.heads(load_u32(data, pos + 1));
        let tab = &mut *self.tab;
        prefetch(&tab[HEAD3 + usize::from(self.next.0)]);
        prefetch(&tab[HEAD4 + usize::from(self.next.1)]);
        let me = pos as u16;
        let cand3 = core::mem::replace(&mut tab[HEAD3 + usize::from(h3)], me);
        let cand4 = core::mem::replace(&mut tab[HEAD4 + usize::from(h4)], me);
        tab[PREV + usize::from(pos as u16)] = cand4;
        (cand3, cand4)
    }

    /// Starts the chunk `data` (as [`ChainFinder::reset`]) for a parser that keeps the
    /// chain state itself: the tables (3-byte heads, 4-byte heads, links, each [`WINDOW`]
    /// entries of positions, 0 = empty) and the right shifts of the 16-bit hash
    /// giving the 3-byte and 4-byte head indices.
    pub(crate) fn begin(&mut self, data: &[u8]) -> (&mut [u16; 3 * WINDOW], u32, u32) {
        self.start(data);
        (&mut self.tab, self.shift3, self.shift4)
    }

    /// [`ChainFinder::reset`].
    fn start(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= WINDOW);
        let bits4 = self.bits4;
        let bits3 = bits4.min(MAX_HASH3_BITS);
        self.shift3 = 16 - bits3;
        self.shift4 = 16 - bits4;
        self.tab[HEAD3..HEAD3 + (1 << bits3)].fill(0);
        self.tab[HEAD4..HEAD4 + (1 << bits4)].fill(0);
        if data.len() >= 4 {
            self.next = self.heads(load_u32(data, 0));
        }
    }

    /// [`ChainFinder::skip`].
    #[inline(always)]
    fn insert_run(&mut self, data: &[u8], from: usize, to: usize) {
        let to = to.min(data.len().saturating_sub(4));
        if from >= to {
            return;
        }
        // `insert` for each position, with the state in locals and the next position's
        // four bytes from a window (no bounds checks); one prefetch at the end.
        let (shift3, shift4) = (self.shift3, self.shift4);
        let (mut h3, mut h4) = self.next;
        let tab = &mut *self.tab;
        for (pos, w) in (from..to).zip(data[from + 1..to + 4].windows(4)) {
            let me = pos as u16;
            tab[HEAD3 + usize::from(h3)] = me;
            tab[PREV + usize::from(pos as u16)] =
                core::mem::replace(&mut tab[HEAD4 + usize::from(h4)], me);
            let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            (h3, h4) = (hash16(v & 0xff_ffff) >> shift3, hash16(v) >> shift4);
        }
        self.next = (h3, h4);
        prefetch(&tab[HEAD3 + usize::from(h3)]);
        prefetch(&tab[HEAD4 + usize::from(h4)]);
    }
}

impl ChainFinder for SmallChains {
    fn reset(&mut self, data: &[u8]) {
        self.start(data);
    }

    #[inline(always)]
    fn find(
        &mut self,
        data: &[u8],
        pos: usize,
        best_len: usize,
        max_len: usize,
        nice_len: usize,
        depth: u32,
        max_offset: usize,
    ) -> (usize, usize) {
        if pos + 5 > data.len() {
            return (0, 0);
        }
        let (cand3, cand) = self.insert(data, pos);
        let tab = &*self.tab;
        walk(
            data,
            pos,
            (usize::from(cand3), usize::from(cand)),
            best_len,
            max_len,
            nice_len,
            depth,
            max_offset,
            |c| usize::from(tab[PREV + (c & (WINDOW - 1))]),
        )
    }

    #[inline(always)]
    fn skip(&mut self, data: &[u8], from: usize, to: usize) {
        self.insert_run(data, from, to);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::mf::HashChains;
    use super::*;

    /// Text-like bytes from a small alphabet with repeats, from a seed.
    pub(crate) fn input(len: usize, seed: u64) -> super::super::super::alloc::vec::Vec<u8> {
        let mut x = seed | 1;
        let mut v = vec![];
        while v.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(5) && v.len() > 300 {
                let back = (x >> 8) as usize % v.len().min(40_000) + 1;
                let start = v.len() - back;
                for k in 0..(x >> 32) as usize % 300 {
                    v.push(v[start + k % back]);
                }
            } else {
                v.push(b'a' + (x >> 40) as u8 % 6);
            }
        }
        v.truncate(len);
        v
    }

    /// The small chains and the general chains, walked the same way (searching at some
    /// positions and skipping others), give the same matches.
    #[test]
    fn same_matches_as_the_general_chains() {
        for (len, seed, max_chunk) in [
            (32 << 10, 1, 32 << 10),
            (32 << 10, 7, 64 << 10),
            (5000, 3, 32 << 10),
            (6, 2, 32 << 10),
            (5000, 4, 8 << 10),
        ] {
            let data = input(len, seed);
            let mut small = SmallChains::new(max_chunk);
            let mut big = HashChains::new(max_chunk);
            for round in 0..2 {
                small.reset(&data);
                big.reset(&data);
                let mut pos = 0;
                let mut found = 0;
                while pos < data.len() {
                    let best = 2 + (pos + round) % 3;
                    let args = (pos, best, 258, 40, 20, 30_000);
                    let a = small.find(&data, args.0, args.1, args.2, args.3, args.4, args.5);
                    let b = big.find(&data, args.0, args.1, args.2, args.3, args.4, args.5);
                    assert_eq!(a, b, "position {pos} of {len} bytes, seed {seed}");
                    let step = a.0.max(1);
                    if a.0 > 0 {
                        found += 1;
                        small.skip(&data, pos + 1, pos + step);
                        big.skip(&data, pos + 1, pos + step);
                    }
                    pos += step;
                }
                assert!(len < 100 || found > 100, "only {found} matches");
            }
        }
    }
}
