//! Differential tests against the Linux bridge: learning, flooding, aging and reserved
//! addresses. A fresh network namespace holds `br0`; veth pairs join it to the root namespace,
//! where raw `AF_PACKET` sockets inject frames and capture what the kernel forwards. The same
//! frames go through a `vswitch-core` bridge with the same ports, and each frame's egress
//! ports and bytes must agree.
//!
//! Needs root and iproute2 (`ip`, `bridge`); otherwise every test prints a skip message and
//! passes, except under `CI=true`, where missing privileges fail the test. This kernel has no
//! VLAN-filtering bridge, so VLAN behaviour is covered by the model and golden tests instead.
//! The bridge runs with multicast snooping off (snooping trims IPv4 multicast padding and drops
//! malformed IP multicast, see the reference notes), STP off, IPv6 disabled on every veth.

// Raw sockets need libc calls; each unsafe block says why it is sound.
#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vswitch_core::fdb::FdbConfig;
use vswitch_core::frame::MacAddr;
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, PortId, RxFrame, TxBatch};

const PORTS: usize = 4;
/// How long the capture waits for a further frame before it calls the wire quiet.
const QUIET: Duration = Duration::from_millis(60);

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A raw packet socket bound to one interface.
struct RawSock {
    fd: i32,
}

impl RawSock {
    fn open(ifname: &str) -> Result<Self, String> {
        let name = CString::new(ifname).map_err(|e| e.to_string())?;
        // SAFETY: `name` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(format!("no interface {ifname}"));
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let sock = Self { fd };
        // SAFETY: an all-zero sockaddr_ll is a valid value of the type.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        // SAFETY: `sll` lives across the call and the length matches its type.
        let r = unsafe {
            libc::bind(
                fd,
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r != 0 {
            return Err(format!("bind: {}", std::io::Error::last_os_error()));
        }
        let one: i32 = 1;
        // SAFETY: the option value is an i32 that outlives the call. Older kernels reject
        // the option; outgoing frames are then filtered by packet type in `recv`.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&raw const one).cast(),
                size_of::<i32>() as u32,
            )
        };
        Ok(sock)
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: the buffer is valid for `frame.len()` bytes.
        let n = unsafe { libc::send(self.fd, frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// One received (not outgoing) frame, if any is queued.
    fn recv(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: an all-zero sockaddr_ll is a valid value of the type.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf`, `sll` and `len` are valid for the sizes passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&raw mut sll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(n as usize);
            return Some(buf);
        }
    }

    fn wait(socks: &[RawSock], timeout: Duration) -> bool {
        let mut fds: Vec<libc::pollfd> = socks
            .iter()
            .map(|s| libc::pollfd {
                fd: s.fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
        let r = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout.as_millis() as i32,
            )
        };
        r > 0
    }
}

impl Drop for RawSock {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by this value and closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// The frames each port transmitted: (port index, bytes).
type Egress = BTreeSet<(usize, Vec<u8>)>;

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A kernel bridge in its own namespace with `PORTS` veth ports, plus the matching engine.
struct Lab {
    ns: String,
    hosts: Vec<String>,
    socks: Vec<RawSock>,
    engine: Bridge,
    start: Instant,
}

impl Lab {
    /// Builds the lab, or says why it cannot (not root, no iproute2, no namespaces).
    fn new(ageing_ms: u32) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let reason = if !root {
            Some("not running as root".to_string())
        } else if Command::new("ip").arg("-V").output().is_err() {
            Some("iproute2 `ip` not found".to_string())
        } else {
            None
        };
        let lab = match reason {
            Some(r) => Err(r),
            None => Self::build(ageing_ms),
        };
        match lab {
            Ok(l) => Some(l),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("Linux bridge differential test cannot run under CI=true: {e}")
            }
            Err(e) => {
                eprintln!("skipping the Linux bridge differential test: {e}");
                None
            }
        }
    }

    fn build(ageing_ms: u32) -> Result<Self, String> {
        let id = format!(
            "{}x{}",
            std::process::id() % 100_000,
            LAB_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ns = format!("vswt{id}");
        sh(&["ip", "netns", "add", &ns])?;
        let mut lab = Self {
            ns: ns.clone(),
            hosts: Vec::new(),
            socks: Vec::new(),
            engine: engine(ageing_ms),
            start: Instant::now(),
        };
        let n = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", ns.as_str()];
            v.extend_from_slice(args);
            sh(&v)
        };
        // Best effort: without IPv6 in the kernel there is no router solicitation, DAD or MLD
        // noise to silence in the first place.
        for knob in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6");
            let _ = n(&["sh", "-c", &format!("test -e {path} && echo 1 > {path}")]);
        }
        let cs = (ageing_ms / 10).to_string();
        n(&[
            "ip",
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "ageing_time",
            &cs,
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        for i in 0..PORTS {
            let host = format!("vs{id}h{i}");
            let port = format!("p{i}");
            sh(&[
                "ip", "link", "add", &host, "type", "veth", "peer", "name", &port, "netns", &ns,
            ])?;
            lab.hosts.push(host.clone());
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1");
            n(&["ip", "link", "set", &port, "master", "br0"])?;
            n(&["ip", "link", "set", &port, "up"])?;
            sh(&["ip", "link", "set", &host, "up"])?;
        }
        n(&["ip", "link", "set", "br0", "up"])?;
        std::thread::sleep(Duration::from_millis(300));
        for h in &lab.hosts {
            lab.socks.push(RawSock::open(h)?);
        }
        lab.drain();
        lab.start = Instant::now();
        Ok(lab)
    }

    fn ns_cmd(&self, args: &[&str]) -> Result<(), String> {
        let mut v = vec!["ip", "netns", "exec", self.ns.as_str()];
        v.extend_from_slice(args);
        sh(&v)
    }

    fn drain(&self) -> Egress {
        let mut got = BTreeSet::new();
        while RawSock::wait(&self.socks, QUIET) {
            for (i, s) in self.socks.iter().enumerate() {
                while let Some(f) = s.recv() {
                    got.insert((i, f));
                }
            }
        }
        got
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Sends `frame` on port `i` to both bridges; returns (kernel, engine) egress sets.
    fn send(&mut self, i: usize, frame: &[u8]) -> (Egress, Egress) {
        let now = self.now();
        self.socks[i].send(frame);
        let kernel = self.drain();
        let mut out = TxBatch::new();
        let frames = [RxFrame::new(PortId(i as u32), frame)];
        self.engine.process(&frames, now, &mut out);
        let engine = out
            .actions()
            .iter()
            .map(|a| (a.port.0 as usize, out.to_vec(a, &frames)))
            .collect();
        (kernel, engine)
    }

    /// The kernel's dynamic FDB: (MAC, port index).
    fn kernel_fdb(&self) -> BTreeSet<(MacAddr, usize)> {
        let out = Command::new("bridge")
            .args(["-n", &self.ns, "fdb", "show", "br", "br0", "dynamic"])
            .output()
            .expect("bridge fdb show");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let mac = w.next()?;
                let dev = w.skip_while(|x| *x != "dev").nth(1)?;
                let port = dev.strip_prefix('p')?.parse().ok()?;
                let b: Vec<u8> = mac
                    .split(':')
                    .filter_map(|x| u8::from_str_radix(x, 16).ok())
                    .collect();
                Some((MacAddr(b.try_into().ok()?), port))
            })
            .collect()
    }

    fn engine_fdb(&self, now: u64) -> BTreeSet<(MacAddr, usize)> {
        let fdb = self.engine.fdb();
        fdb.entries()
            .filter(|e| !fdb.is_expired(e, now))
            .map(|e| (e.mac, e.port as usize))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.socks.clear();
        for h in &self.hosts {
            let _ = sh(&["ip", "link", "del", h]);
        }
        let _ = sh(&["ip", "netns", "del", &self.ns]);
    }
}

fn engine(ageing_ms: u32) -> Bridge {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(0x11));
    cfg.fdb = FdbConfig {
        capacity: 4096,
        learn_limit: 4096,
        ageing_ms,
    };
    let mut br = Bridge::new(cfg);
    for _ in 0..PORTS {
        br.add_port(PortConfig::plain()).unwrap();
    }
    br
}

fn station(n: u8) -> MacAddr {
    MacAddr([0x02, 0x5a, 0, 0, 0, n])
}

fn frame(dst: MacAddr, src: MacAddr, tag: u8) -> Vec<u8> {
    let mut f = dst.0.to_vec();
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0xb5, tag]); // local experimental EtherType
    f.resize(60, 0);
    f
}

#[test]
fn learning_flooding_and_moves_match_the_linux_bridge() {
    let Some(mut lab) = Lab::new(300_000) else {
        return;
    };
    // A deterministic trace: broadcasts, multicast, unknown and known unicast, and moves.
    let mut seed = 0x9e37_79b9u32;
    let mut rnd = |n: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed % n
    };
    let mut location = [0usize; 8];
    for (i, l) in location.iter_mut().enumerate() {
        *l = i % PORTS;
    }
    for step in 0..120u8 {
        let s = rnd(8) as usize;
        if rnd(10) == 0 {
            location[s] = rnd(PORTS as u32) as usize; // the station moves
        }
        let dst = match rnd(10) {
            0 => MacAddr::BROADCAST,
            1 => MacAddr([0x01, 0x00, 0x5e, 0x7f, 0, 1]),
            2 => station(100 + rnd(4) as u8),
            _ => station(rnd(8) as u8),
        };
        let f = frame(dst, station(s as u8), step);
        let (kernel, engine) = lab.send(location[s], &f);
        assert_eq!(
            engine, kernel,
            "step {step}: {dst} from station {s} on port {}",
            location[s]
        );
    }
    let now = lab.now();
    assert_eq!(lab.engine_fdb(now), lab.kernel_fdb(), "forwarding tables");
}

#[test]
fn aging_matches_the_linux_bridge() {
    // Linux checks ages periodically: compare well inside and well past the ageing time.
    let Some(mut lab) = Lab::new(2000) else {
        return;
    };
    let (a, b) = (station(1), station(2));
    let (k, e) = lab.send(1, &frame(MacAddr::BROADCAST, a, 0));
    assert_eq!(e, k);
    let (k, e) = lab.send(0, &frame(a, b, 1));
    assert_eq!(e, k);
    assert_eq!(
        k.iter().map(|x| x.0).collect::<Vec<_>>(),
        [1],
        "known unicast"
    );
    std::thread::sleep(Duration::from_millis(5000));
    // b was refreshed at the second frame, a at the first: both long expired.
    let (k, e) = lab.send(0, &frame(a, b, 2));
    assert_eq!(e, k);
    assert_eq!(k.len(), PORTS - 1, "flooded again after aging");
}

#[test]
fn ageing_time_zero_matches_the_linux_bridge() {
    let Some(mut lab) = Lab::new(0) else { return };
    let (a, b) = (station(1), station(2));
    for step in 0..4 {
        let (k, e) = lab.send(
            step % 2,
            &frame(
                if step % 2 == 0 { b } else { a },
                if step % 2 == 0 { a } else { b },
                step as u8,
            ),
        );
        assert_eq!(e, k, "step {step}");
        assert_eq!(k.len(), PORTS - 1, "nothing is learned");
    }
    assert!(lab.kernel_fdb().is_empty());
    assert!(lab.engine.fdb().is_empty());
}

#[test]
fn reserved_addresses_match_the_linux_bridge() {
    let Some(mut lab) = Lab::new(300_000) else {
        return;
    };
    let addrs: Vec<u8> = (0..16).chain([0x10, 0x20, 0x21]).collect();
    let check = |lab: &mut Lab, port: usize, label: &str| {
        for &x in &addrs {
            let dst = MacAddr([0x01, 0x80, 0xc2, 0, 0, x]);
            let (k, e) = lab.send(port, &frame(dst, station(port as u8 + 1), x));
            assert_eq!(e, k, "{label}: 01-80-C2-00-00-{x:02X}");
        }
    };
    check(&mut lab, 0, "default mask");
    // Per-port forward mask on p0: LACP (-02), 802.1X (-03) and LLDP (-0E).
    lab.ns_cmd(&[
        "ip",
        "link",
        "set",
        "p0",
        "type",
        "bridge_slave",
        "group_fwd_mask",
        "0x400c",
    ])
    .expect("set group_fwd_mask");
    let mut cfg = lab.engine.port_config(PortId(0)).unwrap().clone();
    cfg.group_fwd_mask = 0x400c;
    lab.engine.set_port_config(PortId(0), cfg).unwrap();
    check(&mut lab, 0, "mask 0x400c on the ingress port");
    check(&mut lab, 1, "mask 0x400c on another port");
}
