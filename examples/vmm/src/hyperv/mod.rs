//! The Hyper-V interface, served entirely from user space (KVM here has no in-kernel Hyper-V):
//!
//! * CPUID: `hv-hypercall`'s leaf set for [`Enlightenments::linux_vmbus`] replaces KVM's
//!   hypervisor leaves ([`cpuid`]);
//! * synthetic MSRs 0x40000000–0x400001FF ([`SYNTHETIC_MSRS`]): a KVM MSR filter denies them, so
//!   every `rdmsr`/`wrmsr` exits to the VMM, which serves it from `hv-hypercall`'s
//!   [`Partition`]/[`VirtualProcessor`] model; a model error becomes a #GP in the guest;
//! * hypercalls: when the guest enables the hypercall page, the model writes a port-I/O page
//!   (`out` [`HYPERCALL_PORT`], `al`; `ret`) into guest RAM; the exit for that `out` runs the
//!   [`Dispatcher`] on the vCPU's registers.
//!
//! Hypercalls served: `HvPostMessage` on VMBus connections 1 and 4 with message type 1 (queued
//! for the [`vmbus`] host; `HV_STATUS_INSUFFICIENT_BUFFERS` while 64 posts wait because the
//! guest does not take the answers; another type answers `HV_STATUS_INVALID_PARAMETER`);
//! `HvSignalEvent` on an open channel's connection (flag 0) or on
//! [`DIAGNOSTIC_CONNECTION_ID`] (counted); every other connection answers
//! `HV_STATUS_INVALID_CONNECTION_ID`. Every other call code gets
//! `HV_STATUS_INVALID_HYPERCALL_CODE` from the dispatcher.
//!
//! The reference TSC page is published invalid (sequence 0), so guests read `TIME_REF_COUNT`,
//! which counts 100 ns units since the VM was created.

pub mod cpuid;
pub mod ring_pages;
pub mod rings;
#[cfg(test)]
pub mod testing;
pub mod vmbus;

use std::time::Instant;

use hv_hypercall::cpuid_builder::{CpuidError, CpuidLeaves, Enlightenments};
use hv_hypercall::defs::{HvMsr, HvStatus};
use hv_hypercall::dispatch::{
    CallingConvention, DispatchConfig, DispatchOutcome, Dispatcher, HypercallHandler,
    PostMessageRequest, SignalEventRequest, X64Registers,
};
use hv_hypercall::hypercall_page::{HypercallPage, HypercallPageError, HypercallPageKind};
use hv_hypercall::synic::{
    InterruptSink, MsrError, Partition, PartitionConfig, ReferenceClock, SintInterrupt,
    VirtualProcessor, VpEnv,
};

use crate::memory::GuestMemory;
use crate::timeline::Timeline;
use vmbus::{DemoConfig, VmbusHost};

/// The I/O port the hypercall page traps through. Not one of the ports KVM's in-kernel devices
/// claim (`HypercallPageKind::port_io` refuses those) nor one of the VMM's devices.
pub const HYPERCALL_PORT: u8 = 0x99;

/// The synthetic MSRs whose accesses exit to the VMM: 0x40000000–0x400001FF.
pub const SYNTHETIC_MSRS: MsrRange = MsrRange {
    base: 0x4000_0000,
    count: 0x200,
};

/// The event connection the test guest signals to prove the hypercall path end to end. It has
/// one event flag (0). VMBus channels get their own connection ids later.
pub const DIAGNOSTIC_CONNECTION_ID: u32 = 0x7f00;

/// A range of MSR indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsrRange {
    /// The first MSR.
    pub base: u32,
    /// How many MSRs.
    pub count: u32,
}

impl MsrRange {
    /// Whether `msr` is in the range.
    pub fn contains(self, msr: u32) -> bool {
        msr.wrapping_sub(self.base) < self.count
    }
}

/// An error setting up the Hyper-V interface.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HypervError {
    /// The CPUID builder refused the feature choice.
    #[error("cannot build the Hyper-V cpuid leaves")]
    Cpuid(#[from] CpuidError),
    /// The hypercall port is unusable.
    #[error("cannot build the hypercall page")]
    HypercallPage(#[from] HypercallPageError),
}

/// The partition's reference clock: 100 ns units since the VM was created.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
}

impl ReferenceClock for Clock {
    fn reference_time(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos() / 100).unwrap_or(u64::MAX)
    }
}

