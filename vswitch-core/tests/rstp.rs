//! RSTP (802.1D-2004 clause 17): golden BPDU bytes for the RST flags in both directions, and
//! scenarios on a small simulated network whose bridges exchange BPDUs as frames through
//! [`Bpdu::emit_frame`] and [`Bpdu::parse_frame`].

use std::collections::VecDeque;

use proptest::prelude::*;
use vswitch_core::fdb::EntryKind;
use vswitch_core::frame::MacAddr;
use vswitch_core::port::PortState;
use vswitch_core::stp::rstp::RstpPortConfig;
use vswitch_core::stp::{
    Bpdu, Link, PointToPoint, PortRole, RstRole, StpConfig, Tree, FLAG_AGREEMENT, FLAG_FORWARDING,
    FLAG_LEARNING, FLAG_PROPOSAL, FLAG_TC, FLAG_TCA,
};
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, PortId, RxFrame, TxBatch};

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i])
}

/// One end of a link: bridge index, port index.
type End = (usize, usize);

struct SimLink {
    a: End,
    b: End,
    up: bool,
}

/// Bridges joined by point-to-point links; every BPDU is encoded to a frame and decoded
/// again on the other end of its link, at the instant it was sent.
struct Sim {
    nodes: Vec<Tree>,
    macs: Vec<MacAddr>,
    port_count: Vec<usize>,
    links: Vec<SimLink>,
    queue: VecDeque<(usize, usize, Bpdu)>,
    /// Every BPDU sent, as (bridge, port, decoded frame).
    log: Vec<(usize, usize, Bpdu)>,
    now: u64,
}

impl Sim {
    fn new(cfgs: &[StpConfig]) -> Self {
        Self {
            nodes: cfgs.iter().map(|c| Tree::new(*c, 0)).collect(),
            macs: cfgs.iter().map(|c| c.mac).collect(),
            port_count: vec![0; cfgs.len()],
            links: Vec::new(),
            queue: VecDeque::new(),
            log: Vec::new(),
            now: 0,
        }
    }

    /// `n` RSTP bridges; bridge 0 has the best priority, then 1, ...
    fn rstp(n: u8) -> Self {
        let cfgs: Vec<StpConfig> = (0..n)
            .map(|i| {
                let mut c = StpConfig::rstp(mac(i + 1));
                c.priority = 0x1000 * (u16::from(i) + 1);
                c
            })
            .collect();
        Self::new(&cfgs)
    }

    fn add_port(&mut self, n: usize, cfg: RstpPortConfig) -> usize {
        let p = self.port_count[n];
        self.port_count[n] += 1;
        let q = &mut self.queue;
        self.nodes[n].add_port(p, p as u16 + 1, cfg, self.now, &mut |i, m| {
            q.push_back((n, i, m))
        });
        p
    }

    /// Connects bridges `a` and `b` with a new link (cost 20,000 on both ends).
    fn connect_with(&mut self, a: usize, b: usize, cfg: RstpPortConfig) -> usize {
        let pa = self.add_port(a, cfg);
        let pb = self.add_port(b, cfg);
        self.links.push(SimLink {
            a: (a, pa),
            b: (b, pb),
            up: true,
        });
        self.settle();
        self.links.len() - 1
    }

    fn connect(&mut self, a: usize, b: usize) -> usize {
        self.connect_with(a, b, RstpPortConfig::new(20_000))
    }

    fn peer(&self, end: End) -> Option<End> {
        self.links.iter().find_map(|l| match l {
            l if !l.up => None,
            l if l.a == end => Some(l.b),
            l if l.b == end => Some(l.a),
            _ => None,
        })
    }

