//! Differential tests against iced-x86: random and prefix-heavy 15- and 32-byte windows in
//! every mode (32 bytes reach the 64-bit fast path), truncated windows, and the `.text` of
//! real binaries on the machine.
//!
//! Window counts default to a size that runs in seconds in a debug build; set
//! `X86_DIFF_WINDOWS=<n>` (per mode and generator) for the large runs, ideally with `--release`.

#[path = "support/iced_diff.rs"]
mod iced_diff;

use iced_diff::{allowed, compare, Mismatch};
use std::collections::BTreeMap;
use x86_decode::{Decoder, Mode, Vendor};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn windows() -> u64 {
    std::env::var("X86_DIFF_WINDOWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            100_000
        } else {
            1_000_000
        })
}

const MODES: [Mode; 3] = [Mode::Bits16, Mode::Bits32, Mode::Bits64];

/// Fills `w` with a prefix-heavy window: legacy prefixes, maybe REX, then an escape or
/// VEX/EVEX/XOP lead, then random bytes.
fn prefix_heavy(r: &mut Rng, mode: Mode, w: &mut [u8; 15]) {
    const PFX: [u8; 11] = [
        0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3,
    ];
    for b in w.iter_mut() {
        *b = r.byte();
    }
    let mut n = 0;
    for _ in 0..r.below(5) {
        w[n] = PFX[r.below(PFX.len() as u64) as usize];
        n += 1;
    }
    if mode == Mode::Bits64 && r.below(2) == 0 {
        w[n] = 0x40 | r.byte() & 15;
        n += 1;
    }
    let leads: [&[u8]; 8] = [
        &[0x0F],
        &[0x0F, 0x38],
        &[0x0F, 0x3A],
        &[0xC4],
        &[0xC5],
        &[0x62],
        &[0x8F],
        &[],
    ];
    let lead = leads[r.below(8) as usize];
    w[n..n + lead.len()].copy_from_slice(lead);
    n += lead.len();
    // Outside 64-bit mode, make VEX/EVEX more likely to be recognised.
    if mode != Mode::Bits64 && matches!(lead, [0xC4] | [0xC5] | [0x62]) && r.below(4) != 0 {
        w[n] |= 0xC0;
    }
}

struct Tally {
    tested: u64,
    allowed: u64,
    by_kind: BTreeMap<(Mode, Mismatch), (u64, Vec<String>)>,
}

