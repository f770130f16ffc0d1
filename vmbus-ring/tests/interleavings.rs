//! Exhaustive model checking of the signalling protocol: lost wakeups.
//!
//! A writer thread and a reader thread run the real `RingWriter` / `RingReader` code over a
//! ring memory that hands control to a deterministic scheduler before every control-word access
//! (the only memory the two sides race on). The scheduler explores every interleaving of those
//! accesses (depth-first over its choice points, like loom or CHESS, under sequential
//! consistency — the model the protocol's full barriers are there to provide), and after each
//! run the test checks that no wakeup was lost:
//!
//! - data: if the ring still holds data when the reader has gone idle, the writer signalled
//!   after the reader's last look at the write index (direct mode and batched mode with
//!   interrupt masking);
//! - space: if the writer ends blocked on `pending_send_size` and the space it waits for is
//!   free, the reader signalled after the writer set `pending_send_size`.
//!
//! A signal sets an event the sleeping side checks, so a signal is lost only if it was never
//! sent after the sleeper's last observation.

#![cfg(not(miri))]

use std::sync::{Condvar, Mutex};

use vmbus_ring::memory::{ControlWord, FlatRingMemory, RingMemory};
use vmbus_ring::ring::{RawPacket, ReadError, RingReader, RingWriter, SpaceRequest, WriteError};

const WRITER: usize = 0;
const READER: usize = 1;

#[derive(Debug, Default)]
struct State {
    active: bool,
    current: usize,
    running: [bool; 2],
    time: u64,
    /// Choices to replay, then choice 0 for new decision points.
    prefix: Vec<usize>,
    /// `(chosen, options)` at each decision point of this run.
    trace: Vec<(usize, usize)>,
    /// Per thread: time of its last load of `write_index`, and of its last store of
    /// `pending_send_size`.
    last_write_index_load: [u64; 2],
    last_pending_store: [u64; 2],
}

#[derive(Default)]
struct Scheduler {
    state: Mutex<State>,
    cv: Condvar,
}

impl Scheduler {
    fn choose(s: &mut State) -> Option<usize> {
        let runnable: Vec<usize> = (0..2).filter(|&t| s.running[t]).collect();
        match runnable.len() {
            0 => None,
            1 => Some(runnable[0]),
            n => {
                let i = s.trace.len();
                let pick = s.prefix.get(i).copied().unwrap_or(0);
                s.trace.push((pick, n));
                Some(runnable[pick])
            }
        }
    }

    /// A control-word access by `tid`: yield to whichever thread the schedule picks, return
    /// once it is `tid`'s turn again, with the access's timestamp.
    fn step(&self, tid: usize, word: ControlWord, store: bool) {
        let mut s = self.state.lock().unwrap();
        if !s.active {
            return;
        }
        if let Some(next) = Self::choose(&mut s) {
            s.current = next;
        }
        self.cv.notify_all();
        while s.current != tid {
            s = self.cv.wait(s).unwrap();
        }
        s.time += 1;
        let now = s.time;
        match (word, store) {
            (ControlWord::WriteIndex, false) => s.last_write_index_load[tid] = now,
            (ControlWord::PendingSendSize, true) => s.last_pending_store[tid] = now,
            _ => {}
        }
    }

    fn now(&self) -> u64 {
        self.state.lock().unwrap().time
    }

    fn start(&self, tid: usize) {
        let mut s = self.state.lock().unwrap();
        while !(s.active && s.current == tid) {
            s = self.cv.wait(s).unwrap();
        }
    }

    fn finish(&self, tid: usize) {
        let mut s = self.state.lock().unwrap();
        s.running[tid] = false;
        if let Some(next) = Self::choose(&mut s) {
            s.current = next;
        }
        self.cv.notify_all();
    }

    fn activate(&self, prefix: Vec<usize>) {
        let mut s = self.state.lock().unwrap();
        *s = State {
            active: true,
            running: [true, true],
            prefix,
            ..State::default()
        };
        let first = Self::choose(&mut s).unwrap();
        s.current = first;
        self.cv.notify_all();
    }

    fn deactivate(&self) -> State {
        let mut s = self.state.lock().unwrap();
        s.active = false;
        std::mem::take(&mut *s)
    }
}

/// Ring memory whose control-word accesses are scheduling points.
struct Scheduled<'a> {
    mem: &'a FlatRingMemory<Box<[std::sync::atomic::AtomicU64]>>,
    sched: &'a Scheduler,
    tid: usize,
}

