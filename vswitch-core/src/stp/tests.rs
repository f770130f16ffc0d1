use super::*;
use alloc::collections::VecDeque;

fn mac(i: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, i])
}

#[test]
fn config_bpdu_round_trip() {
    let c = ConfigBpdu {
        flags: FLAG_TC | FLAG_TCA,
        root: BridgeId::new(0x8000, mac(1)),
        root_path_cost: 4,
        bridge: BridgeId::new(0x8000, mac(2)),
        port: 0x8002,
        message_age: 256,
        max_age: 20 * 256,
        hello_time: 2 * 256,
        forward_delay: 15 * 256,
    };
    let mut buf = [0u8; 64];
    let n = Bpdu::Config(c).emit_frame(mac(2), &mut buf).unwrap();
    assert_eq!(n, 60);
    assert_eq!(&buf[12..17], &[0, 38, 0x42, 0x42, 0x03]);
    // protocol 0, version 0, type 0, flags, root id 8000.02..01
    assert_eq!(&buf[17..23], &[0, 0, 0, 0, 0x81, 0x80]);
    assert_eq!(Bpdu::parse_frame(&buf[..n]), Ok(Bpdu::Config(c)));
    let r = ConfigBpdu {
        flags: FLAG_FORWARDING | FLAG_LEARNING | (3 << 2),
        ..c
    };
    let n = Bpdu::Rst(r).emit_frame(mac(2), &mut buf).unwrap();
    assert_eq!(buf[17 + 2], 2);
    assert_eq!(buf[17 + 35], 0, "version 1 length");
    let Ok(Bpdu::Rst(back)) = Bpdu::parse_frame(&buf[..n]) else {
        panic!("not rst")
    };
    assert_eq!(back.role(), RstRole::Designated);
    let n = Bpdu::Tcn.emit_frame(mac(2), &mut buf).unwrap();
    assert_eq!(&buf[17..21], &[0, 0, 0, 0x80]);
    assert_eq!(Bpdu::parse_frame(&buf[..n]), Ok(Bpdu::Tcn));
}

#[test]
fn bpdu_errors() {
    assert_eq!(Bpdu::parse(&[0, 1, 0, 0]), Err(BpduError::Protocol(1)));
    assert!(matches!(
        Bpdu::parse(&[0, 0, 0, 0, 0]),
        Err(BpduError::Truncated { needed: 35, .. })
    ));
    assert_eq!(
        Bpdu::parse(&[0, 0, 0, 0x33]),
        Err(BpduError::Type {
            bpdu_type: 0x33,
            version: 0
        })
    );
    assert_eq!(Bpdu::parse_frame(&[0u8; 60]), Err(BpduError::NotBpdu));
}

/// Two bridges joined by two links: A.0–B.0 and A.1–B.1.
struct Net {
    a: SpanningTree,
    b: SpanningTree,
    queue: VecDeque<(bool, usize, Bpdu)>,
}

impl Net {
    fn new() -> Self {
        let mut ca = StpConfig::new(mac(1));
        ca.priority = 4096;
        let cb = StpConfig::new(mac(2));
        let mut net = Self {
            a: SpanningTree::new(ca, 0),
            b: SpanningTree::new(cb, 0),
            queue: VecDeque::new(),
        };
        for p in 0..2 {
            let q = &mut net.queue;
            net.a
                .add_port(p, p as u16 + 1, 2, 0, &mut |i, m| q.push_back((true, i, m)));
            net.b.add_port(p, p as u16 + 1, 2, 0, &mut |i, m| {
                q.push_back((false, i, m))
            });
        }
        net
    }

    fn run(&mut self, now: u64) {
        let q = &mut self.queue;
        self.a.tick(now, &mut |i, m| q.push_back((true, i, m)));
        self.b.tick(now, &mut |i, m| q.push_back((false, i, m)));
        while let Some((from_a, i, m)) = self.queue.pop_front() {
            let q = &mut self.queue;
            if from_a {
                self.b
                    .receive(i, &m, now, &mut |i, m| q.push_back((false, i, m)));
            } else {
                self.a
                    .receive(i, &m, now, &mut |i, m| q.push_back((true, i, m)));
            }
        }
    }
}

#[test]
fn loop_is_cut() {
    let mut net = Net::new();
    let mut t = 0;
    while t <= 29_000 {
        net.run(t);
        t += 100;
    }
    assert!(net.a.is_root());
    assert_eq!(net.b.root_id(), net.a.bridge_id());
    assert_eq!(net.b.root_port(), Some(0));
    // Not yet forwarding before two forward delays.
    assert_ne!(net.b.state(0), PortState::Forwarding);
    while t <= 40_000 {
        net.run(t);
        t += 100;
    }
    assert_eq!(net.a.state(0), PortState::Forwarding);
    assert_eq!(net.a.state(1), PortState::Forwarding);
    assert_eq!(net.b.state(0), PortState::Forwarding);
    assert_eq!(
        net.b.state(1),
        PortState::Blocking,
        "the redundant link is cut"
    );
}

#[test]
fn failover_after_max_age() {
    let mut net = Net::new();
    let mut t = 0;
    while t <= 40_000 {
        net.run(t);
        t += 100;
    }
    // Link 0 dies: A's port 0 goes away, B stops hearing on its port 0.
    let q = &mut net.queue;
    net.a
        .remove_port(0, t, &mut |i, m| q.push_back((true, i, m)));
    net.queue.retain(|(_, i, _)| *i != 0);
    let end = t + 60_000;
    while t <= end {
        let q = &mut net.queue;
        net.a.tick(t, &mut |i, m| q.push_back((true, i, m)));
        net.b.tick(t, &mut |i, m| q.push_back((false, i, m)));
        while let Some((from_a, i, m)) = net.queue.pop_front() {
            if i == 0 {
                continue;
            }
            let q = &mut net.queue;
            if from_a {
                net.b
                    .receive(i, &m, t, &mut |i, m| q.push_back((false, i, m)));
            } else {
                net.a
                    .receive(i, &m, t, &mut |i, m| q.push_back((true, i, m)));
            }
        }
        t += 100;
    }
    assert_eq!(net.b.root_port(), Some(1));
    assert_eq!(net.b.state(1), PortState::Forwarding);
}
