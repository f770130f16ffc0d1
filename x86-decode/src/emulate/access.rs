//! The emulation context: registers, segmentation, translation, and memory accesses split at
//! page boundaries, with the alignment checks and the locked read-modify-write protocol.

use super::cpu::{bits, CpuState, Memory, MemoryError, Region, SegmentRegister};
use super::paging::{self, Access, AccessKind, PagingState, TranslationCache, WalkError};
use super::{Exception, Options, Unsupported};
use crate::defs::{Mode, Register, Segment};
use crate::instruction::Instruction;

/// Why an instruction stops early.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    Exception(Exception),
    Retry,
    Unsupported(Unsupported),
    Memory(MemoryError),
}

impl From<Exception> for Fault {
    fn from(e: Exception) -> Self {
        Fault::Exception(e)
    }
}

impl From<MemoryError> for Fault {
    fn from(e: MemoryError) -> Self {
        Fault::Memory(e)
    }
}

pub(crate) type R<T> = Result<T, Fault>;

/// #GP(0).
pub(crate) const GP0: Fault = Fault::Exception(Exception::GeneralProtection(0));
/// #UD.
pub(crate) const UD: Fault = Fault::Exception(Exception::InvalidOpcode);

/// A linear range translated into at most two guest-physical pieces (split at a page boundary).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub la: u64,
    pub parts: [(u64, usize, Region); 2],
    pub count: usize,
}

impl Span {
    pub(crate) fn pieces(&self) -> &[(u64, usize, Region)] {
        &self.parts[..self.count.min(2)]
    }

    pub(crate) fn all_ram(&self) -> bool {
        self.pieces().iter().all(|p| p.2 == Region::Ram)
    }
}

/// The state of one emulation.
pub(crate) struct Ctx<'a, C: CpuState + ?Sized, M: Memory + ?Sized> {
    pub cpu: &'a mut C,
    pub mem: &'a mut M,
    cache: &'a mut TranslationCache,
    pub opts: &'a Options,
    pub paging: PagingState,
    /// RFLAGS as the instruction leaves it (written back on completion).
    pub rflags: u64,
    pub cpl: u8,
    pub mode: Mode,
    /// 64-bit mode (EFER.LMA and CS.L).
    pub long: bool,
    /// Real or virtual-8086 mode: segment limits apply, types and presence do not.
    pub real: bool,
    /// Virtual-8086 mode.
    pub vm86: bool,
    segs: [Option<SegmentRegister>; 6],
}

impl<'a, C: CpuState + ?Sized, M: Memory + ?Sized> Ctx<'a, C, M> {
    pub(crate) fn new(
        cpu: &'a mut C,
        mem: &'a mut M,
        cache: &'a mut TranslationCache,
        opts: &'a Options,
    ) -> Self {
        let cr0 = cpu.cr0();
        let cr4 = cpu.cr4();
        let efer = cpu.efer();
        let rflags = cpu.rflags();
        let cs = cpu.segment(Segment::CS);
        let protected = cr0 & bits::CR0_PE != 0;
        let lma = efer & bits::EFER_LMA != 0;
        let vm86 = protected && !lma && rflags & bits::RFLAGS_VM != 0;
        let real = !protected || vm86;
        let long = lma && cs.attributes.long();
        let mode = if long {
            Mode::Bits64
        } else if !real && cs.attributes.default_big() {
            Mode::Bits32
        } else {
            Mode::Bits16
        };
        let mut segs = [None; 6];
        segs[1] = Some(cs);
        let cpl = if !protected {
            0
        } else if vm86 {
            3
        } else {
            let ss = cpu.segment(Segment::SS);
            segs[2] = Some(ss);
            ss.attributes.dpl()
        };
        let cr3 = if cr0 & bits::CR0_PG != 0 {
            cpu.cr3()
        } else {
            0
        };
        let mut paging = PagingState {
            cr0,
            cr3,
            cr4,
            efer,
            pdptes: None,
            max_physical_bits: opts.max_physical_bits,
        };
        if paging.mode() == paging::PagingMode::Pae {
            paging.pdptes = cpu.pae_pdptes();
        }
        Self {
            cpu,
            mem,
            cache,
            opts,
            paging,
            rflags,
            cpl,
            mode,
            long,
            real,
            vm86,
            segs,
        }
    }

    pub(crate) fn segment(&mut self, s: Segment) -> SegmentRegister {
        let i = usize::from(s.0).min(5);
        match self.segs[i] {
            Some(d) => d,
            None => {
                let d = self.cpu.segment(Segment(i as u8));
                self.segs[i] = Some(d);
                d
            }
        }
    }

    /// Wraps a linear address to the width of the mode (32 bits outside 64-bit mode).
    pub(crate) fn wrap_la(&self, la: u64) -> u64 {
        if self.long {
            la
        } else {
            la & 0xFFFF_FFFF
        }
    }

