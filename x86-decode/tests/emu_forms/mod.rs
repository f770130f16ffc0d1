//! The instruction forms the processor-oracle test runs, and their encoder (a part of
//! `emu_oracle.rs`, kept apart by structure: the table is long).

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Enc {
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
pub(crate) enum Rm {
    Mem,
    Reg,
    Any,
    /// No ModRM: `moffs` (A0–A3) with a 64-bit address.
    Moffs,
    /// No ModRM: a string instruction.
    Str,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Feat {
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
pub(crate) struct Form {
    pub(crate) name: String,
    pub(crate) prefixes: Vec<u8>,
    pub(crate) rex_w: bool,
    pub(crate) opcode: Vec<u8>,
    pub(crate) enc: Enc,
    /// `Some(d)`: ModRM.reg is the digit `d`.
    pub(crate) digit: Option<u8>,
    pub(crate) rm: Rm,
    pub(crate) imm: usize,
    /// The reg/rm registers are vector registers.
    pub(crate) vector: bool,
    /// EVEX zeroing allowed (loads).
    pub(crate) zeroing: bool,
    /// The size of the memory access (for choosing addresses).
    pub(crate) size: u64,
    /// Prefer addresses aligned to `size`.
    pub(crate) aligned: bool,
    pub(crate) feat: Feat,
}

pub(crate) fn form(name: &str, opcode: &[u8], rm: Rm, size: u64) -> Form {
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
    pub(crate) fn p(mut self, p: &[u8]) -> Self {
        self.prefixes = p.to_vec();
        self
    }
    pub(crate) fn w(mut self) -> Self {
        self.rex_w = true;
        self
    }
    pub(crate) fn d(mut self, d: u8) -> Self {
        self.digit = Some(d);
        self
    }
    pub(crate) fn i(mut self, n: usize) -> Self {
        self.imm = n;
        self
    }
    pub(crate) fn f(mut self, f: Feat) -> Self {
        self.feat = f;
        self
    }
    pub(crate) fn vec(mut self) -> Self {
        self.vector = true;
        self
    }
    pub(crate) fn al(mut self) -> Self {
        self.aligned = true;
        self
    }
}

/// Operand-size variants of a legacy form: 16 (66), 32, 64 (REX.W).
pub(crate) fn sizes(name: &str, opcode: &[u8], rm: Rm, extra: &[u8]) -> Vec<Form> {
    vec![
        form(&format!("{name} 16"), opcode, rm, 2).p(&[extra, &[0x66]].concat()),
        form(&format!("{name} 32"), opcode, rm, 4).p(extra),
        form(&format!("{name} 64"), opcode, rm, 8).p(extra).w(),
    ]
}

/// (name, mandatory prefix, opcode, access size, aligned form).
type SseForm = (&'static str, &'static [u8], &'static [u8], u64, bool);

pub(crate) fn forms() -> Vec<Form> {
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
pub(crate) struct MemOp {
    pub(crate) base: Option<u8>,
    pub(crate) index: Option<(u8, u8)>,
    pub(crate) disp: i32,
    pub(crate) rip: bool,
    pub(crate) addr32: bool,
}

/// Encodes `f` with ModRM.reg = `reg`, r/m = `rm` (register number or memory), the EVEX mask
/// fields, and the immediate bytes.
pub(crate) fn encode(
    f: &Form,
    reg: u8,
    rm: Result<u8, &MemOp>,
    evex_mask: (u8, bool),
    imm: &[u8],
) -> Vec<u8> {
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
