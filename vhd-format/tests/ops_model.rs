//! Every operation keeps the virtual contents: after compact, convert, expand, merge and
//! snapshot the disk reads exactly like a plain in-memory model.

mod common;

use proptest::prelude::*;
use vhd_format::defs::{DiskType, Uuid, VhdTime};
use vhd_format::ops::{self, NoProgress, Target};
use vhd_format::*;

const SIZE: u64 = 6 << 20;

#[derive(Debug, Clone)]
struct Write {
    offset: u64,
    len: usize,
    byte: u8,
}

fn writes() -> impl Strategy<Value = Vec<Write>> {
    prop::collection::vec(
        (0..SIZE, 1usize..200_000, any::<u8>()).prop_map(|(offset, len, byte)| {
            let len = len.min((SIZE - offset) as usize);
            // A third of the writes are zeros, to exercise zero handling.
            Write {
                offset,
                len,
                byte: if byte % 3 == 0 { 0 } else { byte },
            }
        }),
        1..12,
    )
}

fn opts(seed: u8) -> CreateOptions {
    CreateOptions::new(SIZE)
        .unique_id(Uuid([seed; 16]))
        .timestamp(VhdTime(1000 + u32::from(seed)))
}

fn apply(disk: &mut dyn Disk, model: &mut [u8], ws: &[Write]) {
    for w in ws {
        let data = vec![w.byte; w.len];
        disk.write_at(w.offset, &data).unwrap();
        model[w.offset as usize..w.offset as usize + w.len].copy_from_slice(&data);
    }
}

fn contents(disk: &dyn Disk) -> Vec<u8> {
    let mut out = vec![0u8; disk.size() as usize];
    disk.read_at(0, &mut out).unwrap();
    out
}

