//! Writing WIMs: a new file from images built in memory or captured from a directory, and
//! in-place changes ([`inplace`]: append, delete, and [`update`] of an image's tree).
//!
//! ```text
//!  NewImage (inodes, dentries, streams) ──► WimWriter::add_image
//!      streams ─► BlobOut: SHA-1 single-instance store, chunks compressed on N threads
//!      tree    ─► metadata resource (security data + dentries), XML <IMAGE> with statistics
//!  WimWriter::finish ─► blob table, XML (TOTALBYTES), integrity table, final header
//! ```
//!
//! # Write-in-progress protocol
//!
//! Creating: a header with `WRITE_IN_PROGRESS` goes first, then resources, the blob table,
//! the XML document and the optional integrity table; after a [`WriteAt::sync`] the final
//! header (flag cleared) is written and synced.
//!
//! Appending never overwrites a byte of the existing file until the new header is written:
//! the header is first rewritten with `WRITE_IN_PROGRESS` set (all other fields unchanged,
//! so the old images stay readable), new resources and tables go after the old end of the
//! file, then everything is synced and the new header written in one 208-byte write. A crash
//! at any point leaves either the old WIM (possibly flagged, with unreferenced bytes at the
//! end) or the new one.
//!
//! # Progress and cancelling
//!
//! Every call that writes an image's data has a form taking a progress callback
//! ([`WimWriter::add_image_with_progress`] and the others [`progress`] lists), told of the
//! bytes written ([`WriteProgress`]) and able to stop the call ([`WriteError::Cancelled`]).
//! A cancelled append or in-place change is undone as any failure is (the file gets its
//! header and length back); a cancelled new file is left unfinished and its writer refuses
//! to go on ([`WriteError::Poisoned`]).

pub mod config;
mod engine;
pub mod export;
pub mod image;
pub mod inplace;
pub mod progress;
mod resource;
pub mod sink;
pub mod solid;
pub mod split;
mod threads;
pub mod xml;

#[cfg(all(feature = "std", unix))]
pub mod capture;
#[cfg(feature = "std")]
mod file_data;
pub mod update;

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use sha1::{Digest, Sha1};
use zerocopy::little_endian::{U16, U32};
use zerocopy::IntoBytes;

use crate::blob_table::Sha1Hash;
use crate::codec::Codec;
use crate::defs::{
    BlobEntryDisk, HeaderDisk, HeaderFlags, IntegrityHeaderDisk, ResHdrDisk, ResourceFlags,
    WimVersion, HEADER_SIZE, WIM_MAGIC,
};
use crate::header::{check_chunk_size, ResHdr};
use crate::io::{IoError, ReadAt};
pub use crate::mem::ThreadCount;
use crate::wim::OpenError;
use crate::xml::XmlInfo;

use image::{Content, NewImage};
use progress::Meter;
pub use progress::WriteProgress;
use resource::{reshdr_disk, BlobOut, Source};
pub use sink::{SinkError, WriteAt};
pub(crate) use threads::plan_threads;
#[cfg(all(feature = "std", unix))]
pub(crate) use threads::threads;
pub use xml::ImageProps;

