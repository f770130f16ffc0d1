//! The string instructions with `REP`/`REPE`/`REPNE`: `MOVS`, `CMPS`, `STOS`, `LODS`, `SCAS`,
//! `INS`, `OUTS`.
//!
//! RCX, RSI and RDI are used at the address size and wrap at it. At most
//! [`Options::max_rep_iterations`](super::Options::max_rep_iterations) iterations run per call
//! (one with RFLAGS.TF); the progress registers are written after every call, including one that
//! ends in a fault, so the instruction resumes where it stopped, as on hardware. For
//! `MOVS`/`STOS` going forward without alignment checking, a run of elements that stays inside
//! one page on each side is translated once; between RAM pages it is moved as one block, and
//! with a device on either side it stays one access per element, in order.

use super::access::{mask_address, Ctx, Fault, R};
use super::alu::{self, mask, STATUS, ZF};
use super::cpu::{bits, CpuState, Memory, Region};
use super::exec::{unsupported, Step};
use super::paging::AccessKind;
use super::Unsupported;
use crate::defs::{Register, Segment};
use crate::instruction::{Instruction, Prefixes};
use crate::semantic::Mnemonic as Mn;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Movs,
    Cmps,
    Stos,
    Lods,
    Scas,
    Ins,
    Outs,
}

fn classify(m: Mn) -> Option<(Op, u8)> {
    Some(match m {
        Mn::Movsb => (Op::Movs, 1),
        Mn::Movsw => (Op::Movs, 2),
        Mn::Movsd => (Op::Movs, 4),
        Mn::Movsq => (Op::Movs, 8),
        Mn::Cmpsb => (Op::Cmps, 1),
        Mn::Cmpsw => (Op::Cmps, 2),
        Mn::Cmpsd => (Op::Cmps, 4),
        Mn::Cmpsq => (Op::Cmps, 8),
        Mn::Stosb => (Op::Stos, 1),
        Mn::Stosw => (Op::Stos, 2),
        Mn::Stosd => (Op::Stos, 4),
        Mn::Stosq => (Op::Stos, 8),
        Mn::Lodsb => (Op::Lods, 1),
        Mn::Lodsw => (Op::Lods, 2),
        Mn::Lodsd => (Op::Lods, 4),
        Mn::Lodsq => (Op::Lods, 8),
        Mn::Scasb => (Op::Scas, 1),
        Mn::Scasw => (Op::Scas, 2),
        Mn::Scasd => (Op::Scas, 4),
        Mn::Scasq => (Op::Scas, 8),
        Mn::Insb => (Op::Ins, 1),
        Mn::Insw => (Op::Ins, 2),
        Mn::Insd => (Op::Ins, 4),
        Mn::Outsb => (Op::Outs, 1),
        Mn::Outsw => (Op::Outs, 2),
        Mn::Outsd => (Op::Outs, 4),
        _ => return None,
    })
}

/// Is `m` a string instruction (as opposed to, say, the SSE `MOVSD`)?
pub(crate) fn is_string(m: Mn) -> bool {
    classify(m).is_some()
}

/// The progress registers of a string instruction, written back on every exit.
struct Progress {
    asize: u8,
    rcx: u64,
    rsi: u64,
    rdi: u64,
}

