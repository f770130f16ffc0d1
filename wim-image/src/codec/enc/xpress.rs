//! The XPRESS (Huffman) compressor.
//!
//! Three parsers, chosen by level as wimlib does: greedy below 30, lazy from 30 to 59 (both
//! over hash chains), and from 60 a near-optimal parser: binary-tree match finding into a
//! match cache, then a minimum-cost path over the chunk (backwards, as XPRESS has no
//! repeat offsets) priced with the previous pass's Huffman code lengths. The chosen
//! literals and matches get one Huffman code (plus the end-of-data symbol 256 that
//! Microsoft's decoder wants), written as the 256-byte length table and the bitstream.

use super::super::alloc::{boxed::Box, vec, vec::Vec};
use super::bitout::{XpressScratch, XpressWriter, XPRESS_SCRATCH};
use super::bt::{BinaryTrees, Probe, Small};
use super::huffman::make_code;
use super::mf::Match;
use super::{heap, Level};
use crate::mem::AllocError;
use hc::HashParser;

pub(super) mod hc;

const NUM_SYMS: usize = 512;
const MAX_CODEWORD_LEN: u32 = 15;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 65538;
const MAX_OFFSET: usize = 65535;
/// Match-cache entries reserved per position before a chunk stops caching matches.
const CACHE_PER_POS: usize = 8;
const END_OF_DATA: usize = 256;

enum Parser {
    /// Greedy or lazy, over hash chains.
    Hash(HashParser),
    NearOptimal(NearOptimal),
}

struct NearOptimal {
    bt: BinaryTrees<Small>,
    passes: u32,
    /// Matches of every position, flat; `starts[i]..starts[i + 1]` are position `i`'s.
    cache: Vec<Match>,
    starts: Vec<u32>,
    /// Cost (1/16 bits) from each position to the end, and the step taken there
    /// (length, 1 = literal; offset).
    cost: Vec<u32>,
    step: Vec<Match>,
}

/// XPRESS compression state for chunks up to a fixed size.
pub(crate) struct XpressEncoder {
    parser: Parser,
    depth: u32,
    nice: usize,
    /// The chosen literals and matches, as [`literal`] and [`matched`] pack them.
    items: Vec<u64>,
    freqs: [u32; NUM_SYMS],
    lens: [u8; NUM_SYMS],
    codes: [u32; NUM_SYMS],
    /// The writer's output, copied to the caller's buffer when it fits.
    scratch: Box<XpressScratch>,
}

/// The first level parsed near-optimally (below: greedily under 30, lazily from 30).
const NEAR_OPTIMAL_LEVEL: u32 = 60;

/// Match-cache entries for chunks of at most `max_chunk` bytes.
fn cache_len(max_chunk: usize) -> usize {
    max_chunk.saturating_mul(CACHE_PER_POS) + MAX_MATCH.min(300)
}

impl XpressEncoder {
    /// The heap bytes [`new`](Self::new) allocates (the encoder itself not counted): 8 per
    /// byte of chunk (the items) and fixed tables for the hash parsers, 88 per byte (the
    /// match cache, the nodes and the items) and fixed trees for the near-optimal one.
    pub(crate) fn heap_bytes(level: Level, max_chunk: usize) -> u64 {
        let n = max_chunk.saturating_add(1);
        let parser = if level.0 < NEAR_OPTIMAL_LEVEL {
            HashParser::heap_bytes()
        } else {
            BinaryTrees::<Small>::heap_bytes(max_chunk, false)
                + heap::<Match>(cache_len(max_chunk))
                + 2 * heap::<u32>(n)
                + heap::<Match>(n)
        };
        parser + heap::<u64>(n) + heap::<XpressScratch>(1)
    }

