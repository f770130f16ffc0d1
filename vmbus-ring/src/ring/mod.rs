//! Ring endpoints: a [`RingWriter`] and a [`RingReader`] over any [`RingMemory`].
//!
//! The same two types serve both sides of both directions: a guest writes its guest-to-host
//! ring with a `RingWriter` and the host reads it with a `RingReader`, and the other way round
//! for the host-to-guest ring. Neither endpoint calls out to signal its peer; every operation
//! that may require a signal returns the decision (`must_signal`) and the caller delivers it
//! (an `HvSignalEvent` from a guest, an event-flag bit and SINT from a host).
//!
//! The rules, from Linux `ring_buffer.c` and OpenVMM `vmbus_ring` (see `vmbus-hypercall.md`
//! §1.4–§1.5):
//!
//! - indices are 8-aligned byte offsets below the data size; the ring is empty when they are
//!   equal and is never allowed to become completely full (at least 8 bytes stay free);
//! - a writer copies packets and trailers, full barrier, publishes `write_index`, full barrier,
//!   and signals only if `interrupt_mask` is clear *and* `read_index` equals the write index
//!   before the batch (the ring went from empty to non-empty);
//! - a reader publishes `read_index`, full barrier, and signals a blocked writer only if the
//!   writer set `feat_pending_send_sz`, `pending_send_size & !7` is non-zero, and the free space
//!   went from `<= pending` before the batch to `> pending` after it.
//!
//! Each endpoint keeps its own index privately and never reads it back from shared memory; the
//! peer's index is read once per use, validated, and only then trusted.

mod reader;
mod writer;

pub use reader::{ReadBatch, ReleaseOutcome, RingReader};
pub use writer::{RingWriter, SpaceRequest, WriteBatch, WriteOutcome, WriterState};

use crate::memory::{RingMemory, MAX_DATA_LEN, MIN_DATA_LEN};

/// The ring's control words or packet framing were found inconsistent: the peer is broken or
/// hostile. The ring cannot be used further (the caller typically closes the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptRing {
    /// The memory reports an impossible data-area size.
    #[error("ring data area of {len} bytes is not a multiple of 8 in {min}..={max}", min = MIN_DATA_LEN, max = MAX_DATA_LEN)]
    DataLength {
        /// The reported size.
        len: u32,
    },
    /// The peer's (or initial) write index is misaligned or out of range.
    #[error("write index {index:#x} is not an 8-aligned offset below the data size {size:#x}")]
    WriteIndex {
        /// The value read.
        index: u32,
        /// The data-area size.
        size: u32,
    },
    /// The peer's (or initial) read index is misaligned or out of range.
    #[error("read index {index:#x} is not an 8-aligned offset below the data size {size:#x}")]
    ReadIndex {
        /// The value read.
        index: u32,
        /// The data-area size.
        size: u32,
    },
    /// A packet descriptor's length is below the descriptor size or runs past the write index.
    #[error("packet at {offset:#x} has len8 {len8}, but {available} bytes are available there")]
    PacketLength {
        /// Ring offset of the packet.
        offset: u32,
        /// The descriptor's `len8`.
        len8: u16,
        /// Bytes between the packet and the write index (including its trailer).
        available: u32,
    },
}

/// Errors reading from a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No packet is available. Not an error condition of the ring.
    #[error("the ring is empty")]
    Empty,
    /// The caller's buffer cannot hold the next packet; nothing was consumed.
    #[error("the next packet needs a buffer of {needed} bytes")]
    BufferTooSmall {
        /// Bytes the packet occupies (descriptor to end of padding, without the trailer).
        needed: usize,
    },
    /// The ring is corrupt.
    #[error("corrupt ring")]
    Corrupt(#[from] CorruptRing),
}

/// Errors writing to a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Not enough free space now; the reader has not caught up. Not an error condition of the
    /// ring: retry later, or ask for a signal with [`RingWriter::request_space`].
    #[error("the ring is full: {needed} bytes needed, {available} available")]
    Full {
        /// Bytes the packet needs including its trailer.
        needed: u32,
        /// Bytes that can be written now (free space minus the 8 bytes that always stay free).
        available: u32,
    },
    /// The packet is larger than this ring can ever hold.
    #[error("a {len}-byte packet does not fit a ring whose largest packet is {max} bytes")]
    TooLarge {
        /// The packet's length without the trailer.
        len: usize,
        /// The largest packet this ring takes.
        max: usize,
    },
    /// A [`WritePacket`] reported a length that is not a multiple of 8 in
    /// `16..=MAX_PACKET_LEN`.
    #[error("packet length {len} is not a multiple of 8 between 16 and 524280")]
    BadLength {
        /// The reported length.
        len: usize,
    },
    /// The ring is corrupt.
    #[error("corrupt ring")]
    Corrupt(#[from] CorruptRing),
}