    /// Segmentation: the linear address of `size` bytes at `offset` in segment `s`.
    pub(crate) fn linearize(
        &mut self,
        s: Segment,
        offset: u64,
        size: usize,
        kind: AccessKind,
    ) -> R<u64> {
        let fault = if s == Segment::SS {
            Fault::Exception(Exception::StackFault(0))
        } else {
            GP0
        };
        let size = size.max(1) as u64;
        if self.long {
            let base = if s == Segment::FS || s == Segment::GS {
                self.segment(s).base
            } else {
                0
            };
            let la = base.wrapping_add(offset);
            let la57 = self.paging.cr4 & bits::CR4_LA57 != 0;
            if !paging::is_canonical(la, la57)
                || !paging::is_canonical(la.wrapping_add(size - 1), la57)
            {
                return Err(fault);
            }
            return Ok(la);
        }
        let d = self.segment(s);
        let a = d.attributes;
        if !self.real {
            if !a.present() {
                return Err(fault);
            }
            let ok = match kind {
                AccessKind::Write => !a.is_code() && a.writable_or_readable(),
                AccessKind::Read => !a.is_code() || a.writable_or_readable(),
                AccessKind::Execute => a.is_code(),
            };
            if !ok {
                return Err(fault);
            }
        }
        let last = offset + size - 1;
        let limit = u64::from(d.limit);
        let within = if a.expand_down() {
            let upper = if a.default_big() { 0xFFFF_FFFF } else { 0xFFFF };
            offset > limit && last <= upper
        } else {
            last <= limit
        };
        if !within {
            return Err(fault);
        }
        Ok(d.base.wrapping_add(offset) & 0xFFFF_FFFF)
    }

    /// Translates one linear address.
    pub(crate) fn translate(&mut self, la: u64, kind: AccessKind) -> R<u64> {
        let access = Access {
            kind,
            user: self.cpl == 3,
            ac: self.rflags & u64::from(crate::rflags::AC) != 0,
        };
        let t = self
            .cache
            .translate(
                self.mem,
                &self.paging,
                la,
                access,
                self.opts.update_accessed_dirty,
            )
            .map_err(|e| match e {
                WalkError::PageFault(p) => Fault::Exception(Exception::PageFault(p)),
                WalkError::NonCanonical(_) => GP0,
                WalkError::Memory(m) => Fault::Memory(m),
                WalkError::Contended => Fault::Retry,
            })?;
        Ok(t.gpa)
    }

    /// Is alignment checking on (CPL 3, CR0.AM, RFLAGS.AC)?
    pub(crate) fn ac_enabled(&self) -> bool {
        self.cpl == 3
            && self.paging.cr0 & bits::CR0_AM != 0
            && self.rflags & u64::from(crate::rflags::AC) != 0
    }

    /// Segmentation, translation of both pieces, then the #AC check for alignment `align`
    /// (1 = none).
    pub(crate) fn span(
        &mut self,
        s: Segment,
        offset: u64,
        size: usize,
        kind: AccessKind,
        align: usize,
    ) -> R<Span> {
        let la = self.linearize(s, offset, size, kind)?;
        // Alignment is checked on the linear address, before translation (#AC wins over #PF).
        if align > 1 && self.ac_enabled() && la % align as u64 != 0 {
            return Err(Fault::Exception(Exception::AlignmentCheck));
        }
        let first = size.min(0x1000 - (la & 0xFFF) as usize);
        let g1 = self.translate(la, kind)?;
        let mut span = Span {
            la,
            parts: [(g1, first, Region::Ram), (0, 0, Region::Ram)],
            count: 1,
        };
        if first < size {
            let la2 = self.wrap_la(la.wrapping_add(first as u64));
            let g2 = self.translate(la2, kind)?;
            span.parts[1] = (g2, size - first, Region::Ram);
            span.count = 2;
        }
        for p in span.parts.iter_mut().take(span.count) {
            p.2 = self.mem.region(p.0);
        }
        Ok(span)
    }

    pub(crate) fn read_span(&mut self, span: &Span, buf: &mut [u8]) -> R<()> {
        let mut at = 0;
        for &(gpa, len, _) in span.pieces() {
            let dst = buf.get_mut(at..at + len).ok_or(GP0)?;
            self.mem.read(gpa, dst)?;
            at += len;
        }
        Ok(())
    }

