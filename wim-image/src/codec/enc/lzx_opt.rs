//! LZX near-optimal parsing: the cheapest path through a block under a price model.
//!
//! Binary-tree match finding fills a match cache for the block's positions; then a forward
//! pass over the block relaxes, from each position, a literal and every length of the
//! matches there, each length only with its cheapest-looking source: repeat offset 0,
//! then 1, then 2, then the cached matches by increasing length (so by increasing
//! offset), as wimlib does. Repeat offsets are only tried where the finder found a match.
//! A node holds its cheapest arrival (8 bytes); the repeat-offset queue that arrival
//! leaves is settled once, when the node becomes current, in a ring of recent queues
//! (a match reaches back at most 257 positions). Prices are codeword lengths in 1/16 bits
//! in a (slot, length) table: first the Huffman code of a greedy parse of the match cache
//! (the longest cached match where there is one of 3 bytes or more, else a literal), with
//! guesses for the symbols that parse does not use (literals from the block's byte
//! histogram); then, for each further pass, the Huffman code the previous pass's path
//! would get.
//!
//! The greedy seed replaces wimlib's first pass. Measured with the `wim_compress` bench
//! (8 MiB of documentation and shared objects, 32 KiB chunks, level 50): one pass from the
//! seed gives output 0.58% larger than wimlib's (two passes from the byte-histogram guess:
//! 0.60%; two from the seed: 0.44%), so the levels below 70 make one pass.
//! Positions inside a match of the "nice" length get no cached matches, as in wimlib.
//!
//! A block whose greedy seed has at most 1/32 of its bytes in matches and whose seed code
//! already costs as many bits as the bytes (compressed files, random data) keeps the seed
//! as its parse: the optimization passes could hardly win anything there, and the block
//! ends up stored. On the `.gz` files of the reference tree (`WIM_BENCH_INPUT_DIR`, 16 MiB)
//! this took level 50 from 0.63x to 0.79x wimlib's speed and level 100 from 0.65x to 0.95x,
//! the output 16 bytes larger; on compressible input it never applies.

use super::super::alloc::{vec, vec::Vec};
use super::super::lzx::{EXTRA_BITS, MAX_MAIN_SYMS, MAX_OFFSET_SLOTS, NUM_CHARS, NUM_LEN_SYMS};
use super::bt::{BinaryTrees, Cursor, Probe, Sink, Table};
use super::lzx::{MAX_MATCH, MIN_MATCH};
use super::lzx_block::{offset_slot, BlockCoder};
use super::mf::{match_len, Match, Search};
use super::xpress::log2_16;
use super::{heap, Item};
use crate::mem::AllocError;
use core::hint::select_unpredictable;

/// Match-cache entries reserved per position.
const CACHE_PER_POS: usize = 10;
const INFINITE: u32 = u32::MAX;
/// Lengths a (slot, length) price row covers: 2 to 257.
const NUM_LENS: usize = MAX_MATCH - MIN_MATCH + 1;
/// Recent repeat-offset queues kept (a power of two above the longest match).
const QUEUE_RING: usize = 512;
/// Bits of a node's item that hold the length (1 = literal).
const LEN_BITS: u32 = 9;
const LEN_MASK: u32 = (1 << LEN_BITS) - 1;

/// The cheapest arrival found so far at a position: its cost and the step, as
/// `length | code << LEN_BITS` (code: the byte of a literal, else the offset code).
#[derive(Clone, Copy, Default)]
struct Node {
    cost: u32,
    item: u32,
}

/// Prices in 1/16 bits.
struct Prices {
    main: [u32; MAX_MAIN_SYMS],
    len: [u32; NUM_LEN_SYMS],
    /// `matches[slot][length - 2]`: main symbol, length symbol and extra bits.
    matches: Vec<[u32; NUM_LENS]>,
}

impl Prices {
    /// Fills the (slot, length) table from `main` and `len`.
    fn derive(&mut self, num_slots: usize) {
        for (slot, row) in self.matches[..num_slots].iter_mut().enumerate() {
            let header = &self.main[NUM_CHARS + slot * 8..NUM_CHARS + slot * 8 + 8];
            let extra = if slot < 3 {
                0
            } else {
                16 * u32::from(EXTRA_BITS[slot])
            };
            let (short, long) = row.split_at_mut(7);
            for (p, &h) in short.iter_mut().zip(header) {
                *p = h + extra;
            }
            for (p, &l) in long.iter_mut().zip(&self.len) {
                *p = header[7] + l + extra;
            }
        }
    }
}