impl RingMemory for Scheduled<'_> {
    fn data_len(&self) -> u32 {
        self.mem.data_len()
    }
    fn load_control(&self, word: ControlWord) -> u32 {
        self.sched.step(self.tid, word, false);
        self.mem.load_control(word)
    }
    fn store_control(&self, word: ControlWord, value: u32) {
        self.sched.step(self.tid, word, true);
        self.mem.store_control(word, value);
    }
    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        self.mem.read_at(offset, buf);
    }
    fn write_at(&self, offset: u32, buf: &[u8]) {
        self.mem.write_at(offset, buf);
    }
}

/// Marks a thread finished even if it panics, so the other thread is not left waiting.
struct Finish<'a>(&'a Scheduler, usize);
impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1);
    }
}

fn packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 6; // in-band
    p[2] = 2; // offset8
    p[4..6].copy_from_slice(&((len / 8) as u16).to_le_bytes());
    p
}

/// What one run observed.
#[derive(Debug, Default)]
struct Run {
    /// Times at which the writer decided to signal the reader.
    writer_signals: Vec<u64>,
    /// Times at which the reader decided to signal the writer.
    reader_signals: Vec<u64>,
    /// The writer ended waiting for space of this many bytes (packet + trailer).
    writer_waiting: Option<u32>,
    state: State,
}

