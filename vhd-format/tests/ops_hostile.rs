//! The Edit Disk operations on hostile and edge-case images: parent-locator offsets outside
//! the file, block sizes far larger than the file, a child larger than its parent, growing a
//! disk, and `Send`.
//!
//! The last part runs check, repair, inspect, compact, expand and merge on mutated images
//! (proptest): each must give `Ok` or a typed error, never a panic, and never grow the storage
//! without bound.

mod common;

use std::sync::OnceLock;

use common::{fix_checksums, link_to, pattern, put, read_all, set_locator, HEADER};
use proptest::prelude::*;
use vhd_format::defs::{checksum, Uuid, VhdTime};
use vhd_format::ops::{self, MergeError, NoProgress};
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, CreateOptions, Disk, MemStorage,
    OpenOptions, ParentLink, SizePolicy, Vhd,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Offset of parent locator entry 0 inside the header (entries are 24 bytes).
const LOCATOR0: usize = HEADER + 576;
/// Offset of the block size inside the header.
const BLOCK_SIZE: usize = HEADER + 32;

fn opts(size: u64, id: u8) -> CreateOptions {
    CreateOptions::new(size)
        .unique_id(Uuid([id; 16]))
        .timestamp(VhdTime(1000))
}

/// An 8 MiB dynamic disk (64 KiB blocks) with data in three blocks and a zeroed block between
/// them, so that compaction drops one block and moves the last one down.
fn dynamic_with_a_hole() -> Vec<u8> {
    let mut d = create_dynamic(MemStorage::new(), &opts(8 * MIB, 1).block_size(64 << 10)).unwrap();
    d.write_at(0, &pattern(1, 4096)).unwrap();
    d.write_at(MIB, &pattern(2, 4096)).unwrap();
    d.write_at(5 * MIB + 100, &pattern(3, 70_000)).unwrap();
    d.write_at(MIB, &[0; 4096]).unwrap();
    d.into_storage().into_vec()
}

// ---------------------------------------------------------------------------------------------
// Parent locators outside the file.

/// A locator whose payload lies outside the file is ignored by compact exactly as by open: the
/// file shrinks (it grew to 1 TiB for an offset of 2^40) and no offset overflows.
#[test]
fn compact_ignores_locator_payloads_outside_the_file() {
    let base = dynamic_with_a_hole();
    let contents = read_all(
        &Vhd::open(MemStorage::from_vec(base.clone()), OpenOptions::new()).unwrap(),
        MIB as usize,
    );
    let len = base.len() as u64;
    // (space, length, offset)
    let cases: [(u32, u32, u64); 7] = [
        (512, 8, 1 << 40),
        (512, 8, len),
        (512, 8, len - 256),
        (512, 8, u64::MAX - 100),
        (512, 8, u64::MAX),
        (512, 8, (1 << 63) + 7),
        // Space counted in sectors (smaller than the length): 2 TiB of payload.
        (u32::MAX, u32::MAX, 4096),
    ];
    for (space, length, offset) in cases {
        let what = format!("locator space {space} length {length} at {offset}");
        let mut bytes = base.clone();
        set_locator(&mut bytes, 0, space, length, offset);
        fix_checksums(&mut bytes);
        // The limit turns unbounded growth into a typed error instead of an exhausted machine.
        let storage = MemStorage::from_vec(bytes).with_limit(len + 4 * MIB);
        let mut vhd = Vhd::open(storage, OpenOptions::new().writable(true)).unwrap();
        let report = ops::compact(&mut vhd, None, &mut NoProgress)
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(report.old_len, len, "{what}");
        assert_eq!(report.dropped_zero, 1, "{what}");
        assert!(report.new_len < len, "{what}: {report:?}");
        assert_eq!(
            vhd.storage().as_slice().len() as u64,
            report.new_len,
            "{what}"
        );
        let reopened = Vhd::open(vhd.into_storage(), OpenOptions::new()).unwrap();
        assert!(read_all(&reopened, MIB as usize) == contents, "{what}");
    }
}

/// A differencing disk (64 KiB blocks, two parent locators) over an empty 4 MiB parent.
fn child_of_a_4mib_parent() -> Vhd<MemStorage> {
    let parent = create_dynamic(MemStorage::new(), &opts(4 * MIB, 2)).unwrap();
    let link = link_to(&parent);
    create_differencing(
        MemStorage::new(),
        Box::new(parent),
        &link,
        &opts(0, 3).block_size(64 << 10),
    )
    .unwrap()
}

