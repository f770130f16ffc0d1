//! Sector bitmaps: one bit per sector of a block, most-significant bit first.
//!
//! Sector `k` of a block is bit `7 - k % 8` of byte `k / 8`, so `0x80` in byte 0 is sector 0.
//! On a dynamic disk a set bit means the sector holds data (a clear one reads as zeros); on a
//! differencing disk it means the sector is in the child (a clear one comes from the parent).

/// Bytes of bitmap, padded to whole sectors, for a block of `block_size` bytes.
pub const fn bitmap_bytes(block_size: u32) -> u32 {
    let bits = block_size / 512;
    let bytes = bits.div_ceil(8);
    bytes.div_ceil(512) * 512
}

/// A read-only view of a sector bitmap.
#[derive(Clone, Copy, Debug)]
pub struct SectorBitmap<'a>(pub &'a [u8]);

impl SectorBitmap<'_> {
    /// Whether sector `k` is marked. Sectors beyond the bitmap read as unmarked.
    pub fn get(&self, k: usize) -> bool {
        self.0
            .get(k / 8)
            .is_some_and(|b| b & (0x80 >> (k % 8)) != 0)
    }

    /// The length of the run of sectors starting at `k` (capped at `limit`) that share sector
    /// `k`'s state, and that state.
    pub fn run(&self, k: usize, limit: usize) -> (bool, usize) {
        let state = self.get(k);
        let mut n = 1;
        while n < limit {
            let i = k + n;
            // Skip whole bytes when aligned.
            if i.is_multiple_of(8) && n + 8 <= limit {
                let want = if state { 0xff } else { 0 };
                if self.0.get(i / 8).copied().unwrap_or(0) == want {
                    n += 8;
                    continue;
                }
            }
            if self.get(i) != state {
                break;
            }
            n += 1;
        }
        (state, n.min(limit))
    }

    /// Whether all of `sectors` sectors from `first` are marked.
    pub fn all_set(&self, first: usize, sectors: usize) -> bool {
        let (state, n) = self.run(first, sectors);
        state && n == sectors
    }
}

/// A mutable view of a sector bitmap.
#[derive(Debug)]
pub struct SectorBitmapMut<'a>(pub &'a mut [u8]);

impl SectorBitmapMut<'_> {
    /// Marks `sectors` sectors from `first`. Sectors beyond the bitmap are ignored.
    pub fn set_range(&mut self, first: usize, sectors: usize) {
        let mut k = first;
        let end = first + sectors;
        while k < end {
            if k.is_multiple_of(8) && k + 8 <= end {
                if let Some(b) = self.0.get_mut(k / 8) {
                    *b = 0xff;
                }
                k += 8;
            } else {
                if let Some(b) = self.0.get_mut(k / 8) {
                    *b |= 0x80 >> (k % 8);
                }
                k += 1;
            }
        }
    }

    /// A read-only view.
    pub fn as_ref(&self) -> SectorBitmap<'_> {
        SectorBitmap(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msb_first() {
        let bytes = [0x80u8, 0x01];
        let b = SectorBitmap(&bytes);
        assert!(b.get(0));
        assert!(!b.get(1));
        assert!(b.get(15));
        assert!(!b.get(14));
        assert!(!b.get(9999));
    }

    #[test]
    fn runs_and_set_range() {
        let mut bytes = [0u8; 8];
        SectorBitmapMut(&mut bytes).set_range(3, 20);
        assert_eq!(bytes[..4], [0x1f, 0xff, 0xfe, 0x00]);
        let b = SectorBitmap(&bytes);
        assert_eq!(b.run(0, 64), (false, 3));
        assert_eq!(b.run(3, 64), (true, 20));
        assert_eq!(b.run(23, 41), (false, 41));
        assert_eq!(b.run(23, 64), (false, 64));
        assert_eq!(b.run(3, 5), (true, 5));
        assert!(b.all_set(4, 19));
        assert!(!b.all_set(2, 2));
    }

    #[test]
    fn bitmap_sizes() {
        assert_eq!(bitmap_bytes(2 << 20), 512);
        assert_eq!(bitmap_bytes(512 << 10), 512);
        assert_eq!(bitmap_bytes(4 << 20), 1024);
        assert_eq!(bitmap_bytes(512), 512);
    }
}
