//! Guest-side responders for heartbeat, shutdown, time sync and KVP.
//!
//! A [`GuestService`] answers every request on its channel the way Linux's `hv_utils` does:
//! negotiation picks the first of its own preferences that the host offers, and each answer
//! reuses the request's header with the response flags (and a status only on failure). What
//! the guest should *do* — power off, step its clock, store a key — is reported as a
//! [`GuestEvent`] or delegated to a [`KvpStore`].

use alloc::vec::Vec;

use zerocopy::IntoBytes;

use super::bodies::{self, AppState, Heartbeat, Shutdown, ShutdownFlags, TimeSyncFlags};
use super::framing::{self, IcFlags, IcHeader, IcMessageType, IcPacket, IcStatus};
use super::host::Service;
use super::kvp::{KvpMessage, KvpPool, Record};
use super::negotiate::{self, Negotiate};
use super::{IcError, Version};

/// What the guest should act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestEvent {
    /// Versions were chosen.
    Negotiated {
        /// Framework.
        framework: Version,
        /// Service.
        message: Version,
    },
    /// A heartbeat was answered.
    Heartbeat {
        /// The sequence number returned.
        seq: u64,
    },
    /// The host asks for a shutdown, restart or hibernate (already acknowledged).
    Shutdown {
        /// What to do.
        action: ShutdownFlags,
        /// Seconds allowed.
        timeout_seconds: u32,
    },
    /// A time sample: the host's wall clock when the guest's reference time was `reference_time`.
    Time {
        /// SYNC (step the clock) or SAMPLE.
        flags: TimeSyncFlags,
        /// Host time, Unix nanoseconds.
        host_unix_ns: u64,
        /// The guest reference time (100 ns) the sample corresponds to (v4), if given.
        reference_time: Option<u64>,
    },
    /// A KVP operation was served.
    Kvp {
        /// The operation's message as received.
        request: KvpMessage,
        /// The status answered.
        status: IcStatus,
    },
}

/// The guest's key/value pools.
pub trait KvpStore {
    /// Reads `key` from `pool`.
    fn get(&self, pool: KvpPool, key: &str) -> Option<Record>;
    /// Writes a record into `pool`; `false` if the pool is full or read-only.
    fn set(&mut self, pool: KvpPool, record: Record) -> bool;
    /// Deletes `key`; `false` if absent.
    fn delete(&mut self, pool: KvpPool, key: &str) -> bool;
    /// The record at `index` of `pool`.
    fn enumerate(&self, pool: KvpPool, index: u32) -> Option<Record>;
}

/// An in-memory [`KvpStore`]: five pools of records in insertion order.
#[derive(Clone, Debug, Default)]
pub struct MemKvpStore {
    pools: [Vec<Record>; 5],
}

impl MemKvpStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn pool(&self, pool: KvpPool) -> Option<&Vec<Record>> {
        self.pools.get(usize::from(pool.0))
    }
}

impl KvpStore for MemKvpStore {
    fn get(&self, pool: KvpPool, key: &str) -> Option<Record> {
        self.pool(pool)?.iter().find(|r| r.key == key).cloned()
    }

    fn set(&mut self, pool: KvpPool, record: Record) -> bool {
        let Some(p) = self.pools.get_mut(usize::from(pool.0)) else {
            return false;
        };
        match p.iter_mut().find(|r| r.key == record.key) {
            Some(r) => *r = record,
            None => p.push(record),
        }
        true
    }

    fn delete(&mut self, pool: KvpPool, key: &str) -> bool {
        let Some(p) = self.pools.get_mut(usize::from(pool.0)) else {
            return false;
        };
        let before = p.len();
        p.retain(|r| r.key != key);
        p.len() != before
    }

    fn enumerate(&self, pool: KvpPool, index: u32) -> Option<Record> {
        self.pool(pool)?.get(index as usize).cloned()
    }
}

/// One guest-side service on an open channel.
#[derive(Debug)]
pub struct GuestService {
    service: Service,
    versions: Option<(Version, Version)>,
    /// What the heartbeat reports.
    pub app_state: AppState,
}

impl GuestService {
    /// A responder for `service`.
    pub fn new(service: Service) -> Self {
        Self {
            service,
            versions: None,
            app_state: AppState::HEALTHY,
        }
    }

    /// The chosen versions.
    pub fn versions(&self) -> Option<(Version, Version)> {
        self.versions
    }