    /// Delivers queued BPDUs (and what they cause) until the network is silent.
    fn settle(&mut self) {
        let mut budget = 100_000;
        while let Some((n, p, bpdu)) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "BPDU storm");
            let mut frame = [0u8; 64];
            let len = bpdu.emit_frame(self.macs[n], &mut frame).unwrap();
            let decoded = Bpdu::parse_frame(&frame[..len]).unwrap();
            assert_eq!(decoded, bpdu);
            self.log.push((n, p, decoded));
            let Some((m, q)) = self.peer((n, p)) else {
                continue;
            };
            if matches!((&self.nodes[m], decoded), (Tree::Stp(_), Bpdu::Rst(_))) {
                // An 802.1D-1998 bridge drops BPDU type 2 (as Linux's kernel STP does);
                // this crate's STP machine would read it as a configuration BPDU.
                continue;
            }
            let queue = &mut self.queue;
            self.nodes[m].receive(q, &decoded, self.now, &mut |i, b| {
                queue.push_back((m, i, b))
            });
        }
    }

    /// Advances the clock by `ms` in steps of 100 ms, ticking every bridge.
    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + 100).min(end);
            for n in 0..self.nodes.len() {
                let q = &mut self.queue;
                self.nodes[n].tick(self.now, &mut |i, m| q.push_back((n, i, m)));
            }
            self.settle();
        }
    }

    fn set_link(&mut self, l: usize, up: bool) {
        self.links[l].up = up;
        let link = if up { Link::FullDuplex } else { Link::Down };
        for (n, p) in [self.links[l].a, self.links[l].b] {
            let q = &mut self.queue;
            self.nodes[n].set_link(p, link, self.now, &mut |i, m| q.push_back((n, i, m)));
        }
        self.settle();
    }

    fn rstp_of(&self, n: usize) -> &vswitch_core::stp::rstp::Rstp {
        self.nodes[n].rstp().unwrap()
    }

    fn state(&self, (n, p): End) -> PortState {
        self.nodes[n].state(p)
    }

    fn role(&self, (n, p): End) -> Option<PortRole> {
        self.nodes[n].role(p)
    }

    /// Whether frames cross link `l`: both ends forwarding.
    fn carries(&self, l: usize) -> bool {
        let l = &self.links[l];
        l.up && self.state(l.a) == PortState::Forwarding && self.state(l.b) == PortState::Forwarding
    }

    /// Checks that the links carrying frames span every group of bridges joined by up
    /// links, without a cycle.
    fn check_spanning_tree(&self) -> Result<(), String> {
        fn find(parent: &mut [usize], x: usize) -> usize {
            let mut x = x;
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        let n = self.nodes.len();
        let mut tree: Vec<usize> = (0..n).collect();
        for l in 0..self.links.len() {
            if self.carries(l) {
                let (a, b) = (
                    find(&mut tree, self.links[l].a.0),
                    find(&mut tree, self.links[l].b.0),
                );
                if a == b {
                    return Err(format!("link {l} closes a loop"));
                }
                tree[a] = b;
            }
        }
        for (i, l) in self.links.iter().enumerate() {
            if l.up && find(&mut tree, l.a.0) != find(&mut tree, l.b.0) {
                return Err(format!("link {i} joins bridges the tree leaves apart"));
            }
        }
        Ok(())
    }
}

fn frame_bytes(bpdu: &Bpdu, src: MacAddr) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = bpdu.emit_frame(src, &mut buf).unwrap();
    buf[..n].to_vec()
}

/// The RST BPDU of bridge 8000.02-00-00-00-00-01 port 0x8001 at start: designated,
/// proposing, discarding (flags 0x0e).
const PROPOSAL: [u8; 60] = [
    0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // addresses
    0x00, 0x27, 0x42, 0x42, 0x03, // length 39, LLC
    0x00, 0x00, 0x02, 0x02, 0x0e, // protocol, version 2, type RST, flags
    0x80, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // root
    0x00, 0x00, 0x00, 0x00, // root path cost
    0x80, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // bridge
    0x80, 0x01, 0x00, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00, // port, times
    0x00, // version 1 length
    0, 0, 0, 0, 0, 0, 0, // padding
];

