//! Solid output with a lowered resource limit: what the writer holds for blobs many times the
//! limit, duplicates cut out or left in, and a blob whose reading fails while its resource
//! is streamed.

use super::*;
use crate::defs::FileAttributes;
use crate::header::ResHdr;
use crate::wim::Wim;
use crate::write::image::{Content, Inode, NewImage};
use crate::write::{ImageProps, NoBlobs, WimWriter, WriteOptions};

const CHUNK: u32 = 1 << 15;
const LIMIT: u64 = 1 << 20;

/// Incompressible bytes (xorshift): stored raw, so the compressed form is as large as the
/// data.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A new WIM with XPRESS solid resources of `CHUNK`-byte chunks closed at `LIMIT`.
fn writer(threads: usize) -> WimWriter<Vec<u8>> {
    let opts = WriteOptions {
        compression: Some(Codec::Xpress),
        solid: Some((Codec::Xpress, CHUNK)),
        threads,
        memory_limit: Some(u64::MAX),
        guid: [5; 16],
        now: 1,
        ..WriteOptions::default()
    };
    let mut w = WimWriter::create(Vec::new(), &opts).unwrap();
    solid(&mut w).limit = LIMIT;
    w
}

fn solid(w: &mut WimWriter<Vec<u8>>) -> &mut SolidOut {
    w.blobs.solid.as_mut().unwrap()
}

/// Stores `data` as a blob read in one pass (a large file); reading fails at `fail_at`.
fn streamed(
    w: &mut WimWriter<Vec<u8>>,
    data: &[u8],
    fail_at: Option<usize>,
) -> Result<Sha1Hash, WriteError> {
    let mut at = 0usize;
    let mut fill = |buf: &mut [u8]| {
        if fail_at.is_some_and(|f| at + buf.len() > f) {
            return Err(WriteError::MissingBlob { hash: [9; 20] });
        }
        buf.copy_from_slice(&data[at..at + buf.len()]);
        at += buf.len();
        Ok(())
    };
    let src = Source::reader(data.len() as u64, &mut fill);
    w.blobs.add_blob(src, 1)
}

fn in_memory(w: &mut WimWriter<Vec<u8>>, data: &[u8]) -> Sha1Hash {
    w.blobs.add_blob(Source::slice(data), 1).unwrap()
}

/// Finishes `w` with an image of one file per blob, then checks every blob reads back and
/// the file verifies. Returns the file and its solid resources in order (their headers and
/// uncompressed sizes).
fn finish(mut w: WimWriter<Vec<u8>>, blobs: &[(Sha1Hash, &[u8])]) -> (Vec<u8>, Vec<(ResHdr, u64)>) {
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
    for (i, (h, data)) in blobs.iter().enumerate() {
        let mut f = Inode::new(FileAttributes::NORMAL, 0, 0, 0);
        f.data = img.add_stream(data.len() as u64, Content::Blob(*h));
        let f = img.add_inode(f);
        img.add_dentry(0, alloc::format!("f{i}"), f);
    }
    w.add_image(&mut img, &ImageProps::default(), &mut NoBlobs)
        .unwrap();
    let bytes = w.finish().unwrap();
    let wim = Wim::open(&bytes[..]).unwrap();
    let mut r = wim.reader();
    for (h, data) in blobs {
        let b = wim.blob(h).unwrap();
        assert!(
            r.read_verified(b).unwrap() == *data,
            "blob of {}",
            data.len()
        );
    }
    let report = wim.verify(&mut |_| {});
    assert!(report.is_ok(), "{:?}", report.problems);
    let res = wim.solid.iter().flatten();
    let res = res
        .map(|r| (r.reshdr, r.header.uncompressed_size))
        .collect();
    (bytes, res)
}

/// What `packed` and `sizes` may hold at once: the chunks of a resource before its last
/// blob (less than the limit), or the buffers a streamed resource goes through.
fn bound() -> usize {
    (LIMIT as usize).max(SPILL_STEP + 4 * TABLE_STEP) + CHUNK as usize
}

