//! Software offloads for ports that cannot finish a frame themselves: TCP/UDP checksum
//! insertion and TCP segmentation of large sends (LSO) into MSS-sized frames.
//!
//! A guest that uses checksum offload hands over frames whose TCP/UDP checksum field holds
//! only the pseudo-header sum (or anything: this module recomputes it from scratch). With
//! LSO it hands over one TCP segment of up to 64 KiB plus an MSS; [`TcpSegmenter`] cuts it
//! into frames of at most MSS payload bytes, each with its own IP length, IPv4 ID and header
//! checksum, TCP sequence number, flags (FIN and PSH only on the last, CWR only on the first)
//! and TCP checksum. Both work on IPv4 and IPv6, behind up to two VLAN tags.

use crate::frame::{network_offset, EtherType};
use crate::packet::{IpProtocol, Ipv4Packet, Ipv6Packet, PacketError, TcpSegment};

/// Why an offload could not be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// Not IPv4 or IPv6 (or the tags are cut off).
    #[error("not an ip frame")]
    NotIp,
    /// The L4 protocol is not TCP (segmentation) or TCP/UDP (checksum).
    #[error("unsupported l4 protocol {0:?}")]
    Protocol(IpProtocol),
    /// IPv4 fragments cannot be checksummed or segmented.
    #[error("ip fragment")]
    Fragment,
    /// An IPv6 Routing header with segments left, of a type whose final destination (the
    /// pseudo-header's address) this crate does not read.
    #[error("ipv6 routing header of an unsupported type with segments left")]
    RoutingHeader,
    /// A zero MSS.
    #[error("mss of 0")]
    ZeroMss,
    /// An MSS below [`MIN_MSS`]: one large frame would become thousands.
    #[error("mss of {mss} is below the minimum of {MIN_MSS}")]
    MssTooSmall {
        /// The MSS asked for, or left by the egress limit.
        mss: usize,
    },
    /// Malformed headers.
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// [`TcpSegmenter::write`] was asked for a segment past the last.
    #[error("segment {index} of {count}")]
    NoSegment {
        /// The index asked for.
        index: usize,
        /// The number of segments.
        count: usize,
    },
    /// The output buffer is too small.
    #[error("output buffer of {len} bytes is smaller than the {needed} needed")]
    BufferTooSmall {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
}

/// Adds `data` as big-endian 16-bit words to a ones'-complement accumulator.
pub fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds an accumulator to 16 bits and complements it: the Internet checksum (RFC 1071).
pub fn finish(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum of `data` (0 when `data` includes a correct checksum field).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum_words(0, data))
}

/// Where the IP and L4 headers of a frame are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    l3: usize,
    l4: usize,
    /// End of the IP packet (padding excluded).
    end: usize,
    v6: bool,
    /// IPv6: offset of the final destination address (RFC 8200 §8.1), from the frame's start.
    dst: usize,
    proto: IpProtocol,
}

fn layout(frame: &[u8]) -> Result<Layout, OffloadError> {
    let (t, l3) = network_offset(frame).ok_or(OffloadError::NotIp)?;
    let ip = &frame[l3..];
    match t {
        EtherType::IPV4 => {
            let p = Ipv4Packet::new_checked(ip)?;
            if p.frag_offset() != 0 || p.more_frags() {
                return Err(OffloadError::Fragment);
            }
            Ok(Layout {
                l3,
                l4: l3 + p.header_len(),
                end: l3 + p.total_len(),
                v6: false,
                dst: l3 + 16,
                proto: p.protocol(),
            })
        }
        EtherType::IPV6 => {
            let p = Ipv6Packet::new_checked(ip)?;
            let ul = p.upper_layer()?;
            if !ul.first_fragment {
                return Err(OffloadError::Fragment);
            }
            let dst = ul.final_destination.ok_or(OffloadError::RoutingHeader)?;
            Ok(Layout {
                l3,
                l4: l3 + ul.offset,
                end: l3 + 40 + p.payload_len(),
                v6: true,
                dst: l3 + dst,
                proto: ul.protocol,
            })
        }
        _ => Err(OffloadError::NotIp),
    }
}

