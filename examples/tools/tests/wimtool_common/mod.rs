//! Shared by the `wimtool` write tests: running `wimtool` (with or without standard input),
//! keeping source times stable between tools, the statistics `wimlib-imagex info` prints,
//! and comparing what wimlib applies from two WIMs.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::wimlib_support::{assert_same_tree, run_wimlib, set_times, snapshot, Scratch};

pub fn wimtool(args: &[&str]) -> (i32, String) {
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

pub fn ok(args: &[&str]) {
    let (code, text) = wimtool(args);
    assert_eq!(code, 0, "wimtool {args:?}: {text}");
}

/// Runs `f` on `root` and puts every time under it back afterwards (reading moves access
/// times, and the second tool must see what the first saw).
pub fn keeping_times(root: &Path, f: impl FnOnce()) {
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
pub fn stats(wim: &Path) -> Vec<String> {
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

pub fn applies_same(ours: &Path, theirs: &Path, images: u32, s: &Scratch) {
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

/// Runs `program` with `args` and `input` on standard input.
fn run_stdin(program: &str, args: &[&str], input: &str) -> std::process::Output {
    let mut c = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

/// Runs `wimtool` with `input` on standard input.
pub fn wimtool_stdin(args: &[&str], input: &str) -> (i32, String) {
    let o = run_stdin(env!("CARGO_BIN_EXE_wimtool"), args, input);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().expect("exit code"), text)
}

/// Runs `wimlib-imagex` with `input` on standard input, panicking on failure.
pub fn wimlib_stdin(args: &[&str], input: &str) {
    let o = run_stdin("wimlib-imagex", args, input);
    assert!(
        o.status.success(),
        "wimlib-imagex {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
