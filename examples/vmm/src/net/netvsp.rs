//! The netvsp channel: `vmbus-ring`'s network host state machine over the channel's rings,
//! the guest's receive and send buffers read and written through their GPADLs, frames switched
//! through the [`Hub`].
//!
//! The channel is serviced after every VM exit, so what a service builds before it knows
//! whether there is work must cost O(1) whatever the guest's layout: the views of the rings
//! ([`guest_ring_pair`]) and of the receive and send buffers (`Gpadl::lazy_buffer`) borrow
//! what the server's GPADL table computed once, when each GPADL completed (its parsed ranges
//! and range index); no page list is walked per exit or per packet. A buffer's pages are
//! checked against guest RAM once, when the guest registers it (`MapBuffer`), on top of the
//! check of every GPADL when the VMBus host accepted it. Nothing is cached here: the views
//! are taken from the server's table on each service, so a GPADL torn down (or the channel
//! reset) leaves no view behind.

use std::collections::VecDeque;
use std::sync::Arc;

use vmbus_ring::channel::server::Server;
use vmbus_ring::defs::TransferPageRange;
use vmbus_ring::gpadl::{GpaBuffer, GuestRam};
use vmbus_ring::netvsc::host::{NetAction, NetConfig, NetHost};
use vmbus_ring::netvsc::{nvsp, rndis};
use vmbus_ring::packet::PacketRepr;
use vmbus_ring::ring::RingWriter;
use vswitch_core::PortId;
use zerocopy::byteorder::little_endian::U32;

use super::Hub;
use crate::hyperv::ring_pages::guest_ring_pair;
use crate::hyperv::rings::{read_next, Next, Outbox, RingIndices};
use crate::memory::GuestMemory;

/// The largest RNDIS message stream accepted from the guest.
const MAX_STREAM: u64 = 64 * 1024;

/// The most RNDIS control responses kept for the guest. A driver has one control request
/// outstanding at a time (Linux netvsc) or a handful; a guest that sends requests without
/// taking the responses (no receive buffer, or slots never completed) gets the excess
/// dropped instead of growing host memory.
const MAX_CONTROL: usize = 64;

/// Counters for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetStats {
    /// Frames the guest sent.
    pub frames_out: u64,
    /// Frames delivered to the guest.
    pub frames_in: u64,
    /// RNDIS control responses delivered.
    pub control: u64,
    /// Packets the host refused.
    pub errors: u64,
    /// Completions for a receive slot of an earlier receive-buffer session (also counted in
    /// `errors`): ignored, they free nothing.
    pub stale_completions: u64,
    /// VM exits when the first and the latest packet arrived.
    pub exits: Option<(u64, u64)>,
}

/// One network channel.
pub struct NetChannel {
    host: NetHost,
    hub: Arc<Hub>,
    port: PortId,
    /// RNDIS control responses waiting for a receive slot (they go before frames).
    control: VecDeque<Vec<u8>>,
    /// NVSP completions waiting for room in the host-to-guest ring.
    outbox: Outbox,
    /// Counters.
    pub stats: NetStats,
    /// The first event worth a timeline line (RNDIS up with a packet filter), once.
    announced: bool,
}

/// What one service pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Serviced {
    /// The guest must be signaled.
    pub signal: bool,
    /// The adapter just came up (RNDIS initialized, packet filter set).
    pub link_up: bool,
}

impl NetChannel {
    /// An adapter with `mac` on `port` of `hub`.
    pub fn new(mac: [u8; 6], hub: Arc<Hub>, port: PortId) -> Self {
        let config = NetConfig::new(mac);
        Self {
            host: NetHost::new(config),
            hub,
            port,
            control: VecDeque::new(),
            outbox: Outbox::default(),
            stats: NetStats::default(),
            announced: false,
        }
    }

    /// The channel opened, closed or the guest unloaded: the NVSP/RNDIS state (version,
    /// buffers, free receive slots, filter) and the waiting messages start over, so nothing of
    /// an earlier session (a driver reload, kexec) reaches the next one. `NetHost::reset`
    /// keeps packets sent before in an earlier receive-buffer session, so their late
    /// completions free nothing.
    pub fn reset(&mut self) {
        self.host.reset();
        self.control.clear();
        self.outbox.clear();
    }

