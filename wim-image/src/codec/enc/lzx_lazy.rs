//! LZX's lazy parser for chunks of up to 64 KiB (the WIM default is 32 KiB), fused with the
//! 16-bit hash chains as XPRESS's parsers are ([`Chains`]): the chunk is copied into a
//! padded buffer, the chain state lives in locals, and neither needs bounds checks.
//!
//! The parse loop is the shared [`parse_lazy`]; only the finder differs from the generic
//! one over [`SmallChains`] (a test holds the two to the same items).

use super::super::alloc::{boxed::Box, vec::Vec};
use super::hc16::SmallChains;
use super::lzx::{parse_lazy, LazyFinder};
use super::mf::Search;
use super::xpress::hc::{new_buf, start, Buf, Caps, Chains, Started};
use super::{heap, Item};

/// The lazy parser's chains and padded chunk buffer.
pub(super) struct SmallLazy {
    chains: SmallChains,
    buf: Box<Buf>,
}

impl SmallLazy {
    /// The heap bytes [`new`](Self::new) allocates (fixed: the chains and the padded buffer).
    pub(super) fn heap_bytes() -> u64 {
        SmallChains::heap_bytes() + heap::<Buf>(1)
    }

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
        let started = start(&mut self.chains, &mut self.buf, data);
        let buf = &*self.buf;
        match started {
            Started::Full(ch) => parse_lazy(&mut Fused { ch, buf, n }, 0, n, search, queue, items),
            Started::Small(ch) => parse_lazy(&mut Fused { ch, buf, n }, 0, n, search, queue, items),
        }
    }
}

/// The fused chains over the padded chunk `buf[..n]`.
struct Fused<'a, const FULL: bool> {
    ch: Chains<'a, FULL>,
    buf: &'a Buf,
    n: usize,
}

impl<const FULL: bool> LazyFinder for Fused<'_, FULL> {
    #[inline(always)]
    fn find(&mut self, pos: usize, best_len: usize, max_len: usize, s: Search) -> (usize, usize) {
        let (buf, n) = (self.buf, self.n);
        // Positions with fewer than five bytes get no chain search (as the generic finder).
        if pos + 5 > n {
            return (0, 0);
        }
        let caps = Caps {
            max_len,
            max_offset: s.max_offset,
        };
        let three = (true, usize::MAX);
        self.ch
            .find(buf, n, pos, best_len, s.nice, s.depth, three, caps)
    }

    #[inline(always)]
    fn skip(&mut self, from: usize, to: usize) {
        // Positions from `n - 4` have fewer than five bytes and are never inserted.
        let to = to.min(self.n.saturating_sub(4));
        if from < to {
            self.ch.skip(self.buf, from, to);
        }
    }

    #[inline(always)]
    fn chunk(&self) -> &[u8] {
        &self.buf[..self.n]
    }
}

#[cfg(test)]
mod tests {
    use super::super::hc16::tests::input;
    use super::super::lzx::OverChunk;
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
                    let mut generic = OverChunk {
                        hc: &mut chains,
                        buf: &data,
                    };
                    parse_lazy(&mut generic, 0, len, search, &mut q2, &mut want);
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