/// Bytes covered by each digest of the integrity table (wimlib's choice).
pub const INTEGRITY_CHUNK_SIZE: u32 = 10 * 1024 * 1024;

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The output failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A new WIM was asked for with an all-zero [`WriteOptions::guid`]. Parts of a split
    /// set and `--ref` WIMs are matched by GUID, so a new file needs a unique one: with
    /// `std` the default is one; without `std` there is no source of one, and the caller
    /// must set it.
    #[error("a new WIM needs a unique GUID (WriteOptions::guid is all zeros)")]
    NeedsGuid,
    /// An earlier call on this in-place writer failed (or was cancelled) and the file was
    /// restored; the writer cannot go on.
    #[error("an earlier error rolled the in-place change back")]
    RolledBack,
    /// The progress callback returned [`ControlFlow::Break`]: the call stopped there. See
    /// [`WimWriter::add_image_with_progress`] for what is left of the output.
    #[error("cancelled")]
    Cancelled,
    /// An earlier call on this writer of a new file was cancelled
    /// ([`Cancelled`](Self::Cancelled)): the output is incomplete and the writer refuses
    /// every further call, [`finish`](WimWriter::finish) included. The output is to be
    /// thrown away.
    #[error("an earlier call was cancelled: the output is incomplete")]
    Poisoned,
    /// The existing WIM (appending) could not be opened.
    #[error("the existing WIM cannot be opened")]
    Open(#[source] OpenError),
    /// The existing WIM cannot be modified in place (split, pipable or read-only).
    #[error("the existing WIM cannot be modified in place: {why}")]
    NotModifiable {
        /// Why.
        why: &'static str,
    },
    /// No compressor for this codec is available yet.
    #[error("compression with {codec:?} is not available yet")]
    CodecUnavailable {
        /// The codec.
        codec: Codec,
    },
    /// The codec refused the settings (level, chunk size).
    #[error("the compressor refused the settings")]
    Compressor(#[source] crate::codec::CompressError),
    /// A chunk size the codec does not accept.
    #[error("chunk size {chunk_size} is invalid for {codec:?}")]
    ChunkSize {
        /// The codec.
        codec: Codec,
        /// The chunk size.
        chunk_size: u32,
    },
    /// The image cannot be serialized.
    #[error(transparent)]
    Image(#[from] image::ImageBuildError),
    /// An image with this name exists already.
    #[error("an image named {name:?} already exists")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// More images than a WIM holds, or a boot index naming no image.
    #[error("image index {index} is invalid")]
    ImageIndex {
        /// The index.
        index: u32,
    },
    /// A stream references a blob that neither the output nor the source has.
    #[error("blob {} is not available", crate::read::hex(hash))]
    MissingBlob {
        /// Its hash.
        hash: Sha1Hash,
    },
    /// A blob read from a source did not hash to what its stream says.
    #[error(
        "blob {} read back as {}",
        crate::read::hex(expected),
        crate::read::hex(actual)
    )]
    Hash {
        /// The expected hash.
        expected: Sha1Hash,
        /// What the data hashed to.
        actual: Sha1Hash,
    },
    /// A resource too large for a resource header.
    #[error("resource of {size} bytes is too large")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// Reading a source file failed (capture).
    #[cfg(feature = "std")]
    #[error("{path}")]
    Source {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A source file changed size between scanning and reading (capture).
    #[cfg(feature = "std")]
    #[error("{path}: changed size while being captured")]
    Changed {
        /// The file.
        path: std::path::PathBuf,
    },
    /// Reading a blob of the source WIM (export) failed.
    #[error("reading a source blob failed")]
    Read(#[source] crate::read::ReadError),
    /// An image of the existing WIM (rewriting in place) or of the source (export) could
    /// not be read.
    #[error("image {index} cannot be read")]
    OldImage {
        /// Its 1-based index.
        index: u32,
        /// Why.
        #[source]
        source: crate::wim::ImageError,
    },
    /// An inconsistency in the writer itself.
    #[error("internal error: {what}")]
    Internal {
        /// What.
        what: &'static str,
    },
    /// A buffer sized by the data or the options (a chunk table, a batch of chunks, a solid
    /// chunk, an existing file's blob table) is larger than the memory at hand.
    #[error(transparent)]
    OutOfMemory(#[from] crate::mem::AllocError),
}

/// How to write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// The codec of non-solid resources (`None`: uncompressed). Ignored when appending (the
    /// file's own compression is used).
    pub compression: Option<Codec>,
    /// Uncompressed chunk size (0: wimlib's defaults, 32 KiB for XPRESS and LZX, what Microsoft's
    /// tools need for LZX, and 128 KiB for LZMS).
    pub chunk_size: u32,
    /// Solid output (`wimlib-imagex --solid`): the codec and chunk size (0: the codec's
    /// default, 64 MiB for LZMS, see [`solid::default_solid_chunk_size`]) of the solid
    /// resources that hold the data blobs; the file becomes version 0xE00. Metadata resources
    /// stay non-solid with [`compression`](Self::compression) (LZMS when that is `None`, as
    /// wimlib does). Appending adds a new solid run.
    pub solid: Option<(Codec, u32)>,
    /// Compression level, 1–100 (50: wimlib's default).
    pub level: u32,
    /// Compression threads (0: all cores; at most [`MAX_THREADS`]). Fewer are used when
    /// their compressors and buffers would not fit in memory, whether the count was asked
    /// or defaulted (as wimlib-imagex does): see [`memory_limit`](Self::memory_limit) and
    /// [`WimWriter::compression_threads`].
    pub threads: usize,
    /// The memory, in bytes, the compression threads may take (their compressors, see
    /// [`Compressor::memory_needed`](crate::codec::Compressor::memory_needed), and the
    /// chunk buffers each has in flight) beside the writer's other buffers. `None`: what
    /// the system reports available when the writer is made (Linux: `MemAvailable`);
    /// elsewhere, or without `std`, no limit. Threads are reduced, down to one, until they
    /// fit; the rule is [`ThreadCount`]'s.
    pub memory_limit: Option<u64>,
    /// Called when a writer is made (created, appended to, rebuilt or changed in place)
    /// with fewer compression threads than wanted because of
    /// [`memory_limit`](Self::memory_limit) (wimtool prints a note, as wimlib-imagex
    /// warns "Wanted to use N threads, but limiting to M").
    pub fewer_threads: Option<fn(ThreadCount)>,
    /// Write an integrity table (`--check`); appending keeps an existing one either way.
    pub integrity: bool,
    /// Set the `RP_FIX` header flag (absolute link targets made image-relative at capture).
    pub rp_fix: bool,
    /// The GUID of a new file; must not be all zeros ([`WriteError::NeedsGuid`]). The
    /// default with `std` is derived from the time and the process; without `std` it is all
    /// zeros, so a caller creating a WIM must set one (from its own random source).
    pub guid: [u8; 16],
    /// The time recorded in the XML (FILETIME). The default with `std` is the system
    /// clock's; without `std` it is 0 (1601-01-01), and a caller that has a clock sets it.
    pub now: u64,
    /// Copy a source's blob as it is stored when the source holds it alone in a resource
    /// compressed the way this file compresses (same codec and chunk size; non-solid
    /// output), or left uncompressed in a file that compresses that way, as
    /// `wimlib-imagex export` and `optimize` do: no decompression, no recompression, and no
    /// check of its SHA-1 either. `false`: every blob is decompressed,
    /// checked and compressed again (`--recompress`).
    pub copy_stored: bool,
}

impl Default for WriteOptions {
    /// Uncompressed, 32 KiB chunks, level 50, all cores (as many as fit in the available
    /// memory), no integrity table, `RP_FIX`, blobs copied as stored where possible, and
    /// with `std` the current time and a GUID derived from it and the process. Without
    /// `std` the GUID is all zeros and the time 0: set [`guid`](Self::guid) (and
    /// [`now`](Self::now)) before [`WimWriter::create`], which refuses a zero GUID.
    fn default() -> Self {
        let (guid, now) = guid_and_now();
        WriteOptions {
            compression: None,
            chunk_size: 0,
            solid: None,
            level: 50,
            threads: 0,
            memory_limit: None,
            fewer_threads: None,
            integrity: false,
            rp_fix: true,
            guid,
            now,
            copy_stored: true,
        }
    }
}

#[cfg(feature = "std")]
fn guid_and_now() -> ([u8; 16], u64) {
    let now = file_data::filetime_now();
    let mut h = Sha1::new();
    h.update(now.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let d: [u8; 20] = h.finalize().into();
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&d[..16]);
    (guid, now)
}

#[cfg(not(feature = "std"))]
fn guid_and_now() -> ([u8; 16], u64) {
    ([0; 16], 0)
}

/// The most compression (or decoding) threads used, whatever is asked: each holds a
/// compressor of its own (from 1 MiB to 9 GiB, see
/// [`Compressor::memory_needed`](crate::codec::Compressor::memory_needed)), and more
/// threads than cores gain nothing. 100,000 threads once aborted on allocation. Fewer are
/// used when they would not fit in memory ([`WriteOptions::memory_limit`]).
pub const MAX_THREADS: usize = 64;

/// Reads blobs that a new image references by hash but the output lacks (export).
pub trait BlobProvider {
    /// Fills `buf` from `offset` of the blob `hash` (of `size` bytes).
    fn read_at(
        &mut self,
        hash: &Sha1Hash,
        size: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), WriteError>;

    /// How the blob `hash` is stored, when it fills a non-solid resource of its own (not a
    /// pipable one), so that a writer with the same compression can copy that resource as it
    /// is (see [`WriteOptions::copy_stored`]). The default: never.
    fn stored(&mut self, hash: &Sha1Hash) -> Option<StoredBlob> {
        let _ = hash;
        None
    }

    /// Fills `buf` from `offset` of the stored bytes of `hash` (a [`stored`](Self::stored)
    /// resource: its chunk table and compressed chunks, or its bytes if uncompressed).
    fn read_stored(
        &mut self,
        hash: &Sha1Hash,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), WriteError> {
        let _ = (offset, buf);
        Err(WriteError::MissingBlob { hash: *hash })
    }
}

/// A blob alone in a resource of its source, as [`BlobProvider::stored`] describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBlob {
    /// Bytes the resource takes in its file.
    pub stored_size: u64,
    /// Its codec and chunk size (`None`: stored uncompressed).
    pub compression: Option<(Codec, u32)>,
    /// The codec and chunk size of the file holding it (`None`: an uncompressed file).
    pub file_compression: Option<(Codec, u32)>,
}

/// A provider that has no blobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBlobs;

impl BlobProvider for NoBlobs {
    fn read_at(&mut self, hash: &Sha1Hash, _: u64, _: u64, _: &mut [u8]) -> Result<(), WriteError> {
        Err(WriteError::MissingBlob { hash: *hash })
    }
}

/// Lets the reader open what a sink holds.
struct ReadBack<'a, W>(&'a W);

