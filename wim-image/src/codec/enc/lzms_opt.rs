//! LZMS near-optimal parsing.
//!
//! A forward minimum-cost search over the positions of a stretch of the chunk: from each
//! position it relaxes a literal, every length of the repeat LZ and delta matches the
//! position's queues offer, every length of each explicit LZ match (binary trees) and
//! delta match ([`super::lzms_delta`]), and a few two- and three-item steps that bridge a
//! one-byte gap with a repeat match (match + literal + repeat 0). Each position keeps its
//! cheapest arrival and the adaptive state that arrival leaves (queues and decision
//! contexts), so repeats and decision bits are priced in the state they will be coded in.
//! Costs come from the coder's live probabilities and code lengths (1/64 bit), which stay
//! fixed within a stretch. A stretch ends where no arrival reaches past the current
//! position, after [`STRETCH`] positions, or at a match of the "nice" length, which is
//! taken at once (only the first and last [`LONG_MATCH_ENDS`] positions it covers go into
//! the binary trees); its items are then coded, which updates the model for the next one.

use super::super::alloc::{boxed::Box, vec, vec::Vec};
use super::super::lzms::streams::Probability;
use super::super::lzms::tables::{LENGTH_SLOTS, NUM_LENGTH_SLOTS, OFFSET_SLOTS};
use super::super::lzms::x86::TargetTable;
use super::bt::{BinaryTrees, Cursor, Large, Probe};
use super::lzms::{
    length_slot, next_state, ItemCoder, LzmsItem, SlotTable, State, Streams, PAIR_SHIFT,
};
use super::lzms_delta::{delta_len, delta_starts, DeltaFinder, DeltaMatch, HASHED, POWERS};
use super::mf::{match_len, prefetch, Match};
use super::{heap, Level};
use crate::mem::AllocError;

/// Positions per stretch at most.
const STRETCH: usize = 2048;
/// Longest "nice" length, and the longest length the cost table covers.
const MAX_NICE: usize = 255;
const INFINITE: u32 = u32::MAX;
/// Positions at each end of a match of the nice length that go into the binary trees.
///
/// Each costs a tree walk, which in a 64 MiB solid chunk is a chain of cache misses. The
/// reference tree's three solid chunks (ordered as the writer orders them; a lab binary,
/// one run each): 32 -> 8 took 65.2 s -> 62.7 s with 0.07% larger output; fewer positions
/// (2 to 12 at either end) gave the same time within noise and up to 0.25% larger output.
const LONG_MATCH_ENDS: usize = 8;
/// Room for one position's matches (see [`LzmsEncoder::matches`]).
const MATCHES: usize = MAX_NICE + 2;
/// Entries of the 2-byte table (see [`LzmsEncoder::head2`]).
const HEAD2_LEN: usize = 1 << 16;
/// Room for the items of one stretch.
const PATH_LEN: usize = STRETCH + 2;

/// `-log2(p / 64)` in 1/64 bits for a probability of `p`/64 (0 and 64 as 1 and 63).
/// Generated: `[round(-log2(min(63, max(1, p)) / 64) * 64) for p in range(65)]`.
const BIT_COST: [u32; 65] = [
    384, 384, 320, 283, 256, 235, 219, 204, 192, 181, 171, 163, 155, 147, 140, 134, 128, 122, 117,
    112, 107, 103, 99, 94, 91, 87, 83, 80, 76, 73, 70, 67, 64, 61, 58, 56, 53, 51, 48, 46, 43, 41,
    39, 37, 35, 33, 30, 29, 27, 25, 23, 21, 19, 17, 16, 14, 12, 11, 9, 8, 6, 4, 3, 1, 1,
];

/// The cost of a 0 and of a 1 by a context's raw zero count (0–64, clamped as
/// [`Probability::get`] does), padded to 128 entries so a masked index needs no check: the
/// parse prices several bits per position.
static BIT_COSTS: [[u32; 128]; 2] = {
    let mut t = [[0; 128]; 2];
    let mut z = 0;
    while z <= 64 {
        let p = if z == 0 {
            1
        } else if z == 64 {
            63
        } else {
            z
        };
        t[0][z] = BIT_COST[p];
        t[1][z] = BIT_COST[64 - p];
        z += 1;
    }
    t
};

