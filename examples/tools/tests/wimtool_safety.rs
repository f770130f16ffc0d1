//! `wimtool` on hostile or mistaken command lines: what it must never destroy or write
//! outside of, and the exit codes and messages of failures (no `wimlib-imagex` needed).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("wimtool-safety-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Names in the directory (temporary files included).
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs wimtool (in `dir`) with raw arguments and optional standard input: exit code and
/// standard error.
fn run_in(dir: &Path, args: &[&OsStr], input: Option<&[u8]>) -> (i32, String) {
    use std::io::Write as _;
    let mut c = Command::new(env!("CARGO_BIN_EXE_wimtool"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    if let Some(i) = input {
        stdin.write_all(i).unwrap();
    }
    drop(stdin);
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    match o.status.code() {
        Some(code) => (code, err),
        None => panic!("wimtool {args:?} was killed: {err}"),
    }
}

fn run(s: &Scratch, args: &[&str]) -> (i32, String) {
    let a: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run_in(&s.0, &a, None)
}

fn ok(s: &Scratch, args: &[&str]) {
    let (code, err) = run(s, args);
    assert_eq!(code, 0, "wimtool {args:?}: {err}");
}

/// `len` incompressible bytes from the xorshift state `x`.
fn incompressible(x: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            (*x >> 24) as u8
        })
        .collect()
}

/// `src/` with `a` and `sub/r.bin`, captured into `t.wim`.
fn setup(name: &str) -> Scratch {
    let s = Scratch::new(name);
    fs::create_dir_all(s.path("src/sub")).unwrap();
    fs::write(s.path("src/a"), b"hi\n").unwrap();
    // Incompressible, so that parts of 0.02 MiB split it.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    fs::write(s.path("src/sub/r.bin"), incompressible(&mut x, 60_000)).unwrap();
    ok(&s, &["capture", "-q", "src", "t.wim"]);
    s
}

