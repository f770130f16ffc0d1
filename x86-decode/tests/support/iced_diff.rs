//! Differential comparison of one instruction window against iced-x86 (dev-dependency only).
//!
//! Shared by `tests/differential.rs` and the `differential` fuzz target. Compares, per window:
//! the outcome kind (valid / needs more bytes / invalid), and for valid decodes the length, the
//! displacement and immediate offsets and sizes, near-branch targets and the memory operand
//! (base, index, scale, displacement, effective segment, IP-relative target).

// Each including test uses a different subset of this module.
#![allow(dead_code)]

use iced_x86::{DecoderError, DecoderOptions, OpKind};
use x86_decode::{DecodeError, Decoder, Encoding, Mode, Prefixes, Register, Vendor};

/// Why a window disagreed. `None` from [`compare`] means agreement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mismatch {
    /// iced valid, ours invalid.
    OursInvalid,
    /// ours valid, iced invalid.
    OursValid,
    /// One says "need more bytes", the other does not.
    Truncation,
    /// Both valid, lengths differ.
    Length,
    /// Immediate offset or size differs.
    Immediate,
    /// Displacement offset or size differs.
    Displacement,
    /// Memory base / index / scale differ.
    MemoryRegs,
    /// Memory displacement value differs.
    MemoryDisp,
    /// Effective memory segment differs.
    Segment,
    /// IP-relative flag or target differs.
    IpRelative,
    /// Near-branch target differs.
    BranchTarget,
}

/// An explicit allow-list of documented iced-x86 behaviours we deliberately do not copy.
/// Returns the reason if `bytes` (in `mode`) is one of them.
pub fn allowed(mode: Mode, bytes: &[u8], m: Mismatch) -> Option<&'static str> {
    if mode == Mode::Bits64 && m == Mismatch::Segment {
        // iced reports an ES/CS/SS/DS prefix as the memory segment in 64-bit mode when no
        // FS/GS prefix is present (with one, iced, the CPU and we all take FS/GS); the CPU
        // ignores those prefixes, and we report the segment that takes effect (DS or SS).
        // Only the legacy-prefix run is looked at; an FS/GS anywhere in it is no excuse.
        let run = bytes.iter().take_while(|&&b| {
            matches!(
                b,
                0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 | 0x66 | 0x67 | 0xF0 | 0xF2 | 0xF3 | 0x40
                    ..=0x4F
            )
        });
        let (mut ignored, mut fs_gs) = (false, false);
        for &b in run {
            ignored |= matches!(b, 0x26 | 0x2E | 0x36 | 0x3E);
            fs_gs |= matches!(b, 0x64 | 0x65);
        }
        if ignored && !fs_gs {
            return Some("iced reports ignored ES/CS/SS/DS prefixes in 64-bit mode");
        }
    }
    None
}

fn reg_eq(ours: Register, iced: iced_x86::Register) -> bool {
    use iced_x86::Register as R;
    match iced {
        R::None => ours == Register::NONE,
        R::RIP => ours == Register::RIP,
        R::EIP => ours == Register::EIP,
        R::AL => ours == Register::gpr(1, 0),
        r if r.is_gpr16() || r.is_gpr32() || r.is_gpr64() || r.is_vector_register() => {
            usize::from(ours.size()) == r.size() && usize::from(ours.number()) == r.number()
        }
        _ => false,
    }
}

fn iced_options(vendor: Vendor) -> u32 {
    match vendor {
        Vendor::Amd => DecoderOptions::AMD,
        _ => DecoderOptions::NONE,
    }
}

