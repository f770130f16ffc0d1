//! Power-cut tests: a sequence of writes and flushes on a dynamic or differencing disk (and a
//! compaction) is run on a [`CrashStorage`], which records every storage operation; then the
//! image is rebuilt as it would be after a cut at every operation boundary.
//!
//! After each cut the image must open (warnings allowed) and read:
//! - every disk write that had completed before the cut (so in particular every write that was
//!   followed by a flush) with its data;
//! - the bytes of a write cut in the middle either as before or as written, and every other
//!   byte as before.
//!
//! A second pass models a device that loses or reorders the writes issued since the last flush
//! (a volatile write cache): writes followed by a flush must read back, and every other byte
//! must read either as it was at that flush or as one of the later writes left it (never as
//! some third value, such as the zeros of a sector marked present before its data landed).

mod common;

use common::{pattern, read_all, CrashStorage, Op, Rng};
use vhd_format::{
    create_differencing, create_dynamic, CreateOptions, Disk, MemStorage, OpenOptions, ParentLink,
    Storage, Vhd,
};

const MIB: u64 = 1 << 20;

/// One step of a scenario.
#[derive(Clone, Debug)]
enum Step {
    Write(u64, Vec<u8>),
    Flush,
}

/// What the run recorded about one disk-level write.
#[derive(Clone, Debug)]
struct Done {
    offset: u64,
    data: Vec<u8>,
    /// Index of the first storage operation it issued.
    first_op: usize,
    /// One past its last storage operation.
    end_op: usize,
    /// Index of the `Flush` operation of the first disk flush after it, if any.
    flushed_by: Option<usize>,
}

/// The disk under test and how to open a rebuilt image of it.
struct Scenario {
    /// The contents the disk starts with (what the parent shows, or zeros).
    initial: Vec<u8>,
    /// The image before any step, as the base of the replays.
    base: MemStorage,
    /// The parent's image, for differencing disks.
    parent: Option<MemStorage>,
}

impl Scenario {
    fn open(&self, storage: MemStorage, writable: bool, context: &str) -> Vhd<MemStorage> {
        let options = OpenOptions::new().writable(writable);
        match &self.parent {
            Some(p) => {
                let parent = Vhd::open(p.clone(), OpenOptions::new()).unwrap();
                Vhd::open_with_parent(storage, Box::new(parent), options)
            }
            None => Vhd::open(storage, options),
        }
        .unwrap_or_else(|e| panic!("{context}: image does not open: {e:?}"))
    }

    fn open_crash(&self, storage: CrashStorage) -> Vhd<CrashStorage> {
        let options = OpenOptions::new().writable(true);
        match &self.parent {
            Some(p) => {
                let parent = Vhd::open(p.clone(), OpenOptions::new()).unwrap();
                Vhd::open_with_parent(storage, Box::new(parent), options)
            }
            None => Vhd::open(storage, options),
        }
        .unwrap()
    }
}

fn dynamic_scenario(size: u64, block: u32) -> Scenario {
    let vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(size).block_size(block),
    )
    .unwrap();
    Scenario {
        initial: vec![0; size as usize],
        base: vhd.into_storage(),
        parent: None,
    }
}

fn differencing_scenario(size: u64, parent_block: u32, block: u32) -> Scenario {
    let mut parent = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(size).block_size(parent_block),
    )
    .unwrap();
    let mut rng = Rng::new(7);
    for _ in 0..6 {
        let offset = rng.below(size - 300_000);
        parent
            .write_at(
                offset,
                &pattern(rng.next_u64(), 1 + rng.below(300_000) as usize),
            )
            .unwrap();
    }
    let initial = read_all(&parent, MIB as usize);
    let parent_bytes = parent.into_storage();
    let parent = Vhd::open(parent_bytes.clone(), OpenOptions::new()).unwrap();
    let id = parent.identity().unwrap();
    let link = ParentLink {
        unique_id: id.unique_id,
        timestamp: id.timestamp,
        name: "p.vhd".into(),
        relative_path: Some(".\\p.vhd".into()),
        absolute_path: None,
    };
    let child = create_differencing(
        MemStorage::new(),
        Box::new(parent),
        &link,
        &CreateOptions::new(0).block_size(block),
    )
    .unwrap();
    let (base, _) = child.into_parts();
    Scenario {
        initial,
        base,
        parent: Some(parent_bytes),
    }
}