impl<W: WriteAt> ReadAt for ReadBack<'_, W> {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        let eof = IoError::Eof {
            offset,
            len: buf.len(),
            size: self.0.size(),
        };
        match self.0.read_back(buf, offset) {
            Ok(()) => Ok(()),
            #[cfg(feature = "std")]
            Err(SinkError::Os { source, .. }) => Err(IoError::Os { offset, source }),
            Err(SinkError::Device {
                offset,
                code,
                reason,
            }) => Err(IoError::Device {
                offset,
                code,
                reason,
            }),
            Err(_) => Err(eof),
        }
    }
}

/// A WIM being written: a new file, or an existing one being appended to or rewritten in
/// place (see [`inplace`]).
#[derive(Debug)]
pub struct WimWriter<W> {
    blobs: BlobOut<W>,
    header: HeaderDisk,
    xml: XmlInfo,
    /// The images' names (those that have one), to refuse a second image of a name.
    names: BTreeSet<String>,
    /// Every image's metadata resource and SHA-1, in image order (`None`: an image still to
    /// be replaced).
    metadata: Vec<Option<(ResHdr, Sha1Hash)>>,
    /// Drop unreferenced blobs from the table (their references were recounted).
    prune: bool,
    integrity: bool,
    now: u64,
    /// [`WriteOptions::copy_stored`].
    copy_stored: bool,
    /// For a file changed in place: what undoes the change if it fails.
    rollback: Option<inplace::Rollback>,
    /// The compression threads wanted and used.
    threads: ThreadCount,
    /// A call was cancelled: a new file is left incomplete (in place, `rollback` says so).
    poisoned: bool,
}

