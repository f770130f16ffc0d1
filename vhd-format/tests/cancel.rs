//! Cancelling compact, convert and merge through the progress callback, at every point they
//! report: each stops with its `Cancelled` error and leaves valid images that `check` finds
//! clean and that read as they should (and, for files, as qemu reads them).

mod common;

use std::ops::ControlFlow;

use vhd_format::defs::{Uuid, VhdTime};
use vhd_format::ops::{
    self, CompactError, ConvertError, MergeError, NoProgress, ProgressEvent, Target,
};
use vhd_format::{
    create_differencing, create_dynamic, CreateOptions, Disk, MemStorage, OpenOptions, Storage, Vhd,
};

const SIZE: u64 = 7 << 20;
const BLOCK: u64 = 256 << 10;

fn opts(seed: u8) -> CreateOptions {
    CreateOptions::new(SIZE)
        .block_size(BLOCK as u32)
        .unique_id(Uuid([seed; 16]))
        .timestamp(VhdTime(2000 + u32::from(seed)))
}

/// A progress callback that stops at the `at`-th report (1-based) and keeps the reports.
struct StopAt {
    at: u64,
    seen: u64,
    events: Vec<ProgressEvent>,
}

impl StopAt {
    fn new(at: u64) -> Self {
        Self {
            at,
            seen: 0,
            events: Vec::new(),
        }
    }

    /// Checks that the reports were, phase after phase, `done` = 1 ..= `total` of each
    /// `(phase, total)`.
    #[track_caller]
    fn assert_phases(&self, phases: &[(&str, u64)]) {
        let expected: Vec<(&str, u64, u64)> = phases
            .iter()
            .flat_map(|&(phase, total)| (1..=total).map(move |done| (phase, done, total)))
            .collect();
        let seen: Vec<(&str, u64, u64)> = self
            .events
            .iter()
            .map(|e| (e.phase, e.done, e.total))
            .collect();
        assert_eq!(seen, expected);
    }

    /// Counts the reports of a run that is never stopped.
    fn never() -> Self {
        Self::new(u64::MAX)
    }
}

