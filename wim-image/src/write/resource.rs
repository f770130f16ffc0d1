//! Writing resources: uncompressed, or cut into chunks compressed in parallel with a chunk
//! table in front (4-byte entries, 8-byte above 4 GiB), single-instance storage by SHA-1
//! and the blob table.
//!
//! ```text
//!  start                table_len = (n − 1) × 4|8           chunk i at table end + offset[i]
//!  ┌───────────────────┬─────────┬─────────┬───┬──────────────┐
//!  │ offsets of 1..n−1 │ chunk 0 │ chunk 1 │ … │ chunk n−1    │
//!  └───────────────────┴─────────┴─────────┴───┴──────────────┘
//! ```
//!
//! A chunk that does not shrink is stored raw. A whole resource in memory that does not
//! shrink is stored uncompressed (the COMPRESSED flag cleared), as wimlib does; a streamed
//! one keeps its chunk table with raw chunks (valid, a few bytes larger).
//!
//! With several threads, small blobs in memory (at most [`DEFER_MAX_CHUNKS`] chunks: most
//! files of a typical tree) are not compressed one by one, which would leave all but one
//! thread idle: their table entries are made at once and their data wait in a queue whose
//! chunks are handed to the compression threads together once there are enough to keep every
//! thread busy. The writer then goes on reading and hashing the next files while they work,
//! and writes a batch out when the next one is handed over (at most two are out at once).
//! Queued and compressing batches are written out, in order, before anything else is written,
//! so the file's layout is the same as without them. A large resource is compressed the same
//! way: batch `k` is compressed while batch `k + 1` is read and hashed.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use sha1::{Digest, Sha1};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

use crate::blob_table::Sha1Hash;
use crate::codec::Codec;
use crate::defs::{BlobEntryDisk, ResHdrDisk, ResourceFlags, SHA1_SIZE, SOLID_RESOURCE_MAGIC_SIZE};
use crate::header::ResHdr;

use super::engine::{chunks_per_thread, Batch, Done, Engines, Packed, Ticket, SPARE_BATCHES};
use super::sink::WriteAt;
use super::solid::SolidOut;
use super::WriteError;

/// Blobs in memory of at most this many chunks wait to be compressed with others.
const DEFER_MAX_CHUNKS: usize = 4;

/// Batches (see [`chunks_per_thread`]) of small blobs queued before they are compressed
/// and written.
const DEFER_BATCHES: usize = 2;

/// Input buffers of large resources kept for reuse.
const SPARE_INPUTS: usize = 2;

/// The bytes of chunk buffers each compression thread adds to non-solid output with
/// `chunk`-byte chunks, at most: with `k` = [`chunks_per_thread`] chunks per thread and
/// batch, the small blobs queued and those compressing ([`DEFER_BATCHES`] batches each)
/// beside the kept inputs of large resources ([`SPARE_INPUTS`] batches; a large resource
/// has at most two more out, and never runs beside queued blobs), the result buffers the
/// engines keep ([`SPARE_BATCHES`] batches) and the compressed bytes of the batch being
/// written: `11 k` chunks (88 for chunks up to 1 MiB).
pub(crate) fn thread_buffers(chunk: u32) -> u64 {
    let batches = 2 * DEFER_BATCHES + SPARE_INPUTS + SPARE_BATCHES + 1;
    (batches * chunks_per_thread(chunk as usize)) as u64 * u64::from(chunk)
}

/// The bytes of non-solid output's buffers that do not grow with the thread count: the
/// last small blobs may take a queue past its size by less than [`DEFER_MAX_CHUNKS`]
/// chunks, in the queue and when compressing.
pub(crate) fn shared_buffers(chunk: u32) -> u64 {
    2 * DEFER_MAX_CHUNKS as u64 * u64::from(chunk)
}

/// A small blob whose table entry exists and whose resource is not written yet.
#[derive(Debug)]
struct Deferred {
    /// Its index in [`BlobOut::entries`].
    entry: usize,
    data: Vec<u8>,
}

/// Small blobs handed to the compression threads: their entries, in the order of the
/// batch's pieces.
#[derive(Debug)]
struct InFlight {
    entries: Vec<usize>,
    ticket: Ticket,
}

/// The largest stored size a resource header holds (56 bits).
const MAX_SIZE_IN_WIM: u64 = (1 << 56) - 1;

