//! Spanning tree: 802.1D configuration and TCN BPDUs, RSTP (802.1w / 802.1D-2004) RST BPDUs,
//! the 802.1D-1998 port state machine ([`SpanningTree`]) and the 802.1D-2004 clause-17 rapid
//! spanning tree ([`rstp::Rstp`]), so that a loop through uplinks is cut.
//!
//! BPDUs are LLC frames (802.3 length field, DSAP/SSAP 0x42, control 0x03) to
//! 01-80-C2-00-00-00. Times on the wire are in 1/256 s; the machines keep milliseconds and
//! take the caller's clock in every call.
//!
//! [`StpConfig::protocol`] chooses the machine a bridge runs ([`Tree`] holds either):
//!
//! - **STP** ([`SpanningTree`]): the classic machine (Blocking → Listening → Learning →
//!   Forwarding with the forward delay between steps; root and designated port selection from
//!   priority vectors; message-age expiry; topology-change notification and acknowledgement;
//!   the hold timer). RST BPDUs are read like configuration BPDUs, so an RSTP neighbour sees
//!   an 802.1D bridge.
//! - **RSTP** ([`rstp::Rstp`]): port roles (root, designated, alternate, backup, disabled),
//!   discarding / learning / forwarding, edge ports (admin and automatic), point-to-point
//!   links, the proposal / agreement handshake with sync, immediate alternate-port failover,
//!   TC propagation with per-port flushes, and fallback to 802.1D BPDUs on a port that hears
//!   them.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
pub mod rstp;
#[cfg(feature = "alloc")]
mod tree;
#[cfg(feature = "alloc")]
pub use tree::Tree;

use zerocopy::byteorder::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::frame::{MacAddr, MIN_FRAME_LEN};
#[cfg(feature = "alloc")]
use crate::port::PortState;

/// The LLC header of every BPDU: DSAP 0x42, SSAP 0x42, UI.
pub const LLC_BPDU: [u8; 3] = [0x42, 0x42, 0x03];

/// A bridge or root identifier: priority (16 bits, 802.1D-2004 uses the top 4 plus a 12-bit
/// system ID extension) then the MAC address. Lower is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BridgeId(pub u64);

impl BridgeId {
    /// Builds an identifier.
    pub const fn new(priority: u16, mac: MacAddr) -> Self {
        Self(((priority as u64) << 48) | mac.to_u64())
    }
    /// The priority part.
    pub const fn priority(self) -> u16 {
        (self.0 >> 48) as u16
    }
}

/// The 35-byte configuration BPDU body (after the LLC header); RST BPDUs add one byte.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ConfigBpduWire {
    /// Protocol identifier, 0.
    pub protocol: U16,
    /// 0 (STP), 2 (RSTP), 3 (MSTP).
    pub version: u8,
    /// 0x00 configuration, 0x80 TCN, 0x02 RST.
    pub bpdu_type: u8,
    /// Flags: TC bit 0, TCA bit 7 (RST adds proposal, role, learning, forwarding, agreement).
    pub flags: u8,
    /// Root identifier.
    pub root: U64,
    /// Root path cost.
    pub root_path_cost: U32,
    /// Transmitting bridge identifier.
    pub bridge: U64,
    /// Transmitting port identifier.
    pub port: U16,
    /// Message age, 1/256 s.
    pub message_age: U16,
    /// Max age, 1/256 s.
    pub max_age: U16,
    /// Hello time, 1/256 s.
    pub hello_time: U16,
    /// Forward delay, 1/256 s.
    pub forward_delay: U16,
}
const _: () = assert!(core::mem::size_of::<ConfigBpduWire>() == 35);

/// BPDU flag: topology change.
pub const FLAG_TC: u8 = 0x01;
/// RST flag: proposal.
pub const FLAG_PROPOSAL: u8 = 0x02;
/// RST flags: port role (bits 2–3).
pub const FLAG_ROLE_MASK: u8 = 0x0c;
/// RST flag: learning.
pub const FLAG_LEARNING: u8 = 0x10;
/// RST flag: forwarding.
pub const FLAG_FORWARDING: u8 = 0x20;
/// RST flag: agreement.
pub const FLAG_AGREEMENT: u8 = 0x40;
/// BPDU flag: topology change acknowledgement.
pub const FLAG_TCA: u8 = 0x80;

