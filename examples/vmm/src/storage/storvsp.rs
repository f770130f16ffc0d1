//! The storvsp channel: `vmbus-ring`'s storage host state machine over the channel's rings, SCSI
//! commands run against a [`VmDisk`], data moved between guest RAM (the request's GPA range)
//! and a host buffer.
//!
//! A signaled channel is drained completely: every request read is answered (initialization
//! steps at once, SCSI commands after they ran) and the completions are written as one batch,
//! so a guest that queues 32 requests costs one signal each way. Completions the ring has no
//! room for wait in an [`Outbox`] and go first at the next signal, before any new request is
//! read.

use std::time::Instant;

use vmbus_ring::gpadl::{GpaRange, Gpadl};
use vmbus_ring::packet::PacketRepr;
use vmbus_ring::storvsc::host::{HostAction, HostConfig, ScsiCommand, ScsiOutcome, StorageHost};
use vmbus_ring::storvsc::{sense_key, SenseData, SrbStatus};

use super::VmDisk;
use crate::hyperv::ring_pages::guest_ring_pair;
use crate::hyperv::rings::{read_next, Next, Outbox, RingIndices};
use crate::memory::GuestMemory;

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Requests answered.
    pub requests: u64,
    /// The guest must be signaled (a completion went into an empty ring, or the guest waits
    /// for room).
    pub signal: bool,
    /// The channel finished initialization during this drain.
    pub became_ready: bool,
    /// The guest closed a measured stretch (see [`Segment`]) during this drain.
    pub segment: Option<Segment>,
}

/// What happened between two TEST UNIT READY commands of the guest: the test guest sends one
/// before and after each measured phase, so the host can put exits next to its figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Requests answered (the markers not counted).
    pub requests: u64,
    /// Drains that answered at least one of them.
    pub drains: u64,
    /// The most requests answered in one drain.
    pub max_batch: u64,
    /// VM exits from the opening marker to the closing one.
    pub exits: u64,
}

impl Segment {
    /// Counts one drain that answered `n` requests of the segment (none: nothing to count).
    fn add_drain(&mut self, n: u64) {
        if n > 0 {
            self.requests += n;
            self.drains += 1;
            self.max_batch = self.max_batch.max(n);
        }
    }
}

/// The stretch being measured: where it started and what it saw so far.
#[derive(Debug, Default, Clone, Copy)]
struct OpenSegment {
    exits_at: u64,
    seen: Segment,
}

/// Counters for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct StorageStats {
    /// Requests answered.
    pub requests: u64,
    /// Drains (one per guest signal).
    pub drains: u64,
    /// Time spent in the disk, in ns.
    pub disk_ns: u64,
    /// VM exits when the first and the latest request arrived.
    pub exits: Option<(u64, u64)>,
}

/// One storage channel.
pub struct StorageChannel {
    host: StorageHost,
    /// The disk behind LUN 0.
    pub disk: VmDisk,
    buffer: Vec<u8>,
    /// Counters.
    pub stats: StorageStats,
    /// Since the guest's last TEST UNIT READY.
    segment: Option<OpenSegment>,
    /// Completions waiting for room in the host-to-guest ring.
    outbox: Outbox,
}

impl StorageChannel {
    /// A channel serving `disk`.
    pub fn new(disk: VmDisk) -> Self {
        Self {
            host: StorageHost::new(HostConfig::default()),
            disk,
            buffer: Vec::new(),
            stats: StorageStats::default(),
            segment: None,
            outbox: Outbox::default(),
        }
    }

    /// The negotiated protocol version, once initialized.
    pub fn version(&self) -> Option<u16> {
        self.host
            .is_ready()
            .then(|| self.host.version().map_or(0, |v| v.0))
    }

    /// The channel (re)opened or closed: start over.
    pub fn reset(&mut self) {
        self.host.reset();
        self.outbox.clear();
    }

