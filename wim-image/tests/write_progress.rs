//! Progress and cancellation of every call that writes an image's data: `add_image`,
//! `capture_image`, `export_image`, `rebuild`, `update_in_place`, on 1 and 3 compression
//! threads, uncompressed, XPRESS, LZX and solid LZMS.
//!
//! Progress never goes back, ends at `done == total`, and `total` is the image's unique blob
//! bytes; reports come per MiB, not per blob. Breaking at the k-th report stops the call
//! there with `Cancelled`; a new file's writer is then poisoned, and a file appended to or
//! updated in place is byte for byte what it was (our reader and `wimlib-imagex verify`
//! accept it).

mod wimlib_support;

use std::fs;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use wim_image::codec::Codec;
use wim_image::defs::FileAttributes;
use wim_image::write::capture::{capture_image_with_progress, CaptureError, CaptureOptions};
use wim_image::write::export::{export_image_with_progress, rebuild_with_progress, Recompress};
use wim_image::write::image::{Content, Inode, NewImage};
use wim_image::write::progress::REPORT_STEP;
use wim_image::write::split::{split_into_with_progress, SplitProgress};
use wim_image::write::update::{update_in_place_with_progress, UpdateError};
use wim_image::write::{ImageProps, NoBlobs, WimWriter, WriteError, WriteOptions, WriteProgress};
use wim_image::{FileSource, Wim};
use wimlib_support::{add_command, bytes, create, open_rw, wimlib, wimlib_verifies, Scratch};

/// A writer configuration: name, compression, solid output, threads.
type Config = (&'static str, Option<Codec>, Option<(Codec, u32)>, usize);

const CONFIGS: [Config; 8] = [
    ("none/1", None, None, 1),
    ("none/3", None, None, 3),
    ("xpress/1", Some(Codec::Xpress), None, 1),
    ("xpress/3", Some(Codec::Xpress), None, 3),
    ("lzx/1", Some(Codec::Lzx), None, 1),
    ("lzx/3", Some(Codec::Lzx), None, 3),
    ("lzms-solid/1", None, Some((Codec::Lzms, 1 << 20)), 1),
    ("lzms-solid/3", None, Some((Codec::Lzms, 1 << 20)), 3),
];

fn options(&(_, compression, solid, threads): &Config) -> WriteOptions {
    WriteOptions {
        compression,
        solid,
        threads,
        // Every thread asked for, whatever the machine's free memory.
        memory_limit: Some(u64::MAX),
        // Fast levels: the tests are about the data paths, not the ratio.
        level: 10,
        ..WriteOptions::default()
    }
}

fn props(name: &str) -> ImageProps {
    ImageProps {
        name: name.into(),
        ..ImageProps::default()
    }
}

fn file(img: &mut NewImage, name: &str, data: Vec<u8>) -> u32 {
    let mut f = Inode::new(FileAttributes::NORMAL, 1, 1, 1);
    f.data = img.add_stream(data.len() as u64, Content::Bytes(Arc::from(data)));
    let f = img.add_inode(f);
    img.add_dentry(0, name.into(), f);
    f
}

/// An image with 60 small files (most of them queued together on several threads), two
/// large ones read in several pieces, a second link to one of them and an empty file, all
/// contents distinct: its unique blob bytes are what it returns.
fn image(seed: u64) -> (NewImage, u64) {
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 1, 1));
    let mut total = 0;
    for i in 0..60u64 {
        let data = bytes(
            seed * 1000 + i,
            500 + (i as usize * 337) % 20_000,
            i % 3 != 0,
        );
        total += data.len() as u64;
        file(&mut img, &format!("small{i}"), data);
    }
    let big = bytes(seed * 1000 + 100, 3 << 20, true);
    total += big.len() as u64;
    let inode = file(&mut img, "big-text", big);
    img.add_dentry(0, "big-text-link".into(), inode);
    let noise = bytes(seed * 1000 + 101, (2 << 20) + 12_345, false);
    total += noise.len() as u64;
    file(&mut img, "big-noise", noise);
    file(&mut img, "empty", Vec::new());
    (img, total)
}