/// Receives a packet's bytes in order while it is written (into a ring or a byte buffer).
pub trait PacketSink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// Appends `n` zero bytes.
    fn put_zeros(&mut self, n: usize) {
        const ZEROS: [u8; 64] = [0; 64];
        let mut left = n;
        while left > 0 {
            let k = left.min(ZEROS.len());
            self.put(&ZEROS[..k]);
            left -= k;
        }
    }
}

/// Something that can be written into a ring as one packet: a descriptor, its extended header,
/// payload and padding.
///
/// [`PacketRepr`](crate::packet::PacketRepr) implements it; so does [`RawPacket`] for bytes
/// already laid out. The writer trusts no implementation: it writes exactly
/// [`packet_len`](Self::packet_len) bytes, zero-filling a short emission and dropping the excess
/// of a long one, so a wrong implementation can corrupt only its own packet.
pub trait WritePacket {
    /// Bytes of the packet without the trailer (`len8 * 8`): a multiple of 8 in
    /// `16..=MAX_PACKET_LEN`.
    fn packet_len(&self) -> usize;

    /// Emits the packet's bytes in order.
    fn emit_to(&self, sink: &mut dyn PacketSink);
}

impl<T: WritePacket + ?Sized> WritePacket for &T {
    fn packet_len(&self) -> usize {
        (**self).packet_len()
    }
    fn emit_to(&self, sink: &mut dyn PacketSink) {
        (**self).emit_to(sink);
    }
}

/// A packet already laid out as bytes (descriptor first, padded to 8). Written as is.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a>(pub &'a [u8]);

impl WritePacket for RawPacket<'_> {
    fn packet_len(&self) -> usize {
        self.0.len()
    }
    fn emit_to(&self, sink: &mut dyn PacketSink) {
        sink.put(self.0);
    }
}

/// The ring geometry shared by both endpoints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    /// Data-area size in bytes.
    pub size: u32,
}

impl Geometry {
    pub(crate) fn of<M: RingMemory>(mem: &M) -> Result<Self, CorruptRing> {
        let size = mem.data_len();
        if !size.is_multiple_of(8) || !(MIN_DATA_LEN..=MAX_DATA_LEN).contains(&size) {
            return Err(CorruptRing::DataLength { len: size });
        }
        Ok(Self { size })
    }

    /// Whether `index` is a valid ring offset.
    pub(crate) fn valid(self, index: u32) -> bool {
        index < self.size && index.is_multiple_of(8)
    }

    pub(crate) fn write_index(self, index: u32) -> Result<u32, CorruptRing> {
        if self.valid(index) {
            Ok(index)
        } else {
            Err(CorruptRing::WriteIndex {
                index,
                size: self.size,
            })
        }
    }

    pub(crate) fn read_index(self, index: u32) -> Result<u32, CorruptRing> {
        if self.valid(index) {
            Ok(index)
        } else {
            Err(CorruptRing::ReadIndex {
                index,
                size: self.size,
            })
        }
    }

    /// Bytes free for the writer (raw: the 8-byte reserve is not subtracted). `size` when empty.
    pub(crate) fn free(self, write: u32, read: u32) -> u32 {
        if read > write {
            read - write
        } else {
            self.size - (write - read)
        }
    }

    /// Bytes written and not yet read.
    pub(crate) fn used(self, write: u32, read: u32) -> u32 {
        if write >= read {
            write - read
        } else {
            self.size - (read - write)
        }
    }

    /// `index + n` modulo the size (`index < size`, `n <= size`).
    pub(crate) fn advance(self, index: u32, n: u32) -> u32 {
        ((u64::from(index) + u64::from(n)) % u64::from(self.size)) as u32
    }

    /// The largest packet (without trailer) this ring can hold: `size - 16`.
    pub(crate) fn max_packet_len(self) -> usize {
        self.size as usize - 16
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod geometry_tests {
    use super::*;

    #[test]
    fn geometry_arithmetic() {
        let g = Geometry { size: 64 };
        assert_eq!(g.free(0, 0), 64);
        assert_eq!(g.used(0, 0), 0);
        assert_eq!(g.free(16, 0), 48);
        assert_eq!(g.used(16, 0), 16);
        assert_eq!(g.free(8, 16), 8);
        assert_eq!(g.used(8, 16), 56);
        assert_eq!(g.advance(56, 16), 8);
        assert_eq!(g.advance(0, 64), 0);
        assert!(g.valid(56) && !g.valid(64) && !g.valid(4));
        assert_eq!(g.max_packet_len(), 48);
    }
}
