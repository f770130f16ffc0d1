//! Deterministic tests of the MSR and SynIC model.

use std::vec::Vec;

use zerocopy::FromBytes;

use super::*;
use crate::cpuid_builder::Enlightenments;
use crate::defs::{HvMessage, HvMessageType, HvStatus, MessageFlags, ReferenceTscPage};
use crate::hypercall_page::{HypercallPage, HypercallPageKind};
use crate::memory::observed::{Access, Observed};
use crate::memory::AtomicMemory;

const SIMP: u64 = 0x10_000;
const SIEFP: u64 = 0x11_000;
const HCALL: u64 = 0x12_000;
const TSC: u64 = 0x13_000;

#[derive(Default)]
struct Sink(Vec<SintInterrupt>);

impl InterruptSink for Sink {
    fn request_interrupt(&mut self, interrupt: SintInterrupt) {
        self.0.push(interrupt);
    }
}

struct Clock {
    now: u64,
    tsc: Option<TscScaleOffset>,
}

impl ReferenceClock for Clock {
    fn reference_time(&self) -> u64 {
        self.now
    }
    fn tsc_page_parameters(&self) -> Option<TscScaleOffset> {
        self.tsc
    }
}

struct World {
    partition: Partition,
    memory: AtomicMemory,
    clock: Clock,
    sink: Sink,
}

impl World {
    fn new() -> Self {
        let page = HypercallPage::new(HypercallPageKind::port_io(0x99).unwrap());
        Self::with(PartitionConfig::new(page, &Enlightenments::linux_vmbus(1)))
    }

    fn with(config: PartitionConfig) -> Self {
        Self {
            partition: Partition::new(config),
            memory: AtomicMemory::new(0x20_000),
            clock: Clock {
                now: 1234,
                tsc: TscScaleOffset::for_frequency(2_000_000_000, 0),
            },
            sink: Sink::default(),
        }
    }

    fn write(&mut self, vp: &mut VirtualProcessor, msr: HvMsr, value: u64) -> Result<(), MsrError> {
        let mut env = VpEnv {
            partition: &self.partition,
            memory: &self.memory,
            clock: &self.clock,
            interrupts: &mut self.sink,
        };
        vp.write_msr(&mut env, msr.0, value)
    }

    fn read(&self, vp: &VirtualProcessor, msr: HvMsr) -> Result<u64, MsrError> {
        vp.read_msr(&self.partition, &self.clock, msr.0)
    }

    /// Linux's SynIC bring-up for `sint` with `vector`.
    fn enable_synic(&mut self, vp: &mut VirtualProcessor, sint: u8, vector: u8) {
        self.write(vp, HvMsr::SIMP, SIMP | 1).unwrap();
        self.write(vp, HvMsr::SIEFP, SIEFP | 1).unwrap();
        self.write(vp, HvMsr::sint(sint).unwrap(), u64::from(vector))
            .unwrap();
        self.write(vp, HvMsr::SCONTROL, 1).unwrap();
    }

    fn post(
        &mut self,
        vp: &mut VirtualProcessor,
        sint: u8,
        n: u8,
    ) -> Result<PostOutcome, PostError> {
        let msg = HvMessage::new(HvMessageType::VMBUS, 0, &[n; 4]).unwrap();
        vp.post_message(&self.memory, &mut self.sink, sint, &msg)
    }

    fn slot(&self, sint: u8) -> HvMessage {
        let mut b = [0u8; 256];
        self.memory
            .read(SIMP + 256 * u64::from(sint), &mut b)
            .unwrap();
        HvMessage::read_from_bytes(&b).unwrap()
    }

    /// The guest side: free the slot; true if it must write EOM.
    fn free(&self, sint: u8) -> bool {
        let gpa = SIMP + 256 * u64::from(sint);
        let ty = self.memory.read_u32(gpa).unwrap();
        assert_ne!(ty, 0);
        assert_eq!(
            self.memory.compare_exchange_u32(gpa, ty, 0).unwrap(),
            Ok(ty)
        );
        let mut flags = [0u8];
        self.memory.read(gpa + 5, &mut flags).unwrap();
        MessageFlags(flags[0]).message_pending()
    }
}

