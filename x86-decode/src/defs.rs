//! Pure definitions: CPU modes, vendors, encodings, registers and segments.
//!
//! Nothing here decodes; these are the vocabulary of [`crate::Instruction`]. Values that carry a
//! raw number from the instruction stream ([`Register`], [`Segment`]) are open enums: a
//! transparent newtype with named constants and a `Debug` that prints the name or the number.

use core::fmt;

/// The processor mode an instruction is decoded in (the default operand/address size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Real mode, virtual-8086 mode, or 16-bit protected mode (CS.D = 0).
    Bits16,
    /// 32-bit protected mode or compatibility mode with CS.D = 1.
    Bits32,
    /// 64-bit (long) mode, CS.L = 1.
    Bits64,
}

impl Mode {
    /// The mode's bitness: 16, 32 or 64.
    #[must_use]
    pub const fn bits(self) -> u32 {
        match self {
            Mode::Bits16 => 16,
            Mode::Bits32 => 32,
            Mode::Bits64 => 64,
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Mode::Bits16 => 0,
            Mode::Bits32 => 1,
            Mode::Bits64 => 2,
        }
    }
}

/// Which vendor's decoding rules apply where Intel and AMD processors differ.
///
/// The differences this crate models: in 64-bit mode a `66` prefix shortens near branches
/// (`E8`, `E9`, `0F 8x`) to a 16-bit displacement on AMD but is ignored on Intel; `F0 0F 20/22`
/// is the alternate encoding of `MOV CR8` on AMD; `0F FF` (`UD0`) has no ModRM byte on AMD; and a
/// handful of instructions exist on one vendor only (see the generated validity tables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Intel processors (and the default).
    #[default]
    Intel,
    /// AMD and Hygon processors.
    Amd,
}

/// How the instruction's opcode was encoded (APX's REX2 may add one: see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// Legacy encoding: optional legacy and REX prefixes, then an opcode in one of the legacy
    /// maps (one-byte, `0F`, `0F 38`, `0F 3A`).
    Legacy,
    /// AMD 3DNow!: `0F 0F` ModRM, with the opcode in the byte after the operands.
    Amd3dNow,
    /// VEX (`C5` two-byte or `C4` three-byte prefix).
    Vex,
    /// EVEX (`62` four-byte prefix).
    Evex,
    /// AMD XOP (`8F` three-byte prefix with map 8, 9 or 10).
    Xop,
}

/// An opcode map. Legacy maps share the numbers VEX/EVEX use for the same opcode space.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct OpcodeMap(pub u8);

impl OpcodeMap {
    /// The one-byte legacy map.
    pub const PRIMARY: Self = Self(0);
    /// Map 1: `0F xx` (VEX/EVEX `mmm` = 1).
    pub const M0F: Self = Self(1);
    /// Map 2: `0F 38 xx`.
    pub const M0F38: Self = Self(2);
    /// Map 3: `0F 3A xx`.
    pub const M0F3A: Self = Self(3);
    /// EVEX map 5 (AVX512-FP16).
    pub const MAP5: Self = Self(5);
    /// EVEX map 6 (AVX512-FP16).
    pub const MAP6: Self = Self(6);
    /// XOP map 8 (opcodes followed by an 8-bit immediate).
    pub const XOP8: Self = Self(8);
    /// XOP map 9.
    pub const XOP9: Self = Self(9);
    /// XOP map 10 (opcodes followed by a 32-bit immediate).
    pub const XOPA: Self = Self(10);
}

impl fmt::Debug for OpcodeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("PRIMARY"),
            1 => f.write_str("0F"),
            2 => f.write_str("0F38"),
            3 => f.write_str("0F3A"),
            n => write!(f, "MAP{n}"),
        }
    }
}

/// A segment register (open enum: the raw value is the `Sreg` encoding, 0–5).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Segment(pub u8);

