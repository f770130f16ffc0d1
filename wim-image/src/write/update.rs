//! Editing an image's tree the way `wimlib-imagex update` does, then committing it in place:
//! the "mount, change, commit" servicing workflow without a mount.
//!
//! * `add SOURCE DEST`: a file or directory tree from the file system at `DEST`. Missing
//!   parent directories are created (attribute DIRECTORY, times = now). An existing directory
//!   at `DEST` takes the source directory's contents (merged recursively, the existing
//!   directories keep their own metadata); an existing file is replaced by a source file
//!   (an error with `no_replace`). A directory never replaces a file nor the reverse.
//! * `delete PATH`: a file, or with `recursive` a directory tree; a missing path is an error
//!   unless `force`.
//! * `rename FROM TO`: POSIX `rename` semantics: an existing `TO` is replaced, unless it is a
//!   directory and `FROM` is not, `FROM` is a directory and `TO` is not or is not empty, or
//!   `TO` lies inside `FROM`.
//!
//! Paths inside the image ([`ImagePath`]) are relative to its root; the leading slash is
//! optional, `/` and `\` both separate components, and names compare case-sensitively
//! (wimlib's default on UNIX). A path is [WTF-8](crate::wtf8), the form a Linux file name
//! takes for a name that is not valid UTF-16: a component holding an unpaired surrogate
//! matches only the name of exactly those units, so each of two names that share a lossy
//! form is reached. A component that is UTF-8 matches the valid name it spells, else the
//! first name whose lossy form ([`NewDentry::name`](super::image::NewDentry::name)) it is.
//! New names (a rename's target, added files and the directories made for them) get exactly
//! the units given. Added trees merge by exact names, and every name keeps its exact units.
//! Unchanged files keep their blobs (no data is read or rewritten); only the new files' data,
//! the new metadata resource and the tables are written (see [`super::inplace`]).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::image::{DentryId, Inode, InodeId, NewDentry, NewImage, StreamId};
use crate::defs::FileAttributes;

/// One change to an image.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateCommand {
    /// Adds a file or directory tree from the file system.
    #[cfg(all(feature = "std", unix))]
    Add {
        /// The file or directory on the file system.
        source: std::path::PathBuf,
        /// Where it goes in the image.
        dest: ImagePath,
        /// Refuse to replace an existing file.
        no_replace: bool,
        /// Store owners, modes and device numbers, and keep special files (`--unix-data`).
        unix_data: bool,
        /// Follow symbolic links (`--dereference`).
        dereference: bool,
        /// What to leave out of the source, matched from the source's own root (`--config`;
        /// [`CaptureConfig::default`](super::config::CaptureConfig) is wimlib's default list).
        config: super::config::CaptureConfig,
    },
    /// Deletes a file or directory tree.
    Delete {
        /// The path in the image.
        path: ImagePath,
        /// No error if the path does not exist.
        force: bool,
        /// Allow deleting a directory with its contents.
        recursive: bool,
    },
    /// Renames (moves) a file or directory tree.
    Rename {
        /// The old path.
        from: ImagePath,
        /// The new path.
        to: ImagePath,
    },
}

