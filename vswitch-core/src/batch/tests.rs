//! The fast paths against the plain ones: two bridges with the same random ports and
//! entries receive the same random batches, one as configured and one with the express lane
//! and the flood loop's port masks turned off (every frame through [`Bridge::forward`],
//! floods through the member lists). Transmit actions, drops, every counter and the
//! forwarding table must stay identical, and the express lane must have carried a good share
//! of the frames (else the comparison proves nothing).

use alloc::vec::Vec;

use super::*;
use crate::bridge::BridgeConfig;
use crate::fdb::{EntryKind, FdbConfig, HashKey};
use crate::frame::{EtherType, MacAddr};
use crate::port::{MirrorMode, PortConfig};
use crate::vlan::{AcceptableFrames, VlanConfig, VlanSet};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn station(i: u64) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, i as u8]
}

/// A random port; a `clean` one is a plain forwarding trunk of VLANs 1-3.
fn port_config(r: &mut Rng, i: u64, clean: bool) -> PortConfig {
    if clean {
        return PortConfig::plain()
            .with_vlan(VlanConfig::trunk(VlanSet::from_vids(&[1, 2, 3]), None));
    }
    let mut c = match r.below(6) {
        0 => PortConfig::vm(MacAddr(station(i))),
        _ => PortConfig::plain(),
    };
    c.vlan = match r.below(8) {
        0 => VlanConfig::access(1 + r.below(3) as u16),
        1..=4 => VlanConfig::trunk(VlanSet::from_vids(&[1, 2, 3]), None),
        5 => VlanConfig::trunk(VlanSet::from_vids(&[1, 2]), Some(1)),
        6 => {
            let mut v = VlanConfig::trunk(VlanSet::from_vids(&[2, 3]), Some(3));
            v.ingress_filtering = false;
            v
        }
        _ => {
            let mut v = VlanConfig::trunk(VlanSet::from_vids(&[1, 2, 3]), Some(2));
            v.acceptable =
                [AcceptableFrames::TaggedOnly, AcceptableFrames::UntaggedOnly][r.below(2) as usize];
            v
        }
    };
    if r.below(8) == 0 {
        c.tpid = EtherType::QINQ;
    }
    c.state = match r.below(16) {
        0 => PortState::Learning,
        1 => PortState::Blocking,
        2 => PortState::Disabled,
        _ => PortState::Forwarding,
    };
    c.learning = r.below(10) != 0;
    c.hairpin = r.below(5) == 0;
    c.mtu = if r.below(12) == 0 { 40 } else { 1500 };
    c.security.dhcp_guard = r.below(10) == 0;
    c.mirror = match r.below(16) {
        0 => MirrorMode::Source,
        1 => MirrorMode::Destination,
        _ => MirrorMode::None,
    };
    c.offloads.checksum = r.below(2) == 0;
    c.default_pcp = r.below(8) as u8;
    c.learn_limit = (r.below(5) == 0).then_some(2);
    c.flood.unknown_unicast = r.below(4) != 0;
    c.flood.broadcast = r.below(4) != 0;
    c.flood.multicast = r.below(4) != 0;
    c.group_fwd_mask = if r.below(3) == 0 { 0x0004 } else { 0 };
    c
}

