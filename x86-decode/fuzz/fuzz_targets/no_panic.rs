//! The decoder never panics, never reports more than 15 bytes or more bytes than it was given,
//! and reports "needs more bytes" only for windows shorter than 15 bytes.
//!
//! Run: `cd x86-decode/fuzz && cargo +nightly fuzz run no_panic seeds/no_panic`

#![no_main]

use libfuzzer_sys::fuzz_target;
use x86_decode::{DecodeError, Decoder, Mode, Vendor};

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
});
