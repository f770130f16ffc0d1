//! The guest (client) side of the channel-management protocol, usable in a `no_std` guest.
//!
//! It produces messages (with the connection id to post each on) and consumes host messages
//! into [`ClientEvent`]s: connect with version fallback (newest first, as Linux does), collect
//! offers, create GPADLs (split into GPADL_HEADER/BODY), open and close channels, tear GPADLs
//! down, release rescinded relids, unload.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::FromZeros;

use super::messages::{
    ChannelMessage, Header, InitiateContact, MessageType, Offer, OpenChannel, VmbusVersion,
};
use super::server::{MESSAGE_CONNECTION_ID, MESSAGE_CONNECTION_ID_4, VMBUS_MESSAGE_SINT};
use crate::defs::MAX_MESSAGE_PAYLOAD;
use crate::gpadl::{GpaRange, GpadlError, GpadlMessages};

/// Linux 6.1's version order: newest first.
pub const LINUX_VERSIONS: [VmbusVersion; 8] = [
    VmbusVersion::WIN10_V5_3,
    VmbusVersion::WIN10_V5_2,
    VmbusVersion::WIN10_V5_1,
    VmbusVersion::WIN10_V5,
    VmbusVersion::WIN10_V4_1,
    VmbusVersion::WIN10,
    VmbusVersion::WIN8_1,
    VmbusVersion::WIN8,
];

/// First GPADL id Linux uses.
pub const FIRST_GPADL_ID: u32 = 0xE1E10;

/// A message to post: the connection id and the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// HvPostMessage connection id.
    pub connection_id: u32,
    /// The message.
    pub payload: Vec<u8>,
}

/// What the host told the client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Connected at `version`.
    Connected {
        /// The version.
        version: VmbusVersion,
    },
    /// The host refused every version.
    ConnectFailed,
    /// A channel offer.
    Offer(Offer),
    /// All offers were sent.
    AllOffersDelivered,
    /// A GPADL was created (status 0) or refused.
    GpadlCreated {
        /// The GPADL.
        gpadl_id: u32,
        /// Status.
        status: u32,
    },
    /// An open completed (status 0) or failed.
    Opened {
        /// Relid.
        relid: u32,
        /// Status.
        status: u32,
    },
    /// A GPADL is torn down.
    GpadlTorndown {
        /// The GPADL.
        gpadl_id: u32,
    },
    /// The host withdrew a channel (close it, tear its GPADLs down, then release the relid).
    Rescinded {
        /// Relid.
        relid: u32,
    },
    /// MODIFYCHANNEL acknowledged.
    Modified {
        /// Relid.
        relid: u32,
        /// Status.
        status: u32,
    },
    /// UNLOAD done; the client may connect again.
    Unloaded,
    /// A message the client did not expect (ignored).
    Unexpected(MessageType),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Connecting(usize),
    Connected(VmbusVersion, u32),
    Failed,
}

/// The VMBus guest state machine.
#[derive(Debug)]
pub struct Client {
    versions: Vec<VmbusVersion>,
    state: State,
    target_vcpu: u32,
    monitor_pages: (u64, u64),
    offers: BTreeMap<u32, Offer>,
    next_gpadl: u32,
}

impl Client {
    /// A client that will try `versions` in order (e.g. [`LINUX_VERSIONS`]), receiving host
    /// messages on `target_vcpu`, donating the two monitor pages at the given GPAs.
    pub fn new(versions: &[VmbusVersion], target_vcpu: u32, monitor_pages: (u64, u64)) -> Self {
        Self {
            versions: versions.to_vec(),
            state: State::Idle,
            target_vcpu,
            monitor_pages,
            offers: BTreeMap::new(),
            next_gpadl: FIRST_GPADL_ID,
        }
    }

    /// The negotiated version.
    pub fn version(&self) -> Option<VmbusVersion> {
        match self.state {
            State::Connected(v, _) => Some(v),
            _ => None,
        }
    }