/// A deterministic mix of writes: new blocks, rewrites of allocated ones, partial sectors,
/// block-crossing runs and zeros (over parent data, in a child), with a flush every few writes.
fn steps(size: u64, block: u64, seed: u64) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for i in 0..24u64 {
        let (offset, len) = match i % 6 {
            // Somewhere, partial sectors at both ends.
            0 => (rng.below(size - 5000), 1 + rng.below(4999) as usize),
            // Whole sectors.
            1 => (
                rng.below(size / 512 - 16) * 512,
                512 * (1 + rng.below(16) as usize),
            ),
            // Across a block boundary.
            2 => {
                let edge = block * (1 + rng.below((size - 1) / block));
                (edge - 1 - rng.below(700), 2 + rng.below(1400) as usize)
            }
            // Inside one sector.
            3 => (rng.below(size - 512), 1 + rng.below(100) as usize),
            // A larger run.
            4 => (rng.below(size - 200_000), 1 + rng.below(200_000) as usize),
            // Rewrite the start of the disk (an allocated block after the first round).
            _ => (rng.below(4096), 1 + rng.below(3000) as usize),
        };
        let data = if rng.below(4) == 0 {
            vec![0; len]
        } else {
            pattern(rng.next_u64(), len)
        };
        out.push(Step::Write(offset, data));
        if rng.below(3) == 0 {
            out.push(Step::Flush);
        }
    }
    out.push(Step::Flush);
    out
}

/// Runs `steps` on a recording storage; returns it and what each write did.
fn record(scenario: &Scenario, steps: &[Step]) -> (CrashStorage, Vec<Done>) {
    let mut vhd = scenario.open_crash(CrashStorage::new(scenario.base.clone()));
    let mut done: Vec<Done> = Vec::new();
    for step in steps {
        match step {
            Step::Write(offset, data) => {
                let first_op = vhd.storage().ops().len();
                vhd.write_at(*offset, data).unwrap();
                let end_op = vhd.storage().ops().len();
                done.push(Done {
                    offset: *offset,
                    data: data.clone(),
                    first_op,
                    end_op,
                    flushed_by: None,
                });
            }
            Step::Flush => {
                vhd.flush().unwrap();
                let flush_op = vhd.storage().ops().len() - 1;
                assert_eq!(vhd.storage().ops()[flush_op], Op::Flush);
                for d in done.iter_mut().filter(|d| d.flushed_by.is_none()) {
                    d.flushed_by = Some(flush_op);
                }
            }
        }
    }
    (vhd.into_storage(), done)
}

/// The bytes where `got` and `want` differ: `(offset, got, want)`.
fn mismatches<'a>(got: &'a [u8], want: &'a [u8]) -> impl Iterator<Item = (usize, u8, u8)> + 'a {
    assert_eq!(got.len(), want.len());
    got.chunks(4096)
        .zip(want.chunks(4096))
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .flat_map(|(c, (g, w))| {
            g.iter()
                .zip(w.iter())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(move |(i, (&a, &b))| (c * 4096 + i, a, b))
        })
}

fn apply(model: &mut [u8], d: &Done) {
    model[d.offset as usize..d.offset as usize + d.data.len()].copy_from_slice(&d.data);
}

/// Cuts after every prefix of the log and checks the strong (in-order device) guarantee.
fn check_every_prefix(scenario: &Scenario, steps: &[Step]) {
    let (log, done) = record(scenario, steps);
    let n_ops = log.ops().len();
    assert!(
        n_ops > done.len(),
        "the scenario issued too few storage operations"
    );
    for cut in 0..=n_ops {
        let vhd = scenario.open(
            log.replay(cut),
            false,
            &format!("cut after {cut} of {n_ops} ops"),
        );
        let got = read_all(&vhd, MIB as usize);
        let mut model = scenario.initial.clone();
        let mut in_flight = None;
        for d in &done {
            if d.end_op <= cut {
                apply(&mut model, d);
            } else if d.first_op < cut {
                in_flight = Some(d);
            }
        }
        for (i, g, m) in mismatches(&got, &model) {
            let new = in_flight.and_then(|d| {
                let at = (i as u64).checked_sub(d.offset)?;
                d.data.get(at as usize).copied()
            });
            assert_eq!(
                Some(g),
                new,
                "cut after {cut} of {n_ops} ops: byte {i} reads {g:#04x}, expected {m:#04x} \
                 (or the in-flight write's byte {new:?}); warnings {:?}",
                vhd.warnings()
            );
        }
    }
    // The image as left by the full run opens cleanly and holds everything.
    let vhd = scenario.open(log.current().clone(), true, "uncut");
    assert!(
        vhd.warnings().is_empty(),
        "uncut image has warnings: {:?}",
        vhd.warnings()
    );
    let mut model = scenario.initial.clone();
    done.iter().for_each(|d| apply(&mut model, d));
    common::assert_same("uncut image", &read_all(&vhd, MIB as usize), &model);
}