impl<W: WriteAt> WimWriter<W> {
    /// Starts a new WIM in `out` (which should be empty; it is cut to the written size at the
    /// end).
    ///
    /// # Errors
    /// [`WriteError::NeedsGuid`] for an all-zero [`WriteOptions::guid`] (the default
    /// without `std`); an invalid chunk size or codec; the output failing.
    pub fn create(out: W, opts: &WriteOptions) -> Result<Self, WriteError> {
        if opts.guid == [0; 16] {
            return Err(WriteError::NeedsGuid);
        }
        let codec = match (opts.compression, opts.solid) {
            (None, Some(_)) => Some(Codec::Lzms),
            (c, _) => c,
        };
        let compression = match codec {
            None => None,
            Some(codec) => {
                let chunk = if opts.chunk_size == 0 && codec == Codec::Lzms {
                    // wimlib's non-solid LZMS default (also the metadata's in a solid file).
                    1 << 17
                } else if opts.chunk_size == 0 {
                    32768
                } else {
                    opts.chunk_size
                };
                check_chunk_size(codec, chunk).map_err(|()| WriteError::ChunkSize {
                    codec,
                    chunk_size: chunk,
                })?;
                Some((codec, chunk))
            }
        };
        let mut flags = HeaderFlags::empty();
        if opts.rp_fix {
            flags |= HeaderFlags::RP_FIX;
        }
        let version = match compression {
            Some((c, _)) => {
                flags |= HeaderFlags::COMPRESSION
                    | match c {
                        Codec::Xpress => HeaderFlags::COMPRESS_XPRESS,
                        Codec::Lzx => HeaderFlags::COMPRESS_LZX,
                        Codec::Lzms => HeaderFlags::COMPRESS_LZMS,
                    };
                if c == Codec::Lzms || opts.solid.is_some() {
                    WimVersion::SOLID
                } else {
                    WimVersion::DEFAULT
                }
            }
            None => WimVersion::DEFAULT,
        };
        let zero = ResHdrDisk::default();
        let header = HeaderDisk {
            magic: WIM_MAGIC,
            header_size: U32::new(HEADER_SIZE as u32),
            version: U32::new(version.0),
            flags: U32::new(flags.bits()),
            chunk_size: U32::new(compression.map_or(0, |(_, c)| c)),
            guid: opts.guid,
            part_number: U16::new(1),
            total_parts: U16::new(1),
            image_count: U32::new(0),
            blob_table: zero,
            xml: zero,
            boot_metadata: zero,
            boot_index: U32::new(0),
            integrity: zero,
            unused: [0; 60],
        };
        let threads = plan_threads(opts, compression);
        let mut blobs = BlobOut::new(
            out,
            HEADER_SIZE as u64,
            compression,
            (opts.level, threads.used),
            true,
        )?;
        if let Some((codec, chunk)) = opts.solid {
            blobs.solid = Some(solid::SolidOut::new(
                codec,
                chunk,
                opts.level,
                threads.used,
            )?);
        }
        let mut wip = header;
        wip.flags
            .set(flags.bits() | HeaderFlags::WRITE_IN_PROGRESS.bits());
        blobs.write_at(wip.as_bytes(), 0)?;
        Ok(WimWriter {
            blobs,
            header,
            xml: xml::empty_document(),
            names: BTreeSet::new(),
            metadata: Vec::new(),
            prune: false,
            integrity: opts.integrity,
            now: opts.now,
            copy_stored: opts.copy_stored,
            rollback: None,
            threads,
            poisoned: false,
        })
    }

