//! Port identity and configuration: Hyper-V network and port kinds, VLAN mode, security
//! settings (the `Msvm_EthernetSwitchPortSecuritySettingData` fields this crate models),
//! mirroring, offload capabilities and forwarding knobs.

use crate::frame::{EtherType, MacAddr};
use crate::stp::PointToPoint;
use crate::vlan::{VlanConfig, VlanSet, DEFAULT_VID};

/// A port handle. Indices of removed ports are reused by later [`crate::Bridge::add_port`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u32);

impl PortId {
    /// The switch itself: the target of frames addressed to a local FDB entry.
    pub const LOCAL: Self = Self(crate::fdb::LOCAL_PORT);
}

/// Hyper-V virtual switch network types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SwitchType {
    /// VM ports only.
    Private,
    /// VM ports plus at most one host (management OS) port.
    Internal,
    /// VM ports, at most one host port and at most one external port (the uplink to a
    /// physical adapter).
    #[default]
    External,
}

/// What is attached to a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PortKind {
    /// A virtual machine's network adapter.
    Vm,
    /// The management OS's (host) adapter.
    Host,
    /// The uplink to a physical adapter.
    External,
}

impl SwitchType {
    /// Whether a switch of this type accepts a port of `kind`, given how many host and
    /// external ports it already has.
    pub fn admits(self, kind: PortKind, hosts: usize, externals: usize) -> bool {
        match (self, kind) {
            (_, PortKind::Vm) => true,
            (SwitchType::Private, _) => false,
            (_, PortKind::Host) => hosts == 0,
            (SwitchType::External, PortKind::External) => externals == 0,
            (SwitchType::Internal, PortKind::External) => false,
        }
    }
}

/// Spanning-tree / administrative port state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PortState {
    /// Administratively down: nothing in or out.
    Disabled,
    /// STP blocking (RSTP discarding): only BPDUs are received.
    Blocking,
    /// STP listening: only BPDUs are received.
    Listening,
    /// Learning: sources are learned, nothing is forwarded.
    Learning,
    /// Forwarding.
    #[default]
    Forwarding,
}

/// Hyper-V port security settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PortSecurity {
    /// Allow source MACs other than the port's assigned MAC (`AllowMacSpoofing`). Without
    /// an assigned MAC the port cannot be guarded and this is ignored.
    pub allow_mac_spoofing: bool,
    /// Drop DHCP server messages (DHCPv4 BOOTREPLY and anything to UDP port 68, DHCPv6
    /// ADVERTISE/REPLY/RECONFIGURE/RELAY-REPL and anything to UDP port 546) received on this
    /// port (`EnableDhcpGuard`).
    pub dhcp_guard: bool,
    /// Drop router advertisements and redirects (ICMPv6 134/137, ICMPv4 9/5) received on
    /// this port (`EnableRouterGuard`).
    pub router_guard: bool,
    /// Drop BPDUs received on this port (Linux `guard`).
    pub bpdu_guard: bool,
}

/// Hyper-V port mirroring modes (`PortMirroring`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MirrorMode {
    /// Not mirrored.
    #[default]
    None,
    /// Frames received on or sent to this port are copied to every destination port.
    Source,
    /// This port receives the copies.
    Destination,
}

/// What a port's transmit side can finish in hardware (or its guest driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PortOffloads {
    /// TCP/UDP checksum insertion: frames with a pending checksum are passed on as they are.
    pub checksum: bool,
    /// Large-send offload: oversized TCP segments are passed on for the port to segment.
    pub lso: bool,
}

/// Per-port flood knobs (Linux `flood`, `bcast_flood`, `mcast_flood`), applied on egress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FloodControl {
    /// Unknown unicast.
    pub unknown_unicast: bool,
    /// Broadcast.
    pub broadcast: bool,
    /// Multicast (including relayed reserved addresses).
    pub multicast: bool,
}

impl Default for FloodControl {
    fn default() -> Self {
        Self {
            unknown_unicast: true,
            broadcast: true,
            multicast: true,
        }
    }
}

