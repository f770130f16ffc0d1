//! Fetch, decode and the integer instructions.

use super::access::{mask_address, Ctx, Fault, GP0, R, UD};
use super::alu::{self, mask, sext, ShiftOp, CF, OF, STATUS};
use super::cpu::{bits, CpuState, Memory, Region};
use super::paging::AccessKind;
use super::{EmulateError, Exception, Outcome, Unsupported};
use crate::defs::{Encoding, Mode, Register, Segment};
use crate::error::{DecodeError, InvalidReason};
use crate::instruction::Instruction;
use crate::operands::{Operand, OperandKind};
use crate::semantic::Mnemonic as Mn;
use crate::{Decoder, Vendor};

/// How an instruction ended.
pub(crate) enum Step {
    /// Completed: advance RIP.
    Done,
    /// A `REP` string instruction stopped early with progress made: RIP stays.
    Partial,
}

/// Fetches, decodes and executes the instruction at RIP.
pub(crate) fn run<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    bytes: &[u8],
) -> Result<Outcome, EmulateError> {
    let tf = ctx.rflags & bits::RFLAGS_TF != 0;
    let result = fetch(ctx, bytes).and_then(|i| execute(ctx, &i).map(|s| (s, i)));
    match result {
        Ok((Step::Done, i)) => {
            ctx.cpu.set_rip(i.next_ip());
            ctx.cpu.set_rflags(ctx.rflags & !bits::RFLAGS_RF);
            Ok(if tf {
                Outcome::SingleStep
            } else {
                Outcome::Completed
            })
        }
        Ok((Step::Partial, _)) => {
            ctx.cpu.set_rflags(ctx.rflags);
            Ok(if tf {
                Outcome::SingleStep
            } else {
                Outcome::Incomplete
            })
        }
        Err(Fault::Exception(e)) => Ok(Outcome::Exception(e)),
        Err(Fault::Retry) => Ok(Outcome::Retry),
        Err(Fault::Unsupported(u)) => Ok(Outcome::Unsupported(u)),
        Err(Fault::Memory(m)) => Err(EmulateError::Memory(m)),
    }
}

/// Reads the instruction at RIP: the supplied bytes first, then through CS and paging, one
/// page at a time, as long as the decoder needs more bytes.
fn fetch<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    supplied: &[u8],
) -> R<Instruction> {
    let rip = ctx.cpu.rip();
    let dec = Decoder::new(ctx.mode).with_vendor(ctx.opts.vendor);
    let mut buf = [0u8; 15];
    let mut have = supplied.len().min(15);
    buf[..have].copy_from_slice(&supplied[..have]);
    loop {
        match dec.decode(&buf[..have], rip) {
            Ok(i) => return Ok(i),
            Err(DecodeError::Invalid(InvalidReason::TooLong)) => return Err(GP0),
            Err(DecodeError::Invalid(_)) => return Err(UD),
            Err(DecodeError::NeedMoreBytes { .. }) => {
                if have >= 15 {
                    return Err(GP0);
                }
                // 16-bit code does not wrap at 0xFFFF: bytes past the CS limit are #GP(0)
                // (the 8086 wrapped; every later processor checks the limit).
                let ip = match ctx.mode {
                    Mode::Bits16 => (rip & 0xFFFF) + have as u64,
                    Mode::Bits32 => (rip + have as u64) & 0xFFFF_FFFF,
                    Mode::Bits64 => rip.wrapping_add(have as u64),
                };
                let la = ctx.linearize(Segment::CS, ip, 1, AccessKind::Execute)?;
                let mut n = (15 - have).min(0x1000 - (la & 0xFFF) as usize);
                if !ctx.long {
                    // Bytes left in CS from `ip` (at least 1: `linearize` checked that one).
                    let cs = ctx.segment(Segment::CS);
                    let end = if cs.attributes.expand_down() {
                        if cs.attributes.default_big() {
                            0xFFFF_FFFF
                        } else {
                            0xFFFF
                        }
                    } else {
                        u64::from(cs.limit)
                    };
                    n = n.min(end.saturating_sub(ip).saturating_add(1).clamp(1, 15) as usize);
                }
                let gpa = ctx.translate(la, AccessKind::Execute)?;
                ctx.mem.read(gpa, &mut buf[have..have + n])?;
                have += n;
            }
        }
    }
}

