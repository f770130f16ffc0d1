//! Apply's planning and skip decisions on images written with the crate's own writer.

use super::*;
use crate::defs::{FileAttributes, ItemTag};
use crate::dentry::TaggedItem;
use crate::write::image::{Inode, NewImage};
use crate::write::{ImageProps, NoBlobs, WimWriter, WriteOptions};
use std::ops::ControlFlow;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("wim-apply-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn dir() -> Inode {
    Inode::new(FileAttributes::DIRECTORY, 1, 2, 3)
}

fn write(img: &mut NewImage) -> Vec<u8> {
    let mut w = WimWriter::create(Vec::new(), &WriteOptions::default()).unwrap();
    w.add_image(img, &ImageProps::default(), &mut NoBlobs)
        .unwrap();
    w.finish().unwrap()
}

/// `depth` nested directories named `dir_name`, the last holding `files` empty files with
/// names of `file_len` bytes.
fn deep_image(depth: usize, dir_name: &str, files: usize, file_len: usize) -> Vec<u8> {
    let mut img = NewImage::new(dir());
    let mut parent = 0;
    for _ in 0..depth {
        let inode = img.add_inode(dir());
        parent = img.add_dentry(parent, String::from(dir_name), inode);
    }
    for i in 0..files {
        let inode = img.add_inode(Inode::new(FileAttributes::NORMAL, 1, 2, 3));
        let name = format!("{i:0file_len$}");
        img.add_dentry(parent, name, inode);
    }
    write(&mut img)
}

/// The plan holds a few words per entry, not a path: 2,000 files 3.7 KB deep once cost
/// 7 MB of paths here (and a crafted 6.5 MB WIM tens of GB).
#[test]
fn plan_memory_does_not_grow_with_path_length() {
    let name = "d".repeat(NAME_MAX);
    let bytes = deep_image(14, &name, 2000, 200);
    let wim = Wim::open(bytes.as_slice()).unwrap();
    let tree = wim.image(1).unwrap();
    let roots = [(0, PathBuf::from("/t"))];
    let plan = plan(
        &tree,
        &roots,
        &ApplyOptions::default(),
        &mut Skipped::default(),
    )
    .unwrap();
    assert_eq!(plan.entries.len(), 1 + 14 + 2000);
    let path_bytes: usize = (0..plan.entries.len())
        .map(|i| plan.path(i).as_os_str().len())
        .sum();
    assert!(path_bytes > 7_000_000, "{path_bytes}");
    assert!(
        plan.heap_bytes() <= plan.entries.len() * 64,
        "{} bytes for {} entries",
        plan.heap_bytes(),
        plan.entries.len()
    );
    let last = plan.path(plan.entries.len() - 1);
    assert_eq!(last.as_os_str().len(), 2 + 14 * 256 + 1 + 200);
}

