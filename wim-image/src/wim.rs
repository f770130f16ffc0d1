//! Opening a WIM: one file, a split set of `.swm` parts, or a pipable WIM, over [`ReadAt`].

use alloc::vec;
use alloc::vec::Vec;

use crate::blob_table::{Blob, BlobLocation, BlobTable, BlobTableError, Sha1Hash};
use crate::codec::Codec;
use crate::defs::{HeaderFlags, ResourceFlags, HEADER_SIZE};
use crate::header::{Header, HeaderError, ResHdr};
use crate::integrity::{IntegrityError, IntegrityTable};
use crate::io::{IoError, ReadAt};
use crate::metadata::{MetadataError, Tree};
use crate::read::{BlobReader, ReadError};
use crate::resource::{check_in_file, check_uncompressed, ResourceError, SolidHeader};
use crate::xml::{XmlError, XmlInfo, MAX_XML_SIZE};

/// Why a WIM could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Reading failed.
    #[error("part {part}")]
    Io {
        /// 1-based part.
        part: u16,
        /// The error.
        #[source]
        source: IoError,
    },
    /// The header is invalid.
    #[error("part {part}")]
    Header {
        /// 1-based part.
        part: u16,
        /// The error.
        #[source]
        source: HeaderError,
    },
    /// A table or resource does not fit or is inconsistent.
    #[error("part {part}")]
    Resource {
        /// 1-based part.
        part: u16,
        /// The error.
        #[source]
        source: ResourceError,
    },
    /// The blob table is invalid.
    #[error("part {part}")]
    BlobTable {
        /// 1-based part.
        part: u16,
        /// The error.
        #[source]
        source: BlobTableError,
    },
    /// The XML document is invalid.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// A table is stored compressed (Microsoft's software cannot read those either) or is
    /// larger than allowed.
    #[error("the {what} at offset {offset} is compressed or too large ({size} bytes)")]
    Table {
        /// Which table.
        what: &'static str,
        /// Its offset.
        offset: u64,
        /// Its size.
        size: u64,
    },
    /// The number of metadata resources differs from the header's image count.
    #[error("header says {header} images but the blob table holds {found} metadata resources")]
    ImageCount {
        /// The header's count.
        header: u32,
        /// Metadata resources found.
        found: usize,
    },
    /// The parts given do not form one complete split set.
    #[error("split set: {what} (part {part})")]
    SplitSet {
        /// What is wrong.
        what: &'static str,
        /// The part concerned.
        part: u16,
    },
    /// A blob inside a solid run lies outside its resources or straddles two of them.
    #[error(
        "solid blob at run offset {offset} ({size} bytes) lies outside one resource of its run"
    )]
    SolidBlob {
        /// Its offset in the run.
        offset: u64,
        /// Its size.
        size: u64,
    },
    /// Two entries of the blob table name overlapping bytes of a part: resources of their
    /// own (data or image metadata), or solid resources. Genuine files store every
    /// resource once (wimlib's and Microsoft's writers); entries with different hashes
    /// naming one resource cannot all be right, and each would decompress it again (and
    /// two images naming one metadata resource would parse it again).
    #[error("part {part}: the resource at offset {offset} overlaps the one at offset {other}")]
    ResourceOverlap {
        /// 1-based part.
        part: u16,
        /// The resource's offset.
        offset: u64,
        /// The offset of the resource it overlaps (at or before it).
        other: u64,
    },
    /// Two blobs of a solid run overlap (wimlib refuses these too).
    #[error("solid blob at run offset {offset} overlaps the one at run offset {other}")]
    SolidBlobOverlap {
        /// Its offset in the run.
        offset: u64,
        /// The offset of the blob it overlaps (at or before it).
        other: u64,
    },
    /// A compressed resource in a WIM whose header names no compression.
    #[error("resource at offset {offset} is compressed but the header names no compression")]
    NoCompression {
        /// Its offset.
        offset: u64,
    },
    /// An encrypted ESD (`<ESD><ENCRYPTED>`), which cannot be read without decryption.
    #[error("the file is an encrypted ESD")]
    Encrypted,
    /// A table that fits in its file is larger than the memory at hand.
    #[error("part {part}: the {what}")]
    OutOfMemory {
        /// 1-based part.
        part: u16,
        /// Which table.
        what: &'static str,
        /// The size asked for.
        #[source]
        source: crate::mem::AllocError,
    },
}

