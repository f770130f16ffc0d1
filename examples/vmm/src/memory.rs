//! Guest RAM: one anonymous host mapping, addressed by guest-physical address.
//!
//! All accesses are bounds-checked copies in and out; nothing hands out a reference into
//! guest memory. The VMM runs the guest's only vCPU on the thread that owns this value, and
//! KVM runs the guest only inside `KVM_RUN`, so these copies never race with guest writes.
//! Once there are several vCPUs (or devices on other threads), accesses must become volatile
//! copies; the interface already has that shape.

use memmap2::MmapMut;

/// Guest RAM, mapped at guest-physical address 0.
#[derive(Debug)]
pub struct GuestMemory {
    mmap: MmapMut,
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
}

impl GuestMemory {
    /// Maps `size` bytes of zeroed guest RAM.
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        let map_error = |source| MemoryError::Map { size, source };
        let len = usize::try_from(size)
            .map_err(|_| map_error(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
        let mmap = MmapMut::map_anon(len).map_err(map_error)?;
        Ok(Self { mmap })
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
        let range = self.range(gpa, buf.len() as u64)?;
        buf.copy_from_slice(&self.mmap[range]);
        Ok(())
    }

    /// Copies `data` into guest RAM at `gpa`.
    pub fn write_at(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let range = self.range(gpa, data.len() as u64)?;
        self.mmap[range].copy_from_slice(data);
        Ok(())
    }

    /// Sets `len` bytes of guest RAM at `gpa` to `byte`.
    pub fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> Result<(), MemoryError> {
        let range = self.range(gpa, len)?;
        self.mmap[range].fill(byte);
        Ok(())
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
        let mut mem = GuestMemory::new(0x2000).unwrap();
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
        let mut mem = GuestMemory::new(0x1000).unwrap();
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
}
