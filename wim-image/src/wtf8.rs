//! WTF-8: UTF-8 generalized to unpaired surrogates, the byte form of a name made of arbitrary
//! UTF-16 units.
//!
//! NTFS names are sequences of UTF-16 units and may hold a surrogate with no partner (0xD800
//! alone). A Linux file name is bytes, so such a name is written there as WTF-8, as wimlib
//! does: every well-formed part as UTF-8, every unpaired surrogate as the 3-byte sequence
//! UTF-8 would give its code point (`ED A0 80` to `ED BF BF`). Valid UTF-16 gives plain UTF-8.
//!
//! [`decode`] accepts only well-formed WTF-8 and so gives back exactly the units [`encode`]
//! was given: a lead surrogate encoded directly before a trail surrogate (a pair that should
//! have been one 4-byte sequence), overlong forms, code points past U+10FFFF and every other
//! invalid byte sequence are refused.

use alloc::vec::Vec;

/// The WTF-8 bytes of `units` (plain UTF-8 when they are valid UTF-16).
pub fn encode(units: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(units.len());
    for r in char::decode_utf16(units.iter().copied()) {
        match r {
            Ok(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            Err(e) => {
                let s = e.unpaired_surrogate();
                out.extend_from_slice(&[
                    0xE0 | (s >> 12) as u8,
                    0x80 | ((s >> 6) & 0x3F) as u8,
                    0x80 | (s & 0x3F) as u8,
                ]);
            }
        }
    }
    out
}

/// The UTF-16 units of well-formed WTF-8 `bytes`, `None` if they are not (see the module
/// docs).
pub fn decode(bytes: &[u8]) -> Option<Vec<u16>> {
    let mut out: Vec<u16> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // The sequence length and the allowed range of its second byte (which rules out
        // overlong forms and code points past U+10FFFF); `ED` keeps the surrogate range.
        let (len, second) = match b {
            0x00..=0x7F => {
                out.push(u16::from(b));
                i += 1;
                continue;
            }
            0xC2..=0xDF => (2, 0x80..=0xBF),
            0xE0 => (3, 0xA0..=0xBF),
            0xE1..=0xEF => (3, 0x80..=0xBF),
            0xF0 => (4, 0x90..=0xBF),
            0xF1..=0xF3 => (4, 0x80..=0xBF),
            0xF4 => (4, 0x80..=0x8F),
            _ => return None,
        };
        let seq = bytes.get(i..i + len)?;
        if !second.contains(&seq[1]) || seq[2..].iter().any(|&c| c & 0xC0 != 0x80) {
            return None;
        }
        let lead = u32::from(b) & (0x7F >> len);
        let cp = seq[1..]
            .iter()
            .fold(lead, |cp, &c| cp << 6 | u32::from(c & 0x3F));
        if let Some(c) = char::from_u32(cp) {
            out.extend_from_slice(c.encode_utf16(&mut [0; 2]));
        } else {
            // A surrogate (only `ED A0..BF xx` gets here). A trail right after an unpaired
            // lead would read back as a pair: not well-formed.
            let last_is_lead = out.last().is_some_and(|u| (0xD800..0xDC00).contains(u));
            if (0xDC00..0xE000).contains(&cp) && last_is_lead {
                return None;
            }
            out.push(cp as u16);
        }
        i += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf16_is_utf8() {
        for s in [
            "",
            "a",
            "Ωmega",
            "日本語",
            "emoji-😀",
            "\u{10FFFF}\u{FFFD}\u{7F}\u{80}",
        ] {
            let units: Vec<u16> = s.encode_utf16().collect();
            assert_eq!(encode(&units), s.as_bytes());
            assert_eq!(decode(s.as_bytes()).unwrap(), units);
        }
    }

    #[test]
    fn unpaired_surrogates_round_trip() {
        let cases: [(&[u16], &[u8]); 7] = [
            (&[0xD800], b"\xED\xA0\x80"),
            (&[0xDBFF], b"\xED\xAF\xBF"),
            (&[0xDC00], b"\xED\xB0\x80"),
            (&[0xDFFF], b"\xED\xBF\xBF"),
            (&[0x61, 0xD800, 0x62], b"a\xED\xA0\x80b"),
            // A trail then a lead: two unpaired surrogates.
            (&[0xDC00, 0xD800], b"\xED\xB0\x80\xED\xA0\x80"),
            // A lead, a real pair, a lone trail.
            (
                &[0xD800, 0xD83D, 0xDE00, 0xDC00],
                b"\xED\xA0\x80\xF0\x9F\x98\x80\xED\xB0\x80",
            ),
        ];
        for (units, bytes) in cases {
            assert_eq!(encode(units), bytes, "{units:x?}");
            assert_eq!(decode(bytes).as_deref(), Some(units), "{bytes:x?}");
        }
    }

    #[test]
    fn rejects_what_is_not_wtf8() {
        let bad: [&[u8]; 16] = [
            // A surrogate pair encoded as two 3-byte sequences.
            b"\xED\xA0\x80\xED\xB0\x80",
            b"x\xED\xAF\xBF\xED\xBF\xBFy",
            // Overlong forms.
            b"\xC0\xAF",
            b"\xC1\xBF",
            b"\xE0\x80\xAF",
            b"\xE0\x9F\xBF",
            b"\xF0\x8F\xBF\xBF",
            // Past U+10FFFF, bytes never used.
            b"\xF4\x90\x80\x80",
            b"\xF5\x80\x80\x80",
            b"\xFF",
            b"\xFE",
            // Stray or missing continuation bytes.
            b"\x80",
            b"a\xBF",
            b"\xC3",
            b"\xE2\x82",
            b"\xED\xA0\x41",
        ];
        for b in bad {
            assert_eq!(decode(b), None, "{b:x?}");
        }
        assert_eq!(decode(b"\xF0\x90\x80"), None);
        assert_eq!(decode(b"\xE2\x28\xA1"), None);
    }

    #[test]
    fn every_unit_pair_round_trips() {
        // Every lone unit, and each unit after a lead surrogate and before a trail.
        for u in 0..=u16::MAX {
            for units in [[u, 0x41], [0xD800, u], [u, 0xDC00]] {
                assert_eq!(decode(&encode(&units)).as_deref(), Some(&units[..]));
            }
        }
    }
}
