//! Ring endpoint tests: layout in memory, signalling rules, full/empty, batching, and hostile
//! peers.

use super::*;
use crate::defs::{FeatureBits, MAX_PACKET_LEN};
use crate::memory::{ControlWord, FlatRingMemory, RingMemory};
use crate::mock::ChaosMemory;
use crate::packet::PacketRepr;
use proptest::prelude::*;
use std::boxed::Box;
use std::vec::Vec;

type Mem = FlatRingMemory<Box<[core::sync::atomic::AtomicU64]>>;

fn ring(data_len: usize) -> Mem {
    FlatRingMemory::new_boxed(data_len).unwrap()
}

fn raw(mem: &Mem, offset: u32, len: usize) -> Vec<u8> {
    let mut v = std::vec![0u8; len];
    mem.read_at(offset, &mut v);
    v
}

fn packet(len: usize, fill: u8) -> Vec<u8> {
    // An in-band packet of exactly `len` bytes (len >= 16, multiple of 8).
    let payload = std::vec![fill; len - 16];
    let repr = PacketRepr::in_band(u64::from(fill), false, &payload);
    let mut out = std::vec![0u8; len];
    repr.emit(&mut out).unwrap();
    out
}

#[test]
fn packet_and_trailer_land_where_the_reference_says() {
    let mem = ring(4096);
    let mut w = RingWriter::new(&mem).unwrap();
    assert_eq!(
        FeatureBits(mem.load_control(ControlWord::FeatureBits)),
        FeatureBits(1)
    );
    let out = w
        .write(&PacketRepr::in_band(0x1122_3344_5566_7788, true, b"hello"))
        .unwrap();
    assert_eq!(
        out,
        WriteOutcome {
            must_signal: true,
            packets: 1
        }
    );
    assert_eq!(mem.load_control(ControlWord::WriteIndex), 32);
    assert_eq!(
        raw(&mem, 0, 32),
        [
            6, 0, 2, 0, 3, 0, 1, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, b'h', b'e',
            b'l', b'l', b'o', 0, 0, 0, // packet
            0, 0, 0, 0, 0, 0, 0, 0, // trailer: start offset 0 << 32
        ]
    );
    let _ = w.write(&PacketRepr::completion(9, &[1; 8])).unwrap();
    // Second packet's trailer names its start offset, 32.
    assert_eq!(raw(&mem, 56, 8), [0, 0, 0, 0, 32, 0, 0, 0]);

    let mut r = RingReader::new(&mem).unwrap();
    let mut buf = [0u8; 64];
    let (len, out) = r.read(&mut buf).unwrap();
    assert_eq!(len, 24);
    assert!(out.more && !out.must_signal);
    assert_eq!(mem.load_control(ControlWord::ReadIndex), 32);
    let p = PacketRepr::parse_bytes(&buf[..len]).unwrap();
    assert_eq!(&p.payload[..5], b"hello");
    let (len, out) = r.read(&mut buf).unwrap();
    assert_eq!(len, 24);
    assert!(!out.more);
    assert_eq!(r.read(&mut buf), Err(ReadError::Empty));
}

#[test]
fn writer_signals_only_on_empty_to_non_empty_with_mask_clear() {
    let mem = ring(4096);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    let mut buf = [0u8; 4096];
    assert!(w.write(&RawPacket(&packet(32, 1))).unwrap().must_signal);
    assert!(!w.write(&RawPacket(&packet(32, 2))).unwrap().must_signal);
    let _ = r.read(&mut buf).unwrap();
    // Still one packet in the ring: not empty -> no signal.
    assert!(!w.write(&RawPacket(&packet(32, 3))).unwrap().must_signal);
    while r.read(&mut buf).is_ok() {}
    assert!(w.write(&RawPacket(&packet(32, 4))).unwrap().must_signal);
    // Masked: no signal even on empty -> non-empty.
    let _ = r.read(&mut buf).unwrap();
    r.mask_interrupts();
    assert!(!w.write(&RawPacket(&packet(32, 5))).unwrap().must_signal);
    // Unmasking re-checks and reports the unsignalled data.
    assert!(r.unmask_interrupts());
    let _ = r.read(&mut buf).unwrap();
    assert!(!r.unmask_interrupts());
    // A batch of three publishes once and signals once.
    let mut batch = w.batch();
    for i in 0..3 {
        batch.write(&RawPacket(&packet(40, i))).unwrap();
    }
    assert_eq!(batch.len(), 3);
    assert_eq!(
        batch.commit(),
        WriteOutcome {
            must_signal: true,
            packets: 3
        }
    );
    // An empty commit publishes nothing and does not signal.
    assert_eq!(w.batch().commit(), WriteOutcome::default());
}