    /// Answers one request. Returns the response payload (if any) and the event.
    pub fn on_packet(
        &mut self,
        payload: &[u8],
        kvp: &mut dyn KvpStore,
    ) -> Result<(Option<Vec<u8>>, Option<GuestEvent>), IcError> {
        let packet = IcPacket::parse(payload)?;
        let h = packet.header;
        if !h.flags.is_request() {
            return Err(IcError::InvalidField {
                field: "flags (expected a request)",
                value: u64::from(h.flags.0),
            });
        }
        let respond =
            |status: IcStatus, body: &[u8], header: IcHeader| -> Result<Vec<u8>, IcError> {
                framing::emit(
                    &IcHeader {
                        status,
                        flags: IcFlags::GUEST_RESPONSE,
                        ..header
                    },
                    body,
                )
            };
        if h.msgtype == IcMessageType::NEGOTIATE {
            let offer = Negotiate::parse(packet.body)?;
            let choice = offer.choose(negotiate::FRAMEWORK_VERSIONS, self.service.versions());
            let answer = match choice {
                Some((fw, msg)) => Negotiate {
                    framework: alloc::vec![fw],
                    message: alloc::vec![msg],
                },
                None => Negotiate::default(),
            };
            self.versions = choice;
            let (framework, message) = choice.unwrap_or((h.framework, h.message));
            let header = IcHeader {
                framework,
                message,
                ..h
            };
            let event =
                choice.map(|(framework, message)| GuestEvent::Negotiated { framework, message });
            return Ok((
                Some(respond(IcStatus::S_OK, &answer.emit(), header)?),
                event,
            ));
        }
        if h.msgtype != self.service.message_type() {
            return Err(IcError::UnexpectedType(h.msgtype));
        }
        match self.service {
            Service::Heartbeat => {
                let b = packet.body;
                let seq = b
                    .get(..8)
                    .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])));
                let seq = seq
                    .ok_or(IcError::Truncated {
                        needed: 8,
                        len: b.len(),
                    })?
                    .wrapping_add(1);
                // Answer in the request's own body size (Linux reuses the buffer), with the
                // state where a v3 body has room for it.
                let mut body = b.to_vec();
                let reply = Heartbeat::new(seq, self.app_state);
                let n = body.len().min(core::mem::size_of::<Heartbeat>());
                body[..n].copy_from_slice(&reply.as_bytes()[..n]);
                Ok((
                    Some(respond(IcStatus::S_OK, &body, h)?),
                    Some(GuestEvent::Heartbeat { seq }),
                ))
            }
            Service::Shutdown => {
                let request: Shutdown = bodies::parse(packet.body)?;
                match request.action() {
                    Some(action) => Ok((
                        Some(respond(IcStatus::S_OK, packet.body, h)?),
                        Some(GuestEvent::Shutdown {
                            action,
                            timeout_seconds: request.timeout_seconds.get(),
                        }),
                    )),
                    None => Ok((Some(respond(IcStatus::E_FAIL, packet.body, h)?), None)),
                }
            }
            Service::TimeSync => {
                let event = if h.message.major >= 4 {
                    let t: bodies::TimeSyncV4 = bodies::parse(packet.body)?;
                    GuestEvent::Time {
                        flags: TimeSyncFlags(t.flags),
                        host_unix_ns: bodies::windows_to_unix_nanos(t.parent_time.get()),
                        reference_time: Some(t.vm_reference_time.get()),
                    }
                } else {
                    let t: bodies::TimeSyncV3 = bodies::parse(packet.body)?;
                    GuestEvent::Time {
                        flags: TimeSyncFlags(t.flags),
                        host_unix_ns: bodies::windows_to_unix_nanos(t.parent_time.get()),
                        reference_time: None,
                    }
                };
                Ok((Some(respond(IcStatus::S_OK, packet.body, h)?), Some(event)))
            }
            Service::Kvp => {
                let request = KvpMessage::parse(packet.body)?;
                let (status, reply) = serve_kvp(&request, kvp);
                let body = match &reply {
                    Some(m) => m.emit()?,
                    None => packet.body.to_vec(),
                };
                Ok((
                    Some(respond(status, &body, h)?),
                    Some(GuestEvent::Kvp { request, status }),
                ))
            }
        }
    }
}

/// Runs one KVP operation against the store: the status and, for GET/ENUMERATE, the reply body.
fn serve_kvp(request: &KvpMessage, kvp: &mut dyn KvpStore) -> (IcStatus, Option<KvpMessage>) {
    match request {
        KvpMessage::Get { pool, record } => match kvp.get(*pool, &record.key) {
            Some(found) => (
                IcStatus::S_OK,
                Some(KvpMessage::Get {
                    pool: *pool,
                    record: found,
                }),
            ),
            None => (IcStatus::E_FAIL, None),
        },
        KvpMessage::Set { pool, record } => {
            if kvp.set(*pool, record.clone()) {
                (IcStatus::S_OK, None)
            } else {
                (IcStatus::E_FAIL, None)
            }
        }
        KvpMessage::Delete { pool, key } => {
            if kvp.delete(*pool, key) {
                (IcStatus::S_OK, None)
            } else {
                (IcStatus::E_FAIL, None)
            }
        }
        KvpMessage::Enumerate { pool, index, .. } => match kvp.enumerate(*pool, *index) {
            Some(record) => (
                IcStatus::S_OK,
                Some(KvpMessage::Enumerate {
                    pool: *pool,
                    index: *index,
                    record,
                }),
            ),
            None => (IcStatus::S_CONT, None),
        },
        KvpMessage::IpInfo(_) => (IcStatus::NOT_SUPPORTED, None),
    }
}
