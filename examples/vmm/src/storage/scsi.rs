//! A SCSI direct-access disk (LUN 0 of target 0, path 0) over any [`Disk`]: the command set a
//! Linux guest sends to a Hyper-V disk — INQUIRY (standard and VPD 0x00/0x80/0x83/0xB0/0xB1),
//! TEST UNIT READY, REPORT LUNS, READ CAPACITY(10)/(16), MODE SENSE(6)/(10) with the caching
//! page, READ/WRITE(10)/(16), SYNCHRONIZE CACHE(10)/(16), REQUEST SENSE — answering anything
//! else with CHECK CONDITION / ILLEGAL REQUEST and autosense.
//!
//! [`ScsiDisk::execute`] works on a host-side buffer: the storvsp glue copies the guest's
//! buffer in before a write and out after a read.

use vhd_format::Disk;
use vmbus_ring::storvsc::host::ScsiOutcome;
use vmbus_ring::storvsc::{sense_key, ReadCapacity16, ScsiRequest, SenseData, SrbStatus};
use zerocopy::byteorder::big_endian::{U16 as BeU16, U32 as BeU32, U64 as BeU64};
use zerocopy::{FromZeros, IntoBytes};

/// Logical block size.
pub const BLOCK: u64 = 512;

/// A disk behind LUN 0.
pub struct ScsiDisk<D: Disk> {
    /// `None` only while a snapshot swaps the disk (commands then fail with a hardware error).
    disk: Option<D>,
    serial: String,
    /// Sense of the last failed command, for REQUEST SENSE.
    pending_sense: Option<SenseData>,
    /// Bytes read and written, commands run.
    pub stats: ScsiStats,
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScsiStats {
    /// READ commands.
    pub reads: u64,
    /// WRITE commands.
    pub writes: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Commands that ended in CHECK CONDITION.
    pub errors: u64,
}

fn illegal(asc: u8) -> ScsiOutcome {
    ScsiOutcome::check_condition(SenseData::new(sense_key::ILLEGAL_REQUEST, asc, 0))
}

/// Copies `data` into the front of `out`, limited by the allocation length; returns the bytes
/// moved.
fn reply(out: &mut [u8], alloc_len: usize, data: &[u8]) -> ScsiOutcome {
    let n = data.len().min(alloc_len).min(out.len());
    out[..n].copy_from_slice(&data[..n]);
    ScsiOutcome::good(n as u32)
}

/// The disk is being swapped.
fn detached() -> ScsiOutcome {
    ScsiOutcome::check_condition(SenseData::new(sense_key::HARDWARE_ERROR, 0x3E, 0))
}

impl<D: Disk> ScsiDisk<D> {
    /// LUN 0 over `disk` (its size is rounded down to whole blocks).
    pub fn new(disk: D, serial: &str) -> Self {
        Self {
            disk: Some(disk),
            serial: serial.to_owned(),
            pending_sense: None,
            stats: ScsiStats::default(),
        }
    }

    /// Blocks on the disk.
    pub fn blocks(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.size() / BLOCK)
    }

    /// Makes completed writes durable.
    pub fn flush(&mut self) -> Result<(), vhd_format::DiskError> {
        self.disk.as_mut().map_or(Ok(()), Disk::flush)
    }

    /// The disk.
    pub fn disk_mut(&mut self) -> Option<&mut D> {
        self.disk.as_mut()
    }

    /// Takes the disk out (commands fail until [`ScsiDisk::put_disk`]).
    pub fn take_disk(&mut self) -> Option<D> {
        self.disk.take()
    }

    /// Puts a disk (back) behind the LUN.
    pub fn put_disk(&mut self, disk: D) {
        self.disk = Some(disk);
    }

    /// Runs `request`'s CDB with `data` as the transfer buffer (`data.len()` =
    /// `data_transfer_length`).
    pub fn execute(&mut self, request: &ScsiRequest, data: &mut [u8]) -> ScsiOutcome {
        let cdb = request.cdb();
        let outcome = if request.path_id != 0 || request.target_id != 0 || request.lun != 0 {
            self.absent(cdb, data)
        } else {
            self.run(cdb, data)
        };
        if outcome.srb_status != SrbStatus::SUCCESS {
            self.stats.errors += 1;
            self.pending_sense = outcome.sense;
        }
        outcome
    }

