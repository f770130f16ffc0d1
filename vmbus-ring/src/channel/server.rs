//! The host (server) side of the channel-management protocol, transport-agnostic.
//!
//! [`Server::handle_message`] consumes one guest message (a SynIC message payload) and returns
//! the host messages to post back plus [`Action`]s for the VMM: "open this channel over these
//! ring pages", "channel closed", "retarget interrupts", "reset". Every malformed, out-of-order
//! or unknown-relid/GPADL message gets the documented answer (e.g. GPADL_CREATED or
//! OPENCHANNEL_RESULT with a failure status) or is dropped with a [`Dropped`] reason — never a
//! panic, and nothing the guest allocates outlives an UNLOAD.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::FromZeros;

use super::messages::{
    offer_flags, ChannelMessage, Header, MessageError, MessageType, Offer, VmbusVersion,
};
use super::Guid;
use crate::gpadl::{Gpadl, GpadlError, GpadlLimits, GpadlProgress, GpadlTable};

/// Connection id of the control path for plain messages.
pub const MESSAGE_CONNECTION_ID: u32 = 1;
/// Connection id INITIATE_CONTACT uses when requesting ≥ 5.0.
pub const MESSAGE_CONNECTION_ID_4: u32 = 4;
/// The SINT VMBus messages arrive on.
pub const VMBUS_MESSAGE_SINT: u8 = 2;
/// Relids are 1..=2047 (bit 0 of the event-flag area belongs to the control path).
pub const MAX_RELID: u32 = 2047;
/// NTSTATUS failure answered in GPADL_CREATED, OPENCHANNEL_RESULT and TL_CONNECT_RESULT.
pub const STATUS_UNSUCCESSFUL: u32 = 0xC000_0001;

/// What the host offers on one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferSpec {
    /// Interface type.
    pub if_type: Guid,
    /// Instance.
    pub if_instance: Guid,
    /// [`offer_flags`].
    pub flags: u16,
    /// Service-defined bytes.
    pub user_def: [u8; 120],
}

impl OfferSpec {
    /// A message-mode pipe, the way integration services are offered.
    pub fn pipe(if_type: Guid, if_instance: Guid) -> Self {
        let mut user_def = [0; 120];
        user_def[..4].copy_from_slice(&super::messages::PIPE_TYPE_MESSAGE.to_le_bytes());
        Self {
            if_type,
            if_instance,
            flags: offer_flags::ENUMERATE_DEVICE_INTERFACE | offer_flags::NAMED_PIPE_MODE,
            user_def,
        }
    }
}

/// Server settings.
///
/// Fields may be added in a minor release: start from `ServerConfig::default()` and set the fields you
/// change (or use `..` struct update syntax) rather than writing every field out.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// Oldest version accepted (default WIN8, 2.4).
    pub min_version: VmbusVersion,
    /// Newest version accepted (default 5.3).
    pub max_version: VmbusVersion,
    /// Limits on guest-driven GPADL allocation.
    pub gpadl_limits: GpadlLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            min_version: VmbusVersion::WIN8,
            max_version: VmbusVersion::WIN10_V5_3,
            gpadl_limits: GpadlLimits::default(),
        }
    }
}

/// The versions a server can negotiate (the ones Linux 6.1 asks for).
const NEGOTIABLE: [VmbusVersion; 8] = [
    VmbusVersion::WIN8,
    VmbusVersion::WIN8_1,
    VmbusVersion::WIN10,
    VmbusVersion::WIN10_V4_1,
    VmbusVersion::WIN10_V5,
    VmbusVersion::WIN10_V5_1,
    VmbusVersion::WIN10_V5_2,
    VmbusVersion::WIN10_V5_3,
];