/// A blob 24 times the resource limit, between small ones, on one and three threads: the
/// writer holds at most the buffers of a streamed resource, never the blob's chunks (24 MiB
/// before), and the blob's resource ends with it.
#[test]
fn a_blob_many_times_the_limit_is_streamed() {
    let big = noise(1, 24 << 20);
    let small: Vec<Vec<u8>> = (0..12).map(|i| noise(10 + i, 30_000)).collect();
    for threads in [1, 3] {
        let mut w = writer(threads);
        let mut blobs = Vec::new();
        for s in &small[..10] {
            blobs.push((in_memory(&mut w, s), &s[..]));
        }
        blobs.push((streamed(&mut w, &big, None).unwrap(), &big[..]));
        let peak = solid(&mut w).held_peak;
        assert!(peak <= bound(), "{threads} threads: held {peak} bytes");
        // Closed right after the blob, nothing of it left in memory.
        let s = solid(&mut w);
        assert!(s.res_entry.is_none() && s.spill.is_none());
        assert!(s.packed.capacity() == 0 && s.sizes.capacity() == 0);
        for s in &small[10..] {
            blobs.push((in_memory(&mut w, s), &s[..]));
        }
        assert_eq!(solid(&mut w).held_peak, peak);
        let (_, res) = finish(w, &blobs);
        // The small blobs and the big one, then the two small ones after.
        let first = 300_000 + (24 << 20);
        assert_eq!(res.iter().map(|r| r.1).collect::<Vec<_>>(), [first, 60_000]);
        let chunks = first.div_ceil(CHUNK as u64);
        // Raw chunks: exactly the reserved table, no gap.
        assert_eq!(res[0].0.offset, crate::defs::HEADER_SIZE as u64);
        assert_eq!(res[0].0.size_in_wim, HEADER_LEN + 4 * chunks + first);
    }
}

/// A large blob read in one pass that turns out to be stored already, as the last blob of
/// its resource: compressed before its end (it reached the streaming), its bytes stay in
/// the resource, unreferenced, and the resource is closed after it; read whole before
/// anything was compressed, it is cut out again and the resource stays open (nothing of it
/// written yet).
#[test]
fn duplicate_last_blobs() {
    let big = noise(2, 3 << 20);
    let near: Vec<Vec<u8>> = (0..41).map(|i| noise(20 + i, 30_000)).collect();
    let small = noise(3, 20_000);
    let filler = noise(7, 20_000);
    let more = noise(4, 50_000);
    let mut w = writer(1);
    let mut blobs = Vec::new();
    let h_small = in_memory(&mut w, &small);
    blobs.push((h_small, &small[..]));
    let h_big = streamed(&mut w, &big, None).unwrap();
    blobs.push((h_big, &big[..]));
    assert!(
        solid(&mut w).res_entry.is_none(),
        "closed after the big blob"
    );
    // The big one again after 210,000 bytes: streamed, then found to be a duplicate.
    for s in &near[..7] {
        blobs.push((in_memory(&mut w, s), &s[..]));
    }
    assert_eq!(streamed(&mut w, &big, None).unwrap(), h_big);
    let peak = solid(&mut w).held_peak;
    assert!(peak <= bound(), "held {peak} bytes");
    assert!(
        solid(&mut w).res_entry.is_none(),
        "closed after the duplicate"
    );
    // 1,040,000 bytes, then the small blob again (past the limit, but read whole before
    // anything is compressed): cut out, and the resource stays open with nothing written.
    for s in &near[7..] {
        blobs.push((in_memory(&mut w, s), &s[..]));
    }
    blobs.push((in_memory(&mut w, &filler), &filler[..]));
    let pos = w.blobs.pos;
    assert_eq!(solid(&mut w).res_size, 1_040_000);
    assert_eq!(streamed(&mut w, &small, None).unwrap(), h_small);
    let s = solid(&mut w);
    assert_eq!(s.res_size, 1_040_000);
    assert!(s.res_entry.is_some() && s.spill.is_none() && s.last_end.is_none());
    assert_eq!(w.blobs.pos, pos, "nothing written");
    blobs.push((in_memory(&mut w, &more), &more[..]));
    assert_eq!(solid(&mut w).held_peak, peak);
    let (bytes, res) = finish(w, &blobs);
    let sizes: Vec<u64> = res.iter().map(|r| r.1).collect();
    assert_eq!(sizes, [20_000 + (3 << 20), 210_000 + (3 << 20), 1_090_000]);
    let wim = Wim::open(&bytes[..]).unwrap();
    assert_eq!(wim.blob(&h_big).unwrap().ref_count, 3);
    assert_eq!(wim.blob(&h_small).unwrap().ref_count, 3);
}

