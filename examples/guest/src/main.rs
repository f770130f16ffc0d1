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
//! * `rdi` holds the scenario number ([`Scenario`]), `rsi` the number of exit-probe port
//!   writes and `rdx` the network role (0 none, 1 A, 2 B; see [`net`]) — the System V
//!   argument registers, so `_start` reads them as its arguments.
//!
//! On the `kvm_pvm` KVM variant these machines have, this guest never enters PVM's native
//! mode: KVM runs it instruction by instruction in its in-kernel emulator (≈1.5 µs per
//! instruction, measured), and that emulator refuses most SSE/SSE2 instructions. The guest
//! is therefore built without auto-vectorization (`.cargo/config.toml`) and prints numbers
//! with its own formatter ([`fmt`]); the VMM completes the few SSE instructions the compiler
//! still emits for copies and zeroing.
//!
//! # What it does
//!
//! It is an honest Hyper-V guest ([`hyperv`]): it detects the hypervisor through CPUID,
//! reports its guest OS identity, enables the hypercall page, makes a diagnostic hypercall,
//! reads the reference time, runs the exit probe (a loop of port writes the VMM times), sets
//! up its IDT and x2APIC ([`interrupts`]), enables the SynIC with SINT 2, and runs the guest
//! side of VMBus ([`vmbus`]): it connects with version fallback, opens the four
//! integration-service channels and answers them until the host asks it to shut down, then
//! powers off through the VMM's power-off port with status 0. A negative scenario, chosen by
//! the VMM, first does one thing wrong on purpose and checks the documented answer. Any
//! failure panics; a panic prints its message and powers off with a failure status.

#![no_std]
#![no_main]

extern crate alloc;

mod cpu;
mod fat;
mod fmt;
mod heap;
mod hyperv;
mod interrupts;
mod mem;
mod mmio;
mod net;
mod pm;
mod serial;
mod sha1;
mod storage;
mod vmbus;

use core::fmt::Write as _;

use hv_hypercall::defs::{HvMessageType, HvMsr, HvStatus};
use hv_hypercall::guest::MsrAccess as _;

use fmt::Dec;
use serial::Serial;

/// The line the VMM's integration test looks for.
const GREETING: &str = "viridian guest: hello from long mode\n";

/// The port the exit probe writes to (the VMM times these exits and discards the data).
const PROBE_PORT: u16 = 0x510;

/// What the VMM asks the guest to do besides its normal run (`rdi` at entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Just the normal run.
    Normal,
    /// Post a VMBus message that does not parse, and one of a non-VMBus type.
    MalformedMessage,
    /// Signal an event connection no channel has.
    UnknownConnection,
    /// Write reserved bits of SINT2 and SCONTROL.
    ReservedSynicBits,
    /// Describe a GPADL with a page outside guest RAM (checked by the VMBus driver).
    GpadlOutsideRam,
}

impl Scenario {
    fn from_register(value: u64) -> Option<Self> {
        Some(match value {
            0 => Self::Normal,
            1 => Self::MalformedMessage,
            2 => Self::UnknownConnection,
            3 => Self::ReservedSynicBits,
            4 => Self::GpadlOutsideRam,
            _ => return None,
        })
    }
}

