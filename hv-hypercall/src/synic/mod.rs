//! The host-side synthetic MSR and SynIC model: partition-wide MSRs ([`Partition`]) and per-VP
//! state ([`VirtualProcessor`]) with message queues and event flags.
//!
//! The VMM routes RDMSR/WRMSR exits for `0x40000000..=0x400001FF` here, posts messages and
//! signals events from its VMBus server, and injects the vectors the model asks for through an
//! [`InterruptSink`]. Every [`MsrError`] means "inject #GP".
//!
//! ## Message slots (reference §5.8)
//!
//! The host owns a SIMP slot only while its `message_type` is 0. To deliver, it writes bytes
//! 4..256 (size, flags, sender, payload) and then compare-exchanges the type from 0 to the
//! message's type (sequentially consistent: a release of the body), setting `message_pending` in
//! the new header when more messages wait, and raises the SINT. When the slot is busy it
//! atomically sets `message_pending` and re-checks the type (the guest may just have freed it).
//! The guest frees the slot by compare-exchanging the type to 0, then, if `message_pending` was
//! set, writes EOM; the host rescans its queues on EOM (and on SINT unmask, SIMP or SCONTROL
//! enable, and [`VirtualProcessor::poll`] for VMMs without EOM exits).
//!
//! ## Event flags
//!
//! [`VirtualProcessor::signal_event`] ORs the flag bit into the SIEFP atomically and raises the
//! SINT only when the bit went from 0 to 1, the SINT is unmasked and the SynIC enabled.

mod delivery;
mod queue;

pub use delivery::{PostError, PostOutcome, SignalError};
pub use queue::MessageQueue;

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use thiserror::Error;

use crate::cpuid_builder::{Enlightenments, Frequencies};
use crate::defs::{
    next_tsc_sequence, GpaPageMsr, GuestOsId, HvMsr, HypercallMsr, SControl, SintMsr,
    TscScaleOffset, PAGE_SIZE, REFERENCE_TSC_OFFSET_OFFSET, REFERENCE_TSC_SCALE_OFFSET,
    REFERENCE_TSC_SEQUENCE_OFFSET, SINT_COUNT, SINT_MIN_VECTOR, SYNIC_VERSION,
    TSC_SEQUENCE_INVALID,
};
use crate::hypercall_page::HypercallPage;
use crate::memory::{GuestMemory, MemoryError};

/// A request to inject a SINT's vector into a VP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SintInterrupt {
    /// The target VP.
    pub vp_index: u32,
    /// The SINT that fired.
    pub sint: u8,
    /// The vector to inject (fixed, edge).
    pub vector: u8,
    /// The guest asked for auto-EOI on this SINT.
    pub auto_eoi: bool,
}

/// Asks the VMM to inject an interrupt (e.g. `KVM_SIGNAL_MSI` to the VP's APIC).
pub trait InterruptSink {
    /// Injects `interrupt`.
    fn request_interrupt(&mut self, interrupt: SintInterrupt);
}

impl<T: InterruptSink + ?Sized> InterruptSink for &mut T {
    fn request_interrupt(&mut self, interrupt: SintInterrupt) {
        (**self).request_interrupt(interrupt)
    }
}

/// The partition's reference clock.
pub trait ReferenceClock {
    /// 100 ns ticks since partition start (`TIME_REF_COUNT`).
    fn reference_time(&self) -> u64;

    /// The guest TSC → reference time conversion for the TSC page, or `None` to publish an
    /// invalid page (sequence 0) so the guest reads `TIME_REF_COUNT` instead.
    fn tsc_page_parameters(&self) -> Option<TscScaleOffset> {
        None
    }
}

impl<T: ReferenceClock + ?Sized> ReferenceClock for &T {
    fn reference_time(&self) -> u64 {
        (**self).reference_time()
    }
    fn tsc_page_parameters(&self) -> Option<TscScaleOffset> {
        (**self).tsc_page_parameters()
    }
}

