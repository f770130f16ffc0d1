//! A producer and a consumer on two threads over shared ring memory, with real signalling:
//! each side sleeps on an event when the ring is empty (reader) or full (writer) and relies on
//! the other side's `must_signal` to wake it. Every packet's length and contents are checked,
//! and a wakeup that never comes shows up as a timed-out wait, which fails the test.
//!
//! A million packets per test natively (half a million per ring size), three million in all;
//! a few hundred per run under Miri (which checks the atomics for data races and the
//! mapped-memory `unsafe` for soundness).

// The mapped-memory case builds a `MappedRingMemory` over a local buffer; the block says why.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::Thread;
use std::time::Duration;

use vmbus_ring::memory::{FlatRingMemory, MappedRingMemory, RingMemory};
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter, SpaceRequest, WriteError};

/// Packets per run; each test does two runs (two ring sizes) or one run of twice as many.
#[cfg(not(miri))]
const PACKETS: u64 = 500_000;
#[cfg(miri)]
const PACKETS: u64 = 60;

/// How long a wait may take before it counts as a lost wakeup.
const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// A one-bit event: `signal` sets it and wakes the owner; `wait` sleeps until it is set (or the
/// event is closed because the other side has stopped, normally or by panicking).
struct Event {
    set: AtomicBool,
    closed: AtomicBool,
    owner: Mutex<Option<Thread>>,
    timeouts: AtomicUsize,
}

impl Event {
    fn new() -> Self {
        Self {
            set: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            owner: Mutex::new(None),
            timeouts: AtomicUsize::new(0),
        }
    }

    fn register(&self) {
        *self.owner.lock().unwrap() = Some(std::thread::current());
    }

    fn wake(&self) {
        if let Some(t) = self.owner.lock().unwrap().as_ref() {
            t.unpark();
        }
    }

