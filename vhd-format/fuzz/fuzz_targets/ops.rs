//! Arbitrary bytes as a VHD, then one Edit Disk operation on it: check, repair, inspect,
//! compact, expand or merge.
//!
//! Input layout: the first [`CONTROL_LEN`] bytes choose the operation (byte 0 modulo 6, in
//! the order of [`Op`]; bytes 1-2, big-endian, are the sectors an expansion adds; byte 3, when
//! not 0, cancels a compaction at that progress report); the rest is the image, kept in memory with a growth limit so that an operation
//! that trusts a hostile offset or size fails with a typed error instead of exhausting the
//! machine. Seeds include images with parent-locator offsets far outside the file and block
//! sizes far larger than the file (see `fuzz/seeds/ops`).
//!
//! Checksums are not verified under `cfg(fuzzing)`. Besides "no panic": compaction, finished
//! or cancelled, keeps the contents of a small disk, and an image that compacted (or whose
//! compaction was cancelled) or expanded opens again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ops::ControlFlow;

use vhd_format::ops::{self, CompactError, NoProgress, ProgressEvent};
use vhd_format::{Disk, MemStorage, OpenError, OpenOptions, ParentDisk, RawDisk, Vhd};

/// Bytes of control data in front of the image.
const CONTROL_LEN: usize = 4;
/// How much the image may grow during the operation.
const GROWTH_LIMIT: u64 = 16 << 20;
/// Disks up to this size have their contents compared across a compaction.
const COMPARE_UP_TO: u64 = 1 << 20;
/// Largest raw parent supplied to a differencing disk.
const MAX_PARENT: u64 = 1 << 20;

#[derive(Debug)]
enum Op {
    Check,
    Repair,
    Inspect,
    /// Cancelled at report `stop_at` (never when 0).
    Compact {
        stop_at: u8,
    },
    /// Grow by `sectors` sectors.
    Expand {
        sectors: u16,
    },
    Merge,
}

fuzz_target!(|data: &[u8]| {
    if data.len() < CONTROL_LEN {
        return;
    }
    let (control, image) = data.split_at(CONTROL_LEN);
    let op = match control[0] % 6 {
        0 => Op::Check,
        1 => Op::Repair,
        2 => Op::Inspect,
        3 => Op::Compact {
            stop_at: control[3],
        },
        4 => Op::Expand {
            sectors: u16::from_be_bytes([control[1], control[2]]),
        },
        _ => Op::Merge,
    };
    run(image, op);
});

fn raw_parent(size: u64) -> Box<dyn ParentDisk> {
    let len = size.min(MAX_PARENT) as usize / 512 * 512;
    let bytes: Vec<u8> = (0..len).map(|i| (i / 512) as u8 | 1).collect();
    Box::new(RawDisk::new(MemStorage::from_vec(bytes), true).expect("in-memory"))
}

fn options() -> OpenOptions {
    OpenOptions::new().writable(true).ignore_parent_id(true)
}

/// Opens `storage`, with a writable raw parent when it is a differencing disk.
fn open(storage: MemStorage) -> Option<Vhd<MemStorage>> {
    match Vhd::open(storage.clone(), options()) {
        Ok(v) => Some(v),
        Err(OpenError::NeedsParent { .. }) => {
            let (footer, _) = Vhd::probe(&storage).ok()?;
            let parent = raw_parent(footer.current_size.get());
            Vhd::open_with_parent(storage, parent, options()).ok()
        }
        Err(_) => None,
    }
}

fn contents(vhd: &Vhd<MemStorage>) -> Option<Vec<u8>> {
    if vhd.size() > COMPARE_UP_TO {
        return None;
    }
    let mut buf = vec![0u8; vhd.size() as usize];
    vhd.read_at(0, &mut buf)
        .expect("reads inside an image that opened succeed");
    Some(buf)
}

fn run(image: &[u8], op: Op) {
    let limit = image.len() as u64 + GROWTH_LIMIT;
    let mut storage = MemStorage::from_vec(image.to_vec()).with_limit(limit);
    match op {
        Op::Check => {
            let _ = ops::check(&storage);
            return;
        }
        Op::Repair => {
            let _ = ops::repair(&mut storage);
            return;
        }
        _ => {}
    }
    let Some(mut vhd) = open(storage) else {
        return;
    };
    match op {
        Op::Inspect => {
            let _ = vhd.inspect();
        }
        Op::Compact { stop_at } => {
            let before = contents(&vhd);
            let mut seen = 0u8;
            let mut progress = |_: ProgressEvent| {
                seen = seen.saturating_add(1);
                if stop_at != 0 && seen >= stop_at {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            if matches!(
                ops::compact(&mut vhd, None, &mut progress),
                Ok(_) | Err(CompactError::Cancelled)
            ) {
                let (storage, parent) = vhd.into_parts();
                let again = match parent {
                    Some(p) => Vhd::open_with_parent(storage, p, options()),
                    None => Vhd::open(storage, options()),
                }
                .expect("a compacted image opens");
                if let Some(before) = before {
                    assert!(
                        contents(&again).as_ref() == Some(&before),
                        "compaction changed the contents"
                    );
                }
            }
        }
        Op::Expand { sectors } => {
            let new = vhd.current_size().saturating_add(u64::from(sectors) * 512);
            if ops::expand(&mut vhd, new).is_ok() {
                assert!(vhd.size() >= new);
            }
        }
        Op::Merge => {
            let _ = ops::merge_into_parent(&mut vhd, &mut NoProgress);
        }
        Op::Check | Op::Repair => unreachable!(),
    }
}
