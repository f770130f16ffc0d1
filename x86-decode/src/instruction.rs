//! The decoded instruction record.

use crate::defs::{Encoding, Mode, OpcodeMap, Register, Segment};

/// Prefix and encoding-field flags of an [`Instruction`] (a bit set; see the constants).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Prefixes(pub u16);

impl Prefixes {
    /// `F0` LOCK.
    pub const LOCK: u16 = 1 << 0;
    /// `F3` is the last of `F2`/`F3` (REP / REPE, or a mandatory prefix).
    pub const REP: u16 = 1 << 1;
    /// `F2` is the last of `F2`/`F3` (REPNE, or a mandatory prefix).
    pub const REPNE: u16 = 1 << 2;
    /// `66` operand-size override present.
    pub const OPERAND_SIZE: u16 = 1 << 3;
    /// `67` address-size override present.
    pub const ADDRESS_SIZE: u16 = 1 << 4;
    /// A REX prefix (`40`–`4F`) immediately precedes the opcode (64-bit mode).
    pub const REX: u16 = 1 << 5;
    /// REX.W / VEX.W / EVEX.W / XOP.W.
    pub const W: u16 = 1 << 6;
    /// EVEX.z: zeroing-masking.
    pub const ZEROING: u16 = 1 << 7;
    /// EVEX.b: broadcast (memory forms) or rounding/SAE (register forms).
    pub const BROADCAST: u16 = 1 << 8;
    /// The instruction has a ModRM byte.
    pub const MODRM: u16 = 1 << 9;
    /// The instruction has a SIB byte.
    pub const SIB: u16 = 1 << 10;
    /// The instruction has a memory operand (described by the `memory_*` accessors).
    pub const MEMORY: u16 = 1 << 11;
    /// The memory operand is RIP- or EIP-relative.
    pub const IP_RELATIVE: u16 = 1 << 12;
    /// The memory operand's index is a vector register (VSIB).
    pub const VSIB: u16 = 1 << 13;
    /// The immediate byte's bits 7:4 name a register operand (`/is4`: FMA4, `VBLENDVPS`, XOP).
    pub const IS4: u16 = 1 << 14;
    /// EVEX `disp8` was multiplied by the instruction's N ([`Instruction::memory_displacement`]
    /// is the effective displacement). Without this flag an EVEX `disp8` is as encoded.
    pub const DISP8_SCALED: u16 = 1 << 15;

    /// Is every bit of `mask` set?
    #[must_use]
    pub const fn contains(self, mask: u16) -> bool {
        self.0 & mask == mask
    }
}

/// A decoded instruction: small, `Copy`, filled in place by
/// [`Decoder::decode_out`](crate::Decoder::decode_out) without allocating.
///
/// This is the *structure* of the instruction: its length, encoding, opcode map and byte,
/// prefixes, ModRM/SIB bytes, operand and address size, immediates and the components of its
/// memory operand. The location of the displacement and immediate bytes is kept, so a caller can
/// patch or re-encode them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
// Field order matters to the 64-bit fast path: the fields it computes come first, the ones
// that are constant there (the second immediate, mode, encoding, VEX/EVEX fields, address
// size, segment prefix) last and together, so they cost one or two wide stores.
#[repr(C)]
pub struct Instruction {
    pub(crate) ip: u64,
    pub(crate) disp: u64,
    pub(crate) imm: u64,
    pub(crate) prefixes: Prefixes,
    pub(crate) base: Register,
    pub(crate) index: Register,
    pub(crate) imm2: u16,
    pub(crate) len: u8,
    pub(crate) map: u8,
    pub(crate) opcode: u8,
    pub(crate) modrm: u8,
    pub(crate) sib: u8,
    pub(crate) rex: u8,
    pub(crate) pp: u8,
    pub(crate) osize: u8,
    pub(crate) segment: Segment,
    pub(crate) disp_size: u8,
    pub(crate) imm_size: u8,
    pub(crate) rel: bool,
    /// Decoded with [`crate::Vendor::Amd`] rules.
    pub(crate) amd: bool,
    pub(crate) seg_prefix: Segment,
    pub(crate) imm2_size: u8,
    pub(crate) asize: u8,
    pub(crate) mode: Mode,
    pub(crate) encoding: Encoding,
    pub(crate) vvvv: u8,
    pub(crate) vl: u8,
    pub(crate) aaa: u8,
}

impl Default for Instruction {
    fn default() -> Self {
        Self::LEGACY64
    }
}

