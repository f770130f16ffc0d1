//! Host-side GPADL reassembly and bookkeeping.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::buffer::{check_pfns, range_index, GpaAccessError, GpaBuffer, IndexEntry};
use super::message::{message_type, GpadlBodyMessage, GpadlError, GpadlHeaderMessage};
use super::range::{GpaRanges, Pfns, RangeError};
use super::GuestMemoryMap;
use crate::defs::{MessageType, PAGE_SIZE};
use crate::memory::MemoryError;

/// Limits a host puts on what a guest may make it allocate.
///
/// Fields may be added in a minor release: start from `GpadlLimits::default()` and set the fields you
/// change (or use `..` struct update syntax) rather than writing every field out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpadlLimits {
    /// GPADLs whose header has arrived but whose range buffer is incomplete.
    pub max_in_progress: usize,
    /// GPADLs in all (in progress and complete).
    pub max_gpadls: usize,
    /// `u64` values (range headers and PFNs) in one GPADL's range buffer. The 16-bit
    /// `range_buflen` caps this at 8191 anyway.
    pub max_values: usize,
    /// `u64` values held for all GPADLs together (in progress and complete): the host heap
    /// the guest can make the table hold is 8 bytes per value, plus about 1/16 of that for
    /// the range index of a complete GPADL of many ranges (see [`Gpadl::buffer`]). A guest may repeat one PFN
    /// as often as it likes, so checking that the pages are RAM does not bound this.
    pub max_total_values: usize,
}

impl Default for GpadlLimits {
    /// 32 in progress, 4096 in all, no per-GPADL limit below the protocol's 8191 values
    /// (32 MiB of guest memory per GPADL), and 1 Mi values in all: at most 8 MiB of host
    /// heap, for GPADLs describing up to 4 GiB of guest memory. (Without the last limit,
    /// 4096 GPADLs of 8191 values each would hold 256 MiB.)
    fn default() -> Self {
        Self {
            max_in_progress: 32,
            max_gpadls: 4096,
            max_values: u16::MAX as usize / 8,
            max_total_values: 1 << 20,
        }
    }
}

/// What a GPADL message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpadlProgress {
    /// More GPADL_BODY messages are needed.
    InProgress {
        /// The GPADL.
        gpadl_id: u32,
    },
    /// The range buffer is complete and valid; the host should reply GPADL_CREATED (status 0).
    Complete {
        /// The GPADL.
        gpadl_id: u32,
        /// Its channel.
        child_relid: u32,
    },
}

/// A complete, validated GPADL: its id, channel and range buffer.
///
/// Validated once, when it completes: after that its ranges are not parsed again, and its
/// length and range index (for buffer accesses in O(log ranges), see [`GpaBuffer`]) are kept
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpadl {
    id: u32,
    child_relid: u32,
    range_count: u16,
    /// The range buffer exactly as received (range headers and PFNs, little-endian).
    buffer: Vec<u8>,
    /// Total bytes described.
    len: u64,
    /// The range index of `buffer` (empty for 16 ranges or fewer).
    index: Vec<IndexEntry>,
}

impl Gpadl {
    /// The GPADL id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The channel it belongs to.
    pub fn child_relid(&self) -> u32 {
        self.child_relid
    }

    /// The range buffer as received.
    pub fn range_buffer(&self) -> &[u8] {
        &self.buffer
    }