/// Collects the SINT interrupts the model asks for; the exit loop injects them.
#[derive(Debug, Default)]
struct Interrupts(Vec<SintInterrupt>);

impl InterruptSink for Interrupts {
    fn request_interrupt(&mut self, interrupt: SintInterrupt) {
        self.0.push(interrupt);
    }
}

/// Counts of what the guest did through the Hyper-V interface.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Synthetic MSR reads.
    pub msr_reads: u64,
    /// Synthetic MSR writes.
    pub msr_writes: u64,
    /// Hypercalls dispatched.
    pub hypercalls: u64,
    /// Successful `HvSignalEvent`s on [`DIAGNOSTIC_CONNECTION_ID`].
    pub diagnostic_signals: u64,
}

/// The Hyper-V interface of a one-VP partition.
pub struct HyperV {
    features: Enlightenments,
    page: HypercallPage,
    partition: Partition,
    vp: VirtualProcessor,
    dispatcher: Dispatcher,
    clock: Clock,
    interrupts: Interrupts,
    counters: Counters,
    trace: bool,
    timeline: Timeline,
    /// The VMBus host.
    pub vmbus: VmbusHost,
}

impl core::fmt::Debug for HyperV {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HyperV")
            .field("partition", &self.partition)
            .field("vp", &self.vp)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl HyperV {
    /// A partition with one VP, the Linux/VMBus feature set and the port-I/O hypercall page.
    /// With `trace`, hypercalls and synthetic MSR accesses are logged to stderr.
    pub fn new(trace: bool, timeline: Timeline, demo: DemoConfig) -> Result<Self, HypervError> {
        let features = Enlightenments::linux_vmbus(1);
        features.validate()?;
        let page = HypercallPage::new(HypercallPageKind::port_io(HYPERCALL_PORT)?);
        Ok(Self {
            features,
            page,
            partition: Partition::new(PartitionConfig::new(page, &features)),
            vp: VirtualProcessor::new(0),
            dispatcher: Dispatcher::new(DispatchConfig::from_features(features.features())),
            clock: Clock {
                start: timeline.start(),
            },
            interrupts: Interrupts::default(),
            counters: Counters::default(),
            trace,
            timeline,
            vmbus: VmbusHost::new(demo),
        })
    }

    /// The CPUID leaves 0x40000000.. to install.
    pub fn cpuid_leaves(&self) -> CpuidLeaves {
        // `new` validated the features, which is all `cpuid_leaves` can fail on.
        self.features
            .cpuid_leaves()
            .expect("validated in HyperV::new")
    }

    /// The port the hypercall page traps through, once the guest has enabled the page.
    pub fn hypercall_port(&self) -> Option<u16> {
        self.partition
            .hypercalls_enabled()
            .then_some(u16::from(HYPERCALL_PORT))
    }

    /// Bytes of the hypercall page's trap instruction (`out imm8, al`): how far RIP has moved
    /// past it when its exit arrives.
    pub fn hypercall_trap_len(&self) -> u64 {
        self.page.trap_len()
    }

    /// What the guest did so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Serves `rdmsr` of a synthetic MSR.
    pub fn read_msr(&mut self, msr: u32) -> Result<u64, MsrError> {
        self.counters.msr_reads += 1;
        let result = self.vp.read_msr(&self.partition, &self.clock, msr);
        if let (true, Err(e)) = (self.trace, &result) {
            eprintln!("[hv] rdmsr {}: {e}", msr_name(msr));
        }
        result
    }

    /// Serves `wrmsr` of a synthetic MSR (writing the hypercall page, zeroing SynIC pages, ...
    /// in `memory` as the model says).
    pub fn write_msr(
        &mut self,
        memory: &GuestMemory,
        msr: u32,
        value: u64,
    ) -> Result<(), MsrError> {
        self.counters.msr_writes += 1;
        let mut env = VpEnv {
            partition: &self.partition,
            memory,
            clock: &self.clock,
            interrupts: &mut self.interrupts,
        };
        let result = self.vp.write_msr(&mut env, msr, value);
        if let (true, Err(e)) = (self.trace, &result) {
            eprintln!("[hv] wrmsr {}: {e}", msr_name(msr));
        }
        result
    }

    /// Runs the hypercall in `regs` (the vCPU's registers after the page's `out`). On
    /// [`HypercallExit::Retry`] the caller resumes the guest at the trapping instruction.
    pub fn hypercall(&mut self, memory: &GuestMemory, regs: &mut X64Registers) -> HypercallExit {
        self.counters.hypercalls += 1;
        let mut handler = Handler {
            trace: self.trace,
            counters: &mut self.counters,
            vmbus: &mut self.vmbus,
        };
        match self
            .dispatcher
            .dispatch(CallingConvention::X64, regs, memory, &mut handler)
        {
            DispatchOutcome::Completed(result) => {
                if self.trace {
                    eprintln!("[hv] hypercall {:#x} -> {}", regs.rcx, result.call_status());
                }
                HypercallExit::Completed
            }
            DispatchOutcome::Retry(_) => HypercallExit::Retry {
                rewind: self.page.trap_len(),
            },
        }
    }

    /// Runs the VMBus host's pending work (after every exit and on every timer tick);
    /// `exits` is the exit count so far, for the measurements.
    pub fn service(&mut self, memory: &GuestMemory, exits: u64) {
        self.vmbus.service(
            memory,
            &mut self.vp,
            &mut self.interrupts,
            &self.timeline,
            exits,
        );
    }

    /// The timeline the VMM prints on.
    #[allow(dead_code)]
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Takes the SINT interrupts the model requested since the last call.
    pub fn take_interrupts(&mut self) -> Vec<SintInterrupt> {
        std::mem::take(&mut self.interrupts.0)
    }
}

/// How to resume after a hypercall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HypercallExit {
    /// The result is in RAX; resume after the trap.
    Completed,
    /// A rep call continues: resume `rewind` bytes back, at the trapping instruction.
    Retry {
        /// Length of the trapping instruction.
        rewind: u64,
    },
}