pub(crate) fn execute<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    m: Mn,
) -> R<Step> {
    if i.map().0 != 0 {
        return Err(unsupported(i));
    }
    let Some((op, n)) = classify(m) else {
        return Err(unsupported(i));
    };
    if matches!(op, Op::Ins | Op::Outs) && !ctx.real && !ctx.vm86 {
        let iopl = (ctx.rflags >> 12) & 3;
        if u64::from(ctx.cpl) > iopl {
            return Err(Fault::Unsupported(Unsupported::IoPermission));
        }
    } else if matches!(op, Op::Ins | Op::Outs) && ctx.vm86 {
        return Err(Fault::Unsupported(Unsupported::IoPermission));
    }
    let asize = i.address_size();
    let p = i.prefixes();
    let rep = p.contains(Prefixes::REP) || p.contains(Prefixes::REPNE);
    let repne = p.contains(Prefixes::REPNE);
    let src_seg = match i.segment_prefix() {
        Segment::NONE => Segment::DS,
        s => s,
    };
    let mut pr = Progress {
        asize,
        rcx: ctx.reg(Register::gpr(asize, 1)),
        rsi: ctx.reg(Register::gpr(asize, 6)),
        rdi: ctx.reg(Register::gpr(asize, 7)),
    };
    if rep && pr.rcx == 0 {
        return Ok(Step::Done);
    }
    let cap = if ctx.rflags & bits::RFLAGS_TF != 0 {
        1
    } else {
        u64::from(ctx.opts.max_rep_iterations.max(1))
    };
    let down = ctx.rflags & u64::from(crate::rflags::DF) != 0;
    let delta = if down {
        (n as u64).wrapping_neg()
    } else {
        u64::from(n)
    };
    let mut done = 0u64;
    let result = loop {
        let mut count = 1;
        let step = if rep && matches!(op, Op::Movs | Op::Stos) && !down {
            block(ctx, op, n, src_seg, &pr, (cap - done).min(pr.rcx))
        } else {
            Ok(None)
        };
        let r = match step {
            Ok(Some(k)) => {
                count = k;
                Ok(false)
            }
            Ok(None) => element(ctx, op, n, src_seg, &pr),
            Err(e) => Err(e),
        };
        let stop = match r {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let adv = delta.wrapping_mul(count);
        if matches!(op, Op::Movs | Op::Cmps | Op::Lods | Op::Outs) {
            pr.rsi = mask_address(pr.rsi.wrapping_add(adv), asize);
        }
        if matches!(op, Op::Movs | Op::Cmps | Op::Stos | Op::Scas | Op::Ins) {
            pr.rdi = mask_address(pr.rdi.wrapping_add(adv), asize);
        }
        done += count;
        if !rep {
            break Ok(Step::Done);
        }
        pr.rcx = mask_address(pr.rcx.wrapping_sub(count), asize);
        let zf = ctx.rflags & ZF != 0;
        let ended = pr.rcx == 0 || (stop && (zf == repne));
        if ended {
            break Ok(Step::Done);
        }
        if done >= cap {
            break Ok(Step::Partial);
        }
    };
    if result.is_ok() || done > 0 {
        write_progress(ctx, &pr, op, rep);
    }
    if result.is_err() && done > 0 {
        // Completed iterations stay completed, flags included.
        ctx.cpu.set_rflags(ctx.rflags);
    }
    result
}

fn write_progress<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    pr: &Progress,
    op: Op,
    rep: bool,
) {
    // Only the registers the instruction uses are written (a 32-bit address size in 64-bit
    // mode zero-extends them, so writing an unused one would be visible).
    let a = pr.asize;
    if rep {
        ctx.set_reg(Register::gpr(a, 1), pr.rcx);
    }
    if matches!(op, Op::Movs | Op::Cmps | Op::Lods | Op::Outs) {
        ctx.set_reg(Register::gpr(a, 6), pr.rsi);
    }
    if matches!(op, Op::Movs | Op::Cmps | Op::Stos | Op::Scas | Op::Ins) {
        ctx.set_reg(Register::gpr(a, 7), pr.rdi);
    }
}

/// One element. Returns whether the instruction compares (the REPE/REPNE condition applies).
fn element<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    op: Op,
    n: u8,
    src_seg: Segment,
    pr: &Progress,
) -> R<bool> {
    let size = usize::from(n);
    let acc = Register::gpr(n, 0);
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    match op {
        Op::Movs => {
            ctx.read(src_seg, pr.rsi, &mut a[..size], size)?;
            ctx.write(Segment::ES, pr.rdi, &a[..size], size)?;
        }
        Op::Stos => {
            let v = ctx.reg(acc).to_le_bytes();
            ctx.write(Segment::ES, pr.rdi, &v[..size], size)?;
        }
        Op::Lods => {
            ctx.read(src_seg, pr.rsi, &mut a[..size], size)?;
            ctx.set_reg(acc, u64::from_le_bytes(a));
        }
        Op::Cmps | Op::Scas => {
            let x = if op == Op::Cmps {
                ctx.read(src_seg, pr.rsi, &mut a[..size], size)?;
                u64::from_le_bytes(a)
            } else {
                ctx.reg(acc)
            };
            ctx.read(Segment::ES, pr.rdi, &mut b[..size], size)?;
            let f = alu::sub(x, u64::from_le_bytes(b), false, n).1;
            ctx.rflags = (ctx.rflags & !STATUS) | f;
            return Ok(true);
        }
        Op::Ins => {
            let port = ctx.reg(Register::gpr(2, 2)) as u16;
            // The destination is checked before the port is read.
            let span = ctx.span(Segment::ES, pr.rdi, size, AccessKind::Write, size)?;
            ctx.mem.read_port(port, &mut a[..size])?;
            ctx.write_span(&span, &a[..size])?;
        }
        Op::Outs => {
            let port = ctx.reg(Register::gpr(2, 2)) as u16;
            ctx.read(src_seg, pr.rsi, &mut a[..size], size)?;
            ctx.mem.write_port(port, &a[..size])?;
        }
    }
    Ok(false)
}

