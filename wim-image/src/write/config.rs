//! Capture configuration: which files a capture leaves out, in the INI-style format of
//! `wimlib-imagex capture --config` and ImageX's `Wimscript.ini`.
//!
//! * `[ExclusionList]`: path globs to leave out; a matched directory is left out with
//!   everything in it.
//! * `[ExclusionException]`: globs kept even when an exclusion matches them. A kept directory
//!   keeps its contents, and an absolute exception also keeps the directories on the way to
//!   it, so `/dir/file` can be kept inside an excluded `/dir`.
//! * `[PrepopulateList]` and `[CompressionExclusionList]` are accepted and do not affect
//!   capture; any other section is reported and ignored, as are lines outside a section.
//!
//! A glob starting with `/` or `\` is a path from the captured directory, matched one
//! component at a time; any other glob is one file name, matched against every component
//! of a path. `*` matches any run of characters and `?` one character, within a component.
//! Matching is case-sensitive (as wimlib's on UNIX). Lines starting with `#` or `;` are
//! comments; a glob may be quoted with `"` or `'`; a drive letter (`C:`) is removed. The
//! file may be UTF-8 (with or without a byte-order mark) or UTF-16LE (with one).
//!
//! Without a configuration, capture uses [`CaptureConfig::default`], wimlib's default list
//! (page file, hibernation file, recycle bins, `System Volume Information`, ...).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One glob.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Glob {
    /// A path from the capture root, by component.
    Path(Vec<String>),
    /// A file name, matched against any component.
    Name(String),
}

/// Why a configuration file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither UTF-8 nor UTF-16LE.
    #[error("the configuration is neither UTF-8 nor UTF-16LE text")]
    Encoding,
    /// A relative glob with a path separator (it could never match a file name).
    #[error(
        "line {line}: relative glob {glob:?} has more than one path component (try \"/{glob}\")"
    )]
    RelativePath {
        /// 1-based line number.
        line: usize,
        /// The glob.
        glob: String,
    },
}

/// Which files a capture leaves out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    exclusions: Vec<Glob>,
    exceptions: Vec<Glob>,
    /// Files left out by identity, (device, inode number): see
    /// [`CaptureConfig::exclude_file`].
    files: Vec<(u64, u64)>,
}

/// wimlib's default exclusion list (used when no configuration is given).
const DEFAULT_EXCLUSIONS: &[&str] = &[
    "\\$ntfs.log",
    "\\hiberfil.sys",
    "\\pagefile.sys",
    "\\swapfile.sys",
    "\\System Volume Information",
    "\\RECYCLER",
    "\\$RECYCLE.BIN",
    "\\$Recycle.Bin",
    "\\Windows\\CSC",
];

