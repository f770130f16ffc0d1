//! The privileged instructions the guest uses: port I/O and `hlt`.
//!
//! This is the only module with `unsafe`: each function wraps one instruction. The guest runs
//! at CPL 0 inside its own VM, so the instructions are always permitted; what they do to the
//! (virtual) machine is the caller's business, and nothing here touches Rust-visible memory.
#![allow(unsafe_code)]

use core::arch::asm;

/// Writes `value` to I/O port `port` (`out dx, al`).
pub fn outb(port: u16, value: u8) {
    // SAFETY: `out` only reaches the VMM's device emulation; it reads two registers and
    // touches no memory or stack (`nomem`, `nostack`).
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a byte from I/O port `port` (`in al, dx`).
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: `in` only reaches the VMM's device emulation and writes `al`; it touches no
    // memory or stack.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Stops the CPU until the next interrupt; with interrupts off, for good.
pub fn halt() {
    // SAFETY: `hlt` has no operands and touches no memory; it only pauses this vCPU.
    unsafe { asm!("hlt", options(nomem, nostack, preserves_flags)) };
}
