//! Test support: a VMBus server with one channel and its GPADLs, set up through the real
//! message path (a `vmbus-ring` client connects and creates the GPADLs).

use vmbus_ring::channel::client::{Client, LINUX_VERSIONS};
use vmbus_ring::channel::server::{OfferSpec, Server, ServerConfig};
use vmbus_ring::channel::Guid;

/// A server offering one channel of `if_type`, connected, holding one GPADL over `pfns`;
/// returns the server and the GPADL's id.
pub fn server_with_ring(if_type: Guid, pfns: &[u64]) -> (Server, u32) {
    let (server, ids) = server_with_gpadls(if_type, &[pfns]);
    (server, ids[0])
}

/// A server offering one channel of `if_type`, connected, holding one GPADL over each page
/// list of `gpadls`, in order; returns the server and the GPADLs' ids.
pub fn server_with_gpadls(if_type: Guid, gpadls: &[&[u64]]) -> (Server, Vec<u32>) {
    let mut server = Server::new(ServerConfig::default());
    let spec = OfferSpec {
        if_type,
        if_instance: Guid::from_fields(1, 2, 3, [4; 8]),
        flags: 0,
        user_def: [0; 120],
    };
    let relid = server.add_offer(spec).0.expect("offer");
    let mut client = Client::new(&LINUX_VERSIONS, 0, (0x1000, 0x2000));
    let mut to_host = vec![client.connect().expect("connect").payload];
    while let Some(m) = to_host.pop() {
        for reply in server.handle_message(&m).messages {
            let (_, outgoing) = client.handle_message(&reply);
            to_host.extend(outgoing.into_iter().map(|o| o.payload));
        }
    }
    let mut ids = Vec::new();
    for pfns in gpadls {
        let (id, msgs) = client.create_gpadl(relid, pfns).expect("gpadl");
        for m in msgs {
            assert!(server.handle_message(&m.payload).dropped.is_empty());
        }
        ids.push(id);
    }
    (server, ids)
}