/// Cuts after every prefix, dropping a pseudo-random subset of the operations issued since the
/// last flush, and checks the volatile-write-cache guarantee.
fn check_lossy_cache(scenario: &Scenario, steps: &[Step], seed: u64) {
    let (log, done) = record(scenario, steps);
    let n_ops = log.ops().len();
    let mut rng = Rng::new(seed);
    for cut in 0..=n_ops {
        for _ in 0..3 {
            let mask = rng.next_u64();
            let storage = log.replay_filtered(cut, |i| mask >> (i % 64) & 1 == 1);
            let vhd = scenario.open(
                storage,
                false,
                &format!("cut after {cut} of {n_ops} ops (mask {mask:#x})"),
            );
            let got = read_all(&vhd, MIB as usize);
            let durable = |d: &&Done| d.flushed_by.is_some_and(|f| f < cut);
            let mut model = scenario.initial.clone();
            for d in done.iter().take_while(durable) {
                apply(&mut model, d);
            }
            let pending: Vec<&Done> = done
                .iter()
                .skip_while(durable)
                .filter(|d| d.first_op < cut)
                .collect();
            for (i, g, m) in mismatches(&got, &model) {
                let written = pending.iter().any(|d| {
                    let at = (i as u64).wrapping_sub(d.offset);
                    d.data.get(at as usize) == Some(&g)
                });
                assert!(
                    written,
                    "cut after {cut} of {n_ops} ops (mask {mask:#x}): byte {i} reads {g:#04x}, \
                     expected {m:#04x} or the byte of an unflushed write"
                );
            }
        }
    }
}

#[test]
fn dynamic_survives_a_cut_anywhere() {
    let size = 3 * MIB + 512;
    check_every_prefix(&dynamic_scenario(size, 64 << 10), &steps(size, 64 << 10, 1));
    check_every_prefix(&dynamic_scenario(size, 2 << 20), &steps(size, 2 << 20, 2));
}

#[test]
fn dynamic_with_512_byte_blocks_survives_a_cut_anywhere() {
    let size = 256 << 10;
    check_every_prefix(&dynamic_scenario(size, 512), &steps(size, 512, 3));
}

#[test]
fn differencing_survives_a_cut_anywhere() {
    let size = 3 * MIB + 512;
    check_every_prefix(
        &differencing_scenario(size, 2 << 20, 64 << 10),
        &steps(size, 64 << 10, 4),
    );
    check_every_prefix(
        &differencing_scenario(size, 64 << 10, 2 << 20),
        &steps(size, 2 << 20, 5),
    );
}

#[test]
fn dynamic_keeps_flushed_writes_when_the_cache_loses_the_rest() {
    let size = 3 * MIB + 512;
    check_lossy_cache(
        &dynamic_scenario(size, 64 << 10),
        &steps(size, 64 << 10, 6),
        60,
    );
}

#[test]
fn differencing_keeps_flushed_writes_when_the_cache_loses_the_rest() {
    let size = 3 * MIB + 512;
    check_lossy_cache(
        &differencing_scenario(size, 2 << 20, 64 << 10),
        &steps(size, 64 << 10, 7),
        70,
    );
}

