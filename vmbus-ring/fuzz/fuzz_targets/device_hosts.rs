//! The storvsp and netvsp host state machines fed arbitrary packets (any type, any payload, in
//! any state) and arbitrary RNDIS streams: never a panic. Storage answers are COMPLETE_IO of
//! 12..=64 bytes and commands carry a buffer covering their length; network frames lie inside
//! their stream, receive slots are never handed out twice while in flight.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use vmbus_ring::netvsc::host::{NetAction, NetConfig, NetHost};
use vmbus_ring::packet::{Packet, PacketRepr};
use vmbus_ring::storvsc::host::{HostAction, HostConfig, ScsiOutcome, StorageHost};
use vmbus_ring::storvsc::Operation;

fn storage(data: &[u8]) {
    let config = HostConfig::default();
    let mut host = StorageHost::new(config);
    for repr in packets(data) {
        let Ok(packet) = Packet::new_checked(repr) else {
            continue;
        };
        let Ok(repr) = PacketRepr::parse(&packet) else {
            continue;
        };
        match host.handle(&repr) {
            HostAction::Reply(p, n) => {
                assert_eq!(p.operation(), Operation::COMPLETE_IO);
                assert!((12..=64).contains(&p.bytes(n).len()));
            }
            HostAction::Execute(cmd) => {
                match cmd.buffer {
                    Some(b) => {
                        assert!(b.byte_count >= cmd.len && cmd.len <= config.max_transfer_bytes)
                    }
                    None => assert_eq!(cmd.len, 0),
                }
                let done = host.complete(&cmd, &ScsiOutcome::good(cmd.len));
                assert_eq!(done.operation(), Operation::COMPLETE_IO);
            }
            _ => {}
        }
    }
}

fn network(data: &[u8]) {
    let mut host = NetHost::new(NetConfig::new([0, 0x15, 0x5d, 0, 0, 1]));
    let mut in_flight = BTreeSet::new();
    for (i, bytes) in packets(data).enumerate() {
        // Every few packets: hand out a receive slot (it must not be in flight already).
        if i % 3 == 2 {
            if let Some(slot) = host.receive_slot() {
                assert!(in_flight.insert(slot.transaction_id));
            }
        }
        let Ok(packet) = Packet::new_checked(bytes) else {
            // Not a packet: use the bytes as an RNDIS stream on both channels.
            for channel in [0, 1] {
                let out = host.rndis(channel, bytes);
                for f in &out.frames {
                    assert!(f.start <= f.end && f.end <= bytes.len());
                }
            }
            continue;
        };
        let Ok(repr) = PacketRepr::parse(&packet) else {
            continue;
        };
        match host.handle(&repr) {
            NetAction::MapBuffer { .. } => {
                let len = bytes.len() as u64 * 4096;
                let _ = host.buffer_mapped(Some(len));
                in_flight.clear();
            }
            NetAction::Nothing if repr.kind == vmbus_ring::packet::PacketKind::Completion => {
                in_flight.remove(&repr.transaction_id);
            }
            _ => {}
        }
    }
}

/// Length-prefixed chunks.
fn packets(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (&len, tail) = rest.split_first()?;
        let len = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&b, rest)) if b & 1 == 0 => storage(rest),
        Some((_, rest)) => network(rest),
        None => {}
    }
});