    /// Opens the WIM in `out` to append images in place. Its compression and chunk size are
    /// kept; `opts` gives threads, level, time and whether to add an integrity table.
    pub fn append(out: W, opts: &WriteOptions) -> Result<Self, WriteError> {
        Self::open_in_place(out, opts, None)
    }

    /// The compression threads wanted ([`WriteOptions::threads`]) and used: fewer when
    /// their compressors and buffers would not fit in memory
    /// ([`WriteOptions::memory_limit`]). Fixed when the writer is made.
    pub fn compression_threads(&self) -> ThreadCount {
        self.threads
    }

    /// The number of write calls made to the output so far.
    pub fn writes(&self) -> u64 {
        self.blobs.writes
    }

    /// Writes the image's streams (reading blobs the output lacks from `provider`), its
    /// metadata resource and its XML element; returns its 1-based index.
    ///
    /// In place, a failure restores the file's header and length (and the writer refuses
    /// any further call). [`add_image_with_progress`](Self::add_image_with_progress) reports
    /// progress and can be cancelled.
    pub fn add_image(
        &mut self,
        image: &mut NewImage,
        props: &ImageProps,
        provider: &mut dyn BlobProvider,
    ) -> Result<u32, WriteError> {
        self.add_image_with_progress(image, props, provider, &mut progress::ignore)
    }