/// A port's whole configuration.
///
/// Fields may be added in a minor release: start from a constructor ([`PortConfig::vm`], [`host`](PortConfig::host),
/// [`external`](PortConfig::external), [`plain`](PortConfig::plain)) and set the fields you
/// change (or use `..` struct update syntax) rather than writing every field out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortConfig {
    /// What is attached.
    pub kind: PortKind,
    /// The adapter's assigned MAC (VM and host ports).
    pub mac: Option<MacAddr>,
    /// VLAN parameters.
    pub vlan: VlanConfig,
    /// The TPID this port classifies and pushes: [`EtherType::VLAN`] (C-VLAN port) or
    /// [`EtherType::QINQ`] (S-VLAN port). Frames tagged with another TPID are untagged here.
    pub tpid: EtherType,
    /// PCP given to untagged frames.
    pub default_pcp: u8,
    /// MTU: the longest accepted frame is 14 + MTU + 4 per tag present.
    pub mtu: u16,
    /// Learn source addresses.
    pub learning: bool,
    /// Most dynamic FDB entries on this port (`None` = only the global limit).
    pub learn_limit: Option<u32>,
    /// Flooding on egress.
    pub flood: FloodControl,
    /// Allow a frame to leave through the port it arrived on (reflective relay, VEPA).
    pub hairpin: bool,
    /// Bit `x` relays 01-80-C2-00-00-0x received on this port. Bits 0 and 1 have no effect:
    /// -00 is consumed by the spanning tree when it runs and flooded otherwise (as Linux does),
    /// -01 (PAUSE) is never relayed.
    pub group_fwd_mask: u16,
    /// Security settings.
    pub security: PortSecurity,
    /// Mirroring role.
    pub mirror: MirrorMode,
    /// Transmit offload capabilities.
    pub offloads: PortOffloads,
    /// Take part in the spanning tree (when the bridge runs one). Ports that do not are
    /// always forwarding and drop BPDUs.
    pub stp: bool,
    /// STP path cost of this port.
    pub path_cost: u32,
    /// RSTP AdminEdge: the port starts as an edge port, forwarding at once, until it hears a
    /// BPDU.
    pub stp_edge: bool,
    /// RSTP AutoEdge: the port becomes an edge port when it hears no BPDU for the edge delay.
    pub stp_auto_edge: bool,
    /// RSTP adminPointToPointMAC: rapid agreement needs a point-to-point link.
    pub stp_point_to_point: PointToPoint,
    /// Administrative state; with STP on, the spanning tree drives participating ports.
    pub state: PortState,
}

impl PortConfig {
    fn base(kind: PortKind, mac: Option<MacAddr>, vlan: VlanConfig) -> Self {
        Self {
            kind,
            mac,
            vlan,
            tpid: EtherType::VLAN,
            default_pcp: 0,
            mtu: 1500,
            learning: true,
            learn_limit: None,
            flood: FloodControl::default(),
            hairpin: false,
            group_fwd_mask: 0,
            security: PortSecurity::default(),
            mirror: MirrorMode::None,
            offloads: PortOffloads::default(),
            stp: false,
            path_cost: 2,
            stp_edge: false,
            stp_auto_edge: true,
            stp_point_to_point: PointToPoint::Auto,
            state: PortState::Forwarding,
        }
    }

    /// A VM adapter with its assigned MAC: untagged in VLAN 1, MAC spoofing disallowed (the
    /// Hyper-V default).
    pub fn vm(mac: MacAddr) -> Self {
        Self::base(PortKind::Vm, Some(mac), VlanConfig::access(DEFAULT_VID))
    }

    /// The management OS adapter: untagged in VLAN 1, spoofing allowed.
    pub fn host(mac: MacAddr) -> Self {
        let mut c = Self::base(PortKind::Host, Some(mac), VlanConfig::access(DEFAULT_VID));
        c.security.allow_mac_spoofing = true;
        c
    }

    /// The external uplink: a trunk of every VLAN with VLAN 1 native untagged, taking part in
    /// STP, with checksum and LSO offloads (a physical NIC).
    pub fn external() -> Self {
        let mut c = Self::base(
            PortKind::External,
            None,
            VlanConfig::trunk(VlanSet::all(), Some(DEFAULT_VID)),
        );
        c.stp = true;
        c.offloads = PortOffloads {
            checksum: true,
            lso: true,
        };
        c
    }

    /// A plain bridge port (no Hyper-V policy): access VLAN 1, spoofing allowed.
    pub fn plain() -> Self {
        let mut c = Self::base(PortKind::Vm, None, VlanConfig::access(DEFAULT_VID));
        c.security.allow_mac_spoofing = true;
        c
    }

    /// Replaces the VLAN parameters.
    pub fn with_vlan(mut self, vlan: VlanConfig) -> Self {
        self.vlan = vlan;
        self
    }

    /// The source MAC every frame must carry, if the spoofing guard is active.
    pub fn guarded_mac(&self) -> Option<MacAddr> {
        self.mac.filter(|_| !self.security.allow_mac_spoofing)
    }

    /// The longest frame accepted with `tags` tags.
    pub fn max_frame_len(&self, tags: usize) -> usize {
        crate::frame::HEADER_LEN + usize::from(self.mtu) + 4 * tags
    }
}