    /// A LUN that does not exist: INQUIRY says "no logical unit" (peripheral qualifier 3) so
    /// Linux does not invent a disk; REPORT LUNS lists LUN 0; anything else is INVALID_LUN.
    fn absent(&mut self, cdb: &[u8], data: &mut [u8]) -> ScsiOutcome {
        match cdb.first() {
            Some(0x12) if cdb.get(1).is_some_and(|b| b & 1 == 0) => {
                let mut inq = [0u8; 36];
                inq[0] = 0x7F;
                inq[2] = 5;
                inq[3] = 2;
                inq[4] = 31;
                reply(data, be16(cdb, 3), &inq)
            }
            Some(0xA0) => self.report_luns(cdb, data),
            _ => ScsiOutcome {
                srb_status: SrbStatus::INVALID_LUN,
                scsi_status: 0,
                sense: None,
                transferred: 0,
            },
        }
    }

    fn run(&mut self, cdb: &[u8], data: &mut [u8]) -> ScsiOutcome {
        let Some(&op) = cdb.first() else {
            return illegal(0x20);
        };
        let need = |n: usize| cdb.len() >= n;
        match op {
            0x00 => ScsiOutcome::good(0),
            0x03 if need(6) => {
                let sense = self
                    .pending_sense
                    .take()
                    .unwrap_or_else(|| SenseData::new(sense_key::NO_SENSE, 0, 0));
                reply(data, usize::from(cdb[4]), sense.as_bytes())
            }
            0x12 if need(6) => self.inquiry(cdb, data),
            0x1A if need(6) => self.mode_sense(cdb, data, false),
            0x5A if need(10) => self.mode_sense(cdb, data, true),
            0x25 if need(10) => {
                let last = self.blocks().saturating_sub(1);
                let mut r = [0u8; 8];
                r[..4].copy_from_slice(&u32::try_from(last).unwrap_or(u32::MAX).to_be_bytes());
                r[4..].copy_from_slice(&(BLOCK as u32).to_be_bytes());
                reply(data, 8, &r)
            }
            0x9E if need(16) && cdb[1] & 0x1F == 0x10 => {
                let mut r = ReadCapacity16::new_zeroed();
                r.last_lba = BeU64::new(self.blocks().saturating_sub(1));
                r.block_length = BeU32::new(BLOCK as u32);
                reply(data, be32(cdb, 10), r.as_bytes())
            }
            0xA0 if need(12) => self.report_luns(cdb, data),
            0x28 | 0x2A if need(10) => {
                let lba = u64::from(u32::from_be_bytes([cdb[2], cdb[3], cdb[4], cdb[5]]));
                self.rw(
                    op == 0x2A,
                    lba,
                    u64::from(u16::from_be_bytes([cdb[7], cdb[8]])),
                    data,
                )
            }
            0x88 | 0x8A if need(16) => {
                let lba = u64::from_be_bytes(cdb[2..10].try_into().unwrap_or_default());
                self.rw(op == 0x8A, lba, u64::from(be32(cdb, 10) as u32), data)
            }
            0x35 | 0x91 => match self.flush() {
                Ok(()) => ScsiOutcome::good(0),
                Err(_) => {
                    ScsiOutcome::check_condition(SenseData::new(sense_key::MEDIUM_ERROR, 0x03, 0))
                }
            },
            _ => illegal(0x20),
        }
    }

    fn rw(&mut self, write: bool, lba: u64, blocks: u64, data: &mut [u8]) -> ScsiOutcome {
        let Some(end) = lba.checked_add(blocks) else {
            return illegal(0x21);
        };
        if end > self.blocks() {
            return illegal(0x21);
        }
        let len = blocks * BLOCK;
        if len > data.len() as u64 {
            // The buffer is shorter than the blocks the CDB names.
            let mut o = illegal(0x24);
            o.srb_status = SrbStatus::DATA_OVERRUN;
            return o;
        }
        let buf = &mut data[..len as usize];
        let Some(disk) = self.disk.as_mut() else {
            return detached();
        };
        let result = if write {
            self.stats.writes += 1;
            self.stats.bytes_written += len;
            disk.write_at(lba * BLOCK, buf)
        } else {
            self.stats.reads += 1;
            self.stats.bytes_read += len;
            disk.read_at(lba * BLOCK, buf)
        };
        match result {
            Ok(()) => ScsiOutcome::good(len as u32),
            Err(_) if write => {
                ScsiOutcome::check_condition(SenseData::new(sense_key::MEDIUM_ERROR, 0x03, 0))
            }
            Err(_) => {
                ScsiOutcome::check_condition(SenseData::new(sense_key::MEDIUM_ERROR, 0x11, 0))
            }
        }
    }

