//! Chunk compression for the writer: one engine per thread, results in input order. A chunk
//! that does not shrink is stored raw.
//!
//! Work goes in as a [`Batch`] of owned pieces of data, each cut into chunks, and comes back
//! from its [`Ticket`]. With one thread (or without `std`) a batch is compressed when it is
//! submitted. With several, each engine lives on a worker thread of its own for the
//! writer's life and takes the next chunk as it finishes one (chunks differ in cost, so
//! fixed shares would leave threads waiting); `submit` returns at once, so the writer reads
//! and hashes the next batch while this one is compressed, instead of leaving the workers
//! idle between batches.
//!
//! The engines wrap the codec module's [`Compressor`]s. A codec whose compressor is not
//! available yet is reported as [`WriteError::CodecUnavailable`] when the writer is created,
//! never in the middle of writing.

use alloc::vec::Vec;

use crate::codec::{Codec, CompressError, Compressor, Level};

use super::WriteError;

/// Uncompressed bytes per thread a batch aims at: [`chunks_per_thread`].
const BATCH_BYTES_PER_THREAD: usize = 8 << 20;

/// Chunks per thread in a batch of `chunk`-byte chunks: 8 up to 1 MiB chunks (enough to
/// even out chunks of different cost), fewer for larger ones, down to 1 from 8 MiB, so
/// that a batch holds at most 8 MiB per thread (wimlib likewise gives big chunks one buffer
/// per thread).
pub(crate) fn chunks_per_thread(chunk: usize) -> usize {
    (BATCH_BYTES_PER_THREAD / chunk.max(1)).clamp(1, 8)
}

/// Batches' worth of result buffers [`Engines::recycle`] keeps for later batches.
pub(crate) const SPARE_BATCHES: usize = 4;

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

    /// Compresses chunk `c` into `out` (resized to hold it); its compressed size if
    /// strictly smaller (only then worth storing compressed). Should there be no memory
    /// for `out`, the chunk is stored raw.
    fn compress_one(&mut self, c: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        crate::mem::resize(out, c.len().saturating_sub(1), 0).ok()?;
        self.0.compress(c, out).filter(|&n| n > 0 && n < c.len())
    }
}

/// Data to compress: `pieces`, each cut into chunks of the engines' chunk size (the last
/// chunk of each piece may be short).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) pieces: Vec<Vec<u8>>,
}

/// One chunk's result: a buffer and, if the chunk shrank, the compressed size in it.
#[derive(Debug)]
pub(crate) struct Packed {
    buf: Vec<u8>,
    len: Option<usize>,
}

impl Packed {
    /// The compressed bytes, or `None` to store the chunk raw.
    pub(crate) fn get(&self) -> Option<&[u8]> {
        self.len.map(|n| &self.buf[..n])
    }
}

/// A compressed batch: its pieces back, and one result per chunk in order.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) pieces: Vec<Vec<u8>>,
    pub(crate) packed: Vec<Packed>,
}

/// A submitted batch; [`Ticket::wait`] gives its result.
#[derive(Debug)]
pub(crate) struct Ticket(TicketState);

#[derive(Debug)]
enum TicketState {
    Ready(Done),
    #[cfg(feature = "std")]
    Pending(pool::Pending),
}

impl Ticket {
    /// Waits for the batch to be compressed.
    pub(crate) fn wait(self) -> Result<Done, WriteError> {
        match self.0 {
            TicketState::Ready(d) => Ok(d),
            #[cfg(feature = "std")]
            TicketState::Pending(p) => p.wait(),
        }
    }
}

/// The engines of a writer, on the caller's thread or on worker threads.
#[derive(Debug)]
pub(crate) struct Engines {
    workers: Workers,
    threads: usize,
    chunk_size: usize,
    /// Result buffers handed back by [`Engines::recycle`], reused by later batches.
    spare: Vec<Vec<u8>>,
}

#[derive(Debug)]
enum Workers {
    Local(Engine),
    #[cfg(feature = "std")]
    Pool(pool::Pool),
}

