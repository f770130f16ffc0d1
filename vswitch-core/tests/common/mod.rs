//! Frame builders and a one-frame driver shared by the integration tests.

#![allow(dead_code)]

use vswitch_core::fdb::FdbConfig;
use vswitch_core::features::DropReason;
use vswitch_core::frame::{MacAddr, Tci};
use vswitch_core::port::SwitchType;
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortId, RxFrame, TxBatch};

/// A locally administered unicast address ending in `n`.
pub fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

/// An Ethernet frame under construction.
#[derive(Clone, Debug)]
pub struct Eth {
    bytes: Vec<u8>,
}

/// Starts a frame from `src` to `dst`.
pub fn eth(dst: MacAddr, src: MacAddr) -> Eth {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&dst.0);
    bytes.extend_from_slice(&src.0);
    Eth { bytes }
}

impl Eth {
    /// Adds a tag.
    pub fn tag(mut self, tpid: u16, tci: Tci) -> Self {
        self.bytes.extend_from_slice(&tpid.to_be_bytes());
        self.bytes.extend_from_slice(&tci.0.to_be_bytes());
        self
    }
    /// Adds an 802.1Q C-tag with PCP 0.
    pub fn vlan(self, vid: u16) -> Self {
        self.tag(0x8100, Tci::new(0, false, vid))
    }
    /// Sets the EtherType and payload, then pads to 60 bytes.
    pub fn payload(mut self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        self.bytes.extend_from_slice(&ethertype.to_be_bytes());
        self.bytes.extend_from_slice(payload);
        if self.bytes.len() < 60 {
            self.bytes.resize(60, 0);
        }
        self.bytes
    }
    /// An IPv4-typed frame of exactly `len` bytes (zero payload).
    pub fn len(mut self, len: usize) -> Vec<u8> {
        self.bytes.extend_from_slice(&0x0800u16.to_be_bytes());
        self.bytes.resize(len, 0);
        self.bytes
    }
    /// A minimum-size IPv4-typed frame.
    pub fn done(self) -> Vec<u8> {
        self.len(60)
    }
}

/// What one frame produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Out {
    /// (egress port, bytes), in action order.
    pub tx: Vec<(PortId, Vec<u8>)>,
    /// Whole-frame drops.
    pub drops: Vec<DropReason>,
}

impl Out {
    /// The egress ports, in order.
    pub fn ports(&self) -> Vec<PortId> {
        self.tx.iter().map(|t| t.0).collect()
    }
    /// The single transmitted frame (panics otherwise).
    pub fn only(&self) -> (PortId, &[u8]) {
        assert_eq!(
            self.tx.len(),
            1,
            "expected one copy, got {:?}",
            self.ports()
        );
        (self.tx[0].0, &self.tx[0].1)
    }
    /// The single drop reason (panics otherwise).
    pub fn dropped(&self) -> DropReason {
        assert!(
            self.tx.is_empty(),
            "expected a drop, got {:?}",
            self.ports()
        );
        assert_eq!(self.drops.len(), 1);
        self.drops[0]
    }
}

/// A switch of `switch_type` with a small table and the given ageing time.
pub fn bridge_with(switch_type: SwitchType, capacity: usize, ageing_ms: u32) -> Bridge {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(0xfeed));
    cfg.switch_type = switch_type;
    cfg.fdb = FdbConfig {
        capacity,
        learn_limit: capacity,
        ageing_ms,
    };
    Bridge::new(cfg)
}

/// An external switch, 1024 entries, 300 s ageing.
pub fn bridge() -> Bridge {
    bridge_with(SwitchType::External, 1024, 300_000)
}

/// Sends one frame and materialises the output.
pub fn send(br: &mut Bridge, port: PortId, frame: &[u8], now: u64) -> Out {
    send_rx(br, RxFrame::new(port, frame), now)
}

/// Sends one frame with offload metadata and materialises the output.
pub fn send_rx(br: &mut Bridge, rx: RxFrame<'_>, now: u64) -> Out {
    let mut out = TxBatch::new();
    let frames = [rx];
    br.process(&frames, now, &mut out);
    Out {
        tx: out
            .actions()
            .iter()
            .map(|a| (a.port, out.to_vec(a, &frames)))
            .collect(),
        drops: out.drops().iter().map(|d| d.1).collect(),
    }
}