/// The hypercalls this VMM serves (see the module documentation).
struct Handler<'a> {
    trace: bool,
    counters: &'a mut Counters,
    vmbus: &'a mut VmbusHost,
}

impl HypercallHandler for Handler<'_> {
    fn post_message(&mut self, request: PostMessageRequest<'_>) -> HvStatus {
        // VMBus: connection 1 (and 4 for INITIATE_CONTACT at ≥ 5.0), message type 1.
        let status = match request.connection_id {
            // A full message buffer: the guest retries later (see `vmbus::messages`).
            1 | 4 if request.message_type.0 == 1 => {
                if self.vmbus.accept_message(request.payload) {
                    HvStatus::SUCCESS
                } else {
                    HvStatus::INSUFFICIENT_BUFFERS
                }
            }
            1 | 4 => HvStatus::INVALID_PARAMETER,
            _ => HvStatus::INVALID_CONNECTION_ID,
        };
        if self.trace {
            eprintln!(
                "[hv] HvPostMessage connection {:#x} type {:#x} ({} bytes) -> {status}",
                request.connection_id,
                request.message_type.0,
                request.payload.len()
            );
        }
        status
    }

    fn signal_event(&mut self, request: SignalEventRequest) -> HvStatus {
        let status = match request {
            SignalEventRequest {
                connection_id: DIAGNOSTIC_CONNECTION_ID,
                flag_number: 0,
            } => {
                self.counters.diagnostic_signals += 1;
                HvStatus::SUCCESS
            }
            SignalEventRequest {
                connection_id: DIAGNOSTIC_CONNECTION_ID,
                ..
            } => HvStatus::INVALID_PARAMETER,
            // A channel's connection: its ring is read after this exit.
            SignalEventRequest {
                connection_id,
                flag_number,
            } => match self.vmbus.channel_of(connection_id) {
                Some(relid) if flag_number == 0 => {
                    self.vmbus.signal(relid);
                    HvStatus::SUCCESS
                }
                Some(_) => HvStatus::INVALID_PARAMETER,
                None => HvStatus::INVALID_CONNECTION_ID,
            },
        };
        if self.trace {
            eprintln!(
                "[hv] HvSignalEvent connection {:#x} flag {} -> {status}",
                request.connection_id, request.flag_number
            );
        }
        status
    }
}

/// An MSR for traces: its number, and its name if it is a synthetic MSR the VMM knows.
pub fn msr_name(msr: u32) -> String {
    let name = match HvMsr(msr) {
        HvMsr::GUEST_OS_ID => "GUEST_OS_ID",
        HvMsr::HYPERCALL => "HYPERCALL",
        HvMsr::VP_INDEX => "VP_INDEX",
        HvMsr::TIME_REF_COUNT => "TIME_REF_COUNT",
        HvMsr::REFERENCE_TSC => "REFERENCE_TSC",
        HvMsr::SCONTROL => "SCONTROL",
        HvMsr::SIMP => "SIMP",
        HvMsr::SIEFP => "SIEFP",
        HvMsr::EOM => "EOM",
        _ => return format!("{msr:#x}"),
    };
    format!("{msr:#x} ({name})")
}