fn reopen(s: MemStorage) -> Vhd<MemStorage> {
    Vhd::open(s, OpenOptions::new().writable(true)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn compact_keeps_contents(ws in writes(), block_kib in prop::sample::select(vec![64u32, 512, 2048])) {
        let mut model = vec![0u8; SIZE as usize];
        let mut vhd = create_dynamic(MemStorage::new(), &opts(1).block_size(block_kib << 10)).unwrap();
        apply(&mut vhd, &mut model, &ws);
        // Zero out a whole block so there is something to drop.
        let bs = u64::from(block_kib) << 10;
        apply(&mut vhd, &mut model, &[Write { offset: bs, len: bs as usize, byte: 0 }]);
        let before = vhd.storage().len().unwrap();
        let report = ops::compact(&mut vhd, None, &mut NoProgress).unwrap();
        prop_assert_eq!(report.old_len, before);
        prop_assert!(report.new_len <= before);
        prop_assert_eq!(contents(&vhd), model.clone());
        let vhd = reopen(vhd.into_storage());
        prop_assert!(ops::check(vhd.storage()).unwrap().is_clean());
        prop_assert_eq!(contents(&vhd), model);
    }

    #[test]
    fn convert_round_trips(ws in writes()) {
        let mut model = vec![0u8; SIZE as usize];
        let mut src = create_dynamic(MemStorage::new(), &opts(2)).unwrap();
        apply(&mut src, &mut model, &ws);
        let fixed = ops::convert_to_vhd(&src, MemStorage::new(), Target::Fixed, &opts(3), &mut NoProgress).unwrap();
        prop_assert_eq!(fixed.disk_type(), DiskType::FIXED);
        prop_assert_eq!(contents(&fixed), model.clone());
        let dynamic = ops::convert_to_vhd(&fixed, MemStorage::new(), Target::Dynamic { block_size: 1 << 20 }, &opts(4), &mut NoProgress).unwrap();
        prop_assert_eq!(contents(&dynamic), model.clone());
        prop_assert!(ops::check(dynamic.storage()).unwrap().is_clean());
        let mut raw = MemStorage::new();
        ops::convert_to_raw(&dynamic, &mut raw, &mut NoProgress).unwrap();
        prop_assert_eq!(raw.into_vec(), model);
    }

    #[test]
    fn expand_keeps_contents_and_grows_with_zeros(ws in writes(), extra_blocks in 1u64..40, fixed in any::<bool>()) {
        let mut model = vec![0u8; SIZE as usize];
        let mut vhd = if fixed {
            create_fixed(MemStorage::new(), &opts(5)).unwrap()
        } else {
            create_dynamic(MemStorage::new(), &opts(5).block_size(64 << 10)).unwrap()
        };
        apply(&mut vhd, &mut model, &ws);
        let new_size = SIZE + extra_blocks * (64 << 10) * 3;
        ops::expand(&mut vhd, new_size).unwrap();
        model.resize(new_size as usize, 0);
        prop_assert_eq!(contents(&vhd), model.clone());
        // Writes into the new space work, and survive a reopen.
        apply(&mut vhd, &mut model, &[Write { offset: new_size - 70_000, len: 70_000, byte: 0x5a }]);
        let vhd = reopen(vhd.into_storage());
        prop_assert_eq!(vhd.size(), new_size);
        prop_assert!(ops::check(vhd.storage()).unwrap().is_clean(), "{:?}", ops::check(vhd.storage()).unwrap());
        prop_assert_eq!(contents(&vhd), model);
    }

    #[test]
    fn merge_and_snapshot_keep_contents(base in writes(), top in writes()) {
        let mut model = vec![0u8; SIZE as usize];
        let mut parent = create_dynamic(MemStorage::new(), &opts(6)).unwrap();
        apply(&mut parent, &mut model, &base);
        let link = common::link_to(&parent);
        let mut child = create_differencing(MemStorage::new(), Box::new(parent), &link, &opts(7)).unwrap();
        apply(&mut child, &mut model, &top);
        prop_assert_eq!(contents(&child), model.clone());
        // Flatten the chain into a new disk.
        let flat = ops::convert_to_vhd(&child, MemStorage::new(), Target::Dynamic { block_size: 2 << 20 }, &opts(8), &mut NoProgress).unwrap();
        prop_assert_eq!(contents(&flat), model.clone());
        // Merge the child into its (writable) parent.
        ops::merge_into_parent(&mut child, &mut NoProgress).unwrap();
        let (_, parent) = child.into_parts();
        prop_assert_eq!(contents(parent.as_deref().unwrap()), model);
    }
}

#[test]
fn compact_and_expand_refuse_saved_state_and_fixed() {
    let mut vhd = create_dynamic(MemStorage::new(), &opts(9)).unwrap();
    let mut bytes = vhd.storage().clone().into_vec();
    let len = bytes.len();
    for at in [0, len - 512] {
        bytes[at + 84] = 1;
        let mut f = <vhd_format::defs::Footer as zerocopy::FromBytes>::read_from_bytes(
            &bytes[at..at + 512],
        )
        .unwrap();
        f.update_checksum();
        bytes[at..at + 512].copy_from_slice(zerocopy::IntoBytes::as_bytes(&f));
    }
    let mut saved = reopen(MemStorage::from_vec(bytes));
    assert!(saved.saved_state());
    assert!(saved.inspect().unwrap().saved_state);
    assert!(matches!(
        ops::compact(&mut saved, None, &mut NoProgress),
        Err(ops::CompactError::SavedState)
    ));
    assert!(matches!(
        ops::expand(&mut saved, SIZE * 2),
        Err(ops::ExpandError::SavedState)
    ));
    let mut fixed = create_fixed(MemStorage::new(), &opts(10)).unwrap();
    assert!(matches!(
        ops::compact(&mut fixed, None, &mut NoProgress),
        Err(ops::CompactError::NotSparse)
    ));
    assert!(matches!(
        ops::expand(&mut vhd, SIZE - 512),
        Err(ops::ExpandError::Shrink { .. })
    ));
}

#[test]
fn compact_drops_blocks_the_caller_says_are_unused() {
    let mut vhd = create_dynamic(MemStorage::new(), &opts(11).block_size(1 << 20)).unwrap();
    vhd.write_at(0, &vec![1u8; 3 << 20]).unwrap();
    let unused = |offset: u64, _len: u64| offset == 1 << 20;
    let report = ops::compact(&mut vhd, Some(&unused), &mut NoProgress).unwrap();
    assert_eq!(report.dropped_unused, 1);
    assert_eq!(report.moved, 1);
    let mut b = vec![0u8; 3 << 20];
    vhd.read_at(0, &mut b).unwrap();
    assert!(b[..1 << 20].iter().all(|&x| x == 1));
    assert!(b[1 << 20..2 << 20].iter().all(|&x| x == 0));
    assert!(b[2 << 20..].iter().all(|&x| x == 1));
}

#[test]
fn repair_restores_a_cut_tail_and_a_damaged_head() {
    let mut vhd = create_dynamic(MemStorage::new(), &opts(12).block_size(64 << 10)).unwrap();
    vhd.write_at(100_000, &[7u8; 5000]).unwrap();
    let good = vhd.into_storage().into_vec();
    // Cut the tail footer off.
    let mut cut = MemStorage::from_vec(good[..good.len() - 512].to_vec());
    let report = ops::check(&cut).unwrap();
    assert!(!report.is_clean());
    let actions = ops::repair(&mut cut).unwrap();
    assert!(
        actions.contains(&ops::RepairAction::RewroteTailFooter),
        "{actions:?}"
    );
    assert_eq!(cut.as_slice(), &good[..]);
    // Damage the head copy.
    let mut head = good.clone();
    head[3] ^= 0xff;
    let mut head = MemStorage::from_vec(head);
    assert!(ops::check(&head)
        .unwrap()
        .problems
        .iter()
        .any(|p| matches!(p, ops::Problem::HeadFooter { .. })));
    let actions = ops::repair(&mut head).unwrap();
    assert_eq!(actions, vec![ops::RepairAction::RewroteHeadFooter]);
    assert_eq!(head.as_slice(), &good[..]);
}

#[test]
fn inspect_reports_the_map() {
    let mut vhd = create_dynamic(MemStorage::new(), &opts(13)).unwrap();
    vhd.write_at(1 << 20, &[0xab; 4096]).unwrap();
    vhd.write_at(5 << 20, &[0xcd; 4096]).unwrap();
    let i = vhd.inspect().unwrap();
    assert_eq!(i.allocated_blocks, 2);
    assert_eq!(i.allocated_bytes, 4 << 20);
    assert_eq!(i.map.len(), 3);
    assert_eq!(i.map[2].state, ops::ExtentState::Data);
    assert_eq!(i.map[0].state, ops::ExtentState::Data);
    assert_eq!(i.map[0].length, 2 << 20);
    assert_eq!(i.map[1].state, ops::ExtentState::Zero);
    assert_eq!(i.fragmentation_percent, 0);
}

/// A BAT of 256 entries takes two sectors (1536..2560): the first block moved down must land
/// after both, not over the second.
#[test]
fn compact_keeps_a_bat_of_several_sectors() {
    let options = CreateOptions::new(16 << 20)
        .unique_id(Uuid([13; 16]))
        .timestamp(VhdTime(1000))
        .block_size(64 << 10);
    let mut vhd = create_dynamic(MemStorage::new(), &options).unwrap();
    vhd.write_at(0, &[9; 4096]).unwrap();
    vhd.write_at(64 << 10, &[1; 4096]).unwrap();
    vhd.write_at(200 << 10, &[2; 4096]).unwrap();
    assert_eq!(vhd.bat().unwrap()[..4], [5, 134, u32::MAX, 263]);
    // Block 0 now holds only zeros: compaction drops it.
    vhd.write_at(0, &[0; 4096]).unwrap();
    let report = ops::compact(&mut vhd, None, &mut NoProgress).unwrap();
    assert_eq!((report.dropped_zero, report.moved), (1, 2));
    assert_eq!(vhd.bat().unwrap()[..4], [u32::MAX, 5, u32::MAX, 134]);
    assert!(ops::check(vhd.storage()).unwrap().is_clean());
    let reopened = reopen(vhd.into_storage());
    let mut b = vec![0u8; 4096];
    reopened.read_at(64 << 10, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 1));
    reopened.read_at(200 << 10, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 2));
}

