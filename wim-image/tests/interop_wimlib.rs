//! Interop with `wimlib-imagex`: WIMs it captures in every mode are listed, verified and
//! applied by this crate, and the applied trees must equal what `wimlib-imagex apply`
//! produces (contents, hard links, symlinks, modes, owners, times). Verification must agree
//! with `wimlib-imagex verify` on intact files and on files corrupted on purpose.
//!
//! Skipped with a message when `wimlib-imagex` is missing; fails under `CI=true`.

mod wimlib_support;

use std::ops::ControlFlow;
use std::path::Path;

use wim_image::apply::{apply, ApplyOptions};
use wim_image::{FileSource, Wim};
use wimlib_support::{assert_same_tree, build_tree, run_wimlib, wimlib, wimlib_verifies, Scratch};

fn open(path: &Path) -> Wim<FileSource> {
    Wim::open(FileSource::open(path).unwrap()).unwrap()
}

/// The paths `wimlib-imagex dir` lists for image `index`, and ours.
fn check_dir(wim: &Wim<FileSource>, path: &Path, index: u32, refs: Option<&str>) {
    let idx = index.to_string();
    let mut args = vec!["dir", path.to_str().unwrap(), idx.as_str()];
    let r;
    if let Some(g) = refs {
        r = format!("--ref={g}");
        args.push(&r);
    }
    let theirs = run_wimlib(&args);
    let tree = wim.image(index).unwrap();
    let ours: String = tree.walk().map(|id| tree.path(id) + "\n").collect();
    assert_eq!(ours, theirs, "dir listing of {}", path.display());
}

/// Applies image `index` with us and with wimlib and compares.
fn check_apply(
    wim: &Wim<FileSource>,
    path: &Path,
    index: u32,
    unix: bool,
    threads: usize,
    s: &Scratch,
    refs: Option<&str>,
) {
    let ours = s.path(&format!("ours-{index}-{threads}"));
    let theirs = s.path(&format!("theirs-{index}-{threads}"));
    let opts = ApplyOptions {
        threads,
        unix_data: unix,
        rpfix: None,
        memory_limit: None,
    };
    let report = apply(wim, index, &ours, &opts, &mut |_| ControlFlow::Continue(())).unwrap();
    assert!(report.files > 0);
    let idx = index.to_string();
    let mut args = vec![
        "apply",
        path.to_str().unwrap(),
        idx.as_str(),
        theirs.to_str().unwrap(),
    ];
    if unix {
        args.push("--unix-data");
    }
    let r;
    if let Some(g) = refs {
        r = format!("--ref={g}");
        args.push(&r);
    }
    run_wimlib(&args);
    assert_same_tree(&ours, &theirs, &format!("{} image {index}", path.display()));
    std::fs::remove_dir_all(&ours).unwrap();
    std::fs::remove_dir_all(&theirs).unwrap();
}

/// Captures the tree in one mode and checks verify, dir and apply.
fn one_mode(name: &str, capture_args: &[&str], unix: bool) {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new(name);
    let src = s.path("src");
    build_tree(&src, 0);
    let wim_path = s.path("t.wim");
    let mut args = vec![
        "capture",
        src.to_str().unwrap(),
        wim_path.to_str().unwrap(),
        "img",
    ];
    args.extend_from_slice(capture_args);
    if unix {
        args.push("--unix-data");
    }
    run_wimlib(&args);
    let wim = open(&wim_path);
    let report = wim.verify(&mut |_| {});
    assert!(report.is_ok(), "{name}: {:?}", report.problems);
    assert!(wimlib_verifies(&wim_path));
    check_dir(&wim, &wim_path, 1, None);
    check_apply(&wim, &wim_path, 1, unix, 1, &s, None);
    check_apply(&wim, &wim_path, 1, unix, 3, &s, None);
}

#[test]
fn uncompressed() {
    one_mode("none", &["--compress=none"], true);
}

#[test]
fn xpress() {
    one_mode("xpress", &["--compress=XPRESS"], true);
}

#[test]
fn lzx() {
    one_mode("lzx", &["--compress=LZX"], true);
}

#[test]
fn lzms() {
    one_mode("lzms", &["--compress=LZMS"], true);
}

#[test]
fn solid_lzms() {
    one_mode("solid", &["--solid"], true);
}

#[test]
fn solid_small_chunks_xpress() {
    one_mode(
        "solid-xpress",
        &[
            "--solid",
            "--solid-compress=XPRESS",
            "--solid-chunk-size=64K",
        ],
        true,
    );
}

