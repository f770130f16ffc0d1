//! The subcommands.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use vhd_format::defs::{DiskType, FOOTER_COOKIE, MAX_DISK_SIZE};
use vhd_format::ops::{self, ExtentState, Severity, Target};
use vhd_format::{
    create_differencing, create_dynamic, create_fixed, parent_link, CreateOptions, Disk, DiskError,
    OpenOptions, ParentPolicy, RawDisk, SizePolicy, SnapshotError, Storage, Vhd,
};

use crate::args::{parse_byte, parse_size, utf8, Args, UsageError};
use crate::json::Json;
use crate::output::{Existing, NewFile};
use crate::progress::Bar;

/// A failed command: exit code and message. Code 0 ends the command early but successfully
/// (standard output was closed, as by `| head`).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Self {
            code: 1,
            message: e.0,
        }
    }
}

/// `println!` that fails the command on an error writing standard output, except that a
/// closed standard output (`| head`) ends it successfully.
macro_rules! out {
    ($($arg:tt)*) => {
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            return Err(stdout_fail(e));
        }
    };
}

fn stdout_fail(e: std::io::Error) -> Failure {
    if e.kind() == ErrorKind::BrokenPipe {
        Failure {
            code: 0,
            message: String::new(),
        }
    } else {
        io_fail(Path::new("<stdout>"), e)
    }
}

/// Formats an error with its chain of causes.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Whether an error chain bottoms out in the storage (exit 3) rather than in the image (exit 2).
fn is_io(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        cur = c.source();
    }
    false
}

fn fail(e: impl std::error::Error + 'static) -> Failure {
    Failure {
        code: if is_io(&e) { 3 } else { 2 },
        message: chain(&e),
    }
}

pub fn io_fail(path: &Path, e: std::io::Error) -> Failure {
    Failure {
        code: 3,
        message: format!("{}: {e}", path.display()),
    }
}

/// A path argument, for messages.
fn show(path: &OsStr) -> std::path::Display<'_> {
    Path::new(path).display()
}

const COMMON_VALUES: &[&str] = &["--size-policy", "--parent-dir"];
const COMMON_FLAGS: &[&str] = &["--parent-anywhere", "-q", "--quiet"];

struct Common {
    policy: ParentPolicy,
    size_policy: SizePolicy,
    quiet: bool,
}

fn common(a: &Args, extra_flags: &[&str]) -> Result<Common, Failure> {
    let known: Vec<&str> = COMMON_FLAGS.iter().chain(extra_flags).copied().collect();
    a.only_flags(&known)?;
    let mut policy = if a.flag(&["--parent-anywhere"]) {
        ParentPolicy::anywhere()
    } else {
        ParentPolicy::default()
    };
    if let Some(dir) = a.value_os(&["--parent-dir"]) {
        policy = policy.allow_dir(dir);
    }
    let size_policy = match a.value(&["--size-policy"])?.unwrap_or("current") {
        "current" => SizePolicy::CurrentSize,
        "chs" => SizePolicy::Chs,
        "qemu" => SizePolicy::Qemu,
        other => return Err(UsageError(format!("unknown size policy {other:?}")).into()),
    };
    Ok(Common {
        policy,
        size_policy,
        quiet: a.flag(&["-q", "--quiet"]),
    })
}

fn parse(rest: &[OsString], values: &[&str]) -> Result<Args, Failure> {
    let all: Vec<&str> = COMMON_VALUES.iter().chain(values).copied().collect();
    Ok(Args::parse(rest, &all)?)
}

fn open(path: &OsStr, c: &Common, writable: bool) -> Result<Vhd<File>, Failure> {
    let options = OpenOptions::new()
        .writable(writable)
        .size_policy(c.size_policy);
    Vhd::open_path(path, options, &c.policy).map_err(fail)
}

/// Opens an input file for reading; a directory is refused.
fn open_input(path: &Path) -> Result<File, Failure> {
    let file = File::open(path).map_err(|e| io_fail(path, e))?;
    match file.metadata() {
        Ok(m) if m.is_dir() => Err(io_fail(path, ErrorKind::IsADirectory.into())),
        Ok(_) => Ok(file),
        Err(e) => Err(io_fail(path, e)),
    }
}

