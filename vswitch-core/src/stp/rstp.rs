//! RSTP: the rapid spanning tree of IEEE 802.1D-2004 clause 17 (802.1w).
//!
//! [`Rstp`] is one bridge's protocol entity. It runs the clause-17 state machines for every
//! port, each as a small step function over the port's variables:
//!
//! | machine | what it does here |
//! |---|---|
//! | Port Receive | [`Rstp::receive`] records the message, clears `operEdge`, notes the BPDU version |
//! | Protocol Migration | sends 802.1D BPDUs on a port that hears them; back to RST on `mcheck` or an RST BPDU |
//! | Bridge Detection | admin edge, and auto-edge after the edge delay with no BPDU heard |
//! | Port Information | superior / repeated / inferior / root-alternate message handling, info ageing |
//! | Port Role Selection | root port and root priority vector, designated / alternate / backup roles |
//! | Port Role Transitions | proposal / agreement with sync, fast root and alternate transitions, re-root |
//! | Port State Transition | discarding → learning → forwarding |
//! | Topology Change | TC detection, `tcWhile`, propagation, flush requests, TCN / TCA for 802.1D |
//! | Port Transmit | hello, transmit hold count, RST or configuration or TCN BPDUs |
//!
//! Every event ([`Rstp::receive`], [`Rstp::tick`], port and link changes) runs the machines
//! until nothing changes (bounded, so hostile input cannot spin it), then transmits. Timers are
//! deadlines in the caller's milliseconds, compared with the `now` of each call, so the
//! machine is deterministic and needs no clock of its own. The standard's timers count whole
//! seconds; here they expire at the exact millisecond, which only makes transitions earlier
//! by less than a second.
//!
//! Forwarding-table flushes the Topology Change machine asks for (a port leaving the active
//! topology, or a TC propagated to it) are collected per port and handed out by
//! [`Rstp::drain_flushes`]; [`crate::Bridge`] removes those ports' dynamic entries at once.

use alloc::vec::Vec;

use super::{
    Bpdu, BridgeId, Link, PointToPoint, PortRole, RstRole, StpConfig, FLAG_ROLE_MASK, FLAG_TC,
    FLAG_TCA,
};
use crate::port::PortState;

mod machines;

/// Migrate Time (17.13.9): 3 s.
const MIGRATE_MS: u64 = 3000;
/// Transmit Hold Count (17.13.12): at most this many BPDUs per port per second.
pub const TX_HOLD_COUNT: u8 = 6;
/// Rounds of the state machines per event (they settle in a handful).
const MAX_ROUNDS: usize = 128;
/// One second in BPDU time units (1/256 s).
const SECOND: u32 = 256;
const MAC_MASK: u64 = (1 << 48) - 1;

/// A priority vector (17.6): lower is better, compared in field order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PriorityVector {
    /// Root bridge identifier.
    pub root: BridgeId,
    /// Root path cost.
    pub cost: u32,
    /// Designated bridge identifier.
    pub bridge: BridgeId,
    /// Designated port identifier.
    pub port: u16,
}

impl PriorityVector {
    /// Whether `self`, received in a message, is superior to `port` (17.6): better, or from
    /// the same designated bridge and port (whatever their priorities).
    fn supersedes(&self, port: &Self) -> bool {
        self < port
            || (self.bridge.0 & MAC_MASK == port.bridge.0 & MAC_MASK
                && self.port & 0x0fff == port.port & 0x0fff)
    }
}

/// Message Age, Max Age, Hello Time and Forward Delay, in 1/256 s as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
struct Times {
    age: u16,
    max_age: u16,
    hello: u16,
    fwd: u16,
}

