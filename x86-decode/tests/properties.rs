//! Property tests: the decoder never panics, and its answers are consistent with the window.

use proptest::prelude::*;
use x86_decode::{DecodeError, Decoder, Instruction, Mode, Vendor};

fn modes() -> impl Strategy<Value = (Mode, Vendor)> {
    (
        prop_oneof![Just(Mode::Bits16), Just(Mode::Bits32), Just(Mode::Bits64)],
        prop_oneof![Just(Vendor::Intel), Just(Vendor::Amd)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn no_panic_and_consistent(bytes in proptest::collection::vec(any::<u8>(), 0..24), (mode, vendor) in modes()) {
        let d = Decoder::new(mode).with_vendor(vendor);
        match d.decode(&bytes, 0xFFFF_FFFF_FFFF_FFF0) {
            Ok(i) => {
                prop_assert!((1..=15).contains(&i.len()));
                prop_assert!(i.len() <= bytes.len());
                // Exactly the instruction's bytes decode the same; one fewer needs more.
                prop_assert_eq!(d.decode(&bytes[..i.len()], 0xFFFF_FFFF_FFFF_FFF0), Ok(i));
                prop_assert_eq!(
                    d.decode(&bytes[..i.len() - 1], 0),
                    Err(DecodeError::NeedMoreBytes { have: i.len() - 1 })
                );
                prop_assert!(i.immediate_offset() + i.immediate_size() <= i.len());
                prop_assert!(i.displacement_offset() + i.displacement_size() <= i.len());
            }
            Err(DecodeError::NeedMoreBytes { have }) => {
                prop_assert_eq!(have, bytes.len());
                prop_assert!(bytes.len() < 15);
            }
            Err(_) => {
                // Appending bytes never turns an invalid instruction valid.
                let mut more = bytes.clone();
                more.extend_from_slice(&[0; 15]);
                prop_assert!(d.decode(&more, 0).is_err());
            }
        }
    }
}

/// Reads everything a record offers (a panic, in a debug build an overflow, fails the test).
fn read_all(i: &Instruction) -> usize {
    let mut n = i.len() + i.displacement_offset() + i.immediate_offset();
    n += i.displacement_size() + i.immediate_size() + usize::from(i.memory_scale());
    n += usize::from(i.operand_size()) + usize::from(i.address_size());
    n += i.ip_relative_target().is_some() as usize + i.near_branch_target().is_some() as usize;
    n += i.operands().map_or(0, |o| o.as_slice().len());
    n += i.memory_size().map_or(0, usize::from) + i.flags().is_some() as usize;
    n += usize::from(i.modrm().is_some()) + usize::from(i.sib().is_some());
    n += i.next_ip() as usize & 1;
    n += format!("{}", i.display()).len();
    n
}

/// `decode_out` leaves an unspecified record after an error, documented as valid to reuse:
/// reading it must not panic either (a displacement or immediate size set before the window
/// ran out, with no length yet, made the offsets underflow).
#[test]
fn records_left_by_errors_are_safe_to_read() {
    let cases: [(Mode, &[u8]); 2] = [
        (Mode::Bits64, &[0xC7, 0x40, 0x10]),
        (Mode::Bits32, &[0x9A, 0x11, 0x22, 0x33, 0x44]),
    ];
    for (mode, bytes) in cases {
        let d = Decoder::new(mode);
        let mut out = Instruction::default();
        assert!(d.decode_out(bytes, 0, &mut out).is_err());
        read_all(&out);
    }
    // Every cut of random windows, into one reused record, as a decoding loop would.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for mode in [Mode::Bits16, Mode::Bits32, Mode::Bits64] {
        let d = Decoder::new(mode);
        let mut out = Instruction::default();
        for _ in 0..20_000 {
            let mut w = [0u8; 16];
            for c in w.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                c.copy_from_slice(&state.to_le_bytes());
            }
            for cut in 0..=w.len() {
                let _ = d.decode_out(&w[..cut], 0xFFFF_FFF0, &mut out);
                read_all(&out);
            }
        }
    }
}
