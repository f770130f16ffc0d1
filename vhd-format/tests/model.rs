//! Model-based tests: random sequences of writes, reads, flushes and reopens applied both to a
//! VHD and to a plain `Vec<u8>` must always agree.
//!
//! Covered: fixed disks; dynamic disks with 512 B, 4 KiB, 64 KiB and 2 MiB blocks; a
//! differencing disk over a dynamic parent that already holds data; a three-deep chain. Offsets
//! and lengths are drawn to hit unaligned starts, partial sectors, block edges and block-crossing
//! runs, and a quarter of the writes are all zeros (which must hide parent data in a child:
//! joncampbell123/dosbox-x#4545).

mod common;

use common::{assert_same, pattern, read_all, Rng};
use proptest::prelude::*;
use vhd_format::defs::DiskType;
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, CreateOptions, Disk, DiskError, MemStorage,
    OpenOptions, ParentLink, Vhd,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Where a request starts, before it is mapped onto a particular disk.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// Any byte.
    Any(u64),
    /// A sector boundary.
    Sector(u64),
    /// Within ±`delta` bytes of a block boundary.
    NearEdge(u64, i64),
}

/// How long a request is, before it is mapped onto a particular disk.
#[derive(Clone, Copy, Debug)]
enum Len {
    /// 1 to 1100 bytes: sub-sector and sector-crossing.
    Small(usize),
    /// Whole sectors.
    Sectors(usize),
    /// Up to two blocks and a bit.
    Blocks(u64),
    /// Up to the whole disk.
    Huge(u64),
}

#[derive(Clone, Debug)]
enum Act {
    Write {
        place: Place,
        len: Len,
        zero: bool,
        seed: u64,
    },
    Read {
        place: Place,
        len: Len,
    },
    /// A write that runs past the end of the disk: must fail and change nothing.
    WritePastEnd {
        len: usize,
    },
    Flush,
    /// Close the disk and open it again from its bytes.
    Reopen,
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        any::<u64>().prop_map(Place::Any),
        any::<u64>().prop_map(Place::Sector),
        (any::<u64>(), -1100i64..1100).prop_map(|(b, d)| Place::NearEdge(b, d)),
    ]
}

fn len() -> impl Strategy<Value = Len> {
    prop_oneof![
        4 => (1usize..=1100).prop_map(Len::Small),
        3 => (1usize..=24).prop_map(Len::Sectors),
        3 => any::<u64>().prop_map(Len::Blocks),
        1 => any::<u64>().prop_map(Len::Huge),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        8 => (place(), len(), prop::bool::weighted(0.25), any::<u64>())
            .prop_map(|(place, len, zero, seed)| Act::Write { place, len, zero, seed }),
        4 => (place(), len()).prop_map(|(place, len)| Act::Read { place, len }),
        1 => (1usize..4096).prop_map(|len| Act::WritePastEnd { len }),
        1 => Just(Act::Flush),
        1 => Just(Act::Reopen),
    ]
}

fn acts() -> impl Strategy<Value = Vec<Act>> {
    prop::collection::vec(act(), 1..24)
}

/// Maps a place and a length onto a disk of `size` bytes with blocks of `block` bytes; the
/// result always lies inside the disk and is at least one byte long.
fn resolve(place: Place, len: Len, size: u64, block: u64) -> (u64, usize) {
    let offset = match place {
        Place::Any(x) => x % size,
        Place::Sector(x) => (x % (size / 512)) * 512,
        Place::NearEdge(b, d) => {
            let edge = (b % (size / block + 1)) * block;
            edge.saturating_add_signed(d).min(size - 1)
        }
    };
    let len = match len {
        Len::Small(n) => n as u64,
        Len::Sectors(n) => n as u64 * 512,
        Len::Blocks(x) => 1 + x % (2 * block + 1024),
        Len::Huge(x) => 1 + x % size,
    };
    let len = len.min(size - offset).max(1);
    (offset, len as usize)
}

