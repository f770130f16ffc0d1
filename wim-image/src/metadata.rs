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
//! cycle or a shared subtree and is rejected), no byte is read as part of two entries (a list
//! overlapping another, or the root's entry, is rejected: a dentry's stream entries running
//! over other dentries would otherwise be read again for each of them), depth is limited,
//! names must not be empty,
//! `.`, `..`, or contain `/`, `\0`; of two children with the same name the first is kept
//! (names compare as stored, by exact UTF-16 units: two names that differ only in their
//! unpaired surrogates are both kept, though their lossy strings are the same).

use alloc::collections::{BTreeMap, BTreeSet};
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
    /// A child list whose entries (dentries, their stream entries and tagged items) share
    /// bytes with another list's or the root's: a chain of stream entries running over
    /// other dentries, or a list starting inside another. Genuine metadata stores each
    /// entry once; reading shared bytes again for each list that covers them would cost
    /// the product of their lengths.
    #[error("directory at offset {offset} has children at {subdir_offset} overlapping entries already read")]
    Overlap {
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

/// Index of a node in [`Tree::nodes`]: ids come from the tree's own lookups and walks
/// ([`Tree::lookup`], [`Tree::walk`], [`Node::children`]); an id of another tree may be out
/// of range here ([`Tree::get`] tells).
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
    security: SecurityData,
    /// Every dentry; 0 is the root. Children of a directory are contiguous.
    nodes: Vec<Node>,
    /// Children dropped because an earlier sibling had the same name.
    duplicates_dropped: u32,
}

impl Tree {
    /// Parses and checks a whole metadata resource.
    pub fn parse(buf: &[u8]) -> Result<Tree, MetadataError> {
        Self::parse_counting(buf, &mut 0)
    }

    /// [`parse`](Self::parse), adding to `work` the bytes of every entry read (end markers
    /// count 8): every list is read once and recorded only if it overlaps no list before
    /// it, so `work` stays below twice the resource's length plus 8 per directory.
    fn parse_counting(buf: &[u8], work: &mut u64) -> Result<Tree, MetadataError> {
        let security = SecurityData::parse(buf)?;
        let root_off = security.total_length;
        let mut spans = Spans::default();
        let root = match read_dentry(buf, root_off)? {
            Read::Dentry(d, after) if d.is_dir() => {
                *work += after - root_off;
                spans.insert(root_off, after);
                *d
            }
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
                        *work += after - at;
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
            *work += 8;
            // The list's entries lie in [sub, at): read once, they must not be read again
            // as part of another list (the end marker, 8 bytes read at no cost, may be
            // shared, as an empty directory may point at another list's).
            if !spans.insert(sub, at) {
                return Err(MetadataError::Overlap {
                    offset,
                    subdir_offset: sub,
                });
            }
            nodes[id as usize].children = first..nodes.len() as NodeId;
        }
        Ok(Tree {
            security,
            nodes,
            duplicates_dropped,
        })
    }

    /// The security descriptors.
    pub fn security(&self) -> &SecurityData {
        &self.security
    }

    /// Every node, indexed by [`NodeId`]; 0 is the root, and the children of a directory
    /// are contiguous. Never empty.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Children left out because an earlier sibling had the same name.
    pub fn duplicates_dropped(&self) -> u32 {
        self.duplicates_dropped
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node `id`, or `None` if the tree has no such node (an id of another tree).
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(usize::try_from(id).ok()?)
    }

    /// The node `id`.
    ///
    /// # Panics
    /// If the tree has no node `id`; an id this tree handed out is always valid.
    /// [`get`](Self::get) returns `None` instead.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The children of `id`.
    ///
    /// # Panics
    /// If the tree has no node `id`, as [`node`](Self::node) (`get(id)` and its
    /// [`Node::children`] do not panic).
    pub fn children(&self, id: NodeId) -> Range<NodeId> {
        self.node(id).children.clone()
    }

