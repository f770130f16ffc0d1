//! Semantic level, second part: x87 memory forms and the SSE/AVX/AVX-512 instructions that move
//! data between registers and memory (loads, stores, non-temporal moves, masked moves), with
//! their memory access size. (EVEX `disp8*N` is applied for every EVEX instruction by the
//! decoder, from the generated tables.)
//!
//! Sizes and tuple types follow the Intel SDM Vol. 2 instruction pages (section 2.7.5 for
//! `disp8*N`). Only memory forms are covered; register forms return `None`.

use crate::defs::{Encoding, Mode};
use crate::instruction::{Instruction, Prefixes};
use crate::semantic::Mnemonic as Mn;

/// A vector move's mnemonic and memory size in bytes.
pub(crate) fn vector_move(i: &Instruction) -> Option<(Mn, u16)> {
    if !i.prefixes.contains(Prefixes::MEMORY) || i.encoding == Encoding::Amd3dNow {
        return None;
    }
    let w = i.prefixes.contains(Prefixes::W);
    // MOVD/MOVQ (6E/7E) select 64 bits with W only in 64-bit mode; elsewhere W is ignored.
    let w64 = w && i.mode == Mode::Bits64;
    let (op, pp, map) = (i.opcode, i.pp, i.map);
    match i.encoding {
        Encoding::Legacy => {
            let m = match (map, op, pp) {
                (1, 0x10 | 0x11, 0) => (Mn::Movups, 16),
                (1, 0x10 | 0x11, 1) => (Mn::Movupd, 16),
                (1, 0x10 | 0x11, 2) => (Mn::Movss, 4),
                (1, 0x10 | 0x11, 3) => (Mn::Movsd, 8),
                (1, 0x12 | 0x13, 0) => (Mn::Movlps, 8),
                (1, 0x12 | 0x13, 1) => (Mn::Movlpd, 8),
                (1, 0x12, 3) => (Mn::Movddup, 8),
                (1, 0x12, 2) => (Mn::Movsldup, 16),
                (1, 0x16 | 0x17, 0) => (Mn::Movhps, 8),
                (1, 0x16 | 0x17, 1) => (Mn::Movhpd, 8),
                (1, 0x16, 2) => (Mn::Movshdup, 16),
                (1, 0x28 | 0x29, 0) => (Mn::Movaps, 16),
                (1, 0x28 | 0x29, 1) => (Mn::Movapd, 16),
                (1, 0x2B, 0) => (Mn::Movntps, 16),
                (1, 0x2B, 1) => (Mn::Movntpd, 16),
                (1, 0x6E | 0x7E, 0 | 1) if w64 => (Mn::Movq, 8),
                (1, 0x6E | 0x7E, 0 | 1) => (Mn::Movd, 4),
                (1, 0x7E, 2) | (1, 0xD6, 1) | (1, 0x6F | 0x7F, 0) => (Mn::Movq, 8),
                (1, 0x6F | 0x7F, 1) => (Mn::Movdqa, 16),
                (1, 0x6F | 0x7F, 2) => (Mn::Movdqu, 16),
                (1, 0xE7, 0) => (Mn::Movntq, 8),
                (1, 0xE7, 1) => (Mn::Movntdq, 16),
                (2, 0x2A, 1) => (Mn::Movntdqa, 16),
                _ => return None,
            };
            Some(m)
        }
        Encoding::Vex => {
            let v: u16 = 16 << (i.vl & 1);
            let m = match (map, op, pp) {
                (1, 0x10 | 0x11, 0) => (Mn::Vmovups, v),
                (1, 0x10 | 0x11, 1) => (Mn::Vmovupd, v),
                (1, 0x10 | 0x11, 2) => (Mn::Vmovss, 4),
                (1, 0x10 | 0x11, 3) => (Mn::Vmovsd, 8),
                (1, 0x12 | 0x13, 0) => (Mn::Vmovlps, 8),
                (1, 0x12 | 0x13, 1) => (Mn::Vmovlpd, 8),
                (1, 0x12, 3) => (Mn::Vmovddup, if v == 16 { 8 } else { v }),
                (1, 0x12, 2) => (Mn::Vmovsldup, v),
                (1, 0x16 | 0x17, 0) => (Mn::Vmovhps, 8),
                (1, 0x16 | 0x17, 1) => (Mn::Vmovhpd, 8),
                (1, 0x16, 2) => (Mn::Vmovshdup, v),
                (1, 0x28 | 0x29, 0) => (Mn::Vmovaps, v),
                (1, 0x28 | 0x29, 1) => (Mn::Vmovapd, v),
                (1, 0x2B, 0) => (Mn::Vmovntps, v),
                (1, 0x2B, 1) => (Mn::Vmovntpd, v),
                (1, 0x6E | 0x7E, 1) if w64 => (Mn::Vmovq, 8),
                (1, 0x6E | 0x7E, 1) => (Mn::Vmovd, 4),
                (1, 0x7E, 2) | (1, 0xD6, 1) => (Mn::Vmovq, 8),
                (1, 0x6F | 0x7F, 1) => (Mn::Vmovdqa, v),
                (1, 0x6F | 0x7F, 2) => (Mn::Vmovdqu, v),
                (1, 0xE7, 1) => (Mn::Vmovntdq, v),
                (2, 0x2A, 1) => (Mn::Vmovntdqa, v),
                (2, 0x2C | 0x2E, 1) => (Mn::Vmaskmovps, v),
                (2, 0x2D | 0x2F, 1) => (Mn::Vmaskmovpd, v),
                (2, 0x8C | 0x8E, 1) if w => (Mn::Vpmaskmovq, v),
                (2, 0x8C | 0x8E, 1) => (Mn::Vpmaskmovd, v),
                _ => return None,
            };
            Some(m)
        }
        Encoding::Evex => {
            let v: u16 = 16 << (i.vl & 3).min(2);
            let m = match (map, op, pp) {
                (1, 0x10 | 0x11, 0) => (Mn::Vmovups, v),
                (1, 0x10 | 0x11, 1) => (Mn::Vmovupd, v),
                (1, 0x10 | 0x11, 2) => (Mn::Vmovss, 4),
                (1, 0x10 | 0x11, 3) => (Mn::Vmovsd, 8),
                (1, 0x12 | 0x13, 0) => (Mn::Vmovlps, 8),
                (1, 0x12 | 0x13, 1) => (Mn::Vmovlpd, 8),
                (1, 0x12, 3) => (Mn::Vmovddup, if v == 16 { 8 } else { v }),
                (1, 0x12, 2) => (Mn::Vmovsldup, v),
                (1, 0x16 | 0x17, 0) => (Mn::Vmovhps, 8),
                (1, 0x16 | 0x17, 1) => (Mn::Vmovhpd, 8),
                (1, 0x16, 2) => (Mn::Vmovshdup, v),
                (1, 0x28 | 0x29, 0) => (Mn::Vmovaps, v),
                (1, 0x28 | 0x29, 1) => (Mn::Vmovapd, v),
                (1, 0x2B, 0) => (Mn::Vmovntps, v),
                (1, 0x2B, 1) => (Mn::Vmovntpd, v),
                (1, 0x6E | 0x7E, 1) if w64 => (Mn::Vmovq, 8),
                (1, 0x6E | 0x7E, 1) => (Mn::Vmovd, 4),
                (1, 0x7E, 2) | (1, 0xD6, 1) => (Mn::Vmovq, 8),
                (1, 0x6F | 0x7F, 1) if w => (Mn::Vmovdqa64, v),
                (1, 0x6F | 0x7F, 1) => (Mn::Vmovdqa32, v),
                (1, 0x6F | 0x7F, 2) if w => (Mn::Vmovdqu64, v),
                (1, 0x6F | 0x7F, 2) => (Mn::Vmovdqu32, v),
                (1, 0x6F | 0x7F, 3) if w => (Mn::Vmovdqu16, v),
                (1, 0x6F | 0x7F, 3) => (Mn::Vmovdqu8, v),
                (1, 0xE7, 1) => (Mn::Vmovntdq, v),
                (2, 0x2A, 1) => (Mn::Vmovntdqa, v),
                (5, 0x10 | 0x11, 2) => (Mn::Vmovsh, 2),
                (5, 0x6E | 0x7E, 1) => (Mn::Vmovw, 2),
                _ => return None,
            };
            Some(m)
        }
        _ => None,
    }
}

