//! Hypercall status codes (TLFS `HV_STATUS`; reference §5.3).
//!
//! The table is generated from the reference's list (one constant per code, in order); the
//! test below checks every value against the same list.

use crate::macros::open_enum;

open_enum! {
    /// A 16-bit hypercall status: the low 16 bits of the result value.
    pub struct HvStatus(u16) {
        /// `HV_STATUS_SUCCESS` (0x0).
        SUCCESS = 0x0000,
        /// `HV_STATUS_INVALID_HYPERCALL_CODE` (0x2).
        INVALID_HYPERCALL_CODE = 0x0002,
        /// `HV_STATUS_INVALID_HYPERCALL_INPUT` (0x3).
        INVALID_HYPERCALL_INPUT = 0x0003,
        /// `HV_STATUS_INVALID_ALIGNMENT` (0x4).
        INVALID_ALIGNMENT = 0x0004,
        /// `HV_STATUS_INVALID_PARAMETER` (0x5).
        INVALID_PARAMETER = 0x0005,
        /// `HV_STATUS_ACCESS_DENIED` (0x6).
        ACCESS_DENIED = 0x0006,
        /// `HV_STATUS_INVALID_PARTITION_STATE` (0x7).
        INVALID_PARTITION_STATE = 0x0007,
        /// `HV_STATUS_OPERATION_DENIED` (0x8).
        OPERATION_DENIED = 0x0008,
        /// `HV_STATUS_UNKNOWN_PROPERTY` (0x9).
        UNKNOWN_PROPERTY = 0x0009,
        /// `HV_STATUS_PROPERTY_VALUE_OUT_OF_RANGE` (0xa).
        PROPERTY_VALUE_OUT_OF_RANGE = 0x000a,
        /// `HV_STATUS_INSUFFICIENT_MEMORY` (0xb).
        INSUFFICIENT_MEMORY = 0x000b,
        /// `HV_STATUS_PARTITION_TOO_DEEP` (0xc).
        PARTITION_TOO_DEEP = 0x000c,
        /// `HV_STATUS_INVALID_PARTITION_ID` (0xd).
        INVALID_PARTITION_ID = 0x000d,
        /// `HV_STATUS_INVALID_VP_INDEX` (0xe).
        INVALID_VP_INDEX = 0x000e,
        /// `HV_STATUS_NOT_FOUND` (0x10).
        NOT_FOUND = 0x0010,
        /// `HV_STATUS_INVALID_PORT_ID` (0x11).
        INVALID_PORT_ID = 0x0011,
        /// `HV_STATUS_INVALID_CONNECTION_ID` (0x12).
        INVALID_CONNECTION_ID = 0x0012,
        /// `HV_STATUS_INSUFFICIENT_BUFFERS` (0x13).
        INSUFFICIENT_BUFFERS = 0x0013,
        /// `HV_STATUS_NOT_ACKNOWLEDGED` (0x14).
        NOT_ACKNOWLEDGED = 0x0014,
        /// `HV_STATUS_INVALID_VP_STATE` (0x15).
        INVALID_VP_STATE = 0x0015,
        /// `HV_STATUS_ACKNOWLEDGED` (0x16).
        ACKNOWLEDGED = 0x0016,
        /// `HV_STATUS_INVALID_SAVE_RESTORE_STATE` (0x17).
        INVALID_SAVE_RESTORE_STATE = 0x0017,
        /// `HV_STATUS_INVALID_SYNIC_STATE` (0x18).
        INVALID_SYNIC_STATE = 0x0018,
        /// `HV_STATUS_OBJECT_IN_USE` (0x19).
        OBJECT_IN_USE = 0x0019,
        /// `HV_STATUS_INVALID_PROXIMITY_DOMAIN_INFO` (0x1a).
        INVALID_PROXIMITY_DOMAIN_INFO = 0x001a,
        /// `HV_STATUS_NO_DATA` (0x1b).
        NO_DATA = 0x001b,
        /// `HV_STATUS_INACTIVE` (0x1c).
        INACTIVE = 0x001c,
        /// `HV_STATUS_NO_RESOURCES` (0x1d).
        NO_RESOURCES = 0x001d,
        /// `HV_STATUS_FEATURE_UNAVAILABLE` (0x1e).
        FEATURE_UNAVAILABLE = 0x001e,
        /// `HV_STATUS_PARTIAL_PACKET` (0x1f).
        PARTIAL_PACKET = 0x001f,
        /// `HV_STATUS_PROCESSOR_FEATURE_NOT_SUPPORTED` (0x20).
        PROCESSOR_FEATURE_NOT_SUPPORTED = 0x0020,
        /// `HV_STATUS_PROCESSOR_CACHE_LINE_FLUSH_SIZE_INCOMPATIBLE` (0x30).
        PROCESSOR_CACHE_LINE_FLUSH_SIZE_INCOMPATIBLE = 0x0030,
        /// `HV_STATUS_INSUFFICIENT_BUFFER` (0x33).
        INSUFFICIENT_BUFFER = 0x0033,
        /// `HV_STATUS_INCOMPATIBLE_PROCESSOR` (0x37).
        INCOMPATIBLE_PROCESSOR = 0x0037,
        /// `HV_STATUS_INSUFFICIENT_DEVICE_DOMAINS` (0x38).
        INSUFFICIENT_DEVICE_DOMAINS = 0x0038,
        /// `HV_STATUS_CPUID_FEATURE_VALIDATION_ERROR` (0x3c).
        CPUID_FEATURE_VALIDATION_ERROR = 0x003c,
        /// `HV_STATUS_CPUID_XSAVE_FEATURE_VALIDATION_ERROR` (0x3d).
        CPUID_XSAVE_FEATURE_VALIDATION_ERROR = 0x003d,
        /// `HV_STATUS_PROCESSOR_STARTUP_TIMEOUT` (0x3e).
        PROCESSOR_STARTUP_TIMEOUT = 0x003e,
        /// `HV_STATUS_SMX_ENABLED` (0x3f).
        SMX_ENABLED = 0x003f,
        /// `HV_STATUS_INVALID_LP_INDEX` (0x41).
        INVALID_LP_INDEX = 0x0041,
        /// `HV_STATUS_INVALID_REGISTER_VALUE` (0x50).
        INVALID_REGISTER_VALUE = 0x0050,
        /// `HV_STATUS_INVALID_VTL_STATE` (0x51).
        INVALID_VTL_STATE = 0x0051,
        /// `HV_STATUS_NX_NOT_DETECTED` (0x55).
        NX_NOT_DETECTED = 0x0055,
        /// `HV_STATUS_INVALID_DEVICE_ID` (0x57).
        INVALID_DEVICE_ID = 0x0057,
        /// `HV_STATUS_INVALID_DEVICE_STATE` (0x58).
        INVALID_DEVICE_STATE = 0x0058,
        /// `HV_STATUS_PENDING_PAGE_REQUESTS` (0x59).
        PENDING_PAGE_REQUESTS = 0x0059,
        /// `HV_STATUS_PAGE_REQUEST_INVALID` (0x60).
        PAGE_REQUEST_INVALID = 0x0060,
        /// `HV_STATUS_KEY_ALREADY_EXISTS` (0x65).
        KEY_ALREADY_EXISTS = 0x0065,
        /// `HV_STATUS_DEVICE_ALREADY_IN_DOMAIN` (0x66).
        DEVICE_ALREADY_IN_DOMAIN = 0x0066,
        /// `HV_STATUS_INVALID_CPU_GROUP_ID` (0x6f).
        INVALID_CPU_GROUP_ID = 0x006f,
        /// `HV_STATUS_INVALID_CPU_GROUP_STATE` (0x70).
        INVALID_CPU_GROUP_STATE = 0x0070,
        /// `HV_STATUS_OPERATION_FAILED` (0x71).
        OPERATION_FAILED = 0x0071,
        /// `HV_STATUS_NOT_ALLOWED_WITH_NESTED_VIRT_ACTIVE` (0x72).
        NOT_ALLOWED_WITH_NESTED_VIRT_ACTIVE = 0x0072,
        /// `HV_STATUS_INSUFFICIENT_ROOT_MEMORY` (0x73).
        INSUFFICIENT_ROOT_MEMORY = 0x0073,
        /// `HV_STATUS_EVENT_BUFFER_ALREADY_FREED` (0x74).
        EVENT_BUFFER_ALREADY_FREED = 0x0074,
        /// `HV_STATUS_TIMEOUT` (0x78).
        TIMEOUT = 0x0078,
        /// `HV_STATUS_VTL_ALREADY_ENABLED` (0x86).
        VTL_ALREADY_ENABLED = 0x0086,
        /// `HV_STATUS_UNKNOWN_REGISTER_NAME` (0x87).
        UNKNOWN_REGISTER_NAME = 0x0087,
    }
}

