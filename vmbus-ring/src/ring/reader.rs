//! The reading endpoint of a ring.

use core::sync::atomic::{fence, Ordering};

use super::{CorruptRing, Geometry, ReadError};
use crate::defs::{FeatureBits, DESCRIPTOR_LEN, TRAILER_LEN};
use crate::memory::{ControlWord, RingMemory};

/// The reading end of one ring (a host's guest-to-host ring, a guest's host-to-guest ring).
///
/// Every packet is copied out of the ring into the caller's buffer before anyone looks at it
/// (the peer may rewrite the ring at any moment), and its descriptor is read exactly once: the
/// length used to frame the packet is the length the caller sees. Only the framing (`len8`) is
/// checked here; the packet's contents are checked by
/// [`Packet::new_checked`](crate::packet::Packet::new_checked) and
/// [`PacketRepr::parse`](crate::packet::PacketRepr::parse), so a malformed packet is a
/// "corrupt packet", distinct from a corrupt ring.
///
/// Consumption is published by [`ReadBatch::commit`] ([`read`](Self::read) is a batch of one),
/// which also decides whether the blocked writer must be signalled and whether more data
/// arrived meanwhile.
///
/// For batched mode ([`mask_interrupts`](Self::mask_interrupts) /
/// [`unmask_interrupts`](Self::unmask_interrupts)) the loop is:
///
/// ```text
/// mask_interrupts();
/// loop {
///     drain with a batch; commit (signal the writer if asked);
///     if !unmask_interrupts() { break }     // nothing arrived while masked: sleep
///     mask_interrupts();                    // data arrived: drain again
/// }
/// ```
#[derive(Debug)]
pub struct RingReader<M> {
    mem: M,
    geo: Geometry,
    /// Our read index: the authoritative copy (never read back from shared memory).
    read_index: u32,
}

/// The result of publishing consumed packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use = "the writer may need a signal, and more data may have arrived"]
pub struct ReleaseOutcome {
    /// The writer is blocked on `pending_send_size` and the free space just crossed it: signal
    /// the writer.
    pub must_signal: bool,
    /// The ring was non-empty when checked after publishing: read again before waiting. (A
    /// packet written between the last empty check and the publish would otherwise not be
    /// signalled: the writer saw the old read index.)
    pub more: bool,
}

impl<M: RingMemory> RingReader<M> {
    /// Attaches to a ring as its reader, taking the read index found in the control page.
    ///
    /// # Errors
    /// [`CorruptRing`] if the data size or the read index is invalid.
    pub fn new(mem: M) -> Result<Self, CorruptRing> {
        let geo = Geometry::of(&mem)?;
        let read_index = geo.read_index(mem.load_control(ControlWord::ReadIndex))?;
        Ok(Self {
            mem,
            geo,
            read_index,
        })
    }

