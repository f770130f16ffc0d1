//! The Edit Disk operations: inspect, check, repair, compact, convert, expand, merge, snapshot.
//!
//! Each is a library function; long ones report progress through a [`Progress`] callback,
//! which can also cancel them.

mod check;
mod compact;
mod convert;
mod expand;
mod inspect;
mod merge;
mod repair;

use core::ops::ControlFlow;

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
#[non_exhaustive]
pub struct ProgressEvent {
    /// What is being done (`"copy"`, `"scan"`, `"move"` …).
    pub phase: &'static str,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// Receives progress reports, and may stop the operation.
///
/// Returning [`ControlFlow::Break`] asks the operation to stop: it does at its next safe point
/// and returns its `Cancelled` error ([`CompactError::Cancelled`], [`ConvertError::Cancelled`],
/// [`MergeError::Cancelled`]), leaving every image valid. What each one leaves behind is on
/// the operation. Implemented for every `FnMut(ProgressEvent) -> ControlFlow<()>`:
///
/// ```
/// use core::ops::ControlFlow;
/// use vhd_format::defs::Uuid;
/// use vhd_format::ops::{self, CompactError, ProgressEvent};
/// use vhd_format::{create_dynamic, CreateOptions, Disk, MemStorage};
///
/// let options = CreateOptions::new(8 << 20).block_size(1 << 20).unique_id(Uuid([1; 16]));
/// let mut disk = create_dynamic(MemStorage::new(), &options).unwrap();
/// disk.write_at(5 << 20, b"data").unwrap();
/// // Stop at the second report (before the second block is looked at).
/// let mut stop_early = |e: ProgressEvent| {
///     if e.done >= 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
/// };
/// let err = ops::compact(&mut disk, None, &mut stop_early).unwrap_err();
/// assert!(matches!(err, CompactError::Cancelled));
/// // A valid image, with its data.
/// assert!(ops::check(disk.storage()).unwrap().is_clean());
/// let mut buf = [0u8; 4];
/// disk.read_at(5 << 20, &mut buf).unwrap();
/// assert_eq!(&buf, b"data");
/// ```
pub trait Progress {
    /// Called at each unit of work (at most once per block and phase); `Break` stops the
    /// operation there.
    fn report(&mut self, event: ProgressEvent) -> ControlFlow<()>;
}

impl<F: FnMut(ProgressEvent) -> ControlFlow<()>> Progress for F {
    fn report(&mut self, event: ProgressEvent) -> ControlFlow<()> {
        self(event)
    }
}

/// Reports `done` of `total` units of `phase`; whether the caller asked to stop there.
pub(crate) fn stop_at(
    progress: &mut dyn Progress,
    phase: &'static str,
    done: u64,
    total: u64,
) -> bool {
    progress
        .report(ProgressEvent { phase, done, total })
        .is_break()
}

/// A [`Progress`] that ignores every report and never stops.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _: ProgressEvent) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}
