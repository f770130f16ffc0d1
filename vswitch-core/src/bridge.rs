//! The bridge's control plane: ports added and removed at run time, VLAN-to-FID mapping,
//! configured FDB entries, aging, spanning-tree timers and statistics. The data path is in
//! [`crate::batch`].

use alloc::{boxed::Box, vec, vec::Vec};

use crate::batch::TxBatch;
use crate::fdb::{AgeReport, EntryKind, Fdb, FdbConfig, FdbError, HashKey, LOCAL_PORT};
use crate::features::{PortStats, VlanStats};
use crate::frame::MacAddr;
use crate::port::{MirrorMode, PortConfig, PortId, PortKind, PortState, SwitchType};
use crate::stp::rstp::RstpPortConfig;
use crate::stp::{Bpdu, Link, StpConfig, Tree};
use crate::vlan::{VlanConfig, VlanSet, MAX_VID};

/// Bridge-wide configuration.
///
/// Fields may be added in a minor release: start from [`BridgeConfig::new`] and set the fields you
/// change (or use `..` struct update syntax) rather than writing every field out.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// Hyper-V network type: which port kinds may be added.
    pub switch_type: SwitchType,
    /// Forwarding-table sizes, limits and ageing time.
    pub fdb: FdbConfig,
    /// The forwarding-table hash key. Use a secret random value: see [`HashKey`].
    pub hash_key: HashKey,
    /// Run the spanning tree with these parameters ([`StpConfig::protocol`] picks STP or
    /// RSTP).
    pub stp: Option<StpConfig>,
}

impl BridgeConfig {
    /// An external switch with default FDB settings and no STP.
    pub fn new(hash_key: HashKey) -> Self {
        Self {
            switch_type: SwitchType::External,
            fdb: FdbConfig::default(),
            hash_key,
            stp: None,
        }
    }
}

/// Why a configuration call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No port with this id.
    #[error("no port {0:?}")]
    NoSuchPort(PortId),
    /// The switch type does not admit another port of this kind.
    #[error("a {switch:?} switch does not admit another {kind:?} port")]
    KindNotAllowed {
        /// The switch's network type.
        switch: SwitchType,
        /// The refused kind.
        kind: PortKind,
    },
    /// A VID outside 1..=4094 (or a FID above 4095).
    #[error("vlan id {0} is outside 1..=4094")]
    InvalidVid(u16),
    /// A configured FDB entry was refused.
    #[error(transparent)]
    Fdb(#[from] FdbError),
    /// The spanning tree is not running.
    #[error("spanning tree is not enabled")]
    NoStp,
}

/// A port's live state.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) cfg: PortConfig,
    /// Effective state (administrative, or the spanning tree's; `Disabled` while the link is
    /// down).
    pub(crate) state: PortState,
    /// The link as the caller reported it.
    pub(crate) link: Link,
    /// The assigned MAC as a u64 when the spoofing guard is on, else `u64::MAX`.
    pub(crate) guard: u64,
    /// Whether the DHCP or router guard needs a look past the Ethernet header.
    pub(crate) inspect: bool,
    /// The longest accepted frame with 0, 1 and 2 tags.
    pub(crate) max_len: [usize; 3],
    pub(crate) stats: PortStats,
}

impl Port {
    fn new(cfg: PortConfig) -> Self {
        let mut p = Self {
            state: cfg.state,
            link: Link::FullDuplex,
            guard: u64::MAX,
            inspect: false,
            max_len: [0; 3],
            stats: PortStats::default(),
            cfg,
        };
        p.derive();
        p
    }

    fn derive(&mut self) {
        self.guard = self.cfg.guarded_mac().map_or(u64::MAX, MacAddr::to_u64);
        self.inspect = self.cfg.security.dhcp_guard || self.cfg.security.router_guard;
        self.max_len = [0, 1, 2].map(|t| self.cfg.max_frame_len(t));
    }
}

/// The per-port facts the flood and egress loops read, packed densely (one small record per
/// port, apart from the large [`Port`]), plus the transmit counters they update.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PortHot {
    pub(crate) present: bool,
    /// State is Forwarding.
    pub(crate) forwarding: bool,
    /// Flood knobs: bit 0 unknown unicast, bit 1 broadcast, bit 2 multicast.
    pub(crate) flood: u8,
    /// Offload capabilities: bit 0 checksum, bit 1 LSO.
    pub(crate) offloads: u8,
    pub(crate) mirror_source: bool,
    /// The port may receive through the data path's express lane: it is forwarding and no
    /// guard looks past the Ethernet header (see `Bridge::express`).
    pub(crate) express: bool,
    /// Learn source addresses.
    pub(crate) learning: bool,
    /// Frames may leave through the port they arrived on.
    pub(crate) hairpin: bool,
    /// PCP given to untagged frames.
    pub(crate) default_pcp: u8,
    /// Untagged frames are admitted, into [`pvid`](Self::pvid).
    pub(crate) untagged_ok: bool,
    /// The PVID (0: none).
    pub(crate) pvid: u16,
    /// The TPID the port classifies and pushes.
    pub(crate) tpid: u16,
    /// The longest frame accepted (and sent) with 0, 1 and 2 tags.
    pub(crate) max_len: [u32; 3],
    /// The assigned MAC as a u64 when the spoofing guard is on, else `u64::MAX`.
    pub(crate) guard: u64,
    /// Frames and bytes received through the express lane (the rest count in
    /// [`Port::stats`]).
    pub(crate) rx_frames: u64,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_frames: u64,
    pub(crate) tx_bytes: u64,
    pub(crate) tx_oversize: u64,
    pub(crate) tx_offload: u64,
}

