//! Hypercall call codes (TLFS "Hypercall Code Reference"; reference §5.4).

use crate::macros::open_enum;

open_enum! {
    /// A 16-bit call code: the low 16 bits of the hypercall input value.
    ///
    /// Codes with bit 15 set are *extended* hypercalls (advertised by privilege
    /// `enable_extended_hypercalls`).
    pub struct HypercallCode(u16) {
        /// `HvCallSwitchVirtualAddressSpace`.
        SWITCH_VIRTUAL_ADDRESS_SPACE = 0x0001,
        /// `HvCallFlushVirtualAddressSpace` (Linux uses it only with hint bit 2).
        FLUSH_VIRTUAL_ADDRESS_SPACE = 0x0002,
        /// `HvCallFlushVirtualAddressList` (rep; Linux uses it only with hint bit 2).
        FLUSH_VIRTUAL_ADDRESS_LIST = 0x0003,
        /// `HvCallNotifyLongSpinWait` (Windows; disabled by a spin count of `0xffffffff`).
        NOTIFY_LONG_SPIN_WAIT = 0x0008,
        /// `HvCallInvokeHypervisorDebugger`.
        INVOKE_HYPERVISOR_DEBUGGER = 0x000a,
        /// `HvCallSendSyntheticClusterIpi` (Linux uses it only with hint bit 10).
        SEND_SYNTHETIC_CLUSTER_IPI = 0x000b,
        /// `HvCallModifyVtlProtectionMask` (VSM).
        MODIFY_VTL_PROTECTION_MASK = 0x000c,
        /// `HvCallEnablePartitionVtl` (VSM).
        ENABLE_PARTITION_VTL = 0x000d,
        /// `HvCallEnableVpVtl` (VSM).
        ENABLE_VP_VTL = 0x000f,
        /// `HvCallVtlCall` (VSM).
        VTL_CALL = 0x0011,
        /// `HvCallVtlReturn` (VSM).
        VTL_RETURN = 0x0012,
        /// `HvCallFlushVirtualAddressSpaceEx`.
        FLUSH_VIRTUAL_ADDRESS_SPACE_EX = 0x0013,
        /// `HvCallFlushVirtualAddressListEx`.
        FLUSH_VIRTUAL_ADDRESS_LIST_EX = 0x0014,
        /// `HvCallSendSyntheticClusterIpiEx`.
        SEND_SYNTHETIC_CLUSTER_IPI_EX = 0x0015,
        /// `HvCallGetPartitionId` (Linux calls it only with privilege `access_partition_id`).
        GET_PARTITION_ID = 0x0046,
        /// `HvCallDepositMemory` (root).
        DEPOSIT_MEMORY = 0x0048,
        /// `HvCallInstallIntercept`.
        INSTALL_INTERCEPT = 0x004d,
        /// `HvCallCreateVp` (root).
        CREATE_VP = 0x004e,
        /// `HvCallGetVpRegisters` (rep).
        GET_VP_REGISTERS = 0x0050,
        /// `HvCallSetVpRegisters` (rep).
        SET_VP_REGISTERS = 0x0051,
        /// `HvCallTranslateVirtualAddress`.
        TRANSLATE_VIRTUAL_ADDRESS = 0x0052,
        /// `HvCallPostMessage`: 256-byte input, memory-based only.
        POST_MESSAGE = 0x005c,
        /// `HvCallSignalEvent`: 8-byte input, usually fast.
        SIGNAL_EVENT = 0x005d,
        /// `HvCallOutputDebugCharacter`.
        OUTPUT_DEBUG_CHARACTER = 0x0071,
        /// `HvCallGetSystemProperty`.
        GET_SYSTEM_PROPERTY = 0x007b,
        /// `HvCallMapDeviceInterrupt` (pci-hyperv).
        MAP_DEVICE_INTERRUPT = 0x007c,
        /// `HvCallUnmapDeviceInterrupt` (pci-hyperv).
        UNMAP_DEVICE_INTERRUPT = 0x007d,
        /// `HvCallRetargetDeviceInterrupt` (pci-hyperv).
        RETARGET_DEVICE_INTERRUPT = 0x007e,
        /// `HvCallAssertVirtualInterrupt`.
        ASSERT_VIRTUAL_INTERRUPT = 0x0094,
        /// `HvCallStartVirtualProcessor`.
        START_VIRTUAL_PROCESSOR = 0x0099,
        /// `HvCallGetVpIndexFromApicId`.
        GET_VP_INDEX_FROM_APIC_ID = 0x009a,
        /// `HvCallFlushGuestPhysicalAddressSpace` (nested).
        FLUSH_GUEST_PHYSICAL_ADDRESS_SPACE = 0x00af,
        /// `HvCallFlushGuestPhysicalAddressList` (nested).
        FLUSH_GUEST_PHYSICAL_ADDRESS_LIST = 0x00b0,
        /// `HvCallSignalEventDirect`.
        SIGNAL_EVENT_DIRECT = 0x00c0,
        /// `HvCallPostMessageDirect`.
        POST_MESSAGE_DIRECT = 0x00c1,
        /// `HvCallModifySparseGpaPageHostVisibility` (confidential VMs).
        MODIFY_SPARSE_GPA_PAGE_HOST_VISIBILITY = 0x00db,
        /// `HvCallMemoryMappedIoRead`.
        MEMORY_MAPPED_IO_READ = 0x0106,
        /// `HvCallMemoryMappedIoWrite`.
        MEMORY_MAPPED_IO_WRITE = 0x0107,
        /// `HvExtCallQueryCapabilities` (extended; Linux only with privilege bit 20).
        EXT_QUERY_CAPABILITIES = 0x8001,
        /// `HvExtCallMemoryHeatHint` (extended).
        EXT_MEMORY_HEAT_HINT = 0x8003,
    }
}

impl HypercallCode {
    /// Whether this is an extended hypercall (bit 15 set).
    pub const fn is_extended(self) -> bool {
        self.0 & 0x8000 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmbus_codes() {
        assert_eq!(HypercallCode::POST_MESSAGE.0, 0x5c);
        assert_eq!(HypercallCode::SIGNAL_EVENT.0, 0x5d);
        assert!(HypercallCode::EXT_QUERY_CAPABILITIES.is_extended());
        assert!(!HypercallCode::SIGNAL_EVENT.is_extended());
        assert_eq!(HypercallCode::ALL.len(), 40);
        assert_eq!(std::format!("{:?}", HypercallCode(0x5d)), "SIGNAL_EVENT");
    }
}
