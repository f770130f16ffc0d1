//! The subcommands.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use wim_image::apply::{self, ApplyOptions, ApplyReport};
use wim_image::blob_table::BlobLocation;
use wim_image::defs::{HeaderFlags, ResourceFlags};
use wim_image::{FileSource, Tree, Wim};

use crate::args::{text, Args, UsageError};
use crate::json::Json;
use crate::progress::Bar;
use crate::text::{attribute_names, filetime, hex};

/// Why a command failed; each kind has its exit code.
pub enum Failure {
    /// Bad arguments (1).
    Usage(String),
    /// A corrupt or unusable WIM, or failed verification (2).
    Corrupt(String),
    /// An I/O error (3).
    Io(String),
}

impl Failure {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 1,
            Failure::Corrupt(_) => 2,
            Failure::Io(_) => 3,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Corrupt(m) | Failure::Io(m) => m,
        }
    }
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e.0)
    }
}

/// An error and its causes, joined with `: `; a cause whose text the message before it
/// already ends with (an error that prints its source itself) is not repeated.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    for e in std::iter::successors(Some(e), |e| e.source()) {
        let t = e.to_string();
        if out.is_empty() {
            out = t;
        } else if !out.ends_with(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
    }
    out
}

pub fn corrupt(e: &dyn std::error::Error) -> Failure {
    Failure::Corrupt(with_causes(e))
}

pub fn io_failure(what: &Path, e: &dyn std::error::Error) -> Failure {
    Failure::Io(format!("{}: {}", what.display(), with_causes(e)))
}

/// Runs `command` with its arguments.
pub fn run(command: &str, rest: &[OsString]) -> Result<(), Failure> {
    let with_value = [
        "--threads",
        "--ref",
        "--dest-dir",
        "--compress",
        "--chunk-size",
        "--solid-compress",
        "--solid-chunk-size",
        "--command",
        "--config",
        "--wimboot-config",
    ];
    // Options whose values are file names (or, for --command, image paths): any bytes.
    let paths = [
        "--ref",
        "--dest-dir",
        "--command",
        "--config",
        "--wimboot-config",
    ];
    let a = Args::parse(rest, &with_value, &paths)?;
    // The value options each command uses (the others are refused, not ignored).
    let values: &[&str] = match command {
        "info" | "dir" | "verify" => &["--ref"],
        "extract" => &["--ref", "--threads", "--dest-dir"],
        "apply" => &["--ref", "--threads"],
        "capture" | "append" => &[
            "--threads",
            "--compress",
            "--chunk-size",
            "--solid-compress",
            "--solid-chunk-size",
            "--config",
        ],
        "export" => &[
            "--ref",
            "--threads",
            "--compress",
            "--chunk-size",
            "--solid-compress",
            "--solid-chunk-size",
        ],
        "delete" => &["--ref", "--threads"],
        "update" => &["--threads", "--command", "--config", "--wimboot-config"],
        "optimize" => &[
            "--threads",
            "--compress",
            "--chunk-size",
            "--solid-compress",
            "--solid-chunk-size",
        ],
        "split" => &["--ref"],
        _ => &[],
    };
    a.only_values(values)?;
    match command {
        "info" => info(&a),
        "dir" => dir(&a),
        "extract" => extract(&a),
        "apply" => apply_cmd(&a),
        "verify" => verify(&a),
        "capture" => crate::write::capture(&a),
        "append" => crate::write::append(&a),
        "export" => crate::write::export(&a),
        "delete" => crate::write::delete(&a),
        "update" => crate::update::update(&a),
        "optimize" => crate::write::optimize(&a),
        "split" => crate::write::split(&a),
        other => Err(UsageError(format!("unknown command {other:?}")).into()),
    }
}

/// An open WIM (or split set) on files.
pub type W = Wim<FileSource>;

