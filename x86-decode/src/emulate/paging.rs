//! The guest page-table walker: 32-bit paging (with PSE and PSE-36), PAE, 4-level and 5-level
//! paging, with the access-rights rules of Intel SDM Vol. 3 §4.6 (U/S, R/W with CR0.WP, NX,
//! SMEP, SMAP with RFLAGS.AC), reserved-bit checks (§4.5 tables 4-4 to 4-20), optional
//! accessed/dirty updates by compare-exchange, canonical checks, and #PF error codes (§4.7).
//!
//! Not modelled: protection keys (CR4.PKE/PKS), HLAT, shadow-stack pages, and the
//! implicit-supervisor accesses of descriptor-table loads (the emulator never makes one).

use super::cpu::{bits, Memory, MemoryError, Region};

/// Which paging structure hierarchy translates linear addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PagingMode {
    /// CR0.PG = 0: linear addresses are physical (32 bits outside long mode).
    Disabled,
    /// 32-bit paging (CR4.PAE = 0), 4 MiB pages with CR4.PSE.
    Bits32,
    /// PAE paging (CR4.PAE = 1, EFER.LMA = 0).
    Pae,
    /// 4-level paging (EFER.LMA = 1, CR4.LA57 = 0).
    Level4,
    /// 5-level paging (EFER.LMA = 1, CR4.LA57 = 1).
    Level5,
}

/// The registers that control translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PagingState {
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// The PAE PDPTEs loaded with CR3, if known (else they are read from memory).
    pub pdptes: Option<[u64; 4]>,
    /// MAXPHYADDR (CPUID 0x80000008 EAX bits 7:0), 32–52. Physical-address bits at and above it
    /// in a paging entry are reserved.
    pub max_physical_bits: u8,
}

impl PagingState {
    /// The paging mode these registers select.
    #[must_use]
    pub const fn mode(&self) -> PagingMode {
        if self.cr0 & bits::CR0_PG == 0 {
            PagingMode::Disabled
        } else if self.cr4 & bits::CR4_PAE == 0 {
            PagingMode::Bits32
        } else if self.efer & bits::EFER_LMA == 0 {
            PagingMode::Pae
        } else if self.cr4 & bits::CR4_LA57 == 0 {
            PagingMode::Level4
        } else {
            PagingMode::Level5
        }
    }

    fn nxe(&self) -> bool {
        self.efer & bits::EFER_NXE != 0
    }

    fn phys_mask(&self) -> u64 {
        let m = self.max_physical_bits.clamp(32, 52);
        (1u64 << m) - 1
    }
}

/// What kind of access is being translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// A data read.
    Read,
    /// A data write (also the access of a read-modify-write instruction).
    Write,
    /// An instruction fetch.
    Execute,
}

/// One access to translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// A user-mode access (CPL = 3).
    pub user: bool,
    /// RFLAGS.AC (with CR4.SMAP, lets supervisor data accesses reach user pages).
    pub ac: bool,
}

/// #PF error-code bits (SDM Vol. 3 §4.7).
pub mod pf {
    /// P: the fault was a protection violation (0: a not-present entry).
    pub const P: u32 = 1 << 0;
    /// W/R: the access was a write.
    pub const W: u32 = 1 << 1;
    /// U/S: the access was a user-mode access.
    pub const U: u32 = 1 << 2;
    /// RSVD: a reserved bit was set in a paging entry.
    pub const RSVD: u32 = 1 << 3;
    /// I/D: the access was an instruction fetch (reported only with SMEP or PAE + NXE).
    pub const ID: u32 = 1 << 4;
}

/// A page fault: the error code and the linear address (CR2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageFault {
    /// The #PF error code ([`pf`] bits).
    pub error_code: u32,
    /// The faulting linear address, for CR2.
    pub address: u64,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The guest takes a page fault.
    #[error("page fault at {:#x}, error code {:#x}", .0.address, .0.error_code)]
    PageFault(PageFault),
    /// The linear address is not canonical for the paging mode (#GP or #SS).
    #[error("non-canonical linear address {0:#x}")]
    NonCanonical(u64),
    /// Reading or updating a paging entry failed.
    #[error("paging entry access failed")]
    Memory(#[source] MemoryError),
    /// Another processor kept changing a paging entry while accessed/dirty bits were set.
    #[error("paging entry changed under the walker")]
    Contended,
}

