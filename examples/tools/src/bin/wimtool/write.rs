//! The subcommands that write: `capture`, `append`, `export` and `delete` (`update` has its
//! own module).

use std::fs::{File, OpenOptions};
use std::path::Path;

use wim_image::codec::Codec;
use wim_image::write::capture::{capture_image, CaptureError, CaptureOptions, CaptureReport};
use wim_image::write::config::CaptureConfig;
use wim_image::write::export::{export_image, rebuild, Recompress};
use wim_image::write::inplace::delete_in_place;
use wim_image::write::{ImageProps, WimWriter, WriteError, WriteOptions};

use crate::args::{parse_size, Args, UsageError};
use crate::commands::{corrupt, image_index, io_failure, open, with_causes, Failure};

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

pub(crate) fn write_options(a: &Args) -> Result<WriteOptions, Failure> {
    let (mut codec, level) = compression(a)?;
    let solid = solid_options(a)?;
    if solid.is_some() && a.value(&["--compress"]).is_none() {
        // wimlib's `--solid` alone: LZMS (128K chunks) for the metadata too.
        codec = Some(Codec::Lzms);
    }
    let chunk_size = size_option(a, "--chunk-size")?;
    let threads = match a.value(&["--threads"]) {
        Some(t) => t
            .parse()
            .map_err(|_| UsageError(format!("invalid thread count {t:?}")))?,
        None => 0,
    };
    Ok(WriteOptions {
        compression: codec,
        chunk_size,
        solid,
        level: level.unwrap_or(50),
        threads,
        integrity: a.flag(&["--check"]),
        rp_fix: !a.flag(&["--norpfix"]),
        copy_stored: !a.flag(&["--recompress"]),
        ..WriteOptions::default()
    })
}

/// NAME and DESCRIPTION after the two paths; the name defaults to the directory's name.
fn props(dir: &Path, rest: &[String]) -> Result<ImageProps, Failure> {
    if rest.len() > 2 {
        return Err(UsageError("too many arguments".into()).into());
    }
    let name = match rest.first() {
        Some(n) => n.clone(),
        None => std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    };
    Ok(ImageProps {
        name,
        description: rest.get(1).cloned(),
        flags: None,
    })
}

pub(crate) fn write_failure(e: &WriteError, wim: &Path) -> Failure {
    match e {
        WriteError::Open(_) | WriteError::NotModifiable { .. } => {
            Failure::Corrupt(format!("{}: {}", wim.display(), with_causes(e)))
        }
        WriteError::CodecUnavailable { .. }
        | WriteError::ChunkSize { .. }
        | WriteError::DuplicateName { .. } => Failure::Usage(with_causes(e)),
        _ => io_failure(wim, e),
    }
}

