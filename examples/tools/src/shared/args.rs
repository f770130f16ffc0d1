//! What the tools' argument parsers share: the parsed arguments and their common accessors,
//! the usage error, and sizes. Each tool adds its own `Args::parse` (which options take values,
//! which of those may be any bytes) and its value accessor.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

/// Parsed arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    /// The positional arguments, as given.
    pub positional: Vec<OsString>,
    /// Value options by name, as given.
    pub values: HashMap<String, OsString>,
    /// Flags given.
    pub flags: Vec<String>,
}

/// A usage error (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl Args {
    /// The value of the first of `names` given, as given.
    pub fn value_os(&self, names: &[&str]) -> Option<&OsStr> {
        names
            .iter()
            .find_map(|n| self.values.get(*n).map(OsString::as_os_str))
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
    pub fn positional(&self, names: &[&str]) -> Result<&[OsString], UsageError> {
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
    size(text).ok_or_else(|| UsageError(format!("invalid size {text:?}")))
}

/// The size `text` gives, `None` if it is not one or overflows.
fn size(text: &str) -> Option<u64> {
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
}

#[cfg(test)]
mod tests {
    use super::size as parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("12X"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
