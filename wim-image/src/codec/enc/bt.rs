//! Binary-tree match finding for the near-optimal parsers.
//!
//! Each 4-byte hash has a tree of earlier positions ordered by the bytes that follow them;
//! inserting a position walks down its tree, collecting ever longer matches, and re-hangs
//! the tree under the new position. A 3-byte table keeps two positions per hash (the newer
//! first, side by side: one cache line holds both), and optionally a small table of 2-byte prefixes gives one 2-byte match per
//! position.
//!
//! Entries are `position + 1` (0 = none) and the used part of the head tables is cleared
//! at each chunk. The tables are generic ([`Table`]): chunks of at most 64 KiB use 16-bit
//! entries in fixed-size arrays ([`Small`]: half the cache, and indices masked instead of
//! bounds-checked), larger ones 32-bit entries ([`Large`]).

use super::super::alloc::{boxed::Box, vec, vec::Vec};
use super::heap;
use super::mf::{common_len, load_u32, prefetch, Match};
use crate::mem::AllocError;

/// Hash table sizes: 2^(log2(chunk) + 1) four-byte heads within these bounds, and at most
/// 2^15 three-byte heads.
const MIN_HASH4_BITS: u32 = 14;
const MAX_HASH4_BITS: u32 = 22;
const MAX_HASH3_BITS: u32 = 15;
/// Size of the 2-byte table: a small one stays in cache (wimlib's LZX size).
const HASH2_BITS: u32 = 12;
/// Chunks larger than this (trees of more than 2 MiB) prefetch the first two levels of
/// the next positions' tree walks. (Measured on LZMS solid 50, 4 MiB: the first level
/// 6% faster, the second 1-2% more; on 32 KiB LZX chunks the extra work is not repaid.)
const LOOKAHEAD_CHUNK: usize = 1 << 18;

#[inline(always)]
fn hash(v: u32, bits: u32) -> usize {
    (v.wrapping_mul(0x1e35_a7bd) >> (32 - bits)) as usize
}

/// An array of entries (`position + 1`, 0 = none).
pub(crate) trait Table {
    /// A zeroed table of at least `len` entries.
    fn with_len(len: usize) -> Result<Self, AllocError>
    where
        Self: Sized;
    /// The heap bytes [`with_len`](Self::with_len) allocates for `len` entries.
    fn heap_bytes(len: usize) -> u64;
    /// Entry `i`.
    fn get(&self, i: usize) -> usize;
    /// Sets entry `i` to `v`.
    fn set(&mut self, i: usize, v: usize);
    /// Zeroes the first `len` entries.
    fn clear(&mut self, len: usize);
    /// Asks the CPU to fetch entry `i`.
    fn prefetch(&self, i: usize);

    /// Sets entry `i` to `v`, returning the old value.
    #[inline(always)]
    fn replace(&mut self, i: usize, v: usize) -> usize {
        let old = self.get(i);
        self.set(i, v);
        old
    }
}

/// The largest chunk [`Small`] tables serve.
pub(crate) const SMALL_WINDOW: usize = 1 << 16;
/// Entries of a [`Small`] table: two per position (the children), which also covers the
/// largest head table (2^17 entries for a 64 KiB chunk).
const SMALL_LEN: usize = 2 * SMALL_WINDOW;

/// Positions of a chunk of at most [`SMALL_WINDOW`] bytes: 16-bit entries in a fixed
/// array, indices taken modulo its size.
pub(crate) struct Small(Box<[u16; SMALL_LEN]>);

impl Table for Small {
    fn with_len(len: usize) -> Result<Self, AllocError> {
        debug_assert!(len <= SMALL_LEN);
        Ok(Small(
            vec![0u16; SMALL_LEN]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("the vector has SMALL_LEN entries")),
        ))
    }

    fn heap_bytes(_: usize) -> u64 {
        heap::<[u16; SMALL_LEN]>(1)
    }

    #[inline(always)]
    fn get(&self, i: usize) -> usize {
        usize::from(self.0[i % SMALL_LEN])
    }

    #[inline(always)]
    fn set(&mut self, i: usize, v: usize) {
        self.0[i % SMALL_LEN] = v as u16;
    }

    fn clear(&mut self, len: usize) {
        self.0[..len.min(SMALL_LEN)].fill(0);
    }

    #[inline(always)]
    fn prefetch(&self, i: usize) {
        prefetch(&self.0[i % SMALL_LEN]);
    }
}

/// Positions of any chunk: 32-bit entries.
pub(crate) struct Large(Vec<u32>);

