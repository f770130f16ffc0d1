//! A new image in memory: inodes (file attributes, times, streams) named by dentries, and its
//! serialization into a metadata resource.
//!
//! The layout follows the reader's ([`crate::metadata`]): security data, the root dentry and
//! an 8-byte end marker, then each directory's child list (pre-order, one list per directory,
//! even an empty one, each ended by 8 zero bytes). Children are sorted the way Windows and
//! wimlib collate names: case-insensitively (per UTF-16 unit, upper-cased), ties broken by
//! the case-sensitive order (on a name's exact units, unpaired surrogates included, when it
//! has them: see [`NewDentry::name_utf16`]). Streams are assigned as DISM expects: a single
//! unnamed stream goes in the dentry's main hash; otherwise every stream goes in an extra
//! stream entry, reparse data before unnamed data, and a directory never gets an unnamed
//! data entry.

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use zerocopy::little_endian::{I32, U16, U32, U64};
use zerocopy::IntoBytes;

use crate::blob_table::Sha1Hash;
use crate::defs::{DentryDisk, FileAttributes, StreamEntryDisk, DENTRY_DISK_SIZE};
use crate::dentry::{ReparseInfo, TaggedItem, ZERO_HASH};

/// Index of a stream in [`NewImage::streams`].
pub type StreamId = u32;
/// Index of an inode in [`NewImage::inodes`].
pub type InodeId = u32;
/// Index of a dentry in [`NewImage::dentries`] (0 is the root).
pub type DentryId = u32;

/// Where a stream's bytes come from.
#[derive(Clone, Debug)]
pub enum Content {
    /// Bytes held in memory.
    Bytes(alloc::sync::Arc<[u8]>),
    /// A file read when the stream is written (its size as scanned; a file that changed
    /// size in between is an error).
    #[cfg(feature = "std")]
    File(std::path::PathBuf),
    /// A blob the output WIM already holds (or the export source provides), by hash.
    Blob(Sha1Hash),
}

/// One stream of the image: its size, its bytes, and (once written or known) its SHA-1.
#[derive(Clone, Debug)]
pub struct NewStream {
    /// Uncompressed size.
    pub size: u64,
    /// Where the data are.
    pub content: Content,
    /// SHA-1, known once written (or from the start for [`Content::Blob`]).
    pub hash: Option<Sha1Hash>,
    /// For a blob its provider reads cheaply only in a given order (export: a blob of a
    /// solid resource of the source, whose chunks are decompressed whole), its place in that
    /// order. [`NewImage::solid_order`] puts these streams first, in this order, instead of
    /// sorting them by name (wimlib keeps blobs from solid resources in their order too).
    pub read_order: Option<u64>,
}

/// A file: what all its hard links share.
#[derive(Clone, Debug)]
pub struct Inode {
    /// `FILE_ATTRIBUTE_*`.
    pub attributes: FileAttributes,
    /// Security descriptor index, −1 for none.
    pub security_id: i32,
    /// Creation time (FILETIME).
    pub creation_time: u64,
    /// Last access time (FILETIME).
    pub last_access_time: u64,
    /// Last write time (FILETIME).
    pub last_write_time: u64,
    /// The unnamed data stream (`None`: empty or absent).
    pub data: Option<StreamId>,
    /// Reparse tag and flags, for reparse points.
    pub reparse: Option<ReparseInfo>,
    /// The reparse data (the buffer without its 8-byte header).
    pub reparse_data: Option<StreamId>,
    /// Named data streams.
    pub named: Vec<(String, Option<StreamId>)>,
    /// Tagged items kept as they are (UNIX data, object IDs, unknown ones).
    pub tagged: Vec<TaggedItem>,
    /// The unknown field at 0x54 (kept).
    pub unknown_0x54: u32,
}

