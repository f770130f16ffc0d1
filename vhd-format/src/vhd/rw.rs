//! The read and write paths.
//!
//! A sparse disk splits every request at block boundaries. Inside an allocated block, a set
//! bitmap bit means the sector is in this file; a clear bit means it comes from the *backing*:
//! zeros for a dynamic disk, the parent for a differencing one. Blocks whose bitmap is all ones
//! (every block this crate allocates in a dynamic disk, and most blocks in practice) are cached
//! as full, so reads through them cost one storage read and never touch the bitmap.
//!
//! Allocation writes, in this order: the bitmap and the data, the file length, (a barrier),
//! the BAT entry, then the footer at the new end. Marking more sectors of an allocated block
//! present writes their data, (a barrier), then the bitmap. A cut at any point leaves the
//! previous contents readable; see the crate docs on crash consistency.

use alloc::vec;
use core::sync::atomic::Ordering;

use super::{Layout, Sparse, Vhd, BLOCK_FULL, BLOCK_PARTIAL, BLOCK_UNKNOWN};
use crate::defs::{DiskType, SectorBitmap, SectorBitmapMut, BAT_UNALLOCATED, SECTOR_SIZE};
use crate::disk::{check_range, DiskError};
use crate::io::Storage;
use zerocopy::IntoBytes;

const SECTOR: usize = SECTOR_SIZE as usize;

/// One piece of a request that stays inside one block.
#[derive(Clone, Copy)]
struct Chunk {
    block: usize,
    /// Offset inside the block.
    within: u64,
    /// Bytes.
    len: usize,
}

fn chunks(offset: u64, len: usize, block_size: u32) -> impl Iterator<Item = (usize, Chunk)> {
    let bs = u64::from(block_size);
    let mut done = 0usize;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let pos = offset + done as u64;
        let within = pos % bs;
        let n = ((bs - within) as usize).min(len - done);
        let start = done;
        done += n;
        Some((
            start,
            Chunk {
                block: (pos / bs) as usize,
                within,
                len: n,
            },
        ))
    })
}

impl<S: Storage> Vhd<S> {
    /// Reads from whatever lies under this disk: the parent, or zeros.
    fn read_backing(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        match &self.parent {
            Some(parent) => {
                // A parent smaller than the child (the child was expanded) reads as zeros
                // beyond its end.
                let psize = parent.size();
                let inside = psize.saturating_sub(offset).min(buf.len() as u64) as usize;
                if inside > 0 {
                    parent.read_at(offset, &mut buf[..inside])?;
                }
                buf[inside..].fill(0);
                Ok(())
            }
            None => {
                buf.fill(0);
                Ok(())
            }
        }
    }

    fn backing_unallocated(&self, offset: u64, len: u64) -> Result<bool, DiskError> {
        match &self.parent {
            Some(parent) => {
                let psize = parent.size();
                if offset >= psize {
                    return Ok(true);
                }
                parent.is_unallocated(offset, len.min(psize - offset))
            }
            None => Ok(true),
        }
    }

    /// Reads block `block`'s bitmap into `out` (which is `bitmap_bytes` long).
    fn read_bitmap(&self, sparse: &Sparse, block: usize, out: &mut [u8]) -> Result<(), DiskError> {
        let start = u64::from(sparse.bat[block]) * SECTOR_SIZE;
        self.storage.read_at(start, out)?;
        let state = if out.iter().all(|&b| b == 0xff) {
            BLOCK_FULL
        } else {
            BLOCK_PARTIAL
        };
        sparse.full[block].store(state, Ordering::Relaxed);
        Ok(())
    }

    /// Whether block `block` is known (or now found) to have every bitmap bit set.
    fn block_full(&self, sparse: &Sparse, block: usize) -> Result<bool, DiskError> {
        match sparse.full[block].load(Ordering::Relaxed) {
            BLOCK_FULL => Ok(true),
            BLOCK_PARTIAL => Ok(false),
            _ => {
                let mut bitmap = vec![0u8; sparse.bitmap_bytes as usize];
                self.read_bitmap(sparse, block, &mut bitmap)?;
                Ok(sparse.full[block].load(Ordering::Relaxed) == BLOCK_FULL)
            }
        }
    }

