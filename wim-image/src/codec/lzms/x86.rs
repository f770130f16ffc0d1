//! LZMS's x86 filter, undone after decoding.
//!
//! Before compression the encoder turned the 32-bit relative targets of some x86
//! instructions into absolute positions (more repetitive); the decoder turns them back. Which
//! instructions count is decided by a heuristic both sides run on the *relative* form, so the
//! decoder can replay it:
//!
//! * Candidates, at positions 1 .. size − 16: `E8` (call rel32; translated only within 511
//!   bytes of the last position judged to be x86), `FF 15` (call [rip+disp32]), `F0 83 05`
//!   (lock add [rip+disp32]), and `48`/`4C` followed by `8D` (lea) or `8B` (mov, only for
//!   `48` with ModRM < 0x10) with ModRM r/m = 101 (RIP-relative); these within 1023 bytes.
//!   `E9` (jmp rel32) is skipped over (its 4 bytes included) and never translated.
//! * Each candidate's target (low 16 bits of position + relative value) is remembered with the
//!   position of the operand's last byte; a second reference to the same target within
//!   65,535 bytes marks that position as x86.

/// How far (in bytes) translation stays enabled after a position judged to be x86.
const MAX_TRANSLATION_OFFSET: i32 = 1023;
/// Two references to one target this close make an x86 position.
const ID_WINDOW: u32 = 65535;

/// The filter's per-target memory: the position each 16-bit target was last referenced at.
///
/// Positions are stored as `epoch + position` so that a new chunk does not need the 64 Ki
/// entries cleared: each chunk's epoch is more than `ID_WINDOW` beyond every value stored for
/// earlier chunks, which therefore look out of reach, as the all-(−65,536) reset of the
/// reference behaves. The table is cleared only when the epoch would overflow.
pub(crate) struct TargetTable {
    last_use: [u32; 1 << 16],
    epoch: u32,
}

impl core::fmt::Debug for TargetTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TargetTable")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Bytes that can start a candidate instruction.
static IS_OPCODE: [bool; 256] = {
    let mut t = [false; 256];
    t[0x48] = true;
    t[0x4c] = true;
    t[0xe8] = true;
    t[0xe9] = true;
    t[0xf0] = true;
    t[0xff] = true;
    t
};

/// Bit k set for each byte k of `block` that can start a candidate.
#[inline(always)]
fn opcode_mask(block: &[u8; 16]) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    // SAFETY: the only requirement of `opcode_mask_sse2` is SSE2, which this build enables
    // (the cfg above; it is part of the x86-64 baseline).
    #[allow(unsafe_code)]
    return unsafe { opcode_mask_sse2(block) };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return opcode_mask_portable(block);
}

/// [`opcode_mask`] with SSE2: 0x48/0x4C are `b & 0xFB == 0x48`, 0xE8/0xE9 `b & 0xFE == 0xE8`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn opcode_mask_sse2(block: &[u8; 16]) -> u32 {
    use core::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    let word = |i: usize| {
        let b = &block[i..i + 8];
        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    };
    let v = _mm_set_epi64x(word(8), word(0));
    let byte = |b: u8| _mm_set1_epi8(b as i8);
    let rex = _mm_cmpeq_epi8(_mm_and_si128(v, byte(0xfb)), byte(0x48));
    let call_jmp = _mm_cmpeq_epi8(_mm_and_si128(v, byte(0xfe)), byte(0xe8));
    let lock = _mm_cmpeq_epi8(v, byte(0xf0));
    let group = _mm_cmpeq_epi8(v, byte(0xff));
    let any = _mm_or_si128(_mm_or_si128(rex, call_jmp), _mm_or_si128(lock, group));
    _mm_movemask_epi8(any) as u32 & 0xffff
}

/// [`opcode_mask`] byte by byte.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn opcode_mask_portable(block: &[u8; 16]) -> u32 {
    block.iter().enumerate().fold(0, |m, (k, &b)| {
        m | u32::from(IS_OPCODE[usize::from(b)]) << k
    })
}

