//! Host-side service logic: negotiation, then heartbeat, shutdown, time sync and KVP as small
//! state machines over one open channel each.
//!
//! Every method takes the current time ([`Now`]) and returns the packet payloads to send
//! ([`Output::packets`]) and what happened ([`Output::events`]). Nothing here blocks, sleeps or
//! owns a clock; a service that gets no answer (KVP without its guest daemon) just stays
//! pending and reports [`HostEvent::Timeout`] for the transaction it gave up on.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::U64;
use zerocopy::IntoBytes;

use super::bodies::{
    self, AppState, Heartbeat, Shutdown, ShutdownFlags, TimeSyncFlags, TimeSyncV3, TimeSyncV4,
};
use super::framing::{self, IcFlags, IcHeader, IcMessageType, IcPacket, IcStatus};
use super::kvp::{KvpMessage, KvpPool, Record};
use super::negotiate::{self, Negotiate};
use super::{IcError, Version};

/// The current time, as the services need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// A monotonic clock in nanoseconds (for periods and timeouts).
    pub monotonic_ns: u64,
    /// Wall-clock time in Unix nanoseconds (sent by time sync).
    pub unix_ns: u64,
    /// The guest partition's reference time (100 ns units), as the guest reads it.
    pub reference_time: u64,
}

/// Which service a channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Service {
    /// Heartbeat.
    Heartbeat,
    /// Shutdown.
    Shutdown,
    /// Time synchronization.
    TimeSync,
    /// Key/value pair exchange.
    Kvp,
}

impl Service {
    /// The IC message type of the service's requests.
    pub fn message_type(self) -> IcMessageType {
        match self {
            Self::Heartbeat => IcMessageType::HEARTBEAT,
            Self::Shutdown => IcMessageType::SHUTDOWN,
            Self::TimeSync => IcMessageType::TIMESYNC,
            Self::Kvp => IcMessageType::KVP_EXCHANGE,
        }
    }

    /// The message versions a host offers for the service (newest first).
    pub fn versions(self) -> &'static [Version] {
        match self {
            Self::Heartbeat => negotiate::HEARTBEAT_VERSIONS,
            Self::Shutdown => negotiate::SHUTDOWN_VERSIONS,
            Self::TimeSync => negotiate::TIMESYNC_VERSIONS,
            Self::Kvp => negotiate::KVP_VERSIONS,
        }
    }
}

/// Something a host service observed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent {
    /// The guest chose versions.
    Negotiated {
        /// Framework version.
        framework: Version,
        /// Service version.
        message: Version,
    },
    /// The guest supports none of the offered versions.
    NegotiationFailed,
    /// A heartbeat answer.
    Heartbeat {
        /// The sequence number the guest returned.
        seq: u64,
        /// Its application state.
        state: AppState,
        /// Nanoseconds from request to answer.
        round_trip_ns: u64,
    },
    /// The guest answered a shutdown request.
    ShutdownAnswered {
        /// Its status (S_OK: it is shutting down).
        status: IcStatus,
    },
    /// The guest acknowledged a time sample.
    TimeSyncAcknowledged {
        /// The flags of the sample.
        flags: TimeSyncFlags,
    },
    /// A KVP transaction completed.
    Kvp {
        /// The request.
        request: KvpRequest,
        /// The guest's status.
        status: IcStatus,
        /// The record (GET, and each ENUMERATE step).
        record: Option<Record>,
    },
    /// A transaction got no answer in time and was dropped.
    Timeout {
        /// Which message type.
        msgtype: IcMessageType,
    },
    /// A packet that could not be used (kept so the VMM can log it).
    Ignored {
        /// Why.
        reason: IcError,
    },
}

/// What a call produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Packet payloads to send on the channel, in order.
    pub packets: Vec<Vec<u8>>,
    /// Observations.
    pub events: Vec<HostEvent>,
}

/// A KVP request the host can queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvpRequest {
    /// Write a key.
    Set(KvpPool, Record),
    /// Read a key.
    Get(KvpPool, alloc::string::String),
    /// Delete a key.
    Delete(KvpPool, alloc::string::String),
    /// Read the record at an index (enumerate by asking 0, 1, … until a non-S_OK status).
    Enumerate(KvpPool, u32),
}

/// Settings of the host services.
#[derive(Clone, Copy, Debug)]
pub struct HostConfig {
    /// Heartbeat period (Hyper-V: about 2 s).
    pub heartbeat_period_ns: u64,
    /// Time-sync sample period (OpenVMM: 5 s).
    pub timesync_period_ns: u64,
    /// How long a transaction may stay unanswered.
    pub timeout_ns: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            heartbeat_period_ns: 2_000_000_000,
            timesync_period_ns: 5_000_000_000,
            timeout_ns: 30_000_000_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Negotiate,
    Heartbeat(u64),
    Shutdown,
    TimeSync(TimeSyncFlags),
    Kvp(KvpRequest),
}