    fn signal(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn wait(&self) {
        let start = std::time::Instant::now();
        while !self.set.swap(false, Ordering::SeqCst) {
            if self.is_closed() {
                return;
            }
            if start.elapsed() > WAIT_LIMIT {
                self.timeouts.fetch_add(1, Ordering::SeqCst);
                return;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

/// Closes the peer's event when a side stops, so the peer never waits for a dead thread.
struct CloseOnExit<'a>(&'a Event);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Packet `seq`: in-band, transaction id `seq`, a payload whose length and bytes derive from it.
fn payload_len(seq: u64) -> usize {
    (seq as usize * 37) % 300
}

fn fill(seq: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(7).wrapping_add(i) as u8;
    }
}

#[derive(Clone, Copy)]
enum Mode {
    /// `RingReader::read` per packet, `RingWriter::write` per packet.
    Direct,
    /// Batches of up to 8 on both sides; the reader masks interrupts while draining.
    Batched,
}

fn producer<M: RingMemory>(mem: M, mode: Mode, packets: u64, to_reader: &Event, to_writer: &Event) {
    to_writer.register();
    let _close = CloseOnExit(to_reader);
    let mut w = RingWriter::new(mem).unwrap();
    let mut payload = vec![0u8; 300];
    let mut seq = 0u64;
    while seq < packets {
        let batch_len = match mode {
            Mode::Direct => 1,
            Mode::Batched => 1 + seq % 8,
        };
        let mut batch = w.batch();
        let mut blocked = None;
        for _ in 0..batch_len {
            if seq == packets {
                break;
            }
            let p = &mut payload[..payload_len(seq)];
            fill(seq, p);
            let repr = PacketRepr::in_band(seq, false, p);
            match batch.write(&repr) {
                Ok(()) => seq += 1,
                Err(WriteError::Full { .. }) => {
                    blocked = Some(repr.buffer_len());
                    break;
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        let empty = batch.is_empty();
        let out = batch.commit();
        if out.must_signal {
            to_reader.signal();
        }
        if let (Some(len), true) = (blocked, empty) {
            if w.request_space(len).unwrap() == SpaceRequest::Pending {
                if to_writer.is_closed() {
                    return; // the consumer stopped; it reports why
                }
                to_writer.wait();
            }
        }
    }
}

fn consumer<M: RingMemory>(mem: M, mode: Mode, packets: u64, to_reader: &Event, to_writer: &Event) {
    to_reader.register();
    let _close = CloseOnExit(to_writer);
    let mut r = RingReader::new(mem).unwrap();
    let mut buf = vec![0u8; 512];
    let mut expect = 0u64;
    let mut last_look = false;
    let check = |buf: &[u8], expect: &mut u64| {
        let p = PacketRepr::parse_bytes(buf).unwrap();
        assert_eq!(p.kind, PacketKind::InBand);
        assert_eq!(p.transaction_id, *expect);
        let n = payload_len(*expect);
        assert_eq!(p.payload.len(), n.div_ceil(8) * 8, "packet {expect}");
        let seq = *expect as usize;
        let intact = p.payload.iter().enumerate().all(|(i, &b)| {
            b == if i < n {
                seq.wrapping_mul(7).wrapping_add(i) as u8
            } else {
                0
            }
        });
        assert!(intact, "packet {expect} corrupted");
        *expect += 1;
    };
    match mode {
        Mode::Direct => {
            while expect < packets {
                match r.read(&mut buf) {
                    Ok((len, out)) => {
                        check(&buf[..len], &mut expect);
                        if out.must_signal {
                            to_writer.signal();
                        }
                    }
                    // The producer has stopped: one more look (its last publish happened
                    // before it closed the event), then give up.
                    Err(ReadError::Empty) if to_reader.is_closed() => {
                        if last_look {
                            break;
                        }
                        last_look = true;
                    }
                    Err(ReadError::Empty) => to_reader.wait(),
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        Mode::Batched => {
            r.mask_interrupts();
            while expect < packets {
                let mut batch = r.batch();
                for _ in 0..8 {
                    match batch.next(&mut buf) {
                        Ok(len) => check(&buf[..len], &mut expect),
                        Err(ReadError::Empty) => break,
                        Err(e) => panic!("read: {e}"),
                    }
                }
                let out = batch.commit();
                if out.must_signal {
                    to_writer.signal();
                }
                if out.more || expect == packets {
                    continue;
                }
                if r.unmask_interrupts() {
                    r.mask_interrupts();
                    continue;
                }
                if to_reader.is_closed() {
                    if last_look {
                        break;
                    }
                    last_look = true;
                    continue;
                }
                to_reader.wait();
                r.mask_interrupts();
            }
        }
    }
    assert_eq!(expect, packets, "the producer stopped early");
}

fn run<M: RingMemory + Sync>(mem: &M, mode: Mode, packets: u64) {
    let (to_reader, to_writer) = (Event::new(), Event::new());
    std::thread::scope(|s| {
        s.spawn(|| producer(mem, mode, packets, &to_reader, &to_writer));
        s.spawn(|| consumer(mem, mode, packets, &to_reader, &to_writer));
    });
    assert_eq!(
        to_reader.timeouts.load(Ordering::SeqCst),
        0,
        "reader missed a wakeup"
    );
    assert_eq!(
        to_writer.timeouts.load(Ordering::SeqCst),
        0,
        "writer missed a wakeup"
    );
}

/// Ring sizes: a small one (the writer blocks all the time; still above the largest packet, 320
/// bytes) and a larger one (16 KiB, the hv_utils size, natively).
fn sizes() -> [usize; 2] {
    if cfg!(miri) {
        [512, 2048]
    } else {
        [1024, 16 << 10]
    }
}

#[test]
fn flat_direct() {
    for size in sizes() {
        run(
            &FlatRingMemory::new_boxed(size).unwrap(),
            Mode::Direct,
            PACKETS,
        );
    }
}

#[test]
fn flat_batched() {
    for size in sizes() {
        run(
            &FlatRingMemory::new_boxed(size).unwrap(),
            Mode::Batched,
            PACKETS,
        );
    }
}

#[test]
fn mapped_batched() {
    let mut backing = vec![0u64; 2 * 512];
    let len = backing.len() * 8;
    // SAFETY: `backing` outlives `mem`, and while `mem` lives it is accessed only through it
    // (from both threads, atomically).
    let mem = unsafe { MappedRingMemory::new(backing.as_mut_ptr().cast(), len) }.unwrap();
    run(&mem, Mode::Batched, 2 * PACKETS);
}
