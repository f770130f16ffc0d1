//! Ring endpoints across VM exits. The host's ring memory borrows guest RAM for one service,
//! so the endpoints are built anew each time; the host's own indices (its read index on the
//! guest-to-host ring, its write index and pending-send flag on the host-to-guest ring) are
//! kept here in between and resumed, never taken back from the control pages, which the guest
//! can rewrite (to replay packets the host already consumed, say).

use std::ops::{Deref, DerefMut};

use vmbus_ring::memory::RingMemory;
use vmbus_ring::ring::{CorruptRing, RingReader, RingWriter, WriterState};

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
}