/// The entry point: the VMM sets `rip` here (the ELF entry), `rdi` to the scenario and `rsi`
/// to the exit-probe count.
// `no_mangle` counts as unsafe code: it exports the symbol `link.ld` names as the entry
// point. Nothing else defines `_start` in this freestanding binary, so there is no clash.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn _start(scenario: u64, probe_writes: u64, net_role: u64) -> ! {
    Serial::com1().init();
    let scenario = Scenario::from_register(scenario)
        .unwrap_or_else(|| panic!("unknown scenario {scenario:#x}"));
    let mut calls = hyper_v_start();
    for _ in 0..probe_writes {
        cpu::outb(PROBE_PORT, 0);
    }
    interrupts::init();
    hyperv::enable_synic(2, interrupts::VMBUS_VECTOR)
        .unwrap_or_else(|e| panic!("cannot enable the synic: {e}"));
    say(format_args!(
        "synic enabled: sint 2 -> vector {:#x}, x2apic on",
        interrupts::VMBUS_VECTOR
    ));
    mmio::run();
    negative(scenario, &mut calls);
    let mut bus = vmbus::Vmbus::new(calls);
    bus.set_net_role(net_role);
    if scenario == Scenario::GpadlOutsideRam {
        bus.probe_gpadl_outside_ram();
    }
    let action = bus.run();
    let stats = bus.stats();
    say(format_args!(
        "{} host messages, {} service packets answered, {} signals, {} interrupts, heap {} KiB in use",
        Dec(stats.messages.into()),
        Dec(stats.packets.into()),
        Dec(stats.signals.into()),
        Dec(interrupts::VMBUS_INTERRUPTS.load(core::sync::atomic::Ordering::Relaxed).into()),
        Dec((heap::HEAP.in_use() / 1024) as u64),
    ));
    say(format_args!(
        "powering off for {}",
        vmbus::action_name(action)
    ));
    Serial::com1().write_str(GREETING);
    pm::power_off(pm::Status::Success)
}

/// Prints `args` as one line with the guest's prefix.
pub fn say(args: core::fmt::Arguments<'_>) {
    // The serial port never fails to take a byte; a formatting error would be a bug here.
    writeln!(Serial::com1(), "viridian guest: {args}").expect("serial output");
}

/// `bytes` as text, or `"?"` when they are not UTF-8.
fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?")
}

/// The Hyper-V start: detect, identify, enable the hypercall page, call, read the time.
fn hyper_v_start() -> hyperv::Calls {
    let (info, sig) = hyperv::detect().unwrap_or_else(|e| panic!("no Hyper-V: {e}"));
    say(format_args!(
        "hypervisor {:?}, interface {:?}, max leaf {:#x}, {} vp(s)",
        text(&sig.vendor),
        text(&sig.interface),
        info.max_leaf,
        Dec(info.max_vps.into())
    ));
    let page = hyperv::enable_hypercalls()
        .unwrap_or_else(|e| panic!("cannot enable the hypercall page: {e}"));
    say(format_args!(
        "guest os id {:#x}, hypercall page enabled at {page:#x}",
        hyperv::GUEST_OS_ID.0
    ));
    let mut calls = hyperv::hypercalls();
    let status = hyperv::status(calls.signal_event(hyperv::DIAGNOSTIC_CONNECTION_ID, 0))
        .unwrap_or_else(|e| panic!("HvSignalEvent failed: {e}"));
    say(format_args!(
        "HvSignalEvent(diagnostic connection {:#x}) -> {status}",
        hyperv::DIAGNOSTIC_CONNECTION_ID
    ));
    let (time, source) =
        hyperv::reference_time().unwrap_or_else(|e| panic!("cannot read reference time: {e}"));
    let source = match source {
        hyperv::TimeSource::TscPage => "reference TSC page",
        hyperv::TimeSource::TimeRefCount => "TIME_REF_COUNT (TSC page invalid)",
    };
    say(format_args!(
        "reference time {} x 100 ns, from {source}",
        Dec(time)
    ));
    calls
}

