//! `wimtool capture` and `append` against the same operations of `wimlib-imagex` on the same
//! trees: the same XML statistics (as `wimlib-imagex info` prints them), files wimlib
//! verifies, and the same trees when wimlib applies each image.
//!
//! Skipped with a message when `wimlib-imagex` is missing; fails under `CI=true`.

#[path = "../../../wim-image/tests/wimlib_support/mod.rs"]
mod wimlib_support;

use std::path::Path;
use std::process::Command;

use wimlib_support::{
    assert_same_tree, build_tree, bytes, run_wimlib, set_times, snapshot, wimlib, Scratch,
};

fn wimtool(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_wimtool"))
        .args(args)
        .output()
        .expect("run wimtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().expect("exit code"), text)
}

fn ok(args: &[&str]) {
    let (code, text) = wimtool(args);
    assert_eq!(code, 0, "wimtool {args:?}: {text}");
}

/// Runs `f` on `root` and puts every time under it back afterwards (reading moves access
/// times, and the second tool must see what the first saw).
fn keeping_times(root: &Path, f: impl FnOnce()) {
    let before: Vec<_> = snapshot(root)
        .into_iter()
        .map(|(rel, info)| (root.join(rel), info))
        .collect();
    let restore = || {
        for (p, info) in before.iter().rev() {
            set_times(p, info.atime, info.mtime);
        }
    };
    restore();
    f();
    restore();
}

/// The per-image statistics lines of `wimlib-imagex info` (times left out).
fn stats(wim: &Path) -> Vec<String> {
    let info = run_wimlib(&["info", wim.to_str().unwrap()]);
    let keys = [
        "Image Count:",
        "Index:",
        "Name:",
        "Description:",
        "Directory Count:",
        "File Count:",
        "Total Bytes:",
        "Hard Link Bytes:",
        "Boot Index:",
        "Compression:",
        "Attributes:",
    ];
    info.lines()
        .filter(|l| keys.iter().any(|k| l.starts_with(k)))
        .map(String::from)
        .collect()
}

fn applies_same(ours: &Path, theirs: &Path, images: u32, s: &Scratch) {
    run_wimlib(&["verify", ours.to_str().unwrap()]);
    for i in 1..=images {
        let idx = i.to_string();
        let (a, b) = (s.path(&format!("a{i}")), s.path(&format!("b{i}")));
        run_wimlib(&["apply", ours.to_str().unwrap(), &idx, a.to_str().unwrap()]);
        run_wimlib(&["apply", theirs.to_str().unwrap(), &idx, b.to_str().unwrap()]);
        assert_same_tree(&a, &b, &format!("image {i}"));
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }
}

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