/// Explores every interleaving of `writer` and `reader` over a ring prepared by `setup`, calling
/// `check` after each. Returns the number of interleavings.
fn explore(
    data_len: usize,
    setup: impl Fn(&FlatRingMemory<Box<[std::sync::atomic::AtomicU64]>>),
    writer: impl Fn(&mut RingWriter<Scheduled<'_>>, &Scheduler, &mut Run) + Sync,
    reader: impl Fn(&mut RingReader<Scheduled<'_>>, &Scheduler, &mut Run) + Sync,
    check: impl Fn(&FlatRingMemory<Box<[std::sync::atomic::AtomicU64]>>, &Run),
) -> usize {
    let sched = Scheduler::default();
    let mut prefix = Vec::new();
    let mut runs = 0;
    loop {
        let mem = FlatRingMemory::new_boxed(data_len).unwrap();
        setup(&mem);
        let mut w = RingWriter::new(Scheduled {
            mem: &mem,
            sched: &sched,
            tid: WRITER,
        })
        .unwrap();
        let mut r = RingReader::new(Scheduled {
            mem: &mem,
            sched: &sched,
            tid: READER,
        })
        .unwrap();
        sched.activate(prefix.clone());
        let (mut wrun, mut rrun) = (Run::default(), Run::default());
        std::thread::scope(|s| {
            s.spawn(|| {
                sched.start(WRITER);
                let _f = Finish(&sched, WRITER);
                writer(&mut w, &sched, &mut wrun);
            });
            s.spawn(|| {
                sched.start(READER);
                let _f = Finish(&sched, READER);
                reader(&mut r, &sched, &mut rrun);
            });
        });
        let state = sched.deactivate();
        let run = Run {
            writer_signals: wrun.writer_signals,
            reader_signals: rrun.reader_signals,
            writer_waiting: wrun.writer_waiting,
            state,
        };
        check(&mem, &run);
        runs += 1;
        // Next schedule: bump the deepest choice that has an untried alternative.
        let trace = &run.state.trace;
        match trace.iter().rposition(|&(c, n)| c + 1 < n) {
            Some(i) => {
                prefix = trace[..i].iter().map(|&(c, _)| c).collect();
                prefix.push(trace[i].0 + 1);
            }
            None => return runs,
        }
    }
}

/// Packets a fresh reader could still read from `mem`.
fn leftover(mem: &FlatRingMemory<Box<[std::sync::atomic::AtomicU64]>>) -> bool {
    let r = RingReader::new(mem).unwrap();
    r.bytes_available().unwrap() != 0
}

fn data_wakeup_not_lost(mem: &FlatRingMemory<Box<[std::sync::atomic::AtomicU64]>>, run: &Run) {
    if leftover(mem) {
        let last_look = run.state.last_write_index_load[READER];
        assert!(
            run.writer_signals.iter().any(|&t| t > last_look),
            "lost wakeup: data left, reader last looked at t={last_look}, writer signals at {:?} \
             (schedule {:?})",
            run.writer_signals,
            run.state.trace
        );
    }
}

fn write_one(w: &mut RingWriter<Scheduled<'_>>, sched: &Scheduler, run: &mut Run, len: usize) {
    let out = w.write(&RawPacket(&packet(len))).unwrap();
    if out.must_signal {
        run.writer_signals.push(sched.now());
    }
}

#[test]
fn direct_mode_reader_never_misses_data() {
    for prefill in 0..2 {
        let runs = explore(
            256,
            |mem| {
                let mut w = RingWriter::new(mem).unwrap();
                for _ in 0..prefill {
                    let _ = w.write(&RawPacket(&packet(24))).unwrap();
                }
            },
            |w, sched, run| {
                write_one(w, sched, run, 32);
                if prefill == 0 {
                    write_one(w, sched, run, 16);
                }
            },
            |r, _, _| {
                // hv_utils style: read until empty, re-checking after each release.
                let mut buf = [0u8; 64];
                loop {
                    match r.read(&mut buf) {
                        Ok((_, out)) if out.more => continue,
                        Ok(_) | Err(ReadError::Empty) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            },
            data_wakeup_not_lost,
        );
        assert!(runs > 100, "only {runs} interleavings explored");
    }
}

#[test]
fn batched_mode_with_masking_never_misses_data() {
    let runs = explore(
        256,
        |_| {},
        |w, sched, run| {
            write_one(w, sched, run, 24);
            write_one(w, sched, run, 24);
        },
        |r, _, _| {
            // netvsc/storvsc style: mask, drain in a batch, release, unmask and re-check.
            let mut buf = [0u8; 64];
            r.mask_interrupts();
            loop {
                let mut batch = r.batch();
                while batch.next(&mut buf).is_ok() {}
                let out = batch.commit();
                if out.more {
                    continue;
                }
                if !r.unmask_interrupts() {
                    break;
                }
                r.mask_interrupts();
            }
        },
        data_wakeup_not_lost,
    );
    assert!(runs > 100, "only {runs} interleavings explored");
}

#[test]
fn blocked_writer_never_misses_space() {
    // A 128-byte ring holding two 40-byte packets (96 bytes with trailers, 32 free). The writer
    // wants `want` bytes (+ 8 for the trailer); the reader frees `reads` packets. (1, 80) is the
    // case where the freed space is not enough and the writer must keep waiting.
    for (reads, want) in [(1usize, 48usize), (2, 48), (1, 80), (2, 104)] {
        let runs = explore(
            128,
            |mem| {
                let mut w = RingWriter::new(mem).unwrap();
                for _ in 0..2 {
                    let _ = w.write(&RawPacket(&packet(40))).unwrap();
                }
            },
            |w, sched, run| loop {
                match w.write(&RawPacket(&packet(want))) {
                    Ok(out) => {
                        if out.must_signal {
                            run.writer_signals.push(sched.now());
                        }
                        break;
                    }
                    Err(WriteError::Full { .. }) => match w.request_space(want).unwrap() {
                        SpaceRequest::Available => continue,
                        SpaceRequest::Pending => {
                            run.writer_waiting = Some(want as u32 + 8);
                            break;
                        }
                    },
                    Err(e) => panic!("{e:?}"),
                }
            },
            |r, sched, run| {
                let mut buf = [0u8; 128];
                let mut batch = r.batch();
                for _ in 0..reads {
                    let _ = batch.next(&mut buf);
                }
                if batch.commit().must_signal {
                    run.reader_signals.push(sched.now());
                }
            },
            |mem, run| {
                if let Some(need) = run.writer_waiting {
                    let free = {
                        let w = mem.load_control(ControlWord::WriteIndex);
                        let r = mem.load_control(ControlWord::ReadIndex);
                        if r > w {
                            r - w
                        } else {
                            128 - (w - r)
                        }
                    };
                    if free > need {
                        let asked = run.state.last_pending_store[WRITER];
                        assert!(
                            run.reader_signals.iter().any(|&t| t > asked),
                            "lost space wakeup: {free} free > {need} needed, pending set at \
                             t={asked}, reader signals at {:?} (schedule {:?})",
                            run.reader_signals,
                            run.state.trace
                        );
                    }
                }
            },
        );
        assert!(runs > 20, "only {runs} interleavings explored");
    }
}