pub(crate) fn unsupported(i: &Instruction) -> Fault {
    Fault::Unsupported(Unsupported::Instruction(*i))
}

/// Where an integer operand lives.
#[derive(Clone, Copy)]
enum Place {
    Reg(Register),
    Mem(Segment, u64),
    Imm(u64),
}

fn place<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    op: &Operand,
) -> R<Place> {
    Ok(match op.kind {
        OperandKind::Register if op.register.is_gpr() => Place::Reg(op.register),
        OperandKind::Memory => Place::Mem(i.memory_segment(), ctx.effective_address(i)),
        OperandKind::Immediate => Place::Imm(op.value),
        _ => return Err(unsupported(i)),
    })
}

fn le(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

fn from_le(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    let n = b.len().min(8);
    x[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(x)
}

/// Reads an operand of `size` bytes (integer accesses are #AC-checked at their size).
fn load<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    p: Place,
    size: u8,
) -> R<u64> {
    Ok(match p {
        Place::Reg(r) => ctx.reg(r),
        Place::Imm(v) => v & mask(size),
        Place::Mem(s, off) => {
            let mut b = [0u8; 8];
            let n = usize::from(size).min(8);
            ctx.read(s, off, &mut b[..n], n)?;
            u64::from_le_bytes(b)
        }
    })
}

fn store<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    p: Place,
    size: u8,
    v: u64,
) -> R<()> {
    match p {
        Place::Reg(r) => ctx.set_reg(r, v),
        Place::Mem(s, off) => {
            let n = usize::from(size).min(8);
            ctx.write(s, off, &le(v)[..n], n)?;
        }
        Place::Imm(_) => return Err(GP0),
    }
    Ok(())
}

/// A read-modify-write of an integer operand. `f` maps the old value to the new one (or
/// `None`: no write) and runs before anything is written; register results that depend on the
/// old value are written by the caller afterwards.
fn modify<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    p: Place,
    size: u8,
    locked: bool,
    f: impl FnOnce(u64) -> Option<u64>,
) -> R<u64> {
    match p {
        Place::Reg(r) => {
            let old = ctx.reg(r);
            // A 32-bit register destination is written (zero-extended) even when the
            // operation leaves it unchanged, as a shift by 0 does (measured).
            let new = f(old).unwrap_or(old);
            ctx.set_reg(r, new);
            Ok(old)
        }
        Place::Mem(s, off) => {
            let n = usize::from(size).min(8);
            let span = ctx.span(s, off, n, AccessKind::Write, n)?;
            let mut old = [0u8; 8];
            ctx.read_span(&span, &mut old[..n])?;
            let oldv = u64::from_le_bytes(old);
            if let Some(new) = f(oldv) {
                ctx.commit(&span, &old[..n], &le(new)[..n], locked)?;
            } else if locked && span.all_ram() {
                // A locked operation that leaves memory unchanged still reads atomically.
                ctx.commit(&span, &old[..n], &old[..n], true)?;
            }
            Ok(oldv)
        }
        Place::Imm(_) => Err(unsupported(i)),
    }
}

fn set_flags<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    written: u64,
    value: u64,
) {
    ctx.rflags = (ctx.rflags & !written) | (value & written);
}

