//! `wimtool info` and `wimtool dir` (plain and `--detailed`) against `wimlib-imagex info` and
//! `dir` on WIMs wimlib wrote in every mode: the same text, line for line (the path line of
//! `info` aside, which echoes the argument).
//!
//! Skipped with a message when `wimlib-imagex` is missing; fails under `CI=true`.

#[path = "../../../wim-image/tests/wimlib_support/mod.rs"]
mod wimlib_support;

mod wimtool_common;

use wimlib_support::{build_tree, run_wimlib, wimlib, Scratch};
use wimtool_common::wimtool;

/// `tool`'s output for `args`, without `info`'s `Path:` line.
fn text(ours: bool, args: &[&str]) -> String {
    let out = if ours {
        let (code, out) = wimtool(args);
        assert_eq!(code, 0, "wimtool {args:?}: {out}");
        out
    } else {
        run_wimlib(args)
    };
    out.lines()
        .filter(|l| !l.starts_with("Path:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn same(args: &[&str]) {
    let (ours, theirs) = (text(true, args), text(false, args));
    if ours != theirs {
        let at = ours
            .lines()
            .zip(theirs.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(ours.lines().count().min(theirs.lines().count()));
        panic!(
            "{args:?} differs at line {at}:\n  ours:   {:?}\n  wimlib: {:?}",
            ours.lines().nth(at),
            theirs.lines().nth(at)
        );
    }
}

#[test]
fn info_and_dir_match_wimlib_in_every_mode() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("wimtool-read");
    let src = s.path("src");
    build_tree(&src, 0);
    let src_s = src.to_str().unwrap();
    let modes: [(&str, &[&str]); 7] = [
        ("none.wim", &["--compress=none"]),
        ("xpress.wim", &["--compress=XPRESS", "--check"]),
        ("lzx.wim", &["--compress=LZX", "--boot"]),
        ("lzms.wim", &["--compress=LZMS", "--chunk-size=131072"]),
        ("solid.wim", &["--solid"]),
        ("pipable.wim", &["--pipable"]),
        ("unix.wim", &["--unix-data"]),
    ];
    for (name, extra) in modes {
        let wim = s.path(name);
        let w = wim.to_str().unwrap();
        let mut args = vec!["capture", src_s, w, "an image", "its description"];
        args.extend_from_slice(extra);
        run_wimlib(&args);
        if name == "xpress.wim" {
            // A second image, with its own name.
            run_wimlib(&["append", src_s, w, "second", "--compress=XPRESS"]);
        }
        same(&["info", w]);
        same(&["dir", w, "1"]);
        same(&["dir", w, "1", "--detailed"]);
        if name == "xpress.wim" {
            same(&["dir", w, "2", "--detailed"]);
        }
    }
}
