//! `convert`: any [`Disk`] (a fixed, dynamic or differencing VHD, a whole chain, a raw image)
//! into a new fixed or dynamic VHD or a raw image.
//!
//! Flattening a differencing chain is the same operation: the chain reads as one disk. The
//! copy reads the source a block at a time, skips what the source reports unallocated without
//! reading it, and writes only non-zero runs, so sparse inputs stay sparse. A new dynamic disk
//! is laid out sequentially with each block's bitmap and data in one write and the BAT written
//! once at the end; the output is complete only when the call returns.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use zerocopy::IntoBytes;

use super::{stop_at, Progress};
use crate::create::BAT_OFFSET;
use crate::defs::{bitmap_bytes, DiskType, SECTOR_SIZE};
use crate::disk::{Disk, DiskError};
use crate::io::{IoError, Storage};
use crate::vhd::{OpenError, OpenOptions, Vhd};
use crate::{CreateError, CreateOptions};

/// What to convert into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A fixed VHD.
    Fixed,
    /// A dynamic VHD with this block size.
    Dynamic {
        /// Block size (a power of two, 512 bytes to 256 MiB).
        block_size: u32,
    },
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// Reading the source failed.
    #[error("reading the source failed")]
    Source(#[source] DiskError),
    /// The output could not be created.
    #[error("creating the output failed")]
    Create(#[from] CreateError),
    /// Writing the output failed.
    #[error("writing the output failed")]
    Io(#[from] IoError),
    /// The output did not open again (a bug; reported rather than hidden).
    #[error("the output does not open")]
    Reopen(#[from] OpenError),
    /// The [`Progress`] callback asked to stop. The source is untouched. The output is valid
    /// but incomplete: a VHD output is a disk of the source's size holding the part copied so
    /// far (the rest reads as zeros), a raw output has the source's length with the same
    /// holes. Delete it, or convert again.
    #[error("the conversion was cancelled")]
    Cancelled,
}

/// Granularity of zero detection inside a block: runs of zeros this long are left as holes.
const ZERO_GRAIN: usize = 64 << 10;
/// Copy unit for raw and fixed outputs.
const COPY_CHUNK: u64 = 2 << 20;

/// Whether every byte of `buf` is zero (written to vectorize).
pub(crate) fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(64);
    for c in &mut chunks {
        if c.iter().fold(0u8, |a, &b| a | b) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == 0)
}

/// The non-zero runs of `buf` at [`ZERO_GRAIN`] granularity, as `(start, end)` pairs.
fn nonzero_runs(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, grain) in buf.chunks(ZERO_GRAIN).enumerate() {
        if is_zero(grain) {
            continue;
        }
        let (start, end) = (i * ZERO_GRAIN, i * ZERO_GRAIN + grain.len());
        match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        }
    }
    runs
}

/// Copies `src` into `dst` as raw bytes (the output is `src.size()` bytes, sparse where the
/// source is zero). `progress` sees each 2 MiB (phase `"copy"`) and may cancel after any of
/// them: see [`ConvertError::Cancelled`].
pub fn convert_to_raw<S: Storage>(
    src: &dyn Disk,
    dst: &mut S,
    progress: &mut dyn Progress,
) -> Result<(), ConvertError> {
    let size = src.size();
    dst.set_len(0)?;
    dst.set_len(size)?;
    let copied = copy_runs(src, dst, 0, progress)?;
    dst.flush()?;
    match copied {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(ConvertError::Cancelled),
    }
}

