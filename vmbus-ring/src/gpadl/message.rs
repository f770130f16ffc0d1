//! The GPADL_HEADER / GPADL_BODY messages: checked views and the guest-side split.

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, IntoBytes};

use super::range::{GpaRange, RangeError};
use crate::defs::{
    GpadlBodyFixed, GpadlHeaderFixed, MessageHeader, MessageType, GPADL_BODY_MAX_PFNS,
    GPADL_HEADER_MAX_VALUES, MAX_MESSAGE_PAYLOAD,
};

/// Errors building, parsing or reassembling GPADL messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GpadlError {
    /// The message is shorter than its fixed part.
    #[error("a {len}-byte message is shorter than the {needed} bytes of its fixed part")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes of the fixed part.
        needed: usize,
    },
    /// Not a GPADL_HEADER or GPADL_BODY (or not the one expected).
    #[error("unexpected message type {msg_type:?}")]
    UnexpectedType {
        /// The message's type.
        msg_type: MessageType,
    },
    /// `range_buflen` is not a whole number of `u64` values, or too small for one range.
    #[error(
        "gpadl {gpadl_id:#x}: range_buflen {range_buflen} is not a multiple of 8 of at least 16"
    )]
    RangeBufLen {
        /// The GPADL.
        gpadl_id: u32,
        /// The declared length.
        range_buflen: u16,
    },
    /// A GPADL with this id already exists or is being assembled.
    #[error("gpadl id {gpadl_id:#x} is already in use")]
    DuplicateId {
        /// The GPADL.
        gpadl_id: u32,
    },
    /// A GPADL_BODY for an id with no GPADL being assembled.
    #[error("gpadl body for unknown gpadl id {gpadl_id:#x}")]
    UnknownId {
        /// The GPADL.
        gpadl_id: u32,
    },
    /// A GPADL_BODY for a GPADL whose range buffer is already complete.
    #[error("gpadl body for gpadl {gpadl_id:#x}, which is already complete")]
    Overrun {
        /// The GPADL.
        gpadl_id: u32,
    },
    /// A GPADL_BODY that carries no values.
    #[error("gpadl body for gpadl {gpadl_id:#x} carries no values")]
    EmptyBody {
        /// The GPADL.
        gpadl_id: u32,
    },
    /// More GPADLs being assembled at once than the host allows.
    #[error("more than {limit} gpadls in progress")]
    TooManyInProgress {
        /// The limit.
        limit: usize,
    },
    /// More GPADLs than the host allows.
    #[error("more than {limit} gpadls")]
    TooManyGpadls {
        /// The limit.
        limit: usize,
    },
    /// The range buffer is longer than the host allows.
    #[error("gpadl {gpadl_id:#x} declares {values} values, more than the limit of {limit}")]
    TooLong {
        /// The GPADL.
        gpadl_id: u32,
        /// Values (`range_buflen / 8`) declared.
        values: usize,
        /// The limit.
        limit: usize,
    },
    /// The GPADL would take the values held for all GPADLs past the host's limit
    /// ([`GpadlLimits::max_total_values`](super::GpadlLimits::max_total_values)).
    #[error("gpadl {gpadl_id:#x} declares {values} values; {held} are held, the limit is {limit}")]
    TooManyValues {
        /// The GPADL.
        gpadl_id: u32,
        /// Values (`range_buflen / 8`) declared.
        values: usize,
        /// Values held for the other GPADLs.
        held: usize,
        /// The limit.
        limit: usize,
    },
    /// A range in the range buffer is malformed.
    #[error("gpadl {gpadl_id:#x} has a malformed range")]
    Ranges {
        /// The GPADL.
        gpadl_id: u32,
        /// What is wrong.
        #[source]
        source: RangeError,
    },
    /// The ranges, with their PFN counts, do not fill `range_buflen` exactly: the list is longer
    /// than its ranges need.
    #[error("gpadl {gpadl_id:#x}: ranges take {used} of {declared} bytes of range buffer")]
    LengthMismatch {
        /// The GPADL.
        gpadl_id: u32,
        /// Bytes the ranges take.
        used: usize,
        /// `range_buflen`.
        declared: usize,
    },
    /// Building: the ranges do not fit the 16-bit `range_buflen` / `range_count` fields.
    #[error("{bytes} bytes of range buffer in {count} ranges exceed the 16-bit message fields")]
    TooLarge {
        /// Range-buffer bytes.
        bytes: usize,
        /// Ranges.
        count: usize,
    },
}

/// The message type of a channel message (its first four bytes), if it has a whole 8-byte
/// header: how a host dispatches GPADL_HEADER and GPADL_BODY to [`GpadlHeaderMessage`] and
/// [`GpadlBodyMessage`].
pub fn message_type(bytes: &[u8]) -> Option<MessageType> {
    MessageHeader::read_from_prefix(bytes)
        .ok()
        .map(|(h, _)| MessageType(h.msg_type.get()))
}

