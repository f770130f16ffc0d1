//! GPADLs (Guest Physical Address Descriptor Lists): GPA ranges, the GPADL_HEADER / GPADL_BODY
//! message split, host-side reassembly, and byte-addressable views of guest buffers.
//!
//! ```text
//!  guest: ranges ──GpadlMessages──▶ GPADL_HEADER (≤ 26 PFNs) + GPADL_BODY (28 PFNs each) ─┐
//!                                                                                       │
//!  host:  GpadlTable::handle_message ◀──────────────────────────────────────────────────┘
//!           │ counts values to range_buflen, rejects duplicates, overruns, over-long lists;
//!           │ validates and indexes the complete range buffer, once
//!           ▼
//!         Gpadl ──ring_pfns──▶ host_ring_pair (PagedRingMemory × 2)
//!           ├────buffer─────▶ GpaBuffer (bounds-checked copy in/out, every PFN in guest RAM)
//!           └──lazy_buffer──▶ GpaBuffer in O(1) (each page checked when touched)
//! ```

mod buffer;
mod message;
mod range;
#[cfg(feature = "alloc")]
mod table;

use core::sync::atomic::AtomicU64;

pub use buffer::{GpaAccessError, GpaBuffer};
pub use message::{message_type, GpadlBodyMessage, GpadlError, GpadlHeaderMessage, GpadlMessages};
pub use range::{GpaRange, GpaRangeIter, GpaRanges, Pfns, RangeError};
#[cfg(feature = "alloc")]
pub use table::{Gpadl, GpadlLimits, GpadlProgress, GpadlTable};

use crate::memory::{read_bytes, write_bytes, MemoryError, PageRef, WORDS_PER_PAGE};

/// The host's map of guest RAM: which page frame numbers are RAM, and where they are.
///
/// Every PFN a guest names (in a GPADL, in a GPA-direct packet) is checked against this map
/// before it is touched; a PFN outside guest RAM is an error, never an access.
pub trait GuestMemoryMap {
    /// The 4 KiB page at `pfn`, or `None` if `pfn` is not guest RAM.
    fn page(&self, pfn: u64) -> Option<PageRef<'_>>;
}

impl<T: GuestMemoryMap + ?Sized> GuestMemoryMap for &T {
    fn page(&self, pfn: u64) -> Option<PageRef<'_>> {
        (**self).page(pfn)
    }
}

/// Guest RAM as one contiguous run of pages starting at PFN `base_pfn`, held as `AtomicU64`
/// words (a `Box` in tests, or a raw mapping through
/// [`shared_words`](crate::memory::shared_words)).
#[derive(Debug)]
pub struct GuestRam<B> {
    base_pfn: u64,
    words: B,
}

impl<B: AsRef<[AtomicU64]>> GuestRam<B> {
    /// Guest RAM of `words.len() / 512` pages starting at `base_pfn`.
    ///
    /// # Errors
    /// [`MemoryError::NotPageMultiple`] if `words` is not whole pages.
    pub fn new(base_pfn: u64, words: B) -> Result<Self, MemoryError> {
        let len = words.as_ref().len();
        if len % WORDS_PER_PAGE != 0 {
            return Err(MemoryError::NotPageMultiple { len: len * 8 });
        }
        Ok(Self { base_pfn, words })
    }

    /// The first PFN.
    pub fn base_pfn(&self) -> u64 {
        self.base_pfn
    }

    /// Number of pages.
    pub fn pages(&self) -> u64 {
        (self.words.as_ref().len() / WORDS_PER_PAGE) as u64
    }

    /// The page at `pfn`, if it is inside this RAM.
    pub fn page_ref(&self, pfn: u64) -> Option<PageRef<'_>> {
        let index = usize::try_from(pfn.checked_sub(self.base_pfn)?).ok()?;
        let start = index.checked_mul(WORDS_PER_PAGE)?;
        let words = self
            .words
            .as_ref()
            .get(start..start.checked_add(WORDS_PER_PAGE)?)?;
        words.try_into().ok()
    }

    /// Copies guest memory at guest-physical address `gpa` into `buf`. Returns `false` (copying
    /// nothing) if the range is not entirely inside this RAM.
    pub fn read_gpa(&self, gpa: u64, buf: &mut [u8]) -> bool {
        match self.offset_of(gpa) {
            Some(off) => read_bytes(self.words.as_ref(), off, buf),
            None => false,
        }
    }

    /// Copies `buf` into guest memory at `gpa`. Returns `false` (writing nothing) if the range
    /// is not entirely inside this RAM.
    pub fn write_gpa(&self, gpa: u64, buf: &[u8]) -> bool {
        match self.offset_of(gpa) {
            Some(off) => write_bytes(self.words.as_ref(), off, buf),
            None => false,
        }
    }

    fn offset_of(&self, gpa: u64) -> Option<usize> {
        let base = self.base_pfn.checked_mul(crate::defs::PAGE_SIZE as u64)?;
        usize::try_from(gpa.checked_sub(base)?).ok()
    }
}

#[cfg(feature = "alloc")]
impl GuestRam<alloc::boxed::Box<[AtomicU64]>> {
    /// Zeroed guest RAM of `pages` pages on the heap, starting at `base_pfn`.
    ///
    /// # Errors
    /// [`MemoryError::TooSmall`] if the size overflows.
    pub fn new_boxed(base_pfn: u64, pages: usize) -> Result<Self, MemoryError> {
        let words = pages
            .checked_mul(WORDS_PER_PAGE)
            .ok_or(MemoryError::TooSmall { len: usize::MAX })?;
        Ok(Self {
            base_pfn,
            words: crate::memory::zeroed_words(words),
        })
    }
}

impl<B: AsRef<[AtomicU64]>> GuestMemoryMap for GuestRam<B> {
    fn page(&self, pfn: u64) -> Option<PageRef<'_>> {
        self.page_ref(pfn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_ram_bounds() {
        let ram = GuestRam::new_boxed(0x10, 2).unwrap();
        assert!(ram.page(0xf).is_none());
        assert!(ram.page(0x10).is_some());
        assert!(ram.page(0x11).is_some());
        assert!(ram.page(0x12).is_none());
        assert!(ram.page(u64::MAX).is_none());
        assert!(ram.write_gpa(0x10ffc, b"abcdefgh"));
        let mut buf = [0u8; 8];
        assert!(ram.read_gpa(0x10ffc, &mut buf));
        assert_eq!(&buf, b"abcdefgh");
        assert!(!ram.read_gpa(0x11ffc, &mut buf));
        assert!(!ram.read_gpa(0xfff, &mut buf));
        assert!(!ram.write_gpa(u64::MAX, &buf));
        let words: std::vec::Vec<AtomicU64> = (0..100).map(|_| AtomicU64::new(0)).collect();
        assert!(GuestRam::new(0, &words[..]).is_err());
    }
}