/// Executes a decoded instruction.
fn execute<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
) -> R<Step> {
    let m = i.mnemonic().ok_or_else(|| unsupported(i))?;
    if i.encoding() != Encoding::Legacy || super::vector::is_vector_move(m, i) {
        return super::vector::execute(ctx, i, m).map(|()| Step::Done);
    }
    if super::string::is_string(m) {
        return super::string::execute(ctx, i, m);
    }
    let ops = i.operands().ok_or_else(|| unsupported(i))?;
    let ops = ops.as_slice();
    let op = |n: usize| ops.get(n).copied().ok_or_else(|| unsupported(i));
    let locked = i.has_lock();
    let map = i.map().0;
    let opc = i.opcode();
    // SETcc / CMOVcc.
    if map == 1 && (0x90..=0x9F).contains(&opc) {
        let p = place(ctx, i, &op(0)?)?;
        let v = u64::from(alu::condition(opc & 15, ctx.rflags));
        store(ctx, p, 1, v)?;
        return Ok(Step::Done);
    }
    if map == 1 && (0x40..=0x4F).contains(&opc) {
        let (d, s) = (op(0)?, op(1)?);
        let size = d.size as u8;
        let sp = place(ctx, i, &s)?;
        let v = load(ctx, sp, size)?;
        if alu::condition(opc & 15, ctx.rflags) {
            ctx.set_reg(d.register, v);
        } else if size == 4 {
            let cur = ctx.reg(d.register);
            ctx.set_reg(d.register, cur);
        }
        return Ok(Step::Done);
    }
    match m {
        Mn::Mov | Mn::Movnti | Mn::Movdiri => {
            let (d, s) = (op(0)?, op(1)?);
            let size = d.size as u8;
            let sp = place(ctx, i, &s)?;
            let dp = place(ctx, i, &d)?;
            let v = load(ctx, sp, size)?;
            store(ctx, dp, size, v)?;
        }
        Mn::Movzx | Mn::Movsx | Mn::Movsxd => {
            let (d, s) = (op(0)?, op(1)?);
            let sp = place(ctx, i, &s)?;
            let v = load(ctx, sp, s.size as u8)?;
            let v = if m == Mn::Movzx {
                v
            } else {
                sext(v, s.size as u8) as u64
            };
            ctx.set_reg(d.register, v & mask(d.size as u8));
        }
        Mn::Movbe => {
            let (d, s) = (op(0)?, op(1)?);
            let size = d.size as u8;
            let sp = place(ctx, i, &s)?;
            let dp = place(ctx, i, &d)?;
            let v = load(ctx, sp, size)?;
            let swapped = v.swap_bytes() >> (64 - u32::from(size) * 8);
            store(ctx, dp, size, swapped)?;
        }
        Mn::Movdir64b => movdir64b(ctx, i, &op(0)?)?,
        Mn::Add | Mn::Or | Mn::Adc | Mn::Sbb | Mn::And | Mn::Sub | Mn::Xor | Mn::Cmp | Mn::Test => {
            let (d, s) = (op(0)?, op(1)?);
            let size = d.size as u8;
            let sp = place(ctx, i, &s)?;
            let b = load(ctx, sp, size)?;
            let dp = place(ctx, i, &d)?;
            let cf = ctx.rflags & CF != 0;
            let calc = |a: u64| match m {
                Mn::Add => alu::add(a, b, false, size),
                Mn::Adc => alu::add(a, b, cf, size),
                Mn::Sub | Mn::Cmp => alu::sub(a, b, false, size),
                Mn::Sbb => alu::sub(a, b, cf, size),
                Mn::And | Mn::Test => alu::logic(a & b, size),
                Mn::Or => alu::logic(a | b, size),
                _ => alu::logic(a ^ b, size),
            };
            let flags = if matches!(m, Mn::Cmp | Mn::Test) {
                calc(load(ctx, dp, size)?).1
            } else {
                let old = modify(ctx, i, dp, size, locked, |a| Some(calc(a).0))?;
                calc(old).1
            };
            set_flags(ctx, STATUS, flags);
        }
        Mn::Inc | Mn::Dec | Mn::Neg | Mn::Not => {
            let d = op(0)?;
            let size = d.size as u8;
            let dp = place(ctx, i, &d)?;
            let calc = |a: u64| match m {
                Mn::Inc => alu::add(a, 1, false, size),
                Mn::Dec => alu::sub(a, 1, false, size),
                Mn::Neg => alu::sub(0, a, false, size),
                _ => (!a & mask(size), 0),
            };
            let old = modify(ctx, i, dp, size, locked, |a| Some(calc(a).0))?;
            let f = calc(old).1;
            match m {
                Mn::Inc | Mn::Dec => set_flags(ctx, STATUS & !CF, f),
                Mn::Neg => set_flags(ctx, STATUS, f),
                _ => {}
            }
        }
        Mn::Xadd => {
            let (d, s) = (op(0)?, op(1)?);
            let size = d.size as u8;
            let b = ctx.reg(s.register);
            let dp = place(ctx, i, &d)?;
            let old = modify(ctx, i, dp, size, locked, |a| {
                Some(alu::add(a, b, false, size).0)
            })?;
            set_flags(ctx, STATUS, alu::add(old, b, false, size).1);
            ctx.set_reg(s.register, old);
            if let Place::Reg(r) = dp {
                ctx.set_reg(r, alu::add(old, b, false, size).0);
            }
        }
        Mn::Xchg => {
            let (a, b) = (op(0)?, op(1)?);
            let size = a.size as u8;
            let (mem, reg) = if b.kind == OperandKind::Memory {
                (b, a)
            } else {
                (a, b)
            };
            let r = reg.register;
            let v = ctx.reg(r);
            let mp = place(ctx, i, &mem)?;
            // XCHG with memory is locked whether or not it has a LOCK prefix.
            let old = modify(ctx, i, mp, size, mp_is_mem(mp), |_| Some(v))?;
            ctx.set_reg(r, old);
        }
        Mn::Cmpxchg => cmpxchg(ctx, i, &op(0)?, &op(1)?)?,
        Mn::Cmpxchg8b | Mn::Cmpxchg16b => cmpxchg_wide(ctx, i, &op(0)?)?,
        Mn::Mul | Mn::Imul | Mn::Div | Mn::Idiv => muldiv(ctx, i, m, ops)?,
        Mn::Rol | Mn::Ror | Mn::Rcl | Mn::Rcr | Mn::Shl | Mn::Sal | Mn::Shr | Mn::Sar => {
            let (d, c) = (op(0)?, op(1)?);
            let size = d.size as u8;
            let cp = place(ctx, i, &c)?;
            let count = load(ctx, cp, 1)?;
            let sop = match m {
                Mn::Rol => ShiftOp::Rol,
                Mn::Ror => ShiftOp::Ror,
                Mn::Rcl => ShiftOp::Rcl,
                Mn::Rcr => ShiftOp::Rcr,
                Mn::Shr => ShiftOp::Shr,
                Mn::Sar => ShiftOp::Sar,
                _ => ShiftOp::Shl,
            };
            let cf = ctx.rflags & CF != 0;
            let dp = place(ctx, i, &d)?;
            let old = modify(ctx, i, dp, size, locked, |a| {
                alu::shift(sop, a, count, size, cf).map(|r| r.0)
            })?;
            if let Some((_, f, written)) = alu::shift(sop, old, count, size, cf) {
                set_flags(ctx, written, f);
            }
        }
        Mn::Shld | Mn::Shrd => {
            let (d, s, c) = (op(0)?, op(1)?, op(2)?);
            let size = d.size as u8;
            let src = ctx.reg(s.register);
            let cp = place(ctx, i, &c)?;
            let count = load(ctx, cp, 1)?;
            let left = m == Mn::Shld;
            let dp = place(ctx, i, &d)?;
            let old = modify(ctx, i, dp, size, locked, |a| {
                alu::double_shift(left, a, src, count, size).map(|r| r.0)
            })?;
            if let Some((_, f)) = alu::double_shift(left, old, src, count, size) {
                set_flags(ctx, STATUS, f);
            }
        }
        Mn::Bt | Mn::Bts | Mn::Btr | Mn::Btc => bit_test(ctx, i, m, &op(0)?, &op(1)?)?,
        _ => return Err(unsupported(i)),
    }
    Ok(Step::Done)
}

