//! LZX near-optimal parsing: the cheapest path through a block under a price model.
//!
//! Binary-tree match finding fills a match cache for the block's positions; then a forward
//! pass over the block relaxes, from each reachable position, a literal, every length of
//! the three repeat-offset matches, and every length of each cached match, keeping per
//! position the cheapest arrival and the repeat-offset queue it leaves (so repeat offsets
//! are priced along the path actually taken). Prices are codeword lengths in 1/16 bits:
//! first guessed (literals from the block's byte histogram), then, for each further pass,
//! the Huffman code the previous pass's path would get. Lengths at or above the "nice"
//! length are tried only in full, and positions inside such a match get no cached
//! matches, as in wimlib.

use super::super::alloc::{vec, vec::Vec};
use super::super::lzx::{EXTRA_BITS, MAX_MAIN_SYMS, NUM_CHARS, NUM_LEN_SYMS};
use super::lzx::{update_queue, MAX_MATCH, MIN_MATCH};
use super::lzx_block::{offset_slot, BlockCoder};
use super::mf::{match_len, BinaryTrees, Match, Search};
use super::xpress::log2_16;
use super::Item;

/// Match-cache entries reserved per position.
const CACHE_PER_POS: usize = 10;
const INFINITE: u32 = u32::MAX;

#[derive(Clone, Copy, Default)]
struct Node {
    cost: u32,
    /// The step that arrives here: its length (1 = literal) and offset code (or byte).
    len: u32,
    code: u32,
    queue: [u32; 3],
}

/// Prices in 1/16 bits.
struct Prices {
    main: [u32; MAX_MAIN_SYMS],
    len: [u32; NUM_LEN_SYMS],
}

/// Near-optimal parsing state.
pub(crate) struct Optimal {
    bt: BinaryTrees,
    passes: u32,
    cache: Vec<Match>,
    starts: Vec<u32>,
    nodes: Vec<Node>,
    prices: Prices,
}

impl Optimal {
    pub(crate) fn new(max_chunk: usize, passes: u32) -> Self {
        let block = max_chunk.min(super::lzx::BLOCK_SIZE);
        Optimal {
            bt: BinaryTrees::new(max_chunk),
            passes,
            cache: Vec::with_capacity(block * CACHE_PER_POS + MAX_MATCH + 2),
            starts: vec![0; block + 1],
            nodes: vec![Node::default(); block + 1],
            prices: Prices {
                main: [0; MAX_MAIN_SYMS],
                len: [0; NUM_LEN_SYMS],
            },
        }
    }

    /// Starts a chunk of `len` bytes.
    pub(crate) fn reset(&mut self, len: usize) {
        self.bt.reset(len);
    }

