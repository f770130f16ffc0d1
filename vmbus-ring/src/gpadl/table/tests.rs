//! Reassembly of GPADL message sequences, including hostile ones.

use super::*;
use crate::defs::MAX_MESSAGE_PAYLOAD;
use crate::gpadl::{GpaRange, GpadlMessages, GuestRam};
use proptest::prelude::*;
use std::vec::Vec;

fn messages(relid: u32, id: u32, ranges: &[GpaRange<'_>]) -> Vec<Vec<u8>> {
    let mut split = GpadlMessages::new(relid, id, ranges).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_MESSAGE_PAYLOAD];
    while let Some(len) = split.next_message(&mut buf) {
        out.push(buf[..len].to_vec());
    }
    out
}

fn feed(table: &mut GpadlTable, msgs: &[Vec<u8>]) -> Result<GpadlProgress, GpadlError> {
    let mut last = Err(GpadlError::Truncated { len: 0, needed: 8 });
    for m in msgs {
        last = table.handle_message(m);
        last?;
    }
    last
}

fn header(id: u32, range_buflen: u16, range_count: u16, values: &[u64]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&8u32.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&range_buflen.to_le_bytes());
    m.extend_from_slice(&range_count.to_le_bytes());
    for v in values {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m
}

fn body(id: u32, values: &[u64]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&9u32.to_le_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&id.to_le_bytes());
    for v in values {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m
}

/// A range header value: byte_count in the low half, byte_offset in the high half.
fn rh(byte_count: u32, byte_offset: u32) -> u64 {
    u64::from(byte_count) | u64::from(byte_offset) << 32
}

#[test]
fn split_then_reassemble_a_ring_gpadl() {
    let pfns: Vec<u64> = (0x200..0x200 + 100).collect();
    let msgs = messages(5, 0xe1e10, &[GpaRange::whole_pages(&pfns)]);
    assert_eq!(msgs.len(), 4);
    let mut table = GpadlTable::default();
    for m in &msgs[..3] {
        assert_eq!(
            table.handle_message(m).unwrap(),
            GpadlProgress::InProgress { gpadl_id: 0xe1e10 }
        );
    }
    assert_eq!(
        table.handle_message(&msgs[3]).unwrap(),
        GpadlProgress::Complete {
            gpadl_id: 0xe1e10,
            child_relid: 5
        }
    );
    let g = table.get(0xe1e10).unwrap();
    assert_eq!(g.len(), 100 * 4096);
    assert!(!g.is_empty());
    assert_eq!((g.id(), g.child_relid()), (0xe1e10, 5));
    let mut encoded = std::vec![0u8; 8 + 8 * 100];
    GpaRanges::encode(&[GpaRange::whole_pages(&pfns)], &mut encoded).unwrap();
    assert_eq!(g.range_buffer(), &encoded[..]);
    assert_eq!(g.ring_pfns().unwrap().iter().collect::<Vec<_>>(), pfns);
    assert_eq!(table.len(), 1);
    assert_eq!(table.in_progress(), 0);
    // Host builds the ring pair from it.
    let ram = GuestRam::new_boxed(0x200, 100).unwrap();
    let (incoming, outgoing) =
        crate::memory::host_ring_pair(g.ring_pfns().unwrap(), 50, &ram).unwrap();
    use crate::memory::RingMemory;
    assert_eq!(incoming.data_len(), 49 * 4096);
    assert_eq!(outgoing.data_len(), 49 * 4096);
    // Teardown.
    assert!(table.remove(0xe1e10).is_some());
    assert!(table.get(0xe1e10).is_none());
}

#[test]
fn only_one_whole_page_range_from_offset_0_is_a_ring() {
    let pfns = [0x10u64, 0x11];
    for (id, range) in [
        (1, GpaRange::new(0x10, 8192 - 0x10, &pfns)),
        (2, GpaRange::new(0, 4097, &pfns)),
        (3, GpaRange::new(0, 8192, &pfns)),
    ] {
        let mut table = GpadlTable::default();
        feed(&mut table, &messages(1, id, &[range])).unwrap();
        let ring = table.get(id).unwrap().ring_pfns();
        assert_eq!(ring.is_ok(), id == 3, "{range:?}");
    }
}