    pub(super) fn read_impl(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        let sparse = match &self.layout {
            Layout::Fixed => return Ok(self.storage.read_at(offset, buf)?),
            Layout::Sparse(s) => s,
        };
        let mut bitmap = alloc::vec::Vec::new();
        for (at, c) in chunks(offset, buf.len(), sparse.block_size) {
            let out = &mut buf[at..at + c.len];
            let entry = sparse.bat[c.block];
            if entry == BAT_UNALLOCATED {
                self.read_backing(offset + at as u64, out)?;
                continue;
            }
            let data = u64::from(entry) * SECTOR_SIZE + u64::from(sparse.bitmap_bytes);
            if self.block_full(sparse, c.block)? {
                self.storage.read_at(data + c.within, out)?;
                continue;
            }
            bitmap.resize(sparse.bitmap_bytes as usize, 0);
            self.read_bitmap(sparse, c.block, &mut bitmap)?;
            let bits = SectorBitmap(&bitmap);
            // Walk runs of sectors with the same state.
            let mut pos = 0usize;
            while pos < c.len {
                let within = c.within + pos as u64;
                let sector = (within / SECTOR_SIZE) as usize;
                let last_sector = ((c.within + c.len as u64 - 1) / SECTOR_SIZE) as usize;
                let (present, run) = bits.run(sector, last_sector - sector + 1);
                let run_end = ((sector + run) as u64 * SECTOR_SIZE).min(c.within + c.len as u64);
                let n = (run_end - within) as usize;
                let piece = &mut out[pos..pos + n];
                if present {
                    self.storage.read_at(data + within, piece)?;
                } else {
                    self.read_backing(offset + (at + pos) as u64, piece)?;
                }
                pos += n;
            }
        }
        Ok(())
    }

