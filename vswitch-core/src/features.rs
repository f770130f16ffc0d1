//! Hyper-V port features that look past the Ethernet header (DHCP guard, router guard),
//! drop reasons, and per-port and per-VLAN statistics.
//!
//! Spoofing protection, private VLANs and mirroring need no deep inspection: the first is a
//! source-address compare in the pipeline, private VLANs are VLAN membership plus shared
//! learning ([`crate::vlan::VlanConfig::isolated`] and friends, [`crate::Bridge::set_fid`]),
//! mirroring is extra transmit actions ([`crate::port::MirrorMode`]).

use crate::frame::{be16, EtherType, TAG_LEN};
use crate::packet::{
    self, IpProtocol, Ipv4Packet, Ipv6Packet, UdpDatagram, BOOTP_REPLY, DHCPV6_CLIENT_PORT,
    DHCPV6_SERVER_PORT, DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};

/// Why the bridge dropped a received frame (or one copy of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum DropReason {
    /// The ingress port does not exist.
    NoSuchPort,
    /// The ingress port is disabled, blocking or listening.
    PortState,
    /// Shorter than an Ethernet header, or a tag of the port's TPID is cut off.
    Malformed,
    /// Group or all-zero source address.
    InvalidSource,
    /// Longer than the port's MTU allows.
    Oversize,
    /// VID 4095.
    ReservedVid,
    /// Frame format not admitted by the port (acceptable frame types).
    FrameType,
    /// Ingress filtering: VID not in the port's set.
    NotMember,
    /// Untagged frame on a port without a PVID.
    NoPvid,
    /// Source MAC is not the port's assigned MAC.
    MacSpoofing,
    /// DHCP server message from a guarded port.
    DhcpGuard,
    /// Router advertisement or redirect from a guarded port.
    RouterGuard,
    /// BPDU on a BPDU-guarded (or non-STP) port.
    BpduGuard,
    /// A reserved 01-80-C2-00-00-0x destination not in the port's forward mask.
    Reserved,
    /// The port is in the learning state: learned, not forwarded.
    Learning,
    /// Known unicast destination on the ingress port (no hairpin).
    Reflection,
    /// Known unicast destination on a port that may not transmit it (VLAN egress set,
    /// port state, private VLAN).
    EgressFilter,
    /// One copy was longer than the egress port accepts (counted on the egress port).
    TxOversize,
    /// A frame asked for checksum or segmentation offload that could not be done in
    /// software (not TCP/UDP over IP, malformed headers); counted on the egress port.
    Offload,
}

impl DropReason {
    /// Number of reasons (grows when reasons are added).
    pub const COUNT: usize = DropReason::Offload as usize + 1;

    /// Every reason, in declaration order (`ALL[r as usize] == r`).
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::NoSuchPort,
        DropReason::PortState,
        DropReason::Malformed,
        DropReason::InvalidSource,
        DropReason::Oversize,
        DropReason::ReservedVid,
        DropReason::FrameType,
        DropReason::NotMember,
        DropReason::NoPvid,
        DropReason::MacSpoofing,
        DropReason::DhcpGuard,
        DropReason::RouterGuard,
        DropReason::BpduGuard,
        DropReason::Reserved,
        DropReason::Learning,
        DropReason::Reflection,
        DropReason::EgressFilter,
        DropReason::TxOversize,
        DropReason::Offload,
    ];
}

const _: () = {
    let mut i = 0;
    while i < DropReason::COUNT {
        assert!(DropReason::ALL[i] as usize == i);
        i += 1;
    }
};

/// Counters of one port (counters may be added).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted (including flooded and mirrored copies).
    pub tx_frames: u64,
    /// Bytes transmitted, as received (before egress edits).
    pub tx_bytes: u64,
    /// Received frames flooded.
    pub flooded: u64,
    /// New FDB entries learned on this port.
    pub learned: u64,
    /// FDB entries that moved to this port.
    pub moves: u64,
    /// Source addresses a limit refused.
    pub learn_refused: u64,
    /// BPDUs consumed by the spanning tree.
    pub bpdus: u64,
    /// Drops by [`DropReason`] (ingress reasons on the ingress port, `TxOversize` and
    /// `Offload` on the egress port): see [`dropped`](Self::dropped) and
    /// [`drops`](Self::drops).
    pub(crate) drops: [u64; DropReason::COUNT],
}

