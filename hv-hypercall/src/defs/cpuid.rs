//! The Hyper-V CPUID leaves 0x40000000–0x4000000A and their feature, privilege and hint bits
//! (TLFS "Feature and Interface Discovery"; reference §5.7).

use crate::macros::bitfield;

/// Vendor and max leaf: EAX = highest leaf, EBX:ECX:EDX = vendor signature.
pub const LEAF_VENDOR_AND_MAX: u32 = 0x4000_0000;
/// Interface signature: EAX = `"Hv#1"`.
pub const LEAF_INTERFACE: u32 = 0x4000_0001;
/// Hypervisor version.
pub const LEAF_VERSION: u32 = 0x4000_0002;
/// Features: EAX:EBX privileges, ECX power features, EDX miscellaneous features.
pub const LEAF_FEATURES: u32 = 0x4000_0003;
/// Enlightenment recommendations: EAX hints, EBX spin-wait retries, ECX physical address bits.
pub const LEAF_ENLIGHTENMENTS: u32 = 0x4000_0004;
/// Implementation limits: EAX max VPs, EBX max LPs, ECX max interrupt-remap vectors.
pub const LEAF_IMPLEMENTATION_LIMITS: u32 = 0x4000_0005;
/// Hardware features in use by the hypervisor.
pub const LEAF_HARDWARE_FEATURES: u32 = 0x4000_0006;
/// CPU management features (root partition only).
pub const LEAF_CPU_MANAGEMENT: u32 = 0x4000_0007;
/// SVM features.
pub const LEAF_SVM_FEATURES: u32 = 0x4000_0008;
/// Nested hypervisor feature indication.
pub const LEAF_NESTED_HYPERVISOR: u32 = 0x4000_0009;
/// Nested virtualization optimizations.
pub const LEAF_NESTED_FEATURES: u32 = 0x4000_000a;

/// The lowest max leaf Linux accepts (it reads up to the implementation limits).
pub const MIN_MAX_LEAF: u32 = LEAF_IMPLEMENTATION_LIMITS;
/// The highest leaf this crate defines.
pub const MAX_DEFINED_LEAF: u32 = LEAF_NESTED_FEATURES;

/// CPUID.1:ECX bit 31, "hypervisor present": the VMM must set it in the base leaf.
pub const HYPERVISOR_PRESENT_ECX_BIT: u32 = 1 << 31;

/// The vendor signature `"Microsoft Hv"` as EBX, ECX, EDX.
pub const MICROSOFT_HV_SIGNATURE: [u32; 3] = signature_words(*b"Microsoft Hv");

/// `"Hv#1"`, the interface signature in 0x40000001 EAX.
pub const HV1_INTERFACE_SIGNATURE: u32 = u32::from_le_bytes(*b"Hv#1");

/// `"KVMKVMKVM\0\0\0"`, the signature that must never appear (reference §6.1, pitfall 1).
pub const KVM_SIGNATURE: [u8; 12] = *b"KVMKVMKVM\0\0\0";

/// Splits a 12-byte vendor signature into the EBX, ECX, EDX words.
pub const fn signature_words(sig: [u8; 12]) -> [u32; 3] {
    [
        u32::from_le_bytes([sig[0], sig[1], sig[2], sig[3]]),
        u32::from_le_bytes([sig[4], sig[5], sig[6], sig[7]]),
        u32::from_le_bytes([sig[8], sig[9], sig[10], sig[11]]),
    ]
}

/// Joins EBX, ECX, EDX back into the 12-byte signature.
pub const fn signature_bytes(words: [u32; 3]) -> [u8; 12] {
    let [a, b, c] = [
        words[0].to_le_bytes(),
        words[1].to_le_bytes(),
        words[2].to_le_bytes(),
    ];
    [
        a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3],
    ]
}

/// One CPUID leaf's output registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuidLeaf {
    /// The function (EAX input).
    pub function: u32,
    /// EAX output.
    pub eax: u32,
    /// EBX output.
    pub ebx: u32,
    /// ECX output.
    pub ecx: u32,
    /// EDX output.
    pub edx: u32,
}

