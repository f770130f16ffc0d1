//! The greedy and lazy XPRESS parsers, fused with the 16-bit hash chains' insert and walk
//! (the chain state, [`Chains`], also serves LZX's lazy parser).
//!
//! Same search and same decisions as the generic chain finder path
//! ([`ChainFinder`](super::super::mf::ChainFinder) over [`SmallChains`]), but the parse
//! loop's whole state is locals: the chunk is first copied into a padded buffer of fixed
//! size and every position is masked to 16 bits, so neither the buffer nor the tables need
//! a length to check against (no bounds checks, fewer values live across the loop, so
//! fewer of them spilled to the stack).

use super::super::super::alloc::{boxed::Box, vec};
use super::super::hc16::{hash16, SmallChains, WINDOW};
use super::super::heap;
use super::super::mf::prefetch;
use super::{literal, matched, MIN_MATCH, NUM_SYMS};

/// Bytes after the chunk that loads may touch (an 8-byte load at the chunk's last byte).
const PAD: usize = 16;
/// A chunk's padded copy.
pub(in super::super) type Buf = [u8; WINDOW + PAD];
type Tab = [u16; 3 * WINDOW];
const HEAD4: usize = WINDOW;
const PREV: usize = 2 * WINDOW;
/// The largest tables' 3-byte head shift (2^15 heads).
const FULL_SHIFT3: u32 = 1;

/// A zeroed padded chunk buffer.
pub(in super::super) fn new_buf() -> Box<Buf> {
    vec![0u8; WINDOW + PAD]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("the vector has WINDOW + PAD bytes"))
}

/// Hash chains and the chunk's padded copy, for the greedy (`lazy == false`) or lazy
/// parser.
pub(super) struct HashParser {
    chains: SmallChains,
    buf: Box<Buf>,
    lazy: bool,
}

/// The 32 bits at `i` (masked to the buffer).
#[inline(always)]
fn load32(buf: &Buf, i: usize) -> u32 {
    let i = i & (WINDOW - 1);
    u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]])
}

/// The 64 bits at `i` (masked to the buffer).
#[inline(always)]
fn load64(buf: &Buf, i: usize) -> u64 {
    let i = i & (WINDOW - 1);
    let b: [u8; 8] = buf[i..i + 8].try_into().unwrap_or([0; 8]);
    u64::from_le_bytes(b)
}

/// The common prefix of the bytes at `a` and `b` (`a < b`), from `start` (known equal),
/// at most `max` (`b + max` at most the chunk's length).
#[inline(always)]
fn extend(buf: &Buf, a: usize, b: usize, start: usize, max: usize) -> usize {
    let mut n = start;
    while n < max {
        let x = load64(buf, a + n) ^ load64(buf, b + n);
        if x != 0 {
            return (n + (x.trailing_zeros() / 8) as usize).min(max);
        }
        n += 8;
    }
    max
}

/// The hash head indices (3-byte, 4-byte) of the four bytes `v`.
#[inline(always)]
fn heads<const FULL: bool>(v: u32, shift3: u32, shift4: u32) -> (usize, usize) {
    let h = hash16;
    if FULL {
        (
            usize::from(h(v & 0xff_ffff) >> FULL_SHIFT3),
            usize::from(h(v)),
        )
    } else {
        (
            usize::from(h(v & 0xff_ffff) >> shift3),
            usize::from(h(v) >> shift4),
        )
    }
}

/// A parse loop's chain state (the XPRESS parsers here, LZX's lazy parser for chunks of
/// up to 64 KiB): the tables, their shifts and the head indices of the next position to
/// insert.
pub(in super::super) struct Chains<'a, const FULL: bool> {
    tab: &'a mut Tab,
    shift3: u32,
    shift4: u32,
    h3: usize,
    h4: usize,
}

/// The longest match a search may return and the farthest offset (`usize::MAX` for
/// none): [`Chains::find`]'s caps.
#[derive(Clone, Copy)]
pub(in super::super) struct Caps {
    pub(in super::super) max_len: usize,
    pub(in super::super) max_offset: usize,
}

/// No caps (XPRESS: its longest match and farthest offset are beyond any chunk).
const NO_CAPS: Caps = Caps {
    max_len: usize::MAX,
    max_offset: usize::MAX,
};

