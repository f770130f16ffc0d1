//! The host (storvsp) side of one storage channel, transport-agnostic.
//!
//! [`StorageHost::handle`] takes one guest packet — already parsed by [`crate::packet`] — and
//! says what to do: answer at once ([`HostAction::Reply`]: the initialization steps, resets,
//! protocol errors) or run a SCSI command ([`HostAction::Execute`]) against the caller's target,
//! moving data through the one GPA range the packet carried. The caller then builds the
//! completion with [`StorageHost::complete`]. Packets that did not ask for a completion are
//! never answered (and are reported as [`HostAction::Drop`]).
//!
//! Initialization runs BEGIN → QUERY_PROTOCOL_VERSION (repeatable until accepted) →
//! QUERY_PROPERTIES → END; a request out of order gets INVALID_DEVICE_STATE and leaves the
//! state unchanged. Every answer has operation COMPLETE_IO and as many bytes as the request
//! carried (12..=64), which is what Linux and Windows guests check.

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromZeros, IntoBytes};

use super::{
    ChannelProperties, NtStatus, Operation, ProtocolVersion, ScsiRequest, SenseData, SrbStatus,
    VstorError, VstorPacket, SCSI_REQUEST_LEN_V1, SCSI_REQUEST_LEN_V2, SRB_STATUS_AUTOSENSE_VALID,
    VSTOR_HEADER_LEN,
};
use crate::gpadl::GpaRange;
use crate::packet::{PacketKind, PacketRepr};

/// Host settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// Versions accepted: from `min_version` to `max_version`.
    pub min_version: ProtocolVersion,
    /// Newest version accepted.
    pub max_version: ProtocolVersion,
    /// Largest transfer per request, a nonzero multiple of 4 KiB.
    pub max_transfer_bytes: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            min_version: ProtocolVersion::WIN8,
            max_version: ProtocolVersion::WIN10,
            max_transfer_bytes: 0x4_0000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Begin,
    QueryVersion,
    QueryProperties,
    EndInitialization,
    Ready,
}

/// A SCSI command to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScsiCommand<'a> {
    /// The request as the guest sent it.
    pub request: ScsiRequest,
    /// The guest buffer: one range covering at least `data_transfer_length` bytes, or `None`
    /// when the request moves no data.
    pub buffer: Option<GpaRange<'a>>,
    /// `true` when data flows from the device to the guest (a read).
    pub to_guest: bool,
    /// Bytes to move (`data_transfer_length`; 0 with no buffer).
    pub len: u32,
    /// Bytes the completion must have.
    pub reply_len: usize,
}

/// How a SCSI command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScsiOutcome {
    /// The SRB status (without flags; [`SRB_STATUS_AUTOSENSE_VALID`] is added for sense).
    pub srb_status: SrbStatus,
    /// SAM status (0 GOOD, 2 CHECK CONDITION).
    pub scsi_status: u8,
    /// Sense data for a CHECK CONDITION.
    pub sense: Option<SenseData>,
    /// Bytes actually moved.
    pub transferred: u32,
}

impl ScsiOutcome {
    /// GOOD, `transferred` bytes moved.
    pub const fn good(transferred: u32) -> Self {
        Self {
            srb_status: SrbStatus::SUCCESS,
            scsi_status: 0,
            sense: None,
            transferred,
        }
    }

    /// CHECK CONDITION with `sense` (SRB status ERROR, or INVALID_REQUEST for an illegal request).
    pub fn check_condition(sense: SenseData) -> Self {
        let illegal = sense.sense_key & 0xF == super::sense_key::ILLEGAL_REQUEST;
        Self {
            srb_status: if illegal {
                SrbStatus::INVALID_REQUEST
            } else {
                SrbStatus::ERROR
            },
            scsi_status: 2,
            sense: Some(sense),
            transferred: 0,
        }
    }
}

/// What the caller does with one guest packet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostAction<'a> {
    /// Send a completion with these bytes now.
    Reply(VstorPacket, usize),
    /// Run the command, then send [`StorageHost::complete`]'s answer.
    Execute(ScsiCommand<'a>),
    /// Send nothing (the guest did not ask for a completion, or the packet is not a request).
    Drop(DropReason),
}

