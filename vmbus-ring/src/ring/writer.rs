//! The writing endpoint of a ring.

use core::sync::atomic::{fence, Ordering};

use super::{CorruptRing, Geometry, PacketSink, WriteError, WritePacket};
use crate::defs::{align8, FeatureBits, PacketTrailer, MAX_PACKET_LEN, TRAILER_LEN};
use crate::memory::{ControlWord, RingMemory};

/// The writing end of one ring (a guest's guest-to-host ring, a host's host-to-guest ring).
///
/// Packets are copied into the ring by a [`WriteBatch`] and become visible to the reader only
/// when the batch is committed, all at once, with one signalling decision. [`write`](Self::write)
/// is a batch of one.
///
/// Attaching ([`new`](Self::new)) sets `feat_pending_send_sz` on the ring: this writer sets
/// `pending_send_size` when blocked ([`request_space`](Self::request_space)), and its owner is
/// expected to honour the same on the opposite ring (which [`RingReader`](super::RingReader)
/// does).
#[derive(Debug)]
pub struct RingWriter<M> {
    mem: M,
    geo: Geometry,
    /// Our write index: the authoritative copy (never read back from shared memory).
    write_index: u32,
    /// The last read index loaded from the peer, validated.
    cached_read: u32,
    /// Whether we left a non-zero `pending_send_size` in the control page.
    pending: bool,
}

/// The result of publishing one or more packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use = "the reader may need a signal"]
pub struct WriteOutcome {
    /// The ring went from empty to non-empty while the reader's `interrupt_mask` was clear:
    /// signal the reader. Signalling on anything else is an interrupt storm Windows hosts
    /// treat as abuse.
    pub must_signal: bool,
    /// Packets published.
    pub packets: usize,
}

/// A writer's own state between attachments ([`RingWriter::state`],
/// [`RingWriter::resume`]): its write index and whether it left `pending_send_size` set.
/// Both parts can be read and rebuilt ([`WriterState::new`]), so a VMM can save them with a
/// VM snapshot or a migration stream; `resume` validates the index against the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterState {
    write_index: u32,
    pending: bool,
}

impl WriterState {
    /// A state saved earlier as its two parts ([`write_index`](Self::write_index),
    /// [`pending`](Self::pending)).
    pub const fn new(write_index: u32, pending: bool) -> Self {
        Self {
            write_index,
            pending,
        }
    }

    /// The write index kept.
    pub fn write_index(&self) -> u32 {
        self.write_index
    }

    /// Whether the writer left a non-zero `pending_send_size` in the control page (it waits for
    /// the reader's signal that space is free).
    pub fn pending(&self) -> bool {
        self.pending
    }
}

/// The answer of [`RingWriter::request_space`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceRequest {
    /// The space is there now (the reader caught up while we asked); write again.
    Available,
    /// `pending_send_size` is set: wait for the reader's signal (if the reader honours it, see
    /// [`RingReader::peer_signals_space`](super::RingReader::peer_signals_space)), then write.
    Pending,
}

impl<M: RingMemory> RingWriter<M> {
    /// Attaches to a ring as its writer: takes the write index found in the control page,
    /// clears `pending_send_size` and sets `feat_pending_send_sz`.
    ///
    /// # Errors
    /// [`CorruptRing`] if the data size or either index in the control page is invalid.
    pub fn new(mem: M) -> Result<Self, CorruptRing> {
        let geo = Geometry::of(&mem)?;
        let write_index = geo.write_index(mem.load_control(ControlWord::WriteIndex))?;
        let cached_read = geo.read_index(mem.load_control(ControlWord::ReadIndex))?;
        mem.store_control(ControlWord::PendingSendSize, 0);
        let features = FeatureBits(mem.load_control(ControlWord::FeatureBits));
        if !features.pending_send_size() {
            mem.store_control(
                ControlWord::FeatureBits,
                features.with_pending_send_size(true).0,
            );
        }
        Ok(Self {
            mem,
            geo,
            write_index,
            cached_read,
            pending: false,
        })
    }

    /// Re-attaches to a ring this writer's owner wrote before, with the state it kept
    /// ([`state`](Self::state)) rather than the write index in the control page, which the
    /// reader can rewrite between attachments. A host that cannot keep the endpoint itself
    /// across exits (it borrows guest memory) keeps this instead.
    ///
    /// # Errors
    /// [`CorruptRing`] if the data size, the kept write index or the peer's read index is
    /// invalid for this ring.
    pub fn resume(mem: M, state: WriterState) -> Result<Self, CorruptRing> {
        let geo = Geometry::of(&mem)?;
        let write_index = geo.write_index(state.write_index)?;
        let cached_read = geo.read_index(mem.load_control(ControlWord::ReadIndex))?;
        Ok(Self {
            mem,
            geo,
            write_index,
            cached_read,
            pending: state.pending,
        })
    }

