//! The 1024-byte dynamic disk header and its parent locator entries.

use zerocopy::byteorder::big_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{checksum, open_enum, Uuid, VhdTime, NO_DATA_OFFSET};

/// `cookie` of the dynamic header.
pub const DYNAMIC_COOKIE: [u8; 8] = *b"cxsparse";
/// `header_version`: 1.0.
pub const HEADER_VERSION: u32 = 0x0001_0000;

/// The dynamic disk header, at the footer's `data_offset` (512 in practice) of dynamic and
/// differencing disks. All fields big-endian.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct DynamicHeader {
    /// `cxsparse`.
    pub cookie: [u8; 8],
    /// Unused; all ones.
    pub data_offset: U64,
    /// Absolute offset of the block allocation table.
    pub table_offset: U64,
    /// `0x00010000`.
    pub header_version: U32,
    /// Entries in the BAT: `ceil(current_size / block_size)`.
    pub max_table_entries: U32,
    /// Data bytes per block, not counting the sector bitmap; a power of two.
    pub block_size: U32,
    /// One's complement of the byte sum of the header without this field.
    pub checksum: U32,
    /// Differencing disks: the parent footer's unique id.
    pub parent_unique_id: [u8; 16],
    /// Differencing disks: the parent footer's timestamp when the link was made.
    pub parent_timestamp: U32,
    /// Zero.
    pub reserved1: U32,
    /// Differencing disks: the parent's file name (or path), UTF-16 big-endian, NUL-padded.
    pub parent_unicode_name: [u8; 512],
    /// Where to find the parent, per platform.
    pub parent_locators: [ParentLocatorEntry; 8],
    /// Zero.
    pub reserved2: [u8; 256],
}
const _: () = assert!(core::mem::size_of::<DynamicHeader>() == 1024);

/// Offset of [`DynamicHeader::checksum`].
const CHECKSUM_OFFSET: usize = 36;

/// One parent locator entry (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ParentLocatorEntry {
    /// [`PlatformCode`] of the payload; 0 marks an unused entry.
    pub platform_code: U32,
    /// Space reserved for the payload. The spec says sectors, but Virtual PC and Hyper-V store
    /// bytes; readers must accept both.
    pub platform_data_space: U32,
    /// Payload length in bytes.
    pub platform_data_length: U32,
    /// Zero.
    pub reserved: U32,
    /// Absolute file offset of the payload.
    pub platform_data_offset: U64,
}
const _: () = assert!(core::mem::size_of::<ParentLocatorEntry>() == 24);

open_enum! {
    /// The platform code of a parent locator entry.
    pub struct PlatformCode(u32) {
        /// Unused entry.
        NONE = 0,
        /// Deprecated: relative Windows path, 8-bit characters (`Wi2r`).
        WI2R = 0x5769_3272,
        /// Deprecated: absolute Windows path, 8-bit characters (`Wi2k`).
        WI2K = 0x5769_326B,
        /// Relative Windows path, UTF-16LE (`W2ru`), relative to the child's directory.
        W2RU = 0x5732_7275,
        /// Absolute Windows path, UTF-16LE (`W2ku`).
        W2KU = 0x5732_6B75,
        /// Mac OS alias record (`Mac `).
        MAC = 0x4D61_6320,
        /// File URL, UTF-8 (`MacX`).
        MACX = 0x4D61_6358,
    }
}

impl DynamicHeader {
    /// A header for a dynamic disk (no parent fields) with the BAT at `table_offset`.
    pub fn new(table_offset: u64, max_table_entries: u32, block_size: u32) -> Self {
        let mut h = Self {
            cookie: DYNAMIC_COOKIE,
            data_offset: U64::new(NO_DATA_OFFSET),
            table_offset: U64::new(table_offset),
            header_version: U32::new(HEADER_VERSION),
            max_table_entries: U32::new(max_table_entries),
            block_size: U32::new(block_size),
            checksum: U32::new(0),
            parent_unique_id: [0; 16],
            parent_timestamp: U32::new(0),
            reserved1: U32::new(0),
            parent_unicode_name: [0; 512],
            parent_locators: [ParentLocatorEntry::default(); 8],
            reserved2: [0; 256],
        };
        h.update_checksum();
        h
    }

    /// The checksum computed over the header's bytes.
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

    /// The parent's unique id.
    pub fn parent_unique_id(&self) -> Uuid {
        Uuid(self.parent_unique_id)
    }

    /// The parent's timestamp at link time.
    pub fn parent_timestamp(&self) -> VhdTime {
        VhdTime(self.parent_timestamp.get())
    }

