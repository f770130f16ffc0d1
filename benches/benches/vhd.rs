//! VHD benchmarks against qemu-img and the `cp` limit, on the deterministic 1 GiB input of
//! `shared/reference/vhd.md` §5 (512 MiB of random data in 1 MiB slots, seed 42).
//!
//! - `vhdtool convert` dynamic VHD → raw, and raw → dynamic VHD, versus `qemu-img convert`
//!   doing the same and `cp` of the raw file, interleaved in one run; ratios printed.
//! - Random 4 KiB reads through the library versus `pread` on the raw file (criterion, plus an
//!   interleaved ratio).
//!
//! Files live in `$VIRIDIAN_BENCH_DIR` (default `/dev/shm/viridian-bench`, a tmpfs, as in the
//! reference measurements). `VIRIDIAN_BENCH_ROUNDS` sets the interleaved rounds (default 7).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{criterion_group, Criterion};
use vhd_format::{Disk, OpenOptions, Vhd};
use viridian_benches::{command, have_peer, Comparison, Contender};

const INPUT_SHA256: &str = "f0d134910cc3e460e65f0811ee3a67c978669466d2297ab8d5b663e18a3c75b7";
const GENERATOR: &str = "import random,sys; r = random.Random(42); MiB = 1 << 20
slots = sorted(r.sample(range(1024), 512))
with open(sys.argv[1], 'wb') as f:
    f.truncate(1024 * MiB)
    for s in slots: f.seek(s * MiB); f.write(r.randbytes(MiB))";

fn bench_dir() -> PathBuf {
    let dir = std::env::var_os("VIRIDIAN_BENCH_DIR")
        .map_or_else(|| PathBuf::from("/dev/shm/viridian-bench"), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .is_ok_and(|s| s.success())
}

/// Generates `src.raw` (verified against the reference hash) and `src.vhd` (by qemu-img).
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let raw = dir.join("src.raw");
    let vhd = dir.join("src.vhd");
    if !raw.exists() {
        let ok = Command::new("python3")
            .arg("-c")
            .arg(GENERATOR)
            .arg(&raw)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "python3 is needed to generate the reference input");
    }
    let sum = Command::new("sha256sum")
        .arg(&raw)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert!(
        sum.starts_with(INPUT_SHA256),
        "src.raw does not match the reference hash: {sum}"
    );
    if !vhd.exists() {
        assert!(sh(&format!(
            "qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on {} {}",
            raw.display(),
            vhd.display()
        )));
    }
    (raw, vhd)
}

/// Builds vhdtool in release mode and returns its path.
fn vhdtool() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let ok = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "viridian-tools",
            "--bin",
            "vhdtool",
        ])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "building vhdtool failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("release/vhdtool")
}

fn rounds() -> usize {
    std::env::var("VIRIDIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

fn convert_benches() {
    if !have_peer("qemu-img") || !have_peer("python3") {
        return;
    }
    let dir = bench_dir();
    let (raw, vhd) = inputs(&dir);
    let tool = vhdtool();
    let out_raw = dir.join("out.raw");
    let out_vhd = dir.join("out.vhd");
    let (t, r, v, o_r, o_v) = (
        tool.display(),
        raw.display(),
        vhd.display(),
        out_raw.display(),
        out_vhd.display(),
    );

    let c1 = format!("rm -f {o_r}; {t} convert -q -O raw {v} {o_r}");
    let q1 = format!("rm -f {o_r}; qemu-img convert -f vpc -O raw {v} {o_r}");
    let p1 = format!("rm -f {o_r}; cp {r} {o_r}");
    let mut contenders = [
        command("vhdtool convert dynamic VHD -> raw", &c1),
        command("qemu-img convert dynamic VHD -> raw", &q1),
        command("cp src.raw (limit)", &p1),
    ];
    match Comparison::run(&mut contenders, rounds()) {
        Ok(c) => c.print("dynamic VHD -> raw, 1 GiB virtual, 512 MiB data"),
        Err(e) => println!("comparison failed: {e}"),
    }
    // Check the outputs agree before trusting the timings.
    assert!(
        sh(&format!("cmp {r} {o_r}")),
        "vhdtool raw output differs from the source"
    );

    let c2 = format!("rm -f {o_v}; {t} convert -q -f raw -O dynamic {r} {o_v}");
    let q2 = format!(
        "rm -f {o_v}; qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on {r} {o_v}"
    );
    let mut contenders = [
        command("vhdtool convert raw -> dynamic VHD", &c2),
        command("qemu-img convert raw -> dynamic VHD", &q2),
        command("cp src.raw (limit)", &p1),
    ];
    match Comparison::run(&mut contenders, rounds()) {
        Ok(c) => c.print("raw -> dynamic VHD, 1 GiB virtual, 512 MiB data"),
        Err(e) => println!("comparison failed: {e}"),
    }
    assert!(sh(&format!("{t} convert -q -f raw -O dynamic {r} {o_v} && qemu-img compare -q -f vpc -F raw {o_v} {r}")), "qemu-img disagrees with our VHD");
    let _ = std::fs::remove_file(&out_raw);
    let _ = std::fs::remove_file(&out_vhd);
}

/// Deterministic 4 KiB-aligned offsets inside the 1 GiB disk.
fn offsets(n: usize) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (1 << 18)) * 4096
        })
        .collect()
}

fn random_reads(c: &mut Criterion) {
    if !have_peer("qemu-img") || !have_peer("python3") {
        return;
    }
    let dir = bench_dir();
    let (raw, vhd) = inputs(&dir);
    let raw = File::open(raw).expect("raw");
    let disk = Vhd::open(File::open(vhd).expect("vhd"), OpenOptions::new()).expect("open");
    let offs = offsets(4096);
    let mut buf = [0u8; 4096];
    // Same offsets must give the same bytes.
    for &o in offs.iter().take(256) {
        let mut a = [0u8; 4096];
        disk.read_at(o, &mut a).expect("read");
        raw.read_exact_at(&mut buf, o).expect("pread");
        assert_eq!(a, buf, "contents differ at {o}");
    }
    let mut group = c.benchmark_group("random 4 KiB reads");
    let mut i = 0;
    group.bench_function("vhd-format Vhd::read_at", |b| {
        b.iter(|| {
            i = (i + 1) % offs.len();
            disk.read_at(offs[i], &mut buf).expect("read");
        })
    });
    group.bench_function("pread on raw file", |b| {
        b.iter(|| {
            i = (i + 1) % offs.len();
            raw.read_exact_at(&mut buf, offs[i]).expect("pread");
        })
    });
    group.finish();

    // Interleaved batches for a same-run ratio.
    let batch = |f: &mut dyn FnMut(u64)| {
        for &o in &offs {
            f(o);
        }
        Ok::<(), String>(())
    };
    let mut b1 = [0u8; 4096];
    let mut b2 = [0u8; 4096];
    let mut contenders = [
        Contender {
            label: "Vhd::read_at x4096",
            run: Box::new(|| batch(&mut |o| disk.read_at(o, &mut b1).expect("read"))),
        },
        Contender {
            label: "pread x4096",
            run: Box::new(|| batch(&mut |o| raw.read_exact_at(&mut b2, o).expect("pread"))),
        },
    ];
    match Comparison::run(&mut contenders, 101) {
        Ok(c) => c.print("random 4 KiB reads (dynamic VHD through the library vs pread on raw)"),
        Err(e) => println!("comparison failed: {e}"),
    }
}

criterion_group!(reads, random_reads);

fn main() {
    convert_benches();
    reads();
    Criterion::default().configure_from_args().final_summary();
}
