//! Reference-model property test: a deliberately simple bridge (plain maps, one frame at a
//! time, written from the rules rather than from the engine) and the real engine get the same
//! random port configuration (VLAN mode, acceptable frames, filtering, learning, limits,
//! hairpin, spoof guard, forward mask, port state, flood knobs) and the same random sequence
//! of frames, clock advances, sweeps, configured entries and port replacements. After every step their outputs (egress port
//! and exact bytes, or the drop reason) and their forwarding tables must be identical.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vswitch_core::fdb::{EntryKind, FdbConfig};
use vswitch_core::features::DropReason;
use vswitch_core::frame::MacAddr;
use vswitch_core::port::PortState;
use vswitch_core::vlan::{AcceptableFrames, VlanConfig, VlanSet};
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, PortId, RxFrame, TxBatch};

// ---- the model ------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct MPort {
    pvid: Option<u16>,
    ingress: BTreeSet<u16>,
    egress: BTreeSet<u16>,
    untagged: BTreeSet<u16>,
    acceptable: AcceptableFrames,
    filtering: bool,
    learning: bool,
    limit: Option<u32>,
    hairpin: bool,
    guard: Option<[u8; 6]>,
    mask: u16,
    state: PortState,
    /// Flood knobs: 1 unknown unicast, 2 broadcast, 4 multicast.
    flood: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MEntry {
    port: u32,
    stamp: u64,
    kind: EntryKind,
}

const LOCAL: u32 = u32::MAX;

#[derive(Debug)]
struct Model {
    ports: BTreeMap<u32, MPort>,
    fdb: BTreeMap<(u16, [u8; 6]), MEntry>,
    fid: BTreeMap<u16, u16>,
    capacity: usize,
    learn_limit: usize,
    ageing: u64,
    /// VLANs the switch itself belongs to, and those it takes tagged.
    local_vlans: BTreeSet<u16>,
    local_tagged: BTreeSet<u16>,
}

type Output = Result<Vec<(u32, Vec<u8>)>, DropReason>;

impl Model {
    fn fid(&self, vid: u16) -> u16 {
        *self.fid.get(&vid).unwrap_or(&vid)
    }

    fn dynamic_on(&self, port: u32) -> u32 {
        self.fdb
            .values()
            .filter(|e| e.kind == EntryKind::Dynamic && e.port == port)
            .count() as u32
    }

    fn live(&self, e: &MEntry, now: u64) -> bool {
        e.kind != EntryKind::Dynamic || now - e.stamp < self.ageing
    }

    fn learn(&mut self, key: (u16, [u8; 6]), port: u32, now: u64) {
        let limit = self.ports[&port].limit.unwrap_or(u32::MAX);
        match self.fdb.get(&key).copied() {
            Some(e) if e.port == port => self.fdb.get_mut(&key).unwrap().stamp = now,
            Some(e) => match e.kind {
                EntryKind::Sticky | EntryKind::Local => {}
                EntryKind::Static => {
                    self.fdb.insert(
                        key,
                        MEntry {
                            port,
                            stamp: now,
                            ..e
                        },
                    );
                }
                EntryKind::Dynamic => {
                    if self.dynamic_on(port) >= limit {
                        self.fdb.remove(&key);
                    } else {
                        self.fdb.insert(
                            key,
                            MEntry {
                                port,
                                stamp: now,
                                ..e
                            },
                        );
                    }
                }
            },
            None => {
                let dynamic = self
                    .fdb
                    .values()
                    .filter(|e| e.kind == EntryKind::Dynamic)
                    .count();
                if self.ageing != 0
                    && self.fdb.len() < self.capacity
                    && dynamic < self.learn_limit
                    && self.dynamic_on(port) < limit
                {
                    let kind = EntryKind::Dynamic;
                    self.fdb.insert(
                        key,
                        MEntry {
                            port,
                            stamp: now,
                            kind,
                        },
                    );
                }
            }
        }
    }