/// An error from the MSR model. Each variant means: inject #GP into the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MsrError {
    /// Not a synthetic MSR this partition implements (or advertises).
    #[error("msr {msr:#x} is not implemented")]
    Unimplemented {
        /// The MSR.
        msr: u32,
    },
    /// A write to a read-only MSR.
    #[error("msr {msr:#x} is read-only")]
    ReadOnly {
        /// The MSR.
        msr: u32,
    },
    /// A write with reserved bits set.
    #[error("write of {value:#x} to msr {msr:#x} sets reserved bits")]
    ReservedBits {
        /// The MSR.
        msr: u32,
        /// The written value.
        value: u64,
    },
    /// A write to the locked hypercall MSR.
    #[error("msr {msr:#x} is locked")]
    Locked {
        /// The MSR.
        msr: u32,
    },
    /// An unmasked SINT with a vector below 16.
    #[error("vector {vector} is invalid for unmasked sint {sint}")]
    InvalidVector {
        /// The SINT.
        sint: u8,
        /// The vector.
        vector: u8,
    },
    /// The page the MSR names is not guest memory.
    #[error("msr {msr:#x} names page {gpa:#x}, which is not guest memory")]
    Page {
        /// The MSR.
        msr: u32,
        /// The page's address.
        gpa: u64,
        /// The memory error.
        #[source]
        source: MemoryError,
    },
}

/// What the partition implements, derived from the advertised [`Enlightenments`] so that
/// MSRs that are not advertised fault.
///
/// Fields may be added in a minor release: start from [`PartitionConfig::new`] and set the fields you
/// change (or use `..` struct update syntax) rather than writing every field out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionConfig {
    /// The code written into the hypercall page.
    pub hypercall_page: HypercallPage,
    /// `TIME_REF_COUNT`.
    pub time_ref_count: bool,
    /// The SynIC MSRs.
    pub synic: bool,
    /// `REFERENCE_TSC`.
    pub reference_tsc: bool,
    /// `TSC_FREQUENCY`/`APIC_FREQUENCY`.
    pub frequencies: Option<Frequencies>,
    /// `TSC_INVARIANT_CONTROL`.
    pub tsc_invariant_control: bool,
    /// Zero SIMP/SIEFP pages when the guest enables them, so stale data never looks like a
    /// pending message (on by default).
    pub zero_synic_pages: bool,
}

impl PartitionConfig {
    /// The configuration matching `enlightenments`, with `hypercall_page`.
    pub fn new(hypercall_page: HypercallPage, enlightenments: &Enlightenments) -> Self {
        Self {
            hypercall_page,
            time_ref_count: enlightenments.time_ref_count,
            synic: enlightenments.synic,
            reference_tsc: enlightenments.reference_tsc,
            frequencies: enlightenments.frequencies,
            tsc_invariant_control: enlightenments.tsc_invariant_control,
            zero_synic_pages: true,
        }
    }
}

/// Partition-wide synthetic MSRs: `GUEST_OS_ID`, `HYPERCALL`, `REFERENCE_TSC`,
/// `TSC_INVARIANT_CONTROL`. Shared by all VPs (`&Partition` across vCPU threads).
#[derive(Debug)]
pub struct Partition {
    config: PartitionConfig,
    guest_os_id: AtomicU64,
    hypercall: AtomicU64,
    reference_tsc: AtomicU64,
    tsc_sequence: AtomicU32,
    tsc_invariant: AtomicU64,
}