/// The on-disk form of a resource header.
pub(crate) fn reshdr_disk(r: &ResHdr) -> ResHdrDisk {
    ResHdrDisk {
        size_and_flags: U64::new(r.size_in_wim | (r.flags.bits() as u64) << 56),
        offset: U64::new(r.offset),
        uncompressed_size: U64::new(r.uncompressed_size),
    }
}

/// The header of an uncompressed resource.
fn uncompressed_reshdr(offset: u64, size: u64, flags: ResourceFlags) -> ResHdr {
    ResHdr {
        offset,
        size_in_wim: size,
        uncompressed_size: size,
        flags,
    }
}

/// Where a resource's bytes come from, and who is told of them as they are read.
pub(crate) struct Source<'a> {
    data: Data<'a>,
    /// Told of the length of each piece read (progress); an error (cancelled) stops the
    /// resource there.
    tick: Option<Tick<'a>>,
}

/// Told of each piece of a source read, by its length.
pub(crate) type Tick<'a> = &'a mut dyn FnMut(u64) -> Result<(), WriteError>;

enum Data<'a> {
    /// All in memory.
    Slice(&'a [u8]),
    /// `size` bytes delivered in order by repeated calls filling the whole buffer given.
    Reader {
        size: u64,
        fill: &'a mut dyn FnMut(&mut [u8]) -> Result<(), WriteError>,
    },
}

impl<'a> Source<'a> {
    /// Bytes in memory.
    pub(crate) fn slice(s: &'a [u8]) -> Self {
        Source {
            data: Data::Slice(s),
            tick: None,
        }
    }

    /// `size` bytes delivered in order by repeated calls of `fill`, each filling the whole
    /// buffer given.
    pub(crate) fn reader(
        size: u64,
        fill: &'a mut dyn FnMut(&mut [u8]) -> Result<(), WriteError>,
    ) -> Self {
        Source {
            data: Data::Reader { size, fill },
            tick: None,
        }
    }

    /// The source, telling `tick` of each piece read.
    pub(crate) fn ticking(self, tick: Option<Tick<'a>>) -> Self {
        Source { tick, ..self }
    }

    /// The bytes, if they are in memory.
    pub(crate) fn as_slice(&self) -> Option<&'a [u8]> {
        match self.data {
            Data::Slice(s) => Some(s),
            Data::Reader { .. } => None,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        match &self.data {
            Data::Slice(s) => s.len() as u64,
            Data::Reader { size, .. } => *size,
        }
    }

    /// Fills `buf` with the bytes at `at` (sequential calls only for readers), then tells
    /// the tick.
    pub(crate) fn read(&mut self, at: u64, buf: &mut [u8]) -> Result<(), WriteError> {
        match &mut self.data {
            Data::Slice(s) => buf.copy_from_slice(&s[at as usize..at as usize + buf.len()]),
            Data::Reader { fill, .. } => fill(buf)?,
        }
        match &mut self.tick {
            Some(t) => t(buf.len() as u64),
            None => Ok(()),
        }
    }
}

/// The output file as a sequence of resources and the blob table being built.
#[derive(Debug)]
pub(crate) struct BlobOut<W> {
    /// The sink.
    pub out: W,
    /// Where the next resource goes.
    pub pos: u64,
    /// The file's compression: codec and chunk size.
    pub compression: Option<(Codec, u32)>,
    engines: Option<Engines>,
    /// Level and threads of engines made on first use.
    engine_params: (u32, usize),
    /// Blob-table entries in table order (existing ones first when appending).
    pub entries: Vec<BlobEntryDisk>,
    by_hash: BTreeMap<Sha1Hash, usize>,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// Solid output: data blobs go into solid resources (metadata stays non-solid).
    pub solid: Option<SolidOut>,
    /// Number of write calls made (for tests and progress).
    pub writes: u64,
    /// Small blobs waiting to be compressed together (see the module docs).
    deferred: Vec<Deferred>,
    deferred_chunks: usize,
    /// Batches of small blobs being compressed, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Input buffers of large resources, reused.
    spare_in: Vec<Vec<u8>>,
}