/// A random frame; with `clean`, one the engine forwards (tagged, VID 1-3, station
/// addresses, 60 bytes) seven times in eight.
fn frame(r: &mut Rng, clean: bool) -> Vec<u8> {
    if clean && r.below(8) != 0 {
        let mut f = Vec::new();
        f.extend_from_slice(&match r.below(8) {
            0 => [0xff; 6],
            _ => station(r.below(8)),
        });
        f.extend_from_slice(&station(r.below(8)));
        f.extend_from_slice(&[0x81, 0x00, r.below(8) as u8 * 32, 1 + r.below(3) as u8]);
        f.resize(60, 0x5a);
        return f;
    }
    let dst = match r.below(20) {
        0 => [0xff; 6],
        1 => [0x01, 0x80, 0xc2, 0, 0, r.below(3) as u8],
        2 => [0x01, 0, 0x5e, 0, 0, 1],
        _ => station(r.below(8)),
    };
    let src = match r.below(24) {
        0 => [0; 6],
        1 => [0x01, 0, 0x5e, 0, 0, 2],
        _ => station(r.below(8)),
    };
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    let vid = [0u16, 1, 1, 1, 2, 2, 2, 3, 3, 3, 5, 0x0fff][r.below(12) as usize];
    let tci = (r.below(8) as u16) << 13 | vid;
    match r.below(16) {
        0 => {}
        1 => f.extend_from_slice(&[0x88, 0xa8, (tci >> 8) as u8, tci as u8]),
        _ => f.extend_from_slice(&[0x81, 0x00, (tci >> 8) as u8, tci as u8]),
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let len = match r.below(24) {
        0 => 10,
        1 => 14,
        2 => 17,
        3 => 64,
        4 => 72,
        _ => 60,
    };
    f.resize(len.max(f.len().min(len)), 0x5a);
    f.truncate(len);
    f
}

fn bridge(seed: u64) -> Bridge {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(u128::from(seed) * 7 + 1));
    // Every fourth table is small enough for its limits to bite.
    let capacity = if seed.is_multiple_of(4) { 12 } else { 64 };
    cfg.fdb = FdbConfig {
        capacity,
        learn_limit: capacity * 3 / 4,
        ageing_ms: 1000,
    };
    Bridge::new(cfg)
}

fn assert_same(a: &Bridge, b: &Bridge, seed: u64, batch: usize) {
    for p in a.ports() {
        assert_eq!(
            a.port_stats(p),
            b.port_stats(p),
            "seed {seed} batch {batch} {p:?}"
        );
    }
    for vid in [0, 1, 2, 3, 5, 0x0fff] {
        assert_eq!(
            a.vlan_stats(vid),
            b.vlan_stats(vid),
            "seed {seed} batch {batch} vid {vid}"
        );
    }
    let sorted = |br: &Bridge| {
        let mut v: Vec<_> = br.fdb().entries().collect();
        v.sort_by_key(|e| (e.fid, e.mac.0));
        v
    };
    assert_eq!(sorted(a), sorted(b), "seed {seed} batch {batch}: tables");
}

