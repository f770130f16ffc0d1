//! Images whose BAT entries share file space (corrupt, but qemu and libvhdi read them): they
//! open read-only with a warning, never for writing, and `inspect` maps each shared block as
//! one extent, so aliases cannot multiply the allocation map.

use vhd_format::{create_dynamic, CreateOptions, Disk, MemStorage, OpenOptions, Vhd, Warning};

const BLOCK: u32 = 64 << 10;

/// A dynamic disk of `blocks` 64 KiB blocks: block 0 holds every other sector, the last
/// block one sector, and BAT entries 1 to `aliases` point at block 0's space.
fn aliased(blocks: u64, aliases: usize) -> Vec<u8> {
    let size = blocks * u64::from(BLOCK);
    let mut vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(size).block_size(BLOCK),
    )
    .unwrap();
    for s in (0..u64::from(BLOCK) / 512).step_by(2) {
        vhd.write_at(s * 512, &[0xA5; 512]).unwrap();
    }
    vhd.write_at(u64::from(BLOCK) * (blocks - 1), &[0x5A; 512])
        .unwrap();
    let mut bytes = vhd.into_storage().as_slice().to_vec();
    // The BAT: the header (at 512) names its offset.
    let bat = u64::from_be_bytes(bytes[512 + 16..512 + 24].try_into().unwrap()) as usize;
    let first: [u8; 4] = bytes[bat..bat + 4].try_into().unwrap();
    for e in 1..=aliases {
        bytes[bat + 4 * e..bat + 4 * e + 4].copy_from_slice(&first);
    }
    bytes
}

#[test]
fn shared_blocks_open_read_only_with_a_warning_and_map_compactly() {
    let (blocks, aliases) = (2048, 2000);
    let bytes = aliased(blocks, aliases);
    let writable = Vhd::open(
        MemStorage::from_vec(bytes.clone()),
        OpenOptions::new().writable(true),
    );
    assert!(writable.is_err(), "a writable open refuses shared blocks");
    let vhd = Vhd::open(MemStorage::from_vec(bytes), OpenOptions::new()).unwrap();
    assert!(
        vhd.warnings().contains(&Warning::BlocksShareSpace {
            block: 0,
            count: aliases as u32 + 1
        }),
        "{:?}",
        vhd.warnings()
    );
    // Reads follow the BAT, as qemu's do: an alias reads block 0's sectors.
    let mut buf = [0u8; 1024];
    vhd.read_at(u64::from(BLOCK) * 7, &mut buf).unwrap();
    assert_eq!((buf[0], buf[512]), (0xA5, 0));
    let inspection = vhd.inspect().unwrap();
    // Block 0, its aliases and the last block, each counted whole.
    let counted = aliases as u64 + 2;
    assert_eq!(inspection.allocated_blocks, counted);
    assert_eq!(inspection.allocated_bytes, counted * u64::from(BLOCK));
    let map = inspection.map;
    // 64 runs per aliased block would be 128,000 extents; one per block instead, merged
    // where contiguous: at most one per block plus the holes.
    assert!(map.len() <= 2 * aliases + 4, "{} extents", map.len());
    let last = map.last().unwrap();
    assert_eq!(last.start + last.length, blocks * u64::from(BLOCK));
}