/// What the VMM must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// The guest connected.
    Connected {
        /// Negotiated version.
        version: VmbusVersion,
        /// VP that receives host messages.
        target_vcpu: u32,
    },
    /// Start serving channel `relid` over the rings in GPADL `gpadl_id` ([`Server::gpadl`]):
    /// the guest→host ring is the first `downstream_page_offset` pages, the host→guest ring the rest.
    OpenChannel {
        /// Relid.
        relid: u32,
        /// Ring GPADL.
        gpadl_id: u32,
        /// First page of the host→guest ring.
        downstream_page_offset: u32,
        /// VP to interrupt.
        target_vp: u32,
        /// Connection id the guest signals with.
        connection_id: u32,
    },
    /// Stop serving `relid` (its rings are no longer in use when this returns).
    CloseChannel {
        /// Relid.
        relid: u32,
    },
    /// Interrupts for `relid` now go to `target_vp`.
    ModifyChannel {
        /// Relid.
        relid: u32,
        /// New VP.
        target_vp: u32,
    },
    /// GPADL `gpadl_id` is gone; drop any mapping of it.
    GpadlReleased {
        /// The GPADL.
        gpadl_id: u32,
    },
    /// A rescinded relid was released by the guest and may be reused.
    RelidReleased {
        /// Relid.
        relid: u32,
    },
    /// UNLOAD: every channel is closed and every GPADL released.
    Reset,
}

/// Why a guest message was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Dropped {
    /// The message does not parse.
    #[error("malformed message")]
    Malformed(#[source] MessageError),
    /// A message only the host sends.
    #[error("{0:?} is a host-to-guest message")]
    WrongDirection(MessageType),
    /// A message before INITIATE_CONTACT succeeded.
    #[error("{0:?} before the guest connected")]
    NotConnected(MessageType),
    /// INITIATE_CONTACT while connected (UNLOAD first).
    #[error("INITIATE_CONTACT while already connected")]
    AlreadyConnected,
    /// A relid no channel has (or has in the needed state).
    #[error("{msgtype:?} for relid {relid} in the wrong state or unknown")]
    BadRelid {
        /// The message.
        msgtype: MessageType,
        /// The relid.
        relid: u32,
    },
    /// A GPADL id the server does not know.
    #[error("{msgtype:?} for unknown GPADL {gpadl_id:#x}")]
    UnknownGpadl {
        /// The message.
        msgtype: MessageType,
        /// The GPADL.
        gpadl_id: u32,
    },
    /// A GPADL body the reassembly rejected.
    #[error("GPADL body rejected")]
    Gpadl(#[source] GpadlError),
    /// A complete GPADL the host's check refused (see [`Server::handle_message_checked`]).
    #[error("GPADL {gpadl_id:#x} refused: it names pages the host cannot map")]
    GpadlRefused {
        /// The GPADL, now forgotten.
        gpadl_id: u32,
    },
    /// OPENCHANNEL over a GPADL that cannot hold the channel's rings: not one range of whole
    /// pages at offset 0 ([`Gpadl::ring_pfns`]), a downstream offset that leaves either ring
    /// under two pages, or a GPADL being torn down.
    #[error("OPENCHANNEL for relid {relid}: GPADL {gpadl_id:#x} cannot hold its rings")]
    BadRing {
        /// The channel.
        relid: u32,
        /// The ring GPADL.
        gpadl_id: u32,
    },
    /// A feature this server does not offer.
    #[error("{0:?} is not supported")]
    Unsupported(MessageType),
}

/// What one call produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Host→guest message payloads, in order (post each into the guest's SINT 2 slot).
    pub messages: Vec<Vec<u8>>,
    /// VMM actions, in order.
    pub actions: Vec<Action>,
    /// Dropped guest messages.
    pub dropped: Vec<Dropped>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Offered,
    Open { gpadl_id: u32 },
}

#[derive(Clone, Debug)]
struct Channel {
    spec: OfferSpec,
    state: State,
    rescinded: bool,
}

/// The VMBus host state machine.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    version: Option<VmbusVersion>,
    offers_sent: bool,
    channels: BTreeMap<u32, Channel>,
    gpadls: GpadlTable,
    /// GPADLs the guest tore down while a channel still used them.
    deferred_teardown: BTreeSet<u32>,
}