/// The answer of bridge 9000.02-00-00-00-00-02 on its port 0x8001: root port, agreement,
/// already learning and forwarding, with TC because its root port just went forwarding
/// (flags 0x79); its priority vector is its designated one (cost 20,000 = 0x4e20).
const AGREEMENT: [u8; 60] = [
    0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, //
    0x00, 0x27, 0x42, 0x42, 0x03, //
    0x00, 0x00, 0x02, 0x02, 0x79, //
    0x80, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
    0x00, 0x00, 0x4e, 0x20, //
    0x90, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, //
    0x80, 0x01, 0x01, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00, // message age 1 s
    0x00, //
    0, 0, 0, 0, 0, 0, 0,
];

#[test]
fn golden_rst_flags_encoded() {
    let mut a = StpConfig::rstp(mac(1));
    a.priority = 0x8000;
    let mut b = StpConfig::rstp(mac(2));
    b.priority = 0x9000;
    let mut sim = Sim::new(&[a, b]);
    sim.connect(0, 1);
    let first = |n: usize| {
        sim.log
            .iter()
            .find(|(m, _, _)| *m == n)
            .map(|(_, _, b)| frame_bytes(b, sim.macs[n]))
            .unwrap()
    };
    assert_eq!(first(0), PROPOSAL);
    // Bridge 1's first BPDU is its own proposal; the one after the root's proposal agrees.
    let answers: Vec<Vec<u8>> = sim
        .log
        .iter()
        .filter(|(m, _, _)| *m == 1)
        .map(|(_, _, b)| frame_bytes(b, mac(2)))
        .collect();
    assert!(answers.contains(&AGREEMENT.to_vec()), "{answers:02x?}");
}

#[test]
fn golden_rst_flags_decoded() {
    for (bytes, flags, role) in [
        (&PROPOSAL, FLAG_PROPOSAL, RstRole::Designated),
        (
            &AGREEMENT,
            FLAG_AGREEMENT | FLAG_TC | FLAG_LEARNING | FLAG_FORWARDING,
            RstRole::Root,
        ),
    ] {
        let Ok(Bpdu::Rst(c)) = Bpdu::parse_frame(bytes) else {
            panic!("not an RST BPDU")
        };
        assert_eq!(c.flags & !0x0c, flags);
        assert_eq!(c.role(), role);
    }
    // Every flag bit on its own, with role alternate/backup (1): version 2, type 2.
    let mut f = PROPOSAL;
    for (bit, name) in [
        (FLAG_TC, "tc"),
        (FLAG_PROPOSAL, "proposal"),
        (FLAG_LEARNING, "learning"),
        (FLAG_FORWARDING, "forwarding"),
        (FLAG_AGREEMENT, "agreement"),
        (FLAG_TCA, "tca"),
    ] {
        f[21] = bit | 0x04;
        let Ok(Bpdu::Rst(c)) = Bpdu::parse_frame(&f) else {
            panic!("{name}")
        };
        assert_eq!(
            (c.flags, c.role()),
            (bit | 0x04, RstRole::AlternateBackup),
            "{name}"
        );
        assert_eq!(frame_bytes(&Bpdu::Rst(c), mac(1)), f, "{name} re-encodes");
    }
}

#[test]
fn golden_proposal_bytes_are_agreed() {
    // A bridge that hears the golden proposal on its only port answers with the golden
    // agreement, at once.
    let mut b = StpConfig::rstp(mac(2));
    b.priority = 0x9000;
    let mut t = Tree::new(b, 0);
    let mut sent = Vec::new();
    t.add_port(0, 1, RstpPortConfig::new(20_000), 0, &mut |_, _| {});
    let bpdu = Bpdu::parse_frame(&PROPOSAL).unwrap();
    t.receive(0, &bpdu, 0, &mut |p, m| sent.push((p, m)));
    assert_eq!(sent.len(), 1);
    assert_eq!(frame_bytes(&sent[0].1, mac(2)), AGREEMENT);
    assert_eq!(t.state(0), PortState::Forwarding);
    assert_eq!(t.role(0), Some(PortRole::Root));
}

