//! Semantic level, first part: mnemonic identity and RFLAGS effects of the general-purpose
//! integer, string and system instructions in the legacy maps.
//!
//! [`Instruction::mnemonic`] returns `None` for anything outside this set (x87, MMX, SSE, AVX,
//! and the less common system instructions), so a caller can tell "not covered yet" from a
//! wrong answer. Names and flag effects follow the Intel SDM Vol. 2 instruction pages and
//! Appendix A; the tests compare both with iced-x86 on millions of instructions.

use crate::defs::{Encoding, Mode};
use crate::instruction::{Instruction, Prefixes};

macro_rules! mnemonics {
    ($($v:ident = $s:literal),* $(,)?) => {
        /// An instruction mnemonic (the operation, independent of operand form).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[allow(missing_docs)]
        pub enum Mnemonic { $($v,)* }

        impl Mnemonic {
            /// The lower-case Intel-syntax name.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self { $(Mnemonic::$v => $s,)* }
            }
        }
    };
}

mnemonics! {
    Aaa = "aaa", Aad = "aad", Aam = "aam", Aas = "aas", Adc = "adc", Add = "add", And = "and",
    Arpl = "arpl", Bound = "bound", Bsf = "bsf", Bsr = "bsr", Bswap = "bswap", Bt = "bt",
    Btc = "btc", Btr = "btr", Bts = "bts", Call = "call", Cbw = "cbw", Cdq = "cdq", Cdqe = "cdqe",
    Clc = "clc", Cld = "cld", Cli = "cli", Clts = "clts", Cmc = "cmc", Cmova = "cmova",
    Cmovae = "cmovae", Cmovb = "cmovb", Cmovbe = "cmovbe", Cmove = "cmove", Cmovg = "cmovg",
    Cmovge = "cmovge", Cmovl = "cmovl", Cmovle = "cmovle", Cmovne = "cmovne", Cmovno = "cmovno",
    Cmovnp = "cmovnp", Cmovns = "cmovns", Cmovo = "cmovo", Cmovp = "cmovp", Cmovs = "cmovs",
    Cmp = "cmp", Cmpsb = "cmpsb", Cmpsd = "cmpsd", Cmpsq = "cmpsq", Cmpsw = "cmpsw",
    Cmpxchg = "cmpxchg", Cmpxchg16b = "cmpxchg16b", Cmpxchg8b = "cmpxchg8b", Cpuid = "cpuid",
    Cqo = "cqo", Crc32 = "crc32", Cwd = "cwd", Cwde = "cwde", Daa = "daa", Das = "das",
    Dec = "dec", Div = "div", Enter = "enter", Hlt = "hlt", Idiv = "idiv", Imul = "imul",
    In = "in", Inc = "inc", Insb = "insb", Insd = "insd", Insw = "insw", Int = "int",
    Int1 = "int1", Int3 = "int3", Into = "into", Invd = "invd", Invlpg = "invlpg", Iret = "iret",
    Iretd = "iretd", Iretq = "iretq", Ja = "ja", Jae = "jae", Jb = "jb", Jbe = "jbe",
    Jcxz = "jcxz", Je = "je", Jecxz = "jecxz", Jg = "jg", Jge = "jge", Jl = "jl", Jle = "jle",
    Jmp = "jmp", Jne = "jne", Jno = "jno", Jnp = "jnp", Jns = "jns", Jo = "jo", Jp = "jp",
    Jrcxz = "jrcxz", Js = "js", Lahf = "lahf", Lar = "lar", Lds = "lds", Lea = "lea",
    Leave = "leave", Les = "les", Lfs = "lfs", Lgdt = "lgdt", Lgs = "lgs", Lidt = "lidt",
    Lldt = "lldt", Lmsw = "lmsw", Lodsb = "lodsb", Lodsd = "lodsd", Lodsq = "lodsq",
    Lodsw = "lodsw", Loop = "loop", Loope = "loope", Loopne = "loopne", Lsl = "lsl", Lss = "lss",
    Ltr = "ltr", Lzcnt = "lzcnt", Mov = "mov", Movbe = "movbe", Movnti = "movnti",
    Movsb = "movsb", Movsd = "movsd", Movsq = "movsq", Movsw = "movsw", Movsx = "movsx",
    Movsxd = "movsxd", Movzx = "movzx", Mul = "mul", Neg = "neg", Nop = "nop", Not = "not",
    Or = "or", Out = "out", Outsb = "outsb", Outsd = "outsd", Outsw = "outsw", Pause = "pause",
    Pop = "pop", Popa = "popa", Popad = "popad", Popcnt = "popcnt", Popf = "popf",
    Popfd = "popfd", Popfq = "popfq", Push = "push", Pusha = "pusha", Pushad = "pushad",
    Pushf = "pushf", Pushfd = "pushfd", Pushfq = "pushfq", Rcl = "rcl", Rcr = "rcr",
    Rdmsr = "rdmsr", Rdpmc = "rdpmc", Rdtsc = "rdtsc", Rdtscp = "rdtscp", Ret = "ret",
    Retf = "retf", Rol = "rol", Ror = "ror", Rsm = "rsm", Sahf = "sahf", Sal = "sal",
    Salc = "salc", Sar = "sar", Sbb = "sbb", Scasb = "scasb", Scasd = "scasd", Scasq = "scasq",
    Scasw = "scasw", Seta = "seta", Setae = "setae", Setb = "setb", Setbe = "setbe",
    Sete = "sete", Setg = "setg", Setge = "setge", Setl = "setl", Setle = "setle",
    Setne = "setne", Setno = "setno", Setnp = "setnp", Setns = "setns", Seto = "seto",
    Setp = "setp", Sets = "sets", Sgdt = "sgdt", Shl = "shl", Shld = "shld", Shr = "shr",
    Shrd = "shrd", Sidt = "sidt", Sldt = "sldt", Smsw = "smsw", Stc = "stc", Std = "std",
    Sti = "sti", Stosb = "stosb", Stosd = "stosd", Stosq = "stosq", Stosw = "stosw", Str = "str",
    Sub = "sub", Swapgs = "swapgs", Syscall = "syscall", Sysenter = "sysenter",
    Sysexit = "sysexit", Sysexitq = "sysexitq", Sysret = "sysret", Sysretq = "sysretq", Test = "test", Tzcnt = "tzcnt", Ud0 = "ud0",
    Ud1 = "ud1", Ud2 = "ud2", Verr = "verr", Verw = "verw", Vmcall = "vmcall",
    Vmgexit = "vmgexit", Vmmcall = "vmmcall", Wait = "wait", Wbinvd = "wbinvd", Wbnoinvd = "wbnoinvd", Xabort = "xabort",
    Xbegin = "xbegin", Wrmsr = "wrmsr", Xadd = "xadd",
    Xchg = "xchg", Xgetbv = "xgetbv", Xlatb = "xlatb", Xor = "xor", Xsetbv = "xsetbv",
    // x87 memory forms.
    Fadd = "fadd", Fbld = "fbld", Fbstp = "fbstp", Fcom = "fcom", Fcomp = "fcomp",
    Fdiv = "fdiv", Fdivr = "fdivr", Fiadd = "fiadd", Ficom = "ficom", Ficomp = "ficomp",
    Fidiv = "fidiv", Fidivr = "fidivr", Fild = "fild", Fimul = "fimul", Fist = "fist",
    Fistp = "fistp", Fisttp = "fisttp", Fisub = "fisub", Fisubr = "fisubr", Fld = "fld",
    Fldcw = "fldcw", Fldenv = "fldenv", Fmul = "fmul", Fnsave = "fnsave", Fnstcw = "fnstcw",
    Fnstenv = "fnstenv", Fnstsw = "fnstsw", Frstor = "frstor", Fst = "fst", Fstp = "fstp",
    Fsub = "fsub", Fsubr = "fsubr",
    // SSE / AVX / AVX-512 moves to and from memory.
    Movapd = "movapd", Movaps = "movaps", Movd = "movd", Movddup = "movddup", Movdqa = "movdqa",
    Movdqu = "movdqu", Movhpd = "movhpd", Movhps = "movhps", Movlpd = "movlpd", Movlps = "movlps",
    Movntdq = "movntdq", Movntdqa = "movntdqa", Movntpd = "movntpd", Movntps = "movntps",
    Movntq = "movntq", Movq = "movq", Movshdup = "movshdup", Movsldup = "movsldup",
    Movss = "movss", Movupd = "movupd", Movups = "movups", Vmaskmovpd = "vmaskmovpd",
    Vmaskmovps = "vmaskmovps", Vmovapd = "vmovapd", Vmovaps = "vmovaps", Vmovd = "vmovd",
    Vmovddup = "vmovddup", Vmovdqa = "vmovdqa", Vmovdqa32 = "vmovdqa32",
    Vmovdqa64 = "vmovdqa64", Vmovdqu = "vmovdqu", Vmovdqu16 = "vmovdqu16",
    Vmovdqu32 = "vmovdqu32", Vmovdqu64 = "vmovdqu64", Vmovdqu8 = "vmovdqu8",
    Vmovhpd = "vmovhpd", Vmovhps = "vmovhps", Vmovlpd = "vmovlpd", Vmovlps = "vmovlps",
    Vmovntdq = "vmovntdq", Vmovntdqa = "vmovntdqa", Vmovntpd = "vmovntpd",
    Vmovntps = "vmovntps", Vmovq = "vmovq", Vmovsd = "vmovsd", Vmovsh = "vmovsh",
    Vmovshdup = "vmovshdup", Vmovsldup = "vmovsldup", Vmovss = "vmovss", Vmovupd = "vmovupd",
    Vmovups = "vmovups", Vmovw = "vmovw", Vpmaskmovd = "vpmaskmovd", Vpmaskmovq = "vpmaskmovq",
}

