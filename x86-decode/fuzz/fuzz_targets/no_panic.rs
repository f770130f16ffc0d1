//! The decoder never panics, never reports more than 15 bytes or more bytes than it was given,
//! and reports "needs more bytes" only for windows shorter than 15 bytes. The record
//! `decode_out` leaves, after success or error, reads without a panic.
//!
//! Run: `cd x86-decode && cargo +nightly fuzz run no_panic fuzz/corpus/no_panic fuzz/seeds/no_panic`

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::fmt::Write;

use x86_decode::{DecodeError, Decoder, Instruction, Mode, Vendor};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let mode = match sel % 3 {
        0 => Mode::Bits16,
        1 => Mode::Bits32,
        _ => Mode::Bits64,
    };
    let vendor = if sel & 0x80 != 0 {
        Vendor::Amd
    } else {
        Vendor::Intel
    };
    let d = Decoder::new(mode).with_vendor(vendor);
    match d.decode(bytes, 0) {
        Ok(i) => {
            assert!(i.len() >= 1 && i.len() <= 15 && i.len() <= bytes.len());
            assert_eq!(d.decode(&bytes[..i.len()], 0), Ok(i));
        }
        Err(DecodeError::NeedMoreBytes { have }) => {
            assert_eq!(have, bytes.len());
            assert!(have < 15);
        }
        Err(_) => {}
    }
    // Reused from a valid decode, as a decoding loop does, then after this window.
    let mut out = Instruction::default();
    let _ = d.decode_out(&[0x48, 0x8B, 0x84, 0x88, 1, 2, 3, 4], 0, &mut out);
    let _ = d.decode_out(bytes, 0, &mut out);
    let mut text = String::new();
    let _ = write!(text, "{}", out.display());
    let _ = (
        out.displacement_offset(),
        out.immediate_offset(),
        out.memory_scale(),
    );
    let _ = (
        out.ip_relative_target(),
        out.near_branch_target(),
        out.next_ip(),
    );
    let _ = (
        out.operands(),
        out.memory_size(),
        out.flags(),
        out.mnemonic(),
    );
});
