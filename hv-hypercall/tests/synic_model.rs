//! Model test of the SynIC protocols under real concurrency: host threads post thousands of
//! messages (one producer per SINT) and signal thousands of events, while a simulated guest vCPU
//! consumes them from the shared in-memory pages with the guest half of this crate, at random
//! speeds (producers alternate bursts that fill the queues and trickles of back-to-back pairs
//! that the guest must drain before the next pair). Checks that no message is lost, duplicated or reordered per SINT, that the guest
//! never needs to poll (every wait ends through `message_pending` + EOM), that each delivery
//! raised exactly one interrupt, and that events raise exactly once per 0 → 1 transition.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hv_hypercall::cpuid_builder::Enlightenments;
use hv_hypercall::defs::{HvMessage, HvMessageType, HvMsr};
use hv_hypercall::guest::{receive_message, take_event_flags, MsrAccess, MsrFault};
use hv_hypercall::hypercall_page::{HypercallPage, HypercallPageKind};
use hv_hypercall::memory::{AtomicMemory, GuestMemory};
use hv_hypercall::synic::{
    InterruptSink, Partition, PartitionConfig, PostError, ReferenceClock, SintInterrupt,
    VirtualProcessor, VpEnv,
};

const SIMP: u64 = 0x1000;
const SIEFP: u64 = 0x2000;
const MESSAGE_SINTS: [u8; 3] = [1, 2, 3];
const EVENT_SINT: u8 = 4;
const MESSAGES_PER_SINT: u64 = 4000;
const SIGNALS: u64 = 30_000;
const FLAGS: u32 = 96;
/// Producers alternate bursts and trickles of this many messages.
const PHASE: u64 = 200;

/// A tiny xorshift generator: each thread gets its own, seeded differently.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Random pause: mostly nothing, sometimes a yield or a short spin, rarely a sleep of up to
    /// `max_sleep_us` (so each side is sometimes the faster one).
    fn jitter(&mut self, max_sleep_us: u64) {
        match self.next() % 64 {
            0..=39 => {}
            40..=51 => thread::yield_now(),
            52..=62 => {
                for _ in 0..(self.next() % 2000) {
                    std::hint::spin_loop();
                }
            }
            _ => thread::sleep(Duration::from_micros(self.next() % max_sleep_us.max(1))),
        }
    }
}

/// Counts interrupt requests per SINT.
struct Sink<'a>(&'a [AtomicU64; 16]);

impl InterruptSink for Sink<'_> {
    fn request_interrupt(&mut self, i: SintInterrupt) {
        assert_eq!(i.vp_index, 0);
        assert_eq!(i.vector, 0x50 + i.sint);
        self.0[usize::from(i.sint)].fetch_add(1, Ordering::SeqCst);
    }
}

struct NoClock;

impl ReferenceClock for NoClock {
    fn reference_time(&self) -> u64 {
        0
    }
}

struct Shared {
    memory: AtomicMemory,
    partition: Partition,
    vp: Mutex<VirtualProcessor>,
    interrupts: [AtomicU64; 16],
    eoms: AtomicU64,
}

impl Shared {
    fn write_msr(&self, msr: u32, value: u64) -> Result<(), MsrFault> {
        let mut vp = self.vp.lock().unwrap();
        let mut sink = Sink(&self.interrupts);
        let mut env = VpEnv {
            partition: &self.partition,
            memory: &self.memory,
            clock: &NoClock,
            interrupts: &mut sink,
        };
        vp.write_msr(&mut env, msr, value)
            .map_err(|_| MsrFault { msr })
    }
}

/// The guest's MSR access: a WRMSR exit handled by the VMM under the VP lock.
struct GuestMsr<'a>(&'a Shared);

impl MsrAccess for GuestMsr<'_> {
    fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault> {
        let vp = self.0.vp.lock().unwrap();
        vp.read_msr(&self.0.partition, &NoClock, msr)
            .map_err(|_| MsrFault { msr })
    }

    fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), MsrFault> {
        if msr == HvMsr::EOM.0 {
            self.0.eoms.fetch_add(1, Ordering::SeqCst);
        }
        self.0.write_msr(msr, value)
    }
}

