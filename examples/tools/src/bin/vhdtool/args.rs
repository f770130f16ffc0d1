//! A small hand-written argument parser: positional arguments, `-x VALUE`, `--long VALUE`,
//! `--long=VALUE` and boolean flags. Arguments are `OsString`s: paths need not be UTF-8, while
//! a number or keyword that is not UTF-8 is a usage error.

#[path = "../../shared/args.rs"]
mod common;

pub use common::{parse_size, Args, UsageError};

use std::ffi::{OsStr, OsString};

/// `text` as UTF-8, or a usage error naming `what`.
pub fn utf8<'a>(text: &'a OsStr, what: &str) -> Result<&'a str, UsageError> {
    text.to_str()
        .ok_or_else(|| UsageError(format!("{what} {text:?} is not valid UTF-8")))
}

/// Splits an option argument into its name and, for `--name=value`, the inline value.
fn split_option(arg: &OsStr) -> Result<(String, Option<OsString>), UsageError> {
    if let Some(text) = arg.to_str() {
        return Ok(match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(OsString::from(v))),
            _ => (text.to_string(), None),
        });
    }
    // Not UTF-8: only the value of `--name=value` may be (a path, say).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = arg.as_bytes();
        if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
            if let Ok(name) = std::str::from_utf8(&bytes[..eq]) {
                if name.starts_with("--") {
                    let value = OsStr::from_bytes(&bytes[eq + 1..]).to_os_string();
                    return Ok((name.to_string(), Some(value)));
                }
            }
        }
    }
    Err(UsageError(format!("unknown option {arg:?}")))
}

impl Args {
    /// Parses `raw`; `with_value` lists the options that take a value (e.g. `-s`, `--size`).
    pub fn parse(raw: &[OsString], with_value: &[&str]) -> Result<Self, UsageError> {
        let mut a = Args::default();
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            if arg == "--" {
                a.positional.extend(it.by_ref().cloned());
                break;
            }
            let bytes = arg.as_encoded_bytes();
            let is_number = arg.to_str().is_some_and(|t| t.parse::<i64>().is_ok());
            if bytes.first() == Some(&b'-') && bytes.len() > 1 && !is_number {
                let (name, inline) = split_option(arg)?;
                if with_value.contains(&name.as_str()) {
                    let v = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .cloned()
                            .ok_or_else(|| UsageError(format!("{name} needs a value")))?,
                    };
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

    /// The value of the first of `names` given, which must be UTF-8 (a number or keyword).
    pub fn value(&self, names: &[&str]) -> Result<Option<&str>, UsageError> {
        match names.iter().find_map(|n| self.values.get_key_value(*n)) {
            Some((name, v)) => utf8(v, &format!("{name} value")).map(Some),
            None => Ok(None),
        }
    }
}

/// Parses a pattern byte: one or two hex digits, optionally after a single `0x`.
pub fn parse_byte(text: &str) -> Result<u8, UsageError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(byte) = u8::from_str_radix(digits, 16) {
            return Ok(byte);
        }
    }
    Err(UsageError(format!(
        "invalid pattern byte {text:?} (one byte in hex, e.g. 5a or 0x5a)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn options() {
        let raw = os(&["a", "-s", "1M", "--json", "--block-size=4M", "b"]);
        let a = Args::parse(&raw, &["-s", "--block-size"]).unwrap();
        assert_eq!(a.positional, ["a", "b"]);
        assert_eq!(a.value(&["-s"]).unwrap(), Some("1M"));
        assert_eq!(a.value(&["--block-size"]).unwrap(), Some("4M"));
        assert!(a.flag(&["--json"]));
        assert!(a.only_flags(&["--quiet"]).is_err());
        assert!(Args::parse(&os(&["-s"]), &["-s"]).is_err());
    }

    #[test]
    fn pattern_bytes() {
        assert_eq!(parse_byte("41").unwrap(), 0x41);
        assert_eq!(parse_byte("0x5a").unwrap(), 0x5a);
        assert_eq!(parse_byte("0XfF").unwrap(), 0xff);
        assert_eq!(parse_byte("a").unwrap(), 0x0a);
        for bad in ["0x0x41", "+41", "-1", "", "0x", "100", "0x100", " 41", "4g"] {
            assert!(parse_byte(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(b"\xff.vhd".to_vec());
        let mut inline = b"--parent-dir=".to_vec();
        inline.extend_from_slice(b"d\xff");
        let raw = vec![
            bad.clone(),
            OsString::from("-s"),
            bad.clone(),
            OsString::from_vec(inline),
        ];
        let a = Args::parse(&raw, &["-s", "--parent-dir"]).unwrap();
        assert_eq!(a.positional, std::slice::from_ref(&bad));
        assert_eq!(a.value_os(&["-s"]), Some(bad.as_os_str()));
        assert!(a.value(&["-s"]).is_err());
        assert_eq!(
            a.value_os(&["--parent-dir"]),
            Some(OsString::from_vec(b"d\xff".to_vec()).as_os_str())
        );
        let flag = OsString::from_vec(b"--x\xff".to_vec());
        assert!(Args::parse(&[flag], &[]).is_err());
    }
}