bitfield! {
    /// The partition privilege mask: 0x40000003 EAX (bits 31:0) and EBX (bits 63:32).
    pub struct Privileges(u64) {
        /// `VP_RUNTIME` MSR.
        access_vp_runtime_msr, with_access_vp_runtime_msr: bool [0],
        /// `TIME_REF_COUNT` MSR.
        access_partition_reference_counter, with_access_partition_reference_counter: bool [1],
        /// SynIC MSRs.
        access_synic_msrs, with_access_synic_msrs: bool [2],
        /// Synthetic timer MSRs.
        access_synthetic_timer_msrs, with_access_synthetic_timer_msrs: bool [3],
        /// APIC MSRs (EOI/ICR/TPR) and the VP assist page.
        access_apic_msrs, with_access_apic_msrs: bool [4],
        /// `HYPERCALL` and `GUEST_OS_ID` (Linux requires it).
        access_hypercall_msrs, with_access_hypercall_msrs: bool [5],
        /// `VP_INDEX` (Linux requires it).
        access_vp_index, with_access_vp_index: bool [6],
        /// `RESET` MSR.
        access_reset_msr, with_access_reset_msr: bool [7],
        /// Statistics MSRs.
        access_stats_msr, with_access_stats_msr: bool [8],
        /// `REFERENCE_TSC` page.
        access_partition_reference_tsc, with_access_partition_reference_tsc: bool [9],
        /// `GUEST_IDLE` MSR.
        access_guest_idle_msr, with_access_guest_idle_msr: bool [10],
        /// `TSC_FREQUENCY` / `APIC_FREQUENCY` MSRs.
        access_frequency_msrs, with_access_frequency_msrs: bool [11],
        /// Debug MSRs.
        access_debug_msrs, with_access_debug_msrs: bool [12],
        /// Reenlightenment controls.
        access_reenlightenment_controls, with_access_reenlightenment_controls: bool [13],
        /// Root scheduler MSR.
        access_root_scheduler_msr, with_access_root_scheduler_msr: bool [14],
        /// `TSC_INVARIANT_CONTROL` MSR.
        access_tsc_invariant_controls, with_access_tsc_invariant_controls: bool [15],
        /// CreatePartitions (root).
        create_partitions, with_create_partitions: bool [32],
        /// AccessPartitionId: Linux then calls `HvCallGetPartitionId`.
        access_partition_id, with_access_partition_id: bool [33],
        /// AccessMemoryPool.
        access_memory_pool, with_access_memory_pool: bool [34],
        /// AdjustMessageBuffers.
        adjust_message_buffers, with_adjust_message_buffers: bool [35],
        /// PostMessages.
        post_messages, with_post_messages: bool [36],
        /// SignalEvents.
        signal_events, with_signal_events: bool [37],
        /// CreatePort.
        create_port, with_create_port: bool [38],
        /// ConnectPort.
        connect_port, with_connect_port: bool [39],
        /// AccessStats.
        access_stats, with_access_stats: bool [40],
        /// Debugging.
        debugging, with_debugging: bool [43],
        /// CpuManagement: Linux takes the partition for the root partition.
        cpu_management, with_cpu_management: bool [44],
        /// ConfigureProfiler.
        configure_profiler, with_configure_profiler: bool [45],
        /// AccessVpExitTracing.
        access_vp_exit_tracing, with_access_vp_exit_tracing: bool [46],
        /// EnableExtendedGvaRangesForFlushVirtualAddressList.
        extended_gva_ranges_flush, with_extended_gva_ranges_flush: bool [47],
        /// AccessVsm.
        access_vsm, with_access_vsm: bool [48],
        /// AccessVpRegisters.
        access_vp_registers, with_access_vp_registers: bool [49],
        /// FastHypercallOutput.
        fast_hypercall_output, with_fast_hypercall_output: bool [51],
        /// EnableExtendedHypercalls: Linux then calls `HvExtCallQueryCapabilities`.
        enable_extended_hypercalls, with_enable_extended_hypercalls: bool [52],
        /// StartVirtualProcessor.
        start_virtual_processor, with_start_virtual_processor: bool [53],
        /// Isolation (0x4000000C is then valid).
        isolation, with_isolation: bool [54],
    }
}

