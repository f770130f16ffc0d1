//! # `vswitch-core`: an 802.1D/802.1Q learning switch
//!
//! The engine of a Hyper-V-style virtual switch as a `no_std` library: frames in, forwarding
//! decisions and frames out, no I/O of its own. IEEE 802.1D MAC learning and forwarding with
//! aging, IEEE 802.1Q VLANs (access, trunk, native VLAN, 802.1ad S-VLAN ports, priority tags),
//! and the Hyper-V port features: MAC spoofing protection, DHCP guard, router guard, private
//! VLANs, port mirroring, per-port and per-VLAN statistics, the external/internal/private
//! network types, software checksum and large-send offload, and an optional spanning tree.
//!
//! Semantics follow IEEE 802.1D and 802.1Q, with the Linux bridge as the behavioural
//! reference where the standard leaves a choice (reserved addresses, `static` versus
//! `sticky`, ageing time 0).
//!
//! ## Overview
//!
//! ```text
//!   RxFrame { port, &[u8], offload }*  ──►  Bridge::process(frames, now, &mut TxBatch)
//!                                              │   pass 1: parse, hash, prefetch (×32)
//!                                              │   pass 2: classify, guards, learn,
//!                                              │           lookup, flood, egress edit
//!                                              ▼
//!   TxBatch { TxAction { port, frame index, Edit | arena segment }*, arena, drops }  (16 B each)
//!
//!   Bridge::tick(now)  ── spanning-tree timers, BPDUs out      Bridge::age(now, budget)
//!   add_port / remove_port / set_port_config / add_static / set_fid / configure_pvlan
//! ```
//!
//! | module | what | needs |
//! |---|---|---|
//! | [`frame`] | MAC addresses, EtherTypes, TCI, [`frame::EthernetFrame`] view and [`frame::EthernetRepr`] (C-tag, S-tag, QinQ) | `core` |
//! | [`packet`] | IPv4, IPv6 (extension-header walk), ARP, UDP, TCP views; ICMP and DHCP constants | `core` |
//! | [`vlan`] | [`vlan::VlanSet`], [`vlan::VlanConfig`] (access, trunk, private-VLAN roles), classification, [`vlan::Edit`] | `core` |
//! | [`port`] | [`port::PortConfig`], Hyper-V network and port kinds, security, mirroring, offload capabilities | `core` |
//! | [`features`] | DHCP and router guard inspection, drop reasons, statistics | `core` |
//! | [`offload`] | Internet checksum, TCP/UDP checksum insertion, [`offload::TcpSegmenter`] | `core` |
//! | [`stp`] | BPDU encoding/decoding (STP, TCN, RST), [`stp::SpanningTree`] (STP) and [`stp::rstp::Rstp`] (RSTP) | `core` (`alloc` for the trees) |
//! | [`fdb`] | [`fdb::Fdb`]: keyed-hash open-addressing table, IVL/SVL keys, kinds, aging, limits | `alloc` |
//! | [`bridge`], [`batch`] | [`Bridge`] and its batch data path | `alloc` |
//!
//! ## Semantics in brief
//!
//! - **Intake.** Frames shorter than 14 bytes, with a group or all-zero source, or longer than
//!   the port's MTU allows (14 + MTU + 4 per tag) are dropped. Short frames are accepted (VM
//!   ports send runts).
//! - **Classification.** Only the port's TPID (0x8100 or 0x88A8) is a tag; anything else is
//!   payload. VID 4095 is dropped; VID 0 (priority tag) goes to the PVID keeping its PCP.
//!   Acceptable frame types and ingress filtering are per port.
//! - **Learning** happens after every ingress check (so spoofed or filtered frames teach
//!   nothing), per FID; a port in the learning state learns and then drops.
//! - **Forwarding.** Known unicast goes to its port if that port may transmit the VLAN, never
//!   back to the ingress port unless it is in hairpin mode; broadcast, multicast and unknown
//!   unicast flood to the VLAN's egress members except the ingress port. Reserved
//!   01-80-C2-00-00-0x: -00 is consumed by the spanning tree when it runs and flooded
//!   otherwise (as Linux does), -01 never passes, the others pass only if the ingress port's
//!   `group_fwd_mask` has their bit.
//! - **Egress.** Tagged or untagged per the egress port's untagged set, with the egress port's
//!   TPID, PCP and DEI kept; a popped frame is re-padded to 60 bytes.
//!
//! - **Limits.** The table has a hard capacity, a global limit on learned entries and optional
//!   per-port limits; at a limit the address is not learned (its frames still pass, replies
//!   flood), and a move onto a port at its limit removes the stale entry. See [`fdb`].
//! - **Hyper-V port features.** A VM port with an assigned MAC drops other sources unless
//!   spoofing is allowed (the Hyper-V default is to disallow it); DHCP guard drops DHCPv4
//!   BOOTREPLYs and anything else to the client port 68 (so a first fragment without the
//!   BOOTP header is caught too) and DHCPv6 server messages; router guard drops ICMPv6 router advertisements
//!   and redirects (walking extension headers; an undeterminable chain is dropped, RFC 7113) and
//!   ICMPv4 redirects and router advertisements. Private VLANs are VLAN membership plus a
//!   shared FID ([`Bridge::configure_pvlan`]). A mirror destination port gets one unchanged copy
//!   of every frame received on or sent to a mirror source port (unless it already gets the
//!   frame), held to the monitor's MTU and offloads like any other copy. The guards look
//!   through any number of tags. Network types limit which port kinds can be added
//!   ([`port::SwitchType`]).
//! - **Offloads.** A frame marked with a pending checksum or an LSO MSS is passed on as is to
//!   a port that advertises the capability, and finished in software (checksum filled, TCP
//!   segmented) for a port that does not; software segments use the requested MSS or less,
//!   so that none exceeds the egress port's MTU. Only a TCP frame marked for LSO may exceed
//!   the ingress port's MTU. Changing a port's VLANs forgets the addresses it learned.
//! - **Short frames.** Frames are passed on at the length they came in (a VM's runt stays a
//!   runt); only a frame whose tag is removed is re-padded to 60 bytes. Padding a short
//!   frame for the wire is left to the NIC layer that sends it, as physical NICs do.
//! - **Spanning tree** (optional, [`stp`]): 802.1D-1998 STP or 802.1D-2004 RSTP per bridge
//!   ([`stp::StpConfig::protocol`]); BPDUs consumed on participating ports and dropped on the
//!   others. With STP a topology change shortens aging to the forward delay; with RSTP it
//!   flushes the learned entries of the affected ports at once (and shortens aging while an
//!   802.1D neighbour takes part). [`Bridge::set_port_link`] reports links going down and up.
//!
//! ## Performance
//!
//! Forwarding-table keys are packed into a `u64`, hashed with a keyed folded multiply, and
//! probed a cache line (four slots) at a time; frames are processed in chunks of 32 with the
//! table slots and the next chunk's headers prefetched. Each frame is first offered to an
//! express lane for the common case (known unicast or a flood between forwarding ports, with
//! nothing to drop, mirror or offload), which reads only dense per-port records and per-VLAN
//! port masks; everything else takes the whole pipeline, and a unit test holds the two to the
//! same results. The masks cover every port: 96 KiB per bridge for ports 0 to 63, and 96 KiB
//! more for each further 64 port indices in use. `benches/benches/vswitch.rs` measures the full
//! pipeline on 64-byte tagged frames against a naive `HashMap<(vlan, mac), port>` bridge; the
//! figures are in the crate README.
//!
//! ## Example
//!
//! ```
//! use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, RxFrame, TxBatch};
//! use vswitch_core::frame::MacAddr;
//!
//! let mut br = Bridge::new(BridgeConfig::new(HashKey::from_seed(0x5eed)));
//! let a = MacAddr([2, 0, 0, 0, 0, 0xa]);
//! let b = MacAddr([2, 0, 0, 0, 0, 0xb]);
//! let pa = br.add_port(PortConfig::vm(a)).unwrap();
//! let pb = br.add_port(PortConfig::vm(b)).unwrap();
//!
//! // A frame from A to B floods (B is unknown) and teaches the bridge where A is.
//! let mut frame = [0u8; 60];
//! frame[..6].copy_from_slice(&b.0);
//! frame[6..12].copy_from_slice(&a.0);
//! frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
//! let mut out = TxBatch::new();
//! br.process(&[RxFrame::new(pa, &frame)], 0, &mut out);
//! assert_eq!(out.actions().len(), 1);
//! assert_eq!(out.actions()[0].port, pb);
//! assert_eq!(br.lookup(1, a, 0), Some(pa));
//! ```
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | the forwarding table, the bridge and the spanning tree |
//! | `std` | yes | [`HashKey::random`]; implies `alloc` |
//!
//! With `default-features = false` the crate is `#![no_std]` and needs only `core`: the
//! framing, VLAN, offload and BPDU layers are available; the bridge needs `alloc`.

#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs (and `RUSTDOCFLAGS="--cfg docsrs" cargo +nightly doc --all-features`) marks items
// that need a feature; builds without every feature cannot link to the items they leave out.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "alloc")]
extern crate alloc;

mod macros;

/// The `zerocopy` version whose types (`U16`, `U32`, `U64`, `FromBytes`, `IntoBytes`) appear in
/// this crate's wire layouts: use it to read and write them without a matching dependency.
pub use zerocopy;

pub mod features;
pub mod frame;
pub mod offload;
pub mod packet;
pub mod port;
pub mod stp;
pub mod vlan;

#[cfg(feature = "alloc")]
pub mod batch;
#[cfg(feature = "alloc")]
pub mod bridge;
pub mod fdb;

#[cfg(feature = "alloc")]
pub use batch::{Offload, RxFrame, TxAction, TxBatch, TxData};
#[cfg(feature = "alloc")]
pub use bridge::{Bridge, BridgeConfig, ConfigError};
pub use fdb::HashKey;
pub use port::{PortConfig, PortId};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
