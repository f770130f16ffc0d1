//! The guest side against the host side of this crate: detection from the CPUID builder's
//! leaves, bring-up through the MSR model, hypercalls through the dispatcher, messages and
//! events through the SynIC model, and the TSC page.

use std::vec::Vec;

use super::*;
use crate::cpuid_builder::Enlightenments;
use crate::defs::{
    GuestOsId, HvMessage, HvMsr, MiscFeatures, TscScaleOffset, MAX_REP_COUNT, VMBUS_SINT,
};
use crate::dispatch::{
    CallShape, CallingConvention, DispatchConfig, Dispatcher, GenericCall, HypercallHandler,
    PostMessageRequest, RepResult, SignalEventRequest, X64Registers,
};
use crate::hypercall_page::{HypercallPage, HypercallPageKind};
use crate::memory::AtomicMemory;
use crate::synic::{
    InterruptSink, MsrError, Partition, PartitionConfig, ReferenceClock, SintInterrupt,
    VirtualProcessor, VpEnv,
};

const HCALL: u64 = 0x1000;
const IN: u64 = 0x2000;
const OUT: u64 = 0x3000;
const SIMP: u64 = 0x4000;
const SIEFP: u64 = 0x5000;
const TSC: u64 = 0x6000;
const MSG_CONN: u32 = 1;
const EVENT_CONN: u32 = 5;

#[derive(Default)]
struct Sink(Vec<SintInterrupt>);

impl InterruptSink for Sink {
    fn request_interrupt(&mut self, interrupt: SintInterrupt) {
        self.0.push(interrupt);
    }
}

struct Clock(Option<TscScaleOffset>);

impl ReferenceClock for Clock {
    fn reference_time(&self) -> u64 {
        777
    }
    fn tsc_page_parameters(&self) -> Option<TscScaleOffset> {
        self.0
    }
}

/// The VMM: partition, one VP, a dispatcher, and a handler that routes connection 1 to
/// messages on SINT 2 and connection 5 to event flags on SINT 2.
struct Host<'m> {
    memory: &'m AtomicMemory,
    partition: Partition,
    vp: VirtualProcessor,
    clock: Clock,
    sink: Sink,
    dispatcher: Dispatcher,
    rep_budget: u16,
    enlightenments: Enlightenments,
}

struct Router<'a> {
    vp: &'a mut VirtualProcessor,
    memory: &'a AtomicMemory,
    sink: &'a mut Sink,
    rep_budget: u16,
}

impl HypercallHandler for Router<'_> {
    fn post_message(&mut self, r: PostMessageRequest<'_>) -> HvStatus {
        if r.connection_id != MSG_CONN {
            return HvStatus::INVALID_CONNECTION_ID;
        }
        let Some(msg) = HvMessage::new(r.message_type, u64::from(r.connection_id), r.payload)
        else {
            return HvStatus::INVALID_PARAMETER;
        };
        match self
            .vp
            .post_message(self.memory, self.sink, VMBUS_SINT, &msg)
        {
            Ok(_) => HvStatus::SUCCESS,
            Err(e) => e.status(),
        }
    }

    fn signal_event(&mut self, r: SignalEventRequest) -> HvStatus {
        if r.connection_id != EVENT_CONN {
            return HvStatus::INVALID_CONNECTION_ID;
        }
        match self
            .vp
            .signal_event(self.memory, self.sink, VMBUS_SINT, u32::from(r.flag_number))
        {
            Ok(_) => HvStatus::SUCCESS,
            Err(e) => e.status(),
        }
    }

    fn shape(&self, code: HypercallCode) -> Option<CallShape> {
        (code == HypercallCode::GET_VP_REGISTERS).then_some(CallShape::Rep {
            header_size: 8,
            input_element_size: 8,
            output_element_size: 8,
            variable_header: false,
        })
    }

    fn call(&mut self, call: GenericCall<'_>, output: &mut [u8]) -> RepResult {
        let n = (call.elements.len() / 8).min(usize::from(self.rep_budget));
        for i in 0..n {
            let v = u64::from_le_bytes(call.elements[8 * i..8 * i + 8].try_into().unwrap());
            output[8 * i..8 * i + 8].copy_from_slice(&(v + 1000).to_le_bytes());
        }
        RepResult {
            status: HvStatus::SUCCESS,
            completed: n as u16,
        }
    }
}