/// A dynamic disk of 16 blocks of 64 KiB with data in most and zeros in some, every block one
/// sector further into the file than compaction will put it: each move before the first
/// dropped block lands on part of the block's own old place. Returns the image and its
/// contents.
fn image_to_compact() -> (MemStorage, Vec<u8>) {
    let size = MIB;
    let block = 64u64 << 10;
    let mut vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(size).block_size(block as u32),
    )
    .unwrap();
    let mut model = vec![0u8; size as usize];
    for b in 0..size / block {
        let at = b * block + b * 1000;
        let data = pattern(b, 9000);
        vhd.write_at(at, &data).unwrap();
        model[at as usize..at as usize + data.len()].copy_from_slice(&data);
    }
    for b in [5u64, 6, 11] {
        vhd.write_at(b * block, &vec![0; block as usize]).unwrap();
        model[(b * block) as usize..((b + 1) * block) as usize].fill(0);
    }
    let bytes = vhd.into_storage().into_vec();
    let bat_at = u64::from_be_bytes(bytes[512 + 16..512 + 24].try_into().unwrap()) as usize;
    assert_eq!(bat_at, 1536);
    // Blocks start at 2048 (after the 1-sector BAT): shift them all one sector up.
    let mut shifted = bytes[..2048].to_vec();
    shifted.extend_from_slice(&[0; 512]);
    shifted.extend_from_slice(&bytes[2048..]);
    for entry in shifted[bat_at..bat_at + 4 * 16].chunks_exact_mut(4) {
        let sector = u32::from_be_bytes(entry.try_into().unwrap());
        if sector != u32::MAX {
            entry.copy_from_slice(&(sector + 1).to_be_bytes());
        }
    }
    (MemStorage::from_vec(shifted), model)
}

/// Compaction moves blocks through a spare copy when the new place overlaps the old one, so
/// a cut at any point (or a cache that loses unflushed writes) leaves a disk that opens and
/// reads exactly as before: compaction never changes what the disk holds.
#[test]
fn compact_survives_a_cut_anywhere() {
    let (base, model) = image_to_compact();
    let mut vhd = Vhd::open(CrashStorage::new(base), OpenOptions::new().writable(true)).unwrap();
    let report =
        vhd_format::ops::compact(&mut vhd, None, &mut vhd_format::ops::NoProgress).unwrap();
    assert_eq!((report.dropped_zero, report.moved), (3, 13));
    let log = vhd.into_storage();
    let n_ops = log.ops().len();
    let mut rng = Rng::new(7);
    for cut in 0..=n_ops {
        let mut images = vec![(log.replay(cut), 0)];
        for _ in 0..2 {
            let mask = rng.next_u64();
            images.push((
                log.replay_filtered(cut, |i| mask >> (i % 64) & 1 == 1),
                mask,
            ));
        }
        for (storage, mask) in images {
            let what = format!("compact cut after {cut} of {n_ops} ops (mask {mask:#x})");
            let vhd = Vhd::open(storage, OpenOptions::new())
                .unwrap_or_else(|e| panic!("{what}: does not open: {e:?}"));
            common::assert_same(&what, &read_all(&vhd, MIB as usize), &model);
        }
    }
}

/// Expanding a dynamic disk whose BAT must move to the end of the file (it outgrows the space
/// before the first block): after a cut at any point the disk opens without a warning (a
/// valid tail footer is kept throughout), with its old or its new size, and reads as before.
#[test]
fn expand_survives_a_cut_anywhere() {
    let block = 64u64 << 10;
    let mut vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(MIB).block_size(block as u32),
    )
    .unwrap();
    let data = pattern(9, MIB as usize);
    vhd.write_at(0, &data).unwrap();
    let base = vhd.into_storage();
    let mut vhd = Vhd::open(CrashStorage::new(base), OpenOptions::new().writable(true)).unwrap();
    // 256 entries need two sectors; the first block starts one sector after the BAT.
    vhd_format::ops::expand(&mut vhd, 16 * MIB).unwrap();
    let log = vhd.into_storage();
    let header = &log.current().as_slice()[512..1536];
    let table_offset = u64::from_be_bytes(header[16..24].try_into().unwrap());
    assert!(
        table_offset > 16 * (block + 512),
        "the BAT moved to the end"
    );
    let n_ops = log.ops().len();
    let final_len = log.current().len().unwrap();
    let mut sizes = Vec::new();
    for cut in 0..=n_ops {
        let what = format!("expand cut after {cut} of {n_ops} ops");
        let storage = log.replay(cut);
        assert!(
            storage.len().unwrap() <= final_len,
            "{what}: the file overshot"
        );
        let vhd = Vhd::open(storage, OpenOptions::new())
            .unwrap_or_else(|e| panic!("{what}: does not open: {e:?}"));
        assert!(vhd.warnings().is_empty(), "{what}: {:?}", vhd.warnings());
        let size = vhd.size();
        assert!(size == MIB || size == 16 * MIB, "{what}: size {size}");
        let mut model = data.clone();
        model.resize(size as usize, 0);
        common::assert_same(&what, &read_all(&vhd, MIB as usize), &model);
        sizes.push(size);
    }
    assert_eq!((sizes[0], sizes[n_ops]), (MIB, 16 * MIB));
}