impl Privileges {
    /// The 0x40000003 EAX word.
    pub const fn eax(self) -> u32 {
        self.0 as u32
    }

    /// The 0x40000003 EBX word.
    pub const fn ebx(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// From the two words.
    pub const fn from_registers(eax: u32, ebx: u32) -> Self {
        Self((ebx as u64) << 32 | eax as u64)
    }
}

bitfield! {
    /// 0x40000003 ECX: power-management features.
    pub struct PowerFeatures(u32) {
        /// Deepest C-state the guest may use.
        max_cstate, with_max_cstate: u8 [0..4],
        /// HPET needed for C3 (deprecated).
        hpet_needed_for_c3, with_hpet_needed_for_c3: bool [4],
        /// Invariant MPERF available.
        invariant_mperf, with_invariant_mperf: bool [5],
        /// Supervisor shadow stack available.
        supervisor_shadow_stack, with_supervisor_shadow_stack: bool [6],
        /// Architectural PMU available.
        arch_pmu, with_arch_pmu: bool [7],
        /// Exception trap intercept available.
        exception_trap_intercept, with_exception_trap_intercept: bool [8],
    }
}

bitfield! {
    /// 0x40000003 EDX: miscellaneous features.
    pub struct MiscFeatures(u32) {
        /// MWAIT available (deprecated).
        mwait, with_mwait: bool [0],
        /// Guest debugging.
        guest_debugging, with_guest_debugging: bool [1],
        /// Performance monitors.
        performance_monitors, with_performance_monitors: bool [2],
        /// CPU dynamic partitioning.
        cpu_dynamic_partitioning, with_cpu_dynamic_partitioning: bool [3],
        /// XMM registers for fast hypercall input.
        xmm_fast_hypercall_input, with_xmm_fast_hypercall_input: bool [4],
        /// Guest idle.
        guest_idle, with_guest_idle: bool [5],
        /// Hypervisor sleep state.
        hypervisor_sleep_state, with_hypervisor_sleep_state: bool [6],
        /// NUMA distance query.
        numa_distance_query, with_numa_distance_query: bool [7],
        /// `TSC_FREQUENCY`/`APIC_FREQUENCY` readable (with privilege bit 11).
        frequency_regs, with_frequency_regs: bool [8],
        /// Synthetic machine check.
        synthetic_machine_check, with_synthetic_machine_check: bool [9],
        /// Guest crash MSRs.
        guest_crash_regs, with_guest_crash_regs: bool [10],
        /// Debug MSRs.
        debug_regs, with_debug_regs: bool [11],
        /// NPIEP.
        npiep, with_npiep: bool [12],
        /// Disable hypervisor.
        disable_hypervisor, with_disable_hypervisor: bool [13],
        /// Extended GVA ranges for flush virtual address list.
        extended_gva_ranges_flush, with_extended_gva_ranges_flush: bool [14],
        /// Fast hypercall output in XMM registers.
        xmm_fast_hypercall_output, with_xmm_fast_hypercall_output: bool [15],
        /// SVM features.
        svm_features, with_svm_features: bool [16],
        /// SINT polling mode.
        sint_polling_mode, with_sint_polling_mode: bool [17],
        /// Hypercall MSR lock.
        hypercall_msr_lock, with_hypercall_msr_lock: bool [18],
        /// Direct synthetic timers.
        direct_synthetic_timers, with_direct_synthetic_timers: bool [19],
    }
}

bitfield! {
    /// 0x40000004 EAX: recommendations to the guest.
    pub struct EnlightenmentHints(u32) {
        /// Use a hypercall for address-space switches.
        hypercall_for_address_space_switch, with_hypercall_for_address_space_switch: bool [0],
        /// Use a hypercall for local TLB flushes.
        hypercall_for_local_flush, with_hypercall_for_local_flush: bool [1],
        /// Use a hypercall for remote TLB flushes (Linux then calls the flush hypercalls).
        hypercall_for_remote_flush, with_hypercall_for_remote_flush: bool [2],
        /// Use the APIC MSRs (EOI/ICR/TPR).
        apic_msrs, with_apic_msrs: bool [3],
        /// Use the `RESET` MSR to reset.
        reset_msr, with_reset_msr: bool [4],
        /// Relaxed timing: disable watchdog timeouts.
        relaxed_timing, with_relaxed_timing: bool [5],
        /// Use DMA remapping (deprecated).
        dma_remapping, with_dma_remapping: bool [6],
        /// Use interrupt remapping (deprecated).
        interrupt_remapping, with_interrupt_remapping: bool [7],
        /// Use the x2APIC MSRs.
        x2apic_msrs, with_x2apic_msrs: bool [8],
        /// Deprecate auto-EOI: the guest must EOI SINT vectors itself.
        deprecate_auto_eoi, with_deprecate_auto_eoi: bool [9],
        /// Use the synthetic cluster IPI hypercall.
        synthetic_cluster_ipi, with_synthetic_cluster_ipi: bool [10],
        /// Use the "Ex" processor masks.
        ex_processor_masks, with_ex_processor_masks: bool [11],
        /// The partition runs nested.
        nested, with_nested: bool [12],
        /// Use INT for MBEC system calls.
        int_for_mbec_system_calls, with_int_for_mbec_system_calls: bool [13],
        /// Use the enlightened VMCS.
        enlightened_vmcs, with_enlightened_vmcs: bool [14],
        /// Use the synced timeline.
        synced_timeline, with_synced_timeline: bool [15],
        /// Core scheduler requested.
        core_scheduler_requested, with_core_scheduler_requested: bool [16],
        /// Use the direct local flush entire.
        direct_local_flush_entire, with_direct_local_flush_entire: bool [17],
        /// No non-architectural core sharing.
        no_non_architectural_core_sharing, with_no_non_architectural_core_sharing: bool [18],
        /// Use x2APIC.
        x2apic, with_x2apic: bool [19],
        /// Restore time on resume.
        restore_time_on_resume, with_restore_time_on_resume: bool [20],
        /// Use hypercalls for MMIO access.
        hypercall_for_mmio, with_hypercall_for_mmio: bool [21],
        /// Use the GPA pinning hypercall.
        gpa_pinning_hypercall, with_gpa_pinning_hypercall: bool [22],
        /// Wake VPs.
        wake_vps, with_wake_vps: bool [23],
    }
}

bitfield! {
    /// 0x40000006 EAX: hardware features the hypervisor uses.
    pub struct HardwareFeatures(u32) {
        /// APIC overlay assist in use.
        apic_overlay_assist, with_apic_overlay_assist: bool [0],
        /// MSR bitmaps in use.
        msr_bitmaps, with_msr_bitmaps: bool [1],
        /// Architectural performance counters in use.
        architectural_performance_counters, with_architectural_performance_counters: bool [2],
        /// Second-level address translation in use.
        second_level_address_translation, with_second_level_address_translation: bool [3],
        /// DMA remapping in use.
        dma_remapping, with_dma_remapping: bool [4],
        /// Interrupt remapping in use.
        interrupt_remapping, with_interrupt_remapping: bool [5],
        /// Memory patrol scrubber present.
        memory_patrol_scrubber, with_memory_patrol_scrubber: bool [6],
        /// DMA protection in use.
        dma_protection, with_dma_protection: bool [7],
        /// HPET requested.
        hpet_requested, with_hpet_requested: bool [8],
        /// Synthetic timers are volatile.
        synthetic_timers_volatile, with_synthetic_timers_volatile: bool [9],
        /// Hypervisor level.
        hypervisor_level, with_hypervisor_level: u8 [10..14],
        /// Physical destination mode required.
        physical_destination_mode_required, with_physical_destination_mode_required: bool [14],
    }
}

bitfield! {
    /// 0x4000000A EAX: nested virtualization optimizations.
    pub struct NestedFeatures(u32) {
        /// Enlightened VMCS version range (low byte: lowest, high byte: highest).
        enlightened_vmcs_version, with_enlightened_vmcs_version: u16 [0..16],
        /// Direct virtual flush.
        direct_flush, with_direct_flush: bool [17],
        /// Guest-physical flush hypercalls.
        flush_guest_physical, with_flush_guest_physical: bool [18],
        /// Enlightened MSR bitmap.
        enlightened_msr_bitmap, with_enlightened_msr_bitmap: bool [19],
        /// Enlightened NPT TLB.
        enlightened_npt_tlb, with_enlightened_npt_tlb: bool [22],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(
            MICROSOFT_HV_SIGNATURE,
            [0x7263_694d, 0x666f_736f, 0x7648_2074]
        );
        assert_eq!(signature_bytes(MICROSOFT_HV_SIGNATURE), *b"Microsoft Hv");
        assert_eq!(HV1_INTERFACE_SIGNATURE, 0x3123_7648);
    }

    #[test]
    fn privilege_bits_match_the_reference() {
        let p = Privileges::new()
            .with_access_hypercall_msrs(true)
            .with_access_vp_index(true);
        assert_eq!(p.eax(), 1 << 5 | 1 << 6);
        let p = Privileges::new()
            .with_post_messages(true)
            .with_signal_events(true)
            .with_cpu_management(true)
            .with_access_partition_id(true)
            .with_enable_extended_hypercalls(true)
            .with_isolation(true)
            .with_access_vsm(true)
            .with_access_vp_registers(true)
            .with_fast_hypercall_output(true)
            .with_start_virtual_processor(true);
        assert_eq!(
            p.ebx(),
            1 << 4
                | 1 << 5
                | 1 << 12
                | 1 << 1
                | 1 << 20
                | 1 << 22
                | 1 << 16
                | 1 << 17
                | 1 << 19
                | 1 << 21
        );
        assert_eq!(Privileges::from_registers(p.eax(), p.ebx()), p);
        assert_eq!(
            Privileges::new()
                .with_access_partition_reference_tsc(true)
                .eax(),
            1 << 9
        );
        assert_eq!(
            Privileges::new()
                .with_access_tsc_invariant_controls(true)
                .eax(),
            1 << 15
        );
    }

    #[test]
    fn feature_and_hint_bits_match_the_reference() {
        assert_eq!(
            MiscFeatures::new().with_xmm_fast_hypercall_input(true).0,
            1 << 4
        );
        assert_eq!(
            MiscFeatures::new().with_xmm_fast_hypercall_output(true).0,
            1 << 15
        );
        assert_eq!(MiscFeatures::new().with_frequency_regs(true).0, 1 << 8);
        assert_eq!(MiscFeatures::new().with_sint_polling_mode(true).0, 1 << 17);
        assert_eq!(MiscFeatures::new().with_hypercall_msr_lock(true).0, 1 << 18);
        assert_eq!(
            MiscFeatures::new().with_direct_synthetic_timers(true).0,
            1 << 19
        );
        assert_eq!(
            EnlightenmentHints::new().with_deprecate_auto_eoi(true).0,
            1 << 9
        );
        assert_eq!(
            EnlightenmentHints::new().with_relaxed_timing(true).0,
            1 << 5
        );
        assert_eq!(
            EnlightenmentHints::new().with_hypercall_for_mmio(true).0,
            1 << 21
        );
        assert_eq!(
            EnlightenmentHints::new().with_enlightened_vmcs(true).0,
            1 << 14
        );
        assert_eq!(
            EnlightenmentHints::new()
                .with_no_non_architectural_core_sharing(true)
                .0,
            1 << 18
        );
        assert_eq!(PowerFeatures::new().with_max_cstate(0xf).0, 0xf);
        assert_eq!(PowerFeatures::new().with_invariant_mperf(true).0, 1 << 5);
        assert_eq!(NestedFeatures::new().with_direct_flush(true).0, 1 << 17);
        assert_eq!(
            NestedFeatures::new().with_enlightened_npt_tlb(true).0,
            1 << 22
        );
        assert_eq!(
            HardwareFeatures::new().with_hypervisor_level(0xf).0,
            0xf << 10
        );
    }
}
