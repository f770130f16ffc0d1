//! Message delivery into SIMP slots and event-flag signaling into the SIEFP.

use thiserror::Error;
use zerocopy::IntoBytes;

use super::{InterruptSink, SintInterrupt, VirtualProcessor};
use crate::defs::{
    event_flag_location, message_slot_gpa, HvMessage, HvMessageType, HvStatus, MessageFlags,
    EVENT_FLAGS_PER_SINT, MESSAGE_PENDING_QWORD_BIT, SINT_COUNT,
};
use crate::memory::{GuestMemory, MemoryError};

/// Where a posted message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// Written into the SINT's slot (and the SINT raised unless in polling mode).
    Delivered,
    /// Queued behind a busy slot or a masked SINT; delivered after EOM or unmask.
    Queued,
}

/// Why a message could not be posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PostError {
    /// SINT number beyond 15.
    #[error("sint {sint} does not exist")]
    InvalidSint {
        /// The SINT.
        sint: u8,
    },
    /// The VP's SynIC is disabled (SCONTROL).
    #[error("the synic is disabled")]
    SynicDisabled,
    /// The message page is disabled (SIMP).
    #[error("the message page is disabled")]
    MessagePageDisabled,
    /// The SINT's queue is full.
    #[error("the message queue of sint {sint} is full")]
    QueueFull {
        /// The SINT.
        sint: u8,
    },
    /// The message page could not be accessed; the message stays queued.
    #[error("the message page is not accessible")]
    Memory(#[source] MemoryError),
    /// Message type 0 (`HvMessageType::NONE`) marks a free slot: such a message cannot be
    /// delivered (the guest would take the slot for empty and the next message overwrite it).
    #[error("message type 0 marks a free slot and cannot be posted")]
    NoMessageType,
}

impl PostError {
    /// The hypercall status for `HvPostMessage` (TLFS return values).
    pub fn status(&self) -> HvStatus {
        match self {
            Self::InvalidSint { .. } | Self::NoMessageType => HvStatus::INVALID_PARAMETER,
            Self::SynicDisabled | Self::MessagePageDisabled | Self::Memory(_) => {
                HvStatus::INVALID_SYNIC_STATE
            }
            Self::QueueFull { .. } => HvStatus::INSUFFICIENT_BUFFERS,
        }
    }
}

/// Why an event could not be signaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignalError {
    /// SINT number beyond 15.
    #[error("sint {sint} does not exist")]
    InvalidSint {
        /// The SINT.
        sint: u8,
    },
    /// Flag number beyond the 2048 a SINT has.
    #[error("event flag {flag} is beyond the 2048 of a sint")]
    InvalidFlag {
        /// The flag.
        flag: u32,
    },
    /// The VP's SynIC is disabled (SCONTROL).
    #[error("the synic is disabled")]
    SynicDisabled,
    /// The event flags page is disabled (SIEFP).
    #[error("the event flags page is disabled")]
    EventPageDisabled,
    /// The event flags page could not be accessed.
    #[error("the event flags page is not accessible")]
    Memory(#[source] MemoryError),
}

impl SignalError {
    /// The hypercall status for `HvSignalEvent`.
    pub fn status(&self) -> HvStatus {
        match self {
            Self::InvalidSint { .. } | Self::InvalidFlag { .. } => HvStatus::INVALID_PARAMETER,
            Self::SynicDisabled | Self::EventPageDisabled | Self::Memory(_) => {
                HvStatus::INVALID_SYNIC_STATE
            }
        }
    }
}

impl<const Q: usize> VirtualProcessor<Q> {
    /// Queues `message` for `sint` and delivers as much of the queue as the slot allows.
    pub fn post_message<M, I>(
        &mut self,
        memory: &M,
        interrupts: &mut I,
        sint: u8,
        message: &HvMessage,
    ) -> Result<PostOutcome, PostError>
    where
        M: GuestMemory + ?Sized,
        I: InterruptSink + ?Sized,
    {
        let queue = self
            .queues
            .get_mut(usize::from(sint))
            .ok_or(PostError::InvalidSint { sint })?;
        if message.message_type() == HvMessageType::NONE {
            return Err(PostError::NoMessageType);
        }
        if !self.scontrol.enable() {
            return Err(PostError::SynicDisabled);
        }
        if !self.simp.enable() {
            return Err(PostError::MessagePageDisabled);
        }
        let mut message = *message;
        message.header.flags = 0;
        message.header.reserved = 0.into();
        if !queue.push(&message) {
            return Err(PostError::QueueFull { sint });
        }
        let was = self.queued(sint);
        let delivered = self
            .flush(memory, interrupts, sint)
            .map_err(PostError::Memory)?;
        // Delivered only if it was alone in the queue and went straight into the slot.
        Ok(if delivered > 0 && was == 1 {
            PostOutcome::Delivered
        } else {
            PostOutcome::Queued
        })
    }

