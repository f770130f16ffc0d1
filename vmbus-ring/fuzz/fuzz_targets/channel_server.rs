//! The host channel-management state machine fed arbitrary guest message sequences (and
//! arbitrary IC packets for the host and guest services): never a panic, every reply parses,
//! the open-channel set matches the actions, and UNLOAD leaves no GPADL behind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbus_ring::channel::client::{Client, LINUX_VERSIONS};
use vmbus_ring::channel::server::{Action, OfferSpec, Server, ServerConfig};
use vmbus_ring::channel::{interface, ChannelMessage, Guid};
use vmbus_ring::ic::guest::{GuestService, MemKvpStore};
use vmbus_ring::ic::host::{HostConfig, HostService, Now, Service};

fuzz_target!(|data: &[u8]| {
    let mut server = Server::new(ServerConfig::default());
    for (i, g) in [
        interface::HEARTBEAT,
        interface::SHUTDOWN,
        interface::TIMESYNC,
        interface::KVP,
    ]
    .iter()
    .enumerate()
    {
        let _ = server.add_offer(OfferSpec::pipe(
            *g,
            Guid::from_fields(i as u32, 0, 0, [0; 8]),
        ));
    }
    // Connect first half the time so deeper states are reachable.
    if data.first().is_some_and(|b| b & 1 == 1) {
        let mut c = Client::new(&LINUX_VERSIONS, 0, (0, 0));
        if let Some(m) = c.connect() {
            server.handle_message(&m.payload);
        }
    }
    let mut open = std::collections::BTreeSet::new();
    // The rest: length-prefixed messages.
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (msg, tail) = tail.split_at(n);
        rest = tail;
        let out = server.handle_message(msg);
        for a in &out.actions {
            match a {
                Action::OpenChannel { relid, .. } => assert!(open.insert(*relid)),
                Action::CloseChannel { relid } => assert!(open.remove(relid)),
                _ => {}
            }
        }
        for reply in &out.messages {
            assert!(ChannelMessage::parse(reply).is_ok());
        }
        // The same bytes as IC packets, to both sides of every service.
        for service in [
            Service::Heartbeat,
            Service::Shutdown,
            Service::TimeSync,
            Service::Kvp,
        ] {
            let mut host = HostService::new(service, HostConfig::default());
            let _ = host.on_open(Now::default());
            let _ = host.on_packet(Now::default(), msg);
            let _ = GuestService::new(service).on_packet(msg, &mut MemKvpStore::new());
        }
    }
    if server.version().is_some() {
        let out = server.handle_message(&ChannelMessage::Unload.emit());
        assert_eq!(out.actions.last(), Some(&Action::Reset));
        assert_eq!(server.gpadl_count(), 0);
    }
});
