//! The writer in memory: random trees written and read back give the same tree (names,
//! attributes, times, contents, hard links, reparse data), in one or several images with
//! single-instance storage; and an append, an update (an image's tree replaced) and an
//! in-place delete cut at every write boundary leave a WIM whose original images still read,
//! checked with our reader at every cut and with `wimlib-imagex` at a few.

mod wimlib_support;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use proptest::prelude::*;
use wim_image::codec::Codec;
use wim_image::defs::{FileAttributes, ReparseTag};
use wim_image::dentry::ReparseInfo;
use wim_image::write::image::{Content, DentryId, Inode, NewImage};
use wim_image::write::inplace::{delete_in_place, Fate};
use wim_image::write::split::{split, split_into};
use wim_image::write::{ImageProps, NoBlobs, SinkError, WimWriter, WriteAt, WriteOptions};
use wim_image::Wim;

/// One generated file system object.
#[derive(Clone, Debug)]
enum Spec {
    Dir(Vec<(String, Spec)>),
    File(Vec<u8>, u64),
    /// A second name for the n-th file created so far (modulo their number).
    Link(usize),
    Reparse(Vec<u8>),
}

fn name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-cA-C_ä.Ω😀 ]{1,6}")
        .unwrap()
        .prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn spec() -> impl Strategy<Value = Spec> {
    let contents = prop_oneof![
        Just(Vec::new()),
        Just(b"shared content".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..300),
        (1usize..3).prop_map(|k| vec![k as u8; 70_000 * k]),
    ];
    let leaf = prop_oneof![
        4 => (contents, any::<u64>()).prop_map(|(c, t)| Spec::File(c, t >> 8)),
        1 => any::<usize>().prop_map(Spec::Link),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Spec::Reparse),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        proptest::collection::btree_map(name(), inner, 0..6)
            .prop_map(|m| Spec::Dir(m.into_iter().collect()))
    })
}

/// What a path must read back as.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expect {
    attributes: FileAttributes,
    write_time: u64,
    data: Option<Vec<u8>>,
    reparse: Option<Vec<u8>>,
    /// Index of the first path of the same file (hard links).
    file: usize,
}

struct Builder {
    img: NewImage,
    expect: BTreeMap<String, Expect>,
    files: Vec<(u32, String)>,
}

impl Builder {
    fn add(&mut self, parent: DentryId, path: &str, spec: &Spec) {
        let Spec::Dir(children) = spec else {
            unreachable!("the root is a directory")
        };
        for (name, child) in children {
            let p = format!("{path}/{name}");
            match child {
                Spec::Dir(_) => {
                    let t = 130_000_000_000_000_000 + p.len() as u64;
                    let inode = self
                        .img
                        .add_inode(Inode::new(FileAttributes::DIRECTORY, t, t, t));
                    let d = self.img.add_dentry(parent, name.clone(), inode);
                    self.expect.insert(
                        p.clone(),
                        expect(FileAttributes::DIRECTORY, t, self.expect.len()),
                    );
                    self.add(d, &p, child);
                }
                Spec::File(data, t) => {
                    let mut inode = Inode::new(FileAttributes::NORMAL, *t, *t + 1, *t);
                    inode.data = self.img.add_stream(
                        data.len() as u64,
                        Content::Bytes(Arc::from(data.as_slice())),
                    );
                    let inode = self.img.add_inode(inode);
                    self.img.add_dentry(parent, name.clone(), inode);
                    let mut e = expect(FileAttributes::NORMAL, *t, self.expect.len());
                    e.data = Some(data.clone());
                    self.files.push((inode, p.clone()));
                    self.expect.insert(p, e);
                }
                Spec::Link(n) if !self.files.is_empty() => {
                    let (inode, first) = self.files[n % self.files.len()].clone();
                    self.img.add_dentry(parent, name.clone(), inode);
                    let e = self.expect[&first].clone();
                    self.expect.insert(p, e);
                }
                Spec::Link(_) => {}
                Spec::Reparse(data) => {
                    let mut inode = Inode::new(FileAttributes::REPARSE_POINT, 5, 6, 7);
                    inode.reparse = Some(ReparseInfo {
                        tag: ReparseTag(0x8000_0099),
                        reserved: 0,
                        flags: 1,
                    });
                    inode.reparse_data = self.img.add_stream(
                        data.len() as u64,
                        Content::Bytes(Arc::from(data.as_slice())),
                    );
                    let inode = self.img.add_inode(inode);
                    self.img.add_dentry(parent, name.clone(), inode);
                    let mut e = expect(FileAttributes::REPARSE_POINT, 7, self.expect.len());
                    e.reparse = Some(data.clone());
                    // A non-directory reparse point has an (empty) unnamed data stream.
                    e.data = Some(Vec::new());
                    self.expect.insert(p, e);
                }
            }
        }
    }
}

