//! `vhdtool` end to end: every command, its exit codes, and (when installed) qemu-img's view
//! of what it wrote.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn tool(args: &[&str], dir: &Path) -> Output {
    tool_os(args.iter().map(OsStr::new), dir)
}

fn tool_os<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vhdtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run vhdtool")
}

/// Runs vhdtool under a 1 GB address-space limit (a tool that reads a whole input into memory
/// fails instead of eating the machine), with `stdin` as standard input.
fn tool_limited(args: &[&str], stdin: Stdio, dir: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1000000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_vhdtool"))
        .args(args)
        .current_dir(dir)
        .stdin(stdin)
        .output()
        .expect("run vhdtool")
}

fn ok(args: &[&str], dir: &Path) -> String {
    let out = tool(args, dir);
    assert!(
        out.status.success(),
        "vhdtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn code(args: &[&str], dir: &Path) -> i32 {
    tool(args, dir).status.code().expect("exit code")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vhdtool-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names in `dir`, sorted (temporary files included).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Whether `qemu-img` is installed; under `CI=true` its absence is a failure.
fn have_qemu() -> bool {
    let found = Command::new("qemu-img").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "qemu-img not installed (CI=true)"
        );
        println!("skipped: qemu-img not installed");
    }
    found
}

#[test]
fn lifecycle_and_exit_codes() {
    let d = scratch("life");
    ok(
        &[
            "create",
            "-t",
            "dynamic",
            "-s",
            "16M",
            "--block-size",
            "1M",
            "base.vhd",
        ],
        &d,
    );
    ok(
        &[
            "write",
            "base.vhd",
            "1M",
            "--pattern",
            "ab",
            "--length",
            "8192",
        ],
        &d,
    );
    ok(&["snapshot", "base.vhd", "child.vhd"], &d);
    ok(
        &[
            "write",
            "child.vhd",
            "1052672",
            "--pattern",
            "cd",
            "--length",
            "512",
        ],
        &d,
    );
    let bytes = tool(&["read", "child.vhd", "1M", "8192"], &d).stdout;
    assert_eq!(bytes.len(), 8192);
    assert!(bytes[..4096].iter().all(|&b| b == 0xab));
    assert!(bytes[4096..4608].iter().all(|&b| b == 0xcd));
    assert!(bytes[4608..].iter().all(|&b| b == 0xab));

    let info = ok(&["info", "--json", "child.vhd"], &d);
    assert!(info.contains("\"disk-type\": \"differencing\""), "{info}");
    assert!(info.contains("\"virtual-size\": 16777216"), "{info}");
    assert!(info.contains("\"name\": \"base.vhd\""), "{info}");
    assert!(ok(&["check", "child.vhd"], &d).contains("No errors"));
    let map = ok(&["map", "--json", "child.vhd"], &d);
    assert!(map.contains("\"parent\": true"), "{map}");

    // Flatten, merge, compact, expand.
    ok(&["merge", "-o", "flat.vhd", "-O", "fixed", "child.vhd"], &d);
    ok(&["convert", "-O", "raw", "flat.vhd", "flat.raw"], &d);
    let raw = std::fs::read(d.join("flat.raw")).unwrap();
    assert_eq!(&raw[1 << 20..(1 << 20) + 8192], &bytes[..]);
    ok(&["merge", "child.vhd"], &d);
    assert_eq!(tool(&["read", "base.vhd", "1M", "8192"], &d).stdout, bytes);
    ok(
        &[
            "write",
            "base.vhd",
            "4M",
            "--pattern",
            "00",
            "--length",
            "1048576",
        ],
        &d,
    );
    ok(&["compact", "base.vhd"], &d);
    ok(&["expand", "-s", "32M", "base.vhd"], &d);
    assert!(ok(&["info", "base.vhd"], &d).contains("virtual size: 33554432 bytes"));
    assert!(ok(&["check", "base.vhd"], &d).contains("No errors"));

    // Exit codes: 1 usage, 2 corrupt image, 3 I/O error.
    assert_eq!(code(&["frobnicate"], &d), 1);
    assert_eq!(code(&["create", "-s", "1M"], &d), 1);
    assert_eq!(code(&["expand", "-s", "1M", "base.vhd"], &d), 2);
    assert_eq!(code(&["info", "missing.vhd"], &d), 3);
    std::fs::write(d.join("junk.vhd"), vec![7u8; 4096]).unwrap();
    assert_eq!(code(&["info", "junk.vhd"], &d), 2);
    assert_eq!(code(&["check", "junk.vhd"], &d), 2);
    // A cut-off tail is repaired.
    let mut cut = std::fs::read(d.join("base.vhd")).unwrap();
    cut.truncate(cut.len() - 512);
    std::fs::write(d.join("cut.vhd"), &cut).unwrap();
    assert_eq!(code(&["check", "cut.vhd"], &d), 2);
    ok(&["repair", "cut.vhd"], &d);
    assert_eq!(code(&["check", "cut.vhd"], &d), 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn qemu_reads_what_vhdtool_writes() {
    if !have_qemu() {
        return;
    }
    let d = scratch("qemu");
    let mut raw = vec![0u8; 8 << 20];
    for (i, b) in raw.iter_mut().enumerate().skip(300_000).take(3_000_000) {
        *b = (i % 251) as u8;
    }
    std::fs::write(d.join("ref.raw"), &raw).unwrap();
    for fmt in ["fixed", "dynamic"] {
        let out = format!("{fmt}.vhd");
        ok(
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                fmt,
                "--block-size",
                "512K",
                "ref.raw",
                &out,
            ],
            &d,
        );
        let status = Command::new("qemu-img")
            .args(["compare", "-f", "vpc", "-F", "raw", &out, "ref.raw"])
            .current_dir(&d)
            .status()
            .unwrap();
        assert!(status.success(), "qemu-img compare disagrees for {fmt}");
    }
    // And vhdtool reads what qemu writes.
    let status = Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic,force_size=on",
            "ref.raw",
            "q.vhd",
        ])
        .current_dir(&d)
        .status()
        .unwrap();
    assert!(status.success());
    ok(&["convert", "-O", "raw", "q.vhd", "back.raw"], &d);
    assert_eq!(std::fs::read(d.join("back.raw")).unwrap(), raw);
    let _ = std::fs::remove_dir_all(&d);
}