impl Instruction {
    /// A 64-bit legacy-encoded instruction with nothing decoded yet (64-bit addressing, no
    /// prefixes, operands or immediates): the template the decoder's fast path starts from.
    pub(crate) const LEGACY64: Instruction = Instruction {
        ip: 0,
        disp: 0,
        imm: 0,
        imm2: 0,
        prefixes: Prefixes(0),
        len: 0,
        mode: Mode::Bits64,
        encoding: Encoding::Legacy,
        map: 0,
        opcode: 0,
        modrm: 0,
        sib: 0,
        rex: 0,
        pp: 0,
        vvvv: 0,
        vl: 0,
        aaa: 0,
        osize: 0,
        asize: 8,
        seg_prefix: Segment::NONE,
        segment: Segment::NONE,
        base: Register::NONE,
        index: Register::NONE,
        disp_size: 0,
        imm_size: 0,
        imm2_size: 0,
        rel: false,
        amd: false,
    };
}

impl Instruction {
    /// Length in bytes (1–15).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Always `false` for a decoded instruction (length is at least 1); provided for symmetry
    /// with [`Instruction::len`].
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address the instruction was decoded at.
    #[must_use]
    pub const fn ip(&self) -> u64 {
        self.ip
    }

    /// The address of the next instruction, wrapped to the mode's instruction-pointer width.
    #[must_use]
    pub const fn next_ip(&self) -> u64 {
        let n = self.ip.wrapping_add(self.len as u64);
        match self.mode {
            Mode::Bits16 => n & 0xFFFF,
            Mode::Bits32 => n & 0xFFFF_FFFF,
            Mode::Bits64 => n,
        }
    }

    /// The mode the instruction was decoded in.
    #[must_use]
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// How the opcode was encoded.
    #[must_use]
    pub const fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The opcode map.
    #[must_use]
    pub const fn map(&self) -> OpcodeMap {
        OpcodeMap(self.map)
    }

    /// The opcode byte within its map. For 3DNow! this is the suffix byte (`9E` for `PFADD`).
    #[must_use]
    pub const fn opcode(&self) -> u8 {
        self.opcode
    }

    /// The mandatory prefix / `pp` field: 0 none, 1 `66`, 2 `F3`, 3 `F2`. For legacy encodings
    /// it is the last of `F2`/`F3` if any, else `66` if present.
    #[must_use]
    pub const fn mandatory_prefix(&self) -> u8 {
        self.pp
    }

    /// The ModRM byte, if the instruction has one.
    #[must_use]
    pub const fn modrm(&self) -> Option<u8> {
        if self.prefixes.contains(Prefixes::MODRM) {
            Some(self.modrm)
        } else {
            None
        }
    }

    /// The SIB byte, if the instruction has one.
    #[must_use]
    pub const fn sib(&self) -> Option<u8> {
        if self.prefixes.contains(Prefixes::SIB) {
            Some(self.sib)
        } else {
            None
        }
    }

    /// Prefix and encoding-field flags.
    #[must_use]
    pub const fn prefixes(&self) -> Prefixes {
        self.prefixes
    }

    /// Does the instruction carry a LOCK prefix?
    #[must_use]
    pub const fn has_lock(&self) -> bool {
        self.prefixes.contains(Prefixes::LOCK)
    }

    /// The REX bits `0100WRXB` (0 without REX). For VEX/EVEX/XOP, the R, X, B and W bits
    /// decoded from the prefix (un-inverted) in the same positions.
    #[must_use]
    pub const fn rex(&self) -> u8 {
        self.rex
    }

    /// VEX/EVEX/XOP `vvvv` register number (EVEX: including V'), un-inverted.
    #[must_use]
    pub const fn vvvv(&self) -> u8 {
        self.vvvv
    }

    /// VEX.L / EVEX.L'L / XOP.L (0 = 128-bit, 1 = 256-bit, 2 = 512-bit). For EVEX register
    /// forms with EVEX.b set this is the rounding control instead.
    #[must_use]
    pub const fn vector_length(&self) -> u8 {
        self.vl
    }

    /// EVEX opmask register number `aaa` (0 = no masking).
    #[must_use]
    pub const fn op_mask(&self) -> u8 {
        self.aaa
    }

    /// Effective operand size in bytes for legacy general-purpose forms (2, 4 or 8), from the
    /// mode, `66` and REX.W. Instructions with a fixed or default-64 size ignore this.
    #[must_use]
    pub const fn operand_size(&self) -> u8 {
        self.osize
    }

    /// Effective address size in bytes (2, 4 or 8), from the mode and `67`.
    #[must_use]
    pub const fn address_size(&self) -> u8 {
        self.asize
    }

    /// The segment override prefix that takes effect, or [`Segment::NONE`]. In 64-bit mode only
    /// `FS` and `GS` take effect (the last of them wins); elsewhere the last segment prefix wins.
    #[must_use]
    pub const fn segment_prefix(&self) -> Segment {
        self.seg_prefix
    }

    /// Does the instruction have a ModRM memory operand or a `moffs` operand?
    #[must_use]
    pub const fn has_memory(&self) -> bool {
        self.prefixes.contains(Prefixes::MEMORY)
    }

