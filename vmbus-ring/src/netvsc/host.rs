//! The host (netvsp) side of one network channel, transport-agnostic.
//!
//! [`NetHost::handle`] takes one guest packet and returns a [`NetAction`]: answer now, map a
//! buffer the guest registered (then [`NetHost::buffer_mapped`] builds the answer), or gather
//! the bytes of an RNDIS message (from the send buffer and/or the packet's GPA ranges, as one
//! stream) and pass them to [`NetHost::rndis`], which yields the frames the guest sent and the
//! RNDIS responses to deliver.
//!
//! The receive path: [`NetHost::receive_slot`] hands out a free sub-allocation of the guest's
//! receive buffer; the caller writes one RNDIS message there and sends a transfer-page packet
//! whose transaction id is the slot's [`RxSlot::transaction_id`]; the guest's completion frees
//! the slot (through [`NetHost::handle`]). A slot is never reused before that completion.
//! Data frames wait until the guest set a packet filter ([`NetHost::accepts_frames`]).
//!
//! Transaction ids carry a receive-buffer session in their high 32 bits and the slot in the
//! low 32. The session changes whenever the slots start over — the guest registers or revokes
//! a receive buffer, or the caller [`reset`](NetHost::reset)s the channel — so a late
//! completion of a packet sent before frees nothing (it would otherwise free the slot of the
//! same number in the new buffer while the guest still holds it). Which slots are in flight
//! is a bitmap: a completion costs the same however large the buffer.

use alloc::vec::Vec;
use core::ops::Range;

use zerocopy::byteorder::little_endian::U32;

use super::nvsp::{self, MessageType, Status, Version};
use super::rndis::{self, Oid};
use crate::gpadl::GpaRanges;
use crate::packet::{PacketKind, PacketRepr};

/// Host settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The adapter's MAC address.
    pub mac: [u8; 6],
    /// Bytes per receive sub-allocation (an RNDIS header plus the largest frame, at least 68).
    pub sub_alloc_size: u32,
    /// Bytes per send-buffer section the host asks for.
    pub send_section_size: u32,
    /// PACKET messages per RNDIS message the guest may batch.
    pub max_packets: u32,
    /// Link speed announced, in 100 bit/s units.
    pub link_speed: u32,
}

impl NetConfig {
    /// Defaults for `mac`: 1806-byte sub-allocations, 6144-byte send sections, 10 Gbit/s.
    pub const fn new(mac: [u8; 6]) -> Self {
        Self {
            mac,
            sub_alloc_size: 1806,
            send_section_size: 6144,
            max_packets: 8,
            link_speed: 100_000_000,
        }
    }
}

/// A receive sub-allocation to fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxSlot {
    /// Byte offset in the receive buffer.
    pub offset: u32,
    /// Bytes available.
    pub len: u32,
    /// The transfer-page set id to send with it.
    pub set_id: u16,
    /// The transaction id to send with it (the guest's completion frees the slot).
    pub transaction_id: u64,
}

/// Which guest buffer to map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// The receive buffer (host writes).
    Receive,
    /// The send buffer (guest writes).
    Send,
}

/// What to do with one guest packet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetAction<'a> {
    /// Send a completion with this payload (the packet asked for one).
    Complete([u8; nvsp::MESSAGE_LEN]),
    /// Nothing to send.
    Nothing,
    /// Check and map GPADL `gpadl` as a buffer, then call [`NetHost::buffer_mapped`] and send
    /// its answer as the completion.
    MapBuffer {
        /// Which buffer.
        kind: BufferKind,
        /// Its GPADL.
        gpadl: u32,
    },
    /// Gather the RNDIS bytes — `section` of the send buffer first (byte offset and length),
    /// then the GPA ranges — and call [`NetHost::rndis`]; then send its status as the
    /// completion (`{108, status}`).
    Rndis {
        /// [`nvsp::CHANNEL_DATA`] or [`nvsp::CHANNEL_CONTROL`].
        channel_type: u32,
        /// Bytes in the send buffer.
        section: Option<Range<u64>>,
        /// Guest pages.
        ranges: Option<GpaRanges<'a>>,
    },
    /// A protocol error: the packet is ignored.
    Drop(&'static str),
}

/// What one RNDIS message stream produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RndisOutput {
    /// The frames, as ranges of the stream.
    pub frames: Vec<Range<usize>>,
    /// RNDIS responses to deliver on the control channel.
    pub responses: Vec<Vec<u8>>,
    /// The transport status to complete with.
    pub status: Status,
}

