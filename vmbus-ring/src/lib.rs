//! # `vmbus-ring`: VMBus ring buffers, packets and GPADL transfer
//!
//! VMBus is the Hyper-V inter-partition bus. Each channel moves data through a pair of ring
//! buffers — one per direction — in memory the guest shares with the host. The guest describes
//! that memory to the host with a GPADL (Guest Physical Address Descriptor List: page frame
//! numbers sent in GPADL_HEADER/GPADL_BODY channel messages). Packets in a ring are in-band
//! (small data rides in the ring), transfer-page (offsets into a pre-shared buffer) or
//! GPA-direct (guest-physical ranges the host copies to or from, DMA style). This crate
//! implements all of that for both sides, guest and host, in `no_std`.
//!
//! There is no public specification: the layouts and rules here are those of the Linux
//! `hv_vmbus` driver (`drivers/hv`: `ring_buffer.c`, `channel.c`, `hyperv.h`) and OpenVMM's
//! `vmbus_ring`, which interoperate with Hyper-V.
//!
//! ## One ring
//!
//! ```text
//!  control page (4 KiB)                    data area (N × 4 KiB; indices are offsets into it)
//!  0x00 write_index      owned by writer   ┌─────────────────────────────────────────────────┐
//!  0x04 read_index       owned by reader   │ free │ pkt │trl│ pkt │trl│ pkt │trl│   free    │
//!  0x08 interrupt_mask   owned by reader   └─────────────────────────────────────────────────┘
//!  0x0C pending_send_sz  owned by writer          ▲ read_index                ▲ write_index
//!  0x40 feature_bits     owned by writer   (a packet reaching the end continues at offset 0)
//!
//!  pkt = 16-byte descriptor + extended header + payload, padded to 8 bytes
//!  trl = 8-byte trailer: the packet's start offset << 32
//!  empty ⇔ read_index == write_index; at least 8 bytes always stay free (never completely full)
//! ```
//!
//! A channel's ring GPADL holds two such rings back to back: pages `[0, d)` carry
//! guest-to-host traffic, pages `[d, n)` host-to-guest, where `d` is OPENCHANNEL's
//! `downstream_ringbuffer_pageoffset`.
//!
//! ## Threat model
//!
//! The host side is a security boundary. The guest can rewrite any byte of the ring — indices,
//! descriptors, payloads, `pending_send_sz`, feature bits — at any moment, including between two
//! reads of the same field, and can send any GPADL message sequence. This crate therefore:
//!
//! - never holds a Rust reference to peer-writable bytes: shared memory is a slice of
//!   `AtomicU64` and every access is one atomic operation (so a concurrent write is a race in
//!   nobody's memory model, and the compiler cannot re-read a checked value);
//! - reads each field once into a local, validates the local, and uses only the local
//!   (a packet's descriptor is read once and the validated copy is what the caller gets);
//! - keeps its own index privately and never reads it back from shared memory;
//! - bounds every loop and allocation by sizes it has already checked (range counts are bounded
//!   by the bytes holding them, GPADL buffers by the 16-bit `range_buflen` and [`gpadl::GpadlLimits`]);
//! - checks every guest PFN against a [`gpadl::GuestMemoryMap`] before touching it;
//! - never panics on peer input; errors keep "empty"/"full" ([`ring::ReadError::Empty`],
//!   [`ring::WriteError::Full`]) apart from "corrupt ring" ([`ring::CorruptRing`]) and "corrupt
//!   packet" ([`packet::PacketError`]).
//!
//! A hostile peer can still make *its own* channel misbehave (garbage packets, spurious or
//! missing signals); it cannot make this side read or write outside the ring or guest RAM,
//! panic, loop forever or allocate without bound.
//!
//! ## Layers and I/O seams
//!
//! | module | what | needs |
//! |---|---|---|
//! | [`defs`] | zerocopy layouts with pinned sizes: [`defs::ControlPage`], [`defs::PacketDescriptor`], transfer-page and GPA-direct headers, GPADL messages; open enums ([`defs::PacketType`], [`defs::MessageType`]); bit-field words ([`defs::PacketFlags`], [`defs::FeatureBits`]) | `core` |
//! | [`memory`] | the seam: [`memory::RingMemory`] (atomic control words, wrap-around `read_at`/`write_at`) with [`memory::FlatRingMemory`] (tests, `no_std`), [`memory::PagedRingMemory`] (scattered 4 KiB pages: a host's view of a GPADL) and [`memory::MappedRingMemory`] (a contiguous raw mapping; the crate's only `unsafe`) | `core` (`alloc` for [`memory::host_ring_pair`]) |
//! | [`ring`] | [`ring::RingWriter`] / [`ring::RingReader`] for either side of either direction: one packet or a batch published once, peek, skip, interrupt masking with the re-check loop, `pending_send_sz`; signalling decisions are returned as values (`must_signal`), never performed | `core` |
//! | [`packet`] | [`packet::Packet`] (checked view) and [`packet::PacketRepr`] (parse / buffer_len / emit) for in-band, transfer-page, GPA-direct and completion packets | `core` |
//! | [`gpadl`] | GPA ranges; [`gpadl::GpadlMessages`] (the guest's HEADER/BODY split); [`gpadl::GpadlTable`] (the host's reassembly); [`gpadl::GpaBuffer`] (bounds-checked copies over scattered guest pages) | `core` (`alloc` for the table) |
//! | [`channel`] | the channel-management protocol: every message 1–29 as typed layouts ([`channel::ChannelMessage`]), the host [`channel::server::Server`] (versions 2.4–5.3, offers, GPADLs, open/close, deferred teardown, rescind, MODIFYCHANNEL, UNLOAD) and the guest [`channel::client::Client`], both transport-agnostic state machines | `alloc` |
//! | [`ic`] | integration services: pipe/IC framing, version negotiation, heartbeat, shutdown, time sync, KVP and VSS bodies; host services ([`ic::host::HostService`]) and guest responders ([`ic::guest::GuestService`]) as time-driven state machines | `alloc` |
//!
//! The signal itself (an `HvSignalEvent` hypercall from a guest; an event-flag bit plus a SINT
//! from a host) belongs to the caller, as do waiting and threads.
//!
//! ## Example
//!
//! A guest writes a GPA-direct request, the host reads it, copies the data out of guest memory
//! and completes it.
//!
//! ```
//! use vmbus_ring::gpadl::{GpaBuffer, GpaRange, GpaRanges, GuestRam};
//! use vmbus_ring::memory::FlatRingMemory;
//! use vmbus_ring::packet::{PacketKind, PacketRepr};
//! use vmbus_ring::ring::{RingReader, RingWriter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Guest RAM (16 pages at PFN 0x100) and one ring (a control page and 4 data pages).
//! let ram = GuestRam::new_boxed(0x100, 16)?;
//! let ring = FlatRingMemory::new_boxed(4 * 4096)?;
//! let mut guest = RingWriter::new(&ring)?;
//! let mut host = RingReader::new(&ring)?;
//!
//! // The guest puts 6000 bytes at guest-physical 0x103_080 and describes them.
//! ram.write_gpa(0x103_080, &[0x5a; 6000]);
//! let pfns = [0x103, 0x104];
//! let mut range_bytes = [0u8; 64];
//! let ranges = GpaRanges::encode(&[GpaRange::new(0x80, 6000, &pfns)], &mut range_bytes)?;
//! let request = PacketRepr::gpa_direct(42, true, ranges, b"WRITE");
//! let sent = guest.write(&request)?;
//! assert!(sent.must_signal); // empty -> non-empty: signal the host
//!
//! // The host copies the packet out, parses it, and copies the data from guest RAM.
//! let mut buf = [0u8; 256];
//! let (len, released) = host.read(&mut buf)?;
//! assert!(!released.must_signal && !released.more);
//! let packet = PacketRepr::parse_bytes(&buf[..len])?;
//! let PacketKind::GpaDirect { ranges } = packet.kind else { unreachable!() };
//! let data = GpaBuffer::new(ranges, &ram)?;
//! let mut copy = vec![0u8; data.len() as usize];
//! data.read_at(0, &mut copy)?;
//! assert!(copy.iter().all(|&b| b == 0x5a));
//! assert_eq!(&packet.payload[..5], b"WRITE");
//! # Ok(())
//! # }
//! ```
//!
//! ## Supported
//!
//! - Rings of any size from 32 bytes to 2 GiB (whole pages for paged and mapped memory), with
//!   the exact Linux/OpenVMM signalling rules: writer signals only on empty → non-empty with the
//!   reader's mask clear; reader signals a blocked writer only when free space crosses
//!   `pending_send_sz & !7` and the writer set `feat_pending_send_sz`; save/restore re-signal
//!   checks.
//! - Packet types in current use: in-band (0x6), transfer pages (0x7), GPA direct (0x9),
//!   completion (0xB), built byte-for-byte as Linux and Hyper-V build them.
//! - GPADLs with any number of ranges, split and reassembled as Linux does (26 PFNs in the
//!   header, 28 per body), tolerating guests that pad every message to 240 bytes.
//! - The VMBus control protocol, versions 2.4 (WIN8) through 5.3, with Linux 6.1's version
//!   fallback order, and the heartbeat, shutdown, time-sync and KVP services on both sides.
//!
//! ## Not supported
//!
//! - The legacy packet types (0x1–0x5, 0x8, 0xA, 0xC, 0xD): parsed as
//!   [`packet::PacketError::UnsupportedType`]; nothing in Linux or Windows sends them today.
//! - Protocol 6.0 ("Copper") messages 25–29: parsed and refused.
//! - hvsock (TL_CONNECT) and reserved channels: parsed; the server answers TL_CONNECT with a
//!   failure status and drops reserved-channel requests.
//! - Monitored notification (MNF): offers set `monitor_allocated = 0`, so guests signal every
//!   channel by hypercall.
//! - The KVP IP-info operations are carried as their raw structure; the guest responder answers
//!   them NOT_SUPPORTED.
//! - Pinning or caching guest pages: every access looks the page up in the map again.
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | [`gpadl::GpadlTable`], [`memory::host_ring_pair`], boxed memories, [`channel`], [`ic`], [`netvsc`], [`storvsc`] |
//! | `std` | yes | nothing beyond `alloc` yet (errors implement `core::error::Error` in every build); implies `alloc` |
//! | `test-utils` | no | `mock::ChaosMemory`, a scripted hostile ring memory for other crates' tests |
//!
//! With `default-features = false` the crate is `#![no_std]` and needs only `core`: rings,
//! packets, GPADL splitting and guest buffers all work over caller-provided memory.

#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc --all-features`) marks items
// that need a feature; builds without every feature cannot link to the items they leave out.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(not(target_has_atomic = "64"))]
compile_error!("vmbus-ring needs 64-bit atomics: shared memory is accessed as AtomicU64 words");

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod macros;

/// The `zerocopy` version whose types (`U16`, `U32`, `U64`, `FromBytes`, `IntoBytes`) appear in
/// this crate's wire layouts: use it to read and write them without a matching dependency.
pub use zerocopy;

#[cfg(feature = "alloc")]
pub mod channel;
pub mod defs;
pub mod gpadl;
#[cfg(feature = "alloc")]
pub mod ic;
pub mod memory;
#[cfg(all(feature = "alloc", any(test, feature = "test-utils")))]
pub mod mock;
#[cfg(feature = "alloc")]
pub mod netvsc;
pub mod packet;
pub mod ring;
#[cfg(feature = "alloc")]
pub mod storvsc;

#[cfg(feature = "alloc")]
pub use channel::Guid;
pub use memory::RingMemory;
pub use packet::{Packet, PacketKind, PacketRepr};
pub use ring::{RingReader, RingWriter};

#[cfg(test)]
pub(crate) fn test_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
