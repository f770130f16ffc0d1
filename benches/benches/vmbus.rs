//! VMBus ring throughput: one producer thread and one consumer thread over a 128 KiB ring in
//! shared memory, against `memcpy` of the same bytes as the physical limit.
//!
//! - in-band packets with 64-byte and 1500-byte payloads (integration services, netvsc control
//!   and small frames), unbatched (one packet per publish and per release) and batched (up to
//!   32 per publish, the reader drains in batches of up to 32);
//! - GPA-direct packets each describing a 64 KiB guest buffer (16 PFNs, a 64-byte request —
//!   storvsc's shape): the descriptors alone, and with the host copying the 64 KiB out of guest
//!   RAM through a bounds-checked `GpaBuffer` (the DMA-style data path).
//!
//! Both sides spin instead of sleeping: signal delivery (a hypercall or an interrupt) belongs to
//! the VMM, not to the ring, and would dominate otherwise. Every packet is checked on arrival
//! (sequence number), so nothing is optimised away.
//!
//! Criterion measures time per packet for each case; then a summary runs each case and its
//! `memcpy` baseline interleaved for `VIRIDIAN_BENCH_ROUNDS` rounds (default 5) and prints
//! packets/s, payload GB/s and the ratio to `memcpy` (`ring time / memcpy time`, lower is better;
//! 1.0 would mean the ring costs no more than copying the payload once).

use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use vmbus_ring::gpadl::{GpaBuffer, GpaRange, GpaRanges, GuestRam};
use vmbus_ring::memory::FlatRingMemory;
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter, WriteError};

const RING_LEN: usize = 128 << 10;
const RAM_BASE: u64 = 0x1000;
/// 4 MiB of guest RAM: 64 distinct 64 KiB buffers, so copies do not all hit one cached page set.
const RAM_PAGES: usize = 1024;
const GPA_LEN: usize = 64 << 10;

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// In-band packet with this payload size.
    InBand(usize),
    /// GPA-direct descriptor of 64 KiB; `copy` = the host copies the data out of guest RAM.
    GpaDirect { copy: bool },
}

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    kind: Kind,
    batch: usize,
}

const CASES: [Case; 8] = [
    Case {
        name: "in-band 64 B, unbatched",
        kind: Kind::InBand(64),
        batch: 1,
    },
    Case {
        name: "in-band 64 B, batched",
        kind: Kind::InBand(64),
        batch: 32,
    },
    Case {
        name: "in-band 1500 B, unbatched",
        kind: Kind::InBand(1500),
        batch: 1,
    },
    Case {
        name: "in-band 1500 B, batched",
        kind: Kind::InBand(1500),
        batch: 32,
    },
    Case {
        name: "GPA-direct 64 KiB descriptor, unbatched",
        kind: Kind::GpaDirect { copy: false },
        batch: 1,
    },
    Case {
        name: "GPA-direct 64 KiB descriptor, batched",
        kind: Kind::GpaDirect { copy: false },
        batch: 32,
    },
    Case {
        name: "GPA-direct 64 KiB + host copy, unbatched",
        kind: Kind::GpaDirect { copy: true },
        batch: 1,
    },
    Case {
        name: "GPA-direct 64 KiB + host copy, batched",
        kind: Kind::GpaDirect { copy: true },
        batch: 32,
    },
];

impl Kind {
    /// Bytes of data each packet moves (what `memcpy` is given).
    fn data_bytes(self) -> usize {
        match self {
            Kind::InBand(n) => n,
            Kind::GpaDirect { .. } => GPA_LEN,
        }
    }

    /// Packets per measurement at least (a few milliseconds of work).
    fn min_packets(self) -> u64 {
        match self {
            Kind::GpaDirect { copy: true } => 2_000,
            _ => 50_000,
        }
    }

    /// Packets per round of the summary.
    fn summary_packets(self) -> u64 {
        match self {
            Kind::InBand(64) => 2_000_000,
            Kind::GpaDirect { copy: true } => 20_000,
            _ => 500_000,
        }
    }
}

fn guest_ram() -> GuestRam<Box<[AtomicU64]>> {
    let ram = GuestRam::new_boxed(RAM_BASE, RAM_PAGES).expect("guest RAM");
    let fill: Vec<u8> = (0..RAM_PAGES * 4096).map(|i| (i * 13) as u8).collect();
    assert!(ram.write_gpa(RAM_BASE * 4096, &fill));
    ram
}

/// Moves `packets` packets of `case` from a producer thread to a consumer thread; returns the
/// wall time.
fn transfer(case: Case, packets: u64, ram: &GuestRam<Box<[AtomicU64]>>) -> Duration {
    let mem = FlatRingMemory::new_boxed(RING_LEN).expect("ring");
    let payload = vec![0x5au8; case.kind.data_bytes().min(1500)];
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| produce(&mem, case, packets, &payload));
        s.spawn(|| consume(&mem, case, packets, ram));
    });
    start.elapsed()
}