    /// The parent unicode name as UTF-16 code units (big-endian decoded), up to the first NUL.
    pub fn parent_name_units(&self) -> impl Iterator<Item = u16> + '_ {
        self.parent_unicode_name
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
    }

    /// Stores `name` as the parent unicode name (UTF-16BE). Returns `false`, storing nothing,
    /// when it does not fit in 256 code units.
    pub fn set_parent_name(&mut self, name: &str) -> bool {
        if name.encode_utf16().count() > 256 {
            return false;
        }
        self.parent_unicode_name = [0; 512];
        for (i, u) in name.encode_utf16().enumerate() {
            self.parent_unicode_name[2 * i..2 * i + 2].copy_from_slice(&u.to_be_bytes());
        }
        true
    }
}

impl ParentLocatorEntry {
    /// The platform code as an open enum.
    pub fn code(&self) -> PlatformCode {
        PlatformCode(self.platform_code.get())
    }
}

impl core::fmt::Debug for DynamicHeader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DynamicHeader")
            .field("table_offset", &self.table_offset.get())
            .field(
                "header_version",
                &format_args!("{:#x}", self.header_version.get()),
            )
            .field("max_table_entries", &self.max_table_entries.get())
            .field("block_size", &self.block_size.get())
            .field("checksum", &format_args!("{:#x}", self.checksum.get()))
            .field("parent_unique_id", &self.parent_unique_id())
            .field("parent_timestamp", &self.parent_timestamp())
            .field(
                "parent_unicode_name",
                &core::char::decode_utf16(self.parent_name_units())
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect::<Utf16Display>(),
            )
            .finish_non_exhaustive()
    }
}

/// A fixed-capacity string for `Debug` output without allocation.
struct Utf16Display {
    buf: [u8; 1024],
    len: usize,
}

impl FromIterator<char> for Utf16Display {
    fn from_iter<I: IntoIterator<Item = char>>(iter: I) -> Self {
        let mut s = Self {
            buf: [0; 1024],
            len: 0,
        };
        for c in iter {
            let mut tmp = [0; 4];
            let enc = c.encode_utf8(&mut tmp).as_bytes();
            if s.len + enc.len() > s.buf.len() {
                break;
            }
            s.buf[s.len..s.len + enc.len()].copy_from_slice(enc);
            s.len += enc.len();
        }
        s
    }
}

impl core::fmt::Debug for Utf16Display {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = core::str::from_utf8(&self.buf[..self.len]).unwrap_or("");
        write!(f, "{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_spec_offsets() {
        let mut h = DynamicHeader::new(1536, 32, 2 << 20);
        assert!(h.set_parent_name("p.vhd"));
        h.update_checksum();
        let b = h.as_bytes();
        assert_eq!(&b[0..8], b"cxsparse");
        assert_eq!(b[8..16], [0xff; 8]);
        assert_eq!(b[16..24], 1536u64.to_be_bytes());
        assert_eq!(b[24..28], 0x10000u32.to_be_bytes());
        assert_eq!(b[28..32], 32u32.to_be_bytes());
        assert_eq!(b[32..36], 0x200000u32.to_be_bytes());
        assert_eq!(b[64..68], [0, b'p', 0, b'.']);
        assert!(h.checksum_ok());
        let name: std::string::String = core::char::decode_utf16(h.parent_name_units())
            .map(|c| c.unwrap())
            .collect();
        assert_eq!(name, "p.vhd");
        assert!(!h.set_parent_name(&"x".repeat(257)));
        assert_eq!(
            h.parent_name_units().count(),
            5,
            "a refused name stores nothing"
        );
        // Exactly 256 code units fill the field, with no NUL after them.
        assert!(h.set_parent_name(&"y".repeat(256)));
        assert_eq!(h.parent_name_units().count(), 256);
        assert_eq!(b"\0y".repeat(256), h.parent_unicode_name);
    }

    /// `Debug` shows the header's fields in host order and the parent name as text (lone
    /// surrogates as U+FFFD).
    #[test]
    fn debug_shows_fields_and_the_parent_name() {
        let mut h = DynamicHeader::new(1536, 32, 2 << 20);
        assert!(h.set_parent_name("p\u{e9}.vhd"));
        let text = std::format!("{h:?}");
        for want in [
            "DynamicHeader {",
            "table_offset: 1536",
            "header_version: 0x10000",
            "max_table_entries: 32",
            "block_size: 2097152",
            "parent_unicode_name: \"p\u{e9}.vhd\"",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
        // A lone high surrogate, then `a`, in place of `p\u{e9}`.
        h.parent_unicode_name[..4].copy_from_slice(&[0xd8, 0x00, 0, b'a']);
        let text = std::format!("{h:?}");
        assert!(
            text.contains("parent_unicode_name: \"\u{fffd}a.vhd\""),
            "{text}"
        );
    }
}
