//! vswitch-core forwarding rate, RFC 2889 style, against a naive `HashMap<(vlan, mac), port>`
//! bridge in the same run.
//!
//! - **Forwarding rate** (RFC 2889 §5.1 adapted): 64-byte frames (60 bytes + FCS) tagged with
//!   an 802.1Q C-tag, through the full pipeline (parse, VLAN classify with ingress filtering,
//!   spoof check, source validation, learn/refresh, lookup, egress-set check, egress tag
//!   decision), single core, batches of 256 frames per call (VPP's vector size; the engine
//!   works through them in chunks of 32 with prefetching). 8 trunk ports carry 16 VLANs; hosts are spread
//!   over the VLANs and ports, every frame goes to a host in its VLAN on another port, and all
//!   hosts are learned beforehand (§5.7's address caching: no flooding). Sizes: 64, 4,096,
//!   65,536 and 1,048,576 learned MACs; a 65,536-frame trace in random order is replayed.
//!   The summary adds 4,096 MACs with the 8 trunk ports at indices 64–71 (after 64 idle
//!   ports), for a bridge with more than 64 ports.
//! - **Address learning rate** (§5.8): 65,536 frames from new source addresses into an empty
//!   table.
//! - **Broadcast forwarding rate** (§5.10): broadcast frames flooded to the 7 other ports.
//!
//! The naive bridge does the same per-frame decisions with a `std` `HashMap` keyed by
//! `(u16, [u8; 6])` (SipHash) and a `Vec<bool>` per port for VLAN membership, one frame at a
//! time. Criterion measures time per batch; then a summary runs each case and its naive peer
//! interleaved for `VIRIDIAN_BENCH_ROUNDS` rounds (default 5) and prints Mpps and the ratio
//! (engine rate / naive rate, higher is better). Rates are given per wall-clock second and
//! per second of CPU time the thread actually ran (`/proc/thread-self/schedstat`), because
//! the benchmark machines are shared and a busy neighbour shows up only in the first. `VIRIDIAN_BENCH_SUMMARY_ONLY=1` prints only
//! the summary.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use vswitch_core::fdb::FdbConfig;
use vswitch_core::vlan::{VlanConfig, VlanSet};
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, PortId, RxFrame, TxBatch};

const PORTS: u32 = 8;
const VLANS: u16 = 16;
const BATCH: usize = 256;
const TRACE: usize = 65_536;
const SIZES: [usize; 4] = [64, 4096, 65_536, 1 << 20];
const FRAME_LEN: usize = 60;

#[derive(Clone, Copy)]
struct Host {
    mac: [u8; 6],
    vid: u16,
    port: u32,
}

fn host(i: usize) -> Host {
    let m = (i as u64).wrapping_mul(0x9e37_79b9) & 0xffff_ffff;
    Host {
        mac: [
            0x02,
            (i >> 32) as u8,
            (m >> 24) as u8,
            (m >> 16) as u8,
            (m >> 8) as u8,
            m as u8,
        ],
        vid: 1 + (i % usize::from(VLANS)) as u16,
        port: ((i / usize::from(VLANS)) % PORTS as usize) as u32,
    }
}

fn frame(src: &Host, dst: &[u8; 6]) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..6].copy_from_slice(dst);
    f[6..12].copy_from_slice(&src.mac);
    f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    f[14..16].copy_from_slice(&src.vid.to_be_bytes());
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

/// xorshift64*: a reproducible trace.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Trace {
    /// One learning frame per host (to broadcast), in host order.
    learn: Vec<(u32, [u8; FRAME_LEN])>,
    /// Known-unicast frames.
    unicast: Vec<(u32, [u8; FRAME_LEN])>,
    /// Broadcast frames.
    broadcast: Vec<(u32, [u8; FRAME_LEN])>,
}