    /// [`add_image`](Self::add_image), telling `progress` how much of the image's data is
    /// written (see [`WriteProgress`]: every [`progress::REPORT_STEP`] bytes read, and
    /// once all are). Returning [`ControlFlow::Break`] stops the call at that report with
    /// [`WriteError::Cancelled`]; compression threads drop the work queued and nothing more
    /// is written.
    ///
    /// # After a cancel
    ///
    /// * A **new file** ([`create`](Self::create)) is left incomplete: its header is the
    ///   provisional one (`WRITE_IN_PROGRESS` set, no blob table, no XML: no image can be
    ///   read from it) and the writer is poisoned: every later call,
    ///   [`finish`](Self::finish) and [`set_boot_index`](Self::set_boot_index) included,
    ///   fails with [`WriteError::Poisoned`]. Throw the output away (wimtool writes a new
    ///   file beside its destination and renames it only once finished).
    /// * A file changed **in place** ([`append`](Self::append), [`rewrite`](Self::rewrite)),
    ///   as after any failure, gets its original header and length back (the new data
    ///   after its old end are cut off; nothing before was written but the header), so it
    ///   is byte for byte the file it was and opens as before. The writer refuses every
    ///   later call with [`WriteError::RolledBack`]. Images added by earlier calls on the
    ///   same writer are lost with it: they were to be committed by `finish`.
    ///
    /// Cancelling at the final report (`done == total`) still cancels: the image's
    /// metadata and XML are not written.
    pub fn add_image_with_progress(
        &mut self,
        image: &mut NewImage,
        props: &ImageProps,
        provider: &mut dyn BlobProvider,
        progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
    ) -> Result<u32, WriteError> {
        self.begin()?;
        let r = self.add_image_inner(image, props, provider, progress);
        self.undo_on_error(r)
    }

    fn add_image_inner(
        &mut self,
        image: &mut NewImage,
        props: &ImageProps,
        provider: &mut dyn BlobProvider,
        progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
    ) -> Result<u32, WriteError> {
        if !props.name.is_empty() && self.names.contains(&props.name) {
            return Err(WriteError::DuplicateName {
                name: props.name.clone(),
            });
        }
        let index = self.metadata.len() as u32 + 1;
        if index > crate::header::MAX_IMAGES {
            return Err(WriteError::ImageIndex { index });
        }
        let meta = self.write_tree(image, provider, index, progress)?;
        self.metadata.push(Some(meta));
        let stats = image.stats();
        xml::push_image(
            &mut self.xml,
            xml::image_element(index, props, &stats, self.now),
        );
        if !props.name.is_empty() {
            self.names.insert(props.name.clone());
        }
        Ok(index)
    }

    /// Writes the image's streams and its metadata resource, telling `progress` (as image
    /// `index`) of the streams' data.
    fn write_tree(
        &mut self,
        image: &mut NewImage,
        provider: &mut dyn BlobProvider,
        index: u32,
        progress: &mut dyn FnMut(WriteProgress) -> ControlFlow<()>,
    ) -> Result<(ResHdr, Sha1Hash), WriteError> {
        let refs = image.stream_refs();
        let order = if self.blobs.solid.is_some() {
            image.solid_order()
        } else {
            (0..image.streams.len()).collect()
        };
        let shared = self.shared_sizes(image, &refs);
        // What the progress counts: every stream with data, except one naming by its hash a
        // blob the output has, or one named by a stream written before it (both only add a
        // reference). "Before" is in the order written (solid output sorts the streams), so
        // the stream whose data is read is the one counted, and its reads report.
        let mut named = BTreeSet::new();
        let mut counted = alloc::vec![false; image.streams.len()];
        for &i in &order {
            counted[i] = refs[i] > 0
                && match &image.streams[i].content {
                    Content::Blob(h) => !self.blobs.has(h) && named.insert(*h),
                    _ => true,
                };
        }
        let (total, blobs) = image
            .streams
            .iter()
            .zip(&counted)
            .filter(|&(_, &c)| c)
            .fold((0u64, 0u64), |(t, n), (st, _)| {
                (t.saturating_add(st.size), n + 1)
            });
        let mut meter = Meter::new(progress, index, total, blobs);
        for i in order {
            if refs[i] == 0 {
                continue;
            }
            let st = &mut image.streams[i];
            let dup = shared.binary_search(&st.size).is_ok();
            let m = if counted[i] {
                meter.begin_stream(st.size);
                Some(&mut meter)
            } else {
                None
            };
            let hash = self.write_stream(st.size, &st.content, refs[i], dup, provider, m)?;
            st.hash = Some(hash);
            if counted[i] {
                meter.end_stream()?;
            }
        }
        // Small blobs still queued are written before the final report.
        self.blobs.flush_deferred()?;
        meter.finish()?;
        let meta = image.serialize()?;
        self.blobs
            .write_resource(&mut Source::slice(&meta), ResourceFlags::METADATA)
    }

