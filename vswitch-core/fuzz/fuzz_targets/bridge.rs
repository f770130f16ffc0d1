//! Arbitrary frames on arbitrary ports of an arbitrarily configured bridge: never a panic, the
//! forwarding table never exceeds its capacity, global learn limit or any port's limit, and
//! every transmit action names a live port (or the local pseudo-port) and a frame of the batch.
//! With a spanning tree (STP or RSTP), structured BPDU sequences and link changes drive it; an
//! RSTP port whose role is alternate, backup or disabled never forwards.
//!
//! Run: `cd vswitch-core && cargo +nightly fuzz run bridge fuzz/corpus/bridge fuzz/seeds/bridge`

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vswitch_core::batch::Offload;
use vswitch_core::fdb::{EntryKind, FdbConfig};
use vswitch_core::frame::{EtherType, MacAddr};
use vswitch_core::port::{MirrorMode, PortState};
use vswitch_core::stp::{Bpdu, BridgeId, ConfigBpdu, Link, PointToPoint, PortRole, StpConfig};
use vswitch_core::vlan::{AcceptableFrames, VlanConfig, VlanSet};
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, PortId, RxFrame, TxBatch};

#[derive(Arbitrary, Debug)]
struct PortSpec {
    mode: u8,
    vids: [u16; 3],
    native: Option<u16>,
    s_vlan: bool,
    mtu: u16,
    mac: Option<[u8; 6]>,
    allow_spoofing: bool,
    dhcp_guard: bool,
    router_guard: bool,
    bpdu_guard: bool,
    learning: bool,
    limit: Option<u8>,
    hairpin: bool,
    mask: u16,
    mirror: u8,
    offloads: (bool, bool),
    stp: bool,
    edge: bool,
    auto_edge: bool,
    p2p: u8,
    state: u8,
    acceptable: u8,
    filtering: bool,
}

