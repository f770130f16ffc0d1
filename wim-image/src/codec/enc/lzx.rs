//! The LZX (WIM variant) compressor.
//!
//! A chunk is first E8-translated (call operands turned into absolute targets, as the
//! decoder will undo), then parsed, then written as blocks of at most 64 KiB. Parsers by
//! level, as wimlib's: lazy over hash chains up to 34 (with the three repeat offsets
//! tried at each step), near-optimal above (see [`super::lzx_opt`]). The window, and with
//! it the number of offset slots and the block-size field width, comes from the maximum
//! chunk size, exactly as the decoder derives it from the resource's chunk size.

use super::super::alloc::{boxed::Box, vec, vec::Vec};
use super::super::lzx::{e8_translate, num_offset_slots, MIN_WINDOW_ORDER, NUM_CHARS};
use super::bitout::WordWriter;
use super::bt::{Large, Small, SMALL_WINDOW};
use super::hc16::WINDOW;
use super::lzx_block::BlockCoder;
use super::lzx_lazy::SmallLazy;
use super::lzx_opt::Optimal;
use super::mf::{match_len, ChainFinder, HashChains, Search};
use super::{heap, Item, Level};
use crate::mem::AllocError;

pub(crate) const MIN_MATCH: usize = 2;
pub(crate) const MAX_MATCH: usize = 257;
/// Bytes per block (the near-optimal parser's segment).
pub(crate) const BLOCK_SIZE: usize = 1 << 16;
/// wimlib's boundary between the lazy and the near-optimal parser.
const MAX_LAZY_LEVEL: u32 = 34;

enum Parser {
    /// 16-bit chains for chunks of at most 64 KiB.
    LazySmall(SmallLazy),
    Lazy(HashChains),
    /// 16-bit binary trees for chunks of at most 64 KiB.
    NearOptimalSmall(Box<Optimal<Small>>),
    NearOptimal(Box<Optimal<Large>>),
}

/// Items of one block (room for a block of literals and one more).
fn items_len(max_chunk: usize) -> usize {
    max_chunk.min(BLOCK_SIZE) + 1
}

/// LZX compression state for chunks up to a fixed size.
pub(crate) struct LzxEncoder {
    parser: Parser,
    search: Search,
    /// The E8-translated chunk.
    buf: Vec<u8>,
    items: Vec<Item>,
    coder: Box<BlockCoder>,
}

impl LzxEncoder {
    /// The heap bytes [`new`](Self::new) allocates (the encoder itself not counted): the
    /// E8-translated copy of the chunk and one block's items, then the lazy parser's hash
    /// chains (fixed up to 64 KiB, then 12 bytes per byte of chunk) or the near-optimal
    /// parser's trees (fixed up to 64 KiB, then 16 per byte) and one block's state.
    pub(crate) fn heap_bytes(level: Level, max_chunk: usize) -> u64 {
        let parser = if level.0 <= MAX_LAZY_LEVEL {
            if max_chunk <= WINDOW {
                SmallLazy::heap_bytes()
            } else {
                HashChains::heap_bytes(max_chunk)
            }
        } else if max_chunk <= SMALL_WINDOW {
            heap::<Optimal<Small>>(1) + Optimal::<Small>::heap_bytes(max_chunk)
        } else {
            heap::<Optimal<Large>>(1) + Optimal::<Large>::heap_bytes(max_chunk)
        };
        parser + heap::<u8>(max_chunk) + heap::<Item>(items_len(max_chunk)) + heap::<BlockCoder>(1)
    }

