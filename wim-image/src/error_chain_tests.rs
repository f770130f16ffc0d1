//! Every error that names a cause through `source()` leaves the cause's text out of its own
//! message, so a chain printer (`anyhow`'s `{:#}`, `wimtool`) prints each cause once.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::error::Error;

use crate::blob_table::BlobTableError;
use crate::codec::{Codec, DecompressError};
use crate::header::HeaderError;
use crate::io::IoError;
use crate::mem::AllocError;
use crate::read::ReadError;
use crate::resource::ResourceError;
use crate::wim::OpenError;

/// The messages of `e` and its causes, outermost first.
fn chain(e: &(dyn Error + 'static)) -> Vec<String> {
    core::iter::successors(Some(e), |&e| e.source())
        .map(ToString::to_string)
        .collect()
}

/// Asserts that `e` has a cause and that no message repeats the text of a cause below it.
fn assert_each_cause_once(e: &(dyn Error + 'static)) {
    let c = chain(e);
    assert!(c.len() >= 2, "{c:?}: no cause");
    for (i, outer) in c.iter().enumerate() {
        for inner in &c[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats its cause {inner:?}"
            );
        }
    }
    let joined = c.join(": ");
    let last = c.last().unwrap();
    assert_eq!(joined.matches(last.as_str()).count(), 1, "{joined}");
}

fn eof() -> IoError {
    IoError::Eof {
        offset: 7,
        len: 9,
        size: 11,
    }
}

#[test]
fn open_errors_print_their_cause_once() {
    let errors = [
        OpenError::Io {
            part: 2,
            source: eof(),
        },
        OpenError::Header {
            part: 1,
            source: HeaderError::TooSmall { size: 12 },
        },
        OpenError::Resource {
            part: 1,
            source: ResourceError::OutOfFile {
                offset: 1,
                size: 2,
                file_size: 3,
            },
        },
        OpenError::BlobTable {
            part: 1,
            source: BlobTableError::Size { size: 51 },
        },
        OpenError::OutOfMemory {
            part: 1,
            what: "blob table",
            source: AllocError { bytes: 1 << 40 },
        },
    ];
    for e in &errors {
        assert_each_cause_once(e);
    }
    // A real one: a file too small for a header.
    let e = crate::Wim::open(&[0u8; 12][..]).unwrap_err();
    assert_each_cause_once(&e);
}

#[test]
fn read_errors_print_their_cause_once() {
    let e = ReadError::Decompress {
        part: 1,
        offset: 208,
        source: DecompressError::OutputSize {
            codec: Codec::Xpress,
            size: 0,
            max: 65536,
        },
    };
    assert_each_cause_once(&e);
    let e = crate::write::WriteError::Read(e);
    assert_each_cause_once(&e);
}

#[cfg(all(feature = "std", unix))]
#[test]
fn file_errors_print_their_cause_once() {
    use std::path::PathBuf;

    use crate::apply::ApplyError;
    use crate::reparse::ReparseError;
    use crate::write::capture::CaptureError;
    use crate::write::WriteError;

    let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no entry for you");
    let path = PathBuf::from("/some/file");
    assert_each_cause_once(&ApplyError::Io {
        path: path.clone(),
        source: io(),
    });
    assert_each_cause_once(&ApplyError::Read {
        path: path.clone(),
        source: ReadError::Io(eof()),
    });
    assert_each_cause_once(&ApplyError::Reparse {
        path: path.clone(),
        source: ReparseError::TooLarge { size: 1 << 20 },
    });
    assert_each_cause_once(&CaptureError::Io {
        path: path.clone(),
        source: io(),
    });
    assert_each_cause_once(&WriteError::Source { path, source: io() });
}

/// A caller's device that fails every read past its first `good` bytes, as a `no_std`
/// block driver would report a media error.
#[derive(Debug)]
struct FailingDevice<'a> {
    bytes: &'a [u8],
    good: u64,
}

impl crate::ReadAt for FailingDevice<'_> {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        if offset + buf.len() as u64 > self.good {
            return Err(IoError::Device {
                offset,
                code: 0x1f,
                reason: "media error",
            });
        }
        self.bytes.read_exact_at(buf, offset)
    }
}

#[test]
fn a_device_fault_reaches_the_caller_in_every_build() {
    // A small uncompressed WIM wimlib-imagex captured (the fuzz seed).
    let wim = include_bytes!("../fuzz/seeds/open/uncompressed");
    // The header reads; the tables after it do not.
    let Err(e) = crate::Wim::open(FailingDevice {
        bytes: wim,
        good: 208,
    }) else {
        panic!("opened");
    };
    assert!(
        matches!(
            e,
            OpenError::Io {
                source: IoError::Device { code: 0x1f, .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_each_cause_once(&e);
    assert!(chain(&e).iter().any(|m| m.contains("media error")));
}