/// Why a packet gets no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The packet did not ask for a completion.
    #[error("no completion requested")]
    NoCompletionRequested,
    /// Not an in-band or GPA-direct packet.
    #[error("unexpected packet type")]
    UnexpectedPacketType,
    /// The vstor packet does not parse.
    #[error(transparent)]
    Malformed(#[from] VstorError),
}

/// The storvsp protocol state of one channel.
#[derive(Clone, Debug)]
pub struct StorageHost {
    config: HostConfig,
    state: State,
    version: Option<ProtocolVersion>,
}

impl StorageHost {
    /// A channel waiting for BEGIN_INITIALIZATION.
    pub fn new(config: HostConfig) -> Self {
        Self {
            config,
            state: State::Begin,
            version: None,
        }
    }

    /// The negotiated version.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Whether initialization finished.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Back to the initial state (the channel closed).
    pub fn reset(&mut self) {
        self.state = State::Begin;
        self.version = None;
    }

    /// Decides what to do with one guest packet.
    pub fn handle<'a>(&mut self, packet: &PacketRepr<'a>) -> HostAction<'a> {
        if !packet.completion_requested {
            return HostAction::Drop(DropReason::NoCompletionRequested);
        }
        let range = match packet.kind {
            PacketKind::InBand => None,
            PacketKind::GpaDirect { ranges } => Some(ranges),
            _ => return HostAction::Drop(DropReason::UnexpectedPacketType),
        };
        let request = match VstorPacket::parse(packet.payload) {
            Ok(p) => p,
            Err(e) => return HostAction::Drop(e.into()),
        };
        let reply_len = packet
            .payload
            .len()
            .min(VSTOR_HEADER_LEN + SCSI_REQUEST_LEN_V2);
        let op = request.operation();
        let reply = |status: NtStatus| {
            HostAction::Reply(VstorPacket::new(Operation::COMPLETE_IO, status), reply_len)
        };
        if self.state != State::Ready {
            return self.initialize(op, &request, reply_len);
        }
        match op {
            Operation::EXECUTE_SRB => {
                let min = VSTOR_HEADER_LEN + SCSI_REQUEST_LEN_V1;
                if packet.payload.len() < min {
                    return reply(NtStatus::INVALID_PARAMETER);
                }
                let srb = request.srb();
                self.execute(srb, range, reply_len)
            }
            Operation::RESET_LUN | Operation::RESET_ADAPTER | Operation::RESET_BUS => {
                reply(NtStatus::SUCCESS)
            }
            // One channel only: the properties offered no sub-channels.
            Operation::CREATE_SUB_CHANNELS => reply(NtStatus::INVALID_PARAMETER),
            _ => reply(NtStatus::INVALID_DEVICE_STATE),
        }
    }

    fn initialize<'a>(
        &mut self,
        op: Operation,
        request: &VstorPacket,
        reply_len: usize,
    ) -> HostAction<'a> {
        let mut answer = VstorPacket::new(Operation::COMPLETE_IO, NtStatus::SUCCESS);
        let expected = match self.state {
            State::Begin => Operation::BEGIN_INITIALIZATION,
            State::QueryVersion => Operation::QUERY_PROTOCOL_VERSION,
            State::QueryProperties => Operation::QUERY_PROPERTIES,
            _ => Operation::END_INITIALIZATION,
        };
        if op != expected {
            answer.status = U32::new(NtStatus::INVALID_DEVICE_STATE.0);
            return HostAction::Reply(answer, reply_len);
        }
        match self.state {
            State::Begin => self.state = State::QueryVersion,
            State::QueryVersion => {
                let v = request.version();
                answer.set_version(v);
                if (self.config.min_version.0..=self.config.max_version.0).contains(&v.0) {
                    self.version = Some(v);
                    self.state = State::QueryProperties;
                } else {
                    answer.status = U32::new(NtStatus::REVISION_MISMATCH.0);
                }
            }
            State::QueryProperties => {
                let mut p = ChannelProperties::new_zeroed();
                p.max_transfer_bytes = U32::new(self.config.max_transfer_bytes);
                answer.set_properties(&p);
                self.state = State::EndInitialization;
            }
            _ => self.state = State::Ready,
        }
        HostAction::Reply(answer, reply_len)
    }

    fn execute<'a>(
        &self,
        srb: ScsiRequest,
        ranges: Option<crate::gpadl::GpaRanges<'a>>,
        reply_len: usize,
    ) -> HostAction<'a> {
        let len = srb.data_transfer_length.get();
        let invalid = |status: SrbStatus| {
            HostAction::Reply(
                self.complete_packet(
                    &srb,
                    &ScsiOutcome {
                        srb_status: status,
                        scsi_status: 0,
                        sense: None,
                        transferred: 0,
                    },
                ),
                reply_len,
            )
        };
        let buffer = match (len, ranges) {
            (0, _) => None,
            (_, None) => return invalid(SrbStatus::INVALID_REQUEST),
            (_, Some(ranges)) => {
                let mut it = ranges.iter();
                match (it.next(), it.next()) {
                    (Some(r), None)
                        if r.byte_count >= len && len <= self.config.max_transfer_bytes =>
                    {
                        Some(r)
                    }
                    _ => return invalid(SrbStatus::INVALID_REQUEST),
                }
            }
        };
        HostAction::Execute(ScsiCommand {
            request: srb,
            buffer,
            to_guest: srb.data_in == super::DATA_IN,
            len: if buffer.is_some() { len } else { 0 },
            reply_len,
        })
    }

    /// The completion for `command` after it ended with `outcome`; send its first
    /// `command.reply_len` bytes (see [`VstorPacket::bytes`]).
    pub fn complete(&self, command: &ScsiCommand<'_>, outcome: &ScsiOutcome) -> VstorPacket {
        self.complete_packet(&command.request, outcome)
    }

    fn complete_packet(&self, request: &ScsiRequest, outcome: &ScsiOutcome) -> VstorPacket {
        let status = match outcome.srb_status {
            SrbStatus::SUCCESS => NtStatus::SUCCESS,
            SrbStatus::DATA_OVERRUN => NtStatus::BUFFER_OVERFLOW,
            SrbStatus::INVALID_LUN | SrbStatus::INVALID_TARGET_ID | SrbStatus::NO_DEVICE => {
                NtStatus::DEVICE_DOES_NOT_EXIST
            }
            SrbStatus::INVALID_REQUEST => NtStatus::INVALID_DEVICE_REQUEST,
            _ => NtStatus::IO_DEVICE_ERROR,
        };
        let mut p = VstorPacket::new(Operation::COMPLETE_IO, status);
        let mut srb = ScsiRequest::new_zeroed();
        srb.length = U16::new(SCSI_REQUEST_LEN_V2 as u16);
        srb.path_id = request.path_id;
        srb.target_id = request.target_id;
        srb.lun = request.lun;
        srb.cdb_length = 16;
        srb.scsi_status = outcome.scsi_status;
        srb.srb_status = outcome.srb_status.0;
        srb.data_transfer_length =
            U32::new(outcome.transferred.min(request.data_transfer_length.get()));
        if let Some(sense) = &outcome.sense {
            srb.srb_status |= SRB_STATUS_AUTOSENSE_VALID;
            let bytes = sense.as_bytes();
            srb.cdb_or_sense[..bytes.len()].copy_from_slice(bytes);
            srb.sense_info_length = bytes.len() as u8;
        }
        p.set_srb(&srb);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpadl::GpaRanges;
    use crate::storvsc::{sense_key, DATA_IN, DATA_NONE, REQUEST_COMPLETION_FLAG};

    fn request(op: Operation) -> VstorPacket {
        let mut p = VstorPacket::new(op, NtStatus::SUCCESS);
        p.flags = U32::new(REQUEST_COMPLETION_FLAG);
        p
    }

    fn reply_of(action: HostAction<'_>) -> (VstorPacket, usize) {
        match action {
            HostAction::Reply(p, n) => (p, n),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn init(host: &mut StorageHost, len: usize) {
        for op in [
            Operation::BEGIN_INITIALIZATION,
            Operation::QUERY_PROTOCOL_VERSION,
        ] {
            let mut p = request(op);
            p.set_version(ProtocolVersion::WIN10);
            let (r, n) = reply_of(host.handle(&PacketRepr::in_band(7, true, p.bytes(len))));
            assert_eq!(
                (r.operation(), r.status(), n),
                (Operation::COMPLETE_IO, NtStatus::SUCCESS, len)
            );
        }
        let (r, _) = reply_of(host.handle(&PacketRepr::in_band(
            7,
            true,
            request(Operation::QUERY_PROPERTIES).as_bytes(),
        )));
        assert_eq!(r.properties().max_transfer_bytes.get(), 0x4_0000);
        let (r, _) = reply_of(host.handle(&PacketRepr::in_band(
            7,
            true,
            request(Operation::END_INITIALIZATION).as_bytes(),
        )));
        assert_eq!(r.status(), NtStatus::SUCCESS);
        assert!(host.is_ready());
    }

    /// After initialization: the resets succeed, sub-channels are refused (none offered), an
    /// unknown operation is a device-state error, an SRB needs at least the pre-Windows-8
    /// request, and an answer is never longer than the Windows 8 packet (64 bytes).
    #[test]
    fn operations_after_initialization() {
        let mut host = StorageHost::new(HostConfig::default());
        init(&mut host, 64);
        let status = |host: &mut StorageHost, op: Operation, len: usize| {
            let p = request(op);
            let mut bytes = p.bytes(64).to_vec();
            bytes.resize(len, 0);
            let (r, n) = reply_of(host.handle(&PacketRepr::in_band(9, true, &bytes[..len])));
            assert_eq!(n, len.min(64), "{op:?} of {len} bytes");
            r.status()
        };
        for op in [
            Operation::RESET_LUN,
            Operation::RESET_ADAPTER,
            Operation::RESET_BUS,
        ] {
            assert_eq!(status(&mut host, op, 64), NtStatus::SUCCESS, "{op:?}");
        }
        assert_eq!(
            status(&mut host, Operation::CREATE_SUB_CHANNELS, 64),
            NtStatus::INVALID_PARAMETER
        );
        assert_eq!(
            status(&mut host, Operation(99), 100),
            NtStatus::INVALID_DEVICE_STATE
        );
        assert_eq!(
            status(&mut host, Operation::EXECUTE_SRB, 47),
            NtStatus::INVALID_PARAMETER
        );
        let srb = request(Operation::EXECUTE_SRB);
        let action = host.handle(&PacketRepr::in_band(9, true, srb.bytes(48)));
        assert!(
            !matches!(&action, HostAction::Reply(p, _) if p.status() == NtStatus::INVALID_PARAMETER),
            "{action:?}"
        );
    }

    #[test]
    fn initialization_in_order_with_version_fallback() {
        let mut host = StorageHost::new(HostConfig {
            max_version: ProtocolVersion::WIN8_1,
            ..HostConfig::default()
        });
        // Out of order: refused, state unchanged.
        let (r, _) = reply_of(host.handle(&PacketRepr::in_band(
            1,
            true,
            request(Operation::QUERY_PROPERTIES).as_bytes(),
        )));
        assert_eq!(r.status(), NtStatus::INVALID_DEVICE_STATE);
        reply_of(host.handle(&PacketRepr::in_band(
            1,
            true,
            request(Operation::BEGIN_INITIALIZATION).as_bytes(),
        )));
        // Linux's order: 6.2 (refused), then 6.0.
        for (v, want) in [
            (ProtocolVersion::WIN10, NtStatus::REVISION_MISMATCH),
            (ProtocolVersion::WIN8_1, NtStatus::SUCCESS),
        ] {
            let mut p = request(Operation::QUERY_PROTOCOL_VERSION);
            p.set_version(v);
            let (r, _) = reply_of(host.handle(&PacketRepr::in_band(2, true, p.as_bytes())));
            assert_eq!(
                (r.operation(), r.status(), r.version()),
                (Operation::COMPLETE_IO, want, v)
            );
        }
        assert_eq!(host.version(), Some(ProtocolVersion::WIN8_1));
        let mut fresh = StorageHost::new(HostConfig::default());
        init(&mut fresh, 48);
        fresh.reset();
        assert!(!fresh.is_ready());
    }

    #[test]
    fn srbs_with_and_without_data() {
        let mut host = StorageHost::new(HostConfig::default());
        init(&mut host, 64);
        let mut srb = ScsiRequest::new_zeroed();
        srb.data_in = DATA_IN;
        srb.data_transfer_length = U32::new(8192);
        srb.cdb_length = 10;
        srb.lun = 0;
        let mut p = request(Operation::EXECUTE_SRB);
        p.set_srb(&srb);
        let pfns = [0x100, 0x200, 0x300];
        let mut buf = [0u8; 64];
        let ranges = GpaRanges::encode(&[GpaRange::new(0x800, 8192, &pfns)], &mut buf).unwrap();
        let packet = PacketRepr::gpa_direct(9, true, ranges, p.as_bytes());
        let HostAction::Execute(cmd) = host.handle(&packet) else {
            panic!("not executed")
        };
        assert!(cmd.to_guest);
        assert_eq!((cmd.len, cmd.reply_len), (8192, 64));
        assert_eq!(cmd.buffer.unwrap().byte_offset, 0x800);
        let done = host.complete(&cmd, &ScsiOutcome::good(8192));
        let back = done.srb();
        assert_eq!(
            (
                done.status(),
                back.srb_status,
                back.data_transfer_length.get()
            ),
            (NtStatus::SUCCESS, 1, 8192)
        );
        // Each SRB status's NT status (what Linux's storvsc acts on).
        for (srb_status, nt) in [
            (SrbStatus::DATA_OVERRUN, NtStatus::BUFFER_OVERFLOW),
            (SrbStatus::INVALID_LUN, NtStatus::DEVICE_DOES_NOT_EXIST),
            (
                SrbStatus::INVALID_TARGET_ID,
                NtStatus::DEVICE_DOES_NOT_EXIST,
            ),
            (SrbStatus::NO_DEVICE, NtStatus::DEVICE_DOES_NOT_EXIST),
            (SrbStatus::INVALID_REQUEST, NtStatus::INVALID_DEVICE_REQUEST),
            (SrbStatus::ERROR, NtStatus::IO_DEVICE_ERROR),
            (SrbStatus::TIMEOUT, NtStatus::IO_DEVICE_ERROR),
        ] {
            let outcome = ScsiOutcome {
                srb_status,
                ..ScsiOutcome::good(0)
            };
            let done = host.complete(&cmd, &outcome);
            assert_eq!(done.status(), nt, "{srb_status:?}");
            assert_eq!(done.srb().srb_status, srb_status.0);
        }
        // A failure carries the sense and the autosense flag.
        let bad = host.complete(
            &cmd,
            &ScsiOutcome::check_condition(SenseData::new(sense_key::ILLEGAL_REQUEST, 0x21, 0)),
        );
        let back = bad.srb();
        assert_eq!(
            back.srb_status,
            SrbStatus::INVALID_REQUEST.0 | SRB_STATUS_AUTOSENSE_VALID
        );
        assert_eq!(
            (
                back.scsi_status,
                back.cdb_or_sense[12],
                back.sense_info_length
            ),
            (2, 0x21, 18)
        );
        // Data promised but no range, or a range too short: refused without running.
        let (r, _) = reply_of(host.handle(&PacketRepr::in_band(10, true, p.as_bytes())));
        assert_eq!(r.srb().srb_status, SrbStatus::INVALID_REQUEST.0);
        let mut buf = [0u8; 64];
        let short = GpaRanges::encode(&[GpaRange::new(0, 4096, &pfns[..1])], &mut buf).unwrap();
        assert!(matches!(
            host.handle(&PacketRepr::gpa_direct(11, true, short, p.as_bytes())),
            HostAction::Reply(..)
        ));
        // No data: executes with no buffer.
        srb.data_in = DATA_NONE;
        srb.data_transfer_length = U32::new(0);
        p.set_srb(&srb);
        let HostAction::Execute(cmd) = host.handle(&PacketRepr::in_band(12, true, p.as_bytes()))
        else {
            panic!()
        };
        assert_eq!((cmd.buffer, cmd.len), (None, 0));
        // No completion requested, or garbage: dropped.
        assert!(matches!(
            host.handle(&PacketRepr::in_band(13, false, p.as_bytes())),
            HostAction::Drop(_)
        ));
        assert!(matches!(
            host.handle(&PacketRepr::in_band(14, true, &[1, 2, 3])),
            HostAction::Drop(_)
        ));
        let (r, _) = reply_of(host.handle(&PacketRepr::in_band(
            15,
            true,
            request(Operation::BEGIN_INITIALIZATION).as_bytes(),
        )));
        assert_eq!(r.status(), NtStatus::INVALID_DEVICE_STATE);
    }
}
