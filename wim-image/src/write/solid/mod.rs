//! Solid (ESD-style) output: blobs concatenated and compressed together in big chunks
//! (64 MiB for LZMS), as `wimlib-imagex --solid` and Microsoft's "recovery" compression do.
//!
//! ```text
//!  solid resource at `offset`:
//!  ┌──────────────────────────────────┬──────────────────────┬─────────┬───┬───────────┐
//!  │ usize u64 │ chunk u32 │ format u32 │ n × u32 stored sizes │ chunk 0 │ … │ chunk n−1 │
//!  └──────────────────────────────────┴──────────────────────┴─────────┴───┴───────────┘
//!  blob table: [resource: SOLID, offset, stored size, usize = 0x1_0000_0000, zero hash]
//!              [blob: SOLID, offset in the run's concatenated data, size, usize = 0]…
//! ```
//!
//! Blobs go into the open resource as they come; each chunk is handed to the compression
//! threads once it is complete (at a blob boundary) and compressed as soon as a thread is
//! free, while the next chunks are read, as wimlib does. At most one chunk per thread and
//! one more are out at a time. A resource is closed at a blob boundary once it holds
//! [`resource_limit`] bytes (blobs never straddle two resources: wimlib cannot read that),
//! and at the end. All resources written by one writer form one run (their offsets continue
//! across resources); an empty separator entry keeps a new run apart from a solid run
//! already in the table (appending).
//!
//! # Memory: the last blob of a resource is streamed
//!
//! The chunk table comes before the chunks, and its length is known only once the
//! resource's last blob is: until then the compressed chunks stay in memory (less than
//! [`resource_limit`] bytes, since the resource is still open), and image metadata written
//! meanwhile goes before the resource. A blob whose declared end reaches the limit is the
//! resource's last, so its chunk count bounds the resource's: `n_max = ⌈end / chunk⌉`. Once
//! its first chunk comes back from the compressors, the space for the header and `n_max`
//! table entries is reserved at the end of the output, the chunks held so far are written
//! after it, and every later chunk (with its table entry) is written as it comes, through
//! buffers of 1 MiB of chunks and 16,384 table entries: a 50 GiB file captured solid holds
//! a few chunks, not its whole compressed form. Nothing else is written until the resource
//! is closed, right after that blob.
//!
//! ```text
//!  reserved at start:  │ 16 │ 4 × n_max │ chunk 0 │ … │
//!  closed with n < n_max chunks (a read failed):
//!                      │ 0…0 (4 × (n_max − n), unreferenced) │ 16 │ 4 × n │ chunk 0 │ … │
//!                                                             ▲ offset of the resource
//! ```
//!
//! Normally the blob ends where it said and `n = n_max`. Should reading it fail, the
//! resource is closed with the chunks it has: the table is moved against chunk 0 and the
//! bytes before it are zeroed, as wimlib lays out a solid resource whose chunk table came
//! out shorter than the zeros it reserved (when blobs it planned to write turn out to be
//! duplicates). Readers go by the offset in the blob table; bytes between resources are
//! never read.
//!
//! A blob read in one pass (a big file) whose SHA-1 shows, at its end, that it is stored
//! already is cut out of the resource again, unless its bytes had to be compressed before
//! its end (more than two batches); then they stay as unreferenced bytes of the resource
//! (which is then closed, the blob being its last if it reached the limit). Nothing of the
//! resource has been written when a blob is cut out: chunks are written only once they come
//! back from the compressors, which happens during a blob only when its bytes are
//! compressed before its end.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use sha1::{Digest, Sha1};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

use crate::blob_table::Sha1Hash;
use crate::codec::Codec;
use crate::defs::{
    BlobEntryDisk, CompressionFormat, ResourceFlags, SolidHeaderDisk, SOLID_RESOURCE_MAGIC_SIZE,
};
use crate::header::{check_chunk_size, ResHdr};

use super::engine::{Batch, Engines, Ticket};
use super::resource::{is_solid, reshdr_disk, BlobOut, Source};
use super::sink::WriteAt;
use super::WriteError;

#[cfg(test)]
mod tests;

/// The default solid chunk size of `codec` (wimlib's: 64 MiB for LZMS, else 32 KiB).
pub fn default_solid_chunk_size(codec: Codec) -> u32 {
    match codec {
        Codec::Lzms => 1 << 26,
        Codec::Xpress | Codec::Lzx => 1 << 15,
    }
}

