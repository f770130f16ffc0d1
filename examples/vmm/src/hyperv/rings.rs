//! Ring endpoints across VM exits. The host's ring memory borrows guest RAM for one service,
//! so the endpoints are built anew each time; the host's own indices (its read index on the
//! guest-to-host ring, its write index and pending-send flag on the host-to-guest ring) are
//! kept here in between and resumed, never taken back from the control pages, which the guest
//! can rewrite (to replay packets the host already consumed, say).

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};

use vmbus_ring::memory::RingMemory;
use vmbus_ring::packet::PacketRepr;
use vmbus_ring::ring::{
    CorruptRing, ReadError, RingReader, RingWriter, SpaceRequest, WriteError, WritePacket,
    WriterState,
};

/// The host's indices of one open channel's two rings; `None` until the first service, which
/// attaches afresh.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingIndices {
    read: Option<u32>,
    write: Option<WriterState>,
}

/// A channel's two endpoints, each keeping its state when dropped.
pub type Ends<'k, M> = (Kept<'k, RingReader<M>>, Kept<'k, RingWriter<M>>);

impl RingIndices {
    /// The reader of the guest-to-host ring; its index is kept again when the guard drops.
    pub fn reader<M: RingMemory>(
        &mut self,
        mem: M,
    ) -> Result<Kept<'_, RingReader<M>>, CorruptRing> {
        reader(&mut self.read, mem)
    }

    /// The writer of the host-to-guest ring; its state is kept again when the guard drops.
    pub fn writer<M: RingMemory>(
        &mut self,
        mem: M,
    ) -> Result<Kept<'_, RingWriter<M>>, CorruptRing> {
        writer(&mut self.write, mem)
    }

    /// Both endpoints at once (the borrows are of different fields).
    pub fn pair<M: RingMemory>(
        &mut self,
        incoming: M,
        outgoing: M,
    ) -> Result<Ends<'_, M>, CorruptRing> {
        Ok((
            reader(&mut self.read, incoming)?,
            writer(&mut self.write, outgoing)?,
        ))
    }
}

fn reader<M: RingMemory>(
    slot: &mut Option<u32>,
    mem: M,
) -> Result<Kept<'_, RingReader<M>>, CorruptRing> {
    let end = match *slot {
        Some(index) => RingReader::resume(mem, index)?,
        None => RingReader::new(mem)?,
    };
    Ok(Kept { end, slot })
}

fn writer<M: RingMemory>(
    slot: &mut Option<WriterState>,
    mem: M,
) -> Result<Kept<'_, RingWriter<M>>, CorruptRing> {
    let end = match *slot {
        Some(state) => RingWriter::resume(mem, state)?,
        None => RingWriter::new(mem)?,
    };
    Ok(Kept { end, slot })
}

/// What an endpoint leaves to be resumed from.
pub trait Resumable {
    /// The kept state.
    type State;
    /// The state now.
    fn state_now(&self) -> Self::State;
}

impl<M: RingMemory> Resumable for RingReader<M> {
    type State = u32;
    fn state_now(&self) -> u32 {
        self.read_index()
    }
}

impl<M: RingMemory> Resumable for RingWriter<M> {
    type State = WriterState;
    fn state_now(&self) -> WriterState {
        self.state()
    }
}

/// An endpoint that writes its state back into its [`RingIndices`] when dropped, on every
/// path out of a service (errors included).
pub struct Kept<'k, E: Resumable> {
    end: E,
    slot: &'k mut Option<E::State>,
}

impl<E: Resumable> Drop for Kept<'_, E> {
    fn drop(&mut self) {
        *self.slot = Some(self.end.state_now());
    }
}

impl<E: Resumable> Deref for Kept<'_, E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.end
    }
}

impl<E: Resumable> DerefMut for Kept<'_, E> {
    fn deref_mut(&mut self) -> &mut E {
        &mut self.end
    }
}

/// Completions the host-to-guest ring had no room for, kept in order for the next service.
///
/// A device answers every request it read; when the guest is slow to take completions the
/// ring fills, and dropping the rest would lose answers for work already done (a disk write,
/// say) and leave the guest waiting for good. The outbox keeps them and asks the guest, with
/// `pending_send_size`, to signal once there is room. While it holds anything the device
/// reads no new requests, so it holds at most one ring's worth.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<(u64, Vec<u8>)>,
    /// Completions dropped because no ring of this size can hold them.
    pub undeliverable: u64,
}

impl Outbox {
    /// Queues the completion of transaction `txid` with `body`.
    pub fn push(&mut self, txid: u64, body: &[u8]) {
        self.queue.push_back((txid, body.to_vec()));
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets everything (the channel closed).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Writes what fits, in order, as one batch; when the ring fills, asks the guest for a
    /// signal once the next completion fits. Whether to signal the guest.
    ///
    /// # Errors
    /// A description when the ring is corrupt.
    pub fn flush<M: RingMemory>(&mut self, writer: &mut RingWriter<M>) -> Result<bool, String> {
        let mut signal = false;
        loop {
            let mut batch = writer.batch();
            let mut full = None;
            while let Some((txid, body)) = self.queue.front() {
                let packet = PacketRepr::completion(*txid, body);
                match batch.write(&packet) {
                    Ok(()) => {
                        self.queue.pop_front();
                    }
                    Err(WriteError::Full { .. }) => {
                        full = Some(packet.packet_len());
                        break;
                    }
                    Err(WriteError::Corrupt(e)) => return Err(e.to_string()),
                    Err(_) => {
                        // Larger than the ring can ever hold (a guest's tiny ring): it
                        // cannot be delivered, and must not hold back the ones behind it.
                        self.queue.pop_front();
                        self.undeliverable += 1;
                    }
                }
            }
            signal |= batch.commit().must_signal;
            let Some(len) = full else {
                return Ok(signal);
            };
            match writer.request_space(len).map_err(|e| e.to_string())? {
                SpaceRequest::Available => continue,
                SpaceRequest::Pending => return Ok(signal),
            }
        }
    }
}

/// What [`read_next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A packet of this many bytes is in the buffer.
    Packet(usize),
    /// A packet larger than the buffer was consumed and skipped.
    Skipped,
    /// The ring is empty.
    Empty,
}

