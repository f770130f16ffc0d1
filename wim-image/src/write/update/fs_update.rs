//! Update commands with files from the file system, committed in place.

use core::ops::ControlFlow;

use super::super::capture::{scan_branch, CaptureOptions};
use super::super::export::image_from_tree;
use super::super::image::NewImage;
use super::super::inplace::Fate;
use super::super::{
    NoBlobs, ReadBack, WimWriter, WriteAt, WriteError, WriteOptions, WriteProgress,
};
use super::{Session, UpdateCommand, UpdateError};
use crate::wim::Wim;

/// Applies `cmds` in order to `img`. An `add` of a whole image (destination: the root) fixes
/// absolute link targets inside the source when `rp_fix_root` is set (wimlib does so when the
/// WIM has the `RP_FIX` flag or holds a single image); other adds leave targets as they are.
/// Directories created on the way get the time `now`. A special file (FIFO, socket, device)
/// given as a source adds nothing unless the command asks for UNIX data. A file met in two
/// adds becomes one inode with two links, as wimlib does. Sources are filtered by the
/// command's [`CaptureConfig`](super::super::config::CaptureConfig) (by default wimlib's
/// default exclusion list), matched from the source's own root as wimlib does.
pub fn update_image(
    img: &mut NewImage,
    cmds: &[UpdateCommand],
    rp_fix_root: bool,
    now: u64,
) -> Result<(), UpdateError> {
    let mut session = Session::new(img)?;
    for cmd in cmds {
        match cmd {
            UpdateCommand::Add {
                source,
                dest,
                no_replace,
                unix_data,
                dereference,
                config,
            } => {
                let entire = dest.is_root();
                let opts = CaptureOptions {
                    rp_fix: entire && rp_fix_root,
                    unix_data: *unix_data,
                    dereference: *dereference,
                    config: config.clone(),
                };
                let b = scan_branch(source, &opts)?;
                if let Some(root) = b.root {
                    session.add(&b.image, root, &b.file_ids, dest, *no_replace, now)?;
                }
            }
            UpdateCommand::Delete {
                path,
                force,
                recursive,
            } => session.delete(path, *force, *recursive)?,
            UpdateCommand::Rename { from, to } => session.rename(from, to)?,
        }
    }
    Ok(())
}

/// Applies `cmds` to image `index` (1-based) of the WIM in `out` and commits the result in
/// place (see [`super::super::inplace`]): only new file data, the new metadata and the tables
/// are written after the old end of the file, and the header last. The file's compression
/// is kept; `opts` gives threads, level, time and whether to add an integrity table.
/// [`update_in_place_with_progress`] reports progress and can be cancelled.
pub fn update_in_place<W: WriteAt>(
    out: W,
    index: u32,
    cmds: &[UpdateCommand],
    opts: &WriteOptions,
) -> Result<W, UpdateError> {
    update_in_place_with_progress(out, index, cmds, opts, &mut super::super::progress::ignore)
}

/// [`update_in_place`], telling `progress` how much of the new files' data is written (see
/// [`WriteProgress`]; the sources are scanned first, without reports).
/// [`ControlFlow::Break`] stops the update with
/// [`UpdateError::Write`]`(`[`WriteError::Cancelled`]`)`, and the file gets its original
/// header and length back, as after any failure: it is as it was.
pub fn update_in_place_with_progress<W: WriteAt>(
    out: W,
    index: u32,
    cmds: &[UpdateCommand],
    opts: &WriteOptions,
    progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
) -> Result<W, UpdateError> {
    let (mut img, rp_fix, count) = {
        let wim = Wim::open(ReadBack(&out)).map_err(WriteError::Open)?;
        let tree = wim
            .image(index)
            .map_err(|source| WriteError::OldImage { index, source })?;
        let img = image_from_tree(&wim, &tree)?;
        (
            img,
            wim.rp_fix() || wim.image_count() == 1,
            wim.image_count(),
        )
    };
    update_image(&mut img, cmds, rp_fix, opts.now)?;
    let fates: alloc::vec::Vec<Fate> = (1..=count)
        .map(|i| {
            if i == index {
                Fate::Replace
            } else {
                Fate::Keep
            }
        })
        .collect();
    let mut w = WimWriter::rewrite(out, opts, &fates)?;
    w.replace_image_with_progress(index, &mut img, &mut NoBlobs, progress)?;
    Ok(w.finish()?)
}
