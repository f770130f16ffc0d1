//! The VMBus host: `vmbus-ring`'s channel server on the SynIC message path, the rings of each
//! open channel read and written over the guest's GPADL pages, and the four integration
//! services (`vmbus-ring`'s IC host layer) driven by a small demo script.
//!
//! The hypercall handler only queues: `HvPostMessage` payloads go to
//! [`VmbusHost::accept_message`], `HvSignalEvent`s mark a channel. [`VmbusHost::service`] runs
//! after every exit and on every timer tick: it feeds the server, posts its answers into SINT 2's
//! message slot (queued, never dropped, while the guest has not taken the earlier ones: see
//! [`messages`]), drains every open channel's guest→host ring into its service, writes the
//! services' packets into the host→guest ring, and signals the guest (event flag = relid,
//! SINT 2) when the ring says so.

mod messages;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hv_hypercall::defs::HvMessageType;
use hv_hypercall::synic::{InterruptSink, VirtualProcessor};
use vmbus_ring::channel::server::{Action, OfferSpec, Server, ServerConfig};
use vmbus_ring::channel::{interface, Guid, VmbusVersion};
use vmbus_ring::ic::bodies::{AppState, ShutdownFlags};
use vmbus_ring::ic::framing::IcStatus;
use vmbus_ring::ic::host::{HostConfig, HostEvent, HostService, KvpRequest, Now, Output, Service};
use vmbus_ring::ic::kvp::{KvpPool, Record};
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::ReadError;

use super::ring_pages::guest_ring_pair;
use super::rings::RingIndices;
use crate::memory::GuestMemory;
use crate::net::netvsp::NetChannel;
use crate::storage::snapshot::{self, SnapshotPlan};
use crate::storage::storvsp::StorageChannel;
use crate::storage::VmDisk;
use crate::timeline::Timeline;
use messages::MessagePath;

/// SynIC message type of VMBus channel messages.
const VMBUS_MESSAGE: HvMessageType = HvMessageType(1);
/// The SINT VMBus uses.
const VMBUS_SINT: u8 = 2;

/// What the demo does with the integration services.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Heartbeat period.
    pub heartbeat_ms: u64,
    /// How long to run once the channels are open, before asking the guest to shut down.
    pub run_ms: u64,
    /// Keys the host writes into the guest's External pool (and reads back).
    pub kvp: Vec<(String, String)>,
    /// Newest VMBus version the host accepts.
    pub max_version: VmbusVersion,
    /// Ask for the shutdown only once this is set (the peer VM of a two-guest run has
    /// finished its network exchange and powered off).
    pub hold_shutdown: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Measurements for the summary.
#[derive(Debug, Default, Clone)]
pub struct VmbusStats {
    /// When all four channels were open, and the exit count then.
    pub all_open: Option<(Instant, u64)>,
    /// Heartbeat round trips, in ns.
    pub heartbeat_rtt_ns: Vec<u64>,
    /// Integration-service packets sent to the guest.
    pub packets_to_guest: u64,
    /// Integration-service packets received from the guest.
    pub packets_from_guest: u64,
    /// Guest messages the server dropped.
    pub dropped: u64,
}

struct Channel {
    name: &'static str,
    service: HostService,
    open: Option<OpenRing>,
}

/// The synthetic SCSI controller's channel.
struct StorageSlot {
    relid: u32,
    channel: StorageChannel,
    open: Option<OpenRing>,
    /// The disk's file, and the snapshot to take (with whether it was taken).
    path: std::path::PathBuf,
    snapshot: Option<(SnapshotPlan, bool)>,
}

/// The synthetic network adapter's channel.
struct NetSlot {
    relid: u32,
    channel: NetChannel,
    open: Option<OpenRing>,
}

#[derive(Clone, Copy)]
struct OpenRing {
    gpadl_id: u32,
    downstream: u32,
    connection_id: u32,
    /// The host's ring indices, kept between services.
    indices: RingIndices,
}

