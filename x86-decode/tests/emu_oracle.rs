//! The processor is the oracle: every instruction form the emulator completes is generated
//! with random operands, run natively on this machine (see `emu_native`), then run by the
//! emulator on the same register file, vector registers, flags and memory, and the two
//! outcomes are compared: general-purpose registers, vector and mask registers, RFLAGS (the
//! instruction's undefined flags masked out, as the decoder reports them), memory, RIP, and for
//! faults the vector, error code and CR2, plus the registers at the fault (a `REP` string
//! instruction's progress).
//!
//! Each case runs twice, with the six status flags and DF all zero and all one; some cases set
//! RFLAGS.AC (Linux runs user space with CR0.AM = 1, so misaligned accesses raise #AC).
//!
//! The emulator sees the native pages through 4-level page tables built to match them: the
//! code page, data page 0 (RAM), data page 1 (a *device*: the emulator must not use
//! compare-exchange there), data page 2 (not present, like the PROT_NONE page) and data page 3
//! (read-only). Forms needing a feature the host lacks are skipped with a message.
//!
//! `EMU_ORACLE_CASES=N` sets the cases per form (default 16), `EMU_ORACLE_SEED` the seed.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

mod emu_native;
mod emu_support;

use emu_native::{runner, NativeIn, DATA_PAGES};
use emu_support::*;
use x86_decode::emulate::{Emulator, Exception, Options, Outcome};
use x86_decode::{Decoder, Mode};

