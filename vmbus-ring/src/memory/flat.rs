//! Ring memory in a slice of `AtomicU64` words: the control page, then the data area.

use core::sync::atomic::AtomicU64;

use super::{
    check_data_len, load_u32, read_wrapped, store_u32, write_wrapped, ControlWord, MemoryError,
    RingMemory, WORDS_PER_PAGE,
};

/// A ring in one contiguous slice of `AtomicU64`: words `0..512` are the control page, the rest
/// is the data area (any multiple of 8 bytes from [`MIN_DATA_LEN`](super::MIN_DATA_LEN), not
/// necessarily whole pages, which lets tests use tiny rings).
///
/// `B` is anything that derefs to the words: `&[AtomicU64]` (a `static` or a stack array in
/// `no_std`), `Box<[AtomicU64]>`, `Arc<[AtomicU64]>`. Both endpoints of a ring can share one
/// `FlatRingMemory` through `&` (it is `Sync`).
///
/// ```
/// use core::sync::atomic::AtomicU64;
/// use vmbus_ring::memory::{FlatRingMemory, RingMemory};
///
/// // One control page and one 4 KiB data page, in a `static`.
/// static WORDS: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];
/// let mem = FlatRingMemory::new(&WORDS[..]).unwrap();
/// assert_eq!(mem.data_len(), 4096);
/// ```
#[derive(Debug)]
pub struct FlatRingMemory<B> {
    words: B,
    data_len: u32,
}

impl<B: AsRef<[AtomicU64]>> FlatRingMemory<B> {
    /// A ring over `words`: a 4 KiB control page followed by the data area.
    ///
    /// # Errors
    /// [`MemoryError::TooSmall`] if there is no room for the control page and a minimal data
    /// area, [`MemoryError::DataLength`] if the data area is larger than
    /// [`MAX_DATA_LEN`](super::MAX_DATA_LEN).
    pub fn new(words: B) -> Result<Self, MemoryError> {
        let len = words.as_ref().len();
        if len < WORDS_PER_PAGE {
            return Err(MemoryError::TooSmall { len: len * 8 });
        }
        let data_len = check_data_len((len - WORDS_PER_PAGE) * 8)?;
        Ok(Self { words, data_len })
    }

    /// The underlying words.
    pub fn words(&self) -> &B {
        &self.words
    }

    fn control(&self) -> &[AtomicU64] {
        self.words
            .as_ref()
            .get(..WORDS_PER_PAGE)
            .unwrap_or_default()
    }

    fn data(&self) -> &[AtomicU64] {
        self.words
            .as_ref()
            .get(WORDS_PER_PAGE..)
            .unwrap_or_default()
    }
}

#[cfg(feature = "alloc")]
impl FlatRingMemory<alloc::boxed::Box<[AtomicU64]>> {
    /// A zeroed ring on the heap with a data area of `data_len` bytes.
    ///
    /// # Errors
    /// [`MemoryError::DataLength`] if `data_len` is not a multiple of 8 in
    /// `MIN_DATA_LEN..=MAX_DATA_LEN`.
    pub fn new_boxed(data_len: usize) -> Result<Self, MemoryError> {
        let data_len = check_data_len(data_len)?;
        Ok(Self {
            words: super::zeroed_words(WORDS_PER_PAGE + data_len as usize / 8),
            data_len,
        })
    }
}

impl<'a> FlatRingMemory<&'a [AtomicU64]> {
    /// Splits a channel's contiguous ring buffer (as a guest allocates it) into its two rings:
    /// pages `[0, downstream_pages)` are the guest-to-host ring, the rest the host-to-guest ring.
    /// Each ring must get a control page and at least one data page.
    ///
    /// Returns `(guest_to_host, host_to_guest)`.
    ///
    /// # Errors
    /// [`MemoryError::NotPageMultiple`] if `words` is not whole pages,
    /// [`MemoryError::DownstreamOffset`] if the split leaves a ring without a data page,
    /// [`MemoryError::DataLength`] if a ring is larger than [`MAX_DATA_LEN`](super::MAX_DATA_LEN).
    pub fn split_pair(
        words: &'a [AtomicU64],
        downstream_pages: u32,
    ) -> Result<(Self, Self), MemoryError> {
        if !words.len().is_multiple_of(WORDS_PER_PAGE) {
            return Err(MemoryError::NotPageMultiple {
                len: words.len() * 8,
            });
        }
        let pages = words.len() / WORDS_PER_PAGE;
        let split = downstream_pages as usize;
        if split < 2 || pages < split + 2 {
            return Err(MemoryError::DownstreamOffset {
                offset: downstream_pages,
                pages,
            });
        }
        let (first, second) = words.split_at(split * WORDS_PER_PAGE);
        Ok((Self::new(first)?, Self::new(second)?))
    }
}

