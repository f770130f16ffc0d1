//! 802.1Q port VLAN configuration: classification on ingress, membership and tagging on egress.
//!
//! A port's [`VlanConfig`] follows 802.1Q's per-port parameters: a PVID for untagged and
//! priority-tagged frames, acceptable frame types, ingress filtering, and the member and
//! untagged sets used on egress. The usual modes are constructors: [`VlanConfig::access`],
//! [`VlanConfig::trunk`], and the private-VLAN roles [`VlanConfig::isolated`],
//! [`VlanConfig::community`] and [`VlanConfig::promiscuous`]. Ingress and egress membership are
//! separate sets because private VLANs need them to differ (an isolated port receives on its
//! secondary VLAN but transmits only what arrives on the primary).
//!
//! Egress tagging is expressed as an [`Edit`] of the received bytes, so the bridge can hand out
//! the original frame untouched whenever nothing changes.

use crate::frame::{Tci, HEADER_LEN, MIN_FRAME_LEN, TAG_LEN};

/// The highest usable VID; 4095 is reserved and dropped on ingress.
pub const MAX_VID: u16 = 4094;
/// The default PVID (802.1Q).
pub const DEFAULT_VID: u16 = 1;

/// A set of VLAN IDs 0..=4095 as a 4096-bit bitmap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VlanSet([u64; 64]);

impl Default for VlanSet {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl core::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl VlanSet {
    /// No VLANs.
    pub const EMPTY: Self = Self([0; 64]);

    /// Every usable VID, 1..=4094.
    pub fn all() -> Self {
        let mut s = Self([u64::MAX; 64]);
        s.remove(0);
        s.remove(4095);
        s
    }

    /// The VIDs in `vids` (out-of-range values are ignored).
    pub fn from_vids(vids: &[u16]) -> Self {
        let mut s = Self::EMPTY;
        for &v in vids {
            s.insert(v);
        }
        s
    }

    /// Whether `vid` is in the set (never for a value above 4095).
    #[inline]
    pub fn contains(&self, vid: u16) -> bool {
        // With a `Tci::vid()` argument the range check folds away.
        let v = usize::from(vid);
        vid <= 0x0fff && self.0[(v >> 6) & 63] >> (v & 63) & 1 != 0
    }

    /// Adds `vid` (ignored if above 4095).
    pub fn insert(&mut self, vid: u16) {
        if vid <= 0x0fff {
            let v = usize::from(vid);
            self.0[v >> 6] |= 1 << (v & 63);
        }
    }

    /// Removes `vid` (nothing to do for a value above 4095).
    pub fn remove(&mut self, vid: u16) {
        if vid <= 0x0fff {
            let v = usize::from(vid);
            self.0[v >> 6] &= !(1 << (v & 63));
        }
    }

    /// Adds `vid` if `member`, else removes it.
    pub fn set(&mut self, vid: u16, member: bool) {
        if member {
            self.insert(vid);
        } else {
            self.remove(vid);
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The VIDs in ascending order (one step per member, not per possible VID).
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().flat_map(|(k, &w)| {
            let mut rest = w;
            core::iter::from_fn(move || {
                let bit = rest.trailing_zeros();
                (rest != 0).then(|| {
                    rest &= rest - 1;
                    (k as u16) << 6 | bit as u16
                })
            })
        })
    }

    /// The union of two sets.
    pub fn union(&self, other: &Self) -> Self {
        let mut s = self.clone();
        for (a, b) in s.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
        s
    }
}

/// 802.1Q acceptable frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AcceptableFrames {
    /// Tagged, priority-tagged and untagged frames.
    #[default]
    All,
    /// Only frames tagged with a non-zero VID.
    TaggedOnly,
    /// Only untagged and priority-tagged frames.
    UntaggedOnly,
}

/// A port's VLAN parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VlanConfig {
    /// VLAN for untagged and priority-tagged frames; `None` drops them.
    pub pvid: Option<u16>,
    /// VIDs accepted in tagged frames when `ingress_filtering` is on.
    pub ingress: VlanSet,
    /// VIDs this port transmits (its egress member set).
    pub egress: VlanSet,
    /// The part of `egress` transmitted without a tag.
    pub untagged: VlanSet,
    /// Which frame formats are admitted.
    pub acceptable: AcceptableFrames,
    /// Drop tagged frames whose VID is not in `ingress`. When off, any VID 1..=4094 is admitted.
    pub ingress_filtering: bool,
}

impl VlanConfig {
    /// Access port: untagged (and priority-tagged) frames in `vid`, untagged egress, tagged
    /// frames dropped (Hyper-V "Access", OVS `vlan_mode=access`).
    pub fn access(vid: u16) -> Self {
        let s = VlanSet::from_vids(&[vid]);
        Self {
            pvid: Some(vid),
            ingress: s.clone(),
            egress: s.clone(),
            untagged: s,
            acceptable: AcceptableFrames::UntaggedOnly,
            ingress_filtering: true,
        }
    }

