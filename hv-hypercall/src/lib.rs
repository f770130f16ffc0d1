//! # `hv-hypercall`: the Hyper-V hypercall ABI, SynIC and enlightenment MSRs
//!
//! The Hyper-V *Top-Level Functional Specification* (TLFS, Microsoft, v6.0b and the current
//! online edition) defines how a guest finds a Hyper-V-compatible hypervisor (CPUID leaves
//! 0x40000000 and up), the synthetic MSRs (guest OS identity, hypercall page, VP index, reference
//! time, the SynIC registers), the synthetic interrupt controller (a message page and an event
//! flags page per VP, 16 synthetic interrupt sources, end-of-message), and the hypercall calling
//! convention (an input value with call code, fast, rep and variable-header fields; a result
//! value with status and reps completed). VMBus rides on top of it: its guest posts messages with
//! `HvCallPostMessage`, signals channels with `HvCallSignalEvent`, and receives messages and
//! interrupts through the SynIC.
//!
//! This crate implements that ABI for both sides: a VMM that serves it (here: on KVM without
//! in-kernel Hyper-V, entirely in user space) and a `no_std` guest that calls it.
//!
//! ```text
//!              guest (no_std)                                   host (VMM)
//!  ┌────────────────────────────────────┐        ┌──────────────────────────────────────────┐
//!  │ guest::detect (CPUID)              │ cpuid  │ cpuid_builder::Enlightenments            │
//!  │ guest::enable_hypercalls ──────────┼─wrmsr──▶ synic::Partition  GUEST_OS_ID, HYPERCALL │
//!  │ guest::enable_synic ───────────────┼─wrmsr──▶ synic::VirtualProcessor  SIMP, SIEFP,    │
//!  │                                    │        │   SINTx, SCONTROL, EOM (+ per-SINT      │
//!  │ guest::Hypercalls                  │        │   message queues)                       │
//!  │   post_message / signal_event ─────┼─call──▶ hypercall page (vmcall | vmmcall | out)   │
//!  │   call_rep (restart loop)          │  exit  │   → dispatch::Dispatcher → your         │
//!  │                                    │        │     HypercallHandler (post, signal, …)   │
//!  │ guest::receive_message ◀───────────┼─SIMP───┤ VirtualProcessor::post_message (slot    │
//!  │ guest::take_event_flags ◀──────────┼─SIEFP──┤   protocol) / signal_event (fetch-or)   │
//!  │ guest::read_reference_time ◀───────┼─TSC pg─┤ Partition (REFERENCE_TSC page)         │
//!  └────────────────────────────────────┘        │ InterruptSink ──▶ inject SINT vector    │
//!                                                └──────────────────────────────────────────┘
//! ```
//!
//! ## Layers
//!
//! - [`defs`]: the pure definitions: [`HypercallInput`] and
//!   [`HypercallOutput`] bitfields, [`HvStatus`] and
//!   [`HypercallCode`] open enums, the `HvPostMessage`/`HvSignalEvent`
//!   inputs, the 256-byte [`HvMessage`](defs::HvMessage) and message types, the SynIC register
//!   words, [`GuestOsId`](defs::GuestOsId), the reference TSC page and its arithmetic, every
//!   synthetic MSR number ([`HvMsr`](defs::HvMsr)), and the CPUID leaves with typed privilege,
//!   feature and hint bits. Zerocopy `#[repr(C)]` layouts with little-endian fields and
//!   compile-time size asserts; no I/O, no state.
//! - [`cpuid_builder`]: a consistent leaf set for a feature choice, refusing the reference's
//!   pitfalls (root-partition privilege, KVM signature, auto-EOI with a SynIC, …).
//! - [`hypercall_page`]: the hypercall page for Intel (`vmcall`), AMD (`vmmcall`) and a port-I/O
//!   trap (`out imm8, al; ret`) for KVM without in-kernel Hyper-V, with `endbr64`.
//! - [`dispatch`]: the host dispatcher: decodes a hypercall from the registers (x64 and 32-bit
//!   conventions; slow, fast, XMM fast input and output, rep with restart, variable headers),
//!   validates it as the TLFS lists, and calls a [`HypercallHandler`](dispatch::HypercallHandler).
//! - [`synic`]: the host's synthetic MSR and SynIC model, per partition and per VP.
//! - [`guest`]: the guest side, over traits, with a native x86-64 implementation.
//!
//! ## I/O seams
//!
//! | seam | trait | implementations here |
//! |---|---|---|
//! | guest physical memory (copies and atomics) | [`memory::GuestMemory`] | [`memory::AtomicMemory`] (heap), [`memory::ArrayMemory`] (no heap), [`guest::native::IdentityMemory`] |
//! | the calling VP's registers | [`dispatch::HypercallRegisters`] | [`dispatch::X64Registers`] |
//! | serving hypercalls | [`dispatch::HypercallHandler`] | the VMM's |
//! | interrupt injection | [`synic::InterruptSink`] | the VMM's (e.g. `KVM_SIGNAL_MSI`) |
//! | reference time | [`synic::ReferenceClock`] | the VMM's |
//! | guest: hypercall page, MSRs, CPUID, TSC | [`guest::HypercallInvoke`], [`guest::MsrAccess`], [`guest::CpuidAccess`], [`guest::TscSource`] | [`guest::native`] |
//!
//! Guest memory is shared with vCPUs that run concurrently and may be hostile: nothing holds a
//! Rust reference into it. Every field is copied out once and validated in the copy; where the
//! guest may race with the host the host uses atomics (compare-exchange on a message slot's
//! type, fetch-or on an event-flag word).
//!
//! ## Supported, and not
//!
//! Supported: `HvCallPostMessage` and `HvCallSignalEvent` with typed validation, any other call
//! through [`HypercallHandler::shape`](dispatch::HypercallHandler::shape) (simple, rep, variable
//! header); slow, fast, XMM fast input/output, 32-bit and 64-bit conventions; rep calls that
//! return early or retry in place; `GUEST_OS_ID`, `HYPERCALL` (with lock), `VP_INDEX`,
//! `TIME_REF_COUNT`, `REFERENCE_TSC`, `TSC_FREQUENCY`/`APIC_FREQUENCY`, `TSC_INVARIANT_CONTROL`,
//! `VP_ASSIST_PAGE` (stored), and the SynIC MSRs; per-SINT message queues (16 deep by default)
//! with the `message_pending`/EOM protocol; event flags.
//!
//! Not supported: synthetic timers (STIMER MSRs fault and are not advertised), the APIC-assist
//! MSRs, crash and debug MSRs, VSM/VTLs (no VTL stubs in the hypercall page), nested (the
//! `nested` bit is accepted and passed through), SINT auto-EOI semantics (the builder requires
//! the deprecate-auto-EOI hint), and hypercalls other than the two above unless the handler
//! declares them. Port/connection tables belong to the VMBus layer, which implements the handler.
//! The dispatcher does not check CPL: hypercalls from CPL > 0 or real mode raise #UD, which the
//! VMM checks first. The guest side issues 64-bit calls only.
//!
//! ## Example: a guest posting a message to itself through the host model
//!
//! ```
//! use hv_hypercall::cpuid_builder::Enlightenments;
//! use hv_hypercall::defs::{GuestOsId, HvMessage, HvMessageType, HvStatus, VMBUS_SINT};
//! use hv_hypercall::dispatch::{
//!     CallingConvention, DispatchConfig, Dispatcher, HypercallHandler, PostMessageRequest,
//!     SignalEventRequest, X64Registers,
//! };
//! use hv_hypercall::guest::{self, HypercallInvoke, MsrAccess, MsrFault, SynicSetup};
//! use hv_hypercall::hypercall_page::{HypercallPage, HypercallPageKind};
//! use hv_hypercall::memory::AtomicMemory;
//! use hv_hypercall::synic::{
//!     InterruptSink, Partition, PartitionConfig, ReferenceClock, SintInterrupt,
//!     VirtualProcessor, VpEnv,
//! };
//!
//! // 1. The VMM's side: CPUID, a partition with a port-I/O hypercall page, one VP.
//! let features = Enlightenments::linux_vmbus(1);
//! let leaves = features.cpuid_leaves()?; // install with KVM_SET_CPUID2
//! assert_eq!(leaves.get(0x4000_0001).unwrap().eax, u32::from_le_bytes(*b"Hv#1"));
//! let page = HypercallPage::new(HypercallPageKind::port_io(0x99)?);
//! let memory = AtomicMemory::new(0x10_000);
//!
//! struct Vmm<'a> {
//!     partition: Partition,
//!     vp: VirtualProcessor,
//!     memory: &'a AtomicMemory,
//!     interrupts: Vec<SintInterrupt>,
//!     dispatcher: Dispatcher,
//! }
//! struct Clock;
//! impl ReferenceClock for Clock {
//!     fn reference_time(&self) -> u64 { 0 }
//! }
//! struct Sink<'a>(&'a mut Vec<SintInterrupt>);
//! impl InterruptSink for Sink<'_> {
//!     fn request_interrupt(&mut self, i: SintInterrupt) { self.0.push(i) }
//! }
//! // 2. The VMM's hypercall handler: connection 1 → messages on the VMBus SINT of VP 0.
//! struct Handler<'a, 'b>(&'a mut VirtualProcessor, &'a AtomicMemory, Sink<'b>);
//! impl HypercallHandler for Handler<'_, '_> {
//!     fn post_message(&mut self, r: PostMessageRequest<'_>) -> HvStatus {
//!         if r.connection_id != 1 {
//!             return HvStatus::INVALID_CONNECTION_ID;
//!         }
//!         let msg = HvMessage::new(r.message_type, 1, r.payload).unwrap();
//!         match self.0.post_message(self.1, &mut self.2, VMBUS_SINT, &msg) {
//!             Ok(_) => HvStatus::SUCCESS,
//!             Err(e) => e.status(),
//!         }
//!     }
//!     fn signal_event(&mut self, _: SignalEventRequest) -> HvStatus {
//!         HvStatus::INVALID_CONNECTION_ID
//!     }
//! }
//! // 3. Exits: WRMSR/RDMSR go to the model, the hypercall trap to the dispatcher.
//! impl MsrAccess for Vmm<'_> {
//!     fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault> {
//!         self.vp.read_msr(&self.partition, &Clock, msr).map_err(|_| MsrFault { msr })
//!     }
//!     fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), MsrFault> {
//!         let mut sink = Sink(&mut self.interrupts);
//!         let mut env = VpEnv { partition: &self.partition, memory: self.memory, clock: &Clock, interrupts: &mut sink };
//!         self.vp.write_msr(&mut env, msr, value).map_err(|_| MsrFault { msr })
//!     }
//! }
//! impl HypercallInvoke for Vmm<'_> {
//!     fn invoke(&mut self, rcx: u64, rdx: u64, r8: u64) -> u64 {
//!         let mut regs = X64Registers { rcx, rdx, r8, ..Default::default() };
//!         let mut handler = Handler(&mut self.vp, self.memory, Sink(&mut self.interrupts));
//!         self.dispatcher.dispatch(CallingConvention::X64, &mut regs, self.memory, &mut handler);
//!         regs.rax
//!     }
//! }
//! let mut vmm = Vmm {
//!     partition: Partition::new(PartitionConfig::new(page, &features)),
//!     vp: VirtualProcessor::new(0),
//!     memory: &memory,
//!     interrupts: Vec::new(),
//!     dispatcher: Dispatcher::new(DispatchConfig::from_features(features.features())),
//! };
//!
//! // 4. The guest's side: bring-up as Linux does it, then post.
//! guest::enable_hypercalls(&mut vmm, GuestOsId::linux(0x06_01_00), 0x1000)?;
//! let setup = SynicSetup { simp_gpa: 0x4000, siefp_gpa: 0x5000, sint: VMBUS_SINT, vector: 0xf3, auto_eoi: false };
//! guest::enable_synic(&mut vmm, &setup)?;
//! guest::Hypercalls::new(&mut vmm, &memory, 0x2000, 0x3000)
//!     .post_message(1, HvMessageType::VMBUS, b"hello")?;
//!
//! // 5. The message is in the SIMP slot and the SINT vector was requested.
//! let msg = guest::receive_message(&memory, &mut vmm, 0x4000, VMBUS_SINT)?.unwrap();
//! assert_eq!(msg.payload(), b"hello");
//! assert_eq!(vmm.interrupts[0].vector, 0xf3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | [`memory::AtomicMemory`] (heap-backed guest RAM for tests, fuzzing, benchmarks) |
//! | `std` | yes | nothing beyond `alloc` yet (errors implement `core::error::Error` in every build); implies `alloc` |
//!
//! With `default-features = false` the crate is `#![no_std]` and needs only `core`: the
//! definitions, the builder, the dispatcher (fixed scratch buffers), the SynIC model (fixed-size
//! queues), [`memory::ArrayMemory`] and the guest side all work without a heap.
//!
//! ## `unsafe`
//!
//! Only [`guest::native`] (x86-64) uses `unsafe`, for `rdmsr`/`wrmsr`, the call into the
//! hypercall page, `rdtsc` and raw access to identity-mapped guest memory; it says why at the
//! top and at every block.

#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc --all-features`) marks items
// that need a feature; builds without every feature cannot link to the items they leave out.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(not(target_has_atomic = "64"))]
compile_error!(
    "hv-hypercall needs 64-bit atomics: the partition's and VPs' MSR state is shared as AtomicU64"
);

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod macros;

/// The `zerocopy` version whose types (`U16`, `U32`, `U64`, `FromBytes`, `IntoBytes`) appear in
/// this crate's wire layouts: use it to read and write them without a matching dependency.
pub use zerocopy;

pub mod cpuid_builder;
pub mod defs;
pub mod dispatch;
pub mod guest;
pub mod hypercall_page;
pub mod memory;
pub mod synic;

pub use defs::{HvStatus, HypercallCode, HypercallInput, HypercallOutput};
pub use dispatch::{CallingConvention, DispatchOutcome, Dispatcher};
pub use synic::{Partition, VirtualProcessor};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
