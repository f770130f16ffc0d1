//! VMBus packets: a checked view over packet bytes ([`Packet`]) and an owned representation
//! ([`PacketRepr`]) with `parse` / `buffer_len` / `emit`, in the style of smoltcp's `wire`
//! module.
//!
//! ```text
//!  0        2         4       6       8                16
//!  | type   | offset8 | len8  | flags | transaction_id |  extended header | payload | pad |
//!  |<------------- offset8 * 8 ------------------------------------------>|
//!  |<------------- len8 * 8 (the trailer follows in the ring) ---------------------------->|
//! ```
//!
//! | type | extended header (from byte 16) |
//! |---|---|
//! | in-band (0x6), completion (0xB) | none (`offset8` = 2) |
//! | transfer pages (0x7) | set id u16, sender-owns u8, reserved u8, `range_count` u32, then `{byte_count, byte_offset}` × count |
//! | GPA direct (0x9) | reserved u32, `range_count` u32, then GPA ranges (header + PFNs) filling exactly up to `offset8 * 8` |
//!
//! The builders ([`PacketRepr::in_band`], [`PacketRepr::completion`],
//! [`PacketRepr::gpa_direct`], [`PacketRepr::transfer_pages`]) lay packets out as Linux's
//! `vmbus_sendpacket`, `vmbus_sendpacket_mpb_desc` / `_pagebuffer` and Hyper-V's netvsc receive
//! path do: the smallest `offset8`, `len8` rounded up to 8 bytes, zero padding, zero reserved
//! fields.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, IntoBytes};

use crate::defs::{
    align8, GpaDirectHeader, PacketDescriptor, PacketFlags, PacketType, TransferPageHeader,
    TransferPageRange, DESCRIPTOR_LEN, MAX_PACKET_LEN,
};
use crate::gpadl::{GpaRanges, RangeError};
use crate::ring::{PacketSink, WritePacket};

/// A packet is malformed (the ring around it may be fine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Fewer bytes than a descriptor.
    #[error("{len} bytes cannot hold a packet descriptor")]
    Truncated {
        /// Bytes supplied.
        len: usize,
    },
    /// `len8 * 8` is not the length of the buffer holding the packet.
    #[error("len8 {len8} does not describe the {len}-byte packet")]
    LengthMismatch {
        /// The descriptor's `len8`.
        len8: u16,
        /// Bytes in the buffer.
        len: usize,
    },
    /// `offset8` is below the descriptor or beyond the packet.
    #[error("data offset8 {offset8} is outside 2..={len8}")]
    DataOffset {
        /// The descriptor's `offset8`.
        offset8: u16,
        /// The descriptor's `len8`.
        len8: u16,
    },
    /// Flag bits other than "completion requested".
    #[error("unknown packet flags {flags:#x}")]
    UnknownFlags {
        /// The descriptor's flags.
        flags: u16,
    },
    /// A packet type this crate does not parse (the legacy types).
    #[error("unsupported packet type {packet_type:?}")]
    UnsupportedType {
        /// The descriptor's type.
        packet_type: PacketType,
    },
    /// The type's extended header does not fit before the payload offset.
    #[error("{packet_type:?} header does not fit in data offset8 {offset8}")]
    HeaderTooShort {
        /// The descriptor's type.
        packet_type: PacketType,
        /// The descriptor's `offset8`.
        offset8: u16,
    },
    /// The range list is malformed (zero ranges, a range past the header, an empty range, an
    /// offset beyond the first page).
    #[error("malformed ranges")]
    Ranges(#[from] RangeError),
    /// The GPA ranges, with PFN counts derived from offset and length, do not fill the
    /// extended header exactly.
    #[error("gpa ranges take {used} bytes of the {declared}-byte range area")]
    PfnCountMismatch {
        /// Bytes the ranges take.
        used: usize,
        /// Bytes between the GPA-direct header and the payload offset.
        declared: usize,
    },
    /// Building: the packet would exceed [`MAX_PACKET_LEN`].
    #[error("a {len}-byte packet exceeds the {max}-byte maximum", max = MAX_PACKET_LEN)]
    TooLong {
        /// Bytes the packet would take.
        len: usize,
    },
    /// Building: the output buffer is too small.
    #[error("the packet needs {needed} bytes, the buffer has {len}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
}

