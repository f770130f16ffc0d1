//! Exporting images from an open WIM into a WIM being written (`export`), which also rebuilds
//! files without some of their images (`delete`): each image's tree is turned back into a
//! [`NewImage`] whose streams name their blobs by hash, and blobs the output lacks are copied:
//! as stored when the output compresses the way the source did (see
//! [`WriteOptions::copy_stored`](super::WriteOptions::copy_stored)), else decompressed, hashed
//! and recompressed with the output's settings. Reference counts come from the trees, never
//! from the source's blob table.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use crate::blob_table::Sha1Hash;
use crate::dentry::{Dentry, ZERO_HASH};
use crate::io::ReadAt;
use crate::metadata::Tree;
use crate::read::{BlobReader, ResKind};
use crate::wim::Wim;

use super::image::{Content, Inode, InodeId, NewImage, NewStream, StreamId};
use super::{
    xml, BlobProvider, ImageProps, StoredBlob, WimWriter, WriteAt, WriteError, WriteProgress,
};

/// Reads the blobs of a source WIM.
struct SourceBlobs<'w, R> {
    wim: &'w Wim<R>,
    reader: BlobReader<'w, R>,
}

impl<R: ReadAt> BlobProvider for SourceBlobs<'_, R> {
    fn read_at(
        &mut self,
        hash: &Sha1Hash,
        _size: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), WriteError> {
        let blob = self
            .wim
            .blob(hash)
            .ok_or(WriteError::MissingBlob { hash: *hash })?;
        self.reader
            .read_at(blob, offset, buf)
            .map_err(WriteError::Read)
    }

    fn stored(&mut self, hash: &Sha1Hash) -> Option<StoredBlob> {
        let blob = self.wim.blob(hash)?;
        let (res, res_off) = self.reader.locate(blob)?;
        let compression = match res.kind {
            ResKind::Uncompressed => None,
            ResKind::Compressed {
                codec,
                chunk_size,
                pipable: false,
            } => Some((codec, chunk_size)),
            // A pipable resource has its chunk table after the data; a solid one is shared.
            ResKind::Compressed { pipable: true, .. } | ResKind::Solid(_) => return None,
        };
        (res_off == 0 && res.reshdr.uncompressed_size == blob.size).then_some(StoredBlob {
            stored_size: res.reshdr.size_in_wim,
            compression,
            file_compression: self.wim.header().compression().ok().flatten(),
        })
    }

    fn read_stored(
        &mut self,
        hash: &Sha1Hash,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), WriteError> {
        let missing = || WriteError::MissingBlob { hash: *hash };
        let blob = self.wim.blob(hash).ok_or_else(missing)?;
        let (res, _) = self.reader.locate(blob).ok_or_else(missing)?;
        let end = offset.checked_add(buf.len() as u64).ok_or_else(missing)?;
        if end > res.reshdr.size_in_wim {
            return Err(missing());
        }
        let part = self.wim.part(res.part).ok_or_else(missing)?;
        part.read_exact_at(buf, res.reshdr.offset + offset)
            .map_err(|e| WriteError::Read(e.into()))
    }
}

