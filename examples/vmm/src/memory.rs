//! Guest RAM: one anonymous host mapping, addressed by guest-physical address.
//!
//! All accesses are bounds-checked; nothing hands out a plain `&[u8]`/`&mut [u8]` into guest
//! memory. The guest (and KVM on its behalf) writes this memory behind Rust's back, so the
//! only views handed out are atomics ([`GuestMemory::atomic_bytes`], [`GuestMemory::atomic_u32`],
//! [`GuestMemory::atomic_u64`]), which are made for memory that others change concurrently;
//! the copies in and out are built on them. `guest_memory.rs` implements `hv-hypercall`'s
//! guest-memory trait on top.
//!
//! # Why this module uses `unsafe`
//!
//! Turning the mapping's raw address into atomic views needs `unsafe` (three blocks, one per
//! view, each with its argument). The mapping is a [`MmapRaw`], which never creates references
//! itself, lives as long as `self` and is never remapped, so every view borrowed from `&self`
//! stays valid. Mixed-size atomics on the same bytes (a byte copy and a `u64` compare-exchange)
//! happen only from the VMM's single vCPU thread, one after the other, never concurrently.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use memmap2::{MmapMut, MmapRaw};

/// Guest RAM, mapped at guest-physical address 0.
#[derive(Debug)]
pub struct GuestMemory {
    mmap: MmapRaw,
}

