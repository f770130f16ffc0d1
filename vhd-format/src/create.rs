//! Creating fixed, dynamic and differencing disks.
//!
//! What we write is what qemu, libvhdi, VirtualBox and Hyper-V all accept: the spec's CHS
//! geometry, creator application `win ` (so qemu sizes the disk by `current_size`), host OS
//! `Wi2k`, all-ones unused data offsets, a footer copy at offset 0 of sparse disks, a BAT of
//! exactly `ceil(size / block_size)` entries padded with `0xFF` to a sector, and for
//! differencing disks the UTF-16BE parent name plus `W2ku` and `W2ru` locators (UTF-16LE,
//! whole sectors reserved, the data space written as a byte count) placed after the BAT.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use zerocopy::byteorder::big_endian::{U32, U64};
use zerocopy::IntoBytes;

use crate::defs::{
    DiskType, DynamicHeader, Footer, FourCc, ParentLocatorEntry, PlatformCode, Uuid, VhdTime,
    DEFAULT_BLOCK_SIZE, MAX_DISK_SIZE, SECTOR_SIZE,
};
use crate::disk::ParentDisk;
use crate::io::{IoError, Storage};
use crate::vhd::{OpenError, OpenOptions, Vhd};

/// Offset of the dynamic header in files we write.
pub(crate) const HEADER_OFFSET: u64 = 512;
/// Offset of the BAT in files we write.
pub(crate) const BAT_OFFSET: u64 = 1536;

/// Parameters for a new disk.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    pub(crate) size: u64,
    pub(crate) block_size: u32,
    pub(crate) unique_id: Option<Uuid>,
    pub(crate) timestamp: Option<VhdTime>,
    pub(crate) creator: FourCc,
}

impl CreateOptions {
    /// A disk of `size` bytes (a multiple of 512), 2 MiB blocks, a fresh unique id (with `std`;
    /// `no_std` callers must call [`unique_id`](Self::unique_id)) and the current time.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            block_size: DEFAULT_BLOCK_SIZE,
            unique_id: None,
            timestamp: None,
            creator: FourCc::WINDOWS,
        }
    }

    /// Block size of dynamic and differencing disks: a power of two from 512 bytes to 256 MiB.
    pub fn block_size(mut self, block_size: u32) -> Self {
        self.block_size = block_size;
        self
    }

    /// The unique id to write (default: random, with `std`).
    pub fn unique_id(mut self, id: Uuid) -> Self {
        self.unique_id = Some(id);
        self
    }

    /// The creation timestamp to write (default: now with `std`, the epoch without).
    pub fn timestamp(mut self, t: VhdTime) -> Self {
        self.timestamp = Some(t);
        self
    }

    /// The creator application code (default `win `). qemu ≤ 9.2 sizes disks from any creator
    /// other than `win `, `qem2`, `d2v `, `tap\0` and `CTXS` by their CHS geometry.
    pub fn creator(mut self, app: FourCc) -> Self {
        self.creator = app;
        self
    }

    fn footer(&self, disk_type: DiskType, data_offset: Option<u64>) -> Result<Footer, CreateError> {
        let id = match self.unique_id {
            Some(id) => id,
            #[cfg(feature = "std")]
            None => crate::random_uuid(),
            #[cfg(not(feature = "std"))]
            None => return Err(CreateError::NeedsUniqueId),
        };
        #[cfg(feature = "std")]
        let now = VhdTime::now();
        #[cfg(not(feature = "std"))]
        let now = VhdTime(0);
        let mut footer = Footer::new(
            disk_type,
            self.size,
            data_offset,
            self.timestamp.unwrap_or(now),
            id,
        );
        footer.creator_application = self.creator.0;
        footer.update_checksum();
        Ok(footer)
    }

    fn validate(&self, sparse: bool) -> Result<(), CreateError> {
        if self.size == 0 || !self.size.is_multiple_of(SECTOR_SIZE) || self.size > MAX_DISK_SIZE {
            return Err(CreateError::InvalidSize(self.size));
        }
        if sparse
            && (!self.block_size.is_power_of_two() || !(512..=256 << 20).contains(&self.block_size))
        {
            return Err(CreateError::InvalidBlockSize(self.block_size));
        }
        Ok(())
    }
}