    /// Offers received, by relid.
    pub fn offers(&self) -> &BTreeMap<u32, Offer> {
        &self.offers
    }

    fn contact(&self, index: usize) -> Option<Outgoing> {
        let version = *self.versions.get(index)?;
        let mut ic = InitiateContact::new_zeroed();
        ic.header = Header::new(MessageType::INITIATE_CONTACT);
        ic.version_requested = U32::new(version.0);
        ic.target_vcpu = U32::new(self.target_vcpu);
        let v5 = version.0 >= VmbusVersion::WIN10_V5.0;
        // ≥ 5.0: byte 0 = message SINT, byte 1 = VTL 0.
        ic.interrupt_page_or_sint = U64::new(if v5 { u64::from(VMBUS_MESSAGE_SINT) } else { 0 });
        ic.monitor_page1 = U64::new(self.monitor_pages.0);
        ic.monitor_page2 = U64::new(self.monitor_pages.1);
        Some(Outgoing {
            connection_id: if v5 {
                MESSAGE_CONNECTION_ID_4
            } else {
                MESSAGE_CONNECTION_ID
            },
            payload: ChannelMessage::InitiateContact(ic).emit(),
        })
    }

    fn connection(&self) -> u32 {
        match self.state {
            State::Connected(_, id) => id,
            _ => MESSAGE_CONNECTION_ID,
        }
    }

    fn out(&self, msg: ChannelMessage) -> Outgoing {
        Outgoing {
            connection_id: self.connection(),
            payload: msg.emit(),
        }
    }

    /// Starts connecting with the newest version. `None` when the client was given no
    /// versions: it is then failed, and ignores a VERSION_RESPONSE.
    pub fn connect(&mut self) -> Option<Outgoing> {
        self.offers.clear();
        let first = self.contact(0);
        // With no version to offer there is nothing to wait for.
        self.state = if first.is_some() {
            State::Connecting(0)
        } else {
            State::Failed
        };
        first
    }

    /// Handles one host message; returns the events and any messages to post in reply.
    pub fn handle_message(&mut self, payload: &[u8]) -> (Vec<ClientEvent>, Vec<Outgoing>) {
        let (mut events, mut out) = (Vec::new(), Vec::new());
        let Ok(msg) = ChannelMessage::parse(payload) else {
            events.push(ClientEvent::Unexpected(MessageType(
                payload.first().copied().map_or(0, u32::from),
            )));
            return (events, out);
        };
        match (msg, self.state) {
            (
                ChannelMessage::VersionResponse {
                    version_supported,
                    msg_conn_id,
                    ..
                },
                State::Connecting(i),
            ) => {
                if let (true, Some(&version)) = (version_supported, self.versions.get(i)) {
                    let conn = if version.0 >= VmbusVersion::WIN10_V5.0 {
                        msg_conn_id
                    } else {
                        MESSAGE_CONNECTION_ID
                    };
                    self.state = State::Connected(version, conn);
                    events.push(ClientEvent::Connected { version });
                    out.push(self.out(ChannelMessage::RequestOffers));
                } else if let Some(next) = self.contact(i + 1) {
                    self.state = State::Connecting(i + 1);
                    out.push(next);
                } else {
                    self.state = State::Failed;
                    events.push(ClientEvent::ConnectFailed);
                }
            }
            (ChannelMessage::OfferChannel(offer), State::Connected(..)) => {
                self.offers.insert(offer.child_relid.get(), offer);
                events.push(ClientEvent::Offer(offer));
            }
            (ChannelMessage::AllOffersDelivered, State::Connected(..)) => {
                events.push(ClientEvent::AllOffersDelivered)
            }
            (ChannelMessage::GpadlCreated { gpadl, status, .. }, State::Connected(..)) => events
                .push(ClientEvent::GpadlCreated {
                    gpadl_id: gpadl,
                    status,
                }),
            (
                ChannelMessage::OpenChannelResult {
                    child_relid,
                    status,
                    ..
                },
                State::Connected(..),
            ) => events.push(ClientEvent::Opened {
                relid: child_relid,
                status,
            }),
            (ChannelMessage::GpadlTorndown { gpadl }, State::Connected(..)) => {
                events.push(ClientEvent::GpadlTorndown { gpadl_id: gpadl })
            }
            (ChannelMessage::RescindChannelOffer { child_relid }, State::Connected(..)) => {
                events.push(ClientEvent::Rescinded { relid: child_relid })
            }
            (
                ChannelMessage::ModifyChannelResponse {
                    child_relid,
                    status,
                },
                State::Connected(..),
            ) => events.push(ClientEvent::Modified {
                relid: child_relid,
                status,
            }),
            (ChannelMessage::UnloadResponse, _) => {
                self.state = State::Idle;
                self.offers.clear();
                events.push(ClientEvent::Unloaded);
            }
            (other, _) => events.push(ClientEvent::Unexpected(other.message_type())),
        }
        (events, out)
    }

