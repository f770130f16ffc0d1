//! The filtering database: (FID, MAC) → port, as a fixed-capacity open-addressing table.
//!
//! - **Key.** 64 bits: FID (12 bits) << 48 | MAC (48 bits). Learning is per VLAN (IVL) by
//!   default; the bridge maps each VID to a FID, so several VIDs can share one (SVL, needed
//!   by private VLANs).
//! - **Hash.** A keyed hash ([`HashKey`], two rounds of a 64×64→128-bit folded multiply over
//!   the key xor secret words), so a guest that picks its MAC addresses cannot aim them at
//!   one bucket without knowing the key. The key comes from the caller (`no_std` has no
//!   entropy); [`HashKey::random`] draws one from the standard library's per-process keys.
//! - **Table.** A power-of-two array of 64-byte buckets of four slots (one cache line per
//!   bucket: the four keys, then the four ports and time stamps), at most 50% full, allocated once at construction: no allocation on the
//!   forwarding path. A key lives in its home bucket or, if that was full, in the next
//!   non-full one (linear probing by bucket); a lookup compares the four keys of a bucket
//!   without branching and stops at the first bucket with a free slot. Deletion moves a later
//!   entry back into the hole when the probe invariant needs it (no tombstones).
//! - **Kinds.** Dynamic entries age and move. [`EntryKind::Static`] never ages but still moves
//!   when its MAC is learned elsewhere (Linux `static`); [`EntryKind::Sticky`] never ages and
//!   never moves (Linux `static sticky`, VPP static); [`EntryKind::Local`] is the switch's own
//!   address: frames to it are delivered to the switch owner.
//! - **Aging.** The caller passes the time (milliseconds, any epoch). An entry whose age
//!   reaches the ageing time is *expired*: lookups ignore it at once, and [`Fdb::age`] removes
//!   it with a bounded number of slot visits per call. Until it is removed an expired entry
//!   still occupies its slot and counts toward the limits. An ageing time of 0 disables
//!   learning (as on Linux, where `ageing_time 0` creates no entries). Times are kept modulo
//!   2^32 ms, so sweep at least once every 49 days.
//! - **Limits.** A hard capacity (all entries), a global limit on dynamic entries and a
//!   per-port limit. At a limit the new address is *not learned* (its frames still flow and
//!   replies flood); a MAC move onto a port at its limit removes the stale entry instead of
//!   moving it, so traffic floods rather than going to the old port.

#[cfg(feature = "alloc")]
use alloc::{boxed::Box, vec, vec::Vec};

use crate::frame::MacAddr;

/// The secret words of the forwarding-table hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashKey([u64; 4]);

impl core::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A key expanded from a 128-bit seed (splitmix64), e.g. from a hardware RNG.
    pub const fn from_seed(seed: u128) -> Self {
        let mut s = (seed as u64) ^ ((seed >> 64) as u64).rotate_left(32);
        let mut k = [0u64; 4];
        let mut i = 0;
        while i < 4 {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            k[i] = (z ^ (z >> 31)) | 1;
            i += 1;
        }
        Self(k)
    }

    /// A key from the standard library's randomly seeded `RandomState` (per process).
    #[cfg(feature = "std")]
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5657_5357);
        let a = h.finish();
        h.write_u64(a);
        let b = h.finish();
        Self::from_seed((u128::from(a) << 64) | u128::from(b))
    }

    /// The hash of a packed (FID, MAC) key.
    #[inline(always)]
    pub fn hash(&self, key: u64) -> u64 {
        let a = fold_mul(key ^ self.0[0], self.0[1]);
        fold_mul(a ^ self.0[2], self.0[3])
    }
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// How an entry behaves; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Learned: ages, moves.
    Dynamic,
    /// Configured: never ages, moves when learned on another port.
    Static,
    /// Configured: never ages, never moves.
    Sticky,
    /// The switch's own address: never ages or moves; frames to it are delivered locally.
    Local,
}

/// A table entry as reported by [`Fdb::entries`] and [`Fdb::get`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Filtering database ID.
    pub fid: u16,
    /// Station address.
    pub mac: MacAddr,
    /// Port index ([`LOCAL_PORT`] for local entries).
    pub port: u32,
    /// Last time (ms, modulo 2^32) the address was seen or configured.
    pub stamp: u32,
    /// Behaviour.
    pub kind: EntryKind,
}

