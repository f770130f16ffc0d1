//! `wimtool update` against `wimlib-imagex update` with the same command file on copies of
//! the same WIM: the same XML statistics, files wimlib verifies, and the same trees when
//! wimlib applies them; failing commands leave the file as it was.
//!
//! Skipped with a message when `wimlib-imagex` is missing; fails under `CI=true`.

#[path = "../../../wim-image/tests/wimlib_support/mod.rs"]
mod wimlib_support;
mod wimtool_common;

use std::path::Path;

use wimlib_support::{build_tree, bytes, run_wimlib, set_times, wimlib, Scratch};
use wimtool_common::{keeping_times, ok, stats, wimlib_stdin, wimtool, wimtool_stdin};

/// The sources added by the commands, with fixed times.
fn add_sources(root: &Path) {
    let merge = root.join("merge");
    std::fs::create_dir_all(merge.join("sub")).unwrap();
    // Replaces a file of /dup, adds one beside it and a new subdirectory.
    std::fs::write(merge.join("same-as-text.txt"), b"replaced").unwrap();
    std::fs::write(merge.join("new.txt"), bytes(21, 50_000, true)).unwrap();
    std::fs::write(merge.join("sub/deeper"), bytes(22, 9_000, false)).unwrap();
    std::fs::hard_link(merge.join("new.txt"), merge.join("sub/new-link")).unwrap();
    std::fs::write(root.join("single"), bytes(23, 70_000, true)).unwrap();
    // The same content as a file of the image: single-instanced.
    std::fs::write(root.join("dup-of-image"), bytes(11, 100_000, true)).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("single", root.join("rel-link")).unwrap();
    // A second tree sharing files with the first (a directory read twice in one update
    // would get a different access time from each tool): shared files become one inode.
    let other = root.join("other");
    std::fs::create_dir_all(other.join("sub")).unwrap();
    std::fs::hard_link(merge.join("new.txt"), other.join("new.txt")).unwrap();
    std::fs::hard_link(merge.join("sub/deeper"), other.join("sub/deeper")).unwrap();
    std::fs::write(other.join("own"), b"own").unwrap();
    for (i, p) in [
        "other/sub",
        "other/own",
        "other",
        "merge/sub/deeper",
        "merge/sub/new-link",
        "merge/sub",
        "merge/same-as-text.txt",
        "merge/new.txt",
        "merge",
        "single",
        "dup-of-image",
    ]
    .iter()
    .enumerate()
    {
        let t = 1_650_000_000 + i as i64 * 11;
        set_times(&root.join(p), (t + 1, 500), (t, 700));
    }
}

/// Directories the commands create as parents: their times are "now" on both sides.
const FILLERS: [&str; 5] = [
    "new",
    "new/filler",
    "new/filler/dir",
    "Windows",
    "Windows/System32",
];

