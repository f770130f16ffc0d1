//! On-disk layouts and wire values of the WIM format: pure definitions, no I/O, no state.
//!
//! Every structure is a `#[repr(C)]` zerocopy type with little-endian fields and its size pinned
//! by a compile-time assert; values that may be unknown are open enums (a newtype with
//! associated constants). Field documentation follows the format description in the crate docs.

use core::fmt;

use zerocopy::little_endian::{I32, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Declares an open enum: a transparent newtype over an integer with named constants and a
/// `Debug` that prints the name, or the raw number when it has none.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $cname:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(transparent)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $cname: $name = $name($value); )*

            /// The constant's name, if the value has one.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$cname => Some(stringify!($cname)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }
    };
}

/// `MSWIM\0\0\0`: the magic of a normal WIM header.
pub const WIM_MAGIC: [u8; 8] = *b"MSWIM\0\0\0";
/// `WLPWM\0\0\0`: the magic of a pipable WIM (a wimlib extension).
pub const PWM_MAGIC: [u8; 8] = *b"WLPWM\0\0\0";
/// The size of the header, and the only header size accepted.
pub const HEADER_SIZE: usize = 208;
/// The magic that starts each blob header of a pipable WIM.
pub const PWM_BLOB_MAGIC: u64 = 0x2b9b_9ba2_443d_b9d8;
/// The uncompressed size a blob-table entry gives a solid resource (rather than a blob).
pub const SOLID_RESOURCE_MAGIC_SIZE: u64 = 0x1_0000_0000;
/// The size of the fixed part of a dentry.
pub const DENTRY_DISK_SIZE: usize = 102;
/// The size of the fixed part of an extra stream entry.
pub const STREAM_ENTRY_DISK_SIZE: usize = 38;
/// The size of a SHA-1 message digest.
pub const SHA1_SIZE: usize = 20;
/// FILETIME of the Unix epoch (100 ns units since 1601-01-01 UTC).
pub const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

open_enum! {
    /// The header's format version.
    pub struct WimVersion(u32) {
        /// Version 1.13 (0x10D00): every WIM without solid resources.
        DEFAULT = 0x10D00,
        /// Version 0xE00: solid resources and LZMS allowed (ESD files).
        SOLID = 0xE00,
    }
}

open_enum! {
    /// The compression format field of a solid resource header.
    pub struct CompressionFormat(u32) {
        /// Chunks stored uncompressed.
        NONE = 0,
        /// XPRESS (Huffman).
        XPRESS = 1,
        /// LZX.
        LZX = 2,
        /// LZMS.
        LZMS = 3,
    }
}

open_enum! {
    /// A reparse tag (`IO_REPARSE_TAG_*`), kept in the dentry.
    pub struct ReparseTag(u32) {
        /// A junction (mount point).
        MOUNT_POINT = 0xA000_0003,
        /// A symbolic link.
        SYMLINK = 0xA000_000C,
        /// A Windows Overlay Filter (WIMBoot / compact OS) file.
        WOF = 0x8000_0017,
        /// A deduplicated file.
        DEDUP = 0x8000_0013,
    }
}

open_enum! {
    /// The tag of a tagged metadata item following a dentry's names.
    pub struct ItemTag(u32) {
        /// The NTFS object ID (16 bytes or more).
        OBJECT_ID = 0x1,
        /// Extended attributes in WIMGAPI's format.
        XATTRS = 0x2,
        /// wimlib's UNIX data: uid, gid, mode, rdev.
        UNIX_DATA = 0x337D_D873,
        /// wimlib's older Linux extended attributes.
        LINUX_XATTRS = 0x337D_D874,
    }
}

