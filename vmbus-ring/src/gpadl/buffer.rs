//! A byte-addressable view of guest memory described by GPA ranges.
//!
//! An access finds the range its first byte lies in, then copies page by page. With `alloc`,
//! a buffer of more than 16 ranges carries a *range index*: the buffer offset and encoded
//! position of every 16th range, computed once when the buffer (or the GPADL) is built. An
//! access binary-searches it and parses at most 16 range headers from there, so its cost does
//! not grow with the number of ranges before it (a guest may describe a buffer as thousands of
//! one-page ranges). Without `alloc`, or for 16 ranges or fewer, the walk starts at the first
//! range.

#[cfg(feature = "alloc")]
use alloc::{borrow::Cow, vec::Vec};

use super::range::{GpaRange, GpaRangeIter, GpaRanges};
use super::GuestMemoryMap;
use crate::defs::PAGE_SIZE;
use crate::memory::{read_bytes, write_bytes};

/// A copy into or out of guest memory failed; nothing outside the buffer was touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GpaAccessError {
    /// The access does not lie inside the buffer.
    #[error("{len} bytes at offset {offset} are outside the {size}-byte buffer")]
    OutOfBounds {
        /// Offset of the access.
        offset: u64,
        /// Length of the access.
        len: usize,
        /// Size of the buffer.
        size: u64,
    },
    /// A page of the buffer is not (or no longer) guest RAM.
    #[error("page frame {pfn:#x} is not guest RAM")]
    UnmappedPfn {
        /// The offending PFN.
        pfn: u64,
    },
}

/// Ranges per entry of a range index: an access parses at most this many range headers after
/// its binary search, and the index costs about 1/16 of the encoded ranges' bytes (one 16-byte
/// entry per 16 ranges, each range at least 16 bytes; at most 1/8 with the rounding up).
#[cfg(feature = "alloc")]
pub(crate) const INDEX_STRIDE: usize = 16;

/// Where range number `k * INDEX_STRIDE` starts (entry `k` of a range index).
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Its first byte's offset in the buffer (the byte counts of the ranges before it).
    start: u64,
    /// Its header's offset in the encoded ranges.
    at: usize,
}

/// The total length of validated `ranges` and their range index (empty for
/// [`INDEX_STRIDE`] ranges or fewer, where a walk from the first is as quick). One pass over
/// the range headers.
#[cfg(feature = "alloc")]
pub(crate) fn range_index(ranges: GpaRanges<'_>) -> (u64, Vec<IndexEntry>) {
    let count = ranges.count() as usize;
    let mut entries = if count > INDEX_STRIDE {
        Vec::with_capacity(count.div_ceil(INDEX_STRIDE))
    } else {
        Vec::new()
    };
    let (mut start, mut at) = (0u64, 0usize);
    for (i, range) in ranges.iter().enumerate() {
        if count > INDEX_STRIDE && i % INDEX_STRIDE == 0 {
            entries.push(IndexEntry { start, at });
        }
        start += u64::from(range.byte_count);
        at += range.encoded_len();
    }
    (start, entries)
}

/// Checks every PFN of `ranges` against `map`.
///
/// # Errors
/// [`GpaAccessError::UnmappedPfn`] for the first PFN that is not guest RAM.
pub(crate) fn check_pfns<M: GuestMemoryMap + ?Sized>(
    ranges: GpaRanges<'_>,
    map: &M,
) -> Result<(), GpaAccessError> {
    for range in ranges.iter() {
        for pfn in range.pfns.iter() {
            if map.page(pfn).is_none() {
                return Err(GpaAccessError::UnmappedPfn { pfn });
            }
        }
    }
    Ok(())
}

