//! The channel-management messages (VMBus control protocol), carried in SynIC message payloads
//! of at most 240 bytes, each starting with an 8-byte `{msgtype u32, padding u32}` header.
//!
//! [`ChannelMessage::parse`] checks each message's minimum size (Linux drops short messages,
//! so [`ChannelMessage::emit`] always writes full-size structures) and returns a typed value;
//! types 25–29 (protocol 6.0) are recognized and refused.

use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::Guid;
pub use crate::defs::MessageType;
use crate::macros::open_enum;

/// Largest SynIC message payload.
pub const MAX_PAYLOAD: usize = 240;

open_enum! {
    /// VMBus protocol versions (`major << 16 | minor`).
    pub struct VmbusVersion(u32) {
        /// Windows Server 2008.
        WS2008 = 0x0000_000D,
        /// Windows 7.
        WIN7 = 0x0001_0001,
        /// Windows 8: dedicated interrupts, target VP.
        WIN8 = 0x0002_0004,
        /// Windows 8.1.
        WIN8_1 = 0x0003_0000,
        /// Windows 10.
        WIN10 = 0x0004_0000,
        /// Windows 10 v4.1: MODIFY_CHANNEL.
        WIN10_V4_1 = 0x0004_0001,
        /// 5.0: INITIATE_CONTACT on connection 4, message SINT/VTL.
        WIN10_V5 = 0x0005_0000,
        /// 5.1.
        WIN10_V5_1 = 0x0005_0001,
        /// 5.2.
        WIN10_V5_2 = 0x0005_0002,
        /// 5.3: MODIFY_CHANNEL_RESPONSE.
        WIN10_V5_3 = 0x0005_0003,
        /// 6.0 ("Copper").
        COPPER = 0x0006_0000,
    }
}

/// Offer channel flags.
pub mod offer_flags {
    /// Enumerate the device interface.
    pub const ENUMERATE_DEVICE_INTERFACE: u16 = 0x1;
    /// The server supports transfer pages.
    pub const SERVER_SUPPORTS_TRANSFER_PAGES: u16 = 0x2;
    /// The server supports GPADLs.
    pub const SERVER_SUPPORTS_GPADLS: u16 = 0x4;
    /// Named pipe mode (`user_def[0..4]` is the pipe type).
    pub const NAMED_PIPE_MODE: u16 = 0x10;
    /// Loopback.
    pub const LOOPBACK: u16 = 0x100;
    /// Parent.
    pub const PARENT: u16 = 0x200;
    /// Monitored notification requested.
    pub const REQUEST_MONITORED_NOTIFICATION: u16 = 0x400;
    /// hvsock provider.
    pub const TLNPI_PROVIDER: u16 = 0x2000;
}

/// Pipe type of a message-mode pipe (offer `user_def[0..4]`).
pub const PIPE_TYPE_MESSAGE: u32 = 4;

/// The 8-byte message header.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct Header {
    /// [`MessageType`].
    pub msgtype: U32,
    /// Zero.
    pub padding: U32,
}

/// OFFERCHANNEL (196 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct Offer {
    /// Header.
    pub header: Header,
    /// Interface type.
    pub if_type: Guid,
    /// Instance.
    pub if_instance: Guid,
    /// Reserved.
    pub reserved: [u8; 16],
    /// [`offer_flags`].
    pub chn_flags: U16,
    /// MMIO space wanted (MiB).
    pub mmio_megabytes: U16,
    /// Service-defined bytes (pipe mode: pipe type u32 first).
    pub user_def: [u8; 120],
    /// 0 for a primary channel.
    pub sub_channel_index: U16,
    /// Optional MMIO.
    pub mmio_megabytes_optional: U16,
    /// Relid (1..2047).
    pub child_relid: U32,
    /// Monitor id.
    pub monitor_id: u8,
    /// Bit 0: monitored notification allocated (a KVM host offers 0).
    pub monitor_allocated: u8,
    /// Bit 0: the channel has a dedicated interrupt (its own connection id).
    pub is_dedicated_interrupt: U16,
    /// Connection id the guest signals the channel with.
    pub connection_id: U32,
}

/// A message with just a relid (RESCIND_CHANNELOFFER, CLOSECHANNEL, RELID_RELEASED).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct RelidMessage {
    /// Header.
    pub header: Header,
    /// Relid.
    pub child_relid: U32,
}