#[inline(always)]
fn bit0(p: &Probability) -> u32 {
    BIT_COSTS[0][p.zeros() as usize & 127]
}

#[inline(always)]
fn bit1(p: &Probability) -> u32 {
    BIT_COSTS[1][p.zeros() as usize & 127]
}

/// Offers `item` (with the items before it) as an arrival at node `to`.
#[inline(always)]
fn relax(
    nodes: &mut Nodes,
    to: usize,
    cost: u32,
    item: LzmsItem,
    before: [LzmsItem; 2],
    num_before: u8,
) {
    if cost < nodes.cost[to] {
        nodes.cost[to] = cost;
        nodes.arrival[to] = Arrival {
            item,
            before,
            num_before,
        };
    }
}

/// How the cheapest arrival at a node came: its last item and, for a multi-item step,
/// the items before it (latest first).
#[derive(Clone, Copy)]
struct Arrival {
    item: LzmsItem,
    before: [LzmsItem; 2],
    num_before: u8,
}

const NO_ARRIVAL: Arrival = Arrival {
    item: LzmsItem { len: 0, src: 0 },
    before: [LzmsItem { len: 0, src: 0 }; 2],
    num_before: 0,
};

/// The nodes of a stretch, one per position, as parallel arrays: the relaxation loops
/// compare many costs and rarely write an arrival, so the costs are kept dense.
struct Nodes {
    cost: Vec<u32>,
    arrival: Vec<Arrival>,
    /// The adaptive state after the cheapest arrival (set once the node is final).
    state: Vec<State>,
}

/// Nodes of a stretch: its positions and the farthest a step from its last one reaches.
const NODES: usize = STRETCH + 2 * MAX_NICE + 2;

impl Nodes {
    /// The heap bytes [`new`](Self::new) allocates for `len` nodes.
    fn heap_bytes(len: usize) -> u64 {
        heap::<u32>(len) + heap::<Arrival>(len) + heap::<State>(len)
    }

    fn new(len: usize) -> Self {
        Nodes {
            cost: vec![INFINITE; len],
            arrival: vec![NO_ARRIVAL; len],
            state: vec![State::INITIAL; len],
        }
    }
}

/// Parameters by level (as wimlib scales them).
struct Params {
    nice: usize,
    depth: u32,
    delta: bool,
    match_lit_rep: bool,
    lit_rep: bool,
    rep_lit_rep: bool,
}

/// LZMS compression state for chunks up to a fixed size.
pub(crate) struct LzmsEncoder {
    buf: Vec<u8>,
    x86: Box<TargetTable>,
    bt: BinaryTrees<Large>,
    /// The newest position + 1 of each two-byte string (the binary trees start at three).
    head2: Vec<u32>,
    delta: DeltaFinder,
    coder: Box<ItemCoder>,
    nodes: Nodes,
    /// The matches of the current position: the 2-byte one, then the trees' (at most one
    /// per length from 3 to the nice length), with room for the trees' unkept last store.
    matches: Box<[Match; MATCHES]>,
    path: Vec<LzmsItem>,
    /// Length → cost, for the length code of generation `len_gen`.
    len_cost: [u32; MAX_NICE + 1],
    len_gen: u32,
    p: Params,
}

impl LzmsEncoder {
    /// The heap bytes [`new`](Self::new) allocates (the encoder itself not counted): 9 per
    /// byte of chunk (its x86-translated copy and the trees' two children per position),
    /// the trees' heads (8 per byte up to 16 MiB, reached at 2 MiB chunks) and about 2 MiB
    /// of fixed tables.
    /// The level does not change it.
    pub(crate) fn heap_bytes(max_chunk: usize) -> u64 {
        heap::<u8>(max_chunk)
            + heap::<TargetTable>(1)
            + BinaryTrees::<Large>::heap_bytes(max_chunk, false)
            + heap::<u32>(HEAD2_LEN)
            + DeltaFinder::heap_bytes()
            + heap::<ItemCoder>(1)
            + SlotTable::heap_bytes(max_chunk)
            + Nodes::heap_bytes(NODES)
            + heap::<[Match; MATCHES]>(1)
            + heap::<LzmsItem>(PATH_LEN)
    }

