//! The network channel against hostile and unusual guests: control messages sent without taking
//! the answers, completions that arrive after the receive buffer changed.

use std::sync::Arc;

use vmbus_ring::channel::server::{Action, Server};
use vmbus_ring::channel::ChannelMessage;
use vmbus_ring::gpadl::{GpaRanges, GuestRam, Pfns};
use vmbus_ring::memory::host_ring_pair;
use vmbus_ring::netvsc::{nvsp, NIC_INTERFACE};
use vmbus_ring::packet::PacketRepr;
use vmbus_ring::ring::RingWriter;

use super::{NetChannel, MAX_CONTROL};
use crate::hyperv::rings::RingIndices;
use crate::hyperv::testing::server_with_gpadls;
use crate::memory::GuestMemory;
use crate::net::testing::{
    drain_host_packets, init, keepalives, recv_buffer, revoke_recv_buffer, rndis_control,
};
use crate::net::Hub;

/// The ring: 64 pages guest to host, then 2 pages host to guest.
const RING_PAGES: std::ops::Range<u64> = 0x10..0x10 + 66;
const DOWNSTREAM: u32 = 64;
/// The receive buffer: 16 pages (36 slots of 1806 bytes).
const RECV_PAGES: std::ops::Range<u64> = 0x100..0x110;
/// Where the guest's RNDIS messages are (one page).
const STREAM_PAGE: u64 = 0x200;
/// The guest's transaction ids of INIT, SEND_RECV_BUFFER and REVOKE_RECV_BUFFER.
const INIT: u64 = 1;
const RECV_BUFFER: u64 = 2;
const REVOKE: u64 = 3;

/// An adapter with the ring and receive-buffer GPADLs in place.
struct Rig {
    mem: GuestMemory,
    server: Server,
    ring: u32,
    recv: u32,
    chan: NetChannel,
    indices: RingIndices,
    exits: u64,
}

impl Rig {
    fn new() -> Self {
        let mem = GuestMemory::new(4 << 20).expect("memory");
        let ring: Vec<u64> = RING_PAGES.collect();
        let recv: Vec<u64> = RECV_PAGES.collect();
        let (server, ids) = server_with_gpadls(NIC_INTERFACE, &[&ring, &recv]);
        let mac = [0, 0x15, 0x5d, 1, 2, 3];
        let hub = Arc::new(Hub::new());
        let port = hub.add_port(mac, 1).expect("port");
        Self {
            mem,
            server,
            ring: ids[0],
            recv: ids[1],
            chan: NetChannel::new(mac, hub, port),
            indices: RingIndices::default(),
            exits: 0,
        }
    }