fn writable() -> OpenOptions {
    OpenOptions::new().writable(true)
}

/// Closes `vhd` and opens it again from a copy of its bytes (and its parent, if any).
fn reopen(vhd: Vhd<MemStorage>) -> Vhd<MemStorage> {
    let (storage, parent) = vhd.into_parts();
    let storage = MemStorage::from_vec(storage.into_vec());
    let vhd = match parent {
        Some(parent) => Vhd::open_with_parent(storage, parent, writable()),
        None => Vhd::open(storage, writable()),
    }
    .expect("reopen");
    assert!(
        vhd.warnings().is_empty(),
        "warnings after reopen: {:?}",
        vhd.warnings()
    );
    vhd
}

/// File-level invariants of an image we wrote.
fn check_file(vhd: &Vhd<MemStorage>) {
    let bytes = vhd.storage().as_slice();
    let len = bytes.len();
    assert_eq!(len % 512, 0, "file length {len} is not whole sectors");
    let tail = &bytes[len - 512..];
    assert_eq!(&tail[..8], b"conectix");
    if vhd.disk_type() == DiskType::FIXED {
        assert_eq!(len as u64, vhd.size() + 512);
    } else {
        assert_eq!(
            &bytes[..512],
            tail,
            "footer copy at 0 differs from the tail footer"
        );
    }
}

/// Soundness of `is_unallocated`: a range it calls unallocated must read as zeros.
fn check_unallocated(vhd: &Vhd<MemStorage>, model: &[u8], offset: u64, len: usize) {
    if vhd.is_unallocated(offset, len as u64).unwrap() {
        let range = &model[offset as usize..offset as usize + len];
        assert!(
            range.iter().all(|&b| b == 0),
            "is_unallocated({offset}, {len}) is true but the model holds data there"
        );
    }
}

/// Applies `acts` to `vhd` and to `model`, checking every read, then compares the whole disk
/// before and after a final reopen.
fn run(mut vhd: Vhd<MemStorage>, mut model: Vec<u8>, block: u64, acts: &[Act]) {
    let size = vhd.size();
    assert_eq!(model.len() as u64, size);
    let mut buf = Vec::new();
    for act in acts {
        match *act {
            Act::Write {
                place,
                len,
                zero,
                seed,
            } => {
                let (offset, len) = resolve(place, len, size, block);
                let data = if zero {
                    vec![0; len]
                } else {
                    pattern(seed, len)
                };
                vhd.write_at(offset, &data).unwrap();
                model[offset as usize..offset as usize + len].copy_from_slice(&data);
            }
            Act::Read { place, len } => {
                let (offset, len) = resolve(place, len, size, block);
                buf.resize(len, 0xEE);
                vhd.read_at(offset, &mut buf).unwrap();
                assert_same(
                    &format!("read of {len} at {offset}"),
                    &buf,
                    &model[offset as usize..offset as usize + len],
                );
                check_unallocated(&vhd, &model, offset, len);
            }
            Act::WritePastEnd { len } => {
                let offset = size - (len as u64 / 2).min(size);
                let err = vhd.write_at(offset, &vec![0x5A; len]).unwrap_err();
                assert!(matches!(err, DiskError::OutOfRange { .. }), "{err:?}");
            }
            Act::Flush => vhd.flush().unwrap(),
            Act::Reopen => vhd = reopen(vhd),
        }
    }
    check_file(&vhd);
    assert_same("whole disk", &read_all(&vhd, 256 * KIB as usize), &model);
    let vhd = reopen(vhd);
    check_file(&vhd);
    assert_same(
        "whole disk after reopen",
        &read_all(&vhd, 256 * KIB as usize),
        &model,
    );
    // Unaligned chunking must give the same bytes.
    assert_same(
        "whole disk, odd chunks",
        &read_all(&vhd, 3 * 512 + 7),
        &model,
    );
}