/// The port index of [`EntryKind::Local`] entries.
pub const LOCAL_PORT: u32 = u32::MAX;

const OCCUPIED: u64 = 1 << 63;
#[cfg(feature = "alloc")]
const F_STATIC: u64 = 1 << 62;
#[cfg(feature = "alloc")]
const F_STICKY: u64 = 1 << 61;
#[cfg(feature = "alloc")]
const F_LOCAL: u64 = 1 << 60;
#[cfg(feature = "alloc")]
const MATCH: u64 = OCCUPIED | ((1 << 60) - 1);

/// The packed key of (FID, MAC) as the table stores it (occupied bit set).
#[inline(always)]
pub fn pack(fid: u16, mac: MacAddr) -> u64 {
    OCCUPIED | (u64::from(fid & 0x0fff) << 48) | mac.to_u64()
}

/// One entry, as read from or written to a bucket.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    port: u32,
    stamp: u32,
}

/// Four slots in one cache line: the unit of probing. The keys come first and side by side,
/// so a probe compares them straight from two 16-byte loads.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    keys: [u64; 4],
    /// (port, stamp) of each slot.
    vals: [(u32, u32); 4],
}

#[cfg(feature = "alloc")]
const _: () = assert!(size_of::<Bucket>() == 64);

#[cfg(feature = "alloc")]
impl Bucket {
    #[inline(always)]
    fn get(&self, k: usize) -> Slot {
        let (port, stamp) = self.vals[k];
        Slot {
            key: self.keys[k],
            port,
            stamp,
        }
    }

    #[inline(always)]
    fn set(&mut self, k: usize, s: Slot) {
        self.keys[k] = s.key;
        self.vals[k] = (s.port, s.stamp);
    }
}

/// Bit `k` set where slot `k` holds `key` (flags masked off).
#[cfg(all(feature = "alloc", target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn hits(bucket: &Bucket, key: u64) -> u32 {
    // SAFETY: `hits_sse2` only needs SSE2, which the cfg guarantees (and which every x86-64
    // processor has).
    #[allow(unsafe_code)]
    unsafe {
        hits_sse2(bucket, key)
    }
}

/// [`hits`] with SSE2: the four keys in two vectors instead of four scalar compares.
#[cfg(all(feature = "alloc", target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn hits_sse2(bucket: &Bucket, key: u64) -> u32 {
    use core::arch::x86_64::{
        _mm_and_si128, _mm_castsi128_pd, _mm_cmpeq_epi32, _mm_movemask_pd, _mm_set1_epi64x,
        _mm_set_epi64x, _mm_shuffle_epi32,
    };
    // Two keys per vector, compared in 32-bit halves (SSE2 has no 64-bit compare): a key
    // matches where both of its halves do.
    let [k0, k1, k2, k3] = bucket.keys;
    let m = _mm_set1_epi64x(MATCH as i64);
    let k = _mm_set1_epi64x(key as i64);
    let half = |a: u64, b: u64| {
        let e = _mm_cmpeq_epi32(_mm_and_si128(_mm_set_epi64x(b as i64, a as i64), m), k);
        let e = _mm_and_si128(e, _mm_shuffle_epi32::<0b10_11_00_01>(e));
        _mm_movemask_pd(_mm_castsi128_pd(e)) as u32
    };
    half(k0, k1) | half(k2, k3) << 2
}

/// Bit `k` set where slot `k` holds `key` (flags masked off).
#[cfg(all(
    feature = "alloc",
    not(all(target_arch = "x86_64", target_feature = "sse2"))
))]
#[inline(always)]
fn hits(bucket: &Bucket, key: u64) -> u32 {
    hits_portable(bucket, key)
}

/// [`hits`] without vectors: four scalar compares. Built for the tests everywhere, so that
/// they check it on x86-64 too.
#[cfg(all(
    feature = "alloc",
    any(test, not(all(target_arch = "x86_64", target_feature = "sse2")))
))]
#[inline(always)]
fn hits_portable(bucket: &Bucket, key: u64) -> u32 {
    let [k0, k1, k2, k3] = bucket.keys;
    u32::from(k0 & MATCH == key)
        | u32::from(k1 & MATCH == key) << 1
        | u32::from(k2 & MATCH == key) << 2
        | u32::from(k3 & MATCH == key) << 3
}

