//! The decode core: prefixes, opcode escapes, VEX/EVEX/XOP, ModRM/SIB/displacement, immediates.

use crate::defs::{Encoding, Mode, Register, Segment, Vendor};
use crate::error::{DecodeError, InvalidReason};
use crate::forms::{self, EN, FP, G11Z, G3B, G3Z, M, M3D, MB, MO, MR, MZ, N, R8, RZ, UD0, X78};
use crate::instruction::{Instruction, Prefixes};
use crate::validity;

mod fast;

/// The longest legal instruction, in bytes.
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// Decodes instructions for one mode and vendor. Cheap to copy; holds no state between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decoder {
    mode: Mode,
    vendor: Vendor,
}

/// A bounded reader over the instruction window.
struct Cursor<'a> {
    /// The whole window (may extend past the 15-byte limit: used for 8-byte loads).
    full: &'a [u8],
    /// The window capped at 15 bytes.
    bytes: &'a [u8],
    have: usize,
    pos: usize,
}

/// Masks for a little-endian value of 0–8 bytes.
const LE_MASK: [u64; 9] = [
    0,
    0xFF,
    0xFFFF,
    0xFF_FFFF,
    0xFFFF_FFFF,
    0xFF_FFFF_FFFF,
    0xFFFF_FFFF_FFFF,
    0xFF_FFFF_FFFF_FFFF,
    u64::MAX,
];

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn new(full: &'a [u8]) -> Self {
        let have = full.len();
        let bytes = match full.get(..MAX_INSTRUCTION_LEN) {
            Some(b) => b,
            None => full,
        };
        Self {
            full,
            bytes,
            have,
            pos: 0,
        }
    }

    #[cold]
    fn short(&self) -> DecodeError {
        if self.pos >= MAX_INSTRUCTION_LEN {
            DecodeError::Invalid(InvalidReason::TooLong)
        } else {
            DecodeError::NeedMoreBytes { have: self.have }
        }
    }

    #[inline(always)]
    fn peek(&self) -> Result<u8, DecodeError> {
        match self.bytes.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.short()),
        }
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    #[cold]
    fn short_by(&mut self, end: usize) -> DecodeError {
        self.pos = self.bytes.len().max(self.pos);
        // "Too long" if the value would run past byte 15.
        if end > MAX_INSTRUCTION_LEN {
            DecodeError::Invalid(InvalidReason::TooLong)
        } else {
            DecodeError::NeedMoreBytes { have: self.have }
        }
    }

    /// Reads a little-endian value of `n` (0–8) bytes.
    #[inline(always)]
    fn le(&mut self, n: usize) -> Result<u64, DecodeError> {
        let end = self.pos + n;
        if end > self.bytes.len() {
            return Err(self.short_by(end));
        }
        // Fast path: one unaligned 8-byte load, masked.
        let v = match self.full.get(self.pos..self.pos + 8) {
            Some(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                u64::from_le_bytes(a) & LE_MASK[n.min(8)]
            }
            None => {
                let mut v = 0u64;
                for (i, &b) in self.bytes[self.pos..end].iter().enumerate() {
                    v |= u64::from(b) << (8 * i);
                }
                v
            }
        };
        self.pos = end;
        Ok(v)
    }
}

/// Sign-extends the low `n` bytes (0–8) of `v`.
#[inline(always)]
const fn sign_extend_n(v: u64, n: usize) -> u64 {
    let sh = (64 - 8 * (n as u32)) & 63;
    ((v << sh) as i64 >> sh) as u64
}

const fn mask_to(v: u64, size: u8) -> u64 {
    match size {
        2 => v & 0xFFFF,
        4 => v & 0xFFFF_FFFF,
        _ => v,
    }
}

const K_SEG: u8 = 1;
const K_FSGS: u8 = 2;
const K_66: u8 = 3;
const K_67: u8 = 4;
const K_LOCK: u8 = 5;
const K_REP: u8 = 6;
const K_REX: u8 = 7;