/// The memory described by validated GPA ranges (a GPADL's, or a GPA-direct packet's), seen as
/// one byte buffer: the ranges concatenated in order.
///
/// [`new`](Self::new) and [`Gpadl::buffer`] check every PFN against the [`GuestMemoryMap`]
/// (one pass over the PFNs); [`Gpadl::lazy_buffer`] skips that pass, for a host that checked
/// the GPADL's pages when it accepted it. Either way each access is bounds-checked against the
/// ranges' total length before a byte moves, and each page is looked up again when it is
/// touched (so a map that shrinks later yields an error, not a stale access). Pages are
/// accessed only through their atomics; nothing is cached or pinned.
///
/// An access costs a binary search of a range index (one entry per 16 ranges), at most 16
/// range headers, and one map lookup per page it touches. [`new`](Self::new) builds the index
/// (with `alloc`, for more than 16 ranges); a [`Gpadl`] computes its own once, when it
/// completes, and its buffers borrow it.
///
/// [`Gpadl`]: super::Gpadl
/// [`Gpadl::buffer`]: super::Gpadl::buffer
/// [`Gpadl::lazy_buffer`]: super::Gpadl::lazy_buffer
#[derive(Debug)]
pub struct GpaBuffer<'a, M: ?Sized> {
    ranges: GpaRanges<'a>,
    map: &'a M,
    len: u64,
    #[cfg(feature = "alloc")]
    index: Cow<'a, [IndexEntry]>,
}

impl<M: ?Sized> Clone for GpaBuffer<'_, M> {
    fn clone(&self) -> Self {
        Self {
            ranges: self.ranges,
            map: self.map,
            len: self.len,
            #[cfg(feature = "alloc")]
            index: self.index.clone(),
        }
    }
}

impl<'a, M: GuestMemoryMap + ?Sized> GpaBuffer<'a, M> {
    /// A view of `ranges` in `map`.
    ///
    /// # Errors
    /// [`GpaAccessError::UnmappedPfn`] for the first PFN that is not guest RAM.
    pub fn new(ranges: GpaRanges<'a>, map: &'a M) -> Result<Self, GpaAccessError> {
        check_pfns(ranges, map)?;
        #[cfg(feature = "alloc")]
        let (len, index) = {
            let (len, index) = range_index(ranges);
            (len, Cow::Owned(index))
        };
        #[cfg(not(feature = "alloc"))]
        let len = ranges.total_len();
        Ok(Self {
            ranges,
            map,
            len,
            #[cfg(feature = "alloc")]
            index,
        })
    }

    /// A view of `ranges` in `map` with the total length and range index
    /// [`index`] computed for them, its PFNs not checked here.
    #[cfg(feature = "alloc")]
    pub(crate) fn indexed(
        ranges: GpaRanges<'a>,
        map: &'a M,
        len: u64,
        index: &'a [IndexEntry],
    ) -> Self {
        Self {
            ranges,
            map,
            len,
            index: Cow::Borrowed(index),
        }
    }

