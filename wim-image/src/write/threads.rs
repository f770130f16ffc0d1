//! How many compression threads a writer uses: those asked for (or every core), fewer when
//! their compressors and chunk buffers would not fit in memory.
//!
//! Each thread holds a compressor of its own ([`Compressor::memory_needed`]: about 9 bytes
//! per byte of chunk for LZMS, so 9 GiB for 1 GiB solid chunks) and chunk buffers in flight
//! ([`resource::thread_buffers`], [`solid::thread_buffers`]). On a machine with many cores
//! and the default of one thread per core, their sum could exceed the memory and the
//! process be killed (pages are committed as they are used, so fallible allocation does not
//! catch it). wimlib-imagex reduces its threads until its compressors fit in the machine's
//! memory, whether the count was asked or defaulted; the writer does the same with the
//! memory available when it is made ([`WriteOptions::memory_limit`]), and reports it
//! ([`WimWriter::compression_threads`](super::WimWriter::compression_threads),
//! [`WriteOptions::fewer_threads`]).

use crate::codec::{Codec, Compressor, Level};
use crate::mem::ThreadCount;

use super::{resource, solid, WriteOptions, MAX_THREADS};

/// The threads asked for: `n`, or with 0 every core; at most [`MAX_THREADS`].
pub(crate) fn threads(n: usize) -> usize {
    #[cfg(feature = "std")]
    if n == 0 {
        return std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
    }
    n.clamp(1, MAX_THREADS)
}

/// The bytes each compression thread of a writer by `opts` accounts for, and those set
/// aside whatever the thread count, for non-solid resources compressed as `compression`
/// and data blobs as `opts.solid`. Both sets of compressors exist at once, so a thread
/// counts its compressor and chunk buffers ([`resource::thread_buffers`],
/// [`solid::thread_buffers`]) in each; the writer's other buffers for either are shared
/// ([`resource::shared_buffers`], [`solid::shared_buffers`]).
fn thread_memory(opts: &WriteOptions, compression: Option<(Codec, u32)>) -> (u64, u64) {
    let level = Level(opts.level);
    let (mut per_thread, mut shared) = (0u64, 0u64);
    if let Some((codec, chunk)) = compression {
        per_thread += Compressor::memory_needed(codec, level, chunk as usize);
        per_thread += resource::thread_buffers(chunk);
        shared += resource::shared_buffers(chunk);
    }
    if let Some((codec, chunk)) = opts.solid {
        let chunk = match chunk {
            0 => solid::default_solid_chunk_size(codec),
            c => c,
        };
        per_thread += Compressor::memory_needed(codec, level, chunk as usize);
        per_thread += solid::thread_buffers(chunk);
        shared += solid::shared_buffers(chunk);
    }
    (per_thread, shared)
}

