//! Host and guest services talking to each other through packet payloads.

use alloc::vec::Vec;

use super::bodies::{AppState, ShutdownFlags, TimeSyncFlags};
use super::framing::{IcMessageType, IcStatus};
use super::guest::{GuestEvent, GuestService, MemKvpStore};
use super::host::{HostConfig, HostEvent, HostService, KvpRequest, Now, Output, Service};
use super::kvp::{KvpPool, Record};
use super::{IcError, Version};

fn at(ms: u64) -> Now {
    Now {
        monotonic_ns: ms * 1_000_000,
        unix_ns: 1_700_000_000_000_000_000 + ms * 1_000_000,
        reference_time: ms * 10_000,
    }
}

/// Delivers every host packet to the guest and every answer back; returns all events.
fn exchange(
    host: &mut HostService,
    guest: &mut GuestService,
    store: &mut MemKvpStore,
    now: Now,
    first: Output,
) -> (Vec<HostEvent>, Vec<GuestEvent>) {
    let (mut host_events, mut guest_events) = (first.events, Vec::new());
    let mut queue = first.packets;
    while let Some(packet) = queue.pop() {
        let (reply, event) = guest
            .on_packet(&packet, store)
            .expect("guest accepts host packets");
        guest_events.extend(event);
        if let Some(reply) = reply {
            let out = host.on_packet(now, &reply);
            host_events.extend(out.events);
            queue.extend(out.packets);
        }
    }
    (host_events, guest_events)
}

fn open(service: Service) -> (HostService, GuestService, MemKvpStore) {
    let mut host = HostService::new(service, HostConfig::default());
    let mut guest = GuestService::new(service);
    let mut store = MemKvpStore::new();
    let first = host.on_open(at(0));
    let (h, g) = exchange(&mut host, &mut guest, &mut store, at(1), first);
    let want = match service {
        Service::Heartbeat => Version::new(3, 0),
        Service::Shutdown => Version::new(3, 2),
        Service::TimeSync | Service::Kvp => Version::new(4, 0),
    };
    assert_eq!(
        h,
        [HostEvent::Negotiated {
            framework: Version::new(3, 0),
            message: want
        }]
    );
    assert_eq!(
        g,
        [GuestEvent::Negotiated {
            framework: Version::new(3, 0),
            message: want
        }]
    );
    (host, guest, store)
}

#[test]
fn heartbeats_carry_sequence_and_state() {
    let (mut host, mut guest, mut store) = open(Service::Heartbeat);
    guest.app_state = AppState::CRITICAL;
    for (i, ms) in [10u64, 2010, 4010].into_iter().enumerate() {
        let out = host.poll(at(ms));
        assert_eq!(out.packets.len(), 1, "one heartbeat per period");
        let (h, g) = exchange(&mut host, &mut guest, &mut store, at(ms + 3), out);
        let seq = i as u64 + 2;
        assert_eq!(g, [GuestEvent::Heartbeat { seq }]);
        assert_eq!(
            h,
            [HostEvent::Heartbeat {
                seq,
                state: AppState::CRITICAL,
                round_trip_ns: 3_000_000
            }]
        );
        assert!(
            host.poll(at(ms + 100)).packets.is_empty(),
            "nothing before the next period"
        );
    }
}

#[test]
fn shutdown_is_acknowledged_then_acted_on() {
    let (mut host, mut guest, mut store) = open(Service::Shutdown);
    assert!(host.poll(at(5)).packets.is_empty());
    host.request_shutdown(ShutdownFlags::SHUTDOWN, 30, "host shutdown");
    let out = host.poll(at(6));
    assert_eq!(
        out.packets[0].len(),
        28 + 2060,
        "full-size body, or Linux drops it"
    );
    let (h, g) = exchange(&mut host, &mut guest, &mut store, at(7), out);
    assert_eq!(
        h,
        [HostEvent::ShutdownAnswered {
            status: IcStatus::S_OK
        }]
    );
    assert_eq!(
        g,
        [GuestEvent::Shutdown {
            action: ShutdownFlags::SHUTDOWN,
            timeout_seconds: 30
        }]
    );
}

