//! Verification: the integrity table (if any), every image's metadata, every stream's blob
//! present, and every blob's SHA-1 after decompression.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use sha1::{Digest, Sha1};

use crate::blob_table::{BlobLocation, Sha1Hash};
use crate::defs::HEADER_SIZE;
use crate::dentry::ZERO_HASH;
use crate::io::ReadAt;
use crate::metadata::{NodeId, Tree};
use crate::read::ReadError;
use crate::wim::{ImageError, Wim};

/// Problems of one kind a [`VerifyReport`] lists; more are only counted
/// ([`VerifyReport::unlisted`]). A hostile file can hold a missing blob for every file of a
/// deep tree, or a bad chunk for every blob.
pub const MAX_LISTED: usize = 100;

/// Longest path a [`Problem::MissingBlob`] carries, in bytes (about; the file's own name is
/// always whole): a longer path keeps its last components after `…/`, found without walking
/// the rest of the tree.
pub const MAX_PATH_LEN: usize = 4096;

/// Progress of [`Wim::verify`].
///
/// Reports are built by the crate and may gain fields (`#[non_exhaustive]`): read the
/// fields, match with `..`, but do not construct or destructure them whole.
///
/// ```compile_fail
/// fn total(p: wim_image::verify::VerifyProgress) -> u64 {
///     let wim_image::verify::VerifyProgress { done, total } = p;
///     done + total
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyProgress {
    /// Bytes checked so far (integrity table bytes, then blob bytes).
    pub done: u64,
    /// Bytes to check.
    pub total: u64,
}

/// One problem found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem {
    /// A chunk of the file does not match the integrity table.
    Integrity {
        /// Chunk index.
        chunk: u64,
        /// Its file offset.
        offset: u64,
    },
    /// The integrity table itself is unreadable.
    IntegrityTable(ImageError),
    /// An image's metadata is unreadable or invalid.
    Image {
        /// 1-based image index.
        index: u32,
        /// The error.
        error: ImageError,
    },
    /// A stream refers to a blob that is not in the WIM.
    MissingBlob {
        /// 1-based image index.
        index: u32,
        /// The file's path (its last [`MAX_PATH_LEN`] bytes or so, after `…/`, if longer).
        path: String,
        /// The hash.
        hash: Sha1Hash,
    },
    /// A blob failed to read, decompress or hash.
    Blob {
        /// The blob's hash.
        hash: Sha1Hash,
        /// The error.
        error: ReadError,
    },
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use crate::read::hex;
        match self {
            Problem::Integrity { chunk, offset } => {
                write!(
                    f,
                    "integrity check failed for chunk {chunk} at offset {offset}"
                )
            }
            Problem::IntegrityTable(e) => write!(f, "integrity table: {e}"),
            Problem::Image { index, error } => write!(f, "image {index}: {error}"),
            Problem::MissingBlob { index, path, hash } => {
                write!(f, "image {index}: {path}: blob {} missing", hex(hash))
            }
            Problem::Blob { hash, error } => write!(f, "blob {}: {error}", hex(hash)),
        }
    }
}

/// The outcome of [`Wim::verify`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Whether an integrity table was present and checked.
    pub integrity_checked: bool,
    /// Blobs checked (metadata included).
    pub blobs: u64,
    /// Uncompressed bytes hashed.
    pub bytes: u64,
    /// What is wrong, in the order found: the first [`MAX_LISTED`] problems of each kind.
    pub problems: Vec<Problem>,
    /// Problems found beyond the first [`MAX_LISTED`] of their kind: counted, not listed.
    pub unlisted: u64,
    /// Problems found of each kind, listed or not.
    found: [usize; 5],
}

impl VerifyReport {
    /// No problems.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.unlisted == 0
    }

    /// Counts a problem of `p`'s kind, and lists it if fewer than [`MAX_LISTED`] of that
    /// kind are listed. `p` is made only then.
    fn add(&mut self, kind: usize, p: impl FnOnce() -> Problem) {
        self.found[kind] += 1;
        if self.found[kind] <= MAX_LISTED {
            self.problems.push(p());
        } else {
            self.unlisted += 1;
        }
    }
}

/// Kinds of [`Problem`], for [`VerifyReport::add`].
const INTEGRITY: usize = 0;
const INTEGRITY_TABLE: usize = 1;
const IMAGE: usize = 2;
const MISSING_BLOB: usize = 3;
const BLOB: usize = 4;