fn mp_is_mem(p: Place) -> bool {
    matches!(p, Place::Mem(..))
}

fn movdir64b<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    dest: &Operand,
) -> R<()> {
    let src_off = ctx.effective_address(i);
    let dst_off = mask_address(ctx.reg(dest.register), i.address_size());
    let dst_la = ctx.linearize(Segment::ES, dst_off, 64, AccessKind::Write)?;
    if dst_la % 64 != 0 {
        return Err(GP0);
    }
    let mut data = [0u8; 64];
    ctx.read(i.memory_segment(), src_off, &mut data, 1)?;
    ctx.write(Segment::ES, dst_off, &data, 1)
}

fn cmpxchg<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    d: &Operand,
    s: &Operand,
) -> R<()> {
    let size = d.size as u8;
    let acc_reg = Register::gpr(size, 0);
    let acc = ctx.reg(acc_reg);
    let src = ctx.reg(s.register);
    let dp = place(ctx, i, d)?;
    let old = match dp {
        Place::Mem(seg, off) => {
            let n = usize::from(size);
            let span = ctx.span(seg, off, n, AccessKind::Write, n)?;
            let mut old = [0u8; 8];
            ctx.read_span(&span, &mut old[..n])?;
            let oldv = u64::from_le_bytes(old);
            let new = if oldv == acc { src } else { oldv };
            let device = span.pieces().iter().any(|p| p.2 == Region::Device);
            if oldv == acc || device || i.has_lock() {
                // The processor writes the destination even when the comparison fails.
                ctx.commit(&span, &old[..n], &le(new)[..n], i.has_lock())?;
            }
            oldv
        }
        Place::Reg(r) => {
            let oldv = ctx.reg(r);
            // Intel's pseudo-code writes the destination back on failure (zero-extending a
            // 32-bit register); AMD processors leave it alone (measured on EPYC).
            if oldv == acc || ctx.opts.vendor == Vendor::Intel {
                ctx.set_reg(r, if oldv == acc { src } else { oldv });
            }
            oldv
        }
        Place::Imm(_) => return Err(unsupported(i)),
    };
    set_flags(ctx, STATUS, alu::sub(acc, old, false, size).1);
    if old != acc {
        ctx.set_reg(acc_reg, old);
    }
    Ok(())
}

