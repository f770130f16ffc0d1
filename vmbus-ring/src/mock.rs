//! Test doubles (feature `test-utils`, and this crate's own tests).
//!
//! [`ChaosMemory`] plays a hostile peer: a ring memory whose control words and data change
//! between the ring code's reads, following a script of bytes (from a test, a proptest strategy
//! or a fuzzer). It also records every access the ring code makes that breaks the
//! [`RingMemory`] contract, so a test can assert there were none.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::memory::{ControlWord, FlatRingMemory, MemoryError, RingMemory};

/// A ring memory rewritten by a scripted hostile peer.
///
/// Before every control-word load and every data read, one script byte is consumed:
///
/// | byte % 8 | the peer… |
/// |---|---|
/// | 0–3 | does nothing |
/// | 4 | sets `write_index` to the next 4 script bytes (little-endian) |
/// | 5 | sets `read_index` to the next 4 script bytes |
/// | 6 | sets `interrupt_mask`, `pending_send_size` or `feature_bits` (chosen by the next byte) to the 4 after it |
/// | 7 | overwrites the data word chosen by the next 2 bytes with the 8 after them |
///
/// When the script runs out the peer goes quiet.
#[derive(Debug)]
pub struct ChaosMemory {
    inner: FlatRingMemory<Box<[AtomicU64]>>,
    script: Vec<u8>,
    pos: AtomicUsize,
    violations: AtomicUsize,
}

impl ChaosMemory {
    /// A zeroed ring of `data_len` bytes driven by `script`.
    ///
    /// # Errors
    /// As for [`FlatRingMemory::new_boxed`].
    pub fn new(data_len: usize, script: Vec<u8>) -> Result<Self, MemoryError> {
        Ok(Self {
            inner: FlatRingMemory::new_boxed(data_len)?,
            script,
            pos: AtomicUsize::new(0),
            violations: AtomicUsize::new(0),
        })
    }

    /// The undisturbed memory (to seed it, or to look at it).
    pub fn quiet(&self) -> &FlatRingMemory<Box<[AtomicU64]>> {
        &self.inner
    }

    /// Accesses the ring code made outside the contract of [`RingMemory`]: an offset at or past
    /// the data size, a length over it, or an unaligned offset or length.
    pub fn violations(&self) -> usize {
        self.violations.load(Ordering::Relaxed)
    }

    /// Script bytes consumed so far.
    pub fn script_used(&self) -> usize {
        self.pos.load(Ordering::Relaxed).min(self.script.len())
    }

    fn take(&self, n: usize) -> Option<&[u8]> {
        let at = self.pos.fetch_add(n, Ordering::Relaxed);
        self.script.get(at..at.checked_add(n)?)
    }

    fn take_u32(&self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn disturb(&self) {
        let Some(&[op]) = self.take(1) else {
            return;
        };
        match op % 8 {
            4 => {
                if let Some(v) = self.take_u32() {
                    self.inner.store_control(ControlWord::WriteIndex, v);
                }
            }
            5 => {
                if let Some(v) = self.take_u32() {
                    self.inner.store_control(ControlWord::ReadIndex, v);
                }
            }
            6 => {
                let which = self.take(1).map_or(0, |b| b[0]);
                if let Some(v) = self.take_u32() {
                    let word = match which % 3 {
                        0 => ControlWord::InterruptMask,
                        1 => ControlWord::PendingSendSize,
                        _ => ControlWord::FeatureBits,
                    };
                    self.inner.store_control(word, v);
                }
            }
            7 => {
                if let (Some(i), Some(v)) = (self.take(2), self.take(8)) {
                    let words = self.inner.data_len() / 8;
                    let i = u32::from(u16::from_le_bytes([i[0], i[1]])) % words;
                    self.inner.write_at(i * 8, v);
                }
            }
            _ => {}
        }
    }

    fn check(&self, offset: u32, len: usize) {
        let size = self.inner.data_len();
        if offset >= size
            || len > size as usize
            || !offset.is_multiple_of(8)
            || !len.is_multiple_of(8)
        {
            self.violations.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl RingMemory for ChaosMemory {
    fn data_len(&self) -> u32 {
        self.inner.data_len()
    }

    fn load_control(&self, word: ControlWord) -> u32 {
        self.disturb();
        self.inner.load_control(word)
    }

    fn store_control(&self, word: ControlWord, value: u32) {
        self.inner.store_control(word, value);
    }

    fn read_at(&self, offset: u32, buf: &mut [u8]) {
        self.check(offset, buf.len());
        self.disturb();
        self.inner.read_at(offset, buf);
    }

    fn write_at(&self, offset: u32, buf: &[u8]) {
        self.check(offset, buf.len());
        self.inner.write_at(offset, buf);
    }
}