impl<'m> Host<'m> {
    fn new(memory: &'m AtomicMemory) -> Self {
        let enlightenments = Enlightenments::linux_vmbus(1);
        let page = HypercallPage::new(HypercallPageKind::port_io(0x99).unwrap());
        Self {
            memory,
            partition: Partition::new(PartitionConfig::new(page, &enlightenments)),
            vp: VirtualProcessor::new(0),
            clock: Clock(TscScaleOffset::for_frequency(3_000_000_000, 0)),
            sink: Sink::default(),
            dispatcher: Dispatcher::new(DispatchConfig::from_features(enlightenments.features())),
            rep_budget: u16::MAX,
            enlightenments,
        }
    }
}

impl HypercallInvoke for Host<'_> {
    fn invoke(&mut self, control: u64, rdx: u64, r8: u64) -> u64 {
        assert!(
            self.partition.hypercalls_enabled(),
            "called before enabling"
        );
        let mut regs = X64Registers {
            rcx: control,
            rdx,
            r8,
            ..Default::default()
        };
        let mut router = Router {
            vp: &mut self.vp,
            memory: self.memory,
            sink: &mut self.sink,
            rep_budget: self.rep_budget,
        };
        self.dispatcher
            .dispatch(CallingConvention::X64, &mut regs, self.memory, &mut router);
        regs.rax
    }
}

impl MsrAccess for Host<'_> {
    fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault> {
        self.vp
            .read_msr(&self.partition, &self.clock, msr)
            .map_err(|_: MsrError| MsrFault { msr })
    }

    fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), MsrFault> {
        let mut env = VpEnv {
            partition: &self.partition,
            memory: self.memory,
            clock: &self.clock,
            interrupts: &mut self.sink,
        };
        self.vp
            .write_msr(&mut env, msr, value)
            .map_err(|_| MsrFault { msr })
    }
}

impl CpuidAccess for Host<'_> {
    fn cpuid(&mut self, function: u32) -> [u32; 4] {
        if function == 1 {
            return [0, 0, crate::defs::HYPERVISOR_PRESENT_ECX_BIT, 0];
        }
        let leaves = self.enlightenments.cpuid_leaves().unwrap();
        leaves
            .get(function)
            .map_or([0; 4], |l| [l.eax, l.ebx, l.ecx, l.edx])
    }
}

fn bring_up(host: &mut Host<'_>) {
    let info = detect(host).unwrap();
    assert!(info.privileges.access_synic_msrs());
    enable_hypercalls(host, GuestOsId::linux(0x060100), HCALL).unwrap();
    enable_synic(
        host,
        &SynicSetup {
            simp_gpa: SIMP,
            siefp_gpa: SIEFP,
            sint: VMBUS_SINT,
            vector: 0xf3,
            auto_eoi: !info.hints.deprecate_auto_eoi(),
        },
    )
    .unwrap();
}

#[test]
fn detection_from_the_builders_leaves() {
    let memory = AtomicMemory::new(0x10000);
    let mut host = Host::new(&memory);
    let info = detect(&mut host).unwrap();
    assert_eq!(info.max_leaf, 0x4000_000a);
    assert_eq!(info.max_vps, 1);
    assert!(info.hints.deprecate_auto_eoi());
    assert_eq!(info.features, MiscFeatures::new());

    /// CPUID with one leaf overridden.
    struct Patched<'a, 'm>(&'a mut Host<'m>, u32, [u32; 4]);
    impl CpuidAccess for Patched<'_, '_> {
        fn cpuid(&mut self, function: u32) -> [u32; 4] {
            if function == self.1 {
                self.2
            } else {
                self.0.cpuid(function)
            }
        }
    }
    let kvm = crate::defs::signature_words(*b"KVMKVMKVM\0\0\0");
    let cases: [(u32, [u32; 4], SetupError); 5] = [
        (1, [0; 4], SetupError::NoHypervisor),
        (
            0x4000_0000,
            [0x4000_000a, kvm[0], kvm[1], kvm[2]],
            SetupError::NotHyperV {
                vendor: *b"KVMKVMKVM\0\0\0",
            },
        ),
        (
            0x4000_0000,
            {
                let s = crate::defs::MICROSOFT_HV_SIGNATURE;
                [0x4000_0004, s[0], s[1], s[2]]
            },
            SetupError::MaxLeaf {
                max_leaf: 0x4000_0004,
            },
        ),
        (
            0x4000_0001,
            [0x3023_7648, 0, 0, 0],
            SetupError::Interface {
                interface: 0x3023_7648,
            },
        ),
        (
            0x4000_0003,
            [1 << 5, 0, 0, 0],
            SetupError::MissingPrivileges,
        ),
    ];
    for (leaf, regs, err) in cases {
        assert_eq!(detect(&mut Patched(&mut host, leaf, regs)), Err(err));
    }
}