    /// The sizes (sorted) of the image's streams that files provide and that another
    /// stream of the image, or a blob the output holds, also has: such a stream may be a
    /// duplicate, so a file too large to be read whole is hashed before it is written.
    fn shared_sizes(&self, image: &NewImage, refs: &[u32]) -> Vec<u64> {
        let mut sizes: Vec<u64> = image
            .streams
            .iter()
            .zip(refs)
            .filter(|&(_, &r)| r > 0)
            .map(|(s, _)| s.size)
            .collect();
        sizes.extend(self.blobs.entries.iter().filter_map(resource::blob_size));
        sizes.sort_unstable();
        let mut shared: Vec<u64> = sizes
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        shared.dedup();
        shared
    }

    /// Writes one stream, telling `meter` (if the progress counts it) of its bytes.
    fn write_stream(
        &mut self,
        size: u64,
        content: &Content,
        refs: u32,
        // Only files read from disk (`std`) use it.
        #[cfg_attr(not(feature = "std"), allow(unused_variables))] shared_size: bool,
        provider: &mut dyn BlobProvider,
        mut meter: Option<&mut Meter<'_>>,
    ) -> Result<Sha1Hash, WriteError> {
        match content {
            Content::Bytes(b) => {
                let mut tick = |n| meter.as_mut().map_or(Ok(()), |m| m.stored(n));
                let src = Source::slice(b).ticking(Some(&mut tick));
                self.blobs.add_blob(src, refs)
            }
            Content::Blob(h) => {
                if self.blobs.add_ref(h, refs) {
                    return Ok(*h);
                }
                if self.copy_stored && self.blobs.solid.is_none() {
                    if let Some(st) = provider.stored(h) {
                        // The same compression, or a resource its writer left uncompressed
                        // (it did not shrink) in a file compressed the way this one is.
                        let out = self.blobs.compression;
                        let same = st.compression == out
                            || (st.compression.is_none() && st.file_compression == out);
                        if same {
                            self.copy_stored_blob(h, size, st, refs, provider, meter)?;
                            return Ok(*h);
                        }
                    }
                }
                let mut at = 0u64;
                let mut fill = |buf: &mut [u8]| {
                    provider.read_at(h, size, at, buf)?;
                    at += buf.len() as u64;
                    Ok(())
                };
                let mut tick = |n| meter.as_mut().map_or(Ok(()), |m| m.stored(n));
                let src = Source::reader(size, &mut fill).ticking(Some(&mut tick));
                let got = self.blobs.add_blob(src, refs)?;
                if got != *h {
                    return Err(WriteError::Hash {
                        expected: *h,
                        actual: got,
                    });
                }
                Ok(got)
            }
            #[cfg(feature = "std")]
            Content::File(path) => {
                file_data::write_file(&mut self.blobs, path, size, refs, shared_size, meter)
            }
        }
    }

    /// Copies the resource of blob `h` (`size` bytes) as its source stores it.
    fn copy_stored_blob(
        &mut self,
        h: &Sha1Hash,
        size: u64,
        st: StoredBlob,
        refs: u32,
        provider: &mut dyn BlobProvider,
        mut meter: Option<&mut Meter<'_>>,
    ) -> Result<(), WriteError> {
        const STEP: u64 = 1 << 20;
        self.blobs.flush_deferred()?;
        let start = self.blobs.pos;
        let mut buf = alloc::vec![0u8; STEP.min(st.stored_size) as usize];
        let mut at = 0u64;
        // The blob's bytes counted so far, in proportion to the stored bytes copied.
        let mut counted = 0u64;
        while at < st.stored_size {
            let n = STEP.min(st.stored_size - at) as usize;
            provider.read_stored(h, at, &mut buf[..n])?;
            self.blobs.write_at(&buf[..n], start + at)?;
            at += n as u64;
            if let Some(m) = meter.as_mut() {
                let upto = (u128::from(size) * u128::from(at) / u128::from(st.stored_size)) as u64;
                m.stored(upto - counted)?;
                counted = upto;
            }
        }
        self.blobs.pos = start + st.stored_size;
        let flags = if st.compression.is_some() {
            ResourceFlags::COMPRESSED
        } else {
            ResourceFlags::empty()
        };
        let reshdr = ResHdr {
            size_in_wim: st.stored_size,
            flags,
            offset: start,
            uncompressed_size: size,
        };
        self.blobs.push_entry(reshdr, *h, refs);
        Ok(())
    }