/// `wimtool apply` refuses a symbolic link already in the target where the image has a
/// directory (it once wrote the image's files wherever the link pointed).
#[test]
fn apply_does_not_follow_a_symlink_in_the_target() {
    let s = setup("apply-symlink");
    fs::create_dir_all(s.path("out")).unwrap();
    fs::create_dir_all(s.path("elsewhere")).unwrap();
    symlink(s.path("elsewhere"), s.path("out/sub")).unwrap();
    let (code, err) = run(&s, &["apply", "t.wim", "out"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("out/sub"), "{err}");
    assert_eq!(fs::read_dir(s.path("elsewhere")).unwrap().count(), 0);
}

/// A capture that fails (missing directory, missing configuration) leaves an existing WIM
/// as it was and no temporary file behind; a successful one replaces it.
#[test]
fn failed_capture_keeps_the_existing_wim() {
    let s = setup("capture-keep");
    let before = fs::read(s.path("t.wim")).unwrap();
    let names = s.names();
    let (code, err) = run(&s, &["capture", "nosuchdir", "t.wim"]);
    assert_eq!(code, 3, "{err}");
    let (code, err) = run(&s, &["capture", "--config=/nonexistent", "src", "t.wim"]);
    assert_eq!(code, 3, "{err}");
    let (code, err) = run(&s, &["capture", "--compress=bogus", "src", "t.wim"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(fs::read(s.path("t.wim")).unwrap(), before);
    assert_eq!(s.names(), names);
    ok(&s, &["capture", "-q", "src", "t.wim", "again"]);
    assert_ne!(fs::read(s.path("t.wim")).unwrap(), before);
    assert_eq!(s.names(), names);
}

/// `split W W MAX` (or a part name that is a link to W) is refused and W stays whole.
#[test]
fn split_never_overwrites_its_source() {
    let s = setup("split-source");
    let before = fs::read(s.path("t.wim")).unwrap();
    let (code, err) = run(&s, &["split", "t.wim", "t.wim", "0.01"]);
    assert_eq!(code, 1, "{err}");
    // The second part's name is a link to the source.
    symlink("t.wim", s.path("p2.swm")).unwrap();
    let (code, err) = run(&s, &["split", "t.wim", "p.swm", "0.01"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("p2.swm"), "{err}");
    assert_eq!(fs::read(s.path("t.wim")).unwrap(), before);
    assert!(!s.path("p.swm").exists());
    assert!(
        s.names().iter().all(|n| !n.contains("wimtool")),
        "{:?}",
        s.names()
    );
    fs::remove_file(s.path("p2.swm")).unwrap();
    ok(&s, &["split", "-q", "t.wim", "p.swm", "0.02"]);
    ok(&s, &["verify", "-q", "p.swm"]);
}

/// A split into more parts than the process may hold open files: each part is finished,
/// synced and closed before the next is opened (it kept every part open until the end, so
/// a split into more parts than the open-file limit failed).
#[test]
fn split_into_more_parts_than_open_files() {
    let s = Scratch::new("split-fds");
    fs::create_dir_all(s.path("src")).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..120 {
        // Incompressible, about 2 KiB each: one or two files per 0.002 MiB part.
        fs::write(
            s.path(&format!("src/f{i:03}")),
            incompressible(&mut x, 2000),
        )
        .unwrap();
    }
    ok(&s, &["capture", "-q", "src", "t.wim"]);
    let limited = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 40 && exec "$0" split -q t.wim p.swm 0.002"#)
        .arg(env!("CARGO_BIN_EXE_wimtool"))
        .current_dir(&s.0)
        .output()
        .unwrap();
    assert!(
        limited.status.success(),
        "{}",
        String::from_utf8_lossy(&limited.stderr)
    );
    let parts = s.names().iter().filter(|n| n.ends_with(".swm")).count();
    assert!(parts > 40, "{parts} parts: not more than the limit");
    ok(&s, &["verify", "-q", "p.swm"]);
}

/// `--threads` far beyond what makes sense is bounded (it once built one compressor per
/// thread and aborted on allocation, leaving the output empty).
#[test]
fn thread_count_is_bounded() {
    let s = setup("threads");
    let w = env!("CARGO_BIN_EXE_wimtool");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 3000000 && exec {w} capture -q --threads 100000 src big.wim"
        ))
        .current_dir(&s.0)
        .status()
        .unwrap();
    assert!(st.success(), "{st:?}");
    ok(&s, &["verify", "-q", "big.wim"]);
}

/// A solid LZMS resource of 1 GiB chunks holding 60 KB sizes its match finder by the data:
/// it once allocated 8 GiB.
#[test]
fn solid_compressor_is_sized_by_the_data() {
    let s = setup("solid-memory");
    let w = env!("CARGO_BIN_EXE_wimtool");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 2000000 && exec {w} capture -q --threads=1 --solid \
             --solid-chunk-size=1G src solid.wim"
        ))
        .current_dir(&s.0)
        .status()
        .unwrap();
    assert!(st.success(), "{st:?}");
    ok(&s, &["verify", "-q", "solid.wim"]);
    fs::create_dir_all(s.path("x")).unwrap();
    ok(&s, &["apply", "solid.wim", "x"]);
    assert_eq!(
        fs::read(s.path("x/sub/r.bin")).unwrap(),
        fs::read(s.path("src/sub/r.bin")).unwrap()
    );
}

/// `--ref` globs may match the first part (under another spelling) and use `?` and `[...]`.
#[test]
fn ref_glob_may_name_the_first_part() {
    let s = setup("ref-glob");
    ok(&s, &["split", "-q", "t.wim", "part.swm", "0.02"]);
    assert!(s.path("part3.swm").exists());
    for (glob, first) in [
        ("part*.swm", "part.swm"),
        ("./part*.swm", "part.swm"),
        ("part*.swm", "./part.swm"),
        ("part?.swm", "part.swm"),
        ("part[2-9].swm", "part.swm"),
        ("part[!x]*", "part.swm"),
    ] {
        ok(&s, &["verify", "-q", "--ref", glob, first]);
    }
    let (code, err) = run(&s, &["verify", "--ref", "nomatch*.swm", "part.swm"]);
    assert_ne!(code, 0, "{err}");
}