#[test]
fn bring_up_programs_the_model() {
    let memory = AtomicMemory::new(0x10000);
    let mut host = Host::new(&memory);
    bring_up(&mut host);
    assert!(host.partition.hypercalls_enabled());
    assert_eq!(host.partition.guest_os_id(), GuestOsId::linux(0x060100));
    assert_eq!(
        memory.read_u32(HCALL).unwrap(),
        u32::from_le_bytes([0xf3, 0x0f, 0x1e, 0xfa])
    );
    assert_eq!(host.vp.simp().gpa(), SIMP);
    assert_eq!(host.vp.siefp().gpa(), SIEFP);
    let sint = host.vp.sint(VMBUS_SINT).unwrap();
    assert_eq!(
        (sint.vector(), sint.masked(), sint.auto_eoi()),
        (0xf3, false, false)
    );

    assert_eq!(
        enable_hypercalls(&mut host, GuestOsId(0), HCALL),
        Err(SetupError::InvalidParameter)
    );
    let bad = SynicSetup {
        simp_gpa: SIMP,
        siefp_gpa: SIEFP,
        sint: 16,
        vector: 0xf3,
        auto_eoi: false,
    };
    assert_eq!(
        enable_synic(&mut host, &bad),
        Err(SetupError::InvalidParameter)
    );
    assert_eq!(
        enable_synic(
            &mut host,
            &SynicSetup {
                sint: 2,
                vector: 15,
                ..bad
            }
        ),
        Err(SetupError::InvalidParameter)
    );
    // Each page misaligned on its own; the lowest vector allowed.
    let good = SynicSetup { sint: 2, ..bad };
    for setup in [
        SynicSetup {
            simp_gpa: SIMP + 8,
            ..good
        },
        SynicSetup {
            siefp_gpa: SIEFP + 8,
            ..good
        },
    ] {
        assert_eq!(
            enable_synic(&mut host, &setup),
            Err(SetupError::InvalidParameter)
        );
    }
    assert_eq!(
        enable_hypercalls(&mut host, GuestOsId::linux(0x060100), HCALL + 8),
        Err(SetupError::InvalidParameter)
    );
    enable_synic(&mut host, &SynicSetup { vector: 16, ..good }).unwrap();
    assert_eq!(host.vp.sint(2).unwrap().vector(), 16);
    disable_synic(&mut host, VMBUS_SINT).unwrap();
    assert!(host.vp.sint(VMBUS_SINT).unwrap().masked());
    assert!(!host.vp.simp().enable());
}

#[test]
fn a_hypervisor_that_ignores_the_enable_is_detected() {
    /// Drops every write.
    struct Deaf;
    impl MsrAccess for Deaf {
        fn read_msr(&mut self, _: u32) -> Result<u64, MsrFault> {
            Ok(0)
        }
        fn write_msr(&mut self, _: u32, _: u64) -> Result<(), MsrFault> {
            Ok(())
        }
    }
    assert_eq!(
        enable_hypercalls(&mut Deaf, GuestOsId::linux(1), HCALL),
        Err(SetupError::HypercallPageNotEnabled)
    );
}