/// A solid resource with its header, placed in its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SolidResource {
    pub part: u16,
    pub reshdr: ResHdr,
    pub header: SolidHeader,
    /// Offset of its first byte in the run's data.
    pub start: u64,
}

/// An open WIM (or split set).
#[derive(Debug)]
pub struct Wim<R> {
    parts: Vec<R>,
    header: Header,
    xml: XmlInfo,
    blobs: BlobTable,
    pub(crate) solid: Vec<Vec<SolidResource>>,
    pub(crate) compression: Option<(Codec, u32)>,
    pub(crate) max_chunk: u32,
}

/// Reads a header: the first one, or for pipable WIMs the copy at the end of the file.
fn read_header<R: ReadAt>(r: &R, part: u16) -> Result<Header, OpenError> {
    let io = |source| OpenError::Io { part, source };
    let size = r.size();
    if size < HEADER_SIZE as u64 {
        return Err(OpenError::Header {
            part,
            source: HeaderError::TooSmall { size },
        });
    }
    let mut b = [0u8; HEADER_SIZE];
    r.read_exact_at(&mut b, 0).map_err(io)?;
    let mut h = Header::parse(&b).map_err(|source| OpenError::Header { part, source })?;
    if h.pipable {
        r.read_exact_at(&mut b, size - HEADER_SIZE as u64)
            .map_err(io)?;
        h = Header::parse(&b).map_err(|source| OpenError::Header { part, source })?;
        h.pipable = true;
    }
    Ok(h)
}

/// Reads an uncompressed table of at most `max` bytes.
fn read_table<R: ReadAt>(
    r: &R,
    part: u16,
    what: &'static str,
    t: &ResHdr,
    max: u64,
) -> Result<Vec<u8>, OpenError> {
    if t.flags.contains(ResourceFlags::COMPRESSED) || t.size_in_wim > max {
        return Err(OpenError::Table {
            what,
            offset: t.offset,
            size: t.size_in_wim,
        });
    }
    let size = r.size();
    check_in_file(t, size).map_err(|source| OpenError::Resource { part, source })?;
    check_uncompressed(t).map_err(|source| OpenError::Resource { part, source })?;
    let oom = |source| OpenError::OutOfMemory { part, what, source };
    let mut buf =
        crate::mem::filled(0u8, crate::mem::len::<u8>(t.size_in_wim).map_err(oom)?).map_err(oom)?;
    r.read_exact_at(&mut buf, t.offset)
        .map_err(|source| OpenError::Io { part, source })?;
    Ok(buf)
}

impl<R: ReadAt> Wim<R> {
    /// Opens a single (non-split) WIM, or a pipable WIM.
    pub fn open(source: R) -> Result<Self, OpenError> {
        Self::open_parts(vec![source])
    }

