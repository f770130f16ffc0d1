//! The synthetic storage protocol (storvsc/storvsp): SCSI requests over a VMBus channel.
//!
//! Every message is a 64-byte [`VstorPacket`] — operation, flags, NTSTATUS and a 52-byte union —
//! in an in-band packet, or, for a SCSI command that moves data, in a GPA-direct packet whose
//! single range describes the guest buffer. The host answers every request that asked for a
//! completion with a completion packet (same transaction id) carrying a [`VstorPacket`] with
//! operation [`Operation::COMPLETE_IO`].
//!
//! ```text
//!  0        4        8        12                                                  64
//!  [operation][flags ][status ][ union: ScsiRequest | ProtocolVersion | ChannelProperties ]
//! ```
//!
//! The guest initializes the channel with BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION (newest
//! first; the host answers [`NtStatus::REVISION_MISMATCH`] to refuse), QUERY_PROPERTIES and
//! END_INITIALIZATION, then sends EXECUTE_SRB requests. Before the Windows 8 protocol (5.1)
//! the SCSI request was 16 bytes shorter ([`SCSI_REQUEST_LEN_V1`]); a host answers with as many
//! bytes as the request carried (up to the full 64), which is what current Linux guests require.

use zerocopy::byteorder::big_endian::{U16 as BeU16, U32 as BeU32, U64 as BeU64};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::channel::Guid;
use crate::macros::open_enum;

pub mod host;

/// Interface type of the synthetic SCSI controller (ba6163d9-04a1-4d29-b605-72e2ffb1dc7f).
pub const SCSI_INTERFACE: Guid = Guid::from_fields(
    0xba61_63d9,
    0x04a1,
    0x4d29,
    [0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f],
);

open_enum! {
    /// `VstorPacket::operation`.
    pub struct Operation(u32) {
        /// Host → guest: the answer to every request (init operations included).
        COMPLETE_IO = 1,
        /// Host → guest, unsolicited: a device went away; rescan.
        REMOVE_DEVICE = 2,
        /// Guest → host: run a SCSI command.
        EXECUTE_SRB = 3,
        /// Guest → host: reset a LUN.
        RESET_LUN = 4,
        /// Guest → host: reset the adapter.
        RESET_ADAPTER = 5,
        /// Guest → host: reset the bus.
        RESET_BUS = 6,
        /// Guest → host: first initialization step.
        BEGIN_INITIALIZATION = 7,
        /// Guest → host: last initialization step.
        END_INITIALIZATION = 8,
        /// Guest → host: propose a protocol version.
        QUERY_PROTOCOL_VERSION = 9,
        /// Guest → host: ask for the channel properties.
        QUERY_PROPERTIES = 10,
        /// Host → guest, unsolicited: the device set changed; rescan.
        ENUMERATE_BUS = 11,
        /// Fibre Channel HBA data (not used with the SCSI interface).
        FCHBA_DATA = 12,
        /// Guest → host: open this many sub-channels.
        CREATE_SUB_CHANNELS = 13,
    }
}

open_enum! {
    /// The NTSTATUS values of `VstorPacket::status`.
    pub struct NtStatus(u32) {
        /// Success.
        SUCCESS = 0,
        /// The buffer was too small.
        BUFFER_OVERFLOW = 0x8000_0005,
        /// The device is busy.
        DEVICE_BUSY = 0x8000_0011,
        /// Generic failure.
        UNSUCCESSFUL = 0xC000_0001,
        /// A parameter is invalid.
        INVALID_PARAMETER = 0xC000_000D,
        /// The request is not valid for this device.
        INVALID_DEVICE_REQUEST = 0xC000_0010,
        /// The protocol version is not supported.
        REVISION_MISMATCH = 0xC000_0059,
        /// The device is not connected.
        DEVICE_NOT_CONNECTED = 0xC000_009D,
        /// The I/O timed out.
        IO_TIMEOUT = 0xC000_00B5,
        /// The device does not exist.
        DEVICE_DOES_NOT_EXIST = 0xC000_00C0,
        /// The request was cancelled.
        CANCELLED = 0xC000_0120,
        /// The request arrived in the wrong state.
        INVALID_DEVICE_STATE = 0xC000_0184,
        /// The device failed the I/O.
        IO_DEVICE_ERROR = 0xC000_0185,
    }
}

