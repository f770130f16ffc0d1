//! A consistent Hyper-V CPUID leaf set (0x40000000 up to 0x4000000A) for a feature choice.
//!
//! [`Enlightenments`] says what the VMM implements; [`Enlightenments::cpuid_leaves`] checks the
//! choice against the pitfalls of reference §6.5 and produces the leaves. It refuses:
//!
//! - privileges that make Linux treat the partition as root or call hypercalls nobody serves:
//!   `AccessPartitionId` (EBX bit 1), `CpuManagement` (bit 12, "root partition"),
//!   `EnableExtendedHypercalls` (bit 20), `Isolation` (bit 22);
//! - hints that trigger unimplemented hypercalls or MSRs: remote flush (bit 2), APIC MSRs (3),
//!   cluster IPI (10), enlightened VMCS (14), MMIO hypercalls (21);
//! - a vendor signature of `"KVMKVMKVM"` (Linux would pick KVM and `hv_vmbus` would not load),
//!   and it never emits leaves outside 0x40000000–0x4000000A, so no KVM leaves at 0x40000100;
//! - a SynIC without `DEPRECATE_AUTO_EOI` (auto-EOI with plain LAPIC injection loses interrupts);
//! - a reference TSC page without `TIME_REF_COUNT` (sequence 0 makes the guest fall back to it);
//! - a partition whose TSC Linux would mark unstable: neither the TSC page nor TSC-invariant
//!   control;
//! - XMM fast output without XMM fast input, a max leaf below 0x40000005 or above 0x4000000A,
//!   zero VPs, and extra bits that collide with the ones the fields manage.
//!
//! `HYPERCALL`+`GUEST_OS_ID` and `VP_INDEX` privileges (EAX bits 5 and 6, which Linux requires)
//! are always set. The VMM must also set CPUID.1:ECX bit 31 ([`HYPERVISOR_PRESENT_ECX_BIT`]) and,
//! with TSC-invariant control, the invariant-TSC bit CPUID 0x80000007 EDX bit 8.
//!
//! [`HYPERVISOR_PRESENT_ECX_BIT`]: crate::defs::HYPERVISOR_PRESENT_ECX_BIT

use thiserror::Error;

use crate::defs::{
    signature_words, CpuidLeaf, EnlightenmentHints, MiscFeatures, Privileges,
    HV1_INTERFACE_SIGNATURE, KVM_SIGNATURE, LEAF_ENLIGHTENMENTS, LEAF_FEATURES,
    LEAF_IMPLEMENTATION_LIMITS, LEAF_INTERFACE, LEAF_VENDOR_AND_MAX, LEAF_VERSION,
    MAX_DEFINED_LEAF, MIN_MAX_LEAF,
};

/// Privileges the builder never advertises (reference §6.2, §6.5 pitfall 4).
pub const FORBIDDEN_PRIVILEGES: Privileges = Privileges::new()
    .with_access_partition_id(true)
    .with_cpu_management(true)
    .with_enable_extended_hypercalls(true)
    .with_isolation(true);

/// Hints the builder never advertises (reference §6.5 pitfall 4).
pub const FORBIDDEN_HINTS: EnlightenmentHints = EnlightenmentHints::new()
    .with_hypercall_for_remote_flush(true)
    .with_apic_msrs(true)
    .with_synthetic_cluster_ipi(true)
    .with_enlightened_vmcs(true)
    .with_hypercall_for_mmio(true);

/// Privilege bits the [`Enlightenments`] fields manage.
const MANAGED_PRIVILEGES: Privileges = Privileges::new()
    .with_access_partition_reference_counter(true)
    .with_access_synic_msrs(true)
    .with_access_apic_msrs(true)
    .with_access_hypercall_msrs(true)
    .with_access_vp_index(true)
    .with_access_partition_reference_tsc(true)
    .with_access_frequency_msrs(true)
    .with_access_tsc_invariant_controls(true)
    .with_post_messages(true)
    .with_signal_events(true)
    .with_fast_hypercall_output(true);

