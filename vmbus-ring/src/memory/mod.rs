//! Ring memory: the narrow seam between the ring logic and the memory it lives in.
//!
//! A ring is one control page followed by a data area. [`RingMemory`] gives the ring code
//! exactly what it needs — atomic access to the control words and wrap-around byte copies in and
//! out of the data area — and nothing else: no Rust reference to peer-writable bytes ever leaves
//! an implementation. Three implementations:
//!
//! | type | memory | used by |
//! |---|---|---|
//! | [`FlatRingMemory`] | a slice of `AtomicU64` you own or borrow (a `static`, a `Box`, an `Arc`) | tests, `no_std` users, in-process peers |
//! | [`PagedRingMemory`] | one control page and N scattered 4 KiB data pages | a host, which sees the ring GPADL as scattered guest pages |
//! | [`MappedRingMemory`] | a contiguous raw mapping (`mmap`, a guest's `vmap`) | a guest, or a host that maps the ring contiguously |
//!
//! All three store memory as `AtomicU64` words and access it only with atomic loads, stores and
//! read-modify-writes, so a peer rewriting the ring at any moment is a data race in nobody's
//! model: the ring code sees *some* value, validates it, and moves on.

mod flat;
mod mapped;
mod paged;
mod words;

use core::sync::atomic::AtomicU64;

pub use flat::FlatRingMemory;
pub use mapped::{shared_words, MappedRingMemory};
pub use paged::PagedRingMemory;
#[cfg(feature = "alloc")]
pub use paged::{host_ring_pair, RingPages};

#[cfg(feature = "alloc")]
pub(crate) use words::zeroed_words;
pub(crate) use words::{load_u32, read_bytes, store_u32, write_bytes};

use crate::defs::{ControlPage, PAGE_SIZE};

/// `AtomicU64` words in a 4 KiB page.
pub const WORDS_PER_PAGE: usize = PAGE_SIZE / 8;

/// One 4 KiB page of shared memory, as the ring and GPADL code see it.
pub type PageRef<'a> = &'a [AtomicU64; WORDS_PER_PAGE];

/// The smallest data area a ring may have: one 16-byte descriptor, its 8-byte trailer, and the
/// 8 bytes that always stay free.
pub const MIN_DATA_LEN: u32 = 32;

/// The largest data area a ring may have (2 GiB). Keeps all index arithmetic inside `u32`.
pub const MAX_DATA_LEN: u32 = 1 << 31;

/// The control words of a ring's control page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlWord {
    /// `write_index` (offset 0x00), owned by the writer.
    WriteIndex,
    /// `read_index` (offset 0x04), owned by the reader.
    ReadIndex,
    /// `interrupt_mask` (offset 0x08), owned by the reader.
    InterruptMask,
    /// `pending_send_sz` (offset 0x0C), owned by the writer.
    PendingSendSize,
    /// `feature_bits` (offset 0x40), owned by the writer.
    FeatureBits,
}

impl ControlWord {
    /// Byte offset of the word in the control page.
    #[must_use]
    pub const fn offset(self) -> usize {
        match self {
            Self::WriteIndex => ControlPage::WRITE_INDEX,
            Self::ReadIndex => ControlPage::READ_INDEX,
            Self::InterruptMask => ControlPage::INTERRUPT_MASK,
            Self::PendingSendSize => ControlPage::PENDING_SEND_SIZE,
            Self::FeatureBits => ControlPage::FEATURE_BITS,
        }
    }
}

/// The memory of one ring: a control page and a data area, shared with a peer that may rewrite
/// any of it at any time.
///
/// Implementations must never hand out a reference to the memory itself and must access it only
/// atomically (or with volatile copies). The ring code validates everything it reads; an
/// implementation only has to stay inside its memory.
///
/// The ring code calls [`read_at`](Self::read_at) and [`write_at`](Self::write_at) with
/// `offset < data_len()` and `buf.len() <= data_len()`, both multiples of 8. Implementations
/// must still behave (no panic, no access outside their memory) on any input: the offset is
/// taken modulo `data_len()` and a longer buffer wraps again.
pub trait RingMemory {
    /// Size of the data area in bytes: a multiple of 8 in `MIN_DATA_LEN..=MAX_DATA_LEN`.
    fn data_len(&self) -> u32;

    /// Loads a control word (acquire ordering).
    fn load_control(&self, word: ControlWord) -> u32;

    /// Stores a control word (release ordering), leaving neighbouring words untouched.
    fn store_control(&self, word: ControlWord, value: u32);

    /// Copies `buf.len()` bytes out of the data area starting at `offset`, wrapping around the
    /// end of the data area.
    fn read_at(&self, offset: u32, buf: &mut [u8]);

    /// Copies `buf` into the data area starting at `offset`, wrapping around the end of the
    /// data area.
    fn write_at(&self, offset: u32, buf: &[u8]);
}

impl<T: RingMemory + ?Sized> RingMemory for &T {
    fn data_len(&self) -> u32 {
        (**self).data_len()
    }
    fn load_control(&self, word: ControlWord) -> u32 {
        (**self).load_control(word)
    }
    fn store_control(&self, word: ControlWord, value: u32) {
        (**self).store_control(word, value);
    }
    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        (**self).read_at(offset, buf);
    }
    fn write_at(&self, offset: u32, buf: &[u8]) {
        (**self).write_at(offset, buf);
    }
}