use Mnemonic as Mn;

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

/// Picks the word/dword/qword name by operand size.
const fn by_size(osize: u8, w: Mn, d: Mn, q: Mn) -> Mn {
    match osize {
        2 => w,
        8 => q,
        _ => d,
    }
}

/// The mnemonic of a decoded instruction in the covered set.
pub(crate) fn mnemonic(i: &Instruction) -> Option<Mnemonic> {
    if let Some((m, _)) = crate::vector::vector_move(i) {
        return Some(m);
    }
    if i.encoding != Encoding::Legacy {
        return None;
    }
    if i.map == 0 && (0xD8..=0xDF).contains(&i.opcode) {
        return crate::vector::x87_memory(i).map(|(m, _)| m);
    }
    let op = i.opcode;
    let modrm = i.modrm;
    let reg = (modrm >> 3) & 7;
    let is_reg = modrm >= 0xC0;
    let os = i.osize;
    let long = i.mode == Mode::Bits64;
    match i.map {
        0 => primary(i, op, reg, os, long),
        1 => Some(match op {
            0x00 => [
                Mn::Sldt,
                Mn::Str,
                Mn::Lldt,
                Mn::Ltr,
                Mn::Verr,
                Mn::Verw,
                Mn::Sldt,
                Mn::Sldt,
            ]
            .get(usize::from(reg))
            .copied()
            .filter(|_| reg < 6)?,
            0x01 if !is_reg => match reg {
                0 => Mn::Sgdt,
                1 => Mn::Sidt,
                2 => Mn::Lgdt,
                3 => Mn::Lidt,
                4 => Mn::Smsw,
                6 => Mn::Lmsw,
                7 => Mn::Invlpg,
                _ => return None,
            },
            0x01 => match modrm {
                0xC1 => Mn::Vmcall,
                0xD0 => Mn::Xgetbv,
                0xD1 => Mn::Xsetbv,
                0xD9 if i.pp >= 2 => Mn::Vmgexit,
                0xD9 => Mn::Vmmcall,
                0xF8 => Mn::Swapgs,
                0xF9 => Mn::Rdtscp,
                0xE0..=0xE7 => Mn::Smsw,
                0xF0..=0xF7 => Mn::Lmsw,
                _ => return None,
            },
            0x02 => Mn::Lar,
            0x03 => Mn::Lsl,
            0x05 => Mn::Syscall,
            0x06 => Mn::Clts,
            0x07 if i.prefixes.contains(Prefixes::W) => Mn::Sysretq,
            0x07 => Mn::Sysret,
            0x08 => Mn::Invd,
            0x09 if i.pp == 2 => Mn::Wbnoinvd,
            0x09 => Mn::Wbinvd,
            0x0B => Mn::Ud2,
            0x1F if reg == 0 && (i.pp == 0 || i.pp == 1) => Mn::Nop,
            0x20..=0x23 => Mn::Mov,
            0x30 => Mn::Wrmsr,
            0x31 => Mn::Rdtsc,
            0x32 => Mn::Rdmsr,
            0x33 => Mn::Rdpmc,
            0x34 => Mn::Sysenter,
            0x35 if i.prefixes.contains(Prefixes::W) => Mn::Sysexitq,
            0x35 => Mn::Sysexit,
            0x40..=0x4F => CMOVCC[usize::from(op & 15)],
            0x80..=0x8F => JCC[usize::from(op & 15)],
            0x90..=0x9F => SETCC[usize::from(op & 15)],
            0xA0 | 0xA8 => Mn::Push,
            0xA1 | 0xA9 => Mn::Pop,
            0xA2 => Mn::Cpuid,
            0xA3 => Mn::Bt,
            0xA4 | 0xA5 => Mn::Shld,
            0xAA => Mn::Rsm,
            0xAB => Mn::Bts,
            0xAC | 0xAD => Mn::Shrd,
            0xAF => Mn::Imul,
            0xB0 | 0xB1 => Mn::Cmpxchg,
            0xB2 => Mn::Lss,
            0xB3 => Mn::Btr,
            0xB4 => Mn::Lfs,
            0xB5 => Mn::Lgs,
            0xB6 | 0xB7 => Mn::Movzx,
            0xB8 => Mn::Popcnt,
            0xB9 => Mn::Ud1,
            0xBA => [Mn::Bt, Mn::Bts, Mn::Btr, Mn::Btc][usize::from(reg & 3)],
            0xBB => Mn::Btc,
            0xBC if i.pp == 2 => Mn::Tzcnt,
            0xBC => Mn::Bsf,
            0xBD if i.pp == 2 => Mn::Lzcnt,
            0xBD => Mn::Bsr,
            0xBE | 0xBF => Mn::Movsx,
            0xC0 | 0xC1 => Mn::Xadd,
            0xC3 => Mn::Movnti,
            0xC7 if reg == 1 && !is_reg => {
                if i.prefixes.contains(Prefixes::W) {
                    Mn::Cmpxchg16b
                } else {
                    Mn::Cmpxchg8b
                }
            }
            0xC8..=0xCF => Mn::Bswap,
            0xFF => Mn::Ud0,
            _ => return None,
        }),
        2 => match (op, i.pp) {
            (0xF0 | 0xF1, 3) => Some(Mn::Crc32),
            (0xF0 | 0xF1, 0 | 1) => Some(Mn::Movbe),
            _ => None,
        },
        _ => None,
    }
}

