//! Golden frame tests for the 802.1D/802.1Q rules: one test per rule, named after it, with the
//! exact bytes expected on each egress port.

mod common;

use common::{bridge, bridge_with, eth, mac, send};
use vswitch_core::fdb::EntryKind;
use vswitch_core::features::DropReason;
use vswitch_core::frame::{MacAddr, Tci};
use vswitch_core::port::{PortState, SwitchType};
use vswitch_core::stp::Link;
use vswitch_core::vlan::{AcceptableFrames, VlanConfig, VlanSet};
use vswitch_core::{PortConfig, PortId};

fn plain() -> PortConfig {
    PortConfig::plain()
}

fn trunk(vids: &[u16], native: Option<u16>) -> PortConfig {
    plain().with_vlan(VlanConfig::trunk(VlanSet::from_vids(vids), native))
}

fn access(vid: u16) -> PortConfig {
    plain().with_vlan(VlanConfig::access(vid))
}

/// Three plain ports in VLAN 1.
fn three() -> (vswitch_core::Bridge, [PortId; 3]) {
    let mut br = bridge();
    let p = [0, 1, 2].map(|_| br.add_port(plain()).unwrap());
    (br, p)
}

// ---- intake ---------------------------------------------------------------------------------

#[test]
fn group_source_is_dropped_and_not_learned() {
    let (mut br, p) = three();
    let src = MacAddr([0x03, 0, 0, 0, 0, 1]);
    let out = send(&mut br, p[0], &eth(mac(9), src).done(), 0);
    assert_eq!(out.dropped(), DropReason::InvalidSource);
    assert!(br.fdb().is_empty());
}

#[test]
fn zero_source_is_dropped() {
    let (mut br, p) = three();
    let out = send(&mut br, p[0], &eth(mac(9), MacAddr::ZERO).done(), 0);
    assert_eq!(out.dropped(), DropReason::InvalidSource);
}

#[test]
fn frame_shorter_than_header_is_malformed() {
    let (mut br, p) = three();
    assert_eq!(
        send(&mut br, p[0], &[0xff; 13], 0).dropped(),
        DropReason::Malformed
    );
}

#[test]
fn cut_off_tag_is_malformed() {
    let (mut br, p) = three();
    let mut f = eth(mac(2), mac(1)).done();
    f[12..14].copy_from_slice(&[0x81, 0x00]);
    f.truncate(15);
    assert_eq!(send(&mut br, p[0], &f, 0).dropped(), DropReason::Malformed);
}

#[test]
fn runt_from_vm_is_forwarded_unpadded() {
    let (mut br, p) = three();
    let f = eth(MacAddr::BROADCAST, mac(1)).len(20);
    let out = send(&mut br, p[0], &f, 0);
    assert_eq!(out.ports(), [p[1], p[2]]);
    assert!(out.tx.iter().all(|t| t.1 == f));
}

#[test]
fn oversize_frame_is_dropped_per_mtu() {
    let mut br = bridge();
    let t = [
        br.add_port(trunk(&[10], Some(1))).unwrap(),
        br.add_port(trunk(&[10], Some(1))).unwrap(),
    ];
    // MTU 1500: 1514 bytes untagged and 1518 tagged pass, one byte more does not.
    let ok = eth(MacAddr::BROADCAST, mac(1)).len(1514);
    assert_eq!(send(&mut br, t[0], &ok, 0).ports(), [t[1]]);
    let big = eth(MacAddr::BROADCAST, mac(1)).len(1515);
    assert_eq!(send(&mut br, t[0], &big, 0).dropped(), DropReason::Oversize);
    let tagged = eth(MacAddr::BROADCAST, mac(1)).vlan(10).len(1518);
    assert_eq!(send(&mut br, t[0], &tagged, 0).ports(), [t[1]]);
    let tagged = eth(MacAddr::BROADCAST, mac(1)).vlan(10).len(1519);
    assert_eq!(
        send(&mut br, t[0], &tagged, 0).dropped(),
        DropReason::Oversize
    );
}

#[test]
fn egress_copy_over_port_mtu_is_dropped_on_that_port() {
    let mut br = bridge();
    let a = br.add_port(plain()).unwrap();
    let mut small = plain();
    small.mtu = 1000;
    let b = br.add_port(small).unwrap();
    let c = br.add_port(plain()).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).len(1200);
    assert_eq!(send(&mut br, a, &f, 0).ports(), [c]);
    assert_eq!(br.port_stats(b).unwrap().dropped(DropReason::TxOversize), 1);
}