impl<W: WriteAt> BlobOut<W> {
    /// An output writing from `pos`, compressing with `compression` on `threads` threads.
    /// With `eager` the compressors are made now (an unavailable codec fails here), else
    /// when the first compressed resource is written.
    pub(crate) fn new(
        out: W,
        pos: u64,
        compression: Option<(Codec, u32)>,
        (level, threads): (u32, usize),
        eager: bool,
    ) -> Result<Self, WriteError> {
        let engines = match compression {
            Some((codec, chunk)) if eager => Some(Engines::new(codec, level, chunk, threads)?),
            _ => None,
        };
        Ok(BlobOut {
            out,
            pos,
            compression,
            engines,
            engine_params: (level, threads),
            entries: Vec::new(),
            by_hash: BTreeMap::new(),
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            solid: None,
            writes: 0,
            deferred: Vec::new(),
            deferred_chunks: 0,
            in_flight: VecDeque::new(),
            spare_in: Vec::new(),
        })
    }

    /// Takes over existing blob-table entries (appending or rewriting in place): data blobs
    /// become reusable; metadata entries are left out (the writer lists every image's
    /// metadata itself, after the data). With `recount`, every count restarts at zero for
    /// the caller to count the references again.
    pub(crate) fn adopt_entries(
        &mut self,
        entries: Vec<BlobEntryDisk>,
        part: u16,
        recount: bool,
    ) -> Result<(), WriteError> {
        let mut kept: Vec<BlobEntryDisk> = Vec::with_capacity(entries.len());
        let mut removed_since_last = false;
        for mut e in entries {
            let r = ResHdr::from_disk(&e.reshdr);
            if r.flags.contains(ResourceFlags::METADATA) {
                removed_since_last = true;
                continue;
            }
            if removed_since_last && is_solid(&e) && kept.last().is_some_and(is_solid) {
                // Two solid runs would become one, shifting the second run's offsets.
                return Err(WriteError::NotModifiable {
                    why: "image metadata between two solid runs of the blob table",
                });
            }
            removed_since_last = false;
            if recount && !is_solid_resource(&e) {
                e.ref_count.set(0);
            }
            let usable =
                e.hash != [0; SHA1_SIZE] && e.part_number.get() == part && !is_solid_resource(&e);
            if usable {
                self.by_hash.entry(e.hash).or_insert(kept.len());
            }
            kept.push(e);
        }
        self.entries = kept;
        Ok(())
    }

