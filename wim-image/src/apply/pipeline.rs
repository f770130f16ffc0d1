//! The data phase of apply: blobs cut into units in on-disk order (a unit is a run of chunks
//! of one resource, at most a few MiB of output, or one solid chunk), decoded by worker
//! threads, written by one writer in unit order so every file is written front to back.
//!
//! A blob wholly inside one unit is hashed by the worker that decoded it; a blob spread over
//! several units is hashed by the writer as its pieces arrive.
//!
//! Blobs the caller needs in memory (symlink targets) ride along in the same pass: a solid
//! chunk holding them is decoded once, not again afterwards.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::ops::{ControlFlow, Range};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use sha1::{Digest, Sha1};

use super::{create_file, set_file_times, ApplyError, ApplyOptions, ApplyProgress, FileTimes};
use crate::blob_table::Blob;
use crate::codec::{Codec, Decompressor};
use crate::io::ReadAt;
use crate::mem::ThreadCount;
use crate::read::{check_hash, set_len, BlobReader, ReadError, ResKind, ResRef};
use crate::reparse::MAX_REPARSE_DATA;
use crate::wim::Wim;

/// Output bytes a unit aims at (more only when one chunk is bigger).
const UNIT_BYTES: u64 = 4 << 20;

/// A piece of one blob inside a unit.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Index into the blob list.
    blob: usize,
    /// Offset in the blob.
    blob_off: u64,
    /// Offset in the unit's output.
    unit_off: u64,
    len: u64,
}

/// Decoding work: chunks `[first, end)` of a resource (or a byte range of an uncompressed
/// one), and the blob pieces they hold.
#[derive(Debug, Clone)]
struct Unit {
    res: ResRef,
    /// Chunk range (compressed), or byte range (uncompressed).
    first: u64,
    end: u64,
    /// Bytes a chunk (compressed) or a byte (uncompressed) of the range decodes to, and
    /// the resource's uncompressed size (its last chunk may be shorter).
    span: u64,
    res_size: u64,
    pieces: Vec<Piece>,
}

impl Unit {
    /// The bytes the unit decodes to.
    fn out_bytes(&self) -> u64 {
        let end = self.end.saturating_mul(self.span).min(self.res_size);
        end.saturating_sub(self.first.saturating_mul(self.span))
    }

    /// The most bytes one of its chunks decodes to (0 if uncompressed).
    fn chunk_bytes(&self) -> u64 {
        match self.res.kind {
            ResKind::Uncompressed => 0,
            _ => self.span.min(self.res_size),
        }
    }
}

/// One needed blob: its descriptor, where it is, the files it goes to, and whether the caller
/// wants its bytes.
struct Job<'a> {
    blob: Blob,
    /// Its index in the blob table.
    index: u32,
    res: ResRef,
    res_off: u64,
    files: &'a [usize],
    keep: bool,
}

/// What [`write_data`] did.
pub(super) struct Written {
    /// Bytes written to files.
    pub bytes: u64,
    /// The decoder threads wanted and used.
    pub threads: ThreadCount,
    /// The verified bytes of each blob asked for in `keep`, by blob index.
    pub kept: HashMap<u32, Vec<u8>>,
}

/// The path of an entry of the plan, built when needed (the plan holds no paths).
pub(super) type PathOf<'a> = &'a (dyn Fn(usize) -> PathBuf + Sync);