/// Names over `NAME_MAX` bytes and paths over `PATH_MAX` are refused before anything is
/// created.
#[test]
fn overlong_names_and_paths_are_refused_up_front() {
    let s = Scratch::new("overlong");
    // 128 two-byte characters: 128 UTF-16 units (a valid NTFS name), 256 bytes in UTF-8.
    let long = "é".repeat(128);
    let wim = deep_image(1, &long, 1, 1);
    let w = Wim::open(wim.as_slice()).unwrap();
    let t = s.0.join("a");
    let err = apply(&w, 1, &t, &ApplyOptions::default(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(
        matches!(err, ApplyError::NameTooLong { len: 256, ref parent } if *parent == t),
        "{err:?}"
    );
    assert!(!t.exists());

    let wim = deep_image(20, &"p".repeat(250), 1, 1);
    let w = Wim::open(wim.as_slice()).unwrap();
    let t = s.0.join("b");
    let err = apply(&w, 1, &t, &ApplyOptions::default(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(
        matches!(err, ApplyError::PathTooLong { len, .. } if len >= PATH_MAX),
        "{err:?}"
    );
    assert!(!t.exists());
}

/// A special file whose mknod is refused is counted as skipped, and apply goes on: it once
/// tried to set the missing path's mode and times and failed.
#[test]
fn refused_mknod_skips_the_entry_metadata() {
    let mut img = NewImage::new(dir());
    let unix = |mode: u32, rdev: u32| {
        let mut data = Vec::new();
        for v in [0u32, 0, mode, rdev] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        TaggedItem {
            tag: ItemTag::UNIX_DATA,
            data,
        }
    };
    let mut dev = Inode::new(FileAttributes::NORMAL, 1, 2, 3);
    dev.tagged.push(unix(0o020644, 0x0103));
    let dev = img.add_inode(dev);
    img.add_dentry(0, String::from("null"), dev);
    let mut fifo = Inode::new(FileAttributes::NORMAL, 1, 2, 3);
    fifo.tagged.push(unix(0o010600, 0));
    let fifo = img.add_inode(fifo);
    img.add_dentry(0, String::from("fifo"), fifo);
    let bytes = write(&mut img);
    let w = Wim::open(bytes.as_slice()).unwrap();
    let s = Scratch::new("mknod");
    let opts = ApplyOptions {
        unix_data: true,
        threads: 1,
        ..ApplyOptions::default()
    };
    sys::FAIL_MKNOD.set(true);
    let r = apply(&w, 1, &s.0.join("t"), &opts, &mut |_| {
        ControlFlow::Continue(())
    });
    sys::FAIL_MKNOD.set(false);
    let report = r.unwrap();
    assert_eq!(report.skipped.special_files, 2);
    assert_eq!(report.special_files, 0);
    assert!(fs::symlink_metadata(s.0.join("t/null")).is_err());

    // Without the failure the FIFO at least is made (a device needs CAP_MKNOD).
    let report = apply(&w, 1, &s.0.join("u"), &opts, &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(report.special_files + report.skipped.special_files, 2);
    assert!(fs::symlink_metadata(s.0.join("u/fifo")).is_ok());
}

#[test]
fn special_made_counts_and_decides() {
    let mut r = ApplyReport::default();
    assert!(special_made(Ok(()), &mut r));
    assert!(!special_made(
        Err(io::Error::from_raw_os_error(libc::EPERM)),
        &mut r
    ));
    assert_eq!((r.special_files, r.skipped.special_files), (1, 1));
}

/// `/sub/r.bin` (with data) and `/sub/e` (empty).
fn sub_image() -> Vec<u8> {
    let mut img = NewImage::new(dir());
    let sub = img.add_inode(dir());
    let sub = img.add_dentry(0, String::from("sub"), sub);
    let mut f = Inode::new(FileAttributes::NORMAL, 1, 2, 3);
    f.data = img.add_stream(
        5,
        crate::write::image::Content::Bytes(b"data\n".to_vec().into()),
    );
    let f = img.add_inode(f);
    img.add_dentry(sub, String::from("r.bin"), f);
    let e = img.add_inode(Inode::new(FileAttributes::NORMAL, 1, 2, 3));
    img.add_dentry(sub, String::from("e"), e);
    write(&mut img)
}

/// A symbolic link already in the target where the image has a directory is refused, not
/// followed: apply once wrote the directory's files wherever the link pointed. The target
/// itself may be a link to a directory (as with wimlib).
#[test]
fn existing_symlink_in_target_is_not_followed() {
    let s = Scratch::new("symlink-in-target");
    let bytes = sub_image();
    let w = Wim::open(bytes.as_slice()).unwrap();
    let (out, evil) = (s.0.join("out"), s.0.join("evil"));
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(&evil).unwrap();
    std::os::unix::fs::symlink(&evil, out.join("sub")).unwrap();
    let opts = ApplyOptions {
        threads: 1,
        ..ApplyOptions::default()
    };
    let err = apply(&w, 1, &out, &opts, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert!(
        matches!(&err, ApplyError::Io { path, source }
            if *path == out.join("sub") && source.kind() == io::ErrorKind::AlreadyExists),
        "{err:?}"
    );
    assert_eq!(fs::read_dir(&evil).unwrap().count(), 0);

    // extract of the directory itself: the same.
    let err = extract(&w, 1, &["/sub"], &out, &opts, &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(matches!(err, ApplyError::Io { .. }), "{err:?}");
    assert_eq!(fs::read_dir(&evil).unwrap().count(), 0);

    // A link to a directory as the target named by the caller is followed.
    let real = s.0.join("real");
    fs::create_dir_all(&real).unwrap();
    let link = s.0.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    apply(&w, 1, &link, &opts, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(fs::read(real.join("sub/r.bin")).unwrap(), b"data\n");
    // A real directory already there is used.
    apply(&w, 1, &link, &opts, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(fs::read(real.join("sub/r.bin")).unwrap(), b"data\n");
}

/// A WIM (XPRESS) of one image with `n` files `f0..` of `len` bytes (a pattern modulo
/// `modulus`, different per file), and the files' contents.
fn xpress_files(n: u8, len: u32, modulus: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut img = NewImage::new(dir());
    let mut files = Vec::new();
    for i in 0..n {
        let data: Vec<u8> = (0..len).map(|k| (k % modulus) as u8 ^ i).collect();
        let mut f = Inode::new(FileAttributes::NORMAL, 1, 2, 3);
        f.data = img.add_stream(
            data.len() as u64,
            crate::write::image::Content::Bytes(data.clone().into()),
        );
        let f = img.add_inode(f);
        img.add_dentry(0, format!("f{i}"), f);
        files.push(data);
    }
    let opts = WriteOptions {
        compression: Some(crate::codec::Codec::Xpress),
        threads: 1,
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(Vec::new(), &opts).unwrap();
    w.add_image(&mut img, &ImageProps::default(), &mut NoBlobs)
        .unwrap();
    (w.finish().unwrap(), files)
}

/// Decoder threads whose buffers would not fit in the memory limit are reduced (down to
/// one), and the report says so; the files are the same either way.
#[test]
fn decoder_threads_fit_in_memory() {
    let (bytes, files) = xpress_files(6, 50_000, 251);
    let wim = Wim::open(bytes.as_slice()).unwrap();
    let s = Scratch::new("decoder-threads");
    for (limit, used) in [(0, 1), (u64::MAX, 4)] {
        let out = s.0.join(format!("out-{used}"));
        let opts = ApplyOptions {
            threads: 4,
            memory_limit: Some(limit),
            ..ApplyOptions::default()
        };
        let r = apply(&wim, 1, &out, &opts, &mut |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(r.threads, ThreadCount { wanted: 4, used });
        for (i, data) in files.iter().enumerate() {
            assert_eq!(&fs::read(out.join(format!("f{i}"))).unwrap(), data);
        }
    }
}

/// Cancelling at each progress report stops the apply with `Cancelled`, on one decoder
/// thread and on several; applying again over what was left completes the tree.
#[test]
fn apply_cancelled_at_every_report_stops_and_can_be_finished() {
    let (bytes, files) = xpress_files(5, 700_000, 241);
    let wim = Wim::open(bytes.as_slice()).unwrap();
    let s = Scratch::new("cancel");
    for threads in [1, 2] {
        let opts = ApplyOptions {
            threads,
            ..ApplyOptions::default()
        };
        let mut reports = 0;
        let full = s.0.join(format!("full-{threads}"));
        apply(&wim, 1, &full, &opts, &mut |_| {
            reports += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(reports >= 3, "{reports} reports");
        for k in 0..reports {
            let out = s.0.join(format!("cancel-{threads}-{k}"));
            let mut seen = 0;
            let r = apply(&wim, 1, &out, &opts, &mut |_| {
                seen += 1;
                if seen > k {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            assert!(matches!(r, Err(ApplyError::Cancelled)), "{r:?}");
            assert_eq!(seen, k + 1, "reports after the cancel");
            apply(&wim, 1, &out, &opts, &mut |_| ControlFlow::Continue(())).unwrap();
            for (i, data) in files.iter().enumerate() {
                assert_eq!(&fs::read(out.join(format!("f{i}"))).unwrap(), data);
            }
        }
    }
}