/// The rights a translation grants: the combination over every level of the walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageRights {
    /// U/S = 1 at every level.
    pub user: bool,
    /// R/W = 1 at every level.
    pub writable: bool,
    /// XD = 1 at some level (with EFER.NXE).
    pub no_execute: bool,
    /// The leaf entry's dirty bit is set (writes need not update it).
    pub dirty: bool,
}

impl PageRights {
    /// Every right, dirty: what paging-disabled translation grants.
    pub const ALL: Self = Self {
        user: true,
        writable: true,
        no_execute: false,
        dirty: true,
    };
}

/// A successful translation of one 4 KiB page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Translation {
    /// The guest-physical address of the linear address translated.
    pub gpa: u64,
    /// The rights of the page.
    pub rights: PageRights,
}

/// Is `la` canonical for the mode (sign-extended from bit 47, or bit 56 with 5-level paging)?
#[must_use]
pub const fn is_canonical(la: u64, la57: bool) -> bool {
    let shift = if la57 { 7 } else { 16 };
    ((la << shift) as i64 >> shift) as u64 == la
}

/// Checks `rights` against `access`; returns the #PF error code on a violation.
pub(crate) fn check_rights(st: &PagingState, rights: PageRights, access: Access) -> Option<u32> {
    let write = access.kind == AccessKind::Write;
    let fetch = access.kind == AccessKind::Execute;
    let denied = if access.user {
        !rights.user || (write && !rights.writable)
    } else {
        let smap = st.cr4 & bits::CR4_SMAP != 0;
        let smep = st.cr4 & bits::CR4_SMEP != 0;
        (fetch && rights.user && smep)
            || (!fetch && rights.user && smap && !access.ac)
            || (write && !rights.writable && st.cr0 & bits::CR0_WP != 0)
    };
    let denied = denied || (fetch && rights.no_execute);
    denied.then(|| error_code(st, access) | pf::P)
}

/// The access-describing bits of a #PF error code (W, U, I/D).
fn error_code(st: &PagingState, access: Access) -> u32 {
    let mut code = 0;
    if access.kind == AccessKind::Write {
        code |= pf::W;
    }
    if access.user {
        code |= pf::U;
    }
    let id_reported = st.cr4 & bits::CR4_SMEP != 0 || (st.cr4 & bits::CR4_PAE != 0 && st.nxe());
    if access.kind == AccessKind::Execute && id_reported {
        code |= pf::ID;
    }
    code
}

/// A walk step: one paging structure level.
#[derive(Clone, Copy)]
struct Level {
    /// Bit position of the lowest linear-address bit this level indexes.
    shift: u32,
    /// May this level map a page (PS = 1)?
    large: bool,
    /// Bits reserved in every entry of this level (besides the address bits above MAXPHYADDR).
    reserved: u64,
    /// Extra bits reserved when PS = 1.
    reserved_large: u64,
}

const BITS_20_13: u64 = 0x1F_E000;
const BITS_29_13: u64 = 0x3FFF_E000;

/// Translates linear address `la` for `access`.
///
/// With `update_ad`, accessed flags are set in every entry used and the dirty flag in the leaf
/// on a write, each by a compare-exchange (the walk restarts if an entry changed; after 16
/// restarts it gives up with [`WalkError::Contended`]).
pub fn translate<M: Memory + ?Sized>(
    mem: &mut M,
    st: &PagingState,
    la: u64,
    access: Access,
    update_ad: bool,
) -> Result<Translation, WalkError> {
    for _ in 0..16 {
        if let Some(t) = walk_once(mem, st, la, access, update_ad)? {
            return Ok(t);
        }
    }
    Err(WalkError::Contended)
}