impl Segment {
    /// `ES`.
    pub const ES: Self = Self(0);
    /// `CS`.
    pub const CS: Self = Self(1);
    /// `SS`.
    pub const SS: Self = Self(2);
    /// `DS`.
    pub const DS: Self = Self(3);
    /// `FS`.
    pub const FS: Self = Self(4);
    /// `GS`.
    pub const GS: Self = Self(5);
    /// No segment (no prefix, or no memory operand).
    pub const NONE: Self = Self(0xFF);

    const NAMES: [&'static str; 6] = ["es", "cs", "ss", "ds", "fs", "gs"];

    /// Lower-case assembler name (`"ds"`), or `None` for an unknown value.
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.get(usize::from(self.0)).copied()
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None if *self == Self::NONE => f.write_str("none"),
            None => write!(f, "Segment({})", self.0),
        }
    }
}

/// A register (open enum). The value is `class << 5 | number`:
///
/// | class | values |
/// |---|---|
/// | 0 | special: `NONE`, `RIP`, `EIP` |
/// | 1 | 8-bit GPRs `AL`…`R15B` (0–15; 4–7 are `SPL`…`DIL`), `AH`…`BH` are 16–19 |
/// | 2 | 16-bit GPRs `AX`…`R15W` |
/// | 3 | 32-bit GPRs `EAX`…`R15D` |
/// | 4 | 64-bit GPRs `RAX`…`R15` |
/// | 5 | `XMM0`…`XMM31` |
/// | 6 | `YMM0`…`YMM31` |
/// | 7 | `ZMM0`…`ZMM31` |
/// | 8 | segment registers `ES`…`GS` (0–5, the `Sreg` encoding) |
/// | 9 | control registers `CR0`…`CR15` |
/// | 10 | debug registers `DR0`…`DR15` |
/// | 11 | MMX registers `MM0`…`MM7` |
/// | 12 | x87 stack registers `ST0`…`ST7` |
/// | 13 | AVX-512 opmask registers `K0`…`K7` |
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Register(pub u16);

impl Register {
    /// No register.
    pub const NONE: Self = Self(0);
    /// The 64-bit instruction pointer (RIP-relative addressing).
    pub const RIP: Self = Self(1);
    /// The 32-bit instruction pointer (`67`-prefixed RIP-relative addressing).
    pub const EIP: Self = Self(2);
    /// `RAX`.
    pub const RAX: Self = Self::gpr(8, 0);
    /// `RSP`.
    pub const RSP: Self = Self::gpr(8, 4);
    /// `RBP`.
    pub const RBP: Self = Self::gpr(8, 5);

    const CLASS_GPR8: u16 = 1;
    const CLASS_XMM: u16 = 5;
    const CLASS_SEGMENT: u16 = 8;
    const CLASS_CR: u16 = 9;
    const CLASS_DR: u16 = 10;
    const CLASS_MMX: u16 = 11;
    const CLASS_ST: u16 = 12;
    const CLASS_K: u16 = 13;

    /// The general-purpose register `num` (0–15) of `size` bytes (1, 2, 4 or 8). For size 1,
    /// numbers 4–7 are `SPL`…`DIL`; use [`Register::high_byte`] for `AH`…`BH`.
    #[must_use]
    pub const fn gpr(size: u8, num: u8) -> Self {
        let class = match size {
            1 => 1,
            2 => 2,
            4 => 3,
            _ => 4,
        };
        Self(class << 5 | (num & 15) as u16)
    }

    /// `AH`, `CH`, `DH` or `BH` for `num` 4–7 (the legacy encoding without REX).
    #[must_use]
    pub const fn high_byte(num: u8) -> Self {
        Self(Self::CLASS_GPR8 << 5 | (16 + (num & 3)) as u16)
    }

    /// A vector register: `XMM` (16 bytes), `YMM` (32) or `ZMM` (64), number 0–31.
    #[must_use]
    pub const fn vector(size: u8, num: u8) -> Self {
        let class = match size {
            16 => Self::CLASS_XMM,
            32 => 6,
            _ => 7,
        };
        Self(class << 5 | (num & 31) as u16)
    }

