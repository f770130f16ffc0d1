//! The guest side of the Hyper-V interface, through `hv-hypercall`'s guest API: detection by
//! CPUID, the guest OS identity, the hypercall page, hypercalls and reference time.
//!
//! The pages the guest hands to the hypervisor (hypercall page, hypercall input and output
//! pages, reference TSC page) live in one page-aligned static of atomics ([`HvPages`]): the
//! hypervisor writes them behind the compiler's back, which atomics permit. The guest's memory
//! is identity-mapped, so a page's address is its guest-physical address.
//!
//! This module holds the guest's `unsafe` besides `cpu.rs`: the three constructors of
//! `hv_hypercall::guest::native` whose contracts only the guest can promise (CPL 0 in a
//! partition, pages it owns, identity mapping).
#![allow(unsafe_code)]

use core::sync::atomic::AtomicU8;

use hv_hypercall::defs::{GuestOsId, HvMsr, HvStatus, OpenSourceOsType};
use hv_hypercall::guest::native::{
    IdentityMemory, NativeCpuid, NativeHypercall, NativeMsr, NativeTsc,
};
use hv_hypercall::guest::{
    self, CpuidAccess as _, HvInfo, HypercallError, Hypercalls, MsrAccess as _, SetupError,
    SynicSetup,
};

/// A 4 KiB page of guest memory the hypervisor may write.
#[repr(C, align(4096))]
struct Page([AtomicU8; 4096]);

impl Page {
    const fn new() -> Self {
        Self([const { AtomicU8::new(0) }; 4096])
    }
}

/// The pages this guest owns for the hypervisor, in one block.
#[repr(C)]
struct HvPages {
    hypercall: Page,
    input: Page,
    output: Page,
    tsc: Page,
    simp: Page,
    siefp: Page,
    monitor1: Page,
    monitor2: Page,
}

/// Zero-initialized, so it lands in `.bss`, which the VMM zero-fills.
static PAGES: HvPages = HvPages {
    hypercall: Page::new(),
    input: Page::new(),
    output: Page::new(),
    tsc: Page::new(),
    simp: Page::new(),
    siefp: Page::new(),
    monitor1: Page::new(),
    monitor2: Page::new(),
};

/// Guest-physical address of `page` (identity mapping).
fn gpa(page: &Page) -> u64 {
    core::ptr::from_ref(page) as u64
}

/// The guest's identity: open source, OS type 0 (none of the listed ones), version 0.1.0.
pub const GUEST_OS_ID: GuestOsId = GuestOsId::open_source(OpenSourceOsType(0), 0x76, 0x00_01_00, 0);

/// The VMM's diagnostic event connection (its `hyperv::DIAGNOSTIC_CONNECTION_ID`).
pub const DIAGNOSTIC_CONNECTION_ID: u32 = 0x7f00;

/// The hypervisor's signatures as the guest read them.
#[derive(Debug, Clone, Copy)]
pub struct Signatures {
    /// CPUID 0x40000000 EBX:ECX:EDX.
    pub vendor: [u8; 12],
    /// CPUID 0x40000001 EAX.
    pub interface: [u8; 4],
}

/// Detects a Hyper-V-compatible hypervisor; returns what `detect` found and the signatures.
pub fn detect() -> Result<(HvInfo, Signatures), SetupError> {
    let mut cpu = NativeCpuid;
    let info = guest::detect(&mut cpu)?;
    let [_, b, c, d] = cpu.cpuid(0x4000_0000);
    let mut vendor = [0; 12];
    vendor[..4].copy_from_slice(&b.to_le_bytes());
    vendor[4..8].copy_from_slice(&c.to_le_bytes());
    vendor[8..].copy_from_slice(&d.to_le_bytes());
    let interface = cpu.cpuid(0x4000_0001)[0].to_le_bytes();
    Ok((info, Signatures { vendor, interface }))
}

/// MSR access. Call only after [`detect`] succeeded.
pub fn msrs() -> NativeMsr {
    // SAFETY: the guest runs at CPL 0 (the VMM's boot contract) in a partition with the
    // synthetic MSRs (`detect` checked the privileges), and the only pages it names through
    // these MSRs are in `PAGES`, which it owns for the hypervisor.
    unsafe { NativeMsr::new() }
}