#[test]
fn uncommitted_batches_are_invisible() {
    let mem = ring(4096);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    let mut buf = [0u8; 128];
    {
        let mut batch = w.batch();
        assert!(batch.is_empty());
        batch.write(&RawPacket(&packet(32, 1))).unwrap();
        assert!(!batch.is_empty());
        assert_eq!(batch.len(), 1);
    }
    assert_eq!(r.read(&mut buf), Err(ReadError::Empty));
    assert_eq!(w.write_index(), 0);
    let _ = w.write(&RawPacket(&packet(32, 2))).unwrap();
    assert_eq!(w.write_index(), 40);
    assert_eq!(w.data_len(), 4096);
    let mut batch = r.batch();
    assert_eq!(batch.next(&mut buf), Ok(32));
    assert_eq!(batch.consumed(), 40);
    drop(batch);
    // Not committed: still there.
    assert_eq!(r.peek(&mut buf), Ok(32));
    assert_eq!(buf[16], 2);
    assert_eq!(r.read_index(), 0);
}

#[test]
fn never_completely_full() {
    // 64-byte ring: at most 56 bytes (packets + trailers) in it.
    let mem = ring(64);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    assert_eq!(w.max_packet_len(), 48);
    assert_eq!(
        w.write(&RawPacket(&packet(56, 0))),
        Err(WriteError::TooLarge { len: 56, max: 48 })
    );
    let _ = w.write(&RawPacket(&packet(24, 1))).unwrap(); // 32 bytes
    assert_eq!(w.available(), Ok(24));
    assert_eq!(
        w.write(&RawPacket(&packet(24, 2))),
        Err(WriteError::Full {
            needed: 32,
            available: 24
        })
    );
    let _ = w.write(&RawPacket(&packet(16, 2))).unwrap(); // 24 more: 56 used, 8 free
    assert_eq!(w.available(), Ok(0));
    assert!(matches!(
        w.write(&RawPacket(&packet(16, 3))),
        Err(WriteError::Full { .. })
    ));
    assert_eq!(r.bytes_available(), Ok(56));
    let mut buf = [0u8; 64];
    assert_eq!(r.read(&mut buf).unwrap().0, 24);
    // The next packet wraps around the end of the data area.
    let _ = w.write(&RawPacket(&packet(24, 4))).unwrap();
    assert_eq!(r.read(&mut buf).unwrap().0, 16);
    assert_eq!(r.read(&mut buf).unwrap().0, 24);
    assert!(buf[16..24].iter().all(|&b| b == 4));
    assert_eq!(r.read(&mut buf), Err(ReadError::Empty));
}

#[test]
fn bad_packet_lengths_from_the_caller() {
    let mem = ring(4096);
    let mut w = RingWriter::new(&mem).unwrap();
    assert_eq!(
        w.write(&RawPacket(&[0; 20])),
        Err(WriteError::BadLength { len: 20 })
    );
    assert_eq!(
        w.write(&RawPacket(&[0; 8])),
        Err(WriteError::BadLength { len: 8 })
    );
    let big = std::vec![0u8; MAX_PACKET_LEN + 8];
    assert_eq!(
        w.write(&RawPacket(&big)),
        Err(WriteError::BadLength {
            len: MAX_PACKET_LEN + 8
        })
    );
    // A WritePacket that under-delivers is zero-filled; one that over-delivers is cut.
    struct Liar(usize, usize);
    impl WritePacket for Liar {
        fn packet_len(&self) -> usize {
            self.0
        }
        fn emit_to(&self, sink: &mut dyn PacketSink) {
            sink.put(&std::vec![0xee; self.1]);
        }
    }
    let _ = w.write(&Liar(32, 20)).unwrap();
    let _ = w.write(&Liar(16, 100)).unwrap();
    assert_eq!(mem.load_control(ControlWord::WriteIndex), 40 + 24);
    let bytes = raw(&mem, 0, 64);
    assert!(bytes[..20].iter().all(|&b| b == 0xee));
    assert!(bytes[20..32].iter().all(|&b| b == 0));
    assert!(bytes[40..56].iter().all(|&b| b == 0xee));
    assert_eq!(&bytes[56..64], &[0, 0, 0, 0, 40, 0, 0, 0]);
}