/// One walk; `Ok(None)` if an accessed/dirty update lost a race (restart).
fn walk_once<M: Memory + ?Sized>(
    mem: &mut M,
    st: &PagingState,
    la: u64,
    access: Access,
    update_ad: bool,
) -> Result<Option<Translation>, WalkError> {
    let nx_reserved = if st.nxe() { 0 } else { 1 << 63 };
    let phys = st.phys_mask();
    // Address bits 51:MAXPHYADDR of a 64-bit entry.
    let above_phys = 0x000F_FFFF_FFFF_F000 & !phys;
    let none = Level {
        shift: 0,
        large: false,
        reserved: 0,
        reserved_large: 0,
    };
    let w = Walk {
        st,
        access,
        update_ad,
    };
    match st.mode() {
        PagingMode::Disabled => {
            let gpa = if st.efer & bits::EFER_LMA != 0 {
                la
            } else {
                la & 0xFFFF_FFFF
            };
            Ok(Some(Translation {
                gpa,
                rights: PageRights::ALL,
            }))
        }
        PagingMode::Bits32 => {
            let la = la & 0xFFFF_FFFF;
            // PSE-36: PDE bits 20:13 hold physical bits 39:32; those at or above MAXPHYADDR are
            // reserved, and bit 21 always is. Without CR4.PSE the PS bit is ignored.
            let m = u32::from(st.max_physical_bits.clamp(32, 52));
            let high = if m >= 40 {
                0
            } else {
                BITS_20_13 & !((1u64 << (m - 19)) - 1)
            };
            let pse = st.cr4 & bits::CR4_PSE != 0;
            let l = [
                Level {
                    shift: 22,
                    large: pse,
                    reserved: 0,
                    reserved_large: high | 1 << 21,
                },
                Level { shift: 12, ..none },
            ];
            w.levels(mem, la, &l, st.cr3 & 0xFFFF_F000, 4)
        }
        PagingMode::Pae => {
            let la = la & 0xFFFF_FFFF;
            let index = (la >> 30) as usize & 3;
            let pdpte = match st.pdptes {
                Some(p) => p[index],
                None => read_entry(mem, (st.cr3 & 0xFFFF_FFE0) + index as u64 * 8, 8)?,
            };
            if pdpte & 1 == 0 {
                return Err(fault(st, la, access, 0));
            }
            // PDPTE: bits 2:1, 8:5 and 63:MAXPHYADDR are reserved.
            if pdpte & (0x1E6 | !phys) != 0 {
                return Err(fault(st, la, access, pf::P | pf::RSVD));
            }
            // PAE PDEs/PTEs: bits 62:MAXPHYADDR reserved, and XD without NXE.
            let r = (!phys & !(1 << 63)) | nx_reserved;
            let l = [
                Level {
                    shift: 21,
                    large: true,
                    reserved: r,
                    reserved_large: BITS_20_13,
                },
                Level {
                    shift: 12,
                    reserved: r,
                    ..none
                },
            ];
            w.levels(mem, la, &l, pdpte & phys & !0xFFF, 8)
        }
        mode @ (PagingMode::Level4 | PagingMode::Level5) => {
            let la57 = mode == PagingMode::Level5;
            if !is_canonical(la, la57) {
                return Err(WalkError::NonCanonical(la));
            }
            let mut l = level_table();
            for level in &mut l {
                level.reserved |= above_phys | nx_reserved;
            }
            let l: &[Level] = if la57 { &l } else { &l[1..] };
            w.levels(mem, la, l, st.cr3 & phys & !0xFFF, 8)
        }
    }
}

/// The 4/5-level hierarchy (PML5, PML4, PDPT, PD, PT) without the per-state reserved bits.
const fn level_table() -> [Level; 5] {
    [
        Level {
            shift: 48,
            large: false,
            reserved: 1 << 7,
            reserved_large: 0,
        },
        Level {
            shift: 39,
            large: false,
            reserved: 1 << 7,
            reserved_large: 0,
        },
        Level {
            shift: 30,
            large: true,
            reserved: 0,
            reserved_large: BITS_29_13,
        },
        Level {
            shift: 21,
            large: true,
            reserved: 0,
            reserved_large: BITS_20_13,
        },
        Level {
            shift: 12,
            large: false,
            reserved: 0,
            reserved_large: 0,
        },
    ]
}