/// Writes every blob in `targets` (blob index → entry indexes) to the paths of its entries,
/// giving each file its `times` once written, and returns the bytes of the blobs in `keep`
/// (`path_of` names a blob in errors).
pub(super) fn write_data<R: ReadAt + Sync>(
    wim: &Wim<R>,
    targets: &HashMap<u32, Vec<usize>>,
    keep: &HashMap<u32, PathBuf>,
    paths: PathOf<'_>,
    times: &[FileTimes],
    opts: &ApplyOptions,
    progress: &mut dyn FnMut(ApplyProgress) -> ControlFlow<()>,
) -> Result<Written, ApplyError> {
    let reader = wim.reader();
    let mut jobs = Vec::with_capacity(targets.len() + keep.len());
    let needed = targets
        .iter()
        .map(|(&b, files)| (b, files.as_slice()))
        .chain(
            keep.keys()
                .filter(|b| !targets.contains_key(b))
                .map(|&b| (b, &[][..])),
        );
    for (b, files) in needed {
        let blob = wim.blob_table().blobs[b as usize];
        let path = files
            .first()
            .map(|&f| paths(f))
            .or_else(|| keep.get(&b).cloned())
            .unwrap_or_default();
        let (res, res_off) = reader.locate(&blob).ok_or(ApplyError::MissingBlob {
            path,
            hash: blob.hash,
        })?;
        jobs.push(Job {
            blob,
            index: b,
            res,
            res_off,
            files,
            keep: keep.contains_key(&b),
        });
    }
    drop(reader);
    // On-disk order.
    jobs.sort_by_key(|j| (j.res.part, j.res.reshdr.offset, j.res_off));
    let units = make_units(wim, &jobs).map_err(|source| ApplyError::Read {
        path: jobs
            .first()
            .and_then(|j| j.files.first())
            .map_or_else(PathBuf::new, |&f| paths(f)),
        source,
    })?;
    // Claimed sizes: their sum (for progress only) saturates rather than overflows.
    let total = jobs.iter().fold(0u64, |n, j| {
        n.saturating_add(j.blob.size.saturating_mul(j.files.len() as u64))
    });
    let mut writer = Writer {
        jobs: &jobs,
        paths,
        times,
        open: HashMap::new(),
        kept: HashMap::new(),
        done: 0,
        total,
        progress,
    };
    let batches = batches(&units);
    let threads = decoder_threads(&units, &batches, opts);
    if threads.used <= 1 || units.len() <= 1 {
        let mut reader = wim.reader();
        let mut buf = Vec::new();
        for u in &units {
            decode(&mut reader, &jobs, u, &mut buf, 0).map_err(|e| writer.error(u, e))?;
            writer.write(u, &buf)?;
        }
    } else {
        parallel(wim, &jobs, &units, &batches, threads.used, &mut writer)?;
    }
    Ok(Written {
        bytes: writer.done,
        threads,
        kept: writer.kept,
    })
}

/// The decoder threads for `batches` of `units`: those asked in `opts`, fewer when their
/// buffers would not fit in memory (the rule is [`ThreadCount`]'s). Each thread accounts
/// for a batch buffer (at most `threads + 1` batches are out at once, see [`parallel`], so
/// one more is set aside), its compressed-chunk buffer (at most the largest chunk) and a
/// decompressor per codec. With 1 GiB LZMS solid chunks that is 2 GiB a thread; with the
/// usual 32 KiB chunks, batches of about [`UNIT_BYTES`].
fn decoder_threads(units: &[Unit], batches: &[Range<usize>], opts: &ApplyOptions) -> ThreadCount {
    let wanted = crate::write::threads(opts.threads);
    if wanted <= 1 || units.len() <= 1 {
        return ThreadCount {
            wanted,
            used: wanted,
        };
    }
    let batch = batches
        .iter()
        .map(|r| units[r.clone()].iter().map(Unit::out_bytes).sum::<u64>())
        .max()
        .unwrap_or(0);
    let chunk = units.iter().map(Unit::chunk_bytes).max().unwrap_or(0);
    let decoders: u64 = [Codec::Xpress, Codec::Lzx, Codec::Lzms]
        .into_iter()
        .map(Decompressor::memory_needed)
        .sum();
    let per_thread = batch.saturating_add(chunk).saturating_add(decoders);
    let budget = opts.memory_limit.or_else(crate::mem::available);
    ThreadCount::fit(wanted, per_thread, batch, budget)
}

