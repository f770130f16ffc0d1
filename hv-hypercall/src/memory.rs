//! The guest-memory seam: copies and atomic operations at guest physical addresses.
//!
//! Guest RAM is shared with guest vCPUs that run concurrently and may be hostile, so nothing in
//! this crate holds a Rust reference into it: every access is a copy in or out, or an atomic
//! operation, through [`GuestMemory`]. The host uses the atomics where the guest may race with it
//! (compare-exchange on a message slot's type, fetch-or on an event-flag word); the guest side
//! uses the same trait for the pages it shares with the host.

use thiserror::Error;

/// An error accessing guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The range is not (entirely) backed by guest memory.
    #[error("guest-physical range {gpa:#x}+{len:#x} is outside guest memory")]
    OutOfRange {
        /// Start of the access.
        gpa: u64,
        /// Length of the access in bytes.
        len: u64,
    },
    /// An atomic access is not naturally aligned.
    #[error("atomic access at {gpa:#x} is not {align}-byte aligned")]
    Unaligned {
        /// Address of the access.
        gpa: u64,
        /// The alignment it needs.
        align: u64,
    },
}

/// Access to guest physical memory.
///
/// Implementations must make the atomic operations sequentially consistent (they publish and
/// acquire data the other side wrote with plain copies), and must implement [`write`] so that it
/// never undoes a concurrent atomic update of a byte it does not cover (a partial-word write must
/// not rewrite the rest of the word). Values are little-endian.
///
/// [`write`]: GuestMemory::write
pub trait GuestMemory {
    /// Copies guest memory at `gpa` into `buf`.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Copies `data` into guest memory at `gpa`.
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError>;

