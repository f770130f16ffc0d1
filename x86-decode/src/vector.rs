//! Semantic level: x87 memory forms and the MMX/SSE/AVX/AVX-512 instructions that move data
//! between registers and memory — loads, stores, non-temporal moves, masked moves (VEX
//! `VMASKMOV`, the implicit-destination `MASKMOVQ`/`MASKMOVDQU`, and every EVEX move, whose
//! opmask is [`Instruction::op_mask`]), broadcasts, element inserts and extracts, 128/256-bit
//! inserts and extracts, compress/expand, down-converting stores, gathers and scatters — with
//! their memory access size. (EVEX `disp8*N` is applied for every EVEX instruction by the
//! decoder, from the generated tables.)
//!
//! Sizes follow the Intel SDM Vol. 2 instruction pages. Only the memory forms are covered (and
//! `MASKMOVQ`/`MASKMOVDQU`, whose memory operand is implicit); register forms return `None`.

use crate::defs::{Encoding, Mode};
use crate::instruction::{Instruction, Prefixes};
use crate::operands::Spec::{self, *};
use crate::operands::Sz::*;
use crate::semantic::Mnemonic as Mn;

/// Mnemonic, operands and memory access size in bytes.
type Form = (Mn, &'static [Spec], u16);

const X: crate::operands::Sz = B(16);
/// Full-width load / store.
const LD: &[Spec] = &[V(Vl), M(Entry)];
const ST: &[Spec] = &[M(Entry), V(Vl)];
/// XMM load / store (scalars, halves, GPR-sized moves).
const LDX: &[Spec] = &[V(X), M(Entry)];
const STX: &[Spec] = &[M(Entry), V(X)];
/// VEX/EVEX load that merges with the register named by `vvvv` (`VMOVLPS`, `VMOVHPD`).
const MERGE: &[Spec] = &[V(X), H(X), M(Entry)];
/// MMX load / store.
const LDMM: &[Spec] = &[P, M(Entry)];
const STMM: &[Spec] = &[M(Entry), P];
/// VEX masked load / store: the mask is the register named by `vvvv`.
const MASK_LD: &[Spec] = &[V(Vl), H(Vl), M(Entry)];
const MASK_ST: &[Spec] = &[M(Entry), H(Vl), V(Vl)];
/// 128/256-bit insert and extract.
const INS: &[Spec] = &[V(Vl), H(Vl), M(Entry), Ib];
const EXT: &[Spec] = &[M(Entry), V(Vl), Ib];
/// Element insert (legacy, VEX/EVEX) and extract.
const PINS: &[Spec] = &[V(X), M(Entry), Ib];
const VPINS: &[Spec] = &[V(X), H(X), M(Entry), Ib];
const PEXT: &[Spec] = &[M(Entry), V(X), Ib];

/// A vector or x87 memory form.
pub(crate) fn form(i: &Instruction) -> Option<Form> {
    match i.encoding {
        Encoding::Legacy => {
            if i.map == 0 {
                return x87_memory(i).map(|(m, size)| (m, &[M(Entry)][..], size));
            }
            if i.map == 1 && i.opcode == 0xF7 && i.modrm >= 0xC0 {
                return match i.pp {
                    0 => Some((Mn::Maskmovq, &[Di(Entry), P, N], 8)),
                    1 => Some((Mn::Maskmovdqu, &[Di(Entry), V(X), U(X)], 16)),
                    _ => None,
                };
            }
            memory(i).then(|| legacy(i)).flatten()
        }
        Encoding::Vex => {
            if i.map == 1 && i.opcode == 0xF7 && i.modrm >= 0xC0 && i.pp == 1 && i.vl == 0 {
                return Some((Mn::Vmaskmovdqu, &[Di(Entry), V(X), U(X)], 16));
            }
            memory(i).then(|| vex(i)).flatten()
        }
        Encoding::Evex => memory(i).then(|| evex(i)).flatten(),
        _ => None,
    }
}

fn memory(i: &Instruction) -> bool {
    i.prefixes.contains(Prefixes::MEMORY)
}

/// 4, or 8 with W in 64-bit mode: `MOVD`/`MOVQ` and `PEXTRD`/`PEXTRQ` pick by this.
fn dq(i: &Instruction) -> u16 {
    if i.prefixes.contains(Prefixes::W) && i.mode == Mode::Bits64 {
        8
    } else {
        4
    }
}

fn legacy(i: &Instruction) -> Option<Form> {
    let dq = dq(i);
    let (d, q) = (dq == 4, dq == 8);
    Some(match (i.map, i.opcode, i.pp) {
        (1, 0x10, 0) => (Mn::Movups, LD, 16),
        (1, 0x11, 0) => (Mn::Movups, ST, 16),
        (1, 0x10, 1) => (Mn::Movupd, LD, 16),
        (1, 0x11, 1) => (Mn::Movupd, ST, 16),
        (1, 0x10, 2) => (Mn::Movss, LDX, 4),
        (1, 0x11, 2) => (Mn::Movss, STX, 4),
        (1, 0x10, 3) => (Mn::Movsd, LDX, 8),
        (1, 0x11, 3) => (Mn::Movsd, STX, 8),
        (1, 0x12, 0) => (Mn::Movlps, LDX, 8),
        (1, 0x13, 0) => (Mn::Movlps, STX, 8),
        (1, 0x12, 1) => (Mn::Movlpd, LDX, 8),
        (1, 0x13, 1) => (Mn::Movlpd, STX, 8),
        (1, 0x12, 2) => (Mn::Movsldup, LD, 16),
        (1, 0x12, 3) => (Mn::Movddup, LDX, 8),
        (1, 0x16, 0) => (Mn::Movhps, LDX, 8),
        (1, 0x17, 0) => (Mn::Movhps, STX, 8),
        (1, 0x16, 1) => (Mn::Movhpd, LDX, 8),
        (1, 0x17, 1) => (Mn::Movhpd, STX, 8),
        (1, 0x16, 2) => (Mn::Movshdup, LD, 16),
        (1, 0x28, 0) => (Mn::Movaps, LD, 16),
        (1, 0x29, 0) => (Mn::Movaps, ST, 16),
        (1, 0x28, 1) => (Mn::Movapd, LD, 16),
        (1, 0x29, 1) => (Mn::Movapd, ST, 16),
        (1, 0x2B, 0) => (Mn::Movntps, ST, 16),
        (1, 0x2B, 1) => (Mn::Movntpd, ST, 16),
        (1, 0x2B, 2) => (Mn::Movntss, STX, 4),
        (1, 0x2B, 3) => (Mn::Movntsd, STX, 8),
        (1, 0x6E, 0) if d => (Mn::Movd, LDMM, 4),
        (1, 0x6E, 0) if q => (Mn::Movq, LDMM, 8),
        (1, 0x7E, 0) if d => (Mn::Movd, STMM, 4),
        (1, 0x7E, 0) if q => (Mn::Movq, STMM, 8),
        (1, 0x6E, 1) if d => (Mn::Movd, LDX, 4),
        (1, 0x6E, 1) if q => (Mn::Movq, LDX, 8),
        (1, 0x7E, 1) if d => (Mn::Movd, STX, 4),
        (1, 0x7E, 1) if q => (Mn::Movq, STX, 8),
        (1, 0x7E, 2) => (Mn::Movq, LDX, 8),
        (1, 0xD6, 1) => (Mn::Movq, STX, 8),
        (1, 0x6F, 0) => (Mn::Movq, LDMM, 8),
        (1, 0x7F, 0) => (Mn::Movq, STMM, 8),
        (1, 0x6F, 1) => (Mn::Movdqa, LD, 16),
        (1, 0x7F, 1) => (Mn::Movdqa, ST, 16),
        (1, 0x6F, 2) => (Mn::Movdqu, LD, 16),
        (1, 0x7F, 2) => (Mn::Movdqu, ST, 16),
        (1, 0xE7, 0) => (Mn::Movntq, STMM, 8),
        (1, 0xE7, 1) => (Mn::Movntdq, ST, 16),
        (1, 0xF0, 3) => (Mn::Lddqu, LD, 16),
        (1, 0xC4, 0) => (Mn::Pinsrw, &[P, M(Entry), Ib], 2),
        (1, 0xC4, 1) => (Mn::Pinsrw, PINS, 2),
        (2, 0x2A, 1) => (Mn::Movntdqa, LD, 16),
        (2, op @ (0x20..=0x25 | 0x30..=0x35), 1) => {
            let (m, div) = PMOVX[usize::from(op >> 4 & 1)][usize::from(op & 7)];
            (m, LD, 16 / div)
        }
        (3, 0x14, 1) => (Mn::Pextrb, PEXT, 1),
        (3, 0x15, 1) => (Mn::Pextrw, PEXT, 2),
        (3, 0x16, 1) if d => (Mn::Pextrd, PEXT, 4),
        (3, 0x16, 1) if q => (Mn::Pextrq, PEXT, 8),
        (3, 0x17, 1) => (Mn::Extractps, PEXT, 4),
        (3, 0x20, 1) => (Mn::Pinsrb, PINS, 1),
        (3, 0x21, 1) => (Mn::Insertps, PINS, 4),
        (3, 0x22, 1) if d => (Mn::Pinsrd, PINS, 4),
        (3, 0x22, 1) if q => (Mn::Pinsrq, PINS, 8),
        _ => return None,
    })
}

/// Forms shared by VEX and EVEX.
fn vex_evex(i: &Instruction, v: u16) -> Option<Form> {
    let dq = dq(i);
    let (d, q) = (dq == 4, dq == 8);
    let ddup = if v == 16 { 8 } else { v };
    Some(match (i.map, i.opcode, i.pp) {
        (1, 0x10, 0) => (Mn::Vmovups, LD, v),
        (1, 0x11, 0) => (Mn::Vmovups, ST, v),
        (1, 0x10, 1) => (Mn::Vmovupd, LD, v),
        (1, 0x11, 1) => (Mn::Vmovupd, ST, v),
        (1, 0x10, 2) => (Mn::Vmovss, LDX, 4),
        (1, 0x11, 2) => (Mn::Vmovss, STX, 4),
        (1, 0x10, 3) => (Mn::Vmovsd, LDX, 8),
        (1, 0x11, 3) => (Mn::Vmovsd, STX, 8),
        (1, 0x12, 0) => (Mn::Vmovlps, MERGE, 8),
        (1, 0x13, 0) => (Mn::Vmovlps, STX, 8),
        (1, 0x12, 1) => (Mn::Vmovlpd, MERGE, 8),
        (1, 0x13, 1) => (Mn::Vmovlpd, STX, 8),
        (1, 0x12, 2) => (Mn::Vmovsldup, LD, v),
        (1, 0x12, 3) => (Mn::Vmovddup, LD, ddup),
        (1, 0x16, 0) => (Mn::Vmovhps, MERGE, 8),
        (1, 0x17, 0) => (Mn::Vmovhps, STX, 8),
        (1, 0x16, 1) => (Mn::Vmovhpd, MERGE, 8),
        (1, 0x17, 1) => (Mn::Vmovhpd, STX, 8),
        (1, 0x16, 2) => (Mn::Vmovshdup, LD, v),
        (1, 0x28, 0) => (Mn::Vmovaps, LD, v),
        (1, 0x29, 0) => (Mn::Vmovaps, ST, v),
        (1, 0x28, 1) => (Mn::Vmovapd, LD, v),
        (1, 0x29, 1) => (Mn::Vmovapd, ST, v),
        (1, 0x2B, 0) => (Mn::Vmovntps, ST, v),
        (1, 0x2B, 1) => (Mn::Vmovntpd, ST, v),
        (1, 0x6E, 1) if d => (Mn::Vmovd, LDX, 4),
        (1, 0x6E, 1) if q => (Mn::Vmovq, LDX, 8),
        (1, 0x7E, 1) if d => (Mn::Vmovd, STX, 4),
        (1, 0x7E, 1) if q => (Mn::Vmovq, STX, 8),
        (1, 0x7E, 2) => (Mn::Vmovq, LDX, 8),
        (1, 0xD6, 1) => (Mn::Vmovq, STX, 8),
        (1, 0xE7, 1) => (Mn::Vmovntdq, ST, v),
        (1, 0xC4, 1) => (Mn::Vpinsrw, VPINS, 2),
        (2, 0x2A, 1) => (Mn::Vmovntdqa, LD, v),
        (2, op @ (0x20..=0x25 | 0x30..=0x35), 1) => {
            let (m, div) = VPMOVX[usize::from(op >> 4 & 1)][usize::from(op & 7)];
            (m, LD, v / div)
        }
        (3, 0x14, 1) => (Mn::Vpextrb, PEXT, 1),
        (3, 0x15, 1) => (Mn::Vpextrw, PEXT, 2),
        (3, 0x16, 1) if d => (Mn::Vpextrd, PEXT, 4),
        (3, 0x16, 1) if q => (Mn::Vpextrq, PEXT, 8),
        (3, 0x17, 1) => (Mn::Vextractps, PEXT, 4),
        (3, 0x20, 1) => (Mn::Vpinsrb, VPINS, 1),
        (3, 0x21, 1) => (Mn::Vinsertps, VPINS, 4),
        (3, 0x22, 1) if d => (Mn::Vpinsrd, VPINS, 4),
        (3, 0x22, 1) if q => (Mn::Vpinsrq, VPINS, 8),
        _ => return None,
    })
}

/// Gathers: destination (and VEX mask) are half width for qword indices with dword elements.
fn gather_dest_half(i: &Instruction) -> bool {
    i.opcode & 1 == 1 && !i.prefixes.contains(Prefixes::W)
}

fn vex(i: &Instruction) -> Option<Form> {
    let v: u16 = 16 << (i.vl & 1);
    if let Some(f) = vex_evex(i, v) {
        return Some(f);
    }
    let w = i.prefixes.contains(Prefixes::W);
    let e = if w { 8 } else { 4 };
    Some(match (i.map, i.opcode, i.pp) {
        (1, 0x6F, 1) => (Mn::Vmovdqa, LD, v),
        (1, 0x7F, 1) => (Mn::Vmovdqa, ST, v),
        (1, 0x6F, 2) => (Mn::Vmovdqu, LD, v),
        (1, 0x7F, 2) => (Mn::Vmovdqu, ST, v),
        (1, 0xF0, 3) => (Mn::Vlddqu, LD, v),
        (1, 0x90, 0) => (
            pick_w(i, Mn::Kmovw, Mn::Kmovq),
            &[Kr, M(Entry)],
            if w { 8 } else { 2 },
        ),
        (1, 0x91, 0) => (
            pick_w(i, Mn::Kmovw, Mn::Kmovq),
            &[M(Entry), Kr],
            if w { 8 } else { 2 },
        ),
        (1, 0x90, 1) => (
            pick_w(i, Mn::Kmovb, Mn::Kmovd),
            &[Kr, M(Entry)],
            if w { 4 } else { 1 },
        ),
        (1, 0x91, 1) => (
            pick_w(i, Mn::Kmovb, Mn::Kmovd),
            &[M(Entry), Kr],
            if w { 4 } else { 1 },
        ),
        (1, 0xAE, 0) if i.modrm >> 3 & 7 == 2 => (Mn::Vldmxcsr, &[M(Entry)], 4),
        (1, 0xAE, 0) if i.modrm >> 3 & 7 == 3 => (Mn::Vstmxcsr, &[M(Entry)], 4),
        (2, 0x18, 1) => (Mn::Vbroadcastss, LD, 4),
        (2, 0x19, 1) => (Mn::Vbroadcastsd, LD, 8),
        (2, 0x1A, 1) => (Mn::Vbroadcastf128, LD, 16),
        (2, 0x5A, 1) => (Mn::Vbroadcasti128, LD, 16),
        (2, 0x58, 1) => (Mn::Vpbroadcastd, LD, 4),
        (2, 0x59, 1) => (Mn::Vpbroadcastq, LD, 8),
        (2, 0x78, 1) => (Mn::Vpbroadcastb, LD, 1),
        (2, 0x79, 1) => (Mn::Vpbroadcastw, LD, 2),
        (2, 0x2C, 1) => (Mn::Vmaskmovps, MASK_LD, v),
        (2, 0x2D, 1) => (Mn::Vmaskmovpd, MASK_LD, v),
        (2, 0x2E, 1) => (Mn::Vmaskmovps, MASK_ST, v),
        (2, 0x2F, 1) => (Mn::Vmaskmovpd, MASK_ST, v),
        (2, 0x8C, 1) => (if w { Mn::Vpmaskmovq } else { Mn::Vpmaskmovd }, MASK_LD, v),
        (2, 0x8E, 1) => (if w { Mn::Vpmaskmovq } else { Mn::Vpmaskmovd }, MASK_ST, v),
        (2, 0x90..=0x93, 1) => {
            let m = GATHERS[usize::from(i.opcode & 3) * 2 + usize::from(w)];
            let specs: &[Spec] = if gather_dest_half(i) {
                &[V(Vh), M(Entry), H(Vh)]
            } else {
                &[V(Vl), M(Entry), H(Vl)]
            };
            (m, specs, e)
        }
        (3, 0x18, 1) => (Mn::Vinsertf128, INS, 16),
        (3, 0x38, 1) => (Mn::Vinserti128, INS, 16),
        (3, 0x19, 1) => (Mn::Vextractf128, EXT, 16),
        (3, 0x39, 1) => (Mn::Vextracti128, EXT, 16),
        _ => return None,
    })
}

fn pick_w(i: &Instruction, w0: Mn, w1: Mn) -> Mn {
    if i.prefixes.contains(Prefixes::W) {
        w1
    } else {
        w0
    }
}

/// `PMOVSX`/`PMOVZX` (`66 0F38 20..25`, `30..35`) by `opcode >> 4 & 1` and `opcode & 7`: the
/// mnemonic and how much smaller the memory source is than the destination.
const PMOVX: [[(Mn, u16); 6]; 2] = [
    [
        (Mn::Pmovsxbw, 2),
        (Mn::Pmovsxbd, 4),
        (Mn::Pmovsxbq, 8),
        (Mn::Pmovsxwd, 2),
        (Mn::Pmovsxwq, 4),
        (Mn::Pmovsxdq, 2),
    ],
    [
        (Mn::Pmovzxbw, 2),
        (Mn::Pmovzxbd, 4),
        (Mn::Pmovzxbq, 8),
        (Mn::Pmovzxwd, 2),
        (Mn::Pmovzxwq, 4),
        (Mn::Pmovzxdq, 2),
    ],
];
const VPMOVX: [[(Mn, u16); 6]; 2] = [
    [
        (Mn::Vpmovsxbw, 2),
        (Mn::Vpmovsxbd, 4),
        (Mn::Vpmovsxbq, 8),
        (Mn::Vpmovsxwd, 2),
        (Mn::Vpmovsxwq, 4),
        (Mn::Vpmovsxdq, 2),
    ],
    [
        (Mn::Vpmovzxbw, 2),
        (Mn::Vpmovzxbd, 4),
        (Mn::Vpmovzxbq, 8),
        (Mn::Vpmovzxwd, 2),
        (Mn::Vpmovzxwq, 4),
        (Mn::Vpmovzxdq, 2),
    ],
];

/// Gathers by `opcode & 3` and W.
const GATHERS: [Mn; 8] = [
    Mn::Vpgatherdd,
    Mn::Vpgatherdq,
    Mn::Vpgatherqd,
    Mn::Vpgatherqq,
    Mn::Vgatherdps,
    Mn::Vgatherdpd,
    Mn::Vgatherqps,
    Mn::Vgatherqpd,
];
/// Scatters by `opcode & 3` and W.
const SCATTERS: [Mn; 8] = [
    Mn::Vpscatterdd,
    Mn::Vpscatterdq,
    Mn::Vpscatterqd,
    Mn::Vpscatterqq,
    Mn::Vscatterdps,
    Mn::Vscatterdpd,
    Mn::Vscatterqps,
    Mn::Vscatterqpd,
];
/// EVEX down-converting stores `F3 0F38 10..15, 20..25, 30..35` by opcode; the size divisor.
const DOWN: [[(Mn, u16); 6]; 3] = [
    [
        (Mn::Vpmovuswb, 2),
        (Mn::Vpmovusdb, 4),
        (Mn::Vpmovusqb, 8),
        (Mn::Vpmovusdw, 2),
        (Mn::Vpmovusqw, 4),
        (Mn::Vpmovusqd, 2),
    ],
    [
        (Mn::Vpmovswb, 2),
        (Mn::Vpmovsdb, 4),
        (Mn::Vpmovsqb, 8),
        (Mn::Vpmovsdw, 2),
        (Mn::Vpmovsqw, 4),
        (Mn::Vpmovsqd, 2),
    ],
    [
        (Mn::Vpmovwb, 2),
        (Mn::Vpmovdb, 4),
        (Mn::Vpmovqb, 8),
        (Mn::Vpmovdw, 2),
        (Mn::Vpmovqw, 4),
        (Mn::Vpmovqd, 2),
    ],
];

fn evex(i: &Instruction) -> Option<Form> {
    let v: u16 = 16 << (i.vl & 3).min(2);
    if let Some(f) = vex_evex(i, v) {
        return Some(f);
    }
    let w = i.prefixes.contains(Prefixes::W);
    let pick = |a: Mn, b: Mn| if w { b } else { a };
    let e = if w { 8 } else { 4 };
    Some(match (i.map, i.opcode, i.pp) {
        (1, 0x6F, 1) => (pick(Mn::Vmovdqa32, Mn::Vmovdqa64), LD, v),
        (1, 0x7F, 1) => (pick(Mn::Vmovdqa32, Mn::Vmovdqa64), ST, v),
        (1, 0x6F, 2) => (pick(Mn::Vmovdqu32, Mn::Vmovdqu64), LD, v),
        (1, 0x7F, 2) => (pick(Mn::Vmovdqu32, Mn::Vmovdqu64), ST, v),
        (1, 0x6F, 3) => (pick(Mn::Vmovdqu8, Mn::Vmovdqu16), LD, v),
        (1, 0x7F, 3) => (pick(Mn::Vmovdqu8, Mn::Vmovdqu16), ST, v),
        (2, 0x18, 1) => (Mn::Vbroadcastss, LD, 4),
        (2, 0x19, 1) => (pick(Mn::Vbroadcastf32x2, Mn::Vbroadcastsd), LD, 8),
        (2, 0x1A, 1) => (pick(Mn::Vbroadcastf32x4, Mn::Vbroadcastf64x2), LD, 16),
        (2, 0x1B, 1) => (pick(Mn::Vbroadcastf32x8, Mn::Vbroadcastf64x4), LD, 32),
        (2, 0x58, 1) => (Mn::Vpbroadcastd, LD, 4),
        (2, 0x59, 1) => (pick(Mn::Vbroadcasti32x2, Mn::Vpbroadcastq), LD, 8),
        (2, 0x5A, 1) => (pick(Mn::Vbroadcasti32x4, Mn::Vbroadcasti64x2), LD, 16),
        (2, 0x5B, 1) => (pick(Mn::Vbroadcasti32x8, Mn::Vbroadcasti64x4), LD, 32),
        (2, 0x78, 1) => (Mn::Vpbroadcastb, LD, 1),
        (2, 0x79, 1) => (Mn::Vpbroadcastw, LD, 2),
        (2, 0x62, 1) => (pick(Mn::Vpexpandb, Mn::Vpexpandw), LD, v),
        (2, 0x63, 1) => (pick(Mn::Vpcompressb, Mn::Vpcompressw), ST, v),
        (2, 0x88, 1) => (pick(Mn::Vexpandps, Mn::Vexpandpd), LD, v),
        (2, 0x89, 1) => (pick(Mn::Vpexpandd, Mn::Vpexpandq), LD, v),
        (2, 0x8A, 1) => (pick(Mn::Vcompressps, Mn::Vcompresspd), ST, v),
        (2, 0x8B, 1) => (pick(Mn::Vpcompressd, Mn::Vpcompressq), ST, v),
        (2, op @ (0x10..=0x15 | 0x20..=0x25 | 0x30..=0x35), 2) => {
            let (m, div) = DOWN[usize::from(op >> 4) - 1][usize::from(op & 7)];
            (m, ST, v / div)
        }
        (2, 0x90..=0x93, 1) => {
            let m = GATHERS[usize::from(i.opcode & 3) * 2 + usize::from(w)];
            let specs: &[Spec] = if gather_dest_half(i) {
                &[V(Vh), M(Entry)]
            } else {
                &[V(Vl), M(Entry)]
            };
            (m, specs, e)
        }
        (2, 0xA0..=0xA3, 1) => {
            let m = SCATTERS[usize::from(i.opcode & 3) * 2 + usize::from(w)];
            let specs: &[Spec] = if gather_dest_half(i) {
                &[M(Entry), V(Vh)]
            } else {
                &[M(Entry), V(Vl)]
            };
            (m, specs, e)
        }
        (3, 0x18, 1) => (pick(Mn::Vinsertf32x4, Mn::Vinsertf64x2), INS, 16),
        (3, 0x1A, 1) => (pick(Mn::Vinsertf32x8, Mn::Vinsertf64x4), INS, 32),
        (3, 0x38, 1) => (pick(Mn::Vinserti32x4, Mn::Vinserti64x2), INS, 16),
        (3, 0x3A, 1) => (pick(Mn::Vinserti32x8, Mn::Vinserti64x4), INS, 32),
        (3, 0x19, 1) => (pick(Mn::Vextractf32x4, Mn::Vextractf64x2), EXT, 16),
        (3, 0x1B, 1) => (pick(Mn::Vextractf32x8, Mn::Vextractf64x4), EXT, 32),
        (3, 0x39, 1) => (pick(Mn::Vextracti32x4, Mn::Vextracti64x2), EXT, 16),
        (3, 0x3B, 1) => (pick(Mn::Vextracti32x8, Mn::Vextracti64x4), EXT, 32),
        (5, 0x10, 2) => (Mn::Vmovsh, LDX, 2),
        (5, 0x11, 2) => (Mn::Vmovsh, STX, 2),
        (5, 0x6E, 1) => (Mn::Vmovw, LDX, 2),
        (5, 0x7E, 1) => (Mn::Vmovw, STX, 2),
        _ => return None,
    })
}

/// An x87 memory form's mnemonic and memory size in bytes (environment and state images
/// depend on the operand size: 14/28 and 94/108 bytes).
fn x87_memory(i: &Instruction) -> Option<(Mn, u16)> {
    if i.modrm >= 0xC0 || !(0xD8..=0xDF).contains(&i.opcode) {
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
