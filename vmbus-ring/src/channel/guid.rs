//! GUIDs in the Microsoft mixed-endian layout VMBus uses on the wire.

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// A GUID as laid out on the wire: `data1` u32, `data2` u16, `data3` u16 little-endian, then
/// eight bytes as written. The netvsc GUID (`f8615163-df3e-46c5-913f-f2d2f965ed0e`)
/// therefore starts `63 51 61 f8 3e df c5 46 91 3f`. Text in either form, with or without
/// braces, parses with [`str::parse`] ([`FromStr`](core::str::FromStr)); `Display` writes it
/// without braces, `Debug` with.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct Guid {
    /// First field (LE on the wire).
    pub data1: U32,
    /// Second field (LE).
    pub data2: U16,
    /// Third field (LE).
    pub data3: U16,
    /// Last eight bytes, in text order.
    pub data4: [u8; 8],
}
const _: () = assert!(core::mem::size_of::<Guid>() == 16);

impl Guid {
    /// The all-zero GUID.
    pub const NIL: Self = Self::from_fields(0, 0, 0, [0; 8]);

    /// A GUID from its text fields.
    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Self {
        Self {
            data1: U32::new(data1),
            data2: U16::new(data2),
            data3: U16::new(data3),
            data4,
        }
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case).
    pub const fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        let mut v = [0u8; 16];
        let mut i = 0;
        let mut n = 0;
        while i < 36 {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                i += 1;
                continue;
            }
            let (Some(hi), Some(lo)) = (hex(b[i]), hex(b[i + 1])) else {
                return None;
            };
            v[n] = hi << 4 | lo;
            n += 1;
            i += 2;
        }
        Some(Self::from_fields(
            u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            u16::from_be_bytes([v[4], v[5]]),
            u16::from_be_bytes([v[6], v[7]]),
            [v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]],
        ))
    }
}

/// Text that is not a GUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in braces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
pub struct GuidParseError;

impl core::str::FromStr for Guid {
    type Err = GuidParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bare = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        Self::parse(bare).ok_or(GuidParseError)
    }
}

const fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a GUID literal at compile time, failing the build on a typo.
macro_rules! guid {
    ($text:literal) => {
        match $crate::channel::Guid::parse($text) {
            Some(g) => g,
            None => panic!("invalid GUID literal"),
        }
    };
}

impl core::fmt::Display for Guid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1.get(),
            self.data2.get(),
            self.data3.get(),
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            d[7]
        )
    }
}

impl core::fmt::Debug for Guid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{{{self}}}")
    }
}

/// Interface GUIDs (offer `if_type`) of the integration services and common devices.
pub mod interface {
    use super::Guid;

    /// Heartbeat.
    pub const HEARTBEAT: Guid = guid!("57164f39-9115-4e78-ab55-382f3bd5422d");
    /// Shutdown.
    pub const SHUTDOWN: Guid = guid!("0e0b6031-5213-4934-818b-38d90ced39db");
    /// Time synchronization.
    pub const TIMESYNC: Guid = guid!("9527e630-d0ae-497b-adce-e80ab0175caf");
    /// Key/value pair exchange.
    pub const KVP: Guid = guid!("a9a0f4e7-5a45-4d96-b827-8a841e8c03e6");
    /// Volume shadow copy.
    pub const VSS: Guid = guid!("35fa2e29-ea23-4236-96ae-3a6ebacba440");
    /// Synthetic SCSI (storvsc).
    pub const SCSI: Guid = guid!("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f");
    /// Synthetic network (netvsc).
    pub const NETWORK: Guid = guid!("f8615163-df3e-46c5-913f-f2d2f965ed0e");
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn mixed_endian_wire_layout() {
        let nic = interface::NETWORK;
        assert_eq!(
            &nic.as_bytes()[..10],
            &[0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f]
        );
        assert_eq!(
            alloc::format!("{nic}"),
            "f8615163-df3e-46c5-913f-f2d2f965ed0e"
        );
        assert!(Guid::parse("f8615163-df3e-46c5-913f-f2d2f965ed0").is_none());
        assert!(Guid::parse("f8615163+df3e-46c5-913f-f2d2f965ed0e").is_none());
        assert!(Guid::parse("g8615163-df3e-46c5-913f-f2d2f965ed0e").is_none());
        // Every one of the four dashes is required: a hex digit in its place is refused.
        for at in [8, 13, 18, 23] {
            let mut text = *b"f8615163-df3e-46c5-913f-f2d2f965ed0e";
            text[at] = b'0';
            let text = core::str::from_utf8(&text).unwrap();
            assert!(Guid::parse(text).is_none(), "{text}");
        }
    }

    /// `str::parse` takes what `Display` and `Debug` write, in any case, and refuses the rest.
    #[test]
    fn from_str_round_trips_display_and_debug() {
        let nic = interface::NETWORK;
        for text in [
            alloc::format!("{nic}"),
            alloc::format!("{nic:?}"),
            alloc::format!("{nic}").to_uppercase(),
        ] {
            assert_eq!(text.parse::<Guid>(), Ok(nic), "{text}");
        }
        for bad in [
            "",
            "{}",
            "{f8615163-df3e-46c5-913f-f2d2f965ed0e",
            "f8615163-df3e-46c5-913f-f2d2f965ed0e}",
        ] {
            assert_eq!(bad.parse::<Guid>(), Err(GuidParseError), "{bad}");
        }
    }
}