open_enum! {
    /// A protocol version: major in the high byte, minor in the low byte.
    pub struct ProtocolVersion(u16) {
        /// Windows Server 2008 (2.0).
        WIN6 = 0x0200,
        /// Windows 7 (4.2).
        WIN7 = 0x0402,
        /// Windows 8 (5.1): the SCSI request grows to 52 bytes.
        WIN8 = 0x0501,
        /// Windows 8.1 (6.0).
        WIN8_1 = 0x0600,
        /// Windows 10 (6.2).
        WIN10 = 0x0602,
    }
}

impl ProtocolVersion {
    /// Whether requests carry the Windows 8 extension ([`SCSI_REQUEST_LEN_V2`]).
    pub const fn has_win8_extension(self) -> bool {
        self.0 >= Self::WIN8.0
    }
}

open_enum! {
    /// The SRB status code (low 6 bits of `ScsiRequest::srb_status`).
    pub struct SrbStatus(u8) {
        /// Still pending.
        PENDING = 0x00,
        /// Done.
        SUCCESS = 0x01,
        /// Aborted.
        ABORTED = 0x02,
        /// Failed (see the SCSI status and sense).
        ERROR = 0x04,
        /// Busy.
        BUSY = 0x05,
        /// The request is invalid.
        INVALID_REQUEST = 0x06,
        /// The path id is invalid.
        INVALID_PATH_ID = 0x07,
        /// No device there.
        NO_DEVICE = 0x08,
        /// Timed out.
        TIMEOUT = 0x09,
        /// Fewer or more bytes than the buffer held.
        DATA_OVERRUN = 0x12,
        /// The LUN does not exist (Linux removes it).
        INVALID_LUN = 0x20,
        /// The target does not exist.
        INVALID_TARGET_ID = 0x21,
    }
}

/// `srb_status` flag: sense data follows.
pub const SRB_STATUS_AUTOSENSE_VALID: u8 = 0x80;
/// `srb_status` flag: the queue is frozen.
pub const SRB_STATUS_QUEUE_FROZEN: u8 = 0x40;
/// `VstorPacket::flags`: the guest asks for a completion.
pub const REQUEST_COMPLETION_FLAG: u32 = 1;
/// `ScsiRequest::data_in`: data flows to the device (a write).
pub const DATA_OUT: u8 = 0;
/// `ScsiRequest::data_in`: data flows to the guest (a read).
pub const DATA_IN: u8 = 1;
/// `ScsiRequest::data_in`: no data.
pub const DATA_NONE: u8 = 2;
/// Bytes of sense data the request has room for (Windows 8 and later).
pub const SENSE_BUFFER_SIZE: usize = 20;
/// A SCSI request before the Windows 8 protocol.
pub const SCSI_REQUEST_LEN_V1: usize = 36;
/// A SCSI request from the Windows 8 protocol on.
pub const SCSI_REQUEST_LEN_V2: usize = 52;
/// The vstor header before the union.
pub const VSTOR_HEADER_LEN: usize = 12;
/// A whole packet (Windows 8 and later).
pub const VSTOR_PACKET_LEN: usize = VSTOR_HEADER_LEN + SCSI_REQUEST_LEN_V2;
/// `ChannelProperties::flags`: the host supports sub-channels.
pub const STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL: u32 = 1;