/// The netvsp protocol state of one channel.
#[derive(Clone, Debug)]
pub struct NetHost {
    config: NetConfig,
    version: Option<Version>,
    recv: Option<(u32, u16, u32)>,
    send: Option<u32>,
    pending: Option<(BufferKind, u32, u16)>,
    /// Free receive slots (a stack).
    free: Vec<u32>,
    /// One bit per receive slot: set while it is in flight.
    busy: Vec<u64>,
    count: u32,
    /// The receive-buffer session: the high half of every receive transaction id.
    session: u32,
    /// Completions for a slot of an earlier session.
    stale: u64,
    filter: u32,
    initialized: bool,
}

impl NetHost {
    /// A channel waiting for INIT.
    pub fn new(config: NetConfig) -> Self {
        Self {
            config,
            version: None,
            recv: None,
            send: None,
            pending: None,
            free: Vec::new(),
            busy: Vec::new(),
            count: 0,
            session: 0,
            stale: 0,
            filter: 0,
            initialized: false,
        }
    }

    /// Back to a channel waiting for INIT (the guest closed the channel or tore down its
    /// buffers), as [`new`](Self::new) with the same configuration, except that packets sent
    /// before stay in an earlier session: their completions free nothing.
    pub fn reset(&mut self) {
        let (session, stale) = (self.session.wrapping_add(1), self.stale);
        *self = Self {
            session,
            stale,
            ..Self::new(self.config)
        };
    }

    /// Completions that named a receive slot of an earlier session (or of none) and freed
    /// nothing.
    pub fn stale_completions(&self) -> u64 {
        self.stale
    }

    /// The receive slots start over: `count` of them, all free, in a new session.
    fn start_slots(&mut self, count: u32) {
        self.session = self.session.wrapping_add(1);
        self.count = count;
        self.free = (0..count).rev().collect();
        self.busy = alloc::vec![0; (count as usize).div_ceil(64)];
    }

