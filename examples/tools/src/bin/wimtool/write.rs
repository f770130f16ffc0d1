//! The subcommands that write: `capture`, `append`, `export` and `delete` (`update` has its
//! own module).

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use wim_image::codec::Codec;
use wim_image::write::capture::{
    capture_image_with_progress, CaptureError, CaptureOptions, CaptureReport,
};
use wim_image::write::config::CaptureConfig;
use wim_image::write::export::{export_image_with_progress, rebuild_with_progress, Recompress};
use wim_image::write::inplace::delete_in_place;
use wim_image::write::{
    ImageProps, ThreadCount, WimWriter, WriteError, WriteOptions, WriteProgress,
};

use crate::args::{parse_size, text, Args, UsageError};
use crate::commands::{
    corrupt, file_id, image_index, io_failure, numbered, open, with_causes, Failure,
};
use crate::progress::Bar;

/// Flags the writing commands accept.
const FLAGS: &[&str] = &[
    "--check",
    "--boot",
    "--rpfix",
    "--norpfix",
    "--solid",
    "--recompress",
    "--unix-data",
    "--dereference",
    "-q",
    "--quiet",
];

/// A write progress callback drawing `bar` (never cancels); the line names the image, as
/// the counts start again for each.
fn shown(bar: &mut Bar) -> impl FnMut(WriteProgress) -> ControlFlow<()> + '_ {
    |p| {
        bar.update_image(p.image, p.done, p.total);
        ControlFlow::Continue(())
    }
}

/// `--compress=none|xpress|lzx|lzms[:LEVEL]` (case-insensitive; default LZX like wimlib).
fn compression(a: &Args) -> Result<(Option<Codec>, Option<u32>), Failure> {
    let text = a.value(&["--compress"]).unwrap_or("lzx");
    let (name, level) = match text.split_once(':') {
        Some((n, l)) => {
            let l: u32 = l
                .parse()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| UsageError(format!("invalid compression level {l:?}")))?;
            (n, Some(l))
        }
        None => (text, None),
    };
    let codec = match name.to_ascii_lowercase().as_str() {
        "none" => None,
        "xpress" | "fast" => Some(Codec::Xpress),
        "lzx" | "maximum" => Some(Codec::Lzx),
        "lzms" | "recovery" => Some(Codec::Lzms),
        _ => return Err(UsageError(format!("unknown compression {name:?}")).into()),
    };
    Ok((codec, level))
}

/// A `--chunk-size`-like option's value (0 when absent).
fn size_option(a: &Args, name: &str) -> Result<u32, Failure> {
    match a.value(&[name]) {
        Some(s) => Ok(u32::try_from(parse_size(s)?)
            .map_err(|_| UsageError(format!("chunk size {s:?} is too large")))?),
        None => Ok(0),
    }
}

/// `--solid [--solid-compress=TYPE] [--solid-chunk-size=SIZE]`: the solid codec (LZMS by
/// default, like wimlib) and chunk size (0: the codec's default, 64 MiB for LZMS).
fn solid_options(a: &Args) -> Result<Option<(Codec, u32)>, Failure> {
    let named =
        a.value(&["--solid-compress"]).is_some() || a.value(&["--solid-chunk-size"]).is_some();
    if !a.flag(&["--solid"]) && !named {
        return Ok(None);
    }
    let codec = match a
        .value(&["--solid-compress"])
        .map(|s| s.to_ascii_lowercase())
    {
        None => Codec::Lzms,
        Some(s) => match s.as_str() {
            "xpress" | "fast" => Codec::Xpress,
            "lzx" | "maximum" => Codec::Lzx,
            "lzms" | "recovery" => Codec::Lzms,
            _ => return Err(UsageError(format!("unknown solid compression {s:?}")).into()),
        },
    };
    Ok(Some((codec, size_option(a, "--solid-chunk-size")?)))
}

/// Says on standard error that a writer uses fewer compression threads than wanted, as
/// wimlib-imagex warns (the library fits them to the available memory: see
/// `WriteOptions::memory_limit`).
fn fewer_threads(t: ThreadCount) {
    eprintln!("{}", fewer_threads_note("compression", t));
}

/// The note for `kind` (compression, decoder) threads reduced to fit in memory.
pub(crate) fn fewer_threads_note(kind: &str, t: ThreadCount) -> String {
    format!(
        "wimtool: wanted {} {kind} threads, limiting to {} to fit in available memory",
        t.wanted, t.used
    )
}