impl Times {
    /// The times as recordTimes (17.21.11) keeps them: hello at least 1 s, and every timer
    /// held to the standard's range, so a root cannot make information expire at once or
    /// shrink ageing during a topology change to nothing.
    fn recorded(self) -> Self {
        let clamp = |v: u16, (lo, hi): (u32, u32)| v.clamp(wire(lo), wire(hi));
        Self {
            age: self.age,
            max_age: clamp(self.max_age, super::MAX_AGE_MS),
            hello: clamp(self.hello, super::HELLO_MS),
            fwd: clamp(self.fwd, super::FORWARD_DELAY_MS),
        }
    }
}

fn ms(v: u16) -> u64 {
    u64::from(v) * 1000 / 256
}

fn wire(ms: u32) -> u16 {
    (u64::from(ms) * 256 / 1000).min(0xffff) as u16
}

/// A port's protocol parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RstpPortConfig {
    /// Port path cost (17.13.11; 20,000 for 1 Gb/s). 0 is taken as 1.
    pub path_cost: u32,
    /// AdminEdge: the port starts as an edge port (forwarding at once).
    pub admin_edge: bool,
    /// AutoEdge: become an edge port when no BPDU is heard for the edge delay.
    pub auto_edge: bool,
    /// adminPointToPointMAC.
    pub point_to_point: PointToPoint,
}

