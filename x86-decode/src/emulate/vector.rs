//! SSE, VEX and EVEX data moves.
//!
//! Legacy SSE writes keep the destination's bits above 127; VEX and EVEX writes zero the
//! bits above the vector length. EVEX masking: masked-off elements are not accessed in memory
//! (so they cannot fault); in a register destination they keep their value (merging) or become
//! zero (`{z}`). Aligned forms raise #GP(0) on a misaligned linear address, masked or not.

use super::access::{Ctx, Fault, GP0, R, UD};
use super::cpu::{bits, CpuState, Memory};
use super::exec::unsupported;
use super::paging::AccessKind;
use super::Exception;
use crate::defs::{Encoding, Segment};
use crate::instruction::{Instruction, Prefixes};
use crate::operands::{Operand, OperandKind};
use crate::semantic::Mnemonic as Mn;

/// How a move treats its operands.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Kind {
    /// The memory address must be aligned to the access size.
    aligned: bool,
    /// Element size for EVEX masking.
    element: u8,
    /// Scalar/partial moves: the access is this many bytes and a load zeroes up to bit 127
    /// (`MOVSS`, `MOVSD`, `MOVD`, `MOVQ`); 0 for full-vector moves.
    partial: u8,
}

fn kind(m: Mn, i: &Instruction) -> Option<Kind> {
    let full = |aligned: bool, element: u8| {
        Some(Kind {
            aligned,
            element,
            partial: 0,
        })
    };
    let w = i.prefixes().contains(Prefixes::W);
    match m {
        Mn::Movups | Mn::Movupd | Mn::Movdqu | Mn::Lddqu => full(false, 4),
        Mn::Movaps
        | Mn::Movapd
        | Mn::Movdqa
        | Mn::Movntps
        | Mn::Movntpd
        | Mn::Movntdq
        | Mn::Movntdqa => full(true, 4),
        Mn::Vmovdqu | Mn::Vmovups => full(false, 4),
        Mn::Vmovupd => full(false, 8),
        Mn::Vmovdqa | Mn::Vmovaps => full(true, 4),
        Mn::Vmovapd => full(true, 8),
        Mn::Vmovdqu8 => full(false, 1),
        Mn::Vmovdqu16 => full(false, 2),
        Mn::Vmovdqu32 => full(false, 4),
        Mn::Vmovdqu64 => full(false, 8),
        Mn::Vmovdqa32 => full(true, 4),
        Mn::Vmovdqa64 => full(true, 8),
        Mn::Movss => Some(Kind {
            aligned: false,
            element: 4,
            partial: 4,
        }),
        Mn::Movsd => Some(Kind {
            aligned: false,
            element: 8,
            partial: 8,
        }),
        Mn::Movd => Some(Kind {
            aligned: false,
            element: 4,
            partial: 4,
        }),
        Mn::Movq => Some(Kind {
            aligned: false,
            element: 8,
            partial: if w || i.opcode() != 0x6E { 8 } else { 4 },
        }),
        _ => None,
    }
}

/// Is `i` (mnemonic `m`) one of the legacy-encoded SSE moves this module completes? (The
/// string `MOVSD` is in map 0; the SSE one in map 1.)
pub(crate) fn is_vector_move(m: Mn, i: &Instruction) -> bool {
    i.map().0 != 0 && kind(m, i).is_some()
}

/// Where a vector operand lives.
#[derive(Clone, Copy)]
enum Loc {
    Vec(usize),
    Gpr(crate::defs::Register),
    Mem(Segment, u64),
}

fn locate<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    op: &Operand,
) -> R<Loc> {
    match op.kind {
        OperandKind::Register if op.register.is_vector() => {
            Ok(Loc::Vec(usize::from(op.register.number())))
        }
        OperandKind::Register if op.register.is_gpr() => Ok(Loc::Gpr(op.register)),
        OperandKind::Memory => Ok(Loc::Mem(i.memory_segment(), ctx.effective_address(i))),
        _ => Err(unsupported(i)),
    }
}

