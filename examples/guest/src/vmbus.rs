//! The guest's VMBus driver: SynIC message and event pages, `vmbus-ring`'s channel client,
//! one ring buffer per channel, and the four integration-service responders.
//!
//! Everything runs from the main loop ([`Vmbus::run`]): take the SINT 2 message out of the
//! SIMP (the client's answers go back with `HvPostMessage`), take the event flags out of the
//! SIEFP, drain every open channel's host→guest ring (answers go into the guest→host ring and
//! `HvSignalEvent` when the ring says the host must be woken), and halt until the next
//! VMBus interrupt when there is nothing left to do.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::AtomicU64;

use hv_hypercall::defs::HvMessageType;
use hv_hypercall::guest as synic;
use vmbus_ring::channel::client::{Client, ClientEvent, Outgoing, LINUX_VERSIONS};
use vmbus_ring::channel::server::STATUS_UNSUCCESSFUL;
use vmbus_ring::channel::{interface, Guid, VmbusVersion};
use vmbus_ring::ic::bodies::ShutdownFlags;
use vmbus_ring::ic::guest::{GuestEvent, GuestService, KvpStore, MemKvpStore};
use vmbus_ring::ic::host::Service;
use vmbus_ring::ic::kvp::{KvpMessage, KvpPool, Record};
use vmbus_ring::memory::FlatRingMemory;
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter};

use crate::fmt::{Dec, Signed};
use crate::hyperv::{self, Calls};
use crate::{interrupts, say};

/// Pages per channel ring buffer: 4 per direction (16 KiB rings, as `hv_utils` uses).
const RING_PAGES: usize = 8;
/// The host→guest ring starts at this page of the buffer.
const DOWNSTREAM: u32 = 4;
const WORDS_PER_PAGE: usize = 512;
/// SynIC message type of VMBus channel messages.
const VMBUS_MESSAGE: HvMessageType = HvMessageType(1);
/// The SINT VMBus uses.
const VMBUS_SINT: u8 = 2;

#[repr(C, align(4096))]
struct RingBuffer([AtomicU64; RING_PAGES * WORDS_PER_PAGE]);

/// One ring buffer per integration service, in `.bss`.
static RINGS: [RingBuffer; 4] =
    [const { RingBuffer([const { AtomicU64::new(0) }; RING_PAGES * WORDS_PER_PAGE]) }; 4];

/// The synthetic SCSI controller's ring buffer.
static STORAGE_RING: RingBuffer =
    RingBuffer([const { AtomicU64::new(0) }; RING_PAGES * WORDS_PER_PAGE]);

type Ring = FlatRingMemory<&'static [AtomicU64]>;

/// The network channel's ring buffer.
static NET_RING: RingBuffer =
    RingBuffer([const { AtomicU64::new(0) }; RING_PAGES * WORDS_PER_PAGE]);

/// The network channel while it opens: its ring and receive-buffer GPADLs (and whether each
/// was created).
#[derive(Clone, Copy)]
struct NetOffer {
    relid: u32,
    connection_id: u32,
    ring_gpadl: (u32, bool),
    recv_gpadl: (u32, bool),
}

/// The storage channel while it opens.
#[derive(Clone, Copy)]
struct StorageOffer {
    relid: u32,
    connection_id: u32,
    gpadl_id: u32,
}

/// The integration service an offer's interface type names.
fn service_of(if_type: Guid) -> Option<(Service, &'static str, usize)> {
    match if_type {
        t if t == interface::HEARTBEAT => Some((Service::Heartbeat, "heartbeat", 0)),
        t if t == interface::SHUTDOWN => Some((Service::Shutdown, "shutdown", 1)),
        t if t == interface::TIMESYNC => Some((Service::TimeSync, "time sync", 2)),
        t if t == interface::KVP => Some((Service::Kvp, "key/value pair exchange", 3)),
        _ => None,
    }
}

/// An open (or opening) channel.
struct Channel {
    relid: u32,
    name: &'static str,
    connection_id: u32,
    gpadl_id: Option<u32>,
    ring: usize,
    service: GuestService,
    io: Option<(RingWriter<Ring>, RingReader<Ring>)>,
}

/// What the driver did, for the caller's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Host messages taken from the SIMP.
    pub messages: u32,
    /// Integration-service packets answered.
    pub packets: u32,
    /// `HvSignalEvent`s sent.
    pub signals: u32,
}

