//! The synthetic interrupt controller: register layouts (SCONTROL, SVERSION, SIEFP/SIMP, SINTx),
//! the 256-byte `HV_MESSAGE`, message types and the event-flag page geometry
//! (TLFS "Synthetic Interrupt Controller"; reference §5.6, §5.8).

use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::macros::{bitfield, open_enum};

/// Synthetic interrupt sources per VP.
pub const SINT_COUNT: usize = 16;

/// Size of one message slot in the SIMP, and of one SINT's flag block in the SIEFP.
pub const MESSAGE_SIZE: usize = 256;

/// Largest message payload.
pub const MESSAGE_PAYLOAD_MAX: usize = 240;

/// Event flags per SINT (256 bytes × 8).
pub const EVENT_FLAGS_PER_SINT: u32 = 2048;

/// The value SVERSION always reads.
pub const SYNIC_VERSION: u64 = 1;

/// Lowest vector a SINT may use while unmasked (0–15 are architectural exceptions).
pub const SINT_MIN_VECTOR: u8 = 16;

/// The vector Linux programs into its VMBus SINT on x86 (`HYPERVISOR_CALLBACK_VECTOR`).
pub const LINUX_VMBUS_VECTOR: u8 = 0xf3;

/// The SINT VMBus uses.
pub const VMBUS_SINT: u8 = 2;

bitfield! {
    /// `SCONTROL`: bit 0 enables the SynIC of this VP.
    pub struct SControl(u64) {
        /// The SynIC is enabled.
        enable, with_enable: bool [0],
    }
}

bitfield! {
    /// `SINTx`: how one synthetic interrupt source is delivered.
    pub struct SintMsr(u64) {
        /// The interrupt vector (16–255 while unmasked).
        vector, with_vector: u8 [0..8],
        /// Masked: no interrupt is raised (reset value: masked).
        masked, with_masked: bool [16],
        /// Auto-EOI: the guest will not write the APIC EOI for this vector.
        auto_eoi, with_auto_eoi: bool [17],
        /// Polling: the guest polls the slot and wants no interrupt.
        polling, with_polling: bool [18],
        /// Proxy: forward to the guest's own hypervisor (nested).
        proxy, with_proxy: bool [20],
    }
}

impl SintMsr {
    /// The architectural reset value: masked, vector 0.
    pub const RESET: Self = Self(0x1_0000);
}

bitfield! {
    /// The `flags` byte of a message header.
    pub struct MessageFlags(u8) {
        /// More messages are queued for this SINT: write EOM after freeing the slot.
        message_pending, with_message_pending: bool [0],
    }
}

open_enum! {
    /// A message type (`HV_MESSAGE_TYPE`). Types with bit 31 set belong to the hypervisor;
    /// the others are defined by the guest's protocol (VMBus uses 1).
    pub struct HvMessageType(u32) {
        /// The slot is free.
        NONE = 0,
        /// VMBus channel-management messages.
        VMBUS = 1,
        /// Access to an unmapped GPA.
        UNMAPPED_GPA = 0x8000_0000,
        /// GPA access intercept.
        GPA_INTERCEPT = 0x8000_0001,
        /// A synthetic timer expired (payload: [`TimerMessagePayload`]).
        TIMER_EXPIRED = 0x8000_0010,
        /// Invalid VP register value.
        INVALID_VP_REGISTER_VALUE = 0x8000_0020,
        /// Unrecoverable exception.
        UNRECOVERABLE_EXCEPTION = 0x8000_0021,
        /// Unsupported feature.
        UNSUPPORTED_FEATURE = 0x8000_0022,
        /// Event log buffer complete.
        EVENTLOG_BUFFERCOMPLETE = 0x8000_0040,
        /// Hypercall intercept.
        HYPERCALL_INTERCEPT = 0x8000_0050,
        /// SynIC event intercept.
        SYNIC_EVENT_INTERCEPT = 0x8000_0060,
        /// SynIC SINT intercept.
        SYNIC_SINT_INTERCEPT = 0x8000_0061,
        /// SynIC SINT deliverable.
        SYNIC_SINT_DELIVERABLE = 0x8000_0062,
        /// Asynchronous call completion.
        ASYNC_CALL_COMPLETION = 0x8000_0070,
        /// x64 I/O port intercept.
        X64_IO_PORT_INTERCEPT = 0x8001_0000,
        /// x64 MSR intercept.
        X64_MSR_INTERCEPT = 0x8001_0001,
        /// x64 CPUID intercept.
        X64_CPUID_INTERCEPT = 0x8001_0002,
        /// x64 exception intercept.
        X64_EXCEPTION_INTERCEPT = 0x8001_0003,
        /// x64 APIC EOI.
        X64_APIC_EOI = 0x8001_0004,
        /// x64 legacy floating-point error.
        X64_LEGACY_FP_ERROR = 0x8001_0005,
        /// x64 halt.
        X64_HALT = 0x8001_0007,
    }
}