impl Partition {
    /// A partition in its reset state.
    pub fn new(config: PartitionConfig) -> Self {
        Self {
            config,
            guest_os_id: AtomicU64::new(0),
            hypercall: AtomicU64::new(0),
            reference_tsc: AtomicU64::new(0),
            tsc_sequence: AtomicU32::new(TSC_SEQUENCE_INVALID),
            tsc_invariant: AtomicU64::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PartitionConfig {
        &self.config
    }

    /// The guest OS identity.
    pub fn guest_os_id(&self) -> GuestOsId {
        GuestOsId(self.guest_os_id.load(Ordering::SeqCst))
    }

    /// The hypercall MSR.
    pub fn hypercall_msr(&self) -> HypercallMsr {
        HypercallMsr(self.hypercall.load(Ordering::SeqCst))
    }

    /// Whether the guest enabled the hypercall page (Linux's `hv_is_hyperv_initialized`).
    pub fn hypercalls_enabled(&self) -> bool {
        self.hypercall_msr().enable()
    }

    /// Re-publishes the reference TSC page (after migration or a clock change), if enabled.
    pub fn refresh_tsc_page<M, C>(&self, memory: &M, clock: &C) -> Result<(), MemoryError>
    where
        M: GuestMemory + ?Sized,
        C: ReferenceClock + ?Sized,
    {
        let msr = GpaPageMsr(self.reference_tsc.load(Ordering::SeqCst));
        if msr.enable() {
            self.write_tsc_page(memory, clock, msr.gpa())?;
        }
        Ok(())
    }

    fn write_tsc_page<M, C>(&self, memory: &M, clock: &C, gpa: u64) -> Result<(), MemoryError>
    where
        M: GuestMemory + ?Sized,
        C: ReferenceClock + ?Sized,
    {
        let seq_gpa = gpa + REFERENCE_TSC_SEQUENCE_OFFSET as u64;
        // Invalidate, update, then publish the new sequence (the guest retries on a change).
        memory.write(seq_gpa, &TSC_SEQUENCE_INVALID.to_le_bytes())?;
        let sequence = match clock.tsc_page_parameters() {
            Some(p) => {
                memory.write(
                    gpa + REFERENCE_TSC_SCALE_OFFSET as u64,
                    &p.scale.to_le_bytes(),
                )?;
                memory.write(
                    gpa + REFERENCE_TSC_OFFSET_OFFSET as u64,
                    &p.offset.to_le_bytes(),
                )?;
                next_tsc_sequence(self.tsc_sequence.load(Ordering::SeqCst))
            }
            None => TSC_SEQUENCE_INVALID,
        };
        memory.write(seq_gpa, &sequence.to_le_bytes())?;
        self.tsc_sequence.store(sequence, Ordering::SeqCst);
        Ok(())
    }

    fn read_msr<C: ReferenceClock + ?Sized>(
        &self,
        msr: HvMsr,
        clock: &C,
    ) -> Option<Result<u64, MsrError>> {
        let c = &self.config;
        let value = match msr {
            HvMsr::GUEST_OS_ID => self.guest_os_id.load(Ordering::SeqCst),
            HvMsr::HYPERCALL => self.hypercall.load(Ordering::SeqCst),
            HvMsr::TIME_REF_COUNT if c.time_ref_count => clock.reference_time(),
            HvMsr::REFERENCE_TSC if c.reference_tsc => self.reference_tsc.load(Ordering::SeqCst),
            HvMsr::TSC_FREQUENCY if c.frequencies.is_some() => {
                c.frequencies.map_or(0, |f| f.tsc_hz)
            }
            HvMsr::APIC_FREQUENCY if c.frequencies.is_some() => {
                c.frequencies.map_or(0, |f| f.apic_hz)
            }
            HvMsr::TSC_INVARIANT_CONTROL if c.tsc_invariant_control => {
                self.tsc_invariant.load(Ordering::SeqCst)
            }
            _ => return None,
        };
        Some(Ok(value))
    }

    fn write_msr<M, C>(
        &self,
        msr: HvMsr,
        value: u64,
        memory: &M,
        clock: &C,
    ) -> Option<Result<(), MsrError>>
    where
        M: GuestMemory + ?Sized,
        C: ReferenceClock + ?Sized,
    {
        let c = &self.config;
        let result = match msr {
            HvMsr::GUEST_OS_ID => {
                self.guest_os_id.store(value, Ordering::SeqCst);
                if value == 0 {
                    // Clearing the identity disables the hypercall page, unless the guest
                    // locked the HYPERCALL MSR: a lock freezes it against every write.
                    let _ = self
                        .hypercall
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                            (!HypercallMsr(v).locked()).then_some(v & !1)
                        });
                }
                Ok(())
            }
            HvMsr::HYPERCALL => self.write_hypercall(value, memory),
            HvMsr::TIME_REF_COUNT if c.time_ref_count => Err(MsrError::ReadOnly { msr: msr.0 }),
            HvMsr::REFERENCE_TSC if c.reference_tsc => {
                let new = GpaPageMsr(value);
                if new.reserved_bits() != 0 {
                    return Some(Err(MsrError::ReservedBits { msr: msr.0, value }));
                }
                if new.enable() {
                    if let Err(source) = self.write_tsc_page(memory, clock, new.gpa()) {
                        return Some(Err(MsrError::Page {
                            msr: msr.0,
                            gpa: new.gpa(),
                            source,
                        }));
                    }
                }
                self.reference_tsc.store(value, Ordering::SeqCst);
                Ok(())
            }
            HvMsr::TSC_FREQUENCY | HvMsr::APIC_FREQUENCY if c.frequencies.is_some() => {
                Err(MsrError::ReadOnly { msr: msr.0 })
            }
            HvMsr::TSC_INVARIANT_CONTROL if c.tsc_invariant_control => {
                if value & !1 != 0 {
                    Err(MsrError::ReservedBits { msr: msr.0, value })
                } else {
                    self.tsc_invariant.store(value, Ordering::SeqCst);
                    Ok(())
                }
            }
            _ => return None,
        };
        Some(result)
    }