impl HvStatus {
    /// Whether this is `SUCCESS`.
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }
}

impl core::fmt::Display for HvStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "HV_STATUS_{name} ({:#x})", self.0),
            None => write!(f, "unknown hypervisor status {:#x}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's list, value and name, in its order.
    const REFERENCE: &[(u16, &str)] = &[
        (0x0, "SUCCESS"),
        (0x2, "INVALID_HYPERCALL_CODE"),
        (0x3, "INVALID_HYPERCALL_INPUT"),
        (0x4, "INVALID_ALIGNMENT"),
        (0x5, "INVALID_PARAMETER"),
        (0x6, "ACCESS_DENIED"),
        (0x7, "INVALID_PARTITION_STATE"),
        (0x8, "OPERATION_DENIED"),
        (0x9, "UNKNOWN_PROPERTY"),
        (0xa, "PROPERTY_VALUE_OUT_OF_RANGE"),
        (0xb, "INSUFFICIENT_MEMORY"),
        (0xc, "PARTITION_TOO_DEEP"),
        (0xd, "INVALID_PARTITION_ID"),
        (0xe, "INVALID_VP_INDEX"),
        (0x10, "NOT_FOUND"),
        (0x11, "INVALID_PORT_ID"),
        (0x12, "INVALID_CONNECTION_ID"),
        (0x13, "INSUFFICIENT_BUFFERS"),
        (0x14, "NOT_ACKNOWLEDGED"),
        (0x15, "INVALID_VP_STATE"),
        (0x16, "ACKNOWLEDGED"),
        (0x17, "INVALID_SAVE_RESTORE_STATE"),
        (0x18, "INVALID_SYNIC_STATE"),
        (0x19, "OBJECT_IN_USE"),
        (0x1a, "INVALID_PROXIMITY_DOMAIN_INFO"),
        (0x1b, "NO_DATA"),
        (0x1c, "INACTIVE"),
        (0x1d, "NO_RESOURCES"),
        (0x1e, "FEATURE_UNAVAILABLE"),
        (0x1f, "PARTIAL_PACKET"),
        (0x20, "PROCESSOR_FEATURE_NOT_SUPPORTED"),
        (0x30, "PROCESSOR_CACHE_LINE_FLUSH_SIZE_INCOMPATIBLE"),
        (0x33, "INSUFFICIENT_BUFFER"),
        (0x37, "INCOMPATIBLE_PROCESSOR"),
        (0x38, "INSUFFICIENT_DEVICE_DOMAINS"),
        (0x3c, "CPUID_FEATURE_VALIDATION_ERROR"),
        (0x3d, "CPUID_XSAVE_FEATURE_VALIDATION_ERROR"),
        (0x3e, "PROCESSOR_STARTUP_TIMEOUT"),
        (0x3f, "SMX_ENABLED"),
        (0x41, "INVALID_LP_INDEX"),
        (0x50, "INVALID_REGISTER_VALUE"),
        (0x51, "INVALID_VTL_STATE"),
        (0x55, "NX_NOT_DETECTED"),
        (0x57, "INVALID_DEVICE_ID"),
        (0x58, "INVALID_DEVICE_STATE"),
        (0x59, "PENDING_PAGE_REQUESTS"),
        (0x60, "PAGE_REQUEST_INVALID"),
        (0x65, "KEY_ALREADY_EXISTS"),
        (0x66, "DEVICE_ALREADY_IN_DOMAIN"),
        (0x6f, "INVALID_CPU_GROUP_ID"),
        (0x70, "INVALID_CPU_GROUP_STATE"),
        (0x71, "OPERATION_FAILED"),
        (0x72, "NOT_ALLOWED_WITH_NESTED_VIRT_ACTIVE"),
        (0x73, "INSUFFICIENT_ROOT_MEMORY"),
        (0x74, "EVENT_BUFFER_ALREADY_FREED"),
        (0x78, "TIMEOUT"),
        (0x86, "VTL_ALREADY_ENABLED"),
        (0x87, "UNKNOWN_REGISTER_NAME"),
    ];

    #[test]
    fn every_reference_code_has_its_name() {
        assert_eq!(HvStatus::ALL.len(), REFERENCE.len());
        for &(value, name) in REFERENCE {
            assert_eq!(HvStatus(value).name(), Some(name), "{value:#x}");
        }
        assert_eq!(HvStatus(0x1).name(), None);
        assert_eq!(std::format!("{:?}", HvStatus(0x1)), "HvStatus(0x1)");
        assert_eq!(
            std::format!("{}", HvStatus::TIMEOUT),
            "HV_STATUS_TIMEOUT (0x78)"
        );
    }
}
