//! A minimal storvsc: initializes the synthetic SCSI channel the way Linux does (version 6.2
//! first, falling back), identifies LUN 0, then writes a test pattern across a VHD block
//! boundary and a sequential run, reads everything back, compares, and reports throughput.
//!
//! Requests are synchronous (queue depth 1: write the packet, signal the host if the ring
//! says so, sleep until the completion arrives), except the random I/O at queue depth 32,
//! which keeps 32 requests outstanding: it writes a batch of requests, signals once, and
//! refills with one batch for every group of completions it finds. Data buffers are heap
//! vectors described by one GPA range (this guest's memory is identity-mapped, so a virtual
//! address is its physical one). A TEST UNIT READY before and after each measured phase lets
//! the host report the phase's exits.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::AtomicU64;

use vmbus_ring::gpadl::{GpaRange, GpaRanges};
use vmbus_ring::memory::FlatRingMemory;
use vmbus_ring::packet::{PacketKind, PacketRepr};
use vmbus_ring::ring::{ReadError, RingReader, RingWriter};
use vmbus_ring::storvsc::{
    NtStatus, Operation, ProtocolVersion, ScsiRequest, SrbStatus, VstorPacket, DATA_IN, DATA_NONE,
    DATA_OUT, REQUEST_COMPLETION_FLAG,
};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::FromZeros;

use crate::fmt::Dec;
use crate::hyperv::{self, Calls};
use crate::{interrupts, say};

type Ring = FlatRingMemory<&'static [AtomicU64]>;

/// Bytes per request of the sequential run (the host's maximum transfer).
const CHUNK: usize = 256 * 1024;
/// The sequential run: 2 MiB at 8 MiB.
const SEQ_OFFSET: u64 = 8 << 20;
const SEQ_LEN: usize = 2 << 20;
/// The block-boundary write: 64 KiB straddling the 2 MiB boundary of a dynamic VHD.
const EDGE_OFFSET: u64 = (2 << 20) - (32 << 10);
const EDGE_LEN: usize = 64 << 10;
/// Random 4 KiB I/O: the upper 16 MiB of a 32 MiB disk, away from the pattern runs. Each 4 KiB
/// block written holds one 8-byte value repeated, [`RANDOM_FILL`] xor its first LBA (so the
/// data is never zeros, which a sparse disk would not store, and reads can be verified).
const RANDOM_START: u64 = 16 << 20;
/// See [`RANDOM_START`]; the integration tests compute the same image.
const RANDOM_FILL: u64 = 0x7669_7269_6469_616E;
const RANDOM_LEN: u64 = 16 << 20;
/// Sequential I/O at queue depth 1 and 32: 1 MiB at 12 MiB in 16 KiB requests, each 4 KiB
/// block holding [`RANDOM_FILL`] xor its LBA like the random writes.
const QUEUED_OFFSET: u64 = 12 << 20;
const QUEUED_LEN: usize = 1 << 20;
const QUEUED_CHUNK: usize = 16 << 10;
/// Random I/Os per measurement.
const RANDOM_OPS: usize = 128;

/// The test pattern: each 512-byte sector starts with its LBA (little-endian u64) and the rest
/// is filled with [`fill_byte`] of the LBA, so a misplaced sector is visible. The VMM's tests
/// check the disk image against the same rule. (Guest instructions are expensive here — KVM
/// emulates them one by one — so the pattern costs one store and one `rep stosb` per sector.)
fn fill_byte(lba: u64) -> u8 {
    (lba as u8).wrapping_mul(31) ^ 0x5A
}

/// Fills `buf` (whole sectors) with the pattern of the disk bytes at `offset` (sector-aligned).
fn fill_pattern(buf: &mut [u8], offset: u64) {
    for (k, sector) in buf.chunks_exact_mut(512).enumerate() {
        let lba = offset / 512 + k as u64;
        sector[..8].copy_from_slice(&lba.to_le_bytes());
        fill_qwords(&mut sector[8..], u64::from_ne_bytes([fill_byte(lba); 8]));
    }
}

