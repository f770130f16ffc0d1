//! LZMS chunks written by wimlib (levels 1–100, 128 KiB non-solid chunks, solid chunks of
//! several MiB and one of 64 MiB, every input kind including delta-friendly tables and x86
//! code) decode to their input; corrupt chunks give wimlib's answer or a typed error, never a
//! panic.

mod codec_oracle;

use codec_oracle::{check_round_trip, corruption_sweep, input, round_trip_sweep, wimlib, Kind};
use wim_image::codec::{Codec, Decompressor};

#[test]
fn wimlib_chunks_round_trip() {
    let Some(lib) = wimlib("codec_lzms::wimlib_chunks_round_trip") else {
        return;
    };
    let mut d = Decompressor::new(Codec::Lzms);
    let chunk_size = 1 << 17;
    let sizes = [1, 2, 3, 17, 18, 100, 1000, 4096, 65537, chunk_size];
    // Level 100 only on the large sizes (it is slow).
    let skip = |_, size, level| level == 100 && size < 65537;
    let checked = round_trip_sweep(&lib, &mut d, chunk_size, &sizes, &[1, 20, 50, 100], &skip);
    assert!(checked > 150, "only {checked} chunks checked");
}

#[test]
fn solid_chunks_round_trip() {
    let Some(lib) = wimlib("codec_lzms::solid_chunks_round_trip") else {
        return;
    };
    let mut d = Decompressor::new(Codec::Lzms);
    // Several MiB of mixed content, as one chunk of a 64 MiB-chunk solid resource.
    let mut data = Vec::new();
    for (i, kind) in [
        Kind::X86,
        Kind::Text,
        Kind::Delta,
        Kind::Repetitive,
        Kind::Random,
        Kind::X86,
    ]
    .into_iter()
    .enumerate()
    {
        data.extend(input(kind, 700_000 + i * 1000, 40 + i as u64));
    }
    for level in [20, 50] {
        let c = lib
            .compress_chunk(Codec::Lzms, 64 << 20, level, &data)
            .unwrap();
        check_round_trip(
            &mut d,
            &c,
            &data,
            &format!("{} B solid level {level}", data.len()),
        );
    }
}

/// One full 64 MiB chunk, the size of Microsoft's and wimlib's solid chunks.
#[test]
fn full_64_mib_solid_chunk() {
    let Some(lib) = wimlib("codec_lzms::full_64_mib_solid_chunk") else {
        return;
    };
    let size = 64 << 20;
    let mut data = Vec::with_capacity(size);
    let mut i = 0u64;
    while data.len() < size {
        let kind = [Kind::Text, Kind::X86, Kind::Runs, Kind::Delta][i as usize % 4];
        data.extend(input(kind, 1 << 20, 1000 + i));
        i += 1;
    }
    data.truncate(size);
    let c = lib.compress_chunk(Codec::Lzms, size, 1, &data).unwrap();
    let mut d = Decompressor::new(Codec::Lzms);
    check_round_trip(&mut d, &c, &data, "64 MiB solid chunk");
}

#[test]
fn corrupt_chunks_agree_with_wimlib() {
    let Some(lib) = wimlib("codec_lzms::corrupt_chunks_agree_with_wimlib") else {
        return;
    };
    let (_, total) = corruption_sweep(&lib, Codec::Lzms, &[300, 5000, 60000]);
    assert!(total > 100);
}
