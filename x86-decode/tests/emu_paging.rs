//! The page walker: golden walks for every paging mode and every fault type, and a property
//! test against a simple reference walker written here from the SDM's tables.
#![allow(clippy::nonminimal_bool)] // the reference walker spells out the SDM rules

mod emu_support;

use emu_support::*;
use proptest::prelude::*;
use x86_decode::emulate::bits;
use x86_decode::emulate::paging::{
    pf, translate, Access, AccessKind, PageFault, PagingState, TranslationCache, WalkError,
};

fn st(cr0: u64, cr3: u64, cr4: u64, efer: u64) -> PagingState {
    PagingState {
        cr0,
        cr3,
        cr4,
        efer,
        pdptes: None,
        max_physical_bits: 46,
    }
}

const PG: u64 = bits::CR0_PG | bits::CR0_PE;
const WP: u64 = bits::CR0_WP;
const LONG: u64 = bits::EFER_LMA | bits::EFER_LME;
const NXE: u64 = bits::EFER_NXE;
const PAE: u64 = bits::CR4_PAE;

fn acc(kind: AccessKind, user: bool) -> Access {
    Access {
        kind,
        user,
        ac: false,
    }
}
const R: AccessKind = AccessKind::Read;
const W: AccessKind = AccessKind::Write;
const X: AccessKind = AccessKind::Execute;

fn pf_at(address: u64, error_code: u32) -> Result<u64, WalkError> {
    Err(WalkError::PageFault(PageFault {
        error_code,
        address,
    }))
}

fn tr(mem: &mut SparseMemory, s: &PagingState, la: u64, a: Access) -> Result<u64, WalkError> {
    translate(mem, s, la, a, false).map(|t| t.gpa)
}

/// A 4-level hierarchy: 0x7000_1000 → 0x5000 (user, writable, dirty-clean).
fn four_level() -> (SparseMemory, Tables, PagingState) {
    let mut mem = SparseMemory::new();
    let mut t = Tables::new(&mut mem, 0x10_0000, 4);
    t.map(&mut mem, 0x7000_1000, 0x5000, P | RW | US, RW | US);
    let s = st(PG | WP, 0x10_0000, PAE, LONG | NXE);
    (mem, t, s)
}

#[test]
fn four_level_translates_and_sets_accessed_dirty() {
    let (mut mem, t, s) = four_level();
    assert_eq!(tr(&mut mem, &s, 0x7000_1234, acc(R, true)), Ok(0x5234));
    let leaf = t.leaf(&mem, 0x7000_1000);
    assert_eq!(
        mem.read_u64(leaf) & (A | D),
        0,
        "no A/D update without update_ad"
    );
    translate(&mut mem, &s, 0x7000_1234, acc(R, false), true).unwrap();
    assert_eq!(mem.read_u64(leaf) & (A | D), A);
    assert_eq!(mem.read_u64(0x10_0000) & A, A, "PML4E accessed");
    let t2 = translate(&mut mem, &s, 0x7000_1234, acc(W, false), true).unwrap();
    assert!(t2.rights.dirty);
    assert_eq!(mem.read_u64(leaf) & (A | D), A | D);
}

#[test]
fn four_level_not_present_at_each_level() {
    let (mut mem, t, s) = four_level();
    // Unmapped PML4 slot, PDPT slot, PD slot, PT slot.
    for la in [
        0x8000_0000_0000u64 >> 1,
        0x40_7000_1000,
        0x7020_1000,
        0x7000_2000,
    ] {
        assert_eq!(tr(&mut mem, &s, la, acc(R, false)), pf_at(la, 0), "{la:#x}");
        assert_eq!(tr(&mut mem, &s, la, acc(W, true)), pf_at(la, pf::W | pf::U));
        assert_eq!(
            tr(&mut mem, &s, la, acc(X, true)),
            pf_at(la, pf::U | pf::ID)
        );
    }
    let leaf = t.leaf(&mem, 0x7000_1000);
    mem.write_u64(leaf, 0x5000 | RW | US);
    assert_eq!(
        tr(&mut mem, &s, 0x7000_1000, acc(R, false)),
        pf_at(0x7000_1000, 0)
    );
}