/// The open storage channel.
pub struct Storvsc<'a> {
    calls: &'a mut Calls,
    connection_id: u32,
    writer: RingWriter<Ring>,
    reader: RingReader<Ring>,
    next_txid: u64,
    /// Signals sent to the host.
    pub signals: u64,
}

impl<'a> Storvsc<'a> {
    /// A driver over the channel's rings.
    pub fn new(
        calls: &'a mut Calls,
        connection_id: u32,
        writer: RingWriter<Ring>,
        reader: RingReader<Ring>,
    ) -> Self {
        Self {
            calls,
            connection_id,
            writer,
            reader,
            next_txid: 1,
            signals: 0,
        }
    }

    /// Sends `packet` (with `buffer` as its data, if any); returns its transaction id.
    fn submit(&mut self, packet: &VstorPacket, buffer: Option<&[u8]>) -> u64 {
        let (txid, signal) = self.queue(packet, buffer);
        if signal {
            self.signal();
        }
        txid
    }

    /// Signals the host.
    fn signal(&mut self) {
        self.signals += 1;
        hyperv::status(self.calls.signal_event(self.connection_id, 0))
            .unwrap_or_else(|e| panic!("storvsc: HvSignalEvent failed: {e}"));
    }

    /// Writes `packet` into the ring without signaling; returns its transaction id and
    /// whether the host must be signaled for it (once the batch is written).
    fn queue(&mut self, packet: &VstorPacket, buffer: Option<&[u8]>) -> (u64, bool) {
        let txid = self.next_txid;
        self.next_txid += 1;
        let payload = packet.bytes(64);
        let mut pfns = [0u64; 80];
        let mut ranges_buf = [0u8; 24 + 8 * 80];
        let sent = match buffer.filter(|b| !b.is_empty()) {
            Some(b) => {
                let start = b.as_ptr() as u64;
                let first = start >> 12;
                let count = (((start + b.len() as u64 - 1) >> 12) - first + 1) as usize;
                assert!(
                    count <= pfns.len(),
                    "storvsc: buffer of {} bytes is too large",
                    b.len()
                );
                for (i, pfn) in pfns[..count].iter_mut().enumerate() {
                    *pfn = first + i as u64;
                }
                let range = GpaRange::new((start & 0xFFF) as u32, b.len() as u32, &pfns[..count]);
                let ranges = GpaRanges::encode(&[range], &mut ranges_buf)
                    .unwrap_or_else(|e| panic!("storvsc: buffer range: {e}"));
                self.writer
                    .write(&PacketRepr::gpa_direct(txid, true, ranges, payload))
            }
            None => self.writer.write(&PacketRepr::in_band(txid, true, payload)),
        }
        .unwrap_or_else(|e| panic!("storvsc: cannot send: {e}"));
        (txid, sent.must_signal)
    }

    /// Waits for the next completion; returns its transaction id and packet.
    fn next_completion(&mut self) -> (u64, VstorPacket) {
        loop {
            if let Some(done) = self.try_completion() {
                return done;
            }
            interrupts::wait();
        }
    }

    /// The next completion if one is in the ring.
    fn try_completion(&mut self) -> Option<(u64, VstorPacket)> {
        let mut buf = [0u8; 256];
        loop {
            match self.reader.read(&mut buf) {
                Ok((len, released)) => {
                    if released.must_signal {
                        self.signals += 1;
                        let _ = self.calls.signal_event(self.connection_id, 0);
                    }
                    let p = PacketRepr::parse_bytes(&buf[..len])
                        .unwrap_or_else(|e| panic!("storvsc: bad packet: {e}"));
                    if p.kind != PacketKind::Completion {
                        continue;
                    }
                    let answer = VstorPacket::parse(p.payload)
                        .unwrap_or_else(|e| panic!("storvsc: bad completion: {e}"));
                    assert!(
                        answer.operation() == Operation::COMPLETE_IO,
                        "storvsc: completion with operation {:?}",
                        answer.operation()
                    );
                    return Some((p.transaction_id, answer));
                }
                Err(ReadError::Empty) => return None,
                Err(e) => panic!("storvsc: corrupt ring: {e}"),
            }
        }
    }