/// A dynamic disk holding a few deterministic writes (some of them zeros) and its contents.
fn dynamic_with_data(size: u64, block: u32, seed: u64) -> (Vhd<MemStorage>, Vec<u8>) {
    let mut vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(size).block_size(block),
    )
    .unwrap();
    let mut model = vec![0u8; size as usize];
    scribble(&mut vhd, &mut model, seed, 10);
    (reopen_read_only(vhd), model)
}

/// `n` random writes (every fourth one zeros) to `disk` and `model`.
fn scribble(disk: &mut dyn Disk, model: &mut [u8], seed: u64, n: usize) {
    let mut rng = Rng::new(seed);
    let size = model.len() as u64;
    for i in 0..n {
        let offset = rng.below(size);
        let len = (1 + rng.below(200 * KIB)).min(size - offset) as usize;
        let data = if i % 4 == 3 {
            vec![0; len]
        } else {
            pattern(rng.next_u64(), len)
        };
        disk.write_at(offset, &data).unwrap();
        model[offset as usize..offset as usize + len].copy_from_slice(&data);
    }
}

fn reopen_read_only(vhd: Vhd<MemStorage>) -> Vhd<MemStorage> {
    let (storage, parent) = vhd.into_parts();
    match parent {
        Some(p) => Vhd::open_with_parent(storage, p, OpenOptions::new()),
        None => Vhd::open(storage, OpenOptions::new()),
    }
    .unwrap()
}

fn link_to(parent: &dyn Disk) -> ParentLink {
    let id = parent.identity().expect("a VHD parent");
    ParentLink {
        unique_id: id.unique_id,
        timestamp: id.timestamp,
        name: "parent.vhd".into(),
        relative_path: Some(".\\parent.vhd".into()),
        absolute_path: Some("C:\\vms\\parent.vhd".into()),
    }
}

/// A differencing child (blocks of `block`) over `parent`.
fn child_of(parent: Vhd<MemStorage>, block: u32) -> Vhd<MemStorage> {
    let link = link_to(&parent);
    create_differencing(
        MemStorage::new(),
        Box::new(parent),
        &link,
        &CreateOptions::new(0).block_size(block),
    )
    .unwrap()
}