/// Endpoints resumed from the indices their owner kept ignore what the peer wrote into the
/// control page in between: a rewound read index does not replay consumed packets, and a
/// rewound write index does not make the next packet overwrite unread ones.
#[test]
fn resumed_endpoints_ignore_rewritten_indices() {
    let mem = ring(4096);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    let _ = w.write(&RawPacket(&packet(64, 1))).unwrap();
    let mut buf = [0u8; 256];
    assert_eq!(r.read(&mut buf).map(|(n, _)| n), Ok(64));
    let (kept_read, kept_write) = (r.read_index(), w.state());
    assert_eq!((kept_read, kept_write.write_index()), (72, 72));
    let _ = (r, w);
    // The writer rewinds the reader's index: a reader attaching afresh would take it and
    // read the packet again.
    mem.store_control(ControlWord::ReadIndex, 0);
    assert_eq!(RingReader::new(&mem).unwrap().read_index(), 0);
    let mut r = RingReader::resume(&mem, kept_read).unwrap();
    assert_eq!(r.read(&mut buf), Err(ReadError::Empty));
    // The reader rewinds the writer's index: the writer goes on where it was, and the reader
    // finds exactly the new packet.
    mem.store_control(ControlWord::WriteIndex, 0);
    let mut w = RingWriter::resume(&mem, kept_write).unwrap();
    let _ = w.write(&RawPacket(&packet(32, 2))).unwrap();
    assert_eq!(w.state().write_index(), 72 + 40);
    assert_eq!(r.read(&mut buf).map(|(n, _)| n), Ok(32));
    assert_eq!(&buf[..32], &packet(32, 2)[..]);
    // A kept index the ring cannot have is refused.
    assert!(RingReader::resume(&mem, 4096).is_err());
    assert!(RingReader::resume(&mem, 3).is_err());
}

/// A writer's state saved as its two parts (a snapshot or migration stream) and rebuilt
/// resumes exactly: the index, and the `pending_send_size` it must still clear.
#[test]
fn writer_state_survives_being_saved_as_parts() {
    let mem = ring(4096);
    let mut w = RingWriter::new(&mem).unwrap();
    let _ = w.write(&RawPacket(&packet(64, 1))).unwrap();
    assert_eq!(w.request_space(4040), Ok(SpaceRequest::Pending));
    let saved = w.state();
    let (index, pending) = (saved.write_index(), saved.pending());
    assert_eq!((index, pending), (72, true));
    let _ = w;
    let mut w = RingWriter::resume(&mem, WriterState::new(index, pending)).unwrap();
    assert_eq!(w.state(), saved);
    assert_ne!(mem.load_control(ControlWord::PendingSendSize), 0);
    w.clear_pending_send();
    assert_eq!(mem.load_control(ControlWord::PendingSendSize), 0);
    assert!(!w.state().pending());
    assert!(RingWriter::resume(&mem, WriterState::new(4096, false)).is_err());
}

#[test]
fn buffer_too_small_peek_and_skip() {
    let mem = ring(4096);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    let _ = w.write(&RawPacket(&packet(64, 1))).unwrap();
    let _ = w.write(&RawPacket(&packet(32, 2))).unwrap();
    let mut small = [0u8; 32];
    assert_eq!(
        r.read(&mut small),
        Err(ReadError::BufferTooSmall { needed: 64 })
    );
    assert_eq!(r.read_index(), 0);
    let mut batch = r.batch();
    assert_eq!(
        batch.peek(&mut small),
        Err(ReadError::BufferTooSmall { needed: 64 })
    );
    assert_eq!(batch.skip(), Ok(64));
    assert_eq!(batch.peek(&mut small), Ok(32));
    assert_eq!(batch.next(&mut small), Ok(32));
    assert_eq!(batch.next(&mut small), Err(ReadError::Empty));
    let out = batch.commit();
    assert!(!out.more);
    assert_eq!(r.read_index(), 72 + 40);
}