impl RstpPortConfig {
    /// A non-edge port with auto-edge detection and automatic point-to-point detection.
    pub fn new(path_cost: u32) -> Self {
        Self {
            path_cost,
            admin_edge: false,
            auto_edge: true,
            point_to_point: PointToPoint::Auto,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Info {
    Disabled,
    Aged,
    Mine,
    Received,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Migration {
    CheckingRstp,
    SelectingStp,
    Sensing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcState {
    Inactive,
    Learning,
    Active,
}

/// A received configuration or RST message, waiting for the Port Information machine.
#[derive(Clone, Copy, Debug)]
struct Msg {
    rst: bool,
    role: RstRole,
    flags: u8,
    prio: PriorityVector,
    times: Times,
}

/// One port's variables (17.19). Timers are deadlines in ms: expired when `<= now`.
#[derive(Clone, Debug)]
struct Port {
    id: u16,
    cfg: RstpPortConfig,
    link: Link,
    edge_delay_while: u64,
    fd_while: u64,
    hello_when: u64,
    mdelay_while: u64,
    rb_while: u64,
    rcvd_info_while: u64,
    rr_while: u64,
    tc_while: u64,
    tx_count: u8,
    info: Info,
    role: PortRole,
    selected_role: PortRole,
    port_prio: PriorityVector,
    port_times: Times,
    designated_prio: PriorityVector,
    designated_times: Times,
    msg: Option<Msg>,
    migration: Migration,
    tc_state: TcState,
    agree: bool,
    agreed: bool,
    disputed: bool,
    flush: bool,
    forward: bool,
    forwarding: bool,
    learn: bool,
    learning: bool,
    mcheck: bool,
    new_info: bool,
    oper_edge: bool,
    proposed: bool,
    proposing: bool,
    rcvd_rstp: bool,
    rcvd_stp: bool,
    rcvd_tc: bool,
    rcvd_tc_ack: bool,
    rcvd_tcn: bool,
    re_root: bool,
    reselect: bool,
    selected: bool,
    send_rstp: bool,
    sync: bool,
    synced: bool,
    tc_ack: bool,
    tc_prop: bool,
    updt_info: bool,
}

impl Port {
    fn enabled(&self) -> bool {
        self.link != Link::Down
    }
    fn p2p(&self) -> bool {
        match self.cfg.point_to_point {
            PointToPoint::ForceTrue => true,
            PointToPoint::ForceFalse => false,
            PointToPoint::Auto => self.link == Link::FullDuplex,
        }
    }
    /// forwardDelay (17.20.5): Hello Time when talking RSTP, Forward Delay otherwise.
    fn forward_delay(&self) -> u64 {
        ms(if self.send_rstp {
            self.designated_times.hello
        } else {
            self.designated_times.fwd
        })
    }
    fn hello_ms(&self) -> u64 {
        ms(self.designated_times.hello).max(1000)
    }
    /// EdgeDelay (17.20.4).
    fn edge_delay(&self) -> u64 {
        if self.p2p() {
            MIGRATE_MS
        } else {
            ms(self.designated_times.max_age)
        }
    }
    fn root_or_designated(&self) -> bool {
        matches!(self.role, PortRole::Root | PortRole::Designated)
    }
    fn clear_tc_inputs(&mut self) {
        self.rcvd_tc = false;
        self.rcvd_tcn = false;
        self.rcvd_tc_ack = false;
        self.tc_prop = false;
    }
}

/// The RSTP state of one bridge. Ports are identified by the caller's indices.
#[derive(Clone, Debug)]
pub struct Rstp {
    id: BridgeId,
    /// BridgeTimes (17.18.4).
    times: Times,
    root_prio: PriorityVector,
    root_port: Option<usize>,
    root_times: Times,
    ports: Vec<Option<Port>>,
    /// The last whole second at which transmit counts were decremented.
    second: u64,
}

impl Rstp {
    /// A bridge with no ports; it believes it is the root.
    pub fn new(cfg: StpConfig, now: u64) -> Self {
        let id = BridgeId::new(cfg.priority, cfg.mac);
        let times = Times {
            age: 0,
            max_age: wire(cfg.max_age_ms),
            hello: wire(cfg.hello_ms.max(1000)),
            fwd: wire(cfg.forward_delay_ms),
        };
        Self {
            id,
            times,
            root_prio: PriorityVector {
                root: id,
                cost: 0,
                bridge: id,
                port: 0,
            },
            root_port: None,
            root_times: times,
            ports: Vec::new(),
            second: now,
        }
    }

    /// This bridge's identifier.
    pub fn bridge_id(&self) -> BridgeId {
        self.id
    }
    /// The root this bridge currently believes in.
    pub fn root_id(&self) -> BridgeId {
        self.root_prio.root
    }
    /// The root priority vector (root, cost to it, and the designated bridge and port it
    /// came through).
    pub fn root_priority(&self) -> PriorityVector {
        self.root_prio
    }
    /// Whether this bridge is the root.
    pub fn is_root(&self) -> bool {
        self.root_prio.root == self.id
    }
    /// The root port, if not the root bridge.
    pub fn root_port(&self) -> Option<usize> {
        self.root_port
    }
    /// Whether some port's `tcWhile` runs at `now`: entries should age fast (802.1D peers
    /// only get TCs this way).
    pub fn topology_change(&self, now: u64) -> bool {
        self.ports.iter().flatten().any(|p| p.tc_while > now)
    }
    /// The forward delay in ms, from the root.
    pub fn forward_delay_ms(&self) -> u32 {
        ms(self.root_times.fwd) as u32
    }
    fn port(&self, i: usize) -> Option<&Port> {
        self.ports.get(i).and_then(Option::as_ref)
    }
    /// Port `i`'s state: `Blocking` for discarding, and `Forwarding` for ports not in the
    /// tree.
    pub fn state(&self, i: usize) -> PortState {
        match self.port(i) {
            None => PortState::Forwarding,
            Some(p) if p.forwarding => PortState::Forwarding,
            Some(p) if p.learning => PortState::Learning,
            Some(_) => PortState::Blocking,
        }
    }
    /// Port `i`'s role.
    pub fn role(&self, i: usize) -> Option<PortRole> {
        self.port(i).map(|p| p.role)
    }
    /// Whether port `i` is operationally an edge port.
    pub fn oper_edge(&self, i: usize) -> bool {
        self.port(i).is_some_and(|p| p.oper_edge)
    }
    /// Whether port `i` sends RST BPDUs (`false`: it fell back to 802.1D BPDUs).
    pub fn sends_rstp(&self, i: usize) -> bool {
        self.port(i).is_some_and(|p| p.send_rstp)
    }
    /// Whether port `i`'s link is operationally point-to-point.
    pub fn point_to_point(&self, i: usize) -> bool {
        self.port(i).is_some_and(Port::p2p)
    }
    /// Port `i`'s port priority vector (what it holds for its link).
    pub fn port_priority(&self, i: usize) -> Option<PriorityVector> {
        self.port(i).map(|p| p.port_prio)
    }

    /// Hands each port whose learned entries must be removed to `f`, once.
    pub fn drain_flushes(&mut self, f: &mut dyn FnMut(usize)) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            if let Some(p) = p.as_mut().filter(|p| p.flush) {
                p.flush = false;
                f(i);
            }
        }
    }

    /// Adds port `i` with port number `number` (priority 0x80), link up and full duplex.
    pub fn add_port(
        &mut self,
        i: usize,
        number: u16,
        cfg: RstpPortConfig,
        now: u64,
        tx: &mut dyn FnMut(usize, Bpdu),
    ) {
        if self.ports.len() <= i {
            self.ports.resize(i + 1, None);
        }
        let id = 0x8000 | (number & 0x0fff);
        let cfg = RstpPortConfig {
            path_cost: cfg.path_cost.max(1),
            ..cfg
        };
        let t = self.times;
        self.ports[i] = Some(Port {
            id,
            cfg,
            link: Link::FullDuplex,
            edge_delay_while: now + MIGRATE_MS,
            fd_while: now + ms(t.max_age),
            hello_when: now,
            mdelay_while: now + MIGRATE_MS,
            rb_while: 0,
            rcvd_info_while: 0,
            rr_while: now + ms(t.fwd),
            tc_while: 0,
            tx_count: 0,
            info: Info::Disabled,
            role: PortRole::Disabled,
            selected_role: PortRole::Disabled,
            port_prio: self.root_prio,
            port_times: t,
            designated_prio: self.root_prio,
            designated_times: t,
            msg: None,
            migration: Migration::CheckingRstp,
            tc_state: TcState::Inactive,
            agree: false,
            agreed: false,
            disputed: false,
            flush: false,
            forward: false,
            forwarding: false,
            learn: false,
            learning: false,
            mcheck: false,
            new_info: true,
            oper_edge: cfg.admin_edge,
            proposed: false,
            proposing: false,
            rcvd_rstp: false,
            rcvd_stp: false,
            rcvd_tc: false,
            rcvd_tc_ack: false,
            rcvd_tcn: false,
            re_root: true,
            reselect: true,
            selected: false,
            send_rstp: true,
            sync: true,
            synced: false,
            tc_ack: false,
            tc_prop: false,
            updt_info: false,
        });
        self.run(now, tx);
    }

    /// Removes port `i`; the others re-select their roles.
    pub fn remove_port(&mut self, i: usize, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        if let Some(p) = self.ports.get_mut(i) {
            *p = None;
        }
        for p in self.ports.iter_mut().flatten() {
            p.reselect = true;
            p.selected = false;
        }
        self.run(now, tx);
    }

    /// Sets port `i`'s link (MAC operational state and duplex): `portEnabled`, and
    /// `operPointToPointMAC` when the port's setting is [`PointToPoint::Auto`].
    pub fn set_link(&mut self, i: usize, link: Link, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return;
        };
        let was_up = p.enabled();
        p.link = link;
        if !was_up && p.enabled() {
            // Port Transmit TRANSMIT_INIT and Port Receive DISCARD.
            p.new_info = true;
            p.tx_count = 0;
            p.hello_when = now;
            p.edge_delay_while = now + MIGRATE_MS;
            p.rcvd_rstp = false;
            p.rcvd_stp = false;
        }
        if !p.enabled() {
            p.msg = None;
        }
        self.run(now, tx);
    }

    /// Replaces port `i`'s parameters. A changed admin edge setting takes effect at once.
    pub fn set_port_config(
        &mut self,
        i: usize,
        cfg: RstpPortConfig,
        now: u64,
        tx: &mut dyn FnMut(usize, Bpdu),
    ) {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return;
        };
        if cfg.admin_edge != p.cfg.admin_edge {
            p.oper_edge = cfg.admin_edge;
        }
        if cfg.path_cost.max(1) != p.cfg.path_cost {
            p.reselect = true;
            p.selected = false;
        }
        p.cfg = RstpPortConfig {
            path_cost: cfg.path_cost.max(1),
            ..cfg
        };
        self.run(now, tx);
    }

    /// Forces a protocol migration check on port `i` (`mcheck`): it sends RST BPDUs again
    /// until it hears an 802.1D BPDU.
    pub fn migration_check(&mut self, i: usize, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        if let Some(Some(p)) = self.ports.get_mut(i) {
            p.mcheck = true;
        }
        self.run(now, tx);
    }

    /// Processes a BPDU received on port `i` (Port Receive); BPDUs to send go to `tx`.
    pub fn receive(&mut self, i: usize, bpdu: &Bpdu, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        let id = self.id;
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return;
        };
        if !p.enabled() {
            return;
        }
        let (c, rst) = match bpdu {
            Bpdu::Tcn => (None, false),
            Bpdu::Config(c) => (Some(*c), false),
            Bpdu::Rst(c) => (Some(*c), true),
        };
        if !rst && c.is_some_and(|c| c.bridge == id && c.port == p.id) {
            // 9.3.4: our own configuration BPDU looped back.
            return;
        }
        if rst {
            p.rcvd_rstp = true;
        } else {
            p.rcvd_stp = true;
        }
        p.oper_edge = false;
        p.edge_delay_while = now + MIGRATE_MS;
        match c {
            None => p.rcvd_tcn = true,
            Some(c) => {
                p.msg = Some(Msg {
                    rst,
                    role: if rst { c.role() } else { RstRole::Designated },
                    flags: if rst {
                        c.flags
                    } else {
                        c.flags & (FLAG_TC | FLAG_TCA)
                    },
                    prio: PriorityVector {
                        root: c.root,
                        cost: c.root_path_cost,
                        bridge: c.bridge,
                        port: c.port,
                    },
                    times: Times {
                        age: c.message_age,
                        max_age: c.max_age,
                        hello: c.hello_time,
                        fwd: c.forward_delay,
                    },
                })
            }
        }
        self.run(now, tx);
    }