    /// Whether the table has the blob `hash` (a reference to it is only counted).
    pub(crate) fn has(&self, hash: &Sha1Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Gives up the output (a call was cancelled, or an in-place change rolled back): drops
    /// the blobs waiting to be compressed or written and the engines, whose threads stop
    /// after the chunk each holds and are joined. Nothing is written afterwards.
    pub(crate) fn abandon(&mut self) {
        self.deferred = Vec::new();
        self.deferred_chunks = 0;
        self.in_flight.clear();
        self.engines = None;
        self.spare_in = Vec::new();
        if let Some(s) = &mut self.solid {
            s.abandon();
        }
    }

    /// Writes `buf` at `offset`.
    pub(crate) fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<(), WriteError> {
        self.writes += 1;
        self.out.write_all_at(buf, offset)?;
        Ok(())
    }

    /// Adds `refs` references to the blob `hash` if the table has it.
    pub(crate) fn add_ref(&mut self, hash: &Sha1Hash, refs: u32) -> bool {
        let Some(&i) = self.by_hash.get(hash) else {
            return false;
        };
        let e = &mut self.entries[i];
        e.ref_count.set(e.ref_count.get().saturating_add(refs));
        true
    }

    /// Stores a blob (unless the table has it) and returns its SHA-1. `refs` references are
    /// counted either way. Data in memory are hashed first; streamed data are hashed while
    /// written and the space reused if the blob turns out to be a duplicate.
    pub(crate) fn add_blob(
        &mut self,
        mut src: Source<'_>,
        refs: u32,
    ) -> Result<Sha1Hash, WriteError> {
        if self.solid.is_some() {
            return self.add_solid_blob(src, refs);
        }
        if let Some(s) = src.as_slice() {
            let hash: Sha1Hash = Sha1::digest(s).into();
            if self.add_ref(&hash, refs) {
                return Ok(hash);
            }
            if let Some(chunks) = self.deferrable(s.len()) {
                // The entry now (so later duplicates find it), the resource later.
                let placeholder = uncompressed_reshdr(0, 0, ResourceFlags::empty());
                self.push_entry(placeholder, hash, refs);
                self.deferred.push(Deferred {
                    entry: self.entries.len() - 1,
                    data: s.to_vec(),
                });
                self.deferred_chunks += chunks;
                let batch = self.engine_params.1 * chunks_per_thread(self.chunk_size()?);
                if self.deferred_chunks >= DEFER_BATCHES * batch {
                    self.submit_deferred()?;
                }
                return Ok(hash);
            }
        }
        // (Queued blobs first: `start` must be where this one goes.)
        self.flush_deferred()?;
        let start = self.pos;
        let (reshdr, hash) = self.write_resource(&mut src, ResourceFlags::empty())?;
        if self.add_ref(&hash, refs) {
            // A duplicate found only after writing: its space is reused.
            self.pos = start;
            return Ok(hash);
        }
        self.push_entry(reshdr, hash, refs);
        Ok(hash)
    }

    /// Appends a blob-table entry.
    pub(crate) fn push_entry(&mut self, reshdr: ResHdr, hash: Sha1Hash, refs: u32) {
        self.entries.push(BlobEntryDisk {
            reshdr: reshdr_disk(&reshdr),
            part_number: U16::new(1),
            ref_count: U32::new(refs),
            hash,
        });
        if !reshdr.flags.contains(ResourceFlags::METADATA) {
            self.by_hash.insert(hash, self.entries.len() - 1);
        }
    }

    /// How many chunks a blob of `len` bytes in memory has, if it should wait to be
    /// compressed with others: compressed non-solid output on several threads, and at most
    /// [`DEFER_MAX_CHUNKS`] chunks.
    fn deferrable(&self, len: usize) -> Option<usize> {
        let (_, chunk) = self.compression?;
        let chunks = len.div_ceil(chunk as usize);
        let small = (1..=DEFER_MAX_CHUNKS).contains(&chunks);
        (small && self.solid.is_none() && self.engine_params.1 > 1).then_some(chunks)
    }

    /// Hands the waiting small blobs to the compression threads, then writes out the older
    /// batches until one is left compressing (the writer reads on meanwhile).
    fn submit_deferred(&mut self) -> Result<(), WriteError> {
        if !self.deferred.is_empty() {
            let deferred = core::mem::take(&mut self.deferred);
            self.deferred_chunks = 0;
            let (entries, pieces): (Vec<usize>, Vec<Vec<u8>>) =
                deferred.into_iter().map(|d| (d.entry, d.data)).unzip();
            let ticket = self.engines()?.submit(Batch { pieces });
            self.in_flight.push_back(InFlight { entries, ticket });
        }
        while self.in_flight.len() > 1 {
            self.write_in_flight()?;
        }
        Ok(())
    }

    /// Compresses the waiting small blobs and writes every batch's resources in the order
    /// they were added, filling in their table entries. Every write at the end of the file,
    /// and anything reading `pos` or the entries' headers, comes after this.
    pub(crate) fn flush_deferred(&mut self) -> Result<(), WriteError> {
        self.submit_deferred()?;
        while !self.in_flight.is_empty() {
            self.write_in_flight()?;
        }
        Ok(())
    }

    /// Waits for the oldest batch of small blobs and writes their resources.
    fn write_in_flight(&mut self) -> Result<(), WriteError> {
        let Some(InFlight { entries, ticket }) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let chunk = self.chunk_size()?;
        let done = ticket.wait()?;
        let mut k = 0;
        for (&entry, data) in entries.iter().zip(&done.pieces) {
            let n = data.len().div_ceil(chunk);
            let r = self.write_small(data, chunk, &done.packed[k..k + n])?;
            self.entries[entry].reshdr = reshdr_disk(&r);
            k += n;
        }
        self.engines()?.recycle(done);
        Ok(())
    }

    /// The chunk size of the file's codec.
    fn chunk_size(&self) -> Result<usize, WriteError> {
        let (_, chunk_size) = self.compression.ok_or(WriteError::Internal {
            what: "compressed output without a codec",
        })?;
        Ok(chunk_size as usize)
    }

    /// Writes one in-memory resource at the end from its chunks and their compressed forms
    /// (`None`: stored raw); uncompressed if it did not shrink. As [`Self::write_resource`]
    /// lays it out.
    fn write_small(
        &mut self,
        data: &[u8],
        chunk: usize,
        packed: &[Packed],
    ) -> Result<ResHdr, WriteError> {
        let (start, size) = (self.pos, data.len() as u64);
        let stored_chunks: Vec<&[u8]> = data
            .chunks(chunk)
            .zip(packed)
            .map(|(c, z)| z.get().unwrap_or(c))
            .collect();
        let data_len: usize = stored_chunks.iter().map(|c| c.len()).sum();
        let table_len = (stored_chunks.len() - 1) * 4;
        let stored = (table_len + data_len) as u64;
        if stored >= size {
            self.write_at(data, start)?;
            self.pos = start + size;
            return Ok(uncompressed_reshdr(start, size, ResourceFlags::empty()));
        }
        let mut out = core::mem::take(&mut self.outbuf);
        out.clear();
        let mut offset = 0u32;
        for c in &stored_chunks[..stored_chunks.len() - 1] {
            offset += c.len() as u32;
            out.extend_from_slice(&offset.to_le_bytes());
        }
        for c in &stored_chunks {
            out.extend_from_slice(c);
        }
        let written = self.write_at(&out, start);
        self.outbuf = out;
        written?;
        self.pos = start + stored;
        Ok(ResHdr {
            offset: start,
            size_in_wim: stored,
            uncompressed_size: size,
            flags: ResourceFlags::COMPRESSED,
        })
    }

    /// The engines (made on first use).
    fn engines(&mut self) -> Result<&mut Engines, WriteError> {
        let chunk_size = self.chunk_size()? as u32;
        if self.engines.is_none() {
            let (codec, _) = self.compression.ok_or(WriteError::Internal {
                what: "compressed output without a codec",
            })?;
            let (level, threads) = self.engine_params;
            self.engines = Some(Engines::new(codec, level, chunk_size, threads)?);
        }
        self.engines.as_mut().ok_or(WriteError::Internal {
            what: "engines just made",
        })
    }

    /// Writes a compressed batch of one resource's chunks at `data_start + *data_len`,
    /// recording each chunk's offset.
    fn write_chunks(
        &mut self,
        mut done: Done,
        data_start: u64,
        data_len: &mut u64,
        offsets: &mut Vec<u64>,
    ) -> Result<(), WriteError> {
        let chunk = self.chunk_size()?;
        let input = done.pieces.pop().unwrap_or_default();
        let mut outbuf = core::mem::take(&mut self.outbuf);
        outbuf.clear();
        for (c, z) in input.chunks(chunk).zip(&done.packed) {
            offsets.push(*data_len + outbuf.len() as u64);
            outbuf.extend_from_slice(z.get().unwrap_or(c));
        }
        let written = self.write_at(&outbuf, data_start + *data_len);
        *data_len += outbuf.len() as u64;
        self.outbuf = outbuf;
        if self.spare_in.len() < SPARE_INPUTS {
            self.spare_in.push(input);
        }
        self.engines()?.recycle(done);
        written
    }

    /// Writes uncompressed bytes (a table or the XML) at the end and returns their header.
    pub(crate) fn write_raw(
        &mut self,
        bytes: &[u8],
        flags: ResourceFlags,
    ) -> Result<ResHdr, WriteError> {
        self.flush_deferred()?;
        let r = uncompressed_reshdr(self.pos, bytes.len() as u64, flags);
        self.write_at(bytes, self.pos)?;
        self.pos += bytes.len() as u64;
        Ok(r)
    }

    /// Writes one resource at the end (compressed with the file's codec if any) and returns
    /// its header and SHA-1. `flags` are added (METADATA for image metadata).
    pub(crate) fn write_resource(
        &mut self,
        src: &mut Source<'_>,
        flags: ResourceFlags,
    ) -> Result<(ResHdr, Sha1Hash), WriteError> {
        self.flush_deferred()?;
        let size = src.size();
        let start = self.pos;
        let mut hasher = Sha1::new();
        let Some((_, chunk_size)) = self.compression else {
            let mut at = 0u64;
            while at < size {
                let n = (size - at).min(1 << 20) as usize;
                let mut buf = core::mem::take(&mut self.inbuf);
                buf.resize(n, 0);
                src.read(at, &mut buf)?;
                hasher.update(&buf);
                self.write_at(&buf, start + at)?;
                self.inbuf = buf;
                at += n as u64;
            }
            self.pos = start + size;
            return Ok((
                uncompressed_reshdr(start, size, flags),
                hasher.finalize().into(),
            ));
        };
        let chunk = chunk_size as u64;
        let n = size.div_ceil(chunk);
        let entry = if size > u32::MAX as u64 { 8 } else { 4 };
        let table_len = n.saturating_sub(1) * entry;
        let data_start = start + table_len;
        // Grown as chunks are written, never reserved for the size the source claims: a
        // blob claiming 2^60 bytes fails reading its source, not allocating 2^48 bytes here.
        let mut offsets: Vec<u64> = Vec::new();
        let mut data_len = 0u64;
        let batch = self.engines()?.batch_chunks() as u64;
        // Batch `k` compresses while batch `k + 1` is read and hashed.
        let mut pending: Option<Ticket> = None;
        let mut i = 0u64;
        while i < n {
            let m = batch.min(n - i);
            let from = i * chunk;
            let to = ((i + m) * chunk).min(size);
            let mut inbuf = self.spare_in.pop().unwrap_or_default();
            crate::mem::resize(&mut inbuf, crate::mem::len::<u8>(to - from)?, 0)?;
            src.read(from, &mut inbuf)?;
            hasher.update(&inbuf);
            let ticket = self.engines()?.submit(Batch {
                pieces: alloc::vec![inbuf],
            });
            if let Some(t) = pending.replace(ticket) {
                let done = t.wait()?;
                self.write_chunks(done, data_start, &mut data_len, &mut offsets)?;
            }
            i += m;
        }
        if let Some(t) = pending.take() {
            let done = t.wait()?;
            self.write_chunks(done, data_start, &mut data_len, &mut offsets)?;
        }
        let hash: Sha1Hash = hasher.finalize().into();
        let stored = table_len + data_len;
        if stored >= size {
            if let Some(s) = src.as_slice() {
                // Did not shrink: store it uncompressed instead.
                self.write_at(s, start)?;
                self.pos = start + size;
                return Ok((uncompressed_reshdr(start, size, flags), hash));
            }
        }
        let mut table = crate::mem::with_capacity(crate::mem::len::<u8>(table_len)?)?;
        for &o in offsets.iter().skip(1) {
            if entry == 8 {
                table.extend_from_slice(&o.to_le_bytes());
            } else {
                table.extend_from_slice(&(o as u32).to_le_bytes());
            }
        }
        if !table.is_empty() {
            self.write_at(&table, start)?;
        }
        if stored > MAX_SIZE_IN_WIM {
            return Err(WriteError::TooLarge { size: stored });
        }
        self.pos = start + stored;
        let r = ResHdr {
            offset: start,
            size_in_wim: stored,
            uncompressed_size: size,
            flags: flags | ResourceFlags::COMPRESSED,
        };
        Ok((r, hash))
    }

    /// The blob table's bytes: the data entries (with `prune`, only those referenced, solid
    /// resource entries, and entries whose removal would join two solid runs), then
    /// `metadata`.
    pub(crate) fn table_bytes(&self, prune: bool, metadata: &[BlobEntryDisk]) -> Vec<u8> {
        let mut out: Vec<BlobEntryDisk> = Vec::with_capacity(self.entries.len() + metadata.len());
        let mut separator: Option<BlobEntryDisk> = None;
        for e in &self.entries {
            let keep = !prune || e.ref_count.get() > 0 || is_solid_resource(e);
            if !keep {
                if !is_solid(e) && out.last().is_some_and(is_solid) && separator.is_none() {
                    separator = Some(*e);
                }
                continue;
            }
            if let Some(sep) = separator.take() {
                if is_solid(e) {
                    out.push(sep);
                }
            }
            out.push(*e);
        }
        out.extend_from_slice(metadata);
        out.as_bytes().to_vec()
    }
}

pub(crate) fn is_solid(e: &BlobEntryDisk) -> bool {
    ResHdr::from_disk(&e.reshdr)
        .flags
        .contains(ResourceFlags::SOLID)
}

/// The size of the blob an entry stores (a solid blob's is its stored size, as readers
/// take it); `None` for the entry of a solid resource.
pub(crate) fn blob_size(e: &BlobEntryDisk) -> Option<u64> {
    let r = ResHdr::from_disk(&e.reshdr);
    match (r.flags.contains(ResourceFlags::SOLID), r.uncompressed_size) {
        (true, SOLID_RESOURCE_MAGIC_SIZE) => None,
        (true, _) => Some(r.size_in_wim),
        (false, size) => Some(size),
    }
}

/// The entry of a solid resource (not of a blob inside one).
fn is_solid_resource(e: &BlobEntryDisk) -> bool {
    let r = ResHdr::from_disk(&e.reshdr);
    r.flags.contains(ResourceFlags::SOLID) && r.uncompressed_size == SOLID_RESOURCE_MAGIC_SIZE
}