    /// What to keep to [`resume`](Self::resume) this writer on the same ring later.
    pub fn state(&self) -> WriterState {
        WriterState {
            write_index: self.write_index,
            pending: self.pending,
        }
    }

    /// The ring memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Detaches, returning the ring memory.
    pub fn into_memory(self) -> M {
        self.mem
    }

    /// Size of the data area in bytes.
    pub fn data_len(&self) -> u32 {
        self.geo.size
    }

    /// The largest packet (descriptor to padding, without trailer) this ring can ever hold.
    pub fn max_packet_len(&self) -> usize {
        self.geo.max_packet_len().min(MAX_PACKET_LEN)
    }

    /// Our write index (the next packet starts here).
    pub fn write_index(&self) -> u32 {
        self.write_index
    }

    /// Bytes a packet plus trailer may occupy right now (free space minus the reserve).
    ///
    /// # Errors
    /// [`CorruptRing::ReadIndex`] if the peer's read index is invalid.
    pub fn available(&mut self) -> Result<u32, CorruptRing> {
        self.refresh_read()?;
        Ok(self
            .geo
            .free(self.write_index, self.cached_read)
            .saturating_sub(TRAILER_LEN as u32))
    }

    /// Writes one packet and publishes it.
    ///
    /// # Errors
    /// [`WriteError::Full`] (nothing written), [`WriteError::TooLarge`],
    /// [`WriteError::BadLength`], [`WriteError::Corrupt`].
    pub fn write(
        &mut self,
        packet: &(impl WritePacket + ?Sized),
    ) -> Result<WriteOutcome, WriteError> {
        let mut batch = self.batch();
        batch.write(packet)?;
        Ok(batch.commit())
    }

    /// Starts a batch: packets written to it are published together by
    /// [`WriteBatch::commit`]; dropping the batch uncommitted discards them.
    pub fn batch(&mut self) -> WriteBatch<'_, M> {
        let pos = self.write_index;
        WriteBatch {
            writer: self,
            pos,
            packets: 0,
        }
    }

    /// Asks the reader for a signal once a packet of `packet_len` bytes (without trailer) fits:
    /// sets `pending_send_size`, then re-checks the free space (the reader may have drained the
    /// ring meanwhile, in which case no signal will come).
    ///
    /// The request is cleared by the next successful commit or by
    /// [`clear_pending_send`](Self::clear_pending_send).
    ///
    /// # Errors
    /// [`WriteError::TooLarge`] if the packet can never fit, [`WriteError::Corrupt`].
    pub fn request_space(&mut self, packet_len: usize) -> Result<SpaceRequest, WriteError> {
        let needed = self.needed(packet_len)?;
        self.mem.store_control(ControlWord::PendingSendSize, needed);
        self.pending = true;
        fence(Ordering::SeqCst);
        self.refresh_read()?;
        if needed < self.geo.free(self.write_index, self.cached_read) {
            self.clear_pending_send();
            Ok(SpaceRequest::Available)
        } else {
            Ok(SpaceRequest::Pending)
        }
    }

    /// Clears a `pending_send_size` left by [`request_space`](Self::request_space).
    pub fn clear_pending_send(&mut self) {
        if self.pending {
            self.mem.store_control(ControlWord::PendingSendSize, 0);
            self.pending = false;
        }
    }

    /// After restoring saved state: whether the reader must be signalled because the ring holds
    /// data and its interrupts are not masked (a signal may have been lost across the save).
    pub fn needs_signal_after_restore(&self) -> bool {
        fence(Ordering::SeqCst);
        let read = self.mem.load_control(ControlWord::ReadIndex);
        self.mem.load_control(ControlWord::InterruptMask) == 0 && read != self.write_index
    }

    /// Bytes a packet of `packet_len` needs including its trailer, checked against the ring.
    fn needed(&self, packet_len: usize) -> Result<u32, WriteError> {
        let len = align8(packet_len.max(16));
        if len > self.max_packet_len() {
            return Err(WriteError::TooLarge {
                len: packet_len,
                max: self.max_packet_len(),
            });
        }
        // Fits in u32: len <= size - 16 and size <= 2^31.
        Ok((len + TRAILER_LEN) as u32)
    }

    fn refresh_read(&mut self) -> Result<(), CorruptRing> {
        let read = self.mem.load_control(ControlWord::ReadIndex);
        self.cached_read = self.geo.read_index(read)?;
        Ok(())
    }
}