/// Hint bits the [`Enlightenments`] fields manage.
const MANAGED_HINTS: EnlightenmentHints = EnlightenmentHints::new()
    .with_relaxed_timing(true)
    .with_deprecate_auto_eoi(true);

/// Feature bits the [`Enlightenments`] fields manage.
const MANAGED_MISC: MiscFeatures = MiscFeatures::new()
    .with_xmm_fast_hypercall_input(true)
    .with_xmm_fast_hypercall_output(true)
    .with_frequency_regs(true);

/// The hypervisor version reported in 0x40000002.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvVersion {
    /// Build number (EAX).
    pub build: u32,
    /// Major version (EBX 31:16).
    pub major: u16,
    /// Minor version (EBX 15:0).
    pub minor: u16,
    /// Service pack (ECX).
    pub service_pack: u32,
    /// Service branch (EDX 31:24).
    pub service_branch: u8,
    /// Service number (EDX 23:0).
    pub service_number: u32,
}

/// TSC and APIC timer frequencies for `TSC_FREQUENCY` / `APIC_FREQUENCY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frequencies {
    /// TSC frequency in Hz.
    pub tsc_hz: u64,
    /// APIC timer frequency in Hz.
    pub apic_hz: u64,
}

/// What the VMM implements, from which the CPUID leaves (and the MSR model's behaviour) follow.
///
/// Fields may be added in a minor release: start from [`Enlightenments::linux_vmbus`] and set the fields you
/// change (or use `..` struct update syntax) rather than writing every field out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enlightenments {
    /// `TIME_REF_COUNT` (privilege EAX bit 1).
    pub time_ref_count: bool,
    /// The SynIC MSRs (EAX bit 2) plus the `PostMessages`/`SignalEvents` privileges (EBX 4, 5).
    pub synic: bool,
    /// The reference TSC page (EAX bit 9).
    pub reference_tsc: bool,
    /// APIC MSR and VP assist page access (EAX bit 4). The model stores `VP_ASSIST_PAGE` either
    /// way, because Linux 6.x writes it unconditionally.
    pub apic_access: bool,
    /// `TSC_FREQUENCY`/`APIC_FREQUENCY` (EAX bit 11 and EDX bit 8).
    pub frequencies: Option<Frequencies>,
    /// `TSC_INVARIANT_CONTROL` (EAX bit 15): Linux then keeps the TSC stable.
    pub tsc_invariant_control: bool,
    /// Hint "relaxed timing" (EAX bit 5).
    pub relaxed_timing: bool,
    /// Hint "deprecate auto-EOI" (EAX bit 9): required with the SynIC.
    pub deprecate_auto_eoi: bool,
    /// XMM fast hypercall input (EDX bit 4).
    pub xmm_fast_input: bool,
    /// XMM fast hypercall output (EDX bit 15, privilege EBX bit 19).
    pub xmm_fast_output: bool,
    /// Max VPs (0x40000005 EAX).
    pub max_vps: u32,
    /// Max logical processors (0x40000005 EBX).
    pub max_lps: u32,
    /// Implemented physical address bits (0x40000004 ECX 6:0; 0 = not reported).
    pub physical_address_bits: u8,
    /// Highest leaf, 0x40000005–0x4000000A.
    pub max_leaf: u32,
    /// Version leaf contents.
    pub version: HvVersion,
    /// Vendor signature (0x40000000 EBX:ECX:EDX).
    pub vendor: [u8; 12],
    /// Further privileges the VMM serves (not forbidden, not managed by the fields).
    pub extra_privileges: Privileges,
    /// Further hints.
    pub extra_hints: EnlightenmentHints,
    /// Further 0x40000003 EDX features (crash MSRs, guest idle …).
    pub extra_features: MiscFeatures,
}

