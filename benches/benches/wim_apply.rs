//! Applying a whole image: `wim-image` (`apply::apply`, in process) against
//! `wimlib-imagex apply` (a process), same WIMs, same run, to a tmpfs (`/dev/shm` when
//! present) so that the codecs and the extraction logic dominate rather than the disk.
//!
//! Input: the reference tree of `shared/reference/wim.md` §5 — copies of `/usr/share/doc`,
//! `/usr/lib/python3*` and `/usr/lib/git-core`, plus a second copy of the python tree as
//! duplicates — cut at `WIM_APPLY_BENCH_MIB` (default 300) MiB. wimlib captures it three
//! ways: XPRESS, LZX (32 KiB chunks) and LZMS solid (64 MiB chunks). The tree and the WIMs
//! are cached under `$CARGO_TARGET_DIR/wim-apply-bench` (the solid capture takes minutes;
//! the tree comes from `wim_reference`, which the `wim_capture` bench shares);
//! delete that directory to rebuild them.
//!
//! Each case runs `VIRIDIAN_BENCH_ROUNDS` (default 5) interleaved rounds of: ours with 1
//! thread, wimlib (single-threaded), ours with all threads; the target is removed between
//! runs (not timed). It prints each side's fastest round, logical MB/s and the ratios
//! wimlib / ours. Then Criterion measures ours (1 thread, XPRESS) for its report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use wim_image::apply::{apply, ApplyOptions};
use wim_image::{FileSource, Wim};

#[path = "wim_reference/mod.rs"]
mod wim_reference;
use wim_reference::{bench_dir, du};

fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("wim-apply-bench-{}", std::process::id()))
}

/// The tree and the three WIMs, built once.
fn prepare() -> Option<(u64, Vec<(&'static str, PathBuf)>)> {
    let dir = bench_dir();
    let tree = wim_reference::tree()?;
    let logical = du(&std::fs::canonicalize(&tree).ok()?);
    let mut wims = Vec::new();
    for (name, args) in [
        ("xpress", &["--compress=XPRESS"][..]),
        ("lzx", &["--compress=LZX"][..]),
        ("lzms-solid", &["--solid"][..]),
    ] {
        let w = dir.join(format!("{name}.wim"));
        if !w.exists() {
            eprintln!("capturing {name} (once; cached in {})", dir.display());
            let tmp = dir.join(format!("{name}.wim.tmp"));
            let _ = std::fs::remove_file(&tmp);
            let ok = Command::new("wimlib-imagex")
                .arg("capture")
                .arg(&tree)
                .arg(&tmp)
                .arg("bench")
                .args(args)
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
            std::fs::rename(&tmp, &w).ok()?;
        }
        wims.push((name, w));
    }
    Some((logical, wims))
}

fn ours(wim: &Path, dest: &Path, threads: usize) -> Duration {
    let _ = std::fs::remove_dir_all(dest);
    let t = Instant::now();
    let w = Wim::open(FileSource::open(wim).expect("open")).expect("wim");
    let opts = ApplyOptions {
        threads,
        ..ApplyOptions::default()
    };
    apply(&w, 1, dest, &opts, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .expect("apply");
    t.elapsed()
}

fn wimlib(wim: &Path, dest: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(dest);
    let t = Instant::now();
    let ok = Command::new("wimlib-imagex")
        .arg("apply")
        .arg(wim)
        .arg("1")
        .arg(dest)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "wimlib-imagex apply failed");
    t.elapsed()
}

fn main() {
    let has_wimlib = Command::new("wimlib-imagex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_wimlib {
        println!("wim_apply: wimlib-imagex not installed, nothing to compare against");
        return;
    }
    let Some((logical, wims)) = prepare() else {
        println!("wim_apply: could not build the tree or the WIMs");
        return;
    };
    let rounds: usize = std::env::var("VIRIDIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dest = scratch();
    let mb = logical as f64 / 1e6;
    println!(
        "wim_apply: {mb:.1} MB logical, {all} cores, to {}",
        dest.display()
    );
    for (name, w) in &wims {
        let (mut o1, mut lib, mut on) = (Duration::MAX, Duration::MAX, Duration::MAX);
        for _ in 0..rounds {
            o1 = o1.min(ours(w, &dest, 1));
            lib = lib.min(wimlib(w, &dest));
            on = on.min(ours(w, &dest, all));
        }
        let rate = |d: Duration| mb / d.as_secs_f64();
        println!(
            "{name:>11}: wimlib {:.3} s ({:.0} MB/s) | ours 1 thread {:.3} s ({:.0} MB/s, ratio {:.2}x) | ours {all} threads {:.3} s ({:.0} MB/s, ratio {:.2}x)",
            lib.as_secs_f64(),
            rate(lib),
            o1.as_secs_f64(),
            rate(o1),
            lib.as_secs_f64() / o1.as_secs_f64(),
            on.as_secs_f64(),
            rate(on),
            lib.as_secs_f64() / on.as_secs_f64(),
        );
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .configure_from_args();
    let (_, xpress) = &wims[0];
    c.bench_function("wim_apply/xpress/ours-1-thread", |b| {
        b.iter(|| ours(xpress, &dest, 1))
    });
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dest);
}