#[test]
fn pending_send_size_wakes_the_writer_exactly_once() {
    let mem = ring(256);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    for i in 0..5 {
        let _ = w.write(&RawPacket(&packet(40, i))).unwrap(); // 48 bytes each: 240 used, 16 free
    }
    assert!(matches!(
        w.write(&RawPacket(&packet(64, 9))),
        Err(WriteError::Full { needed: 72, .. })
    ));
    assert_eq!(w.request_space(64), Ok(SpaceRequest::Pending));
    assert_eq!(mem.load_control(ControlWord::PendingSendSize), 72);
    let mut buf = [0u8; 64];
    // Free: 16 -> 64 (still <= 72): no signal.
    assert!(!r.read(&mut buf).unwrap().1.must_signal);
    // 64 -> 112 (> 72): signal.
    assert!(r.read(&mut buf).unwrap().1.must_signal);
    // 112 -> 160: already above, no second signal.
    assert!(!r.read(&mut buf).unwrap().1.must_signal);
    // The writer's commit clears the request.
    let _ = w.write(&RawPacket(&packet(64, 9))).unwrap();
    assert_eq!(mem.load_control(ControlWord::PendingSendSize), 0);
    assert!(!r.read(&mut buf).unwrap().1.must_signal);
    // Space already there when asked: no request left behind.
    assert_eq!(w.request_space(16), Ok(SpaceRequest::Available));
    assert_eq!(mem.load_control(ControlWord::PendingSendSize), 0);
    assert_eq!(
        w.request_space(249),
        Err(WriteError::TooLarge { len: 249, max: 240 })
    );
}

#[test]
fn pending_send_size_rules_follow_the_writers_feature_bit_and_mask() {
    let mem = ring(256);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..5 {
        let _ = w.write(&RawPacket(&packet(40, i))).unwrap();
    }
    // A peer that writes ring_size - 1 wants "signal when empty"; masked to 248.
    mem.store_control(ControlWord::PendingSendSize, 255);
    for _ in 0..4 {
        assert!(!r.read(&mut buf).unwrap().1.must_signal);
    }
    assert!(r.read(&mut buf).unwrap().1.must_signal);
    // A writer that did not set feat_pending_send_sz gets no signal.
    for i in 0..5 {
        let _ = w.write(&RawPacket(&packet(40, i))).unwrap();
    }
    mem.store_control(ControlWord::FeatureBits, 0);
    mem.store_control(ControlWord::PendingSendSize, 72);
    assert!(!r.peer_signals_space());
    for _ in 0..5 {
        assert!(!r.read(&mut buf).unwrap().1.must_signal);
    }
}

#[test]
fn signal_after_restore() {
    let mem = ring(256);
    let mut w = RingWriter::new(&mem).unwrap();
    let r = RingReader::new(&mem).unwrap();
    assert!(!w.needs_signal_after_restore());
    let _ = w.write(&RawPacket(&packet(40, 1))).unwrap();
    assert!(w.needs_signal_after_restore());
    mem.store_control(ControlWord::InterruptMask, 1);
    assert!(!w.needs_signal_after_restore());
    assert!(!r.needs_signal_after_restore());
    mem.store_control(ControlWord::PendingSendSize, 64);
    assert!(r.needs_signal_after_restore()); // 208 free > 64
    mem.store_control(ControlWord::PendingSendSize, 208);
    assert!(!r.needs_signal_after_restore());
}

