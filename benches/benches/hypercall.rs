//! `hv-hypercall` benchmarks: the host-side cost of a hypercall and of a SynIC message, excluding
//! the VM exit itself (≈ 21 µs for a user-space exit on the project's machines, reference
//! `platform.md`), so the figures show how much of an exit's budget the ABI layer takes.
//!
//! - `dispatch/fast_signal_event`: decode + validate a fast `HvSignalEvent` (input in RDX) and
//!   call a handler that does nothing.
//! - `dispatch/slow_post_message`: a memory-based `HvPostMessage` (256-byte input block read
//!   from guest memory, typed validation) to a handler that does nothing.
//! - `dispatch/fast_signal_event_into_synic`: the same fast call with a handler that sets the
//!   event flag in the SIEFP and requests the interrupt, plus the guest taking the flag.
//! - `synic/post_deliver_eom`: one message's full cycle: the host posts it (slot protocol), the
//!   guest copies it out and frees the slot, and the EOM write rescans the queues.
//!
//! There is no peer implementation to run in-process here; the exit cost above is the yardstick.

use criterion::{criterion_group, Criterion};
use std::hint::black_box;

use hv_hypercall::cpuid_builder::Enlightenments;
use hv_hypercall::defs::{
    HvMessage, HvMessageType, HvMsr, HvStatus, HypercallCode, HypercallInput, PostMessageInput,
    SignalEventInput,
};
use hv_hypercall::dispatch::{
    CallingConvention, DispatchConfig, Dispatcher, HypercallHandler, PostMessageRequest,
    SignalEventRequest, X64Registers,
};
use hv_hypercall::guest::{receive_message, take_event_flags, MsrAccess, MsrFault};
use hv_hypercall::hypercall_page::{HypercallPage, HypercallPageKind};
use hv_hypercall::memory::{AtomicMemory, GuestMemory};
use hv_hypercall::synic::{
    InterruptSink, Partition, PartitionConfig, ReferenceClock, SintInterrupt, VirtualProcessor,
    VpEnv,
};

const SIMP: u64 = 0x4000;
const SIEFP: u64 = 0x5000;
const SINT: u8 = 2;

/// A handler that accepts everything and does nothing.
struct Null(u64);

impl HypercallHandler for Null {
    fn post_message(&mut self, r: PostMessageRequest<'_>) -> HvStatus {
        self.0 += r.payload.len() as u64;
        HvStatus::SUCCESS
    }
    fn signal_event(&mut self, r: SignalEventRequest) -> HvStatus {
        self.0 += u64::from(r.flag_number);
        HvStatus::SUCCESS
    }
}

struct Clock;

impl ReferenceClock for Clock {
    fn reference_time(&self) -> u64 {
        0
    }
}

struct Count(u64);

impl InterruptSink for Count {
    fn request_interrupt(&mut self, _: SintInterrupt) {
        self.0 += 1;
    }
}

/// One VP with its SynIC enabled on SINT 2, as Linux leaves it.
struct Vm {
    memory: &'static AtomicMemory,
    partition: Partition,
    vp: VirtualProcessor,
    sink: Count,
}

impl Vm {
    fn new() -> Self {
        let features = Enlightenments::linux_vmbus(1);
        let page = HypercallPage::new(HypercallPageKind::port_io(0x99).expect("port"));
        let mut vm = Self {
            memory: Box::leak(Box::new(AtomicMemory::new(0x10_000))),
            partition: Partition::new(PartitionConfig::new(page, &features)),
            vp: VirtualProcessor::new(0),
            sink: Count(0),
        };
        for (msr, value) in [
            (HvMsr::SIMP, SIMP | 1),
            (HvMsr::SIEFP, SIEFP | 1),
            (HvMsr::SINT2, 0xf3),
            (HvMsr::SCONTROL, 1),
        ] {
            vm.write_msr(msr.0, value).expect("synic bring-up");
        }
        vm
    }
}

