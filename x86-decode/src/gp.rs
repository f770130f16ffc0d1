//! Semantic level: the general-purpose integer, string and system instructions — mnemonic and
//! operand list for each opcode of the one-byte, `0F`, `0F 38` and `0F 3A` maps, and the
//! VEX-encoded BMI1/BMI2 instructions.
//!
//! Operand notation follows the Intel SDM Vol. 2 Appendix A (`E`: ModRM r/m, `G`: ModRM reg,
//! `Z`: register in the opcode, `I`: immediate, `J`: relative branch, `X`/`Y`: string
//! operands, ...), with sizes from [`Sz`].

use crate::defs::{Encoding, Mode, Segment};
use crate::instruction::{Instruction, Prefixes};
use crate::operands::Spec::{self, *};
use crate::operands::Sz::{self, *};
use crate::semantic::Mnemonic as Mn;

type Form = (Mn, &'static [Spec]);

const EB: Spec = E(B(1));
const EV: Spec = E(Os);
const GB: Spec = G(B(1));
const GV: Spec = G(Os);
const AL: Spec = Fixed(0, B(1));
const RAX: Spec = Fixed(0, Os);
const EAX: Spec = Fixed(0, D);
const CL: Spec = Fixed(1, B(1));
const DX: Spec = Fixed(2, B(2));
/// 2 bytes in memory, the operand size in a register (`MOV Sreg`, `SLDT`, `LAR`, ...).
const EW: Spec = E(Sz::W16);

const ALU: [Mn; 8] = [
    Mn::Add,
    Mn::Or,
    Mn::Adc,
    Mn::Sbb,
    Mn::And,
    Mn::Sub,
    Mn::Xor,
    Mn::Cmp,
];
const SHIFT: [Mn; 8] = [
    Mn::Rol,
    Mn::Ror,
    Mn::Rcl,
    Mn::Rcr,
    Mn::Shl,
    Mn::Shr,
    Mn::Sal,
    Mn::Sar,
];
const JCC: [Mn; 16] = [
    Mn::Jo,
    Mn::Jno,
    Mn::Jb,
    Mn::Jae,
    Mn::Je,
    Mn::Jne,
    Mn::Jbe,
    Mn::Ja,
    Mn::Js,
    Mn::Jns,
    Mn::Jp,
    Mn::Jnp,
    Mn::Jl,
    Mn::Jge,
    Mn::Jle,
    Mn::Jg,
];
const SETCC: [Mn; 16] = [
    Mn::Seto,
    Mn::Setno,
    Mn::Setb,
    Mn::Setae,
    Mn::Sete,
    Mn::Setne,
    Mn::Setbe,
    Mn::Seta,
    Mn::Sets,
    Mn::Setns,
    Mn::Setp,
    Mn::Setnp,
    Mn::Setl,
    Mn::Setge,
    Mn::Setle,
    Mn::Setg,
];
const CMOVCC: [Mn; 16] = [
    Mn::Cmovo,
    Mn::Cmovno,
    Mn::Cmovb,
    Mn::Cmovae,
    Mn::Cmove,
    Mn::Cmovne,
    Mn::Cmovbe,
    Mn::Cmova,
    Mn::Cmovs,
    Mn::Cmovns,
    Mn::Cmovp,
    Mn::Cmovnp,
    Mn::Cmovl,
    Mn::Cmovge,
    Mn::Cmovle,
    Mn::Cmovg,
];

const CMPXADD: [Mn; 16] = [
    Mn::Cmpoxadd,
    Mn::Cmpnoxadd,
    Mn::Cmpbxadd,
    Mn::Cmpnbxadd,
    Mn::Cmpzxadd,
    Mn::Cmpnzxadd,
    Mn::Cmpbexadd,
    Mn::Cmpnbexadd,
    Mn::Cmpsxadd,
    Mn::Cmpnsxadd,
    Mn::Cmppxadd,
    Mn::Cmpnpxadd,
    Mn::Cmplxadd,
    Mn::Cmpnlxadd,
    Mn::Cmplexadd,
    Mn::Cmpnlexadd,
];

/// Picks the word/dword/qword name by operand size.
const fn by_size(osize: u8, w: Mn, d: Mn, q: Mn) -> Mn {
    match osize {
        2 => w,
        8 => q,
        _ => d,
    }
}

/// The mnemonic and operands of a general-purpose, string or system instruction.
pub(crate) fn form(i: &Instruction) -> Option<Form> {
    match i.encoding {
        Encoding::Legacy => match i.map {
            0 => primary(i),
            1 => secondary(i),
            2 => map_0f38(i),
            _ if i.opcode == 0xF0 && i.pp == 2 => Some((Mn::Hreset, &[Ib])),
            _ => None,
        },
        Encoding::Vex => bmi(i),
        Encoding::Xop => tbm(i),
        _ => None,
    }
}

fn primary(i: &Instruction) -> Option<Form> {
    let op = i.opcode;
    let reg = (i.modrm >> 3) & 7;
    let os = i.osize;
    let long = i.mode == Mode::Bits64;
    let a = i.asize;
    Some(match op {
        0x00..=0x3F if op & 7 < 6 => (
            ALU[usize::from(op >> 3)],
            match op & 7 {
                0 => &[EB, GB],
                1 => &[EV, GV],
                2 => &[GB, EB],
                3 => &[GV, EV],
                4 => &[AL, Ib],
                _ => &[RAX, Iz],
            },
        ),
        0x06 => (Mn::Push, &[Seg(Segment::ES)]),
        0x07 => (Mn::Pop, &[Seg(Segment::ES)]),
        0x0E => (Mn::Push, &[Seg(Segment::CS)]),
        0x16 => (Mn::Push, &[Seg(Segment::SS)]),
        0x17 => (Mn::Pop, &[Seg(Segment::SS)]),
        0x1E => (Mn::Push, &[Seg(Segment::DS)]),
        0x1F => (Mn::Pop, &[Seg(Segment::DS)]),
        0x27 => (Mn::Daa, &[]),
        0x2F => (Mn::Das, &[]),
        0x37 => (Mn::Aaa, &[]),
        0x3F => (Mn::Aas, &[]),
        0x40..=0x47 => (Mn::Inc, &[Z(Os)]),
        0x48..=0x4F => (Mn::Dec, &[Z(Os)]),
        0x50..=0x57 => (Mn::Push, &[Z(Stk)]),
        0x58..=0x5F => (Mn::Pop, &[Z(Stk)]),
        0x60 => (by_size(os, Mn::Pusha, Mn::Pushad, Mn::Pushad), &[]),
        0x61 => (by_size(os, Mn::Popa, Mn::Popad, Mn::Popad), &[]),
        0x62 => (Mn::Bound, &[GV, M(Dbl)]),
        0x63 if long => (Mn::Movsxd, &[GV, E(D)]),
        0x63 => (Mn::Arpl, &[EW, GV]),
        0x68 => (Mn::Push, &[Iz]),
        0x69 => (Mn::Imul, &[GV, EV, Iz]),
        0x6A => (Mn::Push, &[Ibs]),
        0x6B => (Mn::Imul, &[GV, EV, Ibs]),
        0x6C => (Mn::Insb, &[Yd(B(1)), DX]),
        0x6D => (by_size(os, Mn::Insw, Mn::Insd, Mn::Insd), &[Yd(D), DX]),
        0x6E => (Mn::Outsb, &[DX, Xs(B(1))]),
        0x6F => (by_size(os, Mn::Outsw, Mn::Outsd, Mn::Outsd), &[DX, Xs(D)]),
        0x70..=0x7F => (JCC[usize::from(op & 15)], &[J]),
        0x80 | 0x82 => (ALU[usize::from(reg)], &[EB, Ib]),
        0x81 => (ALU[usize::from(reg)], &[EV, Iz]),
        0x83 => (ALU[usize::from(reg)], &[EV, Ibs]),
        0x84 => (Mn::Test, &[EB, GB]),
        0x85 => (Mn::Test, &[EV, GV]),
        0x86 => (Mn::Xchg, &[EB, GB]),
        0x87 => (Mn::Xchg, &[EV, GV]),
        0x88 => (Mn::Mov, &[EB, GB]),
        0x89 => (Mn::Mov, &[EV, GV]),
        0x8A => (Mn::Mov, &[GB, EB]),
        0x8B => (Mn::Mov, &[GV, EV]),
        0x8C => (Mn::Mov, &[EW, Sw]),
        0x8D => (Mn::Lea, &[GV, M(B(0))]),
        0x8E => (Mn::Mov, &[Sw, EW]),
        0x8F if reg == 0 => (Mn::Pop, &[E(Stk)]),
        0x90 if i.pp == 2 => (Mn::Pause, &[]),
        0x90 if i.rex & 1 != 0 => (Mn::Xchg, &[Z(Os), RAX]),
        0x90 => (Mn::Nop, &[]),
        0x91..=0x97 => (Mn::Xchg, &[Z(Os), RAX]),
        0x98 => (by_size(os, Mn::Cbw, Mn::Cwde, Mn::Cdqe), &[]),
        0x99 => (by_size(os, Mn::Cwd, Mn::Cdq, Mn::Cqo), &[]),
        0x9A => (Mn::Call, &[A]),
        0x9B => (Mn::Wait, &[]),
        0x9C if long => (by_size(os, Mn::Pushf, Mn::Pushfq, Mn::Pushfq), &[]),
        0x9C => (by_size(os, Mn::Pushf, Mn::Pushfd, Mn::Pushfd), &[]),
        0x9D if long => (by_size(os, Mn::Popf, Mn::Popfq, Mn::Popfq), &[]),
        0x9D => (by_size(os, Mn::Popf, Mn::Popfd, Mn::Popfd), &[]),
        0x9E => (Mn::Sahf, &[]),
        0x9F => (Mn::Lahf, &[]),
        0xA0 => (Mn::Mov, &[AL, O(B(1))]),
        0xA1 => (Mn::Mov, &[RAX, O(Os)]),
        0xA2 => (Mn::Mov, &[O(B(1)), AL]),
        0xA3 => (Mn::Mov, &[O(Os), RAX]),
        0xA4 => (Mn::Movsb, &[Yd(B(1)), Xs(B(1))]),
        0xA5 => (
            by_size(os, Mn::Movsw, Mn::Movsd, Mn::Movsq),
            &[Yd(Os), Xs(Os)],
        ),
        0xA6 => (Mn::Cmpsb, &[Xs(B(1)), Yd(B(1))]),
        0xA7 => (
            by_size(os, Mn::Cmpsw, Mn::Cmpsd, Mn::Cmpsq),
            &[Xs(Os), Yd(Os)],
        ),
        0xA8 => (Mn::Test, &[AL, Ib]),
        0xA9 => (Mn::Test, &[RAX, Iz]),
        0xAA => (Mn::Stosb, &[Yd(B(1)), AL]),
        0xAB => (by_size(os, Mn::Stosw, Mn::Stosd, Mn::Stosq), &[Yd(Os), RAX]),
        0xAC => (Mn::Lodsb, &[AL, Xs(B(1))]),
        0xAD => (by_size(os, Mn::Lodsw, Mn::Lodsd, Mn::Lodsq), &[RAX, Xs(Os)]),
        0xAE => (Mn::Scasb, &[AL, Yd(B(1))]),
        0xAF => (by_size(os, Mn::Scasw, Mn::Scasd, Mn::Scasq), &[RAX, Yd(Os)]),
        0xB0..=0xB7 => (Mn::Mov, &[Z(B(1)), Ib]),
        0xB8..=0xBF => (Mn::Mov, &[Z(Os), Iv]),
        0xC0 => (SHIFT[usize::from(reg)], &[EB, Ib]),
        0xC1 => (SHIFT[usize::from(reg)], &[EV, Ib]),
        0xC2 => (Mn::Ret, &[Iw]),
        0xC3 => (Mn::Ret, &[]),
        0xC4 => (Mn::Les, &[GV, M(Far)]),
        0xC5 => (Mn::Lds, &[GV, M(Far)]),
        0xC6 if i.modrm == 0xF8 => (Mn::Xabort, &[Ib]),
        0xC7 if i.modrm == 0xF8 => (Mn::Xbegin, &[J]),
        0xC6 if reg == 0 => (Mn::Mov, &[EB, Ib]),
        0xC7 if reg == 0 => (Mn::Mov, &[EV, Iz]),
        0xC8 => (Mn::Enter, &[Iw, I2]),
        0xC9 => (Mn::Leave, &[]),
        0xCA => (Mn::Retf, &[Iw]),
        0xCB => (Mn::Retf, &[]),
        0xCC => (Mn::Int3, &[]),
        0xCD => (Mn::Int, &[Ib]),
        0xCE => (Mn::Into, &[]),
        0xCF => (by_size(os, Mn::Iret, Mn::Iretd, Mn::Iretq), &[]),
        0xD0 => (SHIFT[usize::from(reg)], &[EB, One]),
        0xD1 => (SHIFT[usize::from(reg)], &[EV, One]),
        0xD2 => (SHIFT[usize::from(reg)], &[EB, CL]),
        0xD3 => (SHIFT[usize::from(reg)], &[EV, CL]),
        0xD4 => (Mn::Aam, &[Ib]),
        0xD5 => (Mn::Aad, &[Ib]),
        0xD6 => (Mn::Salc, &[]),
        0xD7 => (Mn::Xlatb, &[M(B(1))]),
        0xE0 => (Mn::Loopne, &[J]),
        0xE1 => (Mn::Loope, &[J]),
        0xE2 => (Mn::Loop, &[J]),
        0xE3 => (by_size(a, Mn::Jcxz, Mn::Jecxz, Mn::Jrcxz), &[J]),
        0xE4 => (Mn::In, &[AL, Ib]),
        0xE5 => (Mn::In, &[EAX, Ib]),
        0xE6 => (Mn::Out, &[Ib, AL]),
        0xE7 => (Mn::Out, &[Ib, EAX]),
        0xE8 => (Mn::Call, &[J]),
        0xE9 | 0xEB => (Mn::Jmp, &[J]),
        0xEA => (Mn::Jmp, &[A]),
        0xEC => (Mn::In, &[AL, DX]),
        0xED => (Mn::In, &[EAX, DX]),
        0xEE => (Mn::Out, &[DX, AL]),
        0xEF => (Mn::Out, &[DX, EAX]),
        0xF1 => (Mn::Int1, &[]),
        0xF4 => (Mn::Hlt, &[]),
        0xF5 => (Mn::Cmc, &[]),
        0xF6 if reg < 2 => (Mn::Test, &[EB, Ib]),
        0xF7 if reg < 2 => (Mn::Test, &[EV, Iz]),
        0xF6 | 0xF7 => (
            [
                Mn::Test,
                Mn::Test,
                Mn::Not,
                Mn::Neg,
                Mn::Mul,
                Mn::Imul,
                Mn::Div,
                Mn::Idiv,
            ][usize::from(reg)],
            if op == 0xF6 { &[EB] } else { &[EV] },
        ),
        0xF8 => (Mn::Clc, &[]),
        0xF9 => (Mn::Stc, &[]),
        0xFA => (Mn::Cli, &[]),
        0xFB => (Mn::Sti, &[]),
        0xFC => (Mn::Cld, &[]),
        0xFD => (Mn::Std, &[]),
        0xFE if reg < 2 => ([Mn::Inc, Mn::Dec][usize::from(reg)], &[EB]),
        0xFF => match reg {
            0 => (Mn::Inc, &[EV]),
            1 => (Mn::Dec, &[EV]),
            2 => (Mn::Call, &[E(Br)]),
            3 => (Mn::Call, &[M(Far)]),
            4 => (Mn::Jmp, &[E(Br)]),
            5 => (Mn::Jmp, &[M(Far)]),
            6 => (Mn::Push, &[E(Stk)]),
            _ => return None,
        },
        _ => return None,
    })
}

/// `0F 01` with a register ModRM byte: instructions named by the whole ModRM byte.
fn group7_register(i: &Instruction) -> Option<Form> {
    let pp = i.pp;
    Some(match (i.modrm, pp) {
        (0xC6, 3) => (Mn::Rdmsrlist, &[]),
        (0xC6, 2) => (Mn::Wrmsrlist, &[]),
        (0xCA, 3) => (Mn::Erets, &[]),
        (0xCA, 2) => (Mn::Eretu, &[]),
        (0xCC, 1) => (Mn::Tdcall, &[]),
        (0xCD, 1) => (Mn::Seamret, &[]),
        (0xCE, 1) => (Mn::Seamops, &[]),
        (0xCF, 1) => (Mn::Seamcall, &[]),
        (0xE8, 2) => (Mn::Setssbsy, &[]),
        (0xE8, 3) => (Mn::Xsusldtrk, &[]),
        (0xE9, 3) => (Mn::Xresldtrk, &[]),
        (0xEA, 2) => (Mn::Saveprevssp, &[]),
        (0xEC, 2) => (Mn::Uiret, &[]),
        (0xED, 2) => (Mn::Testui, &[]),
        (0xEE, 2) => (Mn::Clui, &[]),
        (0xEF, 2) => (Mn::Stui, &[]),
        (0xFA, 2) => (Mn::Mcommit, &[]),
        (0xFE, 0) => (Mn::Invlpgb, &[]),
        (0xFE, 2) => (Mn::Rmpadjust, &[]),
        (0xFE, 3) => (Mn::Rmpupdate, &[]),
        (0xFF, 0) => (Mn::Tlbsync, &[]),
        (0xFF, 2) => (Mn::Psmash, &[]),
        (0xFF, 3) => (Mn::Pvalidate, &[]),
        _ => return group7_any_prefix(i),
    })
}

/// `0F 01` register forms whose meaning does not depend on the mandatory prefix (or only
/// exist without one).
fn group7_any_prefix(i: &Instruction) -> Option<Form> {
    let pp = i.pp;
    Some(match i.modrm {
        0xC0 if pp == 0 => (Mn::Enclv, &[]),
        0xC1 => (Mn::Vmcall, &[]),
        0xC2 => (Mn::Vmlaunch, &[]),
        0xC3 => (Mn::Vmresume, &[]),
        0xC4 => (Mn::Vmxoff, &[]),
        0xC5 => (Mn::Pconfig, &[]),
        0xC6 if pp == 0 => (Mn::Wrmsrns, &[]),
        0xC8 if pp == 0 => (Mn::Monitor, &[]),
        0xC9 if pp == 0 => (Mn::Mwait, &[]),
        0xCA if pp == 0 => (Mn::Clac, &[]),
        0xCB if pp == 0 => (Mn::Stac, &[]),
        0xCF if pp == 0 => (Mn::Encls, &[]),
        0xD0 if pp == 0 => (Mn::Xgetbv, &[]),
        0xD1 if pp == 0 => (Mn::Xsetbv, &[]),
        0xD4 if pp == 0 => (Mn::Vmfunc, &[]),
        0xD5 if pp == 0 => (Mn::Xend, &[]),
        0xD6 if pp == 0 => (Mn::Xtest, &[]),
        0xD7 if pp == 0 => (Mn::Enclu, &[]),
        0xD8 => (Mn::Vmrun, &[]),
        0xD9 if pp >= 2 => (Mn::Vmgexit, &[]),
        0xD9 => (Mn::Vmmcall, &[]),
        0xDA => (Mn::Vmload, &[]),
        0xDB => (Mn::Vmsave, &[]),
        0xDC => (Mn::Stgi, &[]),
        0xDD => (Mn::Clgi, &[]),
        0xDE => (Mn::Skinit, &[]),
        0xDF => (Mn::Invlpga, &[]),
        0xE0..=0xE7 => (Mn::Smsw, &[EW]),
        0xE8 if pp == 0 => (Mn::Serialize, &[]),
        0xEE if pp == 0 => (Mn::Rdpkru, &[]),
        0xEF if pp == 0 => (Mn::Wrpkru, &[]),
        0xF0..=0xF7 => (Mn::Lmsw, &[EW]),
        0xF8 => (Mn::Swapgs, &[]),
        0xF9 => (Mn::Rdtscp, &[]),
        0xFA if pp == 0 => (Mn::Monitorx, &[]),
        0xFB if pp == 0 => (Mn::Mwaitx, &[]),
        0xFC => (Mn::Clzero, &[]),
        0xFD if pp == 0 => (Mn::Rdpru, &[]),
        _ => return None,
    })
}

/// Picks the `…64` name of an `XSAVE`-family instruction with REX.W.
fn w64(i: &Instruction, plain: Mn, wide: Mn) -> Mn {
    if i.prefixes.contains(Prefixes::W) {
        wide
    } else {
        plain
    }
}

fn secondary(i: &Instruction) -> Option<Form> {
    let op = i.opcode;
    let reg = (i.modrm >> 3) & 7;
    let is_reg = i.modrm >= 0xC0;
    let pp = i.pp;
    let w = i.prefixes.contains(Prefixes::W);
    let mem0 = &[M(B(0))][..];
    Some(match op {
        0x00 if reg == 6 && pp == 3 => (Mn::Lkgs, &[EW]),
        0x00 => (
            [Mn::Sldt, Mn::Str, Mn::Lldt, Mn::Ltr, Mn::Verr, Mn::Verw]
                .get(usize::from(reg))
                .copied()?,
            &[EW],
        ),
        0x01 if is_reg => return group7_register(i),
        0x01 => match reg {
            0 => (Mn::Sgdt, &[M(Dtr)]),
            1 => (Mn::Sidt, &[M(Dtr)]),
            2 => (Mn::Lgdt, &[M(Dtr)]),
            3 => (Mn::Lidt, &[M(Dtr)]),
            4 => (Mn::Smsw, &[EW]),
            5 if i.pp == 2 => (Mn::Rstorssp, &[M(B(8))]),
            6 => (Mn::Lmsw, &[EW]),
            7 => (Mn::Invlpg, mem0),
            _ => return None,
        },
        0x02 => (Mn::Lar, &[GV, EW]),
        0x03 => (Mn::Lsl, &[GV, EW]),
        0x05 => (Mn::Syscall, &[]),
        0x06 => (Mn::Clts, &[]),
        0x07 => (if w { Mn::Sysretq } else { Mn::Sysret }, &[]),
        0x08 => (Mn::Invd, &[]),
        0x09 if pp == 2 => (Mn::Wbnoinvd, &[]),
        0x09 => (Mn::Wbinvd, &[]),
        0x0B => (Mn::Ud2, &[]),
        0x1C if reg == 0 && pp == 0 && !is_reg => (Mn::Cldemote, &[M(B(1))]),
        0x1E if pp == 2 && i.modrm == 0xFA => (Mn::Endbr64, &[]),
        0x1E if pp == 2 && i.modrm == 0xFB => (Mn::Endbr32, &[]),
        0x1E if pp == 2 && is_reg && reg == 1 => (w64(i, Mn::Rdsspd, Mn::Rdsspq), &[E(Dq)]),
        0x1F if reg == 0 => (Mn::Nop, &[EV]),
        0x20 => (Mn::Mov, &[Rd, Cr]),
        0x21 => (Mn::Mov, &[Rd, Dr]),
        0x22 => (Mn::Mov, &[Cr, Rd]),
        0x23 => (Mn::Mov, &[Dr, Rd]),
        0x30 => (Mn::Wrmsr, &[]),
        0x31 => (Mn::Rdtsc, &[]),
        0x32 => (Mn::Rdmsr, &[]),
        0x33 => (Mn::Rdpmc, &[]),
        0x34 => (Mn::Sysenter, &[]),
        0x35 => (if w { Mn::Sysexitq } else { Mn::Sysexit }, &[]),
        0x37 => (w64(i, Mn::Getsec, Mn::Getsecq), &[]),
        0x40..=0x4F => (CMOVCC[usize::from(op & 15)], &[GV, EV]),
        0x78 if pp == 0 => (Mn::Vmread, &[E(Mw), G(Mw)]),
        0x79 if pp == 0 => (Mn::Vmwrite, &[G(Mw), E(Mw)]),
        0x80..=0x8F => (JCC[usize::from(op & 15)], &[J]),
        0x90..=0x9F => (SETCC[usize::from(op & 15)], &[EB]),
        0xA0 => (Mn::Push, &[Seg(Segment::FS)]),
        0xA1 => (Mn::Pop, &[Seg(Segment::FS)]),
        0xA8 => (Mn::Push, &[Seg(Segment::GS)]),
        0xA9 => (Mn::Pop, &[Seg(Segment::GS)]),
        0xA2 => (Mn::Cpuid, &[]),
        0xA3 => (Mn::Bt, &[EV, GV]),
        0xA4 => (Mn::Shld, &[EV, GV, Ib]),
        0xA5 => (Mn::Shld, &[EV, GV, CL]),
        0xAA => (Mn::Rsm, &[]),
        0xAB => (Mn::Bts, &[EV, GV]),
        0xAC => (Mn::Shrd, &[EV, GV, Ib]),
        0xAD => (Mn::Shrd, &[EV, GV, CL]),
        0xAE => return group15(i),
        0xAF => (Mn::Imul, &[GV, EV]),
        0xB0 => (Mn::Cmpxchg, &[EB, GB]),
        0xB1 => (Mn::Cmpxchg, &[EV, GV]),
        0xB2 => (Mn::Lss, &[G(Sz::Lx), M(Far)]),
        0xB3 => (Mn::Btr, &[EV, GV]),
        0xB4 => (Mn::Lfs, &[G(Sz::Lx), M(Far)]),
        0xB5 => (Mn::Lgs, &[G(Sz::Lx), M(Far)]),
        0xB6 => (Mn::Movzx, &[GV, EB]),
        0xB7 => (Mn::Movzx, &[GV, E(B(2))]),
        0xB8 => (Mn::Popcnt, &[GV, EV]),
        0xB9 => (Mn::Ud1, &[GV, EV]),
        0xBA if reg >= 4 => (
            [Mn::Bt, Mn::Bts, Mn::Btr, Mn::Btc][usize::from(reg & 3)],
            &[EV, Ib],
        ),
        0xBB => (Mn::Btc, &[EV, GV]),
        0xBC if pp == 2 => (Mn::Tzcnt, &[GV, EV]),
        0xBC => (Mn::Bsf, &[GV, EV]),
        0xBD if pp == 2 => (Mn::Lzcnt, &[GV, EV]),
        0xBD => (Mn::Bsr, &[GV, EV]),
        0xBE => (Mn::Movsx, &[GV, EB]),
        0xBF => (Mn::Movsx, &[GV, E(B(2))]),
        0xC0 => (Mn::Xadd, &[EB, GB]),
        0xC1 => (Mn::Xadd, &[EV, GV]),
        0xC3 => (Mn::Movnti, &[M(Dq), G(Dq)]),
        0xC7 => return group9(i),
        0xC8..=0xCF => (Mn::Bswap, &[Z(Os)]),
        0xFF if i.prefixes.contains(Prefixes::MODRM) => (Mn::Ud0, &[GV, EV]),
        0xFF => (Mn::Ud0, &[]),
        _ => return None,
    })
}

/// `0F AE`: state save/restore, MXCSR, cache-line flushes, fences, FS/GS base access.
fn group15(i: &Instruction) -> Option<Form> {
    let reg = (i.modrm >> 3) & 7;
    let mem0 = &[M(B(0))][..];
    Some(match (i.modrm >= 0xC0, i.pp, reg) {
        (false, 0, 0) => (w64(i, Mn::Fxsave, Mn::Fxsave64), &[M(B(512))]),
        (false, 0, 1) => (w64(i, Mn::Fxrstor, Mn::Fxrstor64), &[M(B(512))]),
        (false, 0, 2) => (Mn::Ldmxcsr, &[M(B(4))]),
        (false, 0, 3) => (Mn::Stmxcsr, &[M(B(4))]),
        (false, 0, 4) => (w64(i, Mn::Xsave, Mn::Xsave64), mem0),
        (false, 0, 5) => (w64(i, Mn::Xrstor, Mn::Xrstor64), mem0),
        (false, 0, 6) => (w64(i, Mn::Xsaveopt, Mn::Xsaveopt64), mem0),
        (false, 0, 7) => (Mn::Clflush, &[M(B(1))]),
        (false, 1, 6) => (Mn::Clwb, &[M(B(1))]),
        (false, 1, 7) => (Mn::Clflushopt, &[M(B(1))]),
        (false, 2, 4) => (Mn::Ptwrite, &[E(Dq)]),
        (false, 2, 6) => (Mn::Clrssbsy, &[M(B(8))]),
        (true, 2, 4) => (Mn::Ptwrite, &[E(Dq)]),
        (true, 2, 5) => (w64(i, Mn::Incsspd, Mn::Incsspq), &[E(Dq)]),
        (true, 2, 6) => (Mn::Umonitor, &[E(Sz::As)]),
        // A 64-bit register with REX.W, as iced-x86 decodes it (the SDM lists only `r32`).
        (true, 3, 6) => (Mn::Umwait, &[E(Dq)]),
        (true, 1, 6) => (Mn::Tpause, &[E(Dq)]),
        (true, 0, 5) => (Mn::Lfence, &[]),
        (true, 0, 6) => (Mn::Mfence, &[]),
        (true, 0, 7) => (Mn::Sfence, &[]),
        (true, 2, 0) => (Mn::Rdfsbase, &[E(Dq)]),
        (true, 2, 1) => (Mn::Rdgsbase, &[E(Dq)]),
        (true, 2, 2) => (Mn::Wrfsbase, &[E(Dq)]),
        (true, 2, 3) => (Mn::Wrgsbase, &[E(Dq)]),
        _ => return None,
    })
}

/// `0F C7`: CMPXCHG8B/16B, XSAVE variants, VMX pointers, RDRAND/RDSEED/RDPID.
fn group9(i: &Instruction) -> Option<Form> {
    let reg = (i.modrm >> 3) & 7;
    let mem0 = &[M(B(0))][..];
    Some(match (i.modrm >= 0xC0, i.pp, reg) {
        (false, _, 1) => (w64(i, Mn::Cmpxchg8b, Mn::Cmpxchg16b), &[M(Sz::Cx)]),
        (false, 0, 3) => (w64(i, Mn::Xrstors, Mn::Xrstors64), mem0),
        (false, 0, 4) => (w64(i, Mn::Xsavec, Mn::Xsavec64), mem0),
        (false, 0, 5) => (w64(i, Mn::Xsaves, Mn::Xsaves64), mem0),
        (false, 0, 6) => (Mn::Vmptrld, &[M(B(8))]),
        (false, 1, 6) => (Mn::Vmclear, &[M(B(8))]),
        (false, 2, 6) => (Mn::Vmxon, &[M(B(8))]),
        (false, 0, 7) => (Mn::Vmptrst, &[M(B(8))]),
        (true, 0 | 1, 6) => (Mn::Rdrand, &[EV]),
        (true, 0 | 1, 7) => (Mn::Rdseed, &[EV]),
        (true, 2, 7) => (Mn::Rdpid, &[E(Mw)]),
        (true, 2, 6) => (Mn::Senduipi, &[E(B(8))]),
        _ => return None,
    })
}

fn map_0f38(i: &Instruction) -> Option<Form> {
    let w = i.prefixes.contains(Prefixes::W);
    Some(match (i.opcode, i.pp) {
        (0xF5, 1) => (if w { Mn::Wrussq } else { Mn::Wrussd }, &[M(Dq), G(Dq)]),
        (0xF6, 0) => (if w { Mn::Wrssq } else { Mn::Wrssd }, &[M(Dq), G(Dq)]),
        (0xFC, 0) => (Mn::Aadd, &[M(Dq), G(Dq)]),
        (0xFC, 1) => (Mn::Aand, &[M(Dq), G(Dq)]),
        (0xFC, 2) => (Mn::Axor, &[M(Dq), G(Dq)]),
        (0xFC, 3) => (Mn::Aor, &[M(Dq), G(Dq)]),
        (0x80, 1) => (Mn::Invept, &[G(Mw), M(B(16))]),
        (0x81, 1) => (Mn::Invvpid, &[G(Mw), M(B(16))]),
        (0x82, 1) => (Mn::Invpcid, &[G(Mw), M(B(16))]),
        (0xF0, 0 | 1) => (Mn::Movbe, &[GV, M(Os)]),
        (0xF1, 0 | 1) => (Mn::Movbe, &[M(Os), GV]),
        (0xF0, 3) => (Mn::Crc32, &[G(Dq), EB]),
        (0xF1, 3) => (Mn::Crc32, &[G(Dq), EV]),
        (0xF6, 1) => (Mn::Adcx, &[G(Dq), E(Dq)]),
        (0xF6, 2) => (Mn::Adox, &[G(Dq), E(Dq)]),
        (0xF8, 1) => (Mn::Movdir64b, &[G(Sz::As), M(B(64))]),
        (0xF8, 2) => (Mn::Enqcmds, &[G(Sz::As), M(B(64))]),
        (0xF8, 3) => (Mn::Enqcmd, &[G(Sz::As), M(B(64))]),
        (0xF9, 0) => (Mn::Movdiri, &[M(Dq), G(Dq)]),
        _ => return None,
    })
}

/// The VEX-encoded general-purpose instructions (BMI1, BMI2).
fn bmi(i: &Instruction) -> Option<Form> {
    const G: Spec = Spec::G(Dq);
    const E: Spec = Spec::E(Dq);
    const BY: Spec = By(Dq);
    let reg = (i.modrm >> 3) & 7;
    Some(match (i.map, i.opcode, i.pp) {
        (2, 0xF2, 0) => (Mn::Andn, &[G, BY, E]),
        (2, 0xF3, 0) => (
            [Mn::Blsr, Mn::Blsmsk, Mn::Blsi]
                .get(usize::from(reg).checked_sub(1)?)
                .copied()?,
            &[BY, E],
        ),
        (2, 0xF5, 0) => (Mn::Bzhi, &[G, E, BY]),
        (2, 0xF5, 2) => (Mn::Pext, &[G, BY, E]),
        (2, 0xF5, 3) => (Mn::Pdep, &[G, BY, E]),
        (2, 0xF6, 3) => (Mn::Mulx, &[G, BY, E]),
        (2, 0xF7, 0) => (Mn::Bextr, &[G, E, BY]),
        (2, 0xF7, 1) => (Mn::Shlx, &[G, E, BY]),
        (2, 0xF7, 2) => (Mn::Sarx, &[G, E, BY]),
        (2, 0xF7, 3) => (Mn::Shrx, &[G, E, BY]),
        (3, 0xF0, 3) => (Mn::Rorx, &[G, E, Ib]),
        (2, 0xE0..=0xEF, 1) => (CMPXADD[usize::from(i.opcode & 15)], &[Spec::M(Dq), G, BY]),
        _ => return None,
    })
}

/// The XOP-encoded general-purpose instructions (TBM, LWP).
fn tbm(i: &Instruction) -> Option<Form> {
    const G: Spec = Spec::G(Dq);
    const E: Spec = Spec::E(Dq);
    const BY: Spec = By(Dq);
    let reg = usize::from((i.modrm >> 3) & 7);
    const G1: [Option<Mn>; 8] = [
        None,
        Some(Mn::Blcfill),
        Some(Mn::Blsfill),
        Some(Mn::Blcs),
        Some(Mn::Tzmsk),
        Some(Mn::Blcic),
        Some(Mn::Blsic),
        Some(Mn::T1mskc),
    ];
    const G2: [Option<Mn>; 8] = [
        None,
        Some(Mn::Blcmsk),
        None,
        None,
        None,
        None,
        Some(Mn::Blci),
        None,
    ];
    Some(match (i.map, i.opcode, reg) {
        (9, 0x01, _) => (G1[reg]?, &[BY, E]),
        (9, 0x02, _) => (G2[reg]?, &[BY, E]),
        (9, 0x12, 0) => (Mn::Llwpcb, &[E]),
        (9, 0x12, 1) => (Mn::Slwpcb, &[E]),
        (10, 0x10, _) => (Mn::Bextr, &[G, E, Id]),
        (10, 0x12, 0) => (Mn::Lwpins, &[BY, Spec::E(B(4)), Id]),
        (10, 0x12, 1) => (Mn::Lwpval, &[BY, Spec::E(B(4)), Id]),
        _ => return None,
    })
}
