//! Capturing a directory tree (Linux/UNIX) into a [`NewImage`], as `wimlib-imagex capture`
//! does:
//!
//! * regular files: `FILE_ATTRIBUTE_NORMAL`, or `SPARSE_FILE` when fewer blocks are
//!   allocated than the size needs; their data are read when written;
//! * directories: `FILE_ATTRIBUTE_DIRECTORY`;
//! * symbolic links: symlink reparse points (`REPARSE_POINT`, plus `DIRECTORY` when the
//!   target is a directory). A relative target is stored relative (`SYMLINK_FLAG_RELATIVE`,
//!   `/` and `\` swapped); an absolute one as `\??\C:` + the path, and with reparse-point
//!   fixing on, a target inside the captured tree is first made relative to the tree's root
//!   and the link marked fixed (rp_flags without `NOT_FIXED`);
//! * hard links: files with the same device and inode number share one inode;
//! * with [`CaptureOptions::dereference`], links are followed and what they point to is
//!   captured in their place;
//! * times: creation = last write = `st_mtime`, last access = `st_atime`, in 100 ns units;
//! * no security descriptors (an empty security block, security id −1);
//! * files the [`CaptureConfig`] excludes are left out (by default wimlib's default list);
//! * FIFOs, sockets and device nodes are skipped (counted in the report), unless
//!   [`CaptureOptions::unix_data`] is set (`--unix-data`): then every inode carries wimlib's
//!   UNIX data item (owner, group, `st_mode`, `st_rdev`) and special files are kept as empty
//!   entries with no attributes, their type and device number in that item;
//! * names: UTF-8 names as their UTF-16; a name that is not UTF-8 but well-formed
//!   [WTF-8](crate::wtf8) (unpaired surrogates as `ED A0..BF xx`, what apply makes of a
//!   name holding them) as the exact units it encodes, as wimlib does (kept in
//!   [`NewDentry::name_utf16`](super::image::NewDentry::name_utf16)); any other name, and
//!   any link target that is not UTF-8, is an [`CaptureError::Encoding`] error. (wimlib also
//!   takes a surrogate pair encoded as two 3-byte sequences, as the pair; that is not
//!   well-formed WTF-8 and is refused here.)

use core::ops::ControlFlow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::defs::{FileAttributes, ReparseTag, RP_FLAG_NOT_FIXED, SYMLINK_FLAG_RELATIVE};
use crate::dentry::{ReparseInfo, UnixData};
use crate::reparse::MAX_REPARSE_DATA;

use super::config::CaptureConfig;
pub use super::file_data::{filetime_now, unix_to_filetime};

use super::image::{Content, DentryId, Inode, InodeId, NewImage};
use super::{ImageProps, NoBlobs, WimWriter, WriteAt, WriteError};

/// Why a tree could not be captured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// A file could not be examined.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The capture source is not a directory.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A link target that is not valid UTF-8, or a file name that is neither UTF-8 nor
    /// well-formed WTF-8 (WIM names are UTF-16).
    #[error("{path}: name or link target is not valid UTF-8")]
    Encoding {
        /// The file.
        path: PathBuf,
    },
    /// A link target too long for a reparse point.
    #[error("{path}: link target too long for a reparse point")]
    LinkTooLong {
        /// The link.
        path: PathBuf,
    },
    /// Following links (`dereference`) led back into a directory being captured.
    #[error("{path}: a link leads back to a directory above it")]
    Loop {
        /// The directory reached again.
        path: PathBuf,
    },
    /// Writing the WIM failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Capture settings.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Make absolute link targets inside the tree relative to its root (`--rpfix`, the
    /// default).
    pub rp_fix: bool,
    /// Store owners, modes and device numbers, and keep special files (`--unix-data`).
    pub unix_data: bool,
    /// Follow symbolic links: capture what they point to (`--dereference`). A link back to
    /// a directory being captured is an error ([`CaptureError::Loop`]), not a endless tree.
    pub dereference: bool,
    /// What to leave out (`--config`); by default wimlib's default list.
    pub config: CaptureConfig,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            rp_fix: true,
            unix_data: false,
            dereference: false,
            config: CaptureConfig::default(),
        }
    }
}

/// What a capture found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptureReport {
    /// Directories, the root included.
    pub dirs: u64,
    /// Regular files (one per name).
    pub files: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Absolute link targets made relative to the root.
    pub fixed_links: u64,
    /// FIFOs, sockets and device nodes left out (without UNIX data).
    pub skipped_special: u64,
    /// FIFOs, sockets and device nodes kept as UNIX data (with it).
    pub special: u64,
    /// Files and directories left out by the configuration (a directory counts once).
    pub excluded: u64,
}

