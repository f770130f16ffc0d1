//! Golden frame tests for the Hyper-V port features, network types, offloads, spanning tree
//! and the batch interface: one test per rule, named after it.

mod common;

use common::{bridge, bridge_with, eth, mac, send, send_rx};
use vswitch_core::batch::{Offload, TxData};
use vswitch_core::features::DropReason;
use vswitch_core::frame::MacAddr;
use vswitch_core::offload::{checksum, finish, sum_words};
use vswitch_core::packet::{Ipv4Packet, TcpSegment};
use vswitch_core::port::{MirrorMode, PortKind, PortState, SwitchType};
use vswitch_core::stp::{Link, StpConfig};
use vswitch_core::vlan::{Edit, VlanConfig, VlanSet};
use vswitch_core::{
    Bridge, BridgeConfig, ConfigError, HashKey, PortConfig, PortId, RxFrame, TxBatch,
};

/// An IPv4 packet (header checksum filled) carrying `proto` and `l4`.
fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(l4);
    p
}

fn udp(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.to_be_bytes());
    u.extend_from_slice(&dst.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An IPv6 packet whose header chain is `next` then `ext` (already encoded) then `l4`.
fn ipv6(next: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
    p[6] = next;
    p[7] = 255;
    p[8] = 0xfe;
    p[9] = 0x80;
    p[24] = 0xff;
    p[25] = 0x02;
    p[39] = 1;
    p.extend_from_slice(ext);
    p.extend_from_slice(l4);
    p
}

fn vm_pair() -> (Bridge, PortId, PortId) {
    let mut br = bridge();
    let a = br.add_port(PortConfig::vm(mac(1))).unwrap();
    let b = br.add_port(PortConfig::vm(mac(2))).unwrap();
    (br, a, b)
}

fn guarded(br: &mut Bridge, p: PortId, dhcp: bool, router: bool) {
    let mut cfg = br.port_config(p).unwrap().clone();
    cfg.security.dhcp_guard = dhcp;
    cfg.security.router_guard = router;
    br.set_port_config(p, cfg).unwrap();
}

// ---- spoofing -------------------------------------------------------------------------------

#[test]
fn mac_spoofing_guard_drops_foreign_source() {
    let (mut br, a, _) = vm_pair();
    let f = eth(MacAddr::BROADCAST, mac(9)).done();
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::MacSpoofing);
    assert!(br.fdb().is_empty(), "a spoofed source teaches nothing");
    let ok = eth(MacAddr::BROADCAST, mac(1)).done();
    assert_eq!(send(&mut br, a, &ok, 0).tx.len(), 1);
}

#[test]
fn mac_spoofing_allowed_learns_any_source() {
    let (mut br, a, b) = vm_pair();
    let mut cfg = br.port_config(a).unwrap().clone();
    cfg.security.allow_mac_spoofing = true;
    br.set_port_config(a, cfg).unwrap();
    let f = eth(MacAddr::BROADCAST, mac(9)).done();
    assert_eq!(send(&mut br, a, &f, 0).ports(), [b]);
    assert_eq!(br.lookup(1, mac(9), 0), Some(a));
}

// ---- DHCP guard -----------------------------------------------------------------------------

#[test]
fn dhcp_guard_drops_dhcpv4_server_messages() {
    let (mut br, a, b) = vm_pair();
    guarded(&mut br, a, true, false);
    let mut bootp = vec![0u8; 240];
    bootp[0] = 2; // BOOTREPLY (offer/ack/nak)
    let offer = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(17, &udp(67, 68, &bootp)));
    assert_eq!(send(&mut br, a, &offer, 0).dropped(), DropReason::DhcpGuard);
    bootp[0] = 1; // BOOTREQUEST from the client passes
    let discover = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(17, &udp(68, 67, &bootp)));
    assert_eq!(send(&mut br, a, &discover, 0).ports(), [b]);
    // The unguarded port may answer.
    bootp[0] = 2;
    let offer = eth(MacAddr::BROADCAST, mac(2)).payload(0x0800, &ipv4(17, &udp(67, 68, &bootp)));
    assert_eq!(send(&mut br, b, &offer, 0).ports(), [a]);
}

#[test]
fn dhcp_guard_drops_dhcpv6_server_messages() {
    let (mut br, a, b) = vm_pair();
    guarded(&mut br, a, true, false);
    let advertise = eth(MacAddr([0x33, 0x33, 0, 1, 0, 2]), mac(1))
        .payload(0x86dd, &ipv6(17, &[], &udp(547, 546, &[2, 0, 0, 1])));
    assert_eq!(
        send(&mut br, a, &advertise, 0).dropped(),
        DropReason::DhcpGuard
    );
    let solicit = eth(MacAddr([0x33, 0x33, 0, 1, 0, 2]), mac(1))
        .payload(0x86dd, &ipv6(17, &[], &udp(546, 547, &[1, 0, 0, 1])));
    assert_eq!(send(&mut br, a, &solicit, 0).ports(), [b]);
    // Between relays (547 to 547) the message type tells: ADVERTISE, REPLY, RECONFIGURE and
    // RELAY-REPL come from servers; SOLICIT, REQUEST and RELAY-FORW carry a client's.
    for (t, server) in [
        (2, true),
        (7, true),
        (10, true),
        (13, true),
        (1, false),
        (3, false),
        (12, false),
    ] {
        let f = eth(MacAddr([0x33, 0x33, 0, 1, 0, 2]), mac(1))
            .payload(0x86dd, &ipv6(17, &[], &udp(547, 547, &[t, 0, 0, 1])));
        let out = send(&mut br, a, &f, 0);
        if server {
            assert_eq!(out.dropped(), DropReason::DhcpGuard, "type {t}");
        } else {
            assert_eq!(out.ports(), [b], "type {t}");
        }
    }
}