impl Enlightenments {
    /// What a Linux guest needs for `hv_vmbus` and `hv_utils` (reference §6.2) on `vps` VPs:
    /// hypercalls, VP index, SynIC, `TIME_REF_COUNT`, the TSC page, deprecated auto-EOI and
    /// relaxed timing; no XMM fast calls.
    pub const fn linux_vmbus(vps: u32) -> Self {
        Self {
            time_ref_count: true,
            synic: true,
            reference_tsc: true,
            apic_access: false,
            frequencies: None,
            tsc_invariant_control: false,
            relaxed_timing: true,
            deprecate_auto_eoi: true,
            xmm_fast_input: false,
            xmm_fast_output: false,
            max_vps: vps,
            max_lps: vps,
            physical_address_bits: 0,
            max_leaf: MAX_DEFINED_LEAF,
            version: HvVersion {
                build: 19041,
                major: 10,
                minor: 0,
                service_pack: 0,
                service_branch: 0,
                service_number: 0,
            },
            vendor: *b"Microsoft Hv",
            extra_privileges: Privileges::new(),
            extra_hints: EnlightenmentHints::new(),
            extra_features: MiscFeatures::new(),
        }
    }

    /// The privilege mask (0x40000003 EAX:EBX).
    pub const fn privileges(&self) -> Privileges {
        let p = Privileges(self.extra_privileges.0)
            .with_access_hypercall_msrs(true)
            .with_access_vp_index(true)
            .with_access_partition_reference_counter(self.time_ref_count)
            .with_access_synic_msrs(self.synic)
            .with_post_messages(self.synic)
            .with_signal_events(self.synic)
            .with_access_partition_reference_tsc(self.reference_tsc)
            .with_access_apic_msrs(self.apic_access)
            .with_access_frequency_msrs(self.frequencies.is_some())
            .with_access_tsc_invariant_controls(self.tsc_invariant_control);
        p.with_fast_hypercall_output(self.xmm_fast_output)
    }

    /// The 0x40000003 EDX features.
    pub const fn features(&self) -> MiscFeatures {
        MiscFeatures(self.extra_features.0)
            .with_xmm_fast_hypercall_input(self.xmm_fast_input)
            .with_xmm_fast_hypercall_output(self.xmm_fast_output)
            .with_frequency_regs(self.frequencies.is_some())
    }

    /// The 0x40000004 EAX hints.
    pub const fn hints(&self) -> EnlightenmentHints {
        EnlightenmentHints(self.extra_hints.0)
            .with_relaxed_timing(self.relaxed_timing)
            .with_deprecate_auto_eoi(self.deprecate_auto_eoi)
    }

    /// Checks the choice (see the [module documentation](self)).
    pub fn validate(&self) -> Result<(), CpuidError> {
        let forbidden = self.extra_privileges.0 & FORBIDDEN_PRIVILEGES.0;
        if forbidden != 0 {
            return Err(CpuidError::ForbiddenPrivileges { bits: forbidden });
        }
        let forbidden = self.extra_hints.0 & FORBIDDEN_HINTS.0;
        if forbidden != 0 {
            return Err(CpuidError::ForbiddenHints { bits: forbidden });
        }
        if self.extra_privileges.0 & MANAGED_PRIVILEGES.0 != 0
            || self.extra_hints.0 & MANAGED_HINTS.0 != 0
            || self.extra_features.0 & MANAGED_MISC.0 != 0
            || self.extra_privileges.reserved_bits() != 0
            || self.extra_hints.reserved_bits() != 0
            || self.extra_features.reserved_bits() != 0
        {
            return Err(CpuidError::UnmanagedBits);
        }
        if self.vendor.starts_with(&KVM_SIGNATURE[..9]) {
            return Err(CpuidError::KvmSignature);
        }
        if !(MIN_MAX_LEAF..=MAX_DEFINED_LEAF).contains(&self.max_leaf) {
            return Err(CpuidError::MaxLeafOutOfRange {
                max_leaf: self.max_leaf,
            });
        }
        if self.max_vps == 0 {
            return Err(CpuidError::NoVps);
        }
        if self.synic && !self.deprecate_auto_eoi {
            return Err(CpuidError::AutoEoiWithSynic);
        }
        if self.reference_tsc && !self.time_ref_count {
            return Err(CpuidError::TscPageWithoutTimeRefCount);
        }
        if !self.reference_tsc && !self.tsc_invariant_control {
            return Err(CpuidError::UnstableClock);
        }
        if self.xmm_fast_output && !self.xmm_fast_input {
            return Err(CpuidError::XmmOutputWithoutInput);
        }
        if self.physical_address_bits > 0x7f {
            return Err(CpuidError::PhysicalAddressBits {
                bits: self.physical_address_bits,
            });
        }
        Ok(())
    }

