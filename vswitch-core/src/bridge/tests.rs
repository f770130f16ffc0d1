//! The per-VLAN port masks (every bit reads back alone, in the low row and in the planes from
//! port 64 up, through `has`, `egress` and `low`) and the spanning tree's port numbers.

use super::{stp_port_number, VidPorts};

const PORTS: [usize; 10] = [0, 1, 5, 63, 64, 65, 127, 128, 130, 200];
const VIDS: [usize; 6] = [0, 1, 2, 100, 4094, 4095];
const KINDS: [usize; 3] = [VidPorts::INGRESS, VidPorts::EGRESS, VidPorts::UNTAGGED];

/// Checks every (VID, kind, port) of the grid against `set`, the bits that should be on.
fn check(v: &VidPorts, set: &[(usize, usize, usize)]) {
    for &vid in &VIDS {
        for &i in &PORTS {
            let on = |kind| set.contains(&(vid, kind, i));
            for kind in KINDS {
                assert_eq!(v.has(vid, kind, i), on(kind), "{set:?}: {vid} {kind} {i}");
            }
            let egress = on(VidPorts::EGRESS).then_some(on(VidPorts::UNTAGGED));
            assert_eq!(v.egress(vid, i), egress, "{set:?}: egress {vid} {i}");
        }
        for kind in KINDS {
            let low = PORTS
                .iter()
                .filter(|&&i| i < 64 && set.contains(&(vid, kind, i)))
                .fold(0u64, |m, &i| m | 1 << i);
            assert_eq!(v.low(vid, kind), low, "{set:?}: low {vid} {kind}");
        }
    }
}

#[test]
fn each_bit_reads_back_alone() {
    let mut v = VidPorts::new();
    check(&v, &[]);
    for i in PORTS {
        for vid in VIDS {
            for kind in KINDS {
                v.set(vid, kind, i, true);
                check(&v, &[(vid, kind, i)]);
                v.set(vid, kind, i, false);
            }
        }
    }
    check(&v, &[]);
}

#[test]
fn bits_of_neighbouring_ports_are_independent() {
    let mut v = VidPorts::new();
    let pairs = [(1, 2), (63, 64), (64, 65), (65, 129), (2, 130)];
    for (a, b) in pairs {
        v.set(7, VidPorts::EGRESS, a, true);
        v.set(7, VidPorts::EGRESS, b, true);
        v.set(7, VidPorts::UNTAGGED, b, true);
        v.set(7, VidPorts::EGRESS, a, false);
        assert!(!v.has(7, VidPorts::EGRESS, a), "{a} {b}");
        assert_eq!(v.egress(7, b), Some(true), "{a} {b}");
        assert_eq!(v.egress(7, a), None, "{a} {b}");
        v.set(7, VidPorts::EGRESS, b, false);
        v.set(7, VidPorts::UNTAGGED, b, false);
    }
    // Beyond the planes added so far: nothing.
    assert!(!v.has(1, VidPorts::INGRESS, 10_000));
    assert_eq!(v.egress(1, 10_000), None);
}

#[test]
fn stp_port_numbers_are_1_to_4095() {
    for i in [0, 1, 4094, 4095, 4096, 65_534, 65_535, 65_536, usize::MAX] {
        let n = stp_port_number(i);
        assert!((1..=4095).contains(&n), "{i}: {n}");
    }
    assert_eq!(stp_port_number(65_535), 16);
}