/// Near-optimal parsing state, with match-finder tables of type `T`.
pub(crate) struct Optimal<T> {
    bt: BinaryTrees<T>,
    passes: u32,
    /// The block's matches, per position: see [`find_matches`](Self::find_matches). Its
    /// length is fixed (the most a block can use); the used part is written in order.
    cache: Vec<Match>,
    /// Matches (headers not counted) after which positions get no more.
    cache_limit: usize,
    nodes: Vec<Node>,
    /// Packed queues ([`pack`]), by position modulo [`QUEUE_RING`].
    queues: Vec<u64>,
    prices: Prices,
}

/// Match-cache entries for blocks of at most `block` bytes.
fn cache_len(block: usize) -> usize {
    block * (CACHE_PER_POS + 1) + MAX_MATCH + 2
}

impl<T: Table> Optimal<T> {
    /// The heap bytes [`new`](Self::new) allocates (the state itself not counted): the
    /// trees, and for one block (at most 64 KiB) the match cache and the nodes.
    pub(crate) fn heap_bytes(max_chunk: usize) -> u64 {
        let block = max_chunk.min(super::lzx::BLOCK_SIZE);
        BinaryTrees::<T>::heap_bytes(max_chunk, true)
            + heap::<Match>(cache_len(block))
            + heap::<Node>(block + 1)
            + heap::<u64>(QUEUE_RING)
            + heap::<[u32; NUM_LENS]>(MAX_OFFSET_SLOTS)
    }

    pub(crate) fn new(max_chunk: usize, passes: u32) -> Result<Self, AllocError> {
        let block = max_chunk.min(super::lzx::BLOCK_SIZE);
        Ok(Optimal {
            bt: BinaryTrees::new(max_chunk, true)?,
            passes,
            cache: vec![Match::default(); cache_len(block)],
            cache_limit: block * CACHE_PER_POS,
            nodes: vec![Node::default(); block + 1],
            queues: vec![0; QUEUE_RING],
            prices: Prices {
                main: [0; MAX_MAIN_SYMS],
                len: [0; NUM_LEN_SYMS],
                matches: vec![[0; NUM_LENS]; MAX_OFFSET_SLOTS],
            },
        })
    }

    /// Starts a chunk.
    pub(crate) fn reset(&mut self) {
        self.bt.reset();
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
        items.clear();
        let seed_queue = self.find_matches(buf, start, end, search, queue, items);
        let num_slots = (coder.num_main - NUM_CHARS) / 8;
        self.initial_prices(&buf[start..end], coder.num_main);
        let (main, len) = coder.lens_for(items);
        // Symbols the greedy parse used get their code length; the others keep the guess.
        for (p, &l) in self
            .prices
            .main
            .iter_mut()
            .zip(main)
            .chain(self.prices.len.iter_mut().zip(len))
        {
            if l != 0 {
                *p = 16 * u32::from(l);
            }
        }
        if coder.incompressible(items, end - start) {
            // The greedy parse is the block's parse; it will most likely be stored.
            return seed_queue;
        }
        let mut out_queue = queue;
        for pass in 0..self.passes {
            if pass > 0 {
                let (main, len) = coder.lens_for(items);
                set_prices(&mut self.prices.main[..main.len()], main, 16);
                set_prices(&mut self.prices.len, len, 16);
            }
            self.prices.derive(num_slots);
            out_queue = self.min_cost_path(buf, start, end, queue);
            items.clear();
            self.collect(end - start, items);
        }
        out_queue
    }

