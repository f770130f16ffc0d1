//! XPRESS chunks written by wimlib (every level class, chunk sizes 4–64 KiB, sizes from one
//! byte up, every input kind) decode to their input; corrupt and truncated chunks give the
//! same answer as wimlib's decoder or a typed error, never a panic.

mod codec_oracle;

use codec_oracle::{corruption_sweep, round_trip_sweep, wimlib};
use wim_image::codec::{Codec, Decompressor};

const LEVELS: [u32; 5] = [1, 20, 50, 80, 100];

#[test]
fn wimlib_chunks_round_trip() {
    let Some(lib) = wimlib("codec_xpress::wimlib_chunks_round_trip") else {
        return;
    };
    let mut d = Decompressor::new(Codec::Xpress);
    let mut checked = 0;
    for chunk_size in [4096usize, 32768, 65536] {
        let sizes = [
            1,
            2,
            3,
            17,
            100,
            1000,
            4095,
            chunk_size / 2 + 3,
            chunk_size - 1,
            chunk_size,
        ];
        checked += round_trip_sweep(&lib, &mut d, chunk_size, &sizes, &LEVELS, &|_, _, _| false);
    }
    assert!(checked > 300, "only {checked} chunks checked");
}

#[test]
fn corrupt_chunks_agree_with_wimlib() {
    let Some(lib) = wimlib("codec_xpress::corrupt_chunks_agree_with_wimlib") else {
        return;
    };
    let (_, total) = corruption_sweep(&lib, Codec::Xpress, &[300, 5000, 32768]);
    assert!(total > 100);
}