/// The reports of a call, and a callback recording them that breaks at the `stop_at`-th.
#[derive(Default)]
struct Recorder {
    seen: Vec<WriteProgress>,
    stop_at: Option<usize>,
}

impl Recorder {
    fn stopping_at(k: usize) -> Self {
        Recorder {
            seen: Vec::new(),
            stop_at: Some(k),
        }
    }

    fn call(&mut self, p: WriteProgress) -> ControlFlow<()> {
        self.seen.push(p);
        match self.stop_at == Some(self.seen.len()) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }
}

/// The sum of the sizes of the data blobs of a one-image WIM.
fn blob_bytes<R: wim_image::ReadAt>(wim: &Wim<R>) -> u64 {
    let t = wim.blob_table();
    t.blobs
        .iter()
        .filter(|b| !b.is_metadata)
        .map(|b| b.size)
        .sum()
}

/// The reports of one call that completed: monotone, bounded in number, ending complete.
fn check_series(seen: &[WriteProgress], image: u32, total: u64, blobs: u64, what: &str) {
    assert!(!seen.is_empty(), "{what}: no report");
    for p in seen {
        assert_eq!(p.image, image, "{what}: image");
        assert_eq!((p.total, p.blobs_total), (total, blobs), "{what}: totals");
        assert!(
            p.done <= p.total && p.blobs_done <= p.blobs_total,
            "{what}: {p:?}"
        );
    }
    for w in seen.windows(2) {
        assert!(
            w[0].done <= w[1].done && w[0].blobs_done <= w[1].blobs_done,
            "{what}: went back: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    let last = seen.last().unwrap();
    assert_eq!(
        (last.done, last.blobs_done),
        (total, blobs),
        "{what}: the last report is not complete"
    );
    // A report per MiB read, and the final one: never one per blob.
    let most = total / REPORT_STEP + 1;
    assert!(
        seen.len() as u64 <= most,
        "{what}: {} reports for {total} bytes",
        seen.len()
    );
}

/// Writes `image(1)` with `cfg`, recording the reports; returns them and the file.
fn write_recorded(cfg: &Config, rec: &mut Recorder) -> (Result<u32, WriteError>, Vec<u8>) {
    let (mut img, _) = image(1);
    let mut out = Vec::new();
    let mut w = WimWriter::create(&mut out, &options(cfg)).unwrap();
    assert_eq!(w.compression_threads().used, cfg.3, "{}", cfg.0);
    let r = w.add_image_with_progress(&mut img, &props("one"), &mut NoBlobs, &mut |p| rec.call(p));
    match r {
        Ok(_) => drop(w.finish().unwrap()),
        Err(_) => drop(w),
    }
    (r, out)
}

#[test]
fn add_image_progress_is_monotone_and_complete() {
    let (img, total) = image(1);
    let streams = img.streams.len() as u64;
    for cfg in &CONFIGS {
        let mut rec = Recorder::default();
        let (r, out) = write_recorded(cfg, &mut rec);
        assert_eq!(r.unwrap(), 1);
        let wim = Wim::open(out.as_slice()).unwrap();
        assert!(wim.verify(&mut |_| {}).is_ok(), "{}", cfg.0);
        assert_eq!(blob_bytes(&wim), total, "{}: unique blob bytes", cfg.0);
        check_series(&rec.seen, 1, total, streams, cfg.0);
        // 5.6 MiB read: a report at each MiB, then the final one; the first within a
        // piece read (a MiB, or a batch of chunks) of the first MiB, not at the end of a
        // large file (all of the 2 and 3 MiB ones are read after 1 MiB).
        assert!(rec.seen.len() >= 5, "{}: {} reports", cfg.0, rec.seen.len());
        let first = rec.seen[0].done;
        assert!(
            first < 2 * REPORT_STEP,
            "{}: first report at {first}",
            cfg.0
        );
    }
}

/// 4,000 files of 300 bytes: one report per MiB of them (here only the final one), not one
/// per file.
#[test]
fn small_files_make_no_report_storm() {
    for cfg in [&CONFIGS[0], &CONFIGS[3]] {
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 1, 1));
        for i in 0..4000u64 {
            file(&mut img, &format!("f{i}"), bytes(i, 300, i % 2 == 0));
        }
        let mut rec = Recorder::default();
        let mut w = WimWriter::create(Vec::new(), &options(cfg)).unwrap();
        w.add_image_with_progress(&mut img, &props("small"), &mut NoBlobs, &mut |p| {
            rec.call(p)
        })
        .unwrap();
        check_series(&rec.seen, 1, 4000 * 300, 4000, cfg.0);
        assert_eq!(rec.seen.len(), 2, "{}: {:?}", cfg.0, rec.seen);
        w.finish().unwrap();
    }
}