#[test]
fn update_matches_wimlib() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("wimtool-update");
    let (src, add) = (s.path("src"), s.path("add"));
    build_tree(&src, 0);
    add_sources(&add);
    let (ours, theirs) = (s.path("ours.wim"), s.path("theirs.wim"));
    let (o, t) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
    run_wimlib(&[
        "capture",
        src.to_str().unwrap(),
        t,
        "base",
        "--compress=XPRESS",
    ]);
    run_wimlib(&["append", src.to_str().unwrap(), t, "second"]);
    std::fs::copy(&theirs, &ours).unwrap();
    let a = add.to_str().unwrap();
    let commands = format!(
        "# servicing without a mount\n\
         add {a}/merge /dup\n\
         add '{a}/single' /new/filler/dir/file.txt\n\
         add {a}/single /text-100.txt\n\
         add {a}/dup-of-image \"/ünïcødé ✓/dup of image\"\n\
         add {a}/abs-link /links/added-absolute\n\
         add {a}/other /copied\n\
         delete --recursive /deep\n\
         delete /rand-0.bin\n\
         delete --force /does/not/exist\n\
         rename /wide /wide-renamed\n\
         rename /text-1.txt /links/renamed.txt\n\
         rename /copied/sub /sub-moved\n"
    );
    keeping_times(&add, || {
        let (code, text) = wimtool_stdin(&["update", o, "1", "--threads=1"], &commands);
        assert_eq!(code, 0, "{text}");
    });
    keeping_times(&add, || wimlib_stdin(&["update", t, "1"], &commands));
    // wimlib 1.13 leaves the parent directories it creates out of DIRCOUNT (their inodes are
    // not on the image's inode list until the image is loaded again); a second, empty
    // update makes it count them.
    run_wimlib(&["update", t, "1", "--command=delete --force /no/such/path"]);
    assert_eq!(stats(&ours), stats(&theirs));
    ok(&["verify", o]);
    applies_same_but_fillers(&ours, &theirs, &s);

    // Image 2 by name, one command on the command line, then rebuilt without holes.
    let cmd = "--command=rename /dup /dup-renamed";
    ok(&["update", o, "second", cmd, "--rebuild"]);
    run_wimlib(&["update", t, "second", cmd, "--rebuild"]);
    assert_eq!(stats(&ours), stats(&theirs));
    applies_same_but_fillers(&ours, &theirs, &s);

    // Per-command options: UNIX data, and a followed link.
    let cmds = format!(
        "add --unix-data {a}/single /unix-single\n\
         add --dereference {a}/rel-link /followed\n"
    );
    keeping_times(&add, || {
        let (code, text) = wimtool_stdin(&["update", o, "second"], &cmds);
        assert_eq!(code, 0, "{text}");
    });
    keeping_times(&add, || wimlib_stdin(&["update", t, "second"], &cmds));
    assert_eq!(stats(&ours), stats(&theirs));
    applies_same_but_fillers(&ours, &theirs, &s);
    // wimlib reads the UNIX data we stored, and sees the followed link as a file.
    let listing = run_wimlib(&["dir", o, "2", "--detailed"]);
    let block = |path: &str| {
        let start = listing
            .find(&format!("Full Path           = \"{path}\""))
            .unwrap_or_else(|| panic!("{path} listed"));
        listing[start..].split("\n\n").next().unwrap().to_string()
    };
    assert!(block("/unix-single").contains("UNIX Data           = uid:"));
    assert!(!block("/followed").contains("Reparse"));

    // A capture configuration for every add (matched from each source's root), then a
    // WIMBoot configuration file instead of commands.
    let cfg = s.path("update.ini");
    std::fs::write(
        &cfg,
        "[ExclusionList]\n\\sub\n*.txt\n[ExclusionException]\n\\new.txt\n",
    )
    .unwrap();
    let config = format!("--config={}", cfg.display());
    let cmds = format!("add {a}/merge /configured\nadd {a}/other /configured-other\n");
    keeping_times(&add, || {
        let (code, text) = wimtool_stdin(&["update", o, "second", &config], &cmds);
        assert_eq!(code, 0, "{text}");
    });
    keeping_times(&add, || {
        wimlib_stdin(&["update", t, "second", &config], &cmds)
    });
    let wimboot = format!("--wimboot-config={a}/single");
    keeping_times(&add, || ok(&["update", o, "second", &wimboot]));
    keeping_times(&add, || {
        run_wimlib(&["update", t, "second", &wimboot]);
    });
    run_wimlib(&[
        "update",
        t,
        "second",
        "--command=delete --force /no/such/path",
    ]);
    assert_eq!(stats(&ours), stats(&theirs));
    applies_same_but_fillers(&ours, &theirs, &s);
    let listing = run_wimlib(&["dir", o, "2"]);
    for (path, kept) in [
        ("/configured/new.txt", true),
        ("/configured/same-as-text.txt", false),
        ("/configured/sub", false),
        ("/configured-other/sub/deeper", false),
        ("/configured-other/own", true),
        ("/Windows/System32/WimBootCompress.ini", true),
    ] {
        let listed = listing.lines().any(|l| l == path);
        assert_eq!(listed, kept, "{path} in\n{listing}");
    }

    // Failing commands change nothing.
    let before = std::fs::read(&ours).unwrap();
    for bad in [
        "delete /dup-renamed",
        "delete /missing",
        "rename /missing /x",
        "rename /links /links/inside",
        "add /nonexistent-source-path /x",
        "bogus command",
    ] {
        let (code, text) = wimtool(&["update", o, "2", &format!("--command={bad}")]);
        assert_ne!(code, 0, "{bad}: {text}");
        assert_eq!(std::fs::read(&ours).unwrap(), before, "{bad}");
    }
    let (code, _) = wimtool(&["update", o, "--command=delete /x"]);
    assert_eq!(code, 1, "two images and no IMAGE");
}

/// Both images of each file applied by wimlib give the same trees once the parent
/// directories the commands created have the same times on both sides.
fn applies_same_but_fillers(ours: &Path, theirs: &Path, s: &Scratch) {
    run_wimlib(&["verify", ours.to_str().unwrap()]);
    for i in ["1", "2"] {
        let (a, b) = (s.path("fa"), s.path("fb"));
        run_wimlib(&["apply", ours.to_str().unwrap(), i, a.to_str().unwrap()]);
        run_wimlib(&["apply", theirs.to_str().unwrap(), i, b.to_str().unwrap()]);
        for f in FILLERS.iter().rev() {
            if a.join(f).exists() {
                set_times(&a.join(f), (1, 0), (1, 0));
                set_times(&b.join(f), (1, 0), (1, 0));
            }
        }
        wimlib_support::assert_same_tree(&a, &b, &format!("image {i}"));
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }
}