#[test]
fn reset_values_and_read_back() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(3);
    assert_eq!(w.read(&vp, HvMsr::VP_INDEX), Ok(3));
    assert_eq!(w.read(&vp, HvMsr::SVERSION), Ok(1));
    assert_eq!(w.read(&vp, HvMsr::SCONTROL), Ok(1));
    assert_eq!(w.read(&vp, HvMsr::SIMP), Ok(0));
    assert_eq!(w.read(&vp, HvMsr::EOM), Ok(0));
    for n in 0..16 {
        assert_eq!(w.read(&vp, HvMsr::sint(n).unwrap()), Ok(0x10000));
    }
    assert_eq!(w.read(&vp, HvMsr::TIME_REF_COUNT), Ok(1234));
    for (msr, value) in [
        (HvMsr::SIMP, SIMP | 1),
        (HvMsr::SIEFP, SIEFP),
        (HvMsr::SCONTROL, 0),
        (HvMsr::SINT15, 0x30 | 1 << 17 | 1 << 18 | 1 << 20),
        (HvMsr::SINT0, 1 << 16),
        (HvMsr::VP_ASSIST_PAGE, 0x5000 | 1),
        (HvMsr::GUEST_OS_ID, 0x8100_0006_0100_0000),
    ] {
        w.write(&mut vp, msr, value).unwrap();
        assert_eq!(w.read(&vp, msr), Ok(value), "{msr:?}");
    }
}

#[test]
fn table_of_faults() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    let gp = |e: Result<(), MsrError>| e.unwrap_err();
    assert_eq!(
        gp(w.write(&mut vp, HvMsr::VP_INDEX, 1)),
        MsrError::ReadOnly { msr: 0x4000_0002 }
    );
    assert_eq!(
        gp(w.write(&mut vp, HvMsr::SVERSION, 1)),
        MsrError::ReadOnly { msr: 0x4000_0081 }
    );
    assert_eq!(
        gp(w.write(&mut vp, HvMsr::TIME_REF_COUNT, 1)),
        MsrError::ReadOnly { msr: 0x4000_0020 }
    );
    for (msr, value) in [
        (HvMsr::SCONTROL, 2),
        (HvMsr::SIMP, SIMP | 2),
        (HvMsr::SIEFP, SIEFP | 0x800),
        (HvMsr::SINT2, 0x30 | 1 << 8),
        (HvMsr::SINT2, 0x30 | 1 << 19),
        (HvMsr::SINT2, 0x30 | 1 << 21),
        (HvMsr::HYPERCALL, HCALL | 4),
        (HvMsr::REFERENCE_TSC, TSC | 2),
        (HvMsr::VP_ASSIST_PAGE, 0x5000 | 0x10),
    ] {
        assert_eq!(
            gp(w.write(&mut vp, msr, value)),
            MsrError::ReservedBits { msr: msr.0, value },
            "{msr:?}"
        );
    }
    assert_eq!(
        gp(w.write(&mut vp, HvMsr::SINT2, 15)),
        MsrError::InvalidVector {
            sint: 2,
            vector: 15
        }
    );
    assert!(
        w.write(&mut vp, HvMsr::SINT2, 15 | 1 << 16).is_ok(),
        "masked: any vector"
    );
    assert_eq!(w.write(&mut vp, HvMsr::SINT3, 16), Ok(()), "lowest vector");
    for msr in [
        HvMsr::RESET,
        HvMsr::VP_RUNTIME,
        HvMsr::STIMER0_CONFIG,
        HvMsr::CRASH_CTL,
        HvMsr::TSC_FREQUENCY,
        HvMsr(0x4000_01ff),
    ] {
        assert_eq!(
            gp(w.write(&mut vp, msr, 0)),
            MsrError::Unimplemented { msr: msr.0 }
        );
        assert_eq!(
            w.read(&vp, msr),
            Err(MsrError::Unimplemented { msr: msr.0 })
        );
    }
    assert!(matches!(
        gp(w.write(&mut vp, HvMsr::SIMP, 0x100_0000 | 1)),
        MsrError::Page {
            gpa: 0x100_0000,
            ..
        }
    ));
    assert_eq!(
        w.read(&vp, HvMsr::SIMP),
        Ok(0),
        "a failed write changes nothing"
    );
    // Every value read back equals the last successful write.
    assert_eq!(w.read(&vp, HvMsr::SINT2), Ok(15 | 1 << 16));
}