/// Blocks of 2 MiB (4,096 sectors, the default) whose only data is their last sector: the
/// whole bitmap and all the data are looked at before a block is dropped.
#[test]
fn compact_keeps_blocks_whose_only_data_is_their_last_sector() {
    let last = (2 << 20) - 512;
    let mut dynamic = create_dynamic(MemStorage::new(), &opts(14)).unwrap();
    dynamic.write_at(last, &[3; 512]).unwrap();
    let parent = create_dynamic(MemStorage::new(), &opts(15)).unwrap();
    let link = common::link_to(&parent);
    let mut child =
        create_differencing(MemStorage::new(), Box::new(parent), &link, &opts(16)).unwrap();
    child.write_at(last, &[3; 512]).unwrap();
    for disk in [&mut dynamic, &mut child] {
        let report = ops::compact(disk, None, &mut NoProgress).unwrap();
        assert_eq!((report.dropped_zero, report.dropped_unused), (0, 0));
        let mut b = [0u8; 512];
        disk.read_at(last, &mut b).unwrap();
        assert_eq!(b, [3; 512]);
    }
}

/// Converting to a dynamic disk whose BAT spans several sectors (164 entries) and whose last
/// block is partial (the size is not a multiple of the block size).
#[test]
fn convert_to_dynamic_with_a_long_bat_and_a_partial_last_block() {
    let size = (41 << 20) - (156 << 10);
    let options = CreateOptions::new(size)
        .unique_id(Uuid([17; 16]))
        .timestamp(VhdTime(1000));
    let mut src = create_dynamic(MemStorage::new(), &options).unwrap();
    let mut model = vec![0u8; size as usize];
    for (at, byte) in [(0, 1u8), (20 << 20, 2), (size - 5000, 3)] {
        let data = vec![byte; 5000];
        src.write_at(at, &data).unwrap();
        model[at as usize..at as usize + 5000].copy_from_slice(&data);
    }
    let target = Target::Dynamic {
        block_size: 256 << 10,
    };
    let out =
        ops::convert_to_vhd(&src, MemStorage::new(), target, &opts(18), &mut NoProgress).unwrap();
    assert_eq!(out.bat().unwrap().len(), 164);
    assert!(ops::check(out.storage()).unwrap().is_clean());
    let reopened = reopen(out.into_storage());
    assert_eq!(reopened.size(), size);
    assert_eq!(contents(&reopened), model);
}

