//! Synthetic storage: a SCSI disk over a `vhd-format` disk ([`scsi`]), served to the guest on
//! a storvsp channel ([`storvsp`]), with live snapshots ([`snapshot`]).

pub mod deploy;
pub mod scsi;
pub mod snapshot;
pub mod storvsp;

/// The VMM's disk: a VHD file (a differencing child after a snapshot).
pub type VmDisk = scsi::ScsiDisk<vhd_format::Vhd<std::fs::File>>;

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
