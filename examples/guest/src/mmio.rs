//! Instruction completion on a device: AVX `vmovdqu` stores and loads and a `cmpxchg16b` on
//! the VMM's MMIO test page. KVM's emulator cannot complete any of them, so each one reaches
//! the VMM as an emulation failure and `x86-decode`'s emulator finishes it; the guest then
//! checks what the device holds (with plain loads KVM handles as MMIO exits) and its own
//! registers.

#![allow(unsafe_code)]

use core::arch::asm;

use crate::fmt::Dec;
use crate::say;

/// The VMM's MMIO test page (identity-mapped).
const MMIO: u64 = 0xF000_0000;

/// Byte `i` of the device's initial content.
const fn initial(i: u64) -> u8 {
    (i as u8) ^ 0xA5
}

fn avx() -> bool {
    let c = core::arch::x86_64::__cpuid_count(1, 0);
    // AVX and OSXSAVE (the VMM enables XSAVE state at boot when the vCPU has it).
    c.ecx & (1 << 28) != 0 && c.ecx & (1 << 27) != 0
}

fn load_u64(addr: u64) -> u64 {
    // SAFETY: `addr` is inside the identity-mapped MMIO test page the VMM provides; a plain
    // 8-byte load, which KVM completes as an MMIO read.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

/// Runs the scenario and reports; panics (failing the run) if a check fails.
pub fn run() {
    if !avx() {
        say(format_args!(
            "mmio: no AVX on this vCPU, instruction completion skipped"
        ));
        return;
    }
    // A 32-byte pattern in RAM.
    let src: [u64; 4] = [
        0x0706_0504_0302_0100,
        0x0f0e_0d0c_0b0a_0908,
        0x1716_1514_1312_1110,
        0x1f1e_1d1c_1b1a_1918,
    ];
    let mut back = [0u64; 4];
    // SAFETY: `src`, `back` are 32-byte locals; the device addresses are in the MMIO page;
    // ymm0/ymm1 are scratch (this guest keeps no state in vector registers across calls).
    unsafe {
        asm!(
            "vmovdqu ymm0, [{src}]",
            "vmovdqu [{dev}], ymm0",
            "vmovdqu ymm1, [{dev2}]",
            "vmovdqu [{back}], ymm1",
            src = in(reg) src.as_ptr(),
            dev = in(reg) MMIO + 0x100,
            dev2 = in(reg) MMIO + 0x200,
            back = in(reg) back.as_mut_ptr(),
            out("xmm0") _, out("xmm1") _,
            options(nostack)
        );
    }
    for (k, want) in src.iter().enumerate() {
        let got = load_u64(MMIO + 0x100 + 8 * k as u64);
        assert!(
            got == *want,
            "mmio: vmovdqu store: device word {k} is {got:#x}, want {want:#x}"
        );
    }
    for (k, got) in back.iter().enumerate() {
        let want = u64::from_le_bytes(core::array::from_fn(|b| {
            initial(0x200 + 8 * k as u64 + b as u64)
        }));
        assert!(
            *got == want,
            "mmio: vmovdqu load: ymm1 word {k} is {got:#x}, want {want:#x}"
        );
    }
    say(format_args!(
        "mmio: vmovdqu ymm stored 32 bytes to the device and loaded 32 back, both exact"
    ));
    // cmpxchg16b: the device holds its initial bytes at 0x300, so the exchange succeeds.
    let lo = u64::from_le_bytes(core::array::from_fn(|b| initial(0x300 + b as u64)));
    let hi = u64::from_le_bytes(core::array::from_fn(|b| initial(0x308 + b as u64)));
    let (new_lo, new_hi) = (0x1122_3344_5566_7788u64, 0x99aa_bbcc_ddee_ff00u64);
    let (zf, rax, rdx) = cmpxchg16b(MMIO + 0x300, (lo, hi), (new_lo, new_hi));
    assert!(
        zf && rax == lo && rdx == hi,
        "mmio: cmpxchg16b did not succeed (rax {rax:#x})"
    );
    let (got_lo, got_hi) = (load_u64(MMIO + 0x300), load_u64(MMIO + 0x308));
    assert!(
        got_lo == new_lo && got_hi == new_hi,
        "mmio: cmpxchg16b left {got_lo:#x}:{got_hi:#x}"
    );
    // A second exchange with the old value must fail and load the current one.
    let (zf, rax, rdx) = cmpxchg16b(MMIO + 0x300, (lo, hi), (0, 0));
    assert!(
        !zf && rax == new_lo && rdx == new_hi,
        "mmio: failed cmpxchg16b did not load the device value"
    );
    say(format_args!(
        "mmio: lock cmpxchg16b on the device: exchanged, then refused with the current value loaded ({} checks)",
        Dec(4)
    ));
}

/// `lock cmpxchg16b [addr]` with RDX:RAX = `expected` and RCX:RBX = `new`; returns ZF and the
/// RAX, RDX it left.
fn cmpxchg16b(addr: u64, expected: (u64, u64), new: (u64, u64)) -> (bool, u64, u64) {
    let (mut rax, mut rdx) = expected;
    let zf: u8;
    // SAFETY: `addr` is 16-byte aligned in the MMIO test page; rbx is swapped in and out
    // around the instruction because LLVM reserves it.
    unsafe {
        asm!(
            "xchg {nlo}, rbx",
            "lock cmpxchg16b [{dev}]",
            "sete {zf}",
            "xchg {nlo}, rbx",
            dev = in(reg) addr,
            nlo = inout(reg) new.0 => _,
            zf = out(reg_byte) zf,
            inout("rax") rax, inout("rdx") rdx,
            in("rcx") new.1,
            options(nostack)
        );
    }
    (zf != 0, rax, rdx)
}
