//! The frame, packet and BPDU parsers and the offload routines on arbitrary bytes: never a
//! panic; a parsed Ethernet header emits back to the same bytes; every produced segment fits
//! the length the segmenter announced.
//!
//! Run: `cd vswitch-core && cargo +nightly fuzz run parsers fuzz/corpus/parsers fuzz/seeds/parsers`

#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_core::features::inspect;
use vswitch_core::frame::{EthernetFrame, EthernetRepr};
use vswitch_core::offload::{fill_l4_checksum, TcpSegmenter};
use vswitch_core::packet::{ArpPacket, Ipv4Packet, Ipv6Packet, TcpSegment, UdpDatagram};
use vswitch_core::stp::Bpdu;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = EthernetFrame::new_checked(data) {
        if let Ok((repr, off)) = EthernetRepr::parse(&f) {
            assert_eq!(repr.buffer_len(), off);
            let mut out = [0u8; 22];
            assert_eq!(repr.emit(&mut out), Ok(off));
            assert_eq!(&out[..off], &data[..off]);
        }
    }
    let _ = inspect(data, true, true);
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (p.payload(), p.checksum_ok(), p.src(), p.dst());
    }
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        if let Ok(ul) = p.upper_layer() {
            assert!(ul.offset <= p.packet().len());
        }
    }
    if let Ok(a) = ArpPacket::new_checked(data) {
        let _ = (a.operation(), a.sender_mac(), a.target_ip());
    }
    if let Ok(u) = UdpDatagram::new_checked(data) {
        let _ = u.payload();
    }
    if let Ok(t) = TcpSegment::new_checked(data) {
        let _ = t.payload();
    }
    if let Ok(b) = Bpdu::parse_frame(data) {
        let mut out = [0u8; 64];
        let n = b
            .emit_frame(vswitch_core::frame::MacAddr([2, 0, 0, 0, 0, 1]), &mut out)
            .unwrap();
        assert_eq!(Bpdu::parse_frame(&out[..n]), Ok(b));
    }
    let mut copy = data.to_vec();
    let _ = fill_l4_checksum(&mut copy);
    if let Some((&mss, rest)) = data.split_first() {
        if let Ok(s) = TcpSegmenter::new(rest, u16::from(mss) + 1) {
            let mut buf = vec![0u8; 70_000];
            let mut total = 0;
            for i in 0..s.count().min(64) {
                let n = s.write(i, &mut buf).unwrap();
                assert_eq!(n, s.segment_len(i));
                total += n;
            }
            if s.count() <= 64 {
                assert_eq!(total, s.total_len());
            }
        }
    }
});