/// Cuts the jobs (sorted in on-disk order) into units.
fn make_units<R: ReadAt>(wim: &Wim<R>, jobs: &[Job<'_>]) -> Result<Vec<Unit>, ReadError> {
    let mut reader = wim.reader();
    let mut units: Vec<Unit> = Vec::new();
    let mut i = 0;
    while i < jobs.len() {
        // The jobs of one resource.
        let res = jobs[i].res;
        let mut j = i;
        while j < jobs.len()
            && (jobs[j].res.part, jobs[j].res.reshdr.offset) == (res.part, res.reshdr.offset)
        {
            j += 1;
        }
        let (unit_span, res_size) = match res.kind {
            ResKind::Uncompressed => (1, res.reshdr.uncompressed_size),
            _ => {
                let t = reader.table(&res)?;
                (t.chunk_size as u64, t.uncompressed_size)
            }
        };
        let per_unit = (UNIT_BYTES / unit_span).max(1);
        let mut cur: Option<Unit> = None;
        for (k, job) in jobs.iter().enumerate().take(j).skip(i) {
            let start = job.res_off;
            let end = start + job.blob.size;
            let mut pos = start;
            while pos < end {
                let idx = pos / unit_span;
                let fits = cur
                    .as_ref()
                    .is_some_and(|u| idx < u.end || (idx == u.end && u.end - u.first < per_unit));
                if !fits {
                    if let Some(u) = cur.take() {
                        units.push(u);
                    }
                    cur = Some(Unit {
                        res,
                        first: idx,
                        end: idx,
                        span: unit_span,
                        res_size,
                        pieces: Vec::new(),
                    });
                }
                let u = cur.as_mut().expect("set above");
                // Extend the unit to cover as much of the blob as allowed.
                let max_end = u.first + per_unit;
                let want_end = end.div_ceil(unit_span);
                u.end = u.end.max(want_end.min(max_end)).max(idx + 1);
                let unit_start = u.first * unit_span;
                let piece_end = end.min(u.end * unit_span);
                u.pieces.push(Piece {
                    blob: k,
                    blob_off: pos - start,
                    unit_off: pos - unit_start,
                    len: piece_end - pos,
                });
                pos = piece_end;
            }
        }
        if let Some(u) = cur.take() {
            units.push(u);
        }
        i = j;
    }
    Ok(units)
}

/// Decodes a unit into `buf[base..]` (old bytes there are overwritten, so a recycled
/// buffer costs no memset; `buf` ends with the unit) and checks the hash of each blob wholly
/// inside it.
fn decode<R: ReadAt>(
    reader: &mut BlobReader<'_, R>,
    jobs: &[Job<'_>],
    u: &Unit,
    buf: &mut Vec<u8>,
    base: usize,
) -> Result<(), ReadError> {
    match u.res.kind {
        ResKind::Uncompressed => {
            let len = usize::try_from(u.end - u.first)
                .ok()
                .and_then(|n| n.checked_add(base))
                .ok_or(crate::mem::AllocError::of::<u8>(u64::MAX))?;
            set_len(buf, len)?;
            let src = reader_source(reader, u.res.part)?;
            src.read_exact_at(&mut buf[base..], u.res.reshdr.offset + u.first)?;
        }
        _ => {
            // Each chunk straight to its place in the unit: no copy.
            for i in u.first..u.end {
                let at = if i == u.first { base } else { buf.len() };
                reader.decode_chunk_at(&u.res, i, buf, at)?;
            }
        }
    }
    for p in &u.pieces {
        let job = &jobs[p.blob];
        let bytes = buf
            .get(base + p.unit_off as usize..base + (p.unit_off + p.len) as usize)
            .ok_or(ReadError::Range {
                offset: p.blob_off,
                len: p.len,
                size: job.blob.size,
            })?;
        if p.blob_off == 0 && p.len == job.blob.size {
            check_hash(&job.blob.hash, Sha1::digest(bytes).into())?;
        }
    }
    Ok(())
}

/// Consecutive units taken together as one piece of work of about [`UNIT_BYTES`] of
/// decoded output (a batch's buffer holds all of it): most blobs are small files, one
/// resource (and so one unit) each, and handing them to the decoders one by one would cost
/// more in hand-offs than in decoding. A unit larger than that (one big chunk) is a batch
/// of its own. (Counting the output, not the blob bytes needed from it: a few small files
/// in different 64 MiB solid chunks once made one batch, and one buffer, of all of them.)
fn batches(units: &[Unit]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, u) in units.iter().enumerate() {
        let size = u.out_bytes();
        if i > start && bytes.saturating_add(size) > UNIT_BYTES {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(size);
    }
    if start < units.len() {
        out.push(start..units.len());
    }
    out
}

fn reader_source<'w, R: ReadAt>(reader: &BlobReader<'w, R>, part: u16) -> Result<&'w R, ReadError> {
    reader.wim().part(part).ok_or(ReadError::Range {
        offset: part as u64,
        len: 0,
        size: 0,
    })
}