    /// Atomically replaces the 4-byte-aligned `u32` at `gpa` with `new` if it equals `current`.
    /// Returns `Ok(previous)` on success and `Err(actual)` when the value differed.
    fn compare_exchange_u32(
        &self,
        gpa: u64,
        current: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, MemoryError>;

    /// Atomically replaces the 8-byte-aligned `u64` at `gpa` with `new` if it equals `current`.
    fn compare_exchange_u64(
        &self,
        gpa: u64,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, MemoryError>;

    /// Atomically ORs `bits` into the 8-byte-aligned `u64` at `gpa`; returns the previous value.
    fn fetch_or_u64(&self, gpa: u64, bits: u64) -> Result<u64, MemoryError>;

    /// Reads the little-endian `u32` at `gpa`. Implementations over shared memory make an
    /// aligned read a single atomic load (the provided version copies bytes, which is atomic for
    /// [`AtomicMemory`] because a 4-byte aligned range never spans two of its words).
    fn read_u32(&self, gpa: u64) -> Result<u32, MemoryError> {
        let mut b = [0; 4];
        self.read(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads the little-endian `u64` at `gpa` (a single atomic load when aligned, as for
    /// [`read_u32`](Self::read_u32)).
    fn read_u64(&self, gpa: u64) -> Result<u64, MemoryError> {
        let mut b = [0; 8];
        self.read(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Sets `len` bytes at `gpa` to zero.
    fn zero(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        const CHUNK: [u8; 256] = [0; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK.len() as u64);
            self.write(gpa.wrapping_add(done), &CHUNK[..n as usize])?;
            done += n;
        }
        Ok(())
    }
}

impl<T: GuestMemory + ?Sized> GuestMemory for &T {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read(gpa, buf)
    }
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        (**self).write(gpa, data)
    }
    fn compare_exchange_u32(
        &self,
        gpa: u64,
        current: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, MemoryError> {
        (**self).compare_exchange_u32(gpa, current, new)
    }
    fn compare_exchange_u64(
        &self,
        gpa: u64,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, MemoryError> {
        (**self).compare_exchange_u64(gpa, current, new)
    }
    fn fetch_or_u64(&self, gpa: u64, bits: u64) -> Result<u64, MemoryError> {
        (**self).fetch_or_u64(gpa, bits)
    }
    fn read_u32(&self, gpa: u64) -> Result<u32, MemoryError> {
        (**self).read_u32(gpa)
    }
    fn read_u64(&self, gpa: u64) -> Result<u64, MemoryError> {
        (**self).read_u64(gpa)
    }
}

mod words {
    //! The shared implementation of [`GuestMemory`] over a slice of little-endian atomic words.

    use core::sync::atomic::{AtomicU64, Ordering};

    use super::MemoryError;

    fn check(words: &[AtomicU64], gpa: u64, len: u64) -> Result<(), MemoryError> {
        match gpa.checked_add(len) {
            Some(end) if end <= words.len() as u64 * 8 => Ok(()),
            _ => Err(MemoryError::OutOfRange { gpa, len }),
        }
    }

    fn word(words: &[AtomicU64], gpa: u64) -> &AtomicU64 {
        &words[(gpa / 8) as usize]
    }

    pub(super) fn read(words: &[AtomicU64], gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        check(words, gpa, buf.len() as u64)?;
        let mut addr = gpa;
        let mut rest = buf;
        while !rest.is_empty() {
            let value = word(words, addr).load(Ordering::Acquire).to_le_bytes();
            let start = (addr % 8) as usize;
            let n = (8 - start).min(rest.len());
            let (head, tail) = rest.split_at_mut(n);
            head.copy_from_slice(&value[start..start + n]);
            rest = tail;
            addr += n as u64;
        }
        Ok(())
    }

    pub(super) fn write(words: &[AtomicU64], gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        check(words, gpa, data.len() as u64)?;
        let mut addr = gpa;
        let mut rest = data;
        while !rest.is_empty() {
            let start = (addr % 8) as usize;
            let n = (8 - start).min(rest.len());
            let w = word(words, addr);
            let mut bytes = [0; 8];
            bytes[start..start + n].copy_from_slice(&rest[..n]);
            let value = u64::from_le_bytes(bytes);
            if n == 8 {
                w.store(value, Ordering::Release);
            } else {
                // Merge so that a concurrent atomic update of the other bytes survives.
                let mask = (u64::MAX >> (64 - 8 * n as u32)) << (8 * start as u32);
                let _ = w.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                    Some((old & !mask) | value)
                });
            }
            rest = &rest[n..];
            addr += n as u64;
        }
        Ok(())
    }

    pub(super) fn compare_exchange_u32(
        words: &[AtomicU64],
        gpa: u64,
        current: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, MemoryError> {
        if !gpa.is_multiple_of(4) {
            return Err(MemoryError::Unaligned { gpa, align: 4 });
        }
        check(words, gpa, 4)?;
        let w = word(words, gpa);
        let shift = 8 * (gpa % 8) as u32;
        let mask = 0xffff_ffffu64 << shift;
        let mut old = w.load(Ordering::SeqCst);
        loop {
            let lane = (old >> shift) as u32;
            if lane != current {
                return Ok(Err(lane));
            }
            let replaced = (old & !mask) | (u64::from(new) << shift);
            match w.compare_exchange_weak(old, replaced, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Ok(Ok(lane)),
                Err(actual) => old = actual,
            }
        }
    }

    pub(super) fn compare_exchange_u64(
        words: &[AtomicU64],
        gpa: u64,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, MemoryError> {
        if !gpa.is_multiple_of(8) {
            return Err(MemoryError::Unaligned { gpa, align: 8 });
        }
        check(words, gpa, 8)?;
        Ok(word(words, gpa).compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst))
    }

    pub(super) fn fetch_or_u64(
        words: &[AtomicU64],
        gpa: u64,
        bits: u64,
    ) -> Result<u64, MemoryError> {
        if !gpa.is_multiple_of(8) {
            return Err(MemoryError::Unaligned { gpa, align: 8 });
        }
        check(words, gpa, 8)?;
        Ok(word(words, gpa).fetch_or(bits, Ordering::SeqCst))
    }
}

/// Implements [`GuestMemory`] for a type with a `words(&self) -> &[AtomicU64]` method.
macro_rules! word_memory {
    ($ty:ty $(, const $n:ident: usize)?) => {
        impl$(<const $n: usize>)? GuestMemory for $ty {
            fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
                words::read(self.words(), gpa, buf)
            }
            fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
                words::write(self.words(), gpa, data)
            }
            fn compare_exchange_u32(
                &self,
                gpa: u64,
                current: u32,
                new: u32,
            ) -> Result<Result<u32, u32>, MemoryError> {
                words::compare_exchange_u32(self.words(), gpa, current, new)
            }
            fn compare_exchange_u64(
                &self,
                gpa: u64,
                current: u64,
                new: u64,
            ) -> Result<Result<u64, u64>, MemoryError> {
                words::compare_exchange_u64(self.words(), gpa, current, new)
            }
            fn fetch_or_u64(&self, gpa: u64, bits: u64) -> Result<u64, MemoryError> {
                words::fetch_or_u64(self.words(), gpa, bits)
            }
        }
    };
}

/// In-memory guest RAM of `WORDS` × 8 bytes in an array of atomic words, mapped at guest
/// physical address 0: the heap-free sibling of `AtomicMemory`, for `no_std` tests and small
/// guests. Same semantics (every access is an atomic operation on a little-endian word).
pub struct ArrayMemory<const WORDS: usize> {
    words: [core::sync::atomic::AtomicU64; WORDS],
}

impl<const WORDS: usize> ArrayMemory<WORDS> {
    /// Zeroed memory.
    pub fn new() -> Self {
        Self {
            words: core::array::from_fn(|_| core::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        WORDS as u64 * 8
    }

    fn words(&self) -> &[core::sync::atomic::AtomicU64] {
        &self.words
    }
}

impl<const WORDS: usize> Default for ArrayMemory<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const WORDS: usize> core::fmt::Debug for ArrayMemory<WORDS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ArrayMemory")
            .field("size", &self.size())
            .finish()
    }
}

word_memory!(ArrayMemory<WORDS>, const WORDS: usize);

#[cfg(feature = "alloc")]
mod atomic {
    use alloc::vec::Vec;
    use core::sync::atomic::AtomicU64;

    use super::{words, GuestMemory, MemoryError};

    /// In-memory guest RAM backed by atomic words, mapped at guest physical address 0.
    ///
    /// Safe to share between threads that play host and guest at the same time: every access is
    /// an atomic load, store or read-modify-write of a little-endian 64-bit word, and partial-word
    /// writes merge with a compare-exchange loop so they never undo a neighbour's atomic update.
    /// Used by the tests, the fuzz targets and the benchmarks, and usable by any VMM that keeps
    /// guest RAM in the heap.
    pub struct AtomicMemory {
        words: Vec<AtomicU64>,
    }

    impl core::fmt::Debug for AtomicMemory {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("AtomicMemory")
                .field("size", &self.size())
                .finish()
        }
    }

    impl AtomicMemory {
        /// `size` bytes of zeroed memory (rounded up to a multiple of 8).
        pub fn new(size: u64) -> Self {
            let words = usize::try_from(size.div_ceil(8)).unwrap_or(usize::MAX);
            Self {
                words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            }
        }

        /// Size in bytes.
        pub fn size(&self) -> u64 {
            self.words.len() as u64 * 8
        }

        fn words(&self) -> &[AtomicU64] {
            &self.words
        }
    }

    word_memory!(AtomicMemory);

    impl<T: GuestMemory + ?Sized> GuestMemory for alloc::sync::Arc<T> {
        fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            (**self).read(gpa, buf)
        }
        fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
            (**self).write(gpa, data)
        }
        fn compare_exchange_u32(
            &self,
            gpa: u64,
            current: u32,
            new: u32,
        ) -> Result<Result<u32, u32>, MemoryError> {
            (**self).compare_exchange_u32(gpa, current, new)
        }
        fn compare_exchange_u64(
            &self,
            gpa: u64,
            current: u64,
            new: u64,
        ) -> Result<Result<u64, u64>, MemoryError> {
            (**self).compare_exchange_u64(gpa, current, new)
        }
        fn fetch_or_u64(&self, gpa: u64, bits: u64) -> Result<u64, MemoryError> {
            (**self).fetch_or_u64(gpa, bits)
        }
        fn read_u32(&self, gpa: u64) -> Result<u32, MemoryError> {
            (**self).read_u32(gpa)
        }
        fn read_u64(&self, gpa: u64) -> Result<u64, MemoryError> {
            (**self).read_u64(gpa)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn unaligned_copies_round_trip() {
            let mem = AtomicMemory::new(64);
            let data: std::vec::Vec<u8> = (1..=29).collect();
            mem.write(3, &data).unwrap();
            let mut back = [0u8; 29];
            mem.read(3, &mut back).unwrap();
            assert_eq!(&back[..], &data[..]);
            let mut around = [0xffu8; 35];
            mem.read(0, &mut around).unwrap();
            assert_eq!(&around[..3], &[0, 0, 0]);
            assert_eq!(&around[32..], &[0, 0, 0]);
            assert_eq!(mem.read_u32(3).unwrap(), 0x0403_0201);
        }

        #[test]
        fn bounds_and_alignment() {
            let mem = AtomicMemory::new(16);
            assert_eq!(
                mem.write(10, &[0; 7]),
                Err(MemoryError::OutOfRange { gpa: 10, len: 7 })
            );
            assert_eq!(
                mem.read(u64::MAX, &mut [0; 2]),
                Err(MemoryError::OutOfRange {
                    gpa: u64::MAX,
                    len: 2
                })
            );
            assert!(mem.read(16, &mut []).is_ok());
            assert_eq!(
                mem.compare_exchange_u32(2, 0, 1),
                Err(MemoryError::Unaligned { gpa: 2, align: 4 })
            );
            assert_eq!(
                mem.fetch_or_u64(4, 1),
                Err(MemoryError::Unaligned { gpa: 4, align: 8 })
            );
            assert!(mem.fetch_or_u64(16, 1).is_err());
        }

        #[test]
        fn atomics_touch_only_their_lane() {
            let mem = AtomicMemory::new(16);
            mem.write(0, &[0xaa; 8]).unwrap();
            assert_eq!(mem.compare_exchange_u32(4, 0, 7).unwrap(), Err(0xaaaa_aaaa));
            assert_eq!(
                mem.compare_exchange_u32(4, 0xaaaa_aaaa, 7).unwrap(),
                Ok(0xaaaa_aaaa)
            );
            assert_eq!(mem.read_u64(0).unwrap(), 0x0000_0007_aaaa_aaaa);
            assert_eq!(mem.fetch_or_u64(8, 0x10).unwrap(), 0);
            assert_eq!(mem.fetch_or_u64(8, 0x01).unwrap(), 0x10);
            assert_eq!(mem.compare_exchange_u64(8, 0x11, 5).unwrap(), Ok(0x11));
            mem.zero(0, 16).unwrap();
            assert_eq!(mem.read_u64(8).unwrap(), 0);
        }

        #[test]
        fn partial_writes_do_not_undo_concurrent_atomics() {
            let mem = std::sync::Arc::new(AtomicMemory::new(8));
            let writer = {
                let mem = mem.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        mem.write(4, &(i as u16).to_le_bytes()).unwrap();
                    }
                })
            };
            for i in 1..=20_000u32 {
                assert_eq!(mem.compare_exchange_u32(0, i - 1, i).unwrap(), Ok(i - 1));
            }
            writer.join().unwrap();
            assert_eq!(mem.read_u32(0).unwrap(), 20_000);
        }

        #[test]
        fn partial_writes_keep_their_neighbours() {
            let mem = AtomicMemory::new(16);
            for start in 0..8u64 {
                for n in 1..=8 - start as usize {
                    mem.write(0, &[0xee; 16]).unwrap();
                    mem.write(start, &[0x11; 8][..n]).unwrap();
                    let mut expect = [0xeeu8; 16];
                    expect[start as usize..start as usize + n].fill(0x11);
                    let mut back = [0u8; 16];
                    mem.read(0, &mut back).unwrap();
                    assert_eq!(back, expect, "{n} bytes at {start}");
                }
            }
        }

        #[test]
        fn zero_clears_exactly_its_range() {
            let mem = AtomicMemory::new(1024);
            for (gpa, len) in [(8, 300), (3, 256), (0, 512), (700, 1)] {
                mem.write(0, &[0xff; 1024]).unwrap();
                mem.zero(gpa, len).unwrap();
                let mut back = [0u8; 1024];
                mem.read(0, &mut back).unwrap();
                let (gpa, len) = (gpa as usize, len as usize);
                assert!(back[..gpa].iter().all(|&b| b == 0xff), "{gpa}+{len}");
                assert!(back[gpa..gpa + len].iter().all(|&b| b == 0), "{gpa}+{len}");
                assert!(back[gpa + len..].iter().all(|&b| b == 0xff), "{gpa}+{len}");
            }
            assert!(mem.zero(1000, 25).is_err());
        }

        /// Every operation with exact results, so that a forwarding impl that drops one shows.
        fn exercise<M: GuestMemory>(mem: M) {
            mem.write(8, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
            let mut b = [0; 3];
            mem.read(9, &mut b).unwrap();
            assert_eq!(b, [2, 3, 4]);
            assert_eq!(mem.read_u32(12).unwrap(), 0x0807_0605);
            assert_eq!(mem.read_u64(8).unwrap(), 0x0807_0605_0403_0201);
            assert_eq!(
                mem.compare_exchange_u32(8, 0x0403_0201, 9).unwrap(),
                Ok(0x0403_0201)
            );
            assert_eq!(
                mem.compare_exchange_u64(8, 9, 0xfeed).unwrap(),
                Err(0x0807_0605_0000_0009)
            );
            assert_eq!(
                mem.compare_exchange_u64(8, 0x0807_0605_0000_0009, 0xfeed)
                    .unwrap(),
                Ok(0x0807_0605_0000_0009)
            );
            assert_eq!(mem.fetch_or_u64(8, 1 << 40).unwrap(), 0xfeed);
            assert_eq!(mem.read_u64(8).unwrap(), 0xfeed | 1 << 40);
            mem.zero(8, 8).unwrap();
            assert_eq!(mem.read_u64(8).unwrap(), 0);
            assert!(mem.read(20, &mut [0; 8]).is_err());
        }

        #[test]
        fn shared_and_borrowed_memory_forward_every_operation() {
            let mem = AtomicMemory::new(20);
            assert_eq!(mem.size(), 24);
            assert_eq!(std::format!("{mem:?}"), "AtomicMemory { size: 24 }");
            exercise(&mem);
            exercise(std::sync::Arc::new(mem));
            exercise(std::sync::Arc::new(crate::memory::ArrayMemory::<3>::new()));
            assert_eq!(
                std::format!("{:?}", crate::memory::ArrayMemory::<3>::new()),
                "ArrayMemory { size: 24 }"
            );
        }

        #[test]
        fn array_memory_behaves_the_same() {
            let mem = crate::memory::ArrayMemory::<2>::new();
            assert_eq!(mem.size(), 16);
            mem.write(3, &[1, 2, 3, 4, 5]).unwrap();
            assert_eq!(mem.read_u32(4).unwrap(), 0x0504_0302);
            assert_eq!(mem.compare_exchange_u32(8, 0, 0x0a0b).unwrap(), Ok(0));
            assert_eq!(mem.fetch_or_u64(8, 1 << 63).unwrap(), 0x0000_0000_0000_0a0b);
            assert!(mem.read(9, &mut [0; 8]).is_err());
            assert!(mem.compare_exchange_u64(4, 0, 0).is_err());
        }
    }
}