fn primary(i: &Instruction, op: u8, reg: u8, os: u8, long: bool) -> Option<Mnemonic> {
    let a = i.asize;
    Some(match op {
        0x00..=0x3F if op & 7 < 6 => ALU[usize::from(op >> 3)],
        0x06 | 0x0E | 0x16 | 0x1E => Mn::Push,
        0x07 | 0x17 | 0x1F => Mn::Pop,
        0x27 => Mn::Daa,
        0x2F => Mn::Das,
        0x37 => Mn::Aaa,
        0x3F => Mn::Aas,
        0x40..=0x47 => Mn::Inc,
        0x48..=0x4F => Mn::Dec,
        0x50..=0x57 | 0x68 | 0x6A => Mn::Push,
        0x58..=0x5F => Mn::Pop,
        0x60 => by_size(os, Mn::Pusha, Mn::Pushad, Mn::Pushad),
        0x61 => by_size(os, Mn::Popa, Mn::Popad, Mn::Popad),
        0x62 => Mn::Bound,
        0x63 if long => Mn::Movsxd,
        0x63 => Mn::Arpl,
        0x69 | 0x6B => Mn::Imul,
        0x6C => Mn::Insb,
        0x6D => by_size(os, Mn::Insw, Mn::Insd, Mn::Insd),
        0x6E => Mn::Outsb,
        0x6F => by_size(os, Mn::Outsw, Mn::Outsd, Mn::Outsd),
        0x70..=0x7F => JCC[usize::from(op & 15)],
        0x80..=0x83 => ALU[usize::from(reg)],
        0x84 | 0x85 | 0xA8 | 0xA9 => Mn::Test,
        0x86 | 0x87 | 0x91..=0x97 => Mn::Xchg,
        0xC6 if i.modrm == 0xF8 => Mn::Xabort,
        0xC7 if i.modrm == 0xF8 => Mn::Xbegin,
        0x88..=0x8C | 0x8E | 0xA0..=0xA3 | 0xB0..=0xBF | 0xC6 | 0xC7 => Mn::Mov,
        0x8D => Mn::Lea,
        0x8F => Mn::Pop,
        0x90 if i.pp == 2 => Mn::Pause,
        0x90 if i.rex & 1 != 0 => Mn::Xchg,
        0x90 => Mn::Nop,
        0x98 => by_size(os, Mn::Cbw, Mn::Cwde, Mn::Cdqe),
        0x99 => by_size(os, Mn::Cwd, Mn::Cdq, Mn::Cqo),
        0x9A => Mn::Call,
        0x9B => Mn::Wait,
        0x9C if long => by_size(os, Mn::Pushf, Mn::Pushfq, Mn::Pushfq),
        0x9C => by_size(os, Mn::Pushf, Mn::Pushfd, Mn::Pushfd),
        0x9D if long => by_size(os, Mn::Popf, Mn::Popfq, Mn::Popfq),
        0x9D => by_size(os, Mn::Popf, Mn::Popfd, Mn::Popfd),
        0x9E => Mn::Sahf,
        0x9F => Mn::Lahf,
        0xA4 => Mn::Movsb,
        0xA5 => by_size(os, Mn::Movsw, Mn::Movsd, Mn::Movsq),
        0xA6 => Mn::Cmpsb,
        0xA7 => by_size(os, Mn::Cmpsw, Mn::Cmpsd, Mn::Cmpsq),
        0xAA => Mn::Stosb,
        0xAB => by_size(os, Mn::Stosw, Mn::Stosd, Mn::Stosq),
        0xAC => Mn::Lodsb,
        0xAD => by_size(os, Mn::Lodsw, Mn::Lodsd, Mn::Lodsq),
        0xAE => Mn::Scasb,
        0xAF => by_size(os, Mn::Scasw, Mn::Scasd, Mn::Scasq),
        0xC0 | 0xC1 | 0xD0..=0xD3 => SHIFT[usize::from(reg)],
        0xC2 | 0xC3 => Mn::Ret,
        0xC4 => Mn::Les,
        0xC5 => Mn::Lds,
        0xC8 => Mn::Enter,
        0xC9 => Mn::Leave,
        0xCA | 0xCB => Mn::Retf,
        0xCC => Mn::Int3,
        0xCD => Mn::Int,
        0xCE => Mn::Into,
        0xCF => by_size(os, Mn::Iret, Mn::Iretd, Mn::Iretq),
        0xD4 => Mn::Aam,
        0xD5 => Mn::Aad,
        0xD6 => Mn::Salc,
        0xD7 => Mn::Xlatb,
        0xE0 => Mn::Loopne,
        0xE1 => Mn::Loope,
        0xE2 => Mn::Loop,
        0xE3 => by_size(a, Mn::Jcxz, Mn::Jecxz, Mn::Jrcxz),
        0xE4 | 0xE5 | 0xEC | 0xED => Mn::In,
        0xE6 | 0xE7 | 0xEE | 0xEF => Mn::Out,
        0xE8 => Mn::Call,
        0xE9..=0xEB => Mn::Jmp,
        0xF1 => Mn::Int1,
        0xF4 => Mn::Hlt,
        0xF5 => Mn::Cmc,
        0xF6 | 0xF7 => [
            Mn::Test,
            Mn::Test,
            Mn::Not,
            Mn::Neg,
            Mn::Mul,
            Mn::Imul,
            Mn::Div,
            Mn::Idiv,
        ][usize::from(reg)],
        0xF8 => Mn::Clc,
        0xF9 => Mn::Stc,
        0xFA => Mn::Cli,
        0xFB => Mn::Sti,
        0xFC => Mn::Cld,
        0xFD => Mn::Std,
        0xFE if reg < 2 => [Mn::Inc, Mn::Dec][usize::from(reg)],
        0xFF => [
            Mn::Inc,
            Mn::Dec,
            Mn::Call,
            Mn::Call,
            Mn::Jmp,
            Mn::Jmp,
            Mn::Push,
            Mn::Push,
        ][usize::from(reg)],
        _ => return None,
    })
}