    fn report_luns(&self, cdb: &[u8], data: &mut [u8]) -> ScsiOutcome {
        let mut r = [0u8; 16];
        r[..4].copy_from_slice(&8u32.to_be_bytes());
        reply(data, be32(cdb, 6), &r)
    }

    fn inquiry(&self, cdb: &[u8], data: &mut [u8]) -> ScsiOutcome {
        let alloc = be16(cdb, 3);
        if cdb[1] & 1 == 0 {
            if cdb[2] != 0 || cdb[1] & 2 != 0 {
                return illegal(0x24);
            }
            let mut inq = [0u8; 36];
            inq[2] = 5; // SPC-3
            inq[3] = 2;
            inq[4] = 31;
            inq[7] = 2; // command queueing
            inq[8..16].copy_from_slice(b"Msft    ");
            inq[16..32].copy_from_slice(b"Virtual Disk    ");
            inq[32..36].copy_from_slice(b"1.0 ");
            return reply(data, alloc, &inq);
        }
        let mut page = vec![0u8, cdb[2], 0, 0];
        match cdb[2] {
            0x00 => page.extend_from_slice(&[0x00, 0x80, 0x83, 0xB0, 0xB1]),
            0x80 => page.extend_from_slice(self.serial.as_bytes()),
            0x83 => {
                // One T10 vendor-id designator: "Msft    " + the serial.
                let id: Vec<u8> = b"Msft    "
                    .iter()
                    .chain(self.serial.as_bytes())
                    .copied()
                    .collect();
                page.extend_from_slice(&[0x02, 0x01, 0x00, id.len() as u8]);
                page.extend_from_slice(&id);
            }
            0xB0 => {
                let mut b0 = [0u8; 0x3C];
                // Maximum and optimal transfer length in blocks (256 KiB).
                b0[4..8].copy_from_slice(&BeU32::new(512).to_bytes());
                b0[8..12].copy_from_slice(&BeU32::new(512).to_bytes());
                page.extend_from_slice(&b0);
            }
            0xB1 => {
                let mut b1 = [0u8; 0x3C];
                b1[..2].copy_from_slice(&BeU16::new(1).to_bytes()); // non-rotating
                page.extend_from_slice(&b1);
            }
            _ => return illegal(0x24),
        }
        let len = (page.len() - 4) as u16;
        page[2..4].copy_from_slice(&len.to_be_bytes());
        reply(data, alloc, &page)
    }

    fn mode_sense(&self, cdb: &[u8], data: &mut [u8], ten: bool) -> ScsiOutcome {
        let (page_code, pc) = (cdb[2] & 0x3F, cdb[2] >> 6);
        if pc == 3 || !matches!(page_code, 0x08 | 0x3F) {
            return illegal(0x24);
        }
        // The caching page: write cache enabled (the host flushes on SYNCHRONIZE CACHE).
        let caching = [0x08, 0x0A, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        if ten {
            let total = (8 + caching.len() - 2) as u16;
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&caching);
            reply(data, be16(cdb, 7), &out)
        } else {
            out.extend_from_slice(&[(4 + caching.len() - 1) as u8, 0, 0, 0]);
            out.extend_from_slice(&caching);
            reply(data, usize::from(cdb[4]), &out)
        }
    }
}

fn be16(cdb: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([
        cdb.get(at).copied().unwrap_or(0),
        cdb.get(at + 1).copied().unwrap_or(0),
    ]))
}

