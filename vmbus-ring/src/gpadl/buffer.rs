//! A byte-addressable view of guest memory described by GPA ranges.

use super::range::{GpaRange, GpaRanges};
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

/// The memory described by validated GPA ranges (a GPADL's, or a GPA-direct packet's), seen as
/// one byte buffer: the ranges concatenated in order.
///
/// Construction checks every PFN against the [`GuestMemoryMap`]; each access is bounds-checked
/// against the ranges' total length before a byte moves, and each page is looked up again
/// when it is touched (so a map that shrinks later yields an error, not a stale access).
/// Pages are accessed only through their atomics; nothing is cached or pinned.
#[derive(Debug, Clone, Copy)]
pub struct GpaBuffer<'a, M: ?Sized> {
    ranges: GpaRanges<'a>,
    map: &'a M,
    len: u64,
}

impl<'a, M: GuestMemoryMap + ?Sized> GpaBuffer<'a, M> {
    /// A view of `ranges` in `map`.
    ///
    /// # Errors
    /// [`GpaAccessError::UnmappedPfn`] for the first PFN that is not guest RAM.
    pub fn new(ranges: GpaRanges<'a>, map: &'a M) -> Result<Self, GpaAccessError> {
        for range in ranges.iter() {
            for pfn in range.pfns.iter() {
                if map.page(pfn).is_none() {
                    return Err(GpaAccessError::UnmappedPfn { pfn });
                }
            }
        }
        Ok(Self {
            len: ranges.total_len(),
            ranges,
            map,
        })
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
    /// page left guest RAM since construction (a prefix may have been copied).
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

    /// Calls `f(page, offset_in_page, buf_start, n)` for each per-page piece of the (already
    /// bounds-checked) access `[offset, offset + len)`.
    fn walk(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(&[core::sync::atomic::AtomicU64], usize, usize, usize),
    ) -> Result<(), GpaAccessError> {
        let mut done = 0usize;
        let mut range_start = 0u64;
        for range in self.ranges.iter() {
            if done == len {
                break;
            }
            let range_end = range_start + u64::from(range.byte_count);
            let pos = offset + done as u64;
            if pos < range_end {
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
    use std::vec::Vec;

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
