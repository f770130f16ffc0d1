//! Model-based property tests: random packet streams through rings of random size, with random
//! batch sizes on both sides, over all three memory implementations, against a model that keeps
//! byte counts instead of indices.
//!
//! The model predicts every signalling decision: the writer signals iff the reader's mask is clear
//! and the ring held nothing when the batch was published (empty → non-empty); the reader
//! signals iff the writer asked for space and the free space crossed it; `more` iff the ring is
//! non-empty after a release. The test checks the packets read are exactly the packets written,
//! in order, and that signal counts equal the model's.

// The mapped-memory case builds a `MappedRingMemory` over a local buffer; the block says why.
#![allow(unsafe_code)]

use proptest::prelude::*;
use std::collections::VecDeque;
use vmbus_ring::gpadl::GuestRam;
use vmbus_ring::memory::{FlatRingMemory, MappedRingMemory, PageRef, PagedRingMemory, RingMemory};
use vmbus_ring::packet::PacketRepr;
use vmbus_ring::ring::{RawPacket, ReadError, RingReader, RingWriter, SpaceRequest, WriteError};

/// Operations per case: Miri runs short streams (it is slow on atomics).
const MAX_OPS: usize = if cfg!(miri) { 16 } else { 120 };

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Write up to `n` packets of these sizes in one batch.
    Write(Vec<usize>),
    /// Read up to `n` packets in one batch.
    Read(usize),
    /// One packet with `RingReader::read`.
    ReadOne,
    Mask,
    Unmask,
}

fn op(max_len: usize) -> impl Strategy<Value = Op> {
    let size = (2usize..=max_len / 8).prop_map(|n| n * 8);
    prop_oneof![
        4 => proptest::collection::vec(size, 1..5).prop_map(Op::Write),
        3 => (1usize..6).prop_map(Op::Read),
        2 => Just(Op::ReadOne),
        1 => Just(Op::Mask),
        1 => Just(Op::Unmask),
    ]
}

/// Deterministic packet contents: an in-band packet whose transaction id is its sequence
/// number and whose payload is derived from it.
fn make_packet(seq: u64, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len - 16)
        .map(|i| (seq as usize * 31 + i) as u8)
        .collect();
    let mut out = vec![0u8; len];
    PacketRepr::in_band(seq, seq.is_multiple_of(3), &payload)
        .emit(&mut out)
        .unwrap();
    out
}

#[derive(Default, Debug)]
struct Model {
    size: usize,
    /// Packets published and not yet consumed (their lengths without trailer).
    queue: VecDeque<(u64, usize)>,
    masked: bool,
    /// `pending_send_size` as the writer left it.
    pending: usize,
    writer_signals: usize,
    reader_signals: usize,
}

impl Model {
    fn unread(&self) -> usize {
        self.queue.iter().map(|&(_, len)| len + 8).sum()
    }
    fn free(&self) -> usize {
        self.size - self.unread()
    }
}

