//! Differential fuzzing against iced-x86: validity (incl. "needs more bytes"), length,
//! immediate/displacement layout, memory operand and branch target must agree, except for the
//! documented allow-list in `tests/support/iced_diff.rs`; so must the semantic level.
//!
//! Run: `cd x86-decode && cargo +nightly fuzz run differential fuzz/corpus/differential fuzz/seeds/differential`

#![no_main]

#[path = "../../tests/support/iced_diff.rs"]
mod iced_diff;

use libfuzzer_sys::fuzz_target;
use x86_decode::{Mode, Vendor};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    mode: u8,
    amd: bool,
    ip: u64,
    window: u8,
    bytes: [u8; 15],
}

fuzz_target!(|input: Input| {
    let mode = match input.mode % 3 {
        0 => Mode::Bits16,
        1 => Mode::Bits32,
        _ => Mode::Bits64,
    };
    let vendor = if input.amd {
        Vendor::Amd
    } else {
        Vendor::Intel
    };
    let ip = match mode {
        Mode::Bits16 => input.ip & 0xFFFF,
        Mode::Bits32 => input.ip & 0xFFFF_FFFF,
        Mode::Bits64 => input.ip,
    };
    // Mostly full windows; sometimes a truncated one (then only valid prefixes are compared,
    // since which of "invalid" and "truncated" a decoder reports first is not specified).
    let len = if input.window < 16 {
        usize::from(input.window)
    } else {
        15
    };
    let bytes = &input.bytes[..len];
    if len < 15 {
        let full = x86_decode::Decoder::new(mode)
            .with_vendor(vendor)
            .decode(&input.bytes, ip);
        if !full.is_ok_and(|i| i.len() > len) {
            return;
        }
    }
    if let Some(m) = iced_diff::compare(mode, vendor, bytes, ip) {
        assert!(
            iced_diff::allowed(mode, bytes, m).is_some(),
            "{mode:?} {vendor:?} {bytes:02X?}: {m:?}"
        );
    }
    // Semantic level: mnemonic, operands, memory size, RFLAGS, string prefixes, EVEX masking,
    // and coverage of the instructions the semantic level claims.
    let (_, sem) = iced_diff::compare_semantic(mode, vendor, bytes);
    assert!(sem.is_none(), "{mode:?} {vendor:?} {bytes:02X?}: {sem:?}");
});