// ------------------------------------------------------------------------------------------
// Random numbers.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    /// A "register value": uniform, small, boundary values.
    fn value(&mut self) -> u64 {
        match self.below(8) {
            0 => self.below(16),
            1 => u64::MAX - self.below(4),
            2 => 0x8000_0000_0000_0000 ^ self.below(3),
            3 => 0x7FFF_FFFF ^ self.below(3),
            4 => 0x80 ^ self.below(2),
            5 => u64::from(self.next() as u16),
            _ => self.next(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Instruction forms and their encoder.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Enc {
    Legacy,
    /// VEX map 1 with pp, L, W.
    Vex {
        pp: u8,
        l: u8,
        w: bool,
    },
    /// EVEX map 1 with pp, L'L, W; masking chosen per case.
    Evex {
        pp: u8,
        l: u8,
        w: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rm {
    Mem,
    Reg,
    Any,
    /// No ModRM: `moffs` (A0–A3) with a 64-bit address.
    Moffs,
    /// No ModRM: a string instruction.
    Str,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Feat {
    None,
    Avx,
    Avx512,
    Avx512Vl,
    Avx512Bw,
    Movbe,
    Cx16,
    Movdiri,
    Movdir64b,
}

#[derive(Clone, Debug)]
struct Form {
    name: String,
    prefixes: Vec<u8>,
    rex_w: bool,
    opcode: Vec<u8>,
    enc: Enc,
    /// `Some(d)`: ModRM.reg is the digit `d`.
    digit: Option<u8>,
    rm: Rm,
    imm: usize,
    /// The reg/rm registers are vector registers.
    vector: bool,
    /// EVEX zeroing allowed (loads).
    zeroing: bool,
    /// The size of the memory access (for choosing addresses).
    size: u64,
    /// Prefer addresses aligned to `size`.
    aligned: bool,
    feat: Feat,
}

fn form(name: &str, opcode: &[u8], rm: Rm, size: u64) -> Form {
    Form {
        name: name.to_string(),
        prefixes: vec![],
        rex_w: false,
        opcode: opcode.to_vec(),
        enc: Enc::Legacy,
        digit: None,
        rm,
        imm: 0,
        vector: false,
        zeroing: false,
        size,
        aligned: false,
        feat: Feat::None,
    }
}

impl Form {
    fn p(mut self, p: &[u8]) -> Self {
        self.prefixes = p.to_vec();
        self
    }
    fn w(mut self) -> Self {
        self.rex_w = true;
        self
    }
    fn d(mut self, d: u8) -> Self {
        self.digit = Some(d);
        self
    }
    fn i(mut self, n: usize) -> Self {
        self.imm = n;
        self
    }
    fn f(mut self, f: Feat) -> Self {
        self.feat = f;
        self
    }
    fn vec(mut self) -> Self {
        self.vector = true;
        self
    }
    fn al(mut self) -> Self {
        self.aligned = true;
        self
    }
}

/// Operand-size variants of a legacy form: 16 (66), 32, 64 (REX.W).
fn sizes(name: &str, opcode: &[u8], rm: Rm, extra: &[u8]) -> Vec<Form> {
    vec![
        form(&format!("{name} 16"), opcode, rm, 2).p(&[extra, &[0x66]].concat()),
        form(&format!("{name} 32"), opcode, rm, 4).p(extra),
        form(&format!("{name} 64"), opcode, rm, 8).p(extra).w(),
    ]
}

/// (name, mandatory prefix, opcode, access size, aligned form).
type SseForm = (&'static str, &'static [u8], &'static [u8], u64, bool);

fn forms() -> Vec<Form> {
    let mut v = Vec::new();
    // MOV family.
    v.push(form("mov r/m8, r8", &[0x88], Rm::Any, 1));
    v.extend(sizes("mov r/m, r", &[0x89], Rm::Any, &[]));
    v.push(form("mov r8, r/m8", &[0x8A], Rm::Any, 1));
    v.extend(sizes("mov r, r/m", &[0x8B], Rm::Any, &[]));
    v.push(form("mov r/m8, imm8", &[0xC6], Rm::Mem, 1).d(0).i(1));
    for f in sizes("mov r/m, imm", &[0xC7], Rm::Mem, &[]) {
        let n = if f.size == 2 { 2 } else { 4 };
        v.push(f.d(0).i(n));
    }
    v.push(form("mov al, moffs8", &[0xA0], Rm::Moffs, 1));
    v.extend(sizes("mov rax, moffs", &[0xA1], Rm::Moffs, &[]));
    v.push(form("mov moffs8, al", &[0xA2], Rm::Moffs, 1));
    v.extend(sizes("mov moffs, rax", &[0xA3], Rm::Moffs, &[]));
    for (n, o, s) in [
        ("movzx r, r/m8", 0xB6u8, 1u64),
        ("movzx r, r/m16", 0xB7, 2),
        ("movsx r, r/m8", 0xBE, 1),
        ("movsx r, r/m16", 0xBF, 2),
    ] {
        for mut f in sizes(n, &[0x0F, o], Rm::Any, &[]) {
            f.size = s;
            v.push(f);
        }
    }
    v.push(form("movsxd r64, r/m32", &[0x63], Rm::Any, 4).w());
    v.push(form("movnti m32, r32", &[0x0F, 0xC3], Rm::Mem, 4));
    v.push(form("movnti m64, r64", &[0x0F, 0xC3], Rm::Mem, 8).w());
    for f in sizes("movbe r, m", &[0x0F, 0x38, 0xF0], Rm::Mem, &[]) {
        v.push(f.f(Feat::Movbe));
    }
    for f in sizes("movbe m, r", &[0x0F, 0x38, 0xF1], Rm::Mem, &[]) {
        v.push(f.f(Feat::Movbe));
    }
    v.push(form("movdiri m32, r32", &[0x0F, 0x38, 0xF9], Rm::Mem, 4).f(Feat::Movdiri));
    v.push(
        form("movdiri m64, r64", &[0x0F, 0x38, 0xF9], Rm::Mem, 8)
            .w()
            .f(Feat::Movdiri),
    );
    v.push(
        form("movdir64b r64, m512", &[0x0F, 0x38, 0xF8], Rm::Mem, 64)
            .p(&[0x66])
            .f(Feat::Movdir64b)
            .al(),
    );
    // ALU.
    let alu = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];
    for (k, name) in alu.iter().enumerate() {
        let base = k as u8 * 8;
        let lockable = *name != "cmp";
        let locks: &[&[u8]] = if lockable { &[&[], &[0xF0]] } else { &[&[]] };
        for lock in locks {
            let l = if lock.is_empty() { "" } else { "lock " };
            let rm = if lock.is_empty() { Rm::Any } else { Rm::Mem };
            v.push(form(&format!("{l}{name} r/m8, r8"), &[base], rm, 1).p(lock));
            v.extend(sizes(&format!("{l}{name} r/m, r"), &[base + 1], rm, lock));
            v.push(
                form(&format!("{l}{name} r/m8, imm8"), &[0x80], rm, 1)
                    .p(lock)
                    .d(k as u8)
                    .i(1),
            );
            for f in sizes(&format!("{l}{name} r/m, imm"), &[0x81], rm, lock) {
                let n = if f.size == 2 { 2 } else { 4 };
                v.push(f.d(k as u8).i(n));
            }
            v.extend(
                sizes(&format!("{l}{name} r/m, imm8"), &[0x83], rm, lock)
                    .into_iter()
                    .map(|f| f.d(k as u8).i(1)),
            );
        }
        v.push(form(&format!("{name} r8, r/m8"), &[base + 2], Rm::Any, 1));
        v.extend(sizes(&format!("{name} r, r/m"), &[base + 3], Rm::Any, &[]));
    }
    v.push(form("test r/m8, r8", &[0x84], Rm::Any, 1));
    v.extend(sizes("test r/m, r", &[0x85], Rm::Any, &[]));
    v.push(form("test r/m8, imm8", &[0xF6], Rm::Any, 1).d(0).i(1));
    for f in sizes("test r/m, imm", &[0xF7], Rm::Any, &[]) {
        let n = if f.size == 2 { 2 } else { 4 };
        v.push(f.d(0).i(n));
    }
    for (d, name) in [(0u8, "inc"), (1, "dec")] {
        v.push(form(&format!("{name} r/m8"), &[0xFE], Rm::Any, 1).d(d));
        v.extend(
            sizes(&format!("{name} r/m"), &[0xFF], Rm::Any, &[])
                .into_iter()
                .map(|f| f.d(d)),
        );
        v.extend(
            sizes(&format!("lock {name} m"), &[0xFF], Rm::Mem, &[0xF0])
                .into_iter()
                .map(|f| f.d(d)),
        );
    }
    for (d, name) in [(2u8, "not"), (3, "neg")] {
        v.push(form(&format!("{name} r/m8"), &[0xF6], Rm::Any, 1).d(d));
        v.extend(
            sizes(&format!("{name} r/m"), &[0xF7], Rm::Any, &[])
                .into_iter()
                .map(|f| f.d(d)),
        );
        v.extend(
            sizes(&format!("lock {name} m"), &[0xF7], Rm::Mem, &[0xF0])
                .into_iter()
                .map(|f| f.d(d)),
        );
    }
    v.push(form("xadd r/m8, r8", &[0x0F, 0xC0], Rm::Any, 1));
    v.extend(sizes("xadd r/m, r", &[0x0F, 0xC1], Rm::Any, &[]));
    v.extend(sizes("lock xadd m, r", &[0x0F, 0xC1], Rm::Mem, &[0xF0]));
    for (d, name) in [(4u8, "mul"), (5, "imul"), (6, "div"), (7, "idiv")] {
        v.push(form(&format!("{name} r/m8"), &[0xF6], Rm::Any, 1).d(d));
        v.extend(
            sizes(&format!("{name} r/m"), &[0xF7], Rm::Any, &[])
                .into_iter()
                .map(|f| f.d(d)),
        );
    }
    v.extend(sizes("imul r, r/m", &[0x0F, 0xAF], Rm::Any, &[]));
    for f in sizes("imul r, r/m, imm", &[0x69], Rm::Any, &[]) {
        let n = if f.size == 2 { 2 } else { 4 };
        v.push(f.i(n));
    }
    v.extend(
        sizes("imul r, r/m, imm8", &[0x6B], Rm::Any, &[])
            .into_iter()
            .map(|f| f.i(1)),
    );
    // Shifts and rotates (the /6 alias of SAL is left out).
    for (d, name) in [
        (0u8, "rol"),
        (1, "ror"),
        (2, "rcl"),
        (3, "rcr"),
        (4, "shl"),
        (5, "shr"),
        (7, "sar"),
    ] {
        v.push(
            form(&format!("{name} r/m8, imm8"), &[0xC0], Rm::Any, 1)
                .d(d)
                .i(1),
        );
        v.extend(
            sizes(&format!("{name} r/m, imm8"), &[0xC1], Rm::Any, &[])
                .into_iter()
                .map(|f| f.d(d).i(1)),
        );
        v.push(form(&format!("{name} r/m8, 1"), &[0xD0], Rm::Any, 1).d(d));
        v.extend(
            sizes(&format!("{name} r/m, 1"), &[0xD1], Rm::Any, &[])
                .into_iter()
                .map(|f| f.d(d)),
        );
        v.push(form(&format!("{name} r/m8, cl"), &[0xD2], Rm::Any, 1).d(d));
        v.extend(
            sizes(&format!("{name} r/m, cl"), &[0xD3], Rm::Any, &[])
                .into_iter()
                .map(|f| f.d(d)),
        );
    }
    v.extend(
        sizes("shld r/m, r, imm8", &[0x0F, 0xA4], Rm::Any, &[])
            .into_iter()
            .map(|f| f.i(1)),
    );
    v.extend(sizes("shld r/m, r, cl", &[0x0F, 0xA5], Rm::Any, &[]));
    v.extend(
        sizes("shrd r/m, r, imm8", &[0x0F, 0xAC], Rm::Any, &[])
            .into_iter()
            .map(|f| f.i(1)),
    );
    v.extend(sizes("shrd r/m, r, cl", &[0x0F, 0xAD], Rm::Any, &[]));
    // Bit tests.
    for (o, d, name) in [
        (0xA3u8, 4u8, "bt"),
        (0xAB, 5, "bts"),
        (0xB3, 6, "btr"),
        (0xBB, 7, "btc"),
    ] {
        v.extend(sizes(&format!("{name} r/m, r"), &[0x0F, o], Rm::Any, &[]));
        v.extend(
            sizes(&format!("{name} r/m, imm8"), &[0x0F, 0xBA], Rm::Any, &[])
                .into_iter()
                .map(|f| f.d(d).i(1)),
        );
        if name != "bt" {
            v.extend(sizes(
                &format!("lock {name} m, r"),
                &[0x0F, o],
                Rm::Mem,
                &[0xF0],
            ));
        }
    }
    for cc in 0..16u8 {
        v.push(form(&format!("set{cc:x} r/m8"), &[0x0F, 0x90 + cc], Rm::Any, 1).d(0));
        v.extend(sizes(
            &format!("cmov{cc:x} r, r/m"),
            &[0x0F, 0x40 + cc],
            Rm::Any,
            &[],
        ));
    }
    // Exchanges.
    v.push(form("xchg r/m8, r8", &[0x86], Rm::Any, 1));
    v.extend(sizes("xchg r/m, r", &[0x87], Rm::Any, &[]));
    v.push(form("cmpxchg r/m8, r8", &[0x0F, 0xB0], Rm::Any, 1));
    v.extend(sizes("cmpxchg r/m, r", &[0x0F, 0xB1], Rm::Any, &[]));
    v.extend(sizes("lock cmpxchg m, r", &[0x0F, 0xB1], Rm::Mem, &[0xF0]));
    v.push(form("cmpxchg8b m64", &[0x0F, 0xC7], Rm::Mem, 8).d(1));
    v.push(
        form("lock cmpxchg8b m64", &[0x0F, 0xC7], Rm::Mem, 8)
            .d(1)
            .p(&[0xF0]),
    );
    v.push(
        form("cmpxchg16b m128", &[0x0F, 0xC7], Rm::Mem, 16)
            .d(1)
            .w()
            .f(Feat::Cx16)
            .al(),
    );
    v.push(
        form("lock cmpxchg16b m128", &[0x0F, 0xC7], Rm::Mem, 16)
            .d(1)
            .w()
            .p(&[0xF0])
            .f(Feat::Cx16)
            .al(),
    );
    // LOCK where it is not allowed: #UD on both sides.
    v.push(form("lock mov m32, r32", &[0x89], Rm::Mem, 4).p(&[0xF0]));
    v.push(form("lock add r32, r/m32 (reg dst)", &[0x03], Rm::Any, 4).p(&[0xF0]));
    // String instructions, every size and prefix, 64- and 32-bit addressing.
    for (op, name) in [
        (0xA4u8, "movs"),
        (0xA6, "cmps"),
        (0xAA, "stos"),
        (0xAC, "lods"),
        (0xAE, "scas"),
    ] {
        for rep in [&[][..], &[0xF3], &[0xF2]] {
            for a32 in [false, true] {
                let mut pre = rep.to_vec();
                if a32 {
                    pre.push(0x67);
                }
                let r = match rep.first() {
                    Some(0xF3) => "rep ",
                    Some(_) => "repne ",
                    None => "",
                };
                let a = if a32 { " a32" } else { "" };
                v.push(form(&format!("{r}{name}b{a}"), &[op], Rm::Str, 1).p(&pre));
                v.extend(sizes(&format!("{r}{name}{a}"), &[op + 1], Rm::Str, &pre));
            }
        }
    }
    // SSE moves.
    let sse: &[SseForm] = &[
        ("movups", &[], &[0x0F, 0x10], 16, false),
        ("movups st", &[], &[0x0F, 0x11], 16, false),
        ("movupd", &[0x66], &[0x0F, 0x10], 16, false),
        ("movupd st", &[0x66], &[0x0F, 0x11], 16, false),
        ("movss", &[0xF3], &[0x0F, 0x10], 4, false),
        ("movss st", &[0xF3], &[0x0F, 0x11], 4, false),
        ("movsd", &[0xF2], &[0x0F, 0x10], 8, false),
        ("movsd st", &[0xF2], &[0x0F, 0x11], 8, false),
        ("movaps", &[], &[0x0F, 0x28], 16, true),
        ("movaps st", &[], &[0x0F, 0x29], 16, true),
        ("movapd", &[0x66], &[0x0F, 0x28], 16, true),
        ("movapd st", &[0x66], &[0x0F, 0x29], 16, true),
        ("movdqu", &[0xF3], &[0x0F, 0x6F], 16, false),
        ("movdqu st", &[0xF3], &[0x0F, 0x7F], 16, false),
        ("movdqa", &[0x66], &[0x0F, 0x6F], 16, true),
        ("movdqa st", &[0x66], &[0x0F, 0x7F], 16, true),
        ("movq xmm, xmm/m64", &[0xF3], &[0x0F, 0x7E], 8, false),
        ("movq xmm/m64, xmm", &[0x66], &[0x0F, 0xD6], 8, false),
    ];
    for (name, p, o, size, al) in sse {
        // Register-only vector forms never reach an intercept; the emulator leaves them alone.
        let mut f = form(name, o, Rm::Mem, *size).p(p).vec();
        f.aligned = *al;
        v.push(f);
    }
    let sse_mem: &[SseForm] = &[
        ("movntps", &[], &[0x0F, 0x2B], 16, true),
        ("movntpd", &[0x66], &[0x0F, 0x2B], 16, true),
        ("movntdq", &[0x66], &[0x0F, 0xE7], 16, true),
        ("movntdqa", &[0x66], &[0x0F, 0x38, 0x2A], 16, true),
        ("lddqu", &[0xF2], &[0x0F, 0xF0], 16, false),
    ];
    for (name, p, o, size, al) in sse_mem {
        let mut f = form(name, o, Rm::Mem, *size).p(p).vec();
        f.aligned = *al;
        v.push(f);
    }
    // MOVD/MOVQ between XMM and r/m32/64: ModRM.rm is a GPR (not a vector) in register form.
    v.push(
        form("movd xmm, r/m32", &[0x0F, 0x6E], Rm::Mem, 4)
            .p(&[0x66])
            .vec(),
    );
    v.push(
        form("movq xmm, r/m64", &[0x0F, 0x6E], Rm::Mem, 8)
            .p(&[0x66])
            .w()
            .vec(),
    );
    v.push(
        form("movd r/m32, xmm", &[0x0F, 0x7E], Rm::Mem, 4)
            .p(&[0x66])
            .vec(),
    );
    v.push(
        form("movq r/m64, xmm", &[0x0F, 0x7E], Rm::Mem, 8)
            .p(&[0x66])
            .w()
            .vec(),
    );
    // VEX moves at 128 and 256 bits.
    let vex: &[(&str, u8, u8, bool)] = &[
        ("vmovups", 0, 0x10, false),
        ("vmovups st", 0, 0x11, false),
        ("vmovupd", 1, 0x10, false),
        ("vmovupd st", 1, 0x11, false),
        ("vmovaps", 0, 0x28, true),
        ("vmovaps st", 0, 0x29, true),
        ("vmovapd", 1, 0x28, true),
        ("vmovapd st", 1, 0x29, true),
        ("vmovdqu", 2, 0x6F, false),
        ("vmovdqu st", 2, 0x7F, false),
        ("vmovdqa", 1, 0x6F, true),
        ("vmovdqa st", 1, 0x7F, true),
    ];
    for &(name, pp, op, al) in vex {
        for l in 0..2u8 {
            let mut f = form(&format!("{name} L{l}"), &[op], Rm::Mem, 16 << l)
                .vec()
                .f(Feat::Avx);
            f.enc = Enc::Vex { pp, l, w: false };
            f.aligned = al;
            v.push(f);
        }
    }
    // EVEX moves at 128/256/512 bits, masked and zero-masked.
    let evex: &[(&str, u8, u8, bool, bool, Feat)] = &[
        ("vmovups", 0, 0x10, false, false, Feat::Avx512),
        ("vmovups st", 0, 0x11, false, false, Feat::Avx512),
        ("vmovupd", 1, 0x10, true, false, Feat::Avx512),
        ("vmovupd st", 1, 0x11, true, false, Feat::Avx512),
        ("vmovaps", 0, 0x28, false, true, Feat::Avx512),
        ("vmovaps st", 0, 0x29, false, true, Feat::Avx512),
        ("vmovapd", 1, 0x28, true, true, Feat::Avx512),
        ("vmovapd st", 1, 0x29, true, true, Feat::Avx512),
        ("vmovdqu32", 2, 0x6F, false, false, Feat::Avx512),
        ("vmovdqu32 st", 2, 0x7F, false, false, Feat::Avx512),
        ("vmovdqu64", 2, 0x6F, true, false, Feat::Avx512),
        ("vmovdqu64 st", 2, 0x7F, true, false, Feat::Avx512),
        ("vmovdqu8", 3, 0x6F, false, false, Feat::Avx512Bw),
        ("vmovdqu8 st", 3, 0x7F, false, false, Feat::Avx512Bw),
        ("vmovdqu16", 3, 0x6F, true, false, Feat::Avx512Bw),
        ("vmovdqu16 st", 3, 0x7F, true, false, Feat::Avx512Bw),
        ("vmovdqa32", 1, 0x6F, false, true, Feat::Avx512),
        ("vmovdqa32 st", 1, 0x7F, false, true, Feat::Avx512),
        ("vmovdqa64", 1, 0x6F, true, true, Feat::Avx512),
        ("vmovdqa64 st", 1, 0x7F, true, true, Feat::Avx512),
    ];
    for &(name, pp, op, w, al, feat) in evex {
        for l in 0..3u8 {
            let feat = if l < 2 && feat == Feat::Avx512 {
                Feat::Avx512Vl
            } else {
                feat
            };
            let mut f = form(&format!("{name} L{l} (evex)"), &[op], Rm::Mem, 16 << l)
                .vec()
                .f(feat);
            f.enc = Enc::Evex { pp, l, w };
            f.aligned = al;
            f.zeroing = !name.ends_with("st");
            v.push(f);
        }
    }
    v
}

/// A memory operand as encoded.
struct MemOp {
    base: Option<u8>,
    index: Option<(u8, u8)>,
    disp: i32,
    rip: bool,
    addr32: bool,
}

/// Encodes `f` with ModRM.reg = `reg`, r/m = `rm` (register number or memory), the EVEX mask
/// fields, and the immediate bytes.
fn encode(f: &Form, reg: u8, rm: Result<u8, &MemOp>, evex_mask: (u8, bool), imm: &[u8]) -> Vec<u8> {
    let mut out = f.prefixes.clone();
    let reg = f.digit.unwrap_or(reg);
    let mut modrm;
    let mut sib = None;
    let mut disp: Vec<u8> = Vec::new();
    let (mut rex_b, mut rex_x) = (0u8, 0u8);
    let mut evex_x4 = 0u8;
    match rm {
        Ok(r) => {
            modrm = 0xC0 | (reg & 7) << 3 | (r & 7);
            rex_b = r >> 3 & 1;
            evex_x4 = r >> 4 & 1;
        }
        Err(m) => {
            if m.addr32 {
                out.push(0x67);
            }
            modrm = (reg & 7) << 3;
            if m.rip {
                modrm |= 5;
                disp.extend_from_slice(&m.disp.to_le_bytes());
            } else {
                let needs_sib =
                    m.index.is_some() || m.base.is_none() || m.base.is_some_and(|b| b & 7 == 4);
                let base_enc = m.base.map_or(5, |b| b & 7);
                // EVEX scales disp8 by N (the vector length for these full-vector moves).
                let n = match f.enc {
                    Enc::Evex { l, .. } => 16i32 << l,
                    _ => 1,
                };
                let small = m.disp % n == 0 && (-128..128).contains(&(m.disp / n));
                let (md, dbytes): (u8, Vec<u8>) = if m.base.is_none() {
                    (0, m.disp.to_le_bytes().to_vec())
                } else if m.disp == 0 && base_enc != 5 {
                    (0, vec![])
                } else if small {
                    (1, vec![(m.disp / n) as i8 as u8])
                } else {
                    (2, m.disp.to_le_bytes().to_vec())
                };
                modrm |= md << 6;
                disp = dbytes;
                if let Some(b) = m.base {
                    rex_b = b >> 3 & 1;
                }
                if needs_sib {
                    modrm |= 4;
                    let (idx, scale) = m.index.map_or((4, 0), |(i, s)| (i, s));
                    rex_x = idx >> 3 & 1;
                    sib = Some(scale << 6 | (idx & 7) << 3 | base_enc);
                } else {
                    modrm |= base_enc;
                }
            }
        }
    }
    let rex_r = reg >> 3 & 1;
    match f.enc {
        Enc::Legacy => {
            let rex = 0x40 | u8::from(f.rex_w) << 3 | rex_r << 2 | rex_x << 1 | rex_b;
            // A REX byte also turns AH..BH into SPL..DIL: emit one sometimes even when empty.
            if rex != 0x40 || (imm.len() == 1 && imm[0] & 1 == 1) {
                // The LOCK/66/F2/F3 prefixes stay in front; REX goes right before the opcode.
                out.push(rex);
            }
            out.extend_from_slice(&f.opcode);
        }
        Enc::Vex { pp, l, w } => {
            out.push(0xC4);
            out.push((!rex_r & 1) << 7 | (!rex_x & 1) << 6 | (!rex_b & 1) << 5 | 1);
            out.push(u8::from(w) << 7 | 0xF << 3 | l << 2 | pp);
            out.extend_from_slice(&f.opcode);
        }
        Enc::Evex { pp, l, w } => {
            let r4 = reg >> 4 & 1;
            let x = if rm.is_ok() { evex_x4 } else { rex_x };
            out.push(0x62);
            out.push((!rex_r & 1) << 7 | (!x & 1) << 6 | (!rex_b & 1) << 5 | (!r4 & 1) << 4 | 1);
            out.push(u8::from(w) << 7 | 0xF << 3 | 1 << 2 | pp);
            let (aaa, z) = evex_mask;
            out.push(u8::from(z) << 7 | l << 5 | 1 << 3 | aaa);
            out.extend_from_slice(&f.opcode);
        }
    }
    out.push(modrm);
    out.extend(sib);
    out.extend_from_slice(&disp);
    out.extend_from_slice(imm);
    out
}

// ------------------------------------------------------------------------------------------
// The harness.

const CODE_GPA: u64 = 0x10_0000;
const DATA_GPA: u64 = 0x20_0000;

fn host_has(f: Feat) -> bool {
    use core::arch::x86_64::__cpuid_count;
    let l7 = __cpuid_count(7, 0);
    let l1 = __cpuid_count(1, 0);
    match f {
        Feat::None => true,
        Feat::Avx => std::is_x86_feature_detected!("avx"),
        Feat::Avx512 => {
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
        }
        Feat::Avx512Vl => host_has(Feat::Avx512) && std::is_x86_feature_detected!("avx512vl"),
        Feat::Avx512Bw => host_has(Feat::Avx512Vl),
        Feat::Movbe => l1.ecx >> 22 & 1 == 1,
        Feat::Cx16 => l1.ecx >> 13 & 1 == 1,
        Feat::Movdiri => l7.ecx >> 27 & 1 == 1,
        Feat::Movdir64b => l7.ecx >> 28 & 1 == 1,
    }
}

/// The emulator's view of the native pages: page tables, the code page, data pages.
fn base_memory(code_va: u64, data_va: u64, ro: &[u8]) -> (SparseMemory, u64) {
    let mut mem = SparseMemory::new();
    let root = 0x40_0000;
    let mut t = Tables::new(&mut mem, root, 4);
    t.map(&mut mem, code_va, CODE_GPA, P | RW | US | A, RW | US);
    for page in 0..DATA_PAGES as u64 {
        let va = data_va + page * 0x1000;
        let gpa = DATA_GPA + page * 0x1000;
        match page {
            2 => t.map(&mut mem, va, gpa, 0, RW | US),
            3 => t.map(&mut mem, va, gpa, P | US, RW | US),
            _ => t.map(&mut mem, va, gpa, P | RW | US, RW | US),
        }
    }
    mem.write_bytes(DATA_GPA + 0x3000, ro);
    mem.devices.insert((DATA_GPA + 0x1000) >> 12);
    (mem, root)
}

/// Picks a memory target (a linear address) for an access of `size` bytes.
fn pick_target(rng: &mut Rng, data: u64, size: u64, aligned: bool) -> u64 {
    let size = size.max(1);
    let mut t = match rng.below(100) {
        0..=49 => data + rng.below(0x1000 - size),
        50..=69 => data + 0x1000 + rng.below(0x1000 - size),
        70..=79 => data + 0x1000 - 1 - rng.below(size.min(0x1000)),
        80..=85 => data + 0x2000 - 1 - rng.below(size.min(0x1000)),
        86..=90 => data + 0x2000 + rng.below(0x1000),
        91..=95 => data + 0x3000 + rng.below(0x1000 - size),
        _ => data + rng.below(0x4000 - size),
    };
    if aligned && rng.chance(75) {
        t &= !(size - 1);
    }
    t
}

struct Case {
    bytes: Vec<u8>,
    gpr: [u64; 16],
    vec: Box<[[u8; 64]; 32]>,
    k: [u64; 8],
    data: Vec<u8>,
}

/// Builds one random case for `f`.
fn make_case(rng: &mut Rng, f: &Form, code_va: u64, data_va: u64) -> Case {
    let mut gpr = [0u64; 16];
    for g in &mut gpr {
        *g = rng.value();
    }
    let mut vec = Box::new([[0u8; 64]; 32]);
    for v in vec.iter_mut() {
        for b in v.iter_mut() {
            *b = rng.next() as u8;
        }
    }
    let mut k = [0u64; 8];
    for m in &mut k {
        *m = match rng.below(4) {
            0 => 0,
            1 => u64::MAX,
            _ => rng.next(),
        };
    }
    let mut data = vec![0u8; 0x2000];
    for b in data.iter_mut() {
        *b = rng.next() as u8;
    }
    let evex = matches!(f.enc, Enc::Evex { .. });
    let nregs = if evex { 32 } else { 16 };
    let reg = rng.below(nregs) as u8;
    let mut imm = vec![0u8; f.imm];
    for b in imm.iter_mut() {
        *b = rng.next() as u8;
    }
    if f.imm == 1 && rng.chance(40) {
        imm[0] = rng.below(70) as u8;
    }
    let mask = if evex {
        let aaa = if rng.chance(30) {
            0
        } else {
            rng.below(8) as u8
        };
        (aaa, f.zeroing && aaa != 0 && rng.chance(50))
    } else {
        (0, false)
    };
    // 16-bit SHLD/SHRD with a count above 16 leave the result undefined: keep counts <= 16.
    if (f.name.starts_with("shld") || f.name.starts_with("shrd")) && f.size == 2 {
        if let Some(b) = imm.first_mut() {
            *b %= 17;
        }
        gpr[1] = (gpr[1] & !0xFF) | rng.below(17);
    }
    // Implicit operands.
    if f.name.contains("div") && rng.chance(70) {
        gpr[2] = rng.below(3);
        if f.name.contains("idiv") && rng.chance(50) {
            gpr[2] = u64::MAX;
        }
    }
    let mut last_target = None;
    let bytes = match f.rm {
        Rm::Str => {
            let size = f.size;
            gpr[6] = pick_target(rng, data_va, size, false);
            gpr[7] = pick_target(rng, data_va, size, false);
            gpr[1] = rng.below(24);
            if f.prefixes.contains(&0x67) {
                for r in [1, 6, 7] {
                    gpr[r] = (gpr[r] & 0xFFFF_FFFF) | rng.next() << 32;
                }
            }
            if f.name.contains("cmps") && rng.chance(50) {
                // Make equal runs likely so that REPE/REPNE stop in the middle.
                let (s, d) = (gpr[6].wrapping_sub(data_va), gpr[7].wrapping_sub(data_va));
                if (s & 0xFFFF_FFFF) < 0x1F00 && (d & 0xFFFF_FFFF) < 0x1F00 {
                    let n = rng.below(40) as usize;
                    let (s, d) = ((s & 0xFFFF_FFFF) as usize, (d & 0xFFFF_FFFF) as usize);
                    for j in 0..n.min(0x2000 - s.max(d)) {
                        data[d + j] = data[s + j];
                    }
                }
            }
            if f.name.contains("scas") && rng.chance(50) {
                gpr[0] = 0;
                let d = (gpr[7].wrapping_sub(data_va) & 0xFFFF_FFFF) as usize;
                for j in 0..rng.below(40) as usize {
                    if d + j < 0x2000 {
                        data[d + j] = 0;
                    }
                }
            }
            let mut b = f.prefixes.clone();
            if f.rex_w {
                b.push(0x48);
            }
            b.extend_from_slice(&f.opcode);
            b
        }
        Rm::Moffs => {
            let t = pick_target(rng, data_va, f.size, false);
            let mut b = f.prefixes.clone();
            if f.rex_w {
                b.push(0x48);
            }
            b.extend_from_slice(&f.opcode);
            b.extend_from_slice(&t.to_le_bytes());
            b
        }
        Rm::Reg => encode(f, reg, Ok(rng.below(nregs) as u8), mask, &imm),
        Rm::Any if rng.chance(25) && !f.name.contains("movd") => {
            encode(f, reg, Ok(rng.below(nregs) as u8), mask, &imm)
        }
        _ => {
            let t = pick_target(rng, data_va, f.size, f.aligned);
            last_target = Some(t);
            let mode = rng.below(100);
            let addr32 = mode >= 92;
            let rip = mode < 20;
            let mut m = MemOp {
                base: None,
                index: None,
                disp: 0,
                rip,
                addr32,
            };
            if rip {
                let provisional = encode(f, reg, Err(&m), mask, &imm);
                let next = code_va + provisional.len() as u64;
                m.disp = (t as i64 - next as i64) as i32;
            } else {
                // Registers the instruction uses implicitly stay out of the address.
                let avoid = |r: u8| {
                    (f.name.contains("cmpxchg") || f.name.contains("div") || f.name.contains("mul"))
                        && matches!(r, 0..=3)
                        || (f.name.contains(", cl") && r == 1)
                        || (!f.vector && f.digit.is_none() && r == reg && f.rm != Rm::Reg)
                };
                let pick = |rng: &mut Rng| loop {
                    let r = rng.below(16) as u8;
                    if !avoid(r) {
                        break r;
                    }
                };
                m.disp = match rng.below(3) {
                    0 => 0,
                    1 => rng.below(256) as i32 - 128,
                    _ => rng.next() as i32 >> 8,
                };
                let base = if mode < 88 { Some(pick(rng)) } else { None };
                if mode >= 60 {
                    let mut idx = pick(rng);
                    while idx == 4 || Some(idx) == base {
                        idx = pick(rng);
                    }
                    let scale = rng.below(4) as u8;
                    let iv = rng.below(64).wrapping_sub(32);
                    gpr[usize::from(idx)] = iv;
                    m.index = Some((idx, scale));
                }
                let idx_part = m
                    .index
                    .map_or(0, |(i, s)| gpr[usize::from(i)].wrapping_mul(1 << s));
                let want = t.wrapping_sub(m.disp as i64 as u64).wrapping_sub(idx_part);
                match base {
                    Some(b) => {
                        m.base = Some(b);
                        gpr[usize::from(b)] = if addr32 {
                            (want & 0xFFFF_FFFF) | rng.next() << 32
                        } else {
                            want
                        };
                    }
                    None => {
                        // No base: the displacement carries the address (disp32, sign-extended).
                        m.disp = (t.wrapping_sub(idx_part)) as i32;
                        if (m.disp as i64 as u64).wrapping_add(idx_part) != t && !addr32 {
                            m.base = Some(pick(rng));
                            let b = m.base.unwrap_or(0);
                            m.disp = 0;
                            gpr[usize::from(b)] = t.wrapping_sub(idx_part);
                        }
                    }
                }
            }
            encode(f, reg, Err(&m), mask, &imm)
        }
    };
    // BT* with a register bit offset on memory: keep the addressed unit inside the data pages
    // most of the time (the offset reaches up to 2^(size*8-1) bits either way).
    if f.name.contains("bt") && f.name.ends_with(", r 16")
        || f.name.contains("bt") && f.name.contains(", r ")
    {
        if let Some(t) = last_target {
            let bits = f.size as i64 * 8;
            let lo = -((t - data_va) as i64);
            let hi = 0x2000 - (t - data_va) as i64 - f.size as i64;
            let span = (hi - lo).max(1) as u64;
            let d = lo + rng.below(span) as i64;
            let mut off = d * 8 + rng.below(8) as i64;
            let lim = 1i64 << (bits - 1).min(62);
            off = off.clamp(-lim, lim - 1);
            let r = usize::from(reg & 15);
            gpr[r] = off as u64;
        }
    }
    if f.name.starts_with("movdir64b") {
        // The destination address register: ModRM.reg.
        let r = usize::from(reg & 15);
        gpr[r] = pick_target(rng, data_va, 64, true);
        if rng.chance(25) {
            gpr[r] += rng.below(64);
        }
    }
    Case {
        bytes,
        gpr,
        vec,
        k,
        data,
    }
}

#[derive(Default)]
struct Tally {
    runs: u64,
    faults: u64,
    failures: Vec<String>,
}

#[test]
fn emulator_matches_the_processor() {
    let cases: u64 = std::env::var("EMU_ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let seed: u64 = std::env::var("EMU_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x05EE_D0F0_AC1E);
    let mut guard = runner();
    let run = guard.as_mut().expect("runner");
    let (code_va, data_va) = (run.code_addr(), run.data_addr());
    let (base, cr3) = base_memory(code_va, data_va, run.read_only_page());
    let vec_mode = if host_has(Feat::Avx512) {
        2
    } else if host_has(Feat::Avx) {
        1
    } else {
        0
    };
    let vec_bytes = [16usize, 32, 64][vec_mode as usize];
    let vec_regs = if vec_mode == 2 { 32 } else { 16 };
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    let mut skipped = Vec::new();
    let all = forms();
    let dec = Decoder::new(Mode::Bits64);
    for f in &all {
        if let Ok(filter) = std::env::var("EMU_ORACLE_FILTER") {
            if !f.name.contains(filter.as_str()) {
                continue;
            }
        }
        if !host_has(f.feat) {
            skipped.push(format!("{} ({:?})", f.name, f.feat));
            continue;
        }
        if std::env::var_os("EMU_ORACLE_TRACE").is_some() {
            eprintln!("form {}", f.name);
        }
        for _ in 0..cases {
            let case = make_case(&mut rng, f, code_va, data_va);
            let ac = rng.chance(12);
            for ones in [false, true] {
                let mut rflags = 0x202u64;
                if ones {
                    rflags |= 0x8D5 | 0x400;
                }
                if ac {
                    rflags |= 1 << 18;
                }
                // Native run.
                run.data_mut().copy_from_slice(&case.data);
                if std::env::var_os("EMU_ORACLE_TRACE").is_some() {
                    eprintln!("  case [{}] flags {rflags:#x}", hex(&case.bytes));
                }
                let native = run.run(&NativeIn {
                    code: &case.bytes,
                    gpr: case.gpr,
                    rflags,
                    vec_mode,
                    vec: &case.vec,
                    k: case.k,
                });
                let native_data = run.data_mut().to_vec();
                // Emulated run.
                let mut mem = base.clone();
                mem.write_bytes(CODE_GPA, &emu_native::page_image(&case.bytes));
                mem.write_bytes(DATA_GPA, &case.data);
                let mut cpu = TestCpu::long_mode(cr3);
                cpu.set_user();
                cpu.gpr = case.gpr;
                cpu.rip = code_va;
                cpu.rflags = rflags;
                cpu.zmm = *case.vec;
                cpu.k = case.k;
                let cap = 1 + rng.below(9) as u32;
                let mut emu = Emulator::new(Options {
                    max_rep_iterations: cap,
                    vendor: host_vendor(),
                    ..Options::default()
                });
                // The intercept supplies a random prefix of the bytes (the rest is fetched).
                let supplied = &case.bytes[..rng.below(case.bytes.len() as u64 + 1) as usize];
                let mut outcome;
                let mut calls = 0;
                loop {
                    outcome =
                        emu.emulate(&mut cpu, &mut mem, if calls == 0 { supplied } else { &[] });
                    calls += 1;
                    if outcome != Ok(Outcome::Incomplete) || calls > 100 {
                        break;
                    }
                }
                tally.runs += 1;
                let insn = dec.decode(&case.bytes, code_va).ok();
                let text =
                    insn.map_or_else(|| "(invalid)".to_string(), |i| i.display().to_string());
                let undefined = insn
                    .and_then(|i| i.flags())
                    .map_or(0, |fx| u64::from(fx.undefined))
                    | insn.map_or(0, |i| count_dependent_undefined(f, &i, &case.gpr));
                let mut diffs = Vec::new();
                let (want_gpr, want_flags) = match native.fault {
                    Some(nf) => {
                        tally.faults += 1;
                        let want = match nf.trapno {
                            0 => Some(Exception::DivideError),
                            6 => Some(Exception::InvalidOpcode),
                            12 => Some(Exception::StackFault(nf.err as u16)),
                            13 => Some(Exception::GeneralProtection(nf.err as u16)),
                            14 => Some(Exception::PageFault(x86_decode::emulate::PageFault {
                                error_code: nf.err as u32,
                                address: nf.cr2,
                            })),
                            17 => Some(Exception::AlignmentCheck),
                            _ => None,
                        };
                        match (want, outcome) {
                            (Some(w), Ok(Outcome::Exception(got))) if w == got => {}
                            (w, got) => diffs.push(format!("native fault {:?} (trap {} err {:#x} cr2 {:#x}) vs emulator {got:?}", w, nf.trapno, nf.err, nf.cr2)),
                        }
                        if cpu.rip != code_va {
                            diffs.push(format!("rip moved to {:#x} on a fault", cpu.rip));
                        }
                        (nf.gpr, nf.rflags)
                    }
                    None => {
                        if outcome != Ok(Outcome::Completed) {
                            diffs.push(format!("native completed, emulator {outcome:?}"));
                        }
                        if cpu.rip != code_va + case.bytes.len() as u64 {
                            diffs.push(format!(
                                "rip {:#x}, want {:#x}",
                                cpu.rip,
                                code_va + case.bytes.len() as u64
                            ));
                        }
                        for r in 0..vec_regs {
                            let n = &native.vec[r][..vec_bytes];
                            let e = &cpu.zmm[r][..vec_bytes];
                            if n != e {
                                diffs.push(format!(
                                    "vector {r}: native {} emulator {}",
                                    hex(n),
                                    hex(e)
                                ));
                            }
                        }
                        if vec_mode == 2 && native.k != cpu.k {
                            diffs.push("opmask registers differ".to_string());
                        }
                        (native.gpr, native.rflags)
                    }
                };
                for (r, (want, got)) in want_gpr.iter().zip(&cpu.gpr).enumerate() {
                    if want != got {
                        diffs.push(format!("gpr {r}: native {want:#x} emulator {got:#x}"));
                    }
                }
                let fmask = (0xCD5 | 1 << 18) & !undefined;
                if (want_flags ^ cpu.rflags) & fmask != 0 {
                    diffs.push(format!(
                        "rflags: native {want_flags:#x} emulator {:#x} (compared {fmask:#x})",
                        cpu.rflags
                    ));
                }
                let mut emu_data = vec![0u8; 0x2000];
                mem.read_bytes(DATA_GPA, &mut emu_data);
                if emu_data != native_data {
                    let first = (0..0x2000)
                        .find(|&j| emu_data[j] != native_data[j])
                        .unwrap_or(0);
                    diffs.push(format!(
                        "memory differs first at data+{first:#x}: native {:#x} emulator {:#x}",
                        native_data[first], emu_data[first]
                    ));
                }
                if !diffs.is_empty() && std::env::var_os("EMU_ORACLE_TRACE").is_some() {
                    eprintln!("  gpr in {:x?}\n  native out {:x?}", case.gpr, native.gpr);
                }
                if !diffs.is_empty() && tally.failures.len() < 40 {
                    tally.failures.push(format!(
                        "{} [{}] `{}` flags_in {:#x}:\n    {}",
                        f.name,
                        hex(&case.bytes),
                        text,
                        rflags,
                        diffs.join("\n    ")
                    ));
                }
            }
        }
    }
    // Straight to stderr, past the test harness's output capture, so that skips are visible
    // in every run.
    let mut report = String::new();
    for s in &skipped {
        report += &format!("emu_oracle: skipped (host lacks the feature): {s}\n");
    }
    report += &format!(
        "emu_oracle: {} forms, {} native runs compared, {} of them faulted natively\n",
        all.len() - skipped.len(),
        tally.runs,
        tally.faults
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
    assert!(
        tally.failures.is_empty(),
        "{} mismatches (first {}):\n{}",
        tally.failures.len(),
        tally.failures.len(),
        tally.failures.join("\n")
    );
}

fn host_vendor() -> x86_decode::Vendor {
    let l0 = core::arch::x86_64::__cpuid_count(0, 0);
    // "AuthenticAMD" / "HygonGenuine": EBX starts with "Auth" / "Hygo".
    if l0.ebx == u32::from_le_bytes(*b"Auth") || l0.ebx == u32::from_le_bytes(*b"Hygo") {
        x86_decode::Vendor::Amd
    } else {
        x86_decode::Vendor::Intel
    }
}

/// Flags the SDM leaves undefined that the decoder's per-encoding answer cannot know because
/// they depend on a register count: OF after a multi-bit rotate or shift (count from CL, or an
/// RCL/RCR immediate that reduces to 0 modulo 9/17).
fn count_dependent_undefined(f: &Form, i: &x86_decode::Instruction, gpr: &[u64; 16]) -> u64 {
    let rotate_or_shift = matches!(
        f.opcode.as_slice(),
        [0xC0 | 0xC1 | 0xD0 | 0xD1 | 0xD2 | 0xD3]
    );
    if !rotate_or_shift {
        return 0;
    }
    let count = match f.opcode[0] {
        0xD0 | 0xD1 => 1,
        0xD2 | 0xD3 => gpr[1] & 0xFF,
        _ => i.immediate() & 0xFF,
    } & if f.rex_w { 63 } else { 31 };
    if count == 1 {
        0
    } else {
        0x800
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
