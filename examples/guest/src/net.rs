//! A minimal netvsc: NVSP initialization, a receive buffer, RNDIS bring-up (INITIALIZE, the
//! MAC address query, the packet filter), then a small IPv4 stack with one job per role:
//! role A (10.0.0.1) resolves 10.0.0.2 with ARP and pings it; role B (10.0.0.2) answers ARP
//! and ICMP echo. Role A finally sends one frame with a forged source MAC, which the host's
//! switch must drop.
//!
//! Initialization is synchronous; afterwards [`NetDriver::poll`] runs from the VMBus loop.

use alloc::vec::Vec;
use core::sync::atomic::AtomicU64;

use vmbus_ring::defs::TransferPageRange;
use vmbus_ring::gpadl::{GpaRange, GpaRanges};
use vmbus_ring::memory::FlatRingMemory;
use vmbus_ring::netvsc::{nvsp, rndis};
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter};
use zerocopy::byteorder::little_endian::{U16, U32};

use crate::fmt::Dec;
use crate::hyperv::{self, Calls};
use crate::{interrupts, say};

type Ring = FlatRingMemory<&'static [AtomicU64]>;

/// Pages of the receive buffer.
pub const RECV_PAGES: usize = 16;

#[repr(C, align(4096))]
struct Pages<const N: usize>([AtomicU64; N]);

/// The receive buffer (the host writes RNDIS messages into it).
static RECV_BUFFER: Pages<{ RECV_PAGES * 512 }> =
    Pages([const { AtomicU64::new(0) }; RECV_PAGES * 512]);
/// The page outgoing RNDIS messages are built in (one at a time: each send waits for its
/// completion).
static TX_PAGE: Pages<512> = Pages([const { AtomicU64::new(0) }; 512]);

/// The receive buffer's first page frame number and page count.
pub fn recv_buffer_pfns() -> (u64, usize) {
    (RECV_BUFFER.0.as_ptr() as u64 >> 12, RECV_PAGES)
}

/// Pings role A sends.
const PINGS: u16 = 4;
/// Reference-time units (100 ns) to wait for an ARP answer before asking again (0.5 s).
/// Generous: on a loaded host the guests run slowly (in KVM's emulator here), and a retry
/// that comes too soon turns a slow peer into an "isolated" one.
const RETRY: u64 = 5_000_000;
/// Reference-time units to wait for an echo reply before giving up on it (5 s): a late reply
/// is still a reply, and the same-VLAN test expects all of them.
const ECHO_WAIT: u64 = 50_000_000;
/// ARP attempts before role A gives up.
const ARP_TRIES: u32 = 3;
/// Frames in role A's burst, and their EtherType (IEEE local experimental).
const BURST: u16 = 100;
const BURST_ETHERTYPE: [u8; 2] = [0x88, 0xB5];
/// The forged source MAC role A tries last.
const SPOOFED: [u8; 6] = [0x02, 0, 0, 0, 0, 0xee];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Role B: answer forever.
    Serve,
    /// Role A: waiting for the ARP reply (attempt, sent at).
    Resolving(u32, u64),
    /// Role A: waiting for echo reply `seq` (sent at).
    Pinging(u16, u64),
    /// Role A: finished.
    Done,
}

/// The adapter after initialization.
pub struct NetDriver {
    connection_id: u32,
    writer: RingWriter<Ring>,
    reader: RingReader<Ring>,
    mac: [u8; 6],
    ip: [u8; 4],
    peer_ip: [u8; 4],
    peer_mac: Option<[u8; 6]>,
    phase: Phase,
    next_txid: u64,
    rtts: Vec<u64>,
    /// What arrived and was not consumed yet.
    inbox: Vec<Incoming>,
    /// Burst frames received, and when the first came.
    burst_seen: u32,
    burst_first: Option<u64>,
    /// Frames received.
    pub frames_in: u32,
    /// Frames sent.
    pub frames_out: u32,
}

/// What the host sent.
enum Incoming {
    Completion(u64, Vec<u8>),
    Control(Vec<u8>),
    Frame(Vec<u8>),
}

fn recv_bytes(offset: u32, len: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize);
    for i in offset..offset + len {
        let word = RECV_BUFFER
            .0
            .get((i / 8) as usize)
            .map_or(0, |w| w.load(core::sync::atomic::Ordering::Relaxed));
        out.push((word >> (8 * (i % 8))) as u8);
    }
    out
}

