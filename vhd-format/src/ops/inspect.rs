//! `inspect`: everything in the headers, the allocation map and fragmentation.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::defs::{
    DiskType, FourCc, Geometry, SectorBitmap, Uuid, VhdTime, BAT_UNALLOCATED, SECTOR_SIZE,
};
use crate::io::{IoError, Storage};
use crate::parent::Locator;
use crate::vhd::{Layout, Vhd, Warning};

/// What a range of the virtual disk is backed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentState {
    /// Data in this file (at `file_offset`).
    Data,
    /// Not in this file and reads as zeros (dynamic disk hole).
    Zero,
    /// Not in this file: comes from the parent (differencing disk).
    Parent,
}

/// A run of the virtual disk with one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extent {
    /// Virtual offset.
    pub start: u64,
    /// Bytes.
    pub length: u64,
    /// State.
    pub state: ExtentState,
    /// File offset of the data, for [`ExtentState::Data`] (contiguous for the whole extent).
    pub file_offset: Option<u64>,
}

/// The result of [`Vhd::inspect`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Inspection {
    /// Disk type.
    pub disk_type: DiskType,
    /// The size reads use.
    pub virtual_size: u64,
    /// `current_size`.
    pub current_size: u64,
    /// `original_size`.
    pub original_size: u64,
    /// Geometry and the size it addresses.
    pub geometry: Geometry,
    /// C·H·S·512.
    pub chs_size: u64,
    /// Creator application.
    pub creator_application: FourCc,
    /// Creator version (major.minor as u16 halves).
    pub creator_version: u32,
    /// Creator host OS.
    pub creator_host_os: FourCc,
    /// Creation time.
    pub timestamp: VhdTime,
    /// Unique id.
    pub unique_id: Uuid,
    /// Saved-state flag.
    pub saved_state: bool,
    /// Temporary-disk feature bit.
    pub temporary: bool,
    /// Block size (sparse disks).
    pub block_size: Option<u32>,
    /// BAT entries (sparse disks).
    pub max_table_entries: Option<u32>,
    /// BAT offset (sparse disks).
    pub table_offset: Option<u64>,
    /// Allocated blocks.
    pub allocated_blocks: u64,
    /// Bytes of virtual data held in this file (present sectors).
    pub allocated_bytes: u64,
    /// Length of the file.
    pub file_size: u64,
    /// Fragmentation: the share (0–100) of allocated blocks not stored right after the
    /// previous virtual block, i.e. where a sequential read must seek.
    pub fragmentation_percent: u32,
    /// Parent unique id, timestamp and name (differencing).
    pub parent: Option<(Uuid, VhdTime, String)>,
    /// Parent locators (differencing).
    pub locators: Vec<Locator>,
    /// The allocation map, merged into maximal runs.
    pub map: Vec<Extent>,
    /// Warnings from opening.
    pub warnings: Vec<Warning>,
}

impl<S: Storage> Vhd<S> {
    /// Everything about this disk: header fields, allocation map, fragmentation.
    ///
    /// The map is exact to the sector for blocks whose bitmap is partial, except for blocks
    /// that share file space with another (a corrupt image, [`Warning::BlocksShareSpace`]):
    /// each is one data extent.
    pub fn inspect(&self) -> Result<Inspection, IoError> {
        let f = &self.footer;
        let mut map: Vec<Extent> = Vec::new();
        let mut push = |e: Extent| {
            if let Some(last) = map.last_mut() {
                let contiguous = match (last.file_offset, e.file_offset) {
                    (Some(a), Some(b)) => a + last.length == b,
                    (None, None) => true,
                    _ => false,
                };
                if last.state == e.state && last.start + last.length == e.start && contiguous {
                    last.length += e.length;
                    return;
                }
            }
            map.push(e);
        };
        let (mut allocated_blocks, mut allocated_bytes, mut fragmented) = (0u64, 0u64, 0u64);
        let hole = if self.parent.is_some() {
            ExtentState::Parent
        } else {
            ExtentState::Zero
        };
        match &self.layout {
            Layout::Fixed => {
                push(Extent {
                    start: 0,
                    length: self.size,
                    state: ExtentState::Data,
                    file_offset: Some(0),
                });
                allocated_bytes = self.size;
            }
            Layout::Sparse(s) => {
                let bs = u64::from(s.block_size);
                let mut bitmap = vec![0u8; s.bitmap_bytes as usize];
                let mut prev_end: Option<u64> = None;
                for (block, &entry) in s.bat.iter().enumerate() {
                    let start = block as u64 * bs;
                    if start >= self.size {
                        break;
                    }
                    let len = bs.min(self.size - start);
                    if entry == BAT_UNALLOCATED {
                        push(Extent {
                            start,
                            length: len,
                            state: hole,
                            file_offset: None,
                        });
                        continue;
                    }
                    allocated_blocks += 1;
                    let file = u64::from(entry) * SECTOR_SIZE;
                    if prev_end.is_some_and(|end| end != file) {
                        fragmented += 1;
                    }
                    prev_end = Some(file + u64::from(s.bitmap_bytes) + bs);
                    let data = file + u64::from(s.bitmap_bytes);
                    if s.shared.binary_search(&(block as u32)).is_ok() {
                        // Its space is another block's too (a corrupt image): one extent, so
                        // that aliases cannot multiply the map (see `Warning::BlocksShareSpace`).
                        allocated_bytes += len;
                        push(Extent {
                            start,
                            length: len,
                            state: ExtentState::Data,
                            file_offset: Some(data),
                        });
                        continue;
                    }
                    self.storage.read_at(file, &mut bitmap)?;
                    let bits = SectorBitmap(&bitmap);
                    let sectors = len.div_ceil(SECTOR_SIZE) as usize;
                    let mut k = 0;
                    while k < sectors {
                        let (present, run) = bits.run(k, sectors - k);
                        let off = k as u64 * SECTOR_SIZE;
                        let length = (run as u64 * SECTOR_SIZE).min(len - off);
                        if present {
                            allocated_bytes += length;
                            push(Extent {
                                start: start + off,
                                length,
                                state: ExtentState::Data,
                                file_offset: Some(data + off),
                            });
                        } else {
                            push(Extent {
                                start: start + off,
                                length,
                                state: hole,
                                file_offset: None,
                            });
                        }
                        k += run;
                    }
                }
            }
        }
        let header = self.header();
        Ok(Inspection {
            disk_type: f.disk_type(),
            virtual_size: self.size,
            current_size: f.current_size.get(),
            original_size: f.original_size.get(),
            geometry: f.geometry(),
            chs_size: f.geometry().size(),
            creator_application: f.creator_application(),
            creator_version: f.creator_version.get(),
            creator_host_os: f.creator_host_os(),
            timestamp: f.timestamp(),
            unique_id: f.unique_id(),
            saved_state: f.saved_state != 0,
            temporary: f.features().temporary(),
            block_size: header.map(|h| h.block_size.get()),
            max_table_entries: header.map(|h| h.max_table_entries.get()),
            table_offset: header.map(|h| h.table_offset.get()),
            allocated_blocks,
            allocated_bytes,
            file_size: self.storage.len()?,
            fragmentation_percent: (fragmented * 100)
                .checked_div(allocated_blocks)
                .unwrap_or(0) as u32,
            parent: match (f.disk_type(), header) {
                (DiskType::DIFFERENCING, Some(h)) => Some((
                    h.parent_unique_id(),
                    h.parent_timestamp(),
                    self.parent_name().unwrap_or_default(),
                )),
                _ => None,
            },
            locators: self.parent_locators()?,
            map,
            warnings: self.warnings.clone(),
        })
    }
}
