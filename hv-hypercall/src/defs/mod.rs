//! The definitions layer: constants, layouts and register words of the Hyper-V hypercall ABI,
//! the synthetic MSRs, the SynIC and the CPUID leaves.
//!
//! Pure data: no I/O, no state, no `unsafe`, `core` only. Layouts are `#[repr(C)]` zerocopy
//! structs with little-endian field types and compile-time size asserts; values that come from
//! the other side are open enums; register-like words are bitfield types with named accessors.
//! Facts follow the Hyper-V TLFS (v6.0b and the current online edition) as summarized in the
//! project's reference notes, §5.

mod codes;
mod cpuid;
mod guest_os_id;
mod hypercalls;
mod input;
mod msr;
mod status;
mod synic;
mod tsc;

pub use codes::HypercallCode;
pub use cpuid::{
    signature_bytes, signature_words, CpuidLeaf, EnlightenmentHints, HardwareFeatures,
    MiscFeatures, NestedFeatures, PowerFeatures, Privileges, HV1_INTERFACE_SIGNATURE,
    HYPERVISOR_PRESENT_ECX_BIT, KVM_SIGNATURE, LEAF_CPU_MANAGEMENT, LEAF_ENLIGHTENMENTS,
    LEAF_FEATURES, LEAF_HARDWARE_FEATURES, LEAF_IMPLEMENTATION_LIMITS, LEAF_INTERFACE,
    LEAF_NESTED_FEATURES, LEAF_NESTED_HYPERVISOR, LEAF_SVM_FEATURES, LEAF_VENDOR_AND_MAX,
    LEAF_VERSION, MAX_DEFINED_LEAF, MICROSOFT_HV_SIGNATURE, MIN_MAX_LEAF,
};
pub use guest_os_id::{GuestOsId, OpenSourceOsType};
pub use hypercalls::{PostMessageInput, SignalEventInput};
pub use input::{HypercallInput, HypercallOutput, MAX_REP_COUNT, MAX_VARIABLE_HEADER_QWORDS};
pub use msr::{
    CrashCtl, GpaPageMsr, HvMsr, HypercallMsr, StimerConfig, SYNTHETIC_MSR_FIRST,
    SYNTHETIC_MSR_LAST,
};
pub use status::HvStatus;
pub use synic::{
    event_flag_location, message_slot_gpa, HvMessage, HvMessageHeader, HvMessageType, MessageFlags,
    SControl, SintMsr, TimerMessagePayload, EVENT_FLAGS_PER_SINT, LINUX_VMBUS_VECTOR,
    MESSAGE_FLAGS_OFFSET, MESSAGE_PAYLOAD_MAX, MESSAGE_PENDING_QWORD_BIT, MESSAGE_SIZE, SINT_COUNT,
    SINT_MIN_VECTOR, SYNIC_VERSION, VMBUS_SINT,
};
pub use tsc::{
    next_tsc_sequence, ReferenceTscPage, TscScaleOffset, REFERENCE_TIME_HZ,
    REFERENCE_TSC_OFFSET_OFFSET, REFERENCE_TSC_SCALE_OFFSET, REFERENCE_TSC_SEQUENCE_OFFSET,
    TSC_SEQUENCE_INVALID,
};

/// Hypervisor page size (x64).
pub const PAGE_SIZE: u64 = 4096;

/// Alignment of memory-based hypercall input and output blocks.
pub const HYPERCALL_BLOCK_ALIGNMENT: u64 = 8;