/// A read-only view of one packet's bytes (descriptor to end of padding, no trailer).
///
/// [`new_checked`](Self::new_checked) verifies once that the buffer is exactly `len8 * 8` bytes
/// and that `2 <= offset8 <= len8`. No accessor ever panics — not even on a view made with
/// [`new_unchecked`](Self::new_unchecked), where out-of-range fields read as empty.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the framing: a whole descriptor, `len8 * 8 == buffer length`, and
    /// `2 <= offset8 <= len8`.
    ///
    /// # Errors
    /// [`PacketError::Truncated`], [`PacketError::LengthMismatch`], [`PacketError::DataOffset`].
    pub fn check_len(&self) -> Result<(), PacketError> {
        let len = self.buffer.as_ref().len();
        let Some(d) = self.descriptor() else {
            return Err(PacketError::Truncated { len });
        };
        let (len8, offset8) = (d.len8.get(), d.offset8.get());
        if usize::from(len8) * 8 != len {
            return Err(PacketError::LengthMismatch { len8, len });
        }
        if offset8 < 2 || offset8 > len8 {
            return Err(PacketError::DataOffset { offset8, len8 });
        }
        Ok(())
    }

    fn descriptor(&self) -> Option<PacketDescriptor> {
        PacketDescriptor::read_from_prefix(self.buffer.as_ref())
            .ok()
            .map(|(d, _)| d)
    }

    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        PacketType(self.descriptor().map_or(0, |d| d.packet_type.get()))
    }

    /// Payload offset in 8-byte units.
    pub fn offset8(&self) -> u16 {
        self.descriptor().map_or(0, |d| d.offset8.get())
    }

    /// Packet length (without trailer) in 8-byte units.
    pub fn len8(&self) -> u16 {
        self.descriptor().map_or(0, |d| d.len8.get())
    }

    /// The flags.
    pub fn flags(&self) -> PacketFlags {
        PacketFlags(self.descriptor().map_or(0, |d| d.flags.get()))
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> u64 {
        self.descriptor().map_or(0, |d| d.transaction_id.get())
    }

    /// The extended header: bytes 16 to `offset8 * 8`.
    pub fn extended_header(&self) -> &[u8] {
        let end = usize::from(self.offset8()) * 8;
        self.buffer
            .as_ref()
            .get(DESCRIPTOR_LEN..end)
            .unwrap_or_default()
    }

    /// The payload: `offset8 * 8` to the end (including padding).
    pub fn payload(&self) -> &[u8] {
        let start = usize::from(self.offset8()) * 8;
        self.buffer.as_ref().get(start..).unwrap_or_default()
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// What kind of packet a [`PacketRepr`] is, with its type-specific extended header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketKind<'a> {
    /// Data in the ring (type 0x6).
    InBand,
    /// A completion (type 0xB).
    Completion,
    /// Data in a transfer-page set (type 0x7).
    TransferPages {
        /// The set.
        transfer_page_set_id: u16,
        /// The sender owns the set.
        sender_owns_set: bool,
        /// The ranges (at least one).
        ranges: &'a [TransferPageRange],
    },
    /// Data described by guest-physical ranges (type 0x9).
    GpaDirect {
        /// The ranges (at least one).
        ranges: GpaRanges<'a>,
    },
}

/// A parsed (or to-be-emitted) packet of one of the four types in current use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRepr<'a> {
    /// The transaction id (a completion echoes its request's).
    pub transaction_id: u64,
    /// The sender asks for a completion.
    pub completion_requested: bool,
    /// Type and extended header.
    pub kind: PacketKind<'a>,
    /// The payload (from `offset8 * 8`; when parsed, includes the padding).
    pub payload: &'a [u8],
}

