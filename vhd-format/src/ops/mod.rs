//! The Edit Disk operations: inspect, check, repair, compact, convert, expand, merge, snapshot.
//!
//! Each is a library function; long ones report progress through a [`Progress`] callback.

mod check;
mod compact;
mod convert;
mod expand;
mod inspect;
mod merge;
mod repair;

pub use check::{check, CheckReport, Problem, Severity};
pub use compact::{compact, CompactError, CompactReport};
pub use convert::{convert_to_raw, convert_to_vhd, ConvertError, Target};
pub use expand::{expand, ExpandError};
pub use inspect::{Extent, ExtentState, Inspection};
pub use merge::{merge_into_parent, MergeError};
pub use repair::{repair, RepairAction, RepairError};

/// Bytes of a block that compaction and merging read or copy at a time. A block may be up to
/// 2 GiB (plus its bitmap); memory must not grow with a size field read from the file.
pub(crate) const BLOCK_CHUNK: u64 = 1 << 20;

/// A progress report: `done` of `total` units of `phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressEvent {
    /// What is being done (`"copy"`, `"scan"`, `"move"` …).
    pub phase: &'static str,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// Receives progress reports. Implemented for every `FnMut(ProgressEvent)`.
pub trait Progress {
    /// Called after each unit of work (at most once per block).
    fn report(&mut self, event: ProgressEvent);
}

impl<F: FnMut(ProgressEvent)> Progress for F {
    fn report(&mut self, event: ProgressEvent) {
        self(event)
    }
}

/// A [`Progress`] that ignores every report.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _: ProgressEvent) {}
}