/// The #UD/#NM checks of SSE and AVX state.
fn check_state<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
) -> R<()> {
    let (cr0, cr4) = (ctx.paging.cr0, ctx.paging.cr4);
    match i.encoding() {
        Encoding::Legacy => {
            if cr0 & bits::CR0_EM != 0 || cr4 & bits::CR4_OSFXSR == 0 {
                return Err(UD);
            }
        }
        Encoding::Vex | Encoding::Evex => {
            if ctx.real || cr4 & bits::CR4_OSXSAVE == 0 {
                return Err(UD);
            }
            let need = if i.encoding() == Encoding::Evex {
                bits::XCR0_SSE_AVX | bits::XCR0_AVX512
            } else {
                bits::XCR0_SSE_AVX
            };
            if ctx.cpu.xcr0() & need != need {
                return Err(UD);
            }
        }
        _ => return Err(unsupported(i)),
    }
    if cr0 & bits::CR0_TS != 0 {
        return Err(Fault::Exception(Exception::DeviceNotAvailable));
    }
    Ok(())
}

pub(crate) fn execute<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    i: &Instruction,
    m: Mn,
) -> R<()> {
    let k = kind(m, i).ok_or_else(|| unsupported(i))?;
    if !matches!(
        i.encoding(),
        Encoding::Legacy | Encoding::Vex | Encoding::Evex
    ) {
        return Err(unsupported(i));
    }
    if k.partial != 0 && i.encoding() != Encoding::Legacy {
        return Err(unsupported(i));
    }
    let ops = i.operands().ok_or_else(|| unsupported(i))?;
    let ops = ops.as_slice();
    let (dst, src) = match ops {
        [d, s] => (*d, *s),
        _ => return Err(unsupported(i)),
    };
    // MMX forms of MOVD/MOVQ use registers the CpuState does not carry.
    if ops
        .iter()
        .any(|o| o.kind == OperandKind::Register && !o.register.is_vector() && !o.register.is_gpr())
    {
        return Err(unsupported(i));
    }
    check_state(ctx, i)?;
    let d = locate(ctx, i, &dst)?;
    let s = locate(ctx, i, &src)?;
    let legacy = i.encoding() == Encoding::Legacy;
    let vl = if k.partial != 0 {
        usize::from(k.partial)
    } else {
        usize::from(dst.size.max(src.size)).min(64)
    };
    // The EVEX mask: one bit per element (all ones without masking).
    let elems = vl / usize::from(k.element.max(1));
    let mask = if i.encoding() == Encoding::Evex && i.op_mask() != 0 {
        ctx.cpu.opmask(usize::from(i.op_mask()))
    } else {
        u64::MAX
    };
    let zeroing = i.prefixes().contains(Prefixes::ZEROING);
    let esize = usize::from(k.element);
    // With alignment checking on, a vector access raises #AC when misaligned for its size up
    // to 16 bytes, or for its element size when EVEX-masked (measured on EPYC for the SSE,
    // VEX and EVEX moves alike; aligned forms raise #GP first).
    let ac = if i.encoding() == Encoding::Evex && i.op_mask() != 0 {
        esize
    } else {
        vl.min(16)
    };
    let enabled = |e: usize| e >= 64 || mask >> e & 1 != 0;
    let any_enabled = (0..elems).any(enabled);
    // The source bytes (only enabled elements are read from memory).
    let mut data = [0u8; 64];
    match s {
        Loc::Vec(n) => data = ctx.cpu.vector(n),
        Loc::Gpr(r) => data[..8].copy_from_slice(&ctx.reg(r).to_le_bytes()),
        Loc::Mem(seg, off) => {
            if !any_enabled {
                // Everything masked off: no access, no alignment fault (measured).
            } else {
                let first = runs(elems, esize, &enabled).next().map_or(0, |r| r.0);
                check_alignment(ctx, seg, off, first, vl, k.aligned, ac, AccessKind::Read)?;
            }
            for (start, len) in runs(elems, esize, &enabled) {
                ctx.read(
                    seg,
                    off.wrapping_add(start as u64),
                    &mut data[start..start + len],
                    1,
                )?;
            }
        }
    }
    match d {
        Loc::Mem(seg, off) => {
            if any_enabled {
                let first = runs(elems, esize, &enabled).next().map_or(0, |r| r.0);
                check_alignment(ctx, seg, off, first, vl, k.aligned, ac, AccessKind::Write)?;
            }
            // Check every piece before writing any, so a fault leaves memory unchanged.
            for (start, len) in runs(elems, esize, &enabled) {
                ctx.span(
                    seg,
                    off.wrapping_add(start as u64),
                    len,
                    AccessKind::Write,
                    1,
                )?;
            }
            for (start, len) in runs(elems, esize, &enabled) {
                ctx.write(
                    seg,
                    off.wrapping_add(start as u64),
                    &data[start..start + len],
                    1,
                )?;
            }
        }
        Loc::Gpr(r) => {
            let mut b = [0u8; 8];
            b[..vl.min(8)].copy_from_slice(&data[..vl.min(8)]);
            ctx.set_reg(r, u64::from_le_bytes(b));
        }
        Loc::Vec(n) => {
            let old = ctx.cpu.vector(n);
            let mut out = [0u8; 64];
            if legacy {
                out = old;
                // Partial loads from memory or a GPR zero up to bit 127; MOVSS/MOVSD between
                // registers merge; MOVQ xmm, xmm zeroes bits 127:64.
                let merge_scalar = matches!(s, Loc::Vec(_)) && matches!(m, Mn::Movss | Mn::Movsd);
                if k.partial != 0 && !merge_scalar {
                    out[..16].fill(0);
                }
            }
            for e in 0..elems {
                let r = e * esize..(e + 1) * esize;
                if enabled(e) {
                    out[r.clone()].copy_from_slice(&data[r]);
                } else if !zeroing {
                    out[r.clone()].copy_from_slice(&old[r]);
                }
            }
            ctx.cpu.set_vector(n, out);
        }
    }
    Ok(())
}