impl<'a> PacketRepr<'a> {
    /// An in-band data packet, as Linux `vmbus_sendpacket(VM_PKT_DATA_INBAND)` lays it out.
    pub fn in_band(transaction_id: u64, completion_requested: bool, payload: &'a [u8]) -> Self {
        Self {
            transaction_id,
            completion_requested,
            kind: PacketKind::InBand,
            payload,
        }
    }

    /// A completion (flags clear), as Linux `vmbus_sendpacket(VM_PKT_COMP)` lays it out.
    pub fn completion(transaction_id: u64, payload: &'a [u8]) -> Self {
        Self {
            transaction_id,
            completion_requested: false,
            kind: PacketKind::Completion,
            payload,
        }
    }

    /// A GPA-direct packet (storvsc I/O, netvsc page buffers).
    pub fn gpa_direct(
        transaction_id: u64,
        completion_requested: bool,
        ranges: GpaRanges<'a>,
        payload: &'a [u8],
    ) -> Self {
        Self {
            transaction_id,
            completion_requested,
            kind: PacketKind::GpaDirect { ranges },
            payload,
        }
    }

    /// A transfer-page packet (the netvsc receive path of a host).
    pub fn transfer_pages(
        transaction_id: u64,
        completion_requested: bool,
        transfer_page_set_id: u16,
        ranges: &'a [TransferPageRange],
        payload: &'a [u8],
    ) -> Self {
        Self {
            transaction_id,
            completion_requested,
            kind: PacketKind::TransferPages {
                transfer_page_set_id,
                sender_owns_set: false,
                ranges,
            },
            payload,
        }
    }

    /// Parses a checked packet view.
    ///
    /// # Errors
    /// [`PacketError::UnknownFlags`], [`PacketError::UnsupportedType`],
    /// [`PacketError::HeaderTooShort`], [`PacketError::Ranges`],
    /// [`PacketError::PfnCountMismatch`].
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self, PacketError> {
        let flags = packet.flags();
        if flags.unknown_bits() != 0 {
            return Err(PacketError::UnknownFlags { flags: flags.0 });
        }
        let bytes: &'a [u8] = packet.buffer;
        let offset8 = packet.offset8();
        let packet_type = packet.packet_type();
        let ext_end = usize::from(offset8) * 8;
        let ext = bytes.get(DESCRIPTOR_LEN..ext_end).unwrap_or_default();
        let payload = bytes.get(ext_end..).unwrap_or_default();
        let too_short = PacketError::HeaderTooShort {
            packet_type,
            offset8,
        };
        let kind = match packet_type {
            PacketType::DATA_IN_BAND => PacketKind::InBand,
            PacketType::COMPLETION => PacketKind::Completion,
            PacketType::DATA_USING_TRANSFER_PAGES => {
                let (header, rest) =
                    TransferPageHeader::ref_from_prefix(ext).map_err(|_| too_short)?;
                let count = header.range_count.get();
                if count == 0 {
                    return Err(RangeError::NoRanges.into());
                }
                let (ranges, _) =
                    <[TransferPageRange]>::ref_from_prefix_with_elems(rest, count as usize)
                        .map_err(|_| RangeError::Truncated {
                            index: rest.len() / 8,
                        })?;
                PacketKind::TransferPages {
                    transfer_page_set_id: header.transfer_page_set_id.get(),
                    sender_owns_set: header.sender_owns_set != 0,
                    ranges,
                }
            }
            PacketType::DATA_USING_GPA_DIRECT => {
                let (header, rest) =
                    GpaDirectHeader::ref_from_prefix(ext).map_err(|_| too_short)?;
                let (ranges, trailing) = GpaRanges::parse(rest, header.range_count.get())?;
                if !trailing.is_empty() {
                    return Err(PacketError::PfnCountMismatch {
                        used: ranges.as_bytes().len(),
                        declared: rest.len(),
                    });
                }
                PacketKind::GpaDirect { ranges }
            }
            other => {
                return Err(PacketError::UnsupportedType { packet_type: other });
            }
        };
        Ok(Self {
            transaction_id: packet.transaction_id(),
            completion_requested: flags.completion_requested(),
            kind,
            payload,
        })
    }

