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
        // Without a base, `*1` keeps an index from reading as a base (which would also
        // imply another default segment for rBP/rSP).
        if i.memory_scale() != 1 || first {
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
    f.write_str("]")?;
    if i.prefixes().contains(Prefixes::BROADCAST) && i.encoding() == Encoding::Evex {
        // One element repeated: `{1toN}` where the element size is known (the semantic
        // level), a plain marker elsewhere.
        let lanes = match i.memory_size() {
            Some(e @ (2 | 4 | 8)) => (16u16 << i.vector_length().min(2)) / e,
            _ => 0,
        };
        if lanes != 0 {
            write!(f, "{{1to{lanes}}}")?;
        } else {
            f.write_str("{bcst}")?;
        }
    }
    Ok(())
}

/// EVEX masking, written after the destination: `{k1}`, and `{z}` for zeroing.
fn write_mask(f: &mut fmt::Formatter<'_>, i: &Instruction) -> fmt::Result {
    if i.encoding() != Encoding::Evex || i.op_mask() == 0 {
        return Ok(());
    }
    write!(f, "{{k{}}}", i.op_mask())?;
    if i.prefixes().contains(Prefixes::ZEROING) {
        f.write_str("{z}")?;
    }
    Ok(())
}

/// An immediate as the operand of `size` bytes sees it: a sign-extended byte of a 16-bit
/// operation is `0xffd6`, not 64 bits of ones.
fn immediate_text(value: u64, size: u16) -> u64 {
    match size {
        1 | 2 | 4 => value & ((1u64 << (8 * size)) - 1),
        _ => value,
    }
}

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.0;
        let p = i.prefixes();
        // AMD's `F0 0F 20/22` is MOV from/to CR8: the F0 is part of the encoding.
        let cr8 = i.map().0 == 1 && matches!(i.opcode(), 0x20 | 0x22);
        if p.contains(Prefixes::LOCK) && !cr8 {
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
                write_mask(f, i)?;
            }
        }
        let Some(ops) = i.operands() else {
            if i.mnemonic().is_some() {
                write_mask(f, i)?;
            }
            return write_rest(f, i);
        };
        // Intel syntax for the instructions with an operand list.
        for (k, o) in ops.as_slice().iter().enumerate() {
            f.write_str(if k == 0 { " " } else { ", " })?;
            match o.kind {
                OperandKind::Register => write!(f, "{}", o.register)?,
                OperandKind::Memory => {
                    // `FF /3` and `FF /5`: a far pointer in memory.
                    let far = i.map().0 == 0
                        && i.opcode() == 0xFF
                        && i.modrm().is_some_and(|m| matches!((m >> 3) & 7, 3 | 5));
                    if far {
                        f.write_str("far ")?;
                    }
                    if let Some(p) = ptr_name(i.memory_size().unwrap_or(0)) {
                        write!(f, "{p} ptr ")?;
                    }
                    write_mem(f, i)?;
                }
                OperandKind::Immediate => write!(f, "{:#x}", immediate_text(o.value, o.size))?,
                OperandKind::NearBranch => write!(f, "{:#x}", o.value)?,
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
            if k == 0 {
                write_mask(f, i)?;
            }
        }
        Ok(())
    }
}

/// The operands of an instruction without an operand list: the memory operand, then the
/// branch target or the immediates, as far as they were decoded.
fn write_rest(f: &mut fmt::Formatter<'_>, i: &Instruction) -> fmt::Result {
    let p = i.prefixes();
    let mut sep = " ";
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

#[cfg(all(test, feature = "std"))]
mod tests {
    use std::string::ToString;

    use crate::{Decoder, Mode, Vendor};

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

    #[test]
    fn formats_masks_broadcasts_sizes_and_far_pointers() {
        let with = |mode, vendor, b: &[u8]| {
            Decoder::new(mode)
                .with_vendor(vendor)
                .decode(b, 0)
                .map(|i| i.display().to_string())
                .unwrap_or_default()
        };
        let s64 = |b: &[u8]| with(Mode::Bits64, Vendor::Intel, b);
        let s16 = |b: &[u8]| with(Mode::Bits16, Vendor::Intel, b);
        // EVEX masking, merging and zeroing, and a gather's mandatory mask.
        assert_eq!(
            s64(&[0x62, 0xF1, 0xFE, 0xCF, 0x6F, 0x40, 0x01]),
            "vmovdqu64 zmm0{k7}{z}, zmmword ptr [rax+0x40]"
        );
        assert_eq!(
            s64(&[0x62, 0xF1, 0xFE, 0x49, 0x7F, 0x00]),
            "vmovdqu64 zmmword ptr [rax]{k1}, zmm0"
        );
        assert!(
            s64(&[0x62, 0xF2, 0x7D, 0x49, 0x90, 0x4C, 0x20, 0x01]).contains("{k1}"),
            "{}",
            s64(&[0x62, 0xF2, 0x7D, 0x49, 0x90, 0x4C, 0x20, 0x01])
        );
        // A broadcast memory operand.
        assert!(s64(&[0x62, 0xF1, 0x7D, 0x58, 0xFE, 0x00]).ends_with("[rax]{bcst}"));
        // Immediates at the operand's size.
        assert_eq!(s16(&[0x83, 0xD2, 0xD6]), "adc dx, 0xffd6");
        assert_eq!(s16(&[0x66, 0x83, 0xD5, 0xB1]), "adc ebp, 0xffffffb1");
        assert_eq!(
            s64(&[0x48, 0x83, 0xC0, 0xFF]),
            "add rax, 0xffffffffffffffff"
        );
        // Far and near indirect calls through memory.
        assert_eq!(s16(&[0xFF, 0x1F]), "call far dword ptr [bx]");
        assert_eq!(s16(&[0x66, 0xFF, 0x17]), "call dword ptr [bx]");
        // An index without a base keeps its scale.
        assert_eq!(
            s64(&[0x80, 0x04, 0x2D, 0x33, 0x10, 0x56, 0x3A, 0x6A]),
            "add byte ptr [rbp*1+0x3a561033], 0x6a"
        );
        // AMD's alternate CR8 encoding: the F0 is not a LOCK.
        assert_eq!(
            with(Mode::Bits64, Vendor::Amd, &[0xF0, 0x0F, 0x20, 0xC0]),
            "mov rax, cr8"
        );
    }
}
