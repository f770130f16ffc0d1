//! Bodies of the heartbeat, shutdown, time-sync and VSS messages (offsets relative to the
//! body, i.e. byte 28 of the packet).

use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{open_enum, IcError};

/// Parses a body into `T`, which must fit; trailing bytes are allowed.
pub fn parse<T: FromBytes + KnownLayout + Immutable>(body: &[u8]) -> Result<T, IcError> {
    T::read_from_prefix(body)
        .map(|(v, _)| v)
        .map_err(|_| IcError::Truncated {
            needed: core::mem::size_of::<T>(),
            len: body.len(),
        })
}

/// Heartbeat body (host request and guest response). Linux needs at least the sequence
/// number and sends 40 bytes; Windows v3 puts the application state at byte 8.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Heartbeat {
    /// Sequence number; the guest answers with it plus one.
    pub seq_num: U64,
    /// [`AppState`] (v3); zero in older versions.
    pub application_state: U32,
    /// Zero.
    pub reserved: [u8; 28],
}
const _: () = assert!(core::mem::size_of::<Heartbeat>() == 40);

open_enum! {
    /// The guest's application health state in a v3 heartbeat.
    pub struct AppState(u32) {
        /// Unknown.
        UNKNOWN = 0,
        /// Healthy.
        HEALTHY = 1,
        /// Critical.
        CRITICAL = 2,
        /// Stopped.
        STOPPED = 3,
    }
}

impl Heartbeat {
    /// A heartbeat with `seq` and `state`.
    pub fn new(seq: u64, state: AppState) -> Self {
        Self {
            seq_num: U64::new(seq),
            application_state: U32::new(state.0),
            reserved: [0; 28],
        }
    }
}

/// Shutdown request body: 2060 bytes (Linux drops shorter ones).
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Shutdown {
    /// Reason code (e.g. `0x8000_0000`, planned).
    pub reason_code: U32,
    /// Seconds the guest has.
    pub timeout_seconds: U32,
    /// [`ShutdownFlags`].
    pub flags: U32,
    /// UTF-16LE message shown to users, NUL-padded.
    pub display_message: [u8; 2048],
}
const _: () = assert!(core::mem::size_of::<Shutdown>() == 2060);

impl core::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shutdown")
            .field(
                "reason_code",
                &format_args!("{:#x}", self.reason_code.get()),
            )
            .field("timeout_seconds", &self.timeout_seconds.get())
            .field("flags", &ShutdownFlags(self.flags.get()))
            .finish_non_exhaustive()
    }
}

open_enum! {
    /// What a shutdown request asks for (bit 0 force, bit 1 restart, bit 2 hibernate).
    pub struct ShutdownFlags(u32) {
        /// Orderly shutdown.
        SHUTDOWN = 0,
        /// Forced shutdown.
        FORCED_SHUTDOWN = 1,
        /// Restart.
        RESTART = 2,
        /// Forced restart.
        FORCED_RESTART = 3,
        /// Hibernate.
        HIBERNATE = 4,
        /// Forced hibernate.
        FORCED_HIBERNATE = 5,
    }
}

/// The reason code Hyper-V uses for a planned shutdown.
pub const SHUTDOWN_REASON_PLANNED: u32 = 0x8000_0000;

impl Shutdown {
    /// A request with `flags`, `timeout_seconds` and a message (truncated to 1023 UTF-16 units).
    pub fn new(flags: ShutdownFlags, timeout_seconds: u32, message: &str) -> Self {
        let mut body = Self {
            reason_code: U32::new(SHUTDOWN_REASON_PLANNED),
            timeout_seconds: U32::new(timeout_seconds),
            flags: U32::new(flags.0),
            display_message: [0; 2048],
        };
        for (i, unit) in message.encode_utf16().take(1023).enumerate() {
            body.display_message[2 * i..2 * i + 2].copy_from_slice(&unit.to_le_bytes());
        }
        body
    }

    /// The requested action, if it is one of the six valid values.
    pub fn action(&self) -> Option<ShutdownFlags> {
        let f = ShutdownFlags(self.flags.get());
        f.name().map(|_| f)
    }

    /// The display message's UTF-16 code units up to the first NUL.
    pub fn message_units(&self) -> impl Iterator<Item = u16> + '_ {
        self.display_message
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
    }
}

/// 100 ns intervals between 1601-01-01 (the Windows epoch) and 1970-01-01.
pub const WINDOWS_EPOCH_OFFSET: u64 = 116_444_736_000_000_000;

/// Converts Unix time in nanoseconds to Windows time (100 ns units since 1601).
pub fn unix_nanos_to_windows(nanos: u64) -> u64 {
    nanos / 100 + WINDOWS_EPOCH_OFFSET
}

/// Converts Windows time (100 ns units since 1601) to Unix nanoseconds (saturating at 0).
pub fn windows_to_unix_nanos(time: u64) -> u64 {
    time.saturating_sub(WINDOWS_EPOCH_OFFSET)
        .saturating_mul(100)
}

