//! File names that are not valid UTF-16 (unpaired surrogates, which NTFS names may hold)
//! against `wimlib-imagex`, both ways: a WIM we write with such names is verified and applied
//! by wimlib (the files get the WTF-8 bytes of the names), a tree of WTF-8-named files that
//! wimlib captures reads back with the exact units and applies to the same byte names, and
//! our capture of that tree gives the same units. Export, append and update keep the units.
//!
//! The wimlib parts are skipped with a message when `wimlib-imagex` is missing (they fail
//! under `CI=true`); the rest runs anyway.

mod wimlib_support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use wim_image::apply::{apply, ApplyOptions};
use wim_image::defs::FileAttributes;
use wim_image::write::capture::{capture_image, CaptureError, CaptureOptions};
use wim_image::write::export::export_image;
use wim_image::write::image::{Content, Inode, NewImage};
use wim_image::write::update::update_in_place;
use wim_image::write::{ImageProps, NoBlobs, WimWriter, WriteOptions};
use wim_image::{FileSource, Tree, Wim};
use wimlib_support::{
    add_command, assert_same_tree, create, open_rw, run_wimlib, wimlib, wimlib_verifies, Scratch,
};

/// One entry of the test tree: its parent entry, its name as UTF-16 units and as the WTF-8
/// bytes a Linux file gets (written out by hand, not computed by the crate), whether it is a
/// directory.
struct Entry {
    parent: Option<usize>,
    units: &'static [u16],
    wtf8: &'static [u8],
    dir: bool,
}

const fn e(parent: Option<usize>, units: &'static [u16], wtf8: &'static [u8], dir: bool) -> Entry {
    Entry {
        parent,
        units,
        wtf8,
        dir,
    }
}

const TREE: [Entry; 8] = [
    e(None, &[0x61, 0xD800, 0x62], b"a\xED\xA0\x80b", false),
    e(None, &[0xDC00], b"\xED\xB0\x80", false),
    // Two names with the same lossy form ("x\u{FFFD}"): both must stay.
    e(None, &[0x78, 0xD800], b"x\xED\xA0\x80", false),
    e(None, &[0x78, 0xD801], b"x\xED\xA0\x81", false),
    // A real pair (U+1F600) and then a lone trail.
    e(
        None,
        &[0xD83D, 0xDE00, 0xDFFF],
        b"\xF0\x9F\x98\x80\xED\xBF\xBF",
        false,
    ),
    e(None, &[0x70, 0x6C, 0x61, 0x69, 0x6E], b"plain", false),
    e(None, &[0xD800, 0x64], b"\xED\xA0\x80d", true),
    e(Some(6), &[0xDBFF], b"\xED\xAF\xBF", false),
];

/// The relative WTF-8 path of entry `i`.
fn rel_bytes(i: usize) -> Vec<u8> {
    let mut p = match TREE[i].parent {
        Some(p) => {
            let mut v = rel_bytes(p);
            v.push(b'/');
            v
        }
        None => Vec::new(),
    };
    p.extend_from_slice(TREE[i].wtf8);
    p
}

/// The relative path of entry `i` as UTF-16 units.
fn rel_units(i: usize) -> Vec<u16> {
    let mut p = match TREE[i].parent {
        Some(p) => {
            let mut v = rel_units(p);
            v.push(u16::from(b'/'));
            v
        }
        None => Vec::new(),
    };
    p.extend_from_slice(TREE[i].units);
    p
}

fn content(i: usize) -> Vec<u8> {
    format!("file {i}\n").into_bytes()
}

/// Every relative path in the test tree, as bytes.
fn expected_paths() -> BTreeSet<Vec<u8>> {
    (0..TREE.len()).map(rel_bytes).collect()
}

/// Every relative path under `root` as raw bytes, with each file's content.
fn byte_paths(root: &Path) -> BTreeSet<(Vec<u8>, Option<Vec<u8>>)> {
    fn walk(dir: &Path, prefix: &[u8], out: &mut BTreeSet<(Vec<u8>, Option<Vec<u8>>)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let mut rel = prefix.to_vec();
            rel.extend_from_slice(entry.file_name().as_bytes());
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                out.insert((rel.clone(), None));
                rel.push(b'/');
                walk(&path, &rel, out);
            } else {
                out.insert((rel, Some(fs::read(&path).unwrap())));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, b"", &mut out);
    out
}