/// RSTP port roles as carried in RST BPDU flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RstRole {
    /// 0: unknown (master port in MSTP).
    Unknown,
    /// 1: alternate or backup.
    AlternateBackup,
    /// 2: root.
    Root,
    /// 3: designated.
    Designated,
}

/// The fields of a configuration or RST BPDU. Times in 1/256 s as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfigBpdu {
    /// Flag bits.
    pub flags: u8,
    /// Root identifier.
    pub root: BridgeId,
    /// Root path cost.
    pub root_path_cost: u32,
    /// Sender's bridge identifier.
    pub bridge: BridgeId,
    /// Sender's port identifier.
    pub port: u16,
    /// Message age.
    pub message_age: u16,
    /// Max age.
    pub max_age: u16,
    /// Hello time.
    pub hello_time: u16,
    /// Forward delay.
    pub forward_delay: u16,
}

impl ConfigBpdu {
    /// The RST port role bits.
    pub fn role(&self) -> RstRole {
        match (self.flags & FLAG_ROLE_MASK) >> 2 {
            0 => RstRole::Unknown,
            1 => RstRole::AlternateBackup,
            2 => RstRole::Root,
            _ => RstRole::Designated,
        }
    }
}

/// A decoded BPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bpdu {
    /// 802.1D configuration BPDU.
    Config(ConfigBpdu),
    /// Topology change notification.
    Tcn,
    /// RSTP BPDU (version 2, type 2).
    Rst(ConfigBpdu),
}

/// Why bytes are not a BPDU this crate understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BpduError {
    /// Too short for the header or for the BPDU type.
    #[error("bpdu of {len} bytes is truncated: {needed} needed")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// Not to 01-80-C2-00-00-00, no 802.3 length field, or not LLC 42/42/03.
    #[error("not an llc bpdu frame")]
    NotBpdu,
    /// Protocol identifier other than 0.
    #[error("protocol identifier {0:#06x}")]
    Protocol(u16),
    /// A type/version combination this crate does not decode.
    #[error("bpdu type {bpdu_type:#04x} version {version}")]
    Type {
        /// BPDU type.
        bpdu_type: u8,
        /// Protocol version.
        version: u8,
    },
    /// The output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
}

impl Bpdu {
    /// Decodes the bytes after the LLC header.
    pub fn parse(b: &[u8]) -> Result<Self, BpduError> {
        if b.len() < 4 {
            return Err(BpduError::Truncated {
                len: b.len(),
                needed: 4,
            });
        }
        let proto = u16::from_be_bytes([b[0], b[1]]);
        if proto != 0 {
            return Err(BpduError::Protocol(proto));
        }
        let (version, bpdu_type) = (b[2], b[3]);
        let full = |needed: usize| {
            let (w, _) = ConfigBpduWire::read_from_prefix(b).map_err(|_| BpduError::Truncated {
                len: b.len(),
                needed,
            })?;
            Ok::<_, BpduError>(ConfigBpdu {
                flags: w.flags,
                root: BridgeId(w.root.get()),
                root_path_cost: w.root_path_cost.get(),
                bridge: BridgeId(w.bridge.get()),
                port: w.port.get(),
                message_age: w.message_age.get(),
                max_age: w.max_age.get(),
                hello_time: w.hello_time.get(),
                forward_delay: w.forward_delay.get(),
            })
        };
        match bpdu_type {
            0x80 => Ok(Bpdu::Tcn),
            0x00 => Ok(Bpdu::Config(full(35)?)),
            0x02 if version >= 2 => {
                let c = full(36)?;
                if b.len() < 36 {
                    return Err(BpduError::Truncated {
                        len: b.len(),
                        needed: 36,
                    });
                }
                Ok(Bpdu::Rst(c))
            }
            _ => Err(BpduError::Type { bpdu_type, version }),
        }
    }