fn fault(st: &PagingState, la: u64, access: Access, extra: u32) -> WalkError {
    WalkError::PageFault(PageFault {
        error_code: error_code(st, access) | extra,
        address: la,
    })
}

fn read_entry<M: Memory + ?Sized>(mem: &mut M, gpa: u64, size: usize) -> Result<u64, WalkError> {
    let mut b = [0u8; 8];
    mem.read(gpa, &mut b[..size]).map_err(WalkError::Memory)?;
    Ok(u64::from_le_bytes(b))
}

/// The fixed inputs of one walk.
struct Walk<'a> {
    st: &'a PagingState,
    access: Access,
    update_ad: bool,
}

impl Walk<'_> {
    fn levels<M: Memory + ?Sized>(
        &self,
        mem: &mut M,
        la: u64,
        levels: &[Level],
        mut table: u64,
        entry_size: usize,
    ) -> Result<Option<Translation>, WalkError> {
        let (st, access, update_ad) = (self.st, self.access, self.update_ad);
        let pse_ok = entry_size == 8 || st.cr4 & bits::CR4_PSE != 0;
        let phys = st.phys_mask();
        let mut rights = PageRights {
            user: true,
            writable: true,
            no_execute: false,
            dirty: false,
        };
        // (entry address, value) of every entry used, for the accessed/dirty updates.
        let mut used = [(0u64, 0u64); 5];
        let index_mask = if entry_size == 8 { 0x1FF } else { 0x3FF };
        for (n, level) in levels.iter().enumerate() {
            let index = (la >> level.shift) & index_mask;
            let addr = table + index * entry_size as u64;
            let e = read_entry(mem, addr, entry_size)?;
            if e & 1 == 0 {
                return Err(fault(st, la, access, 0));
            }
            let large = level.large && pse_ok && e & 0x80 != 0;
            let mut rsvd = level.reserved;
            if large {
                rsvd |= level.reserved_large;
            }
            if e & rsvd != 0 {
                return Err(fault(st, la, access, pf::P | pf::RSVD));
            }
            rights.user &= e & 4 != 0;
            rights.writable &= e & 2 != 0;
            if st.nxe() && entry_size == 8 && e >> 63 != 0 {
                rights.no_execute = true;
            }
            used[n] = (addr, e);
            let count = n + 1;
            let last = n + 1 == levels.len();
            if large || last {
                let page_mask = (1u64 << level.shift) - 1;
                let base = if entry_size == 4 && large {
                    // 4 MiB page: bits 31:22, plus PSE-36 bits 39:32 from PDE bits 20:13.
                    (e & 0xFFC0_0000) | ((e >> 13) & 0xFF) << 32
                } else if entry_size == 4 {
                    e & 0xFFFF_F000
                } else {
                    e & phys & !page_mask & 0x000F_FFFF_FFFF_F000
                };
                rights.dirty = e & 0x40 != 0;
                if let Some(code) = check_rights(st, rights, access) {
                    return Err(WalkError::PageFault(PageFault {
                        error_code: code,
                        address: la,
                    }));
                }
                let t = Translation {
                    gpa: (base & !page_mask) | (la & page_mask),
                    rights,
                };
                if update_ad && !set_accessed_dirty(mem, &used[..count], access, entry_size)? {
                    return Ok(None);
                }
                let mut t = t;
                if update_ad && access.kind == AccessKind::Write {
                    t.rights.dirty = true;
                }
                return Ok(Some(t));
            }
            table = if entry_size == 4 {
                e & 0xFFFF_F000
            } else {
                e & phys & 0x000F_FFFF_FFFF_F000
            };
        }
        // `levels` always ends with a leaf level; an empty list maps nothing.
        Err(fault(st, la, access, 0))
    }
}