/// Why a change cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// A path (or one of its parents) does not exist in the image.
    #[error("{path:?} does not exist in the image")]
    NotFound {
        /// The path.
        path: String,
    },
    /// A component of a path is a file where a directory is needed.
    #[error("{path:?} is not a directory")]
    NotADirectory {
        /// The path.
        path: String,
    },
    /// A directory where a file is needed (delete without `recursive`, a file added or
    /// renamed onto a directory).
    #[error("{path:?} is a directory")]
    IsADirectory {
        /// The path.
        path: String,
    },
    /// Renaming a directory onto a non-empty one.
    #[error("{path:?} is a directory that is not empty")]
    NotEmpty {
        /// The path.
        path: String,
    },
    /// An existing file that `no_replace` protects.
    #[error("{path:?} exists and would be replaced")]
    Exists {
        /// The path.
        path: String,
    },
    /// Renaming a directory into itself, or deleting or renaming the root.
    #[error("{path:?} cannot be moved or deleted there")]
    Invalid {
        /// The path.
        path: String,
    },
    /// Scanning an added source failed.
    #[cfg(all(feature = "std", unix))]
    #[error(transparent)]
    Capture(#[from] super::capture::CaptureError),
    /// Reading the image or writing the WIM failed.
    #[error(transparent)]
    Write(#[from] super::WriteError),
}

/// A path inside an image (see the [module documentation](self)): the bytes of its
/// [WTF-8](crate::wtf8) form, UTF-8 unless a name holds an unpaired surrogate, which is
/// written as [`Dentry::name_wtf8`](crate::dentry::Dentry::name_wtf8) gives it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ImagePath(Vec<u8>);

impl ImagePath {
    /// The path whose WTF-8 bytes are `bytes`; `None` if they are not well-formed WTF-8.
    pub fn from_wtf8(bytes: &[u8]) -> Option<Self> {
        crate::wtf8::decode(bytes)?;
        Some(ImagePath(bytes.to_vec()))
    }

    /// Its WTF-8 bytes.
    pub fn as_wtf8(&self) -> &[u8] {
        &self.0
    }

    /// Whether it names the root (it has no components).
    pub fn is_root(&self) -> bool {
        self.components().next().is_none()
    }

    /// Its components, each as a long name: the lossy string and, when that is not exact,
    /// the units.
    fn components(&self) -> impl Iterator<Item = Name> + '_ {
        self.0
            .split(|&b| b == b'/' || b == b'\\')
            .filter(|c| !c.is_empty())
            .map(|c| {
                // Pieces of well-formed WTF-8 cut at ASCII bytes are well-formed.
                let units = crate::wtf8::decode(c).unwrap_or_default();
                match String::from_utf16(&units) {
                    Ok(s) => (s, None),
                    Err(_) => (String::from_utf16_lossy(&units), Some(units)),
                }
            })
    }

    /// The path with each unpaired surrogate as U+FFFD (for messages).
    fn lossy(&self) -> String {
        String::from_utf16_lossy(&crate::wtf8::decode(&self.0).unwrap_or_default())
    }
}

impl From<&str> for ImagePath {
    fn from(s: &str) -> Self {
        ImagePath(s.as_bytes().to_vec())
    }
}

impl From<String> for ImagePath {
    fn from(s: String) -> Self {
        ImagePath(s.into_bytes())
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lossy())
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.lossy(), f)
    }
}

/// A long name and, when it is not valid UTF-16, its exact units (see
/// [`NewDentry::name_utf16`]).
type Name = (String, Option<Vec<u16>>);

/// The image's tree with parent links, for editing. Removed dentries stay in the image,
/// unreachable, until [`compact`] (when the session ends).
#[derive(Debug)]
struct Editor<'a> {
    img: &'a mut NewImage,
    parents: Vec<DentryId>,
    /// The image's inode of each file (device, inode number) added so far.
    files: BTreeMap<(u64, u64), InodeId>,
}

impl<'a> Editor<'a> {
    fn new(img: &'a mut NewImage) -> Self {
        let mut parents = alloc::vec![0; img.dentries.len()];
        for (i, d) in img.dentries.iter().enumerate() {
            for &c in &d.children {
                if let Some(p) = parents.get_mut(c as usize) {
                    *p = i as DentryId;
                }
            }
        }
        Editor {
            img,
            parents,
            files: BTreeMap::new(),
        }
    }

    fn is_dir(&self, d: DentryId) -> bool {
        let inode = self.img.dentries[d as usize].inode;
        self.img.inodes[inode as usize].is_directory()
    }

    /// The child of `dir` named `name`: given its units, the one with exactly those;
    /// given a valid name, the one with exactly that name, else the first whose lossy name
    /// it is (see the module docs).
    fn child(&self, dir: DentryId, name: &Name) -> Option<DentryId> {
        let children = &self.img.dentries[dir as usize].children;
        if let Some(units) = &name.1 {
            return children.iter().copied().find(|&c| {
                self.img.dentries[c as usize]
                    .units()
                    .eq(units.iter().copied())
            });
        }
        let named = |exact: bool| {
            move |&c: &DentryId| {
                let d = &self.img.dentries[c as usize];
                d.name == name.0 && (!exact || d.name_utf16.is_none())
            }
        };
        let found = children.iter().copied().find(named(true));
        found.or_else(|| children.iter().copied().find(named(false)))
    }