fn cmpxchg_wide<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    d: &Operand,
) -> R<()> {
    let n = usize::from(d.size).min(16);
    let half = (n / 2) as u8;
    let (seg, off) = match place(ctx, i, d)? {
        Place::Mem(s, o) => (s, o),
        _ => return Err(UD),
    };
    if n == 16 {
        let la = ctx.linearize(seg, off, n, AccessKind::Write)?;
        if la % 16 != 0 {
            return Err(GP0);
        }
    }
    let (rax, rdx) = (Register::gpr(half, 0), Register::gpr(half, 2));
    let (rbx, rcx) = (Register::gpr(half, 3), Register::gpr(half, 1));
    let mut expect = [0u8; 16];
    expect[..n / 2].copy_from_slice(&le(ctx.reg(rax))[..n / 2]);
    expect[n / 2..n].copy_from_slice(&le(ctx.reg(rdx))[..n / 2]);
    let mut new = [0u8; 16];
    new[..n / 2].copy_from_slice(&le(ctx.reg(rbx))[..n / 2]);
    new[n / 2..n].copy_from_slice(&le(ctx.reg(rcx))[..n / 2]);
    let span = ctx.span(seg, off, n, AccessKind::Write, 8)?;
    let mut old = [0u8; 16];
    ctx.read_span(&span, &mut old[..n])?;
    let equal = old[..n] == expect[..n];
    let device = span.pieces().iter().any(|p| p.2 == Region::Device);
    if equal || device || i.has_lock() {
        let write = if equal { new } else { old };
        ctx.commit(&span, &old[..n], &write[..n], i.has_lock())?;
    }
    set_flags(ctx, alu::ZF, if equal { alu::ZF } else { 0 });
    if !equal {
        ctx.set_reg(rax, from_le(&old[..n / 2]));
        ctx.set_reg(rdx, from_le(&old[n / 2..n]));
    }
    Ok(())
}