fn expect(attributes: FileAttributes, write_time: u64, file: usize) -> Expect {
    Expect {
        attributes,
        write_time,
        data: None,
        reparse: None,
        file,
    }
}

fn build(spec: &Spec) -> (NewImage, BTreeMap<String, Expect>) {
    let root = Inode::new(FileAttributes::DIRECTORY, 1, 2, 3);
    let mut b = Builder {
        img: NewImage::new(root),
        expect: BTreeMap::new(),
        files: Vec::new(),
    };
    b.add(0, "", spec);
    (b.img, b.expect)
}

/// Reads image `index` back into the same shape as the expectations.
fn read_back<R: wim_image::ReadAt>(wim: &Wim<R>, index: u32) -> BTreeMap<String, Expect> {
    let tree = wim.image(index).unwrap();
    let mut reader = wim.reader();
    let mut out = BTreeMap::new();
    let mut groups: BTreeMap<u64, usize> = BTreeMap::new();
    let mut content = |h: Option<[u8; 20]>| -> Option<Vec<u8>> {
        let h = h?;
        if h == [0; 20] {
            return Some(Vec::new());
        }
        Some(reader.read_verified(wim.blob(&h).unwrap()).unwrap())
    };
    for id in tree.walk().skip(1) {
        let d = &tree.node(id).dentry;
        let path = tree.path(id);
        let file = if d.link_group != 0 {
            *groups.entry(d.link_group).or_insert(out.len())
        } else {
            out.len()
        };
        let e = Expect {
            attributes: d.attributes,
            write_time: d.last_write_time,
            data: if d.is_dir() { None } else { content(d.data) },
            reparse: d.reparse.and_then(|_| content(d.reparse_data)),
            file,
        };
        out.insert(path, e);
    }
    out
}

/// Hard-link groups compared by their members, not by numbering.
fn normalize(m: &BTreeMap<String, Expect>) -> BTreeMap<String, Expect> {
    let paths: Vec<&String> = m.keys().collect();
    let mut first: BTreeMap<usize, usize> = BTreeMap::new();
    m.iter()
        .enumerate()
        .map(|(i, (p, e))| {
            let mut e = e.clone();
            e.file = *first.entry(e.file).or_insert(i);
            let _ = &paths;
            (p.clone(), e)
        })
        .collect()
}