    /// The child of `dir` with exactly the long name of `d` (a dentry of another image).
    fn child_exact(&self, dir: DentryId, d: &NewDentry) -> Option<DentryId> {
        self.img.dentries[dir as usize]
            .children
            .iter()
            .copied()
            .find(|&c| self.img.dentries[c as usize].same_name(d))
    }

    /// The dentry at `path`; `Ok(None)` if only its last component is missing.
    fn lookup(&self, path: &ImagePath) -> Result<Option<DentryId>, UpdateError> {
        let parts: Vec<Name> = path.components().collect();
        self.lookup_parts(&parts, path)
    }

    /// The dentry at the path made of `parts` (`path`, for errors).
    fn lookup_parts(
        &self,
        parts: &[Name],
        path: &ImagePath,
    ) -> Result<Option<DentryId>, UpdateError> {
        let mut d = 0;
        for (i, name) in parts.iter().enumerate() {
            if !self.is_dir(d) {
                return Err(UpdateError::NotADirectory { path: path.lossy() });
            }
            match self.child(d, name) {
                Some(c) => d = c,
                None if i + 1 == parts.len() => return Ok(None),
                None => return Err(UpdateError::NotFound { path: path.lossy() }),
            }
        }
        Ok(Some(d))
    }

    /// The parent directory of `path` and its last component (`None` for the root).
    fn parent(&self, path: &ImagePath) -> Result<Option<(DentryId, Name)>, UpdateError> {
        let mut parts: Vec<Name> = path.components().collect();
        let Some(last) = parts.pop() else {
            return Ok(None);
        };
        let dir = self
            .lookup_parts(&parts, path)?
            .ok_or_else(|| UpdateError::NotFound { path: path.lossy() })?;
        if !self.is_dir(dir) {
            return Err(UpdateError::NotADirectory { path: path.lossy() });
        }
        Ok(Some((dir, last)))
    }

    fn unlink(&mut self, d: DentryId) {
        let p = self.parents[d as usize];
        self.img.dentries[p as usize].children.retain(|&c| c != d);
    }

    fn link(&mut self, parent: DentryId, d: DentryId) {
        self.img.dentries[parent as usize].children.push(d);
        if self.parents.len() <= d as usize {
            self.parents.resize(d as usize + 1, 0);
        }
        self.parents[d as usize] = parent;
    }

    fn add_dentry(&mut self, parent: DentryId, name: Name, inode: InodeId) -> DentryId {
        let d = self.img.add_dentry(parent, name.0, inode);
        self.img.dentries[d as usize].name_utf16 = name.1;
        self.parents.push(parent);
        d
    }

    fn delete(
        &mut self,
        path: &ImagePath,
        force: bool,
        recursive: bool,
    ) -> Result<(), UpdateError> {
        let found = match self.lookup(path) {
            Ok(found) => found,
            Err(UpdateError::NotFound { .. }) if force => None,
            Err(e) => return Err(e),
        };
        let Some(d) = found else {
            return if force {
                Ok(())
            } else {
                Err(UpdateError::NotFound { path: path.lossy() })
            };
        };
        if d == 0 {
            return Err(UpdateError::Invalid { path: path.lossy() });
        }
        if self.is_dir(d) && !recursive {
            return Err(UpdateError::IsADirectory { path: path.lossy() });
        }
        self.unlink(d);
        Ok(())
    }

    fn rename(&mut self, from: &ImagePath, to: &ImagePath) -> Result<(), UpdateError> {
        let src = self
            .lookup(from)?
            .ok_or_else(|| UpdateError::NotFound { path: from.lossy() })?;
        let (parent, name) = self
            .parent(to)?
            .ok_or_else(|| UpdateError::Invalid { path: to.lossy() })?;
        if src == 0 {
            return Err(UpdateError::Invalid { path: from.lossy() });
        }
        let dst = self.child(parent, &name);
        if let Some(dst) = dst {
            if dst == src {
                return Ok(());
            }
            let to = || to.lossy();
            match (self.is_dir(src), self.is_dir(dst)) {
                (false, true) => return Err(UpdateError::IsADirectory { path: to() }),
                (true, false) => return Err(UpdateError::NotADirectory { path: to() }),
                (true, true) if !self.img.dentries[dst as usize].children.is_empty() => {
                    return Err(UpdateError::NotEmpty { path: to() })
                }
                _ => {}
            }
        }
        let mut a = parent;
        loop {
            if a == src {
                return Err(UpdateError::Invalid { path: to.lossy() });
            }
            if a == 0 {
                break;
            }
            a = self.parents[a as usize];
        }
        if let Some(dst) = dst {
            self.unlink(dst);
        }
        self.unlink(src);
        let de = &mut self.img.dentries[src as usize];
        (de.name, de.name_utf16) = name;
        self.link(parent, src);
        Ok(())
    }

