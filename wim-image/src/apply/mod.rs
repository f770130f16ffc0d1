//! Applying an image (or chosen paths of it) to a directory on Linux.
//!
//! ```text
//!  plan (tree walk) ─► directories ─► file data ─────────────► hard links ─► symlinks,
//!                                     units in on-disk order      special files ─► owners,
//!                                     ├ decoder threads (chunks)                  modes, times
//!                                     └ one writer, in order                      (children first)
//! ```
//!
//! What a Linux directory cannot hold is counted in [`Skipped`] and never silently dropped:
//! named streams, security descriptors, short names, object IDs, extended attributes,
//! Windows attributes, creation times, encrypted files and reparse points other than
//! symbolic links and junctions (their unnamed data, if any, is still written).
//!
//! A name that is not valid UTF-16 (an unpaired surrogate, see
//! [`Dentry::name_utf16`](crate::dentry::Dentry::name_utf16)) becomes the
//! [WTF-8](crate::wtf8) bytes of its units, as wimlib names it; the `NAME_MAX` and `PATH_MAX`
//! checks count those bytes.

mod pipeline;
mod sys;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::blob_table::Sha1Hash;
use crate::defs::{filetime_to_unix, FileAttributes, ItemTag};
use crate::dentry::{Dentry, ZERO_HASH};
use crate::io::ReadAt;
use crate::mem::ThreadCount;
use crate::metadata::{NodeId, Tree};
use crate::read::ReadError;
use crate::reparse::{LinkReparse, ReparseError, MAX_REPARSE_DATA};
use crate::wim::{ImageError, Wim};

/// Options for [`apply`] and [`extract`] (the default: all cores, no UNIX data, fix-ups as
/// the header says).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Decoder threads; 0 = one per available core. 1 decodes on the calling thread. At
    /// most [`MAX_THREADS`](crate::write::MAX_THREADS) are used, and fewer when their
    /// buffers would not fit in memory (see [`memory_limit`](Self::memory_limit)).
    pub threads: usize,
    /// The memory, in bytes, the decoder threads' buffers may take (each holds up to a
    /// solid chunk of 1 GiB twice over; see [`ApplyReport::threads`]). `None`: what the
    /// system reports available when the data phase starts (Linux: `MemAvailable`).
    /// Threads are reduced, down to one, until they fit, as the writer reduces its
    /// compression threads ([`ThreadCount`]).
    pub memory_limit: Option<u64>,
    /// Restore owners, modes and special files from UNIX data (like `--unix-data`).
    pub unix_data: bool,
    /// Rewrite "fixed" absolute link targets under the target directory; `None` follows the
    /// header's `RP_FIX` flag (as wimlib does for whole images).
    pub rpfix: Option<bool>,
}

/// Things a Linux directory cannot hold, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// Named data streams.
    pub named_streams: u64,
    /// Files with a security descriptor.
    pub security_descriptors: u64,
    /// Short (8.3) names.
    pub short_names: u64,
    /// Object IDs.
    pub object_ids: u64,
    /// Extended attributes (either format).
    pub xattrs: u64,
    /// Other tagged items (UNIX data when not restoring it included).
    pub other_tagged_items: u64,
    /// Files with Windows attributes beyond directory/archive/normal/reparse/sparse.
    pub attributes: u64,
    /// Non-zero creation times.
    pub creation_times: u64,
    /// Encrypted files (only raw EFS data is stored).
    pub encrypted: u64,
    /// Reparse points other than symbolic links and junctions.
    pub reparse_points: u64,
    /// Unnamed streams beyond the first (or data on directories).
    pub extra_streams: u64,
    /// Special files (devices, FIFOs, sockets) when UNIX data is not restored or mknod failed.
    pub special_files: u64,
    /// Owners that could not be set (not running as root).
    pub owners: u64,
}

/// What an apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Directories created.
    pub dirs: u64,
    /// Regular files created (first links).
    pub files: u64,
    /// Extra hard links.
    pub hard_links: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Special files created.
    pub special_files: u64,
    /// File data bytes written (each copy counted).
    pub bytes: u64,
    /// The decoder threads wanted and used (fewer when their buffers would not fit in
    /// memory: see [`ApplyOptions::memory_limit`]).
    pub threads: ThreadCount,
    /// What was not applied.
    pub skipped: Skipped,
}

