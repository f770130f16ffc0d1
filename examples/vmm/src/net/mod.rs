//! Synthetic networking: each VM's adapter ([`netvsp::NetChannel`]) is a port of one
//! `vswitch-core` bridge shared by the VMs of this process ([`Hub`]).
//!
//! A frame a guest sends goes through the bridge at once (on the sending VM's thread); the
//! bridge's transmit actions are queued per destination port, and each VM delivers its queue
//! into its guest's receive buffer the next time it services VMBus (after any exit, at least
//! every tick).

pub mod netvsp;
pub mod tap;
#[cfg(test)]
pub mod testing;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use vswitch_core::frame::MacAddr;
use vswitch_core::vlan::VlanConfig;
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, PortId, RxFrame, TxBatch};

/// Frames waiting per port before the oldest are dropped.
const QUEUE_LIMIT: usize = 256;

/// Forwarding-table slots [`Bridge::age`] visits before each frame is switched. Learning
/// happens only when a frame is switched, so ageing there keeps room for new addresses:
/// expired entries leave at up to this many per frame (the default table of 8,192 entries has
/// 16,384 slots, one pass per 256 frames), at a cost bounded per frame.
const AGE_BUDGET: usize = 64;

struct HubState {
    bridge: Bridge,
    queues: Vec<VecDeque<Vec<u8>>>,
    batch: TxBatch,
    /// Frames dropped because a port's queue was full.
    overflow: u64,
}

/// The switch the VMs of this process share.
pub struct Hub {
    state: Mutex<HubState>,
    start: Instant,
}

