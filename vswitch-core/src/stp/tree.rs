//! [`Tree`]: the spanning-tree machine a bridge runs, STP or RSTP, behind one interface.

use super::rstp::{Rstp, RstpPortConfig};
use super::{Bpdu, BridgeId, Link, PortRole, SpanningTree, StpConfig, StpProtocol};
use crate::port::PortState;

/// One bridge's spanning tree: the 802.1D-1998 machine or the 802.1D-2004 rapid one, as
/// [`StpConfig::protocol`] chose. Ports are identified by the caller's indices; BPDUs to send
/// go to the `tx` callback of each call.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Tree {
    /// 802.1D-1998 STP.
    Stp(SpanningTree),
    /// 802.1D-2004 RSTP.
    Rstp(Rstp),
}

impl Tree {
    /// A bridge with no ports, running the configured protocol.
    pub fn new(cfg: StpConfig, now: u64) -> Self {
        match cfg.protocol {
            StpProtocol::Stp => Tree::Stp(SpanningTree::new(cfg, now)),
            StpProtocol::Rstp => Tree::Rstp(Rstp::new(cfg, now)),
        }
    }

    /// The RSTP machine, if that is what runs.
    pub fn rstp(&self) -> Option<&Rstp> {
        match self {
            Tree::Rstp(r) => Some(r),
            Tree::Stp(_) => None,
        }
    }

    /// This bridge's identifier.
    pub fn bridge_id(&self) -> BridgeId {
        match self {
            Tree::Stp(s) => s.bridge_id(),
            Tree::Rstp(r) => r.bridge_id(),
        }
    }
    /// The root this bridge currently believes in.
    pub fn root_id(&self) -> BridgeId {
        match self {
            Tree::Stp(s) => s.root_id(),
            Tree::Rstp(r) => r.root_id(),
        }
    }
    /// Whether this bridge is the root.
    pub fn is_root(&self) -> bool {
        self.root_id() == self.bridge_id()
    }
    /// The root port, if not the root bridge.
    pub fn root_port(&self) -> Option<usize> {
        match self {
            Tree::Stp(s) => s.root_port(),
            Tree::Rstp(r) => r.root_port(),
        }
    }
    /// Whether entries should age with the forward delay at `now` (a topology change that
    /// 802.1D bridges take part in).
    pub fn topology_change(&self, now: u64) -> bool {
        match self {
            Tree::Stp(s) => s.topology_change(),
            Tree::Rstp(r) => r.topology_change(now),
        }
    }
    /// The forward delay in ms, from the root.
    pub fn forward_delay_ms(&self) -> u32 {
        match self {
            Tree::Stp(s) => s.forward_delay_ms(),
            Tree::Rstp(r) => r.forward_delay_ms(),
        }
    }
    /// Port `i`'s state (`Forwarding` for ports not in the tree).
    pub fn state(&self, i: usize) -> PortState {
        match self {
            Tree::Stp(s) => s.state(i),
            Tree::Rstp(r) => r.state(i),
        }
    }
    /// Port `i`'s role.
    pub fn role(&self, i: usize) -> Option<PortRole> {
        match self {
            Tree::Stp(s) => s.role(i),
            Tree::Rstp(r) => r.role(i),
        }
    }

    /// Adds port `i` with port number `number` (STP uses only the path cost of `cfg`).
    pub fn add_port(
        &mut self,
        i: usize,
        number: u16,
        cfg: RstpPortConfig,
        now: u64,
        tx: &mut dyn FnMut(usize, Bpdu),
    ) {
        match self {
            Tree::Stp(s) => s.add_port(i, number, cfg.path_cost, now, tx),
            Tree::Rstp(r) => r.add_port(i, number, cfg, now, tx),
        }
    }
    /// Removes port `i`.
    pub fn remove_port(&mut self, i: usize, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        match self {
            Tree::Stp(s) => s.remove_port(i, now, tx),
            Tree::Rstp(r) => r.remove_port(i, now, tx),
        }
    }
    /// Processes a BPDU received on port `i`.
    pub fn receive(&mut self, i: usize, bpdu: &Bpdu, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        match self {
            Tree::Stp(s) => s.receive(i, bpdu, now, tx),
            Tree::Rstp(r) => r.receive(i, bpdu, now, tx),
        }
    }
    /// Runs every timer due at `now`.
    pub fn tick(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        match self {
            Tree::Stp(s) => s.tick(now, tx),
            Tree::Rstp(r) => r.tick(now, tx),
        }
    }
    /// Sets port `i`'s link. RSTP only: the STP machine has no link state, and the bridge
    /// takes a port whose link is down out of that tree instead.
    pub fn set_link(&mut self, i: usize, link: Link, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        if let Tree::Rstp(r) = self {
            r.set_link(i, link, now, tx);
        }
    }
    /// Hands each port whose learned entries must go to `f` (RSTP only; STP ages them fast
    /// during a topology change instead).
    pub fn drain_flushes(&mut self, f: &mut dyn FnMut(usize)) {
        if let Tree::Rstp(r) = self {
            r.drain_flushes(f);
        }
    }
}
