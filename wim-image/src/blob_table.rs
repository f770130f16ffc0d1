//! The blob ("lookup") table: one 50-byte entry per stored blob, solid resource or image
//! metadata resource.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use zerocopy::FromBytes;

use crate::defs::{BlobEntryDisk, ResourceFlags, SHA1_SIZE, SOLID_RESOURCE_MAGIC_SIZE};
use crate::header::ResHdr;

/// A SHA-1 digest.
pub type Sha1Hash = [u8; SHA1_SIZE];

/// Why a blob table was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobTableError {
    /// The table's size is not a multiple of 50 bytes.
    #[error("blob table of {size} bytes is not a whole number of 50-byte entries")]
    Size {
        /// Its size.
        size: u64,
    },
    /// A blob inside a solid run comes before any solid resource of the run.
    #[error("solid blob entry {index} (table offset {offset}) has no solid resource in its run")]
    SolidBlobWithoutResource {
        /// Entry index.
        index: usize,
        /// Byte offset of the entry in the table.
        offset: usize,
    },
}

/// Where a blob's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobLocation {
    /// A resource of its own (uncompressed, or compressed in chunks).
    Resource {
        /// 1-based part number.
        part: u16,
        /// The resource.
        reshdr: ResHdr,
    },
    /// A range of a solid run (the concatenated uncompressed data of its solid resources).
    Solid {
        /// Index into [`BlobTable::solid_runs`].
        run: u32,
        /// Offset in the run's uncompressed data.
        offset: u64,
    },
}

/// One blob of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob {
    /// SHA-1 of the uncompressed data.
    pub hash: Sha1Hash,
    /// Uncompressed size.
    pub size: u64,
    /// Reference count as stored (not trustworthy; see the format notes).
    pub ref_count: u32,
    /// Whether this is an image metadata resource.
    pub is_metadata: bool,
    /// Where it is.
    pub location: BlobLocation,
}

/// A run of consecutive solid resources whose data form one logical stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SolidRun {
    /// 1-based part number.
    pub part: u16,
    /// The resources in order (their headers are read when the WIM is opened).
    pub resources: Vec<ResHdr>,
}

/// A parsed blob table.
#[derive(Clone, Debug, Default)]
pub struct BlobTable {
    /// Every usable blob, metadata resources included, in table order.
    pub blobs: Vec<Blob>,
    /// Solid runs referenced by [`BlobLocation::Solid`].
    pub solid_runs: Vec<SolidRun>,
    /// Indexes into `blobs` of the image metadata resources, in table (= image) order.
    pub metadata: Vec<u32>,
    /// Number of entries ignored (zero hash or size, duplicates, other parts, unused metadata).
    pub ignored: u32,
    by_hash: BTreeMap<Sha1Hash, u32>,
}

impl BlobTable {
    /// Parses the table of part `part`: entries for other parts, with a zero hash or size, or
    /// repeating the hash of a data blob, are ignored (as wimlib does); so are metadata entries
    /// whose reference count is zero. Every other metadata entry is an image, even when its
    /// hash repeats an earlier image's (identical trees, each stored in its own resource:
    /// [`Wim::open`](crate::Wim::open) refuses entries kept here whose resources overlap).
    pub fn parse(bytes: &[u8], part: u16) -> Result<BlobTable, BlobTableError> {
        let mut t = BlobTable::default();
        t.add_part(bytes, part)?;
        Ok(t)
    }

    /// Adds the entries of another part's table (split WIMs).
    pub fn add_part(&mut self, bytes: &[u8], part: u16) -> Result<(), BlobTableError> {
        let Ok((entries, [])) =
            <[BlobEntryDisk]>::ref_from_prefix_with_elems(bytes, bytes.len() / 50)
        else {
            return Err(BlobTableError::Size {
                size: bytes.len() as u64,
            });
        };
        // The run being collected: (index in solid_runs) while consecutive entries are solid.
        let mut run: Option<u32> = None;
        for (index, e) in entries.iter().enumerate() {
            let reshdr = ResHdr::from_disk(&e.reshdr);
            let solid = reshdr.flags.contains(ResourceFlags::SOLID);
            if !solid {
                run = None;
            }
            if e.part_number.get() != part {
                self.ignored += 1;
                continue;
            }
            if solid && reshdr.uncompressed_size == SOLID_RESOURCE_MAGIC_SIZE {
                let r = *run.get_or_insert_with(|| {
                    self.solid_runs.push(SolidRun {
                        part,
                        resources: Vec::new(),
                    });
                    (self.solid_runs.len() - 1) as u32
                });
                self.solid_runs[r as usize].resources.push(reshdr);
                continue;
            }
            let is_metadata = reshdr.flags.contains(ResourceFlags::METADATA);
            let (size, location) = if solid {
                let Some(r) = run else {
                    return Err(BlobTableError::SolidBlobWithoutResource {
                        index,
                        offset: index * 50,
                    });
                };
                (
                    reshdr.size_in_wim,
                    BlobLocation::Solid {
                        run: r,
                        offset: reshdr.offset,
                    },
                )
            } else {
                (
                    reshdr.uncompressed_size,
                    BlobLocation::Resource { part, reshdr },
                )
            };
            if e.hash == [0; SHA1_SIZE] || size == 0 || (is_metadata && e.ref_count.get() == 0) {
                self.ignored += 1;
                continue;
            }
            // A repeated hash is the same blob stored twice: the first copy serves. Metadata
            // resources are the exception: each is its own image, and two images with
            // identical trees have identical metadata (wimlib writes such files when the same
            // tree is appended again).
            let seen = self.by_hash.contains_key(&e.hash);
            if seen && !is_metadata {
                self.ignored += 1;
                continue;
            }
            let idx = self.blobs.len() as u32;
            self.blobs.push(Blob {
                hash: e.hash,
                size,
                ref_count: e.ref_count.get(),
                is_metadata,
                location,
            });
            if !seen {
                self.by_hash.insert(e.hash, idx);
            }
            if is_metadata {
                self.metadata.push(idx);
            }
        }
        Ok(())
    }

    /// The index of the blob with `hash`.
    pub fn lookup(&self, hash: &Sha1Hash) -> Option<u32> {
        self.by_hash.get(hash).copied()
    }

    /// The blob with `hash`.
    pub fn get(&self, hash: &Sha1Hash) -> Option<&Blob> {
        self.lookup(hash).map(|i| &self.blobs[i as usize])
    }
}
