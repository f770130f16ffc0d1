//! Live snapshots of the running disk: the disk becomes the read-only parent of a new
//! differencing child (an `.avhd`), swapped in between two guest requests, so the guest never
//! stops; at shutdown the child is merged into the parent or kept.

use std::path::{Path, PathBuf};

use vhd_format::ops::{merge_into_parent, MergeError, NoProgress};
use vhd_format::{
    create_differencing, parent_link, CreateOptions, Disk, OpenOptions, ParentPolicy, Vhd,
};

use super::VmDisk;

/// Why a snapshot failed (the disk stays as it was).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFailed {
    /// The disk was already detached.
    #[error("no disk to snapshot")]
    NoDisk,
    /// Flushing the parent failed.
    #[error("cannot flush the disk")]
    Flush(#[source] vhd_format::DiskError),
    /// The child could not be created.
    #[error("cannot create {path}")]
    Create {
        /// The child.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Snapshots `disk` (open from `parent_path`) into a new differencing disk at `child_path`.
pub fn take(
    disk: &mut VmDisk,
    parent_path: &Path,
    child_path: &Path,
) -> Result<(), SnapshotFailed> {
    let create = |source: Box<dyn std::error::Error + Send + Sync>| SnapshotFailed::Create {
        path: child_path.to_path_buf(),
        source,
    };
    let parent = disk.disk_mut().ok_or(SnapshotFailed::NoDisk)?;
    parent.flush().map_err(SnapshotFailed::Flush)?;
    let link = parent_link(&*parent, parent_path, child_path).map_err(|e| create(e.into()))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(child_path)
        .map_err(|e| create(e.into()))?;
    let parent = disk.take_disk().ok_or(SnapshotFailed::NoDisk)?;
    match create_differencing(file, Box::new(parent), &link, &CreateOptions::new(0)) {
        Ok(child) => {
            disk.put_disk(child);
            Ok(())
        }
        Err(e) => {
            // The parent moved into the failed call: open it again.
            let _ = std::fs::remove_file(child_path);
            let again = Vhd::open_path(
                parent_path,
                OpenOptions::new().writable(true),
                &ParentPolicy::default(),
            )
            .map_err(|e| create(e.into()))?;
            disk.put_disk(again);
            Err(create(e.into()))
        }
    }
}

/// Merges the snapshot child behind `disk` into its parent and deletes the child file.
/// Returns the bytes merged.
pub fn merge(disk: &mut VmDisk, child_path: &Path) -> Result<u64, MergeError> {
    let Some(child) = disk.disk_mut() else {
        return Err(MergeError::NotDifferencing);
    };
    child.flush().map_err(MergeError::Parent)?;
    let merged = merge_into_parent(child, &mut NoProgress)?;
    // The parent now holds everything: close the child and remove it.
    drop(disk.take_disk());
    let _ = std::fs::remove_file(child_path);
    Ok(merged)
}

/// What `--snapshot` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPlan {
    /// The child to create.
    pub child: PathBuf,
    /// Take it once the guest has completed this many writes.
    pub after_writes: u64,
    /// Merge at shutdown (else keep the child).
    pub merge: bool,
}