    fn process(&mut self, port: u32, f: &[u8], now: u64) -> Output {
        if f.len() < 14 {
            return Err(DropReason::Malformed);
        }
        let p = self.ports[&port].clone();
        if p.state == PortState::Blocking {
            return Err(DropReason::PortState);
        }
        let dst: [u8; 6] = f[..6].try_into().unwrap();
        let src: [u8; 6] = f[6..12].try_into().unwrap();
        if src[0] & 1 == 1 || src == [0; 6] {
            return Err(DropReason::InvalidSource);
        }
        let tagged = f[12..14] == [0x81, 0x00];
        if tagged && f.len() < 18 {
            return Err(DropReason::Malformed);
        }
        let tci_in = if tagged {
            u16::from_be_bytes([f[14], f[15]])
        } else {
            0
        };
        let vid_in = tci_in & 0xfff;
        let (vid, tci) = if tagged && vid_in != 0 {
            if vid_in == 4095 {
                return Err(DropReason::ReservedVid);
            }
            if p.acceptable == AcceptableFrames::UntaggedOnly {
                return Err(DropReason::FrameType);
            }
            if p.filtering && !p.ingress.contains(&vid_in) {
                return Err(DropReason::NotMember);
            }
            (vid_in, tci_in)
        } else {
            if p.acceptable == AcceptableFrames::TaggedOnly {
                return Err(DropReason::FrameType);
            }
            let Some(pvid) = p.pvid else {
                return Err(DropReason::NoPvid);
            };
            (pvid, (tci_in & 0xf000) | pvid)
        };
        if p.guard.is_some_and(|m| m != src) {
            return Err(DropReason::MacSpoofing);
        }
        let fid = self.fid(vid);
        if p.learning {
            self.learn((fid, src), port, now);
        }
        if p.state == PortState::Learning {
            return Err(DropReason::Learning);
        }
        if dst[..5] == [0x01, 0x80, 0xc2, 0, 0] && dst[5] < 16 {
            let x = dst[5];
            let relay = x == 0 || x != 1 && p.mask >> x & 1 == 1;
            if !relay {
                return Err(DropReason::Reserved);
            }
        }
        let edit = |untagged: bool| -> Vec<u8> {
            let mut out = f[..12].to_vec();
            let rest = if tagged { &f[16..] } else { &f[12..] };
            if !untagged {
                out.extend_from_slice(&[0x81, 0x00]);
                out.extend_from_slice(&tci.to_be_bytes());
            }
            out.extend_from_slice(rest);
            if tagged && untagged && out.len() < 60 {
                out.resize(60, 0);
            }
            out
        };
        let egress = |q: u32| edit(self.ports[&q].untagged.contains(&vid));
        let to_local = || (LOCAL, edit(!self.local_tagged.contains(&vid)));
        let flood = |bit: u8| -> Output {
            let mut out: Vec<_> = self
                .ports
                .iter()
                .filter(|(q, qp)| {
                    qp.egress.contains(&vid)
                        && (**q != port || p.hairpin)
                        && qp.state == PortState::Forwarding
                        && qp.flood & bit != 0
                })
                .map(|(q, _)| (*q, egress(*q)))
                .collect();
            // Broadcasts and multicasts, not unknown unicast, reach a member switch.
            if bit != 1 && self.local_vlans.contains(&vid) {
                out.push(to_local());
            }
            Ok(out)
        };
        if dst == [0xff; 6] {
            return flood(2);
        }
        if dst[0] & 1 == 1 {
            return flood(4);
        }
        match self.fdb.get(&(fid, dst)) {
            Some(e) if self.live(e, now) => {
                if e.port == LOCAL {
                    Ok(vec![to_local()])
                } else if e.port == port && !p.hairpin {
                    Err(DropReason::Reflection)
                } else if self
                    .ports
                    .get(&e.port)
                    .is_some_and(|q| q.egress.contains(&vid) && q.state == PortState::Forwarding)
                {
                    Ok(vec![(e.port, egress(e.port))])
                } else {
                    Err(DropReason::EgressFilter)
                }
            }
            _ => flood(1),
        }
    }
}