#[test]
fn multi_range_gpadl_and_its_buffer() {
    let a = [0x10u64, 0x11];
    let b = [0x13u64];
    let msgs = messages(
        2,
        7,
        &[GpaRange::new(0x800, 6000, &a), GpaRange::new(0, 100, &b)],
    );
    let mut table = GpadlTable::default();
    assert!(matches!(
        feed(&mut table, &msgs).unwrap(),
        GpadlProgress::Complete { gpadl_id: 7, .. }
    ));
    let g = table.get(7).unwrap();
    assert_eq!(g.len(), 6100);
    assert_eq!(g.ring_pfns(), Err(MemoryError::NotRingGpadl));
    let ram = GuestRam::new_boxed(0x10, 4).unwrap();
    let buf = g.buffer(&ram).unwrap();
    let data: Vec<u8> = (0..6100u32).map(|i| i as u8).collect();
    buf.write_at(0, &data).unwrap();
    let mut x = [0u8; 1];
    assert!(ram.read_gpa(0x13 * 4096 + 99, &mut x));
    assert_eq!(x[0], data[6099]);
    let small = GuestRam::new_boxed(0x10, 2).unwrap();
    assert_eq!(
        g.buffer(&small).unwrap_err(),
        GpaAccessError::UnmappedPfn { pfn: 0x13 }
    );
}

/// A GPADL of many small ranges (a hostile receive buffer): its ranges are parsed and indexed
/// once, when it completes, and every view of it moves the same bytes as a view built from
/// the bare ranges. The lazy view checks a page only when an access touches it.
#[test]
fn many_range_gpadl_views_agree() {
    // 600 ranges (24 under Miri) of 1..=4096 bytes at varying offsets over 8 pages at 0x40.
    let many = if cfg!(miri) { 24 } else { 600 };
    let pfns: Vec<[u64; 2]> = (0..many)
        .map(|i| [0x40 + i % 8, 0x40 + (i * 3 + 1) % 8])
        .collect();
    let shapes: Vec<GpaRange<'_>> = pfns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let off = (i as u32 * 613) % 4096;
            let count = 1 + (i as u32 * 997) % 4096;
            let pages = crate::defs::range_page_count(off, count) as usize;
            GpaRange::new(off, count, &p[..pages])
        })
        .collect();
    let msgs = messages(3, 11, &shapes);
    let mut table = GpadlTable::default();
    feed(&mut table, &msgs).unwrap();
    let g = table.get(11).unwrap();
    assert_eq!(g.index.len(), (many as usize).div_ceil(16));
    let total: u64 = shapes.iter().map(|r| u64::from(r.byte_count)).sum();
    assert_eq!(g.len(), total);
    let ram = GuestRam::new_boxed(0x40, 8).unwrap();
    let image: Vec<u8> = (0..8 * 4096u32).map(|i| (i * 7 + i / 4096) as u8).collect();
    assert!(ram.write_gpa(0x40 * 4096, &image));
    let checked = g.buffer(&ram).unwrap();
    let lazy = g.lazy_buffer(&ram);
    let bare = GpaBuffer::new(g.ranges(), &ram).unwrap();
    let mut want = vec![0u8; total as usize];
    bare.read_at(0, &mut want).unwrap();
    for (offset, n) in [
        (0u64, 5000usize),
        (total / 2, 9000),
        (total - 1, 1),
        (12345, 1),
    ] {
        let mut a = vec![0u8; n];
        let mut b = vec![0u8; n];
        checked.read_at(offset, &mut a).unwrap();
        lazy.read_at(offset, &mut b).unwrap();
        assert_eq!(
            a,
            &want[offset as usize..offset as usize + n],
            "offset {offset}"
        );
        assert_eq!(a, b, "offset {offset}");
    }
    assert!(lazy.read_at(total, &mut [0u8; 1]).is_err());
    // RAM without the last page: the checked view is refused, the lazy one fails only the
    // accesses that reach a missing page.
    let small = GuestRam::new_boxed(0x40, 7).unwrap();
    assert_eq!(
        g.buffer(&small).unwrap_err(),
        GpaAccessError::UnmappedPfn { pfn: 0x47 }
    );
    let lazy = g.lazy_buffer(&small);
    assert_eq!(
        lazy.read_at(0, &mut vec![0u8; total as usize]).unwrap_err(),
        GpaAccessError::UnmappedPfn { pfn: 0x47 }
    );
    // Range 0 is 1 byte on page 0x40.
    assert!(lazy.read_at(0, &mut [0u8; 1]).is_ok());
}

