//! Test support: the NVSP and RNDIS messages a guest's netvsc driver sends.

use vmbus_ring::memory::RingMemory;
use vmbus_ring::netvsc::nvsp;
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader};
use zerocopy::byteorder::little_endian::{U16, U32};

use crate::memory::GuestMemory;

/// The transfer-page set id the guest gives its receive buffer.
pub const RECV_SET_ID: u16 = 0xcafe;

/// NVSP INIT for versions 2 to 6.1.
pub fn init() -> [u8; nvsp::MESSAGE_LEN] {
    nvsp::padded(&nvsp::Init {
        message_type: U32::new(nvsp::MessageType::INIT.0),
        min_version: U32::new(0x2),
        max_version: U32::new(0x6_0001),
    })
}

/// SEND_RECV_BUFFER of GPADL `gpadl`.
pub fn recv_buffer(gpadl: u32) -> [u8; nvsp::MESSAGE_LEN] {
    nvsp::padded(&nvsp::SendBuffer {
        message_type: U32::new(nvsp::MessageType::SEND_RECV_BUFFER.0),
        gpadl: U32::new(gpadl),
        id: U16::new(RECV_SET_ID),
        reserved: U16::new(0),
    })
}

/// REVOKE_RECV_BUFFER.
pub fn revoke_recv_buffer() -> [u8; nvsp::MESSAGE_LEN] {
    let mut m = [0u8; nvsp::MESSAGE_LEN];
    m[..4].copy_from_slice(&nvsp::MessageType::REVOKE_RECV_BUFFER.0.to_le_bytes());
    m[4..6].copy_from_slice(&RECV_SET_ID.to_le_bytes());
    m
}

/// SEND_RNDIS_PACKET on the control channel, the RNDIS bytes in the packet's GPA ranges.
pub fn rndis_control() -> [u8; nvsp::MESSAGE_LEN] {
    nvsp::padded(&nvsp::RndisPacket {
        message_type: U32::new(nvsp::MessageType::SEND_RNDIS_PACKET.0),
        channel_type: U32::new(nvsp::CHANNEL_CONTROL),
        section_index: U32::new(nvsp::NO_SECTION),
        section_size: U32::new(0),
    })
}

/// Writes `count` RNDIS KEEPALIVEs (16 bytes each) at the start of page `pfn`; returns the
/// GPA range descriptor of those bytes (for `GpaRanges::parse(&range, 1)`).
pub fn keepalives(mem: &GuestMemory, pfn: u64, count: u32) -> Vec<u8> {
    let mut stream = Vec::new();
    for i in 0..count {
        for w in [8u32, 16, i, 0] {
            stream.extend_from_slice(&w.to_le_bytes());
        }
    }
    mem.write_at(pfn * 4096, &stream).expect("stream");
    let mut range = Vec::new();
    range.extend_from_slice(&(count * 16).to_le_bytes());
    range.extend_from_slice(&0u32.to_le_bytes());
    range.extend_from_slice(&pfn.to_le_bytes());
    range
}

/// Every packet the host wrote into the guest's ring, as (transfer pages?, transaction id,
/// payload), until the ring is empty.
pub fn drain_host_packets<M: RingMemory>(to_guest: M) -> Vec<(bool, u64, Vec<u8>)> {
    let mut rx = RingReader::new(to_guest).expect("reader");
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    loop {
        match rx.read(&mut buf) {
            Ok((len, _)) => {
                let p = PacketRepr::parse_bytes(&buf[..len]).expect("host packet");
                let transfer = matches!(p.kind, PacketKind::TransferPages { .. });
                got.push((transfer, p.transaction_id, p.payload.to_vec()));
            }
            Err(ReadError::Empty) => break,
            Err(e) => panic!("host ring: {e}"),
        }
    }
    got
}