/// Progress of the data phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyProgress {
    /// Bytes written so far.
    pub done: u64,
    /// Bytes to write.
    pub total: u64,
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The image could not be loaded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// File data could not be read or did not match its hash.
    #[error("{path}")]
    Read {
        /// A file that needed the data.
        path: PathBuf,
        /// The error.
        #[source]
        source: ReadError,
    },
    /// A file system operation failed.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A stream references a blob that is not in the WIM.
    #[error("{path}: blob {} is missing from the WIM", crate::read::hex(hash))]
    MissingBlob {
        /// The file.
        path: PathBuf,
        /// The hash.
        hash: Sha1Hash,
    },
    /// A symlink's reparse data is invalid.
    #[error("{path}")]
    Reparse {
        /// The link.
        path: PathBuf,
        /// The error.
        #[source]
        source: ReparseError,
    },
    /// The progress callback returned [`ControlFlow::Break`]. Apply stops after the data
    /// unit it reported (files whose data were all written are complete; the rest of the
    /// tree is not there yet): applying again over the directory completes it.
    #[error("cancelled")]
    Cancelled,
    /// A path to extract is not in the image.
    #[error("{path}: not in the image")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A name is longer than a Linux file name may be (`NAME_MAX`, 255 bytes).
    #[error("{parent}: a name of {len} bytes is longer than the {NAME_MAX}-byte limit")]
    NameTooLong {
        /// The directory it is in.
        parent: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A path is longer than Linux accepts (`PATH_MAX`, 4096 bytes with its NUL).
    #[error("{parent}: a path of {len} bytes is longer than the {PATH_MAX}-byte limit")]
    PathTooLong {
        /// The directory the entry is in.
        parent: PathBuf,
        /// The path's length in bytes.
        len: usize,
    },
    /// A decoder thread panicked (a bug).
    #[error("a decoder thread failed")]
    Thread,
}

/// How a dentry is materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    /// A regular file with its data hash (zero = empty).
    File(Sha1Hash),
    /// A further name of the file at entry `usize`.
    HardLink(usize),
    Symlink,
    Special(u32, u32),
}

/// The longest file name Linux accepts (`NAME_MAX`), in bytes.
pub const NAME_MAX: usize = 255;
/// The longest path Linux accepts (`PATH_MAX`), in bytes, its terminating NUL included.
pub const PATH_MAX: usize = 4096;

/// Where an entry of the plan goes: under a chosen root's destination, or in the directory
/// of an earlier entry (under its own name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// The destination of root `n` itself.
    Root(usize),
    /// The entry at this index of the plan.
    Entry(usize),
}

/// One entry of the plan. No path is stored: [`Plan::path`] joins the names on use, so the
/// plan's memory is a few words per dentry however long or deep the names are.
#[derive(Debug)]
struct Entry {
    node: NodeId,
    parent: Parent,
    kind: Kind,
}

/// Every dentry to apply, in tree order (parents first), with what it becomes.
struct Plan<'t> {
    tree: &'t Tree,
    roots: &'t [(NodeId, PathBuf)],
    entries: Vec<Entry>,
}

impl Plan<'_> {
    /// The path of entry `i`, built from the names of its ancestors.
    fn path(&self, i: usize) -> PathBuf {
        let mut names = Vec::new();
        let mut at = i;
        let root = loop {
            match self.entries[at].parent {
                Parent::Root(r) => break r,
                Parent::Entry(p) => {
                    names.push(dentry_name(&self.tree.node(self.entries[at].node).dentry));
                    at = p;
                }
            }
        };
        let mut path = self.roots[root].1.clone();
        for n in names.iter().rev() {
            path.push(n);
        }
        path
    }

    /// Heap bytes the plan holds (its entries; no path is kept).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

