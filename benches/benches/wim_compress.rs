//! `wim-image` chunk compressors against wimlib's (`libwim.so.15`, loaded with `dlopen`),
//! same data, same run, single thread: compression throughput (uncompressed MB/s), the
//! resulting size, and the ratios ours / wimlib for both.
//!
//! Input: `WIM_COMPRESS_BENCH_MIB` MiB (default 8) of real files, half `/usr/share/doc` and
//! half `.so` files (see `wim_input`; `WIM_BENCH_INPUT_DIR=<dir>` takes the files under
//! `<dir>` instead, e.g. one kind of file), cut into the chunks a WIM writer would compress:
//! 32 KiB for XPRESS and LZX, 128 KiB for LZMS, and for LZMS solid the whole input as one
//! chunk of a 64 MiB-chunk resource. A chunk that does not shrink counts with its own size
//! (a writer stores it raw). Levels: 20 (fast), 50 (wimlib's default) and 100.
//!
//! Before timing, each of our chunks is decoded by wimlib's decompressor and compared with
//! its input. Each case prints the fastest of `VIRIDIAN_BENCH_ROUNDS` (default 3) whole
//! passes per side, interleaved ours/wimlib, then Criterion measures whole passes.
//! `WIM_COMPRESS_BENCH_ONLY=<text>` keeps the cases whose name contains it (e.g. `LZX 50`).
//! `WIM_COMPRESS_BENCH_PIECE=<bytes>` compresses pieces of that size instead of whole chunks
//! (each still through a compressor made for the codec's chunk size), as a writer does with
//! files smaller than a chunk: it weighs the fixed cost of each chunk (table resets, codes).

use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;
use wim_image::codec::{Codec, Compressor, Level};

#[path = "../../wim-image/tests/codec_oracle/mod.rs"]
mod oracle;
#[path = "wim_input/mod.rs"]
mod wim_input;

/// One case: codec, level, chunk size.
struct Case {
    name: String,
    codec: Codec,
    level: u32,
    chunk_size: usize,
}

/// Compresses every chunk with ours; total output size (raw chunks at their size).
fn ours(c: &mut Compressor, data: &[u8], chunk: usize, out: &mut [u8]) -> usize {
    data.chunks(chunk)
        .map(|p| c.compress(p, &mut out[..p.len()]).unwrap_or(p.len()))
        .sum()
}

/// The same with wimlib, `piece` bytes at a time.
fn theirs(lib: &oracle::Wimlib, case: &Case, data: &[u8], piece: usize) -> usize {
    data.chunks(piece)
        .map(|p| {
            lib.compress_chunk(case.codec, case.chunk_size, case.level, p)
                .map_or(p.len(), |v| v.len())
        })
        .sum()
}

fn main() {
    let Some(lib) = oracle::wimlib("wim_compress bench") else {
        return;
    };
    let data = wim_input::load_input_mib("WIM_COMPRESS_BENCH_MIB", 8);
    println!(
        "input: {} bytes (/usr/share/doc then .so files)",
        data.len()
    );
    let only = std::env::var("WIM_COMPRESS_BENCH_ONLY").ok();
    let mut cases = Vec::new();
    for (codec, cname, chunk) in [
        (Codec::Xpress, "XPRESS", 32 << 10),
        (Codec::Lzx, "LZX", 32 << 10),
        (Codec::Lzms, "LZMS", 128 << 10),
        (Codec::Lzms, "LZMS solid", 64 << 20),
    ] {
        for level in [20u32, 50, 100] {
            let name = format!("{cname} {level}");
            if only.as_deref().is_some_and(|o| !name.contains(o)) {
                continue;
            }
            if cname == "LZMS solid" && level != 50 {
                continue;
            }
            cases.push(Case {
                name,
                codec,
                level,
                chunk_size: chunk,
            });
        }
    }
    let rounds: usize = std::env::var("VIRIDIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut crit = Criterion::default().configure_from_args();
    let mb = data.len() as f64 / 1e6;
    let piece: Option<usize> = std::env::var("WIM_COMPRESS_BENCH_PIECE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&p| p > 0);
    if let Some(p) = piece {
        println!("compressed in pieces of {p} bytes (WIM_COMPRESS_BENCH_PIECE)");
    }
    for case in &cases {
        let chunk = piece
            .map_or(case.chunk_size, |p| p.min(case.chunk_size))
            .min(data.len());
        let mut c = match Compressor::new(case.codec, Level(case.level), case.chunk_size) {
            Ok(c) => c,
            Err(e) => {
                println!("{}: skipped ({e})", case.name);
                continue;
            }
        };
        let mut out = vec![0u8; chunk];
        // Correctness first: wimlib decodes each of our chunks to its input.
        for (i, p) in data.chunks(chunk).enumerate() {
            if let Some(n) = c.compress(p, &mut out[..p.len()]) {
                let back = lib.decompress(case.codec, case.chunk_size, &out[..n], p.len());
                assert!(
                    back.as_deref() == Some(p),
                    "{}: chunk {i}: wimlib does not decode our output",
                    case.name
                );
            }
        }
        let (mut t_ours, mut t_theirs) = (f64::MAX, f64::MAX);
        let (mut s_ours, mut s_theirs) = (0, 0);
        for _ in 0..rounds {
            let t = Instant::now();
            s_ours = ours(&mut c, &data, chunk, &mut out);
            t_ours = t_ours.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            s_theirs = theirs(&lib, case, &data, chunk);
            t_theirs = t_theirs.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{:<14} ours {:7.1} MB/s {:>10} B | wimlib {:7.1} MB/s {:>10} B | speed ours/wimlib {:.3}, size ours/wimlib {:.4}",
            case.name,
            mb / t_ours,
            s_ours,
            mb / t_theirs,
            s_theirs,
            t_theirs / t_ours,
            s_ours as f64 / s_theirs as f64,
        );
        let mut g = crit.benchmark_group(format!("wim_compress/{}", case.name));
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.sample_size(10);
        g.bench_function("ours", |b| {
            b.iter(|| black_box(ours(&mut c, &data, chunk, &mut out)))
        });
        g.bench_function("wimlib", |b| {
            b.iter(|| black_box(theirs(&lib, case, &data, chunk)))
        });
        g.finish();
    }
    crit.final_summary();
}