    /// Opens a split set: every part, in any order.
    pub fn open_parts(sources: Vec<R>) -> Result<Self, OpenError> {
        let mut headers = Vec::with_capacity(sources.len());
        for (i, s) in sources.iter().enumerate() {
            headers.push(read_header(s, i as u16 + 1)?);
        }
        let Some(first) = headers.first().cloned() else {
            return Err(OpenError::SplitSet {
                what: "no parts given",
                part: 0,
            });
        };
        let total = first.total_parts;
        if headers.len() != total as usize {
            return Err(OpenError::SplitSet {
                what: "the number of parts given differs from the total in the header",
                part: first.part_number,
            });
        }
        let mut order: Vec<Option<R>> = (0..total).map(|_| None).collect();
        let mut ordered_headers: Vec<Option<Header>> = vec![None; total as usize];
        for (s, h) in sources.into_iter().zip(headers) {
            if h.guid != first.guid || h.total_parts != total {
                return Err(OpenError::SplitSet {
                    what: "parts of different WIMs",
                    part: h.part_number,
                });
            }
            let slot = h.part_number as usize - 1;
            if order[slot].is_some() {
                return Err(OpenError::SplitSet {
                    what: "part given twice",
                    part: h.part_number,
                });
            }
            order[slot] = Some(s);
            ordered_headers[slot] = Some(h);
        }
        let parts: Vec<R> = order.into_iter().flatten().collect();
        let headers: Vec<Header> = ordered_headers.into_iter().flatten().collect();
        let header = headers[0].clone();
        let compression = header
            .compression()
            .map_err(|source| OpenError::Header { part: 1, source })?;

        let mut blobs = BlobTable::default();
        for (i, (p, h)) in parts.iter().zip(&headers).enumerate() {
            let part = i as u16 + 1;
            let bytes = read_table(p, part, "blob table", &h.blob_table, p.size())?;
            blobs
                .add_part(&bytes, part)
                .map_err(|source| OpenError::BlobTable { part, source })?;
        }
        let xml_bytes = read_table(&parts[0], 1, "XML document", &header.xml, MAX_XML_SIZE)?;
        let xml = XmlInfo::parse(&xml_bytes)?;
        if xml.is_encrypted_esd() {
            return Err(OpenError::Encrypted);
        }
        if blobs.metadata.len() != header.image_count as usize {
            return Err(OpenError::ImageCount {
                header: header.image_count,
                found: blobs.metadata.len(),
            });
        }
        let mut wim = Wim {
            parts,
            header,
            xml,
            blobs,
            solid: Vec::new(),
            compression,
            max_chunk: 1 << 30,
        };
        wim.load_solid()?;
        wim.check_blobs()?;
        wim.check_overlaps()?;
        Ok(wim)
    }

    /// Reads the header of every solid resource.
    fn load_solid(&mut self) -> Result<(), OpenError> {
        for run in &self.blobs.solid_runs {
            let part = run.part;
            let src = &self.parts[part as usize - 1];
            let mut start = 0u64;
            let mut list = Vec::with_capacity(run.resources.len());
            for r in &run.resources {
                let rerr = |source| OpenError::Resource { part, source };
                check_in_file(r, src.size()).map_err(rerr)?;
                if r.size_in_wim < 16 {
                    return Err(rerr(ResourceError::SolidTooShort {
                        offset: r.offset,
                        size: r.size_in_wim,
                    }));
                }
                let mut b = [0u8; 16];
                src.read_exact_at(&mut b, r.offset)
                    .map_err(|source| OpenError::Io { part, source })?;
                let header = SolidHeader::parse(r, &b).map_err(rerr)?;
                header.table_span(r).map_err(rerr)?;
                list.push(SolidResource {
                    part,
                    reshdr: *r,
                    header,
                    start,
                });
                start = start.saturating_add(header.uncompressed_size);
            }
            self.solid.push(list);
        }
        Ok(())
    }

    /// Checks every blob's location against its file and run.
    fn check_blobs(&self) -> Result<(), OpenError> {
        for b in &self.blobs.blobs {
            match b.location {
                BlobLocation::Resource { part, reshdr } => {
                    let rerr = |source| OpenError::Resource { part, source };
                    check_in_file(&reshdr, self.parts[part as usize - 1].size()).map_err(rerr)?;
                    if reshdr.flags.contains(ResourceFlags::COMPRESSED) {
                        if self.compression.is_none() {
                            return Err(OpenError::NoCompression {
                                offset: reshdr.offset,
                            });
                        }
                    } else {
                        check_uncompressed(&reshdr).map_err(rerr)?;
                    }
                }
                BlobLocation::Solid { run, offset } => {
                    self.solid_place(run, offset, b.size)
                        .ok_or(OpenError::SolidBlob {
                            offset,
                            size: b.size,
                        })?;
                }
            }
        }
        Ok(())
    }

