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
//! one more are out at a time, so memory holds a few chunks of uncompressed data plus the
//! open resource's compressed chunks. A resource is closed at a
//! blob boundary once it holds [`resource_limit`] bytes (blobs never straddle two resources:
//! wimlib cannot read that), and at the end. All resources written by one writer form one
//! run (their offsets continue across resources); an empty separator entry keeps a new run
//! apart from a solid run already in the table (appending).
//!
//! A blob read in one pass (a big file) whose SHA-1 shows, at its end, that it is stored
//! already is cut out of the resource again, unless its bytes had to be compressed before
//! its end (more than two batches); then they stay as unreferenced bytes of the resource.

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

/// The bytes of chunk buffers each compression thread adds to solid output with
/// `chunk`-byte chunks, at most: the chunks a blob being read holds back
/// ([`PENDING_CHUNKS_PER_THREAD`]), the chunks still out once they are handed over (one per
/// thread, plus one counted in [`shared_buffers`]), and a result buffer for each, which
/// the engines keep: 6 chunks (384 MiB for the 64 MiB LZMS default).
pub(crate) fn thread_buffers(chunk: u32) -> u64 {
    2 * (PENDING_CHUNKS_PER_THREAD as u64 + 1) * u64::from(chunk)
}

/// The bytes of solid output's buffers that do not grow with the thread count: the open
/// resource's compressed chunks (up to [`resource_limit`], more only when one blob goes
/// past it), the chunk out beyond one per thread with its result, and a read step.
pub(crate) fn shared_buffers(chunk: u32) -> u64 {
    resource_limit(chunk) + 2 * u64::from(chunk) + READ_STEP
}