/// Whether the file ends in a VHD footer (else it is treated as raw).
fn looks_like_vhd(path: &Path) -> Result<bool, Failure> {
    let file = open_input(path)?;
    let len = file.len().map_err(fail)?;
    if len < 512 {
        return Ok(false);
    }
    let mut buf = [0u8; 8];
    let at_tail = file.read_at(len - 512, &mut buf).is_ok() && buf == FOOTER_COOKIE;
    let at_head = file.read_at(0, &mut buf).is_ok() && buf == FOOTER_COOKIE;
    Ok(at_tail || at_head)
}

/// Opens a conversion source: a VHD (with its chain) or a raw image.
fn open_source(path: &OsStr, c: &Common) -> Result<Box<dyn Disk>, Failure> {
    if looks_like_vhd(Path::new(path))? {
        Ok(Box::new(open(path, c, false)?))
    } else {
        open_raw(path)
    }
}

fn open_raw(path: &OsStr) -> Result<Box<dyn Disk>, Failure> {
    let file = open_input(Path::new(path))?;
    Ok(Box::new(RawDisk::new(file, false).map_err(fail)?))
}

/// The `--block-size` of a new dynamic or differencing disk (default 2 MiB), checked.
fn block_size(a: &Args) -> Result<u32, Failure> {
    let text = a.value(&["--block-size"])?.unwrap_or("2M");
    match u32::try_from(parse_size(text)?) {
        Ok(bs) if bs.is_power_of_two() && (512..=256 << 20).contains(&bs) => Ok(bs),
        _ => Err(UsageError(format!(
            "invalid block size {text:?}: must be a power of two from 512 bytes to 256 MiB"
        ))
        .into()),
    }
}

/// Checks the virtual size of a new disk.
fn disk_size(size: u64) -> Result<u64, String> {
    if size == 0 || !size.is_multiple_of(512) || size > MAX_DISK_SIZE {
        return Err(format!(
            "invalid disk size {size}: must be a non-zero multiple of 512 up to 2040 GiB"
        ));
    }
    Ok(size)
}

/// Runs `command` with its arguments.
pub fn run(command: &str, rest: &[OsString]) -> Result<(), Failure> {
    match command {
        "create" => create(rest),
        "info" => info(rest),
        "check" => check(rest),
        "repair" => repair(rest),
        "map" => map(rest),
        "convert" => convert(rest),
        "compact" => compact(rest),
        "expand" => expand(rest),
        "merge" => merge(rest),
        "snapshot" => snapshot(rest),
        "read" => read(rest),
        "write" => write(rest),
        other => Err(UsageError(format!("unknown command {other:?}")).into()),
    }
}

/// Creates `child`, a differencing disk over `parent`, through a temporary file.
fn make_child(
    parent: &OsStr,
    child: &OsStr,
    block_size: u32,
    c: &Common,
    existing: Existing,
) -> Result<(u64, String), Failure> {
    let (parent, child) = (Path::new(parent), Path::new(child));
    let parent_disk = Vhd::open_path(parent, OpenOptions::new(), &c.policy)
        .map_err(|e| fail(SnapshotError::from(e)))?;
    let mut out = NewFile::create(child, &[parent], existing)?;
    let link = parent_link(&parent_disk, parent, out.path()).map_err(fail)?;
    let opts = CreateOptions::new(0).block_size(block_size);
    let vhd = create_differencing(out.file(), Box::new(parent_disk), &link, &opts)
        .map_err(|e| fail(SnapshotError::from(e)))?;
    let made = (vhd.size(), vhd.footer().unique_id().to_string());
    drop(vhd);
    out.commit()?;
    Ok(made)
}

fn create(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &["-t", "-s", "-b", "--block-size"])?;
    let c = common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let parent = a.value_os(&["-b"]);
    let kind = a
        .value(&["-t"])?
        .unwrap_or(if parent.is_some() { "diff" } else { "dynamic" });
    match kind {
        "diff" => {
            let parent = parent.ok_or_else(|| UsageError("-t diff needs -b PARENT".into()))?;
            if a.value_os(&["-s"]).is_some() {
                return Err(UsageError(
                    "a differencing disk takes its size from the parent".into(),
                )
                .into());
            }
            let bs = block_size(&a)?;
            let (size, _) = make_child(parent, path, bs, &c, Existing::Replace)?;
            out!(
                "created differencing disk {} ({size} bytes) over {}",
                show(path),
                show(parent)
            );
        }
        "fixed" | "dynamic" => {
            let size = parse_size(
                a.value(&["-s"])?
                    .ok_or_else(|| UsageError("-s SIZE is required".into()))?,
            )?;
            let size = disk_size(size).map_err(UsageError)?;
            let mut opts = CreateOptions::new(size);
            if kind == "dynamic" {
                opts = opts.block_size(block_size(&a)?);
            }
            let mut out = NewFile::create(Path::new(path), &[], Existing::Replace)?;
            let vhd = if kind == "fixed" {
                create_fixed(out.file(), &opts)
            } else {
                create_dynamic(out.file(), &opts)
            }
            .map_err(fail)?;
            let (size, id) = (vhd.size(), vhd.footer().unique_id());
            drop(vhd);
            out.commit()?;
            out!("created {kind} disk {} ({size} bytes, id {id})", show(path));
        }
        other => {
            return Err(UsageError(format!(
                "unknown disk type {other:?} (fixed, dynamic, diff)"
            ))
            .into())
        }
    }
    Ok(())
}