#[test]
fn vid_4095_is_dropped() {
    let mut br = bridge();
    let t = br.add_port(trunk(&[10], None)).unwrap();
    br.add_port(trunk(&[10], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).vlan(4095).done();
    assert_eq!(send(&mut br, t, &f, 0).dropped(), DropReason::ReservedVid);
}

// ---- VLAN classification and egress tagging -------------------------------------------------

#[test]
fn access_untagged_frame_egresses_trunk_tagged_with_pvid() {
    let mut br = bridge();
    let a = br.add_port(access(10)).unwrap();
    let t = br.add_port(trunk(&[10, 20], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &[0x45; 46]);
    let out = send(&mut br, a, &f, 0);
    let expect = eth(MacAddr::BROADCAST, mac(1))
        .vlan(10)
        .payload(0x0800, &[0x45; 46]);
    assert_eq!(out.only(), (t, &expect[..]));
}

#[test]
fn access_port_drops_tagged_frames() {
    let mut br = bridge();
    let a = br.add_port(access(10)).unwrap();
    br.add_port(trunk(&[10], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).vlan(10).done();
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::FrameType);
}

#[test]
fn priority_tagged_frame_joins_pvid_keeping_pcp() {
    let mut br = bridge();
    let a = br.add_port(access(10)).unwrap();
    let t = br.add_port(trunk(&[10], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1))
        .tag(0x8100, Tci::new(5, false, 0))
        .payload(0x0800, &[]);
    let out = send(&mut br, a, &f, 0);
    let (port, bytes) = out.only();
    assert_eq!(port, t);
    assert_eq!(&bytes[12..16], &[0x81, 0x00, 0xa0, 0x0a], "pcp 5, vid 10");
    assert_eq!(bytes.len(), 60);
}

#[test]
fn trunk_ingress_filtering_drops_vid_not_allowed() {
    let mut br = bridge();
    let t = br.add_port(trunk(&[10, 20], None)).unwrap();
    br.add_port(trunk(&[10, 20, 30], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).vlan(30).done();
    assert_eq!(send(&mut br, t, &f, 0).dropped(), DropReason::NotMember);
}

#[test]
fn ingress_filtering_off_admits_any_vid() {
    let mut br = bridge();
    let mut cfg = trunk(&[10], None);
    cfg.vlan.ingress_filtering = false;
    let t = br.add_port(cfg).unwrap();
    let u = br.add_port(trunk(&[30], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).vlan(30).done();
    assert_eq!(send(&mut br, t, &f, 0).ports(), [u]);
}

#[test]
fn trunk_without_native_vlan_drops_untagged() {
    let mut br = bridge();
    let t = br.add_port(trunk(&[10], None)).unwrap();
    br.add_port(trunk(&[10], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).done();
    assert_eq!(send(&mut br, t, &f, 0).dropped(), DropReason::NoPvid);
}

#[test]
fn acceptable_frames_tagged_only_drops_untagged() {
    let mut br = bridge();
    let mut cfg = trunk(&[10], Some(10));
    cfg.vlan.acceptable = AcceptableFrames::TaggedOnly;
    let t = br.add_port(cfg).unwrap();
    br.add_port(trunk(&[10], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).done();
    assert_eq!(send(&mut br, t, &f, 0).dropped(), DropReason::FrameType);
}

#[test]
fn native_vlan_is_untagged_both_ways() {
    let mut br = bridge();
    let t = br.add_port(trunk(&[10], Some(20))).unwrap();
    let a = br.add_port(access(20)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1)).done();
    assert_eq!(send(&mut br, t, &f, 0).only(), (a, &f[..]));
    let g = eth(MacAddr::BROADCAST, mac(2)).done();
    assert_eq!(send(&mut br, a, &g, 0).only(), (t, &g[..]));
}

#[test]
fn untagging_repads_to_60_bytes() {
    let mut br = bridge();
    let t = br.add_port(trunk(&[10], None)).unwrap();
    let a = br.add_port(access(10)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1))
        .tag(0x8100, Tci::new(3, false, 10))
        .payload(0x0800, &[7; 42]);
    assert_eq!(f.len(), 60);
    let out = send(&mut br, t, &f, 0);
    let mut expect = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &[7; 42]);
    expect.resize(60, 0);
    assert_eq!(out.only(), (a, &expect[..]));
}

#[test]
fn tag_with_foreign_tpid_is_payload() {
    // On a C-VLAN port an 802.1ad S-tag is not a tag: the frame is untagged, classified to
    // the PVID, and keeps its S-tag as payload.
    let mut br = bridge();
    let a = br.add_port(access(10)).unwrap();
    let t = br.add_port(trunk(&[10, 100], None)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1))
        .tag(0x88a8, Tci::new(0, false, 100))
        .payload(0x0800, &[]);
    let out = send(&mut br, a, &f, 0);
    let (port, bytes) = out.only();
    assert_eq!(port, t);
    assert_eq!(&bytes[12..20], &[0x81, 0, 0, 10, 0x88, 0xa8, 0, 100]);
}

#[test]
fn s_vlan_port_classifies_outer_s_tag_and_keeps_inner_c_tag() {
    let mut br = bridge();
    let mut s_cfg = trunk(&[100], None);
    s_cfg.tpid = vswitch_core::frame::EtherType::QINQ;
    let s = br.add_port(s_cfg.clone()).unwrap();
    let s2 = br.add_port(s_cfg).unwrap();
    let c = br.add_port(access(100)).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1))
        .tag(0x88a8, Tci::new(2, false, 100))
        .vlan(7)
        .payload(0x0800, &[]);
    let out = send(&mut br, s, &f, 0);
    assert_eq!(out.ports(), [s2, c]);
    assert_eq!(out.tx[0].1, f, "S-port to S-port: unchanged");
    // To the customer-facing access port the S-tag is popped; the C-tag stays.
    assert_eq!(&out.tx[1].1[12..16], &[0x81, 0, 0, 7]);
}