#[cfg(feature = "alloc")]
impl Slot {
    fn kind(&self) -> EntryKind {
        if self.key & F_LOCAL != 0 {
            EntryKind::Local
        } else if self.key & F_STICKY != 0 {
            EntryKind::Sticky
        } else if self.key & F_STATIC != 0 {
            EntryKind::Static
        } else {
            EntryKind::Dynamic
        }
    }
}

/// Sizes and limits of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbConfig {
    /// Hard capacity: entries of every kind (at most 2^30). The slot array is the next power
    /// of two at or above twice this (16 bytes each).
    pub capacity: usize,
    /// The most dynamic entries.
    pub learn_limit: usize,
    /// Ageing time in milliseconds (802.1D default 300 s); 0 disables learning.
    pub ageing_ms: u32,
}

impl Default for FdbConfig {
    fn default() -> Self {
        Self {
            capacity: 8192,
            learn_limit: 8192,
            ageing_ms: 300_000,
        }
    }
}

/// What [`Fdb::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Learn {
    /// The entry already pointed at this port; its time was refreshed.
    Refreshed,
    /// A new entry.
    Learned,
    /// The entry moved from the given port.
    Moved(u32),
    /// Sticky or local entry on another port: nothing changed.
    Pinned,
    /// A limit refused the address (see [`Limit`]).
    Refused(Limit),
    /// Learning is disabled (ageing time 0).
    Disabled,
}

/// Which limit refused a learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The table's hard capacity.
    Capacity,
    /// The global dynamic-entry limit.
    Global,
    /// The port's limit; for a move, the stale entry was removed.
    Port,
}

/// Why a configured entry could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FdbError {
    /// The table holds `capacity` entries.
    #[error("forwarding table full ({capacity} entries)")]
    Full {
        /// The hard capacity.
        capacity: usize,
    },
    /// Group or zero addresses cannot be table entries.
    #[error("{0} is not a station address")]
    InvalidMac(MacAddr),
}

/// What one [`Fdb::age`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgeReport {
    /// Slots visited (re-visits after a removal included).
    pub visited: usize,
    /// Expired entries removed.
    pub removed: usize,
    /// Whether a full pass over the table ended during this call.
    pub pass_complete: bool,
}

/// The forwarding table.
#[cfg(feature = "alloc")]
pub struct Fdb {
    buckets: Box<[Bucket]>,
    /// Slot-index mask (slots = 4 × buckets).
    mask: usize,
    /// Bucket-index mask.
    bmask: usize,
    key: HashKey,
    config: FdbConfig,
    len: usize,
    dynamic: usize,
    per_port: Vec<(u32, u32)>,
    cursor: usize,
    swept: usize,
}

#[cfg(feature = "alloc")]
impl core::fmt::Debug for Fdb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fdb")
            .field("len", &self.len)
            .field("dynamic", &self.dynamic)
            .field("slots", &(self.mask + 1))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "alloc")]
