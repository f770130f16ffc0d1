//! The VMBus host through the guest's own entry points: `HvPostMessage` hypercalls, the SynIC
//! message slot freed the way Linux frees it (type to 0, then EOM if the host set
//! MessagePending), the channel's rings, and a service after every exit, as the exit loop runs
//! it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hv_hypercall::defs::{
    message_slot_gpa, HvMessage, HvMsr, HvStatus, HypercallCode, HypercallInput, PostMessageInput,
    MESSAGE_PENDING_QWORD_BIT,
};
use hv_hypercall::dispatch::X64Registers;
use vmbus_ring::channel::client::{Client, ClientEvent, Outgoing, LINUX_VERSIONS};
use vmbus_ring::channel::VmbusVersion;
use vmbus_ring::gpadl::{GpaRange, GpaRanges, GpadlMessages, GuestRam, Pfns};
use vmbus_ring::memory::host_ring_pair;
use vmbus_ring::netvsc::nvsp;
use vmbus_ring::packet::PacketRepr;
use vmbus_ring::ring::RingWriter;
use zerocopy::FromBytes;

use super::messages::{MAX_INBOX, PAUSE_AT};
use super::{DemoConfig, VMBUS_SINT};
use crate::hyperv::{HyperV, HypercallExit};
use crate::memory::GuestMemory;
use crate::net::netvsp::NetChannel;
use crate::net::{testing, Hub};
use crate::timeline::Timeline;

const MEMORY: u64 = 4 << 20;
/// The guest's SynIC message and event-flag pages, and its hypercall input page.
const SIMP: u64 = 0x3000;
const SIEFP: u64 = 0x4000;
const INPUT: u64 = 0x5000;
/// The network channel's ring: 2 pages guest to host, then 2 host to guest.
const RING: [u64; 4] = [0x100, 0x101, 0x102, 0x103];
const DOWNSTREAM: u32 = 2;
/// Its receive buffer (16 pages), and the page its RNDIS messages are read from.
const RECV: std::ops::Range<u64> = 0x200..0x210;
const STREAM_PAGE: u64 = 0x280;
/// The four integration services offered by every host.
const IC_OFFERS: usize = 4;

/// A one-VP guest: the SynIC set up for VMBus (SINT 2, vector 0x40), a `vmbus-ring` client.
struct Guest {
    hv: HyperV,
    mem: GuestMemory,
    client: Client,
    exits: u64,
}

impl Guest {
    /// A guest; with `nic`, the host offers a network adapter too (its relid is returned).
    fn new(nic: bool) -> (Self, Option<u32>) {
        let mem = GuestMemory::new(MEMORY).expect("memory");
        let demo = DemoConfig {
            heartbeat_ms: 1000,
            run_ms: 60_000,
            kvp: Vec::new(),
            max_version: VmbusVersion::WIN10_V5_3,
            hold_shutdown: None,
        };
        let mut hv = HyperV::new(false, Timeline::new(), demo).expect("hyper-v");
        let relid = nic.then(|| {
            let mac = [0, 0x15, 0x5d, 1, 2, 3];
            let hub = Arc::new(Hub::new());
            let port = hub.add_port(mac, 1).expect("port");
            hv.vmbus
                .attach_nic(NetChannel::new(mac, hub, port))
                .expect("nic offer")
        });
        hv.write_msr(&mem, HvMsr::SIMP.0, SIMP | 1).expect("simp");
        hv.write_msr(&mem, HvMsr::SIEFP.0, SIEFP | 1)
            .expect("siefp");
        let sint = HvMsr::sint(VMBUS_SINT).expect("sint 2");
        hv.write_msr(&mem, sint.0, 0x40).expect("sint");
        let guest = Self {
            hv,
            mem,
            client: Client::new(&LINUX_VERSIONS, 0, (0x1000, 0x2000)),
            exits: 0,
        };
        (guest, relid)
    }

    /// One VM exit's worth of host work (the exit loop services after every exit).
    fn exit(&mut self) {
        self.exits += 1;
        self.hv.service(&self.mem, self.exits);
        self.hv.take_interrupts();
    }

    /// `HvPostMessage` of `message`, then the exit's service; returns the hypercall status.
    fn post(&mut self, message: &Outgoing) -> u64 {
        let input = PostMessageInput::new(message.connection_id, 1, &message.payload)
            .expect("message fits");
        self.mem.write_at(INPUT, &input.to_bytes()).expect("input");
        let mut regs = X64Registers {
            rcx: HypercallInput::simple(HypercallCode::POST_MESSAGE).0,
            rdx: INPUT,
            ..Default::default()
        };
        let exit = self.hv.hypercall(&self.mem, &mut regs);
        assert_eq!(exit, HypercallExit::Completed);
        self.exit();
        regs.rax & 0xffff
    }