#[test]
fn four_level_protection_faults() {
    let (mut mem, t, mut s) = four_level();
    let la = 0x7000_1008;
    let leaf = t.leaf(&mem, la);
    // Supervisor page: user access faults.
    mem.write_u64(leaf, 0x5000 | P | RW);
    assert_eq!(tr(&mut mem, &s, la, acc(R, true)), pf_at(la, pf::P | pf::U));
    assert_eq!(tr(&mut mem, &s, la, acc(R, false)), Ok(0x5008));
    // Read-only page: user write faults; supervisor write faults only with CR0.WP.
    mem.write_u64(leaf, 0x5000 | P | US);
    assert_eq!(
        tr(&mut mem, &s, la, acc(W, true)),
        pf_at(la, pf::P | pf::W | pf::U)
    );
    mem.write_u64(leaf, 0x5000 | P);
    assert_eq!(
        tr(&mut mem, &s, la, acc(W, false)),
        pf_at(la, pf::P | pf::W)
    );
    s.cr0 &= !WP;
    assert_eq!(tr(&mut mem, &s, la, acc(W, false)), Ok(0x5008));
    s.cr0 |= WP;
    // Read-only at an upper level only.
    mem.write_u64(leaf, 0x5000 | P | RW | US);
    let pml4e = mem.read_u64(t.root);
    mem.write_u64(t.root, pml4e & !RW);
    assert_eq!(
        tr(&mut mem, &s, la, acc(W, true)),
        pf_at(la, pf::P | pf::W | pf::U)
    );
    mem.write_u64(t.root, pml4e);
    // NX.
    mem.write_u64(leaf, 0x5000 | P | RW | US | XD);
    assert_eq!(
        tr(&mut mem, &s, la, acc(X, true)),
        pf_at(la, pf::P | pf::U | pf::ID)
    );
    assert_eq!(tr(&mut mem, &s, la, acc(R, true)), Ok(0x5008));
    // SMEP: supervisor fetch from a user page.
    mem.write_u64(leaf, 0x5000 | P | RW | US);
    s.cr4 |= bits::CR4_SMEP;
    assert_eq!(
        tr(&mut mem, &s, la, acc(X, false)),
        pf_at(la, pf::P | pf::ID)
    );
    assert_eq!(tr(&mut mem, &s, la, acc(X, true)), Ok(0x5008));
    // SMAP: supervisor data access to a user page, unless RFLAGS.AC.
    s.cr4 |= bits::CR4_SMAP;
    assert_eq!(tr(&mut mem, &s, la, acc(R, false)), pf_at(la, pf::P));
    assert_eq!(
        tr(&mut mem, &s, la, acc(W, false)),
        pf_at(la, pf::P | pf::W)
    );
    let with_ac = Access {
        kind: W,
        user: false,
        ac: true,
    };
    assert_eq!(tr(&mut mem, &s, la, with_ac), Ok(0x5008));
    assert_eq!(tr(&mut mem, &s, la, acc(R, true)), Ok(0x5008));
    // SMAP + AC still obeys WP for read-only user pages.
    mem.write_u64(leaf, 0x5000 | P | US);
    assert_eq!(tr(&mut mem, &s, la, with_ac), pf_at(la, pf::P | pf::W));
}

#[test]
fn four_level_reserved_bits() {
    let (mut mem, t, mut s) = four_level();
    let la = 0x7000_1000;
    let leaf = t.leaf(&mem, la);
    // Address bit above MAXPHYADDR (46).
    mem.write_u64(leaf, 1 << 47 | 0x5000 | P | RW | US);
    assert_eq!(
        tr(&mut mem, &s, la, acc(R, true)),
        pf_at(la, pf::P | pf::RSVD | pf::U)
    );
    // XD without EFER.NXE.
    mem.write_u64(leaf, XD | 0x5000 | P | RW | US);
    s.efer &= !NXE;
    assert_eq!(
        tr(&mut mem, &s, la, acc(W, false)),
        pf_at(la, pf::P | pf::RSVD | pf::W)
    );
    // Without NXE no I/D bit (no SMEP): fetch reports only P|RSVD.
    assert_eq!(
        tr(&mut mem, &s, la, acc(X, false)),
        pf_at(la, pf::P | pf::RSVD)
    );
    s.efer |= NXE;
    // PS in a PML4E.
    mem.write_u64(leaf, 0x5000 | P | RW | US);
    let pml4e = mem.read_u64(t.root);
    mem.write_u64(t.root, pml4e | PS);
    assert_eq!(
        tr(&mut mem, &s, la, acc(R, false)),
        pf_at(la, pf::P | pf::RSVD)
    );
    mem.write_u64(t.root, pml4e);
    // Reserved bit checked before a not-present lower level: a bad PDPTE wins.
    let pdpt = pml4e & 0x000F_FFFF_FFFF_F000;
    let pdpte = mem.read_u64(pdpt + 8);
    mem.write_u64(pdpt + 8, pdpte | PS | 1 << 20);
    assert_eq!(
        tr(&mut mem, &s, la, acc(R, false)),
        pf_at(la, pf::P | pf::RSVD)
    );
}