/// Prefix kind of each byte (0: not a prefix). REX bytes are prefixes in 64-bit mode only.
static PREFIX_KIND: [u8; 256] = {
    let mut t = [0u8; 256];
    t[0x26] = K_SEG;
    t[0x2E] = K_SEG;
    t[0x36] = K_SEG;
    t[0x3E] = K_SEG;
    t[0x64] = K_FSGS;
    t[0x65] = K_FSGS;
    t[0x66] = K_66;
    t[0x67] = K_67;
    t[0xF0] = K_LOCK;
    t[0xF2] = K_REP;
    t[0xF3] = K_REP;
    let mut i = 0x40;
    while i < 0x50 {
        t[i] = K_REX;
        i += 1;
    }
    t
};

/// Immediate size of the simple forms `N`..=`RZ` by operand size 2, 4, 8 (index `size >> 2`).
const SIMPLE_IMM: [[u8; 3]; 10] = [
    [0, 0, 0], // N
    [0, 0, 0], // M
    [1, 1, 1], // MB
    [2, 4, 4], // MZ
    [1, 1, 1], // B
    [2, 2, 2], // W
    [2, 4, 4], // Z
    [2, 4, 8], // V
    [1, 1, 1], // R8
    [2, 4, 4], // RZ (by branch operand size)
];

/// The forms with a ModRM byte, as a bit set indexed by form.
const MODRM_FORMS: u32 = 1 << M
    | 1 << MB
    | 1 << MZ
    | 1 << G3B
    | 1 << G3Z
    | 1 << G11Z
    | 1 << MR
    | 1 << M3D
    | 1 << X78
    | 1 << UD0;

/// Fields of a VEX/EVEX/XOP prefix that the ModRM decoder needs.
#[derive(Clone, Copy, Default)]
struct Ext {
    x: u8,
    b: u8,
    /// VSIB index register size in bytes (0 = not VSIB).
    vsib: u8,
    /// EVEX.V' (extends a VSIB index to 16–31).
    vprime: u8,
}

impl Decoder {
    /// A decoder for `mode` with Intel rules.
    #[must_use]
    pub const fn new(mode: Mode) -> Self {
        Self {
            mode,
            vendor: Vendor::Intel,
        }
    }

    /// The same decoder with `vendor`'s rules.
    #[must_use]
    pub const fn with_vendor(self, vendor: Vendor) -> Self {
        Self {
            mode: self.mode,
            vendor,
        }
    }

    /// The decoder's mode.
    #[must_use]
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The decoder's vendor.
    #[must_use]
    pub const fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// Decodes the instruction at the start of `bytes`, located at address `ip`. Bytes after the
    /// instruction (and any beyond 15) are ignored.
    ///
    /// # Errors
    ///
    /// [`DecodeError::NeedMoreBytes`] if `bytes` ends inside an instruction that could still be
    /// valid and shorter than 16 bytes; [`DecodeError::Invalid`] otherwise.
    #[inline]
    pub fn decode(&self, bytes: &[u8], ip: u64) -> Result<Instruction, DecodeError> {
        let mut out = Instruction::default();
        self.decode_out(bytes, ip, &mut out)?;
        Ok(out)
    }

    /// Like [`Decoder::decode`], filling `out` in place. On error `out` is left unspecified
    /// (but valid to reuse).
    ///
    /// # Errors
    ///
    /// As for [`Decoder::decode`].
    #[inline]
    pub fn decode_out(
        &self,
        bytes: &[u8],
        ip: u64,
        out: &mut Instruction,
    ) -> Result<(), DecodeError> {
        if self.mode == Mode::Bits64 && fast::decode64(self.vendor, bytes, ip, out) {
            return Ok(());
        }
        self.decode_general(bytes, ip, out)
    }