/// Expand's size rules at their edges: a new size must be whole sectors and at most the
/// format's largest (2040 GiB, accepted); the current size is a valid no-op.
#[test]
fn expand_limits() {
    let mut vhd = create_dynamic(MemStorage::new(), &opts(19)).unwrap();
    let max = vhd_format::defs::MAX_DISK_SIZE;
    for bad in [SIZE + 100, max + 512] {
        assert!(matches!(
            ops::expand(&mut vhd, bad),
            Err(ops::ExpandError::InvalidSize(size)) if size == bad
        ));
    }
    assert!(matches!(
        ops::expand(&mut vhd, SIZE - 512),
        Err(ops::ExpandError::Shrink { current: SIZE, new }) if new == SIZE - 512
    ));
    ops::expand(&mut vhd, SIZE).unwrap();
    assert_eq!(vhd.size(), SIZE);
    vhd.write_at(SIZE - 512, &[4; 512]).unwrap();
    ops::expand(&mut vhd, max).unwrap();
    assert_eq!(vhd.size(), max);
    let reopened = reopen(vhd.into_storage());
    assert_eq!(reopened.size(), max);
    let mut b = [0u8; 512];
    reopened.read_at(SIZE - 512, &mut b).unwrap();
    assert_eq!(b, [4; 512]);
    reopened.read_at(max - 512, &mut b).unwrap();
    assert_eq!(b, [0; 512]);
}

