//! Property tests: every decompressor, on arbitrary bytes and any output size within its
//! limit, returns (an error or the output) without panicking, and a reused decompressor gives
//! the same answer twice.

use proptest::prelude::*;
use wim_image::codec::{Codec, Decompressor};

fn check(codec: Codec, input: &[u8], out_len: usize, chunk_order: u32) {
    let mut d = Decompressor::new(codec);
    let order = chunk_order.clamp(codec.min_chunk_size().trailing_zeros(), 21);
    d.set_chunk_size(1 << order).unwrap();
    let mut a = vec![0u8; out_len];
    let mut b = vec![1u8; out_len];
    let first = d.decompress(input, &mut a);
    let second = d.decompress(input, &mut b);
    assert_eq!(first, second);
    if first.is_ok() {
        assert_eq!(a, b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn xpress_never_panics(input in proptest::collection::vec(any::<u8>(), 0..1200), out_len in 0usize..70_000, order in 12u32..17) {
        check(Codec::Xpress, &input, out_len, order);
    }

    #[test]
    fn lzx_never_panics(input in proptest::collection::vec(any::<u8>(), 0..1200), out_len in 0usize..70_000, order in 15u32..22) {
        check(Codec::Lzx, &input, out_len, order);
    }

    #[test]
    fn lzms_never_panics(input in proptest::collection::vec(any::<u8>(), 0..1200), out_len in 0usize..70_000) {
        check(Codec::Lzms, &input, out_len, 17);
    }

    /// Header bytes that decode as a valid XPRESS code (all 512 lengths 9) followed by
    /// arbitrary bits: exercises matches and long lengths far more than uniform bytes do.
    #[test]
    fn xpress_with_a_valid_code(stream in proptest::collection::vec(any::<u8>(), 0..600), out_len in 1usize..5000) {
        let mut input = vec![0x99u8; 256];
        input.extend(stream);
        check(Codec::Xpress, &input, out_len, 15);
    }
}
