//! Packet descriptor, packet types and flags, the extended headers of transfer-page and
//! GPA-direct packets, and the trailer.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::macros::{bitfield_word, open_enum};

open_enum! {
    /// The descriptor's `type` field.
    ///
    /// Only [`DATA_IN_BAND`](Self::DATA_IN_BAND), [`DATA_USING_TRANSFER_PAGES`](Self::DATA_USING_TRANSFER_PAGES),
    /// [`DATA_USING_GPA_DIRECT`](Self::DATA_USING_GPA_DIRECT) and [`COMPLETION`](Self::COMPLETION)
    /// are used by current guests and hosts; the others are legacy and are named only so that
    /// `Debug` output is readable.
    pub struct PacketType(u16) {
        /// Invalid.
        INVALID = 0x0,
        /// Legacy synchronisation packet.
        SYNCH = 0x1,
        /// Legacy: add a transfer-page set.
        ADD_TRANSFER_PAGE_SET = 0x2,
        /// Legacy: remove a transfer-page set.
        REMOVE_TRANSFER_PAGE_SET = 0x3,
        /// Legacy in-band GPADL establishment (channel messages are used instead).
        ESTABLISH_GPADL = 0x4,
        /// Legacy in-band GPADL teardown.
        TEARDOWN_GPADL = 0x5,
        /// Data carried in the ring (integration services, storvsc/netvsc control).
        DATA_IN_BAND = 0x6,
        /// Data in a transfer-page set (netvsc host-to-guest receive path).
        DATA_USING_TRANSFER_PAGES = 0x7,
        /// Legacy: data described by a GPADL.
        DATA_USING_GPADL = 0x8,
        /// Data described by guest-physical page ranges (storvsc I/O, netvsc page buffers).
        DATA_USING_GPA_DIRECT = 0x9,
        /// Legacy cancel request.
        CANCEL_REQUEST = 0xa,
        /// Completion of a request; the transaction id is the request's.
        COMPLETION = 0xb,
        /// Legacy: data using an additional packet.
        DATA_USING_ADDITIONAL_PACKET = 0xc,
        /// Legacy: additional data.
        ADDITIONAL_DATA = 0xd,
    }
}

bitfield_word! {
    /// The descriptor's `flags` field. Bit 0 is the only defined flag.
    pub struct PacketFlags(u16) {
        /// The sender wants a completion packet carrying this packet's transaction id.
        0 => completion_requested / with_completion_requested,
    }
}

/// The 16-byte descriptor that starts every packet.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct PacketDescriptor {
    /// Packet type ([`PacketType`]).
    pub packet_type: U16,
    /// Offset of the payload from the start of the descriptor, in 8-byte units (at least 2).
    pub offset8: U16,
    /// Length of the whole packet excluding the trailer, in 8-byte units (at least `offset8`).
    pub len8: U16,
    /// Flags ([`PacketFlags`]).
    pub flags: U16,
    /// Request identifier; a completion echoes the request's.
    pub transaction_id: U64,
}

const _: () = assert!(core::mem::size_of::<PacketDescriptor>() == super::DESCRIPTOR_LEN);

/// The extended header of a transfer-page packet (type 0x7), at descriptor offset 16; the ranges
/// ([`TransferPageRange`]) follow at offset 24.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct TransferPageHeader {
    /// Which transfer-page set (for netvsc, the receive buffer GPADL's set id).
    pub transfer_page_set_id: U16,
    /// Non-zero when the sender owns the set.
    pub sender_owns_set: u8,
    /// Reserved.
    pub reserved: u8,
    /// Number of ranges that follow.
    pub range_count: U32,
}

const _: () = assert!(core::mem::size_of::<TransferPageHeader>() == 8);

/// One range of a transfer-page packet: a byte range inside the transfer-page set.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct TransferPageRange {
    /// Length of the range in bytes.
    pub byte_count: U32,
    /// Offset of the range from the start of the transfer-page set.
    pub byte_offset: U32,
}

const _: () = assert!(core::mem::size_of::<TransferPageRange>() == 8);

impl TransferPageRange {
    /// A range of `byte_count` bytes at `byte_offset`.
    #[must_use]
    pub fn new(byte_offset: u32, byte_count: u32) -> Self {
        Self {
            byte_count: U32::new(byte_count),
            byte_offset: U32::new(byte_offset),
        }
    }
}

/// The extended header of a GPA-direct packet (type 0x9), at descriptor offset 16; the GPA ranges
/// follow at offset 24.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct GpaDirectHeader {
    /// Reserved; senders may leave garbage here, readers ignore it.
    pub reserved: U32,
    /// Number of GPA ranges that follow (at least one).
    pub range_count: U32,
}

const _: () = assert!(core::mem::size_of::<GpaDirectHeader>() == 8);

/// The 8-byte trailer after each packet in a ring: the packet's start offset in the upper 32 bits.
/// Informational; readers skip it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct PacketTrailer {
    /// Reserved (zero).
    pub reserved: U32,
    /// Ring offset at which the packet starts.
    pub offset: U32,
}

const _: () = assert!(core::mem::size_of::<PacketTrailer>() == super::TRAILER_LEN);

impl PacketTrailer {
    /// The trailer of a packet written at ring offset `start`.
    #[must_use]
    pub fn for_offset(start: u32) -> Self {
        Self {
            reserved: U32::ZERO,
            offset: U32::new(start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_type_values_match_the_reference() {
        assert_eq!(PacketType::DATA_IN_BAND.0, 6);
        assert_eq!(PacketType::DATA_USING_TRANSFER_PAGES.0, 7);
        assert_eq!(PacketType::DATA_USING_GPA_DIRECT.0, 9);
        assert_eq!(PacketType::COMPLETION.0, 0xb);
        assert_eq!(std::format!("{:?}", PacketType::COMPLETION), "COMPLETION");
        assert_eq!(std::format!("{:?}", PacketType(0x42)), "PacketType(0x42)");
        assert_eq!(PacketType(0xd).name(), Some("ADDITIONAL_DATA"));
    }

    #[test]
    fn flags_and_trailer() {
        let f = PacketFlags(0).with_completion_requested(true);
        assert_eq!(f.0, 1);
        assert_eq!(PacketFlags(6).unknown_bits(), 6);
        // The trailer read as a little-endian u64 is `start << 32`.
        let t = PacketTrailer::for_offset(0x1238);
        assert_eq!(
            u64::from_le_bytes(t.as_bytes().try_into().unwrap()),
            0x1238 << 32
        );
    }

    #[test]
    fn descriptor_bytes_at_reference_offsets() {
        let d = PacketDescriptor {
            packet_type: U16::new(9),
            offset8: U16::new(5),
            len8: U16::new(7),
            flags: U16::new(1),
            transaction_id: U64::new(0x0102_0304_0506_0708),
        };
        assert_eq!(
            d.as_bytes(),
            &[9, 0, 5, 0, 7, 0, 1, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        let t = TransferPageHeader {
            transfer_page_set_id: U16::new(0xcafe),
            sender_owns_set: 1,
            reserved: 0,
            range_count: U32::new(3),
        };
        assert_eq!(t.as_bytes(), &[0xfe, 0xca, 1, 0, 3, 0, 0, 0]);
    }
}
