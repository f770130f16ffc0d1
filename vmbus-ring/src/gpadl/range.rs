//! GPA ranges (`gpa_range`): a byte range over a list of guest page frame numbers.
//!
//! Used twice on the wire: in GPA-direct packets (storvsc/netvsc data buffers) and in the range
//! buffer of a GPADL. Both are a sequence of ranges, each an 8-byte header `{byte_count,
//! byte_offset}` followed by `ceil((byte_offset % 4096 + byte_count) / 4096)` PFNs.

use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};

use crate::defs::{range_page_count, GpaRangeHeader, PAGE_SIZE};

/// A range is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// A range list that must hold at least one range holds none.
    #[error("no ranges")]
    NoRanges,
    /// Range `index` (its header or its PFNs) runs past the end of the bytes holding the ranges.
    #[error("range {index} runs past the end of the range area")]
    Truncated {
        /// Zero-based index of the range.
        index: usize,
    },
    /// Range `index` has a byte count of zero.
    #[error("range {index} is empty")]
    EmptyRange {
        /// Zero-based index of the range.
        index: usize,
    },
    /// Range `index` starts beyond its first page.
    #[error("range {index} starts {byte_offset:#x} bytes into its first page")]
    OffsetTooLarge {
        /// Zero-based index of the range.
        index: usize,
        /// The offending offset.
        byte_offset: u32,
    },
    /// Range `index` was given a PFN list whose length does not match its offset and length.
    #[error("range {index} has {actual} PFNs where its offset and length need {expected}")]
    PfnCount {
        /// Zero-based index of the range.
        index: usize,
        /// PFNs the offset and length need.
        expected: u64,
        /// PFNs supplied.
        actual: usize,
    },
    /// The output buffer cannot hold the encoded ranges.
    #[error("encoding the ranges needs {needed} bytes, the buffer has {len}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
}

/// A range's page frame numbers: borrowed from the wire (little-endian, any alignment) or from
/// the caller (native `u64`).
#[derive(Clone, Copy, Debug)]
pub enum Pfns<'a> {
    /// PFNs as they sit in a packet or GPADL message.
    Wire(&'a [U64]),
    /// PFNs supplied by the caller.
    Native(&'a [u64]),
}

impl<'a> Pfns<'a> {
    /// Number of PFNs.
    pub fn len(&self) -> usize {
        match self {
            Self::Wire(p) => p.len(),
            Self::Native(p) => p.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// PFN `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<u64> {
        match self {
            Self::Wire(p) => p.get(i).map(|v| v.get()),
            Self::Native(p) => p.get(i).copied(),
        }
    }

    /// The PFNs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + 'a {
        let this = *self;
        (0..this.len()).map(move |i| this.get(i).unwrap_or_default())
    }
}

impl PartialEq for Pfns<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Pfns<'_> {}

/// One GPA range: `byte_count` bytes starting `byte_offset` bytes into the first of `pfns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpaRange<'a> {
    /// Offset into the first page (below 4096).
    pub byte_offset: u32,
    /// Length in bytes (non-zero).
    pub byte_count: u32,
    /// The pages, `ceil((byte_offset + byte_count) / 4096)` of them.
    pub pfns: Pfns<'a>,
}

impl<'a> GpaRange<'a> {
    /// A range over caller-supplied PFNs. Checked when encoded or used.
    pub fn new(byte_offset: u32, byte_count: u32, pfns: &'a [u64]) -> Self {
        Self {
            byte_offset,
            byte_count,
            pfns: Pfns::Native(pfns),
        }
    }

    /// A range of whole pages: offset 0, `pfns.len() * 4096` bytes (saturating at `u32::MAX`).
    pub fn whole_pages(pfns: &'a [u64]) -> Self {
        let bytes = pfns.len().saturating_mul(PAGE_SIZE);
        Self::new(0, u32::try_from(bytes).unwrap_or(u32::MAX), pfns)
    }

    /// PFNs the offset and length require.
    pub fn page_count(&self) -> u64 {
        range_page_count(self.byte_offset, self.byte_count)
    }

    /// Bytes the range takes in a range buffer: the header and its PFNs.
    pub fn encoded_len(&self) -> usize {
        8 + 8 * self.pfns.len()
    }

    /// Checks the range as range number `index`: non-empty, offset inside the first page, PFN
    /// count matching offset and length.
    ///
    /// # Errors
    /// [`RangeError::EmptyRange`], [`RangeError::OffsetTooLarge`], [`RangeError::PfnCount`].
    pub fn validate(&self, index: usize) -> Result<(), RangeError> {
        if self.byte_count == 0 {
            return Err(RangeError::EmptyRange { index });
        }
        if self.byte_offset as usize >= PAGE_SIZE {
            return Err(RangeError::OffsetTooLarge {
                index,
                byte_offset: self.byte_offset,
            });
        }
        if self.page_count() != self.pfns.len() as u64 {
            return Err(RangeError::PfnCount {
                index,
                expected: self.page_count(),
                actual: self.pfns.len(),
            });
        }
        Ok(())
    }