impl Inode {
    /// An inode with `attributes`, the given times, no streams and no security descriptor.
    pub fn new(attributes: FileAttributes, creation: u64, access: u64, write: u64) -> Inode {
        Inode {
            attributes,
            security_id: -1,
            creation_time: creation,
            last_access_time: access,
            last_write_time: write,
            data: None,
            reparse: None,
            reparse_data: None,
            named: Vec::new(),
            tagged: Vec::new(),
            unknown_0x54: 0,
        }
    }

    /// A directory in the sense of the dentry tree (has a child list): DIRECTORY without
    /// REPARSE_POINT.
    pub fn is_directory(&self) -> bool {
        self.attributes.contains(FileAttributes::DIRECTORY)
            && !self.attributes.contains(FileAttributes::REPARSE_POINT)
    }

    /// Every stream of the inode.
    fn streams(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.data
            .iter()
            .chain(self.reparse_data.iter())
            .chain(self.named.iter().filter_map(|(_, s)| s.as_ref()))
            .copied()
    }
}

/// A name in the tree.
#[derive(Clone, Debug)]
pub struct NewDentry {
    /// Long name (empty for the root). With [`name_utf16`](Self::name_utf16) set, only its
    /// lossy form (used for messages, the solid sort order and lookups by a path that
    /// gives the name as UTF-8; see [`ImagePath`](super::update::ImagePath)).
    pub name: String,
    /// The exact long name as UTF-16 units, when it is not valid Unicode (it holds unpaired
    /// surrogates, as NTFS names may): written, and sorted, instead of `name`. `None`: `name`
    /// is exact. See [`Dentry::name_utf16`](crate::dentry::Dentry::name_utf16).
    pub name_utf16: Option<Vec<u16>>,
    /// Short (8.3) name, empty if none.
    pub short_name: String,
    /// The file it names.
    pub inode: InodeId,
    /// Children (directories only), in any order; sorted when written.
    pub children: Vec<DentryId>,
}

/// An image being built.
#[derive(Clone, Debug)]
pub struct NewImage {
    /// Security descriptors (self-relative), indexed by [`Inode::security_id`].
    pub security: Vec<Vec<u8>>,
    /// Files.
    pub inodes: Vec<Inode>,
    /// Names; 0 is the root.
    pub dentries: Vec<NewDentry>,
    /// Streams.
    pub streams: Vec<NewStream>,
}

/// The statistics the XML document records for an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageStats {
    /// Directories (root included), counted per link.
    pub dir_count: u64,
    /// Non-directories, counted per link.
    pub file_count: u64,
    /// Sum over links of the sizes of all streams.
    pub total_bytes: u64,
    /// The part of `total_bytes` from second and later links.
    pub hard_link_bytes: u64,
}

/// Why an image cannot be serialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageBuildError {
    /// A dentry, inode or stream index out of range, or the root not a directory.
    #[error("image structure invalid: {what} (index {index})")]
    Structure {
        /// What is wrong.
        what: &'static str,
        /// The offending index.
        index: u32,
    },
    /// A name longer than a dentry can hold, or empty/`.`/`..`/with `/` or NUL.
    #[error("name {name:?} cannot be stored")]
    Name {
        /// The name.
        name: String,
    },
    /// A stream whose SHA-1 is not known yet (not written).
    #[error("stream {stream} has no hash yet")]
    Unhashed {
        /// The stream.
        stream: StreamId,
    },
    /// More than 65535 extra stream entries on one file.
    #[error("inode {inode} has too many streams")]
    TooManyStreams {
        /// The inode.
        inode: InodeId,
    },
}