    fn write_hypercall<M: GuestMemory + ?Sized>(
        &self,
        value: u64,
        memory: &M,
    ) -> Result<(), MsrError> {
        let msr = HvMsr::HYPERCALL.0;
        let old = self.hypercall_msr();
        if old.locked() {
            return Err(MsrError::Locked { msr });
        }
        let mut new = HypercallMsr(value);
        if new.reserved_bits() != 0 {
            return Err(MsrError::ReservedBits { msr, value });
        }
        if !self.guest_os_id().is_set() {
            // The page cannot be enabled before the guest reports its identity.
            new = new.with_enable(false);
        }
        if new.enable() && (!old.enable() || old.gpn() != new.gpn()) {
            let page = self.config.hypercall_page.bytes();
            memory
                .write(new.gpa(), &page)
                .map_err(|source| MsrError::Page {
                    msr,
                    gpa: new.gpa(),
                    source,
                })?;
        }
        self.hypercall.store(new.0, Ordering::SeqCst);
        Ok(())
    }
}

/// Everything a VP operation touches besides the VP itself.
pub struct VpEnv<'a, M: ?Sized, C: ?Sized, I: ?Sized> {
    /// The partition-wide MSRs.
    pub partition: &'a Partition,
    /// Guest memory.
    pub memory: &'a M,
    /// The reference clock.
    pub clock: &'a C,
    /// Where interrupt requests go.
    pub interrupts: &'a mut I,
}

impl<M: ?Sized, C: ?Sized, I: ?Sized> core::fmt::Debug for VpEnv<'_, M, C, I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VpEnv")
            .field("partition", self.partition)
            .finish_non_exhaustive()
    }
}

/// One VP's synthetic MSRs and SynIC, with `Q`-deep message queues per SINT (16 by default).
///
/// Takes `&mut self`: a VMM that posts from another thread puts each VP behind a lock. Guest
/// memory is only ever touched through [`GuestMemory`], so the guest may race freely.
#[derive(Clone)]
pub struct VirtualProcessor<const Q: usize = 16> {
    vp_index: u32,
    scontrol: SControl,
    siefp: GpaPageMsr,
    simp: GpaPageMsr,
    sints: [SintMsr; SINT_COUNT],
    vp_assist: GpaPageMsr,
    queues: [MessageQueue<Q>; SINT_COUNT],
}

