//! The host side of a channel against a hostile guest: the host reads the guest-to-host ring
//! and writes the host-to-guest ring while the guest controls every control word and every byte
//! of both rings, and rewrites them between the host's reads (`ChaosMemory` scripts). Every
//! GPA-direct packet the host accepts is resolved against guest RAM and copied in and out.
//!
//! Checked besides "no panic": the ring code never accesses the data area outside the
//! `RingMemory` contract (no offset or length out of range, nothing unaligned); every packet it
//! returns is as long as its validated descriptor says; the GPA buffer asks the guest-memory map
//! only for PFNs the packet named and enforces its bounds exactly. Nothing here allocates in
//! proportion to a guest-controlled number.
//!
//! Input layout (fixed offsets, so mutating one part never shifts another):
//!
//! | bytes | meaning |
//! |---|---|
//! | 0..64 | control block, decoded with `arbitrary`: ring sizes and up to ~20 operations (all zero = "read until empty") |
//! | 64..84 | incoming ring's `write_index`, `read_index`, `interrupt_mask`, `pending_send_size`, `feature_bits` (LE u32) |
//! | 84..86, 86..88 | lengths of the two chaos scripts (LE u16) |
//! | then | the incoming ring's script, the outgoing ring's script, then the incoming ring's data area |
//!
//! Seeds (`fuzz/seeds/host_ring/`): rings holding valid in-band, GPA-direct and transfer-page
//! packets with quiet scripts, so the fuzzer starts from packets that parse.

#![no_main]

use std::cell::{Cell, RefCell};
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vmbus_ring::defs::TransferPageRange;
use vmbus_ring::gpadl::{GpaBuffer, GpaRange, GpaRanges, GuestMemoryMap, GuestRam};
use vmbus_ring::memory::{ControlWord, PageRef, RingMemory};
use vmbus_ring::mock::ChaosMemory;
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{RawPacket, ReadError, RingReader, RingWriter};

const CONTROL_LEN: usize = 64;
const HEADER_LEN: usize = CONTROL_LEN + 24;
const RAM_BASE: u64 = 0x100;
const RAM_PAGES: usize = 16;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Read one packet into a buffer big enough for any packet of the ring.
    Read,
    /// Read one packet into a small buffer.
    ReadSmall {
        len8: u8,
    },
    /// Read up to `n` packets in a batch, then release.
    Batch {
        n: u8,
    },
    Peek,
    /// Skip one packet in a batch, then release.
    Skip,
    Mask,
    Unmask,
    /// Write a packet to the outgoing ring.
    Write {
        kind: u8,
        len: u16,
        completion: bool,
    },
    RequestSpace {
        len: u16,
    },
    Restore,
}

#[derive(Arbitrary, Debug)]
struct Control {
    in_size: u8,
    out_size: u8,
    ops: Vec<Op>,
}

/// A data-area size from a selector: tiny rings wrap constantly, page rings are realistic.
fn ring_size(sel: u8) -> usize {
    match sel % 4 {
        0 => 4096,
        1 => 8192,
        2 => 32 + 8 * usize::from(sel / 4),
        _ => 4096 * (1 + usize::from(sel / 4) % 4),
    }
}

/// Guest RAM that records which PFNs were asked for and flags any the caller did not name.
struct CheckedRam {
    ram: &'static GuestRam<Box<[AtomicU64]>>,
    named: RefCell<Vec<u64>>,
    strays: Cell<usize>,
}

impl GuestMemoryMap for CheckedRam {
    fn page(&self, pfn: u64) -> Option<PageRef<'_>> {
        if !self.named.borrow().contains(&pfn) {
            self.strays.set(self.strays.get() + 1);
        }
        self.ram.page(pfn)
    }
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
}

fn u16_at(data: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes(data[at..at + 2].try_into().unwrap()))
}

