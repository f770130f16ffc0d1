//! Integration services (IC): heartbeat, shutdown, time synchronization, key/value pair
//! exchange and VSS, the small protocols that run over in-band packets on their own VMBus
//! channels.
//!
//! Every IC packet is a [pipe header and IC message header](framing) followed by a body. Right
//! after a channel opens, the host sends a [`negotiate`] message listing the framework and
//! service versions it offers; the guest answers with its choice. After that the host drives
//! each service with requests and the guest responds:
//!
//! | service | host sends | guest answers | module |
//! |---|---|---|---|
//! | heartbeat | sequence number (every few seconds) | sequence + 1, application state | [`bodies::Heartbeat`] |
//! | shutdown | reason, timeout, flags, 2048-byte message | status, then powers off | [`bodies::Shutdown`] |
//! | time sync | host time (1601 epoch, 100 ns) + reference time | nothing meaningful (echo) | [`bodies::TimeSyncV4`] |
//! | KVP | get/set/delete/enumerate on a pool | the record, or a status | [`kvp`] |
//! | VSS | freeze/thaw/hot-backup … | status | [`bodies::VssMessage`] |
//!
//! The [`host`] and [`guest`] modules hold the service state machines; they consume and
//! produce packet payloads and take the current time as an argument, so they run the same in a
//! VMM, a `no_std` guest or a test.

pub mod bodies;
pub mod framing;
pub mod guest;
pub mod host;
pub mod kvp;
pub mod negotiate;
#[cfg(test)]
mod tests;

pub(crate) use crate::macros::open_enum;

/// A version as IC messages carry it: major and minor u16s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u16,
}

impl Version {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A malformed or unexpected IC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IcError {
    /// The packet or body is shorter than its structure.
    #[error("IC message truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        len: usize,
    },
    /// The pipe header's size cannot hold the IC header and body it announces.
    #[error("pipe header says {pipe} bytes but the IC body alone is {body}")]
    SizeMismatch {
        /// Pipe size.
        pipe: u32,
        /// IC body size.
        body: u16,
    },
    /// A body too large for the 16-bit size field.
    #[error("IC body of {0} bytes is too large")]
    BodyTooLarge(usize),
    /// A negotiate message lists more versions than allowed.
    #[error("negotiate message lists {framework} framework and {message} message versions (limit 100 each)")]
    TooManyVersions {
        /// Framework versions listed.
        framework: u16,
        /// Message versions listed.
        message: u16,
    },
    /// A message of a type this service does not expect.
    #[error("unexpected IC message type {0:?}")]
    UnexpectedType(framing::IcMessageType),
    /// A field holds a value outside its range.
    #[error("invalid {field}: {value}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A KVP key or value exceeds its size limit or is not valid UTF-16.
    #[error("KVP {what} of {len} bytes exceeds the {limit}-byte limit or is malformed")]
    KvpString {
        /// `key` or `value`.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
}
