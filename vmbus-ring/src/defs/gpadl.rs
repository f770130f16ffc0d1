//! GPA ranges and the GPADL channel messages (GPADL_HEADER, GPADL_BODY).

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::macros::open_enum;

/// Largest payload of a SynIC message, and so of one VMBus channel message (header included).
pub const MAX_MESSAGE_PAYLOAD: usize = 240;

/// `u64` values (range headers and PFNs) that fit after the fixed part of a GPADL_HEADER:
/// `(240 - 20) / 8`.
pub const GPADL_HEADER_MAX_VALUES: usize =
    (MAX_MESSAGE_PAYLOAD - core::mem::size_of::<GpadlHeaderFixed>()) / 8;

/// PFNs a GPADL_HEADER carries when it describes one range (as Linux always does): 26.
pub const GPADL_HEADER_MAX_PFNS: usize = GPADL_HEADER_MAX_VALUES - 1;

/// PFNs (or other range-buffer values) one GPADL_BODY carries: `(240 - 16) / 8` = 28.
pub const GPADL_BODY_MAX_PFNS: usize =
    (MAX_MESSAGE_PAYLOAD - core::mem::size_of::<GpadlBodyFixed>()) / 8;

const _: () = {
    assert!(GPADL_HEADER_MAX_VALUES == 27);
    assert!(GPADL_HEADER_MAX_PFNS == 26);
    assert!(GPADL_BODY_MAX_PFNS == 28);
};

/// The header of a GPA range (Linux `struct gpa_range`); `page_count` PFNs (`u64`) follow,
/// where `page_count = ceil((byte_offset % 4096 + byte_count) / 4096)`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct GpaRangeHeader {
    /// Length of the range in bytes.
    pub byte_count: U32,
    /// Offset of the range's first byte into its first page.
    pub byte_offset: U32,
}

const _: () = assert!(core::mem::size_of::<GpaRangeHeader>() == 8);

open_enum! {
    /// A channel-management message's `msgtype` (every message of the VMBus control protocol).
    pub struct MessageType(u32) {
        /// H→G: a channel offer.
        OFFER_CHANNEL = 1,
        /// H→G: an offer is withdrawn.
        RESCIND_CHANNEL_OFFER = 2,
        /// G→H: send the offers.
        REQUEST_OFFERS = 3,
        /// H→G: every offer has been sent.
        ALL_OFFERS_DELIVERED = 4,
        /// G→H: open a channel.
        OPEN_CHANNEL = 5,
        /// H→G: result of an open.
        OPEN_CHANNEL_RESULT = 6,
        /// G→H: close a channel.
        CLOSE_CHANNEL = 7,
        /// G→H: first part of a GPADL.
        GPADL_HEADER = 8,
        /// G→H: continuation of a GPADL.
        GPADL_BODY = 9,
        /// H→G: a GPADL was created.
        GPADL_CREATED = 10,
        /// G→H: tear a GPADL down.
        GPADL_TEARDOWN = 11,
        /// H→G: a GPADL is gone.
        GPADL_TORNDOWN = 12,
        /// G→H: a rescinded relid may be reused.
        RELID_RELEASED = 13,
        /// G→H: connect, requesting a version.
        INITIATE_CONTACT = 14,
        /// H→G: answer to INITIATE_CONTACT.
        VERSION_RESPONSE = 15,
        /// G→H: disconnect everything.
        UNLOAD = 16,
        /// H→G: everything is reset.
        UNLOAD_RESPONSE = 17,
        /// G→H: open a reserved channel (Windows 10).
        OPEN_RESERVED_CHANNEL = 18,
        /// G→H: close a reserved channel.
        CLOSE_RESERVED_CHANNEL = 19,
        /// H→G: reserved channel closed.
        CLOSE_RESERVED_RESPONSE = 20,
        /// G→H: hvsock connect request.
        TL_CONNECT_REQUEST = 21,
        /// G→H: retarget a channel's interrupts.
        MODIFY_CHANNEL = 22,
        /// H→G: hvsock connect result.
        TL_CONNECT_RESULT = 23,
        /// H→G: MODIFY_CHANNEL done (≥ 5.3).
        MODIFY_CHANNEL_RESPONSE = 24,
        /// 6.0 only.
        MODIFY_CONNECTION = 25,
        /// 6.0 only.
        MODIFY_CONNECTION_RESPONSE = 26,
        /// 6.0 only.
        PAUSE = 27,
        /// 6.0 only.
        PAUSE_RESPONSE = 28,
        /// 6.0 only.
        RESUME = 29,
    }
}

/// The 8-byte header of every channel message.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct MessageHeader {
    /// The message type ([`MessageType`]).
    pub msg_type: U32,
    /// Padding (zero).
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<MessageHeader>() == 8);

/// The fixed part of GPADL_HEADER (message 8); the range buffer (GPA range headers and PFNs as
/// `u64` values) follows at offset 20.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct GpadlHeaderFixed {
    /// `msg_type` = [`MessageType::GPADL_HEADER`].
    pub header: MessageHeader,
    /// The channel the GPADL belongs to.
    pub child_relid: U32,
    /// Guest-chosen GPADL id, unique per connection.
    pub gpadl_id: U32,
    /// Bytes of the whole range buffer (range headers and PFNs) across the header and all
    /// body messages.
    pub range_buflen: U16,
    /// Number of GPA ranges in the range buffer.
    pub range_count: U16,
}

const _: () = assert!(core::mem::size_of::<GpadlHeaderFixed>() == 20);

/// The fixed part of GPADL_BODY (message 9); more range-buffer values follow at offset 16.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct GpadlBodyFixed {
    /// `msg_type` = [`MessageType::GPADL_BODY`].
    pub header: MessageHeader,
    /// Sequence number; Linux leaves it zero and hosts ignore it.
    pub msg_number: U32,
    /// The GPADL this body continues.
    pub gpadl_id: U32,
}

const _: () = assert!(core::mem::size_of::<GpadlBodyFixed>() == 16);
