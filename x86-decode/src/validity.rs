//! Which encodings are defined: lookups over the generated tables in `generated/validity.rs`.
//!
//! The tables (see `examples/gen_tables.rs` for how they are produced) map a key — mode, opcode
//! map, mandatory prefix or `pp`, opcode — to a *row* of bit *patterns*, one per variant of the
//! remaining fields (REX.W, LOCK, VEX.L, EVEX.L'L/b/aaa/z, non-default `vvvv`/V'). A pattern
//! has a bit per register-form ModRM byte (`mod` = 3, indexed by `reg*8 + rm`) and a bit per
//! memory-form `reg` value.

use crate::defs::{Mode, Vendor};
use crate::generated::validity as t;

/// The ModRM byte, and whether a SIB byte follows it (which some encodings require: VSIB,
/// AMX tile loads and stores).
#[derive(Clone, Copy)]
pub(crate) struct ModRm {
    pub(crate) modrm: u8,
    pub(crate) sib: bool,
}

#[inline(always)]
pub(crate) fn pattern_allows(pattern: u16, m: ModRm) -> bool {
    let (reg, mem, memsib) = t::PATTERNS[usize::from(pattern)];
    let modrm = m.modrm;
    if modrm >= 0xC0 {
        reg >> (modrm & 63) & 1 != 0
    } else if m.sib {
        memsib >> ((modrm >> 3) & 7) & 1 != 0
    } else {
        mem >> ((modrm >> 3) & 7) & 1 != 0
    }
}

/// Number of legacy keys: vendor (2) × mode (3) × map (4) × mandatory prefix (4) × opcode.
const LEGACY_KEYS: usize = 2 * 3 * 4 * 4 * 256;

/// The hot path of [`legacy`]: for each key, the pattern for no LOCK and no extra `66`, without
/// and with REX.W, flattened (one load instead of three). Built at compile time.
pub(crate) static LEGACY_FAST: [[u8; 2]; LEGACY_KEYS] = {
    assert!(t::PATTERNS.len() <= 256, "pattern indices must fit in u8");
    assert!(t::PATTERNS[ALL_VALID as usize].0 == u64::MAX);
    assert!(t::PATTERNS[ALL_VALID as usize].1 == 0xFF && t::PATTERNS[ALL_VALID as usize].2 == 0xFF);
    let mut out = [[0u8; 2]; LEGACY_KEYS];
    let mut key = 0;
    while key < LEGACY_KEYS / 256 {
        let page = &t::LEGACY_PAGES[t::LEGACY_PAGE_OF[key] as usize];
        let mut op = 0;
        while op < 256 {
            let row = &t::LEGACY_ROWS[page[op] as usize];
            out[key * 256 + op] = [row[0] as u8, row[4] as u8];
            op += 1;
        }
        key += 1;
    }
    out
};

/// The pattern that allows every ModRM form (the generator interns it first after "none").
pub(crate) const ALL_VALID: u16 = 1;

/// A legacy-map opcode: `map` 0–3, `pclass` 0 none / 1 `66` / 2 `F3` / 3 `F2`; `also66` when
/// a `66` prefix accompanies an `F2`/`F3` mandatory prefix.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn legacy(
    vendor: Vendor,
    mode: Mode,
    map: u8,
    pclass: u8,
    op: u8,
    w: bool,
    lock: bool,
    also66: bool,
    modrm: ModRm,
) -> bool {
    let key = ((usize::from(vendor == Vendor::Amd) * 3 + mode.index()) * 4 + usize::from(map & 3))
        * 4
        + usize::from(pclass & 3);
    if !lock && !also66 {
        let p = u16::from(LEGACY_FAST[key * 256 + usize::from(op)][usize::from(w)]);
        return p == ALL_VALID || pattern_allows(p, modrm);
    }
    let page = t::LEGACY_PAGE_OF[key];
    let row = &t::LEGACY_ROWS[usize::from(t::LEGACY_PAGES[usize::from(page)][usize::from(op)])];
    pattern_allows(
        row[usize::from(w) * 4 + usize::from(lock) * 2 + usize::from(also66)],
        modrm,
    )
}

/// A 3DNow! suffix byte.
#[inline]
pub(crate) fn amd3dnow(mode: Mode, suffix: u8) -> bool {
    t::AMD3DNOW[mode.index()][usize::from(suffix >> 6)] >> (suffix & 63) & 1 != 0
}

