//! Running one instruction natively: an executable page, a trampoline that loads a register
//! file, vector registers and RFLAGS, and a signal handler that turns a fault into a report.
//!
//! How faults come back without `setjmp`: the handler (on an alternate signal stack) records
//! the signal, the trap number, the error code, CR2 and the faulting register file from the
//! `ucontext`, then rewrites the `ucontext` so that returning from the handler resumes at
//! `emu_native_fault` with the stack pointer the trampoline saved: that label pops the
//! callee-saved registers and returns to the Rust caller as if the instruction had finished.
//! Only faults whose RIP is inside the instruction page are recovered; anything else restores
//! the default action and re-raises.
// The runner is a thin layer over mmap, signals and a hand-written trampoline; its unsafe
// blocks are grouped by purpose, each with the reason it holds.
#![allow(unsafe_code, dead_code, clippy::multiple_unsafe_ops_per_block)]

use std::mem::offset_of;
use std::sync::Mutex;

/// The register file exchanged with the trampoline.
#[repr(C, align(64))]
pub struct NativeCtx {
    pub gpr_in: [u64; 16],
    pub flags_in: u64,
    pub code: u64,
    pub saved_rsp: u64,
    /// 0: XMM0–15, 1: YMM0–15, 2: ZMM0–31 and K0–7.
    pub vec_mode: u64,
    pub gpr_out: [u64; 16],
    pub flags_out: u64,
    pub pad: [u64; 7],
    pub vec_in: [[u8; 64]; 32],
    pub vec_out: [[u8; 64]; 32],
    pub k_in: [u64; 8],
    pub k_out: [u64; 8],
}

static mut CTX: NativeCtx = NativeCtx {
    gpr_in: [0; 16],
    flags_in: 0,
    code: 0,
    saved_rsp: 0,
    vec_mode: 0,
    gpr_out: [0; 16],
    flags_out: 0,
    pad: [0; 7],
    vec_in: [[0; 64]; 32],
    vec_out: [[0; 64]; 32],
    k_in: [0; 8],
    k_out: [0; 8],
};

/// What a fault reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeFault {
    pub signal: i32,
    pub trapno: u64,
    pub err: u64,
    pub cr2: u64,
    pub rip: u64,
    pub gpr: [u64; 16],
    pub rflags: u64,
}

static mut FAULT: Option<NativeFault> = None;
static mut CODE_RANGE: (u64, u64) = (0, 0);

