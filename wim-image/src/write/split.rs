//! Splitting a WIM into `.swm` parts, as `wimlib-imagex split` and DISM `/Split-Image` do.
//!
//! Every part gets a full header (the source's GUID, flags plus `SPANNED`, part `i` of `n`,
//! the image count; no boot index when there are several parts, as wimlib writes), its own blob table listing only the blobs it stores
//! (part number `i`), and a copy of the XML document. Part 1 holds every image's metadata
//! resource, then data blobs follow in file order; a part is closed when the next blob
//! would bring its resources to the maximum size, unless it holds none yet (a blob is
//! never divided, so a part can be larger than the maximum). Resources are copied as they
//! are stored (no recompression). Solid resources cannot be split (wimlib refuses too).

use alloc::vec::Vec;

use zerocopy::little_endian::{U16, U32};
use zerocopy::IntoBytes;

use crate::blob_table::{Blob, BlobLocation};
use crate::defs::{BlobEntryDisk, HeaderDisk, HeaderFlags, ResHdrDisk, ResourceFlags, HEADER_SIZE};
use crate::header::ResHdr;
use crate::io::ReadAt;
use crate::wim::Wim;

use super::resource::reshdr_disk;
use super::{xml, WriteAt, WriteError};

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
    ) -> Result<(), WriteError> {
        let r = resource_of(blob)?;
        let mut done = 0u64;
        while done < r.size_in_wim {
            let n = (r.size_in_wim - done).min(buf.len() as u64) as usize;
            src.read_exact_at(&mut buf[..n], r.offset + done)
                .map_err(|e| WriteError::Read(crate::read::ReadError::Io(e)))?;
            self.out.write_all_at(&buf[..n], self.pos + done)?;
            done += n as u64;
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
pub fn split<R: ReadAt, W: WriteAt>(
    src: &Wim<R>,
    max_part_size: u64,
    new_part: &mut dyn FnMut(u16) -> Result<W, WriteError>,
) -> Result<Vec<W>, WriteError> {
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
    let mut data: Vec<&Blob> = Vec::new();
    for b in src.blob_table().blobs.iter().filter(|b| !b.is_metadata) {
        resource_of(b)?;
        data.push(b);
    }
    data.sort_by_key(|b| resource_of(b).map_or(0, |r| r.offset));
    let mut buf = alloc::vec![0u8; 1 << 20];
    let mut parts = alloc::vec![Part::new(new_part(1)?)?];
    for i in 1..=src.image_count() {
        let m = src.metadata_blob(i).ok_or(WriteError::Internal {
            what: "image without metadata",
        })?;
        parts[0].copy(file, m, 1, &mut buf)?;
    }
    for b in data {
        let stored = resource_of(b)?.size_in_wim;
        let last = parts.len() - 1;
        if parts[last].size != 0 && parts[last].size.saturating_add(stored) >= max_part_size {
            let n = u16::try_from(parts.len() + 1).map_err(|_| WriteError::TooLarge {
                size: max_part_size,
            })?;
            parts.push(Part::new(new_part(n)?)?);
        }
        let n = parts.len() as u16;
        let p = parts
            .last_mut()
            .ok_or(WriteError::Internal { what: "no part" })?;
        p.copy(file, b, n, &mut buf)?;
    }
    let total = parts.len() as u16;
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
    } else {
        // The boot image's metadata moved with the others to the start of the file.
        header.boot_metadata = (h.boot_index as usize)
            .checked_sub(1)
            .filter(|&i| i < src.image_count() as usize)
            .and_then(|i| parts[0].entries.get(i))
            .map_or_else(ResHdrDisk::default, |e| e.reshdr);
    }
    let mut outs = Vec::with_capacity(parts.len());
    for (i, mut p) in parts.into_iter().enumerate() {
        let table = p.entries.as_bytes().to_vec();
        let mut hdr = header;
        hdr.part_number.set(i as u16 + 1);
        hdr.blob_table = p.raw(&table, ResourceFlags::METADATA)?;
        hdr.xml = p.raw(&doc, ResourceFlags::METADATA)?;
        if p.out.size() > p.pos {
            p.out.set_len(p.pos)?;
        }
        p.out.sync()?;
        p.out.write_all_at(hdr.as_bytes(), 0)?;
        p.out.sync()?;
        outs.push(p.out);
    }
    Ok(outs)
}
