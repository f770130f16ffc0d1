//! IC framing: the pipe header and the IC message header in front of every IC packet.
//!
//! ```text
//!  0          8                                   28
//!  [pipe hdr ][icmsg_hdr (20 bytes, packed)       ][body: icmsg_hdr.msgsize bytes]
//!   flags u32  fw ver | type | msg ver | size |
//!   size u32   status | txid | flags | reserved
//! ```

use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{open_enum, IcError, Version};

/// The pipe header of an IC packet (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct PipeHeader {
    /// Pipe flags/type: 1 = data (what Hyper-V and OpenVMM send).
    pub flags: U32,
    /// Bytes after this header.
    pub msgsize: U32,
}
const _: () = assert!(core::mem::size_of::<PipeHeader>() == 8);

/// The IC message header (20 bytes, packed).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct IcMsgHdr {
    /// IC framework version (major, minor).
    pub framework_version: [U16; 2],
    /// [`IcMessageType`].
    pub msgtype: U16,
    /// Message (service) version (major, minor).
    pub message_version: [U16; 2],
    /// Body bytes after this header.
    pub msgsize: U16,
    /// [`IcStatus`]; set by the responder only on failure.
    pub status: U32,
    /// Transaction id, echoed by the responder.
    pub transaction_id: u8,
    /// [`IcFlags`].
    pub flags: u8,
    /// Zero.
    pub reserved: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<IcMsgHdr>() == 20);

/// Bytes before an IC body: pipe header + IC message header.
pub const ICMSG_HDR: usize = 28;

/// Pipe flags value for data (`flags` of [`PipeHeader`]).
pub const PIPE_DATA: u32 = 1;

open_enum! {
    /// The IC message type.
    pub struct IcMessageType(u16) {
        /// Version negotiation.
        NEGOTIATE = 0,
        /// Heartbeat.
        HEARTBEAT = 1,
        /// Key/value pair exchange.
        KVP_EXCHANGE = 2,
        /// Shutdown.
        SHUTDOWN = 3,
        /// Time synchronization.
        TIMESYNC = 4,
        /// Volume shadow copy.
        VSS = 5,
        /// RDV.
        RDV = 6,
        /// File copy / guest interface.
        FCOPY = 7,
        /// VM session.
        VM_SESSION = 8,
    }
}

open_enum! {
    /// IC status values (HRESULTs).
    pub struct IcStatus(u32) {
        /// Success.
        S_OK = 0,
        /// Unspecified failure.
        E_FAIL = 0x8000_4005,
        /// No more items (KVP enumeration end).
        S_CONT = 0x8007_0103,
        /// Not supported.
        NOT_SUPPORTED = 0x8007_0032,
        /// Not found.
        NOT_FOUND = 0x8004_1002,
        /// Invalid argument.
        INVALID_ARG = 0x8007_0057,
        /// Machine locked.
        MACHINE_LOCKED = 0x8007_04F7,
        /// Device not connected.
        DEVICE_NOT_CONNECTED = 0x8007_048F,
        /// Already exists.
        ALREADY_EXISTS = 0x8007_0050,
        /// Disk full.
        DISK_FULL = 0x8007_0070,
    }
}

/// IC header flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IcFlags(pub u8);

impl IcFlags {
    /// Part of a transaction.
    pub const TRANSACTION: u8 = 1;
    /// A request.
    pub const REQUEST: u8 = 2;
    /// A response.
    pub const RESPONSE: u8 = 4;
    /// What a host request carries.
    pub const HOST_REQUEST: Self = Self(Self::TRANSACTION | Self::REQUEST);
    /// What a guest response carries.
    pub const GUEST_RESPONSE: Self = Self(Self::TRANSACTION | Self::RESPONSE);

    /// Whether the response bit is set.
    pub fn is_response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// Whether the request bit is set.
    pub fn is_request(self) -> bool {
        self.0 & Self::REQUEST != 0
    }
}

/// The header fields of an IC message, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcHeader {
    /// Framework version.
    pub framework: Version,
    /// Message type.
    pub msgtype: IcMessageType,
    /// Message version.
    pub message: Version,
    /// Status.
    pub status: IcStatus,
    /// Transaction id.
    pub transaction_id: u8,
    /// Flags.
    pub flags: IcFlags,
}

/// A parsed IC packet: the header and a borrowed body.
#[derive(Clone, Copy, Debug)]
pub struct IcPacket<'a> {
    /// The decoded header.
    pub header: IcHeader,
    /// The body (`msgsize` bytes; checked to lie inside the packet).
    pub body: &'a [u8],
}