impl Default for CaptureConfig {
    /// wimlib's default: `\$ntfs.log`, `\hiberfil.sys`, `\pagefile.sys`, `\swapfile.sys`,
    /// `\System Volume Information`, `\RECYCLER`, `\$RECYCLE.BIN`, `\$Recycle.Bin` and
    /// `\Windows\CSC` are left out.
    fn default() -> Self {
        CaptureConfig {
            exclusions: DEFAULT_EXCLUSIONS
                .iter()
                .map(|g| glob(g).expect("absolute"))
                .collect(),
            exceptions: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// The glob on a (cleaned) line; `None` for a relative glob with a separator.
fn glob(text: &str) -> Option<Glob> {
    let t = text.replace('\\', "/");
    if let Some(rest) = t.strip_prefix('/') {
        let parts = rest
            .split('/')
            .filter(|c| !c.is_empty())
            .map(ToString::to_string)
            .collect();
        Some(Glob::Path(parts))
    } else if t.contains('/') {
        None
    } else {
        Some(Glob::Name(t))
    }
}

/// Whether `name` matches `pat` (`*`: any run, `?`: one character).
fn wildcard(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` take one more character.
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Glob {
    /// Whether the path (components from the root) or one of its ancestors matches.
    fn matches_within<S: AsRef<str>>(&self, path: &[S]) -> bool {
        match self {
            Glob::Path(g) => {
                !g.is_empty()
                    && g.len() <= path.len()
                    && g.iter().zip(path).all(|(g, c)| wildcard(g, c.as_ref()))
            }
            Glob::Name(g) => path.iter().any(|c| wildcard(g, c.as_ref())),
        }
    }

    /// Whether the path is a directory on the way to what the glob names.
    fn leads_to<S: AsRef<str>>(&self, path: &[S]) -> bool {
        match self {
            Glob::Path(g) => {
                g.len() > path.len() && g.iter().zip(path).all(|(g, c)| wildcard(g, c.as_ref()))
            }
            Glob::Name(_) => false,
        }
    }
}

impl CaptureConfig {
    /// A configuration that leaves nothing out.
    pub fn empty() -> Self {
        CaptureConfig {
            exclusions: Vec::new(),
            exceptions: Vec::new(),
            files: Vec::new(),
        }
    }

    /// Parses a configuration file's bytes (UTF-8, or UTF-16LE with a byte-order mark).
    /// Returns it with warnings (line numbers included) for what was ignored.
    ///
    /// # Errors
    ///
    /// [`ConfigError`]: text in neither encoding, or a relative glob with a separator.
    pub fn parse(bytes: &[u8]) -> Result<(Self, Vec<String>), ConfigError> {
        let text = if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
            if rest.len() % 2 != 0 {
                return Err(ConfigError::Encoding);
            }
            let units: Vec<u16> = rest
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| ConfigError::Encoding)?
        } else {
            let b = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
            String::from(core::str::from_utf8(b).map_err(|_| ConfigError::Encoding)?)
        };
        Self::parse_text(&text)
    }

    /// Parses configuration text; see [`parse`](Self::parse).
    ///
    /// # Errors
    ///
    /// [`ConfigError::RelativePath`] for a relative glob with a separator.
    pub fn parse_text(text: &str) -> Result<(Self, Vec<String>), ConfigError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Section {
            None,
            Exclusions,
            Exceptions,
            Ignored,
        }
        let mut config = CaptureConfig::empty();
        let mut warnings = Vec::new();
        let mut section = Section::None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                continue;
            }
            if t.starts_with('[') && t.ends_with(']') {
                section = match t {
                    "[ExclusionList]" => Section::Exclusions,
                    "[ExclusionException]" => Section::Exceptions,
                    "[PrepopulateList]" | "[CompressionExclusionList]" => Section::Ignored,
                    _ => {
                        warnings.push(format!("line {line}: unrecognized section {t:?}"));
                        Section::Ignored
                    }
                };
                continue;
            }
            let list = match section {
                Section::Exclusions => &mut config.exclusions,
                Section::Exceptions => &mut config.exceptions,
                Section::Ignored => continue,
                Section::None => {
                    warnings.push(format!("line {line}: not in a bracketed section"));
                    continue;
                }
            };
            let mut g = t;
            for q in ['"', '\''] {
                if g.len() >= 2 && g.starts_with(q) && g.ends_with(q) {
                    g = &g[1..g.len() - 1];
                }
            }
            let b = g.as_bytes();
            if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
                warnings.push(format!("line {line}: drive letter removed from {g:?}"));
                g = &g[2..];
            }
            let parsed = glob(g).ok_or_else(|| ConfigError::RelativePath {
                line,
                glob: g.to_string(),
            })?;
            list.push(parsed);
        }
        Ok((config, warnings))
    }

    /// Leaves out the regular file with this (device, inode number) wherever it is met,
    /// whatever the patterns say: the WIM a capture is writing, when it lies inside the
    /// directory captured (wimlib leaves it out too).
    pub fn exclude_file(&mut self, dev: u64, ino: u64) {
        self.files.push((dev, ino));
    }

    /// Whether the regular file with this (device, inode number) is left out
    /// ([`CaptureConfig::exclude_file`]).
    pub fn excludes_file(&self, dev: u64, ino: u64) -> bool {
        self.files.contains(&(dev, ino))
    }

    /// Whether the file at `path` (its components from the captured directory; the root
    /// itself is never left out) is left out.
    pub fn excludes<S: AsRef<str>>(&self, path: &[S]) -> bool {
        if path.is_empty() || !self.exclusions.iter().any(|g| g.matches_within(path)) {
            return false;
        }
        !self
            .exceptions
            .iter()
            .any(|g| g.matches_within(path) || g.leads_to(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> CaptureConfig {
        CaptureConfig::parse_text(text).unwrap().0
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.mp3", "a.mp3"));
        assert!(!wildcard("*.mp3", "a.mp3x"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*a*b*", "xxaybzz"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("", "a"));
        assert!(wildcard("ab*", "ab"));
        assert!(!wildcard("PAGEFILE.SYS", "pagefile.sys"), "case-sensitive");
    }

    #[test]
    fn default_list_is_absolute() {
        let c = CaptureConfig::default();
        assert!(c.excludes(&["pagefile.sys"]));
        assert!(!c.excludes(&["sub", "pagefile.sys"]));
        assert!(c.excludes(&["System Volume Information", "x"]));
        assert!(c.excludes(&["Windows", "CSC"]));
        assert!(!c.excludes(&["Windows"]));
        assert!(!c.excludes::<&str>(&[]));
    }

    #[test]
    fn exceptions_keep_paths_inside_excluded_directories() {
        let c = cfg("[ExclusionList]\n/a/*\n*.mp3\n[ExclusionException]\n/a/b/z.log\nkeep.mp3\n");
        assert!(!c.excludes(&["a"]));
        assert!(!c.excludes(&["a", "b"]), "on the way to an exception");
        assert!(!c.excludes(&["a", "b", "z.log"]));
        assert!(c.excludes(&["a", "b", "x.txt"]));
        assert!(c.excludes(&["a", "y.txt"]));
        assert!(c.excludes(&["c", "song.mp3"]));
        assert!(!c.excludes(&["c", "keep.mp3"]));
    }

    #[test]
    fn parsing_rules() {
        let (c, w) = CaptureConfig::parse_text(
            "x\n# comment\n; comment\n[Foo]\ny\n[ExclusionList]\n\"/q d\"\nC:\\c\\x.txt\n",
        )
        .unwrap();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(c.excludes(&["q d"]));
        assert!(c.excludes(&["c", "x.txt"]));
        assert!(!c.excludes(&["y"]));
        assert_eq!(
            CaptureConfig::parse_text("[ExclusionList]\nb/x.txt\n").unwrap_err(),
            ConfigError::RelativePath {
                line: 2,
                glob: "b/x.txt".into()
            }
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "[ExclusionList]\r\n*.log\r\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert!(CaptureConfig::parse(&utf16).unwrap().0.excludes(&["x.log"]));
        assert_eq!(CaptureConfig::parse(&[0xC0]), Err(ConfigError::Encoding));
    }
}
