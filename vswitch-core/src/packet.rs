//! Just enough of IPv4, IPv6, ARP, UDP, TCP, ICMP and DHCP for the port features (DHCP guard,
//! router guard) and the offloads (checksums, segmentation): checked views over bytes.
//!
//! Each view's `new_checked` validates the lengths its accessors rely on, so no accessor panics
//! afterwards. IP views trim Ethernet padding: their payload ends where the IP length says.

use crate::frame::{be16, be32};
use crate::macros::open_enum;

open_enum! {
    /// An IP protocol / IPv6 next-header number.
    pub struct IpProtocol(u8) {
        /// IPv6 hop-by-hop options.
        HOP_BY_HOP = 0,
        /// ICMP for IPv4.
        ICMP = 1,
        /// TCP.
        TCP = 6,
        /// UDP.
        UDP = 17,
        /// IPv6 routing header.
        ROUTING = 43,
        /// IPv6 fragment header.
        FRAGMENT = 44,
        /// Encapsulating security payload.
        ESP = 50,
        /// Authentication header.
        AH = 51,
        /// ICMPv6.
        ICMPV6 = 58,
        /// IPv6 "no next header".
        NO_NEXT = 59,
        /// IPv6 destination options.
        DEST_OPTS = 60,
    }
}

/// Why bytes are not a well-formed packet of the expected kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The bytes end before the header (or the length it declares) does.
    #[error("packet of {len} bytes is truncated: {needed} needed")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The IP version nibble is not the one expected.
    #[error("ip version {0} where another was expected")]
    Version(u8),
    /// A header-length field smaller than the fixed header.
    #[error("header length {0} is below the minimum")]
    HeaderLen(usize),
    /// The IPv6 extension-header chain is longer than this crate walks.
    #[error("ipv6 extension header chain longer than {MAX_EXT_HEADERS}")]
    ExtensionChain,
}

fn need(len: usize, needed: usize) -> Result<(), PacketError> {
    if len < needed {
        Err(PacketError::Truncated { len, needed })
    } else {
        Ok(())
    }
}

/// A checked IPv4 header view. Invariants: at least 20 bytes, version 4, `20 <= IHL*4 <=
/// total length <= buffer length`.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Validates the header and its lengths.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        need(b.len(), 20)?;
        if b[0] >> 4 != 4 {
            return Err(PacketError::Version(b[0] >> 4));
        }
        let hl = usize::from(b[0] & 15) * 4;
        if hl < 20 {
            return Err(PacketError::HeaderLen(hl));
        }
        let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
        if total < hl {
            return Err(PacketError::HeaderLen(total));
        }
        need(b.len(), total)?;
        Ok(Self { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[0] & 15) * 4
    }
    /// Total length (header + payload) from the header.
    pub fn total_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.b()[2], self.b()[3]]))
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.b()[4], self.b()[5]])
    }
    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        u16::from_be_bytes([self.b()[6], self.b()[7]]) & 0x1fff
    }
    /// The more-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.b()[6] & 0x20 != 0
    }
    /// Protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.b()[9])
    }
    /// Source address.
    pub fn src(&self) -> [u8; 4] {
        let b = self.b();
        [b[12], b[13], b[14], b[15]]
    }
    /// Destination address.
    pub fn dst(&self) -> [u8; 4] {
        let b = self.b();
        [b[16], b[17], b[18], b[19]]
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b()[10], self.b()[11]])
    }
    /// Whether the header checksum verifies.
    pub fn checksum_ok(&self) -> bool {
        crate::offload::checksum(&self.b()[..self.header_len()]) == 0
    }
    /// The payload, trimmed to the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len()]
    }
}

/// Where an IPv6 packet's upper-layer header is, after the extension headers (made by
/// [`Ipv6Packet::upper_layer`]; fields may be added).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpperLayer {
    /// The upper-layer protocol.
    pub protocol: IpProtocol,
    /// Offset of its header from the start of the IPv6 header.
    pub offset: usize,
    /// `false` for a non-first fragment (the upper-layer header is in another fragment).
    pub first_fragment: bool,
    /// Offset of the final destination address (16 bytes) from the start of the IPv6 header:
    /// the header's own destination (24), or, as a sender sees a packet with a Routing header
    /// that has segments left, the last address of that header (RFC 8200 §8.1: the address
    /// the upper-layer pseudo-header uses). `None` when a Routing header with segments left is
    /// of a type whose addresses this parser does not read (types 0, 2 and 4 are read).
    pub final_destination: Option<usize>,
}