/// The ports that take part in each VLAN, a bit per port: the express lane's VLAN tests in
/// one place. For each VID, one mask for each of the `INGRESS`, `EGRESS` and `UNTAGGED`
/// kinds: ports 0–63 in a row per VID (the lane's common case costs one shift and test),
/// the ports from 64 up in planes of 64 ports each, added as ports arrive (96 KiB each).
#[derive(Clone, Debug)]
pub(crate) struct VidPorts {
    low: Box<[[u64; 3]; 4096]>,
    high: Vec<u64>,
}

impl VidPorts {
    /// The port admits frames tagged with this VID (a valid VID, tagged frames accepted,
    /// in the ingress set or no ingress filtering).
    pub(crate) const INGRESS: usize = 0;
    /// The VID is in the port's egress set.
    pub(crate) const EGRESS: usize = 1;
    /// The port sends the VID untagged.
    pub(crate) const UNTAGGED: usize = 2;
    const PLANE: usize = 4096 * 3;

    fn new() -> Self {
        Self {
            low: vec![[0; 3]; 4096]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("4096 entries")),
            high: Vec::new(),
        }
    }

    /// The word of the high planes of `kind` for `vid` that holds the bit of port `i` (64
    /// or above).
    #[inline(always)]
    const fn word(vid: usize, kind: usize, i: usize) -> usize {
        ((i >> 6) - 1) * Self::PLANE + vid * 3 + kind
    }

    /// Whether port `i` has the bit of `kind` for `vid` (never for a port beyond the planes).
    #[inline(always)]
    pub(crate) fn has(&self, vid: usize, kind: usize, i: usize) -> bool {
        if i < 64 {
            let row = self.low.get(vid).map_or(0, |r| r[kind % 3]);
            row >> i & 1 != 0
        } else {
            self.has_high(vid, kind, i)
        }
    }

    #[inline(always)]
    fn has_high(&self, vid: usize, kind: usize, i: usize) -> bool {
        self.high
            .get(Self::word(vid, kind, i))
            .is_some_and(|m| m >> (i & 63) & 1 != 0)
    }

    /// How port `i` transmits `vid`: `None` if the VID is not in its egress set, else whether
    /// it sends it untagged.
    #[inline(always)]
    pub(crate) fn egress(&self, vid: usize, i: usize) -> Option<bool> {
        let (e, u) = if i < 64 {
            let row = self.low.get(vid).copied().unwrap_or_default();
            (row[Self::EGRESS] >> i, row[Self::UNTAGGED] >> i)
        } else {
            // The untagged word follows the egress word.
            const _: () = assert!(VidPorts::UNTAGGED == VidPorts::EGRESS + 1);
            let w = Self::word(vid, Self::EGRESS, i);
            match self.high.get(w..w + 2) {
                Some(&[e, u]) => (e >> (i & 63), u >> (i & 63)),
                _ => (0, 0),
            }
        };
        (e & 1 != 0).then_some(u & 1 != 0)
    }

    /// The mask of `kind` for `vid` of ports 0 to 63.
    #[inline(always)]
    pub(crate) fn low(&self, vid: usize, kind: usize) -> u64 {
        self.low.get(vid).map_or(0, |r| r[kind % 3])
    }

    /// Sets or clears port `i`'s bit of `kind` for `vid`, adding planes up to `i`'s.
    fn set(&mut self, vid: usize, kind: usize, i: usize, on: bool) {
        let m = if i < 64 {
            self.low.get_mut(vid).map(|r| &mut r[kind % 3])
        } else {
            let w = Self::word(vid, kind, i);
            if w >= self.high.len() {
                self.high.resize((i / 64) * Self::PLANE, 0);
            }
            self.high.get_mut(w)
        };
        if let Some(m) = m {
            set_bit(m, 1 << (i & 63), on);
        }
    }
}

/// One egress member of a VLAN, with how that port sends the VLAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FloodEntry {
    pub(crate) port: u32,
    pub(crate) tpid: u16,
    pub(crate) untagged: bool,
}

