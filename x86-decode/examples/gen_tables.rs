//! Generates `src/generated/validity.rs`, the encoding-validity tables of the decoder.
//!
//! Which (prefix, map, opcode, ModRM, VEX/EVEX/XOP field) combinations exist is a fact about the
//! instruction set (Intel SDM Vol. 2 Appendix A, AMD APM Vol. 3 Appendix A). Rather than
//! transcribe those opcode maps by hand, this program asks iced-x86 (MIT licensed, used here as
//! an oracle, never linked into the library) whether each combination decodes, and writes the
//! answers as deduplicated bit patterns. The decoder's *structure* (which opcodes take a ModRM
//! byte, immediates, displacements, prefixes) is hand-written in `src/forms.rs` and does not
//! come from here.
//!
//! Run: `cargo run -p x86-decode --release --example gen_tables -- x86-decode/src/generated/validity.rs`
//!
//! Table shape (see `src/validity.rs` for the lookup):
//! * a *pattern* is 64 bits for the register forms (ModRM.mod = 3, indexed by `reg*8+rm`) plus
//!   8 bits for the memory forms without a SIB byte (indexed by `reg`; probed with `[rax]`) and
//!   8 for those with one (probed with `[rax+r13]`/`[eax+ebp]`, or a VSIB index);
//! * a *row* is the list of patterns for one opcode under each variant of the fields that are not
//!   part of the key (REX.W, LOCK, VEX.L, EVEX.L'L/b/aaa/z, non-default vvvv/V');
//! * a *page* maps the 256 opcodes of one (mode, map, mandatory prefix) to rows;
//! * `EVEX_DISP8_N_*` give the compressed-displacement factor N of each EVEX memory form, by
//!   (map, pp, opcode) and then W, L'L, b and ModRM.reg (0 where the form does not exist).

use iced_x86::{Decoder, DecoderError, DecoderOptions};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Does iced decode `bytes` (padded with zeros) without error?
fn valid(bitness: u32, options: u32, bytes: &[u8]) -> bool {
    let mut buf = [0u8; 15];
    buf[..bytes.len()].copy_from_slice(bytes);
    let mut d = Decoder::new(bitness, &buf, options);
    let i = d.decode();
    d.last_error() == DecoderError::None && !i.is_invalid()
}

struct Interner<K> {
    items: Vec<K>,
    index: HashMap<K, u16>,
}

impl<K: Clone + Eq + std::hash::Hash> Default for Interner<K> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash> Interner<K> {
    fn intern(&mut self, k: K) -> u16 {
        if let Some(&i) = self.index.get(&k) {
            return i;
        }
        let i = u16::try_from(self.items.len()).expect("table index overflows u16");
        self.items.push(k.clone());
        self.index.insert(k, i);
        i
    }
}

struct Gen {
    patterns: Interner<(u64, u8, u8)>,
}

/// Opcodes whose register operands must all differ (#UD otherwise): VEX gathers (destination,
/// mask and index), EVEX gathers (destination and index), the AVX512-FP16 complex
/// multiplies and the AMX tile dot products and complex multiplies (destination and both
/// sources). Their patterns are probed with distinct register
/// numbers, and the decoder checks distinctness itself. Keep in sync with `src/decode.rs`.
fn distinct_operands(lead: u8, map: u8, pp: u8, op: u8) -> bool {
    match (lead, map) {
        (0xC4 | 0x62, 2) if pp == 1 && matches!(op, 0x90..=0x93) => true,
        // AMX tile dot products and complex multiplies: three tile registers.
        (0xC4, 2) => matches!((pp, op), (2 | 3, 0x5C) | (_, 0x5E) | (0 | 1, 0x6C)),
        (0x62, 6) => pp >= 2 && matches!(op, 0x56 | 0x57 | 0xD6 | 0xD7),
        _ => false,
    }
}

impl Gen {
    /// Builds the pattern of one opcode variant. `f(modrm_sib)` returns the bytes to probe
    /// with the given ModRM byte (and SIB byte, for the SIB-form memory probe). With `distinct`,
    /// register fields are replaced by fixed, mutually different numbers (reg 1, rm 2, index 5).
    fn pattern(
        &mut self,
        bitness: u32,
        options: u32,
        distinct: bool,
        f: &dyn Fn(&[u8]) -> Vec<u8>,
    ) -> u16 {
        let mut reg = 0u64;
        let mut mem = 0u8;
        let mut memsib = 0u8;
        let probe = |bytes: Vec<u8>| valid(bitness, options, &bytes);
        for r in 0..8u8 {
            let rr = if distinct { 1 } else { r };
            if probe(f(&[rr << 3])) {
                mem |= 1 << r;
            }
            // SIB form: [rax + r13*1] (index 5); 16-bit mode needs 67 to have a SIB byte.
            let sib_bytes = f(&[rr << 3 | 4, 5 << 3]);
            let sib_ok = if bitness == 16 {
                let mut v = vec![0x67];
                v.extend(sib_bytes);
                probe(v)
            } else {
                probe(sib_bytes)
            };
            if sib_ok {
                memsib |= 1 << r;
            }
            for rm in 0..8u8 {
                let m = if distinct {
                    0xC0 | 1 << 3 | 2
                } else {
                    0xC0 | r << 3 | rm
                };
                if probe(f(&[m])) {
                    reg |= 1 << (r * 8 + rm);
                }
            }
        }
        self.patterns.intern((reg, mem, memsib))
    }
}