impl TargetTable {
    pub(crate) const fn new() -> Self {
        TargetTable {
            last_use: [0; 1 << 16],
            epoch: ID_WINDOW + 1,
        }
    }

    /// Starts a chunk of `size` bytes; returns the epoch for its positions.
    fn begin(&mut self, size: usize) -> u32 {
        let need = size as u64 + u64::from(ID_WINDOW) + 1;
        if u64::from(self.epoch) + need > u64::from(u32::MAX) {
            self.last_use.fill(0);
            self.epoch = ID_WINDOW + 1;
        }
        let epoch = self.epoch;
        self.epoch += need as u32;
        epoch
    }

    /// Undoes the filter on a decoded chunk.
    pub(crate) fn undo(&mut self, data: &mut [u8]) {
        self.run::<false>(data);
    }

    /// Applies the filter to a chunk about to be compressed (the encoder's side).
    #[cfg(feature = "alloc")]
    pub(crate) fn forward(&mut self, data: &mut [u8]) {
        self.run::<true>(data);
    }

    /// The scan both directions share: the same candidates, decisions and table updates,
    /// made on the relative form of each operand.
    fn run<const FORWARD: bool>(&mut self, data: &mut [u8]) {
        if data.len() <= 17 {
            return;
        }
        let epoch = self.begin(data.len());
        let tail = data.len() - 16;
        let mut last_x86: i32 = -MAX_TRANSLATION_OFFSET - 1;
        let mut p = 1;
        while p < tail {
            // The next candidate at or after `p`, 16 bytes at a time (`p + 16 < len`).
            let block: &[u8; 16] = data[p..p + 16].try_into().unwrap_or(&[0; 16]);
            let mask = opcode_mask(block);
            if mask == 0 {
                p += 16;
                continue;
            }
            p += mask.trailing_zeros() as usize;
            if p >= tail {
                break;
            }
            p = self.candidate::<FORWARD>(data, p, epoch, &mut last_x86);
        }
    }