    /// The range's 8-byte header as it appears on the wire.
    pub fn header(&self) -> GpaRangeHeader {
        GpaRangeHeader {
            byte_count: U32::new(self.byte_count),
            byte_offset: U32::new(self.byte_offset),
        }
    }
}

/// A validated sequence of GPA ranges as encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpaRanges<'a> {
    bytes: &'a [u8],
    count: u32,
}

impl<'a> GpaRanges<'a> {
    /// Parses `count` ranges (at least one) from the start of `bytes`. Returns them and the bytes
    /// after the last range.
    ///
    /// Each range must be non-empty, start inside its first page and have its PFNs inside
    /// `bytes`. The loop is bounded by `bytes`, not by `count`: every range takes at least 16
    /// bytes.
    ///
    /// # Errors
    /// [`RangeError::NoRanges`], [`RangeError::Truncated`], [`RangeError::EmptyRange`],
    /// [`RangeError::OffsetTooLarge`].
    pub fn parse(bytes: &'a [u8], count: u32) -> Result<(Self, &'a [u8]), RangeError> {
        if count == 0 {
            return Err(RangeError::NoRanges);
        }
        let mut rest = bytes;
        for index in 0..count as usize {
            let (range, after) = parse_one(rest, index)?;
            range.validate(index)?;
            rest = after;
        }
        let used = bytes.len() - rest.len();
        Ok((
            Self {
                bytes: bytes.get(..used).unwrap_or_default(),
                count,
            },
            rest,
        ))
    }

    /// Encodes `ranges` (at least one, each valid) into the start of `buf` and returns the view
    /// of what was written.
    ///
    /// # Errors
    /// [`RangeError::NoRanges`], the range's own validation errors,
    /// [`RangeError::BufferTooSmall`].
    pub fn encode<'b>(
        ranges: &[GpaRange<'_>],
        buf: &'b mut [u8],
    ) -> Result<GpaRanges<'b>, RangeError> {
        if ranges.is_empty() {
            return Err(RangeError::NoRanges);
        }
        let count = u32::try_from(ranges.len()).map_err(|_| RangeError::BufferTooSmall {
            needed: usize::MAX,
            len: buf.len(),
        })?;
        let mut needed = 0usize;
        for (index, range) in ranges.iter().enumerate() {
            range.validate(index)?;
            needed = needed.saturating_add(range.encoded_len());
        }
        let len = buf.len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(RangeError::BufferTooSmall { needed, len });
        };
        let mut at = 0;
        for range in ranges {
            put(out, &mut at, range.header().as_bytes());
            for pfn in range.pfns.iter() {
                put(out, &mut at, &pfn.to_le_bytes());
            }
        }
        Ok(GpaRanges { bytes: out, count })
    }

    /// `count` ranges that [`parse`](Self::parse) accepted earlier, filling `bytes` exactly
    /// (a complete GPADL's range buffer): no second parse.
    #[cfg(feature = "alloc")]
    pub(crate) fn parsed(bytes: &'a [u8], count: u32) -> Self {
        Self { bytes, count }
    }

    /// Number of ranges.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The encoded ranges.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Total bytes described (sum of the byte counts).
    pub fn total_len(&self) -> u64 {
        self.iter().map(|r| u64::from(r.byte_count)).sum()
    }

    /// The ranges in order.
    pub fn iter(&self) -> GpaRangeIter<'a> {
        GpaRangeIter {
            rest: self.bytes,
            left: self.count,
        }
    }

    /// The ranges from range number `index` on, whose header starts `at` bytes into
    /// [`as_bytes`](Self::as_bytes) (as a range index recorded them). Past the end: none.
    #[cfg(feature = "alloc")]
    pub(crate) fn iter_from(&self, index: u32, at: usize) -> GpaRangeIter<'a> {
        match (self.bytes.get(at..), self.count.checked_sub(index)) {
            (Some(rest), Some(left)) => GpaRangeIter { rest, left },
            _ => GpaRangeIter { rest: &[], left: 0 },
        }
    }
}

impl<'a> IntoIterator for GpaRanges<'a> {
    type Item = GpaRange<'a>;
    type IntoIter = GpaRangeIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`GpaRanges`].
#[derive(Clone, Debug)]
pub struct GpaRangeIter<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for GpaRangeIter<'a> {
    type Item = GpaRange<'a>;

    fn next(&mut self) -> Option<GpaRange<'a>> {
        if self.left == 0 {
            return None;
        }
        // Already validated; a failure here can only mean the bytes were not from `parse`.
        let (range, rest) = parse_one(self.rest, 0).ok()?;
        self.rest = rest;
        self.left -= 1;
        Some(range)
    }
}