    /// GPADL `id` was released. If it still backed the receive or send buffer (the guest did
    /// not revoke it first), the adapter starts over: the host must not write frames into
    /// whatever GPADL takes the id next.
    pub fn gpadl_released(&mut self, id: u32) {
        let (recv, send) = self.host.buffers();
        if recv == Some(id) || send == Some(id) {
            self.reset();
        }
    }

    /// The switch port.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// The negotiated NVSP version.
    pub fn version(&self) -> Option<u32> {
        self.host.version().map(|v| v.0)
    }

    /// Reads every guest packet on the channel and answers it, then delivers what waits for
    /// the guest (control responses, switched frames) while receive slots are free.
    ///
    /// # Errors
    /// A description when the rings cannot be used.
    pub fn service(
        &mut self,
        server: &Server,
        ring_gpadl: u32,
        downstream: u32,
        indices: &mut RingIndices,
        memory: &GuestMemory,
        exits: u64,
    ) -> Result<Serviced, String> {
        let ram = GuestRam::new(0, memory.words()).map_err(|e| e.to_string())?;
        let gpadl = server.gpadl(ring_gpadl).ok_or("the ring GPADL is gone")?;
        let pfns = gpadl.ring_pfns().map_err(|e| e.to_string())?;
        let (incoming, outgoing) =
            guest_ring_pair(memory, pfns, downstream).map_err(|e| e.to_string())?;
        let (mut reader, mut writer) = indices
            .pair(incoming, outgoing)
            .map_err(|e| e.to_string())?;
        let mut out = Serviced::default();
        // Completions an earlier service had no room for go first; while any still wait, no
        // new packet is read.
        out.signal |= self.outbox.flush(&mut writer)?;
        // Nothing is read while completions wait (a ring's worth at most is ever held).
        let budget = if self.outbox.is_empty() {
            usize::MAX
        } else {
            0
        };
        let mut packet = vec![0u8; 8192];
        for _ in 0..budget {
            let len = match read_next(&mut reader, &mut packet, &mut out.signal)? {
                Next::Packet(len) => len,
                Next::Skipped => {
                    self.stats.errors += 1;
                    continue;
                }
                Next::Empty => break,
            };
            let first = self.stats.exits.map_or(exits, |(first, _)| first);
            self.stats.exits = Some((first, exits));
            let Ok(repr) = PacketRepr::parse_bytes(&packet[..len]) else {
                self.stats.errors += 1;
                continue;
            };
            let txid = repr.transaction_id;
            // A completion gives a receive slot back; one of an earlier receive-buffer
            // session frees nothing (NetHost checks the session in its transaction id).
            let action = self.host.handle(&repr);
            self.stats.stale_completions = self.host.stale_completions();
            match action {
                NetAction::Complete(c) => self.outbox.push(txid, &c),
                NetAction::Nothing => {}
                NetAction::Drop(_) => self.stats.errors += 1,
                NetAction::MapBuffer { kind: _, gpadl } => {
                    // Every page checked once, here; the services after use lazy views.
                    let len = server
                        .gpadl(gpadl)
                        .and_then(|g| g.buffer(&ram).ok().map(|b| b.len()));
                    self.outbox.push(txid, &self.host.buffer_mapped(len));
                }
                NetAction::Rndis {
                    channel_type,
                    section,
                    ranges,
                } => {
                    let status = match self.gather(server, &ram, section, ranges) {
                        Some(stream) => {
                            let result = self.host.rndis(channel_type, &stream);
                            for f in &result.frames {
                                self.hub.send(self.port, &stream[f.clone()]);
                                self.stats.frames_out += 1;
                            }
                            for r in result.responses {
                                if self.control.len() < MAX_CONTROL {
                                    self.control.push_back(r);
                                } else {
                                    self.stats.errors += 1;
                                }
                            }
                            result.status
                        }
                        None => nvsp::Status::INVALID_RNDIS_PACKET,
                    };
                    if repr.completion_requested {
                        self.outbox.push(txid, &nvsp::rndis_complete(status));
                    }
                }
                // An action this adapter does not know: counted, not answered.
                _ => self.stats.errors += 1,
            }
        }
        drop(reader);
        out.signal |= self.outbox.flush(&mut writer)?;
        out.signal |= self.deliver(server, &ram, &mut writer)?;
        if !self.announced && self.host.accepts_frames() {
            self.announced = true;
            out.link_up = true;
        }
        Ok(out)
    }