/// A failed `create` or `snapshot` leaves every existing file as it was and no file behind.
#[test]
fn failed_creates_touch_nothing() {
    let d = scratch("failcreate");
    ok(&["create", "-s", "4M", "p.vhd"], &d);
    let parent = std::fs::read(d.join("p.vhd")).unwrap();
    // The parent as its own child.
    assert_eq!(code(&["create", "-b", "p.vhd", "p.vhd"], &d), 1);
    assert_eq!(std::fs::read(d.join("p.vhd")).unwrap(), parent);
    // A missing parent.
    std::fs::write(d.join("e.vhd"), b"precious").unwrap();
    assert_eq!(code(&["create", "-b", "missing.vhd", "e.vhd"], &d), 3);
    // Invalid options: a usage error before the destination is touched.
    assert_eq!(
        code(
            &["create", "-b", "p.vhd", "--block-size", "3M", "e.vhd"],
            &d
        ),
        1
    );
    for bad in [
        &["create", "-s", "0", "e.vhd"][..],
        &["create", "-s", "3000G", "e.vhd"],
        &["create", "-s", "1000", "e.vhd"],
        &["create", "-s", "4M", "--block-size", "3M", "e.vhd"],
    ] {
        assert_eq!(code(bad, &d), 1, "{bad:?}");
    }
    assert_eq!(std::fs::read(d.join("e.vhd")).unwrap(), b"precious");
    // A snapshot with a bad option leaves no child, so that a retry works.
    assert_eq!(
        code(&["snapshot", "--block-size", "3M", "p.vhd", "c.vhd"], &d),
        1
    );
    assert_eq!(names(&d), ["e.vhd", "p.vhd"]);
    ok(&["snapshot", "p.vhd", "c.vhd"], &d);
    // snapshot still refuses an existing child; create replaces an existing file.
    assert_eq!(code(&["snapshot", "p.vhd", "e.vhd"], &d), 3);
    assert_eq!(std::fs::read(d.join("e.vhd")).unwrap(), b"precious");
    ok(&["create", "-b", "p.vhd", "e.vhd"], &d);
    assert!(ok(&["info", "e.vhd"], &d).contains("parent: \"p.vhd\""));
    ok(&["create", "-s", "1M", "e.vhd"], &d);
    assert!(ok(&["info", "e.vhd"], &d).contains("virtual size: 1048576 bytes"));
    assert_eq!(names(&d), ["c.vhd", "e.vhd", "p.vhd"]);
    let _ = std::fs::remove_dir_all(&d);
}

