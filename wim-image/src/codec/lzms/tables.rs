//! LZMS offset and length slots.
//!
//! Each slot has a base value and a number of verbatim extra bits; slot `s + 1` starts where
//! slot `s` ends (`base[s + 1] = base[s] + 2^extra[s]`, `base[0] = 1`). The extra-bit counts
//! come in runs, listed below as (bits, slots); the tables are generated from the runs at
//! compile time (the bases then end at 1,180,427,429 for offsets and 1,073,809,579 for
//! lengths, one past the largest values LZMS can code).

/// Offset slots (LZ offsets and delta raw offsets).
pub(crate) const NUM_OFFSET_SLOTS: usize = 799;
/// Length slots.
pub(crate) const NUM_LENGTH_SLOTS: usize = 54;

const OFFSET_RUNS: [(u8, u16); 21] = [
    (0, 8),
    (2, 9),
    (3, 7),
    (4, 10),
    (5, 15),
    (6, 15),
    (7, 20),
    (8, 20),
    (9, 30),
    (10, 33),
    (11, 40),
    (12, 42),
    (13, 45),
    (14, 60),
    (15, 73),
    (16, 80),
    (17, 85),
    (18, 95),
    (19, 105),
    (20, 6),
    (30, 1),
];

const LENGTH_RUNS: [(u8, u16); 13] = [
    (0, 26),
    (1, 4),
    (2, 6),
    (3, 4),
    (4, 5),
    (5, 2),
    (6, 1),
    (7, 1),
    (8, 1),
    (9, 1),
    (10, 1),
    (16, 1),
    (30, 1),
];

/// (base, extra bits) per slot, padded with zeros to `N` entries.
const fn slots<const N: usize>(runs: &[(u8, u16)]) -> [(u32, u8); N] {
    let mut t = [(0u32, 0u8); N];
    let mut base = 1u32;
    let (mut r, mut s) = (0, 0);
    while r < runs.len() {
        let mut k = 0;
        while k < runs[r].1 {
            t[s] = (base, runs[r].0);
            base += 1 << runs[r].0;
            s += 1;
            k += 1;
        }
        r += 1;
    }
    t
}

/// Offset slot → (base, extra bits). 1024 entries so that any decoded symbol (< 1024)
/// indexes it without a bounds check.
pub(crate) static OFFSET_SLOTS: [(u32, u8); 1024] = slots::<1024>(&OFFSET_RUNS);

/// Length slot → (base, extra bits), padded to 64 entries.
pub(crate) static LENGTH_SLOTS: [(u32, u8); 64] = slots::<64>(&LENGTH_RUNS);

/// Number of offset slots a chunk of `size` bytes uses: enough for offset `size - 1`.
pub(crate) fn num_offset_slots(size: usize) -> usize {
    if size < 2 {
        return 0;
    }
    let max = (size - 1).min(u32::MAX as usize) as u32;
    // The first slot whose base exceeds `max`.
    OFFSET_SLOTS[..NUM_OFFSET_SLOTS].partition_point(|&(base, _)| base <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_tables() {
        let (last_base, last_bits) = OFFSET_SLOTS[NUM_OFFSET_SLOTS - 1];
        assert_eq!(u64::from(last_base) + (1 << last_bits), 1_180_427_429);
        assert_eq!(OFFSET_SLOTS[9], (13, 2));
        let (last_base, last_bits) = LENGTH_SLOTS[NUM_LENGTH_SLOTS - 1];
        assert_eq!(u64::from(last_base) + (1 << last_bits), 1_073_809_579);
        assert_eq!(LENGTH_SLOTS[27], (0x1d, 1));
        assert_eq!(num_offset_slots(1), 0);
        assert_eq!(num_offset_slots(2), 1);
        assert_eq!(num_offset_slots(9), 8);
        assert_eq!(num_offset_slots(10), 9);
        assert_eq!(num_offset_slots(1 << 17), 203);
        assert_eq!(num_offset_slots(1 << 26), 729);
        assert_eq!(num_offset_slots(1 << 30), 799);
    }
}
