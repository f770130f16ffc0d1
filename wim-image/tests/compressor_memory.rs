//! `Compressor::memory_needed` against what the allocator is really asked for.
//!
//! A counting global allocator (per thread, so the test harness's own allocations on other
//! threads do not count) measures the bytes each compressor holds once made, the peak while
//! it is made, and what compressing a full chunk allocates; the estimate must never be
//! below the measure and at most 10% above it.

mod counting;

use counting::{calls, live, peak, reset_peak};
use wim_image::codec::{Codec, Compressor, Decompressor, Level};

/// Compressible bytes (text-like runs with some noise).
fn sample(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 4096 < 3000 {
                b"a compressor's memory, measured "[(i + (x as usize % 3)) % 32]
            } else {
                x as u8
            }
        })
        .collect()
}

/// One case: bytes held once made, and the peak while made. Compressing (a full chunk, or
/// the first 256 KiB of a larger one: debug builds are slow) must allocate nothing.
fn measure(codec: Codec, level: u32, chunk: usize, data: &[u8]) -> (u64, u64) {
    let before = reset_peak();
    let mut c = Compressor::new(codec, Level(level), chunk).expect("compressor");
    let held = live() - before;
    let peak = peak() - before;
    let mut out = vec![0u8; chunk];
    let (calls_before, during) = (calls(), live());
    let _ = c.compress(&data[..chunk.min(256 << 10)], &mut out);
    let compress = (calls() - calls_before, live() - during);
    assert_eq!(
        compress,
        (0, 0),
        "{codec:?} {level} {chunk}: compress allocated"
    );
    drop(out);
    drop(c);
    assert_eq!(live(), before, "{codec:?} {level} {chunk}: not all freed");
    (held, peak)
}

#[test]
fn estimates_match_allocations() {
    const K: usize = 1024;
    let data = sample(8 << 20);
    let cases: &[(Codec, &[u32], &[usize])] = &[
        (Codec::Xpress, &[10, 50, 80], &[4 * K, 32 * K, 64 * K]),
        (
            Codec::Lzx,
            &[20, 50, 100],
            &[32 * K, 64 * K, 128 * K, 2048 * K],
        ),
        (
            Codec::Lzms,
            &[1, 50, 100],
            &[32 * K, 128 * K, 1024 * K, 8192 * K],
        ),
    ];
    let mut worst: f64 = 1.0;
    for &(codec, levels, chunks) in cases {
        for &level in levels {
            for &chunk in chunks {
                let (held, peak) = measure(codec, level, chunk, &data);
                let est = Compressor::memory_needed(codec, Level(level), chunk);
                let ratio = est as f64 / held as f64;
                println!(
                    "{codec:?} level {level:3} chunk {:5} KiB: estimate {est:10} held {held:10} \
                     peak {peak:10} ratio {ratio:.4}",
                    chunk / K
                );
                assert!(est >= held, "{codec:?} {level} {chunk}: {est} < {held}");
                assert!(
                    est >= peak,
                    "{codec:?} {level} {chunk}: {est} < peak {peak}"
                );
                assert!(
                    est as f64 <= held as f64 * 1.10,
                    "{codec:?} {level} {chunk}: {est} more than 10% above {held}"
                );
                worst = worst.max(ratio);
            }
        }
    }
    println!("worst ratio {worst:.4}");
}

/// Arguments `new` refuses get the estimate of the nearest accepted ones.
#[test]
fn refused_arguments_are_clamped() {
    let lzms_max = Compressor::memory_needed(Codec::Lzms, Level(50), 1 << 30);
    assert_eq!(
        Compressor::memory_needed(Codec::Lzms, Level(50), usize::MAX),
        lzms_max
    );
    // About 9 bytes per byte of chunk: 9 GiB and a few MiB for 1 GiB chunks.
    assert!(
        (9 << 30..(9 << 30) + (32 << 20)).contains(&lzms_max),
        "{lzms_max}"
    );
    assert_eq!(
        Compressor::memory_needed(Codec::Xpress, Level(0), 0),
        Compressor::memory_needed(Codec::Xpress, Level(1), 1)
    );
}

/// A decompressor's state is fixed: `Decompressor::memory_needed` is what it allocates.
#[test]
fn decompressor_estimates_match() {
    for codec in [Codec::Xpress, Codec::Lzx, Codec::Lzms] {
        let before = live();
        let d = Decompressor::new(codec);
        let held = live() - before;
        drop(d);
        assert_eq!(Decompressor::memory_needed(codec), held, "{codec:?}");
    }
}