    pub(crate) fn new(level: Level, max_chunk: usize) -> Result<Self, AllocError> {
        let l = level.0;
        let (parser, depth, nice) = if l < 30 {
            let p = Parser::Hash(HashParser::new(max_chunk, false));
            (p, l * 30 / 16, l as usize * 60 / 16)
        } else if l < NEAR_OPTIMAL_LEVEL {
            let p = Parser::Hash(HashParser::new(max_chunk, true));
            (p, (l * 30 / 32).max(2), l as usize * 60 / 32)
        } else {
            let p = Parser::NearOptimal(NearOptimal {
                bt: BinaryTrees::new(max_chunk, false)?,
                passes: (l / 40).max(1),
                cache: Vec::with_capacity(cache_len(max_chunk)),
                starts: vec![0; max_chunk + 1],
                cost: vec![0; max_chunk + 1],
                step: vec![Match::default(); max_chunk + 1],
            });
            (p, l * 28 / 100, l as usize * 56 / 100)
        };
        Ok(XpressEncoder {
            parser,
            depth: depth.max(1),
            nice: nice.max(MIN_MATCH),
            items: vec![0; max_chunk + 1],
            freqs: [0; NUM_SYMS],
            lens: [0; NUM_SYMS],
            codes: [0; NUM_SYMS],
            scratch: vec![0u8; XPRESS_SCRATCH + 2]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("the vector has the scratch's size")),
        })
    }

    /// Compresses `data` into `out`; `None` if it does not fit.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut [u8]) -> Option<usize> {
        self.freqs.fill(0);
        let (depth, nice) = (self.depth, self.nice);
        let (items, freqs) = (self.items.get_mut(..=data.len())?, &mut self.freqs);
        let count = match &mut self.parser {
            Parser::Hash(hp) => hp.parse(data, depth, nice, items, freqs),
            Parser::NearOptimal(no) => no.parse(data, depth, nice, items, freqs),
        };
        self.freqs[END_OF_DATA] += 1;
        make_code(
            &self.freqs,
            MAX_CODEWORD_LEN,
            &mut self.lens,
            &mut self.codes,
        );
        self.write(out, count)
    }

    /// Writes the code lengths and the first `count` items.
    fn write(&mut self, out: &mut [u8], count: usize) -> Option<usize> {
        let scratch = &mut *self.scratch;
        for (b, pair) in scratch.iter_mut().zip(self.lens.chunks_exact(2)) {
            *b = pair[0] | (pair[1] << 4);
        }
        let mut w = XpressWriter::new(scratch, NUM_SYMS / 2);
        let (codes, lens) = (&self.codes, &self.lens);
        for &it in self.items.get(..count)? {
            let sym = (it & 0x1ff) as usize;
            w.bits(codes[sym], u32::from(lens[sym]));
            if sym > 0xff {
                let adj = (it >> 9) as u32 & 0xffff;
                if adj >= 15 {
                    if adj - 15 < 255 {
                        w.byte((adj - 15) as u8);
                    } else {
                        w.byte(255);
                        w.u16(adj as u16);
                    }
                }
                w.bits((it >> 29) as u32, (it >> 25) as u32 & 15);
            }
        }
        w.bits(codes[END_OF_DATA], u32::from(lens[END_OF_DATA]));
        let size = w.finish(out.len().min(XPRESS_SCRATCH))?;
        out.get_mut(..size)?
            .copy_from_slice(self.scratch.get(..size)?);
        Some(size)
    }
}

/// A literal as an item: its symbol, the byte.
#[inline(always)]
fn literal(b: u8) -> u64 {
    u64::from(b)
}

/// A match (`len` 3 to [`MAX_MATCH`], `off` 1 to [`MAX_OFFSET`]) as an item: its symbol
/// (bits 0-8), the length minus 3 (bits 9-24), `log2(off)` (bits 25-28) and the offset's
/// low bits below its top bit (from bit 29), all the writer needs.
#[inline(always)]
fn matched(len: usize, off: u32) -> u64 {
    let log2 = 31 - off.leading_zeros();
    let adj = (len - MIN_MATCH) as u64;
    match_symbol(len, off) as u64
        | (adj << 9)
        | (u64::from(log2) << 25)
        | (u64::from(off - (1 << log2)) << 29)
}

#[inline(always)]
fn match_symbol(len: usize, off: u32) -> usize {
    let log2 = (31 - off.leading_zeros()) as usize;
    256 + (log2 << 4) + (len - MIN_MATCH).min(15)
}