    /// Decodes a whole frame: checks the destination, the 802.3 length and the LLC header.
    pub fn parse_frame(frame: &[u8]) -> Result<Self, BpduError> {
        if frame.len() < 17 {
            return Err(BpduError::Truncated {
                len: frame.len(),
                needed: 17,
            });
        }
        let len = usize::from(u16::from_be_bytes([frame[12], frame[13]]));
        if frame[..6] != MacAddr::BRIDGE_GROUP.0 || len >= 0x0600 || frame[14..17] != LLC_BPDU {
            return Err(BpduError::NotBpdu);
        }
        let end = (14 + len).min(frame.len());
        Self::parse(frame.get(17..end).unwrap_or_default())
    }

    /// Length of the BPDU body (after LLC).
    pub fn body_len(&self) -> usize {
        match self {
            Bpdu::Tcn => 4,
            Bpdu::Config(_) => 35,
            Bpdu::Rst(_) => 36,
        }
    }

    /// Writes the complete frame (padded to 60 bytes) from `src`; returns its length.
    pub fn emit_frame(&self, src: MacAddr, out: &mut [u8]) -> Result<usize, BpduError> {
        let body = self.body_len();
        let n = (17 + body).max(MIN_FRAME_LEN);
        let out = out.get_mut(..n).ok_or(BpduError::BufferTooSmall)?;
        out.fill(0);
        out[..6].copy_from_slice(&MacAddr::BRIDGE_GROUP.0);
        out[6..12].copy_from_slice(&src.0);
        out[12..14].copy_from_slice(&((3 + body) as u16).to_be_bytes());
        out[14..17].copy_from_slice(&LLC_BPDU);
        let b = &mut out[17..];
        let (version, bpdu_type, c) = match self {
            Bpdu::Tcn => {
                b[3] = 0x80;
                return Ok(n);
            }
            Bpdu::Config(c) => (0, 0, c),
            Bpdu::Rst(c) => (2, 2, c),
        };
        let w = ConfigBpduWire {
            protocol: U16::new(0),
            version,
            bpdu_type,
            flags: c.flags,
            root: U64::new(c.root.0),
            root_path_cost: U32::new(c.root_path_cost),
            bridge: U64::new(c.bridge.0),
            port: U16::new(c.port),
            message_age: U16::new(c.message_age),
            max_age: U16::new(c.max_age),
            hello_time: U16::new(c.hello_time),
            forward_delay: U16::new(c.forward_delay),
        };
        b[..35].copy_from_slice(w.as_bytes());
        Ok(n)
    }
}

/// A port role (802.1D-2004 17.7). The STP machine reports the roles its port states imply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortRole {
    /// Not in the active topology (link down or administratively disabled).
    Disabled,
    /// The port towards the root.
    Root,
    /// The port that serves its link for the tree.
    Designated,
    /// A blocked port offering another path to the root.
    Alternate,
    /// A blocked port backing up another port of this bridge on a shared link.
    Backup,
}

/// adminPointToPointMAC (802.1D-2004 6.4.3): whether the port's link joins just two bridges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PointToPoint {
    /// Point-to-point when the link is full duplex.
    #[default]
    Auto,
    /// Always point-to-point.
    ForceTrue,
    /// Never point-to-point (a shared medium): no rapid agreement.
    ForceFalse,
}

/// A port's MAC operational state, as the caller learns it from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Link {
    /// Down: the port is disabled for the spanning tree.
    Down,
    /// Up, half duplex.
    HalfDuplex,
    /// Up, full duplex.
    #[default]
    FullDuplex,
}

/// Which spanning-tree protocol a bridge runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum StpProtocol {
    /// 802.1D-1998 STP ([`SpanningTree`]).
    #[default]
    Stp,
    /// 802.1D-2004 RSTP ([`rstp::Rstp`]), falling back to STP per port.
    Rstp,
}

/// Bridge-wide spanning-tree parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StpConfig {
    /// The protocol.
    pub protocol: StpProtocol,
    /// Bridge priority (default 32768).
    pub priority: u16,
    /// The bridge's MAC (bridge identifier and BPDU source).
    pub mac: MacAddr,
    /// Hello time, ms (default 2 s).
    pub hello_ms: u32,
    /// Max age, ms (default 20 s).
    pub max_age_ms: u32,
    /// Forward delay, ms (default 15 s).
    pub forward_delay_ms: u32,
}