pub(crate) fn write_options(a: &Args) -> Result<WriteOptions, Failure> {
    let (mut codec, level) = compression(a)?;
    let solid = solid_options(a)?;
    if solid.is_some() && a.value(&["--compress"]).is_none() {
        // wimlib's `--solid` alone: LZMS (128K chunks) for the metadata too.
        codec = Some(Codec::Lzms);
    }
    let chunk_size = size_option(a, "--chunk-size")?;
    let threads = crate::commands::threads(a)?;
    Ok(WriteOptions {
        compression: codec,
        chunk_size,
        solid,
        level: level.unwrap_or(50),
        threads,
        integrity: a.flag(&["--check"]),
        rp_fix: !a.flag(&["--norpfix"]),
        copy_stored: !a.flag(&["--recompress"]),
        fewer_threads: Some(fewer_threads),
        ..WriteOptions::default()
    })
}

/// NAME and DESCRIPTION after the two paths; the name defaults to the directory's name.
fn props(dir: &Path, rest: &[OsString]) -> Result<ImageProps, Failure> {
    if rest.len() > 2 {
        return Err(UsageError("too many arguments".into()).into());
    }
    let name = match rest.first() {
        Some(n) => text(n, "the image name")?.to_string(),
        None => std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    };
    let description = match rest.get(1) {
        Some(d) => Some(text(d, "the description")?.to_string()),
        None => None,
    };
    Ok(ImageProps {
        name,
        description,
        flags: None,
    })
}

/// A failed write into `dest`, reading from `src` (the WIM whose data are copied: the source
/// of an export, split or rebuild, `dest` itself when appending or updating). What is wrong
/// with a WIM read is exit 2 and names that WIM; what failed in the output is exit 3 and
/// names `dest`.
pub(crate) fn write_failure(e: &WriteError, dest: &Path, src: &Path) -> Failure {
    let named = |p: &Path| format!("{}: {}", p.display(), with_causes(e));
    match e {
        WriteError::Open(_) | WriteError::NotModifiable { .. } => Failure::Corrupt(named(dest)),
        WriteError::MissingBlob { .. }
        | WriteError::Hash { .. }
        | WriteError::Read(_)
        | WriteError::OldImage { .. } => Failure::Corrupt(named(src)),
        WriteError::CodecUnavailable { .. }
        | WriteError::ChunkSize { .. }
        | WriteError::DuplicateName { .. } => Failure::Usage(with_causes(e)),
        // These name their file themselves.
        WriteError::Source { .. } | WriteError::Changed { .. } => Failure::Io(with_causes(e)),
        _ => io_failure(dest, e),
    }
}

pub(crate) fn capture_failure(e: &CaptureError, wim: &Path) -> Failure {
    match e {
        CaptureError::Write(w) => write_failure(w, wim, wim),
        CaptureError::Encoding { .. } | CaptureError::LinkTooLong { .. } => corrupt(e),
        _ => Failure::Io(with_causes(e)),
    }
}

fn report(r: &CaptureReport, quiet: bool) {
    if !quiet {
        eprintln!(
            "captured {} directories, {} files, {} symbolic links ({} fixed)",
            r.dirs, r.files, r.symlinks, r.fixed_links
        );
    }
    if r.excluded > 0 && !quiet {
        eprintln!("left out {} paths (capture configuration)", r.excluded);
    }
    if r.special > 0 && !quiet {
        eprintln!(
            "kept {} special files (FIFOs, sockets, devices) as UNIX data",
            r.special
        );
    }
    if r.skipped_special > 0 {
        eprintln!(
            "skipped {} special files (FIFOs, sockets, devices)",
            r.skipped_special
        );
    }
}

/// `--config=FILE` (warnings about what it ignores go to standard error), or wimlib's
/// default exclusions.
pub fn capture_config(a: &Args) -> Result<CaptureConfig, Failure> {
    let Some(file) = a.value_os(&["--config"]) else {
        return Ok(CaptureConfig::default());
    };
    let p = Path::new(file);
    let bytes = std::fs::read(p).map_err(|e| io_failure(p, &e))?;
    let (config, warnings) =
        CaptureConfig::parse(&bytes).map_err(|e| UsageError(format!("{}: {e}", p.display())))?;
    for w in warnings {
        eprintln!("{}: {w}", p.display());
    }
    Ok(config)
}

