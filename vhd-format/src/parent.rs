//! Parent locators, and (with `std`) resolving a differencing disk's parent on the file system.
//!
//! Resolution order, the robust one: the `W2ru` relative path (relative to the *child's*
//! directory, not the working directory), then the `W2ku` absolute path, then the parent
//! unicode name next to the child. Locators use `\` as the separator, which is an ordinary
//! character in a file name here: a path holding it is tried as Windows would read it and
//! then as it stands (a parent named `a\b.vhd`). Each candidate must satisfy the caller's
//! [`ParentPolicy`] before it is even opened, and must carry the unique id the child
//! recorded; a timestamp mismatch is only a warning (copies and time-zone changes cause it).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::defs::PlatformCode;
use crate::io::{IoError, Storage};
use crate::vhd::{locator_space, Vhd};

/// A decoded parent locator.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Locator {
    /// Its platform code.
    pub code: PlatformCode,
    /// The path it holds (`W2ru`/`W2ku` decoded from UTF-16LE, `Wi2r`/`Wi2k`/`MacX` as 8-bit).
    pub path: String,
}

/// Longest locator payload read (a Windows path is at most 32767 UTF-16 units).
const MAX_LOCATOR_BYTES: u64 = 64 << 10;

impl<S: Storage> Vhd<S> {
    /// The parent unicode name from the header (differencing disks).
    pub fn parent_name(&self) -> Option<String> {
        let header = self.header()?;
        let name: String = core::char::decode_utf16(header.parent_name_units())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        (!name.is_empty()).then_some(name)
    }

    /// The parent locators that hold a path, decoded. Entries whose payload lies outside the
    /// file or is not text are skipped.
    pub fn parent_locators(&self) -> Result<Vec<Locator>, IoError> {
        let Some(header) = self.header() else {
            return Ok(Vec::new());
        };
        read_locators(&self.storage, header)
    }
}

pub(crate) fn read_locators<S: Storage>(
    storage: &S,
    header: &crate::defs::DynamicHeader,
) -> Result<Vec<Locator>, IoError> {
    let len = storage.len()?;
    let mut out = Vec::new();
    for entry in &header.parent_locators {
        let code = entry.code();
        if code == PlatformCode::NONE || code == PlatformCode::MAC {
            continue;
        }
        let offset = entry.platform_data_offset.get();
        let length = u64::from(entry.platform_data_length.get()).min(locator_space(entry));
        if length == 0
            || length > MAX_LOCATOR_BYTES
            || offset.checked_add(length).is_none_or(|end| end > len)
        {
            continue;
        }
        let mut bytes = vec![0u8; length as usize];
        storage.read_at(offset, &mut bytes)?;
        let path: String = match code {
            PlatformCode::W2RU | PlatformCode::W2KU => core::char::decode_utf16(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]])),
            )
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
            _ => bytes.iter().map(|&b| b as char).collect(),
        };
        let path = String::from(path.trim_end_matches('\0'));
        if !path.is_empty() {
            out.push(Locator { code, path });
        }
    }
    Ok(out)
}

#[cfg(feature = "std")]
pub use fs::{ParentError, ParentPolicy};

#[cfg(feature = "std")]
mod fs {
    use std::boxed::Box;
    use std::fs::File;
    use std::path::{Component, Path, PathBuf};
    use std::vec::Vec;

    use super::Locator;
    use crate::defs::{DiskType, PlatformCode, Uuid};
    use crate::vhd::{OpenError, OpenOptions, Vhd};

    /// The rules parent resolution must follow. A locator is data from the file: without rules
    /// it could make us open any path on the machine.
    #[derive(Clone, Debug)]
    pub struct ParentPolicy {
        roots: Option<Vec<PathBuf>>,
        follow_absolute: bool,
        max_depth: usize,
    }

    impl Default for ParentPolicy {
        /// Parents must lie in the child's own directory (or below it); absolute locators are
        /// not followed; chains up to 64 deep.
        fn default() -> Self {
            Self {
                roots: Some(Vec::new()),
                follow_absolute: false,
                max_depth: 64,
            }
        }
    }

    impl ParentPolicy {
        /// Parents may lie anywhere and absolute locators are followed (trusted images only).
        pub fn anywhere() -> Self {
            Self {
                roots: None,
                follow_absolute: true,
                max_depth: 64,
            }
        }

        /// Also allow parents under `dir` (canonicalized when checked).
        pub fn allow_dir(mut self, dir: impl Into<PathBuf>) -> Self {
            self.roots.get_or_insert_with(Vec::new).push(dir.into());
            self
        }

        /// Follow `W2ku` absolute paths (still subject to the allowed directories).
        pub fn follow_absolute(mut self, yes: bool) -> Self {
            self.follow_absolute = yes;
            self
        }

        /// Longest chain to open.
        pub fn max_depth(mut self, depth: usize) -> Self {
            self.max_depth = depth;
            self
        }

        fn allows(&self, child_dir: &Path, candidate: &Path) -> bool {
            let Some(roots) = &self.roots else {
                return true;
            };
            let Ok(real) = candidate.canonicalize() else {
                return false;
            };
            std::iter::once(child_dir)
                .chain(roots.iter().map(PathBuf::as_path))
                .filter_map(|r| r.canonicalize().ok())
                .any(|root| real.starts_with(root))
        }
    }

