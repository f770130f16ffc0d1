//! Ring memory over scattered 4 KiB pages: how a host sees a ring described by a GPADL.

use super::{
    check_data_len, for_each_wrapped, load_u32, read_bytes, store_u32, write_bytes, ControlWord,
    MemoryError, PageRef, RingMemory,
};
use crate::defs::PAGE_SIZE;

/// A ring whose control page and data pages are separate 4 KiB pages anywhere in memory.
///
/// `P` holds the data pages in ring order: a `Vec<PageRef>` ([`RingPages`]) or, without `alloc`,
/// a slice or array the caller provides. Accesses that cross a page boundary or the end of the
/// data area are split into per-page pieces; each page is touched only through its atomics.
#[derive(Debug)]
pub struct PagedRingMemory<'a, P> {
    control: PageRef<'a>,
    data: P,
    data_len: u32,
}

impl<'a, P: AsRef<[PageRef<'a>]>> PagedRingMemory<'a, P> {
    /// A ring with control page `control` and data pages `data` (at least one).
    ///
    /// # Errors
    /// [`MemoryError::DataLength`] if `data` is empty or larger than
    /// [`MAX_DATA_LEN`](super::MAX_DATA_LEN).
    pub fn new(control: PageRef<'a>, data: P) -> Result<Self, MemoryError> {
        let data_len = check_data_len(data.as_ref().len().saturating_mul(PAGE_SIZE))?;
        Ok(Self {
            control,
            data,
            data_len,
        })
    }

    /// Number of data pages.
    pub fn data_pages(&self) -> usize {
        self.data.as_ref().len()
    }

    /// Calls `f(page, offset_in_page, buf_start, len)` for each per-page piece of a wrapped
    /// access.
    fn pieces(&self, offset: u32, len: usize, mut f: impl FnMut(PageRef<'a>, usize, usize, usize)) {
        let pages = self.data.as_ref();
        for_each_wrapped(
            self.data_len as usize,
            offset as usize,
            len,
            |at, start, n| {
                let mut done = 0;
                while done < n {
                    let pos = at + done;
                    let in_page = pos % PAGE_SIZE;
                    let chunk = (n - done).min(PAGE_SIZE - in_page);
                    if let Some(&page) = pages.get(pos / PAGE_SIZE) {
                        f(page, in_page, start + done, chunk);
                    }
                    done += chunk;
                }
            },
        );
    }
}

impl<'a, P: AsRef<[PageRef<'a>]>> RingMemory for PagedRingMemory<'a, P> {
    fn data_len(&self) -> u32 {
        self.data_len
    }

    fn load_control(&self, word: ControlWord) -> u32 {
        load_u32(self.control, word.offset())
    }

    fn store_control(&self, word: ControlWord, value: u32) {
        store_u32(self.control, word.offset(), value);
    }

    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        self.pieces(offset, buf.len(), |page, at, start, n| {
            if let Some(piece) = buf.get_mut(start..start + n) {
                read_bytes(page, at, piece);
            }
        });
    }

    fn write_at(&self, offset: u32, buf: &[u8]) {
        self.pieces(offset, buf.len(), |page, at, start, n| {
            if let Some(piece) = buf.get(start..start + n) {
                write_bytes(page, at, piece);
            }
        });
    }
}

/// The data pages of a ring built from a GPADL.
#[cfg(feature = "alloc")]
pub type RingPages<'a> = alloc::vec::Vec<PageRef<'a>>;

/// Builds the host's view of a channel's two rings from the ring GPADL's page list.
///
/// Pages `[0, downstream_offset)` form the guest-to-host ring (the host's *incoming* ring) and
/// pages `[downstream_offset, n)` the host-to-guest ring (the host's *outgoing* ring); the first
/// page of each is its control page. `downstream_offset` is OPENCHANNEL's
/// `downstream_ringbuffer_pageoffset`. Every PFN is checked against `map` once, here.
///
/// Returns `(incoming, outgoing)`.
///
/// # Errors
/// [`MemoryError::DownstreamOffset`] if either ring would lack a control page and a data page,
/// [`MemoryError::UnmappedPfn`] for a PFN outside guest RAM, [`MemoryError::DataLength`] for a
/// ring over [`MAX_DATA_LEN`](super::MAX_DATA_LEN).
#[cfg(feature = "alloc")]
#[allow(clippy::type_complexity)]
pub fn host_ring_pair<'a, M: crate::gpadl::GuestMemoryMap + ?Sized>(
    pfns: crate::gpadl::Pfns<'_>,
    downstream_offset: u32,
    map: &'a M,
) -> Result<
    (
        PagedRingMemory<'a, RingPages<'a>>,
        PagedRingMemory<'a, RingPages<'a>>,
    ),
    MemoryError,
