//! One directory entry of a metadata resource: the fixed part, names, tagged items and extra
//! stream entries, decoded into a [`Dentry`].

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use zerocopy::FromBytes;

use crate::blob_table::Sha1Hash;
use crate::defs::{
    DentryDisk, FileAttributes, ItemTag, ReparseTag, StreamEntryDisk, DENTRY_DISK_SIZE, SHA1_SIZE,
    STREAM_ENTRY_DISK_SIZE,
};
use crate::metadata::MetadataError;

/// A zero SHA-1 (an empty stream).
pub const ZERO_HASH: Sha1Hash = [0; SHA1_SIZE];

/// Reparse-point fields kept in the dentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReparseInfo {
    /// The reparse tag.
    pub tag: ReparseTag,
    /// The reserved field of the reparse buffer header.
    pub reserved: u16,
    /// wimlib's rp_flags ([`RP_FLAG_NOT_FIXED`](crate::defs::RP_FLAG_NOT_FIXED)).
    pub flags: u16,
}

/// A named data stream (alternate data stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedStream {
    /// Its name.
    pub name: String,
    /// SHA-1 of its data (zero: empty).
    pub hash: Sha1Hash,
}

/// A tagged metadata item (after the names inside the dentry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedItem {
    /// The tag.
    pub tag: ItemTag,
    /// The data, as stored.
    pub data: Vec<u8>,
}

/// wimlib's UNIX data item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixData {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Device number for device files.
    pub rdev: u32,
}

impl UnixData {
    /// As the tagged item wimlib stores (`uid`, `gid`, `mode`, `rdev`, little-endian).
    pub fn to_item(&self) -> TaggedItem {
        let mut data = Vec::with_capacity(16);
        for v in [self.uid, self.gid, self.mode, self.rdev] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        TaggedItem {
            tag: ItemTag::UNIX_DATA,
            data,
        }
    }
}

/// A directory entry, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dentry {
    /// The long name (empty for the root). When the stored name is not valid UTF-16 (it holds
    /// an unpaired surrogate, as NTFS names may), this is its lossy form, U+FFFD for each
    /// unpaired surrogate, and [`name_utf16`](Self::name_utf16) has the exact name.
    pub name: String,
    /// The exact long name as UTF-16 units, only when it is not valid UTF-16 (`None`: `name`
    /// is exact). The writer stores these units, apply makes them a [WTF-8](crate::wtf8)
    /// file name; lookups by name or path compare `name`.
    pub name_utf16: Option<Vec<u16>>,
    /// The short (8.3) name, empty if none.
    pub short_name: String,
    /// `FILE_ATTRIBUTE_*`.
    pub attributes: FileAttributes,
    /// Index into the image's security descriptors, −1 for none.
    pub security_id: i32,
    /// Creation time (FILETIME).
    pub creation_time: u64,
    /// Last access time (FILETIME).
    pub last_access_time: u64,
    /// Last write time (FILETIME).
    pub last_write_time: u64,
    /// Hard-link group id (0 = not linked; always 0 for reparse points).
    pub link_group: u64,
    /// Reparse fields, for reparse points.
    pub reparse: Option<ReparseInfo>,
    /// The unnamed data stream: `None` if absent, a zero hash if empty.
    pub data: Option<Sha1Hash>,
    /// The reparse data stream (the reparse buffer without its 8-byte header).
    pub reparse_data: Option<Sha1Hash>,
    /// For encrypted files: the raw EFS blob.
    pub efs_data: Option<Sha1Hash>,
    /// Named data streams.
    pub named_streams: Vec<NamedStream>,
    /// Unnamed streams beyond the ones used (kept, reported as skipped).
    pub extra_unnamed: u16,
    /// Tagged items, in order.
    pub tagged: Vec<TaggedItem>,
    /// The unknown field at offset 0x54.
    pub unknown_0x54: u32,
    /// Offset of this dentry in the metadata resource.
    pub offset: u64,
    pub(crate) subdir_offset: u64,
}

impl Dentry {
    /// The long name as a Linux file name: UTF-8, or [WTF-8](crate::wtf8) of the exact units
    /// when the name is not valid UTF-16 (as wimlib names such a file).
    pub fn name_wtf8(&self) -> Cow<'_, [u8]> {
        match &self.name_utf16 {
            Some(units) => Cow::Owned(crate::wtf8::encode(units)),
            None => Cow::Borrowed(self.name.as_bytes()),
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.attributes.contains(FileAttributes::DIRECTORY)
    }

