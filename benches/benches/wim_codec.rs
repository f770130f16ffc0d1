//! `wim-image` chunk decompressors against wimlib's (`libwim.so.15`, loaded with `dlopen`),
//! same chunks, same run, single thread: raw decompression throughput (uncompressed MB/s)
//! and the ratio ours / wimlib.
//!
//! Input: about 32 MiB of real files, 16 MiB of `/usr/share/doc` (text, HTML, some gzip) and
//! 16 MiB of `/usr/lib/x86_64-linux-gnu/*.so*` (x86 code), concatenated in sorted path order
//! (`WIM_CODEC_BENCH_MIB` changes the total). wimlib compresses it at its default level 50
//! in WIM chunk sizes: 32 KiB XPRESS and LZX, 128 KiB LZMS, and LZMS solid (the whole input
//! as one chunk of a 64 MiB-chunk solid resource). Chunks that do not shrink are stored raw
//! in a WIM and are left out here (neither decoder sees them). Before timing, every chunk is
//! checked to decode to its input with both decoders.
//!
//! Each case prints, per decoder, the sum over chunks of each chunk's fastest decode in
//! `VIRIDIAN_BENCH_ROUNDS` (default 7) rounds that interleave the two decoders chunk by chunk
//! (robust against other load on a shared machine), then Criterion measures whole passes.
//! `WIM_CODEC_BENCH_ONLY=<text>` keeps the cases whose name contains it (e.g. `lzx`, `solid`).

use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;
use wim_image::codec::{Codec, Decompressor};

#[path = "../../wim-image/tests/codec_oracle/mod.rs"]
mod oracle;
#[path = "wim_input/mod.rs"]
mod wim_input;

use wim_input::load_input;

/// One benchmark case: compressed chunks and their sizes.
struct Case {
    name: &'static str,
    codec: Codec,
    chunk_size: usize,
    chunks: Vec<(Vec<u8>, usize)>,
    bytes: usize,
    compressed: usize,
}

fn make_case(
    lib: &oracle::Wimlib,
    name: &'static str,
    codec: Codec,
    chunk_size: usize,
    split: usize,
    data: &[u8],
) -> Case {
    let mut chunks = Vec::new();
    let (mut bytes, mut compressed) = (0, 0);
    for piece in data.chunks(split) {
        if let Some(c) = lib.compress_chunk(codec, chunk_size, 50, piece) {
            bytes += piece.len();
            compressed += c.len();
            chunks.push((c, piece.len()));
        }
    }
    Case {
        name,
        codec,
        chunk_size,
        chunks,
        bytes,
        compressed,
    }
}

fn ours(d: &mut Decompressor, case: &Case, out: &mut [u8]) {
    for (c, n) in &case.chunks {
        d.decompress(c, &mut out[..*n]).expect("ours");
    }
}

fn wimlib(lib: &oracle::Wimlib, case: &Case, out: &mut [u8]) {
    for (c, n) in &case.chunks {
        lib.decompress_into(case.codec, case.chunk_size, c, &mut out[..*n])
            .expect("wimlib");
    }
}

fn main() {
    let Some(lib) = oracle::wimlib("wim_codec bench") else {
        return;
    };
    let data = load_input();
    println!(
        "input: {} bytes ({} MiB of /usr/share/doc then .so files)",
        data.len(),
        data.len() >> 20
    );
    let t0 = Instant::now();
    let mut cases = vec![
        make_case(
            &lib,
            "XPRESS 32 KiB",
            Codec::Xpress,
            32 << 10,
            32 << 10,
            &data,
        ),
        make_case(&lib, "LZX 32 KiB", Codec::Lzx, 32 << 10, 32 << 10, &data),
    ];
    if std::env::var("WIM_CODEC_BENCH_ONLY").is_err() {
        cases.push(make_case(
            &lib,
            "LZMS 128 KiB",
            Codec::Lzms,
            128 << 10,
            128 << 10,
            &data,
        ));
        cases.push(make_case(
            &lib,
            "LZMS solid",
            Codec::Lzms,
            64 << 20,
            64 << 20,
            &data,
        ));
    }
    println!(
        "compressed with wimlib level 50 in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let rounds: usize = std::env::var("VIRIDIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut c = Criterion::default().configure_from_args();
    for case in &cases {
        let max = case.chunks.iter().map(|c| c.1).max().unwrap_or(0);
        let mut out = vec![0u8; max];
        let mut d = Decompressor::with_chunk_size(
            case.codec,
            case.chunk_size.min(case.codec.max_chunk_size()),
        )
        .unwrap();
        // Correctness first: every chunk, both decoders.
        let mut pieces = data.chunks(if case.chunk_size > data.len() {
            data.len()
        } else {
            case.chunk_size
        });
        for (comp, n) in &case.chunks {
            // Chunks that did not shrink were dropped: find the next piece of the same size
            // that decodes from this chunk.
            let piece = loop {
                let p = pieces.next().expect("chunk without piece");
                if p.len() == *n
                    && lib
                        .decompress(case.codec, case.chunk_size, comp, *n)
                        .as_deref()
                        == Some(p)
                {
                    break p;
                }
            };
            d.decompress(comp, &mut out[..*n]).expect("ours");
            assert!(&out[..*n] == piece, "{}: our output differs", case.name);
        }
        // Per chunk, the fastest of the rounds (rounds interleave the two decoders; on a
        // shared machine a whole pass is rarely undisturbed, a single chunk usually is).
        let mut mins = vec![[f64::INFINITY; 2]; case.chunks.len()];
        for _ in 0..rounds {
            for (k, (comp, n)) in case.chunks.iter().enumerate() {
                let t = Instant::now();
                d.decompress(comp, &mut out[..*n]).expect("ours");
                mins[k][0] = mins[k][0].min(t.elapsed().as_secs_f64());
                let t = Instant::now();
                lib.decompress_into(case.codec, case.chunk_size, comp, &mut out[..*n])
                    .expect("wimlib");
                mins[k][1] = mins[k][1].min(t.elapsed().as_secs_f64());
            }
        }
        let best = [
            mins.iter().map(|m| m[0]).sum::<f64>(),
            mins.iter().map(|m| m[1]).sum::<f64>(),
        ];
        let mbs = |s: f64| case.bytes as f64 / s / 1e6;
        println!(
            "{:14} {} chunks, {} -> {} bytes ({:.1} %): wim-image {:7.1} MB/s, wimlib {:7.1} MB/s, ratio {:.3}",
            case.name,
            case.chunks.len(),
            case.bytes,
            case.compressed,
            100.0 * case.compressed as f64 / case.bytes as f64,
            mbs(best[0]),
            mbs(best[1]),
            best[1] / best[0]
        );
        let mut g = c.benchmark_group(format!("wim_codec/{}", case.name));
        g.throughput(Throughput::Bytes(case.bytes as u64));
        g.sample_size(10);
        g.bench_function("wim-image", |b| {
            b.iter(|| ours(&mut d, case, black_box(&mut out)))
        });
        g.bench_function("wimlib", |b| {
            b.iter(|| wimlib(&lib, case, black_box(&mut out)))
        });
        g.finish();
    }
    c.final_summary();
}