core::arch::global_asm!(
    ".globl emu_native_enter",
    "emu_native_enter:",
    "push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
    "lea r11, [rip + {ctx}]",
    "mov [r11 + {saved}], rsp",
    "mov rax, [r11 + {vmode}]",
    "cmp rax, 2",
    "je 32f",
    "cmp rax, 1",
    "je 31f",
    "movdqu xmm0, [r11 + {vin} + 0*64]", "movdqu xmm1, [r11 + {vin} + 1*64]",
    "movdqu xmm2, [r11 + {vin} + 2*64]", "movdqu xmm3, [r11 + {vin} + 3*64]",
    "movdqu xmm4, [r11 + {vin} + 4*64]", "movdqu xmm5, [r11 + {vin} + 5*64]",
    "movdqu xmm6, [r11 + {vin} + 6*64]", "movdqu xmm7, [r11 + {vin} + 7*64]",
    "movdqu xmm8, [r11 + {vin} + 8*64]", "movdqu xmm9, [r11 + {vin} + 9*64]",
    "movdqu xmm10, [r11 + {vin} + 10*64]", "movdqu xmm11, [r11 + {vin} + 11*64]",
    "movdqu xmm12, [r11 + {vin} + 12*64]", "movdqu xmm13, [r11 + {vin} + 13*64]",
    "movdqu xmm14, [r11 + {vin} + 14*64]", "movdqu xmm15, [r11 + {vin} + 15*64]",
    "jmp 33f",
    "31:",
    "vmovdqu ymm0, [r11 + {vin} + 0*64]", "vmovdqu ymm1, [r11 + {vin} + 1*64]",
    "vmovdqu ymm2, [r11 + {vin} + 2*64]", "vmovdqu ymm3, [r11 + {vin} + 3*64]",
    "vmovdqu ymm4, [r11 + {vin} + 4*64]", "vmovdqu ymm5, [r11 + {vin} + 5*64]",
    "vmovdqu ymm6, [r11 + {vin} + 6*64]", "vmovdqu ymm7, [r11 + {vin} + 7*64]",
    "vmovdqu ymm8, [r11 + {vin} + 8*64]", "vmovdqu ymm9, [r11 + {vin} + 9*64]",
    "vmovdqu ymm10, [r11 + {vin} + 10*64]", "vmovdqu ymm11, [r11 + {vin} + 11*64]",
    "vmovdqu ymm12, [r11 + {vin} + 12*64]", "vmovdqu ymm13, [r11 + {vin} + 13*64]",
    "vmovdqu ymm14, [r11 + {vin} + 14*64]", "vmovdqu ymm15, [r11 + {vin} + 15*64]",
    "jmp 33f",
    "32:",
    "vmovdqu64 zmm0, [r11 + {vin} + 0*64]", "vmovdqu64 zmm1, [r11 + {vin} + 1*64]",
    "vmovdqu64 zmm2, [r11 + {vin} + 2*64]", "vmovdqu64 zmm3, [r11 + {vin} + 3*64]",
    "vmovdqu64 zmm4, [r11 + {vin} + 4*64]", "vmovdqu64 zmm5, [r11 + {vin} + 5*64]",
    "vmovdqu64 zmm6, [r11 + {vin} + 6*64]", "vmovdqu64 zmm7, [r11 + {vin} + 7*64]",
    "vmovdqu64 zmm8, [r11 + {vin} + 8*64]", "vmovdqu64 zmm9, [r11 + {vin} + 9*64]",
    "vmovdqu64 zmm10, [r11 + {vin} + 10*64]", "vmovdqu64 zmm11, [r11 + {vin} + 11*64]",
    "vmovdqu64 zmm12, [r11 + {vin} + 12*64]", "vmovdqu64 zmm13, [r11 + {vin} + 13*64]",
    "vmovdqu64 zmm14, [r11 + {vin} + 14*64]", "vmovdqu64 zmm15, [r11 + {vin} + 15*64]",
    "vmovdqu64 zmm16, [r11 + {vin} + 16*64]", "vmovdqu64 zmm17, [r11 + {vin} + 17*64]",
    "vmovdqu64 zmm18, [r11 + {vin} + 18*64]", "vmovdqu64 zmm19, [r11 + {vin} + 19*64]",
    "vmovdqu64 zmm20, [r11 + {vin} + 20*64]", "vmovdqu64 zmm21, [r11 + {vin} + 21*64]",
    "vmovdqu64 zmm22, [r11 + {vin} + 22*64]", "vmovdqu64 zmm23, [r11 + {vin} + 23*64]",
    "vmovdqu64 zmm24, [r11 + {vin} + 24*64]", "vmovdqu64 zmm25, [r11 + {vin} + 25*64]",
    "vmovdqu64 zmm26, [r11 + {vin} + 26*64]", "vmovdqu64 zmm27, [r11 + {vin} + 27*64]",
    "vmovdqu64 zmm28, [r11 + {vin} + 28*64]", "vmovdqu64 zmm29, [r11 + {vin} + 29*64]",
    "vmovdqu64 zmm30, [r11 + {vin} + 30*64]", "vmovdqu64 zmm31, [r11 + {vin} + 31*64]",
    "kmovq k0, [r11 + {kin} + 0*8]", "kmovq k1, [r11 + {kin} + 1*8]",
    "kmovq k2, [r11 + {kin} + 2*8]", "kmovq k3, [r11 + {kin} + 3*8]",
    "kmovq k4, [r11 + {kin} + 4*8]", "kmovq k5, [r11 + {kin} + 5*8]",
    "kmovq k6, [r11 + {kin} + 6*8]", "kmovq k7, [r11 + {kin} + 7*8]",
    "33:",
    "push qword ptr [r11 + {fin}]",
    "popfq",
    "mov rax, [r11 + 0*8]", "mov rcx, [r11 + 1*8]", "mov rdx, [r11 + 2*8]", "mov rbx, [r11 + 3*8]",
    "mov rbp, [r11 + 5*8]", "mov rsi, [r11 + 6*8]", "mov rdi, [r11 + 7*8]",
    "mov r8, [r11 + 8*8]", "mov r9, [r11 + 9*8]", "mov r10, [r11 + 10*8]",
    "mov r12, [r11 + 12*8]", "mov r13, [r11 + 13*8]", "mov r14, [r11 + 14*8]", "mov r15, [r11 + 15*8]",
    "mov rsp, [r11 + 4*8]",
    "mov r11, [r11 + 11*8]",
    "jmp qword ptr [rip + {ctx} + {code}]",
    "",
    ".globl emu_native_exit",
    "emu_native_exit:",
    "mov [rip + {ctx} + {gout} + 0*8], rax", "mov [rip + {ctx} + {gout} + 1*8], rcx",
    "mov [rip + {ctx} + {gout} + 2*8], rdx", "mov [rip + {ctx} + {gout} + 3*8], rbx",
    "mov [rip + {ctx} + {gout} + 4*8], rsp", "mov [rip + {ctx} + {gout} + 5*8], rbp",
    "mov [rip + {ctx} + {gout} + 6*8], rsi", "mov [rip + {ctx} + {gout} + 7*8], rdi",
    "mov [rip + {ctx} + {gout} + 8*8], r8", "mov [rip + {ctx} + {gout} + 9*8], r9",
    "mov [rip + {ctx} + {gout} + 10*8], r10", "mov [rip + {ctx} + {gout} + 11*8], r11",
    "mov [rip + {ctx} + {gout} + 12*8], r12", "mov [rip + {ctx} + {gout} + 13*8], r13",
    "mov [rip + {ctx} + {gout} + 14*8], r14", "mov [rip + {ctx} + {gout} + 15*8], r15",
    "lea r11, [rip + {ctx}]",
    "mov rsp, [r11 + {saved}]",
    "pushfq",
    "pop qword ptr [r11 + {fout}]",
    "push 0x202",
    "popfq",
    "mov rax, [r11 + {vmode}]",
    "cmp rax, 2",
    "je 42f",
    "cmp rax, 1",
    "je 41f",
    "movdqu [r11 + {vout} + 0*64], xmm0", "movdqu [r11 + {vout} + 1*64], xmm1",
    "movdqu [r11 + {vout} + 2*64], xmm2", "movdqu [r11 + {vout} + 3*64], xmm3",
    "movdqu [r11 + {vout} + 4*64], xmm4", "movdqu [r11 + {vout} + 5*64], xmm5",
    "movdqu [r11 + {vout} + 6*64], xmm6", "movdqu [r11 + {vout} + 7*64], xmm7",
    "movdqu [r11 + {vout} + 8*64], xmm8", "movdqu [r11 + {vout} + 9*64], xmm9",
    "movdqu [r11 + {vout} + 10*64], xmm10", "movdqu [r11 + {vout} + 11*64], xmm11",
    "movdqu [r11 + {vout} + 12*64], xmm12", "movdqu [r11 + {vout} + 13*64], xmm13",
    "movdqu [r11 + {vout} + 14*64], xmm14", "movdqu [r11 + {vout} + 15*64], xmm15",
    "jmp 43f",
    "41:",
    "vmovdqu [r11 + {vout} + 0*64], ymm0", "vmovdqu [r11 + {vout} + 1*64], ymm1",
    "vmovdqu [r11 + {vout} + 2*64], ymm2", "vmovdqu [r11 + {vout} + 3*64], ymm3",
    "vmovdqu [r11 + {vout} + 4*64], ymm4", "vmovdqu [r11 + {vout} + 5*64], ymm5",
    "vmovdqu [r11 + {vout} + 6*64], ymm6", "vmovdqu [r11 + {vout} + 7*64], ymm7",
    "vmovdqu [r11 + {vout} + 8*64], ymm8", "vmovdqu [r11 + {vout} + 9*64], ymm9",
    "vmovdqu [r11 + {vout} + 10*64], ymm10", "vmovdqu [r11 + {vout} + 11*64], ymm11",
    "vmovdqu [r11 + {vout} + 12*64], ymm12", "vmovdqu [r11 + {vout} + 13*64], ymm13",
    "vmovdqu [r11 + {vout} + 14*64], ymm14", "vmovdqu [r11 + {vout} + 15*64], ymm15",
    "jmp 43f",
    "42:",
    "vmovdqu64 [r11 + {vout} + 0*64], zmm0", "vmovdqu64 [r11 + {vout} + 1*64], zmm1",
    "vmovdqu64 [r11 + {vout} + 2*64], zmm2", "vmovdqu64 [r11 + {vout} + 3*64], zmm3",
    "vmovdqu64 [r11 + {vout} + 4*64], zmm4", "vmovdqu64 [r11 + {vout} + 5*64], zmm5",
    "vmovdqu64 [r11 + {vout} + 6*64], zmm6", "vmovdqu64 [r11 + {vout} + 7*64], zmm7",
    "vmovdqu64 [r11 + {vout} + 8*64], zmm8", "vmovdqu64 [r11 + {vout} + 9*64], zmm9",
    "vmovdqu64 [r11 + {vout} + 10*64], zmm10", "vmovdqu64 [r11 + {vout} + 11*64], zmm11",
    "vmovdqu64 [r11 + {vout} + 12*64], zmm12", "vmovdqu64 [r11 + {vout} + 13*64], zmm13",
    "vmovdqu64 [r11 + {vout} + 14*64], zmm14", "vmovdqu64 [r11 + {vout} + 15*64], zmm15",
    "vmovdqu64 [r11 + {vout} + 16*64], zmm16", "vmovdqu64 [r11 + {vout} + 17*64], zmm17",
    "vmovdqu64 [r11 + {vout} + 18*64], zmm18", "vmovdqu64 [r11 + {vout} + 19*64], zmm19",
    "vmovdqu64 [r11 + {vout} + 20*64], zmm20", "vmovdqu64 [r11 + {vout} + 21*64], zmm21",
    "vmovdqu64 [r11 + {vout} + 22*64], zmm22", "vmovdqu64 [r11 + {vout} + 23*64], zmm23",
    "vmovdqu64 [r11 + {vout} + 24*64], zmm24", "vmovdqu64 [r11 + {vout} + 25*64], zmm25",
    "vmovdqu64 [r11 + {vout} + 26*64], zmm26", "vmovdqu64 [r11 + {vout} + 27*64], zmm27",
    "vmovdqu64 [r11 + {vout} + 28*64], zmm28", "vmovdqu64 [r11 + {vout} + 29*64], zmm29",
    "vmovdqu64 [r11 + {vout} + 30*64], zmm30", "vmovdqu64 [r11 + {vout} + 31*64], zmm31",
    "kmovq [r11 + {kout} + 0*8], k0", "kmovq [r11 + {kout} + 1*8], k1",
    "kmovq [r11 + {kout} + 2*8], k2", "kmovq [r11 + {kout} + 3*8], k3",
    "kmovq [r11 + {kout} + 4*8], k4", "kmovq [r11 + {kout} + 5*8], k5",
    "kmovq [r11 + {kout} + 6*8], k6", "kmovq [r11 + {kout} + 7*8], k7",
    "43:",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
    "ret",
    "",
    ".globl emu_native_fault",
    "emu_native_fault:",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
    "ret",
    ctx = sym CTX,
    saved = const offset_of!(NativeCtx, saved_rsp),
    vmode = const offset_of!(NativeCtx, vec_mode),
    vin = const offset_of!(NativeCtx, vec_in),
    vout = const offset_of!(NativeCtx, vec_out),
    kin = const offset_of!(NativeCtx, k_in),
    kout = const offset_of!(NativeCtx, k_out),
    fin = const offset_of!(NativeCtx, flags_in),
    fout = const offset_of!(NativeCtx, flags_out),
    gout = const offset_of!(NativeCtx, gpr_out),
    code = const offset_of!(NativeCtx, code),
);