/// One host-side integration service on an open channel.
#[derive(Debug)]
pub struct HostService {
    service: Service,
    config: HostConfig,
    versions: Option<(Version, Version)>,
    failed: bool,
    txid: u8,
    /// The one outstanding transaction and when it was sent.
    pending: Option<(Pending, u64)>,
    next_periodic: u64,
    heartbeat_seq: u64,
    synced: bool,
    shutdown: Option<(ShutdownFlags, u32, alloc::string::String)>,
    kvp_queue: VecDeque<KvpRequest>,
}

impl HostService {
    /// A service that has not negotiated yet.
    pub fn new(service: Service, config: HostConfig) -> Self {
        Self {
            service,
            config,
            versions: None,
            failed: false,
            txid: 0,
            pending: None,
            next_periodic: 0,
            heartbeat_seq: 0,
            synced: false,
            shutdown: None,
            kvp_queue: VecDeque::new(),
        }
    }

    /// The negotiated (framework, message) versions.
    pub fn versions(&self) -> Option<(Version, Version)> {
        self.versions
    }

    /// Whether a transaction is outstanding.
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Call when the channel opens: sends the negotiate request.
    pub fn on_open(&mut self, now: Now) -> Output {
        let mut out = Output::default();
        self.versions = None;
        self.failed = false;
        self.pending = Some((Pending::Negotiate, now.monotonic_ns));
        out.packets.push(negotiate::host_request(
            negotiate::FRAMEWORK_VERSIONS,
            self.service.versions(),
            self.next_txid(),
        ));
        out
    }

    /// Asks the guest to shut down (shutdown service only; sent when the channel is ready).
    pub fn request_shutdown(&mut self, flags: ShutdownFlags, timeout_seconds: u32, message: &str) {
        self.shutdown = Some((flags, timeout_seconds, message.into()));
    }

    /// Queues a KVP transaction (KVP service only; one runs at a time).
    pub fn queue_kvp(&mut self, request: KvpRequest) {
        self.kvp_queue.push_back(request);
    }

    fn next_txid(&mut self) -> u8 {
        self.txid = self.txid.wrapping_add(1);
        self.txid
    }

    fn request(&mut self, body: &[u8]) -> Vec<u8> {
        let (framework, message) = self
            .versions
            .unwrap_or((Version::new(1, 0), Version::new(1, 0)));
        let header = IcHeader {
            framework,
            msgtype: self.service.message_type(),
            message,
            status: IcStatus::S_OK,
            transaction_id: self.next_txid(),
            flags: IcFlags::HOST_REQUEST,
        };
        // Bodies here are at most 7428 bytes: the size always fits.
        framing::emit(&header, body).unwrap_or_default()
    }

    /// Sends what is due at `now`: periodic heartbeats and time samples, a queued shutdown or
    /// KVP request; and gives up on a transaction older than the timeout.
    pub fn poll(&mut self, now: Now) -> Output {
        let mut out = Output::default();
        if let Some((pending, sent)) = &self.pending {
            if now.monotonic_ns.saturating_sub(*sent) < self.config.timeout_ns {
                return out;
            }
            let msgtype = if *pending == Pending::Negotiate {
                IcMessageType::NEGOTIATE
            } else {
                self.service.message_type()
            };
            out.events.push(HostEvent::Timeout { msgtype });
            if *pending == Pending::Negotiate {
                // Keep waiting for negotiation; a silent KVP channel is normal without its daemon.
                self.pending = Some((Pending::Negotiate, now.monotonic_ns));
                return out;
            }
            self.pending = None;
        }
        let Some((_, message)) = self.versions else {
            return out;
        };
        let body: Option<(Pending, Vec<u8>)> = match self.service {
            Service::Heartbeat if now.monotonic_ns >= self.next_periodic => {
                self.next_periodic = now.monotonic_ns + self.config.heartbeat_period_ns;
                self.heartbeat_seq += 1;
                let body = Heartbeat::new(self.heartbeat_seq, AppState::UNKNOWN);
                Some((
                    Pending::Heartbeat(self.heartbeat_seq),
                    body.as_bytes().to_vec(),
                ))
            }
            Service::TimeSync if now.monotonic_ns >= self.next_periodic => {
                self.next_periodic = now.monotonic_ns + self.config.timesync_period_ns;
                let flags = if self.synced {
                    TimeSyncFlags::SAMPLE
                } else {
                    TimeSyncFlags::SYNC
                };
                self.synced = true;
                let host_time = bodies::unix_nanos_to_windows(now.unix_ns);
                let body = if message.major >= 4 {
                    TimeSyncV4 {
                        parent_time: U64::new(host_time),
                        vm_reference_time: U64::new(now.reference_time),
                        flags: flags.0,
                        leap_flags: 0,
                        stratum: 2,
                        reserved: [0; 3],
                    }
                    .as_bytes()
                    .to_vec()
                } else {
                    TimeSyncV3 {
                        parent_time: U64::new(host_time),
                        child_time: U64::new(0),
                        round_trip: U64::new(0),
                        flags: flags.0,
                    }
                    .as_bytes()
                    .to_vec()
                };
                Some((Pending::TimeSync(flags), body))
            }
            Service::Shutdown => self.shutdown.take().map(|(flags, timeout, msg)| {
                (
                    Pending::Shutdown,
                    Shutdown::new(flags, timeout, &msg).as_bytes().to_vec(),
                )
            }),
            Service::Kvp => self.kvp_queue.pop_front().and_then(|req| {
                let msg = match &req {
                    KvpRequest::Set(pool, record) => KvpMessage::Set {
                        pool: *pool,
                        record: record.clone(),
                    },
                    KvpRequest::Get(pool, key) => KvpMessage::Get {
                        pool: *pool,
                        record: Record::string(key, ""),
                    },
                    KvpRequest::Delete(pool, key) => KvpMessage::Delete {
                        pool: *pool,
                        key: key.clone(),
                    },
                    KvpRequest::Enumerate(pool, index) => KvpMessage::Enumerate {
                        pool: *pool,
                        index: *index,
                        record: Record::string("", ""),
                    },
                };
                match msg.emit() {
                    Ok(body) => Some((Pending::Kvp(req), body)),
                    Err(reason) => {
                        out.events.push(HostEvent::Ignored { reason });
                        None
                    }
                }
            }),
            _ => None,
        };
        if let Some((pending, body)) = body {
            out.packets.push(self.request(&body));
            self.pending = Some((pending, now.monotonic_ns));
        }
        out
    }