/// Identity-mapped access to `PAGES` by guest-physical address.
pub fn pages_memory() -> IdentityMemory {
    let start = gpa(&PAGES.hypercall);
    let len = start + core::mem::size_of::<HvPages>() as u64;
    // GPA `x` lives at virtual address `x`: the base pointer is `PAGES` moved back by its own
    // address, so it keeps `PAGES`' provenance for the addresses inside it.
    let base = core::ptr::from_ref(&PAGES)
        .cast::<u8>()
        .cast_mut()
        .wrapping_sub(start as usize);
    // SAFETY: the low 4 GiB are identity-mapped readable and writable (boot contract), so
    // `base..base + len` is mapped; the guest only passes GPAs inside `PAGES`, which is all
    // atomics (no Rust reference assumes exclusive or immutable access to it).
    unsafe { IdentityMemory::new(base, len) }
}

/// Reports the guest identity and enables the hypercall page; returns its address.
pub fn enable_hypercalls() -> Result<u64, SetupError> {
    let page = gpa(&PAGES.hypercall);
    guest::enable_hypercalls(&mut msrs(), GUEST_OS_ID, page)?;
    Ok(page)
}

/// The hypercall interface the guest uses.
pub type Calls = Hypercalls<NativeHypercall, IdentityMemory>;

/// Hypercalls through the enabled page. Call only after [`enable_hypercalls`] succeeded.
pub fn hypercalls() -> Calls {
    let page = core::ptr::from_ref(&PAGES.hypercall).cast::<u8>();
    // SAFETY: `enable_hypercalls` read the HYPERCALL MSR back enabled with this page, which is
    // identity-mapped and executable (no NX in the boot page tables) for the program's life;
    // the guest runs at CPL 0; the input and output pages are in `PAGES`.
    let invoker = unsafe { NativeHypercall::new(page) };
    Hypercalls::new(
        invoker,
        pages_memory(),
        gpa(&PAGES.input),
        gpa(&PAGES.output),
    )
}

/// The status a hypercall wrapper's result stands for.
pub fn status(result: Result<(), HypercallError>) -> Result<HvStatus, HypercallError> {
    match result {
        Ok(()) => Ok(HvStatus::SUCCESS),
        Err(HypercallError::Status { status, .. }) => Ok(status),
        Err(e) => Err(e),
    }
}

/// Where a reference time reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The reference TSC page.
    TscPage,
    /// The `TIME_REF_COUNT` MSR (the TSC page was published invalid).
    TimeRefCount,
}

/// Enables the reference TSC page and reads reference time once (100 ns units), falling back
/// to `TIME_REF_COUNT` when the page is invalid.
pub fn reference_time() -> Result<(u64, TimeSource), SetupError> {
    let mut msr = msrs();
    let page = gpa(&PAGES.tsc);
    msr.write_msr(HvMsr::REFERENCE_TSC.0, page | 1)?;
    let memory = pages_memory();
    match guest::read_reference_time(&memory, page, &mut NativeTsc) {
        Ok(Some(time)) => Ok((time, TimeSource::TscPage)),
        _ => Ok((
            msr.read_msr(HvMsr::TIME_REF_COUNT.0)?,
            TimeSource::TimeRefCount,
        )),
    }
}

/// The SIMP and SIEFP pages (guest-physical addresses).
pub fn synic_pages() -> (u64, u64) {
    (gpa(&PAGES.simp), gpa(&PAGES.siefp))
}

/// The two monitor pages the guest donates in INITIATE_CONTACT (unused by this VMM's offers).
pub fn monitor_pages() -> (u64, u64) {
    (gpa(&PAGES.monitor1), gpa(&PAGES.monitor2))
}

/// Enables the SynIC: message and event pages, SINT `sint` on `vector` without auto-EOI
/// (the VMM asks for that with the deprecating-auto-EOI hint; its interrupts are edge MSIs).
pub fn enable_synic(sint: u8, vector: u8) -> Result<(), SetupError> {
    let (simp_gpa, siefp_gpa) = synic_pages();
    guest::enable_synic(
        &mut msrs(),
        &SynicSetup {
            simp_gpa,
            siefp_gpa,
            sint,
            vector,
            auto_eoi: false,
        },
    )
}

/// The partition's reference time now (100 ns units), from `TIME_REF_COUNT`.
pub fn reference_time_now() -> u64 {
    msrs()
        .read_msr(HvMsr::TIME_REF_COUNT.0)
        .unwrap_or_else(|e| panic!("cannot read TIME_REF_COUNT: {e}"))
}
