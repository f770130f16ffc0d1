//! A read-only FAT32 reader over the synthetic SCSI disk, for the WIM deployment check: the
//! boot sector, cluster chains through the FAT (4 KiB of it cached at a time), directories with
//! long names, whole-file reads that merge contiguous clusters into one request.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::storage::Storvsc;

/// The volume's geometry.
pub struct Fat32 {
    bytes_per_cluster: u32,
    fat_lba: u64,
    data_lba: u64,
    sectors_per_cluster: u64,
    root: u32,
    window: Option<(u64, Vec<u8>)>,
}

/// One directory entry.
pub struct Entry {
    /// The long name (or the 8.3 name).
    pub name: String,
    /// A directory.
    pub dir: bool,
    /// First cluster.
    pub cluster: u32,
    /// Size in bytes (files).
    pub size: u32,
}

const END: u32 = 0x0FFF_FFF8;
const WINDOW: usize = 4096;

impl Fat32 {
    /// The volume in boot sector `bs` (LBA 0), if it is FAT32 with 512-byte sectors.
    pub fn parse(bs: &[u8]) -> Option<Self> {
        if bs.len() < 512 || bs[510..512] != [0x55, 0xAA] || &bs[82..87] != b"FAT32" {
            return None;
        }
        let u16_at = |o: usize| u16::from_le_bytes([bs[o], bs[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([bs[o], bs[o + 1], bs[o + 2], bs[o + 3]]);
        if u16_at(11) != 512 || bs[13] == 0 || bs[16] == 0 {
            return None;
        }
        let spc = u64::from(bs[13]);
        let reserved = u64::from(u16_at(14));
        let fat_sectors = u64::from(u32_at(36));
        Some(Self {
            bytes_per_cluster: (spc * 512) as u32,
            fat_lba: reserved,
            data_lba: reserved + u64::from(bs[16]) * fat_sectors,
            sectors_per_cluster: spc,
            root: u32_at(44),
            window: None,
        })
    }

    /// The root directory's cluster.
    pub fn root(&self) -> u32 {
        self.root
    }

    fn next(&mut self, disk: &mut Storvsc<'_>, cluster: u32) -> u32 {
        let byte = u64::from(cluster) * 4;
        let base = byte / WINDOW as u64 * WINDOW as u64;
        if self.window.as_ref().is_none_or(|(b, _)| *b != base) {
            let mut w = vec![0u8; WINDOW];
            disk.read_at(self.fat_lba * 512 + base, &mut w);
            self.window = Some((base, w));
        }
        let Some((_, w)) = &self.window else {
            return END;
        };
        let at = (byte - base) as usize;
        u32::from_le_bytes([w[at], w[at + 1], w[at + 2], w[at + 3]]) & 0x0FFF_FFFF
    }

    /// The bytes of the chain from `first` (at most `limit`), contiguous runs read at once.
    pub fn read_chain(&mut self, disk: &mut Storvsc<'_>, first: u32, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cluster = first;
        let bpc = self.bytes_per_cluster as usize;
        while (2..END).contains(&cluster) && out.len() < limit {
            // Extend the run while the chain is contiguous (up to 256 KiB per request).
            let start = cluster;
            let mut count = 1u32;
            let mut next = self.next(disk, cluster);
            while next == cluster + 1
                && (count as usize + 1) * bpc <= 256 * 1024
                && (count as usize) * bpc < limit
            {
                cluster = next;
                count += 1;
                next = self.next(disk, cluster);
            }
            let lba = self.data_lba + u64::from(start - 2) * self.sectors_per_cluster;
            let at = out.len();
            out.resize(at + count as usize * bpc, 0);
            disk.read_at(lba * 512, &mut out[at..]);
            cluster = next;
        }
        out.truncate(limit);
        out
    }

    /// The entries of the directory at `cluster` (without `.` and `..`).
    pub fn list(&mut self, disk: &mut Storvsc<'_>, cluster: u32) -> Vec<Entry> {
        let raw = self.read_chain(disk, cluster, 64 * 1024);
        let mut out = Vec::new();
        let mut long: Vec<u16> = Vec::new();
        for e in raw.chunks_exact(32) {
            match e[0] {
                0x00 => break,
                0xE5 => {
                    long.clear();
                    continue;
                }
                _ => {}
            }
            let attr = e[11];
            if attr == 0x0F {
                // A long-name piece: they come last piece first, 13 UTF-16 units each.
                let mut part: Vec<u16> = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                    .iter()
                    .map(|&o| u16::from_le_bytes([e[o], e[o + 1]]))
                    .take_while(|&u| u != 0 && u != 0xFFFF)
                    .collect();
                part.extend_from_slice(&long);
                long = part;
                continue;
            }
            if attr & 0x08 != 0 || e[0] == b'.' {
                long.clear();
                continue;
            }
            let name = if long.is_empty() {
                short_name(e)
            } else {
                char::decode_utf16(long.iter().copied())
                    .map(|c| c.unwrap_or('?'))
                    .collect()
            };
            long.clear();
            out.push(Entry {
                name,
                dir: attr & 0x10 != 0,
                cluster: u32::from(u16::from_le_bytes([e[20], e[21]])) << 16
                    | u32::from(u16::from_le_bytes([e[26], e[27]])),
                size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
            });
        }
        out
    }

    /// The entry at `path` (`a/b/c`) from the root.
    pub fn find(&mut self, disk: &mut Storvsc<'_>, path: &str) -> Option<Entry> {
        let mut dir = self.root;
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            let entry = self.list(disk, dir).into_iter().find(|e| e.name == part)?;
            if parts.peek().is_none() {
                return Some(entry);
            }
            dir = entry.cluster;
        }
        None
    }
}

fn short_name(e: &[u8]) -> String {
    let base = core::str::from_utf8(&e[..8]).unwrap_or("?").trim_end();
    let ext = core::str::from_utf8(&e[8..11]).unwrap_or("").trim_end();
    if ext.is_empty() {
        String::from(base)
    } else {
        alloc::format!("{base}.{ext}")
    }
}
