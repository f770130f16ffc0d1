//! RNDIS messages: an 8-byte header (type, total length) and a body whose offset fields count
//! from the byte after the header.

use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::macros::open_enum;

open_enum! {
    /// The RNDIS message type.
    pub struct MessageType(u32) {
        /// A data frame.
        PACKET = 0x0000_0001,
        /// Guest → host: initialize.
        INITIALIZE = 0x0000_0002,
        /// Host → guest: initialized.
        INITIALIZE_COMPLETE = 0x8000_0002,
        /// Guest → host: stop (no answer).
        HALT = 0x0000_0003,
        /// Guest → host: read an OID.
        QUERY = 0x0000_0004,
        /// Host → guest: the OID's value.
        QUERY_COMPLETE = 0x8000_0004,
        /// Guest → host: write an OID.
        SET = 0x0000_0005,
        /// Host → guest: written.
        SET_COMPLETE = 0x8000_0005,
        /// Guest → host: reset.
        RESET = 0x0000_0006,
        /// Host → guest: reset done.
        RESET_COMPLETE = 0x8000_0006,
        /// Host → guest: a status change (link up/down).
        INDICATE_STATUS = 0x0000_0007,
        /// Guest → host: are you there?
        KEEPALIVE = 0x0000_0008,
        /// Host → guest: yes.
        KEEPALIVE_COMPLETE = 0x8000_0008,
    }
}

open_enum! {
    /// An RNDIS status (success is 0).
    pub struct Status(u32) {
        /// Success.
        SUCCESS = 0,
        /// Failure.
        FAILURE = 0xC000_0001,
        /// The OID or request is not supported.
        NOT_SUPPORTED = 0xC000_00BB,
        /// The data is invalid.
        INVALID_DATA = 0xC001_0015,
        /// The buffer is too short.
        BUFFER_TOO_SHORT = 0xC001_0016,
        /// The link is up (indication).
        MEDIA_CONNECT = 0x4001_000B,
        /// The link is down (indication).
        MEDIA_DISCONNECT = 0x4001_000C,
    }
}

open_enum! {
    /// The OIDs a Linux guest reads and writes while it brings the adapter up.
    pub struct Oid(u32) {
        /// Largest frame payload (u32).
        GEN_MAXIMUM_FRAME_SIZE = 0x0001_0106,
        /// Link speed in 100 bit/s units (u32).
        GEN_LINK_SPEED = 0x0001_0107,
        /// Which frames to receive (u32; 0 = none).
        GEN_CURRENT_PACKET_FILTER = 0x0001_010E,
        /// 0 = connected (u32).
        GEN_MEDIA_CONNECT_STATUS = 0x0001_0114,
        /// RSS capabilities.
        GEN_RECEIVE_SCALE_CAPABILITIES = 0x0001_0203,
        /// A UTF-16 name.
        GEN_FRIENDLY_NAME = 0x0002_0216,
        /// The MAC address (6 bytes).
        PERMANENT_ADDRESS_802_3 = 0x0101_0101,
        /// The current MAC address (6 bytes).
        CURRENT_ADDRESS_802_3 = 0x0101_0102,
        /// Offload parameters (an NDIS object).
        TCP_OFFLOAD_PARAMETERS = 0xFC01_020C,
        /// Offload capabilities (an NDIS_OFFLOAD object).
        TCP_OFFLOAD_HARDWARE_CAPABILITIES = 0xFC01_020D,
    }
}

/// The common header.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Header {
    /// [`MessageType`].
    pub message_type: U32,
    /// The whole message, header included.
    pub message_len: U32,
}

/// PACKET's body after the header (36 bytes; a frame follows at `8 + data_offset`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct PacketBody {
    /// Frame offset from the end of the header.
    pub data_offset: U32,
    /// Frame length.
    pub data_len: U32,
    /// Out-of-band data offset.
    pub oob_data_offset: U32,
    /// Out-of-band data length.
    pub oob_data_len: U32,
    /// Out-of-band elements.
    pub num_oob_elements: U32,
    /// Per-packet info offset (0 = none).
    pub per_packet_info_offset: U32,
    /// Per-packet info length.
    pub per_packet_info_len: U32,
    /// Virtual-circuit handle (0).
    pub vc_handle: U32,
    /// Reserved.
    pub reserved: U32,
}

/// Bytes before a frame in a PACKET without per-packet info.
pub const PACKET_HEADER_LEN: usize = 8 + 36;

const _: () = {
    assert!(core::mem::size_of::<Header>() == 8);
    assert!(core::mem::size_of::<PacketBody>() == 36);
};