#[test]
fn large_pages() {
    let mut mem = SparseMemory::new();
    let root = 0x10_0000;
    let mut t = Tables::new(&mut mem, root, 4);
    t.map(&mut mem, 0x4000_0000, 0, P | RW, RW);
    let s = st(PG, root, PAE, LONG);
    // Turn the PDE for 0x4000_0000 into a 2 MiB page at 0x20_0000 (PAT bit 12 must not leak).
    let pml4e = mem.read_u64(root);
    let pdpt = pml4e & 0x000F_FFFF_FFFF_F000;
    let pdpte = mem.read_u64(pdpt + 8);
    let pd = pdpte & 0x000F_FFFF_FFFF_F000;
    mem.write_u64(pd, 0x20_0000 | 1 << 12 | P | RW | PS);
    assert_eq!(tr(&mut mem, &s, 0x4012_3456, acc(R, false)), Ok(0x32_3456));
    // Bits 20:13 are reserved in a 2 MiB PDE.
    mem.write_u64(pd, 0x20_0000 | 1 << 13 | P | RW | PS);
    assert_eq!(
        tr(&mut mem, &s, 0x4012_3456, acc(R, false)),
        pf_at(0x4012_3456, pf::P | pf::RSVD)
    );
    // A 1 GiB page.
    mem.write_u64(pdpt + 8, 0x8000_0000 | P | RW | PS);
    assert_eq!(
        tr(&mut mem, &s, 0x4712_3456, acc(W, false)),
        Ok(0x8712_3456)
    );
    mem.write_u64(pdpt + 8, 0x8000_0000 | 1 << 29 | P | RW | PS);
    assert_eq!(
        tr(&mut mem, &s, 0x4712_3456, acc(W, false)),
        pf_at(0x4712_3456, pf::P | pf::RSVD | pf::W)
    );
}

#[test]
fn five_level_and_canonical() {
    let mut mem = SparseMemory::new();
    let mut t = Tables::new(&mut mem, 0x10_0000, 5);
    let la = 0x00AB_0000_7000_1000u64;
    t.map(&mut mem, la, 0x9000, P | RW, RW);
    let s = st(PG, 0x10_0000, PAE | bits::CR4_LA57, LONG);
    assert_eq!(tr(&mut mem, &s, la | 0x10, acc(R, false)), Ok(0x9010));
    // Canonical under LA57 but not under 4-level paging.
    let s4 = PagingState { cr4: PAE, ..s };
    assert_eq!(
        tr(&mut mem, &s4, la, acc(R, false)),
        Err(WalkError::NonCanonical(la))
    );
    let bad = 0x0100_0000_0000_0000u64;
    assert_eq!(
        tr(&mut mem, &s, bad, acc(R, false)),
        Err(WalkError::NonCanonical(bad))
    );
    // PS is reserved in a PML5E.
    let e = mem.read_u64(0x10_0000 + ((la >> 48) & 0x1FF) * 8);
    mem.write_u64(0x10_0000 + ((la >> 48) & 0x1FF) * 8, e | PS);
    assert_eq!(
        tr(&mut mem, &s, la, acc(R, false)),
        pf_at(la, pf::P | pf::RSVD)
    );
}

