//! Byte access to memory held as `AtomicU64` words.
//!
//! All shared memory in this crate is a slice of `AtomicU64`: references to atomics are sound
//! while the peer writes the same bytes, and every access below is a single atomic load, store
//! or read-modify-write of one word. Bytes are taken in memory order (`to_ne_bytes`), so the
//! byte image is exactly what the peer sees regardless of the host's endianness.
//!
//! None of these functions panics: out-of-range requests return `false` (or zero) and touch
//! nothing.

use core::sync::atomic::{AtomicU64, Ordering};

/// Loads the little-endian `u32` at `byte_off` (a multiple of 4) with acquire ordering.
/// Returns 0 when out of range.
pub(crate) fn load_u32(words: &[AtomicU64], byte_off: usize) -> u32 {
    let Some(word) = words.get(byte_off / 8) else {
        return 0;
    };
    let bytes = word.load(Ordering::Acquire).to_ne_bytes();
    let k = byte_off & 4;
    u32::from_le_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]])
}

/// Stores the little-endian `u32` `value` at `byte_off` (a multiple of 4), leaving the other half
/// of its word untouched even if the peer writes it concurrently.
///
/// The store is one atomic XOR of the word (release and acquire): the mask flips exactly the
/// bits of our half that differ from its current value. The other half is XORed with zero, so a
/// concurrent store by the peer to *its* half is never lost. Only a peer that also writes *our*
/// half (which no honest peer does) can make the result differ from `value`.
pub(crate) fn store_u32(words: &[AtomicU64], byte_off: usize, value: u32) {
    let Some(word) = words.get(byte_off / 8) else {
        return;
    };
    let current = word.load(Ordering::Relaxed).to_ne_bytes();
    let new = value.to_le_bytes();
    let k = byte_off & 4;
    let mut mask = [0u8; 8];
    for i in 0..4 {
        mask[k + i] = current[k + i] ^ new[i];
    }
    word.fetch_xor(u64::from_ne_bytes(mask), Ordering::AcqRel);
}

/// Copies `out.len()` bytes starting at byte `byte_off` of `words` into `out`.
/// Returns `false` (copying nothing) if the range is not inside `words`.
pub(crate) fn read_bytes(words: &[AtomicU64], byte_off: usize, out: &mut [u8]) -> bool {
    let Some(end) = byte_off.checked_add(out.len()) else {
        return false;
    };
    if end > words.len().saturating_mul(8) {
        return false;
    }
    if out.is_empty() {
        return true;
    }
    let mut word_index = byte_off / 8;
    let mut out = out;
    let head = byte_off % 8;
    if head != 0 {
        let Some(word) = words.get(word_index) else {
            return false;
        };
        let bytes = word.load(Ordering::Relaxed).to_ne_bytes();
        let n = (8 - head).min(out.len());
        let (first, rest) = out.split_at_mut(n);
        first.copy_from_slice(&bytes[head..head + n]);
        out = rest;
        word_index += 1;
    }
    let whole = out.len() / 8 * 8;
    let (body, tail) = out.split_at_mut(whole);
    let src = words.get(word_index..).unwrap_or_default();
    for (chunk, word) in body.chunks_exact_mut(8).zip(src) {
        chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    word_index += whole / 8;
    if !tail.is_empty() {
        let Some(word) = words.get(word_index) else {
            return false;
        };
        let bytes = word.load(Ordering::Relaxed).to_ne_bytes();
        let n = tail.len();
        tail.copy_from_slice(&bytes[..n]);
    }
    true
}

/// Copies `src` into `words` starting at byte `byte_off`. Whole words are plain atomic stores;
/// a partial word at either end is merged with an atomic XOR so its other bytes are preserved.
/// Returns `false` (writing nothing) if the range is not inside `words`.
pub(crate) fn write_bytes(words: &[AtomicU64], byte_off: usize, src: &[u8]) -> bool {
    let Some(end) = byte_off.checked_add(src.len()) else {
        return false;
    };
    if end > words.len().saturating_mul(8) {
        return false;
    }
    if src.is_empty() {
        return true;
    }
    let mut word_index = byte_off / 8;
    let mut src = src;
    let head = byte_off % 8;
    if head != 0 {
        let n = (8 - head).min(src.len());
        let (first, rest) = src.split_at(n);
        merge(words.get(word_index), head, first);
        src = rest;
        word_index += 1;
    }
    let whole = src.len() / 8 * 8;
    let (body, tail) = src.split_at(whole);
    let dst = words.get(word_index..).unwrap_or_default();
    for (chunk, word) in body.chunks_exact(8).zip(dst) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    }
    word_index += whole / 8;
    if !tail.is_empty() {
        merge(words.get(word_index), 0, tail);
    }
    true
}