    /// The general path: every mode, prefix, encoding and window length.
    ///
    /// Never inlined: inlined into a caller's loop, its registers and spills crowd the fast
    /// path's (measured: 153 against 147 machine instructions per decoded instruction).
    #[inline(never)]
    fn decode_general(
        &self,
        bytes: &[u8],
        ip: u64,
        out: &mut Instruction,
    ) -> Result<(), DecodeError> {
        let mut c = Cursor::new(bytes);
        let mode = self.mode;
        let long = mode == Mode::Bits64;
        let mut flags: u16 = 0;
        let mut seg = Segment::NONE;
        let mut last_rep: u8 = 0;
        let mut rex: u8 = 0;
        let mut b = 0;
        self.prefixes(
            &mut c,
            &mut b,
            &mut rex,
            &mut flags,
            &mut seg,
            &mut last_rep,
        )?;
        let has66 = flags & Prefixes::OPERAND_SIZE != 0;
        let lock = flags & Prefixes::LOCK != 0;
        let pclass: u8 = match last_rep {
            0xF3 => {
                flags |= Prefixes::REP;
                2
            }
            0xF2 => {
                flags |= Prefixes::REPNE;
                3
            }
            _ => u8::from(has66),
        };
        let asize: u8 = match (mode, flags & Prefixes::ADDRESS_SIZE != 0) {
            (Mode::Bits16, false) | (Mode::Bits32, true) => 2,
            (Mode::Bits16, true) | (Mode::Bits32, false) | (Mode::Bits64, true) => 4,
            (Mode::Bits64, false) => 8,
        };

        *out = Instruction {
            ip,
            mode,
            asize,
            seg_prefix: seg,
            amd: self.vendor == Vendor::Amd,
            ..Instruction::default()
        };
        let insn = out;
        let mut invalid: Option<InvalidReason> = None;

        // VEX / EVEX / XOP: in 16/32-bit mode C4/C5/62 are LES/LDS/BOUND unless the next byte
        // has mod = 11; 8F is POP unless the map field is 8 or more.
        let next_is_ext = match b {
            0xC4 | 0xC5 | 0x62 => long || c.peek()? >= 0xC0,
            0x8F => c.peek()? & 0x1F >= 8,
            _ => false,
        };
        if next_is_ext {
            if rex != 0 || has66 || last_rep != 0 || lock {
                invalid = Some(InvalidReason::PrefixBeforeVex);
            }
            self.decode_ext(&mut c, b, flags, insn, &mut invalid)?;
        } else {
            if rex != 0 {
                flags |= Prefixes::REX;
                if rex & 8 != 0 {
                    flags |= Prefixes::W;
                }
            }
            insn.rex = rex;
            insn.pp = pclass;
            insn.osize = if rex & 8 != 0 {
                8
            } else if (mode == Mode::Bits16) != has66 {
                2
            } else {
                4
            };
            self.decode_legacy(&mut c, b, flags, insn, &mut invalid)?;
        }
        insn.len = c.pos as u8;
        if let Some(reason) = invalid {
            return Err(DecodeError::Invalid(reason));
        }
        Ok(())
    }

    /// Reads legacy and REX prefixes in any order and repetition; leaves the first opcode
    /// byte in `b`.
    #[inline(always)]
    fn prefixes(
        &self,
        c: &mut Cursor<'_>,
        b: &mut u8,
        rex: &mut u8,
        flags: &mut u16,
        seg: &mut Segment,
        last_rep: &mut u8,
    ) -> Result<(), DecodeError> {
        // Fast path: no prefix, or a lone REX (most 64-bit code), tested before the general
        // loop so the common case does not go through its jump table.
        let x = c.byte()?;
        let mut kind = PREFIX_KIND[usize::from(x)];
        *b = x;
        if kind == K_REX && self.mode == Mode::Bits64 {
            let y = c.byte()?;
            *b = y;
            *rex = x;
            kind = PREFIX_KIND[usize::from(y)];
        }
        if kind == 0 || kind == K_REX && self.mode != Mode::Bits64 {
            return Ok(());
        }
        self.prefixes_slow(c, b, rex, flags, seg, last_rep)
    }