/// What `byte_paths` must give for the test tree.
fn expected_files() -> BTreeSet<(Vec<u8>, Option<Vec<u8>>)> {
    (0..TREE.len())
        .map(|i| (rel_bytes(i), (!TREE[i].dir).then(|| content(i))))
        .collect()
}

/// Makes the test tree as files under `root`, named by their raw bytes.
fn make_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    for (i, en) in TREE.iter().enumerate() {
        let p = root.join(OsStr::from_bytes(&rel_bytes(i)));
        if en.dir {
            fs::create_dir(&p).unwrap();
        } else {
            fs::write(&p, content(i)).unwrap();
        }
    }
}

/// The test tree as an image, named through [`NewImage::add_dentry_utf16`].
fn new_image() -> NewImage {
    let t = 132_000_000_000_000_000;
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, t, t, t));
    let mut ids = Vec::new();
    for (i, en) in TREE.iter().enumerate() {
        let inode = if en.dir {
            Inode::new(FileAttributes::DIRECTORY, t, t, t)
        } else {
            let mut f = Inode::new(FileAttributes::NORMAL, t, t, t);
            let c = content(i);
            f.data = img.add_stream(c.len() as u64, Content::Bytes(c.into()));
            f
        };
        let inode = img.add_inode(inode);
        let parent = en.parent.map_or(0, |p| ids[p]);
        ids.push(img.add_dentry_utf16(parent, en.units, inode));
    }
    img
}

fn props(name: &str) -> ImageProps {
    ImageProps {
        name: name.into(),
        ..ImageProps::default()
    }
}

fn open(path: &Path) -> Wim<FileSource> {
    Wim::open(FileSource::open(path).unwrap()).unwrap()
}

/// Writes the test tree as a new WIM at `path` with our writer.
fn write_our_wim(path: &Path) {
    let mut w = WimWriter::create(create(path), &WriteOptions::default()).unwrap();
    w.add_image(&mut new_image(), &props("wtf8"), &mut NoBlobs)
        .unwrap();
    w.finish().unwrap();
}

/// Every node's path below the root as exact UTF-16 units, in walk order, and whether its
/// dentry carries exact units.
fn unit_paths(tree: &Tree) -> Vec<(Vec<u16>, bool)> {
    tree.walk()
        .skip(1)
        .map(|id| {
            let mut parts = Vec::new();
            let mut cur = id;
            while cur != 0 {
                let d = &tree.node(cur).dentry;
                parts.push(
                    d.name_utf16
                        .clone()
                        .unwrap_or_else(|| d.name.encode_utf16().collect()),
                );
                cur = tree.node(cur).parent;
            }
            parts.reverse();
            (
                parts.join(&u16::from(b'/')),
                tree.node(id).dentry.name_utf16.is_some(),
            )
        })
        .collect()
}

/// Checks that image `index` of `wim` holds the test tree with exact names: the units of
/// every surrogate name in `name_utf16`, and `None` for the valid one.
fn assert_exact_names(wim: &Wim<FileSource>, index: u32, what: &str) {
    let tree = wim.image(index).unwrap();
    let got: BTreeSet<(Vec<u16>, bool)> = unit_paths(&tree).into_iter().collect();
    let want: BTreeSet<(Vec<u16>, bool)> = (0..TREE.len())
        .map(|i| (rel_units(i), String::from_utf16(TREE[i].units).is_err()))
        .collect();
    assert_eq!(got, want, "{what}: image {index}");
    for id in tree.walk().skip(1) {
        let d = &tree.node(id).dentry;
        if let Some(u) = &d.name_utf16 {
            assert_eq!(d.name, String::from_utf16_lossy(u), "{what}: lossy name");
        }
    }
}

