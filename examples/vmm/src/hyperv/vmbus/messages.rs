//! The VMBus control-message path through the SynIC, both ways, bounded without ever dropping
//! a protocol message.
//!
//! Host to guest: the SynIC model (`hv-hypercall`'s [`VirtualProcessor`]) keeps 16 messages per
//! SINT behind the guest's message slot. When the slot is busy it sets the slot's
//! MessagePending flag, and delivers the next message when the guest frees the slot and writes
//! EOM (TLFS "SynIC message delivery"). Answers beyond those 16 wait here, in order, and move
//! into the model's queue as it drains: [`MessagePath::flush`] runs on every service, which
//! follows every exit, the EOM `wrmsr` included. Channel offers, GPADL_CREATED,
//! OPENCHANNEL_RESULT and the rest all reach the guest, in the order the server produced them,
//! however late the guest takes them.
//!
//! Guest to host: `HvPostMessage` payloads wait in the inbox until the next service.
//!
//! Bounds, against a guest that posts requests without ever taking the answers: the inbox is
//! served only while fewer than [`PAUSE_AT`] answers wait here, so such a guest stops being
//! served (nothing it already asked is lost); once [`MAX_INBOX`] of its posts wait,
//! `HvPostMessage` answers `HV_STATUS_INSUFFICIENT_BUFFERS`, the TLFS status for a full
//! message buffer, on which guests back off and post again (Linux's `vmbus_post_msg` does).
//! A guest that takes its messages is never refused: the answers drain, the service resumes.
//! Host memory stays under [`MAX_INBOX`] posts of at most 240 bytes plus [`PAUSE_AT`] answers
//! and the answers to one request (one per offered channel, plus ALLOFFERS_DELIVERED).

use std::collections::VecDeque;

use hv_hypercall::defs::HvMessage;
use hv_hypercall::synic::{InterruptSink, PostError, VirtualProcessor};

use super::{VMBUS_MESSAGE, VMBUS_SINT};
use crate::memory::GuestMemory;
use crate::timeline::Timeline;

/// The most guest posts that wait for a service; more are refused with
/// `HV_STATUS_INSUFFICIENT_BUFFERS`.
pub const MAX_INBOX: usize = 64;

/// Guest posts are served only while fewer answers than this wait behind the SynIC's queue.
pub const PAUSE_AT: usize = 64;

/// The two queues of the message path.
#[derive(Debug, Default)]
pub struct MessagePath {
    /// Guest posts not yet served, oldest first.
    inbox: VecDeque<Vec<u8>>,
    /// Answers the SynIC's queue has no room for yet, oldest first.
    outbox: VecDeque<Vec<u8>>,
    /// Posts refused because the inbox was full.
    pub refused: u64,
    /// Answers that could not be posted at all (the guest disabled its SynIC or message page).
    pub undeliverable: u64,
}

impl MessagePath {
    /// Takes a guest post; `false` (nothing kept) when [`MAX_INBOX`] posts already wait.
    pub fn accept(&mut self, payload: &[u8]) -> bool {
        if self.inbox.len() >= MAX_INBOX {
            self.refused += 1;
            return false;
        }
        self.inbox.push_back(payload.to_vec());
        true
    }

    /// The oldest guest post to serve now: `None` when none waits, or while [`PAUSE_AT`]
    /// answers wait for the guest.
    pub fn next_request(&mut self) -> Option<Vec<u8>> {
        if self.outbox.len() >= PAUSE_AT {
            return None;
        }
        self.inbox.pop_front()
    }

    /// Guest posts waiting.
    #[cfg(test)]
    pub fn requests_waiting(&self) -> usize {
        self.inbox.len()
    }

    /// Answers waiting behind the SynIC's queue.
    #[cfg(test)]
    pub fn answers_waiting(&self) -> usize {
        self.outbox.len()
    }

    /// Queues an answer for the guest (behind every earlier one); [`MessagePath::flush`]
    /// posts it.
    pub fn queue(&mut self, payload: Vec<u8>) {
        self.outbox.push_back(payload);
    }

    /// Moves waiting answers into the SynIC's queue of the VMBus SINT while it has room; the
    /// model delivers them into the slot as the guest frees it.
    pub fn flush<I: InterruptSink>(
        &mut self,
        memory: &GuestMemory,
        vp: &mut VirtualProcessor,
        interrupts: &mut I,
        timeline: &Timeline,
    ) {
        while let Some(payload) = self.outbox.front() {
            let Some(message) = HvMessage::new(VMBUS_MESSAGE, 0, payload) else {
                timeline.host(format_args!(
                    "vmbus: message of {} bytes is too large",
                    payload.len()
                ));
                self.undeliverable += 1;
                self.outbox.pop_front();
                continue;
            };
            match vp.post_message(memory, interrupts, VMBUS_SINT, &message) {
                Ok(_) => {}
                // Full: the rest waits for the guest's EOM.
                Err(PostError::QueueFull { .. }) => return,
                // Queued in the model, which retries on the next EOM.
                Err(e @ PostError::Memory(_)) => {
                    timeline.host(format_args!("vmbus: cannot post to the guest yet: {e}"));
                }
                // The guest turned its SynIC or message page off: it listens no more.
                Err(e) => {
                    self.undeliverable += 1;
                    timeline.host(format_args!("vmbus: cannot post to the guest: {e}"));
                }
            }
            self.outbox.pop_front();
        }
    }
}