#[test]
fn messages_round_trip_through_the_model() {
    let memory = AtomicMemory::new(0x10000);
    let mut host = Host::new(&memory);
    bring_up(&mut host);
    // Three posts from the guest to itself (the router targets this VP).
    {
        let mut hc = Hypercalls::new(&mut host, &memory, IN, OUT);
        for i in 0..3u8 {
            hc.post_message(MSG_CONN, HvMessageType::VMBUS, &[i; 10])
                .unwrap();
        }
        assert_eq!(
            hc.post_message(9, HvMessageType::VMBUS, b"x"),
            Err(HypercallError::Status {
                status: HvStatus::INVALID_CONNECTION_ID,
                completed: 0
            })
        );
        assert_eq!(
            hc.post_message(MSG_CONN, HvMessageType(0x8000_0000), b"x"),
            Err(HypercallError::InvalidMessageType {
                message_type: HvMessageType(0x8000_0000)
            })
        );
        assert_eq!(
            hc.post_message(MSG_CONN, HvMessageType::VMBUS, &[0; 241]),
            Err(HypercallError::PayloadTooLarge { len: 241 })
        );
    }
    assert_eq!(
        host.sink.0.len(),
        1,
        "one interrupt: the slot was free once"
    );
    for i in 0..3u8 {
        let msg = receive_message(&memory, &mut host, SIMP, VMBUS_SINT)
            .unwrap()
            .expect("a message");
        assert_eq!(msg.payload(), &[i; 10]);
        assert_eq!(msg.header.sender.get(), u64::from(MSG_CONN));
    }
    assert_eq!(
        receive_message(&memory, &mut host, SIMP, VMBUS_SINT),
        Ok(None)
    );
    assert_eq!(host.sink.0.len(), 3, "each EOM delivery raised the SINT");
    assert_eq!(host.vp.queued(VMBUS_SINT), 0);
    assert_eq!(
        receive_message(&memory, &mut host, SIMP, 16),
        Err(SynicError::InvalidSint { sint: 16 })
    );
}

#[test]
fn events_round_trip_through_the_model() {
    let memory = AtomicMemory::new(0x10000);
    let mut host = Host::new(&memory);
    bring_up(&mut host);
    {
        let mut hc = Hypercalls::new(&mut host, &memory, IN, OUT);
        hc.signal_event(EVENT_CONN, 3).unwrap();
        hc.signal_event(EVENT_CONN, 3).unwrap();
        hc.signal_event(EVENT_CONN, 2047).unwrap();
        assert_eq!(
            hc.signal_event(EVENT_CONN, 2048),
            Err(HypercallError::Status {
                status: HvStatus::INVALID_PARAMETER,
                completed: 0
            })
        );
    }
    assert_eq!(host.sink.0.len(), 2, "the repeated flag raised nothing");
    let mut flags = Vec::new();
    assert_eq!(
        take_event_flags(&memory, SIEFP, VMBUS_SINT, |f| flags.push(f)),
        Ok(2)
    );
    assert_eq!(flags, [3, 2047]);
    assert_eq!(
        take_event_flags(&memory, SIEFP, VMBUS_SINT, |_| panic!("taken")),
        Ok(0)
    );
}

#[test]
fn rep_calls_restart_until_done() {
    let memory = AtomicMemory::new(0x10000);
    let mut host = Host::new(&memory);
    bring_up(&mut host);
    host.rep_budget = 3;
    let elements: Vec<u8> = (0..10u64).flat_map(|v| v.to_le_bytes()).collect();
    let mut out = [0u8; 80];
    let mut hc = Hypercalls::new(&mut host, &memory, IN, OUT);
    assert_eq!(
        hc.call_rep(
            HypercallCode::GET_VP_REGISTERS,
            &[0; 8],
            &elements,
            8,
            8,
            &mut out
        ),
        Ok(10)
    );
    for i in 0..10 {
        assert_eq!(
            u64::from_le_bytes(out[8 * i..8 * i + 8].try_into().unwrap()),
            1000 + i as u64
        );
    }
    assert!(matches!(
        hc.call_rep(
            HypercallCode::GET_VP_REGISTERS,
            &[0; 8],
            &[],
            8,
            8,
            &mut out
        ),
        Err(HypercallError::TooLarge { .. })
    ));
    assert!(matches!(
        hc.call_rep(
            HypercallCode::GET_VP_REGISTERS,
            &[0; 8],
            &elements,
            8,
            8,
            &mut [0; 8]
        ),
        Err(HypercallError::TooLarge { .. })
    ));
    assert_eq!(host.partition.guest_os_id(), GuestOsId::linux(0x060100));
}