/// The allocation map of a differencing disk, exact to the sector: runs inside a block, runs
/// merged across blocks only when their state (and, for data, their file place) continues,
/// and a partial last block. Then fragmentation, from blocks allocated out of order.
#[test]
fn inspect_maps_a_differencing_disk_to_the_sector() {
    use ops::ExtentState::*;
    const K: u64 = 1 << 10;
    let size = (1 << 20) - 3 * K;
    let base = CreateOptions::new(size)
        .unique_id(Uuid([20; 16]))
        .timestamp(VhdTime(1000));
    let parent = create_dynamic(MemStorage::new(), &base).unwrap();
    let link = common::link_to(&parent);
    let child_options = CreateOptions::new(0)
        .unique_id(Uuid([21; 16]))
        .timestamp(VhdTime(1000))
        .block_size(64 << 10);
    let mut child =
        create_differencing(MemStorage::new(), Box::new(parent), &link, &child_options).unwrap();
    child.write_at(K, &[1; 1024]).unwrap();
    child.write_at(5 * K, &[2; 512]).unwrap();
    child.write_at(64 * K, &[3; 128 << 10]).unwrap();
    child.write_at(size - 512, &[4; 512]).unwrap();
    let bat = child.bat().unwrap().to_vec();
    let data = |block: usize, offset: u64| Some(u64::from(bat[block]) * 512 + 512 + offset);
    let e = |start: u64, end: u64, state, file_offset| (start, end - start, state, file_offset);
    let map = |i: &ops::Inspection| {
        i.map
            .iter()
            .map(|x| (x.start, x.length, x.state, x.file_offset))
            .collect::<Vec<_>>()
    };
    let i = child.inspect().unwrap();
    assert_eq!(
        map(&i),
        [
            e(0, K, Parent, None),
            e(K, 2 * K, Data, data(0, K)),
            e(2 * K, 5 * K, Parent, None),
            e(5 * K, 5 * K + 512, Data, data(0, 5 * K)),
            e(5 * K + 512, 64 * K, Parent, None),
            // Blocks 1 and 2: adjacent on the disk, a bitmap apart in the file.
            e(64 * K, 128 * K, Data, data(1, 0)),
            e(128 * K, 192 * K, Data, data(2, 0)),
            e(192 * K, size - 512, Parent, None),
            e(size - 512, size, Data, data(15, 61 * K - 512)),
        ]
    );
    assert_eq!(i.allocated_blocks, 4);
    assert_eq!(i.allocated_bytes, 1024 + 512 + (128 << 10) + 512);
    assert_eq!(i.fragmentation_percent, 0);
    assert_eq!(
        i.parent,
        Some((link.unique_id, link.timestamp, link.name.clone()))
    );
    assert!(!i.saved_state);

    // Block 1 allocated before block 0: reading the BAT in order, block 1 does not follow
    // block 0 in the file, so one of the two counts as fragmented.
    let mut d = create_dynamic(MemStorage::new(), &base.block_size(64 << 10)).unwrap();
    d.write_at(64 * K, &[5; 512]).unwrap();
    d.write_at(0, &[6; 512]).unwrap();
    let i = d.inspect().unwrap();
    assert_eq!((i.allocated_blocks, i.fragmentation_percent), (2, 50));
    let first = Some(u64::from(d.bat().unwrap()[0]) * 512 + 512);
    assert_eq!(map(&i)[0], e(0, 64 * K, Data, first));
}