#[test]
fn golden_tca_to_legacy_tcn() {
    // An RSTP bridge whose port fell back to 802.1D answers a TCN with a configuration
    // BPDU carrying TC and TCA (flags 0x81).
    let mut cfg = StpConfig::rstp(mac(1));
    cfg.priority = 0x1000;
    let mut t = Tree::new(cfg, 0);
    t.add_port(0, 1, RstpPortConfig::new(20_000), 0, &mut |_, _| {});
    let mut legacy = StpConfig::new(mac(2));
    legacy.priority = 0x9000;
    let mut s = Tree::new(legacy, 0);
    s.add_port(0, 1, RstpPortConfig::new(20_000), 0, &mut |_, _| {});
    // Wait past Migrate Time, then hear an 802.1D configuration BPDU.
    let mut out = Vec::new();
    let mut now = 0;
    while now <= 40_000 {
        t.tick(now, &mut |_, _| {});
        s.tick(now, &mut |_, m| out.push(m));
        for m in out.drain(..) {
            t.receive(0, &m, now, &mut |_, _| {});
        }
        now += 500;
    }
    assert!(!t.rstp().unwrap().sends_rstp(0));
    assert_eq!(t.state(0), PortState::Forwarding);
    // The TCA rides on the next configuration BPDU (within a hello time).
    let mut sent = Vec::new();
    t.receive(0, &Bpdu::Tcn, now, &mut |_, m| sent.push(m));
    for dt in 1..=5 {
        t.tick(now + dt * 500, &mut |_, m| sent.push(m));
    }
    let tca = sent
        .iter()
        .find(|m| matches!(m, Bpdu::Config(c) if c.flags & FLAG_TCA != 0))
        .expect("a TCA");
    let bytes = frame_bytes(tca, mac(1));
    assert_eq!(
        &bytes[12..23],
        &[0x00, 0x26, 0x42, 0x42, 0x03, 0x00, 0x00, 0x00, 0x00, 0x81, 0x10]
    );
}

#[test]
fn ring_of_three_blocks_one_port() {
    let mut sim = Sim::rstp(3);
    let ab = sim.connect(0, 1);
    let bc = sim.connect(1, 2);
    let ca = sim.connect(2, 0);
    // No timer has run: the proposal/agreement handshake alone converged the tree.
    assert_eq!(sim.now, 0);
    sim.check_spanning_tree().unwrap();
    assert!(sim.carries(ab) && sim.carries(ca) && !sim.carries(bc));
    let blocked: Vec<End> = sim
        .links
        .iter()
        .flat_map(|l| [l.a, l.b])
        .filter(|e| matches!(sim.role(*e), Some(PortRole::Alternate | PortRole::Backup)))
        .collect();
    assert_eq!(blocked, vec![sim.links[bc].b], "bridge 2's port towards 1");
    assert_eq!(sim.state(sim.links[bc].b), PortState::Blocking);
    for n in 0..3 {
        assert_eq!(sim.nodes[n].root_id(), sim.nodes[0].bridge_id());
    }
    // Stays so.
    sim.advance(60_000);
    sim.check_spanning_tree().unwrap();
    assert!(!sim.carries(bc));
}

#[test]
fn point_to_point_designated_port_forwards_by_agreement() {
    let mut sim = Sim::rstp(2);
    let l = sim.connect(0, 1);
    // At the instant of connection, before any timer: both ends forward.
    assert_eq!(sim.now, 0);
    assert_eq!(sim.role(sim.links[l].a), Some(PortRole::Designated));
    assert_eq!(sim.state(sim.links[l].a), PortState::Forwarding);
    assert_eq!(sim.state(sim.links[l].b), PortState::Forwarding);

    // The same link declared shared: no agreement is accepted, the designated port waits
    // for its forward-delay timer twice.
    let mut sim = Sim::rstp(2);
    let mut shared = RstpPortConfig::new(20_000);
    shared.point_to_point = PointToPoint::ForceFalse;
    shared.auto_edge = false;
    let l = sim.connect_with(0, 1, shared);
    assert!(!sim.rstp_of(0).point_to_point(0));
    assert_eq!(sim.state(sim.links[l].a), PortState::Blocking);
    sim.advance(5_000);
    assert_eq!(sim.state(sim.links[l].a), PortState::Blocking);
    // A port coming up holds fdWhile at Max Age (20 s), then learns and forwards after
    // one forwardDelay each (Hello Time for an RSTP port).
    sim.advance(20_000);
    assert_eq!(sim.state(sim.links[l].a), PortState::Forwarding);
}