unsafe extern "C" {
    fn emu_native_enter();
    fn emu_native_exit();
    fn emu_native_fault();
}

extern "C" fn on_signal(sig: libc::c_int, _info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // The kernel enters the handler with the interrupted RFLAGS.AC still set; clear it before
    // any library code makes a misaligned access.
    // SAFETY: only RFLAGS.AC changes; the stack is balanced.
    unsafe {
        core::arch::asm!("pushfq", "and dword ptr [rsp], 0xFFFBFFFF", "popfq");
    }
    // SAFETY: the kernel passes a valid ucontext_t for SA_SIGINFO handlers.
    let uc = unsafe { &mut *(uctx as *mut libc::ucontext_t) };
    let g = &mut uc.uc_mcontext.gregs;
    let rip = g[libc::REG_RIP as usize] as u64;
    // SAFETY: CODE_RANGE is written before any native run, under the runner's lock.
    let (lo, hi) = unsafe { CODE_RANGE };
    if rip < lo || rip >= hi {
        // Not ours: default action.
        // SAFETY: plain libc calls with valid arguments.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    let order = [
        libc::REG_RAX,
        libc::REG_RCX,
        libc::REG_RDX,
        libc::REG_RBX,
        libc::REG_RSP,
        libc::REG_RBP,
        libc::REG_RSI,
        libc::REG_RDI,
        libc::REG_R8,
        libc::REG_R9,
        libc::REG_R10,
        libc::REG_R11,
        libc::REG_R12,
        libc::REG_R13,
        libc::REG_R14,
        libc::REG_R15,
    ];
    let mut gpr = [0u64; 16];
    for (k, r) in order.iter().enumerate() {
        gpr[k] = g[*r as usize] as u64;
    }
    let f = NativeFault {
        signal: sig,
        trapno: g[libc::REG_TRAPNO as usize] as u64,
        err: g[libc::REG_ERR as usize] as u64,
        cr2: g[libc::REG_CR2 as usize] as u64,
        rip,
        gpr,
        rflags: g[libc::REG_EFL as usize] as u64,
    };
    // SAFETY: the faulting thread is the only one touching these statics (runner lock held).
    unsafe {
        FAULT = Some(f);
        g[libc::REG_RIP as usize] = emu_native_fault as *const () as usize as i64;
        g[libc::REG_RSP as usize] = (*std::ptr::addr_of!(CTX)).saved_rsp as i64;
        g[libc::REG_EFL as usize] = 0x202;
    }
}

