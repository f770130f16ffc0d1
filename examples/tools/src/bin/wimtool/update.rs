//! `update WIM [IMAGE] < COMMANDS`: `wimlib-imagex update`'s command language, committed in
//! place.
//!
//! One command per line: `add [--no-replace] [--unix-data] [--dereference] SOURCE DEST`,
//! `delete [--force] [--recursive] PATH`, `rename OLD NEW`. Blank lines and lines starting with
//! `#` are ignored; arguments are separated by blanks and may be quoted with `"` or `'` (no
//! escapes). As with wimlib, `--config=FILE` on the command line sets the capture
//! configuration of every `add`, and `--wimboot-config=FILE` replaces the commands with
//! `add FILE /Windows/System32/WimBootCompress.ini`.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use wim_image::write::config::CaptureConfig;
use wim_image::write::update::{update_in_place, ImagePath, UpdateCommand, UpdateError};

use crate::args::{Args, UsageError};
use crate::commands::{image_index, io_failure, open, Failure};
use crate::write::{capture_config, write_failure, write_options};

/// Splits a command line into arguments (quotes removed). The line is bytes: names need
/// not be UTF-8 (blanks are ASCII ones).
fn split_line(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut args = Vec::new();
    let mut bytes = line.iter().copied().peekable();
    loop {
        while bytes.next_if(u8::is_ascii_whitespace).is_some() {}
        let Some(&first) = bytes.peek() else {
            return Ok(args);
        };
        let mut arg = Vec::new();
        if first == b'"' || first == b'\'' {
            bytes.next();
            loop {
                match bytes.next() {
                    Some(c) if c == first => break,
                    Some(c) => arg.push(c),
                    None => {
                        return Err(format!(
                            "unterminated quote in {:?}",
                            String::from_utf8_lossy(line)
                        ))
                    }
                }
            }
        } else {
            while let Some(c) = bytes.next_if(|c| !c.is_ascii_whitespace()) {
                arg.push(c);
            }
        }
        args.push(arg);
    }
}