#[test]
fn chunk_sizes() {
    one_mode("xpress-4k", &["--compress=XPRESS", "--chunk-size=4K"], true);
    one_mode("lzx-64k", &["--compress=LZX", "--chunk-size=64K"], false);
    one_mode("lzx-2m", &["--compress=LZX", "--chunk-size=2M"], true);
    one_mode("lzms-1m", &["--compress=LZMS", "--chunk-size=1M"], false);
}

#[test]
fn integrity_table() {
    one_mode("check", &["--compress=XPRESS", "--check"], true);
}

#[test]
fn pipable() {
    one_mode("pipable", &["--compress=LZX", "--pipable"], true);
}

#[test]
fn without_unix_data() {
    one_mode("plain", &["--compress=LZX"], false);
}

#[test]
fn append_and_split() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("append");
    let (a, b) = (s.path("a"), s.path("b"));
    build_tree(&a, 0);
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("only-in-b"), wimlib_support::bytes(5, 300_000, true)).unwrap();
    std::fs::copy(a.join("rand-100000.bin"), b.join("shared")).unwrap();
    let w = s.path("multi.wim");
    let ws = w.to_str().unwrap();
    run_wimlib(&[
        "capture",
        a.to_str().unwrap(),
        ws,
        "first",
        "--compress=LZX",
        "--unix-data",
    ]);
    run_wimlib(&["append", b.to_str().unwrap(), ws, "second", "--unix-data"]);
    let wim = open(&w);
    assert_eq!(wim.image_count(), 2);
    assert_eq!(
        wim.xml().image(2).unwrap().name().as_deref(),
        Some("second")
    );
    assert!(wim.verify(&mut |_| {}).is_ok());
    for i in 1..=2 {
        check_dir(&wim, &w, i, None);
        check_apply(&wim, &w, i, true, 2, &s, None);
    }

    // Split into parts of about 1 MiB.
    let swm = s.path("part.swm");
    run_wimlib(&["split", ws, swm.to_str().unwrap(), "1"]);
    let mut parts = vec![swm.clone()];
    for n in 2.. {
        let p = s.path(&format!("part{n}.swm"));
        if !p.exists() {
            break;
        }
        parts.push(p);
    }
    assert!(parts.len() > 2, "expected several parts");
    // Any order.
    parts.reverse();
    let sources = parts.iter().map(|p| FileSource::open(p).unwrap()).collect();
    let set = Wim::open_parts(sources).unwrap();
    assert!(set.verify(&mut |_| {}).is_ok());
    let glob = s.path("part*.swm");
    for i in 1..=2 {
        check_dir(&set, &swm, i, Some(glob.to_str().unwrap()));
        check_apply(&set, &swm, i, true, 2, &s, Some(glob.to_str().unwrap()));
    }
    // A missing part is an error, not a panic.
    let sources = parts[1..]
        .iter()
        .map(|p| FileSource::open(p).unwrap())
        .collect();
    assert!(Wim::open_parts(sources).is_err());
}

/// The same tree captured and appended again: the two images' metadata resources are
/// byte-identical (same hash in the blob table) and both must still be images.
#[test]
fn same_tree_appended_twice() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("twice");
    let a = s.path("a");
    build_tree(&a, 0);
    // A first capture reads every file, so their access times (relatime) stop changing and
    // the two captures below record identical trees.
    let warm = s.path("warm.wim");
    run_wimlib(&["capture", a.to_str().unwrap(), warm.to_str().unwrap()]);
    let w = s.path("twice.wim");
    let ws = w.to_str().unwrap();
    run_wimlib(&["capture", a.to_str().unwrap(), ws, "first"]);
    run_wimlib(&["append", a.to_str().unwrap(), ws, "again"]);
    let info = run_wimlib(&["info", ws, "--blobs"]);
    let metadata_hashes: Vec<&str> = info
        .split("\n\n")
        .filter(|entry| entry.contains("WIM_RESHDR_FLAG_METADATA"))
        .filter_map(|entry| entry.lines().find(|l| l.starts_with("Hash")))
        .collect();
    assert_eq!(metadata_hashes.len(), 2, "{info}");
    assert_eq!(
        metadata_hashes[0], metadata_hashes[1],
        "the images differ: {info}"
    );
    let wim = open(&w);
    assert_eq!(wim.image_count(), 2);
    assert!(wim.verify(&mut |_| {}).is_ok());
    for i in 1..=2 {
        check_dir(&wim, &w, i, None);
    }
    check_apply(&wim, &w, 2, false, 2, &s, None);
}

