//! Chunk compression for the writer: one engine per thread, batches of chunks compressed in
//! parallel (with `std`), results in input order. A chunk that does not shrink is stored raw.
//!
//! The engines wrap the codec module's [`Compressor`]s. A codec whose compressor is not
//! available yet is reported as [`WriteError::CodecUnavailable`] when the writer is created,
//! never in the middle of writing.

use alloc::vec::Vec;

use crate::codec::{Codec, CompressError, Compressor, Level};

use super::WriteError;

/// One thread's compressor for one codec, level and chunk size.
#[derive(Debug)]
pub(crate) struct Engine(Compressor);

impl Engine {
    /// A compressor for `codec` at `level` for chunks up to `chunk_size` bytes.
    pub(crate) fn new(codec: Codec, level: u32, chunk_size: u32) -> Result<Engine, WriteError> {
        match Compressor::new(codec, Level(level), chunk_size as usize) {
            Ok(c) => Ok(Engine(c)),
            Err(CompressError::Unsupported { codec }) => {
                Err(WriteError::CodecUnavailable { codec })
            }
            Err(e) => Err(WriteError::Compressor(e)),
        }
    }

    /// Compresses `input` into `output`; `None` if it does not fit.
    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Option<usize> {
        self.0.compress(input, output)
    }
}

/// Engines for every thread and the reusable output buffers of a batch.
#[derive(Debug)]
pub(crate) struct Engines {
    engines: Vec<Engine>,
    chunk_size: usize,
    outputs: Vec<Vec<u8>>,
}

impl Engines {
    /// `threads` engines (at least one).
    pub(crate) fn new(
        codec: Codec,
        level: u32,
        chunk_size: u32,
        threads: usize,
    ) -> Result<Engines, WriteError> {
        let mut engines = Vec::new();
        for _ in 0..threads.max(1) {
            engines.push(Engine::new(codec, level, chunk_size)?);
        }
        Ok(Engines {
            engines,
            chunk_size: chunk_size as usize,
            outputs: Vec::new(),
        })
    }

    /// The number of threads (engines).
    pub(crate) fn threads(&self) -> usize {
        self.engines.len()
    }

    /// How many chunks a batch should hold to keep every thread busy.
    pub(crate) fn batch_chunks(&self) -> usize {
        self.engines.len() * 8
    }

    /// Compresses each chunk of `chunks`; result `i` is the compressed bytes of chunk `i`, or
    /// `None` to store it raw.
    pub(crate) fn compress(&mut self, chunks: &[&[u8]]) -> Vec<Option<&[u8]>> {
        while self.outputs.len() < chunks.len() {
            self.outputs.push(alloc::vec![0u8; self.chunk_size]);
        }
        let outs = &mut self.outputs[..chunks.len()];
        let mut sizes = alloc::vec![None; chunks.len()];
        run_parallel(&mut self.engines, chunks, outs, &mut sizes);
        sizes
            .iter()
            .zip(self.outputs.iter())
            .map(|(s, o)| s.map(|n| &o[..n]))
            .collect()
    }
}

/// Every engine on its own thread, each taking the next chunk as it finishes one (chunks
/// differ in cost, so fixed shares would leave threads waiting).
#[cfg(feature = "std")]
fn run_parallel(
    engines: &mut [Engine],
    chunks: &[&[u8]],
    outs: &mut [Vec<u8>],
    sizes: &mut [Option<usize>],
) {
    if engines.len() == 1 || chunks.len() == 1 {
        run_serial(&mut engines[0], chunks, outs, sizes);
        return;
    }
    let work = std::sync::Mutex::new(chunks.iter().zip(outs.iter_mut()).zip(sizes.iter_mut()));
    let threads = engines.len().min(chunks.len());
    std::thread::scope(|s| {
        for e in engines.iter_mut().take(threads) {
            let work = &work;
            s.spawn(move || {
                // A poisoned lock means another engine panicked; the scope re-raises it.
                while let Some(((c, o), z)) = work.lock().ok().and_then(|mut w| w.next()) {
                    *z = compress_one(e, c, o);
                }
            });
        }
    });
}

#[cfg(not(feature = "std"))]
fn run_parallel(
    engines: &mut [Engine],
    chunks: &[&[u8]],
    outs: &mut [Vec<u8>],
    sizes: &mut [Option<usize>],
) {
    run_serial(&mut engines[0], chunks, outs, sizes);
}

fn run_serial(e: &mut Engine, chunks: &[&[u8]], outs: &mut [Vec<u8>], sizes: &mut [Option<usize>]) {
    for ((c, o), s) in chunks.iter().zip(outs.iter_mut()).zip(sizes.iter_mut()) {
        *s = compress_one(e, c, o);
    }
}

/// One chunk: its compressed size, if strictly smaller (only then worth storing compressed).
fn compress_one(e: &mut Engine, c: &[u8], o: &mut [u8]) -> Option<usize> {
    e.compress(c, &mut o[..c.len().saturating_sub(1)])
        .filter(|&n| n > 0 && n < c.len())
}