/// The in-order writer.
struct Writer<'a, 'p> {
    jobs: &'a [Job<'a>],
    paths: PathOf<'a>,
    times: &'a [FileTimes],
    /// Files of blobs spread over several units, with their running hash.
    open: HashMap<usize, (Vec<File>, Sha1)>,
    /// The bytes of the blobs to keep, by blob table index.
    kept: HashMap<u32, Vec<u8>>,
    done: u64,
    total: u64,
    progress: &'p mut dyn FnMut(ApplyProgress) -> ControlFlow<()>,
}

impl Writer<'_, '_> {
    fn path(&self, blob: usize) -> PathBuf {
        self.jobs[blob]
            .files
            .first()
            .map_or_else(PathBuf::new, |&f| (self.paths)(f))
    }

    fn error(&self, u: &Unit, source: ReadError) -> ApplyError {
        let blob = u.pieces.first().map_or(0, |p| p.blob);
        ApplyError::Read {
            path: self.path(blob),
            source,
        }
    }

    fn write(&mut self, u: &Unit, buf: &[u8]) -> Result<(), ApplyError> {
        for p in &u.pieces {
            let job = &self.jobs[p.blob];
            let bytes = &buf[p.unit_off as usize..(p.unit_off + p.len) as usize];
            let whole = p.blob_off == 0 && p.len == job.blob.size;
            let paths = self.paths;
            let io = move |i: usize| {
                move |source| ApplyError::Io {
                    path: paths(i),
                    source,
                }
            };
            if job.keep {
                // `run` refused kept blobs over the reparse limit; the bound stays here so
                // a claimed size never decides an allocation on its own.
                let cap = job.blob.size.min(MAX_REPARSE_DATA as u64) as usize;
                self.kept
                    .entry(job.index)
                    .or_insert_with(|| Vec::with_capacity(cap))
                    .extend_from_slice(bytes);
            }
            if whole {
                for &f in job.files {
                    create_file(&(self.paths)(f))
                        .and_then(|mut file| {
                            file.write_all(bytes)?;
                            set_file_times(&file, self.times[f])
                        })
                        .map_err(io(f))?;
                }
            } else {
                if p.blob_off == 0 {
                    let mut files = Vec::with_capacity(job.files.len());
                    for &f in job.files {
                        files.push(create_file(&(self.paths)(f)).map_err(io(f))?);
                    }
                    self.open.insert(p.blob, (files, Sha1::new()));
                }
                let Some((files, h)) = self.open.get_mut(&p.blob) else {
                    return Err(self.error(
                        u,
                        ReadError::Missing {
                            hash: job.blob.hash,
                        },
                    ));
                };
                h.update(bytes);
                for (file, &f) in files.iter_mut().zip(job.files) {
                    file.write_all(bytes).map_err(io(f))?;
                }
                if p.blob_off + p.len == job.blob.size {
                    let (files, h) = self.open.remove(&p.blob).unwrap_or_default();
                    for (file, &f) in files.iter().zip(job.files) {
                        set_file_times(file, self.times[f]).map_err(io(f))?;
                    }
                    check_hash(&job.blob.hash, h.finalize().into())
                        .map_err(|e| self.error(u, e))?;
                }
            }
            self.done += p.len * job.files.len() as u64;
        }
        // A safe point: every file of a finished blob is complete and closed.
        if (self.progress)(ApplyProgress {
            done: self.done,
            total: self.total,
        })
        .is_break()
        {
            return Err(ApplyError::Cancelled);
        }
        Ok(())
    }
}