    /// The general prefix loop; `*b` is the first prefix byte (already consumed).
    #[inline(always)]
    fn prefixes_slow(
        &self,
        c: &mut Cursor<'_>,
        b: &mut u8,
        rex: &mut u8,
        flags: &mut u16,
        seg: &mut Segment,
        last_rep: &mut u8,
    ) -> Result<(), DecodeError> {
        let long = self.mode == Mode::Bits64;
        let mut x = *b;
        loop {
            let kind = PREFIX_KIND[usize::from(x)];
            if kind == 0 {
                break;
            }
            if kind == K_REX {
                if !long {
                    break;
                }
                *rex = x;
                x = c.byte()?;
                *b = x;
                continue;
            }
            match kind {
                K_SEG => {
                    if !long {
                        *seg = Segment((x >> 3) & 3);
                    }
                }
                K_FSGS => *seg = Segment(x - 0x60),
                K_66 => *flags |= Prefixes::OPERAND_SIZE,
                K_67 => *flags |= Prefixes::ADDRESS_SIZE,
                K_LOCK => *flags |= Prefixes::LOCK,
                _ => *last_rep = x,
            }
            *rex = 0;
            x = c.byte()?;
            *b = x;
        }
        Ok(())
    }

    /// The legacy maps (and 3DNow!), after the prefixes; `b` is the first opcode byte.
    #[inline(always)]
    fn decode_legacy(
        &self,
        c: &mut Cursor<'_>,
        b: u8,
        mut flags: u16,
        insn: &mut Instruction,
        invalid: &mut Option<InvalidReason>,
    ) -> Result<(), DecodeError> {
        let mode = self.mode;
        let long = mode == Mode::Bits64;
        let (map, mut op, form) = if b == 0x0F {
            match c.byte()? {
                0x38 => (2u8, c.byte()?, M),
                0x3A => (3u8, c.byte()?, MB),
                op => (1u8, op, forms::SECONDARY[usize::from(op)]),
            }
        } else {
            (0u8, b, forms::PRIMARY[usize::from(b)])
        };
        let rex = insn.rex;
        let w = rex & 8 != 0;
        let has66 = flags & Prefixes::OPERAND_SIZE != 0;
        let osize = insn.osize;
        let z = if osize == 2 { 2 } else { 4 };
        let form = if form == UD0 && self.vendor == Vendor::Amd {
            N
        } else {
            form
        };
        let mut modrm = 0xC0u8;
        let has_modrm = MODRM_FORMS >> form & 1 != 0;
        if has_modrm {
            modrm = c.byte()?;
            flags |= Prefixes::MODRM;
            insn.modrm = modrm;
            if modrm < 0xC0 && form != MR {
                let ext = Ext {
                    x: rex >> 1 & 1,
                    b: rex & 1,
                    vsib: 0,
                    vprime: 0,
                };
                flags |= parse_memory(c, insn, modrm, ext, long)?;
            }
        }
        // Relative branches: operand size in 64-bit mode is 64, or 16 on AMD with 66.
        let branch_osize = if long {
            if self.vendor == Vendor::Amd && has66 && !w {
                2
            } else {
                8
            }
        } else {
            osize
        };
        let (imm_size, imm2_size, rel) = if form <= RZ {
            let size_for = if form == RZ { branch_osize } else { osize };
            let size = SIMPLE_IMM[usize::from(form)][usize::from(size_for >> 2)];
            (size, 0, form >= R8)
        } else {
            match form {
                MO => {
                    insn.disp = c.le(usize::from(insn.asize))?;
                    insn.disp_size = insn.asize;
                    insn.segment = if insn.seg_prefix == Segment::NONE {
                        Segment::DS
                    } else {
                        insn.seg_prefix
                    };
                    flags |= Prefixes::MEMORY;
                    (0, 0, false)
                }
                FP => (z, 2, false),
                EN => (2, 1, false),
                G3B => (if modrm & 0x30 == 0 { 1 } else { 0 }, 0, false),
                G3Z => (if modrm & 0x30 == 0 { z } else { 0 }, 0, false),
                G11Z => (z, 0, modrm == 0xF8),
                M3D => (1, 0, false),
                // X78: EXTRQ / INSERTQ take two 8-bit immediates.
                X78 if insn.pp == 1 || insn.pp == 3 => (1, 1, false),
                _ => (0, 0, false),
            }
        };
        if imm_size != 0 {
            let v = c.le(usize::from(imm_size))?;
            insn.imm_size = imm_size;
            insn.imm = if rel {
                sign_extend_n(v, usize::from(imm_size))
            } else {
                v
            };
        }
        if imm2_size != 0 {
            insn.imm2 = c.le(usize::from(imm2_size))? as u16;
            insn.imm2_size = imm2_size;
        }
        if map == 0 && op == 0xD7 {
            // XLAT: the implicit operand [rBX + AL].
            insn.base = Register::gpr(insn.asize, 3);
            insn.index = Register::gpr(1, 0);
            insn.segment = if insn.seg_prefix == Segment::NONE {
                Segment::DS
            } else {
                insn.seg_prefix
            };
            flags |= Prefixes::MEMORY;
        }
        if rel {
            insn.rel = true;
            // XBEGIN's target is computed in EIP/RIP width whatever its displacement size.
            insn.osize = if form != G11Z {
                branch_osize
            } else if long {
                8
            } else {
                4
            };
        }
        let mut encoding = Encoding::Legacy;
        let also66 = has66 && insn.pp >= 2;
        let mr = validity::ModRm {
            modrm,
            sib: flags & Prefixes::SIB != 0,
        };
        let mut ok = validity::legacy(self.vendor, mode, map, insn.pp, op, w, false, also66, mr);
        if form == M3D {
            encoding = Encoding::Amd3dNow;
            op = insn.imm as u8;
            insn.imm_size = 0;
            ok = ok && validity::amd3dnow(mode, op);
        }
        let lock = flags & Prefixes::LOCK != 0;
        if form != M3D && map == 1 && op == 0xA6 && insn.pp == 2 && modrm & 0xF8 == 0xC0 {
            // VIA MONTMUL: decoded only with 32-bit addressing (as iced-x86 does).
            ok = insn.asize == 4;
        }
        let key_op = if form == M3D { 0x0F } else { op };
        if ok
            && lock
            && !validity::legacy(self.vendor, mode, map, insn.pp, key_op, w, true, also66, mr)
        {
            *invalid = Some(InvalidReason::Lock);
        } else if !ok {
            *invalid = Some(InvalidReason::Undefined);
        } else if map == 1 && matches!(op, 0x20..=0x23) && rex & 4 != 0 {
            // MOV CR/DR with REX.R: only CR8 exists.
            let amd_cr8 = lock && self.vendor == Vendor::Amd;
            if op & 1 != 0 || modrm & 0x38 != 0 || amd_cr8 {
                *invalid = Some(InvalidReason::Reserved);
            }
        }
        insn.encoding = encoding;
        insn.map = map;
        insn.opcode = op;
        insn.prefixes = Prefixes(flags);
        Ok(())
    }