/// Runs `scenario`'s deliberate mistake and checks the answer the VMM documents for it.
fn negative(scenario: Scenario, calls: &mut hyperv::Calls) {
    let expect = |what: &str, got: HvStatus, want: HvStatus| {
        assert!(got == want, "{what}: expected {want}, got {got}");
        say(format_args!("negative: {what} -> {got}, as documented"));
    };
    let post = |calls: &mut hyperv::Calls, connection: u32, message_type: u32, payload: &[u8]| {
        hyperv::status(calls.post_message(connection, HvMessageType(message_type), payload))
            .unwrap_or_else(|e| panic!("HvPostMessage failed: {e}"))
    };
    match scenario {
        // The GPADL scenario needs a connected VMBus: the driver runs it (see `vmbus`).
        Scenario::Normal | Scenario::GpadlOutsideRam => {}
        Scenario::MalformedMessage => {
            // A VMBus message type the protocol does not have (0x7fff): the VMM accepts the
            // post (the hypervisor delivered it) and the VMBus host drops it.
            let mut bogus = [0u8; 16];
            bogus[..4].copy_from_slice(&0x7fffu32.to_le_bytes());
            let got = post(calls, 1, 1, &bogus);
            expect(
                "HvPostMessage(unknown VMBus message type)",
                got,
                HvStatus::SUCCESS,
            );
            // A truncated header.
            let got = post(calls, 1, 1, &[1, 0]);
            expect(
                "HvPostMessage(2-byte VMBus message)",
                got,
                HvStatus::SUCCESS,
            );
            // Not a VMBus message type on the VMBus connection.
            let got = post(calls, 1, 0x55, b"hello");
            expect(
                "HvPostMessage(message type 0x55)",
                got,
                HvStatus::INVALID_PARAMETER,
            );
        }
        Scenario::UnknownConnection => {
            let got = hyperv::status(calls.signal_event(0x2fff, 0))
                .unwrap_or_else(|e| panic!("HvSignalEvent failed: {e}"));
            expect(
                "HvSignalEvent(connection 0x2fff)",
                got,
                HvStatus::INVALID_CONNECTION_ID,
            );
            let got = post(calls, 0x2fff, 1, b"x");
            expect(
                "HvPostMessage(connection 0x2fff)",
                got,
                HvStatus::INVALID_CONNECTION_ID,
            );
        }
        Scenario::ReservedSynicBits => {
            let before = interrupts::GP_FAULTS.load(core::sync::atomic::Ordering::Relaxed);
            let mut msr = hyperv::msrs();
            let sint2 = HvMsr::sint(2).expect("sint 2 exists");
            let current = msr
                .read_msr(sint2.0)
                .unwrap_or_else(|e| panic!("rdmsr SINT2: {e}"));
            // The native MSR wrapper reports the #GP our handler skipped as success, so the
            // fault count is the evidence.
            let _ = msr.write_msr(sint2.0, current | 1 << 40);
            let _ = msr.write_msr(HvMsr::SCONTROL.0, 1 | 1 << 8);
            let after = interrupts::GP_FAULTS.load(core::sync::atomic::Ordering::Relaxed);
            assert!(
                after - before == 2,
                "expected 2 #GP faults, got {}",
                after - before
            );
            let unchanged = msr
                .read_msr(sint2.0)
                .unwrap_or_else(|e| panic!("rdmsr SINT2: {e}"));
            assert!(unchanged == current, "SINT2 changed to {unchanged:#x}");
            say(format_args!(
                "negative: wrmsr SINT2 and SCONTROL with reserved bits -> #GP twice, registers unchanged, as documented"
            ));
        }
    }
}

/// Reports the panic on the serial port and powers off with a failure status.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut com1 = Serial::com1();
    // Nothing useful to do if formatting fails: the power-off below reports the failure.
    // The location is printed by hand: `core`'s decimal formatting is not usable here.
    let _ = write!(com1, "viridian guest: panic: {}", info.message());
    if let Some(l) = info.location() {
        let _ = write!(com1, " at {}:{}", l.file(), Dec(l.line().into()));
    }
    let _ = writeln!(com1);
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

/// The unwinder entry that the prebuilt `alloc`'s landing pads name.
///
/// Like [`rust_eh_personality`], it only satisfies the linker: with `panic = "abort"` nothing
/// unwinds, so nothing reaches a landing pad. If something ever did, powering off with a
/// failure status is the honest outcome.
// `no_mangle` counts as unsafe code: the symbol must carry exactly this name, and nothing else
// in this freestanding binary defines it.
#[allow(unsafe_code)]
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    pm::power_off(pm::Status::Failure)
}