/// Decoder threads take batches of units in order (never more than `window` batches ahead
/// of the writer) and send them to the writer on this thread, which writes them in order.
fn parallel<R: ReadAt + Sync>(
    wim: &Wim<R>,
    jobs: &[Job<'_>],
    units: &[Unit],
    batches: &[Range<usize>],
    threads: usize,
    writer: &mut Writer<'_, '_>,
) -> Result<(), ApplyError> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // Batches written so far; decoders wait while they are `window` ahead.
    let written = (Mutex::new(0usize), Condvar::new());
    let window = threads + 1;
    // Buffers go back to the decoders once written, so their pages are not faulted in (and
    // zeroed by the kernel) again for every batch. A decoder takes one only for a batch
    // within the window, so at most `window` exist.
    let pool = Mutex::new(Vec::<Vec<u8>>::new());
    // A decoded batch: its buffer and where each unit starts in it, or the failing unit.
    type Decoded = Result<(Vec<u8>, Vec<usize>), (usize, ReadError)>;
    let (tx, rx) = mpsc::channel::<(usize, Decoded)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, written, pool) = (&next, &stop, &written, &pool);
            s.spawn(move || {
                let mut reader = wim.reader();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= batches.len() || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    {
                        let (m, cv) = written;
                        let mut w = m.lock().unwrap_or_else(|e| e.into_inner());
                        while i >= *w + window && !stop.load(Ordering::Relaxed) {
                            w = cv.wait(w).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    let mut buf = pool
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .pop()
                        .unwrap_or_default();
                    let mut starts = Vec::with_capacity(batches[i].len());
                    let r = batches[i]
                        .clone()
                        .try_for_each(|k| {
                            let base = if starts.is_empty() { 0 } else { buf.len() };
                            starts.push(base);
                            decode(&mut reader, jobs, &units[k], &mut buf, base).map_err(|e| (k, e))
                        })
                        .map(|()| (buf, starts));
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Decoded> = BTreeMap::new();
        let mut want = 0;
        let result = (|| {
            while want < batches.len() {
                let Ok((i, r)) = rx.recv() else {
                    return Err(ApplyError::Thread);
                };
                pending.insert(i, r);
                while let Some(r) = pending.remove(&want) {
                    let (buf, starts) = r.map_err(|(k, e)| writer.error(&units[k], e))?;
                    let ends = starts.iter().skip(1).copied().chain([buf.len()]);
                    for ((k, &a), b) in batches[want].clone().zip(&starts).zip(ends) {
                        writer.write(&units[k], &buf[a..b])?;
                    }
                    pool.lock().unwrap_or_else(|e| e.into_inner()).push(buf);
                    want += 1;
                    let (m, cv) = &written;
                    *m.lock().unwrap_or_else(|e| e.into_inner()) = want;
                    cv.notify_all();
                }
            }
            Ok(())
        })();
        {
            // Under the lock, so that no decoder misses the wake-up between its check and
            // its wait.
            let _guard = written.0.lock().unwrap_or_else(|e| e.into_inner());
            stop.store(true, Ordering::Relaxed);
        }
        written.1.notify_all();
        drop(rx);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::ResHdr;
    use crate::resource::SolidHeader;

    /// A unit of chunks `first..end` of `span` bytes of a solid resource of `res_size`
    /// bytes, holding `len` bytes of one blob.
    fn unit(first: u64, end: u64, span: u64, res_size: u64, len: u64) -> Unit {
        let header = SolidHeader {
            uncompressed_size: res_size,
            chunk_size: span as u32,
            codec: Some(Codec::Lzms),
        };
        Unit {
            res: ResRef {
                part: 1,
                reshdr: ResHdr::default(),
                kind: ResKind::Solid(header),
            },
            first,
            end,
            span,
            res_size,
            pieces: vec![Piece {
                blob: 0,
                blob_off: 0,
                unit_off: 0,
                len,
            }],
        }
    }

    /// Batches are cut by the bytes their buffer holds (the decoded chunks), not by the
    /// blob bytes needed from them.
    #[test]
    fn batches_count_decoded_bytes() {
        const MIB: u64 = 1 << 20;
        // A small file in each of ten 64 MiB solid chunks: ten batches of one chunk (they
        // once made one batch, and one 640 MiB buffer).
        let units: Vec<Unit> = (0..10)
            .map(|i| unit(i, i + 1, 64 * MIB, 640 * MIB, 1000))
            .collect();
        assert_eq!(batches(&units).len(), 10);
        assert_eq!(units[3].out_bytes(), 64 * MIB);
        // A short last chunk counts its own size.
        let last = unit(9, 10, 64 * MIB, 600 * MIB, 1000);
        assert_eq!((last.out_bytes(), last.chunk_bytes()), (24 * MIB, 64 * MIB));
        assert_eq!(unit(0, 1, 64 * MIB, 5000, 5000).chunk_bytes(), 5000);
        // Files of 100 KB in resources of their own: 41 to a 4 MiB batch.
        let units: Vec<Unit> = (0..100)
            .map(|_| unit(0, 4, 32 << 10, 100_000, 100_000))
            .collect();
        let b = batches(&units);
        assert_eq!(b.iter().map(Range::len).collect::<Vec<_>>(), [41, 41, 18]);
    }
}
