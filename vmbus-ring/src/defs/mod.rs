//! The VMBus wire definitions: the ring control page, packet descriptors and their extended
//! headers, GPA ranges and the GPADL channel messages.
//!
//! This layer is pure: `#[repr(C)]` zerocopy layouts with little-endian field types and sizes
//! pinned by compile-time asserts, open enums for values that come off the wire, bit-field words
//! for flags, and constants. No I/O, no allocation, no `unsafe`; everything works in `core`.
//! Offsets and meanings follow the Linux `hv_vmbus` driver and OpenVMM's `vmbus_ring`, as
//! summarised in the project's `vmbus-hypercall.md` §1–§3.

mod control;
mod gpadl;
mod packet;

pub use control::{ControlPage, FeatureBits};
pub use gpadl::{
    GpaRangeHeader, GpadlBodyFixed, GpadlHeaderFixed, MessageHeader, MessageType,
    GPADL_BODY_MAX_PFNS, GPADL_HEADER_MAX_PFNS, GPADL_HEADER_MAX_VALUES, MAX_MESSAGE_PAYLOAD,
};
pub use packet::{
    GpaDirectHeader, PacketDescriptor, PacketFlags, PacketTrailer, PacketType, TransferPageHeader,
    TransferPageRange,
};

/// The page size GPADLs, PFNs and rings are expressed in: 4 KiB on every VMBus platform.
pub const PAGE_SIZE: usize = 4096;

/// `log2(PAGE_SIZE)`.
pub const PAGE_SHIFT: u32 = 12;

/// Every ring index, packet start and packet length is a multiple of this.
pub const PACKET_ALIGN: usize = 8;

/// Bytes of the packet descriptor that starts every packet.
pub const DESCRIPTOR_LEN: usize = 16;

/// Bytes of the trailer that follows every packet in a ring (Linux `VMBUS_PKT_TRAILER`).
pub const TRAILER_LEN: usize = 8;

/// The longest packet a descriptor can describe: `len8` is a `u16` count of 8-byte units.
pub const MAX_PACKET_LEN: usize = u16::MAX as usize * PACKET_ALIGN;

/// The number of 4 KiB pages a GPA range of `byte_count` bytes starting `byte_offset` bytes into
/// its first page touches: `ceil((byte_offset % 4096 + byte_count) / 4096)`.
///
/// Computed in `u64`, so it never overflows for `u32` inputs.
#[must_use]
pub const fn range_page_count(byte_offset: u32, byte_count: u32) -> u64 {
    let end = (byte_offset as u64 % PAGE_SIZE as u64) + byte_count as u64;
    end.div_ceil(PAGE_SIZE as u64)
}

/// Rounds `len` up to the next multiple of [`PACKET_ALIGN`].
#[must_use]
pub const fn align8(len: usize) -> usize {
    len.div_ceil(PACKET_ALIGN).saturating_mul(PACKET_ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_count_matches_the_reference_formula() {
        assert_eq!(range_page_count(0, 1), 1);
        assert_eq!(range_page_count(0, 4096), 1);
        assert_eq!(range_page_count(0, 4097), 2);
        assert_eq!(range_page_count(4095, 2), 2);
        assert_eq!(range_page_count(100, 65536), 17);
        assert_eq!(range_page_count(0, 65536), 16);
        assert_eq!(range_page_count(0, 0), 0);
        assert_eq!(range_page_count(u32::MAX, u32::MAX), 1_048_577);
    }

    #[test]
    fn constants_match_the_reference() {
        assert_eq!(MAX_PACKET_LEN, 524_280);
        assert_eq!(align8(0), 0);
        assert_eq!(align8(1), 8);
        assert_eq!(align8(16), 16);
        assert_eq!(align8(17), 24);
    }
}