/// The switch: ports, forwarding table, VLANs, spanning tree.
///
/// Everything that changes per frame lives in preallocated storage, so [`Bridge::process`]
/// does not allocate once the output batch has grown to its working size.
#[derive(Debug)]
pub struct Bridge {
    pub(crate) switch_type: SwitchType,
    pub(crate) ports: Vec<Option<Port>>,
    /// Dense per-port data of the forwarding loops, indexed like `ports`.
    pub(crate) hot: Vec<PortHot>,
    pub(crate) fdb: Fdb,
    /// VID → FID.
    pub(crate) fid: Box<[u16]>,
    /// VID → member ports.
    pub(crate) vid_ports: VidPorts,
    /// Ports below 64 that are forwarding, a bit each.
    pub(crate) fwd_ports: u64,
    /// Ports below 64 that take floods of unknown unicast, broadcast and multicast (the bits
    /// of [`PortHot::flood`], in that order).
    pub(crate) flood_ports: [u64; 3],
    /// VID → egress member ports, ascending.
    pub(crate) flood: Vec<Vec<FloodEntry>>,
    /// The VLANs the switch itself ([`PortId::LOCAL`]) belongs to: it takes their broadcasts
    /// and multicasts.
    pub(crate) local_vlans: VlanSet,
    /// The member VLANs whose frames the switch itself takes tagged.
    pub(crate) local_tagged: VlanSet,
    /// The smallest untagged frame limit (`max_len[0]`) of any present port: a frame that
    /// fits it even with a tag pushed needs no per-copy size check when it is flooded.
    pub(crate) min_max_len: u32,
    /// The TPID every present port uses, or 0 if they differ.
    pub(crate) uniform_tpid: u16,
    /// Number of ports present (the indices in `ports` holding one).
    live: usize,
    /// Mirror destination ports, ascending.
    pub(crate) monitors: Vec<u32>,
    /// Number of mirror source ports.
    pub(crate) mirror_sources: usize,
    pub(crate) vlan_stats: Box<[VlanStats]>,
    pub(crate) stp: Option<Tree>,
    pub(crate) stp_out: Vec<(usize, Bpdu)>,
    /// Ports whose dynamic entries the spanning tree asked to flush.
    pub(crate) stp_flush: Vec<u32>,
    pub(crate) ageing_ms: u32,
    pub(crate) scratch: Vec<u8>,
    /// The latest time passed in (for spanning-tree timers started by configuration calls).
    pub(crate) now: u64,
    /// Frames the express lane forwarded (the tests check it is taken).
    #[cfg(test)]
    pub(crate) express_hits: usize,
    /// Floods, and those that took the loop without per-member checks, for the same tests.
    #[cfg(test)]
    pub(crate) floods: [usize; 2],
    /// Turns off the express lane and the flood loop's port masks, for the tests that
    /// compare the fast paths with the plain ones.
    #[cfg(test)]
    pub(crate) plain: bool,
}

/// Sets or clears `bit` in `mask`.
fn set_bit(mask: &mut u64, bit: u64, on: bool) {
    *mask = *mask & !bit | if on { bit } else { 0 };
}

fn check_vid(vid: u16) -> Result<u16, ConfigError> {
    if (1..=MAX_VID).contains(&vid) {
        Ok(vid)
    } else {
        Err(ConfigError::InvalidVid(vid))
    }
}

impl Bridge {
    /// A bridge with no ports. Allocates the forwarding table now (16 bytes per slot, twice
    /// the capacity rounded up to a power of two) and the per-VLAN tables, about 300 KiB
    /// whatever the configuration: VID → FID, flood lists, statistics and port masks. The
    /// port masks grow by 96 KiB when a port first takes an index from 64 up in a block of
    /// 64 (ports 64–127, 128–191, ...).
    pub fn new(config: BridgeConfig) -> Self {
        let stp = config.stp.map(|c| Tree::new(c, 0));
        Self {
            switch_type: config.switch_type,
            ports: Vec::new(),
            hot: Vec::new(),
            fdb: Fdb::new(config.fdb, config.hash_key),
            fid: (0..4096u16).collect(),
            vid_ports: VidPorts::new(),
            fwd_ports: 0,
            flood_ports: [0; 3],
            flood: vec![Vec::new(); 4096],
            local_vlans: VlanSet::EMPTY,
            local_tagged: VlanSet::EMPTY,
            min_max_len: 0,
            uniform_tpid: 0,
            live: 0,
            monitors: Vec::new(),
            mirror_sources: 0,
            vlan_stats: vec![VlanStats::default(); 4096].into_boxed_slice(),
            stp,
            stp_out: Vec::new(),
            stp_flush: Vec::new(),
            ageing_ms: config.fdb.ageing_ms,
            scratch: Vec::new(),
            now: 0,
            #[cfg(test)]
            express_hits: 0,
            #[cfg(test)]
            floods: [0; 2],
            #[cfg(test)]
            plain: false,
        }
    }

    /// The network type.
    pub fn switch_type(&self) -> SwitchType {
        self.switch_type
    }

