//! The data path: a batch of received frames in, per-port transmit actions out.
//!
//! [`Bridge::process`] takes a slice of [`RxFrame`]s and fills a [`TxBatch`]. Each
//! [`TxAction`] names an egress port and either the received frame plus an [`Edit`] (nothing,
//! a TCI rewrite, a tag push or a tag pop: the caller copies at most once, while writing into
//! its transmit buffer, and not at all for [`Edit::Unchanged`]) or bytes the bridge built in
//! the batch's arena (software checksum or segmentation, BPDUs). Frames are handled in
//! chunks of 32: a first pass reads the headers, hashes the source and destination keys and
//! prefetches their table slots; a second pass runs the pipeline:
//!
//! ```text
//! port up? ─ BPDU? ─ valid source ─ size ─ VLAN classify ─ spoof guard ─ DHCP/router guard
//!   ─ learn ─ learning-state stop ─ reserved-address filter ─ lookup ─ unicast / flood
//!   ─ per egress port: state, VLAN egress set, flood knobs, tag edit, MTU, offloads ─ mirror
//! ```
//!
//! The second pass first offers each frame to an express lane (`Bridge::express`): known
//! unicast between two forwarding ports, or a frame to flood, with nothing to drop, mirror
//! or offload. It makes all its tests before it changes anything and hands every other
//! frame to the whole pipeline, which stays out of line. A unit test runs random ports and
//! traffic through both ways and requires identical actions, drops, counters and tables.
//!
//! After warm-up (the batch's vectors have reached their working sizes) nothing here
//! allocates.

use alloc::vec::Vec;

use crate::bridge::{Bridge, FloodEntry, PortHot, VidPorts};
use crate::fdb::{pack, prefetch, Learn};
use crate::features::{inspect, DropReason, GuardHit, PortStats, VlanStats};
use crate::frame::{EtherType, Tci, HEADER_LEN, MAX_TAGS, TAG_LEN};
use crate::offload::{fill_l4_checksum, TcpSegmenter};
use crate::port::{PortId, PortState};
use crate::stp::Bpdu;
use crate::vlan::{Edit, VlanDrop};

/// Offload work a frame still needs (set by the sender, e.g. a guest's NDIS OOB data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Offload {
    /// The TCP/UDP checksum is not filled in yet.
    pub checksum: bool,
    /// Non-zero: the frame is one large TCP segment to be cut into frames of this MSS.
    pub lso_mss: u16,
}

/// A received frame.
#[derive(Clone, Copy, Debug)]
pub struct RxFrame<'a> {
    /// Ingress port.
    pub port: PortId,
    /// The frame, from the destination address on, without FCS.
    pub data: &'a [u8],
    /// Pending offload work.
    pub offload: Offload,
}

impl<'a> RxFrame<'a> {
    /// A frame with no pending offloads.
    pub fn new(port: PortId, data: &'a [u8]) -> Self {
        Self {
            port,
            data,
            offload: Offload::default(),
        }
    }
}

/// What to transmit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxData {
    /// The received frame with an edit applied.
    Frame(Edit),
    /// Bytes the bridge built: entry `n` of [`TxBatch::segment`] (a range of the arena).
    Arena(u32),
}

/// One frame to transmit on one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxAction {
    /// Egress port ([`PortId::LOCAL`] for frames to the switch's own address, and for
    /// broadcasts and multicasts of the VLANs it belongs to).
    pub port: PortId,
    /// Index of the received frame in the `process` call ([`GENERATED`] for BPDUs).
    pub frame: u32,
    /// The bytes.
    pub data: TxData,
}

const _: () = assert!(size_of::<TxAction>() == 16);

/// [`TxAction::frame`] of frames the bridge generated itself.
pub const GENERATED: u32 = u32::MAX;

/// The output of [`Bridge::process`] and [`Bridge::tick`]; reuse one across calls.
#[derive(Clone, Debug, Default)]
pub struct TxBatch {
    pub(crate) actions: Vec<TxAction>,
    pub(crate) arena: Vec<u8>,
    pub(crate) segments: Vec<(u32, u32)>,
    pub(crate) drops: Vec<(u32, DropReason)>,
}