impl NetDriver {
    /// Brings the adapter up on an open channel whose receive buffer is GPADL `recv_gpadl`;
    /// `role` 1 is A, 2 is B.
    pub fn start(
        calls: &mut Calls,
        connection_id: u32,
        writer: RingWriter<Ring>,
        reader: RingReader<Ring>,
        recv_gpadl: u32,
        role: u64,
    ) -> Self {
        let (ip, peer_ip) = if role == 1 {
            ([10, 0, 0, 1], [10, 0, 0, 2])
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1])
        };
        let mut d = Self {
            connection_id,
            writer,
            reader,
            mac: [0; 6],
            ip,
            peer_ip,
            peer_mac: None,
            phase: if role == 1 {
                Phase::Resolving(0, 0)
            } else {
                Phase::Serve
            },
            next_txid: 1,
            rtts: Vec::new(),
            inbox: Vec::new(),
            burst_seen: 0,
            burst_first: None,
            frames_in: 0,
            frames_out: 0,
        };
        let init = nvsp::padded(&nvsp::Init {
            message_type: U32::new(nvsp::MessageType::INIT.0),
            min_version: U32::new(nvsp::Version::V61.0),
            max_version: U32::new(nvsp::Version::V61.0),
        });
        let c = d.request(calls, &init);
        assert!(
            c.get(12..16) == Some(&1u32.to_le_bytes()[..]),
            "netvsc: INIT refused"
        );
        let recv = nvsp::padded(&nvsp::SendBuffer {
            message_type: U32::new(nvsp::MessageType::SEND_RECV_BUFFER.0),
            gpadl: U32::new(recv_gpadl),
            id: U16::new(vmbus_ring::netvsc::RECV_BUFFER_ID),
            reserved: U16::new(0),
        });
        let c = d.request(calls, &recv);
        assert!(
            c.get(4..8) == Some(&1u32.to_le_bytes()[..]),
            "netvsc: receive buffer refused"
        );
        let answer = d.control(calls, &rndis::initialize(1));
        assert!(
            answer.get(12..16) == Some(&[0; 4][..]),
            "netvsc: RNDIS INITIALIZE failed"
        );
        let answer = d.control(
            calls,
            &rndis::oid_message(false, 2, rndis::Oid::PERMANENT_ADDRESS_802_3, &[]),
        );
        d.mac.copy_from_slice(answer.get(24..30).unwrap_or(&[0; 6]));
        let filter = 0x0Du32.to_le_bytes();
        d.control(
            calls,
            &rndis::oid_message(true, 3, rndis::Oid::GEN_CURRENT_PACKET_FILTER, &filter),
        );
        say(format_args!(
            "netvsc: adapter up, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, ip {}.{}.{}.{}",
            d.mac[0],
            d.mac[1],
            d.mac[2],
            d.mac[3],
            d.mac[4],
            d.mac[5],
            Dec(ip[0].into()),
            Dec(ip[1].into()),
            Dec(ip[2].into()),
            Dec(ip[3].into())
        ));
        d
    }

    fn signal(&mut self, calls: &mut Calls) {
        let _ = hyperv::status(calls.signal_event(self.connection_id, 0));
    }

    /// Sends an in-band NVSP message and waits for its completion's payload.
    fn request(&mut self, calls: &mut Calls, message: &[u8]) -> Vec<u8> {
        let txid = self.next_txid;
        self.next_txid += 1;
        let w = self
            .writer
            .write(&PacketRepr::in_band(txid, true, message))
            .unwrap_or_else(|e| panic!("netvsc: cannot send: {e}"));
        if w.must_signal {
            self.signal(calls);
        }
        self.completion(calls, txid)
    }

    /// Waits for the completion of `txid`; returns its payload.
    fn completion(&mut self, calls: &mut Calls, txid: u64) -> Vec<u8> {
        let k = self.wait_for(
            calls,
            |i| matches!(i, Incoming::Completion(id, _) if *id == txid),
        );
        match self.inbox.remove(k) {
            Incoming::Completion(_, payload) => payload,
            _ => Vec::new(),
        }
    }

    /// Pumps (sleeping in between) until the inbox holds an entry `want` accepts; returns its
    /// index.
    fn wait_for(&mut self, calls: &mut Calls, want: impl Fn(&Incoming) -> bool) -> usize {
        loop {
            self.pump(calls);
            if let Some(k) = self.inbox.iter().position(&want) {
                return k;
            }
            interrupts::wait();
        }
    }

    /// Sends `message` (RNDIS, at most a page) on `channel` from the TX page, GPA-direct, and
    /// waits until the host has taken it.
    fn send_rndis(&mut self, calls: &mut Calls, channel: u32, message: &[u8]) {
        for (word, chunk) in TX_PAGE.0.iter().zip(message.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(b), core::sync::atomic::Ordering::Relaxed);
        }
        let pfn = [TX_PAGE.0.as_ptr() as u64 >> 12];
        let mut buf = [0u8; 32];
        let ranges = GpaRanges::encode(&[GpaRange::new(0, message.len() as u32, &pfn)], &mut buf)
            .unwrap_or_else(|e| panic!("netvsc: range: {e}"));
        let header = nvsp::padded(&nvsp::RndisPacket {
            message_type: U32::new(nvsp::MessageType::SEND_RNDIS_PACKET.0),
            channel_type: U32::new(channel),
            section_index: U32::new(nvsp::NO_SECTION),
            section_size: U32::new(0),
        });
        let txid = self.next_txid;
        self.next_txid += 1;
        let w = self
            .writer
            .write(&PacketRepr::gpa_direct(txid, true, ranges, &header))
            .unwrap_or_else(|e| panic!("netvsc: cannot send: {e}"));
        if w.must_signal {
            self.signal(calls);
        }
        self.completion(calls, txid);
    }

    /// Sends an RNDIS control request and waits for its response.
    fn control(&mut self, calls: &mut Calls, message: &[u8]) -> Vec<u8> {
        self.send_rndis(calls, nvsp::CHANNEL_CONTROL, message);
        let k = self.wait_for(calls, |i| matches!(i, Incoming::Control(_)));
        match self.inbox.remove(k) {
            Incoming::Control(m) => m,
            _ => Vec::new(),
        }
    }

    /// Reads everything the host sent into the inbox; completes its transfer-page packets.
    fn pump(&mut self, calls: &mut Calls) {
        let mut out = core::mem::take(&mut self.inbox);
        let mut buf = [0u8; 512];
        let mut signal = false;
        loop {
            let len = match self.reader.read(&mut buf) {
                Ok((len, released)) => {
                    signal |= released.must_signal;
                    len
                }
                Err(ReadError::Empty) => break,
                Err(e) => panic!("netvsc: corrupt ring: {e}"),
            };
            let Ok(p) = PacketRepr::parse_bytes(&buf[..len]) else {
                continue;
            };
            match p.kind {
                PacketKind::Completion => {
                    out.push(Incoming::Completion(p.transaction_id, p.payload.to_vec()))
                }
                PacketKind::TransferPages { ranges, .. } => {
                    let channel = p
                        .payload
                        .get(4..8)
                        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    for r in ranges {
                        let r: &TransferPageRange = r;
                        let msg = recv_bytes(r.byte_offset.get(), r.byte_count.get());
                        match rndis::split(&msg) {
                            Ok((rndis::MessageType::PACKET, m)) => {
                                if let Ok(frame) = rndis::packet_frame(m) {
                                    out.push(Incoming::Frame(frame.to_vec()));
                                }
                            }
                            Ok(_) if channel == nvsp::CHANNEL_CONTROL => {
                                out.push(Incoming::Control(msg.clone()))
                            }
                            _ => {}
                        }
                    }
                    let done = nvsp::rndis_complete(nvsp::Status::SUCCESS);
                    let w = self
                        .writer
                        .write(&PacketRepr::completion(p.transaction_id, &done))
                        .unwrap_or_else(|e| panic!("netvsc: cannot complete: {e}"));
                    signal |= w.must_signal;
                }
                _ => {}
            }
        }
        if signal {
            self.signal(calls);
        }
        self.inbox = out;
    }

    fn send_frame(&mut self, calls: &mut Calls, frame: &[u8]) {
        self.frames_out += 1;
        self.send_rndis(calls, nvsp::CHANNEL_DATA, &rndis::packet(frame));
    }

    /// Whether this adapter's part of the exchange is over (role A: done; role B: always, it
    /// only answers).
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Serve | Phase::Done)
    }

    /// Handles what arrived and moves role A's exchange on; returns `true` when busy.
    pub fn poll(&mut self, calls: &mut Calls) -> bool {
        self.pump(calls);
        let incoming = core::mem::take(&mut self.inbox);
        let busy = !incoming.is_empty();
        for i in incoming {
            if let Incoming::Frame(f) = i {
                self.frames_in += 1;
                self.on_frame(calls, &f);
            }
        }
        self.progress(calls);
        busy
    }

    fn progress(&mut self, calls: &mut Calls) {
        let now = hyperv::reference_time_now();
        match self.phase {
            Phase::Resolving(tries, sent) if tries == 0 || now - sent > RETRY => {
                if tries == ARP_TRIES {
                    say(format_args!(
                        "netvsc: no ARP answer from {}.{}.{}.{} after {} tries: isolated",
                        Dec(self.peer_ip[0].into()),
                        Dec(self.peer_ip[1].into()),
                        Dec(self.peer_ip[2].into()),
                        Dec(self.peer_ip[3].into()),
                        Dec(ARP_TRIES.into())
                    ));
                    self.spoof(calls);
                    self.phase = Phase::Done;
                    return;
                }
                let frame = arp(1, self.mac, self.ip, [0; 6], self.peer_ip, [0xff; 6]);
                self.send_frame(calls, &frame);
                self.phase = Phase::Resolving(tries + 1, now);
            }
            Phase::Pinging(seq, sent) if now - sent > ECHO_WAIT => {
                say(format_args!("netvsc: echo {} timed out", Dec(seq.into())));
                self.next_ping(calls, seq + 1);
            }
            _ => {}
        }
    }

    fn next_ping(&mut self, calls: &mut Calls, seq: u16) {
        let Some(peer) = self.peer_mac else { return };
        if seq > PINGS {
            let (min, max) = (
                self.rtts.iter().min().copied().unwrap_or(0),
                self.rtts.iter().max().copied().unwrap_or(0),
            );
            say(format_args!(
                "netvsc: {} of {} echo replies, round trip min {} us, max {} us",
                Dec(self.rtts.len() as u64),
                Dec(PINGS.into()),
                Dec(min / 10),
                Dec(max / 10)
            ));
            self.burst(calls, peer);
            self.spoof(calls);
            self.phase = Phase::Done;
            return;
        }
        let frame = icmp_echo(8, self.mac, self.ip, peer, self.peer_ip, seq);
        self.phase = Phase::Pinging(seq, hyperv::reference_time_now());
        self.send_frame(calls, &frame);
    }

    /// [`BURST`] frames to the peer as fast as the adapter takes them: the packet rate.
    fn burst(&mut self, calls: &mut Calls, peer: [u8; 6]) {
        let mut frame = Vec::with_capacity(60);
        frame.extend_from_slice(&peer);
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&BURST_ETHERTYPE);
        frame.resize(60, 0x5a);
        let t0 = hyperv::reference_time_now();
        for i in 0..BURST {
            frame[14..16].copy_from_slice(&i.to_be_bytes());
            self.send_frame(calls, &frame);
        }
        let t = (hyperv::reference_time_now() - t0).max(1);
        say(format_args!(
            "netvsc: sent {} frames to the peer in {} ms: {} frames/s",
            Dec(BURST.into()),
            Dec(t / 10_000),
            Dec(u64::from(BURST) * 10_000_000 / t)
        ));
    }

    /// One gratuitous ARP with a forged source MAC: the switch must drop it.
    fn spoof(&mut self, calls: &mut Calls) {
        let frame = arp(1, SPOOFED, self.ip, [0; 6], self.peer_ip, [0xff; 6]);
        self.send_frame(calls, &frame);
        say(format_args!(
            "netvsc: sent one frame with the forged source mac 02:00:00:00:00:ee"
        ));
    }

    fn on_frame(&mut self, calls: &mut Calls, f: &[u8]) {
        if f.len() >= 16 && f[12..14] == BURST_ETHERTYPE {
            let now = hyperv::reference_time_now();
            let first = *self.burst_first.get_or_insert(now);
            self.burst_seen += 1;
            if self.burst_seen == u32::from(BURST) {
                let t = (now - first).max(1);
                say(format_args!(
                    "netvsc: received all {} burst frames in {} ms: {} frames/s",
                    Dec(BURST.into()),
                    Dec(t / 10_000),
                    Dec(u64::from(BURST) * 10_000_000 / t)
                ));
            }
            return;
        }
        if f.len() < 42 || f[12..14] != [0x08, 0x06] && f[12..14] != [0x08, 0x00] {
            return;
        }
        if f[6..12] == SPOOFED {
            say(format_args!(
                "netvsc: received a frame from the forged mac (the switch let it through)"
            ));
            return;
        }
        if f[12..14] == [0x08, 0x06] {
            let (op, sha, spa, tpa) = (f[21], &f[22..28], &f[28..32], &f[38..42]);
            if tpa != self.ip {
                return;
            }
            if op == 1 {
                let reply = arp(
                    2,
                    self.mac,
                    self.ip,
                    sha.try_into().unwrap_or([0; 6]),
                    spa.try_into().unwrap_or([0; 4]),
                    sha.try_into().unwrap_or([0; 6]),
                );
                self.send_frame(calls, &reply);
                say(format_args!(
                    "netvsc: answered ARP for {}.{}.{}.{}",
                    Dec(self.ip[0].into()),
                    Dec(self.ip[1].into()),
                    Dec(self.ip[2].into()),
                    Dec(self.ip[3].into())
                ));
            } else if op == 2 && spa == self.peer_ip && matches!(self.phase, Phase::Resolving(..)) {
                self.peer_mac = sha.try_into().ok();
                say(format_args!(
                    "netvsc: {}.{}.{}.{} is at {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    Dec(spa[0].into()),
                    Dec(spa[1].into()),
                    Dec(spa[2].into()),
                    Dec(spa[3].into()),
                    sha[0],
                    sha[1],
                    sha[2],
                    sha[3],
                    sha[4],
                    sha[5]
                ));
                self.next_ping(calls, 1);
            }
            return;
        }
        // IPv4: ICMP (protocol 1) to us.
        if f.len() < 42 || f[23] != 1 || f[30..34] != self.ip {
            return;
        }
        let (icmp_type, seq) = (f[34], u16::from_be_bytes([f[40], f[41]]));
        let src_mac: [u8; 6] = f[6..12].try_into().unwrap_or([0; 6]);
        let src_ip: [u8; 4] = f[26..30].try_into().unwrap_or([0; 4]);
        if icmp_type == 8 {
            let reply = icmp_echo(0, self.mac, self.ip, src_mac, src_ip, seq);
            self.send_frame(calls, &reply);
        } else if icmp_type == 0 {
            if let Phase::Pinging(want, sent) = self.phase {
                if seq == want {
                    let rtt = hyperv::reference_time_now() - sent;
                    self.rtts.push(rtt);
                    say(format_args!(
                        "netvsc: echo reply {} from {}.{}.{}.{} in {} us",
                        Dec(seq.into()),
                        Dec(src_ip[0].into()),
                        Dec(src_ip[1].into()),
                        Dec(src_ip[2].into()),
                        Dec(src_ip[3].into()),
                        Dec(rtt / 10)
                    ));
                    self.next_ping(calls, seq + 1);
                }
            }
        }
    }
}

/// An ARP frame (`op` 1 request, 2 reply).
fn arp(op: u8, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4], dst: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, op]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request (`kind` 8) or reply (0) with sequence `seq` and 32 payload bytes.
fn icmp_echo(
    kind: u8,
    src: [u8; 6],
    sip: [u8; 4],
    dst: [u8; 6],
    dip: [u8; 4],
    seq: u16,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(74);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 1, 0, 0]);
    f.extend_from_slice(&sip);
    f.extend_from_slice(&dip);
    let c = checksum(&f[ip_start..]);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
    let icmp_start = f.len();
    f.extend_from_slice(&[kind, 0, 0, 0, 0x76, 0x69]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend((0..32u8).map(|i| b'a' + i % 26));
    let c = checksum(&f[icmp_start..]);
    f[icmp_start + 2..icmp_start + 4].copy_from_slice(&c.to_be_bytes());
    f
}