/// Locator payloads inside the file stay where they are: compaction moves blocks around them.
#[test]
fn compact_keeps_locator_payloads_inside_the_file() {
    let mut child = child_of_a_4mib_parent();
    child.write_at(0, &pattern(4, 512)).unwrap();
    child.write_at(MIB, &pattern(5, 512)).unwrap();
    child.write_at(2 * MIB, &pattern(6, 512)).unwrap();
    let locators = child.parent_locators().unwrap();
    assert_eq!(locators.len(), 2);
    let before = read_all(&child, MIB as usize);
    // Unused: the middle block.
    let unused = |offset: u64, _| offset == MIB;
    let report = ops::compact(&mut child, Some(&unused), &mut NoProgress).unwrap();
    assert_eq!((report.dropped_unused, report.moved), (1, 1));
    assert_eq!(child.parent_locators().unwrap(), locators);
    let (storage, parent) = child.into_parts();
    let child = Vhd::open_with_parent(storage, parent.unwrap(), OpenOptions::new()).unwrap();
    assert_eq!(child.parent_locators().unwrap(), locators);
    let after = read_all(&child, MIB as usize);
    assert!(after[..MIB as usize] == before[..MIB as usize]);
    assert!(after[MIB as usize..2 * MIB as usize]
        .iter()
        .all(|&b| b == 0));
    assert!(after[2 * MIB as usize..] == before[2 * MIB as usize..]);
}

/// The file offset of block `block`'s bitmap, from the BAT of an image made by this crate.
fn block_offset(bytes: &[u8], block: usize) -> u64 {
    let bat = u64::from_be_bytes(bytes[HEADER + 16..HEADER + 24].try_into().unwrap()) as usize;
    let at = bat + 4 * block;
    u64::from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())) * 512
}

/// A locator payload that a data block overlaps: the block is what `open` reads, so `check`
/// reports the overlap as the locator's damage and `repair` clears the locator entry, keeping
/// the block and the disk's contents (it used to clear the block).
#[test]
fn repair_clears_a_locator_that_a_block_overlaps_and_keeps_the_block() {
    // A dynamic disk: locator 0 points into block 0's sectors.
    let base = dynamic_with_a_hole();
    let contents = read_all(
        &Vhd::open(MemStorage::from_vec(base.clone()), OpenOptions::new()).unwrap(),
        MIB as usize,
    );
    let block0 = block_offset(&base, 0);
    for offset in [block0, block0 + 512 + 4096, block0 + 512 + (64 << 10) - 512] {
        let mut bytes = base.clone();
        set_locator(&mut bytes, 0, 512, 8, offset);
        fix_checksums(&mut bytes);
        let mut compacted = Vhd::open(
            MemStorage::from_vec(bytes.clone()),
            OpenOptions::new().writable(true),
        )
        .unwrap();
        ops::compact(&mut compacted, None, &mut NoProgress).unwrap();
        assert!(
            read_all(&compacted, MIB as usize) == contents,
            "compact, locator at {offset}"
        );
        let mut storage = MemStorage::from_vec(bytes);
        let report = ops::check(&storage).unwrap();
        assert_eq!(
            report.problems,
            vec![ops::Problem::BlockOverlapsLocator {
                block: 0,
                sector: (block0 / 512) as u32,
                index: 0
            }],
            "locator at {offset}"
        );
        assert_eq!(report.allocated_blocks, 4);
        let actions = ops::repair(&mut storage).unwrap();
        assert_eq!(
            actions,
            vec![ops::RepairAction::ClearedLocator { index: 0 }]
        );
        assert!(ops::check(&storage).unwrap().problems.is_empty());
        let vhd = Vhd::open(storage, OpenOptions::new()).unwrap();
        assert!(
            read_all(&vhd, MIB as usize) == contents,
            "locator at {offset}"
        );
        assert!(vhd.parent_locators().unwrap().is_empty());
    }

    // A differencing disk with two locators: only the damaged one goes.
    let mut child = child_of_a_4mib_parent();
    child.write_at(MIB, &pattern(7, 9000)).unwrap();
    let locators = child.parent_locators().unwrap();
    assert_eq!(locators.len(), 2);
    let before = read_all(&child, MIB as usize);
    let (storage, parent) = child.into_parts();
    let mut bytes = storage.into_vec();
    let block = block_offset(&bytes, 16);
    let entry = LOCATOR0 + 24;
    put(&mut bytes, entry + 16, &(block + 1024).to_be_bytes());
    fix_checksums(&mut bytes);
    let mut storage = MemStorage::from_vec(bytes);
    let actions = ops::repair(&mut storage).unwrap();
    assert_eq!(
        actions,
        vec![ops::RepairAction::ClearedLocator { index: 1 }]
    );
    assert!(ops::check(&storage).unwrap().problems.is_empty());
    let child = Vhd::open_with_parent(storage, parent.unwrap(), OpenOptions::new()).unwrap();
    assert_eq!(child.parent_locators().unwrap(), locators[..1]);
    assert!(read_all(&child, MIB as usize) == before);
}

