//! Changing an existing WIM in place: appending images, deleting images without a rebuild
//! (wimlib's `delete --soft`) and replacing an image's tree (`update`).
//!
//! Nothing before the old end of the file is overwritten until the final header: the header
//! is first rewritten with `WRITE_IN_PROGRESS` (every other field unchanged), new blobs,
//! metadata and tables go after the old end, and the new header is written last, so a crash
//! at any point leaves the old WIM readable. What the old tables and dropped blobs occupied
//! becomes a hole (`optimize` rebuilds without them).
//!
//! ```text
//!  old: header │ blobs + metadata │ old tables │
//!  new: header'│ blobs + metadata │ (hole)     │ new blobs │ new metadata │ tables │
//! ```
//!
//! When images are deleted or replaced, every blob's reference count is recounted from the
//! trees of the images that stay (the stored counts are never trusted) and blobs no image
//! references any more leave the blob table.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use zerocopy::FromBytes;

use crate::blob_table::{BlobLocation, Sha1Hash};
use crate::defs::{BlobEntryDisk, HeaderDisk, HeaderFlags, ResHdrDisk, HEADER_SIZE};
use crate::header::ResHdr;
use crate::wim::Wim;

use super::export::image_from_tree;
use super::image::{Content, NewImage};
use super::resource::BlobOut;
use super::{
    plan_threads, xml, BlobProvider, ReadBack, WimWriter, WriteAt, WriteError, WriteOptions,
    WriteProgress,
};

/// What happens to an image of the existing file when it is rewritten in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Stays as it is.
    Keep,
    /// Is removed.
    Delete,
    /// Gets a new tree ([`WimWriter::replace_image`]).
    Replace,
}

/// Every stream reference of an image's tree, by blob.
fn count_refs<R: crate::io::ReadAt>(
    wim: &Wim<R>,
    index: u32,
    refs: &mut BTreeMap<Sha1Hash, u32>,
) -> Result<(), WriteError> {
    let tree = wim
        .image(index)
        .map_err(|source| WriteError::OldImage { index, source })?;
    let img = image_from_tree(wim, &tree)?;
    for (st, n) in img.streams.iter().zip(img.stream_refs()) {
        if let Content::Blob(h) = st.content {
            let r = refs.entry(h).or_insert(0);
            *r = r.saturating_add(n);
        }
    }
    Ok(())
}

/// What the writer needs from the existing file.
struct Existing {
    header: HeaderDisk,
    xml: crate::xml::XmlInfo,
    names: Vec<String>,
    entries: Vec<BlobEntryDisk>,
    metadata: Vec<(ResHdr, Sha1Hash)>,
    compression: Option<(crate::codec::Codec, u32)>,
    had_integrity: bool,
    /// References of the kept images' trees (rewriting only).
    refs: BTreeMap<Sha1Hash, u32>,
}

fn read_existing<W: WriteAt>(out: &W, fates: Option<&[Fate]>) -> Result<Existing, WriteError> {
    let wim = Wim::open(ReadBack(out)).map_err(WriteError::Open)?;
    let h = wim.header();
    if h.pipable {
        return Err(WriteError::NotModifiable { why: "pipable WIM" });
    }
    if h.total_parts != 1 {
        return Err(WriteError::NotModifiable {
            why: "part of a split WIM",
        });
    }
    if h.flags.contains(HeaderFlags::READONLY) {
        return Err(WriteError::NotModifiable {
            why: "marked read-only",
        });
    }
    let count = wim.image_count();
    if let Some(f) = fates {
        if f.len() != count as usize {
            return Err(WriteError::ImageIndex {
                index: f.len() as u32,
            });
        }
    }
    let mut names = Vec::with_capacity(count as usize);
    let mut metadata = Vec::with_capacity(count as usize);
    let mut refs = BTreeMap::new();
    for index in 1..=count {
        names.push(
            wim.xml()
                .image(index)
                .and_then(|i| i.name())
                .unwrap_or_default(),
        );
        let blob = wim.metadata_blob(index).ok_or(WriteError::Internal {
            what: "image without metadata",
        })?;
        let BlobLocation::Resource { reshdr, .. } = blob.location else {
            return Err(WriteError::NotModifiable {
                why: "image metadata inside a solid resource",
            });
        };
        metadata.push((reshdr, blob.hash));
        if fates.is_some_and(|f| f[index as usize - 1] == Fate::Keep) {
            count_refs(&wim, index, &mut refs)?;
        }
    }
    let mut raw = [0u8; HEADER_SIZE];
    out.read_back(&mut raw, 0)?;
    let header = HeaderDisk::read_from_bytes(&raw).map_err(|_| WriteError::Internal {
        what: "header size",
    })?;
    let t = h.blob_table;
    let mut table = crate::mem::filled(0u8, crate::mem::len::<u8>(t.size_in_wim)?)?;
    out.read_back(&mut table, t.offset)?;
    let entries = <[BlobEntryDisk]>::ref_from_bytes(&table)
        .map_err(|_| WriteError::Internal {
            what: "blob table size",
        })?
        .to_vec();
    Ok(Existing {
        header,
        xml: wim.xml().clone(),
        names,
        entries,
        metadata,
        compression: h.compression().ok().flatten(),
        had_integrity: !h.integrity.is_empty(),
        refs,
    })
}

