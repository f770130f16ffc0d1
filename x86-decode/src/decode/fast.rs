//! The 64-bit fast path: the shape most 64-bit code has — at most one of `66`/`F2`/`F3` and a
//! REX prefix, a one-byte or `0F` opcode of a simple form (or group 3 / group 11), ModRM, SIB and
//! displacement with 64-bit addressing, an immediate —
//! decoded with table lookups and fixed-offset loads from a 32-byte window, without the
//! general path's prefix, escape and special-case machinery.
//!
//! Anything else (other prefixes, VEX/EVEX/XOP, `0F 38`/`0F 3A`, special forms, an undefined
//! encoding, a window shorter than 32 bytes) returns `false` and the general path decodes it, so
//! the two can never disagree on an instruction the fast path declines: the differential tests
//! and the `fast_path_agrees_with_general_path` test below hold them to the same record.

use crate::defs::{Encoding, Mode, Register, Segment, Vendor};
use crate::forms::{self, G11Z, G3B, G3Z, M, MB, MZ, R8, RZ};
use crate::instruction::{Instruction, Prefixes};
use crate::validity;

use super::{sign_extend_n, SIMPLE_IMM};

/// Descriptor of a one-byte (`map` 0) or `0F` (`map` 1) opcode on the fast path: its form
/// (`N`..=`RZ`, `G3B`, `G3Z`, `G11Z`), or [`SLOW`].
const SLOW: u8 = 0xFF;

/// Fast-path forms per map and opcode (Intel and AMD agree for every entry kept).
static FAST: [[u8; 256]; 2] = {
    let mut t = [[SLOW; 256]; 2];
    let mut op = 0;
    while op < 256 {
        let f = forms::PRIMARY[op];
        // Prefixes and escapes (`P`), VEX/EVEX/XOP leads, XLAT's implicit memory operand and
        // every non-simple form go the general way.
        let special = matches!(op, 0x40..=0x4F | 0xC4 | 0xC5 | 0x62 | 0x8F | 0xD7);
        if (f <= RZ || f == G3B || f == G3Z || f == G11Z) && !special {
            t[0][op] = f;
        }
        let f = forms::SECONDARY[op];
        if f <= RZ {
            t[1][op] = f;
        }
        op += 1;
    }
    t
};

/// Memory-operand shape of a ModRM byte under 64-bit addressing, `mod` != 3: bit 0 SIB follows,
/// bit 1 RIP-relative, bits 2–4 displacement size (0, 1 or 4).
static MODRM64: [u8; 192] = {
    let mut t = [0u8; 192];
    let mut m = 0;
    while m < 192 {
        let (md, rm) = (m >> 6, m & 7);
        let disp = match md {
            0 if rm == 5 => 4,
            0 => 0,
            1 => 1,
            _ => 4,
        };
        t[m] = (disp << 2) as u8
            | if rm == 4 { 1 } else { 0 }
            | if md == 0 && rm == 5 { 2 } else { 0 };
        m += 1;
    }
    t
};

/// Reads `n` (0–8) little-endian bytes at `at` (below 16) of the window, without a branch.
#[inline(always)]
fn le(win: &[u8; 32], at: usize, n: usize) -> u64 {
    let at = at & 15;
    let mut a = [0u8; 8];
    a.copy_from_slice(&win[at..at + 8]);
    u64::from_le_bytes(a) & LE_MASK[n & 15]
}

/// Masks for 0–8 bytes (indices past 8 never occur; they keep the lookup unchecked).
const LE_MASK: [u64; 16] = {
    let mut t = [u64::MAX; 16];
    let mut n = 0;
    while n < 8 {
        t[n] = (1u64 << (8 * n)) - 1;
        n += 1;
    }
    t
};