fn write(images: &mut [NewImage], opts: &WriteOptions) -> Vec<u8> {
    let mut w = WimWriter::create(Vec::new(), opts).unwrap();
    for (i, img) in images.iter_mut().enumerate() {
        let props = ImageProps {
            name: format!("image {i}"),
            ..ImageProps::default()
        };
        w.add_image(img, &props, &mut NoBlobs).unwrap();
    }
    w.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn trees_round_trip(a in spec(), b in spec(), integrity in any::<bool>(), xpress in any::<bool>()) {
        let (ia, ea) = build(&Spec::Dir(vec![("a".into(), a)]));
        let (ib, eb) = build(&b_root(b));
        let compression = xpress.then_some(Codec::Xpress);
        let opts = WriteOptions { integrity, threads: 2, compression, chunk_size: 4096, ..WriteOptions::default() };
        let bytes = write(&mut [ia, ib], &opts);
        let wim = Wim::open(bytes).unwrap();
        prop_assert_eq!(wim.image_count(), 2);
        let ok = wim.verify(&mut |_| ()).is_ok();
        prop_assert!(ok);
        prop_assert_eq!(normalize(&read_back(&wim, 1)), normalize(&ea));
        prop_assert_eq!(normalize(&read_back(&wim, 2)), normalize(&eb));
        // Single instance: no two data entries hold the same data (two images with identical
        // trees have identical metadata, each its own entry).
        let mut seen = std::collections::BTreeSet::new();
        for blob in wim.blob_table().blobs.iter().filter(|b| !b.is_metadata) {
            prop_assert!(seen.insert(blob.hash));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Solid output with small chunks (XPRESS 4 KiB or LZMS 32 KiB) reads back, and is
    /// the same on one, two or three threads (chunks come back in order whichever thread
    /// finishes first).
    #[test]
    fn solid_trees_round_trip(a in spec(), b in spec(), lzms in any::<bool>()) {
        let a = Spec::Dir(vec![("a".into(), a)]);
        let b = b_root(b);
        let (ia, ea) = build(&a);
        let (ib, eb) = build(&b);
        let solid = if lzms { (Codec::Lzms, 32768) } else { (Codec::Xpress, 4096) };
        let opts = WriteOptions {
            threads: 2,
            solid: Some(solid),
            guid: [7; 16],
            now: 0x01d9_0000_0000_0000,
            ..WriteOptions::default()
        };
        let bytes = write(&mut [ia, ib], &opts);
        for threads in [1, 3] {
            let (ia, _) = build(&a);
            let (ib, _) = build(&b);
            let other = write(&mut [ia, ib], &WriteOptions { threads, ..opts.clone() });
            prop_assert!(other == bytes, "{} threads differ from 2", threads);
        }
        let wim = Wim::open(bytes).unwrap();
        prop_assert_eq!(wim.header().version, wim_image::defs::WimVersion::SOLID);
        let ok = wim.verify(&mut |_| ()).is_ok();
        prop_assert!(ok);
        prop_assert_eq!(normalize(&read_back(&wim, 1)), normalize(&ea));
        prop_assert_eq!(normalize(&read_back(&wim, 2)), normalize(&eb));
        let data = wim.blob_table().blobs.iter().filter(|b| !b.is_metadata).count();
        prop_assert_eq!(wim.blob_table().solid_runs.len(), usize::from(data > 0));
    }
}

fn b_root(b: Spec) -> Spec {
    match b {
        d @ Spec::Dir(_) => d,
        other => Spec::Dir(vec![("only".into(), other)]),
    }
}

/// A sink that drops every write after the first `keep` (a crash at that boundary).
struct CutSink {
    data: Vec<u8>,
    keep: u64,
    writes: u64,
}

impl WriteAt for CutSink {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<(), SinkError> {
        self.writes += 1;
        if self.writes <= self.keep {
            WriteAt::write_all_at(&mut self.data, buf, offset)?;
        }
        Ok(())
    }
    /// After the cut the writer is a dead process: what it reads of dropped writes (zeros
    /// here) never reaches the file.
    fn read_back(&self, buf: &mut [u8], offset: u64) -> Result<(), SinkError> {
        if WriteAt::read_back(&self.data, buf, offset).is_err() {
            buf.fill(0);
        }
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> Result<(), SinkError> {
        self.writes += 1;
        if self.writes <= self.keep {
            WriteAt::set_len(&mut self.data, len)?;
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn crash_tree(seed: u8) -> (NewImage, BTreeMap<String, Expect>) {
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i * 7 + seed as u32) as u8)
        .collect();
    let spec = Spec::Dir(vec![
        (
            "dir".into(),
            Spec::Dir(vec![("big".into(), Spec::File(big, 9))]),
        ),
        ("small".into(), Spec::File(vec![seed; 100], 10)),
        ("shared".into(), Spec::File(b"shared content".to_vec(), 11)),
        ("link".into(), Spec::Link(0)),
    ]);
    build(&spec)
}

fn append(sink: CutSink, integrity: bool) -> CutSink {
    let (mut img, _) = crash_tree(2);
    let opts = WriteOptions {
        integrity,
        ..WriteOptions::default()
    };
    let mut w = WimWriter::append(sink, &opts).unwrap();
    let props = ImageProps {
        name: "appended".into(),
        ..ImageProps::default()
    };
    w.add_image(&mut img, &props, &mut NoBlobs).unwrap();
    w.finish().unwrap()
}

/// Files cut after some number of writes.
type CutFiles = [(u64, Vec<u8>)];

/// Runs `op` on `base` with a crash after every possible number of writes: every cut file
/// must open, verify and satisfy `old` (and `new` when no write was lost); wimlib checks a
/// few of them with `wimlib_check`.
fn cut_at_every_write(
    base: &[u8],
    op: &dyn Fn(CutSink) -> CutSink,
    old: &dyn Fn(&Wim<&[u8]>, u64),
    new: &dyn Fn(&Wim<&[u8]>),
    wimlib_check: &dyn Fn(&CutFiles, u64),
) {
    let sink = |keep| CutSink {
        data: base.to_vec(),
        keep,
        writes: 0,
    };
    let total = op(sink(u64::MAX)).writes;
    assert!(total >= 4, "{total} writes");
    let mut cut_files = Vec::new();
    for keep in 0..=total {
        let out = op(sink(keep));
        let wim = Wim::open(out.data.as_slice())
            .unwrap_or_else(|e| panic!("cut after {keep} of {total} writes: {e}"));
        assert!(wim.verify(&mut |_| {}).is_ok(), "cut after {keep}");
        if keep == total {
            new(&wim);
        } else {
            old(&wim, keep);
        }
        if [0, 1, total / 2, total - 1, total].contains(&keep) {
            cut_files.push((keep, out.data));
        }
    }
    wimlib_check(&cut_files, total);
}

#[test]
fn append_survives_a_cut_at_every_write() {
    let (img, expect1) = crash_tree(1);
    let (_, expect2) = crash_tree(2);
    for integrity in [false, true] {
        let opts = WriteOptions {
            integrity,
            ..WriteOptions::default()
        };
        let base = write(&mut [img.clone()], &opts);
        cut_at_every_write(
            &base,
            &|s| append(s, integrity),
            &|wim, keep| {
                assert_eq!(wim.image_count(), 1, "cut after {keep}");
                assert_eq!(normalize(&read_back(wim, 1)), normalize(&expect1));
            },
            &|wim| {
                assert_eq!(wim.image_count(), 2);
                assert_eq!(normalize(&read_back(wim, 1)), normalize(&expect1));
                assert_eq!(normalize(&read_back(wim, 2)), normalize(&expect2));
            },
            &|files, total| check_with_wimlib("append", files, total, "2", "1"),
        );
    }
}

/// The two images of [`two_images`] are intact.
fn both_old(
    wim: &Wim<&[u8]>,
    keep: u64,
    expect1: &BTreeMap<String, Expect>,
    expect2: &BTreeMap<String, Expect>,
) {
    assert_eq!(wim.image_count(), 2, "cut after {keep}");
    assert_eq!(normalize(&read_back(wim, 1)), normalize(expect1));
    assert_eq!(normalize(&read_back(wim, 2)), normalize(expect2));
}

/// Two images, uncompressed or XPRESS.
fn two_images(xpress: bool) -> Vec<u8> {
    let opts = WriteOptions {
        compression: xpress.then_some(Codec::Xpress),
        ..WriteOptions::default()
    };
    write(&mut [crash_tree(1).0, crash_tree(2).0], &opts)
}

#[test]
fn update_survives_a_cut_at_every_write() {
    let (_, expect1) = crash_tree(1);
    let (_, expect2) = crash_tree(2);
    let (_, expect3) = crash_tree(3);
    for xpress in [false, true] {
        let base = two_images(xpress);
        // Image 1 gets a new tree (new blobs and shared ones); image 2 stays.
        let op = |s: CutSink| {
            let mut w =
                WimWriter::rewrite(s, &WriteOptions::default(), &[Fate::Replace, Fate::Keep])
                    .unwrap();
            w.replace_image(1, &mut crash_tree(3).0, &mut NoBlobs)
                .unwrap();
            w.finish().unwrap()
        };
        cut_at_every_write(
            &base,
            &op,
            &|wim, keep| both_old(wim, keep, &expect1, &expect2),
            &|wim| {
                assert_eq!(wim.image_count(), 2);
                assert_eq!(normalize(&read_back(wim, 1)), normalize(&expect3));
                assert_eq!(normalize(&read_back(wim, 2)), normalize(&expect2));
                // Image 1's old big file is gone from the table; the shared blob counts 2.
                let blobs = &wim.blob_table().blobs;
                assert_eq!(blobs.iter().filter(|b| b.size == 200_000).count(), 2);
                let shared = blobs.iter().find(|b| b.size == 14).unwrap();
                assert_eq!(shared.ref_count, 2);
            },
            &|files, total| check_with_wimlib("update", files, total, "2", "2"),
        );
    }
}

#[test]
fn delete_in_place_survives_a_cut_at_every_write() {
    let (_, expect1) = crash_tree(1);
    let (_, expect2) = crash_tree(2);
    for xpress in [false, true] {
        let base = two_images(xpress);
        let op = |s: CutSink| delete_in_place(s, &[1], &WriteOptions::default()).unwrap();
        cut_at_every_write(
            &base,
            &op,
            &|wim, keep| both_old(wim, keep, &expect1, &expect2),
            &|wim| {
                assert_eq!(wim.image_count(), 1);
                assert_eq!(normalize(&read_back(wim, 1)), normalize(&expect2));
                // Only image 2's blobs stay: its big file, small file and the shared one.
                let data = wim.blob_table().blobs.iter().filter(|b| !b.is_metadata);
                assert_eq!(data.count(), 3);
            },
            &|files, total| check_with_wimlib("delete", files, total, "1", "2"),
        );
    }
}

/// wimlib verifies a WIM cut at a few points, lists `/dir/big` in image 1 and counts
/// `images_new` images after the last write, `images_old` before.
fn check_with_wimlib(
    what: &str,
    files: &[(u64, Vec<u8>)],
    total: u64,
    images_new: &str,
    images_old: &str,
) {
    if wimlib_support::wimlib().is_none() {
        return;
    }
    let s = wimlib_support::Scratch::new(&format!("cut-{what}"));
    for (keep, data) in files {
        let p = s.path(&format!("cut-{keep}.wim"));
        std::fs::write(&p, data).unwrap();
        let p = p.to_str().unwrap();
        wimlib_support::run_wimlib(&["verify", p]);
        let listing = wimlib_support::run_wimlib(&["dir", p, "1"]);
        assert!(listing.contains("/dir/big"), "{listing}");
        let images = if *keep == total {
            images_new
        } else {
            images_old
        };
        let info = wimlib_support::run_wimlib(&["info", p]);
        assert!(
            info.lines()
                .any(|l| l.starts_with("Image Count:") && l.trim_end().ends_with(images)),
            "cut after {keep}: {info}"
        );
    }
}

/// Split into parts of at most 1000 bytes of resources: the set opens with every image intact,
/// each part lists only its own blobs, part 1 holds the metadata; unsplit, the boot index
/// stays.
#[test]
fn split_parts_read_back() {
    let (_, expect1) = crash_tree(1);
    let (_, expect2) = crash_tree(2);
    for xpress in [false, true] {
        let src = two_images(xpress);
        let wim = Wim::open(src.as_slice()).unwrap();
        let parts = split(&wim, 1000, &mut |_| Ok(Vec::new())).unwrap();
        assert!(parts.len() >= 3, "{} parts", parts.len());
        let set = Wim::open_parts(parts.iter().map(Vec::as_slice).collect()).unwrap();
        assert!(set.verify(&mut |_| {}).is_ok());
        assert_eq!(normalize(&read_back(&set, 1)), normalize(&expect1));
        assert_eq!(normalize(&read_back(&set, 2)), normalize(&expect2));
        for (i, p) in parts.iter().enumerate() {
            let h = wim_image::header::Header::parse(p[..208].try_into().unwrap()).unwrap();
            assert_eq!(
                (h.part_number as usize, h.total_parts as usize),
                (i + 1, parts.len())
            );
            assert_eq!(h.guid, wim.header().guid);
        }
        let one = split(&wim, u64::MAX, &mut |_| Ok(Vec::new())).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            normalize(&read_back(&Wim::open(one[0].as_slice()).unwrap(), 2)),
            normalize(&expect2)
        );
    }
}

/// A part in memory that counts the parts alive at once, and their most.
struct Counted {
    data: Vec<u8>,
    alive: Rc<Cell<(usize, usize)>>,
}

impl Counted {
    fn new(alive: &Rc<Cell<(usize, usize)>>) -> Counted {
        let (now, most) = alive.get();
        alive.set((now + 1, most.max(now + 1)));
        Counted {
            data: Vec::new(),
            alive: Rc::clone(alive),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let (now, most) = self.alive.get();
        self.alive.set((now - 1, most));
    }
}

impl WriteAt for Counted {
    fn size(&self) -> u64 {
        self.data.size()
    }
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> Result<(), SinkError> {
        self.data.write_all_at(buf, offset)
    }
    fn read_back(&self, buf: &mut [u8], offset: u64) -> Result<(), SinkError> {
        self.data.read_back(buf, offset)
    }
    fn set_len(&mut self, len: u64) -> Result<(), SinkError> {
        WriteAt::set_len(&mut self.data, len)
    }
    fn sync(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// 1,200 files, each blob a part of its own: `split_into` hands each part back complete
/// before it asks for the next, so one is alive at a time (`split` held them all to the
/// end: files once ran out of descriptors past about 1,000 parts); the parts are the ones
/// `split` makes, and they open as a set naming 1,201 parts.
#[test]
fn split_into_holds_one_part_at_a_time() {
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
    for i in 0..1200u32 {
        let data: Vec<u8> = format!("file {i} ").repeat(5).into_bytes();
        let mut f = Inode::new(FileAttributes::NORMAL, 0, 0, 0);
        f.data = img.add_stream(data.len() as u64, Content::Bytes(Arc::from(data)));
        let f = img.add_inode(f);
        img.add_dentry(0, format!("f{i}"), f);
    }
    let mut w = WimWriter::create(Vec::new(), &WriteOptions::default()).unwrap();
    w.add_image(&mut img, &ImageProps::default(), &mut NoBlobs)
        .unwrap();
    let src = w.finish().unwrap();
    let wim = Wim::open(src.as_slice()).unwrap();
    let alive = Rc::new(Cell::new((0, 0)));
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let total = split_into(
        &wim,
        1,
        &mut |_| Ok(Counted::new(&alive)),
        &mut |n, mut p| {
            assert_eq!(n as usize, parts.len() + 1);
            parts.push(std::mem::take(&mut p.data));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!((total, parts.len()), (1201, 1201));
    assert_eq!(alive.get(), (0, 1));
    let all = split(&wim, 1, &mut |_| Ok(Vec::new())).unwrap();
    assert!(all == parts, "split_into wrote other parts than split");
    let set = Wim::open_parts(parts.iter().map(Vec::as_slice).collect()).unwrap();
    assert_eq!(set.header().total_parts, 1201);
    assert!(set.verify(&mut |_| {}).is_ok());
}

/// A new WIM with an all-zero GUID (what `WriteOptions::default()` gives without `std`) is
/// refused: parts of a split set and `--ref` WIMs are matched by GUID.
#[test]
fn a_new_wim_needs_a_guid() {
    let zero = WriteOptions {
        guid: [0; 16],
        ..WriteOptions::default()
    };
    assert!(matches!(
        WimWriter::create(Vec::new(), &zero),
        Err(wim_image::WriteError::NeedsGuid)
    ));
    // With std the default has one.
    assert_ne!(WriteOptions::default().guid, [0; 16]);
    let w = WimWriter::create(Vec::new(), &WriteOptions::default()).unwrap();
    let out = w.finish().unwrap();
    assert_ne!(Wim::open(out.as_slice()).unwrap().header().guid, [0; 16]);
}
