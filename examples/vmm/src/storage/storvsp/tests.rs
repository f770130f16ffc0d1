//! The storage channel against a guest that is slow to take completions.

use vmbus_ring::gpadl::{GpaRanges, GuestRam};
use vmbus_ring::memory::host_ring_pair;
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter};
use vmbus_ring::storvsc::{
    NtStatus, Operation, ProtocolVersion, ScsiRequest, VstorPacket, DATA_IN, DATA_OUT,
    REQUEST_COMPLETION_FLAG, SCSI_INTERFACE,
};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromZeros, IntoBytes};

use super::StorageChannel;
use crate::hyperv::rings::RingIndices;
use crate::hyperv::testing::server_with_ring;
use crate::memory::GuestMemory;
use crate::storage::scsi::ScsiDisk;

/// WRITE(10) of one block at `lba`, with the SRB's data direction `data_in`.
fn write10(lba: u32, data_in: u8) -> VstorPacket {
    let mut srb = ScsiRequest::new_zeroed();
    srb.length = U16::new(52);
    srb.cdb_length = 10;
    srb.data_in = data_in;
    srb.data_transfer_length = U32::new(512);
    let [_, _, hi, lo] = lba.to_be_bytes();
    srb.cdb_or_sense[..10].copy_from_slice(&[0x2A, 0, 0, 0, hi, lo, 0, 0, 1, 0]);
    let mut p = vstor(Operation::EXECUTE_SRB);
    p.set_srb(&srb);
    p
}

fn vstor(op: Operation) -> VstorPacket {
    let mut p = VstorPacket::new(op, NtStatus::SUCCESS);
    p.flags = U32::new(REQUEST_COMPLETION_FLAG);
    p
}

/// The guest queues 90 one-block writes, 30 per signal, into a host-to-guest ring of one
/// data page, and takes completions only afterwards. Every write is done and completed
/// exactly once: completions that did not fit wait for the guest to make room (before, the
/// drain failed on the full ring and lost the completions of writes it had done). Then a
/// write whose data direction contradicts its CDB is refused.
#[test]
fn completions_that_do_not_fit_wait_for_room() {
    let dir = std::env::temp_dir().join(format!("vmm-storvsp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("disk.vhd");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("disk file");
    let vhd = vhd_format::create_dynamic(f, &vhd_format::CreateOptions::new(8 << 20)).expect("vhd");
    let mut chan = StorageChannel::new(ScsiDisk::new(vhd, "test"));
    let mem = GuestMemory::new(1 << 20).expect("memory");
    // Pages 0x10..0x20: guest to host (16 pages); 0x20..0x22: host to guest (control page
    // and one data page).
    let ring: Vec<u64> = (0x10..0x22).collect();
    let (server, id) = server_with_ring(SCSI_INTERFACE, &ring);
    let gpadl = server.gpadl(id).expect("ring gpadl");
    let downstream = 16;
    let ram = GuestRam::new(0, mem.words()).expect("ram");
    let (to_host, to_guest) =
        host_ring_pair(gpadl.ring_pfns().expect("pfns"), downstream, &ram).expect("rings");
    let mut guest_tx = RingWriter::new(to_host).expect("writer");
    let mut guest_rx = RingReader::new(to_guest).expect("reader");
    let mut indices = RingIndices::default();
    let mut buf = [0u8; 512];
    let mut txid = 1u64;
    for op in [
        Operation::BEGIN_INITIALIZATION,
        Operation::QUERY_PROTOCOL_VERSION,
        Operation::QUERY_PROPERTIES,
        Operation::END_INITIALIZATION,
    ] {
        let mut p = vstor(op);
        if op == Operation::QUERY_PROTOCOL_VERSION {
            p.set_version(ProtocolVersion::WIN10);
        }
        let _ = guest_tx
            .write(&PacketRepr::in_band(txid, true, p.as_bytes()))
            .expect("request");
        txid += 1;
        chan.drain(gpadl, downstream, &mut indices, &mem, 0)
            .expect("drain");
        let _ = guest_rx.read(&mut buf).expect("completion");
    }
    assert!(chan.version().is_some());
    mem.fill(0x80 * 4096, 512, 0xAB).expect("data");
    let mut range = Vec::new();
    range.extend_from_slice(&512u32.to_le_bytes());
    range.extend_from_slice(&0u32.to_le_bytes());
    range.extend_from_slice(&0x80u64.to_le_bytes());
    let (ranges, _) = GpaRanges::parse(&range, 1).expect("range");
    let first = txid;
    for round in 0..3u32 {
        for i in 0..30u32 {
            let p = write10(round * 100 + i, DATA_OUT);
            let _ = guest_tx
                .write(&PacketRepr::gpa_direct(txid, true, ranges, p.as_bytes()))
                .expect("request");
            txid += 1;
        }
        chan.drain(gpadl, downstream, &mut indices, &mem, 0)
            .expect("a full ring is no error");
    }
    // The guest takes completions, the host goes on at each signal, until all are in.
    let mut seen = Vec::new();
    for _ in 0..100 {
        loop {
            match guest_rx.read(&mut buf) {
                Ok((len, _)) => {
                    let p = PacketRepr::parse_bytes(&buf[..len]).expect("packet");
                    assert_eq!(p.kind, PacketKind::Completion);
                    seen.push(p.transaction_id);
                }
                Err(ReadError::Empty) => break,
                Err(e) => panic!("{e}"),
            }
        }
        if seen.len() == 90 {
            break;
        }
        chan.drain(gpadl, downstream, &mut indices, &mem, 0)
            .expect("drain");
    }
    assert_eq!(seen, (first..first + 90).collect::<Vec<_>>());
    assert_eq!(chan.disk.stats.writes, 90);
    // A WRITE whose SRB says the data goes to the guest: refused, nothing written (it wrote
    // the host's zero-filled buffer to the disk and reported success).
    let p = write10(7, DATA_IN);
    let _ = guest_tx
        .write(&PacketRepr::gpa_direct(txid, true, ranges, p.as_bytes()))
        .expect("request");
    chan.drain(gpadl, downstream, &mut indices, &mem, 0)
        .expect("drain");
    let (len, _) = guest_rx.read(&mut buf).expect("completion");
    let reply = PacketRepr::parse_bytes(&buf[..len]).expect("packet");
    let status = u32::from_le_bytes(reply.payload[8..12].try_into().expect("status"));
    assert_ne!(NtStatus::from(status), NtStatus::SUCCESS);
    assert_eq!(chan.disk.stats.writes, 90);
    let _ = std::fs::remove_dir_all(&dir);
}