/// A write that needs a new block on a full file system fails with a typed error and leaves a
/// sound file: it still ends with a valid footer and reads as before. (The block used to be
/// written over the old footer first, so a failure left no tail footer, which vhdiinfo
/// refuses.)
#[test]
fn a_failed_allocation_keeps_the_file_sound() {
    let mut vhd =
        create_dynamic(MemStorage::new(), &opts(8 * MIB, 5).block_size(64 << 10)).unwrap();
    vhd.write_at(0, &pattern(1, 4096)).unwrap();
    let bytes = vhd.into_storage().into_vec();
    let len = bytes.len() as u64;
    let contents = read_all(
        &Vhd::open(MemStorage::from_vec(bytes.clone()), OpenOptions::new()).unwrap(),
        MIB as usize,
    );
    // A block takes 512 + 64 KiB; limits inside that.
    for limit in [len, len + 512, len + 4096, len + 4608, len + 60 * KIB] {
        let storage = MemStorage::from_vec(bytes.clone()).with_limit(limit);
        let mut vhd = Vhd::open(storage, OpenOptions::new().writable(true)).unwrap();
        assert!(
            vhd.write_at(MIB, &pattern(2, 4096)).is_err(),
            "limit {limit}"
        );
        let storage = vhd.into_storage();
        let report = ops::check(&storage).unwrap();
        assert!(report.is_clean(), "limit {limit}: {:?}", report.problems);
        let vhd = Vhd::open(storage, OpenOptions::new()).unwrap();
        assert!(
            vhd.warnings().is_empty(),
            "limit {limit}: {:?}",
            vhd.warnings()
        );
        assert!(read_all(&vhd, MIB as usize) == contents, "limit {limit}");
    }
}

/// A file cut short inside its last block (footer lost): `repair` extends it to the block's
/// end and keeps the block's data (it cleared the block, losing up to 64 KiB of data that was
/// still in the file).
#[test]
fn repair_keeps_the_data_of_a_block_cut_short() {
    let mut vhd =
        create_dynamic(MemStorage::new(), &opts(8 * MIB, 6).block_size(64 << 10)).unwrap();
    vhd.write_at(100 * KIB, &pattern(3, 300 * 1024)).unwrap();
    let bytes = vhd.into_storage().into_vec();
    let contents = read_all(
        &Vhd::open(MemStorage::from_vec(bytes.clone()), OpenOptions::new()).unwrap(),
        MIB as usize,
    );
    // The last block holds data in its first 16 KiB; cut the footer and up to 40,000 bytes of
    // the block's unwritten end.
    for cut in [513usize, 848, 512 + 40_000] {
        let mut storage = MemStorage::from_vec(bytes[..bytes.len() - cut].to_vec());
        let actions = ops::repair(&mut storage).unwrap_or_else(|e| panic!("cut {cut}: {e:?}"));
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, ops::RepairAction::Extended { .. })),
            "cut {cut}: {actions:?}"
        );
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, ops::RepairAction::ClearedBatEntry { .. })),
            "cut {cut}: {actions:?}"
        );
        assert!(ops::check(&storage).unwrap().is_clean(), "cut {cut}");
        assert_eq!(storage.as_slice().len(), bytes.len(), "cut {cut}");
        let vhd = Vhd::open(storage, OpenOptions::new()).unwrap();
        assert!(read_all(&vhd, MIB as usize) == contents, "cut {cut}");
    }
}

// ---------------------------------------------------------------------------------------------
// Block sizes out of proportion to the file.

/// Set in the child process of [`with_memory_limit`].
const LIMITED_CHILD: &str = "VHD_FORMAT_MEMORY_LIMITED_CHILD";