/// The VEX/XOP fields that select a validity variant (`vvvv`, R and B un-inverted; R and B
/// only in 64-bit mode).
#[derive(Clone, Copy)]
pub(crate) struct VexFields {
    pub(crate) map: u8,
    pub(crate) pp: u8,
    pub(crate) w: bool,
    pub(crate) l: bool,
    pub(crate) vvvv: u8,
    pub(crate) r: bool,
    pub(crate) b: bool,
}

#[inline(always)]
fn vex_row_allows(row: &[u16; 20], f: VexFields, modrm: ModRm) -> bool {
    let base = (usize::from(f.w) * 2 + usize::from(f.l)) * 5;
    pattern_allows(row[base], modrm)
        && (f.vvvv == 0 || pattern_allows(row[base + if f.vvvv < 8 { 1 } else { 2 }], modrm))
        && (!f.r || pattern_allows(row[base + 3], modrm))
        && (!f.b || pattern_allows(row[base + 4], modrm))
}

/// A VEX-encoded opcode (`map` 0–31; only 1–3 exist).
#[inline]
pub(crate) fn vex(mode: Mode, f: VexFields, op: u8, modrm: ModRm) -> bool {
    if f.map >= 8 {
        return false;
    }
    let key = (mode.index() * 8 + usize::from(f.map)) * 4 + usize::from(f.pp & 3);
    let page = t::VEX_PAGE_OF[key];
    let row = &t::VEX_ROWS[usize::from(t::VEX_PAGES[usize::from(page)][usize::from(op)])];
    vex_row_allows(row, f, modrm)
}

/// An XOP-encoded opcode (`map` 0–31; only 8–10 exist).
#[inline]
pub(crate) fn xop(mode: Mode, f: VexFields, op: u8, modrm: ModRm) -> bool {
    if !(8..=10).contains(&f.map) {
        return false;
    }
    let key = (mode.index() * 3 + usize::from(f.map - 8)) * 4 + usize::from(f.pp & 3);
    let page = t::XOP_PAGE_OF[key];
    let row = &t::XOP_ROWS[usize::from(t::XOP_PAGES[usize::from(page)][usize::from(op)])];
    vex_row_allows(row, f, modrm)
}

/// The EVEX fields that select a validity variant.
#[derive(Clone, Copy)]
pub(crate) struct EvexFields {
    pub(crate) map: u8,
    pub(crate) pp: u8,
    pub(crate) w: bool,
    pub(crate) ll: u8,
    pub(crate) bcst: bool,
    pub(crate) masked: bool,
    pub(crate) z: bool,
    pub(crate) vvvv: u8,
    pub(crate) vprime_used: bool,
    pub(crate) r: bool,
    pub(crate) b: bool,
    pub(crate) rprime: bool,
    pub(crate) x: bool,
}

/// An EVEX-encoded opcode.
#[inline]
pub(crate) fn evex(mode: Mode, f: EvexFields, op: u8, modrm: ModRm) -> bool {
    let key = (mode.index() * 8 + usize::from(f.map & 7)) * 4 + usize::from(f.pp & 3);
    let page = t::EVEX_PAGE_OF[key];
    let row = &t::EVEX_ROWS[usize::from(t::EVEX_PAGES[usize::from(page)][usize::from(op)])];
    let base = ((usize::from(f.w) * 4 + usize::from(f.ll & 3)) * 2 + usize::from(f.bcst)) * 11;
    let mz = usize::from(f.masked) | usize::from(f.z) << 1;
    let ok = |v: usize| pattern_allows(row[base + v], modrm);
    ok(mz)
        && (f.vvvv == 0 || ok(if f.vvvv < 8 { 4 } else { 5 }))
        && (!f.vprime_used || ok(6))
        && (!f.r || ok(7))
        && (!f.b || ok(8))
        && (!f.rprime || ok(9))
        && (!f.x || ok(10))
}

/// The EVEX compressed-displacement factor N (`disp8*N`) of a memory form, or 0 if unknown.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn evex_disp8_n(
    mode: Mode,
    map: u8,
    pp: u8,
    op: u8,
    w: bool,
    ll: u8,
    bcst: bool,
    modrm: u8,
) -> u8 {
    let m64 = usize::from(mode == Mode::Bits64);
    let key = ((m64 * 8 + usize::from(map & 7)) * 4 + usize::from(pp & 3)) * 256 + usize::from(op);
    let row = &t::EVEX_DISP8_N_ROWS[usize::from(t::EVEX_DISP8_N_OF[key])];
    let idx = ((usize::from(w) * 4 + usize::from(ll & 3)) * 2 + usize::from(bcst)) * 8
        + usize::from((modrm >> 3) & 7);
    row[idx]
}
