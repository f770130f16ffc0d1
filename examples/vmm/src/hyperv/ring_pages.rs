//! A channel's two rings over its ring GPADL's pages, built in O(1) on every service.
//!
//! The host's ring memory borrows guest RAM for one service, so it is built anew after every
//! VM exit. `vmbus_ring::memory::host_ring_pair` resolves every page of the GPADL into a
//! vector of page references each time: 8,190 pages for the largest ring a guest may offer,
//! on every exit. Here guest RAM is one mapping, so a page is found from its PFN by
//! arithmetic; [`GuestRing`] keeps the GPADL's PFN list (borrowed from the server's table) and
//! looks each page up when an access touches it.
//!
//! Every PFN of every GPADL was checked to lie in guest RAM when the VMBus host accepted it
//! (`VmbusHost::service`), and guest RAM never shrinks. A page outside RAM anyway (a caller
//! that skipped that check) reads as zeros and takes no writes: the ring code validates
//! everything it reads, so that is a corrupt ring, never an access outside RAM.

use core::sync::atomic::{AtomicU64, Ordering};

use vmbus_ring::defs::PAGE_SIZE;
use vmbus_ring::gpadl::{GuestRam, Pfns};
use vmbus_ring::memory::{ControlWord, MemoryError, RingMemory, MAX_DATA_LEN};

use crate::memory::GuestMemory;

/// One ring: a control page and data pages in guest RAM, looked up as they are touched.
#[derive(Debug)]
pub struct GuestRing<'a> {
    memory: &'a GuestMemory,
    ram: GuestRam<&'a [AtomicU64]>,
    /// Guest-physical address of the control page.
    control: u64,
    /// The ring GPADL's pages; the data pages are `first..first + data_len / 4096`.
    pfns: Pfns<'a>,
    first: usize,
    data_len: u32,
}

/// The host's two rings of a ring GPADL whose pages are `pfns`, as
/// `vmbus_ring::memory::host_ring_pair` splits them: pages `[0, downstream)` are the
/// guest-to-host (incoming) ring, the rest the host-to-guest (outgoing) ring, the first page
/// of each its control page. Returns `(incoming, outgoing)`.
///
/// # Errors
/// [`MemoryError::DownstreamOffset`] if either ring would lack a control page and a data page,
/// [`MemoryError::DataLength`] for a ring over `MAX_DATA_LEN`, [`MemoryError::UnmappedPfn`]
/// for a control page outside guest RAM.
pub fn guest_ring_pair<'a>(
    memory: &'a GuestMemory,
    pfns: Pfns<'a>,
    downstream: u32,
) -> Result<(GuestRing<'a>, GuestRing<'a>), MemoryError> {
    let split = downstream as usize;
    if split < 2 || pfns.len() < split.saturating_add(2) {
        return Err(MemoryError::DownstreamOffset {
            offset: downstream,
            pages: pfns.len(),
        });
    }
    Ok((
        GuestRing::new(memory, pfns, 0, split)?,
        GuestRing::new(memory, pfns, split, pfns.len())?,
    ))
}

impl<'a> GuestRing<'a> {
    /// The ring of pages `[start, end)` of `pfns` (at least two).
    fn new(
        memory: &'a GuestMemory,
        pfns: Pfns<'a>,
        start: usize,
        end: usize,
    ) -> Result<Self, MemoryError> {
        let ram = GuestRam::new(0, memory.words())?;
        let bytes = (end - start - 1).saturating_mul(PAGE_SIZE);
        let data_len = u32::try_from(bytes)
            .ok()
            .filter(|&len| len <= MAX_DATA_LEN)
            .ok_or(MemoryError::DataLength { len: bytes })?;
        let pfn = pfns.get(start).ok_or(MemoryError::NotRingGpadl)?;
        if ram.page_ref(pfn).is_none() {
            return Err(MemoryError::UnmappedPfn { pfn });
        }
        Ok(Self {
            memory,
            ram,
            control: pfn * PAGE_SIZE as u64,
            pfns,
            first: start + 1,
            data_len,
        })
    }

    /// Calls `f(gpa, buf_start, len)` for each per-page piece of an access of `len` bytes at
    /// `offset` (taken modulo the data area, wrapping as often as it needs); `gpa` is `None`
    /// for a page outside guest RAM.
    fn pieces(&self, offset: u32, len: usize, mut f: impl FnMut(Option<u64>, usize, usize)) {
        let size = self.data_len as usize;
        let mut at = offset as usize % size;
        let mut done = 0;
        while done < len {
            let in_page = at % PAGE_SIZE;
            // The data area is whole pages, so a piece never runs past its end.
            let n = (len - done).min(PAGE_SIZE - in_page);
            let gpa = self
                .pfns
                .get(self.first + at / PAGE_SIZE)
                .and_then(|pfn| pfn.checked_mul(PAGE_SIZE as u64))
                .and_then(|base| base.checked_add(in_page as u64));
            f(gpa, done, n);
            done += n;
            at = (at + n) % size;
        }
    }
}