/// A checked view of a GPADL_HEADER message (the SynIC payload, header included).
#[derive(Debug, Clone, Copy)]
pub struct GpadlHeaderMessage<'a> {
    fixed: GpadlHeaderFixed,
    values: &'a [u8],
}

impl<'a> GpadlHeaderMessage<'a> {
    /// Checks that `bytes` is a GPADL_HEADER with its whole fixed part.
    ///
    /// # Errors
    /// [`GpadlError::Truncated`], [`GpadlError::UnexpectedType`].
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, GpadlError> {
        let (fixed, rest) =
            GpadlHeaderFixed::read_from_prefix(bytes).map_err(|_| GpadlError::Truncated {
                len: bytes.len(),
                needed: core::mem::size_of::<GpadlHeaderFixed>(),
            })?;
        let msg_type = MessageType(fixed.header.msg_type.get());
        if msg_type != MessageType::GPADL_HEADER {
            return Err(GpadlError::UnexpectedType { msg_type });
        }
        Ok(Self {
            fixed,
            values: whole_values(rest),
        })
    }

    /// The owning channel.
    pub fn child_relid(&self) -> u32 {
        self.fixed.child_relid.get()
    }

    /// The GPADL id.
    pub fn gpadl_id(&self) -> u32 {
        self.fixed.gpadl_id.get()
    }

    /// Bytes of the whole range buffer, across all messages.
    pub fn range_buflen(&self) -> u16 {
        self.fixed.range_buflen.get()
    }

    /// Number of ranges.
    pub fn range_count(&self) -> u16 {
        self.fixed.range_count.get()
    }

    /// The range-buffer values this message carries (whole `u64`s after the fixed part; a
    /// trailing partial value is dropped).
    pub fn values(&self) -> &'a [u8] {
        self.values
    }
}

/// A checked view of a GPADL_BODY message.
#[derive(Debug, Clone, Copy)]
pub struct GpadlBodyMessage<'a> {
    fixed: GpadlBodyFixed,
    values: &'a [u8],
}

impl<'a> GpadlBodyMessage<'a> {
    /// Checks that `bytes` is a GPADL_BODY with its whole fixed part.
    ///
    /// # Errors
    /// [`GpadlError::Truncated`], [`GpadlError::UnexpectedType`].
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, GpadlError> {
        let (fixed, rest) =
            GpadlBodyFixed::read_from_prefix(bytes).map_err(|_| GpadlError::Truncated {
                len: bytes.len(),
                needed: core::mem::size_of::<GpadlBodyFixed>(),
            })?;
        let msg_type = MessageType(fixed.header.msg_type.get());
        if msg_type != MessageType::GPADL_BODY {
            return Err(GpadlError::UnexpectedType { msg_type });
        }
        Ok(Self {
            fixed,
            values: whole_values(rest),
        })
    }

    /// The sequence number (Linux leaves it zero).
    pub fn msg_number(&self) -> u32 {
        self.fixed.msg_number.get()
    }

    /// The GPADL id.
    pub fn gpadl_id(&self) -> u32 {
        self.fixed.gpadl_id.get()
    }

    /// The range-buffer values this message carries.
    pub fn values(&self) -> &'a [u8] {
        self.values
    }
}

fn whole_values(rest: &[u8]) -> &[u8] {
    rest.get(..rest.len() / 8 * 8).unwrap_or_default()
}

/// Splits a GPADL's ranges into a GPADL_HEADER and as many GPADL_BODY messages as needed, as
/// Linux's `vmbus_establish_gpadl` does: the header carries the first 27 range-buffer values
/// (for one range: its header and 26 PFNs), each body the next 28; every message is exactly as
/// long as what it carries; `msg_number` is zero.
///
/// ```
/// use vmbus_ring::defs::MAX_MESSAGE_PAYLOAD;
/// use vmbus_ring::gpadl::{GpaRange, GpadlMessages};
///
/// let pfns: Vec<u64> = (0x1000..0x1064).collect(); // 100 pages
/// let ranges = [GpaRange::whole_pages(&pfns)];
/// let mut split = GpadlMessages::new(7, 0xe1e10, &ranges).unwrap();
/// assert_eq!(split.message_count(), 4);
/// let mut msg = [0u8; MAX_MESSAGE_PAYLOAD];
/// let mut lens = Vec::new();
/// while let Some(len) = split.next_message(&mut msg) {
///     lens.push(len);
/// }
/// assert_eq!(lens, [20 + 8 + 26 * 8, 16 + 28 * 8, 16 + 28 * 8, 16 + 18 * 8]);
/// ```
#[derive(Debug, Clone)]
pub struct GpadlMessages<'r> {
    child_relid: u32,
    gpadl_id: u32,
    ranges: &'r [GpaRange<'r>],
    range_buflen: u16,
    range_count: u16,
    /// Values (range headers and PFNs) in the whole range buffer.
    total: usize,
    /// Values already emitted.
    sent: usize,
    /// Whether the GPADL_HEADER has been produced.
    header_sent: bool,
    /// Position in the value stream: range index and value within it (0 = its header).
    range: usize,
    within: usize,
}

