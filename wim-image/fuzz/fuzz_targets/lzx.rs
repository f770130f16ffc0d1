//! The Lzx decompressor on arbitrary bytes never panics and is deterministic across reuse.
//! LZX: outputs up to 256 KiB (bounded for speed), windows 32 KiB–2 MiB. Layout: see `codec_common.rs`.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run lzx fuzz/corpus/lzx fuzz/seeds/lzx`

#![no_main]

#[path = "codec_common.rs"]
mod codec_common;

use libfuzzer_sys::fuzz_target;
use wim_image::codec::Codec;

fuzz_target!(|data: &[u8]| codec_common::run(Codec::Lzx, data, 256 << 10, 15, 21));
