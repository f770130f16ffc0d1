//! Semantic level: operand lists. Each covered instruction names its operands with a short
//! list of [`Spec`]s (SDM Appendix A notation, see `gp.rs` and `vector.rs`); this module turns
//! a list into [`Operand`]s for a decoded instruction.
//!
//! The list is what Intel syntax writes: explicit operands in order, plus the implicit memory
//! operands of the string instructions (`[rSI]`, `es:[rDI]`) and of `MASKMOVQ`/`MASKMOVDQU`
//! (`[rDI]`). Other implicit registers (`CPUID`'s `EAX`, `CBW`'s `AX`) are not listed.

use crate::defs::{Encoding, Mode, Register, Segment};
use crate::instruction::Instruction;

/// What an operand is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperandKind {
    /// A register ([`Operand::register`]).
    Register,
    /// The instruction's ModRM or `moffs` memory operand (see the `memory_*` accessors of
    /// [`Instruction`]).
    Memory,
    /// An immediate ([`Operand::value`], already sign-extended where the instruction
    /// sign-extends it).
    Immediate,
    /// A relative branch; [`Operand::value`] is the target.
    NearBranch,
    /// A direct far pointer (`CALL`/`JMP ptr16:16/32`): [`Operand::value`] is the offset and
    /// the selector is [`Instruction::immediate2`].
    FarBranch,
    /// String source `seg:[rSI]`: [`Operand::register`] is `SI`/`ESI`/`RSI` (address size),
    /// [`Operand::segment`] the override or `DS`.
    StringSource,
    /// String destination `es:[rDI]` (never overridable): [`Operand::register`] is
    /// `DI`/`EDI`/`RDI`, [`Operand::segment`] is `ES`.
    StringDestination,
    /// `seg:[rDI]` (`MASKMOVQ`, `MASKMOVDQU`): like [`OperandKind::StringDestination`] but the
    /// segment is the override or `DS`.
    ImplicitDestination,
}

/// One operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operand {
    /// The operand's kind.
    pub kind: OperandKind,
    /// The register, for [`OperandKind::Register`]; the address register for the implicit
    /// memory kinds.
    pub register: Register,
    /// The operand's size in bytes (for memory, the access size; 0 where the access size is
    /// not fixed by the encoding, as for `LEA`, `INVLPG` or `XSAVE`).
    pub size: u16,
    /// Immediate value (sign-extended to 64 bits when the instruction sign-extends it),
    /// branch target, or far-pointer offset.
    pub value: u64,
    /// The immediate was sign-extended from a smaller encoding.
    pub sign_extended: bool,
    /// The segment of the implicit memory kinds ([`Segment::NONE`] otherwise; a ModRM memory
    /// operand's segment is [`Instruction::memory_segment`]).
    pub segment: Segment,
}

impl Operand {
    const EMPTY: Self = Self {
        kind: OperandKind::Memory,
        register: Register::NONE,
        size: 0,
        value: 0,
        sign_extended: false,
        segment: Segment::NONE,
    };

    const fn reg(r: Register) -> Self {
        Self {
            kind: OperandKind::Register,
            register: r,
            size: r.size() as u16,
            ..Self::EMPTY
        }
    }

    const fn imm(value: u64, size: u16, sign_extended: bool) -> Self {
        Self {
            kind: OperandKind::Immediate,
            size,
            value,
            sign_extended,
            ..Self::EMPTY
        }
    }
}

/// Up to five operands, `Copy`, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operands {
    ops: [Operand; 5],
    len: u8,
}

impl Operands {
    /// The operands as a slice, in Intel order (destination first).
    #[must_use]
    pub fn as_slice(&self) -> &[Operand] {
        &self.ops[..usize::from(self.len).min(5)]
    }

    fn push(&mut self, o: Operand) {
        if let Some(slot) = self.ops.get_mut(usize::from(self.len)) {
            *slot = o;
            self.len += 1;
        }
    }
}

