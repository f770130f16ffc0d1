//! The definitions layer on arbitrary input: footer and dynamic header parsing and accessors,
//! parent names, geometry for any size, bitmap runs against a bit-by-bit model, checksums,
//! timestamps and unique ids.
//!
//! Input layout: the first [`PARAMS_LEN`] bytes are numeric parameters (decoded with
//! `arbitrary`); the rest is parsed as a footer, as a dynamic header (at 0 and, when long
//! enough, at 512, so a seed can be the first 1536 bytes of a real dynamic image) and as a
//! sector bitmap.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vhd_format::defs::{
    bitmap_bytes, checksum, DynamicHeader, Footer, Geometry, SectorBitmap, SectorBitmapMut, Uuid,
    VhdTime,
};
use vhd_format::SizePolicy;
use zerocopy::FromBytes;

/// Bytes of parameters in front of the structure bytes.
const PARAMS_LEN: usize = 32;

#[derive(Arbitrary, Debug)]
struct Params {
    size: u64,
    block_size: u32,
    first: u16,
    count: u16,
    unix: u64,
    checksum_at: u16,
}

fuzz_target!(|data: &[u8]| {
    if data.len() < PARAMS_LEN {
        return;
    }
    let (params, rest) = data.split_at(PARAMS_LEN);
    let Ok(p) = Params::arbitrary(&mut Unstructured::new(params)) else {
        return;
    };
    geometry(p.size);
    bitmaps(rest, &p);
    let _ = bitmap_bytes(p.block_size);
    let bb = bitmap_bytes(p.block_size);
    assert_eq!(bb % 512, 0);
    assert!(u64::from(bb) * 8 >= u64::from(p.block_size / 512));
    let t = VhdTime::from_unix(p.unix);
    assert!(t.to_unix() >= 946_684_800);
    let _ = checksum(rest, usize::from(p.checksum_at));
    if let Ok((footer, _)) = Footer::read_from_prefix(rest) {
        footer_checks(footer);
    }
    for at in [0, 512] {
        if let Some(Ok((header, _))) = rest.get(at..).map(DynamicHeader::read_from_prefix) {
            header_checks(header);
        }
    }
    if let Ok(text) = core::str::from_utf8(rest) {
        if let Some(id) = Uuid::parse(text) {
            assert_eq!(id.to_string(), text.to_ascii_lowercase());
        }
    }
});

fn geometry(size: u64) {
    let g = Geometry::for_size(size);
    assert!(g.size() <= size, "{g} covers more than {size}");
    assert!(g.heads <= 16);
    let _ = (g.is_saturated(), g.to_string());
}

fn bitmaps(bytes: &[u8], p: &Params) {
    let bytes = &bytes[..bytes.len().min(1024)];
    let bits = SectorBitmap(bytes);
    let first = usize::from(p.first) % (bytes.len() * 8 + 16);
    let limit = usize::from(p.count) % 4096 + 1;
    // `run` against a bit-by-bit model.
    let (state, n) = bits.run(first, limit);
    assert_eq!(state, bits.get(first));
    let mut model = 1;
    while model < limit && bits.get(first + model) == state {
        model += 1;
    }
    assert_eq!(n, model, "run({first}, {limit}) over {bytes:02x?}");
    // `set_range` marks exactly its range (within the bitmap) and nothing else.
    let mut copy = bytes.to_vec();
    SectorBitmapMut(&mut copy).set_range(first, limit);
    let after = SectorBitmap(&copy);
    for k in 0..bytes.len() * 8 {
        let inside = (first..first + limit).contains(&k);
        assert_eq!(
            after.get(k),
            inside || bits.get(k),
            "bit {k} after set_range({first}, {limit})"
        );
    }
    if first + limit <= bytes.len() * 8 {
        assert!(after.all_set(first, limit));
    }
}

fn footer_checks(mut footer: Footer) {
    let _ = format!("{footer:?}");
    let _ = (
        footer.disk_type().name(),
        footer.data_offset(),
        footer.features().temporary(),
    );
    let _ = (
        footer.creator_application().to_string(),
        footer.creator_host_os().to_string(),
    );
    let _ = (footer.unique_id().to_string(), footer.timestamp().to_unix());
    assert_eq!(
        SizePolicy::CurrentSize.size_of(&footer),
        footer.current_size.get()
    );
    assert_eq!(SizePolicy::Chs.size_of(&footer), footer.geometry().size());
    let q = SizePolicy::Qemu.size_of(&footer);
    assert!(q == footer.current_size.get() || q == footer.geometry().size());
    footer.update_checksum();
    assert!(footer.checksum_ok());
}

fn header_checks(mut header: DynamicHeader) {
    let _ = format!("{header:?}");
    let _ = (
        header.parent_unique_id().to_string(),
        header.parent_timestamp(),
    );
    for l in &header.parent_locators {
        let _ = (l.code().name(), format!("{:?}", l.code()));
    }
    // The parent name survives a decode → encode → decode round trip (lossy on bad UTF-16).
    let name: String = char::decode_utf16(header.parent_name_units())
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if header.set_parent_name(&name) {
        let again: String = char::decode_utf16(header.parent_name_units())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        assert_eq!(again, name);
    } else {
        assert!(name.encode_utf16().count() > 256);
    }
    header.update_checksum();
    assert!(header.checksum_ok());
}