impl Table for Large {
    fn with_len(len: usize) -> Result<Self, AllocError> {
        Ok(Large(crate::mem::filled(0, len)?))
    }

    fn heap_bytes(len: usize) -> u64 {
        heap::<u32>(len)
    }

    #[inline(always)]
    fn get(&self, i: usize) -> usize {
        self.0[i] as usize
    }

    #[inline(always)]
    fn set(&mut self, i: usize, v: usize) {
        self.0[i] = v as u32;
    }

    fn clear(&mut self, len: usize) {
        self.0[..len].fill(0);
    }

    #[inline(always)]
    fn prefetch(&self, i: usize) {
        if let Some(e) = self.0.get(i) {
            prefetch(e);
        }
    }
}

/// Binary trees over one chunk, with tables of type `T`.
pub(crate) struct BinaryTrees<T> {
    head4: T,
    /// Two positions per 3-byte hash: entry `2h` the newer, `2h + 1` the older.
    head3: T,
    /// The newest position per 2-byte hash (unused without `hash2`).
    head2: T,
    hash2: bool,
    /// Entry `2p`: the subtree of strings less than the one at `p`; `2p + 1` greater.
    children: T,
    bits3: u32,
    bits4: u32,
    /// The position whose 3- and 4-byte head indices `next` holds (computed, and their
    /// slots prefetched, by the call for the position before).
    next_pos: usize,
    next: (usize, usize),
    /// Whether the next positions' first tree nodes are prefetched (for chunks whose trees
    /// outgrow the caches; see [`BinaryTrees::advance`]).
    lookahead: bool,
    /// The same as `next` for the position after `next_pos` (with `lookahead`, computed
    /// two calls ahead).
    next2_pos: usize,
    next2: (usize, usize),
    /// With `lookahead`: the heads of the position after `next2_pos`, and the first tree
    /// node (`position + 1`, read a call ahead) of position `first_pos`.
    next3_pos: usize,
    next3: (usize, usize),
    first_pos: usize,
    first: usize,
}

/// Where [`BinaryTrees::matches`] appends the matches it reports.
pub(crate) trait Sink {
    /// Appends `m`.
    fn push(&mut self, m: Match);
    /// Appends `m` if `keep`. (A sink with room to spare may store `m` regardless and
    /// only count it when kept, which saves a hard-to-predict branch.)
    fn push_if(&mut self, m: Match, keep: bool);
}

impl Sink for Vec<Match> {
    #[inline(always)]
    fn push(&mut self, m: Match) {
        Vec::push(self, m);
    }

    #[inline(always)]
    fn push_if(&mut self, m: Match, keep: bool) {
        if keep {
            Vec::push(self, m);
        }
    }
}

/// A sink over a preallocated array: matches go to `buf[n..]`, and `n` counts them.
/// The caller leaves room for the most one position can report (`2 + max_len`
/// entries); matches beyond the array's end are dropped.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a mut [Match],
    pub(crate) n: usize,
}

impl Sink for Cursor<'_> {
    #[inline(always)]
    fn push(&mut self, m: Match) {
        if let Some(slot) = self.buf.get_mut(self.n) {
            *slot = m;
            self.n += 1;
        }
    }

    #[inline(always)]
    fn push_if(&mut self, m: Match, keep: bool) {
        if let Some(slot) = self.buf.get_mut(self.n) {
            *slot = m;
            self.n += usize::from(keep);
        }
    }
}

/// How one position is inserted: the match-search effort and the lengths wanted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    /// Longest match to report (and to extend to), clipped to the chunk's end.
    pub(crate) max_len: usize,
    /// A match this long ends the search.
    pub(crate) nice_len: usize,
    /// Tree nodes visited at most.
    pub(crate) depth: u32,
    /// Farthest offset allowed.
    pub(crate) max_offset: usize,
    /// Whether 3-byte (and, with `hash2`, 2-byte) matches are reported.
    pub(crate) min3: bool,
}

impl<T: Table> BinaryTrees<T> {
    /// The tables' sizes for chunks of at most `max_chunk` bytes: `bits3`, `bits4`, and the
    /// entries of `head4`, `head3`, `head2` and `children` (two per position).
    fn sizes(max_chunk: usize, hash2: bool) -> (u32, u32, [usize; 4]) {
        let order = max_chunk.next_power_of_two().trailing_zeros();
        let bits4 = (order + 1).clamp(MIN_HASH4_BITS, MAX_HASH4_BITS);
        let bits3 = bits4.min(MAX_HASH3_BITS);
        let head2 = if hash2 { 1 << HASH2_BITS } else { 0 };
        let lens = [1 << bits4, 2 << bits3, head2, max_chunk.saturating_mul(2)];
        (bits3, bits4, lens)
    }