    /// Total bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ranges.
    pub fn ranges(&self) -> GpaRanges<'a> {
        self.ranges
    }

    /// Copies `buf.len()` bytes starting at `offset` out of guest memory.
    ///
    /// # Errors
    /// [`GpaAccessError::OutOfBounds`] (nothing copied), [`GpaAccessError::UnmappedPfn`] if a
    /// page is not guest RAM (a prefix may have been copied).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), GpaAccessError> {
        self.check(offset, buf.len())?;
        self.walk(offset, buf.len(), |page_bytes, at, start, n| {
            if let Some(dst) = buf.get_mut(start..start + n) {
                read_bytes(page_bytes, at, dst);
            }
        })
    }

    /// Copies `buf` into guest memory starting at `offset`.
    ///
    /// # Errors
    /// As for [`read_at`](Self::read_at).
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), GpaAccessError> {
        self.check(offset, buf.len())?;
        self.walk(offset, buf.len(), |page_bytes, at, start, n| {
            if let Some(src) = buf.get(start..start + n) {
                write_bytes(page_bytes, at, src);
            }
        })
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), GpaAccessError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(GpaAccessError::OutOfBounds {
                offset,
                len,
                size: self.len,
            }),
        }
    }

    /// The ranges from the last indexed one starting at or before `offset` (the first range
    /// without an index), and the buffer offset where that range starts.
    #[cfg_attr(not(feature = "alloc"), allow(unused_variables))]
    fn seek(&self, offset: u64) -> (GpaRangeIter<'a>, u64) {
        #[cfg(feature = "alloc")]
        {
            let after = self.index.partition_point(|e| e.start <= offset);
            if let Some(k) = after.checked_sub(1) {
                if let Some(entry) = self.index.get(k) {
                    let first = u32::try_from(k * INDEX_STRIDE).unwrap_or(u32::MAX);
                    return (self.ranges.iter_from(first, entry.at), entry.start);
                }
            }
        }
        (self.ranges.iter(), 0)
    }

    /// Calls `f(page, offset_in_page, buf_start, n)` for each per-page piece of the (already
    /// bounds-checked) access `[offset, offset + len)`.
    fn walk(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(&[core::sync::atomic::AtomicU64], usize, usize, usize),
    ) -> Result<(), GpaAccessError> {
        let (ranges, mut range_start) = self.seek(offset);
        let mut done = 0usize;
        for range in ranges {
            if done == len {
                break;
            }
            let range_end = range_start + u64::from(range.byte_count);
            let pos = offset + done as u64;
            if pos < range_end {
                // `pos >= range_start` (the seek and the loop keep it so), and
                // `pos - range_start < byte_count <= u32::MAX`.
                let within = (pos - range_start) as usize;
                let n = (len - done).min(range.byte_count as usize - within);
                self.copy_in_range(&range, within, done, n, &mut f)?;
                done += n;
            }
            range_start = range_end;
        }
        Ok(())
    }

    fn copy_in_range(
        &self,
        range: &GpaRange<'_>,
        within: usize,
        buf_start: usize,
        n: usize,
        f: &mut impl FnMut(&[core::sync::atomic::AtomicU64], usize, usize, usize),
    ) -> Result<(), GpaAccessError> {
        let mut done = 0;
        while done < n {
            // In u64: offset + position can exceed a 32-bit usize.
            let abs = u64::from(range.byte_offset) + (within + done) as u64;
            let in_page = (abs % PAGE_SIZE as u64) as usize;
            let chunk = (n - done).min(PAGE_SIZE - in_page);
            let pfn = usize::try_from(abs / PAGE_SIZE as u64)
                .ok()
                .and_then(|page| range.pfns.get(page))
                .unwrap_or(u64::MAX);
            let page = self
                .map
                .page(pfn)
                .ok_or(GpaAccessError::UnmappedPfn { pfn })?;
            f(page, in_page, buf_start + done, chunk);
            done += chunk;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpadl::GuestRam;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Guest RAM of the model tests: `PAGES` pages at PFN `BASE`.
    const BASE: u64 = 0x100;
    const PAGES: u64 = 16;

    /// The guest-physical address of every byte of `ranges`, in buffer order: what a walk
    /// must visit, by the definition of a GPA range.
    fn model(ranges: &[GpaRange<'_>]) -> Vec<u64> {
        let mut gpas = Vec::new();
        for r in ranges {
            for i in 0..u64::from(r.byte_count) {
                let abs = u64::from(r.byte_offset) + i;
                gpas.push(r.pfns.get((abs / 4096) as usize).unwrap() * 4096 + abs % 4096);
            }
        }
        gpas
    }

    fn snapshot(ram: &GuestRam<std::boxed::Box<[core::sync::atomic::AtomicU64]>>) -> Vec<u8> {
        let mut image = std::vec![0u8; (PAGES * 4096) as usize];
        assert!(ram.read_gpa(BASE * 4096, &mut image));
        image
    }

    /// Ranges of the given `(byte_offset, byte_count, seed)` shapes over pages of the model RAM
    /// (pages may repeat, within a range and across ranges).
    fn pfn_lists(shapes: &[(u32, u32, u64)]) -> Vec<Vec<u64>> {
        shapes
            .iter()
            .map(|&(off, count, seed)| {
                let n = crate::defs::range_page_count(off, count);
                (0..n)
                    .map(|j| BASE + seed.wrapping_add(j.wrapping_mul(7919)) % PAGES)
                    .collect()
            })
            .collect()
    }

    /// Checks `buf` (over `ranges`, in `ram` whose image the model holds in `image`) against the
    /// model for each `(offset, len, write, seed)` access; the offset and length are reduced
    /// into the buffer.
    fn check_accesses(
        buf: &GpaBuffer<'_, GuestRam<std::boxed::Box<[core::sync::atomic::AtomicU64]>>>,
        gpas: &[u64],
        image: &mut [u8],
        accesses: &[(u64, usize, bool, u8)],
    ) -> Result<(), TestCaseError> {
        let len = gpas.len() as u64;
        prop_assert_eq!(buf.len(), len);
        let at = |gpa: u64| (gpa - BASE * 4096) as usize;
        for &(offset, n, write, seed) in accesses {
            let offset = offset % (len + 1);
            let n = n.min((len - offset) as usize);
            let span = &gpas[offset as usize..offset as usize + n];
            if write {
                let data: Vec<u8> = (0..n).map(|k| (k as u8).wrapping_mul(31) ^ seed).collect();
                buf.write_at(offset, &data).unwrap();
                for (&gpa, &b) in span.iter().zip(&data) {
                    image[at(gpa)] = b;
                }
                prop_assert_eq!(&snapshot(buf.map)[..], &image[..]);
            } else {
                let mut got = std::vec![0u8; n];
                buf.read_at(offset, &mut got).unwrap();
                let want: Vec<u8> = span.iter().map(|&gpa| image[at(gpa)]).collect();
                prop_assert_eq!(got, want);
            }
            // One byte past the end, from the end or from the access's offset: refused.
            let mut one = [0u8; 1];
            prop_assert!(buf.read_at(len, &mut one).is_err());
            prop_assert!(buf.write_at(len, &one).is_err());
            let mut past = std::vec![0u8; (len - offset) as usize + 1];
            prop_assert!(buf.read_at(offset, &mut past).is_err());
        }
        Ok(())
    }

    /// Thousands of one-page ranges (the layout that made every access walk from the first):
    /// a byte read at each range's start and end through the index comes from the right page.
    #[test]
    fn many_one_page_ranges_are_indexed() {
        let ram = GuestRam::new_boxed(BASE, PAGES as usize).unwrap();
        let image: Vec<u8> = (0..PAGES * 4096)
            .map(|i| (i / 4096 * 17 + i % 251) as u8)
            .collect();
        assert!(ram.write_gpa(BASE * 4096, &image));
        let count = if cfg!(miri) { 100 } else { 4095 };
        let pfns: Vec<u64> = (0..count).map(|i| BASE + (i * 5 + 3) % PAGES).collect();
        let list: Vec<GpaRange<'_>> = pfns.chunks(1).map(|p| GpaRange::new(0, 4096, p)).collect();
        let mut rbuf = std::vec![0u8; 16 * list.len()];
        let ranges = GpaRanges::encode(&list, &mut rbuf).unwrap();
        let buf = GpaBuffer::new(ranges, &ram).unwrap();
        assert_eq!(buf.index.len(), (count as usize).div_ceil(INDEX_STRIDE));
        for (i, &pfn) in pfns.iter().enumerate() {
            let page = (pfn - BASE) as usize * 4096;
            let mut two = [0u8; 2];
            buf.read_at(i as u64 * 4096 + 4095, &mut two[..1]).unwrap();
            assert_eq!(two[0], image[page + 4095], "range {i}");
            if i + 1 < pfns.len() {
                buf.read_at(i as u64 * 4096 + 4095, &mut two).unwrap();
                let next = (pfns[i + 1] - BASE) as usize * 4096;
                assert_eq!(
                    two,
                    [image[page + 4095], image[next]],
                    "ranges {i} and {}",
                    i + 1
                );
            }
        }
    }

    proptest! {
        #![proptest_config(crate::test_config())]

        /// Reads and writes over many ranges, through the range index and through a walk from
        /// the first range (the way without an index), move the bytes the model says.
        #[test]
        fn walks_match_the_model(
            shapes in proptest::collection::vec(
                (0u32..4096, 1u32..if cfg!(miri) { 1500 } else { 6000 }, any::<u64>()),
                1..if cfg!(miri) { 24 } else { 60 },
            ),
            accesses in proptest::collection::vec(
                (any::<u64>(), 0usize..9000, any::<bool>(), any::<u8>()),
                1..if cfg!(miri) { 4 } else { 8 },
            ),
        ) {
            let pfns = pfn_lists(&shapes);
            let list: Vec<GpaRange<'_>> = shapes
                .iter()
                .zip(&pfns)
                .map(|(&(off, count, _), p)| GpaRange::new(off, count, p))
                .collect();
            let mut rbuf = std::vec![0u8; list.iter().map(GpaRange::encoded_len).sum()];
            let ranges = GpaRanges::encode(&list, &mut rbuf).unwrap();
            let gpas = model(&list);
            let ram = GuestRam::new_boxed(BASE, PAGES as usize).unwrap();
            let mut image: Vec<u8> = (0..PAGES * 4096).map(|i| (i * 13 + i / 4096) as u8).collect();
            prop_assert!(ram.write_gpa(BASE * 4096, &image));
            let indexed = GpaBuffer::new(ranges, &ram).unwrap();
            prop_assert_eq!(indexed.index.is_empty(), list.len() <= INDEX_STRIDE);
            check_accesses(&indexed, &gpas, &mut image, &accesses)?;
            let linear = GpaBuffer::indexed(ranges, &ram, gpas.len() as u64, &[]);
            check_accesses(&linear, &gpas, &mut image, &accesses)?;
        }
    }

    #[test]
    fn scattered_ranges_read_and_write() {
        let ram = GuestRam::new_boxed(0x100, 8).unwrap();
        // Range 0: 5000 bytes at offset 100 over pages 0x105, 0x102; range 1: 10 bytes on 0x107.
        let p0 = [0x105u64, 0x102];
        let p1 = [0x107u64];
        let mut rbuf = [0u8; 64];
        let ranges = GpaRanges::encode(
            &[GpaRange::new(100, 5000, &p0), GpaRange::new(4000, 10, &p1)],
            &mut rbuf,
        )
        .unwrap();
        let buf = GpaBuffer::new(ranges, &ram).unwrap();
        assert_eq!(buf.len(), 5010);
        assert!(!buf.is_empty());
        let data: Vec<u8> = (0..5010u32).map(|i| (i % 251) as u8).collect();
        buf.write_at(0, &data).unwrap();
        // Where the bytes went in guest-physical terms.
        let mut b = [0u8; 4];
        assert!(ram.read_gpa(0x105 * 4096 + 100, &mut b));
        assert_eq!(b, [0, 1, 2, 3]);
        assert!(ram.read_gpa(0x102 * 4096, &mut b));
        assert_eq!(b[0], data[3996]);
        assert!(ram.read_gpa(0x107 * 4096 + 4000, &mut b));
        assert_eq!(b[0], data[5000]);
        let mut back = std::vec![0u8; 5010];
        buf.read_at(0, &mut back).unwrap();
        assert_eq!(back, data);
        // Across the range boundary: the last 5 bytes of range 0, all 10 of range 1.
        let mut mid = [0u8; 15];
        buf.read_at(4995, &mut mid).unwrap();
        assert_eq!(&mid[..], &data[4995..5010]);
    }

    #[test]
    fn bounds_and_map_are_enforced() {
        let ram = GuestRam::new_boxed(0x100, 2).unwrap();
        let p = [0x100u64];
        let mut rbuf = [0u8; 16];
        let ranges = GpaRanges::encode(&[GpaRange::new(0, 4096, &p)], &mut rbuf).unwrap();
        let buf = GpaBuffer::new(ranges, &ram).unwrap();
        let mut x = [0u8; 2];
        assert_eq!(
            buf.read_at(4095, &mut x).unwrap_err(),
            GpaAccessError::OutOfBounds {
                offset: 4095,
                len: 2,
                size: 4096
            }
        );
        assert!(buf.write_at(u64::MAX, &x).is_err());
        assert!(buf.read_at(4094, &mut x).is_ok());
        let bad = [0x102u64];
        let mut rbuf = [0u8; 16];
        let ranges = GpaRanges::encode(&[GpaRange::new(0, 1, &bad)], &mut rbuf).unwrap();
        assert_eq!(
            GpaBuffer::new(ranges, &ram).unwrap_err(),
            GpaAccessError::UnmappedPfn { pfn: 0x102 }
        );
    }
}