    /// Trunk port carrying `allowed` tagged; with `native`, untagged frames belong to that
    /// VLAN and it egresses untagged (OVS `native-untagged`, Hyper-V `NativeVlanId`). Without a
    /// native VLAN, untagged frames are dropped.
    pub fn trunk(allowed: VlanSet, native: Option<u16>) -> Self {
        let mut egress = allowed;
        let mut untagged = VlanSet::EMPTY;
        if let Some(n) = native {
            egress.insert(n);
            untagged.insert(n);
        }
        Self {
            pvid: native,
            ingress: egress.clone(),
            egress,
            untagged,
            acceptable: AcceptableFrames::All,
            ingress_filtering: true,
        }
    }

    /// Private-VLAN isolated host port: receives into `secondary`, transmits only what was
    /// classified into `primary` (i.e. what promiscuous ports send). Share learning between
    /// the two with [`crate::Bridge::set_fid`] (the bridge does it when this config is set).
    pub fn isolated(primary: u16, secondary: u16) -> Self {
        Self {
            pvid: Some(secondary),
            ingress: VlanSet::EMPTY,
            egress: VlanSet::from_vids(&[primary]),
            untagged: VlanSet::from_vids(&[primary]),
            acceptable: AcceptableFrames::UntaggedOnly,
            ingress_filtering: true,
        }
    }

    /// Private-VLAN community host port: receives into `secondary`, transmits its own
    /// community and the primary.
    pub fn community(primary: u16, secondary: u16) -> Self {
        let s = VlanSet::from_vids(&[primary, secondary]);
        Self {
            pvid: Some(secondary),
            ingress: VlanSet::EMPTY,
            egress: s.clone(),
            untagged: s,
            acceptable: AcceptableFrames::UntaggedOnly,
            ingress_filtering: true,
        }
    }

    /// Private-VLAN promiscuous port: receives into `primary`, transmits the primary and every
    /// secondary in `secondaries` untagged.
    pub fn promiscuous(primary: u16, secondaries: &VlanSet) -> Self {
        let mut s = secondaries.clone();
        s.insert(primary);
        Self {
            pvid: Some(primary),
            ingress: VlanSet::EMPTY,
            egress: s.clone(),
            untagged: s,
            acceptable: AcceptableFrames::UntaggedOnly,
            ingress_filtering: true,
        }
    }

    /// The VIDs [`classify`](Self::classify) admits in a tagged frame (VID 0, a priority
    /// tag, takes the PVID instead and is not one of them), computed a word at a time.
    #[cfg(feature = "alloc")]
    pub(crate) fn admitted_tagged(&self) -> VlanSet {
        let mut s = match (self.acceptable, self.ingress_filtering) {
            (AcceptableFrames::UntaggedOnly, _) => return VlanSet::EMPTY,
            (_, true) => self.ingress.clone(),
            (_, false) => VlanSet([u64::MAX; 64]),
        };
        s.remove(0);
        s.remove(0x0fff);
        s
    }

    /// Classifies a frame: `tag` is the TCI of a tag of the port's TPID, if the frame has one.
    /// Returns the frame's TCI in its VLAN (PCP and DEI kept from the tag, `default_pcp` for
    /// untagged frames), or why it is dropped.
    #[inline]
    pub fn classify(&self, tag: Option<Tci>, default_pcp: u8) -> Result<Tci, VlanDrop> {
        match tag {
            Some(t) if t.vid() != 0 => {
                if t.vid() == 0x0fff {
                    return Err(VlanDrop::ReservedVid);
                }
                if self.acceptable == AcceptableFrames::UntaggedOnly {
                    return Err(VlanDrop::FrameType);
                }
                if self.ingress_filtering && !self.ingress.contains(t.vid()) {
                    return Err(VlanDrop::NotMember);
                }
                Ok(t)
            }
            _ => {
                if self.acceptable == AcceptableFrames::TaggedOnly {
                    return Err(VlanDrop::FrameType);
                }
                let pvid = self.pvid.ok_or(VlanDrop::NoPvid)?;
                Ok(match tag {
                    Some(prio) => prio.with_vid(pvid),
                    None => Tci::new(default_pcp, false, pvid),
                })
            }
        }
    }
}

/// Why VLAN classification drops a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VlanDrop {
    /// VID 4095.
    ReservedVid,
    /// The frame's format is not one the port accepts.
    FrameType,
    /// Ingress filtering: the VID is not in the port's ingress set.
    NotMember,
    /// Untagged or priority-tagged frame on a port without a PVID.
    NoPvid,
}