    /// Marks image `index` (1-based; 0 for none) as the bootable one. Refused, as every
    /// call, by a writer that cannot go on ([`WriteError::RolledBack`],
    /// [`WriteError::Poisoned`]).
    pub fn set_boot_index(&mut self, index: u32) -> Result<(), WriteError> {
        self.usable()?;
        if index as usize > self.metadata.len() {
            return Err(WriteError::ImageIndex { index });
        }
        self.header.boot_index.set(index);
        Ok(())
    }

    /// Writes the blob table, the XML document and the integrity table, then commits the
    /// header. Returns the output. In place, a failure restores the file's header and
    /// length.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.begin()?;
        let r = self.finish_inner();
        self.undo_on_error(r)?;
        Ok(self.blobs.out)
    }

    fn finish_inner(&mut self) -> Result<(), WriteError> {
        self.blobs.flush_deferred()?;
        self.blobs.finish_solid()?;
        let mut metadata = Vec::with_capacity(self.metadata.len());
        for m in &self.metadata {
            let (r, hash) = m.ok_or(WriteError::Internal {
                what: "an image to replace was not written",
            })?;
            metadata.push(BlobEntryDisk {
                reshdr: reshdr_disk(&r),
                part_number: U16::new(1),
                ref_count: U32::new(1),
                hash,
            });
        }
        let table = self.blobs.table_bytes(self.prune, &metadata);
        let table = self.blobs.write_raw(&table, ResourceFlags::METADATA)?;
        let table_end = table.offset + table.size_in_wim;
        xml::set_total_bytes(&mut self.xml, table_end);
        let doc = xml::encode(&self.xml);
        let xml = self.blobs.write_raw(&doc, ResourceFlags::METADATA)?;
        let integrity = if self.integrity {
            let t = integrity_table(&self.blobs.out, table_end)?;
            self.blobs.write_raw(&t, ResourceFlags::empty())?
        } else {
            ResHdr::default()
        };
        let end = self.blobs.pos;
        if self.blobs.out.size() > end {
            self.blobs.out.set_len(end)?;
        }
        let h = &mut self.header;
        h.image_count.set(metadata.len() as u32);
        h.blob_table = reshdr_disk(&table);
        h.xml = reshdr_disk(&xml);
        h.integrity = reshdr_disk(&integrity);
        h.boot_metadata = match (h.boot_index.get() as usize).checked_sub(1) {
            Some(i) => metadata.get(i).map(|e| e.reshdr).unwrap_or_default(),
            None => ResHdrDisk::default(),
        };
        h.flags
            .set(h.flags.get() & !HeaderFlags::WRITE_IN_PROGRESS.bits());
        let bytes = self.header;
        self.blobs.out.sync()?;
        self.blobs.write_at(bytes.as_bytes(), 0)?;
        self.blobs.out.sync()?;
        Ok(())
    }
}

/// Builds the integrity table over `[208, end)` of what `out` holds.
fn integrity_table<W: WriteAt>(out: &W, end: u64) -> Result<Vec<u8>, WriteError> {
    let start = HEADER_SIZE as u64;
    let chunk = INTEGRITY_CHUNK_SIZE as u64;
    let n = (end - start).div_ceil(chunk);
    let mut t = Vec::with_capacity(12 + 20 * n as usize);
    let h = IntegrityHeaderDisk {
        size: U32::new(12 + 20 * n as u32),
        num_entries: U32::new(n as u32),
        chunk_size: U32::new(INTEGRITY_CHUNK_SIZE),
    };
    t.extend_from_slice(h.as_bytes());
    let mut buf = alloc::vec![0u8; 1 << 20];
    for i in 0..n {
        let from = start + i * chunk;
        let to = (from + chunk).min(end);
        let mut hasher = Sha1::new();
        let mut at = from;
        while at < to {
            let len = ((to - at) as usize).min(buf.len());
            out.read_back(&mut buf[..len], at)?;
            hasher.update(&buf[..len]);
            at += len as u64;
        }
        let d: Sha1Hash = hasher.finalize().into();
        t.extend_from_slice(&d);
    }
    Ok(t)
}
