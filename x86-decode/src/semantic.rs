//! Semantic level: mnemonic identity, operands, memory access size and RFLAGS effects.
//!
//! Covered: the general-purpose integer, string and system instructions (`gp.rs`), the x87
//! memory forms and the MMX/SSE/AVX/AVX-512 instructions that move data to or from memory
//! (`vector.rs`). [`Instruction::mnemonic`] returns `None` for anything else, so a caller can
//! tell "not covered" from a wrong answer. Names, operands and flag effects follow the Intel
//! SDM Vol. 2 instruction pages and Appendix A; `tests/differential.rs` compares all of them
//! with iced-x86 on millions of instructions.

use crate::defs::Encoding;
use crate::instruction::Instruction;
pub use crate::mnemonic::Mnemonic;
use crate::operands::Spec;

use Mnemonic as Mn;

/// The semantic form of `i`: mnemonic, operand specifications, and the table entry's memory
/// size (used by [`crate::operands::Sz::Entry`]).
pub(crate) fn form(i: &Instruction) -> Option<(Mnemonic, &'static [Spec], u16)> {
    if let Some(f) = crate::vector::form(i) {
        return Some(f);
    }
    if i.encoding == Encoding::Legacy && i.map == 0 && (0xD8..=0xDF).contains(&i.opcode) {
        return None;
    }
    let (m, specs) = crate::gp::form(i)?;
    Some((m, specs, 0))
}

/// RFLAGS bits, at their architectural positions.
pub mod rflags {
    /// Carry.
    pub const CF: u32 = 1 << 0;
    /// Parity.
    pub const PF: u32 = 1 << 2;
    /// Auxiliary carry.
    pub const AF: u32 = 1 << 4;
    /// Zero.
    pub const ZF: u32 = 1 << 6;
    /// Sign.
    pub const SF: u32 = 1 << 7;
    /// Interrupt enable.
    pub const IF: u32 = 1 << 9;
    /// Direction.
    pub const DF: u32 = 1 << 10;
    /// Overflow.
    pub const OF: u32 = 1 << 11;
    /// Alignment check / access control.
    pub const AC: u32 = 1 << 18;
    /// The six arithmetic status flags.
    pub const STATUS: u32 = CF | PF | AF | ZF | SF | OF;
}

/// Which RFLAGS bits an instruction reads, writes (sets, clears or computes) and leaves
/// undefined. Bits are the architectural positions (see [`rflags`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlagsEffect {
    /// Flags whose value the instruction uses.
    pub read: u32,
    /// Flags the instruction writes with a defined value.
    pub written: u32,
    /// Flags the instruction leaves undefined.
    pub undefined: u32,
}

/// The flags read by condition code `cc` (the low nibble of `Jcc`/`SETcc`/`CMOVcc`).
const fn cc_reads(cc: u8) -> u32 {
    use rflags::*;
    match cc >> 1 {
        0 => OF,
        1 => CF,
        2 => ZF,
        3 => CF | ZF,
        4 => SF,
        5 => PF,
        6 => SF | OF,
        _ => ZF | SF | OF,
    }
}

/// A shift or rotate's count as far as the encoding fixes it: `Some(1)` for `D0`/`D1`, the
/// masked immediate (reduced modulo 9 or 17 for 8- and 16-bit `RCL`/`RCR`) for the immediate
/// forms, `None` for a count in `CL`.
fn shift_count(i: &Instruction, m: Mnemonic) -> Option<u8> {
    let imm = match (i.map, i.opcode) {
        (0, 0xD0 | 0xD1) => return Some(1),
        (0, 0xC0 | 0xC1) | (1, 0xA4 | 0xAC) => i.imm as u8,
        _ => return None,
    };
    let size = if i.map == 0 && i.opcode == 0xC0 {
        1
    } else {
        i.osize
    };
    let masked = imm & if size == 8 { 63 } else { 31 };
    Some(match (m, size) {
        (Mn::Rcl | Mn::Rcr, 1) => masked % 9,
        (Mn::Rcl | Mn::Rcr, 2) => masked % 17,
        _ => masked,
    })
}