/// `convert` and `merge -o` refuse to write over one of their inputs (the source or any
/// parent of it), and a failed conversion leaves the destination as it was.
#[test]
fn outputs_never_replace_inputs() {
    let d = scratch("inputs");
    ok(&["create", "-s", "8M", "b.vhd"], &d);
    ok(
        &["write", "b.vhd", "0", "--pattern", "11", "--length", "1M"],
        &d,
    );
    ok(&["snapshot", "b.vhd", "c.vhd"], &d);
    ok(
        &["write", "c.vhd", "0", "--pattern", "22", "--length", "512"],
        &d,
    );
    let (base, child) = (
        std::fs::read(d.join("b.vhd")).unwrap(),
        std::fs::read(d.join("c.vhd")).unwrap(),
    );
    assert_eq!(code(&["convert", "b.vhd", "b.vhd"], &d), 1);
    assert_eq!(code(&["convert", "-O", "raw", "c.vhd", "c.vhd"], &d), 1);
    assert_eq!(code(&["merge", "-o", "c.vhd", "c.vhd"], &d), 1);
    // The parent is an input too.
    assert_eq!(code(&["merge", "-o", "b.vhd", "c.vhd"], &d), 1);
    assert_eq!(code(&["convert", "c.vhd", "b.vhd"], &d), 1);
    // And by another name.
    std::fs::hard_link(d.join("b.vhd"), d.join("h.vhd")).unwrap();
    assert_eq!(code(&["convert", "c.vhd", "h.vhd"], &d), 1);
    std::fs::remove_file(d.join("h.vhd")).unwrap();
    assert_eq!(std::fs::read(d.join("b.vhd")).unwrap(), base);
    assert_eq!(std::fs::read(d.join("c.vhd")).unwrap(), child);
    assert_eq!(tool(&["read", "c.vhd", "0", "1"], &d).stdout, [0x22]);

    // Failures leave an existing destination alone and make no new one.
    std::fs::write(d.join("d.vhd"), b"precious").unwrap();
    assert_eq!(
        code(&["convert", "--block-size", "3M", "b.vhd", "d.vhd"], &d),
        1
    );
    assert_eq!(std::fs::read(d.join("d.vhd")).unwrap(), b"precious");
    std::fs::create_dir(d.join("dir")).unwrap();
    assert_eq!(code(&["convert", "dir", "d2.vhd"], &d), 3);
    assert_eq!(code(&["convert", "b.vhd", "dir"], &d), 3);
    assert_eq!(names(&d), ["b.vhd", "c.vhd", "d.vhd", "dir"]);
    // Success replaces the destination.
    ok(&["merge", "-o", "d.vhd", "c.vhd"], &d);
    assert_eq!(
        tool(&["read", "d.vhd", "511", "2"], &d).stdout,
        [0x22, 0x11]
    );
    assert_eq!(names(&d), ["b.vhd", "c.vhd", "d.vhd", "dir"]);
    let _ = std::fs::remove_dir_all(&d);
}