    /// Sends `packet` and waits for its completion.
    fn request(&mut self, packet: &VstorPacket, buffer: Option<&[u8]>) -> VstorPacket {
        let txid = self.submit(packet, buffer);
        loop {
            let (id, answer) = self.next_completion();
            if id == txid {
                return answer;
            }
        }
    }

    fn control(&mut self, op: Operation, version: Option<ProtocolVersion>) -> VstorPacket {
        let mut p = VstorPacket::new(op, NtStatus::SUCCESS);
        p.flags = U32::new(REQUEST_COMPLETION_FLAG);
        if let Some(v) = version {
            p.set_version(v);
        }
        self.request(&p, None)
    }

    /// BEGIN, QUERY_PROTOCOL_VERSION (6.2, 6.0, 5.1), QUERY_PROPERTIES, END; returns the
    /// version and the maximum transfer size.
    pub fn initialize(&mut self) -> (ProtocolVersion, u32) {
        let ok = |p: &VstorPacket, what: &str| {
            assert!(
                p.status() == NtStatus::SUCCESS,
                "storvsc: {what} failed: {:?}",
                p.status()
            );
        };
        ok(
            &self.control(Operation::BEGIN_INITIALIZATION, None),
            "BEGIN_INITIALIZATION",
        );
        let version = [
            ProtocolVersion::WIN10,
            ProtocolVersion::WIN8_1,
            ProtocolVersion::WIN8,
        ]
        .into_iter()
        .find(|v| {
            self.control(Operation::QUERY_PROTOCOL_VERSION, Some(*v))
                .status()
                == NtStatus::SUCCESS
        })
        .unwrap_or_else(|| panic!("storvsc: the host refused every protocol version"));
        let props = self.control(Operation::QUERY_PROPERTIES, None);
        ok(&props, "QUERY_PROPERTIES");
        ok(
            &self.control(Operation::END_INITIALIZATION, None),
            "END_INITIALIZATION",
        );
        (version, props.properties().max_transfer_bytes.get())
    }

    /// An EXECUTE_SRB packet for `cdb` on LUN 0 moving `len` bytes (to the device when `write`).
    fn srb_packet(cdb: &[u8], len: usize, write: bool) -> VstorPacket {
        let mut srb = ScsiRequest::new_zeroed();
        srb.length = U16::new(52);
        srb.cdb_length = cdb.len() as u8;
        srb.cdb_or_sense[..cdb.len()].copy_from_slice(cdb);
        srb.sense_info_length = 20;
        srb.data_in = match (len == 0, write) {
            (true, _) => DATA_NONE,
            (false, true) => DATA_OUT,
            (false, false) => DATA_IN,
        };
        srb.data_transfer_length = U32::new(len as u32);
        srb.time_out_value = U32::new(60);
        let mut p = VstorPacket::new(Operation::EXECUTE_SRB, NtStatus::SUCCESS);
        p.flags = U32::new(REQUEST_COMPLETION_FLAG);
        p.set_srb(&srb);
        p
    }

    /// The CDB of READ(16) / WRITE(16) of `blocks` sectors at `lba`.
    fn rw_cdb(write: bool, lba: u64, blocks: u32) -> [u8; 16] {
        let mut cdb = [0u8; 16];
        cdb[0] = if write { 0x8A } else { 0x88 };
        cdb[2..10].copy_from_slice(&lba.to_be_bytes());
        cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
        cdb
    }

    /// TEST UNIT READY: a phase boundary for the host's measurements.
    fn mark(&mut self) {
        let r = self.scsi(&[0; 6], &mut [], false);
        assert!(
            r.srb_status == SrbStatus::SUCCESS.0,
            "storvsc: TEST UNIT READY failed: {:#x}",
            r.srb_status
        );
    }

