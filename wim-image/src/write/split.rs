//! Splitting a WIM into `.swm` parts, as `wimlib-imagex split` and DISM `/Split-Image` do.
//!
//! Every part gets a full header (the source's GUID, flags plus `SPANNED`, part `i` of `n`,
//! the image count; no boot index when there are several parts, as wimlib writes), its own
//! blob table listing only the blobs it stores (part number `i`), and a copy of the XML
//! document. Part 1 holds every image's metadata resource, then data blobs follow in file
//! order; a part is closed when the next blob would bring its resources to the maximum
//! size, unless it holds none yet (a blob is never divided, so a part can be larger than
//! the maximum). Resources are copied as they are stored (no recompression). Solid
//! resources cannot be split (wimlib refuses too).
//!
//! Which part each blob goes to follows from the blob table alone, so the number of parts
//! every header names is known before anything is written: each part is finished before
//! the next one is begun, and [`split_into`] hands it back then (a split into thousands of
//! files keeps one open).

use alloc::vec::Vec;
use core::ops::ControlFlow;

use zerocopy::little_endian::{U16, U32};
use zerocopy::IntoBytes;

use crate::blob_table::{Blob, BlobLocation};
use crate::defs::{BlobEntryDisk, HeaderDisk, HeaderFlags, ResHdrDisk, ResourceFlags, HEADER_SIZE};
use crate::header::ResHdr;
use crate::io::ReadAt;
use crate::wim::Wim;

use super::progress::Reporter;
use super::resource::reshdr_disk;
use super::{xml, WriteAt, WriteError};

/// Progress of [`split_into_with_progress`]: bytes of resources copied, over all parts.
///
/// [`total`](Self::total) is the size of every resource the parts hold (metadata and data,
/// as stored), fixed for the call; [`done`](Self::done) never goes down, and the last report
/// of a split that succeeds has `done == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SplitProgress {
    /// The part being written (1-based).
    pub part: u16,
    /// The number of parts.
    pub parts: u16,
    /// Bytes of resources copied so far.
    pub done: u64,
    /// Bytes of resources the parts hold.
    pub total: u64,
}

/// Counts the bytes copied and reports them as every write does ([`Reporter`]).
struct SplitMeter<'f> {
    report: Reporter<'f, SplitProgress>,
    p: SplitProgress,
}

impl SplitMeter<'_> {
    fn copied(&mut self, n: u64) -> Result<(), WriteError> {
        self.p.done += n;
        self.report.read(n, self.p)
    }

    fn send(&mut self) -> Result<(), WriteError> {
        self.report.send(self.p)
    }
}

/// One part being written.
struct Part<W> {
    out: W,
    pos: u64,
    /// Bytes of resources so far (what the maximum limits).
    size: u64,
    entries: Vec<BlobEntryDisk>,
}

/// The source's resource of a non-solid blob.
fn resource_of(blob: &Blob) -> Result<ResHdr, WriteError> {
    match blob.location {
        BlobLocation::Resource { part: 1, reshdr } => Ok(reshdr),
        BlobLocation::Resource { .. } => Err(WriteError::NotModifiable {
            why: "already split",
        }),
        BlobLocation::Solid { .. } => Err(WriteError::NotModifiable {
            why: "solid resources cannot be split",
        }),
    }
}

impl<W: WriteAt> Part<W> {
    fn new(mut out: W) -> Result<Self, WriteError> {
        // Until the header is written at the end, the part is not a WIM.
        out.write_all_at(&[0u8; HEADER_SIZE], 0)?;
        Ok(Part {
            out,
            pos: HEADER_SIZE as u64,
            size: 0,
            entries: Vec::new(),
        })
    }

