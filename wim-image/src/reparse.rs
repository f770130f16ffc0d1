//! Symbolic-link and junction reparse data, and their translation to UNIX link targets.
//!
//! The stored reparse stream is the reparse buffer without its 8-byte header (tag, data
//! length and reserved field live in the dentry). For a symlink it starts with
//! `u16 substitute_offset, u16 substitute_len, u16 print_offset, u16 print_len, u32 flags`,
//! for a junction with the same four fields and no flags; the names follow, UTF-16LE.

use alloc::string::String;

use crate::defs::{ReparseTag, RP_FLAG_NOT_FIXED, SYMLINK_FLAG_RELATIVE};
use crate::dentry::utf16_name;

/// The most reparse data (without the 8-byte header) a file can carry: NTFS's
/// `MAXIMUM_REPARSE_DATA_BUFFER_SIZE` (16 KiB) less the header, as wimlib limits it
/// (`REPARSE_DATA_MAX_SIZE`).
pub const MAX_REPARSE_DATA: usize = 16 * 1024 - 8;

/// Why reparse data is not a usable link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReparseError {
    /// Not a symlink or junction tag.
    #[error("reparse tag {tag:?} is not a symbolic link or junction")]
    NotALink {
        /// The tag.
        tag: ReparseTag,
    },
    /// The reparse data is larger than any file system can hold ([`MAX_REPARSE_DATA`]).
    #[error("reparse data of {size} bytes exceeds the {MAX_REPARSE_DATA}-byte limit")]
    TooLarge {
        /// Its (claimed) size.
        size: u64,
    },
    /// The buffer is too short, names are misaligned or pass its end, or are not UTF-16.
    #[error("malformed link reparse data at byte {offset}")]
    Malformed {
        /// Where in the reparse data.
        offset: usize,
    },
}

/// A parsed symbolic link or junction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkReparse {
    /// The tag (symlink or junction).
    pub tag: ReparseTag,
    /// The NT "substitute name" (the target Windows follows).
    pub substitute_name: String,
    /// The name shown to users.
    pub print_name: String,
    /// Symlink flags (`SYMLINK_FLAG_RELATIVE`); 0 for junctions.
    pub flags: u32,
}

impl LinkReparse {
    /// Parses reparse data (without the 8-byte header).
    pub fn parse(tag: ReparseTag, data: &[u8]) -> Result<LinkReparse, ReparseError> {
        let hdr = match tag {
            ReparseTag::SYMLINK => 12,
            ReparseTag::MOUNT_POINT => 8,
            tag => return Err(ReparseError::NotALink { tag }),
        };
        let bad = |offset| ReparseError::Malformed { offset };
        if data.len() > MAX_REPARSE_DATA {
            return Err(ReparseError::TooLarge {
                size: data.len() as u64,
            });
        }
        if data.len() < hdr {
            return Err(bad(data.len()));
        }
        let w = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]) as usize;
        let (so, sl, po, pl) = (w(0), w(2), w(4), w(6));
        if (so | sl | po | pl) & 1 != 0 {
            return Err(bad(0));
        }
        let flags = if hdr == 12 {
            u32::from_le_bytes([data[8], data[9], data[10], data[11]])
        } else {
            0
        };
        let names = &data[hdr..];
        let get = |o: usize, l: usize| names.get(o..o + l).ok_or(bad(hdr + o));
        Ok(LinkReparse {
            tag,
            substitute_name: utf16_name(get(so, sl)?, 0).map_err(|_| bad(hdr + so))?,
            print_name: utf16_name(get(po, pl)?, 0).map_err(|_| bad(hdr + po))?,
            flags,
        })
    }

    /// Whether the target is relative to the link's directory.
    pub fn is_relative(&self) -> bool {
        self.tag == ReparseTag::SYMLINK && self.flags & SYMLINK_FLAG_RELATIVE != 0
    }

    /// The UNIX link target. Absolute NT paths lose their device part (`\??\C:`);
    /// separators are swapped (`\` ↔ `/`). If the target was "fixed" at capture (absolute,
    /// `rp_flags` without NOT_FIXED) and `fixup_root` is given, the target is made absolute
    /// under that directory (the directory the image is applied to).
    pub fn unix_target(&self, rp_flags: u16, fixup_root: Option<&str>) -> String {
        let mut t = self.substitute_name.as_str();
        let mut fixed = false;
        if !self.is_relative() {
            for prefix in ["\\??\\", "\\DosDevices\\", "\\Device\\"] {
                if let Some(rest) = t.strip_prefix(prefix) {
                    let rest = rest.trim_start_matches('\\');
                    t = rest.find('\\').map_or("", |i| &rest[i..]);
                    break;
                }
            }
            fixed = rp_flags & RP_FLAG_NOT_FIXED == 0;
        }
        let mut out = String::new();
        if let (true, Some(root)) = (fixed, fixup_root) {
            out.push_str(root);
        } else if t.is_empty() {
            out.push('/');
        }
        out.extend(t.chars().map(|c| match c {
            '\\' => '/',
            '/' => '\\',
            c => c,
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn symlink(target: &str, flags: u32) -> Vec<u8> {
        let name: Vec<u8> = target.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let n = name.len() as u16;
        let mut v = Vec::new();
        for x in [0, n, n + 2, n] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(&name);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&name);
        v
    }

    #[test]
    fn relative_and_absolute() {
        let l = LinkReparse::parse(ReparseTag::SYMLINK, &symlink("..\\a\\b", 1)).unwrap();
        assert_eq!(l.unix_target(0, Some("/t")), "../a/b");
        let l = LinkReparse::parse(ReparseTag::SYMLINK, &symlink("\\??\\C:\\usr\\bin", 0)).unwrap();
        assert_eq!(l.unix_target(0, None), "/usr/bin");
        assert_eq!(l.unix_target(0, Some("/t")), "/t/usr/bin");
        assert_eq!(l.unix_target(RP_FLAG_NOT_FIXED, Some("/t")), "/usr/bin");
    }

    #[test]
    fn malformed() {
        let mut d = symlink("abc", 1);
        d[2] = 200;
        assert!(LinkReparse::parse(ReparseTag::SYMLINK, &d).is_err());
        assert!(LinkReparse::parse(ReparseTag::SYMLINK, &d[..5]).is_err());
        assert!(LinkReparse::parse(ReparseTag::WOF, &d).is_err());
    }
}
