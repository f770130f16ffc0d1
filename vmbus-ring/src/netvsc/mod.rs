//! The synthetic network protocol (netvsc/netvsp): NVSP messages on a VMBus channel carrying
//! RNDIS messages, with a guest receive buffer and send buffer shared as GPADLs.
//!
//! * [`nvsp`]: the NVSP messages (version negotiation, buffer registration, the RNDIS carrier).
//! * [`rndis`]: the RNDIS messages (INITIALIZE, QUERY, SET, PACKET, status indications) and
//!   the OIDs a guest asks about.
//! * [`host`]: the netvsp side of one channel, transport-agnostic: it decides the answers, the
//!   caller moves bytes between guest memory, the rings and its switch.
//!
//! ```text
//!  guest → host  SEND_RNDIS_PKT (in-band or GPA-direct) ─ RNDIS PACKET/INITIALIZE/QUERY/SET
//!  host → guest  transfer-page packet into the receive buffer ─ RNDIS PACKET / *_CMPLT
//! ```
//!
//! NVSP's success status is 1; RNDIS's is 0.

use crate::channel::Guid;

pub mod host;
pub mod nvsp;
pub mod rndis;

/// Interface type of the synthetic network adapter (f8615163-df3e-46c5-913f-f2d2f965ed0e).
pub const NIC_INTERFACE: Guid = Guid::from_fields(
    0xf861_5163,
    0xdf3e,
    0x46c5,
    [0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e],
);

/// The receive buffer's transfer-page set id Linux uses.
pub const RECV_BUFFER_ID: u16 = 0xCAFE;
