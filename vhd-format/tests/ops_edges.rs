//! Where compact, expand and repair draw their lines: which blocks compact asks the caller
//! about, where a grown BAT goes, an old 511-byte footer, blocks cut short or pointing outside
//! the data, and repair's exact actions.

mod common;

use common::{fix_checksums, pattern, put, set_locator, HEADER};
use vhd_format::defs::{Uuid, VhdTime};
use vhd_format::ops::{self, NoProgress};
use vhd_format::{
    create_dynamic, create_fixed, CreateOptions, Disk, MemStorage, OpenOptions, Storage, Vhd,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn opts(size: u64, id: u8) -> CreateOptions {
    CreateOptions::new(size)
        .unique_id(Uuid([id; 16]))
        .timestamp(VhdTime(1000))
}

/// A BAT one entry longer than the size needs (qemu before 5.0 wrote these), whose extra
/// entry is allocated: that block holds no sector of the disk, so the caller's `unused` is
/// never asked about it (it would be asked about an empty range).
#[test]
fn compact_asks_unused_only_about_blocks_inside_the_disk() {
    let mut d =
        create_dynamic(MemStorage::new(), &opts(4 * MIB, 6).block_size(MIB as u32)).unwrap();
    d.write_at(3 * MIB, &[5; 4096]).unwrap();
    let mut bytes = d.into_storage().into_vec();
    let footer = bytes.split_off(bytes.len() - 512);
    let extra_sector = (bytes.len() / 512) as u32;
    bytes.extend_from_slice(&[0xFF; 512]);
    bytes.extend_from_slice(&[7; MIB as usize]);
    bytes.extend_from_slice(&footer);
    put(&mut bytes, HEADER + 28, &5u32.to_be_bytes());
    put(&mut bytes, 1536 + 16, &extra_sector.to_be_bytes());
    fix_checksums(&mut bytes);
    let mut vhd = Vhd::open(
        MemStorage::from_vec(bytes),
        OpenOptions::new().writable(true),
    )
    .unwrap();
    let asked = std::cell::RefCell::new(Vec::new());
    let unused = |offset: u64, len: u64| {
        asked.borrow_mut().push((offset, len));
        true
    };
    let report = ops::compact(&mut vhd, Some(&unused), &mut NoProgress).unwrap();
    assert_eq!(asked.into_inner(), [(3 * MIB, MIB)]);
    assert_eq!((report.dropped_unused, report.dropped_zero), (1, 0));
    assert_eq!(vhd.bat().unwrap()[3..], [u32::MAX, 4]);
}

/// An old fixed disk with a 511-byte footer grows like any other: the new footer is a whole
/// sector after the new size, and what was the short footer reads as zeros.
#[test]
fn expand_grows_a_fixed_disk_with_a_511_byte_footer() {
    let mut vhd = create_fixed(MemStorage::new(), &opts(MIB, 12)).unwrap();
    vhd.write_at(MIB - 4096, &[0xcd; 4096]).unwrap();
    let mut bytes = vhd.into_storage().into_vec();
    assert_eq!(bytes.pop(), Some(0));
    let mut vhd = Vhd::open(
        MemStorage::from_vec(bytes),
        OpenOptions::new().writable(true),
    )
    .unwrap();
    ops::expand(&mut vhd, 2 * MIB).unwrap();
    assert_eq!(vhd.storage().len().unwrap(), 2 * MIB + 512);
    assert!(ops::check(vhd.storage()).unwrap().is_clean());
    let reopened = Vhd::open(vhd.into_storage(), OpenOptions::new()).unwrap();
    assert_eq!(reopened.size(), 2 * MIB);
    let mut b = vec![0u8; 8192];
    reopened.read_at(MIB - 4096, &mut b).unwrap();
    assert!(b[..4096].iter().all(|&x| x == 0xcd));
    assert!(b[4096..].iter().all(|&x| x == 0));
}

/// Where expand puts a grown BAT: in place while it still ends at or before the first thing
/// stored after it (a block, or locator data, which a dynamic disk may carry too), at the
/// end of the file otherwise.
#[test]
fn expand_grows_the_bat_in_place_only_when_it_fits() {
    let table_offset = |vhd: &Vhd<MemStorage>| {
        let h = &vhd.storage().as_slice()[HEADER..HEADER + 1024];
        u64::from_be_bytes(h[16..24].try_into().unwrap())
    };
    let small = || {
        let mut vhd =
            create_dynamic(MemStorage::new(), &opts(MIB, 13).block_size(64 << 10)).unwrap();
        vhd.write_at(0, &[6; 512]).unwrap();
        vhd
    };
    // 16 entries at 1536, the first block at 2048. 128 entries (512 bytes) end exactly there.
    let mut vhd = small();
    ops::expand(&mut vhd, 8 * MIB).unwrap();
    assert_eq!(table_offset(&vhd), 1536);
    // 129 entries do not.
    let mut vhd = small();
    ops::expand(&mut vhd, 8 * MIB + (64 << 10)).unwrap();
    assert!(table_offset(&vhd) > 2048 + (64 << 10));
    assert!(ops::check(vhd.storage()).unwrap().is_clean());
    let mut b = [0u8; 512];
    vhd.read_at(0, &mut b).unwrap();
    assert_eq!(b, [6; 512]);

    // No block, but locator data at 2048: the BAT must not grow over it.
    let mut bytes = create_dynamic(MemStorage::new(), &opts(MIB, 14).block_size(64 << 10))
        .unwrap()
        .into_storage()
        .into_vec();
    let footer = bytes.split_off(2048);
    bytes.extend_from_slice(&[0x5a; 512]);
    bytes.extend_from_slice(&footer);
    set_locator(&mut bytes, 0, 512, 512, 2048);
    fix_checksums(&mut bytes);
    let mut vhd = Vhd::open(
        MemStorage::from_vec(bytes),
        OpenOptions::new().writable(true),
    )
    .unwrap();
    ops::expand(&mut vhd, 16 * MIB).unwrap();
    assert_eq!(table_offset(&vhd), 2560);
    assert_eq!(&vhd.storage().as_slice()[2048..2560], &[0x5a; 512]);
    let reopened = Vhd::open(vhd.into_storage(), OpenOptions::new()).unwrap();
    assert_eq!(reopened.size(), 16 * MIB);
}

/// The same with the default 2 MiB blocks: a block cut short is extended, not cleared.
#[test]
fn repair_keeps_the_data_of_a_2mib_block_cut_short() {
    let mut vhd = create_dynamic(MemStorage::new(), &opts(8 * MIB, 15)).unwrap();
    vhd.write_at(6 * MIB, &pattern(4, 5000)).unwrap();
    let bytes = vhd.into_storage().into_vec();
    let mut storage = MemStorage::from_vec(bytes[..bytes.len() - 513].to_vec());
    let actions = ops::repair(&mut storage).unwrap();
    let (cut, whole) = ((bytes.len() - 513) as u64, (bytes.len() - 512) as u64);
    assert_eq!(
        actions,
        [
            ops::RepairAction::Extended {
                from: cut,
                to: whole
            },
            ops::RepairAction::RewroteTailFooter
        ]
    );
    assert_eq!(storage.as_slice(), &bytes[..]);

    // Unreferenced data before the footer: the footer moves down and the file is cut.
    let mut trailing = bytes.clone();
    trailing.splice(bytes.len() - 512..bytes.len() - 512, [0u8; 4096]);
    let mut storage = MemStorage::from_vec(trailing);
    let actions = ops::repair(&mut storage).unwrap();
    assert_eq!(
        actions,
        [
            ops::RepairAction::Truncated {
                from: whole + 512 + 4096,
                to: whole
            },
            ops::RepairAction::RewroteTailFooter
        ]
    );
    assert_eq!(storage.as_slice(), &bytes[..]);

    // A BAT one entry longer than needed is left as it is (qemu before 5.0 wrote these), and
    // that is no reason to call the disk unrepairable.
    let mut long_bat = bytes.clone();
    put(&mut long_bat, HEADER + 28, &5u32.to_be_bytes());
    fix_checksums(&mut long_bat);
    let mut storage = MemStorage::from_vec(long_bat.clone());
    assert_eq!(ops::repair(&mut storage).unwrap(), []);
    assert_eq!(storage.as_slice(), &long_bat[..]);
}

/// BAT entries that point past the end of an intact file, or into the metadata, are cleared
/// on disk (the entry itself, not its neighbours); so is, in a file cut short, a block that
/// would start inside a BAT of several sectors rather than after it.
#[test]
fn repair_clears_bat_entries_that_point_outside_the_data() {
    let mut vhd =
        create_dynamic(MemStorage::new(), &opts(4 * MIB, 16).block_size(MIB as u32)).unwrap();
    vhd.write_at(0, &[1; 4096]).unwrap();
    let good = vhd.into_storage().into_vec();
    let bat = 1536;
    for (block, sector) in [(2usize, (good.len() / 512) as u32), (3, 1)] {
        let mut bytes = good.clone();
        put(&mut bytes, bat + 4 * block, &sector.to_be_bytes());
        let mut storage = MemStorage::from_vec(bytes);
        let actions = ops::repair(&mut storage).unwrap();
        assert_eq!(
            actions,
            [ops::RepairAction::ClearedBatEntry {
                block: block as u32,
                sector
            }]
        );
        assert_eq!(storage.as_slice(), &good[..], "block {block}");
    }

    // 2,000 entries of 64 KiB blocks: the BAT spans 1,536..9,728. The tail footer is cut
    // off and entry 0 points at sector 10, inside the BAT, its block running past the end.
    let mut bytes = create_dynamic(
        MemStorage::new(),
        &opts(2000 * 64 * KIB, 17).block_size(64 << 10),
    )
    .unwrap()
    .into_storage()
    .into_vec();
    assert_eq!(bytes.len(), 9728 + 512);
    bytes.truncate(9728);
    put(&mut bytes, bat, &10u32.to_be_bytes());
    let mut storage = MemStorage::from_vec(bytes);
    let actions = ops::repair(&mut storage).unwrap();
    assert!(
        actions.contains(&ops::RepairAction::ClearedBatEntry {
            block: 0,
            sector: 10
        }),
        "{actions:?}"
    );
    assert!(ops::check(&storage).unwrap().is_clean());
}