/// Uncompressed bytes after which the open resource is closed (at the next blob boundary).
pub fn resource_limit(chunk: u32) -> u64 {
    (chunk as u64 * 8).max(64 << 20)
}

/// Chunks per thread a blob being read may hold back before they are compressed.
const PENDING_CHUNKS_PER_THREAD: usize = 2;

/// Bytes read from a blob at a time.
const READ_STEP: u64 = 1 << 20;

/// Bytes of chunks a streamed resource gathers before it writes them; a chunk at least
/// this long is written at once.
const SPILL_STEP: usize = 1 << 20;

/// Chunk-table entries a streamed resource gathers before it writes them.
const TABLE_STEP: usize = 1 << 14;

/// What a solid output reports once a resource could not be closed.
const BROKEN: WriteError = WriteError::Internal {
    what: "an earlier solid resource could not be written",
};

/// The size of a solid resource's header.
const HEADER_LEN: u64 = core::mem::size_of::<SolidHeaderDisk>() as u64;

/// The bytes of chunk buffers each compression thread adds to solid output with
/// `chunk`-byte chunks, at most: the chunks a blob being read holds back
/// ([`PENDING_CHUNKS_PER_THREAD`]), the chunks still out once they are handed over (one per
/// thread, plus one counted in [`shared_buffers`]), and a result buffer for each, which
/// the engines keep: 6 chunks (384 MiB for the 64 MiB LZMS default).
pub(crate) fn thread_buffers(chunk: u32) -> u64 {
    2 * (PENDING_CHUNKS_PER_THREAD as u64 + 1) * u64::from(chunk)
}

/// The bytes of solid output's buffers that do not grow with the thread count: the open
/// resource's compressed chunks before its last blob (less than [`resource_limit`]: the
/// last blob, however large, is streamed, see the module docs, through buffers of
/// [`SPILL_STEP`] bytes and [`TABLE_STEP`] entries made once those chunks are freed), the
/// chunk out beyond one per thread with its result, and a read step.
pub(crate) fn shared_buffers(chunk: u32) -> u64 {
    resource_limit(chunk) + 2 * u64::from(chunk) + READ_STEP
}

/// The open resource once its last blob is being read: where its chunks are written.
#[derive(Debug)]
struct Spill {
    /// Output offset of the space reserved for the resource: the header, `n_max` table
    /// entries, then the chunks.
    start: u64,
    /// The chunks the resource has at most.
    n_max: u64,
    /// Table entries written (from `start` + 16).
    table_done: u64,
    /// Bytes of chunks written (from `start` + 16 + 4 × `n_max`).
    data_done: u64,
}

impl Spill {
    /// Where the chunks begin.
    fn data_start(&self) -> u64 {
        self.start + HEADER_LEN + 4 * self.n_max
    }
}

/// The solid resource being built and the run it belongs to.
#[derive(Debug)]
pub(crate) struct SolidOut {
    codec: Codec,
    chunk: usize,
    level: u32,
    /// Uncompressed bytes after which the open resource closes: [`resource_limit`] (tests
    /// lower it).
    limit: u64,
    /// The compressors, made when the first data are compressed: see [`SolidOut::engines`].
    engines: Option<Engines>,
    /// The chunk size the engines were made for (at most `chunk`).
    engines_chunk: usize,
    /// Threads asked for.
    threads: usize,
    /// Uncompressed bytes not compressed yet (they start at a chunk boundary).
    pending: Vec<u8>,
    /// Batches of whole chunks handed to the engines, oldest first, with their chunk
    /// counts: a chunk starts compressing as soon as it is complete and a thread is free,
    /// while the next one is read.
    in_flight: VecDeque<(Ticket, usize)>,
    /// The open resource's compressed (or raw) chunks not written yet, and their stored
    /// sizes: all of them until the resource's last blob is read, then at most
    /// [`SPILL_STEP`] bytes and [`TABLE_STEP`] sizes.
    packed: Vec<u8>,
    sizes: Vec<U32>,
    /// Uncompressed bytes in the open resource.
    res_size: u64,
    /// While the open resource's last blob is read: the resource's uncompressed size once
    /// the blob is in.
    last_end: Option<u64>,
    /// Once chunks of the last blob's resource are written as they come.
    spill: Option<Spill>,
    /// Offset of the open resource in the run's concatenated data.
    run_base: u64,
    /// The blob-table entry of the open resource.
    res_entry: Option<usize>,
    /// Whether this writer has begun its run.
    in_run: bool,
    /// A resource could not be closed: the output's layout is lost and nothing more is
    /// written.
    broken: bool,
    /// The most bytes `packed` and `sizes` have held at once (tests).
    #[cfg(test)]
    held_peak: usize,
}

