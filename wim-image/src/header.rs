//! The 208-byte WIM header, checked.

use crate::codec::Codec;
use crate::defs::{
    HeaderDisk, HeaderFlags, ResHdrDisk, ResourceFlags, WimVersion, HEADER_SIZE, PWM_MAGIC,
    WIM_MAGIC,
};

/// The largest image count accepted (wimlib's limit).
pub const MAX_IMAGES: u32 = 65535;

/// Why a header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Fewer than 208 bytes.
    #[error("file of {size} bytes is too small for a WIM header")]
    TooSmall {
        /// The file's size.
        size: u64,
    },
    /// Neither `MSWIM` nor `WLPWM`.
    #[error("not a WIM file (magic {magic:02x?} at offset 0)")]
    Magic {
        /// The first eight bytes.
        magic: [u8; 8],
    },
    /// The header size field is not 208.
    #[error("header size {size} at offset 0x8 is not 208")]
    HeaderSize {
        /// The field.
        size: u32,
    },
    /// A version other than 0x10D00 or 0xE00.
    #[error("unsupported WIM version {version:?} at offset 0xc")]
    Version {
        /// The field.
        version: WimVersion,
    },
    /// Part numbers outside 1 ≤ part ≤ total.
    #[error("invalid part number {part} of {total} at offset 0x28")]
    PartNumber {
        /// The part number.
        part: u16,
        /// The number of parts.
        total: u16,
    },
    /// More than 65535 images.
    #[error("image count {count} at offset 0x2c is above {MAX_IMAGES}")]
    ImageCount {
        /// The field.
        count: u32,
    },
    /// COMPRESSION set with no or several compression types, or the reserved one.
    #[error("header flags {flags:#x} at offset 0x10 name no single known compression type")]
    Compression {
        /// The flags word.
        flags: u32,
    },
    /// A chunk size that is not a power of two within the codec's range.
    #[error("chunk size {chunk_size} at offset 0x14 is invalid for {codec:?}")]
    ChunkSize {
        /// The field.
        chunk_size: u32,
        /// The header's codec.
        codec: Codec,
    },
}

/// A resource header in a usable form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResHdr {
    /// Absolute offset in the file.
    pub offset: u64,
    /// Stored size.
    pub size_in_wim: u64,
    /// Uncompressed size.
    pub uncompressed_size: u64,
    /// Flags.
    pub flags: ResourceFlags,
}

impl ResHdr {
    /// Decodes the on-disk form.
    pub fn from_disk(d: &ResHdrDisk) -> Self {
        ResHdr {
            offset: d.offset.get(),
            size_in_wim: d.size_in_wim(),
            uncompressed_size: d.uncompressed_size.get(),
            flags: d.flags(),
        }
    }

    /// Whether the resource is absent (all fields zero).
    pub fn is_empty(&self) -> bool {
        self.offset == 0 && self.size_in_wim == 0 && self.uncompressed_size == 0
    }

    /// The end offset, if it does not overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.size_in_wim)
    }
}

/// A checked WIM header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// A pipable WIM (magic `WLPWM`); the fields come from the copy at the end of the file.
    pub pipable: bool,
    /// The format version.
    pub version: WimVersion,
    /// The flags word.
    pub flags: HeaderFlags,
    /// The chunk size field as stored.
    pub chunk_size: u32,
    /// The GUID.
    pub guid: [u8; 16],
    /// 1-based part number.
    pub part_number: u16,
    /// Number of parts.
    pub total_parts: u16,
    /// Number of images.
    pub image_count: u32,
    /// The blob table.
    pub blob_table: ResHdr,
    /// The XML document.
    pub xml: ResHdr,
    /// The boot image's metadata resource (empty if none).
    pub boot_metadata: ResHdr,
    /// 1-based boot image index, 0 for none.
    pub boot_index: u32,
    /// The integrity table (empty if absent).
    pub integrity: ResHdr,
}