/// Converts a read tree into an image whose streams are the source's blobs.
pub fn image_from_tree<R: ReadAt>(wim: &Wim<R>, tree: &Tree) -> Result<NewImage, WriteError> {
    let root = &tree.root().dentry;
    let mut img = NewImage::new(inode_from(root));
    img.security = tree.security().descriptors.clone();
    let mut links: BTreeMap<u64, InodeId> = BTreeMap::new();
    let stream =
        |img: &mut NewImage, h: Option<Sha1Hash>| -> Result<Option<StreamId>, WriteError> {
            match h {
                None => Ok(None),
                Some(h) if h == ZERO_HASH => Ok(None),
                Some(h) => {
                    let size = wim
                        .blob(&h)
                        .ok_or(WriteError::MissingBlob { hash: h })?
                        .size;
                    Ok(img.add_stream(size, Content::Blob(h)))
                }
            }
        };
    img.inodes[0].reparse_data = stream(&mut img, root.reparse_data)?;
    // Dentry ids follow the tree's node ids (breadth first, children contiguous).
    let mut ids: Vec<u32> = alloc::vec![0; tree.nodes().len()];
    for id in tree.walk().skip(1) {
        let n = tree.node(id);
        let de = &n.dentry;
        let inode = match links.get(&de.link_group) {
            Some(&i) if de.link_group != 0 => i,
            _ => {
                let mut inode = inode_from(de);
                inode.data = stream(&mut img, if de.is_dir() { None } else { de.data })?;
                inode.reparse_data = stream(&mut img, de.reparse_data)?;
                if de
                    .attributes
                    .contains(crate::defs::FileAttributes::ENCRYPTED)
                {
                    inode.data = stream(&mut img, de.efs_data)?;
                }
                for ns in &de.named_streams {
                    let s = stream(&mut img, Some(ns.hash))?;
                    inode.named.push((ns.name.clone(), s));
                }
                let i = img.add_inode(inode);
                if de.link_group != 0 {
                    links.insert(de.link_group, i);
                }
                i
            }
        };
        let parent = ids[n.parent as usize];
        let d = img.add_dentry(parent, de.name.clone(), inode);
        // The exact name, unpaired surrogates included, not only its lossy form.
        img.dentries[d as usize].name_utf16 = de.name_utf16.clone();
        img.dentries[d as usize].short_name = de.short_name.clone();
        ids[id as usize] = d;
    }
    in_source_order(wim, &mut img);
    Ok(img)
}

/// Puts the streams of `img` (blobs of `wim`) in the order the source stores them, by part,
/// resource and offset, as [`Wim::verify`] reads them; blobs of solid resources also get
/// that place as their [`read_order`](super::image::NewStream::read_order), which a solid
/// output keeps. A writer then reads the source front to back and decompresses each solid
/// chunk once: read in tree order, small files of several chunks interleaved by name each
/// decompressed a whole chunk (up to 64 MiB, whatever the file's size).
fn in_source_order<R: ReadAt>(wim: &Wim<R>, img: &mut NewImage) {
    let reader = wim.reader();
    let place = |s: &NewStream| {
        let Content::Blob(h) = &s.content else {
            return (u16::MAX, u64::MAX, u64::MAX, false);
        };
        match wim.blob(h).and_then(|b| reader.locate(b)) {
            Some((r, off)) => (
                r.part,
                r.reshdr.offset,
                off,
                matches!(r.kind, ResKind::Solid(_)),
            ),
            None => (u16::MAX, u64::MAX, u64::MAX, false),
        }
    };
    let mut keyed: Vec<_> = core::mem::take(&mut img.streams)
        .into_iter()
        .enumerate()
        .map(|(i, s)| (place(&s), i, s))
        .collect();
    keyed.sort_by_key(|&(p, i, _)| (p, i));
    // new_id[old] = new.
    let mut new_id: Vec<StreamId> = alloc::vec![0; keyed.len()];
    for (new, ((_, _, _, solid), old, mut s)) in keyed.into_iter().enumerate() {
        new_id[old] = new as StreamId;
        if solid {
            s.read_order = Some(new as u64);
        }
        img.streams.push(s);
    }
    let map = |s: &mut Option<StreamId>| {
        if let Some(id) = s {
            *id = new_id[*id as usize];
        }
    };
    for inode in &mut img.inodes {
        map(&mut inode.data);
        map(&mut inode.reparse_data);
        for (_, s) in &mut inode.named {
            map(s);
        }
    }
}

fn inode_from(d: &Dentry) -> Inode {
    let mut i = Inode::new(
        d.attributes,
        d.creation_time,
        d.last_access_time,
        d.last_write_time,
    );
    i.security_id = d.security_id;
    i.reparse = d.reparse;
    i.tagged = d.tagged.clone();
    i.unknown_0x54 = d.unknown_0x54;
    i
}

/// Copies image `index` of `src` into `out` as its next image, keeping the source's XML
/// element (renumbered, statistics recomputed) unless `name` replaces its name. Returns the
/// new index. [`export_image_with_progress`] reports progress and can be cancelled.
pub fn export_image<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    index: u32,
    out: &mut WimWriter<W>,
    name: Option<&str>,
) -> Result<u32, WriteError> {
    export_image_with_progress(src, index, out, name, &mut super::progress::ignore)
}