    /// Frees the slot a transaction id names if it is of this session and in flight.
    fn free_slot(&mut self, transaction_id: u64) -> bool {
        let slot = transaction_id as u32;
        if transaction_id >> 32 != u64::from(self.session) || slot >= self.count {
            return false;
        }
        let (word, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
        match self.busy.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                self.free.push(slot);
                true
            }
            _ => false,
        }
    }

    /// The negotiated NVSP version.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The mapped receive and send buffers' GPADLs.
    pub fn buffers(&self) -> (Option<u32>, Option<u32>) {
        (self.recv.map(|r| r.0), self.send)
    }

    /// Whether RNDIS is initialized and the guest asked for frames (packet filter ≠ 0).
    pub fn accepts_frames(&self) -> bool {
        self.initialized && self.filter != 0 && self.recv.is_some()
    }

    /// Receive sub-allocations not in flight.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Decides what to do with one guest packet.
    pub fn handle<'a>(&mut self, packet: &PacketRepr<'a>) -> NetAction<'a> {
        if packet.kind == PacketKind::Completion {
            // The guest completed a transfer-page packet: its slot is free again.
            if self.free_slot(packet.transaction_id) {
                return NetAction::Nothing;
            }
            self.stale += 1;
            return NetAction::Drop("completion for no receive slot in flight");
        }
        let Some(t) = nvsp::message_type(packet.payload) else {
            return NetAction::Drop("short NVSP message");
        };
        let answer = |a: [u8; nvsp::MESSAGE_LEN]| {
            if packet.completion_requested {
                NetAction::Complete(a)
            } else {
                NetAction::Nothing
            }
        };
        match t {
            MessageType::INIT => {
                let Some(init) = nvsp::read::<nvsp::Init>(packet.payload, 12) else {
                    return NetAction::Drop("short INIT");
                };
                let (min, max) = (init.min_version.get(), init.max_version.get());
                let chosen = nvsp::LINUX_VERSIONS
                    .iter()
                    .copied()
                    .find(|v| (min..=max).contains(&v.0));
                let status = if chosen.is_some() {
                    Status::SUCCESS
                } else {
                    Status::FAILURE
                };
                if chosen.is_some() {
                    self.version = chosen;
                }
                answer(nvsp::padded(&nvsp::InitComplete {
                    message_type: U32::new(MessageType::INIT_COMPLETE.0),
                    negotiated_version: U32::new(chosen.map_or(0, |v| v.0)),
                    max_mdl_chain_len: U32::new(34),
                    status: U32::new(status.0),
                }))
            }
            MessageType::SEND_NDIS_VERSION | MessageType::SEND_NDIS_CONFIG => NetAction::Nothing,
            MessageType::SEND_RECV_BUFFER | MessageType::SEND_SEND_BUFFER => {
                let Some(b) = nvsp::read::<nvsp::SendBuffer>(packet.payload, 10) else {
                    return NetAction::Drop("short buffer registration");
                };
                if self.version.is_none() {
                    return NetAction::Drop("buffer registration before INIT");
                }
                let kind = if t == MessageType::SEND_RECV_BUFFER {
                    BufferKind::Receive
                } else {
                    BufferKind::Send
                };
                self.pending = Some((kind, b.gpadl.get(), b.id.get()));
                NetAction::MapBuffer {
                    kind,
                    gpadl: b.gpadl.get(),
                }
            }
            MessageType::REVOKE_RECV_BUFFER => {
                self.recv = None;
                self.start_slots(0);
                NetAction::Nothing
            }
            MessageType::REVOKE_SEND_BUFFER => {
                self.send = None;
                NetAction::Nothing
            }
            MessageType::SEND_RNDIS_PACKET => {
                let Some(p) = nvsp::read::<nvsp::RndisPacket>(packet.payload, 16) else {
                    return NetAction::Drop("short SEND_RNDIS_PACKET");
                };
                let (index, size) = (p.section_index.get(), p.section_size.get());
                let section = if index == nvsp::NO_SECTION {
                    None
                } else if self.send.is_some() && size <= self.config.send_section_size {
                    let start = u64::from(index) * u64::from(self.config.send_section_size);
                    Some(start..start + u64::from(size))
                } else {
                    return answer(nvsp::rndis_complete(Status::INVALID_RNDIS_PACKET));
                };
                let ranges = match packet.kind {
                    PacketKind::GpaDirect { ranges } => Some(ranges),
                    _ => None,
                };
                if section.is_none() && ranges.is_none() {
                    return answer(nvsp::rndis_complete(Status::INVALID_RNDIS_PACKET));
                }
                NetAction::Rndis {
                    channel_type: p.channel_type.get(),
                    section,
                    ranges,
                }
            }
            _ => NetAction::Drop("unsupported NVSP message"),
        }
    }

    /// The answer to the pending buffer registration, now that the caller mapped (`Some(len)`
    /// bytes) or refused (`None`) the GPADL.
    pub fn buffer_mapped(&mut self, len: Option<u64>) -> [u8; nvsp::MESSAGE_LEN] {
        let Some((kind, gpadl, id)) = self.pending.take() else {
            return nvsp::padded(&nvsp::RndisPacketComplete {
                message_type: U32::new(0),
                status: U32::new(Status::FAILURE.0),
            });
        };
        match kind {
            BufferKind::Receive => {
                let size = self.config.sub_alloc_size;
                let count =
                    len.map_or(0, |l| (l / u64::from(size)).min(u64::from(u32::MAX)) as u32);
                let ok = count > 0;
                if ok {
                    self.recv = Some((gpadl, id, size));
                    self.start_slots(count);
                }
                nvsp::padded(&nvsp::RecvBufferComplete {
                    message_type: U32::new(MessageType::SEND_RECV_BUFFER_COMPLETE.0),
                    status: U32::new(if ok {
                        Status::SUCCESS.0
                    } else {
                        Status::FAILURE.0
                    }),
                    num_sections: U32::new(1),
                    offset: U32::new(0),
                    sub_alloc_size: U32::new(size),
                    num_sub_allocs: U32::new(count),
                    end_offset: U32::new(size.saturating_mul(count)),
                })
            }
            BufferKind::Send => {
                let ok = len.is_some_and(|l| l >= u64::from(self.config.send_section_size));
                if ok {
                    self.send = Some(gpadl);
                }
                nvsp::padded(&nvsp::SendBufferComplete {
                    message_type: U32::new(MessageType::SEND_SEND_BUFFER_COMPLETE.0),
                    status: U32::new(if ok {
                        Status::SUCCESS.0
                    } else {
                        Status::FAILURE.0
                    }),
                    section_size: U32::new(self.config.send_section_size),
                })
            }
        }
    }

    /// Handles the RNDIS message stream of one SEND_RNDIS_PACKET.
    pub fn rndis(&mut self, channel_type: u32, stream: &[u8]) -> RndisOutput {
        let mut out = RndisOutput {
            status: Status::SUCCESS,
            ..RndisOutput::default()
        };
        let mut at = 0usize;
        while at < stream.len() {
            let Ok((t, msg)) = rndis::split(&stream[at..]) else {
                out.status = Status::INVALID_RNDIS_PACKET;
                break;
            };
            if t == rndis::MessageType::PACKET {
                match rndis::packet_frame(msg) {
                    Ok(frame) => {
                        let start = frame.as_ptr() as usize - stream.as_ptr() as usize;
                        out.frames.push(start..start + frame.len());
                    }
                    Err(_) => out.status = Status::INVALID_RNDIS_PACKET,
                }
            } else if channel_type == nvsp::CHANNEL_CONTROL || out.frames.is_empty() {
                if let Some(r) = self.control(t, msg) {
                    out.responses.push(r);
                }
            } else {
                out.status = Status::INVALID_RNDIS_PACKET;
                break;
            }
            at += msg.len();
        }
        out
    }

    fn control(&mut self, t: rndis::MessageType, msg: &[u8]) -> Option<Vec<u8>> {
        use rndis::Status as S;
        let id = rndis::request_id(msg).unwrap_or(0);
        match t {
            rndis::MessageType::INITIALIZE => {
                self.initialized = true;
                Some(rndis::initialize_complete(
                    id,
                    S::SUCCESS,
                    self.config.max_packets,
                ))
            }
            rndis::MessageType::HALT => {
                self.initialized = false;
                self.filter = 0;
                None
            }
            rndis::MessageType::KEEPALIVE => Some(rndis::keepalive_complete(id)),
            rndis::MessageType::QUERY => {
                let Ok((id, oid, _)) = rndis::oid_request(msg) else {
                    return Some(rndis::query_complete(id, S::INVALID_DATA, &[]));
                };
                let word = |v: u32| v.to_le_bytes().to_vec();
                let (status, data) = match oid {
                    Oid::PERMANENT_ADDRESS_802_3 | Oid::CURRENT_ADDRESS_802_3 => {
                        (S::SUCCESS, self.config.mac.to_vec())
                    }
                    Oid::GEN_MAXIMUM_FRAME_SIZE => (S::SUCCESS, word(1500)),
                    Oid::GEN_LINK_SPEED => (S::SUCCESS, word(self.config.link_speed)),
                    Oid::GEN_MEDIA_CONNECT_STATUS => (S::SUCCESS, word(0)),
                    Oid::GEN_CURRENT_PACKET_FILTER => (S::SUCCESS, word(self.filter)),
                    Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES => {
                        (S::SUCCESS, rndis::no_offloads().to_vec())
                    }
                    _ => (S::NOT_SUPPORTED, Vec::new()),
                };
                Some(rndis::query_complete(id, status, &data))
            }
            rndis::MessageType::SET => {
                let Ok((id, oid, value)) = rndis::oid_request(msg) else {
                    return Some(rndis::set_complete(id, S::INVALID_DATA));
                };
                let status = match oid {
                    Oid::GEN_CURRENT_PACKET_FILTER => match value.get(..4) {
                        Some(v) if value.len() == 4 => {
                            self.filter = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                            S::SUCCESS
                        }
                        _ => S::INVALID_DATA,
                    },
                    Oid::TCP_OFFLOAD_PARAMETERS => S::SUCCESS,
                    _ => S::NOT_SUPPORTED,
                };
                Some(rndis::set_complete(id, status))
            }
            rndis::MessageType::RESET => {
                self.filter = 0;
                let mut m = Vec::with_capacity(16);
                for w in [rndis::MessageType::RESET_COMPLETE.0, 16, 0, 0] {
                    m.extend_from_slice(&w.to_le_bytes());
                }
                Some(m)
            }
            _ => None,
        }
    }

    /// A free receive sub-allocation, or `None` (no buffer yet, or all in flight).
    pub fn receive_slot(&mut self) -> Option<RxSlot> {
        let (_, set_id, size) = self.recv?;
        let index = self.free.pop()?;
        if let Some(w) = self.busy.get_mut((index / 64) as usize) {
            *w |= 1 << (index % 64);
        }
        Some(RxSlot {
            offset: index * size,
            len: size,
            set_id,
            transaction_id: u64::from(self.session) << 32 | u64::from(index),
        })
    }

    /// Gives back a slot that was not sent after all (one of an earlier session, or one
    /// already given back, is ignored).
    pub fn release_slot(&mut self, slot: RxSlot) {
        self.free_slot(slot.transaction_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpadl::GpaRange;
    use zerocopy::IntoBytes;

    const MAC: [u8; 6] = [0x00, 0x15, 0x5d, 0x01, 0x02, 0x03];

    fn msg<T: IntoBytes + zerocopy::Immutable>(m: &T) -> [u8; nvsp::MESSAGE_LEN] {
        nvsp::padded(m)
    }

    fn complete(a: NetAction<'_>) -> [u8; nvsp::MESSAGE_LEN] {
        match a {
            NetAction::Complete(c) => c,
            other => panic!("expected a completion, got {other:?}"),
        }
    }

    fn rndis_packet(channel: u32, section: u32, size: u32) -> [u8; nvsp::MESSAGE_LEN] {
        msg(&nvsp::RndisPacket {
            message_type: U32::new(MessageType::SEND_RNDIS_PACKET.0),
            channel_type: U32::new(channel),
            section_index: U32::new(section),
            section_size: U32::new(size),
        })
    }

    /// Linux's bring-up, step by step, and frames both ways.
    #[test]
    fn linux_bring_up_and_frames() {
        let mut host = NetHost::new(NetConfig::new(MAC));
        // INIT V61 accepted; a range with nothing we know refused but still answered.
        for (v, want) in [
            (0x0009_0000, Status::FAILURE),
            (Version::V61.0, Status::SUCCESS),
        ] {
            let init = msg(&nvsp::Init {
                message_type: U32::new(MessageType::INIT.0),
                min_version: U32::new(v),
                max_version: U32::new(v),
            });
            let c = complete(host.handle(&PacketRepr::in_band(1, true, &init)));
            let ic: nvsp::InitComplete = nvsp::read(&c, 16).unwrap();
            assert_eq!((ic.message_type.get(), ic.status.get()), (2, want.0));
        }
        assert_eq!(host.version(), Some(Version::V61));
        let ver = msg(&nvsp::Init {
            message_type: U32::new(MessageType::SEND_NDIS_VERSION.0),
            min_version: U32::new(6),
            max_version: U32::new(30),
        });
        assert_eq!(
            host.handle(&PacketRepr::in_band(2, false, &ver)),
            NetAction::Nothing
        );
        // Buffers.
        for (t, id, kind, len) in [
            (
                MessageType::SEND_RECV_BUFFER,
                0xCAFE,
                BufferKind::Receive,
                16 << 20,
            ),
            (MessageType::SEND_SEND_BUFFER, 0, BufferKind::Send, 1 << 20),
        ] {
            let reg = msg(&nvsp::SendBuffer {
                message_type: U32::new(t.0),
                gpadl: U32::new(0x42),
                id: zerocopy::byteorder::little_endian::U16::new(id),
                reserved: zerocopy::byteorder::little_endian::U16::new(0),
            });
            assert_eq!(
                host.handle(&PacketRepr::in_band(3, true, &reg)),
                NetAction::MapBuffer { kind, gpadl: 0x42 }
            );
            let c = host.buffer_mapped(Some(len));
            assert_eq!(
                u32::from_le_bytes(c[4..8].try_into().unwrap()),
                Status::SUCCESS.0
            );
        }
        assert_eq!(host.free_slots(), (16 << 20) / 1806);
        // RNDIS control through GPA-direct packets.
        let pfns = [0x100];
        let mut buf = [0u8; 32];
        let ranges = GpaRanges::encode(&[GpaRange::new(0, 64, &pfns)], &mut buf).unwrap();
        let ctl = rndis_packet(nvsp::CHANNEL_CONTROL, nvsp::NO_SECTION, 0);
        let p = PacketRepr::gpa_direct(4, true, ranges, &ctl);
        assert!(matches!(
            host.handle(&p),
            NetAction::Rndis {
                channel_type: 1,
                section: None,
                ranges: Some(_)
            }
        ));
        let requests = [
            rndis::initialize(1),
            rndis::oid_message(false, 2, Oid::PERMANENT_ADDRESS_802_3, &[]),
            rndis::oid_message(
                false,
                3,
                Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES,
                &[0xA7, 1, 112, 0],
            ),
            rndis::oid_message(true, 4, Oid::TCP_OFFLOAD_PARAMETERS, &[0x80, 3, 28, 0]),
            rndis::oid_message(false, 5, Oid(0x1234), &[]),
        ];
        let answers: Vec<Vec<u8>> = requests
            .iter()
            .map(|r| {
                let out = host.rndis(nvsp::CHANNEL_CONTROL, r);
                assert_eq!(out.status, Status::SUCCESS);
                assert!(out.frames.is_empty());
                out.responses.into_iter().next().unwrap()
            })
            .collect();
        assert_eq!(
            u32::from_le_bytes(answers[0][..4].try_into().unwrap()),
            0x8000_0002
        );
        assert_eq!(&answers[1][24..], &MAC);
        assert_eq!((answers[2][24], answers[2].len()), (0xA7, 24 + 112));
        assert_eq!(&answers[3][12..16], &[0; 4]);
        assert_eq!(
            u32::from_le_bytes(answers[4][12..16].try_into().unwrap()),
            0xC000_00BB
        );
        assert!(!host.accepts_frames());
        host.rndis(
            1,
            &rndis::oid_message(
                true,
                6,
                Oid::GEN_CURRENT_PACKET_FILTER,
                &13u32.to_le_bytes(),
            ),
        );
        assert!(host.accepts_frames());
        // Two frames batched in send-buffer section 2.
        let (a, b) = (rndis::packet(&[1; 60]), rndis::packet(&[2; 98]));
        let stream: Vec<u8> = a.iter().chain(&b).copied().collect();
        let data = rndis_packet(nvsp::CHANNEL_DATA, 2, stream.len() as u32);
        let NetAction::Rndis {
            section: Some(s), ..
        } = host.handle(&PacketRepr::in_band(5, true, &data))
        else {
            panic!("no section")
        };
        assert_eq!(s, 2 * 6144..2 * 6144 + stream.len() as u64);
        let out = host.rndis(nvsp::CHANNEL_DATA, &stream);
        assert_eq!(out.frames.len(), 2);
        assert_eq!(&stream[out.frames[1].clone()], &[2; 98]);
        // Receive slots: handed out once, freed by the guest's completion.
        let (s1, s2) = (host.receive_slot().unwrap(), host.receive_slot().unwrap());
        assert_ne!(s1.offset, s2.offset);
        assert_eq!((s1.set_id, s1.len), (0xCAFE, 1806));
        let before = host.free_slots();
        let done = nvsp::rndis_complete(Status::SUCCESS);
        assert_eq!(
            host.handle(&PacketRepr::completion(s1.transaction_id, &done)),
            NetAction::Nothing
        );
        assert_eq!(host.free_slots(), before + 1);
        assert!(matches!(
            host.handle(&PacketRepr::completion(s1.transaction_id, &done)),
            NetAction::Drop(_)
        ));
    }

    /// INIT, then a receive buffer of `len` bytes mapped.
    fn with_receive_buffer(host: &mut NetHost, len: u64) {
        let init = msg(&nvsp::Init {
            message_type: U32::new(MessageType::INIT.0),
            min_version: U32::new(Version::V61.0),
            max_version: U32::new(Version::V61.0),
        });
        complete(host.handle(&PacketRepr::in_band(1, true, &init)));
        register_receive_buffer(host, len);
    }

    /// A SEND_RECV_BUFFER or SEND_SEND_BUFFER message naming `gpadl` and `id`.
    fn buffer_message(t: MessageType, gpadl: u32, id: u16) -> [u8; nvsp::MESSAGE_LEN] {
        msg(&nvsp::SendBuffer {
            message_type: U32::new(t.0),
            gpadl: U32::new(gpadl),
            id: zerocopy::byteorder::little_endian::U16::new(id),
            reserved: zerocopy::byteorder::little_endian::U16::new(0),
        })
    }

    fn register_receive_buffer(host: &mut NetHost, len: u64) {
        let reg = buffer_message(MessageType::SEND_RECV_BUFFER, 0x42, 7);
        assert!(matches!(
            host.handle(&PacketRepr::in_band(3, true, &reg)),
            NetAction::MapBuffer { .. }
        ));
        host.buffer_mapped(Some(len));
    }

    /// Each control message and OID: the answers, the packet filter's 4-byte rule, RESET and
    /// HALT clearing the filter, a control message on the data channel before any frame.
    #[test]
    fn rndis_control_messages() {
        let mut host = NetHost::new(NetConfig::new(MAC));
        with_receive_buffer(&mut host, 4 * 1806);
        let mut slots: Vec<u32> = (0..4)
            .map(|_| host.receive_slot().unwrap().offset)
            .collect();
        slots.sort_unstable();
        assert_eq!(slots, [0, 1806, 2 * 1806, 3 * 1806]);
        let words = |w: &[u32]| w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut ask = |channel: u32, m: &[u8]| {
            let out = host.rndis(channel, m);
            assert_eq!(out.status, Status::SUCCESS);
            out.responses
        };
        let control = nvsp::CHANNEL_CONTROL;
        assert_eq!(ask(control, &rndis::initialize(1)).len(), 1);
        let query = |oid: Oid| rndis::oid_message(false, 2, oid, &[]);
        let set_filter =
            |value: &[u8]| rndis::oid_message(true, 3, Oid::GEN_CURRENT_PACKET_FILTER, value);
        for (oid, value) in [
            (Oid::GEN_MAXIMUM_FRAME_SIZE, 1500u32),
            (Oid::GEN_LINK_SPEED, 100_000_000),
            (Oid::GEN_MEDIA_CONNECT_STATUS, 0),
            (Oid::GEN_CURRENT_PACKET_FILTER, 0),
        ] {
            let r = ask(control, &query(oid));
            assert_eq!(
                r,
                [rndis::query_complete(
                    2,
                    rndis::Status::SUCCESS,
                    &value.to_le_bytes()
                )]
            );
        }
        let ok = [rndis::set_complete(3, rndis::Status::SUCCESS)];
        let bad = [rndis::set_complete(3, rndis::Status::INVALID_DATA)];
        assert_eq!(ask(control, &set_filter(&13u32.to_le_bytes())), ok);
        assert_eq!(ask(control, &set_filter(&[1, 0, 0])), bad);
        assert_eq!(ask(control, &set_filter(&[1, 0, 0, 0, 0])), bad);
        let r = ask(control, &query(Oid::GEN_CURRENT_PACKET_FILTER));
        assert_eq!(
            r,
            [rndis::query_complete(
                2,
                rndis::Status::SUCCESS,
                &13u32.to_le_bytes()
            )]
        );
        // KEEPALIVE, here on the data channel (no frame came before it).
        let keepalive = words(&[rndis::MessageType::KEEPALIVE.0, 12, 9]);
        assert_eq!(
            ask(nvsp::CHANNEL_DATA, &keepalive),
            [rndis::keepalive_complete(9)]
        );
        assert!(host.accepts_frames());
        let reset = words(&[rndis::MessageType::RESET.0, 12, 0]);
        let out = host.rndis(control, &reset);
        assert_eq!(
            out.responses,
            [words(&[rndis::MessageType::RESET_COMPLETE.0, 16, 0, 0])]
        );
        assert!(!host.accepts_frames(), "RESET clears the packet filter");
        host.rndis(control, &set_filter(&13u32.to_le_bytes()));
        assert!(host.accepts_frames());
        let halt = words(&[rndis::MessageType::HALT.0, 12, 10]);
        assert!(host.rndis(control, &halt).responses.is_empty());
        assert!(!host.accepts_frames(), "HALT ends RNDIS");
    }

    /// A slot given back without being sent is free again, once.
    #[test]
    fn a_released_slot_is_free_again() {
        let mut host = NetHost::new(NetConfig::new(MAC));
        with_receive_buffer(&mut host, 2 * 1806);
        let slot = host.receive_slot().unwrap();
        assert_eq!(host.free_slots(), 1);
        host.release_slot(slot);
        assert_eq!(host.free_slots(), 2);
        host.release_slot(slot);
        assert_eq!(host.free_slots(), 2);
    }

    /// A receive buffer smaller than one sub-allocation is refused.
    #[test]
    fn a_receive_buffer_without_a_whole_slot_is_refused() {
        let mut host = NetHost::new(NetConfig::new(MAC));
        with_receive_buffer(&mut host, 1806);
        assert_eq!(host.free_slots(), 1);
        let reg = buffer_message(MessageType::SEND_RECV_BUFFER, 0x44, 9);
        host.handle(&PacketRepr::in_band(7, true, &reg));
        let answer = host.buffer_mapped(Some(1805));
        assert_eq!(&answer[4..8], &Status::FAILURE.0.to_le_bytes());
        assert_eq!(host.buffers().0, Some(0x42));
    }

    /// Revoking each buffer forgets that one only; a revoked receive buffer has no slots.
    #[test]
    fn revoking_a_buffer_forgets_it() {
        let mut host = NetHost::new(NetConfig::new(MAC));
        with_receive_buffer(&mut host, 4 * 1806);
        let send = buffer_message(MessageType::SEND_SEND_BUFFER, 0x43, 8);
        assert!(matches!(
            host.handle(&PacketRepr::in_band(4, true, &send)),
            NetAction::MapBuffer { .. }
        ));
        host.buffer_mapped(Some(64 << 10));
        assert_eq!(host.buffers(), (Some(0x42), Some(0x43)));
        assert_eq!(host.free_slots(), 4);
        let revoke = |t: MessageType| {
            msg(&nvsp::Init {
                message_type: U32::new(t.0),
                min_version: U32::new(0),
                max_version: U32::new(0),
            })
        };
        let r = revoke(MessageType::REVOKE_SEND_BUFFER);
        assert_eq!(
            host.handle(&PacketRepr::in_band(5, false, &r)),
            NetAction::Nothing
        );
        assert_eq!(host.buffers(), (Some(0x42), None));
        assert_eq!(host.free_slots(), 4);
        let r = revoke(MessageType::REVOKE_RECV_BUFFER);
        assert_eq!(
            host.handle(&PacketRepr::in_band(6, false, &r)),
            NetAction::Nothing
        );
        assert_eq!(host.buffers(), (None, None));
        assert_eq!(host.free_slots(), 0);
        assert!(host.receive_slot().is_none());
    }

    /// `reset` forgets the version and buffers (the guest must INIT again) but not the count
    /// of stale completions, which the late completions of the old session keep adding to.
    #[test]
    fn reset_starts_over_but_keeps_counting_stale_completions() {
        let done = nvsp::rndis_complete(Status::SUCCESS);
        let mut host = NetHost::new(NetConfig::new(MAC));
        assert_eq!(host.stale_completions(), 0);
        with_receive_buffer(&mut host, 4 * 1806);
        assert!(host.version().is_some());
        assert!(host.buffers().0.is_some());
        let old: Vec<RxSlot> = (0..2).map(|_| host.receive_slot().unwrap()).collect();
        host.reset();
        assert_eq!(host.version(), None);
        assert_eq!(host.buffers(), (None, None));
        assert_eq!(host.free_slots(), 0);
        let c = PacketRepr::completion(old[0].transaction_id, &done);
        assert!(matches!(host.handle(&c), NetAction::Drop(_)));
        assert_eq!(host.stale_completions(), 1);
        with_receive_buffer(&mut host, 4 * 1806);
        let c = PacketRepr::completion(old[1].transaction_id, &done);
        assert!(matches!(host.handle(&c), NetAction::Drop(_)));
        assert_eq!(host.stale_completions(), 2);
        host.reset();
        assert_eq!(host.stale_completions(), 2);
    }

    /// A completion of a packet sent before the receive slots started over (a new buffer, a
    /// revoke, a reset) frees nothing: it freed the slot of the same number in the new buffer,
    /// which the guest still held, so the host would write over it.
    #[test]
    fn a_late_completion_of_an_earlier_session_frees_nothing() {
        let done = nvsp::rndis_complete(Status::SUCCESS);
        let revoke = msg(&nvsp::Init {
            message_type: U32::new(MessageType::REVOKE_RECV_BUFFER.0),
            min_version: U32::new(7),
            max_version: U32::new(0),
        });
        for restart in 0..3 {
            let mut host = NetHost::new(NetConfig::new(MAC));
            with_receive_buffer(&mut host, 4 * 1806);
            let old = host.receive_slot().unwrap();
            match restart {
                0 => register_receive_buffer(&mut host, 4 * 1806),
                1 => {
                    host.handle(&PacketRepr::in_band(5, false, &revoke));
                    register_receive_buffer(&mut host, 4 * 1806);
                }
                _ => {
                    host.reset();
                    with_receive_buffer(&mut host, 4 * 1806);
                }
            }
            let new: Vec<RxSlot> = (0..4).map(|_| host.receive_slot().unwrap()).collect();
            assert!(new.iter().any(|s| s.offset == old.offset), "{restart}");
            assert!(host.receive_slot().is_none());
            assert!(matches!(
                host.handle(&PacketRepr::completion(old.transaction_id, &done)),
                NetAction::Drop(_)
            ));
            assert_eq!(host.free_slots(), 0, "restart {restart}");
            assert_eq!(host.stale_completions(), 1);
            // Each new slot is freed once, by its own completion.
            for s in &new {
                let c = PacketRepr::completion(s.transaction_id, &done);
                assert_eq!(host.handle(&c), NetAction::Nothing);
                assert!(matches!(host.handle(&c), NetAction::Drop(_)));
            }
            assert_eq!(host.free_slots(), 4);
            host.release_slot(new[0]);
            assert_eq!(
                host.free_slots(),
                4,
                "a slot not in flight is not released twice"
            );
        }
    }

    #[test]
    fn hostile_rndis_streams_fail_the_packet() {
        let mut host = NetHost::new(NetConfig::new(MAC));
        // A section without a send buffer, and a data message with neither section nor ranges.
        for p in [
            rndis_packet(0, 3, 100),
            rndis_packet(0, nvsp::NO_SECTION, 0),
        ] {
            let c = complete(host.handle(&PacketRepr::in_band(9, true, &p)));
            assert_eq!(
                u32::from_le_bytes(c[4..8].try_into().unwrap()),
                Status::INVALID_RNDIS_PACKET.0
            );
        }
        let mut frame = rndis::packet(&[7; 60]);
        frame[12..16].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(host.rndis(0, &frame).status, Status::INVALID_RNDIS_PACKET);
        assert_eq!(
            host.rndis(0, &[1, 0, 0, 0, 0xff, 0, 0, 0]).status,
            Status::INVALID_RNDIS_PACKET
        );
        // A control message after a frame on the data channel.
        let mut mixed = rndis::packet(&[7; 60]);
        mixed.extend_from_slice(&rndis::initialize(1));
        assert_eq!(host.rndis(0, &mixed).status, Status::INVALID_RNDIS_PACKET);
        assert!(host.receive_slot().is_none());
        assert!(matches!(
            host.handle(&PacketRepr::in_band(1, true, &[1, 0])),
            NetAction::Drop(_)
        ));
    }
}