#[test]
fn unadvertised_msrs_fault() {
    let page = HypercallPage::new(HypercallPageKind::Vmcall);
    let mut e = Enlightenments::linux_vmbus(1);
    e.synic = false;
    e.reference_tsc = false;
    e.time_ref_count = false;
    e.tsc_invariant_control = true;
    let mut w = World::with(PartitionConfig::new(page, &e));
    let mut vp = VirtualProcessor::new(0);
    for msr in [
        HvMsr::SCONTROL,
        HvMsr::SVERSION,
        HvMsr::SIEFP,
        HvMsr::SIMP,
        HvMsr::EOM,
        HvMsr::SINT2,
        HvMsr::TIME_REF_COUNT,
        HvMsr::REFERENCE_TSC,
    ] {
        assert_eq!(
            w.read(&vp, msr),
            Err(MsrError::Unimplemented { msr: msr.0 }),
            "{msr:?}"
        );
        assert_eq!(
            w.write(&mut vp, msr, 0),
            Err(MsrError::Unimplemented { msr: msr.0 })
        );
    }
    w.write(&mut vp, HvMsr::TSC_INVARIANT_CONTROL, 1).unwrap();
    assert_eq!(w.read(&vp, HvMsr::TSC_INVARIANT_CONTROL), Ok(1));
    assert!(w.write(&mut vp, HvMsr::TSC_INVARIANT_CONTROL, 2).is_err());
}

#[test]
fn hypercall_page_needs_the_guest_os_id_first() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.memory.write(HCALL, &[0x11; 16]).unwrap();
    w.write(&mut vp, HvMsr::HYPERCALL, HCALL | 1).unwrap();
    assert_eq!(w.read(&vp, HvMsr::HYPERCALL), Ok(HCALL), "enable ignored");
    assert!(!w.partition.hypercalls_enabled());
    assert_eq!(
        w.memory.read_u64(HCALL).unwrap(),
        0x1111_1111_1111_1111,
        "page untouched"
    );

    w.write(&mut vp, HvMsr::GUEST_OS_ID, 0x8100_0006_0100_0000)
        .unwrap();
    w.write(&mut vp, HvMsr::HYPERCALL, HCALL | 1).unwrap();
    assert_eq!(w.read(&vp, HvMsr::HYPERCALL), Ok(HCALL | 1));
    assert!(w.partition.hypercalls_enabled());
    let mut page = [0u8; 4096];
    w.memory.read(HCALL, &mut page).unwrap();
    assert_eq!(page, w.partition.config().hypercall_page.bytes());
    assert_eq!(&page[..7], &[0xf3, 0x0f, 0x1e, 0xfa, 0xe6, 0x99, 0xc3]);

    // Clearing the identity disables hypercalls.
    w.write(&mut vp, HvMsr::GUEST_OS_ID, 0).unwrap();
    assert_eq!(w.read(&vp, HvMsr::HYPERCALL), Ok(HCALL));
    // A page outside memory faults and changes nothing.
    w.write(&mut vp, HvMsr::GUEST_OS_ID, 1).unwrap();
    assert!(matches!(
        w.write(&mut vp, HvMsr::HYPERCALL, 0x40_0000 | 1),
        Err(MsrError::Page { .. })
    ));
    assert_eq!(w.read(&vp, HvMsr::HYPERCALL), Ok(HCALL));
    // Locking freezes the MSR.
    w.write(&mut vp, HvMsr::HYPERCALL, HCALL | 3).unwrap();
    assert_eq!(
        w.write(&mut vp, HvMsr::HYPERCALL, 0),
        Err(MsrError::Locked { msr: 0x4000_0001 })
    );
    assert_eq!(w.read(&vp, HvMsr::HYPERCALL), Ok(HCALL | 3));
    // Even through the identity: clearing it leaves a locked page enabled.
    w.write(&mut vp, HvMsr::GUEST_OS_ID, 0).unwrap();
    assert_eq!(w.read(&vp, HvMsr::HYPERCALL), Ok(HCALL | 3));
    assert!(w.partition.hypercalls_enabled());
}