/// RFLAGS bits, at their architectural positions.
pub mod rflags {
    /// Carry.
    pub const CF: u32 = 1 << 0;
    /// Parity.
    pub const PF: u32 = 1 << 2;
    /// Auxiliary carry.
    pub const AF: u32 = 1 << 4;
    /// Zero.
    pub const ZF: u32 = 1 << 6;
    /// Sign.
    pub const SF: u32 = 1 << 7;
    /// Interrupt enable.
    pub const IF: u32 = 1 << 9;
    /// Direction.
    pub const DF: u32 = 1 << 10;
    /// Overflow.
    pub const OF: u32 = 1 << 11;
    /// The six arithmetic status flags.
    pub const STATUS: u32 = CF | PF | AF | ZF | SF | OF;
}

/// Which RFLAGS bits an instruction reads, writes (sets, clears or computes) and leaves
/// undefined. Bits are the architectural positions (see [`rflags`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlagsEffect {
    /// Flags whose value the instruction uses.
    pub read: u32,
    /// Flags the instruction writes with a defined value.
    pub written: u32,
    /// Flags the instruction leaves undefined.
    pub undefined: u32,
}

/// The flags read by condition code `cc` (the low nibble of `Jcc`/`SETcc`/`CMOVcc`).
const fn cc_reads(cc: u8) -> u32 {
    use rflags::*;
    match cc >> 1 {
        0 => OF,
        1 => CF,
        2 => ZF,
        3 => CF | ZF,
        4 => SF,
        5 => PF,
        6 => SF | OF,
        _ => ZF | SF | OF,
    }
}