/// OPENCHANNEL (148 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct OpenChannel {
    /// Header.
    pub header: Header,
    /// Relid.
    pub child_relid: U32,
    /// Guest-chosen id echoed in the result (Linux: the relid).
    pub open_id: U32,
    /// GPADL holding both rings.
    pub ring_gpadl: U32,
    /// VP to interrupt (≥ WIN8).
    pub target_vp: U32,
    /// Page offset of the second (host→guest) ring within the GPADL.
    pub downstream_ringbuffer_pageoffset: U32,
    /// Service-defined bytes.
    pub user_data: [u8; 120],
}

/// OPENCHANNEL_RESULT (20 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct OpenResult {
    /// Header.
    pub header: Header,
    /// Relid.
    pub child_relid: U32,
    /// The open's id.
    pub open_id: U32,
    /// 0 = success.
    pub status: U32,
}

/// GPADL_CREATED (20 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct GpadlCreated {
    /// Header.
    pub header: Header,
    /// Relid.
    pub child_relid: U32,
    /// GPADL id.
    pub gpadl: U32,
    /// 0 = success.
    pub creation_status: U32,
}

/// GPADL_TEARDOWN (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct GpadlTeardown {
    /// Header.
    pub header: Header,
    /// Relid.
    pub child_relid: U32,
    /// GPADL id.
    pub gpadl: U32,
}

/// GPADL_TORNDOWN (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct GpadlTorndown {
    /// Header.
    pub header: Header,
    /// GPADL id.
    pub gpadl: U32,
}

/// INITIATE_CONTACT (40 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct InitiateContact {
    /// Header.
    pub header: Header,
    /// [`VmbusVersion`] requested.
    pub version_requested: U32,
    /// VP that receives host messages.
    pub target_vcpu: U32,
    /// < 5.0: interrupt page GPA. ≥ 5.0: byte 0 message SINT, byte 1 message VTL.
    pub interrupt_page_or_sint: U64,
    /// Monitor page 1 (parent → child).
    pub monitor_page1: U64,
    /// Monitor page 2 (child → parent).
    pub monitor_page2: U64,
}

/// VERSION_RESPONSE (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct VersionResponse {
    /// Header.
    pub header: Header,
    /// 1 if the requested version is accepted.
    pub version_supported: u8,
    /// 0 ok, 1 low resources, 2 failure.
    pub connection_state: u8,
    /// Zero.
    pub padding: U16,
    /// ≥ 5.0: the connection id for later messages.
    pub msg_conn_id: U32,
}

/// OPEN_RESERVED_CHANNEL (28 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct OpenReservedChannel {
    /// Header.
    pub header: Header,
    /// Channel id.
    pub channel_id: U32,
    /// Target VP.
    pub target_vp: U32,
    /// Target SINT.
    pub target_sint: U32,
    /// Ring GPADL.
    pub ring_gpadl: U32,
    /// Downstream ring page offset.
    pub downstream_page_offset: U32,
}

/// CLOSE_RESERVED_CHANNEL (20 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct CloseReservedChannel {
    /// Header.
    pub header: Header,
    /// Channel id.
    pub channel_id: U32,
    /// Target VP.
    pub target_vp: U32,
    /// Target SINT.
    pub target_sint: U32,
}

/// CLOSE_RESERVED_RESPONSE (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct CloseReservedResponse {
    /// Header.
    pub header: Header,
    /// Channel id.
    pub channel_id: U32,
}

/// TL_CONNECT_REQUEST (40 bytes; 56 with the silo id from 5.2).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct TlConnectRequest {
    /// Header.
    pub header: Header,
    /// Guest endpoint.
    pub guest_endpoint: Guid,
    /// Host service.
    pub host_service: Guid,
}

/// MODIFYCHANNEL (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct ModifyChannel {
    /// Header.
    pub header: Header,
    /// Relid.
    pub child_relid: U32,
    /// New target VP.
    pub target_vp: U32,
}

/// TL_CONNECT_RESULT (44 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct TlConnectResult {
    /// Header.
    pub header: Header,
    /// Guest endpoint.
    pub guest_endpoint: Guid,
    /// Host service.
    pub host_service: Guid,
    /// Status (i32).
    pub status: U32,
}