/// Applies image `index` to `target` (created if missing).
///
/// `progress` is told of the data written after each unit of data (about 1 MiB, or a
/// solid chunk); returning [`ControlFlow::Break`] stops the apply there with
/// [`ApplyError::Cancelled`].
pub fn apply<R: ReadAt + Sync>(
    wim: &Wim<R>,
    index: u32,
    target: &Path,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress) -> ControlFlow<()>,
) -> Result<ApplyReport, ApplyError> {
    let tree = wim.image(index)?;
    let rpfix = opts.rpfix.unwrap_or(wim.rp_fix());
    run(
        wim,
        &tree,
        &[(0, target.to_path_buf())],
        target,
        opts,
        rpfix,
        progress,
    )
}

/// Extracts the chosen `paths` of image `index` into directory `target`, each under its own
/// name (the whole subtree for directories). Link fix-ups are off unless asked for.
pub fn extract<R: ReadAt + Sync>(
    wim: &Wim<R>,
    index: u32,
    paths: &[&str],
    target: &Path,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress) -> ControlFlow<()>,
) -> Result<ApplyReport, ApplyError> {
    let paths: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
    extract_wtf8(wim, index, &paths, target, opts, progress)
}

/// [`extract`] with the paths as [WTF-8](crate::wtf8) bytes, as a Linux command line gives
/// them: a name with unpaired surrogates is reached by its exact units
/// ([`Tree::lookup_wtf8`]).
pub fn extract_wtf8<R: ReadAt + Sync>(
    wim: &Wim<R>,
    index: u32,
    paths: &[&[u8]],
    target: &Path,
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress) -> ControlFlow<()>,
) -> Result<ApplyReport, ApplyError> {
    let tree = wim.image(index)?;
    let mut roots = Vec::new();
    for p in paths {
        let id = tree.lookup_wtf8(p).ok_or_else(|| ApplyError::NotFound {
            path: String::from_utf8_lossy(p).into_owned(),
        })?;
        let dest = if id == 0 {
            target.to_path_buf()
        } else {
            target.join(dentry_name(&tree.node(id).dentry))
        };
        roots.push((id, dest));
    }
    let io_err = |source| ApplyError::Io {
        path: target.to_path_buf(),
        source,
    };
    fs::create_dir_all(target).map_err(io_err)?;
    run(
        wim,
        &tree,
        &roots,
        target,
        opts,
        opts.rpfix.unwrap_or(false),
        progress,
    )
}