    const fn of(class: u16, num: u8) -> Self {
        Self(class << 5 | num as u16)
    }

    /// A segment register (`seg` is the `Sreg` encoding, [`Segment::ES`]…[`Segment::GS`]).
    #[must_use]
    pub const fn segment(seg: Segment) -> Self {
        Self::of(Self::CLASS_SEGMENT, seg.0 & 7)
    }

    /// Control register `CRn` (0–15).
    #[must_use]
    pub const fn control(num: u8) -> Self {
        Self::of(Self::CLASS_CR, num & 15)
    }

    /// Debug register `DRn` (0–15).
    #[must_use]
    pub const fn debug(num: u8) -> Self {
        Self::of(Self::CLASS_DR, num & 15)
    }

    /// MMX register `MMn` (0–7).
    #[must_use]
    pub const fn mmx(num: u8) -> Self {
        Self::of(Self::CLASS_MMX, num & 7)
    }

    /// x87 stack register `ST(n)` (0–7).
    #[must_use]
    pub const fn st(num: u8) -> Self {
        Self::of(Self::CLASS_ST, num & 7)
    }

    /// AVX-512 opmask register `Kn` (0–7).
    #[must_use]
    pub const fn opmask(num: u8) -> Self {
        Self::of(Self::CLASS_K, num & 7)
    }

    /// The register class (see the type documentation).
    #[must_use]
    pub const fn class(self) -> u16 {
        self.0 >> 5
    }

    /// The register number within its class.
    #[must_use]
    pub const fn number(self) -> u8 {
        (self.0 & 31) as u8
    }

    /// Size of the register in bytes (segment registers 2, control and debug registers 8,
    /// MMX 8, x87 10, opmask 8; 0 for [`Register::NONE`]).
    #[must_use]
    pub const fn size(self) -> u8 {
        match self.class() {
            1 => 1,
            2 | 8 => 2,
            3 => 4,
            4 | 9 | 10 | 11 | 13 => 8,
            5 => 16,
            6 => 32,
            7 => 64,
            12 => 10,
            _ => match self.0 {
                1 => 8,
                2 => 4,
                _ => 0,
            },
        }
    }

    /// Is this a general-purpose register?
    #[must_use]
    pub const fn is_gpr(self) -> bool {
        matches!(self.class(), 1..=4)
    }

    /// Is this an `XMM`/`YMM`/`ZMM` register?
    #[must_use]
    pub const fn is_vector(self) -> bool {
        matches!(self.class(), 5..=7)
    }
}

const GPR64: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];
const GPR32: [&str; 16] = [
    "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d",
    "r13d", "r14d", "r15d",
];
const GPR16: [&str; 16] = [
    "ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w",
    "r14w", "r15w",
];
const GPR8: [&str; 20] = [
    "al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b",
    "r13b", "r14b", "r15b", "ah", "ch", "dh", "bh",
];

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = usize::from(self.number());
        let name = match self.class() {
            1 => GPR8.get(n).copied(),
            2 => GPR16.get(n).copied(),
            3 => GPR32.get(n).copied(),
            4 => GPR64.get(n).copied(),
            5 => return write!(f, "xmm{n}"),
            6 => return write!(f, "ymm{n}"),
            7 => return write!(f, "zmm{n}"),
            8 => Segment::NAMES.get(n).copied(),
            9 => return write!(f, "cr{n}"),
            10 => return write!(f, "dr{n}"),
            11 if n < 8 => return write!(f, "mm{n}"),
            12 if n < 8 => return write!(f, "st({n})"),
            13 if n < 8 => return write!(f, "k{n}"),
            _ => match self.0 {
                0 => Some("none"),
                1 => Some("rip"),
                2 => Some("eip"),
                _ => None,
            },
        };
        match name {
            Some(s) => f.write_str(s),
            None => write!(f, "Register({:#x})", self.0),
        }
    }
}

impl fmt::Debug for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
