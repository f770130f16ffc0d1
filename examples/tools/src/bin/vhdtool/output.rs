//! New output files. A command that makes a file writes it under a temporary name beside the
//! destination (`.NAME.tmp-PID`) and renames it into place only once it is complete, so a
//! failure leaves the destination as it was (or absent) and no half-made file behind. A
//! destination that is one of the command's inputs is refused before anything is written.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Error, ErrorKind};
use std::path::{Path, PathBuf};

use crate::commands::{io_fail, Failure};

/// What to do when the destination already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (its permissions are kept; symbolic links to it are followed).
    Replace,
    /// Fail, as `snapshot` always has.
    Refuse,
}

/// An output being written under a temporary name; removed on drop unless committed.
#[derive(Debug)]
pub struct NewFile {
    /// The destination as the user named it (for messages).
    shown: PathBuf,
    /// The destination with symbolic links resolved: what the temporary file replaces.
    dest: PathBuf,
    tmp: PathBuf,
    file: File,
    existing: Existing,
    committed: bool,
}

/// Identifies a file independently of the path it is reached by.
#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    path.canonicalize().ok()
}

/// The regular files this process has open: the inputs it has opened so far, including every
/// parent of a differencing chain (which the library resolves and opens itself).
fn open_files() -> Vec<FileId> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    // Standard input, output and error are the caller's business, not inputs.
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            let fd = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
            fd.is_some_and(|fd| fd > 2)
        })
        .filter_map(|e| file_id(&e.path()))
        .collect()
}

fn exists() -> Error {
    Error::new(ErrorKind::AlreadyExists, "file exists")
}

/// Follows symbolic links at `path` (even a dangling one, whose target is then created).
fn resolve(path: &Path) -> Result<PathBuf, Failure> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p).map_err(|e| io_fail(path, e))?;
                p = match p.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io_fail(
        path,
        Error::other("too many levels of symbolic links"),
    ))
}

impl NewFile {
    /// Checks `dest` and creates the temporary file beside it. `inputs` are the files the
    /// command reads, all of which should be open by now (the files the process has open
    /// count as inputs too); a destination that is one of them is refused (exit 1).
    pub fn create(dest: &Path, inputs: &[&Path], existing: Existing) -> Result<Self, Failure> {
        let real = resolve(dest)?;
        let mut permissions = None;
        match std::fs::metadata(&real) {
            Ok(m) => {
                if existing == Existing::Refuse {
                    return Err(io_fail(dest, exists()));
                }
                if m.is_dir() {
                    return Err(io_fail(dest, Error::from(ErrorKind::IsADirectory)));
                }
                // A device or FIFO cannot be replaced by a file (and was never writable
                // here: outputs are truncated and sized).
                if !m.is_file() {
                    return Err(io_fail(dest, Error::other("not a regular file")));
                }
                if let Some(id) = file_id(&real) {
                    let named = inputs.iter().filter_map(|p| file_id(p));
                    if named.chain(open_files()).any(|i| i == id) {
                        return Err(Failure {
                            code: 1,
                            message: format!(
                                "{} is one of the input files; write to another file",
                                dest.display()
                            ),
                        });
                    }
                }
                // Replacing a file we may not write would be a surprise: check, without
                // truncating it.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&real)
                    .map_err(|e| io_fail(dest, e))?;
                permissions = Some(m.permissions());
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_fail(dest, e)),
        }
        let name = real
            .file_name()
            .ok_or_else(|| io_fail(dest, Error::from(ErrorKind::InvalidInput)))?;
        let dir = real
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        for attempt in 0..100u32 {
            let mut tmp_name = OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".tmp-{}", std::process::id()));
            if attempt > 0 {
                tmp_name.push(format!("-{attempt}"));
            }
            let tmp = dir.join(tmp_name);
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
            {
                Ok(file) => {
                    let new = Self {
                        shown: dest.to_path_buf(),
                        dest: real,
                        tmp,
                        file,
                        existing,
                        committed: false,
                    };
                    if let Some(p) = permissions {
                        new.file.set_permissions(p).map_err(|e| io_fail(dest, e))?;
                    }
                    return Ok(new);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_fail(dest, e)),
            }
        }
        Err(io_fail(dest, exists()))
    }

    /// The file to write.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Where the file will be once committed (symbolic links resolved).
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Makes the data durable and moves the file into place.
    pub fn commit(mut self) -> Result<(), Failure> {
        let shown = self.shown.clone();
        self.file.sync_all().map_err(|e| io_fail(&shown, e))?;
        match self.existing {
            Existing::Replace => {
                std::fs::rename(&self.tmp, &self.dest).map_err(|e| io_fail(&shown, e))?;
            }
            // A hard link is created only if the name is free; where the file system has
            // none, check and rename.
            Existing::Refuse => match std::fs::hard_link(&self.tmp, &self.dest) {
                Ok(()) => {
                    self.committed = true;
                    let _ = std::fs::remove_file(&self.tmp);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(io_fail(&shown, e)),
                Err(_) => {
                    if std::fs::symlink_metadata(&self.dest).is_ok() {
                        return Err(io_fail(&shown, exists()));
                    }
                    std::fs::rename(&self.tmp, &self.dest).map_err(|e| io_fail(&shown, e))?;
                }
            },
        }
        self.committed = true;
        let dir = self
            .dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::FileTypeExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vhdtool-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn dropped_leaves_destination_alone() {
        let d = scratch("drop");
        let dest = d.join("out.vhd");
        std::fs::write(&dest, b"precious").unwrap();
        let mut f = NewFile::create(&dest, &[], Existing::Replace).unwrap();
        f.file().write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
        assert_eq!(entries(&d), ["out.vhd"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn commit_replaces_or_refuses() {
        let d = scratch("commit");
        let dest = d.join("out.vhd");
        std::fs::write(&dest, b"old").unwrap();
        let mut f = NewFile::create(&dest, &[], Existing::Replace).unwrap();
        f.file().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert!(NewFile::create(&dest, &[], Existing::Refuse).is_err());
        let fresh = d.join("fresh.vhd");
        let mut f = NewFile::create(&fresh, &[], Existing::Refuse).unwrap();
        f.file().write_all(b"x").unwrap();
        // Someone else takes the name meanwhile: the commit must not replace their file.
        std::fs::write(&fresh, b"theirs").unwrap();
        assert!(f.commit().is_err());
        assert_eq!(std::fs::read(&fresh).unwrap(), b"theirs");
        assert_eq!(entries(&d), ["fresh.vhd", "out.vhd"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn refuses_an_input() {
        let d = scratch("input");
        let src = d.join("src.vhd");
        std::fs::write(&src, b"data").unwrap();
        let e = NewFile::create(&src, &[&src], Existing::Replace).unwrap_err();
        assert_eq!(e.code, 1);
        // Also by another name, and when only open (a parent the library opened).
        #[cfg(unix)]
        {
            let link = d.join("link.vhd");
            std::os::unix::fs::symlink("src.vhd", &link).unwrap();
            assert_eq!(
                NewFile::create(&link, &[&src], Existing::Replace)
                    .unwrap_err()
                    .code,
                1
            );
            let hard = d.join("hard.vhd");
            std::fs::hard_link(&src, &hard).unwrap();
            let _open = File::open(&src).unwrap();
            assert_eq!(
                NewFile::create(&hard, &[], Existing::Replace)
                    .unwrap_err()
                    .code,
                1
            );
        }
        assert_eq!(std::fs::read(&src).unwrap(), b"data");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_device() {
        let e = NewFile::create(Path::new("/dev/null"), &[], Existing::Replace).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }
}
