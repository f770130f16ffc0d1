//! LZMS's adaptive Huffman codes.
//!
//! Each code counts how often each symbol was decoded and is rebuilt from those counts
//! every `rebuild_freq` symbols, after which the counts are halved (`f / 2 + 1`). Counts start
//! at 1. Decoder and encoder must build the same code, so the construction is fixed: the
//! classic Huffman merge of the two least frequent nodes with ties going to leaves, symbols
//! taken in order of (count, symbol), the longest codewords going to the first ones, then
//! canonical codewords; a depth beyond 15 (which LZMS's counts cannot reach) would be cut
//! the way wimlib cuts it.

use super::super::huffman::{self, Bits};

/// Longest LZMS codeword.
const MAX_LEN: u32 = 15;

/// An adaptive code over up to `S` symbols with a decode table of `T` entries indexed by
/// `B` bits (constants, so that lookups compile to fixed shifts without bounds checks).
pub(crate) struct AdaptiveCode<const S: usize, const T: usize, const B: u32> {
    table: [u16; T],
    freqs: [u32; S],
    num_syms: usize,
    rebuild_freq: u32,
    until_rebuild: u32,
}

impl<const S: usize, const T: usize, const B: u32> AdaptiveCode<S, T, B> {
    pub(crate) const fn new(rebuild_freq: u32) -> Self {
        AdaptiveCode {
            table: [0; T],
            freqs: [1; S],
            num_syms: 0,
            rebuild_freq,
            until_rebuild: rebuild_freq,
        }
    }

    /// Starts a chunk with `num_syms <= S` symbols, all counts 1.
    pub(crate) fn reset(&mut self, num_syms: usize, scratch: &mut Scratch) {
        self.num_syms = num_syms.min(S);
        self.freqs.fill(1);
        self.build(scratch);
    }

    /// Decodes one symbol (the reader must hold 15 bits) and counts it.
    #[inline(always)]
    pub(crate) fn decode<R: Bits>(&mut self, r: &mut R, scratch: &mut Scratch) -> usize {
        let sym = huffman::decode(&self.table, B, r) as usize;
        // Symbols come from the table and are below `num_syms <= S` (or 0 for a code of
        // fewer than two symbols).
        if let Some(f) = self.freqs.get_mut(sym) {
            *f += 1;
        }
        self.until_rebuild -= 1;
        if self.until_rebuild == 0 {
            self.rebuild(scratch);
        }
        sym
    }

    #[cold]
    fn rebuild(&mut self, scratch: &mut Scratch) {
        self.build(scratch);
        for f in &mut self.freqs[..self.num_syms] {
            *f = (*f >> 1) + 1;
        }
    }

    fn build(&mut self, scratch: &mut Scratch) {
        self.until_rebuild = self.rebuild_freq;
        let n = self.num_syms;
        let lens = &mut scratch.lens[..n];
        if n < 2 {
            // No code: the table yields symbol 0 from zero bits.
            self.table[..1 << B].fill(0);
            return;
        }
        let counts = code_lengths(&self.freqs[..n], lens, &mut scratch.nodes);
        let ok = huffman::build_complete(
            &mut self.table,
            B,
            lens,
            MAX_LEN,
            &counts,
            &mut scratch.sorted,
        );
        debug_assert!(ok, "Huffman lengths always form a complete code");
    }
}

impl<const S: usize, const T: usize, const B: u32> core::fmt::Debug for AdaptiveCode<S, T, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AdaptiveCode")
            .field("num_syms", &self.num_syms)
            .field("until_rebuild", &self.until_rebuild)
            .finish_non_exhaustive()
    }
}

/// Working space shared by the codes' rebuilds.
#[derive(Debug)]
pub(crate) struct Scratch {
    lens: [u8; huffman::MAX_SYMS],
    nodes: [u32; huffman::MAX_SYMS],
    sorted: [u16; huffman::MAX_SYMS],
}

impl Scratch {
    pub(crate) const fn new() -> Self {
        Scratch {
            lens: [0; huffman::MAX_SYMS],
            nodes: [0; huffman::MAX_SYMS],
            sorted: [0; huffman::MAX_SYMS],
        }
    }
}

