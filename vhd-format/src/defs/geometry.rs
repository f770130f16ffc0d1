//! CHS geometry: the spec's algorithm (appendix "CHS Calculation").

/// Cylinders, heads and sectors per track, as stored in the footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Geometry {
    /// Cylinders (at most 65535).
    pub cylinders: u16,
    /// Heads (at most 16).
    pub heads: u8,
    /// Sectors per track (at most 255).
    pub sectors_per_track: u8,
}

impl Geometry {
    /// The geometry the spec's algorithm gives for a disk of `size` bytes.
    ///
    /// The product C·H·S rounds *down* from the size (qemu instead grows the size until the
    /// product covers it); above 65535·16·255 sectors (≈127.5 GiB) it saturates at 65535/16/255.
    pub fn for_size(size: u64) -> Self {
        let total = (size / 512).min(65535 * 16 * 255);
        let (spt, heads, cyl_x_heads);
        if total >= 65535 * 16 * 63 {
            spt = 255;
            heads = 16;
            cyl_x_heads = total / spt;
        } else {
            let mut s = 17;
            let mut cth = total / s;
            let mut h = cth.div_ceil(1024).max(4);
            if cth >= h * 1024 || h > 16 {
                s = 31;
                h = 16;
                cth = total / s;
            }
            if cth >= h * 1024 {
                s = 63;
                h = 16;
                cth = total / s;
            }
            spt = s;
            heads = h;
            cyl_x_heads = cth;
        }
        Self {
            cylinders: (cyl_x_heads / heads) as u16,
            heads: heads as u8,
            sectors_per_track: spt as u8,
        }
    }

    /// Bytes addressed by this geometry: C·H·S·512.
    pub fn size(self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track) * 512
    }

    /// The smallest geometry of the spec's algorithm whose C·H·S covers `size` bytes: how qemu
    /// (and Virtual PC) size a disk, growing the sector count until the product covers it.
    /// Above ≈127.5 GiB no geometry covers the size and the saturated 65535/16/255 is returned
    /// (the size then lives only in `current_size`).
    pub fn covering(size: u64) -> Self {
        let start = size.div_ceil(512);
        // The spec's product falls at most heads·sectors-per-track (< 16·255) sectors short
        // of the count it is given, so a few thousand steps always reach a cover.
        for extra in 0..=16 * 255 {
            let g = Self::for_size((start + extra).saturating_mul(512));
            if g.size() >= size || g.is_saturated() {
                return g;
            }
        }
        Self::for_size(size)
    }

    /// Whether this is the saturated geometry 65535/16/255 (the size is then only in
    /// `current_size`).
    pub fn is_saturated(self) -> bool {
        self == Self {
            cylinders: 65535,
            heads: 16,
            sectors_per_track: 255,
        }
    }
}

impl core::fmt::Display for Geometry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.cylinders, self.heads, self.sectors_per_track
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// Each `(request, (C, H, S), bytes)` row: `geometry(request)` has that CHS and size.
    fn check_table(geometry: fn(u64) -> Geometry, cases: &[(u64, (u16, u8, u8), u64)]) {
        for &(size, (c, h, s), bytes) in cases {
            let g = geometry(size);
            assert_eq!(
                (g.cylinders, g.heads, g.sectors_per_track),
                (c, h, s),
                "size {size}"
            );
            assert_eq!(g.size(), bytes, "size {size}");
        }
    }

    /// The spec-floor column of the reference table (`shared/reference/vhd.md` §1.6).
    #[test]
    fn spec_chs_table() {
        let cases: &[(u64, (u16, u8, u8), u64)] = &[
            (MIB, (30, 4, 17), 1_044_480),
            (10 * MIB, (301, 4, 17), 10_479_616),
            (64 * MIB, (963, 8, 17), 67_055_616),
            (100 * MIB, (1003, 12, 17), 104_761_344),
            // 16 heads at 17 sectors still fit; 200 MiB needs 31 sectors, not yet 63.
            (132 * MIB, (993, 16, 17), 138_289_152),
            (200 * MIB, (825, 16, 31), 209_510_400),
            (GIB, (2080, 16, 63), 1_073_479_680),
            (4 * GIB, (8322, 16, 63), 4_294_950_912),
        ];
        check_table(Geometry::for_size, cases);
        let g = Geometry::for_size(127 * GIB);
        assert_eq!(
            (g.cylinders, g.heads, g.sectors_per_track),
            (65278, 16, 255)
        );
        for size in [200 * GIB, 2040 * GIB, u64::MAX] {
            assert!(Geometry::for_size(size).is_saturated());
        }
        assert_eq!(Geometry::for_size(0).size(), 0);
        assert_eq!(std::format!("{}", Geometry::for_size(MIB)), "30/4/17");
    }

    /// The qemu column of the reference table: the geometry qemu 7.2 creates for a request.
    #[test]
    fn covering_matches_qemu_create() {
        let cases: &[(u64, (u16, u8, u8), u64)] = &[
            (MIB, (31, 4, 17), 1_079_296),
            (10 * MIB, (302, 4, 17), 10_514_432),
            (64 * MIB, (964, 8, 17), 67_125_248),
            (100 * MIB, (1004, 12, 17), 104_865_792),
            // Measured here with qemu-img 10.0.2 (`create -f vpc -o subformat=fixed`).
            (132 * MIB, (994, 16, 17), 138_428_416),
            (200 * MIB, (826, 16, 31), 209_764_352),
            (GIB, (2081, 16, 63), 1_073_995_776),
            (4 * GIB, (8323, 16, 63), 4_295_467_008),
            (127 * GIB, (65279, 16, 255), 136_365_219_840),
        ];
        check_table(Geometry::covering, cases);
        // A CHS product covers itself; beyond the largest geometry the result saturates.
        assert_eq!(Geometry::covering(1_079_296).size(), 1_079_296);
        for size in [200 * GIB, 2040 * GIB, u64::MAX] {
            assert!(Geometry::covering(size).is_saturated());
        }
        let mut size = 512u64;
        while size < 300 * GIB {
            let g = Geometry::covering(size);
            assert!(g.size() >= size || g.is_saturated(), "{size}: {g}");
            size = size * 5 / 3 + 512;
        }
    }

    #[test]
    fn geometry_never_exceeds_the_size() {
        let mut size = 512u64;
        while size < 300 * GIB {
            let g = Geometry::for_size(size);
            assert!(g.size() <= size, "{size}: {g}");
            size = size * 3 / 2 + 512;
        }
    }
}
