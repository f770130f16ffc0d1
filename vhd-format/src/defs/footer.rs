//! The 512-byte hard disk footer.

use zerocopy::byteorder::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{checksum, open_enum, Geometry, Uuid, VhdTime, NO_DATA_OFFSET};

/// `cookie` of every footer.
pub const FOOTER_COOKIE: [u8; 8] = *b"conectix";
/// `file_format_version`: 1.0 (major and minor as u16 halves).
pub const FORMAT_VERSION: u32 = 0x0001_0000;

/// The hard disk footer: at the end of every VHD file, and copied at offset 0 of dynamic and
/// differencing files. All fields big-endian.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Footer {
    /// `conectix`.
    pub cookie: [u8; 8],
    /// Feature bits: bit 0 = temporary disk, bit 1 = reserved and always set.
    pub features: U32,
    /// File format version, `0x00010000`.
    pub file_format_version: U32,
    /// Absolute offset of the dynamic header; all ones for fixed disks.
    pub data_offset: U64,
    /// Creation time, seconds since 2000-01-01 00:00:00 UTC.
    pub timestamp: U32,
    /// Application that created the image (`win `, `vpc `, `qemu`, `vs  ` …).
    pub creator_application: [u8; 4],
    /// Version of that application: major and minor as u16 halves.
    pub creator_version: U32,
    /// Host OS of the creator: `Wi2k` or `Mac `.
    pub creator_host_os: [u8; 4],
    /// Virtual size in bytes when the disk was created.
    pub original_size: U64,
    /// Virtual size in bytes now (changes when the disk is expanded).
    pub current_size: U64,
    /// Cylinders, heads and sectors per track the BIOS sees.
    pub disk_geometry: DiskGeometry,
    /// [`DiskType`]: 2 fixed, 3 dynamic, 4 differencing.
    pub disk_type: U32,
    /// One's complement of the byte sum of the footer without this field.
    pub checksum: U32,
    /// Identifies this disk; a differencing child stores its parent's.
    pub unique_id: [u8; 16],
    /// 1 when the disk is in a saved state (compact and expand must refuse it).
    pub saved_state: u8,
    /// Zero.
    pub reserved: [u8; 427],
}
const _: () = assert!(core::mem::size_of::<Footer>() == 512);

/// CHS geometry as stored in the footer: cylinders (u16), heads (u8), sectors per track (u8).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct DiskGeometry {
    /// Cylinders.
    pub cylinders: U16,
    /// Heads.
    pub heads: u8,
    /// Sectors per track.
    pub sectors_per_track: u8,
}
const _: () = assert!(core::mem::size_of::<DiskGeometry>() == 4);

impl From<Geometry> for DiskGeometry {
    fn from(g: Geometry) -> Self {
        Self {
            cylinders: U16::new(g.cylinders),
            heads: g.heads,
            sectors_per_track: g.sectors_per_track,
        }
    }
}

impl From<DiskGeometry> for Geometry {
    fn from(g: DiskGeometry) -> Self {
        Self {
            cylinders: g.cylinders.get(),
            heads: g.heads,
            sectors_per_track: g.sectors_per_track,
        }
    }
}

/// Offset of [`Footer::checksum`].
const CHECKSUM_OFFSET: usize = 64;

open_enum! {
    /// The footer's disk type.
    pub struct DiskType(u32) {
        /// No disk.
        NONE = 0,
        /// Reserved (deprecated).
        RESERVED1 = 1,
        /// Fixed: raw data followed by the footer.
        FIXED = 2,
        /// Dynamic (sparse): header, BAT, blocks.
        DYNAMIC = 3,
        /// Differencing: a dynamic disk whose unallocated sectors come from a parent.
        DIFFERENCING = 4,
        /// Reserved (deprecated).
        RESERVED5 = 5,
        /// Reserved (deprecated).
        RESERVED6 = 6,
    }
}

open_enum! {
    /// A creator host OS code.
    pub struct CreatorHostOs(u32) {
        /// Windows (`Wi2k`).
        WINDOWS = 0x5769_326B,
        /// Macintosh (`Mac `).
        MACINTOSH = 0x4D61_6320,
    }
}