impl ops::Progress for StopAt {
    fn report(&mut self, event: ProgressEvent) -> ControlFlow<()> {
        self.events.push(event);
        self.seen += 1;
        if self.seen >= self.at {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// A dynamic disk with data in most blocks and, between them, blocks overwritten with zeros
/// (compact drops those and moves the blocks after them down). Returns it and its contents.
fn holey_dynamic(storage: MemStorage) -> (Vhd<MemStorage>, Vec<u8>) {
    let mut disk = create_dynamic(storage, &opts(1)).unwrap();
    let mut model = vec![0u8; SIZE as usize];
    for block in 0..SIZE / BLOCK {
        let at = block * BLOCK + (block * 4096) % BLOCK;
        let data = common::pattern(block, 20_000);
        disk.write_at(at, &data).unwrap();
        model[at as usize..at as usize + data.len()].copy_from_slice(&data);
    }
    for block in [1u64, 2, 6, 13, 20, 25] {
        let at = block * BLOCK;
        disk.write_at(at, &vec![0u8; BLOCK as usize]).unwrap();
        model[at as usize..(at + BLOCK) as usize].fill(0);
    }
    (disk, model)
}

/// Opens `bytes` as a VHD (checking it first) and returns its contents.
fn valid_contents(what: &str, bytes: Vec<u8>) -> Vec<u8> {
    let storage = MemStorage::from_vec(bytes);
    let report = ops::check(&storage).unwrap();
    assert!(
        report.is_clean(),
        "{what}: check found {:?}",
        report.problems
    );
    let disk = Vhd::open(storage, OpenOptions::new()).unwrap();
    assert!(disk.warnings().is_empty(), "{what}: {:?}", disk.warnings());
    common::read_all(&disk, 1 << 20)
}

/// `image` (made by [`holey_dynamic`]: BAT at 1536, blocks from 2048) with every block one
/// sector further into the file: compact then moves each block onto part of its own old place,
/// which goes through a spare copy past the end of the file.
fn shifted_by_a_sector(image: &[u8]) -> Vec<u8> {
    let mut out = image[..2048].to_vec();
    out.extend_from_slice(&[0; 512]);
    out.extend_from_slice(&image[2048..]);
    for entry in out[1536..1536 + 4 * (SIZE / BLOCK) as usize].chunks_exact_mut(4) {
        let sector = u32::from_be_bytes(entry.try_into().unwrap());
        if sector != u32::MAX {
            entry.copy_from_slice(&(sector + 1).to_be_bytes());
        }
    }
    out
}

#[test]
fn compact_cancelled_at_every_step_leaves_a_valid_disk() {
    let (disk, model) = holey_dynamic(MemStorage::new());
    let image = disk.into_storage().into_vec();
    compact_cancelled_at_every_step(&image, &model, 22);
    // Every move overlaps its old place here (through a spare copy at the end).
    let shifted = shifted_by_a_sector(&image);
    common::assert_same(
        "shifted",
        &valid_contents("shifted", shifted.clone()),
        &model,
    );
    compact_cancelled_at_every_step(&shifted, &model, 22);
}

/// `moves`: the blocks left after the scan (each one is a "move" report).
fn compact_cancelled_at_every_step(image: &[u8], model: &[u8], moves: u64) {
    let mut full = Vhd::open(
        MemStorage::from_vec(image.to_vec()),
        OpenOptions::new().writable(true),
    )
    .unwrap();
    let mut count = StopAt::never();
    let done = ops::compact(&mut full, None, &mut count).unwrap();
    assert!(done.dropped_zero == 6 && done.moved > 0, "{done:?}");
    let compacted_len = full.storage().len().unwrap();
    // A "scan" report per block, then a "move" per remaining block.
    count.assert_phases(&[("scan", SIZE / BLOCK), ("move", moves)]);

    for at in 1..=count.seen {
        let what = format!("compact cancelled at report {at}");
        let mut disk = Vhd::open(
            MemStorage::from_vec(image.to_vec()),
            OpenOptions::new().writable(true),
        )
        .unwrap();
        let err = ops::compact(&mut disk, None, &mut StopAt::new(at)).unwrap_err();
        assert!(matches!(err, CompactError::Cancelled), "{what}: {err:?}");
        // The open disk stays usable and consistent with its file.
        common::assert_same(&what, &common::read_all(&disk, 1 << 20), model);
        let bytes = disk.into_storage().into_vec();
        assert!(bytes.len() <= image.len(), "{what}: the file grew");
        common::assert_same(&what, &valid_contents(&what, bytes.clone()), model);
        // Compacting again finishes the job.
        let mut again = Vhd::open(
            MemStorage::from_vec(bytes),
            OpenOptions::new().writable(true),
        )
        .unwrap();
        ops::compact(&mut again, None, &mut NoProgress).unwrap();
        assert_eq!(again.storage().len().unwrap(), compacted_len, "{what}");
        common::assert_same(&what, &common::read_all(&again, 1 << 20), model);
    }
}

#[test]
fn convert_cancelled_leaves_a_valid_partial_copy_and_the_source_untouched() {
    let (source, model) = holey_dynamic(MemStorage::new());
    let source_bytes = source.storage().as_slice().to_vec();
    let targets = [
        (Target::Fixed, 2u64 << 20, 4),
        (
            Target::Dynamic {
                block_size: BLOCK as u32,
            },
            BLOCK,
            SIZE / BLOCK,
        ),
    ];
    for (target, unit, reports) in targets {
        let mut all = StopAt::never();
        ops::convert_to_vhd(&source, &mut MemStorage::new(), target, &opts(2), &mut all).unwrap();
        all.assert_phases(&[("copy", reports)]);
        for at in 1..reports {
            let what = format!("convert to {target:?} cancelled at report {at}");
            let mut out = MemStorage::new();
            let err =
                ops::convert_to_vhd(&source, &mut out, target, &opts(2), &mut StopAt::new(at))
                    .unwrap_err();
            assert!(matches!(err, ConvertError::Cancelled), "{what}: {err:?}");
            let copied = (at * unit) as usize;
            let mut expected = model.clone();
            expected[copied..].fill(0);
            common::assert_same(&what, &valid_contents(&what, out.into_vec()), &expected);
        }
    }
    let mut all = StopAt::never();
    ops::convert_to_raw(&source, &mut MemStorage::new(), &mut all).unwrap();
    all.assert_phases(&[("copy", 4)]);
    for at in 1..4 {
        let what = format!("convert to raw cancelled at report {at}");
        let mut out = MemStorage::new();
        let err = ops::convert_to_raw(&source, &mut out, &mut StopAt::new(at)).unwrap_err();
        assert!(matches!(err, ConvertError::Cancelled), "{what}: {err:?}");
        let copied = (at << 21) as usize;
        let mut expected = model.clone();
        expected[copied..].fill(0);
        common::assert_same(&what, out.as_slice(), &expected);
    }
    assert_eq!(source.storage().as_slice(), &source_bytes[..]);
    common::assert_same("source", &common::read_all(&source, 1 << 20), &model);
}

#[test]
fn merge_cancelled_leaves_the_child_intact_and_can_be_run_again() {
    let mut base = create_dynamic(MemStorage::new(), &opts(3)).unwrap();
    base.write_at(0, &common::pattern(30, SIZE as usize))
        .unwrap();
    let base_model = common::read_all(&base, 1 << 20);
    let link = common::link_to(&base);
    let base_bytes = base.into_storage().into_vec();
    let mut child = create_differencing(
        MemStorage::new(),
        Box::new(Vhd::open(MemStorage::from_vec(base_bytes.clone()), OpenOptions::new()).unwrap()),
        &link,
        &opts(4),
    )
    .unwrap();
    for (i, at) in [5u64 << 10, 700 << 10, 3 << 20, (6 << 20) + 12345]
        .into_iter()
        .enumerate()
    {
        child
            .write_at(at, &common::pattern(40 + i as u64, 70_000))
            .unwrap();
    }
    let child_model = common::read_all(&child, 1 << 20);
    let child_bytes = child.into_storage().into_vec();

    let blocks = SIZE / BLOCK;
    let open_child = || {
        let parent = Vhd::open(
            MemStorage::from_vec(base_bytes.clone()),
            OpenOptions::new().writable(true),
        )
        .unwrap();
        Vhd::open_with_parent(
            MemStorage::from_vec(child_bytes.clone()),
            Box::new(parent),
            OpenOptions::new().writable(true),
        )
        .unwrap()
    };
    let mut all = StopAt::never();
    let merged = ops::merge_into_parent(&mut open_child(), &mut all).unwrap();
    all.assert_phases(&[("merge", blocks)]);
    // Each write of 70,000 bytes touched 137 whole sectors (the last one at 12,345 starts
    // 57 bytes into its first sector), and those sectors are what merge copies.
    assert_eq!(merged, 4 * 137 * 512);
    for at in 1..=blocks {
        let what = format!("merge cancelled at report {at}");
        let mut child = open_child();
        let err = ops::merge_into_parent(&mut child, &mut StopAt::new(at)).unwrap_err();
        assert!(matches!(err, MergeError::Cancelled), "{what}: {err:?}");
        // The child reads as before (what it holds hides what was merged below it).
        common::assert_same(&what, &common::read_all(&child, 1 << 20), &child_model);
        assert!(ops::check(child.storage()).unwrap().is_clean(), "{what}");
        let (storage, parent) = child.into_parts();
        assert_eq!(
            storage.as_slice(),
            &child_bytes[..],
            "{what}: child changed"
        );
        // The parent holds the merged blocks before the one that was cancelled.
        let parent = parent.unwrap().downcast::<Vhd<MemStorage>>().unwrap();
        let merged = ((at - 1) * BLOCK) as usize;
        let mut expected = base_model.clone();
        expected[..merged].copy_from_slice(&child_model[..merged]);
        let parent_bytes = parent.into_storage().into_vec();
        common::assert_same(
            &what,
            &valid_contents(&what, parent_bytes.clone()),
            &expected,
        );
        // Merging again finishes it.
        let parent = Vhd::open(
            MemStorage::from_vec(parent_bytes),
            OpenOptions::new().writable(true),
        )
        .unwrap();
        let mut child =
            Vhd::open_with_parent(storage, Box::new(parent), OpenOptions::new().writable(true))
                .unwrap();
        ops::merge_into_parent(&mut child, &mut NoProgress).unwrap();
        let parent = child.into_parts().1.unwrap();
        common::assert_same(&what, &common::read_all(&*parent, 1 << 20), &child_model);
    }
}

/// A compaction cancelled half-way through moving blocks, on a file: qemu reads the result
/// exactly as this crate does.
#[test]
fn compact_cancelled_on_a_file_reads_the_same_in_qemu() {
    if !common::peer("qemu-img") {
        return;
    }
    let dir = common::TempDir::new("cancel-qemu");
    let path = dir.join("d.vhd");
    let (disk, model) = holey_dynamic(MemStorage::new());
    std::fs::write(&path, disk.into_storage().as_slice()).unwrap();
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut disk = Vhd::open(file, OpenOptions::new().writable(true)).unwrap();
    let bat_before = disk.bat().unwrap().to_vec();
    // 28 scan reports, then stop in the middle of the moves.
    let err = ops::compact(&mut disk, None, &mut StopAt::new(28 + 11)).unwrap_err();
    assert!(matches!(err, CompactError::Cancelled), "{err:?}");
    drop(disk);
    let file = std::fs::File::open(&path).unwrap();
    assert!(ops::check(&file).unwrap().is_clean());
    let disk = Vhd::open(file, OpenOptions::new()).unwrap();
    // Zero blocks dropped; of the ten blocks visited before the stop, all but block 0 (already
    // in place) moved down; the rest are where they were.
    assert_eq!(disk.allocated_blocks(), 22);
    let moved = bat_before
        .iter()
        .zip(disk.bat().unwrap())
        .filter(|&(a, b)| *b != u32::MAX && a != b)
        .count();
    assert_eq!(moved, 9, "{bat_before:?} -> {:?}", disk.bat());
    common::assert_same(
        "cancelled compact",
        &common::read_all(&disk, 1 << 20),
        &model,
    );
    let raw = dir.join("d.raw");
    std::fs::write(&raw, &model).unwrap();
    common::qemu_compare("cancelled compact", &path, &raw);
}