impl NewImage {
    /// The order to write the streams in when they go into solid resources: those with a
    /// [`read_order`](NewStream::read_order) first, in it; then by the extension, then the
    /// name, of the first file that holds each (files of a kind side by side compress better
    /// across a solid chunk, which is why wimlib sorts the same way), then as found.
    pub fn solid_order(&self) -> Vec<usize> {
        let mut name: Vec<Option<&str>> = alloc::vec![None; self.streams.len()];
        for d in &self.dentries {
            let Some(inode) = self.inodes.get(d.inode as usize) else {
                continue;
            };
            for s in inode.streams() {
                if let Some(slot) = name.get_mut(s as usize) {
                    slot.get_or_insert(d.name.as_str());
                }
            }
        }
        let mut order: Vec<usize> = (0..self.streams.len()).collect();
        order.sort_by_cached_key(|&i| match self.streams[i].read_order {
            Some(k) => (false, k, String::new(), String::new(), i),
            None => {
                let n = name[i].unwrap_or("");
                let ext = n.rsplit_once('.').map_or("", |(_, e)| e);
                (true, 0, ext.to_lowercase(), n.to_lowercase(), i)
            }
        });
        order
    }

    /// An image holding only a root directory with these times.
    pub fn new(root: Inode) -> NewImage {
        NewImage {
            security: Vec::new(),
            inodes: alloc::vec![root],
            dentries: alloc::vec![NewDentry {
                name: String::new(),
                name_utf16: None,
                short_name: String::new(),
                inode: 0,
                children: Vec::new(),
            }],
            streams: Vec::new(),
        }
    }

    /// Adds a stream and returns its id; an empty stream is `None` (nothing stored).
    pub fn add_stream(&mut self, size: u64, content: Content) -> Option<StreamId> {
        if size == 0 {
            return None;
        }
        let hash = match content {
            Content::Blob(h) => Some(h),
            _ => None,
        };
        self.streams.push(NewStream {
            size,
            content,
            hash,
            read_order: None,
        });
        Some(self.streams.len() as StreamId - 1)
    }

    /// Adds an inode and returns its id.
    pub fn add_inode(&mut self, inode: Inode) -> InodeId {
        self.inodes.push(inode);
        self.inodes.len() as InodeId - 1
    }

    /// Adds a dentry named `name` for `inode` under `parent` and returns its id.
    pub fn add_dentry(&mut self, parent: DentryId, name: String, inode: InodeId) -> DentryId {
        let id = self.dentries.len() as DentryId;
        self.dentries.push(NewDentry {
            name,
            name_utf16: None,
            short_name: String::new(),
            inode,
            children: Vec::new(),
        });
        if let Some(p) = self.dentries.get_mut(parent as usize) {
            p.children.push(id);
        }
        id
    }

    /// Adds a dentry named by the UTF-16 `units` (kept exactly in
    /// [`NewDentry::name_utf16`] if they are not valid Unicode) and returns its id.
    pub fn add_dentry_utf16(
        &mut self,
        parent: DentryId,
        units: &[u16],
        inode: InodeId,
    ) -> DentryId {
        let (name, exact) = match String::from_utf16(units) {
            Ok(s) => (s, None),
            Err(_) => (String::from_utf16_lossy(units), Some(units.to_vec())),
        };
        let id = self.add_dentry(parent, name, inode);
        self.dentries[id as usize].name_utf16 = exact;
        id
    }

    /// Number of dentries naming each inode.
    pub fn link_counts(&self) -> Vec<u32> {
        let mut n = alloc::vec![0u32; self.inodes.len()];
        for d in &self.dentries {
            if let Some(c) = n.get_mut(d.inode as usize) {
                *c += 1;
            }
        }
        n
    }

    /// Each stream's number of references (per link), for the blob table's counts.
    pub fn stream_refs(&self) -> Vec<u32> {
        let links = self.link_counts();
        let mut refs = alloc::vec![0u32; self.streams.len()];
        for (i, inode) in self.inodes.iter().enumerate() {
            for s in inode.streams() {
                if let Some(r) = refs.get_mut(s as usize) {
                    *r += links[i];
                }
            }
        }
        refs
    }