/// Arguments that are not UTF-8 are file names like any other (they once panicked); a path
/// inside the image is WTF-8, reaching a name with an unpaired surrogate.
#[test]
fn non_utf8_arguments() {
    let s = Scratch::new("non-utf8");
    let (code, err) = run_in(
        &s.0,
        &[OsStr::new("info"), OsStr::from_bytes(b"\xff.wim")],
        None,
    );
    assert_eq!(code, 3, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A directory and a file whose names are not UTF-8; one is WTF-8 (a lone surrogate).
    let dir = OsStr::from_bytes(b"d\xfe");
    fs::create_dir_all(s.0.join(dir)).unwrap();
    fs::write(
        s.0.join(dir).join(OsStr::from_bytes(b"a\xed\xa0\x80b")),
        b"x",
    )
    .unwrap();
    fs::write(s.0.join(dir).join("plain"), b"y").unwrap();
    let wim = OsStr::from_bytes(b"w\xff.wim");
    let (code, err) = run_in(
        &s.0,
        &[OsStr::new("capture"), OsStr::new("-q"), dir, wim],
        None,
    );
    assert_eq!(code, 0, "{err}");
    fs::create_dir_all(s.path("out")).unwrap();
    let (code, err) = run_in(
        &s.0,
        &[
            OsStr::new("extract"),
            OsStr::new("--dest-dir=out"),
            wim,
            OsStr::new("1"),
            OsStr::from_bytes(b"/a\xed\xa0\x80b"),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        fs::read(s.path("out").join(OsStr::from_bytes(b"a\xed\xa0\x80b"))).unwrap(),
        b"x"
    );
    // `update` reads its commands as bytes.
    let (code, err) = run_in(
        &s.0,
        &[OsStr::new("update"), wim],
        Some(b"delete /a\xed\xa0\x80b\n"),
    );
    assert_eq!(code, 0, "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_wimtool"))
        .arg("dir")
        .arg(wim)
        .current_dir(&s.0)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"/\n/plain\n");
}

/// A WIM whose data are corrupt is exit 2 naming that WIM, not an I/O error (3) naming the
/// file being written; nothing is left of the new file.
#[test]
fn corrupt_source_is_exit_2_naming_it() {
    let s = setup("corrupt-source");
    ok(&s, &["capture", "-q", "--compress=none", "src", "raw.wim"]);
    let mut bytes = fs::read(s.path("raw.wim")).unwrap();
    let data = fs::read(s.path("src/sub/r.bin")).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &data[..64])
        .expect("stored data");
    bytes[at + 100] ^= 0xFF;
    fs::write(s.path("raw.wim"), bytes).unwrap();
    let (code, err) = run(&s, &["export", "--recompress", "raw.wim", "1", "dest.wim"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("raw.wim") && !err.contains("dest.wim"),
        "{err}"
    );
    assert!(!s.path("dest.wim").exists());
    assert!(
        s.names().iter().all(|n| !n.contains("wimtool")),
        "{:?}",
        s.names()
    );
}