    /// State for chunks of at most `max_chunk` bytes: about 9 bytes per byte, allocated
    /// fallibly (LZMS chunks may be 1 GiB).
    pub(crate) fn new(level: Level, max_chunk: usize) -> Result<Self, AllocError> {
        let l = level.0;
        Ok(LzmsEncoder {
            buf: crate::mem::filled(0, max_chunk)?,
            x86: Box::new(TargetTable::new()),
            bt: BinaryTrees::new(max_chunk, false)?,
            head2: vec![0; HEAD2_LEN],
            delta: DeltaFinder::new(max_chunk),
            coder: Box::new(ItemCoder::new(max_chunk)),
            nodes: Nodes::new(NODES),
            matches: Box::new([Match::default(); MATCHES]),
            path: Vec::with_capacity(PATH_LEN),
            len_cost: [0; MAX_NICE + 1],
            len_gen: 0,
            p: Params {
                nice: (l as usize * 63 / 50).clamp(8, MAX_NICE),
                depth: l.clamp(8, 200),
                delta: l >= 35,
                match_lit_rep: l >= 45,
                lit_rep: l >= 60,
                rep_lit_rep: l >= 60,
            },
        })
    }

    /// Compresses `data` into `out`; `None` if it does not fit.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = data.len();
        let mut buf = core::mem::take(&mut self.buf);
        buf[..n].copy_from_slice(data);
        self.x86.forward(&mut buf[..n]);
        self.coder.reset(n);
        self.bt.reset();
        self.head2.fill(0);
        self.delta.reset();
        self.refresh_len_costs();
        let mut s = Streams::new(out);
        let mut pos = 0;
        while pos < n {
            pos = self.stretch(&buf[..n], pos, &mut s);
        }
        self.buf = buf;
        s.finish()
    }

    /// The tree search: matches up to the nice length, from 3 bytes, at any offset.
    fn probe(&self) -> Probe {
        Probe {
            max_len: self.p.nice,
            nice_len: self.p.nice,
            depth: self.p.depth,
            max_offset: usize::MAX,
            min3: true,
        }
    }

    fn refresh_len_costs(&mut self) {
        self.len_gen = self.coder.length.generation();
        let lens = self.coder.length.lens();
        for (len, c) in self.len_cost.iter_mut().enumerate().skip(1) {
            let slot = length_slot(len as u32);
            *c = (u32::from(lens[slot]) + u32::from(LENGTH_SLOTS[slot].1)) << 6;
        }
        debug_assert!(NUM_LENGTH_SLOTS > length_slot(MAX_NICE as u32));
    }

    /// Codes `item` and keeps the length costs current.
    fn code(&mut self, s: &mut Streams<'_>, item: LzmsItem) {
        self.coder.encode(s, item);
        if self.coder.length.generation() != self.len_gen {
            self.refresh_len_costs();
        }
    }

    /// Codes the cheapest path to node `end` of the stretch.
    fn code_path(&mut self, s: &mut Streams<'_>, end: usize) {
        let mut path = core::mem::take(&mut self.path);
        path.clear();
        let mut k = end;
        while k > 0 {
            let node = &self.nodes.arrival[k];
            path.push(node.item);
            k -= node.item.len as usize;
            for &b in &node.before[..usize::from(node.num_before)] {
                path.push(b);
                k -= b.len as usize;
            }
        }
        for &item in path.iter().rev() {
            self.code(s, item);
        }
        self.path = path;
    }

    /// Ends the stretch at node `cur` (position `pos`) with the long `item`: codes the path
    /// there and the item, and inserts the positions it covers into the match finders
    /// from `from`. Returns the next position.
    fn take_long(
        &mut self,
        buf: &[u8],
        s: &mut Streams<'_>,
        cur: usize,
        pos: usize,
        from: usize,
        item: LzmsItem,
    ) -> usize {
        self.code_path(s, cur);
        self.code(s, item);
        let end = pos + item.len as usize;
        for p in from..end {
            if p + 2 <= buf.len() {
                self.head2[usize::from(u16::from_le_bytes([buf[p], buf[p + 1]]))] = p as u32 + 1;
            }
            // The middle of a long match repeats what the trees already hold; only its
            // ends go in (all of them against the first and last 32: 6% more
            // instructions, 0.1% smaller output; see LONG_MATCH_ENDS).
            if p - from >= LONG_MATCH_ENDS && end - p > LONG_MATCH_ENDS {
                continue;
            }
            self.bt.skip(buf, p, self.probe());
        }
        end
    }

    /// Parses and codes one stretch starting at `start`; returns where the next begins.
    fn stretch(&mut self, buf: &[u8], start: usize, s: &mut Streams<'_>) -> usize {
        let n = buf.len();
        let nice = self.p.nice;
        self.nodes.cost[0] = 0;
        self.nodes.state[0] = self.coder.st;
        let mut end = 0;
        let mut cur = 0;
        loop {
            let pos = start + cur;
            let remaining = n - pos;
            let st = self.nodes.state[cur];
            let cur_cost = self.nodes.cost[cur];
            let d = &self.coder.d;
            let match_bit = bit1(&d.main[usize::from(st.main)]);
            let lz_bits = match_bit + bit0(&d.matched[usize::from(st.matched)]);
            let delta_bits = match_bit + bit1(&d.matched[usize::from(st.matched)]);
            // The contexts after a match (for the steps across a gap).
            let main_after_match = next_state::<16>(st.main, 1);
            let matched_after_lz = next_state::<32>(st.matched, 0);

            // Repeat LZ matches.
            if remaining >= 2 {
                let reps = st.lz_reps();
                for (r, &off) in reps.iter().enumerate() {
                    let off = off as usize;
                    if off > pos || buf[pos] != buf[pos - off] || buf[pos + 1] != buf[pos + 1 - off]
                    {
                        continue;
                    }
                    let len = match_len(buf, pos - off, pos, 2, remaining);
                    if len >= nice {
                        let item = LzmsItem::lz_rep(len as u32, r);
                        return self.take_long(buf, s, cur, pos, pos, item);
                    }
                    let d = &self.coder.d;
                    let base = cur_cost
                        + lz_bits
                        + bit1(&d.lz[usize::from(st.lz_ctx)])
                        + rep_cost(&d.lz_rep, st.lz_rep, r);
                    reach(&mut self.nodes, &mut end, cur + len);
                    let item = |l| LzmsItem::lz_rep(l, r);
                    relax_run(&mut self.nodes, &self.len_cost, cur, 2, len, base, item);
                    // Repeat + literal + repeat 0 (the same offset) across a one-byte gap.
                    if self.p.rep_lit_rep && remaining >= len + 3 {
                        let ctx = GapContexts {
                            main: main_after_match,
                            matched: matched_after_lz,
                            lz: next_state::<64>(st.lz_ctx, 1),
                            rep0: next_state::<64>(st.lz_rep[0], u32::from(r > 0)),
                        };
                        let first = LzmsItem::lz_rep(len as u32, r);
                        let cost = base + self.len_cost[len];
                        self.gap_step(buf, pos, cur, &mut end, first, off, cost, ctx);
                    }
                }
            }

            // Repeat delta matches.
            if self.p.delta && remaining >= 4 {
                let reps = st.delta_reps();
                for (r, &pair) in reps.iter().enumerate() {
                    let power = pair >> PAIR_SHIFT;
                    let span = 1usize << power;
                    let off = ((pair & ((1 << PAIR_SHIFT) - 1)) as usize) << power;
                    if off + span > pos || !delta_starts(buf, pos - off, pos, span) {
                        continue;
                    }
                    let len = delta_len(buf, pos - off, pos, span, 2, remaining);
                    if len >= nice {
                        let item = LzmsItem::delta_rep(len as u32, r);
                        return self.take_long(buf, s, cur, pos, pos, item);
                    }
                    let d = &self.coder.d;
                    let base = cur_cost
                        + delta_bits
                        + bit1(&d.delta[usize::from(st.delta_ctx)])
                        + rep_cost(&d.delta_rep, st.delta_rep, r);
                    reach(&mut self.nodes, &mut end, cur + len);
                    let item = |l| LzmsItem::delta_rep(l, r);
                    relax_run(&mut self.nodes, &self.len_cost, cur, 2, len, base, item);
                }
            }

            // Explicit LZ matches: the newest two-byte one, then the trees' (from three).
            let mut num = 0;
            if remaining >= 2 {
                let h = usize::from(u16::from_le_bytes([buf[pos], buf[pos + 1]]));
                let c = self.head2[h] as usize;
                self.head2[h] = pos as u32 + 1;
                if remaining >= 3 {
                    prefetch(
                        &self.head2[usize::from(u16::from_le_bytes([buf[pos + 1], buf[pos + 2]]))],
                    );
                }
                if c != 0 {
                    self.matches[0] = Match {
                        len: 2,
                        off: (pos + 1 - c) as u32,
                    };
                    num = 1;
                }
            }
            let probe = self.probe();
            num = tree_matches(&mut self.bt, buf, pos, probe, &mut self.matches[..], num);
            if let Some(&longest) = self.matches[..num].last() {
                if longest.len as usize >= nice {
                    let off = longest.off as usize;
                    let len = match_len(buf, pos - off, pos, longest.len as usize, remaining);
                    let item = LzmsItem::lz(len as u32, off as u32);
                    return self.take_long(buf, s, cur, pos, pos + 1, item);
                }
                let base = cur_cost + lz_bits + bit0(&self.coder.d.lz[usize::from(st.lz_ctx)]);
                reach(&mut self.nodes, &mut end, cur + longest.len as usize);
                let mut l = 2;
                for i in 0..num {
                    let m = self.matches[i];
                    let c = &*self.coder;
                    let slot = c.slots.slot(m.off);
                    let bits =
                        u32::from(c.lz_offset.lens()[slot]) + u32::from(OFFSET_SLOTS[slot].1);
                    let at = base + (bits << 6);
                    let len = m.len as usize;
                    let item = |l| LzmsItem::lz(l, m.off);
                    relax_run(&mut self.nodes, &self.len_cost, cur, l, len, at, item);
                    l = len + 1;
                    // Match + literal + repeat 0 (the same offset) across a one-byte gap.
                    if self.p.match_lit_rep && remaining >= len + 3 {
                        let ctx = GapContexts {
                            main: main_after_match,
                            matched: matched_after_lz,
                            lz: next_state::<64>(st.lz_ctx, 0),
                            rep0: st.lz_rep[0],
                        };
                        let first = LzmsItem::lz(m.len, m.off);
                        let cost = at + self.len_cost[len];
                        self.gap_step(buf, pos, cur, &mut end, first, m.off as usize, cost, ctx);
                    }
                }
            }

            // Explicit delta matches.
            if self.p.delta && remaining > HASHED {
                let mut found = [DeltaMatch::default(); POWERS];
                let k = self.delta.find(buf, pos, remaining, &mut found);
                let found = &found[..k];
                if let Some(dm) = found.iter().find(|dm| dm.len as usize >= nice) {
                    let item = LzmsItem::delta(dm.len, dm.pair);
                    return self.take_long(buf, s, cur, pos, pos + 1, item);
                }
                for dm in found {
                    let c = &*self.coder;
                    let power = (dm.pair >> PAIR_SHIFT) as usize;
                    let slot = c.slots.slot(dm.pair & ((1 << PAIR_SHIFT) - 1));
                    let bits = u32::from(c.delta_power.lens()[power])
                        + u32::from(c.delta_offset.lens()[slot])
                        + u32::from(OFFSET_SLOTS[slot].1);
                    let base = cur_cost
                        + delta_bits
                        + bit0(&c.d.delta[usize::from(st.delta_ctx)])
                        + (bits << 6);
                    let len = dm.len as usize;
                    reach(&mut self.nodes, &mut end, cur + len);
                    let item = |l| LzmsItem::delta(l, dm.pair);
                    relax_run(
                        &mut self.nodes,
                        &self.len_cost,
                        cur,
                        HASHED,
                        len,
                        base,
                        item,
                    );
                }
            }

            // The literal, and literal + repeat 0.
            reach(&mut self.nodes, &mut end, cur + 1);
            let c = &*self.coder;
            let lit = cur_cost
                + bit0(&c.d.main[usize::from(st.main)])
                + (u32::from(c.literal.lens()[usize::from(buf[pos])]) << 6);
            if lit < self.nodes.cost[cur + 1] {
                relax(
                    &mut self.nodes,
                    cur + 1,
                    lit,
                    LzmsItem::literal(buf[pos]),
                    NO,
                    0,
                );
            } else if self.p.lit_rep && remaining >= 3 {
                // After a literal, repeat 0 is the newest LZ offset.
                let off = st.lz[0] as usize;
                let g = pos + 1;
                if off <= g && buf[g] == buf[g - off] && buf[g + 1] == buf[g + 1 - off] {
                    let len2 = match_len(buf, g - off, g, 2, nice.min(n - g));
                    let ctx = GapContexts {
                        main: st.main,
                        matched: st.matched,
                        lz: st.lz_ctx,
                        rep0: st.lz_rep[0],
                    };
                    let cost = lit + self.rep0_after_literal(ctx, len2);
                    let to = cur + 1 + len2;
                    reach(&mut self.nodes, &mut end, to);
                    let before = [LzmsItem::literal(buf[pos]), LzmsItem::default()];
                    let item = LzmsItem::lz_rep(len2 as u32, 0);
                    relax(&mut self.nodes, to, cost, item, before, 1);
                }
            }

            // Step: the cheapest arrival here is final; derive its state.
            cur += 1;
            let node = self.nodes.arrival[cur];
            let before = &node.before[..usize::from(node.num_before)];
            let from =
                cur - node.item.len as usize - before.iter().map(|b| b.len as usize).sum::<usize>();
            let mut state = self.nodes.state[from];
            for &b in before.iter().rev() {
                state.apply(b);
            }
            state.apply(node.item);
            self.nodes.state[cur] = state;
            if cur == end || cur == STRETCH {
                self.code_path(s, cur);
                debug_assert_eq!(self.coder.st, state);
                return start + cur;
            }
        }
    }

    /// The cost of a literal (contexts `ctx` before it) and then repeat 0 for `len` bytes.
    #[inline(always)]
    fn rep0_after_literal(&self, ctx: GapContexts, len: usize) -> u32 {
        let d = &self.coder.d;
        let main_lit = next_state::<16>(ctx.main, 0);
        bit1(&d.main[usize::from(main_lit)])
            + bit0(&d.matched[usize::from(ctx.matched)])
            + bit1(&d.lz[usize::from(ctx.lz)])
            + bit0(&d.lz_rep[0][usize::from(ctx.rep0)])
            + self.len_cost[len]
    }

    /// After `first` (an LZ match at `off`, costing `cost` up to its end), offers a literal
    /// and a repeat of the same offset, if the bytes after the literal repeat.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn gap_step(
        &mut self,
        buf: &[u8],
        pos: usize,
        cur: usize,
        end: &mut usize,
        first: LzmsItem,
        off: usize,
        cost: u32,
        ctx: GapContexts,
    ) {
        let len = first.len as usize;
        let g = pos + len + 1;
        if buf[g] != buf[g - off] || buf[g + 1] != buf[g + 1 - off] {
            return;
        }
        let len2 = match_len(buf, g - off, g, 2, self.p.nice.min(buf.len() - g));
        let lit = buf[pos + len];
        let cost = cost
            + bit0(&self.coder.d.main[usize::from(ctx.main)])
            + (u32::from(self.coder.literal.lens()[usize::from(lit)]) << 6)
            + self.rep0_after_literal(ctx, len2);
        let to = cur + len + 1 + len2;
        reach(&mut self.nodes, end, to);
        let before = [LzmsItem::literal(lit), first];
        relax(
            &mut self.nodes,
            to,
            cost,
            LzmsItem::lz_rep(len2 as u32, 0),
            before,
            2,
        );
    }
}