/// `wimlib-imagex ARGS`, its standard output as bytes.
fn wimlib_stdout(args: &[&OsStr]) -> Vec<u8> {
    let o = Command::new("wimlib-imagex").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "wimlib-imagex {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The lines of `wimlib-imagex dir WIM INDEX`, as bytes.
fn wimlib_dir(wim: &Path, index: u32) -> Vec<Vec<u8>> {
    let idx = index.to_string();
    let out = wimlib_stdout(&[OsStr::new("dir"), wim.as_os_str(), OsStr::new(&idx)]);
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// `wimlib-imagex apply WIM INDEX DEST`.
fn wimlib_apply(wim: &Path, index: u32, dest: &Path) {
    let idx = index.to_string();
    wimlib_stdout(&[
        OsStr::new("apply"),
        wim.as_os_str(),
        OsStr::new(&idx),
        dest.as_os_str(),
    ]);
}

fn our_apply(wim: &Path, dest: &Path) {
    apply(&open(wim), 1, dest, &ApplyOptions::default(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
}

/// A WIM written by us with surrogate names: wimlib verifies it, lists and applies the WTF-8
/// names, and our own apply gives the same files.
#[test]
fn our_wim_read_by_wimlib() {
    let s = Scratch::new("wtf8-ours");
    let wim = s.path("ours.wim");
    write_our_wim(&wim);
    assert_exact_names(&open(&wim), 1, "our writer");
    let ours = s.path("ours-applied");
    our_apply(&wim, &ours);
    if wimlib().is_none() {
        assert_eq!(byte_paths(&ours), expected_files(), "our apply");
        return;
    }
    assert!(wimlib_verifies(&wim), "wimlib-imagex verify");
    let mut want: BTreeSet<Vec<u8>> = expected_paths()
        .into_iter()
        .map(|p| [b"/".as_slice(), &p].concat())
        .collect();
    want.insert(b"/".to_vec());
    let listed = wimlib_dir(&wim, 1);
    assert_eq!(listed.len(), want.len(), "wimlib dir: {listed:?}");
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), want);
    let theirs = s.path("theirs-applied");
    wimlib_apply(&wim, 1, &theirs);
    // Compared before listing (which moves the directories' access times).
    assert_same_tree(&ours, &theirs, "applied by us and by wimlib");
    assert_eq!(byte_paths(&ours), expected_files(), "our apply");
    assert_eq!(byte_paths(&theirs), expected_files(), "wimlib apply");
}

/// A tree of WTF-8-named files captured by wimlib: our reader has the exact units, our apply
/// the same byte names; our capture of the tree gives the same units, and wimlib reads it.
#[test]
fn wimlib_capture_read_by_us() {
    if wimlib().is_none() {
        return;
    }
    let s = Scratch::new("wtf8-theirs");
    let src = s.path("src");
    make_tree(&src);
    assert_eq!(byte_paths(&src), expected_files());
    let theirs = s.path("theirs.wim");
    run_wimlib(&[
        "capture",
        src.to_str().unwrap(),
        theirs.to_str().unwrap(),
        "img",
    ]);
    let t = open(&theirs);
    assert_exact_names(&t, 1, "wimlib capture");
    assert!(t.verify(&mut |_| {}).is_ok());
    let applied = s.path("ours-of-theirs");
    our_apply(&theirs, &applied);
    let by_wimlib = s.path("theirs-of-theirs");
    wimlib_apply(&theirs, 1, &by_wimlib);
    assert_same_tree(&applied, &by_wimlib, "wimlib's capture applied");
    assert_eq!(byte_paths(&applied), expected_files(), "our apply");

    // Our capture of the same tree.
    let ours = s.path("ours.wim");
    let mut w = WimWriter::create(create(&ours), &WriteOptions::default()).unwrap();
    capture_image(&mut w, &src, &props("img"), &CaptureOptions::default()).unwrap();
    w.finish().unwrap();
    let o = open(&ours);
    assert_exact_names(&o, 1, "our capture");
    assert_eq!(
        unit_paths(&o.image(1).unwrap()),
        unit_paths(&t.image(1).unwrap()),
        "same names in the same order as wimlib"
    );
    assert!(wimlib_verifies(&ours));
    assert_eq!(wimlib_dir(&ours, 1), wimlib_dir(&theirs, 1), "wimlib dir");
    let ours_by_wimlib = s.path("theirs-of-ours");
    wimlib_apply(&ours, 1, &ours_by_wimlib);
    assert_eq!(
        byte_paths(&ours_by_wimlib),
        expected_files(),
        "wimlib apply"
    );
}

/// Export (to a new file and appended to an existing one) and an in-place update rewrite
/// the metadata: the names keep their exact units.
#[test]
fn export_append_update_keep_units() {
    let s = Scratch::new("wtf8-export");
    let src = s.path("src.wim");
    write_our_wim(&src);
    let src_wim = open(&src);

    let out = s.path("exported.wim");
    let mut w = WimWriter::create(create(&out), &WriteOptions::default()).unwrap();
    assert_eq!(export_image(&src_wim, 1, &mut w, Some("one")).unwrap(), 1);
    w.finish().unwrap();
    assert_exact_names(&open(&out), 1, "export");

    let mut w = WimWriter::append(open_rw(&out), &WriteOptions::default()).unwrap();
    assert_eq!(export_image(&src_wim, 1, &mut w, Some("two")).unwrap(), 2);
    w.finish().unwrap();
    let o = open(&out);
    assert_eq!(o.image_count(), 2);
    assert_exact_names(&o, 1, "append");
    assert_exact_names(&o, 2, "append");

    // Update image 2 in place: its tree is rebuilt from what was read, plus a new file whose
    // name is WTF-8 on disk.
    let add = s.path("add");
    fs::create_dir_all(&add).unwrap();
    fs::write(add.join(OsStr::from_bytes(b"new\xED\xB2\x80")), b"new").unwrap();
    let cmds = [add_command(&add, "/added")];
    update_in_place(open_rw(&out), 2, &cmds, &WriteOptions::default()).unwrap();
    let o = open(&out);
    assert!(o.verify(&mut |_| {}).is_ok());
    assert_exact_names(&o, 1, "after update");
    let tree = o.image(2).unwrap();
    let added = tree.lookup("/added/new\u{FFFD}").unwrap();
    assert_eq!(
        tree.node(added).dentry.name_utf16.as_deref(),
        Some(&[0x6E, 0x65, 0x77, 0xDC80][..])
    );
    let rest: BTreeSet<(Vec<u16>, bool)> = unit_paths(&tree)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&"added".encode_utf16().collect::<Vec<_>>()))
        .collect();
    let want: BTreeSet<(Vec<u16>, bool)> = (0..TREE.len())
        .map(|i| (rel_units(i), String::from_utf16(TREE[i].units).is_err()))
        .collect();
    assert_eq!(rest, want, "update: the other names");
    if wimlib().is_some() {
        assert!(wimlib_verifies(&out));
        let listed = wimlib_dir(&out, 2);
        assert!(
            listed.contains(&b"/added/new\xED\xB2\x80".to_vec()),
            "{listed:?}"
        );
        assert!(listed.contains(&b"/x\xED\xA0\x81".to_vec()), "{listed:?}");
    }
}

/// Names that are neither UTF-8 nor well-formed WTF-8 are refused by capture.
#[test]
fn capture_refuses_ill_formed_names() {
    let bad: [&[u8]; 4] = [
        // A surrogate pair encoded as two 3-byte sequences (wimlib takes it as the pair).
        b"p\xED\xA0\x80\xED\xB0\x80",
        b"f\xFF",
        // Overlong '/'.
        b"o\xC0\xAF",
        b"t\xED\xA0",
    ];
    let s = Scratch::new("wtf8-bad");
    for (i, name) in bad.iter().enumerate() {
        let dir = s.path(&format!("d{i}"));
        fs::create_dir_all(&dir).unwrap();
        let file: PathBuf = dir.join(OsStr::from_bytes(name));
        fs::write(&file, b"x").unwrap();
        let out = s.path(&format!("bad{i}.wim"));
        let mut w = WimWriter::create(create(&out), &WriteOptions::default()).unwrap();
        match capture_image(&mut w, &dir, &props("x"), &CaptureOptions::default()) {
            Err(CaptureError::Encoding { path }) => assert_eq!(path, file),
            r => panic!("{name:x?}: {r:?}"),
        }
    }
}