impl SolidOut {
    /// Solid output with `codec` in chunks of `chunk` bytes (0: the default), compressed at
    /// `level` on `threads` threads.
    pub(crate) fn new(
        codec: Codec,
        chunk: u32,
        level: u32,
        threads: usize,
    ) -> Result<SolidOut, WriteError> {
        let chunk = if chunk == 0 {
            default_solid_chunk_size(codec)
        } else {
            chunk
        };
        check_chunk_size(codec, chunk).map_err(|()| WriteError::ChunkSize {
            codec,
            chunk_size: chunk,
        })?;
        // A codec that is not available fails now, before anything is written.
        Engines::new(codec, level, 1, 1)?;
        Ok(SolidOut {
            codec,
            chunk: chunk as usize,
            level,
            limit: resource_limit(chunk),
            engines: None,
            engines_chunk: 0,
            threads: threads.max(1),
            pending: Vec::new(),
            in_flight: VecDeque::new(),
            packed: Vec::new(),
            sizes: Vec::new(),
            res_size: 0,
            last_end: None,
            spill: None,
            run_base: 0,
            res_entry: None,
            in_run: false,
            broken: false,
            #[cfg(test)]
            held_peak: 0,
        })
    }

    /// Drops what is not written yet, and the engines (their threads stop after the chunk
    /// each holds); the output is broken from now on.
    pub(crate) fn abandon(&mut self) {
        self.in_flight.clear();
        self.engines = None;
        (self.pending, self.packed, self.sizes) = (Vec::new(), Vec::new(), Vec::new());
        self.spill = None;
        self.res_entry = None;
        self.broken = true;
    }

    /// Uncompressed bytes a blob being read may hold back before its chunks are compressed.
    fn batch_bytes(&self) -> usize {
        self.chunk * self.engines.as_ref().map_or(self.threads, Engines::threads)
    }

    /// The engines, for a batch of `len` bytes. A compressor's memory grows with the chunk
    /// size it is made for (the LZMS match finder: about 8 bytes per byte of chunk), so
    /// while all the data of the resource are shorter than a chunk, engines are made for
    /// what there is (rounded up to a power of two) rather than for the chunk size: 100 KB
    /// in a solid resource of 1 GiB chunks once allocated 8 GiB. LZX keeps the chunk size:
    /// its window, which the reader derives from the chunk size, depends on it.
    fn engines<W: WriteAt>(
        &mut self,
        out: &mut BlobOut<W>,
        len: usize,
    ) -> Result<&mut Engines, WriteError> {
        let need = if self.codec == Codec::Lzx {
            self.chunk
        } else {
            len.max(1).next_power_of_two().min(self.chunk)
        };
        if self.engines.is_none() || self.engines_chunk < need {
            // Batches out belong to the old engines.
            while !self.in_flight.is_empty() {
                self.take_oldest(out)?;
            }
            self.engines = None;
            self.engines = Some(Engines::new(
                self.codec,
                self.level,
                need as u32,
                self.threads,
            )?);
            self.engines_chunk = need;
        }
        Ok(self.engines.as_mut().expect("made above"))
    }

    /// Hands the whole chunks of `pending` (all of it with `all`, the last chunk short) to
    /// the engines, then takes in finished batches, oldest first, until at most one chunk
    /// per thread and one more are out (all of them with `all`).
    fn compress_pending<W: WriteAt>(
        &mut self,
        out: &mut BlobOut<W>,
        all: bool,
    ) -> Result<(), WriteError> {
        let len = if all {
            self.pending.len()
        } else {
            self.pending.len() / self.chunk * self.chunk
        };
        if len > 0 {
            // The whole chunks go to the threads; the rest stays pending.
            let rest = self.pending.split_off(len);
            let data = core::mem::replace(&mut self.pending, rest);
            let ticket = self.engines(out, len)?.submit(Batch {
                pieces: alloc::vec![data],
            });
            self.in_flight.push_back((ticket, len.div_ceil(self.chunk)));
        }
        // (One thread compresses on this one: its batches are done when submitted.)
        let threads = self.engines.as_ref().map_or(1, Engines::threads);
        let keep = if all || threads == 1 { 0 } else { threads + 1 };
        while self.in_flight.iter().map(|&(_, n)| n).sum::<usize>() > keep {
            self.take_oldest(out)?;
        }
        Ok(())
    }