impl StpConfig {
    /// 802.1D defaults for an STP bridge with this MAC.
    pub fn new(mac: MacAddr) -> Self {
        Self {
            protocol: StpProtocol::Stp,
            priority: 32768,
            mac,
            hello_ms: 2000,
            max_age_ms: 20_000,
            forward_delay_ms: 15_000,
        }
    }

    /// 802.1D-2004 defaults for an RSTP bridge with this MAC.
    pub fn rstp(mac: MacAddr) -> Self {
        Self {
            protocol: StpProtocol::Rstp,
            ..Self::new(mac)
        }
    }
}

#[cfg(feature = "alloc")]
fn to_wire(ms: u32) -> u16 {
    (u64::from(ms) * 256 / 1000).min(0xffff) as u16
}

#[cfg(feature = "alloc")]
fn from_wire(v: u16) -> u32 {
    (u32::from(v) * 1000).div_ceil(256)
}

#[cfg(feature = "alloc")]
const HOLD_MS: u64 = 1000;
/// The ranges of the timers a bridge takes from the root (802.1D-2004 Table 17-1; hello up to
/// 10 s as 802.1D-1998 allowed), in ms. Values outside them are clamped.
#[cfg(feature = "alloc")]
pub(crate) const HELLO_MS: (u32, u32) = (1000, 10_000);
#[cfg(feature = "alloc")]
pub(crate) const MAX_AGE_MS: (u32, u32) = (6000, 40_000);
#[cfg(feature = "alloc")]
pub(crate) const FORWARD_DELAY_MS: (u32, u32) = (4000, 30_000);
#[cfg(feature = "alloc")]
const MESSAGE_AGE_INCREMENT: u16 = 256;

#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug)]
struct StpPort {
    id: u16,
    path_cost: u32,
    state: PortState,
    designated_root: BridgeId,
    designated_cost: u32,
    designated_bridge: BridgeId,
    designated_port: u16,
    topology_change_ack: bool,
    config_pending: bool,
    /// Message age (1/256 s) of the recorded info and when it was recorded.
    age: Option<(u16, u64)>,
    forward_delay_at: Option<u64>,
    hold_until: Option<u64>,
}

/// The spanning-tree state of one bridge. Ports are identified by the caller's indices.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug)]
pub struct SpanningTree {
    cfg: StpConfig,
    id: BridgeId,
    root: BridgeId,
    root_cost: u32,
    root_port: Option<usize>,
    max_age: u32,
    hello: u32,
    forward_delay: u32,
    tc_detected: bool,
    tc: bool,
    hello_at: Option<u64>,
    tcn_at: Option<u64>,
    tc_until: Option<u64>,
    ports: Vec<Option<StpPort>>,
}

#[cfg(feature = "alloc")]
impl SpanningTree {
    /// A bridge that believes it is the root, with no ports.
    pub fn new(cfg: StpConfig, now: u64) -> Self {
        let id = BridgeId::new(cfg.priority, cfg.mac);
        Self {
            cfg,
            id,
            root: id,
            root_cost: 0,
            root_port: None,
            max_age: cfg.max_age_ms,
            hello: cfg.hello_ms,
            forward_delay: cfg.forward_delay_ms,
            tc_detected: false,
            tc: false,
            hello_at: Some(now),
            tcn_at: None,
            tc_until: None,
            ports: Vec::new(),
        }
    }

    /// This bridge's identifier.
    pub fn bridge_id(&self) -> BridgeId {
        self.id
    }
    /// The root this bridge currently believes in.
    pub fn root_id(&self) -> BridgeId {
        self.root
    }
    /// Whether this bridge is the root.
    pub fn is_root(&self) -> bool {
        self.root == self.id
    }
    /// The root port, if not the root bridge.
    pub fn root_port(&self) -> Option<usize> {
        self.root_port
    }
    /// Whether a topology change is in progress (the FDB should age with the forward delay).
    pub fn topology_change(&self) -> bool {
        self.tc
    }
    /// The current forward delay in ms (learned from the root).
    pub fn forward_delay_ms(&self) -> u32 {
        self.forward_delay
    }
    /// The state of port `i` (`Forwarding` for ports not in the tree).
    pub fn state(&self, i: usize) -> PortState {
        self.port(i).map_or(PortState::Forwarding, |p| p.state)
    }
    fn port(&self, i: usize) -> Option<&StpPort> {
        self.ports.get(i).and_then(Option::as_ref)
    }
    /// The role port `i`'s state implies.
    pub fn role(&self, i: usize) -> Option<PortRole> {
        let p = self.port(i)?;
        Some(if p.state == PortState::Disabled {
            PortRole::Disabled
        } else if self.root_port == Some(i) {
            PortRole::Root
        } else if self.is_designated(i) {
            PortRole::Designated
        } else {
            PortRole::Alternate
        })
    }