fn trace(n: usize) -> Trace {
    let learn = (0..n)
        .map(|i| {
            let h = host(i);
            (h.port, frame(&h, &[0xff; 6]))
        })
        .collect();
    let mut rng = Rng(0x1234_5678_9abc_def1 ^ n as u64);
    let per_vlan = n / usize::from(VLANS);
    let unicast = (0..TRACE)
        .map(|_| {
            let s = rng.next() as usize % n;
            // Another host in the same VLAN: step by a multiple of VLANS that changes the port.
            let k = 1 + rng.next() as usize % (per_vlan - 1).max(1);
            let mut d = (s + k * usize::from(VLANS)) % n;
            if host(d).port == host(s).port {
                d = (d + usize::from(VLANS)) % n;
            }
            let (hs, hd) = (host(s), host(d));
            (hs.port, frame(&hs, &hd.mac))
        })
        .collect();
    let broadcast = (0..TRACE)
        .map(|_| {
            let h = host(rng.next() as usize % n);
            (h.port, frame(&h, &[0xff; 6]))
        })
        .collect();
    Trace {
        learn,
        unicast,
        broadcast,
    }
}

fn engine(capacity: usize) -> Bridge {
    engine_at(capacity, 0)
}

/// The bench's bridge with its 8 trunk ports after `first` idle ports (indices `first`..).
fn engine_at(capacity: usize, first: u32) -> Bridge {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(0x5657_5357_4954_4348));
    cfg.fdb = FdbConfig {
        capacity,
        learn_limit: capacity,
        ageing_ms: 300_000,
    };
    let mut br = Bridge::new(cfg);
    let vlans = VlanSet::from_vids(&(1..=VLANS).collect::<Vec<_>>());
    for _ in 0..first {
        br.add_port(PortConfig::plain()).expect("port");
    }
    for _ in 0..PORTS {
        br.add_port(PortConfig::plain().with_vlan(VlanConfig::trunk(vlans.clone(), None)))
            .expect("port");
    }
    br
}

fn rx(frames: &[(u32, [u8; FRAME_LEN])]) -> Vec<RxFrame<'_>> {
    rx_at(frames, 0)
}

/// The frames received on the ports `first` higher.
fn rx_at(frames: &[(u32, [u8; FRAME_LEN])], first: u32) -> Vec<RxFrame<'_>> {
    frames
        .iter()
        .map(|(p, f)| RxFrame::new(PortId(*p + first), f))
        .collect()
}

