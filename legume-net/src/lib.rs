//! Connections for legume-rs: reliable UDP messaging between a `Server` and
//! its `Client`s.
//!
//! This crate holds the protocol as a **sans-IO** state machine: a
//! [`Connection`] (one peer) and a [`ServerEndpoint`] (many peers behind one
//! address, with a stateless handshake) take datagrams and the current time
//! in and give datagrams, events and the next wake-up time out. They never
//! read a clock or touch a socket, so every protocol test runs on a simulated
//! clock over the seeded lossy network of [`sim`]. `Client` and `Server`
//! are the thin UDP driver (socket2) around them, with legume's API.
//!
//! By default it does not encrypt or authenticate traffic. The opt-in
//! secure mode does, with connect tokens in the manner of netcode.io: a
//! backend issues a [`ConnectToken`] sealed with a [`PrivateKey`] it shares
//! with the servers; [`ServerEndpoint::require_connect_tokens`] admits only
//! holders of valid tokens, and [`Connection::connect_with_token`] connects
//! with one; every packet after the handshake is then encrypted and
//! authenticated (ChaCha20-Poly1305). See `docs/PROTOCOL.md`, sections 7
//! and 8. It has no async runtime: the app's frame loop drives it.
//!
//! The wire format, timers and state machine are specified in
//! `docs/PROTOCOL.md`.
//!
//! | module | job |
//! |---|---|
//! | `config` | [`Config`] and its groups ([`Limits`], [`CongestionConfig`], [`ServerConfig`], [`DriverConfig`]), with legume's defaults |
//! | `client_id` | [`ClientId`], a peer's identity on a server, and [`PeerRef`] |
//! | `delivery` | [`Delivery`]: the guarantees a message is sent with |
//! | `event` | what a connection reports: [`Event`], [`DisconnectReason`], errors, [`State`], [`Stats`] |
//! | `packet` | datagram and frame layouts: parse and emit; every wire constant in `packet::layout` |
//! | `seq` | 16-bit sequence arithmetic across wraparound, sequence rings |
//! | `ack` | received packets: duplicates, ack fields, ack scheduling |
//! | `rtt` | round-trip time estimation (RFC 6298 / RFC 9002) |
//! | `congestion` | rate control: the controller interface, BBR-style and NewReno |
//! | `pacing` | spacing DATA packets at the pacing rate |
//! | `recovery` | sent packets: loss detection, probe timeout, spurious-loss undo |
//! | `channel` | unreliable queue; reliable and ordered send and receive sides, fragmentation |
//! | `connection` | one peer's state machine: the native engine, the `Engine` seam, packet protection |
//! | `legacy` | the legume v4 engine: Python legume 0.5's wire protocol behind the same [`Connection`] |
//! | `handshake` | stateless challenge cookies |
//! | [`secure`] | connect tokens, packet sealing, replay window (the secure mode's building blocks) |
//! | `secret_rng` | the CSPRNG behind a server's cookie key and session ids |
//! | `server` | the server endpoint: handshakes per mode, admission guards, peers keyed by address, timer heap |
//! | `driver` | `Client` and `Server` over a non-blocking UDP socket (feature `udp`, on by default) |
//! | `live` | [`LiveStats`]: rates over a sliding window from the cumulative [`Stats`] |
//! | `observe` | `tracing` events and their rate limits, per connection |
//! | `time` | small deadline helpers |
//! | [`sim`] | a deterministic in-memory lossy network for tests and benchmarks, and the driver's [`Conditioner`](sim::Conditioner) |
//!
//! # Features
//!
//! - `udp` (default): the UDP driver, `Client` and `Server`. Without it
//!   the crate is the sans-IO core alone, with no socket code.
//! - `serde`: `serde::Serialize` for [`Stats`], [`LiveStats`] and
//!   [`EndpointStats`].
//!
//! # Example
//!
//! A client and a server endpoint talking through plain function calls, on a
//! clock the test controls. `Client` and `Server` do the same over UDP.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use legume_core::MessageFactory;
//! use legume_derive::Message;
//! use legume_net::{Config, Connection, Delivery, Event, ServerEndpoint};
//!
//! #[derive(Debug, Message)]
//! #[legume(crate = "legume_core")]
//! #[message(id = 20)]
//! struct Hello { name: String }
//!
//! let mut factory = MessageFactory::new();
//! factory.register::<Hello>()?;
//! let factory = Arc::new(factory);
//!
//! let mut now = Instant::now();
//! let client_addr: SocketAddr = "192.0.2.1:5000".parse()?;
//! // Cookie key and session ids from the OS (`with_insecure_seed` makes
//! // simulations repeatable).
//! let mut server = ServerEndpoint::new(Config::default(), Arc::clone(&factory), now)?;
//! let mut client = Connection::connect(Config::default(), factory, now, 42);
//! client.send(&Hello { name: "ann".into() }, Delivery::ReliableOrdered)?;
//!
//! let mut buf = [0u8; 1500];
//! let mut greeted = false;
//! for _ in 0..10 {
//!     now += Duration::from_millis(10);
//!     while let Some(n) = client.poll_transmit(now, &mut buf) {
//!         server.handle_datagram(now, client_addr, &buf[..n]);
//!     }
//!     while let Some((_to, n)) = server.poll_transmit(now, &mut buf) {
//!         client.handle_datagram(now, &buf[..n]);
//!     }
//!     while let Some(e) = server.poll_event() {
//!         if let Event::Message(m) = e.event {
//!             greeted = m.downcast_ref::<Hello>().is_some_and(|h| h.name == "ann");
//!         }
//!     }
//! }
//! assert!(client.is_connected() && greeted);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

mod ack;
mod channel;
mod client_id;
mod config;
mod congestion;
mod connection;
mod delivery;
#[cfg(feature = "udp")]
mod driver;
mod event;
mod handshake;
mod legacy;
mod live;
mod observe;
mod pacing;
mod packet;
mod recovery;
mod rtt;
mod secret_rng;
pub mod secure;
mod seq;
mod server;
pub mod sim;
mod time;

pub use channel::{
    ChannelConfig, ChannelConfigError, ChannelId, ChannelKind, MessageHandle, MAX_CHANNELS,
};
pub use client_id::{ClientId, PeerRef};
pub use config::{
    Config, CongestionConfig, CongestionController, DriverConfig, Limits, Protocol, ServerConfig,
    MTU,
};
pub use connection::Connection;
pub use delivery::Delivery;
#[cfg(feature = "udp")]
pub use driver::{BufferSizes, Client, ConnectError, ListenError, Server, SocketStats};
pub use event::{
    ChannelStats, DisconnectReason, Event, IoError, MessageError, SendError, State, Stats,
};
pub use live::{LiveStats, StatsWindow};
pub use secure::{ConnectToken, IssueError, PrivateKey, RandomError, TokenParams};
pub use server::{
    Broadcast, ConnectHook, ConnectRequest, Decision, EndpointStats, PeerData, ServerEndpoint,
    ServerEvent,
};
