//! Connections for legume-rs: reliable UDP messaging between a `Server` and
//! its `Client`s.
//!
//! This crate holds the protocol as a **sans-IO** state machine: a
//! [`Connection`] (one peer) and a [`ServerEndpoint`] (many peers behind one
//! address, with a stateless handshake) take datagrams and the current time
//! in and give datagrams, events and the next wake-up time out. They never
//! read a clock or touch a socket, so every protocol test runs on a simulated
//! clock over the seeded lossy network of [`sim`]. The UDP driver, `Client`
//! and `Server` over real sockets are the next layer (in progress).
//!
//! The wire format, timers and state machine are specified in
//! `docs/PROTOCOL.md`.
//!
//! | module | job |
//! |---|---|
//! | `packet` | datagram and frame layouts: parse and emit |
//! | `seq` | 16-bit sequence arithmetic across wraparound, sequence rings |
//! | `ack` | received packets: duplicates, ack fields, ack scheduling |
//! | `recovery` | sent packets: loss detection, probe timeout, RTT, congestion |
//! | `channel` | unreliable queue; reliable and ordered send and receive sides, fragmentation |
//! | `connection` | one peer's state machine |
//! | `handshake` | stateless challenge cookies |
//! | `server` | the server endpoint: handshake, peers keyed by address, timer heap |
//! | [`sim`] | a deterministic in-memory lossy network for tests and benchmarks |
//!
//! # Example
//!
//! ```
//! use legume_net::{Delivery, MTU};
//!
//! assert_eq!(MTU, 1400);
//! assert!(Delivery::ReliableOrdered.is_reliable());
//! ```
#![warn(missing_docs, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod ack;
mod channel;
mod config;
mod congestion;
mod connection;
mod driver;
mod event;
mod handshake;
mod packet;
mod recovery;
mod rtt;
mod seq;
mod server;
pub mod sim;

pub use config::Config;
pub use connection::Connection;
pub use driver::{BufferSizes, Client, ConnectError, ListenError, Server};
pub use event::{DisconnectReason, Event, IoError, MessageError, SendError, State, Stats};
pub use packet::PacketError;
pub use server::{
    ConnectHook, ConnectRequest, Decision, EndpointStats, ServerEndpoint, ServerEvent,
};

/// The default largest UDP payload, in bytes, as in legume.
pub const MTU: usize = 1400;

/// How a message is delivered.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Delivery {
    /// At most once, in any order; may be lost.
    Unreliable,
    /// Exactly once, in any order.
    Reliable,
    /// Exactly once, in the order sent.
    ReliableOrdered,
}

impl Delivery {
    /// Whether the message is resent until acknowledged.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Delivery::Unreliable)
    }
}