/// A size rule for general-purpose operands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sz {
    /// The operand size (2, 4 or 8).
    Os,
    /// A fixed size in bytes.
    B(u16),
    /// Stack operations: 8 in 64-bit mode unless `66`, else the operand size.
    Stk,
    /// Near indirect branches: 8 in 64-bit mode (Intel ignores `66`), else the operand size.
    Br,
    /// 16 or 32 bits: the operand size capped at 4.
    D,
    /// Far pointer: operand size + 2 (AMD: at most `m16:32`).
    Far,
    /// The offset register of `LSS`/`LFS`/`LGS`: the operand size (AMD: at most 4).
    Lx,
    /// Descriptor-table register image: 6 bytes, 10 in 64-bit mode.
    Dtr,
    /// Two operand-size values (`BOUND`).
    Dbl,
    /// `CMPXCHG8B`/`CMPXCHG16B`: 8, or 16 with REX.W.
    Cx,
    /// The mode's natural word: 8 in 64-bit mode, else 4.
    Mw,
    /// 4 bytes, or 8 with REX.W in 64-bit mode (`MOVD`/`MOVQ`, `PEXTRD`/`PEXTRQ`).
    Dq,
    /// The full vector length (16, 32 or 64 bytes).
    Vl,
    /// Half the vector length, at least 16 bytes.
    Vh,
    /// The size given by the instruction's table entry (vector and x87 memory operands).
    Entry,
    /// 2 bytes in memory, the operand size in a register (`MOV Sreg`, `SLDT`, `LAR`, ...).
    W16,
    /// The address size (`MOVDIR64B`'s destination-address register).
    As,
}

/// Operand specifications (SDM Appendix A notation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    /// ModRM r/m: GPR or memory.
    E(Sz),
    /// ModRM reg: GPR.
    G(Sz),
    /// Register in the opcode's low 3 bits (+ REX.B).
    Z(Sz),
    /// A fixed GPR number.
    Fixed(u8, Sz),
    /// VEX/EVEX `vvvv`: GPR.
    By(Sz),
    /// ModRM r/m that is always memory.
    M(Sz),
    /// `moffs` memory.
    O(Sz),
    /// ModRM reg: segment register.
    Sw,
    /// A fixed segment register.
    Seg(Segment),
    /// ModRM reg: control register (REX.R, or AMD `LOCK`, selects CR8).
    Cr,
    /// ModRM reg: debug register.
    Dr,
    /// ModRM rm: GPR of the mode's word size (`MOV` to/from CR/DR).
    Rd,
    /// ModRM reg: vector register (XMM/YMM/ZMM by size).
    V(Sz),
    /// VEX/EVEX `vvvv`: vector register.
    H(Sz),
    /// ModRM rm: vector register (`MASKMOVDQU`).
    U(Sz),
    /// ModRM reg: MMX register.
    P,
    /// ModRM rm: MMX register.
    N,
    /// ModRM reg: opmask register.
    Kr,
    /// String source `seg:[rSI]`.
    Xs(Sz),
    /// String destination `es:[rDI]`.
    Yd(Sz),
    /// `seg:[rDI]` (masked stores).
    Di(Sz),
    /// 8-bit immediate, zero-extended.
    Ib,
    /// 8-bit immediate sign-extended to the operand size (`PUSH imm8`: the stack size).
    Ibs,
    /// 16-bit immediate.
    Iw,
    /// 16/32-bit immediate, sign-extended to 64 bits with REX.W.
    Iz,
    /// 16/32/64-bit immediate (`MOV r, imm`).
    Iv,
    /// 32-bit immediate, not extended (XOP `BEXTR`, `LWPINS`).
    Id,
    /// The second immediate (`ENTER`'s 8-bit nesting level).
    I2,
    /// The constant 1 (shift by one).
    One,
    /// Relative branch.
    J,
    /// Direct far pointer.
    A,
}

/// The operand size of far-pointer offsets: AMD ignores REX.W there.
fn lx(i: &Instruction) -> u16 {
    let os = u16::from(i.osize);
    if i.amd {
        os.min(4)
    } else {
        os
    }
}