#[test]
fn large_file() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("large");
    let src = s.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), {
        let mut v = wimlib_support::bytes(1, 96 << 20, true);
        v.extend_from_slice(&wimlib_support::bytes(2, 64 << 20, false));
        v
    })
    .unwrap();
    let w = s.path("big.wim");
    run_wimlib(&[
        "capture",
        src.to_str().unwrap(),
        w.to_str().unwrap(),
        "big",
        "--compress=XPRESS",
    ]);
    let wim = open(&w);
    assert!(wim.verify(&mut |_| {}).is_ok());
    check_apply(&wim, &w, 1, false, 2, &s, None);
    // Random access by chunk in the middle of the file.
    let tree = wim.image(1).unwrap();
    let f = tree.lookup("/big.bin").unwrap();
    let blob = *wim.blob(&tree.node(f).dentry.data.unwrap()).unwrap();
    let mut buf = vec![0u8; 100_000];
    wim.reader()
        .read_at(&blob, (96 << 20) - 50_000, &mut buf)
        .unwrap();
    let want = std::fs::read(src.join("big.bin")).unwrap();
    assert_eq!(&buf[..], &want[(96 << 20) - 50_000..(96 << 20) + 50_000]);
}

/// Corrupts bytes at several places; our verify must fail exactly when wimlib's does.
#[test]
fn verify_agrees_on_corruption() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("corrupt");
    let src = s.path("src");
    build_tree(&src, 0);
    for (mode, check) in [
        ("--compress=LZX", false),
        ("--solid", false),
        ("--compress=XPRESS", true),
    ] {
        let w = s.path("t.wim");
        let mut args = vec![
            "capture",
            src.to_str().unwrap(),
            w.to_str().unwrap(),
            "img",
            mode,
        ];
        if check {
            args.push("--check");
        }
        run_wimlib(&args);
        let pristine = std::fs::read(&w).unwrap();
        let len = pristine.len();
        let c = s.path("c.wim");
        for at in [300, 4096, len / 3, len / 2, len * 2 / 3, len - 200] {
            let mut bytes = pristine.clone();
            bytes[at] ^= 0x5A;
            std::fs::write(&c, &bytes).unwrap();
            let theirs = wimlib_verifies(&c);
            let ours = match Wim::open(FileSource::open(&c).unwrap()) {
                Ok(wim) => wim.verify(&mut |_| {}).is_ok(),
                Err(_) => false,
            };
            assert_eq!(
                ours, theirs,
                "{mode} check={check}: byte {at} of {len} corrupted"
            );
        }
    }
}

/// Apply checks every blob's SHA-1 on the way out, with one thread and with several (blobs
/// wholly inside a batch are hashed by the decoder threads): a flipped byte in a stored
/// blob is a `Hash` error naming a file, never a silently wrong file.
#[test]
fn apply_refuses_corrupted_data() {
    use wim_image::apply::ApplyError;
    use wim_image::blob_table::BlobLocation;
    use wim_image::read::ReadError;
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("apply-corrupt");
    let src = s.path("src");
    build_tree(&src, 0);
    let w = s.path("t.wim");
    run_wimlib(&[
        "capture",
        src.to_str().unwrap(),
        w.to_str().unwrap(),
        "img",
        "--compress=none",
    ]);
    let wim = Wim::open(FileSource::open(&w).unwrap()).unwrap();
    // Some data blobs, stored uncompressed: a flipped byte changes the data, not the framing.
    let targets: Vec<u64> = wim
        .blob_table()
        .blobs
        .iter()
        .filter(|b| !b.is_metadata && b.size > 1000)
        .filter_map(|b| match b.location {
            BlobLocation::Resource { reshdr, .. } => Some(reshdr.offset + reshdr.size_in_wim / 2),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(targets.len(), 3);
    drop(wim);
    let pristine = std::fs::read(&w).unwrap();
    let c = s.path("c.wim");
    for at in targets {
        let mut bytes = pristine.clone();
        bytes[at as usize] ^= 0x5A;
        std::fs::write(&c, &bytes).unwrap();
        let wim = Wim::open(FileSource::open(&c).unwrap()).unwrap();
        for threads in [1, 3] {
            let out = s.path(&format!("out-{at}-{threads}"));
            let opts = ApplyOptions {
                threads,
                unix_data: false,
                rpfix: None,
                memory_limit: None,
            };
            let r = apply(&wim, 1, &out, &opts, &mut |_| ControlFlow::Continue(()));
            assert!(
                matches!(
                    r,
                    Err(ApplyError::Read {
                        source: ReadError::Hash { .. },
                        ..
                    })
                ),
                "byte {at}, {threads} threads: {r:?}"
            );
        }
    }
}
