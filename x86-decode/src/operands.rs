//! Semantic level, third part: the explicit operands of the general-purpose integer
//! instructions in the one-byte and `0F` maps (register, memory, immediate with its
//! sign extension, near-branch target) and of the SSE/AVX/AVX-512 memory moves, in Intel order.
//!
//! Implicit operands (string instructions' `[rSI]`/`[rDI]`, `CBW`'s `AX`, …) are not listed;
//! [`Instruction::operands`] returns `None` for instructions outside the covered set.

use crate::defs::{Encoding, Mode, Register};
use crate::instruction::{Instruction, Prefixes};

/// What an operand is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperandKind {
    /// A register ([`Operand::register`]).
    Register,
    /// The instruction's memory operand (see the `memory_*` accessors of [`Instruction`]).
    Memory,
    /// An immediate ([`Operand::value`], already sign-extended where the instruction
    /// sign-extends it).
    Immediate,
    /// A relative branch; [`Operand::value`] is the target.
    NearBranch,
}

/// One explicit operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operand {
    /// The operand's kind.
    pub kind: OperandKind,
    /// The register, for [`OperandKind::Register`].
    pub register: Register,
    /// The operand's size in bytes (for memory, the access size).
    pub size: u8,
    /// Immediate value (sign-extended to 64 bits when the instruction sign-extends it) or
    /// branch target.
    pub value: u64,
    /// The immediate was sign-extended from a smaller encoding.
    pub sign_extended: bool,
}

/// Up to four operands, `Copy`, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operands {
    ops: [Operand; 4],
    len: u8,
}

impl Operands {
    /// The operands as a slice, in Intel order (destination first).
    #[must_use]
    pub fn as_slice(&self) -> &[Operand] {
        &self.ops[..usize::from(self.len).min(4)]
    }

    fn push(&mut self, o: Operand) {
        if let Some(slot) = self.ops.get_mut(usize::from(self.len)) {
            *slot = o;
            self.len += 1;
        }
    }
}

/// Operand specifications (SDM Appendix A notation).
#[derive(Clone, Copy)]
enum Spec {
    /// ModRM r/m of the given size (0 = operand size).
    E(u8),
    /// ModRM reg of the given size (0 = operand size).
    G(u8),
    /// Register in the opcode's low 3 bits (+ REX.B) (0 = operand size).
    Z(u8),
    /// A fixed GPR number with the given size (0 = operand size, 0xFF = 16/32 by operand size).
    Fixed(u8, u8),
    /// 8-bit immediate, zero-extended.
    Ib,
    /// 8-bit immediate sign-extended to the operand size.
    Ibs,
    /// 16-bit immediate.
    Iw,
    /// 16/32-bit immediate, sign-extended to 64 bits with REX.W.
    Iz,
    /// 16/32/64-bit immediate (`MOV r, imm`).
    Iv,
    /// The constant 1 (shift by one).
    One,
    /// Relative branch.
    J,
    /// Memory without an access size (`LEA`).
    M,
    /// `moffs` memory of the given size (0 = operand size).
    O(u8),
}

use Spec::*;