    /// Refuses entries naming the same bytes twice: overlapping resources of a part (data,
    /// metadata or solid), or overlapping blobs of a solid run. Entries ignored when the
    /// table was read (repeated hashes, zero sizes, other parts) are not among them.
    fn check_overlaps(&self) -> Result<(), OpenError> {
        let oom = |source| OpenError::OutOfMemory {
            part: 1,
            what: "blob table",
            source,
        };
        let solid_count: usize = self.solid.iter().map(Vec::len).sum();
        // (part or run, start, end), sorted: while none overlap, each starts at or after the
        // end of the one before it of the same part or run.
        let mut spans: Vec<(u32, u64, u64)> =
            crate::mem::with_capacity(self.blobs.blobs.len().saturating_add(solid_count))
                .map_err(oom)?;
        let first_overlap = |spans: &mut Vec<(u32, u64, u64)>| {
            spans.sort_unstable();
            spans
                .windows(2)
                .find(|w| w[0].0 == w[1].0 && w[1].1 < w[0].2)
                .map(|w| (w[1].0, w[1].1, w[0].1))
        };
        let push = |spans: &mut Vec<(u32, u64, u64)>, key: u32, start: u64, size: u64| {
            if size > 0 {
                spans.push((key, start, start.saturating_add(size)));
            }
        };
        for b in &self.blobs.blobs {
            if let BlobLocation::Resource { part, reshdr } = b.location {
                push(&mut spans, part.into(), reshdr.offset, reshdr.size_in_wim);
            }
        }
        for r in self.solid.iter().flatten() {
            push(
                &mut spans,
                r.part.into(),
                r.reshdr.offset,
                r.reshdr.size_in_wim,
            );
        }
        if let Some((part, offset, other)) = first_overlap(&mut spans) {
            return Err(OpenError::ResourceOverlap {
                part: part as u16,
                offset,
                other,
            });
        }
        spans.clear();
        for b in &self.blobs.blobs {
            if let BlobLocation::Solid { run, offset } = b.location {
                push(&mut spans, run, offset, b.size);
            }
        }
        if let Some((_, offset, other)) = first_overlap(&mut spans) {
            return Err(OpenError::SolidBlobOverlap { offset, other });
        }
        Ok(())
    }

    /// The solid resource holding `[offset, offset + size)` of run `run`, and the offset in it.
    pub(crate) fn solid_place(
        &self,
        run: u32,
        offset: u64,
        size: u64,
    ) -> Option<(&SolidResource, u64)> {
        let list = self.solid.get(run as usize)?;
        let i = list.partition_point(|r| r.start <= offset).checked_sub(1)?;
        let r = &list[i];
        let rel = offset - r.start;
        (rel.checked_add(size)? <= r.header.uncompressed_size).then_some((r, rel))
    }

    /// Where a blob of a solid run is stored: the solid resource holding it (its header as the
    /// blob table gives it), the resource's uncompressed size (from its solid header), and
    /// the blob's offset in that uncompressed data. `None` for a blob outside solid runs.
    pub fn solid_location(&self, blob: &Blob) -> Option<(ResHdr, u64, u64)> {
        let BlobLocation::Solid { run, offset } = blob.location else {
            return None;
        };
        let (r, rel) = self.solid_place(run, offset, blob.size)?;
        Some((r.reshdr, r.header.uncompressed_size, rel))
    }