/// How a received frame's bytes change on the way out of one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Edit {
    /// Sent exactly as received (zero copy).
    Unchanged,
    /// The outer tag's TPID and TCI are rewritten (same length).
    SetTag {
        /// New TPID.
        tpid: u16,
        /// New TCI.
        tci: Tci,
    },
    /// A tag is inserted after the source address.
    PushTag {
        /// TPID of the new tag.
        tpid: u16,
        /// TCI of the new tag.
        tci: Tci,
    },
    /// The outer tag is removed; the result is padded with zeros to [`MIN_FRAME_LEN`].
    PopTag,
}

impl Edit {
    /// The edit that turns a frame received with outer tag `ingress` (of the ingress port's
    /// TPID, already classified to `tci`) into what a port with TPID `egress_tpid` sends,
    /// tagged or not.
    #[inline]
    pub fn for_egress(ingress: Option<(u16, Tci)>, tci: Tci, untagged: bool, tpid: u16) -> Self {
        match (ingress, untagged) {
            (None, true) => Edit::Unchanged,
            (Some(_), true) => Edit::PopTag,
            (None, false) => Edit::PushTag { tpid, tci },
            (Some(t), false) if t == (tpid, tci) => Edit::Unchanged,
            (Some(_), false) => Edit::SetTag { tpid, tci },
        }
    }

    /// Length of the edited frame for a received frame of `len` bytes.
    pub fn output_len(self, len: usize) -> usize {
        match self {
            Edit::Unchanged | Edit::SetTag { .. } => len,
            Edit::PushTag { .. } => len + TAG_LEN,
            Edit::PopTag => len.saturating_sub(TAG_LEN).max(MIN_FRAME_LEN),
        }
    }

    /// Writes the edited frame into `out`; returns its length, or `None` if `out` is too small
    /// or the frame too short for the edit.
    pub fn apply(self, frame: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = self.output_len(frame.len());
        let out = out.get_mut(..n)?;
        match self {
            Edit::Unchanged => out.copy_from_slice(frame),
            Edit::SetTag { tpid, tci } => {
                if frame.len() < HEADER_LEN + TAG_LEN {
                    return None;
                }
                out.copy_from_slice(frame);
                out[12..14].copy_from_slice(&tpid.to_be_bytes());
                out[14..16].copy_from_slice(&tci.0.to_be_bytes());
            }
            Edit::PushTag { tpid, tci } => {
                let (head, rest) = frame.split_at_checked(12)?;
                out[..12].copy_from_slice(head);
                out[12..14].copy_from_slice(&tpid.to_be_bytes());
                out[14..16].copy_from_slice(&tci.0.to_be_bytes());
                out[16..].copy_from_slice(rest);
            }
            Edit::PopTag => {
                let rest = frame.get(HEADER_LEN + TAG_LEN - 2..)?;
                out[..12].copy_from_slice(&frame[..12]);
                out[12..12 + rest.len()].copy_from_slice(rest);
                out[12 + rest.len()..].fill(0);
            }
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let all = VlanSet::all();
        assert!(!all.contains(0) && all.contains(1) && all.contains(4094) && !all.contains(4095));
        assert_eq!(all.iter().count(), 4094);
        let mut s = VlanSet::from_vids(&[10, 20, 5000]);
        assert_eq!(s.iter().collect::<alloc::vec::Vec<_>>(), [10, 20]);
        // A value above 4095 is not another name for its low 12 bits.
        assert!(!s.contains(0x1000 | 10) && !s.contains(u16::MAX));
        s.remove(0x1000 | 10);
        assert!(s.contains(10));
        s.set(0x1000 | 20, false);
        assert!(s.contains(20));
        assert_eq!(alloc::format!("{s:?}"), "{10, 20}");
        assert!(!s.is_empty());
        // Empty again only when the last member, in the last word, goes.
        s.remove(10);
        s.insert(4094);
        s.remove(20);
        assert!(!s.is_empty());
        s.remove(4094);
        assert!(s.is_empty() && VlanSet::EMPTY.is_empty());
        assert_eq!(alloc::format!("{s:?}"), "{}");
    }

    /// xorshift64: reproducible random sets and configurations.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    fn random_set(next: &mut impl FnMut() -> u64) -> VlanSet {
        // Sparse, dense, empty and full words, and the edges 0, 63, 64, 4095.
        let mut s = VlanSet::EMPTY;
        for w in s.0.iter_mut() {
            *w = match next() % 5 {
                0 => 0,
                1 => u64::MAX,
                2 => next() & next() & next(),
                _ => next(),
            };
        }
        s
    }

