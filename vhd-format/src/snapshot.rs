//! `snapshot`: make a differencing child of a disk file in one call (std).

use std::boxed::Box;
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::string::{String, ToString};

use crate::disk::Disk;
use crate::parent::ParentPolicy;
use crate::vhd::{OpenOptions, Vhd};
use crate::{create_differencing, CreateError, CreateOptions, OpenError, ParentLink};

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The parent does not open.
    #[error("the parent does not open")]
    Parent(#[from] OpenError),
    /// The child could not be created.
    #[error("the child could not be created")]
    Create(#[from] CreateError),
    /// A path could not be used.
    #[error("path {path}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The parent handed to [`parent_link`] is not a VHD (a raw image, a caller's own
    /// [`Disk`]): it has no unique id and timestamp for a child to record.
    #[error("the parent is not a VHD: it has no identity a child could record")]
    ParentNotVhd,
    /// The parent's path is not valid Unicode: the locators and the parent name are UTF-16,
    /// so the child could never find it again.
    #[error("parent path {0} is not valid Unicode; a child could not record it")]
    NotUnicode(PathBuf),
}

/// The path of `target` relative to directory `from`, both absolute and normalized.
fn relative(from: &Path, target: &Path) -> PathBuf {
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c);
    }
    out
}

/// The parent link a child of the disk at `parent_path` records when the child lives at
/// `child_path`: the parent's identity, its file name, a `W2ru` path relative to the child's
/// directory (Windows separators, `.\` prefix) and a `W2ku` absolute path. A parent that is
/// not a VHD ([`Disk::identity`] is `None`) is [`SnapshotError::ParentNotVhd`].
pub fn parent_link(
    parent: &dyn Disk,
    parent_path: &Path,
    child_path: &Path,
) -> Result<ParentLink, SnapshotError> {
    let abs = |p: &Path| {
        std::path::absolute(p).map_err(|source| SnapshotError::Path {
            path: p.to_path_buf(),
            source,
        })
    };
    let parent_abs = abs(parent_path)?;
    if parent_abs.to_str().is_none() {
        return Err(SnapshotError::NotUnicode(parent_abs));
    }
    let child_abs = abs(child_path)?;
    let child_dir = child_abs.parent().unwrap_or(Path::new("/"));
    let rel = relative(child_dir, &parent_abs);
    let rel_text = rel.to_string_lossy().replace('/', "\\");
    let rel_text = if rel_text.starts_with("..") {
        rel_text
    } else {
        std::format!(".\\{rel_text}")
    };
    let identity = parent.identity().ok_or(SnapshotError::ParentNotVhd)?;
    Ok(ParentLink {
        unique_id: identity.unique_id,
        timestamp: identity.timestamp,
        name: parent_abs
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(String::new),
        relative_path: Some(rel_text),
        absolute_path: Some(parent_abs.to_string_lossy().to_string()),
    })
}

/// Creates `child_path`, a differencing disk over the disk at `parent_path` (itself any VHD,
/// including a differencing one, whose chain is resolved under `policy`), and opens it for
/// writing. The parent is opened read-only and becomes immutable by convention: writing it
/// would invalidate the child.
pub fn snapshot(
    parent_path: &Path,
    child_path: &Path,
    options: &CreateOptions,
    policy: &ParentPolicy,
) -> Result<Vhd<File>, SnapshotError> {
    let parent = Vhd::open_path(parent_path, OpenOptions::new(), policy)?;
    let link = parent_link(&parent, parent_path, child_path)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(child_path)
        .map_err(|source| SnapshotError::Path {
            path: child_path.to_path_buf(),
            source,
        })?;
    // The file is this call's own (created above): a failure leaves nothing behind, so a
    // corrected retry does not meet a half-made child.
    create_differencing(file, Box::new(parent), &link, options).map_err(|e| {
        let _ = std::fs::remove_file(child_path);
        e.into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b/p.vhd")),
            PathBuf::from("p.vhd")
        );
        assert_eq!(
            relative(Path::new("/a/b/snap"), Path::new("/a/b/p.vhd")),
            PathBuf::from("../p.vhd")
        );
        assert_eq!(
            relative(Path::new("/x"), Path::new("/a/p.vhd")),
            PathBuf::from("../a/p.vhd")
        );
    }
}