/// Compares our decode of `bytes` at `ip` with iced's. Returns the first disagreement.
pub fn compare(mode: Mode, vendor: Vendor, bytes: &[u8], ip: u64) -> Option<Mismatch> {
    let ours = Decoder::new(mode).with_vendor(vendor).decode(bytes, ip);
    let mut d = iced_x86::Decoder::with_ip(mode.bits(), bytes, ip, iced_options(vendor));
    let i = d.decode();
    let err = d.last_error();
    let o = match (ours, err) {
        (Ok(o), DecoderError::None) => o,
        (Err(DecodeError::NeedMoreBytes { .. }), DecoderError::NoMoreBytes) => return None,
        (Err(DecodeError::Invalid(_)), DecoderError::InvalidInstruction) => return None,
        (Err(DecodeError::NeedMoreBytes { .. }), _) | (_, DecoderError::NoMoreBytes) => {
            return Some(Mismatch::Truncation)
        }
        (Err(_), _) => return Some(Mismatch::OursInvalid),
        (Ok(_), _) => return Some(Mismatch::OursValid),
    };
    if o.len() != i.len() {
        return Some(Mismatch::Length);
    }
    let co = d.get_constant_offsets(&i);
    let (imm2, imm2_size) = o.immediate2();
    let _ = imm2;
    let (our_imm_off, our_imm_size) =
        if o.encoding() == Encoding::Amd3dNow || o.prefixes().contains(Prefixes::IS4) {
            (0, 0)
        } else {
            (o.immediate_offset(), o.immediate_size())
        };
    if co.immediate_size() != our_imm_size
        || (our_imm_size != 0 && co.immediate_offset() != our_imm_off)
    {
        return Some(Mismatch::Immediate);
    }
    if co.immediate_size2() != imm2_size
        || (imm2_size != 0 && co.immediate_offset2() != o.len() - imm2_size)
    {
        return Some(Mismatch::Immediate);
    }
    if co.displacement_size() != o.displacement_size()
        || (o.displacement_size() != 0 && co.displacement_offset() != o.displacement_offset())
    {
        return Some(Mismatch::Displacement);
    }
    let has_mem = (0..i.op_count()).any(|k| i.op_kind(k) == OpKind::Memory);
    if has_mem != o.has_memory() {
        return Some(Mismatch::MemoryRegs);
    }
    if has_mem {
        if !reg_eq(o.memory_base(), i.memory_base())
            || !reg_eq(o.memory_index(), i.memory_index())
            || (i.memory_index() != iced_x86::Register::None
                && u32::from(o.memory_scale()) != i.memory_index_scale())
        {
            return Some(Mismatch::MemoryRegs);
        }
        // Every valid EVEX memory form with a disp8 must have had it scaled by N.
        if o.encoding() == Encoding::Evex
            && o.displacement_size() == 1
            && !o.prefixes().contains(Prefixes::DISP8_SCALED)
        {
            return Some(Mismatch::MemoryDisp);
        }
        if !i.is_ip_rel_memory_operand() && o.memory_displacement() != i.memory_displacement64() {
            return Some(Mismatch::MemoryDisp);
        }
        if o.memory_segment().0 != i.memory_segment() as u8 - iced_x86::Register::ES as u8 {
            return Some(Mismatch::Segment);
        }
        if i.is_ip_rel_memory_operand() != o.is_ip_relative()
            || (i.is_ip_rel_memory_operand()
                && Some(i.ip_rel_memory_address()) != o.ip_relative_target())
        {
            return Some(Mismatch::IpRelative);
        }
    }
    let iced_branch = (0..i.op_count()).any(|k| {
        matches!(
            i.op_kind(k),
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
        )
    });
    if iced_branch != o.near_branch_target().is_some()
        || (iced_branch && o.near_branch_target() != Some(i.near_branch_target()))
    {
        return Some(Mismatch::BranchTarget);
    }
    None
}

/// A semantic-level disagreement (only checked where we claim to know the answer, except
/// [`SemanticMismatch::NotCovered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SemanticMismatch {
    /// Mnemonic differs.
    Mnemonic,
    /// RFLAGS read/written/undefined differ.
    Flags,
    /// Memory access size differs.
    MemorySize,
    /// Operand count differs.
    OperandCount,
    /// Operand kinds, registers, immediates or branch targets differ.
    Operands,
    /// REP/REPNE, opmask or zeroing-masking differ.
    Prefixes,
    /// iced names an instruction of the covered set (a mnemonic we know, in a general-purpose
    /// form or with a memory operand) and we return no semantic level for it.
    NotCovered,
}