/// What undoes an in-place change that failed: the header and length the file had.
#[derive(Debug)]
pub(super) struct Rollback {
    header: HeaderDisk,
    len: u64,
    state: State,
}

/// How far an in-place change went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing written yet.
    Untouched,
    /// The header says WRITE_IN_PROGRESS; data may follow the old end.
    Started,
    /// A call failed and the file was put back.
    RolledBack,
}

impl<W: WriteAt> WimWriter<W> {
    /// Opens the WIM in `out` to change it in place: `fates` says for each of its images
    /// whether it stays, goes or is replaced (in place, keeping its position; every image to
    /// replace must get its tree through [`replace_image`](Self::replace_image) before
    /// [`finish`](Self::finish)). New images can be added after them. The compression and chunk
    /// size of the file are kept; `opts` gives threads, level, time and whether to add an
    /// integrity table (an existing one is kept either way).
    pub fn rewrite(out: W, opts: &WriteOptions, fates: &[Fate]) -> Result<Self, WriteError> {
        Self::open_in_place(out, opts, Some(fates))
    }

    /// Opens `out` for [`append`](Self::append) (`fates` = `None`: the images stay and the
    /// stored reference counts are kept) or [`rewrite`](Self::rewrite).
    pub(super) fn open_in_place(
        out: W,
        opts: &WriteOptions,
        fates: Option<&[Fate]>,
    ) -> Result<Self, WriteError> {
        let old = read_existing(&out, fates)?;
        let mut hdr = old.header;
        let count = old.metadata.len() as u32;
        if hdr.boot_index.get() > count {
            // Names no image (wimlib ignores such a value): dropped.
            hdr.boot_index.set(0);
            hdr.boot_metadata = ResHdrDisk::default();
        }
        let pos = out.size();
        let threads = plan_threads(opts, old.compression);
        let mut blobs = BlobOut::new(
            out,
            pos,
            old.compression,
            (opts.level, threads.used),
            // Compressors are made now (an unavailable codec fails before the header is
            // touched) unless nothing new will be compressed (a delete in place).
            fates.is_none_or(|f| f.contains(&Fate::Replace)),
        )?;
        blobs.adopt_entries(old.entries, 1, fates.is_some())?;
        if let Some((codec, chunk)) = opts.solid {
            blobs.solid = Some(super::solid::SolidOut::new(
                codec,
                chunk,
                opts.level,
                threads.used,
            )?);
            // SOLID flags count only in version 0xE00 files.
            hdr.version.set(crate::defs::WimVersion::SOLID.0);
        }
        for (hash, n) in &old.refs {
            if !blobs.add_ref(hash, *n) {
                return Err(WriteError::MissingBlob { hash: *hash });
            }
        }
        let mut xml_doc = old.xml;
        let mut names = old.names;
        let mut metadata: Vec<Option<(ResHdr, Sha1Hash)>> =
            old.metadata.into_iter().map(Some).collect();
        if let Some(fates) = fates {
            let boot = hdr.boot_index.get();
            let mut kept = Vec::new();
            let (mut n, mut m) = (Vec::new(), Vec::new());
            for (i, f) in fates.iter().enumerate() {
                let index = i as u32 + 1;
                if *f == Fate::Delete {
                    if boot == index {
                        hdr.boot_index.set(0);
                    }
                    continue;
                }
                if boot == index {
                    hdr.boot_index.set(kept.len() as u32 + 1);
                }
                kept.push(index);
                n.push(core::mem::take(&mut names[i]));
                m.push(if *f == Fate::Keep { metadata[i] } else { None });
            }
            xml::select_images(&mut xml_doc, &kept);
            names = n;
            metadata = m;
        }
        // The header gets WRITE_IN_PROGRESS only with the first change (`begin`): a caller
        // that fails before writing anything (a missing capture source) leaves the file as
        // it was.
        let rollback = Some(Rollback {
            header: old.header,
            len: pos,
            state: State::Untouched,
        });
        Ok(WimWriter {
            blobs,
            header: hdr,
            xml: xml_doc,
            names: names.into_iter().filter(|n| !n.is_empty()).collect(),
            metadata,
            prune: fates.is_some(),
            integrity: opts.integrity || old.had_integrity,
            now: opts.now,
            copy_stored: opts.copy_stored,
            rollback,
            threads,
            poisoned: false,
        })
    }