#[cfg(feature = "alloc")]
pub use atomic::AtomicMemory;

/// Test support: guest memory that tells a hook of each write and atomic OR after doing it.
/// The hook may change memory itself, to play a guest racing with the host.
#[cfg(all(test, feature = "alloc"))]
pub(crate) mod observed {
    use super::{AtomicMemory, GuestMemory, MemoryError};

    /// An access the hook hears of.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Access {
        /// `write(gpa, data)` with `data.len() == len`.
        Write { gpa: u64, len: usize },
        /// `fetch_or_u64(gpa, _)`.
        FetchOr { gpa: u64 },
    }

    /// `inner`, with `hook` called after each write and atomic OR.
    pub(crate) struct Observed<'a, F: Fn(&AtomicMemory, Access)> {
        pub inner: &'a AtomicMemory,
        pub hook: F,
    }

    impl<F: Fn(&AtomicMemory, Access)> GuestMemory for Observed<'_, F> {
        fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            self.inner.read(gpa, buf)
        }
        fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
            self.inner.write(gpa, data)?;
            (self.hook)(
                self.inner,
                Access::Write {
                    gpa,
                    len: data.len(),
                },
            );
            Ok(())
        }
        fn compare_exchange_u32(
            &self,
            gpa: u64,
            current: u32,
            new: u32,
        ) -> Result<Result<u32, u32>, MemoryError> {
            self.inner.compare_exchange_u32(gpa, current, new)
        }
        fn compare_exchange_u64(
            &self,
            gpa: u64,
            current: u64,
            new: u64,
        ) -> Result<Result<u64, u64>, MemoryError> {
            self.inner.compare_exchange_u64(gpa, current, new)
        }
        fn fetch_or_u64(&self, gpa: u64, bits: u64) -> Result<u64, MemoryError> {
            let old = self.inner.fetch_or_u64(gpa, bits)?;
            (self.hook)(self.inner, Access::FetchOr { gpa });
            Ok(old)
        }
    }
}
