//! An image's metadata resource: the security data, then the directory tree.
//!
//! ```text
//! 0                total_length           root           children of a directory
//! ┌──────────────┬──────────────────────┬──────┬───────┬──────┬──────┬───────┐
//! │ security data│ (descriptors, pad 8) │ root │ 0 (8) │ d1   │ d2 … │ 0 (8) │ …
//! └──────────────┴──────────────────────┴──────┴───────┴──────┴──────┴───────┘
//!                                         subdir_offset ──┘
//! ```
//!
//! The tree is checked: every directory's child list is read once (a list reached twice is a
//! cycle or a shared subtree and is rejected), depth is limited, names must not be empty,
//! `.`, `..`, or contain `/`, `\0`; of two children with the same name the first is kept
//! (names compare as stored, by exact UTF-16 units: two names that differ only in their
//! unpaired surrogates are both kept, though their lossy strings are the same).

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use crate::dentry::{read_dentry, Dentry, Read};

/// The deepest directory nesting accepted (wimlib's limit).
pub const MAX_DEPTH: u32 = 16384;

/// Why a metadata resource was rejected. Offsets are into the uncompressed resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The security data header or descriptor sizes do not fit.
    #[error("security data invalid at offset {offset}: {what}")]
    Security {
        /// Where.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// A dentry or stream entry does not fit or is inconsistent.
    #[error("dentry at offset {offset} is invalid: {what}")]
    Dentry {
        /// Where.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// A short name or named-stream name that is not valid UTF-16 (long names may hold
    /// unpaired surrogates: see [`Dentry::name_utf16`]).
    #[error("dentry at offset {offset} has a name that is not valid UTF-16")]
    BadName {
        /// Where.
        offset: u64,
    },
    /// A name that is empty, `.`, `..`, or contains `/` or NUL.
    #[error("dentry at offset {offset} has a forbidden name {name:?}")]
    ForbiddenName {
        /// Where.
        offset: u64,
        /// The name.
        name: String,
    },
    /// The root is missing or not a directory.
    #[error("the root dentry at offset {offset} is missing or not a directory")]
    Root {
        /// Where it should be.
        offset: u64,
    },
    /// A child list reached twice (a cycle or shared subtree).
    #[error("directory at offset {offset} points at children at {subdir_offset} already used")]
    Cycle {
        /// The directory.
        offset: u64,
        /// Where its children are.
        subdir_offset: u64,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("directory at offset {offset} is nested deeper than {MAX_DEPTH}")]
    TooDeep {
        /// The directory.
        offset: u64,
    },
    /// The list of security descriptors the header counts is larger than the memory at
    /// hand.
    #[error(transparent)]
    OutOfMemory(#[from] crate::mem::AllocError),
}

/// The security descriptors of an image, in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityData {
    /// Self-relative NT security descriptors.
    pub descriptors: Vec<Vec<u8>>,
    /// Where the dentries start (the 8-aligned total length).
    pub total_length: u64,
}

impl SecurityData {
    /// Parses the security data at the start of a metadata resource.
    pub fn parse(buf: &[u8]) -> Result<SecurityData, MetadataError> {
        let err = |offset: u64, what| MetadataError::Security { offset, what };
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
        };
        let total = word(0).ok_or(err(0, "truncated header"))? as u64;
        let count = word(4).ok_or(err(4, "truncated header"))? as u64;
        let total = if total == 0 { 8 } else { total };
        let total_aligned = (total + 7) & !7;
        if total_aligned > buf.len() as u64 {
            return Err(err(0, "total length passes the end of the metadata"));
        }
        let sizes_end = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(8))
            .filter(|&e| e <= total)
            .ok_or(err(4, "descriptor count does not fit the total length"))?;
        let mut descriptors = crate::mem::with_capacity(crate::mem::len::<Vec<u8>>(count)?)?;
        let mut p = sizes_end;
        for i in 0..count {
            let at = (8 + i * 8) as usize;
            let size = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or([0; 8]));
            let end = p
                .checked_add(size)
                .filter(|&e| e <= total)
                .ok_or(err(at as u64, "descriptor passes the total length"))?;
            descriptors.push(buf[p as usize..end as usize].to_vec());
            p = end;
        }
        Ok(SecurityData {
            descriptors,
            total_length: total_aligned,
        })
    }
}

/// Index of a node in [`Tree::nodes`].
pub type NodeId = u32;

/// A dentry in the tree.
#[derive(Clone, Debug)]
pub struct Node {
    /// The dentry.
    pub dentry: Dentry,
    /// The parent (the root is its own parent).
    pub parent: NodeId,
    /// The children, a contiguous range of node ids, sorted as stored.
    pub children: Range<NodeId>,
    /// Depth (root = 0).
    pub depth: u32,
}

/// A decoded metadata resource: security data and the checked directory tree.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Security descriptors.
    pub security: SecurityData,
    /// Every dentry; 0 is the root. Children of a directory are contiguous.
    pub nodes: Vec<Node>,
    /// Children dropped because an earlier sibling had the same name.
    pub duplicates_dropped: u32,
}