    fn port_ref(&self, id: PortId) -> Result<&Port, ConfigError> {
        self.ports
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(ConfigError::NoSuchPort(id))
    }

    fn port_mut(&mut self, id: PortId) -> Result<&mut Port, ConfigError> {
        self.ports
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(ConfigError::NoSuchPort(id))
    }

    fn count_kind(&self, kind: PortKind, except: Option<usize>) -> usize {
        self.ports
            .iter()
            .enumerate()
            .filter(|(i, p)| Some(*i) != except && p.as_ref().is_some_and(|p| p.cfg.kind == kind))
            .count()
    }

    fn admit(&self, kind: PortKind, except: Option<usize>) -> Result<(), ConfigError> {
        let t = self.switch_type;
        // Counting costs a pass over the ports: skip it for kinds admitted whatever the
        // counts (VM ports, the many).
        let admitted = t.admits(kind, usize::MAX, usize::MAX)
            || t.admits(
                kind,
                self.count_kind(PortKind::Host, except),
                self.count_kind(PortKind::External, except),
            );
        if admitted {
            Ok(())
        } else {
            Err(ConfigError::KindNotAllowed {
                switch: self.switch_type,
                kind,
            })
        }
    }

    /// Adds a port; the lowest free index is used. Fails if the network type does not admit
    /// the port's kind.
    pub fn add_port(&mut self, cfg: PortConfig) -> Result<PortId, ConfigError> {
        self.admit(cfg.kind, None)?;
        // The lowest free index; with none free (the usual case), no scan.
        let i = if self.live == self.ports.len() {
            self.ports.len()
        } else {
            self.ports
                .iter()
                .position(Option::is_none)
                .unwrap_or(self.ports.len())
        };
        if i == self.ports.len() {
            self.ports.push(None);
            self.hot.push(PortHot::default());
        }
        self.ports[i] = Some(Port::new(cfg));
        self.live += 1;
        self.attach(i);
        self.add_flood_facts(i);
        Ok(PortId(i as u32))
    }

    /// Removes a port, its FDB entries and its place in every flood list; returns its
    /// configuration. Costs one pass over the forwarding table.
    pub fn remove_port(&mut self, id: PortId) -> Result<PortConfig, ConfigError> {
        self.port_ref(id)?;
        let i = id.0 as usize;
        self.detach(i);
        let port = self.ports[i].take().ok_or(ConfigError::NoSuchPort(id))?;
        self.live -= 1;
        self.fdb.flush_port(id.0);
        self.fdb.set_port_limit(id.0, u32::MAX);
        self.hot[i] = PortHot::default();
        self.set_port_bits(i);
        while self.ports.last().is_some_and(Option::is_none) {
            self.ports.pop();
            self.hot.pop();
        }
        self.refresh_flood_facts();
        self.sync_stp_states();
        Ok(port.cfg)
    }

    /// Replaces a port's configuration (the kind may change if the network type admits it).
    /// When its VLAN parameters change, the addresses it learned are forgotten (one pass over
    /// the forwarding table), as Linux does when a VLAN leaves a port: an entry in a VLAN the
    /// port left would send that VLAN's frames for the address to a port that drops them,
    /// instead of flooding them, until it aged out.
    pub fn set_port_config(&mut self, id: PortId, cfg: PortConfig) -> Result<(), ConfigError> {
        let i = id.0 as usize;
        let vlan_changed = self.port_ref(id)?.cfg.vlan != cfg.vlan;
        self.admit(cfg.kind, Some(i))?;
        if vlan_changed {
            self.fdb.flush_dynamic_on(&[id.0]);
        }
        self.detach(i);
        if let Some(p) = self.ports[i].as_mut() {
            p.cfg = cfg;
            p.state = p.cfg.state;
            p.derive();
        }
        self.attach(i);
        self.refresh_flood_facts();
        Ok(())
    }

    /// Changes only a port's VLAN parameters (see [`set_port_config`](Self::set_port_config)).
    pub fn set_port_vlan(&mut self, id: PortId, vlan: VlanConfig) -> Result<(), ConfigError> {
        let cfg = self.port_ref(id)?.cfg.clone().with_vlan(vlan);
        self.set_port_config(id, cfg)
    }

    /// Sets a port's administrative state (ports in the spanning tree follow the tree).
    pub fn set_port_state(&mut self, id: PortId, state: PortState) -> Result<(), ConfigError> {
        let p = self.port_mut(id)?;
        p.cfg.state = state;
        p.state = state;
        self.settle_port(id.0 as usize);
        self.apply_link(id.0 as usize);
        self.sync_stp_states();
        Ok(())
    }