/// MODIFYCHANNEL_RESPONSE (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
pub struct ModifyChannelResponse {
    /// Header.
    pub header: Header,
    /// Relid.
    pub child_relid: U32,
    /// Status.
    pub status: U32,
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == 8);
    assert!(core::mem::size_of::<Offer>() == 196);
    assert!(core::mem::size_of::<RelidMessage>() == 12);
    assert!(core::mem::size_of::<OpenChannel>() == 148);
    assert!(core::mem::size_of::<OpenResult>() == 20);
    assert!(core::mem::size_of::<GpadlCreated>() == 20);
    assert!(core::mem::size_of::<GpadlTeardown>() == 16);
    assert!(core::mem::size_of::<GpadlTorndown>() == 12);
    assert!(core::mem::size_of::<InitiateContact>() == 40);
    assert!(core::mem::size_of::<VersionResponse>() == 16);
    assert!(core::mem::size_of::<OpenReservedChannel>() == 28);
    assert!(core::mem::size_of::<CloseReservedChannel>() == 20);
    assert!(core::mem::size_of::<CloseReservedResponse>() == 12);
    assert!(core::mem::size_of::<TlConnectRequest>() == 40);
    assert!(core::mem::size_of::<ModifyChannel>() == 16);
    assert!(core::mem::size_of::<TlConnectResult>() == 44);
    assert!(core::mem::size_of::<ModifyChannelResponse>() == 16);
};

/// GPADL_HEADER, decoded: the fixed fields and the range-buffer values it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpadlHeader {
    /// Relid.
    pub child_relid: u32,
    /// GPADL id.
    pub gpadl: u32,
    /// Bytes of the whole range buffer across header and bodies.
    pub range_buflen: u16,
    /// Ranges in it.
    pub range_count: u16,
    /// The u64 values in this message (range headers and PFNs).
    pub values: Vec<u64>,
}

/// GPADL_BODY, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpadlBody {
    /// Sequence number (Linux: 0).
    pub msgnumber: u32,
    /// GPADL id.
    pub gpadl: u32,
    /// The u64 values in this message.
    pub values: Vec<u64>,
}

/// A decoded channel-management message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the message of the same name
pub enum ChannelMessage {
    OfferChannel(Offer),
    RescindChannelOffer {
        child_relid: u32,
    },
    RequestOffers,
    AllOffersDelivered,
    OpenChannel(OpenChannel),
    OpenChannelResult {
        child_relid: u32,
        open_id: u32,
        status: u32,
    },
    CloseChannel {
        child_relid: u32,
    },
    GpadlHeader(GpadlHeader),
    GpadlBody(GpadlBody),
    GpadlCreated {
        child_relid: u32,
        gpadl: u32,
        status: u32,
    },
    GpadlTeardown {
        child_relid: u32,
        gpadl: u32,
    },
    GpadlTorndown {
        gpadl: u32,
    },
    RelidReleased {
        child_relid: u32,
    },
    InitiateContact(InitiateContact),
    VersionResponse {
        version_supported: bool,
        connection_state: u8,
        msg_conn_id: u32,
    },
    Unload,
    UnloadResponse,
    OpenReservedChannel(OpenReservedChannel),
    CloseReservedChannel(CloseReservedChannel),
    CloseReservedResponse {
        channel_id: u32,
    },
    /// The silo id (≥ 5.2) when present.
    TlConnectRequest(TlConnectRequest, Option<Guid>),
    ModifyChannel {
        child_relid: u32,
        target_vp: u32,
    },
    TlConnectResult(TlConnectResult),
    ModifyChannelResponse {
        child_relid: u32,
        status: u32,
    },
}

/// A channel message that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Shorter than its structure (Linux: "message too short").
    #[error("{msgtype:?} message of {len} bytes is shorter than {needed}")]
    TooShort {
        /// Type.
        msgtype: MessageType,
        /// Length.
        len: usize,
        /// Needed.
        needed: usize,
    },
    /// Longer than a SynIC message payload.
    #[error("message of {0} bytes exceeds the 240-byte SynIC payload")]
    TooLong(usize),
    /// A protocol 6.0 message this implementation does not negotiate.
    #[error("{0:?} belongs to protocol 6.0, which is not supported")]
    Unsupported(MessageType),
    /// An unknown message type.
    #[error("unknown message type {0}")]
    UnknownType(u32),
}