    /// Parses `buf[start..end]` (one block) into `items`, starting from repeat-offset
    /// state `queue`; returns the state after the block.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn parse(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        search: Search,
        queue: [u32; 3],
        coder: &mut BlockCoder,
        items: &mut Vec<Item>,
    ) -> [u32; 3] {
        self.find_matches(buf, start, end, search);
        self.initial_prices(&buf[start..end], coder.num_main);
        let mut out_queue = queue;
        for pass in 0..self.passes {
            if pass > 0 {
                let (main, len) = coder.lens_for(items);
                set_prices(&mut self.prices.main[..main.len()], main, 16);
                set_prices(&mut self.prices.len, len, 16);
            }
            self.min_cost_path(buf, start, end, search.nice, queue);
            items.clear();
            out_queue = self.collect(end - start, items);
        }
        out_queue
    }

    fn find_matches(&mut self, buf: &[u8], start: usize, end: usize, search: Search) {
        let Search {
            depth,
            nice,
            max_offset,
        } = search;
        self.cache.clear();
        let limit = self.cache.capacity() - MAX_MATCH - 2;
        let mut i = start;
        while i < end {
            self.starts[i - start] = self.cache.len() as u32;
            let out = (self.cache.len() < limit).then_some(&mut self.cache);
            let longest = self
                .bt
                .advance(buf, i, MAX_MATCH, nice, depth, max_offset, true, out);
            i += 1;
            if longest >= nice {
                let stop = (i - 1 + longest).min(end);
                while i < stop {
                    self.starts[i - start] = self.cache.len() as u32;
                    self.bt
                        .advance(buf, i, nice, nice, depth, max_offset, true, None);
                    i += 1;
                }
            }
        }
        self.starts[end - start] = self.cache.len() as u32;
    }

    fn initial_prices(&mut self, block: &[u8], num_main: usize) {
        let mut hist = [0u32; 256];
        for &b in block {
            hist[usize::from(b)] += 1;
        }
        let total = log2_16(block.len() as u32 + 1);
        for (p, &h) in self.prices.main.iter_mut().zip(&hist) {
            *p = total.saturating_sub(log2_16(h + 1)).clamp(16, 16 * 16) + 8;
        }
        for (k, p) in self.prices.main[NUM_CHARS..num_main].iter_mut().enumerate() {
            let (slot, header) = (k / 8, (k % 8) as u32);
            *p = if slot < 3 {
                7 * 16 + 8 * header
            } else {
                9 * 16 + 4 * header
            } + 16 * slot as u32 / 8;
        }
        self.prices.len.fill(6 * 16);
    }

    /// Forward relaxation over the block; leaves the cheapest arrivals in `nodes`.
    fn min_cost_path(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        nice: usize,
        queue: [u32; 3],
    ) {
        let n = end - start;
        let nodes = &mut self.nodes[..=n];
        for node in nodes.iter_mut() {
            node.cost = INFINITE;
        }
        nodes[0] = Node {
            cost: 0,
            len: 0,
            code: 0,
            queue,
        };
        let main = &self.prices.main;
        let lenp = &self.prices.len;
        for i in 0..n {
            let Node {
                cost: c0, queue: q, ..
            } = nodes[i];
            let pos = start + i;
            let byte = buf[pos];
            relax(
                nodes,
                i + 1,
                c0 + main[usize::from(byte)],
                1,
                u32::from(byte),
                q,
            );
            let max_len = (n - i).min(MAX_MATCH);
            if max_len < MIN_MATCH {
                continue;
            }
            for r in 0..3 {
                let off = q[r] as usize;
                // (A repeat offset must match its first two bytes, which most do not.)
                if off > pos
                    || buf[pos] != buf[pos - off]
                    || buf[pos + 1] != buf[pos + 1 - off]
                    || (r > 0 && q[..r].contains(&q[r]))
                {
                    continue;
                }
                let rl = match_len(buf, pos - off, pos, 2, max_len);
                if rl < MIN_MATCH {
                    continue;
                }
                let mut nq = q;
                nq.swap(0, r);
                let row = &main[NUM_CHARS + r * 8..NUM_CHARS + r * 8 + 8];
                let lo = if rl >= nice { rl } else { MIN_MATCH };
                let code = r as u32;
                relax_lengths(nodes, i, lo, rl, c0, row, lenp, code, nq);
            }
            let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
            let mut l = 3;
            for m in &self.cache[s..e] {
                let mlen = (m.len as usize).min(max_len);
                if q.contains(&m.off) {
                    l = l.max(mlen + 1);
                    continue;
                }
                let slot = offset_slot(m.off);
                let row = &main[NUM_CHARS + slot * 8..NUM_CHARS + slot * 8 + 8];
                let extra = 16 * u32::from(EXTRA_BITS[slot]);
                let nq = [m.off, q[0], q[1]];
                if mlen >= nice {
                    l = mlen;
                }
                if l <= mlen {
                    relax_lengths(nodes, i, l, mlen, c0 + extra, row, lenp, m.off + 2, nq);
                    l = mlen + 1;
                }
            }
        }
    }

    /// Appends the cheapest path's items (in order) to `items`; returns the final queue.
    fn collect(&mut self, n: usize, items: &mut Vec<Item>) -> [u32; 3] {
        let first = items.len();
        let mut j = n;
        while j > 0 {
            let node = self.nodes[j];
            items.push(Item {
                len: node.len,
                off: node.code,
            });
            j -= node.len as usize;
        }
        items[first..].reverse();
        let mut q = self.nodes[0].queue;
        for it in &items[first..] {
            if it.len > 1 {
                update_queue(&mut q, it.off);
            }
        }
        debug_assert_eq!(q, self.nodes[n].queue);
        q
    }
}

#[inline(always)]
fn relax(nodes: &mut [Node], j: usize, cost: u32, len: u32, code: u32, queue: [u32; 3]) {
    let node = &mut nodes[j];
    if cost < node.cost {
        *node = Node {
            cost,
            len,
            code,
            queue,
        };
    }
}

/// Offers a match (`code`, leaving queue `queue`) of every length `lo..=hi` (at least 2)
/// from node `i`: `base` plus the main symbol's price for the length header (`row`, 8
/// entries) plus, from length 9, the length symbol's price.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn relax_lengths(
    nodes: &mut [Node],
    i: usize,
    lo: usize,
    hi: usize,
    base: u32,
    row: &[u32],
    lenp: &[u32; NUM_LEN_SYMS],
    code: u32,
    queue: [u32; 3],
) {
    // Lengths 2..=8 have their own header; longer ones share header 7 and add a length
    // symbol (length - 9).
    let run = |nodes: &mut [Node], from: usize, to: usize, base: u32, prices: &[u32]| {
        let targets = &mut nodes[i + from..=i + to];
        for ((node, &p), l) in targets.iter_mut().zip(prices).zip(from as u32..) {
            let cost = base + p;
            if cost < node.cost {
                *node = Node {
                    cost,
                    len: l,
                    code,
                    queue,
                };
            }
        }
    };
    let short_hi = hi.min(8);
    if lo <= short_hi {
        run(nodes, lo, short_hi, base, &row[lo - 2..]);
    }
    let long_lo = lo.max(9);
    if long_lo <= hi {
        run(nodes, long_lo, hi, base + row[7], &lenp[long_lo - 9..]);
    }
}

/// Prices from code lengths; unused symbols get a length a little over the longest used.
fn set_prices(prices: &mut [u32], lens: &[u8], scale: u32) {
    let unused = u32::from(lens.iter().copied().max().unwrap_or(0)).max(8) + 2;
    for (p, &l) in prices.iter_mut().zip(lens) {
        *p = scale * if l == 0 { unused } else { u32::from(l) };
    }
}
