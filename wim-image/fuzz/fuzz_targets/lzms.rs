//! The Lzms decompressor on arbitrary bytes never panics and is deterministic across reuse.
//! LZMS: outputs up to 256 KiB (bounded for speed). Layout: see `codec_common.rs`.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run lzms fuzz/corpus/lzms fuzz/seeds/lzms`

#![no_main]

#[path = "codec_common.rs"]
mod codec_common;

use libfuzzer_sys::fuzz_target;
use wim_image::codec::Codec;

fuzz_target!(|data: &[u8]| codec_common::run(Codec::Lzms, data, 256 << 10, 15, 26));