impl Tally {
    fn new() -> Self {
        Self {
            tested: 0,
            allowed: 0,
            by_kind: BTreeMap::new(),
        }
    }
    fn check(&mut self, mode: Mode, vendor: Vendor, bytes: &[u8], ip: u64) {
        self.tested += 1;
        if let Some(m) = compare(mode, vendor, bytes, ip) {
            if allowed(mode, bytes, m).is_some() {
                self.allowed += 1;
                return;
            }
            let e = self.by_kind.entry((mode, m)).or_insert((0, Vec::new()));
            e.0 += 1;
            if e.1.len() < 8 {
                e.1.push(
                    bytes
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
        }
    }
    fn finish(self, what: &str) {
        let total: u64 = self.by_kind.values().map(|v| v.0).sum();
        eprintln!(
            "{what}: {} windows, {} mismatches, {} allow-listed",
            self.tested, total, self.allowed
        );
        for ((mode, m), (n, ex)) in &self.by_kind {
            eprintln!("  {mode:?} {m:?}: {n}");
            for e in ex {
                eprintln!("      {e}");
            }
        }
        assert_eq!(total, 0, "{what}: {total} disagreements with iced-x86");
    }
}

/// Semantic-level disagreements, grouped by mode, kind and iced's `Code`.
struct SemTally {
    covered: u64,
    by_kind: BTreeMap<(Mode, iced_diff::SemanticMismatch, String), (u64, String)>,
}

impl SemTally {
    fn new() -> Self {
        Self {
            covered: 0,
            by_kind: BTreeMap::new(),
        }
    }
    fn check(&mut self, mode: Mode, vendor: Vendor, w: &[u8]) {
        let (c, m) = iced_diff::compare_semantic(mode, vendor, w);
        let m = m.map(|m| (m, vendor));
        self.covered += u64::from(c);
        if let Some(m) = m {
            let mut d = iced_x86::Decoder::new(mode.bits(), w, 0);
            let i = d.decode();
            let e = self
                .by_kind
                .entry((mode, m.0, format!("{:?} {:?}", m.1, i.code())))
                .or_insert((0, String::new()));
            e.0 += 1;
            e.1 = w
                .iter()
                .take(i.len())
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    fn finish(self, what: &str) {
        let total: u64 = self.by_kind.values().map(|v| v.0).sum();
        eprintln!(
            "{what} (semantic): {} with a mnemonic, {total} mismatches",
            self.covered
        );
        for ((mode, m, code), (count, ex)) in &self.by_kind {
            eprintln!("  {mode:?} {m:?} {code}: {count}  e.g. {ex}");
        }
        assert_eq!(total, 0, "{what}: semantic disagreements with iced-x86");
    }
}

fn run_random(seed: u64, vendor: Vendor, heavy: bool, what: &str) {
    let n = windows();
    let mut t = Tally::new();
    for mode in MODES {
        let mut r = Rng(seed ^ u64::from(mode.bits()));
        let mut w = [0u8; 15];
        // Every other window is 32 bytes long: the 64-bit fast path takes only windows of at
        // least 32 bytes (shorter ones go the general way), so both paths meet iced here.
        let mut long = [0u8; 32];
        for k in 0..n {
            if heavy {
                prefix_heavy(&mut r, mode, &mut w);
            } else {
                for b in w.iter_mut() {
                    *b = r.byte();
                }
            }
            if k % 2 == 0 {
                t.check(mode, vendor, &w, 0x7FFF_FFF0);
            } else {
                long[..15].copy_from_slice(&w);
                for b in long[15..].iter_mut() {
                    *b = r.byte();
                }
                t.check(mode, vendor, &long, 0x7FFF_FFF0);
            }
        }
    }
    t.finish(what);
}

#[test]
fn random_windows_intel() {
    run_random(0x9E37_79B9_7F4A_7C15, Vendor::Intel, false, "random/intel");
}

#[test]
fn random_windows_amd() {
    run_random(0xD1B5_4A32_D192_ED03, Vendor::Amd, false, "random/amd");
}

#[test]
fn prefix_heavy_windows_intel() {
    run_random(
        0x1234_5678_9ABC_DEF1,
        Vendor::Intel,
        true,
        "prefix-heavy/intel",
    );
}

#[test]
fn prefix_heavy_windows_amd() {
    run_random(0x0BAD_CAFE_F00D_D00D, Vendor::Amd, true, "prefix-heavy/amd");
}

/// Every proper prefix of a valid instruction must be "need more bytes" in both decoders.
#[test]
fn truncated_windows() {
    let n = windows() / 4;
    let mut t = Tally::new();
    for mode in MODES {
        let mut r = Rng(0x5555 ^ u64::from(mode.bits()));
        let d = Decoder::new(mode);
        let mut w = [0u8; 15];
        for _ in 0..n {
            prefix_heavy(&mut r, mode, &mut w);
            if let Ok(i) = d.decode(&w, 0) {
                for cut in 0..i.len() {
                    t.check(mode, Vendor::Intel, &w[..cut], 0);
                }
            }
        }
    }
    t.finish("truncated");
}

/// Returns the `.text` section of an ELF64 little-endian file, if it is one.
fn elf_text(data: &[u8]) -> Option<&[u8]> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    if data.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3A)?);
    let shnum = usize::from(u16_at(0x3C)?);
    let shstrndx = usize::from(u16_at(0x3E)?);
    let sh = |k: usize| shoff + k * shentsize;
    let stroff = usize::try_from(u64_at(sh(shstrndx) + 0x18)?).ok()?;
    for k in 0..shnum {
        let name = stroff + usize::try_from(u32_at(sh(k))?).ok()?;
        if data.get(name..name + 6)? == b".text\0" {
            let off = usize::try_from(u64_at(sh(k) + 0x18)?).ok()?;
            let size = usize::try_from(u64_at(sh(k) + 0x20)?).ok()?;
            return data.get(off..off + size);
        }
    }
    None
}

/// Linear sweep over the `.text` of binaries on this machine, in all three modes: at each
/// position iced decodes (advancing by its length, or 1 when invalid), compare.
#[test]
fn real_binaries() {
    let budget = usize::try_from(windows()).unwrap_or(usize::MAX) * 4;
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    // The toolchain's rustc driver first (the benchmark input), then system binaries.
    let home = std::env::var("RUSTUP_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| std::path::Path::new(&h).join(".rustup")));
    if let Ok(home) = home {
        if let Ok(tcs) = std::fs::read_dir(home.join("toolchains")) {
            for tc in tcs.filter_map(Result::ok) {
                if let Ok(libs) = std::fs::read_dir(tc.path().join("lib")) {
                    files.extend(libs.filter_map(Result::ok).map(|e| e.path()).filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("librustc_driver-"))
                    }));
                }
            }
        }
    }
    for dir in ["/usr/bin", "/usr/lib/x86_64-linux-gnu"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut v: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            files.extend(v.into_iter().take(40));
        }
    }
    let mut t = Tally::new();
    let mut sem = SemTally::new();
    let mut bytes_seen = 0usize;
    for f in files {
        if bytes_seen >= budget {
            break;
        }
        let Ok(data) = std::fs::read(&f) else {
            continue;
        };
        let Some(text) = elf_text(&data) else {
            continue;
        };
        let text = &text[..text.len().min(budget - bytes_seen)];
        bytes_seen += text.len();
        for mode in MODES {
            let mut off = 0;
            while off < text.len() {
                // 32 bytes where there are: the 64-bit fast path's window.
                let end = (off + 32).min(text.len());
                t.check(mode, Vendor::Intel, &text[off..end], 0x40_0000 + off as u64);
                sem.check(mode, Vendor::Intel, &text[off..end]);
                let mut d = iced_x86::Decoder::new(mode.bits(), &text[off..end], 0);
                let i = d.decode();
                off += if i.is_invalid() { 1 } else { i.len() };
            }
        }
    }
    eprintln!("real binaries: {bytes_seen} bytes of .text per mode");
    assert!(t.tested > 0 || bytes_seen == 0);
    t.finish("real binaries");
    sem.finish("real binaries");
}