impl HvMessageType {
    /// Whether the type is reserved for the hypervisor (bit 31 set).
    pub const fn is_hypervisor(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }

    /// Whether a guest may post this type with `HvPostMessage`: non-zero, bit 31 clear.
    pub const fn is_postable(self) -> bool {
        self.0 != 0 && !self.is_hypervisor()
    }
}

/// The 16-byte message header.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct HvMessageHeader {
    /// @0: message type; zero means the slot is free. Written last by the host.
    pub message_type: U32,
    /// @4: payload bytes in use (≤ 240).
    pub payload_size: u8,
    /// @5: [`MessageFlags`].
    pub flags: u8,
    /// @6: reserved.
    pub reserved: U16,
    /// @8: sender (port id or partition id, by message type).
    pub sender: U64,
}
const _: () = assert!(size_of::<HvMessageHeader>() == 16);

/// `HV_MESSAGE`: one 256-byte slot of the SIMP (one per SINT).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct HvMessage {
    /// @0: header.
    pub header: HvMessageHeader,
    /// @16: payload; only `payload_size` bytes are meaningful.
    pub payload: [u8; MESSAGE_PAYLOAD_MAX],
}
const _: () = assert!(size_of::<HvMessage>() == MESSAGE_SIZE);
const _: () = assert!(offset_of!(HvMessage, payload) == 16);
const _: () = assert!(offset_of!(HvMessageHeader, flags) == MESSAGE_FLAGS_OFFSET);

/// Byte offset of the flags byte in a slot.
pub const MESSAGE_FLAGS_OFFSET: usize = 5;

/// The `message_pending` bit as seen in the slot's first little-endian qword (byte 5, bit 0).
pub const MESSAGE_PENDING_QWORD_BIT: u64 = 1 << (8 * MESSAGE_FLAGS_OFFSET);

impl Default for HvMessage {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl HvMessage {
    /// A message of `message_type` from `sender` carrying `payload`; `None` when the payload is
    /// longer than 240 bytes.
    pub fn new(message_type: HvMessageType, sender: u64, payload: &[u8]) -> Option<Self> {
        let mut msg = Self::new_zeroed();
        msg.payload
            .get_mut(..payload.len())?
            .copy_from_slice(payload);
        msg.header.message_type = U32::new(message_type.0);
        msg.header.payload_size = payload.len() as u8;
        msg.header.sender = U64::new(sender);
        Some(msg)
    }

    /// The message type.
    pub fn message_type(&self) -> HvMessageType {
        HvMessageType(self.header.message_type.get())
    }

    /// The header flags.
    pub fn flags(&self) -> MessageFlags {
        MessageFlags(self.header.flags)
    }

    /// The meaningful payload bytes (clamped to 240 when the size field is out of range).
    pub fn payload(&self) -> &[u8] {
        let len = usize::from(self.header.payload_size).min(MESSAGE_PAYLOAD_MAX);
        &self.payload[..len]
    }
}

/// Payload of [`HvMessageType::TIMER_EXPIRED`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct TimerMessagePayload {
    /// @0: which synthetic timer.
    pub timer_index: U32,
    /// @4: reserved.
    pub reserved: U32,
    /// @8: the expiration time (reference time, 100 ns).
    pub expiration_time: U64,
    /// @16: the time the message was delivered (reference time, 100 ns).
    pub delivery_time: U64,
}
const _: () = assert!(size_of::<TimerMessagePayload>() == 24);

