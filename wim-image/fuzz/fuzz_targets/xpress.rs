//! The Xpress decompressor on arbitrary bytes never panics and is deterministic across reuse.
//! XPRESS: outputs up to 64 KiB (the codec's limit), chunk sizes 4–64 KiB. Layout: see `codec_common.rs`.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run xpress fuzz/corpus/xpress fuzz/seeds/xpress`

#![no_main]

#[path = "codec_common.rs"]
mod codec_common;

use libfuzzer_sys::fuzz_target;
use wim_image::codec::Codec;

fuzz_target!(|data: &[u8]| codec_common::run(Codec::Xpress, data, 64 << 10, 12, 16));