#[test]
fn padded_messages_are_tolerated() {
    // A guest that always posts 240-byte messages (UEFI does): a one-page GPADL whose header
    // is padded with zeros after its two values.
    let mut m = header(3, 16, 1, &[rh(4096, 0), 0x42]);
    m.resize(MAX_MESSAGE_PAYLOAD, 0);
    let mut table = GpadlTable::default();
    assert!(matches!(
        table.handle_message(&m).unwrap(),
        GpadlProgress::Complete { gpadl_id: 3, .. }
    ));
    // Padded body completing a 2-page GPADL.
    let mut b = body(4, &[0x43]);
    b.resize(MAX_MESSAGE_PAYLOAD, 0xff);
    table
        .handle_message(&header(4, 24, 1, &[rh(8192, 0), 0x42]))
        .unwrap();
    assert!(matches!(
        table.handle_message(&b).unwrap(),
        GpadlProgress::Complete { gpadl_id: 4, .. }
    ));
    assert_eq!(
        table
            .get(4)
            .unwrap()
            .ring_pfns()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        [0x42, 0x43]
    );
}

#[test]
fn hostile_sequences_are_rejected() {
    let mut t = GpadlTable::default();
    let one_page = header(1, 16, 1, &[rh(4096, 0), 0x42]);
    t.handle_message(&one_page).unwrap();
    // Duplicate id, complete or in progress.
    assert_eq!(
        t.handle_message(&one_page).unwrap_err(),
        GpadlError::DuplicateId { gpadl_id: 1 }
    );
    t.handle_message(&header(2, 24, 1, &[rh(8192, 0)])).unwrap();
    assert_eq!(
        t.handle_message(&header(2, 16, 1, &[rh(4096, 0), 1]))
            .unwrap_err(),
        GpadlError::DuplicateId { gpadl_id: 2 }
    );
    // Overrun: a body for a complete GPADL.
    assert_eq!(
        t.handle_message(&body(1, &[7])).unwrap_err(),
        GpadlError::Overrun { gpadl_id: 1 }
    );
    // Unknown id.
    assert_eq!(
        t.handle_message(&body(99, &[7])).unwrap_err(),
        GpadlError::UnknownId { gpadl_id: 99 }
    );
    // Empty body discards the GPADL in progress.
    assert_eq!(
        t.handle_message(&body(2, &[])).unwrap_err(),
        GpadlError::EmptyBody { gpadl_id: 2 }
    );
    assert_eq!(t.in_progress(), 0);
    // range_buflen not a multiple of 8, too small; zero ranges.
    assert!(matches!(
        t.handle_message(&header(3, 20, 1, &[])).unwrap_err(),
        GpadlError::RangeBufLen {
            range_buflen: 20,
            ..
        }
    ));
    assert!(matches!(
        t.handle_message(&header(3, 8, 1, &[])).unwrap_err(),
        GpadlError::RangeBufLen {
            range_buflen: 8,
            ..
        }
    ));
    assert!(matches!(
        t.handle_message(&header(3, 16, 0, &[])).unwrap_err(),
        GpadlError::Ranges {
            source: RangeError::NoRanges,
            ..
        }
    ));
    // Over-long list: range_buflen declares more PFNs than the range needs.
    assert_eq!(
        t.handle_message(&header(3, 24, 1, &[rh(4096, 0), 1, 2]))
            .unwrap_err(),
        GpadlError::LengthMismatch {
            gpadl_id: 3,
            used: 16,
            declared: 24
        }
    );
    // Too short a list: the range needs two PFNs, the buffer holds one.
    assert!(matches!(
        t.handle_message(&header(3, 16, 1, &[rh(4097, 0), 1]))
            .unwrap_err(),
        GpadlError::Ranges {
            source: RangeError::Truncated { index: 0 },
            ..
        }
    ));
    // Two ranges declared, one present.
    assert!(matches!(
        t.handle_message(&header(3, 16, 2, &[rh(4096, 0), 1]))
            .unwrap_err(),
        GpadlError::Ranges {
            source: RangeError::Truncated { index: 1 },
            ..
        }
    ));
    // Bad ranges.
    assert!(matches!(
        t.handle_message(&header(3, 16, 1, &[rh(0, 0), 1]))
            .unwrap_err(),
        GpadlError::Ranges {
            source: RangeError::EmptyRange { index: 0 },
            ..
        }
    ));
    assert!(matches!(
        t.handle_message(&header(3, 16, 1, &[rh(1, 4096), 1]))
            .unwrap_err(),
        GpadlError::Ranges {
            source: RangeError::OffsetTooLarge { .. },
            ..
        }
    ));
    // Wrong message types and truncation.
    assert!(matches!(
        t.handle_message(&[10, 0, 0, 0, 0, 0, 0, 0]).unwrap_err(),
        GpadlError::UnexpectedType { .. }
    ));
    assert!(matches!(
        t.handle_message(&[8, 0, 0]).unwrap_err(),
        GpadlError::Truncated { .. }
    ));
    assert!(matches!(
        t.handle_message(&header(3, 16, 1, &[])[..19]).unwrap_err(),
        GpadlError::Truncated {
            len: 19,
            needed: 20
        }
    ));
    assert_eq!(t.len(), 1);
    assert_eq!(t.ids().collect::<Vec<_>>(), [1]);
}

