//! The writer against `wimlib-imagex`: a tree captured by us and by wimlib must give the same
//! metadata (dentry order, attributes, times, streams, links, reparse data), the same XML
//! statistics, and the same tree when wimlib applies either; wimlib `verify` and `info`
//! accept ours, and our reader reads it back. Appends are compared the same way.
//!
//! Skipped with a message when `wimlib-imagex` is missing; fails under `CI=true`.

mod wimlib_support;

use std::fs::File;
use std::path::Path;
use std::process::Command;

use wim_image::codec::Codec;
use wim_image::write::capture::{capture_image, CaptureError, CaptureOptions};
use wim_image::write::export::{export_image, rebuild, Recompress};
use wim_image::write::{ImageProps, WimWriter, WriteError, WriteOptions};
use wim_image::{FileSource, Wim};
use wimlib_support::{
    assert_same_tree, build_tree, bytes, create, open_rw, run_wimlib, set_times, snapshot, wimlib,
    wimlib_verifies, Info, Scratch,
};

/// The source tree's times, restored after each capture: reading a directory or a file moves
/// its access time, and the second capture must see the same times as the first.
struct Times(Vec<(std::path::PathBuf, Info)>);

impl Times {
    fn take(root: &Path) -> Times {
        let t = Times(
            snapshot(root)
                .into_iter()
                .map(|(rel, info)| (root.join(rel), info))
                .collect(),
        );
        t.restore();
        t
    }

    /// Children before parents, so that restoring a child does not touch its parent again.
    fn restore(&self) {
        for (p, info) in self.0.iter().rev() {
            set_times(p, info.atime, info.mtime);
        }
    }
}

fn open(path: &Path) -> Wim<FileSource> {
    Wim::open(FileSource::open(path).unwrap()).unwrap()
}

/// A scratch directory with the test tree in `src`, or `None` without wimlib.
fn scratch_tree(name: &str) -> Option<(Scratch, std::path::PathBuf)> {
    wimlib()?;
    let s = Scratch::new(name);
    let src = s.path("src");
    build_tree(&src, 0);
    Some((s, src))
}

/// `wimlib-imagex capture SRC OUT NAME COMPRESS`.
fn wimlib_capture(src: &Path, out: &Path, name: &str, compress: &str) {
    let (src, out) = (src.to_str().unwrap(), out.to_str().unwrap());
    run_wimlib(&["capture", src, out, name, compress]);
}

fn props(name: &str) -> ImageProps {
    ImageProps {
        name: name.into(),
        description: Some(format!("{name} description")),
        flags: None,
    }
}

/// Our capture of `src` into a new file; `None` if the codec has no compressor yet.
fn our_capture(src: &Path, out: &Path, codec: Option<Codec>, extra: &WriteOptions) -> Option<()> {
    let opts = WriteOptions {
        compression: codec,
        ..extra.clone()
    };
    let f = create(out);
    let mut w = match WimWriter::create(f, &opts) {
        Err(WriteError::CodecUnavailable { codec }) => {
            eprintln!("skipped: no {codec:?} compressor yet");
            return None;
        }
        r => r.unwrap(),
    };
    capture_image(&mut w, src, &props("img"), &CaptureOptions::default()).unwrap();
    w.finish().unwrap();
    Some(())
}