/// The longest IPv6 extension-header chain [`Ipv6Packet::upper_layer`] walks.
pub const MAX_EXT_HEADERS: usize = 8;

/// A checked IPv6 header view. Invariants: at least 40 bytes, version 6, `40 + payload length
/// <= buffer length`.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Validates the fixed header and the payload length.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        need(b.len(), 40)?;
        if b[0] >> 4 != 6 {
            return Err(PacketError::Version(b[0] >> 4));
        }
        let total = 40 + usize::from(u16::from_be_bytes([b[4], b[5]]));
        need(b.len(), total)?;
        Ok(Self { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Payload length from the header.
    pub fn payload_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.b()[4], self.b()[5]]))
    }
    /// The first next-header value.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.b()[6])
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }
    /// Source address.
    pub fn src(&self) -> [u8; 16] {
        self.b()[8..24].try_into().unwrap_or([0; 16])
    }
    /// Destination address.
    pub fn dst(&self) -> [u8; 16] {
        self.b()[24..40].try_into().unwrap_or([0; 16])
    }
    /// Header plus payload, Ethernet padding excluded.
    pub fn packet(&self) -> &[u8] {
        &self.b()[..40 + self.payload_len()]
    }

    /// Walks hop-by-hop, routing, fragment, destination-options and AH headers to the upper
    /// layer. A chain that runs past the packet is `Truncated`; one longer than
    /// [`MAX_EXT_HEADERS`] is an error too (RFC 7113 asks RA guards to treat both as suspect).
    pub fn upper_layer(&self) -> Result<UpperLayer, PacketError> {
        let b = self.packet();
        let mut proto = self.next_header();
        let mut off = 40;
        let mut first_fragment = true;
        let mut final_destination = Some(24);
        for _ in 0..=MAX_EXT_HEADERS {
            let len = match proto {
                IpProtocol::ROUTING => {
                    need(b.len(), off + 4)?;
                    let len = 8 + usize::from(b[off + 1]) * 8;
                    if b[off + 3] != 0 {
                        final_destination = routing_final_destination(b[off + 2], off, len);
                    }
                    len
                }
                IpProtocol::HOP_BY_HOP | IpProtocol::DEST_OPTS => {
                    need(b.len(), off + 2)?;
                    8 + usize::from(b[off + 1]) * 8
                }
                IpProtocol::AH => {
                    need(b.len(), off + 2)?;
                    (usize::from(b[off + 1]) + 2) * 4
                }
                IpProtocol::FRAGMENT => {
                    need(b.len(), off + 8)?;
                    if u16::from_be_bytes([b[off + 2], b[off + 3]]) >> 3 != 0 {
                        first_fragment = false;
                    }
                    8
                }
                _ => {
                    return Ok(UpperLayer {
                        protocol: proto,
                        offset: off,
                        first_fragment,
                        final_destination,
                    })
                }
            };
            need(b.len(), off + len)?;
            proto = IpProtocol(b[off]);
            off += len;
        }
        Err(PacketError::ExtensionChain)
    }
}

/// Where the final destination of a Routing header of type `kind`, `len` bytes at `off`, with
/// segments left, is: the last address of types 0 and 2 (after 4 reserved bytes), the first
/// entry of a segment routing header (type 4, RFC 8754: the list is in reverse order).
fn routing_final_destination(kind: u8, off: usize, len: usize) -> Option<usize> {
    let addresses = (len - 8) / 16;
    match kind {
        0 | 2 if addresses > 0 => Some(off + 8 + 16 * (addresses - 1)),
        4 if addresses > 0 => Some(off + 8),
        _ => None,
    }
}

/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;