    /// Reports a port's link state (up or down, and the duplex RSTP uses to detect a
    /// point-to-point link). A port whose link is down is `Disabled`; with the spanning tree
    /// on, the tree sees the port disabled (RSTP) or loses it until the link is back (STP).
    pub fn set_port_link(&mut self, id: PortId, link: Link) -> Result<(), ConfigError> {
        self.port_mut(id)?.link = link;
        self.settle_port(id.0 as usize);
        self.apply_link(id.0 as usize);
        self.sync_stp_states();
        Ok(())
    }

    /// Tells the spanning tree port `i`'s link (down also while administratively disabled,
    /// for RSTP).
    fn apply_link(&mut self, i: usize) {
        let Some(p) = self.ports.get(i).and_then(Option::as_ref) else {
            return;
        };
        if !p.cfg.stp {
            return;
        }
        let (link, cfg) = (p.link, Self::rstp_port(&p.cfg));
        let admin_down = p.cfg.state == PortState::Disabled;
        let (now, out) = (self.now, &mut self.stp_out);
        let tx = &mut |p, b| out.push((p, b));
        match self.stp.as_mut() {
            Some(t @ Tree::Rstp(_)) => {
                t.set_link(i, if admin_down { Link::Down } else { link }, now, tx)
            }
            Some(t @ Tree::Stp(_)) => match (link, t.role(i).is_some()) {
                (Link::Down, true) => t.remove_port(i, now, tx),
                (Link::HalfDuplex | Link::FullDuplex, false) => {
                    t.add_port(i, stp_port_number(i), cfg, now, tx)
                }
                _ => {}
            },
            None => {}
        }
    }

    fn rstp_port(c: &PortConfig) -> RstpPortConfig {
        RstpPortConfig {
            path_cost: c.path_cost,
            admin_edge: c.stp_edge,
            auto_edge: c.stp_auto_edge,
            point_to_point: c.stp_point_to_point,
        }
    }

    /// Hooks port `i` into the per-VID port bits, flood lists, mirroring, the FDB limit and
    /// the spanning tree (the caller updates the flood facts).
    fn attach(&mut self, i: usize) {
        self.set_vid_ports(i, true);
        let Some(p) = self.ports[i].as_ref() else {
            return;
        };
        let (egress, mirror, limit, stp, tree_cfg) = (
            p.cfg.vlan.egress.clone(),
            p.cfg.mirror,
            p.cfg.learn_limit,
            p.cfg.stp,
            Self::rstp_port(&p.cfg),
        );
        for vid in egress.iter() {
            let entry = FloodEntry {
                port: i as u32,
                tpid: p.cfg.tpid.0,
                untagged: p.cfg.vlan.untagged.contains(vid),
            };
            let list = &mut self.flood[usize::from(vid)];
            if let Err(pos) = list.binary_search_by_key(&entry.port, |e| e.port) {
                list.insert(pos, entry);
            }
        }
        match mirror {
            MirrorMode::Destination => {
                if let Err(pos) = self.monitors.binary_search(&(i as u32)) {
                    self.monitors.insert(pos, i as u32);
                }
            }
            MirrorMode::Source => self.mirror_sources += 1,
            MirrorMode::None => {}
        }
        self.fdb.set_port_limit(i as u32, limit.unwrap_or(u32::MAX));
        self.settle_port(i);
        // A port outside the spanning tree leaves the tree as it was: settling it alone is
        // enough (a pass over every port per added port made adding ports quadratic).
        if let (Some(stp), true) = (self.stp.as_mut(), stp) {
            let out = &mut self.stp_out;
            stp.add_port(i, stp_port_number(i), tree_cfg, self.now, &mut |p, b| {
                out.push((p, b))
            });
            self.apply_link(i);
            self.sync_stp_states();
        }
    }

    /// Unhooks port `i` (the reverse of [`attach`](Self::attach)).
    fn detach(&mut self, i: usize) {
        self.set_vid_ports(i, false);
        let Some(cfg) = self.ports[i].as_ref().map(|p| p.cfg.clone()) else {
            return;
        };
        for vid in cfg.vlan.egress.iter() {
            let list = &mut self.flood[usize::from(vid)];
            if let Ok(pos) = list.binary_search_by_key(&(i as u32), |e| e.port) {
                list.remove(pos);
            }
        }
        match cfg.mirror {
            MirrorMode::Destination => self.monitors.retain(|m| *m != i as u32),
            MirrorMode::Source => self.mirror_sources -= 1,
            MirrorMode::None => {}
        }
        if let Some(stp) = self.stp.as_mut() {
            let out = &mut self.stp_out;
            stp.remove_port(i, self.now, &mut |p, b| out.push((p, b)));
        }
    }