    /// VEX (`C4`/`C5`), EVEX (`62`) and XOP (`8F`) encodings; `lead` is the prefix byte.
    #[inline(always)]
    fn decode_ext(
        &self,
        c: &mut Cursor<'_>,
        lead: u8,
        mut flags: u16,
        insn: &mut Instruction,
        invalid: &mut Option<InvalidReason>,
    ) -> Result<(), DecodeError> {
        let mode = self.mode;
        let long = mode == Mode::Bits64;
        let p1 = c.byte()?;
        let (mut r, mut x, mut bb, map, p2) = if lead == 0xC5 {
            (!p1 >> 7 & 1, 0, 0, 1u8, p1)
        } else {
            let m = if lead == 0x62 { p1 & 7 } else { p1 & 0x1F };
            (!p1 >> 7 & 1, !p1 >> 6 & 1, !p1 >> 5 & 1, m, c.byte()?)
        };
        let w = lead != 0xC5 && p2 & 0x80 != 0;
        let mut vvvv = (!p2 >> 3) & 15;
        let pp = p2 & 3;
        let mut ext = Ext::default();
        let vl;
        let mut rprime = 0u8;
        let mut evex = None;
        if lead == 0x62 {
            if p1 & 8 != 0 || p2 & 4 == 0 {
                *invalid = Some(InvalidReason::Reserved);
            }
            rprime = !p1 >> 4 & 1;
            let p3 = c.byte()?;
            let z = p3 & 0x80 != 0;
            vl = (p3 >> 5) & 3;
            let bcst = p3 & 0x10 != 0;
            let vprime = !p3 >> 3 & 1;
            let aaa = p3 & 7;
            insn.aaa = aaa;
            if z {
                flags |= Prefixes::ZEROING;
            }
            if bcst {
                flags |= Prefixes::BROADCAST;
            }
            ext.vprime = vprime;
            evex = Some(validity::EvexFields {
                map,
                pp,
                w,
                ll: vl,
                bcst,
                masked: aaa != 0,
                z,
                vvvv: 0,
                vprime_used: vprime != 0,
                r: false,
                b: false,
                rprime: false,
                x: false,
            });
        } else {
            vl = (p2 >> 2) & 1;
        }
        // Validity looks at all four vvvv bits even outside 64-bit mode, where only
        // registers 0-7 exist (the high bit is then dropped from the register number).
        let vvvv_full = vvvv;
        if !long {
            r = 0;
            x = 0;
            bb = 0;
            rprime = 0;
            vvvv &= 7;
        }
        let op = c.byte()?;
        let has_modrm = !(lead == 0xC5 || lead == 0xC4) || !(map == 1 && op == 0x77);
        let mut modrm = 0xC0;
        // VSIB: gathers and scatters take a vector index register.
        let vsib = map == 2
            && match lead {
                0x62 => matches!(op, 0x90..=0x93 | 0xA0..=0xA3 | 0xC6 | 0xC7),
                0xC4 => matches!(op, 0x90..=0x93),
                _ => false,
            };
        if has_modrm {
            modrm = c.byte()?;
            flags |= Prefixes::MODRM;
            insn.modrm = modrm;
            if modrm < 0xC0 {
                ext.x = x;
                ext.b = bb;
                if vsib {
                    // Dword-index forms (even opcodes) with 64-bit elements (W1) use an index
                    // register half the vector length.
                    let full: u8 = match vl {
                        0 => 16,
                        1 => 32,
                        _ => 64,
                    };
                    ext.vsib = if op & 1 == 0 && w {
                        (full / 2).max(16)
                    } else {
                        full
                    };
                    flags |= Prefixes::VSIB;
                }
                flags |= parse_memory(c, insn, modrm, ext, long)?;
            }
        }
        let imm_size: u8 = match (lead, map) {
            (0x8F, 8) => 1,
            (0x8F, 10) => 4,
            (0x8F, _) => 0,
            (_, 3) => 1,
            (_, 1) if forms::map1_has_imm8(op) => 1,
            _ => 0,
        };
        if imm_size != 0 {
            insn.imm = c.le(usize::from(imm_size))?;
            insn.imm_size = imm_size;
            if is4(lead, map, op) {
                flags |= Prefixes::IS4;
            }
        }
        let mr = validity::ModRm {
            modrm,
            sib: flags & Prefixes::SIB != 0,
        };
        let ok = match (lead, evex) {
            (0x62, Some(mut f)) => {
                f.vvvv = vvvv_full;
                f.r = r != 0;
                f.b = bb != 0;
                f.rprime = rprime != 0;
                f.x = x != 0;
                // With VSIB, V' extends the index register instead of vvvv; outside 64-bit
                // mode there is no index 16-31, so a clear (inverted: set) V' stays invalid.
                if vsib && modrm < 0xC0 && long {
                    f.vprime_used = false;
                }
                validity::evex(mode, f, op, mr)
            }
            _ => {
                let f = validity::VexFields {
                    map,
                    pp,
                    w,
                    l: vl != 0,
                    vvvv: vvvv_full,
                    r: r != 0,
                    b: bb != 0,
                };
                if lead == 0x8F {
                    validity::xop(mode, f, op, mr)
                } else {
                    validity::vex(mode, f, op, mr)
                }
            }
        };
        if !ok && invalid.is_none() {
            *invalid = Some(InvalidReason::Undefined);
        }
        if ok && invalid.is_none() && distinct_operands(lead, map, pp, op) {
            // Destination, sources, mask and VSIB index must be different registers.
            let dest = (modrm >> 3) & 7 | r << 3 | rprime << 4;
            let rm = if modrm >= 0xC0 {
                // EVEX.X extends a register `rm` to 16–31; VEX ignores X there.
                let hi = if lead == 0x62 { x << 4 } else { 0 };
                Some(modrm & 7 | bb << 3 | hi)
            } else if vsib {
                Some(insn.index.number())
            } else {
                None
            };
            let src1 = if vsib && lead == 0x62 {
                None
            } else if lead == 0x62 && long {
                Some(vvvv | ext.vprime << 4)
            } else {
                Some(vvvv)
            };
            // The two sources of an FP16 complex multiply may be the same register.
            let sources_clash = lead == 0xC4 && rm.is_some() && rm == src1;
            let clash = Some(dest) == rm || Some(dest) == src1 || sources_clash;
            if clash {
                *invalid = Some(InvalidReason::Undefined);
            }
        }
        if w {
            flags |= Prefixes::W;
        }
        insn.encoding = match lead {
            0x62 => {
                if long {
                    vvvv |= ext.vprime << 4;
                }
                Encoding::Evex
            }
            0x8F => Encoding::Xop,
            _ => Encoding::Vex,
        };
        insn.rex = 0x40 | u8::from(w) << 3 | r << 2 | x << 1 | bb | rprime << 4;
        insn.vvvv = vvvv;
        insn.vl = vl;
        insn.pp = pp;
        insn.map = map;
        insn.opcode = op;
        insn.osize = if w { 8 } else { 4 };
        insn.prefixes = Prefixes(flags);
        if lead == 0x62 && insn.disp_size == 1 {
            // Compressed displacement: disp8 * N, N from the instruction's tuple type.
            let n = validity::evex_disp8_n(
                mode,
                map,
                pp,
                op,
                w,
                insn.vl,
                flags & Prefixes::BROADCAST != 0,
                modrm,
            );
            if n > 1 {
                let d8 = i64::from(insn.disp as u8 as i8);
                insn.disp = mask_to(d8.wrapping_mul(i64::from(n)) as u64, insn.asize);
            }
            if n != 0 {
                insn.prefixes = Prefixes(flags | Prefixes::DISP8_SCALED);
            }
        }
        Ok(())
    }
}