/// Packets written but not yet published; see [`RingWriter::batch`].
#[derive(Debug)]
#[must_use = "a batch publishes nothing until committed"]
pub struct WriteBatch<'w, M> {
    writer: &'w mut RingWriter<M>,
    /// Where the next packet goes.
    pos: u32,
    packets: usize,
}

impl<M: RingMemory> WriteBatch<'_, M> {
    /// Copies one packet and its trailer into the ring after the batch's previous packets.
    ///
    /// # Errors
    /// [`WriteError::Full`] (the batch keeps its earlier packets; commit them, then wait),
    /// [`WriteError::TooLarge`], [`WriteError::BadLength`], [`WriteError::Corrupt`].
    pub fn write(&mut self, packet: &(impl WritePacket + ?Sized)) -> Result<(), WriteError> {
        let len = packet.packet_len();
        if !len.is_multiple_of(8) || !(16..=MAX_PACKET_LEN).contains(&len) {
            return Err(WriteError::BadLength { len });
        }
        let w = &mut *self.writer;
        let needed = w.needed(len)?;
        let geo = w.geo;
        if needed >= geo.free(self.pos, w.cached_read) {
            // The cached read index is stale in the safe direction; look again before failing.
            w.refresh_read()?;
            let free = geo.free(self.pos, w.cached_read);
            if needed >= free {
                return Err(WriteError::Full {
                    needed,
                    available: free.saturating_sub(TRAILER_LEN as u32),
                });
            }
        }
        let start = self.pos;
        let mut sink = RingSink {
            mem: &w.mem,
            geo,
            pos: start,
            left: len,
            carry: [0; 8],
            carry_len: 0,
        };
        packet.emit_to(&mut sink);
        let left = sink.left;
        sink.put_zeros(left);
        let trailer = PacketTrailer::for_offset(start);
        w.mem.write_at(
            geo.advance(start, len as u32),
            zerocopy::IntoBytes::as_bytes(&trailer),
        );
        self.pos = geo.advance(start, needed);
        self.packets += 1;
        Ok(())
    }

    /// Packets in the batch so far.
    pub fn len(&self) -> usize {
        self.packets
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Publishes the batch's packets (one `write_index` store) and decides whether to signal.
    pub fn commit(self) -> WriteOutcome {
        if self.packets == 0 {
            return WriteOutcome::default();
        }
        let w = self.writer;
        let old = w.write_index;
        // Packet bytes before the index that publishes them.
        fence(Ordering::SeqCst);
        w.mem.store_control(ControlWord::WriteIndex, self.pos);
        w.write_index = self.pos;
        w.clear_pending_send();
        // The index store before the reader's mask and index loads (pairs with the reader's
        // barrier between publishing its read index / clearing its mask and re-checking ours).
        fence(Ordering::SeqCst);
        let must_signal = w.mem.load_control(ControlWord::InterruptMask) == 0
            && w.mem.load_control(ControlWord::ReadIndex) == old;
        WriteOutcome {
            must_signal,
            packets: self.packets,
        }
    }
}

/// Writes a packet's bytes at consecutive ring offsets. Bytes are gathered into whole aligned
/// 8-byte words (the ring offset stays 8-aligned), so the ring memory only ever sees aligned,
/// whole-word stores; at most `left` bytes are accepted.
struct RingSink<'m, M> {
    mem: &'m M,
    geo: Geometry,
    pos: u32,
    left: usize,
    carry: [u8; 8],
    carry_len: usize,
}

impl<M: RingMemory> PacketSink for RingSink<'_, M> {
    fn put(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(self.left);
        let mut bytes = bytes.get(..take).unwrap_or_default();
        self.left -= take;
        if self.carry_len > 0 {
            let n = (8 - self.carry_len).min(bytes.len());
            let (head, rest) = bytes.split_at(n);
            if let Some(dst) = self.carry.get_mut(self.carry_len..self.carry_len + n) {
                dst.copy_from_slice(head);
            }
            self.carry_len += n;
            bytes = rest;
            if self.carry_len < 8 {
                return;
            }
            self.mem.write_at(self.pos, &self.carry);
            self.pos = self.geo.advance(self.pos, 8);
            self.carry_len = 0;
        }
        let whole = bytes.len() / 8 * 8;
        let (body, tail) = bytes.split_at(whole);
        if !body.is_empty() {
            self.mem.write_at(self.pos, body);
            // `whole <= left <= size - 16`, so it fits in u32.
            self.pos = self.geo.advance(self.pos, whole as u32);
        }
        if let Some(dst) = self.carry.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        self.carry_len = tail.len();
    }
}