    /// Runs `cdb` on LUN 0 with `data` (to the device when `write`); returns the completion's
    /// SCSI request.
    pub fn scsi(&mut self, cdb: &[u8], data: &mut [u8], write: bool) -> ScsiRequest {
        let p = Self::srb_packet(cdb, data.len(), write);
        self.request(&p, Some(data)).srb()
    }

    /// 4 KiB random reads or writes at queue depth `qd` in the free upper half of a 32 MiB
    /// disk (the same `ops` LBAs every time); returns the elapsed time in 100 ns units.
    fn random_io(&mut self, write: bool, qd: usize, ops: usize) -> u64 {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        self.queued_io(write, qd, ops, 4096, move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            RANDOM_START / 512 + (seed % (RANDOM_LEN / 4096)) * 8
        })
    }

    /// Sequential [`QUEUED_CHUNK`]-byte reads or writes over [`QUEUED_LEN`] bytes at
    /// [`QUEUED_OFFSET`], at queue depth `qd`; returns the elapsed time in 100 ns units.
    fn sequential_io(&mut self, write: bool, qd: usize) -> u64 {
        let mut lba = QUEUED_OFFSET / 512;
        self.queued_io(
            write,
            qd,
            QUEUED_LEN / QUEUED_CHUNK,
            QUEUED_CHUNK,
            move || {
                let at = lba;
                lba += (QUEUED_CHUNK / 512) as u64;
                at
            },
        )
    }

    /// `ops` requests of `len` bytes (whole 4 KiB blocks) at the LBAs `next_lba` gives, with
    /// up to `qd` outstanding. Writes store in each 4 KiB block [`RANDOM_FILL`] xor its LBA;
    /// reads check it. Returns the elapsed time in 100 ns units.
    fn queued_io(
        &mut self,
        write: bool,
        qd: usize,
        ops: usize,
        len: usize,
        mut next_lba: impl FnMut() -> u64,
    ) -> u64 {
        let mut expected = vec![0u8; 4096];
        let mut raw = vec![0u8; qd * len + 4096];
        let base = raw.as_ptr() as usize;
        let aligned = (base + 4095) & !4095;
        let slots = &mut raw[aligned - base..];
        // The transaction in each slot (`u64::MAX`: free), and its LBA.
        let mut slot_of: Vec<u64> = vec![u64::MAX; qd];
        let mut lba_of: Vec<u64> = vec![0; qd];
        let t0 = hyperv::reference_time_now();
        let (mut submitted, mut completed) = (0, 0);
        while completed < ops {
            // Fill every free slot, then signal once for the whole batch.
            let mut signal = false;
            for slot in 0..qd {
                if submitted == ops {
                    break;
                }
                if slot_of[slot] != u64::MAX {
                    continue;
                }
                let lba = next_lba();
                let buffer = &mut slots[slot * len..(slot + 1) * len];
                if write {
                    for (k, block) in buffer.chunks_mut(4096).enumerate() {
                        fill_qwords(block, RANDOM_FILL ^ (lba + 8 * k as u64));
                    }
                }
                let p = Self::srb_packet(&Self::rw_cdb(write, lba, (len / 512) as u32), len, write);
                let (id, must) = self.queue(&p, Some(buffer));
                slot_of[slot] = id;
                lba_of[slot] = lba;
                signal |= must;
                submitted += 1;
            }
            if signal {
                self.signal();
            }
            // Wait for one completion, then take every other one already there.
            let mut next = Some(self.next_completion());
            while let Some((id, answer)) = next {
                let srb = answer.srb();
                assert!(
                    srb.srb_status == SrbStatus::SUCCESS.0,
                    "storvsc: queued I/O failed: {:#x}",
                    srb.srb_status
                );
                completed += 1;
                if let Some(slot) = slot_of.iter().position(|&s| s == id) {
                    slot_of[slot] = u64::MAX;
                    if !write {
                        let buffer = &slots[slot * len..(slot + 1) * len];
                        for (k, block) in buffer.chunks(4096).enumerate() {
                            let lba = lba_of[slot] + 8 * k as u64;
                            fill_qwords(&mut expected, RANDOM_FILL ^ lba);
                            assert!(
                                equal_qwords(block, &expected),
                                "storvsc: read of LBA {lba} returned other data"
                            );
                        }
                    }
                }
                next = self.try_completion();
            }
        }
        hyperv::reference_time_now() - t0
    }

    fn rw(&mut self, write: bool, offset: u64, data: &mut [u8]) {
        let cdb = Self::rw_cdb(write, offset / 512, (data.len() / 512) as u32);
        let r = self.scsi(&cdb, data, write);
        assert!(
            r.srb_status == SrbStatus::SUCCESS.0 && r.data_transfer_length.get() as usize == data.len(),
            "storvsc: {} of {} bytes at {offset:#x} failed: srb {:#x}, scsi {:#x}, sense key {:#x} asc {:#x}",
            if write { "write" } else { "read" },
            data.len(),
            r.srb_status,
            r.scsi_status,
            r.cdb_or_sense[2],
            r.cdb_or_sense[12]
        );
    }

    /// Writes the pattern over `[offset, offset + len)` in `CHUNK` requests, reads it back,
    /// compares; returns (write, read) time in 100 ns units.
    fn pattern_run(&mut self, offset: u64, len: usize) -> (u64, u64) {
        let mut buf = vec![0u8; CHUNK.min(len)];
        let mut expected = vec![0u8; CHUNK.min(len)];
        // Only the requests are timed: building the pattern is guest CPU work.
        let mut write_time = 0;
        let mut at = 0;
        while at < len {
            let n = buf.len().min(len - at);
            fill_pattern(&mut buf[..n], offset + at as u64);
            let t0 = hyperv::reference_time_now();
            self.rw(true, offset + at as u64, &mut buf[..n]);
            write_time += hyperv::reference_time_now() - t0;
            at += n;
        }
        let t1 = hyperv::reference_time_now();
        let mut at = 0;
        while at < len {
            let n = buf.len().min(len - at);
            self.rw(false, offset + at as u64, &mut buf[..n]);
            at += n;
        }
        let read_time = hyperv::reference_time_now() - t1;
        // Verify after timing the reads (the comparison is guest CPU work, not I/O).
        let mut at = 0;
        while at < len {
            let n = buf.len().min(len - at);
            self.rw(false, offset + at as u64, &mut buf[..n]);
            fill_pattern(&mut expected[..n], offset + at as u64);
            if !equal_qwords(&buf[..n], &expected[..n]) {
                let i = (0..n).find(|&i| buf[i] != expected[i]).unwrap_or(0);
                panic!(
                    "storvsc: byte {:#x} reads back wrong",
                    offset + (at + i) as u64
                );
            }
            at += n;
        }
        (write_time, read_time)
    }

    /// Reads whole sectors at byte `offset` (sector-aligned) into `buf`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) {
        self.rw(false, offset, buf);
    }

    /// The deployment check: list the FAT32 volume and check files against the WIM's SHA-1
    /// hashes in `WIMHASH.TXT` (small files only: every guest instruction is emulated).
    fn check_deployment(&mut self, mut fat: crate::fat::Fat32) {
        let (mut files, mut dirs) = (0u64, 0u64);
        let mut stack = vec![(fat.root(), String::new(), 0)];
        while let Some((cluster, prefix, depth)) = stack.pop() {
            for e in fat.list(self, cluster) {
                let path = if prefix.is_empty() {
                    e.name.clone()
                } else {
                    alloc::format!("{prefix}/{}", e.name)
                };
                if e.dir {
                    dirs += 1;
                    say(format_args!("deploy: found directory {path}"));
                    if depth < 8 {
                        stack.push((e.cluster, path, depth + 1));
                    }
                } else {
                    files += 1;
                    say(format_args!(
                        "deploy: found {path} ({} bytes)",
                        Dec(e.size.into())
                    ));
                }
            }
        }
        let manifest = fat
            .find(self, "WIMHASH.TXT")
            .map(|e| fat.read_chain(self, e.cluster, e.size as usize))
            .unwrap_or_else(|| panic!("deploy: no WIMHASH.TXT on the volume"));
        let text = core::str::from_utf8(&manifest).unwrap_or("");
        let (mut checked, mut listed) = (0u64, 0u64);
        for line in text.lines() {
            let Some((hex, path)) = line.split_once(' ') else {
                continue;
            };
            listed += 1;
            let entry = fat
                .find(self, path)
                .unwrap_or_else(|| panic!("deploy: {path} is missing"));
            if entry.size as usize > 16 * 1024 || checked == 3 {
                continue;
            }
            let data = fat.read_chain(self, entry.cluster, entry.size as usize);
            let digest = crate::sha1::digest(&data);
            let ok = hex.len() == 40
                && digest
                    .iter()
                    .enumerate()
                    .all(|(i, b)| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16) == Ok(*b));
            assert!(ok, "deploy: {path}: SHA-1 differs from the WIM's");
            checked += 1;
            say(format_args!("deploy: {path}: SHA-1 {hex} matches the WIM"));
        }
        say(format_args!(
            "deploy: {} files and {} directories on the volume, all {} WIM files present, {} checked by SHA-1",
            Dec(files), Dec(dirs), Dec(listed), Dec(checked)
        ));
    }

    /// Identifies the disk, then the pattern runs (or, on a deployed FAT32 volume, the
    /// deployment check).
    pub fn exercise(&mut self) {
        let (version, max_transfer) = self.initialize();
        say(format_args!(
            "storvsc: initialized, protocol {}.{}, max transfer {} KiB",
            Dec((version.0 >> 8).into()),
            Dec((version.0 & 0xFF).into()),
            Dec((max_transfer / 1024).into())
        ));
        let mut inq = [0u8; 36];
        let r = self.scsi(&[0x12, 0, 0, 0, 36, 0], &mut inq, false);
        assert!(
            r.srb_status == SrbStatus::SUCCESS.0 && inq[0] == 0,
            "storvsc: LUN 0 is not a disk"
        );
        let mut cap = [0u8; 32];
        self.scsi(
            &[0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
            &mut cap,
            false,
        );
        let blocks = u64::from_be_bytes(cap[..8].try_into().unwrap_or_default()) + 1;
        let block = u32::from_be_bytes(cap[8..12].try_into().unwrap_or_default());
        say(format_args!(
            "storvsc: LUN 0 is \"{} {}\", {} sectors of {} bytes ({} MiB)",
            core::str::from_utf8(&inq[8..16]).unwrap_or("?").trim_end(),
            core::str::from_utf8(&inq[16..32]).unwrap_or("?").trim_end(),
            Dec(blocks),
            Dec(block.into()),
            Dec((blocks * u64::from(block)) >> 20)
        ));
        let mut boot = [0u8; 512];
        self.read_at(0, &mut boot);
        if let Some(fat) = crate::fat::Fat32::parse(&boot) {
            say(format_args!(
                "storvsc: LUN 0 holds a FAT32 volume: checking the deployment, read-only"
            ));
            return self.check_deployment(fat);
        }
        assert!(
            blocks * 512 >= SEQ_OFFSET + SEQ_LEN as u64,
            "storvsc: the disk is too small for the test (needs 12 MiB)"
        );
        self.pattern_run(EDGE_OFFSET, EDGE_LEN);
        say(format_args!(
            "storvsc: wrote and read back {} KiB across the 2 MiB block boundary at {:#x}: identical",
            Dec((EDGE_LEN / 1024) as u64),
            EDGE_OFFSET
        ));
        self.mark();
        let (w, r) = self.pattern_run(SEQ_OFFSET, SEQ_LEN);
        let mbps = |t: u64| (SEQ_LEN as u64 * 10_000_000 / t.max(1)) >> 20;
        say(format_args!(
            "storvsc: sequential {} MiB at {:#x} in {} KiB requests: write {} MiB/s, read {} MiB/s, verified",
            Dec((SEQ_LEN >> 20) as u64),
            SEQ_OFFSET,
            Dec((CHUNK / 1024) as u64),
            Dec(mbps(w)),
            Dec(mbps(r))
        ));
        // Writes first, so the reads find data (a sparse disk answers unwritten blocks
        // without reading anything).
        for write in [true, false] {
            for qd in [1, 32] {
                self.mark();
                let t = self.sequential_io(write, qd);
                say(format_args!(
                    "storvsc: sequential {} MiB at {:#x} in {} KiB requests at queue depth {}: {} {} MiB/s{}",
                    Dec((QUEUED_LEN >> 20) as u64),
                    QUEUED_OFFSET,
                    Dec((QUEUED_CHUNK >> 10) as u64),
                    Dec(qd as u64),
                    if write { "write" } else { "read" },
                    Dec((QUEUED_LEN as u64 * 10_000_000 / t.max(1)) >> 20),
                    if write { "" } else { ", verified" }
                ));
            }
        }
        for write in [true, false] {
            for qd in [1, 32] {
                self.mark();
                let t = self.random_io(write, qd, RANDOM_OPS);
                say(format_args!(
                    "storvsc: 4 KiB random {} at queue depth {}: {} IOPS ({} ops{})",
                    if write { "writes" } else { "reads" },
                    Dec(qd as u64),
                    Dec(RANDOM_OPS as u64 * 10_000_000 / t.max(1)),
                    Dec(RANDOM_OPS as u64),
                    if write { "" } else { ", verified" }
                ));
            }
        }
        self.mark();
        let mut none = [0u8; 0];
        let r = self.scsi(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut none, false);
        assert!(
            r.srb_status == SrbStatus::SUCCESS.0,
            "storvsc: SYNCHRONIZE CACHE failed"
        );
    }
}