impl<const Q: usize> core::fmt::Debug for VirtualProcessor<Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtualProcessor")
            .field("vp_index", &self.vp_index)
            .field("scontrol", &self.scontrol)
            .field("siefp", &self.siefp)
            .field("simp", &self.simp)
            .field("sints", &self.sints)
            .finish_non_exhaustive()
    }
}

impl VirtualProcessor {
    /// VP `vp_index` in its reset state, with the default 16-deep message queues: SCONTROL
    /// enabled (Hyper-V's reset value), pages disabled, all SINTs masked.
    pub fn new(vp_index: u32) -> Self {
        Self::with_queue_depth(vp_index)
    }
}

impl<const Q: usize> VirtualProcessor<Q> {
    /// VP `vp_index` in its reset state with `Q`-deep message queues per SINT
    /// (`VirtualProcessor::<32>::with_queue_depth(0)`); see [`new`](VirtualProcessor::new).
    pub fn with_queue_depth(vp_index: u32) -> Self {
        Self {
            vp_index,
            scontrol: SControl::new().with_enable(true),
            siefp: GpaPageMsr::new(),
            simp: GpaPageMsr::new(),
            sints: [SintMsr::RESET; SINT_COUNT],
            vp_assist: GpaPageMsr::new(),
            queues: core::array::from_fn(|_| MessageQueue::new()),
        }
    }

    /// Resets the VP (drops queued messages).
    pub fn reset(&mut self) {
        *self = Self::with_queue_depth(self.vp_index);
    }

    /// The VP index.
    pub fn vp_index(&self) -> u32 {
        self.vp_index
    }

    /// The SINT register `sint` (`None` beyond 15).
    pub fn sint(&self, sint: u8) -> Option<SintMsr> {
        self.sints.get(usize::from(sint)).copied()
    }

    /// Messages waiting for `sint`'s slot.
    pub fn queued(&self, sint: u8) -> usize {
        self.queues.get(usize::from(sint)).map_or(0, |q| q.len())
    }

    /// The SIMP register.
    pub fn simp(&self) -> GpaPageMsr {
        self.simp
    }

    /// The SIEFP register.
    pub fn siefp(&self) -> GpaPageMsr {
        self.siefp
    }

    /// Handles RDMSR of a synthetic MSR.
    pub fn read_msr<C: ReferenceClock + ?Sized>(
        &self,
        partition: &Partition,
        clock: &C,
        msr: u32,
    ) -> Result<u64, MsrError> {
        let msr = HvMsr(msr);
        if let Some(result) = partition.read_msr(msr, clock) {
            return result;
        }
        let synic = partition.config.synic;
        Ok(match msr {
            HvMsr::VP_INDEX => u64::from(self.vp_index),
            HvMsr::VP_ASSIST_PAGE => self.vp_assist.0,
            HvMsr::SCONTROL if synic => self.scontrol.0,
            HvMsr::SVERSION if synic => SYNIC_VERSION,
            HvMsr::SIEFP if synic => self.siefp.0,
            HvMsr::SIMP if synic => self.simp.0,
            // Write-only: reads return 0.
            HvMsr::EOM if synic => 0,
            _ => match msr.as_sint() {
                Some(n) if synic => self.sints[usize::from(n)].0,
                _ => return Err(MsrError::Unimplemented { msr: msr.0 }),
            },
        })
    }