#[test]
fn reference_tsc_page() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.write(&mut vp, HvMsr::REFERENCE_TSC, TSC | 1).unwrap();
    assert_eq!(w.read(&vp, HvMsr::REFERENCE_TSC), Ok(TSC | 1));
    let mut b = [0u8; 4096];
    w.memory.read(TSC, &mut b).unwrap();
    let page = ReferenceTscPage::read_from_bytes(&b).unwrap();
    let p = w.clock.tsc.unwrap();
    assert_eq!(page.sequence.get(), 1);
    assert_eq!((page.scale.get(), page.offset.get()), (p.scale, p.offset));
    w.partition.refresh_tsc_page(&w.memory, &w.clock).unwrap();
    assert_eq!(w.memory.read_u32(TSC).unwrap(), 2);
    // Without parameters the page is published invalid.
    w.clock.tsc = None;
    w.partition.refresh_tsc_page(&w.memory, &w.clock).unwrap();
    assert_eq!(w.memory.read_u32(TSC).unwrap(), 0);
}

#[test]
fn synic_page_enable_zeroes_stale_data() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.memory.write(SIMP, &[0xff; 4096]).unwrap();
    w.enable_synic(&mut vp, 2, 0xf3);
    assert_eq!(w.memory.read_u64(SIMP + 2 * 256).unwrap(), 0);
    assert_eq!(w.post(&mut vp, 2, 1), Ok(PostOutcome::Delivered));
}

#[test]
fn message_pending_and_eom() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(5);
    w.enable_synic(&mut vp, 2, 0xf3);
    assert_eq!(w.post(&mut vp, 2, 1), Ok(PostOutcome::Delivered));
    assert_eq!(
        w.sink.0,
        [SintInterrupt {
            vp_index: 5,
            sint: 2,
            vector: 0xf3,
            auto_eoi: false
        }]
    );
    assert!(!w.slot(2).flags().message_pending(), "nothing else waits");
    assert_eq!(w.post(&mut vp, 2, 2), Ok(PostOutcome::Queued));
    assert_eq!(w.post(&mut vp, 2, 3), Ok(PostOutcome::Queued));
    assert_eq!(w.sink.0.len(), 1, "no interrupt while the slot is busy");
    assert!(w.slot(2).flags().message_pending(), "host asked for an EOM");
    assert_eq!(w.slot(2).payload(), &[1; 4]);

    // Guest frees the slot; pending was set, so it writes EOM.
    assert!(w.free(2));
    w.write(&mut vp, HvMsr::EOM, 0).unwrap();
    assert_eq!(w.slot(2).payload(), &[2; 4]);
    assert!(
        w.slot(2).flags().message_pending(),
        "message 3 still queued"
    );
    assert_eq!(w.sink.0.len(), 2);
    assert!(w.free(2));
    w.write(&mut vp, HvMsr::EOM, 0).unwrap();
    assert_eq!(w.slot(2).payload(), &[3; 4]);
    assert!(!w.slot(2).flags().message_pending());
    assert!(!w.free(2), "last message: no EOM needed");
    assert_eq!(vp.queued(2), 0);
    // An EOM with nothing queued is harmless.
    w.write(&mut vp, HvMsr::EOM, 0).unwrap();
    assert_eq!(w.memory.read_u32(SIMP + 512).unwrap(), 0);
    assert_eq!(w.sink.0.len(), 3);
}

#[test]
fn masked_and_polled_sints() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.enable_synic(&mut vp, 2, 0xf3);
    w.write(&mut vp, HvMsr::SINT3, 0x40 | 1 << 16).unwrap();
    assert_eq!(w.post(&mut vp, 3, 7), Ok(PostOutcome::Queued));
    assert_eq!(
        w.memory.read_u32(SIMP + 3 * 256).unwrap(),
        0,
        "masked: not delivered"
    );
    assert!(w.sink.0.is_empty());
    // Unmasking delivers.
    w.write(&mut vp, HvMsr::SINT3, 0x40).unwrap();
    assert_eq!(w.slot(3).payload(), &[7; 4]);
    assert_eq!(w.sink.0[0].vector, 0x40);
    // Polling: delivered, no interrupt.
    w.write(&mut vp, HvMsr::SINT4, 0x41 | 1 << 18).unwrap();
    assert_eq!(w.post(&mut vp, 4, 8), Ok(PostOutcome::Delivered));
    assert_eq!(w.sink.0.len(), 1);
    assert_eq!(w.slot(4).payload(), &[8; 4]);
}