#[test]
fn guards_see_through_any_number_of_tags() {
    let (mut br, a, _) = vm_pair();
    guarded(&mut br, a, true, true);
    let mut bootp = vec![0u8; 240];
    bootp[0] = 2;
    let offer = ipv4(17, &udp(67, 68, &bootp));
    let ra = ipv6(58, &[], &[134, 0, 0, 0, 0, 0, 0, 0]);
    // A receiver strips stacked priority tags; three tags must not hide the payload.
    let prio = vswitch_core::frame::Tci::new(0, false, 0);
    let three = |tpid: u16| {
        eth(MacAddr::BROADCAST, mac(1))
            .tag(tpid, prio)
            .tag(0x8100, prio)
            .tag(0x8100, prio)
    };
    let f = three(0x8100).payload(0x0800, &offer);
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::DhcpGuard);
    let f = three(0x88a8).payload(0x86dd, &ra);
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::RouterGuard);
    let f = three(0x8100).tag(0x8100, prio).payload(0x86dd, &ra);
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::RouterGuard);
}

/// Sets an IPv4 packet's flags and fragment offset (`flags_offset`, as on the wire) and
/// refreshes its header checksum.
fn fragment(mut ip: Vec<u8>, flags_offset: u16) -> Vec<u8> {
    ip[6..8].copy_from_slice(&flags_offset.to_be_bytes());
    ip[10..12].fill(0);
    let c = checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip
}

#[test]
fn dhcp_guard_drops_anything_to_the_client_port() {
    let (mut br, a, b) = vm_pair();
    guarded(&mut br, a, true, false);
    let mut bootp = vec![0u8; 240];
    bootp[0] = 2;
    let reply = udp(1234, 68, &bootp);
    // A first fragment that carries only the UDP header: no BOOTP op byte, a source port that
    // is not 67. The receiver reassembles it into a BOOTREPLY.
    let first = fragment(ipv4(17, &reply[..8]), 0x2000);
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &first);
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::DhcpGuard);
    // Whole, from another source port.
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(17, &reply));
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::DhcpGuard);
    // A first fragment too short to show the ports.
    let tiny = fragment(ipv4(17, &reply[..4]), 0x2000);
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &tiny);
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::DhcpGuard);
    // A client's request still passes, fragmented or not.
    let request = fragment(ipv4(17, &udp(68, 67, &bootp)[..8]), 0x2000);
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &request);
    assert_eq!(send(&mut br, a, &f, 0).ports(), [b]);
    // From the server port, a BOOTREPLY is a server's whatever its destination (a relay's
    // port here); a BOOTREQUEST from that port is a relay forwarding a client's, and passes.
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(17, &udp(67, 67, &bootp)));
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::DhcpGuard);
    let mut request = bootp.clone();
    request[0] = 1;
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(17, &udp(67, 67, &request)));
    assert_eq!(send(&mut br, a, &f, 0).ports(), [b]);
    // A later fragment holds no UDP header, only data (its first fragment is the one
    // dropped): it passes even when its bytes look like a reply to the client port.
    let later = fragment(ipv4(17, &reply[..16]), 0x0001);
    let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &later);
    assert_eq!(send(&mut br, a, &f, 0).ports(), [b]);
}

/// Each guard drops only its own traffic: with only the router guard on, DHCP servers'
/// messages pass, and with only the DHCP guard on, router advertisements pass (IPv4 and IPv6).
#[test]
fn each_guard_drops_only_its_own_traffic() {
    let mut bootp = vec![0u8; 240];
    bootp[0] = 2;
    let dhcp_frames = [
        eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(17, &udp(67, 68, &bootp))),
        eth(MacAddr([0x33, 0x33, 0, 1, 0, 2]), mac(1))
            .payload(0x86dd, &ipv6(17, &[], &udp(547, 546, &[2, 0, 0, 1]))),
    ];
    let router_frames = [
        eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(1, &[9, 0, 0, 0, 0, 0, 0, 0])),
        eth(MacAddr([0x33, 0x33, 0, 0, 0, 1]), mac(1))
            .payload(0x86dd, &ipv6(58, &[], &[134, 0, 0, 0, 0, 0, 0, 0])),
    ];
    for (dhcp, router) in [(true, false), (false, true)] {
        let (mut br, a, b) = vm_pair();
        guarded(&mut br, a, dhcp, router);
        for (frames, on, reason) in [
            (&dhcp_frames, dhcp, DropReason::DhcpGuard),
            (&router_frames, router, DropReason::RouterGuard),
        ] {
            for f in frames {
                let out = send(&mut br, a, f, 0);
                if on {
                    assert_eq!(out.dropped(), reason);
                } else {
                    assert_eq!(out.ports(), [b], "{reason:?} with only the other guard");
                }
            }
        }
    }
}

// ---- router guard ---------------------------------------------------------------------------