fn type_name(t: DiskType) -> &'static str {
    match t {
        DiskType::FIXED => "fixed",
        DiskType::DYNAMIC => "dynamic",
        DiskType::DIFFERENCING => "differencing",
        _ => "unknown",
    }
}

fn info(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    let c = common(&a, &["--json"])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let vhd = open(path, &c, false)?;
    let i = vhd.inspect().map_err(fail)?;
    let opt = |v: Option<u64>| v.map_or(Json::Null, Json::Num);
    if a.flag(&["--json"]) {
        let parent = match &i.parent {
            Some((id, ts, name)) => Json::Obj(vec![
                ("unique-id", Json::Str(id.to_string())),
                ("timestamp", Json::Num(u64::from(ts.0))),
                ("name", Json::Str(name.clone())),
            ]),
            None => Json::Null,
        };
        let j = Json::Obj(vec![
            ("filename", Json::Str(path.to_string_lossy().into_owned())),
            ("format", Json::Str("vpc".into())),
            ("disk-type", Json::Str(type_name(i.disk_type).into())),
            ("virtual-size", Json::Num(i.virtual_size)),
            ("current-size", Json::Num(i.current_size)),
            ("original-size", Json::Num(i.original_size)),
            ("chs-size", Json::Num(i.chs_size)),
            ("geometry", Json::Str(i.geometry.to_string())),
            ("actual-size", Json::Num(i.file_size)),
            ("cluster-size", opt(i.block_size.map(u64::from))),
            ("max-table-entries", opt(i.max_table_entries.map(u64::from))),
            ("table-offset", opt(i.table_offset)),
            ("allocated-blocks", Json::Num(i.allocated_blocks)),
            ("allocated-bytes", Json::Num(i.allocated_bytes)),
            (
                "fragmentation-percent",
                Json::Num(u64::from(i.fragmentation_percent)),
            ),
            ("unique-id", Json::Str(i.unique_id.to_string())),
            ("timestamp", Json::Num(u64::from(i.timestamp.0))),
            (
                "creator-application",
                Json::Str(i.creator_application.to_string()),
            ),
            ("creator-version", Json::Num(u64::from(i.creator_version))),
            ("creator-host-os", Json::Str(i.creator_host_os.to_string())),
            ("saved-state", Json::Bool(i.saved_state)),
            ("temporary", Json::Bool(i.temporary)),
            ("parent", parent),
            (
                "parent-locators",
                Json::Arr(
                    i.locators
                        .iter()
                        .map(|l| {
                            Json::Obj(vec![
                                ("code", Json::Str(format!("{:?}", l.code))),
                                ("path", Json::Str(l.path.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "warnings",
                Json::Arr(
                    i.warnings
                        .iter()
                        .map(|w| Json::Str(format!("{w:?}")))
                        .collect(),
                ),
            ),
        ]);
        out!("{}", j.render());
        return Ok(());
    }
    out!("image: {}", show(path));
    out!("disk type: {}", type_name(i.disk_type));
    out!("virtual size: {} bytes", i.virtual_size);
    out!(
        "current size: {} bytes; CHS {} = {} bytes; original size {} bytes",
        i.current_size,
        i.geometry,
        i.chs_size,
        i.original_size
    );
    out!("file size: {} bytes", i.file_size);
    if let (Some(bs), Some(entries)) = (i.block_size, i.max_table_entries) {
        out!(
            "block size: {bs} bytes; BAT: {entries} entries at offset {}",
            i.table_offset.unwrap_or(0)
        );
        out!(
            "allocated: {} blocks, {} bytes of data; fragmentation {}%",
            i.allocated_blocks,
            i.allocated_bytes,
            i.fragmentation_percent
        );
    }
    out!("unique id: {}", i.unique_id);
    out!(
        "created: {} (unix {}) by {:?} version {:#x} on {:?}",
        i.timestamp.0,
        i.timestamp.to_unix(),
        i.creator_application,
        i.creator_version,
        i.creator_host_os
    );
    out!("saved state: {}; temporary: {}", i.saved_state, i.temporary);
    if let Some((id, ts, name)) = &i.parent {
        out!("parent: {name:?}, unique id {id}, timestamp {}", ts.0);
        for l in &i.locators {
            out!("  locator {:?}: {}", l.code, l.path);
        }
    }
    for w in &i.warnings {
        out!("warning: {w:?}");
    }
    Ok(())
}

fn check(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let file = open_input(Path::new(path))?;
    let report = ops::check(&file).map_err(fail)?;
    for p in &report.problems {
        let level = match p.severity() {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        out!("{level}: {p}");
    }
    if report.is_clean() {
        out!(
            "No errors were found on the image ({} allocated blocks).",
            report.allocated_blocks
        );
        Ok(())
    } else {
        let n = report
            .problems
            .iter()
            .filter(|p| p.severity() > Severity::Info)
            .count();
        Err(Failure {
            code: 2,
            message: format!(
                "{n} problem(s) found; `vhdtool repair` fixes what can be fixed safely"
            ),
        })
    }
}

fn repair(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_fail(Path::new(path), e))?;
    match ops::repair(&mut file) {
        Ok(actions) if actions.is_empty() => out!("nothing to repair"),
        Ok(actions) => {
            for a in &actions {
                out!("repaired: {a:?}");
            }
        }
        Err(ops::RepairError::NotRepairable(report)) => {
            for p in &report.problems {
                out!("{p}");
            }
            return Err(Failure {
                code: 2,
                message: "damage remains that cannot be repaired safely".into(),
            });
        }
        Err(e) => return Err(fail(e)),
    }
    Ok(())
}

fn map(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    let c = common(&a, &["--json"])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let vhd = open(path, &c, false)?;
    let i = vhd.inspect().map_err(fail)?;
    if a.flag(&["--json"]) {
        let items = i.map.iter().map(|e| {
            let mut fields = vec![
                ("start", Json::Num(e.start)),
                ("length", Json::Num(e.length)),
                ("data", Json::Bool(e.state == ExtentState::Data)),
                ("zero", Json::Bool(e.state == ExtentState::Zero)),
                ("parent", Json::Bool(e.state == ExtentState::Parent)),
            ];
            if let Some(off) = e.file_offset {
                fields.push(("offset", Json::Num(off)));
            }
            Json::Obj(fields)
        });
        out!("{}", Json::Arr(items.collect()).render());
    } else {
        out!(
            "{:>16} {:>16} {:>16}  state",
            "start",
            "length",
            "file offset"
        );
        for e in &i.map {
            let off = e
                .file_offset
                .map_or_else(|| "-".to_string(), |o| o.to_string());
            out!(
                "{:>16} {:>16} {:>16}  {:?}",
                e.start,
                e.length,
                off,
                e.state
            );
        }
    }
    Ok(())
}

fn target(a: &Args, default: &str) -> Result<Option<Target>, Failure> {
    match a.value(&["-O"])?.unwrap_or(default) {
        "raw" => Ok(None),
        "fixed" => Ok(Some(Target::Fixed)),
        "dynamic" => Ok(Some(Target::Dynamic {
            block_size: block_size(a)?,
        })),
        other => Err(UsageError(format!(
            "unknown output format {other:?} (raw, fixed, dynamic)"
        ))
        .into()),
    }
}

/// Writes `src` to the new file `dest` (replacing it) as `target`; `input` is the file `src`
/// was opened from.
fn write_out(
    src: &dyn Disk,
    input: &OsStr,
    dest: &OsStr,
    target: Option<Target>,
    c: &Common,
) -> Result<(), Failure> {
    if target.is_some() {
        disk_size(src.size()).map_err(|message| Failure { code: 2, message })?;
    }
    let mut out = NewFile::create(Path::new(dest), &[Path::new(input)], Existing::Replace)?;
    let mut bar = Bar::new(c.quiet);
    match target {
        None => ops::convert_to_raw(src, out.file(), &mut bar).map_err(fail)?,
        Some(t) => {
            ops::convert_to_vhd(
                src,
                out.file(),
                t,
                &CreateOptions::new(src.size()),
                &mut bar,
            )
            .map_err(fail)?;
        }
    }
    bar.finish();
    out.commit()
}

fn convert(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &["-O", "--block-size", "-f"])?;
    let c = common(&a, &[])?;
    let [src, dest] = a.positional(&["SOURCE", "DEST"])? else {
        unreachable!()
    };
    let target = target(&a, "dynamic")?;
    let format = a.value(&["-f"])?;
    if let Some(other) = format.filter(|f| !matches!(*f, "raw" | "vhd" | "vpc")) {
        return Err(UsageError(format!("unknown input format {other:?} (raw, vhd)")).into());
    }
    let source: Box<dyn Disk> = match format {
        Some("raw") => open_raw(src)?,
        Some(_) => Box::new(open(src, &c, false)?),
        None => open_source(src, &c)?,
    };
    if !source.size().is_multiple_of(512) && target.is_some() {
        return Err(Failure {
            code: 2,
            message: format!("source size {} is not a multiple of 512", source.size()),
        });
    }
    write_out(source.as_ref(), src, dest, target, &c)
}

fn compact(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    let c = common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let mut vhd = open(path, &c, true)?;
    let mut bar = Bar::new(c.quiet);
    let r = ops::compact(&mut vhd, None, &mut bar).map_err(fail)?;
    bar.finish();
    out!(
        "compacted {}: {} -> {} bytes ({} empty blocks dropped, {} blocks moved)",
        show(path),
        r.old_len,
        r.new_len,
        r.dropped_zero,
        r.moved
    );
    Ok(())
}

fn expand(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &["-s"])?;
    let c = common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let size = parse_size(
        a.value(&["-s"])?
            .ok_or_else(|| UsageError("-s SIZE is required".into()))?,
    )?;
    let mut vhd = open(path, &c, true)?;
    ops::expand(&mut vhd, size).map_err(fail)?;
    out!("expanded {} to {size} bytes", show(path));
    Ok(())
}

fn merge(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &["-o", "-O", "--block-size"])?;
    let c = common(&a, &[])?;
    let [child] = a.positional(&["CHILD"])? else {
        unreachable!()
    };
    if let Some(new) = a.value_os(&["-o"]) {
        let target = target(&a, "dynamic")?
            .ok_or_else(|| UsageError("merge -o writes a VHD: -O fixed or dynamic".into()))?;
        let vhd = open(child, &c, false)?;
        write_out(&vhd, child, new, Some(target), &c)?;
        out!("merged {} and its parents into {}", show(child), show(new));
        return Ok(());
    }
    let options = OpenOptions::new()
        .size_policy(c.size_policy)
        .writable_parent(true);
    let mut vhd = Vhd::open_path(child, options, &c.policy).map_err(fail)?;
    if vhd.disk_type() != DiskType::DIFFERENCING {
        return Err(Failure {
            code: 2,
            message: format!("{} is not a differencing disk", show(child)),
        });
    }
    let mut bar = Bar::new(c.quiet);
    let bytes = ops::merge_into_parent(&mut vhd, &mut bar).map_err(fail)?;
    bar.finish();
    out!(
        "merged {bytes} bytes of {} into its parent; {} is now redundant",
        show(child),
        show(child)
    );
    Ok(())
}

fn snapshot(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &["--block-size"])?;
    let c = common(&a, &[])?;
    let [parent, child] = a.positional(&["PARENT", "CHILD"])? else {
        unreachable!()
    };
    let bs = block_size(&a)?;
    let (_, id) = make_child(parent, child, bs, &c, Existing::Refuse)?;
    out!(
        "created snapshot {} over {} (id {id})",
        show(child),
        show(parent)
    );
    Ok(())
}

/// A numeric argument (`what` names it for the error message).
fn number(text: &OsStr, what: &str) -> Result<u64, Failure> {
    Ok(parse_size(utf8(text, what)?)?)
}

/// A range beyond the end of the disk (exit 1).
fn out_of_range(offset: u64, len: u64, size: u64) -> Failure {
    Failure {
        code: 1,
        message: format!(
            "range of {len} bytes at offset {offset} is outside the disk ({size} bytes)"
        ),
    }
}

fn read(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    let c = common(&a, &[])?;
    let [path, offset, length] = a.positional(&["FILE", "OFFSET", "LENGTH"])? else {
        unreachable!()
    };
    let (offset, length) = (number(offset, "OFFSET")?, number(length, "LENGTH")?);
    let vhd = open(path, &c, false)?;
    if offset
        .checked_add(length)
        .is_none_or(|end| end > vhd.size())
    {
        return Err(out_of_range(offset, length, vhd.size()));
    }
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; length.min(CHUNK) as usize];
    let mut done = 0;
    while done < length {
        let n = (length - done).min(buf.len() as u64) as usize;
        vhd.read_at(offset + done, &mut buf[..n])
            .map_err(disk_fail)?;
        out.write_all(&buf[..n]).map_err(stdout_fail)?;
        done += n as u64;
    }
    out.flush().map_err(stdout_fail)
}

/// How much `read` and `write` hold in memory at a time.
const CHUNK: u64 = 1 << 20;

fn disk_fail(e: DiskError) -> Failure {
    match e {
        DiskError::OutOfRange { .. } => Failure {
            code: 1,
            message: e.to_string(),
        },
        e => fail(e),
    }
}

/// What `write` writes.
enum Input {
    /// `len` copies of a byte.
    Pattern { byte: u8, len: u64 },
    /// A stream: `len` is known for a regular file, unknown for a pipe or device.
    Stream {
        name: String,
        reader: Box<dyn Read>,
        len: Option<u64>,
    },
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill(reader: &mut dyn Read, buf: &mut [u8], name: &str) -> Result<usize, Failure> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_fail(Path::new(name), e)),
        }
    }
    Ok(got)
}

