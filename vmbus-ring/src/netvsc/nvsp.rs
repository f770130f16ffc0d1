//! NVSP messages: a `u32` message type and a packed body. Linux sends every message as 40
//! bytes (the largest body); readers accept anything from the type's minimum up.

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::macros::open_enum;

/// Bytes Linux sends for every NVSP message.
pub const MESSAGE_LEN: usize = 40;

open_enum! {
    /// The NVSP message type.
    pub struct MessageType(u32) {
        /// Guest → host: propose a version range.
        INIT = 1,
        /// Host → guest: the answer to INIT.
        INIT_COMPLETE = 2,
        /// Guest → host: the NDIS version (no completion).
        SEND_NDIS_VERSION = 100,
        /// Guest → host: register the receive buffer.
        SEND_RECV_BUFFER = 101,
        /// Host → guest: receive buffer registered.
        SEND_RECV_BUFFER_COMPLETE = 102,
        /// Guest → host: revoke the receive buffer.
        REVOKE_RECV_BUFFER = 103,
        /// Guest → host: register the send buffer.
        SEND_SEND_BUFFER = 104,
        /// Host → guest: send buffer registered.
        SEND_SEND_BUFFER_COMPLETE = 105,
        /// Guest → host: revoke the send buffer.
        REVOKE_SEND_BUFFER = 106,
        /// Either way: an RNDIS message follows (GPA ranges, send buffer or receive buffer).
        SEND_RNDIS_PACKET = 107,
        /// The completion of SEND_RNDIS_PACKET.
        SEND_RNDIS_PACKET_COMPLETE = 108,
        /// Guest → host: MTU and capabilities (no completion).
        SEND_NDIS_CONFIG = 125,
    }
}

open_enum! {
    /// An NVSP status (success is 1).
    pub struct Status(u32) {
        /// No status.
        NONE = 0,
        /// Success.
        SUCCESS = 1,
        /// Failure.
        FAILURE = 2,
        /// The version is too new.
        PROTOCOL_TOO_NEW = 3,
        /// The version is too old.
        PROTOCOL_TOO_OLD = 4,
        /// The RNDIS packet is invalid.
        INVALID_RNDIS_PACKET = 5,
        /// Busy.
        BUSY = 6,
    }
}

open_enum! {
    /// An NVSP protocol version (major << 16 | minor).
    pub struct Version(u32) {
        /// Version 1.
        V1 = 0x0000_0002,
        /// Version 2.
        V2 = 0x0003_0002,
        /// Version 4.
        V4 = 0x0004_0000,
        /// Version 5.
        V5 = 0x0005_0000,
        /// Version 6.
        V6 = 0x0006_0000,
        /// Version 6.1.
        V61 = 0x0006_0001,
    }
}

/// Linux's proposal order.
pub const LINUX_VERSIONS: [Version; 6] = [
    Version::V61,
    Version::V6,
    Version::V5,
    Version::V4,
    Version::V2,
    Version::V1,
];

/// `SEND_RNDIS_PACKET`'s channel type: a data frame.
pub const CHANNEL_DATA: u32 = 0;
/// `SEND_RNDIS_PACKET`'s channel type: an RNDIS control message.
pub const CHANNEL_CONTROL: u32 = 1;
/// `send_buffer_section_index` when the send buffer is not used.
pub const NO_SECTION: u32 = 0xFFFF_FFFF;

/// INIT (@4 min, @8 max).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Init {
    /// [`MessageType::INIT`].
    pub message_type: U32,
    /// Oldest acceptable version.
    pub min_version: U32,
    /// Newest acceptable version.
    pub max_version: U32,
}

/// INIT_COMPLETE.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct InitComplete {
    /// [`MessageType::INIT_COMPLETE`].
    pub message_type: U32,
    /// The version chosen.
    pub negotiated_version: U32,
    /// Longest MDL chain.
    pub max_mdl_chain_len: U32,
    /// [`Status`].
    pub status: U32,
}

/// SEND_RECV_BUFFER / SEND_SEND_BUFFER: a GPADL and an id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SendBuffer {
    /// [`MessageType::SEND_RECV_BUFFER`] or [`MessageType::SEND_SEND_BUFFER`].
    pub message_type: U32,
    /// The buffer's GPADL.
    pub gpadl: U32,
    /// The id (the receive buffer's is the transfer-page set id).
    pub id: U16,
    /// Reserved.
    pub reserved: U16,
}