/// Why an RNDIS message was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RndisError {
    /// Shorter than its header or fixed fields.
    #[error("RNDIS message of {len} bytes is truncated")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// `message_len` is below 8 or beyond the bytes available.
    #[error("RNDIS message length {message_len} does not fit the {len} bytes available")]
    BadLength {
        /// The declared length.
        message_len: u32,
        /// Bytes available.
        len: usize,
    },
    /// An offset/length pair points outside the message.
    #[error("RNDIS {what} lies outside the message")]
    OutOfBounds {
        /// Which field.
        what: &'static str,
    },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// One RNDIS message from the front of `stream`: its type and its bytes (`message_len` long).
///
/// # Errors
/// [`RndisError::Truncated`], [`RndisError::BadLength`].
pub fn split(stream: &[u8]) -> Result<(MessageType, &[u8]), RndisError> {
    let (Some(t), Some(len)) = (u32_at(stream, 0), u32_at(stream, 4)) else {
        return Err(RndisError::Truncated { len: stream.len() });
    };
    match stream.get(..len as usize) {
        Some(msg) if len >= 8 => Ok((MessageType(t), msg)),
        _ => Err(RndisError::BadLength {
            message_len: len,
            len: stream.len(),
        }),
    }
}

/// The frame inside a PACKET message.
///
/// # Errors
/// [`RndisError::Truncated`], [`RndisError::OutOfBounds`].
pub fn packet_frame(msg: &[u8]) -> Result<&[u8], RndisError> {
    let (Some(off), Some(len)) = (u32_at(msg, 8), u32_at(msg, 12)) else {
        return Err(RndisError::Truncated { len: msg.len() });
    };
    let start = 8usize.saturating_add(off as usize);
    start
        .checked_add(len as usize)
        .and_then(|end| msg.get(start..end))
        .ok_or(RndisError::OutOfBounds {
            what: "packet data",
        })
}

/// A PACKET message carrying `frame` (no per-packet info).
pub fn packet(frame: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(PACKET_HEADER_LEN + frame.len());
    let total = (PACKET_HEADER_LEN + frame.len()) as u32;
    push(
        &mut m,
        &[MessageType::PACKET.0, total, 36, frame.len() as u32],
    );
    push(&mut m, &[0; 7]);
    m.extend_from_slice(frame);
    m
}

fn push(m: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        m.extend_from_slice(&w.to_le_bytes());
    }
}

/// The request id of a request message (INITIALIZE, QUERY, SET, RESET, KEEPALIVE).
pub fn request_id(msg: &[u8]) -> Option<u32> {
    u32_at(msg, 8)
}

/// A QUERY or SET request's OID and its input/value bytes.
///
/// # Errors
/// [`RndisError::Truncated`], [`RndisError::OutOfBounds`].
pub fn oid_request(msg: &[u8]) -> Result<(u32, Oid, &[u8]), RndisError> {
    let (Some(id), Some(oid), Some(len), Some(off)) = (
        u32_at(msg, 8),
        u32_at(msg, 12),
        u32_at(msg, 16),
        u32_at(msg, 20),
    ) else {
        return Err(RndisError::Truncated { len: msg.len() });
    };
    let value = if len == 0 {
        &[][..]
    } else {
        let start = 8usize.saturating_add(off as usize);
        start
            .checked_add(len as usize)
            .and_then(|end| msg.get(start..end))
            .ok_or(RndisError::OutOfBounds { what: "OID buffer" })?
    };
    Ok((id, Oid(oid), value))
}

/// INITIALIZE_COMPLETE for request `id`: RNDIS 1.0, connectionless 802.3, up to
/// `max_packets` PACKETs per message aligned to 8 bytes.
pub fn initialize_complete(id: u32, status: Status, max_packets: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(52);
    push(
        &mut m,
        &[
            MessageType::INITIALIZE_COMPLETE.0,
            52,
            id,
            status.0,
            1,
            0,
            1,
            0,
        ],
    );
    push(&mut m, &[max_packets, 0xEFFF_FFFF, 3, 0, 0]);
    m
}

/// QUERY_COMPLETE for request `id` with `data` (the buffer offset is 16 even when empty).
pub fn query_complete(id: u32, status: Status, data: &[u8]) -> Vec<u8> {
    let total = (24 + data.len()) as u32;
    let mut m = Vec::with_capacity(total as usize);
    push(
        &mut m,
        &[
            MessageType::QUERY_COMPLETE.0,
            total,
            id,
            status.0,
            data.len() as u32,
            16,
        ],
    );
    m.extend_from_slice(data);
    m
}

/// SET_COMPLETE for request `id`.
pub fn set_complete(id: u32, status: Status) -> Vec<u8> {
    let mut m = Vec::with_capacity(16);
    push(&mut m, &[MessageType::SET_COMPLETE.0, 16, id, status.0]);
    m
}

/// KEEPALIVE_COMPLETE for request `id`.
pub fn keepalive_complete(id: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(16);
    push(&mut m, &[MessageType::KEEPALIVE_COMPLETE.0, 16, id, 0]);
    m
}