    /// DIRCOUNT, FILECOUNT, TOTALBYTES and HARDLINKBYTES as wimlib computes them.
    pub fn stats(&self) -> ImageStats {
        let links = self.link_counts();
        let mut s = ImageStats::default();
        for (inode, &n) in self.inodes.iter().zip(&links) {
            if n == 0 {
                continue;
            }
            let n = n as u64;
            if inode.is_directory() {
                s.dir_count += n;
            } else {
                s.file_count += n;
            }
            // Stream sizes may come from another WIM's blob table (export, update): the
            // statistics saturate rather than overflow.
            let size = inode
                .streams()
                .filter_map(|id| self.streams.get(id as usize))
                .fold(0u64, |t, st| t.saturating_add(st.size));
            s.total_bytes = s.total_bytes.saturating_add(size.saturating_mul(n));
            s.hard_link_bytes = s.hard_link_bytes.saturating_add(size.saturating_mul(n - 1));
        }
        s
    }

    /// Checks the structure: indexes in range, a tree rooted at a directory, valid names,
    /// and (with `hashed`) every used stream's hash known.
    pub(crate) fn check(&self, hashed: bool) -> Result<(), ImageBuildError> {
        let bad = |what, index| Err(ImageBuildError::Structure { what, index });
        match self.dentries.first() {
            Some(r)
                if self
                    .inodes
                    .get(r.inode as usize)
                    .is_some_and(Inode::is_directory) => {}
            _ => return bad("the root is missing or not a directory", 0),
        }
        let mut parents = alloc::vec![0u32; self.dentries.len()];
        for (i, d) in self.dentries.iter().enumerate() {
            let Some(inode) = self.inodes.get(d.inode as usize) else {
                return bad("dentry names a missing inode", i as u32);
            };
            if !d.children.is_empty() && !inode.is_directory() {
                return bad("a non-directory has children", i as u32);
            }
            if i > 0 {
                check_name(d)?;
            }
            for &c in &d.children {
                if c == 0 || c as usize >= self.dentries.len() {
                    return bad("child index out of range", c);
                }
                parents[c as usize] += 1;
            }
        }
        // Every dentry but the root has exactly one parent; with that, a walk from the root
        // that reaches every dentry proves there is no cycle.
        if let Some(i) = parents.iter().skip(1).position(|&p| p != 1) {
            return bad(
                "dentry is not the child of exactly one directory",
                i as u32 + 1,
            );
        }
        let mut seen = 1usize;
        let mut stack = alloc::vec![0u32];
        while let Some(d) = stack.pop() {
            seen += self.dentries[d as usize].children.len();
            stack.extend(&self.dentries[d as usize].children);
        }
        if seen != self.dentries.len() {
            return bad("dentries unreachable from the root", 0);
        }
        for (i, inode) in self.inodes.iter().enumerate() {
            for s in inode.streams() {
                match self.streams.get(s as usize) {
                    None => return bad("inode names a missing stream", i as u32),
                    Some(st) if hashed && st.hash.is_none() => {
                        return Err(ImageBuildError::Unhashed { stream: s })
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Serializes the metadata resource (uncompressed).
    pub fn serialize(&self) -> Result<Vec<u8>, ImageBuildError> {
        self.check(true)?;
        let links = self.link_counts();
        // Hard-link group ids: 1, 2, … for inodes named more than once (never reparse points).
        let mut group = alloc::vec![0u64; self.inodes.len()];
        let mut next_group = 0;
        for (i, inode) in self.inodes.iter().enumerate() {
            if links[i] > 1 && inode.reparse.is_none() {
                next_group += 1;
                group[i] = next_group;
            }
        }
        let mut out = security_block(&self.security);
        let sorted: Vec<Vec<DentryId>> = self
            .dentries
            .iter()
            .map(|d| {
                let mut c = d.children.clone();
                c.sort_by(|&a, &b| {
                    collate_units(
                        self.dentries[a as usize].units(),
                        self.dentries[b as usize].units(),
                    )
                });
                c
            })
            .collect();
        // Pre-order over directories: each directory's child list in visiting order.
        let mut order = Vec::new();
        let mut stack = alloc::vec![0u32];
        while let Some(d) = stack.pop() {
            if self.inode_of(d).is_directory() {
                order.push(d);
                stack.extend(sorted[d as usize].iter().rev());
            }
        }
        // Child-list offsets: root + end marker first, then the lists in `order`.
        let mut subdir = alloc::vec![0u64; self.dentries.len()];
        let mut at = out.len() as u64 + self.dentry_len(0)? + 8;
        for &d in &order {
            subdir[d as usize] = at;
            for &c in &sorted[d as usize] {
                at += self.dentry_len(c)?;
            }
            at += 8;
        }
        let ctx = Ctx {
            img: self,
            group: &group,
            subdir: &subdir,
        };
        ctx.write_dentry(&mut out, 0)?;
        out.extend_from_slice(&[0; 8]);
        for &d in &order {
            for &c in &sorted[d as usize] {
                ctx.write_dentry(&mut out, c)?;
            }
            out.extend_from_slice(&[0; 8]);
        }
        debug_assert_eq!(out.len() as u64, at);
        Ok(out)
    }

    fn inode_of(&self, d: DentryId) -> &Inode {
        &self.inodes[self.dentries[d as usize].inode as usize]
    }

    /// The unnamed streams and named streams a dentry lists (see the module docs).
    fn stream_plan<'a>(&self, inode: &'a Inode) -> (Vec<Sha1Hash>, Vec<(&'a str, Sha1Hash)>) {
        let hash = |s: &Option<StreamId>| {
            s.and_then(|id| self.streams.get(id as usize)?.hash)
                .unwrap_or(ZERO_HASH)
        };
        let mut unnamed = Vec::new();
        if inode.attributes.contains(FileAttributes::ENCRYPTED) {
            unnamed.push(hash(&inode.data));
            return (unnamed, Vec::new());
        }
        if inode.attributes.contains(FileAttributes::REPARSE_POINT) {
            unnamed.push(hash(&inode.reparse_data));
        }
        if !inode.attributes.contains(FileAttributes::DIRECTORY) {
            unnamed.push(hash(&inode.data));
        }
        let named = inode
            .named
            .iter()
            .map(|(n, s)| (n.as_str(), hash(s)))
            .collect();
        (unnamed, named)
    }

    /// Bytes a dentry takes, its extra stream entries included.
    fn dentry_len(&self, d: DentryId) -> Result<u64, ImageBuildError> {
        let de = &self.dentries[d as usize];
        let inode = &self.inodes[de.inode as usize];
        let mut len = align8(DENTRY_DISK_SIZE + names_len(de)?) + tagged_len(&inode.tagged);
        let (unnamed, named) = self.stream_plan(inode);
        if unnamed.len() > 1 || !named.is_empty() {
            len += unnamed.len() * align8(STREAM_FIXED);
            for (n, _) in named {
                len += align8(STREAM_FIXED + utf16_len(n) + 2);
            }
        }
        Ok(len as u64)
    }
}

const STREAM_FIXED: usize = core::mem::size_of::<StreamEntryDisk>();

struct Ctx<'a> {
    img: &'a NewImage,
    group: &'a [u64],
    subdir: &'a [u64],
}

impl Ctx<'_> {
    fn write_dentry(&self, out: &mut Vec<u8>, d: DentryId) -> Result<(), ImageBuildError> {
        let de = &self.img.dentries[d as usize];
        let inode = &self.img.inodes[de.inode as usize];
        let start = out.len();
        let (unnamed, named) = self.img.stream_plan(inode);
        let extra = unnamed.len() > 1 || !named.is_empty();
        let nextra = if extra {
            unnamed.len() + named.len()
        } else {
            0
        };
        let nextra = u16::try_from(nextra)
            .map_err(|_| ImageBuildError::TooManyStreams { inode: de.inode })?;
        let reparse_or_link = match inode.reparse {
            Some(r) if inode.attributes.contains(FileAttributes::REPARSE_POINT) => {
                r.tag.0 as u64 | (r.reserved as u64) << 32 | (r.flags as u64) << 48
            }
            _ => self.group[de.inode as usize],
        };
        let disk = DentryDisk {
            length: U64::new(0),
            attributes: U32::new(inode.attributes.bits()),
            security_id: I32::new(inode.security_id),
            subdir_offset: U64::new(self.subdir[d as usize]),
            unused: [U64::new(0); 2],
            creation_time: U64::new(inode.creation_time),
            last_access_time: U64::new(inode.last_access_time),
            last_write_time: U64::new(inode.last_write_time),
            main_hash: if extra {
                ZERO_HASH
            } else {
                unnamed.first().copied().unwrap_or(ZERO_HASH)
            },
            unknown_0x54: U32::new(inode.unknown_0x54),
            reparse_or_link: U64::new(reparse_or_link),
            num_extra_streams: U16::new(nextra),
            short_name_nbytes: U16::new(utf16_len(&de.short_name) as u16),
            name_nbytes: U16::new((de.units().count() * 2) as u16),
        };
        out.extend_from_slice(disk.as_bytes());
        for name in [de.units(), Units::Str(de.short_name.encode_utf16())] {
            if name.clone().next().is_some() {
                push_units(out, name);
                out.extend_from_slice(&[0, 0]);
            }
        }
        pad8(out, start);
        for t in &inode.tagged {
            out.extend_from_slice(&t.tag.0.to_le_bytes());
            out.extend_from_slice(&(t.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&t.data);
            pad8(out, start);
        }
        let length = (out.len() - start) as u64;
        out[start..start + 8].copy_from_slice(&length.to_le_bytes());
        if extra {
            for h in unnamed {
                stream_entry(out, "", h);
            }
            for (n, h) in named {
                stream_entry(out, n, h);
            }
        }
        Ok(())
    }
}

fn stream_entry(out: &mut Vec<u8>, name: &str, hash: Sha1Hash) {
    let start = out.len();
    let e = StreamEntryDisk {
        length: U64::new(0),
        reserved: U64::new(0),
        hash,
        name_nbytes: U16::new(utf16_len(name) as u16),
    };
    out.extend_from_slice(e.as_bytes());
    if !name.is_empty() {
        push_units(out, name.encode_utf16());
        out.extend_from_slice(&[0, 0]);
    }
    pad8(out, start);
    let length = (out.len() - start) as u64;
    out[start..start + 8].copy_from_slice(&length.to_le_bytes());
}

/// The security data block: header, sizes, descriptors, padded to 8.
fn security_block(descriptors: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(descriptors.len() as u32).to_le_bytes());
    for d in descriptors {
        out.extend_from_slice(&(d.len() as u64).to_le_bytes());
    }
    for d in descriptors {
        out.extend_from_slice(d);
    }
    pad8(&mut out, 0);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    out
}

fn pad8(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(8) {
        out.push(0);
    }
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count() * 2
}

fn push_units(out: &mut Vec<u8>, units: impl Iterator<Item = u16>) {
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

/// The UTF-16 units of a name: a string's, or exact ones.
#[derive(Clone)]
pub(crate) enum Units<'a> {
    Str(core::str::EncodeUtf16<'a>),
    Exact(core::iter::Copied<core::slice::Iter<'a, u16>>),
}

impl Iterator for Units<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        match self {
            Units::Str(i) => i.next(),
            Units::Exact(i) => i.next(),
        }
    }
}

impl NewDentry {
    /// The long name's units as written: the exact ones if set, else `name`'s.
    pub(crate) fn units(&self) -> Units<'_> {
        match &self.name_utf16 {
            Some(u) => Units::Exact(u.iter().copied()),
            None => Units::Str(self.name.encode_utf16()),
        }
    }

    /// Whether `other` has the same long name, unit for unit.
    pub(crate) fn same_name(&self, other: &NewDentry) -> bool {
        self.units().eq(other.units())
    }
}

fn names_len(d: &NewDentry) -> Result<usize, ImageBuildError> {
    let mut n = 0;
    for (name, l) in [
        (&d.name, d.units().count() * 2),
        (&d.short_name, utf16_len(&d.short_name)),
    ] {
        if l > u16::MAX as usize - 2 {
            return Err(ImageBuildError::Name { name: name.clone() });
        }
        if l > 0 {
            n += l + 2;
        }
    }
    Ok(n)
}

fn tagged_len(items: &[TaggedItem]) -> usize {
    items.iter().map(|t| align8(8 + t.data.len())).sum()
}

/// A long name must be one path component: not empty, `.` or `..`, without `/` or NUL.
fn check_name(d: &NewDentry) -> Result<(), ImageBuildError> {
    let (dot, slash) = (u16::from(b'.'), u16::from(b'/'));
    let mut units = d.units();
    let bad = match (units.next(), units.next(), units.next()) {
        (None, ..) => true,
        (Some(a), None, _) => a == dot,
        (Some(a), Some(b), None) => a == dot && b == dot,
        _ => false,
    } || d.units().any(|u| u == slash || u == 0);
    if bad {
        return Err(ImageBuildError::Name {
            name: d.name.clone(),
        });
    }
    Ok(())
}

/// Upper-cases one UTF-16 unit the way a 1:1 case table does: units whose upper case is a
/// single BMP character map to it, everything else to itself.
fn upcase(u: u16) -> u16 {
    let Some(c) = char::from_u32(u as u32) else {
        return u;
    };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(x), None) if (x as u32) < 0x10000 => x as u32 as u16,
        _ => u,
    }
}