    /// Before the first change to a file written in place: marks its header
    /// WRITE_IN_PROGRESS. Refuses to go on after a rollback, or after a cancel.
    pub(super) fn begin(&mut self) -> Result<(), WriteError> {
        self.usable()?;
        let Some(r) = &mut self.rollback else {
            return Ok(());
        };
        match r.state {
            State::Started | State::RolledBack => Ok(()),
            State::Untouched => {
                let mut wip = self.header;
                wip.flags
                    .set(wip.flags.get() | HeaderFlags::WRITE_IN_PROGRESS.bits());
                r.state = State::Started;
                let res = self
                    .blobs
                    .write_at(zerocopy::IntoBytes::as_bytes(&wip), 0)
                    .and_then(|()| Ok(self.blobs.out.sync()?));
                self.undo_on_error(res)
            }
        }
    }

    /// Refuses to go on after a rollback ([`WriteError::RolledBack`]) or, writing a new
    /// file, after a cancel ([`WriteError::Poisoned`]).
    pub(super) fn usable(&self) -> Result<(), WriteError> {
        match &self.rollback {
            Some(r) if r.state == State::RolledBack => Err(WriteError::RolledBack),
            _ if self.poisoned => Err(WriteError::Poisoned),
            _ => Ok(()),
        }
    }

    /// Passes `r` through; if it is an error of a file written in place, first puts back
    /// the original header and length (best effort: the original error is what counts).
    /// A writer that cannot go on (rolled back, or a new file cancelled) gives up its
    /// output: queued data are dropped and its compression threads stopped.
    pub(super) fn undo_on_error<T>(&mut self, r: Result<T, WriteError>) -> Result<T, WriteError> {
        if let Err(e) = &r {
            if let Some(rb) = &mut self.rollback {
                if rb.state == State::Started {
                    let out = &mut self.blobs.out;
                    let _ = out.write_all_at(zerocopy::IntoBytes::as_bytes(&rb.header), 0);
                    let _ = out.set_len(rb.len);
                    let _ = out.sync();
                }
                rb.state = State::RolledBack;
                self.blobs.abandon();
            } else if matches!(e, WriteError::Cancelled) {
                self.poisoned = true;
                self.blobs.abandon();
            }
        }
        r
    }

    /// Writes the new tree of image `index` (1-based, counted after deletions) that
    /// [`rewrite`](Self::rewrite) was told to replace: its new blobs (reading those the file
    /// lacks from `provider`), its metadata, and its XML statistics and modification time
    /// (the rest of its XML element stays).
    pub fn replace_image(
        &mut self,
        index: u32,
        image: &mut NewImage,
        provider: &mut dyn BlobProvider,
    ) -> Result<(), WriteError> {
        self.replace_image_with_progress(index, image, provider, &mut super::progress::ignore)
    }

    /// [`replace_image`](Self::replace_image), telling `progress` how much of the new
    /// tree's data is written; [`ControlFlow::Break`] cancels, and as after any failure the
    /// file gets its original header and length back (see
    /// [`add_image_with_progress`](Self::add_image_with_progress)).
    pub fn replace_image_with_progress(
        &mut self,
        index: u32,
        image: &mut NewImage,
        provider: &mut dyn BlobProvider,
        progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
    ) -> Result<(), WriteError> {
        self.begin()?;
        let r = self.replace_image_inner(index, image, provider, progress);
        self.undo_on_error(r)
    }

    fn replace_image_inner(
        &mut self,
        index: u32,
        image: &mut NewImage,
        provider: &mut dyn BlobProvider,
        progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
    ) -> Result<(), WriteError> {
        let slot = (index as usize)
            .checked_sub(1)
            .filter(|&i| matches!(self.metadata.get(i), Some(None)))
            .ok_or(WriteError::ImageIndex { index })?;
        let meta = self.write_tree(image, provider, index, progress)?;
        self.metadata[slot] = Some(meta);
        let stats = image.stats();
        let found = match xml::image_mut(&mut self.xml, index) {
            Some(mut e) => {
                xml::set_stats(&mut e, &stats, self.now);
                true
            }
            None => false,
        };
        if !found {
            let props = super::ImageProps::default();
            let e = xml::image_element(index, &props, &stats, self.now);
            xml::push_image(&mut self.xml, e);
        }
        Ok(())
    }
}

/// Deletes the images `gone` (1-based indexes) in place (wimlib's `delete --soft`). Blobs
/// only they used leave the table but keep their space.
pub fn delete_in_place<W: WriteAt>(
    out: W,
    gone: &[u32],
    opts: &WriteOptions,
) -> Result<W, WriteError> {
    let count = Wim::open(ReadBack(&out))
        .map_err(WriteError::Open)?
        .image_count();
    if let Some(&index) = gone.iter().find(|&&i| i == 0 || i > count) {
        return Err(WriteError::ImageIndex { index });
    }
    let mut fates = alloc::vec![Fate::Keep; count as usize];
    for &i in gone {
        fates[i as usize - 1] = Fate::Delete;
    }
    WimWriter::rewrite(out, opts, &fates)?.finish()
}