fn muldiv<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    m: Mn,
    ops: &[Operand],
) -> R<()> {
    let first = *ops.first().ok_or_else(|| unsupported(i))?;
    if ops.len() >= 2 {
        // IMUL r, r/m [, imm]: the truncated signed product.
        let size = first.size as u8;
        let sp = place(ctx, i, &ops[1])?;
        let a = load(ctx, sp, size)?;
        let b = match ops.get(2) {
            Some(imm) => imm.value,
            None => ctx.reg(first.register),
        };
        let p = i128::from(sext(a, size)) * i128::from(sext(b, size));
        let r = p as u64 & mask(size);
        let overflow = i128::from(sext(r, size)) != p;
        ctx.set_reg(first.register, r);
        set_flags(ctx, CF | OF, if overflow { CF | OF } else { 0 });
        return Ok(());
    }
    let size = first.size as u8;
    let sp = place(ctx, i, &first)?;
    let src = load(ctx, sp, size)?;
    let bits = u32::from(size) * 8;
    let (lo_reg, hi_reg) = if size == 1 {
        (Register::gpr(2, 0), Register::NONE)
    } else {
        (Register::gpr(size, 0), Register::gpr(size, 2))
    };
    let lo = ctx.reg(Register::gpr(size, 0));
    let hi = if size == 1 {
        (ctx.reg(Register::gpr(2, 0)) >> 8) & 0xFF
    } else {
        ctx.reg(hi_reg)
    };
    let (q, r) = match m {
        Mn::Mul | Mn::Imul => {
            let (p, overflow) = if m == Mn::Mul {
                let p = u128::from(lo) * u128::from(src);
                (p, p >> bits != 0)
            } else {
                let p = i128::from(sext(lo, size)) * i128::from(sext(src, size));
                (p as u128, i128::from(sext(p as u64, size)) != p)
            };
            set_flags(ctx, CF | OF, if overflow { CF | OF } else { 0 });
            (p as u64 & mask(size), (p >> bits) as u64 & mask(size))
        }
        _ => {
            if src & mask(size) == 0 {
                return Err(Fault::Exception(Exception::DivideError));
            }
            let dividend = u128::from(hi) << bits | u128::from(lo);
            if m == Mn::Div {
                let q = dividend / u128::from(src);
                if q > u128::from(mask(size)) {
                    return Err(Fault::Exception(Exception::DivideError));
                }
                (q as u64, (dividend % u128::from(src)) as u64)
            } else {
                // Sign-extend the 2*size-byte dividend.
                let shift = 128 - 2 * bits;
                let n = ((dividend << shift) as i128) >> shift;
                let dv = i128::from(sext(src, size));
                let q = n
                    .checked_div(dv)
                    .ok_or(Fault::Exception(Exception::DivideError))?;
                let r = n
                    .checked_rem(dv)
                    .ok_or(Fault::Exception(Exception::DivideError))?;
                if q != i128::from(sext(q as u64, size)) {
                    return Err(Fault::Exception(Exception::DivideError));
                }
                (q as u64 & mask(size), r as u64 & mask(size))
            }
        }
    };
    if size == 1 {
        ctx.set_reg(lo_reg, (r & 0xFF) << 8 | (q & 0xFF));
    } else {
        ctx.set_reg(lo_reg, q);
        ctx.set_reg(hi_reg, r);
    }
    Ok(())
}

fn bit_test<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    m: Mn,
    d: &Operand,
    b: &Operand,
) -> R<()> {
    let size = d.size as u8;
    let bits = u64::from(size) * 8;
    let bp = place(ctx, i, b)?;
    let raw = load(ctx, bp, size)?;
    let mut dp = place(ctx, i, d)?;
    let bit = match (dp, bp) {
        (Place::Mem(s, off), Place::Reg(_)) => {
            // A register bit offset is signed and selects the operand-sized unit holding it.
            let offset = sext(raw, size);
            let unit = offset.div_euclid(bits as i64);
            let at = off.wrapping_add((unit * i64::from(size)) as u64);
            dp = Place::Mem(s, mask_address(at, i.address_size()));
            offset.rem_euclid(bits as i64) as u64
        }
        _ => raw & (bits - 1),
    };
    let old = if m == Mn::Bt {
        load(ctx, dp, size)?
    } else {
        modify(ctx, i, dp, size, i.has_lock(), |v| {
            Some(match m {
                Mn::Bts => v | 1 << bit,
                Mn::Btr => v & !(1 << bit),
                _ => v ^ 1 << bit,
            })
        })?
    };
    set_flags(ctx, CF, if old >> bit & 1 != 0 { CF } else { 0 });
    Ok(())
}