    /// Handles WRMSR of a synthetic MSR, with its side effects: writing the hypercall and TSC
    /// pages, zeroing newly enabled SynIC pages, and rescanning message queues.
    pub fn write_msr<M, C, I>(
        &mut self,
        env: &mut VpEnv<'_, M, C, I>,
        msr: u32,
        value: u64,
    ) -> Result<(), MsrError>
    where
        M: GuestMemory + ?Sized,
        C: ReferenceClock + ?Sized,
        I: InterruptSink + ?Sized,
    {
        let msr = HvMsr(msr);
        if let Some(result) = env.partition.write_msr(msr, value, env.memory, env.clock) {
            return result;
        }
        let synic = env.partition.config.synic;
        let reserved = |bits: u64| {
            if bits != 0 {
                Err(MsrError::ReservedBits { msr: msr.0, value })
            } else {
                Ok(())
            }
        };
        match msr {
            HvMsr::VP_INDEX => Err(MsrError::ReadOnly { msr: msr.0 }),
            HvMsr::VP_ASSIST_PAGE => {
                let new = GpaPageMsr(value);
                reserved(new.reserved_bits())?;
                self.vp_assist = new;
                Ok(())
            }
            HvMsr::SCONTROL if synic => {
                let new = SControl(value);
                reserved(new.reserved_bits())?;
                self.scontrol = new;
                self.rescan_all(env);
                Ok(())
            }
            HvMsr::SVERSION if synic => Err(MsrError::ReadOnly { msr: msr.0 }),
            HvMsr::SIEFP | HvMsr::SIMP if synic => {
                let new = GpaPageMsr(value);
                reserved(new.reserved_bits())?;
                let old = if msr == HvMsr::SIMP {
                    self.simp
                } else {
                    self.siefp
                };
                if new.enable() && (!old.enable() || old.gpn() != new.gpn()) {
                    prepare_page(env.memory, new.gpa(), env.partition.config.zero_synic_pages)
                        .map_err(|source| MsrError::Page {
                            msr: msr.0,
                            gpa: new.gpa(),
                            source,
                        })?;
                }
                if msr == HvMsr::SIMP {
                    self.simp = new;
                    self.rescan_all(env);
                } else {
                    self.siefp = new;
                }
                Ok(())
            }
            HvMsr::EOM if synic => {
                self.rescan_all(env);
                Ok(())
            }
            _ => match msr.as_sint() {
                Some(n) if synic => {
                    let new = SintMsr(value);
                    reserved(new.reserved_bits())?;
                    if !new.masked() && new.vector() < SINT_MIN_VECTOR {
                        return Err(MsrError::InvalidVector {
                            sint: n,
                            vector: new.vector(),
                        });
                    }
                    self.sints[usize::from(n)] = new;
                    // Delivery failures keep the messages queued for the next rescan.
                    let _ = self.flush(env.memory, env.interrupts, n);
                    Ok(())
                }
                _ => Err(MsrError::Unimplemented { msr: msr.0 }),
            },
        }
    }

    /// Rescans every SINT's queue (what EOM does). For VMMs that get no EOM exit, call it
    /// periodically (OpenVMM-on-KVM polls every millisecond).
    pub fn poll<M, I>(&mut self, memory: &M, interrupts: &mut I) -> Result<u32, MemoryError>
    where
        M: GuestMemory + ?Sized,
        I: InterruptSink + ?Sized,
    {
        let mut delivered = 0;
        for n in 0..SINT_COUNT as u8 {
            delivered += self.flush(memory, interrupts, n)?;
        }
        Ok(delivered)
    }

    fn rescan_all<M, C, I>(&mut self, env: &mut VpEnv<'_, M, C, I>)
    where
        M: GuestMemory + ?Sized,
        C: ?Sized,
        I: InterruptSink + ?Sized,
    {
        for n in 0..SINT_COUNT as u8 {
            // Delivery failures keep the messages queued for the next rescan.
            let _ = self.flush(env.memory, env.interrupts, n);
        }
    }
}

/// Checks that a newly enabled SynIC page is guest memory, zeroing it when asked.
fn prepare_page<M: GuestMemory + ?Sized>(
    memory: &M,
    gpa: u64,
    zero: bool,
) -> Result<(), MemoryError> {
    if zero {
        memory.zero(gpa, PAGE_SIZE)
    } else {
        let mut probe = [0; 8];
        memory.read(gpa, &mut probe)?;
        memory.read(gpa + PAGE_SIZE - 8, &mut probe)
    }
}

#[cfg(test)]
mod tests;