impl<'a> IcPacket<'a> {
    /// Parses an IC packet (the payload of an in-band VMBus packet).
    ///
    /// The pipe header's size must cover the IC header, and the IC header's body size must fit
    /// in what follows; trailing bytes (Linux reuses its receive buffer) are ignored.
    pub fn parse(payload: &'a [u8]) -> Result<Self, IcError> {
        let (pipe, rest) =
            PipeHeader::read_from_prefix(payload).map_err(|_| IcError::Truncated {
                needed: ICMSG_HDR,
                len: payload.len(),
            })?;
        let (hdr, rest) = IcMsgHdr::read_from_prefix(rest).map_err(|_| IcError::Truncated {
            needed: ICMSG_HDR,
            len: payload.len(),
        })?;
        let body_len = usize::from(hdr.msgsize.get());
        let pipe_len = pipe.msgsize.get() as usize;
        if pipe_len < core::mem::size_of::<IcMsgHdr>() + body_len && pipe_len != 0 {
            return Err(IcError::SizeMismatch {
                pipe: pipe.msgsize.get(),
                body: hdr.msgsize.get(),
            });
        }
        let body = rest.get(..body_len).ok_or(IcError::Truncated {
            needed: ICMSG_HDR + body_len,
            len: payload.len(),
        })?;
        Ok(Self {
            header: IcHeader {
                framework: Version::new(
                    hdr.framework_version[0].get(),
                    hdr.framework_version[1].get(),
                ),
                msgtype: IcMessageType(hdr.msgtype.get()),
                message: Version::new(hdr.message_version[0].get(), hdr.message_version[1].get()),
                status: IcStatus(hdr.status.get()),
                transaction_id: hdr.transaction_id,
                flags: IcFlags(hdr.flags),
            },
            body,
        })
    }
}

/// Builds an IC packet: pipe header, IC header (with `msgsize` = `body.len()`), body.
///
/// # Errors
/// [`IcError::BodyTooLarge`] if the body does not fit the 16-bit size field.
pub fn emit(header: &IcHeader, body: &[u8]) -> Result<Vec<u8>, IcError> {
    let body_len = u16::try_from(body.len()).map_err(|_| IcError::BodyTooLarge(body.len()))?;
    let hdr = IcMsgHdr {
        framework_version: [
            U16::new(header.framework.major),
            U16::new(header.framework.minor),
        ],
        msgtype: U16::new(header.msgtype.0),
        message_version: [
            U16::new(header.message.major),
            U16::new(header.message.minor),
        ],
        msgsize: U16::new(body_len),
        status: U32::new(header.status.0),
        transaction_id: header.transaction_id,
        flags: header.flags.0,
        reserved: [0; 2],
    };
    let pipe = PipeHeader {
        flags: U32::new(PIPE_DATA),
        msgsize: U32::new((core::mem::size_of::<IcMsgHdr>() + body.len()) as u32),
    };
    let mut out = Vec::with_capacity(ICMSG_HDR + body.len());
    out.extend_from_slice(pipe.as_bytes());
    out.extend_from_slice(hdr.as_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_heartbeat_request_framing() {
        let header = IcHeader {
            framework: Version::new(3, 0),
            msgtype: IcMessageType::HEARTBEAT,
            message: Version::new(3, 0),
            status: IcStatus::S_OK,
            transaction_id: 7,
            flags: IcFlags::HOST_REQUEST,
        };
        let body = [1u8, 0, 0, 0, 0, 0, 0, 0];
        let bytes = emit(&header, &body).unwrap();
        #[rustfmt::skip]
        let want: [u8; 36] = [
            1, 0, 0, 0,   28, 0, 0, 0,          // pipe: data, 20 + 8 bytes follow
            3, 0, 0, 0,                         // framework 3.0
            1, 0,                               // HEARTBEAT
            3, 0, 0, 0,                         // message 3.0
            8, 0,                               // body size
            0, 0, 0, 0,                         // status
            7, 3, 0, 0,                         // txid 7, TRANSACTION|REQUEST
            1, 0, 0, 0, 0, 0, 0, 0,             // seq_num 1
        ];
        assert_eq!(bytes, want);
        let p = IcPacket::parse(&bytes).unwrap();
        assert_eq!(p.header, header);
        assert_eq!(p.body, body);
    }

    #[test]
    fn rejects_truncation_and_size_lies() {
        assert!(matches!(
            IcPacket::parse(&[0u8; 27]),
            Err(IcError::Truncated { .. })
        ));
        let header = IcHeader {
            framework: Version::new(1, 0),
            msgtype: IcMessageType::NEGOTIATE,
            message: Version::new(1, 0),
            status: IcStatus::S_OK,
            transaction_id: 0,
            flags: IcFlags::HOST_REQUEST,
        };
        let mut bytes = emit(&header, &[0u8; 16]).unwrap();
        assert_eq!(bytes.len(), ICMSG_HDR + 16);
        bytes[18] = 200; // body size beyond what the pipe header says follows (36)
        assert_eq!(
            IcPacket::parse(&bytes).err(),
            Some(IcError::SizeMismatch {
                pipe: 36,
                body: 200
            })
        );
        // A pipe size of 0 says nothing: the body must still fit in the packet.
        bytes[4] = 0;
        assert_eq!(
            IcPacket::parse(&bytes).err(),
            Some(IcError::Truncated {
                needed: ICMSG_HDR + 200,
                len: ICMSG_HDR + 16
            })
        );
        bytes[18] = 16;
        assert_eq!(IcPacket::parse(&bytes).unwrap().body, [0; 16]);
        // One byte short of the header and body in the pipe size; then a large one, which is
        // fine as long as the body fits.
        bytes[4] = 35;
        assert_eq!(
            IcPacket::parse(&bytes).err(),
            Some(IcError::SizeMismatch { pipe: 35, body: 16 })
        );
        bytes[4] = 0xff;
        assert!(IcPacket::parse(&bytes).is_ok());
    }
}