/// A four-character code (creator application, host OS) as raw ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// Hyper-V / Windows (`win `); qemu sizes such disks by `current_size`.
    pub const WINDOWS: Self = Self(*b"win ");
    /// Microsoft Virtual PC (`vpc `); qemu sizes such disks by CHS geometry.
    pub const VIRTUAL_PC: Self = Self(*b"vpc ");
    /// Microsoft Virtual Server (`vs  `).
    pub const VIRTUAL_SERVER: Self = Self(*b"vs  ");
    /// qemu without `force_size` (`qemu`); CHS-sized.
    pub const QEMU: Self = Self(*b"qemu");
    /// qemu with `force_size` (`qem2`); sized by `current_size`.
    pub const QEMU_FORCE_SIZE: Self = Self(*b"qem2");
    /// Sysinternals disk2vhd (`d2v `).
    pub const DISK2VHD: Self = Self(*b"d2v ");
    /// XenServer tapdisk (`tap\0`).
    pub const XEN_TAP: Self = Self(*b"tap\0");
    /// Citrix XenConverter (`CTXS`).
    pub const XEN_CONVERTER: Self = Self(*b"CTXS");
    /// VirtualBox (`vbox`).
    pub const VIRTUALBOX: Self = Self(*b"vbox");
    /// Azure export (`wa\0\0`).
    pub const AZURE: Self = Self(*b"wa\0\0");
}

impl core::fmt::Debug for FourCc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl core::fmt::Display for FourCc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// The footer's feature bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features(pub u32);

impl Features {
    /// Bit 0: the disk is a candidate for deletion on shutdown.
    pub const TEMPORARY: u32 = 1 << 0;
    /// Bit 1: reserved, must always be set.
    pub const RESERVED: u32 = 1 << 1;
    /// The value writers use: only the reserved bit.
    pub const DEFAULT: Self = Self(Self::RESERVED);

    /// Whether the temporary bit is set.
    pub fn temporary(self) -> bool {
        self.0 & Self::TEMPORARY != 0
    }
}

impl Footer {
    /// A new footer with every field a writer must fill, checksum included.
    ///
    /// `data_offset` is `None` for fixed disks (written as all ones) and the dynamic header's
    /// offset otherwise. The geometry is the spec's CHS for `size`.
    pub fn new(
        disk_type: DiskType,
        size: u64,
        data_offset: Option<u64>,
        timestamp: VhdTime,
        unique_id: Uuid,
    ) -> Self {
        let mut footer = Self {
            cookie: FOOTER_COOKIE,
            features: U32::new(Features::DEFAULT.0),
            file_format_version: U32::new(FORMAT_VERSION),
            data_offset: U64::new(data_offset.unwrap_or(NO_DATA_OFFSET)),
            timestamp: U32::new(timestamp.0),
            creator_application: FourCc::WINDOWS.0,
            creator_version: U32::new(0x000a_0000),
            creator_host_os: CreatorHostOs::WINDOWS.0.to_be_bytes(),
            original_size: U64::new(size),
            current_size: U64::new(size),
            disk_geometry: Geometry::for_size(size).into(),
            disk_type: U32::new(disk_type.0),
            checksum: U32::new(0),
            unique_id: unique_id.0,
            saved_state: 0,
            reserved: [0; 427],
        };
        footer.update_checksum();
        footer
    }

    /// The checksum computed over the footer's bytes.
    pub fn compute_checksum(&self) -> u32 {
        checksum(self.as_bytes(), CHECKSUM_OFFSET)
    }

    /// Recomputes and stores the checksum.
    pub fn update_checksum(&mut self) {
        self.checksum = U32::new(self.compute_checksum());
    }

    /// Whether the stored checksum matches the bytes.
    pub fn checksum_ok(&self) -> bool {
        self.checksum.get() == self.compute_checksum()
    }

    /// The disk type as an open enum.
    pub fn disk_type(&self) -> DiskType {
        DiskType(self.disk_type.get())
    }

    /// The unique id.
    pub fn unique_id(&self) -> Uuid {
        Uuid(self.unique_id)
    }

    /// The creator application code.
    pub fn creator_application(&self) -> FourCc {
        FourCc(self.creator_application)
    }

    /// The creator host OS code.
    pub fn creator_host_os(&self) -> FourCc {
        FourCc(self.creator_host_os)
    }

    /// The stored CHS geometry.
    pub fn geometry(&self) -> Geometry {
        self.disk_geometry.into()
    }

    /// The creation timestamp.
    pub fn timestamp(&self) -> VhdTime {
        VhdTime(self.timestamp.get())
    }