#[test]
fn post_errors_map_to_statuses() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    assert_eq!(w.post(&mut vp, 2, 0), Err(PostError::MessagePageDisabled));
    w.enable_synic(&mut vp, 2, 0xf3);
    assert_eq!(
        w.post(&mut vp, 16, 0),
        Err(PostError::InvalidSint { sint: 16 })
    );
    // The slot holds one message; 16 more fill the queue.
    for i in 0..17 {
        assert!(w.post(&mut vp, 2, i).is_ok(), "{i}");
    }
    // Type 0 marks a free slot: refused, not "delivered" into a slot that reads as empty.
    let none = HvMessage::new(HvMessageType::NONE, 7, b"lost").unwrap();
    let refused = vp
        .post_message(&w.memory, &mut w.sink, 2, &none)
        .unwrap_err();
    assert_eq!(refused, PostError::NoMessageType);
    assert_eq!(refused.status(), HvStatus::INVALID_PARAMETER);
    let full = w.post(&mut vp, 2, 99).unwrap_err();
    assert_eq!(full, PostError::QueueFull { sint: 2 });
    assert_eq!(full.status(), HvStatus::INSUFFICIENT_BUFFERS);
    w.write(&mut vp, HvMsr::SCONTROL, 0).unwrap();
    let off = w.post(&mut vp, 2, 0).unwrap_err();
    assert_eq!(off, PostError::SynicDisabled);
    assert_eq!(off.status(), HvStatus::INVALID_SYNIC_STATE);
    // Order survives the disable/enable.
    w.write(&mut vp, HvMsr::SCONTROL, 1).unwrap();
    for i in 0..17 {
        assert_eq!(w.slot(2).payload(), &[i; 4]);
        w.free(2);
        w.write(&mut vp, HvMsr::EOM, 0).unwrap();
    }
    assert_eq!(w.memory.read_u32(SIMP + 512).unwrap(), 0);
}

#[test]
fn hostile_guest_type_in_a_free_slot() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.enable_synic(&mut vp, 2, 0xf3);
    // The guest scribbles a type into its own free slot: the host treats the slot as busy.
    w.memory.write(SIMP + 512, &[0xff; 256]).unwrap();
    assert_eq!(w.post(&mut vp, 2, 1), Ok(PostOutcome::Queued));
    assert_eq!(vp.queued(2), 1);
    assert!(w.sink.0.is_empty());
    assert_eq!(vp.poll(&w.memory, &mut w.sink), Ok(0));
    w.memory.write(SIMP + 512, &[0; 4]).unwrap();
    assert_eq!(vp.poll(&w.memory, &mut w.sink), Ok(1));
    assert_eq!(w.slot(2).payload(), &[1; 4]);
}