/// The mapped pages and the installed handler. One per process (see [`runner`]).
pub struct Runner {
    pub code: *mut u8,
    /// Data region: page 0 and 1 read-write, page 2 inaccessible, page 3 read-only.
    pub data: *mut u8,
}

// SAFETY: the raw pointers are process-wide mappings only used under the runner's mutex.
unsafe impl Send for Runner {}

static RUNNER: Mutex<Option<Runner>> = Mutex::new(None);

pub const DATA_PAGES: usize = 4;

/// The process-wide runner (mapped below 4 GiB, so 32-bit addressing reaches it).
pub fn runner() -> std::sync::MutexGuard<'static, Option<Runner>> {
    let mut g = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        // SAFETY: anonymous mappings and signal setup with valid arguments; the alternate stack
        // is leaked on purpose (it lives as long as the process).
        unsafe {
            let len = 0x1000 * (1 + DATA_PAGES);
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED, "mmap");
            let code = p as *mut u8;
            let data = code.add(0x1000);
            assert_eq!(
                libc::mprotect(data as _, 0x2000, libc::PROT_READ | libc::PROT_WRITE),
                0
            );
            assert_eq!(
                libc::mprotect(data.add(0x2000) as _, 0x1000, libc::PROT_NONE),
                0
            );
            for (k, b) in std::slice::from_raw_parts_mut(data.add(0x3000), 0x1000)
                .iter_mut()
                .enumerate()
            {
                *b = (k as u8).wrapping_mul(37).wrapping_add(11);
            }
            assert_eq!(
                libc::mprotect(data.add(0x3000) as _, 0x1000, libc::PROT_READ),
                0
            );
            CODE_RANGE = (code as u64, code as u64 + 0x1000);
            let stack = vec![0u8; 1 << 16].leak();
            let ss = libc::stack_t {
                ss_sp: stack.as_mut_ptr() as _,
                ss_flags: 0,
                ss_size: stack.len(),
            };
            assert_eq!(libc::sigaltstack(&ss, std::ptr::null_mut()), 0);
            for sig in [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGFPE,
                libc::SIGILL,
                libc::SIGTRAP,
            ] {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut sa.sa_mask);
                assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
            }
            *g = Some(Runner { code, data });
        }
    }
    g
}