/// A checked view of an Ethernet/IPv4 ARP packet (28 bytes).
#[derive(Clone, Copy, Debug)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Checks the length and that hardware/protocol are Ethernet/IPv4 with 6/4-byte addresses.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        need(b.len(), 28)?;
        if b[..6] != [0, 1, 8, 0, 6, 4] {
            return Err(PacketError::HeaderLen(usize::from(b[4])));
        }
        Ok(Self { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Operation ([`ARP_REQUEST`], [`ARP_REPLY`]).
    pub fn operation(&self) -> u16 {
        u16::from_be_bytes([self.b()[6], self.b()[7]])
    }
    /// Sender hardware address.
    pub fn sender_mac(&self) -> crate::frame::MacAddr {
        crate::frame::MacAddr::from_bytes(&self.b()[8..]).unwrap_or_default()
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> [u8; 4] {
        let b = self.b();
        [b[14], b[15], b[16], b[17]]
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> [u8; 4] {
        let b = self.b();
        [b[24], b[25], b[26], b[27]]
    }
}

/// A checked UDP header view (at least 8 bytes).
#[derive(Clone, Copy, Debug)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// Checks that the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        need(buffer.as_ref().len(), 8)?;
        Ok(Self { buffer })
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0).unwrap_or(0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2).unwrap_or(0)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 6).unwrap_or(0)
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[8..]
    }
}

/// TCP flag bits (the low byte of the flags field, plus NS is not modelled).
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// Acknowledgement field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// A checked TCP header view: at least 20 bytes and the data offset's header length present.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Validates the data offset against the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        need(b.len(), 20)?;
        let hl = usize::from(b[12] >> 4) * 4;
        if hl < 20 {
            return Err(PacketError::HeaderLen(hl));
        }
        need(b.len(), hl)?;
        Ok(Self { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.b(), 0).unwrap_or(0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), 2).unwrap_or(0)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.b(), 4).unwrap_or(0)
    }
    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        be32(self.b(), 8).unwrap_or(0)
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[12] >> 4) * 4
    }
    /// Flag bits (see [`tcp_flags`]).
    pub fn flags(&self) -> u8 {
        self.b()[13]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.b(), 16).unwrap_or(0)
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
}

/// ICMPv4 type: redirect.
pub const ICMPV4_REDIRECT: u8 = 5;
/// ICMPv4 type: router advertisement (RFC 1256).
pub const ICMPV4_ROUTER_ADVERT: u8 = 9;
/// ICMPv6 type: router solicitation.
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
/// ICMPv6 type: router advertisement.
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
/// ICMPv6 type: redirect.
pub const ICMPV6_REDIRECT: u8 = 137;

/// DHCPv4 server port.
pub const DHCP_SERVER_PORT: u16 = 67;
/// DHCPv4 client port.
pub const DHCP_CLIENT_PORT: u16 = 68;
/// BOOTP op: reply (every DHCPv4 server-to-client message).
pub const BOOTP_REPLY: u8 = 2;
/// DHCPv6 client port.
pub const DHCPV6_CLIENT_PORT: u16 = 546;
/// DHCPv6 server/relay port.
pub const DHCPV6_SERVER_PORT: u16 = 547;

