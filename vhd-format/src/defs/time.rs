//! VHD timestamps: seconds since 2000-01-01 00:00:00 UTC.

/// Unix time of the VHD epoch, 2000-01-01 00:00:00 UTC.
pub const VHD_EPOCH_UNIX: u64 = 946_684_800;

/// A VHD timestamp (u32 seconds since 2000-01-01 UTC; wraps in 2136).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VhdTime(pub u32);

impl VhdTime {
    /// Converts Unix seconds, saturating to the representable range.
    pub fn from_unix(secs: u64) -> Self {
        Self(secs.saturating_sub(VHD_EPOCH_UNIX).min(u64::from(u32::MAX)) as u32)
    }

    /// Unix seconds.
    pub fn to_unix(self) -> u64 {
        u64::from(self.0) + VHD_EPOCH_UNIX
    }

    /// Now, from the system clock.
    #[cfg(feature = "std")]
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_unix(secs)
    }
}

impl core::fmt::Debug for VhdTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VhdTime({} = unix {})", self.0, self.to_unix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_conversion() {
        assert_eq!(VhdTime::from_unix(946_684_800).0, 0);
        assert_eq!(VhdTime::from_unix(946_684_801 + 86_400).0, 86_401);
        assert_eq!(VhdTime::from_unix(0).0, 0);
        assert_eq!(VhdTime(5).to_unix(), 946_684_805);
        assert_eq!(VhdTime::from_unix(u64::MAX).0, u32::MAX);
        assert_eq!(
            std::format!("{:?}", VhdTime(5)),
            "VhdTime(5 = unix 946684805)"
        );
    }

    /// `now` reads the clock: it lies between two readings of the system time around it.
    #[cfg(feature = "std")]
    #[test]
    fn now_is_the_system_clock() {
        let unix = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        let before = unix();
        let now = VhdTime::now().to_unix();
        assert!(before <= now && now <= unix(), "{now}");
    }
}