impl Server {
    /// A server with no channels, waiting for INITIATE_CONTACT.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            version: None,
            offers_sent: false,
            channels: BTreeMap::new(),
            gpadls: GpadlTable::new(config.gpadl_limits),
            deferred_teardown: BTreeSet::new(),
        }
    }

    /// The negotiated version.
    pub fn version(&self) -> Option<VmbusVersion> {
        self.version
    }

    /// A complete GPADL (to map a channel's rings or a data buffer).
    pub fn gpadl(&self, gpadl_id: u32) -> Option<&Gpadl> {
        self.gpadls.get(gpadl_id)
    }

    /// GPADLs held (complete or being assembled).
    pub fn gpadl_count(&self) -> usize {
        self.gpadls.len() + self.gpadls.in_progress()
    }

    /// Relids in use (offered, open or rescinded-but-unreleased).
    pub fn relids(&self) -> impl Iterator<Item = u32> + '_ {
        self.channels.keys().copied()
    }

    /// Whether `relid` is open.
    pub fn is_open(&self, relid: u32) -> bool {
        self.channels
            .get(&relid)
            .is_some_and(|c| matches!(c.state, State::Open { .. }))
    }

    /// The connection id the guest signals channel `relid` with (SINT 2, VTL 0).
    pub fn connection_id(relid: u32) -> u32 {
        relid | u32::from(VMBUS_MESSAGE_SINT) << 12
    }

    /// Adds a channel and returns its relid (`None` when all 2047 are in use). If the guest
    /// already asked for offers, the offer is sent right away (hot add).
    pub fn add_offer(&mut self, spec: OfferSpec) -> (Option<u32>, Output) {
        let mut out = Output::default();
        let Some(relid) = (1..=MAX_RELID).find(|r| !self.channels.contains_key(r)) else {
            return (None, out);
        };
        if self.offers_sent {
            out.messages.push(Self::offer_message(relid, &spec));
        }
        self.channels.insert(
            relid,
            Channel {
                spec,
                state: State::Offered,
                rescinded: false,
            },
        );
        (Some(relid), out)
    }

    /// Withdraws channel `relid`: sends RESCIND; the relid is reused only after the guest's
    /// RELID_RELEASED.
    pub fn rescind(&mut self, relid: u32) -> Output {
        let mut out = Output::default();
        if let Some(c) = self.channels.get_mut(&relid) {
            if !c.rescinded {
                c.rescinded = true;
                if self.offers_sent {
                    out.messages
                        .push(ChannelMessage::RescindChannelOffer { child_relid: relid }.emit());
                } else {
                    self.channels.remove(&relid);
                }
            }
        }
        out
    }

    fn offer_message(relid: u32, spec: &OfferSpec) -> Vec<u8> {
        let mut offer = Offer::new_zeroed();
        offer.header = Header::new(MessageType::OFFER_CHANNEL);
        offer.if_type = spec.if_type;
        offer.if_instance = spec.if_instance;
        offer.chn_flags = U16::new(spec.flags);
        offer.user_def = spec.user_def;
        offer.child_relid = U32::new(relid);
        // No monitor pages (a KVM host cannot poll them): the guest always signals by hypercall.
        offer.monitor_allocated = 0;
        offer.is_dedicated_interrupt = U16::new(1);
        offer.connection_id = U32::new(Self::connection_id(relid));
        ChannelMessage::OfferChannel(offer).emit()
    }

    /// Handles one guest→host message, accepting every GPADL the guest describes (a host that
    /// maps GPADL pages should use [`Server::handle_message_checked`] instead).
    pub fn handle_message(&mut self, payload: &[u8]) -> Output {
        self.handle_message_checked(payload, |_| true)
    }

    /// Handles one guest→host message; `accept` vets every GPADL the moment it is complete
    /// (typically: is every page guest RAM the host can map?). A refused GPADL is forgotten and
    /// answered with GPADL_CREATED carrying [`STATUS_UNSUCCESSFUL`], plus
    /// [`Dropped::GpadlRefused`], so no channel can later open over pages the host cannot reach.
    pub fn handle_message_checked<F: FnMut(&Gpadl) -> bool>(
        &mut self,
        payload: &[u8],
        mut accept: F,
    ) -> Output {
        let mut out = Output::default();
        let msg = match ChannelMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                out.dropped.push(Dropped::Malformed(e));
                return out;
            }
        };
        let t = msg.message_type();
        if let ChannelMessage::InitiateContact(ic) = &msg {
            self.initiate_contact(ic.version_requested.get(), ic.target_vcpu.get(), &mut out);
            return out;
        }
        if matches!(
            t,
            MessageType::OFFER_CHANNEL
                | MessageType::RESCIND_CHANNEL_OFFER
                | MessageType::ALL_OFFERS_DELIVERED
                | MessageType::OPEN_CHANNEL_RESULT
                | MessageType::GPADL_CREATED
                | MessageType::GPADL_TORNDOWN
                | MessageType::VERSION_RESPONSE
                | MessageType::UNLOAD_RESPONSE
                | MessageType::CLOSE_RESERVED_RESPONSE
                | MessageType::TL_CONNECT_RESULT
                | MessageType::MODIFY_CHANNEL_RESPONSE
        ) {
            out.dropped.push(Dropped::WrongDirection(t));
            return out;
        }
        let Some(version) = self.version else {
            out.dropped.push(Dropped::NotConnected(t));
            return out;
        };
        match msg {
            ChannelMessage::RequestOffers => {
                for (relid, c) in &self.channels {
                    if !c.rescinded {
                        out.messages.push(Self::offer_message(*relid, &c.spec));
                    }
                }
                out.messages.push(ChannelMessage::AllOffersDelivered.emit());
                self.offers_sent = true;
            }
            ChannelMessage::GpadlHeader(h) => {
                let known = self
                    .channels
                    .get(&h.child_relid)
                    .is_some_and(|c| !c.rescinded);
                let result = if known {
                    self.gpadls.handle_message(payload)
                } else {
                    Err(GpadlError::UnknownId { gpadl_id: h.gpadl })
                };
                // The documented answer to a bad header: GPADL_CREATED with a failure.
                self.gpadl_progress(result, h.gpadl, Some(h.child_relid), &mut accept, &mut out);
            }
            ChannelMessage::GpadlBody(b) => {
                // A body failing its assembly discards it: tell the guest, on the channel of
                // the header (Linux matches both the relid and the GPADL id). A body for no
                // assembly has nothing to answer.
                let relid = self.gpadls.pending_relid(b.gpadl);
                let result = self.gpadls.handle_message(payload);
                self.gpadl_progress(result, b.gpadl, relid, &mut accept, &mut out);
            }
            ChannelMessage::GpadlTeardown { child_relid, gpadl } => {
                if self.gpadls.get(gpadl).is_none() {
                    out.dropped.push(Dropped::UnknownGpadl {
                        msgtype: t,
                        gpadl_id: gpadl,
                    });
                } else if self
                    .channels
                    .values()
                    .any(|c| c.state == State::Open { gpadl_id: gpadl })
                {
                    // Still mapped as a ring: answer once the channel closes.
                    self.deferred_teardown.insert(gpadl);
                } else {
                    self.release_gpadl(gpadl, &mut out);
                }
                let _ = child_relid;
            }
            ChannelMessage::OpenChannel(o) => self.open_channel(&o, version, &mut out),
            ChannelMessage::CloseChannel { child_relid } => {
                if self.is_open(child_relid) {
                    self.close(child_relid, &mut out);
                } else {
                    out.dropped.push(Dropped::BadRelid {
                        msgtype: t,
                        relid: child_relid,
                    });
                }
            }
            ChannelMessage::RelidReleased { child_relid } => {
                match self.channels.get(&child_relid) {
                    Some(c) if c.rescinded => {
                        if self.is_open(child_relid) {
                            self.close(child_relid, &mut out);
                        }
                        self.channels.remove(&child_relid);
                        out.actions
                            .push(Action::RelidReleased { relid: child_relid });
                    }
                    _ => out.dropped.push(Dropped::BadRelid {
                        msgtype: t,
                        relid: child_relid,
                    }),
                }
            }
            ChannelMessage::ModifyChannel {
                child_relid,
                target_vp,
            } => {
                if version.0 < VmbusVersion::WIN10_V4_1.0 {
                    out.dropped.push(Dropped::Unsupported(t));
                } else if self.is_open(child_relid) {
                    out.actions.push(Action::ModifyChannel {
                        relid: child_relid,
                        target_vp,
                    });
                    if version.0 >= VmbusVersion::WIN10_V5_3.0 {
                        out.messages.push(
                            ChannelMessage::ModifyChannelResponse {
                                child_relid,
                                status: 0,
                            }
                            .emit(),
                        );
                    }
                } else {
                    out.dropped.push(Dropped::BadRelid {
                        msgtype: t,
                        relid: child_relid,
                    });
                }
            }
            ChannelMessage::Unload => {
                self.reset(&mut out);
                out.messages.push(ChannelMessage::UnloadResponse.emit());
            }
            ChannelMessage::TlConnectRequest(req, _) => {
                let mut result = super::messages::TlConnectResult::new_zeroed();
                result.header = Header::new(MessageType::TL_CONNECT_RESULT);
                result.guest_endpoint = req.guest_endpoint;
                result.host_service = req.host_service;
                result.status = U32::new(STATUS_UNSUCCESSFUL);
                out.messages
                    .push(ChannelMessage::TlConnectResult(result).emit());
                out.dropped.push(Dropped::Unsupported(t));
            }
            _ => out.dropped.push(Dropped::Unsupported(t)),
        }
        out
    }

    fn initiate_contact(&mut self, requested: u32, target_vcpu: u32, out: &mut Output) {
        if self.version.is_some() {
            out.dropped.push(Dropped::AlreadyConnected);
            return;
        }
        let v = VmbusVersion(requested);
        let ok = NEGOTIABLE.contains(&v)
            && v.0 >= self.config.min_version.0
            && v.0 <= self.config.max_version.0;
        let conn = if v.0 >= VmbusVersion::WIN10_V5.0 {
            MESSAGE_CONNECTION_ID
        } else {
            requested
        };
        out.messages.push(
            ChannelMessage::VersionResponse {
                version_supported: ok,
                connection_state: 0,
                msg_conn_id: if ok { conn } else { 0 },
            }
            .emit(),
        );
        if ok {
            self.version = Some(v);
            out.actions.push(Action::Connected {
                version: v,
                target_vcpu,
            });
        }
    }

    fn open_channel(
        &mut self,
        o: &super::messages::OpenChannel,
        version: VmbusVersion,
        out: &mut Output,
    ) {
        let relid = o.child_relid.get();
        let open_id = o.open_id.get();
        let gpadl_id = o.ring_gpadl.get();
        let offset = o.downstream_ringbuffer_pageoffset.get();
        let fail = |out: &mut Output| {
            out.messages.push(
                ChannelMessage::OpenChannelResult {
                    child_relid: relid,
                    open_id,
                    status: STATUS_UNSUCCESSFUL,
                }
                .emit(),
            )
        };
        let Some(channel) = self.channels.get(&relid) else {
            out.dropped.push(Dropped::BadRelid {
                msgtype: MessageType::OPEN_CHANNEL,
                relid,
            });
            return;
        };
        if channel.rescinded || channel.state != State::Offered {
            out.dropped.push(Dropped::BadRelid {
                msgtype: MessageType::OPEN_CHANNEL,
                relid,
            });
            return fail(out);
        }
        // The ring GPADL must exist, belong to this channel, have a ring's shape (what every
        // host maps the rings through) and hold both rings.
        let gpadl = self
            .gpadls
            .get(gpadl_id)
            .filter(|g| g.child_relid() == relid);
        let Some(gpadl) = gpadl else {
            out.dropped.push(Dropped::UnknownGpadl {
                msgtype: MessageType::OPEN_CHANNEL,
                gpadl_id,
            });
            return fail(out);
        };
        let pages = gpadl.ring_pfns().map_or(0, |p| p.len() as u64);
        if offset < 2 || u64::from(offset) + 2 > pages || self.deferred_teardown.contains(&gpadl_id)
        {
            out.dropped.push(Dropped::BadRing { relid, gpadl_id });
            return fail(out);
        }
        let target_vp = if version.0 >= VmbusVersion::WIN8.0 {
            o.target_vp.get()
        } else {
            0
        };
        if let Some(c) = self.channels.get_mut(&relid) {
            c.state = State::Open { gpadl_id };
        }
        out.actions.push(Action::OpenChannel {
            relid,
            gpadl_id,
            downstream_page_offset: offset,
            target_vp,
            connection_id: Self::connection_id(relid),
        });
        out.messages.push(
            ChannelMessage::OpenChannelResult {
                child_relid: relid,
                open_id,
                status: 0,
            }
            .emit(),
        );
    }

    fn close(&mut self, relid: u32, out: &mut Output) {
        let Some(c) = self.channels.get_mut(&relid) else {
            return;
        };
        let State::Open { gpadl_id } = c.state else {
            return;
        };
        c.state = State::Offered;
        out.actions.push(Action::CloseChannel { relid });
        if self.deferred_teardown.remove(&gpadl_id) {
            self.release_gpadl(gpadl_id, out);
        }
    }

    /// A GPADL just finished assembly: vet it and answer GPADL_CREATED.
    /// Acts on a GPADL message's outcome: a complete GPADL is vetted and answered; a failure
    /// is answered with GPADL_CREATED and a failure status on `fail_relid`'s channel, if any.
    fn gpadl_progress<F: FnMut(&Gpadl) -> bool>(
        &mut self,
        result: Result<GpadlProgress, GpadlError>,
        gpadl: u32,
        fail_relid: Option<u32>,
        accept: &mut F,
        out: &mut Output,
    ) {
        match result {
            Ok(GpadlProgress::Complete {
                gpadl_id,
                child_relid,
            }) => self.gpadl_complete(gpadl_id, child_relid, accept, out),
            Ok(GpadlProgress::InProgress { .. }) => {}
            Err(e) => {
                if let Some(child_relid) = fail_relid {
                    out.messages.push(
                        ChannelMessage::GpadlCreated {
                            child_relid,
                            gpadl,
                            status: STATUS_UNSUCCESSFUL,
                        }
                        .emit(),
                    );
                }
                out.dropped.push(Dropped::Gpadl(e));
            }
        }
    }

    fn gpadl_complete<F: FnMut(&Gpadl) -> bool>(
        &mut self,
        gpadl_id: u32,
        child_relid: u32,
        accept: &mut F,
        out: &mut Output,
    ) {
        let accepted = self.gpadls.get(gpadl_id).is_some_and(&mut *accept);
        let status = if accepted {
            0
        } else {
            self.gpadls.remove(gpadl_id);
            out.dropped.push(Dropped::GpadlRefused { gpadl_id });
            STATUS_UNSUCCESSFUL
        };
        out.messages.push(
            ChannelMessage::GpadlCreated {
                child_relid,
                gpadl: gpadl_id,
                status,
            }
            .emit(),
        );
    }

    fn release_gpadl(&mut self, gpadl_id: u32, out: &mut Output) {
        if self.gpadls.remove(gpadl_id).is_some() {
            out.messages
                .push(ChannelMessage::GpadlTorndown { gpadl: gpadl_id }.emit());
            out.actions.push(Action::GpadlReleased { gpadl_id });
        }
    }

    fn reset(&mut self, out: &mut Output) {
        let open: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Open { .. }))
            .map(|(r, _)| *r)
            .collect();
        for relid in open {
            if let Some(c) = self.channels.get_mut(&relid) {
                c.state = State::Offered;
            }
            out.actions.push(Action::CloseChannel { relid });
        }
        let ids: Vec<u32> = self.gpadls.ids().collect();
        for gpadl_id in ids {
            out.actions.push(Action::GpadlReleased { gpadl_id });
        }
        self.gpadls.clear();
        self.deferred_teardown.clear();
        self.channels.retain(|_, c| !c.rescinded);
        self.version = None;
        self.offers_sent = false;
        out.actions.push(Action::Reset);
    }
}