pub(crate) fn capture_failure(e: &CaptureError, wim: &Path) -> Failure {
    match e {
        CaptureError::Write(w) => write_failure(w, wim),
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
    let Some(file) = a.value(&["--config"]) else {
        return Ok(CaptureConfig::default());
    };
    let p = Path::new(file);
    let bytes = std::fs::read(p).map_err(|e| io_failure(p, &e))?;
    let (config, warnings) =
        CaptureConfig::parse(&bytes).map_err(|e| UsageError(format!("{file}: {e}")))?;
    for w in warnings {
        eprintln!("{file}: {w}");
    }
    Ok(config)
}

/// Captures `dir` into the writer, sets the boot index if asked, and commits.
fn add_and_finish(
    mut w: WimWriter<File>,
    dir: &Path,
    props: &ImageProps,
    a: &Args,
    wim: &Path,
) -> Result<(), Failure> {
    let copts = CaptureOptions {
        rp_fix: !a.flag(&["--norpfix"]),
        unix_data: a.flag(&["--unix-data"]),
        dereference: a.flag(&["--dereference"]),
        config: capture_config(a)?,
    };
    let (index, r) =
        capture_image(&mut w, dir, props, &copts).map_err(|e| capture_failure(&e, wim))?;
    if a.flag(&["--boot"]) {
        w.set_boot_index(index)
            .map_err(|e| write_failure(&e, wim))?;
    }
    w.finish().map_err(|e| write_failure(&e, wim))?;
    report(&r, a.flag(&["-q", "--quiet"]));
    Ok(())
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

/// `capture DIR WIM [NAME [DESCRIPTION]]`: a new WIM holding one image of `DIR`.
pub fn capture(a: &Args) -> Result<(), Failure> {
    let (dir, wim, props, opts) = parse(a)?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(wim)
        .map_err(|e| io_failure(wim, &e))?;
    let result = WimWriter::create(f, &opts)
        .map_err(|e| write_failure(&e, wim))
        .and_then(|w| add_and_finish(w, dir, &props, a, wim));
    if result.is_err() {
        let _ = std::fs::remove_file(wim);
    }
    result
}

/// `append DIR WIM [NAME [DESCRIPTION]]`: adds an image of `DIR` to `WIM` in place (the
/// file's compression is kept).
pub fn append(a: &Args) -> Result<(), Failure> {
    let (dir, wim, props, opts) = parse(a)?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(wim)
        .map_err(|e| io_failure(wim, &e))?;
    let w = WimWriter::append(f, &opts).map_err(|e| write_failure(&e, wim))?;
    add_and_finish(w, dir, &props, a, wim)
}

/// `export SRC IMAGE|all DEST [NAME]`: copies images into DEST, appending if it exists
/// (keeping its compression), else creating it (with `--compress`, default the source's).
pub fn export(a: &Args) -> Result<(), Failure> {
    a.only_flags(FLAGS)?;
    let (src, sel, dest, name) = match a.positional.as_slice() {
        [s, i, d] => (s, i, d, None),
        [s, i, d, n] => (s, i, d, Some(n.as_str())),
        _ => return Err(UsageError("expected SRC IMAGE|all DEST [NAME]".into()).into()),
    };
    let wim = open(src, a)?;
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
    let existing = dest.exists();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(!existing)
        .open(dest)
        .map_err(|e| io_failure(dest, &e))?;
    let result = (|| {
        let mut w = if existing {
            WimWriter::append(f, &opts)
        } else {
            WimWriter::create(f, &opts)
        }
        .map_err(|e| write_failure(&e, dest))?;
        for &i in &images {
            let n = export_image(&wim, i, &mut w, name).map_err(|e| write_failure(&e, dest))?;
            if a.flag(&["--boot"]) {
                w.set_boot_index(n).map_err(|e| write_failure(&e, dest))?;
            }
        }
        w.finish().map_err(|e| write_failure(&e, dest))?;
        Ok(())
    })();
    if result.is_err() && !existing {
        let _ = std::fs::remove_file(dest);
    }
    result
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
        delete_in_place(f, &gone, &opts).map_err(|e| write_failure(&e, path))?;
        return Ok(());
    }
    rebuild_into_temp(path, a, &|i| !gone.contains(&i), &opts, Recompress::Keep)
}

/// Rebuilds the WIM at `path` (the images `keep` selects) into a temporary file beside it,
/// then renames that over the original: a crash leaves the original untouched.
pub(crate) fn rebuild_into_temp(
    path: &Path,
    a: &Args,
    keep: &dyn Fn(u32) -> bool,
    opts: &WriteOptions,
    how: Recompress,
) -> Result<(), Failure> {
    let wim = open(&path.to_string_lossy(), a)?;
    let tmp = path.with_file_name(format!(
        ".{}.wimtool-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_failure(&tmp, &e))?;
    let result = rebuild(&wim, f, keep, opts, how)
        .map_err(|e| write_failure(&e, path))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| io_failure(path, &e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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

/// The name of part `n` of a split set whose first part is `first`: `x.swm`, `x2.swm`, …
fn part_name(first: &Path, n: u16) -> std::path::PathBuf {
    if n == 1 {
        return first.to_path_buf();
    }
    let stem = first.file_stem().unwrap_or_default().to_string_lossy();
    let name = match first.extension() {
        Some(ext) => format!("{stem}{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}{n}"),
    };
    first.with_file_name(name)
}

/// `split WIM X.swm MAX_MiB`: writes the parts `X.swm`, `X2.swm`, `X3.swm`… (as wimlib
/// names them), each holding at most MAX_MiB of resources unless a single file is larger.
pub fn split(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["-q", "--quiet"])?;
    let [src, first, size] = a.positional(&["WIM", "X.swm", "MAX_MiB"])? else {
        unreachable!()
    };
    let mib: f64 = size
        .parse()
        .ok()
        .filter(|m: &f64| *m > 0.0 && m.is_finite())
        .ok_or_else(|| UsageError(format!("invalid part size {size:?} (MiB)")))?;
    let max = (mib * 1_048_576.0) as u64;
    let wim = open(src, a)?;
    let first = Path::new(first);
    let mut made = Vec::new();
    let result = wim_image::write::split::split(&wim, max.max(1), &mut |n| {
        let p = part_name(first, n);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .map_err(|source| WriteError::Source {
                path: p.clone(),
                source,
            })?;
        made.push(p);
        Ok(f)
    });
    match result {
        Ok(parts) => {
            if !a.flag(&["-q", "--quiet"]) {
                eprintln!("wrote {} parts", parts.len());
            }
            Ok(())
        }
        Err(e) => {
            for p in &made {
                let _ = std::fs::remove_file(p);
            }
            Err(write_failure(&e, first))
        }
    }
}