/// The compression threads of a writer by `opts` whose non-solid resources are compressed
/// as `compression` (see [`thread_memory`]), fitted to [`WriteOptions::memory_limit`] or
/// the memory available now. A reduction is reported to [`WriteOptions::fewer_threads`].
pub(crate) fn plan_threads(opts: &WriteOptions, compression: Option<(Codec, u32)>) -> ThreadCount {
    let wanted = threads(opts.threads);
    let (per_thread, shared) = thread_memory(opts, compression);
    if wanted <= 1 || per_thread == 0 {
        // One thread, or nothing to compress: nothing to fit (and nothing to ask the
        // system).
        return ThreadCount {
            wanted,
            used: wanted,
        };
    }
    let budget = opts.memory_limit.or_else(crate::mem::available);
    let t = ThreadCount::fit(wanted, per_thread, shared, budget);
    if let (true, Some(note)) = (t.reduced(), opts.fewer_threads) {
        note(t);
    }
    t
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// Options for `threads` threads, at most `memory` bytes, `solid` output.
    fn opts(threads: usize, memory: u64, solid: Option<(Codec, u32)>) -> WriteOptions {
        WriteOptions {
            threads,
            memory_limit: Some(memory),
            solid,
            ..WriteOptions::default()
        }
    }

    fn used(o: &WriteOptions, compression: Option<(Codec, u32)>) -> usize {
        plan_threads(o, compression).used
    }

    #[test]
    fn threads_fit_in_memory() {
        let lzms_1g = Some((Codec::Lzms, 1 << 30));
        // 64 threads of LZMS with 1 GiB solid chunks (9 GiB compressors, 6 GiB buffers
        // each) and 16 GiB: one thread.
        let o = opts(64, 16 * GIB, lzms_1g);
        let (per_thread, _) = thread_memory(&o, Some((Codec::Lzms, 1 << 17)));
        assert!(
            (15 * GIB..15 * GIB + 64 * MIB).contains(&per_thread),
            "{per_thread}"
        );
        assert_eq!(used(&o, Some((Codec::Lzms, 1 << 17))), 1);
        // Non-solid 1 GiB LZMS chunks: also one (one chunk per thread and batch).
        assert_eq!(used(&opts(64, 16 * GIB, None), lzms_1g), 1);
        // XPRESS or LZX with 32 KiB chunks: every thread (a few MiB each).
        for codec in [Codec::Xpress, Codec::Lzx] {
            let c = Some((codec, 1 << 15));
            assert_eq!(used(&opts(64, 16 * GIB, None), c), 64, "{codec:?}");
            let (per_thread, shared) = thread_memory(&opts(64, 0, None), c);
            assert!(
                per_thread < 8 * MIB && shared < MIB,
                "{codec:?} {per_thread}"
            );
        }
        // LZX at 32 KiB near-optimally is about 7 MiB a thread: 256 MiB hold 36.
        let lzx = Some((Codec::Lzx, 1 << 15));
        let (per_thread, shared) = thread_memory(&opts(64, 0, None), lzx);
        let want = ((256 * MIB - shared) / per_thread) as usize;
        assert!((30..40).contains(&want), "{want}");
        assert_eq!(used(&opts(64, 256 * MIB, None), lzx), want);
        // The 64 MiB LZMS solid default: about 1 GiB a thread, 16 GiB hold 15.
        let o = opts(64, 16 * GIB, Some((Codec::Lzms, 0)));
        let (per_thread, shared) = thread_memory(&o, Some((Codec::Lzms, 1 << 17)));
        assert!((GIB - 64 * MIB..GIB).contains(&per_thread), "{per_thread}");
        assert_eq!(shared, 512 * MIB + 128 * MIB + MIB + 8 * 128 * 1024);
        assert_eq!(used(&o, Some((Codec::Lzms, 1 << 17))), 15);
        // Never below one; one asked is one; uncompressed output needs nothing.
        assert_eq!(used(&opts(64, 0, lzms_1g), lzms_1g), 1);
        assert_eq!(used(&opts(1, 0, None), lzx), 1);
        assert_eq!(used(&opts(64, 0, None), None), 64);
        assert_eq!(used(&opts(100, 1 << 40, None), lzx), MAX_THREADS);
    }

    /// A writer uses and reports the fitted count; what it writes does not depend on it.
    #[test]
    fn writers_use_the_fitted_count() {
        use crate::defs::FileAttributes;
        use crate::write::image::{Content, Inode, NewImage};
        use crate::write::{ImageProps, NoBlobs, WimWriter};

        let write = |o: &WriteOptions| {
            let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
            for i in 0..20u32 {
                let data: Vec<u8> = (0..40_000u32).map(|k| (k * (i + 1) % 253) as u8).collect();
                let mut f = Inode::new(FileAttributes::NORMAL, 0, 0, 0);
                f.data = img.add_stream(data.len() as u64, Content::Bytes(data.into()));
                let f = img.add_inode(f);
                img.add_dentry(0, alloc::format!("f{i}"), f);
            }
            let mut w = WimWriter::create(Vec::new(), o).unwrap();
            let t = w.compression_threads();
            w.add_image(&mut img, &ImageProps::default(), &mut NoBlobs)
                .unwrap();
            (t, w.finish().unwrap())
        };
        for solid in [None, Some((Codec::Lzms, 1 << 16))] {
            let mut o = opts(4, 0, solid);
            o.compression = Some(Codec::Lzx);
            o.guid = [7; 16];
            o.now = 1;
            let (t, small) = write(&o);
            assert_eq!(t, ThreadCount { wanted: 4, used: 1 });
            o.memory_limit = Some(u64::MAX);
            let (t, big) = write(&o);
            assert_eq!(t, ThreadCount { wanted: 4, used: 4 });
            assert!(
                small == big,
                "{solid:?}: the output changed with the thread count"
            );
        }
    }

    static NOTES: AtomicUsize = AtomicUsize::new(0);

    fn note(t: ThreadCount) {
        assert!(t.used < t.wanted);
        NOTES.fetch_add(1, Ordering::Relaxed);
    }

    /// A reduction is reported; a count that fits is not.
    #[test]
    fn reductions_are_reported() {
        let lzms = Some((Codec::Lzms, 1 << 26));
        let mut o = opts(8, 16 * GIB, None);
        o.fewer_threads = Some(note);
        let t = plan_threads(&o, lzms);
        assert_eq!((t.wanted, t.used, NOTES.load(Ordering::Relaxed)), (8, 8, 0));
        o.memory_limit = Some(2 * GIB);
        let t = plan_threads(&o, lzms);
        assert!(t.reduced() && t.used >= 1, "{t:?}");
        assert_eq!(NOTES.load(Ordering::Relaxed), 1);
    }
}