    /// Moves queued messages of `sint` into its slot while the slot is free; returns how many.
    pub(super) fn flush<M, I>(
        &mut self,
        memory: &M,
        interrupts: &mut I,
        sint: u8,
    ) -> Result<u32, MemoryError>
    where
        M: GuestMemory + ?Sized,
        I: InterruptSink + ?Sized,
    {
        let n = usize::from(sint);
        if n >= SINT_COUNT {
            return Ok(0);
        }
        let config = self.sints[n];
        if self.queues[n].is_empty()
            || !self.scontrol.enable()
            || !self.simp.enable()
            || config.masked()
        {
            return Ok(0);
        }
        let slot = message_slot_gpa(self.simp.gpa(), sint);
        // A hostile guest flipping the type could keep us looping; give up after a few rounds
        // (the messages stay queued for the next EOM or poll).
        for _ in 0..4 {
            let Some(front) = self.queues[n].front() else {
                return Ok(0);
            };
            if memory.read_u32(slot)? != 0 {
                // Busy: ask for an EOM, then re-check (the guest may just have freed it).
                memory.fetch_or_u64(slot, MESSAGE_PENDING_QWORD_BIT)?;
                if memory.read_u32(slot)? != 0 {
                    return Ok(0);
                }
                continue;
            }
            // The slot is ours: body first, the type last.
            let mut msg = *front;
            let more = self.queues[n].len() > 1;
            msg.header.flags = MessageFlags::new().with_message_pending(more).0;
            let bytes = msg.as_bytes();
            memory.write(slot + 4, &bytes[4..])?;
            match memory.compare_exchange_u32(slot, 0, msg.header.message_type.get())? {
                Ok(_) => {
                    self.queues[n].pop();
                    if !config.polling() {
                        interrupts.request_interrupt(SintInterrupt {
                            vp_index: self.vp_index,
                            sint,
                            vector: config.vector(),
                            auto_eoi: config.auto_eoi(),
                        });
                    }
                    // The slot is busy now; the pending flag asks for an EOM if more wait.
                    return Ok(1);
                }
                // The guest wrote a type into a free slot: treat it as busy.
                Err(_) => continue,
            }
        }
        Ok(0)
    }

    /// Sets event flag `flag` of `sint` in the SIEFP. Returns whether the SINT was raised
    /// (the bit went 0 → 1, the SINT is unmasked and not polled, and the SynIC is enabled).
    pub fn signal_event<M, I>(
        &mut self,
        memory: &M,
        interrupts: &mut I,
        sint: u8,
        flag: u32,
    ) -> Result<bool, SignalError>
    where
        M: GuestMemory + ?Sized,
        I: InterruptSink + ?Sized,
    {
        let config = *self
            .sints
            .get(usize::from(sint))
            .ok_or(SignalError::InvalidSint { sint })?;
        if flag >= EVENT_FLAGS_PER_SINT {
            return Err(SignalError::InvalidFlag { flag });
        }
        if !self.scontrol.enable() {
            return Err(SignalError::SynicDisabled);
        }
        if !self.siefp.enable() {
            return Err(SignalError::EventPageDisabled);
        }
        let (gpa, bit) = event_flag_location(self.siefp.gpa(), sint, flag);
        let old = memory.fetch_or_u64(gpa, bit).map_err(SignalError::Memory)?;
        let raise = old & bit == 0 && !config.masked() && !config.polling();
        if raise {
            interrupts.request_interrupt(SintInterrupt {
                vp_index: self.vp_index,
                sint,
                vector: config.vector(),
                auto_eoi: config.auto_eoi(),
            });
        }
        Ok(raise)
    }
}