    /// The heap bytes [`new`](Self::new) allocates (about 8 per byte of chunk with
    /// [`Large`] tables, a fixed 1 MiB with [`Small`] ones).
    pub(crate) fn heap_bytes(max_chunk: usize, hash2: bool) -> u64 {
        Self::sizes(max_chunk, hash2)
            .2
            .iter()
            .map(|&n| T::heap_bytes(n))
            .sum()
    }

    /// Trees for chunks of at most `max_chunk` bytes; with `hash2`, 2-byte matches too.
    pub(crate) fn new(max_chunk: usize, hash2: bool) -> Result<Self, AllocError> {
        let (bits3, bits4, [head4, head3, head2, children]) = Self::sizes(max_chunk, hash2);
        Ok(BinaryTrees {
            head4: T::with_len(head4)?,
            head3: T::with_len(head3)?,
            head2: T::with_len(head2)?,
            hash2,
            children: T::with_len(children)?,
            bits3,
            bits4,
            next_pos: usize::MAX,
            next: (0, 0),
            lookahead: max_chunk > LOOKAHEAD_CHUNK,
            next2_pos: usize::MAX,
            next2: (0, 0),
            next3_pos: usize::MAX,
            next3: (0, 0),
            first_pos: usize::MAX,
            first: 0,
        })
    }

    /// Prepares for a new chunk.
    pub(crate) fn reset(&mut self) {
        self.head4.clear(1 << self.bits4);
        self.head3.clear(2 << self.bits3);
        if self.hash2 {
            self.head2.clear(1 << HASH2_BITS);
        }
        self.next_pos = usize::MAX;
        self.next2_pos = usize::MAX;
        self.next3_pos = usize::MAX;
        self.first_pos = usize::MAX;
    }

    /// Prefetches the children and the first bytes of tree node `entry` (`position + 1`;
    /// for 0, none, harmless addresses or nothing).
    #[inline(always)]
    fn prefetch_node(&self, data: &[u8], entry: usize) {
        let c = entry.wrapping_sub(1);
        self.children.prefetch(c.wrapping_mul(2));
        if let Some(b) = data.get(c) {
            prefetch(b);
        }
    }

    /// The 3- and 4-byte head indices of the four bytes `v`.
    #[inline(always)]
    fn heads(&self, v: u32) -> (usize, usize) {
        (hash(v & 0xff_ffff, self.bits3), hash(v, self.bits4))
    }

    /// Inserts `pos` and appends its matches to `out` (lengths strictly increasing, from
    /// 2 with `hash2` and `min3`, 3 with `min3`, else from 4); returns the longest length
    /// found.
    #[inline]
    pub(crate) fn matches<S: Sink>(
        &mut self,
        data: &[u8],
        pos: usize,
        probe: Probe,
        out: &mut S,
    ) -> usize {
        self.advance::<true, S>(data, pos, probe, out)
    }

    /// Inserts `pos` without reporting matches; returns the longest length found. (To
    /// only insert, pass `max_len` = `nice_len`: extending further only costs time.)
    #[inline]
    pub(crate) fn skip(&mut self, data: &[u8], pos: usize, probe: Probe) -> usize {
        self.advance::<false, _>(data, pos, probe, &mut Vec::new())
    }