/// Opcodes whose register operands must all differ (#UD otherwise): VEX gathers (destination,
/// mask and index), EVEX gathers (destination and index), the AVX512-FP16 complex
/// multiplies and the AMX tile dot products and complex multiplies (destination and both
/// sources). Keep in sync with `examples/gen_tables.rs`.
const fn distinct_operands(lead: u8, map: u8, pp: u8, op: u8) -> bool {
    match (lead, map) {
        (0xC4 | 0x62, 2) if pp == 1 && matches!(op, 0x90..=0x93) => true,
        // AMX tile dot products and complex multiplies: three tile registers.
        (0xC4, 2) => matches!((pp, op), (2 | 3, 0x5C) | (_, 0x5E) | (0 | 1, 0x6C)),
        (0x62, 6) => pp >= 2 && matches!(op, 0x56 | 0x57 | 0xD6 | 0xD7),
        _ => false,
    }
}

/// Does this VEX/XOP opcode encode a fourth register operand in bits 7:4 of its immediate
/// byte (`/is4`)? FMA4, `VBLENDVPx`, `VPBLENDVB`, and the XOP multiply-accumulate, `VPCMOV`
/// and `VPPERM` forms.
const fn is4(lead: u8, map: u8, op: u8) -> bool {
    match (lead, map) {
        (0xC4, 3) => matches!(op, 0x4A..=0x4C | 0x5C..=0x5F | 0x68..=0x6F | 0x78..=0x7F),
        (0x8F, 8) => {
            matches!(op, 0x85..=0x87 | 0x8E | 0x8F | 0x95..=0x97 | 0x9E | 0x9F | 0xA2 | 0xA3 | 0xA6 | 0xB6)
        }
        _ => false,
    }
}