bitflags::bitflags! {
    /// The header's `flags` word.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct HeaderFlags: u32 {
        /// Reserved.
        const RESERVED = 0x1;
        /// Resources may be compressed; one `COMPRESS_*` flag says with what.
        const COMPRESSION = 0x2;
        /// The WIM must not be modified.
        const READONLY = 0x4;
        /// A part of a split WIM.
        const SPANNED = 0x8;
        /// Holds resources only.
        const RESOURCE_ONLY = 0x10;
        /// Holds metadata only.
        const METADATA_ONLY = 0x20;
        /// Set while the file is being written.
        const WRITE_IN_PROGRESS = 0x40;
        /// Absolute symlink and junction targets were made relative to the image root.
        const RP_FIX = 0x80;
        /// Reserved compression type.
        const COMPRESS_RESERVED = 0x1_0000;
        /// XPRESS.
        const COMPRESS_XPRESS = 0x2_0000;
        /// LZX.
        const COMPRESS_LZX = 0x4_0000;
        /// LZMS (version 0xE00 only).
        const COMPRESS_LZMS = 0x8_0000;
        /// "XPRESS 2"; decoded as XPRESS.
        const COMPRESS_XPRESS_2 = 0x20_0000;
        /// Unknown bits are kept.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// The flags byte of a resource header.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ResourceFlags: u8 {
        /// Unused ("free").
        const FREE = 0x01;
        /// An image metadata resource (also set on the blob table and XML).
        const METADATA = 0x02;
        /// Compressed with the header's format and chunk size.
        const COMPRESSED = 0x04;
        /// Unused ("spanned").
        const SPANNED = 0x08;
        /// A solid resource, or a blob inside one.
        const SOLID = 0x10;
        /// Unknown bits are kept.
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// `FILE_ATTRIBUTE_*` of a dentry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct FileAttributes: u32 {
        /// Read-only.
        const READONLY = 0x1;
        /// Hidden.
        const HIDDEN = 0x2;
        /// System.
        const SYSTEM = 0x4;
        /// A directory.
        const DIRECTORY = 0x10;
        /// Archive.
        const ARCHIVE = 0x20;
        /// A device.
        const DEVICE = 0x40;
        /// No other attribute set.
        const NORMAL = 0x80;
        /// Temporary.
        const TEMPORARY = 0x100;
        /// Sparse.
        const SPARSE_FILE = 0x200;
        /// Has a reparse point.
        const REPARSE_POINT = 0x400;
        /// NTFS-compressed.
        const COMPRESSED = 0x800;
        /// Offline.
        const OFFLINE = 0x1000;
        /// Not content-indexed.
        const NOT_CONTENT_INDEXED = 0x2000;
        /// EFS-encrypted (only the raw EFS blob is stored).
        const ENCRYPTED = 0x4000;
        /// Unknown bits are kept.
        const _ = !0;
    }
}

impl Default for ResourceFlags {
    fn default() -> Self {
        ResourceFlags::empty()
    }
}

/// The 24-byte resource header ("reshdr"): where a resource is and how big it is.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ResHdrDisk {
    /// Bytes 0–6: the size in the WIM (56 bits); byte 7: [`ResourceFlags`].
    pub size_and_flags: U64,
    /// Absolute offset of the resource in its file.
    pub offset: U64,
    /// Uncompressed size.
    pub uncompressed_size: U64,
}
const _: () = assert!(core::mem::size_of::<ResHdrDisk>() == 24);

impl ResHdrDisk {
    /// The stored size (56 bits).
    pub fn size_in_wim(&self) -> u64 {
        self.size_and_flags.get() & 0x00FF_FFFF_FFFF_FFFF
    }

    /// The flags byte.
    pub fn flags(&self) -> ResourceFlags {
        ResourceFlags::from_bits_retain((self.size_and_flags.get() >> 56) as u8)
    }

    /// All 24 bytes zero (an absent table).
    pub fn is_zero(&self) -> bool {
        self.size_and_flags.get() == 0
            && self.offset.get() == 0
            && self.uncompressed_size.get() == 0
    }
}

/// The 208-byte file header.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct HeaderDisk {
    /// [`WIM_MAGIC`] or [`PWM_MAGIC`].
    pub magic: [u8; 8],
    /// Must be 208.
    pub header_size: U32,
    /// [`WimVersion`].
    pub version: U32,
    /// [`HeaderFlags`].
    pub flags: U32,
    /// Uncompressed chunk size of non-solid compressed resources (0 when uncompressed).
    pub chunk_size: U32,
    /// Random GUID, the same in all parts of a split WIM.
    pub guid: [u8; 16],
    /// 1-based part number.
    pub part_number: U16,
    /// Number of parts.
    pub total_parts: U16,
    /// Number of images.
    pub image_count: U32,
    /// The blob ("lookup") table.
    pub blob_table: ResHdrDisk,
    /// The XML document.
    pub xml: ResHdrDisk,
    /// A copy of the bootable image's metadata resource header (zero if none).
    pub boot_metadata: ResHdrDisk,
    /// 1-based index of the bootable image, 0 for none.
    pub boot_index: U32,
    /// The integrity table (zero if absent).
    pub integrity: ResHdrDisk,
    /// Unused, zero.
    pub unused: [u8; 60],
}
const _: () = assert!(core::mem::size_of::<HeaderDisk>() == HEADER_SIZE);

/// One 50-byte entry of the blob table.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct BlobEntryDisk {
    /// Where the blob (or solid resource) is.
    pub reshdr: ResHdrDisk,
    /// Which part of a split WIM holds it.
    pub part_number: U16,
    /// Number of references from all images.
    pub ref_count: U32,
    /// SHA-1 of the uncompressed data.
    pub hash: [u8; SHA1_SIZE],
}
const _: () = assert!(core::mem::size_of::<BlobEntryDisk>() == 50);

