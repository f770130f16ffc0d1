//! Shared by the decompressor targets. Input layout: a little-endian u32 whose value modulo
//! `max_out + 1` is the output size (0 is a valid, rejected request), one byte choosing the
//! resource's chunk size (`min_order + byte % (max_order - min_order + 1)` as a power of
//! two; only LZX uses it), then the compressed chunk.
//!
//! The decompressor is created once and reused, as the container layer does, so stale state
//! from an earlier chunk would show up. Each input is decoded twice: the two results must be
//! identical (no dependence on what the previous chunk left behind), and a success must have
//! filled exactly the requested size.

use std::cell::RefCell;
use wim_image::codec::{Codec, Decompressor};

pub fn run(codec: Codec, data: &[u8], max_out: usize, min_order: u32, max_order: u32) {
    thread_local! {
        static STATE: RefCell<Vec<(Decompressor, Vec<u8>, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    }
    let Some((head, chunk)) = data.split_first_chunk::<5>() else {
        return;
    };
    let out_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize % (max_out + 1);
    let order = min_order + u32::from(head[4]) % (max_order - min_order + 1);
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_empty() {
            s.push((Decompressor::new(codec), Vec::new(), Vec::new()));
        }
        let (d, a, b) = &mut s[0];
        d.set_chunk_size(1 << order).unwrap();
        a.clear();
        a.resize(out_len, 0x5a);
        b.clear();
        b.resize(out_len, 0xa5);
        let first = d.decompress(chunk, a);
        let second = d.decompress(chunk, b);
        assert_eq!(
            first, second,
            "state from the previous call changed the result"
        );
        if first.is_ok() {
            assert!(a == b, "two decodes of one chunk differ");
        }
    });
}