    /// Examines the candidate opcode at `p` (`p < len − 16`); returns where to continue.
    #[inline]
    fn candidate<const FORWARD: bool>(
        &mut self,
        data: &mut [u8],
        p: usize,
        epoch: u32,
        last_x86: &mut i32,
    ) -> usize {
        let (b0, b1, b2) = (data[p], data[p + 1], data[p + 2]);
        let (opcode_len, max_offset) = match b0 {
            0xff if b1 == 0x15 => (2, MAX_TRANSLATION_OFFSET),
            0xf0 if b1 == 0x83 && b2 == 0x05 => (3, MAX_TRANSLATION_OFFSET),
            // REX.W (0x48) or REX.WR (0x4c) + lea/mov with a RIP-relative ModRM (only the r/m
            // bits are tested, as the format does).
            0x48 | 0x4c
                if b2 & 0x07 == 0x05
                    && (b1 == 0x8d || (b1 == 0x8b && b0 & 0x04 == 0 && b2 & 0xf0 == 0)) =>
            {
                (3, MAX_TRANSLATION_OFFSET)
            }
            0xe8 => (1, MAX_TRANSLATION_OFFSET >> 1),
            0xe9 => return p + 5,
            _ => return p + 1,
        };
        let i = p as i32;
        let q = p + opcode_len;
        let operand = &mut data[q..q + 4];
        let value = u32::from_le_bytes([operand[0], operand[1], operand[2], operand[3]]);
        let translate = i - *last_x86 <= max_offset;
        let rel = if FORWARD || !translate {
            value
        } else {
            value.wrapping_sub(i as u32)
        };
        if translate {
            let v = if FORWARD {
                rel.wrapping_add(i as u32)
            } else {
                rel
            };
            operand.copy_from_slice(&v.to_le_bytes());
        }
        let target = (i as u32).wrapping_add(rel & 0xffff) as u16;
        let end = i + opcode_len as i32 + 3;
        let stamp = epoch + end as u32;
        let slot = &mut self.last_use[usize::from(target)];
        if stamp - *slot <= ID_WINDOW {
            *last_x86 = end;
        }
        *slot = stamp;
        q + 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward filter, written from the description above with a plain reset table.
    fn forward(data: &mut [u8]) {
        if data.len() <= 17 {
            return;
        }
        let mut last_use = vec![-65536i64; 65536];
        let mut last_x86: i64 = -1024;
        let tail = data.len() - 16;
        let mut p = 1;
        while p < tail {
            let (b0, b1, b2) = (data[p], data[p + 1], data[p + 2]);
            let op = match b0 {
                0xff if b1 == 0x15 => Some((2, 1023)),
                0xf0 if b1 == 0x83 && b2 == 0x05 => Some((3, 1023)),
                0x48 | 0x4c
                    if b2 & 7 == 5
                        && (b1 == 0x8d || (b1 == 0x8b && b0 & 4 == 0 && b2 & 0xf0 == 0)) =>
                {
                    Some((3, 1023))
                }
                0xe8 => Some((1, 511)),
                0xe9 => {
                    p += 5;
                    continue;
                }
                _ => None,
            };
            let Some((n, max)) = op else {
                p += 1;
                continue;
            };
            let i = p as i64;
            let q = p + n;
            let rel = u32::from_le_bytes(data[q..q + 4].try_into().unwrap());
            let target = (i as u32).wrapping_add(rel & 0xffff) as u16;
            if i - last_x86 <= max {
                data[q..q + 4].copy_from_slice(&rel.wrapping_add(i as u32).to_le_bytes());
            }
            let end = i + n as i64 + 3;
            if end - last_use[usize::from(target)] <= 65535 {
                last_x86 = end;
            }
            last_use[usize::from(target)] = end;
            p = q + 4;
        }
    }

    #[test]
    fn undo_inverts_the_forward_filter() {
        let mut seed = 7u64;
        let mut t = TargetTable::new();
        for len in [0usize, 17, 18, 40, 1000, 70_000] {
            let orig: Vec<u8> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let r = (seed >> 33) as u32;
                    // Call-heavy code calling a few targets, some lea/mov, random filler.
                    match r % 16 {
                        0..=2 => 0xe8,
                        3 => 0x48,
                        4 => 0x8d,
                        5 => 0x05,
                        6 => 0xff,
                        7 => 0x15,
                        8 => 0xf0,
                        9 => 0x83,
                        10 => (i as u8).wrapping_neg(),
                        _ => (r >> 8) as u8,
                    }
                })
                .collect();
            let mut data = orig.clone();
            forward(&mut data);
            let mut ours = orig.clone();
            t.forward(&mut ours);
            assert_eq!(ours, data, "len {len}: forward filter");
            if len > 1000 {
                assert_ne!(data, orig, "the filter changed nothing");
            }
            t.undo(&mut data);
            assert_eq!(data, orig, "len {len}");
        }
    }

    #[test]
    fn opcode_masks_agree() {
        for b in 0..=255u8 {
            let mut block = [b; 16];
            block[3] = 0x48;
            block[15] = 0xe9;
            let expect = (0..16)
                .filter(|&k| IS_OPCODE[usize::from(block[k])])
                .fold(0u32, |m, k| m | 1 << k);
            assert_eq!(opcode_mask(&block), expect, "{b:#x}");
            assert_eq!(opcode_mask_portable(&block), expect, "{b:#x}");
        }
    }

    #[test]
    fn epochs_wrap_by_clearing() {
        let mut t = TargetTable::new();
        t.last_use[5] = 7;
        t.epoch = u32::MAX - 10_000;
        let e = t.begin(1000);
        assert_eq!(e, ID_WINDOW + 1);
        assert!(t.last_use.iter().all(|&v| v == 0));
    }
}
