//! The exit loop: run the vCPU, handle each exit, stop when the guest powers off.
//!
//! Port I/O goes through the [`PortBus`]; everything the VMM does not expect (a port without
//! a device, MMIO, `hlt` without powering off, a triple fault, a KVM internal error, a failed
//! VM entry) stops the VM with a [`RunError`] that carries the exit and a [`RegisterDump`].
//! New kinds of exits (MSR accesses through `KVM_X86_SET_MSR_FILTER`, MMIO devices) get a
//! handler here and, like port I/O, a bus of their own.

use core::fmt;

use hv_hypercall::dispatch::X64Registers;
use kvm_bindings::{
    KVM_EXIT_DEBUG, KVM_EXIT_DIRTY_RING_FULL, KVM_EXIT_EXCEPTION, KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_HLT, KVM_EXIT_HYPERCALL, KVM_EXIT_HYPERV, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTR,
    KVM_EXIT_IO, KVM_EXIT_IOAPIC_EOI, KVM_EXIT_IRQ_WINDOW_OPEN, KVM_EXIT_MEMORY_FAULT,
    KVM_EXIT_MMIO, KVM_EXIT_NMI, KVM_EXIT_NOTIFY, KVM_EXIT_SET_TPR, KVM_EXIT_SHUTDOWN,
    KVM_EXIT_SYSTEM_EVENT, KVM_EXIT_TPR_ACCESS, KVM_EXIT_UNKNOWN, KVM_EXIT_X86_BUS_LOCK,
    KVM_EXIT_X86_RDMSR, KVM_EXIT_X86_WRMSR, KVM_INTERNAL_ERROR_DELIVERY_EV,
    KVM_INTERNAL_ERROR_EMULATION, KVM_INTERNAL_ERROR_SIMUL_EX,
    KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
};
use kvm_ioctls::VcpuExit;

use std::time::Instant;

use crate::complete::{self, CompleteError};
use crate::devices::{DeviceError, PortAction, PortBus};
use crate::hyperv::{msr_name, HyperV, HypercallExit, SYNTHETIC_MSRS};
use crate::kvm::{InternalError, KvmError, Vm};
use crate::memory::GuestMemory;
use crate::regs::RegisterDump;

/// A vCPU exit the VMM does not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnexpectedExit {
    /// `in` from a port without a device.
    PortRead {
        /// The port.
        port: u16,
        /// Bytes read.
        size: usize,
    },
    /// `out` to a port without a device.
    PortWrite {
        /// The port.
        port: u16,
        /// The bytes written.
        data: Vec<u8>,
    },
    /// A read from a guest-physical address that is neither RAM nor a device.
    MmioRead {
        /// The address.
        addr: u64,
        /// Bytes read.
        size: usize,
    },
    /// A write to a guest-physical address that is neither RAM nor a device.
    MmioWrite {
        /// The address.
        addr: u64,
        /// The bytes written.
        data: Vec<u8>,
    },
    /// The guest ran `hlt` (only seen without the in-kernel irqchip).
    Halt,
    /// The guest shut down: a triple fault.
    Shutdown,
    /// KVM could not continue the guest (`KVM_EXIT_INTERNAL_ERROR`).
    InternalError(InternalError),
    /// The processor refused to enter the guest (`KVM_EXIT_FAIL_ENTRY`).
    FailEntry {
        /// The hardware's VM-entry failure reason.
        reason: u64,
        /// The host CPU.
        cpu: u32,
    },
    /// Any other exit, by its `KVM_EXIT_*` number.
    Other {
        /// The exit reason.
        reason: u32,
    },
}

