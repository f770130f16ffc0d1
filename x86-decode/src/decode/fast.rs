//! The 64-bit fast path: the shape most 64-bit code has — at most one of `66`/`F2`/`F3` and a
//! REX prefix, a one-byte or `0F` opcode of a simple form (or group 3 / group 11), ModRM, SIB and
//! displacement with 64-bit addressing, an immediate —
//! decoded from a 32-byte window without the general path's prefix, escape and special-case
//! machinery: one [`ENTRY`] load per opcode gives its form, validity patterns and immediate
//! sizes, and the choices whose outcome the branch predictor knows (a prefix, REX, `0F`) stay
//! branches while values on the way from one byte to the length (ModRM's shape, the operand
//! size) are computed rather than looked up, so no table load sits on that chain twice.
//! The record is written as it is decoded, over a constant template (three vector stores),
//! so no field waits in a register — or spilled — for one big store at the end.
//!
//! Measured with cachegrind on the `x86` bench's corpus, with every record stored: 180 machine
//! instructions per decoded instruction when the record was one store at the end (and carried
//! the displacement and immediate offsets and the scale, now computed from the sizes and the
//! SIB byte when asked), 134 now.
//!
//! Anything else (other prefixes, VEX/EVEX/XOP, `0F 38`/`0F 3A`, special forms, an undefined
//! encoding, a window shorter than 32 bytes) returns `false` and the general path decodes it, so
//! the two can never disagree on an instruction the fast path declines: the differential tests
//! and the `fast_path_agrees_with_general_path` test below hold them to the same record.

use crate::defs::{Mode, Register, Segment, Vendor};
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

/// Bits of an [`ENTRY`]: the form (bits 0–7, [`SLOW`] when the fast path declines), the
/// validity pattern without and with REX.W (8–15, 16–23), the immediate size for operand
/// sizes 2, 4 and 8 (24–31, 32–39, 40–47), and flags.
const E_MODRM: u64 = 1 << 48;
/// Group 3: the immediate exists only for TEST (`reg` 0 or 1).
const E_GROUP3: u64 = 1 << 49;
/// A relative branch (its immediate is sign-extended).
const E_REL: u64 = 1 << 50;
/// `C7 /7` with `mod` 3 (`C7 F8`) is XBEGIN, a relative branch: declined.
const E_G11: u64 = 1 << 51;
/// A validity pattern other than "all valid": ModRM must be checked.
const E_CHECK: u64 = 1 << 52;
/// Any of the rare cases: one test on the common path.
const E_RARE: u64 = E_GROUP3 | E_G11 | E_CHECK;

/// One load per instruction: everything the fast path needs about an opcode, per vendor, map
/// (one-byte, `0F`), prefix class (`pp`) and opcode, from [`FAST`], the immediate sizes and the
/// validity patterns of 64-bit mode.
/// Indexed `[vendor][pp << 9 | map << 8 | op]`.
static ENTRY: [[u64; 2048]; 2] = {
    let mut t = [[SLOW as u64; 2048]; 2];
    let mut i = 0;
    while i < 2 * 2048 {
        let (amd, pp, map, op) = (i >> 11, (i >> 9) & 3, (i >> 8) & 1, i & 0xFF);
        let form = FAST[map][op];
        let rel = form == R8 || form == RZ;
        // Relative branches with a prefix depend on the vendor: the general path has the rules.
        if form != SLOW && !(pp != 0 && rel) {
            let key = ((amd * 3 + Mode::Bits64.index()) * 4 + map) * 4 + pp;
            let pats = validity::LEGACY_FAST[key * 256 + op];
            let imm: [u8; 3] = match form {
                G3B => [1, 1, 1],
                G3Z | G11Z => [2, 4, 4],
                RZ => [4, 4, 4],
                _ => SIMPLE_IMM[form as usize],
            };
            let modrm = matches!(form, M | MB | MZ | G3B | G3Z | G11Z);
            t[amd][i & 2047] = form as u64
                | (pats[0] as u64) << 8
                | (pats[1] as u64) << 16
                | (imm[0] as u64) << 24
                | (imm[1] as u64) << 32
                | (imm[2] as u64) << 40
                | if modrm { E_MODRM } else { 0 }
                | if form == G3B || form == G3Z {
                    E_GROUP3
                } else {
                    0
                }
                | if rel { E_REL } else { 0 }
                | if form == G11Z { E_G11 } else { 0 }
                | if pats[0] as u16 != validity::ALL_VALID || pats[1] as u16 != validity::ALL_VALID
                {
                    E_CHECK
                } else {
                    0
                };
        }
        i += 1;
    }
    t
};

