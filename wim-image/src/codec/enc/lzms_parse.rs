//! LZMS parsing: lazy matching over hash chains, with the repeat offsets the decoder's
//! queue offers at each step, coded item by item through [`ItemCoder`] (so every choice
//! sees the exact repeat-offset state it will be coded in).

use super::super::alloc::{boxed::Box, vec, vec::Vec};
use super::super::lzms::x86::TargetTable;
use super::lzms::{ItemCoder, Streams};
use super::mf::{match_len, HashChains};
use super::Level;

/// LZMS compression state for chunks up to a fixed size.
pub(crate) struct LzmsEncoder {
    buf: Vec<u8>,
    x86: Box<TargetTable>,
    hc: HashChains,
    coder: Box<ItemCoder>,
    depth: u32,
    nice: usize,
}

/// A candidate match: rough bits saved, length, offset, repeat index.
#[derive(Clone, Copy)]
struct Choice {
    score: i32,
    len: usize,
    off: u32,
    rep: Option<usize>,
}

const NONE: Choice = Choice {
    score: 0,
    len: 0,
    off: 0,
    rep: None,
};

impl LzmsEncoder {
    pub(crate) fn new(level: Level, max_chunk: usize) -> Self {
        let l = level.0;
        LzmsEncoder {
            buf: vec![0; max_chunk],
            x86: Box::new(TargetTable::new()),
            hc: HashChains::new(max_chunk),
            coder: Box::new(ItemCoder::new()),
            depth: (l * 2).clamp(4, 400),
            nice: (l as usize * 63 / 50).clamp(8, 400),
        }
    }

    /// Compresses `data` into `out`; `None` if it does not fit.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = data.len();
        let buf = &mut self.buf[..n];
        buf.copy_from_slice(data);
        self.x86.forward(buf);
        let buf = &self.buf[..n];
        self.coder.reset(n);
        self.hc.reset(n);
        let mut s = Streams::new(out);
        let (depth, nice) = (self.depth, self.nice);
        let mut i = 0;
        while i < n {
            let reps = self.coder.reps();
            let mut cur = best_at(&mut self.hc, buf, i, depth, nice, &reps);
            if cur.len == 0 {
                self.coder.literal(&mut s, buf[i]);
                i += 1;
                continue;
            }
            let mut inserted = i + 1;
            while cur.len < nice && i + 1 < n {
                // After a literal, the repeat offsets are the queue's first three.
                let reps = self.coder.reps_after_literal();
                let next = best_at(&mut self.hc, buf, i + 1, depth / 2, nice, &reps);
                inserted = i + 2;
                if next.score > cur.score {
                    self.coder.literal(&mut s, buf[i]);
                    i += 1;
                    cur = next;
                } else {
                    break;
                }
            }
            self.coder.lz(&mut s, cur.off, cur.len as u32, cur.rep);
            for p in inserted..i + cur.len {
                self.hc.skip(buf, p);
            }
            i += cur.len;
        }
        s.finish()
    }
}

/// Rough bits a match saves over literals.
#[inline(always)]
fn score(len: usize, off: u32, rep: bool) -> i32 {
    let cost = if rep {
        10
    } else {
        8 + (u32::BITS - off.leading_zeros()) as i32
    };
    7 * len as i32 - cost
}

/// The best match at `pos` (explicit or repeat), or [`NONE`] if none is worth taking.
#[inline(always)]
fn best_at(
    hc: &mut HashChains,
    buf: &[u8],
    pos: usize,
    depth: u32,
    nice: usize,
    reps: &[u32; 3],
) -> Choice {
    let max_len = buf.len() - pos;
    let mut best = NONE;
    for (r, &off) in reps.iter().enumerate() {
        if off as usize > pos || max_len < 2 {
            continue;
        }
        let l = match_len(buf, pos - off as usize, pos, 0, max_len);
        if l >= 2 && score(l, off, true) > best.score {
            best = Choice {
                score: score(l, off, true),
                len: l,
                off,
                rep: Some(r),
            };
        }
    }
    let (el, eo) = hc.find(buf, pos, 3, max_len, nice, depth, usize::MAX);
    if el >= 3 {
        let off = eo as u32;
        let rep = reps.iter().position(|&q| q == off);
        let s = score(el, off, rep.is_some());
        if s > best.score {
            best = Choice {
                score: s,
                len: el,
                off,
                rep,
            };
        }
    }
    best
}