/// The RFLAGS effects of instructions in the covered set (`None` outside it, and for
/// instructions whose effects depend on more than the encoding: `POPF`, `IRET`, `INT`, far
/// transfers, `SYSRET`, `RSM`, and shifts/rotates by a variable count).
pub(crate) fn flags(i: &Instruction) -> Option<FlagsEffect> {
    use rflags::*;
    let m = mnemonic(i)?;
    let f = |read, written, undefined| {
        Some(FlagsEffect {
            read,
            written,
            undefined,
        })
    };
    let cc = i.opcode & 15;
    // x87 memory forms and vector moves leave RFLAGS alone.
    if crate::vector::vector_move(i).is_some() || crate::vector::x87_memory(i).is_some() {
        return f(0, 0, 0);
    }
    match m {
        Mn::Add | Mn::Sub | Mn::Cmp | Mn::Neg | Mn::Xadd | Mn::Cmpxchg => f(0, STATUS, 0),
        Mn::Adc | Mn::Sbb => f(CF, STATUS, 0),
        Mn::And | Mn::Or | Mn::Xor | Mn::Test => f(0, STATUS & !AF, AF),
        Mn::Inc | Mn::Dec => f(0, STATUS & !CF, 0),
        Mn::Mul | Mn::Imul => f(0, CF | OF, SF | ZF | AF | PF),
        Mn::Div | Mn::Idiv => f(0, 0, STATUS),
        Mn::Bt | Mn::Bts | Mn::Btr | Mn::Btc => f(0, CF, OF | SF | AF | PF),
        Mn::Bsf | Mn::Bsr => f(0, ZF, CF | OF | SF | AF | PF),
        Mn::Tzcnt | Mn::Lzcnt => f(0, ZF | CF, OF | SF | AF | PF),
        Mn::Popcnt => f(0, STATUS, 0),
        Mn::Cmpxchg8b | Mn::Cmpxchg16b => f(0, ZF, 0),
        Mn::Lar | Mn::Lsl | Mn::Verr | Mn::Verw => f(0, ZF, 0),
        Mn::Clc | Mn::Stc => f(0, CF, 0),
        Mn::Cmc => f(CF, CF, 0),
        Mn::Cld | Mn::Std => f(0, DF, 0),
        Mn::Sahf => f(0, SF | ZF | AF | PF | CF, 0),
        Mn::Lahf => f(SF | ZF | AF | PF | CF, 0, 0),
        Mn::Salc => f(CF, 0, 0),
        Mn::Into => None,
        Mn::Daa | Mn::Das => f(AF | CF, SF | ZF | AF | PF | CF, OF),
        Mn::Aaa | Mn::Aas => f(AF, AF | CF, OF | SF | ZF | PF),
        Mn::Aam | Mn::Aad => f(0, SF | ZF | PF, OF | AF | CF),
        Mn::Movsb
        | Mn::Movsw
        | Mn::Movsd
        | Mn::Movsq
        | Mn::Stosb
        | Mn::Stosw
        | Mn::Stosd
        | Mn::Stosq
        | Mn::Lodsb
        | Mn::Lodsw
        | Mn::Lodsd
        | Mn::Lodsq
        | Mn::Insb
        | Mn::Insw
        | Mn::Insd
        | Mn::Outsb
        | Mn::Outsw
        | Mn::Outsd => f(DF, 0, 0),
        Mn::Cmpsb
        | Mn::Cmpsw
        | Mn::Cmpsd
        | Mn::Cmpsq
        | Mn::Scasb
        | Mn::Scasw
        | Mn::Scasd
        | Mn::Scasq => f(DF, STATUS, 0),
        Mn::Jo
        | Mn::Jno
        | Mn::Jb
        | Mn::Jae
        | Mn::Je
        | Mn::Jne
        | Mn::Jbe
        | Mn::Ja
        | Mn::Js
        | Mn::Jns
        | Mn::Jp
        | Mn::Jnp
        | Mn::Jl
        | Mn::Jge
        | Mn::Jle
        | Mn::Jg
        | Mn::Seto
        | Mn::Setno
        | Mn::Setb
        | Mn::Setae
        | Mn::Sete
        | Mn::Setne
        | Mn::Setbe
        | Mn::Seta
        | Mn::Sets
        | Mn::Setns
        | Mn::Setp
        | Mn::Setnp
        | Mn::Setl
        | Mn::Setge
        | Mn::Setle
        | Mn::Setg
        | Mn::Cmovo
        | Mn::Cmovno
        | Mn::Cmovb
        | Mn::Cmovae
        | Mn::Cmove
        | Mn::Cmovne
        | Mn::Cmovbe
        | Mn::Cmova
        | Mn::Cmovs
        | Mn::Cmovns
        | Mn::Cmovp
        | Mn::Cmovnp
        | Mn::Cmovl
        | Mn::Cmovge
        | Mn::Cmovle
        | Mn::Cmovg => f(cc_reads(cc), 0, 0),
        Mn::Loope | Mn::Loopne => f(ZF, 0, 0),
        Mn::Mov if i.map == 1 => f(0, 0, STATUS),
        Mn::Mov
        | Mn::Movzx
        | Mn::Movsx
        | Mn::Movsxd
        | Mn::Lea
        | Mn::Xchg
        | Mn::Push
        | Mn::Pop
        | Mn::Nop
        | Mn::Pause
        | Mn::Bswap
        | Mn::Movbe
        | Mn::Movnti
        | Mn::Cbw
        | Mn::Cwde
        | Mn::Cdqe
        | Mn::Cwd
        | Mn::Cdq
        | Mn::Cqo
        | Mn::Loop
        | Mn::Jcxz
        | Mn::Jecxz
        | Mn::Jrcxz
        | Mn::In
        | Mn::Out
        | Mn::Xlatb
        | Mn::Leave
        | Mn::Enter
        | Mn::Cpuid
        | Mn::Rdtsc
        | Mn::Rdtscp
        | Mn::Rdmsr
        | Mn::Wrmsr
        | Mn::Rdpmc
        | Mn::Hlt
        | Mn::Crc32
        | Mn::Wait
        | Mn::Ret
        | Mn::Pushf
        | Mn::Pushfd
        | Mn::Pushfq => {
            let read = if matches!(m, Mn::Pushf | Mn::Pushfd | Mn::Pushfq) {
                !0
            } else {
                0
            };
            f(read, 0, 0)
        }
        _ => None,
    }
}