    /// The RNDIS bytes of one SEND_RNDIS_PACKET: the send-buffer section, then the GPA ranges.
    fn gather(
        &self,
        server: &Server,
        ram: &GuestRam<&[std::sync::atomic::AtomicU64]>,
        section: Option<std::ops::Range<u64>>,
        ranges: Option<vmbus_ring::gpadl::GpaRanges<'_>>,
    ) -> Option<Vec<u8>> {
        let mut stream = Vec::new();
        if let Some(section) = section {
            let send = server.gpadl(self.host.buffers().1?)?;
            let buf = send.lazy_buffer(ram);
            let len = section.end.checked_sub(section.start)?.min(MAX_STREAM) as usize;
            stream.resize(len, 0);
            buf.read_at(section.start, &mut stream).ok()?;
        }
        if let Some(ranges) = ranges {
            let buf = GpaBuffer::new(ranges, ram).ok()?;
            let have = stream.len();
            let extra = buf.len().min(MAX_STREAM - have as u64) as usize;
            stream.resize(have + extra, 0);
            buf.read_at(0, &mut stream[have..]).ok()?;
        }
        Some(stream)
    }

    /// Writes waiting messages into free receive slots; returns whether to signal.
    fn deliver<M: vmbus_ring::memory::RingMemory>(
        &mut self,
        server: &Server,
        ram: &GuestRam<&[std::sync::atomic::AtomicU64]>,
        writer: &mut RingWriter<M>,
    ) -> Result<bool, String> {
        let Some(recv) = self.host.buffers().0.and_then(|g| server.gpadl(g)) else {
            return Ok(false);
        };
        let buf = recv.lazy_buffer(ram);
        let mut signal = false;
        loop {
            let (message, channel, frame) = if let Some(m) = self.control.pop_front() {
                (m, nvsp::CHANNEL_CONTROL, None)
            } else if self.host.accepts_frames() {
                match self.hub.receive(self.port) {
                    Some(f) => (rndis::packet(&f), nvsp::CHANNEL_DATA, Some(f)),
                    None => break,
                }
            } else {
                break;
            };
            let Some(slot) = self.host.receive_slot() else {
                // No room: keep the message for the next pass.
                match frame {
                    Some(f) => self.hub.unreceive(self.port, f),
                    None => self.control.push_front(message),
                }
                break;
            };
            if message.len() > slot.len as usize
                || buf.write_at(u64::from(slot.offset), &message).is_err()
            {
                self.host.release_slot(slot);
                self.stats.errors += 1;
                continue;
            }
            let range = TransferPageRange {
                byte_count: U32::new(message.len() as u32),
                byte_offset: U32::new(slot.offset),
            };
            let nvsp = nvsp::rndis_packet(channel);
            let ranges = [range];
            let packet =
                PacketRepr::transfer_pages(slot.transaction_id, true, slot.set_id, &ranges, &nvsp);
            match writer.write(&packet) {
                Ok(w) => {
                    signal |= w.must_signal;
                    if channel == nvsp::CHANNEL_DATA {
                        self.stats.frames_in += 1;
                    } else {
                        self.stats.control += 1;
                    }
                }
                Err(_) => {
                    // The ring is full: the slot goes back, the message waits.
                    self.host.release_slot(slot);
                    match frame {
                        Some(f) => self.hub.unreceive(self.port, f),
                        None => self.control.push_front(message),
                    }
                    break;
                }
            }
        }
        Ok(signal)
    }

    /// The switch counters of this adapter's port: (received, transmitted, dropped).
    pub fn switch_counters(&self) -> (u64, u64, u64) {
        self.hub.counters(self.port)
    }

    /// Whether frames for this adapter wait in the switch (not yet in the guest's buffer).
    pub fn frames_waiting(&self) -> bool {
        self.hub.waiting(self.port) > 0
    }
}

#[cfg(test)]
mod tests;