/// The driver.
pub struct Vmbus {
    calls: Calls,
    client: Client,
    channels: Vec<Channel>,
    kvp: MemKvpStore,
    /// Guest wall clock = reference time (100 ns) × 100 + this, in Unix ns; 0 until synced.
    clock_offset_ns: i128,
    stats: Stats,
    /// The negative GPADL scenario: `Some(None)` until the probe GPADL is sent, then its id.
    bad_gpadl: Option<Option<u32>>,
    storage: Option<StorageOffer>,
    /// The network role (0: no network, 1: A, 2: B) and the adapter.
    net_role: u64,
    net_offer: Option<NetOffer>,
    net: Option<crate::net::NetDriver>,
}

impl Vmbus {
    /// A driver that will connect with Linux's version list, its intrinsic KVP data preset.
    pub fn new(calls: Calls) -> Self {
        let mut kvp = MemKvpStore::new();
        for (key, value) in [
            ("FullyQualifiedDomainName", "viridian-guest.local"),
            ("OSName", "viridian test guest"),
            ("OSVersion", env!("CARGO_PKG_VERSION")),
            ("IntegrationServicesVersion", "1.0"),
        ] {
            kvp.set(KvpPool::AUTO, Record::string(key, value));
        }
        let monitors = hyperv::monitor_pages();
        Self {
            calls,
            client: Client::new(&LINUX_VERSIONS, 0, monitors),
            channels: Vec::new(),
            kvp,
            clock_offset_ns: 0,
            stats: Stats::default(),
            bad_gpadl: None,
            storage: None,
            net_role: 0,
            net_offer: None,
            net: None,
        }
    }

    /// Before the first ring GPADL, describe one whose last page lies far outside guest RAM
    /// (1 TiB up) and check that the host refuses it with GPADL_CREATED's failure status.
    pub fn probe_gpadl_outside_ram(&mut self) {
        self.bad_gpadl = Some(None);
    }

    /// Brings up the network adapter in `role` (1: A pings, 2: B answers) when one is offered.
    pub fn set_net_role(&mut self, role: u64) {
        self.net_role = role;
    }