    /// Checks `bytes` with [`Packet::new_checked`] and parses it.
    ///
    /// # Errors
    /// Any [`PacketError`] of the two steps.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, PacketError> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// The descriptor type of this packet.
    pub fn packet_type(&self) -> PacketType {
        match self.kind {
            PacketKind::InBand => PacketType::DATA_IN_BAND,
            PacketKind::Completion => PacketType::COMPLETION,
            PacketKind::TransferPages { .. } => PacketType::DATA_USING_TRANSFER_PAGES,
            PacketKind::GpaDirect { .. } => PacketType::DATA_USING_GPA_DIRECT,
        }
    }

    /// Bytes from the descriptor to the payload (`offset8 * 8`).
    pub fn header_len(&self) -> usize {
        DESCRIPTOR_LEN
            + match self.kind {
                PacketKind::InBand | PacketKind::Completion => 0,
                PacketKind::TransferPages { ranges, .. } => 8 + ranges.as_bytes().len(),
                PacketKind::GpaDirect { ranges } => 8 + ranges.as_bytes().len(),
            }
    }

    /// Bytes the packet takes (`len8 * 8`: header, payload, padding; no trailer).
    pub fn buffer_len(&self) -> usize {
        align8(self.header_len().saturating_add(self.payload.len()))
    }

    /// Writes the packet into the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`PacketError::TooLong`], [`PacketError::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, PacketError> {
        let len = self.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(PacketError::TooLong { len });
        }
        let available = buf.len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(PacketError::BufferTooSmall {
                needed: len,
                len: available,
            });
        };
        let mut sink = SliceSink { out, at: 0 };
        self.emit_to(&mut sink);
        Ok(len)
    }
}

impl WritePacket for PacketRepr<'_> {
    fn packet_len(&self) -> usize {
        self.buffer_len()
    }

    fn emit_to(&self, sink: &mut dyn PacketSink) {
        let header_len = self.header_len();
        let len = self.buffer_len();
        let descriptor = PacketDescriptor {
            packet_type: U16::new(self.packet_type().0),
            offset8: U16::new(u16::try_from(header_len / 8).unwrap_or(u16::MAX)),
            len8: U16::new(u16::try_from(len / 8).unwrap_or(u16::MAX)),
            flags: U16::new(
                PacketFlags(0)
                    .with_completion_requested(self.completion_requested)
                    .0,
            ),
            transaction_id: U64::new(self.transaction_id),
        };
        sink.put(descriptor.as_bytes());
        match self.kind {
            PacketKind::InBand | PacketKind::Completion => {}
            PacketKind::TransferPages {
                transfer_page_set_id,
                sender_owns_set,
                ranges,
            } => {
                let header = TransferPageHeader {
                    transfer_page_set_id: U16::new(transfer_page_set_id),
                    sender_owns_set: u8::from(sender_owns_set),
                    reserved: 0,
                    range_count: U32::new(u32::try_from(ranges.len()).unwrap_or(u32::MAX)),
                };
                sink.put(header.as_bytes());
                sink.put(ranges.as_bytes());
            }
            PacketKind::GpaDirect { ranges } => {
                let header = GpaDirectHeader {
                    reserved: U32::ZERO,
                    range_count: U32::new(ranges.count()),
                };
                sink.put(header.as_bytes());
                sink.put(ranges.as_bytes());
            }
        }
        sink.put(self.payload);
        sink.put_zeros(len.saturating_sub(header_len.saturating_add(self.payload.len())));
    }
}

/// A [`PacketSink`] writing into a byte slice (excess bytes are dropped).
struct SliceSink<'b> {
    out: &'b mut [u8],
    at: usize,
}

impl PacketSink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let room = self.out.len().saturating_sub(self.at);
        let n = bytes.len().min(room);
        if let (Some(dst), Some(src)) = (self.out.get_mut(self.at..self.at + n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
    }
}

#[cfg(test)]
mod tests;