/// The SCSI request block (`vmscsi_request`, 52 bytes, packed).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ScsiRequest {
    /// Size of this structure (52).
    pub length: U16,
    /// [`SrbStatus`] plus [`SRB_STATUS_AUTOSENSE_VALID`] / [`SRB_STATUS_QUEUE_FROZEN`].
    pub srb_status: u8,
    /// SAM status (GOOD 0, CHECK CONDITION 2, BUSY 8).
    pub scsi_status: u8,
    /// The guest's host adapter number (ignored by hosts).
    pub port_number: u8,
    /// SCSI path (channel).
    pub path_id: u8,
    /// SCSI target.
    pub target_id: u8,
    /// LUN.
    pub lun: u8,
    /// CDB bytes used.
    pub cdb_length: u8,
    /// Sense bytes: room in the request, bytes returned in the completion.
    pub sense_info_length: u8,
    /// [`DATA_OUT`], [`DATA_IN`] or [`DATA_NONE`].
    pub data_in: u8,
    /// Reserved.
    pub reserved: u8,
    /// Request: buffer length. Completion: bytes moved.
    pub data_transfer_length: U32,
    /// The CDB in a request; sense data in a completion.
    pub cdb_or_sense: [u8; SENSE_BUFFER_SIZE],
    /// Windows 8 extension: reserved.
    pub reserve: U16,
    /// Windows 8 extension: queue tag.
    pub queue_tag: u8,
    /// Windows 8 extension: queue action.
    pub queue_action: u8,
    /// Windows 8 extension: SRB flags.
    pub srb_flags: U32,
    /// Windows 8 extension: timeout in seconds.
    pub time_out_value: U32,
    /// Windows 8 extension: queue sort key.
    pub queue_sort_key: U32,
}
const _: () = assert!(core::mem::size_of::<ScsiRequest>() == SCSI_REQUEST_LEN_V2);

impl ScsiRequest {
    /// The CDB (`cdb_length` bytes, at most 16).
    pub fn cdb(&self) -> &[u8] {
        &self.cdb_or_sense[..usize::from(self.cdb_length.min(16))]
    }
}

/// `QUERY_PROTOCOL_VERSION`'s union member (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct VersionBody {
    /// [`ProtocolVersion`].
    pub major_minor: U16,
    /// Revision (Windows only; 0).
    pub revision: U16,
}

/// `QUERY_PROPERTIES`'s answer (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ChannelProperties {
    /// Reserved.
    pub reserved: U32,
    /// Sub-channels the host can open.
    pub max_channel_count: U16,
    /// Reserved.
    pub reserved1: U16,
    /// [`STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL`].
    pub flags: U32,
    /// Largest transfer per request (a nonzero multiple of 4 KiB).
    pub max_transfer_bytes: U32,
    /// Reserved.
    pub reserved2: [U32; 2],
}
const _: () = assert!(core::mem::size_of::<ChannelProperties>() == 24);

/// The whole packet as the Windows 8+ protocol sends it (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct VstorPacket {
    /// [`Operation`].
    pub operation: U32,
    /// [`REQUEST_COMPLETION_FLAG`].
    pub flags: U32,
    /// [`NtStatus`], set by the host.
    pub status: U32,
    /// The union: a [`ScsiRequest`], [`VersionBody`], [`ChannelProperties`] or a u16
    /// sub-channel count, by operation.
    pub body: [u8; SCSI_REQUEST_LEN_V2],
}
const _: () = assert!(core::mem::size_of::<VstorPacket>() == VSTOR_PACKET_LEN);

/// Why a storage packet was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VstorError {
    /// Shorter than the 12-byte header (or, for EXECUTE_SRB, than a pre-Windows-8 request).
    #[error("storage packet of {len} bytes is too short for {what}")]
    TooShort {
        /// What was being read.
        what: &'static str,
        /// Bytes available.
        len: usize,
    },
}

impl VstorPacket {
    /// A zeroed packet with `operation` and `status`.
    pub fn new(operation: Operation, status: NtStatus) -> Self {
        let mut p = Self::new_zeroed();
        p.operation = U32::new(operation.0);
        p.status = U32::new(status.0);
        p
    }