#[test]
fn edge_ports_forward_at_once_and_lose_edge_on_bpdu() {
    let mut sim = Sim::rstp(2);
    let mut edge = RstpPortConfig::new(20_000);
    edge.admin_edge = true;
    let p = sim.add_port(0, edge);
    sim.settle();
    assert!(sim.rstp_of(0).oper_edge(p));
    assert_eq!(sim.state((0, p)), PortState::Forwarding);
    // A bridge appears behind the "edge": the first BPDU ends edge status.
    let q = sim.add_port(1, RstpPortConfig::new(20_000));
    sim.links.push(SimLink {
        a: (0, p),
        b: (1, q),
        up: true,
    });
    sim.advance(100);
    assert!(!sim.rstp_of(0).oper_edge(p));
    sim.check_spanning_tree().unwrap();

    // Auto-edge: a port that hears nothing becomes an edge port after the edge delay.
    let mut sim = Sim::rstp(1);
    let p = sim.add_port(0, RstpPortConfig::new(20_000));
    sim.advance(2_000);
    assert!(!sim.rstp_of(0).oper_edge(p));
    sim.advance(1_500);
    assert!(sim.rstp_of(0).oper_edge(p));
    assert_eq!(sim.state((0, p)), PortState::Forwarding);
}

#[test]
fn alternate_port_takes_over_at_once() {
    let mut sim = Sim::rstp(3);
    sim.connect(0, 1);
    let bc = sim.connect(1, 2);
    let ca = sim.connect(2, 0);
    sim.advance(10_000);
    let alt = sim.links[bc].b;
    assert_eq!(sim.role(alt), Some(PortRole::Alternate));
    let t = sim.now;
    sim.set_link(ca, false);
    // Same instant: bridge 2's alternate port is its root port and forwards.
    assert_eq!(sim.now, t);
    assert_eq!(sim.role(alt), Some(PortRole::Root));
    assert_eq!(sim.state(alt), PortState::Forwarding);
    assert!(sim.carries(bc));
    sim.check_spanning_tree().unwrap();
    // The link comes back: the tree returns to its first shape.
    sim.set_link(ca, true);
    sim.advance(10_000);
    sim.check_spanning_tree().unwrap();
    assert_eq!(sim.role(alt), Some(PortRole::Alternate));
}

#[test]
fn legacy_neighbour_gets_8021d_bpdus() {
    let mut r = StpConfig::rstp(mac(1));
    r.priority = 0x1000;
    let mut s = StpConfig::new(mac(2));
    s.priority = 0x2000;
    let mut r2 = StpConfig::rstp(mac(3));
    r2.priority = 0x3000;
    let mut sim = Sim::new(&[r, s, r2]);
    let legacy = sim.connect(0, 1);
    let rapid = sim.connect(0, 2);
    sim.advance(45_000);
    let rst = sim.rstp_of(0);
    assert!(!rst.sends_rstp(sim.links[legacy].a.1));
    assert!(rst.sends_rstp(sim.links[rapid].a.1));
    let last_to = |end: End| {
        sim.log
            .iter()
            .rev()
            .find(|(n, p, _)| (*n, *p) == end)
            .map(|(_, _, b)| *b)
            .unwrap()
    };
    assert!(matches!(last_to(sim.links[legacy].a), Bpdu::Config(_)));
    assert!(matches!(last_to(sim.links[rapid].a), Bpdu::Rst(_)));
    // The 802.1D neighbour converges at its own pace, under the RSTP root.
    assert_eq!(sim.nodes[1].root_id(), sim.nodes[0].bridge_id());
    assert!(sim.carries(legacy) && sim.carries(rapid));
    // An explicit migration check sends RST BPDUs again; the neighbour ignores them, its
    // information ages out, it claims root with configuration BPDUs, and 802.1D is back.
    let (n, p) = sim.links[legacy].a;
    let q = &mut sim.queue;
    let now = sim.now;
    if let Tree::Rstp(r) = &mut sim.nodes[n] {
        r.migration_check(p, now, &mut |i, m| q.push_back((n, i, m)));
    }
    assert!(sim.rstp_of(0).sends_rstp(p));
    sim.settle();
    sim.advance(30_000);
    assert!(!sim.rstp_of(0).sends_rstp(p));
}