struct Scan<'a> {
    img: NewImage,
    opts: &'a CaptureOptions,
    root_id: (u64, u64),
    links: HashMap<(u64, u64), InodeId>,
    /// Device and inode number of every regular file's inode.
    file_ids: Vec<(InodeId, (u64, u64))>,
    /// Device and inode number of the directories being scanned (followed links could lead
    /// back into one).
    ancestors: Vec<(u64, u64)>,
    /// The path being scanned, by component from the captured directory.
    comps: Vec<String>,
    report: CaptureReport,
}

/// Scans the tree under `root` into an image (file data stay on disk until written).
pub fn scan(root: &Path, opts: &CaptureOptions) -> Result<(NewImage, CaptureReport), CaptureError> {
    let s = scan_dir(root, opts)?;
    Ok((s.img, s.report))
}

fn scan_dir<'a>(root: &Path, opts: &'a CaptureOptions) -> Result<Scan<'a>, CaptureError> {
    let io = |source| CaptureError::Io {
        path: root.to_path_buf(),
        source,
    };
    let md = stat(root, opts.dereference).map_err(io)?;
    if !md.is_dir() {
        return Err(CaptureError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let mut s = Scan {
        img: NewImage::new(inode_for(&md, FileAttributes::DIRECTORY, opts.unix_data)),
        opts,
        root_id: (md.dev(), md.ino()),
        links: HashMap::new(),
        file_ids: Vec::new(),
        ancestors: alloc::vec![(md.dev(), md.ino())],
        comps: Vec::new(),
        report: CaptureReport {
            dirs: 1,
            ..CaptureReport::default()
        },
    };
    s.directory(root, 0)?;
    Ok(s)
}

/// A file or directory tree scanned to be added to an existing image (`update`).
#[derive(Debug)]
pub struct Branch {
    /// The scanned tree: the source is dentry 0 if it is a directory, else the only child
    /// of an empty root.
    pub image: NewImage,
    /// The source's dentry (`None`: a special file, skipped).
    pub root: Option<DentryId>,
    /// Device and inode number of each regular file's inode: a file met again in a later
    /// branch of the same update becomes a hard link of the first (as wimlib does).
    pub file_ids: Vec<(InodeId, (u64, u64))>,
    /// What was found.
    pub report: CaptureReport,
}

/// Scans `path` (a directory, a file or a symbolic link, followed only with
/// [`CaptureOptions::dereference`]) as a [`Branch`]. Reparse-point fixing, if asked, is
/// relative to `path`.
pub fn scan_branch(path: &Path, opts: &CaptureOptions) -> Result<Branch, CaptureError> {
    let md = stat(path, opts.dereference).map_err(|source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (s, root) = if md.is_dir() {
        (scan_dir(path, opts)?, Some(0))
    } else {
        let mut s = Scan {
            img: NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0)),
            opts,
            root_id: (md.dev(), md.ino()),
            links: HashMap::new(),
            file_ids: Vec::new(),
            ancestors: Vec::new(),
            comps: Vec::new(),
            report: CaptureReport::default(),
        };
        let d = s.entry(path, (String::from("branch"), None), 0)?;
        (s, d)
    };
    Ok(Branch {
        image: s.img,
        root,
        file_ids: s.file_ids,
        report: s.report,
    })
}

/// The metadata of `path`, of what it links to with `follow`.
fn stat(path: &Path, follow: bool) -> std::io::Result<fs::Metadata> {
    if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    }
}

/// An inode for a file with metadata `md`; with `unix`, it carries the UNIX data item.
fn inode_for(md: &fs::Metadata, attributes: FileAttributes, unix: bool) -> Inode {
    let mtime = unix_to_filetime(md.mtime(), md.mtime_nsec());
    let atime = unix_to_filetime(md.atime(), md.atime_nsec());
    let mut inode = Inode::new(attributes, mtime, atime, mtime);
    if unix {
        let data = UnixData {
            uid: md.uid(),
            gid: md.gid(),
            mode: md.mode(),
            // wimlib keeps the low 32 bits of `st_rdev`.
            rdev: md.rdev() as u32,
        };
        inode.tagged.push(data.to_item());
    }
    inode
}

fn utf8(name: &OsStr, path: &Path) -> Result<String, CaptureError> {
    name.to_str()
        .map(String::from)
        .ok_or_else(|| CaptureError::Encoding {
            path: path.to_path_buf(),
        })
}

/// A long name and, when it is not valid Unicode, its exact UTF-16 units.
type Name = (String, Option<Vec<u16>>);