/// Parses the memory operand of a ModRM byte with `mod` != 3 (and its SIB and displacement).
/// Returns the prefix flags it implies.
#[inline(always)]
fn parse_memory(
    c: &mut Cursor<'_>,
    insn: &mut Instruction,
    modrm: u8,
    ext: Ext,
    long: bool,
) -> Result<u16, DecodeError> {
    let md = modrm >> 6;
    let rm = modrm & 7;
    let asize = insn.asize;
    let mut flags = Prefixes::MEMORY;
    let mut ss = false;
    let disp_size: usize;
    if asize == 2 {
        const BASE: [u8; 8] = [3, 3, 5, 5, 6, 7, 5, 3];
        const INDEX: [u8; 8] = [6, 7, 6, 7, 0xFF, 0xFF, 0xFF, 0xFF];
        if md == 0 && rm == 6 {
            disp_size = 2;
        } else {
            insn.base = Register::gpr(2, BASE[usize::from(rm)]);
            let ix = INDEX[usize::from(rm)];
            if ix != 0xFF {
                insn.index = Register::gpr(2, ix);
            }
            ss = matches!(rm, 2 | 3 | 6);
            disp_size = match md {
                0 => 0,
                1 => 1,
                _ => 2,
            };
        }
    } else {
        let mut base_num: Option<u8> = Some(rm);
        if rm == 4 {
            let sib = c.byte()?;
            flags |= Prefixes::SIB;
            insn.sib = sib;
            let idx = (sib >> 3) & 7 | ext.x << 3;
            if ext.vsib != 0 {
                let hi = if long { ext.vprime << 4 } else { 0 };
                insn.index = Register::vector(ext.vsib, idx | hi);
            } else if idx != 4 {
                insn.index = Register::gpr(asize, idx);
            }
            base_num = if sib & 7 == 5 && md == 0 {
                None
            } else {
                Some(sib & 7)
            };
        } else if rm == 5 && md == 0 {
            base_num = None;
            if long {
                insn.base = if asize == 8 {
                    Register::RIP
                } else {
                    Register::EIP
                };
                flags |= Prefixes::IP_RELATIVE;
            }
        }
        if let Some(n) = base_num {
            let n = n | ext.b << 3;
            ss = n == 4 || n == 5;
            insn.base = Register::gpr(asize, n);
        }
        disp_size = match (md, base_num) {
            (0, Some(_)) => 0,
            (0, None) | (2, _) => 4,
            _ => 1,
        };
    }
    let v = c.le(disp_size)?;
    insn.disp = mask_to(sign_extend_n(v, disp_size), asize);
    insn.disp_size = disp_size as u8;
    insn.segment = if insn.seg_prefix != Segment::NONE {
        insn.seg_prefix
    } else if ss {
        Segment::SS
    } else {
        Segment::DS
    };
    Ok(flags)
}