/// `write` checks the range before writing or reading anything and streams its input.
#[test]
fn write_checks_range_and_streams() {
    let d = scratch("write");
    ok(&["create", "-s", "4M", "w.vhd"], &d);
    let before = std::fs::read(d.join("w.vhd")).unwrap();
    let out = tool_limited(
        &["write", "w.vhd", "0", "--pattern", "41", "--length", "1T"],
        Stdio::null(),
        &d,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = tool_limited(
        &["write", "w.vhd", "4M", "--pattern", "41", "--length", "1"],
        Stdio::null(),
        &d,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    std::fs::write(d.join("big.bin"), vec![0x5au8; 2 << 20]).unwrap();
    assert_eq!(code(&["write", "w.vhd", "3M", "-i", "big.bin"], &d), 1);
    assert_eq!(std::fs::read(d.join("w.vhd")).unwrap(), before);

    // An endless input: the disk is filled to its end, then the excess is reported.
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let out = tool_limited(
        &["write", "w.vhd", "3M", "-i", "/dev/zero"],
        zero.into(),
        &d,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("longer"),
        "{out:?}"
    );
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let out = tool_limited(&["write", "w.vhd", "3M"], zero.into(), &d);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // A stream that fits is written whole.
    let input = std::fs::File::open(d.join("big.bin")).unwrap();
    let out = tool_limited(&["write", "w.vhd", "1M"], input.into(), &d);
    assert!(out.status.success(), "{out:?}");
    let back = tool(&["read", "w.vhd", "1M", "2M"], &d).stdout;
    assert!(back.len() == 2 << 20 && back.iter().all(|&b| b == 0x5a));
    assert!(ok(&["check", "w.vhd"], &d).contains("No errors"));

    // A pattern byte is one byte of hex, with at most one 0x.
    for bad in ["0x0x41", "+41", "-1", "141", "0x", ""] {
        let args = ["write", "w.vhd", "0", "--pattern", bad, "--length", "1"];
        assert_eq!(code(&args, &d), 1, "{bad:?}");
    }
    ok(
        &["write", "w.vhd", "0", "--pattern", "0x7f", "--length", "1"],
        &d,
    );
    assert_eq!(tool(&["read", "w.vhd", "0", "1"], &d).stdout, [0x7f]);
    let _ = std::fs::remove_dir_all(&d);
}

/// `read` checks the range before writing anything, and a closed standard output ends it
/// successfully.
#[test]
fn read_checks_range_and_closed_stdout() {
    let d = scratch("read");
    ok(&["create", "-s", "4M", "r.vhd"], &d);
    let out = tool(&["read", "r.vhd", "0", "5M"], &d);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{} bytes written", out.stdout.len());
    // `map` too: 4,096 extents print far more than a pipe holds.
    let raw: Vec<u8> = (0..4 << 20).map(|i| (i / 512 % 2) as u8).collect();
    std::fs::write(d.join("striped.raw"), raw).unwrap();
    ok(
        &["convert", "--block-size", "512", "striped.raw", "s.vhd"],
        &d,
    );
    for args in [["read", "r.vhd", "0", "4M"], ["map", "s.vhd", "", ""]] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vhdtool"))
            .args(&args)
            .current_dir(&d)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Paths need not be UTF-8; a number that is not is a usage error. The usage text lists
/// every option.
#[cfg(unix)]
#[test]
fn non_utf8_arguments() {
    use std::os::unix::ffi::OsStrExt;
    let d = scratch("utf8");
    let name = OsStr::from_bytes(b"\xff.vhd");
    assert_eq!(
        tool_os([OsStr::new("info"), name], &d).status.code(),
        Some(3)
    );
    let out = tool_os(
        [
            OsStr::new("create"),
            OsStr::new("-s"),
            OsStr::new("1M"),
            name,
        ],
        &d,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(d.join(name).is_file());
    assert!(tool_os([OsStr::new("info"), name], &d).status.success());
    let out = tool_os(
        [
            OsStr::new("read"),
            name,
            OsStr::from_bytes(b"\xff"),
            OsStr::new("1"),
        ],
        &d,
    );
    assert_eq!(out.status.code(), Some(1));
    let out = tool_os([OsStr::from_bytes(b"\xff")], &d);
    assert_eq!(out.status.code(), Some(1));
    let out = tool_os(
        [
            OsStr::new("info"),
            OsStr::from_bytes(b"--size-policy=\xff"),
            name,
        ],
        &d,
    );
    assert_eq!(out.status.code(), Some(1));
    let help = ok(&["--help"], &d);
    assert!(help.contains("convert  [-f raw|vhd]"), "{help}");
    let _ = std::fs::remove_dir_all(&d);
}
