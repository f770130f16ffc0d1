//! KVM: the VM, its memory slot, the in-kernel interrupt controller and the one vCPU.
//!
//! This module talks to `/dev/kvm` through `kvm-ioctls`. It needs `unsafe` in two places,
//! which is why it opts out of the workspace's `unsafe_code = "deny"`:
//!
//! * registering guest RAM (`KVM_SET_USER_MEMORY_REGION`) hands the kernel a raw host address
//!   that the guest will read and write; [`Vm`] owns the mapping and outlives the VM, which is
//!   what makes that sound;
//! * the details of a `KVM_EXIT_INTERNAL_ERROR` sit in a union inside the shared `kvm_run`
//!   page, which `kvm-ioctls` does not decode.
#![allow(unsafe_code)]

use hv_hypercall::defs::CpuidLeaf;
use kvm_bindings::{
    kvm_enable_cap, kvm_fpu, kvm_msi, kvm_regs, kvm_segment, kvm_sregs,
    kvm_userspace_memory_region, CpuId, KVM_CAP_EXIT_ON_EMULATION_FAILURE,
    KVM_CAP_X86_USER_SPACE_MSR, KVM_EXIT_INTERNAL_ERROR, KVM_INTERNAL_ERROR_EMULATION,
    KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES, KVM_MAX_CPUID_ENTRIES,
    KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_EXIT_REASON_INVAL, KVM_MSR_EXIT_REASON_UNKNOWN,
};
use kvm_ioctls::{
    Cap, Kvm, MsrFilterDefaultAction, MsrFilterRange, MsrFilterRangeFlags, VcpuExit, VcpuFd, VmFd,
};

use crate::hyperv::{cpuid::guest_cpuid, MsrRange};
use crate::long_mode::{BootCpu, SegmentRegister};
use crate::memory::GuestMemory;

/// The only KVM API version there is (`KVM_GET_API_VERSION`).
pub const KVM_API_VERSION: i32 = 12;

/// x87 control word after `fninit`: all exceptions masked, 64-bit precision.
const FCW_DEFAULT: u16 = 0x37f;
/// `MXCSR` at reset: all SIMD exceptions masked, round to nearest.
const MXCSR_DEFAULT: u32 = 0x1f80;

