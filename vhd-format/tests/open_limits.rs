//! Where opening draws its lines, each tested at the line and one step past it: the smallest
//! file, a fixed disk's data against its footer, a header or BAT that ends exactly at the end
//! of a cut-off file, the size each [`SizePolicy`] reports, blocks that share file space
//! through a chain of partial overlaps, and a parent opened writable on request.

mod common;

use common::{link_to, TempDir};
use vhd_format::defs::{checksum, DynamicHeader, Geometry};
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, CreateOptions, Disk, MemStorage, OpenError,
    OpenOptions, ParentPolicy, SizePolicy, Vhd, Warning,
};
use zerocopy::{FromBytes, IntoBytes};

const KIB: u64 = 1 << 10;

fn open(bytes: Vec<u8>, options: OpenOptions) -> Result<Vhd<MemStorage>, OpenError> {
    Vhd::open(MemStorage::from_vec(bytes), options)
}

/// Rewrites the footer checksum of the 512 bytes at `at` (a footer's checksum is at 64).
fn fix_footer(bytes: &mut [u8], at: usize) {
    let sum = checksum(&bytes[at..at + 512], 64);
    bytes[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
}

/// Sets the CHS geometry (at 56 in a footer) of the footer at `at`.
fn set_geometry(bytes: &mut [u8], at: usize, (c, h, s): (u16, u8, u8)) {
    bytes[at + 56..at + 58].copy_from_slice(&c.to_be_bytes());
    bytes[at + 58] = h;
    bytes[at + 59] = s;
    fix_footer(bytes, at);
}

/// Writes a 1 MiB dynamic parent `p.vhd` and an empty differencing child `c.vhd` (whose
/// locators name `.\\p.vhd`) into `dir`; returns the child's path.
fn parent_and_child(dir: &TempDir) -> std::path::PathBuf {
    let (parent_path, child_path) = (dir.join("p.vhd"), dir.join("c.vhd"));
    let parent = create_dynamic(
        common::create_file(&parent_path),
        &CreateOptions::new(KIB * KIB),
    )
    .unwrap();
    let link = link_to(&parent);
    create_differencing(
        common::create_file(&child_path),
        Box::new(parent),
        &link,
        &CreateOptions::new(0),
    )
    .unwrap();
    child_path
}

#[test]
fn a_file_under_one_sector_is_too_small_and_one_sector_is_read() {
    let e = open(vec![0; 511], OpenOptions::new()).unwrap_err();
    assert!(matches!(e, OpenError::TooSmall { len: 511 }), "{e:?}");
    let e = open(vec![0; 512], OpenOptions::new()).unwrap_err();
    assert!(matches!(e, OpenError::BadFooter { offset: 0, .. }), "{e:?}");
}

/// A fixed disk needs its whole `current_size` of data before the footer: one byte less is
/// truncated. (With Virtual PC's old 511-byte footer a file one byte short is no longer 511
/// mod 512, so it is the footer that is not found; a sector short is truncated.)
#[test]
fn a_fixed_disk_short_of_data_is_truncated() {
    let size = 64 * KIB;
    let disk = create_fixed(MemStorage::new(), &CreateOptions::new(size)).unwrap();
    let whole = disk.into_storage().into_vec();
    for old_footer in [false, true] {
        let mut bytes = whole.clone();
        if old_footer {
            assert_eq!(bytes.pop(), Some(0), "the footer's last byte is reserved");
        }
        assert_eq!(
            open(bytes.clone(), OpenOptions::new()).unwrap().size(),
            size
        );
        let short = if old_footer { 512 } else { 1 };
        bytes.drain(..short);
        let e = open(bytes, OpenOptions::new()).unwrap_err();
        assert!(
            matches!(e, OpenError::FixedTruncated { size: s, .. } if s == size),
            "old footer {old_footer}: {e:?}"
        );
    }
    let mut bytes = whole;
    bytes.pop();
    bytes.remove(0);
    let e = open(bytes, OpenOptions::new()).unwrap_err();
    assert!(matches!(e, OpenError::BadFooter { .. }), "{e:?}");
}

/// Sized by its geometry, a fixed disk whose C·H·S·512 exceeds its data is truncated, even
/// though its `current_size` of data is all there.
#[test]
fn a_fixed_disk_sized_by_a_larger_geometry_is_truncated() {
    let size = 64 * KIB;
    let disk = create_fixed(MemStorage::new(), &CreateOptions::new(size)).unwrap();
    let mut whole = disk.into_storage().into_vec();
    let at = whole.len() - 512;
    // 1·3·43 sectors: 66,048 bytes, one sector more than the 65,536 of data (and less than
    // the file, so only the footer's position tells).
    set_geometry(&mut whole, at, (1, 3, 43));
    for old_footer in [false, true] {
        let mut bytes = whole.clone();
        if old_footer {
            assert_eq!(bytes.pop(), Some(0));
        }
        let by_size = open(bytes.clone(), OpenOptions::new()).unwrap();
        assert_eq!(by_size.size(), size);
        let e = open(bytes, OpenOptions::new().size_policy(SizePolicy::Chs)).unwrap_err();
        assert!(
            matches!(e, OpenError::FixedTruncated { size: 66_048, needed, .. } if needed == size + 512),
            "old footer {old_footer}: {e:?}"
        );
    }
}

/// The size each policy reports for one disk, as its creator and geometry change: qemu's rule
/// takes the geometry for `vpc ` and `qemu` images unless it is saturated.
#[test]
fn size_policies_by_creator_and_geometry() {
    let size = KIB * KIB;
    let disk = create_dynamic(MemStorage::new(), &CreateOptions::new(size)).unwrap();
    let created = disk.into_storage().into_vec();
    let tail = created.len() - 512;
    let chs = Geometry::for_size(size).size();
    assert_eq!(chs, 1_044_480);
    let saturated = (65535, 16, 255);
    for (app, geometry, want_qemu) in [
        (*b"qemu", None, chs),
        (*b"vpc ", None, chs),
        (*b"win ", None, size),
        (*b"qemu", Some(saturated), size),
    ] {
        let mut bytes = created.clone();
        for at in [0, tail] {
            bytes[at + 28..at + 32].copy_from_slice(&app);
            fix_footer(&mut bytes, at);
            if let Some(g) = geometry {
                set_geometry(&mut bytes, at, g);
            }
        }
        let what = String::from_utf8_lossy(&app);
        for (policy, want) in [
            (SizePolicy::CurrentSize, size),
            (SizePolicy::Chs, chs),
            (SizePolicy::Qemu, want_qemu),
        ] {
            if geometry.is_some() && policy == SizePolicy::Chs {
                continue; // 127 GiB: more than the BAT covers.
            }
            let vhd = open(bytes.clone(), OpenOptions::new().size_policy(policy)).unwrap();
            assert_eq!(vhd.size(), want, "{what} {geometry:?} {policy:?}");
        }
    }
}

/// A dynamic disk cut off mid-allocation keeps its head footer. Cut right after its header,
/// the header still reads (it ends exactly at the end of the file) and the BAT is missing;
/// cut right after its BAT, the disk opens with a warning and reads.
#[test]
fn a_header_or_bat_may_end_exactly_at_the_end_of_the_file() {
    let size = 4 * KIB * KIB;
    let disk = create_dynamic(MemStorage::new(), &CreateOptions::new(size)).unwrap();
    let whole = disk.into_storage().into_vec();
    // Footer copy (512), header (1024), a BAT of two entries padded to 512, footer.
    assert_eq!(whole.len(), 2560);

    let header_only = whole[..1536].to_vec();
    let (footer, header) = Vhd::probe(&MemStorage::from_vec(header_only.clone())).unwrap();
    assert_eq!(footer.current_size.get(), size);
    assert_eq!(header.unwrap().max_table_entries.get(), 2);
    let e = open(header_only, OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::BatOutOfRange {
                offset: 1536,
                entries: 2,
                file_len: 1536
            }
        ),
        "{e:?}"
    );
    let e = open(whole[..1535].to_vec(), OpenOptions::new()).unwrap_err();
    assert!(
        matches!(e, OpenError::BadHeader { offset: 512, .. }),
        "{e:?}"
    );

    // The BAT's two entries (8 bytes) end at 1544.
    let vhd = open(whole[..1544].to_vec(), OpenOptions::new()).unwrap();
    assert_eq!(vhd.warnings(), &[Warning::TailFooterInvalid]);
    let mut buf = vec![1u8; 4096];
    vhd.read_at(size - 4096, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    let e = open(whole[..1543].to_vec(), OpenOptions::new()).unwrap_err();
    assert!(
        matches!(e, OpenError::BatOutOfRange { file_len: 1543, .. }),
        "{e:?}"
    );
}

/// Blocks 0 and 1 overlap, and 1 and 2, but not 0 and 2: all three share space, found by
/// following the furthest reach rather than the first block's.
#[test]
fn a_chain_of_partial_overlaps_shares_every_block_in_it() {
    const BLOCK: u64 = 4 * KIB;
    let mut vhd = create_dynamic(
        MemStorage::new(),
        &CreateOptions::new(4 * BLOCK).block_size(BLOCK as u32),
    )
    .unwrap();
    for b in 0..4 {
        vhd.write_at(b * BLOCK, &[b as u8 + 1; 512]).unwrap();
    }
    let mut bytes = vhd.into_storage().into_vec();
    let bat = u64::from_be_bytes(bytes[512 + 16..512 + 24].try_into().unwrap()) as usize;
    let entry = |bytes: &[u8], b: usize| {
        u32::from_be_bytes(bytes[bat + 4 * b..bat + 4 * b + 4].try_into().unwrap())
    };
    // Each block spans 9 sectors (a 512-byte bitmap and 4 KiB), allocated in order.
    let s0 = entry(&bytes, 0);
    for b in 1..4 {
        assert_eq!(entry(&bytes, b), s0 + 9 * b as u32);
    }
    for (b, sector) in [(1, s0 + 5), (2, s0 + 12)] {
        bytes[bat + 4 * b..bat + 4 * b + 4].copy_from_slice(&u32::to_be_bytes(sector));
    }
    let e = open(bytes.clone(), OpenOptions::new().writable(true)).unwrap_err();
    assert!(matches!(e, OpenError::BadBatEntry { .. }), "{e:?}");
    let vhd = open(bytes, OpenOptions::new()).unwrap();
    assert_eq!(
        vhd.warnings(),
        &[Warning::BlocksShareSpace { block: 0, count: 3 }]
    );
    let mut buf = [0u8; 512];
    vhd.read_at(3 * BLOCK, &mut buf).unwrap();
    assert_eq!(buf, [4; 512], "block 3 stands alone");
}

/// `open_path` opens a differencing disk's parent read-only unless asked otherwise.
#[test]
fn the_parent_is_opened_writable_only_on_request() {
    let dir = TempDir::new("open-limits");
    let child_path = parent_and_child(&dir);
    for writable in [false, true] {
        let child = Vhd::open_path(
            &child_path,
            OpenOptions::new().writable_parent(writable),
            &ParentPolicy::anywhere(),
        )
        .unwrap();
        let parent = child.parent().unwrap().as_any();
        let parent = parent.downcast_ref::<Vhd<std::fs::File>>().unwrap();
        assert_eq!(parent.is_writable(), writable);
        assert!(!child.is_writable());
    }
}

/// The spec counts a locator's reserved space in sectors; Virtual PC and Hyper-V write bytes.
/// A space smaller than the payload can only be sectors, one equal to it is bytes. Either
/// way the child finds its parent through the locators alone, `check` finds nothing wrong,
/// and a block the child allocates does not land on a locator's payload.
#[test]
fn locator_space_in_sectors_or_exact_bytes_leads_to_the_parent() {
    for sectors in [true, false] {
        let dir = TempDir::new("open-limits-locators");
        let child_path = parent_and_child(&dir);
        let mut bytes = std::fs::read(&child_path).unwrap();
        let mut header = DynamicHeader::read_from_bytes(&bytes[512..1536]).unwrap();
        let mut used = 0;
        for entry in header.parent_locators.iter_mut() {
            let length = entry.platform_data_length.get();
            if entry.platform_code.get() != 0 {
                assert!(length > 1 && entry.platform_data_space.get() >= 512);
                let space = if sectors {
                    length.div_ceil(512)
                } else {
                    length
                };
                entry.platform_data_space.set(space);
                used += 1;
            }
        }
        assert!(used >= 2, "{used} locators");
        // A name that resolves to nothing, so that only the locators lead to the parent.
        assert!(header.set_parent_name("missing.vhd"));
        header.update_checksum();
        bytes[512..1536].copy_from_slice(header.as_bytes());
        std::fs::write(&child_path, &bytes).unwrap();

        let writable = OpenOptions::new().writable(true);
        let mut child = Vhd::open_path(&child_path, writable, &ParentPolicy::anywhere()).unwrap();
        child.write_at(0, &[0x77; 4096]).unwrap();
        drop(child);
        let child =
            Vhd::open_path(&child_path, OpenOptions::new(), &ParentPolicy::anywhere()).unwrap();
        assert!(child.parent().is_some());
        let mut buf = [0u8; 4096];
        child.read_at(0, &mut buf).unwrap();
        assert_eq!(buf, [0x77; 4096]);
        let file = std::fs::File::open(&child_path).unwrap();
        let report = vhd_format::ops::check(&file).unwrap();
        assert!(
            report.problems.is_empty(),
            "sectors {sectors}: {:?}",
            report.problems
        );
    }
}