fn size_of(i: &Instruction, s: Sz, entry: u16) -> u16 {
    let os = u16::from(i.osize);
    let long = i.mode == Mode::Bits64;
    let vl = match i.encoding {
        Encoding::Vex | Encoding::Xop => 16 << (i.vl & 1),
        Encoding::Evex => 16 << (i.vl & 3).min(2),
        _ => 16,
    };
    match s {
        Sz::Os => os,
        Sz::B(n) => n,
        Sz::Stk => {
            if long && os != 2 {
                8
            } else {
                os
            }
        }
        // AMD honours `66` on near indirect branches in 64-bit mode.
        Sz::Br => {
            if long && !(i.amd && os == 2) {
                8
            } else {
                os
            }
        }
        Sz::D => os.min(4),
        // AMD ignores REX.W for far pointers (`m16:32` at most).
        Sz::Far => lx(i) + 2,
        Sz::Lx => lx(i),
        Sz::Dtr => {
            if long {
                10
            } else {
                6
            }
        }
        Sz::Dbl => 2 * os,
        Sz::Cx => {
            if i.rex & 8 != 0 {
                16
            } else {
                8
            }
        }
        Sz::Mw => {
            if long {
                8
            } else {
                4
            }
        }
        Sz::Dq => {
            if long && i.rex & 8 != 0 {
                8
            } else {
                4
            }
        }
        Sz::Vl => vl,
        Sz::Vh => (vl / 2).max(16),
        Sz::Entry => entry,
        Sz::W16 => {
            if i.has_memory() {
                2
            } else {
                os
            }
        }
        Sz::As => u16::from(i.asize),
    }
}

/// The access size of the memory operand named in `specs`, if any.
pub(crate) fn memory_size(i: &Instruction, specs: &[Spec], entry: u16) -> Option<u16> {
    specs.iter().find_map(|s| match *s {
        Spec::E(sz) | Spec::M(sz) if i.has_memory() => Some(size_of(i, sz, entry)),
        Spec::O(sz) | Spec::Xs(sz) | Spec::Yd(sz) | Spec::Di(sz) => Some(size_of(i, sz, entry)),
        _ => None,
    })
}

/// The size an `Ibs`/`Iz` immediate is extended to: the stack size for `PUSH imm`, else the
/// operand size.
fn imm_size(i: &Instruction) -> u16 {
    if i.map == 0 && matches!(i.opcode, 0x68 | 0x6A) {
        size_of(i, Sz::Stk, 0)
    } else {
        u16::from(i.osize)
    }
}

fn gpr(i: &Instruction, size: u16, num: u8) -> Register {
    if size == 1 && i.rex == 0 && (4..8).contains(&num) {
        Register::high_byte(num)
    } else {
        Register::gpr(size as u8, num)
    }
}

fn vreg(size: u16, num: u8) -> Register {
    Register::vector(size as u8, num)
}