fn bridge_with_uplinks() -> (Bridge, [PortId; 2]) {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(1));
    let mut stp = StpConfig::rstp(mac(9));
    stp.priority = 0x9000;
    cfg.stp = Some(stp);
    let mut br = Bridge::new(cfg);
    let mut up = PortConfig::plain();
    up.stp = true;
    up.stp_auto_edge = false;
    let p0 = br.add_port(up.clone()).unwrap();
    let p1 = br.add_port(up).unwrap();
    (br, [p0, p1])
}

fn data_frame(src: u8) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xee]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 1, src]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

#[test]
fn topology_change_flushes_other_ports() {
    let (mut br, [p0, p1]) = bridge_with_uplinks();
    let mut out = TxBatch::new();
    // A better root proposes on p0 (the golden proposal: bridge 8000.02-..-01).
    br.process(&[RxFrame::new(p0, &PROPOSAL)], 0, &mut out);
    assert_eq!(br.stp().unwrap().root_port(), Some(p0.0 as usize));
    // p1 has no neighbour (and no auto-edge): forwarding after Max Age and a hello time.
    // The root keeps sending its hellos.
    let mut now = 0;
    while now < 25_000 {
        now += 500;
        if now % 2_000 == 0 {
            br.process(&[RxFrame::new(p0, &PROPOSAL)], now, &mut out);
        }
        br.tick(now, &mut out);
    }
    assert_eq!(br.port_state(p0), Some(PortState::Forwarding));
    assert_eq!(br.port_state(p1), Some(PortState::Forwarding));
    br.process(
        &[
            RxFrame::new(p0, &data_frame(1)),
            RxFrame::new(p1, &data_frame(2)),
        ],
        now,
        &mut out,
    );
    let a = MacAddr([2, 0, 0, 0, 1, 1]);
    let b = MacAddr([2, 0, 0, 0, 1, 2]);
    let s = MacAddr([2, 0, 0, 0, 1, 3]);
    br.add_static(1, s, p1, EntryKind::Static, now).unwrap();
    assert_eq!(br.lookup(1, a, now), Some(p0));
    assert_eq!(br.lookup(1, b, now), Some(p1));
    // The root announces a topology change: every port but the receiving one is flushed
    // at once (learned entries only).
    let mut tc = PROPOSAL;
    tc[21] |= FLAG_TC;
    let rx = [RxFrame::new(p0, &tc)];
    br.process(&rx, now, &mut out);
    assert_eq!(br.lookup(1, a, now), Some(p0));
    assert_eq!(br.lookup(1, b, now), None);
    assert_eq!(br.lookup(1, s, now), Some(p1));
    // The flushed port passes the TC on, in an RST BPDU sent at once.
    let mut buf = [0u8; 64];
    let tc_out = out.actions().iter().any(|act| {
        let n = out.write(act, &rx, &mut buf).unwrap_or(0);
        act.port == p1
            && matches!(Bpdu::parse_frame(&buf[..n]), Ok(Bpdu::Rst(c)) if c.flags & FLAG_TC != 0)
    });
    assert!(tc_out, "a BPDU with TC leaves p1");
}