    /// Posts `message` and checks the host took it.
    fn send(&mut self, message: &Outgoing) {
        assert_eq!(self.post(message), u64::from(HvStatus::SUCCESS.0));
    }

    /// Takes the message in the VMBus slot as Linux's `vmbus_signal_eom` does: the type goes
    /// to 0, then EOM is written if the host had set MessagePending.
    fn take(&mut self) -> Option<Vec<u8>> {
        let slot = message_slot_gpa(SIMP, VMBUS_SINT);
        let mut raw = [0u8; 256];
        self.mem.read_at(slot, &mut raw).expect("slot");
        let message = HvMessage::read_from_bytes(&raw).expect("256 bytes");
        if message.message_type().0 == 0 {
            return None;
        }
        assert_eq!(message.message_type().0, 1, "a VMBus message");
        let payload = message.payload().to_vec();
        let head = self.mem.atomic_u64(slot).expect("slot");
        head.fetch_and(!0xffff_ffff, Ordering::SeqCst);
        if head.load(Ordering::SeqCst) & MESSAGE_PENDING_QWORD_BIT != 0 {
            self.hv.write_msr(&self.mem, HvMsr::EOM.0, 0).expect("eom");
        }
        self.exit();
        Some(payload)
    }

    /// Takes every message there is, answering as the client does; returns the client's
    /// events in order.
    fn converse(&mut self) -> Vec<ClientEvent> {
        let mut events = Vec::new();
        while let Some(payload) = self.take() {
            let (new, replies) = self.client.handle_message(&payload);
            events.extend(new);
            for r in replies {
                self.send(&r);
            }
        }
        events
    }

    /// INITIATE_CONTACT and the VERSION_RESPONSE; the client's REQUESTOFFERS is posted (and
    /// returned), its answers are left in the slot.
    fn connect(&mut self) -> Outgoing {
        let contact = self.client.connect().expect("contact");
        self.send(&contact);
        let version = self.take().expect("version response");
        let (events, mut replies) = self.client.handle_message(&version);
        assert!(
            matches!(events[..], [ClientEvent::Connected { .. }]),
            "{events:?}"
        );
        assert_eq!(replies.len(), 1, "REQUESTOFFERS");
        let request = replies.remove(0);
        self.send(&request);
        request
    }

    /// A GPADL of channel `relid` over `pfns`, answered; returns its id.
    fn gpadl(&mut self, relid: u32, pfns: &[u64]) -> u32 {
        let (id, messages) = self.client.create_gpadl(relid, pfns).expect("gpadl");
        for m in &messages {
            self.send(m);
        }
        assert_eq!(
            self.converse(),
            [ClientEvent::GpadlCreated {
                gpadl_id: id,
                status: 0
            }]
        );
        id
    }