#[test]
fn events_raise_only_on_zero_to_one() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(1);
    let signal = |w: &mut World, vp: &mut VirtualProcessor, sint, flag| {
        vp.signal_event(&w.memory, &mut w.sink, sint, flag)
    };
    assert_eq!(
        signal(&mut w, &mut vp, 2, 5),
        Err(SignalError::EventPageDisabled)
    );
    w.enable_synic(&mut vp, 2, 0xf3);
    assert_eq!(signal(&mut w, &mut vp, 2, 5), Ok(true));
    assert_eq!(signal(&mut w, &mut vp, 2, 5), Ok(false), "already set");
    assert_eq!(signal(&mut w, &mut vp, 2, 70), Ok(true), "another bit");
    assert_eq!(w.memory.read_u64(SIEFP + 512).unwrap(), 1 << 5);
    assert_eq!(w.memory.read_u64(SIEFP + 512 + 8).unwrap(), 1 << 6);
    assert_eq!(w.sink.0.len(), 2);
    // Guest clears the word; the next signal raises again.
    w.memory
        .compare_exchange_u64(SIEFP + 512, 1 << 5, 0)
        .unwrap()
        .unwrap();
    assert_eq!(signal(&mut w, &mut vp, 2, 5), Ok(true));
    // Masked SINT: the bit is set but nothing is raised.
    assert_eq!(signal(&mut w, &mut vp, 3, 0), Ok(false));
    assert_eq!(w.memory.read_u64(SIEFP + 768).unwrap(), 1);
    assert_eq!(
        signal(&mut w, &mut vp, 2, 2048),
        Err(SignalError::InvalidFlag { flag: 2048 })
    );
    assert_eq!(
        signal(&mut w, &mut vp, 16, 0),
        Err(SignalError::InvalidSint { sint: 16 })
    );
    assert_eq!(signal(&mut w, &mut vp, 2, 2047), Ok(true));
    assert_eq!(w.memory.read_u64(SIEFP + 512 + 255 - 7).unwrap(), 1 << 63);
    w.write(&mut vp, HvMsr::SCONTROL, 0).unwrap();
    let off = signal(&mut w, &mut vp, 2, 1).unwrap_err();
    assert_eq!(off, SignalError::SynicDisabled);
    assert_eq!(off.status(), HvStatus::INVALID_SYNIC_STATE);
    assert_eq!(w.sink.0.len(), 4);
}

/// `new` needs no type annotation (the queue depth defaults to 16: `let vp =
/// VirtualProcessor::new(0);` alone did not compile); another depth is named at construction.
#[test]
fn queue_depth_is_chosen_by_constructor() {
    let vp = VirtualProcessor::new(7);
    assert!(std::format!("{vp:?}").contains("vp_index: 7"));
    let mut small = VirtualProcessor::<2>::with_queue_depth(1);
    small.reset();
    assert_eq!(small.queued(0), 0);
}

#[test]
fn frequency_and_invariant_tsc_msrs_follow_the_config() {
    // Not advertised (the default enlightenments): both fault.
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    for msr in [HvMsr::APIC_FREQUENCY, HvMsr::TSC_INVARIANT_CONTROL] {
        assert_eq!(
            w.read(&vp, msr),
            Err(MsrError::Unimplemented { msr: msr.0 })
        );
        assert_eq!(
            w.write(&mut vp, msr, 0),
            Err(MsrError::Unimplemented { msr: msr.0 })
        );
    }
    let page = HypercallPage::new(HypercallPageKind::Vmcall);
    let mut e = Enlightenments::linux_vmbus(1);
    e.frequencies = Some(crate::cpuid_builder::Frequencies {
        tsc_hz: 2_400_000_000,
        apic_hz: 200_000_000,
    });
    let mut w = World::with(PartitionConfig::new(page, &e));
    assert_eq!(w.read(&vp, HvMsr::TSC_FREQUENCY), Ok(2_400_000_000));
    assert_eq!(w.read(&vp, HvMsr::APIC_FREQUENCY), Ok(200_000_000));
    for msr in [HvMsr::TSC_FREQUENCY, HvMsr::APIC_FREQUENCY] {
        assert_eq!(
            w.write(&mut vp, msr, 1),
            Err(MsrError::ReadOnly { msr: msr.0 })
        );
    }
}

#[test]
fn synic_pages_are_zeroed_only_when_newly_enabled_or_moved() {
    const OTHER: u64 = 0x15_000;
    const THIRD: u64 = 0x16_000;
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    let stale = |w: &World, gpa: u64| w.memory.write(gpa, &[0xff; 4096]).unwrap();
    let zeroed = |w: &World, gpa: u64| {
        let mut b = [0u8; 4096];
        w.memory.read(gpa, &mut b).unwrap();
        match b {
            b if b == [0; 4096] => true,
            b if b == [0xff; 4096] => false,
            _ => panic!("page at {gpa:#x} partly written"),
        }
    };
    // Written disabled, then enabled at the same page: newly enabled.
    w.write(&mut vp, HvMsr::SIMP, SIMP).unwrap();
    stale(&w, SIMP);
    w.write(&mut vp, HvMsr::SIMP, SIMP | 1).unwrap();
    assert!(zeroed(&w, SIMP));
    // The same value again, also after the SIEFP is enabled elsewhere: left alone.
    stale(&w, SIMP);
    w.write(&mut vp, HvMsr::SIMP, SIMP | 1).unwrap();
    w.write(&mut vp, HvMsr::SIEFP, SIEFP | 1).unwrap();
    w.write(&mut vp, HvMsr::SIMP, SIMP | 1).unwrap();
    assert!(!zeroed(&w, SIMP));
    // Moved while enabled: the new page is zeroed.
    stale(&w, OTHER);
    w.write(&mut vp, HvMsr::SIMP, OTHER | 1).unwrap();
    assert!(zeroed(&w, OTHER));
    // Disabled (even at another page): nothing is touched.
    stale(&w, THIRD);
    w.write(&mut vp, HvMsr::SIMP, THIRD).unwrap();
    assert!(!zeroed(&w, THIRD));
    assert_eq!(w.read(&vp, HvMsr::SIMP), Ok(THIRD));
}