/// The RFLAGS effects of a covered instruction.
fn flags(i: &Instruction, m: Mnemonic) -> FlagsEffect {
    use rflags::*;
    let f = |read, written, undefined| FlagsEffect {
        read,
        written,
        undefined,
    };
    const ALL: u32 = STATUS | DF | IF | AC;
    let cc = i.opcode & 15;
    match m {
        Mn::Add | Mn::Sub | Mn::Cmp | Mn::Neg | Mn::Xadd | Mn::Cmpxchg => f(0, STATUS, 0),
        Mn::Adc | Mn::Sbb => f(CF, STATUS, 0),
        Mn::And | Mn::Or | Mn::Xor | Mn::Test => f(0, STATUS & !AF, AF),
        Mn::Inc | Mn::Dec => f(0, STATUS & !CF, 0),
        Mn::Mul | Mn::Imul => f(0, CF | OF, SF | ZF | AF | PF),
        Mn::Div | Mn::Idiv => f(0, 0, STATUS),
        Mn::Bt | Mn::Bts | Mn::Btr | Mn::Btc => f(0, CF, OF | SF | AF | PF),
        Mn::Bsf | Mn::Bsr => f(0, ZF, CF | OF | SF | AF | PF),
        Mn::Tzcnt | Mn::Lzcnt => f(0, ZF | CF, OF | SF | AF | PF),
        Mn::Popcnt => f(0, STATUS, 0),
        Mn::Rol
        | Mn::Ror
        | Mn::Rcl
        | Mn::Rcr
        | Mn::Shl
        | Mn::Sal
        | Mn::Shr
        | Mn::Sar
        | Mn::Shld
        | Mn::Shrd => {
            let count = shift_count(i, m);
            let read = if matches!(m, Mn::Rcl | Mn::Rcr) {
                CF
            } else {
                0
            };
            let rotate = matches!(m, Mn::Rol | Mn::Ror | Mn::Rcl | Mn::Rcr);
            match (count, rotate) {
                (Some(0), _) => f(0, 0, 0),
                (Some(1), true) => f(read, CF | OF, 0),
                (_, true) => f(read, CF, OF),
                (Some(1), false) => f(0, STATUS & !AF, AF),
                (_, false) => f(0, SF | ZF | PF | CF, OF | AF),
            }
        }
        Mn::Cmpxchg8b | Mn::Cmpxchg16b => f(0, ZF, 0),
        Mn::Lar | Mn::Lsl | Mn::Verr | Mn::Verw | Mn::Arpl => f(0, ZF, 0),
        Mn::Clc | Mn::Stc => f(0, CF, 0),
        Mn::Cmc => f(CF, CF, 0),
        Mn::Cld | Mn::Std => f(0, DF, 0),
        Mn::Cli | Mn::Sti | Mn::Sysenter => f(0, IF, 0),
        Mn::Clac | Mn::Stac => f(0, AC, 0),
        Mn::Sahf => f(0, SF | ZF | AF | PF | CF, 0),
        Mn::Lahf => f(SF | ZF | AF | PF | CF, 0, 0),
        Mn::Salc => f(CF, 0, 0),
        Mn::Into => f(OF, 0, 0),
        Mn::Daa | Mn::Das => f(AF | CF, SF | ZF | AF | PF | CF, OF),
        Mn::Aaa | Mn::Aas => f(AF, AF | CF, OF | SF | ZF | PF),
        Mn::Aam | Mn::Aad => f(0, SF | ZF | PF, OF | AF | CF),
        Mn::Movsb
        | Mn::Movsw
        | Mn::Movsd
        | Mn::Movsq
        | Mn::Stosb
        | Mn::Stosw
        | Mn::Stosd
        | Mn::Stosq
        | Mn::Lodsb
        | Mn::Lodsw
        | Mn::Lodsd
        | Mn::Lodsq
        | Mn::Insb
        | Mn::Insw
        | Mn::Insd
        | Mn::Outsb
        | Mn::Outsw
        | Mn::Outsd
            if i.encoding == Encoding::Legacy && i.map == 0 =>
        {
            f(DF, 0, 0)
        }
        Mn::Cmpsb
        | Mn::Cmpsw
        | Mn::Cmpsd
        | Mn::Cmpsq
        | Mn::Scasb
        | Mn::Scasw
        | Mn::Scasd
        | Mn::Scasq => f(DF, STATUS, 0),
        _ if i.encoding == Encoding::Legacy
            && (i.map == 0 && matches!(i.opcode, 0x70..=0x7F)
                || i.map == 1 && matches!(i.opcode, 0x40..=0x4F | 0x80..=0x9F)) =>
        {
            f(cc_reads(cc), 0, 0)
        }
        Mn::Loope | Mn::Loopne => f(ZF, 0, 0),
        Mn::Mov if i.map == 1 => f(0, 0, STATUS),
        // 16-bit FLAGS images have no AC.
        Mn::Pushf => f(ALL & !AC, 0, 0),
        Mn::Popf | Mn::Iret => f(0, ALL & !AC, 0),
        Mn::Pushfd | Mn::Pushfq => f(ALL, 0, 0),
        Mn::Popfd
        | Mn::Popfq
        | Mn::Iretd
        | Mn::Iretq
        | Mn::Rsm
        | Mn::Sysret
        | Mn::Sysretq
        | Mn::Skinit
        | Mn::Erets
        | Mn::Eretu => f(0, ALL, 0),
        Mn::Uiret => f(0, STATUS | DF | AC, 0),
        Mn::Saveprevssp => f(CF, 0, 0),
        Mn::Psmash | Mn::Rmpadjust | Mn::Rmpupdate => f(0, STATUS & !CF, 0),
        Mn::Syscall => f(ALL, ALL, 0),
        Mn::Vmrun => f(ALL, 0, 0),
        Mn::Vmcall
        | Mn::Vmlaunch
        | Mn::Vmresume
        | Mn::Vmxoff
        | Mn::Vmread
        | Mn::Vmwrite
        | Mn::Vmptrld
        | Mn::Vmptrst
        | Mn::Vmclear
        | Mn::Vmxon
        | Mn::Invept
        | Mn::Invvpid
        | Mn::Rdrand
        | Mn::Rdseed
        | Mn::Rdpru
        | Mn::Pconfig
        | Mn::Encls
        | Mn::Enclu
        | Mn::Xtest
        | Mn::Vmfunc
        | Mn::Enqcmd
        | Mn::Enqcmds
        | Mn::Pvalidate
        | Mn::Seamret
        | Mn::Seamops
        | Mn::Seamcall
        | Mn::Enclv
        | Mn::Testui
        | Mn::Umwait
        | Mn::Tpause
        | Mn::Mcommit
        | Mn::Rstorssp
        | Mn::Clrssbsy
        | Mn::Cmpoxadd
        | Mn::Cmpnoxadd
        | Mn::Cmpbxadd
        | Mn::Cmpnbxadd
        | Mn::Cmpzxadd
        | Mn::Cmpnzxadd
        | Mn::Cmpbexadd
        | Mn::Cmpnbexadd
        | Mn::Cmpsxadd
        | Mn::Cmpnsxadd
        | Mn::Cmppxadd
        | Mn::Cmpnpxadd
        | Mn::Cmplxadd
        | Mn::Cmpnlxadd
        | Mn::Cmplexadd
        | Mn::Cmpnlexadd => f(0, STATUS, 0),
        Mn::Andn => f(0, SF | ZF | OF | CF, AF | PF),
        Mn::Blsr | Mn::Blsmsk | Mn::Blsi => f(0, SF | ZF | OF | CF, AF | PF),
        Mn::Bzhi => f(0, SF | ZF | OF | CF, AF | PF),
        Mn::Bextr => f(0, ZF | OF | CF, AF | SF | PF),
        Mn::Blcfill
        | Mn::Blsfill
        | Mn::Blcs
        | Mn::Tzmsk
        | Mn::Blcic
        | Mn::Blsic
        | Mn::T1mskc
        | Mn::Blcmsk
        | Mn::Blci => f(0, SF | ZF | OF | CF, AF | PF),
        Mn::Lwpins => f(0, CF, 0),
        Mn::Adcx => f(CF, CF, 0),
        Mn::Adox => f(OF, OF, 0),
        _ => f(0, 0, 0),
    }
}

impl Instruction {
    /// The size in bytes of the memory access, for the instructions of the semantic level:
    /// the ModRM/`moffs` memory operand, or the implicit one of string instructions and
    /// `MASKMOVQ`/`MASKMOVDQU`. `None` without a memory operand or outside the covered set;
    /// `Some(0)` where the size is not fixed by the encoding (`LEA`, `INVLPG`, `XSAVE`).
    #[must_use]
    pub fn memory_size(&self) -> Option<u16> {
        let (_, specs, entry) = form(self)?;
        crate::operands::memory_size(self, specs, entry)
    }

    /// The mnemonic, for the instructions of the semantic level (see the crate documentation);
    /// `None` outside that set.
    #[must_use]
    pub fn mnemonic(&self) -> Option<Mnemonic> {
        form(self).map(|f| f.0)
    }

    /// RFLAGS read, written and left undefined, for the instructions of the semantic level;
    /// `None` outside that set.
    #[must_use]
    pub fn flags(&self) -> Option<FlagsEffect> {
        form(self).map(|f| flags(self, f.0))
    }
}