    /// Adds port `i` with 802.1D port number `number` (priority 0x80) and `path_cost`. It
    /// starts designated, in Listening... through Blocking per the state selection.
    pub fn add_port(
        &mut self,
        i: usize,
        number: u16,
        path_cost: u32,
        now: u64,
        tx: &mut dyn FnMut(usize, Bpdu),
    ) {
        if self.ports.len() <= i {
            self.ports.resize(i + 1, None);
        }
        let id = 0x8000 | (number & 0x0fff);
        self.ports[i] = Some(StpPort {
            id,
            path_cost,
            state: PortState::Blocking,
            designated_root: self.root,
            designated_cost: self.root_cost,
            designated_bridge: self.id,
            designated_port: id,
            topology_change_ack: false,
            config_pending: false,
            age: None,
            forward_delay_at: None,
            hold_until: None,
        });
        self.configuration_update();
        self.port_state_selection(now, tx);
    }

    /// Removes port `i` from the tree.
    pub fn remove_port(&mut self, i: usize, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        if let Some(p) = self.ports.get_mut(i) {
            *p = None;
        }
        let was_root = self.is_root();
        self.configuration_update();
        self.port_state_selection(now, tx);
        if self.is_root() && !was_root {
            self.become_root(now, tx);
        }
    }

    fn is_designated(&self, i: usize) -> bool {
        self.port(i)
            .is_some_and(|p| p.designated_bridge == self.id && p.designated_port == p.id)
    }

    fn configuration_update(&mut self) {
        // Root selection.
        let mut best: Option<usize> = None;
        for (i, p) in self.ports.iter().enumerate() {
            let Some(p) = p else { continue };
            if p.state == PortState::Disabled
                || self.is_designated(i)
                || p.designated_root >= self.id
            {
                continue;
            }
            let better = match best.and_then(|b| self.port(b)) {
                None => true,
                Some(b) => {
                    (
                        p.designated_root,
                        p.designated_cost.saturating_add(p.path_cost),
                        p.designated_bridge,
                        p.designated_port,
                        p.id,
                    ) < (
                        b.designated_root,
                        b.designated_cost.saturating_add(b.path_cost),
                        b.designated_bridge,
                        b.designated_port,
                        b.id,
                    )
                }
            };
            if better {
                best = Some(i);
            }
        }
        self.root_port = best;
        match best.and_then(|b| self.port(b)).copied() {
            Some(p) => {
                self.root = p.designated_root;
                self.root_cost = p.designated_cost.saturating_add(p.path_cost);
            }
            None => {
                self.root = self.id;
                self.root_cost = 0;
            }
        }
        // Designated port selection.
        for i in 0..self.ports.len() {
            let Some(p) = self.port(i).copied() else {
                continue;
            };
            let designate = self.is_designated(i)
                || p.designated_root != self.root
                || self.root_cost < p.designated_cost
                || self.root_cost == p.designated_cost
                    && (self.id < p.designated_bridge
                        || self.id == p.designated_bridge && p.id <= p.designated_port);
            if designate {
                self.become_designated(i);
            }
        }
    }

    fn become_designated(&mut self, i: usize) {
        let (root, cost, id) = (self.root, self.root_cost, self.id);
        if let Some(Some(p)) = self.ports.get_mut(i) {
            p.designated_root = root;
            p.designated_cost = cost;
            p.designated_bridge = id;
            p.designated_port = p.id;
        }
    }

