//! `wimtool`'s argument parser: positional arguments, `--long VALUE`, `--long=VALUE` and
//! boolean flags, over the raw (`OsString`) arguments, so that any file name the system
//! accepts can be given. Option names and the values of options that are not paths must be
//! text; positional arguments and path-valued options are kept as given.

#[path = "../../shared/args.rs"]
mod common;

pub use common::{parse_size, Args, UsageError};

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

impl Args {
    /// Parses `raw`; `with_value` lists the options that take a value, `paths` those of them
    /// whose value is a file name (any bytes; the others must be UTF-8).
    pub fn parse(
        raw: &[OsString],
        with_value: &[&str],
        paths: &[&str],
    ) -> Result<Self, UsageError> {
        let mut a = Args::default();
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            let bytes = arg.as_bytes();
            if bytes == b"--" {
                a.positional.extend(it.by_ref().cloned());
                break;
            }
            let numeric = std::str::from_utf8(bytes).is_ok_and(|s| s.parse::<i64>().is_ok());
            if bytes.len() > 1 && bytes[0] == b'-' && !numeric {
                let (name, inline) = match bytes.iter().position(|&b| b == b'=') {
                    Some(eq) if bytes.starts_with(b"--") => (
                        &bytes[..eq],
                        Some(OsStr::from_bytes(&bytes[eq + 1..]).to_os_string()),
                    ),
                    _ => (bytes, None),
                };
                let name = std::str::from_utf8(name)
                    .map_err(|_| UsageError(format!("unknown option {}", arg.to_string_lossy())))?
                    .to_string();
                if with_value.contains(&name.as_str()) {
                    let v = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .cloned()
                            .ok_or_else(|| UsageError(format!("{name} needs a value")))?,
                    };
                    if !paths.contains(&name.as_str()) && v.to_str().is_none() {
                        return Err(UsageError(format!(
                            "the value of {name} is not valid UTF-8: {:?}",
                            v.to_string_lossy()
                        )));
                    }
                    a.values.insert(name, v);
                } else if inline.is_some() {
                    return Err(UsageError(format!("{name} takes no value")));
                } else {
                    a.flags.push(name);
                }
            } else {
                a.positional.push(arg.clone());
            }
        }
        Ok(a)
    }

    /// The value of the first of `names` given, as text (`None` also for a path-valued
    /// option that is not UTF-8: use [`Args::value_os`] for those).
    pub fn value(&self, names: &[&str]) -> Option<&str> {
        self.value_os(names).and_then(OsStr::to_str)
    }

    /// Fails on value options not in `known` (the command does not use them).
    pub fn only_values(&self, known: &[&str]) -> Result<(), UsageError> {
        let mut given: Vec<&String> = self.values.keys().collect();
        given.sort();
        match given.into_iter().find(|v| !known.contains(&v.as_str())) {
            Some(v) => Err(UsageError(format!(
                "option {v} does not apply to this command"
            ))),
            None => Ok(()),
        }
    }
}

/// A positional argument that must be text (an image name or index, a size).
pub fn text<'a>(arg: &'a OsStr, what: &str) -> Result<&'a str, UsageError> {
    arg.to_str().ok_or_else(|| {
        UsageError(format!(
            "{what} is not valid UTF-8: {:?}",
            arg.to_string_lossy()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&[u8]]) -> Vec<OsString> {
        v.iter()
            .map(|b| OsStr::from_bytes(b).to_os_string())
            .collect()
    }

    #[test]
    fn options() {
        let raw = os(&[
            b"a\xff",
            b"--ref",
            b"p\xfe*",
            b"--json",
            b"--threads=4",
            b"b",
        ]);
        let a = Args::parse(&raw, &["--ref", "--threads"], &["--ref"]).unwrap();
        assert_eq!(a.positional, os(&[b"a\xff", b"b"]));
        assert_eq!(a.value_os(&["--ref"]), Some(OsStr::from_bytes(b"p\xfe*")));
        assert_eq!(a.value(&["--ref"]), None);
        assert_eq!(a.value(&["--threads"]), Some("4"));
        assert!(a.flag(&["--json"]));
        assert!(a.only_flags(&["--quiet"]).is_err());
        assert!(a.only_values(&["--ref", "--threads"]).is_ok());
        assert!(a.only_values(&["--ref"]).is_err());
        assert!(Args::parse(&os(&[b"--threads"]), &["--threads"], &[]).is_err());
        assert!(Args::parse(&os(&[b"--threads=\xff"]), &["--threads"], &[]).is_err());
        assert!(Args::parse(&os(&[b"--x\xff"]), &[], &[]).is_err());
    }
}
