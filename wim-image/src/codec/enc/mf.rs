//! Hash-chain match finding for the greedy and lazy parsers (the binary trees of the
//! near-optimal ones are in [`super::bt`]), and the helpers all finders share.
//!
//! The chains index 4-byte prefixes (a hash of the next four bytes picks a chain) and
//! keep a one-entry table of 3-byte prefixes for the shortest matches (see `Heads`).

use super::super::alloc::{vec, vec::Vec};
use super::heap;

/// Hash table sizes: 2^(log2(chunk) + 1) four-byte heads within these bounds (bigger chunks
/// get bigger tables, so chains stay short), and at most 2^15 three-byte heads.
const MIN_HASH4_BITS: u32 = 14;
const MAX_HASH4_BITS: u32 = 22;
const MAX_HASH3_BITS: u32 = 15;

#[inline(always)]
pub(crate) fn load_u32(data: &[u8], pos: usize) -> u32 {
    let b: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or([0; 4]);
    u32::from_le_bytes(b)
}

#[inline(always)]
fn hash(v: u32, bits: u32) -> usize {
    (v.wrapping_mul(0x1e35_a7bd) >> (32 - bits)) as usize
}

/// Length of the common prefix of `data[a..]` and `data[b..]` (`a < b`), from `start`, at
/// most `max` (the caller guarantees `b + max <= data.len()`).
#[inline(always)]
pub(crate) fn match_len(data: &[u8], a: usize, b: usize, start: usize, max: usize) -> usize {
    common_len(&data[a..a + max], &data[b..b + max], start)
}