/// A chunk's chain state, by table size: the largest tables' constant shifts, or others'.
pub(in super::super) enum Started<'a> {
    Full(Chains<'a, true>),
    Small(Chains<'a, false>),
}

/// Starts the chunk `data` (at most [`WINDOW`] bytes): copies it into `buf` and resets
/// `chains`, whose tables the returned state then walks.
pub(in super::super) fn start<'a>(
    chains: &'a mut SmallChains,
    buf: &mut Buf,
    data: &[u8],
) -> Started<'a> {
    let n = data.len();
    debug_assert!(n <= WINDOW);
    buf[..n].copy_from_slice(data);
    let (tab, shift3, shift4) = chains.begin(data);
    if shift3 == FULL_SHIFT3 && shift4 == 0 {
        Started::Full(Chains::new(tab, (shift3, shift4), buf, n))
    } else {
        Started::Small(Chains::new(tab, (shift3, shift4), buf, n))
    }
}

impl<'a, const FULL: bool> Chains<'a, FULL> {
    /// The state at position 0 of the chunk `buf[..n]`, over freshly reset tables.
    fn new(tab: &'a mut Tab, (shift3, shift4): (u32, u32), buf: &Buf, n: usize) -> Self {
        let (h3, h4) = if n >= 4 {
            heads::<FULL>(load32(buf, 0), shift3, shift4)
        } else {
            (0, 0)
        };
        Chains {
            tab,
            shift3,
            shift4,
            h3,
            h4,
        }
    }

    /// Inserts `pos` (which has five bytes from it in a chunk of `n`) and returns the
    /// longest match there longer than `best_len` (at least 2) as `(length, offset)`,
    /// length 0 if none: [`ChainFinder::find`](super::super::mf::ChainFinder::find) within
    /// `caps`. A 3-byte match is only returned with `want3`, and only from less than
    /// `far3` back.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(in super::super) fn find(
        &mut self,
        buf: &Buf,
        n: usize,
        pos: usize,
        best_len: usize,
        nice: usize,
        mut depth: u32,
        (want3, far3): (bool, usize),
        caps: Caps,
    ) -> (usize, usize) {
        let (h3, h4) = (self.h3, self.h4);
        (self.h3, self.h4) = heads::<FULL>(load32(buf, pos + 1), self.shift3, self.shift4);
        let tab = &mut *self.tab;
        prefetch(&tab[self.h3 & (WINDOW - 1)]);
        prefetch(&tab[HEAD4 + (self.h4 & (WINDOW - 1))]);
        let me = pos as u16;
        let cand3 = core::mem::replace(&mut tab[h3 & (WINDOW - 1)], me);
        let mut cand = core::mem::replace(&mut tab[HEAD4 + (h4 & (WINDOW - 1))], me);
        tab[PREV + (pos & (WINDOW - 1))] = cand;

        let max_len = (n - pos).min(caps.max_len);
        let nice_len = nice.min(max_len);
        // Entries below `limit` are empty (0) or too far back (1 without an offset cap).
        let limit = pos.saturating_sub(caps.max_offset).max(1);
        // A first search (from `best_len` 2) always looks, even for a `nice` of 3: as
        // wimlib, it then takes the first match it finds, extended in full. No earlier
        // position starts with the same three bytes when their head is empty (every earlier
        // position is in the tables): no match at all.
        let first = best_len < MIN_MATCH;
        let mut best_len = best_len.max(MIN_MATCH);
        if !first && best_len >= nice_len {
            return (0, 0);
        }
        // Without a 3-byte head the walk gets no candidate (one data-dependent branch, the
        // walk's own end, instead of two).
        cand &= 0u16.wrapping_sub(u16::from(usize::from(cand3) >= limit));
        let v = load32(buf, pos);
        let mut best_off = 0;
        if best_len == MIN_MATCH {
            // The 3-byte candidate's bytes, loaded before the walk so that the load
            // overlaps it.
            let c3 = usize::from(cand3);
            let near3 = (usize::from(cand3) >= limit)
                & ((load32(buf, c3) ^ v) & 0xff_ffff == 0)
                & (pos.wrapping_sub(c3) < far3);
            // No 4-byte match yet: the first candidate whose four bytes match.
            loop {
                if usize::from(cand) < limit || depth == 0 {
                    if want3 && near3 {
                        return (3, pos - c3);
                    }
                    return (0, 0);
                }
                // An entry is the position itself: the chain step is one load.
                let c = usize::from(cand);
                depth -= 1;
                cand = tab[PREV + c];
                if load32(buf, c) == v {
                    best_len = extend(buf, c, pos, 4, max_len);
                    best_off = pos - c;
                    if best_len >= nice_len {
                        return (best_len, best_off);
                    }
                    break;
                }
            }
        }
        // Longer matches: a candidate must match the four bytes ending at `best_len + 1`,
        // then the first four.
        let mut tail = load32(buf, pos + best_len - 3);
        while usize::from(cand) >= limit && depth > 0 {
            let c = usize::from(cand);
            depth -= 1;
            cand = tab[PREV + c];
            if load32(buf, c + best_len - 3) == tail && load32(buf, c) == v {
                let len = extend(buf, c, pos, 4, max_len);
                if len > best_len {
                    best_len = len;
                    best_off = pos - c;
                    if len >= nice_len {
                        break;
                    }
                    tail = load32(buf, pos + best_len - 3);
                }
            }
        }
        if best_off != 0 {
            (best_len, best_off)
        } else {
            (0, 0)
        }
    }

    /// Inserts the positions `from..to` (`to + 4` at most the chunk's length) without
    /// searching.
    #[inline(always)]
    pub(in super::super) fn skip(&mut self, buf: &Buf, from: usize, to: usize) {
        let (mut h3, mut h4) = (self.h3, self.h4);
        let tab = &mut *self.tab;
        for pos in from..to {
            let me = pos as u16;
            tab[h3 & (WINDOW - 1)] = me;
            tab[PREV + (pos & (WINDOW - 1))] =
                core::mem::replace(&mut tab[HEAD4 + (h4 & (WINDOW - 1))], me);
            (h3, h4) = heads::<FULL>(load32(buf, pos + 1), self.shift3, self.shift4);
        }
        (self.h3, self.h4) = (h3, h4);
        prefetch(&tab[h3 & (WINDOW - 1)]);
        prefetch(&tab[HEAD4 + (h4 & (WINDOW - 1))]);
    }
}