    /// Reads every request in the guest→host ring of `gpadl` and answers it.
    ///
    /// # Errors
    /// A description when the rings cannot be used (their pages are checked against RAM).
    pub fn drain(
        &mut self,
        gpadl: &Gpadl,
        downstream: u32,
        indices: &mut RingIndices,
        memory: &GuestMemory,
        exits: u64,
    ) -> Result<Drained, String> {
        let first = self.stats.exits.map_or(exits, |(first, _)| first);
        self.stats.exits = Some((first, exits));
        let pfns = gpadl.ring_pfns().map_err(|e| e.to_string())?;
        let (incoming, outgoing) =
            guest_ring_pair(memory, pfns, downstream).map_err(|e| e.to_string())?;
        let (mut reader, mut writer) = indices
            .pair(incoming, outgoing)
            .map_err(|e| e.to_string())?;
        let was_ready = self.host.is_ready();
        let mut out = Drained::default();
        // Completions an earlier service had no room for go first; while any still wait, no
        // new request is read (the guest's queue depth holds it back).
        out.signal |= self.outbox.flush(&mut writer)?;
        let mut packet = vec![0u8; 4096];
        // Requests of the open segment answered in this drain.
        let mut batch_len = 0u64;
        // Nothing is read while completions wait (a ring's worth at most is ever held).
        let budget = if self.outbox.is_empty() {
            usize::MAX
        } else {
            0
        };
        for _ in 0..budget {
            let len = match read_next(&mut reader, &mut packet, &mut out.signal)? {
                Next::Packet(len) => len,
                Next::Skipped => continue,
                Next::Empty => break,
            };
            let Ok(repr) = PacketRepr::parse_bytes(&packet[..len]) else {
                continue;
            };
            let txid = repr.transaction_id;
            match self.host.handle(&repr) {
                HostAction::Reply(p, n) => self.outbox.push(txid, p.bytes(n)),
                HostAction::Execute(cmd) => {
                    // TEST UNIT READY.
                    let marker = cmd.request.cdb().first() == Some(&0x00);
                    if marker {
                        out.segment = self.close_segment(batch_len, exits);
                        batch_len = 0;
                    } else {
                        batch_len += 1;
                    }
                    let outcome = self.run(&cmd, memory);
                    let p = self.host.complete(&cmd, &outcome);
                    self.outbox.push(txid, p.bytes(cmd.reply_len));
                }
                // Dropped packets, and actions this device does not know, take no answer.
                _ => continue,
            }
            out.requests += 1;
        }
        drop(reader);
        out.signal |= self.outbox.flush(&mut writer)?;
        if let Some(open) = self.segment.as_mut() {
            open.seen.add_drain(batch_len);
        }
        out.became_ready = !was_ready && self.host.is_ready();
        self.stats.requests += out.requests;
        self.stats.drains += 1;
        Ok(out)
    }

    /// A marker arrived after `pending` requests of this drain: closes the open segment (if
    /// any) and opens the next one at `exits`.
    fn close_segment(&mut self, pending: u64, exits: u64) -> Option<Segment> {
        let closed = self.segment.map(|open| {
            let mut seen = open.seen;
            seen.add_drain(pending);
            seen.exits = exits.saturating_sub(open.exits_at);
            seen
        });
        self.segment = Some(OpenSegment {
            exits_at: exits,
            seen: Segment::default(),
        });
        closed
    }

    /// Runs one SCSI command, moving its data through guest RAM.
    fn run(&mut self, cmd: &ScsiCommand<'_>, memory: &GuestMemory) -> ScsiOutcome {
        let len = cmd.len as usize;
        if len > 0 && direction_conflicts(cmd) {
            // A write whose buffer the request says goes to the guest would write the host's
            // zero-filled buffer to the disk (and a read would move nothing): refused.
            return ScsiOutcome::check_condition(SenseData::new(
                sense_key::ILLEGAL_REQUEST,
                0x24,
                0,
            ));
        }
        self.buffer.clear();
        self.buffer.resize(len, 0);
        let range = cmd.buffer;
        if let (false, Some(range)) = (cmd.to_guest, range) {
            if copy_range(memory, range, &mut self.buffer, false).is_err() {
                return bad_buffer();
            }
        }
        let t0 = Instant::now();
        let outcome = self.disk.execute(&cmd.request, &mut self.buffer);
        self.stats.disk_ns += t0.elapsed().as_nanos() as u64;
        if let (true, Some(range)) = (cmd.to_guest, range) {
            let moved = (outcome.transferred as usize).min(len);
            if copy_range(memory, range, &mut self.buffer[..moved], true).is_err() {
                return bad_buffer();
            }
        }
        outcome
    }
}

/// Whether the request's data direction contradicts its CDB: a WRITE-class command moving
/// data to the guest, or a READ-class one moving data from it.
fn direction_conflicts(cmd: &ScsiCommand<'_>) -> bool {
    let op = cmd.request.cdb().first().copied().unwrap_or(0);
    let writes = matches!(
        op,
        0x0A | 0x2A | 0x2E | 0x41 | 0x8A | 0x8E | 0x93 | 0xAA | 0xAE
    );
    let reads = matches!(op, 0x08 | 0x28 | 0x88 | 0xA8);
    (writes && cmd.to_guest) || (reads && !cmd.to_guest)
}

/// The guest's buffer is not RAM: fail the command the way a DMA error would.
fn bad_buffer() -> ScsiOutcome {
    let mut o = ScsiOutcome::check_condition(SenseData::new(sense_key::HARDWARE_ERROR, 0x44, 0));
    o.srb_status = SrbStatus::ERROR;
    o
}

/// Copies between `buf` and the guest pages of `range` (to the guest when `to_guest`), page
/// by page: the PFNs need not be contiguous.
fn copy_range(
    memory: &GuestMemory,
    range: GpaRange<'_>,
    buf: &mut [u8],
    to_guest: bool,
) -> Result<(), ()> {
    let mut done = 0usize;
    let mut offset = range.byte_offset as usize;
    for pfn in range.pfns.iter() {
        if done == buf.len() {
            break;
        }
        let n = (4096 - offset).min(buf.len() - done);
        let gpa = pfn.checked_mul(4096).ok_or(())? + offset as u64;
        let chunk = &mut buf[done..done + n];
        let r = if to_guest {
            memory.write_at(gpa, chunk)
        } else {
            memory.read_at(gpa, chunk)
        };
        r.map_err(|_| ())?;
        done += n;
        offset = 0;
    }
    if done == buf.len() {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests;