fn operand_specs(i: &Instruction) -> Option<&'static [Spec]> {
    let op = i.opcode;
    let reg = (i.modrm >> 3) & 7;
    let long = i.mode == Mode::Bits64;
    Some(match i.map {
        0 => match op {
            0x00..=0x3D if op & 7 < 6 => match op & 7 {
                0 => &[E(1), G(1)],
                1 => &[E(0), G(0)],
                2 => &[G(1), E(1)],
                3 => &[G(0), E(0)],
                4 => &[Fixed(0, 1), Ib],
                _ => &[Fixed(0, 0), Iz],
            },
            0x40..=0x4F if !long => &[Z(0)],
            0x50..=0x5F => &[Z(0xFE)],
            0x63 if long => &[G(0), E(0xFD)],
            0x68 => &[Iz],
            0x6A => &[Ibs],
            0x69 => &[G(0), E(0), Iz],
            0x6B => &[G(0), E(0), Ibs],
            0x70..=0x7F | 0xE0..=0xE3 | 0xE8 | 0xE9 | 0xEB => &[J],
            0x80 => &[E(1), Ib],
            0x81 => &[E(0), Iz],
            0x83 => &[E(0), Ibs],
            0x84 | 0x86 | 0x88 => &[E(1), G(1)],
            0x85 | 0x87 | 0x89 => &[E(0), G(0)],
            0x8A => &[G(1), E(1)],
            0x8B => &[G(0), E(0)],
            0x8D => &[G(0), M],
            0x8F => &[E(0xFE)],
            0x90 if i.rex & 1 != 0 && i.pp != 2 => &[Z(0), Fixed(0, 0)],
            0x91..=0x97 => &[Z(0), Fixed(0, 0)],
            0xA0 => &[Fixed(0, 1), O(1)],
            0xA1 => &[Fixed(0, 0), O(0)],
            0xA2 => &[O(1), Fixed(0, 1)],
            0xA3 => &[O(0), Fixed(0, 0)],
            0xA8 => &[Fixed(0, 1), Ib],
            0xA9 => &[Fixed(0, 0), Iz],
            0xB0..=0xB7 => &[Z(1), Ib],
            0xB8..=0xBF => &[Z(0), Iv],
            0xC0 => &[E(1), Ib],
            0xC1 => &[E(0), Ib],
            0xC2 => &[Iw],
            0xC8 => &[],
            0xC6 if i.modrm != 0xF8 => &[E(1), Ib],
            0xC7 if i.modrm != 0xF8 => &[E(0), Iz],
            0xCD => &[Ib],
            0xD0 => &[E(1), One],
            0xD1 => &[E(0), One],
            0xD2 => &[E(1), Fixed(1, 1)],
            0xD3 => &[E(0), Fixed(1, 1)],
            0xE4 => &[Fixed(0, 1), Ib],
            0xE5 => &[Fixed(0, 0xFF), Ib],
            0xE6 => &[Ib, Fixed(0, 1)],
            0xE7 => &[Ib, Fixed(0, 0xFF)],
            0xEC => &[Fixed(0, 1), Fixed(2, 2)],
            0xED => &[Fixed(0, 0xFF), Fixed(2, 2)],
            0xEE => &[Fixed(2, 2), Fixed(0, 1)],
            0xEF => &[Fixed(2, 2), Fixed(0, 0xFF)],
            0xF6 if reg < 2 => &[E(1), Ib],
            0xF7 if reg < 2 => &[E(0), Iz],
            0xF6 => &[E(1)],
            0xF7 => &[E(0)],
            0xFE if reg < 2 => &[E(1)],
            0xFF if reg < 2 => &[E(0)],
            0xFF if reg == 2 || reg == 4 => &[E(0xFC)],
            0xFF if reg == 6 => &[E(0xFE)],
            _ => return None,
        },
        1 => match op {
            0x40..=0x4F | 0xAF | 0xBC | 0xBD | 0xB8 => &[G(0), E(0)],
            0x80..=0x8F => &[J],
            0x90..=0x9F => &[E(1)],
            0xA3 | 0xAB | 0xB3 | 0xBB => &[E(0), G(0)],
            0xBA if reg >= 4 => &[E(0), Ib],
            0xA4 | 0xAC => &[E(0), G(0), Ib],
            0xA5 | 0xAD => &[E(0), G(0), Fixed(1, 1)],
            0xB0 | 0xC0 => &[E(1), G(1)],
            0xB1 | 0xC1 => &[E(0), G(0)],
            0xB6 | 0xBE => &[G(0), E(1)],
            0xB7 | 0xBF => &[G(0), E(2)],
            0xC8..=0xCF => &[Z(0)],
            _ => return None,
        },
        _ => return None,
    })
}

/// The explicit operands of a covered general-purpose instruction.
pub(crate) fn operands(i: &Instruction) -> Option<Operands> {
    if let Some(ops) = vector_move_operands(i) {
        return Some(ops);
    }
    if i.encoding != Encoding::Legacy || i.prefixes.contains(Prefixes::LOCK) && !i.has_memory() {
        return None;
    }
    let specs = operand_specs(i)?;
    let long = i.mode == Mode::Bits64;
    let os = i.osize;
    // Stack operations (0xFE) use 64-bit operands in 64-bit mode unless 66 is present;
    // near indirect branches (0xFC) always use 64-bit operands there on Intel.
    let stack = if long && os != 2 { 8 } else { os };
    let size_of = |s: u8| -> u8 {
        match s {
            0 => os,
            0xFE => stack,
            0xFC if long => 8,
            0xFC => os,
            0xFD => os.min(4),
            0xFF => os.min(4),
            n => n,
        }
    };
    let rex = i.rex;
    let gpr = |size: u8, num: u8| -> Register {
        if size == 1 && rex == 0 && (4..8).contains(&num) {
            Register::high_byte(num)
        } else {
            Register::gpr(size, num)
        }
    };
    let reg_op = |r: Register| Operand {
        kind: OperandKind::Register,
        register: r,
        size: r.size(),
        value: 0,
        sign_extended: false,
    };
    let imm = |value: u64, size: u8, sign_extended: bool| Operand {
        kind: OperandKind::Immediate,
        register: Register::NONE,
        size,
        value,
        sign_extended,
    };
    let mem = |size: u8| Operand {
        kind: OperandKind::Memory,
        register: Register::NONE,
        size,
        value: 0,
        sign_extended: false,
    };
    let modrm = i.modrm;
    let mut out = Operands {
        ops: [mem(0); 4],
        len: 0,
    };
    for s in specs {
        let o = match *s {
            E(sz) => {
                let size = size_of(sz);
                if i.has_memory() {
                    mem(size)
                } else {
                    reg_op(gpr(size, modrm & 7 | (rex & 1) << 3))
                }
            }
            G(sz) => reg_op(gpr(size_of(sz), (modrm >> 3) & 7 | (rex & 4) << 1)),
            Z(sz) => reg_op(gpr(size_of(sz), i.opcode & 7 | (rex & 1) << 3)),
            Fixed(num, sz) => reg_op(Register::gpr(size_of(sz), num)),
            Ib => imm(i.imm & 0xFF, 1, false),
            Ibs => imm(
                i.imm as u8 as i8 as i64 as u64,
                size_of(if i.opcode == 0x6A { 0xFE } else { 0 }),
                true,
            ),
            Iw => imm(i.imm & 0xFFFF, 2, false),
            Iz => {
                let size = if i.opcode == 0x68 { stack } else { os };
                if size == 8 {
                    imm(i.imm as u32 as i32 as i64 as u64, 8, true)
                } else {
                    imm(i.imm, size, false)
                }
            }
            Iv => imm(i.imm, os, false),
            One => imm(1, 1, false),
            J => Operand {
                kind: OperandKind::NearBranch,
                register: Register::NONE,
                size: i.osize,
                value: i.near_branch_target().unwrap_or(0),
                sign_extended: false,
            },
            M => mem(0),
            O(sz) => mem(size_of(sz)),
        };
        out.push(o);
    }
    if i.opcode == 0xC8 && i.map == 0 {
        // ENTER has two immediates (not in the table above).
        out.push(imm(i.imm & 0xFFFF, 2, false));
        out.push(imm(u64::from(i.imm2), 1, false));
    }
    Some(out)
}