const _: () = assert!(Prefixes::W == 1 << 6);

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
    // Branches, not a table: prefixes are rare, so the predicted path knows `pp` at once
    // instead of after a dependent load.
    // `pp` also comes as its part of the [`ENTRY`] index, so no shift waits on it.
    let (pp, pflag, kpp) = match b {
        0x66 => (1u8, Prefixes::OPERAND_SIZE, 1usize << 9),
        0xF3 => (2, Prefixes::REP, 2 << 9),
        0xF2 => (3, Prefixes::REPNE, 3 << 9),
        _ => (0, 0, 0),
    };
    if pp != 0 {
        pos = 1;
        b = win[1];
    }
    let mut rex = 0u8;
    let mut rex_flags = 0u16;
    if b & 0xF0 == 0x40 {
        rex = b;
        // REX, and W from REX.W (bit 3 to bit 6).
        rex_flags = Prefixes::REX | u16::from(b & 8) << 3;
        pos += 1;
        b = win[pos & 15];
    }
    let (map, op, kmap) = if b == 0x0F {
        pos += 1;
        (1u8, win[pos & 15], 1usize << 8)
    } else {
        (0u8, b, 0)
    };
    let amd = vendor == Vendor::Amd;
    let key = kpp | kmap | usize::from(op);
    let e = ENTRY[usize::from(amd)][key & 2047];
    let form = e as u8;
    if form == SLOW {
        return false;
    }
    pos += 1;
    // The record is written as it is found, over a template of the fields that are constant
    // here (a few wide stores): the values then die at once instead of waiting in registers
    // (or spilled) for one big store at the end.
    *out = Instruction::LEGACY64;
    out.ip = ip;
    out.amd = amd;
    out.map = map;
    out.opcode = op;
    out.rex = rex;
    out.pp = pp;
    let w = rex & 8 != 0;
    // REX.W gives 8, else `66` gives 2, else 4; the immediate size for that operand size sits
    // at bits 40, 24 or 32 of the entry. Selects, not a table: no load on the way to the length.
    let (osize, imm_shift) = if w {
        (8u8, 40u32)
    } else if pp == 1 {
        (2, 24)
    } else {
        (4, 32)
    };
    let mut flags: u16 = pflag | rex_flags;
    let mut modrm = 0xC0u8;
    if e & E_MODRM != 0 {
        modrm = win[pos & 15];
        out.modrm = modrm;
        pos += 1;
        flags |= Prefixes::MODRM;
        if modrm < 0xC0 {
            flags |= Prefixes::MEMORY;
            // The shape by arithmetic rather than a table: a load here would sit between the
            // ModRM byte and the length.
            let md = modrm >> 6;
            let rm = modrm & 7;
            let rip = md == 0 && rm == 5;
            // `mod` 1: disp8, 2: disp32; RIP-relative: disp32.
            let mut dsize = usize::from(md & 1 | (md & 2) << 1) | if rip { 4 } else { 0 };
            let mut ss = false;
            if rm == 4 {
                let sib = win[pos & 15];
                out.sib = sib;
                pos += 1;
                flags |= Prefixes::SIB;
                let idx = (sib >> 3) & 7 | (rex >> 1 & 1) << 3;
                if idx != 4 {
                    out.index = Register::gpr(8, idx);
                }
                if sib & 7 == 5 && md == 0 {
                    dsize = 4;
                } else {
                    let n = sib & 7 | (rex & 1) << 3;
                    ss = n == 4 || n == 5;
                    out.base = Register::gpr(8, n);
                }
            } else if rip {
                out.base = Register::RIP;
                flags |= Prefixes::IP_RELATIVE;
            } else {
                let n = modrm & 7 | (rex & 1) << 3;
                ss = n == 4 || n == 5;
                out.base = Register::gpr(8, n);
            }
            // Branch-free: a zero-size displacement reads as 0.
            out.disp = sign_extend_n(le(win, pos, dsize), dsize);
            pos += dsize;
            out.disp_size = dsize as u8;
            out.segment = if ss { Segment::SS } else { Segment::DS };
        }
    }
    let mut imm_size = (e >> imm_shift) as u8;
    if e & E_RARE != 0 {
        if e & E_CHECK != 0 {
            let pattern = u16::from((e >> (8 + 8 * u32::from(w))) as u8);
            let mr = validity::ModRm {
                modrm,
                sib: flags & Prefixes::SIB != 0,
            };
            if pattern != validity::ALL_VALID && !validity::pattern_allows(pattern, mr) {
                return false;
            }
        }
        // Groups 3 and 11: their immediate depends on ModRM.
        if e & E_G11 != 0 && modrm == 0xF8 {
            return false;
        }
        // Group 3: only TEST (`/0`, `/1`) has an immediate.
        if e & E_GROUP3 != 0 && modrm & 0x30 != 0 {
            imm_size = 0;
        }
    }
    let rel = e & E_REL != 0;
    let v = le(win, pos, usize::from(imm_size));
    out.imm = if rel {
        sign_extend_n(v, usize::from(imm_size))
    } else {
        v
    };
    out.imm_size = imm_size;
    out.rel = rel;
    out.osize = if rel { 8 } else { osize };
    out.prefixes = Prefixes(flags);
    out.len = (pos + usize::from(imm_size)) as u8;
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