/// A new file written beside its final name and renamed there by [`TempFile::commit`]; it
/// is removed if dropped before (a failed command leaves what was there untouched).
pub(crate) struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates an empty temporary file in the directory of `dest`, with the permissions of
    /// `like` when given (the file it will replace).
    pub(crate) fn beside(dest: &Path, like: Option<&Path>) -> Result<(TempFile, File), Failure> {
        let mut name = OsString::from(".");
        name.push(dest.file_name().unwrap_or(OsStr::new("wim")));
        name.push(format!(".wimtool-{}", std::process::id()));
        let base = dest.with_file_name(&name);
        for n in 0u32.. {
            let path = if n == 0 {
                base.clone()
            } else {
                let mut p = base.clone().into_os_string();
                p.push(format!("-{n}"));
                PathBuf::from(p)
            };
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => {
                    let t = TempFile {
                        path,
                        committed: false,
                    };
                    if let Some(like) = like {
                        let perm = std::fs::metadata(like)
                            .map_err(|e| io_failure(like, &e))?
                            .permissions();
                        f.set_permissions(perm)
                            .map_err(|e| io_failure(&t.path, &e))?;
                    }
                    return Ok((t, f));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {}
                Err(e) => return Err(io_failure(&path, &e)),
            }
        }
        unreachable!("the loop returns")
    }

    /// Makes the data durable (`file` is the temporary file, as the writer gave it back),
    /// renames the file to `dest`, then makes the rename durable.
    pub(crate) fn commit(mut self, file: &File, dest: &Path) -> Result<(), Failure> {
        file.sync_all().map_err(|e| io_failure(&self.path, &e))?;
        std::fs::rename(&self.path, dest).map_err(|e| io_failure(dest, &e))?;
        self.committed = true;
        sync_dir(dest);
        Ok(())
    }

    /// Commits a set of files (the parts of a split set, whose data were made durable as
    /// each was finished, and which are closed) all or nothing. Each destination that
    /// exists (other than a directory) is moved aside under a temporary name, and every file
    /// is renamed into place. Should a step fail, the files renamed so far are removed and
    /// those moved aside put back: no partial set is left, and what was there before is
    /// there again (the temporary files go when their `TempFile`s drop).
    pub(crate) fn commit_all(mut set: Vec<(PathBuf, TempFile)>) -> Result<(), Failure> {
        // (destination, where it was moved)
        let mut aside: Vec<(PathBuf, TempFile)> = Vec::new();
        let mut placed: Vec<PathBuf> = Vec::new();
        let undo = |placed: &[PathBuf], aside: &mut Vec<(PathBuf, TempFile)>| {
            for p in placed {
                let _ = std::fs::remove_file(p);
            }
            for (p, mut t) in aside.drain(..) {
                // Back under its name; should that fail, it stays under the temporary one
                // rather than being removed with it.
                let _ = std::fs::rename(&t.path, &p);
                t.committed = true;
            }
        };
        for (p, _) in &set {
            match std::fs::symlink_metadata(p) {
                Ok(m) if !m.is_dir() => {}
                _ => continue,
            }
            // An empty file made under a free name, which the rename then replaces.
            let moved = TempFile::beside(p, None).and_then(|(t, _)| {
                std::fs::rename(p, &t.path).map_err(|e| io_failure(p, &e))?;
                Ok(t)
            });
            match moved {
                Ok(t) => aside.push((p.clone(), t)),
                Err(e) => {
                    undo(&placed, &mut aside);
                    return Err(e);
                }
            }
        }
        for (p, t) in &mut set {
            if let Err(e) = std::fs::rename(&t.path, &*p) {
                undo(&placed, &mut aside);
                return Err(io_failure(p, &e));
            }
            t.committed = true;
            placed.push(p.clone());
        }
        // The old files are no longer needed (their `TempFile`s remove them).
        drop(aside);
        for p in &placed {
            sync_dir(p);
        }
        Ok(())
    }

    /// (device, inode number) of the file.
    fn id(&self) -> Result<(u64, u64), Failure> {
        let m = std::fs::symlink_metadata(&self.path).map_err(|e| io_failure(&self.path, &e))?;
        Ok((m.dev(), m.ino()))
    }
}

