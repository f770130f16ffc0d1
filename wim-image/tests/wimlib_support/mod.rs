//! Shared by the wimlib interop tests (here and in `examples/tools`): finding
//! `wimlib-imagex`, scratch directories, a deterministic source tree, and comparing two
//! applied trees.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `wimlib-imagex`, or `None` after printing why the test is skipped (panics under CI=true).
pub fn wimlib() -> Option<&'static str> {
    let ok = Command::new("wimlib-imagex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("wimlib-imagex");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("wimlib-imagex is not installed (required under CI=true)");
    }
    eprintln!("skipped: wimlib-imagex is not installed");
    None
}

/// Runs `wimlib-imagex` with `args`, panicking with its output on failure.
pub fn run_wimlib(args: &[&str]) -> String {
    let o = Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("run wimlib-imagex");
    assert!(
        o.status.success(),
        "wimlib-imagex {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether `wimlib-imagex verify` accepts `wim`.
pub fn wimlib_verifies(wim: &Path) -> bool {
    Command::new("wimlib-imagex")
        .arg("verify")
        .arg(wim)
        .output()
        .expect("run wimlib-imagex")
        .status
        .success()
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let p = base.join(format!("wim-interop-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A deterministic byte generator (xorshift), mixing text-like and random-like data.
pub fn bytes(seed: u64, len: usize, compressible: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    let words: [&[u8]; 8] = [
        b"the ", b"wim ", b"image ", b"chunk ", b"lzx ", b"\n", b"0123 ", b"data ",
    ];
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if compressible {
            out.extend_from_slice(words[(x % 8) as usize]);
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

/// Sets a path's own access and modification times (seconds, nanoseconds).
pub fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // `time_t` and `long` are 32 bits on 32-bit Linux targets.
    let ts = [atime, mtime].map(|(sec, nsec)| libc::timespec {
        tv_sec: libc::time_t::try_from(sec).expect("the time fits time_t"),
        tv_nsec: libc::c_long::try_from(nsec).expect("nanoseconds fit a long"),
    });
    // SAFETY: a valid NUL-terminated path and two initialised timespecs.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", path.display());
}

/// Builds the test tree under `root`: files of many sizes (`big` adds one of that many
/// bytes), duplicates, hard links, symlinks (relative, absolute inside and outside, dangling),
/// a deep and a wide directory, non-ASCII names, assorted modes and a FIFO, fixed times.
pub fn build_tree(root: &Path, big: usize) {
    fs::create_dir_all(root).unwrap();
    let sizes = [
        0usize,
        1,
        2,
        100,
        4095,
        4096,
        4097,
        32767,
        32768,
        32769,
        65536,
        100_000,
        1 << 20,
        3 << 20,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        fs::write(root.join(format!("text-{n}.txt")), bytes(i as u64, n, true)).unwrap();
        fs::write(
            root.join(format!("rand-{n}.bin")),
            bytes(100 + i as u64, n, false),
        )
        .unwrap();
    }
    if big > 0 {
        let mut data = bytes(7, big / 2, true);
        data.extend_from_slice(&bytes(8, big - big / 2, false));
        fs::write(root.join("big.bin"), data).unwrap();
    }
    // Duplicates (same content, separate files) and hard links.
    fs::create_dir_all(root.join("dup")).unwrap();
    fs::write(
        root.join("dup/copy-of-100000.txt"),
        bytes(11, 100_000, true),
    )
    .unwrap();
    fs::copy(
        root.join("text-100000.txt"),
        root.join("dup/same-as-text.txt"),
    )
    .unwrap();
    fs::hard_link(root.join("text-4096.txt"), root.join("dup/hardlink-1")).unwrap();
    fs::hard_link(root.join("text-4096.txt"), root.join("dup/hardlink-2")).unwrap();
    fs::hard_link(root.join("text-0.txt"), root.join("dup/empty-link")).unwrap();
    // Symlinks.
    let l = root.join("links");
    fs::create_dir_all(&l).unwrap();
    std::os::unix::fs::symlink("../text-100.txt", l.join("relative")).unwrap();
    std::os::unix::fs::symlink("../dup", l.join("to-dir")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", l.join("absolute-outside")).unwrap();
    std::os::unix::fs::symlink(root.join("text-1.txt"), l.join("absolute-inside")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", l.join("dangling")).unwrap();
    std::os::unix::fs::symlink("with\\backslash", l.join("backslash")).unwrap();
    // Deep and wide.
    let mut deep = root.join("deep");
    for i in 0..40 {
        deep.push(format!("level{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.txt"), b"bottom").unwrap();
    let wide = root.join("wide");
    fs::create_dir_all(&wide).unwrap();
    for i in 0..400 {
        fs::write(
            wide.join(format!("f{i:04}")),
            bytes(1000 + i, (i as usize * 37) % 3000, i % 2 == 0),
        )
        .unwrap();
    }
    // Non-ASCII names.
    let u = root.join("ünïcødé ✓");
    fs::create_dir_all(&u).unwrap();
    for name in [
        "日本語.txt",
        "emoji-😀.txt",
        "Ωmega",
        "space name.txt",
        "CASE",
        "case",
    ] {
        fs::write(u.join(name), name.as_bytes()).unwrap();
    }
    // Modes and a FIFO.
    let m = root.join("modes");
    fs::create_dir_all(&m).unwrap();
    for (name, mode) in [
        ("private", 0o600),
        ("exec", 0o755),
        ("readonly", 0o444),
        ("setgid", 0o2755),
    ] {
        let p = m.join(name);
        fs::write(&p, name.as_bytes()).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    let fifo = CString::new(m.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    #[allow(unsafe_code)]
    let r = unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) };
    assert_eq!(r, 0);
    // Fixed times everywhere, children first.
    let mut all = Vec::new();
    walk(root, &mut all);
    for (i, p) in all.iter().enumerate().rev() {
        let t = 1_600_000_000 + i as i64 * 3;
        set_times(
            p,
            (t + 1, 123_456_700),
            (t, (i as i64 * 7919 % 10_000_000) * 100),
        );
    }
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    walk_md(p, &mut Vec::new(), out);
}

/// Pre-order walk; each path's metadata is taken before its directory is listed (listing
/// changes a directory's access time).
fn walk_md(p: &Path, mds: &mut Vec<fs::Metadata>, out: &mut Vec<PathBuf>) {
    out.push(p.to_path_buf());
    let md = fs::symlink_metadata(p).unwrap();
    let is_dir = md.is_dir();
    mds.push(md);
    if is_dir {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for n in names {
            walk_md(&n, mds, out);
        }
    }
}

/// What matters of one applied file.
#[derive(Debug, PartialEq, Eq)]
pub struct Info {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub atime: (i64, i64),
    pub target: Option<PathBuf>,
    pub content: Option<Vec<u8>>,
    /// Index of the first path with the same inode (hard-link grouping).
    pub link_of: usize,
}

/// Everything under `root`, by relative path. Atimes are read before contents.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Info> {
    let (mut all, mut mds) = (Vec::new(), Vec::new());
    walk_md(root, &mut mds, &mut all);
    let canon = fs::canonicalize(root).unwrap();
    let mut inodes: BTreeMap<u64, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (i, (p, md)) in all.iter().zip(&mds).enumerate() {
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else {
            's'
        };
        let link_of = *inodes.entry(md.ino()).or_insert(i);
        let info = Info {
            kind,
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            nlink: if kind == 'd' { 0 } else { md.nlink() },
            // A symlink's size is its target's length, compared through `target`.
            size: if kind == 'd' || kind == 'l' {
                0
            } else {
                md.size()
            },
            mtime: (md.mtime(), md.mtime_nsec()),
            atime: (md.atime(), md.atime_nsec()),
            // Absolute targets fixed up under the apply directory compare as `<ROOT>/…`.
            target: ft.is_symlink().then(|| {
                let t = fs::read_link(p).unwrap();
                match t.strip_prefix(&canon) {
                    Ok(rest) => Path::new("<ROOT>").join(rest),
                    Err(_) => t,
                }
            }),
            content: None,
            link_of,
        };
        out.insert(p.strip_prefix(root).unwrap().to_path_buf(), info);
    }
    for (rel, info) in out.iter_mut() {
        if info.kind == 'f' {
            info.content = Some(fs::read(root.join(rel)).unwrap());
        }
    }
    // Link groups by relative position, comparable across trees.
    let keys: Vec<PathBuf> = out.keys().cloned().collect();
    let rels: Vec<PathBuf> = all
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    for k in keys {
        let first = &rels[out[&k].link_of];
        let pos = out.keys().position(|x| x == first).unwrap();
        out.get_mut(&k).unwrap().link_of = pos;
    }
    out
}

/// Asserts two applied trees are the same, with a readable first difference.
pub fn assert_same_tree(ours: &Path, theirs: &Path, what: &str) {
    let a = snapshot(ours);
    let b = snapshot(theirs);
    let ka: Vec<_> = a.keys().collect();
    let kb: Vec<_> = b.keys().collect();
    assert_eq!(ka, kb, "{what}: different file lists");
    for (k, ia) in &a {
        let ib = &b[k];
        assert_eq!(ia, ib, "{what}: {} differs", k.display());
    }
}

/// A new file open for reading too (the integrity table hashes what was written).
pub fn create(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap()
}

/// An existing file open for reading and writing.
pub fn open_rw(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// The update command adding the directory `source` at `dest` in the image, every option off.
pub fn add_command(source: &Path, dest: &str) -> wim_image::write::update::UpdateCommand {
    wim_image::write::update::UpdateCommand::Add {
        source: source.to_path_buf(),
        dest: dest.into(),
        no_replace: false,
        unix_data: false,
        dereference: false,
        config: Default::default(),
    }
}