/// Reading a blob fails while its resource is streamed: the resource is closed with the
/// chunks it has (fewer than reserved: its table moves against chunk 0 and the bytes before
/// it are zeros), and the writer goes on. The blobs before and after read back.
#[test]
fn a_failed_read_closes_the_streamed_resource() {
    let prefix: Vec<Vec<u8>> = (0..4).map(|i| noise(30 + i, 50_000)).collect();
    let big = noise(5, 6 << 20);
    let after = noise(6, 70_000);
    for threads in [1, 2] {
        let mut w = writer(threads);
        let mut blobs = Vec::new();
        for s in &prefix {
            blobs.push((in_memory(&mut w, s), &s[..]));
        }
        let start = w.blobs.pos;
        // Fails reading the fourth MiB.
        let e = streamed(&mut w, &big, Some(3 << 20 | 5)).unwrap_err();
        assert!(matches!(e, WriteError::MissingBlob { .. }), "{e:?}");
        let peak = solid(&mut w).held_peak;
        assert!(peak <= bound(), "{threads} threads: held {peak} bytes");
        let s = solid(&mut w);
        assert!(s.res_entry.is_none() && s.spill.is_none() && !s.broken);
        blobs.push((in_memory(&mut w, &after), &after[..]));
        let (bytes, res) = finish(w, &blobs);
        // The first resource: the prefix and the three MiB read, unreferenced.
        let (r, usize) = res[0];
        assert_eq!(usize, 200_000 + (3 << 20));
        let n_max = (200_000 + (6 << 20) as u64).div_ceil(CHUNK as u64);
        let n = usize.div_ceil(CHUNK as u64);
        assert_eq!(r.offset, start + 4 * (n_max - n));
        assert_eq!(r.size_in_wim, HEADER_LEN + 4 * n + usize);
        assert!(bytes[start as usize..r.offset as usize]
            .iter()
            .all(|&b| b == 0));
        assert_eq!(res[1].1, 70_000);
    }
}

/// A blob cancelled (its source's tick says so) while its resource is streamed: nothing
/// more is compressed or written (the resource is not closed, as after a failed read),
/// the engines and buffers are dropped, and the output refuses further blobs.
#[test]
fn a_cancel_while_streaming_gives_the_output_up() {
    let prefix: Vec<Vec<u8>> = (0..4).map(|i| noise(30 + i, 50_000)).collect();
    let big = noise(5, 6 << 20);
    for threads in [1, 2] {
        let mut w = writer(threads);
        for s in &prefix {
            in_memory(&mut w, s);
        }
        let mut fill = |buf: &mut [u8]| {
            buf.fill(7);
            Ok(())
        };
        let mut read = 0u64;
        let mut tick = |n| {
            read += n;
            match read > 3 << 20 {
                true => Err(WriteError::Cancelled),
                false => Ok(()),
            }
        };
        let src = Source::reader(big.len() as u64, &mut fill).ticking(Some(&mut tick));
        let e = w.blobs.add_blob(src, 1).unwrap_err();
        assert!(matches!(e, WriteError::Cancelled), "{e:?}");
        let s = solid(&mut w);
        assert!(s.broken && s.engines.is_none() && s.in_flight.is_empty());
        assert!(s.spill.is_none() && s.res_entry.is_none() && s.pending.capacity() == 0);
        let e = w.blobs.add_blob(Source::slice(&big[..100]), 1).unwrap_err();
        assert!(matches!(e, WriteError::Internal { .. }), "{e:?}");
    }
}

/// A resource whose last blob is small is streamed only from that blob's first chunk back
/// from the compressors; the layout is the one of a resource held whole.
#[test]
fn a_small_last_blob_closes_as_before() {
    let blobs_data: Vec<Vec<u8>> = (0..40).map(|i| noise(40 + i, 30_000)).collect();
    let mut w = writer(1);
    let mut blobs = Vec::new();
    for s in &blobs_data {
        blobs.push((in_memory(&mut w, s), &s[..]));
    }
    let (_, res) = finish(w, &blobs);
    // 35 blobs reach the limit (1,050,000 bytes); the last 5 make the second resource.
    assert_eq!(
        res.iter().map(|r| r.1).collect::<Vec<_>>(),
        [35 * 30_000, 5 * 30_000]
    );
    let chunks = (35 * 30_000u64).div_ceil(CHUNK as u64);
    assert_eq!(res[0].0.size_in_wim, HEADER_LEN + 4 * chunks + 35 * 30_000);
    assert_eq!(res[0].0.offset, crate::defs::HEADER_SIZE as u64);
}