/// The solid resource being built and the run it belongs to.
#[derive(Debug)]
pub(crate) struct SolidOut {
    codec: Codec,
    chunk: usize,
    level: u32,
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
    /// The open resource's compressed (or raw) chunks, and their stored sizes.
    packed: Vec<u8>,
    sizes: Vec<u32>,
    /// Uncompressed bytes in the open resource.
    res_size: u64,
    /// Offset of the open resource in the run's concatenated data.
    run_base: u64,
    /// The blob-table entry of the open resource.
    res_entry: Option<usize>,
    /// Whether this writer has begun its run.
    in_run: bool,
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
            engines: None,
            engines_chunk: 0,
            threads: threads.max(1),
            pending: Vec::new(),
            in_flight: VecDeque::new(),
            packed: Vec::new(),
            sizes: Vec::new(),
            res_size: 0,
            run_base: 0,
            res_entry: None,
            in_run: false,
        })
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
    fn engines(&mut self, len: usize) -> Result<&mut Engines, WriteError> {
        let need = if self.codec == Codec::Lzx {
            self.chunk
        } else {
            len.max(1).next_power_of_two().min(self.chunk)
        };
        if self.engines.is_none() || self.engines_chunk < need {
            // Batches out belong to the old engines.
            while !self.in_flight.is_empty() {
                self.take_oldest()?;
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
    fn compress_pending(&mut self, all: bool) -> Result<(), WriteError> {
        let len = if all {
            self.pending.len()
        } else {
            self.pending.len() / self.chunk * self.chunk
        };
        if len > 0 {
            // The whole chunks go to the threads; the rest stays pending.
            let rest = self.pending.split_off(len);
            let data = core::mem::replace(&mut self.pending, rest);
            let ticket = self.engines(len)?.submit(Batch {
                pieces: alloc::vec![data],
            });
            self.in_flight.push_back((ticket, len.div_ceil(self.chunk)));
        }
        // (One thread compresses on this one: its batches are done when submitted.)
        let threads = self.engines.as_ref().map_or(1, Engines::threads);
        let keep = if all || threads == 1 { 0 } else { threads + 1 };
        while self.in_flight.iter().map(|&(_, n)| n).sum::<usize>() > keep {
            self.take_oldest()?;
        }
        Ok(())
    }

    /// Waits for the oldest batch out and appends its chunks to the resource.
    fn take_oldest(&mut self) -> Result<(), WriteError> {
        let Some((ticket, _)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let done = ticket.wait()?;
        for (c, z) in done.pieces[0].chunks(self.chunk).zip(&done.packed) {
            let stored = z.get().unwrap_or(c);
            self.sizes.push(stored.len() as u32);
            self.packed.extend_from_slice(stored);
        }
        if let Some(e) = self.engines.as_mut() {
            e.recycle(done);
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
        if let Source::Slice(s) = src {
            let hash: Sha1Hash = Sha1::digest(s).into();
            if self.add_ref(&hash, refs) {
                return Ok(hash);
            }
        }
        let mut s = self.solid.take().ok_or(WriteError::Internal {
            what: "solid blob without solid output",
        })?;
        let r = self.fill_solid(&mut s, &mut src, refs);
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
        let mut spilled = false;
        let mut hasher = Sha1::new();
        let mut at = 0u64;
        while at < size {
            let n = (size - at).min(READ_STEP) as usize;
            let old = s.pending.len();
            crate::mem::resize(&mut s.pending, old.saturating_add(n), 0)?;
            src.read(at, &mut s.pending[old..])?;
            hasher.update(&s.pending[old..]);
            at += n as u64;
            s.res_size += n as u64;
            if s.pending.len() >= PENDING_CHUNKS_PER_THREAD * s.batch_bytes() {
                s.compress_pending(false)?;
                spilled = true;
            }
        }
        let hash: Sha1Hash = hasher.finalize().into();
        if self.add_ref(&hash, refs) {
            if !spilled {
                s.pending.truncate(keep_from);
                s.res_size = blob_start;
            }
            return Ok(hash);
        }
        let r = ResHdr {
            offset: s.run_base + blob_start,
            size_in_wim: size,
            uncompressed_size: 0,
            flags: ResourceFlags::SOLID,
        };
        self.push_entry(r, hash, refs);
        if s.pending.len() >= s.chunk {
            s.compress_pending(false)?;
        }
        if s.res_size >= resource_limit(s.chunk as u32) {
            self.close_solid(s)?;
        }
        Ok(hash)
    }

    /// Writes the open solid resource, if any, at the end of the output.
    pub(crate) fn finish_solid(&mut self) -> Result<(), WriteError> {
        let Some(mut s) = self.solid.take() else {
            return Ok(());
        };
        let r = self.close_solid(&mut s);
        self.solid = Some(s);
        r
    }

    fn close_solid(&mut self, s: &mut SolidOut) -> Result<(), WriteError> {
        let Some(index) = s.res_entry.take() else {
            return Ok(());
        };
        if s.res_size == 0 && index + 1 == self.entries.len() {
            // Every blob of it turned out to be stored already.
            self.entries.truncate(index);
            return Ok(());
        }
        s.compress_pending(true)?;
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
        let start = self.pos;
        let mut head = Vec::with_capacity(16 + 4 * s.sizes.len());
        head.extend_from_slice(header.as_bytes());
        for &z in &s.sizes {
            head.extend_from_slice(&z.to_le_bytes());
        }
        let stored = head.len() as u64 + s.packed.len() as u64;
        if stored >= 1 << 56 {
            return Err(WriteError::TooLarge { size: stored });
        }
        self.write_at(&head, start)?;
        self.write_at(&s.packed, start + head.len() as u64)?;
        self.pos = start + stored;
        self.entries[index].reshdr = reshdr_disk(&ResHdr {
            offset: start,
            size_in_wim: stored,
            uncompressed_size: SOLID_RESOURCE_MAGIC_SIZE,
            flags: ResourceFlags::SOLID,
        });
        s.run_base += s.res_size;
        s.res_size = 0;
        s.packed.clear();
        s.sizes.clear();
        Ok(())
    }
}