/// Operands of the SSE/AVX/AVX-512 memory moves (XMM/YMM/ZMM forms; the MMX forms are not
/// covered): the vector register from ModRM.reg, the memory operand, and for the masked moves
/// the mask register from `vvvv`. EVEX opmasks are not operands (see
/// [`Instruction::op_mask`]).
fn vector_move_operands(i: &Instruction) -> Option<Operands> {
    let (_, size) = crate::vector::vector_move(i)?;
    let (map, op, pp) = (i.map, i.opcode, i.pp);
    // MMX forms: no MMX register class here.
    if i.encoding == Encoding::Legacy && pp == 0 && matches!(op, 0x6E | 0x6F | 0x7E | 0x7F | 0xE7) {
        return None;
    }
    let long = i.mode == Mode::Bits64;
    let vl: u8 = match i.encoding {
        Encoding::Legacy => 16,
        Encoding::Vex => 16 << (i.vl & 1),
        _ => 16 << (i.vl & 3).min(2),
    };
    // GPR-sized moves (MOVD/MOVQ/VMOVW) and scalar or half moves use an XMM register.
    let full = size >= 16;
    let reg_size = if full { vl } else { 16 };
    let r = (i.rex >> 2) & 1;
    let rp = (i.rex >> 4) & 1;
    let mut num = (i.modrm >> 3) & 7 | r << 3;
    if i.encoding == Encoding::Evex && long {
        num |= rp << 4;
    }
    let reg = Operand {
        kind: OperandKind::Register,
        register: Register::vector(reg_size, num),
        size: reg_size,
        value: 0,
        sign_extended: false,
    };
    let mem = Operand {
        kind: OperandKind::Memory,
        register: Register::NONE,
        size: u8::try_from(size).unwrap_or(0),
        value: 0,
        sign_extended: false,
    };
    let mask = Operand {
        kind: OperandKind::Register,
        register: Register::vector(vl, i.vvvv & 15),
        size: vl,
        value: 0,
        sign_extended: false,
    };
    let store = match (map, op) {
        (1, 0x11 | 0x13 | 0x17 | 0x29 | 0x2B | 0x7F | 0xD6 | 0xE7) | (5, 0x11 | 0x7E) => true,
        (1, 0x7E) => pp != 2,
        (2, 0x2E | 0x2F | 0x8E) => true,
        _ => false,
    };
    let masked = i.encoding == Encoding::Vex && map == 2 && matches!(op, 0x2C..=0x2F | 0x8C | 0x8E);
    // VEX/EVEX MOVLPx/MOVHPx loads merge with the register named by vvvv.
    let merge = i.encoding != Encoding::Legacy && map == 1 && matches!(op, 0x12 | 0x16) && pp < 2;
    if merge {
        let src = Operand {
            register: Register::vector(16, i.vvvv & 31),
            size: 16,
            ..reg
        };
        let mut out = Operands {
            ops: [mem; 4],
            len: 0,
        };
        [reg, src, mem].into_iter().for_each(|o| out.push(o));
        return Some(out);
    }
    let mut out = Operands {
        ops: [mem; 4],
        len: 0,
    };
    match (store, masked) {
        (false, false) => [reg, mem].into_iter().for_each(|o| out.push(o)),
        (true, false) => [mem, reg].into_iter().for_each(|o| out.push(o)),
        (false, true) => [reg, mask, mem].into_iter().for_each(|o| out.push(o)),
        (true, true) => [mem, mask, reg].into_iter().for_each(|o| out.push(o)),
    }
    Some(out)
}

impl Instruction {
    /// The explicit operands in Intel order, for the general-purpose integer instructions of
    /// the one-byte and `0F` maps and the SSE/AVX/AVX-512 memory moves; `None` outside that
    /// set.
    #[must_use]
    pub fn operands(&self) -> Option<Operands> {
        operands(self)
    }
}
