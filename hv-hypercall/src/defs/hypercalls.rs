//! Input layouts of the hypercalls a VMBus host or guest uses (TLFS `HvCallPostMessage`,
//! `HvCallSignalEvent`; reference §5.4).

use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::synic::MESSAGE_PAYLOAD_MAX;

/// `HvCallPostMessage` input (256 bytes, memory-based only).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct PostMessageInput {
    /// @0: the connection to post to.
    pub connection_id: U32,
    /// @4: reserved, must be zero.
    pub reserved: U32,
    /// @8: the message type; non-zero with bit 31 clear.
    pub message_type: U32,
    /// @12: payload bytes (≤ 240).
    pub payload_size: U32,
    /// @16: the payload; only `payload_size` bytes are sent.
    pub payload: [u8; MESSAGE_PAYLOAD_MAX],
}
const _: () = assert!(size_of::<PostMessageInput>() == 256);
const _: () = assert!(offset_of!(PostMessageInput, payload) == 16);

impl PostMessageInput {
    /// An input block for `payload`; `None` when the payload is longer than 240 bytes.
    pub fn new(connection_id: u32, message_type: u32, payload: &[u8]) -> Option<Self> {
        let mut input = Self::new_zeroed();
        input
            .payload
            .get_mut(..payload.len())?
            .copy_from_slice(payload);
        input.connection_id = U32::new(connection_id);
        input.message_type = U32::new(message_type);
        input.payload_size = U32::new(payload.len() as u32);
        Some(input)
    }

    /// The block's 256 bytes (for callers that do not use zerocopy themselves).
    pub fn to_bytes(&self) -> [u8; 256] {
        let mut out = [0; 256];
        out.copy_from_slice(self.as_bytes());
        out
    }
}

/// `HvCallSignalEvent` input (8 bytes; in RDX for a fast call).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct SignalEventInput {
    /// @0: the connection whose port's event flag to set.
    pub connection_id: U32,
    /// @4: the flag number within the port's flags.
    pub flag_number: U16,
    /// @6: reserved, must be zero.
    pub reserved: U16,
}
const _: () = assert!(size_of::<SignalEventInput>() == 8);

impl SignalEventInput {
    /// The input block.
    pub fn new(connection_id: u32, flag_number: u16) -> Self {
        Self {
            connection_id: U32::new(connection_id),
            flag_number: U16::new(flag_number),
            reserved: U16::new(0),
        }
    }

    /// The block as the fast-call register value (RDX on x64).
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.as_bytes().try_into().unwrap_or([0; 8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_message_layout() {
        assert_eq!(offset_of!(PostMessageInput, connection_id), 0);
        assert_eq!(offset_of!(PostMessageInput, reserved), 4);
        assert_eq!(offset_of!(PostMessageInput, message_type), 8);
        assert_eq!(offset_of!(PostMessageInput, payload_size), 12);
        assert_eq!(offset_of!(PostMessageInput, payload), 16);
        let input = PostMessageInput::new(4, 1, &[9; 3]).unwrap();
        let b = input.as_bytes();
        assert_eq!(&b[..16], &[4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&b[16..20], &[9, 9, 9, 0]);
        assert!(PostMessageInput::new(4, 1, &[0; 241]).is_none());
        assert_eq!(&input.to_bytes()[..], b);
    }

    #[test]
    fn signal_event_layout() {
        assert_eq!(offset_of!(SignalEventInput, connection_id), 0);
        assert_eq!(offset_of!(SignalEventInput, flag_number), 4);
        assert_eq!(offset_of!(SignalEventInput, reserved), 6);
        assert_eq!(
            SignalEventInput::new(0x0102_0304, 0x0506).to_u64(),
            0x0000_0506_0102_0304
        );
    }
}