/// Fills `buf` with the 8-byte `value`, then the tail (under 8 bytes) with its low bytes; one
/// `rep stosq` (KVM's emulator runs a string instruction far faster than a loop).
#[allow(unsafe_code)] // one string instruction (see the doc above)
fn fill_qwords(buf: &mut [u8], value: u64) {
    let words = buf.len() / 8;
    let (mut ptr, mut count) = (buf.as_mut_ptr(), words);
    // SAFETY: `rep stosq` writes `words * 8 <= buf.len()` bytes from `buf`'s start, which the
    // exclusive borrow makes writable; the direction flag is clear (the System V ABI).
    unsafe {
        asm!("rep stosq", inout("rdi") ptr, inout("rcx") count, in("rax") value, options(nostack));
    }
    let _ = (ptr, count);
    let tail = words * 8;
    for (i, b) in buf[tail..].iter_mut().enumerate() {
        *b = (value >> (8 * i)) as u8;
    }
}

/// Whether `a` and `b` (of the same length, a multiple of 8) are equal: one `repe cmpsq`.
#[allow(unsafe_code)] // one string instruction (see the doc above)
fn equal_qwords(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || !a.len().is_multiple_of(8) {
        return a == b;
    }
    let (mut pa, mut pb, mut left) = (a.as_ptr(), b.as_ptr(), a.len() / 8);
    let equal: u8;
    // SAFETY: `repe cmpsq` reads at most `len` bytes from each slice (rsi = a, rdi = b), both
    // borrowed for reading; the direction flag is clear. `sete` reads the flags it left (an
    // empty comparison leaves ZF from the `cmp` that precedes it: set, i.e. equal).
    unsafe {
        asm!(
            "cmp rcx, rcx",
            "repe cmpsq",
            "sete {e}",
            e = out(reg_byte) equal,
            inout("rsi") pa, inout("rdi") pb, inout("rcx") left,
            options(readonly, nostack)
        );
    }
    let _ = (pa, pb, left);
    equal != 0
}