/// Makes a rename to `path` durable: syncs its directory (best effort: the file is in
/// place either way).
fn sync_dir(path: &Path) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Where a command that replaces or creates `path` writes: an existing file reached through
/// symbolic links is rewritten where it is (the links stay, as with wimlib).
fn resolve(path: &Path) -> Result<PathBuf, Failure> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| io_failure(path, &e))
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// The capture settings of `capture` and `append`, checked before any file is touched.
fn capture_options(a: &Args, dir: &Path) -> Result<CaptureOptions, Failure> {
    let m = std::fs::metadata(dir).map_err(|e| io_failure(dir, &e))?;
    if !m.is_dir() {
        return Err(Failure::Io(format!("{}: not a directory", dir.display())));
    }
    Ok(CaptureOptions {
        rp_fix: !a.flag(&["--norpfix"]),
        unix_data: a.flag(&["--unix-data"]),
        dereference: a.flag(&["--dereference"]),
        config: capture_config(a)?,
    })
}

/// Captures `dir` into the writer, sets the boot index if asked, and finishes the WIM;
/// returns its file.
fn add_and_finish(
    mut w: WimWriter<File>,
    dir: &Path,
    props: &ImageProps,
    copts: &CaptureOptions,
    a: &Args,
    wim: &Path,
) -> Result<File, Failure> {
    let quiet = a.flag(&["-q", "--quiet"]);
    let mut bar = Bar::new("capture", quiet);
    let (index, r) = capture_image_with_progress(&mut w, dir, props, copts, &mut shown(&mut bar))
        .map_err(|e| capture_failure(&e, wim))?;
    if a.flag(&["--boot"]) {
        w.set_boot_index(index)
            .map_err(|e| write_failure(&e, wim, wim))?;
    }
    let f = w.finish().map_err(|e| write_failure(&e, wim, wim))?;
    drop(bar);
    report(&r, quiet);
    Ok(f)
}

/// The arguments of `capture` and `append`: `DIR WIM [NAME [DESCRIPTION]]` and options.
fn parse(a: &Args) -> Result<(&Path, &Path, ImageProps, WriteOptions), Failure> {
    a.only_flags(FLAGS)?;
    let [dir, wim, rest @ ..] = a.positional.as_slice() else {
        return Err(UsageError("expected DIR WIM [NAME [DESCRIPTION]]".into()).into());
    };
    let (dir, wim) = (Path::new(dir), Path::new(wim));
    Ok((dir, wim, props(dir, rest)?, write_options(a)?))
}

/// `capture DIR WIM [NAME [DESCRIPTION]]`: a new WIM holding one image of `DIR`, written
/// beside `WIM` and renamed over it once complete (a failure leaves `WIM` as it was). The
/// WIM being written is left out of the image when it lies inside `DIR`.
pub fn capture(a: &Args) -> Result<(), Failure> {
    let (dir, wim, props, opts) = parse(a)?;
    let mut copts = capture_options(a, dir)?;
    let wim = &resolve(wim)?;
    if let Ok(m) = std::fs::metadata(wim) {
        copts.config.exclude_file(m.dev(), m.ino());
    }
    let (tmp, f) = TempFile::beside(wim, None)?;
    let (dev, ino) = tmp.id()?;
    copts.config.exclude_file(dev, ino);
    let w = WimWriter::create(f, &opts).map_err(|e| write_failure(&e, wim, wim))?;
    let f = add_and_finish(w, dir, &props, &copts, a, wim)?;
    tmp.commit(&f, wim)
}

/// `append DIR WIM [NAME [DESCRIPTION]]`: adds an image of `DIR` to `WIM` in place (the
/// file's compression is kept).
pub fn append(a: &Args) -> Result<(), Failure> {
    let (dir, wim, props, opts) = parse(a)?;
    let mut copts = capture_options(a, dir)?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(wim)
        .map_err(|e| io_failure(wim, &e))?;
    let m = f.metadata().map_err(|e| io_failure(wim, &e))?;
    copts.config.exclude_file(m.dev(), m.ino());
    let w = WimWriter::append(f, &opts).map_err(|e| write_failure(&e, wim, wim))?;
    add_and_finish(w, dir, &props, &copts, a, wim).map(drop)
}