/// Orders names as directories list them: case-insensitively by UTF-16 unit, then
/// case-sensitively; a prefix sorts first.
pub fn collate(a: &str, b: &str) -> Ordering {
    collate_units(a.encode_utf16(), b.encode_utf16())
}

/// [`collate`] on UTF-16 units (names that may hold unpaired surrogates).
pub fn collate_utf16(a: &[u16], b: &[u16]) -> Ordering {
    collate_units(a.iter().copied(), b.iter().copied())
}

fn collate_units<I: Iterator<Item = u16> + Clone>(a: I, b: I) -> Ordering {
    let ci = a.clone().map(upcase).cmp(b.clone().map(upcase));
    ci.then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Tree;

    #[test]
    fn collation_matches_wimlib_listing() {
        // The order wimlib-imagex 1.13 writes for these names (checked with `dir`).
        let want = [
            "10", "9", "a", "a b", "a.b", "abs", "B", "b", "CASE", "case", "d", "rel", "Z", "z",
            "_x", "Ä", "ä", "Ω", "ω",
        ];
        let mut got = want;
        got.reverse();
        got.sort_by(|a, b| collate(a, b));
        assert_eq!(got, want);
    }

    #[test]
    fn serialize_reads_back() {
        let t = |n| 132_000_000_000_000_000u64 + n;
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, t(1), t(2), t(3)));
        let dir = img.add_inode(Inode::new(FileAttributes::DIRECTORY, t(4), t(5), t(6)));
        let d = img.add_dentry(0, "sub".into(), dir);
        let mut f = Inode::new(FileAttributes::NORMAL, t(7), t(8), t(9));
        f.data = img.add_stream(3, Content::Blob([7; 20]));
        let f = img.add_inode(f);
        img.add_dentry(d, "b".into(), f);
        img.add_dentry(0, "A-link".into(), f);
        let buf = img.serialize().unwrap();
        let tree = Tree::parse(&buf).unwrap();
        let names: Vec<String> = tree.walk().map(|i| tree.path(i)).collect();
        assert_eq!(names, ["/", "/A-link", "/sub", "/sub/b"]);
        let b = tree.node(tree.lookup("/sub/b").unwrap());
        assert_eq!(b.dentry.data, Some([7; 20]));
        assert_eq!(b.dentry.last_write_time, t(9));
        let a = tree.node(tree.lookup("/A-link").unwrap());
        assert_ne!(a.dentry.link_group, 0);
        assert_eq!(a.dentry.link_group, b.dentry.link_group);
        let s = img.stats();
        assert_eq!(
            (s.dir_count, s.file_count, s.total_bytes, s.hard_link_bytes),
            (2, 2, 6, 3)
        );
        assert_eq!(img.stream_refs(), [2]);
    }

    #[test]
    fn exact_names_written_and_sorted() {
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
        let names: [&[u16]; 6] = [
            &[0x62],
            &[0xFFFD],
            &[0xD800],
            &[0x61, 0xDC00],
            &[0x41],
            &[0xDBFF, 0x78],
        ];
        for n in names {
            let f = img.add_inode(Inode::new(FileAttributes::NORMAL, 0, 0, 0));
            let d = img.add_dentry_utf16(0, n, f);
            let exact = img.dentries[d as usize].name_utf16.as_deref();
            assert_eq!(exact, String::from_utf16(n).is_err().then_some(n));
        }
        let tree = Tree::parse(&img.serialize().unwrap()).unwrap();
        let got: Vec<(String, Option<Vec<u16>>)> = tree
            .walk()
            .skip(1)
            .map(|i| {
                let d = &tree.node(i).dentry;
                (d.name.clone(), d.name_utf16.clone())
            })
            .collect();
        let want = [
            ("A", None),
            ("a\u{FFFD}", Some(alloc::vec![0x61, 0xDC00])),
            ("b", None),
            ("\u{FFFD}", Some(alloc::vec![0xD800])),
            ("\u{FFFD}x", Some(alloc::vec![0xDBFF, 0x78])),
            ("\u{FFFD}", None),
        ]
        .map(|(n, u)| (String::from(n), u));
        assert_eq!(got, want);
        // By path: a valid name matches itself before a lossy one that looks the same.
        let name_at = |p| {
            tree.lookup(p)
                .map(|i| tree.node(i).dentry.name_utf16.clone())
        };
        assert_eq!(name_at("/\u{FFFD}"), Some(None));
        assert_eq!(name_at("/a\u{FFFD}"), Some(Some(alloc::vec![0x61, 0xDC00])));
        assert_eq!(collate_utf16(&[0xD800], &[0xDBFF, 0x78]), Ordering::Less);
    }

    #[test]
    fn exact_names_checked() {
        let bad: [&[u16]; 5] = [&[], &[0x2E], &[0x2E, 0x2E], &[0xD800, 0x2F], &[0xDC00, 0]];
        for n in bad {
            let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
            let f = img.add_inode(Inode::new(FileAttributes::NORMAL, 0, 0, 0));
            let d = img.add_dentry(0, "ok".into(), f);
            img.dentries[d as usize].name_utf16 = Some(n.to_vec());
            assert!(
                matches!(img.serialize(), Err(ImageBuildError::Name { .. })),
                "{n:x?}"
            );
        }
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
        let f = img.add_inode(Inode::new(FileAttributes::NORMAL, 0, 0, 0));
        img.add_dentry_utf16(0, &[0xD800; 32766], f);
        assert!(img.serialize().is_ok());
        img.dentries[1].name_utf16 = Some(alloc::vec![0xD800; 32767]);
        assert!(matches!(img.serialize(), Err(ImageBuildError::Name { .. })));
    }

    #[test]
    fn rejects_bad_structure() {
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
        let f = img.add_inode(Inode::new(FileAttributes::NORMAL, 0, 0, 0));
        img.add_dentry(0, "a/b".into(), f);
        assert!(matches!(img.serialize(), Err(ImageBuildError::Name { .. })));
        let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
        img.dentries[0].children.push(0);
        assert!(img.serialize().is_err());
    }
}
