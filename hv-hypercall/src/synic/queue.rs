//! A fixed-capacity FIFO of messages waiting for a SINT's slot (no heap).

use crate::defs::HvMessage;

/// A ring of up to `N` messages.
#[derive(Clone)]
pub struct MessageQueue<const N: usize> {
    slots: [HvMessage; N],
    head: usize,
    len: usize,
}

impl<const N: usize> core::fmt::Debug for MessageQueue<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MessageQueue")
            .field("len", &self.len)
            .field("capacity", &N)
            .finish()
    }
}

impl<const N: usize> Default for MessageQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MessageQueue<N> {
    /// An empty queue. `N` must be at least 1.
    pub fn new() -> Self {
        const { assert!(N > 0, "a message queue needs room for one message") };
        Self {
            slots: [HvMessage::default(); N],
            head: 0,
            len: 0,
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no more fit.
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Appends a copy of `msg`; `false` (and nothing queued) when full.
    pub fn push(&mut self, msg: &HvMessage) -> bool {
        if self.is_full() {
            return false;
        }
        self.slots[(self.head + self.len) % N] = *msg;
        self.len += 1;
        true
    }

    /// The oldest message.
    pub fn front(&self) -> Option<&HvMessage> {
        (!self.is_empty()).then(|| &self.slots[self.head])
    }

    /// Removes the oldest message.
    pub fn pop(&mut self) -> Option<HvMessage> {
        if self.is_empty() {
            return None;
        }
        let msg = self.slots[self.head];
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(msg)
    }

    /// Drops every message.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::HvMessageType;

    #[test]
    fn fifo_with_wraparound() {
        let mut q = MessageQueue::<3>::new();
        let m = |n: u8| HvMessage::new(HvMessageType::VMBUS, u64::from(n), &[n]).unwrap();
        for round in 0..5u8 {
            assert!(q.push(&m(round)));
            assert!(q.push(&m(round + 100)));
            assert_eq!(q.pop().unwrap().payload(), &[round]);
            assert_eq!(q.front().unwrap().payload(), &[round + 100]);
            assert_eq!(q.pop().unwrap().payload(), &[round + 100]);
            assert!(q.is_empty());
        }
        for n in 0..3 {
            assert!(q.push(&m(n)));
        }
        assert!(q.is_full());
        assert!(!q.push(&m(9)));
        assert_eq!(q.len(), 3);
        q.clear();
        assert!(q.pop().is_none());
    }
}