#[test]
fn pae_paging() {
    let mut mem = SparseMemory::new();
    // CR3 → PDPT at 0x3020 (32-byte aligned), PD at 0x4000, PT at 0x5000.
    let cr3 = 0x3020;
    mem.write_u64(cr3 + 8, 0x4000 | P); // PDPTE 1: 0x4000_0000..0x7FFF_FFFF
    mem.write_u64(0x4000, 0x5000 | P | RW | US);
    mem.write_u64(0x5000 + 3 * 8, 0x1_2345_6000 | P | RW | US | XD);
    mem.write_u64(0x4000 + 8, 0x60_0000 | P | RW | PS); // 2 MiB page at 0x4020_0000
    let s = st(PG | WP, cr3, PAE, NXE);
    assert_eq!(
        tr(&mut mem, &s, 0x4000_3abc, acc(W, true)),
        Ok(0x1_2345_6abc)
    );
    assert_eq!(
        tr(&mut mem, &s, 0x4000_3abc, acc(X, true)),
        pf_at(0x4000_3abc, pf::P | pf::U | pf::ID)
    );
    assert_eq!(tr(&mut mem, &s, 0x4021_0000, acc(R, false)), Ok(0x61_0000));
    assert_eq!(
        tr(&mut mem, &s, 0x4021_0000, acc(R, true)),
        pf_at(0x4021_0000, pf::P | pf::U)
    );
    // Not-present PDPTE.
    assert_eq!(
        tr(&mut mem, &s, 0x8000_0000, acc(R, false)),
        pf_at(0x8000_0000, 0)
    );
    // Reserved bits in a PDPTE (bit 1), and bits 62:MAXPHYADDR in a PTE.
    mem.write_u64(cr3 + 16, 0x4000 | P | RW);
    assert_eq!(
        tr(&mut mem, &s, 0x8000_0000, acc(R, false)),
        pf_at(0x8000_0000, pf::P | pf::RSVD)
    );
    mem.write_u64(0x5000 + 3 * 8, 1 << 60 | 0x6000 | P);
    assert_eq!(
        tr(&mut mem, &s, 0x4000_3000, acc(R, false)),
        pf_at(0x4000_3000, pf::P | pf::RSVD)
    );
    // PDPTEs supplied by the VMM win over memory.
    let mut s2 = s;
    s2.pdptes = Some([0, 0x4000 | P, 0, 0]);
    mem.write_u64(0x5000 + 3 * 8, 0x7000 | P);
    mem.write_u64(cr3 + 8, 0);
    assert_eq!(tr(&mut mem, &s2, 0x4000_3000, acc(R, false)), Ok(0x7000));
}

#[test]
fn bits32_paging() {
    let mut mem = SparseMemory::new();
    let cr3 = 0x2000;
    mem.write_u32(cr3 + 4, 0x3000 | P as u32 | RW as u32 | US as u32); // 0x0040_0000
    mem.write_u32(0x3000 + 4 * 5, 0x8000 | P as u32 | US as u32);
    // 4 MiB page at PDE 2 (0x0080_0000) with PSE-36 bits 13..: physical 0x3_00C0_0000.
    mem.write_u32(
        cr3 + 4 * 2,
        0x00C0_0000 | 3 << 13 | P as u32 | RW as u32 | PS as u32,
    );
    let s = st(PG | WP, cr3, bits::CR4_PSE, 0);
    assert_eq!(tr(&mut mem, &s, 0x0040_5123, acc(R, true)), Ok(0x8123));
    assert_eq!(
        tr(&mut mem, &s, 0x0040_5123, acc(W, true)),
        pf_at(0x0040_5123, pf::P | pf::W | pf::U)
    );
    // No NX in 32-bit paging, no I/D without SMEP.
    assert_eq!(tr(&mut mem, &s, 0x0040_5123, acc(X, true)), Ok(0x8123));
    assert_eq!(
        tr(&mut mem, &s, 0x0090_0000, acc(W, false)),
        Ok(0x3_00D0_0000)
    );
    // MAXPHYADDR 36: PSE-36 bits at and above 36 are reserved (PDE bits 20:17); bit 21 always.
    let s36 = PagingState {
        max_physical_bits: 36,
        ..s
    };
    mem.write_u32(cr3 + 4 * 2, 0x00C0_0000 | 1 << 17 | P as u32 | PS as u32);
    assert_eq!(
        tr(&mut mem, &s36, 0x0090_0000, acc(R, false)),
        pf_at(0x0090_0000, pf::P | pf::RSVD)
    );
    mem.write_u32(cr3 + 4 * 2, 0x00C0_0000 | 1 << 21 | P as u32 | PS as u32);
    assert_eq!(
        tr(&mut mem, &s, 0x0090_0000, acc(R, false)),
        pf_at(0x0090_0000, pf::P | pf::RSVD)
    );
    // Without CR4.PSE the PS bit is ignored: the PDE points to a page table.
    let nopse = PagingState { cr4: 0, ..s };
    mem.write_u32(cr3 + 4 * 2, 0x00C0_0000 | P as u32 | PS as u32);
    mem.write_u32(0x00C0_0000 + 4 * 0x100, 0x9000 | P as u32);
    assert_eq!(tr(&mut mem, &nopse, 0x0090_0000, acc(R, false)), Ok(0x9000));
    // SMEP makes fetch faults report I/D even without PAE.
    let smep = PagingState {
        cr4: bits::CR4_PSE | bits::CR4_SMEP,
        ..s
    };
    assert_eq!(
        tr(&mut mem, &smep, 0x0040_5000, acc(X, false)),
        pf_at(0x0040_5000, pf::P | pf::ID)
    );
    assert_eq!(
        tr(&mut mem, &s, 0x00C0_0000, acc(X, false)),
        pf_at(0x00C0_0000, 0)
    );
}

