//! Ring memory over a contiguous raw mapping.
//!
//! This is the crate's only `unsafe` code. It exists because a raw mapping (an `mmap` of guest
//! RAM, a guest kernel's `vmap` of its ring pages) arrives as a pointer and a length, and turning
//! that into something safe code can use needs one promise from the caller about lifetime and
//! exclusivity. The promise is turned into a `&'a [AtomicU64]` once, in [`shared_words`];
//! everything after that is the same safe, atomic-only code the flat memory uses.
//!
//! Why a slice of atomics is the right safe type: `AtomicU64` is an `UnsafeCell`, so a shared
//! reference to it asserts nothing about the bytes staying unchanged — concurrent writes by the
//! peer are expected — and every access through it is a single atomic operation, never a plain
//! load that the compiler could split, repeat or elide (the hazard `vm-memory`'s volatile slices
//! guard against). No reference to a non-atomic type ever points into the mapping.
#![allow(unsafe_code)]

use core::sync::atomic::AtomicU64;

use super::{ControlWord, FlatRingMemory, MemoryError, RingMemory, WORDS_PER_PAGE};

/// Views `len` bytes of raw shared memory at `ptr` as `AtomicU64` words.
///
/// # Errors
/// [`MemoryError::Misaligned`] if `ptr` is not aligned for `AtomicU64`,
/// [`MemoryError::TooSmall`] if `len` is not a multiple of 8 (the caller's mapping is then not
/// what it thinks).
///
/// # Safety
/// For the whole lifetime `'a`:
/// - `ptr` must be valid for reads and writes of `len` bytes (mapped, not unmapped or freed,
///   not remapped read-only);
/// - this program must access those bytes only through atomic operations — this slice, or other
///   slices obtained from this function over the same memory — and must not create any `&` or
///   `&mut` reference to non-atomic data overlapping them. Other parties (a guest, another
///   process) may write the memory at any time; that is what the atomics are for.
pub unsafe fn shared_words<'a>(ptr: *mut u8, len: usize) -> Result<&'a [AtomicU64], MemoryError> {
    let addr = ptr as usize;
    if ptr.is_null() || !addr.is_multiple_of(core::mem::align_of::<AtomicU64>()) {
        return Err(MemoryError::Misaligned { addr });
    }
    if !len.is_multiple_of(8) {
        return Err(MemoryError::TooSmall { len });
    }
    // SAFETY: `ptr` is non-null and aligned for `AtomicU64` (checked above) and, by the caller's
    // contract, valid for reads and writes of `len` bytes for `'a`; `len / 8` words cover exactly
    // those bytes. `AtomicU64` has the size of `u64`, accepts every bit pattern, and is an
    // `UnsafeCell`, so a shared slice of it is sound while the memory changes underneath (the
    // caller promises every access in this program is atomic).
    let words = unsafe { core::slice::from_raw_parts(ptr.cast::<AtomicU64>(), len / 8) };
    Ok(words)
}

/// A ring in a contiguous raw mapping: a 4 KiB control page followed by the data pages.
///
/// Built from a pointer and a length with [`MappedRingMemory::new`] (or, for a channel's whole
/// ring buffer, [`MappedRingMemory::split_pair`]); behaves exactly like [`FlatRingMemory`] after
/// that.
#[derive(Debug)]
pub struct MappedRingMemory<'a>(FlatRingMemory<&'a [AtomicU64]>);

impl<'a> MappedRingMemory<'a> {
    /// A ring over the mapping `[ptr, ptr + len)`: one control page and at least one data page.
    ///
    /// # Errors
    /// [`MemoryError::Misaligned`], [`MemoryError::NotPageMultiple`], or
    /// [`MemoryError::TooSmall`] when there is no data page.
    ///
    /// # Safety
    /// As for [`shared_words`].
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Result<Self, MemoryError> {
        if !len.is_multiple_of(super::super::defs::PAGE_SIZE) {
            return Err(MemoryError::NotPageMultiple { len });
        }
        if len < 2 * super::super::defs::PAGE_SIZE {
            return Err(MemoryError::TooSmall { len });
        }
        // SAFETY: forwarded verbatim from this function's own contract.
        let words = unsafe { shared_words(ptr, len)? };
        Ok(Self(FlatRingMemory::new(words)?))
    }