    /// Why a parent could not be resolved.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum ParentError {
        /// No candidate path named a usable parent.
        #[error("parent of {child} (unique id {parent_id}) not found; tried {tried:?}")]
        NotFound {
            /// The child.
            child: PathBuf,
            /// The unique id it records.
            parent_id: Uuid,
            /// Each candidate and why it was not used.
            tried: Vec<(PathBuf, &'static str)>,
        },
        /// The chain is deeper than the policy allows (or loops).
        #[error("differencing chain deeper than {0}")]
        TooDeep(usize),
        /// A candidate with the right name failed to open.
        #[error("parent {path} does not open")]
        Open {
            /// The candidate.
            path: PathBuf,
            /// Why.
            #[source]
            source: Box<OpenError>,
        },
    }

    /// Turns a locator's Windows-style path into a path on this system.
    fn native(path: &str) -> PathBuf {
        let unified = path.replace('\\', "/");
        PathBuf::from(unified)
    }

    fn is_windows_absolute(path: &str) -> bool {
        let b = path.as_bytes();
        (b.len() >= 2 && b[1] == b':') || path.starts_with("\\\\")
    }

    impl Vhd<File> {
        /// Opens the VHD at `path`, resolving the parents of a differencing chain under
        /// `policy`. The immediate parent is opened writable only when
        /// [`OpenOptions::writable_parent`] is set (what [`merge_into_parent`] needs); every
        /// other ancestor is read-only. A file that does not open is [`OpenError::File`], which
        /// names the path.
        ///
        /// [`merge_into_parent`]: crate::ops::merge_into_parent
        pub fn open_path(
            path: impl AsRef<Path>,
            options: OpenOptions,
            policy: &ParentPolicy,
        ) -> Result<Self, OpenError> {
            open_at_depth(path.as_ref(), options, policy, 0)
        }
    }

    fn open_at_depth(
        path: &Path,
        options: OpenOptions,
        policy: &ParentPolicy,
        depth: usize,
    ) -> Result<Vhd<File>, OpenError> {
        if depth > policy.max_depth {
            return Err(ParentError::TooDeep(policy.max_depth).into());
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(options.writable)
            .open(path)
            .map_err(|source| OpenError::File {
                path: path.to_path_buf(),
                source,
            })?;
        let (footer, header) = Vhd::probe(&file)?;
        let (DiskType::DIFFERENCING, Some(header)) = (footer.disk_type(), header) else {
            return Vhd::open(file, options);
        };
        let parent_id = header.parent_unique_id();
        let child_dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let child_dir = if child_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            child_dir
        };
        let locators = super::read_locators(&file, &header)?;
        let mut candidates: Vec<PathBuf> = Vec::new();
        let by_code =
            |code: PlatformCode| locators.iter().filter(move |l: &&Locator| l.code == code);
        for l in by_code(PlatformCode::W2RU).chain(by_code(PlatformCode::WI2R)) {
            candidates.push(child_dir.join(native(&l.path)));
        }
        for l in by_code(PlatformCode::W2KU).chain(by_code(PlatformCode::WI2K)) {
            if !policy.follow_absolute {
                continue;
            }
            if is_windows_absolute(&l.path) {
                // A Windows path cannot be opened here; its file name is tried below.
                continue;
            }
            candidates.push(native(&l.path));
            // On this system `\` is an ordinary character in a file name, and a parent named
            // so is written with it unchanged: try the path as it stands too.
            if l.path.contains('\\') {
                candidates.push(PathBuf::from(&l.path));
            }
        }
        let name: std::string::String = core::char::decode_utf16(header.parent_name_units())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        if !name.is_empty() {
            // `.avhd` files may store a whole Windows path: use its last component.
            let file_name = native(&name)
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(PathBuf::from(n)),
                    _ => None,
                })
                .next_back();
            if let Some(file_name) = file_name {
                candidates.push(child_dir.join(file_name));
            }
            // A file name holding `\` (and no `/`) may be the parent's own name.
            if name.contains('\\') && !name.contains('/') && name != "." && name != ".." {
                candidates.push(child_dir.join(&name));
            }
        }
        let mut tried = Vec::new();
        for candidate in candidates {
            if tried.iter().any(|(p, _)| *p == candidate) {
                continue;
            }
            if !candidate.is_file() {
                tried.push((candidate, "no such file"));
                continue;
            }
            if !policy.allows(&child_dir, &candidate) {
                tried.push((candidate, "outside the allowed directories"));
                continue;
            }
            match std::fs::File::open(&candidate).map(|f| Vhd::probe(&f)) {
                Ok(Ok((pf, _))) if pf.unique_id() == parent_id || options.ignore_parent_id => {}
                Ok(Ok(_)) => {
                    tried.push((candidate, "unique id differs"));
                    continue;
                }
                _ => {
                    tried.push((candidate, "not a VHD"));
                    continue;
                }
            }
            let parent_options = OpenOptions::new()
                .size_policy(options.size_policy)
                .writable(options.writable_parent);
            let parent =
                open_at_depth(&candidate, parent_options, policy, depth + 1).map_err(|e| {
                    ParentError::Open {
                        path: candidate.clone(),
                        source: Box::new(e),
                    }
                })?;
            return Vhd::open_with_parent(file, Box::new(parent), options);
        }
        Err(ParentError::NotFound {
            child: path.to_path_buf(),
            parent_id,
            tried,
        }
        .into())
    }
}