#[test]
fn corrupt_indices_and_lengths() {
    let mem = ring(256);
    mem.store_control(ControlWord::WriteIndex, 12);
    assert_eq!(
        RingWriter::new(&mem).unwrap_err(),
        CorruptRing::WriteIndex {
            index: 12,
            size: 256
        }
    );
    mem.store_control(ControlWord::WriteIndex, 0);
    mem.store_control(ControlWord::ReadIndex, 256);
    assert_eq!(
        RingReader::new(&mem).unwrap_err(),
        CorruptRing::ReadIndex {
            index: 256,
            size: 256
        }
    );
    assert!(RingWriter::new(&mem).is_err());
    mem.store_control(ControlWord::ReadIndex, 0);
    let mut w = RingWriter::new(&mem).unwrap();
    let mut r = RingReader::new(&mem).unwrap();
    let mut buf = [0u8; 256];
    // The reader moves its index somewhere impossible: the writer refuses to trust it.
    mem.store_control(ControlWord::ReadIndex, 7);
    assert_eq!(
        w.available(),
        Err(CorruptRing::ReadIndex {
            index: 7,
            size: 256
        })
    );
    mem.store_control(ControlWord::ReadIndex, 0);
    // A write index past the end.
    mem.store_control(ControlWord::WriteIndex, 1 << 20);
    assert_eq!(
        r.read(&mut buf),
        Err(ReadError::Corrupt(CorruptRing::WriteIndex {
            index: 1 << 20,
            size: 256
        }))
    );
    // len8 = 1 (shorter than a descriptor).
    let _ = w.write(&RawPacket(&packet(32, 1))).unwrap();
    mem.write_at(4, &[1, 0]);
    assert_eq!(
        r.read(&mut buf),
        Err(ReadError::Corrupt(CorruptRing::PacketLength {
            offset: 0,
            len8: 1,
            available: 40
        }))
    );
    // len8 past the write index.
    mem.write_at(4, &[5, 0]);
    assert!(matches!(
        r.read(&mut buf),
        Err(ReadError::Corrupt(CorruptRing::PacketLength {
            len8: 5,
            ..
        }))
    ));
    // Exactly up to the write index is fine.
    mem.write_at(4, &[4, 0]);
    assert_eq!(r.read(&mut buf).unwrap().0, 32);
    // A write index that leaves less than a descriptor and trailer: the bytes there are not
    // read as a descriptor (len8 is reported as 0 whatever they hold).
    mem.write_at(40, &packet(16, 9));
    mem.store_control(ControlWord::WriteIndex, 40 + 16);
    assert_eq!(
        r.read(&mut buf),
        Err(ReadError::Corrupt(CorruptRing::PacketLength {
            offset: 40,
            len8: 0,
            available: 16,
        }))
    );
}

/// Ring memory that reports a chosen data-area length (what a faulty `RingMemory` could do).
#[derive(Debug)]
struct Claims(Mem, u32);

impl RingMemory for Claims {
    fn data_len(&self) -> u32 {
        self.1
    }
    fn load_control(&self, word: ControlWord) -> u32 {
        self.0.load_control(word)
    }
    fn store_control(&self, word: ControlWord, value: u32) {
        self.0.store_control(word, value)
    }
    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u32, buf: &[u8]) {
        self.0.write_at(offset, buf)
    }
}

#[test]
fn data_length_is_checked_when_an_endpoint_attaches() {
    use crate::memory::{MAX_DATA_LEN, MIN_DATA_LEN};
    for len in [MIN_DATA_LEN - 8, 260, MAX_DATA_LEN + 8, 0] {
        let bad = CorruptRing::DataLength { len };
        assert_eq!(RingReader::new(Claims(ring(256), len)).unwrap_err(), bad);
        assert_eq!(RingWriter::new(Claims(ring(256), len)).unwrap_err(), bad);
    }
    let r = RingReader::new(Claims(ring(256), MIN_DATA_LEN)).unwrap();
    assert_eq!(r.data_len(), MIN_DATA_LEN);
    assert_eq!(RingReader::new(ring(256)).unwrap().data_len(), 256);
}

#[test]
fn borrowed_packets_write_the_same_bytes() {
    let bytes = packet(48, 3);
    let (a, b) = (ring(256), ring(256));
    let direct = RingWriter::new(&a).unwrap().write(&RawPacket(&bytes));
    let borrowed: &dyn WritePacket = &RawPacket(&bytes);
    assert_eq!(borrowed.packet_len(), 48);
    assert_eq!(RingWriter::new(&b).unwrap().write(&borrowed), direct);
    assert_eq!(raw(&b, 0, 56), raw(&a, 0, 56));
    assert_eq!(b.load_control(ControlWord::WriteIndex), 56);
}

#[test]
fn descriptor_is_read_once() {
    // The peer rewrites len8 right after the reader framed the packet: the caller still gets
    // the descriptor that was validated, not the new one.
    // Script, one byte per disturbance point: attach (read index load), write index load,
    // descriptor read: quiet; body read: overwrite data word 0 (the descriptor's first 8 bytes)
    // with len8 = 0xffff.
    let mut script = std::vec![0, 0, 0, 7, 0, 0];
    script.extend_from_slice(&[6, 0, 2, 0, 0xff, 0xff, 0, 0]);
    let mem = {
        let chaos = ChaosMemory::new(4096, script).unwrap();
        let mut w = RingWriter::new(chaos.quiet()).unwrap();
        let _ = w.write(&RawPacket(&packet(32, 7))).unwrap();
        chaos
    };
    let mut r = RingReader::new(&mem).unwrap();
    let mut buf = [0u8; 64];
    let (len, _) = r.read(&mut buf).unwrap();
    assert_eq!(len, 32);
    assert_eq!(&buf[4..6], &[4, 0]);
    assert!(PacketRepr::parse_bytes(&buf[..len]).is_ok());
    assert_eq!(raw_quiet(&mem, 4), [0xff, 0xff]);
    assert_eq!(mem.violations(), 0);
}