impl Engines {
    /// `threads` engines (at least one, at most [`super::MAX_THREADS`]).
    pub(crate) fn new(
        codec: Codec,
        level: u32,
        chunk_size: u32,
        threads: usize,
    ) -> Result<Engines, WriteError> {
        let threads = threads.clamp(1, super::MAX_THREADS);
        let mut engines = Vec::new();
        for _ in 0..threads {
            engines.push(Engine::new(codec, level, chunk_size)?);
        }
        let workers = match Self::workers(engines) {
            Some(w) => w,
            // No worker thread could be started: compress on the caller's thread.
            None => Workers::Local(Engine::new(codec, level, chunk_size)?),
        };
        Ok(Engines {
            threads: match &workers {
                Workers::Local(_) => 1,
                #[cfg(feature = "std")]
                Workers::Pool(p) => p.threads(),
            },
            workers,
            chunk_size: chunk_size as usize,
            spare: Vec::new(),
        })
    }

    #[cfg(feature = "std")]
    fn workers(mut engines: Vec<Engine>) -> Option<Workers> {
        if engines.len() == 1 {
            return engines.pop().map(Workers::Local);
        }
        pool::Pool::start(engines).map(Workers::Pool)
    }

    #[cfg(not(feature = "std"))]
    fn workers(mut engines: Vec<Engine>) -> Option<Workers> {
        engines.pop().map(Workers::Local)
    }

    /// The number of threads compressing.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// How many chunks a batch should hold to keep every thread busy.
    pub(crate) fn batch_chunks(&self) -> usize {
        self.threads * chunks_per_thread(self.chunk_size)
    }

    /// Starts compressing `batch` (with one thread: compresses it now).
    pub(crate) fn submit(&mut self, batch: Batch) -> Ticket {
        let chunk = self.chunk_size.max(1);
        let n: usize = batch.pieces.iter().map(|p| p.len().div_ceil(chunk)).sum();
        let mut bufs: Vec<Vec<u8>> = (0..n)
            .map(|_| self.spare.pop().unwrap_or_default())
            .collect();
        match &mut self.workers {
            Workers::Local(e) => {
                let chunks = batch.pieces.iter().flat_map(|p| p.chunks(chunk));
                let packed = chunks
                    .zip(bufs.iter_mut())
                    .map(|(c, buf)| {
                        let mut buf = core::mem::take(buf);
                        let len = e.compress_one(c, &mut buf);
                        Packed { buf, len }
                    })
                    .collect();
                Ticket(TicketState::Ready(Done {
                    pieces: batch.pieces,
                    packed,
                }))
            }
            #[cfg(feature = "std")]
            Workers::Pool(p) => Ticket(TicketState::Pending(p.submit(batch, chunk, bufs))),
        }
    }

    /// Takes back a batch's result buffers for later batches.
    pub(crate) fn recycle(&mut self, done: Done) {
        let keep = SPARE_BATCHES * self.batch_chunks();
        for p in done.packed {
            if self.spare.len() < keep {
                self.spare.push(p.buf);
            }
        }
    }
}

/// Worker threads (with `std`).
#[cfg(feature = "std")]
mod pool {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::vec::Vec;

    use super::{Done, Engine, Packed, WriteError};
    use crate::write::engine::Batch;

    /// One chunk for a worker: where it lies in the batch, and where its result goes.
    struct Job {
        pieces: Arc<Vec<Vec<u8>>>,
        piece: usize,
        start: usize,
        len: usize,
        index: usize,
        buf: Vec<u8>,
        reply: Sender<(usize, Packed)>,
    }

    /// Engines on threads of their own, fed through one queue of chunks.
    #[derive(Debug)]
    pub(super) struct Pool {
        jobs: Option<Sender<Job>>,
        handles: Vec<JoinHandle<()>>,
        state: Arc<State>,
    }

