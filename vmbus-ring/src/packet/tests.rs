//! Golden packets built by hand from the reference tables, malformed-packet rejection, and
//! parse/emit property tests.

use super::*;
use crate::gpadl::GpaRange;
use proptest::prelude::*;
use std::vec::Vec;

/// In-band, completion requested, transaction id 0x1122334455667788, payload "hello".
const GOLDEN_IN_BAND: [u8; 24] = [
    0x06, 0x00, // type: in-band
    0x02, 0x00, // offset8: 2 (16 bytes)
    0x03, 0x00, // len8: 3 (16 + 5 rounded up to 24)
    0x01, 0x00, // flags: completion requested
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // transaction id
    b'h', b'e', b'l', b'l', b'o', 0, 0, 0, // payload, zero padding
];

/// Transfer pages: set 0xcafe, two ranges, 8-byte payload, completion requested, id 7.
const GOLDEN_TRANSFER_PAGES: [u8; 48] = [
    0x07, 0x00, // type: transfer pages
    0x05, 0x00, // offset8: 16 + 8 + 2*8 = 40
    0x06, 0x00, // len8: 48
    0x01, 0x00, // flags
    0x07, 0, 0, 0, 0, 0, 0, 0, // transaction id
    0xfe, 0xca, // transfer_page_set_id
    0x00, // sender_owns_set
    0x00, // reserved
    0x02, 0x00, 0x00, 0x00, // range_count
    0xea, 0x05, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, // {byte_count 0x5ea, byte_offset 0x1000}
    0x40, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, // {byte_count 0x40, byte_offset 0x2000}
    1, 2, 3, 4, 5, 6, 7, 8, // payload
];

/// GPA direct: range 0 = 0x2000 bytes at offset 0x200 over PFNs 0x1234, 0x1235, 0x9999
/// (ceil((0x200 + 0x2000) / 4096) = 3 pages); range 1 = one whole page 0x42; 12-byte payload.
const GOLDEN_GPA_DIRECT: [u8; 88] = [
    0x09, 0x00, // type: GPA direct
    0x09, 0x00, // offset8: 16 + 8 + (8 + 24) + (8 + 8) = 72
    0x0b, 0x00, // len8: 72 + 12 = 84, rounded to 88
    0x01, 0x00, // flags
    0xef, 0xcd, 0xab, 0, 0, 0, 0, 0, // transaction id
    0x00, 0x00, 0x00, 0x00, // reserved
    0x02, 0x00, 0x00, 0x00, // range_count
    0x00, 0x20, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, // {byte_count 0x2000, byte_offset 0x200}
    0x34, 0x12, 0, 0, 0, 0, 0, 0, // pfn
    0x35, 0x12, 0, 0, 0, 0, 0, 0, // pfn
    0x99, 0x99, 0, 0, 0, 0, 0, 0, // pfn
    0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // {byte_count 0x1000, byte_offset 0}
    0x42, 0, 0, 0, 0, 0, 0, 0, // pfn
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, // payload
    0, 0, 0, 0, // padding
];

/// Completion of transaction 0x1122334455667788 with a 4-byte status payload.
const GOLDEN_COMPLETION: [u8; 24] = [
    0x0b, 0x00, // type: completion
    0x02, 0x00, // offset8
    0x03, 0x00, // len8
    0x00, 0x00, // flags: none
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // transaction id of the request
    0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, // payload, padding
];

fn emit(repr: &PacketRepr<'_>) -> Vec<u8> {
    let mut buf = std::vec![0xccu8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf).unwrap(), buf.len());
    buf
}

#[test]
fn golden_in_band() {
    let repr = PacketRepr::in_band(0x1122_3344_5566_7788, true, b"hello");
    assert_eq!(emit(&repr), GOLDEN_IN_BAND);
    let parsed = PacketRepr::parse_bytes(&GOLDEN_IN_BAND).unwrap();
    assert_eq!(parsed.kind, PacketKind::InBand);
    assert_eq!(parsed.transaction_id, 0x1122_3344_5566_7788);
    assert!(parsed.completion_requested);
    assert_eq!(parsed.payload, b"hello\0\0\0");
    let view = Packet::new_checked(&GOLDEN_IN_BAND[..]).unwrap();
    assert_eq!(view.packet_type(), PacketType::DATA_IN_BAND);
    assert_eq!((view.offset8(), view.len8()), (2, 3));
    assert!(view.extended_header().is_empty());
}