    /// Waits for the oldest batch out and adds its chunks to the resource.
    fn take_oldest<W: WriteAt>(&mut self, out: &mut BlobOut<W>) -> Result<(), WriteError> {
        let Some((ticket, _)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let done = ticket.wait()?;
        let mut r = Ok(());
        for (c, z) in done.pieces[0].chunks(self.chunk).zip(&done.packed) {
            r = self.put(out, z.get().unwrap_or(c));
            if r.is_err() {
                break;
            }
        }
        if let Some(e) = self.engines.as_mut() {
            e.recycle(done);
        }
        r
    }

    /// Adds one stored chunk to the resource: kept until the resource's last blob is read,
    /// then written (see the module docs).
    fn put<W: WriteAt>(&mut self, out: &mut BlobOut<W>, stored: &[u8]) -> Result<(), WriteError> {
        if self.spill.is_none() {
            if let Some(end) = self.last_end {
                self.begin_spill(out, end)?;
            }
        }
        if let Some(sp) = &self.spill {
            if sp.table_done + self.sizes.len() as u64 >= sp.n_max {
                return Err(WriteError::Internal {
                    what: "a solid resource has more chunks than its blobs",
                });
            }
            if self.packed.len() + stored.len() > SPILL_STEP {
                self.flush(out)?;
            }
        }
        self.sizes.push(U32::new(stored.len() as u32));
        match &mut self.spill {
            Some(sp) if stored.len() >= SPILL_STEP => {
                // (`packed` is empty: flushed above.)
                let at = sp.data_start() + sp.data_done;
                sp.data_done += stored.len() as u64;
                out.write_at(stored, at)?;
            }
            Some(_) => self.packed.extend_from_slice(stored),
            None => {
                // The whole resource is held: grow by doubling, but never past the limit
                // (the chunks of an open resource take less).
                let room = self.packed.capacity() - self.packed.len();
                if room < stored.len() {
                    let cap = usize::try_from(self.limit).unwrap_or(usize::MAX);
                    let more = self
                        .packed
                        .len()
                        .min(cap.saturating_sub(self.packed.len()))
                        .max(stored.len());
                    crate::mem::reserve(&mut self.packed, more)?;
                }
                self.packed.extend_from_slice(stored);
            }
        }
        #[cfg(test)]
        {
            let held = self.packed.capacity() + 4 * self.sizes.capacity();
            self.held_peak = self.held_peak.max(held);
        }
        if self.spill.is_some() && self.sizes.len() >= TABLE_STEP {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Reserves the resource's header and chunk table (for a resource ending at `end`) at
    /// the end of the output and writes the chunks held so far after them.
    fn begin_spill<W: WriteAt>(
        &mut self,
        out: &mut BlobOut<W>,
        end: u64,
    ) -> Result<(), WriteError> {
        self.spill = Some(Spill {
            start: out.pos,
            n_max: end.div_ceil(self.chunk as u64),
            table_done: 0,
            data_done: 0,
        });
        self.flush(out)?;
        // The held chunks' memory goes back (before the buffers for the rest are made);
        // from now on it is a step's worth.
        (self.packed, self.sizes) = (Vec::new(), Vec::new());
        self.packed = crate::mem::with_capacity(SPILL_STEP)?;
        self.sizes = crate::mem::with_capacity(TABLE_STEP)?;
        Ok(())
    }

    /// Writes the chunks and table entries gathered since the last flush.
    fn flush<W: WriteAt>(&mut self, out: &mut BlobOut<W>) -> Result<(), WriteError> {
        let Some(sp) = &mut self.spill else {
            return Ok(());
        };
        if !self.sizes.is_empty() {
            let at = sp.start + HEADER_LEN + 4 * sp.table_done;
            sp.table_done += self.sizes.len() as u64;
            out.write_at(self.sizes.as_bytes(), at)?;
            self.sizes.clear();
        }
        if !self.packed.is_empty() {
            let at = sp.data_start() + sp.data_done;
            sp.data_done += self.packed.len() as u64;
            out.write_at(&self.packed, at)?;
            self.packed.clear();
        }
        Ok(())
    }
}

impl<W: WriteAt> BlobOut<W> {
    /// Stores a blob into the open solid resource (unless the table has it) and returns its
    /// SHA-1, counting `refs` references either way.
    pub(crate) fn add_solid_blob(
        &mut self,
        mut src: Source<'_>,
        refs: u32,
    ) -> Result<Sha1Hash, WriteError> {
        if let Some(s) = src.as_slice() {
            let hash: Sha1Hash = Sha1::digest(s).into();
            if self.add_ref(&hash, refs) {
                return Ok(hash);
            }
        }
        let mut s = self.solid.take().ok_or(WriteError::Internal {
            what: "solid blob without solid output",
        })?;
        let r = if s.broken {
            Err(BROKEN)
        } else {
            self.fill_solid(&mut s, &mut src, refs)
        };
        if let Err(e) = &r {
            // The blob is not stored (bytes of it read so far stay unreferenced in the
            // resource). A resource being streamed is closed now, with the chunks it has:
            // nothing else may be written while it is open. Cancelled, the writer is done
            // with: nothing more is compressed or written.
            s.last_end = None;
            if matches!(e, WriteError::Cancelled) {
                s.abandon();
            } else if s.spill.is_some() {
                // (On failure the writer is broken; the first error is the one reported.)
                let _ = self.close_solid(&mut s);
            }
        }
        self.solid = Some(s);
        r
    }

    fn fill_solid(
        &mut self,
        s: &mut SolidOut,
        src: &mut Source<'_>,
        refs: u32,
    ) -> Result<Sha1Hash, WriteError> {
        if s.res_entry.is_none() {
            if !s.in_run && self.entries.last().is_some_and(is_solid) {
                // A separator: an empty entry ends the existing run for every reader.
                self.entries.push(BlobEntryDisk {
                    reshdr: Default::default(),
                    part_number: U16::new(1),
                    ref_count: U32::new(0),
                    hash: [0; 20],
                });
            }
            s.in_run = true;
            s.res_entry = Some(self.entries.len());
            self.entries.push(BlobEntryDisk {
                reshdr: Default::default(),
                part_number: U16::new(1),
                ref_count: U32::new(1),
                hash: [0; 20],
            });
        }
        let size = src.size();
        let (blob_start, keep_from) = (s.res_size, s.pending.len());
        // A blob reaching the limit is the resource's last: see the module docs.
        let end = blob_start.saturating_add(size);
        s.last_end = (end >= s.limit).then_some(end);
        let mut spilled = false;
        let mut hasher = Sha1::new();
        let mut at = 0u64;
        while at < size {
            let n = (size - at).min(READ_STEP) as usize;
            let old = s.pending.len();
            crate::mem::resize(&mut s.pending, old.saturating_add(n), 0)?;
            if let Err(e) = src.read(at, &mut s.pending[old..]) {
                // What was not read is not part of the resource.
                s.pending.truncate(old);
                return Err(e);
            }
            hasher.update(&s.pending[old..]);
            at += n as u64;
            s.res_size += n as u64;
            if s.pending.len() >= PENDING_CHUNKS_PER_THREAD * s.batch_bytes() {
                s.compress_pending(self, false)?;
                spilled = true;
            }
        }
        let hash: Sha1Hash = hasher.finalize().into();
        if self.add_ref(&hash, refs) {
            if !spilled {
                // (Nothing of the resource was written: no chunk came back meanwhile.)
                s.pending.truncate(keep_from);
                s.res_size = blob_start;
                s.last_end = None;
            }
        } else {
            let r = ResHdr {
                offset: s.run_base + blob_start,
                size_in_wim: size,
                uncompressed_size: 0,
                flags: ResourceFlags::SOLID,
            };
            self.push_entry(r, hash, refs);
            if s.pending.len() >= s.chunk {
                s.compress_pending(self, false)?;
            }
        }
        if s.res_size >= s.limit || s.spill.is_some() {
            self.close_solid(s)?;
        }
        s.last_end = None;
        Ok(hash)
    }

    /// Writes the open solid resource, if any, at the end of the output.
    pub(crate) fn finish_solid(&mut self) -> Result<(), WriteError> {
        let Some(mut s) = self.solid.take() else {
            return Ok(());
        };
        let r = if s.broken {
            Err(BROKEN)
        } else {
            self.close_solid(&mut s)
        };
        self.solid = Some(s);
        r
    }

    /// Closes the open resource (if any) and writes what of it is not written yet; a
    /// failure leaves `s` broken.
    fn close_solid(&mut self, s: &mut SolidOut) -> Result<(), WriteError> {
        let r = self.close_solid_inner(s);
        if r.is_err() {
            s.broken = true;
        }
        r
    }

    fn close_solid_inner(&mut self, s: &mut SolidOut) -> Result<(), WriteError> {
        let Some(index) = s.res_entry.take() else {
            return Ok(());
        };
        s.last_end = None;
        if s.res_size == 0 && index + 1 == self.entries.len() {
            // Every blob of it turned out to be stored already.
            self.entries.truncate(index);
            return Ok(());
        }
        s.compress_pending(self, true)?;
        let format = match s.codec {
            Codec::Xpress => CompressionFormat::XPRESS,
            Codec::Lzx => CompressionFormat::LZX,
            Codec::Lzms => CompressionFormat::LZMS,
        };
        let header = SolidHeaderDisk {
            uncompressed_size: U64::new(s.res_size),
            chunk_size: U32::new(s.chunk as u32),
            compression_format: U32::new(format.0),
        };
        let (offset, stored, end) = if s.spill.is_some() {
            s.flush(self)?;
            let sp = s.spill.take().ok_or(WriteError::Internal {
                what: "solid resource not streamed",
            })?;
            let n = sp.table_done;
            let gap = 4 * (sp.n_max - n);
            let offset = sp.start + gap;
            let stored = HEADER_LEN + 4 * n + sp.data_done;
            if stored >= 1 << 56 {
                return Err(WriteError::TooLarge { size: stored });
            }
            if gap > 0 {
                // Fewer chunks than reserved: the table goes against chunk 0.
                self.move_forward(sp.start + HEADER_LEN, 4 * n, gap)?;
                self.write_zeros(sp.start, gap)?;
            }
            self.write_at(header.as_bytes(), offset)?;
            (offset, stored, sp.data_start() + sp.data_done)
        } else {
            let start = self.pos;
            let mut head = Vec::with_capacity(HEADER_LEN as usize + 4 * s.sizes.len());
            head.extend_from_slice(header.as_bytes());
            head.extend_from_slice(s.sizes.as_bytes());
            let stored = head.len() as u64 + s.packed.len() as u64;
            if stored >= 1 << 56 {
                return Err(WriteError::TooLarge { size: stored });
            }
            self.write_at(&head, start)?;
            self.write_at(&s.packed, start + head.len() as u64)?;
            (start, stored, start + stored)
        };
        self.pos = end;
        self.entries[index].reshdr = reshdr_disk(&ResHdr {
            offset,
            size_in_wim: stored,
            uncompressed_size: SOLID_RESOURCE_MAGIC_SIZE,
            flags: ResourceFlags::SOLID,
        });
        s.run_base += s.res_size;
        s.res_size = 0;
        s.packed = Vec::new();
        s.sizes = Vec::new();
        Ok(())
    }

    /// Moves the `len` bytes written at `from` to `from + by`, last bytes first (the
    /// ranges may overlap).
    fn move_forward(&mut self, from: u64, len: u64, by: u64) -> Result<(), WriteError> {
        let mut buf = alloc::vec![0u8; len.min(SPILL_STEP as u64) as usize];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64);
            left -= n;
            let b = &mut buf[..n as usize];
            self.out.read_back(b, from + left)?;
            self.write_at(b, from + left + by)?;
        }
        Ok(())
    }

    /// Writes `len` zero bytes at `at`.
    fn write_zeros(&mut self, at: u64, len: u64) -> Result<(), WriteError> {
        let zeros = alloc::vec![0u8; len.min(SPILL_STEP as u64) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.write_at(&zeros[..n], at + done)?;
            done += n as u64;
        }
        Ok(())
    }
}