    /// Adds branch dentry `b` where `existing` is: directories merge, files replace.
    fn conflict(
        &mut self,
        branch: &NewImage,
        b: DentryId,
        existing: DentryId,
        path: &str,
        no_replace: bool,
        copier: &mut Copier,
    ) -> Result<(), UpdateError> {
        let b_dir = branch.inodes[branch.dentries[b as usize].inode as usize].is_directory();
        match (b_dir, self.is_dir(existing)) {
            (false, true) => Err(UpdateError::IsADirectory { path: path.into() }),
            (true, false) => Err(UpdateError::NotADirectory { path: path.into() }),
            (true, true) => {
                for &c in &branch.dentries[b as usize].children {
                    let bd = &branch.dentries[c as usize];
                    let sub = alloc::format!("{}/{}", path.trim_end_matches('/'), bd.name);
                    match self.child_exact(existing, bd) {
                        Some(e) => self.conflict(branch, c, e, &sub, no_replace, copier)?,
                        None => copier.graft(self, branch, c, existing, name_of(bd)),
                    }
                }
                Ok(())
            }
            (false, false) if no_replace => Err(UpdateError::Exists { path: path.into() }),
            (false, false) => {
                let parent = self.parents[existing as usize];
                let name = name_of(&self.img.dentries[existing as usize]);
                self.unlink(existing);
                copier.graft(self, branch, b, parent, name);
                Ok(())
            }
        }
    }
}

/// The long name of `d`, exact.
fn name_of(d: &NewDentry) -> Name {
    (d.name.clone(), d.name_utf16.clone())
}

/// Copies dentries of a branch into the image, keeping the branch's hard links and linking
/// files met in earlier branches of the session.
struct Copier {
    /// Branch inode → image inode.
    inodes: BTreeMap<InodeId, InodeId>,
    /// Branch inode → (device, inode number) of regular files.
    file_ids: BTreeMap<InodeId, (u64, u64)>,
}

impl Copier {
    fn graft(
        &mut self,
        ed: &mut Editor<'_>,
        branch: &NewImage,
        b: DentryId,
        parent: DentryId,
        name: Name,
    ) {
        let bd = &branch.dentries[b as usize];
        let key = self.file_ids.get(&bd.inode).copied();
        let known = self
            .inodes
            .get(&bd.inode)
            .or_else(|| key.and_then(|k| ed.files.get(&k)))
            .copied();
        let inode = match known {
            Some(i) => i,
            None => {
                let mut inode = branch.inodes[bd.inode as usize].clone();
                let mut copy = |s: Option<StreamId>| {
                    s.and_then(|s| branch.streams.get(s as usize))
                        .and_then(|st| {
                            let id = ed.img.add_stream(st.size, st.content.clone())?;
                            ed.img.streams[id as usize].hash = st.hash;
                            Some(id)
                        })
                };
                inode.data = copy(inode.data);
                inode.reparse_data = copy(inode.reparse_data);
                for n in inode.named.iter_mut() {
                    n.1 = copy(n.1);
                }
                // Captured branches carry no security descriptors.
                inode.security_id = -1;
                let i = ed.img.add_inode(inode);
                self.inodes.insert(bd.inode, i);
                if let Some(k) = key {
                    ed.files.insert(k, i);
                }
                i
            }
        };
        let d = ed.add_dentry(parent, name, inode);
        ed.img.dentries[d as usize].short_name = bd.short_name.clone();
        for &c in &bd.children {
            self.graft(ed, branch, c, d, name_of(&branch.dentries[c as usize]));
        }
    }
}