    /// Reads a packet: any length from the 12-byte header up; missing union bytes read as zero
    /// (pre-Windows-8 guests send 48 bytes, some requests less), extra bytes are ignored.
    ///
    /// # Errors
    /// [`VstorError::TooShort`] below 12 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, VstorError> {
        if bytes.len() < VSTOR_HEADER_LEN {
            return Err(VstorError::TooShort {
                what: "the vstor header",
                len: bytes.len(),
            });
        }
        let mut p = Self::new_zeroed();
        let n = bytes.len().min(VSTOR_PACKET_LEN);
        p.as_mut_bytes()[..n].copy_from_slice(&bytes[..n]);
        Ok(p)
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        Operation(self.operation.get())
    }

    /// The status.
    pub fn status(&self) -> NtStatus {
        NtStatus(self.status.get())
    }

    /// The union as a SCSI request.
    pub fn srb(&self) -> ScsiRequest {
        ScsiRequest::read_from_bytes(&self.body).unwrap_or_else(|_| ScsiRequest::new_zeroed())
    }

    /// Stores `srb` in the union.
    pub fn set_srb(&mut self, srb: &ScsiRequest) {
        self.body.copy_from_slice(srb.as_bytes());
    }

    /// The union as a protocol version.
    pub fn version(&self) -> ProtocolVersion {
        ProtocolVersion(u16::from_le_bytes([self.body[0], self.body[1]]))
    }

    /// Stores a protocol version in the union.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.body[..4].copy_from_slice(
            VersionBody {
                major_minor: U16::new(version.0),
                revision: U16::new(0),
            }
            .as_bytes(),
        );
    }

    /// The union as channel properties.
    pub fn properties(&self) -> ChannelProperties {
        ChannelProperties::read_from_prefix(&self.body)
            .map_or_else(|_| ChannelProperties::new_zeroed(), |(p, _)| p)
    }

    /// Stores channel properties in the union.
    pub fn set_properties(&mut self, properties: &ChannelProperties) {
        self.body[..24].copy_from_slice(properties.as_bytes());
    }

    /// The union as a sub-channel count.
    pub fn sub_channel_count(&self) -> u16 {
        u16::from_le_bytes([self.body[0], self.body[1]])
    }

    /// The first `len` bytes (12..=64) of the packet: the size to send when answering a request
    /// of `len` bytes.
    pub fn bytes(&self, len: usize) -> &[u8] {
        &self.as_bytes()[..len.clamp(VSTOR_HEADER_LEN, VSTOR_PACKET_LEN)]
    }
}

/// Fixed-format SCSI sense data (18 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct SenseData {
    /// 0x70: current error, fixed format.
    pub response_code: u8,
    /// Obsolete.
    pub obsolete: u8,
    /// Sense key in the low 4 bits.
    pub sense_key: u8,
    /// Information.
    pub information: BeU32,
    /// Additional sense length (10).
    pub additional_length: u8,
    /// Command-specific information.
    pub command_specific: BeU32,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// Field-replaceable unit code.
    pub fru: u8,
    /// Sense-key-specific bytes.
    pub key_specific: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<SenseData>() == 18);

impl SenseData {
    /// Sense data for `key` with `asc`/`ascq`.
    pub fn new(key: u8, asc: u8, ascq: u8) -> Self {
        let mut s = Self::new_zeroed();
        s.response_code = 0x70;
        s.sense_key = key & 0xF;
        s.additional_length = 10;
        s.asc = asc;
        s.ascq = ascq;
        s
    }
}

/// Sense keys.
pub mod sense_key {
    /// No sense.
    pub const NO_SENSE: u8 = 0x0;
    /// Not ready.
    pub const NOT_READY: u8 = 0x2;
    /// Medium error.
    pub const MEDIUM_ERROR: u8 = 0x3;
    /// Hardware error.
    pub const HARDWARE_ERROR: u8 = 0x4;
    /// Illegal request.
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    /// Unit attention.
    pub const UNIT_ATTENTION: u8 = 0x6;
    /// Data protect.
    pub const DATA_PROTECT: u8 = 0x7;
}