/// Length of the common prefix of `x` and `y` (of equal length), from `start`.
#[inline(always)]
pub(crate) fn common_len(x: &[u8], y: &[u8], start: usize) -> usize {
    let max = x.len().min(y.len());
    let (x, y) = (&x[..max], &y[..max]);
    let mut n = start;
    while n + 8 <= max {
        let p = u64::from_le_bytes(x[n..n + 8].try_into().unwrap_or([0; 8]));
        let q = u64::from_le_bytes(y[n..n + 8].try_into().unwrap_or([0; 8]));
        if p != q {
            return n + ((p ^ q).trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < max && x[n] == y[n] {
        n += 1;
    }
    n
}

/// The hash heads both finders share. Entries are `base + position`; raising the base at
/// each chunk empties the tables without clearing them (until the base would wrap).
struct Heads {
    head3: Vec<u32>,
    head4: Vec<u32>,
    bits3: u32,
    bits4: u32,
    base: u32,
    /// Largest chunk, to know when the base must wrap.
    max: u32,
    last_len: usize,
}

impl Heads {
    /// `bits3` and `bits4` for chunks of at most `max_chunk` bytes.
    fn bits(max_chunk: usize) -> (u32, u32) {
        let order = max_chunk.next_power_of_two().trailing_zeros();
        let bits4 = (order + 1).clamp(MIN_HASH4_BITS, MAX_HASH4_BITS);
        (bits4.min(MAX_HASH3_BITS), bits4)
    }

    /// The heap bytes [`new`](Self::new) allocates.
    fn heap_bytes(max_chunk: usize) -> u64 {
        let (bits3, bits4) = Self::bits(max_chunk);
        heap::<u32>(1 << bits3) + heap::<u32>(1 << bits4)
    }

    fn new(max_chunk: usize) -> Self {
        let (bits3, bits4) = Self::bits(max_chunk);
        Heads {
            head3: vec![0; 1 << bits3],
            head4: vec![0; 1 << bits4],
            bits3,
            bits4,
            base: 1,
            max: max_chunk as u32,
            last_len: 0,
        }
    }

    /// Starts a chunk of `len` bytes.
    fn reset(&mut self, len: usize) {
        let step = self.last_len as u32 + 1;
        if self.base > u32::MAX - 2 * self.max - 2 - step {
            self.base = 1;
            self.head3.fill(0);
            self.head4.fill(0);
        } else {
            self.base += step;
        }
        self.last_len = len;
    }

    /// The 3-byte and 4-byte hashes of the four bytes `v`.
    #[inline(always)]
    fn hashes(&self, v: u32) -> (usize, usize) {
        (hash(v & 0xff_ffff, self.bits3), hash(v, self.bits4))
    }
}

/// A cache prefetch hint for the line holding `slot`.
#[inline(always)]
pub(crate) fn prefetch<T>(slot: &T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: a prefetch never faults and changes nothing the program can observe; the
    // address comes from a live reference anyway.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((slot as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

/// A hash-chain match finder, as the greedy and lazy parsers use it.
///
/// Positions must be visited in order, each once, by [`find`](Self::find) or
/// [`skip`](Self::skip), after a [`reset`](Self::reset) for the chunk.
pub(crate) trait ChainFinder {
    /// Prepares for a new chunk, `data`.
    fn reset(&mut self, data: &[u8]);

    /// Inserts `pos` and returns the longest match there, longer than `best_len` (at least
    /// 2), as `(length, offset)` (length 0 if none): at most `max_len` bytes, offset at
    /// most `max_offset`, searching at most `depth` chain entries and stopping at
    /// `nice_len`. A 3-byte match is only looked for (in the one-entry 3-byte table)
    /// when `best_len` is 2 and no longer match turns up.
    #[allow(clippy::too_many_arguments)]
    fn find(
        &mut self,
        data: &[u8],
        pos: usize,
        best_len: usize,
        max_len: usize,
        nice_len: usize,
        depth: u32,
        max_offset: usize,
    ) -> (usize, usize);

    /// Inserts the positions `from..to` without searching (`from` is the next position).
    fn skip(&mut self, data: &[u8], from: usize, to: usize);
}

/// The chain walk of [`ChainFinder::find`] at `pos` (already inserted), with the old heads
/// `(cand3, cand)` (3-byte and 4-byte) as entries: positions, 0 for none, so position 0 is
/// never a candidate (as in wimlib's hash chains, whose output sizes ours then match; it
/// saves a subtract on every chain step). `prev(c)` is the entry before position `c` in
/// its chain. Entries must be earlier positions of the chunk (or 0).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk(
    data: &[u8],
    pos: usize,
    (cand3, mut cand): (usize, usize),
    best_len: usize,
    max_len: usize,
    nice_len: usize,
    depth: u32,
    max_offset: usize,
    prev: impl Fn(usize) -> usize,
) -> (usize, usize) {
    let max_len = max_len.min(data.len() - pos);
    let nice_len = nice_len.min(max_len);
    let mut best_len = best_len.max(3);
    if best_len >= nice_len {
        return (0, 0);
    }
    let v = load_u32(data, pos);
    let mut depth = depth;
    // Entries below `limit` are empty (0) or too far back: one compare ends the chain
    // for both.
    let limit = pos.saturating_sub(max_offset).max(1);
    // Every earlier position is in the 3-byte table, and the newest with the same three
    // bytes is at or after any older one: without a 3-byte head in reach no candidate can
    // match four bytes, so the walk gets none (a select, not a branch).
    if cand3 < limit {
        cand = 0;
    }
    // Reads at `c + k` for `c < pos` and `k + 4 <= max_len` stay inside `window`.
    let window = &data[..pos + max_len];
    let mut best_off = 0;
    if best_len == 3 {
        // No 4-byte match yet: the first candidate whose four bytes match.
        loop {
            if cand < limit || depth == 0 {
                if cand3 >= limit && load_u32(data, cand3) & 0xff_ffff == v & 0xff_ffff {
                    return (3, pos - cand3);
                }
                return (0, 0);
            }
            let c = cand;
            debug_assert!(c < pos);
            depth -= 1;
            cand = prev(c);
            if load_u32(window, c) == v {
                best_len = match_len(window, c, pos, 4, max_len);
                best_off = pos - c;
                if best_len >= nice_len {
                    return (best_len, best_off);
                }
                break;
            }
        }
    }
    // Longer matches: a candidate must match the four bytes ending at `best_len + 1` (a
    // stronger first test than one byte), then the first four.
    let mut tail = load_u32(window, pos + best_len - 3);
    while cand >= limit && depth > 0 {
        let c = cand;
        debug_assert!(c < pos);
        depth -= 1;
        cand = prev(c);
        if load_u32(window, c + best_len - 3) == tail && load_u32(window, c) == v {
            let len = match_len(window, c, pos, 4, max_len);
            if len > best_len {
                best_len = len;
                best_off = pos - c;
                if len >= nice_len {
                    break;
                }
                tail = load_u32(window, pos + best_len - 3);
            }
        }
    }
    if best_off != 0 {
        (best_len, best_off)
    } else {
        (0, 0)
    }
}

/// Hash chains: `head4` holds the newest position of each 4-byte hash, `prev` links each
/// position to the previous one with the same hash.
///
/// Positions must be visited in order, each once, by [`ChainFinder::find`] or
/// [`ChainFinder::skip`]: each call computes the next position's hashes and prefetches its
/// heads, so a position is hashed once and its heads are in cache when it comes. The last
/// four positions of a chunk are not inserted and get no match.
pub(crate) struct HashChains {
    heads: Heads,
    prev: Vec<u32>,
    /// The 3- and 4-byte hashes of position `next_pos`.
    next: (usize, usize),
    next_pos: usize,
}

impl HashChains {
    /// The heap bytes [`new`](Self::new) allocates: the heads and 4 bytes per byte of chunk.
    pub(crate) fn heap_bytes(max_chunk: usize) -> u64 {
        Heads::heap_bytes(max_chunk) + heap::<u32>(max_chunk)
    }

    pub(crate) fn new(max_chunk: usize) -> Self {
        HashChains {
            heads: Heads::new(max_chunk),
            prev: vec![0; max_chunk],
            next: (0, 0),
            next_pos: 0,
        }
    }

    /// Inserts `pos` (the position after the last one visited): returns its heads' old
    /// values (the newest 3-byte and 4-byte candidates) and advances the hashes.
    #[inline(always)]
    fn insert(&mut self, data: &[u8], pos: usize) -> (u32, u32) {
        debug_assert_eq!(pos, self.next_pos);
        self.next_pos = pos + 1;
        let (h3, h4) = self.next;
        self.next = self.heads.hashes(load_u32(data, pos + 1));
        let heads = &mut self.heads;
        prefetch(&heads.head3[self.next.0]);
        prefetch(&heads.head4[self.next.1]);
        let me = heads.base + pos as u32;
        let cand3 = core::mem::replace(&mut heads.head3[h3], me);
        let cand4 = core::mem::replace(&mut heads.head4[h4], me);
        self.prev[pos] = cand4;
        (cand3, cand4)
    }
}

impl ChainFinder for HashChains {
    fn reset(&mut self, data: &[u8]) {
        self.heads.reset(data.len());
        self.next_pos = 0;
        if data.len() >= 4 {
            self.next = self.heads.hashes(load_u32(data, 0));
        }
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
        // As a position, 0 for earlier chunks (and for position 0, never a candidate).
        let entry = |e: u32| e.saturating_sub(self.heads.base) as usize;
        walk(
            data,
            pos,
            (entry(cand3), entry(cand)),
            best_len,
            max_len,
            nice_len,
            depth,
            max_offset,
            |c| entry(self.prev[c]),
        )
    }

    #[inline(always)]
    fn skip(&mut self, data: &[u8], from: usize, to: usize) {
        let to = to.min(data.len().saturating_sub(4));
        for pos in from..to {
            self.insert(data, pos);
        }
    }
}

/// Match-search effort: chain or tree entries visited per position, the length at which
/// a match is taken without looking further, and the farthest offset the format allows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Search {
    pub(crate) depth: u32,
    pub(crate) nice: usize,
    pub(crate) max_offset: usize,
}

/// One match: its length and offset.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Match {
    pub(crate) len: u32,
    pub(crate) off: u32,
}