    pub(crate) fn write_span(&mut self, span: &Span, data: &[u8]) -> R<()> {
        let mut at = 0;
        for &(gpa, len, _) in span.pieces() {
            let src = data.get(at..at + len).ok_or(GP0)?;
            self.mem.write(gpa, src)?;
            at += len;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `s:offset`, with #AC alignment `align`.
    pub(crate) fn read(&mut self, s: Segment, offset: u64, buf: &mut [u8], align: usize) -> R<()> {
        let span = self.span(s, offset, buf.len(), AccessKind::Read, align)?;
        self.read_span(&span, buf)
    }

    /// Writes `data` at `s:offset`, with #AC alignment `align`.
    pub(crate) fn write(&mut self, s: Segment, offset: u64, data: &[u8], align: usize) -> R<()> {
        let span = self.span(s, offset, data.len(), AccessKind::Write, align)?;
        self.write_span(&span, data)
    }

    /// Finishes a read-modify-write whose operand `span` held `old`: writes `new`. Locked
    /// operations on RAM go through one compare-exchange (`Retry` if the bytes changed). An
    /// operand split between RAM and a device compare-exchanges the RAM part and then writes
    /// the device part; one split between two RAM pages cannot be made atomic (split lock).
    pub(crate) fn commit(&mut self, span: &Span, old: &[u8], new: &[u8], locked: bool) -> R<()> {
        if !locked || !span.pieces().iter().any(|p| p.2 == Region::Ram) {
            return self.write_span(span, new);
        }
        if span.all_ram() && span.count != 1 {
            return Err(Fault::Unsupported(Unsupported::SplitLock {
                address: span.la,
            }));
        }
        let mut at = 0;
        let mut device = None;
        for &(gpa, len, region) in span.pieces() {
            let (o, n) = (
                old.get(at..at + len).ok_or(GP0)?,
                new.get(at..at + len).ok_or(GP0)?,
            );
            if region == Region::Ram {
                self.compare_exchange_piece(span.la, gpa, o, n)?;
            } else {
                device = Some((gpa, at, len));
            }
            at += len;
        }
        if let Some((gpa, at, len)) = device {
            self.mem.write(gpa, new.get(at..at + len).ok_or(GP0)?)?;
        }
        Ok(())
    }

    /// Atomically replaces `old` by `new` at `gpa` (RAM, inside one page), widening to the
    /// aligned 1/2/4/8/16-byte block that holds it.
    fn compare_exchange_piece(&mut self, la: u64, gpa: u64, old: &[u8], new: &[u8]) -> R<()> {
        let size = old.len();
        let width = [1usize, 2, 4, 8, 16]
            .into_iter()
            .find(|&w| w >= size && gpa / w as u64 == (gpa + size as u64 - 1) / w as u64);
        let Some(width) = width else {
            return match self.mem.compare_exchange_split(gpa, old, new) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Fault::Retry),
                Err(MemoryError::NotAtomic(_)) => {
                    Err(Fault::Unsupported(Unsupported::SplitLock { address: la }))
                }
                Err(e) => Err(e.into()),
            };
        };
        let base = gpa & !(width as u64 - 1);
        let off = (gpa - base) as usize;
        let mut cur = [0u8; 16];
        self.mem.read(base, &mut cur[..width])?;
        if cur.get(off..off + size) != Some(old) {
            return Err(Fault::Retry);
        }
        let mut next = cur;
        next[off..off + size].copy_from_slice(new);
        if self
            .mem
            .compare_exchange(base, &cur[..width], &next[..width])?
        {
            Ok(())
        } else {
            Err(Fault::Retry)
        }
    }

    /// A general-purpose register's value at its size (zero-extended).
    pub(crate) fn reg(&mut self, r: Register) -> u64 {
        let n = r.number();
        match r.class() {
            1 if n >= 16 => (self.cpu.gpr(usize::from(n - 16)) >> 8) & 0xFF,
            1 => self.cpu.gpr(usize::from(n & 15)) & 0xFF,
            2 => self.cpu.gpr(usize::from(n & 15)) & 0xFFFF,
            3 => self.cpu.gpr(usize::from(n & 15)) & 0xFFFF_FFFF,
            4 => self.cpu.gpr(usize::from(n & 15)),
            _ => 0,
        }
    }

    /// Writes a general-purpose register: 8/16-bit writes merge, 32-bit writes zero-extend.
    pub(crate) fn set_reg(&mut self, r: Register, v: u64) {
        let n = r.number();
        let (idx, mask, shift) = match r.class() {
            1 if n >= 16 => (usize::from(n - 16), 0xFF, 8),
            1 => (usize::from(n & 15), 0xFF, 0),
            2 => (usize::from(n & 15), 0xFFFF, 0),
            3 => {
                self.cpu.set_gpr(usize::from(n & 15), v & 0xFFFF_FFFF);
                return;
            }
            4 => {
                self.cpu.set_gpr(usize::from(n & 15), v);
                return;
            }
            _ => return,
        };
        let old = self.cpu.gpr(idx);
        self.cpu
            .set_gpr(idx, (old & !(mask << shift)) | ((v & mask) << shift));
    }

    /// The offset (effective address, wrapped to the address size) of `i`'s memory operand.
    pub(crate) fn effective_address(&mut self, i: &Instruction) -> u64 {
        if let Some(t) = i.ip_relative_target() {
            return t;
        }
        let mut a = i.memory_displacement();
        if i.memory_base() != Register::NONE {
            a = a.wrapping_add(self.reg(i.memory_base()));
        }
        let index = i.memory_index();
        if index != Register::NONE && index.is_gpr() {
            a = a.wrapping_add(self.reg(index).wrapping_mul(u64::from(i.memory_scale())));
        }
        mask_address(a, i.address_size())
    }
}

/// Wraps `a` to an address size of `asize` bytes.
pub(crate) const fn mask_address(a: u64, asize: u8) -> u64 {
    match asize {
        2 => a & 0xFFFF,
        4 => a & 0xFFFF_FFFF,
        _ => a,
    }
}