    #[test]
    fn iter_yields_exactly_the_members() {
        let mut next = rng(0x5EED);
        for _ in 0..200 {
            let s = random_set(&mut next);
            let want: alloc::vec::Vec<u16> = (0..4096).filter(|v| s.contains(*v)).collect();
            assert_eq!(s.iter().collect::<alloc::vec::Vec<_>>(), want);
        }
        assert_eq!(VlanSet::EMPTY.iter().next(), None);
        assert_eq!(VlanSet([u64::MAX; 64]).iter().last(), Some(4095));
    }

    /// The word-at-a-time admitted set is classification's own rule, VID by VID.
    #[test]
    fn admitted_tagged_matches_classify() {
        let mut next = rng(0xAD417);
        for _ in 0..300 {
            let cfg = VlanConfig {
                pvid: (next().is_multiple_of(2)).then(|| (next() % 4096) as u16),
                ingress: random_set(&mut next),
                egress: random_set(&mut next),
                untagged: random_set(&mut next),
                acceptable: [
                    AcceptableFrames::All,
                    AcceptableFrames::TaggedOnly,
                    AcceptableFrames::UntaggedOnly,
                ][(next() % 3) as usize],
                ingress_filtering: next().is_multiple_of(2),
            };
            let admitted = cfg.admitted_tagged();
            for vid in 0..4096u16 {
                let want = vid != 0 && cfg.classify(Some(Tci::new(0, false, vid)), 0).is_ok();
                assert_eq!(admitted.contains(vid), want, "{cfg:?} VID {vid}");
            }
        }
    }

    #[test]
    fn classification() {
        let a = VlanConfig::access(10);
        assert_eq!(a.classify(None, 3), Ok(Tci::new(3, false, 10)));
        assert_eq!(
            a.classify(Some(Tci::new(5, true, 0)), 0),
            Ok(Tci::new(5, true, 10))
        );
        assert_eq!(
            a.classify(Some(Tci::new(0, false, 10)), 0),
            Err(VlanDrop::FrameType)
        );
        let t = VlanConfig::trunk(VlanSet::from_vids(&[10, 20]), None);
        assert_eq!(t.classify(None, 0), Err(VlanDrop::NoPvid));
        assert_eq!(t.classify(Some(Tci(30)), 0), Err(VlanDrop::NotMember));
        assert_eq!(t.classify(Some(Tci(0x0fff)), 0), Err(VlanDrop::ReservedVid));
        assert_eq!(t.classify(Some(Tci(20)), 0), Ok(Tci(20)));
    }

    #[test]
    fn edits() {
        let f: alloc::vec::Vec<u8> = (0..20).collect();
        let mut out = [0u8; 80];
        let n = Edit::PopTag.apply(&f, &mut out).unwrap();
        assert_eq!(n, 60);
        assert_eq!(&out[..12], &f[..12]);
        assert_eq!(&out[12..16], &f[16..20]);
        assert!(out[16..60].iter().all(|b| *b == 0));
        let push = Edit::PushTag {
            tpid: 0x8100,
            tci: Tci(0xa00a),
        };
        let n = push.apply(&f, &mut out).unwrap();
        assert_eq!(&out[12..16], &[0x81, 0, 0xa0, 0x0a]);
        assert_eq!(&out[16..n], &f[12..]);
        assert_eq!(
            Edit::for_egress(Some((0x8100, Tci(10))), Tci(10), false, 0x8100),
            Edit::Unchanged
        );
        assert_eq!(
            Edit::for_egress(Some((0x8100, Tci(10))), Tci(10), false, 0x88a8),
            Edit::SetTag {
                tpid: 0x88a8,
                tci: Tci(10)
            }
        );
        // Rewriting a tag needs the whole tag (18 bytes with the EtherType after it).
        let set = Edit::SetTag {
            tpid: 0x88a8,
            tci: Tci(0x2064),
        };
        assert_eq!(set.apply(&f[..17], &mut out), None);
        assert_eq!(set.apply(&f[..18], &mut out), Some(18));
        assert_eq!(
            out[..18],
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xa8, 0x20, 0x64, 16, 17]
        );
        assert_eq!(
            set.apply(&f[..18], &mut out[..17]),
            None,
            "output too small"
        );
    }

    #[test]
    fn union_of_sets() {
        let a = VlanSet::from_vids(&[1, 64, 4094]);
        let b = VlanSet::from_vids(&[2, 64, 100]);
        let u = a.union(&b);
        assert_eq!(
            u.iter().collect::<alloc::vec::Vec<_>>(),
            [1, 2, 64, 100, 4094]
        );
        assert_eq!(a.union(&VlanSet::EMPTY), a);
        assert_eq!(VlanSet::EMPTY.union(&VlanSet::EMPTY), VlanSet::EMPTY);
    }
}