/// An editing session on one image: commands applied in order (see the module docs). The
/// image is compacted (removed dentries, inodes and streams dropped) when the session ends.
#[derive(Debug)]
pub struct Session<'a> {
    ed: Editor<'a>,
}

impl<'a> Session<'a> {
    /// Starts editing `img` (its structure is checked first).
    pub fn new(img: &'a mut NewImage) -> Result<Self, UpdateError> {
        img.check(false).map_err(super::WriteError::from)?;
        Ok(Session {
            ed: Editor::new(img),
        })
    }

    /// Deletes `path`.
    pub fn delete(
        &mut self,
        path: &ImagePath,
        force: bool,
        recursive: bool,
    ) -> Result<(), UpdateError> {
        self.ed.delete(path, force, recursive)
    }

    /// Renames `from` to `to`.
    pub fn rename(&mut self, from: &ImagePath, to: &ImagePath) -> Result<(), UpdateError> {
        self.ed.rename(from, to)
    }

    /// Adds dentry `b` of `branch` (with everything under it) at `dest`; parents created on
    /// the way get the times `now`. `file_ids` gives the (device, inode number) of branch
    /// inodes: the same file in two branches of a session becomes one inode.
    pub fn add(
        &mut self,
        branch: &NewImage,
        b: DentryId,
        file_ids: &[(InodeId, (u64, u64))],
        dest: &ImagePath,
        no_replace: bool,
        now: u64,
    ) -> Result<(), UpdateError> {
        branch.check(false).map_err(super::WriteError::from)?;
        let shown = dest.lossy();
        if b as usize >= branch.dentries.len()
            || file_ids
                .iter()
                .any(|&(i, _)| i as usize >= branch.inodes.len())
        {
            return Err(UpdateError::NotFound { path: shown });
        }
        let ed = &mut self.ed;
        let mut copier = Copier {
            inodes: BTreeMap::new(),
            file_ids: file_ids.iter().copied().collect(),
        };
        let mut parts: Vec<Name> = dest.components().collect();
        let Some(last) = parts.pop() else {
            return ed.conflict(branch, b, 0, &shown, no_replace, &mut copier);
        };
        let mut d = 0;
        for name in parts {
            if !ed.is_dir(d) {
                return Err(UpdateError::NotADirectory { path: shown });
            }
            d = match ed.child(d, &name) {
                Some(c) => c,
                None => {
                    let inode =
                        ed.img
                            .add_inode(Inode::new(FileAttributes::DIRECTORY, now, now, now));
                    ed.add_dentry(d, name, inode)
                }
            };
        }
        if !ed.is_dir(d) {
            return Err(UpdateError::NotADirectory { path: shown });
        }
        match ed.child(d, &last) {
            Some(existing) => ed.conflict(branch, b, existing, &shown, no_replace, &mut copier),
            None => {
                copier.graft(ed, branch, b, d, last);
                Ok(())
            }
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        compact(self.ed.img);
    }
}

/// Drops dentries no longer reachable from the root, inodes no dentry names and streams no
/// inode uses, renumbering what stays.
pub fn compact(img: &mut NewImage) {
    let n = img.dentries.len();
    let mut dmap: Vec<Option<DentryId>> = alloc::vec![None; n];
    let mut order = alloc::vec![0 as DentryId];
    dmap[0] = Some(0);
    let mut i = 0;
    while i < order.len() {
        let d = order[i] as usize;
        for &c in &img.dentries[d].children {
            if let Some(slot) = dmap.get_mut(c as usize) {
                if slot.is_none() {
                    *slot = Some(order.len() as DentryId);
                    order.push(c);
                }
            }
        }
        i += 1;
    }
    let mut imap: Vec<Option<InodeId>> = alloc::vec![None; img.inodes.len()];
    let mut inodes = Vec::new();
    let mut smap: Vec<Option<StreamId>> = alloc::vec![None; img.streams.len()];
    let mut streams = Vec::new();
    let mut dentries = Vec::with_capacity(order.len());
    for &d in &order {
        let mut de = core::mem::replace(
            &mut img.dentries[d as usize],
            NewDentry {
                name: String::new(),
                name_utf16: None,
                short_name: String::new(),
                inode: 0,
                children: Vec::new(),
            },
        );
        de.children = de
            .children
            .iter()
            .filter_map(|&c| dmap.get(c as usize).copied().flatten())
            .collect();
        let old = de.inode as usize;
        de.inode = match imap.get(old).copied().flatten() {
            Some(i) => i,
            None => {
                let mut inode = img.inodes[old].clone();
                let mut remap = |s: Option<StreamId>| {
                    let s = s? as usize;
                    if smap[s].is_none() {
                        smap[s] = Some(streams.len() as StreamId);
                        streams.push(img.streams[s].clone());
                    }
                    smap[s]
                };
                inode.data = remap(inode.data);
                inode.reparse_data = remap(inode.reparse_data);
                for n in inode.named.iter_mut() {
                    n.1 = remap(n.1);
                }
                imap[old] = Some(inodes.len() as InodeId);
                inodes.push(inode);
                inodes.len() as InodeId - 1
            }
        };
        dentries.push(de);
    }
    img.dentries = dentries;
    img.inodes = inodes;
    img.streams = streams;
}

#[cfg(all(feature = "std", unix))]
mod fs_update;
#[cfg(all(feature = "std", unix))]
pub use fs_update::{update_image, update_in_place, update_in_place_with_progress};

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of the root's children: lossy name and exact units.
    fn names(img: &NewImage) -> Vec<Name> {
        img.dentries[0]
            .children
            .iter()
            .map(|&c| {
                let d = &img.dentries[c as usize];
                (d.name.clone(), d.name_utf16.clone())
            })
            .collect()
    }