/// Our register vs iced's (iced numbers 8-bit GPRs AL..BL, AH..BH, SPL..DIL, R8L..R15L).
fn reg_eq_any(ours: Register, iced: iced_x86::Register) -> bool {
    use iced_x86::Register as R;
    if iced.is_gpr8() {
        let n = iced.number() as u8;
        let want = match n {
            0..=3 => Register::gpr(1, n),
            4..=7 => Register::high_byte(n),
            _ => Register::gpr(1, n - 4),
        };
        return ours == want;
    }
    let n = iced.number() as u8;
    let want = if iced.is_segment_register() {
        Register::segment(x86_decode::Segment(iced as u8 - R::ES as u8))
    } else if iced.is_cr() {
        Register::control(iced as u8 - R::CR0 as u8)
    } else if iced.is_dr() {
        Register::debug(iced as u8 - R::DR0 as u8)
    } else if iced.is_mm() {
        Register::mmx(iced as u8 - R::MM0 as u8)
    } else if iced.is_st() {
        Register::st(iced as u8 - R::ST0 as u8)
    } else if iced.is_k() {
        Register::opmask(iced as u8 - R::K0 as u8)
    } else {
        let _ = n;
        return reg_eq(ours, iced);
    };
    ours == want
}

fn operands_agree(
    o: &x86_decode::Instruction,
    i: &iced_x86::Instruction,
) -> Option<SemanticMismatch> {
    use x86_decode::OperandKind as K;
    let ops = o.operands()?;
    let ops = ops.as_slice();
    if ops.len() != i.op_count() as usize {
        return Some(SemanticMismatch::OperandCount);
    }
    let asz = usize::from(o.address_size());
    let implicit = |op: &x86_decode::Operand, num: usize| {
        usize::from(op.register.size()) == asz && usize::from(op.register.number()) == num
    };
    let ok = ops.iter().enumerate().all(|(k, op)| {
        let k = k as u32;
        match (op.kind, i.op_kind(k)) {
            (K::Register, OpKind::Register) => reg_eq_any(op.register, i.op_register(k)),
            (K::Memory, OpKind::Memory) => true,
            (K::Immediate, kind) => {
                let sext = matches!(
                    kind,
                    OpKind::Immediate8to16
                        | OpKind::Immediate8to32
                        | OpKind::Immediate8to64
                        | OpKind::Immediate32to64
                );
                let imm = matches!(
                    kind,
                    OpKind::Immediate8
                        | OpKind::Immediate8_2nd
                        | OpKind::Immediate16
                        | OpKind::Immediate32
                        | OpKind::Immediate64
                ) || sext;
                imm && i.immediate(k) == op.value
                    && (sext == op.sign_extended
                        || kind == OpKind::Immediate8to16 && !op.sign_extended)
            }
            (K::NearBranch, OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64) => {
                i.near_branch_target() == op.value
            }
            (K::FarBranch, OpKind::FarBranch16) => {
                u64::from(i.far_branch16()) == op.value
                    && i.far_branch_selector() == o.immediate2().0
            }
            (K::FarBranch, OpKind::FarBranch32) => {
                u64::from(i.far_branch32()) == op.value
                    && i.far_branch_selector() == o.immediate2().0
            }
            (
                K::StringSource,
                OpKind::MemorySegSI | OpKind::MemorySegESI | OpKind::MemorySegRSI,
            ) => implicit(op, 6) && segment_agrees(o, op.segment, i),
            (
                K::StringDestination,
                OpKind::MemoryESDI | OpKind::MemoryESEDI | OpKind::MemoryESRDI,
            ) => implicit(op, 7) && op.segment == x86_decode::Segment::ES,
            (
                K::ImplicitDestination,
                OpKind::MemorySegDI | OpKind::MemorySegEDI | OpKind::MemorySegRDI,
            ) => implicit(op, 7) && segment_agrees(o, op.segment, i),
            _ => false,
        }
    });
    (!ok).then_some(SemanticMismatch::Operands)
}

/// An implicit operand's segment against iced's `memory_segment`, with the allow-listed
/// 64-bit quirk (iced reports an ignored ES/CS/SS/DS prefix; the CPU uses DS).
fn segment_agrees(
    o: &x86_decode::Instruction,
    ours: x86_decode::Segment,
    i: &iced_x86::Instruction,
) -> bool {
    let iced = x86_decode::Segment(i.memory_segment() as u8 - iced_x86::Register::ES as u8);
    ours == iced
        || o.mode() == Mode::Bits64
            && ours == x86_decode::Segment::DS
            && matches!(iced.0, 0..=3)
            && o.segment_prefix() == x86_decode::Segment::NONE
}

fn iced_flags_to_arch(f: u32) -> u32 {
    use iced_x86::RflagsBits as B;
    use x86_decode::rflags as R;
    let map = [
        (B::OF, R::OF),
        (B::SF, R::SF),
        (B::ZF, R::ZF),
        (B::AF, R::AF),
        (B::CF, R::CF),
        (B::PF, R::PF),
        (B::DF, R::DF),
        (B::IF, R::IF),
        (B::AC, R::AC),
    ];
    map.iter()
        .filter(|(b, _)| f & b != 0)
        .fold(0, |acc, (_, r)| acc | r)
}