#[test]
fn limits_bound_what_a_guest_can_allocate() {
    let limits = GpadlLimits {
        max_in_progress: 2,
        max_gpadls: 3,
        max_values: 4,
        max_total_values: 64,
    };
    let mut t = GpadlTable::new(limits);
    assert_eq!(
        t.handle_message(&header(1, 40, 1, &[])).unwrap_err(),
        GpadlError::TooLong {
            gpadl_id: 1,
            values: 5,
            limit: 4
        }
    );
    // Exactly the limit is accepted.
    t.handle_message(&header(9, 32, 1, &[rh(3 * 4096, 0), 7, 7, 7]))
        .unwrap();
    assert!(t.remove(9).is_some());
    assert!(t.is_empty());
    t.handle_message(&header(1, 24, 1, &[rh(8192, 0)])).unwrap();
    t.handle_message(&header(2, 24, 1, &[rh(8192, 0)])).unwrap();
    assert!(t.is_empty(), "only complete GPADLs count");
    assert_eq!(t.in_progress(), 2);
    assert_eq!(
        t.handle_message(&header(3, 24, 1, &[rh(8192, 0)]))
            .unwrap_err(),
        GpadlError::TooManyInProgress { limit: 2 }
    );
    t.handle_message(&header(3, 16, 1, &[rh(4096, 0), 9]))
        .unwrap();
    assert!(!t.is_empty());
    assert_eq!(
        t.handle_message(&header(4, 16, 1, &[rh(4096, 0), 9]))
            .unwrap_err(),
        GpadlError::TooManyGpadls { limit: 3 }
    );
    t.remove(1);
    t.handle_message(&header(4, 16, 1, &[rh(4096, 0), 9]))
        .unwrap();
    t.clear();
    assert!(t.is_empty());
    assert_eq!(t.in_progress(), 0);
    assert_eq!(t.values_held(), 0);
}

