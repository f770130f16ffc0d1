//! Ethernet II framing with 802.1Q C-tags, 802.1ad S-tags and priority tags.
//!
//! Two layers, in the smoltcp style: [`EthernetFrame`] is a checked view over bytes
//! ([`EthernetFrame::new_checked`] verifies the length once, after which no accessor panics) and
//! [`EthernetRepr`] is the owned representation with [`parse`](EthernetRepr::parse),
//! [`buffer_len`](EthernetRepr::buffer_len) and [`emit`](EthernetRepr::emit).
//!
//! Frames here never include the FCS: software ports do not carry one. The 802.3 minimum of
//! 64 bytes with FCS is therefore [`MIN_FRAME_LEN`] = 60 bytes.

use core::fmt;

use crate::macros::open_enum;

/// Length of the Ethernet II header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag (TPID + TCI).
pub const TAG_LEN: usize = 4;
/// The 802.3 minimum frame length without FCS; shorter frames are padded to it on egress
/// after a tag is removed.
pub const MIN_FRAME_LEN: usize = 60;
/// The most tags [`EthernetRepr`] carries (S-tag + C-tag).
pub const MAX_TAGS: usize = 2;

/// A 48-bit IEEE MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Self = Self([0xff; 6]);
    /// 00:00:00:00:00:00, never a valid station address.
    pub const ZERO: Self = Self([0; 6]);
    /// 01-80-C2-00-00-00, the bridge group address that carries (R)STP BPDUs.
    pub const BRIDGE_GROUP: Self = Self([0x01, 0x80, 0xc2, 0, 0, 0]);

    /// Reads an address from the first six bytes of `b`; `None` if `b` is shorter.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(Self(b.get(..6)?.try_into().ok()?))
    }

    /// The group (I/G) bit: multicast or broadcast.
    pub const fn is_group(self) -> bool {
        self.0[0] & 1 != 0
    }

    /// ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }

    /// 00:00:00:00:00:00.
    pub fn is_zero(self) -> bool {
        self == Self::ZERO
    }

    /// A valid station (source) address: neither a group address nor all-zero.
    pub fn is_valid_source(self) -> bool {
        !self.is_group() && !self.is_zero()
    }

    /// For 01-80-C2-00-00-0x (the 16 addresses an 802.1Q C-VLAN component filters), `x`.
    pub fn reserved_index(self) -> Option<u8> {
        let [a, b, c, d, e, f] = self.0;
        ([a, b, c, d, e] == [0x01, 0x80, 0xc2, 0, 0] && f < 0x10).then_some(f)
    }

    /// The address as the low 48 bits of a `u64` (first byte most significant).
    pub const fn to_u64(self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, f])
    }

    /// The inverse of [`to_u64`](Self::to_u64); bits above 48 are ignored.
    pub const fn from_u64(v: u64) -> Self {
        let [_, _, a, b, c, d, e, f] = v.to_be_bytes();
        Self([a, b, c, d, e, f])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Text that is not a MAC address: six two-digit hex bytes separated by `:` or `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (expected six hex bytes such as 02:00:5e:10:00:01)")]
pub struct MacParseError;

impl core::str::FromStr for MacAddr {
    type Err = MacParseError;

    /// Parses `02:00:5e:10:00:01` or `02-00-5E-10-00-01` (one separator throughout, any case),
    /// the forms `Display`, Linux and Windows write.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let b = text.as_bytes();
        if b.len() != 17 || !matches!(b[2], b':' | b'-') {
            return Err(MacParseError);
        }
        let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
        let mut mac = [0u8; 6];
        for (i, byte) in mac.iter_mut().enumerate() {
            let at = 3 * i;
            if i > 0 && b[at - 1] != b[2] {
                return Err(MacParseError);
            }
            let (Some(hi), Some(lo)) = (digit(b[at]), digit(b[at + 1])) else {
                return Err(MacParseError);
            };
            *byte = hi << 4 | lo;
        }
        Ok(MacAddr(mac))
    }
}

open_enum! {
    /// An EtherType (or, below 0x0600, an 802.3 length field).
    pub struct EtherType(u16) {
        /// IPv4.
        IPV4 = 0x0800,
        /// ARP.
        ARP = 0x0806,
        /// 802.1Q customer VLAN tag (C-tag).
        VLAN = 0x8100,
        /// IPv6.
        IPV6 = 0x86dd,
        /// 802.1ad service VLAN tag (S-tag).
        QINQ = 0x88a8,
        /// Legacy (pre-802.1ad) QinQ outer tag.
        QINQ_LEGACY = 0x9100,
        /// LLDP.
        LLDP = 0x88cc,
    }
}

impl EtherType {
    /// Values below 0x0600 are 802.3 length fields (LLC frames such as BPDUs), not EtherTypes.
    pub const fn is_length(self) -> bool {
        self.0 < 0x0600
    }

    /// A TPID this crate parses as a VLAN tag: 0x8100, 0x88A8 or 0x9100.
    pub const fn is_tag(self) -> bool {
        matches!(self.0, 0x8100 | 0x88a8 | 0x9100)
    }
}

/// An 802.1Q Tag Control Information word: PCP(3) | DEI(1) | VID(12).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tci(pub u16);

impl Tci {
    /// Builds a TCI; out-of-range fields are truncated to their widths.
    pub const fn new(pcp: u8, dei: bool, vid: u16) -> Self {
        Self(((pcp as u16 & 7) << 13) | ((dei as u16) << 12) | (vid & 0x0fff))
    }
    /// Priority code point.
    pub const fn pcp(self) -> u8 {
        (self.0 >> 13) as u8
    }
    /// Drop eligible indicator.
    pub const fn dei(self) -> bool {
        self.0 & 0x1000 != 0
    }
    /// VLAN identifier; 0 means priority-tagged (no VLAN), 4095 is reserved.
    pub const fn vid(self) -> u16 {
        self.0 & 0x0fff
    }
    /// The same PCP and DEI with another VID.
    pub const fn with_vid(self, vid: u16) -> Self {
        Self((self.0 & 0xf000) | (vid & 0x0fff))
    }
}

impl fmt::Debug for Tci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tci(pcp {}, dei {}, vid {})",
            self.pcp(),
            self.dei() as u8,
            self.vid()
        )
    }
}

/// One VLAN tag: its TPID and TCI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// Tag protocol identifier (0x8100, 0x88A8, 0x9100).
    pub tpid: EtherType,
    /// Tag control information.
    pub tci: Tci,
}

/// Why a byte slice is not a well-formed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The bytes end before the header (or a tag, or a field) does.
    #[error("frame of {len} bytes is truncated: {needed} needed")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// More nested tags than [`MAX_TAGS`].
    #[error("more than {MAX_TAGS} nested vlan tags")]
    TooManyTags,
    /// The output buffer is smaller than [`EthernetRepr::buffer_len`].
    #[error("output buffer of {len} bytes is smaller than the {needed} needed")]
    BufferTooSmall {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
}

/// A checked view of an Ethernet II frame (at least [`HEADER_LEN`] bytes).
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Checks that `buffer` holds at least the 14-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(FrameError::Truncated {
                len,
                needed: HEADER_LEN,
            });
        }
        Ok(Self { buffer })
    }

    /// The underlying bytes.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Destination address.
    pub fn dst(&self) -> MacAddr {
        let b = self.b();
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Source address.
    pub fn src(&self) -> MacAddr {
        let b = self.b();
        MacAddr([b[6], b[7], b[8], b[9], b[10], b[11]])
    }

    /// The EtherType field at offset 12 (the outer TPID of a tagged frame).
    pub fn ethertype(&self) -> EtherType {
        let b = self.b();
        EtherType(u16::from_be_bytes([b[12], b[13]]))
    }

    /// The outer tag, if the EtherType field is `tpid` and the frame holds the whole tag and
    /// the EtherType after it.
    pub fn outer_tag(&self, tpid: EtherType) -> Option<VlanTag> {
        let b = self.b();
        (self.ethertype() == tpid && b.len() >= HEADER_LEN + TAG_LEN).then(|| VlanTag {
            tpid,
            tci: Tci(u16::from_be_bytes([b[14], b[15]])),
        })
    }

    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }

    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.b().len()
    }

    /// Never true for a checked view (kept for the `len` convention).
    pub fn is_empty(&self) -> bool {
        self.b().is_empty()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[..6].copy_from_slice(&mac.0);
    }

    /// Sets the source address.
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[6..12].copy_from_slice(&mac.0);
    }

    /// Sets the EtherType field at offset 12.
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[12..14].copy_from_slice(&t.0.to_be_bytes());
    }
}

/// The owned form of an Ethernet header: addresses, up to two VLAN tags (0x8100, 0x88A8 and
/// 0x9100 are all parsed as tags) and the inner EtherType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// Tags, outermost first; `None` past the last one.
    pub tags: [Option<VlanTag>; MAX_TAGS],
    /// The EtherType after the tags.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Parses the header of `frame`; returns the representation and the payload offset.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<(Self, usize), FrameError> {
        let b = frame.b();
        let mut tags = [None; MAX_TAGS];
        let mut off = 12;
        let mut count = 0;
        loop {
            let t = EtherType(be16(b, off).ok_or(FrameError::Truncated {
                len: b.len(),
                needed: off + 2,
            })?);
            if !t.is_tag() {
                let repr = Self {
                    dst: frame.dst(),
                    src: frame.src(),
                    tags,
                    ethertype: t,
                };
                return Ok((repr, off + 2));
            }
            if count == MAX_TAGS {
                return Err(FrameError::TooManyTags);
            }
            let tci = be16(b, off + 2).ok_or(FrameError::Truncated {
                len: b.len(),
                needed: off + 4,
            })?;
            tags[count] = Some(VlanTag {
                tpid: t,
                tci: Tci(tci),
            });
            count += 1;
            off += TAG_LEN;
        }
    }

    /// Number of tags present.
    pub fn tag_count(&self) -> usize {
        self.tags.iter().take_while(|t| t.is_some()).count()
    }

    /// Header length: 14 plus 4 per tag.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + TAG_LEN * self.tag_count()
    }

    /// Writes the header into the start of `buf`; returns the header length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, FrameError> {
        let needed = self.buffer_len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(FrameError::BufferTooSmall {
                len: buf.len(),
                needed,
            });
        };
        out[..6].copy_from_slice(&self.dst.0);
        out[6..12].copy_from_slice(&self.src.0);
        let mut off = 12;
        for tag in self.tags.iter().map_while(|t| *t) {
            out[off..off + 2].copy_from_slice(&tag.tpid.0.to_be_bytes());
            out[off + 2..off + 4].copy_from_slice(&tag.tci.0.to_be_bytes());
            off += TAG_LEN;
        }
        out[off..off + 2].copy_from_slice(&self.ethertype.0.to_be_bytes());
        Ok(needed)
    }
}

/// Reads a big-endian `u16` at `off`, if present.
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Reads a big-endian `u32` at `off`, if present.
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The offset and EtherType of the network-layer payload, looking through up to
/// [`MAX_TAGS`] tags of any TPID; `None` if the frame ends inside the tags.
pub fn network_offset(b: &[u8]) -> Option<(EtherType, usize)> {
    let mut off = 12;
    for _ in 0..=MAX_TAGS {
        let t = EtherType(be16(b, off)?);
        if !t.is_tag() {
            return Some((t, off + 2));
        }
        off += TAG_LEN;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `str::parse` takes what `Display` writes and the dash form, and refuses the rest.
    #[test]
    fn mac_from_str() {
        let m = MacAddr([0x02, 0, 0x5e, 0x10, 0xab, 0xff]);
        assert_eq!(alloc::format!("{m}").parse(), Ok(m));
        assert_eq!("02-00-5E-10-AB-FF".parse(), Ok(m));
        for bad in [
            "",
            "02:00:5e:10:ab",
            "02:00:5e:10:ab:ff:",
            "02:00-5e:10:ab:ff",
            "02:00:5e:10:ab:fg",
            "020:0:5e:10:ab:ff",
            "+2:00:5e:10:ab:ff",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(MacParseError), "{bad}");
        }
    }

    #[test]
    fn mac_classes() {
        assert!(MacAddr::BROADCAST.is_group());
        assert!(!MacAddr::ZERO.is_valid_source());
        assert!(MacAddr([2, 0, 0, 0, 0, 1]).is_valid_source());
        assert_eq!(
            MacAddr([1, 0x80, 0xc2, 0, 0, 0x0e]).reserved_index(),
            Some(14)
        );
        assert_eq!(MacAddr([1, 0x80, 0xc2, 0, 0, 0x10]).reserved_index(), None);
        let m = MacAddr([0xde, 0xad, 0xbe, 0xef, 0, 1]);
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert_eq!(m.to_u64(), 0xdead_beef_0001);
    }

    #[test]
    fn mac_from_bytes_broadcast_and_debug() {
        assert_eq!(
            MacAddr::from_bytes(&[2, 0, 0, 0, 0, 1, 7]),
            Some(MacAddr([2, 0, 0, 0, 0, 1]))
        );
        assert_eq!(MacAddr::from_bytes(&[2, 0, 0, 0, 0]), None);
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(!MacAddr([0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]).is_broadcast());
        assert!(!MacAddr::BRIDGE_GROUP.is_broadcast());
        let m = MacAddr([0x02, 0, 0x5e, 0x10, 0xab, 0xff]);
        assert_eq!(alloc::format!("{m:?}"), "02:00:5e:10:ab:ff");
    }

    #[test]
    fn ethertype_length_boundary() {
        assert!(EtherType(0).is_length());
        assert!(EtherType(0x05ff).is_length());
        assert!(!EtherType(0x0600).is_length());
        assert!(!EtherType::IPV4.is_length());
    }

    #[test]
    fn tci_fields() {
        assert!(Tci(0x1000).dei());
        assert!(!Tci(0xefff).dei());
        assert_eq!(
            alloc::format!("{:?}", Tci::new(5, true, 10)),
            "Tci(pcp 5, dei 1, vid 10)"
        );
        let t = Tci::new(5, true, 10);
        assert_eq!((t.pcp(), t.dei(), t.vid()), (5, true, 10));
        assert_eq!(t.with_vid(20), Tci::new(5, true, 20));
        assert_eq!(t.0, 0xb00a);
    }

    #[test]
    fn qinq_round_trip() {
        let bytes = [
            1, 2, 3, 4, 5, 6, 2, 0, 0, 0, 0, 9, 0x88, 0xa8, 0x20, 0x64, 0x81, 0x00, 0x00, 0x0a,
            0x08, 0x00, 0x45,
        ];
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        let (repr, off) = EthernetRepr::parse(&f).unwrap();
        assert_eq!(off, 22);
        assert_eq!(repr.tag_count(), 2);
        assert_eq!(repr.tags[0].unwrap().tci.vid(), 100);
        assert_eq!(repr.tags[1].unwrap().tpid, EtherType::VLAN);
        assert_eq!(repr.ethertype, EtherType::IPV4);
        let mut out = [0u8; 22];
        assert_eq!(repr.emit(&mut out), Ok(22));
        assert_eq!(out, bytes[..22]);
        assert_eq!(network_offset(&bytes), Some((EtherType::IPV4, 22)));
    }

    /// The view's accessors on a frame exactly one tag long, then its setters.
    #[test]
    fn frame_view_reads_and_writes_its_header() {
        let mut bytes = [0u8; 18];
        bytes[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        bytes[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        bytes[12..].copy_from_slice(&[0x81, 0x00, 0xa0, 0x64, 0x08, 0x00]);
        let mut f = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        assert_eq!((f.len(), f.is_empty()), (18, false));
        assert_eq!(f.dst(), MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src(), MacAddr([2, 0, 0, 0, 0, 9]));
        assert_eq!(f.ethertype(), EtherType::VLAN);
        assert_eq!(f.payload(), [0xa0, 0x64, 0x08, 0x00]);
        let tag = VlanTag {
            tpid: EtherType::VLAN,
            tci: Tci::new(5, false, 100),
        };
        assert_eq!(f.outer_tag(EtherType::VLAN), Some(tag));
        assert_eq!(f.outer_tag(EtherType::QINQ), None);
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr([2, 0, 0, 0, 0, 1]));
        f.set_ethertype(EtherType::QINQ);
        assert_eq!(f.outer_tag(EtherType::QINQ).map(|t| t.tci), Some(tag.tci));
        let bytes = f.into_inner();
        assert_eq!(
            bytes[..12],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1]
        );
        assert_eq!(bytes[12..], [0x88, 0xa8, 0xa0, 0x64, 0x08, 0x00]);
        // A bare header is a frame; its payload is empty.
        let f = EthernetFrame::new_checked(&bytes[..14]).unwrap();
        assert_eq!((f.len(), f.payload()), (14, &[][..]));
    }

    #[test]
    fn truncation() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(),
            FrameError::Truncated {
                len: 13,
                needed: 14
            }
        );
        let mut b = [0u8; 16];
        b[12] = 0x81;
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert!(matches!(
            EthernetRepr::parse(&f),
            Err(FrameError::Truncated { needed: 18, .. })
        ));
        assert_eq!(f.outer_tag(EtherType::VLAN), None);
        // A tag whose TCI is cut short.
        let f = EthernetFrame::new_checked(&b[..15]).unwrap();
        assert_eq!(
            EthernetRepr::parse(&f),
            Err(FrameError::Truncated {
                len: 15,
                needed: 16
            })
        );
        let mut three = [0u8; 30];
        for off in [12, 16, 20] {
            three[off] = 0x81;
        }
        let f = EthernetFrame::new_checked(&three[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&f), Err(FrameError::TooManyTags));
    }
}