/// A file name: UTF-8, or well-formed WTF-8 (its exact units kept).
fn file_name(name: &OsStr, path: &Path) -> Result<Name, CaptureError> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(s) = name.to_str() {
        return Ok((String::from(s), None));
    }
    let units = crate::wtf8::decode(name.as_bytes()).ok_or_else(|| CaptureError::Encoding {
        path: path.to_path_buf(),
    })?;
    Ok((String::from_utf16_lossy(&units), Some(units)))
}

impl Scan<'_> {
    fn directory(&mut self, dir: &Path, dentry: DentryId) -> Result<(), CaptureError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CaptureError::Io { path, source }
        };
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let name = file_name(&entry.file_name(), &path)?;
            self.comps.push(name.0.clone());
            if self.opts.config.excludes(&self.comps) {
                self.report.excluded += 1;
            } else {
                self.entry(&path, name, dentry)?;
            }
            self.comps.pop();
        }
        Ok(())
    }

    /// Adds `path` as `name` under `dentry` (recursively for a directory); returns its
    /// dentry (`None` for a skipped special file).
    fn entry(
        &mut self,
        path: &Path,
        name: Name,
        dentry: DentryId,
    ) -> Result<Option<DentryId>, CaptureError> {
        let md = stat(path, self.opts.dereference).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let ft = md.file_type();
        if ft.is_dir() {
            let id = (md.dev(), md.ino());
            if self.ancestors.contains(&id) {
                return Err(CaptureError::Loop {
                    path: path.to_path_buf(),
                });
            }
            let inode = self.img.add_inode(inode_for(
                &md,
                FileAttributes::DIRECTORY,
                self.opts.unix_data,
            ));
            let d = self.add_dentry(dentry, name, inode);
            self.report.dirs += 1;
            self.ancestors.push(id);
            self.directory(path, d)?;
            self.ancestors.pop();
            Ok(Some(d))
        } else if ft.is_file() {
            let key = (md.dev(), md.ino());
            if self.opts.config.excludes_file(key.0, key.1) {
                self.report.excluded += 1;
                return Ok(None);
            }
            self.report.files += 1;
            // A file can be met twice through hard links, or through followed links.
            let shared = md.nlink() > 1 || self.opts.dereference;
            if shared {
                if let Some(&inode) = self.links.get(&key) {
                    return Ok(Some(self.add_dentry(dentry, name, inode)));
                }
            }
            let sparse = md.blocks() < md.size().div_ceil(512);
            let attr = if sparse {
                FileAttributes::SPARSE_FILE
            } else {
                FileAttributes::NORMAL
            };
            let mut inode = inode_for(&md, attr, self.opts.unix_data);
            inode.data = self
                .img
                .add_stream(md.size(), Content::File(path.to_path_buf()));
            let inode = self.img.add_inode(inode);
            self.file_ids.push((inode, key));
            if shared {
                self.links.insert(key, inode);
            }
            Ok(Some(self.add_dentry(dentry, name, inode)))
        } else if ft.is_symlink() {
            self.report.symlinks += 1;
            let inode = self.symlink(path, &md)?;
            Ok(Some(self.add_dentry(dentry, name, inode)))
        } else if self.opts.unix_data {
            // A FIFO, socket or device node: an empty entry without attributes (as wimlib
            // stores it), its type and device number in the UNIX data.
            self.report.special += 1;
            let inode = inode_for(&md, FileAttributes::empty(), true);
            let inode = self.img.add_inode(inode);
            Ok(Some(self.add_dentry(dentry, name, inode)))
        } else {
            self.report.skipped_special += 1;
            Ok(None)
        }
    }

    /// Adds dentry `name` for `inode` under `parent`.
    fn add_dentry(&mut self, parent: DentryId, name: Name, inode: InodeId) -> DentryId {
        let d = self.img.add_dentry(parent, name.0, inode);
        self.img.dentries[d as usize].name_utf16 = name.1;
        d
    }

    fn symlink(&mut self, path: &Path, md: &fs::Metadata) -> Result<InodeId, CaptureError> {
        let io = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let target = fs::read_link(path).map_err(io)?;
        let mut target = utf8(target.as_os_str(), path)?;
        let mut flags = RP_FLAG_NOT_FIXED;
        if self.opts.rp_fix && target.starts_with('/') {
            if let Some(rest) = relativize(&target, self.root_id) {
                target = rest;
                flags = 0;
                self.report.fixed_links += 1;
            }
        }
        let data = symlink_reparse_data(&target).ok_or_else(|| CaptureError::LinkTooLong {
            path: path.to_path_buf(),
        })?;
        let mut attr = FileAttributes::REPARSE_POINT;
        if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            attr |= FileAttributes::DIRECTORY;
        }
        let mut inode = inode_for(md, attr, self.opts.unix_data);
        inode.reparse = Some(ReparseInfo {
            tag: ReparseTag::SYMLINK,
            reserved: 0,
            flags,
        });
        let size = data.len() as u64;
        inode.reparse_data = self.img.add_stream(size, Content::Bytes(data.into()));
        Ok(self.img.add_inode(inode))
    }
}