/// `export SRC IMAGE|all DEST [NAME]`: copies images into DEST, appending if it exists
/// (keeping its compression), else creating it (with `--compress`, default the source's;
/// written beside DEST and renamed there once complete).
///
/// DEST may be SRC itself, by any name (as with `wimlib-imagex export W 1 W NEW`, which
/// duplicates an image): that is an append in place, safe by design. Nothing before the old
/// end of the file but its header is written until the header is committed (a failure puts
/// the header and length back: see `wim_image::write::inplace`); the source parsed its
/// header when opened and reads no further than the size the file had then (its
/// `FileSource` takes the size once); and every blob of the images is in the file already,
/// so only their metadata is read, and only new metadata and tables are written. An image
/// named like one in the file is refused (exit 1) and the file left as it was.
pub fn export(a: &Args) -> Result<(), Failure> {
    a.only_flags(FLAGS)?;
    let (src, sel, dest, name) = match a.positional.as_slice() {
        [s, i, d] => (s, i, d, None),
        [s, i, d, n] => (s, i, d, Some(text(n, "the image name")?)),
        _ => return Err(UsageError("expected SRC IMAGE|all DEST [NAME]".into()).into()),
    };
    let wim = open(src, a)?;
    let src = Path::new(src);
    let images: Vec<u32> = if sel.eq_ignore_ascii_case("all") {
        (1..=wim.image_count()).collect()
    } else {
        vec![image_index(&wim, Some(sel))?]
    };
    if name.is_some() && images.len() > 1 {
        return Err(UsageError("NAME needs a single image".into()).into());
    }
    let dest = Path::new(dest);
    let mut opts = write_options(a)?;
    if a.value(&["--compress"]).is_none() {
        let c = wim.header().compression().ok().flatten();
        opts.compression = c.map(|(codec, _)| codec);
        if a.value(&["--chunk-size"]).is_none() {
            opts.chunk_size = c.map_or(0, |(_, size)| size);
        }
    }
    let (f, tmp) = if dest.exists() {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dest)
            .map_err(|e| io_failure(dest, &e))?;
        (f, None)
    } else {
        let (t, f) = TempFile::beside(dest, None)?;
        (f, Some(t))
    };
    let mut w = if tmp.is_none() {
        WimWriter::append(f, &opts)
    } else {
        WimWriter::create(f, &opts)
    }
    .map_err(|e| write_failure(&e, dest, dest))?;
    let mut bar = Bar::new("export", a.flag(&["-q", "--quiet"]));
    for &i in &images {
        let n = export_image_with_progress(&wim, i, &mut w, name, &mut shown(&mut bar))
            .map_err(|e| write_failure(&e, dest, src))?;
        if a.flag(&["--boot"]) {
            w.set_boot_index(n)
                .map_err(|e| write_failure(&e, dest, src))?;
        }
    }
    let f = w.finish().map_err(|e| write_failure(&e, dest, src))?;
    drop(bar);
    match tmp {
        Some(t) => t.commit(&f, dest),
        None => Ok(()),
    }
}

/// `delete WIM IMAGE|all`: rebuilds WIM without the images into a temporary file beside
/// it, then renames it over the original (a crash leaves the original untouched); with
/// `--soft`, deletes in place instead (the space stays in the file as a hole).
pub fn delete(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["-q", "--quiet", "--check", "--soft"])?;
    let [path, sel] = a.positional(&["WIM", "IMAGE"])? else {
        unreachable!()
    };
    let wim = open(path, a)?;
    let gone: Vec<u32> = if sel.eq_ignore_ascii_case("all") {
        (1..=wim.image_count()).collect()
    } else {
        vec![image_index(&wim, Some(sel))?]
    };
    drop(wim);
    let path = Path::new(path);
    let opts = write_options(a)?;
    if a.flag(&["--soft"]) {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_failure(path, &e))?;
        delete_in_place(f, &gone, &opts).map_err(|e| write_failure(&e, path, path))?;
        return Ok(());
    }
    // (`gone` is sorted: a lookup per image, not a scan.)
    let keep = |i| gone.binary_search(&i).is_err();
    rebuild_into_temp(path, a, &keep, &opts, Recompress::Keep)
}

