//! The reference TSC page and its scale/offset arithmetic (TLFS "Partition Reference TSC
//! Mechanism"; reference §5.6).
//!
//! The guest computes `reference_time = ((tsc × scale) >> 64) + offset` in 100 ns units, and
//! retries when the page's `sequence` changes during the read. A sequence of 0 means "invalid":
//! the guest falls back to the `TIME_REF_COUNT` MSR.

use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{I64, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Reference time ticks per second (100 ns units).
pub const REFERENCE_TIME_HZ: u64 = 10_000_000;

/// The sequence value meaning "the page is not valid; read `TIME_REF_COUNT` instead".
pub const TSC_SEQUENCE_INVALID: u32 = 0;

/// The reference TSC page (4 KiB; only the first 24 bytes are defined).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ReferenceTscPage {
    /// @0: sequence; 0 = invalid. Changes whenever scale/offset change.
    pub sequence: U32,
    /// @4: reserved.
    pub reserved1: U32,
    /// @8: 64.64 fixed-point multiplier from TSC ticks to 100 ns units.
    pub scale: U64,
    /// @16: signed offset in 100 ns units.
    pub offset: I64,
    /// @24: reserved to the end of the page.
    pub reserved2: [u8; 4072],
}
const _: () = assert!(size_of::<ReferenceTscPage>() == 4096);
const _: () = assert!(offset_of!(ReferenceTscPage, scale) == REFERENCE_TSC_SCALE_OFFSET);
const _: () = assert!(offset_of!(ReferenceTscPage, offset) == REFERENCE_TSC_OFFSET_OFFSET);

/// Byte offset of `sequence` in the page.
pub const REFERENCE_TSC_SEQUENCE_OFFSET: usize = 0;
/// Byte offset of `scale` in the page.
pub const REFERENCE_TSC_SCALE_OFFSET: usize = 8;
/// Byte offset of `offset` in the page.
pub const REFERENCE_TSC_OFFSET_OFFSET: usize = 16;

impl core::fmt::Debug for ReferenceTscPage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReferenceTscPage")
            .field("sequence", &self.sequence.get())
            .field("scale", &self.scale.get())
            .field("offset", &self.offset.get())
            .finish_non_exhaustive()
    }
}

/// The pair that converts TSC ticks to reference time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TscScaleOffset {
    /// 64.64 fixed-point multiplier.
    pub scale: u64,
    /// Offset in 100 ns units (two's complement; added with wrap-around).
    pub offset: i64,
}

impl TscScaleOffset {
    /// The scale for a TSC running at `tsc_hz`: `(10^7 << 64) / tsc_hz`.
    ///
    /// `None` unless the TSC is faster than 10 MHz (a slower one needs a scale ≥ 2^64).
    pub const fn scale_for_frequency(tsc_hz: u64) -> Option<u64> {
        if tsc_hz <= REFERENCE_TIME_HZ {
            return None;
        }
        Some((((REFERENCE_TIME_HZ as u128) << 64) / tsc_hz as u128) as u64)
    }

    /// Scale and offset for a TSC running at `tsc_hz` that read `tsc_at_zero` when reference
    /// time was zero (partition start).
    pub const fn for_frequency(tsc_hz: u64, tsc_at_zero: u64) -> Option<Self> {
        let Some(scale) = Self::scale_for_frequency(tsc_hz) else {
            return None;
        };
        let at_zero = Self { scale, offset: 0 }.reference_time(tsc_at_zero);
        Some(Self {
            scale,
            offset: (at_zero as i64).wrapping_neg(),
        })
    }

    /// Reference time for a TSC reading: `((tsc × scale) >> 64) + offset`, wrapping.
    pub const fn reference_time(self, tsc: u64) -> u64 {
        let scaled = ((tsc as u128 * self.scale as u128) >> 64) as u64;
        scaled.wrapping_add(self.offset as u64)
    }
}

/// The sequence value after `sequence`, skipping [`TSC_SEQUENCE_INVALID`].
pub const fn next_tsc_sequence(sequence: u32) -> u32 {
    match sequence.wrapping_add(1) {
        TSC_SEQUENCE_INVALID => 1,
        next => next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_layout() {
        assert_eq!(offset_of!(ReferenceTscPage, sequence), 0);
        assert_eq!(offset_of!(ReferenceTscPage, reserved1), 4);
        assert_eq!(offset_of!(ReferenceTscPage, scale), 8);
        assert_eq!(offset_of!(ReferenceTscPage, offset), 16);
        assert_eq!(size_of::<ReferenceTscPage>(), 4096);
        let mut page = <ReferenceTscPage as zerocopy::FromZeros>::new_zeroed();
        page.sequence.set(3);
        page.scale.set(0x1234);
        page.offset.set(-5);
        assert_eq!(
            std::format!("{page:?}"),
            "ReferenceTscPage { sequence: 3, scale: 4660, offset: -5, .. }"
        );
    }

    #[test]
    fn scale_converts_a_second_of_ticks_to_ten_million() {
        for hz in [
            10_000_001u64,
            1_000_000_000,
            2_100_000_000,
            3_000_000_000,
            5_123_456_789,
        ] {
            let so = TscScaleOffset::for_frequency(hz, 0).unwrap();
            let t = so.reference_time(hz);
            // Truncation of the scale loses < 1 tick per 2^64 / scale ticks.
            assert!(
                (REFERENCE_TIME_HZ - 1..=REFERENCE_TIME_HZ).contains(&t),
                "{hz}: {t}"
            );
            let t = so.reference_time(hz * 100);
            assert!((REFERENCE_TIME_HZ * 100 - 100..=REFERENCE_TIME_HZ * 100).contains(&t));
        }
        assert_eq!(TscScaleOffset::scale_for_frequency(10_000_000), None);
        assert_eq!(TscScaleOffset::scale_for_frequency(0), None);
        // 2 GHz: scale = 2^64 / 200 exactly (truncated).
        assert_eq!(
            TscScaleOffset::scale_for_frequency(2_000_000_000),
            Some(((1u128 << 64) / 200) as u64)
        );
    }

    #[test]
    fn offset_makes_partition_start_zero() {
        let hz = 2_500_000_000;
        let start = 123_456_789_012_345;
        let so = TscScaleOffset::for_frequency(hz, start).unwrap();
        assert!(so.reference_time(start) <= 1);
        let t = so.reference_time(start + hz * 3);
        assert!(
            (3 * REFERENCE_TIME_HZ - 1..=3 * REFERENCE_TIME_HZ + 1).contains(&t),
            "{t}"
        );
        assert!(so.offset < 0);
    }

    #[test]
    fn sequence_skips_invalid() {
        assert_eq!(next_tsc_sequence(1), 2);
        assert_eq!(next_tsc_sequence(u32::MAX), 1);
        assert_eq!(next_tsc_sequence(0), 1);
    }
}
