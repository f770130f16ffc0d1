//! The VMBus channel-management protocol: messages, and the host and guest state machines.

pub mod client;
#[cfg(test)]
mod golden;
mod guid;
pub mod messages;
pub mod server;
#[cfg(test)]
mod tests;

pub use guid::{interface, Guid, GuidParseError};
pub use messages::{ChannelMessage, MessageError, MessageType, VmbusVersion};