impl PortSpec {
    fn config(&self) -> PortConfig {
        let vids = VlanSet::from_vids(&self.vids.map(|v| v % 4096));
        let mut vlan = match self.mode % 5 {
            0 => VlanConfig::access(self.native.unwrap_or(1) % 4096),
            1 => VlanConfig::trunk(vids, self.native.map(|v| v % 4096)),
            2 => VlanConfig::isolated(self.vids[0] % 4096, self.vids[1] % 4096),
            3 => VlanConfig::community(self.vids[0] % 4096, self.vids[1] % 4096),
            _ => VlanConfig::promiscuous(self.vids[0] % 4096, &vids),
        };
        vlan.acceptable = match self.acceptable % 3 {
            0 => vlan.acceptable,
            1 => AcceptableFrames::TaggedOnly,
            _ => AcceptableFrames::All,
        };
        vlan.ingress_filtering = self.filtering;
        let mut c = PortConfig::plain().with_vlan(vlan);
        c.tpid = if self.s_vlan {
            EtherType::QINQ
        } else {
            EtherType::VLAN
        };
        c.mtu = self.mtu % 9000;
        c.mac = self.mac.map(MacAddr);
        c.security.allow_mac_spoofing = self.allow_spoofing;
        c.security.dhcp_guard = self.dhcp_guard;
        c.security.router_guard = self.router_guard;
        c.security.bpdu_guard = self.bpdu_guard;
        c.learning = self.learning;
        c.learn_limit = self.limit.map(u32::from);
        c.hairpin = self.hairpin;
        c.group_fwd_mask = self.mask;
        c.mirror = [
            MirrorMode::None,
            MirrorMode::Source,
            MirrorMode::Destination,
        ][usize::from(self.mirror % 3)];
        c.offloads.checksum = self.offloads.0;
        c.offloads.lso = self.offloads.1;
        c.stp = self.stp;
        c.stp_edge = self.edge;
        c.stp_auto_edge = self.auto_edge;
        c.stp_point_to_point = [
            PointToPoint::Auto,
            PointToPoint::ForceTrue,
            PointToPoint::ForceFalse,
        ][usize::from(self.p2p % 3)];
        c.state = [
            PortState::Forwarding,
            PortState::Learning,
            PortState::Blocking,
            PortState::Disabled,
        ][usize::from(self.state % 4)];
        c
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Frames(Vec<(u8, bool, u16, Vec<u8>)>),
    Advance(u16),
    Age(u16),
    Tick,
    AddPort(PortSpec),
    RemovePort(u8),
    Static(u16, [u8; 6], u8, u8),
    Fid(u16, u16),
    Link(u8, u8),
    Bpdu(BpduSpec),
    /// The switch's own membership of a VLAN, and whether it takes it tagged.
    Local(u16, bool, bool),
}

/// A BPDU built field by field, so the fuzzer reaches the spanning tree's states quickly.
#[derive(Arbitrary, Debug)]
struct BpduSpec {
    port: u8,
    kind: u8,
    flags: u8,
    root: (u16, u8),
    cost: u32,
    bridge: (u16, u8),
    port_id: u16,
    times: [u16; 4],
}

impl BpduSpec {
    fn bpdu(&self) -> Bpdu {
        let id = |(prio, m): (u16, u8)| BridgeId::new(prio, MacAddr([2, 0, 0, 0, 0, m]));
        let c = ConfigBpdu {
            flags: self.flags,
            root: id(self.root),
            root_path_cost: self.cost,
            bridge: id(self.bridge),
            port: self.port_id,
            message_age: self.times[0],
            max_age: self.times[1],
            hello_time: self.times[2],
            forward_delay: self.times[3],
        };
        match self.kind % 3 {
            0 => Bpdu::Config(c),
            1 => Bpdu::Tcn,
            _ => Bpdu::Rst(c),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    learn_limit: u8,
    ageing: u16,
    /// 0: no spanning tree, 1: STP, 2: RSTP.
    stp: u8,
    /// Idle ports added first, so the fuzzed ports sit at 0, 60 (straddling the first two
    /// groups of 64), 64 or 130 (the per-VID port planes beyond port 63).
    base: u8,
    ports: Vec<PortSpec>,
    ops: Vec<Op>,
}

fn check(br: &Bridge, cfg: &FdbConfig) {
    let fdb = br.fdb();
    assert!(fdb.len() <= cfg.capacity);
    assert!(fdb.dynamic_len() <= cfg.learn_limit);
    assert_eq!(fdb.entries().count(), fdb.len());
    for p in br.ports() {
        if let Some(limit) = br.port_config(p).and_then(|c| c.learn_limit) {
            assert!(fdb.port_len(p.0) <= limit);
        }
    }
    if let Some(rstp) = br.stp().and_then(|t| t.rstp()) {
        for p in br.ports() {
            let i = p.0 as usize;
            if matches!(
                rstp.role(i),
                Some(PortRole::Alternate | PortRole::Backup | PortRole::Disabled)
            ) {
                assert_ne!(rstp.state(i), PortState::Forwarding);
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let fdb = FdbConfig {
        capacity: usize::from(input.capacity % 64) + 1,
        learn_limit: usize::from(input.learn_limit % 64),
        ageing_ms: u32::from(input.ageing),
    };
    let mut cfg = BridgeConfig::new(HashKey::from_seed(7));
    cfg.fdb = fdb;
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    cfg.stp = match input.stp % 3 {
        0 => None,
        1 => Some(StpConfig::new(mac)),
        _ => Some(StpConfig::rstp(mac)),
    };
    let mut br = Bridge::new(cfg);
    let base = [0u32, 60, 64, 130][usize::from(input.base % 4)];
    for k in 0..base {
        // Varied VLANs, so a bit read for the wrong port changes the outcome; few VIDs per
        // port, so the idle ports cost little per input.
        let vlan = if k % 2 == 0 {
            VlanConfig::access(1 + (k % 5) as u16)
        } else {
            VlanConfig::trunk(VlanSet::from_vids(&[1, 2, 3]), Some(4))
        };
        let _ = br.add_port(PortConfig::plain().with_vlan(vlan));
    }
    // The fuzzer's port numbers 0-9 name ports `base` to `base + 9`.
    let port_id = |p: u8| PortId(base + u32::from(p % 10));
    for p in input.ports.iter().take(8) {
        let _ = br.add_port(p.config());
    }
    let mut now = 0u64;
    let mut out = TxBatch::new();
    for op in input.ops.iter().take(64) {
        match op {
            Op::Frames(frames) => {
                let rx: Vec<RxFrame<'_>> = frames
                    .iter()
                    .take(64)
                    .map(|(p, csum, mss, data)| RxFrame {
                        port: port_id(*p),
                        data,
                        offload: Offload {
                            checksum: *csum,
                            lso_mss: *mss % 2048,
                        },
                    })
                    .collect();
                br.process(&rx, now, &mut out);
                let mut buf = vec![0u8; 70_000];
                for a in out.actions() {
                    assert!(a.port == PortId::LOCAL || br.port_config(a.port).is_some());
                    assert!(
                        a.frame == vswitch_core::batch::GENERATED || (a.frame as usize) < rx.len()
                    );
                    let n = out.write(a, &rx, &mut buf);
                    assert_eq!(n, Some(out.len_of(a, &rx)));
                }
            }
            Op::Advance(ms) => now += u64::from(*ms),
            Op::Age(budget) => {
                let r = br.age(now, usize::from(*budget));
                assert!(r.visited <= usize::from(*budget));
            }
            Op::Tick => br.tick(now, &mut out),
            Op::AddPort(p) => {
                let _ = br.add_port(p.config());
            }
            Op::RemovePort(p) => {
                let _ = br.remove_port(port_id(*p));
            }
            Op::Static(vid, mac, port, kind) => {
                let kind = [
                    EntryKind::Static,
                    EntryKind::Sticky,
                    EntryKind::Local,
                    EntryKind::Dynamic,
                ][usize::from(*kind % 4)];
                let _ = br.add_static(*vid, MacAddr(*mac), port_id(*port), kind, now);
            }
            Op::Fid(vid, fid) => {
                let _ = br.set_fid(*vid, *fid);
            }
            Op::Local(vid, member, tagged) => {
                let _ = br.set_local_vlan(*vid, *member);
                let _ = br.set_local_tagged(*vid, *tagged);
            }
            Op::Link(p, link) => {
                let link = [Link::Down, Link::HalfDuplex, Link::FullDuplex][usize::from(*link % 3)];
                let _ = br.set_port_link(port_id(*p), link);
            }
            Op::Bpdu(spec) => {
                let mut frame = [0u8; 64];
                let n = spec
                    .bpdu()
                    .emit_frame(MacAddr([2, 0, 0, 0, 0, 9]), &mut frame)
                    .unwrap();
                let rx = [RxFrame::new(port_id(spec.port), &frame[..n])];
                br.process(&rx, now, &mut out);
            }
        }
        check(&br, &fdb);
    }
});