    /// Limits the uncompressed size of a chunk any reader will allocate (default 1 GiB, the
    /// largest LZMS chunk). A compressed chunk can claim any size up to its codec's limit
    /// whatever its stored size, so callers reading untrusted files with little memory set
    /// this lower; larger chunks then fail with [`ReadError::ChunkTooLarge`].
    pub fn set_max_chunk_size(&mut self, bytes: u32) {
        self.max_chunk = bytes;
    }

    /// The header (of part 1 for split sets).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The XML document.
    pub fn xml(&self) -> &XmlInfo {
        &self.xml
    }

    /// The blob table (all parts merged).
    pub fn blob_table(&self) -> &BlobTable {
        &self.blobs
    }

    /// The blob with `hash`.
    pub fn blob(&self, hash: &Sha1Hash) -> Option<&Blob> {
        self.blobs.get(hash)
    }

    /// Number of images.
    pub fn image_count(&self) -> u32 {
        self.header.image_count
    }

    /// The source of part `part` (1-based).
    pub fn part(&self, part: u16) -> Option<&R> {
        self.parts.get((part as usize).checked_sub(1)?)
    }

    /// Number of parts.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Whether the file is pipable.
    pub fn is_pipable(&self) -> bool {
        self.header.pipable
    }

    /// Whether symlink targets were fixed at capture (`RP_FIX`).
    pub fn rp_fix(&self) -> bool {
        self.header.flags.contains(HeaderFlags::RP_FIX)
    }

    /// A reader with its own buffers and decompressors (one per thread).
    pub fn reader(&self) -> BlobReader<'_, R> {
        BlobReader::new(self)
    }

    /// The metadata blob of image `index` (1-based).
    pub fn metadata_blob(&self, index: u32) -> Option<&Blob> {
        let i = *self.blobs.metadata.get((index as usize).checked_sub(1)?)?;
        self.blobs.blobs.get(i as usize)
    }

    /// Reads, checks and parses the metadata resource of image `index` (1-based). Its SHA-1 is
    /// checked against the blob table.
    pub fn image(&self, index: u32) -> Result<Tree, ImageError> {
        let blob = *self
            .metadata_blob(index)
            .ok_or(ImageError::NoSuchImage { index })?;
        // Metadata larger than 512 times the file cannot be genuine (wimlib's guard).
        let total: u64 = self.parts.iter().map(|p| p.size()).sum();
        if blob.size > total.saturating_mul(512) || blob.size > isize::MAX as u64 {
            return Err(ImageError::TooLarge { size: blob.size });
        }
        let buf = self.reader().read_verified(&blob)?;
        Ok(Tree::parse(&buf)?)
    }

    /// Reads and checks the integrity table, if present.
    pub fn integrity_table(&self) -> Result<Option<IntegrityTable>, ImageError> {
        let t = self.header.integrity;
        if t.is_empty() {
            return Ok(None);
        }
        let covered = self
            .header
            .blob_table
            .end()
            .and_then(|e| e.checked_sub(HEADER_SIZE as u64))
            .ok_or(ImageError::TooLarge {
                size: t.size_in_wim,
            })?;
        let bytes = read_table(
            &self.parts[0],
            1,
            "integrity table",
            &t,
            self.parts[0].size(),
        )
        .map_err(|e| match e {
            // A read that fails, or memory that runs out, is that, not a bad table.
            OpenError::Io { source, .. } => ImageError::Read(ReadError::Io(source)),
            OpenError::OutOfMemory { source, .. } => {
                ImageError::Read(ReadError::OutOfMemory(source))
            }
            _ => ImageError::TooLarge {
                size: t.size_in_wim,
            },
        })?;
        Ok(Some(IntegrityTable::parse(&bytes, t.offset, covered)?))
    }
}

/// Why an image's metadata could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// No image with this index.
    #[error("no image {index}")]
    NoSuchImage {
        /// The index asked for.
        index: u32,
    },
    /// A resource bigger than can be genuine.
    #[error("resource of {size} bytes is implausibly large or misplaced")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// Reading it failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The metadata is invalid.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The integrity table is invalid.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
}