fn block_size() -> impl Strategy<Value = u32> {
    prop_oneof![Just(512u32), Just(4096), Just(64 << 10), Just(2 << 20)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fixed_matches_model(acts in acts()) {
        let size = MIB + 3 * 512;
        let vhd = create_fixed(MemStorage::new(), &CreateOptions::new(size)).unwrap();
        run(vhd, vec![0; size as usize], 64 * KIB, &acts);
    }

    #[test]
    fn dynamic_512_byte_blocks_match_model(acts in acts()) {
        let size = 160 * KIB + 3 * 512;
        let vhd = create_dynamic(MemStorage::new(), &CreateOptions::new(size).block_size(512)).unwrap();
        run(vhd, vec![0; size as usize], 512, &acts);
    }

    #[test]
    fn dynamic_4k_blocks_match_model(acts in acts()) {
        let size = MIB + 5 * 512;
        let vhd = create_dynamic(MemStorage::new(), &CreateOptions::new(size).block_size(4096)).unwrap();
        run(vhd, vec![0; size as usize], 4 * KIB, &acts);
    }

    #[test]
    fn dynamic_64k_blocks_match_model(acts in acts()) {
        let size = 3 * MIB + 512;
        let vhd = create_dynamic(MemStorage::new(), &CreateOptions::new(size).block_size(64 << 10)).unwrap();
        run(vhd, vec![0; size as usize], 64 * KIB, &acts);
    }

    #[test]
    fn dynamic_2m_blocks_match_model(acts in acts()) {
        let size = 5 * MIB + 3 * 512;
        let vhd = create_dynamic(MemStorage::new(), &CreateOptions::new(size).block_size(2 << 20)).unwrap();
        run(vhd, vec![0; size as usize], 2 * MIB, &acts);
    }

    #[test]
    fn differencing_matches_model(
        parent_block in prop_oneof![Just(4096u32), Just(64 << 10), Just(2 << 20)],
        child_block in block_size(),
        seed in any::<u64>(),
        acts in acts(),
    ) {
        let size = 3 * MIB + 7 * 512;
        let (parent, model) = dynamic_with_data(size, parent_block, seed);
        let child = child_of(parent, child_block);
        run(child, model, u64::from(child_block), &acts);
    }

    #[test]
    fn three_deep_chain_matches_model(
        blocks in (block_size(), block_size(), block_size()),
        seed in any::<u64>(),
        acts in acts(),
    ) {
        let size = 2 * MIB + 512;
        let (base, mut model) = dynamic_with_data(size, blocks.0, seed);
        let mut middle = child_of(base, blocks.1);
        scribble(&mut middle, &mut model, seed ^ 0xFFFF, 10);
        let middle = reopen_read_only(middle);
        let top = child_of(middle, blocks.2);
        run(top, model, u64::from(blocks.2), &acts);
    }
}

/// joncampbell123/dosbox-x#4545: writing zeros into a child over parent data must make the
/// child read zeros, also after a reopen; it must not be skipped as "already zero".
#[test]
fn zero_writes_in_a_child_hide_parent_data() {
    let size = 8 * MIB;
    let mut parent = create_dynamic(MemStorage::new(), &CreateOptions::new(size)).unwrap();
    parent.write_at(0, &vec![0xAA; 6 * MIB as usize]).unwrap();
    let parent = reopen_read_only(parent);
    let mut child = child_of(parent, 2 << 20);
    let cases: &[(u64, usize)] = &[
        (0, 2 * MIB as usize), // a whole block
        (2 * MIB + 100, 50),   // inside one sector
        (2 * MIB + 4096, 512), // one aligned sector
        (4 * MIB - 700, 1400), // across a block boundary, unaligned both ends
    ];
    let mut model = vec![0u8; size as usize];
    model[..6 * MIB as usize].fill(0xAA);
    for &(offset, len) in cases {
        child.write_at(offset, &vec![0; len]).unwrap();
        model[offset as usize..offset as usize + len].fill(0);
        // The zeros and a sector of context on both sides.
        let start = offset.saturating_sub(512) as usize;
        let end = (offset as usize + len + 512).min(size as usize);
        let mut buf = vec![0xEE; end - start];
        child.read_at(start as u64, &mut buf).unwrap();
        assert_same(
            &format!("zeros written at {offset}"),
            &buf,
            &model[start..end],
        );
    }
    assert_eq!(
        child.allocated_blocks(),
        3,
        "zero writes over parent data must allocate"
    );
    // Zeros over a region where no ancestor has data need no block.
    child.write_at(7 * MIB, &vec![0; 4096]).unwrap();
    assert_eq!(child.allocated_blocks(), 3);
    let child = reopen(child);
    assert_same(
        "child after reopen",
        &read_all(&child, MIB as usize),
        &model,
    );
}

/// On a dynamic disk, zeros written over unallocated space leave it unallocated, and a
/// read-only disk refuses writes.
#[test]
fn zero_writes_on_a_dynamic_disk_stay_sparse_and_read_only_refuses() {
    let mut vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(4 * MIB).block_size(4096),
    )
    .unwrap();
    vhd.write_at(5000, &vec![0; 100_000]).unwrap();
    assert_eq!(vhd.allocated_blocks(), 0);
    assert!(vhd.is_unallocated(0, 4 * MIB).unwrap());
    vhd.write_at(5000, &[1]).unwrap();
    assert_eq!(vhd.allocated_blocks(), 1);
    assert!(!vhd.is_unallocated(4096, 4096).unwrap());
    assert!(vhd.is_unallocated(8192, 4 * MIB - 8192).unwrap());
    let ro = reopen_read_only(vhd);
    let mut ro = ro;
    assert!(matches!(ro.write_at(0, &[1]), Err(DiskError::ReadOnly)));
    let mut b = [0u8; 3];
    ro.read_at(4999, &mut b).unwrap();
    assert_eq!(b, [0, 1, 0]);
}