/// Runs `body` in a child process (this test binary, running only the test `name`) whose
/// address space is limited to 1 GiB, so an allocation of 2 GiB aborts it.
fn with_memory_limit(name: &str, body: fn()) {
    if std::env::var_os(LIMITED_CHILD).is_some() {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 1048576 && exec \"$0\" \"$@\""])
        .arg(&exe)
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(LIMITED_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} under a 1 GiB address-space limit: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 2,560-byte dynamic disk whose header says 2 GiB blocks (valid: 4 BAT entries, none
/// allocated).
fn tiny_disk_with_2gib_blocks() -> Vec<u8> {
    let mut bytes = create_dynamic(MemStorage::new(), &opts(8 * MIB, 5))
        .unwrap()
        .into_storage()
        .into_vec();
    assert_eq!(bytes.len(), 2560);
    put(&mut bytes, BLOCK_SIZE, &(1u32 << 31).to_be_bytes());
    fix_checksums(&mut bytes);
    bytes
}

/// Compact allocated a 2 GiB buffer for this 2,560-byte file.
#[test]
fn compact_memory_does_not_follow_the_block_size() {
    with_memory_limit("compact_memory_does_not_follow_the_block_size", || {
        let storage = MemStorage::from_vec(tiny_disk_with_2gib_blocks()).with_limit(MIB);
        let mut vhd = Vhd::open(storage, OpenOptions::new().writable(true)).unwrap();
        assert_eq!(vhd.block_size(), Some(1 << 31));
        let report = ops::compact(&mut vhd, None, &mut NoProgress).unwrap();
        assert_eq!(report.new_len, 2560);
    });
}

/// Bits in a bitmap's padding (past the block's last sector) mark no sector: a differencing
/// block whose real bits are all clear is dropped whatever the padding holds.
#[test]
fn compact_ignores_bitmap_padding() {
    let mut child = child_of_a_4mib_parent();
    child.write_at(0, &[1; 4096]).unwrap();
    child.write_at(MIB, &[2; 4096]).unwrap();
    let bitmap = child.bat().unwrap()[0] as usize * 512;
    let (storage, parent) = child.into_parts();
    let mut bytes = storage.into_vec();
    // 64 KiB blocks: 128 sectors, 16 bytes of the 512-byte bitmap.
    assert_eq!(bytes[bitmap], 0xFF);
    bytes[bitmap..bitmap + 16].fill(0);
    bytes[bitmap + 16..bitmap + 512].fill(0xFF);
    let mut child = Vhd::open_with_parent(
        MemStorage::from_vec(bytes),
        parent.unwrap(),
        OpenOptions::new().writable(true),
    )
    .unwrap();
    let report = ops::compact(&mut child, None, &mut NoProgress).unwrap();
    assert_eq!((report.dropped_zero, report.moved), (1, 1));
    let mut b = vec![0u8; 4096];
    child.read_at(MIB, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 2));
}