> {
    let split = downstream_offset as usize;
    if split < 2 || pfns.len() < split.saturating_add(2) {
        return Err(MemoryError::DownstreamOffset {
            offset: downstream_offset,
            pages: pfns.len(),
        });
    }
    let resolve = |index: usize| {
        let pfn = pfns.get(index).ok_or(MemoryError::NotRingGpadl)?;
        map.page(pfn).ok_or(MemoryError::UnmappedPfn { pfn })
    };
    let build =
        |first: usize, end: usize| -> Result<PagedRingMemory<'a, RingPages<'a>>, MemoryError> {
            let control = resolve(first)?;
            let data = (first + 1..end)
                .map(resolve)
                .collect::<Result<RingPages<'a>, _>>()?;
            PagedRingMemory::new(control, data)
        };
    Ok((build(0, split)?, build(split, pfns.len())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpadl::{GuestRam, Pfns};
    use crate::memory::{FlatRingMemory, WORDS_PER_PAGE};

    #[test]
    fn paged_matches_flat_byte_for_byte() {
        // Guest RAM of 8 pages at PFN 0x100; a ring of control page 5 and data pages 2, 7, 0.
        let ram = GuestRam::new_boxed(0x100, 8).unwrap();
        let page = |i: u64| ram.page_ref(0x100 + i).unwrap();
        let data = [page(2), page(7), page(0)];
        let paged = PagedRingMemory::new(page(5), &data[..]).unwrap();
        let flat = FlatRingMemory::new_boxed(3 * 4096).unwrap();
        assert_eq!(paged.data_len(), flat.data_len());
        let src: std::vec::Vec<u8> = (0..9000u32).map(|i| (i * 7 + 3) as u8).collect();
        for (off, len) in [(0u32, 9000usize), (4090, 20), (12280, 30), (8191, 4097)] {
            paged.write_at(off, &src[..len]);
            flat.write_at(off, &src[..len]);
            let mut a = std::vec![0u8; 3 * 4096];
            let mut b = std::vec![0u8; 3 * 4096];
            paged.read_at(0, &mut a);
            flat.read_at(0, &mut b);
            assert_eq!(a, b, "offset {off} len {len}");
        }
        paged.store_control(ControlWord::PendingSendSize, 77);
        assert_eq!(crate::memory::load_u32(page(5), 12), 77);
        // Data page 1 of the ring is guest page 7.
        let mut expect = [0u8; 8];
        paged.read_at(4096, &mut expect);
        let mut got = [0u8; 8];
        crate::memory::read_bytes(page(7), 0, &mut got);
        assert_eq!(expect, got);
        assert_eq!(page(0).len(), WORDS_PER_PAGE);
    }

    #[test]
    fn host_pair_from_pfns() {
        let ram = GuestRam::new_boxed(0x100, 8).unwrap();
        let pfns: std::vec::Vec<u64> = (0x100..0x108).collect();
        let (incoming, outgoing) = host_ring_pair(Pfns::Native(&pfns), 4, &ram).unwrap();
        assert_eq!(incoming.data_len(), 3 * 4096);
        assert_eq!(outgoing.data_pages(), 3);
        outgoing.store_control(ControlWord::WriteIndex, 24);
        assert_eq!(crate::memory::load_u32(ram.page_ref(0x104).unwrap(), 0), 24);
        // 2 and 6 of 8 pages leave each ring a control page and a data page; 1 and 7 do not.
        for (offset, outgoing_pages) in [(2, 5), (6, 1)] {
            let (incoming, outgoing) = host_ring_pair(Pfns::Native(&pfns), offset, &ram).unwrap();
            assert_eq!(incoming.data_pages(), offset as usize - 1);
            assert_eq!(outgoing.data_pages(), outgoing_pages);
        }
        for offset in [1, 7] {
            assert_eq!(
                host_ring_pair(Pfns::Native(&pfns), offset, &ram).err(),
                Some(MemoryError::DownstreamOffset { offset, pages: 8 })
            );
        }
        let mut bad = pfns.clone();
        bad[6] = 0x5000;
        assert_eq!(
            host_ring_pair(Pfns::Native(&bad), 4, &ram).unwrap_err(),
            MemoryError::UnmappedPfn { pfn: 0x5000 }
        );
    }
}