// ---- random configurations and traces -------------------------------------------------------

#[derive(Clone, Debug)]
struct PortSpec {
    mode: u8,
    vids: [bool; 3],
    native: Option<u16>,
    acceptable: u8,
    filtering: bool,
    learning: bool,
    limit: Option<u32>,
    hairpin: bool,
    guard: Option<u8>,
    mask: u16,
    state: u8,
    flood: u8,
}

fn port_spec() -> impl Strategy<Value = PortSpec> {
    (
        (
            0u8..3,
            any::<[bool; 3]>(),
            proptest::option::of(1u16..4),
            0u8..4,
        ),
        (
            any::<bool>(),
            prop::bool::weighted(0.9),
            proptest::option::of(1u32..4),
        ),
        (
            prop::bool::weighted(0.2),
            proptest::option::weighted(0.2, 0u8..6),
            any::<u16>(),
            0u8..12,
            prop_oneof![3 => Just(7u8), 1 => 0u8..8],
        ),
    )
        .prop_map(
            |(
                (mode, vids, native, acceptable),
                (filtering, learning, limit),
                (hairpin, guard, mask, state, flood),
            )| {
                PortSpec {
                    mode,
                    vids,
                    native,
                    acceptable,
                    filtering,
                    learning,
                    limit,
                    hairpin,
                    guard,
                    mask,
                    state,
                    flood,
                }
            },
        )
}

fn station(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, i + 1]
}

impl PortSpec {
    fn config(&self) -> PortConfig {
        let allowed: Vec<u16> = (1..=3).filter(|v| self.vids[usize::from(v - 1)]).collect();
        let mut vlan = match self.mode {
            0 => VlanConfig::access(self.native.unwrap_or(1)),
            _ => VlanConfig::trunk(VlanSet::from_vids(&allowed), self.native),
        };
        if self.mode == 2 {
            vlan.ingress_filtering = self.filtering;
            vlan.acceptable = match self.acceptable {
                0 => AcceptableFrames::All,
                1 => AcceptableFrames::TaggedOnly,
                _ => AcceptableFrames::UntaggedOnly,
            };
        }
        let mut c = PortConfig::plain().with_vlan(vlan);
        c.learning = self.learning;
        c.learn_limit = self.limit;
        c.hairpin = self.hairpin;
        c.group_fwd_mask = self.mask;
        c.state = match self.state {
            10 => PortState::Learning,
            11 => PortState::Blocking,
            _ => PortState::Forwarding,
        };
        c.flood.unknown_unicast = self.flood & 1 != 0;
        c.flood.broadcast = self.flood & 2 != 0;
        c.flood.multicast = self.flood & 4 != 0;
        if let Some(g) = self.guard {
            c.mac = Some(MacAddr(station(g)));
            c.security.allow_mac_spoofing = false;
        }
        c
    }

