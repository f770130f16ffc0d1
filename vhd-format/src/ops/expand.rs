//! `expand`: grow a fixed or dynamic disk.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::AtomicU8;

use zerocopy::byteorder::big_endian::{U32, U64};
use zerocopy::IntoBytes;

use crate::defs::{DiskType, Geometry, BAT_UNALLOCATED, MAX_DISK_SIZE, SECTOR_SIZE};
use crate::io::{IoError, Storage};
use crate::vhd::{creator_sizes_by_chs, Layout, Vhd};

/// Why expansion was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandError {
    /// The saved-state flag is set: the spec forbids expanding such a disk.
    #[error("the disk is in a saved state; expanding it is not allowed")]
    SavedState,
    /// The new size is smaller than the current one (VHD cannot shrink).
    #[error("new size {new} is smaller than the current size {current}; VHD disks cannot shrink")]
    Shrink {
        /// Current size.
        current: u64,
        /// Requested size.
        new: u64,
    },
    /// The new size is not a multiple of 512 or exceeds 2040 GiB.
    #[error("invalid size {0}: must be a multiple of 512 up to 2040 GiB")]
    InvalidSize(u64),
    /// Differencing disks take their size from their parent.
    #[error("differencing disks cannot be expanded; expand the base disk and its chain")]
    Differencing,
    /// The disk was opened read-only.
    #[error("the disk is read-only")]
    ReadOnly,
    /// A fixed disk whose file does not end right after its data (the footer's size and the
    /// file's length disagree): where its footer belongs is not known, so it is not touched.
    #[error("the fixed disk's file is {len} bytes, not its size {current} plus the footer")]
    FooterNotAtEnd {
        /// The footer's current size.
        current: u64,
        /// The file's length.
        len: u64,
    },
    /// The storage failed.
    #[error("storage error while expanding")]
    Io(#[from] IoError),
}

