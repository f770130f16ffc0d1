//! Interrupts: the IDT, the local APIC in x2APIC mode, and the handlers.
//!
//! * Vector [`VMBUS_VECTOR`] (0xF3, Linux's `HYPERVISOR_CALLBACK_VECTOR`): the SynIC's SINT 2.
//!   The handler only counts the interrupt and writes EOI; the main loop does the work.
//! * Vector 13 (#GP): counted, and the faulting instruction is skipped when it is a 2-byte
//!   `rdmsr`/`wrmsr` (the negative scenarios expect #GP from those); any other #GP, and every
//!   other exception, reports the vector and RIP and powers off with a failure status.
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The vector the SynIC's VMBus SINT is programmed with.
pub const VMBUS_VECTOR: u8 = 0xf3;

/// `IA32_APIC_BASE`.
const APIC_BASE_MSR: u32 = 0x1b;
/// x2APIC spurious-interrupt vector register.
const X2APIC_SVR: u32 = 0x80f;

/// VMBus interrupts taken since boot (written by the handler).
pub static VMBUS_INTERRUPTS: AtomicU32 = AtomicU32::new(0);
/// #GP faults the handler skipped.
pub static GP_FAULTS: AtomicU32 = AtomicU32::new(0);
/// RIP of the last fatal exception (set before the handler powers off).
static FATAL_RIP: AtomicU64 = AtomicU64::new(0);

/// One 16-byte long-mode interrupt gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const EMPTY: Self = Self {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    fn interrupt(handler: u64) -> Self {
        Self {
            offset_low: handler as u16,
            // The VMM's flat 64-bit code segment.
            selector: 0x08,
            ist: 0,
            // Present, DPL 0, 64-bit interrupt gate (interrupts stay off in the handler).
            attributes: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate::EMPTY; 256]);

unsafe extern "C" {
    fn vmbus_entry();
    fn gp_entry();
    fn fatal_entry();
}

// The VMBus handler: count, EOI (x2APIC EOI register 0x80B), return. It saves the three
// registers `wrmsr` uses and touches nothing else.
global_asm!(
    ".global vmbus_entry",
    "vmbus_entry:",
    "push rax",
    "push rcx",
    "push rdx",
    "lock inc dword ptr [rip + {count}]",
    "mov ecx, 0x80b",
    "xor eax, eax",
    "xor edx, edx",
    "wrmsr",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "iretq",
    count = sym VMBUS_INTERRUPTS,
);

// #GP: the CPU pushed an error code. If the faulting instruction is `rdmsr` (0F 32) or
// `wrmsr` (0F 30), count the fault and resume after it; otherwise it is fatal.
global_asm!(
    ".global gp_entry",
    "gp_entry:",
    "push rax",
    "push rcx",
    // Stack: rcx, rax, error code, rip, cs, rflags, rsp, ss.
    "mov rax, [rsp + 24]",
    "movzx ecx, word ptr [rax]",
    "cmp ecx, 0x300f",
    "je 2f",
    "cmp ecx, 0x320f",
    "je 2f",
    "pop rcx",
    "pop rax",
    "add rsp, 8",
    "jmp fatal_entry",
    "2:",
    "add qword ptr [rsp + 24], 2",
    "lock inc dword ptr [rip + {count}]",
    "pop rcx",
    "pop rax",
    "add rsp, 8",
    "iretq",
    count = sym GP_FAULTS,
);

// Any other exception: record RIP (for exceptions without an error code it is on top of the
// stack; for #GP we arrive with the error code removed) and call the Rust reporter.
global_asm!(
    ".global fatal_entry",
    "fatal_entry:",
    "mov rax, [rsp]",
    "mov [rip + {rip}], rax",
    "and rsp, -16",
    "call {report}",
    "2:",
    "hlt",
    "jmp 2b",
    rip = sym FATAL_RIP,
    report = sym report_fatal,
);

extern "C" fn report_fatal() -> ! {
    panic!(
        "unexpected exception at rip {:#x}",
        FATAL_RIP.load(Ordering::Relaxed)
    );
}

/// Fills the IDT, loads it, and enables the local APIC in x2APIC mode.
///
/// # Panics
/// If the CPU has no x2APIC.
pub fn init() {
    let [_, _, ecx, _] = cpuid(1);
    assert!(ecx & (1 << 21) != 0, "the vCPU has no x2APIC");
    let fatal = Gate::interrupt(fatal_entry as *const () as u64);
    let table = &raw mut IDT;
    // SAFETY: the guest is single-threaded and nothing else references `IDT`; interrupts are
    // off while it is filled.
    let idt = unsafe { &mut *table };
    for gate in &mut idt.0[..32] {
        *gate = fatal;
    }
    idt.0[13] = Gate::interrupt(gp_entry as *const () as u64);
    idt.0[usize::from(VMBUS_VECTOR)] = Gate::interrupt(vmbus_entry as *const () as u64);
    let pointer = DescriptorPointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: core::ptr::addr_of!(IDT) as u64,
    };
    // SAFETY: `pointer` describes the static IDT, whose gates point at the handlers above and
    // the VMM's code selector; it lives for the whole program.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };

    // x2APIC on (EN | EXTD), then the spurious-vector register: software enable, vector 0xFF.
    let base = rdmsr(APIC_BASE_MSR);
    wrmsr(APIC_BASE_MSR, base | (1 << 11) | (1 << 10));
    wrmsr(X2APIC_SVR, 0x1ff);
}

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Waits for an interrupt: enables interrupts and halts in one step (`sti; hlt`: the
/// interrupt shadow of `sti` keeps an interrupt from slipping in between), then disables them.
pub fn wait() {
    // SAFETY: the IDT is loaded (`init`), so any interrupt has a handler; `cli` restores the
    // interrupt-off state the rest of the guest runs in.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// `cpuid` leaf `leaf`, subleaf 0.
fn cpuid(leaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// `rdmsr` of an architectural MSR the guest knows exists.
fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: CPL 0; the MSRs read here exist on every x86-64 CPU with an APIC.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    u64::from(hi) << 32 | u64::from(lo)
}

/// `wrmsr` of an architectural MSR with a value the SDM allows.
fn wrmsr(msr: u32, value: u64) {
    // SAFETY: CPL 0; the callers write the APIC base and x2APIC registers with valid values,
    // which changes only the interrupt controller's state, not memory.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}
