//! The viridian test guest: a freestanding 64-bit program that the reference VMM
//! (`examples/vmm`) boots.
//!
//! # Boot contract (set up by the VMM)
//!
//! * 64-bit long mode, paging on with the low 4 GiB identity-mapped, a flat GDT (code
//!   selector `0x08`, data selector `0x10`), interrupts off, no IDT.
//! * SSE usable (`CR4.OSFXSR`, `CR4.OSXMMEXCPT`), so the compiler's SSE code runs.
//! * `rsp` points at a stack in guest RAM, aligned as if `_start` had been called.
//! * `rip` is `_start`, the ELF entry point; the image lives at 1 MiB (see `link.ld`).
//!
//! # What it does
//!
//! It prints one line on the first serial port and powers off through the VMM's power-off
//! port with status 0. A panic prints its message and powers off with a failure status.

#![no_std]
#![no_main]

mod cpu;
mod mem;
mod pm;
mod serial;

use core::fmt::Write as _;

use serial::Serial;

/// The line the VMM's integration test looks for.
const GREETING: &str = "viridian guest: hello from long mode\n";

/// The entry point: the VMM sets `rip` here (the ELF entry).
// `no_mangle` counts as unsafe code: it exports the symbol `link.ld` names as the entry
// point. Nothing else defines `_start` in this freestanding binary, so there is no clash.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut com1 = Serial::com1();
    com1.init();
    com1.write_str(GREETING);
    pm::power_off(pm::Status::Success)
}

/// Reports the panic on the serial port and powers off with a failure status.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut com1 = Serial::com1();
    // Nothing useful to do if formatting fails: the power-off below reports the failure.
    let _ = writeln!(com1, "viridian guest: {info}");
    pm::power_off(pm::Status::Failure)
}

/// The unwinding personality routine that the prebuilt `core`'s unwind tables name.
///
/// The host target's `core` is built for unwinding, so its `.eh_frame` entries refer to
/// `rust_eh_personality`, which only `std` defines. This guest is built with
/// `panic = "abort"`: nothing ever unwinds and nothing calls this. It only satisfies the linker.
// `no_mangle` counts as unsafe code: the symbol must carry exactly this name, and nothing else
// in this freestanding binary defines it.
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn rust_eh_personality() {}
