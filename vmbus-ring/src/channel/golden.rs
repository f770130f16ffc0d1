//! Byte-exact golden messages, built by hand from the reference's offset tables.

use alloc::vec;
use alloc::vec::Vec;

use super::messages::*;
use super::{interface, Guid};
use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::FromZeros;

/// A zeroed message of `len` bytes with type `t`, then `fields` written at their offsets.
fn build(t: u32, len: usize, fields: &[(usize, &[u8])]) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[..4].copy_from_slice(&t.to_le_bytes());
    for (at, bytes) in fields {
        v[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    v
}

fn check(msg: ChannelMessage, want: Vec<u8>) {
    assert_eq!(msg.emit(), want, "{:?}", msg.message_type());
    assert_eq!(ChannelMessage::parse(&want).unwrap(), msg);
}

#[test]
fn offer_channel() {
    let mut offer = Offer::new_zeroed();
    offer.header = Header::new(MessageType::OFFER_CHANNEL);
    offer.if_type = interface::HEARTBEAT;
    offer.if_instance = Guid::from_fields(1, 2, 3, [4; 8]);
    offer.chn_flags =
        U16::new(offer_flags::ENUMERATE_DEVICE_INTERFACE | offer_flags::NAMED_PIPE_MODE);
    offer.user_def[..4].copy_from_slice(&PIPE_TYPE_MESSAGE.to_le_bytes());
    offer.child_relid = U32::new(5);
    offer.is_dedicated_interrupt = U16::new(1);
    offer.connection_id = U32::new(0x2005);
    let want = build(
        1,
        196,
        &[
            (
                8,
                &[
                    0x39, 0x4f, 0x16, 0x57, 0x15, 0x91, 0x78, 0x4e, 0xab, 0x55, 0x38, 0x2f, 0x3b,
                    0xd5, 0x42, 0x2d,
                ],
            ),
            (24, &[1, 0, 0, 0, 2, 0, 3, 0, 4, 4, 4, 4, 4, 4, 4, 4]),
            (56, &[0x11, 0x00]),
            (60, &[4, 0, 0, 0]),
            (184, &[5, 0, 0, 0]),
            (190, &[1, 0]),
            (192, &[0x05, 0x20, 0, 0]),
        ],
    );
    check(ChannelMessage::OfferChannel(offer), want);
}

#[test]
fn small_messages() {
    check(
        ChannelMessage::RescindChannelOffer { child_relid: 7 },
        build(2, 12, &[(8, &[7, 0, 0, 0])]),
    );
    check(ChannelMessage::RequestOffers, build(3, 8, &[]));
    check(ChannelMessage::AllOffersDelivered, build(4, 8, &[]));
    check(
        ChannelMessage::OpenChannelResult {
            child_relid: 7,
            open_id: 9,
            status: 0,
        },
        build(6, 20, &[(8, &[7, 0, 0, 0]), (12, &[9, 0, 0, 0])]),
    );
    check(
        ChannelMessage::CloseChannel { child_relid: 3 },
        build(7, 12, &[(8, &[3, 0, 0, 0])]),
    );
    check(
        ChannelMessage::GpadlCreated {
            child_relid: 3,
            gpadl: 0xE1E10,
            status: 0,
        },
        build(10, 20, &[(8, &[3, 0, 0, 0]), (12, &[0x10, 0x1e, 0x0e, 0])]),
    );
    check(
        ChannelMessage::GpadlTeardown {
            child_relid: 3,
            gpadl: 0xE1E10,
        },
        build(11, 16, &[(8, &[3, 0, 0, 0]), (12, &[0x10, 0x1e, 0x0e, 0])]),
    );
    check(
        ChannelMessage::GpadlTorndown { gpadl: 0xE1E10 },
        build(12, 12, &[(8, &[0x10, 0x1e, 0x0e, 0])]),
    );
    check(
        ChannelMessage::RelidReleased { child_relid: 3 },
        build(13, 12, &[(8, &[3, 0, 0, 0])]),
    );
    check(
        ChannelMessage::VersionResponse {
            version_supported: true,
            connection_state: 0,
            msg_conn_id: 1,
        },
        build(15, 16, &[(8, &[1]), (12, &[1, 0, 0, 0])]),
    );
    check(ChannelMessage::Unload, build(16, 8, &[]));
    check(ChannelMessage::UnloadResponse, build(17, 8, &[]));
    check(
        ChannelMessage::ModifyChannel {
            child_relid: 3,
            target_vp: 1,
        },
        build(22, 16, &[(8, &[3, 0, 0, 0]), (12, &[1, 0, 0, 0])]),
    );
    check(
        ChannelMessage::ModifyChannelResponse {
            child_relid: 3,
            status: 0,
        },
        build(24, 16, &[(8, &[3, 0, 0, 0])]),
    );
    check(
        ChannelMessage::CloseReservedResponse { channel_id: 4 },
        build(20, 12, &[(8, &[4, 0, 0, 0])]),
    );
}

#[test]
fn open_channel_and_initiate_contact() {
    let mut open = OpenChannel::new_zeroed();
    open.header = Header::new(MessageType::OPEN_CHANNEL);
    open.child_relid = U32::new(5);
    open.open_id = U32::new(5);
    open.ring_gpadl = U32::new(0xE1E10);
    open.target_vp = U32::new(0);
    open.downstream_ringbuffer_pageoffset = U32::new(2);
    let want = build(
        5,
        148,
        &[
            (8, &[5, 0, 0, 0]),
            (12, &[5, 0, 0, 0]),
            (16, &[0x10, 0x1e, 0x0e, 0]),
            (24, &[2, 0, 0, 0]),
        ],
    );
    check(ChannelMessage::OpenChannel(open), want);

    let mut ic = InitiateContact::new_zeroed();
    ic.header = Header::new(MessageType::INITIATE_CONTACT);
    ic.version_requested = U32::new(VmbusVersion::WIN10_V5_3.0);
    ic.interrupt_page_or_sint = U64::new(2); // msg_sint = 2, msg_vtl = 0
    ic.monitor_page1 = U64::new(0x1000);
    ic.monitor_page2 = U64::new(0x2000);
    let want = build(
        14,
        40,
        &[
            (8, &[3, 0, 5, 0]),
            (16, &[2]),
            (24, &[0, 0x10]),
            (32, &[0, 0x20]),
        ],
    );
    check(ChannelMessage::InitiateContact(ic), want);
}

#[test]
fn gpadl_header_and_body() {
    // One range of 2 pages: range header {byte_count 8192, byte_offset 0} then two PFNs.
    let header = GpadlHeader {
        child_relid: 5,
        gpadl: 0xE1E10,
        range_buflen: 8 + 2 * 8,
        range_count: 1,
        values: vec![8192, 0x100, 0x101],
    };
    let mut want = build(
        8,
        20,
        &[
            (8, &[5, 0, 0, 0]),
            (12, &[0x10, 0x1e, 0x0e, 0]),
            (16, &[24, 0]),
            (18, &[1, 0]),
        ],
    );
    for v in [8192u64, 0x100, 0x101] {
        want.extend_from_slice(&v.to_le_bytes());
    }
    check(ChannelMessage::GpadlHeader(header), want);
    let body = GpadlBody {
        msgnumber: 0,
        gpadl: 0xE1E10,
        values: vec![0x102],
    };
    let mut want = build(9, 16, &[(12, &[0x10, 0x1e, 0x0e, 0])]);
    want.extend_from_slice(&0x102u64.to_le_bytes());
    check(ChannelMessage::GpadlBody(body), want);
}

#[test]
fn tl_connect() {
    let mut req = TlConnectRequest::new_zeroed();
    req.header = Header::new(MessageType::TL_CONNECT_REQUEST);
    req.guest_endpoint = Guid::from_fields(1, 0, 0, [0; 8]);
    req.host_service = Guid::from_fields(2, 0, 0, [0; 8]);
    let silo = Guid::from_fields(3, 0, 0, [0; 8]);
    let want = build(21, 56, &[(8, &[1]), (24, &[2]), (40, &[3])]);
    check(ChannelMessage::TlConnectRequest(req, Some(silo)), want);
    let want = build(21, 40, &[(8, &[1]), (24, &[2])]);
    check(ChannelMessage::TlConnectRequest(req, None), want);
}

#[test]
fn malformed_messages_are_typed_errors() {
    assert!(matches!(
        ChannelMessage::parse(&[1, 0, 0, 0]),
        Err(MessageError::TooShort { .. })
    ));
    // An offer one byte short.
    let offer = build(1, 195, &[]);
    assert!(matches!(
        ChannelMessage::parse(&offer),
        Err(MessageError::TooShort { needed: 196, .. })
    ));
    assert!(matches!(
        ChannelMessage::parse(&build(27, 8, &[])),
        Err(MessageError::Unsupported(MessageType::PAUSE))
    ));
    assert!(matches!(
        ChannelMessage::parse(&build(99, 8, &[])),
        Err(MessageError::UnknownType(99))
    ));
    // A part of a value after a GPADL header's fixed part is padding, not an error.
    assert!(matches!(
        ChannelMessage::parse(&build(8, 21, &[])),
        Ok(ChannelMessage::GpadlHeader(GpadlHeader { ref values, .. })) if values.is_empty()
    ));
    assert!(matches!(
        ChannelMessage::parse(&build(8, 248, &[])),
        Err(MessageError::TooLong(248))
    ));
}

#[test]
fn reserved_channel_and_tl_connect_result() {
    let mut open = OpenReservedChannel::new_zeroed();
    open.header = Header::new(MessageType::OPEN_RESERVED_CHANNEL);
    open.channel_id = U32::new(1);
    open.target_vp = U32::new(2);
    open.target_sint = U32::new(3);
    open.ring_gpadl = U32::new(4);
    open.downstream_page_offset = U32::new(5);
    let want = build(
        18,
        28,
        &[(8, &[1]), (12, &[2]), (16, &[3]), (20, &[4]), (24, &[5])],
    );
    check(ChannelMessage::OpenReservedChannel(open), want);

    let mut close = CloseReservedChannel::new_zeroed();
    close.header = Header::new(MessageType::CLOSE_RESERVED_CHANNEL);
    close.channel_id = U32::new(1);
    close.target_vp = U32::new(2);
    close.target_sint = U32::new(3);
    check(
        ChannelMessage::CloseReservedChannel(close),
        build(19, 20, &[(8, &[1]), (12, &[2]), (16, &[3])]),
    );

    let mut result = TlConnectResult::new_zeroed();
    result.header = Header::new(MessageType::TL_CONNECT_RESULT);
    result.guest_endpoint = Guid::from_fields(1, 0, 0, [0; 8]);
    result.host_service = Guid::from_fields(2, 0, 0, [0; 8]);
    result.status = U32::new(0xC000_0001);
    check(
        ChannelMessage::TlConnectResult(result),
        build(23, 44, &[(8, &[1]), (24, &[2]), (40, &[1, 0, 0, 0xC0])]),
    );
}

/// `emit` writes the header from the variant, whatever the struct's own `header` holds: a
/// struct made with `new_zeroed` and never given a header still goes out as its type.
#[test]
fn emit_writes_the_header_of_the_variant() {
    for (t, len) in [
        (1, 196),
        (5, 148),
        (14, 40),
        (18, 28),
        (19, 20),
        (21, 40),
        (21, 56),
        (23, 44),
    ] {
        let want = build(t, len, &[(8, &[7])]);
        let mut msg = ChannelMessage::parse(&want).unwrap();
        let stale = Header {
            msgtype: U32::new(0x55),
            padding: U32::new(0x66),
        };
        match &mut msg {
            ChannelMessage::OfferChannel(m) => m.header = stale,
            ChannelMessage::OpenChannel(m) => m.header = stale,
            ChannelMessage::InitiateContact(m) => m.header = stale,
            ChannelMessage::OpenReservedChannel(m) => m.header = stale,
            ChannelMessage::CloseReservedChannel(m) => m.header = stale,
            ChannelMessage::TlConnectRequest(m, _) => m.header = stale,
            ChannelMessage::TlConnectResult(m) => m.header = stale,
            other => panic!("type {t} parsed as {other:?}"),
        }
        assert_eq!(msg.emit(), want, "type {t}, {len} bytes");
    }
}

/// GPADL_HEADER and GPADL_BODY need their fixed parts and nothing more: a message of exactly
/// that size (no range values) parses, one byte less is too short.
#[test]
fn gpadl_messages_at_their_fixed_size() {
    for (t, fixed) in [(8u32, 20usize), (9, 16)] {
        let values = match ChannelMessage::parse(&build(t, fixed, &[(12, &[9])])) {
            Ok(ChannelMessage::GpadlHeader(h)) => (h.gpadl, h.values),
            Ok(ChannelMessage::GpadlBody(b)) => (b.gpadl, b.values),
            other => panic!("type {t}: {other:?}"),
        };
        assert_eq!(values, (9, Vec::new()), "type {t}");
        assert_eq!(
            ChannelMessage::parse(&build(t, fixed - 1, &[])),
            Err(MessageError::TooShort {
                msgtype: MessageType(t),
                len: fixed - 1,
                needed: fixed,
            }),
            "type {t}"
        );
    }
}
