//! Progress of writing an image's data, and cancelling it.
//!
//! Every call that writes an image's streams ([`WimWriter::add_image_with_progress`],
//! [`WimWriter::add_image_with`], [`WimWriter::replace_image_with_progress`],
//! [`capture_image_with_progress`](super::capture::capture_image_with_progress),
//! [`export_image_with_progress`](super::export::export_image_with_progress),
//! [`rebuild_with_progress`](super::export::rebuild_with_progress) and
//! [`update_in_place_with_progress`](super::update::update_in_place_with_progress)) takes a
//! callback `&mut dyn FnMut(WriteProgress) -> ControlFlow<()>`. It is called on the
//! caller's thread (compression threads never call it), after every [`REPORT_STEP`] bytes
//! read (not per blob: a million small files make a report per MiB of their data, not a
//! million reports) and once more when every stream of the image has been handed on, with
//! [`done`](WriteProgress::done) = [`total`](WriteProgress::total).
//!
//! Splitting a WIM into parts has its own report,
//! [`SplitProgress`](super::split::SplitProgress), given by
//! [`split_into_with_progress`](super::split::split_into_with_progress) the same way.
//!
//! Returning [`ControlFlow::Break`] stops the call at that point, before the next piece of
//! data is read, with [`WriteError::Cancelled`]: batches given to the compression threads
//! are dropped (each thread finishes at most the chunk it holds) and nothing more is
//! written. What the writer can do afterwards is said on each call:
//! [`WimWriter::add_image_with_progress`].

use core::ops::ControlFlow;

use super::WriteError;

#[cfg(doc)]
use super::WimWriter;

/// Bytes read between two reports: a report comes once at least this many have been read
/// since the last one. A piece read at once (a small file, a batch of chunks for many
/// threads) is not split, so reports may be further apart, never closer.
pub const REPORT_STEP: u64 = 1 << 20;

/// Progress of writing one image's stream data (file contents, alternate data streams,
/// reparse data), reported to the callback of the `*_with_progress` calls.
///
/// Counts are of uncompressed bytes and cover one call ([`image`](Self::image) says which
/// image: a [`rebuild_with_progress`](super::export::rebuild_with_progress) makes one
/// series of reports per image). [`total`](Self::total) is fixed for the call: the sizes of
/// the image's streams that have data, each once (several streams naming the same blob by
/// its SHA-1, as an export's do, count once; one the output holds already does not count).
/// A stream of a file is counted even when its data turn out, once read and hashed, to be a
/// blob stored already (it had to be read all the same). [`done`](Self::done) never goes
/// down, and the last report of a call that succeeds has `done == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteProgress {
    /// The 1-based index, in the output, of the image being written.
    pub image: u32,
    /// Bytes of stream data read and handed to the compressors (or written) so far.
    pub done: u64,
    /// Bytes of stream data the call reads.
    pub total: u64,
    /// Streams done.
    pub blobs_done: u64,
    /// Streams the call reads (those [`total`](Self::total) counts).
    pub blobs_total: u64,
}

/// A progress callback that never cancels (what the calls without progress pass).
pub(crate) fn ignore(_: WriteProgress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// The reporting rule every progress report of a write follows (reports of `P`): a report
/// once [`REPORT_STEP`] bytes have been read since the last one, and a `Break` is
/// [`WriteError::Cancelled`].
pub(crate) struct Reporter<'f, P> {
    report: &'f mut dyn FnMut(P) -> ControlFlow<()>,
    /// Bytes read since the last report.
    since: u64,
}

impl<'f, P> Reporter<'f, P> {
    pub(crate) fn new(report: &'f mut dyn FnMut(P) -> ControlFlow<()>) -> Self {
        Reporter { report, since: 0 }
    }

    /// `n` more bytes were read: reports `p` if a report is due.
    pub(crate) fn read(&mut self, n: u64, p: P) -> Result<(), WriteError> {
        self.since = self.since.saturating_add(n);
        if self.since < REPORT_STEP {
            return Ok(());
        }
        self.send(p)
    }

    /// Reports `p` now.
    pub(crate) fn send(&mut self, p: P) -> Result<(), WriteError> {
        self.since = 0;
        match (self.report)(p) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(WriteError::Cancelled),
        }
    }
}

/// Counts the bytes of one call and reports them to its callback.
pub(crate) struct Meter<'f> {
    report: Reporter<'f, WriteProgress>,
    p: WriteProgress,
    /// The size of the stream being read, and its bytes counted so far.
    stream: (u64, u64),
}

impl<'f> Meter<'f> {
    /// A meter of `blobs` streams of `total` bytes for image `image`.
    pub(crate) fn new(
        report: &'f mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
        image: u32,
        total: u64,
        blobs: u64,
    ) -> Self {
        Meter {
            report: Reporter::new(report),
            p: WriteProgress {
                image,
                done: 0,
                total,
                blobs_done: 0,
                blobs_total: blobs,
            },
            stream: (0, 0),
        }
    }

    /// A stream of `size` bytes is begun.
    pub(crate) fn begin_stream(&mut self, size: u64) {
        self.stream = (size, 0);
    }

    /// `n` bytes of the stream were read and handed on (never counted past its size).
    pub(crate) fn stored(&mut self, n: u64) -> Result<(), WriteError> {
        let add = n.min(self.stream.0 - self.stream.1);
        self.stream.1 += add;
        self.p.done += add;
        self.read(n)
    }

    /// `n` bytes were read that do not count (a file hashed before it is written, stored
    /// bytes being copied): a chance to report, and to cancel, all the same.
    pub(crate) fn read(&mut self, n: u64) -> Result<(), WriteError> {
        self.report.read(n, self.p)
    }

    /// The stream is done: what of it was not counted yet (a duplicate found by its hash,
    /// data taken whole from memory) counts now.
    pub(crate) fn end_stream(&mut self) -> Result<(), WriteError> {
        let rest = self.stream.0 - self.stream.1;
        self.p.done += rest;
        self.p.blobs_done += 1;
        self.stream = (0, 0);
        self.read(rest)
    }

    /// The last report of the call.
    pub(crate) fn finish(&mut self) -> Result<(), WriteError> {
        self.report.send(self.p)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    /// Reports come per [`REPORT_STEP`] of reading, whatever the stream sizes, and a
    /// `Break` is the error.
    #[test]
    fn reports_per_step() {
        let mut seen = Vec::new();
        let mut f = |p: WriteProgress| {
            seen.push((p.done, p.blobs_done));
            ControlFlow::Continue(())
        };
        let mut m = Meter::new(&mut f, 1, 3 * REPORT_STEP + 10, 2001);
        // 2,000 streams of 1 KiB: one report (at 1,024 of them), not 2,000.
        for _ in 0..2000 {
            m.begin_stream(1024);
            m.end_stream().unwrap();
        }
        // A large stream read in pieces, one of them read twice (hashed first).
        let rest = 3 * REPORT_STEP + 10 - 2000 * 1024;
        m.begin_stream(rest);
        m.read(REPORT_STEP).unwrap();
        m.stored(REPORT_STEP).unwrap();
        m.stored(rest).unwrap();
        m.end_stream().unwrap();
        m.finish().unwrap();
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(seen[0], (1024 * 1024, 1024));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(*seen.last().unwrap(), (3 * REPORT_STEP + 10, 2001));

        let mut stop = |_: WriteProgress| ControlFlow::Break(());
        let mut m = Meter::new(&mut stop, 1, 10, 1);
        m.begin_stream(10);
        assert!(m.stored(10).is_ok());
        assert!(matches!(m.finish(), Err(WriteError::Cancelled)));
    }
}