/// Symbol bits in a packed (count, symbol) key.
const SYM_BITS: u32 = 10;
const SYM_MASK: u32 = (1 << SYM_BITS) - 1;

/// Huffman codeword lengths for `freqs` (at least two symbols, each count at least 1, counts
/// below 2^22) into `lens`; `nodes` is working space of at least `freqs.len()` entries.
/// Returns the number of codewords of each length.
pub(crate) fn code_lengths(
    freqs: &[u32],
    lens: &mut [u8],
    nodes: &mut [u32],
) -> [u16; huffman::MAX_LEN + 1] {
    let n = freqs.len();
    // Leaves sorted by (count, symbol), packed as count << 10 | symbol.
    let keys = &mut nodes[..n];
    sort_leaves(freqs, keys);

    // Build the tree's internal nodes in place: node `e` overwrites leaf slot `e` (already
    // consumed: two leaves or more are merged before slot `e` is written). An internal node
    // keeps its count in the high bits; once it has a parent, the parent's index replaces
    // the count. The low bits keep the leaf's symbol for the final assignment. (Branches
    // beat a branch-free merge here: the pattern is regular, the sentinel version's
    // dependency chain is not.)
    let count = |v: u32| v >> SYM_BITS;
    let (mut leaf, mut first_open, mut e) = (0usize, 0usize, 0usize);
    let last = n - 1;
    while e < last {
        let (a, b);
        // Two leaves if the second leaf is no larger than the smallest open node; two open
        // nodes if the second of them is smaller than the next leaf; else one of each.
        if leaf < last && (first_open == e || count(keys[leaf + 1]) <= count(keys[first_open])) {
            a = count(keys[leaf]);
            b = count(keys[leaf + 1]);
            leaf += 2;
        } else if first_open + 2 <= e
            && (leaf > last || count(keys[first_open + 1]) < count(keys[leaf]))
        {
            a = count(keys[first_open]);
            b = count(keys[first_open + 1]);
            keys[first_open] = ((e as u32) << SYM_BITS) | (keys[first_open] & SYM_MASK);
            keys[first_open + 1] = ((e as u32) << SYM_BITS) | (keys[first_open + 1] & SYM_MASK);
            first_open += 2;
        } else {
            a = count(keys[leaf]);
            b = count(keys[first_open]);
            keys[first_open] = ((e as u32) << SYM_BITS) | (keys[first_open] & SYM_MASK);
            leaf += 1;
            first_open += 1;
        }
        keys[e] = ((a + b) << SYM_BITS) | (keys[e] & SYM_MASK);
        e += 1;
    }

    // Depths of the internal nodes, root (index n - 2) first, and from them the number of
    // leaves at each length: every internal node at depth d turns one length-d leaf slot into
    // two of length d + 1. Depths past 15 take the longest shorter length still available.
    let mut len_counts = [0u32; MAX_LEN as usize + 1];
    len_counts[1] = 2;
    let root = n - 2;
    keys[root] &= SYM_MASK;
    for node in (0..root).rev() {
        let parent = (keys[node] >> SYM_BITS) as usize;
        let depth = (keys[parent] >> SYM_BITS) + 1;
        keys[node] = (depth << SYM_BITS) | (keys[node] & SYM_MASK);
        let mut len = depth;
        if len >= MAX_LEN {
            len = MAX_LEN;
            loop {
                len -= 1;
                if len_counts[len as usize] != 0 {
                    break;
                }
            }
        }
        len_counts[len as usize] -= 1;
        len_counts[len as usize + 1] += 2;
    }

    // Longest lengths to the symbols first in (count, symbol) order.
    let mut i = 0;
    let mut counts = [0u16; huffman::MAX_LEN + 1];
    for len in (1..=MAX_LEN as usize).rev() {
        counts[len] = len_counts[len] as u16;
        for _ in 0..len_counts[len] {
            lens[(keys[i] & SYM_MASK) as usize] = len as u8;
            i += 1;
        }
    }
    counts
}