    /// Splits a channel's mapped ring buffer into its two rings at `downstream_pages`, as
    /// [`FlatRingMemory::split_pair`] does. Returns `(guest_to_host, host_to_guest)`.
    ///
    /// # Errors
    /// As for [`FlatRingMemory::split_pair`], plus [`MemoryError::Misaligned`].
    ///
    /// # Safety
    /// As for [`shared_words`].
    pub unsafe fn split_pair(
        ptr: *mut u8,
        len: usize,
        downstream_pages: u32,
    ) -> Result<(Self, Self), MemoryError> {
        // SAFETY: forwarded verbatim from this function's own contract.
        let words = unsafe { shared_words(ptr, len)? };
        if words.len() % WORDS_PER_PAGE != 0 {
            return Err(MemoryError::NotPageMultiple { len });
        }
        let (a, b) = FlatRingMemory::split_pair(words, downstream_pages)?;
        Ok((Self(a), Self(b)))
    }
}

impl RingMemory for MappedRingMemory<'_> {
    fn data_len(&self) -> u32 {
        self.0.data_len()
    }
    fn load_control(&self, word: ControlWord) -> u32 {
        self.0.load_control(word)
    }
    fn store_control(&self, word: ControlWord, value: u32) {
        self.0.store_control(word, value);
    }
    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        self.0.read_at(offset, buf);
    }
    fn write_at(&self, offset: u32, buf: &[u8]) {
        self.0.write_at(offset, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn mapping_checks_alignment_and_size() {
        let mut backing = vec![0u64; 3 * WORDS_PER_PAGE];
        let ptr = backing.as_mut_ptr().cast::<u8>();
        // SAFETY: `backing` outlives every view, and is accessed only through
        // the views while they live.
        let misaligned = unsafe { shared_words(ptr.wrapping_add(4), 64) };
        assert!(matches!(misaligned, Err(MemoryError::Misaligned { .. })));
        // SAFETY: as above.
        let odd = unsafe { shared_words(ptr, 63) };
        assert!(matches!(odd, Err(MemoryError::TooSmall { .. })));
        // SAFETY: as above.
        let one_page = unsafe { MappedRingMemory::new(ptr, 4096) };
        assert!(matches!(one_page, Err(MemoryError::TooSmall { .. })));
        // SAFETY: as above.
        let partial = unsafe { MappedRingMemory::new(ptr, 4097) };
        assert!(matches!(partial, Err(MemoryError::NotPageMultiple { .. })));
        // SAFETY: as above.
        let mem = unsafe { MappedRingMemory::new(ptr, 3 * 4096) }.unwrap();
        assert_eq!(mem.data_len(), 2 * 4096);
        mem.store_control(ControlWord::WriteIndex, 0x40);
        mem.write_at(
            8184,
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        );
        let mut back = [0u8; 16];
        mem.read_at(8184, &mut back);
        assert_eq!(back[15], 16);
        assert_eq!(mem.load_control(ControlWord::WriteIndex), 0x40);
        // The bytes landed where a peer reading the mapping expects them.
        assert_eq!(backing[0].to_ne_bytes()[..4], 0x40u32.to_le_bytes());
        assert_eq!(
            backing[WORDS_PER_PAGE],
            u64::from_ne_bytes([9, 10, 11, 12, 13, 14, 15, 16])
        );
        assert_eq!(
            backing[3 * WORDS_PER_PAGE - 1],
            u64::from_ne_bytes([1, 2, 3, 4, 5, 6, 7, 8])
        );
    }

    #[test]
    fn mapped_pair() {
        let mut backing = vec![0u64; 6 * WORDS_PER_PAGE];
        let ptr = backing.as_mut_ptr().cast::<u8>();
        // SAFETY: `backing` outlives the views and is not touched while they live.
        let (a, b) = unsafe { MappedRingMemory::split_pair(ptr, 6 * 4096, 2) }.unwrap();
        assert_eq!(a.data_len(), 4096);
        assert_eq!(b.data_len(), 3 * 4096);
        b.store_control(ControlWord::ReadIndex, 16);
        assert_eq!(a.load_control(ControlWord::ReadIndex), 0);
        assert_eq!(
            backing[2 * WORDS_PER_PAGE].to_ne_bytes()[4..],
            16u32.to_le_bytes()
        );
    }
}