/// The number of reports a complete run of `write_recorded(cfg)` makes.
fn reports(cfg: &Config) -> usize {
    let mut rec = Recorder::default();
    write_recorded(cfg, &mut rec).0.unwrap();
    rec.seen.len()
}

/// The WRITE_IN_PROGRESS flag of a header.
fn write_in_progress(file: &[u8]) -> bool {
    let flags = u32::from_le_bytes(file[16..20].try_into().unwrap());
    flags & 0x40 != 0
}

/// Breaking at the first, second and the final report: `Cancelled` at once (no report
/// after the break), then every call refused (`Poisoned`, `finish` too) and the output
/// left unfinished.
#[test]
fn cancelled_add_image_poisons_the_writer() {
    for cfg in &CONFIGS {
        let n = reports(cfg);
        for k in [1, 2, n] {
            let mut rec = Recorder::stopping_at(k);
            let (mut img, _) = image(1);
            let mut out = Vec::new();
            let mut w = WimWriter::create(&mut out, &options(cfg)).unwrap();
            let r = w.add_image_with_progress(&mut img, &props("one"), &mut NoBlobs, &mut |p| {
                rec.call(p)
            });
            let what = format!("{} k={k}", cfg.0);
            assert!(matches!(r, Err(WriteError::Cancelled)), "{what}: {r:?}");
            assert_eq!(rec.seen.len(), k, "{what}: reports after the break");
            let (mut again, _) = image(2);
            let r = w.add_image(&mut again, &props("two"), &mut NoBlobs);
            assert!(matches!(r, Err(WriteError::Poisoned)), "{what}: {r:?}");
            let r = w.set_boot_index(0);
            assert!(matches!(r, Err(WriteError::Poisoned)), "{what}: {r:?}");
            let r = w.finish();
            assert!(matches!(r, Err(WriteError::Poisoned)), "{what}: {r:?}");
            assert!(write_in_progress(&out), "{what}: the header was committed");
            let images = Wim::open(out.as_slice()).map_or(0, |w| w.image_count());
            assert_eq!(images, 0, "{what}: a cancelled file shows an image");
        }
    }
}