#[test]
fn rep_loop_refuses_a_hypervisor_that_makes_no_progress() {
    /// Answers every call with a fixed result.
    struct Fixed(u64);
    impl HypercallInvoke for Fixed {
        fn invoke(&mut self, _: u64, _: u64, _: u64) -> u64 {
            self.0
        }
    }
    let memory = AtomicMemory::new(0x10000);
    for (result, expected) in [
        (0, HypercallError::MalformedResult { result: 0 }),
        (5 << 32, HypercallError::MalformedResult { result: 5 << 32 }),
        (1 << 20, HypercallError::MalformedResult { result: 1 << 20 }),
        // Reserved bits set on an otherwise complete answer, in either reserved field.
        (
            4 << 32 | 1 << 20,
            HypercallError::MalformedResult {
                result: 4 << 32 | 1 << 20,
            },
        ),
        (
            4 << 32 | 1 << 50,
            HypercallError::MalformedResult {
                result: 4 << 32 | 1 << 50,
            },
        ),
        (
            0x13 | 1 << 32,
            HypercallError::Status {
                status: HvStatus::INSUFFICIENT_BUFFERS,
                completed: 1,
            },
        ),
    ] {
        let mut hc = Hypercalls::new(Fixed(result), &memory, IN, OUT);
        let err = hc
            .call_rep(
                HypercallCode::GET_VP_REGISTERS,
                &[],
                &[0; 32],
                8,
                0,
                &mut [],
            )
            .unwrap_err();
        assert_eq!(err, expected);
    }
}

/// A TSC that lets the host update the page the first time it is read.
struct RacingTsc<'a> {
    memory: &'a AtomicMemory,
    reads: u32,
    value: u64,
}

impl TscSource for RacingTsc<'_> {
    fn rdtsc(&mut self) -> u64 {
        self.reads += 1;
        if self.reads == 1 {
            // The host republishes the page between the guest's two sequence reads.
            self.memory.write(TSC, &7u32.to_le_bytes()).unwrap();
        }
        self.value
    }
}

#[test]
fn reference_tsc_read_retries_on_a_sequence_change() {
    let memory = AtomicMemory::new(0x10000);
    let mut host = Host::new(&memory);
    bring_up(&mut host);
    host.write_msr(crate::defs::HvMsr::REFERENCE_TSC.0, TSC | 1)
        .unwrap();
    let params = host.clock.0.unwrap();
    let mut tsc = RacingTsc {
        memory: &memory,
        reads: 0,
        value: 3_000_000_000,
    };
    let t = read_reference_time(&memory, TSC, &mut tsc)
        .unwrap()
        .unwrap();
    assert_eq!(tsc.reads, 2, "retried once");
    assert_eq!(t, params.reference_time(3_000_000_000));
    assert!((9_999_999..=10_000_000).contains(&t));
    // A valid page is used (not TIME_REF_COUNT), here through a `&mut` TSC source.
    let mut by_ref = &mut tsc;
    assert_eq!(reference_time(&memory, TSC, &mut by_ref, &mut host), Ok(t));

    // An invalid page falls back to TIME_REF_COUNT.
    host.clock.0 = None;
    host.partition
        .refresh_tsc_page(&memory, &host.clock)
        .unwrap();
    let mut tsc = RacingTsc {
        memory: &memory,
        reads: 10,
        value: 0,
    };
    assert_eq!(read_reference_time(&memory, TSC, &mut tsc), Ok(None));
    assert_eq!(reference_time(&memory, TSC, &mut tsc, &mut host), Ok(777));
}