/// Bytes as space-separated hex.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The name of a `KVM_EXIT_*` reason.
fn exit_name(reason: u32) -> &'static str {
    match reason {
        KVM_EXIT_UNKNOWN => "KVM_EXIT_UNKNOWN",
        KVM_EXIT_EXCEPTION => "KVM_EXIT_EXCEPTION",
        KVM_EXIT_IO => "KVM_EXIT_IO",
        KVM_EXIT_HYPERCALL => "KVM_EXIT_HYPERCALL",
        KVM_EXIT_DEBUG => "KVM_EXIT_DEBUG",
        KVM_EXIT_HLT => "KVM_EXIT_HLT",
        KVM_EXIT_MMIO => "KVM_EXIT_MMIO",
        KVM_EXIT_IRQ_WINDOW_OPEN => "KVM_EXIT_IRQ_WINDOW_OPEN",
        KVM_EXIT_SHUTDOWN => "KVM_EXIT_SHUTDOWN",
        KVM_EXIT_FAIL_ENTRY => "KVM_EXIT_FAIL_ENTRY",
        KVM_EXIT_INTR => "KVM_EXIT_INTR",
        KVM_EXIT_SET_TPR => "KVM_EXIT_SET_TPR",
        KVM_EXIT_TPR_ACCESS => "KVM_EXIT_TPR_ACCESS",
        KVM_EXIT_NMI => "KVM_EXIT_NMI",
        KVM_EXIT_INTERNAL_ERROR => "KVM_EXIT_INTERNAL_ERROR",
        KVM_EXIT_SYSTEM_EVENT => "KVM_EXIT_SYSTEM_EVENT",
        KVM_EXIT_IOAPIC_EOI => "KVM_EXIT_IOAPIC_EOI",
        KVM_EXIT_HYPERV => "KVM_EXIT_HYPERV",
        KVM_EXIT_X86_RDMSR => "KVM_EXIT_X86_RDMSR",
        KVM_EXIT_X86_WRMSR => "KVM_EXIT_X86_WRMSR",
        KVM_EXIT_DIRTY_RING_FULL => "KVM_EXIT_DIRTY_RING_FULL",
        KVM_EXIT_X86_BUS_LOCK => "KVM_EXIT_X86_BUS_LOCK",
        KVM_EXIT_NOTIFY => "KVM_EXIT_NOTIFY",
        KVM_EXIT_MEMORY_FAULT => "KVM_EXIT_MEMORY_FAULT",
        _ => "unknown",
    }
}

/// The name of a `KVM_INTERNAL_ERROR_*` suberror.
fn internal_error_name(suberror: u32) -> &'static str {
    match suberror {
        KVM_INTERNAL_ERROR_EMULATION => "instruction emulation failed",
        KVM_INTERNAL_ERROR_SIMUL_EX => "exception while delivering an exception",
        KVM_INTERNAL_ERROR_DELIVERY_EV => "event delivery failed",
        KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => "unexpected hardware exit reason",
        _ => "unknown",
    }
}

impl fmt::Display for UnexpectedExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PortRead { port, size } => {
                write!(
                    f,
                    "{size}-byte read from port {port:#x}, which has no device"
                )
            }
            Self::PortWrite { port, data } => write!(
                f,
                "{}-byte write to port {port:#x}, which has no device (data {})",
                data.len(),
                Hex(data)
            ),
            Self::MmioRead { addr, size } => {
                write!(
                    f,
                    "{size}-byte mmio read at {addr:#x}, which is neither ram nor a device"
                )
            }
            Self::MmioWrite { addr, data } => write!(
                f,
                "{}-byte mmio write at {addr:#x}, which is neither ram nor a device (data {})",
                data.len(),
                Hex(data)
            ),
            Self::Halt => f.write_str("the guest halted (hlt) without powering off"),
            Self::Shutdown => f.write_str("the guest shut down (triple fault)"),
            Self::InternalError(InternalError { suberror, data }) => {
                write!(
                    f,
                    "kvm internal error {suberror} ({})",
                    internal_error_name(*suberror)
                )?;
                if !data.is_empty() {
                    let words: Vec<_> = data.iter().map(|w| format!("{w:#x}")).collect();
                    write!(f, ", data [{}]", words.join(", "))?;
                }
                Ok(())
            }
            Self::FailEntry { reason, cpu } => write!(
                f,
                "vm entry failed (hardware reason {reason:#x}, host cpu {cpu})"
            ),
            Self::Other { reason } => {
                write!(f, "unhandled exit {reason} ({})", exit_name(*reason))
            }
        }
    }
}