#[test]
fn port_leaving_active_topology_is_flushed() {
    let (mut br, [p0, p1]) = bridge_with_uplinks();
    let mut out = TxBatch::new();
    br.process(&[RxFrame::new(p0, &PROPOSAL)], 0, &mut out);
    br.tick(100, &mut out);
    br.process(&[RxFrame::new(p0, &data_frame(1))], 100, &mut out);
    let a = MacAddr([2, 0, 0, 0, 1, 1]);
    assert_eq!(br.lookup(1, a, 100), Some(p0));
    // p0's link goes down: it leaves the active topology and its entries go with it.
    br.set_port_link(p0, Link::Down).unwrap();
    assert_eq!(br.port_state(p0), Some(PortState::Disabled));
    assert_eq!(br.lookup(1, a, 100), None);
    assert_eq!(br.stp().unwrap().root_port(), None);
    assert_eq!(
        br.stp().unwrap().role(p1.0 as usize),
        Some(PortRole::Designated)
    );
}

/// Bridge count, links as bridge pairs, link flips as (link, ms to wait after).
type Scenario = (u8, Vec<(u8, u8)>, Vec<(u8, u64)>);

fn topology() -> impl Strategy<Value = Scenario> {
    (2u8..=4).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec((0..n, 0..n), 1..7),
            prop::collection::vec((0u8..8, 0u64..30_000), 0..12),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random small topologies (parallel links allowed) and random link failures and
    /// repairs: once the network is quiet, the links that carry frames form a spanning
    /// tree of every connected group of bridges.
    #[test]
    fn quiet_network_is_a_spanning_tree((n, links, flaps) in topology()) {
        let mut sim = Sim::rstp(n);
        for (a, b) in links {
            if a != b {
                sim.connect(usize::from(a), usize::from(b));
            }
        }
        prop_assume!(!sim.links.is_empty());
        sim.advance(1_000);
        for (l, wait) in flaps {
            let l = usize::from(l) % sim.links.len();
            let up = !sim.links[l].up;
            sim.set_link(l, up);
            sim.advance(wait % 5_000);
        }
        sim.advance(60_000);
        if let Err(e) = sim.check_spanning_tree() {
            return Err(TestCaseError::fail(e));
        }
        // Quiet: another minute changes nothing.
        let states: Vec<bool> = (0..sim.links.len()).map(|l| sim.carries(l)).collect();
        sim.advance(60_000);
        let again: Vec<bool> = (0..sim.links.len()).map(|l| sim.carries(l)).collect();
        prop_assert_eq!(states, again);
    }
}

/// A root that advertises timers outside the standard's ranges (hello 0, forward delay 0,
/// max age 1 s) cannot shrink a bridge's timers below them: forward delay (which also ages
/// the table during a topology change) stays at least 4 s, and a root port keeps its
/// information between the root's BPDUs and stays steady (forwarding, sending nothing of its
/// own). For STP and RSTP; the forward delay was 0 before.
#[test]
fn timers_from_a_root_are_held_to_the_standard_ranges() {
    for rstp in [false, true] {
        let cfg = |i: u8| {
            let mut c = if rstp {
                StpConfig::rstp(mac(i))
            } else {
                StpConfig::new(mac(i))
            };
            c.priority = 0x1000 * u16::from(i);
            c
        };
        let mut root = cfg(1);
        root.hello_ms = 0;
        root.forward_delay_ms = 0;
        root.max_age_ms = 1000;
        let mut sim = Sim::new(&[root, cfg(2)]);
        sim.connect(0, 1);
        sim.advance(60_000);
        assert_eq!(
            sim.nodes[1].root_id(),
            sim.nodes[0].bridge_id(),
            "rstp {rstp}"
        );
        assert_eq!(sim.nodes[1].forward_delay_ms(), 4000, "rstp {rstp}");
        assert_eq!(sim.role((1, 0)), Some(PortRole::Root), "rstp {rstp}");
        let sent = |sim: &Sim| sim.log.iter().filter(|(n, _, _)| *n == 1).count();
        let before = sent(&sim);
        sim.advance(20_000);
        assert_eq!(sim.state((1, 0)), PortState::Forwarding, "rstp {rstp}");
        assert_eq!(sim.role((1, 0)), Some(PortRole::Root), "rstp {rstp}");
        // Bridge 1 is designated on no port: it has nothing of its own to send.
        assert_eq!(sent(&sim) - before, 0, "rstp {rstp}");
    }
}