/// The 16-byte header at the start of a solid resource.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SolidHeaderDisk {
    /// Total uncompressed size.
    pub uncompressed_size: U64,
    /// Chunk size (overrides the WIM header's).
    pub chunk_size: U32,
    /// [`CompressionFormat`] (overrides the WIM header's).
    pub compression_format: U32,
}
const _: () = assert!(core::mem::size_of::<SolidHeaderDisk>() == 16);

/// The 12-byte header of the integrity table, followed by `num_entries` SHA-1 digests.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct IntegrityHeaderDisk {
    /// Size of the table in bytes (12 + 20 × entries).
    pub size: U32,
    /// Number of digests.
    pub num_entries: U32,
    /// Bytes covered by each digest (the last may cover fewer).
    pub chunk_size: U32,
}
const _: () = assert!(core::mem::size_of::<IntegrityHeaderDisk>() == 12);

/// The 40-byte header before each blob of a pipable WIM.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct PwmBlobHeaderDisk {
    /// [`PWM_BLOB_MAGIC`].
    pub magic: U64,
    /// Uncompressed size.
    pub uncompressed_size: U64,
    /// SHA-1 of the data.
    pub hash: [u8; SHA1_SIZE],
    /// Resource flags.
    pub flags: U32,
}
const _: () = assert!(core::mem::size_of::<PwmBlobHeaderDisk>() == 40);

/// The fixed 102-byte part of a directory entry.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct DentryDisk {
    /// Length including names, padding and tagged items, excluding extra stream entries.
    pub length: U64,
    /// [`FileAttributes`].
    pub attributes: U32,
    /// Index into the security data, −1 for none.
    pub security_id: I32,
    /// Offset of the first child in the metadata resource, 0 for none.
    pub subdir_offset: U64,
    /// Unused, zero.
    pub unused: [U64; 2],
    /// Creation time (FILETIME).
    pub creation_time: U64,
    /// Last access time (FILETIME).
    pub last_access_time: U64,
    /// Last write time (FILETIME).
    pub last_write_time: U64,
    /// SHA-1 of the single unnamed stream, or zero.
    pub main_hash: [u8; SHA1_SIZE],
    /// Unknown (preserved).
    pub unknown_0x54: U32,
    /// Reparse tag (u32), reserved (u16), rp_flags (u16) for reparse points; otherwise the
    /// hard-link group id (u64).
    pub reparse_or_link: U64,
    /// Number of extra stream entries after the dentry.
    pub num_extra_streams: U16,
    /// Short (8.3) name length in bytes.
    pub short_name_nbytes: U16,
    /// Long name length in bytes (0 only for the root).
    pub name_nbytes: U16,
}
const _: () = assert!(core::mem::size_of::<DentryDisk>() == DENTRY_DISK_SIZE);

/// The fixed 38-byte part of an extra stream entry.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct StreamEntryDisk {
    /// Length including the name and padding.
    pub length: U64,
    /// Reserved.
    pub reserved: U64,
    /// SHA-1 of the stream.
    pub hash: [u8; SHA1_SIZE],
    /// Name length in bytes (0 = unnamed).
    pub name_nbytes: U16,
}
const _: () = assert!(core::mem::size_of::<StreamEntryDisk>() == STREAM_ENTRY_DISK_SIZE);

/// The rp_flags bit saying an absolute target was left as it was (not "fixed").
pub const RP_FLAG_NOT_FIXED: u16 = 0x1;
/// The symlink reparse flag saying the target is relative.
pub const SYMLINK_FLAG_RELATIVE: u32 = 0x1;

/// Converts a FILETIME to (seconds, nanoseconds) since the Unix epoch.
pub fn filetime_to_unix(ft: u64) -> (i64, u32) {
    let rel = ft as i128 - FILETIME_UNIX_EPOCH as i128;
    let secs = rel.div_euclid(10_000_000) as i64;
    let nanos = (rel.rem_euclid(10_000_000) * 100) as u32;
    (secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enum_debug() {
        assert_eq!(format!("{:?}", ReparseTag::SYMLINK), "SYMLINK");
        assert_eq!(format!("{:?}", ReparseTag(7)), "ReparseTag(0x7)");
    }

    #[test]
    fn filetime() {
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH), (0, 0));
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH + 15), (0, 1500));
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH - 1), (-1, 999_999_900));
    }

    #[test]
    fn reshdr_fields() {
        let r = ResHdrDisk {
            size_and_flags: U64::new(0x1400_0000_0000_1234),
            offset: U64::new(5),
            uncompressed_size: U64::new(6),
        };
        assert_eq!(r.size_in_wim(), 0x1234);
        assert_eq!(r.flags(), ResourceFlags::SOLID | ResourceFlags::COMPRESSED);
    }
}