fn run<R: ReadAt + Sync>(
    wim: &Wim<R>,
    tree: &Tree,
    roots: &[(NodeId, PathBuf)],
    target: &Path,
    opts: &ApplyOptions,
    rpfix: bool,
    progress: &mut dyn FnMut(ApplyProgress) -> ControlFlow<()>,
) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();
    let plan = plan(tree, roots, opts, &mut report.skipped)?;
    let entries = &plan.entries;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ApplyError::Io { path, source }
    };

    // Every entry's (access, write) times; regular files get theirs from the writer as soon
    // as their data are in, through the open file (no second path lookup).
    let times: Vec<FileTimes> = entries
        .iter()
        .map(|e| {
            let d = &tree.node(e.node).dentry;
            (
                filetime_to_unix(d.last_access_time),
                filetime_to_unix(d.last_write_time),
            )
        })
        .collect();

    // Directories, then empty files.
    for (i, e) in entries.iter().enumerate() {
        match e.kind {
            Kind::Dir => {
                let path = plan.path(i);
                // The target the caller named may be a symbolic link to a directory; any
                // other existing entry must be a real directory, never followed: a link
                // already in the target would send everything below it elsewhere.
                let named_target = matches!(e.parent, Parent::Root(r) if roots[r].1 == target);
                create_dir(&path, named_target).map_err(io_err(&path))?;
                report.dirs += 1;
            }
            Kind::File(h) => {
                if h == ZERO_HASH {
                    let path = plan.path(i);
                    create_file(&path)
                        .and_then(|f| set_file_times(&f, times[i]))
                        .map_err(io_err(&path))?;
                }
                report.files += 1;
            }
            _ => {}
        }
    }

    // File data: every needed blob with the files it goes to.
    let mut targets: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Kind::File(h) = e.kind {
            if h == ZERO_HASH {
                continue;
            }
            let b = wim
                .blob_table()
                .lookup(&h)
                .ok_or_else(|| ApplyError::MissingBlob {
                    path: plan.path(i),
                    hash: h,
                })?;
            targets.entry(b).or_default().push(i);
        }
    }
    // Symlink targets (reparse data) are read in the same pass as file data, into memory:
    // their size is checked against what a file system can hold before anything is read.
    let mut keep: HashMap<u32, PathBuf> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Kind::Symlink = e.kind {
            let h = tree.node(e.node).dentry.reparse_data.unwrap_or(ZERO_HASH);
            if let Some(b) = wim.blob_table().lookup(&h) {
                let size = wim.blob_table().blobs[b as usize].size;
                if size > MAX_REPARSE_DATA as u64 {
                    return Err(ApplyError::Reparse {
                        path: plan.path(i),
                        source: ReparseError::TooLarge { size },
                    });
                }
                keep.entry(b).or_insert_with(|| plan.path(i));
            }
        }
    }
    let path_of = |i: usize| plan.path(i);
    let written = pipeline::write_data(wim, &targets, &keep, &path_of, &times, opts, progress)?;
    report.bytes = written.bytes;
    report.threads = written.threads;

    // Hard links, symlinks, special files. An entry that could not be made (a special file
    // mknod refused) is remembered: it gets no owner, mode or times below.
    let mut made = vec![true; entries.len()];
    let root_str = fs::canonicalize(target)
        .map_err(io_err(target))?
        .to_string_lossy()
        .into_owned();
    for (i, e) in entries.iter().enumerate() {
        match e.kind {
            Kind::HardLink(first) => {
                let path = plan.path(i);
                replace(&path, |p| fs::hard_link(plan.path(first), p)).map_err(io_err(&path))?;
                report.hard_links += 1;
            }
            Kind::Symlink => {
                let path = plan.path(i);
                let d = &tree.node(e.node).dentry;
                let h = d.reparse_data.unwrap_or(ZERO_HASH);
                let missing = || ApplyError::MissingBlob {
                    path: path.clone(),
                    hash: h,
                };
                let data = match wim.blob_table().lookup(&h) {
                    Some(b) => written.kept.get(&b).cloned().ok_or_else(missing)?,
                    None if h == ZERO_HASH => Vec::new(),
                    None => return Err(missing()),
                };
                let info = d.reparse.map(|r| (r.tag, r.flags)).unwrap_or_default();
                let link =
                    LinkReparse::parse(info.0, &data).map_err(|source| ApplyError::Reparse {
                        path: path.clone(),
                        source,
                    })?;
                let t = link.unix_target(info.1, rpfix.then_some(root_str.as_str()));
                replace(&path, |p| std::os::unix::fs::symlink(&t, p)).map_err(io_err(&path))?;
                report.symlinks += 1;
            }
            Kind::Special(mode, rdev) => {
                let r = replace(&plan.path(i), |p| sys::mknod(p, mode, rdev as u64));
                made[i] = special_made(r, &mut report);
            }
            _ => {}
        }
    }

    // Owners, modes and times, children before parents (a directory's times change as
    // entries are made in it).
    for (i, (e, &(atime, mtime))) in entries.iter().zip(&times).enumerate().rev() {
        if !made[i] {
            continue;
        }
        let d = &tree.node(e.node).dentry;
        let restore_unix = opts.unix_data && d.unix_data().is_some();
        // Regular files (and their further names, the same inode) got their times when
        // their data were written.
        let set_times = !matches!(e.kind, Kind::File(_) | Kind::HardLink(_));
        if !restore_unix && !set_times {
            continue;
        }
        let path = plan.path(i);
        if let (true, Some(u)) = (opts.unix_data, d.unix_data()) {
            if std::os::unix::fs::lchown(&path, Some(u.uid), Some(u.gid)).is_err() {
                report.skipped.owners += 1;
            }
            if !matches!(e.kind, Kind::Symlink) {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(u.mode & 0o7777))
                    .map_err(io_err(&path))?;
            }
        }
        if set_times {
            sys::set_times(&path, atime, mtime).map_err(io_err(&path))?;
        }
    }
    Ok(report)
}

