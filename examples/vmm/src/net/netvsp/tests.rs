//! The network channel against a guest that sends control messages without taking answers.

use std::sync::Arc;

use vmbus_ring::gpadl::{GpaRanges, GuestRam};
use vmbus_ring::memory::host_ring_pair;
use vmbus_ring::netvsc::{nvsp, NIC_INTERFACE};
use vmbus_ring::packet::PacketRepr;
use vmbus_ring::ring::{RingReader, RingWriter};
use zerocopy::byteorder::little_endian::U32;

use super::{NetChannel, MAX_CONTROL};
use crate::hyperv::rings::RingIndices;
use crate::hyperv::testing::server_with_ring;
use crate::memory::GuestMemory;
use crate::net::Hub;

/// A guest with no receive buffer sends rings full of RNDIS KEEPALIVEs (256 per message):
/// the host keeps at most [`MAX_CONTROL`] answers (it kept every one, 270 MiB per signal).
/// Resetting the channel forgets them and the negotiated version.
#[test]
fn control_answers_nobody_takes_are_bounded() {
    let mem = GuestMemory::new(4 << 20).expect("memory");
    // Ring: 64 pages guest to host, 2 pages host to guest. RNDIS stream: one page at 0x200.
    let pfns: Vec<u64> = (0x10..0x10 + 66).collect();
    let (server, id) = server_with_ring(NIC_INTERFACE, &pfns);
    let downstream = 64;
    let ram = GuestRam::new(0, mem.words()).expect("ram");
    let gpadl = server.gpadl(id).expect("ring gpadl");
    let (to_host, to_guest) =
        host_ring_pair(gpadl.ring_pfns().expect("pfns"), downstream, &ram).expect("rings");
    let mut guest_tx = RingWriter::new(to_host).expect("writer");
    let _guest_rx = RingReader::new(to_guest).expect("reader");
    let mac = [0, 0x15, 0x5d, 1, 2, 3];
    let hub = Arc::new(Hub::new());
    let port = hub.add_port(mac, 1).expect("port");
    let mut chan = NetChannel::new(mac, hub, port);
    let mut indices = RingIndices::default();
    let init = nvsp::padded(&nvsp::Init {
        message_type: U32::new(nvsp::MessageType::INIT.0),
        min_version: U32::new(0x2),
        max_version: U32::new(0x6_0001),
    });
    let _ = guest_tx
        .write(&PacketRepr::in_band(1, false, &init))
        .expect("init");
    let mut stream = Vec::new();
    for i in 0..256u32 {
        for w in [8u32, 16, i, 0] {
            stream.extend_from_slice(&w.to_le_bytes());
        }
    }
    mem.write_at(0x200 * 4096, &stream).expect("stream");
    let mut range = Vec::new();
    range.extend_from_slice(&4096u32.to_le_bytes());
    range.extend_from_slice(&0u32.to_le_bytes());
    for p in 0x200u64..0x201 {
        range.extend_from_slice(&p.to_le_bytes());
    }
    let (ranges, _) = GpaRanges::parse(&range, 1).expect("ranges");
    let msg = nvsp::padded(&nvsp::RndisPacket {
        message_type: U32::new(nvsp::MessageType::SEND_RNDIS_PACKET.0),
        channel_type: U32::new(nvsp::CHANNEL_CONTROL),
        section_index: U32::new(nvsp::NO_SECTION),
        section_size: U32::new(0),
    });
    let mut txid = 100;
    for round in 0..2 {
        while guest_tx
            .write(&PacketRepr::gpa_direct(txid, false, ranges, &msg))
            .is_ok()
        {
            txid += 1;
        }
        chan.service(&server, id, downstream, &mut indices, &mem, round)
            .expect("service");
        assert_eq!(chan.control.len(), MAX_CONTROL);
    }
    assert!(chan.stats.errors > 1000, "{:?}", chan.stats);
    assert!(chan.version().is_some());
    chan.reset();
    assert!(chan.control.is_empty());
    assert_eq!(chan.version(), None);
}