#[test]
fn egress_tpid_of_the_egress_port_is_used() {
    let mut br = bridge();
    let c = br.add_port(trunk(&[100], None)).unwrap();
    let mut s_cfg = trunk(&[100], None);
    s_cfg.tpid = vswitch_core::frame::EtherType::QINQ;
    let s = br.add_port(s_cfg).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1))
        .tag(0x8100, Tci::new(6, true, 100))
        .payload(0x0800, &[]);
    let out = send(&mut br, c, &f, 0);
    let (port, bytes) = out.only();
    assert_eq!(port, s);
    assert_eq!(
        &bytes[12..16],
        &[0x88, 0xa8, 0xd0, 100],
        "TPID rewritten, PCP 6 and DEI kept"
    );
}

#[test]
fn flooding_follows_tpid_and_mtu_reconfiguration() {
    // The flood path keeps bridge-wide facts (one TPID for all ports, the smallest MTU): they
    // must follow every configuration change, in both directions.
    let mut br = bridge();
    let c = br.add_port(trunk(&[100], None)).unwrap();
    let mut s_cfg = trunk(&[100], None);
    s_cfg.tpid = vswitch_core::frame::EtherType::QINQ;
    let s = br.add_port(s_cfg.clone()).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(1))
        .tag(0x8100, Tci::new(0, false, 100))
        .payload(0x0800, &[0x45; 46]);
    let tpid_at_s = |br: &mut vswitch_core::Bridge| {
        let out = send(br, c, &f, 0);
        let (port, bytes) = out.only();
        assert_eq!(port, s);
        [bytes[12], bytes[13]]
    };
    assert_eq!(tpid_at_s(&mut br), [0x88, 0xa8]);
    s_cfg.tpid = vswitch_core::frame::EtherType::VLAN;
    br.set_port_config(s, s_cfg.clone()).unwrap();
    assert_eq!(tpid_at_s(&mut br), [0x81, 0x00]);
    s_cfg.tpid = vswitch_core::frame::EtherType::QINQ;
    br.set_port_config(s, s_cfg.clone()).unwrap();
    assert_eq!(tpid_at_s(&mut br), [0x88, 0xa8]);

    let big = eth(MacAddr::BROADCAST, mac(2))
        .vlan(100)
        .payload(0x0800, &[0x45; 1100]);
    // Same TPID everywhere again, so only the MTU decides.
    s_cfg.tpid = vswitch_core::frame::EtherType::VLAN;
    s_cfg.mtu = 1000;
    br.set_port_config(s, s_cfg.clone()).unwrap();
    let d = br.add_port(trunk(&[100], None)).unwrap();
    assert_eq!(send(&mut br, c, &big, 0).ports(), [d]);
    s_cfg.mtu = 1500;
    br.set_port_config(s, s_cfg.clone()).unwrap();
    assert_eq!(send(&mut br, c, &big, 0).ports(), [s, d]);
    br.remove_port(d).unwrap();
    assert_eq!(send(&mut br, c, &big, 0).ports(), [s]);
}