impl Tree {
    /// Parses and checks a whole metadata resource.
    pub fn parse(buf: &[u8]) -> Result<Tree, MetadataError> {
        let security = SecurityData::parse(buf)?;
        let root_off = security.total_length;
        let root = match read_dentry(buf, root_off)? {
            Read::Dentry(d, _) if d.is_dir() => *d,
            _ => return Err(MetadataError::Root { offset: root_off }),
        };
        let mut nodes = Vec::new();
        nodes.push(Node {
            dentry: root,
            parent: 0,
            children: 0..0,
            depth: 0,
        });
        let mut used_lists = BTreeSet::new();
        // One bit per 8-byte position: a dentry read twice means overlapping child lists.
        let mut seen = alloc::vec![0u64; buf.len() / 512 + 1];
        let mut duplicates_dropped = 0;
        let mut next = 0usize;
        // Breadth first: each directory's children are appended contiguously.
        while next < nodes.len() {
            let id = next as NodeId;
            next += 1;
            let n = &nodes[id as usize];
            let (sub, depth, offset) = (n.dentry.subdir_offset, n.depth, n.dentry.offset);
            let first = nodes.len() as NodeId;
            if !n.dentry.is_dir() || sub == 0 {
                nodes[id as usize].children = first..first;
                continue;
            }
            if depth + 1 > MAX_DEPTH {
                return Err(MetadataError::TooDeep { offset });
            }
            if !used_lists.insert(sub) || sub <= root_off {
                return Err(MetadataError::Cycle {
                    offset,
                    subdir_offset: sub,
                });
            }
            let mut names: BTreeSet<(String, Option<Vec<u16>>)> = BTreeSet::new();
            let mut at = sub;
            loop {
                match read_dentry(buf, at)? {
                    Read::End => break,
                    Read::Dentry(d, after) => {
                        let bit = (at / 8) as usize;
                        if seen[bit / 64] & (1 << (bit % 64)) != 0 {
                            return Err(MetadataError::Cycle {
                                offset,
                                subdir_offset: sub,
                            });
                        }
                        seen[bit / 64] |= 1 << (bit % 64);
                        at = after;
                        check_name(&d)?;
                        if !names.insert((d.name.clone(), d.name_utf16.clone())) {
                            duplicates_dropped += 1;
                            continue;
                        }
                        nodes.push(Node {
                            dentry: *d,
                            parent: id,
                            children: 0..0,
                            depth: depth + 1,
                        });
                    }
                }
            }
            nodes[id as usize].children = first..nodes.len() as NodeId;
        }
        Ok(Tree {
            security,
            nodes,
            duplicates_dropped,
        })
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The children of `id`.
    pub fn children(&self, id: NodeId) -> Range<NodeId> {
        self.nodes[id as usize].children.clone()
    }

    /// Finds a child of `dir` by exact name, compared with [`Dentry::name`]: a name that is not
    /// valid UTF-16 is found by its lossy form (the first of the children sharing it), when
    /// no child has exactly that (valid) name.
    pub fn child(&self, dir: NodeId, name: &str) -> Option<NodeId> {
        let named = |exact: bool| {
            move |&c: &NodeId| {
                let d = &self.nodes[c as usize].dentry;
                d.name == name && (!exact || d.name_utf16.is_none())
            }
        };
        let mut children = self.children(dir);
        children
            .clone()
            .find(named(true))
            .or_else(|| children.find(named(false)))
    }

    /// Finds a node by path (`/`-separated, relative to the root; empty = root), the form
    /// [`Tree::path`] returns. A backslash is part of a name, not a separator: names captured
    /// on UNIX may contain one, and every node must stay reachable by its path. Names compare
    /// as in [`Tree::child`].
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        let mut cur = 0;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = self.child(cur, part)?;
        }
        Some(cur)
    }

    /// Finds a node by path given as [WTF-8](crate::wtf8) bytes (a Linux file name's form of
    /// a name with unpaired surrogates, as [`Dentry::name_wtf8`] gives it): a component
    /// that is UTF-8 compares as in [`Tree::child`]; one with unpaired surrogates only with
    /// a name of exactly those units. `None` also for bytes that are not WTF-8.
    pub fn lookup_wtf8(&self, path: &[u8]) -> Option<NodeId> {
        let mut cur = 0;
        for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            cur = match core::str::from_utf8(part) {
                Ok(s) => self.child(cur, s)?,
                Err(_) => {
                    let units = crate::wtf8::decode(part)?;
                    self.children(cur).find(|&c| {
                        self.nodes[c as usize].dentry.name_utf16.as_deref() == Some(&units[..])
                    })?
                }
            };
        }
        Some(cur)
    }

    /// The path of `id` from the root, `/`-separated, starting with `/`, made of the (possibly
    /// lossy, see [`Dentry::name_utf16`]) names.
    pub fn path(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut cur = id;
        while cur != 0 {
            let n = &self.nodes[cur as usize];
            parts.push(n.dentry.name.as_str());
            cur = n.parent;
        }
        let mut s = String::new();
        for p in parts.iter().rev() {
            s.push('/');
            s.push_str(p);
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }

    /// Every node in depth-first pre-order (parents before children, siblings as stored).
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            tree: self,
            stack: alloc::vec![0],
        }
    }
}

/// Depth-first pre-order iterator over a [`Tree`].
#[derive(Debug)]
pub struct Walk<'a> {
    tree: &'a Tree,
    stack: Vec<NodeId>,
}

impl Iterator for Walk<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let id = self.stack.pop()?;
        self.stack.extend(self.tree.children(id).rev());
        Some(id)
    }
}

/// Names must be usable as one path component.
fn check_name(d: &Dentry) -> Result<(), MetadataError> {
    let n = d.name.as_str();
    if n.is_empty() || n == "." || n == ".." || n.contains(['/', '\0']) {
        return Err(MetadataError::ForbiddenName {
            offset: d.offset,
            name: d.name.clone(),
        });
    }
    Ok(())
}