/// The binary trees' search, out of line: inlined into the parse, the walk's state
/// competes with the parse's for registers. The matches go into `out` after its first `n`
/// (a fixed array, so no push checks for capacity); returns the new count.
#[inline(never)]
fn tree_matches(
    bt: &mut BinaryTrees<Large>,
    buf: &[u8],
    pos: usize,
    probe: Probe,
    out: &mut [Match],
    n: usize,
) -> usize {
    let mut sink = Cursor { buf: out, n };
    bt.matches(buf, pos, probe, &mut sink);
    sink.n
}

/// Decision contexts for a literal and a repeat-0 match that follow (see
/// [`LzmsEncoder::rep0_after_literal`]).
#[derive(Clone, Copy)]
struct GapContexts {
    main: u8,
    matched: u8,
    lz: u8,
    rep0: u8,
}

const NO: [LzmsItem; 2] = [LzmsItem { len: 0, src: 0 }; 2];

/// Makes nodes up to `to` reachable (unreached so far).
#[inline(always)]
fn reach(nodes: &mut Nodes, end: &mut usize, to: usize) {
    if *end < to {
        nodes.cost[*end + 1..=to].fill(INFINITE);
        *end = to;
    }
}

/// The cost of the repeat-index decisions for index `r`.
#[inline(always)]
fn rep_cost(probs: &[[Probability; 64]; 2], states: [u8; 2], r: usize) -> u32 {
    let first = &probs[0][usize::from(states[0])];
    if r == 0 {
        return bit0(first);
    }
    let second = &probs[1][usize::from(states[1])];
    bit1(first) + if r == 1 { bit0(second) } else { bit1(second) }
}

