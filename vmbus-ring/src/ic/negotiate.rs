//! IC version negotiation: the host offers framework and message versions, the guest picks.
//!
//! Body: `@0 framework count u16, @2 message count u16, @4 reserved u32, @8 {major u16,
//! minor u16}[]` with all framework versions first. The guest answers with counts 1/1 and its
//! two choices, or 0/0 when nothing matches.

use alloc::vec::Vec;

use super::framing::{self, IcFlags, IcHeader, IcMessageType, IcStatus};
use super::{IcError, Version};

/// Most versions a list may hold.
pub const MAX_VERSIONS: u16 = 100;

/// Linux 6.1's (and our guest's) framework preference, newest first.
pub const FRAMEWORK_VERSIONS: &[Version] = &[Version::new(3, 0), Version::new(1, 0)];
/// Heartbeat versions, newest first.
pub const HEARTBEAT_VERSIONS: &[Version] = &[Version::new(3, 0), Version::new(1, 0)];
/// Shutdown versions, newest first.
pub const SHUTDOWN_VERSIONS: &[Version] = &[
    Version::new(3, 2),
    Version::new(3, 1),
    Version::new(3, 0),
    Version::new(1, 0),
];
/// Time sync versions, newest first.
pub const TIMESYNC_VERSIONS: &[Version] =
    &[Version::new(4, 0), Version::new(3, 0), Version::new(1, 0)];
/// KVP versions, newest first (4.0 adds the IP-info operations).
pub const KVP_VERSIONS: &[Version] = &[Version::new(4, 0), Version::new(3, 0), Version::new(1, 0)];
/// VSS versions, newest first.
pub const VSS_VERSIONS: &[Version] = &[Version::new(5, 0), Version::new(4, 0), Version::new(1, 0)];

/// A negotiate body: the framework and message version lists.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Negotiate {
    /// Framework versions.
    pub framework: Vec<Version>,
    /// Message (service) versions.
    pub message: Vec<Version>,
}

impl Negotiate {
    /// Parses a negotiate body, refusing lists longer than [`MAX_VERSIONS`] or than the body.
    pub fn parse(body: &[u8]) -> Result<Self, IcError> {
        if body.len() < 8 {
            return Err(IcError::Truncated {
                needed: 8,
                len: body.len(),
            });
        }
        let fw = u16::from_le_bytes([body[0], body[1]]);
        let msg = u16::from_le_bytes([body[2], body[3]]);
        if fw > MAX_VERSIONS || msg > MAX_VERSIONS {
            return Err(IcError::TooManyVersions {
                framework: fw,
                message: msg,
            });
        }
        let needed = 8 + 4 * (usize::from(fw) + usize::from(msg));
        if body.len() < needed {
            return Err(IcError::Truncated {
                needed,
                len: body.len(),
            });
        }
        let versions: Vec<Version> = body[8..needed]
            .chunks_exact(4)
            .map(|c| {
                Version::new(
                    u16::from_le_bytes([c[0], c[1]]),
                    u16::from_le_bytes([c[2], c[3]]),
                )
            })
            .collect();
        let (framework, message) = versions.split_at(usize::from(fw));
        Ok(Self {
            framework: framework.to_vec(),
            message: message.to_vec(),
        })
    }

    /// The body bytes.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * (self.framework.len() + self.message.len()));
        out.extend_from_slice(&(self.framework.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.message.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for v in self.framework.iter().chain(&self.message) {
            out.extend_from_slice(&v.major.to_le_bytes());
            out.extend_from_slice(&v.minor.to_le_bytes());
        }
        out
    }

    /// The guest's choice: for each list, the first of the guest's preferences the host offers.
    /// `None` when either list has no match (the guest then answers with counts 0/0).
    pub fn choose(
        &self,
        framework_prefs: &[Version],
        message_prefs: &[Version],
    ) -> Option<(Version, Version)> {
        let fw = framework_prefs
            .iter()
            .find(|v| self.framework.contains(v))?;
        let msg = message_prefs.iter().find(|v| self.message.contains(v))?;
        Some((*fw, *msg))
    }
}

/// The host's negotiate request packet for a service.
pub fn host_request(framework: &[Version], message: &[Version], txid: u8) -> Vec<u8> {
    let body = Negotiate {
        framework: framework.to_vec(),
        message: message.to_vec(),
    }
    .emit();
    let header = IcHeader {
        framework: framework.first().copied().unwrap_or(Version::new(1, 0)),
        msgtype: IcMessageType::NEGOTIATE,
        message: message.first().copied().unwrap_or(Version::new(1, 0)),
        status: IcStatus::S_OK,
        transaction_id: txid,
        flags: IcFlags::HOST_REQUEST,
    };
    framing::emit(&header, &body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_body_and_choice() {
        let n = Negotiate {
            framework: alloc::vec![Version::new(1, 0), Version::new(3, 0)],
            message: alloc::vec![Version::new(4, 0)],
        };
        let bytes = n.emit();
        assert_eq!(
            bytes,
            [2, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]
        );
        assert_eq!(Negotiate::parse(&bytes).unwrap(), n);
        assert_eq!(
            n.choose(FRAMEWORK_VERSIONS, TIMESYNC_VERSIONS),
            Some((Version::new(3, 0), Version::new(4, 0)))
        );
        assert_eq!(n.choose(FRAMEWORK_VERSIONS, SHUTDOWN_VERSIONS), None);
    }

    #[test]
    fn rejects_overlong_lists() {
        let mut b = [0u8; 8];
        b[0] = 101;
        assert!(matches!(
            Negotiate::parse(&b),
            Err(IcError::TooManyVersions { .. })
        ));
        b[0] = 3;
        assert!(matches!(
            Negotiate::parse(&b),
            Err(IcError::Truncated { needed: 20, .. })
        ));
        // Up to MAX_VERSIONS in each list; one more in either alone is refused.
        let full = Negotiate {
            framework: alloc::vec![Version::new(3, 0); 100],
            message: alloc::vec![Version::new(4, 0); 100],
        };
        let bytes = full.emit();
        assert_eq!(Negotiate::parse(&bytes).unwrap(), full);
        for (at, framework, message) in [(0, 101, 100), (2, 100, 101)] {
            let mut b = bytes.clone();
            b[at] = 101;
            assert_eq!(
                Negotiate::parse(&b),
                Err(IcError::TooManyVersions { framework, message })
            );
        }
    }
}
