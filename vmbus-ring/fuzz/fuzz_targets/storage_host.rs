//! The storvsp host state machine fed arbitrary packets (any type, any payload, in any state):
//! never a panic; every answer is a COMPLETE_IO of 12..=64 bytes; a command to execute always
//! carries a buffer covering its length, within the configured maximum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbus_ring::packet::{Packet, PacketRepr};
use vmbus_ring::storvsc::host::{HostAction, HostConfig, ScsiOutcome, StorageHost};
use vmbus_ring::storvsc::Operation;

fuzz_target!(|data: &[u8]| {
    let config = HostConfig::default();
    let mut host = StorageHost::new(config);
    // Length-prefixed raw packets (descriptor included).
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        let Ok(packet) = Packet::new_checked(bytes) else {
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
                if let Some(b) = cmd.buffer {
                    assert!(b.byte_count >= cmd.len && cmd.len <= config.max_transfer_bytes);
                } else {
                    assert_eq!(cmd.len, 0);
                }
                let done = host.complete(&cmd, &ScsiOutcome::good(cmd.len));
                assert_eq!(done.operation(), Operation::COMPLETE_IO);
            }
            HostAction::Drop(_) => {}
        }
    }
});