/// Every dentry of image `index` of both files must agree (except offsets and the numeric
/// value of hard-link group ids, compared as groups).
fn assert_same_metadata(ours: &Wim<FileSource>, theirs: &Wim<FileSource>, index: u32) {
    let a = ours.image(index).unwrap();
    let b = theirs.image(index).unwrap();
    let pa: Vec<String> = a.walk().map(|i| a.path(i)).collect();
    let pb: Vec<String> = b.walk().map(|i| b.path(i)).collect();
    assert_eq!(pa, pb, "stored dentry order");
    let mut groups = std::collections::HashMap::new();
    for (ia, ib) in a.walk().zip(b.walk()) {
        let (da, db) = (&a.node(ia).dentry, &b.node(ib).dentry);
        let path = a.path(ia);
        assert_eq!(da.attributes, db.attributes, "{path}: attributes");
        assert_eq!(da.security_id, db.security_id, "{path}: security id");
        assert_eq!(
            (da.creation_time, da.last_write_time, da.last_access_time),
            (db.creation_time, db.last_write_time, db.last_access_time),
            "{path}: times"
        );
        // wimlib 1.13 gives a directory reparse point an empty unnamed data entry, which DISM
        // rejects; we follow wimlib ≥ 1.14.2 and DISM and write none.
        let dir_data =
            |d: &wim_image::dentry::Dentry| d.data.filter(|h| !(d.is_dir() && *h == [0; 20]));
        assert_eq!(dir_data(da), dir_data(db), "{path}: data stream");
        assert_eq!(da.reparse, db.reparse, "{path}: reparse fields");
        assert_eq!(da.reparse_data, db.reparse_data, "{path}: reparse data");
        assert_eq!(da.named_streams, db.named_streams, "{path}: named streams");
        assert_eq!(da.tagged, db.tagged, "{path}: tagged items (UNIX data)");
        assert_eq!(da.link_group == 0, db.link_group == 0, "{path}: linked");
        if da.link_group != 0 {
            let g = *groups.entry(da.link_group).or_insert(db.link_group);
            assert_eq!(g, db.link_group, "{path}: link group");
        }
    }
    assert_eq!(a.security().descriptors, b.security().descriptors);
}

fn assert_same_stats(ours: &Wim<FileSource>, theirs: &Wim<FileSource>, index: u32) {
    let (a, b) = (
        ours.xml().image(index).unwrap(),
        theirs.xml().image(index).unwrap(),
    );
    assert_eq!(a.dir_count(), b.dir_count(), "DIRCOUNT");
    assert_eq!(a.file_count(), b.file_count(), "FILECOUNT");
    assert_eq!(a.total_bytes(), b.total_bytes(), "TOTALBYTES");
    assert_eq!(a.hard_link_bytes(), b.hard_link_bytes(), "HARDLINKBYTES");
    assert!(a.creation_time().is_some() && a.last_modification_time().is_some());
    let end = ours.header().blob_table.end();
    assert_eq!(ours.xml().total_bytes(), end, "WIM TOTALBYTES");
}

