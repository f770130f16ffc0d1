//! Golden bytes: footers and headers built by hand from the spec's offset tables must equal what
//! the library writes, and a footer and header written by qemu must be reproduced byte for byte
//! from their parsed fields.

mod common;

use vhd_format::defs::{
    checksum, DiskType, DynamicHeader, Footer, Geometry, ParentLocatorEntry, PlatformCode, Uuid,
    VhdTime,
};
use zerocopy::byteorder::big_endian::{U32, U64};
use zerocopy::{FromBytes, IntoBytes};

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The spec's checksum, written out longhand: one's complement of the byte sum without the field.
fn spec_checksum(buf: &[u8], field: usize) -> u32 {
    let mut sum = 0u32;
    for (i, &b) in buf.iter().enumerate() {
        if i < field || i >= field + 4 {
            sum = sum.wrapping_add(u32::from(b));
        }
    }
    !sum
}

#[test]
fn footer_matches_the_spec_table() {
    let size = 100u64 << 20;
    let id = Uuid([0x5a; 16]);
    let mut want = [0u8; 512];
    put(&mut want, 0, b"conectix");
    put(&mut want, 8, &2u32.to_be_bytes());
    put(&mut want, 12, &0x0001_0000u32.to_be_bytes());
    put(&mut want, 16, &512u64.to_be_bytes());
    put(&mut want, 24, &0x1234_5678u32.to_be_bytes());
    put(&mut want, 28, b"win ");
    put(&mut want, 32, &0x000a_0000u32.to_be_bytes());
    put(&mut want, 36, b"Wi2k");
    put(&mut want, 40, &size.to_be_bytes());
    put(&mut want, 48, &size.to_be_bytes());
    // 100 MiB → 1003/12/17 (spec CHS).
    put(&mut want, 56, &1003u16.to_be_bytes());
    want[58] = 12;
    want[59] = 17;
    put(&mut want, 60, &3u32.to_be_bytes());
    put(&mut want, 68, &id.0);
    let sum = spec_checksum(&want, 64);
    put(&mut want, 64, &sum.to_be_bytes());

    let ours = Footer::new(DiskType::DYNAMIC, size, Some(512), VhdTime(0x1234_5678), id);
    assert_eq!(ours.as_bytes(), &want[..]);
    assert_eq!(checksum(&want, 64), sum);
    let parsed = Footer::read_from_bytes(&want).unwrap();
    assert!(parsed.checksum_ok());
    assert_eq!(
        parsed.geometry(),
        Geometry {
            cylinders: 1003,
            heads: 12,
            sectors_per_track: 17
        }
    );
    assert_eq!(parsed.as_bytes(), &want[..]);
}

#[test]
fn dynamic_header_matches_the_spec_table() {
    let mut want = [0u8; 1024];
    put(&mut want, 0, b"cxsparse");
    put(&mut want, 8, &[0xff; 8]);
    put(&mut want, 16, &1536u64.to_be_bytes());
    put(&mut want, 24, &0x0001_0000u32.to_be_bytes());
    put(&mut want, 28, &50u32.to_be_bytes());
    put(&mut want, 32, &(2u32 << 20).to_be_bytes());
    put(&mut want, 40, &[0x77; 16]);
    put(&mut want, 56, &0xabcdu32.to_be_bytes());
    // "p.vhd" in UTF-16BE at 64.
    put(
        &mut want,
        64,
        &[0, b'p', 0, b'.', 0, b'v', 0, b'h', 0, b'd'],
    );
    // Locator 1 at 576 + 24: W2ru, space 512, length 14, offset 0x800.
    let at = 576 + 24;
    put(&mut want, at, b"W2ru");
    put(&mut want, at + 4, &512u32.to_be_bytes());
    put(&mut want, at + 8, &14u32.to_be_bytes());
    put(&mut want, at + 16, &0x800u64.to_be_bytes());
    let sum = spec_checksum(&want, 36);
    put(&mut want, 36, &sum.to_be_bytes());

    let mut h = DynamicHeader::new(1536, 50, 2 << 20);
    h.parent_unique_id = [0x77; 16];
    h.parent_timestamp = U32::new(0xabcd);
    assert!(h.set_parent_name("p.vhd"));
    h.parent_locators[1] = ParentLocatorEntry {
        platform_code: U32::new(PlatformCode::W2RU.0),
        platform_data_space: U32::new(512),
        platform_data_length: U32::new(14),
        reserved: U32::new(0),
        platform_data_offset: U64::new(0x800),
    };
    h.update_checksum();
    assert_eq!(h.as_bytes(), &want[..]);
    assert_eq!(&want[at..at + 4], &PlatformCode::W2RU.0.to_be_bytes());
}

#[test]
fn qemu_footer_and_header_round_trip_byte_for_byte() {
    if !common::peer("qemu-img") {
        return;
    }
    let dir = common::TempDir::new("golden");
    let path = dir.path().join("q.vhd");
    let status = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "vpc", "-o", "subformat=dynamic"])
        .arg(&path)
        .arg("100M")
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&path).unwrap();
    let tail = &bytes[bytes.len() - 512..];
    assert_eq!(&bytes[..512], tail, "qemu writes identical footer copies");
    let footer = Footer::read_from_bytes(tail).unwrap();
    assert!(footer.checksum_ok());
    assert_eq!(footer.as_bytes(), tail);
    // Rebuilt from its parsed fields with our constructor, the footer is qemu's byte for byte.
    let mut rebuilt = Footer::new(
        footer.disk_type(),
        footer.current_size.get(),
        footer.data_offset(),
        footer.timestamp(),
        footer.unique_id(),
    );
    rebuilt.creator_application = footer.creator_application;
    rebuilt.creator_version = footer.creator_version;
    rebuilt.original_size = footer.original_size;
    rebuilt.disk_geometry = footer.disk_geometry;
    rebuilt.update_checksum();
    assert_eq!(rebuilt.as_bytes(), tail);
    // qemu rounds the size up to a CHS product (the spec rounds down): 1004/12/17.
    assert_eq!(
        footer.geometry(),
        Geometry {
            cylinders: 1004,
            heads: 12,
            sectors_per_track: 17
        }
    );

    let header_bytes = &bytes[512..1536];
    let header = DynamicHeader::read_from_bytes(header_bytes).unwrap();
    assert!(header.checksum_ok());
    let mut ours = DynamicHeader::new(
        header.table_offset.get(),
        header.max_table_entries.get(),
        header.block_size.get(),
    );
    ours.update_checksum();
    assert_eq!(ours.as_bytes(), header_bytes);
}