/// SEND_RECV_BUFFER_COMPLETE with its one section (28 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct RecvBufferComplete {
    /// [`MessageType::SEND_RECV_BUFFER_COMPLETE`].
    pub message_type: U32,
    /// [`Status`].
    pub status: U32,
    /// Sections (1).
    pub num_sections: U32,
    /// Section offset (0).
    pub offset: U32,
    /// Bytes per sub-allocation.
    pub sub_alloc_size: U32,
    /// Sub-allocations.
    pub num_sub_allocs: U32,
    /// End of the section.
    pub end_offset: U32,
}

/// SEND_SEND_BUFFER_COMPLETE.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SendBufferComplete {
    /// [`MessageType::SEND_SEND_BUFFER_COMPLETE`].
    pub message_type: U32,
    /// [`Status`].
    pub status: U32,
    /// Bytes per send-buffer section.
    pub section_size: U32,
}

/// SEND_RNDIS_PACKET (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct RndisPacket {
    /// [`MessageType::SEND_RNDIS_PACKET`].
    pub message_type: U32,
    /// [`CHANNEL_DATA`] or [`CHANNEL_CONTROL`].
    pub channel_type: U32,
    /// Send-buffer section holding (the start of) the message, or [`NO_SECTION`].
    pub section_index: U32,
    /// Bytes used in that section.
    pub section_size: U32,
}

/// SEND_RNDIS_PACKET_COMPLETE (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct RndisPacketComplete {
    /// [`MessageType::SEND_RNDIS_PACKET_COMPLETE`].
    pub message_type: U32,
    /// [`Status`].
    pub status: U32,
}

const _: () = {
    assert!(core::mem::size_of::<Init>() == 12);
    assert!(core::mem::size_of::<InitComplete>() == 16);
    assert!(core::mem::size_of::<SendBuffer>() == 12);
    assert!(core::mem::size_of::<RecvBufferComplete>() == 28);
    assert!(core::mem::size_of::<SendBufferComplete>() == 12);
    assert!(core::mem::size_of::<RndisPacket>() == 16);
    assert!(core::mem::size_of::<RndisPacketComplete>() == 8);
};

/// The message type of an NVSP payload (`None` below 4 bytes).
pub fn message_type(payload: &[u8]) -> Option<MessageType> {
    let b = payload.get(..4)?;
    Some(MessageType(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
}

/// Reads a `T` from the front of `payload` (missing bytes of a short message read as zero, as
/// long as the fields up to `min` are there).
pub fn read<T: FromBytes + IntoBytes + FromZeros>(payload: &[u8], min: usize) -> Option<T> {
    if payload.len() < min {
        return None;
    }
    let mut t = T::new_zeroed();
    let dst = t.as_mut_bytes();
    let n = dst.len().min(payload.len());
    dst[..n].copy_from_slice(&payload[..n]);
    Some(t)
}

/// `msg` padded with zeros to [`MESSAGE_LEN`] bytes, the size Linux sends and expects.
pub fn padded<T: IntoBytes + Immutable>(msg: &T) -> [u8; MESSAGE_LEN] {
    let mut out = [0u8; MESSAGE_LEN];
    let b = msg.as_bytes();
    out[..b.len()].copy_from_slice(b);
    out
}

/// A SEND_RNDIS_PACKET_COMPLETE with `status`, padded.
pub fn rndis_complete(status: Status) -> [u8; MESSAGE_LEN] {
    padded(&RndisPacketComplete {
        message_type: U32::new(MessageType::SEND_RNDIS_PACKET_COMPLETE.0),
        status: U32::new(status.0),
    })
}

/// A SEND_RNDIS_PACKET (what the host puts in a transfer-page packet), padded.
pub fn rndis_packet(channel_type: u32) -> [u8; MESSAGE_LEN] {
    padded(&RndisPacket {
        message_type: U32::new(MessageType::SEND_RNDIS_PACKET.0),
        channel_type: U32::new(channel_type),
        section_index: U32::new(NO_SECTION),
        section_size: U32::new(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_read_as_zero_padded_from_their_minimum() {
        let full = rndis_packet(CHANNEL_DATA);
        let mut want = [0u8; MESSAGE_LEN];
        for (i, w) in [107u32, CHANNEL_DATA, NO_SECTION, 0]
            .into_iter()
            .enumerate()
        {
            want[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(full, want);
        let p = read::<RndisPacket>(&full[..12], 12).unwrap();
        assert_eq!(p.section_index.get(), NO_SECTION);
        assert_eq!(p.section_size.get(), 0);
        let cut = read::<RndisPacket>(&full[..8], 8).unwrap();
        assert_eq!(cut.section_index.get(), 0, "missing bytes read as zero");
        assert!(read::<RndisPacket>(&full[..11], 12).is_none());
    }
}