fn produce(mem: &FlatRingMemory<Box<[AtomicU64]>>, case: Case, packets: u64, payload: &[u8]) {
    let mut w = RingWriter::new(mem).expect("writer");
    let mut seq = 0u64;
    let mut range_bytes = [0u8; 8 + 8 * 16];
    let mut pfns = [0u64; 16];
    while seq < packets {
        let mut batch = w.batch();
        while batch.len() < case.batch && seq < packets {
            let repr = match case.kind {
                Kind::InBand(n) => PacketRepr::in_band(seq, false, &payload[..n]),
                Kind::GpaDirect { .. } => {
                    let first = RAM_BASE + (seq % (RAM_PAGES as u64 / 16)) * 16;
                    for (i, p) in pfns.iter_mut().enumerate() {
                        *p = first + i as u64;
                    }
                    let ranges = GpaRanges::encode(
                        &[GpaRange::new(0, GPA_LEN as u32, &pfns)],
                        &mut range_bytes,
                    )
                    .expect("ranges");
                    PacketRepr::gpa_direct(seq, true, ranges, &payload[..64])
                }
            };
            match batch.write(&repr) {
                Ok(()) => seq += 1,
                Err(WriteError::Full { .. }) => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        if batch.is_empty() {
            std::hint::spin_loop();
        }
        let _ = batch.commit();
    }
}

fn consume(
    mem: &FlatRingMemory<Box<[AtomicU64]>>,
    case: Case,
    packets: u64,
    ram: &GuestRam<Box<[AtomicU64]>>,
) {
    let mut r = RingReader::new(mem).expect("reader");
    let mut buf = vec![0u8; 4096];
    let mut data = vec![0u8; GPA_LEN];
    let mut expect = 0u64;
    while expect < packets {
        let mut batch = r.batch();
        let mut got = 0;
        while got < case.batch {
            match batch.next(&mut buf) {
                Ok(len) => {
                    let p = PacketRepr::parse_bytes(&buf[..len]).expect("packet");
                    assert_eq!(p.transaction_id, expect);
                    if let (Kind::GpaDirect { copy }, PacketKind::GpaDirect { ranges }) =
                        (case.kind, p.kind)
                    {
                        let view = GpaBuffer::new(ranges, ram).expect("guest buffer");
                        if copy {
                            view.read_at(0, &mut data).expect("copy out");
                            black_box(&data);
                        }
                    }
                    expect += 1;
                    got += 1;
                }
                Err(ReadError::Empty) => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        if got == 0 {
            std::hint::spin_loop();
        }
        let _ = batch.commit();
    }
}

/// `memcpy` of the same bytes: one copy per packet from a ring-sized source (in-band) or from
/// guest-RAM-sized memory (GPA direct) into a packet-sized destination.
fn memcpy(case: Case, packets: u64, src: &[u8]) -> Duration {
    let n = case.kind.data_bytes();
    let mut dst = vec![0u8; n];
    let slots = (src.len() / n).max(1);
    let start = Instant::now();
    for i in 0..packets as usize {
        let at = (i % slots) * n;
        dst.copy_from_slice(&src[at..at + n]);
        black_box(&mut dst);
    }
    start.elapsed()
}

fn ring_benches(c: &mut Criterion) {
    let ram = guest_ram();
    let mut group = c.benchmark_group("vmbus ring, producer and consumer threads");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in CASES {
        group.throughput(Throughput::Bytes(case.kind.data_bytes() as u64));
        group.bench_function(case.name, |b| {
            // Each measurement moves at least `min` packets, so starting the two threads does
            // not dominate small iteration counts; the time is scaled back to `iters`.
            let min = case.kind.min_packets();
            b.iter_custom(|iters| {
                let n = iters.max(min);
                transfer(case, n, &ram).mul_f64(iters as f64 / n as f64)
            });
        });
    }
    group.finish();
}

criterion_group!(ring, ring_benches);

fn rounds() -> usize {
    std::env::var("VIRIDIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// Interleaved ring and memcpy rounds per case; medians, rates and the ratio.
fn summary() {
    let ram = guest_ram();
    let src: Vec<u8> = (0..RAM_PAGES * 4096).map(|i| (i * 13) as u8).collect();
    println!(
        "\nvmbus ring vs memcpy (128 KiB ring, spinning SPSC, median of {} interleaved rounds)",
        rounds()
    );
    println!(
        "  {:<42} {:>12} {:>10} {:>12} {:>8}",
        "case", "packets/s", "GB/s", "memcpy GB/s", "ratio"
    );
    for case in CASES {
        let packets = case.kind.summary_packets();
        let (mut ring_t, mut copy_t) = (Vec::new(), Vec::new());
        for _ in 0..rounds() {
            ring_t.push(transfer(case, packets, &ram));
            copy_t.push(memcpy(case, packets, &src));
        }
        ring_t.sort();
        copy_t.sort();
        let (rt, ct) = (ring_t[ring_t.len() / 2], copy_t[copy_t.len() / 2]);
        let bytes = packets as f64 * case.kind.data_bytes() as f64;
        println!(
            "  {:<42} {:>12.0} {:>10.2} {:>12.2} {:>8.2}",
            case.name,
            packets as f64 / rt.as_secs_f64(),
            bytes / rt.as_secs_f64() / 1e9,
            bytes / ct.as_secs_f64() / 1e9,
            rt.as_secs_f64() / ct.as_secs_f64()
        );
    }
}

fn main() {
    ring();
    summary();
    Criterion::default().configure_from_args().final_summary();
}