#[test]
fn without_zeroing_the_whole_page_must_still_be_memory() {
    // Memory ends 8 bytes short of the page at 0x1f000.
    let page = HypercallPage::new(HypercallPageKind::Vmcall);
    let mut config = PartitionConfig::new(page, &Enlightenments::linux_vmbus(1));
    config.zero_synic_pages = false;
    let mut w = World::with(config);
    w.memory = AtomicMemory::new(0x1f_ff8);
    let mut vp = VirtualProcessor::new(0);
    assert!(matches!(
        w.write(&mut vp, HvMsr::SIMP, 0x1f_000 | 1),
        Err(MsrError::Page { gpa: 0x1f_000, .. })
    ));
    assert_eq!(w.read(&vp, HvMsr::SIMP), Ok(0));
    // A page that ends exactly where memory ends is accepted, and its contents are kept.
    w.memory = AtomicMemory::new(0x1f_000);
    w.memory.write(0x1e_000, &[0x5a; 8]).unwrap();
    w.write(&mut vp, HvMsr::SIMP, 0x1e_000 | 1).unwrap();
    assert_eq!(w.memory.read_u64(0x1e_000).unwrap(), 0x5a5a_5a5a_5a5a_5a5a);
}

#[test]
fn hypercall_page_moves_with_the_msr() {
    const MOVED: u64 = 0x14_000;
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.write(&mut vp, HvMsr::GUEST_OS_ID, 1).unwrap();
    w.write(&mut vp, HvMsr::HYPERCALL, HCALL | 1).unwrap();
    w.write(&mut vp, HvMsr::HYPERCALL, MOVED | 1).unwrap();
    let mut page = [0u8; 4096];
    w.memory.read(MOVED, &mut page).unwrap();
    assert_eq!(page, w.partition.config().hypercall_page.bytes());
}

#[test]
fn disabled_synic_or_message_page_holds_the_queue() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.enable_synic(&mut vp, 2, 0xf3);
    assert_eq!(w.post(&mut vp, 2, 1), Ok(PostOutcome::Delivered));
    assert_eq!(w.post(&mut vp, 2, 2), Ok(PostOutcome::Queued));
    assert!(w.free(2));
    // SynIC off: neither the SCONTROL write nor a poll delivers.
    w.write(&mut vp, HvMsr::SCONTROL, 0).unwrap();
    assert_eq!(vp.poll(&w.memory, &mut w.sink), Ok(0));
    assert_eq!(w.memory.read_u32(SIMP + 512).unwrap(), 0);
    // Message page off: same.
    w.write(&mut vp, HvMsr::SIMP, SIMP).unwrap();
    w.write(&mut vp, HvMsr::SCONTROL, 1).unwrap();
    assert_eq!(vp.poll(&w.memory, &mut w.sink), Ok(0));
    assert_eq!(w.memory.read_u32(SIMP + 512).unwrap(), 0);
    assert_eq!(vp.queued(2), 1);
    assert_eq!(w.sink.0.len(), 1);
    // Both on again: delivered by the enabling write.
    w.write(&mut vp, HvMsr::SIMP, SIMP | 1).unwrap();
    assert_eq!(w.slot(2).payload(), &[2; 4]);
    assert_eq!(w.sink.0.len(), 2);
}