impl HashParser {
    /// The heap bytes [`new`](Self::new) allocates (fixed: the chains and the padded buffer).
    pub(super) fn heap_bytes() -> u64 {
        SmallChains::heap_bytes() + heap::<Buf>(1)
    }

    /// A greedy (or, with `lazy`, lazy) parser for chunks up to `max_chunk` (at most
    /// [`WINDOW`]) bytes.
    pub(super) fn new(max_chunk: usize, lazy: bool) -> Self {
        HashParser {
            chains: SmallChains::new(max_chunk),
            buf: new_buf(),
            lazy,
        }
    }

    /// Parses `data` (at most [`WINDOW`] bytes) into `items` (one more than its length),
    /// counting the symbols' frequencies into `freqs`; returns the number of items.
    pub(super) fn parse(
        &mut self,
        data: &[u8],
        depth: u32,
        nice: usize,
        items: &mut [u64],
        freqs: &mut [u32; NUM_SYMS],
    ) -> usize {
        let n = data.len();
        match (start(&mut self.chains, &mut self.buf, data), self.lazy) {
            (Started::Full(ch), false) => {
                run::<_, false>(&self.buf, n, ch, depth, nice, items, freqs)
            }
            (Started::Full(ch), true) => {
                run::<_, true>(&self.buf, n, ch, depth, nice, items, freqs)
            }
            (Started::Small(ch), false) => {
                run::<_, false>(&self.buf, n, ch, depth, nice, items, freqs)
            }
            (Started::Small(ch), true) => {
                run::<_, true>(&self.buf, n, ch, depth, nice, items, freqs)
            }
        }
    }
}