/// Why the VM stopped other than by powering off.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The vCPU exited for a reason the VMM does not handle.
    #[error("unexpected vcpu exit: {exit}")]
    UnexpectedExit {
        /// The exit.
        exit: UnexpectedExit,
        /// The registers at the exit.
        regs: Box<RegisterDump>,
    },
    /// A device failed to handle a port access.
    #[error("the {device} device failed on port {port:#x}")]
    Device {
        /// The device.
        device: &'static str,
        /// The port the guest accessed.
        port: u16,
        /// What went wrong.
        #[source]
        source: DeviceError,
        /// The registers at the exit.
        regs: Box<RegisterDump>,
    },
    /// Device output could not be flushed when the VM stopped.
    #[error("cannot flush device output")]
    Flush(#[source] DeviceError),
    /// `KVM_RUN` itself failed.
    #[error("KVM_RUN failed")]
    Run(#[source] kvm_ioctls::Error),
    /// The vCPU state could not be read for the report.
    #[error("cannot read the vcpu state after an exit")]
    Kvm(#[source] KvmError),
    /// The registers of a hypercall could not be read or written back.
    #[error("cannot access the vcpu registers for a hypercall")]
    Hypercall(#[source] KvmError),
    /// A synthetic interrupt could not be injected.
    #[error("KVM could not emulate an instruction, and neither could the VMM")]
    Completion {
        #[source]
        source: CompleteError,
        regs: Box<RegisterDump>,
    },
    #[error("cannot inject the synthetic interrupt vector {vector:#x}")]
    Interrupt {
        /// The vector.
        vector: u8,
        /// Why.
        #[source]
        source: KvmError,
    },
}

impl RunError {
    /// The registers at the exit, when the error has them.
    pub fn registers(&self) -> Option<&RegisterDump> {
        match self {
            Self::UnexpectedExit { regs, .. }
            | Self::Device { regs, .. }
            | Self::Completion { regs, .. } => Some(regs),
            _ => None,
        }
    }
}

/// The port the guest's exit probe writes to.
pub const PROBE_PORT: u16 = 0x510;

/// Exit counts and the exit-probe timing.
#[derive(Debug, Default, Clone)]
pub struct ExitStats {
    /// Every exit.
    pub exits: u64,
    /// Emulation failures the VMM completed.
    pub completions: u64,
    /// Of those, the ones `x86-decode`'s emulator completed (memory forms, AVX, the device).
    pub emulated: u64,
    /// Of those, the ones whose bytes came with KVM's exit (`KVM_CAP_EXIT_ON_EMULATION_FAILURE`).
    pub emulated_from_exit_bytes: u64,
    /// Emulation failures the emulator made progress on without finishing (`REP` progress, a
    /// lost race): the guest executes the instruction again.
    pub emulator_resumed: u64,
    /// Emulation failures where the instruction faults (or single-steps): the exception was
    /// injected into the guest.
    pub emulator_injected: u64,
    /// Exits after all four channels opened.
    pub exits_after_open: u64,
    /// Serial-console exits after all four channels opened.
    pub console_exits_after_open: u64,
    /// Probe-port writes seen.
    pub probe_exits: u64,
    /// First and last probe write.
    probe_span: Option<(Instant, Instant)>,
}

impl ExitStats {
    /// Mean time between consecutive probe exits: one guest->VMM->guest round trip.
    pub fn probe_ns_per_exit(&self) -> Option<f64> {
        let (first, last) = self.probe_span?;
        (self.probe_exits > 1)
            .then(|| (last - first).as_nanos() as f64 / (self.probe_exits - 1) as f64)
    }
}

/// How one exit went.
enum Step {
    /// Run the vCPU again.
    Resume,
    /// A write to the probe port.
    Probe,
    /// The guest powered off with this status.
    PowerOff(u8),
    /// An exit the VMM does not handle; `None` means "read the details from `kvm_run`".
    Unexpected(Option<UnexpectedExit>),
    /// A device failed.
    Device {
        device: &'static str,
        port: u16,
        error: DeviceError,
    },
    /// The guest trapped through the hypercall page: dispatch with the vCPU's registers.
    Hypercall,
}

/// Runs the vCPU of `vm` until the guest powers off, and returns the guest's exit status.
/// Synthetic MSR accesses and hypercalls go to `hyperv`. With `trace`, every exit is logged
/// to stderr.
pub fn run(
    vm: &mut Vm,
    bus: &mut PortBus,
    hyperv: &mut HyperV,
    trace: bool,
) -> Result<(u8, ExitStats), RunError> {
    let mut count: u64 = 0;
    let mut stats = ExitStats::default();
    loop {
        let step = match vm.run() {
            Ok((exit, memory)) => {
                count += 1;
                if hyperv.vmbus.stats.all_open.is_some() {
                    stats.exits_after_open += 1;
                    if matches!(exit, VcpuExit::IoOut(p, _) | VcpuExit::IoIn(p, _) if bus.find(p).is_some_and(|(d, _)| d.name() == "serial"))
                    {
                        stats.console_exits_after_open += 1;
                    }
                }
                handle(exit, memory, bus, hyperv, trace.then_some(count))
            }
            Err(e) => match std::io::Error::from_raw_os_error(e.errno()).kind() {
                // A signal or a transient condition: run again.
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => Step::Resume,
                _ => {
                    // Best effort: show what the guest printed before the failure.
                    let _ = bus.flush();
                    return Err(RunError::Run(e));
                }
            },
        };
        stats.exits = count;
        if let Step::Probe = step {
            let now = Instant::now();
            stats.probe_exits += 1;
            let first = stats.probe_span.map_or(now, |(first, _)| first);
            stats.probe_span = Some((first, now));
        }
        if let Step::Hypercall = step {
            hypercall(vm, hyperv)?;
        }
        // The VMBus host's work: queued messages, rings, timers.
        hyperv.service(vm.memory(), count);
        // Interrupts the SynIC model asked for while handling the exit.
        for interrupt in hyperv.take_interrupts() {
            let apic_id = u8::try_from(interrupt.vp_index).unwrap_or(u8::MAX);
            vm.signal_msi(apic_id, interrupt.vector)
                .map_err(|source| RunError::Interrupt {
                    vector: interrupt.vector,
                    source,
                })?;
        }
        // An emulation failure, read once: the instruction bytes come with it.
        let failure = matches!(step, Step::Unexpected(None))
            .then(|| vm.internal_error())
            .flatten()
            .filter(|e| e.suberror == KVM_INTERNAL_ERROR_EMULATION);
        match step {
            Step::Resume | Step::Probe | Step::Hypercall => {}
            Step::PowerOff(status) => {
                bus.flush().map_err(RunError::Flush)?;
                return Ok((status, stats));
            }
            Step::Unexpected(None) if failure.is_some() => {
                // The instruction as KVM fetched it, when it says (else the emulator fetches).
                let bytes = failure
                    .as_ref()
                    .and_then(|e| e.instruction_bytes())
                    .unwrap_or_default();
                // The SSE forms first, then the emulator (memory forms, AVX, devices).
                let done = match complete::complete(vm) {
                    Err(CompleteError::Unsupported { .. } | CompleteError::Fault { .. }) => {
                        use crate::emulate::Finished;
                        match crate::emulate::complete(vm, &mut bus.mmio, &bytes) {
                            Ok(Some(Finished::Completed)) => {
                                stats.emulated += 1;
                                stats.emulated_from_exit_bytes += u64::from(!bytes.is_empty());
                                Ok(0)
                            }
                            Ok(Some(Finished::Resumed)) => {
                                stats.emulator_resumed += 1;
                                continue;
                            }
                            Ok(Some(Finished::Injected(vector))) => {
                                stats.emulator_injected += 1;
                                if trace {
                                    eprintln!("[exit {count}] x86-decode's emulator: the instruction takes vector {vector}, injected");
                                }
                                continue;
                            }
                            Ok(None) => complete::complete(vm),
                            Err(e) => return Err(RunError::Kvm(e)),
                        }
                    }
                    other => other,
                };
                match done {
                    Ok(len) => {
                        stats.completions += 1;
                        if trace {
                            if len == 0 {
                                eprintln!("[exit {count}] x86-decode's emulator completed an instruction KVM could not emulate");
                            } else {
                                eprintln!("[exit {count}] completed a {len}-byte instruction KVM could not emulate");
                            }
                        }
                    }
                    Err(source) => {
                        let _ = bus.flush();
                        let regs = Box::new(RegisterDump::capture(vm).map_err(RunError::Kvm)?);
                        return Err(RunError::Completion { source, regs });
                    }
                }
            }
            Step::Unexpected(exit) => {
                let _ = bus.flush();
                let exit = exit.unwrap_or_else(|| match vm.internal_error() {
                    Some(internal) => UnexpectedExit::InternalError(internal),
                    None => UnexpectedExit::Other {
                        reason: vm.exit_reason(),
                    },
                });
                if trace {
                    eprintln!("[exit {count}] unexpected: {exit}");
                }
                let regs = Box::new(RegisterDump::capture(vm).map_err(RunError::Kvm)?);
                return Err(RunError::UnexpectedExit { exit, regs });
            }
            Step::Device {
                device,
                port,
                error,
            } => {
                let _ = bus.flush();
                let regs = Box::new(RegisterDump::capture(vm).map_err(RunError::Kvm)?);
                return Err(RunError::Device {
                    device,
                    port,
                    source: error,
                    regs,
                });
            }
        }
    }
}

/// Runs the hypercall the guest trapped with: registers in, dispatch, registers out.
fn hypercall(vm: &mut Vm, hyperv: &mut HyperV) -> Result<(), RunError> {
    // Hypercalls are for the kernel: from real mode or CPL > 0 (a guest process given the port
    // with `iopl`/`ioperm`) the TLFS answers #UD, which the dispatcher leaves to the VMM. The
    // trap instruction has executed, so RIP goes back to it before the fault is delivered.
    let (mut regs, sregs) = vm.registers().map_err(RunError::Hypercall)?;
    if sregs.cr0 & 1 == 0 || sregs.cs.selector & 3 != 0 {
        let trap = hyperv.hypercall_trap_len();
        regs.rip = regs.rip.wrapping_sub(trap);
        vm.set_general_registers(&regs)
            .map_err(RunError::Hypercall)?;
        return vm
            .inject_exception(6, None, None)
            .map_err(RunError::Hypercall);
    }
    let mut abi = X64Registers {
        rax: regs.rax,
        rcx: regs.rcx,
        rdx: regs.rdx,
        rbx: regs.rbx,
        rsi: regs.rsi,
        rdi: regs.rdi,
        r8: regs.r8,
        // XMM fast calls are not advertised, so the dispatcher never reads these.
        xmm: [0; 6],
    };
    let exit = hyperv.hypercall(vm.memory(), &mut abi);
    (regs.rax, regs.rcx, regs.rdx, regs.rbx) = (abi.rax, abi.rcx, abi.rdx, abi.rbx);
    (regs.rsi, regs.rdi, regs.r8) = (abi.rsi, abi.rdi, abi.r8);
    if let HypercallExit::Retry { rewind } = exit {
        regs.rip = regs.rip.wrapping_sub(rewind);
    }
    vm.set_general_registers(&regs).map_err(RunError::Hypercall)
}

/// Handles one exit. `trace` is the exit's sequence number when tracing.
fn handle(
    exit: VcpuExit<'_>,
    memory: &GuestMemory,
    bus: &mut PortBus,
    hyperv: &mut HyperV,
    trace: Option<u64>,
) -> Step {
    match exit {
        VcpuExit::IoOut(PROBE_PORT, _) => Step::Probe,
        VcpuExit::IoOut(port, data) if Some(port) == hyperv.hypercall_port() => {
            if let Some(n) = trace {
                eprintln!("[exit {n}] io out {port:#06x} [{}] hypercall", Hex(data));
            }
            Step::Hypercall
        }
        VcpuExit::X86Rdmsr(exit) => {
            if SYNTHETIC_MSRS.contains(exit.index) {
                match hyperv.read_msr(exit.index) {
                    Ok(value) => *exit.data = value,
                    Err(_) => *exit.error = 1,
                }
            } else {
                // Unknown to KVM or invalid: #GP, as KVM itself would do.
                *exit.error = 1;
            }
            if let Some(n) = trace {
                let result = if *exit.error != 0 {
                    "#GP".to_string()
                } else {
                    format!("{:#x}", *exit.data)
                };
                eprintln!("[exit {n}] rdmsr {} -> {result}", msr_name(exit.index));
            }
            Step::Resume
        }
        VcpuExit::X86Wrmsr(exit) => {
            let ok = SYNTHETIC_MSRS.contains(exit.index)
                && hyperv.write_msr(memory, exit.index, exit.data).is_ok();
            if !ok {
                *exit.error = 1;
            }
            if let Some(n) = trace {
                let gp = if ok { "" } else { " -> #GP" };
                eprintln!(
                    "[exit {n}] wrmsr {} <- {:#x}{gp}",
                    msr_name(exit.index),
                    exit.data
                );
            }
            Step::Resume
        }
        VcpuExit::IoOut(port, data) => {
            let Some((device, offset)) = bus.find(port) else {
                return Step::Unexpected(Some(UnexpectedExit::PortWrite {
                    port,
                    data: data.to_vec(),
                }));
            };
            if let Some(n) = trace {
                eprintln!(
                    "[exit {n}] io out {port:#06x} [{}] {}",
                    Hex(data),
                    device.name()
                );
            }
            match device.write(offset, data) {
                Ok(PortAction::Continue) => Step::Resume,
                Ok(PortAction::PowerOff { status }) => Step::PowerOff(status),
                Err(error) => Step::Device {
                    device: device.name(),
                    port,
                    error,
                },
            }
        }
        VcpuExit::IoIn(port, data) => {
            let Some((device, offset)) = bus.find(port) else {
                return Step::Unexpected(Some(UnexpectedExit::PortRead {
                    port,
                    size: data.len(),
                }));
            };
            let result = device.read(offset, data);
            if let Some(n) = trace {
                eprintln!(
                    "[exit {n}] io in  {port:#06x} -> [{}] {}",
                    Hex(data),
                    device.name()
                );
            }
            match result {
                Ok(()) => Step::Resume,
                Err(error) => Step::Device {
                    device: device.name(),
                    port,
                    error,
                },
            }
        }
        VcpuExit::MmioWrite(addr, data) if bus.mmio.write(addr, data) => Step::Resume,
        VcpuExit::MmioRead(addr, data) => {
            if bus.mmio.read(addr, data) {
                Step::Resume
            } else {
                Step::Unexpected(Some(UnexpectedExit::MmioRead {
                    addr,
                    size: data.len(),
                }))
            }
        }
        VcpuExit::MmioWrite(addr, data) => Step::Unexpected(Some(UnexpectedExit::MmioWrite {
            addr,
            data: data.to_vec(),
        })),
        VcpuExit::Hlt => Step::Unexpected(Some(UnexpectedExit::Halt)),
        VcpuExit::Shutdown => Step::Unexpected(Some(UnexpectedExit::Shutdown)),
        VcpuExit::FailEntry(reason, cpu) => {
            Step::Unexpected(Some(UnexpectedExit::FailEntry { reason, cpu }))
        }
        // A signal interrupted the guest, or the irq window opened: nothing to do.
        VcpuExit::Intr | VcpuExit::IrqWindowOpen => {
            if let Some(n) = trace {
                eprintln!("[exit {n}] {exit:?}");
            }
            Step::Resume
        }
        // Internal errors and the rest: the details are read from `kvm_run` once the exit's
        // borrow of the vCPU has ended.
        _ => Step::Unexpected(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_exits() {
        let write = UnexpectedExit::PortWrite {
            port: 0x80,
            data: vec![0x41, 0x42],
        };
        assert_eq!(
            write.to_string(),
            "2-byte write to port 0x80, which has no device (data 41 42)"
        );
        let internal = UnexpectedExit::InternalError(InternalError {
            suberror: 1,
            data: vec![0, 0xc5fe],
        });
        assert_eq!(
            internal.to_string(),
            "kvm internal error 1 (instruction emulation failed), data [0x0, 0xc5fe]"
        );
        assert_eq!(
            UnexpectedExit::Other { reason: 8 }.to_string(),
            "unhandled exit 8 (KVM_EXIT_SHUTDOWN)"
        );
    }
}