/// Rebuilds the WIM at `path` (the images `keep` selects) into a temporary file beside it,
/// then renames that over the original: a crash leaves the original untouched. A symbolic
/// link is followed: the file it names is rebuilt and the link stays.
pub(crate) fn rebuild_into_temp(
    path: &Path,
    a: &Args,
    keep: &dyn Fn(u32) -> bool,
    opts: &WriteOptions,
    how: Recompress,
) -> Result<(), Failure> {
    let path = &resolve(path)?;
    let wim = open(path.as_os_str(), a)?;
    let (tmp, f) = TempFile::beside(path, Some(path))?;
    let mut bar = Bar::new("write", a.flag(&["-q", "--quiet"]));
    let f = rebuild_with_progress(&wim, f, keep, opts, how, &mut shown(&mut bar))
        .map_err(|e| write_failure(&e, path, path))?;
    drop(bar);
    drop(wim);
    tmp.commit(&f, path)
}

/// Rebuilds the WIM at `path` with all its images (`update --rebuild`).
pub(crate) fn rebuild_file(path: &Path, a: &Args, opts: &WriteOptions) -> Result<(), Failure> {
    rebuild_into_temp(path, a, &|_| true, opts, Recompress::Keep)
}

/// `optimize WIM`: rebuilds the file without holes, with `--compress=TYPE[:LEVEL]` and
/// `--chunk-size` in a new compression. Data already compressed the way the result is are
/// copied as stored unless `--recompress` is given.
pub fn optimize(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["--check", "--recompress", "--solid", "-q", "--quiet"])?;
    let [path] = a.positional(&["WIM"])? else {
        unreachable!()
    };
    let opts = write_options(a)?;
    let how = match (a.value(&["--compress"]), a.value(&["--chunk-size"])) {
        (None, None) => Recompress::Keep,
        (Some(_), _) => Recompress::To(opts.compression, opts.chunk_size),
        (None, Some(_)) => {
            let wim = open(path, a)?;
            let codec = wim.header().compression().ok().flatten().map(|(c, _)| c);
            Recompress::To(codec, opts.chunk_size)
        }
    };
    let path = Path::new(path);
    let before = std::fs::metadata(path)
        .map_err(|e| io_failure(path, &e))?
        .len();
    rebuild_into_temp(path, a, &|_| true, &opts, how)?;
    let after = std::fs::metadata(path)
        .map_err(|e| io_failure(path, &e))?
        .len();
    if !a.flag(&["-q", "--quiet"]) {
        eprintln!("{before} bytes before, {after} bytes after");
    }
    Ok(())
}