/// The code page's contents for `code`: the instruction, then `jmp qword ptr [rip + disp]`
/// to an aligned quad at 0x800 holding `emu_native_exit` (an unaligned one would raise #AC in
/// the cases that run with RFLAGS.AC set), `int3` padding between.
pub fn page_image(code: &[u8]) -> Vec<u8> {
    let exit = emu_native_exit as *const () as usize as u64;
    let mut page = Vec::with_capacity(0x808);
    page.extend_from_slice(code);
    let disp = 0x800 - (page.len() as i32 + 6);
    page.extend_from_slice(&[0xFF, 0x25]);
    page.extend_from_slice(&disp.to_le_bytes());
    page.resize(0x800, 0xCC);
    page.extend_from_slice(&exit.to_le_bytes());
    // The whole page, so that bytes an earlier case stored there are reset.
    page.resize(0x1000, 0xCC);
    page
}

/// Inputs of one native run.
pub struct NativeIn<'a> {
    pub code: &'a [u8],
    pub gpr: [u64; 16],
    pub rflags: u64,
    pub vec_mode: u64,
    pub vec: &'a [[u8; 64]; 32],
    pub k: [u64; 8],
}

/// Outputs of one native run.
pub struct NativeOut {
    pub fault: Option<NativeFault>,
    pub gpr: [u64; 16],
    pub rflags: u64,
    pub vec: [[u8; 64]; 32],
    pub k: [u64; 8],
}

