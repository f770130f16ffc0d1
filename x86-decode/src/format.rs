//! A diagnostic formatter (feature `formatter`) in Intel syntax.
//!
//! Instructions with an operand list ([`Instruction::operands`]: the semantic level) print in
//! full Intel syntax (`add dword ptr [rax+rcx*4-0x10], 0x1`). Others
//! print their mnemonic if known, or their encoding, map and opcode (`(vex 66 0F38 00 /0)`),
//! followed by the operands decoded so far: the memory operand, immediates, branch target.

use core::fmt;

use crate::defs::{Encoding, Register, Segment};
use crate::instruction::{Instruction, Prefixes};
use crate::operands::OperandKind;

/// Formats an [`Instruction`] for diagnostics; see [`Instruction::display`].
#[derive(Clone, Copy, Debug)]
pub struct Display<'a>(&'a Instruction);

impl Instruction {
    /// A `Display` adapter printing the instruction in diagnostic Intel-style syntax.
    #[must_use]
    pub fn display(&self) -> Display<'_> {
        Display(self)
    }
}

/// The Intel-syntax size keyword for a memory access of `size` bytes.
fn ptr_name(size: u16) -> Option<&'static str> {
    Some(match size {
        1 => "byte",
        2 => "word",
        4 => "dword",
        6 => "fword",
        8 => "qword",
        10 => "tbyte",
        16 => "xmmword",
        32 => "ymmword",
        64 => "zmmword",
        _ => return None,
    })
}