/// A source WIM in memory: `image(1)` and `image(2)` with a second copy of its own
/// `big-text` in another inode, compressed with `codec`.
fn source(codec: Option<Codec>) -> Vec<u8> {
    let opts = WriteOptions {
        compression: codec,
        threads: 1,
        level: 10,
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(Vec::new(), &opts).unwrap();
    let (mut one, _) = image(1);
    w.add_image(&mut one, &props("one"), &mut NoBlobs).unwrap();
    let (mut two, _) = image(2);
    file(&mut two, "copy", bytes(2000 + 100, 3 << 20, true));
    w.add_image(&mut two, &props("two"), &mut NoBlobs).unwrap();
    w.finish().unwrap()
}

/// Export, recompressing (XPRESS to LZX, solid or none, 1 or 3 threads) or copying
/// resources as stored (XPRESS to XPRESS): each blob once in `total` (the copy and the
/// original, two inodes naming the same hash, count once), none when the output holds them
/// all; a break at the k-th report is `Cancelled` and poisons the writer.
#[test]
fn export_progress_and_cancel() {
    let src_bytes = source(Some(Codec::Xpress));
    let src = Wim::open(src_bytes.as_slice()).unwrap();
    let (_, total) = image(2);
    let streams = image(2).0.streams.len() as u64;
    for cfg in [&CONFIGS[2], &CONFIGS[5], &CONFIGS[7], &CONFIGS[0]] {
        let mut rec = Recorder::default();
        let mut w = WimWriter::create(Vec::new(), &options(cfg)).unwrap();
        let n = export_image_with_progress(&src, 2, &mut w, None, &mut |p| rec.call(p)).unwrap();
        assert_eq!(n, 1);
        check_series(&rec.seen, 1, total, streams, cfg.0);
        // Again: every blob is there already.
        let mut again = Recorder::default();
        let name = Some("again");
        export_image_with_progress(&src, 2, &mut w, name, &mut |p| again.call(p)).unwrap();
        check_series(&again.seen, 2, 0, 0, cfg.0);
        assert_eq!(again.seen.len(), 1);
        let out = w.finish().unwrap();
        let wim = Wim::open(out.as_slice()).unwrap();
        assert_eq!(blob_bytes(&wim), total, "{}", cfg.0);
        assert!(wim.verify(&mut |_| {}).is_ok(), "{}", cfg.0);

        let n = rec.seen.len();
        for k in [1, 2, n] {
            let mut rec = Recorder::stopping_at(k);
            let mut w = WimWriter::create(Vec::new(), &options(cfg)).unwrap();
            let r = export_image_with_progress(&src, 2, &mut w, None, &mut |p| rec.call(p));
            let what = format!("{} k={k}", cfg.0);
            assert!(matches!(r, Err(WriteError::Cancelled)), "{what}: {r:?}");
            assert_eq!(rec.seen.len(), k, "{what}");
            let r = export_image_with_progress(&src, 1, &mut w, None, &mut |_| {
                ControlFlow::Continue(())
            });
            assert!(matches!(r, Err(WriteError::Poisoned)), "{what}: {r:?}");
            assert!(matches!(w.finish(), Err(WriteError::Poisoned)), "{what}");
        }
    }
}

/// A rebuild reports each image in turn (by its index in the new file) and stops at a
/// break with `Cancelled`.
#[test]
fn rebuild_progress_and_cancel() {
    let src_bytes = source(None);
    let src = Wim::open(src_bytes.as_slice()).unwrap();
    let opts = options(&CONFIGS[3]);
    let how = Recompress::To(Some(Codec::Xpress), 0);
    let mut rec = Recorder::default();
    let out = rebuild_with_progress(&src, Vec::new(), &|_| true, &opts, how, &mut |p| {
        rec.call(p)
    })
    .unwrap();
    let wim = Wim::open(out.as_slice()).unwrap();
    assert!(wim.verify(&mut |_| {}).is_ok());
    let split = rec.seen.iter().position(|p| p.image == 2).unwrap();
    let (one, two) = rec.seen.split_at(split);
    let (img, total) = image(1);
    check_series(one, 1, total, img.streams.len() as u64, "image 1");
    // Image 2 adds its own files; the copy of image 1's file is stored already.
    let (img, total) = image(2);
    check_series(two, 2, total, img.streams.len() as u64, "image 2");
    for k in [1, split, split + 1, rec.seen.len()] {
        let mut stop = Recorder::stopping_at(k);
        let r = rebuild_with_progress(&src, Vec::new(), &|_| true, &opts, how, &mut |p| {
            stop.call(p)
        });
        assert!(
            matches!(r, Err(WriteError::Cancelled)),
            "k={k}: {:?}",
            r.err()
        );
        assert_eq!(stop.seen.len(), k);
    }
}

/// A tree on disk: files small and large (over 8 MiB, streamed; two of the same size, so
/// hashed before they are written), and a hard link. Returns its unique data bytes.
fn disk_tree(root: &Path) -> u64 {
    fs::create_dir_all(root.join("d")).unwrap();
    let mut total = 0;
    for i in 0..30u64 {
        let data = bytes(500 + i, 1000 + i as usize * 2000, i % 2 == 0);
        total += data.len() as u64;
        fs::write(root.join(format!("d/f{i}")), data).unwrap();
    }
    for (i, name) in ["big1", "big2"].iter().enumerate() {
        let data = bytes(600 + i as u64, (9 << 20) + 7, i == 0);
        total += data.len() as u64;
        fs::write(root.join(name), data).unwrap();
    }
    fs::hard_link(root.join("big1"), root.join("big1-link")).unwrap();
    total
}

/// Capture reports the files' data (uncompressed, XPRESS on 3 threads, solid LZMS on 3
/// threads); a break at the k-th report is `CaptureError::Write(Cancelled)` and poisons the
/// writer.
#[test]
fn capture_progress_and_cancel() {
    let s = Scratch::new("write-progress-capture");
    let src = s.path("src");
    let total = disk_tree(&src);
    for cfg in [&CONFIGS[0], &CONFIGS[3], &CONFIGS[7]] {
        let mut rec = Recorder::default();
        let mut w = WimWriter::create(Vec::new(), &options(cfg)).unwrap();
        let copts = CaptureOptions::default();
        let (n, _) =
            capture_image_with_progress(&mut w, &src, &props("c"), &copts, &mut |p| rec.call(p))
                .unwrap();
        assert_eq!(n, 1);
        let out = w.finish().unwrap();
        let wim = Wim::open(out.as_slice()).unwrap();
        assert_eq!(blob_bytes(&wim), total, "{}", cfg.0);
        assert!(wim.verify(&mut |_| {}).is_ok(), "{}", cfg.0);
        // 32 streams; a hashing pass reports too, so more than one report a MiB counted.
        assert!(rec.seen.len() > 18, "{}: {} reports", cfg.0, rec.seen.len());
        let last = *rec.seen.last().unwrap();
        assert_eq!(
            (last.done, last.total, last.blobs_total),
            (total, total, 32)
        );
        for w in rec.seen.windows(2) {
            assert!(w[0].done <= w[1].done, "{}: {:?}", cfg.0, w);
        }

        // (The final report is cancelled in the other tests: here, on one writer.)
        let n = rec.seen.len();
        let ks = if cfg.3 == 1 {
            vec![1, n / 2, n]
        } else {
            vec![1, n / 2]
        };
        for k in ks {
            let mut rec = Recorder::stopping_at(k);
            let mut w = WimWriter::create(Vec::new(), &options(cfg)).unwrap();
            let r = capture_image_with_progress(&mut w, &src, &props("c"), &copts, &mut |p| {
                rec.call(p)
            });
            let what = format!("{} k={k}", cfg.0);
            assert!(
                matches!(r, Err(CaptureError::Write(WriteError::Cancelled))),
                "{what}: {r:?}"
            );
            assert_eq!(rec.seen.len(), k, "{what}");
            assert!(matches!(w.finish(), Err(WriteError::Poisoned)), "{what}");
        }
    }
}

/// The WIM `path` opens with one image (our reader verifies it) and, when wimlib-imagex is
/// installed, `wimlib-imagex verify` accepts it.
fn assert_valid(path: &Path, images: u32, what: &str) {
    let wim = Wim::open(FileSource::open(path).unwrap()).unwrap();
    assert_eq!(wim.image_count(), images, "{what}");
    assert!(wim.verify(&mut |_| {}).is_ok(), "{what}");
    if wimlib().is_some() {
        assert!(
            wimlib_verifies(path),
            "{what}: wimlib-imagex verify refused it"
        );
    }
}

/// An append cancelled at any report (the final one included) gives the file its header
/// and length back: byte for byte what it was (so an append afterwards works as on the
/// original: the probe); the writer refuses to go on (`RolledBack`). Non-solid LZX and
/// solid LZMS, 1 and 3 threads.
#[test]
fn cancelled_append_leaves_the_file_as_it_was() {
    let s = Scratch::new("write-progress-append");
    for cfg in [&CONFIGS[4], &CONFIGS[5], &CONFIGS[6], &CONFIGS[7]] {
        let path = s.path(&format!("{}.wim", cfg.0.replace('/', "-")));
        let mut w = WimWriter::create(create(&path), &options(cfg)).unwrap();
        let (mut img, _) = image(1);
        w.add_image(&mut img, &props("one"), &mut NoBlobs).unwrap();
        w.finish().unwrap();
        let before = fs::read(&path).unwrap();

        let mut opts = options(cfg);
        opts.integrity = true;
        let n = {
            let mut rec = Recorder::default();
            let probe = s.path("probe.wim");
            fs::write(&probe, &before).unwrap();
            let mut w = WimWriter::append(open_rw(&probe), &opts).unwrap();
            let (mut two, _) = image(2);
            w.add_image_with_progress(&mut two, &props("two"), &mut NoBlobs, &mut |p| rec.call(p))
                .unwrap();
            w.finish().unwrap();
            assert_valid(&probe, 2, cfg.0);
            rec.seen.len()
        };
        assert!(n >= 3, "{}: {n} reports", cfg.0);
        for k in [1, n / 2 + 1, n] {
            let what = format!("{} k={k}", cfg.0);
            let mut rec = Recorder::stopping_at(k);
            let mut w = WimWriter::append(open_rw(&path), &opts).unwrap();
            let (mut two, _) = image(2);
            let r = w.add_image_with_progress(&mut two, &props("two"), &mut NoBlobs, &mut |p| {
                rec.call(p)
            });
            assert!(matches!(r, Err(WriteError::Cancelled)), "{what}: {r:?}");
            assert_eq!(rec.seen.len(), k, "{what}");
            let (mut three, _) = image(3);
            let r = w.add_image(&mut three, &props("three"), &mut NoBlobs);
            assert!(matches!(r, Err(WriteError::RolledBack)), "{what}: {r:?}");
            assert!(matches!(w.finish(), Err(WriteError::RolledBack)), "{what}");
            assert!(
                fs::read(&path).unwrap() == before,
                "{what}: the file changed"
            );
            assert_valid(&path, 1, &what);
        }
    }
}

/// An update in place reports the new files' data; cancelled, the file is as it was.
#[test]
fn cancelled_update_leaves_the_file_as_it_was() {
    let s = Scratch::new("write-progress-update");
    let path = s.path("u.wim");
    let cfg = &CONFIGS[3];
    let mut w = WimWriter::create(create(&path), &options(cfg)).unwrap();
    let (mut img, _) = image(1);
    w.add_image(&mut img, &props("one"), &mut NoBlobs).unwrap();
    w.finish().unwrap();
    let before = fs::read(&path).unwrap();
    let add = s.path("add");
    fs::create_dir_all(&add).unwrap();
    fs::write(add.join("new"), bytes(77, 3 << 20, true)).unwrap();
    let cmds = [add_command(&add, "/added")];
    let opts = options(cfg);
    for k in [1, 2] {
        let mut rec = Recorder::stopping_at(k);
        let r =
            update_in_place_with_progress(open_rw(&path), 1, &cmds, &opts, &mut |p| rec.call(p));
        assert!(
            matches!(r, Err(UpdateError::Write(WriteError::Cancelled))),
            "k={k}: {r:?}"
        );
        assert!(
            fs::read(&path).unwrap() == before,
            "k={k}: the file changed"
        );
        assert_valid(&path, 1, "after a cancelled update");
    }
    let mut rec = Recorder::default();
    update_in_place_with_progress(open_rw(&path), 1, &cmds, &opts, &mut |p| rec.call(p)).unwrap();
    check_series(&rec.seen, 1, 3 << 20, 1, "update");
    assert_valid(&path, 1, "after the update");
}

/// `split_into_with_progress`: the bytes copied never go back and end at every resource's
/// size (the parts' sizes, less headers, tables and XML), each report names the part being
/// written; a break at the k-th report stops with `Cancelled` and begins no other part.
#[test]
fn split_progress_and_cancel() {
    let cfg = &CONFIGS[4];
    let mut rec = Recorder::default();
    let (r, src) = write_recorded(cfg, &mut rec);
    r.unwrap();
    let wim = Wim::open(src.as_slice()).unwrap();
    let run = |stop_at: Option<usize>| {
        let mut seen: Vec<SplitProgress> = Vec::new();
        let (mut begun, mut finished) = (0u16, Vec::new());
        let r = split_into_with_progress(
            &wim,
            256 << 10,
            &mut |n| {
                begun = n;
                Ok(Vec::new())
            },
            &mut |n, part: Vec<u8>| {
                finished.push((n, part));
                Ok(())
            },
            &mut |p| {
                seen.push(p);
                match stop_at == Some(seen.len()) {
                    true => ControlFlow::Break(()),
                    false => ControlFlow::Continue(()),
                }
            },
        );
        (r, seen, begun, finished)
    };
    let (r, seen, _, parts) = run(None);
    let count = r.unwrap();
    assert!(count >= 3, "{count} parts");
    let last = *seen.last().unwrap();
    let resources: u64 = wim
        .blob_table()
        .blobs
        .iter()
        .map(|b| match b.location {
            wim_image::blob_table::BlobLocation::Resource { reshdr, .. } => reshdr.size_in_wim,
            _ => unreachable!("not split, not solid"),
        })
        .sum();
    assert_eq!(
        (last.done, last.total, last.parts),
        (resources, resources, count)
    );
    assert!(seen
        .windows(2)
        .all(|w| w[0].done <= w[1].done && w[0].part <= w[1].part));
    assert!(seen
        .iter()
        .all(|p| p.total == resources && p.done <= p.total));
    assert!(seen.len() >= 3, "{} reports", seen.len());
    let set = Wim::open_parts(parts.iter().map(|(_, p)| p.as_slice()).collect()).unwrap();
    assert!(set.verify(&mut |_| {}).is_ok());
    for k in [1, 2, seen.len()] {
        let (r, got, begun, finished) = run(Some(k));
        assert!(matches!(r, Err(WriteError::Cancelled)), "k = {k}: {r:?}");
        assert_eq!(got.len(), k, "a report after the break");
        assert_eq!(begun, got[k - 1].part, "k = {k}: another part was begun");
        assert!(
            finished.len() < usize::from(begun),
            "k = {k}: the part was finished"
        );
    }
}

/// Solid output writes streams sorted by extension and name, not in stream order. Two files
/// sharing 4 MiB (exported from a non-solid WIM, so both name one blob by its hash) whose
/// name order is the reverse of their stream order: the stream read must be the one counted,
/// so reports come while its 4 MiB are read and a break at the first stops the read. Before,
/// the other stream was counted and all 4 MiB were read without a report.
#[test]
fn solid_export_reports_while_reading_shared_data() {
    let shared = bytes(4242, 4 << 20, false);
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 1, 1));
    file(&mut img, "a.zzz", shared.clone());
    file(&mut img, "b.aaa", shared);
    let mut w = WimWriter::create(Vec::new(), &options(&CONFIGS[0])).unwrap();
    w.add_image(&mut img, &props("src"), &mut NoBlobs).unwrap();
    let src = w.finish().unwrap();
    let src = Wim::open(src.as_slice()).unwrap();
    for stop_first in [false, true] {
        let mut out = WimWriter::create(Vec::new(), &options(&CONFIGS[6])).unwrap();
        let mut rec = match stop_first {
            true => Recorder::stopping_at(1),
            false => Recorder::default(),
        };
        let r = export_image_with_progress(&src, 1, &mut out, None, &mut |p| rec.call(p));
        assert_eq!(rec.seen[0].total, 4 << 20);
        assert!(
            rec.seen[0].done < rec.seen[0].total,
            "first report only after the whole blob: {:?}",
            rec.seen
        );
        match stop_first {
            true => assert!(matches!(r, Err(WriteError::Cancelled)), "{r:?}"),
            false => assert!(rec.seen.len() >= 4, "{} reports", rec.seen.len()),
        }
    }
}
