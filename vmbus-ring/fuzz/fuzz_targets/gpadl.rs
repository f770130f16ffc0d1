//! GPADL transfer against a hostile guest: arbitrary GPADL_HEADER / GPADL_BODY message streams
//! into the host's `GpadlTable` (with small limits), then everything a host does with a complete
//! GPADL — a bounds-checked buffer over guest RAM, and the two rings of a ring GPADL.
//!
//! Checked besides "no panic": the table never holds more GPADLs than its limits allow; every
//! complete GPADL's ranges fill its range buffer exactly; buffer accesses succeed exactly when
//! they are in bounds and every PFN is in guest RAM; and (second mode) any valid range list
//! survives the guest-side split and the host-side reassembly unchanged, even when every
//! message is padded to 240 bytes.
//!
//! Input layout: byte 0 picks the mode.
//! - even: bytes 1..4 are the limits (in progress, total, values); then messages, each a
//!   length byte and that many bytes. Seeds (`fuzz/seeds/gpadl/`) are real message streams as
//!   Linux sends them (ring GPADLs of 8 and 100 pages, a two-range GPADL).
//! - odd: the rest is decoded with `arbitrary` into a range list for the round trip.

#![no_main]

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vmbus_ring::defs::{range_page_count, MAX_MESSAGE_PAYLOAD};
use vmbus_ring::gpadl::{
    GpaRange, GpadlLimits, GpadlMessages, GpadlProgress, GpadlTable, GuestRam,
};
use vmbus_ring::memory::{host_ring_pair, RingMemory};
use vmbus_ring::ring::{RingReader, RingWriter};

const RAM_BASE: u64 = 0x100;
const RAM_PAGES: usize = 128;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Guest RAM is made once: its contents do not matter, its extent does.
    static RAM: OnceLock<GuestRam<Box<[AtomicU64]>>> = OnceLock::new();
    let ram = RAM.get_or_init(|| GuestRam::new_boxed(RAM_BASE, RAM_PAGES).unwrap());
    if mode % 2 == 0 {
        message_stream(rest, ram);
    } else {
        round_trip(rest);
    }
});

fn message_stream(data: &[u8], ram: &GuestRam<Box<[AtomicU64]>>) {
    if data.len() < 3 {
        return;
    }
    let limits = GpadlLimits {
        max_in_progress: 1 + usize::from(data[0] % 8),
        max_gpadls: 1 + usize::from(data[1] % 16),
        max_values: 1 + usize::from(data[2]) * 32,
        max_total_values: 1 + usize::from(data[2] ^ data[1]) * 16,
    };
    let mut table = GpadlTable::new(limits);
    let mut rest = &data[3..];
    while let Some((&len, tail)) = rest.split_first() {
        let (msg, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        let result = table.handle_message(msg);
        assert!(table.in_progress() <= limits.max_in_progress);
        assert!(table.len() + table.in_progress() <= limits.max_gpadls);
        assert!(table.values_held() <= limits.max_total_values);
        if let Ok(GpadlProgress::Complete { gpadl_id, .. }) = result {
            let gpadl = table.get(gpadl_id).expect("complete GPADL is in the table");
            use_gpadl(gpadl, ram, limits.max_values);
            if len % 4 == 3 {
                table.remove(gpadl_id);
            }
        }
    }
}

fn use_gpadl(
    gpadl: &vmbus_ring::gpadl::Gpadl,
    ram: &GuestRam<Box<[AtomicU64]>>,
    max_values: usize,
) {
    let ranges = gpadl.ranges();
    let encoded: usize = ranges.iter().map(|r| r.encoded_len()).sum();
    assert_eq!(encoded, gpadl.range_buffer().len());
    assert!(encoded / 8 <= max_values);
    for r in ranges.iter() {
        assert!(r.validate(0).is_ok());
    }
    let all_mapped = ranges
        .iter()
        .flat_map(|r| r.pfns.iter())
        .all(|pfn| ram.page_ref(pfn).is_some());
    match gpadl.buffer(ram) {
        Ok(buffer) => {
            assert!(all_mapped);
            let len = buffer.len();
            assert_eq!(len, gpadl.len());
            let mut chunk = vec![0u8; 10_000];
            for (offset, n) in [
                (0u64, 10_000usize),
                (len.saturating_sub(4097), 4097),
                (len, 1),
            ] {
                let inside = offset.checked_add(n as u64).is_some_and(|end| end <= len);
                assert_eq!(buffer.write_at(offset, &chunk[..n]).is_ok(), inside);
                assert_eq!(buffer.read_at(offset, &mut chunk[..n]).is_ok(), inside);
            }
        }
        Err(_) => assert!(!all_mapped),
    }
    if let Ok(pfns) = gpadl.ring_pfns() {
        for downstream in [2u32, (pfns.len() / 2) as u32, pfns.len() as u32] {
            if let Ok((incoming, outgoing)) = host_ring_pair(pfns, downstream, ram) {
                assert!(incoming.data_len() >= 4096 && outgoing.data_len() >= 4096);
                if let Ok(mut r) = RingReader::new(&incoming) {
                    let mut buf = vec![0u8; 256];
                    let _ = r.read(&mut buf);
                }
                if let Ok(mut w) = RingWriter::new(&outgoing) {
                    let _ = w.request_space(64);
                }
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Shape {
    offset: u16,
    count: u32,
    first_pfn: u64,
}

fn round_trip(data: &[u8]) {
    let Ok(shapes) = Vec::<Shape>::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let shapes: Vec<(u32, u32, u64)> = shapes
        .iter()
        .take(8)
        .map(|s| {
            (
                u32::from(s.offset % 4096),
                1 + s.count % (64 * 4096),
                s.first_pfn,
            )
        })
        .collect();
    if shapes.is_empty() {
        return;
    }
    let pfn_lists: Vec<Vec<u64>> = shapes
        .iter()
        .map(|&(off, count, first)| {
            (0..range_page_count(off, count))
                .map(|i| first.wrapping_add(i))
                .collect()
        })
        .collect();
    let ranges: Vec<GpaRange<'_>> = shapes
        .iter()
        .zip(&pfn_lists)
        .map(|(&(off, count, _), p)| GpaRange::new(off, count, p))
        .collect();
    let Ok(mut split) = GpadlMessages::new(4, 0xe1e10, &ranges) else {
        // Only a range buffer over 64 KiB is refused.
        let bytes: usize = ranges.iter().map(|r| r.encoded_len()).sum();
        assert!(bytes > usize::from(u16::MAX));
        return;
    };
    let expected = split.message_count();
    let pad = data.first().is_some_and(|b| b % 2 == 1);
    let mut table = GpadlTable::default();
    let mut msg = [0u8; MAX_MESSAGE_PAYLOAD];
    let mut sent = 0;
    let mut last = None;
    while let Some(len) = split.next_message(&mut msg) {
        sent += 1;
        let len = if pad {
            msg[len..].fill(0xee);
            MAX_MESSAGE_PAYLOAD
        } else {
            len
        };
        last = Some(
            table
                .handle_message(&msg[..len])
                .expect("valid GPADL message"),
        );
    }
    assert_eq!(sent, expected);
    assert_eq!(
        last,
        Some(GpadlProgress::Complete {
            gpadl_id: 0xe1e10,
            child_relid: 4
        })
    );
    let got: Vec<GpaRange<'_>> = table.get(0xe1e10).unwrap().ranges().iter().collect();
    assert_eq!(got, ranges);
}