#[test]
fn golden_transfer_pages() {
    let ranges = [
        TransferPageRange::new(0x1000, 0x5ea),
        TransferPageRange::new(0x2000, 0x40),
    ];
    let repr = PacketRepr::transfer_pages(7, true, 0xcafe, &ranges, &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(emit(&repr), GOLDEN_TRANSFER_PAGES);
    let parsed = PacketRepr::parse_bytes(&GOLDEN_TRANSFER_PAGES).unwrap();
    assert_eq!(parsed, repr);
}

#[test]
fn view_splits_header_extended_header_and_payload() {
    let view = Packet::new_checked(&GOLDEN_TRANSFER_PAGES[..]).unwrap();
    assert_eq!(view.packet_type(), PacketType::DATA_USING_TRANSFER_PAGES);
    assert_eq!((view.offset8(), view.len8()), (5, 6));
    assert_eq!(view.transaction_id(), 7);
    assert_eq!(view.extended_header(), &GOLDEN_TRANSFER_PAGES[16..40]);
    assert_eq!(view.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(view.as_bytes(), &GOLDEN_TRANSFER_PAGES[..]);
    assert_eq!(view.into_inner(), &GOLDEN_TRANSFER_PAGES[..]);
}

#[test]
fn golden_gpa_direct() {
    let p0 = [0x1234u64, 0x1235, 0x9999];
    let p1 = [0x42u64];
    let mut rbuf = [0u8; 64];
    let ranges = GpaRanges::encode(
        &[
            GpaRange::new(0x200, 0x2000, &p0),
            GpaRange::new(0, 0x1000, &p1),
        ],
        &mut rbuf,
    )
    .unwrap();
    let payload: Vec<u8> = (0xa0..=0xab).collect();
    let repr = PacketRepr::gpa_direct(0xab_cdef, true, ranges, &payload);
    assert_eq!(repr.header_len(), 72);
    assert_eq!(emit(&repr), GOLDEN_GPA_DIRECT);
    let parsed = PacketRepr::parse_bytes(&GOLDEN_GPA_DIRECT).unwrap();
    let PacketKind::GpaDirect { ranges } = parsed.kind else {
        panic!("wrong kind {:?}", parsed.kind);
    };
    let got: Vec<_> = ranges.iter().collect();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].byte_offset, got[0].byte_count), (0x200, 0x2000));
    assert_eq!(got[0].pfns.iter().collect::<Vec<_>>(), p0);
    assert_eq!(got[1].pfns.iter().collect::<Vec<_>>(), p1);
    assert_eq!(&parsed.payload[..12], &payload[..]);
}

#[test]
fn golden_completion() {
    let repr = PacketRepr::completion(0x1122_3344_5566_7788, &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(emit(&repr), GOLDEN_COMPLETION);
    let parsed = PacketRepr::parse_bytes(&GOLDEN_COMPLETION).unwrap();
    assert_eq!(parsed.kind, PacketKind::Completion);
    assert!(!parsed.completion_requested);
}

#[test]
fn framing_errors() {
    assert_eq!(
        PacketRepr::parse_bytes(&GOLDEN_IN_BAND[..8]).unwrap_err(),
        PacketError::Truncated { len: 8 }
    );
    assert_eq!(
        PacketRepr::parse_bytes(&GOLDEN_IN_BAND[..16]).unwrap_err(),
        PacketError::LengthMismatch { len8: 3, len: 16 }
    );
    let mut p = GOLDEN_IN_BAND;
    p[2] = 1;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::DataOffset {
            offset8: 1,
            len8: 3
        }
    );
    p[2] = 4;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::DataOffset {
            offset8: 4,
            len8: 3
        }
    );
    // offset8 == len8: an empty payload is fine.
    p[2] = 3;
    assert!(PacketRepr::parse_bytes(&p).unwrap().payload.is_empty());
    let mut p = GOLDEN_IN_BAND;
    p[6] = 3;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::UnknownFlags { flags: 3 }
    );
    for ty in [0u8, 1, 2, 3, 4, 5, 8, 0xa, 0xc, 0xd, 0xe, 0xff] {
        let mut p = GOLDEN_IN_BAND;
        p[0] = ty;
        assert_eq!(
            PacketRepr::parse_bytes(&p).unwrap_err(),
            PacketError::UnsupportedType {
                packet_type: PacketType(u16::from(ty))
            }
        );
    }
}

#[test]
fn transfer_page_errors() {
    // Header does not fit before the payload.
    let mut p = GOLDEN_TRANSFER_PAGES;
    p[2] = 2;
    assert!(matches!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::HeaderTooShort { offset8: 2, .. }
    ));
    // Zero ranges.
    let mut p = GOLDEN_TRANSFER_PAGES;
    p[20] = 0;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::NoRanges)
    );
    // Three ranges in room for two: the third would overflow into the payload.
    let mut p = GOLDEN_TRANSFER_PAGES;
    p[20] = 3;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::Truncated { index: 2 })
    );
    let mut p = GOLDEN_TRANSFER_PAGES;
    p[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::Truncated { .. })
    ));
}