/// Semantic level: mnemonic and RFLAGS effects agree with iced wherever we claim them, over
/// random windows and real code in all modes.
#[test]
fn semantic_level() {
    let n = windows();
    let mut sem = SemTally::new();
    for mode in MODES {
        let mut r = Rng(0xABCD ^ u64::from(mode.bits()));
        let mut w = [0u8; 15];
        for k in 0..n {
            if k % 2 == 0 {
                prefix_heavy(&mut r, mode, &mut w);
            } else {
                for b in w.iter_mut() {
                    *b = r.byte();
                }
            }
            sem.check(mode, Vendor::Intel, &w);
            sem.check(mode, Vendor::Amd, &w);
        }
    }
    sem.finish("semantic");
}

/// Systematic sweep of the opcode space: every opcode of every legacy map under each
/// mandatory prefix (plus REX.W and LOCK variants), every VEX/XOP/EVEX map, `pp` and opcode
/// with each ModRM byte class, in every mode, followed by random bytes — so every opcode's
/// structure (ModRM, SIB, displacement, immediates) is compared with iced at least once per
/// ModRM form, not only where random sampling happens to land.
#[test]
fn opcode_space_sweep() {
    let mut t = Tally::new();
    let mut r = Rng(0x0DDC_0FFE_E0DD_F00D);
    let fast = cfg!(debug_assertions) && std::env::var("X86_DIFF_WINDOWS").is_err();
    // In debug builds without an explicit size, sample ModRM bytes instead of all 256.
    let modrms: Vec<u8> = if fast {
        (0..=255u8).step_by(13).collect()
    } else {
        (0..=255u8).collect()
    };
    let mut w = [0u8; 15];
    let mut sem = SemTally::new();
    let mut run = |t: &mut Tally, r: &mut Rng, mode: Mode, vendor: Vendor, head: &[u8]| {
        for &m in &modrms {
            for b in w.iter_mut() {
                *b = r.byte();
            }
            let n = head.len().min(13);
            w[..n].copy_from_slice(&head[..n]);
            w[n] = m;
            t.check(mode, vendor, &w, 0x10_0000);
            sem.check(mode, vendor, &w);
        }
    };
    for mode in MODES {
        for vendor in [Vendor::Intel, Vendor::Amd] {
            for pfx in [
                &[][..],
                &[0x66],
                &[0xF3],
                &[0xF2],
                &[0xF0],
                &[0x66, 0xF2],
                &[0x48],
                &[0x66, 0x48],
                &[0xF3, 0x48],
                &[0xF2, 0x48],
                &[0x67],
            ] {
                if pfx.last() == Some(&0x48) && mode != Mode::Bits64 {
                    continue;
                }
                for esc in [&[][..], &[0x0F], &[0x0F, 0x38], &[0x0F, 0x3A]] {
                    for op in 0..=255u8 {
                        let mut head = pfx.to_vec();
                        head.extend_from_slice(esc);
                        head.push(op);
                        run(&mut t, &mut r, mode, vendor, &head);
                    }
                }
            }
        }
        // VEX (3-byte, all maps 0-3 x pp x L x W), XOP (maps 8-10), EVEX (maps 0-7 x pp x W x L'L).
        for map in 0..4u8 {
            for p2 in [
                0x78u8, 0x79, 0x7A, 0x7B, 0x7C, 0x7D, 0x7E, 0x7F, 0xF8, 0xF9, 0xFD, 0xFE, 0xFF,
            ] {
                for op in 0..=255u8 {
                    run(
                        &mut t,
                        &mut r,
                        mode,
                        Vendor::Intel,
                        &[0xC4, 0xE0 | map, p2, op],
                    );
                }
            }
        }
        for map in 8..11u8 {
            for p2 in [0x78u8, 0x79, 0x7C, 0xF8, 0xFC] {
                for op in 0..=255u8 {
                    run(
                        &mut t,
                        &mut r,
                        mode,
                        Vendor::Intel,
                        &[0x8F, 0xE0 | map, p2, op],
                    );
                }
            }
        }
        for map in 0..8u8 {
            for p1 in [0x7Cu8, 0x7D, 0x7E, 0x7F, 0xFC, 0xFD, 0xFE, 0xFF] {
                for p2 in [0x08u8, 0x28, 0x48, 0x4A, 0x18, 0xCA] {
                    for op in 0..=255u8 {
                        run(
                            &mut t,
                            &mut r,
                            mode,
                            Vendor::Intel,
                            &[0x62, 0xF0 | map, p1, p2, op],
                        );
                    }
                }
            }
        }
    }
    t.finish("opcode-space sweep");
    sem.finish("opcode-space sweep");
}