/// READ CAPACITY(16) parameter data (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ReadCapacity16 {
    /// The last LBA.
    pub last_lba: BeU64,
    /// Logical block length in bytes.
    pub block_length: BeU32,
    /// Protection fields.
    pub protection: u8,
    /// Bits 3:0: log2(physical blocks per logical block).
    pub exponents: u8,
    /// Bit 15 LBPME, bit 14 LBPRZ, bits 13:0 lowest aligned LBA.
    pub provisioning: BeU16,
    /// Reserved.
    pub reserved: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<ReadCapacity16>() == 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_wire() {
        let mut srb = ScsiRequest::new_zeroed();
        srb.length = U16::new(0x34);
        srb.path_id = 1;
        srb.target_id = 2;
        srb.lun = 3;
        srb.cdb_length = 10;
        srb.sense_info_length = 0x14;
        srb.data_in = DATA_IN;
        srb.data_transfer_length = U32::new(4096);
        srb.cdb_or_sense[0] = 0x28;
        srb.srb_flags = U32::new(0x48);
        srb.time_out_value = U32::new(60);
        let mut p = VstorPacket::new(Operation::EXECUTE_SRB, NtStatus::SUCCESS);
        p.flags = U32::new(REQUEST_COMPLETION_FLAG);
        p.set_srb(&srb);
        let b = p.as_bytes();
        assert_eq!(&b[..12], &[3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        // vmscsi_request at 12: length, srb/scsi status, port, path, target, lun.
        assert_eq!(&b[12..20], &[0x34, 0, 0, 0, 0, 1, 2, 3]);
        assert_eq!(&b[20..24], &[10, 0x14, 1, 0]);
        assert_eq!(&b[24..28], &4096u32.to_le_bytes());
        assert_eq!(b[28], 0x28);
        assert_eq!(&b[52..56], &0x48u32.to_le_bytes());
        assert_eq!(&b[56..60], &60u32.to_le_bytes());
        let back = VstorPacket::parse(b).unwrap();
        assert_eq!(back.srb(), srb);
        assert_eq!(back.srb().cdb(), &srb.cdb_or_sense[..10]);
    }

    #[test]
    fn short_packets_read_as_zero_padded_and_answers_keep_the_request_size() {
        let mut p = VstorPacket::new(Operation::QUERY_PROTOCOL_VERSION, NtStatus::SUCCESS);
        p.set_version(ProtocolVersion::WIN8_1);
        let short = p.bytes(48);
        assert_eq!(short.len(), 48);
        let back = VstorPacket::parse(short).unwrap();
        assert_eq!(back.version(), ProtocolVersion::WIN8_1);
        assert_eq!(back.operation(), Operation::QUERY_PROTOCOL_VERSION);
        assert_eq!(p.bytes(1000).len(), 64);
        assert_eq!(p.bytes(3).len(), 12);
        assert!(matches!(
            VstorPacket::parse(&[0; 11]),
            Err(VstorError::TooShort { len: 11, .. })
        ));
        // The header alone is a packet; its union reads as zeros.
        let header_only = VstorPacket::parse(&p.bytes(64)[..12]).unwrap();
        assert_eq!(header_only.operation(), Operation::QUERY_PROTOCOL_VERSION);
        assert_eq!(header_only.version(), ProtocolVersion(0));
        assert!(ProtocolVersion::WIN8.has_win8_extension());
        assert!(!ProtocolVersion::WIN7.has_win8_extension());
    }

    #[test]
    fn properties_and_sense_layouts() {
        let mut p = VstorPacket::new(Operation::COMPLETE_IO, NtStatus::SUCCESS);
        let mut props = ChannelProperties::new_zeroed();
        props.max_transfer_bytes = U32::new(0x40000);
        p.set_properties(&props);
        assert_eq!(&p.as_bytes()[24..28], &0x40000u32.to_le_bytes());
        assert_eq!(p.properties(), props);
        // CREATE_SUB_CHANNELS carries its count in the union's first two bytes.
        let mut bytes = VstorPacket::new(Operation::CREATE_SUB_CHANNELS, NtStatus::SUCCESS)
            .as_bytes()
            .to_vec();
        bytes[12..14].copy_from_slice(&0x0203u16.to_le_bytes());
        bytes[14] = 0xff;
        assert_eq!(
            VstorPacket::parse(&bytes).unwrap().sub_channel_count(),
            0x0203
        );
        let s = SenseData::new(sense_key::ILLEGAL_REQUEST, 0x21, 0);
        assert_eq!(
            s.as_bytes(),
            &[0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0, 0, 0, 0, 0]
        );
        let guid = SCSI_INTERFACE.as_bytes().to_vec();
        assert_eq!(
            guid,
            [
                0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1,
                0xdc, 0x7f
            ]
        );
    }
}