    /// Sets (`on`) or clears port `i`'s bits in [`vid_ports`](Self::vid_ports) for the VIDs
    /// of its VLAN configuration: [`attach`](Self::attach) sets them, [`detach`](Self::detach)
    /// clears them with the same configuration, so a port index without a port has no bits.
    /// The cost follows the port's VLANs (one step per member VID), not the 4,096 VIDs.
    fn set_vid_ports(&mut self, i: usize, on: bool) {
        let Some(p) = self.ports.get(i).and_then(Option::as_ref) else {
            return;
        };
        let v = &p.cfg.vlan;
        let vp = &mut self.vid_ports;
        for (kind, set) in [
            (VidPorts::INGRESS, &v.admitted_tagged()),
            (VidPorts::EGRESS, &v.egress),
            (VidPorts::UNTAGGED, &v.untagged),
        ] {
            for vid in set.iter() {
                vp.set(usize::from(vid), kind, i, on);
            }
        }
    }

    /// Recomputes port `i`'s dense record from its configuration and state, keeping the
    /// counters.
    fn refresh_hot(&mut self, i: usize) {
        let Some(p) = self.ports.get(i).and_then(Option::as_ref) else {
            return;
        };
        let c = &p.cfg;
        let h = &mut self.hot[i];
        h.present = true;
        h.forwarding = p.state == PortState::Forwarding;
        h.flood = u8::from(c.flood.unknown_unicast)
            | u8::from(c.flood.broadcast) << 1
            | u8::from(c.flood.multicast) << 2;
        h.offloads = u8::from(c.offloads.checksum) | u8::from(c.offloads.lso) << 1;
        h.mirror_source = c.mirror == MirrorMode::Source;
        h.express = h.forwarding && !p.inspect;
        h.learning = c.learning;
        h.hairpin = c.hairpin;
        h.default_pcp = c.default_pcp;
        h.untagged_ok = c.vlan.classify(None, c.default_pcp).is_ok();
        h.pvid = c.vlan.pvid.unwrap_or(0);
        h.tpid = c.tpid.0;
        h.max_len = p.max_len.map(|l| l as u32);
        h.guard = p.guard;
        self.set_port_bits(i);
    }

    /// Sets port `i`'s bits in [`fwd_ports`](Self::fwd_ports) and
    /// [`flood_ports`](Self::flood_ports) from its dense record.
    fn set_port_bits(&mut self, i: usize) {
        let Some(h) = self.hot.get(i) else { return };
        if i >= 64 {
            return;
        }
        let bit = 1u64 << i;
        set_bit(&mut self.fwd_ports, bit, h.forwarding);
        for (k, m) in self.flood_ports.iter_mut().enumerate() {
            set_bit(m, bit, h.flood >> k & 1 != 0);
        }
    }

    /// [`min_max_len`](Self::min_max_len) and [`uniform_tpid`](Self::uniform_tpid) from
    /// every present port: one pass over the ports.
    fn flood_facts(&self) -> (u32, u16) {
        let mut present = self.hot.iter().zip(&self.ports).filter(|(h, _)| h.present);
        let min_max_len = present
            .clone()
            .map(|(h, _)| h.max_len[0])
            .min()
            .unwrap_or(0);
        let first = present
            .next()
            .and_then(|(_, p)| p.as_ref())
            .map_or(0, |p| p.cfg.tpid.0);
        let uniform = present.all(|(_, p)| p.as_ref().is_some_and(|p| p.cfg.tpid.0 == first));
        (min_max_len, if uniform { first } else { 0 })
    }

    /// Recomputes [`min_max_len`](Self::min_max_len) and
    /// [`uniform_tpid`](Self::uniform_tpid) when a port is reconfigured or removed (the
    /// changes that can raise the one or unify the other; state changes do not move them).
    fn refresh_flood_facts(&mut self) {
        (self.min_max_len, self.uniform_tpid) = self.flood_facts();
    }

    /// Folds a newly added port `i` into [`min_max_len`](Self::min_max_len) and
    /// [`uniform_tpid`](Self::uniform_tpid) without a pass over the other ports: adding a
    /// port can only lower the one and break the other.
    fn add_flood_facts(&mut self, i: usize) {
        let (Some(h), Some(p)) = (self.hot.get(i), self.ports.get(i).and_then(Option::as_ref))
        else {
            return;
        };
        let (len, tpid) = (h.max_len[0], p.cfg.tpid.0);
        if self.live == 1 {
            (self.min_max_len, self.uniform_tpid) = (len, tpid);
        } else {
            self.min_max_len = self.min_max_len.min(len);
            if self.uniform_tpid != tpid {
                self.uniform_tpid = 0;
            }
        }
        debug_assert_eq!((self.min_max_len, self.uniform_tpid), self.flood_facts());
    }

    /// Sets port `i`'s effective state from its link, its administrative state and (if it
    /// takes part) the spanning tree's, and refreshes its dense record.
    fn settle_port(&mut self, i: usize) {
        let tree = self.stp.as_ref().map(|t| t.state(i));
        if let Some(p) = self.ports.get_mut(i).and_then(Option::as_mut) {
            p.state = match tree {
                _ if p.link == Link::Down => PortState::Disabled,
                Some(s) if p.cfg.stp && p.cfg.state != PortState::Disabled => s,
                _ => p.cfg.state,
            };
        }
        self.refresh_hot(i);
    }