impl NearOptimal {
    /// Parses `data` into `items` (one more than its length), counting the symbols into
    /// `freqs`; returns the number of items.
    fn parse(
        &mut self,
        data: &[u8],
        depth: u32,
        nice: usize,
        items: &mut [u64],
        freqs_out: &mut [u32; NUM_SYMS],
    ) -> usize {
        let n = data.len();
        self.find_matches(data, depth, nice);
        // Initial prices: literals from the chunk's byte histogram, matches a flat guess.
        let mut lit = [0u32; 256];
        let mut hist = [0u32; 256];
        for &b in data {
            hist[usize::from(b)] += 1;
        }
        for (c, &h) in lit.iter_mut().zip(&hist) {
            *c = log2_16(n as u32 + 1)
                .saturating_sub(log2_16(h + 1))
                .clamp(16, 15 * 16);
        }
        let mut msym = [[0u32; 16]; 16];
        for (log2, row) in msym.iter_mut().enumerate() {
            for (h, c) in row.iter_mut().enumerate() {
                *c = (9 + log2 as u32 / 2 + h as u32 / 4) * 16;
            }
        }
        let mut freqs = [0u32; NUM_SYMS];
        let mut lens = [0u8; NUM_SYMS];
        let mut codes = [0u32; NUM_SYMS];
        for pass in 0..self.passes {
            if pass > 0 {
                // Re-price with the code the previous pass would get.
                freqs.fill(0);
                let mut i = 0;
                while i < n {
                    let s = self.step[i];
                    freqs[if s.len == 1 {
                        usize::from(data[i])
                    } else {
                        match_symbol(s.len as usize, s.off)
                    }] += 1;
                    i += s.len as usize;
                }
                freqs[END_OF_DATA] += 1;
                make_code(&freqs, MAX_CODEWORD_LEN, &mut lens, &mut codes);
                let price = |l: u8| if l == 0 { 13 * 16 } else { u32::from(l) * 16 };
                for (c, &l) in lit.iter_mut().zip(&lens[..256]) {
                    *c = price(l);
                }
                for (k, &l) in lens[256..].iter().enumerate() {
                    msym[k >> 4][k & 15] = price(l);
                }
            }
            self.min_cost_path(data, &lit, &msym);
        }
        let (mut i, mut k) = (0, 0);
        while i < n {
            let s = self.step[i];
            let it = if s.len == 1 {
                literal(data[i])
            } else {
                matched(s.len as usize, s.off)
            };
            freqs_out[(it & 0x1ff) as usize] += 1;
            items[k] = it;
            k += 1;
            i += s.len as usize;
        }
        k
    }

    /// Fills the match cache for every position of `data`.
    fn find_matches(&mut self, data: &[u8], depth: u32, nice: usize) {
        let n = data.len();
        self.bt.reset();
        self.cache.clear();
        let limit = self.cache.capacity() - nice.min(n) - 2;
        let probe = Probe {
            max_len: MAX_MATCH,
            nice_len: nice,
            depth,
            max_offset: MAX_OFFSET,
            min3: true,
        };
        let inside = Probe {
            max_len: nice,
            ..probe
        };
        let mut i = 0;
        while i < n {
            self.starts[i] = self.cache.len() as u32;
            let longest = if self.cache.len() < limit {
                self.bt.matches(data, i, probe, &mut self.cache)
            } else {
                self.bt.skip(data, i, probe)
            };
            i += 1;
            if longest >= nice {
                // A long match: don't search inside it (its positions get no matches).
                let end = (i - 1 + longest).min(n);
                while i < end {
                    self.starts[i] = self.cache.len() as u32;
                    self.bt.skip(data, i, inside);
                    i += 1;
                }
            }
        }
        self.starts[n] = self.cache.len() as u32;
    }

    /// The cheapest way from each position to the end, back to front.
    fn min_cost_path(&mut self, data: &[u8], lit: &[u32; 256], msym: &[[u32; 16]; 16]) {
        let n = data.len();
        self.cost[n] = 0;
        for i in (0..n).rev() {
            let mut best = lit[usize::from(data[i])] + self.cost[i + 1];
            let mut step = Match { len: 1, off: 0 };
            let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
            let mut len = MIN_MATCH;
            for m in &self.cache[s..e] {
                let log2 = 31 - m.off.leading_zeros();
                let row = &msym[log2 as usize];
                let fixed = log2 * 16;
                let end = m.len as usize;
                while len <= end {
                    let adj = len - MIN_MATCH;
                    let extra = if adj < 15 {
                        0
                    } else if adj < 270 {
                        8 * 16
                    } else {
                        24 * 16
                    };
                    let c = row[adj.min(15)] + fixed + extra + self.cost[i + len];
                    if c < best {
                        best = c;
                        step = Match {
                            len: len as u32,
                            off: m.off,
                        };
                    }
                    len += 1;
                }
            }
            self.cost[i] = best;
            self.step[i] = step;
        }
    }
}

/// log2(x) in 1/16 bits (integer part exact, fraction linear).
pub(crate) fn log2_16(x: u32) -> u32 {
    if x == 0 {
        return 0;
    }
    let ip = 31 - x.leading_zeros();
    let frac = if ip >= 4 {
        (x >> (ip - 4)) & 15
    } else {
        (x << (4 - ip)) & 15
    };
    ip * 16 + frac
}
