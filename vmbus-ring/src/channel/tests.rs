//! Host and guest state machines talking through message payloads, for every version.

use alloc::vec::Vec;

use super::client::{Client, ClientEvent, Outgoing, LINUX_VERSIONS};
use super::messages::{ChannelMessage, VmbusVersion};
use super::server::{Action, Dropped, OfferSpec, Server, ServerConfig, STATUS_UNSUCCESSFUL};
use super::{interface, Guid};
use zerocopy::FromZeros;

const IC_SERVICES: [Guid; 4] = [
    interface::HEARTBEAT,
    interface::SHUTDOWN,
    interface::TIMESYNC,
    interface::KVP,
];

/// Delivers client messages to the server and the server's answers back until quiet.
fn pump(
    server: &mut Server,
    client: &mut Client,
    first: Vec<Outgoing>,
) -> (Vec<ClientEvent>, Vec<Action>, Vec<Dropped>) {
    let (mut events, mut actions, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
    let mut to_host = first;
    while !to_host.is_empty() {
        let mut to_guest = Vec::new();
        for m in to_host.drain(..) {
            let out = server.handle_message(&m.payload);
            actions.extend(out.actions);
            dropped.extend(out.dropped);
            to_guest.extend(out.messages);
        }
        for m in to_guest {
            let (ev, replies) = client.handle_message(&m);
            events.extend(ev);
            to_host.extend(replies);
        }
    }
    (events, actions, dropped)
}

/// A 5.3 server with the IC offers, and a Linux-like client connected to it.
fn connected() -> (Server, Vec<u32>, Client) {
    let (mut server, relids) = server_with_ics(VmbusVersion::WIN10_V5_3);
    let mut client = Client::new(&LINUX_VERSIONS, 0, (0, 0));
    let first = client.connect().into_iter().collect();
    pump(&mut server, &mut client, first);
    (server, relids, client)
}

fn server_with_ics(max: VmbusVersion) -> (Server, Vec<u32>) {
    let mut server = Server::new(ServerConfig {
        max_version: max,
        ..ServerConfig::default()
    });
    let relids = IC_SERVICES
        .iter()
        .enumerate()
        .map(|(i, g)| {
            server
                .add_offer(OfferSpec::pipe(
                    *g,
                    Guid::from_fields(i as u32, 0, 0, [0; 8]),
                ))
                .0
                .unwrap()
        })
        .collect();
    (server, relids)
}

fn conversation(max: VmbusVersion) {
    let (mut server, relids) = server_with_ics(max);
    let mut client = Client::new(&LINUX_VERSIONS, 0, (0x10_000, 0x11_000));
    let first = client.connect().into_iter().collect();
    let (events, actions, dropped) = pump(&mut server, &mut client, first);
    // The client walks down from 5.3 until the server accepts `max`.
    assert_eq!(client.version(), Some(max));
    assert_eq!(
        actions,
        [Action::Connected {
            version: max,
            target_vcpu: 0
        }]
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(server.version(), Some(max));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Offer(_)))
            .count(),
        4
    );
    assert_eq!(events.last(), Some(&ClientEvent::AllOffersDelivered));
    assert_eq!(
        client
            .offers()
            .values()
            .map(|o| o.if_type)
            .collect::<Vec<_>>(),
        IC_SERVICES
    );
    // Each offer is a message-mode pipe, signalled on its relid with the message SINT in
    // bits 12.. (relid | 2 << 12).
    for (o, &relid) in client.offers().values().zip(&relids) {
        assert_eq!(o.child_relid.get(), relid);
        assert_eq!(o.connection_id.get(), 0x2000 + relid);
        assert_eq!(o.chn_flags.get(), 0x11);
        assert_eq!(o.user_def[..4], [4, 0, 0, 0]);
    }

    // Open the four IC channels: a small ring GPADL each (2 + 2 pages); the heartbeat one
    // uses a large multi-body GPADL (100 pages).
    let mut gpadls = Vec::new();
    for (i, &relid) in relids.iter().enumerate() {
        let pages = if i == 0 { 100 } else { 4 };
        let pfns: Vec<u64> = (0..pages).map(|p| 0x200 + 0x100 * i as u64 + p).collect();
        let (id, mut msgs) = client.create_gpadl(relid, &pfns).unwrap();
        assert_eq!(msgs.len(), if i == 0 { 4 } else { 1 });
        // The header alone: a one-message GPADL is complete, a longer one is counted while
        // it is being assembled but cannot be used yet.
        let rest = msgs.split_off(1);
        let first = server.handle_message(&msgs[0].payload);
        assert!(first.dropped.is_empty(), "{:?}", first.dropped);
        assert_eq!(server.gpadl_count(), i + 1);
        assert_eq!(server.gpadl(id).is_some(), rest.is_empty());
        let mut events = Vec::new();
        for m in first.messages {
            events.extend(client.handle_message(&m).0);
        }
        let (more, _, dropped) = pump(&mut server, &mut client, rest);
        events.extend(more);
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(server.gpadl_count(), i + 1);
        assert_eq!(
            events,
            [ClientEvent::GpadlCreated {
                gpadl_id: id,
                status: 0
            }]
        );
        assert_eq!(server.gpadl(id).unwrap().len(), pages * 4096);
        let open = client.open_channel(relid, id, pages as u32 / 2, 0);
        let (events, actions, _) = pump(&mut server, &mut client, alloc::vec![open]);
        assert_eq!(events, [ClientEvent::Opened { relid, status: 0 }]);
        assert!(
            matches!(actions[..], [Action::OpenChannel { relid: r, gpadl_id, downstream_page_offset, connection_id, .. }]
            if r == relid && gpadl_id == id && downstream_page_offset == pages as u32 / 2
                && connection_id == 0x2000 + relid)
        );
        gpadls.push(id);
    }

    // MODIFYCHANNEL from 4.1; answered from 5.3.
    let (events, actions, dropped) = {
        let m = alloc::vec![client.modify_channel(relids[0], 1)];
        pump(&mut server, &mut client, m)
    };
    if max.0 >= VmbusVersion::WIN10_V4_1.0 {
        assert_eq!(
            actions,
            [Action::ModifyChannel {
                relid: relids[0],
                target_vp: 1
            }]
        );
        let answered = max.0 >= VmbusVersion::WIN10_V5_3.0;
        assert_eq!(events.len(), usize::from(answered));
    } else {
        assert!(actions.is_empty() && matches!(dropped[..], [Dropped::Unsupported(_)]));
    }

    // Teardown before close is deferred until the channel closes.
    let (events, actions, _) = {
        let m = alloc::vec![client.teardown_gpadl(relids[1], gpadls[1])];
        pump(&mut server, &mut client, m)
    };
    assert!(events.is_empty() && actions.is_empty());
    let (events, actions, _) = {
        let m = alloc::vec![client.close_channel(relids[1])];
        pump(&mut server, &mut client, m)
    };
    assert_eq!(
        actions,
        [
            Action::CloseChannel { relid: relids[1] },
            Action::GpadlReleased {
                gpadl_id: gpadls[1]
            }
        ]
    );
    assert_eq!(
        events,
        [ClientEvent::GpadlTorndown {
            gpadl_id: gpadls[1]
        }]
    );

    // Rescind: the guest closes and releases; only then is the relid free.
    let out = server.rescind(relids[2]);
    let mut events = Vec::new();
    for m in out.messages {
        events.extend(client.handle_message(&m).0);
    }
    assert_eq!(events, [ClientEvent::Rescinded { relid: relids[2] }]);
    let msgs = alloc::vec![
        client.close_channel(relids[2]),
        client.teardown_gpadl(relids[2], gpadls[2]),
        client.release_relid(relids[2])
    ];
    let (_, actions, dropped) = pump(&mut server, &mut client, msgs);
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(
        actions.last(),
        Some(&Action::RelidReleased { relid: relids[2] })
    );
    assert!(!server.relids().any(|r| r == relids[2]));

    // UNLOAD resets everything; nothing the guest allocated survives.
    let (events, actions, _) = {
        let m = alloc::vec![client.unload()];
        pump(&mut server, &mut client, m)
    };
    assert_eq!(events, [ClientEvent::Unloaded]);
    assert_eq!(actions.last(), Some(&Action::Reset));
    assert_eq!(
        actions
            .iter()
            .filter(|a| matches!(a, Action::CloseChannel { .. }))
            .count(),
        2
    );
    assert_eq!(server.gpadl_count(), 0);
    assert!(server.version().is_none());
    assert_eq!(server.relids().count(), 3);

    // Reconnect after unload (what a kexec'd kernel does).
    let first = client.connect().into_iter().collect();
    let (events, _, _) = pump(&mut server, &mut client, first);
    assert_eq!(client.version(), Some(max));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Offer(_)))
            .count(),
        3
    );
}