/// An x87 memory form's mnemonic and memory size in bytes (environment and state images
/// depend on the operand size: 14/28 and 94/108 bytes).
pub(crate) fn x87_memory(i: &Instruction) -> Option<(Mn, u16)> {
    if i.encoding != Encoding::Legacy
        || i.map != 0
        || i.modrm >= 0xC0
        || !(0xD8..=0xDF).contains(&i.opcode)
    {
        return None;
    }
    const ARITH: [Mn; 8] = [
        Mn::Fadd,
        Mn::Fmul,
        Mn::Fcom,
        Mn::Fcomp,
        Mn::Fsub,
        Mn::Fsubr,
        Mn::Fdiv,
        Mn::Fdivr,
    ];
    const IARITH: [Mn; 8] = [
        Mn::Fiadd,
        Mn::Fimul,
        Mn::Ficom,
        Mn::Ficomp,
        Mn::Fisub,
        Mn::Fisubr,
        Mn::Fidiv,
        Mn::Fidivr,
    ];
    let reg = usize::from((i.modrm >> 3) & 7);
    let small = i.osize == 2;
    Some(match (i.opcode, reg) {
        (0xD8, r) => (ARITH[r], 4),
        (0xDC, r) => (ARITH[r], 8),
        (0xDA, r) => (IARITH[r], 4),
        (0xDE, r) => (IARITH[r], 2),
        (0xD9, 0) => (Mn::Fld, 4),
        (0xD9, 2) => (Mn::Fst, 4),
        (0xD9, 3) => (Mn::Fstp, 4),
        (0xD9, 4) => (Mn::Fldenv, if small { 14 } else { 28 }),
        (0xD9, 5) => (Mn::Fldcw, 2),
        (0xD9, 6) => (Mn::Fnstenv, if small { 14 } else { 28 }),
        (0xD9, 7) => (Mn::Fnstcw, 2),
        (0xDB, 0) => (Mn::Fild, 4),
        (0xDB, 1) => (Mn::Fisttp, 4),
        (0xDB, 2) => (Mn::Fist, 4),
        (0xDB, 3) => (Mn::Fistp, 4),
        (0xDB, 5) => (Mn::Fld, 10),
        (0xDB, 7) => (Mn::Fstp, 10),
        (0xDD, 0) => (Mn::Fld, 8),
        (0xDD, 1) => (Mn::Fisttp, 8),
        (0xDD, 2) => (Mn::Fst, 8),
        (0xDD, 3) => (Mn::Fstp, 8),
        (0xDD, 4) => (Mn::Frstor, if small { 94 } else { 108 }),
        (0xDD, 6) => (Mn::Fnsave, if small { 94 } else { 108 }),
        (0xDD, 7) => (Mn::Fnstsw, 2),
        (0xDF, 0) => (Mn::Fild, 2),
        (0xDF, 1) => (Mn::Fisttp, 2),
        (0xDF, 2) => (Mn::Fist, 2),
        (0xDF, 3) => (Mn::Fistp, 2),
        (0xDF, 4) => (Mn::Fbld, 10),
        (0xDF, 5) => (Mn::Fild, 8),
        (0xDF, 6) => (Mn::Fbstp, 10),
        (0xDF, 7) => (Mn::Fistp, 8),
        _ => return None,
    })
}