impl RingMemory for GuestRing<'_> {
    fn data_len(&self) -> u32 {
        self.data_len
    }

    fn load_control(&self, word: ControlWord) -> u32 {
        self.memory
            .atomic_u32(self.control + word.offset() as u64)
            .map_or(0, |w| w.load(Ordering::Acquire))
    }

    fn store_control(&self, word: ControlWord, value: u32) {
        // A read-modify-write, as `vmbus-ring`'s own ring memories store: it orders the store
        // before the loads that follow (the writer stores its index, then reads the reader's
        // interrupt mask).
        if let Ok(w) = self.memory.atomic_u32(self.control + word.offset() as u64) {
            w.swap(value, Ordering::AcqRel);
        }
    }

    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        self.pieces(offset, buf.len(), |gpa, start, n| {
            if let Some(piece) = buf.get_mut(start..start + n) {
                if !gpa.is_some_and(|gpa| self.ram.read_gpa(gpa, piece)) {
                    piece.fill(0);
                }
            }
        });
    }

    fn write_at(&self, offset: u32, buf: &[u8]) {
        self.pieces(offset, buf.len(), |gpa, start, n| {
            if let (Some(gpa), Some(piece)) = (gpa, buf.get(start..start + n)) {
                self.ram.write_gpa(gpa, piece);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmbus_ring::memory::host_ring_pair;

    /// The same scattered ring through `vmbus-ring`'s page-resolving pair and through this
    /// one: every access, wrapping ones included, and every control word agree.
    #[test]
    fn matches_the_resolved_pair_byte_for_byte() {
        let memory = GuestMemory::new(64 * 4096).unwrap();
        // Incoming: control 9, data 30, 2, 17; outgoing: control 5, data 40, 41.
        let pfns = [9u64, 30, 2, 17, 5, 40, 41];
        let ram = GuestRam::new(0, memory.words()).unwrap();
        let (paged_in, paged_out) = host_ring_pair(Pfns::Native(&pfns), 4, &ram).unwrap();
        let (lazy_in, lazy_out) = guest_ring_pair(&memory, Pfns::Native(&pfns), 4).unwrap();
        assert_eq!(lazy_in.data_len(), 3 * 4096);
        assert_eq!(lazy_out.data_len(), 2 * 4096);
        let src: Vec<u8> = (0..20_008u32).map(|i| (i * 7 + i / 4096) as u8).collect();
        for (paged, lazy) in [(&paged_in, &lazy_in), (&paged_out, &lazy_out)] {
            let size = paged.data_len();
            for (offset, len) in [(0, 100), (4090, 20), (size - 8, 16), (5000, 20_000)] {
                lazy.write_at(offset, &src[..len]);
                let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                paged.read_at(offset, &mut a);
                lazy.read_at(offset, &mut b);
                assert_eq!(a, b, "offset {offset}, {len} bytes");
                assert_eq!(a[len - 1], src[len - 1]);
                paged.write_at(offset + 3, &src[7..7 + len]);
                paged.read_at(offset + 3, &mut a);
                lazy.read_at(offset + 3, &mut b);
                assert_eq!(a, b, "offset {offset} + 3, {len} bytes");
                if len <= size as usize {
                    assert_eq!(&b[..], &src[7..7 + len]);
                }
            }
            for word in [ControlWord::WriteIndex, ControlWord::FeatureBits] {
                lazy.store_control(word, 0x1234_5678);
                assert_eq!(paged.load_control(word), 0x1234_5678);
                paged.store_control(word, 42);
                assert_eq!(lazy.load_control(word), 42);
            }
        }
        // The incoming ring's data page 1 is guest page 2.
        let mut x = [0u8; 4];
        memory.read_at(2 * 4096, &mut x).unwrap();
        let mut y = [0u8; 4];
        lazy_in.read_at(4096, &mut y);
        assert_eq!(x, y);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let memory = GuestMemory::new(8 * 4096).unwrap();
        let pfns = [1u64, 2, 3, 4];
        for downstream in [0, 1, 3, 4] {
            assert!(matches!(
                guest_ring_pair(&memory, Pfns::Native(&pfns), downstream),
                Err(MemoryError::DownstreamOffset { .. })
            ));
        }
        assert!(guest_ring_pair(&memory, Pfns::Native(&pfns), 2).is_ok());
        let outside = [1u64, 2, 8, 4];
        assert_eq!(
            guest_ring_pair(&memory, Pfns::Native(&outside), 2).unwrap_err(),
            MemoryError::UnmappedPfn { pfn: 8 }
        );
        // A data page outside RAM reads as zeros and takes no writes.
        let data_outside = [1u64, u64::MAX / 2, 3, 4];
        let (ring, _) = guest_ring_pair(&memory, Pfns::Native(&data_outside), 2).unwrap();
        ring.write_at(0, &[0xaa; 64]);
        let mut buf = [0x55u8; 64];
        ring.read_at(0, &mut buf);
        assert_eq!(buf, [0; 64]);
    }
}