    pub(crate) fn new(level: Level, max_chunk: usize) -> Result<Self, AllocError> {
        let order = max_chunk
            .next_power_of_two()
            .trailing_zeros()
            .max(MIN_WINDOW_ORDER);
        let num_main = NUM_CHARS + 8 * num_offset_slots(order);
        let l = level.0;
        let (parser, depth, nice) = if l <= MAX_LAZY_LEVEL {
            let p = if max_chunk <= WINDOW {
                Parser::LazySmall(SmallLazy::new(max_chunk))
            } else {
                Parser::Lazy(HashChains::new(max_chunk))
            };
            (p, (60 * l / 20).max(2), 80 * l as usize / 20)
        } else {
            // One pass from the greedy seed below 70 (wimlib makes two from level 45, the
            // first from a guess): see `lzx_opt`.
            let passes = 1 + u32::from(l >= 70) + u32::from(l >= 150);
            let p = if max_chunk <= SMALL_WINDOW {
                Parser::NearOptimalSmall(Box::new(Optimal::new(max_chunk, passes)?))
            } else {
                Parser::NearOptimal(Box::new(Optimal::new(max_chunk, passes)?))
            };
            (p, (24 * l / 50).max(1), 48 * l as usize / 50)
        };
        Ok(LzxEncoder {
            parser,
            search: Search {
                depth,
                nice: nice.clamp(3, MAX_MATCH),
                max_offset: (1 << order) - 3,
            },
            buf: vec![0; max_chunk],
            items: Vec::with_capacity(items_len(max_chunk)),
            coder: Box::new(BlockCoder::new(num_main, order >= 16)),
        })
    }

    /// Compresses `data` into `out`; `None` if it does not fit.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = data.len();
        let buf = &mut self.buf[..n];
        buf.copy_from_slice(data);
        e8_translate(buf);
        let buf = &self.buf[..n];
        self.coder.start_chunk();
        let mut w = WordWriter::new(out);
        let mut queue = [1u32; 3];
        match &mut self.parser {
            Parser::LazySmall(_) => {}
            Parser::Lazy(hc) => hc.reset(buf),
            Parser::NearOptimalSmall(opt) => opt.reset(),
            Parser::NearOptimal(opt) => opt.reset(),
        }
        let search = self.search;
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK_SIZE).min(n);
            let items = &mut self.items;
            items.clear();
            match &mut self.parser {
                Parser::LazySmall(p) => {
                    // A chunk of at most 64 KiB is one block.
                    debug_assert!(start == 0 && end == n);
                    p.parse(buf, search, &mut queue, items);
                }
                Parser::Lazy(hc) => {
                    let mut f = OverChunk { hc, buf };
                    parse_lazy(&mut f, start, end, search, &mut queue, items);
                }
                Parser::NearOptimalSmall(opt) => {
                    queue = opt.parse(buf, start, end, search, queue, &mut self.coder, items);
                }
                Parser::NearOptimal(opt) => {
                    queue = opt.parse(buf, start, end, search, queue, &mut self.coder, items);
                }
            }
            self.coder
                .write_block(&mut w, items, &buf[start..end], queue);
            start = end;
        }
        w.finish()
    }
}

/// A match's score for the lazy parser's choices: its length, plus 1 for an offset below
/// 4,094 and 1 more below 254 (the formatted offset, plus 2, below 4,096 and 256), as
/// wimlib's lazy LZX parser scores them; a repeat-offset match scores its length plus 3.
#[inline(always)]
fn explicit_score(len: usize, off: usize) -> usize {
    len + usize::from(off + 2 < 4096) + usize::from(off + 2 < 256)
}

/// The longest repeat-offset match of 3 or more bytes at `pos` (`buf[pos..]` has at least
/// `max_len` bytes, at least 3): (length, index), length 0 if none; the most recent offset
/// wins ties.
#[inline(always)]
fn best_rep(buf: &[u8], pos: usize, max_len: usize, queue: &[u32; 3]) -> (usize, usize) {
    let mut best = (0, 0);
    if max_len < 3 {
        return best;
    }
    for (r, &off) in queue.iter().enumerate() {
        let off = off as usize;
        if off > pos || buf[pos - off..pos - off + 3] != buf[pos..pos + 3] {
            continue;
        }
        let l = match_len(buf, pos - off, pos, 3, max_len);
        if l > best.0 {
            best = (l, r);
        }
    }
    best
}

/// Where the lazy parser gets its matches: positions are visited in order, each once, by
/// [`find`](Self::find) or [`skip`](Self::skip).
pub(super) trait LazyFinder {
    /// Inserts `pos` and returns the longest match there longer than `best_len` (at
    /// least 3 bytes, at most `max_len`) as (length, offset), length 0 if none.
    fn find(&mut self, pos: usize, best_len: usize, max_len: usize, s: Search) -> (usize, usize);
    /// Inserts `from..to` without searching.
    fn skip(&mut self, from: usize, to: usize);
    /// The chunk.
    fn chunk(&self) -> &[u8];
}