/// VEX, XOP and EVEX opcodes with their register-extension fields varied: R/X/B (and EVEX R'),
/// `vvvv` (and V'), the mask and the vector length, against register and memory (VSIB-shaped)
/// ModRM bytes, in every mode. The opcode-space sweep keeps those fields at their defaults;
/// rules such as "three different tile registers" or "V' is invalid outside 64-bit mode" live
/// here (both were found by the fuzzer first).
#[test]
fn register_field_sweep() {
    let mut t = Tally::new();
    let mut r = Rng(0x5EED_F1E1_D5EE_D5ED);
    let slow = !cfg!(debug_assertions) || std::env::var("X86_DIFF_WINDOWS").is_ok();
    let per_opcode = if slow { 48 } else { 4 };
    // Memory forms (SIB for VSIB), register forms with `reg` = `rm` and with them apart.
    const MODRMS: [u8; 11] = [
        0x04, 0x44, 0x84, 0x0C, 0x05, 0xC0, 0xDB, 0xC1, 0xD1, 0xCA, 0xFE,
    ];
    const LEADS: [(u8, &[u8]); 3] = [
        (0xC4, &[1, 2, 3]),
        (0x8F, &[8, 9, 10]),
        (0x62, &[1, 2, 3, 5, 6]),
    ];
    let mut w = [0u8; 15];
    for mode in MODES {
        for (lead, maps) in LEADS {
            for &map in maps {
                for op in 0..=255u8 {
                    for _ in 0..per_opcode {
                        for b in w.iter_mut() {
                            *b = r.byte();
                        }
                        // Mostly the "no extension" values of R/X/B (and R'), which outside
                        // 64-bit mode also keep the lead byte a VEX/EVEX prefix.
                        let rxb = if r.below(2) == 0 {
                            0xE0
                        } else {
                            r.byte() & 0xE0 | 0x80
                        };
                        let rp = if lead == 0x62 && r.below(3) != 0 {
                            0x10
                        } else {
                            0
                        };
                        let vvvv = [15u8, 0, 7, 8, r.byte() & 15][r.below(5) as usize];
                        let (wl, pp) = (r.byte() & 0x84, r.byte() & 3);
                        w[0] = lead;
                        w[1] = rxb | rp | map;
                        w[2] = wl & 0x80 | vvvv << 3 | pp | if lead == 0x62 { 4 } else { wl & 4 };
                        let mut at = 3;
                        if lead == 0x62 {
                            // z, L'L (not 3), b, V', aaa.
                            w[3] = r.byte() & 0x9F | (r.below(3) as u8) << 5;
                            at = 4;
                        }
                        w[at] = op;
                        w[at + 1] = MODRMS[r.below(MODRMS.len() as u64) as usize];
                        t.check(mode, Vendor::Intel, &w, 0x10_0000);
                    }
                }
            }
        }
    }
    t.finish("register-field sweep");
}
