//! [`Engine`]: what one wire protocol's connection state machine
//! implements to run behind [`Connection`](super::Connection).
//!
//! `Connection` is the public face; an engine is the protocol under it. The
//! native engine (`native`) speaks `docs/PROTOCOL.md`, plain or secure; the
//! legume v4 engine (`crate::legacy`) speaks legume 0.5's protocol
//! (`docs/LEGUME_COMPAT.md`). `Connection` forwards every call to its
//! engine through this trait and adds what is the same for all of them:
//! the peer address for logs, live stats and periodic log summaries.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use legume_core::AnyMessage;

use crate::channel::{ChannelId, MessageHandle};
use crate::config::Protocol;
use crate::delivery::Delivery;
use crate::event::{Event, SendError, State, Stats};
use crate::observe::EngineCounters;

/// One peer's protocol state machine, sans-IO: it never reads a clock or
/// touches a socket.
///
/// Its methods are [`Connection`](super::Connection)'s, with the same
/// contracts; see there for the poll order. A new engine (a protocol or a
/// transport) implements this trait, gets a variant in `AnyEngine` and a
/// constructor on `Connection`, and is then driven by the UDP driver, the
/// server endpoint and the simulator unchanged. It must never panic on
/// anything the peer sends: faults are counted, or close the connection
/// with a [`DisconnectReason`](crate::DisconnectReason).
///
/// The lifecycle is [`State`]: `Connecting`, then `Connected`, then
/// `Disconnected` or `Errored`. An engine reports it with
/// [`state`](Self::state); `is_connected` and `is_closed` follow from it.
pub(crate) trait Engine: fmt::Debug {
    /// The wire protocol it speaks.
    fn protocol(&self) -> Protocol;

    /// The connection's state.
    fn state(&self) -> State;

    /// Whether messages flow.
    fn is_connected(&self) -> bool {
        self.state() == State::Connected
    }

    /// Whether the connection has ended (it may still have packets to send).
    fn is_closed(&self) -> bool {
        matches!(self.state(), State::Disconnected | State::Errored)
    }

    /// Whether the connection has ended and has nothing left to send.
    fn is_drained(&self) -> bool;

    /// This attempt's nonce, for protocols that have one.
    fn nonce(&self) -> u64 {
        0
    }

    /// The session id the server assigned, for protocols that have one.
    fn session(&self) -> u32 {
        0
    }

    /// Whether packets are encrypted and authenticated.
    fn is_secure(&self) -> bool {
        false
    }

    /// Server, secure mode: the handshake reply to repeat when the client's
    /// last handshake packet comes again.
    fn secure_accept(&self) -> Option<Vec<u8>> {
        None
    }

    /// Sets the peer's address, used only in log fields.
    fn set_peer(&mut self, peer: SocketAddr);

    /// The connection's metrics.
    fn stats(&self) -> Stats;

    /// The metrics without [`Stats::channels`], which the periodic samples
    /// do not use: building that list allocates.
    fn sampled_stats(&self) -> Stats {
        self.stats()
    }

    /// Counters for the observer beyond the stats.
    fn counters(&self) -> EngineCounters;

    /// The smoothed round-trip time.
    fn rtt(&self) -> Duration;

    /// The largest unreliable message, which must fit in one packet.
    fn max_unreliable_size(&self) -> usize;

    /// Queues a message; nothing is queued when it returns an error.
    fn send(&mut self, msg: &dyn AnyMessage, delivery: Delivery) -> Result<(), SendError>;

    /// Queues a message on a channel of `Config::channels`; returns its
    /// handle. Nothing is queued when it returns an error.
    fn send_on(
        &mut self,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError>;

    /// Queues a message already encoded (type id and fields, as
    /// `AnyMessage::encode_message` writes it), with the same checks as
    /// [`send`](Self::send): a broadcast encodes once for every peer.
    fn send_encoded(&mut self, message: &[u8], delivery: Delivery) -> Result<(), SendError>;

    /// Closes the connection with `reason`, telling the peer.
    fn disconnect(&mut self, reason: &str);

    /// Processes one datagram from the peer.
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]);

    /// Runs the timers that are due at `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// Writes the next datagram to send into `buf`; returns its length.
    #[must_use]
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;

    /// The next event, if any.
    #[must_use]
    fn poll_event(&mut self) -> Option<Event>;

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;
}