/// Guest RAM, made once: its contents do not matter, its extent does.
static RAM: OnceLock<GuestRam<Box<[AtomicU64]>>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER_LEN {
        return;
    }
    let Ok(control) = Control::arbitrary(&mut Unstructured::new(&data[..CONTROL_LEN])) else {
        return;
    };
    let rest = &data[HEADER_LEN..];
    let in_len = u16_at(data, 84).min(rest.len());
    let (in_script, rest) = rest.split_at(in_len);
    let out_len = u16_at(data, 86).min(rest.len());
    let (out_script, ring_image) = rest.split_at(out_len);

    let incoming = ChaosMemory::new(ring_size(control.in_size), in_script.to_vec()).unwrap();
    let outgoing = ChaosMemory::new(ring_size(control.out_size), out_script.to_vec()).unwrap();
    let words = [
        ControlWord::WriteIndex,
        ControlWord::ReadIndex,
        ControlWord::InterruptMask,
        ControlWord::PendingSendSize,
        ControlWord::FeatureBits,
    ];
    for (i, word) in words.into_iter().enumerate() {
        let value = u32_at(data, CONTROL_LEN + 4 * i);
        incoming.quiet().store_control(word, value);
        // The outgoing ring starts empty and consistent; the guest's script corrupts it later.
        if word == ControlWord::FeatureBits {
            outgoing.quiet().store_control(word, value);
        }
    }
    let image = &ring_image[..ring_image.len().min(incoming.data_len() as usize)];
    incoming.quiet().write_at(0, image);

    let ram = CheckedRam {
        ram: RAM.get_or_init(|| GuestRam::new_boxed(RAM_BASE, RAM_PAGES).unwrap()),
        named: RefCell::new(Vec::new()),
        strays: Cell::new(0),
    };
    let mut reader = RingReader::new(&incoming).ok();
    let mut writer = RingWriter::new(&outgoing).ok();
    let mut buf = vec![0u8; incoming.data_len() as usize];

    let mut ops = control.ops;
    if ops.is_empty() {
        ops.push(Op::Batch { n: u8::MAX });
    }
    for op in ops {
        match op {
            Op::Read | Op::ReadSmall { .. } | Op::Peek => {
                let Some(r) = reader.as_mut() else { continue };
                let cap = match op {
                    Op::ReadSmall { len8 } => (usize::from(len8) * 8).min(buf.len()),
                    _ => buf.len(),
                };
                let result = if matches!(op, Op::Peek) {
                    r.peek(&mut buf[..cap])
                } else {
                    r.read(&mut buf[..cap]).map(|(n, _)| n)
                };
                match result {
                    Ok(n) => host_handles(&buf[..n], &ram),
                    Err(ReadError::BufferTooSmall { needed }) => assert!(needed > cap),
                    Err(_) => {}
                }
            }
            Op::Batch { .. } | Op::Skip => {
                let Some(r) = reader.as_mut() else { continue };
                let mut batch = r.batch();
                if let Op::Batch { n } = op {
                    for _ in 0..n {
                        match batch.next(&mut buf) {
                            Ok(len) => host_handles(&buf[..len], &ram),
                            Err(_) => break,
                        }
                    }
                } else {
                    let _ = batch.skip();
                }
                let _ = batch.commit();
            }
            Op::Mask => {
                if let Some(r) = reader.as_mut() {
                    r.mask_interrupts();
                }
            }
            Op::Unmask => {
                if let Some(r) = reader.as_mut() {
                    let _ = r.unmask_interrupts();
                }
            }
            Op::Write {
                kind,
                len,
                completion,
            } => {
                if let Some(w) = writer.as_mut() {
                    host_writes(w, kind, usize::from(len) % 5000, completion);
                }
            }
            Op::RequestSpace { len } => {
                if let Some(w) = writer.as_mut() {
                    let _ = w.request_space(usize::from(len));
                }
            }
            Op::Restore => {
                if let Some(r) = reader.as_ref() {
                    let _ = r.needs_signal_after_restore();
                }
                if let Some(w) = writer.as_ref() {
                    let _ = w.needs_signal_after_restore();
                }
            }
        }
    }
    assert_eq!(incoming.violations(), 0, "ring access outside the contract");
    assert_eq!(outgoing.violations(), 0, "ring access outside the contract");
    assert_eq!(
        ram.strays.get(),
        0,
        "guest page asked for that the packet did not name"
    );
});

/// What a host does with a packet: parse it, and for GPA-direct, copy in and out of the ranges.
fn host_handles(packet: &[u8], ram: &CheckedRam) {
    assert!(packet.len() >= 16 && packet.len() % 8 == 0);
    let len8 = u16::from_le_bytes([packet[4], packet[5]]);
    assert_eq!(usize::from(len8) * 8, packet.len());
    let Ok(repr) = PacketRepr::parse_bytes(packet) else {
        return;
    };
    match repr.kind {
        PacketKind::GpaDirect { ranges } => {
            *ram.named.borrow_mut() = ranges.iter().flat_map(|r| r.pfns.iter()).collect();
            let Ok(buffer) = GpaBuffer::new(ranges, ram) else {
                return;
            };
            let len = buffer.len();
            assert_eq!(len, ranges.total_len());
            let mut chunk = vec![0u8; 8192];
            for (offset, n) in [
                (0, 8192usize),
                (len / 2, 1),
                (len.saturating_sub(1), 1),
                (len, 1),
            ] {
                let n = n.min(usize::try_from(len).unwrap_or(usize::MAX));
                let inside = offset + n as u64 <= len;
                assert_eq!(buffer.read_at(offset, &mut chunk[..n]).is_ok(), inside);
                assert_eq!(buffer.write_at(offset, &chunk[..n]).is_ok(), inside);
            }
            assert!(buffer.read_at(u64::MAX, &mut chunk[..1]).is_err());
        }
        PacketKind::TransferPages { ranges, .. } => {
            assert!(!ranges.is_empty());
        }
        _ => {}
    }
}

/// The host writes a packet of some kind to the host-to-guest ring.
fn host_writes(w: &mut RingWriter<&ChaosMemory>, kind: u8, len: usize, completion: bool) {
    let payload = vec![0xa5u8; len];
    let pfns: Vec<u64> = (0..4).map(|i| RAM_BASE + i).collect();
    let mut range_bytes = [0u8; 64];
    let ranges = [TransferPageRange::new(0, len as u32)];
    let repr = match kind % 5 {
        0 => PacketRepr::in_band(u64::from(kind), completion, &payload),
        1 => PacketRepr::completion(u64::from(kind), &payload),
        2 => {
            let count = (len as u32).clamp(1, 4 * 4096);
            let range = GpaRange::new(0, count, &pfns[..count.div_ceil(4096) as usize]);
            let ranges = GpaRanges::encode(&[range], &mut range_bytes).unwrap();
            PacketRepr::gpa_direct(7, completion, ranges, &payload[..len.min(64)])
        }
        3 => PacketRepr::transfer_pages(9, completion, 0xcafe, &ranges, &payload[..len.min(64)]),
        _ => {
            let _ = w.write(&RawPacket(&payload[..len / 8 * 8]));
            return;
        }
    };
    let mut batch = w.batch();
    for _ in 0..=(kind / 5) % 3 {
        if batch.write(&repr).is_err() {
            break;
        }
    }
    let _ = batch.commit();
}