#[test]
fn express_lane_matches_the_full_pipeline() {
    let (mut frames_seen, mut express) = (0usize, 0usize);
    // The same for the bridges whose traffic uses ports from 64 up.
    let (mut high_seen, mut high_express) = (0usize, 0usize);
    // Floods, and those through the loop without per-member checks.
    let mut floods = [0usize; 2];
    for seed in 1..=300u64 {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (mut a, mut b) = (bridge(seed), bridge(seed));
        b.plain = true;
        // Every other bridge has plain ports and mostly well-formed traffic, so that the
        // express lane carries many frames; the others exercise every rule.
        let clean = seed.is_multiple_of(2);
        // Some bridges put the ports of the traffic at higher indices: across the first two
        // planes of the per-VLAN port masks (60), in the second (64) or the third (130),
        // where the flood loop's masks do not reach either.
        let skip = [0, 0, 0, 0, 0, 60, 64, 130][(seed % 8) as usize];
        // Their VLAN settings differ, so that a test on the wrong port's bit shows.
        for k in 0..skip {
            let c = port_config(&mut r, k as u64, clean);
            assert_eq!(a.add_port(c.clone()), b.add_port(c));
        }
        let n = 2 + r.below(5);
        for i in 0..n {
            let c = port_config(&mut r, i, clean);
            let (pa, pb) = (a.add_port(c.clone()), b.add_port(c));
            assert_eq!(pa, pb);
        }
        let mut ids: Vec<PortId> = a.ports().skip(skip).collect();
        // Shared learning, as private VLANs use it: VLAN 3 learns in VLAN 2's FID.
        if r.below(4) == 0 {
            assert_eq!(a.set_fid(3, 2), b.set_fid(3, 2));
        }
        for _ in 0..r.below(4) {
            let (vid, mac) = (1 + r.below(3) as u16, MacAddr(station(r.below(8))));
            if r.below(3) == 0 {
                assert_eq!(a.add_local(vid, mac, 0), b.add_local(vid, mac, 0));
            } else {
                let port = ids[r.below(ids.len() as u64) as usize];
                let kind = [EntryKind::Static, EntryKind::Sticky][r.below(2) as usize];
                assert_eq!(
                    a.add_static(vid, mac, port, kind, 0),
                    b.add_static(vid, mac, port, kind, 0)
                );
            }
        }
        let (mut oa, mut ob) = (TxBatch::new(), TxBatch::new());
        let mut now = 0;
        for batch in 0..12 {
            now += r.below(400);
            // Now and then a port is reconfigured, removed (leaving a hole in the indices
            // while others remain above it) or added.
            let k = r.below(ids.len() as u64) as usize;
            match r.below(10) {
                0 => {
                    let c = port_config(&mut r, k as u64, clean);
                    let (ra, rb) = (
                        a.set_port_config(ids[k], c.clone()),
                        b.set_port_config(ids[k], c),
                    );
                    assert_eq!(ra, rb);
                }
                1 if ids.len() > 2 => {
                    assert_eq!(a.remove_port(ids[k]), b.remove_port(ids[k]));
                    ids.remove(k);
                }
                2 if ids.len() < 7 => {
                    let c = port_config(&mut r, k as u64, clean);
                    let (pa, pb) = (a.add_port(c.clone()), b.add_port(c));
                    assert_eq!(pa, pb);
                    ids.push(pa.expect("a port"));
                }
                _ => {}
            }
            let data: Vec<(PortId, Vec<u8>, Offload)> = (0..1 + r.below(70))
                .map(|_| {
                    // Now and then a port id that does not exist.
                    let port = match r.below(64) {
                        0 => PortId(9),
                        _ => ids[r.below(ids.len() as u64) as usize],
                    };
                    let offload = Offload {
                        checksum: r.below(20) == 0,
                        lso_mss: 0,
                    };
                    (port, frame(&mut r, clean), offload)
                })
                .collect();
            let rx: Vec<RxFrame<'_>> = data
                .iter()
                .map(|(port, f, offload)| RxFrame {
                    port: *port,
                    data: f,
                    offload: *offload,
                })
                .collect();
            a.process(&rx, now, &mut oa);
            b.process(&rx, now, &mut ob);
            assert_eq!(
                oa.actions(),
                ob.actions(),
                "seed {seed} batch {batch}: actions"
            );
            assert_eq!(oa.drops(), ob.drops(), "seed {seed} batch {batch}: drops");
            assert_same(&a, &b, seed, batch);
            frames_seen += rx.len();
            if skip >= 64 {
                high_seen += rx.len();
            }
        }
        assert_eq!(b.express_hits, 0);
        // The plain bridge turns off only the masks, not the check-free flood loop.
        assert_eq!(a.floods, b.floods, "seed {seed}");
        floods = [floods[0] + a.floods[0], floods[1] + a.floods[1]];
        express += a.express_hits;
        if skip >= 64 {
            high_express += a.express_hits;
        }
    }
    // With these odds about a sixth of all frames qualify.
    assert!(
        express * 8 > frames_seen,
        "express lane took {express} of {frames_seen} frames"
    );
    // Clean seeds flood almost always through the loop without per-member checks.
    assert!(
        floods[1] * 2 > floods[0],
        "{} of {} floods without per-member checks",
        floods[1],
        floods[0]
    );
    assert!(
        high_express * 8 > high_seen,
        "express lane took {high_express} of {high_seen} frames between ports from 64 up"
    );
}
