//! Arbitrary bytes as a VHD: open, read everything, write a little, reopen.
//!
//! Input layout: the first [`CONTROL_LEN`] bytes choose the size policy and a short list of
//! [`Op`]s (decoded with `arbitrary`); the rest is the image. Keeping the control block a fixed
//! size means mutations of it never shift the image, and a seed is just `CONTROL_LEN` bytes
//! followed by a real image (see `fuzz/seeds/`).
//!
//! Checksums are not verified under `cfg(fuzzing)`, so mutated images reach the BAT, bitmap
//! and allocation code. Besides "no panic", every write that succeeds must read back.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vhd_format::{Disk, MemStorage, OpenError, OpenOptions, ParentDisk, RawDisk, SizePolicy, Vhd};

/// Bytes of control data in front of the image.
const CONTROL_LEN: usize = 64;
/// How much the image may grow while being written to.
const GROWTH_LIMIT: u64 = 16 << 20;
/// Disks up to this size are read whole; larger ones are sampled.
const READ_ALL_UP_TO: u64 = 1 << 20;
/// Read size.
const CHUNK: usize = 64 << 10;
/// Largest raw parent supplied to a differencing disk (a smaller parent reads as zeros beyond
/// its end).
const MAX_PARENT: u64 = 1 << 20;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Write `len` bytes of `fill` at `offset` (modulo the size).
    Write {
        offset: u64,
        len: u16,
        fill: u8,
    },
    /// Write `len` zeros at `offset` (modulo the size).
    Zero {
        offset: u64,
        len: u16,
    },
    /// Write up to the last byte of the disk.
    Tail {
        back: u16,
        fill: u8,
    },
    Flush,
}

fuzz_target!(|data: &[u8]| {
    if data.len() < CONTROL_LEN {
        return;
    }
    let (control, image) = data.split_at(CONTROL_LEN);
    let mut u = Unstructured::new(control);
    let Ok((policy, ops)) = control_block(&mut u) else {
        return;
    };
    run(image, policy, &ops);
});

fn control_block(u: &mut Unstructured<'_>) -> arbitrary::Result<(SizePolicy, Vec<Op>)> {
    let n = u.int_in_range(0u8..=3)?;
    let policy = match u.int_in_range(0u8..=2)? {
        0 => SizePolicy::CurrentSize,
        1 => SizePolicy::Chs,
        _ => SizePolicy::Qemu,
    };
    let ops = (0..n)
        .map(|_| Op::arbitrary(u))
        .collect::<arbitrary::Result<_>>()?;
    Ok((policy, ops))
}

fn options(policy: SizePolicy) -> OpenOptions {
    OpenOptions::new()
        .writable(true)
        .size_policy(policy)
        .ignore_parent_id(true)
}

fn raw_parent(size: u64) -> Box<dyn ParentDisk> {
    let len = size.min(MAX_PARENT) as usize / 512 * 512;
    let bytes: Vec<u8> = (0..len).map(|i| (i / 512) as u8 | 1).collect();
    Box::new(RawDisk::new(MemStorage::from_vec(bytes), false).expect("in-memory"))
}

fn run(image: &[u8], policy: SizePolicy, ops: &[Op]) {
    let storage =
        MemStorage::from_vec(image.to_vec()).with_limit(image.len() as u64 + GROWTH_LIMIT);
    let probed = Vhd::probe(&storage);
    let mut vhd = match Vhd::open(storage.clone(), options(policy)) {
        Ok(v) => v,
        Err(OpenError::NeedsParent { .. }) => {
            let (footer, _) = probed.expect("probe succeeds where open got as far as the parent");
            let parent = raw_parent(footer.current_size.get());
            match Vhd::open_with_parent(storage, parent, options(policy)) {
                Ok(v) => v,
                Err(_) => return,
            }
        }
        Err(_) => return,
    };
    let size = vhd.size();
    let _ = (
        vhd.parent_name(),
        vhd.parent_locators(),
        vhd.allocated_blocks(),
    );

    // Read.
    let mut buf = vec![0u8; CHUNK];
    let mut offsets: Vec<u64> = if size <= READ_ALL_UP_TO {
        (0..size.div_ceil(CHUNK as u64))
            .map(|i| i * CHUNK as u64)
            .collect()
    } else {
        let mut o = vec![0, size - CHUNK as u64, size / 2];
        if let (Some(bat), Some(bs)) = (vhd.bat(), vhd.block_size()) {
            let allocated = bat.iter().enumerate().filter(|(_, &e)| e != u32::MAX);
            o.extend(allocated.take(16).map(|(i, _)| i as u64 * u64::from(bs)));
        }
        o
    };
    offsets.retain(|&o| o < size);
    for offset in offsets {
        let n = (size - offset).min(CHUNK as u64) as usize;
        vhd.read_at(offset, &mut buf[..n])
            .expect("reads inside an image that opened succeed");
        let _ = vhd.is_unallocated(offset, n as u64);
    }

    // Write, and read each successful write back (a writable open refuses blocks that share
    // bytes of the file, so no write can show up elsewhere).
    if size > 0 {
        for op in ops {
            let (offset, data) = match *op {
                Op::Write { offset, len, fill } => {
                    let offset = offset % size;
                    (
                        offset,
                        vec![fill; (u64::from(len) + 1).min(size - offset) as usize],
                    )
                }
                Op::Zero { offset, len } => {
                    let offset = offset % size;
                    (
                        offset,
                        vec![0; (u64::from(len) + 1).min(size - offset) as usize],
                    )
                }
                Op::Tail { back, fill } => {
                    let n = (u64::from(back) + 1).min(size);
                    (size - n, vec![fill; n as usize])
                }
                Op::Flush => {
                    let _ = vhd.flush();
                    continue;
                }
            };
            if vhd.write_at(offset, &data).is_ok() {
                let mut back = vec![0u8; data.len()];
                vhd.read_at(offset, &mut back).expect("read back");
                assert!(
                    back == data,
                    "write of {} bytes at {offset} does not read back",
                    data.len()
                );
            }
        }
    }

    // Reopen what is left.
    let (storage, parent) = vhd.into_parts();
    let _ = Vhd::probe(&storage);
    let reopened = match parent {
        Some(p) => Vhd::open_with_parent(storage, p, options(policy)),
        None => Vhd::open(storage, options(policy)),
    };
    if let Ok(v) = reopened {
        let n = v.size().min(CHUNK as u64) as usize;
        let _ = v.read_at(0, &mut buf[..n]);
    }
}
