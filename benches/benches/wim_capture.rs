//! Capturing a directory tree: `wim-image` (`capture_image`, in process) against
//! `wimlib-imagex capture` (a process), same tree, same run, XPRESS, LZX and LZMS solid, with
//! 1 thread and all threads.
//!
//! Input: `/usr/lib/git-core` plus `/usr/share/doc` (copied with `cp -a` once into
//! `$CARGO_TARGET_DIR/wim-capture-bench/tree`, plus a copy of `git-core` as duplicates), or
//! with `WIM_CAPTURE_BENCH_TREE=reference` the reference tree of `shared/reference/wim.md`
//! §5 (about 300 MiB; built once and shared with the `wim_apply` bench, see
//! `wim_reference`), or any other directory `WIM_CAPTURE_BENCH_TREE` names. Each case runs
//! `VIRIDIAN_BENCH_ROUNDS` (default 1) interleaved rounds of ours then wimlib and prints
//! each side's fastest time, output size and the ratios (time ours / wimlib: below 1 is
//! faster; size ours / wimlib).
//! `VIRIDIAN_BENCH_SUMMARY_ONLY=1` stops after the table; otherwise Criterion measures our
//! 1-thread XPRESS capture. `WIM_CAPTURE_BENCH_MODES` (comma-separated mode names, e.g.
//! `LZX` or `XPRESS,LZMS solid`) runs only those modes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use wim_image::codec::Codec;
use wim_image::write::capture::{capture_image, CaptureOptions};
use wim_image::write::{ImageProps, WimWriter, WriteOptions};

#[path = "wim_reference/mod.rs"]
mod wim_reference;

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wim-capture-bench")
}

/// The tree to capture (built on first use).
fn tree() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("WIM_CAPTURE_BENCH_TREE") {
        if t == "reference" {
            return wim_reference::tree();
        }
        return Some(PathBuf::from(t));
    }
    let tree = bench_dir().join("tree");
    if tree.is_dir() {
        return Some(tree);
    }
    let tmp = bench_dir().join("tree.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("dup")).ok()?;
    for (from, to) in [
        ("/usr/lib/git-core", "git-core"),
        ("/usr/share/doc", "doc"),
        ("/usr/lib/git-core", "dup/git-core"),
    ] {
        let ok = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(tmp.join(to))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("wim_capture bench: copying {from} failed");
            return None;
        }
    }
    std::fs::rename(&tmp, &tree).ok()?;
    Some(tree)
}

/// One way of capturing: our options and wimlib's arguments.
struct Mode {
    name: &'static str,
    codec: Codec,
    solid: bool,
    wimlib: &'static [&'static str],
}

const MODES: &[Mode] = &[
    Mode {
        name: "XPRESS",
        codec: Codec::Xpress,
        solid: false,
        wimlib: &["--compress=XPRESS"],
    },
    Mode {
        name: "LZX",
        codec: Codec::Lzx,
        solid: false,
        wimlib: &["--compress=LZX"],
    },
    Mode {
        name: "LZMS solid",
        codec: Codec::Lzms,
        solid: true,
        wimlib: &["--solid"],
    },
];

fn ours(tree: &Path, out: &Path, mode: &Mode, threads: usize) -> (Duration, u64) {
    let _ = std::fs::remove_file(out);
    let opts = WriteOptions {
        compression: Some(mode.codec),
        solid: mode.solid.then_some((mode.codec, 0)),
        threads,
        ..WriteOptions::default()
    };
    let t = Instant::now();
    let f = std::fs::File::create_new(out).expect("output");
    let mut w = WimWriter::create(f, &opts).expect("writer");
    let props = ImageProps {
        name: "bench".into(),
        ..ImageProps::default()
    };
    capture_image(&mut w, tree, &props, &CaptureOptions::default()).expect("capture");
    w.finish().expect("finish");
    let d = t.elapsed();
    (d, std::fs::metadata(out).map_or(0, |m| m.len()))
}

fn wimlib(tree: &Path, out: &Path, mode: &Mode, threads: usize) -> Option<(Duration, u64)> {
    let _ = std::fs::remove_file(out);
    let t = Instant::now();
    let ok = Command::new("wimlib-imagex")
        .arg("capture")
        .arg(tree)
        .arg(out)
        .arg("bench")
        .args(mode.wimlib)
        .arg(format!("--threads={threads}"))
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let d = t.elapsed();
    ok.then(|| (d, std::fs::metadata(out).map_or(0, |m| m.len())))
}

/// Reads every regular file under `dir` (symbolic links not followed); returns the bytes read.
fn read_all(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            total += read_all(&e.path());
        } else if t.is_file() {
            total += std::fs::read(e.path()).map_or(0, |b| b.len() as u64);
        }
    }
    total
}

fn main() {
    if Command::new("wimlib-imagex")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("wim_capture bench: wimlib-imagex not found, skipped");
        return;
    }
    // (A cached tree may be a symbolic link to the real one; capture the directory.)
    let Some(tree) = tree().and_then(|t| std::fs::canonicalize(t).ok()) else {
        return;
    };
    let rounds: usize = std::env::var("VIRIDIAN_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Err(e) = std::fs::create_dir_all(bench_dir()) {
        eprintln!("wim_capture bench: {}: {e}", bench_dir().display());
        return;
    }
    let out = bench_dir().join("out.wim");
    // Every file read once first: otherwise whichever capture runs first also pays for
    // bringing the tree into the page cache.
    let warm = read_all(&tree);
    println!(
        "tree {} ({warm} bytes read to warm the cache); {rounds} round(s), fastest shown",
        tree.display()
    );
    println!(
        "{:<11} {:>3} | {:>9} {:>12} | {:>9} {:>12} | {:>10} {:>10}",
        "mode", "thr", "ours s", "ours bytes", "wimlib s", "wimlib bytes", "time o/w", "size o/w"
    );
    let wanted = std::env::var("WIM_CAPTURE_BENCH_MODES").ok();
    let chosen = |m: &Mode| {
        wanted
            .as_deref()
            .is_none_or(|w| w.split(',').any(|n| n.trim().eq_ignore_ascii_case(m.name)))
    };
    for mode in MODES.iter().filter(|m| chosen(m)) {
        for threads in [1, all] {
            let (mut o, mut w) = ((Duration::MAX, 0), (Duration::MAX, 0));
            for _ in 0..rounds {
                let r = ours(&tree, &out, mode, threads);
                o = (o.0.min(r.0), r.1);
                let Some(r) = wimlib(&tree, &out, mode, threads) else {
                    eprintln!("wimlib-imagex capture failed");
                    return;
                };
                w = (w.0.min(r.0), r.1);
            }
            println!(
                "{:<11} {:>3} | {:>9.2} {:>12} | {:>9.2} {:>12} | {:>10.3} {:>10.4}",
                mode.name,
                threads,
                o.0.as_secs_f64(),
                o.1,
                w.0.as_secs_f64(),
                w.1,
                o.0.as_secs_f64() / w.0.as_secs_f64(),
                o.1 as f64 / w.1 as f64
            );
        }
    }
    let _ = std::fs::remove_file(&out);
    if std::env::var_os("VIRIDIAN_BENCH_SUMMARY_ONLY").is_some() {
        return;
    }
    let mut crit = Criterion::default().sample_size(10).configure_from_args();
    crit.bench_function("wim_capture/ours/XPRESS/1 thread", |b| {
        b.iter(|| ours(&tree, &out, &MODES[0], 1))
    });
    let _ = std::fs::remove_file(&out);
    crit.final_summary();
}