impl Fdb {
    /// An empty table; allocates the slot array now.
    pub fn new(mut config: FdbConfig, key: HashKey) -> Self {
        config.capacity = config.capacity.min(1 << 30);
        let n = config.capacity.max(8).saturating_mul(2).next_power_of_two();
        Self {
            buckets: vec![Bucket::default(); n / 4].into_boxed_slice(),
            mask: n - 1,
            bmask: n / 4 - 1,
            key,
            config,
            len: 0,
            dynamic: 0,
            per_port: Vec::new(),
            cursor: 0,
            swept: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FdbConfig {
        &self.config
    }

    /// Sets the ageing time (milliseconds; 0 disables learning).
    pub fn set_ageing(&mut self, ms: u32) {
        self.config.ageing_ms = ms;
    }

    /// Entries of every kind, expired ones included until swept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Dynamic entries.
    pub fn dynamic_len(&self) -> usize {
        self.dynamic
    }

    /// Dynamic entries on `port`.
    pub fn port_len(&self, port: u32) -> u32 {
        self.per_port.get(port as usize).map_or(0, |p| p.0)
    }

    /// Sets the per-port limit of dynamic entries (`u32::MAX` = none).
    pub fn set_port_limit(&mut self, port: u32, limit: u32) {
        let i = port as usize;
        if self.per_port.len() <= i {
            self.per_port.resize(i + 1, (0, u32::MAX));
        }
        self.per_port[i].1 = limit;
    }

    /// The hash of a packed key (see [`pack`]).
    #[inline(always)]
    pub fn hash(&self, key: u64) -> u64 {
        self.key.hash(key)
    }

    /// Hints the CPU to load the slot where a key with hash `h` starts probing.
    #[inline(always)]
    pub fn prefetch(&self, h: u64) {
        prefetch::read(
            self.buckets
                .as_ptr()
                .wrapping_add(h as usize & self.bmask)
                .cast(),
        );
    }

    #[inline(always)]
    fn slot(&self, i: usize) -> Slot {
        self.buckets[(i >> 2) & self.bmask].get(i & 3)
    }

    #[inline(always)]
    fn put(&mut self, i: usize, s: Slot) {
        self.buckets[(i >> 2) & self.bmask].set(i & 3, s);
    }

    /// The home bucket of a stored key.
    fn home(&self, key: u64) -> usize {
        self.hash(key & MATCH) as usize & self.bmask
    }

    /// `Ok(slot)` of `key`, or `Err(slot)`: the free slot where it would be inserted.
    #[inline(always)]
    fn find(&self, key: u64, h: u64) -> Result<usize, usize> {
        self.find_at(key, h).map(|(b, k)| b * 4 + k)
    }

    /// [`find`](Self::find) with a hit as (bucket, slot in it): the hot paths reach the
    /// slot through the bucket just probed instead of recomputing it from an index.
    #[inline(always)]
    fn find_at(&self, key: u64, h: u64) -> Result<(usize, usize), usize> {
        let mut b = h as usize & self.bmask;
        loop {
            let bucket = &self.buckets[b];
            let hit = hits(bucket, key);
            if hit != 0 {
                return Ok((b, hit.trailing_zeros() as usize & 3));
            }
            let [k0, k1, k2, k3] = bucket.keys;
            let free = u32::from(k0 == 0)
                | u32::from(k1 == 0) << 1
                | u32::from(k2 == 0) << 2
                | u32::from(k3 == 0) << 3;
            if free != 0 {
                return Err(b * 4 + free.trailing_zeros() as usize);
            }
            b = (b + 1) & self.bmask;
        }
    }

    #[inline(always)]
    fn expired(&self, s: &Slot, now: u32) -> bool {
        s.key & F_STATIC == 0 && now.wrapping_sub(s.stamp) >= self.config.ageing_ms
    }

    /// Looks up a packed key with its hash; expired entries are misses. Returns the port
    /// (or [`LOCAL_PORT`]).
    #[inline(always)]
    pub fn lookup_hashed(&self, key: u64, h: u64, now: u64) -> Option<u32> {
        let (b, k) = self.find_at(key, h).ok()?;
        let s = self.buckets[b].get(k);
        (!self.expired(&s, now as u32)).then_some(s.port)
    }

    /// Looks up (FID, MAC).
    pub fn lookup(&self, fid: u16, mac: MacAddr, now: u64) -> Option<u32> {
        let k = pack(fid, mac);
        self.lookup_hashed(k, self.hash(k), now)
    }

    /// The entry for (FID, MAC), expired or not.
    pub fn get(&self, fid: u16, mac: MacAddr) -> Option<Entry> {
        let k = pack(fid, mac);
        let i = self.find(k, self.hash(k)).ok()?;
        Some(self.entry(&self.slot(i)))
    }

    fn entry(&self, s: &Slot) -> Entry {
        Entry {
            fid: ((s.key >> 48) & 0x0fff) as u16,
            mac: MacAddr::from_u64(s.key),
            port: s.port,
            stamp: s.stamp,
            kind: s.kind(),
        }
    }

    fn port_count(&mut self, port: u32) -> &mut (u32, u32) {
        let i = port as usize;
        if self.per_port.len() <= i {
            self.per_port.resize(i + 1, (0, u32::MAX));
        }
        &mut self.per_port[i]
    }

    /// Learns that `key` (hash `h`) was seen on `port` at `now`.
    #[inline(always)]
    pub fn learn_hashed(&mut self, key: u64, h: u64, port: u32, now: u64) -> Learn {
        let now32 = now as u32;
        match self.find_at(key, h) {
            Ok((b, k)) => {
                let (p, stamp) = &mut self.buckets[b].vals[k];
                if *p == port {
                    if *stamp != now32 {
                        *stamp = now32;
                    }
                    return Learn::Refreshed;
                }
                self.relearn(b * 4 + k, port, now32)
            }
            Err(i) => self.insert_new(i, key, port, now32),
        }
    }

    #[inline(never)]
    fn relearn(&mut self, i: usize, port: u32, now32: u32) -> Learn {
        let s = self.slot(i);
        if s.key & (F_STICKY | F_LOCAL) != 0 {
            return Learn::Pinned;
        }
        if s.key & F_STATIC != 0 {
            self.put(
                i,
                Slot {
                    port,
                    stamp: now32,
                    ..s
                },
            );
            return Learn::Moved(s.port);
        }
        let pc = self.port_count(port);
        if pc.0 >= pc.1 {
            self.remove_at(i);
            return Learn::Refused(Limit::Port);
        }
        pc.0 += 1;
        self.port_count(s.port).0 -= 1;
        self.put(
            i,
            Slot {
                port,
                stamp: now32,
                ..s
            },
        );
        Learn::Moved(s.port)
    }

    #[inline(never)]
    fn insert_new(&mut self, i: usize, key: u64, port: u32, now32: u32) -> Learn {
        if self.config.ageing_ms == 0 {
            return Learn::Disabled;
        }
        if self.len >= self.config.capacity {
            return Learn::Refused(Limit::Capacity);
        }
        if self.dynamic >= self.config.learn_limit {
            return Learn::Refused(Limit::Global);
        }
        let pc = self.port_count(port);
        if pc.0 >= pc.1 {
            return Learn::Refused(Limit::Port);
        }
        pc.0 += 1;
        self.put(
            i,
            Slot {
                key,
                port,
                stamp: now32,
            },
        );
        self.len += 1;
        self.dynamic += 1;
        Learn::Learned
    }

    /// Learns (FID, MAC) on `port`.
    pub fn learn(&mut self, fid: u16, mac: MacAddr, port: u32, now: u64) -> Learn {
        let k = pack(fid, mac);
        self.learn_hashed(k, self.hash(k), port, now)
    }

    /// Adds or replaces a configured entry (`kind` other than [`EntryKind::Dynamic`]; a
    /// dynamic `kind` is stored as [`EntryKind::Static`]). Local entries ignore `port`.
    pub fn insert_static(
        &mut self,
        fid: u16,
        mac: MacAddr,
        port: u32,
        kind: EntryKind,
        now: u64,
    ) -> Result<(), FdbError> {
        if !mac.is_valid_source() {
            return Err(FdbError::InvalidMac(mac));
        }
        let flags = match kind {
            EntryKind::Dynamic | EntryKind::Static => F_STATIC,
            EntryKind::Sticky => F_STATIC | F_STICKY,
            EntryKind::Local => F_STATIC | F_STICKY | F_LOCAL,
        };
        let port = if kind == EntryKind::Local {
            LOCAL_PORT
        } else {
            port
        };
        let key = pack(fid, mac);
        let h = self.hash(key);
        let i = match self.find(key, h) {
            Ok(i) => {
                self.remove_at(i);
                self.find(key, h).err().unwrap_or(i)
            }
            Err(i) => i,
        };
        if self.len >= self.config.capacity {
            return Err(FdbError::Full {
                capacity: self.config.capacity,
            });
        }
        self.put(
            i,
            Slot {
                key: key | flags,
                port,
                stamp: now as u32,
            },
        );
        self.len += 1;
        Ok(())
    }

    /// Removes (FID, MAC); returns whether it was present.
    pub fn remove(&mut self, fid: u16, mac: MacAddr) -> bool {
        let k = pack(fid, mac);
        match self.find(k, self.hash(k)) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Empties slot `i`, then restores the probe invariant (an entry in bucket `c` with home
    /// bucket `h` has every bucket in `[h, c)` full): while some later entry up to the first
    /// non-full bucket could live in the hole's bucket, it moves into the hole.
    fn remove_at(&mut self, i: usize) {
        let s = self.slot(i);
        if s.key & F_STATIC == 0 {
            self.dynamic -= 1;
            self.port_count(s.port).0 -= 1;
        }
        self.len -= 1;
        let mut hole = i;
        self.put(hole, Slot::default());
        'refill: loop {
            let hb = hole >> 2;
            let mut c = hb;
            loop {
                c = (c + 1) & self.bmask;
                if c == hb {
                    return;
                }
                let mut free = false;
                for k in 0..4 {
                    let j = c * 4 + k;
                    let e = self.slot(j);
                    if e.key == 0 {
                        free = true;
                        continue;
                    }
                    let dist = c.wrapping_sub(self.home(e.key)) & self.bmask;
                    if dist >= c.wrapping_sub(hb) & self.bmask {
                        self.put(hole, e);
                        self.put(j, Slot::default());
                        hole = j;
                        continue 'refill;
                    }
                }
                if free {
                    return;
                }
            }
        }
    }

    /// Removes entries matching `pred` in one full pass; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) -> usize {
        let mut removed = 0;
        let mut i = 0;
        let mut visited = 0;
        while visited < (self.mask + 1) + removed {
            let s = self.slot(i);
            visited += 1;
            if s.key != 0 && !keep(&self.entry(&s)) {
                self.remove_at(i);
                removed += 1;
                continue;
            }
            i = (i + 1) & self.mask;
        }
        removed
    }

    /// Removes every non-local entry on `port` (used when a port is removed).
    pub fn flush_port(&mut self, port: u32) -> usize {
        self.retain(|e| e.port != port || e.kind == EntryKind::Local)
    }

    /// Removes every dynamic entry on any of `ports` in one pass (a spanning-tree flush).
    pub fn flush_dynamic_on(&mut self, ports: &[u32]) -> usize {
        if ports.is_empty() {
            return 0;
        }
        if ports.len() <= 8 {
            return self.retain(|e| e.kind != EntryKind::Dynamic || !ports.contains(&e.port));
        }
        // Many ports (a topology change on a large bridge): a sorted copy, so each entry
        // costs a binary search rather than a scan of the list.
        let mut sorted = ports.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        self.retain(|e| e.kind != EntryKind::Dynamic || sorted.binary_search(&e.port).is_err())
    }

    /// Removes every dynamic entry.
    pub fn flush_dynamic(&mut self) -> usize {
        self.retain(|e| e.kind != EntryKind::Dynamic)
    }

    /// Visits up to `budget` slots from where the last call stopped, removing expired
    /// entries. A removal re-visits the same slot (the cluster shifted into it), and that
    /// counts toward the budget. Successive calls cycle through the table, so every expired
    /// entry is gone after enough calls to cover one pass (see
    /// [`AgeReport::pass_complete`]); [`age_all`](Self::age_all) does a whole pass at once.
    pub fn age(&mut self, now: u64, budget: usize) -> AgeReport {
        let now32 = now as u32;
        let mut r = AgeReport::default();
        while r.visited < budget {
            r.visited += 1;
            let s = self.slot(self.cursor);
            if s.key != 0 && self.expired(&s, now32) {
                self.remove_at(self.cursor);
                r.removed += 1;
                continue;
            }
            self.cursor = (self.cursor + 1) & self.mask;
            self.swept += 1;
            if self.swept == (self.mask + 1) {
                self.swept = 0;
                r.pass_complete = true;
                break;
            }
        }
        r
    }

    /// Removes every expired entry now (one full pass over the table, unbounded work).
    pub fn age_all(&mut self, now: u64) -> usize {
        let ageing = self.config.ageing_ms;
        self.retain(|e| e.kind != EntryKind::Dynamic || (now as u32).wrapping_sub(e.stamp) < ageing)
    }

    /// Every entry (expired ones included until swept), in slot order.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| (0..4).map(|k| b.get(k)))
            .filter(|s| s.key != 0)
            .map(|s| self.entry(&s))
    }

    /// Whether the entry at (FID, MAC) is expired at `now`.
    pub fn is_expired(&self, e: &Entry, now: u64) -> bool {
        e.kind == EntryKind::Dynamic && (now as u32).wrapping_sub(e.stamp) >= self.config.ageing_ms
    }
}

#[cfg(feature = "alloc")]
/// A cache prefetch hint (one of the crate's three `unsafe` blocks, with [`hits`]' SSE2 call
/// and the flood loop's `set_len`).
#[allow(unsafe_code)]
pub(crate) mod prefetch {
    /// Asks the CPU to bring the cache line at `p` into L1. A hint only: it never faults,
    /// whatever `p` is, and has no effect on program semantics.
    #[inline(always)]
    pub(crate) fn read(p: *const i8) {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(miri)))]
        // SAFETY: `_mm_prefetch` needs SSE, which the cfg guarantees; PREFETCHT0 does not
        // access memory architecturally, so any address (even an invalid one) is allowed.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p);
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(miri))))]
        let _ = p;
    }
}

#[cfg(test)]
mod tests;
