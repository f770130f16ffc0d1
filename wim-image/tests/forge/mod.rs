//! Forging WIM bytes for the hostile-input suites: reading and replacing the blob table.
#![allow(dead_code)]

/// The entries of the blob table.
pub fn blob_entries(wim: &[u8]) -> Vec<[u8; 50]> {
    let size = u64::from_le_bytes(wim[0x30..0x38].try_into().unwrap()) & ((1 << 56) - 1);
    let offset = u64::from_le_bytes(wim[0x38..0x40].try_into().unwrap()) as usize;
    wim[offset..offset + size as usize]
        .chunks_exact(50)
        .map(|e| e.try_into().unwrap())
        .collect()
}

/// Appends a new blob table holding `entries` and points the header at it (the table is
/// not covered by any hash, so the WIM still opens).
pub fn replace_blob_table(wim: &mut Vec<u8>, entries: &[[u8; 50]]) {
    let at = wim.len() as u64;
    for e in entries {
        wim.extend_from_slice(e);
    }
    let len = wim.len() as u64 - at;
    let flags = wim[0x37];
    wim[0x30..0x38].copy_from_slice(&len.to_le_bytes());
    wim[0x37] = flags;
    wim[0x38..0x40].copy_from_slice(&at.to_le_bytes());
    wim[0x40..0x48].copy_from_slice(&len.to_le_bytes());
}