#[test]
fn learning_is_per_vlan() {
    let mut br = bridge();
    let t = br.add_port(trunk(&[10, 20], None)).unwrap();
    let a10 = br.add_port(access(10)).unwrap();
    let a20 = br.add_port(access(20)).unwrap();
    let b20 = br.add_port(access(20)).unwrap();
    send(&mut br, a10, &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    // mac(1) is known in VLAN 10 only: in VLAN 20 a frame to it floods.
    let f = eth(mac(1), mac(2)).vlan(20).done();
    assert_eq!(send(&mut br, t, &f, 0).ports(), [a20, b20]);
    let g = eth(mac(1), mac(2)).vlan(10).done();
    assert_eq!(send(&mut br, t, &g, 0).ports(), [a10]);
}

#[test]
fn leaving_a_vlan_forgets_the_addresses_learned_there() {
    let mut br = bridge();
    let a = br.add_port(access(10)).unwrap();
    let b = br.add_port(access(10)).unwrap();
    let c = br.add_port(access(10)).unwrap();
    send(&mut br, b, &eth(MacAddr::BROADCAST, mac(2)).done(), 0);
    assert_eq!(br.lookup(10, mac(2), 0), Some(b));
    br.set_port_vlan(b, VlanConfig::access(20)).unwrap();
    assert_eq!(br.lookup(10, mac(2), 0), None);
    // The address is unknown in VLAN 10 again: frames to it flood instead of dying on b.
    let f = eth(mac(2), mac(1)).done();
    assert_eq!(send(&mut br, a, &f, 1).ports(), [c]);
    // A change that keeps the VLANs keeps the table.
    send(&mut br, c, &eth(MacAddr::BROADCAST, mac(3)).done(), 2);
    let mut cfg = br.port_config(c).unwrap().clone();
    cfg.flood.multicast = false;
    br.set_port_config(c, cfg).unwrap();
    assert_eq!(br.lookup(10, mac(3), 2), Some(c));
}

#[test]
fn shared_fid_learns_across_vlans() {
    let mut br = bridge();
    let t = br.add_port(trunk(&[10, 20], None)).unwrap();
    let a10 = br.add_port(access(10)).unwrap();
    br.add_port(access(20)).unwrap();
    br.set_fid(20, br.fid(10)).unwrap();
    send(&mut br, a10, &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    assert_eq!(br.lookup(20, mac(1), 0), Some(a10));
    // Known in the shared FID, but a10 is not a member of VLAN 20: filtered, not flooded.
    let f = eth(mac(1), mac(2)).vlan(20).done();
    assert_eq!(send(&mut br, t, &f, 0).dropped(), DropReason::EgressFilter);
    // FIDs are 12 bits, like VIDs; the mapping of a refused one is left as it was.
    for bad in [4096, 5000, u16::MAX] {
        assert_eq!(
            br.set_fid(20, bad),
            Err(vswitch_core::ConfigError::InvalidVid(bad))
        );
    }
    assert_eq!(br.fid(20), br.fid(10));
    br.set_fid(20, 4095).unwrap();
    assert_eq!(br.fid(20), 4095);
}

// ---- learning and forwarding ----------------------------------------------------------------

#[test]
fn known_unicast_goes_only_to_its_port() {
    let (mut br, p) = three();
    send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 0);
    let f = eth(mac(2), mac(1)).done();
    assert_eq!(send(&mut br, p[0], &f, 1).only(), (p[1], &f[..]));
}

#[test]
fn unknown_unicast_floods_vlan_minus_ingress() {
    let mut br = bridge();
    let a = br.add_port(access(10)).unwrap();
    let b = br.add_port(access(10)).unwrap();
    br.add_port(access(20)).unwrap();
    let d = br.add_port(access(10)).unwrap();
    let f = eth(mac(9), mac(1)).done();
    assert_eq!(send(&mut br, a, &f, 0).ports(), [b, d]);
}

#[test]
fn broadcast_floods_vlan_minus_ingress() {
    let (mut br, p) = three();
    let f = eth(MacAddr::BROADCAST, mac(1)).done();
    assert_eq!(send(&mut br, p[1], &f, 0).ports(), [p[0], p[2]]);
}

#[test]
fn multicast_floods_like_broadcast() {
    let (mut br, p) = three();
    let f = eth(MacAddr([0x01, 0, 0x5e, 0, 0, 1]), mac(1)).done();
    assert_eq!(send(&mut br, p[0], &f, 0).ports(), [p[1], p[2]]);
}

#[test]
fn frame_is_never_reflected_to_its_ingress_port() {
    let (mut br, p) = three();
    send(&mut br, p[0], &eth(MacAddr::BROADCAST, mac(2)).done(), 0);
    let f = eth(mac(2), mac(1)).done();
    assert_eq!(send(&mut br, p[0], &f, 0).dropped(), DropReason::Reflection);
}

#[test]
fn hairpin_port_reflects_unicast_and_floods() {
    let mut br = bridge();
    let mut cfg = plain();
    cfg.hairpin = true;
    let h = br.add_port(cfg).unwrap();
    let o = br.add_port(plain()).unwrap();
    send(&mut br, h, &eth(MacAddr::BROADCAST, mac(2)).done(), 0);
    let f = eth(mac(2), mac(1)).done();
    assert_eq!(send(&mut br, h, &f, 0).only(), (h, &f[..]));
    let b = eth(MacAddr::BROADCAST, mac(1)).done();
    assert_eq!(send(&mut br, h, &b, 0).ports(), [h, o]);
}

#[test]
fn mac_move_repoints_the_entry() {
    let (mut br, p) = three();
    send(&mut br, p[0], &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    send(&mut br, p[2], &eth(MacAddr::BROADCAST, mac(1)).done(), 1);
    assert_eq!(br.lookup(1, mac(1), 1), Some(p[2]));
    assert_eq!(br.port_stats(p[2]).unwrap().moves, 1);
    let f = eth(mac(1), mac(2)).done();
    assert_eq!(send(&mut br, p[1], &f, 2).ports(), [p[2]]);
}

#[test]
fn sticky_entry_never_moves() {
    let (mut br, p) = three();
    br.add_static(1, mac(1), p[0], EntryKind::Sticky, 0)
        .unwrap();
    send(&mut br, p[2], &eth(MacAddr::BROADCAST, mac(1)).done(), 1);
    assert_eq!(br.lookup(1, mac(1), 1), Some(p[0]));
}

#[test]
fn static_entry_moves_but_never_ages() {
    let (mut br, p) = three();
    br.add_static(1, mac(1), p[0], EntryKind::Static, 0)
        .unwrap();
    assert_eq!(br.lookup(1, mac(1), 10_000_000), Some(p[0]));
    send(&mut br, p[2], &eth(MacAddr::BROADCAST, mac(1)).done(), 1);
    assert_eq!(
        br.lookup(1, mac(1), 1),
        Some(p[2]),
        "Linux static: moves on learning"
    );
    assert_eq!(br.age(10_000_000, usize::MAX).removed, 0);
    assert_eq!(br.fdb().get(1, mac(1)).unwrap().kind, EntryKind::Static);
}

#[test]
fn local_entry_is_delivered_to_the_switch() {
    let (mut br, p) = three();
    br.add_local(1, mac(7), 0).unwrap();
    let f = eth(mac(7), mac(1)).done();
    assert_eq!(send(&mut br, p[0], &f, 0).only(), (PortId::LOCAL, &f[..]));
    send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(7)).done(), 0);
    assert_eq!(
        br.lookup(1, mac(7), 0),
        Some(PortId::LOCAL),
        "local entries never move"
    );
}

