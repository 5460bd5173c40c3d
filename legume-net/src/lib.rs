//! Connections for legume-rs: reliable UDP messaging between a `Server` and
//! its `Client`s.
//!
//! **Status:** this crate is a skeleton. Its module layout is planned below
//! and filled in by the issues "Sans-IO connection core" and "Client and
//! Server over UDP"; today it exports only [`MTU`] and [`Delivery`].
//!
//! # Planned layout
//!
//! | module | job |
//! |---|---|
//! | `packet` | packet header view and representation: protocol id, version, sequence, ack, ack bits |
//! | `ack` | 16-bit sequence arithmetic across wraparound and the received-sequence window |
//! | `channel` | unreliable, reliable and reliable-ordered message channels, fragmentation |
//! | `timer` | the connection's timers (resend, keep-alive, ping, timeout) |
//! | `connection` | the sans-IO state machine: `handle_datagram(now, bytes)`, `handle_timeout(now)`, `poll_transmit`, `poll_event`, `poll_timeout` |
//! | `server` | many connections keyed by address, the stateless handshake |
//! | `udp` | the socket2 driver that runs the state machine over real sockets |
//!
//! The protocol never reads a clock or touches a socket; time is passed in,
//! so every protocol test runs on a simulated clock over a seeded lossy link.
//! The wire format is specified in `docs/PROTOCOL.md`.
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
