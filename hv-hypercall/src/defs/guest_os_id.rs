//! The guest OS identity written to `HV_X64_MSR_GUEST_OS_ID` (TLFS "Reporting the Guest OS
//! Identity"; reference §5.6).
//!
//! Two encodings share the 64 bits, told apart by bit 63:
//!
//! | open source (bit 63 = 1) | | proprietary (bit 63 = 0) | |
//! |---|---|---|---|
//! | 62:56 | OS type (Linux 1, FreeBSD 2, Xen 3, Illumos 4) | 62:48 | vendor (Microsoft 1) |
//! | 55:48 | OS id | 47:40 | OS id |
//! | 47:16 | version (Linux: `LINUX_VERSION_CODE`) | 39:32 / 31:24 / 23:16 | major / minor / service version |
//! | 15:0 | build (distribution-specific) | 15:0 | build number |
//!
//! Linux writes `0x8100 << 48 | LINUX_VERSION_CODE << 16`.

use crate::macros::open_enum;

open_enum! {
    /// The OS type of an open-source guest (bits 62:56).
    pub struct OpenSourceOsType(u8) {
        /// Linux.
        LINUX = 1,
        /// FreeBSD.
        FREEBSD = 2,
        /// Xen.
        XEN = 3,
        /// Illumos.
        ILLUMOS = 4,
    }
}

/// A guest OS identity value. Zero means "not reported", which keeps the hypercall page disabled.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct GuestOsId(pub u64);

impl GuestOsId {
    /// An open-source identity.
    pub const fn open_source(
        os_type: OpenSourceOsType,
        os_id: u8,
        version: u32,
        build: u16,
    ) -> Self {
        Self(
            1 << 63
                | ((os_type.0 as u64 & 0x7f) << 56)
                | ((os_id as u64) << 48)
                | ((version as u64) << 16)
                | build as u64,
        )
    }

    /// The identity Linux reports for `LINUX_VERSION_CODE` `kernel_version`
    /// (`major << 16 | minor << 8 | sublevel`).
    pub const fn linux(kernel_version: u32) -> Self {
        Self::open_source(OpenSourceOsType::LINUX, 0, kernel_version, 0)
    }

    /// A proprietary identity.
    pub const fn proprietary(
        vendor: u16,
        os_id: u8,
        major: u8,
        minor: u8,
        service: u8,
        build: u16,
    ) -> Self {
        Self(
            ((vendor as u64 & 0x7fff) << 48)
                | ((os_id as u64) << 40)
                | ((major as u64) << 32)
                | ((minor as u64) << 24)
                | ((service as u64) << 16)
                | build as u64,
        )
    }

    /// Whether the guest reported an identity (non-zero).
    pub const fn is_set(self) -> bool {
        self.0 != 0
    }

    /// Bit 63: the open-source encoding.
    pub const fn is_open_source(self) -> bool {
        self.0 >> 63 != 0
    }

    /// Open source: OS type (bits 62:56).
    pub const fn os_type(self) -> OpenSourceOsType {
        OpenSourceOsType((self.0 >> 56) as u8 & 0x7f)
    }

    /// Open source: version (bits 47:16).
    pub const fn version(self) -> u32 {
        (self.0 >> 16) as u32
    }

    /// Proprietary: vendor (bits 62:48).
    pub const fn vendor(self) -> u16 {
        (self.0 >> 48) as u16 & 0x7fff
    }

    /// The OS id: bits 55:48 (open source) or 47:40 (proprietary).
    pub const fn os_id(self) -> u8 {
        if self.is_open_source() {
            (self.0 >> 48) as u8
        } else {
            (self.0 >> 40) as u8
        }
    }

    /// Build number (bits 15:0, both encodings).
    pub const fn build(self) -> u16 {
        self.0 as u16
    }
}

impl core::fmt::Debug for GuestOsId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_open_source() {
            f.debug_struct("GuestOsId")
                .field("os_type", &self.os_type())
                .field("os_id", &self.os_id())
                .field("version", &format_args!("{:#x}", self.version()))
                .field("build", &self.build())
                .finish()
        } else {
            f.debug_struct("GuestOsId")
                .field("vendor", &self.vendor())
                .field("os_id", &self.os_id())
                .field("major", &((self.0 >> 32) as u8))
                .field("minor", &((self.0 >> 24) as u8))
                .field("service", &((self.0 >> 16) as u8))
                .field("build", &self.build())
                .finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_encoding_matches_the_reference() {
        // Linux 6.1.0: LINUX_VERSION_CODE = 0x060100.
        let id = GuestOsId::linux(0x06_01_00);
        assert_eq!(id.0 >> 48, 0x8100);
        assert_eq!(id.0, 0x8100_0006_0100_0000);
        assert!(id.is_open_source());
        assert_eq!(id.os_type(), OpenSourceOsType::LINUX);
        assert_eq!(id.version(), 0x060100);
        assert_eq!(id.os_id(), 0);
        assert!(std::format!("{id:?}").contains("LINUX"));
    }

    #[test]
    fn proprietary_encoding() {
        let id = GuestOsId::proprietary(1, 4, 10, 0, 0, 19041);
        assert!(!id.is_open_source());
        assert_eq!(id.vendor(), 1);
        assert_eq!(id.os_id(), 4);
        assert_eq!(id.build(), 19041);
        assert_eq!(id.0, 0x0001_040a_0000_0000 | 19041);
        assert!(!GuestOsId(0).is_set());
    }

    #[test]
    fn every_field_in_its_own_bits() {
        let id = GuestOsId::open_source(OpenSourceOsType::FREEBSD, 0x5a, 0x1234_5678, 0x9abc);
        assert_eq!(id.0, 0x825a_1234_5678_9abc);
        assert_eq!(
            (id.os_type(), id.os_id(), id.version(), id.build()),
            (OpenSourceOsType::FREEBSD, 0x5a, 0x1234_5678, 0x9abc)
        );
        // An OS type wider than its 7 bits does not reach the encoding bit.
        let wide = GuestOsId::open_source(OpenSourceOsType(0xff), 0, 0, 0);
        assert_eq!(wide.0, 0xff00_0000_0000_0000);
        assert_eq!(wide.os_type(), OpenSourceOsType(0x7f));

        // The vendor's top bit would be the encoding bit: it is dropped.
        let id = GuestOsId::proprietary(0xffff, 0xa5, 0x12, 0x34, 0x56, 0x789a);
        assert_eq!(id.0, 0x7fff_a512_3456_789a);
        assert!(!id.is_open_source());
        assert_eq!(
            (id.vendor(), id.os_id(), id.build()),
            (0x7fff, 0xa5, 0x789a)
        );
        assert_eq!(
            std::format!("{id:?}"),
            "GuestOsId { vendor: 32767, os_id: 165, major: 18, minor: 52, service: 86, build: 30874 }"
        );
    }
}