    /// Copies the blob's stored bytes from `src` and lists it as stored in part `number`.
    fn copy<R: ReadAt>(
        &mut self,
        src: &R,
        blob: &Blob,
        number: u16,
        buf: &mut [u8],
        meter: &mut SplitMeter<'_>,
    ) -> Result<(), WriteError> {
        let r = resource_of(blob)?;
        let mut done = 0u64;
        while done < r.size_in_wim {
            let n = (r.size_in_wim - done).min(buf.len() as u64) as usize;
            src.read_exact_at(&mut buf[..n], r.offset + done)
                .map_err(|e| WriteError::Read(crate::read::ReadError::Io(e)))?;
            self.out.write_all_at(&buf[..n], self.pos + done)?;
            done += n as u64;
            meter.copied(n as u64)?;
        }
        let moved = ResHdr {
            offset: self.pos,
            ..r
        };
        self.entries.push(BlobEntryDisk {
            reshdr: reshdr_disk(&moved),
            part_number: U16::new(number),
            ref_count: U32::new(blob.ref_count.max(1)),
            hash: blob.hash,
        });
        self.pos += r.size_in_wim;
        self.size += r.size_in_wim;
        Ok(())
    }

    /// Writes the part's blob table, `doc` and then `header` as part `number`'s, and gives
    /// back its output.
    fn finish(mut self, mut header: HeaderDisk, number: u16, doc: &[u8]) -> Result<W, WriteError> {
        let table = self.entries.as_bytes().to_vec();
        header.part_number.set(number);
        header.blob_table = self.raw(&table, ResourceFlags::METADATA)?;
        header.xml = self.raw(doc, ResourceFlags::METADATA)?;
        if self.out.size() > self.pos {
            self.out.set_len(self.pos)?;
        }
        self.out.sync()?;
        self.out.write_all_at(header.as_bytes(), 0)?;
        self.out.sync()?;
        Ok(self.out)
    }

    /// Writes uncompressed bytes at the end.
    fn raw(&mut self, bytes: &[u8], flags: ResourceFlags) -> Result<ResHdrDisk, WriteError> {
        self.out.write_all_at(bytes, self.pos)?;
        let r = ResHdr {
            offset: self.pos,
            size_in_wim: bytes.len() as u64,
            uncompressed_size: bytes.len() as u64,
            flags,
        };
        self.pos += bytes.len() as u64;
        Ok(reshdr_disk(&r))
    }
}

/// Splits `src` (a single, non-solid, non-pipable WIM) into parts whose resources stay
/// under `max_part_size` bytes where possible; `new_part(i)` gives the output of part `i`
/// (1-based). Returns the parts in order.
///
/// Every part is held until the end: with files, [`split_into`] keeps one open at a time.
pub fn split<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    max_part_size: u64,
    new_part: &mut dyn FnMut(u16) -> Result<W, WriteError>,
) -> Result<Vec<W>, WriteError> {
    let mut parts = Vec::new();
    split_into(src, max_part_size, new_part, &mut |_, p| {
        parts.push(p);
        Ok(())
    })?;
    Ok(parts)
}

/// Splits `src` as [`split`] does, one part at a time: `new_part(i)` gives the output of
/// part `i` (1-based) and `done(i, out)` takes it back complete (its header written and
/// [synced](WriteAt::sync)) before part `i + 1` is asked for, so a split into any number of
/// parts holds one output open. Which part each blob goes to, and so the number of parts
/// that every header names, is worked out from the blob table before anything is written.
/// Returns the number of parts.
pub fn split_into<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    max_part_size: u64,
    new_part: &mut dyn FnMut(u16) -> Result<W, WriteError>,
    done: &mut dyn FnMut(u16, W) -> Result<(), WriteError>,
) -> Result<u16, WriteError> {
    split_into_with_progress(src, max_part_size, new_part, done, &mut |_| {
        ControlFlow::Continue(())
    })
}

