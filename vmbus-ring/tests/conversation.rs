//! A whole VMBus session in memory, for every negotiable version: the host and guest channel
//! state machines exchange control messages; each integration-service channel gets a ring
//! GPADL in guest RAM (one of them large enough to need GPADL_BODY messages), both sides map
//! the rings (the guest contiguously, the host from scattered pages), and the host and guest
//! IC services talk over them: negotiation, heartbeats, a shutdown request, time samples and a
//! KVP set/get/enumerate round. Then close, teardown, unload and reconnect.

use std::sync::atomic::AtomicU64;

use vmbus_ring::channel::client::{Client, ClientEvent, Outgoing, LINUX_VERSIONS};
use vmbus_ring::channel::server::{Action, OfferSpec, Server, ServerConfig};
use vmbus_ring::channel::{interface, Guid, VmbusVersion};
use vmbus_ring::gpadl::GuestRam;
use vmbus_ring::ic::bodies::{AppState, ShutdownFlags, TimeSyncFlags};
use vmbus_ring::ic::guest::{GuestEvent, GuestService, KvpStore, MemKvpStore};
use vmbus_ring::ic::host::{HostConfig, HostEvent, HostService, KvpRequest, Now, Service};
use vmbus_ring::ic::kvp::{KvpPool, Record};
use vmbus_ring::memory::{host_ring_pair, FlatRingMemory, WORDS_PER_PAGE};
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter};

const RAM_BASE: u64 = 0x100;
const RAM_PAGES: usize = 160;
const SERVICES: [(Service, Guid); 4] = [
    (Service::Heartbeat, interface::HEARTBEAT),
    (Service::Shutdown, interface::SHUTDOWN),
    (Service::TimeSync, interface::TIMESYNC),
    (Service::Kvp, interface::KVP),
];

fn pump(
    server: &mut Server,
    client: &mut Client,
    first: Vec<Outgoing>,
) -> (Vec<ClientEvent>, Vec<Action>) {
    let (mut events, mut actions) = (Vec::new(), Vec::new());
    let mut to_host = first;
    while !to_host.is_empty() {
        let mut to_guest = Vec::new();
        for m in to_host.drain(..) {
            let out = server.handle_message(&m.payload);
            assert!(out.dropped.is_empty(), "{:?}", out.dropped);
            actions.extend(out.actions);
            to_guest.extend(out.messages);
        }
        for m in to_guest {
            let (ev, replies) = client.handle_message(&m);
            events.extend(ev);
            to_host.extend(replies);
        }
    }
    (events, actions)
}

fn at(ms: u64) -> Now {
    Now {
        monotonic_ns: ms * 1_000_000,
        unix_ns: 1_800_000_000_000_000_000 + ms * 1_000_000,
        reference_time: ms * 10_000,
    }
}