/// Counts the outcome of making a special file and says whether it exists: a refused
/// mknod (no privilege, a file system without device nodes) is a skipped special file, as
/// documented on [`Skipped::special_files`], and its path then gets no owner, mode or times.
fn special_made(r: io::Result<()>, report: &mut ApplyReport) -> bool {
    match r {
        Ok(()) => {
            report.special_files += 1;
            true
        }
        Err(_) => {
            report.skipped.special_files += 1;
            false
        }
    }
}

/// Access and write times, as (seconds, nanoseconds) since the Unix epoch.
type FileTimes = ((i64, u32), (i64, u32));

/// Sets an open file's access and write times.
fn set_file_times(f: &fs::File, (atime, mtime): FileTimes) -> io::Result<()> {
    let t = |(secs, nanos): (i64, u32)| {
        let d = std::time::Duration::new(secs.unsigned_abs(), 0);
        let whole = if secs >= 0 {
            std::time::UNIX_EPOCH.checked_add(d)
        } else {
            std::time::UNIX_EPOCH.checked_sub(d)
        };
        whole
            .and_then(|w| w.checked_add(std::time::Duration::from_nanos(u64::from(nanos))))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "time out of range"))
    };
    f.set_times(
        fs::FileTimes::new()
            .set_accessed(t(atime)?)
            .set_modified(t(mtime)?),
    )
}

/// Creates an empty file (0644 before the umask), replacing a non-directory in the way.
fn create_file(path: &Path) -> io::Result<fs::File> {
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open()
        }
        r => r,
    }
}

/// Creates directory `path` (0755 before the umask). An existing directory is used as it
/// is; an existing symbolic link is followed only when `follow` is set (the target the
/// caller named), else it is refused like any other non-directory, as wimlib refuses.
fn create_dir(path: &Path, follow: bool) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o755).create(path) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let meta = if follow {
                fs::metadata(path)
            } else {
                fs::symlink_metadata(path)
            }?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(err)
            }
        }
        r => r,
    }
}

/// Runs `make`, replacing a non-directory already at `path`.
fn replace(path: &Path, make: impl Fn(&Path) -> io::Result<()>) -> io::Result<()> {
    match make(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            make(path)
        }
        r => r,
    }
}

/// Walks the chosen subtrees and decides what each dentry becomes, counting what is lost.
/// Names longer than [`NAME_MAX`] and paths longer than [`PATH_MAX`] are refused here, before
/// anything is created: Linux would refuse them anyway.
fn plan<'t>(
    tree: &'t Tree,
    roots: &'t [(NodeId, PathBuf)],
    opts: &ApplyOptions,
    sk: &mut Skipped,
) -> Result<Plan<'t>, ApplyError> {
    let mut plan = Plan {
        tree,
        roots,
        entries: Vec::new(),
    };
    let mut links: HashMap<(u64, Sha1Hash), usize> = HashMap::new();
    for (r, (root, dest)) in roots.iter().enumerate() {
        // (node, parent, length of its path in bytes)
        let mut stack: Vec<(NodeId, Parent, usize)> =
            vec![(*root, Parent::Root(r), dest.as_os_str().len())];
        while let Some((id, parent, len)) = stack.pop() {
            let d = &tree.node(id).dentry;
            count_skipped(d, opts, sk);
            let kind = kind_of(d, opts, sk);
            let kind = match kind {
                Kind::File(h) if d.link_group != 0 => match links.get(&(d.link_group, h)) {
                    Some(&first) => Kind::HardLink(first),
                    None => {
                        links.insert((d.link_group, h), plan.entries.len());
                        kind
                    }
                },
                k => k,
            };
            let me = plan.entries.len();
            if kind == Kind::Dir {
                for c in tree.children(id).rev() {
                    let name_len = dentry_name(&tree.node(c).dentry).len();
                    if name_len > NAME_MAX {
                        return Err(ApplyError::NameTooLong {
                            parent: plan.path_of(me, id, parent),
                            len: name_len,
                        });
                    }
                    // The separator, and the NUL the kernel counts.
                    let child_len = len + 1 + name_len;
                    if child_len + 1 > PATH_MAX {
                        return Err(ApplyError::PathTooLong {
                            parent: plan.path_of(me, id, parent),
                            len: child_len,
                        });
                    }
                    stack.push((c, Parent::Entry(me), child_len));
                }
            }
            plan.entries.push(Entry {
                node: id,
                parent,
                kind,
            });
        }
    }
    Ok(plan)
}