    /// Validates the choice and produces the leaves 0x40000000..=`max_leaf`.
    pub fn cpuid_leaves(&self) -> Result<CpuidLeaves, CpuidError> {
        self.validate()?;
        let [vendor_b, vendor_c, vendor_d] = signature_words(self.vendor);
        let v = self.version;
        let privileges = self.privileges();
        let mut leaves = [CpuidLeaf::default(); LEAF_SLOTS];
        for (i, leaf) in leaves.iter_mut().enumerate() {
            leaf.function = LEAF_VENDOR_AND_MAX + i as u32;
        }
        leaves[0] = CpuidLeaf {
            function: LEAF_VENDOR_AND_MAX,
            eax: self.max_leaf,
            ebx: vendor_b,
            ecx: vendor_c,
            edx: vendor_d,
        };
        leaves[1].eax = HV1_INTERFACE_SIGNATURE;
        leaves[2] = CpuidLeaf {
            function: LEAF_VERSION,
            eax: v.build,
            ebx: u32::from(v.major) << 16 | u32::from(v.minor),
            ecx: v.service_pack,
            edx: u32::from(v.service_branch) << 24 | (v.service_number & 0xff_ffff),
        };
        leaves[3] = CpuidLeaf {
            function: LEAF_FEATURES,
            eax: privileges.eax(),
            ebx: privileges.ebx(),
            ecx: 0,
            edx: self.features().0,
        };
        leaves[4] = CpuidLeaf {
            function: LEAF_ENLIGHTENMENTS,
            eax: self.hints().0,
            // Never notify long spin waits.
            ebx: u32::MAX,
            ecx: u32::from(self.physical_address_bits),
            edx: 0,
        };
        leaves[5] = CpuidLeaf {
            function: LEAF_IMPLEMENTATION_LIMITS,
            eax: self.max_vps,
            ebx: self.max_lps,
            ecx: 0,
            edx: 0,
        };
        debug_assert_eq!(leaves[1].function, LEAF_INTERFACE);
        Ok(CpuidLeaves {
            leaves,
            len: (self.max_leaf - LEAF_VENDOR_AND_MAX + 1) as usize,
        })
    }
}

const LEAF_SLOTS: usize = (MAX_DEFINED_LEAF - LEAF_VENDOR_AND_MAX + 1) as usize;

/// The produced leaves, in function order from 0x40000000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidLeaves {
    leaves: [CpuidLeaf; LEAF_SLOTS],
    len: usize,
}

impl CpuidLeaves {
    /// The leaves as a slice.
    pub fn as_slice(&self) -> &[CpuidLeaf] {
        &self.leaves[..self.len]
    }

    /// The leaf for `function`, if produced.
    pub fn get(&self, function: u32) -> Option<CpuidLeaf> {
        self.as_slice()
            .iter()
            .copied()
            .find(|l| l.function == function)
    }
}

