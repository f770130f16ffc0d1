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

use kvm_bindings::{
    kvm_fpu, kvm_regs, kvm_segment, kvm_sregs, kvm_userspace_memory_region,
    KVM_EXIT_INTERNAL_ERROR, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};

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
pub struct VmOptions {
    /// Create the in-kernel interrupt controller (`KVM_CREATE_IRQCHIP`) if KVM has one.
    /// With it, KVM handles `hlt` itself (the vCPU sleeps until an interrupt); without it,
    /// `hlt` exits to the VMM.
    pub irqchip: bool,
}

/// The details KVM gives with `KVM_EXIT_INTERNAL_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalError {
    /// `KVM_INTERNAL_ERROR_*`: what went wrong inside KVM.
    pub suberror: u32,
    /// Extra data; for an emulation failure, this includes the instruction bytes.
    pub data: Vec<u64>,
}

/// A VM with one vCPU and its guest RAM.
///
/// Fields drop in declaration order: the vCPU and VM file descriptors close before the guest
/// RAM they refer to is unmapped.
#[derive(Debug)]
pub struct Vm {
    vcpu: VcpuFd,
    _vm: VmFd,
    _kvm: Kvm,
    memory: GuestMemory,
    irqchip: bool,
}

impl Vm {
    /// Opens `/dev/kvm`, creates a VM backed by `memory` (one slot at guest-physical 0), the
    /// in-kernel interrupt controller if asked and available, and vCPU 0 with the CPUID KVM
    /// supports on this host.
    pub fn create(memory: GuestMemory, options: VmOptions) -> Result<Self, KvmError> {
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

        let vcpu = vm.create_vcpu(0).map_err(ioctl("KVM_CREATE_VCPU"))?;
        // Without CPUID set, the guest sees a bare CPU (no XSAVE: `xsetbv` faults).
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(ioctl("KVM_GET_SUPPORTED_CPUID"))?;
        vcpu.set_cpuid2(&cpuid).map_err(ioctl("KVM_SET_CPUID2"))?;

        Ok(Self {
            vcpu,
            _vm: vm,
            _kvm: kvm,
            memory,
            irqchip,
        })
    }

    /// Whether the in-kernel interrupt controller was created.
    pub fn irqchip(&self) -> bool {
        self.irqchip
    }

    /// Guest RAM.
    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    /// The vCPU, for running it.
    pub fn vcpu(&mut self) -> &mut VcpuFd {
        &mut self.vcpu
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
        sregs.cr4 = cpu.cr4;
        sregs.efer = cpu.efer;
        self.vcpu
            .set_sregs(&sregs)
            .map_err(ioctl("KVM_SET_SREGS"))?;

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