#[test]
fn paging_disabled_is_identity() {
    let mut mem = SparseMemory::new();
    let s = st(bits::CR0_PE, 0, 0, 0);
    assert_eq!(
        tr(&mut mem, &s, 0x1_2345_6789, acc(W, true)),
        Ok(0x2345_6789)
    );
}

#[test]
fn cache_rechecks_rights_and_sets_dirty() {
    let (mut mem, t, s) = four_level();
    let mut cache = TranslationCache::new();
    let la = 0x7000_1000;
    assert_eq!(
        cache
            .translate(&mut mem, &s, la, acc(R, true), true)
            .unwrap()
            .gpa,
        0x5000
    );
    let leaf = t.leaf(&mem, la);
    assert_eq!(mem.read_u64(leaf) & D, 0);
    // Change the PTE behind the cache's back: a read hits the cache (stale, like a TLB).
    mem.write_u64(leaf, 0x6000 | P | US | A);
    assert_eq!(
        cache
            .translate(&mut mem, &s, la, acc(R, true), true)
            .unwrap()
            .gpa,
        0x5000
    );
    // A write to a page cached clean walks again (and now sees the read-only entry).
    assert_eq!(
        cache
            .translate(&mut mem, &s, la, acc(W, true), true)
            .map(|t| t.gpa),
        pf_at(la, pf::P | pf::W | pf::U)
    );
    // A CR3 change flushes.
    let s2 = PagingState {
        cr3: s.cr3,
        cr4: s.cr4 | bits::CR4_SMEP,
        ..s
    };
    assert_eq!(
        cache
            .translate(&mut mem, &s2, la, acc(R, true), true)
            .unwrap()
            .gpa,
        0x6000
    );
}

// ------------------------------------------------------------------------------------------
// Property test: the walker against a reference walker.