    /// The memory operand's effective segment: the override if any, else `SS` for `rBP`/`rSP`
    /// bases (and 16-bit `BP` forms), else `DS`. [`Segment::NONE`] without a memory operand.
    #[must_use]
    pub const fn memory_segment(&self) -> Segment {
        self.segment
    }

    /// The memory operand's base register ([`Register::RIP`]/[`Register::EIP`] for
    /// IP-relative, [`Register::NONE`] for none).
    #[must_use]
    pub const fn memory_base(&self) -> Register {
        self.base
    }

    /// The memory operand's index register (a vector register for VSIB).
    #[must_use]
    pub const fn memory_index(&self) -> Register {
        self.index
    }

    /// The index scale: 1, 2, 4 or 8, from the SIB byte (1 without one). Without an index
    /// register the SIB byte's scale still shows, and scales nothing (iced-x86 reports it
    /// the same way).
    #[must_use]
    pub const fn memory_scale(&self) -> u8 {
        // Kept as the SIB byte, not a field: one store less on the decoder's hot path.
        if self.prefixes.contains(Prefixes::SIB) {
            1 << (self.sib >> 6)
        } else {
            1
        }
    }

    /// The displacement, sign-extended and truncated to the address size (a `moffs` address
    /// is zero-extended). An EVEX compressed `disp8` is multiplied by the instruction's N
    /// (`disp8*N`, flag [`Prefixes::DISP8_SCALED`]).
    #[must_use]
    pub const fn memory_displacement(&self) -> u64 {
        self.disp
    }

    /// Size of the encoded displacement in bytes (0, 1, 2, 4 or 8).
    #[must_use]
    pub const fn displacement_size(&self) -> usize {
        self.disp_size as usize
    }

    /// Offset of the displacement within the instruction (0 if none).
    #[must_use]
    pub const fn displacement_offset(&self) -> usize {
        // The displacement is followed only by the immediates (and, for 3DNow!, the opcode
        // byte), so its offset follows from the sizes rather than being stored.
        if self.disp_size == 0 {
            return 0;
        }
        let suffix = matches!(self.encoding, Encoding::Amd3dNow) as usize;
        self.immediates_offset()
            .saturating_sub(self.disp_size as usize + suffix)
    }

    /// Where the immediates (if any) start: they end the instruction. Saturating: a record
    /// [`decode_out`](crate::Decoder::decode_out) left after an error may hold sizes
    /// without a length.
    const fn immediates_offset(&self) -> usize {
        (self.len as usize).saturating_sub(self.imm_size as usize + self.imm2_size as usize)
    }

    /// Is the memory operand RIP- or EIP-relative?
    #[must_use]
    pub const fn is_ip_relative(&self) -> bool {
        self.prefixes.contains(Prefixes::IP_RELATIVE)
    }

    /// The absolute address of an IP-relative memory operand: the next instruction's address
    /// plus the displacement, truncated to the address size. `None` if not IP-relative.
    #[must_use]
    pub const fn ip_relative_target(&self) -> Option<u64> {
        if !self.is_ip_relative() {
            return None;
        }
        let t = self
            .ip
            .wrapping_add(self.len as u64)
            .wrapping_add(self.disp);
        Some(if self.asize == 4 { t & 0xFFFF_FFFF } else { t })
    }

    /// The first immediate as encoded, zero-extended (for relative branches, the displacement
    /// sign-extended). Sign extension of ordinary immediates depends on the instruction.
    #[must_use]
    pub const fn immediate(&self) -> u64 {
        self.imm
    }

    /// Size of the first immediate (or branch displacement) in bytes.
    #[must_use]
    pub const fn immediate_size(&self) -> usize {
        self.imm_size as usize
    }

    /// Offset of the first immediate within the instruction (0 if none).
    #[must_use]
    pub const fn immediate_offset(&self) -> usize {
        if self.imm_size == 0 {
            0
        } else {
            self.immediates_offset()
        }
    }

    /// The second immediate (`ENTER`'s nesting level, a far pointer's selector, `EXTRQ`'s and
    /// `INSERTQ`'s second byte), and its size (0 if none).
    #[must_use]
    pub const fn immediate2(&self) -> (u16, usize) {
        (self.imm2, self.imm2_size as usize)
    }

    /// For relative branches (`Jcc`, `JMP`, `CALL`, `LOOP`, `JrCXZ`, `XBEGIN`): the target,
    /// truncated to the operand size. `None` otherwise.
    #[must_use]
    pub const fn near_branch_target(&self) -> Option<u64> {
        if !self.rel {
            return None;
        }
        let t = self.ip.wrapping_add(self.len as u64).wrapping_add(self.imm);
        Some(match self.osize {
            2 => t & 0xFFFF,
            4 => t & 0xFFFF_FFFF,
            _ => t,
        })
    }
}

const _: () = assert!(core::mem::size_of::<Instruction>() <= 56);