/// Memory access size of a general-purpose instruction's memory operand, in bytes.
fn gp_memory_size(i: &Instruction, m: Mnemonic) -> Option<u16> {
    let os = u16::from(i.osize);
    let long = i.mode == Mode::Bits64;
    let reg = (i.modrm >> 3) & 7;
    // Near branches, PUSH and POP use 64-bit stack/branch operands in 64-bit mode.
    let stack = if long && os != 2 { 8 } else { os };
    let op = i.opcode;
    Some(match i.map {
        0 => match op {
            0x00..=0x3B => {
                if op & 1 == 0 {
                    1
                } else {
                    os
                }
            }
            0x62 => 2 * os,
            0x63 if !long => 2,
            0x63 if os == 8 => 4,
            0x63 => os,
            0x69 | 0x6B | 0x81 | 0x83 | 0x85 | 0x87 | 0x89 | 0x8B | 0xA1 | 0xA3 | 0xC1 | 0xC7
            | 0xD1 | 0xD3 | 0xF7 => os,
            0x80 | 0x82 | 0x84 | 0x86 | 0x88 | 0x8A | 0xA0 | 0xA2 | 0xC0 | 0xC6 | 0xD0 | 0xD2
            | 0xD7 | 0xF6 | 0xFE => 1,
            0x8C | 0x8E => 2,
            0x8F => stack,
            0xC4 | 0xC5 => os + 2,
            0xFF => match reg {
                0 | 1 => os,
                // Intel ignores 66 on near indirect branches in 64-bit mode.
                2 | 4 if long => 8,
                2 | 4 | 6 => stack,
                _ => os + 2,
            },
            _ => return None,
        },
        1 => match op {
            0x00 | 0x02 | 0x03 => 2,
            0x01 => match m {
                Mnemonic::Sgdt | Mnemonic::Sidt | Mnemonic::Lgdt | Mnemonic::Lidt => {
                    if long {
                        10
                    } else {
                        6
                    }
                }
                Mnemonic::Smsw | Mnemonic::Lmsw => 2,
                _ => return None,
            },
            0x40..=0x4F
            | 0xA3..=0xA5
            | 0xAB..=0xAD
            | 0xAF
            | 0xB1
            | 0xB3
            | 0xB8
            | 0xBA..=0xBD
            | 0xC1 => os,
            0xC3 => {
                if i.prefixes.contains(Prefixes::W) {
                    8
                } else {
                    4
                }
            }
            0x90..=0x9F | 0xB0 | 0xB6 | 0xBE | 0xC0 => 1,
            0xB7 | 0xBF => 2,
            0xB2 | 0xB4 | 0xB5 => os + 2,
            0xC7 => {
                if i.prefixes.contains(Prefixes::W) {
                    16
                } else {
                    8
                }
            }
            _ => return None,
        },
        2 => match (op, m) {
            (0xF0, Mnemonic::Crc32) => 1,
            (0xF0 | 0xF1, _) => os,
            _ => return None,
        },
        _ => return None,
    })
}

impl Instruction {
    /// The size in bytes of the memory operand's access, for the instructions of the semantic
    /// level (general-purpose integer and system instructions, x87 memory forms, SSE/AVX/AVX-512
    /// memory moves); `None` without a memory operand or outside that set.
    #[must_use]
    pub fn memory_size(&self) -> Option<u16> {
        if !self.has_memory() {
            return None;
        }
        if let Some((_, size)) = crate::vector::vector_move(self) {
            return Some(size);
        }
        if let Some((_, size)) = crate::vector::x87_memory(self) {
            return Some(size);
        }
        let m = mnemonic(self)?;
        gp_memory_size(self, m)
    }

    /// The mnemonic, for the general-purpose integer, string and common system instructions of
    /// the legacy maps; `None` outside that set (see the crate documentation).
    #[must_use]
    pub fn mnemonic(&self) -> Option<Mnemonic> {
        mnemonic(self)
    }

    /// RFLAGS read, written and left undefined, where [`Instruction::mnemonic`] is known and
    /// the effect is fixed by the encoding; `None` otherwise.
    #[must_use]
    pub fn flags(&self) -> Option<FlagsEffect> {
        flags(self)
    }
}