impl MsrAccess for Vm {
    fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault> {
        self.vp
            .read_msr(&self.partition, &Clock, msr)
            .map_err(|_| MsrFault { msr })
    }
    fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), MsrFault> {
        let mut env = VpEnv {
            partition: &self.partition,
            memory: self.memory,
            clock: &Clock,
            interrupts: &mut self.sink,
        };
        self.vp
            .write_msr(&mut env, msr, value)
            .map_err(|_| MsrFault { msr })
    }
}

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch");
    let memory = AtomicMemory::new(0x10_000);
    let mut dispatcher = Dispatcher::new(DispatchConfig::default());
    let mut handler = Null(0);

    let signal = X64Registers {
        rcx: HypercallInput::simple(HypercallCode::SIGNAL_EVENT)
            .with_fast(true)
            .0,
        rdx: SignalEventInput::new(0x10, 3).to_u64(),
        ..Default::default()
    };
    group.bench_function("fast_signal_event", |b| {
        b.iter(|| {
            let mut regs = black_box(signal);
            dispatcher.dispatch(CallingConvention::X64, &mut regs, &memory, &mut handler);
            black_box(regs.rax)
        })
    });

    let block = PostMessageInput::new(1, HvMessageType::VMBUS.0, &[7; 200]).expect("block");
    memory.write(0x1000, &block.to_bytes()).expect("input");
    let post = X64Registers {
        rcx: HypercallInput::simple(HypercallCode::POST_MESSAGE).0,
        rdx: 0x1000,
        r8: 0,
        ..Default::default()
    };
    group.bench_function("slow_post_message", |b| {
        b.iter(|| {
            let mut regs = black_box(post);
            dispatcher.dispatch(CallingConvention::X64, &mut regs, &memory, &mut handler);
            black_box(regs.rax)
        })
    });

    /// Routes every signal to the VP's SINT 2 flags.
    struct IntoSynic<'a>(&'a mut VirtualProcessor, &'a AtomicMemory, &'a mut Count);
    impl HypercallHandler for IntoSynic<'_> {
        fn post_message(&mut self, _: PostMessageRequest<'_>) -> HvStatus {
            HvStatus::INVALID_CONNECTION_ID
        }
        fn signal_event(&mut self, r: SignalEventRequest) -> HvStatus {
            match self
                .0
                .signal_event(self.1, self.2, SINT, u32::from(r.flag_number))
            {
                Ok(_) => HvStatus::SUCCESS,
                Err(e) => e.status(),
            }
        }
    }
    let mut vm = Vm::new();
    group.bench_function("fast_signal_event_into_synic", |b| {
        b.iter(|| {
            let mut regs = black_box(signal);
            let mut h = IntoSynic(&mut vm.vp, vm.memory, &mut vm.sink);
            dispatcher.dispatch(CallingConvention::X64, &mut regs, vm.memory, &mut h);
            let taken = take_event_flags(vm.memory, SIEFP, SINT, |f| {
                black_box(f);
            })
            .expect("flags");
            black_box((regs.rax, taken))
        })
    });
    assert!(vm.sink.0 > 0);
    group.finish();
    black_box(handler.0);
}

fn synic(c: &mut Criterion) {
    let mut group = c.benchmark_group("synic");
    let mut vm = Vm::new();
    let msg = HvMessage::new(HvMessageType::VMBUS, 1, &[9; 64]).expect("message");
    group.bench_function("post_deliver_eom", |b| {
        b.iter(|| {
            let memory = vm.memory;
            vm.vp
                .post_message(memory, &mut vm.sink, SINT, black_box(&msg))
                .expect("post");
            let got = receive_message(memory, &mut vm, SIMP, SINT)
                .expect("receive")
                .expect("a message");
            vm.write_msr(HvMsr::EOM.0, 0).expect("eom");
            black_box(got.header.payload_size)
        })
    });
    assert!(vm.sink.0 > 0);
    group.finish();
}

criterion_group!(hypercall, dispatch, synic);

fn main() {
    hypercall();
    Criterion::default().configure_from_args().final_summary();
}