/// Contiguous runs of enabled elements, as (byte offset, byte length).
fn runs(
    elems: usize,
    esize: usize,
    enabled: &impl Fn(usize) -> bool,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut e = 0;
    core::iter::from_fn(move || {
        while e < elems && !enabled(e) {
            e += 1;
        }
        if e >= elems {
            return None;
        }
        let start = e;
        while e < elems && enabled(e) {
            e += 1;
        }
        Some((start * esize, (e - start) * esize))
    })
}

/// #GP(0) for an aligned move whose linear address is not a multiple of its size, then #AC
/// (CPL 3, CR0.AM, RFLAGS.AC) for one not a multiple of `ac`. The linear address is taken
/// through the first enabled byte (`first` bytes in): segment limits and canonical form are
/// checked per enabled run by the accesses themselves, so masked-off elements cannot fault
/// (EVEX fault suppression), while alignment is a property of the whole operand.
#[allow(clippy::too_many_arguments)]
fn check_alignment<C: CpuState + ?Sized, M: Memory + ?Sized>(
    ctx: &mut Ctx<'_, C, M>,
    seg: Segment,
    off: u64,
    first: usize,
    size: usize,
    aligned: bool,
    ac: usize,
    kind: AccessKind,
) -> R<()> {
    let first = first as u64;
    let la = ctx
        .linearize(seg, off.wrapping_add(first), 1, kind)?
        .wrapping_sub(first);
    if aligned && la % size as u64 != 0 {
        return Err(GP0);
    }
    if ctx.ac_enabled() && la % ac as u64 != 0 {
        return Err(Fault::Exception(Exception::AlignmentCheck));
    }
    Ok(())
}