/// Names of our mnemonics, for the coverage check.
fn our_names() -> &'static std::collections::HashSet<&'static str> {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(|| x86_decode::Mnemonic::ALL.iter().map(|m| m.name()).collect())
}

/// Is `i` an instruction of the covered set by iced's account: a mnemonic we know, and either
/// a memory operand or no MMX/x87/vector register operand (a general-purpose form)?
fn iced_in_covered_set(i: &iced_x86::Instruction, name: &str) -> bool {
    // Same name, different instruction (SSE2 CMPSD vs the string CMPSD); x87 register forms.
    if !our_names().contains(name)
        || i.code() == iced_x86::Code::Cmpsd_xmm_xmmm64_imm8
        || i.code() == iced_x86::Code::Fnstsw_AX
    {
        return false;
    }
    let mut vector_reg = false;
    let mut memory = false;
    for k in 0..i.op_count() {
        match i.op_kind(k) {
            OpKind::Memory | OpKind::MemorySegDI | OpKind::MemorySegEDI | OpKind::MemorySegRDI => {
                memory = true
            }
            OpKind::Register => {
                let r = i.op_register(k);
                vector_reg |= r.is_vector_register() || r.is_mm() || r.is_st() || r.is_k();
            }
            _ => {}
        }
    }
    memory || !vector_reg
}

fn is_string(o: &x86_decode::Instruction) -> bool {
    o.encoding() == Encoding::Legacy
        && o.map().0 == 0
        && matches!(o.opcode(), 0x6C..=0x6F | 0xA4..=0xA7 | 0xAA..=0xAF)
}

/// Compares the semantic level (mnemonic, operands, memory size, RFLAGS, string prefixes,
/// EVEX masking) of a window both decoders accept. Returns `(covered, mismatch)`: whether we
/// claimed a mnemonic, and the first disagreement.
pub fn compare_semantic(
    mode: Mode,
    vendor: Vendor,
    bytes: &[u8],
) -> (bool, Option<SemanticMismatch>) {
    let Ok(o) = Decoder::new(mode).with_vendor(vendor).decode(bytes, 0) else {
        return (false, None);
    };
    let mut d = iced_x86::Decoder::new(mode.bits(), bytes, iced_options(vendor));
    let i = d.decode();
    if i.is_invalid() {
        return (false, None);
    }
    let iced_name = format!("{:?}", i.mnemonic()).to_lowercase();
    let Some(m) = o.mnemonic() else {
        let missing = iced_in_covered_set(&i, &iced_name);
        return (false, missing.then_some(SemanticMismatch::NotCovered));
    };
    if m.name() != iced_name {
        return (true, Some(SemanticMismatch::Mnemonic));
    }
    if let Some(bad) = operands_agree(&o, &i) {
        return (true, Some(bad));
    }
    if let Some(size) = o.memory_size() {
        if usize::from(size) != i.memory_size().size() {
            return (true, Some(SemanticMismatch::MemorySize));
        }
    }
    if is_string(&o)
        && (i.has_rep_prefix() != o.prefixes().contains(Prefixes::REP)
            || i.has_repne_prefix() != o.prefixes().contains(Prefixes::REPNE))
    {
        return (true, Some(SemanticMismatch::Prefixes));
    }
    if o.encoding() == Encoding::Evex
        && (i.op_mask() as u32 != u32::from(o.op_mask()) + iced_x86::Register::K0 as u32
            && (o.op_mask() != 0 || i.op_mask() != iced_x86::Register::None)
            || i.zeroing_masking() != o.prefixes().contains(Prefixes::ZEROING))
    {
        return (true, Some(SemanticMismatch::Prefixes));
    }
    if let Some(f) = o.flags() {
        let read = iced_flags_to_arch(i.rflags_read());
        let written = iced_flags_to_arch(i.rflags_written() | i.rflags_cleared() | i.rflags_set());
        let undefined = iced_flags_to_arch(i.rflags_undefined());
        if f.read != read || f.written != written || f.undefined != undefined {
            return (true, Some(SemanticMismatch::Flags));
        }
    }
    (true, None)
}
