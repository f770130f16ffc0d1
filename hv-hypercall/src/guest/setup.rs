//! Guest bring-up: detecting the hypervisor, enabling the hypercall page and the SynIC, in the
//! order Linux uses (reference §6.1).

use thiserror::Error;

use super::{CpuidAccess, MsrAccess, MsrFault};
use crate::defs::{
    signature_bytes, EnlightenmentHints, GpaPageMsr, GuestOsId, HvMsr, HypercallMsr, MiscFeatures,
    Privileges, SControl, SintMsr, HV1_INTERFACE_SIGNATURE, HYPERVISOR_PRESENT_ECX_BIT,
    LEAF_ENLIGHTENMENTS, LEAF_FEATURES, LEAF_IMPLEMENTATION_LIMITS, LEAF_INTERFACE,
    LEAF_VENDOR_AND_MAX, MIN_MAX_LEAF, SINT_MIN_VECTOR,
};

/// Why bring-up failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SetupError {
    /// CPUID.1:ECX bit 31 is clear.
    #[error("no hypervisor is present")]
    NoHypervisor,
    /// The vendor signature is not `"Microsoft Hv"`.
    #[error("the hypervisor signature is not Microsoft Hv")]
    NotHyperV {
        /// The signature found.
        vendor: [u8; 12],
    },
    /// The max leaf is outside 0x40000005..=0x4000FFFF.
    #[error("max hypervisor leaf {max_leaf:#x} is out of range")]
    MaxLeaf {
        /// The max leaf found.
        max_leaf: u32,
    },
    /// The interface is not `"Hv#1"`.
    #[error("the hypervisor interface {interface:#x} is not Hv#1")]
    Interface {
        /// The interface signature found.
        interface: u32,
    },
    /// The hypercall or VP-index privilege is missing.
    #[error("the hypercall and vp index msrs are not available")]
    MissingPrivileges,
    /// The hypercall page did not read back as enabled.
    #[error("the hypervisor did not enable the hypercall page")]
    HypercallPageNotEnabled,
    /// A page address that is not page-aligned, or a SINT/vector out of range.
    #[error("invalid setup parameter")]
    InvalidParameter,
    /// An MSR access faulted.
    #[error("msr access faulted")]
    Msr(#[from] MsrFault),
}

/// What [`detect`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvInfo {
    /// The highest hypervisor leaf.
    pub max_leaf: u32,
    /// 0x40000003 EAX:EBX.
    pub privileges: Privileges,
    /// 0x40000003 EDX.
    pub features: MiscFeatures,
    /// 0x40000004 EAX.
    pub hints: EnlightenmentHints,
    /// 0x40000005 EAX.
    pub max_vps: u32,
}

/// Detects a Hyper-V-compatible hypervisor as Linux's `ms_hyperv_platform` does: the
/// hypervisor-present bit, `"Microsoft Hv"` with a max leaf in 0x40000005..=0x4000FFFF,
/// `"Hv#1"`, and the hypercall and VP-index privileges.
pub fn detect(cpu: &mut impl CpuidAccess) -> Result<HvInfo, SetupError> {
    if cpu.cpuid(1)[2] & HYPERVISOR_PRESENT_ECX_BIT == 0 {
        return Err(SetupError::NoHypervisor);
    }
    let [max_leaf, b, c, d] = cpu.cpuid(LEAF_VENDOR_AND_MAX);
    let vendor = signature_bytes([b, c, d]);
    if &vendor != b"Microsoft Hv" {
        return Err(SetupError::NotHyperV { vendor });
    }
    if !(MIN_MAX_LEAF..=0x4000_ffff).contains(&max_leaf) {
        return Err(SetupError::MaxLeaf { max_leaf });
    }
    let interface = cpu.cpuid(LEAF_INTERFACE)[0];
    if interface != HV1_INTERFACE_SIGNATURE {
        return Err(SetupError::Interface { interface });
    }
    let [eax, ebx, _, edx] = cpu.cpuid(LEAF_FEATURES);
    let privileges = Privileges::from_registers(eax, ebx);
    if !privileges.access_hypercall_msrs() || !privileges.access_vp_index() {
        return Err(SetupError::MissingPrivileges);
    }
    Ok(HvInfo {
        max_leaf,
        privileges,
        features: MiscFeatures(edx),
        hints: EnlightenmentHints(cpu.cpuid(LEAF_ENLIGHTENMENTS)[0]),
        max_vps: cpu.cpuid(LEAF_IMPLEMENTATION_LIMITS)[0],
    })
}