/// Where a message slot lives: `simp_gpa + sint × 256` (wrapping).
pub const fn message_slot_gpa(simp_gpa: u64, sint: u8) -> u64 {
    simp_gpa.wrapping_add(sint as u64 * MESSAGE_SIZE as u64)
}

/// Where the qword holding event flag `flag` of `sint` lives (wrapping), and its bit within it.
pub const fn event_flag_location(siefp_gpa: u64, sint: u8, flag: u32) -> (u64, u64) {
    let offset = sint as u64 * MESSAGE_SIZE as u64 + (flag as u64 / 64) * 8;
    let gpa = siefp_gpa.wrapping_add(offset);
    (gpa, 1u64 << (flag % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_matches_the_reference() {
        assert_eq!(offset_of!(HvMessageHeader, message_type), 0);
        assert_eq!(offset_of!(HvMessageHeader, payload_size), 4);
        assert_eq!(offset_of!(HvMessageHeader, flags), 5);
        assert_eq!(offset_of!(HvMessageHeader, reserved), 6);
        assert_eq!(offset_of!(HvMessageHeader, sender), 8);
        assert_eq!(offset_of!(HvMessage, payload), 16);
        assert_eq!(size_of::<HvMessage>(), 256);
        let msg = HvMessage::new(HvMessageType::VMBUS, 0x1122, b"abc").unwrap();
        let bytes = msg.as_bytes();
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &0x1122u64.to_le_bytes());
        assert_eq!(&bytes[16..19], b"abc");
        assert_eq!(msg.payload(), b"abc");
        assert!(HvMessage::new(HvMessageType::VMBUS, 0, &[0; 241]).is_none());
        assert!(HvMessage::new(HvMessageType::VMBUS, 0, &[0; 240]).is_some());
        let mut raw = msg;
        raw.header.payload_size = 255;
        assert_eq!(raw.payload().len(), 240);
    }

    #[test]
    fn pending_bit_is_bit_zero_of_byte_five() {
        let mut msg = HvMessage::default();
        msg.header.flags = MessageFlags::new().with_message_pending(true).0;
        let qword = u64::from_le_bytes(msg.as_bytes()[..8].try_into().unwrap());
        assert_eq!(qword, MESSAGE_PENDING_QWORD_BIT);
        assert!(msg.flags().message_pending());
    }

    #[test]
    fn register_layouts() {
        assert_eq!(SintMsr::RESET.0, 0x10000);
        assert!(SintMsr::RESET.masked());
        let s = SintMsr::new()
            .with_vector(0xf3)
            .with_auto_eoi(true)
            .with_polling(true)
            .with_proxy(true);
        assert_eq!(s.0, 0xf3 | 1 << 17 | 1 << 18 | 1 << 20);
        assert_eq!(SintMsr(1 << 19).reserved_bits(), 1 << 19);
        assert_eq!(SintMsr(0xff00).reserved_bits(), 0xff00);
        assert_eq!(SControl::DEFINED, 1);
        assert_eq!(size_of::<TimerMessagePayload>(), 24);
        assert_eq!(offset_of!(TimerMessagePayload, expiration_time), 8);
        assert_eq!(offset_of!(TimerMessagePayload, delivery_time), 16);
    }

    #[test]
    fn message_types() {
        assert_eq!(HvMessageType::TIMER_EXPIRED.0, 0x8000_0010);
        assert_eq!(HvMessageType::X64_HALT.0, 0x8001_0007);
        assert!(HvMessageType::VMBUS.is_postable());
        assert!(!HvMessageType::NONE.is_postable());
        assert!(!HvMessageType::UNMAPPED_GPA.is_postable());
        assert_eq!(HvMessageType::ALL.len(), 21);
    }

    #[test]
    fn page_geometry() {
        assert_eq!(message_slot_gpa(0x10000, 2), 0x10200);
        assert_eq!(event_flag_location(0x20000, 0, 0), (0x20000, 1));
        assert_eq!(event_flag_location(0x20000, 1, 65), (0x20108, 2));
        assert_eq!(
            event_flag_location(0x20000, 15, 2047),
            (0x20000 + 15 * 256 + 255 - 7, 1 << 63)
        );
    }
}