/// Errors building ring memory or guest-memory views.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The data area is not a multiple of 8 bytes in `MIN_DATA_LEN..=MAX_DATA_LEN`.
    #[error("ring data area of {len} bytes is not a multiple of 8 between {min} and {max}", min = MIN_DATA_LEN, max = MAX_DATA_LEN)]
    DataLength {
        /// The offending length in bytes.
        len: usize,
    },
    /// The memory is too small to hold a control page and a data area.
    #[error("{len} bytes of memory cannot hold a control page and a data area")]
    TooSmall {
        /// Bytes supplied.
        len: usize,
    },
    /// A raw mapping is not aligned for `AtomicU64`.
    #[error("shared memory at {addr:#x} is not 8-byte aligned")]
    Misaligned {
        /// The address supplied.
        addr: usize,
    },
    /// A page-based memory was given a length that is not a whole number of 4 KiB pages.
    #[error("{len} bytes is not a whole number of 4 KiB pages")]
    NotPageMultiple {
        /// The length supplied.
        len: usize,
    },
    /// The downstream (host-to-guest) ring offset leaves one of the two rings without a control
    /// page and at least one data page.
    #[error(
        "downstream ring offset of {offset} pages does not split {pages} pages into two rings"
    )]
    DownstreamOffset {
        /// `downstream_ringbuffer_pageoffset` from OPENCHANNEL.
        offset: u32,
        /// Pages in the ring GPADL.
        pages: usize,
    },
    /// A GPADL used for rings is not a single, page-aligned range of whole pages.
    #[error("the ring GPADL is not one page-aligned range of whole pages")]
    NotRingGpadl,
    /// A page frame number is not guest RAM.
    #[error("page frame {pfn:#x} is not guest RAM")]
    UnmappedPfn {
        /// The offending PFN.
        pfn: u64,
    },
}

/// Checks a data-area length against the ring's limits.
pub(crate) fn check_data_len(len: usize) -> Result<u32, MemoryError> {
    match u32::try_from(len) {
        Ok(l) if len.is_multiple_of(8) && (MIN_DATA_LEN..=MAX_DATA_LEN).contains(&l) => Ok(l),
        _ => Err(MemoryError::DataLength { len }),
    }
}

/// Splits a wrapped access of `len` bytes at `offset` of a circular area of `size` bytes into
/// contiguous pieces, calling `f(area_offset, buf_start, piece_len)` for each.
pub(crate) fn for_each_wrapped(
    size: usize,
    offset: usize,
    len: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    if size == 0 {
        return;
    }
    let mut at = offset % size;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(size - at);
        f(at, done, n);
        done += n;
        at = 0;
    }
}

/// Copies `buf.len()` bytes out of `words` at a wrapped `offset`; `size` is the area in bytes.
pub(crate) fn read_wrapped(words: &[AtomicU64], size: usize, offset: u32, buf: &mut [u8]) {
    for_each_wrapped(size, offset as usize, buf.len(), |at, start, n| {
        if let Some(piece) = buf.get_mut(start..start + n) {
            read_bytes(words, at, piece);
        }
    });
}

/// Copies `buf` into `words` at a wrapped `offset`; `size` is the area in bytes.
pub(crate) fn write_wrapped(words: &[AtomicU64], size: usize, offset: u32, buf: &[u8]) {
    for_each_wrapped(size, offset as usize, buf.len(), |at, start, n| {
        if let Some(piece) = buf.get(start..start + n) {
            write_bytes(words, at, piece);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn wrapped_pieces() {
        let mut pieces = Vec::new();
        for_each_wrapped(64, 56, 24, |a, s, n| pieces.push((a, s, n)));
        assert_eq!(pieces, [(56, 0, 8), (0, 8, 16)]);
        pieces.clear();
        for_each_wrapped(16, 72, 40, |a, s, n| pieces.push((a, s, n)));
        assert_eq!(pieces, [(8, 0, 8), (0, 8, 16), (0, 24, 16)]);
        pieces.clear();
        for_each_wrapped(0, 5, 5, |a, s, n| pieces.push((a, s, n)));
        assert!(pieces.is_empty());
    }

    #[test]
    fn data_len_limits() {
        assert_eq!(check_data_len(32), Ok(32));
        assert!(check_data_len(24).is_err());
        assert!(check_data_len(36).is_err());
        assert_eq!(check_data_len(1 << 31), Ok(1 << 31));
        assert!(check_data_len((1 << 31) + 8).is_err());
    }

    #[test]
    fn control_word_offsets() {
        assert_eq!(ControlWord::WriteIndex.offset(), 0);
        assert_eq!(ControlWord::ReadIndex.offset(), 4);
        assert_eq!(ControlWord::InterruptMask.offset(), 8);
        assert_eq!(ControlWord::PendingSendSize.offset(), 12);
        assert_eq!(ControlWord::FeatureBits.offset(), 0x40);
    }
}
