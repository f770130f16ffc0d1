//! Helpers shared by the integration suites: peer-tool detection, scratch directories, a
//! storage that records its operations so a power cut can be replayed at any point, and a
//! small deterministic RNG for data patterns.
//!
//! Each suite uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use vhd_format::{IoError, MemStorage, Storage};

// ---------------------------------------------------------------------------------------------
// Peer tools.

/// Whether the peer tool `tool` is on `PATH`.
///
/// When it is missing this prints `skipped: <tool> not installed` and returns `false`, so a
/// test can return early; under `CI=true` a missing peer is a failure instead (the CI image
/// must have every peer, and a silent skip there would hide a broken setup).
pub fn peer(tool: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(tool)))
    });
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("peer tool `{tool}` is not installed, and CI=true forbids skipping its tests");
    }
    println!("skipped: {tool} not installed");
    false
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The captured result of a peer command.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// Runs `program args…` and captures its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `program args…` and panics, with its output, unless it exits with status 0.
pub fn run_ok(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    assert_eq!(
        out.code,
        0,
        "`{program} {}` failed:\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Scratch directories.

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/vhd-format-<label>-<pid>-<n>-<nanos>`.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "vhd-format-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The path inside the directory as a `&str` (temp paths here are UTF-8).
    pub fn file(&self, name: &str) -> String {
        self.join(name)
            .to_str()
            .expect("utf-8 temp path")
            .to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A FUSE mount point that is unmounted on drop (also when the test panics).
#[derive(Debug)]
pub struct Mount {
    dir: PathBuf,
}

impl Mount {
    /// Mounts `image` with `vhdimount` at a new directory `dir` (which must not exist yet).
    pub fn vhdimount(image: &Path, dir: PathBuf) -> Self {
        std::fs::create_dir(&dir).unwrap();
        let out = run(
            "vhdimount",
            &[image.to_str().unwrap(), dir.to_str().unwrap()],
        );
        assert_eq!(
            out.code, 0,
            "vhdimount failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        Self { dir }
    }

    /// A file in the mounted directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// Crash simulation.

/// One recorded storage operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `write_at(offset, data)`.
    Write {
        /// Offset.
        offset: u64,
        /// Bytes written.
        data: Vec<u8>,
    },
    /// `set_len(len)`.
    SetLen(u64),
    /// `flush()`.
    Flush,
}

/// A [`Storage`] over a [`MemStorage`] that records every mutating operation, so that the
/// state after any prefix of them (a power cut at that point) can be rebuilt with
/// [`replay`](Self::replay).
#[derive(Clone, Debug)]
pub struct CrashStorage {
    base: MemStorage,
    current: MemStorage,
    ops: Vec<Op>,
}

impl CrashStorage {
    /// Starts recording on top of `base` (which is the state every replay starts from).
    pub fn new(base: MemStorage) -> Self {
        Self {
            current: base.clone(),
            base,
            ops: Vec::new(),
        }
    }

    /// The operations recorded so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The live contents (all operations applied).
    pub fn current(&self) -> &MemStorage {
        &self.current
    }

    /// The storage as it would be after a power cut that let exactly the first `n` operations
    /// reach the medium.
    pub fn replay(&self, n: usize) -> MemStorage {
        self.replay_filtered(n, |_| true)
    }

    /// Like [`replay`](Self::replay), but of the operations after the last flush inside the
    /// prefix only those for which `keep(index)` holds are applied: a device that reorders or
    /// drops writes it was never asked to make durable.
    pub fn replay_filtered(&self, n: usize, mut keep: impl FnMut(usize) -> bool) -> MemStorage {
        let n = n.min(self.ops.len());
        let last_flush = self.ops[..n].iter().rposition(|op| *op == Op::Flush);
        let mut s = self.base.clone();
        for (i, op) in self.ops[..n].iter().enumerate() {
            if last_flush.is_none_or(|f| i > f) && !keep(i) {
                continue;
            }
            apply(&mut s, op);
        }
        s
    }
}

fn apply(s: &mut MemStorage, op: &Op) {
    match op {
        Op::Write { offset, data } => s.write_at(*offset, data).expect("replayed write"),
        Op::SetLen(len) => s.set_len(*len).expect("replayed set_len"),
        Op::Flush => {}
    }
}

impl Storage for CrashStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.current.read_at(offset, buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.current.write_at(offset, buf)?;
        self.ops.push(Op::Write {
            offset,
            data: buf.to_vec(),
        });
        Ok(())
    }

    fn len(&self) -> Result<u64, IoError> {
        self.current.len()
    }

    fn set_len(&mut self, len: u64) -> Result<(), IoError> {
        self.current.set_len(len)?;
        self.ops.push(Op::SetLen(len));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.ops.push(Op::Flush);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic patterns.

/// xorshift64*: small, fast, deterministic; good enough for data patterns and choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill(&mut v);
        v
    }
}

/// `len` bytes of the pattern for `seed` (random data that never happens to be all zeros).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut v = Rng::new(seed).bytes(len);
    if let Some(b) = v.first_mut() {
        *b |= 1;
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Whole-disk comparisons.

/// Reads all of `disk` in chunks of `chunk` bytes.
pub fn read_all(disk: &dyn vhd_format::Disk, chunk: usize) -> Vec<u8> {
    let size = usize::try_from(disk.size()).expect("test disks fit in memory");
    let mut out = vec![0u8; size];
    for (i, piece) in out.chunks_mut(chunk).enumerate() {
        disk.read_at((i * chunk) as u64, piece).unwrap_or_else(|e| {
            panic!("read of {} bytes at {} failed: {e}", piece.len(), i * chunk)
        });
    }
    out
}

/// Panics with the first differing offset (and some context) unless `a == b`.
pub fn assert_same(what: &str, a: &[u8], b: &[u8]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    if a == b {
        // A memcmp; the search for the first difference below is slow in debug builds.
        return;
    }
    if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
        let end = (i + 16).min(a.len());
        panic!(
            "{what}: first difference at offset {i} (sector {}): {:02x?} vs {:02x?}",
            i / 512,
            &a[i..end],
            &b[i..end]
        );
    }
}

/// Creates `path` for reading and writing; it must not exist yet.
pub fn create_file(path: &Path) -> std::fs::File {
    std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap()
}

/// A parent link to `parent` with made-up paths, for differencing disks built in memory.
pub fn link_to(parent: &dyn vhd_format::Disk) -> vhd_format::ParentLink {
    let id = parent.identity().unwrap();
    vhd_format::ParentLink {
        unique_id: id.unique_id,
        timestamp: id.timestamp,
        name: "p.vhd".into(),
        relative_path: Some(".\\p.vhd".into()),
        absolute_path: Some("C:\\vms\\p.vhd".into()),
    }
}

/// `qemu-img compare` of a VHD against a raw image: they must be identical.
pub fn qemu_compare(what: &str, vhd: &Path, raw: &Path) {
    let cmp = run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "vpc",
            "-F",
            "raw",
            vhd.to_str().expect("utf-8 path"),
            raw.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(
        cmp.code, 0,
        "{what}: qemu-img compare: {}{}",
        cmp.stdout, cmp.stderr
    );
    assert!(
        cmp.stdout.contains("Images are identical"),
        "{what}: {}",
        cmp.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Editing image bytes.

/// Where images made by this crate keep the dynamic header.
pub const HEADER: usize = 512;

/// Overwrites `bytes` at `at` with `value`.
pub fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

/// Recomputes the checksums of both footers and of the dynamic header at [`HEADER`], after
/// a test has edited their fields.
pub fn fix_checksums(bytes: &mut [u8]) {
    let len = bytes.len();
    for at in [0, len - 512] {
        let sum = vhd_format::defs::checksum(&bytes[at..at + 512], 64);
        put(bytes, at + 64, &sum.to_be_bytes());
    }
    let sum = vhd_format::defs::checksum(&bytes[HEADER..HEADER + 1024], 36);
    put(bytes, HEADER + 36, &sum.to_be_bytes());
}

/// Sets parent locator entry `index` of the header at [`HEADER`]: a `W2ru` entry with
/// `space` and `length` at `offset` (the caller fixes the checksum).
pub fn set_locator(bytes: &mut [u8], index: usize, space: u32, length: u32, offset: u64) {
    let at = HEADER + 576 + 24 * index;
    put(bytes, at, b"W2ru");
    put(bytes, at + 4, &space.to_be_bytes());
    put(bytes, at + 8, &length.to_be_bytes());
    put(bytes, at + 16, &offset.to_be_bytes());
}