/// The reference: SDM Vol. 3 §4.3–4.7 written out per mode, entry by entry.
fn reference(mem: &SparseMemory, s: &PagingState, la: u64, a: Access) -> Result<u64, WalkError> {
    let m = u32::from(s.max_physical_bits);
    let nxe = s.efer & NXE != 0;
    let pae = s.cr4 & PAE != 0;
    let long = s.efer & bits::EFER_LMA != 0;
    let la57 = s.cr4 & bits::CR4_LA57 != 0;
    let wr = a.kind == W;
    let fetch = a.kind == X;
    let mut code = 0;
    if wr {
        code |= pf::W;
    }
    if a.user {
        code |= pf::U;
    }
    if fetch && (s.cr4 & bits::CR4_SMEP != 0 || (pae && nxe)) {
        code |= pf::ID;
    }
    let fault = |extra: u32| {
        Err(WalkError::PageFault(PageFault {
            error_code: code | extra,
            address: la,
        }))
    };
    let bit = |e: u64, b: u32| e >> b & 1 == 1;
    let range = |hi: u32, lo: u32| -> u64 {
        if hi < lo {
            0
        } else {
            (u64::MAX >> (63 - hi)) & !((1u64 << lo) - 1)
        }
    };
    // Collected entries, top-down; the leaf's page size.
    let mut path: Vec<u64> = Vec::new();
    let page_bits;
    let leaf_addr;
    if !pae {
        let la = la & 0xFFFF_FFFF;
        let pde = mem.read_u64(s.cr3 & 0xFFFF_F000 | (la >> 22) << 2) & 0xFFFF_FFFF;
        if !bit(pde, 0) {
            return fault(0);
        }
        if bit(pde, 7) && s.cr4 & bits::CR4_PSE != 0 {
            let mut rsvd = 1 << 21;
            if m < 40 {
                rsvd |= range(20, m - 19);
            }
            if pde & rsvd != 0 {
                return fault(pf::P | pf::RSVD);
            }
            path.push(pde);
            page_bits = 22;
            leaf_addr = (pde & 0xFFC0_0000) | ((pde >> 13) & 0xFF) << 32;
        } else {
            let pte = mem.read_u64((pde & 0xFFFF_F000) | ((la >> 12) & 0x3FF) << 2) & 0xFFFF_FFFF;
            if !bit(pte, 0) {
                return fault(0);
            }
            path.push(pde);
            path.push(pte);
            page_bits = 12;
            leaf_addr = pte & 0xFFFF_F000;
        }
    } else if !long {
        let la = la & 0xFFFF_FFFF;
        let pdpte = mem.read_u64((s.cr3 & 0xFFFF_FFE0) + (la >> 30) * 8);
        if !bit(pdpte, 0) {
            return fault(0);
        }
        if pdpte & (range(63, m) | 0b1_1110_0110) != 0 {
            return fault(pf::P | pf::RSVD);
        }
        let rsvd = range(62, m) | if nxe { 0 } else { 1 << 63 };
        let pde = mem.read_u64((pdpte & range(m - 1, 12)) + ((la >> 21) & 0x1FF) * 8);
        if !bit(pde, 0) {
            return fault(0);
        }
        if pde & rsvd != 0 || (bit(pde, 7) && pde & range(20, 13) != 0) {
            return fault(pf::P | pf::RSVD);
        }
        path.push(pde);
        if bit(pde, 7) {
            page_bits = 21;
            leaf_addr = pde & range(m - 1, 21);
        } else {
            let pte = mem.read_u64((pde & range(m - 1, 12)) + ((la >> 12) & 0x1FF) * 8);
            if !bit(pte, 0) {
                return fault(0);
            }
            if pte & rsvd != 0 {
                return fault(pf::P | pf::RSVD);
            }
            path.push(pte);
            page_bits = 12;
            leaf_addr = pte & range(m - 1, 12);
        }
    } else {
        let top = if la57 { 56 } else { 47 };
        let ext = (la as i64) >> top;
        if ext != 0 && ext != -1 {
            return Err(WalkError::NonCanonical(la));
        }
        let mut table = s.cr3 & range(m - 1, 12);
        let mut level = if la57 { 5 } else { 4 };
        let rsvd = range(51, m) | if nxe { 0 } else { 1 << 63 };
        loop {
            let shift = 12 + 9 * (level - 1);
            let e = mem.read_u64(table + ((la >> shift) & 0x1FF) * 8);
            if !bit(e, 0) {
                return fault(0);
            }
            let ps = bit(e, 7);
            let bad = e & rsvd != 0
                || (level >= 4 && ps)
                || (level == 3 && ps && e & range(29, 13) != 0)
                || (level == 2 && ps && e & range(20, 13) != 0);
            if bad {
                return fault(pf::P | pf::RSVD);
            }
            path.push(e);
            if level == 1 || (ps && level <= 3) {
                page_bits = shift;
                leaf_addr = e & range(m - 1, shift);
                break;
            }
            table = e & range(m - 1, 12);
            level -= 1;
        }
    }
    let user_ok = path.iter().all(|e| bit(*e, 2));
    let write_ok = path.iter().all(|e| bit(*e, 1));
    let xd = pae && nxe && path.iter().any(|e| bit(*e, 63));
    let cr0_wp = s.cr0 & WP != 0;
    let smap = s.cr4 & bits::CR4_SMAP != 0;
    let smep = s.cr4 & bits::CR4_SMEP != 0;
    let allowed = match (a.user, a.kind) {
        (true, AccessKind::Read) => user_ok,
        (true, AccessKind::Write) => user_ok && write_ok,
        (true, AccessKind::Execute) => user_ok && !xd,
        (false, AccessKind::Read) => !(user_ok && smap && !a.ac),
        (false, AccessKind::Write) => !(user_ok && smap && !a.ac) && (write_ok || !cr0_wp),
        (false, AccessKind::Execute) => !(user_ok && smep) && !xd,
    };
    if !allowed {
        return fault(pf::P);
    }
    let la = if long { la } else { la & 0xFFFF_FFFF };
    Ok(leaf_addr | (la & ((1 << page_bits) - 1)))
}