#[test]
fn full_conversation_at_every_version() {
    for v in [
        VmbusVersion::WIN8,
        VmbusVersion::WIN8_1,
        VmbusVersion::WIN10,
        VmbusVersion::WIN10_V4_1,
        VmbusVersion::WIN10_V5,
        VmbusVersion::WIN10_V5_1,
        VmbusVersion::WIN10_V5_2,
        VmbusVersion::WIN10_V5_3,
    ] {
        conversation(v);
    }
}

#[test]
fn bad_requests_get_the_documented_answers() {
    let (mut server, relids) = server_with_ics(VmbusVersion::WIN10_V5_3);
    let mut client = Client::new(&LINUX_VERSIONS, 0, (0, 0));
    // Before connecting, everything but INITIATE_CONTACT is dropped.
    let out = server.handle_message(&ChannelMessage::RequestOffers.emit());
    assert!(matches!(out.dropped[..], [Dropped::NotConnected(_)]) && out.messages.is_empty());
    let first = client.connect().into_iter().collect();
    pump(&mut server, &mut client, first);
    // A second INITIATE_CONTACT without UNLOAD.
    let again = client.connect().unwrap();
    assert!(matches!(
        server.handle_message(&again.payload).dropped[..],
        [Dropped::AlreadyConnected]
    ));
    // A GPADL for an unknown relid: GPADL_CREATED with a failure status.
    let (id, msgs) = client.create_gpadl(999, &[1, 2, 3, 4]).unwrap();
    let out = server.handle_message(&msgs[0].payload);
    assert_eq!(
        ChannelMessage::parse(&out.messages[0]).unwrap(),
        ChannelMessage::GpadlCreated {
            child_relid: 999,
            gpadl: id,
            status: STATUS_UNSUCCESSFUL
        }
    );
    // Opening with an unknown GPADL, or a GPADL of another channel: OPENCHANNEL_RESULT failure.
    let (id, msgs) = client.create_gpadl(relids[0], &[1, 2, 3, 4]).unwrap();
    pump(&mut server, &mut client, msgs);
    for (relid, gpadl) in [(relids[1], 0xdead), (relids[1], id)] {
        let out = server.handle_message(&client.open_channel(relid, gpadl, 2, 0).payload);
        assert!(matches!(
            ChannelMessage::parse(&out.messages[0]).unwrap(),
            ChannelMessage::OpenChannelResult {
                status: STATUS_UNSUCCESSFUL,
                ..
            }
        ));
        assert!(out.actions.is_empty());
    }
    // A downstream offset that leaves no room for the second ring.
    let out = server.handle_message(&client.open_channel(relids[0], id, 3, 0).payload);
    assert!(out.actions.is_empty());
    // Duplicate GPADL id, teardown of an unknown GPADL, close of a closed channel, release of a
    // relid that was never rescinded, host-only messages from the guest, garbage.
    let dup = super::messages::GpadlHeader {
        child_relid: relids[0],
        gpadl: id,
        range_buflen: 16,
        range_count: 1,
        values: alloc::vec![4096, 7],
    };
    assert!(!server
        .handle_message(&ChannelMessage::GpadlHeader(dup).emit())
        .dropped
        .is_empty());
    for m in [
        client.teardown_gpadl(relids[0], 0xbeef).payload,
        client.close_channel(relids[3]).payload,
        client.release_relid(relids[3]).payload,
        ChannelMessage::AllOffersDelivered.emit(),
        alloc::vec![0xff; 7],
        alloc::vec![27, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let out = server.handle_message(&m);
        assert_eq!(out.dropped.len(), 1, "{m:?}");
        assert!(out.actions.is_empty());
    }
}

/// A range header value: byte count in the low half, byte offset in the high half.
fn range(byte_count: u64, byte_offset: u64) -> u64 {
    byte_offset << 32 | byte_count
}

#[test]
fn padded_gpadl_messages_are_accepted() {
    // UEFI posts every message at the full 240 bytes: 220 after a header's fixed part.
    let (mut server, relids, mut client) = connected();
    for pages in [4u64, 200] {
        // 200 pages take a header and bodies.
        let pfns: Vec<u64> = (0x40..0x40 + pages).collect();
        let (id, msgs) = client.create_gpadl(relids[0], &pfns).unwrap();
        assert_eq!(msgs.len() > 1, pages > 26);
        let mut answers = Vec::new();
        for m in msgs {
            let mut p = m.payload;
            p.resize(240, 0);
            let out = server.handle_message(&p);
            assert!(out.dropped.is_empty(), "{:?}", out.dropped);
            answers.extend(out.messages);
        }
        assert_eq!(
            answers
                .iter()
                .map(|m| ChannelMessage::parse(m).unwrap())
                .collect::<Vec<_>>(),
            [ChannelMessage::GpadlCreated {
                child_relid: relids[0],
                gpadl: id,
                status: 0
            }]
        );
        assert_eq!(server.gpadl(id).unwrap().len(), 4096 * pages);
    }
}

#[test]
fn a_gpadl_failing_in_its_body_is_answered_with_its_channel() {
    let (mut server, relids, _) = connected();
    let header = super::messages::GpadlHeader {
        child_relid: relids[1],
        gpadl: 0x21,
        range_buflen: 32,
        range_count: 2,
        values: alloc::vec![range(4096, 0), 0x42],
    };
    let out = server.handle_message(&ChannelMessage::GpadlHeader(header).emit());
    assert!(out.messages.is_empty() && out.dropped.is_empty());
    // The second range is empty: the assembly fails when it completes.
    let body = super::messages::GpadlBody {
        msgnumber: 0,
        gpadl: 0x21,
        values: alloc::vec![0, 0x43],
    };
    let out = server.handle_message(&ChannelMessage::GpadlBody(body).emit());
    assert_eq!(
        ChannelMessage::parse(&out.messages[0]).unwrap(),
        ChannelMessage::GpadlCreated {
            child_relid: relids[1],
            gpadl: 0x21,
            status: STATUS_UNSUCCESSFUL
        }
    );
    assert!(server.gpadl(0x21).is_none());
}

#[test]
fn channels_open_only_over_ring_shaped_gpadls() {
    let (mut server, relids, client) = connected();
    // Eight pages' worth of bytes, but not one range of whole pages at offset 0.
    let pfns: Vec<u64> = (0x40..0x49).collect();
    let shapes: [(u16, Vec<u64>); 2] = [
        (
            1,
            core::iter::once(range(8 * 4096, 0x800))
                .chain(pfns.iter().copied())
                .collect(),
        ),
        (
            2,
            [
                range(4 * 4096, 0),
                1,
                2,
                3,
                4,
                range(4 * 4096, 0),
                5,
                6,
                7,
                8,
            ]
            .to_vec(),
        ),
    ];
    for (k, (count, values)) in shapes.into_iter().enumerate() {
        let id = 0x30 + k as u32;
        let header = super::messages::GpadlHeader {
            child_relid: relids[0],
            gpadl: id,
            range_buflen: 8 * values.len() as u16,
            range_count: count,
            values,
        };
        let out = server.handle_message(&ChannelMessage::GpadlHeader(header).emit());
        assert!(matches!(
            ChannelMessage::parse(&out.messages[0]).unwrap(),
            ChannelMessage::GpadlCreated { status: 0, .. }
        ));
        let out = server.handle_message(&client.open_channel(relids[0], id, 4, 0).payload);
        assert!(out.actions.is_empty());
        assert_eq!(
            out.dropped,
            [Dropped::BadRing {
                relid: relids[0],
                gpadl_id: id
            }]
        );
        assert!(matches!(
            ChannelMessage::parse(&out.messages[0]).unwrap(),
            ChannelMessage::OpenChannelResult {
                status: STATUS_UNSUCCESSFUL,
                ..
            }
        ));
    }
}

/// The guest→host ring is the first `offset` pages and the host→guest ring the rest; each
/// needs its header page and at least one data page. The VP to interrupt is the guest's
/// choice (Windows 8, the oldest version this server negotiates, introduced it).
#[test]
fn open_needs_two_pages_a_ring_and_takes_the_guests_target_vp() {
    for version in [VmbusVersion::WIN10_V5_3, VmbusVersion::WIN8] {
        let (mut server, relids) = server_with_ics(version);
        let mut client = Client::new(&[version], 0, (0, 0));
        let first = client.connect().into_iter().collect();
        pump(&mut server, &mut client, first);
        assert_eq!(server.version(), Some(version));
        let relid = relids[1];
        let pfns: Vec<u64> = (0x80..0x88).collect();
        let (id, msgs) = client.create_gpadl(relid, &pfns).unwrap();
        pump(&mut server, &mut client, msgs);
        for offset in [0, 1, 7, 8, 9] {
            let out = server.handle_message(&client.open_channel(relid, id, offset, 3).payload);
            assert!(out.actions.is_empty(), "{version:?} offset {offset}");
            assert_eq!(
                out.dropped,
                [Dropped::BadRing {
                    relid,
                    gpadl_id: id
                }]
            );
        }
        let out = server.handle_message(&client.open_channel(relid, id, 6, 3).payload);
        assert!(out.dropped.is_empty(), "{:?}", out.dropped);
        assert_eq!(
            out.actions,
            [Action::OpenChannel {
                relid,
                gpadl_id: id,
                downstream_page_offset: 6,
                target_vp: 3,
                connection_id: 0x2000 + relid,
            }],
            "{version:?}"
        );
        // Neither an open channel nor a rescinded one can be opened.
        let rescinded = relids[2];
        server.rescind(rescinded);
        for r in [relid, rescinded] {
            let out = server.handle_message(&client.open_channel(r, id, 6, 3).payload);
            assert!(out.actions.is_empty());
            assert_eq!(
                out.dropped,
                [Dropped::BadRelid {
                    msgtype: super::messages::MessageType::OPEN_CHANNEL,
                    relid: r
                }]
            );
            assert!(matches!(
                ChannelMessage::parse(&out.messages[0]),
                Ok(ChannelMessage::OpenChannelResult { child_relid, status: STATUS_UNSUCCESSFUL, .. })
                    if child_relid == r
            ));
        }
    }
}

/// Before 5.0 VERSION_RESPONSE carries the selected version where 5.0 put the message
/// connection id, which this server answers as 1; a refusal carries 0.
#[test]
fn version_response_connection_field_by_version() {
    for (requested, want) in [
        (VmbusVersion::WIN10_V4_1, (true, 0x0004_0001)),
        (VmbusVersion::WIN10_V5, (true, 1)),
        (VmbusVersion::WIN10_V5_3, (true, 1)),
        (VmbusVersion::COPPER, (false, 0)),
    ] {
        let mut server = Server::new(ServerConfig {
            max_version: VmbusVersion::WIN10_V5_3,
            ..ServerConfig::default()
        });
        let contact = Client::new(&[requested], 0, (0, 0)).connect().unwrap();
        let out = server.handle_message(&contact.payload);
        match ChannelMessage::parse(&out.messages[0]) {
            Ok(ChannelMessage::VersionResponse {
                version_supported,
                msg_conn_id,
                ..
            }) => assert_eq!((version_supported, msg_conn_id), want, "{requested:?}"),
            other => panic!("{other:?}"),
        }
    }
}

/// Hyper-V sockets are not offered: TL_CONNECT_REQUEST is answered with a failed
/// TL_CONNECT_RESULT for the same endpoints, and reported as unsupported.
#[test]
fn tl_connect_requests_are_refused_with_their_endpoints() {
    let (mut server, _, _) = connected();
    let mut req = super::messages::TlConnectRequest::new_zeroed();
    req.guest_endpoint = Guid::from_fields(1, 2, 3, [4; 8]);
    req.host_service = Guid::from_fields(5, 6, 7, [8; 8]);
    let out = server.handle_message(&ChannelMessage::TlConnectRequest(req, None).emit());
    assert_eq!(
        out.dropped,
        [Dropped::Unsupported(
            super::messages::MessageType::TL_CONNECT_REQUEST
        )]
    );
    match ChannelMessage::parse(&out.messages[0]) {
        Ok(ChannelMessage::TlConnectResult(r)) => {
            assert_eq!(r.guest_endpoint, req.guest_endpoint);
            assert_eq!(r.host_service, req.host_service);
            assert_eq!(r.status.get(), STATUS_UNSUCCESSFUL);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.messages.len(), 1);
}

/// The highest relid signals on 0x27FF: the relid keeps all its 11 bits under the SINT.
#[test]
fn channel_connection_ids_put_the_message_sint_above_the_relid() {
    assert_eq!(Server::connection_id(1), 0x2001);
    assert_eq!(Server::connection_id(0x7FF), 0x27FF);
}

/// From 5.0 on, a client sends on the connection id the host's VERSION_RESPONSE names; before
/// 5.0 it stays on connection 1 whatever the answer says.
#[test]
fn the_client_sends_on_the_connection_the_host_names_from_5_0() {
    for (version, contact_on, then_on) in [
        (VmbusVersion::WIN10_V4_1, 1, 1),
        (VmbusVersion::WIN10_V5, 4, 0x77),
        (VmbusVersion::WIN10_V5_3, 4, 0x77),
    ] {
        let mut client = Client::new(&[version], 0, (0, 0));
        assert_eq!(client.connect().unwrap().connection_id, contact_on);
        let answer = ChannelMessage::VersionResponse {
            version_supported: true,
            connection_state: 0,
            msg_conn_id: 0x77,
        }
        .emit();
        let (events, replies) = client.handle_message(&answer);
        assert_eq!(events, [ClientEvent::Connected { version }]);
        assert_eq!(
            replies,
            [Outgoing {
                connection_id: then_on,
                payload: ChannelMessage::RequestOffers.emit(),
            }],
            "{version:?}"
        );
        assert_eq!(client.open_channel(1, 2, 1, 0).connection_id, then_on);
    }
}

#[test]
fn a_client_without_versions_fails_to_connect_and_ignores_answers() {
    let mut client = Client::new(&[], 0, (0, 0));
    assert!(client.connect().is_none());
    let answer = ChannelMessage::VersionResponse {
        version_supported: true,
        connection_state: 0,
        msg_conn_id: 4,
    }
    .emit();
    let (events, replies) = client.handle_message(&answer);
    assert!(replies.is_empty());
    assert!(!events
        .iter()
        .any(|e| matches!(e, ClientEvent::Connected { .. })));
}

#[test]
fn refused_gpadls_are_forgotten_and_answered_with_a_failure() {
    let (mut server, relids, mut client) = connected();
    // "RAM" is PFNs 0..0x100: a one-message GPADL and one long enough to need body messages,
    // each with a single page outside, are refused when complete; one inside is accepted.
    let in_ram = |g: &crate::gpadl::Gpadl| g.pfns().all(|p| p < 0x100);
    let long: Vec<u64> = (0..600)
        .map(|i| if i == 599 { 0x100 } else { i % 0x100 })
        .collect();
    for pfns in [&[1, 2, 0x1_0000_0000, 4][..], &long[..]] {
        let (id, msgs) = client.create_gpadl(relids[0], pfns).unwrap();
        let mut answers = Vec::new();
        let mut dropped = Vec::new();
        for m in &msgs {
            let out = server.handle_message_checked(&m.payload, in_ram);
            answers.extend(out.messages);
            dropped.extend(out.dropped);
        }
        assert_eq!(
            answers
                .iter()
                .map(|m| ChannelMessage::parse(m).unwrap())
                .collect::<Vec<_>>(),
            [ChannelMessage::GpadlCreated {
                child_relid: relids[0],
                gpadl: id,
                status: STATUS_UNSUCCESSFUL
            }]
        );
        assert_eq!(dropped, [Dropped::GpadlRefused { gpadl_id: id }]);
        assert!(server.gpadl(id).is_none());
        assert_eq!(server.gpadl_count(), 0);
        // Opening over the refused GPADL fails too.
        let out = server.handle_message(&client.open_channel(relids[0], id, 2, 0).payload);
        assert!(out.actions.is_empty());
    }
    let (id, msgs) = client.create_gpadl(relids[0], &[1, 2, 3, 0xff]).unwrap();
    let out = server.handle_message_checked(&msgs[0].payload, in_ram);
    assert!(out.dropped.is_empty());
    assert!(matches!(
        ChannelMessage::parse(&out.messages[0]).unwrap(),
        ChannelMessage::GpadlCreated { status: 0, .. }
    ));
    assert!(server.gpadl(id).is_some());
}

#[test]
fn version_refusals_fall_back_and_can_fail() {
    let mut server = Server::new(ServerConfig {
        min_version: VmbusVersion::WIN10_V5,
        max_version: VmbusVersion::WIN10_V5,
        ..ServerConfig::default()
    });
    let mut client = Client::new(&[VmbusVersion::WIN10_V5_3, VmbusVersion::WIN8], 0, (0, 0));
    let first = client.connect().into_iter().collect();
    let (events, actions, _) = pump(&mut server, &mut client, first);
    assert_eq!(events, [ClientEvent::ConnectFailed]);
    assert!(actions.is_empty());
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// A guest message: mostly well-formed protocol messages with small ids (so they hit real
    /// state), some arbitrary bytes.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        let relid = 0u32..6;
        let gpadl = 0xE1E10u32..0xE1E14;
        prop_oneof![
            (0usize..9).prop_map(|i| LINUX_VERSIONS.get(i).map_or(alloc::vec![0; 40], |v| {
                let mut c = Client::new(&[*v], 0, (0, 0));
                c.connect().unwrap().payload
            })),
            Just(ChannelMessage::RequestOffers.emit()),
            (relid.clone(), gpadl.clone(), 1u64..40).prop_map(|(r, g, pages)| {
                let mut c = Client::new(&LINUX_VERSIONS, 0, (0, 0));
                let pfns: Vec<u64> = (0..pages).collect();
                let mut m = c.create_gpadl(r, &pfns).unwrap().1;
                // Re-id the GPADL and send only some of its messages.
                let n = (pages as usize % m.len()) + 1;
                m.truncate(n);
                let mut bytes = m.swap_remove(0).payload;
                bytes[12..16].copy_from_slice(&g.to_le_bytes());
                bytes
            }),
            (relid.clone(), gpadl.clone(), 0u32..6).prop_map(|(r, g, off)| Client::new(
                &LINUX_VERSIONS,
                0,
                (0, 0)
            )
            .open_channel(r, g, off, 0)
            .payload),
            relid
                .clone()
                .prop_map(|r| ChannelMessage::CloseChannel { child_relid: r }.emit()),
            (relid.clone(), gpadl).prop_map(|(r, g)| ChannelMessage::GpadlTeardown {
                child_relid: r,
                gpadl: g
            }
            .emit()),
            relid
                .clone()
                .prop_map(|r| ChannelMessage::RelidReleased { child_relid: r }.emit()),
            (relid, 0u32..4).prop_map(|(r, vp)| ChannelMessage::ModifyChannel {
                child_relid: r,
                target_vp: vp
            }
            .emit()),
            Just(ChannelMessage::Unload.emit()),
            prop::collection::vec(any::<u8>(), 0..260),
        ]
    }

    proptest! {
        #![proptest_config(crate::test_config())]

        #[test]
        fn arbitrary_sequences_never_panic_or_leak(msgs in prop::collection::vec(message(), 1..60), rescind in 0u32..6) {
            let (mut server, _) = server_with_ics(VmbusVersion::WIN10_V5_3);
            let mut open = alloc::collections::BTreeSet::new();
            for (i, m) in msgs.iter().enumerate() {
                if i == msgs.len() / 2 {
                    let _ = server.rescind(rescind);
                }
                let out = server.handle_message(m);
                for a in &out.actions {
                    match a {
                        Action::OpenChannel { relid, .. } => prop_assert!(open.insert(*relid), "opened twice"),
                        Action::CloseChannel { relid } => prop_assert!(open.remove(relid), "closed a closed channel"),
                        _ => {}
                    }
                }
                for reply in &out.messages {
                    prop_assert!(reply.len() <= super::super::messages::MAX_PAYLOAD);
                    prop_assert!(ChannelMessage::parse(reply).is_ok());
                }
                // The model of open channels matches the server's.
                for relid in 1..6 {
                    prop_assert_eq!(server.is_open(relid), open.contains(&relid));
                }
            }
            // UNLOAD from a connected state releases everything.
            if server.version().is_none() {
                let mut c = Client::new(&LINUX_VERSIONS, 0, (0, 0));
                server.handle_message(&c.connect().unwrap().payload);
            }
            let out = server.handle_message(&ChannelMessage::Unload.emit());
            prop_assert_eq!(out.actions.last(), Some(&Action::Reset));
            prop_assert_eq!(server.gpadl_count(), 0);
            prop_assert!((1..6).all(|r| !server.is_open(r)));
        }
    }
}

/// Linux 6.1 asks for 5.3, 5.2, 5.1, 5.0, 4.1, 4.0, 3.0, 2.4 in that order (WIN7 and WS2008 are
/// gone); INITIATE_CONTACT for ≥ 5.0 goes to connection 4 with the message SINT in byte 16.
#[test]
fn linux_version_order_and_contact_layout() {
    let values: Vec<u32> = LINUX_VERSIONS.iter().map(|v| v.0).collect();
    assert_eq!(
        values,
        [0x50003, 0x50002, 0x50001, 0x50000, 0x40001, 0x40000, 0x30000, 0x20004]
    );
    let mut c = Client::new(&LINUX_VERSIONS, 0, (0, 0));
    let first = c.connect().unwrap();
    assert_eq!(first.connection_id, 4);
    assert_eq!(first.payload.len(), 40);
    assert_eq!(first.payload[16], 2);
    let mut old = Client::new(&[VmbusVersion::WIN10], 0, (0, 0));
    let contact = old.connect().unwrap();
    assert_eq!((contact.connection_id, contact.payload[16]), (1, 0));
}