/// Offers `item(l)` at cost `base + len_cost[l]` for every length `l` in `from..=to`.
///
/// Runs are short (about two lengths per explicit match), so the setup counts: the node
/// windows are fixed-size arrays from `cur` (one bounds check each), indexed by the length
/// as the cost table is, and an arrival is located only when its node improves.
#[inline(always)]
fn relax_run(
    nodes: &mut Nodes,
    len_cost: &[u32; MAX_NICE + 1],
    cur: usize,
    from: usize,
    to: usize,
    base: u32,
    item: impl Fn(u32) -> LzmsItem,
) {
    let to = to.min(MAX_NICE);
    let Some(costs) = nodes
        .cost
        .get_mut(cur..)
        .and_then(|c| c.first_chunk_mut::<{ MAX_NICE + 1 }>())
    else {
        unreachable!("the node array covers the longest match from every position")
    };
    for l in from..to + 1 {
        let cost = base + len_cost[l];
        if cost < costs[l] {
            costs[l] = cost;
            let a = &mut nodes.arrival[cur + l];
            a.item = item(l as u32);
            a.num_before = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::lzms::LzmsDecoder;
    use super::*;

    fn round_trip(level: u32, data: &[u8]) -> usize {
        let mut e = LzmsEncoder::new(Level(level), data.len().max(1)).unwrap();
        let mut out = vec![0u8; data.len() + 64];
        let n = e.compress(data, &mut out).expect("fits");
        let mut back = vec![0u8; data.len()];
        LzmsDecoder::new_boxed()
            .decompress(&out[..n], &mut back)
            .expect("decodes");
        let first_bad = back.iter().zip(data).position(|(a, b)| a != b);
        assert_eq!(first_bad, None, "level {level}, {} bytes", data.len());
        n
    }

    #[test]
    fn small_inputs_round_trip() {
        let mut x = 1u32;
        let random: Vec<u8> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for level in [20, 50, 100] {
            for len in [1, 2, 3, 4, 5, 17, 100, 1000, 5000] {
                round_trip(level, &random[..len]);
                round_trip(level, &b"abcabcabd".repeat(600)[..len]);
            }
        }
    }
}
