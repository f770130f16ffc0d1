//! `ops::check` finding by finding: each damage made on purpose must be reported as exactly
//! the expected list of problems, with their fields, their severity, and what `is_clean` and
//! `has_errors` make of the report. Each boundary is tested on both sides (a locator ending at
//! the end of the data, adjacent blocks, the last bitmap bit inside the disk, a 511-byte
//! footer, the smallest block size).

mod common;

use common::{fix_checksums, link_to, put, set_locator, HEADER};
use vhd_format::defs::{Uuid, VhdTime};
use vhd_format::ops::{self, CheckReport, Problem, Severity};
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, CreateOptions, Disk, MemStorage,
    StructureProblem,
};

const MIB: u64 = 1 << 20;
const FOOTER_COOKIE: [u8; 8] = *b"conectix";

fn opts(size: u64) -> CreateOptions {
    CreateOptions::new(size)
        .unique_id(Uuid([3; 16]))
        .timestamp(VhdTime(1000))
        .block_size(MIB as u32)
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Writes `value` at footer offset `at` in both footer copies.
fn put_footers(bytes: &mut [u8], at: usize, value: &[u8]) {
    let len = bytes.len();
    put(bytes, at, value);
    put(bytes, len - 512 + at, value);
}

/// The BAT offset stored in the header.
fn bat_offset(bytes: &[u8]) -> usize {
    u64::from_be_bytes(bytes[HEADER + 16..HEADER + 24].try_into().unwrap()) as usize
}

fn bat(bytes: &[u8], block: usize) -> u32 {
    be32(bytes, bat_offset(bytes) + 4 * block)
}

fn set_bat(bytes: &mut [u8], block: usize, sector: u32) {
    let at = bat_offset(bytes) + 4 * block;
    put(bytes, at, &sector.to_be_bytes());
}

/// A 4 MiB dynamic disk with 1 MiB blocks, data in blocks 1 and 3 (in that file order, so
/// they are adjacent in the file: block 3 starts where block 1 ends).
fn dynamic() -> Vec<u8> {
    let mut d = create_dynamic(MemStorage::new(), &opts(4 * MIB)).unwrap();
    d.write_at(MIB, &[0xAB; 4096]).unwrap();
    d.write_at(3 * MIB, &[0xCD; 4096]).unwrap();
    d.into_storage().into_vec()
}

/// Bytes taken by one block in the file: a 512-byte bitmap and 1 MiB of data.
const SPAN: u64 = 512 + MIB;

fn check(bytes: &[u8]) -> CheckReport {
    ops::check(&MemStorage::from_vec(bytes.to_vec())).unwrap()
}

/// Checks `bytes` and compares the findings, then what the report's summary says about them.
#[track_caller]
fn expect(bytes: &[u8], problems: &[Problem]) -> CheckReport {
    let report = check(bytes);
    assert_eq!(report.problems, problems);
    let worst = problems.iter().map(Problem::severity).max();
    assert_eq!(report.is_clean(), worst <= Some(Severity::Info));
    assert_eq!(report.has_errors(), worst == Some(Severity::Error));
    report
}

#[test]
fn a_sound_image_checks_clean_and_counts_its_blocks() {
    let bytes = dynamic();
    // The two blocks are adjacent in the file; that is no overlap.
    assert_eq!(u64::from(bat(&bytes, 3) - bat(&bytes, 1)) * 512, SPAN);
    let report = expect(&bytes, &[]);
    assert_eq!(report.allocated_blocks, 2);
    assert!(report.is_clean() && !report.has_errors());

    let fixed = create_fixed(MemStorage::new(), &opts(MIB))
        .unwrap()
        .into_storage()
        .into_vec();
    assert_eq!(expect(&fixed, &[]).allocated_blocks, 0);

    // The smallest block size there is.
    let mut d = create_dynamic(MemStorage::new(), &opts(64 << 10).block_size(512)).unwrap();
    d.write_at(1024, &[1; 512]).unwrap();
    assert_eq!(
        expect(&d.into_storage().into_vec(), &[]).allocated_blocks,
        1
    );
}

#[test]
fn severities_follow_what_each_finding_means() {
    use Severity::{Error, Info, Warning};
    let bad = StructureProblem::OutOfFile;
    let cases = [
        (Problem::SavedState, Info),
        (Problem::EmptyBitmap { block: 0 }, Info),
        (
            Problem::TailFooter {
                offset: 0,
                problem: bad,
            },
            Warning,
        ),
        (Problem::HeadFooter { problem: bad }, Warning),
        (Problem::FootersDiffer, Warning),
        (
            Problem::BatTooLarge {
                entries: 2,
                needed: 1,
            },
            Warning,
        ),
        (
            Problem::TrailingData {
                data_end: 0,
                extra: 1,
            },
            Warning,
        ),
        (Problem::UnalignedFileLength(513), Warning),
        (Problem::BitmapBeyondDisk { block: 0 }, Warning),
        (Problem::TooSmall { len: 0 }, Error),
        (
            Problem::Header {
                offset: 0,
                problem: bad,
            },
            Error,
        ),
        (
            Problem::BatTooSmall {
                entries: 1,
                needed: 2,
            },
            Error,
        ),
        (Problem::BadBlockSize(3), Error),
        (
            Problem::FixedLength {
                size: 0,
                file_len: 0,
                expected: 0,
            },
            Error,
        ),
        (
            Problem::BlocksOverlap {
                first: 0,
                first_sector: 0,
                second: 1,
                second_sector: 0,
            },
            Error,
        ),
        (Problem::Unopenable("x"), Error),
    ];
    for (problem, severity) in cases {
        assert_eq!(problem.severity(), severity, "{problem:?}");
    }
    assert!(Info < Warning && Warning < Error);
}

#[test]
fn files_without_a_usable_footer() {
    expect(&[], &[Problem::TooSmall { len: 0 }]);
    expect(&[0; 511], &[Problem::TooSmall { len: 511 }]);
    // Neither footer copy is valid: nothing else can be checked.
    let unusable = Problem::Unopenable("no valid footer");
    expect(
        &[0; 512],
        &[
            Problem::TailFooter {
                offset: 0,
                problem: StructureProblem::Cookie([0; 8]),
            },
            unusable,
        ],
    );
    // The copy at offset 0 is valid but describes a fixed disk: a fixed disk has no such
    // copy, so these are data bytes that only look like a footer, and are not used.
    let mut bytes = dynamic();
    let len = bytes.len();
    put(&mut bytes, 60, &2u32.to_be_bytes());
    fix_checksums(&mut bytes);
    put(&mut bytes, len - 512, b"garbage!");
    expect(
        &bytes,
        &[
            Problem::TailFooter {
                offset: len as u64 - 512,
                problem: StructureProblem::Cookie(*b"garbage!"),
            },
            unusable,
        ],
    );
}

#[test]
fn a_damaged_tail_footer_with_a_sound_copy() {
    let mut bytes = dynamic();
    let len = bytes.len() as u64;
    let tail = bytes.len() - 512;
    put(&mut bytes, tail, b"garbage!");
    // The copy is used; without a tail footer the data area runs to the end of the file, so
    // the damaged footer's sector is counted as unreferenced.
    expect(
        &bytes,
        &[
            Problem::TailFooter {
                offset: len - 512,
                problem: StructureProblem::Cookie(*b"garbage!"),
            },
            Problem::TrailingData {
                data_end: len - 512,
                extra: 512,
            },
        ],
    );

    // The footer moved 100 bytes up by bytes appended to the file.
    let mut bytes = dynamic();
    bytes.extend_from_slice(&[0; 100]);
    let new_len = len + 100;
    expect(
        &bytes,
        &[
            Problem::UnalignedFileLength(new_len),
            Problem::TailFooter {
                offset: new_len - 512,
                problem: StructureProblem::Cookie([0; 8]),
            },
            Problem::TrailingData {
                data_end: len - 512,
                extra: 612,
            },
        ],
    );
}

#[test]
fn an_old_511_byte_footer_is_not_an_unaligned_file() {
    let mut fixed = create_fixed(MemStorage::new(), &opts(MIB))
        .unwrap()
        .into_storage()
        .into_vec();
    // The footer's last byte is reserved (zero); old tools wrote 511 bytes.
    assert_eq!(fixed.pop(), Some(0));
    expect(&fixed, &[]);
    // 511 bytes past a sector boundary, but no footer there either.
    let mut fixed = create_fixed(MemStorage::new(), &opts(MIB))
        .unwrap()
        .into_storage()
        .into_vec();
    fixed.extend_from_slice(&[0; 511]);
    let len = fixed.len() as u64;
    expect(
        &fixed,
        &[
            Problem::UnalignedFileLength(len),
            Problem::TailFooter {
                offset: len - 512,
                problem: StructureProblem::Cookie([0; 8]),
            },
            Problem::Unopenable("no valid footer"),
        ],
    );
}

#[test]
fn footer_fields() {
    // Saved state: informational only.
    let mut bytes = dynamic();
    put_footers(&mut bytes, 84, &[1]);
    fix_checksums(&mut bytes);
    expect(&bytes, &[Problem::SavedState]);

    // A fixed disk whose size does not match its file.
    let fixed = create_fixed(MemStorage::new(), &opts(MIB))
        .unwrap()
        .into_storage()
        .into_vec();
    let set_size = |size: u64| {
        let mut b = fixed.clone();
        let len = b.len();
        put(&mut b, len - 512 + 48, &size.to_be_bytes());
        fix_checksums(&mut b);
        b
    };
    let file_len = MIB + 512;
    expect(
        &set_size(MIB - 512),
        &[Problem::FixedLength {
            size: MIB - 512,
            file_len,
            expected: MIB,
        }],
    );
    expect(
        &set_size(MIB - 100),
        &[
            Problem::UnalignedSize(MIB - 100),
            Problem::FixedLength {
                size: MIB - 100,
                file_len,
                expected: MIB + 412,
            },
        ],
    );

    let mut bytes = dynamic();
    put_footers(&mut bytes, 60, &5u32.to_be_bytes());
    fix_checksums(&mut bytes);
    expect(&bytes, &[Problem::UnsupportedDiskType(5)]);
}

#[test]
fn the_footer_copy_at_offset_zero() {
    let mut bytes = dynamic();
    put(&mut bytes, 0, b"garbage!");
    expect(
        &bytes,
        &[Problem::HeadFooter {
            problem: StructureProblem::Cookie(*b"garbage!"),
        }],
    );

    // Valid, but not the same as the tail footer (another timestamp).
    let mut bytes = dynamic();
    put(&mut bytes, 24, &2000u32.to_be_bytes());
    fix_checksums(&mut bytes);
    expect(&bytes, &[Problem::FootersDiffer]);
    assert_eq!(&bytes[..8], &FOOTER_COOKIE);
}

#[test]
fn the_dynamic_header() {
    let mut bytes = dynamic();
    put(&mut bytes, HEADER, b"garbage!");
    expect(
        &bytes,
        &[Problem::Header {
            offset: HEADER as u64,
            problem: StructureProblem::Cookie(*b"garbage!"),
        }],
    );

    // Both footers point past the end of the file.
    let mut bytes = dynamic();
    let len = bytes.len() as u64;
    put_footers(&mut bytes, 16, &len.to_be_bytes());
    fix_checksums(&mut bytes);
    expect(
        &bytes,
        &[Problem::Header {
            offset: len,
            problem: StructureProblem::OutOfFile,
        }],
    );

    for block_size in [1000u32, 256, 0] {
        let mut bytes = dynamic();
        put(&mut bytes, HEADER + 32, &block_size.to_be_bytes());
        fix_checksums(&mut bytes);
        expect(&bytes, &[Problem::BadBlockSize(block_size)]);
    }
}

#[test]
fn the_bat_against_the_size_and_the_file() {
    let with_entries = |entries: u32| {
        let mut bytes = dynamic();
        put(&mut bytes, HEADER + 28, &entries.to_be_bytes());
        fix_checksums(&mut bytes);
        bytes
    };
    // One entry more: the fifth lies in the BAT's padding, which is 0xFF (unallocated).
    expect(
        &with_entries(5),
        &[Problem::BatTooLarge {
            entries: 5,
            needed: 4,
        }],
    );
    // Allocated, over block 1's place: a block wholly past the disk's end has no sector to
    // call empty, whatever its bitmap holds.
    let mut past_the_end = with_entries(5);
    let one = bat(&past_the_end, 1);
    set_bat(&mut past_the_end, 4, one);
    let at = one as usize * 512;
    past_the_end[at..at + 512].fill(0);
    expect(
        &past_the_end,
        &[
            Problem::BatTooLarge {
                entries: 5,
                needed: 4,
            },
            Problem::EmptyBitmap { block: 1 },
            Problem::BlocksOverlap {
                first: 1,
                first_sector: one,
                second: 4,
                second_sector: one,
            },
        ],
    );
    // One entry fewer: block 3 is no longer referenced.
    let report = expect(
        &with_entries(3),
        &[
            Problem::BatTooSmall {
                entries: 3,
                needed: 4,
            },
            Problem::TrailingData {
                data_end: 2048 + SPAN,
                extra: SPAN,
            },
        ],
    );
    assert_eq!(report.allocated_blocks, 1);

    // A BAT that runs past the end of the file.
    let mut bytes = dynamic();
    let len = bytes.len() as u64;
    put(&mut bytes, HEADER + 16, &(len - 8).to_be_bytes());
    fix_checksums(&mut bytes);
    expect(
        &bytes,
        &[Problem::BatOutOfFile {
            offset: len - 8,
            entries: 4,
        }],
    );
    // Ending exactly at the end of the file, it is read (its entries then point anywhere).
    let mut bytes = dynamic();
    put(&mut bytes, HEADER + 16, &(len - 16).to_be_bytes());
    fix_checksums(&mut bytes);
    assert!(!check(&bytes)
        .problems
        .iter()
        .any(|p| matches!(p, Problem::BatOutOfFile { .. })));
}

#[test]
fn blocks_outside_the_data_or_over_metadata() {
    let bytes = dynamic();
    let len = bytes.len() as u64;
    let data_end = len - 512;

    // Block 2 placed right after block 3: it ends past the tail footer.
    let mut beyond = bytes.clone();
    let after = bat(&bytes, 3) + (SPAN / 512) as u32;
    set_bat(&mut beyond, 2, after);
    expect(
        &beyond,
        &[Problem::BlockBeyondEof {
            block: 2,
            sector: after,
            data_end,
        }],
    );

    for sector in [0, 1, 3] {
        let mut over = bytes.clone();
        set_bat(&mut over, 2, sector);
        let report = expect(
            &over,
            &[Problem::BlockOverlapsMetadata { block: 2, sector }],
        );
        assert_eq!(report.allocated_blocks, 2, "sector {sector}");
    }

    // Block 2 at the same place as block 1; then one sector into it, so that it also
    // reaches one sector into block 3 (each neighbour in file order is reported).
    let (one, three) = (bat(&bytes, 1), bat(&bytes, 3));
    let overlap = |first, first_sector, second, second_sector| Problem::BlocksOverlap {
        first,
        first_sector,
        second,
        second_sector,
    };
    let mut shared = bytes.clone();
    set_bat(&mut shared, 2, one);
    assert_eq!(
        expect(&shared, &[overlap(1, one, 2, one)]).allocated_blocks,
        3
    );
    let mut shifted = bytes.clone();
    set_bat(&mut shifted, 2, one + 1);
    expect(
        &shifted,
        &[overlap(1, one, 2, one + 1), overlap(2, one + 1, 3, three)],
    );

    // Data appended between the last block and the tail footer.
    let mut trailing = bytes.clone();
    trailing.splice(data_end as usize..data_end as usize, [0u8; 4096]);
    expect(
        &trailing,
        &[Problem::TrailingData {
            data_end,
            extra: 4096,
        }],
    );
}

#[test]
fn locator_payloads_against_the_file_and_the_blocks() {
    let bytes = dynamic();
    let data_end = bytes.len() as u64 - 512;
    let mut outside = bytes.clone();
    set_locator(&mut outside, 2, 512, 512, data_end);
    fix_checksums(&mut outside);
    expect(
        &outside,
        &[Problem::LocatorOutOfFile {
            index: 2,
            offset: data_end,
        }],
    );

    // A payload sector inserted before the first block, ending exactly where that block now
    // starts: adjacent, not overlapping.
    let mut before = bytes[..2048].to_vec();
    before.extend_from_slice(&[0x11; 512]);
    before.extend_from_slice(&bytes[2048..]);
    for block in [1, 3] {
        let sector = bat(&before, block);
        set_bat(&mut before, block, sector + 1);
    }
    set_locator(&mut before, 2, 512, 512, 2048);
    fix_checksums(&mut before);
    expect(&before, &[]);

    // Ending exactly at the end of the data, it is in the file, inside block 3.
    let mut inside = bytes.clone();
    set_locator(&mut inside, 2, 512, 512, data_end - 512);
    fix_checksums(&mut inside);
    expect(
        &inside,
        &[Problem::BlockOverlapsLocator {
            block: 3,
            sector: bat(&bytes, 3),
            index: 2,
        }],
    );
}

#[test]
fn bitmaps_that_mark_nothing() {
    let bytes = dynamic();
    let bitmap = bat(&bytes, 1) as usize * 512;
    let with_first_byte = |value: u8| {
        let mut b = bytes.clone();
        b[bitmap..bitmap + 512].fill(0);
        b[bitmap] = value;
        b
    };
    let report = expect(&with_first_byte(0), &[Problem::EmptyBitmap { block: 1 }]);
    assert_eq!(report.allocated_blocks, 2);
    // Only the first sector marked, or only a later one: not empty.
    expect(&with_first_byte(0x80), &[]);
    expect(&with_first_byte(0x04), &[]);
    // Bits in the padding after the block's 2,048 sectors (bytes 256..512) mark nothing.
    let mut padded = with_first_byte(0);
    padded[bitmap + 256..bitmap + 512].fill(0xFF);
    expect(&padded, &[Problem::EmptyBitmap { block: 1 }]);
}

#[test]
fn bitmap_bits_past_the_end_of_the_disk() {
    // A child of 3.5 MiB: its last block holds 1024 sectors of the disk out of 2048.
    let size = 3 * MIB + MIB / 2;
    let parent = create_dynamic(MemStorage::new(), &opts(size)).unwrap();
    let link = link_to(&parent);
    let mut child =
        create_differencing(MemStorage::new(), Box::new(parent), &link, &opts(0)).unwrap();
    child.write_at(3 * MIB, &[9; 512]).unwrap();
    child.write_at(0, &[9; 512]).unwrap();
    let bytes = child.into_storage().into_vec();
    expect(&bytes, &[]);
    // Block 0 lies wholly inside the disk: a bit in its bitmap's padding (after its 2,048
    // sectors) is not past the end of the disk.
    let mut padded = bytes.clone();
    padded[bat(&bytes, 0) as usize * 512 + 256] = 0x80;
    expect(&padded, &[]);
    let bitmap = bat(&bytes, 3) as usize * 512;
    let with_bit = |sector: usize| {
        let mut b = bytes.clone();
        b[bitmap + sector / 8] |= 0x80 >> (sector % 8);
        b
    };
    // The disk's last sector, then the first sector past it.
    expect(&with_bit(1023), &[]);
    expect(&with_bit(1024), &[Problem::BitmapBeyondDisk { block: 3 }]);
    expect(&with_bit(2047), &[Problem::BitmapBeyondDisk { block: 3 }]);

    // A dynamic disk's bitmap is all ones, past the end too (as qemu writes it): not flagged.
    let mut d = create_dynamic(MemStorage::new(), &opts(size)).unwrap();
    d.write_at(3 * MIB, &[9; 512]).unwrap();
    let mut bytes = d.into_storage().into_vec();
    let bitmap = bat(&bytes, 3) as usize * 512;
    bytes[bitmap..bitmap + 256].fill(0xFF);
    expect(&bytes, &[]);
}