/// Opens a WIM; for a split set, the other parts come from `--ref` or sit beside the first
/// as `NAME2.swm`, `NAME3.swm` …
pub fn open(path: &OsStr, a: &Args) -> Result<W, Failure> {
    let p = Path::new(path);
    let first = FileSource::open(p).map_err(|e| io_failure(p, &e))?;
    let wim = match Wim::open(first) {
        Err(wim_image::OpenError::SplitSet { .. }) => None,
        r => Some(r.map_err(|e| corrupt_file(p, &e))?),
    };
    if let Some(w) = wim {
        return Ok(w);
    }
    let mut parts = vec![p.to_path_buf()];
    match a.value_os(&["--ref"]) {
        Some(glob) => {
            // Every file once, the first part (however the glob spells it) not again.
            let mut seen = vec![file_id(p)?];
            for q in expand_glob(Path::new(glob))? {
                let id = file_id(&q)?;
                if !seen.contains(&id) {
                    seen.push(id);
                    parts.push(q);
                }
            }
        }
        None => {
            for n in 2.. {
                let q = numbered(p, n);
                if !q.exists() {
                    break;
                }
                parts.push(q);
            }
        }
    }
    let mut sources = Vec::new();
    for q in &parts {
        sources.push(FileSource::open(q).map_err(|e| io_failure(q, &e))?);
    }
    Wim::open_parts(sources).map_err(|e| corrupt_file(p, &e))
}

/// A corrupt or unusable WIM file, named.
pub fn corrupt_file(p: &Path, e: &dyn std::error::Error) -> Failure {
    Failure::Corrupt(format!("{}: {}", p.display(), with_causes(e)))
}

/// `x.swm` → `x2.swm` (`n` = 2): the name wimlib gives part `n` of a split set.
pub fn numbered(first: &Path, n: u16) -> PathBuf {
    let stem = first.file_stem().unwrap_or_default().as_bytes();
    let mut name = stem.to_vec();
    name.extend_from_slice(n.to_string().as_bytes());
    if let Some(ext) = first.extension() {
        name.push(b'.');
        name.extend_from_slice(ext.as_bytes());
    }
    first.with_file_name(OsStr::from_bytes(&name))
}

/// The (device, inode) of a file, following symbolic links.
pub fn file_id(p: &Path) -> Result<(u64, u64), Failure> {
    let m = std::fs::metadata(p).map_err(|e| io_failure(p, &e))?;
    Ok((m.dev(), m.ino()))
}

/// The files a `--ref` pattern names: its directory part is taken as it is, its file name
/// may hold `*` (any run of bytes), `?` (any one byte) and `[...]` (one byte of the set:
/// ranges `a-z`, `!` or `^` first negates; `]` first is literal). A pattern without these
/// names one file. Files starting with `.` match only a pattern starting with `.`.
fn expand_glob(g: &Path) -> Result<Vec<PathBuf>, Failure> {
    let name = g.file_name().unwrap_or_default().as_bytes();
    if !name.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
        return Ok(vec![g.to_path_buf()]);
    }
    let dir = g
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_failure(dir, &e))? {
        let e = e.map_err(|e| io_failure(dir, &e))?;
        let n = e.file_name();
        let n = n.as_bytes();
        if (n.first() != Some(&b'.') || name.first() == Some(&b'.')) && glob_match(name, n) {
            out.push(e.path());
        }
    }
    if out.is_empty() {
        return Err(Failure::Io(format!("{}: no file matches", g.display())));
    }
    out.sort();
    Ok(out)
}