#[test]
fn timesync_syncs_then_samples_with_reference_time() {
    let (mut host, mut guest, mut store) = open(Service::TimeSync);
    let out = host.poll(at(20));
    let (h, g) = exchange(&mut host, &mut guest, &mut store, at(21), out);
    assert_eq!(
        h,
        [HostEvent::TimeSyncAcknowledged {
            flags: TimeSyncFlags::SYNC
        }]
    );
    let GuestEvent::Time {
        flags,
        host_unix_ns,
        reference_time,
    } = g[0].clone()
    else {
        panic!("{g:?}")
    };
    assert_eq!(
        (flags, host_unix_ns, reference_time),
        (TimeSyncFlags::SYNC, at(20).unix_ns, Some(200_000))
    );
    // Nothing until the sample period (5 s) has passed since the last one.
    assert!(host.poll(at(5019)).packets.is_empty());
    let out = host.poll(at(5020));
    let (h, _) = exchange(&mut host, &mut guest, &mut store, at(5021), out);
    assert_eq!(
        h,
        [HostEvent::TimeSyncAcknowledged {
            flags: TimeSyncFlags::SAMPLE
        }]
    );
}

#[test]
fn kvp_set_get_enumerate_delete_one_at_a_time() {
    let (mut host, mut guest, mut store) = open(Service::Kvp);
    host.queue_kvp(KvpRequest::Set(
        KvpPool::EXTERNAL,
        Record::string("VmName", "viridian"),
    ));
    host.queue_kvp(KvpRequest::Get(KvpPool::EXTERNAL, "VmName".into()));
    host.queue_kvp(KvpRequest::Enumerate(KvpPool::EXTERNAL, 0));
    host.queue_kvp(KvpRequest::Enumerate(KvpPool::EXTERNAL, 1));
    host.queue_kvp(KvpRequest::Delete(KvpPool::EXTERNAL, "VmName".into()));
    host.queue_kvp(KvpRequest::Get(KvpPool::EXTERNAL, "VmName".into()));
    let mut statuses = Vec::new();
    for step in 0..6u64 {
        let out = host.poll(at(100 + step));
        assert_eq!(out.packets.len(), 1, "one transaction at a time");
        assert!(
            host.poll(at(100 + step)).packets.is_empty(),
            "nothing while one is outstanding"
        );
        let (h, _) = exchange(&mut host, &mut guest, &mut store, at(100 + step), out);
        let HostEvent::Kvp { status, record, .. } = h[0].clone() else {
            panic!("{h:?}")
        };
        statuses.push((status, record.map(|r| r.value)));
    }
    assert_eq!(
        statuses,
        [
            (IcStatus::S_OK, None),
            (IcStatus::S_OK, Some("viridian".into())),
            (IcStatus::S_OK, Some("viridian".into())),
            (IcStatus::S_CONT, None),
            (IcStatus::S_OK, None),
            (IcStatus::E_FAIL, None),
        ]
    );
}

#[test]
fn a_silent_kvp_channel_times_out_without_blocking_the_host() {
    let mut host = HostService::new(
        Service::Kvp,
        HostConfig {
            timeout_ns: 1_000_000_000,
            ..HostConfig::default()
        },
    );
    let first = host.on_open(at(0));
    assert_eq!(first.packets.len(), 1);
    // No daemon: the guest never reads the channel.
    host.queue_kvp(KvpRequest::Get(KvpPool::EXTERNAL, "x".into()));
    assert!(host.poll(at(500)).packets.is_empty());
    let out = host.poll(at(1500));
    assert_eq!(
        out.events,
        [HostEvent::Timeout {
            msgtype: IcMessageType::NEGOTIATE
        }]
    );
    assert!(host.versions().is_none());
}