/// The values held for all GPADLs together are bounded, whatever the guest repeats: in
/// progress and complete GPADLs count, a failed assembly and a teardown give theirs back.
#[test]
fn total_values_are_bounded() {
    let mut t = GpadlTable::new(GpadlLimits {
        max_total_values: 10,
        ..GpadlLimits::default()
    });
    // Complete: 4 values (a range header and three copies of one PFN).
    t.handle_message(&header(1, 32, 1, &[rh(3 * 4096, 0), 7, 7, 7]))
        .unwrap();
    assert_eq!(t.values_held(), 4);
    // In progress: 5 declared, 2 sent.
    t.handle_message(&header(2, 40, 1, &[rh(4 * 4096, 0), 7]))
        .unwrap();
    assert_eq!(t.values_held(), 9);
    assert_eq!(
        t.handle_message(&header(3, 16, 1, &[rh(4096, 0), 7]))
            .unwrap_err(),
        GpadlError::TooManyValues {
            gpadl_id: 3,
            values: 2,
            held: 9,
            limit: 10
        }
    );
    // A body that breaks the assembly discards it, and its values.
    t.handle_message(&body(2, &[7])).unwrap();
    assert_eq!(t.values_held(), 9);
    assert!(t.handle_message(&body(2, &[])).is_err());
    assert_eq!((t.values_held(), t.in_progress()), (4, 0));
    t.handle_message(&header(3, 16, 1, &[rh(4096, 0), 7]))
        .unwrap();
    assert_eq!(t.values_held(), 6);
    // Up to the limit exactly.
    t.handle_message(&header(5, 32, 1, &[rh(3 * 4096, 0), 7, 7, 7]))
        .unwrap();
    assert_eq!(t.values_held(), 10);
    assert!(t.remove(1).is_some());
    assert_eq!(t.values_held(), 6);
}

proptest! {
    #![proptest_config(crate::test_config())]

    /// Any list of valid ranges survives the split and the reassembly unchanged.
    #[test]
    fn split_reassemble_round_trip(
        shapes in proptest::collection::vec(
            (0u32..4096, 1u32..if cfg!(miri) { 12_000 } else { 40_000 }),
            1..if cfg!(miri) { 3 } else { 5 },
        ),
        seed in any::<u64>(),
    ) {
        let pfn_lists: Vec<Vec<u64>> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(off, count))| {
                let n = crate::defs::range_page_count(off, count);
                (0..n).map(|j| seed.wrapping_add((i as u64) << 40).wrapping_add(j)).collect()
            })
            .collect();
        let ranges: Vec<GpaRange<'_>> = shapes
            .iter()
            .zip(&pfn_lists)
            .map(|(&(off, count), p)| GpaRange::new(off, count, p))
            .collect();
        let msgs = messages(9, 0x1234, &ranges);
        let mut t = GpadlTable::default();
        let done = feed(&mut t, &msgs).unwrap();
        prop_assert_eq!(done, GpadlProgress::Complete { gpadl_id: 0x1234, child_relid: 9 });
        let got: Vec<GpaRange<'_>> = t.get(0x1234).unwrap().ranges().iter().collect();
        prop_assert_eq!(got, ranges);
    }

    /// Arbitrary message sequences never panic, and whatever completes is valid.
    #[test]
    fn arbitrary_messages_never_panic(
        msgs in proptest::collection::vec(
            (any::<bool>(), 0u32..3, any::<u16>(), 0u16..3,
             proptest::collection::vec(any::<u64>(), 0..32)),
            1..12,
        )
    ) {
        let mut t = GpadlTable::new(GpadlLimits {
            max_in_progress: 2,
            max_gpadls: 4,
            max_values: 64,
            max_total_values: 100,
        });
        for (is_header, id, buflen, count, values) in msgs {
            let m = if is_header { header(id, buflen, count, &values) } else { body(id, &values) };
            if let Ok(GpadlProgress::Complete { gpadl_id, .. }) = t.handle_message(&m) {
                let g = t.get(gpadl_id).unwrap();
                let total: usize = g.ranges().iter().map(|r| r.encoded_len()).sum();
                prop_assert_eq!(total, g.range_buffer().len());
            }
            prop_assert!(t.in_progress() <= 2 && t.len() + t.in_progress() <= 4);
            prop_assert!(t.values_held() <= 100);
        }
    }
}