/// Builds the operand list of `i` from `specs`.
pub(crate) fn build(i: &Instruction, specs: &[Spec], entry: u16) -> Operands {
    let long = i.mode == Mode::Bits64;
    let modrm = i.modrm;
    let rex = i.rex;
    let (r, x, b) = (rex >> 2 & 1, rex >> 1 & 1, rex & 1);
    let evex = i.encoding == Encoding::Evex;
    let reg_num = (modrm >> 3) & 7 | r << 3 | if evex && long { (rex >> 4 & 1) << 4 } else { 0 };
    let rm_num = modrm & 7 | b << 3 | if evex && long { x << 4 } else { 0 };
    let mem = |size: u16| Operand {
        size,
        ..Operand::EMPTY
    };
    let asz = i.asize;
    let implicit = |kind: OperandKind, num: u8, size: u16, segment: Segment| Operand {
        kind,
        register: Register::gpr(asz, num),
        size,
        segment,
        ..Operand::EMPTY
    };
    let ds_or_override = if i.seg_prefix == Segment::NONE {
        Segment::DS
    } else {
        i.seg_prefix
    };
    let mut out = Operands {
        ops: [Operand::EMPTY; 5],
        len: 0,
    };
    for s in specs {
        let o = match *s {
            Spec::E(sz) => {
                let size = size_of(i, sz, entry);
                if i.has_memory() {
                    mem(size)
                } else {
                    Operand::reg(gpr(i, size, modrm & 7 | b << 3))
                }
            }
            Spec::G(sz) => Operand::reg(gpr(i, size_of(i, sz, entry), (modrm >> 3) & 7 | r << 3)),
            Spec::Z(sz) => Operand::reg(gpr(i, size_of(i, sz, entry), i.opcode & 7 | b << 3)),
            Spec::Fixed(num, sz) => Operand::reg(Register::gpr(size_of(i, sz, entry) as u8, num)),
            Spec::By(sz) => Operand::reg(Register::gpr(size_of(i, sz, entry) as u8, i.vvvv & 15)),
            Spec::M(sz) | Spec::O(sz) => mem(size_of(i, sz, entry)),
            Spec::Sw => Operand::reg(Register::segment(Segment((modrm >> 3) & 7))),
            Spec::Seg(s) => Operand::reg(Register::segment(s)),
            Spec::Cr => {
                let amd_cr8 = i.prefixes.contains(crate::Prefixes::LOCK);
                let n = (modrm >> 3) & 7 | r << 3 | u8::from(amd_cr8) << 3;
                Operand::reg(Register::control(n))
            }
            Spec::Dr => Operand::reg(Register::debug((modrm >> 3) & 7 | r << 3)),
            Spec::Rd => Operand::reg(Register::gpr(if long { 8 } else { 4 }, modrm & 7 | b << 3)),
            Spec::V(sz) => Operand::reg(vreg(size_of(i, sz, entry), reg_num)),
            Spec::H(sz) => Operand::reg(vreg(size_of(i, sz, entry), i.vvvv)),
            Spec::U(sz) => Operand::reg(vreg(size_of(i, sz, entry), rm_num)),
            Spec::P => Operand::reg(Register::mmx(modrm >> 3)),
            Spec::N => Operand::reg(Register::mmx(modrm)),
            Spec::Kr => Operand::reg(Register::opmask(modrm >> 3)),
            Spec::Xs(sz) => implicit(
                OperandKind::StringSource,
                6,
                size_of(i, sz, entry),
                ds_or_override,
            ),
            Spec::Yd(sz) => implicit(
                OperandKind::StringDestination,
                7,
                size_of(i, sz, entry),
                Segment::ES,
            ),
            Spec::Di(sz) => implicit(
                OperandKind::ImplicitDestination,
                7,
                size_of(i, sz, entry),
                ds_or_override,
            ),
            Spec::Ib => Operand::imm(i.imm & 0xFF, 1, false),
            Spec::Ibs => Operand::imm(i.imm as u8 as i8 as i64 as u64, imm_size(i), true),
            Spec::Iw => Operand::imm(i.imm & 0xFFFF, 2, false),
            Spec::Iz => {
                let size = imm_size(i);
                if size == 8 {
                    Operand::imm(i.imm as u32 as i32 as i64 as u64, 8, true)
                } else {
                    Operand::imm(i.imm, size, false)
                }
            }
            Spec::Iv => Operand::imm(i.imm, u16::from(i.osize), false),
            Spec::Id => Operand::imm(i.imm & 0xFFFF_FFFF, 4, false),
            Spec::I2 => Operand::imm(u64::from(i.imm2), 1, false),
            Spec::One => Operand::imm(1, 1, false),
            Spec::J => Operand {
                kind: OperandKind::NearBranch,
                size: u16::from(i.osize),
                value: i.near_branch_target().unwrap_or(0),
                ..Operand::EMPTY
            },
            Spec::A => Operand {
                kind: OperandKind::FarBranch,
                size: u16::from(i.imm_size),
                value: i.imm,
                ..Operand::EMPTY
            },
        };
        out.push(o);
    }
    out
}

impl Instruction {
    /// The operands in Intel order, for the instructions of the semantic level (see the crate
    /// documentation); `None` outside that set.
    #[must_use]
    pub fn operands(&self) -> Option<Operands> {
        let (_, specs, entry) = crate::semantic::form(self)?;
        Some(build(self, specs, entry))
    }
}