#[test]
fn stale_and_unsolicited_answers_are_ignored() {
    let (mut host, mut guest, mut store) = open(Service::Heartbeat);
    let out = host.poll(at(10));
    let (reply, _) = guest.on_packet(&out.packets[0], &mut store).unwrap();
    let reply = reply.unwrap();
    assert!(matches!(
        host.on_packet(at(11), &reply).events[..],
        [HostEvent::Heartbeat { .. }]
    ));
    // The same answer again: nothing is outstanding now.
    assert!(matches!(
        host.on_packet(at(12), &reply).events[..],
        [HostEvent::Ignored { .. }]
    ));
    assert!(matches!(
        host.on_packet(at(13), &[1, 2, 3]).events[..],
        [HostEvent::Ignored { .. }]
    ));
    // While the next heartbeat is outstanding: a request where a response belongs (the
    // host's own packet) is refused for its flags, and the guest refuses a response where a
    // request belongs; the real answer is still taken after both.
    let next = host.poll(at(2010));
    let request = &next.packets[0];
    assert!(matches!(
        host.on_packet(at(2011), request).events[..],
        [HostEvent::Ignored {
            reason: IcError::InvalidField {
                field: "flags (expected a response)",
                value: 3
            }
        }]
    ));
    assert_eq!(
        guest.on_packet(&reply, &mut store),
        Err(IcError::InvalidField {
            field: "flags (expected a request)",
            value: 5
        })
    );
    let (reply, _) = guest.on_packet(request, &mut store).unwrap();
    assert!(matches!(
        host.on_packet(at(2012), &reply.unwrap()).events[..],
        [HostEvent::Heartbeat { seq: 3, .. }]
    ));
}

#[test]
fn negotiation_without_a_common_version_fails_cleanly() {
    let mut host = HostService::new(Service::Heartbeat, HostConfig::default());
    let mut out = host.on_open(at(0));
    // Rewrite the offered heartbeat versions to 9.9 (offsets: 28 body, 8 header, 2 framework entries).
    out.packets[0][28 + 8 + 8..28 + 8 + 12].copy_from_slice(&[9, 0, 9, 0]);
    out.packets[0][28 + 8 + 12..28 + 8 + 16].copy_from_slice(&[9, 0, 9, 0]);
    let mut guest = GuestService::new(Service::Heartbeat);
    let (h, g) = exchange(&mut host, &mut guest, &mut MemKvpStore::new(), at(1), out);
    assert_eq!(h, [HostEvent::NegotiationFailed]);
    assert!(g.is_empty());
    assert!(
        host.poll(at(5000)).packets.is_empty(),
        "no service traffic after a failed negotiation"
    );
}

#[test]
fn the_guests_negotiation_answer_carries_the_chosen_versions() {
    let mut host = HostService::new(Service::Shutdown, HostConfig::default());
    let mut guest = GuestService::new(Service::Shutdown);
    let mut store = MemKvpStore::new();
    assert_eq!(guest.versions(), None);
    let offer = host.on_open(at(0));
    let (reply, _) = guest.on_packet(&offer.packets[0], &mut store).unwrap();
    let chosen = (Version::new(3, 0), Version::new(3, 2));
    assert_eq!(guest.versions(), Some(chosen));
    let reply = reply.unwrap();
    let header = super::framing::IcPacket::parse(&reply).unwrap().header;
    assert_eq!((header.framework, header.message), chosen);
    assert_eq!(header.msgtype, IcMessageType::NEGOTIATE);
}

#[test]
fn the_memory_kvp_store_replaces_a_key_in_place() {
    use super::guest::KvpStore;
    let mut store = MemKvpStore::new();
    let pool = KvpPool::AUTO;
    assert!(store.set(pool, Record::string("a", "1")));
    assert!(store.set(pool, Record::string("b", "2")));
    assert!(store.set(pool, Record::string("a", "3")));
    assert_eq!(store.get(pool, "a"), Some(Record::string("a", "3")));
    assert_eq!(store.enumerate(pool, 0), Some(Record::string("a", "3")));
    assert_eq!(store.enumerate(pool, 1), Some(Record::string("b", "2")));
    assert_eq!(store.enumerate(pool, 2), None);
    assert!(store.delete(pool, "a"));
    assert!(!store.delete(pool, "a"));
    assert_eq!(store.enumerate(pool, 0), Some(Record::string("b", "2")));
}

