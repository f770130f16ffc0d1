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
    pub fn add_uplink(&self) -> Option<PortId> {
        let mut config = PortConfig::external();
        config.offloads = vswitch_core::port::PortOffloads::default();
        config.stp = false;
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

    /// Switches `frame` received on `port`.
    pub fn send(&self, port: PortId, frame: &[u8]) {
        let now = self.start.elapsed().as_millis() as u64;
        let mut guard = self.lock();
        let s = &mut *guard;
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
            (p.rx_frames, p.tx_frames, p.drops.iter().sum())
        })
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}