    /// Fills the match cache for the block: for each position a header entry (`len` =
    /// the number of matches that follow), then its matches, each `len` holding the
    /// length in its low 16 bits and the offset slot above. Appends to `seed` the greedy
    /// parse of the block from repeat-offset state `queue`: at each position it reaches,
    /// the longest cached match if it has 3 bytes or more (coded as a repeat when its offset
    /// is in the queue), else a literal; returns that parse's queue at the block's end.
    /// (Out of line, like [`min_cost_path`](Self::min_cost_path): each loop gets the
    /// registers to itself.)
    #[inline(never)]
    fn find_matches(
        &mut self,
        buf: &[u8],
        start: usize,
        end: usize,
        search: Search,
        queue: [u32; 3],
        seed: &mut Vec<Item>,
    ) -> [u32; 3] {
        let Search {
            depth,
            nice,
            max_offset,
        } = search;
        let limit = self.cache_limit;
        // Entries used; a position adds a header and at most `2 + MAX_MATCH` matches, and
        // none once `limit` matches are cached, so the array never runs out.
        let mut n = 0;
        let probe = Probe {
            max_len: MAX_MATCH,
            nice_len: nice,
            depth,
            max_offset,
            min3: true,
        };
        let inside = Probe {
            max_len: nice,
            ..probe
        };
        let mut i = start;
        // The greedy parse: its queue, and where its next item starts.
        let (mut q, mut next_item) = (pack(queue), start);
        while i < end {
            let head = n;
            let mut out = SlotCursor(Cursor {
                buf: &mut self.cache[..],
                n: head + 1,
            });
            let longest = if head - (i - start) < limit {
                self.bt.matches(buf, i, probe, &mut out)
            } else {
                self.bt.skip(buf, i, probe)
            };
            n = out.0.n;
            if let Some(h) = self.cache.get_mut(head) {
                h.len = (n - head - 1) as u32;
            }
            if i == next_item {
                let best = match n - head - 1 {
                    0 => Match::default(),
                    _ => self.cache[n - 1],
                };
                next_item = i + seed_item(&mut q, best, buf[i], end - i, seed);
            }
            i += 1;
            if longest >= nice {
                let stop = (i - 1 + longest).min(end);
                while i < stop {
                    if let Some(h) = self.cache.get_mut(n) {
                        h.len = 0;
                        n += 1;
                    }
                    if i == next_item {
                        next_item += seed_item(&mut q, Match::default(), buf[i], 0, seed);
                    }
                    self.bt.skip(buf, i, inside);
                    i += 1;
                }
            }
        }
        unpack(q)
    }

