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

mod emu_forms;
mod emu_native;
mod emu_support;

use emu_forms::*;
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
    /// Faults of `CMPS` that the processor and the emulator took on different operands.
    other_operand: u64,
    failures: Vec<String>,
}

/// Which operand of `CMPS` a fault belongs to, from the registers at the fault: 6 (the
/// source, `[rSI]`), 7 (the destination, `ES:[rDI]`), or `None` when it fits neither or both.
/// A page fault belongs to the element whose bytes hold its address; an alignment check to
/// the misaligned element.
fn cmps_operand(insn: &x86_decode::Instruction, gpr: &[u64; 16], e: Exception) -> Option<usize> {
    let n = u64::from(insn.memory_size()?);
    let mask = if insn.address_size() == 4 {
        0xFFFF_FFFF
    } else {
        u64::MAX
    };
    let fits = |r: usize| {
        let start = gpr[r] & mask;
        match e {
            Exception::PageFault(pf) => pf.address.wrapping_sub(start) < n,
            Exception::AlignmentCheck => !start.is_multiple_of(n),
            _ => false,
        }
    };
    match (fits(6), fits(7)) {
        (true, false) => Some(6),
        (false, true) => Some(7),
        _ => None,
    }
}

/// Whether the processor and the emulator faulted on different operands of the same `CMPS`
/// element. The architecture leaves the order of its two reads open, and processors differ:
/// this AMD family 19h model 11h reads the destination first, the earlier machines of this
/// project's CI the source (as the emulator does). Either fault is a correct outcome; the
/// registers at the fault are still compared.
fn cmps_other_operand(
    insn: Option<&x86_decode::Instruction>,
    gpr: &[u64; 16],
    native: Option<Exception>,
    emulated: Exception,
) -> bool {
    use x86_decode::Mnemonic as Mn;
    let Some(insn) = insn else { return false };
    if !matches!(
        insn.mnemonic(),
        Some(Mn::Cmpsb | Mn::Cmpsw | Mn::Cmpsd | Mn::Cmpsq)
    ) {
        return false;
    }
    let Some(native) = native else { return false };
    match (
        cmps_operand(insn, gpr, native),
        cmps_operand(insn, gpr, emulated),
    ) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
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
                            (w, Ok(Outcome::Exception(got)))
                                if cmps_other_operand(insn.as_ref(), &nf.gpr, w, got) =>
                            {
                                tally.other_operand += 1;
                            }
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
        "emu_oracle: {} forms, {} native runs compared, {} of them faulted natively \
         ({} CMPS faults on the other operand than the emulator's)\n",
        all.len() - skipped.len(),
        tally.runs,
        tally.faults,
        tally.other_operand
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