fn entry_strategy() -> impl Strategy<Value = (u64, u64, bool)> {
    // Flag bits (P mostly set), occasional XD, occasional reserved high bits, occasional PS.
    (
        any::<u16>(),
        prop::bool::weighted(0.3),
        prop::sample::select(vec![
            0u64,
            0,
            0,
            0,
            1 << 46,
            1 << 51,
            1 << 20,
            1 << 13,
            1 << 29,
        ]),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(f, xd, hi, ps)| {
            let mut e = u64::from(f) & 0xE7F;
            if f & 0x1000 != 0 || f % 7 != 0 {
                e |= P;
            }
            if ps {
                e |= PS;
            } else {
                e &= !PS;
            }
            (e | if xd { XD } else { 0 } | hi, hi, ps)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn walker_matches_reference(
        mode in 0u8..4,
        entries in prop::collection::vec(entry_strategy(), 5),
        la_bits in any::<u64>(),
        kind in prop::sample::select(vec![R, W, X]),
        user: bool,
        ac: bool,
        wp: bool,
        nxe: bool,
        smep: bool,
        smap: bool,
        pse: bool,
        maxphy in prop::sample::select(vec![36u8, 40, 46, 52]),
    ) {
        let mut mem = SparseMemory::new();
        // Tables T0..T5 at 0x10000 * (k + 1); each path entry points at the next table.
        let tbl = |k: u64| 0x10000 * (k + 1);
        let (cr4_mode, efer_mode, levels, esize): (u64, u64, usize, u64) = match mode {
            0 => (0, 0, 2, 4),
            1 => (PAE, 0, 3, 8),
            2 => (PAE, LONG, 4, 8),
            _ => (PAE | bits::CR4_LA57, LONG, 5, 8),
        };
        let la = match mode {
            0 | 1 => la_bits & 0xFFFF_FFFF,
            2 => ((la_bits << 16) as i64 >> 16) as u64,
            _ => ((la_bits << 7) as i64 >> 7) as u64,
        };
        let shifts: &[u32] = match mode {
            0 => &[22, 12],
            1 => &[30, 21, 12],
            2 => &[39, 30, 21, 12],
            _ => &[48, 39, 30, 21, 12],
        };
        for (k, &shift) in shifts.iter().enumerate() {
            let (flags, _, _) = entries[k];
            let (idx_mask, stride) = if esize == 4 { (0x3FF, 4) } else if mode == 1 && k == 0 { (3, 8) } else { (0x1FF, 8) };
            let at = tbl(k as u64) + ((la >> shift) & idx_mask) * stride;
            let e = tbl(k as u64 + 1) | flags;
            if esize == 4 {
                mem.write_u32(at, e as u32);
            } else {
                mem.write_u64(at, e);
            }
        }
        let _ = levels;
        let mut cr4 = cr4_mode;
        if smep { cr4 |= bits::CR4_SMEP; }
        if smap { cr4 |= bits::CR4_SMAP; }
        if pse { cr4 |= bits::CR4_PSE; }
        let s = PagingState {
            cr0: PG | if wp { WP } else { 0 },
            cr3: tbl(0),
            cr4,
            efer: efer_mode | if nxe { NXE } else { 0 },
            pdptes: None,
            max_physical_bits: maxphy,
        };
        let a = Access { kind, user, ac };
        let got = translate(&mut mem, &s, la, a, false).map(|t| t.gpa);
        let want = reference(&mem, &s, la, a);
        prop_assert_eq!(got, want, "la {:#x} state {:?} access {:?}", la, s, a);
    }
}
