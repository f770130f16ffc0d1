//! Fuzzes the synthetic MSR and SynIC model with arbitrary sequences of MSR accesses, posts,
//! signals and guest actions (including scribbling over the shared pages). It must never panic,
//! MSRs must read back what a successful write stored, queues never exceed their depth, and
//! every interrupt request carries the SINT's programmed vector.

#![no_main]

use arbitrary::Arbitrary;
use hv_hypercall::cpuid_builder::Enlightenments;
use hv_hypercall::defs::{HvMessage, HvMessageType, HvMsr};
use hv_hypercall::guest::{receive_message, take_event_flags, MsrAccess, MsrFault};
use hv_hypercall::hypercall_page::{HypercallPage, HypercallPageKind};
use hv_hypercall::memory::{AtomicMemory, GuestMemory};
use hv_hypercall::synic::{
    InterruptSink, Partition, PartitionConfig, ReferenceClock, SintInterrupt, VirtualProcessor,
    VpEnv,
};
use libfuzzer_sys::fuzz_target;

const MEMORY: u64 = 0x10_000;

const MSRS: [HvMsr; 12] = [
    HvMsr::GUEST_OS_ID,
    HvMsr::HYPERCALL,
    HvMsr::VP_INDEX,
    HvMsr::TIME_REF_COUNT,
    HvMsr::REFERENCE_TSC,
    HvMsr::VP_ASSIST_PAGE,
    HvMsr::SCONTROL,
    HvMsr::SVERSION,
    HvMsr::SIEFP,
    HvMsr::SIMP,
    HvMsr::EOM,
    HvMsr::SINT2,
];

#[derive(Debug, Arbitrary)]
enum Op {
    WriteMsr {
        which: u8,
        sint: u8,
        value: u64,
        page: bool,
    },
    ReadMsr {
        which: u8,
    },
    Post {
        sint: u8,
        len: u8,
        ty: u32,
    },
    Signal {
        sint: u8,
        flag: u16,
    },
    Receive {
        sint: u8,
    },
    TakeFlags {
        sint: u8,
    },
    Scribble {
        gpa: u16,
        bytes: [u8; 8],
    },
    Poll,
}

struct Clock;

impl ReferenceClock for Clock {
    fn reference_time(&self) -> u64 {
        42
    }
}

#[derive(Default)]
struct Sink(Vec<SintInterrupt>);

impl InterruptSink for Sink {
    fn request_interrupt(&mut self, i: SintInterrupt) {
        self.0.push(i);
    }
}

struct World<'m> {
    partition: Partition,
    vp: VirtualProcessor,
    memory: &'m AtomicMemory,
    sink: Sink,
}

impl MsrAccess for World<'_> {
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

fn msr(which: u8, sint: u8) -> HvMsr {
    match MSRS.get(usize::from(which % 14)) {
        Some(&m) => m,
        None if which % 14 == 12 => HvMsr::sint(sint % 16).unwrap_or(HvMsr::SINT0),
        None => HvMsr(0x4000_0000 + u32::from(sint)),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let page = HypercallPage::new(HypercallPageKind::Vmmcall);
    let memory = AtomicMemory::new(MEMORY);
    let mut w = World {
        partition: Partition::new(PartitionConfig::new(page, &Enlightenments::linux_vmbus(1))),
        vp: VirtualProcessor::new(0),
        memory: &memory,
        sink: Sink::default(),
    };
    for op in ops.into_iter().take(256) {
        match op {
            Op::WriteMsr {
                which,
                sint,
                value,
                page,
            } => {
                let m = msr(which, sint);
                // Page MSRs mostly point into guest memory.
                let value = if page {
                    (value % MEMORY) & !0xffe
                } else {
                    value
                };
                if w.write_msr(m.0, value).is_ok() {
                    let stored = [
                        HvMsr::GUEST_OS_ID,
                        HvMsr::SCONTROL,
                        HvMsr::SIEFP,
                        HvMsr::SIMP,
                        HvMsr::VP_ASSIST_PAGE,
                        HvMsr::REFERENCE_TSC,
                    ];
                    if stored.contains(&m) || m.as_sint().is_some() {
                        assert_eq!(w.read_msr(m.0), Ok(value), "{m:?}");
                    }
                }
            }
            Op::ReadMsr { which } => {
                let _ = w.read_msr(msr(which, which).0);
            }
            Op::Post { sint, len, ty } => {
                let payload = [len; 240];
                let len = usize::from(len) % 241;
                if let Some(msg) = HvMessage::new(HvMessageType(ty), 7, &payload[..len]) {
                    let _ = w.vp.post_message(&memory, &mut w.sink, sint % 17, &msg);
                }
            }
            Op::Signal { sint, flag } => {
                let _ =
                    w.vp.signal_event(&memory, &mut w.sink, sint % 17, u32::from(flag) % 2100);
            }
            Op::Receive { sint } => {
                let simp = w.vp.simp().gpa();
                let _ = receive_message(&memory, &mut w, simp, sint % 17);
            }
            Op::TakeFlags { sint } => {
                let siefp = w.vp.siefp().gpa();
                let _ = take_event_flags(&memory, siefp, sint % 17, |f| assert!(f < 2048));
            }
            Op::Scribble { gpa, bytes } => {
                let _ = memory.write(u64::from(gpa), &bytes);
            }
            Op::Poll => {
                let _ = w.vp.poll(&memory, &mut w.sink);
            }
        }
        for s in 0..16 {
            assert!(w.vp.queued(s) <= 16);
        }
    }
    for i in &w.sink.0 {
        assert!(i.sint < 16);
        assert!(i.vector >= 16, "interrupt with vector {}", i.vector);
    }
});