/// Reports `guest_os_id`, then enables the hypercall page at `page_gpa` and checks that it
/// reads back enabled.
pub fn enable_hypercalls(
    msr: &mut impl MsrAccess,
    guest_os_id: GuestOsId,
    page_gpa: u64,
) -> Result<(), SetupError> {
    if !page_gpa.is_multiple_of(4096) || !guest_os_id.is_set() {
        return Err(SetupError::InvalidParameter);
    }
    msr.write_msr(HvMsr::GUEST_OS_ID.0, guest_os_id.0)?;
    let old = HypercallMsr(msr.read_msr(HvMsr::HYPERCALL.0)?);
    let new = old.with_gpn(page_gpa >> 12).with_enable(true);
    msr.write_msr(HvMsr::HYPERCALL.0, new.0)?;
    if !HypercallMsr(msr.read_msr(HvMsr::HYPERCALL.0)?).enable() {
        return Err(SetupError::HypercallPageNotEnabled);
    }
    Ok(())
}

/// A SynIC configuration for one SINT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynicSetup {
    /// The message page (page-aligned, zeroed, owned by the SynIC from now on).
    pub simp_gpa: u64,
    /// The event flags page (page-aligned, zeroed).
    pub siefp_gpa: u64,
    /// The SINT to unmask (VMBus uses 2).
    pub sint: u8,
    /// Its vector (16–255; Linux uses 0xF3).
    pub vector: u8,
    /// Ask for auto-EOI (Linux does unless the deprecate-auto-EOI hint is set).
    pub auto_eoi: bool,
}

/// Enables the SynIC as Linux's `hv_synic_enable_regs` does: SIMP, SIEFP, the SINT, then
/// SCONTROL.
pub fn enable_synic(msr: &mut impl MsrAccess, setup: &SynicSetup) -> Result<(), SetupError> {
    let Some(sint_msr) = HvMsr::sint(setup.sint) else {
        return Err(SetupError::InvalidParameter);
    };
    if !setup.simp_gpa.is_multiple_of(4096)
        || !setup.siefp_gpa.is_multiple_of(4096)
        || setup.vector < SINT_MIN_VECTOR
    {
        return Err(SetupError::InvalidParameter);
    }
    let page = |gpa: u64| GpaPageMsr::new().with_enable(true).with_gpn(gpa >> 12).0;
    msr.write_msr(HvMsr::SIMP.0, page(setup.simp_gpa))?;
    msr.write_msr(HvMsr::SIEFP.0, page(setup.siefp_gpa))?;
    let sint = SintMsr::new()
        .with_vector(setup.vector)
        .with_auto_eoi(setup.auto_eoi);
    msr.write_msr(sint_msr.0, sint.0)?;
    let scontrol = SControl(msr.read_msr(HvMsr::SCONTROL.0)?).with_enable(true);
    msr.write_msr(HvMsr::SCONTROL.0, scontrol.0)?;
    Ok(())
}

/// Masks `sint`, disables the pages and the SynIC (Linux's `hv_synic_disable_regs`).
pub fn disable_synic(msr: &mut impl MsrAccess, sint: u8) -> Result<(), SetupError> {
    let sint_msr = HvMsr::sint(sint).ok_or(SetupError::InvalidParameter)?;
    msr.write_msr(sint_msr.0, SintMsr::RESET.0)?;
    msr.write_msr(HvMsr::SIMP.0, 0)?;
    msr.write_msr(HvMsr::SIEFP.0, 0)?;
    msr.write_msr(HvMsr::SCONTROL.0, 0)?;
    Ok(())
}