    /// What the pool and its workers share.
    #[derive(Debug, Default)]
    pub(super) struct State {
        /// Set when the pool is dropped: the chunks still queued are dropped unanswered
        /// (a writer dropped, or giving up after a cancel, waits for no more of them).
        stop: AtomicBool,
        /// Chunks compressed (tests).
        #[cfg(test)]
        pub(super) compressed: std::sync::atomic::AtomicUsize,
    }

    impl Pool {
        /// A thread per engine. Should the system refuse a thread, the engines that did
        /// start do the work; `None` if none did.
        pub(super) fn start(mut engines: Vec<Engine>) -> Option<Pool> {
            let (tx, rx) = channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let state = Arc::new(State::default());
            let mut handles = Vec::new();
            while let Some(e) = engines.pop() {
                let rx = Arc::clone(&rx);
                let state = Arc::clone(&state);
                let spawned = std::thread::Builder::new()
                    .name("wim-compress".into())
                    .spawn(move || work(e, &rx, &state));
                // A refused thread takes its engine with it; the others carry on.
                if let Ok(h) = spawned {
                    handles.push(h);
                }
            }
            (!handles.is_empty()).then_some(Pool {
                jobs: Some(tx),
                handles,
                state,
            })
        }

        pub(super) fn threads(&self) -> usize {
            self.handles.len()
        }

        /// What the pool shares with its workers (tests).
        #[cfg(test)]
        pub(super) fn state(&self) -> Arc<State> {
            Arc::clone(&self.state)
        }

        /// Queues every chunk of `batch` (result buffers `bufs`, one per chunk).
        pub(super) fn submit(&self, batch: Batch, chunk: usize, bufs: Vec<Vec<u8>>) -> Pending {
            let pieces = Arc::new(batch.pieces);
            let (reply, results) = channel();
            let mut n = 0;
            let mut bufs = bufs.into_iter();
            for (piece, p) in pieces.iter().enumerate() {
                let mut start = 0;
                while start < p.len() {
                    let len = chunk.min(p.len() - start);
                    let job = Job {
                        pieces: Arc::clone(&pieces),
                        piece,
                        start,
                        len,
                        index: n,
                        buf: bufs.next().unwrap_or_default(),
                        reply: reply.clone(),
                    };
                    // A closed queue (every worker gone) drops the job: `wait` reports it.
                    if let Some(jobs) = &self.jobs {
                        let _ = jobs.send(job);
                    }
                    n += 1;
                    start += len;
                }
            }
            Pending { pieces, results, n }
        }
    }

    impl Drop for Pool {
        fn drop(&mut self) {
            // Closing the queue ends every worker once the queue is empty, and `stop` has
            // them drop the chunks still in it rather than compress them: nothing waits for
            // those (a writer waits for every batch it writes before it drops its engines;
            // one that gives its output up after a cancel does not want them).
            self.state.stop.store(true, Ordering::Relaxed);
            self.jobs = None;
            for h in self.handles.drain(..) {
                let _ = h.join();
            }
        }
    }

    /// A worker: compresses chunks until the queue closes, or only empties it once the
    /// pool is dropped (`stop`).
    fn work(mut engine: Engine, jobs: &Mutex<Receiver<Job>>, state: &State) {
        loop {
            // The lock is held only while waiting for a job, never while compressing.
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(mut job) = job else { return };
            if state.stop.load(Ordering::Relaxed) {
                continue;
            }
            let len = {
                let c = &job.pieces[job.piece][job.start..job.start + job.len];
                engine.compress_one(c, &mut job.buf)
            };
            #[cfg(test)]
            state.compressed.fetch_add(1, Ordering::Relaxed);
            let Job {
                pieces,
                index,
                buf,
                reply,
                ..
            } = job;
            // The data first: once the last result is in, the batch owns its pieces again.
            drop(pieces);
            let _ = reply.send((index, Packed { buf, len }));
        }
    }

    /// A batch on the workers.
    #[derive(Debug)]
    pub(super) struct Pending {
        pieces: Arc<Vec<Vec<u8>>>,
        results: Receiver<(usize, Packed)>,
        n: usize,
    }