    /// A root holding files named `a` + U+D800 and `a` + U+DC00 (one lossy form) and `a`
    /// + U+FFFD (valid, with that same form).
    fn siblings() -> NewImage {
        let dir = || Inode::new(FileAttributes::DIRECTORY, 0, 0, 0);
        let mut img = NewImage::new(dir());
        for units in [&[0x61, 0xD800][..], &[0x61, 0xDC00], &[0x61, 0xFFFD]] {
            let f = img.add_inode(Inode::new(FileAttributes::NORMAL, 0, 0, 0));
            img.add_dentry_utf16(0, units, f);
        }
        img
    }

    fn exact(units: &[u16]) -> Name {
        (String::from_utf16_lossy(units), Some(units.to_vec()))
    }

    #[test]
    fn wtf8_paths_reach_each_name_exactly() {
        let path = |b: &[u8]| ImagePath::from_wtf8(b).unwrap();
        let valid = (String::from("a\u{FFFD}"), None);

        let mut img = siblings();
        Session::new(&mut img)
            .unwrap()
            .delete(&path(b"/a\xED\xB0\x80"), false, false)
            .unwrap();
        assert_eq!(names(&img), [exact(&[0x61, 0xD800]), valid.clone()]);

        // UTF-8 reaches the valid name first.
        let mut img = siblings();
        Session::new(&mut img)
            .unwrap()
            .delete(&"a\u{FFFD}".into(), false, false)
            .unwrap();
        assert_eq!(
            names(&img),
            [exact(&[0x61, 0xD800]), exact(&[0x61, 0xDC00])]
        );

        // A rename keeps the target's exact units; a missing exact name is not found.
        let mut img = siblings();
        let mut s = Session::new(&mut img).unwrap();
        s.rename(&path(b"a\xED\xB0\x80"), &path(b"\\d\\b\xED\xB0\x81"))
            .unwrap_err();
        s.rename(&path(b"a\xED\xB0\x80"), &path(b"b\xED\xB0\x81"))
            .unwrap();
        assert!(matches!(
            s.delete(&path(b"a\xED\xB0\x80"), false, false),
            Err(UpdateError::NotFound { .. })
        ));
        drop(s);
        assert_eq!(
            names(&img),
            [exact(&[0x61, 0xD800]), valid, exact(&[0x62, 0xDC01]),]
        );

        assert_eq!(ImagePath::from_wtf8(b"a\xFF"), None);
        assert_eq!(path(b"/x\xED\xA0\x80").to_string(), "/x\u{FFFD}");
        assert!(path(b"//\\").is_root());
    }
}