    /// What the driver did so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn post(&mut self, message: &Outgoing) {
        if let Err(e) =
            self.calls
                .post_message(message.connection_id, VMBUS_MESSAGE, &message.payload)
        {
            panic!("HvPostMessage failed: {e}");
        }
    }

    fn signal(&mut self, connection_id: u32) {
        self.stats.signals += 1;
        if let Err(e) = self.calls.signal_event(connection_id, 0) {
            panic!("HvSignalEvent({connection_id:#x}) failed: {e}");
        }
    }

    /// Connects and serves the channels until the host asks for a shutdown; returns the
    /// shutdown action.
    pub fn run(&mut self) -> ShutdownFlags {
        let first = self
            .client
            .connect()
            .expect("Linux's version list is not empty");
        say(format_args!(
            "vmbus: requesting version {}",
            version(LINUX_VERSIONS[0])
        ));
        self.post(&first);
        let (simp, siefp) = hyperv::synic_pages();
        let memory = hyperv::pages_memory();
        // A shutdown the host asked for while this guest's network exchange still runs: it is
        // carried out when the exchange ends (a real guest also finishes its work first).
        let mut pending = None;
        loop {
            if let Some(action) = pending {
                if self.net.as_ref().is_none_or(|n| n.finished()) {
                    if let Some(net) = self.net.as_mut() {
                        // Take in what the host already delivered before powering off.
                        while net.poll(&mut self.calls) {}
                    }
                    return action;
                }
            }
            let mut busy = false;
            // Host messages in SINT 2's slot.
            loop {
                let message =
                    synic::receive_message(&memory, &mut hyperv::msrs(), simp, VMBUS_SINT)
                        .unwrap_or_else(|e| panic!("cannot read the message page: {e}"));
                let Some(message) = message else { break };
                busy = true;
                self.stats.messages += 1;
                if message.message_type() == VMBUS_MESSAGE {
                    self.on_message(message.payload());
                }
            }
            // Event flags: which channels the host signaled. Every open channel's ring is
            // drained below anyway, so the flags only need clearing.
            synic::take_event_flags(&memory, siefp, VMBUS_SINT, |_| busy = true)
                .unwrap_or_else(|e| panic!("cannot read the event page: {e}"));
            for index in 0..self.channels.len() {
                if let Some(action) = self.serve(index) {
                    busy = true;
                    pending = Some(action);
                }
            }
            if let Some(net) = self.net.as_mut() {
                busy |= net.poll(&mut self.calls);
            }
            if !busy {
                interrupts::wait();
            }
        }
    }

    fn on_message(&mut self, payload: &[u8]) {
        let before = self.client.version();
        let (events, replies) = self.client.handle_message(payload);
        for event in events {
            match event {
                ClientEvent::Connected { version: v } => {
                    say(format_args!("vmbus: connected, version {}", version(v)));
                }
                ClientEvent::ConnectFailed => panic!("the host refused every VMBus version"),
                ClientEvent::Offer(offer) => self.on_offer(&offer),
                ClientEvent::AllOffersDelivered => {
                    say(format_args!("vmbus: all offers delivered"));
                }
                ClientEvent::GpadlCreated { gpadl_id, status } => {
                    self.on_gpadl_created(gpadl_id, status)
                }
                ClientEvent::Opened { relid, status } => self.on_opened(relid, status),
                other => say(format_args!("vmbus: unexpected host message {other:?}")),
            }
        }
        for reply in &replies {
            if before.is_none() && self.client.version().is_none() {
                // A refused INITIATE_CONTACT: the client falls back to the next version.
                if let Some(v) = LINUX_VERSIONS
                    .iter()
                    .find(|v| contact_version(&reply.payload) == Some(v.0))
                {
                    say(format_args!(
                        "vmbus: host refused the previous version, requesting {}",
                        version(*v)
                    ));
                }
            }
            self.post(reply);
        }
    }

    fn on_offer(&mut self, offer: &vmbus_ring::channel::messages::Offer) {
        let relid = offer.child_relid.get();
        if offer.if_type == vmbus_ring::netvsc::NIC_INTERFACE && self.net_role != 0 {
            let first = NET_RING.0.as_ptr() as u64 >> 12;
            let ring: Vec<u64> = (0..RING_PAGES as u64).map(|i| first + i).collect();
            let (first, pages) = crate::net::recv_buffer_pfns();
            let recv: Vec<u64> = (0..pages as u64).map(|i| first + i).collect();
            let mut messages = Vec::new();
            let mut gpadl = |pfns: &[u64]| {
                let (id, m) = self
                    .client
                    .create_gpadl(relid, pfns)
                    .unwrap_or_else(|e| panic!("cannot describe a network GPADL: {e}"));
                messages.extend(m);
                id
            };
            let (ring_gpadl, recv_gpadl) = (gpadl(&ring), gpadl(&recv));
            self.net_offer = Some(NetOffer {
                relid,
                connection_id: offer.connection_id.get(),
                ring_gpadl: (ring_gpadl, false),
                recv_gpadl: (recv_gpadl, false),
            });
            say(format_args!(
                "vmbus: synthetic network adapter offered (relid {})",
                Dec(relid.into())
            ));
            for m in &messages {
                self.post(m);
            }
            return;
        }
        if offer.if_type == vmbus_ring::storvsc::SCSI_INTERFACE {
            let first = STORAGE_RING.0.as_ptr() as u64 >> 12;
            let pfns: Vec<u64> = (0..RING_PAGES as u64).map(|i| first + i).collect();
            let (gpadl_id, messages) = self
                .client
                .create_gpadl(relid, &pfns)
                .unwrap_or_else(|e| panic!("cannot describe the storage ring GPADL: {e}"));
            self.storage = Some(StorageOffer {
                relid,
                connection_id: offer.connection_id.get(),
                gpadl_id,
            });
            say(format_args!(
                "vmbus: synthetic SCSI controller offered (relid {})",
                Dec(relid.into())
            ));
            for m in &messages {
                self.post(m);
            }
            return;
        }
        let Some((service, name, ring)) = service_of(offer.if_type) else {
            say(format_args!(
                "vmbus: ignoring offer of relid {} ({})",
                Dec(relid.into()),
                offer.if_type
            ));
            return;
        };
        let first = RINGS[ring].0.as_ptr() as u64 >> 12;
        if self.bad_gpadl == Some(None) {
            let pfns = [first, first + 1, 1 << 28];
            let (gpadl_id, messages) = self
                .client
                .create_gpadl(relid, &pfns)
                .unwrap_or_else(|e| panic!("cannot describe the probe GPADL: {e}"));
            self.bad_gpadl = Some(Some(gpadl_id));
            for m in &messages {
                self.post(m);
            }
        }
        let pfns: Vec<u64> = (0..RING_PAGES as u64).map(|i| first + i).collect();
        let (gpadl_id, messages) = self
            .client
            .create_gpadl(relid, &pfns)
            .unwrap_or_else(|e| panic!("cannot describe the ring GPADL: {e}"));
        self.channels.push(Channel {
            relid,
            name,
            connection_id: offer.connection_id.get(),
            gpadl_id: Some(gpadl_id),
            ring,
            service: GuestService::new(service),
            io: None,
        });
        for m in &messages {
            self.post(m);
        }
    }

    fn on_gpadl_created(&mut self, gpadl_id: u32, status: u32) {
        if let Some(n) = self.net_offer.as_mut() {
            if n.ring_gpadl.0 == gpadl_id || n.recv_gpadl.0 == gpadl_id {
                assert!(status == 0, "the host refused a network GPADL: {status:#x}");
                if n.ring_gpadl.0 == gpadl_id {
                    n.ring_gpadl.1 = true;
                } else {
                    n.recv_gpadl.1 = true;
                }
                if n.ring_gpadl.1 && n.recv_gpadl.1 {
                    let open = self
                        .client
                        .open_channel(n.relid, n.ring_gpadl.0, DOWNSTREAM, 0);
                    self.post(&open);
                }
                return;
            }
        }
        if let Some(st) = self.storage.filter(|st| st.gpadl_id == gpadl_id) {
            assert!(
                status == 0,
                "the host refused the storage GPADL: {status:#x}"
            );
            let open = self.client.open_channel(st.relid, gpadl_id, DOWNSTREAM, 0);
            self.post(&open);
            return;
        }
        if self.bad_gpadl == Some(Some(gpadl_id)) {
            assert!(
                status == STATUS_UNSUCCESSFUL,
                "the host accepted GPADL {gpadl_id:#x} outside RAM: status {status:#x}"
            );
            say(format_args!(
                "negative: GPADL with a page at 1 TiB -> GPADL_CREATED status {status:#x}, as documented"
            ));
            return;
        }
        let Some(channel) = self.channels.iter().find(|c| c.gpadl_id == Some(gpadl_id)) else {
            return;
        };
        assert!(
            status == 0,
            "the host refused GPADL {gpadl_id:#x}: status {status:#x}"
        );
        let open = self
            .client
            .open_channel(channel.relid, gpadl_id, DOWNSTREAM, 0);
        self.post(&open);
    }

    fn on_opened(&mut self, relid: u32, status: u32) {
        if let Some(n) = self.net_offer.filter(|n| n.relid == relid) {
            assert!(
                status == 0,
                "the host refused to open the network channel: {status:#x}"
            );
            let words: &'static [AtomicU64] = &NET_RING.0;
            let (tx, rx) = FlatRingMemory::split_pair(words, DOWNSTREAM)
                .unwrap_or_else(|e| panic!("ring layout: {e}"));
            let writer = RingWriter::new(tx).unwrap_or_else(|e| panic!("ring: {e}"));
            let reader = RingReader::new(rx).unwrap_or_else(|e| panic!("ring: {e}"));
            self.net = Some(crate::net::NetDriver::start(
                &mut self.calls,
                n.connection_id,
                writer,
                reader,
                n.recv_gpadl.0,
                self.net_role,
            ));
            return;
        }
        if let Some(st) = self.storage.filter(|st| st.relid == relid) {
            assert!(
                status == 0,
                "the host refused to open the storage channel: {status:#x}"
            );
            let words: &'static [AtomicU64] = &STORAGE_RING.0;
            let (tx, rx) = FlatRingMemory::split_pair(words, DOWNSTREAM)
                .unwrap_or_else(|e| panic!("ring layout: {e}"));
            let writer = RingWriter::new(tx).unwrap_or_else(|e| panic!("ring: {e}"));
            let reader = RingReader::new(rx).unwrap_or_else(|e| panic!("ring: {e}"));
            let mut driver =
                crate::storage::Storvsc::new(&mut self.calls, st.connection_id, writer, reader);
            driver.exercise();
            self.stats.signals += driver.signals as u32;
            return;
        }
        let Some(channel) = self.channels.iter_mut().find(|c| c.relid == relid) else {
            return;
        };
        assert!(
            status == 0,
            "the host refused to open relid {relid}: status {status:#x}"
        );
        let words: &'static [AtomicU64] = &RINGS[channel.ring].0;
        let (tx, rx) = FlatRingMemory::split_pair(words, DOWNSTREAM)
            .unwrap_or_else(|e| panic!("ring layout: {e}"));
        let writer = RingWriter::new(tx).unwrap_or_else(|e| panic!("ring: {e}"));
        let reader = RingReader::new(rx).unwrap_or_else(|e| panic!("ring: {e}"));
        channel.io = Some((writer, reader));
        say(format_args!(
            "vmbus: channel {} open (relid {}, connection {:#x})",
            channel.name,
            Dec(relid.into()),
            channel.connection_id
        ));
    }

    /// Answers everything waiting on channel `index`; returns a shutdown action to take.
    fn serve(&mut self, index: usize) -> Option<ShutdownFlags> {
        let mut buf = [0u8; 4096];
        let mut shutdown = None;
        loop {
            let channel = &mut self.channels[index];
            let (writer, reader) = channel.io.as_mut()?;
            let (len, released) = match reader.read(&mut buf) {
                Ok(read) => read,
                Err(ReadError::Empty) => return shutdown,
                Err(e) => panic!("channel {}: corrupt ring: {e}", channel.name),
            };
            let mut signal = released.must_signal;
            let packet = PacketRepr::parse_bytes(&buf[..len])
                .unwrap_or_else(|e| panic!("channel {}: bad packet: {e}", channel.name));
            if packet.kind != PacketKind::InBand {
                continue;
            }
            let (answer, event) = channel
                .service
                .on_packet(packet.payload, &mut self.kvp)
                .unwrap_or_else(|e| panic!("channel {}: bad request: {e}", channel.name));
            if let Some(answer) = answer {
                let sent = writer
                    .write(&PacketRepr::in_band(packet.transaction_id, false, &answer))
                    .unwrap_or_else(|e| panic!("channel {}: cannot answer: {e}", channel.name));
                signal |= sent.must_signal;
            }
            let connection_id = channel.connection_id;
            self.stats.packets += 1;
            if signal {
                self.signal(connection_id);
            }
            if let Some(event) = event {
                if let Some(action) = self.on_event(event) {
                    shutdown = Some(action);
                }
            }
        }
    }

    fn on_event(&mut self, event: GuestEvent) -> Option<ShutdownFlags> {
        match event {
            GuestEvent::Negotiated { .. } | GuestEvent::Heartbeat { .. } => {}
            GuestEvent::Shutdown {
                action,
                timeout_seconds,
            } => {
                say(format_args!(
                    "shutdown: the host asks for {} within {} s",
                    action_name(action),
                    Dec(timeout_seconds.into())
                ));
                return Some(action);
            }
            GuestEvent::Time {
                flags,
                host_unix_ns,
                reference_time,
            } => {
                let reference = reference_time.unwrap_or_else(hyperv::reference_time_now);
                let local = i128::from(reference) * 100;
                let offset = i128::from(host_unix_ns) - local;
                let step = offset - self.clock_offset_ns;
                self.clock_offset_ns = offset;
                say(format_args!(
                    "time sync ({}): clock set to {} s Unix time, stepped by {} ms",
                    if flags.0 & 1 != 0 { "sync" } else { "sample" },
                    Dec(host_unix_ns / 1_000_000_000),
                    Signed((step / 1_000_000) as i64),
                ));
            }
            GuestEvent::Kvp { request, status } => match request {
                KvpMessage::Set { pool, record } if status.0 == 0 => say(format_args!(
                    "kvp: host set {}/{} = {:?}",
                    pool.name().unwrap_or("?"),
                    record.key,
                    record.value
                )),
                KvpMessage::Get { pool, record } => say(format_args!(
                    "kvp: host read {}/{}{}",
                    pool.name().unwrap_or("?"),
                    record.key,
                    if status.0 == 0 { "" } else { " (absent)" }
                )),
                _ => {}
            },
            _ => {}
        }
        None
    }
}

/// `major.minor` of a VMBus version.
fn version(v: VmbusVersion) -> String {
    alloc::format!("{}.{}", Dec((v.0 >> 16).into()), Dec((v.0 & 0xffff).into()))
}

/// The version an INITIATE_CONTACT payload asks for.
fn contact_version(payload: &[u8]) -> Option<u32> {
    let bytes = payload.get(8..12)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// What a shutdown request asks for, in words.
pub fn action_name(action: ShutdownFlags) -> &'static str {
    match action {
        ShutdownFlags::SHUTDOWN => "a shutdown",
        ShutdownFlags::FORCED_SHUTDOWN => "a forced shutdown",
        ShutdownFlags::RESTART => "a restart",
        ShutdownFlags::FORCED_RESTART => "a forced restart",
        ShutdownFlags::HIBERNATE | ShutdownFlags::FORCED_HIBERNATE => "hibernation",
        _ => "an unknown action",
    }
}