/// A generic chain finder over a chunk as a [`LazyFinder`].
pub(super) struct OverChunk<'a, F> {
    pub(super) hc: &'a mut F,
    pub(super) buf: &'a [u8],
}

impl<F: ChainFinder> LazyFinder for OverChunk<'_, F> {
    #[inline(always)]
    fn find(&mut self, pos: usize, best_len: usize, max_len: usize, s: Search) -> (usize, usize) {
        let (nice, depth, far) = (s.nice, s.depth, s.max_offset);
        self.hc
            .find(self.buf, pos, best_len, max_len, nice, depth, far)
    }

    #[inline(always)]
    fn skip(&mut self, from: usize, to: usize) {
        self.hc.skip(self.buf, from, to);
    }

    #[inline(always)]
    fn chunk(&self) -> &[u8] {
        self.buf
    }
}

/// Lazy parsing of positions `start..end` into `items` (matches stop at `end`), with
/// wimlib's decisions: a 3-byte match from 8,190 or more back that is no repeat offset is
/// not worth taking; a match at the most recent offset is taken at once; a repeat-offset
/// match scoring at least the explicit one replaces it; otherwise the next position is
/// searched (at half the depth) for a longer match, and a better one there makes the
/// current byte a literal.
pub(super) fn parse_lazy<L: LazyFinder>(
    f: &mut L,
    start: usize,
    end: usize,
    search: Search,
    queue: &mut [u32; 3],
    items: &mut Vec<Item>,
) {
    let half = Search {
        depth: search.depth / 2,
        ..search
    };
    let mut i = start;
    while i < end {
        let max_len = (end - i).min(MAX_MATCH);
        let (len, off) = f.find(i, 2, max_len, search);
        let far3 = len == 3 && off + 2 >= 8192 && !queue.iter().any(|&q| q as usize == off);
        if len < 3 || far3 {
            items.push(Item::literal(f.chunk()[i]));
            i += 1;
            continue;
        }
        // The match to take at `i`: length, offset code and (as an explicit match) score.
        let (mut len, mut code, mut score) = (len, off as u32 + 2, explicit_score(len, off));
        let mut taken = off == queue[0] as usize;
        if taken {
            code = 0;
        } else {
            let (rl, ri) = best_rep(f.chunk(), i, max_len, queue);
            if rl != 0 && rl + 3 >= score {
                (len, code, taken) = (rl, ri as u32, true);
            }
        }
        // The first position after `i` not yet in the chains.
        let mut inserted = i + 1;
        while !taken && len < search.nice.min(end - i) {
            let next_max = (end - i - 1).min(MAX_MATCH);
            let (l2, o2) = f.find(i + 1, len - 2, next_max, half);
            inserted = i + 2;
            if l2 <= len - 2 {
                break;
            }
            let s2 = explicit_score(l2, o2);
            let (rl, ri) = best_rep(f.chunk(), i + 1, next_max, queue);
            if rl != 0 && rl + 3 >= s2 {
                if rl + 3 > score {
                    items.push(Item::literal(f.chunk()[i]));
                    i += 1;
                    (len, code) = (rl, ri as u32);
                }
                break;
            }
            if s2 <= score {
                break;
            }
            items.push(Item::literal(f.chunk()[i]));
            i += 1;
            (len, code, score) = (l2, o2 as u32 + 2, s2);
        }
        items.push(Item {
            len: len as u32,
            off: code,
        });
        update_queue(queue, code);
        f.skip(inserted, i + len);
        i += len;
    }
}

/// The repeat-offset queue after a match with offset code `code`.
#[inline(always)]
pub(crate) fn update_queue(queue: &mut [u32; 3], code: u32) {
    if code < 3 {
        queue.swap(0, code as usize);
    } else {
        *queue = [code - 2, queue[0], queue[1]];
    }
}