/// An error setting up or talking to KVM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvmError {
    /// `/dev/kvm` cannot be opened.
    #[error("cannot open /dev/kvm (is KVM enabled on this host, and may this user open it?)")]
    Open(#[source] kvm_ioctls::Error),
    /// `/dev/kvm` does not speak the KVM API version this VMM needs (or is not KVM at all).
    #[error("/dev/kvm does not speak KVM API version {KVM_API_VERSION} (KVM_GET_API_VERSION returned {0})")]
    ApiVersion(i32),
    /// A capability the VMM cannot do without is missing.
    #[error("KVM lacks a required capability: {0}")]
    MissingCapability(&'static str),
    /// The guest's CPUID has more entries than `KVM_SET_CPUID2` takes.
    #[error("the guest cpuid has {0} entries, more than KVM takes ({KVM_MAX_CPUID_ENTRIES})")]
    TooManyCpuidEntries(usize),
    /// A KVM ioctl failed.
    #[error("{op} failed")]
    Ioctl {
        /// The ioctl, by its KVM name.
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// Attaches the ioctl's name to a `kvm-ioctls` error.
fn ioctl(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> KvmError {
    move |source| KvmError::Ioctl { op, source }
}

/// How to build the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmOptions<'a> {
    /// Create the in-kernel interrupt controller (`KVM_CREATE_IRQCHIP`) if KVM has one.
    /// With it, KVM handles `hlt` itself (the vCPU sleeps until an interrupt); without it,
    /// `hlt` exits to the VMM.
    pub irqchip: bool,
    /// Hypervisor CPUID leaves that replace KVM's (see [`guest_cpuid`]).
    pub hypervisor_leaves: &'a [CpuidLeaf],
    /// MSRs whose every read and write exits to the VMM (`KVM_X86_SET_MSR_FILTER` denies them;
    /// `KVM_CAP_X86_USER_SPACE_MSR` turns the denial into an exit). Unknown and invalid MSR
    /// accesses exit too, so the VMM decides about every #GP.
    pub user_space_msrs: MsrRange,
}

/// The details KVM gives with `KVM_EXIT_INTERNAL_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalError {
    /// `KVM_INTERNAL_ERROR_*`: what went wrong inside KVM.
    pub suberror: u32,
    /// Extra data; for an emulation failure, this includes the instruction bytes.
    pub data: Vec<u64>,
}

impl InternalError {
    /// The bytes of the instruction KVM could not emulate, when it reported them: the
    /// `emulation_failure` layout of `kvm_run` (`flags`, then `insn_size` and up to 15
    /// `insn_bytes`), with `KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES` set.
    pub fn instruction_bytes(&self) -> Option<Vec<u8>> {
        let flag = u64::from(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES);
        match self.data.as_slice() {
            [flags, a, b, ..]
                if self.suberror == KVM_INTERNAL_ERROR_EMULATION && flags & flag != 0 =>
            {
                let mut raw = [0u8; 16];
                raw[..8].copy_from_slice(&a.to_le_bytes());
                raw[8..].copy_from_slice(&b.to_le_bytes());
                let len = usize::from(raw[0]).min(15);
                (len > 0).then(|| raw[1..=len].to_vec())
            }
            _ => None,
        }
    }
}

/// A VM with one vCPU and its guest RAM.
///
/// Fields drop in declaration order: the vCPU and VM file descriptors close before the guest
/// RAM they refer to is unmapped.
#[derive(Debug)]
pub struct Vm {
    vcpu: VcpuFd,
    vm: VmFd,
    _kvm: Kvm,
    memory: GuestMemory,
    irqchip: bool,
    /// `KVM_CAP_EXIT_ON_EMULATION_FAILURE` is on: emulation failures carry the instruction
    /// bytes.
    failure_bytes: bool,
}

impl Vm {
    /// Opens `/dev/kvm`, creates a VM backed by `memory` (one slot at guest-physical 0), the
    /// in-kernel interrupt controller if asked and available, the MSR exits, and vCPU 0 with
    /// the CPUID KVM supports on this host, its hypervisor leaves replaced.
    pub fn create(memory: GuestMemory, options: VmOptions<'_>) -> Result<Self, KvmError> {
        let kvm = Kvm::new().map_err(KvmError::Open)?;
        let version = kvm.get_api_version();
        if version != KVM_API_VERSION {
            return Err(KvmError::ApiVersion(version));
        }
        if !kvm.check_extension(Cap::UserMemory) {
            return Err(KvmError::MissingCapability("KVM_CAP_USER_MEMORY"));
        }
        let vm = kvm.create_vm().map_err(ioctl("KVM_CREATE_VM"))?;

        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: memory.size(),
            userspace_addr: memory.host_address(),
        };
        // SAFETY: the region is exactly `memory`'s mapping: page-aligned (an mmap), `size()`
        // bytes long. `memory` moves into the returned `Vm`, which neither unmaps nor remaps
        // it and drops it only after the VM and vCPU file descriptors are closed (field
        // order). The guest writes to it while the vCPU runs; `GuestMemory` only copies in
        // and out between runs and never holds references into it.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(ioctl("KVM_SET_USER_MEMORY_REGION"))?;

        let irqchip = options.irqchip && kvm.check_extension(Cap::Irqchip);
        if irqchip {
            vm.create_irq_chip().map_err(ioctl("KVM_CREATE_IRQCHIP"))?;
        }

        exit_msrs_to_user_space(&kvm, &vm, options.user_space_msrs)?;
        // Emulation failures exit to user space with the instruction's bytes (KVM fetched
        // them already), so completing an instruction starts from what the guest executed.
        let failure_bytes = kvm.check_extension_raw(u64::from(KVM_CAP_EXIT_ON_EMULATION_FAILURE))
            > 0
            && vm
                .enable_cap(&kvm_enable_cap {
                    cap: KVM_CAP_EXIT_ON_EMULATION_FAILURE,
                    args: [1, 0, 0, 0],
                    ..Default::default()
                })
                .is_ok();

        let vcpu = vm.create_vcpu(0).map_err(ioctl("KVM_CREATE_VCPU"))?;
        // Without CPUID set, the guest sees a bare CPU (no XSAVE: `xsetbv` faults).
        let supported = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(ioctl("KVM_GET_SUPPORTED_CPUID"))?;
        let entries = guest_cpuid(supported.as_slice(), options.hypervisor_leaves);
        let cpuid = CpuId::from_entries(&entries)
            .map_err(|_| KvmError::TooManyCpuidEntries(entries.len()))?;
        vcpu.set_cpuid2(&cpuid).map_err(ioctl("KVM_SET_CPUID2"))?;

        Ok(Self {
            vcpu,
            vm,
            _kvm: kvm,
            memory,
            irqchip,
            failure_bytes,
        })
    }

    /// Whether emulation failures report the instruction bytes (see [`InternalError`]).
    pub fn failure_bytes(&self) -> bool {
        self.failure_bytes
    }

    /// Whether the in-kernel interrupt controller was created.
    pub fn irqchip(&self) -> bool {
        self.irqchip
    }

    /// Guest RAM.
    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    /// Runs the vCPU (`KVM_RUN`) until its next exit; guest RAM comes along for the exit's
    /// handling while the exit borrows the vCPU.
    pub fn run(&mut self) -> Result<(VcpuExit<'_>, &GuestMemory), kvm_ioctls::Error> {
        let Self { vcpu, memory, .. } = self;
        Ok((vcpu.run()?, memory))
    }

    /// The vCPU's CPUID as KVM holds it (`KVM_GET_CPUID2`).
    #[cfg(test)]
    pub fn cpuid(&self) -> Result<CpuId, KvmError> {
        self.vcpu
            .get_cpuid2(KVM_MAX_CPUID_ENTRIES)
            .map_err(ioctl("KVM_GET_CPUID2"))
    }

    /// The vCPU's general registers (`KVM_GET_REGS`).
    pub fn general_registers(&self) -> Result<kvm_regs, KvmError> {
        self.vcpu.get_regs().map_err(ioctl("KVM_GET_REGS"))
    }

    /// Sets the vCPU's general registers (`KVM_SET_REGS`).
    pub fn set_general_registers(&self, regs: &kvm_regs) -> Result<(), KvmError> {
        self.vcpu.set_regs(regs).map_err(ioctl("KVM_SET_REGS"))
    }

    /// Sets the vCPU's special registers (`KVM_SET_SREGS`).
    pub fn set_special_registers(&self, sregs: &kvm_sregs) -> Result<(), KvmError> {
        self.vcpu.set_sregs(sregs).map_err(ioctl("KVM_SET_SREGS"))
    }

    /// Makes the guest take exception `vector` (with `error_code` where the vector has one) on
    /// its next entry, as the processor would have delivered it at the current RIP
    /// (`KVM_SET_VCPU_EVENTS`); `cr2` is set first for a page fault. For the VMM's own
    /// instruction completion, which decides the instruction faults.
    pub fn inject_exception(
        &self,
        vector: u8,
        error_code: Option<u32>,
        cr2: Option<u64>,
    ) -> Result<(), KvmError> {
        if let Some(cr2) = cr2 {
            let mut sregs = self.vcpu.get_sregs().map_err(ioctl("KVM_GET_SREGS"))?;
            sregs.cr2 = cr2;
            self.set_special_registers(&sregs)?;
        }
        let mut events = self
            .vcpu
            .get_vcpu_events()
            .map_err(ioctl("KVM_GET_VCPU_EVENTS"))?;
        events.exception.injected = 1;
        events.exception.nr = vector;
        events.exception.has_error_code = u8::from(error_code.is_some());
        events.exception.error_code = error_code.unwrap_or(0);
        self.vcpu
            .set_vcpu_events(&events)
            .map_err(ioctl("KVM_SET_VCPU_EVENTS"))
    }

    /// Sets DR6.BS, the single-step cause a #DB handler reads (`KVM_SET_DEBUGREGS`).
    pub fn set_single_step_cause(&self) -> Result<(), KvmError> {
        let mut d = self
            .vcpu
            .get_debug_regs()
            .map_err(ioctl("KVM_GET_DEBUGREGS"))?;
        d.dr6 |= 1 << 14;
        self.vcpu
            .set_debug_regs(&d)
            .map_err(ioctl("KVM_SET_DEBUGREGS"))
    }

    /// Injects a fixed, edge-triggered interrupt with `vector` into the local APIC `apic_id`
    /// (`KVM_SIGNAL_MSI`; needs the in-kernel irqchip).
    pub fn signal_msi(&self, apic_id: u8, vector: u8) -> Result<(), KvmError> {
        let msi = kvm_msi {
            address_lo: 0xfee0_0000 | u32::from(apic_id) << 12,
            data: u32::from(vector),
            ..Default::default()
        };
        self.vm
            .signal_msi(msi)
            .map(|_| ())
            .map_err(ioctl("KVM_SIGNAL_MSI"))
    }

    /// Loads `cpu` into the vCPU: segments, descriptor tables, control registers, EFER,
    /// general registers and a reset x87/SSE state.
    pub fn set_boot_cpu(&mut self, cpu: &BootCpu) -> Result<(), KvmError> {
        let mut sregs = self.vcpu.get_sregs().map_err(ioctl("KVM_GET_SREGS"))?;
        sregs.cs = segment(cpu.code);
        let data = segment(cpu.data);
        (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
        sregs.gdt.base = cpu.gdt_base;
        sregs.gdt.limit = cpu.gdt_limit;
        sregs.idt.base = cpu.idt_base;
        sregs.idt.limit = cpu.idt_limit;
        sregs.cr0 = cpu.cr0;
        sregs.cr3 = cpu.cr3;
        sregs.cr4 = cpu.cr4 | crate::long_mode::cr4::OSXSAVE;
        sregs.efer = cpu.efer;
        // XSAVE and AVX state enabled as firmware leaves them, when the vCPU has them: KVM
        // refuses CR4.OSXSAVE without XSAVE in CPUID, and an XCR0 the CPU cannot hold.
        if self.vcpu.set_sregs(&sregs).is_err() {
            sregs.cr4 = cpu.cr4;
            self.vcpu
                .set_sregs(&sregs)
                .map_err(ioctl("KVM_SET_SREGS"))?;
        } else {
            let mut xcrs = kvm_bindings::kvm_xcrs {
                nr_xcrs: 1,
                ..Default::default()
            };
            xcrs.xcrs[0].xcr = 0;
            xcrs.xcrs[0].value = 0b111; // x87, SSE, AVX
            let _ = self.vcpu.set_xcrs(&xcrs);
        }

        let fpu = kvm_fpu {
            fcw: FCW_DEFAULT,
            mxcsr: MXCSR_DEFAULT,
            ..Default::default()
        };
        self.vcpu.set_fpu(&fpu).map_err(ioctl("KVM_SET_FPU"))?;

        let regs = kvm_regs {
            rip: cpu.rip,
            rsp: cpu.rsp,
            rflags: cpu.rflags,
            ..Default::default()
        };
        self.vcpu.set_regs(&regs).map_err(ioctl("KVM_SET_REGS"))
    }

    /// The vCPU's x87/SSE state (`KVM_GET_FPU`).
    pub fn fpu(&self) -> Result<kvm_fpu, KvmError> {
        self.vcpu.get_fpu().map_err(ioctl("KVM_GET_FPU"))
    }

    /// Loads the vCPU's x87/SSE state (`KVM_SET_FPU`).
    pub fn set_fpu(&self, fpu: &kvm_fpu) -> Result<(), KvmError> {
        self.vcpu.set_fpu(fpu).map_err(ioctl("KVM_SET_FPU"))
    }

    /// The vCPU's XSAVE area (`KVM_GET_XSAVE`): x87, SSE and AVX state.
    pub fn xsave(&self) -> Result<kvm_bindings::kvm_xsave, KvmError> {
        self.vcpu.get_xsave().map_err(ioctl("KVM_GET_XSAVE"))
    }

    /// Loads the vCPU's XSAVE area (`KVM_SET_XSAVE`).
    pub fn set_xsave(&self, xsave: &kvm_bindings::kvm_xsave) -> Result<(), KvmError> {
        // SAFETY: `xsave` is a whole `kvm_xsave` the kernel filled (`KVM_GET_XSAVE`) and the
        // VMM only changed register bytes inside it; the legacy 4 KiB layout is what
        // `KVM_SET_XSAVE` reads.
        unsafe { self.vcpu.set_xsave(xsave) }.map_err(ioctl("KVM_SET_XSAVE"))
    }

    /// XCR0 (`KVM_GET_XCRS`; 1 = x87 only when the guest never set it).
    pub fn xcr0(&self) -> Result<u64, KvmError> {
        let xcrs = self.vcpu.get_xcrs().map_err(ioctl("KVM_GET_XCRS"))?;
        Ok(xcrs.xcrs[..(xcrs.nr_xcrs as usize).min(xcrs.xcrs.len())]
            .iter()
            .find(|x| x.xcr == 0)
            .map_or(1, |x| x.value))
    }

    /// The vCPU's general and special registers.
    pub fn registers(&self) -> Result<(kvm_regs, kvm_sregs), KvmError> {
        let regs = self.vcpu.get_regs().map_err(ioctl("KVM_GET_REGS"))?;
        let sregs = self.vcpu.get_sregs().map_err(ioctl("KVM_GET_SREGS"))?;
        Ok((regs, sregs))
    }

    /// The exit reason (`KVM_EXIT_*`) of the last `KVM_RUN`.
    pub fn exit_reason(&mut self) -> u32 {
        self.vcpu.get_kvm_run().exit_reason
    }

    /// The details of the last exit, if it was `KVM_EXIT_INTERNAL_ERROR`.
    pub fn internal_error(&mut self) -> Option<InternalError> {
        let run = self.vcpu.get_kvm_run();
        if run.exit_reason != KVM_EXIT_INTERNAL_ERROR {
            return None;
        }
        // SAFETY: the exit reason says `internal` is the member KVM filled in, and it is
        // plain integers (any bit pattern is a valid value), read by copy.
        let internal = unsafe { run.__bindgen_anon_1.internal };
        let count = (internal.ndata as usize).min(internal.data.len());
        Some(InternalError {
            suberror: internal.suberror,
            data: internal.data[..count].to_vec(),
        })
    }
}

/// Makes every access to `msrs` exit to user space: `KVM_CAP_X86_USER_SPACE_MSR` with the
/// reasons FILTER, UNKNOWN and INVAL, and an MSR filter that denies reads and writes of the
/// range (default: allow everything else).
fn exit_msrs_to_user_space(kvm: &Kvm, vm: &VmFd, msrs: MsrRange) -> Result<(), KvmError> {
    if !kvm.check_extension(Cap::X86UserSpaceMsr) {
        return Err(KvmError::MissingCapability("KVM_CAP_X86_USER_SPACE_MSR"));
    }
    if !kvm.check_extension(Cap::X86MsrFilter) {
        return Err(KvmError::MissingCapability("KVM_CAP_X86_MSR_FILTER"));
    }
    let reasons =
        KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_INVAL;
    let cap = kvm_enable_cap {
        cap: KVM_CAP_X86_USER_SPACE_MSR,
        args: [u64::from(reasons), 0, 0, 0],
        ..Default::default()
    };
    vm.enable_cap(&cap)
        .map_err(ioctl("KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)"))?;
    // A clear bit denies the access; KVM copies the bitmap during the ioctl.
    let bitmap = msr_filter_bitmap(msrs);
    let range = MsrFilterRange {
        flags: MsrFilterRangeFlags::READ | MsrFilterRangeFlags::WRITE,
        base: msrs.base,
        msr_count: msrs.count,
        bitmap: &bitmap,
    };
    vm.set_msr_filter(MsrFilterDefaultAction::ALLOW, &[range])
        .map_err(ioctl("KVM_X86_SET_MSR_FILTER"))
}

/// The filter bitmap that denies every MSR of `msrs`: one clear bit per MSR.
fn msr_filter_bitmap(msrs: MsrRange) -> Vec<u8> {
    vec![0; msrs.count.div_ceil(8) as usize]
}

/// A segment register in KVM's form.
fn segment(reg: SegmentRegister) -> kvm_segment {
    let d = reg.descriptor;
    kvm_segment {
        base: d.base.into(),
        limit: d.byte_limit(),
        selector: reg.selector,
        type_: d.segment_type(),
        present: d.present(),
        dpl: d.dpl(),
        db: d.db(),
        s: d.s(),
        l: d.long(),
        g: d.granularity(),
        avl: d.avl(),
        unusable: 0,
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use hv_hypercall::cpuid_builder::Enlightenments;

    use super::*;
    use crate::hyperv::SYNTHETIC_MSRS;

    #[test]
    fn filter_bitmap_denies_the_whole_range() {
        let bitmap = msr_filter_bitmap(SYNTHETIC_MSRS);
        assert_eq!(bitmap.len() * 8, 0x200);
        assert!(bitmap.iter().all(|&b| b == 0));
        assert_eq!(msr_filter_bitmap(MsrRange { base: 0, count: 9 }).len(), 2);
    }

    /// Whether `/dev/kvm` can be opened; prints why not otherwise (the test then passes).
    fn kvm_available() -> bool {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            Ok(_) => true,
            Err(e) => {
                println!("skipped: /dev/kvm not available ({e})");
                false
            }
        }
    }

    /// Needs `/dev/kvm`; prints why and passes where it cannot be opened.
    #[test]
    fn installs_hyper_v_cpuid_and_msr_filter() {
        if !kvm_available() {
            return;
        }
        let leaves = Enlightenments::linux_vmbus(1).cpuid_leaves().unwrap();
        let vm = Vm::create(
            GuestMemory::new(0x10_0000).unwrap(),
            VmOptions {
                irqchip: true,
                hypervisor_leaves: leaves.as_slice(),
                user_space_msrs: SYNTHETIC_MSRS,
            },
        )
        .unwrap();
        let cpuid = vm.cpuid().unwrap();
        let entries = cpuid.as_slice();
        let leaf = |f: u32| entries.iter().find(|e| e.function == f).copied();
        let vendor = leaf(0x4000_0000).unwrap();
        assert_eq!(
            [vendor.ebx, vendor.ecx, vendor.edx],
            [
                u32::from_le_bytes(*b"Micr"),
                u32::from_le_bytes(*b"osof"),
                u32::from_le_bytes(*b"t Hv")
            ]
        );
        assert_eq!(leaf(0x4000_0001).unwrap().eax, u32::from_le_bytes(*b"Hv#1"));
        assert_ne!(leaf(1).unwrap().ecx & (1 << 31), 0);
        let kvm_sig = u32::from_le_bytes(*b"KVMK");
        assert!(entries.iter().all(|e| e.ebx != kvm_sig));
    }

    /// An exception injected with `inject_exception` is delivered through the guest's IDT
    /// (here the real-mode IVT) on the next entry, at the current instruction, with CR2 set
    /// first when asked. Needs `/dev/kvm`; prints why and passes where it cannot be opened.
    #[test]
    fn injected_exception_reaches_the_guest_handler() {
        if !kvm_available() {
            return;
        }
        let memory = GuestMemory::new(0x10_0000).unwrap();
        // IVT entry 6 (#UD) -> 0000:1000: `mov al, 0x42; out 0x80, al; hlt`. The interrupted
        // code at 0000:2000 is `jmp $`.
        memory.write_at(6 * 4, &[0x00, 0x10, 0x00, 0x00]).unwrap();
        memory
            .write_at(0x1000, &[0xB0, 0x42, 0xE6, 0x80, 0xF4])
            .unwrap();
        memory.write_at(0x2000, &[0xEB, 0xFE]).unwrap();
        let mut vm = Vm::create(
            memory,
            VmOptions {
                irqchip: false,
                hypervisor_leaves: &[],
                user_space_msrs: SYNTHETIC_MSRS,
            },
        )
        .unwrap();
        let (mut regs, mut sregs) = vm.registers().unwrap();
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        vm.set_special_registers(&sregs).unwrap();
        regs.rip = 0x2000;
        regs.rsp = 0x8000;
        regs.rflags = 2;
        vm.set_general_registers(&regs).unwrap();
        vm.inject_exception(6, None, Some(0x1234_5000)).unwrap();
        match vm.run().unwrap().0 {
            VcpuExit::IoOut(0x80, data) => assert_eq!(data, [0x42]),
            other => panic!("expected the #UD handler's port write, got {other:?}"),
        }
        let (regs, sregs) = vm.registers().unwrap();
        assert_eq!(sregs.cr2, 0x1234_5000);
        // The handler runs with the interrupted IP (0x2000) pushed on the stack.
        let mut frame = [0u8; 2];
        vm.memory().read_at(regs.rsp, &mut frame).unwrap();
        assert_eq!(u16::from_le_bytes(frame), 0x2000);
    }

    #[test]
    fn emulation_failure_instruction_bytes() {
        // `vmovdqu [rdi], ymm0` (c5 fe 7f 07): flags, then insn_size and the bytes.
        let mut raw = [0u8; 16];
        raw[..5].copy_from_slice(&[4, 0xc5, 0xfe, 0x7f, 0x07]);
        let raw = raw;
        let word = |raw: &[u8; 16], i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().unwrap());
        let with = |raw: &[u8; 16], suberror, flags| InternalError {
            suberror,
            data: vec![flags, word(raw, 0), word(raw, 8), 0xdead],
        };
        let error = |suberror, flags| with(&raw, suberror, flags);
        let emulation = KVM_INTERNAL_ERROR_EMULATION;
        assert_eq!(
            error(emulation, 1).instruction_bytes(),
            Some(vec![0xc5, 0xfe, 0x7f, 0x07])
        );
        // No flag, another suberror, or too little data: no bytes.
        assert_eq!(error(emulation, 0).instruction_bytes(), None);
        assert_eq!(error(emulation + 1, 1).instruction_bytes(), None);
        let short = InternalError {
            suberror: emulation,
            data: vec![1, word(&raw, 0)],
        };
        assert_eq!(short.instruction_bytes(), None);
        // A size over 15 is clamped to the 15 bytes there are.
        let mut long = raw;
        long[0] = 200;
        assert_eq!(
            with(&long, emulation, 1)
                .instruction_bytes()
                .map(|b| b.len()),
            Some(15)
        );
    }
}