    /// The UNIX data item, if present and well formed.
    pub fn unix_data(&self) -> Option<UnixData> {
        let item = self.tagged.iter().find(|t| t.tag == ItemTag::UNIX_DATA)?;
        let w = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                item.data.get(i * 4..i * 4 + 4)?.try_into().ok()?,
            ))
        };
        Some(UnixData {
            uid: w(0)?,
            gid: w(1)?,
            mode: w(2)?,
            rdev: w(3)?,
        })
    }

    /// The NTFS object ID, if present.
    pub fn object_id(&self) -> Option<&[u8]> {
        self.tagged
            .iter()
            .find(|t| t.tag == ItemTag::OBJECT_ID)
            .map(|t| t.data.as_slice())
    }

    /// Whether this is a symbolic link or junction.
    pub fn is_link_reparse(&self) -> bool {
        matches!(
            self.reparse.map(|r| r.tag),
            Some(ReparseTag::SYMLINK | ReparseTag::MOUNT_POINT)
        )
    }
}

/// Rounds up to a multiple of 8.
fn align8(v: u64) -> Option<u64> {
    v.checked_add(7).map(|v| v & !7)
}

/// Decodes a UTF-16LE long name: the string and, if it is not valid UTF-16, the exact units
/// (the string then lossy).
fn long_name(bytes: &[u8]) -> (String, Option<Vec<u16>>) {
    let units = || {
        bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
    };
    match char::decode_utf16(units()).collect::<Result<String, _>>() {
        Ok(s) => (s, None),
        Err(_) => {
            let exact: Vec<u16> = units().collect();
            (String::from_utf16_lossy(&exact), Some(exact))
        }
    }
}

/// Decodes a UTF-16LE name that must be valid (short names, stream names, link targets).
pub(crate) fn utf16_name(bytes: &[u8], offset: u64) -> Result<String, MetadataError> {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| MetadataError::BadName { offset })
}

/// The result of reading at a position in a directory's child list.
pub(crate) enum Read {
    /// The end-of-directory marker.
    End,
    /// A dentry and the offset just past it (and its stream entries).
    Dentry(alloc::boxed::Box<Dentry>, u64),
}