    fn port_state_selection(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        for i in 0..self.ports.len() {
            let designated = self.is_designated(i);
            let is_root_port = self.root_port == Some(i);
            let fd = u64::from(self.forward_delay);
            let mut detect = false;
            let Some(Some(p)) = self.ports.get_mut(i) else {
                continue;
            };
            if p.state == PortState::Disabled {
                continue;
            }
            if is_root_port || designated {
                if designated {
                    p.age = None;
                }
                if !designated {
                    p.config_pending = false;
                    p.topology_change_ack = false;
                }
                if p.state == PortState::Blocking {
                    p.state = PortState::Listening;
                    p.forward_delay_at = Some(now.saturating_add(fd));
                }
            } else {
                p.config_pending = false;
                p.topology_change_ack = false;
                if p.state != PortState::Blocking {
                    detect = matches!(p.state, PortState::Forwarding | PortState::Learning);
                    p.state = PortState::Blocking;
                    p.forward_delay_at = None;
                }
            }
            if detect {
                self.topology_change_detection(now, tx);
            }
        }
    }

    fn topology_change_detection(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        if self.is_root() {
            self.tc = true;
            self.tc_until =
                Some(now.saturating_add(u64::from(self.max_age) + u64::from(self.forward_delay)));
        } else if !self.tc_detected {
            if let Some(rp) = self.root_port {
                tx(rp, Bpdu::Tcn);
            }
            self.tcn_at = Some(now.saturating_add(u64::from(self.hello)));
        }
        self.tc_detected = true;
    }