/// Captures the tree under `root` as a new image of the WIM being written; returns its
/// index and what was found. [`capture_image_with_progress`] reports progress and can be
/// cancelled.
pub fn capture_image<W: WriteAt>(
    writer: &mut WimWriter<W>,
    root: &Path,
    props: &ImageProps,
    opts: &CaptureOptions,
) -> Result<(u32, CaptureReport), CaptureError> {
    capture_image_with_progress(writer, root, props, opts, &mut super::progress::ignore)
}

/// [`capture_image`], telling `progress` how much of the files' data is written (see
/// [`WriteProgress`](super::WriteProgress); the tree is scanned first, without reports).
/// [`ControlFlow::Break`] stops the capture with
/// [`CaptureError::Write`]`(`[`WriteError::Cancelled`]`)`; what is left of the WIM is said at
/// [`WimWriter::add_image_with_progress`] (a new file is to be thrown away, a file appended
/// to is as it was).
pub fn capture_image_with_progress<W: WriteAt>(
    writer: &mut WimWriter<W>,
    root: &Path,
    props: &ImageProps,
    opts: &CaptureOptions,
    progress: &mut dyn FnMut(super::WriteProgress) -> ControlFlow<()>,
) -> Result<(u32, CaptureReport), CaptureError> {
    let (mut img, report) = scan(root, opts)?;
    let index = writer.add_image_with_progress(&mut img, props, &mut NoBlobs, progress)?;
    Ok((index, report))
}

/// If the absolute `target` points into the directory `root` (device, inode) through one of
/// its prefixes, the rest of the target after that prefix (keeping its leading slashes).
fn relativize(target: &str, root: (u64, u64)) -> Option<String> {
    let b = target.as_bytes();
    let mut p = 0;
    loop {
        while p < b.len() && b[p] == b'/' {
            p += 1;
        }
        if p == b.len() {
            return None;
        }
        while p < b.len() && b[p] != b'/' {
            p += 1;
        }
        let md = fs::metadata(&target[..p]).ok()?;
        if (md.dev(), md.ino()) == root {
            return Some(String::from(&target[p..]));
        }
        if p == b.len() {
            return None;
        }
    }
}

/// The symlink reparse data (without the 8-byte reparse header) for a UNIX target: `/` and
/// `\` swapped; absolute targets (and an empty fixed one) behind a `\??\C:` prefix with the
/// relative flag clear. `None` if too long.
pub fn symlink_reparse_data(target: &str) -> Option<Vec<u8>> {
    let nt: Vec<u16> = target
        .chars()
        .map(|c| match c {
            '/' => '\\',
            '\\' => '/',
            c => c,
        })
        .collect::<String>()
        .encode_utf16()
        .collect();
    let absolute = nt.first().is_none_or(|&c| c == b'\\' as u16);
    let (subst, print, flags): (Vec<u16>, Vec<u16>, u32) = if absolute {
        let mut s: Vec<u16> = "\\??\\C:".encode_utf16().collect();
        s.extend_from_slice(&nt);
        let p = s[4..].to_vec();
        (s, p, 0)
    } else {
        (nt.clone(), nt, SYMLINK_FLAG_RELATIVE)
    };
    let (sl, pl) = (subst.len() * 2, print.len() * 2);
    if 12 + sl + pl + 4 > MAX_REPARSE_DATA {
        return None;
    }
    let mut out = Vec::with_capacity(12 + sl + pl + 4);
    for v in [0, sl, sl + 2, pl] {
        out.extend_from_slice(&(v as u16).to_le_bytes());
    }
    out.extend_from_slice(&flags.to_le_bytes());
    for name in [&subst, &print] {
        for u in name {
            out.extend_from_slice(&u.to_le_bytes());
        }
        out.extend_from_slice(&[0, 0]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reparse::LinkReparse;

    #[test]
    fn reparse_data_parses_back() {
        for (t, unix) in [
            ("../a/b", "../a/b"),
            ("/etc/hostname", "/etc/hostname"),
            ("with\\backslash", "with\\backslash"),
            ("", "/"),
        ] {
            let d = symlink_reparse_data(t).unwrap();
            let l = LinkReparse::parse(ReparseTag::SYMLINK, &d).unwrap();
            assert_eq!(l.unix_target(RP_FLAG_NOT_FIXED, None), unix, "{t}");
            assert_eq!(l.is_relative(), !t.is_empty() && !t.starts_with('/'));
        }
        assert!(symlink_reparse_data(&"x".repeat(5000)).is_none());
    }
}