impl<'r> GpadlMessages<'r> {
    /// Prepares the messages for GPADL `gpadl_id` of channel `child_relid` over `ranges`.
    ///
    /// # Errors
    /// [`GpadlError::Ranges`] for an invalid range or none at all, [`GpadlError::TooLarge`] if
    /// the range buffer exceeds 65535 bytes or 65535 ranges.
    pub fn new(
        child_relid: u32,
        gpadl_id: u32,
        ranges: &'r [GpaRange<'r>],
    ) -> Result<Self, GpadlError> {
        let ranges_error = |source| GpadlError::Ranges { gpadl_id, source };
        if ranges.is_empty() {
            return Err(ranges_error(RangeError::NoRanges));
        }
        let mut bytes = 0usize;
        for (index, range) in ranges.iter().enumerate() {
            range.validate(index).map_err(ranges_error)?;
            bytes = bytes.saturating_add(range.encoded_len());
        }
        let too_large = GpadlError::TooLarge {
            bytes,
            count: ranges.len(),
        };
        let range_buflen = u16::try_from(bytes).map_err(|_| too_large)?;
        let range_count = u16::try_from(ranges.len()).map_err(|_| too_large)?;
        Ok(Self {
            child_relid,
            gpadl_id,
            ranges,
            range_buflen,
            range_count,
            total: bytes / 8,
            sent: 0,
            header_sent: false,
            range: 0,
            within: 0,
        })
    }

    /// The `range_buflen` the header declares.
    pub fn range_buflen(&self) -> u16 {
        self.range_buflen
    }

    /// How many messages the GPADL takes in all (header included).
    pub fn message_count(&self) -> usize {
        1 + self
            .total
            .saturating_sub(GPADL_HEADER_MAX_VALUES)
            .div_ceil(GPADL_BODY_MAX_PFNS)
    }

    /// Writes the next message into `buf` and returns its length, or `None` when all messages
    /// have been produced.
    pub fn next_message(&mut self, buf: &mut [u8; MAX_MESSAGE_PAYLOAD]) -> Option<usize> {
        let first = !self.header_sent;
        if !first && self.sent >= self.total {
            return None;
        }
        let (fixed_len, capacity) = if first {
            let fixed = GpadlHeaderFixed {
                header: MessageHeader {
                    msg_type: U32::new(MessageType::GPADL_HEADER.0),
                    padding: U32::ZERO,
                },
                child_relid: U32::new(self.child_relid),
                gpadl_id: U32::new(self.gpadl_id),
                range_buflen: U16::new(self.range_buflen),
                range_count: U16::new(self.range_count),
            };
            buf[..20].copy_from_slice(fixed.as_bytes());
            (20, GPADL_HEADER_MAX_VALUES)
        } else {
            let fixed = GpadlBodyFixed {
                header: MessageHeader {
                    msg_type: U32::new(MessageType::GPADL_BODY.0),
                    padding: U32::ZERO,
                },
                msg_number: U32::ZERO,
                gpadl_id: U32::new(self.gpadl_id),
            };
            buf[..16].copy_from_slice(fixed.as_bytes());
            (16, GPADL_BODY_MAX_PFNS)
        };
        let n = capacity.min(self.total - self.sent);
        let mut at = fixed_len;
        for _ in 0..n {
            let value = self.next_value();
            if let Some(dst) = buf.get_mut(at..at + 8) {
                dst.copy_from_slice(&value);
            }
            at += 8;
        }
        self.sent += n;
        self.header_sent = true;
        Some(at)
    }

    /// The next value of the range buffer, as wire bytes.
    fn next_value(&mut self) -> [u8; 8] {
        let Some(range) = self.ranges.get(self.range) else {
            return [0; 8];
        };
        let value = if self.within == 0 {
            let mut v = [0u8; 8];
            v.copy_from_slice(range.header().as_bytes());
            v
        } else {
            range
                .pfns
                .get(self.within - 1)
                .unwrap_or_default()
                .to_le_bytes()
        };
        self.within += 1;
        if self.within > range.pfns.len() {
            self.range += 1;
            self.within = 0;
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn split(ranges: &[GpaRange<'_>]) -> Vec<Vec<u8>> {
        let mut s = GpadlMessages::new(3, 0xe1e10, ranges).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; MAX_MESSAGE_PAYLOAD];
        while let Some(len) = s.next_message(&mut buf) {
            out.push(buf[..len].to_vec());
        }
        assert_eq!(out.len(), s.message_count());
        let header = GpadlHeaderMessage::new_checked(&out[0]).unwrap();
        assert_eq!(header.range_buflen(), s.range_buflen());
        out
    }

    #[test]
    fn header_holds_26_pfns_bodies_28() {
        for (pages, expect) in [
            (1usize, 1usize),
            (26, 1),
            (27, 2),
            (54, 2),
            (55, 3),
            (100, 4),
        ] {
            let pfns: Vec<u64> = (0..pages as u64).map(|i| 0x5000 + i).collect();
            let msgs = split(&[GpaRange::whole_pages(&pfns)]);
            assert_eq!(msgs.len(), expect, "{pages} pages");
            let header = GpadlHeaderMessage::new_checked(&msgs[0]).unwrap();
            assert_eq!(header.range_buflen() as usize, 8 + 8 * pages);
            assert_eq!(header.range_count(), 1);
            assert_eq!(header.child_relid(), 3);
            assert_eq!(header.gpadl_id(), 0xe1e10);
            assert_eq!(header.values().len(), 8 * (1 + pages.min(26)));
            let mut all: Vec<u8> = header.values().to_vec();
            for body in &msgs[1..] {
                let b = GpadlBodyMessage::new_checked(body).unwrap();
                assert_eq!(b.msg_number(), 0);
                assert_eq!(b.gpadl_id(), 0xe1e10);
                assert!(b.values().len() <= 28 * 8);
                all.extend_from_slice(b.values());
            }
            assert_eq!(&all[..4], &((pages * 4096) as u32).to_le_bytes());
            assert_eq!(&all[8..16], &0x5000u64.to_le_bytes());
            assert_eq!(all.len(), 8 + 8 * pages);
        }
    }

    #[test]
    fn golden_gpadl_header_bytes() {
        let pfns = [0x1234u64, 0x5678];
        let msgs = split(&[GpaRange::new(0x10, 0x1100, &pfns)]);
        assert_eq!(
            msgs[0],
            [
                8, 0, 0, 0, 0, 0, 0, 0, // msgtype GPADL_HEADER, padding
                3, 0, 0, 0, // child_relid
                0x10, 0x1e, 0x0e, 0, // gpadl id 0xe1e10
                24, 0, // range_buflen: 8 + 2 * 8
                1, 0, // range_count
                0x00, 0x11, 0, 0, 0x10, 0, 0, 0, // byte_count 0x1100, byte_offset 0x10
                0x34, 0x12, 0, 0, 0, 0, 0, 0, // pfn
                0x78, 0x56, 0, 0, 0, 0, 0, 0, // pfn
            ]
        );
    }

    #[test]
    fn builder_rejects_bad_input() {
        assert!(matches!(
            GpadlMessages::new(1, 2, &[]),
            Err(GpadlError::Ranges {
                source: RangeError::NoRanges,
                ..
            })
        ));
        let pfns = [1u64, 2];
        assert!(matches!(
            GpadlMessages::new(1, 2, &[GpaRange::new(0, 1, &pfns)]),
            Err(GpadlError::Ranges {
                source: RangeError::PfnCount { .. },
                ..
            })
        ));
        let many: Vec<u64> = (0..8191).collect();
        assert!(GpadlMessages::new(1, 2, &[GpaRange::whole_pages(&many[..8190])]).is_ok());
        assert!(matches!(
            GpadlMessages::new(1, 2, &[GpaRange::whole_pages(&many)]),
            Err(GpadlError::TooLarge { bytes: 65536, .. })
        ));
    }

    #[test]
    fn views_reject_wrong_messages() {
        assert_eq!(
            GpadlHeaderMessage::new_checked(&[8, 0, 0, 0]).unwrap_err(),
            GpadlError::Truncated { len: 4, needed: 20 }
        );
        let mut body = [0u8; 16];
        body[0] = 8;
        assert_eq!(
            GpadlBodyMessage::new_checked(&body).unwrap_err(),
            GpadlError::UnexpectedType {
                msg_type: MessageType::GPADL_HEADER
            }
        );
        body[0] = 9;
        body[8] = 5;
        assert_eq!(
            GpadlBodyMessage::new_checked(&body).unwrap().msg_number(),
            5
        );
        let mut padded = [0u8; 29];
        padded[..16].copy_from_slice(&body);
        // 13 trailing bytes: one whole value, the partial one is dropped.
        assert_eq!(
            GpadlBodyMessage::new_checked(&padded)
                .unwrap()
                .values()
                .len(),
            8
        );
        assert_eq!(message_type(&padded), Some(MessageType::GPADL_BODY));
        assert_eq!(message_type(&padded[..7]), None);
    }
}