/// Writes `count << 10 | symbol` for every symbol into `keys`, sorted ascending: counts are
/// mostly small, so a counting sort on the count places them (symbols in increasing order
/// within a count), and the few large ones are sorted by comparison afterwards.
fn sort_leaves(freqs: &[u32], keys: &mut [u32]) {
    const BUCKETS: usize = 64;
    let bucket = |f: u32| (f as usize).min(BUCKETS);
    let mut starts = [0u16; BUCKETS + 1];
    for &f in freqs {
        starts[bucket(f)] += 1;
    }
    let mut sum = 0;
    for s in starts.iter_mut() {
        let c = *s;
        *s = sum;
        sum += c;
    }
    let big = usize::from(starts[BUCKETS]);
    for (sym, &f) in freqs.iter().enumerate() {
        let slot = &mut starts[bucket(f)];
        if let Some(k) = keys.get_mut(usize::from(*slot)) {
            *k = (f.min((1 << (32 - SYM_BITS)) - 1) << SYM_BITS) | sym as u32;
        }
        *slot += 1;
    }
    keys[big..].sort_unstable();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook construction: a priority queue of (count, order, depth-tracking tree)
    /// where leaves win ties (they get a lower order key than any internal node of the same
    /// count, and earlier leaves in (count, symbol) order win among leaves).
    fn reference_lengths(freqs: &[u32]) -> Vec<u8> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        // Node: (count, class 0 = leaf / 1 = internal, sequence) ordering; children lists.
        let n = freqs.len();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut heap = BinaryHeap::new();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&s| (freqs[s], s));
        for (rank, &s) in order.iter().enumerate() {
            heap.push(Reverse((u64::from(freqs[s]), 0u8, rank, s)));
        }
        let mut seq = 0;
        while heap.len() > 1 {
            let Reverse((c1, _, _, a)) = heap.pop().unwrap();
            let Reverse((c2, _, _, b)) = heap.pop().unwrap();
            children.push(vec![a, b]);
            heap.push(Reverse((c1 + c2, 1, seq, children.len() - 1)));
            seq += 1;
        }
        let mut lens = vec![0u8; n];
        let mut stack = vec![(children.len() - 1, 0u8)];
        while let Some((node, d)) = stack.pop() {
            if node < n {
                lens[node] = d;
            } else {
                for &c in &children[node] {
                    stack.push((c, d + 1));
                }
            }
        }
        // Canonical reassignment: same multiset of lengths, longest to the first symbols in
        // (count, symbol) order.
        let mut by_len: Vec<u8> = order.iter().map(|&s| lens[s]).collect();
        by_len.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = vec![0u8; n];
        for (&s, &l) in order.iter().zip(&by_len) {
            out[s] = l;
        }
        out
    }

    #[test]
    fn matches_the_priority_queue_construction() {
        let mut seed = 0x9e37_79b9_u32;
        for n in [2usize, 3, 8, 54, 256, 799] {
            for round in 0..30 {
                let freqs: Vec<u32> = (0..n)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        let r = seed >> 8;
                        match round % 3 {
                            0 => 1 + r % 4,
                            1 => 1 + r % 200,
                            _ => 1 + (r % 3000) * u32::from(r.is_multiple_of(7)),
                        }
                    })
                    .collect();
                let mut lens = vec![0u8; n];
                let mut nodes = vec![0u32; n];
                code_lengths(&freqs, &mut lens, &mut nodes);
                let reference = reference_lengths(&freqs);
                if reference.iter().all(|&l| l <= 15) {
                    assert_eq!(lens, reference, "n {n} round {round}");
                } else {
                    // Counts LZMS cannot reach: cut to 15 bits, still a complete code.
                    assert!(lens.iter().all(|&l| (1..=15).contains(&l)));
                    let kraft: u64 = lens.iter().map(|&l| 1u64 << (15 - l)).sum();
                    assert_eq!(kraft, 1 << 15, "n {n} round {round}");
                }
            }
        }
    }
}
