//! `wimtool capture` and `append` against the same operations of `wimlib-imagex` on the same
//! trees: the same XML statistics (as `wimlib-imagex info` prints them), files wimlib
//! verifies, and the same trees when wimlib applies each image.
//!
//! Skipped with a message when `wimlib-imagex` is missing; fails under `CI=true`.

#[path = "../../../wim-image/tests/wimlib_support/mod.rs"]
mod wimlib_support;

mod wimtool_common;

use wimlib_support::{build_tree, bytes, run_wimlib, wimlib, Scratch};
use wimtool_common::{applies_same, keeping_times, ok, stats, wimtool};

#[test]
fn capture_and_append_match_wimlib() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("wimtool-write");
    let src = s.path("src");
    build_tree(&src, 0);
    let src2 = s.path("src2");
    std::fs::create_dir_all(src2.join("d")).unwrap();
    std::fs::write(src2.join("d/new"), bytes(5, 70_000, true)).unwrap();
    std::fs::copy(src.join("text-1.txt"), src2.join("again")).unwrap();
    let (ours, theirs) = (s.path("ours.wim"), s.path("theirs.wim"));
    let (o, t) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
    let (src_s, src2_s) = (src.to_str().unwrap(), src2.to_str().unwrap());
    let args = ["--compress=none", "--check", "--boot"];
    keeping_times(&src, || {
        let mut a = vec!["capture", src_s, o, "first", "the first image"];
        a.extend_from_slice(&args);
        ok(&a);
    });
    keeping_times(&src, || {
        let mut a = vec!["capture", src_s, t, "first", "the first image"];
        a.extend_from_slice(&args);
        run_wimlib(&a);
    });
    assert_eq!(stats(&ours), stats(&theirs));
    keeping_times(&src2, || {
        ok(&["append", src2_s, o, "second", "--threads=1"])
    });
    keeping_times(&src2, || {
        run_wimlib(&["append", src2_s, t, "second"]);
    });
    assert_eq!(stats(&ours), stats(&theirs));
    applies_same(&ours, &theirs, 2, &s);
    // Our own verify agrees.
    ok(&["verify", o]);

    // Export image 2 into new XPRESS files, then image 1 appended to them.
    let (oe, te) = (s.path("ours-exp.wim"), s.path("theirs-exp.wim"));
    let (oe_s, te_s) = (oe.to_str().unwrap(), te.to_str().unwrap());
    ok(&["export", o, "2", oe_s, "--compress=xpress"]);
    run_wimlib(&["export", t, "2", te_s, "--compress=XPRESS"]);
    ok(&["export", o, "first", oe_s, "renamed"]);
    run_wimlib(&["export", t, "first", te_s, "renamed"]);
    assert_eq!(stats(&oe), stats(&te));
    applies_same(&oe, &te, 2, &s);

    // Delete image 1 of the two-image files.
    ok(&["delete", o, "1"]);
    run_wimlib(&["delete", t, "1"]);
    assert_eq!(stats(&ours), stats(&theirs));
    applies_same(&ours, &theirs, 1, &s);
}

#[test]
fn usage_errors() {
    let s = Scratch::new("wimtool-write-usage");
    let (dir, wim) = (s.path("d"), s.path("x.wim"));
    std::fs::create_dir_all(&dir).unwrap();
    let (d, w) = (dir.to_str().unwrap(), wim.to_str().unwrap());
    assert_eq!(wimtool(&["capture", d]).0, 1);
    assert_eq!(wimtool(&["capture", d, w, "--compress=zip"]).0, 1);
    assert_eq!(wimtool(&["capture", d, w, "--compress=lzx:0"]).0, 1);
    assert_eq!(wimtool(&["capture", d, w, "--bogus"]).0, 1);
    assert_eq!(
        wimtool(&["append", d, w]).0,
        3,
        "appending to a missing file"
    );
    ok(&["capture", d, w, "n", "--compress=none"]);
    assert_eq!(wimtool(&["append", d, w, "n"]).0, 1, "duplicate image name");
    std::fs::write(&wim, b"not a wim").unwrap();
    assert_eq!(
        wimtool(&["append", d, w, "m"]).0,
        2,
        "appending to a corrupt file"
    );
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` elsewhere).
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// Compression threads that would not fit in the available memory are reduced, with a
/// note as wimlib-imagex warns: 64 threads of LZMS with 1 GiB solid chunks would take about
/// 15 GiB each (9 GiB of compressor). Threads that fit get no note.
#[test]
fn threads_fit_in_memory() {
    let s = Scratch::new("wimtool-threads");
    let dir = s.path("d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a"), bytes(1, 100_000, true)).unwrap();
    std::fs::write(dir.join("b"), bytes(2, 50_000, false)).unwrap();
    let (solid, xpress) = (s.path("solid.wim"), s.path("xpress.wim"));
    let (d, w1, w2) = (
        dir.to_str().unwrap(),
        solid.to_str().unwrap(),
        xpress.to_str().unwrap(),
    );
    let args = [
        "capture",
        d,
        w1,
        "--solid",
        "--solid-chunk-size=1G",
        "--threads=64",
    ];
    let (code, text) = wimtool(&args);
    assert_eq!(code, 0, "{text}");
    // (Unless the machine has room for 64 of them: about 1 TiB.)
    if mem_available().is_some_and(|m| m < 900 << 30) {
        assert!(
            text.contains("wanted 64 compression threads, limiting to "),
            "{text}"
        );
    }
    ok(&["verify", w1]);
    let (code, text) = wimtool(&["capture", d, w2, "--compress=xpress", "--threads=4"]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("limiting"), "{text}");
    ok(&["verify", w2]);
}