    /// Re-attaches to a ring this reader's owner read before, with the read index it kept
    /// ([`read_index`](Self::read_index)) rather than the one in the control page, which the
    /// writer can rewrite between attachments (to replay packets already consumed, say). A host
    /// that cannot keep the endpoint itself across exits (it borrows guest memory) keeps the
    /// index instead.
    ///
    /// # Errors
    /// [`CorruptRing`] if the data size or the kept index is invalid for this ring.
    pub fn resume(mem: M, read_index: u32) -> Result<Self, CorruptRing> {
        let geo = Geometry::of(&mem)?;
        let read_index = geo.read_index(read_index)?;
        Ok(Self {
            mem,
            geo,
            read_index,
        })
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

    /// Our read index (the next packet starts here).
    pub fn read_index(&self) -> u32 {
        self.read_index
    }

    /// Bytes written and not yet consumed (packets and trailers).
    ///
    /// # Errors
    /// [`CorruptRing::WriteIndex`] if the peer's write index is invalid.
    pub fn bytes_available(&self) -> Result<u32, CorruptRing> {
        let w = self
            .geo
            .write_index(self.mem.load_control(ControlWord::WriteIndex))?;
        Ok(self.geo.used(w, self.read_index))
    }

    /// Whether the writer of this ring set `feat_pending_send_sz`, i.e. will set
    /// `pending_send_size` here when blocked (and, as the reader of the opposite ring, signals
    /// when space frees up there). If it did not, a writer blocked on the opposite ring must
    /// poll.
    pub fn peer_signals_space(&self) -> bool {
        FeatureBits(self.mem.load_control(ControlWord::FeatureBits)).pending_send_size()
    }

    /// Copies the next packet into `buf` and consumes it. Returns its length (descriptor to end
    /// of padding; the trailer is skipped) and the release outcome.
    ///
    /// # Errors
    /// [`ReadError::Empty`], [`ReadError::BufferTooSmall`] (nothing consumed),
    /// [`ReadError::Corrupt`].
    pub fn read(&mut self, buf: &mut [u8]) -> Result<(usize, ReleaseOutcome), ReadError> {
        let mut batch = self.batch();
        let len = batch.next(buf)?;
        Ok((len, batch.commit()))
    }

    /// Copies the next packet into `buf` without consuming it; returns its length.
    ///
    /// # Errors
    /// As for [`read`](Self::read).
    pub fn peek(&self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut cached_write = self.read_index;
        self.frame(self.read_index, &mut cached_write, Some(buf))
            .map(|(len, _)| len)
    }

    /// Starts a batch: packets read from it are consumed together by [`ReadBatch::commit`];
    /// dropping the batch uncommitted leaves them in the ring.
    pub fn batch(&mut self) -> ReadBatch<'_, M> {
        let pos = self.read_index;
        ReadBatch {
            reader: self,
            pos,
            cached_write: pos,
        }
    }

    /// Batched mode: sets `interrupt_mask` so the writer stops signalling empty→non-empty
    /// transitions while we drain.
    pub fn mask_interrupts(&mut self) {
        self.mem.store_control(ControlWord::InterruptMask, 1);
        fence(Ordering::SeqCst);
    }

    /// Batched mode: clears `interrupt_mask`, then re-checks the write index. Returns `true`
    /// if data is waiting (it may have arrived while masked, unsignalled): mask again and drain.
    pub fn unmask_interrupts(&mut self) -> bool {
        self.mem.store_control(ControlWord::InterruptMask, 0);
        fence(Ordering::SeqCst);
        self.mem.load_control(ControlWord::WriteIndex) != self.read_index
    }

    /// After restoring saved state: whether the writer must be signalled because it waits for
    /// space that is already free (a signal may have been lost across the save).
    pub fn needs_signal_after_restore(&self) -> bool {
        fence(Ordering::SeqCst);
        let pending = self.mem.load_control(ControlWord::PendingSendSize) & !7;
        let w = self.mem.load_control(ControlWord::WriteIndex);
        pending != 0
            && self.peer_signals_space()
            && self.geo.valid(w)
            && self.geo.free(w, self.read_index) > pending
    }

