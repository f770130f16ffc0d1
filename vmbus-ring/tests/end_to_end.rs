//! Both sides of one channel over the same guest RAM, as a guest and a host see it.
//!
//! The guest holds its ring buffer as one contiguous run of pages (as Linux `vmap`s it) and
//! splits it at the downstream offset; it describes the pages to the host in GPADL messages.
//! The host reassembles the GPADL, checks every PFN against guest RAM, and builds its own view of
//! the two rings from scattered pages. Packets then flow both ways: the guest writes requests
//! into the guest-to-host ring, the host reads them and answers in the host-to-guest ring.

use std::sync::atomic::AtomicU64;

use vmbus_ring::defs::{range_page_count, MAX_MESSAGE_PAYLOAD};
use vmbus_ring::gpadl::{
    GpaBuffer, GpaRange, GpaRanges, GpadlMessages, GpadlProgress, GpadlTable, GuestRam,
};
use vmbus_ring::memory::{host_ring_pair, FlatRingMemory, WORDS_PER_PAGE};
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter};

const RAM_BASE: u64 = 0x80;
const RAM_PAGES: usize = 32;
/// The ring buffer: guest pages 4..12 (8 pages, 4 per direction, like hv_utils' 16 KiB rings).
const RING_FIRST: usize = 4;
const RING_PAGES: usize = 8;
const DOWNSTREAM: u32 = 4;
/// Rounds: enough for both rings to wrap several times (Miri, which is slow, does a few; other
/// tests cover wrapping under Miri).
const ROUNDS: u64 = if cfg!(miri) { 20 } else { 400 };
/// The GPA-direct data buffer: from offset 0xf00 of guest page 20, spanning 3 pages (2 under
/// Miri).
const DATA_LEN: usize = if cfg!(miri) { 600 } else { 9000 };

#[test]
fn guest_and_host_exchange_packets_over_one_gpadl() {
    let words: Vec<AtomicU64> = (0..RAM_PAGES * WORDS_PER_PAGE)
        .map(|_| AtomicU64::new(0))
        .collect();
    let ram = GuestRam::new(RAM_BASE, &words[..]).unwrap();

    // Guest: its rings are a contiguous slice of its RAM.
    let ring_words =
        &words[RING_FIRST * WORDS_PER_PAGE..(RING_FIRST + RING_PAGES) * WORDS_PER_PAGE];
    let (g2h, h2g) = FlatRingMemory::split_pair(ring_words, DOWNSTREAM).unwrap();
    let mut guest_tx = RingWriter::new(&g2h).unwrap();
    let mut guest_rx = RingReader::new(&h2g).unwrap();

    // Guest -> host: the ring GPADL, split into messages.
    let pfns: Vec<u64> = (0..RING_PAGES as u64)
        .map(|i| RAM_BASE + RING_FIRST as u64 + i)
        .collect();
    let ranges = [GpaRange::whole_pages(&pfns)];
    let mut split = GpadlMessages::new(11, 0xe1e10, &ranges).unwrap();
    let mut table = GpadlTable::default();
    let mut msg = [0u8; MAX_MESSAGE_PAYLOAD];
    let mut progress = None;
    while let Some(len) = split.next_message(&mut msg) {
        progress = Some(table.handle_message(&msg[..len]).unwrap());
    }
    assert_eq!(
        progress,
        Some(GpadlProgress::Complete {
            gpadl_id: 0xe1e10,
            child_relid: 11
        })
    );

    // Host: the same rings, from scattered pages of guest RAM.
    let gpadl = table.get(0xe1e10).unwrap();
    let (incoming, outgoing) =
        host_ring_pair(gpadl.ring_pfns().unwrap(), DOWNSTREAM, &ram).unwrap();
    let mut host_rx = RingReader::new(&incoming).unwrap();
    let mut host_tx = RingWriter::new(&outgoing).unwrap();

    // A data buffer elsewhere in guest RAM, described GPA-direct.
    assert!(ram.write_gpa((RAM_BASE + 20) * 4096 + 0xf00, &[0x11; DATA_LEN]));
    let pages = range_page_count(0xf00, DATA_LEN as u32) as usize;
    let data_pfns: Vec<u64> = (0..pages as u64).map(|i| RAM_BASE + 20 + i).collect();
    let mut range_bytes = [0u8; 64];

    let mut buf = [0u8; 4096];
    for round in 0..ROUNDS {
        // Guest: an in-band request and a GPA-direct request in one batch.
        let enc = GpaRanges::encode(
            &[GpaRange::new(0xf00, DATA_LEN as u32, &data_pfns)],
            &mut range_bytes,
        )
        .unwrap();
        let mut batch = guest_tx.batch();
        batch
            .write(&PacketRepr::in_band(2 * round, true, &round.to_le_bytes()))
            .unwrap();
        batch
            .write(&PacketRepr::gpa_direct(2 * round + 1, true, enc, b"read"))
            .unwrap();
        let sent = batch.commit();
        assert!(sent.must_signal, "the host drained everything last round");

        // Host: read both, copy the GPA-direct data out of guest RAM, complete both.
        let mut completions = 0;
        loop {
            match host_rx.read(&mut buf) {
                Ok((len, _)) => {
                    let p = PacketRepr::parse_bytes(&buf[..len]).unwrap();
                    if let PacketKind::GpaDirect { ranges } = p.kind {
                        let data = GpaBuffer::new(ranges, &ram).unwrap();
                        let mut copy = vec![0u8; data.len() as usize];
                        data.read_at(0, &mut copy).unwrap();
                        assert!(copy.iter().all(|&b| b == 0x11));
                    } else {
                        assert_eq!(&p.payload[..8], &round.to_le_bytes());
                    }
                    let done = host_tx
                        .write(&PacketRepr::completion(p.transaction_id, &[0; 4]))
                        .unwrap();
                    assert_eq!(done.must_signal, completions == 0);
                    completions += 1;
                }
                Err(ReadError::Empty) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(completions, 2);

        // Guest: both completions, in order.
        for id in [2 * round, 2 * round + 1] {
            let (len, _) = guest_rx.read(&mut buf).unwrap();
            let p = PacketRepr::parse_bytes(&buf[..len]).unwrap();
            assert_eq!((p.kind, p.transaction_id), (PacketKind::Completion, id));
        }
        assert_eq!(guest_rx.read(&mut buf), Err(ReadError::Empty));
    }
}