    impl Pending {
        pub(super) fn wait(self) -> Result<Done, WriteError> {
            let Pending { pieces, results, n } = self;
            let mut packed: Vec<Option<Packed>> = (0..n).map(|_| None).collect();
            for _ in 0..n {
                // Every job holds a sender: an error means a job was dropped unanswered
                // (a worker panicked, or none could be started).
                let (i, p) = results.recv().map_err(|_| WriteError::Internal {
                    what: "a compression thread failed",
                })?;
                packed[i] = Some(p);
            }
            let packed = packed.into_iter().flatten().collect();
            // Each worker drops its share of the data before answering, so this is the
            // last reference; should it not be, the data are copied.
            let pieces = Arc::try_unwrap(pieces).unwrap_or_else(|a| (*a).clone());
            Ok(Done { pieces, packed })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compressible bytes that differ from piece to piece.
    fn piece(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9) | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Mostly text-like runs, so chunks shrink; some noise, so some do not.
                if i % 512 < 384 {
                    b"the quick brown fox "[i % 20]
                } else {
                    x as u8
                }
            })
            .collect()
    }

    fn results(done: &Done) -> Vec<Option<Vec<u8>>> {
        done.packed
            .iter()
            .map(|p| p.get().map(<[u8]>::to_vec))
            .collect()
    }

    /// Worker threads give exactly the caller's-thread results, chunk for chunk and in
    /// order, with several batches out at once and waited for in any order.
    #[test]
    fn threads_match_one_thread() {
        let chunk = 4096u32;
        let sizes = [1usize, 4095, 4096, 4097, 3 * 4096 + 5, 0, 700];
        let batch = |seed: u32| Batch {
            pieces: sizes
                .iter()
                .enumerate()
                .map(|(k, &n)| piece(n, seed + k as u32))
                .collect(),
        };
        let want_chunks: usize = sizes.iter().map(|n| n.div_ceil(4096)).sum();
        for codec in [Codec::Xpress, Codec::Lzx, Codec::Lzms] {
            let mut one = Engines::new(codec, 50, chunk, 1).unwrap();
            let mut three = Engines::new(codec, 50, chunk, 3).unwrap();
            assert_eq!(three.threads(), 3);
            let want: Vec<_> = (0..3)
                .map(|s| results(&one.submit(batch(s)).wait().unwrap()))
                .collect();
            assert_eq!(want[0].len(), want_chunks);
            assert!(want[0].iter().any(Option::is_some) && want[0].iter().any(Option::is_none));
            let tickets: Vec<Ticket> = (0..3).map(|s| three.submit(batch(s))).collect();
            let mut got: Vec<_> = tickets
                .into_iter()
                .rev()
                .map(|t| t.wait().unwrap())
                .collect();
            got.reverse();
            for (s, done) in got.into_iter().enumerate() {
                assert_eq!(results(&done), want[s], "{codec:?} batch {s}");
                // The pieces come back unchanged, for reuse.
                assert_eq!(done.pieces, batch(s as u32).pieces);
                three.recycle(done);
            }
        }
    }

    /// Engines dropped with work queued (a writer giving up after a cancel) drop the chunks
    /// no thread has begun: each thread finishes at most the chunk it holds, then they are
    /// joined. Before, every queued chunk was compressed first (64 here).
    #[cfg(feature = "std")]
    #[test]
    fn dropped_engines_stop_soon() {
        let chunk = 1 << 20;
        let mut engines = Engines::new(Codec::Lzms, 50, chunk, 2).unwrap();
        let Workers::Pool(pool) = &engines.workers else {
            panic!("no worker threads");
        };
        let state = pool.state();
        let ticket = engines.submit(Batch {
            pieces: alloc::vec![piece(64 << 20, 1)],
        });
        drop(ticket);
        drop(engines);
        let n = state.compressed.load(core::sync::atomic::Ordering::Relaxed);
        assert!(n <= 4, "{n} of 64 chunks compressed after the drop");
    }
}