    /// Describes `pfns` (whole pages) to the host as a new GPADL of channel `relid`; returns
    /// its id and the GPADL_HEADER/BODY messages.
    pub fn create_gpadl(
        &mut self,
        relid: u32,
        pfns: &[u64],
    ) -> Result<(u32, Vec<Outgoing>), GpadlError> {
        let id = self.next_gpadl;
        let ranges = [GpaRange::whole_pages(pfns)];
        let mut split = GpadlMessages::new(relid, id, &ranges)?;
        let mut messages = Vec::with_capacity(split.message_count());
        let mut buf = [0u8; MAX_MESSAGE_PAYLOAD];
        while let Some(len) = split.next_message(&mut buf) {
            messages.push(Outgoing {
                connection_id: self.connection(),
                payload: buf[..len].to_vec(),
            });
        }
        self.next_gpadl = self.next_gpadl.wrapping_add(1);
        Ok((id, messages))
    }

    /// Opens channel `relid` over ring GPADL `gpadl_id` (host→guest ring starting at page
    /// `downstream_page_offset`), interrupting `target_vp`.
    pub fn open_channel(
        &self,
        relid: u32,
        gpadl_id: u32,
        downstream_page_offset: u32,
        target_vp: u32,
    ) -> Outgoing {
        let mut open = OpenChannel::new_zeroed();
        open.header = Header::new(MessageType::OPEN_CHANNEL);
        open.child_relid = U32::new(relid);
        open.open_id = U32::new(relid);
        open.ring_gpadl = U32::new(gpadl_id);
        open.target_vp = U32::new(target_vp);
        open.downstream_ringbuffer_pageoffset = U32::new(downstream_page_offset);
        self.out(ChannelMessage::OpenChannel(open))
    }

    /// Closes channel `relid`.
    pub fn close_channel(&self, relid: u32) -> Outgoing {
        self.out(ChannelMessage::CloseChannel { child_relid: relid })
    }

    /// Tears GPADL `gpadl_id` of channel `relid` down.
    pub fn teardown_gpadl(&self, relid: u32, gpadl_id: u32) -> Outgoing {
        self.out(ChannelMessage::GpadlTeardown {
            child_relid: relid,
            gpadl: gpadl_id,
        })
    }

    /// Releases a rescinded relid.
    pub fn release_relid(&self, relid: u32) -> Outgoing {
        self.out(ChannelMessage::RelidReleased { child_relid: relid })
    }

    /// Moves channel `relid`'s interrupts to `target_vp`.
    pub fn modify_channel(&self, relid: u32, target_vp: u32) -> Outgoing {
        self.out(ChannelMessage::ModifyChannel {
            child_relid: relid,
            target_vp,
        })
    }

    /// Disconnects everything.
    pub fn unload(&self) -> Outgoing {
        self.out(ChannelMessage::Unload)
    }
}