/// Replaces `bytes.len()` bytes of `word` starting at byte `at` (`at + bytes.len() <= 8`).
fn merge(word: Option<&AtomicU64>, at: usize, bytes: &[u8]) {
    let Some(word) = word else {
        return;
    };
    let current = word.load(Ordering::Relaxed).to_ne_bytes();
    let mut mask = [0u8; 8];
    for (i, &b) in bytes.iter().enumerate() {
        if let (Some(m), Some(&c)) = (mask.get_mut(at + i), current.get(at + i)) {
            *m = c ^ b;
        }
    }
    word.fetch_xor(u64::from_ne_bytes(mask), Ordering::Relaxed);
}

/// A fresh zeroed word buffer (tests and boxed memories).
#[cfg(feature = "alloc")]
pub(crate) fn zeroed_words(len: usize) -> alloc::boxed::Box<[AtomicU64]> {
    (0..len).map(|_| AtomicU64::new(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn u32_halves_are_independent() {
        let w = words(2);
        store_u32(&w, 0, 0x1111_2222);
        store_u32(&w, 4, 0x3333_4444);
        store_u32(&w, 8, 7);
        assert_eq!(load_u32(&w, 0), 0x1111_2222);
        assert_eq!(load_u32(&w, 4), 0x3333_4444);
        store_u32(&w, 0, 5);
        assert_eq!(load_u32(&w, 0), 5);
        assert_eq!(load_u32(&w, 4), 0x3333_4444);
        let mut bytes = [0u8; 8];
        assert!(read_bytes(&w, 0, &mut bytes));
        assert_eq!(bytes, [5, 0, 0, 0, 0x44, 0x44, 0x33, 0x33]);
        // Out of range: nothing happens, no panic.
        store_u32(&w, 16, 1);
        assert_eq!(load_u32(&w, 16), 0);
    }

    #[test]
    fn unaligned_copies_round_trip() {
        let w = words(8);
        let src: Vec<u8> = (1..=64).collect();
        // Every head and tail alignment; Miri (slow on atomics) gets a sparser sample.
        let step = if cfg!(miri) { 5 } else { 1 };
        for off in 0..20 {
            for len in (0..=(64 - off)).step_by(step) {
                let zero = [0u8; 64];
                assert!(write_bytes(&w, 0, &zero));
                assert!(write_bytes(&w, off, &src[..len]));
                let mut all = [0u8; 64];
                assert!(read_bytes(&w, 0, &mut all));
                assert!(all[..off].iter().all(|&b| b == 0));
                assert_eq!(&all[off..off + len], &src[..len]);
                assert!(all[off + len..].iter().all(|&b| b == 0));
                let mut back = std::vec![0u8; len];
                assert!(read_bytes(&w, off, &mut back));
                assert_eq!(&back[..], &src[..len]);
            }
        }
    }

    #[test]
    fn out_of_range_is_refused() {
        let w = words(2);
        let mut buf = [0u8; 9];
        assert!(!read_bytes(&w, 8, &mut buf));
        assert!(!write_bytes(&w, 8, &buf));
        assert!(!read_bytes(&w, usize::MAX, &mut buf));
        assert!(!write_bytes(&w, usize::MAX - 2, &buf));
        assert!(read_bytes(&w, 16, &mut []));
    }
}