    /// Handles a packet from the guest.
    pub fn on_packet(&mut self, now: Now, payload: &[u8]) -> Output {
        let mut out = Output::default();
        if let Err(reason) = self.handle(now, payload, &mut out) {
            out.events.push(HostEvent::Ignored { reason });
        }
        out
    }

    fn handle(&mut self, now: Now, payload: &[u8], out: &mut Output) -> Result<(), IcError> {
        let packet = IcPacket::parse(payload)?;
        let h = packet.header;
        if !h.flags.is_response() {
            return Err(IcError::InvalidField {
                field: "flags (expected a response)",
                value: u64::from(h.flags.0),
            });
        }
        let Some((pending, sent)) = self.pending.clone() else {
            return Err(IcError::InvalidField {
                field: "unsolicited response, transaction id",
                value: u64::from(h.transaction_id),
            });
        };
        if h.transaction_id != self.txid {
            return Err(IcError::InvalidField {
                field: "stale transaction id",
                value: u64::from(h.transaction_id),
            });
        }
        let rtt = now.monotonic_ns.saturating_sub(sent);
        match (pending, h.msgtype) {
            (Pending::Negotiate, IcMessageType::NEGOTIATE) => {
                self.pending = None;
                let n = Negotiate::parse(packet.body)?;
                match (n.framework.first(), n.message.first()) {
                    (Some(&fw), Some(&msg)) if n.framework.len() == 1 && n.message.len() == 1 => {
                        self.versions = Some((fw, msg));
                        self.next_periodic = now.monotonic_ns;
                        out.events.push(HostEvent::Negotiated {
                            framework: fw,
                            message: msg,
                        });
                    }
                    _ => {
                        self.failed = true;
                        out.events.push(HostEvent::NegotiationFailed);
                    }
                }
            }
            (Pending::Heartbeat(seq), IcMessageType::HEARTBEAT) => {
                // Linux needs (and may return) only the sequence number; v3 adds the state.
                let b = packet.body;
                let got = b
                    .get(..8)
                    .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])));
                let got = got.ok_or(IcError::Truncated {
                    needed: 8,
                    len: b.len(),
                })?;
                let state = b
                    .get(8..12)
                    .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])));
                self.pending = None;
                if got != seq + 1 {
                    return Err(IcError::InvalidField {
                        field: "heartbeat sequence",
                        value: got,
                    });
                }
                out.events.push(HostEvent::Heartbeat {
                    seq: got,
                    state: AppState(state),
                    round_trip_ns: rtt,
                });
            }
            (Pending::Shutdown, IcMessageType::SHUTDOWN) => {
                self.pending = None;
                out.events
                    .push(HostEvent::ShutdownAnswered { status: h.status });
            }
            (Pending::TimeSync(flags), IcMessageType::TIMESYNC) => {
                self.pending = None;
                out.events.push(HostEvent::TimeSyncAcknowledged { flags });
            }
            (Pending::Kvp(request), IcMessageType::KVP_EXCHANGE) => {
                self.pending = None;
                let record = if h.status == IcStatus::S_OK {
                    match KvpMessage::parse(packet.body)? {
                        KvpMessage::Get { record, .. } | KvpMessage::Enumerate { record, .. } => {
                            Some(record)
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                out.events.push(HostEvent::Kvp {
                    request,
                    status: h.status,
                    record,
                });
            }
            (_, other) => return Err(IcError::UnexpectedType(other)),
        }
        Ok(())
    }
}