    /// The feature bits.
    pub fn features(&self) -> Features {
        Features(self.features.get())
    }

    /// The dynamic header offset, or `None` when it holds a "none" value (all ones in 64 or 32 bits).
    pub fn data_offset(&self) -> Option<u64> {
        match self.data_offset.get() {
            NO_DATA_OFFSET | 0xFFFF_FFFF => None,
            off => Some(off),
        }
    }
}

impl core::fmt::Debug for Footer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Footer")
            .field("cookie", &FourCcBytes(&self.cookie))
            .field("features", &self.features())
            .field(
                "file_format_version",
                &format_args!("{:#x}", self.file_format_version.get()),
            )
            .field(
                "data_offset",
                &format_args!("{:#x}", self.data_offset.get()),
            )
            .field("timestamp", &self.timestamp())
            .field("creator_application", &self.creator_application())
            .field(
                "creator_version",
                &format_args!("{:#x}", self.creator_version.get()),
            )
            .field("creator_host_os", &self.creator_host_os())
            .field("original_size", &self.original_size.get())
            .field("current_size", &self.current_size.get())
            .field("disk_geometry", &self.geometry())
            .field("disk_type", &self.disk_type())
            .field("checksum", &format_args!("{:#x}", self.checksum.get()))
            .field("unique_id", &self.unique_id())
            .field("saved_state", &self.saved_state)
            .finish_non_exhaustive()
    }
}

/// Debug helper printing a byte string as text where it is ASCII.
struct FourCcBytes<'a>(&'a [u8]);

impl core::fmt::Debug for FourCcBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("\"")?;
        for &b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_footer_is_self_consistent() {
        let f = Footer::new(
            DiskType::DYNAMIC,
            64 << 20,
            Some(512),
            VhdTime(1),
            Uuid([7; 16]),
        );
        assert!(f.checksum_ok());
        assert_eq!(&f.as_bytes()[0..8], b"conectix");
        assert_eq!(f.as_bytes()[8..12], [0, 0, 0, 2]);
        assert_eq!(f.as_bytes()[16..24], 512u64.to_be_bytes());
        assert_eq!(&f.as_bytes()[28..32], b"win ");
        assert_eq!(&f.as_bytes()[36..40], b"Wi2k");
        assert_eq!(f.as_bytes()[60..64], [0, 0, 0, 3]);
        assert_eq!(f.data_offset(), Some(512));
        let fixed = Footer::new(DiskType::FIXED, 1 << 20, None, VhdTime(1), Uuid::NIL);
        assert_eq!(fixed.as_bytes()[16..24], [0xff; 8]);
        assert_eq!(fixed.data_offset(), None);
    }

    /// Four-character codes print as text, with unprintable bytes escaped (a space is kept);
    /// a footer's `Debug` shows its fields in host order.
    #[test]
    fn footer_debug_and_four_character_codes() {
        assert_eq!(std::format!("{}", FourCc::AZURE), "wa\\x00\\x00");
        assert_eq!(std::format!("{:?}", FourCc(*b"a b\x7f")), "\"a b\\x7f\"");
        let mut f = Footer::new(DiskType::FIXED, 1 << 20, None, VhdTime(1), Uuid([7; 16]));
        assert_eq!(f.creator_host_os(), FourCc(*b"Wi2k"));
        f.cookie[0] = b' ';
        f.cookie[7] = 1;
        let text = std::format!("{f:?}");
        for want in [
            "Footer {",
            "cookie: \" onecti\\x01\"",
            "features: Features(2)",
            "data_offset: 0xffffffffffffffff",
            "creator_application: \"win \"",
            "creator_host_os: \"Wi2k\"",
            "current_size: 1048576",
            "disk_type: FIXED",
            "unique_id: Uuid(07070707-0707-0707-0707-070707070707)",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
    }

    #[test]
    fn temporary_is_feature_bit_0() {
        assert!(!Features::DEFAULT.temporary());
        assert!(Features(1).temporary());
        assert!(Features(3).temporary());
        assert!(!Features(!1).temporary());
    }

    #[test]
    fn open_enum_debug_names_known_values() {
        assert_eq!(std::format!("{:?}", DiskType::FIXED), "FIXED");
        assert_eq!(std::format!("{:?}", DiskType(9)), "DiskType(0x9)");
    }
}