/// The parse of the chunk `buf[..n]` (see [`HashParser::parse`]).
fn run<const FULL: bool, const LAZY: bool>(
    buf: &Buf,
    n: usize,
    mut ch: Chains<'_, FULL>,
    depth: u32,
    nice: usize,
    items: &mut [u64],
    freqs: &mut [u32; NUM_SYMS],
) -> usize {
    // A 3-byte match this far back costs about as much as three literals (as wimlib).
    let far3 = if n <= 8192 { 2048 } else { 4096 };
    // Positions from `end` have fewer than five bytes: no match is looked for there.
    let end = n.saturating_sub(4);
    let mut k = 0;
    let mut i = 0;
    while i < n {
        let (mut len, mut off) = if i < end {
            ch.find(buf, n, i, MIN_MATCH - 1, nice, depth, (true, far3), NO_CAPS)
        } else {
            (0, 0)
        };
        if len < MIN_MATCH {
            let b = buf[i & (WINDOW - 1)];
            freqs[usize::from(b)] += 1;
            items[k] = literal(b);
            k += 1;
            i += 1;
            continue;
        }
        // The first position after `i` not yet in the chains.
        let mut next = i + 1;
        if LAZY {
            while len < nice && i + 1 < n {
                // A 3-byte match is never longer than `len`: not looked for.
                let (l2, o2) = if i + 1 < end {
                    ch.find(buf, n, i + 1, len, nice, depth / 2, (false, far3), NO_CAPS)
                } else {
                    (0, 0)
                };
                next = i + 2;
                if l2 > len {
                    let b = buf[i & (WINDOW - 1)];
                    freqs[usize::from(b)] += 1;
                    items[k] = literal(b);
                    k += 1;
                    i += 1;
                    (len, off) = (l2, o2);
                } else {
                    break;
                }
            }
        }
        let it = matched(len, off as u32);
        freqs[(it & 0x1ff) as usize] += 1;
        items[k] = it;
        k += 1;
        let to = (i + len).min(end);
        if next < to {
            ch.skip(buf, next, to);
        }
        i += len;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::super::super::hc16::tests::input;
    use super::super::super::mf::ChainFinder;
    use super::*;

    /// The parse through the generic [`ChainFinder`] interface of [`SmallChains`]: the
    /// model the fused parser must follow decision for decision.
    fn model(
        hc: &mut SmallChains,
        data: &[u8],
        (depth, nice, lazy): (u32, usize, bool),
        freqs: &mut [u32; NUM_SYMS],
    ) -> Vec<u64> {
        let (n, mut i) = (data.len(), 0);
        let far3 = if n <= 8192 { 2048 } else { 4096 };
        let mut items = vec![];
        let mut lit = |b: u8, items: &mut Vec<u64>| {
            freqs[usize::from(b)] += 1;
            items.push(literal(b));
        };
        hc.reset(data);
        while i < n {
            let (mut len, mut off) = hc.find(data, i, 2, usize::MAX, nice, depth, usize::MAX);
            if len < MIN_MATCH || (len == MIN_MATCH && off >= far3) {
                lit(data[i], &mut items);
                i += 1;
                continue;
            }
            let mut next = i + 1;
            while lazy && len < nice && i + 1 < n {
                let (l2, o2) = hc.find(data, i + 1, len, usize::MAX, nice, depth / 2, usize::MAX);
                next = i + 2;
                if l2 <= len {
                    break;
                }
                lit(data[i], &mut items);
                i += 1;
                (len, off) = (l2, o2);
            }
            items.push(matched(len, off as u32));
            hc.skip(data, next, i + len);
            i += len;
        }
        for &it in &items {
            if it & 0x100 != 0 {
                freqs[(it & 0x1ff) as usize] += 1;
            }
        }
        items
    }

    /// The bytes `items` stand for.
    fn replay(items: &[u64]) -> Vec<u8> {
        let mut out: Vec<u8> = vec![];
        for &it in items {
            if it & 0x100 == 0 {
                out.push(it as u8);
                continue;
            }
            let len = ((it >> 9) & 0xffff) as usize + MIN_MATCH;
            let off = (1usize << ((it >> 25) & 15)) + (it >> 29) as usize;
            assert!(off <= out.len(), "offset {off} at {}", out.len());
            for _ in 0..len {
                out.push(out[out.len() - off]);
            }
        }
        out
    }

    /// Greedy and lazy, over the largest and smaller tables, at several search efforts,
    /// on chunk after chunk (so stale table and buffer contents must not matter): items
    /// that stand for the chunk, and the same items and frequencies as the model (except
    /// for a `nice` of 3, where the fused parser takes the first match as wimlib does and
    /// the model finds none).
    #[test]
    fn same_parse_as_the_generic_finder() {
        let efforts = [
            (37, 75, false),
            (46, 93, true),
            (1, 4, true),
            (8, 16, false),
            (1, 3, false),
        ];
        for max_chunk in [64 << 10, 32 << 10, 8 << 10, 100] {
            for (e, &effort) in efforts.iter().enumerate() {
                let mut parser = HashParser::new(max_chunk, effort.2);
                let mut chains = SmallChains::new(max_chunk);
                for (round, len) in [max_chunk, max_chunk / 3, 5, 0, 4, max_chunk]
                    .iter()
                    .enumerate()
                {
                    let data = input(*len, (round * 4 + e) as u64 + 1);
                    let mut items = vec![0; len + 1];
                    let mut freqs = [0; NUM_SYMS];
                    let k = parser.parse(&data, effort.0, effort.1, &mut items, &mut freqs);
                    let got = &items[..k];
                    assert_eq!(replay(got), data, "{max_chunk} {effort:?} {len}");
                    let counted = got.iter().fold([0; NUM_SYMS], |mut f, &it| {
                        f[(it & 0x1ff) as usize] += 1;
                        f
                    });
                    assert_eq!(freqs, counted, "{max_chunk} {effort:?} {len}");
                    let matches = got.iter().filter(|&&it| it & 0x100 != 0).count();
                    assert!(*len < 1000 || matches > *len / 100, "{matches} matches");
                    if effort.1 == 3 {
                        continue;
                    }
                    let mut want_freqs = [0; NUM_SYMS];
                    let want = model(&mut chains, &data, effort, &mut want_freqs);
                    assert_eq!(items[..k], want[..], "{max_chunk} {effort:?} {len}");
                    assert_eq!(freqs, want_freqs, "{max_chunk} {effort:?} {len}");
                }
            }
        }
    }
}