    /// Runs every timer due at `now`; BPDUs to send go to `tx`.
    pub fn tick(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        let secs = now.saturating_sub(self.second) / 1000;
        if secs > 0 {
            self.second += secs * 1000;
            let dec = secs.min(255) as u8;
            for p in self.ports.iter_mut().flatten() {
                p.tx_count = p.tx_count.saturating_sub(dec);
            }
        }
        self.run(now, tx);
    }

    /// Runs the machines until they settle, transmitting after each settled round.
    fn run(&mut self, now: u64, tx: &mut dyn FnMut(usize, Bpdu)) {
        for _ in 0..MAX_ROUNDS {
            for _ in 0..MAX_ROUNDS {
                let mut changed = self.role_selection();
                for i in 0..self.ports.len() {
                    if self.port(i).is_none() {
                        continue;
                    }
                    changed |= self.migration(i, now);
                    changed |= self.bridge_detection(i, now);
                    changed |= self.information(i, now);
                    changed |= self.role_transitions(i, now);
                    changed |= self.state_transition(i);
                    changed |= self.topology_change_sm(i, now);
                }
                if !changed {
                    break;
                }
            }
            let mut sent = false;
            for i in 0..self.ports.len() {
                sent |= self.transmit(i, now, tx);
            }
            if !sent {
                break;
            }
        }
    }
}

/// The port role bits of an RST BPDU's flags.
pub fn role_flags(role: PortRole) -> u8 {
    let bits = match role {
        PortRole::Disabled => 0,
        PortRole::Alternate | PortRole::Backup => 1,
        PortRole::Root => 2,
        PortRole::Designated => 3,
    };
    (bits << 2) & FLAG_ROLE_MASK
}