    pub(super) fn is_unallocated_impl(&self, offset: u64, len: u64) -> Result<bool, DiskError> {
        let sparse = match &self.layout {
            Layout::Fixed => return Ok(false),
            Layout::Sparse(s) => s,
        };
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return Ok(true);
        }
        let bs = u64::from(sparse.block_size);
        let mut bitmap = alloc::vec::Vec::new();
        let mut pos = offset;
        while pos < end {
            let block = (pos / bs) as usize;
            let stop = ((block as u64 + 1) * bs).min(end);
            if sparse.bat[block] != BAT_UNALLOCATED {
                if self.block_full(sparse, block)? {
                    return Ok(false);
                }
                bitmap.resize(sparse.bitmap_bytes as usize, 0);
                self.read_bitmap(sparse, block, &mut bitmap)?;
                let first = ((pos % bs) / SECTOR_SIZE) as usize;
                let last = ((stop - 1) % bs / SECTOR_SIZE) as usize;
                let (present, run) = SectorBitmap(&bitmap).run(first, last - first + 1);
                if present || run < last - first + 1 {
                    return Ok(false);
                }
            }
            pos = stop;
        }
        self.backing_unallocated(offset, end - offset)
    }

    pub(super) fn write_impl(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        if !self.writable {
            return Err(DiskError::ReadOnly);
        }
        check_range(offset, buf.len(), self.size)?;
        let block_size = match &self.layout {
            Layout::Fixed => return Ok(self.storage.write_at(offset, buf)?),
            Layout::Sparse(s) => s.block_size,
        };
        for (at, c) in chunks(offset, buf.len(), block_size) {
            self.write_chunk(offset + at as u64, c, &buf[at..at + c.len])?;
        }
        Ok(())
    }

    fn sparse(&self) -> &Sparse {
        match &self.layout {
            Layout::Sparse(s) => s,
            Layout::Fixed => unreachable!("only called on sparse disks"),
        }
    }

    fn sparse_mut(&mut self) -> &mut Sparse {
        match &mut self.layout {
            Layout::Sparse(s) => s,
            Layout::Fixed => unreachable!("only called on sparse disks"),
        }
    }

    /// Writes `data` (inside one block) at virtual `offset`.
    fn write_chunk(&mut self, offset: u64, c: Chunk, data: &[u8]) -> Result<(), DiskError> {
        let sparse = self.sparse();
        let entry = sparse.bat[c.block];
        let bitmap_bytes = sparse.bitmap_bytes as usize;
        if entry == BAT_UNALLOCATED {
            // Writing zeros over something that already reads as zeros changes nothing. In a
            // differencing child that is only true when no ancestor has data there.
            if data.iter().all(|&b| b == 0)
                && self.backing_unallocated(offset, data.len() as u64)?
            {
                return Ok(());
            }
            return self.allocate_and_write(offset, c, data);
        }
        let data_start = u64::from(entry) * SECTOR_SIZE + bitmap_bytes as u64;
        if self.block_full(sparse, c.block)? {
            return Ok(self.storage.write_at(data_start + c.within, data)?);
        }
        let mut bitmap = vec![0u8; bitmap_bytes];
        self.read_bitmap(sparse, c.block, &mut bitmap)?;
        let first = (c.within / SECTOR_SIZE) as usize;
        let last = ((c.within + c.len as u64 - 1) / SECTOR_SIZE) as usize;
        self.write_sectors_merged(offset, c, data, data_start, &bitmap)?;
        if SectorBitmap(&bitmap).all_set(first, last - first + 1) {
            return Ok(());
        }
        SectorBitmapMut(&mut bitmap).set_range(first, last - first + 1);
        // Data first, then the bits that make it visible; with barriers the data is durable
        // before any bit points at it, as for a new block's BAT entry.
        if self.barriers {
            self.storage.flush()?;
        }
        let bitmap_start = u64::from(entry) * SECTOR_SIZE;
        self.storage.write_at(bitmap_start, &bitmap)?;
        let state = if bitmap.iter().all(|&b| b == 0xff) {
            BLOCK_FULL
        } else {
            BLOCK_PARTIAL
        };
        self.sparse().full[c.block].store(state, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the sectors `data` touches inside a block whose bitmap is `bitmap`, filling the
    /// untouched part of a partially written edge sector from the backing when the sector is not
    /// present yet (read-modify-write), so that the sector can be marked present as a whole.
    fn write_sectors_merged(
        &mut self,
        offset: u64,
        c: Chunk,
        data: &[u8],
        data_start: u64,
        bitmap: &[u8],
    ) -> Result<(), DiskError> {
        let bits = SectorBitmap(bitmap);
        let head_pad = (c.within % SECTOR_SIZE) as usize;
        let end = c.within + c.len as u64;
        let tail_pad = ((SECTOR_SIZE - end % SECTOR_SIZE) % SECTOR_SIZE) as usize;
        let first = (c.within / SECTOR_SIZE) as usize;
        let last = ((end - 1) / SECTOR_SIZE) as usize;
        let mut sector_buf = [0u8; SECTOR];
        // A single partial sector, or a partial first sector.
        let head_len = if head_pad != 0 || (first == last && tail_pad != 0) {
            let n = (SECTOR - head_pad).min(data.len());
            let sector_off = c.within - head_pad as u64;
            if bits.get(first) {
                self.storage.write_at(data_start + c.within, &data[..n])?;
            } else {
                self.read_backing(offset - head_pad as u64, &mut sector_buf)?;
                sector_buf[head_pad..head_pad + n].copy_from_slice(&data[..n]);
                self.storage
                    .write_at(data_start + sector_off, &sector_buf)?;
            }
            n
        } else {
            0
        };
        if head_len == data.len() {
            return Ok(());
        }
        // A partial last sector.
        let tail_len = if tail_pad != 0 { SECTOR - tail_pad } else { 0 };
        let middle = &data[head_len..data.len() - tail_len];
        if !middle.is_empty() {
            self.storage
                .write_at(data_start + c.within + head_len as u64, middle)?;
        }
        if tail_len != 0 {
            let sector_off = end - tail_len as u64;
            let src = &data[data.len() - tail_len..];
            if bits.get(last) {
                self.storage.write_at(data_start + sector_off, src)?;
            } else {
                let virt = offset + (data.len() - tail_len) as u64;
                self.read_backing(virt, &mut sector_buf)?;
                sector_buf[..tail_len].copy_from_slice(src);
                self.storage
                    .write_at(data_start + sector_off, &sector_buf)?;
            }
        }
        Ok(())
    }

    /// Allocates the block of chunk `c` at the end of the data and writes `data` into it.
    fn allocate_and_write(&mut self, offset: u64, c: Chunk, data: &[u8]) -> Result<(), DiskError> {
        let differencing = self.footer.disk_type() == DiskType::DIFFERENCING;
        let sparse = self.sparse();
        let bitmap_bytes = sparse.bitmap_bytes as usize;
        let block_size = u64::from(sparse.block_size);
        let start = sparse.end_of_data;
        let block_end = start + bitmap_bytes as u64 + block_size;
        let sector = start / SECTOR_SIZE;
        if sector >= u64::from(BAT_UNALLOCATED) {
            return Err(DiskError::FileTooLarge {
                needed: block_end + SECTOR_SIZE,
            });
        }
        let bat_entry_offset = sparse.bat_offset + c.block as u64 * 4;
        // Anything past the footer slot is debris from an interrupted allocation: drop it so
        // the new block's unwritten sectors read as zeros.
        if self.storage.len()? > start + SECTOR_SIZE {
            self.storage.set_len(start + SECTOR_SIZE)?;
        }
        // The footer goes to the block's end first: whatever fails after it (no space for
        // the data, a crash), the file still ends with a valid footer, and the block is
        // unreferenced debris until its BAT entry is written. Written last, as before, a
        // failed data write left a file whose old footer the bitmap had overwritten (peers
        // such as vhdiinfo then refuse it). If this write fails, the file is cut back.
        let footer = self.footer;
        if let Err(e) = self.storage.write_at(block_end, footer.as_bytes()) {
            let _ = self.storage.set_len(start + SECTOR_SIZE);
            return Err(e.into());
        }
        // A dynamic disk's new block is all "present" (its zero-filled data area is exactly
        // what the backing gives); a differencing block marks only what is written.
        let mut bitmap = vec![0u8; bitmap_bytes];
        if differencing {
            let first = (c.within / SECTOR_SIZE) as usize;
            let last = ((c.within + c.len as u64 - 1) / SECTOR_SIZE) as usize;
            let data_start = start + bitmap_bytes as u64;
            self.write_sectors_merged(offset, c, data, data_start, &bitmap)?;
            SectorBitmapMut(&mut bitmap).set_range(first, last - first + 1);
        } else {
            bitmap.fill(0xff);
            self.storage
                .write_at(start + bitmap_bytes as u64 + c.within, data)?;
        }
        self.storage.write_at(start, &bitmap)?;
        if self.barriers {
            self.storage.flush()?;
        }
        self.storage
            .write_at(bat_entry_offset, &(sector as u32).to_be_bytes())?;
        let full = bitmap.iter().all(|&b| b == 0xff);
        let sparse = self.sparse_mut();
        sparse.bat[c.block] = sector as u32;
        sparse.end_of_data = block_end;
        let state = if full { BLOCK_FULL } else { BLOCK_PARTIAL };
        sparse.full[c.block].store(state, Ordering::Relaxed);
        debug_assert_ne!(state, BLOCK_UNKNOWN);
        Ok(())
    }
}