fn read<T: FromBytes + KnownLayout + Immutable>(
    bytes: &[u8],
    msgtype: MessageType,
) -> Result<T, MessageError> {
    T::read_from_prefix(bytes)
        .map(|(v, _)| v)
        .map_err(|_| MessageError::TooShort {
            msgtype,
            len: bytes.len(),
            needed: core::mem::size_of::<T>(),
        })
}

/// The whole `u64` values of a GPADL message's value area. A trailing part of a value is
/// padding: guests that post every message at the full 240 bytes (UEFI among them) leave 220
/// bytes after a GPADL_HEADER's fixed part. How many values count is `range_buflen`'s
/// business ([`GpadlTable`](crate::gpadl::GpadlTable)), not the message length's.
fn values(rest: &[u8]) -> Vec<u64> {
    rest.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

fn header(t: MessageType) -> Header {
    Header::new(t)
}

impl Header {
    /// The header of a message of type `t`.
    pub fn new(t: MessageType) -> Self {
        Self {
            msgtype: U32::new(t.0),
            padding: U32::new(0),
        }
    }
}

impl ChannelMessage {
    /// Parses a SynIC message payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        if bytes.len() > MAX_PAYLOAD {
            return Err(MessageError::TooLong(bytes.len()));
        }
        let h: Header = read(bytes, MessageType(0))?;
        let t = MessageType(h.msgtype.get());
        let relid = |b: &[u8]| -> Result<u32, MessageError> {
            Ok(read::<RelidMessage>(b, t)?.child_relid.get())
        };
        Ok(match t {
            MessageType::OFFER_CHANNEL => Self::OfferChannel(read(bytes, t)?),
            MessageType::RESCIND_CHANNEL_OFFER => Self::RescindChannelOffer {
                child_relid: relid(bytes)?,
            },
            MessageType::REQUEST_OFFERS => Self::RequestOffers,
            MessageType::ALL_OFFERS_DELIVERED => Self::AllOffersDelivered,
            MessageType::OPEN_CHANNEL => Self::OpenChannel(read(bytes, t)?),
            MessageType::OPEN_CHANNEL_RESULT => {
                let m: OpenResult = read(bytes, t)?;
                Self::OpenChannelResult {
                    child_relid: m.child_relid.get(),
                    open_id: m.open_id.get(),
                    status: m.status.get(),
                }
            }
            MessageType::CLOSE_CHANNEL => Self::CloseChannel {
                child_relid: relid(bytes)?,
            },
            MessageType::GPADL_HEADER => {
                const FIXED: usize = 20;
                if bytes.len() < FIXED {
                    return Err(MessageError::TooShort {
                        msgtype: t,
                        len: bytes.len(),
                        needed: FIXED,
                    });
                }
                let b = bytes;
                Self::GpadlHeader(GpadlHeader {
                    child_relid: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
                    gpadl: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
                    range_buflen: u16::from_le_bytes([b[16], b[17]]),
                    range_count: u16::from_le_bytes([b[18], b[19]]),
                    values: values(&b[FIXED..]),
                })
            }
            MessageType::GPADL_BODY => {
                const FIXED: usize = 16;
                if bytes.len() < FIXED {
                    return Err(MessageError::TooShort {
                        msgtype: t,
                        len: bytes.len(),
                        needed: FIXED,
                    });
                }
                let b = bytes;
                Self::GpadlBody(GpadlBody {
                    msgnumber: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
                    gpadl: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
                    values: values(&b[FIXED..]),
                })
            }
            MessageType::GPADL_CREATED => {
                let m: GpadlCreated = read(bytes, t)?;
                Self::GpadlCreated {
                    child_relid: m.child_relid.get(),
                    gpadl: m.gpadl.get(),
                    status: m.creation_status.get(),
                }
            }
            MessageType::GPADL_TEARDOWN => {
                let m: GpadlTeardown = read(bytes, t)?;
                Self::GpadlTeardown {
                    child_relid: m.child_relid.get(),
                    gpadl: m.gpadl.get(),
                }
            }
            MessageType::GPADL_TORNDOWN => Self::GpadlTorndown {
                gpadl: read::<GpadlTorndown>(bytes, t)?.gpadl.get(),
            },
            MessageType::RELID_RELEASED => Self::RelidReleased {
                child_relid: relid(bytes)?,
            },
            MessageType::INITIATE_CONTACT => Self::InitiateContact(read(bytes, t)?),
            MessageType::VERSION_RESPONSE => {
                let m: VersionResponse = read(bytes, t)?;
                Self::VersionResponse {
                    version_supported: m.version_supported != 0,
                    connection_state: m.connection_state,
                    msg_conn_id: m.msg_conn_id.get(),
                }
            }
            MessageType::UNLOAD => Self::Unload,
            MessageType::UNLOAD_RESPONSE => Self::UnloadResponse,
            MessageType::OPEN_RESERVED_CHANNEL => Self::OpenReservedChannel(read(bytes, t)?),
            MessageType::CLOSE_RESERVED_CHANNEL => Self::CloseReservedChannel(read(bytes, t)?),
            MessageType::CLOSE_RESERVED_RESPONSE => Self::CloseReservedResponse {
                channel_id: read::<CloseReservedResponse>(bytes, t)?.channel_id.get(),
            },
            MessageType::TL_CONNECT_REQUEST => {
                let m: TlConnectRequest = read(bytes, t)?;
                let silo = bytes
                    .get(40..56)
                    .and_then(|b| Guid::read_from_bytes(b).ok());
                Self::TlConnectRequest(m, silo)
            }
            MessageType::MODIFY_CHANNEL => {
                let m: ModifyChannel = read(bytes, t)?;
                Self::ModifyChannel {
                    child_relid: m.child_relid.get(),
                    target_vp: m.target_vp.get(),
                }
            }
            MessageType::TL_CONNECT_RESULT => Self::TlConnectResult(read(bytes, t)?),
            MessageType::MODIFY_CHANNEL_RESPONSE => {
                let m: ModifyChannelResponse = read(bytes, t)?;
                Self::ModifyChannelResponse {
                    child_relid: m.child_relid.get(),
                    status: m.status.get(),
                }
            }
            t if (25..=29).contains(&t.0) => return Err(MessageError::Unsupported(t)),
            t => return Err(MessageError::UnknownType(t.0)),
        })
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::OfferChannel(_) => MessageType::OFFER_CHANNEL,
            Self::RescindChannelOffer { .. } => MessageType::RESCIND_CHANNEL_OFFER,
            Self::RequestOffers => MessageType::REQUEST_OFFERS,
            Self::AllOffersDelivered => MessageType::ALL_OFFERS_DELIVERED,
            Self::OpenChannel(_) => MessageType::OPEN_CHANNEL,
            Self::OpenChannelResult { .. } => MessageType::OPEN_CHANNEL_RESULT,
            Self::CloseChannel { .. } => MessageType::CLOSE_CHANNEL,
            Self::GpadlHeader(_) => MessageType::GPADL_HEADER,
            Self::GpadlBody(_) => MessageType::GPADL_BODY,
            Self::GpadlCreated { .. } => MessageType::GPADL_CREATED,
            Self::GpadlTeardown { .. } => MessageType::GPADL_TEARDOWN,
            Self::GpadlTorndown { .. } => MessageType::GPADL_TORNDOWN,
            Self::RelidReleased { .. } => MessageType::RELID_RELEASED,
            Self::InitiateContact(_) => MessageType::INITIATE_CONTACT,
            Self::VersionResponse { .. } => MessageType::VERSION_RESPONSE,
            Self::Unload => MessageType::UNLOAD,
            Self::UnloadResponse => MessageType::UNLOAD_RESPONSE,
            Self::OpenReservedChannel(_) => MessageType::OPEN_RESERVED_CHANNEL,
            Self::CloseReservedChannel(_) => MessageType::CLOSE_RESERVED_CHANNEL,
            Self::CloseReservedResponse { .. } => MessageType::CLOSE_RESERVED_RESPONSE,
            Self::TlConnectRequest(..) => MessageType::TL_CONNECT_REQUEST,
            Self::ModifyChannel { .. } => MessageType::MODIFY_CHANNEL,
            Self::TlConnectResult(_) => MessageType::TL_CONNECT_RESULT,
            Self::ModifyChannelResponse { .. } => MessageType::MODIFY_CHANNEL_RESPONSE,
        }
    }

    /// The payload bytes, full-size, with the header's type filled in.
    pub fn emit(&self) -> Vec<u8> {
        let t = self.message_type();
        let h = header(t);
        let relid_msg = |r: u32| {
            RelidMessage {
                header: h,
                child_relid: U32::new(r),
            }
            .as_bytes()
            .to_vec()
        };
        let mut out = match self {
            Self::OfferChannel(m) => Offer { header: h, ..*m }.as_bytes().to_vec(),
            Self::RescindChannelOffer { child_relid }
            | Self::CloseChannel { child_relid }
            | Self::RelidReleased { child_relid } => relid_msg(*child_relid),
            Self::RequestOffers
            | Self::AllOffersDelivered
            | Self::Unload
            | Self::UnloadResponse => h.as_bytes().to_vec(),
            Self::OpenChannel(m) => OpenChannel { header: h, ..*m }.as_bytes().to_vec(),
            Self::OpenChannelResult {
                child_relid,
                open_id,
                status,
            } => OpenResult {
                header: h,
                child_relid: U32::new(*child_relid),
                open_id: U32::new(*open_id),
                status: U32::new(*status),
            }
            .as_bytes()
            .to_vec(),
            Self::GpadlHeader(m) => {
                let mut v = h.as_bytes().to_vec();
                v.extend_from_slice(&m.child_relid.to_le_bytes());
                v.extend_from_slice(&m.gpadl.to_le_bytes());
                v.extend_from_slice(&m.range_buflen.to_le_bytes());
                v.extend_from_slice(&m.range_count.to_le_bytes());
                m.values
                    .iter()
                    .for_each(|x| v.extend_from_slice(&x.to_le_bytes()));
                v
            }
            Self::GpadlBody(m) => {
                let mut v = h.as_bytes().to_vec();
                v.extend_from_slice(&m.msgnumber.to_le_bytes());
                v.extend_from_slice(&m.gpadl.to_le_bytes());
                m.values
                    .iter()
                    .for_each(|x| v.extend_from_slice(&x.to_le_bytes()));
                v
            }
            Self::GpadlCreated {
                child_relid,
                gpadl,
                status,
            } => GpadlCreated {
                header: h,
                child_relid: U32::new(*child_relid),
                gpadl: U32::new(*gpadl),
                creation_status: U32::new(*status),
            }
            .as_bytes()
            .to_vec(),
            Self::GpadlTeardown { child_relid, gpadl } => GpadlTeardown {
                header: h,
                child_relid: U32::new(*child_relid),
                gpadl: U32::new(*gpadl),
            }
            .as_bytes()
            .to_vec(),
            Self::GpadlTorndown { gpadl } => GpadlTorndown {
                header: h,
                gpadl: U32::new(*gpadl),
            }
            .as_bytes()
            .to_vec(),
            Self::InitiateContact(m) => InitiateContact { header: h, ..*m }.as_bytes().to_vec(),
            Self::VersionResponse {
                version_supported,
                connection_state,
                msg_conn_id,
            } => VersionResponse {
                header: h,
                version_supported: u8::from(*version_supported),
                connection_state: *connection_state,
                padding: U16::new(0),
                msg_conn_id: U32::new(*msg_conn_id),
            }
            .as_bytes()
            .to_vec(),
            Self::OpenReservedChannel(m) => {
                OpenReservedChannel { header: h, ..*m }.as_bytes().to_vec()
            }
            Self::CloseReservedChannel(m) => {
                CloseReservedChannel { header: h, ..*m }.as_bytes().to_vec()
            }
            Self::CloseReservedResponse { channel_id } => CloseReservedResponse {
                header: h,
                channel_id: U32::new(*channel_id),
            }
            .as_bytes()
            .to_vec(),
            Self::TlConnectRequest(m, silo) => {
                let mut v = TlConnectRequest { header: h, ..*m }.as_bytes().to_vec();
                if let Some(s) = silo {
                    v.extend_from_slice(s.as_bytes());
                }
                v
            }
            Self::ModifyChannel {
                child_relid,
                target_vp,
            } => ModifyChannel {
                header: h,
                child_relid: U32::new(*child_relid),
                target_vp: U32::new(*target_vp),
            }
            .as_bytes()
            .to_vec(),
            Self::TlConnectResult(m) => TlConnectResult { header: h, ..*m }.as_bytes().to_vec(),
            Self::ModifyChannelResponse {
                child_relid,
                status,
            } => ModifyChannelResponse {
                header: h,
                child_relid: U32::new(*child_relid),
                status: U32::new(*status),
            }
            .as_bytes()
            .to_vec(),
        };
        out.truncate(MAX_PAYLOAD);
        out
    }
}