fn raw_quiet(mem: &ChaosMemory, offset: u32) -> [u8; 2] {
    let mut b = [0u8; 2];
    mem.quiet().read_at(offset, &mut b);
    b
}

proptest! {
    #![proptest_config(crate::test_config())]

    /// A hostile peer rewriting control words and data between every read: the reader and the
    /// writer never panic, never access memory outside the contract, and every packet the
    /// reader returns has the length its (validated) descriptor claims.
    #[test]
    fn hostile_peer_never_breaks_the_endpoints(
        data_pages in 1usize..3,
        script in proptest::collection::vec(any::<u8>(), 0..512),
        ops in proptest::collection::vec((any::<bool>(), 16usize..600), 1..64),
    ) {
        let mem = ChaosMemory::new(data_pages * 4096, script).unwrap();
        let mut buf = std::vec![0u8; 8192];
        let mut writer = RingWriter::new(&mem).ok();
        let mut reader = RingReader::new(&mem).ok();
        for (read, len) in ops {
            if read {
                if let Some(r) = reader.as_mut() {
                    match r.read(&mut buf) {
                        Ok((n, _)) => {
                            prop_assert!(n >= 16 && n % 8 == 0 && n <= 8192);
                            let len8 = u16::from_le_bytes([buf[4], buf[5]]);
                            prop_assert_eq!(usize::from(len8) * 8, n);
                            let _ = PacketRepr::parse_bytes(&buf[..n]);
                        }
                        Err(ReadError::Empty | ReadError::Corrupt(_)
                            | ReadError::BufferTooSmall { .. }) => {}
                    }
                    let _ = r.unmask_interrupts();
                    let _ = r.needs_signal_after_restore();
                }
            } else if let Some(w) = writer.as_mut() {
                let len = len / 8 * 8;
                let _ = w.write(&RawPacket(&packet(len.max(16), 3)));
                let _ = w.request_space(len);
                let _ = w.needs_signal_after_restore();
            }
        }
        prop_assert_eq!(mem.violations(), 0);
    }
}

/// A packet that hands its bytes to the sink in pieces of the given sizes (cycled).
struct Pieces<'a>(&'a [u8], &'a [usize]);

impl WritePacket for Pieces<'_> {
    fn packet_len(&self) -> usize {
        self.0.len()
    }
    fn emit_to(&self, sink: &mut dyn PacketSink) {
        let mut rest = self.0;
        for &n in self.1.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            sink.put(piece);
            rest = tail;
        }
    }
}

#[test]
fn packets_emitted_in_odd_pieces_land_as_whole_ones() {
    let bytes = packet(64, 7);
    let splits: [&[usize]; 6] = [&[1], &[3, 5], &[7, 9], &[0, 13, 2], &[8, 1, 15], &[63, 1]];
    for split in splits {
        // Start 24 bytes before the end of the ring, so that pieces cross it.
        let (whole, pieces) = (ring(256), ring(256));
        for mem in [&whole, &pieces] {
            mem.store_control(ControlWord::WriteIndex, 232);
            mem.store_control(ControlWord::ReadIndex, 232);
        }
        let a = RingWriter::new(&whole).unwrap().write(&RawPacket(&bytes));
        let b = RingWriter::new(&pieces)
            .unwrap()
            .write(&Pieces(&bytes, split));
        assert_eq!(a, b, "{split:?}");
        assert_eq!(raw(&pieces, 0, 256), raw(&whole, 0, 256), "{split:?}");
        assert_eq!(pieces.load_control(ControlWord::WriteIndex), 232 + 72 - 256);
        let mut buf = [0u8; 64];
        let mut r = RingReader::new(&pieces).unwrap();
        assert_eq!(r.read(&mut buf).unwrap().0, 64);
        assert_eq!(&buf[..], &bytes[..]);
    }
}