impl PortStats {
    /// The drop counter for `r`.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// Every drop counter, with its reason, in [`DropReason::ALL`] order.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().zip(self.drops.iter().copied())
    }
}

/// Counters of one VLAN (counters may be added).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VlanStats {
    /// Frames classified into the VLAN.
    pub rx_frames: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Copies transmitted in the VLAN.
    pub tx_frames: u64,
}

/// What a guard found in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardHit {
    /// A DHCPv4 or DHCPv6 server message.
    DhcpServer,
    /// A router advertisement or redirect, or an IPv6 packet whose ICMPv6 type cannot be
    /// determined (truncated or over-long extension chain; RFC 7113).
    Router,
}

/// Runs the DHCP and router guards over a frame, looking through every tag: a receiver
/// (Linux, for one) strips any number of stacked priority tags, so a guard that stopped at a
/// fixed depth could be walked around with one more tag.
pub fn inspect(frame: &[u8], dhcp: bool, router: bool) -> Option<GuardHit> {
    let mut off = 12;
    let ethertype = loop {
        let t = EtherType(be16(frame, off)?);
        off += 2;
        if !t.is_tag() {
            break t;
        }
        off += TAG_LEN - 2;
    };
    let l3 = &frame[off..];
    match ethertype {
        EtherType::IPV4 => inspect_v4(l3, dhcp, router),
        EtherType::IPV6 => inspect_v6(l3, dhcp, router),
        _ => None,
    }
}

fn inspect_v4(l3: &[u8], dhcp: bool, router: bool) -> Option<GuardHit> {
    let ip = Ipv4Packet::new_checked(l3).ok()?;
    if ip.frag_offset() != 0 {
        return None;
    }
    let l4 = ip.payload();
    match ip.protocol() {
        IpProtocol::UDP if dhcp => {
            let Ok(udp) = UdpDatagram::new_checked(l4) else {
                // A first fragment too short for the UDP header hides its ports.
                return ip.more_frags().then_some(GuardHit::DhcpServer);
            };
            // Anything to the client port is a server's (or relay's) message, whatever its
            // source port or payload: a first fragment need not carry the BOOTP op byte.
            let to_client = udp.dst_port() == DHCP_CLIENT_PORT;
            let reply = udp.payload().first() == Some(&BOOTP_REPLY);
            (to_client || udp.src_port() == DHCP_SERVER_PORT && reply)
                .then_some(GuardHit::DhcpServer)
        }
        IpProtocol::ICMP if router => matches!(
            l4.first(),
            Some(&packet::ICMPV4_REDIRECT | &packet::ICMPV4_ROUTER_ADVERT)
        )
        .then_some(GuardHit::Router),
        _ => None,
    }
}

fn inspect_v6(l3: &[u8], dhcp: bool, router: bool) -> Option<GuardHit> {
    let ip = Ipv6Packet::new_checked(l3).ok()?;
    let Ok(ul) = ip.upper_layer() else {
        return router.then_some(GuardHit::Router);
    };
    if !ul.first_fragment {
        return None;
    }
    let l4 = &ip.packet()[ul.offset..];
    match ul.protocol {
        IpProtocol::UDP if dhcp => {
            let Ok(udp) = UdpDatagram::new_checked(l4) else {
                return None;
            };
            let to_client = udp.dst_port() == DHCPV6_CLIENT_PORT;
            let server_msg = udp.src_port() == DHCPV6_SERVER_PORT
                && udp
                    .payload()
                    .first()
                    .is_some_and(|t| packet::is_dhcpv6_server_message(*t));
            (to_client || server_msg).then_some(GuardHit::DhcpServer)
        }
        IpProtocol::ICMPV6 if router => match l4.first() {
            Some(&packet::ICMPV6_ROUTER_ADVERT | &packet::ICMPV6_REDIRECT) => {
                Some(GuardHit::Router)
            }
            // The first fragment must carry the ICMPv6 header (RFC 7112).
            None => Some(GuardHit::Router),
            _ => None,
        },
        _ => None,
    }
}