const MODES: [u32; 3] = [16, 32, 64];
const PCLASS: [Option<u8>; 4] = [None, Some(0x66), Some(0xF3), Some(0xF2)];

fn emit_array(out: &mut String, name: &str, ty: &str, items: &[String]) {
    let _ = writeln!(out, "pub(crate) static {name}: [{ty}; {}] = [", items.len());
    for chunk in items.chunks(8) {
        let _ = writeln!(out, "    {},", chunk.join(", "));
    }
    let _ = writeln!(out, "];");
}

fn emit_rows<const N: usize>(out: &mut String, name: &str, rows: &Interner<[u16; N]>) {
    let items: Vec<String> = rows
        .items
        .iter()
        .map(|r| {
            format!(
                "[{}]",
                r.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    emit_array(out, name, &format!("[u16; {N}]"), &items);
}

fn emit_pages(out: &mut String, name: &str, pages: &Interner<Vec<u16>>, of: &[u16]) {
    let items: Vec<String> = pages
        .items
        .iter()
        .map(|p| {
            format!(
                "[{}]",
                p.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    emit_array(out, &format!("{name}_PAGES"), "[u16; 256]", &items);
    let of: Vec<String> = of.iter().map(|x| x.to_string()).collect();
    emit_array(out, &format!("{name}_PAGE_OF"), "u16", &of);
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: gen_tables <output.rs>");
    let mut g = Gen {
        patterns: Interner::default(),
    };
    // Pattern 0 is "nothing valid", so a pruned variant can point at it.
    g.patterns.intern((0, 0, 0));
    let empty = 0u16;

    // Legacy maps: key (vendor, mode, map, mandatory prefix);
    // row = [W][LOCK][66 also present, for an F2/F3 mandatory prefix].
    let mut legacy_rows: Interner<[u16; 8]> = Interner::default();
    let mut legacy_pages: Interner<Vec<u16>> = Interner::default();
    let mut legacy_of = Vec::new();
    for options in [DecoderOptions::NONE, DecoderOptions::AMD] {
        for &bits in &MODES {
            for map in 0..4u8 {
                for pfx in PCLASS {
                    let mut page = Vec::with_capacity(256);
                    for op in 0..=255u8 {
                        let mut row = [empty; 8];
                        for vi in 0..8 {
                            let (w, lock, also66) = (vi & 4 != 0, vi & 2 != 0, vi & 1 != 0);
                            if (w && bits != 64) || (also66 && !matches!(pfx, Some(0xF2 | 0xF3))) {
                                row[vi] = row[vi & !(4 | 1)];
                                continue;
                            }
                            let f = move |modrm: &[u8]| {
                                let mut v = Vec::new();
                                if lock {
                                    v.push(0xF0);
                                }
                                if also66 {
                                    v.push(0x66);
                                }
                                if let Some(p) = pfx {
                                    v.push(p);
                                }
                                if w {
                                    v.push(0x48);
                                }
                                match map {
                                    1 => v.push(0x0F),
                                    2 => v.extend([0x0F, 0x38]),
                                    3 => v.extend([0x0F, 0x3A]),
                                    _ => {}
                                }
                                v.push(op);
                                v.extend_from_slice(modrm);
                                if map == 1 && op == 0x0F {
                                    // 3DNow!: the opcode is the byte after ModRM/SIB/disp; probe
                                    // with PFADD (9E) and check the suffix separately.
                                    v.push(0x9E);
                                }
                                v
                            };
                            row[vi] = g.pattern(bits, options, false, &f);
                        }
                        page.push(legacy_rows.intern(row));
                    }
                    legacy_of.push(legacy_pages.intern(page));
                }
            }
        }
    }

    // 3DNow! suffixes: per mode, 256 bits.
    let mut amd3dnow = Vec::new();
    for &bits in &MODES {
        let mut words = [0u64; 4];
        for s in 0..=255u8 {
            if valid(bits, DecoderOptions::NONE, &[0x0F, 0x0F, 0xC1, s]) {
                words[usize::from(s / 64)] |= 1 << (s % 64);
            }
        }
        amd3dnow.push(format!(
            "[{:#x}, {:#x}, {:#x}, {:#x}]",
            words[0], words[1], words[2], words[3]
        ));
    }

    // VEX (C4 form) and XOP: key (mode, map, pp); row = [W][L][variant] with variants
    // 0 plain, 1 vvvv in 1-7, 2 vvvv in 8-15, 3 R set, 4 B set (20 patterns).
    let vexlike = |lead: u8, maps: &[u8], g: &mut Gen| {
        let mut rows: Interner<[u16; 20]> = Interner::default();
        let mut pages: Interner<Vec<u16>> = Interner::default();
        let mut of = Vec::new();
        for &bits in &MODES {
            for &map in maps {
                for pp in 0..4u8 {
                    let mut page = Vec::with_capacity(256);
                    for op in 0..=255u8 {
                        let mut row = [empty; 20];
                        for w in 0..2u8 {
                            for l in 0..2u8 {
                                let base = (w * 2 + l) as usize * 5;
                                for var in 0..5u8 {
                                    if var >= 1 && row[base] == empty {
                                        continue;
                                    }
                                    // Stored (inverted) vvvv and R/X/B.
                                    // Stored (inverted) vvvv: 1111 (unused), 1100 (3), 0100 (11).
                                    let vvvv = match var {
                                        1 => 0xC,
                                        2 => 0x4,
                                        _ => 0xF,
                                    };
                                    let rxb = match var {
                                        3 => 0x60,
                                        4 => 0xC0,
                                        _ => 0xE0,
                                    };
                                    let f = move |modrm: &[u8]| {
                                        let mut v = vec![
                                            lead,
                                            rxb | map,
                                            w << 7 | vvvv << 3 | l << 2 | pp,
                                            op,
                                        ];
                                        v.extend_from_slice(modrm);
                                        v
                                    };
                                    let distinct = distinct_operands(lead, map, pp, op);
                                    row[base + var as usize] =
                                        g.pattern(bits, DecoderOptions::NONE, distinct, &f);
                                }
                            }
                        }
                        page.push(rows.intern(row));
                    }
                    of.push(pages.intern(page));
                }
            }
        }
        (rows, pages, of)
    };
    let (vex_rows, vex_pages, vex_of) = vexlike(0xC4, &[0, 1, 2, 3, 4, 5, 6, 7], &mut g);
    let (xop_rows, xop_pages, xop_of) = vexlike(0x8F, &[8, 9, 10], &mut g);

    // EVEX: key (mode, map, pp); row = [W][L'L][b][variant] with variants
    // 0 plain, 1 aaa != 0, 2 z, 3 z + aaa, 4 vvvv in 1-7, 5 vvvv in 8-15, 6 V' set,
    // 7 R set, 8 B set, 9 R' set, 10 X set (176 patterns).
    let mut evex_rows: Interner<[u16; 176]> = Interner::default();
    let mut evex_pages: Interner<Vec<u16>> = Interner::default();
    let mut evex_of = Vec::new();
    for &bits in &MODES {
        for map in 0..8u8 {
            for pp in 0..4u8 {
                let mut page = Vec::with_capacity(256);
                for op in 0..=255u8 {
                    let mut row = [empty; 176];
                    for w in 0..2u8 {
                        for ll in 0..4u8 {
                            for b in 0..2u8 {
                                let base = ((w as usize * 4 + ll as usize) * 2 + b as usize) * 11;
                                for var in 0..11u8 {
                                    if var >= 2 && row[base] == empty && row[base + 1] == empty {
                                        continue;
                                    }
                                    // The probe masks when the plain form is invalid but the
                                    // masked one is valid (gathers and scatters need a mask).
                                    let mask = u8::from(var >= 4 && row[base] == empty);
                                    let (aaa, z, vvvv, vp) = match var {
                                        0 => (0, 0, 0xF, 1),
                                        1 => (1, 0, 0xF, 1),
                                        2 => (0, 1, 0xF, 1),
                                        3 => (1, 1, 0xF, 1),
                                        4 => (mask, 0, 0xC, 1),
                                        5 => (mask, 0, 0x4, 1),
                                        6 => (mask, 0, 0xF, 0),
                                        _ => (mask, 0, 0xF, 1),
                                    };
                                    // Stored (inverted) R X B R'.
                                    let rxbr = match var {
                                        7 => 0x70,
                                        8 => 0xD0,
                                        9 => 0xE0,
                                        10 => 0xB0,
                                        _ => 0xF0,
                                    };
                                    let f = move |modrm: &[u8]| {
                                        let mut v = vec![
                                            0x62,
                                            rxbr | map,
                                            w << 7 | vvvv << 3 | 4 | pp,
                                            z << 7 | ll << 5 | b << 4 | vp << 3 | aaa,
                                            op,
                                        ];
                                        v.extend_from_slice(modrm);
                                        v
                                    };
                                    let distinct = distinct_operands(0x62, map, pp, op);
                                    row[base + var as usize] =
                                        g.pattern(bits, DecoderOptions::NONE, distinct, &f);
                                }
                            }
                        }
                    }
                    page.push(evex_rows.intern(row));
                }
                evex_of.push(evex_pages.intern(page));
            }
        }
    }

    // EVEX compressed displacement: N for each (32/64-bit mode, map, pp, opcode) and
    // [W][L'L][b][ModRM.reg], probed with `[eax/rax+ecx/rcx*1+1]` (a SIB byte, so VSIB forms
    // decode too) and read back from iced's displacement. 0 = not a valid memory form. 16-bit
    // mode uses the 32-bit table (N does not depend on the address size).
    let mut n_rows: Interner<Vec<u8>> = Interner::default();
    let mut n_of = Vec::new();
    for bits in [32u32, 64] {
        for map in 0..8u8 {
            for pp in 0..4u8 {
                for op in 0..=255u8 {
                    let mut row = vec![0u8; 128];
                    for w in 0..2u8 {
                        for ll in 0..4u8 {
                            for b in 0..2u8 {
                                for reg in 0..8u8 {
                                    let idx = if reg == 1 { 2 } else { 1 };
                                    let mut n = 0u8;
                                    // Masked and unmasked, with vvvv unused (1111) and with vvvv = 3
                                    // (for forms whose registers must all differ).
                                    for (aaa, vvvv) in
                                        [(1u8, 0x78u8), (0, 0x78), (1, 0x60), (0, 0x60)]
                                    {
                                        let bytes = [
                                            0x62,
                                            0xF0 | map,
                                            w << 7 | vvvv | 4 | pp,
                                            ll << 5 | b << 4 | 0x08 | aaa,
                                            op,
                                            0x44 | reg << 3,
                                            idx << 3,
                                            1,
                                        ];
                                        let mut buf = [0u8; 15];
                                        buf[..8].copy_from_slice(&bytes);
                                        let mut d = Decoder::new(bits, &buf, DecoderOptions::NONE);
                                        let i = d.decode();
                                        if d.last_error() == DecoderError::None && !i.is_invalid() {
                                            n = u8::try_from(i.memory_displacement64())
                                                .unwrap_or(0);
                                            break;
                                        }
                                    }
                                    row[usize::from((((w * 4 + ll) * 2 + b) * 8) + reg)] = n;
                                }
                            }
                        }
                    }
                    n_of.push(n_rows.intern(row));
                }
            }
        }
    }

    let mut out = String::new();
    out.push_str(
        "// @generated by `cargo run -p x86-decode --release --example gen_tables -- <this file>`.\n\
         // Do not edit by hand: see `examples/gen_tables.rs` for how it is derived.\n\n",
    );
    let pats: Vec<String> = g
        .patterns
        .items
        .iter()
        .map(|(r, m, s)| format!("({r:#x}, {m:#x}, {s:#x})"))
        .collect();
    emit_array(&mut out, "PATTERNS", "(u64, u8, u8)", &pats);
    emit_rows(&mut out, "LEGACY_ROWS", &legacy_rows);
    emit_pages(&mut out, "LEGACY", &legacy_pages, &legacy_of);
    emit_array(&mut out, "AMD3DNOW", "[u64; 4]", &amd3dnow);
    emit_rows(&mut out, "VEX_ROWS", &vex_rows);
    emit_pages(&mut out, "VEX", &vex_pages, &vex_of);
    emit_rows(&mut out, "XOP_ROWS", &xop_rows);
    emit_pages(&mut out, "XOP", &xop_pages, &xop_of);
    emit_rows(&mut out, "EVEX_ROWS", &evex_rows);
    emit_pages(&mut out, "EVEX", &evex_pages, &evex_of);
    let rows: Vec<String> = n_rows
        .items
        .iter()
        .map(|r| {
            format!(
                "[{}]",
                r.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    emit_array(&mut out, "EVEX_DISP8_N_ROWS", "[u8; 128]", &rows);
    let of: Vec<String> = n_of.iter().map(|x| x.to_string()).collect();
    emit_array(&mut out, "EVEX_DISP8_N_OF", "u16", &of);
    std::fs::write(&path, out).expect("write output");
    eprintln!(
        "patterns {} legacy rows {} pages {}; vex rows {} pages {}; xop rows {} pages {}; evex rows {} pages {}",
        g.patterns.items.len(),
        legacy_rows.items.len(),
        legacy_pages.items.len(),
        vex_rows.items.len(),
        vex_pages.items.len(),
        xop_rows.items.len(),
        xop_pages.items.len(),
        evex_rows.items.len(),
        evex_pages.items.len()
    );
}
