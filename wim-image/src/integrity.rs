//! The integrity table: SHA-1 digests of fixed-size chunks of the file from the end of the
//! header to the end of the blob table.

use alloc::vec::Vec;

use zerocopy::FromBytes;

use crate::blob_table::Sha1Hash;
use crate::defs::{IntegrityHeaderDisk, SHA1_SIZE};

/// Why an integrity table was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// Header or size fields inconsistent with the table's length.
    #[error("integrity table at offset {offset} is malformed: {what}")]
    Malformed {
        /// The table's file offset.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
}

/// A parsed integrity table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityTable {
    /// Bytes covered per digest.
    pub chunk_size: u32,
    /// One digest per chunk.
    pub hashes: Vec<Sha1Hash>,
}

impl IntegrityTable {
    /// Parses the table (`offset`: its file offset, for errors) covering `covered` bytes.
    pub fn parse(
        bytes: &[u8],
        offset: u64,
        covered: u64,
    ) -> Result<IntegrityTable, IntegrityError> {
        let bad = |what| IntegrityError::Malformed { offset, what };
        let Ok((h, rest)) = IntegrityHeaderDisk::read_from_prefix(bytes) else {
            return Err(bad("shorter than its header"));
        };
        let n = h.num_entries.get() as u64;
        let size = h.size.get() as u64;
        if size != 12 + n * SHA1_SIZE as u64 || size > bytes.len() as u64 {
            return Err(bad("size field does not match the entry count"));
        }
        let chunk_size = h.chunk_size.get();
        if chunk_size == 0 {
            return Err(bad("zero chunk size"));
        }
        if covered.div_ceil(chunk_size as u64) != n {
            return Err(bad("entry count does not cover the file"));
        }
        let hashes = rest[..n as usize * SHA1_SIZE]
            .chunks_exact(SHA1_SIZE)
            .map(|c| c.try_into().unwrap_or([0; SHA1_SIZE]))
            .collect();
        Ok(IntegrityTable { chunk_size, hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let mut b = Vec::new();
        b.extend_from_slice(&(12u32 + 40).to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1000u32.to_le_bytes());
        b.extend_from_slice(&[1; 40]);
        let t = IntegrityTable::parse(&b, 0, 1500).unwrap();
        assert_eq!(t.hashes.len(), 2);
        assert!(IntegrityTable::parse(&b, 0, 2500).is_err());
        assert!(IntegrityTable::parse(&b[..30], 0, 1500).is_err());
    }
}