/// Reads the dentry at `offset` of the metadata resource `buf`.
pub(crate) fn read_dentry(buf: &[u8], offset: u64) -> Result<Read, MetadataError> {
    let corrupt = |what: &'static str| MetadataError::Dentry { offset, what };
    let start = usize::try_from(offset).map_err(|_| corrupt("offset past the end"))?;
    let rest = buf
        .get(start..)
        .ok_or_else(|| corrupt("offset past the end"))?;
    let len_bytes = rest
        .get(..8)
        .ok_or_else(|| corrupt("offset past the end"))?;
    let length = align8(u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| corrupt("length overflows"))?;
    if length <= 8 {
        return Ok(Read::End);
    }
    if length < DENTRY_DISK_SIZE as u64 {
        return Err(corrupt("length shorter than the fixed part"));
    }
    if length > rest.len() as u64 {
        return Err(corrupt("length passes the end of the metadata"));
    }
    let body = &rest[..length as usize];
    let Ok((d, after)) = DentryDisk::read_from_prefix(body) else {
        return Err(corrupt("length shorter than the fixed part"));
    };
    let (name_n, short_n) = (
        d.name_nbytes.get() as usize,
        d.short_name_nbytes.get() as usize,
    );
    if name_n & 1 != 0 || short_n & 1 != 0 {
        return Err(corrupt("odd name length"));
    }
    let names_len =
        if name_n > 0 { name_n + 2 } else { 0 } + if short_n > 0 { short_n + 2 } else { 0 };
    if names_len > after.len() {
        return Err(corrupt("names pass the dentry's length"));
    }
    let (name, name_utf16) = long_name(&after[..name_n]);
    let short_at = if name_n > 0 { name_n + 2 } else { 0 };
    let short_name = utf16_name(&after[short_at..short_at + short_n], offset)?;
    let attributes = FileAttributes::from_bits_retain(d.attributes.get());

    // Tagged items: from the next 8-byte boundary after the names to the end of `length`.
    let mut tagged = Vec::new();
    let mut p = (align8((DENTRY_DISK_SIZE + names_len) as u64).unwrap_or(u64::MAX)) as usize;
    while p + 8 <= body.len() {
        let tag = u32::from_le_bytes(body[p..p + 4].try_into().unwrap_or([0; 4]));
        let n = u32::from_le_bytes(body[p + 4..p + 8].try_into().unwrap_or([0; 4])) as usize;
        let data = body
            .get(p + 8..)
            .and_then(|b| b.get(..n))
            .ok_or_else(|| corrupt("tagged item passes the dentry's length"))?;
        tagged.push(TaggedItem {
            tag: ItemTag(tag),
            data: data.to_vec(),
        });
        p = align8((p + 8 + n) as u64).unwrap_or(u64::MAX) as usize;
    }

    let raw = d.reparse_or_link.get();
    let (reparse, link_group) = if attributes.contains(FileAttributes::REPARSE_POINT) {
        let info = ReparseInfo {
            tag: ReparseTag(raw as u32),
            reserved: (raw >> 32) as u16,
            flags: (raw >> 48) as u16,
        };
        (Some(info), 0)
    } else {
        (None, raw)
    };

    // Extra stream entries follow the dentry.
    let mut next = offset + length;
    let mut unnamed: Vec<Sha1Hash> = Vec::new();
    let mut named_streams = Vec::new();
    for _ in 0..d.num_extra_streams.get() {
        let s_off = next;
        let serr = |what: &'static str| MetadataError::Dentry {
            offset: s_off,
            what,
        };
        let rest = usize::try_from(s_off)
            .ok()
            .and_then(|o| buf.get(o..))
            .ok_or_else(|| serr("stream entry past the end"))?;
        let Ok((e, _)) = StreamEntryDisk::read_from_prefix(rest) else {
            return Err(serr("stream entry past the end"));
        };
        let len = align8(e.length.get()).ok_or_else(|| serr("stream entry length overflows"))?;
        if len < STREAM_ENTRY_DISK_SIZE as u64 || len > rest.len() as u64 {
            return Err(serr("bad stream entry length"));
        }
        let nn = e.name_nbytes.get() as usize;
        if nn & 1 != 0 || (STREAM_ENTRY_DISK_SIZE + nn) as u64 > len {
            return Err(serr("bad stream name length"));
        }
        if nn == 0 {
            unnamed.push(e.hash);
        } else {
            let n = &rest[STREAM_ENTRY_DISK_SIZE..STREAM_ENTRY_DISK_SIZE + nn];
            named_streams.push(NamedStream {
                name: utf16_name(n, s_off)?,
                hash: e.hash,
            });
        }
        next = s_off + len;
    }

    let mut dentry = Dentry {
        name,
        name_utf16,
        short_name,
        attributes,
        security_id: d.security_id.get(),
        creation_time: d.creation_time.get(),
        last_access_time: d.last_access_time.get(),
        last_write_time: d.last_write_time.get(),
        link_group,
        reparse,
        data: None,
        reparse_data: None,
        efs_data: None,
        named_streams,
        extra_unnamed: 0,
        tagged,
        unknown_0x54: d.unknown_0x54.get(),
        offset,
        subdir_offset: d.subdir_offset.get(),
    };
    assign_streams(&mut dentry, d.main_hash, &unnamed);
    Ok(Read::Dentry(alloc::boxed::Box::new(dentry), next))
}

/// Decides which unnamed stream is which (the format does not say): the main hash counts only
/// if non-zero, then unnamed extra entries in order; a reparse point's first is its reparse
/// data, the next is the unnamed data. With no candidate the (zero) main hash is used.
fn assign_streams(d: &mut Dentry, main: Sha1Hash, unnamed: &[Sha1Hash]) {
    let is_reparse = d.attributes.contains(FileAttributes::REPARSE_POINT);
    if d.attributes.contains(FileAttributes::ENCRYPTED) {
        d.efs_data = Some(if main != ZERO_HASH {
            main
        } else {
            unnamed.first().copied().unwrap_or(ZERO_HASH)
        });
        return;
    }
    let main_opt = (main != ZERO_HASH).then_some(main);
    let mut found = false;
    for h in main_opt.iter().chain(unnamed.iter()) {
        if is_reparse && d.reparse_data.is_none() {
            d.reparse_data = Some(*h);
        } else if d.data.is_none() {
            d.data = Some(*h);
        } else {
            d.extra_unnamed += 1;
        }
        found = true;
    }
    if !found {
        if is_reparse {
            d.reparse_data = Some(ZERO_HASH);
        } else {
            d.data = Some(ZERO_HASH);
        }
    }
}