impl Header {
    /// Parses and checks a header. `pipable` says whether the file's first header had the
    /// pipable magic (the copy at the end of a pipable WIM carries it too).
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<Header, HeaderError> {
        let d: HeaderDisk = zerocopy::transmute!(*bytes);
        let pipable = match d.magic {
            WIM_MAGIC => false,
            PWM_MAGIC => true,
            magic => return Err(HeaderError::Magic { magic }),
        };
        if d.header_size.get() != HEADER_SIZE as u32 {
            return Err(HeaderError::HeaderSize {
                size: d.header_size.get(),
            });
        }
        let version = WimVersion(d.version.get());
        if version != WimVersion::DEFAULT && version != WimVersion::SOLID {
            return Err(HeaderError::Version { version });
        }
        let (part, total) = (d.part_number.get(), d.total_parts.get());
        if part == 0 || total == 0 || part > total {
            return Err(HeaderError::PartNumber { part, total });
        }
        let count = d.image_count.get();
        if count > MAX_IMAGES {
            return Err(HeaderError::ImageCount { count });
        }
        let h = Header {
            pipable,
            version,
            flags: HeaderFlags::from_bits_retain(d.flags.get()),
            chunk_size: d.chunk_size.get(),
            guid: d.guid,
            part_number: part,
            total_parts: total,
            image_count: count,
            blob_table: ResHdr::from_disk(&d.blob_table),
            xml: ResHdr::from_disk(&d.xml),
            boot_metadata: ResHdr::from_disk(&d.boot_metadata),
            boot_index: d.boot_index.get(),
            integrity: ResHdr::from_disk(&d.integrity),
        };
        h.compression()?;
        Ok(h)
    }

    /// The codec and chunk size of non-solid compressed resources, or `None` for an
    /// uncompressed WIM. A chunk size of 0 in a compressed WIM means 32 KiB.
    pub fn compression(&self) -> Result<Option<(Codec, u32)>, HeaderError> {
        if !self.flags.contains(HeaderFlags::COMPRESSION) {
            return Ok(None);
        }
        let types = self.flags
            & (HeaderFlags::COMPRESS_XPRESS
                | HeaderFlags::COMPRESS_XPRESS_2
                | HeaderFlags::COMPRESS_LZX
                | HeaderFlags::COMPRESS_LZMS
                | HeaderFlags::COMPRESS_RESERVED);
        let codec =
            if types == HeaderFlags::COMPRESS_XPRESS || types == HeaderFlags::COMPRESS_XPRESS_2 {
                Codec::Xpress
            } else if types == HeaderFlags::COMPRESS_LZX {
                Codec::Lzx
            } else if types == HeaderFlags::COMPRESS_LZMS {
                Codec::Lzms
            } else {
                return Err(HeaderError::Compression {
                    flags: self.flags.bits(),
                });
            };
        let chunk_size = if self.chunk_size == 0 {
            32768
        } else {
            self.chunk_size
        };
        check_chunk_size(codec, chunk_size)
            .map_err(|()| HeaderError::ChunkSize { chunk_size, codec })?;
        Ok(Some((codec, chunk_size)))
    }
}

/// A chunk size must be a power of two within the codec's range.
pub(crate) fn check_chunk_size(codec: Codec, chunk_size: u32) -> Result<(), ()> {
    let c = chunk_size as usize;
    if c.is_power_of_two() && c >= codec.min_chunk_size() && c <= codec.max_chunk_size() {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::{FromBytes, IntoBytes};

    fn sample() -> HeaderDisk {
        let mut h = HeaderDisk::read_from_bytes(&[0u8; HEADER_SIZE][..]).unwrap();
        h.magic = WIM_MAGIC;
        h.header_size.set(208);
        h.version.set(0x10D00);
        h.flags.set(0x20082);
        h.chunk_size.set(32768);
        h.part_number.set(1);
        h.total_parts.set(1);
        h.image_count.set(1);
        h
    }

    fn parse(h: &HeaderDisk) -> Result<Header, HeaderError> {
        Header::parse(h.as_bytes().try_into().unwrap())
    }

    #[test]
    fn good_header() {
        let h = parse(&sample()).unwrap();
        assert_eq!(h.compression().unwrap(), Some((Codec::Xpress, 32768)));
        assert!(!h.pipable);
    }

    #[test]
    fn bad_headers() {
        let mut h = sample();
        h.magic = *b"MSWIN\0\0\0";
        assert!(matches!(parse(&h), Err(HeaderError::Magic { .. })));
        let mut h = sample();
        h.part_number.set(2);
        assert!(matches!(parse(&h), Err(HeaderError::PartNumber { .. })));
        let mut h = sample();
        h.flags.set(0x60002);
        assert!(matches!(parse(&h), Err(HeaderError::Compression { .. })));
        let mut h = sample();
        h.chunk_size.set(1000);
        assert!(matches!(parse(&h), Err(HeaderError::ChunkSize { .. })));
        let mut h = sample();
        h.version.set(0x10900);
        assert!(matches!(parse(&h), Err(HeaderError::Version { .. })));
        let mut h = sample();
        h.image_count.set(70000);
        assert!(matches!(parse(&h), Err(HeaderError::ImageCount { .. })));
    }
}
