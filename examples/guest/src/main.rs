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
//! It starts as a Hyper-V guest ([`hyperv`]): detects the hypervisor through CPUID, reports
//! its guest OS identity, enables the hypercall page, makes hypercalls through it (one that
//! succeeds, on the VMM's diagnostic event connection, and two the VMM refuses), and reads
//! the reference time once. It prints each step on the first serial port, then its greeting,
//! and powers off through the VMM's power-off port with status 0. Any failure panics; a panic
//! prints its message and powers off with a failure status.

#![no_std]
#![no_main]

mod cpu;
mod hyperv;
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
    hyper_v_start(&mut com1);
    com1.write_str(GREETING);
    pm::power_off(pm::Status::Success)
}

/// Prints `args` as one line with the guest's prefix.
fn say(com1: &mut Serial, args: core::fmt::Arguments<'_>) {
    // The serial port never fails to take a byte; a formatting error would be a bug here.
    writeln!(com1, "viridian guest: {args}").expect("serial output");
}

/// `bytes` as text, or `"?"` when they are not UTF-8.
fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?")
}

/// The Hyper-V start: detect, identify, enable the hypercall page, call, read the time.
fn hyper_v_start(com1: &mut Serial) {
    let (info, sig) = hyperv::detect().unwrap_or_else(|e| panic!("no Hyper-V: {e}"));
    say(
        com1,
        format_args!(
            "hypervisor {:?}, interface {:?}, max leaf {:#x}, {} vp(s)",
            text(&sig.vendor),
            text(&sig.interface),
            info.max_leaf,
            info.max_vps
        ),
    );

    let page = hyperv::enable_hypercalls()
        .unwrap_or_else(|e| panic!("cannot enable the hypercall page: {e}"));
    say(
        com1,
        format_args!(
            "guest os id {:#x}, hypercall page enabled at {page:#x}",
            hyperv::GUEST_OS_ID.0
        ),
    );

    let mut calls = hyperv::hypercalls();
    for connection in [hyperv::DIAGNOSTIC_CONNECTION_ID, 0x7f01] {
        let status = hyperv::status(calls.signal_event(connection, 0))
            .unwrap_or_else(|e| panic!("HvSignalEvent failed: {e}"));
        say(
            com1,
            format_args!("HvSignalEvent(connection {connection:#x}, flag 0) -> {status}"),
        );
    }
    let status =
        hyperv::status(calls.post_message(1, hv_hypercall::defs::HvMessageType(1), b"hello"))
            .unwrap_or_else(|e| panic!("HvPostMessage failed: {e}"));
    say(
        com1,
        format_args!("HvPostMessage(connection 0x1, 5 bytes) -> {status}"),
    );

    let (time, source) =
        hyperv::reference_time().unwrap_or_else(|e| panic!("cannot read reference time: {e}"));
    let source = match source {
        hyperv::TimeSource::TscPage => "reference TSC page",
        hyperv::TimeSource::TimeRefCount => "TIME_REF_COUNT (TSC page invalid)",
    };
    say(
        com1,
        // Hexadecimal: KVM here cannot emulate the SSE loads (`pinsrw xmm, m16`) of core's
        // decimal formatting when they fault into its emulator.
        format_args!("reference time {time:#x} x 100 ns, from {source}"),
    );
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