#[test]
fn router_guard_drops_router_advertisements_and_redirects() {
    let (mut br, a, b) = vm_pair();
    guarded(&mut br, a, false, true);
    let dst = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
    for t in [134u8, 137] {
        let f = eth(dst, mac(1)).payload(0x86dd, &ipv6(58, &[], &[t, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(
            send(&mut br, a, &f, 0).dropped(),
            DropReason::RouterGuard,
            "type {t}"
        );
    }
    let rs = eth(dst, mac(1)).payload(0x86dd, &ipv6(58, &[], &[133, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(send(&mut br, a, &rs, 0).ports(), [b]);
    for t in [5u8, 9] {
        let f = eth(MacAddr::BROADCAST, mac(1)).payload(0x0800, &ipv4(1, &[t, 0, 0, 0]));
        assert_eq!(
            send(&mut br, a, &f, 0).dropped(),
            DropReason::RouterGuard,
            "icmpv4 {t}"
        );
    }
}

#[test]
fn router_guard_sees_through_extension_headers() {
    let (mut br, a, b) = vm_pair();
    guarded(&mut br, a, false, true);
    let dst = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
    // Hop-by-hop (8 bytes) then destination options (16 bytes) then the RA.
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[58, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let f = eth(dst, mac(1)).payload(0x86dd, &ipv6(0, &ext, &[134, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::RouterGuard);
    // A chain that runs past the packet hides the upper layer: dropped as suspect (RFC 7113).
    let f = eth(dst, mac(1)).payload(0x86dd, &ipv6(0, &[58, 9, 0, 0, 0, 0, 0, 0], &[]));
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::RouterGuard);
    // A first fragment must carry the ICMPv6 header (RFC 7112): one that does not is dropped.
    let first = [58, 0, 0, 1, 0, 0, 0, 7];
    let f = eth(dst, mac(1)).payload(0x86dd, &ipv6(44, &first, &[]));
    assert_eq!(send(&mut br, a, &f, 0).dropped(), DropReason::RouterGuard);
    // A later fragment carries data, not a header: it passes whatever its first byte.
    let later = [58, 0, 0, 8, 0, 0, 0, 7];
    let f = eth(dst, mac(1)).payload(0x86dd, &ipv6(44, &later, &[134, 0, 0, 0]));
    assert_eq!(send(&mut br, a, &f, 0).ports(), [b]);
}

// ---- private VLANs --------------------------------------------------------------------------

/// Primary 100, isolated 101, community 102: two isolated, two community, one promiscuous
/// port and a trunk uplink.
fn pvlan() -> (Bridge, [PortId; 6]) {
    let mut br = bridge();
    let iso = VlanConfig::isolated(100, 101);
    let com = VlanConfig::community(100, 102);
    let pro = VlanConfig::promiscuous(100, &VlanSet::from_vids(&[101, 102]));
    let up = VlanConfig::trunk(VlanSet::from_vids(&[100, 101, 102]), None);
    let p = [iso.clone(), iso, com.clone(), com, pro, up]
        .map(|v| br.add_port(PortConfig::plain().with_vlan(v)).unwrap());
    br.configure_pvlan(100, &[101, 102]).unwrap();
    (br, p)
}

#[test]
fn pvlan_isolated_port_reaches_only_promiscuous_and_uplink() {
    let (mut br, [i1, _, _, _, pr, up]) = pvlan();
    let out = send(&mut br, i1, &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    assert_eq!(out.ports(), [pr, up]);
    assert_eq!(
        &out.tx[1].1[12..16],
        &[0x81, 0, 0, 101],
        "secondary VID on the uplink"
    );
}

#[test]
fn pvlan_community_port_reaches_its_community_and_promiscuous() {
    let (mut br, [_, _, c1, c2, pr, up]) = pvlan();
    let out = send(&mut br, c1, &eth(MacAddr::BROADCAST, mac(3)).done(), 0);
    assert_eq!(out.ports(), [c2, pr, up]);
}

#[test]
fn pvlan_promiscuous_port_reaches_everyone() {
    let (mut br, [i1, i2, c1, c2, pr, up]) = pvlan();
    let out = send(&mut br, pr, &eth(MacAddr::BROADCAST, mac(5)).done(), 0);
    assert_eq!(out.ports(), [i1, i2, c1, c2, up]);
    assert_eq!(
        &out.tx[4].1[12..16],
        &[0x81, 0, 0, 100],
        "primary VID on the uplink"
    );
}

#[test]
fn pvlan_learning_is_shared_and_isolation_holds_for_unicast() {
    let (mut br, [i1, i2, _, _, pr, _]) = pvlan();
    send(&mut br, i1, &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    // The promiscuous reply (primary VLAN) finds the host learned in the isolated VLAN.
    let f = eth(mac(1), mac(5)).done();
    assert_eq!(send(&mut br, pr, &f, 0).ports(), [i1]);
    // Another isolated host cannot reach it, even knowing its address.
    let g = eth(mac(1), mac(2)).done();
    assert_eq!(send(&mut br, i2, &g, 0).dropped(), DropReason::EgressFilter);
}

// ---- mirroring and statistics ---------------------------------------------------------------

#[test]
fn mirroring_copies_source_traffic_to_the_monitor() {
    let mut br = bridge();
    let mut src = PortConfig::plain();
    src.mirror = MirrorMode::Source;
    let s = br.add_port(src).unwrap();
    let o = br.add_port(PortConfig::plain()).unwrap();
    let mut mon = PortConfig::plain();
    mon.mirror = MirrorMode::Destination;
    mon.flood.broadcast = false;
    mon.flood.unknown_unicast = false;
    let m = br.add_port(mon).unwrap();
    // Received on the source port.
    let f = eth(MacAddr::BROADCAST, mac(1)).done();
    let out = send(&mut br, s, &f, 0);
    assert_eq!(out.tx, [(o, f.clone()), (m, f)]);
    // Sent to the source port.
    let g = eth(mac(1), mac(2)).done();
    assert_eq!(send(&mut br, o, &g, 0).ports(), [s, m]);
    // Traffic not touching the source is not mirrored.
    let h = eth(mac(2), mac(1)).done();
    assert_eq!(send(&mut br, s, &h, 0).ports(), [o, m]);
    let k = eth(mac(9), mac(2)).done();
    assert_eq!(
        send(&mut br, o, &k, 0).ports(),
        [s, m],
        "flood reaches the source"
    );
}

#[test]
fn mirroring_survives_the_removal_of_a_monitor_or_a_source() {
    let mut br = bridge();
    let mut src = PortConfig::plain();
    src.mirror = MirrorMode::Source;
    let (s1, s2) = (br.add_port(src.clone()).unwrap(), br.add_port(src).unwrap());
    let o = br.add_port(PortConfig::plain()).unwrap();
    let mut mon = PortConfig::plain();
    mon.mirror = MirrorMode::Destination;
    mon.flood.unknown_unicast = false;
    let (m1, m2) = (br.add_port(mon.clone()).unwrap(), br.add_port(mon).unwrap());
    // o learns mac(2); s1 and s2 send to it.
    send(&mut br, o, &eth(MacAddr::BROADCAST, mac(2)).done(), 0);
    let to_o = |n| eth(mac(2), mac(n)).done();
    assert_eq!(send(&mut br, s1, &to_o(1), 0).ports(), [o, m1, m2]);
    br.remove_port(m1).unwrap();
    assert_eq!(send(&mut br, s1, &to_o(1), 0).ports(), [o, m2]);
    br.remove_port(s1).unwrap();
    assert_eq!(send(&mut br, s2, &to_o(3), 0).ports(), [o, m2]);
    br.remove_port(s2).unwrap();
    // No source left: o's broadcast reaches m2 once, as a flood, not as a mirror copy too.
    let bcast = eth(MacAddr::BROADCAST, mac(2)).done();
    assert_eq!(send(&mut br, o, &bcast, 0).ports(), [m2]);
}

#[test]
fn statistics_count_per_port_and_per_vlan() {
    let mut br = bridge();
    let a = br
        .add_port(PortConfig::plain().with_vlan(VlanConfig::access(7)))
        .unwrap();
    let b = br
        .add_port(PortConfig::plain().with_vlan(VlanConfig::access(7)))
        .unwrap();
    let c = br
        .add_port(PortConfig::plain().with_vlan(VlanConfig::access(7)))
        .unwrap();
    send(&mut br, a, &eth(MacAddr::BROADCAST, mac(1)).len(100), 0);
    send(
        &mut br,
        a,
        &eth(MacAddr::BROADCAST, MacAddr::ZERO).done(),
        0,
    );
    let sa = br.port_stats(a).unwrap();
    assert_eq!(
        (sa.rx_frames, sa.rx_bytes, sa.flooded, sa.learned),
        (2, 160, 1, 1)
    );
    assert_eq!(sa.dropped(DropReason::InvalidSource), 1);
    assert_eq!(sa.dropped(DropReason::MacSpoofing), 0);
    let nonzero: Vec<_> = sa.drops().filter(|&(_, n)| n != 0).collect();
    assert_eq!(nonzero, [(DropReason::InvalidSource, 1)]);
    assert_eq!(sa.drops().count(), DropReason::COUNT);
    let sb = br.port_stats(b).unwrap();
    assert_eq!((sb.tx_frames, sb.tx_bytes), (1, 100));
    assert_eq!(br.port_stats(c).unwrap().tx_frames, 1);
    let v = br.vlan_stats(7);
    assert_eq!((v.rx_frames, v.rx_bytes, v.tx_frames), (1, 100, 2));
    assert_eq!(br.vlan_stats(1).rx_frames, 0);
}

// ---- network types --------------------------------------------------------------------------

#[test]
fn private_switch_admits_only_vm_ports() {
    let mut br = bridge_with(SwitchType::Private, 64, 300_000);
    br.add_port(PortConfig::vm(mac(1))).unwrap();
    assert_eq!(
        br.add_port(PortConfig::host(mac(2))),
        Err(ConfigError::KindNotAllowed {
            switch: SwitchType::Private,
            kind: PortKind::Host
        })
    );
    assert!(br.add_port(PortConfig::external()).is_err());
}

#[test]
fn internal_switch_admits_one_host_port_and_no_uplink() {
    let mut br = bridge_with(SwitchType::Internal, 64, 300_000);
    assert_eq!(br.switch_type(), SwitchType::Internal);
    // VM ports do not count against the one host port.
    br.add_port(PortConfig::vm(mac(5))).unwrap();
    br.add_port(PortConfig::vm(mac(6))).unwrap();
    let h = br.add_port(PortConfig::host(mac(1))).unwrap();
    assert!(br.add_port(PortConfig::host(mac(2))).is_err());
    assert!(br.add_port(PortConfig::external()).is_err());
    // Reconfiguring the host port is not adding a second one.
    br.set_port_config(h, PortConfig::host(mac(3))).unwrap();
    br.remove_port(h).unwrap();
    br.add_port(PortConfig::host(mac(2))).unwrap();
}

#[test]
fn external_switch_admits_one_uplink_trunking_every_vlan() {
    let mut br = bridge();
    let up = br.add_port(PortConfig::external()).unwrap();
    assert!(br.add_port(PortConfig::external()).is_err());
    let vm = br
        .add_port(PortConfig::vm(mac(1)).with_vlan(VlanConfig::access(42)))
        .unwrap();
    let out = send(&mut br, vm, &eth(MacAddr::BROADCAST, mac(1)).done(), 0);
    let (port, bytes) = out.only();
    assert_eq!(port, up);
    assert_eq!(&bytes[12..16], &[0x81, 0, 0, 42]);
}

// ---- offloads -------------------------------------------------------------------------------

/// A TCP/IPv4 frame with `len` payload bytes and an unfilled checksum.
fn tcp_frame(len: usize) -> Vec<u8> {
    let mut tcp = vec![0u8; 20 + len];
    tcp[..4].copy_from_slice(&[0x04, 0x00, 0x00, 0x50]);
    tcp[4..8].copy_from_slice(&7u32.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x18;
    for (i, b) in tcp[20..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    eth(mac(2), mac(1)).payload(0x0800, &ipv4(6, &tcp))
}

/// A frame from `port` asking for checksum offload, and segmentation when `mss` is non-zero.
fn offloaded(port: PortId, data: &[u8], mss: u16) -> RxFrame<'_> {
    RxFrame {
        port,
        data,
        offload: Offload {
            checksum: true,
            lso_mss: mss,
        },
    }
}

fn tcp_checksum_ok(frame: &[u8]) -> bool {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    let l4 = ip.payload();
    let mut acc = sum_words(0, &ip.src());
    acc = sum_words(acc, &ip.dst()) + 6 + l4.len() as u64;
    finish(sum_words(acc, l4)) == 0
}

fn offload_pair(caps: vswitch_core::port::PortOffloads) -> (Bridge, PortId, PortId) {
    let mut br = bridge();
    let a = br.add_port(PortConfig::plain()).unwrap();
    let mut cfg = PortConfig::plain();
    cfg.offloads = caps;
    let b = br.add_port(cfg).unwrap();
    br.add_static(1, mac(2), b, vswitch_core::fdb::EntryKind::Static, 0)
        .unwrap();
    (br, a, b)
}

#[test]
fn checksum_is_computed_for_a_port_without_checksum_offload() {
    let (mut br, a, b) = offload_pair(Default::default());
    let f = tcp_frame(100);
    assert!(!tcp_checksum_ok(&f));
    let rx = offloaded(a, &f, 0);
    let out = send_rx(&mut br, rx, 0);
    let (port, bytes) = out.only();
    assert_eq!(port, b);
    assert!(tcp_checksum_ok(bytes));
}

#[test]
fn checksum_offload_passes_through_to_a_capable_port() {
    let caps = vswitch_core::port::PortOffloads {
        checksum: true,
        lso: false,
    };
    let (mut br, a, b) = offload_pair(caps);
    let f = tcp_frame(100);
    let mut out = TxBatch::new();
    let frames = [offloaded(a, &f, 0)];
    br.process(&frames, 0, &mut out);
    let act = out.actions()[0];
    assert_eq!(
        (act.port, act.data, out.offload(&act, &frames)),
        (b, TxData::Frame(Edit::Unchanged), frames[0].offload)
    );
}

#[test]
fn large_send_is_segmented_for_a_port_without_lso() {
    let (mut br, a, b) = offload_pair(Default::default());
    let f = tcp_frame(4000);
    let rx = offloaded(a, &f, 1460);
    let out = send_rx(&mut br, rx, 0);
    assert_eq!(out.ports(), [b, b, b]);
    let mut data = Vec::new();
    for (i, (_, seg)) in out.tx.iter().enumerate() {
        assert!(seg.len() <= 1514);
        assert!(tcp_checksum_ok(seg), "segment {i}");
        let ip = Ipv4Packet::new_checked(&seg[14..]).unwrap();
        assert!(ip.checksum_ok());
        let tcp = TcpSegment::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.seq(), 7 + 1460 * i as u32);
        data.extend_from_slice(tcp.payload());
    }
    assert_eq!(data, f[54..]);
}

/// A large send with a tiny MSS (below Linux's 88) is not cut into thousands of frames: MSS
/// 1 made one 4,000-byte frame 4,000 frames of 55 bytes per egress copy.
#[test]
fn large_send_with_a_tiny_mss_is_dropped() {
    let (mut br, a, b) = offload_pair(Default::default());
    let f = tcp_frame(4000);
    for mss in [1, 87] {
        // Not a large send it can cut: a frame over the ingress MTU.
        let out = send_rx(&mut br, offloaded(a, &f, mss), 0);
        assert_eq!(out.dropped(), DropReason::Oversize, "mss {mss}");
    }
    let out = send_rx(&mut br, offloaded(a, &f, 88), 0);
    assert_eq!(out.ports(), [b; 46]);
}

#[test]
fn large_send_passes_through_to_an_lso_port() {
    let caps = vswitch_core::port::PortOffloads {
        checksum: true,
        lso: true,
    };
    let (mut br, a, b) = offload_pair(caps);
    let f = tcp_frame(4000);
    let out = send_rx(&mut br, offloaded(a, &f, 1460), 0);
    assert_eq!(
        out.only(),
        (b, &f[..]),
        "oversize accepted and passed whole"
    );
}

#[test]
fn offload_of_a_non_tcp_frame_is_dropped_on_that_port() {
    let (mut br, a, b) = offload_pair(Default::default());
    let f = eth(mac(2), mac(1)).payload(0x0806, &[0; 28]);
    let rx = offloaded(a, &f, 0);
    assert!(send_rx(&mut br, rx, 0).tx.is_empty());
    assert_eq!(br.port_stats(b).unwrap().dropped(DropReason::Offload), 1);
}

#[test]
fn large_send_segments_fit_the_egress_mtu() {
    let (mut br, a, b) = offload_pair(Default::default());
    let f = tcp_frame(8000);
    // The sender asks for a larger MSS than the egress port's MTU (1500) allows.
    let out = send_rx(&mut br, offloaded(a, &f, 4000), 0);
    assert_eq!(
        out.ports(),
        [b; 6],
        "8,000 bytes in segments of at most 1,460"
    );
    let mut data = Vec::new();
    for (i, (_, seg)) in out.tx.iter().enumerate() {
        assert!(seg.len() <= 1514, "segment {i}: {} bytes", seg.len());
        assert!(tcp_checksum_ok(seg), "segment {i}");
        let ip = Ipv4Packet::new_checked(&seg[14..]).unwrap();
        let tcp = TcpSegment::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.seq(), 7 + 1460 * i as u32);
        data.extend_from_slice(tcp.payload());
    }
    assert_eq!(data, f[54..]);
}

#[test]
fn only_a_tcp_large_send_may_exceed_the_ingress_mtu() {
    let caps = vswitch_core::port::PortOffloads {
        checksum: true,
        lso: true,
    };
    let (mut br, a, _) = offload_pair(caps);
    // 9,000 bytes of UDP marked for segmentation: no one can cut it.
    let f = eth(mac(2), mac(1)).payload(0x0800, &ipv4(17, &udp(1, 2, &[0; 9000])));
    let rx = RxFrame {
        port: a,
        data: &f,
        offload: Offload {
            checksum: false,
            lso_mss: 1460,
        },
    };
    assert_eq!(send_rx(&mut br, rx, 0).dropped(), DropReason::Oversize);
}

#[test]
fn mirror_copies_are_finished_for_the_monitor() {
    let (mut br, a, b) = offload_pair(vswitch_core::port::PortOffloads {
        checksum: true,
        lso: true,
    });
    let mut cfg = br.port_config(a).unwrap().clone();
    cfg.mirror = MirrorMode::Source;
    br.set_port_config(a, cfg).unwrap();
    let mut mon = PortConfig::plain();
    mon.mirror = MirrorMode::Destination;
    mon.mtu = 1400;
    let m = br.add_port(mon).unwrap();
    let f = tcp_frame(4000);
    let frames = [offloaded(a, &f, 1460)];
    let mut out = TxBatch::new();
    br.process(&frames, 0, &mut out);
    let ports: Vec<PortId> = out.actions().iter().map(|x| x.port).collect();
    assert_eq!(
        ports,
        [b, m, m, m],
        "whole to the LSO port, cut for the monitor"
    );
    for act in &out.actions()[1..] {
        let seg = out.to_vec(act, &frames);
        assert!(seg.len() <= 1414);
        assert!(tcp_checksum_ok(&seg));
        assert_eq!(out.offload(act, &frames), Offload::default());
    }
    // A monitor whose MTU the frame exceeds gets no copy.
    let big = eth(mac(2), mac(1)).len(1500);
    assert_eq!(send(&mut br, a, &big, 0).ports(), [b]);
    assert_eq!(br.port_stats(m).unwrap().dropped(DropReason::TxOversize), 1);
}

// ---- spanning tree --------------------------------------------------------------------------

fn stp_bridge(n: u8, priority: u16) -> (Bridge, [PortId; 3]) {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(u128::from(n)));
    let mut stp = StpConfig::new(MacAddr([2, 0xb, 0, 0, 0, n]));
    stp.priority = priority;
    cfg.stp = Some(stp);
    let mut br = Bridge::new(cfg);
    let mut up = PortConfig::plain();
    up.stp = true;
    let p = [
        br.add_port(up.clone()).unwrap(),
        br.add_port(up).unwrap(),
        br.add_port(PortConfig::vm(mac(n))).unwrap(),
    ];
    (br, p)
}

/// Collects every frame in `out` that leaves an uplink (ports 0 and 1), for the other bridge.
fn wire(out: &TxBatch, frames: &[RxFrame<'_>], next: &mut Vec<(PortId, Vec<u8>)>) {
    for a in out.actions() {
        if a.port.0 < 2 {
            next.push((a.port, out.to_vec(a, frames)));
        }
    }
}

#[test]
fn spanning_tree_cuts_a_loop_between_two_uplinks() {
    let (mut a, pa) = stp_bridge(1, 4096);
    let (mut b, pb) = stp_bridge(2, 32768);
    // Both bridges exchange BPDUs for 40 s.
    run_pair(&mut a, &mut b, 0, 40_000, [false; 2]);
    let mut out = TxBatch::new();
    assert!(a.stp().unwrap().is_root());
    assert_eq!(b.port_state(pb[0]), Some(PortState::Forwarding));
    assert_eq!(b.port_state(pb[1]), Some(PortState::Blocking));
    assert_eq!(a.port_state(pa[0]), Some(PortState::Forwarding));
    // A broadcast from the VM on A crosses once per forwarding link and dies out.
    let f = eth(MacAddr::BROADCAST, mac(1)).done();
    let mut pending = vec![(true, pa[2], f)];
    let mut crossings = 0;
    for _ in 0..10 {
        let mut next = Vec::new();
        for (on_a, port, bytes) in pending.drain(..) {
            let br = if on_a { &mut a } else { &mut b };
            let frames = [RxFrame::new(port, &bytes)];
            br.process(&frames, 41_000, &mut out);
            for act in out.actions() {
                if act.port.0 < 2 {
                    crossings += 1;
                    next.push((!on_a, act.port, out.to_vec(act, &frames)));
                }
            }
        }
        pending = next;
    }
    assert!(pending.is_empty(), "the broadcast still circulates");
    assert_eq!(
        crossings, 2,
        "A floods to both uplinks; B accepts only on its root port"
    );
}

/// Runs two bridges joined by their uplinks 0–0 and 1–1 from `from` to `to` ms (ticks every
/// 100 ms); a link marked down in `cut` carries nothing.
fn run_pair(a: &mut Bridge, b: &mut Bridge, from: u64, to: u64, cut: [bool; 2]) {
    let mut inbox: [Vec<(PortId, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    let mut out = TxBatch::new();
    for now in (from..=to).step_by(100) {
        for side in 0..2 {
            let br = if side == 0 { &mut *a } else { &mut *b };
            let received = std::mem::take(&mut inbox[side]);
            let frames: Vec<RxFrame<'_>> =
                received.iter().map(|(p, f)| RxFrame::new(*p, f)).collect();
            let mut next = Vec::new();
            br.process(&frames, now, &mut out);
            wire(&out, &frames, &mut next);
            br.tick(now, &mut out);
            wire(&out, &[], &mut next);
            next.retain(|(p, _)| !cut[p.0 as usize]);
            inbox[1 - side].extend(next);
        }
    }
}

#[test]
fn spanning_tree_fails_over_when_the_root_link_goes_down_and_back() {
    let (mut a, pa) = stp_bridge(1, 4096);
    let (mut b, pb) = stp_bridge(2, 32768);
    run_pair(&mut a, &mut b, 0, 40_000, [false; 2]);
    assert_eq!(b.port_state(pb[0]), Some(PortState::Forwarding));
    assert_eq!(b.port_state(pb[1]), Some(PortState::Blocking));
    // The root link fails: the port leaves the tree at once (no wait for the stored BPDU
    // to reach max age), so the blocked link forwards after two forward delays (30 s).
    for (br, p) in [(&mut a, pa[0]), (&mut b, pb[0])] {
        br.set_port_link(p, Link::Down).unwrap();
    }
    run_pair(&mut a, &mut b, 40_100, 69_000, [true, false]);
    assert_eq!(b.port_state(pb[1]), Some(PortState::Learning));
    run_pair(&mut a, &mut b, 69_100, 72_000, [true, false]);
    assert_eq!(b.port_state(pb[0]), Some(PortState::Disabled));
    assert_eq!(b.port_state(pb[1]), Some(PortState::Forwarding));
    run_pair(&mut a, &mut b, 72_100, 100_000, [true, false]);
    assert_eq!(b.port_state(pb[1]), Some(PortState::Forwarding));
    // Back up: it rejoins the tree and is the root port again, the other link blocked.
    for (br, p) in [(&mut a, pa[0]), (&mut b, pb[0])] {
        br.set_port_link(p, Link::FullDuplex).unwrap();
    }
    run_pair(&mut a, &mut b, 100_100, 160_000, [false; 2]);
    assert_eq!(b.port_state(pb[0]), Some(PortState::Forwarding));
    assert_eq!(b.port_state(pb[1]), Some(PortState::Blocking));
    assert_eq!(a.port_state(pa[0]), Some(PortState::Forwarding));
}

#[test]
fn spanning_tree_port_disabled_by_the_administrator_stays_disabled() {
    let (mut a, _) = stp_bridge(1, 4096);
    let (mut b, pb) = stp_bridge(2, 32768);
    run_pair(&mut a, &mut b, 0, 40_000, [false; 2]);
    assert_eq!(b.port_state(pb[0]), Some(PortState::Forwarding));
    let mut cfg = b.port_config(pb[0]).unwrap().clone();
    cfg.state = PortState::Disabled;
    b.set_port_config(pb[0], cfg).unwrap();
    run_pair(&mut a, &mut b, 40_100, 100_000, [false; 2]);
    assert_eq!(b.port_state(pb[0]), Some(PortState::Disabled));
    // The other link took over, and a broadcast from B's VM leaves only by it.
    assert_eq!(b.port_state(pb[1]), Some(PortState::Forwarding));
    let f = eth(MacAddr::BROADCAST, mac(2)).done();
    assert_eq!(send(&mut b, pb[2], &f, 100_000).ports(), [pb[1]]);
}

#[test]
fn spanning_tree_consumes_bpdus_and_guards_vm_ports() {
    let (mut a, pa) = stp_bridge(1, 4096);
    let mut out = TxBatch::new();
    a.tick(0, &mut out);
    let bpdus: Vec<Vec<u8>> = out.actions().iter().map(|x| out.to_vec(x, &[])).collect();
    assert_eq!(out.actions().len(), 2, "hello on both designated uplinks");
    assert!(bpdus
        .iter()
        .all(|b| b[..6] == MacAddr::BRIDGE_GROUP.0 && b[14..17] == [0x42, 0x42, 3]));
    let r = send(&mut a, pa[0], &bpdus[1], 1);
    assert!(r.tx.is_empty() && r.drops.is_empty(), "consumed");
    assert_eq!(a.port_stats(pa[0]).unwrap().bpdus, 1);
    assert_eq!(
        send(&mut a, pa[2], &bpdus[1], 1).dropped(),
        DropReason::BpduGuard
    );
}

#[test]
fn spanning_tree_saturates_a_hostile_root_path_cost() {
    use vswitch_core::stp::{Bpdu, BridgeId, ConfigBpdu};
    let (mut br, p) = stp_bridge(1, 32768);
    let c = ConfigBpdu {
        flags: 0,
        root: BridgeId::new(0, mac(0x51)),
        root_path_cost: u32::MAX,
        bridge: BridgeId::new(0, mac(0x52)),
        port: 0x8001,
        message_age: 0,
        max_age: 20 * 256,
        hello_time: 2 * 256,
        forward_delay: 15 * 256,
    };
    let mut f = [0u8; 64];
    let n = Bpdu::Config(c).emit_frame(mac(0x52), &mut f).unwrap();
    // The bridge relays the root's BPDU on its designated port at once (802.1D 8.6.2).
    let out = send(&mut br, p[0], &f[..n], 0);
    assert_eq!(br.stp().unwrap().root_id(), BridgeId::new(0, mac(0x51)));
    // The cost through port 0 is the largest there is, not a wrapped small one.
    let sent: Vec<u32> = out
        .tx
        .iter()
        .filter(|x| x.0 == p[1])
        .filter_map(|x| match Bpdu::parse_frame(&x.1) {
            Ok(Bpdu::Config(c)) => Some(c.root_path_cost),
            _ => None,
        })
        .collect();
    assert_eq!(sent, [u32::MAX]);
}

#[test]
fn spanning_tree_port_numbers_stay_within_12_bits() {
    use vswitch_core::stp::Bpdu;
    let mut cfg = BridgeConfig::new(HashKey::from_seed(7));
    cfg.stp = Some(StpConfig::new(mac(0x61)));
    let mut br = Bridge::new(cfg);
    let mut idle = PortConfig::plain();
    idle.state = PortState::Disabled;
    let mut up = PortConfig::plain();
    up.stp = true;
    let mut numbers = Vec::new();
    // Index 65,535 (whose `u16` + 1 overflowed) is in the unit test: debug builds recount
    // the flood facts at every added port, so 65,536 ports take minutes there.
    for i in 0..=4096 {
        let id = br.add_port(if matches!(i, 4094..=4096) {
            up.clone()
        } else {
            idle.clone()
        });
        assert_eq!(id.unwrap().0 as usize, i);
    }
    let mut out = TxBatch::new();
    br.tick(0, &mut out);
    for a in out.actions() {
        if let Ok(Bpdu::Config(c)) = Bpdu::parse_frame(&out.to_vec(a, &[])) {
            numbers.push((a.port.0, c.port & 0x0fff));
        }
    }
    numbers.sort();
    assert_eq!(numbers, [(4094, 4095), (4095, 1), (4096, 2)]);
}

// ---- batch interface ------------------------------------------------------------------------

#[test]
fn batch_output_borrows_unmodified_frames() {
    let mut br = bridge();
    let t1 = br
        .add_port(PortConfig::plain().with_vlan(VlanConfig::trunk(VlanSet::all(), None)))
        .unwrap();
    let t2 = br
        .add_port(PortConfig::plain().with_vlan(VlanConfig::trunk(VlanSet::all(), None)))
        .unwrap();
    let a = br
        .add_port(PortConfig::plain().with_vlan(VlanConfig::access(5)))
        .unwrap();
    let f1 = eth(MacAddr::BROADCAST, mac(1)).vlan(5).done();
    let f2 = eth(MacAddr::BROADCAST, mac(2)).vlan(6).done();
    let frames = [
        RxFrame::new(t1, &f1),
        RxFrame::new(t1, &f2),
        RxFrame::new(PortId(99), &f2),
    ];
    let mut out = TxBatch::new();
    br.process(&frames, 0, &mut out);
    let acts = out.actions();
    assert_eq!(
        acts.iter().map(|x| (x.port, x.frame)).collect::<Vec<_>>(),
        [(t2, 0), (a, 0), (t2, 1)]
    );
    let borrowed = out.borrowed(&acts[0], &frames).unwrap();
    assert!(std::ptr::eq(borrowed, &f1[..]), "zero copy");
    assert_eq!(acts[1].data, TxData::Frame(Edit::PopTag));
    assert!(out.borrowed(&acts[1], &frames).is_none());
    assert_eq!(out.drops(), [(2, DropReason::NoSuchPort)]);
}
