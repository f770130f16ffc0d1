//! The compressors on arbitrary input: whatever they return decodes, with our decompressor,
//! back to the input, never needs more than `input.len()` bytes of output, and a compressed
//! size is always smaller than the input.
//!
//! Byte 0 picks the codec (`% 3`: XPRESS, LZX, LZMS) and the level class (`/ 3 % 4`: 1,
//! 20, 50, 100); the rest, up to 64 KiB, is the chunk. The resource chunk size is 64 KiB
//! (XPRESS's largest; for LZX a 64 KiB window). Compressors are kept per (codec, level) and
//! reused, as a writer thread reuses them.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run -O compress_roundtrip fuzz/corpus/compress_roundtrip fuzz/seeds/compress_roundtrip`

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::HashMap;
use wim_image::codec::{Codec, Compressor, Decompressor, Level};

const CHUNK: usize = 64 << 10;

thread_local! {
    static STATE: RefCell<HashMap<(u8, u8), (Compressor, Decompressor)>> =
        RefCell::new(HashMap::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let input = &input[..input.len().min(CHUNK)];
    let codec = [Codec::Xpress, Codec::Lzx, Codec::Lzms][usize::from(sel % 3)];
    let level = [1, 20, 50, 100][usize::from(sel / 3 % 4)];
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let (c, d) = s.entry((sel % 3, sel / 3 % 4)).or_insert_with(|| {
            (
                Compressor::new(codec, Level(level), CHUNK).expect("valid parameters"),
                Decompressor::with_chunk_size(codec, CHUNK).expect("valid chunk size"),
            )
        });
        let mut out = vec![0u8; input.len()];
        let Some(n) = c.compress(input, &mut out) else {
            return;
        };
        assert!(n < input.len(), "{codec:?}: {n} bytes is not smaller");
        let mut back = vec![0u8; input.len()];
        if let Err(e) = d.decompress(&out[..n], &mut back) {
            panic!("{codec:?} level {level}: our own chunk does not decode: {e}");
        }
        assert!(back == input, "{codec:?} level {level}: round trip differs");
    });
});