/// Decodes `bytes` into `out` if the instruction is on the fast path (64-bit mode only).
#[inline(always)]
pub(super) fn decode64(vendor: Vendor, bytes: &[u8], ip: u64, out: &mut Instruction) -> bool {
    let Some(win) = bytes.first_chunk::<32>() else {
        return false;
    };
    let mut pos = 0usize;
    let mut b = win[0];
    // One mandatory/size prefix: its `pp` class and flag.
    let (pp, pflag) = match b {
        0x66 => (1u8, Prefixes::OPERAND_SIZE),
        0xF3 => (2, Prefixes::REP),
        0xF2 => (3, Prefixes::REPNE),
        _ => (0, 0),
    };
    if pp != 0 {
        pos = 1;
        b = win[1];
    }
    let mut rex = 0u8;
    if b & 0xF0 == 0x40 {
        rex = b;
        pos += 1;
        b = win[pos & 15];
    }
    let (map, op) = if b == 0x0F {
        pos += 1;
        (1u8, win[pos & 15])
    } else {
        (0u8, b)
    };
    let form = FAST[usize::from(map)][usize::from(op)];
    // Relative branches with a prefix depend on the vendor: the general path has the rules.
    if form == SLOW || pp != 0 && (form == R8 || form == RZ) {
        return false;
    }
    pos += 1;
    let w = rex & 8 != 0;
    let osize: u8 = if w {
        8
    } else if pp == 1 {
        2
    } else {
        4
    };
    let mut flags: u16 = pflag
        | if rex != 0 {
            Prefixes::REX | if w { Prefixes::W } else { 0 }
        } else {
            0
        };
    let mut modrm = 0xC0u8;
    let (mut sib, mut scale) = (0u8, 1u8);
    let (mut base, mut index, mut segment) = (Register::NONE, Register::NONE, Segment::NONE);
    let (mut disp, mut disp_size, mut disp_off) = (0u64, 0u8, 0u8);
    if matches!(form, M | MB | MZ | G3B | G3Z | G11Z) {
        modrm = win[pos & 15];
        pos += 1;
        flags |= Prefixes::MODRM;
        if modrm < 0xC0 {
            flags |= Prefixes::MEMORY;
            let shape = MODRM64[usize::from(modrm)];
            let md = modrm >> 6;
            let mut dsize = usize::from(shape >> 2);
            let mut ss = false;
            if shape & 1 != 0 {
                sib = win[pos & 15];
                pos += 1;
                flags |= Prefixes::SIB;
                scale = 1 << (sib >> 6);
                let idx = (sib >> 3) & 7 | (rex >> 1 & 1) << 3;
                if idx != 4 {
                    index = Register::gpr(8, idx);
                }
                if sib & 7 == 5 && md == 0 {
                    dsize = 4;
                } else {
                    let n = sib & 7 | (rex & 1) << 3;
                    ss = n == 4 || n == 5;
                    base = Register::gpr(8, n);
                }
            } else if shape & 2 != 0 {
                base = Register::RIP;
                flags |= Prefixes::IP_RELATIVE;
            } else {
                let n = modrm & 7 | (rex & 1) << 3;
                ss = n == 4 || n == 5;
                base = Register::gpr(8, n);
            }
            // Branch-free: a zero-size displacement reads as 0.
            disp = sign_extend_n(le(win, pos, dsize), dsize);
            disp_off = if dsize != 0 { pos as u8 } else { 0 };
            pos += dsize;
            disp_size = dsize as u8;
            segment = if ss { Segment::SS } else { Segment::DS };
        }
    }
    let mr = validity::ModRm {
        modrm,
        sib: flags & Prefixes::SIB != 0,
    };
    if !validity::legacy(vendor, Mode::Bits64, map, pp, op, w, false, false, mr) {
        return false;
    }
    let z = if osize == 2 { 2 } else { 4 };
    let imm_size = match form {
        // Group 3: only TEST (`/0`, `/1`) has an immediate.
        G3B => u8::from(modrm & 0x30 == 0),
        G3Z => z * u8::from(modrm & 0x30 == 0),
        // `C7 F8` is XBEGIN, a relative branch.
        G11Z if modrm == 0xF8 => return false,
        G11Z => z,
        RZ => SIMPLE_IMM[usize::from(RZ)][2],
        _ => SIMPLE_IMM[usize::from(form)][usize::from(osize >> 2)],
    };
    let rel = form == R8 || form == RZ;
    let v = le(win, pos, usize::from(imm_size));
    let imm = if rel {
        sign_extend_n(v, usize::from(imm_size))
    } else {
        v
    };
    let imm_off = if imm_size != 0 { pos as u8 } else { 0 };
    pos += usize::from(imm_size);
    *out = Instruction {
        ip,
        disp,
        imm,
        imm2: 0,
        prefixes: Prefixes(flags),
        len: pos as u8,
        mode: Mode::Bits64,
        encoding: Encoding::Legacy,
        map,
        opcode: op,
        modrm: if flags & Prefixes::MODRM != 0 {
            modrm
        } else {
            0
        },
        sib,
        rex,
        pp,
        vvvv: 0,
        vl: 0,
        aaa: 0,
        osize: if rel { 8 } else { osize },
        asize: 8,
        seg_prefix: Segment::NONE,
        segment,
        base,
        index,
        scale,
        disp_off,
        disp_size,
        imm_off,
        imm_size,
        imm2_size: 0,
        rel,
        amd: vendor == Vendor::Amd,
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;

    /// Every window the fast path takes must give exactly the general path's record.
    #[test]
    fn fast_path_agrees_with_general_path() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Bias the first bytes towards the shapes the fast path takes.
        const LEADS: [u8; 16] = [
            0x48, 0x4C, 0x41, 0x0F, 0x8B, 0x89, 0xE8, 0x83, 0x66, 0xF3, 0xF2, 0xF7, 0xF6, 0xC7,
            0x0F, 0x49,
        ];
        let (mut taken, mut total) = (0u32, 0u32);
        for vendor in [Vendor::Intel, Vendor::Amd] {
            let general = Decoder::new(Mode::Bits64).with_vendor(vendor);
            for _ in 0..300_000 {
                let mut win = [0u8; 32];
                for chunk in win.chunks_mut(8) {
                    chunk.copy_from_slice(&next().to_le_bytes());
                }
                let r = next();
                for (k, byte) in win.iter_mut().take(3).enumerate() {
                    if r >> (8 * k) & 1 != 0 {
                        *byte = LEADS[(r >> (8 * k + 1)) as usize & 15];
                    }
                }
                total += 1;
                let mut fast = Instruction::default();
                if !decode64(vendor, &win, 0x1234_5678, &mut fast) {
                    continue;
                }
                taken += 1;
                let mut slow = Instruction::default();
                general
                    .decode_general(&win, 0x1234_5678, &mut slow)
                    .unwrap_or_else(|e| {
                        panic!("{win:02x?}: fast path took an invalid window: {e:?}")
                    });
                assert_eq!(fast, slow, "{win:02x?}");
            }
        }
        // The test means something only if the fast path is actually taken.
        assert!(taken > total / 4, "fast path taken {taken} of {total}");
    }
}