    #[inline(always)]
    fn advance<const RECORD: bool, S: Sink>(
        &mut self,
        data: &[u8],
        pos: usize,
        probe: Probe,
        out: &mut S,
    ) -> usize {
        let max_len = probe.max_len.max(4).min(data.len() - pos);
        if max_len < 4 {
            return 0;
        }
        let me = pos + 1;
        let v = load_u32(data, pos);
        let (h3, h4) = if pos == self.next_pos {
            self.next
        } else {
            self.heads(v)
        };
        // With `lookahead`, the heads three positions ahead are computed and their slots
        // prefetched; the 4-byte slot of the position after next, prefetched a call ago,
        // gives that position's first tree node, whose children and bytes are prefetched;
        // and the next position's first node, read a call ago, gives the two nodes its
        // walk may visit second, prefetched likewise. (The walk's first loads, which
        // would otherwise miss the cache in a large chunk.)
        if self.lookahead && pos + 7 <= data.len() {
            let next = if self.next2_pos == me {
                self.next2
            } else {
                self.heads(load_u32(data, me))
            };
            let next2 = if self.next3_pos == me + 1 {
                self.next3
            } else {
                self.heads(load_u32(data, me + 1))
            };
            let next3 = self.heads(load_u32(data, me + 2));
            self.head4.prefetch(next3.1);
            self.head3.prefetch(2 * next3.0);
            // Two positions ahead: the first node (its head slot prefetched a call ago).
            let first = self.head4.get(next2.1);
            self.prefetch_node(data, first);
            // One position ahead: the first node's children (prefetched a call ago), the
            // walk's second node whichever side it takes.
            if self.first_pos == me && self.first != 0 {
                let c = self.first - 1;
                let (left, right) = (self.children.get(2 * c), self.children.get(2 * c + 1));
                self.prefetch_node(data, left);
                self.prefetch_node(data, right);
            }
            (self.first, self.first_pos) = (first, me + 1);
            (self.next, self.next_pos) = (next, me);
            (self.next2, self.next2_pos) = (next2, me + 1);
            (self.next3, self.next3_pos) = (next3, me + 2);
        } else if pos + 5 <= data.len() {
            // The next position's heads, for the next call (usually `pos + 1`).
            self.next = self.heads(load_u32(data, me));
            self.next_pos = me;
            self.head4.prefetch(self.next.1);
            self.head3.prefetch(2 * self.next.0);
        }
        let cand3 = self.head3.replace(2 * h3, me);
        let cand3_old = self.head3.replace(2 * h3 + 1, cand3);
        let mut cand = self.head4.replace(h4, me);
        let cand2 = if self.hash2 {
            self.head2.replace(hash(v & 0xffff, HASH2_BITS), me)
        } else {
            0
        };
        // Entries below `limit` are empty (0) or too far back.
        let limit = pos.saturating_sub(probe.max_offset) + 1;
        let mut best = 3;
        if RECORD && probe.min3 {
            // Without branches on the data: the bytes differing from `v` at entry `e`
            // (an entry below `limit` loads harmless bytes and is rejected).
            let diff = |e: usize| load_u32(data, e.max(1) - 1) ^ v;
            if self.hash2 {
                let d = diff(cand2);
                let keep = (cand2 >= limit) & (d & 0xffff == 0) & (d & 0xff_ffff != 0);
                out.push_if(
                    Match {
                        len: 2,
                        off: me.wrapping_sub(cand2) as u32,
                    },
                    keep,
                );
            }
            let new = (cand3 >= limit) & (diff(cand3) & 0xff_ffff == 0);
            let old = (cand3_old >= limit) & (diff(cand3_old) & 0xff_ffff == 0);
            let c3 = if new { cand3 } else { cand3_old };
            out.push_if(
                Match {
                    len: 3,
                    off: me.wrapping_sub(c3) as u32,
                },
                new | old,
            );
        }
        let nice_len = probe.nice_len.min(max_len);
        let (mut lt_slot, mut gt_slot) = (2 * pos, 2 * pos + 1);
        let (mut lt_len, mut gt_len) = (0usize, 0usize);
        let mut depth = probe.depth;
        // The bytes from here, and from each candidate (an earlier position), as slices
        // of `max_len` bytes; compared lengths stay below `max_len` (a match that long
        // reaches `nice_len` and ends the walk).
        let here = &data[pos..pos + max_len];
        loop {
            if cand < limit || depth == 0 {
                self.children.set(lt_slot, 0);
                self.children.set(gt_slot, 0);
                return best;
            }
            let c = cand - 1;
            debug_assert!(c < pos);
            depth -= 1;
            let there = &data[c..c + max_len];
            let mut len = lt_len.min(gt_len);
            let (mut a, mut b) = (there[len], here[len]);
            if a == b {
                len = common_len(there, here, len + 1);
                if len > best {
                    best = len;
                    if RECORD {
                        out.push(Match {
                            len: len as u32,
                            off: (pos - c) as u32,
                        });
                    }
                }
                if len >= nice_len {
                    self.children.set(lt_slot, self.children.get(2 * c));
                    self.children.set(gt_slot, self.children.get(2 * c + 1));
                    return best;
                }
                (a, b) = (there[len], here[len]);
            }
            if a < b {
                self.children.set(lt_slot, cand);
                lt_slot = 2 * c + 1;
                cand = self.children.get(lt_slot);
                lt_len = len;
            } else {
                self.children.set(gt_slot, cand);
                gt_slot = 2 * c;
                cand = self.children.get(gt_slot);
                gt_len = len;
            }
        }
    }
}
