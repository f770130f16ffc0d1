//! The VHD on-disk definitions: layouts, constants, checksums, geometry, timestamps.
//!
//! This layer is pure: no I/O, no allocation, no `unsafe`. Everything here works in `core`.
//! Layouts follow the Microsoft *Virtual Hard Disk Image Format Specification* 1.0 (2006),
//! with the deviations every real implementation agrees on noted where they apply.

mod bitmap;
mod dynamic;
mod footer;
mod geometry;
mod time;

pub use bitmap::{bitmap_bytes, SectorBitmap, SectorBitmapMut};
pub use dynamic::{
    DynamicHeader, ParentLocatorEntry, PlatformCode, DYNAMIC_COOKIE, HEADER_VERSION,
};
pub use footer::{
    CreatorHostOs, DiskGeometry, DiskType, Features, Footer, FourCc, FOOTER_COOKIE, FORMAT_VERSION,
};
pub use geometry::Geometry;
pub use time::{VhdTime, VHD_EPOCH_UNIX};

/// Bytes in a VHD sector. Always 512, whatever the host's sector size.
pub const SECTOR_SIZE: u64 = 512;

/// `data_offset` value meaning "none" (fixed disks; the dynamic header's unused field). The spec
/// text says `0xFFFFFFFF`, but every implementation writes all 64 bits set; readers accept both.
pub const NO_DATA_OFFSET: u64 = u64::MAX;

/// BAT entry value for a block that is not allocated.
pub const BAT_UNALLOCATED: u32 = u32::MAX;

/// Default (and near-universal) block size of dynamic and differencing disks: 2 MiB.
pub const DEFAULT_BLOCK_SIZE: u32 = 2 << 20;

/// The largest virtual size the VHD ecosystem accepts: 2040 GiB (`0xff000000` sectors), the
/// limit qemu enforces and Hyper-V documents. BAT entries are 32-bit sector numbers, so sparse
/// files cannot grow much beyond 2 TiB anyway.
pub const MAX_DISK_SIZE: u64 = 0xff00_0000 * SECTOR_SIZE;

/// The VHD checksum: the one's complement of the byte sum of `bytes`, with the four bytes at
/// `checksum_offset` counted as zero.
///
/// Covers 512 bytes for the footer and 1024 for the dynamic header.
pub fn checksum(bytes: &[u8], checksum_offset: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(checksum_offset..checksum_offset + 4).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

/// A 128-bit identifier (the footer's unique id, the parent's unique id).
///
/// VHD treats it as 16 opaque bytes, compared byte for byte; [`Display`](core::fmt::Display)
/// prints them in order in the RFC 4122 text form, as libvhdi and qemu do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero id.
    pub const NIL: Self = Self([0; 16]);

    /// Builds a random-version (v4) UUID from 16 bytes of entropy supplied by the caller.
    pub fn from_random_bytes(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(bytes)
    }

    /// Parses the RFC 4122 text form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, any case).
    pub fn parse(text: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        let mut nibbles = text
            .bytes()
            .enumerate()
            .filter(|&(i, _)| !matches!(i, 8 | 13 | 18 | 23))
            .map(|(_, c)| (c as char).to_digit(16));
        if text.len() != 36 || [8, 13, 18, 23].iter().any(|&i| text.as_bytes()[i] != b'-') {
            return None;
        }
        for byte in &mut out {
            let hi = nibbles.next()??;
            let lo = nibbles.next()??;
            *byte = (hi << 4 | lo) as u8;
        }
        Some(Self(out))
    }
}

impl core::fmt::Display for Uuid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl core::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// Declares an *open enum*: a transparent newtype over a wire integer with named constants, whose
/// `Debug` prints the name when the value is known and the number otherwise.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        $vis struct $name(pub $repr);

        impl $name {
            $( $(#[$vmeta])* pub const $variant: Self = Self($value); )*

            /// The constant's name, if the value is one this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some(stringify!($variant)), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }
    };
}
pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_skips_its_own_field_and_inverts() {
        let mut bytes = [0u8; 16];
        bytes[0] = 1;
        bytes[1] = 2;
        bytes[8..12].copy_from_slice(&[0xff; 4]);
        assert_eq!(checksum(&bytes, 8), !3);
        bytes[8..12].copy_from_slice(&[0; 4]);
        assert_eq!(checksum(&bytes, 8), !3);
    }

    #[test]
    fn uuid_text_round_trip() {
        let text = "5b4f1c2a-09de-4f11-8e3a-00aabbccddee";
        let id = Uuid::parse(text).unwrap();
        assert_eq!(id.0[0], 0x5b);
        assert_eq!(id.0[15], 0xee);
        assert_eq!(alloc_free_display(&id), text);
        assert!(Uuid::parse("5b4f1c2a-09de-4f11-8e3a-00aabbccddeg").is_none());
        assert!(Uuid::parse("5b4f1c2a09de-4f11-8e3a-00aabbccddeef").is_none());
        // Right length, one dash replaced by a digit; and lengths around 36.
        for at in [8, 13, 18, 23] {
            let mut bytes = *b"5b4f1c2a-09de-4f11-8e3a-00aabbccddee";
            bytes[at] = b'0';
            let bad = core::str::from_utf8(&bytes).unwrap();
            assert!(Uuid::parse(bad).is_none(), "{bad}");
        }
        for bad in ["", "5b4f1c2a", &text[..35], &std::format!("{text}0")] {
            assert!(Uuid::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(std::format!("{id:?}"), std::format!("Uuid({text})"));
        let v4 = Uuid::from_random_bytes([0xff; 16]);
        assert_eq!(v4.0[6] >> 4, 4);
        assert_eq!(v4.0[8] >> 6, 2);
    }

    fn alloc_free_display(id: &Uuid) -> std::string::String {
        std::format!("{id}")
    }
}