    /// Frames the packet at `pos`: reads its descriptor once, checks `len8` against the data
    /// available, and, if `buf` is given, copies the packet into it. Returns the packet length
    /// and the position after its trailer. `cached_write` is refreshed when `pos` reaches it.
    fn frame(
        &self,
        pos: u32,
        cached_write: &mut u32,
        buf: Option<&mut [u8]>,
    ) -> Result<(usize, u32), ReadError> {
        if pos == *cached_write {
            let w = self.mem.load_control(ControlWord::WriteIndex);
            *cached_write = self.geo.write_index(w)?;
            if pos == *cached_write {
                return Err(ReadError::Empty);
            }
        }
        let available = self.geo.used(*cached_write, pos);
        let mut desc = [0u8; DESCRIPTOR_LEN];
        let len8 = if available as usize >= DESCRIPTOR_LEN + TRAILER_LEN {
            self.mem.read_at(pos, &mut desc);
            u16::from_le_bytes([desc[4], desc[5]])
        } else {
            0
        };
        let len = usize::from(len8) * 8;
        if len < DESCRIPTOR_LEN || len + TRAILER_LEN > available as usize {
            return Err(CorruptRing::PacketLength {
                offset: pos,
                len8,
                available,
            }
            .into());
        }
        if let Some(buf) = buf {
            let Some(out) = buf.get_mut(..len) else {
                return Err(ReadError::BufferTooSmall { needed: len });
            };
            let (head, body) = out.split_at_mut(DESCRIPTOR_LEN);
            // The descriptor as we validated it, not a second read of it.
            head.copy_from_slice(&desc);
            self.mem
                .read_at(self.geo.advance(pos, DESCRIPTOR_LEN as u32), body);
        }
        // `len + 8 <= available < size`, so the cast is lossless.
        Ok((len, self.geo.advance(pos, (len + TRAILER_LEN) as u32)))
    }
}

/// Packets read but not yet released to the writer; see [`RingReader::batch`].
#[derive(Debug)]
#[must_use = "a batch consumes nothing until committed"]
pub struct ReadBatch<'r, M> {
    reader: &'r mut RingReader<M>,
    /// Where the next packet starts.
    pos: u32,
    /// The last write index loaded from the peer, validated.
    cached_write: u32,
}

impl<M: RingMemory> ReadBatch<'_, M> {
    /// Copies the next packet into `buf` and adds it to the batch; returns its length.
    ///
    /// # Errors
    /// [`ReadError::Empty`] when the batch has reached the write index,
    /// [`ReadError::BufferTooSmall`] (the packet stays next), [`ReadError::Corrupt`].
    // Not `Iterator`: each call borrows a caller buffer and reports typed errors.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let (len, next) = self
            .reader
            .frame(self.pos, &mut self.cached_write, Some(buf))?;
        self.pos = next;
        Ok(len)
    }

    /// Copies the next packet into `buf` without adding it to the batch; returns its length.
    ///
    /// # Errors
    /// As for [`next`](Self::next).
    pub fn peek(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        self.reader
            .frame(self.pos, &mut self.cached_write, Some(buf))
            .map(|(len, _)| len)
    }

    /// Adds the next packet to the batch without copying it (to drop a packet whose buffer
    /// would be too large, for instance); returns its length.
    ///
    /// # Errors
    /// [`ReadError::Empty`], [`ReadError::Corrupt`].
    pub fn skip(&mut self) -> Result<usize, ReadError> {
        let (len, next) = self.reader.frame(self.pos, &mut self.cached_write, None)?;
        self.pos = next;
        Ok(len)
    }

    /// Bytes (packets and trailers) this batch has consumed so far.
    pub fn consumed(&self) -> u32 {
        self.reader.geo.used(self.pos, self.reader.read_index)
    }

    /// Publishes the new read index and decides whether to signal the writer.
    pub fn commit(self) -> ReleaseOutcome {
        let r = self.reader;
        let old = r.read_index;
        let new = self.pos;
        if new != old {
            // Release: our copies out of the ring happen before the writer may reuse the space.
            r.mem.store_control(ControlWord::ReadIndex, new);
            r.read_index = new;
        }
        // Our index store before the loads below (pairs with the writer's barrier between
        // setting pending_send_size / publishing its index and re-checking ours).
        fence(Ordering::SeqCst);
        // pending_send_size before the write index: a writer that blocked after writing more
        // published that write index before its pending size.
        let pending = r.mem.load_control(ControlWord::PendingSendSize) & !7;
        let w = r.mem.load_control(ControlWord::WriteIndex);
        let more = w != new;
        let must_signal = new != old
            && pending != 0
            && r.geo.valid(w)
            && r.peer_signals_space()
            && r.geo.free(w, old) <= pending
            && r.geo.free(w, new) > pending;
        ReleaseOutcome { must_signal, more }
    }
}