/// Grows `vhd` to `new_size` bytes. The new space reads as zeros.
///
/// The footer's `current_size`, `original_size` and geometry all describe the new size, so
/// every peer agrees on it: libvhdi takes the size from `original_size`, Hyper-V and this crate
/// from `current_size`, and qemu from the geometry for the creators it sizes by CHS. For those
/// creators (`vpc ` and `qemu`, see [`SizePolicy::Qemu`](crate::SizePolicy::Qemu)) the size is
/// rounded up, as qemu does, to the first CHS geometry that covers it, so the disk may end up
/// slightly larger than `new_size`; above ≈127.5 GiB (saturated geometry) it is kept exact.
///
/// Fixed disks grow in place (new footer first, then the old footer's sector is zeroed).
/// Dynamic disks extend the BAT in place when the padding after it has room, and otherwise
/// move it to the end of the file (the header's table offset is absolute, so this is valid);
/// the header is rewritten only after the new BAT is in place, and the footers last.
pub fn expand<S: Storage>(vhd: &mut Vhd<S>, new_size: u64) -> Result<(), ExpandError> {
    if vhd.saved_state() {
        return Err(ExpandError::SavedState);
    }
    if !vhd.writable {
        return Err(ExpandError::ReadOnly);
    }
    let current = vhd.current_size();
    if !new_size.is_multiple_of(SECTOR_SIZE) || new_size > MAX_DISK_SIZE {
        return Err(ExpandError::InvalidSize(new_size));
    }
    if new_size < current {
        return Err(ExpandError::Shrink {
            current,
            new: new_size,
        });
    }
    let (new_size, geometry) = if creator_sizes_by_chs(&vhd.footer) {
        let g = Geometry::covering(new_size);
        (if g.is_saturated() { new_size } else { g.size() }, g)
    } else {
        (new_size, Geometry::for_size(new_size))
    };
    let mut footer = vhd.footer;
    footer.current_size = U64::new(new_size);
    // libvhdi reports `original_size` as the media size.
    footer.original_size = U64::new(new_size);
    footer.disk_geometry = geometry.into();
    footer.update_checksum();
    match vhd.disk_type() {
        DiskType::FIXED => {
            let storage = &mut vhd.storage;
            // The footer is overwritten at `current`: only where it really is (a 511-byte
            // footer of old images included).
            let len = storage.len()?;
            if len != current + SECTOR_SIZE && len != current + SECTOR_SIZE - 1 {
                return Err(ExpandError::FooterNotAtEnd { current, len });
            }
            storage.write_at(new_size, footer.as_bytes())?;
            storage.flush()?;
            storage.write_at(current, &[0u8; SECTOR_SIZE as usize])?;
            storage.set_len(new_size + SECTOR_SIZE)?;
            storage.flush()?;
        }
        DiskType::DYNAMIC => {
            let Layout::Sparse(sparse) = &mut vhd.layout else {
                unreachable!("dynamic disks are sparse")
            };
            let storage = &mut vhd.storage;
            let bs = u64::from(sparse.block_size);
            let entries = new_size.div_ceil(bs);
            if entries > u64::from(u32::MAX) {
                return Err(ExpandError::InvalidSize(new_size));
            }
            let old_entries = sparse.bat.len() as u64;
            if entries > old_entries {
                let bat_len = (entries * 4).next_multiple_of(SECTOR_SIZE);
                // The first thing stored after the BAT: a block or locator data.
                let first_user = sparse
                    .bat
                    .iter()
                    .filter(|&&e| e != BAT_UNALLOCATED)
                    .map(|&e| u64::from(e) * SECTOR_SIZE)
                    .chain(
                        sparse
                            .header
                            .parent_locators
                            .iter()
                            .filter(|l| l.platform_code.get() != 0)
                            .map(|l| l.platform_data_offset.get()),
                    )
                    .filter(|&o| o >= sparse.bat_offset)
                    .min();
                let mut new_bat: Vec<u8> =
                    sparse.bat.iter().flat_map(|e| e.to_be_bytes()).collect();
                new_bat.resize(bat_len as usize, 0xff);
                let bat_offset = match first_user {
                    Some(limit) if sparse.bat_offset + bat_len > limit => {
                        // No room: move the BAT to the end (blocks allocated later go after it).
                        // Keep a valid tail footer (the old size) after it until the header
                        // points at it.
                        let at = sparse.end_of_data;
                        storage.write_at(at + bat_len, footer_bytes(&vhd.footer).as_slice())?;
                        at
                    }
                    // In place: the new entries fit before the first block.
                    _ => sparse.bat_offset,
                };
                storage.write_at(bat_offset, &new_bat)?;
                storage.flush()?;
                sparse.header.table_offset = U64::new(bat_offset);
                sparse.header.max_table_entries = U32::new(entries as u32);
                sparse.header.update_checksum();
                storage.write_at(sparse.header_offset, sparse.header.as_bytes())?;
                storage.flush()?;
                sparse.end_of_data = sparse.end_of_data.max(bat_offset + bat_len);
                sparse.bat_offset = bat_offset;
                sparse.bat.resize(entries as usize, BAT_UNALLOCATED);
                sparse
                    .full
                    .extend((old_entries..entries).map(|_| AtomicU8::new(0)));
            }
            storage.write_at(sparse.end_of_data, footer.as_bytes())?;
            storage.set_len(sparse.end_of_data + SECTOR_SIZE)?;
            storage.write_at(0, footer.as_bytes())?;
            storage.flush()?;
        }
        _ => return Err(ExpandError::Differencing),
    }
    vhd.footer = footer;
    vhd.size = new_size;
    Ok(())
}

/// The current footer's bytes (placed after a moved BAT so the file stays valid mid-way).
fn footer_bytes(footer: &crate::defs::Footer) -> Vec<u8> {
    let mut v = vec![0u8; SECTOR_SIZE as usize];
    v.copy_from_slice(footer.as_bytes());
    v
}
