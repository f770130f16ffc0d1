//! WIM deployment: `--deploy IMAGE.wim:INDEX --disk new.vhd` creates a dynamic VHD, formats it
//! FAT32 (the `fatfs` crate: a maintained FAT implementation, so the VMM does not carry its
//! own), applies the WIM image with `wim-image` and copies the tree in, plus `WIMHASH.TXT`: one
//! line `<sha1> <path>` per regular file, the SHA-1 the WIM's blob table holds for its data.
//! The built-in guest finds the FAT32 volume on its SCSI disk, lists it and checks files
//! against those hashes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};
use vhd_format::{create_dynamic, CreateOptions, Disk, Vhd};
use wim_image::apply::{apply, ApplyOptions};
use wim_image::io::FileSource;
use wim_image::Wim;

/// Byte-addressed `Read + Write + Seek` over a virtual disk (what `fatfs` drives).
struct DiskIo<'a> {
    disk: &'a mut Vhd<File>,
    pos: u64,
}

impl Read for DiskIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.disk.size().saturating_sub(self.pos) as usize);
        self.disk
            .read_at(self.pos, &mut buf[..n])
            .map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for DiskIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.disk.size().saturating_sub(self.pos) as usize);
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "past the end of the disk",
            ));
        }
        self.disk
            .write_at(self.pos, &buf[..n])
            .map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.disk.flush().map_err(io::Error::other)
    }
}

impl Seek for DiskIo<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let size = self.disk.size() as i128;
        let at = match to {
            SeekFrom::Start(n) => i128::from(n),
            SeekFrom::End(d) => size + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        self.pos = u64::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// What a deployment produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// Regular files copied.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// Entries FAT cannot hold (symbolic links), left out.
    pub skipped: u64,
    /// The disk's size.
    pub disk_size: u64,
}

/// Parses `IMAGE.wim:INDEX`.
pub fn parse_spec(spec: &str) -> Option<(PathBuf, u32)> {
    let (path, index) = spec.rsplit_once(':')?;
    let index = index.parse().ok().filter(|&i| i >= 1)?;
    Some((PathBuf::from(path), index))
}

/// An `io::Error` whose message is `e` and its causes, joined with `: `.
fn other(e: impl std::error::Error) -> io::Error {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    io::Error::other(msg)
}

/// Deploys image `index` of `wim_path` onto a new dynamic VHD at `vhd_path`.
///
/// # Errors
/// The WIM, the disk or the file system failed.
pub fn deploy(wim_path: &Path, index: u32, vhd_path: &Path) -> io::Result<Deployed> {
    let wim = Wim::open(FileSource::open(wim_path)?).map_err(other)?;
    // Removed with everything in it when dropped, on errors too.
    let staging = super::TempDir::new("viridian-deploy")?;
    let opts = ApplyOptions::default();
    apply(&wim, index, staging.path(), &opts, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .map_err(other)?;
    copy_to_vhd(&wim, staging.path(), vhd_path)
}

fn tree_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            total += tree_bytes(&e.path())?;
        } else if t.is_file() {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

fn copy_to_vhd(wim: &Wim<FileSource>, staging: &Path, vhd_path: &Path) -> io::Result<Deployed> {
    // FAT32 needs at least 65525 clusters; with 512-byte clusters that is 33 MiB. Leave room
    // for the data, the FATs and cluster slack.
    let data = tree_bytes(staging)?;
    let size = (data * 2 + (64 << 20)).next_multiple_of(2 << 20);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(vhd_path)?;
    let mut vhd = create_dynamic(file, &CreateOptions::new(size)).map_err(other)?;
    let mut out = Deployed {
        disk_size: vhd.size(),
        ..Deployed::default()
    };
    {
        let mut io = DiskIo {
            disk: &mut vhd,
            pos: 0,
        };
        let format = fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .bytes_per_cluster(512)
            .volume_label(*b"VIRIDIAN   ");
        fatfs::format_volume(&mut io, format)?;
        io.seek(SeekFrom::Start(0))?;
        let fs = fatfs::FileSystem::new(io, fatfs::FsOptions::new())?;
        let mut manifest = String::new();
        copy_dir(wim, staging, &fs.root_dir(), "", &mut out, &mut manifest)?;
        let mut f = fs.root_dir().create_file("WIMHASH.TXT")?;
        f.write_all(manifest.as_bytes())?;
        f.flush()?;
        drop(f);
        fs.unmount()?;
    }
    vhd.flush().map_err(other)?;
    Ok(out)
}

fn copy_dir<T: fatfs::ReadWriteSeek>(
    wim: &Wim<FileSource>,
    from: &Path,
    to: &fatfs::Dir<'_, T>,
    prefix: &str,
    out: &mut Deployed,
    manifest: &mut String,
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let t = e.file_type()?;
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if t.is_dir() {
            let sub = to.create_dir(&name)?;
            out.dirs += 1;
            copy_dir(wim, &e.path(), &sub, &path, out, manifest)?;
        } else if t.is_file() {
            let data = std::fs::read(e.path())?;
            let hash: [u8; 20] = Sha1::digest(&data).into();
            // The hash must be one the WIM's blob table holds (empty files have no blob).
            if !data.is_empty() && wim.blob(&hash).is_none() {
                return Err(io::Error::other(format!("{path}: not a blob of the WIM")));
            }
            let mut f = to.create_file(&name)?;
            f.write_all(&data)?;
            f.flush()?;
            out.files += 1;
            out.bytes += data.len() as u64;
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            manifest.push_str(&format!("{hex} {path}\n"));
        } else {
            out.skipped += 1;
        }
    }
    Ok(())
}