impl Plan<'_> {
    /// The path entry `me` (node `id` under `parent`) will have, before it is pushed.
    fn path_of(&self, me: usize, id: NodeId, parent: Parent) -> PathBuf {
        match parent {
            Parent::Root(r) => self.roots[r].1.clone(),
            Parent::Entry(p) => {
                debug_assert_eq!(me, self.entries.len());
                let mut path = self.path(p);
                path.push(dentry_name(&self.tree.node(id).dentry));
                path
            }
        }
    }
}

/// A dentry's name as a Linux file name ([`Dentry::name_wtf8`]).
fn dentry_name(d: &Dentry) -> Cow<'_, OsStr> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    match d.name_wtf8() {
        Cow::Borrowed(b) => Cow::Borrowed(OsStr::from_bytes(b)),
        Cow::Owned(v) => Cow::Owned(std::ffi::OsString::from_vec(v)),
    }
}

fn kind_of(d: &Dentry, opts: &ApplyOptions, sk: &mut Skipped) -> Kind {
    // Before the directory test: a symlink to a directory carries the directory attribute.
    if d.is_link_reparse() && !d.attributes.contains(FileAttributes::ENCRYPTED) {
        if d.data.is_some_and(|h| h != ZERO_HASH) {
            sk.extra_streams += 1;
        }
        return Kind::Symlink;
    }
    if d.is_dir() {
        if d.data.is_some_and(|h| h != ZERO_HASH) {
            sk.extra_streams += 1;
        }
        if d.reparse.is_some() {
            sk.reparse_points += 1;
        }
        return Kind::Dir;
    }
    if d.attributes.contains(FileAttributes::ENCRYPTED) {
        sk.encrypted += 1;
        return Kind::File(ZERO_HASH);
    }
    if d.reparse.is_some() {
        sk.reparse_points += 1;
    }
    if let Some(u) = d.unix_data() {
        let fmt = u.mode & 0o170000;
        if matches!(fmt, 0o020000 | 0o060000 | 0o010000 | 0o140000) {
            if opts.unix_data {
                return Kind::Special(u.mode, u.rdev);
            }
            sk.special_files += 1;
        }
    }
    Kind::File(d.data.unwrap_or(ZERO_HASH))
}

fn count_skipped(d: &Dentry, opts: &ApplyOptions, sk: &mut Skipped) {
    sk.named_streams += d.named_streams.len() as u64;
    sk.extra_streams += d.extra_unnamed as u64;
    if d.security_id >= 0 {
        sk.security_descriptors += 1;
    }
    if !d.short_name.is_empty() {
        sk.short_names += 1;
    }
    if d.creation_time != 0 {
        sk.creation_times += 1;
    }
    let kept = FileAttributes::DIRECTORY
        | FileAttributes::ARCHIVE
        | FileAttributes::NORMAL
        | FileAttributes::REPARSE_POINT
        | FileAttributes::SPARSE_FILE
        | FileAttributes::ENCRYPTED;
    if !(d.attributes - kept).is_empty() {
        sk.attributes += 1;
    }
    for t in &d.tagged {
        match t.tag {
            ItemTag::OBJECT_ID => sk.object_ids += 1,
            ItemTag::XATTRS | ItemTag::LINUX_XATTRS => sk.xattrs += 1,
            ItemTag::UNIX_DATA if opts.unix_data => {}
            _ => sk.other_tagged_items += 1,
        }
    }
}

#[cfg(test)]
mod tests;