/// `split WIM X.swm MAX_MiB`: writes the parts `X.swm`, `X2.swm`, `X3.swm`… (as wimlib
/// names them), each holding at most MAX_MiB of resources unless a single file is larger.
/// Parts are written to temporary files and renamed once all are complete, all or nothing
/// (see [`TempFile::commit_all`]); a part name that is the source WIM itself (or a link to
/// it) is refused.
pub fn split(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["-q", "--quiet"])?;
    let [src, first, size] = a.positional(&["WIM", "X.swm", "MAX_MiB"])? else {
        unreachable!()
    };
    let size = text(size, "MAX_MiB")?;
    let mib: f64 = size
        .parse()
        .ok()
        .filter(|m: &f64| *m > 0.0 && m.is_finite())
        .ok_or_else(|| UsageError(format!("invalid part size {size:?} (MiB)")))?;
    let max = (mib * 1_048_576.0) as u64;
    let wim = open(src, a)?;
    let src = Path::new(src);
    let source_id = file_id(src)?;
    let first = Path::new(first);
    let is_source = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .is_some_and(|m| (m.dev(), m.ino()) == source_id)
    };
    let refuse = |p: &Path| {
        UsageError(format!(
            "{}: a part would overwrite the WIM being split",
            p.display()
        ))
    };
    if is_source(first) {
        return Err(refuse(first).into());
    }
    let mut made: Vec<(PathBuf, TempFile)> = Vec::new();
    let mut refused = None;
    // Each part is made durable and closed once written: a split into thousands of parts
    // holds one file open.
    let mut finished = |n: u16, f: File| {
        f.sync_all().map_err(|source| WriteError::Source {
            path: if n == 1 {
                first.to_path_buf()
            } else {
                numbered(first, n)
            },
            source,
        })
    };
    let mut bar = Bar::new("split", a.flag(&["-q", "--quiet"]));
    let result = wim_image::write::split::split_into_with_progress(
        &wim,
        max.max(1),
        &mut |n| {
            let p = if n == 1 {
                first.to_path_buf()
            } else {
                numbered(first, n)
            };
            let io = |source| WriteError::Source {
                path: p.clone(),
                source,
            };
            if is_source(&p) {
                refused = Some(p.clone());
                return Err(io(std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
            }
            let (t, f) = TempFile::beside(&p, None)
                .map_err(|f| io(std::io::Error::other(f.message().to_string())))?;
            made.push((p, t));
            Ok(f)
        },
        &mut finished,
        &mut |p| {
            bar.update(p.done, p.total);
            ControlFlow::Continue(())
        },
    );
    drop(bar);
    if let Some(p) = refused {
        return Err(refuse(&p).into());
    }
    let count = usize::from(result.map_err(|e| write_failure(&e, first, src))?);
    drop(wim);
    if count != made.len() {
        return Err(Failure::Io(format!(
            "{}: {count} parts written but {} made",
            first.display(),
            made.len()
        )));
    }
    TempFile::commit_all(made)?;
    if !a.flag(&["-q", "--quiet"]) {
        eprintln!("wrote {count} parts");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wim_image::defs::FileAttributes;
    use wim_image::write::export::export_image;
    use wim_image::write::image::{Content, Inode, NewImage};
    use wim_image::write::NoBlobs;
    use wim_image::{IoError, ReadAt, Wim};

    use super::*;

    /// A file of 2^62 bytes: these, then zeros (no read here straddles their end).
    struct Sparse(Vec<u8>);

    impl ReadAt for Sparse {
        fn size(&self) -> u64 {
            1 << 62
        }

        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
            match self.0.as_slice().read_exact_at(buf, offset) {
                Err(IoError::Eof { .. }) if offset < self.size() => {
                    buf.fill(0);
                    Ok(())
                }
                r => r,
            }
        }
    }

    /// A WIM whose one file's blob claims 2^60 bytes, stored as 2^55 bytes of XPRESS far
    /// out in a sparse file: a blob table the source's writer never wrote.
    fn hostile_source() -> Vec<u8> {
        let opts = WriteOptions {
            compression: Some(Codec::Xpress),
            threads: 1,
            ..WriteOptions::default()
        };
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
        let mut f = Inode::new(FileAttributes::NORMAL, 0, 0, 0);
        f.data = img.add_stream(4, Content::Bytes(Arc::from(&b"data"[..])));
        let f = img.add_inode(f);
        img.add_dentry(0, "f".into(), f);
        let mut w = WimWriter::create(Vec::new(), &opts).unwrap();
        w.add_image(&mut img, &ImageProps::default(), &mut NoBlobs)
            .unwrap();
        let mut wim = w.finish().unwrap();
        // The blob table's header (at 0x30): its size (7 bytes) and offset.
        let size = u64::from_le_bytes(wim[0x30..0x38].try_into().unwrap()) & ((1 << 56) - 1);
        let at = u64::from_le_bytes(wim[0x38..0x40].try_into().unwrap()) as usize;
        let data = wim_image::read::sha1(b"data");
        let entry = wim[at..at + size as usize]
            .chunks_exact(50)
            .position(|e| e[30..] == data)
            .unwrap();
        let e = &mut wim[at + 50 * entry..][..24];
        e[..8].copy_from_slice(&(1u64 << 55 | 0x04 << 56).to_le_bytes());
        e[8..16].copy_from_slice(&(1u64 << 61).to_le_bytes());
        e[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
        wim
    }

    /// Exported, the hostile source's blob runs out of memory reading the source (its chunk
    /// table). That is the source's fault: exit 2 naming SRC. The writer used to run out of
    /// memory first, reserving its own chunk offsets for the claimed size, which wimtool
    /// reported as an I/O error of DEST (exit 3).
    #[test]
    fn an_export_that_runs_out_of_memory_on_a_source_claim_blames_the_source() {
        let src = Wim::open(Sparse(hostile_source())).unwrap();
        for solid in [None, Some((Codec::Xpress, 1 << 15))] {
            let opts = WriteOptions {
                compression: Some(Codec::Lzx),
                solid,
                threads: 1,
                ..WriteOptions::default()
            };
            let mut out = WimWriter::create(Vec::new(), &opts).unwrap();
            let e = export_image(&src, 1, &mut out, None).unwrap_err();
            let f = write_failure(&e, Path::new("dest.wim"), Path::new("src.wim"));
            let m = f.message();
            assert_eq!(f.code(), 2, "{solid:?}: {m}");
            assert!(
                m.starts_with("src.wim: ") && m.contains("cannot allocate"),
                "{m}"
            );
        }
    }
}