#[test]
fn slot_freed_while_asking_for_eom_is_used_at_once() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(0);
    w.enable_synic(&mut vp, 2, 0xf3);
    assert_eq!(w.post(&mut vp, 2, 1), Ok(PostOutcome::Delivered));
    // The guest frees the slot at the moment the host asks it for an EOM.
    let racing = Observed {
        inner: &w.memory,
        hook: |m: &AtomicMemory, a| {
            if let Access::FetchOr { gpa } = a {
                m.write(gpa & !0xff, &[0; 4]).unwrap();
            }
        },
    };
    let msg = HvMessage::new(HvMessageType::VMBUS, 0, &[2; 4]).unwrap();
    assert_eq!(
        vp.post_message(&racing, &mut w.sink, 2, &msg),
        Ok(PostOutcome::Delivered)
    );
    assert_eq!(w.slot(2).payload(), &[2; 4]);
    assert_eq!(vp.queued(2), 0);
}

/// A clock with only a reference time: no TSC page parameters.
struct TimeOnly;

impl ReferenceClock for TimeOnly {
    fn reference_time(&self) -> u64 {
        77
    }
}

#[test]
fn borrowed_clock_and_sink_forward_every_call() {
    let mut w = World::new();
    w.clock.tsc = Some(TscScaleOffset {
        scale: 0x1234_5678_9abc_def0,
        offset: -5,
    });
    let mut vp = VirtualProcessor::new(4);
    assert_eq!(
        vp.read_msr(&w.partition, &&w.clock, HvMsr::TIME_REF_COUNT.0),
        Ok(1234)
    );
    w.write(&mut vp, HvMsr::REFERENCE_TSC, TSC | 1).unwrap();
    w.memory.write(TSC, &[0xee; 24]).unwrap();
    w.partition.refresh_tsc_page(&w.memory, &&w.clock).unwrap();
    let mut b = [0u8; 4096];
    w.memory.read(TSC, &mut b).unwrap();
    let page = ReferenceTscPage::read_from_bytes(&b).unwrap();
    assert_eq!(page.scale.get(), 0x1234_5678_9abc_def0);
    assert_eq!(page.offset.get(), -5);
    assert_ne!(page.sequence.get(), 0);
    // A clock that gives no parameters publishes the page invalid.
    w.partition.refresh_tsc_page(&w.memory, &TimeOnly).unwrap();
    assert_eq!(w.memory.read_u32(TSC).unwrap(), 0);
    assert_eq!(
        vp.read_msr(&w.partition, &TimeOnly, HvMsr::TIME_REF_COUNT.0),
        Ok(77)
    );
    // The sink through a reference.
    w.enable_synic(&mut vp, 2, 0xf3);
    let msg = HvMessage::new(HvMessageType::VMBUS, 0, &[1; 4]).unwrap();
    let mut sink = &mut w.sink;
    assert_eq!(
        vp.post_message(&w.memory, &mut sink, 2, &msg),
        Ok(PostOutcome::Delivered)
    );
    assert_eq!(w.sink.0.len(), 1);
    assert_eq!(w.sink.0[0].vp_index, 4);
}

#[test]
fn reset_keeps_only_the_vp_index() {
    let mut w = World::new();
    let mut vp = VirtualProcessor::new(6);
    w.enable_synic(&mut vp, 2, 0xf3);
    assert_eq!(w.post(&mut vp, 2, 1), Ok(PostOutcome::Delivered));
    assert_eq!(w.post(&mut vp, 2, 2), Ok(PostOutcome::Queued));
    vp.reset();
    assert_eq!(vp.vp_index(), 6);
    assert_eq!(vp.queued(2), 0);
    assert_eq!(w.read(&vp, HvMsr::SIMP), Ok(0));
    assert_eq!(w.read(&vp, HvMsr::SINT2), Ok(1 << 16));
    assert_eq!(w.read(&vp, HvMsr::SCONTROL), Ok(1));
    let env = VpEnv {
        partition: &w.partition,
        memory: &w.memory,
        clock: &w.clock,
        interrupts: &mut w.sink,
    };
    assert!(std::format!("{env:?}").starts_with("VpEnv { partition: Partition"));
    assert_eq!(
        std::format!("{:?}", MessageQueue::<4>::new()),
        "MessageQueue { len: 0, capacity: 4 }"
    );
}