/// [`split_into`], telling `progress` of the bytes copied (see [`SplitProgress`]: every
/// [`REPORT_STEP`](super::progress::REPORT_STEP) bytes, and once all are). Returning
/// [`ControlFlow::Break`] stops the split at that report with [`WriteError::Cancelled`]:
/// the part being written is dropped unfinished (its header still zeros, so no reader takes
/// it for a part) and no other is begun. The parts handed to `done` before are complete, but the set is not: throw them
/// away too. Cancelling at the final report (`done == total`) still cancels: the last part
/// is not finished.
pub fn split_into_with_progress<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    max_part_size: u64,
    new_part: &mut dyn FnMut(u16) -> Result<W, WriteError>,
    done: &mut dyn FnMut(u16, W) -> Result<(), WriteError>,
    progress: &mut dyn FnMut(SplitProgress) -> ControlFlow<()>,
) -> Result<u16, WriteError> {
    let h = src.header();
    if h.pipable || src.part_count() != 1 {
        return Err(WriteError::NotModifiable {
            why: "only a single, non-pipable WIM can be split",
        });
    }
    let file = src.part(1).ok_or(WriteError::Internal {
        what: "source without part 1",
    })?;
    let mut raw = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut raw, 0)
        .map_err(|e| WriteError::Read(crate::read::ReadError::Io(e)))?;
    let mut header = <HeaderDisk as zerocopy::FromBytes>::read_from_bytes(&raw).map_err(|_| {
        WriteError::Internal {
            what: "header size",
        }
    })?;
    let mut metadata = Vec::with_capacity(src.image_count() as usize);
    for i in 1..=src.image_count() {
        let m = src.metadata_blob(i).ok_or(WriteError::Internal {
            what: "image without metadata",
        })?;
        metadata.push((m, resource_of(m)?.size_in_wim));
    }
    let mut data: Vec<(&Blob, ResHdr)> = Vec::new();
    for b in src.blob_table().blobs.iter().filter(|b| !b.is_metadata) {
        data.push((b, resource_of(b)?));
    }
    data.sort_by_key(|(_, r)| r.offset);
    // Each data blob's part: a part is closed when the next blob would bring its
    // resources to the maximum, unless it holds none yet. Part 1 starts with the metadata.
    let mut part_of = Vec::with_capacity(data.len());
    let (mut total, mut size) = (1u16, 0u64);
    for &(_, r) in &metadata {
        size = size.saturating_add(r);
    }
    for (_, r) in &data {
        if size != 0 && size.saturating_add(r.size_in_wim) >= max_part_size {
            total = total.checked_add(1).ok_or(WriteError::TooLarge {
                size: max_part_size,
            })?;
            size = 0;
        }
        size = size.saturating_add(r.size_in_wim);
        part_of.push(total);
    }
    let doc = xml::encode(src.xml());
    let flags = (h.flags | HeaderFlags::SPANNED) - HeaderFlags::WRITE_IN_PROGRESS;
    header.flags.set(flags.bits());
    header.total_parts.set(total);
    header.integrity = ResHdrDisk::default();
    if total > 1 {
        // wimlib writes no boot index into the parts of a split set (only a file that stays
        // whole keeps it); the same here.
        header.boot_index.set(0);
        header.boot_metadata = ResHdrDisk::default();
    }
    let bytes = metadata
        .iter()
        .map(|&(_, n)| n)
        .chain(data.iter().map(|(_, r)| r.size_in_wim))
        .fold(0u64, u64::saturating_add);
    let mut meter = SplitMeter {
        report: Reporter::new(progress),
        p: SplitProgress {
            part: 1,
            parts: total,
            done: 0,
            total: bytes,
        },
    };
    let mut buf = alloc::vec![0u8; 1 << 20];
    let mut part = Part::new(new_part(1)?)?;
    for &(m, _) in &metadata {
        part.copy(file, m, 1, &mut buf, &mut meter)?;
    }
    if total == 1 {
        // The boot image's metadata moved with the others to the start of the file.
        header.boot_metadata = (h.boot_index as usize)
            .checked_sub(1)
            .and_then(|i| part.entries.get(i))
            .map_or_else(ResHdrDisk::default, |e| e.reshdr);
    }
    let mut number = 1u16;
    for ((b, _), &n) in data.iter().zip(&part_of) {
        if n != number {
            done(number, part.finish(header, number, &doc)?)?;
            number = n;
            meter.p.part = number;
            part = Part::new(new_part(number)?)?;
        }
        part.copy(file, b, number, &mut buf, &mut meter)?;
    }
    meter.send()?;
    done(number, part.finish(header, number, &doc)?)?;
    Ok(total)
}
