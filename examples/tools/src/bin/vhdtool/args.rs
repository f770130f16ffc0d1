//! A small hand-written argument parser: positional arguments, `-x VALUE`, `--long VALUE`,
//! `--long=VALUE` and boolean flags.

use std::collections::HashMap;

/// Parsed arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    values: HashMap<String, String>,
    flags: Vec<String>,
}

/// A usage error (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl Args {
    /// Parses `raw`; `with_value` lists the options that take a value (e.g. `-s`, `--size`).
    pub fn parse(raw: &[String], with_value: &[&str]) -> Result<Self, UsageError> {
        let mut a = Args::default();
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            if arg == "--" {
                a.positional.extend(it.by_ref().cloned());
                break;
            }
            if arg.starts_with('-') && arg.len() > 1 && arg.parse::<i64>().is_err() {
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                    _ => (arg.clone(), None),
                };
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

    /// The value of the first of `names` given.
    pub fn value(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|n| self.values.get(*n).map(String::as_str))
    }

    /// Whether any of `names` was given as a flag.
    pub fn flag(&self, names: &[&str]) -> bool {
        self.flags.iter().any(|f| names.contains(&f.as_str()))
    }

    /// Fails on flags not in `known`.
    pub fn only_flags(&self, known: &[&str]) -> Result<(), UsageError> {
        match self.flags.iter().find(|f| !known.contains(&f.as_str())) {
            Some(f) => Err(UsageError(format!("unknown option {f}"))),
            None => Ok(()),
        }
    }

    /// Exactly `n` positional arguments, named for the error message.
    pub fn positional(&self, names: &[&str]) -> Result<&[String], UsageError> {
        if self.positional.len() != names.len() {
            return Err(UsageError(format!(
                "expected {} argument(s): {}",
                names.len(),
                names.join(" ")
            )));
        }
        Ok(&self.positional)
    }
}

/// Parses a size: a number with an optional `K`, `M`, `G` or `T` suffix (powers of 1024,
/// optional trailing `B`/`iB`).
pub fn parse_size(text: &str) -> Result<u64, UsageError> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        Some('t' | 'T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| UsageError(format!("invalid size {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn options() {
        let raw: Vec<String> = ["a", "-s", "1M", "--json", "--block-size=4M", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = Args::parse(&raw, &["-s", "--block-size"]).unwrap();
        assert_eq!(a.positional, ["a", "b"]);
        assert_eq!(a.value(&["-s"]), Some("1M"));
        assert_eq!(a.value(&["--block-size"]), Some("4M"));
        assert!(a.flag(&["--json"]));
        assert!(a.only_flags(&["--quiet"]).is_err());
        assert!(Args::parse(&["-s".to_string()], &["-s"]).is_err());
    }
}