/// The switch itself takes the broadcasts and multicasts of the VLANs it belongs to (a local
/// address makes it a member), untagged by default; not unknown unicast, not other VLANs'
/// floods.
#[test]
fn local_vlan_member_takes_broadcast_and_multicast() {
    let mut br = bridge();
    let a = br.add_port(access(10)).unwrap();
    let t = br.add_port(trunk(&[10, 20], None)).unwrap();
    br.add_local(10, mac(7), 0).unwrap();
    assert!(br.local_vlans().contains(10));
    let bcast = eth(MacAddr::BROADCAST, mac(1)).payload(0x0806, &[1; 46]);
    let out = send(&mut br, a, &bcast, 0);
    assert_eq!(out.ports(), [t, PortId::LOCAL]);
    assert_eq!(out.tx[1].1, bcast, "untagged, as received");
    let mcast = eth(MacAddr([0x33, 0x33, 0, 0, 0, 1]), mac(2))
        .vlan(10)
        .done();
    let out = send(&mut br, t, &mcast, 0);
    assert_eq!(out.ports(), [a, PortId::LOCAL]);
    assert_eq!(
        out.tx[1].1, out.tx[0].1,
        "the tag removed, as for the access port"
    );
    let unknown = eth(mac(9), mac(1)).done();
    assert_eq!(send(&mut br, a, &unknown, 0).ports(), [t]);
    let other = eth(MacAddr::BROADCAST, mac(3)).vlan(20).done();
    assert_eq!(send(&mut br, t, &other, 0).ports(), [] as [PortId; 0]);
    br.set_local_vlan(20, true).unwrap();
    assert_eq!(send(&mut br, t, &other, 0).ports(), [PortId::LOCAL]);
    br.set_local_vlan(10, false).unwrap();
    assert_eq!(send(&mut br, a, &bcast, 0).ports(), [t]);
    assert!(br.set_local_vlan(4095, true).is_err());
}