impl Hub {
    /// An empty switch (Hyper-V defaults: MAC spoofing not allowed on VM ports).
    pub fn new() -> Self {
        Self {
            state: Mutex::new(HubState {
                bridge: Bridge::new(BridgeConfig::new(HashKey::random())),
                queues: Vec::new(),
                batch: TxBatch::new(),
                overflow: 0,
            }),
            start: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        // A panicking VM thread cannot leave the switch half-updated in a way that matters
        // to the other: keep going with its state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a VM port for `mac` on access VLAN `vlan`.
    pub fn add_port(&self, mac: [u8; 6], vlan: u16) -> Option<PortId> {
        self.add(PortConfig::vm(MacAddr(mac)).with_vlan(VlanConfig::access(vlan)))
    }

    /// Adds the external uplink: a trunk of every VLAN, VLAN 1 untagged, any source MAC. No
    /// offloads (the TAP device takes whole, checksummed frames) and no spanning tree (the
    /// uplink is the switch's only way out).
    ///
    /// The wire may send any number of source addresses, so the uplink learns at most half
    /// the forwarding table: the VM ports (which learn only their own address) always find
    /// room.
    pub fn add_uplink(&self) -> Option<PortId> {
        let mut config = PortConfig::external();
        config.offloads = vswitch_core::port::PortOffloads::default();
        config.stp = false;
        let capacity = self.lock().bridge.fdb().config().capacity;
        config.learn_limit = Some(u32::try_from(capacity / 2).unwrap_or(u32::MAX));
        self.add(config)
    }

    fn add(&self, config: PortConfig) -> Option<PortId> {
        let mut s = self.lock();
        let id = s.bridge.add_port(config).ok()?;
        let index = id.0 as usize;
        if s.queues.len() <= index {
            s.queues.resize_with(index + 1, VecDeque::new);
        }
        Some(id)
    }

    /// Switches `frame` received on `port`, after ageing a slice of the forwarding table.
    pub fn send(&self, port: PortId, frame: &[u8]) {
        let now = self.start.elapsed().as_millis() as u64;
        self.send_at(port, frame, now);
    }

    /// [`send`](Self::send) at `now` milliseconds of the switch's clock.
    fn send_at(&self, port: PortId, frame: &[u8], now: u64) {
        let mut guard = self.lock();
        let s = &mut *guard;
        s.bridge.age(now, AGE_BUDGET);
        let frames = [RxFrame::new(port, frame)];
        s.bridge.process(&frames, now, &mut s.batch);
        for a in s.batch.actions() {
            let bytes = s.batch.to_vec(a, &frames);
            let Some(q) = s.queues.get_mut(a.port.0 as usize) else {
                continue;
            };
            if q.len() >= QUEUE_LIMIT {
                q.pop_front();
                s.overflow += 1;
            }
            q.push_back(bytes);
        }
    }

    /// The next frame for `port`.
    pub fn receive(&self, port: PortId) -> Option<Vec<u8>> {
        self.lock().queues.get_mut(port.0 as usize)?.pop_front()
    }

    /// Puts a frame back at the head of `port`'s queue (no room in the guest yet).
    pub fn unreceive(&self, port: PortId, frame: Vec<u8>) {
        if let Some(q) = self.lock().queues.get_mut(port.0 as usize) {
            q.push_front(frame);
        }
    }

    /// Frames queued for `port`.
    pub fn waiting(&self, port: PortId) -> usize {
        self.lock()
            .queues
            .get(port.0 as usize)
            .map_or(0, VecDeque::len)
    }

    /// `port`'s counters: (received, transmitted, dropped) frames.
    pub fn counters(&self, port: PortId) -> (u64, u64, u64) {
        let s = self.lock();
        s.bridge.port_stats(port).map_or((0, 0, 0), |p| {
            (p.rx_frames, p.tx_frames, p.drops().map(|(_, n)| n).sum())
        })
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROADCAST: [u8; 6] = [0xff; 6];
    const A: [u8; 6] = [0x00, 0x15, 0x5d, 0, 0, 0x0a];
    const B: [u8; 6] = [0x00, 0x15, 0x5d, 0, 0, 0x0b];

    /// A minimal IPv4 Ethernet frame from `src` to `dst`.
    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f
    }

    /// A locally administered unicast address from the wire.
    fn wire_mac(i: usize) -> [u8; 6] {
        let b = (i as u32).to_be_bytes();
        [0x02, 0, b[0], b[1], b[2], b[3]]
    }

    fn drain(hub: &Hub, ports: &[PortId]) {
        for &p in ports {
            while hub.receive(p).is_some() {}
        }
    }

    /// More source addresses from the wire than the forwarding table holds (the switch never
    /// aged its table, so these filled it for good: an hour later a VM's address could not be
    /// learned and VM-to-VM unicast flooded to the uplink). Now the uplink learns at most half
    /// the table, and switching frames ages it: past the ageing time the wire's entries leave,
    /// the VMs' addresses are learned and unicast goes only to its port.
    #[test]
    fn the_wire_cannot_fill_the_forwarding_table() {
        let hub = Hub::new();
        let uplink = hub.add_uplink().expect("uplink");
        let a = hub.add_port(A, 1).expect("port a");
        let b = hub.add_port(B, 1).expect("port b");
        let ports = [uplink, a, b];
        let config = *hub.lock().bridge.fdb().config();
        let limit = config.capacity / 2;
        for i in 0..config.capacity + 100 {
            hub.send_at(uplink, &frame(BROADCAST, wire_mac(i)), 0);
        }
        {
            let s = hub.lock();
            assert_eq!(s.bridge.fdb().port_len(uplink.0) as usize, limit);
            assert_eq!(s.bridge.fdb().len(), limit);
        }
        // Room for the VMs at once.
        hub.send_at(a, &frame(BROADCAST, A), 1);
        assert_eq!(hub.lock().bridge.lookup(1, MacAddr(A), 1), Some(a));
        // An hour later, none of it is fresh; the wire is quiet.
        let hour = 3_600_000;
        assert!(u64::from(config.ageing_ms) < hour);
        drain(&hub, &ports);
        hub.send_at(a, &frame(BROADCAST, A), hour);
        hub.send_at(b, &frame(A, B), hour + 1);
        assert_eq!(hub.lock().bridge.lookup(1, MacAddr(A), hour + 1), Some(a));
        assert_eq!(hub.waiting(a), 1, "b's frame");
        assert_eq!(hub.waiting(uplink), 1, "a's broadcast, not b's unicast");
        drain(&hub, &ports);
        // Unicast between the VMs, while the table drains: one pass over its slots, each
        // removal costing a visit more.
        let slots = (2 * config.capacity).next_power_of_two();
        let mut now = hour + 2;
        for _ in 0..(slots + limit) / AGE_BUDGET + 1 {
            now += 1;
            hub.send_at(b, &frame(A, B), now);
            assert_eq!(hub.waiting(uplink), 0, "unicast to a flooded at {now}");
            assert_eq!(hub.receive(a).as_deref(), Some(&frame(A, B)[..]));
        }
        let s = hub.lock();
        assert_eq!(s.bridge.fdb().port_len(uplink.0), 0);
        assert_eq!(s.bridge.fdb().len(), 2, "a and b");
        assert_eq!(s.bridge.lookup(1, MacAddr(B), now), Some(b));
    }
}