/// `delete` and `optimize` through a symbolic link rebuild the file it names and keep the
/// link (they once replaced the link with a regular file).
#[test]
fn rebuild_through_a_symlink_keeps_it() {
    let s = setup("rebuild-symlink");
    ok(&s, &["append", "-q", "src", "t.wim", "two"]);
    symlink("t.wim", s.path("l.wim")).unwrap();
    ok(&s, &["delete", "l.wim", "1"]);
    assert!(fs::symlink_metadata(s.path("l.wim"))
        .unwrap()
        .file_type()
        .is_symlink());
    let (_, info) = {
        let o = Command::new(env!("CARGO_BIN_EXE_wimtool"))
            .args(["info", "t.wim"])
            .current_dir(&s.0)
            .output()
            .unwrap();
        (o.status, String::from_utf8_lossy(&o.stdout).into_owned())
    };
    assert!(info.contains("Image Count:    1"), "{info}");
    ok(&s, &["optimize", "-q", "l.wim"]);
    assert!(fs::symlink_metadata(s.path("l.wim"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// `capture DIR DIR/out.wim` leaves the WIM being written out of the image.
#[test]
fn capture_into_the_captured_directory() {
    let s = setup("capture-self");
    ok(&s, &["capture", "-q", "src", "src/out.wim"]);
    let o = Command::new(env!("CARGO_BIN_EXE_wimtool"))
        .args(["dir", "src/out.wim"])
        .current_dir(&s.0)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "/\n/a\n/sub\n/sub/r.bin\n"
    );
}

/// Value options a command does not use are refused; a path the image lacks is a usage
/// error (1), not a corrupt WIM (2); an error's cause is not printed twice.
#[test]
fn usage_errors() {
    let s = setup("usage");
    for args in [
        &["info", "--dest-dir", "x", "t.wim"][..],
        &["dir", "--compress=lzx", "t.wim"],
        &["verify", "--threads", "2", "t.wim"],
        &["split", "--config=c", "t.wim", "p.swm", "1"],
    ] {
        let (code, err) = run(&s, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("does not apply"), "{err}");
    }
    let (code, err) = run(&s, &["extract", "t.wim", "1", "/nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nope"), "{err}");
    // A file that cannot be read is named once with its cause.
    symlink("/nonexistent/x", s.path("src/dangling")).unwrap();
    let (code, err) = run(&s, &["capture", "--dereference", "src", "x.wim"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("dangling"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

/// The arguments as `OsStr`s.
fn os<'a>(v: &[&'a str]) -> Vec<&'a OsStr> {
    v.iter().map(|a| OsStr::new(*a)).collect()
}

/// Standard output of `wimtool ARGS` run in the scratch directory (raw arguments).
fn stdout_of(s: &Scratch, args: &[&OsStr]) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_wimtool"))
        .args(args)
        .current_dir(&s.0)
        .output()
        .unwrap();
    assert!(o.status.success(), "wimtool {args:?}: {:?}", o);
    o.stdout
}

/// Two siblings whose names differ only in an unpaired surrogate (`a` + U+D800 and `a` +
/// U+DC00) share a lossy form; `update` reaches each exactly by its WTF-8 bytes (it once
/// took the lossy form and so always changed the first).
#[test]
fn update_addresses_names_that_share_a_lossy_form() {
    let s = Scratch::new("update-wtf8");
    let first = OsStr::from_bytes(b"a\xed\xa0\x80");
    let second = OsStr::from_bytes(b"a\xed\xb0\x80");
    fs::create_dir_all(s.path("d")).unwrap();
    fs::write(s.path("d").join(first), b"first").unwrap();
    fs::write(s.path("d").join(second), b"second").unwrap();
    fs::write(s.path("new"), b"new").unwrap();
    let update = |wim: &str, cmds: &[u8]| {
        let (code, err) = run_in(&s.0, &os(&["update", wim]), Some(cmds));
        assert_eq!(code, 0, "{}: {err}", String::from_utf8_lossy(cmds));
    };
    let contents = |wim: &str, name: &[u8]| -> Vec<u8> {
        let out = s.path("out");
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out).unwrap();
        let mut path = b"/".to_vec();
        path.extend_from_slice(name);
        let mut args = os(&["extract", "--dest-dir=out", wim, "1"]);
        args.push(OsStr::from_bytes(&path));
        let (code, err) = run_in(&s.0, &args, None);
        assert_eq!(code, 0, "{err}");
        fs::read(out.join(OsStr::from_bytes(name))).unwrap()
    };
    for wim in ["del.wim", "ren.wim", "add.wim"] {
        ok(&s, &["capture", "-q", "d", wim]);
    }

    update("del.wim", b"delete /a\xed\xb0\x80\n");
    assert_eq!(
        stdout_of(&s, &os(&["dir", "del.wim"])),
        b"/\n/a\xed\xa0\x80\n"
    );

    // Renamed to a name that is not valid UTF-16 either: it keeps its exact units.
    update("ren.wim", b"rename /a\xed\xb0\x80 /b\xed\xb0\x81\n");
    assert_eq!(
        stdout_of(&s, &os(&["dir", "ren.wim"])),
        b"/\n/a\xed\xa0\x80\n/b\xed\xb0\x81\n"
    );
    assert_eq!(contents("ren.wim", b"b\xed\xb0\x81"), b"second");

    update("add.wim", b"add new /a\xed\xb0\x80\n");
    assert_eq!(contents("add.wim", b"a\xed\xb0\x80"), b"new");
    assert_eq!(contents("add.wim", b"a\xed\xa0\x80"), b"first");

    // Bytes that are not WTF-8 name nothing in an image: a usage error.
    let (code, err) = run_in(&s.0, &os(&["update", "add.wim"]), Some(b"delete /a\xff\n"));
    assert_eq!(code, 1, "{err}");
}

/// A split whose renames fail partway (a later part's name is a directory) leaves no part
/// behind: the parts already renamed are removed, a file a part replaced is put back, and
/// no temporary file remains.
#[test]
fn failed_split_leaves_no_partial_set() {
    let s = setup("split-partial");
    fs::write(s.path("p.swm"), b"old first part").unwrap();
    fs::create_dir_all(s.path("p3.swm")).unwrap();
    let names = s.names();
    let (code, err) = run(&s, &["split", "t.wim", "p.swm", "0.02"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("p3.swm"), "{err}");
    assert!(
        fs::read(s.path("p.swm")).unwrap() == b"old first part",
        "the file the first part replaced is not back"
    );
    assert!(s.path("p3.swm").is_dir());
    assert_eq!(s.names(), names);
    fs::remove_dir(s.path("p3.swm")).unwrap();
    ok(&s, &["split", "-q", "t.wim", "p.swm", "0.02"]);
    assert!(s.path("p3.swm").is_file());
    ok(&s, &["verify", "-q", "p.swm"]);
}

/// `export W IMAGE W NAME` appends a copy of the image to W itself, as wimlib does: an
/// append in place writes nothing before the old end of the file but its header, and the
/// source reads nothing past it. Without a new name the export is refused (the name is
/// taken) and W stays as it was, also when reached by another name.
#[test]
fn export_into_its_own_source() {
    let s = setup("export-self");
    let before = fs::read(s.path("t.wim")).unwrap();
    fs::hard_link(s.path("t.wim"), s.path("hard.wim")).unwrap();
    symlink("t.wim", s.path("soft.wim")).unwrap();
    for dest in ["t.wim", "hard.wim", "soft.wim", "./t.wim"] {
        let (code, err) = run(&s, &["export", "t.wim", "all", dest]);
        assert_eq!(code, 1, "{dest}: {err}");
        assert!(err.contains("already"), "{err}");
        assert_eq!(fs::read(s.path("t.wim")).unwrap(), before, "{dest}");
    }
    ok(&s, &["export", "t.wim", "1", "soft.wim", "copy"]);
    ok(&s, &["verify", "-q", "t.wim"]);
    let info = stdout_of(&s, &[OsStr::new("info"), OsStr::new("t.wim")]);
    let info = String::from_utf8_lossy(&info);
    assert!(info.contains("Image Count:    2"), "{info}");
    assert!(info.contains("Name:                   copy"), "{info}");
    fs::create_dir_all(s.path("x")).unwrap();
    ok(&s, &["apply", "t.wim", "copy", "x"]);
    assert_eq!(
        fs::read(s.path("x/sub/r.bin")).unwrap(),
        fs::read(s.path("src/sub/r.bin")).unwrap()
    );
    assert!(
        s.names().iter().all(|n| !n.contains("wimtool")),
        "{:?}",
        s.names()
    );
}
