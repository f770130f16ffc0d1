//! `hv-hypercall`'s guest-memory seam ([`hv_hypercall::memory::GuestMemory`]) over the VMM's
//! guest RAM ([`crate::memory::GuestMemory`]).
//!
//! The SynIC model and the hypercall dispatcher read hypercall input blocks, write the
//! hypercall and reference TSC pages, and update message slots and event flags through it.
//! Copies go byte by byte through the RAM's atomic view (never rewriting a neighbouring byte
//! the guest may be updating); the compare-exchange and fetch-or operations are real
//! sequentially consistent atomics on the guest's bytes, as the trait requires.

use core::sync::atomic::Ordering;

use hv_hypercall::memory::{GuestMemory as HvGuestMemory, MemoryError as HvMemoryError};

use crate::memory::{GuestMemory, MemoryError};

/// Translates a RAM access error into the trait's.
fn hv_error(error: MemoryError) -> HvMemoryError {
    match error {
        MemoryError::OutOfRange { gpa, len, .. } => HvMemoryError::OutOfRange { gpa, len },
        MemoryError::Unaligned { gpa, align } => HvMemoryError::Unaligned { gpa, align },
        // Mapping failures only happen when RAM is created.
        MemoryError::Map { size, .. } => HvMemoryError::OutOfRange { gpa: 0, len: size },
    }
}

impl HvGuestMemory for GuestMemory {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), HvMemoryError> {
        self.read_at(gpa, buf).map_err(hv_error)
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), HvMemoryError> {
        self.write_at(gpa, data).map_err(hv_error)
    }

    fn compare_exchange_u32(
        &self,
        gpa: u64,
        current: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, HvMemoryError> {
        let word = self.atomic_u32(gpa).map_err(hv_error)?;
        Ok(word.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst))
    }

    fn compare_exchange_u64(
        &self,
        gpa: u64,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, HvMemoryError> {
        let word = self.atomic_u64(gpa).map_err(hv_error)?;
        Ok(word.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst))
    }

    fn fetch_or_u64(&self, gpa: u64, bits: u64) -> Result<u64, HvMemoryError> {
        let word = self.atomic_u64(gpa).map_err(hv_error)?;
        Ok(word.fetch_or(bits, Ordering::SeqCst))
    }

    fn read_u32(&self, gpa: u64) -> Result<u32, HvMemoryError> {
        match self.atomic_u32(gpa) {
            Ok(word) => Ok(word.load(Ordering::SeqCst)),
            // Unaligned: a plain copy, as the trait's provided version does.
            Err(MemoryError::Unaligned { .. }) => {
                let mut b = [0; 4];
                self.read_at(gpa, &mut b).map_err(hv_error)?;
                Ok(u32::from_le_bytes(b))
            }
            Err(e) => Err(hv_error(e)),
        }
    }

    fn read_u64(&self, gpa: u64) -> Result<u64, HvMemoryError> {
        match self.atomic_u64(gpa) {
            Ok(word) => Ok(word.load(Ordering::SeqCst)),
            Err(MemoryError::Unaligned { .. }) => {
                let mut b = [0; 8];
                self.read_at(gpa, &mut b).map_err(hv_error)?;
                Ok(u64::from_le_bytes(b))
            }
            Err(e) => Err(hv_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_trait_with_bounds_and_alignment_checks() {
        let mem = GuestMemory::new(0x2000).unwrap();
        let hv: &dyn HvGuestMemory = &mem;
        hv.write(0x1000, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert_eq!(hv.read_u64(0x1000).unwrap(), 0x0807_0605_0403_0201);
        assert_eq!(hv.read_u32(0x1001).unwrap(), 0x0504_0302);
        assert_eq!(
            hv.compare_exchange_u32(0x1000, 0x0403_0201, 9).unwrap(),
            Ok(0x0403_0201)
        );
        assert_eq!(
            hv.compare_exchange_u32(0x1000, 0x0403_0201, 7).unwrap(),
            Err(9)
        );
        assert_eq!(
            hv.fetch_or_u64(0x1000, 1 << 63).unwrap(),
            0x0807_0605_0000_0009
        );
        assert_eq!(
            hv.compare_exchange_u64(0x1000, 0x8807_0605_0000_0009, 0)
                .unwrap(),
            Ok(0x8807_0605_0000_0009)
        );
        assert_eq!(hv.read_u64(0x1000).unwrap(), 0);
        assert_eq!(
            hv.fetch_or_u64(0x1004, 1),
            Err(HvMemoryError::Unaligned {
                gpa: 0x1004,
                align: 8
            })
        );
        assert_eq!(
            hv.write(0x1ffc, &[0; 8]),
            Err(HvMemoryError::OutOfRange {
                gpa: 0x1ffc,
                len: 8
            })
        );
        assert!(hv.compare_exchange_u32(0x2000, 0, 1).is_err());
        hv.zero(0x1800, 0x800).unwrap();
        assert!(hv.zero(0x1800, 0x801).is_err());
    }
}