    /// The guest writes `packets` into the network channel's ring, an exit follows; returns
    /// the host's packets as (transfer pages?, transaction id, payload).
    fn ring_exchange(&mut self, packets: &[PacketRepr<'_>]) -> Vec<(bool, u64, Vec<u8>)> {
        {
            let ram = GuestRam::new(0, self.mem.words()).expect("ram");
            let (to_host, _) = host_ring_pair(Pfns::Native(&RING), DOWNSTREAM, &ram).expect("ring");
            let mut tx = RingWriter::new(to_host).expect("writer");
            for p in packets {
                let _ = tx.write(p).expect("room in the ring");
            }
        }
        self.exit();
        let ram = GuestRam::new(0, self.mem.words()).expect("ram");
        let (_, to_guest) = host_ring_pair(Pfns::Native(&RING), DOWNSTREAM, &ram).expect("ring");
        testing::drain_host_packets(to_guest)
    }

    /// One RNDIS KEEPALIVE on the control channel; returns how many receive packets (transfer
    /// pages) the host sent back.
    fn keepalive(&mut self) -> usize {
        let range = testing::keepalives(&self.mem, STREAM_PAGE, 1);
        let (ranges, _) = GpaRanges::parse(&range, 1).expect("ranges");
        let msg = testing::rndis_control();
        let got = self.ring_exchange(&[PacketRepr::gpa_direct(100, false, ranges, &msg)]);
        got.iter().filter(|g| g.0).count()
    }

    /// Zeroes the channel's ring, as a driver does with the ring of a new open.
    fn clear_ring(&mut self) {
        for pfn in RING {
            self.mem.fill(pfn * 4096, 4096, 0).expect("ring");
        }
    }

    /// The bytes of pages `pfns`.
    fn pages(&self, pfns: std::ops::Range<u64>) -> Vec<u8> {
        let mut bytes = vec![0u8; (pfns.end - pfns.start) as usize * 4096];
        self.mem
            .read_at(pfns.start * 4096, &mut bytes)
            .expect("pages");
        bytes
    }

    /// The network adapter opened, NVSP initialized and the receive buffer registered;
    /// returns the GPADL ids of the ring and the receive buffer.
    fn open_nic(&mut self, relid: u32) -> (u32, u32) {
        self.connect();
        let offers = self.converse();
        assert_eq!(offers.len(), IC_OFFERS + 2, "{offers:?}");
        let ring = self.gpadl(relid, &RING);
        let recv: Vec<u64> = RECV.collect();
        let recv = self.gpadl(relid, &recv);
        let open = self.client.open_channel(relid, ring, DOWNSTREAM, 0);
        self.clear_ring();
        self.send(&open);
        assert_eq!(self.converse(), [ClientEvent::Opened { relid, status: 0 }]);
        self.start_nvsp(recv);
        (ring, recv)
    }

    /// NVSP INIT and SEND_RECV_BUFFER of `recv`, both answered with success.
    fn start_nvsp(&mut self, recv: u32) {
        let (init, buffer) = (testing::init(), testing::recv_buffer(recv));
        let got = self.ring_exchange(&[
            PacketRepr::in_band(1, true, &init),
            PacketRepr::in_band(2, true, &buffer),
        ]);
        // Completions; receive packets may follow (answers that waited for a buffer).
        let completions: Vec<_> = got.iter().filter(|g| !g.0).collect();
        assert_eq!(completions.len(), 2, "{got:?}");
        let mapped = nvsp::read::<nvsp::RecvBufferComplete>(&completions[1].2, 8).expect("answer");
        assert_eq!(
            mapped.status.get(),
            nvsp::Status::SUCCESS.0,
            "the buffer is mapped"
        );
        assert!(self.hv.vmbus.net().expect("nic").version().is_some());
    }
}

/// The guest takes none of 25 answers (5 to REQUESTOFFERS, 20 GPADL_CREATED) before taking
/// them all: every one arrives, in order. The SynIC queue holds 16 behind the slot; the host
/// used to drop the other 8 (logging "the message queue of sint 2 is full").
#[test]
fn answers_the_guest_has_not_taken_wait_and_arrive_in_order() {
    let (mut g, _) = Guest::new(false);
    g.connect();
    let relid = *g.hv.vmbus.channels.keys().next().expect("an offer");
    let mut ids = Vec::new();
    for n in 0..20 {
        let (id, messages) = g.client.create_gpadl(relid, &[0x100 + n]).expect("gpadl");
        for m in &messages {
            g.send(m);
        }
        ids.push(id);
    }
    // One in the slot, 16 in the SynIC's queue, the rest waiting in the host.
    assert_eq!(g.hv.vp.queued(VMBUS_SINT), 16);
    let waiting = g.hv.vmbus.messages.answers_waiting();
    let events = g.converse();
    let offers: Vec<u32> = events
        .iter()
        .take(IC_OFFERS)
        .filter_map(|e| match e {
            ClientEvent::Offer(o) => Some(o.child_relid.get()),
            _ => None,
        })
        .collect();
    let relids: Vec<u32> = g.hv.vmbus.channels.keys().copied().collect();
    assert_eq!(offers, relids, "{events:?}");
    let mut rest = vec![ClientEvent::AllOffersDelivered];
    rest.extend(ids.iter().map(|&gpadl_id| ClientEvent::GpadlCreated {
        gpadl_id,
        status: 0,
    }));
    assert_eq!(events[IC_OFFERS..], rest[..]);
    assert_eq!(
        waiting,
        IC_OFFERS + 1 + 20 - 17,
        "held by the host meanwhile"
    );
    assert_eq!(g.hv.vmbus.messages.answers_waiting(), 0);
    assert_eq!(g.hv.vp.queued(VMBUS_SINT), 0);
    assert_eq!(g.hv.vmbus.messages.undeliverable, 0);
}

/// A guest posts REQUESTOFFERS (5 answers each) a thousand times and takes nothing: the host
/// stops serving it once [`PAUSE_AT`] answers wait and refuses its posts with
/// `HV_STATUS_INSUFFICIENT_BUFFERS` once [`MAX_INBOX`] wait, so host memory stays bounded.
/// When the guest then takes its messages, every post that was accepted is answered, in order,
/// and posting works again.
#[test]
fn a_guest_that_takes_nothing_is_paused_and_then_served_in_full() {
    let (mut g, _) = Guest::new(false);
    let request_offers = g.connect();
    assert_eq!(g.converse().len(), IC_OFFERS + 1);
    let (mut accepted, mut refused) = (0usize, 0usize);
    for _ in 0..1000 {
        match g.post(&request_offers) {
            0 => accepted += 1,
            s if s == u64::from(HvStatus::INSUFFICIENT_BUFFERS.0) => refused += 1,
            s => panic!("status {s:#x}"),
        }
        let path = &g.hv.vmbus.messages;
        assert!(path.requests_waiting() <= MAX_INBOX);
        assert!(path.answers_waiting() < PAUSE_AT + IC_OFFERS + 1);
    }
    assert!(refused > 0 && accepted > MAX_INBOX, "{accepted} {refused}");
    assert_eq!(g.hv.vmbus.messages.requests_waiting(), MAX_INBOX);
    // Now the guest takes everything.
    let mut taken = Vec::new();
    while let Some(payload) = g.take() {
        taken.push(payload);
    }
    assert_eq!(taken.len(), accepted * (IC_OFFERS + 1));
    for (n, m) in taken.iter().enumerate() {
        let all_offers = m[0] == 4; // ALLOFFERS_DELIVERED
        assert_eq!(all_offers, n % (IC_OFFERS + 1) == IC_OFFERS, "message {n}");
    }
    assert_eq!(g.hv.vmbus.messages.requests_waiting(), 0);
    assert_eq!(g.hv.vmbus.messages.answers_waiting(), 0);
    assert_eq!(g.post(&request_offers), 0);
    assert_eq!(g.hv.vmbus.messages.refused, refused as u64);
}

/// The guest tears down the GPADL of its receive buffer without revoking the buffer (a
/// driver unloading out of order, or a hostile guest), and a new GPADL takes the same id:
/// netvsp must have forgotten the buffer, or it writes the guest's next RNDIS answer into
/// whatever pages the new GPADL describes.
#[test]
fn tearing_down_the_receive_buffer_gpadl_resets_netvsp() {
    let (mut g, nic) = Guest::new(true);
    let relid = nic.expect("nic");
    let (_, recv) = g.open_nic(relid);
    assert_eq!(g.keepalive(), 1, "the answer arrives in the receive buffer");
    let teardown = g.client.teardown_gpadl(relid, recv);
    g.send(&teardown);
    assert_eq!(
        g.converse(),
        [ClientEvent::GpadlTorndown { gpadl_id: recv }]
    );
    // The same id, over other pages.
    let other: Vec<u64> = (0x300..0x310).collect();
    for pfn in &other {
        g.mem.fill(pfn * 4096, 4096, 0xaa).expect("marker");
    }
    let ranges = [GpaRange::whole_pages(&other)];
    let mut split = GpadlMessages::new(relid, recv, &ranges).expect("gpadl messages");
    let mut buf = [0u8; 240];
    while let Some(len) = split.next_message(&mut buf) {
        g.send(&Outgoing {
            connection_id: teardown.connection_id,
            payload: buf[..len].to_vec(),
        });
    }
    assert_eq!(
        g.converse(),
        [ClientEvent::GpadlCreated {
            gpadl_id: recv,
            status: 0
        }]
    );
    assert_eq!(g.keepalive(), 0, "no receive buffer in this session");
    assert!(
        g.pages(0x300..0x310).iter().all(|&b| b == 0xaa),
        "the host wrote into the GPADL that took the torn-down buffer's id"
    );
    assert_eq!(g.hv.vmbus.net().expect("nic").version(), None);
}

/// Closing the channel resets netvsp (the guest's next open starts from INIT), and so does
/// UNLOAD; the receive buffer of the closed session is not written again.
#[test]
fn closing_the_channel_or_unloading_resets_netvsp() {
    let (mut g, nic) = Guest::new(true);
    let relid = nic.expect("nic");
    let (ring, recv) = g.open_nic(relid);
    assert_eq!(g.keepalive(), 1);
    let close = g.client.close_channel(relid);
    g.send(&close);
    assert!(g.converse().is_empty(), "CLOSECHANNEL has no answer");
    assert_eq!(g.hv.vmbus.net().expect("nic").version(), None);
    // Open again over the same (cleared) ring; the old buffer's GPADL still exists.
    let before = g.pages(RECV);
    g.clear_ring();
    let open = g.client.open_channel(relid, ring, DOWNSTREAM, 0);
    g.send(&open);
    assert_eq!(g.converse(), [ClientEvent::Opened { relid, status: 0 }]);
    assert_eq!(g.keepalive(), 0, "no receive buffer in the new session");
    assert_eq!(
        g.pages(RECV),
        before,
        "the closed session's buffer was written"
    );
    // The new session registers the buffer again; UNLOAD resets it too.
    g.start_nvsp(recv);
    let unload = g.client.unload();
    g.send(&unload);
    assert!(g.converse().contains(&ClientEvent::Unloaded));
    assert_eq!(g.hv.vmbus.net().expect("nic").version(), None);
}