impl Runner {
    /// The data pages (0 and 1 are writable).
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: pages 0 and 1 of the data mapping are readable and writable.
        unsafe { std::slice::from_raw_parts_mut(self.data, 0x2000) }
    }

    /// The read-only page 3.
    pub fn read_only_page(&self) -> &[u8] {
        // SAFETY: page 3 is readable.
        unsafe { std::slice::from_raw_parts(self.data.add(0x3000), 0x1000) }
    }

    pub fn code_addr(&self) -> u64 {
        self.code as u64
    }

    pub fn data_addr(&self) -> u64 {
        self.data as u64
    }

    /// Runs `input.code` once.
    pub fn run(&mut self, input: &NativeIn<'_>) -> NativeOut {
        let page = page_image(input.code);
        // SAFETY: the code page is writable and executable; CTX/FAULT are only used here under
        // the runner lock, and the trampoline restores every callee-saved register.
        unsafe {
            std::ptr::copy_nonoverlapping(page.as_ptr(), self.code, page.len());
            let ctx = &mut *std::ptr::addr_of_mut!(CTX);
            ctx.gpr_in = input.gpr;
            ctx.flags_in = input.rflags;
            ctx.code = self.code as u64;
            ctx.vec_mode = input.vec_mode;
            ctx.vec_in = *input.vec;
            ctx.k_in = input.k;
            FAULT = None;
            emu_native_enter();
            let fault = (*std::ptr::addr_of_mut!(FAULT)).take();
            NativeOut {
                fault,
                gpr: ctx.gpr_out,
                rflags: ctx.flags_out,
                vec: ctx.vec_out,
                k: ctx.k_out,
            }
        }
    }
}