#[test]
fn gpa_direct_errors() {
    let mut p = GOLDEN_GPA_DIRECT;
    p[2] = 3; // room for the GPA-direct header only
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::Truncated { index: 0 })
    );
    p[2] = 2; // not even the header
    assert!(matches!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::HeaderTooShort { .. }
    ));
    let mut p = GOLDEN_GPA_DIRECT;
    p[20] = 0;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::NoRanges)
    );
    // One range declared, two present: the second range's 16 bytes are unaccounted for.
    let mut p = GOLDEN_GPA_DIRECT;
    p[20] = 1;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::PfnCountMismatch {
            used: 32,
            declared: 48
        }
    );
    // Range 0 grows to need a fourth PFN: it eats range 1's header as a PFN, and range 1 then
    // runs into the payload.
    let mut p = GOLDEN_GPA_DIRECT;
    p[25] = 0x30; // byte_count 0x3000 at offset 0x200 -> 4 pages
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::Truncated { index: 1 })
    );
    // Range 0 shrinks to need 2 PFNs: its third PFN is read as range 1's header (0x9999 bytes at
    // offset 0), which needs 10 PFNs that are not there.
    let mut p = GOLDEN_GPA_DIRECT;
    p[25] = 0x10;
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::Truncated { index: 1 })
    );
    let mut p = GOLDEN_GPA_DIRECT;
    p[24..28].copy_from_slice(&[0; 4]);
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::EmptyRange { index: 0 })
    );
    let mut p = GOLDEN_GPA_DIRECT;
    p[28..32].copy_from_slice(&0x1000u32.to_le_bytes());
    assert_eq!(
        PacketRepr::parse_bytes(&p).unwrap_err(),
        PacketError::Ranges(RangeError::OffsetTooLarge {
            index: 0,
            byte_offset: 0x1000
        })
    );
}

#[test]
fn emit_errors() {
    let big = std::vec![0u8; MAX_PACKET_LEN];
    let repr = PacketRepr::in_band(0, false, &big);
    assert_eq!(
        repr.emit(&mut [0u8; 64]).unwrap_err(),
        PacketError::TooLong {
            len: MAX_PACKET_LEN + 16
        }
    );
    // The largest packet the 16-bit `len8` can describe is still written.
    let most = std::vec![0x5au8; MAX_PACKET_LEN - 16];
    let repr = PacketRepr::in_band(0, false, &most);
    let mut buf = std::vec![0u8; MAX_PACKET_LEN];
    assert_eq!(repr.emit(&mut buf), Ok(MAX_PACKET_LEN));
    assert_eq!(Packet::new_checked(&buf[..]).unwrap().len8(), u16::MAX);
    let repr = PacketRepr::in_band(0, false, b"abc");
    assert_eq!(
        repr.emit(&mut [0u8; 23]).unwrap_err(),
        PacketError::BufferTooSmall {
            needed: 24,
            len: 23
        }
    );
}

fn arb_repr_bytes() -> impl Strategy<Value = Vec<u8>> {
    let payload = proptest::collection::vec(any::<u8>(), 0..200);
    let pfns = proptest::collection::vec(any::<u64>(), 1..6);
    (
        0u8..4,
        any::<u64>(),
        any::<bool>(),
        payload,
        pfns,
        0u32..4096,
        any::<u16>(),
    )
        .prop_map(|(kind, tid, cr, payload, pfns, offset, set)| {
            let count = (pfns.len() as u32 * 4096 - offset).max(1);
            let range = GpaRange::new(offset, count, &pfns);
            let mut rbuf = [0u8; 64];
            let tranges = [
                TransferPageRange::new(offset, count),
                TransferPageRange::new(1, 2),
            ];
            let repr = match kind {
                0 => PacketRepr::in_band(tid, cr, &payload),
                1 => PacketRepr::completion(tid, &payload),
                2 => PacketRepr::transfer_pages(tid, cr, set, &tranges, &payload),
                _ => {
                    let ranges = GpaRanges::encode(&[range], &mut rbuf).unwrap();
                    PacketRepr::gpa_direct(tid, cr, ranges, &payload)
                }
            };
            emit(&repr)
        })
}

proptest! {
    #![proptest_config(crate::test_config())]

    #[test]
    fn emit_parse_emit_is_stable(bytes in arb_repr_bytes()) {
        let parsed = PacketRepr::parse_bytes(&bytes).unwrap();
        prop_assert_eq!(parsed.buffer_len(), bytes.len());
        prop_assert_eq!(emit(&parsed), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let view = Packet::new_unchecked(&bytes[..]);
        let _ = (view.packet_type(), view.payload(), view.extended_header(), view.flags());
        if let Ok(repr) = PacketRepr::parse_bytes(&bytes) {
            // Whatever parses re-emits to a packet that parses to the same thing.
            let again = emit(&repr);
            let reparsed = PacketRepr::parse_bytes(&again).unwrap();
            prop_assert_eq!(reparsed.transaction_id, repr.transaction_id);
            prop_assert_eq!(reparsed.packet_type(), repr.packet_type());
        }
    }

    #[test]
    fn mutated_golden_packets_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((0usize..88, any::<u8>()), 1..6),
    ) {
        let mut p: Vec<u8> = match which {
            0 => GOLDEN_IN_BAND.to_vec(),
            1 => GOLDEN_TRANSFER_PAGES.to_vec(),
            2 => GOLDEN_GPA_DIRECT.to_vec(),
            _ => GOLDEN_COMPLETION.to_vec(),
        };
        for (at, v) in edits {
            let n = p.len();
            p[at % n] = v;
        }
        if let Ok(repr) = PacketRepr::parse_bytes(&p) {
            if let PacketKind::GpaDirect { ranges } = repr.kind {
                for r in ranges.iter() {
                    prop_assert!(r.validate(0).is_ok());
                }
            }
        }
    }
}