/// Exactness of `is_unallocated` on a differencing disk (whose bitmaps mark only the
/// sectors written): over every range of a grid it is true exactly when no sector the child's
/// writes touched lies in the range and the parent has nothing there either. (The proptests
/// above check only that a range called unallocated reads as zeros.) A child block written
/// whole takes the full-block path; the others have partial bitmaps.
#[test]
fn is_unallocated_is_exact_on_a_differencing_disk() {
    const BLOCK: u64 = 4 * KIB;
    let size = 8 * BLOCK;
    let mut parent = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(size).block_size(BLOCK as u32),
    )
    .unwrap();
    // The parent's block 6 (sectors 48 to 55): a dynamic disk's new block is all present.
    parent.write_at(50 * 512, &[1]).unwrap();
    let mut present = vec![false; (size / 512) as usize];
    present[48..56].fill(true);
    let mut vhd = child_of(parent, BLOCK as u32);
    // One byte inside sector 3; three sectors straddling blocks 1 and 2 (17 to 19, from the
    // middle of 17); the last sector of block 4; block 7 whole.
    for (offset, len) in [
        (3 * 512 + 100, 1),
        (17 * 512 + 256, 2 * 512 + 1),
        (40 * 512 - 512, 512),
        (7 * BLOCK, BLOCK),
    ] {
        vhd.write_at(offset, &vec![0xA7; len as usize]).unwrap();
        for s in offset / 512..(offset + len).div_ceil(512) {
            present[s as usize] = true;
        }
    }
    for offset in (0..size).step_by(256) {
        for len in [1, 255, 256, 512, 700, BLOCK, BLOCK + 512, 3 * BLOCK, size] {
            let end = (offset + len).min(size);
            let want = !(offset / 512..end.div_ceil(512)).any(|s| present[s as usize]);
            assert_eq!(
                vhd.is_unallocated(offset, len).unwrap(),
                want,
                "is_unallocated({offset}, {len})"
            );
        }
    }
}

/// Unaligned writes into a child block that is already allocated but whose edge sectors are
/// not present yet: each edge sector is completed from the parent (read-modify-write), at
/// every head and tail offset, so the block reads as the parent overlaid with the writes.
#[test]
fn unaligned_writes_into_an_allocated_child_block_merge_with_the_parent() {
    const BLOCK: u64 = 4 * KIB;
    for head in [0u64, 1, 77, 300, 511] {
        for tail in [1u64, 100, 300, 511, 512] {
            let mut parent = create_dynamic(
                MemStorage::new(),
                &CreateOptions::new(4 * BLOCK).block_size(BLOCK as u32),
            )
            .unwrap();
            let mut model = pattern(head * 1000 + tail, (4 * BLOCK) as usize);
            parent.write_at(0, &model).unwrap();
            let mut child = child_of(parent, BLOCK as u32);
            // Allocate block 0 in the child with only sector 5 present, right after the
            // sector the write below ends in.
            let present = vec![0xC3; 512];
            child.write_at(5 * 512, &present).unwrap();
            model[5 * 512..6 * 512].copy_from_slice(&present);
            // From `head` bytes into sector 1 to `tail` bytes into sector 4.
            let (start, end) = (512 + head, 4 * 512 + tail);
            let data = vec![0x5A; (end - start) as usize];
            child.write_at(start, &data).unwrap();
            model[start as usize..end as usize].copy_from_slice(&data);
            let mut got = vec![0u8; (4 * BLOCK) as usize];
            child.read_at(0, &mut got).unwrap();
            assert_same(&format!("head {head}, tail {tail}"), &got, &model);
        }
    }
}