    fn initial_prices(&mut self, block: &[u8], num_main: usize) {
        // Four histograms: runs of one byte value (zeros in binaries) would otherwise chain
        // each count through the last one's store.
        let mut hists = [[0u32; 256]; 4];
        for b4 in block.chunks(4) {
            for (h, &b) in hists.iter_mut().zip(b4) {
                h[usize::from(b)] += 1;
            }
        }
        let mut hist = hists[0];
        for h in &hists[1..] {
            for (t, &c) in hist.iter_mut().zip(h) {
                *t += c;
            }
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

    /// Forward relaxation over the block; leaves the cheapest arrivals in `nodes` and
    /// returns the repeat-offset queue at the end.
    #[inline(never)]
    fn min_cost_path(&mut self, buf: &[u8], start: usize, end: usize, queue: [u32; 3]) -> [u32; 3] {
        let n = end - start;
        let nodes = &mut self.nodes[..=n];
        nodes.fill(Node {
            cost: INFINITE,
            item: 0,
        });
        nodes[0].cost = 0;
        let queues: &mut [u64; QUEUE_RING] = (&mut self.queues[..QUEUE_RING])
            .try_into()
            .unwrap_or_else(|_| unreachable!("the ring has QUEUE_RING entries"));
        queues[0] = pack(queue);
        let main = &self.prices.main;
        let rows = &self.prices.matches[..];
        let block = &buf[..end];
        let cache = &self.cache[..];
        let mut next_entry = 0;
        for i in 0..n {
            let c0 = nodes[i].cost;
            let packed = queues[i % QUEUE_RING];
            let pos = start + i;
            let count = cache[next_entry].len as usize;
            let matches = &cache[next_entry + 1..next_entry + 1 + count];
            next_entry += 1 + count;
            let max_len = (n - i).min(MAX_MATCH);
            if count != 0 && max_len >= MIN_MATCH {
                relax(
                    &mut nodes[i..=i + max_len],
                    block,
                    pos,
                    packed,
                    matches,
                    rows,
                );
            }
            // The literal; then node `i + 1` is final: settle the queue it leaves.
            let byte = u32::from(block[pos]);
            let lit = c0 + main[byte as usize];
            // Literal or match is hard to predict: both outcomes are computed and one is
            // selected.
            let j = i + 1;
            let node = nodes[j];
            let literal = lit <= node.cost;
            nodes[j] = select_unpredictable(
                literal,
                Node {
                    cost: lit,
                    item: 1 | byte << LEN_BITS,
                },
                node,
            );
            let len = (node.item & LEN_MASK) as usize;
            let from = queues[j.wrapping_sub(len) % QUEUE_RING];
            let code = node.item >> LEN_BITS;
            queues[j % QUEUE_RING] = select_unpredictable(
                literal,
                packed,
                select_unpredictable(code >= 3, push(from, code), swap(from, code)),
            );
        }
        unpack(queues[n % QUEUE_RING])
    }

    /// Appends the cheapest path's items (in order) to `items`.
    ///
    /// The walk goes back from the block's end. Each step is stored in the node array
    /// behind the walk, at or after the node just read (never over one still to be read),
    /// so the path ends up in order at the array's end and is copied out in one pass.
    fn collect(&mut self, n: usize, items: &mut Vec<Item>) {
        let nodes = &mut self.nodes[..=n];
        let (mut j, mut k) = (n, n + 1);
        while j > 0 {
            // A run of literals steps back one node at a time: the loads only decide where
            // the run ends (a predicted branch), so the steps do not wait for them.
            while j > 0 && nodes[j].item & LEN_MASK == 1 {
                k -= 1;
                nodes[k].item = nodes[j].item;
                j -= 1;
            }
            if j == 0 {
                break;
            }
            let item = nodes[j].item;
            k -= 1;
            nodes[k].item = item;
            j -= (item & LEN_MASK) as usize;
        }
        items.extend(nodes[k..].iter().map(|node| Item {
            len: node.item & LEN_MASK,
            off: node.item >> LEN_BITS,
        }));
    }
}

/// Appends to `seed` the greedy parse's item at a position: `best` (the longest cached match
/// there, clipped to `room` bytes) if it has 3 bytes or more, coded as a repeat when its
/// offset is in the packed queue `q` (which it then updates), else the literal `byte`.
/// Returns the item's length.
#[inline(always)]
fn seed_item(q: &mut u64, best: Match, byte: u8, room: usize, seed: &mut Vec<Item>) -> usize {
    let len = ((best.len & 0xffff) as usize).min(room);
    if len < 3 {
        seed.push(Item {
            len: 1,
            off: u32::from(byte),
        });
        return 1;
    }
    let off = u64::from(best.off);
    let code = (0..3)
        .find(|&r| *q >> (r * OFFSET_BITS) & OFFSET_MASK as u64 == off)
        .unwrap_or(best.off + 2);
    *q = if code >= 3 {
        push(*q, code)
    } else {
        swap(*q, code)
    };
    seed.push(Item {
        len: len as u32,
        off: code,
    });
    len
}

/// A match sink for the cache: each match's `len` gets its offset slot in bits 16 and
/// up as it is stored (the finder has the offset at hand then).
struct SlotCursor<'a>(Cursor<'a>);

impl SlotCursor<'_> {
    #[inline(always)]
    fn with_slot(m: Match) -> Match {
        Match {
            len: m.len | (offset_slot(m.off) as u32) << 16,
            off: m.off,
        }
    }
}

impl Sink for SlotCursor<'_> {
    #[inline(always)]
    fn push(&mut self, m: Match) {
        self.0.push(Self::with_slot(m));
    }

    #[inline(always)]
    fn push_if(&mut self, m: Match, keep: bool) {
        self.0.push_if(Self::with_slot(m), keep);
    }
}

/// The two bytes at `pos` (the caller guarantees `pos + 2 <= buf.len()`).
#[inline(always)]
fn load_u16(buf: &[u8], pos: usize) -> u16 {
    let b: [u8; 2] = buf[pos..pos + 2].try_into().unwrap_or([0; 2]);
    u16::from_ne_bytes(b)
}

/// Bits per offset in a packed queue (LZX offsets are below 2^21).
const OFFSET_BITS: u32 = 21;
const OFFSET_MASK: usize = (1 << OFFSET_BITS) - 1;

/// A repeat-offset queue in one word, entry 0 lowest.
#[inline(always)]
fn pack(q: [u32; 3]) -> u64 {
    u64::from(q[0]) | u64::from(q[1]) << OFFSET_BITS | u64::from(q[2]) << (2 * OFFSET_BITS)
}