    /// The ranges (validated when the GPADL completed; not parsed again).
    pub fn ranges(&self) -> GpaRanges<'_> {
        GpaRanges::parsed(&self.buffer, u32::from(self.range_count))
    }

    /// Every page the GPADL names, range by range (what a host checks against guest RAM
    /// before it accepts the GPADL; see [`Server::handle_message_checked`]).
    ///
    /// [`Server::handle_message_checked`]: crate::channel::server::Server::handle_message_checked
    pub fn pfns(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges().iter().flat_map(|r| r.pfns.iter())
    }

    /// Total bytes the GPADL describes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the GPADL describes no bytes (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The page list of a ring GPADL: one range, offset 0, whole pages (what Linux sends for a
    /// channel's ring buffer). Feed it to [`host_ring_pair`](crate::memory::host_ring_pair).
    ///
    /// # Errors
    /// [`MemoryError::NotRingGpadl`] otherwise.
    pub fn ring_pfns(&self) -> Result<Pfns<'_>, MemoryError> {
        let mut ranges = self.ranges().iter();
        match (ranges.next(), ranges.next()) {
            (Some(r), None)
                if r.byte_offset == 0
                    && (r.byte_count as usize).is_multiple_of(PAGE_SIZE)
                    && r.byte_count as usize / PAGE_SIZE == r.pfns.len() =>
            {
                Ok(r.pfns)
            }
            _ => Err(MemoryError::NotRingGpadl),
        }
    }

    /// A byte-addressable view of the GPADL's memory (its ranges concatenated), every PFN
    /// checked against `map`: one pass over the PFNs. The view borrows the GPADL's range
    /// index, so an access costs O(log ranges) range lookups whatever the layout.
    ///
    /// # Errors
    /// [`GpaAccessError::UnmappedPfn`].
    pub fn buffer<'a, M: GuestMemoryMap + ?Sized>(
        &'a self,
        map: &'a M,
    ) -> Result<GpaBuffer<'a, M>, GpaAccessError> {
        check_pfns(self.ranges(), map)?;
        Ok(self.lazy_buffer(map))
    }

    /// The view of [`buffer`](Self::buffer) in O(1), its PFNs not checked up front: for a host
    /// that checked the GPADL's pages against guest RAM when it accepted it (see
    /// [`Server::handle_message_checked`]) and builds a view per access or per exit. A page
    /// that is not in `map` still fails the access that touches it
    /// ([`GpaAccessError::UnmappedPfn`]), after the bytes before it were copied.
    ///
    /// [`Server::handle_message_checked`]: crate::channel::server::Server::handle_message_checked
    pub fn lazy_buffer<'a, M: GuestMemoryMap + ?Sized>(&'a self, map: &'a M) -> GpaBuffer<'a, M> {
        GpaBuffer::indexed(self.ranges(), map, self.len, &self.index)
    }
}

/// A GPADL whose range buffer is still arriving.
#[derive(Debug)]
struct Pending {
    id: u32,
    child_relid: u32,
    range_count: u16,
    /// The values so far.
    buffer: Vec<u8>,
    /// `range_buflen`.
    declared: usize,
}

/// The host's GPADL table: reassembles GPADL_HEADER / GPADL_BODY sequences and keeps the
/// complete GPADLs until they are torn down.
///
/// Ids are unique per connection (Linux allocates them from one counter), so a header whose id
/// is in progress or complete is a [`GpadlError::DuplicateId`]. Values are counted to
/// `range_buflen`; a message carrying more than is still needed is accepted and the excess
/// ignored (some guests, UEFI among them, always post full 240-byte messages), but a body for a
/// complete GPADL is an [`GpadlError::Overrun`]. Once complete, the ranges must be valid and
/// fill `range_buflen` exactly. Any error on a GPADL in progress discards it.
#[derive(Debug, Default)]
pub struct GpadlTable {
    limits: GpadlLimits,
    in_progress: BTreeMap<u32, Pending>,
    complete: BTreeMap<u32, Gpadl>,
    /// `u64` values the GPADLs hold: `declared / 8` of each in progress, the buffer of each
    /// complete one.
    held: usize,
}

impl GpadlTable {
    /// An empty table with `limits`.
    pub fn new(limits: GpadlLimits) -> Self {
        Self {
            limits,
            in_progress: BTreeMap::new(),
            complete: BTreeMap::new(),
            held: 0,
        }
    }