fn write_mem(f: &mut fmt::Formatter<'_>, i: &Instruction) -> fmt::Result {
    if i.segment_prefix() != Segment::NONE {
        if let Some(s) = i.segment_prefix().name() {
            write!(f, "{s}:")?;
        }
    }
    f.write_str("[")?;
    if i.is_ip_relative() {
        if let Some(t) = i.ip_relative_target() {
            return write!(f, "{:#x}]", t);
        }
    }
    let mut first = true;
    if i.memory_base() != Register::NONE {
        write!(f, "{}", i.memory_base())?;
        first = false;
    }
    if i.memory_index() != Register::NONE {
        if !first {
            f.write_str("+")?;
        }
        write!(f, "{}", i.memory_index())?;
        if i.memory_scale() != 1 {
            write!(f, "*{}", i.memory_scale())?;
        }
        first = false;
    }
    let d = i.memory_displacement();
    let neg = (d as i64) < 0 && i.address_size() == 8
        || (i.address_size() == 4 && (d as u32 as i32) < 0)
        || (i.address_size() == 2 && (d as u16 as i16) < 0);
    if first {
        write!(f, "{d:#x}")?;
    } else if i.displacement_size() != 0 && d != 0 {
        if neg {
            let m = match i.address_size() {
                2 => u64::from((d as u16).wrapping_neg()),
                4 => u64::from((d as u32).wrapping_neg()),
                _ => d.wrapping_neg(),
            };
            write!(f, "-{m:#x}")?;
        } else {
            write!(f, "+{d:#x}")?;
        }
    }
    if i.encoding() == Encoding::Evex
        && i.displacement_size() == 1
        && !i.prefixes().contains(Prefixes::DISP8_SCALED)
    {
        f.write_str("(*N)")?;
    }
    f.write_str("]")
}

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.0;
        let p = i.prefixes();
        if p.contains(Prefixes::LOCK) {
            f.write_str("lock ")?;
        }
        match i.mnemonic() {
            Some(m) => {
                let string = matches!(i.map().0, 0)
                    && matches!(i.opcode(), 0x6C..=0x6F | 0xA4..=0xA7 | 0xAA..=0xAF);
                if string && p.contains(Prefixes::REP) {
                    f.write_str(if matches!(i.opcode(), 0xA6 | 0xA7 | 0xAE | 0xAF) {
                        "repe "
                    } else {
                        "rep "
                    })?;
                } else if string && p.contains(Prefixes::REPNE) {
                    f.write_str("repne ")?;
                }
                f.write_str(m.name())?;
            }
            None => {
                let enc = match i.encoding() {
                    Encoding::Legacy => "legacy",
                    Encoding::Amd3dNow => "3dnow",
                    Encoding::Vex => "vex",
                    Encoding::Evex => "evex",
                    Encoding::Xop => "xop",
                };
                let pp = ["", "66 ", "f3 ", "f2 "][usize::from(i.mandatory_prefix() & 3)];
                write!(f, "({enc} {pp}{:?} {:02x}", i.map(), i.opcode())?;
                if let Some(m) = i.modrm() {
                    write!(f, " /{}", (m >> 3) & 7)?;
                }
                f.write_str(")")?;
            }
        }
        let mut sep = " ";
        if let Some(ops) = i.operands() {
            // Intel syntax for the instructions with an operand list.
            for (k, o) in ops.as_slice().iter().enumerate() {
                f.write_str(if k == 0 { " " } else { ", " })?;
                match o.kind {
                    OperandKind::Register => write!(f, "{}", o.register)?,
                    OperandKind::Memory => {
                        if let Some(p) = ptr_name(i.memory_size().unwrap_or(0)) {
                            write!(f, "{p} ptr ")?;
                        }
                        write_mem(f, i)?;
                    }
                    OperandKind::Immediate | OperandKind::NearBranch => {
                        write!(f, "{:#x}", o.value)?
                    }
                    OperandKind::FarBranch => write!(f, "{:#x}:{:#x}", i.immediate2().0, o.value)?,
                    OperandKind::StringSource
                    | OperandKind::StringDestination
                    | OperandKind::ImplicitDestination => {
                        if let Some(p) = ptr_name(o.size) {
                            write!(f, "{p} ptr ")?;
                        }
                        if let Some(s) = o.segment.name() {
                            write!(f, "{s}:")?;
                        }
                        write!(f, "[{}]", o.register)?;
                    }
                }
            }
            return Ok(());
        }
        if i.has_memory() {
            f.write_str(sep)?;
            if let Some(p) = i.memory_size().and_then(ptr_name) {
                write!(f, "{p} ptr ")?;
            }
            write_mem(f, i)?;
            sep = ", ";
        }
        if let Some(t) = i.near_branch_target() {
            write!(f, "{sep}{t:#x}")?;
        } else if i.immediate_size() != 0
            && !p.contains(Prefixes::IS4)
            && i.encoding() != Encoding::Amd3dNow
        {
            write!(f, "{sep}{:#x}", i.immediate())?;
            let (imm2, n) = i.immediate2();
            if n != 0 {
                write!(f, ", {imm2:#x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use std::string::ToString;

    use crate::{Decoder, Mode};

    #[test]
    fn formats_memory_immediates_and_branches() {
        let d = Decoder::new(Mode::Bits64);
        let s = |b: &[u8]| {
            d.decode(b, 0x1000)
                .map(|i| i.display().to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            s(&[0xF0, 0x83, 0x44, 0x88, 0xF0, 0x01]),
            "lock add dword ptr [rax+rcx*4-0x10], 0x1"
        );
        assert_eq!(
            s(&[0xC7, 0x05, 0x10, 0, 0, 0, 1, 0, 0, 0]),
            "mov dword ptr [0x101a], 0x1"
        );
        assert_eq!(s(&[0xE8, 0x00, 0x00, 0x00, 0x00]), "call 0x1005");
        assert_eq!(
            s(&[0xF3, 0xA4]),
            "rep movsb byte ptr es:[rdi], byte ptr ds:[rsi]"
        );
        assert_eq!(s(&[0x0F, 0x22, 0xD8]), "mov cr3, rax");
        assert_eq!(s(&[0x8E, 0xD8]), "mov ds, eax");
        assert_eq!(
            s(&[0x64, 0x8B, 0x04, 0x25, 0x28, 0, 0, 0]),
            "mov eax, dword ptr fs:[0x28]"
        );
        assert_eq!(
            s(&[0xC5, 0xFE, 0x6F, 0x00]),
            "vmovdqu ymm0, ymmword ptr [rax]"
        );
        assert_eq!(
            s(&[0xC4, 0xE2, 0x71, 0x00, 0x00]),
            "(vex 66 0F38 00 /0) [rax]"
        );
        assert_eq!(
            s(&[0xC4, 0xE3, 0x79, 0x0F, 0xC1, 0x05]),
            "(vex 66 0F3A 0f /0) 0x5"
        );
        assert_eq!(s(&[0x88, 0xE0]), "mov al, ah");
    }
}