open_enum! {
    /// Time-sync flags.
    pub struct TimeSyncFlags(u8) {
        /// Probe.
        PROBE = 0,
        /// Step the clock to the host time.
        SYNC = 1,
        /// A sample (a hint for clock discipline).
        SAMPLE = 2,
    }
}

/// Time-sync body, versions 1 and 3 (≥ 25 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct TimeSyncV3 {
    /// Host time, 100 ns since 1601.
    pub parent_time: U64,
    /// Guest time (unused by Linux).
    pub child_time: U64,
    /// Round trip.
    pub round_trip: U64,
    /// [`TimeSyncFlags`].
    pub flags: u8,
}
const _: () = assert!(core::mem::size_of::<TimeSyncV3>() == 25);

/// Time-sync body, version 4 (≥ 22 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct TimeSyncV4 {
    /// Host time, 100 ns since 1601.
    pub parent_time: U64,
    /// The guest partition's reference time (100 ns) when `parent_time` was sampled.
    pub vm_reference_time: U64,
    /// [`TimeSyncFlags`].
    pub flags: u8,
    /// Leap-second indicator.
    pub leap_flags: u8,
    /// Clock stratum.
    pub stratum: u8,
    /// Zero.
    pub reserved: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<TimeSyncV4>() == 22);

open_enum! {
    /// VSS operations.
    pub struct VssOp(u8) {
        /// Create a shadow copy.
        CREATE = 0,
        /// Delete.
        DELETE = 1,
        /// Query hot-backup support.
        HOT_BACKUP = 2,
        /// Query dynamic-memory info.
        GET_DM_INFO = 3,
        /// Backup complete.
        BU_COMPLETE = 4,
        /// Freeze file systems.
        FREEZE = 5,
        /// Thaw file systems.
        THAW = 6,
        /// Auto-recover.
        AUTO_RECOVER = 7,
    }
}

/// VSS message body (Linux `hv_vss_msg` as it appears on the wire).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct VssMessage {
    /// [`VssOp`].
    pub operation: u8,
    /// Zero.
    pub reserved: [u8; 7],
    /// Feature / DM-info flags (e.g. `VSS_HBU_NO_AUTO_RECOVERY` = 5 answering HOT_BACKUP).
    pub flags: U32,
}
const _: () = assert!(core::mem::size_of::<VssMessage>() == 12);

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn golden_bodies() {
        let hb = Heartbeat::new(0x0102, AppState::HEALTHY);
        assert_eq!(&hb.as_bytes()[..12], &[2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        let s = Shutdown::new(ShutdownFlags::FORCED_RESTART, 30, "bye");
        let b = s.as_bytes();
        assert_eq!(b.len(), 2060);
        assert_eq!(
            &b[..16],
            &[0, 0, 0, 0x80, 30, 0, 0, 0, 3, 0, 0, 0, b'b', 0, b'y', 0]
        );
        assert_eq!(s.action(), Some(ShutdownFlags::FORCED_RESTART));
        // The message stops at its first NUL; Debug shows the decoded fields, not 2 KiB.
        assert!(s.message_units().eq("bye".encode_utf16()));
        let mut odd = s;
        odd.display_message[6..8].copy_from_slice(&0x263a_u16.to_le_bytes());
        odd.display_message[10] = b'!';
        assert!(odd.message_units().eq("bye\u{263a}".encode_utf16()));
        assert_eq!(
            alloc::format!("{s:?}"),
            alloc::format!(
                "Shutdown {{ reason_code: 0x80000000, timeout_seconds: 30, flags: {:?}, .. }}",
                ShutdownFlags::FORCED_RESTART
            )
        );
        assert_eq!(
            alloc::format!("{}", super::super::Version::new(3, 12)),
            "3.12"
        );
        let t = TimeSyncV4 {
            parent_time: U64::new(unix_nanos_to_windows(0)),
            vm_reference_time: U64::new(5),
            flags: TimeSyncFlags::SYNC.0,
            leap_flags: 0,
            stratum: 2,
            reserved: [0; 3],
        };
        assert_eq!(
            &t.as_bytes()[..8],
            &116_444_736_000_000_000u64.to_le_bytes()
        );
        assert_eq!(t.as_bytes()[16], 1);
        assert_eq!(windows_to_unix_nanos(WINDOWS_EPOCH_OFFSET + 10), 1000);
        let v3 = TimeSyncV3 {
            parent_time: U64::new(0x0102_0304_0506_0708),
            child_time: U64::new(0),
            round_trip: U64::new(0),
            flags: TimeSyncFlags::SAMPLE.0,
        };
        let b = v3.as_bytes();
        assert_eq!(
            (b.len(), &b[..8], b[24]),
            (25, &[8, 7, 6, 5, 4, 3, 2, 1][..], 2)
        );
        let vss = VssMessage {
            operation: VssOp::HOT_BACKUP.0,
            reserved: [0; 7],
            flags: U32::new(5),
        };
        assert_eq!(vss.as_bytes(), &[2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
        assert!(parse::<Shutdown>(&[0u8; 2059]).is_err());
        assert!(parse::<TimeSyncV3>(&[0u8; 25]).is_ok());
    }
}