impl TxBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the contents, keeping the storage.
    pub fn clear(&mut self) {
        self.actions.clear();
        self.arena.clear();
        self.segments.clear();
        self.drops.clear();
    }

    /// The transmit actions, in order.
    pub fn actions(&self) -> &[TxAction] {
        &self.actions
    }

    /// Received frames dropped as a whole: (frame index, reason).
    pub fn drops(&self) -> &[(u32, DropReason)] {
        &self.drops
    }

    /// The bytes of [`TxData::Arena`]`(n)`.
    pub fn segment(&self, n: u32) -> Option<&[u8]> {
        let &(start, len) = self.segments.get(n as usize)?;
        self.arena.get(start as usize..(start + len) as usize)
    }

    /// Offload work the action's egress port still has to do: the received frame's request
    /// when it is passed on as is (the port advertised the capability), nothing for bytes the
    /// bridge built.
    pub fn offload(&self, a: &TxAction, frames: &[RxFrame<'_>]) -> Offload {
        match a.data {
            TxData::Frame(_) => frames
                .get(a.frame as usize)
                .map_or_else(Offload::default, |f| f.offload),
            TxData::Arena(_) => Offload::default(),
        }
    }

    /// The action's bytes without copying, when no edit is needed (unchanged or arena).
    pub fn borrowed<'a>(&'a self, a: &TxAction, frames: &[RxFrame<'a>]) -> Option<&'a [u8]> {
        match a.data {
            TxData::Frame(Edit::Unchanged) => frames.get(a.frame as usize).map(|f| f.data),
            TxData::Frame(_) => None,
            TxData::Arena(n) => self.segment(n),
        }
    }

    /// Length of the action's bytes (0 if `frames` is not the batch that produced it).
    pub fn len_of(&self, a: &TxAction, frames: &[RxFrame<'_>]) -> usize {
        match a.data {
            TxData::Frame(e) => frames
                .get(a.frame as usize)
                .map_or(0, |f| e.output_len(f.data.len())),
            TxData::Arena(n) => self.segment(n).map_or(0, <[u8]>::len),
        }
    }

    /// Writes the action's bytes into `out`; returns the length, or `None` if `out` is too
    /// small or `frames` is not the batch that produced the action.
    pub fn write(&self, a: &TxAction, frames: &[RxFrame<'_>], out: &mut [u8]) -> Option<usize> {
        match a.data {
            TxData::Frame(e) => e.apply(frames.get(a.frame as usize)?.data, out),
            TxData::Arena(_) => {
                let b = self.borrowed(a, frames)?;
                out.get_mut(..b.len())?.copy_from_slice(b);
                Some(b.len())
            }
        }
    }

    /// The action's bytes in a new vector.
    pub fn to_vec(&self, a: &TxAction, frames: &[RxFrame<'_>]) -> Vec<u8> {
        let mut v = alloc::vec![0; self.len_of(a, frames)];
        let n = self.write(a, frames, &mut v).unwrap_or(0);
        v.truncate(n);
        v
    }

    /// Appends a generated frame written by `f` into the arena (f returns its length).
    pub(crate) fn push_generated(&mut self, port: PortId, f: impl FnOnce(&mut [u8]) -> usize) {
        let start = self.arena.len();
        self.arena.resize(start + 128, 0);
        let n = f(&mut self.arena[start..]);
        self.arena.truncate(start + n);
        if n > 0 {
            self.push_segment(port, GENERATED, start, n);
        }
    }

    /// Records arena bytes `start..start + len` as a transmit action.
    pub(crate) fn push_segment(&mut self, port: PortId, frame: u32, start: usize, len: usize) {
        self.actions.push(TxAction {
            port,
            frame,
            data: TxData::Arena(self.segments.len() as u32),
        });
        self.segments.push((start as u32, len as u32));
    }
}

const CHUNK: usize = 32;

/// Keys and hashes computed in the first pass over a chunk.
#[derive(Clone, Copy, Default)]
struct Pre {
    /// The addresses (valid for frames of at least [`HEADER_LEN`] bytes from an existing
    /// port: the only ones the second pass reads them for).
    src: u64,
    dst: u64,
    src_key: u64,
    src_hash: u64,
    dst_key: u64,
    dst_hash: u64,
}

#[inline(always)]
fn mac_at(d: &[u8], off: usize) -> u64 {
    u64::from_be_bytes([
        0,
        0,
        d[off],
        d[off + 1],
        d[off + 2],
        d[off + 3],
        d[off + 4],
        d[off + 5],
    ])
}

const BROADCAST: u64 = 0xffff_ffff_ffff;
const BRIDGE_GROUP: u64 = 0x0180_c200_0000;

/// How a flooded frame is classed for the per-port flood knobs (its bit in the port's flood
/// mask).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Flood {
    Unknown = 1,
    Broadcast = 2,
    Multicast = 4,
}

/// Counts tags of any TPID at the front of a frame (at most [`MAX_TAGS`]).
fn count_tags(d: &[u8]) -> usize {
    crate::frame::network_offset(d).map_or(MAX_TAGS, |(_, off)| (off - HEADER_LEN) / TAG_LEN)
}

/// Everything about the received frame the egress side needs.
struct Ingress<'f> {
    idx: u32,
    rx: &'f RxFrame<'f>,
    tag: Option<(u16, Tci)>,
    tci: Tci,
    /// The frame asks for checksum or segmentation offload.
    offload: bool,
}

impl Bridge {
    /// Forwards a batch of frames received at `now` (ms). `out` is cleared first.
    pub fn process(&mut self, frames: &[RxFrame<'_>], now: u64, out: &mut TxBatch) {
        out.clear();
        self.now = now;
        // Mirroring needs the whole pipeline's view of each frame's copies.
        let express = self.mirror_sources == 0 || self.monitors.is_empty();
        #[cfg(test)]
        let express = express && !self.plain;
        let mut pre = [Pre::default(); CHUNK];
        for f in frames.iter().take(CHUNK) {
            prefetch::read(f.data.as_ptr().cast());
        }
        for (c, chunk) in frames.chunks(CHUNK).enumerate() {
            for (p, f) in pre.iter_mut().zip(chunk) {
                *p = self.prepare(f);
            }
            for f in frames.iter().skip((c + 1) * CHUNK).take(CHUNK) {
                prefetch::read(f.data.as_ptr().cast());
            }
            for (j, (f, p)) in chunk.iter().zip(&pre).enumerate() {
                let idx = (c * CHUNK + j) as u32;
                if !(express && self.express(idx, f, p, now, out)) {
                    self.forward(idx, f, p, now, out);
                }
            }
        }
        if !self.stp_out.is_empty() {
            self.flush_stp_out(out);
        }
    }

    /// First pass: the (FID, MAC) keys the frame will use if it is admitted, hashed and
    /// prefetched.
    #[inline(always)]
    fn prepare(&self, f: &RxFrame<'_>) -> Pre {
        let d = f.data;
        let Some(Some(port)) = self.ports.get(f.port.0 as usize) else {
            return Pre::default();
        };
        if d.len() < HEADER_LEN {
            return Pre::default();
        }
        let mut vid = port.cfg.vlan.pvid.unwrap_or(0);
        if u16::from_be_bytes([d[12], d[13]]) == port.cfg.tpid.0 && d.len() >= 16 {
            let v = u16::from_be_bytes([d[14], d[15]]) & 0x0fff;
            if v != 0 {
                vid = v;
            }
        }
        let fid = self.fid[usize::from(vid & 0x0fff)];
        let fid_bits = pack(fid, crate::frame::MacAddr::ZERO);
        let src = mac_at(d, 6);
        let src_key = fid_bits | src;
        let src_hash = self.fdb.hash(src_key);
        self.fdb.prefetch(src_hash);
        let dst = mac_at(d, 0);
        let (dst_key, dst_hash) = if dst >> 40 & 1 == 0 {
            let k = fid_bits | dst;
            let h = self.fdb.hash(k);
            self.fdb.prefetch(h);
            (k, h)
        } else {
            (0, 0)
        };
        Pre {
            src,
            dst,
            src_key,
            src_hash,
            dst_key,
            dst_hash,
        }
    }

    /// The express lane of the second pass: a frame to a known unicast address in its VLAN
    /// on another port, or one to flood (broadcast, multicast other than the reserved
    /// addresses, unknown unicast), received on a port with no guard that reads past the
    /// Ethernet header, with nothing to drop, mirror or offload. It reaches the same
    /// decisions and counters as [`forward`](Self::forward) with fewer branches: every test
    /// comes before the first change, and a frame that fails one returns `false` with
    /// nothing changed, for `forward` to take from the start.
    ///
    /// The destination is looked up before the source is learned (`forward` learns first).
    /// Learning one key never changes what a lookup of another returns: it adds, refreshes,
    /// moves or (at a port's limit) removes only that key's entry, and a removal's backward
    /// shift moves other entries between slots without changing their port or stamp. A frame
    /// whose source is its destination is left to `forward`. So the order does not show.
    #[inline(always)]
    fn express(
        &mut self,
        idx: u32,
        rx: &RxFrame<'_>,
        pre: &Pre,
        now: u64,
        out: &mut TxBatch,
    ) -> bool {
        let d = rx.data;
        let pi = rx.port.0 as usize;
        // A removed port's record is not `express`.
        let Some(h) = self.hot.get(pi) else {
            return false;
        };
        // `pre` holds the addresses only for frames with a whole header.
        if !h.express || d.len() < HEADER_LEN || rx.offload != Offload::default() {
            return false;
        }
        let (dst, src) = (pre.dst, pre.src);
        // Invalid sources (group or null) and frames to their own source take the whole
        // pipeline.
        if src >> 40 & 1 != 0
            || src == 0
            || src == dst
            || d.len() > h.max_len[0] as usize
            || (h.guard != u64::MAX && src != h.guard)
        {
            return false;
        }
        let tpid = h.tpid;
        let (tag, tci) = if u16::from_be_bytes([d[12], d[13]]) == tpid {
            if d.len() < HEADER_LEN + TAG_LEN {
                return false;
            }
            let t = Tci(u16::from_be_bytes([d[14], d[15]]));
            // Clear for VIDs 0 and 4095 and where classification would drop the frame.
            if !self
                .vid_ports
                .has(usize::from(t.vid()), VidPorts::INGRESS, pi)
            {
                return false;
            }
            (Some((tpid, t)), t)
        } else if h.untagged_ok {
            (None, Tci::new(h.default_pcp, false, h.pvid))
        } else {
            return false;
        };
        let (learning, hairpin, len) = (h.learning, h.hairpin, d.len() as u64);
        let vid = usize::from(tci.vid());
        let target = if dst >> 40 & 1 != 0 {
            // The reserved 01-80-C2-00-00-0x (BPDUs among them) take the whole pipeline.
            if dst >> 8 == BRIDGE_GROUP >> 8 && dst & 0xf0 == 0 {
                return false;
            }
            Err(if dst == BROADCAST {
                Flood::Broadcast
            } else {
                Flood::Multicast
            })
        } else if let Some(q) = self.fdb.lookup_hashed(pre.dst_key, pre.dst_hash, now) {
            let qi = q as usize;
            // The local port's index is not a port's; a removed port is not forwarding.
            let Some(hq) = self.hot.get(qi) else {
                return false;
            };
            let egress = self.vid_ports.egress(vid, qi);
            let Some(untagged) = egress else {
                return false;
            };
            if qi == pi || !hq.forwarding || d.len() + TAG_LEN > hq.max_len[0] as usize {
                return false;
            }
            Ok((q, Edit::for_egress(tag, tci, untagged, hq.tpid)))
        } else {
            Err(Flood::Unknown)
        };
        if learning {
            let learned = self
                .fdb
                .learn_hashed(pre.src_key, pre.src_hash, pi as u32, now);
            // A refresh, the common outcome, counts nothing.
            if learned != Learn::Refreshed {
                if let Some(Some(p)) = self.ports.get_mut(pi) {
                    count_learn(&mut p.stats, learned);
                }
            }
        }
        if let Some(h) = self.hot.get_mut(pi) {
            h.rx_frames += 1;
            h.rx_bytes += len;
        }
        let vs = &mut self.vlan_stats[vid];
        vs.rx_frames += 1;
        vs.rx_bytes += len;
        match target {
            Ok((q, edit)) => {
                vs.tx_frames += 1;
                if let Some(hq) = self.hot.get_mut(q as usize) {
                    hq.tx_frames += 1;
                    hq.tx_bytes += len;
                }
                out.actions.push(TxAction {
                    port: PortId(q),
                    frame: idx,
                    data: TxData::Frame(edit),
                });
            }
            Err(kind) => {
                let ing = Ingress {
                    idx,
                    rx,
                    tag,
                    tci,
                    offload: false,
                };
                self.flood(pi, hairpin, kind, &ing, out);
            }
        }
        #[cfg(test)]
        {
            self.express_hits += 1;
        }
        true
    }

    /// Second pass: the whole pipeline for one frame.
    #[inline(never)]
    fn forward(&mut self, idx: u32, rx: &RxFrame<'_>, pre: &Pre, now: u64, out: &mut TxBatch) {
        let d = rx.data;
        let pi = rx.port.0 as usize;
        let Some(Some(port)) = self.ports.get_mut(pi) else {
            out.drops.push((idx, DropReason::NoSuchPort));
            return;
        };
        port.stats.rx_frames += 1;
        port.stats.rx_bytes += d.len() as u64;
        macro_rules! drop_frame {
            ($port:expr, $r:expr) => {{
                let r = $r;
                $port.stats.drops[r as usize] += 1;
                out.drops.push((idx, r));
                return;
            }};
        }
        if d.len() < HEADER_LEN {
            drop_frame!(port, DropReason::Malformed);
        }
        if port.state == PortState::Disabled {
            drop_frame!(port, DropReason::PortState);
        }
        // Read in the first pass (this frame has a port and a whole header).
        let (dst, src) = (pre.dst, pre.src);
        debug_assert_eq!((dst, src), (mac_at(d, 0), mac_at(d, 6)));
        if dst == BRIDGE_GROUP && (port.cfg.security.bpdu_guard || self.stp.is_some()) {
            if port.cfg.security.bpdu_guard || !port.cfg.stp {
                drop_frame!(port, DropReason::BpduGuard);
            }
            port.stats.bpdus += 1;
            self.receive_bpdu(pi, d, now);
            return;
        }
        if !matches!(port.state, PortState::Forwarding | PortState::Learning) {
            drop_frame!(port, DropReason::PortState);
        }
        if src >> 40 & 1 != 0 || src == 0 {
            drop_frame!(port, DropReason::InvalidSource);
        }
        let tpid = port.cfg.tpid.0;
        let tag = if u16::from_be_bytes([d[12], d[13]]) == tpid {
            if d.len() < HEADER_LEN + TAG_LEN {
                drop_frame!(port, DropReason::Malformed);
            }
            Some(Tci(u16::from_be_bytes([d[14], d[15]])))
        } else {
            None
        };
        // A large TCP send still to be cut (LSO) may exceed the MTU; nothing else may.
        if d.len() > port.max_len[0]
            && d.len() > port.max_len[count_tags(d)]
            && (rx.offload.lso_mss == 0 || TcpSegmenter::new(d, rx.offload.lso_mss).is_err())
        {
            drop_frame!(port, DropReason::Oversize);
        }
        let tci = match port.cfg.vlan.classify(tag, port.cfg.default_pcp) {
            Ok(t) => t,
            Err(e) => drop_frame!(
                port,
                match e {
                    VlanDrop::ReservedVid => DropReason::ReservedVid,
                    VlanDrop::FrameType => DropReason::FrameType,
                    VlanDrop::NotMember => DropReason::NotMember,
                    VlanDrop::NoPvid => DropReason::NoPvid,
                }
            ),
        };
        if port.guard != u64::MAX && src != port.guard {
            drop_frame!(port, DropReason::MacSpoofing);
        }
        if port.inspect {
            let s = port.cfg.security;
            match inspect(d, s.dhcp_guard, s.router_guard) {
                Some(GuardHit::DhcpServer) => drop_frame!(port, DropReason::DhcpGuard),
                Some(GuardHit::Router) => drop_frame!(port, DropReason::RouterGuard),
                None => {}
            }
        }
        let vid = tci.vid();
        let vs = &mut self.vlan_stats[usize::from(vid)];
        vs.rx_frames += 1;
        vs.rx_bytes += d.len() as u64;
        if port.cfg.learning {
            let learned = self
                .fdb
                .learn_hashed(pre.src_key, pre.src_hash, pi as u32, now);
            count_learn(&mut port.stats, learned);
        }
        if port.state == PortState::Learning {
            drop_frame!(port, DropReason::Learning);
        }
        if dst >> 8 == BRIDGE_GROUP >> 8 && dst & 0xf0 == 0 {
            let x = (dst & 0x0f) as u16;
            let relay = match x {
                0 => true,
                1 => false,
                _ => port.cfg.group_fwd_mask >> x & 1 != 0,
            };
            if !relay {
                drop_frame!(port, DropReason::Reserved);
            }
        }
        let hairpin = port.cfg.hairpin;
        let ing = Ingress {
            idx,
            rx,
            tag: tag.map(|t| (tpid, t)),
            tci,
            offload: rx.offload.checksum || rx.offload.lso_mss != 0,
        };
        let a0 = out.actions.len();
        let vi = usize::from(vid);
        if dst >> 40 & 1 != 0 {
            let kind = if dst == BROADCAST {
                Flood::Broadcast
            } else {
                Flood::Multicast
            };
            self.flood(pi, hairpin, kind, &ing, out);
        } else {
            match self.fdb.lookup_hashed(pre.dst_key, pre.dst_hash, now) {
                Some(q) if Bridge::is_local(q) => out.actions.push(self.to_local(&ing)),
                Some(q) => {
                    let reason = if q as usize == pi && !hairpin {
                        Some(DropReason::Reflection)
                    } else {
                        match (self.ports.get(q as usize), self.hot.get_mut(q as usize)) {
                            (Some(Some(qp)), Some(h))
                                if h.forwarding && qp.cfg.vlan.egress.contains(vid) =>
                            {
                                let entry = FloodEntry {
                                    port: q,
                                    tpid: qp.cfg.tpid.0,
                                    untagged: qp.cfg.vlan.untagged.contains(vid),
                                };
                                let vs = &mut self.vlan_stats[vi];
                                emit(h, entry, &ing, vs, &mut self.scratch, out);
                                None
                            }
                            _ => Some(DropReason::EgressFilter),
                        }
                    };
                    if let Some(r) = reason {
                        if let Some(Some(p)) = self.ports.get_mut(pi) {
                            drop_frame!(p, r);
                        }
                    }
                }
                None => self.flood(pi, hairpin, Flood::Unknown, &ing, out),
            }
        }
        if self.mirror_sources > 0 && !self.monitors.is_empty() {
            self.mirror(pi, a0, &ing, out);
        }
    }

    /// Sends a copy to every member of the frame's VLAN that takes this kind of flood. Out of
    /// line, so that the express lane's unicast path keeps its registers.
    #[inline(never)]
    fn flood(
        &mut self,
        pi: usize,
        hairpin: bool,
        kind: Flood,
        ing: &Ingress<'_>,
        out: &mut TxBatch,
    ) {
        let vid = usize::from(ing.tci.vid());
        let bit = kind as u8;
        let len = ing.rx.data.len();
        #[cfg(test)]
        {
            self.floods[0] += 1;
        }
        if !ing.offload && len + TAG_LEN <= self.min_max_len as usize && self.uniform_tpid != 0 {
            #[cfg(test)]
            {
                self.floods[1] += 1;
            }
            // No copy can need a size check or a software offload (the common case): every
            // member's action is written, and kept or overwritten without a branch on the
            // member; the counters move by the same 0 or 1.
            let list = &self.flood[vid];
            let len = len as u64;
            // Every port has the same TPID here, so there are two edits: untagged and tagged.
            let data = [false, true]
                .map(|u| TxData::Frame(Edit::for_egress(ing.tag, ing.tci, u, self.uniform_tpid)));
            let masks = list.last().is_none_or(|e| e.port < 64);
            #[cfg(test)]
            let masks = masks && !self.plain;
            if masks {
                // Every member is below 64: the ports that take the copy are one mask.
                let egress = self.vid_ports.low(vid, VidPorts::EGRESS);
                let untagged = self.vid_ports.low(vid, VidPorts::UNTAGGED);
                let own = if hairpin {
                    0
                } else {
                    1u64.checked_shl(pi as u32).unwrap_or(0)
                };
                let kind = bit.trailing_zeros() as usize & 3;
                let flood = self.flood_ports.get(kind).copied().unwrap_or(0);
                let mut m = egress & self.fwd_ports & flood & !own;
                let n = m.count_ones();
                out.actions.reserve(n as usize);
                while m != 0 {
                    let q = m.trailing_zeros();
                    m &= m - 1;
                    out.actions.push(TxAction {
                        port: PortId(q),
                        frame: ing.idx,
                        data: data[(untagged >> q & 1) as usize],
                    });
                    if let Some(h) = self.hot.get_mut(q as usize) {
                        h.tx_frames += 1;
                        h.tx_bytes += len;
                    }
                }
                self.vlan_stats[vid].tx_frames += u64::from(n);
            } else {
                out.actions.reserve(list.len());
                let dst = out.actions.spare_capacity_mut();
                // Locals, so the loop does not reload them after each counter store.
                let hot = &mut self.hot[..];
                let (frame, pi) = (ing.idx, pi as u32);
                let mut k = 0;
                for &e in list {
                    let Some(h) = hot.get_mut(e.port as usize) else {
                        continue;
                    };
                    let data = data[usize::from(e.untagged)];
                    let keep = (e.port != pi || hairpin) & h.forwarding & (h.flood & bit != 0);
                    if let Some(slot) = dst.get_mut(k) {
                        slot.write(TxAction {
                            port: PortId(e.port),
                            frame,
                            data,
                        });
                    }
                    k += usize::from(keep);
                    h.tx_frames += u64::from(keep);
                    h.tx_bytes += len & u64::from(keep).wrapping_neg();
                }
                let k = k.min(dst.len());
                // SAFETY: `k` is at most the spare capacity, and each of the first `k` spare
                // slots was written above (slot `j` is written while `k == j`, before `k` can
                // pass it).
                #[allow(unsafe_code)]
                unsafe {
                    out.actions.set_len(out.actions.len() + k)
                };
                self.vlan_stats[vid].tx_frames += k as u64;
            }
        } else {
            let vs = &mut self.vlan_stats[vid];
            out.actions.reserve(self.flood[vid].len());
            for &e in &self.flood[vid] {
                if e.port as usize == pi && !hairpin {
                    continue;
                }
                let Some(h) = self.hot.get_mut(e.port as usize) else {
                    continue;
                };
                if h.forwarding && h.flood & bit != 0 {
                    emit(h, e, ing, vs, &mut self.scratch, out);
                }
            }
        }
        if kind != Flood::Unknown && self.local_vlans.contains(ing.tci.vid()) {
            // The switch itself is a member: it takes broadcasts and multicasts.
            out.actions.push(self.to_local(ing));
        }
        if let Some(Some(p)) = self.ports.get_mut(pi) {
            p.stats.flooded += 1;
        }
    }

    /// The copy for the switch itself: tagged (802.1Q) in the VLANs set by
    /// [`set_local_tagged`](Bridge::set_local_tagged), untagged in the others, so that the
    /// local stack always knows the frame's VLAN.
    fn to_local(&self, ing: &Ingress<'_>) -> TxAction {
        let tagged = self.local_tagged.contains(ing.tci.vid());
        TxAction {
            port: PortId::LOCAL,
            frame: ing.idx,
            data: TxData::Frame(Edit::for_egress(
                ing.tag,
                ing.tci,
                !tagged,
                EtherType::VLAN.0,
            )),
        }
    }

    /// Adds one unchanged copy per monitor port when the frame touched a mirror source.
    #[cold]
    fn mirror(&mut self, pi: usize, a0: usize, ing: &Ingress<'_>, out: &mut TxBatch) {
        let is_source = |q: u32| self.hot.get(q as usize).is_some_and(|h| h.mirror_source);
        if !is_source(pi as u32) && !out.actions[a0..].iter().any(|a| is_source(a.port.0)) {
            return;
        }
        for &m in &self.monitors {
            if m as usize == pi || out.actions[a0..].iter().any(|a| a.port.0 == m) {
                continue;
            }
            let Some(h) = self.hot.get_mut(m as usize) else {
                continue;
            };
            if !h.forwarding {
                continue;
            }
            // The frame as received, held to the monitor's MTU and offloads like any copy.
            transmit(h, m, Edit::Unchanged, ing, &mut self.scratch, out);
        }
    }

    #[cold]
    fn receive_bpdu(&mut self, pi: usize, d: &[u8], now: u64) {
        let Ok(bpdu) = Bpdu::parse_frame(d) else {
            return;
        };
        if let Some(stp) = self.stp.as_mut() {
            let o = &mut self.stp_out;
            stp.receive(pi, &bpdu, now, &mut |p, b| o.push((p, b)));
        }
        self.sync_stp_states();
    }
}

/// Counts what learning a frame's source did in its port's counters.
fn count_learn(stats: &mut PortStats, learned: Learn) {
    match learned {
        Learn::Refreshed | Learn::Pinned | Learn::Disabled => {}
        Learn::Learned => stats.learned += 1,
        Learn::Moved(_) => stats.moves += 1,
        Learn::Refused(_) => stats.learn_refused += 1,
    }
}

/// Transmits one copy on port `e.port`: egress tagging, MTU, software offloads, counters.
#[inline(always)]
fn emit(
    h: &mut PortHot,
    e: FloodEntry,
    ing: &Ingress<'_>,
    vs: &mut VlanStats,
    scratch: &mut Vec<u8>,
    out: &mut TxBatch,
) {
    let edit = Edit::for_egress(ing.tag, ing.tci, e.untagged, e.tpid);
    if transmit(h, e.port, edit, ing, scratch, out) {
        vs.tx_frames += 1;
    }
}

/// Transmits the received frame with `edit` on port `q` (whose hot state is `h`): the MTU
/// check (a frame still to be cut by LSO is exempt: its segments are sized to fit), software
/// offloads when the port lacks the capability, and the port's counters. Whether a copy went.
#[inline(always)]
fn transmit(
    h: &mut PortHot,
    q: u32,
    edit: Edit,
    ing: &Ingress<'_>,
    scratch: &mut Vec<u8>,
    out: &mut TxBatch,
) -> bool {
    let d = ing.rx.data;
    let off = ing.rx.offload;
    if d.len() + TAG_LEN > h.max_len[0] as usize && off.lso_mss == 0 && oversize(h, edit, d) {
        h.tx_oversize += 1;
        return false;
    }
    if ing.offload
        && ((off.lso_mss != 0 && h.offloads & 2 == 0) || (off.checksum && h.offloads & 1 == 0))
    {
        let max_frame = h.max_len[out_tags(edit, d)] as usize;
        if software_offload(q, ing, edit, max_frame, scratch, out).is_err() {
            h.tx_offload += 1;
            return false;
        }
    } else {
        out.actions.push(TxAction {
            port: PortId(q),
            frame: ing.idx,
            data: TxData::Frame(edit),
        });
    }
    h.tx_frames += 1;
    h.tx_bytes += d.len() as u64;
    true
}

/// Whether the edited copy of `d` is longer than port `h` accepts.
#[cold]
fn oversize(h: &PortHot, edit: Edit, d: &[u8]) -> bool {
    edit.output_len(d.len()) > h.max_len[out_tags(edit, d)] as usize
}

/// How many tags the edited copy of `d` has (at most [`MAX_TAGS`]: the index of a port's
/// length limit).
fn out_tags(edit: Edit, d: &[u8]) -> usize {
    let tags = match edit {
        Edit::PushTag { .. } => count_tags(d) + 1,
        Edit::PopTag => count_tags(d).saturating_sub(1),
        _ => count_tags(d),
    };
    tags.min(MAX_TAGS)
}

/// Builds the copy for a port that cannot finish the frame's offloads: checksum filled in,
/// and cut into segments if LSO was asked for, of the requested MSS or less, so that none is
/// longer than `max_frame` (the egress port's limit).
#[cold]
fn software_offload(
    q: u32,
    ing: &Ingress<'_>,
    edit: Edit,
    max_frame: usize,
    scratch: &mut Vec<u8>,
    out: &mut TxBatch,
) -> Result<(), DropReason> {
    let d = ing.rx.data;
    scratch.clear();
    scratch.resize(edit.output_len(d.len()), 0);
    edit.apply(d, scratch).ok_or(DropReason::Offload)?;
    let mss = ing.rx.offload.lso_mss;
    let push = |out: &mut TxBatch, start: usize, len: usize| {
        out.push_segment(PortId(q), ing.idx, start, len);
    };
    if mss != 0 {
        let seg = TcpSegmenter::new(scratch, mss)
            .and_then(|s| s.fit(max_frame))
            .map_err(|_| DropReason::Offload)?;
        let a0 = out.actions.len();
        let s0 = out.segments.len();
        let base = out.arena.len();
        for i in 0..seg.count() {
            let start = out.arena.len();
            out.arena.resize(start + seg.segment_len(i), 0);
            if seg.write(i, &mut out.arena[start..]).is_err() {
                out.arena.truncate(base);
                out.actions.truncate(a0);
                out.segments.truncate(s0);
                return Err(DropReason::Offload);
            }
            push(out, start, out.arena.len() - start);
        }
    } else {
        fill_l4_checksum(scratch).map_err(|_| DropReason::Offload)?;
        let start = out.arena.len();
        out.arena.extend_from_slice(scratch);
        push(out, start, scratch.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