#[test]
fn an_unanswered_heartbeat_times_out_at_the_timeout_and_old_answers_are_stale() {
    let mut host = HostService::new(
        Service::Heartbeat,
        HostConfig {
            timeout_ns: 1_000_000_000,
            ..HostConfig::default()
        },
    );
    let mut guest = GuestService::new(Service::Heartbeat);
    let mut store = MemKvpStore::new();
    assert!(!host.busy());
    let first = host.on_open(at(0));
    assert!(host.busy());
    exchange(&mut host, &mut guest, &mut store, at(1), first);
    assert!(!host.busy());
    assert_eq!(
        host.versions(),
        Some((Version::new(3, 0), Version::new(3, 0)))
    );
    let first = host.poll(at(10));
    assert!(host.busy());
    let (old_answer, _) = guest.on_packet(&first.packets[0], &mut store).unwrap();
    // Unanswered: still waiting one millisecond short of the timeout, given up at it.
    assert!(host.poll(at(1009)).events.is_empty());
    assert_eq!(
        host.poll(at(1010)).events,
        [HostEvent::Timeout {
            msgtype: IcMessageType::HEARTBEAT
        }]
    );
    assert!(!host.busy());
    // The next heartbeat has a new transaction id: the late answer to the first is stale.
    let second = host.poll(at(2010));
    assert_eq!(second.packets.len(), 1);
    assert!(matches!(
        host.on_packet(at(2011), &old_answer.unwrap()).events[..],
        [HostEvent::Ignored {
            reason: IcError::InvalidField {
                field: "stale transaction id",
                ..
            }
        }]
    ));
    let (answer, _) = guest.on_packet(&second.packets[0], &mut store).unwrap();
    assert!(matches!(
        host.on_packet(at(2012), &answer.unwrap()).events[..],
        [HostEvent::Heartbeat { seq: 3, .. }]
    ));
}

#[test]
fn a_negotiation_answer_must_name_one_version_of_each() {
    use super::framing::{emit, IcFlags, IcPacket};
    use super::negotiate::Negotiate;
    for (framework, message) in [(2, 1), (1, 2), (0, 1), (1, 0)] {
        let mut host = HostService::new(Service::Heartbeat, HostConfig::default());
        let offer = host.on_open(at(0));
        let request = IcPacket::parse(&offer.packets[0]).unwrap().header;
        let answer = Negotiate {
            framework: alloc::vec![Version::new(3, 0); framework],
            message: alloc::vec![Version::new(3, 0); message],
        };
        let header = super::framing::IcHeader {
            flags: IcFlags::GUEST_RESPONSE,
            ..request
        };
        let reply = emit(&header, &answer.emit()).unwrap();
        assert_eq!(
            host.on_packet(at(1), &reply).events,
            [HostEvent::NegotiationFailed],
            "{framework} framework and {message} message versions"
        );
        assert_eq!(host.versions(), None);
    }
}

#[test]
fn kvp_value_records_debug_without_their_buffers() {
    use super::kvp::{ValueRecord, ValueType};
    use zerocopy::FromZeros;
    let mut r = ValueRecord::new_zeroed();
    r.value_type.set(ValueType::REG_DWORD.0);
    r.key_size.set(4);
    r.value_size.set(8);
    assert_eq!(
        alloc::format!("{r:?}"),
        alloc::format!(
            "ValueRecord {{ value_type: {:?}, key_size: 4, value_size: 8, .. }}",
            ValueType::REG_DWORD
        )
    );
}