#[test]
fn msr_access_through_a_reference_reaches_the_target() {
    let memory = AtomicMemory::new(0x10000);
    let mut host = Host::new(&memory);
    let mut by_ref: &mut Host<'_> = &mut host;
    enable_hypercalls(&mut by_ref, GuestOsId::linux(0x060100), HCALL).unwrap();
    assert_eq!(
        MsrAccess::read_msr(&mut by_ref, HvMsr::GUEST_OS_ID.0),
        Ok(GuestOsId::linux(0x060100).0)
    );
    assert_eq!(
        MsrAccess::read_msr(&mut by_ref, HvMsr::HYPERCALL.0),
        Ok(HCALL | 1)
    );
    assert!(host.partition.hypercalls_enabled());
}

/// Answers every call with a fixed result.
struct Fixed(u64);

impl HypercallInvoke for Fixed {
    fn invoke(&mut self, _: u64, _: u64, _: u64) -> u64 {
        self.0
    }
}

#[test]
fn slow_calls_read_the_output_page_only_on_success() {
    let memory = AtomicMemory::new(0x10000);
    memory.write(OUT, &[0x5a; 16]).unwrap();
    let input = HypercallInput::simple(HypercallCode::POST_MESSAGE);
    let mut hc = Hypercalls::new(Fixed(0), &memory, IN, OUT);
    let mut out = [0u8; 16];
    assert!(hc.call_slow(input, &[1; 8], &mut out).unwrap().is_success());
    assert_eq!(out, [0x5a; 16]);
    let mut in_page = [0u8; 8];
    memory.read(IN, &mut in_page).unwrap();
    assert_eq!(in_page, [1; 8]);
    // A failed call leaves the caller's buffer as it was.
    let failed = HypercallOutput::from_status(HvStatus::INVALID_PARAMETER).0;
    let mut hc = Hypercalls::new(Fixed(failed), &memory, IN, OUT);
    let mut out = [0u8; 16];
    let result = hc.call_slow(input, &[1; 8], &mut out).unwrap();
    assert_eq!(result.call_status(), HvStatus::INVALID_PARAMETER);
    assert_eq!(out, [0; 16]);
    // Input and output each fill at most their page.
    let mut hc = Hypercalls::new(Fixed(0), &memory, IN, OUT);
    let page = [0u8; 4096];
    let mut out = [0u8; 4097];
    assert!(hc.call_slow(input, &page, &mut out[..4096]).is_ok());
    let mut too_long = page.to_vec();
    too_long.push(0);
    assert_eq!(
        hc.call_slow(input, &too_long, &mut []),
        Err(HypercallError::TooLarge { len: 4097 })
    );
    assert_eq!(
        hc.call_slow(input, &[], &mut out),
        Err(HypercallError::TooLarge { len: 4097 })
    );
}

#[test]
fn rep_calls_take_whole_elements_up_to_the_rep_limit() {
    let memory = AtomicMemory::new(0x10000);
    let max = usize::from(MAX_REP_COUNT);
    let rep = |elements: &[u8], element_size: usize| {
        // The hypervisor reports every element done.
        let done = (elements.len() / element_size) as u64;
        Hypercalls::new(Fixed(done << 32), &memory, IN, OUT).call_rep(
            HypercallCode::GET_VP_REGISTERS,
            &[],
            elements,
            element_size,
            0,
            &mut [],
        )
    };
    assert_eq!(rep(&vec![0; max], 1), Ok(MAX_REP_COUNT));
    assert_eq!(
        rep(&vec![0; max + 1], 1),
        Err(HypercallError::TooLarge { len: max + 1 })
    );
    assert_eq!(rep(&[0; 4], 2), Ok(2));
    // The header and the elements share the input page: each alone fits, together they must.
    let with_header = |header: &[u8], elements: &[u8]| {
        Hypercalls::new(Fixed(((elements.len() / 8) as u64) << 32), &memory, IN, OUT).call_rep(
            HypercallCode::GET_VP_REGISTERS,
            header,
            elements,
            8,
            0,
            &mut [],
        )
    };
    assert_eq!(with_header(&[0; 16], &[0; 4080]), Ok(510));
    assert_eq!(
        with_header(&[0; 24], &[0; 4080]),
        Err(HypercallError::TooLarge { len: 4104 })
    );
    // One element and a half.
    assert_eq!(rep(&[0; 3], 2), Err(HypercallError::TooLarge { len: 3 }));
}