/// A feature choice the builder refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CpuidError {
    /// Privileges that make a guest assume the root partition or call unserved hypercalls.
    #[error("privilege bits {bits:#x} are never advertised (root partition, partition id, extended hypercalls, isolation)")]
    ForbiddenPrivileges {
        /// The offending bits.
        bits: u64,
    },
    /// Hints that make a guest call unserved hypercalls or MSRs.
    #[error("hint bits {bits:#x} are never advertised (remote flush, apic msrs, cluster ipi, evmcs, mmio hypercalls)")]
    ForbiddenHints {
        /// The offending bits.
        bits: u32,
    },
    /// Extra bits collide with the bits the fields manage, or are reserved.
    #[error("extra privilege, hint or feature bits overlap the managed or reserved ones")]
    UnmanagedBits,
    /// The vendor signature is KVM's.
    #[error("the vendor signature must not be kvm's")]
    KvmSignature,
    /// The max leaf is outside 0x40000005..=0x4000000A.
    #[error("max leaf {max_leaf:#x} is outside 0x40000005..=0x4000000a")]
    MaxLeafOutOfRange {
        /// The requested max leaf.
        max_leaf: u32,
    },
    /// Zero VPs.
    #[error("max vps must be at least 1")]
    NoVps,
    /// SynIC without the deprecate-auto-EOI hint.
    #[error("a synic needs the deprecate-auto-eoi hint (auto-eoi loses interrupts with lapic injection)")]
    AutoEoiWithSynic,
    /// TSC page without the reference counter.
    #[error("the reference tsc page needs time_ref_count as its fallback")]
    TscPageWithoutTimeRefCount,
    /// Neither the TSC page nor TSC-invariant control: Linux marks the TSC unstable.
    #[error("neither the reference tsc page nor tsc-invariant control: the guest would mark its tsc unstable")]
    UnstableClock,
    /// XMM output without XMM input.
    #[error("xmm fast output needs xmm fast input")]
    XmmOutputWithoutInput,
    /// Physical address bits beyond the 7-bit field.
    #[error("physical address bits {bits} do not fit 7 bits")]
    PhysicalAddressBits {
        /// The requested value.
        bits: u8,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::{signature_bytes, HYPERVISOR_PRESENT_ECX_BIT, LEAF_NESTED_FEATURES};

    #[test]
    fn linux_vmbus_leaves() {
        let leaves = Enlightenments::linux_vmbus(4).cpuid_leaves().unwrap();
        assert_eq!(leaves.as_slice().len(), 11);
        let l0 = leaves.get(LEAF_VENDOR_AND_MAX).unwrap();
        assert_eq!(l0.eax, 0x4000_000a);
        assert_eq!(signature_bytes([l0.ebx, l0.ecx, l0.edx]), *b"Microsoft Hv");
        assert_eq!(leaves.get(LEAF_INTERFACE).unwrap().eax, 0x3123_7648);
        let l3 = leaves.get(LEAF_FEATURES).unwrap();
        // EAX bits 1, 2, 5, 6, 9; EBX bits 4, 5 (reference §6.2).
        assert_eq!(l3.eax, 1 << 1 | 1 << 2 | 1 << 5 | 1 << 6 | 1 << 9);
        assert_eq!(l3.ebx, 1 << 4 | 1 << 5);
        assert_eq!(l3.edx, 0);
        let l4 = leaves.get(LEAF_ENLIGHTENMENTS).unwrap();
        assert_eq!(l4.eax, 1 << 5 | 1 << 9);
        assert_eq!(l4.ebx, 0xffff_ffff);
        assert_eq!(leaves.get(LEAF_IMPLEMENTATION_LIMITS).unwrap().eax, 4);
        let l2 = leaves.get(LEAF_VERSION).unwrap();
        assert_eq!((l2.eax, l2.ebx), (19041, 10 << 16));
        // Every field of the version leaf in its place; the service number keeps 24 bits.
        let e = Enlightenments {
            version: HvVersion {
                build: 22621,
                major: 10,
                minor: 3,
                service_pack: 2,
                service_branch: 0x5a,
                service_number: 0x0123_4567,
            },
            ..Enlightenments::linux_vmbus(4)
        };
        let l2 = e.cpuid_leaves().unwrap().get(LEAF_VERSION).unwrap();
        assert_eq!(
            (l2.eax, l2.ebx, l2.ecx, l2.edx),
            (22621, 10 << 16 | 3, 2, 0x5a23_4567)
        );
        assert_eq!(leaves.get(LEAF_NESTED_FEATURES).unwrap().eax, 0);
        assert!(leaves.get(0x4000_000b).is_none());
        assert_ne!(HYPERVISOR_PRESENT_ECX_BIT, 0);
    }

    #[test]
    fn no_leaf_ever_carries_a_kvm_signature() {
        let mut e = Enlightenments::linux_vmbus(1);
        for max in MIN_MAX_LEAF..=MAX_DEFINED_LEAF {
            e.max_leaf = max;
            let leaves = e.cpuid_leaves().unwrap();
            assert_eq!(leaves.as_slice().len() as u32, max - 0x4000_0000 + 1);
            for l in leaves.as_slice() {
                assert!((0x4000_0000..=0x4000_000a).contains(&l.function));
                assert_ne!(signature_bytes([l.ebx, l.ecx, l.edx]), KVM_SIGNATURE);
            }
        }
        e.vendor = *b"KVMKVMKVM\0\0\0";
        assert_eq!(e.cpuid_leaves(), Err(CpuidError::KvmSignature));
    }

    #[test]
    fn optional_features() {
        let mut e = Enlightenments::linux_vmbus(2);
        e.frequencies = Some(Frequencies {
            tsc_hz: 2_000_000_000,
            apic_hz: 1_000_000_000,
        });
        e.tsc_invariant_control = true;
        e.xmm_fast_input = true;
        e.xmm_fast_output = true;
        e.apic_access = true;
        e.physical_address_bits = 46;
        e.extra_features = MiscFeatures::new().with_guest_crash_regs(true);
        let leaves = e.cpuid_leaves().unwrap();
        let l3 = leaves.get(LEAF_FEATURES).unwrap();
        assert_eq!(
            l3.eax & (1 << 11 | 1 << 15 | 1 << 4),
            1 << 11 | 1 << 15 | 1 << 4
        );
        assert_eq!(l3.ebx & 1 << 19, 1 << 19);
        assert_eq!(l3.edx, 1 << 4 | 1 << 8 | 1 << 10 | 1 << 15);
        assert_eq!(leaves.get(LEAF_ENLIGHTENMENTS).unwrap().ecx, 46);
    }

    #[test]
    fn table_of_refusals() {
        let base = Enlightenments::linux_vmbus(1);
        let cases: &[(&str, Enlightenments, CpuidError)] = &[
            (
                "root partition bit",
                Enlightenments {
                    extra_privileges: Privileges::new().with_cpu_management(true),
                    ..base
                },
                CpuidError::ForbiddenPrivileges { bits: 1 << 44 },
            ),
            (
                "partition id",
                Enlightenments {
                    extra_privileges: Privileges::new().with_access_partition_id(true),
                    ..base
                },
                CpuidError::ForbiddenPrivileges { bits: 1 << 33 },
            ),
            (
                "extended hypercalls",
                Enlightenments {
                    extra_privileges: Privileges::new().with_enable_extended_hypercalls(true),
                    ..base
                },
                CpuidError::ForbiddenPrivileges { bits: 1 << 52 },
            ),
            (
                "isolation",
                Enlightenments {
                    extra_privileges: Privileges::new().with_isolation(true),
                    ..base
                },
                CpuidError::ForbiddenPrivileges { bits: 1 << 54 },
            ),
            (
                "remote flush hint",
                Enlightenments {
                    extra_hints: EnlightenmentHints::new().with_hypercall_for_remote_flush(true),
                    ..base
                },
                CpuidError::ForbiddenHints { bits: 1 << 2 },
            ),
            (
                "cluster ipi hint",
                Enlightenments {
                    extra_hints: EnlightenmentHints::new().with_synthetic_cluster_ipi(true),
                    ..base
                },
                CpuidError::ForbiddenHints { bits: 1 << 10 },
            ),
            (
                "evmcs hint",
                Enlightenments {
                    extra_hints: EnlightenmentHints::new().with_enlightened_vmcs(true),
                    ..base
                },
                CpuidError::ForbiddenHints { bits: 1 << 14 },
            ),
            (
                "managed bit through extras",
                Enlightenments {
                    extra_privileges: Privileges::new().with_access_synic_msrs(true),
                    ..base
                },
                CpuidError::UnmanagedBits,
            ),
            (
                "reserved extra bit",
                Enlightenments {
                    extra_features: MiscFeatures(1 << 31),
                    ..base
                },
                CpuidError::UnmanagedBits,
            ),
            (
                "max leaf low",
                Enlightenments {
                    max_leaf: 0x4000_0004,
                    ..base
                },
                CpuidError::MaxLeafOutOfRange {
                    max_leaf: 0x4000_0004,
                },
            ),
            (
                "max leaf high",
                Enlightenments {
                    max_leaf: 0x4000_000b,
                    ..base
                },
                CpuidError::MaxLeafOutOfRange {
                    max_leaf: 0x4000_000b,
                },
            ),
            (
                "no vps",
                Enlightenments { max_vps: 0, ..base },
                CpuidError::NoVps,
            ),
            (
                "auto eoi",
                Enlightenments {
                    deprecate_auto_eoi: false,
                    ..base
                },
                CpuidError::AutoEoiWithSynic,
            ),
            (
                "tsc page alone",
                Enlightenments {
                    time_ref_count: false,
                    ..base
                },
                CpuidError::TscPageWithoutTimeRefCount,
            ),
            (
                "unstable clock",
                Enlightenments {
                    reference_tsc: false,
                    ..base
                },
                CpuidError::UnstableClock,
            ),
            (
                "xmm out alone",
                Enlightenments {
                    xmm_fast_output: true,
                    ..base
                },
                CpuidError::XmmOutputWithoutInput,
            ),
            (
                "pa bits",
                Enlightenments {
                    physical_address_bits: 128,
                    ..base
                },
                CpuidError::PhysicalAddressBits { bits: 128 },
            ),
        ];
        for (name, e, err) in cases {
            assert_eq!(e.cpuid_leaves(), Err(*err), "{name}");
        }
        // Each kind of extra bit on its own: one the fields manage, then a reserved one.
        let privileges = Privileges(!0).reserved_bits();
        let hints = EnlightenmentHints(!0).reserved_bits();
        let unmanaged = [
            Enlightenments {
                extra_hints: EnlightenmentHints::new().with_relaxed_timing(true),
                ..base
            },
            Enlightenments {
                extra_features: MiscFeatures::new().with_frequency_regs(true),
                ..base
            },
            Enlightenments {
                extra_privileges: Privileges(privileges & privileges.wrapping_neg()),
                ..base
            },
            Enlightenments {
                extra_hints: EnlightenmentHints(hints & hints.wrapping_neg()),
                ..base
            },
        ];
        for e in unmanaged {
            assert_eq!(e.validate(), Err(CpuidError::UnmanagedBits), "{e:?}");
        }
        // The widest physical address width the 7-bit field holds.
        let widest = Enlightenments {
            physical_address_bits: 0x7f,
            ..base
        };
        let leaves = widest.cpuid_leaves().unwrap();
        assert_eq!(leaves.get(LEAF_ENLIGHTENMENTS).unwrap().ecx, 0x7f);
        // A SynIC-less partition may keep auto-EOI; TSC-invariant control alone is a stable clock.
        let ok = Enlightenments {
            synic: false,
            deprecate_auto_eoi: false,
            reference_tsc: false,
            tsc_invariant_control: true,
            ..base
        };
        assert!(ok.cpuid_leaves().is_ok());
    }
}