/// `delete --soft` leaves holes; `optimize` removes them, and `optimize --compress=...`
/// recompresses, against the same operations of wimlib-imagex on copies of the same file.
#[test]
fn soft_delete_and_optimize_match_wimlib() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("wimtool-optimize");
    let (src, src2) = (s.path("src"), s.path("src2"));
    build_tree(&src, 0);
    std::fs::create_dir_all(&src2).unwrap();
    std::fs::write(src2.join("only-in-two"), bytes(31, 300_000, true)).unwrap();
    let (ours, theirs) = (s.path("ours.wim"), s.path("theirs.wim"));
    let (o, t) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
    let src_s = src.to_str().unwrap();
    run_wimlib(&["capture", src_s, t, "one", "--compress=XPRESS"]);
    run_wimlib(&["append", src2.to_str().unwrap(), t, "two"]);
    std::fs::copy(&theirs, &ours).unwrap();
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let full = size(&ours);
    ok(&["delete", o, "1", "--soft"]);
    run_wimlib(&["delete", t, "1", "--soft"]);
    assert_eq!(stats(&ours), stats(&theirs));
    ok(&["verify", o]);
    assert!(size(&ours) >= full, "a soft delete only appends");
    let sizes = |what: &str| {
        let (a, b) = (size(&ours), size(&theirs));
        eprintln!("{what}: ours {a} bytes, wimlib {b} bytes");
        (a, b)
    };
    ok(&["optimize", o]);
    run_wimlib(&["optimize", t]);
    assert_eq!(stats(&ours), stats(&theirs));
    let (a, b) = sizes("optimize (XPRESS)");
    assert!(a < full / 10, "the holes are gone: {a} of {full}");
    assert!(a.abs_diff(b) < b / 20, "within 5% of wimlib: {a} vs {b}");
    run_wimlib(&["verify", o]);
    for (ours_c, theirs_c) in [("none", "none"), ("xpress:80", "XPRESS:80")] {
        ok(&["optimize", o, &format!("--compress={ours_c}")]);
        run_wimlib(&["optimize", t, &format!("--compress={theirs_c}")]);
        assert_eq!(stats(&ours), stats(&theirs), "{ours_c}");
        let (a, b) = sizes(&format!("optimize --compress={ours_c}"));
        assert!(a.abs_diff(b) < b / 20, "{ours_c}: {a} vs {b}");
    }
    let (a, b) = (s.path("a"), s.path("b"));
    run_wimlib(&["apply", o, "1", a.to_str().unwrap()]);
    run_wimlib(&["apply", t, "1", b.to_str().unwrap()]);
    wimlib_support::assert_same_tree(&a, &b, "optimized");
}

/// `split` into .swm parts against `wimlib-imagex split` of the same file: as many parts,
/// wimlib verifies and applies ours with `--ref` as it applies its own, and our reader
/// applies ours as it applies wimlib's.
#[test]
fn split_matches_wimlib() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("wimtool-split");
    let (src, src2) = (s.path("src"), s.path("src2"));
    build_tree(&src, 3 << 20);
    std::fs::create_dir_all(&src2).unwrap();
    std::fs::write(src2.join("only-in-two"), bytes(41, 900_000, false)).unwrap();
    let wim = s.path("base.wim");
    let w = wim.to_str().unwrap();
    run_wimlib(&[
        "capture",
        src.to_str().unwrap(),
        w,
        "one",
        "--compress=XPRESS",
    ]);
    run_wimlib(&["append", src2.to_str().unwrap(), w, "two", "--boot"]);
    let (o, t) = (s.path("o.swm"), s.path("t.swm"));
    let (o_s, t_s) = (o.to_str().unwrap(), t.to_str().unwrap());
    ok(&["split", w, o_s, "1"]);
    run_wimlib(&["split", w, t_s, "1"]);
    let parts = |prefix: &str| {
        let mut v: Vec<String> = std::fs::read_dir(&s.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".swm"))
            .collect();
        v.sort();
        v
    };
    let (ours, theirs) = (parts("o"), parts("t"));
    assert!(ours.len() >= 3, "{ours:?}");
    assert_eq!(ours.len(), theirs.len(), "{ours:?} vs {theirs:?}");
    assert_eq!(stats(&o), stats(&t));
    let o_ref = format!("--ref={}", s.path("o*.swm").display());
    let t_ref = format!("--ref={}", s.path("t*.swm").display());
    run_wimlib(&["verify", o_s, &o_ref]);
    ok(&["verify", o_s]);
    for i in ["1", "2"] {
        let (a, b) = (s.path("a"), s.path("b"));
        let (c, d) = (s.path("c"), s.path("d"));
        run_wimlib(&["apply", o_s, i, a.to_str().unwrap(), &o_ref]);
        run_wimlib(&["apply", t_s, i, b.to_str().unwrap(), &t_ref]);
        ok(&["apply", o_s, i, c.to_str().unwrap()]);
        ok(&["apply", t_s, i, d.to_str().unwrap()]);
        wimlib_support::assert_same_tree(&a, &b, &format!("image {i}, wimlib"));
        wimlib_support::assert_same_tree(&c, &d, &format!("image {i}, ours"));
        for dir in [a, b, c, d] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
    assert_eq!(wimtool(&["split", w, o_s, "0"]).0, 1, "part size 0");
}