    /// Copies spanning-tree port states into the ports that take part, applies the flushes
    /// the tree asked for and sets the ageing time it implies.
    pub(crate) fn sync_stp_states(&mut self) {
        if let Some(stp) = self.stp.as_mut() {
            let flush = &mut self.stp_flush;
            stp.drain_flushes(&mut |i| flush.push(i as u32));
        }
        if !self.stp_flush.is_empty() {
            self.fdb.flush_dynamic_on(&self.stp_flush);
            self.stp_flush.clear();
        }
        // Without a tree a port's state follows only its own configuration and link, and
        // whoever changes those settles that port: no pass over every port.
        if self.stp.is_none() {
            return;
        }
        for i in 0..self.ports.len() {
            self.settle_port(i);
        }
        let Some(stp) = self.stp.as_ref() else { return };
        let ageing = if stp.topology_change(self.now) {
            stp.forward_delay_ms().min(self.ageing_ms)
        } else {
            self.ageing_ms
        };
        self.fdb.set_ageing(ageing);
    }

    /// The ids of all ports, ascending.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| PortId(i as u32))
    }

    /// A port's configuration.
    pub fn port_config(&self, id: PortId) -> Option<&PortConfig> {
        self.port_ref(id).ok().map(|p| &p.cfg)
    }

    /// A port's effective state.
    pub fn port_state(&self, id: PortId) -> Option<PortState> {
        self.port_ref(id).ok().map(|p| p.state)
    }

    /// A port's counters.
    pub fn port_stats(&self, id: PortId) -> Option<PortStats> {
        let p = self.port_ref(id).ok()?;
        let h = &self.hot[id.0 as usize];
        let mut s = p.stats.clone();
        s.rx_frames += h.rx_frames;
        s.rx_bytes += h.rx_bytes;
        s.tx_frames += h.tx_frames;
        s.tx_bytes += h.tx_bytes;
        s.drops[crate::features::DropReason::TxOversize as usize] += h.tx_oversize;
        s.drops[crate::features::DropReason::Offload as usize] += h.tx_offload;
        Some(s)
    }

    /// A VLAN's counters.
    pub fn vlan_stats(&self, vid: u16) -> VlanStats {
        self.vlan_stats[usize::from(vid & 0x0fff)]
    }

    /// Maps `vid` to filtering database `fid` (shared learning). By default every VID is its
    /// own FID (IVL). Entries learned under the old FID stay until they age out.
    pub fn set_fid(&mut self, vid: u16, fid: u16) -> Result<(), ConfigError> {
        check_vid(vid)?;
        if fid > 4095 {
            return Err(ConfigError::InvalidVid(fid));
        }
        self.fid[usize::from(vid)] = fid;
        Ok(())
    }

    /// The FID of `vid`.
    pub fn fid(&self, vid: u16) -> u16 {
        self.fid[usize::from(vid & 0x0fff)]
    }

    /// Declares a private VLAN: every secondary (isolated or community) learns in the
    /// primary's FID, so replies from promiscuous ports find hosts without flooding.
    pub fn configure_pvlan(
        &mut self,
        primary: u16,
        secondaries: &[u16],
    ) -> Result<(), ConfigError> {
        check_vid(primary)?;
        let fid = self.fid(primary);
        for &s in secondaries {
            self.set_fid(s, fid)?;
        }
        Ok(())
    }

    /// Adds a configured entry for `mac` in `vid`'s FID on `port`.
    pub fn add_static(
        &mut self,
        vid: u16,
        mac: MacAddr,
        port: PortId,
        kind: EntryKind,
        now: u64,
    ) -> Result<(), ConfigError> {
        check_vid(vid)?;
        if kind != EntryKind::Local {
            self.port_ref(port)?;
        }
        let fid = self.fid(vid);
        Ok(self.fdb.insert_static(fid, mac, port.0, kind, now)?)
    }

    /// Adds the switch's own address in `vid`: frames to it are delivered to
    /// [`PortId::LOCAL`], and the switch joins `vid` (see
    /// [`set_local_vlan`](Self::set_local_vlan)) so that it also takes the VLAN's broadcasts
    /// and multicasts — ARP requests and IPv6 neighbour solicitations for that address.
    pub fn add_local(&mut self, vid: u16, mac: MacAddr, now: u64) -> Result<(), ConfigError> {
        self.add_static(vid, mac, PortId::LOCAL, EntryKind::Local, now)?;
        self.local_vlans.insert(vid);
        Ok(())
    }

    /// Makes the switch itself a member of `vid` or not. A member VLAN's broadcasts and
    /// multicasts are also delivered to [`PortId::LOCAL`], as Linux delivers them to the
    /// bridge device; unknown unicast is not (the switch's own interface is not
    /// promiscuous). Membership is independent of the local entries: removing an entry keeps
    /// it. No VLAN is a member until this or [`add_local`](Self::add_local) makes it one.
    ///
    /// Like a port's, the switch's own membership is untagged or tagged: frames to
    /// [`PortId::LOCAL`] come untagged (a received tag removed, [`Edit::PopTag`]) unless
    /// [`set_local_tagged`](Self::set_local_tagged) makes `vid` tagged. A local stack on one
    /// VLAN keeps the default; one on several makes them tagged, so each frame says its VLAN
    /// (an untagged frame from an access port does not otherwise).
    ///
    /// [`Edit::PopTag`]: crate::vlan::Edit::PopTag
    pub fn set_local_vlan(&mut self, vid: u16, member: bool) -> Result<(), ConfigError> {
        check_vid(vid)?;
        self.local_vlans.set(vid, member);
        Ok(())
    }

    /// The VLANs the switch itself belongs to (see [`set_local_vlan`](Self::set_local_vlan)).
    pub fn local_vlans(&self) -> &VlanSet {
        &self.local_vlans
    }

    /// Makes the switch itself take `vid`'s frames tagged (802.1Q, TPID 0x8100, priority kept)
    /// or untagged, the default (see [`set_local_vlan`](Self::set_local_vlan)). Applies to
    /// unicast to a local address and to the member VLANs' broadcasts and multicasts; it does
    /// not make the switch a member.
    pub fn set_local_tagged(&mut self, vid: u16, tagged: bool) -> Result<(), ConfigError> {
        check_vid(vid)?;
        self.local_tagged.set(vid, tagged);
        Ok(())
    }

    /// The VLANs whose frames the switch itself takes tagged (see
    /// [`set_local_tagged`](Self::set_local_tagged)).
    pub fn local_tagged(&self) -> &VlanSet {
        &self.local_tagged
    }

    /// Removes the entry for `mac` in `vid`'s FID.
    pub fn remove_entry(&mut self, vid: u16, mac: MacAddr) -> bool {
        self.fdb.remove(self.fid(vid), mac)
    }

    /// Where a frame to `mac` in `vid` would go (`None`: flooded).
    pub fn lookup(&self, vid: u16, mac: MacAddr, now: u64) -> Option<PortId> {
        self.fdb.lookup(self.fid(vid), mac, now).map(PortId)
    }

    /// The forwarding table (read-only: dumps, sizes).
    pub fn fdb(&self) -> &Fdb {
        &self.fdb
    }

    /// Removes every dynamic entry.
    pub fn flush(&mut self) {
        self.fdb.flush_dynamic();
    }

    /// Sets the ageing time (ms); 0 disables learning.
    pub fn set_ageing(&mut self, ms: u32) {
        self.ageing_ms = ms;
        self.sync_stp_states();
        if self.stp.is_none() {
            self.fdb.set_ageing(ms);
        }
    }

    /// Removes expired entries, visiting at most `budget` table slots (see [`Fdb::age`]).
    pub fn age(&mut self, now: u64, budget: usize) -> AgeReport {
        self.fdb.age(now, budget)
    }

    /// Removes every expired entry now (a full pass: use [`age`](Self::age) on the hot path).
    pub fn age_all(&mut self, now: u64) -> usize {
        self.fdb.age_all(now)
    }

    /// The spanning tree, if enabled.
    pub fn stp(&self) -> Option<&Tree> {
        self.stp.as_ref()
    }

    /// Runs the spanning-tree timers at `now` and appends BPDUs to send to `out` (as arena
    /// frames). Call it a few times a second when STP is on; without STP it does nothing.
    pub fn tick(&mut self, now: u64, out: &mut TxBatch) {
        self.now = now;
        if let Some(stp) = self.stp.as_mut() {
            let o = &mut self.stp_out;
            stp.tick(now, &mut |p, b| o.push((p, b)));
        }
        self.flush_stp_out(out);
    }

    /// Turns queued BPDUs into transmit actions and re-syncs port states.
    pub(crate) fn flush_stp_out(&mut self, out: &mut TxBatch) {
        self.sync_stp_states();
        let Some(stp) = self.stp.as_ref() else {
            self.stp_out.clear();
            return;
        };
        let mac = MacAddr::from_u64(stp.bridge_id().0);
        for (p, bpdu) in self.stp_out.drain(..) {
            if self.ports.get(p).is_some_and(Option::is_some) {
                out.push_generated(PortId(p as u32), |buf| {
                    bpdu.emit_frame(mac, buf).unwrap_or(0)
                });
            }
        }
    }

    /// Whether a port id is the local pseudo-port.
    pub(crate) fn is_local(port: u32) -> bool {
        port == LOCAL_PORT
    }
}

/// The spanning-tree port number of port index `i`: 1 to 4,095 (802.1D port numbers have 12
/// bits, and 0 is not a port), so indices 4,095 apart share a number.
fn stp_port_number(i: usize) -> u16 {
    (i % 4095) as u16 + 1
}

#[cfg(test)]
mod tests;
