//! LZX's lazy parser for chunks of up to 64 KiB (the WIM default is 32 KiB), fused with the
//! 16-bit hash chains as XPRESS's parsers are ([`Chains`]): the chunk is copied into a
//! padded buffer, the chain state lives in locals, and neither needs bounds checks.
//!
//! Same decisions as [`parse_lazy`](super::lzx::parse_lazy) over
//! [`SmallChains`] through the generic finder interface (a test holds the two to the same
//! items), so the same output.

use super::super::alloc::{boxed::Box, vec::Vec};
use super::hc16::SmallChains;
use super::lzx::{best_rep, score, update_queue, MAX_MATCH, MIN_MATCH};
use super::mf::Search;
use super::xpress::hc::{new_buf, Buf, Caps, Chains};
use super::Item;

/// The lazy parser's chains and padded chunk buffer.
pub(super) struct SmallLazy {
    chains: SmallChains,
    buf: Box<Buf>,
}

impl SmallLazy {
    /// A parser for chunks up to `max_chunk` (at most 64 KiB) bytes.
    pub(super) fn new(max_chunk: usize) -> Self {
        SmallLazy {
            chains: SmallChains::new(max_chunk),
            buf: new_buf(),
        }
    }

    /// Parses the whole chunk `data` (one block: a chunk of at most 64 KiB is never
    /// split) into `items`, from and updating the repeat-offset `queue`.
    pub(super) fn parse(
        &mut self,
        data: &[u8],
        search: Search,
        queue: &mut [u32; 3],
        items: &mut Vec<Item>,
    ) {
        let n = data.len();
        match Chains::start(&mut self.chains, &mut self.buf, data) {
            Ok(ch) => run(&self.buf, n, ch, search, queue, items),
            Err(ch) => run(&self.buf, n, ch, search, queue, items),
        }
    }
}

/// The best match at `pos` as (score, length, offset code), where the code is the repeat
/// index or the offset plus 2; length 0 if no match is worth taking: as
/// [`best_at`](super::lzx::best_at).
#[inline(always)]
fn best_at<const FULL: bool>(
    ch: &mut Chains<'_, FULL>,
    buf: &Buf,
    n: usize,
    pos: usize,
    search: Search,
    queue: &[u32; 3],
) -> (i32, usize, u32) {
    let max_len = (n - pos).min(MAX_MATCH);
    // Positions with fewer than five bytes get no chain search (as the generic finder).
    let (el, eo) = if pos + 5 <= n {
        let caps = Caps {
            max_len: MAX_MATCH,
            max_offset: search.max_offset,
        };
        let search_at = |ch: &mut Chains<'_, FULL>| {
            ch.find(
                buf,
                n,
                pos,
                2,
                search.nice,
                search.depth,
                (true, usize::MAX),
                caps,
            )
        };
        search_at(ch)
    } else {
        (0, 0)
    };
    let chunk = &buf[..n];
    let (rl, ri) = if el >= 3 {
        best_rep(chunk, pos, max_len, queue)
    } else {
        let off = queue[0] as usize;
        if max_len >= MIN_MATCH
            && off <= pos
            && chunk[pos - off..pos - off + 2] == chunk[pos..pos + 2]
        {
            (super::mf::match_len(chunk, pos - off, pos, 2, max_len), 0)
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

/// The lazy parse of the chunk `buf[..n]` (see [`SmallLazy::parse`]).
fn run<const FULL: bool>(
    buf: &Buf,
    n: usize,
    mut ch: Chains<'_, FULL>,
    search: Search,
    queue: &mut [u32; 3],
    items: &mut Vec<Item>,
) {
    let half = Search {
        depth: search.depth / 2,
        ..search
    };
    // Positions from `end` have fewer than five bytes and are never inserted.
    let end = n.saturating_sub(4);
    let mut i = 0;
    while i < n {
        let (mut s, mut len, mut code) = best_at(&mut ch, buf, n, i, search, queue);
        if len == 0 {
            items.push(Item::literal(buf[i]));
            i += 1;
            continue;
        }
        let mut inserted = i + 1;
        while len < search.nice && i + 1 < n {
            let (s2, l2, c2) = best_at(&mut ch, buf, n, i + 1, half, queue);
            inserted = i + 2;
            if s2 > s {
                items.push(Item::literal(buf[i]));
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
        let to = (i + len).min(end);
        if inserted < to {
            ch.skip(buf, inserted, to);
        }
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::super::hc16::tests::input;
    use super::super::lzx::parse_lazy;
    use super::super::mf::ChainFinder;
    use super::*;

    /// Chunk after chunk (stale tables and buffer must not matter), over the largest and
    /// smaller tables and several search efforts: the same items and final repeat-offset
    /// queue as the generic parser over the same chains.
    #[test]
    fn same_items_as_the_generic_parser() {
        for max_chunk in [64usize << 10, 32 << 10, 8 << 10, 100] {
            for (e, &(depth, nice)) in [(60, 80), (3, 4), (150, 200), (2, 257)].iter().enumerate() {
                let search = Search {
                    depth,
                    nice,
                    max_offset: max_chunk.next_power_of_two().max(1 << 15) - 3,
                };
                let mut fused = SmallLazy::new(max_chunk);
                let mut chains = SmallChains::new(max_chunk);
                for (round, &len) in [max_chunk, max_chunk / 3, 5, 0, 4, max_chunk]
                    .iter()
                    .enumerate()
                {
                    let data = input(len, (round * 4 + e) as u64 + 3);
                    let (mut q1, mut q2) = ([1u32; 3], [1u32; 3]);
                    let (mut got, mut want) = (Vec::new(), Vec::new());
                    fused.parse(&data, search, &mut q1, &mut got);
                    chains.reset(&data);
                    parse_lazy(&mut chains, &data, 0, len, search, &mut q2, &mut want);
                    let what = format!("{max_chunk} {depth}/{nice} {len}");
                    assert_eq!(got.len(), want.len(), "{what}");
                    for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert_eq!((a.len, a.off), (b.len, b.off), "{what}: item {k}");
                    }
                    assert_eq!(q1, q2, "{what}");
                    let matches = got.iter().filter(|it| it.len > 1).count();
                    assert!(
                        len < 1000 || matches > len / 100,
                        "{what}: {matches} matches"
                    );
                }
            }
        }
    }
}