/// The VMBus host of a one-VP partition.
pub struct VmbusHost {
    server: Server,
    channels: BTreeMap<u32, Channel>,
    /// Guest posts not yet served and answers not yet in the guest's SynIC queue.
    messages: MessagePath,
    /// Channels the guest signaled since the last [`VmbusHost::service`]: only their rings are
    /// read (the ring protocol makes the guest signal whenever a ring goes from empty to
    /// non-empty, and the host always drains a signaled ring completely).
    signaled: std::collections::BTreeSet<u32>,
    demo: DemoConfig,
    next_txid: u64,
    kvp_started: bool,
    /// The KVP script ran to its end (the enumeration finished).
    kvp_done: bool,
    shutdown_requested: bool,
    storage: Option<StorageSlot>,
    net: Option<NetSlot>,
    /// Host commands typed on the VMM's standard input (see [`VmbusHost::command`]).
    pub commands: Option<std::sync::mpsc::Receiver<String>>,
    /// What happened, for the summary.
    pub stats: VmbusStats,
}

impl std::fmt::Debug for VmbusHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmbusHost")
            .field("version", &self.server.version())
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

fn services() -> [(Guid, Service, &'static str, u128); 4] {
    [
        (interface::HEARTBEAT, Service::Heartbeat, "heartbeat", 0x1),
        (interface::SHUTDOWN, Service::Shutdown, "shutdown", 0x2),
        (interface::TIMESYNC, Service::TimeSync, "time sync", 0x3),
        (interface::KVP, Service::Kvp, "kvp", 0x4),
    ]
}

impl VmbusHost {
    /// A host offering the four integration services.
    pub fn new(demo: DemoConfig) -> Self {
        let mut server = Server::new(ServerConfig {
            max_version: demo.max_version,
            ..ServerConfig::default()
        });
        let config = HostConfig {
            heartbeat_period_ns: demo.heartbeat_ms * 1_000_000,
            ..HostConfig::default()
        };
        let mut channels = BTreeMap::new();
        for (if_type, service, name, n) in services() {
            let instance = Guid::from_fields(0x7669_7269, 0x6469, 0x616e, (n as u64).to_be_bytes());
            let (relid, _) = server.add_offer(OfferSpec::pipe(if_type, instance));
            if let Some(relid) = relid {
                channels.insert(
                    relid,
                    Channel {
                        name,
                        service: HostService::new(service, config),
                        open: None,
                    },
                );
            }
        }
        Self {
            server,
            channels,
            messages: MessagePath::default(),
            signaled: std::collections::BTreeSet::new(),
            demo,
            next_txid: 1,
            kvp_started: false,
            kvp_done: false,
            shutdown_requested: false,
            storage: None,
            net: None,
            commands: None,
            stats: VmbusStats::default(),
        }
    }

    /// Offers a synthetic SCSI controller with `disk` (opened from `path`) as LUN 0, before
    /// the guest connects; `snapshot` is taken live once the guest completed its writes.
    pub fn attach_disk(
        &mut self,
        disk: VmDisk,
        path: std::path::PathBuf,
        snapshot: Option<SnapshotPlan>,
    ) -> Option<u32> {
        let instance = Guid::from_fields(0x7669_7269, 0x6469, 0x616e, 0x5343_5349u64.to_be_bytes());
        let spec = OfferSpec {
            if_type: vmbus_ring::storvsc::SCSI_INTERFACE,
            if_instance: instance,
            flags: 0,
            user_def: [0; 120],
        };
        let (relid, _) = self.server.add_offer(spec);
        let relid = relid?;
        self.storage = Some(StorageSlot {
            relid,
            channel: StorageChannel::new(disk),
            open: None,
            path,
            snapshot: snapshot.map(|p| (p, false)),
        });
        Some(relid)
    }

    /// Offers a synthetic network adapter (before the guest connects).
    pub fn attach_nic(&mut self, channel: NetChannel) -> Option<u32> {
        let instance = Guid::from_fields(0x7669_7269, 0x6469, 0x616e, 0x4e49_4300u64.to_be_bytes());
        let spec = OfferSpec {
            if_type: vmbus_ring::netvsc::NIC_INTERFACE,
            if_instance: instance,
            flags: 0,
            user_def: [0; 120],
        };
        let relid = self.server.add_offer(spec).0?;
        self.net = Some(NetSlot {
            relid,
            channel,
            open: None,
        });
        Some(relid)
    }

    /// The network channel, if an adapter is attached.
    pub fn net(&self) -> Option<&NetChannel> {
        self.net.as_ref().map(|n| &n.channel)
    }

    /// Whether a disk or a network adapter is attached.
    pub fn has_devices(&self) -> bool {
        self.storage.is_some() || self.net.is_some()
    }

    /// The storage channel, mutably (to flush its disk at the end).
    pub fn storage_mut(&mut self) -> Option<&mut StorageChannel> {
        self.storage.as_mut().map(|s| &mut s.channel)
    }

    /// Takes the planned snapshot now (a host command), if there is one not yet taken.
    pub fn snapshot_now(&mut self, timeline: &Timeline) {
        let Some(slot) = self.storage.as_mut() else {
            return;
        };
        let Some((plan, taken)) = slot.snapshot.as_mut().filter(|(_, taken)| !taken) else {
            return;
        };
        match snapshot::take(&mut slot.channel.disk, &slot.path, &plan.child) {
            Ok(()) => {
                *taken = true;
                timeline.host(format_args!(
                    "snapshot: {} is now the read-only parent of {}; the guest keeps running ({} writes so far)",
                    slot.path.display(),
                    plan.child.display(),
                    slot.channel.disk.stats.writes
                ));
            }
            Err(e) => {
                timeline.host(format_args!("snapshot: failed: {e}"));
                slot.snapshot = None;
            }
        }
    }

    /// Runs one host command: `snapshot [CHILD.avhd]` takes a live snapshot of the disk now
    /// (into CHILD, or the `--snapshot` path).
    pub fn command(&mut self, line: &str, timeline: &Timeline) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("snapshot"), child) => {
                let Some(slot) = self.storage.as_mut() else {
                    return timeline.host(format_args!("command: no disk attached"));
                };
                if let Some(child) = child {
                    match &mut slot.snapshot {
                        Some((_, true)) => {
                            return timeline
                                .host(format_args!("command: a snapshot was already taken"))
                        }
                        Some((plan, false)) => plan.child = child.into(),
                        None => {
                            slot.snapshot = Some((
                                SnapshotPlan {
                                    child: child.into(),
                                    after_writes: u64::MAX,
                                    merge: false,
                                },
                                false,
                            ));
                        }
                    }
                } else if slot.snapshot.is_none() {
                    return timeline.host(format_args!(
                        "command: snapshot needs a path (or --snapshot)"
                    ));
                }
                self.snapshot_now(timeline);
            }
            (None, _) => {}
            (Some(other), _) => timeline.host(format_args!(
                "command: unknown command {other:?} (try: snapshot [CHILD.avhd])"
            )),
        }
    }

    /// At shutdown: merges the snapshot into its parent or keeps it, as planned.
    pub fn finish_snapshot(&mut self, timeline: &Timeline) {
        let Some(slot) = self.storage.as_mut() else {
            return;
        };
        let Some((plan, true)) = slot.snapshot.take() else {
            return;
        };
        if !plan.merge {
            timeline.host(format_args!("snapshot: kept {}", plan.child.display()));
            return;
        }
        match snapshot::merge(&mut slot.channel.disk, &plan.child) {
            Ok(bytes) => timeline.host(format_args!(
                "snapshot: merged {} KiB from {} into {}; the child is removed",
                bytes >> 10,
                plan.child.display(),
                slot.path.display()
            )),
            Err(e) => timeline.host(format_args!("snapshot: merge failed: {e}")),
        }
    }

    /// The relid of the open channel whose event connection is `connection_id`.
    pub fn channel_of(&self, connection_id: u32) -> Option<u32> {
        if let Some(n) = &self.net {
            if n.open.is_some_and(|o| o.connection_id == connection_id) {
                return Some(n.relid);
            }
        }
        if let Some(s) = &self.storage {
            if s.open.is_some_and(|o| o.connection_id == connection_id) {
                return Some(s.relid);
            }
        }
        self.channels
            .iter()
            .find(|(_, c)| c.open.is_some_and(|o| o.connection_id == connection_id))
            .map(|(&relid, _)| relid)
    }

    /// Takes a VMBus message the guest posted (`HvPostMessage`), served at the next
    /// [`VmbusHost::service`]; `false` when the guest's message buffer is full (the guest has
    /// not taken the answers to its earlier messages): the hypercall then answers
    /// `HV_STATUS_INSUFFICIENT_BUFFERS` and the guest posts again later.
    pub fn accept_message(&mut self, payload: &[u8]) -> bool {
        self.messages.accept(payload)
    }

    /// Records that the guest signaled channel `relid` (its ring is read at the next
    /// [`VmbusHost::service`]).
    pub fn signal(&mut self, relid: u32) {
        self.signaled.insert(relid);
    }

    /// Runs everything pending (see the module documentation).
    pub fn service<I: InterruptSink>(
        &mut self,
        memory: &GuestMemory,
        vp: &mut VirtualProcessor,
        interrupts: &mut I,
        timeline: &Timeline,
        exits: u64,
    ) {
        let now = now(timeline);
        let typed: Vec<String> = self
            .commands
            .as_ref()
            .map_or_else(Vec::new, |rx| rx.try_iter().collect());
        for line in typed {
            self.command(&line, timeline);
        }
        // Answers the guest had no room for: its EOM (this may be the exit of that `wrmsr`)
        // made room for the next.
        self.messages.flush(memory, vp, interrupts, timeline);
        while let Some(payload) = self.messages.next_request() {
            // Every GPADL must lie in guest RAM: the rings and buffers are accessed there.
            let ram_pages = memory.size() / 4096;
            let out = self
                .server
                .handle_message_checked(&payload, |g| g.pfns().all(|p| p < ram_pages));
            for dropped in &out.dropped {
                self.stats.dropped += 1;
                timeline.host(format_args!("vmbus: dropped a guest message: {dropped}"));
            }
            for message in out.messages {
                self.messages.queue(message);
            }
            self.messages.flush(memory, vp, interrupts, timeline);
            for action in out.actions {
                self.act(action, now, memory, vp, interrupts, timeline, exits);
            }
        }
        let net_relid = self.net.as_ref().map(|n| n.relid);
        for relid in std::mem::take(&mut self.signaled) {
            if Some(relid) != net_relid {
                self.drain(relid, now, memory, vp, interrupts, timeline, exits);
            }
        }
        // The network channel also delivers frames other VMs sent, signaled or not.
        self.service_net(memory, vp, interrupts, timeline, exits);
        let relids: Vec<u32> = self.channels.keys().copied().collect();
        for relid in relids {
            let out = match self.channels.get_mut(&relid) {
                Some(c) if c.open.is_some() => c.service.poll(now),
                _ => continue,
            };
            self.deliver(relid, out, memory, vp, interrupts, timeline);
        }
        self.script(timeline);
    }

    #[allow(clippy::too_many_arguments)]
    fn act<I: InterruptSink>(
        &mut self,
        action: Action,
        now: Now,
        memory: &GuestMemory,
        vp: &mut VirtualProcessor,
        interrupts: &mut I,
        timeline: &Timeline,
        exits: u64,
    ) {
        match action {
            Action::Connected {
                version,
                target_vcpu,
            } => timeline.host(format_args!(
                "vmbus: guest connected, version {}.{}, messages to vp {target_vcpu}",
                version.0 >> 16,
                version.0 & 0xffff
            )),
            Action::OpenChannel {
                relid,
                gpadl_id,
                downstream_page_offset,
                connection_id,
                ..
            } => {
                if let Some(n) = self.net.as_mut().filter(|n| n.relid == relid) {
                    n.open = Some(OpenRing {
                        gpadl_id,
                        downstream: downstream_page_offset,
                        connection_id,
                        indices: RingIndices::default(),
                    });
                    n.channel.reset();
                    timeline.host(format_args!(
                        "vmbus: channel {relid} (network) open: ring GPADL {gpadl_id:#x}, {} pages, connection {connection_id:#x}",
                        self.server.gpadl(gpadl_id).map_or(0, |g| g.len() / 4096),
                    ));
                    return;
                }
                if let Some(s) = self.storage.as_mut().filter(|s| s.relid == relid) {
                    s.open = Some(OpenRing {
                        gpadl_id,
                        downstream: downstream_page_offset,
                        connection_id,
                        indices: RingIndices::default(),
                    });
                    s.channel.reset();
                    timeline.host(format_args!(
                        "vmbus: channel {relid} (scsi) open: ring GPADL {gpadl_id:#x}, {} pages, connection {connection_id:#x}",
                        self.server.gpadl(gpadl_id).map_or(0, |g| g.len() / 4096),
                    ));
                    return;
                }
                let Some(channel) = self.channels.get_mut(&relid) else {
                    return;
                };
                channel.open = Some(OpenRing {
                    gpadl_id,
                    downstream: downstream_page_offset,
                    connection_id,
                    indices: RingIndices::default(),
                });
                timeline.host(format_args!(
                    "vmbus: channel {relid} ({}) open: ring GPADL {gpadl_id:#x}, {} pages, connection {connection_id:#x}",
                    channel.name,
                    self.server.gpadl(gpadl_id).map_or(0, |g| g.len() / 4096),
                ));
                let out = channel.service.on_open(now);
                self.deliver(relid, out, memory, vp, interrupts, timeline);
                if self.stats.all_open.is_none() && self.channels.values().all(|c| c.open.is_some())
                {
                    self.stats.all_open = Some((Instant::now(), exits));
                    timeline.host(format_args!(
                        "vmbus: all four integration-service channels open ({exits} exits so far)"
                    ));
                }
            }
            Action::CloseChannel { relid }
                if self.net.as_ref().is_some_and(|n| n.relid == relid) =>
            {
                if let Some(n) = self.net.as_mut() {
                    n.open = None;
                    n.channel.reset();
                }
                timeline.host(format_args!("vmbus: channel {relid} (network) closed"));
            }
            Action::CloseChannel { relid }
                if self.storage.as_ref().is_some_and(|s| s.relid == relid) =>
            {
                if let Some(s) = self.storage.as_mut() {
                    s.open = None;
                    s.channel.reset();
                }
                timeline.host(format_args!("vmbus: channel {relid} (scsi) closed"));
            }
            Action::CloseChannel { relid } => {
                if let Some(c) = self.channels.get_mut(&relid) {
                    c.open = None;
                    timeline.host(format_args!("vmbus: channel {relid} ({}) closed", c.name));
                }
            }
            Action::Reset => {
                for c in self.channels.values_mut() {
                    c.open = None;
                }
                if let Some(s) = self.storage.as_mut() {
                    s.open = None;
                    s.channel.reset();
                }
                if let Some(n) = self.net.as_mut() {
                    n.open = None;
                    n.channel.reset();
                }
                timeline.host(format_args!("vmbus: guest unloaded"));
            }
            Action::GpadlReleased { gpadl_id } => {
                if let Some(n) = self.net.as_mut() {
                    n.channel.gpadl_released(gpadl_id);
                }
            }
            _ => {}
        }
    }

    /// Reads every packet the guest sent on `relid` into its service.
    #[allow(clippy::too_many_arguments)]
    fn drain<I: InterruptSink>(
        &mut self,
        relid: u32,
        now: Now,
        memory: &GuestMemory,
        vp: &mut VirtualProcessor,
        interrupts: &mut I,
        timeline: &Timeline,
        exits: u64,
    ) {
        if self.storage.as_ref().is_some_and(|s| s.relid == relid) {
            return self.drain_storage(memory, vp, interrupts, timeline, exits);
        }
        if self.net.as_ref().is_some_and(|n| n.relid == relid) {
            return self.service_net(memory, vp, interrupts, timeline, exits);
        }
        let Some(ring) = self.channels.get(&relid).and_then(|c| c.open) else {
            return;
        };
        let Some(gpadl) = self.server.gpadl(ring.gpadl_id) else {
            return;
        };
        let pfns = match gpadl.ring_pfns() {
            Ok(p) => p,
            Err(e) => return timeline.host(format_args!("vmbus: channel {relid}: {e}")),
        };
        let (incoming, _) = match guest_ring_pair(memory, pfns, ring.downstream) {
            Ok(pair) => pair,
            Err(e) => return timeline.host(format_args!("vmbus: channel {relid}: {e}")),
        };
        // The indices are the host's, kept here; the channel's copy is updated below, after
        // the reader (which updates this one when dropped) is gone.
        let mut indices = ring.indices;
        let mut reader = match indices.reader(incoming) {
            Ok(r) => r,
            Err(e) => return timeline.host(format_args!("vmbus: channel {relid}: {e}")),
        };
        let mut buf = vec![0u8; 16384];
        let mut outputs = Vec::new();
        let mut signal = false;
        loop {
            match reader.read(&mut buf) {
                Ok((len, released)) => {
                    signal |= released.must_signal;
                    self.stats.packets_from_guest += 1;
                    let Ok(packet) = PacketRepr::parse_bytes(&buf[..len]) else {
                        timeline.host(format_args!("vmbus: channel {relid}: malformed packet"));
                        continue;
                    };
                    if packet.kind != PacketKind::InBand {
                        continue;
                    }
                    if let Some(c) = self.channels.get_mut(&relid) {
                        outputs.push(c.service.on_packet(now, packet.payload));
                    }
                }
                Err(ReadError::Empty) => break,
                Err(e) => {
                    timeline.host(format_args!("vmbus: channel {relid}: {e}"));
                    break;
                }
            }
        }
        drop(reader);
        Self::keep_indices(
            self.channels.get_mut(&relid).and_then(|c| c.open.as_mut()),
            ring,
            indices,
        );
        if signal {
            let _ = vp.signal_event(memory, interrupts, VMBUS_SINT, relid);
        }
        for out in outputs {
            self.deliver(relid, out, memory, vp, interrupts, timeline);
        }
    }

    /// Serves the network channel: the guest's packets, then what waits for the guest.
    fn service_net<I: InterruptSink>(
        &mut self,
        memory: &GuestMemory,
        vp: &mut VirtualProcessor,
        interrupts: &mut I,
        timeline: &Timeline,
        exits: u64,
    ) {
        let Some(slot) = self.net.as_mut() else {
            return;
        };
        let Some(ring) = slot.open.as_mut() else {
            return;
        };
        let (gpadl_id, downstream) = (ring.gpadl_id, ring.downstream);
        match slot.channel.service(
            &self.server,
            gpadl_id,
            downstream,
            &mut ring.indices,
            memory,
            exits,
        ) {
            Ok(done) => {
                if done.link_up {
                    let v = slot.channel.version().unwrap_or(0);
                    timeline.host(format_args!(
                        "netvsp: adapter up (NVSP {}.{}, RNDIS initialized, packet filter set), switch port {}",
                        v >> 16,
                        v & 0xffff,
                        slot.channel.port().0
                    ));
                }
                if done.signal {
                    let _ = vp.signal_event(memory, interrupts, VMBUS_SINT, slot.relid);
                }
            }
            Err(e) => timeline.host(format_args!("netvsp: {e}")),
        }
    }

    /// Answers every request in the storage channel's ring.
    fn drain_storage<I: InterruptSink>(
        &mut self,
        memory: &GuestMemory,
        vp: &mut VirtualProcessor,
        interrupts: &mut I,
        timeline: &Timeline,
        exits: u64,
    ) {
        let Some(slot) = self.storage.as_mut() else {
            return;
        };
        let Some(ring) = slot.open.as_mut() else {
            return;
        };
        let Some(gpadl) = self.server.gpadl(ring.gpadl_id) else {
            return;
        };
        match slot
            .channel
            .drain(gpadl, ring.downstream, &mut ring.indices, memory, exits)
        {
            Ok(done) => {
                if done.became_ready {
                    let v = slot.channel.version().unwrap_or(0);
                    timeline.host(format_args!(
                        "storvsp: channel initialized, protocol {}.{}, disk of {} sectors",
                        v >> 8,
                        v & 0xff,
                        slot.channel.disk.blocks()
                    ));
                }
                if done.signal {
                    let _ = vp.signal_event(memory, interrupts, VMBUS_SINT, slot.relid);
                }
                if let Some(seg) = done.segment.filter(|s| s.requests > 0) {
                    timeline.host(format_args!(
                        "measured: storage: that phase took {} requests in {} drains (up to {} per drain), {} exits: {:.1} exits per request",
                        seg.requests,
                        seg.drains,
                        seg.max_batch,
                        seg.exits,
                        seg.exits as f64 / seg.requests as f64
                    ));
                }
                let due = slot.snapshot.as_ref().is_some_and(|(plan, taken)| {
                    !taken && slot.channel.disk.stats.writes >= plan.after_writes
                });
                if due {
                    self.snapshot_now(timeline);
                }
            }
            Err(e) => timeline.host(format_args!("storvsp: {e}")),
        }
    }

    /// Stores the ring indices a service kept into the channel's open ring, if it is still the
    /// same ring (the service cannot close it, but the check costs nothing).
    fn keep_indices(open: Option<&mut OpenRing>, served: OpenRing, indices: RingIndices) {
        if let Some(o) = open.filter(|o| o.gpadl_id == served.gpadl_id) {
            o.indices = indices;
        }
    }

    /// Sends a service's packets on `relid` and reports its events.
    fn deliver<I: InterruptSink>(
        &mut self,
        relid: u32,
        out: Output,
        memory: &GuestMemory,
        vp: &mut VirtualProcessor,
        interrupts: &mut I,
        timeline: &Timeline,
    ) {
        let Some(channel) = self.channels.get(&relid) else {
            return;
        };
        let name = channel.name;
        if let (Some(ring), false) = (channel.open, out.packets.is_empty()) {
            let mut indices = ring.indices;
            let written = self
                .server
                .gpadl(ring.gpadl_id)
                .ok_or_else(|| "the ring GPADL is gone".to_string())
                .and_then(|g| g.ring_pfns().map_err(|e| e.to_string()))
                .and_then(|pfns| {
                    guest_ring_pair(memory, pfns, ring.downstream).map_err(|e| e.to_string())
                })
                .and_then(|(_, outgoing)| indices.writer(outgoing).map_err(|e| e.to_string()))
                .map(|mut writer| {
                    let mut signal = false;
                    for packet in &out.packets {
                        let txid = self.next_txid;
                        self.next_txid += 1;
                        match writer.write(&PacketRepr::in_band(txid, false, packet)) {
                            Ok(w) => {
                                signal |= w.must_signal;
                                self.stats.packets_to_guest += 1;
                            }
                            Err(e) => timeline.host(format_args!("ic: {name}: cannot send: {e}")),
                        }
                    }
                    signal
                });
            Self::keep_indices(
                self.channels.get_mut(&relid).and_then(|c| c.open.as_mut()),
                ring,
                indices,
            );
            match written {
                Ok(true) => {
                    let _ = vp.signal_event(memory, interrupts, VMBUS_SINT, relid);
                }
                Ok(false) => {}
                Err(e) => timeline.host(format_args!("ic: {name}: {e}")),
            }
        }
        for event in out.events {
            self.report(relid, name, event, timeline);
        }
    }

    fn report(&mut self, relid: u32, name: &str, event: HostEvent, timeline: &Timeline) {
        match event {
            HostEvent::Negotiated { framework, message } => timeline.host(format_args!(
                "ic: {name} negotiated (framework {framework}, message {message})"
            )),
            HostEvent::NegotiationFailed => timeline.host(format_args!(
                "ic: {name}: the guest supports none of our versions"
            )),
            HostEvent::Heartbeat {
                seq,
                state,
                round_trip_ns,
            } => {
                self.stats.heartbeat_rtt_ns.push(round_trip_ns);
                let health = match state {
                    AppState::HEALTHY => "healthy",
                    AppState::CRITICAL => "critical",
                    AppState::STOPPED => "stopped",
                    _ => "unknown",
                };
                timeline.host(format_args!(
                    "heartbeat #{seq}: guest {health}, round trip {:.2} ms",
                    round_trip_ns as f64 / 1e6
                ));
            }
            HostEvent::ShutdownAnswered { status } => timeline.host(format_args!(
                "shutdown: guest answered {}",
                if status == IcStatus::S_OK {
                    "S_OK, shutting down"
                } else {
                    "with a failure"
                }
            )),
            HostEvent::TimeSyncAcknowledged { flags } => timeline.host(format_args!(
                "time sync: guest acknowledged the {} sample",
                if flags.0 & 1 != 0 { "SYNC" } else { "periodic" }
            )),
            HostEvent::Kvp {
                request,
                status,
                record,
            } => {
                let ok = status == IcStatus::S_OK;
                match request {
                    KvpRequest::Set(pool, r) => timeline.host(format_args!(
                        "kvp: set {}/{} = {:?} -> {}",
                        pool.name().unwrap_or("?"),
                        r.key,
                        r.value,
                        if ok { "S_OK" } else { "failed" }
                    )),
                    KvpRequest::Get(pool, key) => match record {
                        Some(r) if ok => timeline.host(format_args!(
                            "kvp: guest reports {}/{} = {:?}",
                            pool.name().unwrap_or("?"),
                            r.key,
                            r.value
                        )),
                        _ => timeline.host(format_args!(
                            "kvp: guest has no {}/{key}",
                            pool.name().unwrap_or("?")
                        )),
                    },
                    KvpRequest::Enumerate(pool, index) => match record {
                        Some(r) if ok => {
                            timeline.host(format_args!(
                                "kvp: guest published {}/{} = {:?}",
                                pool.name().unwrap_or("?"),
                                r.key,
                                r.value
                            ));
                            if let Some(c) = self.channels.get_mut(&relid) {
                                c.service.queue_kvp(KvpRequest::Enumerate(pool, index + 1));
                            }
                        }
                        _ => {
                            self.kvp_done = true;
                            timeline.host(format_args!(
                                "kvp: {index} keys enumerated in the guest's {} pool",
                                pool.name().unwrap_or("?")
                            ));
                        }
                    },
                    KvpRequest::Delete(pool, key) => timeline.host(format_args!(
                        "kvp: delete {}/{key} -> {}",
                        pool.name().unwrap_or("?"),
                        if ok { "S_OK" } else { "failed" }
                    )),
                }
            }
            HostEvent::Timeout { msgtype } => {
                timeline.host(format_args!("ic: {name}: no answer to {msgtype:?}"))
            }
            HostEvent::Ignored { reason } => {
                timeline.host(format_args!("ic: {name}: ignored a packet: {reason}"))
            }
            _ => {}
        }
    }

    /// The demo: KVP exchange once the channels are open, shutdown after the run time.
    fn script(&mut self, timeline: &Timeline) {
        let Some((opened, _)) = self.stats.all_open else {
            return;
        };
        let kvp_ready = self.channel_ready(Service::Kvp);
        if !self.kvp_started && kvp_ready {
            self.kvp_started = true;
            let requests: Vec<KvpRequest> = self
                .demo
                .kvp
                .iter()
                .map(|(k, v)| KvpRequest::Set(KvpPool::EXTERNAL, Record::string(k, v)))
                .chain(
                    self.demo
                        .kvp
                        .iter()
                        .map(|(k, _)| KvpRequest::Get(KvpPool::EXTERNAL, k.clone())),
                )
                .chain([KvpRequest::Enumerate(KvpPool::AUTO, 0)])
                .collect();
            if let Some(c) = self.channel_mut(Service::Kvp) {
                for r in requests {
                    c.service.queue_kvp(r);
                }
            }
        }
        // The shutdown waits for the run time and for the KVP script (at most 10 s more): on a
        // slow or loaded host the script can outlast the run time, and the demo shows it whole.
        let elapsed = opened.elapsed().as_millis();
        let run = u128::from(self.demo.run_ms);
        if !self.shutdown_requested
            && elapsed >= run
            && (self.kvp_done || elapsed >= run + 10_000)
            && self.peer_done()
            && self.channel_ready(Service::Shutdown)
        {
            self.shutdown_requested = true;
            timeline.host(format_args!("shutdown: asking the guest to shut down"));
            if let Some(c) = self.channel_mut(Service::Shutdown) {
                c.service
                    .request_shutdown(ShutdownFlags::SHUTDOWN, 30, "viridian demo finished");
            }
        }
    }

    /// Whether the peer VM (if any) is done and nothing it sent still waits for this guest.
    fn peer_done(&self) -> bool {
        let peer = self
            .demo
            .hold_shutdown
            .as_ref()
            .is_none_or(|done| done.load(std::sync::atomic::Ordering::Acquire));
        peer && self
            .net
            .as_ref()
            .is_none_or(|n| !n.channel.frames_waiting())
    }

    fn channel_mut(&mut self, service: Service) -> Option<&mut Channel> {
        let name = services().into_iter().find(|s| s.1 == service)?.2;
        self.channels.values_mut().find(|c| c.name == name)
    }

    fn channel_ready(&mut self, service: Service) -> bool {
        self.channel_mut(service)
            .is_some_and(|c| c.open.is_some() && c.service.versions().is_some())
    }
}

/// The time as the services need it: monotonic since boot, wall clock, and the partition's
/// reference time (100 ns units since boot, what the guest reads from TIME_REF_COUNT).
fn now(timeline: &Timeline) -> Now {
    let since = timeline.start().elapsed();
    Now {
        monotonic_ns: u64::try_from(since.as_nanos()).unwrap_or(u64::MAX),
        unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        reference_time: u64::try_from(since.as_nanos() / 100).unwrap_or(u64::MAX),
    }
}