/// An error accessing guest RAM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The host could not map the requested amount of memory.
    #[error("cannot map {size} bytes of guest ram")]
    Map {
        /// The requested size in bytes.
        size: u64,
        /// The mapping error.
        #[source]
        source: std::io::Error,
    },
    /// An access reaches past the end of guest RAM.
    #[error("guest-physical range {gpa:#x}+{len:#x} is outside guest ram (size {size:#x})")]
    OutOfRange {
        /// Start of the access.
        gpa: u64,
        /// Length of the access in bytes.
        len: u64,
        /// Size of guest RAM.
        size: u64,
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

impl GuestMemory {
    /// Maps `size` bytes of zeroed guest RAM.
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        let map_error = |source| MemoryError::Map { size, source };
        let len = usize::try_from(size)
            .map_err(|_| map_error(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
        let mmap = MmapMut::map_anon(len).map_err(map_error)?;
        Ok(Self { mmap: mmap.into() })
    }

    /// Size of guest RAM in bytes.
    pub fn size(&self) -> u64 {
        self.mmap.len() as u64
    }

    /// The host address of guest-physical address 0, for registering the memory with KVM.
    pub fn host_address(&self) -> u64 {
        self.mmap.as_ptr() as u64
    }

    /// Copies guest RAM at `gpa` into `buf`.
    pub fn read_at(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let src = self.atomic_bytes(gpa, buf.len() as u64)?;
        for (b, a) in buf.iter_mut().zip(src) {
            *b = a.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `data` into guest RAM at `gpa`.
    pub fn write_at(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let dst = self.atomic_bytes(gpa, data.len() as u64)?;
        for (a, &b) in dst.iter().zip(data) {
            a.store(b, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sets `len` bytes of guest RAM at `gpa` to `byte`.
    pub fn fill(&self, gpa: u64, len: u64, byte: u8) -> Result<(), MemoryError> {
        for a in self.atomic_bytes(gpa, len)? {
            a.store(byte, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The `len` bytes at `gpa` as atomics (byte accesses never tear, and never rewrite
    /// neighbouring bytes the guest may be updating).
    pub fn atomic_bytes(&self, gpa: u64, len: u64) -> Result<&[AtomicU8], MemoryError> {
        let range = self.range(gpa, len)?;
        let ptr = self.mmap.as_mut_ptr().wrapping_add(range.start);
        // SAFETY: `range` lies inside the mapping (checked above), which is readable, writable
        // and stays mapped while `self` is borrowed; `AtomicU8` has the size and alignment of
        // `u8`, any byte is a valid value, and atomics permit the concurrent writes of the
        // guest. No non-atomic reference to these bytes exists (see the module documentation).
        Ok(unsafe { core::slice::from_raw_parts(ptr.cast::<AtomicU8>(), range.len()) })
    }

    /// The 4-byte-aligned `u32` at `gpa` as an atomic.
    pub fn atomic_u32(&self, gpa: u64) -> Result<&AtomicU32, MemoryError> {
        let ptr = self.aligned(gpa, 4)?;
        // SAFETY: `aligned` proved the 4 bytes lie inside the mapping and are 4-byte aligned
        // (the mapping is page-aligned); they stay mapped while `self` is borrowed and are only
        // accessed atomically (see the module documentation).
        Ok(unsafe { AtomicU32::from_ptr(ptr.cast()) })
    }

    /// The 8-byte-aligned `u64` at `gpa` as an atomic.
    pub fn atomic_u64(&self, gpa: u64) -> Result<&AtomicU64, MemoryError> {
        let ptr = self.aligned(gpa, 8)?;
        // SAFETY: as in `atomic_u32`, for 8 aligned bytes.
        Ok(unsafe { AtomicU64::from_ptr(ptr.cast()) })
    }

    /// All of guest RAM as 64-bit atomics, word `i` at guest-physical address `8 * i` (the
    /// page map `vmbus-ring` reads rings and GPADL buffers through).
    pub fn words(&self) -> &[AtomicU64] {
        let ptr = self.mmap.as_mut_ptr();
        // SAFETY: the mapping is page-aligned (so 8-aligned), readable and writable, a whole
        // number of pages long, and stays mapped while `self` is borrowed; `AtomicU64` has the
        // size of `u64` and accepts every bit pattern; all host accesses to guest RAM are atomic
        // (see the module documentation), so the guest's concurrent writes are permitted.
        unsafe { core::slice::from_raw_parts(ptr.cast::<AtomicU64>(), self.mmap.len() / 8) }
    }

    /// The host address of `gpa..gpa + align`, checked to be inside RAM and aligned.
    fn aligned(&self, gpa: u64, align: u64) -> Result<*mut u8, MemoryError> {
        if !gpa.is_multiple_of(align) {
            return Err(MemoryError::Unaligned { gpa, align });
        }
        let range = self.range(gpa, align)?;
        Ok(self.mmap.as_mut_ptr().wrapping_add(range.start))
    }

    /// Checks that `gpa..gpa + len` lies inside guest RAM and turns it into a host index range.
    fn range(&self, gpa: u64, len: u64) -> Result<core::ops::Range<usize>, MemoryError> {
        let size = self.size();
        let out_of_range = MemoryError::OutOfRange { gpa, len, size };
        match gpa.checked_add(len) {
            // Both ends are at most `size`, which came from a `usize`.
            Some(end) if end <= size => Ok(gpa as usize..end as usize),
            _ => Err(out_of_range),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fill() {
        let mem = GuestMemory::new(0x2000).unwrap();
        mem.write_at(0x1ffc, &[1, 2, 3, 4]).unwrap();
        let mut buf = [0; 6];
        mem.read_at(0x1ffa, &mut buf).unwrap();
        assert_eq!(buf, [0, 0, 1, 2, 3, 4]);
        mem.fill(0x1ffd, 3, 0xaa).unwrap();
        mem.read_at(0x1ffc, &mut buf[..4]).unwrap();
        assert_eq!(buf[..4], [1, 0xaa, 0xaa, 0xaa]);
    }

    #[test]
    fn rejects_accesses_past_the_end() {
        let mem = GuestMemory::new(0x1000).unwrap();
        assert!(matches!(
            mem.write_at(0xffd, &[0; 4]),
            Err(MemoryError::OutOfRange {
                gpa: 0xffd,
                len: 4,
                size: 0x1000
            })
        ));
        assert!(mem.read_at(u64::MAX, &mut [0; 2]).is_err());
        assert!(mem.fill(0x1000, 1, 0).is_err());
        // Empty accesses at the very end are fine.
        mem.write_at(0x1000, &[]).unwrap();
    }

    #[test]
    fn atomics_see_the_copies() {
        let mem = GuestMemory::new(0x1000).unwrap();
        mem.write_at(0x10, &0x1122_3344_5566_7788u64.to_le_bytes())
            .unwrap();
        assert_eq!(
            mem.atomic_u64(0x10).unwrap().load(Ordering::SeqCst),
            0x1122_3344_5566_7788
        );
        assert_eq!(
            mem.atomic_u32(0x14).unwrap().load(Ordering::SeqCst),
            0x1122_3344
        );
        assert!(matches!(
            mem.atomic_u32(0x12),
            Err(MemoryError::Unaligned {
                gpa: 0x12,
                align: 4
            })
        ));
        assert!(matches!(
            mem.atomic_u64(0xffc),
            Err(MemoryError::Unaligned { .. })
        ));
        assert!(matches!(
            mem.atomic_u64(0x1000),
            Err(MemoryError::OutOfRange { .. })
        ));
        assert!(mem.atomic_bytes(0xfff, 2).is_err());
    }
}