/// Copies every non-zero run of `src` into `dst` at `base + offset`; `Break` when `progress`
/// stopped the copy (the caller leaves the output valid, then reports the cancellation).
fn copy_runs<S: Storage>(
    src: &dyn Disk,
    dst: &mut S,
    base: u64,
    progress: &mut dyn Progress,
) -> Result<ControlFlow<()>, ConvertError> {
    let size = src.size();
    let total = size.div_ceil(COPY_CHUNK);
    let mut buf = vec![0u8; COPY_CHUNK.min(size) as usize];
    for (i, offset) in (0..size).step_by(COPY_CHUNK as usize).enumerate() {
        let n = COPY_CHUNK.min(size - offset) as usize;
        if !src
            .is_unallocated(offset, n as u64)
            .map_err(ConvertError::Source)?
        {
            let chunk = &mut buf[..n];
            src.read_at(offset, chunk).map_err(ConvertError::Source)?;
            for (a, b) in nonzero_runs(chunk) {
                dst.write_at(base + offset + a as u64, &chunk[a..b])?;
            }
        }
        if stop_at(progress, "copy", i as u64 + 1, total) {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Copies `src` into a new VHD in `dst` (truncating it) and returns it open for writing.
///
/// `options` supplies the unique id, timestamp and creator; its size is replaced by the
/// source's (rounded up to a whole sector, the padding reading as zeros, as `qemu-img convert
/// -O vpc` does) and, for [`Target::Dynamic`], its block size by the target's.
///
/// `progress` sees each 2 MiB (fixed) or block (dynamic), phase `"copy"`, and may cancel
/// after any of them: the output is then completed as a valid VHD holding what was copied
/// (see [`ConvertError::Cancelled`]).
pub fn convert_to_vhd<S: Storage>(
    src: &dyn Disk,
    mut dst: S,
    target: Target,
    options: &CreateOptions,
    progress: &mut dyn Progress,
) -> Result<Vhd<S>, ConvertError> {
    // A disk is whole sectors: a source of another length is padded with zeros to the next
    // sector, as `qemu-img convert -O vpc` does.
    let src_size = src.size();
    let size = src_size.next_multiple_of(SECTOR_SIZE);
    match target {
        Target::Fixed => {
            let opts = CreateOptions {
                size,
                ..options.clone()
            };
            let vhd = crate::create_fixed(&mut dst, &opts)?;
            let footer = *vhd.footer();
            drop(vhd);
            let copied = copy_runs(src, &mut dst, 0, progress)?;
            // The footer is already at `size`; writes never touched it.
            dst.write_at(size, footer.as_bytes())?;
            dst.flush()?;
            if copied.is_break() {
                return Err(ConvertError::Cancelled);
            }
            Ok(Vhd::open(dst, OpenOptions::new().writable(true))?)
        }
        Target::Dynamic { block_size } => {
            let opts = CreateOptions {
                size,
                block_size,
                ..options.clone()
            };
            // Validates the parameters and gives the footer; we then lay out the blocks ourselves.
            let footer = *crate::create_dynamic(&mut dst, &opts)?.footer();
            let entries = size.div_ceil(u64::from(block_size));
            let bitmap_len = bitmap_bytes(block_size) as usize;
            let bs = block_size as usize;
            let mut bat = vec![u32::MAX; entries as usize];
            let bat_bytes = (entries * 4).next_multiple_of(SECTOR_SIZE);
            let mut next = BAT_OFFSET + bat_bytes;
            // [bitmap | data]: one write for a block's bitmap and its first data run.
            let mut buf = vec![0u8; bitmap_len + bs];
            buf[..bitmap_len].fill(0xff);
            let mut cancelled = false;
            for block in 0..entries {
                let offset = block * u64::from(block_size);
                let n = (size - offset).min(u64::from(block_size)) as usize;
                // The part the source has; the rest (the last sector's padding) reads as zeros.
                let have = (src_size - offset).min(n as u64) as usize;
                let data = &mut buf[bitmap_len..bitmap_len + n];
                data[have..].fill(0);
                let skip = src
                    .is_unallocated(offset, have as u64)
                    .map_err(ConvertError::Source)?;
                if !skip {
                    src.read_at(offset, &mut data[..have])
                        .map_err(ConvertError::Source)?;
                    let runs = nonzero_runs(data);
                    if !runs.is_empty() {
                        bat[block as usize] = (next / SECTOR_SIZE) as u32;
                        let mut first = true;
                        for (a, b) in runs {
                            let (from, to) = if first && a == 0 {
                                (0, bitmap_len + b)
                            } else {
                                (bitmap_len + a, bitmap_len + b)
                            };
                            if first && a != 0 {
                                dst.write_at(next, &buf[..bitmap_len])?;
                            }
                            dst.write_at(next + from as u64, &buf[from..to])?;
                            first = false;
                        }
                        next += (bitmap_len + bs) as u64;
                        if next / SECTOR_SIZE >= u64::from(u32::MAX) {
                            return Err(ConvertError::Source(DiskError::FileTooLarge {
                                needed: next,
                            }));
                        }
                    }
                }
                if stop_at(progress, "copy", block + 1, entries) {
                    // The blocks laid out so far become a valid (partial) disk below.
                    cancelled = true;
                    break;
                }
            }
            dst.set_len(next)?;
            let bat_raw: Vec<u8> = bat.iter().flat_map(|e| e.to_be_bytes()).collect();
            dst.write_at(BAT_OFFSET, &bat_raw)?;
            dst.write_at(next, footer.as_bytes())?;
            dst.flush()?;
            if cancelled {
                return Err(ConvertError::Cancelled);
            }
            debug_assert_eq!(footer.disk_type(), DiskType::DYNAMIC);
            Ok(Vhd::open(dst, OpenOptions::new().writable(true))?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection() {
        let mut b = vec![0u8; 200_000];
        assert!(is_zero(&b));
        assert!(nonzero_runs(&b).is_empty());
        b[199_999] = 1;
        assert!(!is_zero(&b));
        b[70_000] = 1;
        assert_eq!(nonzero_runs(&b), vec![(65536, 131072), (196608, 200_000)]);
    }
}
