//! Two guests on one `vswitch-core` switch (`vmm --net`): with the same access VLAN guest a
//! resolves guest b with ARP and gets every ICMP echo answered, and its frame with a forged
//! source MAC is dropped by the switch (MAC spoofing is not allowed) and never reaches b; with
//! different VLANs nothing crosses. Skipped with a printed reason without `/dev/kvm`.

mod common;

use common::kvm;

/// Guest instructions are emulated one by one here, so the exchange takes a second or two on a
/// quiet machine; the run leaves it several times that before the shutdown.
fn run(args: &[&str]) -> String {
    common::run_vmm("7000", args)
}

/// The switch counters the host prints for VM `name`: (received, transmitted, dropped).
fn counters(stdout: &str, name: &str) -> (u64, u64, u64) {
    let prefix = format!("host[{name}]: network: ");
    let line = stdout
        .lines()
        .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .find(|rest| rest.contains("frames from the guest"))
        .unwrap_or_else(|| panic!("no counters for {name}:\n{stdout}"));
    let numbers: Vec<u64> = line
        .rsplit_once(": ")
        .map(|(_, tail)| tail)
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

/// Both scenarios in one test, one after the other: each runs two VMs already.
#[test]
fn two_guests_on_one_switch() {
    if !kvm() {
        return;
    }
    same_vlan_delivers_everything_and_drops_the_spoofed_frame();
    different_vlans_are_isolated();
}

fn same_vlan_delivers_everything_and_drops_the_spoofed_frame() {
    let out = run(&["--net"]);
    for line in [
        "[a] viridian guest: netvsc: adapter up, mac 02:00:00:00:00:0a, ip 10.0.0.1",
        "[b] viridian guest: netvsc: adapter up, mac 02:00:00:00:00:0b, ip 10.0.0.2",
        "[b] viridian guest: netvsc: answered ARP for 10.0.0.2",
        "[a] viridian guest: netvsc: 10.0.0.2 is at 02:00:00:00:00:0b",
        "[a] viridian guest: netvsc: 4 of 4 echo replies",
        "[a] viridian guest: netvsc: sent 100 frames to the peer in ",
        "[b] viridian guest: netvsc: received all 100 burst frames in ",
        "[a] viridian guest: netvsc: sent one frame with the forged source mac",
    ] {
        assert!(out.contains(line), "{line:?} missing:\n{out}");
    }
    assert!(
        !out.contains("forged mac (the switch let it through)"),
        "{out}"
    );
    let (a_rx, a_tx, a_dropped) = counters(&out, "a");
    let (b_rx, b_tx, b_dropped) = counters(&out, "b");
    // a sent ARP (retried if slow), echo requests, a burst of 100 and the forged frame: only
    // the forged one is dropped, everything else reaches b; and everything b sent reaches a.
    assert!(a_rx >= 106, "{out}");
    assert_eq!((a_dropped, b_dropped), (1, 0), "{out}");
    assert_eq!(b_tx, a_rx - 1, "{out}");
    assert_eq!(a_tx, b_rx, "{out}");
}

fn different_vlans_are_isolated() {
    let out = run(&["--vlans", "1,2"]);
    assert!(
        out.contains("guest a on access VLAN 1, guest b on access VLAN 2"),
        "{out}"
    );
    assert!(
        out.contains(
            "[a] viridian guest: netvsc: no ARP answer from 10.0.0.2 after 3 tries: isolated"
        ),
        "{out}"
    );
    assert!(!out.contains("answered ARP"), "{out}");
    let (_, b_tx, _) = counters(&out, "b");
    assert_eq!(b_tx, 0, "frames crossed the VLANs:\n{out}");
}
