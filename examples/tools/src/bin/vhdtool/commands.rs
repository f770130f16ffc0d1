//! The subcommands.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use vhd_format::defs::{DiskType, FOOTER_COOKIE};
use vhd_format::ops::{self, ExtentState, Severity, Target};
use vhd_format::{
    create_dynamic, create_fixed, CreateOptions, Disk, DiskError, OpenOptions, ParentPolicy,
    RawDisk, SizePolicy, Storage, Vhd,
};

use crate::args::{parse_size, Args, UsageError};
use crate::json::Json;
use crate::progress::Bar;

/// A failed command: exit code and message.
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

fn io_fail(path: &Path, e: std::io::Error) -> Failure {
    Failure {
        code: 3,
        message: format!("{}: {e}", path.display()),
    }
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
    if let Some(dir) = a.value(&["--parent-dir"]) {
        policy = policy.allow_dir(dir);
    }
    let size_policy = match a.value(&["--size-policy"]).unwrap_or("current") {
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

fn parse(rest: &[String], values: &[&str]) -> Result<Args, Failure> {
    let all: Vec<&str> = COMMON_VALUES.iter().chain(values).copied().collect();
    Ok(Args::parse(rest, &all)?)
}

fn open(path: &str, c: &Common, writable: bool) -> Result<Vhd<File>, Failure> {
    let options = OpenOptions::new()
        .writable(writable)
        .size_policy(c.size_policy);
    Vhd::open_path(path, options, &c.policy).map_err(fail)
}

/// Whether the file ends in a VHD footer (else it is treated as raw).
fn looks_like_vhd(path: &str) -> Result<bool, Failure> {
    let file = File::open(path).map_err(|e| io_fail(Path::new(path), e))?;
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
fn open_source(path: &str, c: &Common) -> Result<Box<dyn Disk>, Failure> {
    if looks_like_vhd(path)? {
        Ok(Box::new(open(path, c, false)?))
    } else {
        let file = File::open(path).map_err(|e| io_fail(Path::new(path), e))?;
        Ok(Box::new(RawDisk::new(file, false).map_err(fail)?))
    }
}

fn create_file(path: &str) -> Result<File, Failure> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_fail(Path::new(path), e))
}

fn block_size(a: &Args) -> Result<u32, Failure> {
    let bs = parse_size(a.value(&["--block-size"]).unwrap_or("2M"))?;
    u32::try_from(bs).map_err(|_| UsageError(format!("block size {bs} too large")).into())
}

/// Runs `command` with its arguments.
pub fn run(command: &str, rest: &[String]) -> Result<(), Failure> {
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

fn create(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &["-t", "-s", "-b", "--block-size"])?;
    let c = common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let parent = a.value(&["-b"]);
    let kind = a
        .value(&["-t"])
        .unwrap_or(if parent.is_some() { "diff" } else { "dynamic" });
    let bs = block_size(&a)?;
    match kind {
        "diff" => {
            let parent = parent.ok_or_else(|| UsageError("-t diff needs -b PARENT".into()))?;
            if a.value(&["-s"]).is_some() {
                return Err(UsageError(
                    "a differencing disk takes its size from the parent".into(),
                )
                .into());
            }
            if Path::new(path).exists() {
                std::fs::remove_file(path).map_err(|e| io_fail(Path::new(path), e))?;
            }
            let opts = CreateOptions::new(0).block_size(bs);
            let vhd = vhd_format::snapshot(Path::new(parent), Path::new(path), &opts, &c.policy)
                .map_err(fail)?;
            println!(
                "created differencing disk {path} ({} bytes) over {parent}",
                vhd.size()
            );
        }
        "fixed" | "dynamic" => {
            let size = parse_size(
                a.value(&["-s"])
                    .ok_or_else(|| UsageError("-s SIZE is required".into()))?,
            )?;
            let opts = CreateOptions::new(size).block_size(bs);
            let file = create_file(path)?;
            let vhd = if kind == "fixed" {
                create_fixed(file, &opts)
            } else {
                create_dynamic(file, &opts)
            }
            .map_err(fail)?;
            println!(
                "created {kind} disk {path} ({} bytes, id {})",
                vhd.size(),
                vhd.footer().unique_id()
            );
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

fn info(rest: &[String]) -> Result<(), Failure> {
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
            ("filename", Json::Str(path.clone())),
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
        println!("{}", j.render());
        return Ok(());
    }
    println!("image: {path}");
    println!("disk type: {}", type_name(i.disk_type));
    println!("virtual size: {} bytes", i.virtual_size);
    println!(
        "current size: {} bytes; CHS {} = {} bytes; original size {} bytes",
        i.current_size, i.geometry, i.chs_size, i.original_size
    );
    println!("file size: {} bytes", i.file_size);
    if let (Some(bs), Some(entries)) = (i.block_size, i.max_table_entries) {
        println!(
            "block size: {bs} bytes; BAT: {entries} entries at offset {}",
            i.table_offset.unwrap_or(0)
        );
        println!(
            "allocated: {} blocks, {} bytes of data; fragmentation {}%",
            i.allocated_blocks, i.allocated_bytes, i.fragmentation_percent
        );
    }
    println!("unique id: {}", i.unique_id);
    println!(
        "created: {} (unix {}) by {:?} version {:#x} on {:?}",
        i.timestamp.0,
        i.timestamp.to_unix(),
        i.creator_application,
        i.creator_version,
        i.creator_host_os
    );
    println!("saved state: {}; temporary: {}", i.saved_state, i.temporary);
    if let Some((id, ts, name)) = &i.parent {
        println!("parent: {name:?}, unique id {id}, timestamp {}", ts.0);
        for l in &i.locators {
            println!("  locator {:?}: {}", l.code, l.path);
        }
    }
    for w in &i.warnings {
        println!("warning: {w:?}");
    }
    Ok(())
}

fn check(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let file = File::open(path).map_err(|e| io_fail(Path::new(path), e))?;
    let report = ops::check(&file).map_err(fail)?;
    for p in &report.problems {
        let level = match p.severity() {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        println!("{level}: {p}");
    }
    if report.is_clean() {
        println!(
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

fn repair(rest: &[String]) -> Result<(), Failure> {
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
        Ok(actions) if actions.is_empty() => println!("nothing to repair"),
        Ok(actions) => actions.iter().for_each(|a| println!("repaired: {a:?}")),
        Err(ops::RepairError::NotRepairable(report)) => {
            for p in &report.problems {
                println!("{p}");
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

fn map(rest: &[String]) -> Result<(), Failure> {
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
        println!("{}", Json::Arr(items.collect()).render());
    } else {
        println!(
            "{:>16} {:>16} {:>16}  state",
            "start", "length", "file offset"
        );
        for e in &i.map {
            let off = e
                .file_offset
                .map_or_else(|| "-".to_string(), |o| o.to_string());
            println!(
                "{:>16} {:>16} {:>16}  {:?}",
                e.start, e.length, off, e.state
            );
        }
    }
    Ok(())
}

fn target(a: &Args, default: &str) -> Result<Option<Target>, Failure> {
    match a.value(&["-O"]).unwrap_or(default) {
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

fn write_out(
    src: &dyn Disk,
    dest: &str,
    target: Option<Target>,
    c: &Common,
) -> Result<(), Failure> {
    let mut bar = Bar::new(c.quiet);
    let mut file = create_file(dest)?;
    match target {
        None => ops::convert_to_raw(src, &mut file, &mut bar).map_err(fail)?,
        Some(t) => {
            ops::convert_to_vhd(src, file, t, &CreateOptions::new(src.size()), &mut bar)
                .map_err(fail)?;
        }
    }
    bar.finish();
    Ok(())
}

fn convert(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &["-O", "--block-size", "-f"])?;
    let c = common(&a, &[])?;
    let [src, dest] = a.positional(&["SOURCE", "DEST"])? else {
        unreachable!()
    };
    let target = target(&a, "dynamic")?;
    let source: Box<dyn Disk> = match a.value(&["-f"]) {
        Some("raw") => Box::new(
            RawDisk::new(
                File::open(src).map_err(|e| io_fail(Path::new(src), e))?,
                false,
            )
            .map_err(fail)?,
        ),
        Some("vhd" | "vpc") => Box::new(open(src, &c, false)?),
        Some(other) => {
            return Err(UsageError(format!("unknown input format {other:?} (raw, vhd)")).into())
        }
        None => open_source(src, &c)?,
    };
    if !source.size().is_multiple_of(512) && target.is_some() {
        return Err(Failure {
            code: 2,
            message: format!("source size {} is not a multiple of 512", source.size()),
        });
    }
    write_out(source.as_ref(), dest, target, &c)
}

fn compact(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    let c = common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let mut vhd = open(path, &c, true)?;
    let mut bar = Bar::new(c.quiet);
    let r = ops::compact(&mut vhd, None, &mut bar).map_err(fail)?;
    bar.finish();
    println!(
        "compacted {path}: {} -> {} bytes ({} empty blocks dropped, {} blocks moved)",
        r.old_len, r.new_len, r.dropped_zero, r.moved
    );
    Ok(())
}

fn expand(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &["-s"])?;
    let c = common(&a, &[])?;
    let [path] = a.positional(&["FILE"])? else {
        unreachable!()
    };
    let size = parse_size(
        a.value(&["-s"])
            .ok_or_else(|| UsageError("-s SIZE is required".into()))?,
    )?;
    let mut vhd = open(path, &c, true)?;
    ops::expand(&mut vhd, size).map_err(fail)?;
    println!("expanded {path} to {size} bytes");
    Ok(())
}

fn merge(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &["-o", "-O", "--block-size"])?;
    let c = common(&a, &[])?;
    let [child] = a.positional(&["CHILD"])? else {
        unreachable!()
    };
    if let Some(new) = a.value(&["-o"]) {
        let vhd = open(child, &c, false)?;
        let target = target(&a, "dynamic")?
            .ok_or_else(|| UsageError("merge -o writes a VHD: -O fixed or dynamic".into()))?;
        write_out(&vhd, new, Some(target), &c)?;
        println!("merged {child} and its parents into {new}");
        return Ok(());
    }
    let options = OpenOptions::new()
        .size_policy(c.size_policy)
        .writable_parent(true);
    let mut vhd = Vhd::open_path(child, options, &c.policy).map_err(fail)?;
    if vhd.disk_type() != DiskType::DIFFERENCING {
        return Err(Failure {
            code: 2,
            message: format!("{child} is not a differencing disk"),
        });
    }
    let mut bar = Bar::new(c.quiet);
    let bytes = ops::merge_into_parent(&mut vhd, &mut bar).map_err(fail)?;
    bar.finish();
    println!("merged {bytes} bytes of {child} into its parent; {child} is now redundant");
    Ok(())
}

fn snapshot(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &["--block-size"])?;
    let c = common(&a, &[])?;
    let [parent, child] = a.positional(&["PARENT", "CHILD"])? else {
        unreachable!()
    };
    let opts = CreateOptions::new(0).block_size(block_size(&a)?);
    let vhd = vhd_format::snapshot(Path::new(parent), Path::new(child), &opts, &c.policy)
        .map_err(fail)?;
    println!(
        "created snapshot {child} over {parent} (id {})",
        vhd.footer().unique_id()
    );
    Ok(())
}

fn number(text: &str) -> Result<u64, Failure> {
    parse_size(text).map_err(Failure::from)
}

fn read(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &[])?;
    let c = common(&a, &[])?;
    let [path, offset, length] = a.positional(&["FILE", "OFFSET", "LENGTH"])? else {
        unreachable!()
    };
    let (offset, length) = (number(offset)?, number(length)?);
    let vhd = open(path, &c, false)?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; length.min(1 << 20) as usize];
    let mut done = 0;
    while done < length {
        let n = (length - done).min(buf.len() as u64) as usize;
        vhd.read_at(offset + done, &mut buf[..n])
            .map_err(disk_fail)?;
        out.write_all(&buf[..n])
            .map_err(|e| io_fail(Path::new("<stdout>"), e))?;
        done += n as u64;
    }
    Ok(())
}

fn disk_fail(e: DiskError) -> Failure {
    match e {
        DiskError::OutOfRange { .. } => Failure {
            code: 1,
            message: e.to_string(),
        },
        e => fail(e),
    }
}

fn write(rest: &[String]) -> Result<(), Failure> {
    let a = parse(rest, &["-i", "--pattern", "--length"])?;
    let c = common(&a, &[])?;
    let [path, offset] = a.positional(&["FILE", "OFFSET"])? else {
        unreachable!()
    };
    let offset = number(offset)?;
    let data = match (a.value(&["-i"]), a.value(&["--pattern"])) {
        (Some(input), None) => {
            std::fs::read(input).map_err(|e| io_fail(&PathBuf::from(input), e))?
        }
        (None, Some(p)) => {
            let byte = u8::from_str_radix(p.trim_start_matches("0x"), 16)
                .map_err(|_| UsageError(format!("invalid pattern byte {p:?} (hex)")))?;
            let len = number(
                a.value(&["--length"])
                    .ok_or_else(|| UsageError("--pattern needs --length".into()))?,
            )?;
            vec![byte; len as usize]
        }
        (None, None) => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .map_err(|e| io_fail(Path::new("<stdin>"), e))?;
            v
        }
        _ => return Err(UsageError("give -i INPUT or --pattern, not both".into()).into()),
    };
    let mut vhd = open(path, &c, true)?;
    vhd.write_at(offset, &data).map_err(disk_fail)?;
    vhd.flush().map_err(fail)?;
    println!("wrote {} bytes at offset {offset}", data.len());
    Ok(())
}
