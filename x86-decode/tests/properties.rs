//! Property tests: the decoder never panics, and its answers are consistent with the window.

use proptest::prelude::*;
use x86_decode::{DecodeError, Decoder, Mode, Vendor};

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