/// INDICATE_STATUS with `status` (e.g. [`Status::MEDIA_CONNECT`]) and no buffer.
pub fn indicate_status(status: Status) -> Vec<u8> {
    let mut m = Vec::with_capacity(20);
    push(
        &mut m,
        &[MessageType::INDICATE_STATUS.0, 20, status.0, 0, 0],
    );
    m
}

/// A guest's INITIALIZE request.
pub fn initialize(id: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(24);
    push(&mut m, &[MessageType::INITIALIZE.0, 24, id, 1, 0, 0x4000]);
    m
}

/// A guest's QUERY (or SET, with `set`) of `oid` with `value` at offset 20.
pub fn oid_message(set: bool, id: u32, oid: Oid, value: &[u8]) -> Vec<u8> {
    let t = if set {
        MessageType::SET
    } else {
        MessageType::QUERY
    };
    let total = (28 + value.len()) as u32;
    let mut m = Vec::with_capacity(total as usize);
    push(&mut m, &[t.0, total, id, oid.0, value.len() as u32, 20, 0]);
    m.extend_from_slice(value);
    m
}

/// An NDIS_OFFLOAD object (revision 1, 112 bytes) announcing no offloads: the answer to
/// [`Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES`] a guest requires to bring the adapter up.
pub fn no_offloads() -> [u8; 112] {
    let mut o = [0u8; 112];
    o[0] = 0xA7; // NDIS_OBJECT_TYPE_OFFLOAD
    o[1] = 1; // revision
    o[2..4].copy_from_slice(&112u16.to_le_bytes());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_bounds_are_checked() {
        let frame = [0xAAu8; 60];
        let p = packet(&frame);
        assert_eq!(p.len(), 104);
        let (t, msg) = split(&p).unwrap();
        assert_eq!((t, msg.len()), (MessageType::PACKET, 104));
        assert_eq!(packet_frame(msg).unwrap(), &frame);
        let q = oid_message(false, 7, Oid::PERMANENT_ADDRESS_802_3, &[]);
        let (id, oid, value) = oid_request(&q).unwrap();
        assert_eq!((id, oid, value.len()), (7, Oid::PERMANENT_ADDRESS_802_3, 0));
        let s = oid_message(
            true,
            8,
            Oid::GEN_CURRENT_PACKET_FILTER,
            &13u32.to_le_bytes(),
        );
        assert_eq!(oid_request(&s).unwrap().2, &13u32.to_le_bytes());
        let c = query_complete(7, Status::SUCCESS, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            (&c[16..24], &c[24..]),
            (&[6, 0, 0, 0, 16, 0, 0, 0][..], &[1, 2, 3, 4, 5, 6][..])
        );
        assert_eq!(initialize_complete(1, Status::SUCCESS, 8).len(), 52);
        // Hostile lengths and offsets.
        assert!(split(&[1, 0, 0, 0, 200, 0, 0, 0]).is_err());
        assert!(split(&[1, 0, 0, 0, 4, 0, 0, 0]).is_err());
        let mut bad = p.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(packet_frame(&bad).is_err());
        let mut bad = q.clone();
        bad[16..20].copy_from_slice(&8u32.to_le_bytes());
        bad[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(oid_request(&bad).is_err());
    }

    /// The host's answers, word by word (the host tests compare against these functions, so
    /// their bytes are pinned here).
    #[test]
    fn golden_completions() {
        let words = |w: &[u32]| w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut query = words(&[0x8000_0004, 28, 7, 0, 4, 16]);
        query.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(query_complete(7, Status::SUCCESS, &[1, 2, 3, 4]), query);
        assert_eq!(
            query_complete(8, Status::NOT_SUPPORTED, &[]),
            words(&[0x8000_0004, 24, 8, 0xC000_00BB, 0, 16])
        );
        assert_eq!(
            set_complete(9, Status::INVALID_DATA),
            words(&[0x8000_0005, 16, 9, Status::INVALID_DATA.0])
        );
        assert_eq!(keepalive_complete(10), words(&[0x8000_0008, 16, 10, 0]));
        assert_eq!(
            indicate_status(Status::MEDIA_CONNECT),
            words(&[7, 20, 0x4001_000B, 0, 0])
        );
        // RNDIS 1.0, connectionless 802.3, 8 packets per message, 8-byte alignment (2^3).
        assert_eq!(
            initialize_complete(1, Status::SUCCESS, 8),
            words(&[0x8000_0002, 52, 1, 0, 1, 0, 1, 0, 8, 0xEFFF_FFFF, 3, 0, 0])
        );
        assert_eq!(request_id(&keepalive_complete(10)), Some(10));
        assert_eq!(request_id(&[0; 11]), None);
    }
}