/// wimlib accepts the file, and applying image `index` of ours and of theirs gives one tree.
fn assert_applies_same(ours: &Path, theirs: &Path, index: u32, s: &Scratch) {
    assert!(
        wimlib_verifies(ours),
        "wimlib-imagex verify {}",
        ours.display()
    );
    let info = run_wimlib(&["info", ours.to_str().unwrap()]);
    assert!(info.contains("Image Count"), "{info}");
    let idx = index.to_string();
    let (a, b) = (
        s.path(&format!("apply-ours-{index}")),
        s.path(&format!("apply-theirs-{index}")),
    );
    run_wimlib(&["apply", ours.to_str().unwrap(), &idx, a.to_str().unwrap()]);
    run_wimlib(&["apply", theirs.to_str().unwrap(), &idx, b.to_str().unwrap()]);
    assert_same_tree(&a, &b, &format!("apply of image {index}"));
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

fn capture_mode(name: &str, codec: Option<Codec>, wimlib_compress: &str) {
    let Some((s, src)) = scratch_tree(&format!("write-{name}")) else {
        return;
    };
    let times = Times::take(&src);
    let ours = s.path("ours.wim");
    let opts = WriteOptions {
        threads: 2,
        ..WriteOptions::default()
    };
    if our_capture(&src, &ours, codec, &opts).is_none() {
        return;
    }
    times.restore();
    let theirs = s.path("theirs.wim");
    wimlib_capture(&src, &theirs, "img", wimlib_compress);
    let (a, b) = (open(&ours), open(&theirs));
    let report = a.verify(&mut |_| {});
    assert!(report.is_ok(), "our verify: {:?}", report.problems);
    assert_eq!(a.header().flags, b.header().flags, "header flags");
    assert_eq!(a.header().chunk_size, b.header().chunk_size);
    assert_same_metadata(&a, &b, 1);
    assert_same_stats(&a, &b, 1);
    assert_applies_same(&ours, &theirs, 1, &s);
}

#[test]
fn capture_uncompressed() {
    capture_mode("none", None, "--compress=none");
}

#[test]
fn capture_xpress() {
    capture_mode("xpress", Some(Codec::Xpress), "--compress=XPRESS");
}

#[test]
fn capture_lzx() {
    capture_mode("lzx", Some(Codec::Lzx), "--compress=LZX");
}

/// `--solid`: LZMS solid resources (64 MiB chunks) and LZMS-128K metadata, version 0xE00;
/// wimlib verifies and applies it, and our reader reads it back.
#[test]
fn capture_solid() {
    let Some((s, src)) = scratch_tree("write-solid") else {
        return;
    };
    let times = Times::take(&src);
    let ours = s.path("ours.wim");
    let opts = WriteOptions {
        threads: 2,
        solid: Some((Codec::Lzms, 0)),
        ..WriteOptions::default()
    };
    if our_capture(&src, &ours, Some(Codec::Lzms), &opts).is_none() {
        return;
    }
    times.restore();
    let theirs = s.path("theirs.wim");
    wimlib_capture(&src, &theirs, "img", "--solid");
    let (a, b) = (open(&ours), open(&theirs));
    let report = a.verify(&mut |_| {});
    assert!(report.is_ok(), "our verify: {:?}", report.problems);
    assert_eq!(a.header().version, b.header().version, "version");
    assert_eq!(a.header().flags, b.header().flags, "header flags");
    assert_eq!(a.header().chunk_size, b.header().chunk_size);
    assert!(!a.blob_table().solid_runs.is_empty(), "no solid run");
    let out = Command::new("wimlib-imagex")
        .arg("verify")
        .arg(&ours)
        .output()
        .unwrap();
    assert!(out.status.success(), "wimlib verify: {out:?}");
    assert_same_metadata(&a, &b, 1);
    assert_same_stats(&a, &b, 1);
    assert_applies_same(&ours, &theirs, 1, &s);
}

/// `--check` and `--boot`: wimlib checks our integrity table; the boot metadata header
/// matches image 1's.
#[test]
fn capture_integrity_and_boot() {
    let Some((s, src)) = scratch_tree("write-check") else {
        return;
    };
    std::fs::write(src.join("big.bin"), bytes(3, 23 << 20, false)).unwrap();
    let ours = s.path("ours.wim");
    let f = create(&ours);
    let opts = WriteOptions {
        integrity: true,
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(f, &opts).unwrap();
    capture_image(&mut w, &src, &props("img"), &CaptureOptions::default()).unwrap();
    w.set_boot_index(1).unwrap();
    w.finish().unwrap();
    let out = run_wimlib(&["verify", ours.to_str().unwrap()]);
    assert!(out.contains("integrity"), "{out}");
    let wim = open(&ours);
    let t = wim.integrity_table().unwrap().unwrap();
    let covered = wim.header().blob_table.end().unwrap() - 208;
    assert_eq!(t.hashes.len() as u64, covered.div_ceil(10 << 20));
    assert!(t.hashes.len() >= 3);
    assert_eq!(wim.header().boot_index, 1);
    assert_eq!(wim.header().boot_metadata, {
        let b = wim.metadata_blob(1).unwrap();
        match b.location {
            wim_image::blob_table::BlobLocation::Resource { reshdr, .. } => reshdr,
            _ => panic!("metadata in a solid resource"),
        }
    });
    let info = run_wimlib(&["info", ours.to_str().unwrap()]);
    assert!(
        info.contains("Boot Index:         1") || info.contains("Boot Index"),
        "{info}"
    );
}

/// Files too large to be read whole are streamed; those sharing their size with another are
/// hashed first, so a duplicate costs no write (nor, compressed, a compression), and a file
/// of the same size with other bytes is still stored. Uncompressed, the duplicate's chunks
/// would be written before it was found out: the write counts tell. wimlib verifies and
/// applies the result.
#[test]
fn capture_hashes_same_size_large_files_first() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("write-same-size");
    let big = bytes(5, 9 << 20, false);
    let mut other = big.clone();
    other[1 << 20] ^= 1;
    let (two, three) = (s.path("two"), s.path("three"));
    for (dir, files) in [
        (&two, &[("a.bin", &big), ("c.bin", &other)][..]),
        (
            &three,
            &[("a.bin", &big), ("b.bin", &big), ("c.bin", &other)][..],
        ),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        for (name, data) in files {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
    let capture = |src: &Path, out: &Path, compression: Option<Codec>| {
        let opts = WriteOptions {
            compression,
            ..WriteOptions::default()
        };
        let mut w = WimWriter::create(create(out), &opts).unwrap();
        capture_image(&mut w, src, &props("img"), &CaptureOptions::default()).unwrap();
        let writes = w.writes();
        w.finish().unwrap();
        writes
    };
    let base = capture(&two, &s.path("two.wim"), None);
    assert_eq!(capture(&three, &s.path("three.wim"), None), base);
    let lzx = s.path("three-lzx.wim");
    capture(&three, &lzx, Some(Codec::Lzx));
    for wim in [s.path("three.wim"), lzx] {
        assert!(wimlib_verifies(&wim), "{}", wim.display());
        let dir = s.path("applied");
        let _ = std::fs::remove_dir_all(&dir);
        run_wimlib(&["apply", wim.to_str().unwrap(), "1", dir.to_str().unwrap()]);
        for (name, data) in [("a.bin", &big), ("b.bin", &big), ("c.bin", &other)] {
            assert!(std::fs::read(dir.join(name)).unwrap() == *data, "{name}");
        }
        let w = open(&wim);
        assert_eq!(
            w.blob_table().blobs.len(),
            3,
            "two data blobs and the metadata"
        );
    }
}

/// Append a second tree to a capture: ours in place vs `wimlib-imagex append`, from the same
/// starting file.
#[test]
fn append_matches_wimlib() {
    let Some((s, src)) = scratch_tree("write-append") else {
        return;
    };
    let src2 = s.path("src2");
    std::fs::create_dir_all(src2.join("sub")).unwrap();
    std::fs::copy(src.join("text-100000.txt"), src2.join("shared.txt")).unwrap();
    std::fs::write(src2.join("sub/new.bin"), bytes(77, 300_000, true)).unwrap();
    std::fs::write(src2.join("empty"), b"").unwrap();
    let base = s.path("base.wim");
    wimlib_capture(&src, &base, "one", "--compress=none");
    let theirs = s.path("theirs.wim");
    let ours = s.path("ours.wim");
    std::fs::copy(&base, &theirs).unwrap();
    std::fs::copy(&base, &ours).unwrap();
    let before = std::fs::metadata(&ours).unwrap().len();
    let times = Times::take(&src2);
    run_wimlib(&[
        "append",
        src2.to_str().unwrap(),
        theirs.to_str().unwrap(),
        "two",
    ]);
    times.restore();
    let mut w = WimWriter::append(open_rw(&ours), &WriteOptions::default()).unwrap();
    let (index, _) =
        capture_image(&mut w, &src2, &props("two"), &CaptureOptions::default()).unwrap();
    assert_eq!(index, 2);
    w.finish().unwrap();
    let (a, b) = (open(&ours), open(&theirs));
    assert_eq!(a.image_count(), 2);
    let report = a.verify(&mut |_| {});
    assert!(report.is_ok(), "{:?}", report.problems);
    for i in 1..=2 {
        assert_same_metadata(&a, &b, i);
        assert_same_stats(&a, &b, i);
        assert_applies_same(&ours, &theirs, i, &s);
    }
    // The shared file was stored once; only the new file's data and the tables were added.
    let grown = std::fs::metadata(&ours).unwrap().len() - before;
    assert!(grown < 300_000 + 100_000, "appended {grown} bytes");
    // Same names: a duplicate name is refused.
    let mut w = WimWriter::append(open_rw(&ours), &WriteOptions::default()).unwrap();
    assert!(matches!(
        capture_image(&mut w, &src2, &props("two"), &CaptureOptions::default()),
        Err(wim_image::write::capture::CaptureError::Write(
            WriteError::DuplicateName { .. }
        ))
    ));
}

/// A two-image WIM made by wimlib (the test tree, then a small second tree).
fn two_images(s: &Scratch, src: &Path) -> std::path::PathBuf {
    let src2 = s.path("src2");
    std::fs::create_dir_all(src2.join("sub")).unwrap();
    std::fs::copy(src.join("text-100000.txt"), src2.join("shared.txt")).unwrap();
    std::fs::write(src2.join("sub/new.bin"), bytes(78, 200_000, true)).unwrap();
    let base = s.path("base.wim");
    wimlib_capture(src, &base, "one", "--compress=none");
    run_wimlib(&[
        "append",
        src2.to_str().unwrap(),
        base.to_str().unwrap(),
        "two",
    ]);
    base
}

/// `export` of image 2 into a new XPRESS file, and of image 1 into an existing file, against
/// `wimlib-imagex export` of the same images.
#[test]
fn export_matches_wimlib() {
    let Some((s, src)) = scratch_tree("write-export") else {
        return;
    };
    let base = two_images(&s, &src);
    let (ours, theirs) = (s.path("ours.wim"), s.path("theirs.wim"));
    let (b, t) = (base.to_str().unwrap(), theirs.to_str().unwrap());
    run_wimlib(&["export", b, "2", t, "--compress=XPRESS"]);
    run_wimlib(&["export", b, "1", t]);
    let src_wim = open(&base);
    let opts = WriteOptions {
        compression: Some(Codec::Xpress),
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(create(&ours), &opts).unwrap();
    assert_eq!(export_image(&src_wim, 2, &mut w, None).unwrap(), 1);
    w.finish().unwrap();
    let mut w = WimWriter::append(open_rw(&ours), &WriteOptions::default()).unwrap();
    assert_eq!(export_image(&src_wim, 1, &mut w, None).unwrap(), 2);
    w.finish().unwrap();
    let (a, b) = (open(&ours), open(&theirs));
    assert!(a.verify(&mut |_| {}).is_ok());
    assert_eq!(a.header().flags, b.header().flags);
    for i in 1..=2 {
        assert_eq!(
            a.xml().image(i).unwrap().name(),
            b.xml().image(i).unwrap().name()
        );
        assert_eq!(a.xml().image(i).unwrap().index(), Some(i));
        assert_same_metadata(&a, &b, i);
        assert_same_stats(&a, &b, i);
        assert_applies_same(&ours, &theirs, i, &s);
    }
}

/// `delete` (a rebuild without the image) against `wimlib-imagex delete`.
#[test]
fn delete_matches_wimlib() {
    let Some((s, src)) = scratch_tree("write-delete") else {
        return;
    };
    let base = two_images(&s, &src);
    let theirs = s.path("theirs.wim");
    std::fs::copy(&base, &theirs).unwrap();
    run_wimlib(&["delete", theirs.to_str().unwrap(), "1"]);
    let ours = s.path("ours.wim");
    let src_wim = open(&base);
    rebuild(
        &src_wim,
        create(&ours),
        &|i| i != 1,
        &WriteOptions::default(),
        Recompress::Keep,
    )
    .unwrap();
    let (a, b) = (open(&ours), open(&theirs));
    assert_eq!(a.image_count(), 1);
    assert!(a.verify(&mut |_| {}).is_ok());
    assert_same_metadata(&a, &b, 1);
    assert_same_stats(&a, &b, 1);
    assert_applies_same(&ours, &theirs, 1, &s);
    // Only the remaining image's blobs are left, each referenced as often as it is used.
    let blobs = &a.blob_table().blobs;
    let data: Vec<_> = blobs.iter().filter(|b| !b.is_metadata).collect();
    assert_eq!(data.len(), 2, "shared.txt and new.bin");
    assert!(data.iter().all(|b| b.ref_count == 1));
}

/// The stored bytes of every data blob of `wim` (a file at `path`), by hash.
fn stored_resources(wim: &Wim<FileSource>, path: &Path) -> Vec<([u8; 20], Vec<u8>)> {
    use std::os::unix::fs::FileExt;
    let f = File::open(path).unwrap();
    let mut out = Vec::new();
    for b in wim.blob_table().blobs.iter().filter(|b| !b.is_metadata) {
        let wim_image::blob_table::BlobLocation::Resource { reshdr, .. } = b.location else {
            panic!("a solid blob in a non-solid file");
        };
        let mut bytes = vec![0; reshdr.size_in_wim as usize];
        f.read_exact_at(&mut bytes, reshdr.offset).unwrap();
        out.push((b.hash, bytes));
    }
    out.sort();
    out
}

/// `optimize` without a compression change copies every blob as stored (as
/// `wimlib-imagex optimize` does); with `copy_stored` off (`--recompress`) it compresses
/// them again. Both results are accepted by wimlib and apply to the same tree.
#[test]
fn optimize_copies_stored_resources() {
    let Some((s, src)) = scratch_tree("write-copy-stored") else {
        return;
    };
    let base = s.path("base.wim");
    wimlib_capture(&src, &base, "one", "--compress=LZX");
    let src_wim = open(&base);
    let source = stored_resources(&src_wim, &base);
    assert!(source.len() > 5, "the tree has several blobs");
    for copy_stored in [true, false] {
        let ours = s.path(&format!("ours-{copy_stored}.wim"));
        let opts = WriteOptions {
            copy_stored,
            ..WriteOptions::default()
        };
        rebuild(&src_wim, create(&ours), &|_| true, &opts, Recompress::Keep).unwrap();
        run_wimlib(&["verify", ours.to_str().unwrap()]);
        assert_applies_same(&ours, &base, 1, &s);
        let got = stored_resources(&open(&ours), &ours);
        assert_eq!(
            got.iter().map(|(h, _)| h).collect::<Vec<_>>(),
            source.iter().map(|(h, _)| h).collect::<Vec<_>>()
        );
        let same = got.iter().zip(&source).filter(|(a, b)| a.1 == b.1).count();
        if copy_stored {
            assert_eq!(same, source.len(), "every resource copied byte for byte");
        } else {
            // Our LZX encoder is not wimlib's: recompressed resources differ.
            assert!(same < source.len(), "resources were compressed again");
        }
    }
}

/// Captures `src` with `copts` into a new uncompressed file `out`.
fn capture_with(src: &Path, out: &Path, copts: &CaptureOptions) -> Result<(), CaptureError> {
    let mut w = WimWriter::create(create(out), &WriteOptions::default()).unwrap();
    capture_image(&mut w, src, &props("img"), copts)?;
    w.finish().unwrap();
    Ok(())
}

/// `capture --unix-data` against wimlib's: the same dentries (the UNIX data items included:
/// owners, modes, device numbers), the same statistics, special files kept, and
/// `apply --unix-data` of both gives the same tree.
#[test]
fn capture_unix_data() {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("write-unix-data");
    let src = s.path("src");
    std::fs::create_dir_all(src.join("private")).unwrap();
    std::fs::write(src.join("owned.txt"), b"owned\n").unwrap();
    std::fs::write(src.join("private/secret"), bytes(5, 3000, true)).unwrap();
    symlink("owned.txt", src.join("link")).unwrap();
    let mode = |p: &str, m: u32| {
        std::fs::set_permissions(src.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode("owned.txt", 0o640);
    mode("private/secret", 0o600);
    mode("private", 0o700);
    if chown(src.join("owned.txt"), Some(1234), Some(567)).is_err() {
        eprintln!("not root: owners are not varied");
    }
    let fifo = Command::new("mkfifo").arg(src.join("fifo")).status();
    assert!(fifo.is_ok_and(|s| s.success()), "mkfifo");
    let dev = Command::new("mknod")
        .arg(src.join("null"))
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if !dev {
        eprintln!("mknod failed (not root?): no device node in the tree");
    }
    let times = Times::take(&src);
    let (ours, theirs) = (s.path("ours.wim"), s.path("theirs.wim"));
    let copts = CaptureOptions {
        unix_data: true,
        ..CaptureOptions::default()
    };
    capture_with(&src, &ours, &copts).unwrap();
    times.restore();
    wimlib_capture(&src, &theirs, "img", "--unix-data");
    let (a, b) = (open(&ours), open(&theirs));
    assert_same_metadata(&a, &b, 1);
    assert_same_stats(&a, &b, 1);
    let tree = a.image(1).unwrap();
    let fifo = tree.walk().find(|&i| tree.path(i) == "/fifo").unwrap();
    let u = tree
        .node(fifo)
        .dentry
        .unix_data()
        .expect("the FIFO's UNIX data");
    assert_eq!(u.mode & 0o170000, 0o010000, "S_IFIFO");
    assert!(wimlib_verifies(&ours));
    let (pa, pb) = (s.path("apply-ours"), s.path("apply-theirs"));
    for (wim, dir) in [(&ours, &pa), (&theirs, &pb)] {
        run_wimlib(&[
            "apply",
            wim.to_str().unwrap(),
            "1",
            dir.to_str().unwrap(),
            "--unix-data",
        ]);
    }
    assert_same_tree(&pa, &pb, "apply --unix-data");
    let applied = snapshot(&pa);
    assert_eq!(applied[Path::new("fifo")].kind, 's');
    assert_eq!(applied[Path::new("private")].mode & 0o7777, 0o700);
}

/// `capture --dereference` against wimlib's: links to a file and to a directory outside the
/// tree are captured as what they point to; a link back up the tree is an error.
#[test]
fn capture_dereference() {
    use std::os::unix::fs::symlink;
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("write-dereference");
    let (src, outside) = (s.path("src"), s.path("outside"));
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("t.txt"), b"target\n").unwrap();
    std::fs::write(outside.join("sub/deep.bin"), bytes(9, 5000, false)).unwrap();
    symlink(outside.join("t.txt"), src.join("file-link")).unwrap();
    symlink(&outside, src.join("dir-link")).unwrap();
    std::fs::write(src.join("d/plain"), b"plain\n").unwrap();
    let times = [Times::take(&src), Times::take(&outside)];
    let (ours, theirs) = (s.path("ours.wim"), s.path("theirs.wim"));
    let copts = CaptureOptions {
        dereference: true,
        ..CaptureOptions::default()
    };
    capture_with(&src, &ours, &copts).unwrap();
    times.iter().for_each(Times::restore);
    wimlib_capture(&src, &theirs, "img", "--dereference");
    let (a, b) = (open(&ours), open(&theirs));
    assert_same_metadata(&a, &b, 1);
    assert_same_stats(&a, &b, 1);
    assert_applies_same(&ours, &theirs, 1, &s);
    let tree = a.image(1).unwrap();
    let paths: Vec<String> = tree.walk().map(|i| tree.path(i)).collect();
    assert!(
        paths.contains(&"/dir-link/sub/deep.bin".to_string()),
        "{paths:?}"
    );
    // A loop.
    symlink("..", src.join("d/up")).unwrap();
    let err = capture_with(&src, &s.path("loop.wim"), &copts).unwrap_err();
    assert!(matches!(err, CaptureError::Loop { .. }), "{err}");
}

/// What a capture leaves out, against wimlib: its default list without a configuration
/// (root `pagefile.sys`, `System Volume Information`, but not the same names deeper or in
/// another case), then a configuration file with exclusions and exceptions.
#[test]
fn capture_config_matches_wimlib() {
    use wim_image::write::config::CaptureConfig;
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("write-config");
    let src = s.path("src");
    for dir in [
        "sub",
        "System Volume Information",
        "a/b",
        "c",
        "Windows/CSC",
    ] {
        std::fs::create_dir_all(src.join(dir)).unwrap();
    }
    for (i, file) in [
        "pagefile.sys",
        "PAGEFILE.SYS",
        "sub/pagefile.sys",
        "System Volume Information/x",
        "Windows/CSC/cached",
        "Windows/notepad.exe",
        "a.mp3",
        "sub/b.mp3",
        "sub/keep.mp3",
        "sub/keep.txt",
        "a/y.txt",
        "a/b/x.txt",
        "a/b/z.log",
        "c/x.txt",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(src.join(file), bytes(i as u64, 100 + i * 50, true)).unwrap();
    }
    let ini = s.path("config.ini");
    std::fs::write(
        &ini,
        "# what to leave out\n[ExclusionList]\n*.mp3\n/a/*\n\"/sub\"\n\
         [ExclusionException]\n/a/b/z.log\n/sub/keep.txt\nkeep.mp3\n[PrepopulateList]\n/c\n",
    )
    .unwrap();
    let (config, warnings) = CaptureConfig::parse(&std::fs::read(&ini).unwrap()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let cases = [
        ("default", CaptureConfig::default(), None),
        ("file", config, Some(format!("--config={}", ini.display()))),
    ];
    let times = Times::take(&src);
    for (name, config, wimlib_arg) in cases {
        let (ours, theirs) = (
            s.path(&format!("ours-{name}.wim")),
            s.path(&format!("theirs-{name}.wim")),
        );
        let copts = CaptureOptions {
            config,
            ..CaptureOptions::default()
        };
        capture_with(&src, &ours, &copts).unwrap();
        times.restore();
        let (sp, tp) = (src.to_str().unwrap(), theirs.to_str().unwrap());
        let mut args = vec!["capture", sp, tp, "img"];
        if let Some(a) = &wimlib_arg {
            args.push(a);
        }
        run_wimlib(&args);
        times.restore();
        let (a, b) = (open(&ours), open(&theirs));
        assert_same_metadata(&a, &b, 1);
        assert_same_stats(&a, &b, 1);
        let tree = a.image(1).unwrap();
        let paths: Vec<String> = tree.walk().map(|i| tree.path(i)).collect();
        let has = |p: &str| paths.iter().any(|x| x == p);
        assert!(has("/PAGEFILE.SYS") && has("/sub/pagefile.sys") == (name == "default"));
        if name == "default" {
            assert!(!has("/pagefile.sys") && !has("/System Volume Information"));
            assert!(!has("/Windows/CSC") && has("/Windows/notepad.exe") && has("/a.mp3"));
        } else {
            assert!(
                has("/pagefile.sys") && has("/Windows/CSC/cached"),
                "{paths:?}"
            );
            assert!(!has("/a.mp3") && !has("/sub/b.mp3") && has("/sub/keep.mp3"));
            assert!(has("/sub/keep.txt") && has("/a/b/z.log") && !has("/a/b/x.txt"));
            assert!(!has("/a/y.txt") && has("/c/x.txt"));
        }
    }
}