/// With several VLANs the local stack takes them tagged, so that every frame says its VLAN:
/// an untagged frame from an access port gets its PVID (and the port's priority), a tagged one
/// keeps its tag; untagged VLANs stay untagged.
#[test]
fn local_tagged_vlans_say_their_vlan() {
    let mut br = bridge();
    let mut cfg = access(10);
    cfg.default_pcp = 5;
    let a = br.add_port(cfg).unwrap();
    let t = br.add_port(trunk(&[10, 20], None)).unwrap();
    br.add_local(10, mac(7), 0).unwrap();
    br.add_local(20, mac(7), 0).unwrap();
    br.set_local_tagged(10, true).unwrap();
    br.set_local_tagged(20, true).unwrap();
    assert!(br.local_tagged().contains(10) && !br.local_tagged().contains(30));
    let from_access = eth(mac(7), mac(1)).done();
    let out = send(&mut br, a, &from_access, 0);
    assert_eq!(out.only().0, PortId::LOCAL);
    assert_eq!(
        out.tx[0].1,
        eth(mac(7), mac(1))
            .tag(0x8100, Tci::new(5, false, 10))
            .len(64),
        "the PVID and the port's priority, in an 802.1Q tag"
    );
    let bcast = eth(MacAddr::BROADCAST, mac(2)).vlan(20).done();
    let out = send(&mut br, t, &bcast, 0);
    assert_eq!(out.ports(), [PortId::LOCAL]);
    assert_eq!(out.tx[0].1, bcast, "a tagged frame keeps its tag");
    br.set_local_tagged(20, false).unwrap();
    let out = send(&mut br, t, &bcast, 0);
    assert_eq!(out.tx[0].1, eth(MacAddr::BROADCAST, mac(2)).done());
    let to_local = eth(mac(7), mac(2)).vlan(20).done();
    assert_eq!(
        send(&mut br, t, &to_local, 0).only().1,
        eth(mac(7), mac(2)).done(),
        "unicast to the switch follows the same rule"
    );
    assert!(br.set_local_tagged(0, true).is_err());
}

#[test]
fn entries_age_out_and_the_sweep_is_bounded() {
    let mut br = bridge_with(SwitchType::External, 64, 2000);
    let p = [0, 1].map(|_| br.add_port(plain()).unwrap());
    send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 1000);
    let f = eth(mac(2), mac(1)).done();
    assert_eq!(send(&mut br, p[0], &f, 2999).ports(), [p[1]]);
    // Age reaches the ageing time: the entry is ignored at once, flooding resumes.
    let q = br.add_port(plain()).unwrap();
    assert_eq!(send(&mut br, p[0], &f, 3000).ports(), [p[1], q]);
    let r = br.age(3000, 10);
    assert_eq!(r.visited, 10);
    let mut removed = r.removed;
    while removed < 1 {
        removed += br.age(3000, 10).removed;
    }
    assert_eq!(br.fdb().get(1, mac(2)), None);
}

#[test]
fn ageing_time_zero_learns_nothing() {
    let mut br = bridge_with(SwitchType::External, 64, 0);
    let p = [0, 1].map(|_| br.add_port(plain()).unwrap());
    send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 0);
    assert!(br.fdb().is_empty());
}

#[test]
fn ageing_time_set_at_run_time_applies_to_later_learning() {
    let mut br = bridge_with(SwitchType::External, 64, 300_000);
    let p = [0, 1].map(|_| br.add_port(plain()).unwrap());
    br.set_ageing(0);
    send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 0);
    assert!(br.fdb().is_empty());
    br.set_ageing(500);
    send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 1000);
    assert_eq!(br.lookup(1, mac(2), 1499), Some(p[1]));
    assert_eq!(br.lookup(1, mac(2), 1500), None);
}

#[test]
fn flush_and_remove_entry_drop_what_they_name() {
    let (mut br, p) = three();
    br.add_static(1, mac(9), p[2], EntryKind::Static, 0)
        .unwrap();
    for (i, n) in [(0, 1), (1, 2), (1, 3)] {
        send(&mut br, p[i], &eth(MacAddr::BROADCAST, mac(n)).done(), 0);
    }
    assert!(br.remove_entry(1, mac(1)));
    assert!(!br.remove_entry(1, mac(1)), "already gone");
    assert_eq!(br.lookup(1, mac(1), 0), None);
    assert_eq!(br.lookup(1, mac(2), 0), Some(p[1]));
    // Flush: every dynamic entry, not the static one.
    br.flush();
    assert_eq!(br.lookup(1, mac(2), 0), None);
    assert_eq!(br.lookup(1, mac(3), 0), None);
    assert_eq!(br.lookup(1, mac(9), 0), Some(p[2]));
    assert!(br.remove_entry(1, mac(9)));
    assert!(br.fdb().is_empty());
}