/// What a differencing child records about its parent.
#[derive(Clone, Debug)]
pub struct ParentLink {
    /// The parent footer's unique id.
    pub unique_id: Uuid,
    /// The parent footer's timestamp.
    pub timestamp: VhdTime,
    /// The parent's file name (stored UTF-16BE in the header; at most 256 code units).
    pub name: String,
    /// Path relative to the child's directory, Windows style (`.\p.vhd`), for `W2ru`.
    pub relative_path: Option<String>,
    /// Absolute Windows path (`C:\vms\p.vhd`), for `W2ku`.
    pub absolute_path: Option<String>,
}

/// Why a disk could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The size is zero, not a multiple of 512, or beyond 2040 GiB.
    #[error("invalid disk size {0}: must be a non-zero multiple of 512 up to 2040 GiB")]
    InvalidSize(u64),
    /// The block size is not a power of two from 512 bytes to 256 MiB.
    #[error("invalid block size {0}: must be a power of two from 512 bytes to 256 MiB")]
    InvalidBlockSize(u32),
    /// The parent name is longer than 256 UTF-16 code units.
    #[error("parent name is longer than 256 UTF-16 code units")]
    ParentNameTooLong,
    /// A locator path is longer than 32 KiB.
    #[error("parent locator path is too long")]
    LocatorTooLong,
    /// `no_std` builds cannot make up a unique id; pass one.
    #[error("no unique id given (no_std builds have no source of randomness)")]
    NeedsUniqueId,
    /// The storage failed.
    #[error("storage error while creating")]
    Io(#[from] IoError),
    /// The new disk did not open again (a bug; reported rather than hidden).
    #[error("the new disk does not open")]
    Reopen(#[from] OpenError),
}

/// Creates a fixed disk in `storage` (truncating it) and opens it for writing.
///
/// The data area is created with `set_len`, so on file systems with sparse files it takes
/// no space until written.
pub fn create_fixed<S: Storage>(
    mut storage: S,
    options: &CreateOptions,
) -> Result<Vhd<S>, CreateError> {
    options.validate(false)?;
    let footer = options.footer(DiskType::FIXED, None)?;
    storage.set_len(0)?;
    storage.set_len(options.size)?;
    storage.write_at(options.size, footer.as_bytes())?;
    storage.flush()?;
    Ok(Vhd::open(storage, OpenOptions::new().writable(true))?)
}

/// Creates a dynamic disk in `storage` (truncating it) and opens it for writing.
pub fn create_dynamic<S: Storage>(
    mut storage: S,
    options: &CreateOptions,
) -> Result<Vhd<S>, CreateError> {
    options.validate(true)?;
    let footer = options.footer(DiskType::DYNAMIC, Some(HEADER_OFFSET))?;
    let entries = options.size.div_ceil(u64::from(options.block_size)) as u32;
    let header = DynamicHeader::new(BAT_OFFSET, entries, options.block_size);
    write_sparse(&mut storage, &footer, header, &[])?;
    Ok(Vhd::open(storage, OpenOptions::new().writable(true))?)
}

/// Creates a differencing disk over `parent` in `storage` (truncating it) and opens it for
/// writing. The child has the parent's virtual size. The parent is a [`ParentDisk`] (any
/// `Disk + Send + Sync + 'static`, as with [`Vhd::open_with_parent`]), so that the child is
/// `Send` and `Sync` whenever its storage is.
pub fn create_differencing<S: Storage>(
    mut storage: S,
    parent: Box<dyn ParentDisk>,
    link: &ParentLink,
    options: &CreateOptions,
) -> Result<Vhd<S>, CreateError> {
    let options = CreateOptions {
        size: parent.size(),
        ..options.clone()
    };
    options.validate(true)?;
    let footer = options.footer(DiskType::DIFFERENCING, Some(HEADER_OFFSET))?;
    let entries = options.size.div_ceil(u64::from(options.block_size)) as u32;
    let mut header = DynamicHeader::new(BAT_OFFSET, entries, options.block_size);
    header.parent_unique_id = link.unique_id.0;
    header.parent_timestamp = U32::new(link.timestamp.0);
    if !header.set_parent_name(&link.name) {
        return Err(CreateError::ParentNameTooLong);
    }
    let mut payloads = Vec::new();
    for (code, path) in [
        (PlatformCode::W2KU, &link.absolute_path),
        (PlatformCode::W2RU, &link.relative_path),
    ] {
        if let Some(path) = path {
            let bytes: Vec<u8> = path.encode_utf16().flat_map(u16::to_le_bytes).collect();
            if bytes.len() > 32 << 10 {
                return Err(CreateError::LocatorTooLong);
            }
            payloads.push((code, bytes));
        }
    }
    write_sparse(&mut storage, &footer, header, &payloads)?;
    Ok(Vhd::open_with_parent(
        storage,
        parent,
        OpenOptions::new().writable(true),
    )?)
}

/// Writes the metadata of an empty sparse disk: footer copy, header (with locator entries
/// filled in for `payloads`), BAT, locator payloads, tail footer.
pub(crate) fn write_sparse<S: Storage>(
    storage: &mut S,
    footer: &Footer,
    mut header: DynamicHeader,
    payloads: &[(PlatformCode, Vec<u8>)],
) -> Result<(), IoError> {
    let entries = u64::from(header.max_table_entries.get());
    let bat_bytes = (entries * 4).next_multiple_of(SECTOR_SIZE);
    let mut next = BAT_OFFSET + bat_bytes;
    let mut placed = Vec::new();
    for (i, (code, bytes)) in payloads.iter().enumerate() {
        let space = (bytes.len() as u64)
            .next_multiple_of(SECTOR_SIZE)
            .max(SECTOR_SIZE);
        header.parent_locators[i] = ParentLocatorEntry {
            platform_code: U32::new(code.0),
            platform_data_space: U32::new(space as u32),
            platform_data_length: U32::new(bytes.len() as u32),
            reserved: U32::new(0),
            platform_data_offset: U64::new(next),
        };
        placed.push((next, space, bytes));
        next += space;
    }
    header.update_checksum();
    storage.set_len(0)?;
    storage.write_at(0, footer.as_bytes())?;
    storage.write_at(HEADER_OFFSET, header.as_bytes())?;
    storage.write_at(BAT_OFFSET, &vec![0xffu8; bat_bytes as usize])?;
    for (offset, space, bytes) in placed {
        let mut padded = bytes.clone();
        padded.resize(space as usize, 0);
        storage.write_at(offset, &padded)?;
    }
    storage.write_at(next, footer.as_bytes())?;
    storage.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemStorage;

    fn opts(size: u64) -> CreateOptions {
        CreateOptions::new(size)
            .unique_id(Uuid([9; 16]))
            .timestamp(VhdTime(100))
    }

    #[test]
    fn dynamic_layout_matches_qemu_and_spec() {
        let vhd = create_dynamic(MemStorage::new(), &opts(64 << 20)).unwrap();
        let bytes = vhd.into_storage().into_vec();
        // Footer copy at 0, header at 512, BAT at 1536 (32 entries padded to 512 bytes with
        // 0xFF), tail footer at 2048.
        assert_eq!(bytes.len(), 2048 + 512);
        assert_eq!(&bytes[..512], &bytes[2048..]);
        assert_eq!(&bytes[512..520], b"cxsparse");
        assert_eq!(bytes[512 + 28..512 + 32], 32u32.to_be_bytes());
        assert!(bytes[1536..2048].iter().all(|&b| b == 0xff));
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(matches!(
            create_fixed(MemStorage::new(), &opts(0)),
            Err(CreateError::InvalidSize(0))
        ));
        assert!(matches!(
            create_fixed(MemStorage::new(), &opts(1000)),
            Err(CreateError::InvalidSize(_))
        ));
        assert!(matches!(
            create_dynamic(MemStorage::new(), &opts(1 << 20).block_size(3 << 20)),
            Err(CreateError::InvalidBlockSize(_))
        ));
        assert!(matches!(
            create_dynamic(MemStorage::new(), &opts(MAX_DISK_SIZE + 512)),
            Err(CreateError::InvalidSize(_))
        ));
    }

    /// The largest disk, 2040 GiB (0xff000000 sectors), can be created sparse: a BAT of
    /// 1,044,480 entries and nothing else.
    #[test]
    fn creates_a_dynamic_disk_of_the_largest_size() {
        assert_eq!(MAX_DISK_SIZE, 2040 << 30);
        let disk = create_dynamic(MemStorage::new(), &opts(MAX_DISK_SIZE)).unwrap();
        assert_eq!(disk.current_size(), MAX_DISK_SIZE);
        assert_eq!(disk.header().unwrap().max_table_entries.get(), 1_044_480);
        assert_eq!(disk.bat().unwrap().len(), 1_044_480);
        assert_eq!(disk.allocated_blocks(), 0);
        // Footer copy, header, the BAT (4 bytes an entry, already a whole number of sectors)
        // and the footer.
        assert_eq!(
            disk.into_storage().into_vec().len(),
            1536 + 1_044_480 * 4 + 512
        );
    }
}