    /// The guest writes `packets` into its ring; the host serves the channel; returns the
    /// packets the host sent back (as (kind is transfer pages, transaction id, payload)).
    fn exchange(&mut self, packets: &[PacketRepr<'_>]) -> Vec<(bool, u64, Vec<u8>)> {
        let ram = GuestRam::new(0, self.mem.words()).expect("ram");
        let pfns: Vec<u64> = RING_PAGES.collect();
        let (to_host, _) = host_ring_pair(Pfns::Native(&pfns), DOWNSTREAM, &ram).expect("rings");
        let mut tx = RingWriter::new(to_host).expect("writer");
        for p in packets {
            let _ = tx.write(p).expect("room in the ring");
        }
        drop(tx);
        self.exits += 1;
        self.chan
            .service(
                &self.server,
                self.ring,
                DOWNSTREAM,
                &mut self.indices,
                &self.mem,
                self.exits,
            )
            .expect("service");
        let (_, to_guest) = host_ring_pair(Pfns::Native(&pfns), DOWNSTREAM, &ram).expect("rings");
        drain_host_packets(to_guest)
    }

    /// NVSP INIT and the receive buffer, as the guest's first packets.
    fn start(&mut self) {
        let (init_msg, recv_msg) = (init(), recv_buffer(self.recv));
        let got = self.exchange(&[
            PacketRepr::in_band(INIT, true, &init_msg),
            PacketRepr::in_band(RECV_BUFFER, true, &recv_msg),
        ]);
        assert_eq!(got.len(), 2, "two completions");
        assert!(self.chan.host.buffers().0 == Some(self.recv));
    }

    /// One KEEPALIVE; returns the transaction id of the receive packet its answer came in.
    fn keepalive(&mut self) -> u64 {
        let range = keepalives(&self.mem, STREAM_PAGE, 1);
        let (ranges, _) = GpaRanges::parse(&range, 1).expect("ranges");
        let msg = rndis_control();
        let got = self.exchange(&[PacketRepr::gpa_direct(100, false, ranges, &msg)]);
        let receives: Vec<u64> = got.iter().filter(|g| g.0).map(|g| g.1).collect();
        assert_eq!(receives.len(), 1, "{got:?}");
        receives[0]
    }

    fn complete(&mut self, transaction_id: u64) {
        let done = nvsp::rndis_complete(nvsp::Status::SUCCESS);
        let got = self.exchange(&[PacketRepr::completion(transaction_id, &done)]);
        assert!(got.is_empty(), "a completion is not answered");
    }
}

/// A guest with no receive buffer sends rings full of RNDIS KEEPALIVEs (256 per message):
/// the host keeps at most [`MAX_CONTROL`] answers (it kept every one, 270 MiB per signal).
/// Resetting the channel forgets them and the negotiated version.
#[test]
fn control_answers_nobody_takes_are_bounded() {
    let mut rig = Rig::new();
    let init_msg = init();
    rig.exchange(&[PacketRepr::in_band(INIT, false, &init_msg)]);
    let range = keepalives(&rig.mem, STREAM_PAGE, 256);
    let (ranges, _) = GpaRanges::parse(&range, 1).expect("ranges");
    let msg = rndis_control();
    let ram = GuestRam::new(0, rig.mem.words()).expect("ram");
    let pfns: Vec<u64> = RING_PAGES.collect();
    let mut txid = 100;
    for round in 0..2 {
        let (to_host, _) = host_ring_pair(Pfns::Native(&pfns), DOWNSTREAM, &ram).expect("rings");
        let mut tx = RingWriter::new(to_host).expect("writer");
        while tx
            .write(&PacketRepr::gpa_direct(txid, false, ranges, &msg))
            .is_ok()
        {
            txid += 1;
        }
        drop(tx);
        rig.chan
            .service(
                &rig.server,
                rig.ring,
                DOWNSTREAM,
                &mut rig.indices,
                &rig.mem,
                round,
            )
            .expect("service");
        assert_eq!(rig.chan.control.len(), MAX_CONTROL);
    }
    assert!(rig.chan.stats.errors > 1000, "{:?}", rig.chan.stats);
    assert!(rig.chan.version().is_some());
    rig.chan.reset();
    assert!(rig.chan.control.is_empty());
    assert_eq!(rig.chan.version(), None);
}

/// How a receive-buffer session ends before the guest completes a packet of it.
#[derive(Debug, Clone, Copy)]
enum SessionEnd {
    /// REVOKE_RECV_BUFFER, then SEND_RECV_BUFFER of the same GPADL.
    Revoke,
    /// SEND_RECV_BUFFER again, with no revoke.
    Reregister,
    /// The channel resets (closed and opened again), then INIT and SEND_RECV_BUFFER.
    Reset,
}

/// The guest holds receive slot 0 of one session when the session ends, then slot 0 of the
/// next one; its late completion of the first packet must not free the second's slot (both
/// went out with transaction id 0, and the late completion freed the slot the guest still
/// held: the host would have written the next message into it).
#[test]
fn a_late_completion_of_an_old_receive_buffer_frees_nothing() {
    for end in [
        SessionEnd::Revoke,
        SessionEnd::Reregister,
        SessionEnd::Reset,
    ] {
        let mut rig = Rig::new();
        rig.start();
        let slots = rig.chan.host.free_slots();
        assert_eq!(slots, 36);
        let old = rig.keepalive();
        assert_eq!(rig.chan.host.free_slots(), slots - 1);
        let recv_msg = recv_buffer(rig.recv);
        match end {
            SessionEnd::Revoke => {
                let revoke = revoke_recv_buffer();
                rig.exchange(&[
                    PacketRepr::in_band(REVOKE, false, &revoke),
                    PacketRepr::in_band(RECV_BUFFER, true, &recv_msg),
                ]);
            }
            SessionEnd::Reregister => {
                rig.exchange(&[PacketRepr::in_band(RECV_BUFFER, true, &recv_msg)]);
            }
            SessionEnd::Reset => {
                rig.chan.reset();
                rig.start();
            }
        }
        assert_eq!(rig.chan.host.free_slots(), slots, "{end:?}: a fresh buffer");
        let new = rig.keepalive();
        assert_eq!(rig.chan.host.free_slots(), slots - 1);
        rig.complete(old);
        assert_eq!(
            rig.chan.host.free_slots(),
            slots - 1,
            "{end:?}: the old completion freed the new session's slot"
        );
        assert_eq!(rig.chan.stats.stale_completions, 1, "{end:?}");
        rig.complete(new);
        assert_eq!(rig.chan.host.free_slots(), slots, "{end:?}");
        // A second completion of the same packet frees nothing either.
        rig.complete(new);
        assert_eq!(rig.chan.host.free_slots(), slots, "{end:?}");
    }
}

/// A failed registration (a GPADL too small for one slot) keeps the buffer that was there,
/// and its packets' completions still free their slots.
#[test]
fn a_refused_registration_keeps_the_session() {
    let mut rig = Rig::new();
    rig.start();
    let slots = rig.chan.host.free_slots();
    let held = rig.keepalive();
    // GPADL 0 does not exist: the registration fails.
    let bogus = recv_buffer(0);
    let got = rig.exchange(&[PacketRepr::in_band(RECV_BUFFER, true, &bogus)]);
    let status = nvsp::read::<nvsp::RecvBufferComplete>(&got[0].2, 8).expect("answer");
    assert_ne!(status.status.get(), nvsp::Status::SUCCESS.0);
    assert_eq!(rig.chan.host.free_slots(), slots - 1);
    rig.complete(held);
    assert_eq!(rig.chan.host.free_slots(), slots);
    assert_eq!(rig.chan.stats.stale_completions, 0);
}

/// The guest tears its receive buffer's GPADL down without revoking it first. The adapter
/// keeps no view of the buffer between services (each service takes it from the server's
/// table), so from the teardown on nothing is written into those pages, even before the
/// release reaches the adapter; the release then resets it.
#[test]
fn a_torn_down_receive_buffer_is_not_written() {
    let mut rig = Rig::new();
    rig.start();
    rig.keepalive();
    let recv_bytes = (RECV_PAGES.end - RECV_PAGES.start) * 4096;
    rig.mem
        .fill(RECV_PAGES.start * 4096, recv_bytes, 0xee)
        .expect("fill");
    let teardown = ChannelMessage::GpadlTeardown {
        child_relid: 1,
        gpadl: rig.recv,
    }
    .emit();
    let out = rig.server.handle_message(&teardown);
    assert!(out
        .actions
        .contains(&Action::GpadlReleased { gpadl_id: rig.recv }));
    assert!(rig.server.gpadl(rig.recv).is_none());
    // A KEEPALIVE's answer has nowhere to go.
    let range = keepalives(&rig.mem, STREAM_PAGE, 1);
    let (ranges, _) = GpaRanges::parse(&range, 1).expect("ranges");
    let msg = rndis_control();
    let got = rig.exchange(&[PacketRepr::gpa_direct(101, false, ranges, &msg)]);
    assert!(
        got.iter().all(|g| !g.0),
        "a receive packet went out: {got:?}"
    );
    let mut image = vec![0u8; recv_bytes as usize];
    rig.mem
        .read_at(RECV_PAGES.start * 4096, &mut image)
        .expect("read");
    assert!(
        image.iter().all(|&b| b == 0xee),
        "the torn-down pages were written"
    );
    rig.chan.gpadl_released(rig.recv);
    assert_eq!(rig.chan.host.buffers(), (None, None));
    assert_eq!(rig.chan.version(), None);
}