    /// Handles one GPADL_HEADER or GPADL_BODY message (the SynIC payload, header included).
    ///
    /// # Errors
    /// Any [`GpadlError`]; the host answers a failed header with GPADL_CREATED and a non-zero
    /// status.
    pub fn handle_message(&mut self, msg: &[u8]) -> Result<GpadlProgress, GpadlError> {
        match message_type(msg) {
            Some(MessageType::GPADL_HEADER) => {
                self.handle_header(&GpadlHeaderMessage::new_checked(msg)?)
            }
            Some(MessageType::GPADL_BODY) => self.handle_body(&GpadlBodyMessage::new_checked(msg)?),
            Some(msg_type) => Err(GpadlError::UnexpectedType { msg_type }),
            None => Err(GpadlError::Truncated {
                len: msg.len(),
                needed: 8,
            }),
        }
    }

    /// Handles a GPADL_HEADER.
    ///
    /// # Errors
    /// See [`handle_message`](Self::handle_message).
    pub fn handle_header(
        &mut self,
        msg: &GpadlHeaderMessage<'_>,
    ) -> Result<GpadlProgress, GpadlError> {
        let gpadl_id = msg.gpadl_id();
        if self.in_progress.contains_key(&gpadl_id) || self.complete.contains_key(&gpadl_id) {
            return Err(GpadlError::DuplicateId { gpadl_id });
        }
        if msg.range_count() == 0 {
            return Err(GpadlError::Ranges {
                gpadl_id,
                source: RangeError::NoRanges,
            });
        }
        let range_buflen = msg.range_buflen();
        let declared = usize::from(range_buflen);
        if declared % 8 != 0 || declared < 16 {
            return Err(GpadlError::RangeBufLen {
                gpadl_id,
                range_buflen,
            });
        }
        if declared / 8 > self.limits.max_values {
            return Err(GpadlError::TooLong {
                gpadl_id,
                values: declared / 8,
                limit: self.limits.max_values,
            });
        }
        let values = msg.values();
        let completes = values.len() >= declared;
        if !completes && self.in_progress.len() >= self.limits.max_in_progress {
            return Err(GpadlError::TooManyInProgress {
                limit: self.limits.max_in_progress,
            });
        }
        if self.in_progress.len() + self.complete.len() >= self.limits.max_gpadls {
            return Err(GpadlError::TooManyGpadls {
                limit: self.limits.max_gpadls,
            });
        }
        if declared / 8 > self.limits.max_total_values.saturating_sub(self.held) {
            return Err(GpadlError::TooManyValues {
                gpadl_id,
                values: declared / 8,
                held: self.held,
                limit: self.limits.max_total_values,
            });
        }
        let mut buffer = Vec::with_capacity(declared);
        buffer.extend_from_slice(values.get(..declared.min(values.len())).unwrap_or_default());
        let pending = Pending {
            id: gpadl_id,
            child_relid: msg.child_relid(),
            range_count: msg.range_count(),
            buffer,
            declared,
        };
        if pending.buffer.len() == declared {
            self.finish(pending)
        } else {
            self.hold(pending);
            Ok(GpadlProgress::InProgress { gpadl_id })
        }
    }

    /// Handles a GPADL_BODY.
    ///
    /// # Errors
    /// See [`handle_message`](Self::handle_message).
    pub fn handle_body(&mut self, msg: &GpadlBodyMessage<'_>) -> Result<GpadlProgress, GpadlError> {
        let gpadl_id = msg.gpadl_id();
        let Some(mut pending) = self.in_progress.remove(&gpadl_id) else {
            return Err(if self.complete.contains_key(&gpadl_id) {
                GpadlError::Overrun { gpadl_id }
            } else {
                GpadlError::UnknownId { gpadl_id }
            });
        };
        // Out of the table, out of the count; back in below unless it failed.
        self.held -= pending.declared / 8;
        let values = msg.values();
        if values.is_empty() {
            return Err(GpadlError::EmptyBody { gpadl_id });
        }
        let want = pending.declared - pending.buffer.len();
        pending
            .buffer
            .extend_from_slice(values.get(..want.min(values.len())).unwrap_or_default());
        if pending.buffer.len() == pending.declared {
            self.finish(pending)
        } else {
            self.hold(pending);
            Ok(GpadlProgress::InProgress { gpadl_id })
        }
    }