    fn model(&self) -> MPort {
        let c = self.config();
        let set = |s: &VlanSet| s.iter().collect::<BTreeSet<u16>>();
        MPort {
            pvid: c.vlan.pvid,
            ingress: set(&c.vlan.ingress),
            egress: set(&c.vlan.egress),
            untagged: set(&c.vlan.untagged),
            acceptable: c.vlan.acceptable,
            filtering: c.vlan.ingress_filtering,
            learning: c.learning,
            limit: c.learn_limit,
            hairpin: c.hairpin,
            guard: c.guarded_mac().map(|m| m.0),
            mask: c.group_fwd_mask,
            state: c.state,
            flood: self.flood,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Frame {
        port: u8,
        src: u8,
        dst: u8,
        tag: Option<(u8, u16)>,
        len: u8,
        tpid_s: bool,
    },
    Advance(u16),
    AgeAll,
    Static {
        vid: u16,
        mac: u8,
        port: u8,
        kind: u8,
    },
    Replace {
        port: u8,
        spec: PortSpec,
    },
    /// The switch's own membership of `vid` and whether it takes it tagged.
    Local {
        vid: u16,
        member: bool,
        tagged: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (any::<u8>(), 0u8..12, 0u8..16, proptest::option::weighted(0.6, (0u8..8, 0u16..6)), 0u8..40, prop::bool::weighted(0.05))
            .prop_map(|(port, src, dst, tag, len, tpid_s)| Op::Frame { port, src, dst, tag, len, tpid_s }),
        2 => prop::sample::select(vec![1u16, 250, 499, 500, 501, 1000, 2500]).prop_map(Op::Advance),
        1 => Just(Op::AgeAll),
        1 => (1u16..4, 0u8..8, any::<u8>(), 0u8..3).prop_map(|(vid, mac, port, kind)| Op::Static { vid, mac, port, kind }),
        1 => (any::<u8>(), port_spec()).prop_map(|(port, spec)| Op::Replace { port, spec }),
        1 => (1u16..4, any::<bool>(), any::<bool>()).prop_map(|(vid, member, tagged)| Op::Local { vid, member, tagged }),
    ]
}

/// Builds the frame bytes for a `Frame` op.
fn frame_bytes(src: u8, dst: u8, tag: Option<(u8, u16)>, len: u8, tpid_s: bool) -> Vec<u8> {
    let src = match src {
        0..=9 => station(src),
        10 => [0x01, 0, 0x5e, 0, 0, 1],
        _ => [0; 6],
    };
    let dst = match dst {
        0..=9 => station(dst),
        10 => [0xff; 6],
        11 => [0x01, 0, 0x5e, 0, 0, 9],
        12 => [0x01, 0x80, 0xc2, 0, 0, 0],
        13 => [0x01, 0x80, 0xc2, 0, 0, 1],
        14 => [0x01, 0x80, 0xc2, 0, 0, 3],
        _ => [0x01, 0x80, 0xc2, 0, 0, 0x0e],
    };
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    if let Some((pcp, vid)) = tag {
        let vid = if vid == 5 { 4095 } else { vid };
        f.extend_from_slice(if tpid_s { &[0x88, 0xa8] } else { &[0x81, 0x00] });
        f.extend_from_slice(&((u16::from(pcp) << 13) | vid).to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(f.len() + usize::from(len), 0xab);
    if len == 39 {
        f.truncate(13 + usize::from(tag.is_some()) * 3);
    }
    f
}

fn engine_fdb(br: &Bridge) -> BTreeMap<(u16, [u8; 6]), MEntry> {
    br.fdb()
        .entries()
        .map(|e| {
            (
                (e.fid, e.mac.0),
                MEntry {
                    port: e.port,
                    stamp: u64::from(e.stamp),
                    kind: e.kind,
                },
            )
        })
        .collect()
}

fn run(
    specs: Vec<PortSpec>,
    capacity: usize,
    learn_limit: usize,
    ageing: u32,
    shared: bool,
    ops: Vec<Op>,
) {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(
        capacity as u128 * 31 + u128::from(ageing),
    ));
    cfg.fdb = FdbConfig {
        capacity,
        learn_limit,
        ageing_ms: ageing,
    };
    let mut br = Bridge::new(cfg);
    let mut m = Model {
        ports: BTreeMap::new(),
        fdb: BTreeMap::new(),
        fid: BTreeMap::new(),
        capacity,
        learn_limit,
        ageing: u64::from(ageing),
        local_vlans: BTreeSet::new(),
        local_tagged: BTreeSet::new(),
    };
    for s in &specs {
        let id = br.add_port(s.config()).unwrap();
        m.ports.insert(id.0, s.model());
    }
    if shared {
        br.set_fid(3, 2).unwrap();
        m.fid.insert(3, 2);
    }
    let mut now = 0u64;
    let mut out = TxBatch::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Frame {
                port,
                src,
                dst,
                tag,
                len,
                tpid_s,
            } => {
                let ids: Vec<u32> = m.ports.keys().copied().collect();
                let port = ids[usize::from(port) % ids.len()];
                let f = frame_bytes(src, dst, tag, len, tpid_s);
                let frames = [RxFrame::new(PortId(port), &f)];
                br.process(&frames, now, &mut out);
                let got: Output = match out.drops() {
                    [] => Ok(out
                        .actions()
                        .iter()
                        .map(|a| (a.port.0, out.to_vec(a, &frames)))
                        .collect()),
                    [(_, r)] => Err(*r),
                    d => panic!("several drops {d:?}"),
                };
                let want = m.process(port, &f, now);
                assert_eq!(got, want, "step {step}: frame {f:02x?} on port {port}");
            }
            Op::Advance(ms) => now += u64::from(ms),
            Op::AgeAll => {
                br.age_all(now);
                let ageing = m.ageing;
                m.fdb
                    .retain(|_, e| e.kind != EntryKind::Dynamic || now - e.stamp < ageing);
            }
            Op::Static {
                vid,
                mac,
                port,
                kind,
            } => {
                let ids: Vec<u32> = m.ports.keys().copied().collect();
                let port = ids[usize::from(port) % ids.len()];
                let kind =
                    [EntryKind::Static, EntryKind::Sticky, EntryKind::Local][usize::from(kind)];
                let mac = station(mac);
                let got = br.add_static(vid, MacAddr(mac), PortId(port), kind, now);
                let key = (m.fid(vid), mac);
                m.fdb.remove(&key);
                let want_ok = m.fdb.len() < m.capacity;
                if want_ok {
                    let port = if kind == EntryKind::Local {
                        LOCAL
                    } else {
                        port
                    };
                    m.fdb.insert(
                        key,
                        MEntry {
                            port,
                            stamp: now,
                            kind,
                        },
                    );
                }
                assert_eq!(got.is_ok(), want_ok, "step {step}: static entry");
            }
            Op::Local {
                vid,
                member,
                tagged,
            } => {
                br.set_local_vlan(vid, member).unwrap();
                br.set_local_tagged(vid, tagged).unwrap();
                for (set, on) in [(&mut m.local_vlans, member), (&mut m.local_tagged, tagged)] {
                    if on {
                        set.insert(vid);
                    } else {
                        set.remove(&vid);
                    }
                }
            }
            Op::Replace { port, spec } => {
                let ids: Vec<u32> = m.ports.keys().copied().collect();
                let old = ids[usize::from(port) % ids.len()];
                br.remove_port(PortId(old)).unwrap();
                m.ports.remove(&old);
                m.fdb
                    .retain(|_, e| e.port != old || e.kind == EntryKind::Local);
                let id = br.add_port(spec.config()).unwrap();
                let expect = (0..).find(|i| !m.ports.contains_key(i)).unwrap();
                assert_eq!(id.0, expect, "lowest free index");
                m.ports.insert(id.0, spec.model());
            }
        }
        assert_eq!(
            engine_fdb(&br),
            m.fdb,
            "step {step}: forwarding tables differ"
        );
        assert!(br.fdb().len() <= capacity);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference_model(
        specs in prop::collection::vec(port_spec(), 2..6),
        capacity in 2usize..12,
        limit_frac in 1usize..=4,
        ageing in prop::sample::select(vec![0u32, 500, 1000, 1500, 3000]),
        shared in any::<bool>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let learn_limit = (capacity * limit_frac).div_ceil(4);
        run(specs, capacity, learn_limit, ageing, shared, ops);
    }
}