/// Merge allocated a 2 GiB buffer for a child of a few KiB.
#[test]
fn merge_memory_does_not_follow_the_block_size() {
    with_memory_limit("merge_memory_does_not_follow_the_block_size", || {
        let parent = create_dynamic(MemStorage::new(), &opts(8 * MIB, 6)).unwrap();
        let link = link_to(&parent);
        let child =
            create_differencing(MemStorage::new(), Box::new(parent), &link, &opts(0, 7)).unwrap();
        let (storage, parent) = child.into_parts();
        let mut bytes = storage.into_vec();
        put(&mut bytes, BLOCK_SIZE, &(1u32 << 31).to_be_bytes());
        fix_checksums(&mut bytes);
        let mut child = Vhd::open_with_parent(
            MemStorage::from_vec(bytes).with_limit(MIB),
            parent.unwrap(),
            OpenOptions::new().writable(true),
        )
        .unwrap();
        assert_eq!(child.block_size(), Some(1 << 31));
        assert_eq!(
            ops::merge_into_parent(&mut child, &mut NoProgress).unwrap(),
            0
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Merging into a smaller parent.

/// A child larger than its parent (reads past the parent's end give zeros) is refused before
/// anything is written; after expanding the parent the merge keeps every byte.
#[test]
fn merge_refuses_a_parent_smaller_than_the_child() {
    let id = Uuid([0x42; 16]);
    let mut parent = create_dynamic(MemStorage::new(), &opts(4 * MIB, 0x42)).unwrap();
    parent.write_at(0, &[0xaa; 512]).unwrap();
    let parent_bytes = parent.into_storage().into_vec();
    let open_parent = |bytes: Vec<u8>| {
        Vhd::open(
            MemStorage::from_vec(bytes),
            OpenOptions::new().writable(true),
        )
        .unwrap()
    };
    // The child is made over an 8 MiB disk with the parent's identity.
    let big = create_dynamic(MemStorage::new(), &opts(8 * MIB, 0x42)).unwrap();
    let link = ParentLink {
        unique_id: id,
        timestamp: VhdTime(1000),
        name: "p.vhd".into(),
        relative_path: None,
        absolute_path: None,
    };
    let child = create_differencing(MemStorage::new(), Box::new(big), &link, &opts(0, 9)).unwrap();
    let mut child = Vhd::open_with_parent(
        child.into_storage(),
        Box::new(open_parent(parent_bytes.clone())),
        OpenOptions::new().writable(true),
    )
    .unwrap();
    assert_eq!(
        (child.size(), child.parent().unwrap().size()),
        (8 * MIB, 4 * MIB)
    );
    child.write_at(512, &[0xcc; 512]).unwrap();
    child.write_at(6 * MIB, &[0xbb; 4096]).unwrap();
    let expected = read_all(&child, MIB as usize);

    let err = ops::merge_into_parent(&mut child, &mut NoProgress).unwrap_err();
    assert!(
        matches!(
            err,
            MergeError::ParentTooSmall {
                child: c,
                parent: p
            } if c == 8 * MIB && p == 4 * MIB
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("expand the parent"), "{err}");
    // Nothing was written to the parent.
    let mut buf = [0u8; 512];
    child.parent().unwrap().read_at(512, &mut buf).unwrap();
    assert_eq!(buf, [0; 512]);

    // Expand the parent first, then merge: the parent alone now reads as the child did.
    let mut parent = open_parent(parent_bytes);
    ops::expand(&mut parent, 8 * MIB).unwrap();
    let (storage, _) = child.into_parts();
    let mut child =
        Vhd::open_with_parent(storage, Box::new(parent), OpenOptions::new().writable(true))
            .unwrap();
    ops::merge_into_parent(&mut child, &mut NoProgress).unwrap();
    let (_, parent) = child.into_parts();
    assert!(read_all(parent.as_deref().unwrap(), MIB as usize) == expected);
}

// ---------------------------------------------------------------------------------------------
// Expand.

/// A fixed disk whose footer claims a size smaller than its file: `expand` refuses it and
/// leaves it untouched (it wrote the new footer after the claimed size, zeroed 512 bytes of
/// data there and left the real footer inside the new data area).
#[test]
fn expand_refuses_a_fixed_disk_whose_footer_is_not_at_its_size() {
    let mut vhd = create_fixed(MemStorage::new(), &opts(MIB, 9)).unwrap();
    vhd.write_at(0, &[0xab; MIB as usize]).unwrap();
    let mut bytes = vhd.into_storage().into_vec();
    let tail = bytes.len() - 512;
    // current_size (offset 48 of the footer) says 4 KiB; both footer copies agree.
    put(&mut bytes, tail + 48, &4096u64.to_be_bytes());
    put(&mut bytes, tail + 64, &[0; 4]);
    let sum = checksum(&bytes[tail..], 64);
    put(&mut bytes, tail + 64, &sum.to_be_bytes());
    // It opens (the data beyond 4 KiB is simply not part of the disk).
    let mut vhd = Vhd::open(
        MemStorage::from_vec(bytes.clone()),
        OpenOptions::new().writable(true),
    )
    .unwrap();
    let e = ops::expand(&mut vhd, 2 * MIB).unwrap_err();
    assert!(
        matches!(e, ops::ExpandError::FooterNotAtEnd { current: 4096, .. }),
        "{e:?}"
    );
    assert!(vhd.into_storage().as_slice() == &bytes[..]);
}

/// A snapshot whose options are invalid fails and leaves no child file behind (it left an
/// empty file, so a corrected retry failed with "file exists").
#[test]
fn a_failed_snapshot_leaves_no_file() {
    let dir = common::TempDir::new("snapshot-fail");
    let parent = dir.join("p.vhd");
    let child = dir.join("c.vhd");
    let f = common::create_file(&parent);
    create_dynamic(f, &opts(4 * MIB, 10)).unwrap();
    let policy = vhd_format::ParentPolicy::anywhere();
    let bad = opts(0, 11).block_size(3 << 20);
    assert!(vhd_format::snapshot(&parent, &child, &bad, &policy).is_err());
    assert!(!child.exists());
    vhd_format::snapshot(&parent, &child, &opts(0, 11), &policy).unwrap();
    assert!(child.exists());
}

/// Every size field of the footer follows an expansion: `original_size` too (libvhdi reports
/// it as the media size; it kept the old size before).
#[test]
fn expand_updates_original_size() {
    for fixed in [false, true] {
        let o = opts(3 * MIB, 10);
        let mut vhd = if fixed {
            create_fixed(MemStorage::new(), &o).unwrap()
        } else {
            create_dynamic(MemStorage::new(), &o).unwrap()
        };
        let new = 10 * MIB + 3 * 512;
        ops::expand(&mut vhd, new).unwrap();
        let f = *vhd.footer();
        assert_eq!(
            (f.current_size.get(), f.original_size.get(), vhd.size()),
            (new, new, new),
            "fixed {fixed}"
        );
        let reopened = Vhd::open(vhd.into_storage(), OpenOptions::new()).unwrap();
        assert_eq!(reopened.footer().original_size.get(), new);
        assert!(ops::check(reopened.storage()).unwrap().is_clean());
    }
}

/// For creators that qemu sizes by CHS (`qemu`, `vpc `), expand rounds the new size up to the
/// first geometry that covers it, so `current_size` and the CHS size agree (qemu saw the
/// smaller CHS size before).
#[test]
fn expand_keeps_chs_and_current_size_together_for_chs_creators() {
    use vhd_format::defs::FourCc;
    for app in [FourCc::QEMU, FourCc::VIRTUAL_PC, FourCc::WINDOWS] {
        for fixed in [false, true] {
            let o = opts(MIB, 11).creator(app);
            let mut vhd = if fixed {
                create_fixed(MemStorage::new(), &o).unwrap()
            } else {
                create_dynamic(MemStorage::new(), &o).unwrap()
            };
            vhd.write_at(MIB - 512, &[7; 512]).unwrap();
            ops::expand(&mut vhd, 10 * MIB).unwrap();
            let what = format!("{app} fixed {fixed}");
            if app == FourCc::WINDOWS {
                assert_eq!(vhd.current_size(), 10 * MIB, "{what}");
            } else {
                // 302/4/17: what qemu itself creates for 10 MiB.
                assert_eq!(vhd.current_size(), 10_514_432, "{what}");
                assert_eq!(vhd.chs_size(), vhd.current_size(), "{what}");
            }
            assert_eq!(vhd.footer().original_size.get(), vhd.current_size());
            let size = vhd.current_size();
            assert_eq!(vhd.size(), size, "{what}");
            let storage = vhd.into_storage();
            for policy in [SizePolicy::CurrentSize, SizePolicy::Qemu] {
                let v = Vhd::open(storage.clone(), OpenOptions::new().size_policy(policy)).unwrap();
                assert_eq!(v.size(), size, "{what} {policy:?}");
            }
            let v = Vhd::open(storage, OpenOptions::new()).unwrap();
            let mut buf = [0u8; 512];
            v.read_at(MIB - 512, &mut buf).unwrap();
            assert_eq!(buf, [7; 512], "{what}");
            v.read_at(size - 512, &mut buf).unwrap();
            assert_eq!(buf, [0; 512], "{what}");
            assert!(ops::check(v.storage()).unwrap().is_clean(), "{what}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Send.

fn require_send<T: Send>() {}

/// A `Vhd` (with its whole parent chain) can be handed to another thread.
#[test]
fn vhd_is_send() {
    require_send::<Vhd<std::fs::File>>();
    require_send::<Vhd<MemStorage>>();
    require_send::<Vhd<Box<MemStorage>>>();
    let parent = create_dynamic(MemStorage::new(), &opts(MIB, 12)).unwrap();
    let link = link_to(&parent);
    let mut child =
        create_differencing(MemStorage::new(), Box::new(parent), &link, &opts(0, 13)).unwrap();
    child.write_at(4096, b"moved").unwrap();
    let read = std::thread::spawn(move || {
        let mut buf = [0u8; 5];
        child.read_at(4096, &mut buf).unwrap();
        buf
    })
    .join()
    .unwrap();
    assert_eq!(&read, b"moved");
}

// ---------------------------------------------------------------------------------------------
// Every operation on mutated images.

/// How much an operation may grow an image.
const GROWTH_LIMIT: u64 = 8 * MIB;

struct Base {
    bytes: Vec<u8>,
    /// The parent image of a differencing base.
    parent: Option<Vec<u8>>,
}

fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let mut d4k =
            create_dynamic(MemStorage::new(), &opts(256 * KIB, 20).block_size(4096)).unwrap();
        d4k.write_at(5000, &pattern(20, 20_000)).unwrap();
        d4k.write_at(100 * KIB, &pattern(21, 9000)).unwrap();
        d4k.write_at(8192, &[0; 4096]).unwrap();
        let parent = create_dynamic(MemStorage::new(), &opts(256 * KIB, 22).block_size(4096))
            .unwrap()
            .into_storage()
            .into_vec();
        let parent_vhd = Vhd::open(MemStorage::from_vec(parent.clone()), OpenOptions::new());
        let parent_vhd = parent_vhd.unwrap();
        let link = link_to(&parent_vhd);
        let mut child = create_differencing(
            MemStorage::new(),
            Box::new(parent_vhd),
            &link,
            &opts(0, 23).block_size(4096),
        )
        .unwrap();
        child.write_at(700, &pattern(23, 3000)).unwrap();
        child.write_at(200 * KIB, &pattern(24, 512)).unwrap();
        vec![
            Base {
                bytes: d4k.into_storage().into_vec(),
                parent: None,
            },
            Base {
                bytes: dynamic_with_a_hole(),
                parent: None,
            },
            Base {
                bytes: child.into_storage().into_vec(),
                parent: Some(parent),
            },
        ]
    })
}

/// Header fields worth setting to extreme values: (offset in the header, width).
const HEADER_FIELDS: &[(usize, usize)] = &[
    (16, 8),  // table offset
    (28, 4),  // max table entries
    (32, 4),  // block size
    (576, 4), // locator 0: code
    (580, 4), // locator 0: data space
    (584, 4), // locator 0: data length
    (592, 8), // locator 0: data offset
    (604, 4), // locator 1: data space
    (616, 8), // locator 1: data offset
];
/// Footer fields: (offset, width).
const FOOTER_FIELDS: &[(usize, usize)] = &[
    (40, 8), // original size
    (48, 8), // current size
    (56, 4), // geometry
    (8, 4),  // features
];

#[derive(Clone, Copy, Debug)]
enum Op {
    Check,
    Repair,
    Inspect,
    Compact,
    Expand,
    Merge,
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(1u64 << 40),
        Just(1u64 << 31),
        Just(u64::MAX),
        Just(u64::MAX - 511),
        Just(u64::from(u32::MAX)),
        Just(0x8000_0000_0000_0000),
        0u64..(4 * MIB),
        any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Check),
        Just(Op::Repair),
        Just(Op::Inspect),
        Just(Op::Compact),
        Just(Op::Expand),
        Just(Op::Merge),
    ]
}

fn run_op(base: &Base, bytes: Vec<u8>, op: Op, writable: bool) {
    let limit = bytes.len() as u64 + GROWTH_LIMIT;
    let mut storage = MemStorage::from_vec(bytes).with_limit(limit);
    match op {
        Op::Check => {
            if let Ok(r) = ops::check(&storage) {
                let _ = format!("{r:?}");
            }
            return;
        }
        Op::Repair => {
            let _ = ops::repair(&mut storage);
            assert!(storage.as_slice().len() as u64 <= limit);
            return;
        }
        _ => {}
    }
    let options = OpenOptions::new().writable(writable).ignore_parent_id(true);
    let opened = match &base.parent {
        Some(p) => {
            let parent = Vhd::open(
                MemStorage::from_vec(p.clone()).with_limit(p.len() as u64 + GROWTH_LIMIT),
                OpenOptions::new().writable(true),
            )
            .unwrap();
            Vhd::open_with_parent(storage, Box::new(parent), options)
        }
        None => Vhd::open(storage, options),
    };
    let Ok(mut vhd) = opened else {
        return;
    };
    match op {
        Op::Inspect => {
            let _ = vhd.inspect();
        }
        Op::Compact => {
            if let Ok(r) = ops::compact(&mut vhd, None, &mut NoProgress) {
                // Never larger, but for a mutated header or BAT that ends off a sector
                // boundary near the end (the metadata end is rounded up to a sector).
                assert!(r.new_len <= r.old_len + 1023, "{r:?}");
            }
        }
        Op::Expand => {
            let new = (vhd.current_size() * 2).next_multiple_of(512).min(64 * MIB);
            let _ = ops::expand(&mut vhd, new);
        }
        Op::Merge => {
            let _ = ops::merge_into_parent(&mut vhd, &mut NoProgress);
        }
        Op::Check | Op::Repair => unreachable!(),
    }
    assert!(vhd.storage().as_slice().len() as u64 <= limit);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn operations_on_mutated_images_never_panic(
        which in 0usize..3,
        header_edits in prop::collection::vec((any::<prop::sample::Index>(), value()), 0..4),
        footer_edits in prop::collection::vec((any::<prop::sample::Index>(), value()), 0..2),
        fix in prop::bool::weighted(0.9),
        op in op(),
        writable in prop::bool::weighted(0.9),
    ) {
        let base = &bases()[which];
        let mut bytes = base.bytes.clone();
        let len = bytes.len();
        for (field, value) in &header_edits {
            let (off, width) = HEADER_FIELDS[field.index(HEADER_FIELDS.len())];
            put(&mut bytes, HEADER + off, &value.to_be_bytes()[8 - width..]);
        }
        for (field, value) in &footer_edits {
            let (off, width) = FOOTER_FIELDS[field.index(FOOTER_FIELDS.len())];
            for at in [0, len - 512] {
                put(&mut bytes, at + off, &value.to_be_bytes()[8 - width..]);
            }
        }
        if fix {
            fix_checksums(&mut bytes);
        }
        run_op(base, bytes, op, writable);
    }
}

fn open_base(base: &Base, storage: MemStorage, options: OpenOptions) -> Vhd<MemStorage> {
    match &base.parent {
        Some(p) => {
            let parent = Vhd::open(MemStorage::from_vec(p.clone()), OpenOptions::new()).unwrap();
            Vhd::open_with_parent(storage, Box::new(parent), options).unwrap()
        }
        None => Vhd::open(storage, options).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the parent locator entries say, compaction succeeds, never grows the file and
    /// keeps the contents (open ignores payloads outside the file, and so must compact).
    #[test]
    fn compact_succeeds_whatever_the_locators_say(
        which in 0usize..3,
        edits in prop::collection::vec((0usize..8, any::<u32>(), any::<u32>(), value()), 1..4),
    ) {
        let base = &bases()[which];
        let mut bytes = base.bytes.clone();
        for &(index, space, length, offset) in &edits {
            set_locator(&mut bytes, index, space, length, offset);
        }
        fix_checksums(&mut bytes);
        let len = bytes.len() as u64;
        let before = read_all(&open_base(base, MemStorage::from_vec(bytes.clone()), OpenOptions::new()), MIB as usize);
        let storage = MemStorage::from_vec(bytes).with_limit(len + GROWTH_LIMIT);
        let mut vhd = open_base(base, storage, OpenOptions::new().writable(true));
        let report = ops::compact(&mut vhd, None, &mut NoProgress);
        prop_assert!(report.is_ok(), "{:?}", report);
        prop_assert!(report.unwrap().new_len <= len);
        let after = open_base(base, vhd.into_storage(), OpenOptions::new());
        prop_assert!(read_all(&after, MIB as usize) == before);
    }
}

/// A raw source that is not whole sectors converts to a disk padded with zeros to the next
/// sector, as `qemu-img convert -O vpc` makes it (it was refused as an invalid size).
#[test]
fn convert_pads_a_source_of_partial_sectors() {
    for len in [1000usize, 1, 511, 513, 4096 + 7] {
        let data = pattern(len as u64, len);
        let src = vhd_format::RawDisk::new(MemStorage::from_vec(data.clone()), false).unwrap();
        for target in [
            ops::Target::Fixed,
            ops::Target::Dynamic { block_size: 4096 },
        ] {
            let vhd = ops::convert_to_vhd(
                &src,
                MemStorage::new(),
                target,
                &opts(0, 9),
                &mut NoProgress,
            )
            .unwrap();
            let want = (len as u64).next_multiple_of(512);
            assert_eq!(vhd.size(), want, "{len} {target:?}");
            let got = read_all(&vhd, 4096);
            assert_eq!(&got[..len], &data[..], "{len} {target:?}");
            assert!(got[len..].iter().all(|b| *b == 0), "{len} {target:?}");
            assert!(ops::check(vhd.storage()).unwrap().is_clean());
        }
    }
}

/// A parent whose file name holds a `\` (an ordinary character here) is found again: the
/// locators write it as a Windows separator, so the parent name and the absolute locator are
/// also tried literally. The child beside it opened with the default policy, and a child in
/// another directory with absolute locators followed. Both failed before (`\` read as `/`).
#[test]
fn a_parent_name_with_a_backslash_resolves() {
    let dir = common::TempDir::new("snapshot-backslash");
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    let parent = dir.join("p\\q.vhd");
    let f = common::create_file(&parent);
    let mut p = create_dynamic(f, &opts(4 * MIB, 10)).unwrap();
    p.write_at(512, &[0x5A; 512]).unwrap();
    drop(p);
    let anywhere = vhd_format::ParentPolicy::anywhere();
    for (child, policy) in [
        (dir.join("c.vhd"), vhd_format::ParentPolicy::default()),
        (other.join("c.vhd"), anywhere.clone()),
    ] {
        drop(vhd_format::snapshot(&parent, &child, &opts(0, 11), &anywhere).unwrap());
        let c = Vhd::open_path(&child, OpenOptions::new(), &policy).unwrap();
        let mut buf = [0u8; 512];
        c.read_at(512, &mut buf).unwrap();
        assert_eq!(buf, [0x5A; 512], "{}", child.display());
    }
}

/// A parent whose path is not valid Unicode cannot be recorded (the locators and the name are
/// UTF-16): the snapshot is refused and no child is left. Before, the child recorded the
/// lossy form and could never open.
#[test]
fn a_parent_path_that_is_not_unicode_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let dir = common::TempDir::new("snapshot-not-unicode");
    let parent = dir
        .join("x")
        .with_file_name(std::ffi::OsStr::from_bytes(b"p\xff.vhd"));
    let child = dir.join("c.vhd");
    let f = common::create_file(&parent);
    drop(create_dynamic(f, &opts(4 * MIB, 10)).unwrap());
    let e = vhd_format::snapshot(&parent, &child, &opts(0, 11), &Default::default()).unwrap_err();
    assert!(
        matches!(e, vhd_format::SnapshotError::NotUnicode(_)),
        "{e:?}"
    );
    assert!(!child.exists());
}