/// Packed queue `q` after an explicit-offset match with offset code `code` (3 or more).
#[inline(always)]
fn push(q: u64, code: u32) -> u64 {
    (q << OFFSET_BITS | u64::from(code.wrapping_sub(2))) & ((1 << (3 * OFFSET_BITS)) - 1)
}

/// Packed queue `q` after a repeat match with offset code `code` (0 to 2): entry `code`
/// swapped with entry 0, without branches. (Any other code gives a meaningless result.)
#[inline(always)]
fn swap(q: u64, code: u32) -> u64 {
    let shift = OFFSET_BITS * code.min(2);
    let x = (q ^ q >> shift) & OFFSET_MASK as u64;
    q ^ x ^ x << shift
}

#[inline(always)]
fn unpack(p: u64) -> [u32; 3] {
    let mask = (1 << OFFSET_BITS) - 1;
    [
        (p & mask) as u32,
        (p >> OFFSET_BITS & mask) as u32,
        (p >> (2 * OFFSET_BITS) & mask) as u32,
    ]
}

/// Relaxes the matches at `pos` (`targets[0]` is its node; `targets.len() - 1` is the
/// longest length allowed, at least 2): the repeat offsets of queue `packed`, then the
/// cached `matches`, each length from its first source only. Out of line: half the
/// positions have no matches, and their loop stays small.
#[inline(never)]
fn relax(
    targets: &mut [Node],
    hist: &[u8],
    pos: usize,
    packed: u64,
    matches: &[Match],
    rows: &[[u32; NUM_LENS]],
) {
    let max_len = targets.len() - 1;
    let c0 = targets[0].cost;
    let here = load_u16(hist, pos);
    // The next length to offer.
    let mut next = MIN_MATCH;
    for r in 0..3 {
        let off = (packed >> (r * OFFSET_BITS)) as usize & OFFSET_MASK;
        if off <= pos && load_u16(hist, pos - off) == here {
            let len = match_len(hist, pos - off, pos, 2, max_len);
            if len >= next {
                offer(targets, next, len, c0, &rows[r as usize], r);
                next = len + 1;
            }
        }
    }
    for m in matches {
        let len = ((m.len & 0xffff) as usize).min(max_len);
        if len >= next {
            let row = &rows[(m.len >> 16) as usize];
            offer(targets, next, len, c0, row, m.off + 2);
            next = len + 1;
        }
    }
}

/// Offers a match with offset code `code` of every length `lo..=hi` (`lo >= 2`) from
/// `targets[0]` (cost `base`) to `targets[len]`, priced by `row`.
#[inline(always)]
fn offer(targets: &mut [Node], lo: usize, hi: usize, base: u32, row: &[u32; NUM_LENS], code: u32) {
    let prices = &row[lo - MIN_MATCH..=hi - MIN_MATCH];
    for ((node, &p), len) in targets[lo..=hi].iter_mut().zip(prices).zip(lo as u32..) {
        let offered = Node {
            cost: base + p,
            item: len | code << LEN_BITS,
        };
        *node = core::hint::select_unpredictable(offered.cost < node.cost, offered, *node);
    }
}

/// Prices from code lengths; unused symbols get a length a little over the longest used.
fn set_prices(prices: &mut [u32], lens: &[u8], scale: u32) {
    let unused = u32::from(lens.iter().copied().max().unwrap_or(0)).max(8) + 2;
    for (p, &l) in prices.iter_mut().zip(lens) {
        *p = scale * if l == 0 { unused } else { u32::from(l) };
    }
}

#[cfg(test)]
mod tests {
    use super::super::bt::Small;
    use super::super::hc16::tests::input;
    use super::*;

    /// Replays `items` from repeat-offset state `queue` into the bytes they stand for.
    fn replay(items: &[Item], queue: [u32; 3]) -> Vec<u8> {
        let (mut q, mut out) = (queue, Vec::new());
        for it in items {
            if it.len == 1 {
                out.push(it.off as u8);
                continue;
            }
            let off = if it.off < 3 {
                q.swap(0, it.off as usize);
                q[0]
            } else {
                q = [it.off - 2, q[0], q[1]];
                it.off - 2
            } as usize;
            assert!(
                off >= 1 && off <= out.len(),
                "offset {off} at {}",
                out.len()
            );
            for _ in 0..it.len {
                out.push(out[out.len() - off]);
            }
        }
        out
    }