/// Reads the next packet into `buf`. A packet larger than `buf` (no request of the device
/// needs that much) is consumed and skipped: left in the ring, it would stop the channel for
/// good, every later service failing on it again.
///
/// # Errors
/// A description when the ring is corrupt.
pub fn read_next<M: RingMemory>(
    reader: &mut RingReader<M>,
    buf: &mut [u8],
    signal: &mut bool,
) -> Result<Next, String> {
    match reader.read(buf) {
        Ok((len, released)) => {
            *signal |= released.must_signal;
            Ok(Next::Packet(len))
        }
        Err(ReadError::Empty) => Ok(Next::Empty),
        Err(ReadError::BufferTooSmall { .. }) => {
            let mut batch = reader.batch();
            batch.skip().map_err(|e| e.to_string())?;
            *signal |= batch.commit().must_signal;
            Ok(Next::Skipped)
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmbus_ring::memory::{ControlWord, FlatRingMemory};
    use vmbus_ring::packet::PacketRepr;

    /// The guest rewinds the host's indices between two services: the second service goes on
    /// from where the first left off.
    #[test]
    fn kept_indices_survive_a_rewound_control_page() {
        let to_host = FlatRingMemory::new_boxed(4096).unwrap();
        let to_guest = FlatRingMemory::new_boxed(4096).unwrap();
        let mut guest_writer = RingWriter::new(&to_host).unwrap();
        let _ = guest_writer
            .write(&PacketRepr::in_band(1, false, &[7; 24]))
            .unwrap();
        let mut kept = RingIndices::default();
        let mut buf = [0u8; 256];
        {
            let (mut r, mut w) = kept.pair(&to_host, &to_guest).unwrap();
            assert!(r.read(&mut buf).is_ok());
            let _ = w.write(&PacketRepr::in_band(2, false, &[8; 24])).unwrap();
        }
        let (read, written) = (
            to_host.load_control(ControlWord::ReadIndex),
            to_guest.load_control(ControlWord::WriteIndex),
        );
        to_host.store_control(ControlWord::ReadIndex, 0);
        to_guest.store_control(ControlWord::WriteIndex, 0);
        let (mut r, w) = kept.pair(&to_host, &to_guest).unwrap();
        assert_eq!((r.read_index(), w.state().write_index()), (read, written));
        assert!(r.read(&mut buf).is_err(), "the consumed packet came back");
    }

    /// A full host-to-guest ring keeps the completions that do not fit, in order, and asks
    /// for a signal; the next flush, after the guest made room, delivers them.
    #[test]
    fn the_outbox_keeps_what_does_not_fit() {
        let to_guest = FlatRingMemory::new_boxed(4096).unwrap();
        let mut writer = RingWriter::new(&to_guest).unwrap();
        let mut outbox = Outbox::default();
        for txid in 0..100u64 {
            outbox.push(txid, &[txid as u8; 40]);
        }
        outbox.flush(&mut writer).unwrap();
        assert!(
            !outbox.is_empty(),
            "100 completions of 64 bytes do not fit 4 KiB"
        );
        assert_ne!(to_guest.load_control(ControlWord::PendingSendSize), 0);
        // The guest reads everything, then the host flushes again.
        let mut guest = RingReader::new(&to_guest).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            while let Ok((len, _)) = guest.read(&mut buf) {
                seen.push(PacketRepr::parse_bytes(&buf[..len]).unwrap().transaction_id);
            }
            if outbox.is_empty() {
                break;
            }
            outbox.flush(&mut writer).unwrap();
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert_eq!(outbox.undeliverable, 0);
    }

    /// A packet larger than the reader's buffer is skipped, not left to block the ring.
    #[test]
    fn an_oversized_packet_is_skipped() {
        let to_host = FlatRingMemory::new_boxed(8192).unwrap();
        let mut guest = RingWriter::new(&to_host).unwrap();
        let _ = guest
            .write(&PacketRepr::in_band(1, false, &[1; 600]))
            .unwrap();
        let _ = guest
            .write(&PacketRepr::in_band(2, false, &[2; 24]))
            .unwrap();
        let mut reader = RingReader::new(&to_host).unwrap();
        let (mut buf, mut signal) = ([0u8; 256], false);
        assert_eq!(
            read_next(&mut reader, &mut buf, &mut signal),
            Ok(Next::Skipped)
        );
        let Ok(Next::Packet(len)) = read_next(&mut reader, &mut buf, &mut signal) else {
            panic!("the second packet");
        };
        assert_eq!(
            PacketRepr::parse_bytes(&buf[..len]).unwrap().transaction_id,
            2
        );
        assert_eq!(
            read_next(&mut reader, &mut buf, &mut signal),
            Ok(Next::Empty)
        );
    }
}