/// Sends `payloads` from a writer, reads them at the other end, returns them.
fn carry<M1, M2>(
    tx: &mut RingWriter<M1>,
    rx: &mut RingReader<M2>,
    payloads: &[Vec<u8>],
    txid: &mut u64,
) -> Vec<Vec<u8>>
where
    M1: vmbus_ring::memory::RingMemory,
    M2: vmbus_ring::memory::RingMemory,
{
    for (i, p) in payloads.iter().enumerate() {
        *txid += 1;
        let sent = tx.write(&PacketRepr::in_band(*txid, false, p)).unwrap();
        // The reader drained the ring last time: only the first packet needs a signal.
        assert_eq!(sent.must_signal, i == 0);
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match rx.read(&mut buf) {
            Ok((len, _)) => {
                let p = PacketRepr::parse_bytes(&buf[..len]).unwrap();
                assert_eq!(p.kind, PacketKind::InBand);
                out.push(p.payload.to_vec());
            }
            Err(ReadError::Empty) => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

fn session(max: VmbusVersion) {
    let words: Vec<AtomicU64> = (0..RAM_PAGES * WORDS_PER_PAGE)
        .map(|_| AtomicU64::new(0))
        .collect();
    let ram = GuestRam::new(RAM_BASE, &words[..]).unwrap();
    let mut server = Server::new(ServerConfig {
        max_version: max,
        ..ServerConfig::default()
    });
    let relids: Vec<u32> = SERVICES
        .iter()
        .enumerate()
        .map(|(i, (_, g))| {
            server
                .add_offer(OfferSpec::pipe(
                    *g,
                    Guid::from_fields(0x1000 + i as u32, 0, 0, [0; 8]),
                ))
                .0
                .unwrap()
        })
        .collect();
    let mut client = Client::new(&LINUX_VERSIONS, 0, (0, 0));
    let first = client.connect().into_iter().collect();
    let (events, _) = pump(&mut server, &mut client, first);
    assert_eq!(client.version(), Some(max));
    assert!(events.contains(&ClientEvent::AllOffersDelivered));

    // Ring layout in guest RAM: the heartbeat channel gets 96 pages (a multi-body GPADL), the
    // others 8 pages (4 per direction, like hv_utils' 16 KiB rings).
    let mut next_page = 0usize;
    let mut gpadl_ids = Vec::new();
    let mut rings = Vec::new();
    for (i, &relid) in relids.iter().enumerate() {
        let pages = if i == 0 { 96 } else { 8 };
        let first_page = next_page;
        next_page += pages;
        let pfns: Vec<u64> = (0..pages as u64)
            .map(|p| RAM_BASE + (first_page as u64) + p)
            .collect();
        let (id, msgs) = client.create_gpadl(relid, &pfns).unwrap();
        assert_eq!(msgs.len() > 1, i == 0);
        let (events, _) = pump(&mut server, &mut client, msgs);
        assert_eq!(
            events,
            [ClientEvent::GpadlCreated {
                gpadl_id: id,
                status: 0
            }]
        );
        let half = pages as u32 / 2;
        let m = vec![client.open_channel(relid, id, half, 0)];
        let (events, actions) = pump(&mut server, &mut client, m);
        assert_eq!(events, [ClientEvent::Opened { relid, status: 0 }]);
        let Action::OpenChannel {
            gpadl_id,
            downstream_page_offset,
            ..
        } = actions[0]
        else {
            panic!("{actions:?}")
        };
        gpadl_ids.push(id);
        rings.push((first_page, pages, gpadl_id, downstream_page_offset));
    }

    // Each service over its own rings.
    let mut store = MemKvpStore::new();
    store.set(KvpPool::GUEST, Record::string("GuestName", "viridian-test"));
    for (i, (service, _)) in SERVICES.iter().enumerate() {
        let (first_page, pages, gpadl_id, down) = rings[i];
        let guest_words =
            &words[first_page * WORDS_PER_PAGE..(first_page + pages) * WORDS_PER_PAGE];
        let (g2h, h2g) = FlatRingMemory::split_pair(guest_words, down).unwrap();
        let (mut guest_tx, mut guest_rx) = (
            RingWriter::new(&g2h).unwrap(),
            RingReader::new(&h2g).unwrap(),
        );
        let gpadl = server.gpadl(gpadl_id).unwrap();
        let (incoming, outgoing) = host_ring_pair(gpadl.ring_pfns().unwrap(), down, &ram).unwrap();
        let (mut host_rx, mut host_tx) = (
            RingReader::new(&incoming).unwrap(),
            RingWriter::new(&outgoing).unwrap(),
        );

        let mut host = HostService::new(*service, HostConfig::default());
        let mut guest = GuestService::new(*service);
        guest.app_state = AppState::HEALTHY;
        let (mut htx, mut gtx) = (0u64, 0u64);
        let mut host_events = Vec::new();
        let mut guest_events = Vec::new();
        let mut round =
            |packets: Vec<Vec<u8>>, now: Now, store: &mut MemKvpStore, host: &mut HostService| {
                let mut to_guest = packets;
                while !to_guest.is_empty() {
                    let mut replies = Vec::new();
                    for p in carry(&mut host_tx, &mut guest_rx, &to_guest, &mut htx) {
                        let (reply, ev) = guest.on_packet(&p, store).unwrap();
                        guest_events.extend(ev);
                        replies.extend(reply);
                    }
                    to_guest = Vec::new();
                    for p in carry(&mut guest_tx, &mut host_rx, &replies, &mut gtx) {
                        let out = host.on_packet(now, &p);
                        host_events.extend(out.events);
                        to_guest.extend(out.packets);
                    }
                }
            };
        let open = host.on_open(at(0));
        round(open.packets, at(1), &mut store, &mut host);
        match service {
            Service::Heartbeat => {
                for k in 0..3u64 {
                    let out = host.poll(at(10 + 2000 * k));
                    round(out.packets, at(12 + 2000 * k), &mut store, &mut host);
                }
                let beats: Vec<u64> = host_events
                    .iter()
                    .filter_map(|e| match e {
                        HostEvent::Heartbeat {
                            seq,
                            state: AppState::HEALTHY,
                            ..
                        } => Some(*seq),
                        _ => None,
                    })
                    .collect();
                assert_eq!(beats, [2, 3, 4]);
            }
            Service::Shutdown => {
                host.request_shutdown(ShutdownFlags::SHUTDOWN, 30, "viridian demo");
                let out = host.poll(at(5));
                round(out.packets, at(6), &mut store, &mut host);
                assert!(guest_events.contains(&GuestEvent::Shutdown {
                    action: ShutdownFlags::SHUTDOWN,
                    timeout_seconds: 30
                }));
            }
            Service::TimeSync => {
                let out = host.poll(at(100));
                round(out.packets, at(101), &mut store, &mut host);
                let sync = guest_events.iter().find_map(|e| match e {
                    GuestEvent::Time {
                        flags: TimeSyncFlags::SYNC,
                        host_unix_ns,
                        reference_time,
                    } => Some((*host_unix_ns, *reference_time)),
                    _ => None,
                });
                assert_eq!(sync, Some((at(100).unix_ns, Some(at(100).reference_time))));
            }
            Service::Kvp => {
                host.queue_kvp(KvpRequest::Set(
                    KvpPool::EXTERNAL,
                    Record::string("HostName", "viridian-host"),
                ));
                host.queue_kvp(KvpRequest::Get(KvpPool::EXTERNAL, "HostName".into()));
                host.queue_kvp(KvpRequest::Enumerate(KvpPool::GUEST, 0));
                host.queue_kvp(KvpRequest::Enumerate(KvpPool::GUEST, 1));
                for k in 0..4 {
                    let out = host.poll(at(200 + k));
                    round(out.packets, at(200 + k), &mut store, &mut host);
                }
                let values: Vec<Option<String>> = host_events
                    .iter()
                    .filter_map(|e| match e {
                        HostEvent::Kvp { record, .. } => {
                            Some(record.as_ref().map(|r| r.value.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                assert_eq!(
                    values,
                    [
                        None,
                        Some("viridian-host".into()),
                        Some("viridian-test".into()),
                        None
                    ]
                );
            }
            other => panic!("no conversation written for {other:?}"),
        }
        assert!(
            matches!(host_events[0], HostEvent::Negotiated { .. }),
            "{host_events:?}"
        );
    }

    // Close, tear down, unload, reconnect.
    for (i, &relid) in relids.iter().enumerate() {
        let m = vec![
            client.close_channel(relid),
            client.teardown_gpadl(relid, gpadl_ids[i]),
        ];
        let (events, actions) = pump(&mut server, &mut client, m);
        assert_eq!(
            events,
            [ClientEvent::GpadlTorndown {
                gpadl_id: gpadl_ids[i]
            }]
        );
        assert_eq!(
            actions,
            [
                Action::CloseChannel { relid },
                Action::GpadlReleased {
                    gpadl_id: gpadl_ids[i]
                }
            ]
        );
    }
    let m = vec![client.unload()];
    let (events, actions) = pump(&mut server, &mut client, m);
    assert_eq!(
        (events, actions),
        (vec![ClientEvent::Unloaded], vec![Action::Reset])
    );
    let first = client.connect().into_iter().collect();
    pump(&mut server, &mut client, first);
    assert_eq!(client.version(), Some(max));
    assert_eq!(client.offers().len(), 4);
}

#[test]
fn ic_session_over_rings_at_every_version() {
    // Under Miri (slow) one version; natively all of them.
    let versions: &[VmbusVersion] = if cfg!(miri) {
        &[VmbusVersion::WIN10_V5_3]
    } else {
        &[
            VmbusVersion::WIN8,
            VmbusVersion::WIN8_1,
            VmbusVersion::WIN10,
            VmbusVersion::WIN10_V4_1,
            VmbusVersion::WIN10_V5,
            VmbusVersion::WIN10_V5_1,
            VmbusVersion::WIN10_V5_2,
            VmbusVersion::WIN10_V5_3,
        ]
    };
    for &v in versions {
        session(v);
    }
}