impl<B: AsRef<[AtomicU64]>> RingMemory for FlatRingMemory<B> {
    fn data_len(&self) -> u32 {
        self.data_len
    }

    fn load_control(&self, word: ControlWord) -> u32 {
        load_u32(self.control(), word.offset())
    }

    fn store_control(&self, word: ControlWord, value: u32) {
        store_u32(self.control(), word.offset(), value);
    }

    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        read_wrapped(self.data(), self.data_len as usize, offset, buf);
    }

    fn write_at(&self, offset: u32, buf: &[u8]) {
        write_wrapped(self.data(), self.data_len as usize, offset, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn layout_and_wrap() {
        let w = words(WORDS_PER_PAGE + 8);
        let mem = FlatRingMemory::new(&w[..]).unwrap();
        assert_eq!(mem.data_len(), 64);
        mem.store_control(ControlWord::ReadIndex, 0x28);
        mem.store_control(ControlWord::FeatureBits, 1);
        assert_eq!(mem.load_control(ControlWord::ReadIndex), 0x28);
        assert_eq!(mem.load_control(ControlWord::WriteIndex), 0);
        let src: Vec<u8> = (0..24).collect();
        mem.write_at(56, &src);
        let mut back = [0u8; 24];
        mem.read_at(56, &mut back);
        assert_eq!(&back[..], &src[..]);
        // The first 8 bytes landed at the end of the data area, the rest at its start.
        let mut start = [0u8; 16];
        mem.read_at(0, &mut start);
        assert_eq!(&start[..], &src[8..]);
        // Offsets beyond the area are folded, not trusted.
        mem.read_at(56 + 64 * 3, &mut back);
        assert_eq!(&back[..], &src[..]);
    }

    #[test]
    fn sizes_are_checked() {
        assert!(matches!(
            FlatRingMemory::new(&words(100)[..]),
            Err(MemoryError::TooSmall { .. })
        ));
        assert!(matches!(
            FlatRingMemory::new(&words(WORDS_PER_PAGE + 3)[..]),
            Err(MemoryError::DataLength { len: 24 })
        ));
        // A control page and the data area, no more.
        let boxed = FlatRingMemory::new_boxed(3 * 4096).unwrap();
        assert_eq!(boxed.words().len(), 4 * WORDS_PER_PAGE);
        assert_eq!(boxed.data_len(), 3 * 4096);
        assert!(FlatRingMemory::new_boxed(4095).is_err());
    }

    #[test]
    fn split_pair_follows_the_downstream_offset() {
        let w = words(WORDS_PER_PAGE * 8);
        let (out, inb) = FlatRingMemory::split_pair(&w, 4).unwrap();
        assert_eq!(out.data_len(), 3 * 4096);
        assert_eq!(inb.data_len(), 3 * 4096);
        inb.store_control(ControlWord::WriteIndex, 8);
        assert_eq!(out.load_control(ControlWord::WriteIndex), 0);
        assert_eq!(super::super::load_u32(&w, 4 * 4096), 8);
        // Each ring needs a control page and a data page: 2 and 6 of 8 pages are the limits.
        for (offset, inbound) in [(2, 5), (6, 1)] {
            let (out, inb) = FlatRingMemory::split_pair(&w, offset).unwrap();
            assert_eq!(out.data_len(), (offset - 1) * 4096);
            assert_eq!(inb.data_len(), inbound * 4096);
        }
        for offset in [0, 1, 7, 8] {
            assert_eq!(
                FlatRingMemory::split_pair(&w, offset).err(),
                Some(MemoryError::DownstreamOffset { offset, pages: 8 })
            );
        }
        assert_eq!(
            FlatRingMemory::split_pair(&w[..100], 1).err(),
            Some(MemoryError::NotPageMultiple { len: 800 })
        );
    }
}