/// Sets A in every used entry and D in the leaf for a write. `Ok(false)`: an entry changed.
fn set_accessed_dirty<M: Memory + ?Sized>(
    mem: &mut M,
    used: &[(u64, u64)],
    access: Access,
    entry_size: usize,
) -> Result<bool, WalkError> {
    for (n, &(addr, e)) in used.iter().enumerate() {
        let leaf = n + 1 == used.len();
        let mut want = e | 0x20;
        if leaf && access.kind == AccessKind::Write {
            want |= 0x40;
        }
        if want == e {
            continue;
        }
        let old = e.to_le_bytes();
        let new = want.to_le_bytes();
        let ok = match mem.region(addr) {
            Region::Ram => mem
                .compare_exchange(addr, &old[..entry_size], &new[..entry_size])
                .map_err(WalkError::Memory)?,
            Region::Device => {
                mem.write(addr, &new[..entry_size])
                    .map_err(WalkError::Memory)?;
                true
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A small direct-mapped cache of translations (16 entries of 4 KiB pages), keyed by the
/// linear page and valid for one set of paging registers.
///
/// The emulator looks here before walking and fills it after each walk; the rights are
/// re-checked against every access, and a write to a page cached as clean walks again so that
/// the dirty bit gets set. A VMM may seed it with the translation an intercept reports
/// ([`TranslationCache::insert`]). Like a TLB, it does not see the guest's page-table writes,
/// so the [`Emulator`](super::Emulator) flushes it after every call unless
/// [`Options::keep_translations`](super::Options::keep_translations) is set.
#[derive(Clone, Debug, Default)]
pub struct TranslationCache {
    key: Option<PagingKey>,
    entries: [Option<CacheEntry>; 16],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PagingKey {
    cr0: u64,
    cr3: u64,
    cr4: u64,
    efer: u64,
}

#[derive(Clone, Copy, Debug)]
struct CacheEntry {
    la_page: u64,
    gpa_page: u64,
    rights: PageRights,
}

impl TranslationCache {
    /// An empty cache.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            key: None,
            entries: [None; 16],
        }
    }

    /// Forgets every translation.
    pub fn flush(&mut self) {
        self.entries = [None; 16];
    }

    fn bind(&mut self, st: &PagingState) {
        let key = PagingKey {
            cr0: st.cr0,
            cr3: st.cr3,
            cr4: st.cr4,
            efer: st.efer,
        };
        if self.key != Some(key) {
            self.flush();
            self.key = Some(key);
        }
    }

    /// Records that linear page `la` maps to guest-physical page `gpa` with `rights`, under the
    /// paging registers `st`.
    pub fn insert(&mut self, st: &PagingState, la: u64, gpa: u64, rights: PageRights) {
        self.bind(st);
        let slot = (la >> 12) as usize % self.entries.len();
        self.entries[slot] = Some(CacheEntry {
            la_page: la & !0xFFF,
            gpa_page: gpa & !0xFFF,
            rights,
        });
    }

    /// Translates `la` through the cache, walking the page tables on a miss.
    pub fn translate<M: Memory + ?Sized>(
        &mut self,
        mem: &mut M,
        st: &PagingState,
        la: u64,
        access: Access,
        update_ad: bool,
    ) -> Result<Translation, WalkError> {
        if st.mode() == PagingMode::Disabled {
            return translate(mem, st, la, access, update_ad);
        }
        self.bind(st);
        let slot = (la >> 12) as usize % self.entries.len();
        if let Some(e) = self.entries[slot] {
            let needs_dirty = update_ad && access.kind == AccessKind::Write && !e.rights.dirty;
            if e.la_page == la & !0xFFF && !needs_dirty {
                if let Some(code) = check_rights(st, e.rights, access) {
                    return Err(WalkError::PageFault(PageFault {
                        error_code: code,
                        address: la,
                    }));
                }
                return Ok(Translation {
                    gpa: e.gpa_page | (la & 0xFFF),
                    rights: e.rights,
                });
            }
        }
        let t = translate(mem, st, la, access, update_ad)?;
        let mut rights = t.rights;
        // Without A/D updates there is nothing to redo on a later write.
        if !update_ad {
            rights.dirty = true;
        }
        self.entries[slot] = Some(CacheEntry {
            la_page: la & !0xFFF,
            gpa_page: t.gpa & !0xFFF,
            rights,
        });
        Ok(t)
    }
}