#[test]
fn messages_and_events_under_concurrency() {
    let page = HypercallPage::new(HypercallPageKind::Vmcall);
    let shared = Arc::new(Shared {
        memory: AtomicMemory::new(0x10_000),
        partition: Partition::new(PartitionConfig::new(page, &Enlightenments::linux_vmbus(1))),
        vp: Mutex::new(VirtualProcessor::new(0)),
        interrupts: Default::default(),
        eoms: AtomicU64::new(0),
    });
    // Guest bring-up through the MSR model.
    shared.write_msr(HvMsr::SIMP.0, SIMP | 1).unwrap();
    shared.write_msr(HvMsr::SIEFP.0, SIEFP | 1).unwrap();
    for sint in MESSAGE_SINTS.into_iter().chain([EVENT_SINT]) {
        shared
            .write_msr(HvMsr::sint(sint).unwrap().0, u64::from(0x50 + sint))
            .unwrap();
    }
    shared.write_msr(HvMsr::SCONTROL.0, 1).unwrap();

    let signaled: Arc<Vec<AtomicU64>> = Arc::new((0..FLAGS).map(|_| AtomicU64::new(0)).collect());
    let raises = Arc::new(AtomicU64::new(0));
    let full = Arc::new(AtomicU64::new(0));
    let producers_done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let received: Arc<[AtomicU64; 16]> = Arc::new(Default::default());
    let started = Instant::now();

    // One producer per message SINT: sequence numbers in the payload.
    let mut handles = Vec::new();
    for (t, sint) in MESSAGE_SINTS.into_iter().enumerate() {
        let (shared, full, done, received) = (
            shared.clone(),
            full.clone(),
            producers_done.clone(),
            received.clone(),
        );
        handles.push(thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
            for seq in 0..MESSAGES_PER_SINT {
                let mut payload = [0u8; 24];
                payload[..8].copy_from_slice(&seq.to_le_bytes());
                payload[8] = sint;
                let len = 9 + (rng.next() % 16) as usize;
                let msg =
                    HvMessage::new(HvMessageType::VMBUS, u64::from(sint), &payload[..len]).unwrap();
                loop {
                    let result = {
                        let mut vp = shared.vp.lock().unwrap();
                        let mut sink = Sink(&shared.interrupts);
                        vp.post_message(&shared.memory, &mut sink, sint, &msg)
                    };
                    match result {
                        Ok(_) => break,
                        Err(PostError::QueueFull { .. }) => {
                            full.fetch_add(1, Ordering::Relaxed);
                            thread::yield_now();
                        }
                        Err(e) => panic!("post failed: {e}"),
                    }
                }
                if (seq / PHASE) % 2 == 1 && seq % 2 == 1 {
                    // Trickle phase: a pair posted back to back (the second usually finds the
                    // slot busy with a message that had nothing behind it), then wait until the
                    // guest has both. Only `message_pending` + EOM can deliver the second.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while received[usize::from(sint)].load(Ordering::SeqCst) <= seq {
                        assert!(
                            Instant::now() < deadline,
                            "sint {sint}: message {seq} stuck in the host queue"
                        );
                        thread::yield_now();
                    }
                } else {
                    rng.jitter(300);
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }

    // The event signaler.
    {
        let (shared, signaled, raises, done) = (
            shared.clone(),
            signaled.clone(),
            raises.clone(),
            producers_done.clone(),
        );
        handles.push(thread::spawn(move || {
            let mut rng = Rng(0x1234_5678_9abc_def1);
            for _ in 0..SIGNALS {
                let flag = (rng.next() % u64::from(FLAGS)) as u32;
                signaled[flag as usize].fetch_add(1, Ordering::SeqCst);
                let raised = {
                    let mut vp = shared.vp.lock().unwrap();
                    let mut sink = Sink(&shared.interrupts);
                    vp.signal_event(&shared.memory, &mut sink, EVENT_SINT, flag)
                        .unwrap()
                };
                if raised {
                    raises.fetch_add(1, Ordering::SeqCst);
                }
                rng.jitter(100);
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }

    // The guest vCPU: consume everything at random speed, never polling the host.
    let guest = {
        let (shared, signaled, done, stop, received) = (
            shared.clone(),
            signaled.clone(),
            producers_done.clone(),
            stop.clone(),
            received.clone(),
        );
        thread::spawn(move || {
            let mut rng = Rng(0xdead_beef_cafe_f00d);
            let mut next = [0u64; 16];
            let mut observed = vec![0u64; FLAGS as usize];
            let mut taken = 0u64;
            let mut msr = GuestMsr(&shared);
            let mut last_progress = Instant::now();
            loop {
                let mut progress = false;
                for sint in MESSAGE_SINTS {
                    if let Some(msg) =
                        receive_message(&shared.memory, &mut msr, SIMP, sint).unwrap()
                    {
                        let p = msg.payload();
                        let seq = u64::from_le_bytes(p[..8].try_into().unwrap());
                        assert_eq!(p[8], sint, "message landed in the wrong slot");
                        assert_eq!(msg.header.sender.get(), u64::from(sint));
                        assert_eq!(
                            seq,
                            next[usize::from(sint)],
                            "lost, duplicated or reordered on sint {sint}"
                        );
                        next[usize::from(sint)] += 1;
                        received[usize::from(sint)]
                            .store(next[usize::from(sint)], Ordering::SeqCst);
                        progress = true;
                    }
                    rng.jitter(300);
                }
                let n = take_event_flags(&shared.memory, SIEFP, EVENT_SINT, |flag| {
                    // Read the generation after the flag was taken.
                    observed[flag as usize] = signaled[flag as usize].load(Ordering::SeqCst);
                })
                .unwrap();
                taken += u64::from(n);
                progress |= n > 0;

                let all_messages = MESSAGE_SINTS
                    .iter()
                    .all(|&s| next[usize::from(s)] == MESSAGES_PER_SINT);
                if all_messages && done.load(Ordering::SeqCst) == MESSAGE_SINTS.len() + 1 {
                    // Final drain of flags set after the last take.
                    taken += u64::from(
                        take_event_flags(&shared.memory, SIEFP, EVENT_SINT, |flag| {
                            observed[flag as usize] =
                                signaled[flag as usize].load(Ordering::SeqCst);
                        })
                        .unwrap(),
                    );
                    return (next, observed, taken);
                }
                if progress {
                    last_progress = Instant::now();
                } else if last_progress.elapsed() > Duration::from_secs(5)
                    || stop.load(Ordering::SeqCst)
                {
                    let queued: Vec<usize> = {
                        let vp = shared.vp.lock().unwrap();
                        (0..16).map(|s| vp.queued(s)).collect()
                    };
                    panic!("no progress for 5 s: next {next:?}, host queues {queued:?}");
                }
            }
        })
    };

    for h in handles {
        h.join().unwrap();
    }
    let (next, observed, taken) = guest.join().unwrap_or_else(|e| {
        stop.store(true, Ordering::SeqCst);
        std::panic::resume_unwind(e)
    });

    for sint in MESSAGE_SINTS {
        assert_eq!(next[usize::from(sint)], MESSAGES_PER_SINT);
        assert_eq!(
            shared.interrupts[usize::from(sint)].load(Ordering::SeqCst),
            MESSAGES_PER_SINT,
            "one interrupt per delivery on sint {sint}"
        );
        assert_eq!(
            shared
                .memory
                .read_u32(SIMP + 256 * u64::from(sint))
                .unwrap(),
            0
        );
    }
    {
        let vp = shared.vp.lock().unwrap();
        assert!((0..16).all(|s| vp.queued(s) == 0));
    }
    let raises = raises.load(Ordering::SeqCst);
    assert_eq!(
        shared.interrupts[usize::from(EVENT_SINT)].load(Ordering::SeqCst),
        raises
    );
    assert_eq!(
        taken, raises,
        "every 0 -> 1 transition raised once and was taken once"
    );
    assert!(raises <= SIGNALS && raises >= u64::from(FLAGS).min(SIGNALS) / 2);
    for flag in 0..FLAGS as usize {
        assert_eq!(
            observed[flag],
            signaled[flag].load(Ordering::SeqCst),
            "flag {flag}: its last signal was never observed"
        );
    }
    let eoms = shared.eoms.load(Ordering::SeqCst);
    assert!(eoms > 0, "the guest never needed an EOM");
    eprintln!(
        "{} messages, {SIGNALS} signals ({raises} raises), {eoms} EOMs, {} queue-full retries, {:?}",
        MESSAGES_PER_SINT * MESSAGE_SINTS.len() as u64,
        full.load(Ordering::Relaxed),
        started.elapsed()
    );
}