fn write(rest: &[OsString]) -> Result<(), Failure> {
    let a = parse(rest, &["-i", "--pattern", "--length"])?;
    let c = common(&a, &[])?;
    let [path, offset] = a.positional(&["FILE", "OFFSET"])? else {
        unreachable!()
    };
    let offset = number(offset, "OFFSET")?;
    let mut input = match (a.value_os(&["-i"]), a.value(&["--pattern"])?) {
        (Some(input), None) => {
            let file = open_input(Path::new(input))?;
            let meta = file.metadata().map_err(|e| io_fail(Path::new(input), e))?;
            Input::Stream {
                name: show(input).to_string(),
                reader: Box::new(file),
                len: meta.is_file().then_some(meta.len()),
            }
        }
        (None, Some(p)) => {
            let byte = parse_byte(p)?;
            let len = a
                .value_os(&["--length"])
                .ok_or_else(|| UsageError("--pattern needs --length".into()))?;
            Input::Pattern {
                byte,
                len: number(len, "--length")?,
            }
        }
        (None, None) => Input::Stream {
            name: "<stdin>".into(),
            reader: Box::new(std::io::stdin().lock()),
            len: None,
        },
        _ => return Err(UsageError("give -i INPUT or --pattern, not both".into()).into()),
    };
    let mut vhd = open(path, &c, true)?;
    let size = vhd.size();
    let known = match &input {
        Input::Pattern { len, .. } => Some(*len),
        Input::Stream { len, .. } => *len,
    };
    // Nothing is written unless the whole range fits (or, for a stream of unknown length,
    // unless it starts inside the disk).
    if offset
        .checked_add(known.unwrap_or(0))
        .is_none_or(|end| end > size)
    {
        return Err(out_of_range(offset, known.unwrap_or(0), size));
    }
    let room = size - offset;
    let limit = known.unwrap_or(room);
    let mut buf = vec![0u8; limit.min(CHUNK) as usize];
    if let Input::Pattern { byte, .. } = input {
        buf.fill(byte);
    }
    let mut done = 0u64;
    let result = (|| {
        while done < limit {
            let want = (limit - done).min(buf.len() as u64) as usize;
            let got = match &mut input {
                Input::Pattern { .. } => want,
                Input::Stream { name, reader, .. } => {
                    fill(reader.as_mut(), &mut buf[..want], name)?
                }
            };
            if got == 0 {
                break;
            }
            vhd.write_at(offset + done, &buf[..got])
                .map_err(disk_fail)?;
            done += got as u64;
            if got < want {
                break;
            }
        }
        if let (Input::Stream { name, reader, .. }, None) = (&mut input, known) {
            if done == room && fill(reader.as_mut(), &mut [0u8], name)? > 0 {
                return Err(Failure {
                    code: 1,
                    message: format!(
                        "the input is longer than the {room} bytes from offset {offset} to the \
                         end of the disk ({size} bytes); the first {room} were written"
                    ),
                });
            }
        }
        Ok(())
    })();
    let flushed = vhd.flush().map_err(fail);
    result?;
    flushed?;
    out!("wrote {done} bytes at offset {offset}");
    Ok(())
}