/// Whether `name` matches the shell pattern `pat` (see [`expand_glob`]).
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    // Backtracking on the last `*` only: linear in practice, no recursion.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(&pat[p..], name[n])
                .map(|(ok, len)| (ok, p + len))
                .and_then(|(ok, next)| ok.then_some(next)),
            Some(&c) if c == name[n] => Some(p + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pat` against byte `c`: (matches, pattern bytes used),
/// or `None` when the `[` opens no class (then it is a literal `[`).
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = pat.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pat[i + 2];
            hit |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

/// An image given by 1-based index or by name.
pub fn image_index(wim: &W, sel: Option<&OsString>) -> Result<u32, Failure> {
    let Some(sel) = sel else { return Ok(1) };
    let sel = text(sel, "the image")?;
    if let Ok(i) = sel.parse::<u32>() {
        if i >= 1 && i <= wim.image_count() {
            return Ok(i);
        }
    }
    for i in 1..=wim.image_count() {
        if wim.xml().image(i).and_then(|x| x.name()).as_deref() == Some(sel) {
            return Ok(i);
        }
    }
    Err(UsageError(format!("no image {sel:?}")).into())
}

fn compression_name(wim: &W) -> &'static str {
    let f = wim.header().flags;
    if !f.contains(HeaderFlags::COMPRESSION) {
        "None"
    } else if f.contains(HeaderFlags::COMPRESS_LZMS) {
        "LZMS"
    } else if f.contains(HeaderFlags::COMPRESS_LZX) {
        "LZX"
    } else {
        "XPRESS"
    }
}

fn info(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["--json", "--xml", "-q", "--quiet"])?;
    let [path] = a.positional(&["WIM"])? else {
        unreachable!()
    };
    let wim = open(path, a)?;
    if a.flag(&["--xml"]) {
        println!("{}", wim.xml().to_xml_string());
        return Ok(());
    }
    let h = wim.header();
    let size: u64 = (1..=wim.part_count() as u16)
        .filter_map(|p| wim.part(p))
        .map(wim_image::ReadAt::size)
        .sum();
    let mut attrs = Vec::new();
    if !h.integrity.is_empty() {
        attrs.push("Integrity info");
    }
    // wimlib-imagex's order.
    if h.pipable {
        attrs.push("Pipable");
    }
    if h.flags.contains(HeaderFlags::RP_FIX) {
        attrs.push("Relative path junction");
    }
    if h.flags.contains(HeaderFlags::READONLY) {
        attrs.push("Readonly");
    }
    let chunk = h.compression().ok().flatten().map_or(0, |(_, c)| c);
    if a.flag(&["--json"]) {
        let images = (1..=wim.image_count())
            .map(|i| {
                let x = wim.xml().image(i);
                let s = |v: Option<String>| v.map_or(Json::Null, Json::Str);
                let n = |v: Option<u64>| v.map_or(Json::Null, Json::Num);
                Json::Obj(vec![
                    ("index", Json::Num(i as u64)),
                    ("name", s(x.and_then(|x| x.name()))),
                    ("description", s(x.and_then(|x| x.description()))),
                    ("dir_count", n(x.and_then(|x| x.dir_count()))),
                    ("file_count", n(x.and_then(|x| x.file_count()))),
                    ("total_bytes", n(x.and_then(|x| x.total_bytes()))),
                    ("hard_link_bytes", n(x.and_then(|x| x.hard_link_bytes()))),
                    ("creation_time", n(x.and_then(|x| x.creation_time()))),
                ])
            })
            .collect();
        let j = Json::Obj(vec![
            ("path", Json::Str(path.to_string_lossy().into_owned())),
            ("guid", Json::Str(hex(&h.guid))),
            ("version", Json::Num(h.version.0 as u64)),
            ("image_count", Json::Num(h.image_count as u64)),
            ("compression", Json::Str(compression_name(&wim).into())),
            ("chunk_size", Json::Num(chunk as u64)),
            ("part_number", Json::Num(h.part_number as u64)),
            ("total_parts", Json::Num(h.total_parts as u64)),
            ("boot_index", Json::Num(h.boot_index as u64)),
            ("size", Json::Num(size)),
            (
                "total_bytes",
                wim.xml().total_bytes().map_or(Json::Null, Json::Num),
            ),
            ("flags", Json::Num(h.flags.bits() as u64)),
            (
                "attributes",
                Json::Arr(attrs.iter().map(|s| Json::Str((*s).into())).collect()),
            ),
            ("blobs", Json::Num(wim.blob_table().blobs.len() as u64)),
            ("images", Json::Arr(images)),
            ("xml", Json::Str(wim.xml().to_xml_string())),
        ]);
        println!("{}", j.render());
        return Ok(());
    }
    println!("WIM Information:\n----------------");
    println!("Path:           {}", Path::new(path).display());
    println!("GUID:           0x{}", hex(&h.guid));
    println!("Version:        {}", h.version.0);
    println!("Image Count:    {}", h.image_count);
    println!("Compression:    {}", compression_name(&wim));
    println!("Chunk Size:     {chunk} bytes");
    println!("Part Number:    {}/{}", h.part_number, h.total_parts);
    println!("Boot Index:     {}", h.boot_index);
    // As wimlib-imagex: the WIM's TOTALBYTES from the XML (the bytes before the XML), the
    // file size only when the XML has none.
    println!(
        "Size:           {} bytes",
        wim.xml().total_bytes().unwrap_or(size)
    );
    println!("Attributes:     {}", attrs.join(", "));
    println!("\nAvailable Images:\n-----------------");
    for i in 1..=wim.image_count() {
        let Some(x) = wim.xml().image(i) else {
            println!("Index:                  {i}\n");
            continue;
        };
        println!("Index:                  {i}");
        println!("Name:                   {}", x.name().unwrap_or_default());
        println!(
            "Description:            {}",
            x.description().unwrap_or_default()
        );
        if let Some(v) = x.display_name() {
            println!("Display Name:           {v}");
        }
        println!("Directory Count:        {}", x.dir_count().unwrap_or(0));
        println!("File Count:             {}", x.file_count().unwrap_or(0));
        println!("Total Bytes:            {}", x.total_bytes().unwrap_or(0));
        println!(
            "Hard Link Bytes:        {}",
            x.hard_link_bytes().unwrap_or(0)
        );
        println!(
            "Creation Time:          {}",
            filetime(x.creation_time().unwrap_or(0))
        );
        println!(
            "Last Modification Time: {}",
            filetime(x.last_modification_time().unwrap_or(0))
        );
        println!(
            "WIMBoot compatible:     {}",
            if x.wimboot() { "yes" } else { "no" }
        );
        println!();
    }
    Ok(())
}

/// The blob lines of `dir --detailed` for the stream with hash `h`, as `wimlib-imagex dir
/// --detailed` prints them (zeros for an empty stream).
fn blob_details(out: &mut String, wim: &W, h: &[u8; 20]) {
    let Some(b) = wim.blob(h) else {
        let _ = writeln!(
            out,
            "Uncompressed size = 0 bytes\nCompressed size   = 0 bytes\nOffset in WIM     = 0 bytes\nPart Number       = 0\nReference Count   = 0\nFlags             = \n"
        );
        return;
    };
    let _ = writeln!(out, "Uncompressed size = {} bytes", b.size);
    let (part, flags) = match b.location {
        BlobLocation::Resource { part, reshdr } => {
            let _ = writeln!(out, "Compressed size   = {} bytes", reshdr.size_in_wim);
            let _ = writeln!(out, "Offset in WIM     = {} bytes", reshdr.offset);
            (part, reshdr.flags)
        }
        BlobLocation::Solid { run, .. } => {
            if let Some((res, size, offset)) = wim.solid_location(b) {
                let _ = writeln!(
                    out,
                    "Solid resource    = {size} => {} bytes @ offset {}",
                    res.size_in_wim, res.offset
                );
                let _ = writeln!(out, "Solid offset      = {offset} bytes");
            }
            let runs = &wim.blob_table().solid_runs;
            let part = runs.get(run as usize).map_or(0, |r| r.part);
            (part, ResourceFlags::SOLID)
        }
    };
    let _ = writeln!(out, "Part Number       = {part}");
    let _ = writeln!(out, "Reference Count   = {}", b.ref_count);
    let mut names = String::new();
    for (flag, name) in [
        (ResourceFlags::FREE, "WIM_RESHDR_FLAG_FREE"),
        (ResourceFlags::METADATA, "WIM_RESHDR_FLAG_METADATA"),
        (ResourceFlags::COMPRESSED, "WIM_RESHDR_FLAG_COMPRESSED"),
        (ResourceFlags::SPANNED, "WIM_RESHDR_FLAG_SPANNED"),
        (ResourceFlags::SOLID, "WIM_RESHDR_FLAG_SOLID"),
    ] {
        if flags.contains(flag) {
            names.push_str(name);
            names.push_str("  ");
        }
    }
    let _ = writeln!(out, "Flags             = {names}\n");
}

fn load(wim: &W, index: u32) -> Result<Tree, Failure> {
    wim.image(index).map_err(|e| corrupt(&e))
}

/// The command's `-q`/`--quiet`.
fn quiet(a: &Args) -> bool {
    a.flag(&["-q", "--quiet"])
}

fn dir(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["--detailed", "-q", "--quiet"])?;
    let (path, sel) = match a.positional.as_slice() {
        [p] => (p, None),
        [p, i] => (p, Some(i)),
        _ => return Err(UsageError("expected WIM [IMAGE]".into()).into()),
    };
    let wim = open(path, a)?;
    let tree = load(&wim, image_index(&wim, sel)?)?;
    let detailed = a.flag(&["--detailed"]);
    // Dentries per hard-link group: the inode's link count.
    let mut links: std::collections::BTreeMap<u64, u32> = std::collections::BTreeMap::new();
    if detailed {
        for id in tree.walk() {
            let g = tree.node(id).dentry.link_group;
            if g != 0 {
                *links.entry(g).or_default() += 1;
            }
        }
    }
    // Paths are written as bytes: a name that is not valid UTF-16 as WTF-8, as wimlib does.
    let mut bytes: Vec<u8> = Vec::new();
    let mut out = String::new();
    for id in tree.walk() {
        let p = path_bytes(&tree, id);
        if !detailed {
            bytes.extend_from_slice(&p);
            bytes.push(b'\n');
            continue;
        }
        let d = &tree.node(id).dentry;
        let _ = writeln!(out, "{}", "-".repeat(76));
        out.push_str("Full Path           = \"");
        bytes.extend_from_slice(out.as_bytes());
        bytes.extend_from_slice(&p);
        out.clear();
        out.push_str("\"\n");
        let _ = writeln!(out, "Short Name          = \"{}\"", d.short_name);
        let _ = writeln!(out, "Attributes          = 0x{:08x}", d.attributes.bits());
        for n in attribute_names(d.attributes) {
            let _ = writeln!(out, "    {n} is set");
        }
        let _ = writeln!(out, "Creation Time       = {}", filetime(d.creation_time));
        let _ = writeln!(out, "Last Write Time     = {}", filetime(d.last_write_time));
        let _ = writeln!(
            out,
            "Last Access Time    = {}",
            filetime(d.last_access_time)
        );
        if let Some(r) = d.reparse {
            let _ = writeln!(out, "Reparse Tag         = 0x{:08x}", r.tag.0);
        }
        let _ = writeln!(out, "Link Group ID       = 0x{:016x}", d.link_group);
        let count = links.get(&d.link_group).copied().unwrap_or(1);
        let _ = writeln!(out, "Link Count          = {count}");
        if let Some(u) = d.unix_data() {
            let _ = writeln!(
                out,
                "UNIX Data           = uid:{} gid:{} mode:0{:o} rdev:0x{:x}",
                u.uid, u.gid, u.mode, u.rdev
            );
        }
        let mut stream = |label: &str, h: &[u8; 20]| {
            let _ = writeln!(out, "\t{label}:\nHash              = 0x{}", hex(h));
            blob_details(&mut out, &wim, h);
        };
        if let Some(h) = &d.reparse_data {
            stream("Reparse point stream", h);
        }
        // As wimlib lists an inode's streams: a reparse point's empty unnamed stream is not
        // one (a directory's is).
        if let Some(h) = d
            .data
            .as_ref()
            .filter(|h| d.reparse.is_none() || **h != [0; 20])
        {
            stream("Unnamed data stream", h);
        }
        for s in &d.named_streams {
            stream(&format!("Named data stream \"{}\"", s.name), &s.hash);
        }
        bytes.extend_from_slice(out.as_bytes());
        out.clear();
    }
    use std::io::Write as _;
    // As `print!` would, but a closed pipe ends the listing quietly.
    let _ = std::io::stdout().lock().write_all(&bytes);
    Ok(())
}

/// The path of `id` as `Tree::path` gives it, but with every name as its Linux file name
/// (WTF-8 for names that are not valid UTF-16).
fn path_bytes(tree: &Tree, id: wim_image::NodeId) -> Vec<u8> {
    let mut names = Vec::new();
    let mut cur = id;
    while cur != 0 {
        let n = tree.node(cur);
        names.push(n.dentry.name_wtf8());
        cur = n.parent;
    }
    let mut p = Vec::new();
    for n in names.iter().rev() {
        p.push(b'/');
        p.extend_from_slice(n);
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p
}

/// `--threads N` (0 or absent: all cores); more than
/// [`MAX_THREADS`](wim_image::write::MAX_THREADS) are not used.
pub fn threads(a: &Args) -> Result<usize, Failure> {
    match a.value(&["--threads"]) {
        Some(t) => Ok(t
            .parse::<usize>()
            .map_err(|_| UsageError(format!("invalid thread count {t:?}")))?
            .min(wim_image::write::MAX_THREADS)),
        None => Ok(0),
    }
}

fn options(a: &Args) -> Result<ApplyOptions, Failure> {
    let threads = threads(a)?;
    let rpfix = if a.flag(&["--rpfix"]) {
        Some(true)
    } else if a.flag(&["--norpfix"]) {
        Some(false)
    } else {
        None
    };
    Ok(ApplyOptions {
        threads,
        unix_data: a.flag(&["--unix-data"]),
        rpfix,
        memory_limit: None,
    })
}

/// What an apply or extract left out, and decoder threads fitted to the memory.
fn report_skipped(r: &ApplyReport) {
    if r.threads.reduced() {
        eprintln!("{}", crate::write::fewer_threads_note("decoder", r.threads));
    }
    let s = &r.skipped;
    let items = [
        (s.named_streams, "named data streams"),
        (s.security_descriptors, "security descriptors"),
        (s.short_names, "short names"),
        (s.object_ids, "object IDs"),
        (s.xattrs, "extended attribute sets"),
        (s.other_tagged_items, "other tagged metadata items"),
        (s.attributes, "files with Windows attributes"),
        (s.encrypted, "encrypted files"),
        (s.reparse_points, "non-link reparse points"),
        (s.extra_streams, "extra unnamed streams"),
        (s.special_files, "special files"),
        (s.owners, "owners"),
    ];
    for (n, what) in items {
        if n > 0 {
            eprintln!("skipped: {n} {what} (not representable in a Linux directory)");
        }
    }
}

fn apply_failure(e: &apply::ApplyError, wim: &OsStr) -> Failure {
    match e {
        apply::ApplyError::Io { path, source } => io_failure(path, source),
        // A path the user named that the image lacks: a usage error, not corruption.
        apply::ApplyError::NotFound { .. } => Failure::Usage(with_causes(e)),
        e => corrupt_file(Path::new(wim), e),
    }
}

fn apply_cmd(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["--unix-data", "--rpfix", "--norpfix", "-q", "--quiet"])?;
    let (path, sel, dest) = match a.positional.as_slice() {
        [p, d] => (p, None, d),
        [p, i, d] => (p, Some(i), d),
        _ => return Err(UsageError("expected WIM [IMAGE] DIR".into()).into()),
    };
    let wim = open(path, a)?;
    let index = image_index(&wim, sel)?;
    let opts = options(a)?;
    let mut bar = Bar::new("apply", a.flag(&["-q", "--quiet"]));
    let r = apply::apply(&wim, index, Path::new(dest), &opts, &mut |p| {
        bar.update(p.done, p.total);
        std::ops::ControlFlow::Continue(())
    })
    .map_err(|e| apply_failure(&e, path))?;
    drop(bar);
    report_skipped(&r);
    Ok(())
}

fn extract(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["--unix-data", "--rpfix", "--norpfix", "-q", "--quiet"])?;
    let [path, sel, paths @ ..] = a.positional.as_slice() else {
        return Err(UsageError("expected WIM IMAGE PATH...".into()).into());
    };
    if paths.is_empty() {
        return Err(UsageError("expected WIM IMAGE PATH...".into()).into());
    }
    let wim = open(path, a)?;
    let index = image_index(&wim, Some(sel))?;
    let dest = a.value_os(&["--dest-dir"]).unwrap_or(OsStr::new("."));
    let opts = options(a)?;
    // Paths in the image as bytes: WTF-8 reaches a name with an unpaired surrogate.
    let list: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
    let mut bar = Bar::new("extract", quiet(a));
    let r = apply::extract_wtf8(&wim, index, &list, Path::new(dest), &opts, &mut |p| {
        bar.update(p.done, p.total);
        std::ops::ControlFlow::Continue(())
    })
    .map_err(|e| apply_failure(&e, path))?;
    drop(bar);
    report_skipped(&r);
    Ok(())
}

fn verify(a: &Args) -> Result<(), Failure> {
    a.only_flags(&["-q", "--quiet"])?;
    let [path] = a.positional(&["WIM"])? else {
        unreachable!()
    };
    let wim = open(path, a)?;
    let mut bar = Bar::new("verify", a.flag(&["-q", "--quiet"]));
    let r = wim.verify(&mut |p| bar.update(p.done, p.total));
    drop(bar);
    for p in &r.problems {
        eprintln!("{p}");
    }
    if r.unlisted > 0 {
        eprintln!("({} more problem(s) not listed)", r.unlisted);
    }
    if !r.is_ok() {
        return Err(Failure::Corrupt(format!(
            "{} problem(s) found",
            r.problems.len() as u64 + r.unlisted
        )));
    }
    println!(
        "\"{}\" was successfully verified ({} blobs, {} bytes{})",
        Path::new(path).display(),
        r.blobs,
        r.bytes,
        if r.integrity_checked {
            ", integrity table checked"
        } else {
            ""
        }
    );
    Ok(())
}
