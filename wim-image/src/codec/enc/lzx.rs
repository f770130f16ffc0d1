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
use super::{Item, Level};

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
    pub(crate) fn new(level: Level, max_chunk: usize) -> Self {
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
            let passes = 1 + u32::from(l >= 45) + u32::from(l >= 70) + u32::from(l >= 100);
            let p = if max_chunk <= SMALL_WINDOW {
                Parser::NearOptimalSmall(Box::new(Optimal::new(max_chunk, passes)))
            } else {
                Parser::NearOptimal(Box::new(Optimal::new(max_chunk, passes)))
            };
            (p, (24 * l / 50).max(1), 48 * l as usize / 50)
        };
        LzxEncoder {
            parser,
            search: Search {
                depth,
                nice: nice.clamp(3, MAX_MATCH),
                max_offset: (1 << order) - 3,
            },
            buf: vec![0; max_chunk],
            items: Vec::with_capacity(max_chunk.min(BLOCK_SIZE) + 1),
            coder: Box::new(BlockCoder::new(num_main, order >= 16)),
        }
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

/// Rough bits a match saves over literals, for the lazy parser's choices.
#[inline(always)]
fn score(len: usize, off: usize, rep: bool) -> i32 {
    let cost = if rep {
        9
    } else {
        10 + (usize::BITS - off.leading_zeros()) as i32
    };
    7 * len as i32 - cost
}

/// The longest repeat-offset match at `pos`: (length, index), length 0 if none.
#[inline(always)]
fn best_rep(buf: &[u8], pos: usize, max_len: usize, queue: &[u32; 3]) -> (usize, usize) {
    let mut best = (0, 0);
    for (r, &off) in queue.iter().enumerate() {
        let off = off as usize;
        if off > pos {
            continue;
        }
        let l = match_len(buf, pos - off, pos, 0, max_len);
        if l > best.0 {
            best = (l, r);
        }
    }
    best
}

/// The lazy parser's choice at `pos` between the chains' match `(el, eo)` (length
/// below 3: none) and the repeat offsets, as (score, length, offset code) where the code
/// is the repeat index or the offset plus 2; length 0 if no match is worth taking.
/// `buf[pos..]` has at least `max_len` bytes.
#[inline(always)]
pub(super) fn choose(
    buf: &[u8],
    pos: usize,
    max_len: usize,
    (el, eo): (usize, usize),
    queue: &[u32; 3],
) -> Choice {
    // All three repeat offsets where the chains found a match; else only the most recent
    // (for a 2-byte match), as a first two-byte compare.
    let (rl, ri) = if el >= 3 {
        best_rep(buf, pos, max_len, queue)
    } else {
        let off = queue[0] as usize;
        if max_len >= MIN_MATCH && off <= pos && buf[pos - off..pos - off + 2] == buf[pos..pos + 2]
        {
            (match_len(buf, pos - off, pos, 2, max_len), 0)
        } else {
            (0, 0)
        }
    };
    let mut best = (0, 0, 0);
    if rl >= MIN_MATCH {
        best = (score(rl, 0, true), rl, ri as u32);
    }
    if el >= 3 {
        let rep = queue.iter().position(|&q| q as usize == eo);
        let s = score(el, eo, rep.is_some());
        if s > best.0 {
            best = (s, el, rep.map_or(eo as u32 + 2, |r| r as u32));
        }
    }
    if best.0 <= 0 {
        (0, 0, 0)
    } else {
        best
    }
}

/// A lazy-parser choice: (score, length, offset code), length 0 for none (see [`choose`]).
pub(super) type Choice = (i32, usize, u32);

/// Where the lazy parser gets its matches: positions are visited in order, each once, by
/// [`best`](Self::best) or [`skip`](Self::skip).
pub(super) trait LazyFinder {
    /// The best match at `pos` (before `end`, the block's end), as [`choose`] gives it.
    fn best(&mut self, pos: usize, end: usize, search: Search, queue: &[u32; 3]) -> Choice;
    /// Inserts `from..to` without searching.
    fn skip(&mut self, from: usize, to: usize);
    /// The byte at `pos`.
    fn byte(&self, pos: usize) -> u8;
}

/// A generic chain finder over a chunk as a [`LazyFinder`].
pub(super) struct OverChunk<'a, F> {
    pub(super) hc: &'a mut F,
    pub(super) buf: &'a [u8],
}

impl<F: ChainFinder> LazyFinder for OverChunk<'_, F> {
    #[inline(always)]
    fn best(&mut self, pos: usize, end: usize, search: Search, queue: &[u32; 3]) -> Choice {
        let max_len = (end - pos).min(MAX_MATCH);
        // The chains cover the whole chunk, so a match may look past the block end; cap it.
        let (el, eo) = self.hc.find(
            self.buf,
            pos,
            2,
            MAX_MATCH,
            search.nice,
            search.depth,
            search.max_offset,
        );
        choose(self.buf, pos, max_len, (el.min(max_len), eo), queue)
    }

    #[inline(always)]
    fn skip(&mut self, from: usize, to: usize) {
        self.hc.skip(self.buf, from, to);
    }

    #[inline(always)]
    fn byte(&self, pos: usize) -> u8 {
        self.buf[pos]
    }
}

/// Lazy parsing of positions `start..end` into `items` (matches stop at `end`).
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
        let (mut s, mut len, mut code) = f.best(i, end, search, queue);
        if len == 0 {
            items.push(Item::literal(f.byte(i)));
            i += 1;
            continue;
        }
        let mut inserted = i + 1;
        while len < search.nice && i + 1 < end {
            let (s2, l2, c2) = f.best(i + 1, end, half, queue);
            inserted = i + 2;
            if s2 > s {
                items.push(Item::literal(f.byte(i)));
                i += 1;
                (s, len, code) = (s2, l2, c2);
            } else {
                break;
            }
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
