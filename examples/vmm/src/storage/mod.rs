//! Synthetic storage: a SCSI disk over a `vhd-format` disk ([`scsi`]), served to the guest on
//! a storvsp channel ([`storvsp`]), with live snapshots ([`snapshot`]).

pub mod deploy;
pub mod scsi;
pub mod snapshot;
pub mod storvsp;

use std::path::{Path, PathBuf};

/// The VMM's disk: a VHD file (a differencing child after a snapshot).
pub type VmDisk = scsi::ScsiDisk<vhd_format::Vhd<std::fs::File>>;

/// A new directory under the system's temporary directory, removed with everything in it
/// when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<n>`.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        let mut n = 0u32;
        loop {
            let path = base.join(format!("{prefix}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a new dynamic VHD of `size` bytes at `path` (which must not exist).
///
/// # Errors
/// The file cannot be created or written.
pub fn create_disk(path: &Path, size: u64) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    vhd_format::create_dynamic(file, &vhd_format::CreateOptions::new(size))
        .map(drop)
        .map_err(std::io::Error::other)
}

/// `vhd-format`'s structural check of the image at `path`, as one line for the timeline.
///
/// # Errors
/// The file cannot be read.
pub fn check_disk(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let report = vhd_format::ops::check(&file).map_err(std::io::Error::other)?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(if report.is_clean() {
        format!(
            "vhd-format's check of {name} is clean: {} blocks allocated",
            report.allocated_blocks
        )
    } else {
        format!(
            "vhd-format's check of {name} found problems: {:?}",
            report.problems
        )
    })
}

/// The host's own 4 KiB random I/O on `path` at queue depth 1 (`pread`, then `pwrite` of the
/// bytes just read, so the image is unchanged): `(read IOPS, write IOPS)` over `ops` each.
///
/// # Errors
/// The file's I/O errors.
pub fn host_baseline(path: &std::path::Path, ops: usize) -> std::io::Result<(f64, f64)> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let pages = (file.metadata()?.len() / 4096).max(1);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut offsets = Vec::with_capacity(ops);
    for _ in 0..ops {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        offsets.push(seed % pages * 4096);
    }
    let mut buf = vec![0u8; 4096];
    let t0 = std::time::Instant::now();
    for &o in &offsets {
        file.read_at(&mut buf, o)?;
    }
    let read = ops as f64 / t0.elapsed().as_secs_f64();
    let mut saved = Vec::with_capacity(ops);
    for &o in &offsets {
        let n = file.read_at(&mut buf, o)?;
        saved.push(buf[..n].to_vec());
    }
    let t1 = std::time::Instant::now();
    for (&o, data) in offsets.iter().zip(&saved) {
        file.write_at(data, o)?;
    }
    let write = ops as f64 / t1.elapsed().as_secs_f64();
    Ok((read, write))
}