    /// The greedy seed is a parse of the block: replayed, its items give the block back,
    /// with matches (repeat offsets among them) where the block repeats itself. Blocks
    /// after the first start inside the buffer, with the queue the previous block left.
    #[test]
    fn greedy_seed_parses_the_block() {
        for (len, seed, nice) in [
            (32 << 10, 1, 48),
            (32 << 10, 5, 257),
            (5000, 3, 3),
            (7, 2, 48),
        ] {
            let data = input(len, seed);
            let mut opt = Optimal::<Small>::new(32 << 10, 1).unwrap();
            opt.reset();
            let search = Search {
                depth: 24,
                nice,
                max_offset: (1 << 15) - 3,
            };
            let cut = len / 3;
            let mut queue = [1u32; 3];
            let mut before: Vec<Item> = Vec::new();
            let (mut matches, mut repeats) = (0, 0);
            for (start, end) in [(0, cut), (cut, len)] {
                let mut items = Vec::new();
                let seed_queue = opt.find_matches(&data, start, end, search, queue, &mut items);
                assert_eq!(
                    items.iter().map(|it| it.len as usize).sum::<usize>(),
                    end - start,
                    "{len} bytes, seed {seed}: the items cover the block"
                );
                matches += items.iter().filter(|it| it.len > 1).count();
                repeats += items.iter().filter(|it| it.len > 1 && it.off < 3).count();
                before.extend_from_slice(&items);
                let back = replay(&before, [1; 3]);
                assert_eq!(back, data[..end], "{len} bytes, seed {seed}");
                // The queue the next block starts from: the one after these items.
                let mut q = pack(queue);
                for it in items.iter().filter(|it| it.len > 1) {
                    q = if it.off >= 3 {
                        push(q, it.off)
                    } else {
                        swap(q, it.off)
                    };
                }
                queue = unpack(q);
                assert_eq!(
                    seed_queue, queue,
                    "{len} bytes, seed {seed}: the seed's queue"
                );
            }
            assert!(
                len < 1000 || matches > len / 200,
                "{len}: {matches} matches"
            );
            assert!(len < 1000 || repeats > 0, "{len}: no repeat offset");
        }
    }

    /// Random bytes: the greedy seed finds almost nothing and its code costs more than the
    /// bytes, so the block keeps the seed (no optimization pass). Compressible bytes, and
    /// random bytes with more than 1/32 of them repeated, get the near-optimal parse.
    #[test]
    fn incompressible_blocks_keep_the_seed() {
        let len = 32 << 10;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        // Random, then two 1 KiB pieces of it repeated: 6% of the block in matches.
        let mut repeated = random[..len - 2048].to_vec();
        repeated.extend_from_slice(&random[1000..2024]);
        repeated.extend_from_slice(&random[9000..10024]);
        let search = Search {
            depth: 24,
            nice: 48,
            max_offset: (1 << 15) - 3,
        };
        let num_main = NUM_CHARS + 8 * super::super::super::lzx::num_offset_slots(15);
        for (data, keeps_seed) in [(random, true), (input(len, 3), false), (repeated, false)] {
            let mut seed = Vec::new();
            let mut opt = Optimal::<Small>::new(len, 1).unwrap();
            opt.reset();
            let seed_queue = opt.find_matches(&data, 0, len, search, [1; 3], &mut seed);
            let mut coder = BlockCoder::new(num_main, false);
            coder.lens_for(&seed);
            assert_eq!(coder.incompressible(&seed, len), keeps_seed);
            let mut items = Vec::new();
            opt.reset();
            let queue = opt.parse(&data, 0, len, search, [1; 3], &mut coder, &mut items);
            assert_eq!(replay(&items, [1; 3]), data);
            let same = items.len() == seed.len()
                && items
                    .iter()
                    .zip(&seed)
                    .all(|(a, b)| (a.len, a.off) == (b.len, b.off));
            assert_eq!(same, keeps_seed, "keeps the seed: {keeps_seed}");
            if keeps_seed {
                assert_eq!(queue, seed_queue);
            }
        }
    }
}