/// A path inside the image from its bytes: UTF-8, or WTF-8 for a name with unpaired
/// surrogates (as `dir` lists it), which reaches exactly that name even when another has
/// the same lossy form (see `wim_image::write::update`).
fn image_path(bytes: &[u8]) -> Result<ImagePath, String> {
    ImagePath::from_wtf8(bytes).ok_or_else(|| {
        format!(
            "{:?} is neither UTF-8 nor WTF-8",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Options given on the command line for every command.
#[derive(Clone, Default)]
pub struct Defaults {
    pub no_replace: bool,
    pub force: bool,
    pub recursive: bool,
    pub unix_data: bool,
    pub dereference: bool,
    /// The capture configuration of every `add` (`--config`).
    pub config: CaptureConfig,
}

/// Where `--wimboot-config` puts its file.
const WIMBOOT_CONFIG_PATH: &str = "/Windows/System32/WimBootCompress.ini";

/// Parses the command file.
pub fn parse_commands(text: &[u8], defaults: &Defaults) -> Result<Vec<UpdateCommand>, String> {
    let mut cmds = Vec::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let t = line.trim_ascii();
        if t.is_empty() || t.starts_with(b"#") {
            continue;
        }
        let shown = String::from_utf8_lossy(t);
        let err = |m: &str| format!("line {}: {m}: {shown:?}", n + 1);
        let words = split_line(t).map_err(|e| err(&e))?;
        let Some((name, rest)) = words.split_first() else {
            continue;
        };
        let name = String::from_utf8_lossy(name);
        let (opts, paths): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) =
            rest.iter().partition(|w| w.starts_with(b"--"));
        let opts: Vec<std::borrow::Cow<'_, str>> =
            opts.iter().map(|o| String::from_utf8_lossy(o)).collect();
        let path = |p: &[u8]| image_path(p).map_err(|e| err(&e));
        let mut d = defaults.clone();
        for o in &opts {
            match (name.as_ref(), o.as_ref()) {
                ("add", "--no-replace") => d.no_replace = true,
                ("add", "--unix-data") => d.unix_data = true,
                ("add", "--dereference") => d.dereference = true,
                ("delete", "--force") => d.force = true,
                ("delete", "--recursive") => d.recursive = true,
                _ => return Err(err(&format!("unsupported option {o}"))),
            }
        }
        let cmd = match (name.as_ref(), paths.as_slice()) {
            ("add", [src, dest]) => UpdateCommand::Add {
                source: PathBuf::from(OsStr::from_bytes(src)),
                dest: path(dest)?,
                no_replace: d.no_replace,
                unix_data: d.unix_data,
                dereference: d.dereference,
                config: d.config,
            },
            ("delete", [p]) => UpdateCommand::Delete {
                path: path(p)?,
                force: d.force,
                recursive: d.recursive,
            },
            ("rename", [from, to]) => UpdateCommand::Rename {
                from: path(from)?,
                to: path(to)?,
            },
            ("add" | "delete" | "rename", _) => return Err(err("wrong number of paths")),
            _ => return Err(err("unknown command")),
        };
        cmds.push(cmd);
    }
    Ok(cmds)
}

fn update_failure(e: &UpdateError, wim: &Path) -> Failure {
    match e {
        UpdateError::Write(w) => write_failure(w, wim, wim),
        UpdateError::Capture(c) => crate::write::capture_failure(c, wim),
        _ => Failure::Usage(crate::commands::with_causes(e)),
    }
}

/// `update WIM [IMAGE]`: applies the commands from standard input (or `--command`) to the
/// image and commits them in place; with `--rebuild` the file is rebuilt afterwards.
pub fn update(a: &Args) -> Result<(), Failure> {
    a.only_flags(&[
        "--check",
        "--rebuild",
        "--no-replace",
        "--force",
        "--recursive",
        "--unix-data",
        "--dereference",
        "-q",
        "--quiet",
    ])?;
    if a.value(&["--wimboot-config"]).is_some() && a.value(&["--command"]).is_some() {
        return Err(UsageError("--wimboot-config and --command exclude each other".into()).into());
    }
    let (path, sel) = match a.positional.as_slice() {
        [p] => (p, None),
        [p, i] => (p, Some(i)),
        _ => return Err(UsageError("expected WIM [IMAGE]".into()).into()),
    };
    let index = {
        let wim = open(path, a)?;
        if sel.is_none() && wim.image_count() > 1 {
            return Err(UsageError("the WIM holds several images: name one".into()).into());
        }
        image_index(&wim, sel)?
    };
    let defaults = Defaults {
        no_replace: a.flag(&["--no-replace"]),
        force: a.flag(&["--force"]),
        recursive: a.flag(&["--recursive"]),
        unix_data: a.flag(&["--unix-data"]),
        dereference: a.flag(&["--dereference"]),
        config: capture_config(a)?,
    };
    let cmds = if let Some(f) = a.value_os(&["--wimboot-config"]) {
        vec![UpdateCommand::Add {
            source: PathBuf::from(f),
            dest: WIMBOOT_CONFIG_PATH.into(),
            no_replace: defaults.no_replace,
            unix_data: defaults.unix_data,
            dereference: defaults.dereference,
            config: defaults.config,
        }]
    } else {
        let text = match a.value_os(&["--command"]) {
            Some(c) => c.as_bytes().to_vec(),
            None => {
                let mut t = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut t)
                    .map_err(|e| Failure::Io(format!("standard input: {e}")))?;
                t
            }
        };
        parse_commands(&text, &defaults).map_err(UsageError)?
    };
    let opts = write_options(a)?;
    let p = Path::new(path);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .map_err(|e| io_failure(p, &e))?;
    update_in_place(f, index, &cmds, &opts).map_err(|e| update_failure(&e, p))?;
    if a.flag(&["--rebuild"]) {
        crate::write::rebuild_file(p, a, &opts)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_file() {
        let text = "# comment\n\n  add 'a b' \"/x y/z\"\ndelete --force --recursive /d\nrename /a /b\nadd --no-replace s d\n";
        let cmds = parse_commands(text.as_bytes(), &Defaults::default()).unwrap();
        assert_eq!(
            cmds,
            vec![
                UpdateCommand::Add {
                    source: "a b".into(),
                    dest: "/x y/z".into(),
                    no_replace: false,
                    unix_data: false,
                    dereference: false,
                    config: CaptureConfig::default(),
                },
                UpdateCommand::Delete {
                    path: "/d".into(),
                    force: true,
                    recursive: true
                },
                UpdateCommand::Rename {
                    from: "/a".into(),
                    to: "/b".into()
                },
                UpdateCommand::Add {
                    source: "s".into(),
                    dest: "d".into(),
                    no_replace: true,
                    unix_data: false,
                    dereference: false,
                    config: CaptureConfig::default(),
                },
            ]
        );
        let d = Defaults {
            recursive: true,
            ..Defaults::default()
        };
        assert!(matches!(
            parse_commands(b"delete x", &d).unwrap()[0],
            UpdateCommand::Delete {
                recursive: true,
                ..
            }
        ));
        for bad in ["add x", "move a b", "delete 'x", "rename --force a b"] {
            assert!(
                parse_commands(bad.as_bytes(), &Defaults::default()).is_err(),
                "{bad}"
            );
        }
    }
}