    fn transmit_config(&mut self, i: usize, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        let root_age = self
            .root_port
            .and_then(|r| self.port(r))
            .and_then(|r| r.age)
            .map(|(age, at)| age.saturating_add(to_wire(now.saturating_sub(at) as u32)));
        let (is_root, root, cost, id, tc) =
            (self.is_root(), self.root, self.root_cost, self.id, self.tc);
        let (max_age, hello, fd) = (self.max_age, self.hello, self.forward_delay);
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return;
        };
        if p.hold_until.is_some_and(|t| now < t) {
            p.config_pending = true;
            return;
        }
        let message_age = if is_root {
            0
        } else {
            root_age.unwrap_or(0).saturating_add(MESSAGE_AGE_INCREMENT)
        };
        if message_age >= to_wire(max_age) {
            return;
        }
        let flags =
            (if tc { FLAG_TC } else { 0 }) | (if p.topology_change_ack { FLAG_TCA } else { 0 });
        p.topology_change_ack = false;
        p.config_pending = false;
        p.hold_until = Some(now + HOLD_MS);
        tx(
            i,
            Bpdu::Config(ConfigBpdu {
                flags,
                root,
                root_path_cost: cost,
                bridge: id,
                port: p.id,
                message_age,
                max_age: to_wire(max_age),
                hello_time: to_wire(hello),
                forward_delay: to_wire(fd),
            }),
        );
    }

    fn config_bpdu_generation(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        for i in 0..self.ports.len() {
            if self.is_designated(i) && self.port(i).is_some_and(|p| p.state != PortState::Disabled)
            {
                self.transmit_config(i, now, tx);
            }
        }
    }

    fn become_root(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        self.max_age = self.cfg.max_age_ms;
        self.hello = self.cfg.hello_ms;
        self.forward_delay = self.cfg.forward_delay_ms;
        self.topology_change_detection(now, tx);
        self.tcn_at = None;
        self.config_bpdu_generation(now, tx);
        self.hello_at = Some(now.saturating_add(u64::from(self.hello)));
    }

    /// Processes a BPDU received on port `i`; BPDUs to send go to `tx`.
    pub fn receive(&mut self, i: usize, bpdu: &Bpdu, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        if self.port(i).is_none_or(|p| p.state == PortState::Disabled) {
            return;
        }
        let c = match bpdu {
            Bpdu::Tcn => {
                if self.is_designated(i) {
                    self.topology_change_detection(now, tx);
                    if let Some(Some(p)) = self.ports.get_mut(i) {
                        p.topology_change_ack = true;
                    }
                    self.transmit_config(i, now, tx);
                }
                return;
            }
            Bpdu::Config(c) | Bpdu::Rst(c) => *c,
        };
        if u32::from(c.message_age) >= u32::from(c.max_age) {
            return;
        }
        let Some(p) = self.port(i).copied() else {
            return;
        };
        let supersedes = (c.root, c.root_path_cost, c.bridge)
            < (p.designated_root, p.designated_cost, p.designated_bridge)
            || (c.root, c.root_path_cost, c.bridge)
                == (p.designated_root, p.designated_cost, p.designated_bridge)
                && (c.bridge != self.id || c.port <= p.designated_port);
        if supersedes {
            let was_root = self.is_root();
            if let Some(Some(p)) = self.ports.get_mut(i) {
                p.designated_root = c.root;
                p.designated_cost = c.root_path_cost;
                p.designated_bridge = c.bridge;
                p.designated_port = c.port;
                p.age = Some((c.message_age, now));
            }
            self.configuration_update();
            self.port_state_selection(now, tx);
            if !self.is_root() && was_root {
                self.hello_at = None;
                if self.tc_detected {
                    self.tc_until = None;
                    self.tc_detected = false;
                    self.topology_change_detection(now, tx);
                }
            }
            if self.root_port == Some(i) {
                // The root's timers, held to the standard's ranges: a root cannot make
                // information expire at once or shrink ageing during a change to nothing.
                self.max_age = from_wire(c.max_age).clamp(MAX_AGE_MS.0, MAX_AGE_MS.1);
                self.hello = from_wire(c.hello_time).clamp(HELLO_MS.0, HELLO_MS.1);
                self.forward_delay =
                    from_wire(c.forward_delay).clamp(FORWARD_DELAY_MS.0, FORWARD_DELAY_MS.1);
                self.tc = c.flags & FLAG_TC != 0;
                self.config_bpdu_generation(now, tx);
                if c.flags & FLAG_TCA != 0 {
                    self.tc_detected = false;
                    self.tcn_at = None;
                }
            }
        } else if self.is_designated(i) {
            self.transmit_config(i, now, tx);
        }
    }

    /// Runs every timer due at `now`; BPDUs to send go to `tx`.
    pub fn tick(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        if self.hello_at.is_some_and(|t| now >= t) {
            self.config_bpdu_generation(now, tx);
            self.hello_at = Some(now.saturating_add(u64::from(self.hello)));
        }
        if self.tcn_at.is_some_and(|t| now >= t) {
            if let Some(rp) = self.root_port {
                tx(rp, Bpdu::Tcn);
            }
            self.tcn_at = Some(now.saturating_add(u64::from(self.hello)));
        }
        if self.tc_until.is_some_and(|t| now >= t) {
            self.tc_until = None;
            self.tc_detected = false;
            self.tc = false;
        }
        for i in 0..self.ports.len() {
            let max_age = u64::from(self.max_age);
            let fd = u64::from(self.forward_delay);
            let designated_elsewhere = (0..self.ports.len()).any(|j| self.is_designated(j));
            let Some(Some(p)) = self.ports.get_mut(i) else {
                continue;
            };
            let mut expired_info = false;
            let mut detect = false;
            let mut pending = false;
            if let Some((age, at)) = p.age {
                if now
                    .saturating_sub(at)
                    .saturating_add(u64::from(from_wire(age)))
                    >= max_age
                {
                    p.age = None;
                    expired_info = true;
                }
            }
            if p.forward_delay_at.is_some_and(|t| now >= t) {
                match p.state {
                    PortState::Listening => {
                        p.state = PortState::Learning;
                        p.forward_delay_at = Some(now.saturating_add(fd));
                    }
                    PortState::Learning => {
                        p.state = PortState::Forwarding;
                        p.forward_delay_at = None;
                        detect = designated_elsewhere;
                    }
                    _ => p.forward_delay_at = None,
                }
            }
            if p.hold_until.is_some_and(|t| now >= t) {
                p.hold_until = None;
                pending = p.config_pending;
            }
            if detect {
                self.topology_change_detection(now, tx);
            }
            if pending {
                self.transmit_config(i, now, tx);
            }
            if expired_info {
                let was_root = self.is_root();
                self.become_designated(i);
                self.configuration_update();
                self.port_state_selection(now, tx);
                if self.is_root() && !was_root {
                    self.become_root(now, tx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