/// Moves a run of whole elements that stays inside one page on both sides (forward, without
/// alignment checking) with one translation per side. Between two RAM pages the run is moved
/// as one block (at most 256 bytes, unless the runs overlap); with a device on either side it
/// is still one access per element, in order. `Ok(None)`: take the element path instead.
fn block<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    op: Op,
    n: u8,
    src_seg: Segment,
    pr: &Progress,
    max: u64,
) -> R<Option<u64>> {
    const CHUNK: usize = 256;
    if ctx.ac_enabled() || max < 2 {
        return Ok(None);
    }
    let size = u64::from(n);
    let limit = mask(pr.asize);
    let room = |off: u64, la: u64| {
        let page = 0x1000 - (la & 0xFFF);
        // Bytes to the wrap of the address size (2^64 at offset 0 in 64-bit: saturate).
        let wrap = limit.saturating_sub(off).saturating_add(1);
        page.min(wrap) / size
    };
    // Source before destination, as each element is read before it is written.
    let sla = if op == Op::Movs {
        Some(ctx.linearize(src_seg, pr.rsi, usize::from(n), AccessKind::Read)?)
    } else {
        None
    };
    let dla = ctx.linearize(Segment::ES, pr.rdi, usize::from(n), AccessKind::Write)?;
    let mut k = max.min(room(pr.rdi, dla));
    if let Some(sla) = sla {
        k = k.min(room(pr.rsi, sla));
    }
    if k < 2 {
        return Ok(None);
    }
    // Segment limits for the whole run; if the run reaches past a limit, the element path
    // completes the elements before it and then faults, as the processor does.
    let bytes = k * size;
    if op == Op::Movs
        && ctx
            .linearize(src_seg, pr.rsi, bytes as usize, AccessKind::Read)
            .is_err()
    {
        return Ok(None);
    }
    if ctx
        .linearize(Segment::ES, pr.rdi, bytes as usize, AccessKind::Write)
        .is_err()
    {
        return Ok(None);
    }
    let sgpa = match sla {
        Some(sla) => Some(ctx.translate(sla, AccessKind::Read)?),
        None => None,
    };
    let dgpa = ctx.translate(dla, AccessKind::Write)?;
    let dst_ram = ctx.mem.region(dgpa) == Region::Ram;
    let src_ram = match sgpa {
        Some(g) => ctx.mem.region(g) == Region::Ram,
        None => true,
    };
    let apart = sgpa.is_none_or(|g| g + bytes <= dgpa || dgpa + bytes <= g);
    let acc = ctx.reg(Register::gpr(n, 0)).to_le_bytes();
    let es = usize::from(n);
    if dst_ram && src_ram && apart {
        let k = k.min(CHUNK as u64 / size);
        let len = (k * size) as usize;
        let mut buf = [0u8; CHUNK];
        match sgpa {
            Some(g) => ctx.mem.read(g, &mut buf[..len])?,
            None => {
                for c in buf[..len].chunks_mut(es) {
                    c.copy_from_slice(&acc[..es]);
                }
            }
        }
        ctx.mem.write(dgpa, &buf[..len])?;
        return Ok(Some(k));
    }
    let mut e = [0u8; 8];
    for j in 0..k {
        let off = j * size;
        match sgpa {
            Some(g) => ctx.mem.read(g + off, &mut e[..es])?,
            None => e[..es].copy_from_slice(&acc[..es]),
        }
        ctx.mem.write(dgpa + off, &e[..es])?;
    }
    Ok(Some(k))
}