fn pseudo_sum(frame: &[u8], lay: &Layout, l4_len: usize) -> u64 {
    let addrs = if lay.v6 {
        sum_words(0, &frame[lay.l3 + 8..lay.l3 + 24]) + sum_words(0, &frame[lay.dst..lay.dst + 16])
    } else {
        sum_words(0, &frame[lay.l3 + 12..lay.l3 + 20])
    };
    addrs + u64::from(lay.proto.0) + l4_len as u64
}

/// Computes and writes the TCP or UDP checksum of a frame in place.
pub fn fill_l4_checksum(frame: &mut [u8]) -> Result<(), OffloadError> {
    let lay = layout(frame)?;
    let field = match lay.proto {
        IpProtocol::TCP => {
            TcpSegment::new_checked(&frame[lay.l4..lay.end])?;
            16
        }
        IpProtocol::UDP => {
            crate::packet::UdpDatagram::new_checked(&frame[lay.l4..lay.end])?;
            6
        }
        p => return Err(OffloadError::Protocol(p)),
    };
    let l4_len = lay.end - lay.l4;
    frame[lay.l4 + field..lay.l4 + field + 2].fill(0);
    let mut c = finish(sum_words(
        pseudo_sum(frame, &lay, l4_len),
        &frame[lay.l4..lay.end],
    ));
    if c == 0 && lay.proto == IpProtocol::UDP {
        c = 0xffff;
    }
    frame[lay.l4 + field..lay.l4 + field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// The smallest MSS segmentation accepts (Linux's `TCP_MIN_MSS`). A smaller one, asked by a
/// guest or left by a tiny egress MTU, would turn one 64 KiB frame into hundreds of
/// thousands of bytes of headers per copy (MSS 1: 65,535 frames); such a frame is refused.
pub const MIN_MSS: usize = 88;

/// Cuts one large TCP frame into MSS-sized frames.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegmenter<'a> {
    frame: &'a [u8],
    lay: Layout,
    hdr: usize,
    mss: usize,
    payload: usize,
}

impl<'a> TcpSegmenter<'a> {
    /// Checks that `frame` is a TCP segment over IPv4 or IPv6 (no IPv6 extension headers).
    pub fn new(frame: &'a [u8], mss: u16) -> Result<Self, OffloadError> {
        if mss == 0 {
            return Err(OffloadError::ZeroMss);
        }
        if usize::from(mss) < MIN_MSS {
            return Err(OffloadError::MssTooSmall {
                mss: usize::from(mss),
            });
        }
        let lay = layout(frame)?;
        if lay.proto != IpProtocol::TCP {
            return Err(OffloadError::Protocol(lay.proto));
        }
        if lay.v6 && lay.l4 != lay.l3 + 40 {
            return Err(OffloadError::Protocol(IpProtocol::HOP_BY_HOP));
        }
        let tcp = TcpSegment::new_checked(&frame[lay.l4..lay.end])?;
        let hdr = lay.l4 + tcp.header_len();
        Ok(Self {
            frame,
            lay,
            hdr,
            mss: usize::from(mss),
            payload: lay.end - hdr,
        })
    }

    /// Lowers the MSS, if needed, so that no output frame is longer than `max_frame` bytes
    /// (the egress port's limit for the frame's tags): the MSS a guest asks for is bounded by
    /// its own port's MTU, not by the port the segments leave on.
    pub fn fit(mut self, max_frame: usize) -> Result<Self, OffloadError> {
        let room = max_frame.saturating_sub(self.hdr);
        if room == 0 {
            return Err(OffloadError::BufferTooSmall {
                len: max_frame,
                needed: self.hdr + 1,
            });
        }
        if room < MIN_MSS {
            return Err(OffloadError::MssTooSmall { mss: room });
        }
        self.mss = self.mss.min(room);
        Ok(self)
    }

    /// The MSS the segments use.
    pub fn mss(&self) -> usize {
        self.mss
    }

    /// Number of output frames (at least one, even for an empty payload).
    pub fn count(&self) -> usize {
        self.payload.div_ceil(self.mss).max(1)
    }

    /// Length of output frame `i`.
    pub fn segment_len(&self, i: usize) -> usize {
        let start = i.saturating_mul(self.mss);
        self.hdr + self.payload.saturating_sub(start).min(self.mss)
    }

    /// Total bytes of all output frames.
    pub fn total_len(&self) -> usize {
        self.hdr * self.count() + self.payload
    }

    /// Writes output frame `i` into `out`; returns its length.
    pub fn write(&self, i: usize, out: &mut [u8]) -> Result<usize, OffloadError> {
        if i >= self.count() {
            return Err(OffloadError::NoSegment {
                index: i,
                count: self.count(),
            });
        }
        let n = self.segment_len(i);
        let Some(out) = out.get_mut(..n) else {
            return Err(OffloadError::BufferTooSmall {
                len: out.len(),
                needed: n,
            });
        };
        let (hdr, body) = out.split_at_mut(self.hdr);
        hdr.copy_from_slice(&self.frame[..self.hdr]);
        let start = self.hdr + i * self.mss;
        body.copy_from_slice(&self.frame[start..start + body.len()]);
        let lay = self.lay;
        let ip_len = n - lay.l3;
        if lay.v6 {
            let pl = (ip_len - 40) as u16;
            out[lay.l3 + 4..lay.l3 + 6].copy_from_slice(&pl.to_be_bytes());
        } else {
            out[lay.l3 + 2..lay.l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            let id = u16::from_be_bytes([out[lay.l3 + 4], out[lay.l3 + 5]]);
            let id = id.wrapping_add(i as u16);
            out[lay.l3 + 4..lay.l3 + 6].copy_from_slice(&id.to_be_bytes());
            out[lay.l3 + 10..lay.l3 + 12].fill(0);
            let c = checksum(&out[lay.l3..lay.l4]);
            out[lay.l3 + 10..lay.l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        let t = lay.l4;
        let seq = u32::from_be_bytes([out[t + 4], out[t + 5], out[t + 6], out[t + 7]]);
        let seq = seq.wrapping_add((i * self.mss) as u32);
        out[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        use crate::packet::tcp_flags::{CWR, FIN, PSH};
        if i + 1 < self.count() {
            out[t + 13] &= !(FIN | PSH);
        }
        if i > 0 {
            out[t + 13] &= !CWR;
        }
        let l4_len = n - t;
        out[t + 16..t + 18].fill(0);
        let c = finish(sum_words(pseudo_sum(out, &lay, l4_len), &out[t..n]));
        out[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tagged IPv4/TCP frame with `payload` bytes of data.
    pub(crate) fn tcp4(payload: usize) -> alloc::vec::Vec<u8> {
        let mut f = alloc::vec![0u8; 18 + 20 + 20 + payload];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        f[12..18].copy_from_slice(&[0x81, 0, 0, 10, 8, 0]);
        let ip = &mut f[18..38];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let tcp = &mut f[38..58];
        tcp[0..4].copy_from_slice(&[0x12, 0x34, 0, 80]);
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x18 | 0x01 | 0x80;
        for (i, b) in f[58..].iter_mut().enumerate() {
            *b = i as u8;
        }
        f
    }

    fn l4_ok(frame: &[u8]) -> bool {
        let lay = layout(frame).unwrap();
        finish(sum_words(
            pseudo_sum(frame, &lay, lay.end - lay.l4),
            &frame[lay.l4..lay.end],
        )) == 0
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (before complement).
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn fills_tcp_checksum() {
        let mut f = tcp4(33);
        assert!(!l4_ok(&f));
        fill_l4_checksum(&mut f).unwrap();
        assert!(l4_ok(&f));
    }

    /// A UDP checksum changes only its field; a datagram whose checksum computes to zero goes
    /// out as 0xFFFF (zero means "no checksum" in UDP); IPv4 fragments are refused.
    #[test]
    fn fills_udp_checksum_and_refuses_fragments() {
        let mut f = tcp4(33);
        f[18 + 9] = 17;
        let before = f.clone();
        fill_l4_checksum(&mut f).unwrap();
        assert!(l4_ok(&f));
        let c = u16::from_be_bytes([f[44], f[45]]);
        assert!(c != 0 && c != 0xffff);
        assert_eq!((&f[..44], &f[46..]), (&before[..44], &before[46..]));
        // Adding the checksum to a payload word (one's complement) makes the sum all ones.
        let w = u32::from(u16::from_be_bytes([f[46], f[47]])) + u32::from(c);
        let w = ((w & 0xffff) + (w >> 16)) as u16;
        f[46..48].copy_from_slice(&w.to_be_bytes());
        fill_l4_checksum(&mut f).unwrap();
        assert_eq!(f[44..46], [0xff, 0xff]);
        assert!(l4_ok(&f));
        for (at, v) in [(18 + 6, 0x20), (18 + 7, 1)] {
            let mut frag = tcp4(33);
            frag[at] = v;
            assert_eq!(fill_l4_checksum(&mut frag), Err(OffloadError::Fragment));
        }
    }

    /// IPv6 segments carry their own payload length (there is no IPv6 header checksum to
    /// catch a wrong one) and a valid TCP checksum.
    #[test]
    fn segments_ipv6_frames() {
        let mut f = alloc::vec![0u8; 14 + 40 + 20 + 2500];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[18..20].copy_from_slice(&2520u16.to_be_bytes());
        f[20] = 6;
        f[21] = 64;
        f[22..38].copy_from_slice(&[0x20; 16]);
        f[38..54].copy_from_slice(&[0x21; 16]);
        f[54..58].copy_from_slice(&[0x12, 0x34, 0, 80]);
        f[58..62].copy_from_slice(&1000u32.to_be_bytes());
        f[66] = 0x50;
        f[67] = 0x18;
        for (i, b) in f[74..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let s = TcpSegmenter::new(&f, 1000).unwrap();
        assert_eq!(s.count(), 3);
        let mut payload = alloc::vec::Vec::new();
        for i in 0..3 {
            let mut out = [0u8; 1200];
            let n = s.write(i, &mut out).unwrap();
            let seg = &out[..n];
            assert_eq!(n, 74 + if i < 2 { 1000 } else { 500 });
            assert_eq!(u16::from_be_bytes([seg[18], seg[19]]) as usize, n - 54);
            assert_eq!(seg[14..18], f[14..18]);
            assert_eq!(seg[20..54], f[20..54]);
            assert!(l4_ok(seg), "segment {i} checksum");
            let tcp = TcpSegment::new_checked(&seg[54..]).unwrap();
            assert_eq!(tcp.seq(), 1000 + 1000 * i as u32);
            payload.extend_from_slice(tcp.payload());
        }
        assert_eq!(payload, f[74..]);
    }

    #[test]
    fn segments_lso_frame() {
        let mut f = tcp4(3000);
        fill_l4_checksum(&mut f).unwrap();
        let s = TcpSegmenter::new(&f, 1448).unwrap();
        assert_eq!(s.count(), 3);
        let mut payload = alloc::vec::Vec::new();
        for i in 0..3 {
            let mut out = [0u8; 1600];
            let n = s.write(i, &mut out).unwrap();
            let seg = &out[..n];
            assert!(l4_ok(seg), "segment {i} checksum");
            let ip = Ipv4Packet::new_checked(&seg[18..]).unwrap();
            assert!(ip.checksum_ok());
            assert_eq!(ip.ident(), 0x1234 + i as u16);
            let tcp = TcpSegment::new_checked(ip.payload()).unwrap();
            assert_eq!(tcp.seq(), 1000 + 1448 * i as u32);
            assert_eq!(tcp.flags() & 0x01 != 0, i == 2, "FIN only on the last");
            assert_eq!(tcp.flags() & 0x80 != 0, i == 0, "CWR only on the first");
            payload.extend_from_slice(tcp.payload());
        }
        assert_eq!(payload, f[58..]);
        assert_eq!(s.total_len(), 3 * 58 + 3000);
    }

    #[test]
    fn rejects_non_tcp() {
        let mut f = tcp4(10);
        f[18 + 9] = 17;
        assert_eq!(
            TcpSegmenter::new(&f, 100).unwrap_err(),
            OffloadError::Protocol(IpProtocol::UDP)
        );
        assert_eq!(TcpSegmenter::new(&f, 0).unwrap_err(), OffloadError::ZeroMss);
        // A tiny MSS would multiply the frame: refused, as a tiny egress limit is.
        assert_eq!(
            TcpSegmenter::new(&f, 87).unwrap_err(),
            OffloadError::MssTooSmall { mss: 87 }
        );
        let big = tcp4(1000);
        let s = TcpSegmenter::new(&big, MIN_MSS as u16).unwrap();
        assert_eq!(s.mss(), MIN_MSS);
        let hdr = s.segment_len(0) - MIN_MSS;
        assert_eq!(
            s.fit(hdr + MIN_MSS - 1).unwrap_err(),
            OffloadError::MssTooSmall { mss: MIN_MSS - 1 }
        );
        assert_eq!(s.fit(hdr + MIN_MSS).unwrap().mss(), MIN_MSS);
        assert_eq!(
            fill_l4_checksum(&mut f[..40]).unwrap_err(),
            OffloadError::Packet(PacketError::Truncated {
                len: 22,
                needed: 50
            })
        );
    }

    /// An untagged IPv6/UDP frame whose only extension header is a Routing header of `kind`
    /// with `segments_left` and the given addresses (after 4 type-specific bytes).
    fn udp6_routed(kind: u8, segments_left: u8, addrs: &[[u8; 16]]) -> alloc::vec::Vec<u8> {
        let mut f = alloc::vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let rh_len = 8 + 16 * addrs.len();
        let udp = [0x12, 0x34, 0x56, 0x78, 0, 13, 0, 0, 1, 2, 3, 4, 5];
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&((rh_len + udp.len()) as u16).to_be_bytes());
        ip[6] = 43;
        ip[8] = 0x20;
        ip[23] = 1;
        ip[24] = 0x20;
        ip[39] = 2;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[17, (2 * addrs.len()) as u8, kind, segments_left, 0, 0, 0, 0]);
        for a in addrs {
            f.extend_from_slice(a);
        }
        f.extend_from_slice(&udp);
        f
    }

    /// The UDP checksum over IPv6 checks out with `dst` in the pseudo-header (computed here
    /// from RFC 8200 §8.1, not with the module's own pseudo-header code).
    fn udp6_ok_for(frame: &[u8], dst: &[u8; 16]) -> bool {
        let l4 = &frame[frame.len() - 13..];
        let mut acc = sum_words(0, &frame[14 + 8..14 + 24]);
        acc = sum_words(acc, dst) + l4.len() as u64 + 17;
        finish(sum_words(acc, l4)) == 0
    }

    #[test]
    fn ipv6_pseudo_header_uses_the_final_destination() {
        let header_dst = {
            let mut a = [0u8; 16];
            a[0] = 0x20;
            a[15] = 2;
            a
        };
        let (x, y) = ([0x30; 16], [0x40; 16]);
        /// Kind, segments left, addresses, the final destination.
        type Case<'a> = (u8, u8, &'a [[u8; 16]], [u8; 16]);
        let cases: [Case<'_>; 5] = [
            (2, 1, &[x], x),
            (0, 2, &[x, y], y),
            (4, 1, &[x, y], x),
            (2, 0, &[x], header_dst),
            (3, 0, &[x], header_dst),
        ];
        for (kind, left, addrs, fin) in cases {
            let mut f = udp6_routed(kind, left, addrs);
            fill_l4_checksum(&mut f).unwrap();
            assert!(udp6_ok_for(&f, &fin), "type {kind}, {left} left");
        }
        // An RPL source route (type 3) with segments left: its addresses are compressed.
        let mut f = udp6_routed(3, 1, &[x]);
        assert_eq!(
            fill_l4_checksum(&mut f).unwrap_err(),
            OffloadError::RoutingHeader
        );
    }

    #[test]
    fn segments_past_the_last_are_an_error() {
        let f = tcp4(3000);
        let s = TcpSegmenter::new(&f, 1448).unwrap();
        let mut out = [0u8; 1600];
        for i in [3, 4, usize::MAX] {
            assert_eq!(
                s.write(i, &mut out).unwrap_err(),
                OffloadError::NoSegment { index: i, count: 3 }
            );
        }
    }

    #[test]
    fn fit_lowers_the_mss_to_the_frame_limit() {
        let f = tcp4(3000);
        let s = TcpSegmenter::new(&f, 9000).unwrap();
        assert_eq!((s.mss(), s.count()), (9000, 1));
        let s = s.fit(58 + 1000).unwrap();
        assert_eq!((s.mss(), s.count()), (1000, 3));
        assert_eq!(s.fit(5000).unwrap().mss(), 1000, "never raised");
        assert_eq!(
            s.fit(58).unwrap_err(),
            OffloadError::BufferTooSmall {
                len: 58,
                needed: 59
            },
            "no room for data"
        );
        assert_eq!(
            s.fit(58 + MIN_MSS - 1).unwrap_err(),
            OffloadError::MssTooSmall { mss: MIN_MSS - 1 }
        );
        assert_eq!(s.fit(58 + MIN_MSS).unwrap().mss(), MIN_MSS);
    }
}