/// The path of `id` as [`Tree::path`] gives it, or, if longer than about [`MAX_PATH_LEN`]
/// bytes, its last components (the node's own name at least) after `…/`.
fn short_path(tree: &Tree, id: NodeId) -> String {
    let mut parts = Vec::new();
    let mut len = 0;
    let mut cur = id;
    while cur != 0 {
        let n = tree.node(cur);
        let name = n.dentry.name.as_str();
        if !parts.is_empty() && len + 1 + name.len() > MAX_PATH_LEN {
            break;
        }
        len += 1 + name.len();
        parts.push(name);
        cur = n.parent;
    }
    let mut s = String::with_capacity(len + 4);
    if cur != 0 {
        s.push('…');
    }
    for p in parts.iter().rev() {
        s.push('/');
        s.push_str(p);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

impl<R: ReadAt> Wim<R> {
    /// Checks everything that can be checked; problems are collected, not fatal.
    pub fn verify(&self, progress: &mut dyn FnMut(VerifyProgress)) -> VerifyReport {
        let mut report = VerifyReport::default();
        let integrity = match self.integrity_table() {
            Ok(t) => t,
            Err(e) => {
                report.add(INTEGRITY_TABLE, || Problem::IntegrityTable(e));
                None
            }
        };
        let covered = self
            .header()
            .blob_table
            .end()
            .unwrap_or(0)
            .saturating_sub(HEADER_SIZE as u64);
        // Sizes come from the file: a sum of them may not fit (two blobs of 2^63 bytes); the
        // total is only for progress, so it saturates.
        let blob_bytes = self
            .blob_table()
            .blobs
            .iter()
            .fold(0u64, |n, b| n.saturating_add(b.size));
        let total = blob_bytes.saturating_add(if integrity.is_some() { covered } else { 0 });
        let mut done = 0;

        if let (Some(t), Some(src)) = (&integrity, self.part(1)) {
            report.integrity_checked = true;
            let mut buf = vec![0u8; t.chunk_size.min(16 << 20) as usize];
            for (i, expected) in t.hashes.iter().enumerate() {
                let start = HEADER_SIZE as u64 + i as u64 * t.chunk_size as u64;
                let len = (covered - i as u64 * t.chunk_size as u64).min(t.chunk_size as u64);
                let mut h = Sha1::new();
                let mut pos = 0;
                let mut ok = true;
                while pos < len {
                    let n = (len - pos).min(buf.len() as u64) as usize;
                    if src.read_exact_at(&mut buf[..n], start + pos).is_err() {
                        ok = false;
                        break;
                    }
                    h.update(&buf[..n]);
                    pos += n as u64;
                }
                let actual: Sha1Hash = h.finalize().into();
                if !ok || actual != *expected {
                    report.add(INTEGRITY, || Problem::Integrity {
                        chunk: i as u64,
                        offset: start,
                    });
                }
                done += len;
                progress(VerifyProgress { done, total });
            }
        }

        for index in 1..=self.image_count() {
            match self.image(index) {
                Ok(tree) => {
                    for id in tree.walk() {
                        let d = &tree.node(id).dentry;
                        let hashes = d
                            .data
                            .iter()
                            .chain(d.reparse_data.iter())
                            .chain(d.efs_data.iter())
                            .chain(d.named_streams.iter().map(|s| &s.hash));
                        for h in hashes {
                            if *h != ZERO_HASH && self.blob(h).is_none() {
                                report.add(MISSING_BLOB, || Problem::MissingBlob {
                                    index,
                                    path: short_path(&tree, id),
                                    hash: *h,
                                });
                            }
                        }
                    }
                }
                Err(error) => report.add(IMAGE, || Problem::Image { index, error }),
            }
        }

        // Every blob, in on-disk order so solid chunks are decoded once.
        let mut order: Vec<usize> = (0..self.blob_table().blobs.len()).collect();
        let reader = self.reader();
        let key = |i: &usize| {
            let b = &self.blob_table().blobs[*i];
            match (b.location, reader.locate(b)) {
                (_, Some((r, off))) => (r.part, r.reshdr.offset, off),
                (BlobLocation::Resource { part, reshdr }, None) => (part, reshdr.offset, 0),
                (BlobLocation::Solid { offset, .. }, None) => (0, u64::MAX, offset),
            }
        };
        order.sort_by_key(key);
        let mut reader = self.reader();
        for i in order {
            let b = self.blob_table().blobs[i];
            let mut last = 0;
            let r = reader.stream_verified(&b, &mut |p| {
                done += p.len() as u64;
                if done - last >= 1 << 20 {
                    last = done;
                    progress(VerifyProgress { done, total });
                }
                Ok(())
            });
            report.blobs += 1;
            report.bytes = report.bytes.saturating_add(b.size);
            if let Err(error) = r {
                report.add(BLOB, || Problem::Blob {
                    hash: b.hash,
                    error,
                });
            }
        }
        progress(VerifyProgress { done: total, total });
        report
    }
}