#[cfg(test)]
mod tests {
    use hv_hypercall::defs::{GuestOsId, HypercallCode, HypercallInput, SignalEventInput};
    use hv_hypercall::hypercall_page::OUT_IMM8_AL;
    use hv_hypercall::memory::GuestMemory as _;

    use super::*;

    #[test]
    fn synthetic_msr_range_covers_the_hyper_v_msrs() {
        for msr in [0x4000_0000, 0x4000_0001, 0x4000_0118, 0x4000_01ff] {
            assert!(SYNTHETIC_MSRS.contains(msr), "{msr:#x}");
        }
        for msr in [0x3fff_ffff, 0x4000_0200, 0xc000_0080, 0] {
            assert!(!SYNTHETIC_MSRS.contains(msr), "{msr:#x}");
        }
    }

    #[test]
    fn enables_the_port_io_page_and_dispatches() {
        let memory = GuestMemory::new(0x10_000).unwrap();
        let demo = DemoConfig {
            heartbeat_ms: 1000,
            run_ms: 1000,
            kvp: Vec::new(),
            max_version: vmbus_ring::channel::VmbusVersion::WIN10_V5_3,
            hold_shutdown: None,
        };
        let mut hv = HyperV::new(false, Timeline::new(), demo).unwrap();
        assert_eq!(hv.hypercall_port(), None);
        // Reserved bits → #GP; no identity yet → the page stays disabled.
        assert!(hv.write_msr(&memory, 0x4000_0001, 0x2001 | 0x4).is_err());
        hv.write_msr(&memory, 0x4000_0001, 0x2001).unwrap();
        assert_eq!(hv.hypercall_port(), None);
        hv.write_msr(&memory, 0x4000_0000, GuestOsId::linux(0x060100).0)
            .unwrap();
        hv.write_msr(&memory, 0x4000_0001, 0x2001).unwrap();
        assert_eq!(hv.read_msr(0x4000_0001).unwrap(), 0x2001);
        assert_eq!(hv.hypercall_port(), Some(0x99));
        // The page holds `out 0x99, al` after its endbr64.
        let mut code = [0; 8];
        memory.read(0x2000, &mut code).unwrap();
        let trap = usize::try_from(
            HypercallPage::new(HypercallPageKind::port_io(0x99).unwrap()).trap_offset(),
        )
        .unwrap();
        assert_eq!(code[trap..trap + 2], [OUT_IMM8_AL, 0x99]);
        assert!(
            hv.write_msr(&memory, 0x4000_0002, 1).is_err(),
            "VP_INDEX is read-only"
        );
        assert_eq!(hv.read_msr(0x4000_0002).unwrap(), 0);

        let signal = |connection: u32, flag: u16| X64Registers {
            rcx: HypercallInput::simple(HypercallCode::SIGNAL_EVENT)
                .with_fast(true)
                .0,
            rdx: SignalEventInput::new(connection, flag).to_u64(),
            ..Default::default()
        };
        let mut regs = signal(DIAGNOSTIC_CONNECTION_ID, 0);
        assert_eq!(hv.hypercall(&memory, &mut regs), HypercallExit::Completed);
        assert_eq!(regs.rax, 0);
        let mut regs = signal(DIAGNOSTIC_CONNECTION_ID, 1);
        hv.hypercall(&memory, &mut regs);
        assert_eq!(regs.rax, u64::from(HvStatus::INVALID_PARAMETER.0));
        let mut regs = signal(1, 0);
        hv.hypercall(&memory, &mut regs);
        assert_eq!(regs.rax, u64::from(HvStatus::INVALID_CONNECTION_ID.0));
        let mut regs = X64Registers {
            rcx: 0x46, // HvGetPartitionId: not served
            ..Default::default()
        };
        hv.hypercall(&memory, &mut regs);
        assert_eq!(regs.rax, u64::from(HvStatus::INVALID_HYPERCALL_CODE.0));
        assert_eq!(hv.counters().hypercalls, 4);
        assert_eq!(hv.counters().diagnostic_signals, 1);
    }
}
