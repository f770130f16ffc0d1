//! The guest's half of the SynIC protocols: taking a message out of its SIMP slot (and writing
//! EOM when the host asked for it), and collecting event flags from the SIEFP.

use core::sync::atomic::{fence, Ordering};

use thiserror::Error;
use zerocopy::FromBytes;

use super::{MsrAccess, MsrFault};
use crate::defs::{
    message_slot_gpa, HvMessage, HvMsr, MessageFlags, EVENT_FLAGS_PER_SINT, MESSAGE_FLAGS_OFFSET,
    MESSAGE_SIZE, SINT_COUNT,
};
use crate::memory::{GuestMemory, MemoryError};

/// A failure consuming SynIC pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SynicError {
    /// SINT number beyond 15.
    #[error("sint {sint} does not exist")]
    InvalidSint {
        /// The SINT.
        sint: u8,
    },
    /// The page could not be accessed.
    #[error("synic page access failed")]
    Memory(#[from] MemoryError),
    /// The slot's type changed while the guest owned the slot (the host broke the protocol).
    #[error("the message slot of sint {sint} changed while the guest owned it")]
    SlotChanged {
        /// The SINT.
        sint: u8,
    },
    /// Writing EOM faulted.
    #[error("eom write faulted")]
    Msr(#[from] MsrFault),
}

/// Takes the message waiting in `sint`'s slot of the SIMP at `simp_gpa`, if any: copies it out,
/// frees the slot (compare-exchange of the type to 0), and writes EOM when the host flagged
/// `message_pending`, so the next queued message gets delivered.
pub fn receive_message<M, R>(
    memory: &M,
    msr: &mut R,
    simp_gpa: u64,
    sint: u8,
) -> Result<Option<HvMessage>, SynicError>
where
    M: GuestMemory + ?Sized,
    R: MsrAccess + ?Sized,
{
    if usize::from(sint) >= SINT_COUNT {
        return Err(SynicError::InvalidSint { sint });
    }
    let slot = message_slot_gpa(simp_gpa, sint);
    let message_type = memory.read_u32(slot)?;
    if message_type == 0 {
        return Ok(None);
    }
    // The host does not touch a busy slot except to set `message_pending`: copy it out.
    let mut bytes = [0u8; MESSAGE_SIZE];
    memory.read(slot, &mut bytes)?;
    let message = HvMessage::read_from_bytes(&bytes).unwrap_or_default();
    // Free the slot, then look at the flags: the host may have set `message_pending` at any
    // point before the type went to 0.
    if memory.compare_exchange_u32(slot, message_type, 0)?.is_err() {
        return Err(SynicError::SlotChanged { sint });
    }
    fence(Ordering::SeqCst);
    let mut flags = [0u8];
    memory.read(slot.wrapping_add(MESSAGE_FLAGS_OFFSET as u64), &mut flags)?;
    if MessageFlags(flags[0]).message_pending() {
        msr.write_msr(HvMsr::EOM.0, 0)?;
    }
    Ok(Some(message))
}

/// Atomically takes (reads and clears) every set event flag of `sint` in the SIEFP at
/// `siefp_gpa`, calling `on_flag` with each flag number in ascending order.
pub fn take_event_flags<M, F>(
    memory: &M,
    siefp_gpa: u64,
    sint: u8,
    mut on_flag: F,
) -> Result<u32, SynicError>
where
    M: GuestMemory + ?Sized,
    F: FnMut(u32),
{
    if usize::from(sint) >= SINT_COUNT {
        return Err(SynicError::InvalidSint { sint });
    }
    let base = siefp_gpa.wrapping_add(u64::from(sint) * MESSAGE_SIZE as u64);
    let mut taken = 0;
    for word in 0..EVENT_FLAGS_PER_SINT / 64 {
        let gpa = base.wrapping_add(u64::from(word) * 8);
        let mut current = memory.read_u64(gpa)?;
        while current != 0 {
            match memory.compare_exchange_u64(gpa, current, 0)? {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        let mut bits = current;
        while bits != 0 {
            let bit = bits.trailing_zeros();
            on_flag(word * 64 + bit);
            taken += 1;
            bits &= bits - 1;
        }
    }
    Ok(taken)
}