    /// Finds a child of `dir` by exact name, compared with [`Dentry::name`]: a name that is not
    /// valid UTF-16 is found by its lossy form (the first of the children sharing it), when
    /// no child has exactly that (valid) name. `None` also if the tree has no node `dir`.
    pub fn child(&self, dir: NodeId, name: &str) -> Option<NodeId> {
        let named = |exact: bool| {
            move |&c: &NodeId| {
                let d = &self.nodes[c as usize].dentry;
                d.name == name && (!exact || d.name_utf16.is_none())
            }
        };
        let mut children = self.get(dir)?.children.clone();
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
    ///
    /// # Panics
    /// If the tree has no node `id`, as [`node`](Self::node); check with
    /// [`get`](Self::get) first for an id not from this tree.
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

/// Byte ranges of a metadata resource already read as entries, disjoint, by start.
#[derive(Default)]
struct Spans(BTreeMap<u64, u64>);

impl Spans {
    /// Records `[start, end)`; `false` (nothing recorded) if it overlaps a recorded range.
    /// An empty range overlaps nothing.
    fn insert(&mut self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        // The recorded range starting last before `end` is the only one that can overlap:
        // those before it end at or before its start.
        if let Some((_, &e)) = self.0.range(..end).next_back() {
            if e > start {
                return false;
            }
        }
        self.0.insert(start, end);
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::{FileAttributes, DENTRY_DISK_SIZE, STREAM_ENTRY_DISK_SIZE};

    /// A stream entry without a name, as stored (8-aligned).
    const ENTRY: usize = (STREAM_ENTRY_DISK_SIZE + 7) & !7;

    fn put(b: &mut [u8], at: usize, v: &[u8]) {
        b[at..at + v.len()].copy_from_slice(v);
    }

    /// A directory dentry named "a" at `at` with children at `sub` and `streams` extra
    /// stream entries following it; returns its length (without the stream entries).
    fn dir(b: &mut [u8], at: usize, sub: u64, streams: u16) -> usize {
        let len = (DENTRY_DISK_SIZE + 2 + 2 + 7) & !7;
        put(b, at, &(len as u64).to_le_bytes());
        put(b, at + 8, &FileAttributes::DIRECTORY.bits().to_le_bytes());
        put(b, at + 12, &(-1i32).to_le_bytes());
        put(b, at + 16, &sub.to_le_bytes());
        put(b, at + 96, &streams.to_le_bytes());
        put(b, at + 100, &2u16.to_le_bytes());
        put(b, at + 102, &[b'a', 0]);
        len
    }

    /// `k` nested directories Y_1 … Y_k laid out in one run of stream entries: Y_j's
    /// stream entries run from just after it to a shared end, over Y_{j+1} … Y_k (a dentry
    /// also reads as a stream entry). Without the overlap check each Y_j's list is read
    /// whole again: about k × (run length) bytes.
    fn overlapping_chains(k: usize, plain: usize) -> Vec<u8> {
        let ylen = (DENTRY_DISK_SIZE + 4 + 7) & !7;
        let step = ylen + ENTRY * plain;
        let root = 8;
        let first = root + ylen;
        let end = first + k * step;
        let mut b = vec![0u8; end + 8];
        put(&mut b, 0, &8u32.to_le_bytes());
        dir(&mut b, root, first as u64, 0);
        b[root + 100..root + 104].fill(0); // the root has no name
        for j in 0..k {
            let y = first + j * step;
            let sub = if j + 1 < k { (y + step) as u64 } else { 0 };
            let n = (k - j - 1) + (k - j) * plain;
            dir(&mut b, y, sub, n as u16);
            for e in 0..plain {
                let at = y + ylen + ENTRY * e;
                put(&mut b, at, &(ENTRY as u64).to_le_bytes());
                put(&mut b, at + 16, &[0x11; 20]);
            }
        }
        b
    }

    #[test]
    fn overlapping_stream_chains_are_refused_after_linear_work() {
        let b = overlapping_chains(40, 30);
        let mut work = 0;
        let r = Tree::parse_counting(&b, &mut work);
        assert!(
            matches!(r, Err(MetadataError::Overlap { .. })),
            "{:?}",
            r.map(|t| t.nodes.len())
        );
        // The root's list is read once, Y_1's (inside it) once more, then refused.
        assert!(
            work <= 2 * b.len() as u64,
            "{work} bytes read of {}",
            b.len()
        );
    }

    #[test]
    fn a_list_starting_inside_another_is_refused() {
        // The root's list holds Y and Z; Y's children start at Z, already read.
        let mut b = vec![0u8; 8 + 3 * 112 + 16];
        put(&mut b, 0, &8u32.to_le_bytes());
        let (root, y, z) = (8, 8 + 112, 8 + 224);
        dir(&mut b, root, y as u64, 0);
        b[root + 100..root + 104].fill(0);
        dir(&mut b, y, z as u64, 0);
        dir(&mut b, z, 0, 0);
        b[z + 102] = b'b';
        assert!(matches!(
            Tree::parse(&b),
            Err(MetadataError::Overlap { offset, subdir_offset })
                if offset == y as u64 && subdir_offset == z as u64
        ));
        // Pointing Y at the end marker after Z instead: an empty list, nothing shared.
        put(&mut b, y + 16, &((z + 112) as u64).to_le_bytes());
        let t = Tree::parse(&b).unwrap();
        assert_eq!(t.nodes.len(), 3);
    }

    #[test]
    fn well_formed_metadata_is_read_once() {
        use crate::write::image::{Inode, NewImage};
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 2, 3));
        let mut parent = 0;
        for i in 0..50 {
            let d = img.add_inode(Inode::new(FileAttributes::DIRECTORY, 1, 2, 3));
            let f = img.add_inode(Inode::new(FileAttributes::NORMAL, 1, 2, 3));
            img.add_dentry(parent, alloc::format!("f{i}"), f);
            parent = img.add_dentry(parent, alloc::format!("d{i}"), d);
        }
        let b = img.serialize().unwrap();
        let mut work = 0;
        let t = Tree::parse_counting(&b, &mut work).unwrap();
        assert_eq!(t.nodes.len(), 101);
        assert!(work <= b.len() as u64, "{work} bytes read of {}", b.len());
    }

    #[test]
    fn an_id_of_another_tree_is_none_not_a_panic() {
        use crate::write::image::{Inode, NewImage};
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 2, 3));
        let f = img.add_inode(Inode::new(FileAttributes::NORMAL, 1, 2, 3));
        img.add_dentry(0, "f".into(), f);
        let t = Tree::parse(&img.serialize().unwrap()).unwrap();
        let id = t.lookup("/f").unwrap();
        assert_eq!(t.get(id).map(|n| n.dentry.name.as_str()), Some("f"));
        assert_eq!(t.nodes().len(), 2);
        for bad in [2, 1000, NodeId::MAX] {
            assert!(t.get(bad).is_none());
            assert_eq!(t.child(bad, "f"), None);
        }
    }
}