/// Runs frames through the engine in batches; returns the number of transmit actions.
fn run_engine(br: &mut Bridge, frames: &[RxFrame<'_>], out: &mut TxBatch) -> usize {
    let mut n = 0;
    for b in frames.chunks(BATCH) {
        br.process(b, 1000, out);
        n += out.actions().len();
    }
    n
}

/// The baseline: the textbook bridge with a tuple-keyed `HashMap`.
struct Naive {
    fdb: HashMap<(u16, [u8; 6]), (u32, u64)>,
    members: Vec<Vec<bool>>,
    out: Vec<(u32, usize)>,
}

impl Naive {
    fn new() -> Self {
        let mut m = vec![false; 4096];
        for v in 1..=VLANS {
            m[usize::from(v)] = true;
        }
        Self {
            fdb: HashMap::new(),
            members: vec![m; PORTS as usize],
            out: Vec::new(),
        }
    }

    fn process(&mut self, port: u32, f: &[u8], idx: usize, now: u64) {
        if f.len() < 18 || u16::from_be_bytes([f[12], f[13]]) != 0x8100 {
            return;
        }
        let vid = u16::from_be_bytes([f[14], f[15]]) & 0x0fff;
        if vid == 0 || vid == 4095 || !self.members[port as usize][usize::from(vid)] {
            return;
        }
        let dst: [u8; 6] = f[..6].try_into().unwrap();
        let src: [u8; 6] = f[6..12].try_into().unwrap();
        if src[0] & 1 != 0 || src == [0; 6] {
            return;
        }
        self.fdb.insert((vid, src), (port, now));
        let known = if dst[0] & 1 == 0 {
            self.fdb.get(&(vid, dst)).map(|e| e.0)
        } else {
            None
        };
        match known {
            Some(p) if p == port => {}
            Some(p) => self.out.push((p, idx)),
            None => {
                for q in 0..PORTS {
                    if q != port && self.members[q as usize][usize::from(vid)] {
                        self.out.push((q, idx));
                    }
                }
            }
        }
    }

    fn run(&mut self, frames: &[(u32, [u8; FRAME_LEN])]) -> usize {
        let mut n = 0;
        for b in frames.chunks(BATCH) {
            self.out.clear();
            for (i, (p, f)) in b.iter().enumerate() {
                self.process(*p, f, i, 1000);
            }
            n += self.out.len();
        }
        n
    }
}

struct Case {
    n: usize,
    trace: Trace,
    br: Bridge,
    naive: Naive,
}

fn case(n: usize) -> Case {
    case_at(n, 0)
}

/// A case whose bridge has its trunk ports from index `first` up.
fn case_at(n: usize, first: u32) -> Case {
    let trace = trace(n);
    let mut br = engine_at(n.max(64), first);
    let mut naive = Naive::new();
    let mut out = TxBatch::new();
    run_engine(&mut br, &rx_at(&trace.learn, first), &mut out);
    naive.run(&trace.learn);
    assert_eq!(br.fdb().len(), n, "all hosts learned");
    assert_eq!(naive.fdb.len(), n);
    Case {
        n,
        trace,
        br,
        naive,
    }
}

fn bench_forwarding(c: &mut Criterion) {
    let mut g = c.benchmark_group("vswitch forwarding, 64-byte tagged");
    g.throughput(Throughput::Elements(TRACE as u64));
    for n in SIZES {
        let mut cs = case(n);
        let frames = rx(&cs.trace.unicast);
        let mut out = TxBatch::new();
        g.bench_function(format!("vswitch-core {n} MACs"), |b| {
            b.iter(|| black_box(run_engine(&mut cs.br, &frames, &mut out)))
        });
        g.bench_function(format!("naive HashMap {n} MACs"), |b| {
            b.iter(|| black_box(cs.naive.run(&cs.trace.unicast)))
        });
    }
    g.finish();
}

fn bench_learning_and_broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("vswitch learning and broadcast");
    g.throughput(Throughput::Elements(TRACE as u64));
    let learn = trace(TRACE).learn;
    let learn_rx = rx(&learn);
    g.bench_function("vswitch-core learn 65536 new MACs", |b| {
        b.iter_batched(
            || (engine(TRACE), TxBatch::new()),
            |(mut br, mut out)| black_box(run_engine(&mut br, &learn_rx, &mut out)),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("naive HashMap learn 65536 new MACs", |b| {
        b.iter_batched(
            Naive::new,
            |mut nv| black_box(nv.run(&learn)),
            criterion::BatchSize::LargeInput,
        )
    });
    let mut cs = case(4096);
    let frames = rx(&cs.trace.broadcast);
    let mut out = TxBatch::new();
    g.bench_function("vswitch-core broadcast 4096 MACs", |b| {
        b.iter(|| black_box(run_engine(&mut cs.br, &frames, &mut out)))
    });
    g.bench_function("naive HashMap broadcast 4096 MACs", |b| {
        b.iter(|| black_box(cs.naive.run(&cs.trace.broadcast)))
    });
    g.finish();
}

criterion_group!(vswitch, bench_forwarding, bench_learning_and_broadcast);

fn rounds() -> usize {
    std::env::var("VIRIDIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// CPU time this thread has run, from the scheduler's accounting (0 if unavailable).
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Wall-clock and CPU time of one run.
type Times = (Duration, Duration);

/// Times `f` (which handles `frames` frames) repeated to about 2 M frames; per run.
fn time(frames: usize, mut f: impl FnMut() -> usize) -> Times {
    let reps = (2_000_000 / frames).max(1);
    let (t, c) = (Instant::now(), cpu_time());
    for _ in 0..reps {
        black_box(f());
    }
    (t.elapsed() / reps as u32, (cpu_time() - c) / reps as u32)
}

/// Times `run` on fresh states from `make` (built before the clock starts), as many as
/// [`time`] would repeat a run of `frames` frames; per run. The CPU-time clock ticks coarsely
/// (4 ms here), so a single run of a few milliseconds cannot be timed by it.
fn time_fresh<S>(
    frames: usize,
    make: impl FnMut() -> S,
    mut run: impl FnMut(&mut S) -> usize,
) -> Times {
    let reps = (2_000_000 / frames).max(1);
    let mut states: Vec<S> = std::iter::repeat_with(make).take(reps).collect();
    let (t, c) = (Instant::now(), cpu_time());
    for s in &mut states {
        black_box(run(s));
    }
    (t.elapsed() / reps as u32, (cpu_time() - c) / reps as u32)
}

fn median(mut v: Vec<Times>) -> Times {
    let mut c: Vec<Duration> = v.iter().map(|t| t.1).collect();
    v.sort();
    c.sort();
    (v[v.len() / 2].0, c[c.len() / 2])
}

fn row(name: &str, frames: usize, engine: Vec<Times>, naive: Vec<Times>) {
    let (e, n) = (median(engine), median(naive));
    let rate = |d: Duration| frames as f64 / d.as_secs_f64() / 1e6;
    let cpu = |d: Duration| if d.is_zero() { f64::NAN } else { rate(d) };
    println!(
        "  {name:<44} {:>9.1} {:>9.1} {:>7.2}   {:>9.1} {:>9.1} {:>7.2}",
        rate(e.0),
        rate(n.0),
        rate(e.0) / rate(n.0),
        cpu(e.1),
        cpu(n.1),
        cpu(e.1) / cpu(n.1)
    );
}

fn summary() {
    println!(
        "\nvswitch-core vs naive HashMap bridge (single core, batches of {BATCH}, median of {} interleaved rounds)",
        rounds()
    );
    println!(
        "  {:<44} {:>9} {:>9} {:>7}   {:>9} {:>9} {:>7}",
        "case", "Mpps", "naive", "ratio", "cpu Mpps", "naive", "ratio"
    );
    println!(
        "  {:<44} {:>27}   {:>27}",
        "", "(per wall-clock second)", "(per second of CPU time)"
    );
    // The four table sizes, then 4,096 MACs with the trunk ports at indices 64-71.
    let cases = SIZES.map(|n| (n, 0)).into_iter().chain([(4096, 64)]);
    for (n, first) in cases {
        let mut cs = case_at(n, first);
        let frames = rx_at(&cs.trace.unicast, first);
        let mut out = TxBatch::new();
        let (mut et, mut nt) = (Vec::new(), Vec::new());
        for _ in 0..rounds() {
            et.push(time(TRACE, || run_engine(&mut cs.br, &frames, &mut out)));
            nt.push(time(TRACE, || cs.naive.run(&cs.trace.unicast)));
        }
        assert_eq!(
            run_engine(&mut cs.br, &frames, &mut out),
            cs.naive.run(&cs.trace.unicast),
            "both forward every frame once"
        );
        let name = if first == 0 {
            format!("forwarding, {} MACs", cs.n)
        } else {
            format!(
                "forwarding, {} MACs, ports {first}-{}",
                cs.n,
                first + PORTS - 1
            )
        };
        row(&name, TRACE, et, nt);
    }
    let learn = trace(TRACE).learn;
    let learn_rx = rx(&learn);
    let (mut et, mut nt) = (Vec::new(), Vec::new());
    let mut out = TxBatch::new();
    for _ in 0..rounds() {
        et.push(time_fresh(
            TRACE,
            || engine(TRACE),
            |br| run_engine(br, &learn_rx, &mut out),
        ));
        nt.push(time_fresh(TRACE, Naive::new, |nv| nv.run(&learn)));
    }
    row("learning, 65536 new MACs", TRACE, et, nt);
    let mut cs = case(4096);
    let frames = rx(&cs.trace.broadcast);
    let mut out = TxBatch::new();
    let (mut et, mut nt) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        et.push(time(TRACE, || run_engine(&mut cs.br, &frames, &mut out)));
        nt.push(time(TRACE, || cs.naive.run(&cs.trace.broadcast)));
    }
    row("broadcast to 7 ports (frames in), 4096 MACs", TRACE, et, nt);
    println!(
        "  (25 GbE line rate at 64 bytes: 37.2 Mpps; goal: >= 40 Mpps at 4096 MACs, >= 5x naive)"
    );
}

fn main() {
    // VIRIDIAN_BENCH_SUMMARY_ONLY=1 skips the criterion runs (quick figures).
    if std::env::var_os("VIRIDIAN_BENCH_SUMMARY_ONLY").is_none() {
        vswitch();
    }
    summary();
    Criterion::default().configure_from_args().final_summary();
}