fn run<M: RingMemory>(mem: M, ops: &[Op]) -> Result<(), TestCaseError> {
    let size = mem.data_len() as usize;
    let mut writer = RingWriter::new(&mem).unwrap();
    let mut reader = RingReader::new(&mem).unwrap();
    let max = writer.max_packet_len();
    let mut model = Model {
        size,
        ..Model::default()
    };
    let (mut got_writer_signals, mut got_reader_signals) = (0, 0);
    let mut next_seq = 0u64;
    let mut next_expected = 0u64;
    let mut buf = vec![0u8; size];

    let mut consume = |model: &mut Model, buf: &[u8], len: usize| -> Result<(), TestCaseError> {
        let (seq, want_len) = model.queue.pop_front().expect("model has a packet");
        prop_assert_eq!(seq, next_expected);
        prop_assert_eq!(len, want_len);
        prop_assert_eq!(&buf[..len], &make_packet(seq, len)[..]);
        next_expected += 1;
        Ok(())
    };

    for op in ops {
        match op {
            Op::Write(sizes) => {
                let unread_before = model.unread();
                let mut batch = writer.batch();
                let mut written = 0;
                let mut full_at = None;
                for &len in sizes {
                    let len = len.min(max);
                    let need = len + 8;
                    let fits = need < size - model.unread();
                    let bytes = make_packet(next_seq, len);
                    match batch.write(&RawPacket(&bytes)) {
                        Ok(()) => {
                            prop_assert!(fits, "wrote a packet the model says does not fit");
                            model.queue.push_back((next_seq, len));
                            next_seq += 1;
                            written += 1;
                        }
                        Err(WriteError::Full { needed, available }) => {
                            prop_assert!(!fits);
                            prop_assert_eq!(needed as usize, need);
                            prop_assert_eq!(available as usize, model.free() - 8);
                            full_at = Some(len);
                            break;
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
                    }
                }
                let out = batch.commit();
                prop_assert_eq!(out.packets, written);
                let predicted = written > 0 && !model.masked && unread_before == 0;
                prop_assert_eq!(out.must_signal, predicted);
                if written > 0 {
                    model.pending = 0; // a successful commit clears the request
                }
                got_writer_signals += usize::from(out.must_signal);
                model.writer_signals += usize::from(predicted);
                if let (Some(len), 0) = (full_at, written) {
                    let need = len + 8;
                    let answer = writer.request_space(len).unwrap();
                    if need < model.free() {
                        prop_assert_eq!(answer, SpaceRequest::Available);
                    } else {
                        prop_assert_eq!(answer, SpaceRequest::Pending);
                        model.pending = need;
                    }
                }
            }
            Op::Read(_) | Op::ReadOne => {
                let free_before = model.free();
                let (read, out) = if let Op::Read(n) = *op {
                    let mut batch = reader.batch();
                    let mut read = 0;
                    for _ in 0..n {
                        match batch.next(&mut buf) {
                            Ok(len) => {
                                consume(&mut model, &buf, len)?;
                                read += 1;
                            }
                            Err(ReadError::Empty) => {
                                prop_assert!(model.queue.is_empty());
                                break;
                            }
                            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
                        }
                    }
                    (read, batch.commit())
                } else {
                    match reader.read(&mut buf) {
                        Ok((len, out)) => {
                            consume(&mut model, &buf, len)?;
                            (1, out)
                        }
                        Err(ReadError::Empty) => {
                            prop_assert!(model.queue.is_empty());
                            continue;
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
                    }
                };
                let p = model.pending & !7;
                let predicted = read > 0 && p != 0 && free_before <= p && model.free() > p;
                prop_assert_eq!(out.must_signal, predicted);
                prop_assert_eq!(out.more, !model.queue.is_empty());
                got_reader_signals += usize::from(out.must_signal);
                model.reader_signals += usize::from(predicted);
            }
            Op::Mask => {
                reader.mask_interrupts();
                model.masked = true;
            }
            Op::Unmask => {
                let more = reader.unmask_interrupts();
                model.masked = false;
                prop_assert_eq!(more, !model.queue.is_empty());
            }
        }
    }
    // Drain: everything written comes out, in order.
    loop {
        match reader.read(&mut buf) {
            Ok((len, _)) => consume(&mut model, &buf, len)?,
            Err(ReadError::Empty) => break,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
        }
    }
    prop_assert_eq!(next_expected, next_seq);
    prop_assert_eq!(got_writer_signals, model.writer_signals);
    prop_assert_eq!(got_reader_signals, model.reader_signals);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn flat_rings_of_random_size(
        words in 4usize..if cfg!(miri) { 200 } else { 1600 },
        ops in proptest::collection::vec(op(600), 1..MAX_OPS),
    ) {
        let mem = FlatRingMemory::new_boxed(words * 8).unwrap();
        run(&mem, &ops)?;
    }

    #[test]
    fn paged_rings_over_scattered_pages(
        order in Just((0u64..8).collect::<Vec<_>>()).prop_shuffle(),
        data_pages in 1usize..if cfg!(miri) { 3 } else { 8 },
        ops in proptest::collection::vec(op(2048), 1..MAX_OPS),
    ) {
        let ram = GuestRam::new_boxed(0x40, 8).unwrap();
        let pages: Vec<PageRef<'_>> =
            order.iter().map(|&i| ram.page_ref(0x40 + i).unwrap()).collect();
        let mem = PagedRingMemory::new(pages[0], &pages[1..=data_pages]).unwrap();
        run(&mem, &ops)?;
    }

    #[test]
    fn mapped_rings(
        data_pages in 1usize..if cfg!(miri) { 2 } else { 4 },
        ops in proptest::collection::vec(op(1024), 1..MAX_OPS),
    ) {
        let mut backing = vec![0u64; (data_pages + 1) * 512];
        let len = backing.len() * 8;
        // SAFETY: `backing` outlives `mem` and is only accessed through it while `mem` lives.
        let mem = unsafe { MappedRingMemory::new(backing.as_mut_ptr().cast(), len) }.unwrap();
        run(&mem, &ops)?;
    }
}