/// Reads one range header and its PFNs from the start of `bytes` (not validating the range).
fn parse_one(bytes: &[u8], index: usize) -> Result<(GpaRange<'_>, &[u8]), RangeError> {
    let (header, rest) =
        GpaRangeHeader::read_from_prefix(bytes).map_err(|_| RangeError::Truncated { index })?;
    let byte_offset = header.byte_offset.get();
    let byte_count = header.byte_count.get();
    let pages = range_page_count(byte_offset, byte_count);
    let pages = usize::try_from(pages).map_err(|_| RangeError::Truncated { index })?;
    let (pfns, rest) = <[U64]>::ref_from_prefix_with_elems(rest, pages)
        .map_err(|_| RangeError::Truncated { index })?;
    Ok((
        GpaRange {
            byte_offset,
            byte_count,
            pfns: Pfns::Wire(pfns),
        },
        rest,
    ))
}

fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(*at..*at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    *at += bytes.len();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_lists_compare_by_value_whatever_their_form() {
        let a = [0x10u64, 0x11];
        let mut buf = [0u8; 24];
        let enc = GpaRanges::encode(&[GpaRange::new(0, 8192, &a)], &mut buf).unwrap();
        let wire = enc.iter().next().unwrap().pfns;
        assert!(matches!(wire, Pfns::Wire(_)));
        assert_eq!(wire, Pfns::Native(&a));
        assert_ne!(wire, Pfns::Native(&[0x10, 0x12]));
        assert_ne!(wire, Pfns::Native(&a[..1]));
        assert_ne!(Pfns::Native(&[0x10]), Pfns::Native(&[0x11]));
        assert!(!wire.is_empty());
        assert!(Pfns::Native(&[]).is_empty());
    }

    #[test]
    fn iteration_stops_after_the_declared_count() {
        let (a, b) = ([0x10u64], [0x20u64]);
        let mut buf = [0u8; 32];
        let two = [GpaRange::new(0, 10, &a), GpaRange::new(0, 20, &b)];
        GpaRanges::encode(&two, &mut buf).unwrap();
        let one = GpaRanges::parsed(&buf, 1);
        assert_eq!(one.iter().count(), 1);
        assert_eq!(one.iter().next().unwrap().byte_count, 10);
    }

    #[test]
    fn encode_parse_round_trip() {
        let a = [0x1000u64, 0x2000, 0x3000];
        let b = [0x77u64];
        let ranges = [GpaRange::new(0x10, 8192, &a), GpaRange::new(0, 4096, &b)];
        let mut buf = [0u8; 64];
        let enc = GpaRanges::encode(&ranges, &mut buf).unwrap();
        assert_eq!(enc.as_bytes().len(), 8 + 24 + 8 + 8);
        assert_eq!(enc.total_len(), 8192 + 4096);
        let bytes = enc.as_bytes();
        assert_eq!(&bytes[..8], &[0, 0x20, 0, 0, 0x10, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &0x1000u64.to_le_bytes());
        let (parsed, rest) = GpaRanges::parse(&buf, 2).unwrap();
        assert_eq!(rest.len(), 64 - 48);
        let got: std::vec::Vec<_> = parsed.iter().collect();
        assert_eq!(got, ranges);
    }

    #[test]
    fn malformed_ranges_are_rejected() {
        let mut buf = [0u8; 32];
        // byte_count 0
        assert_eq!(
            GpaRanges::parse(&buf, 1).unwrap_err(),
            RangeError::EmptyRange { index: 0 }
        );
        assert_eq!(GpaRanges::parse(&buf, 0).unwrap_err(), RangeError::NoRanges);
        // offset 0x1000
        buf[..8].copy_from_slice(&[1, 0, 0, 0, 0, 0x10, 0, 0]);
        assert_eq!(
            GpaRanges::parse(&buf, 1).unwrap_err(),
            RangeError::OffsetTooLarge {
                index: 0,
                byte_offset: 0x1000
            }
        );
        // 3 pages but room for one PFN
        buf[..8].copy_from_slice(&[1, 0x20, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            GpaRanges::parse(&buf[..16], 1).unwrap_err(),
            RangeError::Truncated { index: 0 }
        );
        // u32::MAX bytes: many pages, never allocates, just fails
        buf[..8].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xf, 0, 0]);
        assert_eq!(
            GpaRanges::parse(&buf, 1).unwrap_err(),
            RangeError::Truncated { index: 0 }
        );
        // A second range that is missing.
        buf[..8].copy_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            GpaRanges::parse(&buf[..16], u32::MAX).unwrap_err(),
            RangeError::Truncated { index: 1 }
        );
        // Encoding checks PFN counts.
        let pfns = [1u64, 2];
        assert_eq!(
            GpaRanges::encode(&[GpaRange::new(0, 4096, &pfns)], &mut [0u8; 64]).unwrap_err(),
            RangeError::PfnCount {
                index: 0,
                expected: 1,
                actual: 2
            }
        );
        assert!(matches!(
            GpaRanges::encode(&[GpaRange::new(0, 8192, &pfns)], &mut [0u8; 16]),
            Err(RangeError::BufferTooSmall {
                needed: 24,
                len: 16
            })
        ));
        assert_eq!(GpaRange::whole_pages(&pfns).byte_count, 8192);
    }
}