/// [`export_image`], telling `progress` how much of the image's data is copied (the blobs
/// `out` lacks; see [`WriteProgress`]). [`ControlFlow::Break`] stops the export with
/// [`WriteError::Cancelled`]; what is left of `out` is said at
/// [`WimWriter::add_image_with_progress`].
pub fn export_image_with_progress<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    index: u32,
    out: &mut WimWriter<W>,
    name: Option<&str>,
    progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
) -> Result<u32, WriteError> {
    let tree = src
        .image(index)
        .map_err(|_| WriteError::ImageIndex { index })?;
    let mut img = image_from_tree(src, &tree)?;
    let element = src.xml().image(index).map(|i| i.element.clone());
    let props = ImageProps {
        name: match name {
            Some(n) => n.into(),
            None => element
                .as_ref()
                .and_then(|e| e.text_at("NAME"))
                .unwrap_or_default(),
        },
        ..ImageProps::default()
    };
    let mut provider = SourceBlobs {
        wim: src,
        reader: src.reader(),
    };
    out.add_image_with(&mut img, &props, &mut provider, element, progress)
}

impl<W: WriteAt> WimWriter<W> {
    /// Like [`add_image_with_progress`](Self::add_image_with_progress), but keeps `element`
    /// (an `<IMAGE>` from another WIM, if any) with its index, name and statistics
    /// updated.
    pub fn add_image_with(
        &mut self,
        image: &mut NewImage,
        props: &ImageProps,
        provider: &mut dyn BlobProvider,
        element: Option<crate::xml::Element>,
        progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
    ) -> Result<u32, WriteError> {
        let index = self.add_image_with_progress(image, props, provider, progress)?;
        if let Some(mut e) = element {
            xml::set_index(&mut e, index);
            xml::set_stats(&mut e, &image.stats(), self.now);
            if !props.name.is_empty() {
                xml::set_name(&mut e, &props.name);
            }
            xml::replace_image(&mut self.xml, index, e);
        }
        Ok(index)
    }
}

/// The compression of a rebuilt file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recompress {
    /// The source's codec and chunk size.
    Keep,
    /// This codec (`None`: uncompressed) and chunk size (0: 32 KiB).
    To(Option<crate::codec::Codec>, u32),
}

/// Writes into `out` the images of `src` for which `keep(index)` holds, in order, with the
/// source's `RP_FIX` flag, integrity table (and its boot image, if kept), and compression
/// unless `how` changes it; `opts` gives threads, level, time, GUID and whether to add an
/// integrity table. This is how `delete` and `optimize` rebuild a file: into a new one
/// that then replaces the original. Blobs are copied as stored when the compression stays
/// the same and `opts.copy_stored` holds; otherwise decompressed, checked and compressed
/// again. [`rebuild_with_progress`] reports progress and can be cancelled.
pub fn rebuild<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    out: W,
    keep: &dyn Fn(u32) -> bool,
    opts: &super::WriteOptions,
    how: Recompress,
) -> Result<W, WriteError> {
    rebuild_with_progress(src, out, keep, opts, how, &mut super::progress::ignore)
}

/// [`rebuild`], telling `progress` how much of each image's data is copied: a series of
/// reports per image kept, [`WriteProgress::image`] being its index in the new file.
/// [`ControlFlow::Break`] stops the rebuild with [`WriteError::Cancelled`]; `out`, left
/// incomplete, is dropped (a caller writing to a temporary file removes it; `src` is not
/// touched).
pub fn rebuild_with_progress<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    out: W,
    keep: &dyn Fn(u32) -> bool,
    opts: &super::WriteOptions,
    how: Recompress,
    progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
) -> Result<W, WriteError> {
    let h = src.header();
    let compression = match how {
        Recompress::Keep => h.compression().ok().flatten(),
        Recompress::To(codec, chunk) => codec.map(|c| (c, chunk)),
    };
    let opts = super::WriteOptions {
        compression: compression.map(|(c, _)| c),
        chunk_size: compression.map_or(0, |(_, s)| s),
        rp_fix: h.flags.contains(crate::defs::HeaderFlags::RP_FIX),
        integrity: opts.integrity || !h.integrity.is_empty(),
        ..opts.clone()
    };
    let mut w = WimWriter::create(out, &opts)?;
    for i in 1..=src.image_count() {
        if keep(i) {
            let n = export_image_with_progress(src, i, &mut w, None, progress)?;
            if h.boot_index == i {
                w.set_boot_index(n)?;
            }
        }
    }
    w.finish()
}
