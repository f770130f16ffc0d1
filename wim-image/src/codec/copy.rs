//! LZ77 match copying: the one hot loop that benefits from unaligned word copies that may
//! overshoot the match end.
//!
//! `unsafe` is allowed in this module only: after one bounds check per match, the copy loops
//! move 8 or 16 bytes per step through raw pointers, as every fast LZ decoder does. Writing
//! the same loops with slice indexing costs a bounds check per word, which is measurable on
//! short matches (the common case). Each block states why it stays in bounds; the unit tests
//! compare against a byte-at-a-time reference for every offset and length class and run
//! under Miri.
#![allow(unsafe_code)]

/// Bytes a wide copy may write past the end of the match.
pub(crate) const SLACK: usize = 32;

/// Copies the `length`-byte match at `offset` bytes back from `pos` to `pos` in `out`, byte by
/// byte semantics (the source may overlap the destination).
///
/// Returns `false`, copying nothing, when the match starts before `out` (`offset > pos` or
/// `offset == 0`) or ends past `limit` (`pos + length > limit`); `limit` must not exceed
/// `out.len()` (a larger one is clamped). Bytes of `out` after the match end, up to
/// [`SLACK`] of them but never past `out.len()`, may be overwritten with garbage.
#[inline(always)]
pub(crate) fn copy_match(
    out: &mut [u8],
    pos: usize,
    offset: usize,
    length: usize,
    limit: usize,
) -> bool {
    let len = out.len();
    let limit = if limit > len { len } else { limit };
    if offset == 0 || offset > pos || length > limit.wrapping_sub(pos) || pos > limit {
        return false;
    }
    let end = pos + length;
    let base = out.as_mut_ptr();
    // From here: 1 <= offset <= pos, pos + length <= limit <= len.
    if len - end >= SLACK {
        // Wide copies may write up to SLACK - 1 bytes past `end`: still inside `out`.
        if offset >= 16 {
            let mut d = pos;
            loop {
                let src = base.wrapping_add(d - offset).cast::<[u8; 16]>();
                let dst = base.wrapping_add(d).cast::<[u8; 16]>();
                // SAFETY: `d < end`, so the load `[d - offset, d - offset + 16)` lies in
                // `[0, d)` (offset >= 16) and was fully written before this step.
                let v = unsafe { src.read_unaligned() };
                // SAFETY: `[d, d + 16)` ends at most at `end + 15 < len`.
                unsafe { dst.write_unaligned(v) };
                d += 16;
                if d >= end {
                    break;
                }
            }
            return true;
        }
        if offset >= 8 {
            let mut d = pos;
            loop {
                let src = base.wrapping_add(d - offset).cast::<u64>();
                let dst = base.wrapping_add(d).cast::<u64>();
                // SAFETY: as above with 8-byte steps (offset >= 8): the load lies in `[0, d)`.
                let v = unsafe { src.read_unaligned() };
                // SAFETY: `[d, d + 8)` ends at most at `end + 7 < len`.
                unsafe { dst.write_unaligned(v) };
                d += 8;
                if d >= end {
                    break;
                }
            }
            return true;
        }
        if offset == 1 {
            let v = out[pos - 1];
            // A run of one byte: a plain fill, which the compiler widens.
            out[pos..end].fill(v);
            return true;
        }
        // 2 <= offset <= 7: repeat the period-`offset` pattern. Build 8 bytes of it, then step
        // by the largest multiple of `offset` that fits in 8 (the pattern stays in phase).
        let mut pattern = [0u8; 8];
        for (i, b) in pattern.iter_mut().enumerate() {
            *b = out[pos - offset + i % offset];
        }
        let step = 8 - 8 % offset;
        let word = u64::from_ne_bytes(pattern);
        let base = out.as_mut_ptr();
        let mut d = pos;
        loop {
            let dst = base.wrapping_add(d).cast::<u64>();
            // SAFETY: `d < end`, so `[d, d + 8)` ends at most at `end + 7 < len`.
            unsafe { dst.write_unaligned(word) };
            d += step;
            if d >= end {
                break;
            }
        }
        return true;
    }
    // Near the end of the output: byte by byte (exact, no slack needed).
    for i in pos..end {
        out[i] = out[i - offset];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(out: &mut [u8], pos: usize, offset: usize, length: usize) {
        for i in pos..pos + length {
            out[i] = out[i - offset];
        }
    }

    #[test]
    fn matches_byte_copy_for_every_offset_class() {
        let lens: &[usize] = if cfg!(miri) {
            &[1, 3, 17, 40]
        } else {
            &[1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 300]
        };
        let offsets: &[usize] = if cfg!(miri) {
            &[1, 2, 3, 5, 8, 12, 16, 40]
        } else {
            &[
                1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 31, 32, 33, 100, 255,
            ]
        };
        for &length in lens {
            for &offset in offsets {
                // Far from the end (wide path) and right at the end (byte path).
                for tail in [0usize, 1, 5, SLACK - 1, SLACK, SLACK + 40] {
                    let pos = 260;
                    let size = pos + length + tail;
                    let mut a: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
                    let mut b = a.clone();
                    assert!(copy_match(&mut a, pos, offset, length, size));
                    reference(&mut b, pos, offset, length);
                    assert_eq!(
                        a[..pos + length],
                        b[..pos + length],
                        "offset {offset} length {length} tail {tail}"
                    );
                }
            }
        }
    }

    #[test]
    fn rejects_out_of_range_matches() {
        let mut out = [0u8; 64];
        assert!(!copy_match(&mut out, 10, 11, 1, 64));
        assert!(!copy_match(&mut out, 10, 0, 1, 64));
        assert!(!copy_match(&mut out, 10, 1, 55, 64));
        assert!(!copy_match(&mut out, 10, 1, 5, 12));
        assert!(!copy_match(&mut out, 70, 1, 0, 100));
        assert!(copy_match(&mut out, 10, 10, 54, 64));
        assert!(copy_match(&mut out, 10, 1, 0, 10));
    }
}