fn be32(cdb: &[u8], at: usize) -> usize {
    let b = |i: usize| cdb.get(at + i).copied().unwrap_or(0);
    u32::from_be_bytes([b(0), b(1), b(2), b(3)]) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use vhd_format::{create_dynamic, CreateOptions, MemStorage};
    use zerocopy::byteorder::little_endian::U32;

    fn disk() -> ScsiDisk<vhd_format::Vhd<MemStorage>> {
        let vhd = create_dynamic(MemStorage::new(), &CreateOptions::new(8 << 20)).unwrap();
        ScsiDisk::new(vhd, "viridian-test")
    }

    fn srb(cdb: &[u8], len: u32) -> ScsiRequest {
        let mut r = ScsiRequest::new_zeroed();
        r.cdb_length = cdb.len() as u8;
        r.cdb_or_sense[..cdb.len()].copy_from_slice(cdb);
        r.data_transfer_length = U32::new(len);
        r
    }

    #[test]
    fn identifies_as_a_disk_and_reports_its_size() {
        let mut d = disk();
        let mut buf = vec![0u8; 96];
        let o = d.execute(&srb(&[0x12, 0, 0, 0, 36, 0], 96), &mut buf);
        assert_eq!((o.srb_status, o.transferred), (SrbStatus::SUCCESS, 36));
        assert_eq!((buf[0], &buf[8..16]), (0, &b"Msft    "[..]));
        let o = d.execute(
            &srb(&[0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], 32),
            &mut buf,
        );
        assert_eq!(o.transferred, 32);
        assert_eq!(
            u64::from_be_bytes(buf[..8].try_into().unwrap()),
            (8 << 20) / 512 - 1
        );
        assert_eq!(u32::from_be_bytes(buf[8..12].try_into().unwrap()), 512);
        let o = d.execute(&srb(&[0x12, 1, 0x00, 0, 96, 0], 96), &mut buf);
        assert_eq!(
            &buf[4..o.transferred as usize],
            &[0x00, 0x80, 0x83, 0xB0, 0xB1]
        );
        for page in [0x80, 0x83, 0xB0, 0xB1] {
            let o = d.execute(&srb(&[0x12, 1, page, 0, 96, 0], 96), &mut buf);
            assert_eq!((o.srb_status, buf[1]), (SrbStatus::SUCCESS, page));
        }
        // Another LUN: "no logical unit here", then INVALID_LUN for I/O.
        let mut other = srb(&[0x12, 0, 0, 0, 36, 0], 36);
        other.lun = 1;
        let o = d.execute(&other, &mut buf);
        assert_eq!((o.srb_status, buf[0]), (SrbStatus::SUCCESS, 0x7F));
        let mut tur = srb(&[0; 6], 0);
        tur.target_id = 1;
        assert_eq!(d.execute(&tur, &mut []).srb_status, SrbStatus::INVALID_LUN);
    }

    #[test]
    fn reads_writes_and_rejects_out_of_range() {
        let mut d = disk();
        let mut data: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
        let w = srb(&[0x2A, 0, 0, 0, 0, 100, 0, 0, 16, 0], 8192);
        assert_eq!(d.execute(&w, &mut data).transferred, 8192);
        let mut back = vec![0u8; 8192];
        let r = srb(
            &[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 16, 0, 0],
            8192,
        );
        assert_eq!(d.execute(&r, &mut back).transferred, 8192);
        assert_eq!(back, data);
        let last = (8 << 20) / 512 - 1;
        let past = srb(
            &[0x28, 0, 0, 0, (last >> 8) as u8, last as u8, 0, 0, 2, 0],
            1024,
        );
        let o = d.execute(&past, &mut back);
        assert_eq!(
            (o.srb_status, o.scsi_status),
            (SrbStatus::INVALID_REQUEST, 2)
        );
        assert_eq!(o.sense.unwrap().asc, 0x21);
        // REQUEST SENSE returns it once.
        let o = d.execute(&srb(&[0x03, 0, 0, 0, 18, 0], 18), &mut back);
        assert_eq!((o.transferred, back[12]), (18, 0x21));
        // Unknown opcode, and a buffer shorter than the CDB's blocks.
        assert_eq!(
            d.execute(&srb(&[0xEE, 0, 0, 0, 0, 0], 0), &mut [])
                .sense
                .unwrap()
                .asc,
            0x20
        );
        let short = srb(&[0x28, 0, 0, 0, 0, 0, 0, 0, 4, 0], 512);
        assert_eq!(
            d.execute(&short, &mut back[..512]).srb_status,
            SrbStatus::DATA_OVERRUN
        );
        assert_eq!(d.stats.errors, 3);
    }
}