/// DHCPv6 message types only servers and relays send: ADVERTISE, REPLY, RECONFIGURE,
/// RELAY-REPL (RFC 8415 §7.3).
pub fn is_dhcpv6_server_message(msg_type: u8) -> bool {
    matches!(msg_type, 2 | 7 | 10 | 13)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_view() {
        let mut p = [0u8; 30];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        p[9] = 17;
        let v = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.protocol(), IpProtocol::UDP);
        assert_eq!(v.payload().len(), 8);
        assert!(Ipv4Packet::new_checked(&p[..27]).is_err());
        p[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            PacketError::HeaderLen(16)
        );
    }

    /// A header-only packet is valid; a total length under the header, or another version,
    /// is not. The fragment fields take their 13 and 1 bits of bytes 6-7.
    #[test]
    fn ipv4_lengths_version_and_fragment_fields() {
        let mut p = [0u8; 20];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&20u16.to_be_bytes());
        p[6..8].copy_from_slice(&[0x3f, 0xff]);
        let v = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(
            (v.header_len(), v.total_len(), v.payload().len()),
            (20, 20, 0)
        );
        assert_eq!((v.frag_offset(), v.more_frags()), (0x1fff, true));
        p[6..8].copy_from_slice(&[0x40, 0x00]); // don't fragment
        let v = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!((v.frag_offset(), v.more_frags()), (0, false));
        p[6..8].copy_from_slice(&[0x00, 0xb9]);
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap().frag_offset(), 185);
        // The header checksum: the field as stored, and whether it verifies.
        assert!(!Ipv4Packet::new_checked(&p[..]).unwrap().checksum_ok());
        let sum = crate::offload::checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        let v = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.checksum(), sum);
        assert!(v.checksum_ok());
        p[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            PacketError::HeaderLen(19)
        );
        p[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&p[..]).unwrap_err(),
            PacketError::Version(6)
        );
    }

    #[test]
    fn ipv6_extension_walk() {
        let mut p = [0u8; 40 + 8 + 8 + 4];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
        p[6] = 0; // hop-by-hop
        p[40] = 44; // -> fragment
        p[48] = 58; // -> icmpv6
        p[56] = 134;
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(
            v.upper_layer(),
            Ok(UpperLayer {
                protocol: IpProtocol::ICMPV6,
                offset: 56,
                first_fragment: true,
                final_destination: Some(24),
            })
        );
        p[50] = 0x01; // fragment offset 32
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert!(!v.upper_layer().unwrap().first_fragment);
        p[41] = 5; // hop-by-hop claims 48 bytes
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert!(matches!(
            v.upper_layer(),
            Err(PacketError::Truncated { .. })
        ));
    }

    /// An IPv6 packet whose first next-header is `first` and whose payload is `payload`.
    fn v6(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        p[6] = first;
        p[7] = 64;
        p[8..24].copy_from_slice(&[0xfe; 16]);
        p[24..40].copy_from_slice(&[0xff; 16]);
        p.extend_from_slice(payload);
        p
    }

    fn walk(p: &[u8]) -> Result<UpperLayer, PacketError> {
        Ipv6Packet::new_checked(p)?.upper_layer()
    }

    #[test]
    fn ipv6_fixed_header_fields() {
        let p = v6(59, &[1, 2, 3]);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!((v.payload_len(), v.hop_limit()), (3, 64));
        assert_eq!((v.src(), v.dst()), ([0xfe; 16], [0xff; 16]));
        assert_eq!(v.packet().len(), 43);
        let mut p = p;
        p[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&p[..]).unwrap_err(),
            PacketError::Version(4)
        );
    }

    /// Hop-by-hop (8 + 8·len), AH ((len + 2)·4), fragment (8) and destination options in one
    /// chain, with each header's length field used; a first fragment with more to come is
    /// still a first fragment.
    #[test]
    fn ipv6_extension_lengths_and_fragments() {
        let mut chain = vec![0u8; 16 + 24 + 8 + 8 + 4];
        chain[0] = 51; // hop-by-hop (16 bytes) -> AH
        chain[1] = 1;
        chain[16] = 44; // AH (24 bytes) -> fragment
        chain[17] = 4;
        chain[40] = 60; // fragment -> destination options
        chain[43] = 1; // offset 0, more fragments
        chain[48] = 58; // destination options (8 bytes) -> ICMPv6
        let p = v6(0, &chain);
        assert_eq!(
            walk(&p),
            Ok(UpperLayer {
                protocol: IpProtocol::ICMPV6,
                offset: 40 + 56,
                first_fragment: true,
                final_destination: Some(24),
            })
        );
        chain[42..44].copy_from_slice(&[0, 8]); // offset 1 (8 bytes), last fragment
        assert!(!walk(&v6(0, &chain)).unwrap().first_fragment);
    }

    /// Each kind of extension header cut inside its own fixed part is truncated, never read
    /// past the packet.
    #[test]
    fn ipv6_extension_headers_cut_short() {
        for (proto, fixed) in [(43u8, 4usize), (0, 2), (60, 2), (51, 2), (44, 8)] {
            for len in 0..fixed {
                let p = v6(proto, &vec![0x3b; len]);
                assert!(
                    matches!(walk(&p), Err(PacketError::Truncated { len: l, .. }) if l == 40 + len),
                    "header {proto}, {len} bytes"
                );
            }
        }
    }

    /// Eight extension headers are walked; a ninth is refused.
    #[test]
    fn ipv6_extension_chain_limit() {
        for (count, ok) in [(MAX_EXT_HEADERS, true), (MAX_EXT_HEADERS + 1, false)] {
            let mut chain = vec![0u8; 8 * count + 4];
            for i in 0..count {
                chain[8 * i] = if i + 1 == count { 58 } else { 60 };
            }
            let got = walk(&v6(60, &chain));
            if ok {
                assert_eq!(got.unwrap().offset, 40 + 8 * count);
            } else {
                assert_eq!(got, Err(PacketError::ExtensionChain));
            }
        }
    }

    /// A Routing header with segments left moves the final destination to its last address
    /// (types 0 and 2) or its first entry (type 4, a reversed segment list); no address, or a
    /// type this parser does not read, leaves it unknown; no segments left keeps the header's.
    #[test]
    fn ipv6_routing_headers_name_the_final_destination() {
        for (kind, addresses, left, want) in [
            (2u8, 1usize, 1u8, Some(48)),
            (0, 2, 2, Some(64)),
            (4, 3, 1, Some(48)),
            (0, 0, 1, None),
            (4, 0, 1, None),
            (3, 1, 1, None),
            (0, 2, 0, Some(24)),
        ] {
            let mut chain = vec![0u8; 8 + 16 * addresses + 4];
            chain[0] = 58;
            chain[1] = 2 * addresses as u8;
            chain[2] = kind;
            chain[3] = left;
            let got = walk(&v6(43, &chain)).unwrap();
            assert_eq!(
                (got.offset, got.final_destination),
                (48 + 16 * addresses, want),
                "type {kind}, {addresses} addresses, {left} left"
            );
        }
    }

    #[test]
    fn udp_header_fields() {
        let d = [0x00, 0x43, 0x00, 0x44, 0x00, 0x0a, 0xbe, 0xef, 7, 8];
        let v = UdpDatagram::new_checked(&d[..]).unwrap();
        assert_eq!((v.src_port(), v.dst_port(), v.checksum()), (67, 68, 0xbeef));
        assert_eq!(v.payload(), [7, 8]);
        assert!(UdpDatagram::new_checked(&d[..7]).is_err());
    }

    #[test]
    fn tcp_and_arp() {
        let mut t = [0u8; 26];
        t[..12].copy_from_slice(&[0, 80, 0xc0, 1, 0, 0, 0, 7, 0, 0, 0, 9]);
        t[12] = 0x60;
        t[13] = tcp_flags::SYN;
        t[16..18].copy_from_slice(&[0xbe, 0xef]);
        t[24..].copy_from_slice(&[5, 6]);
        let v = TcpSegment::new_checked(&t[..]).unwrap();
        assert_eq!((v.header_len(), v.flags()), (24, tcp_flags::SYN));
        assert_eq!((v.src_port(), v.dst_port()), (80, 0xc001));
        assert_eq!((v.seq(), v.ack(), v.checksum()), (7, 9, 0xbeef));
        assert_eq!(v.payload(), [5, 6]);
        t[12] = 0x70;
        assert!(TcpSegment::new_checked(&t[..]).is_err());
        let mut a = [0u8; 28];
        a[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        a[8..14].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
        a[14..18].copy_from_slice(&[10, 0, 0, 7]);
        a[24..28].copy_from_slice(&[10, 0, 0, 1]);
        let v = ArpPacket::new_checked(&a[..]).unwrap();
        assert_eq!(v.operation(), ARP_REPLY);
        assert_eq!(v.sender_mac(), crate::frame::MacAddr([2, 0, 0, 0, 0, 7]));
        assert_eq!(
            (v.sender_ip(), v.target_ip()),
            ([10, 0, 0, 7], [10, 0, 0, 1])
        );
    }
}