    /// Files a GPADL still being assembled.
    fn hold(&mut self, pending: Pending) {
        self.held += pending.declared / 8;
        self.in_progress.insert(pending.id, pending);
        debug_assert_eq!(self.held, self.recount());
    }

    /// [`held`](Self::held) counted afresh.
    fn recount(&self) -> usize {
        let pending: usize = self.in_progress.values().map(|p| p.declared / 8).sum();
        pending
            + self
                .complete
                .values()
                .map(|g| g.buffer.len() / 8)
                .sum::<usize>()
    }

    /// `u64` values held for all GPADLs (see [`GpadlLimits::max_total_values`]).
    pub fn values_held(&self) -> usize {
        self.held
    }

    /// Validates a complete range buffer, indexes it and files the GPADL.
    fn finish(&mut self, pending: Pending) -> Result<GpadlProgress, GpadlError> {
        let gpadl_id = pending.id;
        let (ranges, rest) = GpaRanges::parse(&pending.buffer, u32::from(pending.range_count))
            .map_err(|source| GpadlError::Ranges { gpadl_id, source })?;
        if !rest.is_empty() {
            return Err(GpadlError::LengthMismatch {
                gpadl_id,
                used: ranges.as_bytes().len(),
                declared: pending.buffer.len(),
            });
        }
        let (len, index) = range_index(ranges);
        let child_relid = pending.child_relid;
        let gpadl = Gpadl {
            id: gpadl_id,
            child_relid,
            range_count: pending.range_count,
            buffer: pending.buffer,
            len,
            index,
        };
        self.held += gpadl.buffer.len() / 8;
        self.complete.insert(gpadl_id, gpadl);
        debug_assert_eq!(self.held, self.recount());
        Ok(GpadlProgress::Complete {
            gpadl_id,
            child_relid,
        })
    }

    /// The channel of a GPADL still being assembled.
    pub fn pending_relid(&self, gpadl_id: u32) -> Option<u32> {
        self.in_progress.get(&gpadl_id).map(|p| p.child_relid)
    }

    /// A complete GPADL.
    pub fn get(&self, gpadl_id: u32) -> Option<&Gpadl> {
        self.complete.get(&gpadl_id)
    }

    /// Tears a GPADL down (complete or in progress), returning it if it was complete. The host
    /// replies GPADL_TORNDOWN once it no longer touches the pages.
    pub fn remove(&mut self, gpadl_id: u32) -> Option<Gpadl> {
        if let Some(p) = self.in_progress.remove(&gpadl_id) {
            self.held -= p.declared / 8;
        }
        let gpadl = self.complete.remove(&gpadl_id);
        if let Some(g) = &gpadl {
            self.held -= g.buffer.len() / 8;
        }
        debug_assert_eq!(self.held, self.recount());
        gpadl
    }

    /// Forgets every GPADL (UNLOAD).
    pub fn clear(&mut self) {
        self.in_progress.clear();
        self.complete.clear();
        self.held = 0;
    }

    /// Complete GPADLs.
    pub fn len(&self) -> usize {
        self.complete.len()
    }

    /// Whether there are no complete GPADLs.
    pub fn is_empty(&self) -> bool {
        self.complete.is_empty()
    }

    /// GPADLs still being assembled.
    pub fn in_progress(&self) -> usize {
        self.in_progress.len()
    }

    /// Ids of the complete GPADLs, in order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.complete.keys().copied()
    }
}

#[cfg(test)]
mod tests;