#[test]
fn port_with_learning_off_teaches_nothing() {
    let mut br = bridge();
    let mut cfg = plain();
    cfg.learning = false;
    let a = br.add_port(cfg).unwrap();
    br.add_port(plain()).unwrap();
    send(&mut br, a, &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    assert!(br.fdb().is_empty());
}

#[test]
fn port_learn_limit_stops_learning_then_floods() {
    let mut br = bridge();
    let mut cfg = plain();
    cfg.learn_limit = Some(2);
    let a = br.add_port(cfg).unwrap();
    let b = br.add_port(plain()).unwrap();
    for i in 1..=3 {
        send(&mut br, a, &eth(MacAddr::BROADCAST, mac(i)).done(), 0);
    }
    assert_eq!(br.fdb().port_len(a.0), 2);
    assert_eq!(br.port_stats(a).unwrap().learn_refused, 1);
    assert_eq!(
        send(&mut br, b, &eth(mac(3), mac(9)).done(), 0).ports(),
        [a]
    );
    assert_eq!(br.lookup(1, mac(3), 0), None);
}

#[test]
fn global_learn_limit_caps_the_table() {
    let mut br = bridge_with(SwitchType::External, 4, 300_000);
    let a = br.add_port(plain()).unwrap();
    br.add_port(plain()).unwrap();
    for i in 1..=10 {
        send(&mut br, a, &eth(MacAddr::BROADCAST, mac(i)).done(), 0);
    }
    assert_eq!(br.fdb().len(), 4);
    assert_eq!(br.port_stats(a).unwrap().learn_refused, 6);
}

#[test]
fn learning_state_learns_but_does_not_forward() {
    let (mut br, p) = three();
    br.set_port_state(p[0], PortState::Learning).unwrap();
    let out = send(&mut br, p[0], &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    assert_eq!(out.dropped(), DropReason::Learning);
    assert_eq!(br.lookup(1, mac(1), 0), Some(p[0]));
    // And a learning port receives nothing.
    assert_eq!(
        send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 0).ports(),
        [p[2]]
    );
}

#[test]
fn blocking_port_neither_learns_nor_forwards() {
    let (mut br, p) = three();
    br.set_port_state(p[0], PortState::Blocking).unwrap();
    let out = send(&mut br, p[0], &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    assert_eq!(out.dropped(), DropReason::PortState);
    assert!(br.fdb().is_empty());
}

#[test]
fn link_down_port_is_disabled_without_spanning_tree() {
    let (mut br, p) = three();
    br.set_port_link(p[0], Link::Down).unwrap();
    let out = send(&mut br, p[0], &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    assert_eq!(out.dropped(), DropReason::PortState);
    assert!(br.fdb().is_empty());
    // Nor does it receive floods; a new administrative state does not bring it back.
    br.set_port_state(p[0], PortState::Forwarding).unwrap();
    assert_eq!(
        send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 0).ports(),
        [p[2]]
    );
    br.set_port_link(p[0], Link::FullDuplex).unwrap();
    assert_eq!(
        send(&mut br, p[1], &eth(MacAddr::BROADCAST, mac(2)).done(), 0).ports(),
        [p[0], p[2]]
    );
}

#[test]
fn reused_port_index_takes_only_its_new_vlans() {
    let mut br = bridge();
    let a = br.add_port(trunk(&[10, 20], None)).unwrap();
    let b = br.add_port(trunk(&[10, 20], None)).unwrap();
    br.remove_port(b).unwrap();
    let b2 = br.add_port(trunk(&[20], None)).unwrap();
    assert_eq!(b2, b);
    // Hosts known in VLAN 10 on both ports (the old port's VLAN).
    send(
        &mut br,
        a,
        &eth(MacAddr::BROADCAST, mac(1)).vlan(10).done(),
        0,
    );
    br.add_static(10, mac(2), b2, EntryKind::Static, 0).unwrap();
    // Known unicast in VLAN 10 neither enters nor leaves through the new port.
    let from_b = eth(mac(1), mac(2)).vlan(10).done();
    assert_eq!(
        send(&mut br, b2, &from_b, 1).dropped(),
        DropReason::NotMember
    );
    let to_b = eth(mac(2), mac(1)).vlan(10).done();
    assert!(send(&mut br, a, &to_b, 1).ports().is_empty());
    // VLAN 20 works both ways.
    send(
        &mut br,
        b2,
        &eth(MacAddr::BROADCAST, mac(3)).vlan(20).done(),
        1,
    );
    let to_b = eth(mac(3), mac(1)).vlan(20).done();
    assert_eq!(send(&mut br, a, &to_b, 1).only(), (b2, &to_b[..]));
}

#[test]
fn flood_knobs_apply_per_egress_port() {
    let (mut br, p) = three();
    let mut cfg = plain();
    cfg.flood.unknown_unicast = false;
    br.set_port_config(p[2], cfg).unwrap();
    assert_eq!(
        send(&mut br, p[0], &eth(mac(9), mac(1)).done(), 0).ports(),
        [p[1]]
    );
    assert_eq!(
        send(&mut br, p[0], &eth(MacAddr::BROADCAST, mac(1)).done(), 0).ports(),
        [p[1], p[2]]
    );
}

#[test]
fn removing_a_port_flushes_its_entries() {
    let (mut br, p) = three();
    send(&mut br, p[2], &eth(MacAddr::BROADCAST, mac(3)).done(), 0);
    br.remove_port(p[2]).unwrap();
    assert!(br.fdb().is_empty());
    assert_eq!(
        send(&mut br, p[0], &eth(mac(3), mac(1)).done(), 0).ports(),
        [p[1]]
    );
    assert_eq!(br.add_port(plain()).unwrap(), p[2], "index reused");
}

#[test]
fn ports_are_added_and_removed_at_run_time_without_limit() {
    let mut br = bridge_with(SwitchType::External, 8192, 300_000);
    let ports: Vec<PortId> = (0..3000).map(|_| br.add_port(plain()).unwrap()).collect();
    let out = send(
        &mut br,
        ports[0],
        &eth(MacAddr::BROADCAST, mac(1)).done(),
        0,
    );
    assert_eq!(out.tx.len(), 2999);
    for p in &ports[1..2000] {
        br.remove_port(*p).unwrap();
    }
    let out = send(
        &mut br,
        ports[0],
        &eth(MacAddr::BROADCAST, mac(1)).done(),
        0,
    );
    assert_eq!(out.tx.len(), 1000);
}

// ---- reserved addresses ---------------------------------------------------------------------

fn reserved(x: u8) -> MacAddr {
    MacAddr([0x01, 0x80, 0xc2, 0, 0, x])
}

#[test]
fn bpdu_address_is_flooded_when_stp_is_off() {
    let (mut br, p) = three();
    let f = eth(reserved(0), mac(1)).done();
    assert_eq!(send(&mut br, p[0], &f, 0).ports(), [p[1], p[2]]);
}

#[test]
fn pause_address_is_never_relayed() {
    let (mut br, p) = three();
    let mut cfg = plain();
    cfg.group_fwd_mask = 0xffff;
    br.set_port_config(p[0], cfg).unwrap();
    let f = eth(reserved(1), mac(1)).done();
    assert_eq!(send(&mut br, p[0], &f, 0).dropped(), DropReason::Reserved);
}

#[test]
fn reserved_addresses_are_filtered_unless_in_the_forward_mask() {
    let (mut br, p) = three();
    for x in 2..16u8 {
        let f = eth(reserved(x), mac(1)).done();
        assert_eq!(
            send(&mut br, p[0], &f, 0).dropped(),
            DropReason::Reserved,
            "-{x:02x}"
        );
    }
    let mut cfg = plain();
    cfg.group_fwd_mask = 1 << 3 | 1 << 14;
    br.set_port_config(p[0], cfg).unwrap();
    for x in [3u8, 14] {
        let f = eth(reserved(x), mac(1)).done();
        assert_eq!(send(&mut br, p[0], &f, 0).ports(), [p[1], p[2]], "-{x:02x}");
    }
    // The mask is the ingress port's: p1 still filters.
    let f = eth(reserved(3), mac(2)).done();
    assert_eq!(send(&mut br, p[1], &f, 0).dropped(), DropReason::Reserved);
}

#[test]
fn addresses_past_the_reserved_block_flood() {
    let (mut br, p) = three();
    for x in [0x10u8, 0x20, 0x21] {
        let f = eth(reserved(x), mac(1)).done();
        assert_eq!(send(&mut br, p[0], &f, 0).ports(), [p[1], p[2]], "-{x:02x}");
    }
}

#[test]
fn reserved_frames_still_teach_their_source() {
    let (mut br, p) = three();
    send(&mut br, p[0], &eth(reserved(2), mac(1)).done(), 0);
    assert_eq!(br.lookup(1, mac(1), 0), Some(p[0]));
}
