//! Two guests on one `vswitch-core` switch (`vmm --net`): with the same access VLAN guest a
//! resolves guest b with ARP and gets every ICMP echo answered, and its frame with a forged
//! source MAC is dropped by the switch (MAC spoofing is not allowed) and never reaches b; with
//! different VLANs nothing crosses. Skipped with a printed reason without `/dev/kvm`.

mod common;

use common::kvm;

/// The host asks for the shutdown after a short run; guest a carries it out only once its
/// exchange is over, and guest b is asked only after a has powered off, so the exchange is
/// whole however slow the machine.
fn run(args: &[&str]) -> String {
    common::run_vmm("500", args)
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

/// `--tap`: the switch's uplink is a TAP interface; the host kernel, given an address on it,
/// resolves guest b's address over it (ARP out through the switch, b's answer back). Needs
/// root (`CAP_NET_ADMIN`) and `ip`; skipped with the reason otherwise.
#[test]
fn tap_uplink_reaches_the_host_kernel() {
    if !kvm() {
        return;
    }
    // The effective user id is the second field of `Uid:`.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root || !std::path::Path::new("/dev/net/tun").exists() {
        println!("skipped: creating a TAP interface needs root and /dev/net/tun");
        return;
    }
    if !common::have("ip") {
        return;
    }
    let name = format!("vrdn{}", std::process::id() % 100_000);
    let vmm = std::process::Command::new("timeout")
        .args(["120", env!("CARGO_BIN_EXE_vmm"), "--net", "--tap", &name])
        .args(["--run-ms", "4000", "--probe", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the vmm");
    let sys = std::path::PathBuf::from("/sys/class/net").join(&name);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sys.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(sys.exists(), "the vmm did not create {name}");
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .expect("run ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ip(&["addr", "add", "10.0.0.254/24", "dev", &name]);
    let udp = std::net::UdpSocket::bind("10.0.0.254:0").expect("bind on the TAP address");
    let mut neighbour = String::new();
    while std::time::Instant::now() < deadline {
        // Any datagram to 10.0.0.2 makes the kernel resolve it with ARP on the TAP.
        let _ = udp.send_to(b"viridian", "10.0.0.2:9");
        std::thread::sleep(std::time::Duration::from_millis(300));
        neighbour = ip(&["neigh", "show", "10.0.0.2", "dev", &name]);
        if neighbour.contains("lladdr 02:00:00:00:00:0b") {
            break;
        }
    }
    let out = vmm.wait_with_output().expect("wait for the vmm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        neighbour.contains("lladdr 02:00:00:00:00:0b"),
        "the host kernel did not resolve guest b over the TAP: {neighbour:?}\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("host: network: TAP interface {name} is up")),
        "{stdout}"
    );
    let stats = stdout
        .lines()
        .find_map(|l| l.split_once(&format!("host: network: TAP {name}: ")))
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| panic!("no TAP counters:\n{stdout}"));
    let numbers: Vec<u64> = stats
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // Frames from the host (its ARP request at least) and to it (b's answer at least).
    assert!(numbers[0] >= 1 && numbers[1] >= 1, "{stats}");
    assert!(!sys.exists(), "{name} outlived the vmm");
}
