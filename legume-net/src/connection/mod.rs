//! The sans-IO connection: one peer's protocol state machine, speaking the
//! protocol chosen in [`Config::protocol`].
//!
//! [`Connection`] is the public type. Under it runs an engine, one per wire
//! protocol, behind the `Engine` trait (`engine.rs`), which names
//! everything an engine implements:
//!
//! - `native.rs`: the native protocol (`docs/PROTOCOL.md`), whose receive
//!   and transmit paths live in `native/`;
//! - `protection.rs`: the native engine's one seam between the plain and
//!   the secure mode (sealing, opening, the mode's handshake packets);
//! - `crate::legacy`: legume 0.5's protocol (`docs/LEGUME_COMPAT.md`).
//!
//! A third engine implements `Engine`, gets a variant in `AnyEngine`
//! and a constructor on `Connection`; nothing else changes.

mod engine;
mod native;
mod protection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::{AnyMessage, MessageFactory};

use crate::channel::{ChannelId, MessageHandle};
use crate::config::{Config, Protocol};
use crate::delivery::Delivery;
use crate::event::{Event, SendError, State, Stats};
use crate::legacy::V4Connection;
use crate::live::LiveStats;
use crate::observe::Observer;
use crate::secure::session::SecureSession;
use crate::secure::ConnectToken;

pub(crate) use engine::Engine;
pub(crate) use native::NativeConnection;

/// One end of a connection, as a pure state machine.
///
/// A `Connection` never reads a clock or touches a socket. Drive it with four
/// families of calls:
///
/// - **inputs**: [`handle_datagram`](Self::handle_datagram) for each datagram
///   from the peer, [`handle_timeout`](Self::handle_timeout) when the instant
///   from `poll_timeout` has passed;
/// - **commands**: [`send`](Self::send), [`disconnect`](Self::disconnect);
/// - **outputs**: [`poll_transmit`](Self::poll_transmit) until it returns
///   `None`, then [`poll_event`](Self::poll_event) until it returns `None`;
/// - **timer**: [`poll_timeout`](Self::poll_timeout), the next instant at
///   which `handle_timeout` must be called.
///
/// After any input or command, poll transmits, then events, then the
/// timeout. Clients are created with [`Connection::connect`]; servers get
/// theirs from the server endpoint. The wire protocol is the one in
/// [`Config::protocol`]: the native one (`docs/PROTOCOL.md`) or legume 0.5's
/// (`docs/LEGUME_COMPAT.md`).
///
/// It logs through `tracing` under the target `legume_net::connection`
/// (handshake, connect, disconnect with its reason, limits, summaries of
/// invalid datagrams, resend storms), with the `peer` field set by
/// [`set_peer_addr`](Self::set_peer_addr), and keeps [`LiveStats`] over
/// [`Config::stats_window`]: see [`live_stats`](Self::live_stats).
pub struct Connection {
    engine: AnyEngine,
    /// Boxed, like the engines, so a `Connection` stays small to move.
    obs: Box<Observer>,
}

/// The engine a connection runs: one variant per [`Engine`] implementation.
///
/// An enum of concrete types rather than a `Box<dyn Engine>`, so that
/// `Connection` keeps the auto traits (`Send`, `Sync`) its engines have.
enum AnyEngine {
    Native(Box<NativeConnection>),
    LegumeV4(Box<V4Connection>),
}

impl AnyEngine {
    fn get(&self) -> &dyn Engine {
        match self {
            AnyEngine::Native(c) => &**c,
            AnyEngine::LegumeV4(c) => &**c,
        }
    }

    fn get_mut(&mut self) -> &mut dyn Engine {
        match self {
            AnyEngine::Native(c) => &mut **c,
            AnyEngine::LegumeV4(c) => &mut **c,
        }
    }
}

impl Connection {
    /// A client connection that starts its handshake at `now`.
    ///
    /// `nonce` identifies this connection attempt; pass a random value (the
    /// UDP driver draws one from the OS; legume v4 mode does not use it).
    /// Sends queued before the handshake completes go out once it does.
    pub fn connect(config: Config, factory: Arc<MessageFactory>, now: Instant, nonce: u64) -> Self {
        let obs = Box::new(Observer::new(now, config.stats_window));
        let engine = match config.protocol {
            Protocol::Native => AnyEngine::Native(Box::new(NativeConnection::connect(
                config, factory, now, nonce,
            ))),
            Protocol::LegumeV4 => {
                AnyEngine::LegumeV4(Box::new(V4Connection::connect(config, factory, now)))
            }
        };
        Connection { engine, obs }
    }

    /// A secure-mode client connection (`docs/PROTOCOL.md` section 8) that
    /// starts its handshake at `now` with a connect token from the backend.
    ///
    /// Send the datagrams to one of the token's
    /// [`server_addresses`](ConnectToken::server_addresses). The token's
    /// timeout replaces `config.timeout`. The secure mode is part of the
    /// native protocol: `config.protocol` is ignored (never downgraded to
    /// legume v4's plain one). Every packet after the handshake is
    /// encrypted and authenticated; one that fails is dropped and counted
    /// in [`Stats::dropped_unauthenticated`].
    pub fn connect_with_token(
        mut config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
        nonce: u64,
        token: &ConnectToken,
    ) -> Self {
        config.protocol = Protocol::Native;
        let obs = Box::new(Observer::new(now, config.stats_window));
        Connection {
            engine: AnyEngine::Native(Box::new(NativeConnection::connect_with_token(
                config, factory, now, nonce, token,
            ))),
            obs,
        }
    }

    /// The server side of a native connection the endpoint has just
    /// accepted from `peer`.
    pub(crate) fn accepted(
        config: Arc<Config>,
        factory: Arc<MessageFactory>,
        now: Instant,
        peer: SocketAddr,
        nonce: u64,
        session: u32,
        secure: Option<SecureSession>,
    ) -> Self {
        let obs = Box::new(Observer::new(now, config.stats_window));
        let mut conn = Connection {
            engine: AnyEngine::Native(Box::new(NativeConnection::accepted(
                config, factory, now, nonce, session, secure,
            ))),
            obs,
        };
        conn.set_peer_addr(peer);
        conn
    }

    /// Whether the connection is encrypted and authenticated (secure mode).
    pub fn is_secure(&self) -> bool {
        self.engine.get().is_secure()
    }

    /// Server, secure mode: this connection's SECURE_ACCEPT, to repeat.
    pub(crate) fn secure_accept(&self) -> Option<Vec<u8>> {
        self.engine.get().secure_accept()
    }

    /// The server side of a legume v4 connection, created for a connect
    /// request from `peer` the endpoint has decided to accept.
    pub(crate) fn accepted_v4(
        config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
        peer: SocketAddr,
    ) -> Self {
        let obs = Box::new(Observer::new(now, config.stats_window));
        let mut conn = Connection {
            engine: AnyEngine::LegumeV4(Box::new(V4Connection::accepted(config, factory, now))),
            obs,
        };
        conn.set_peer_addr(peer);
        conn
    }

    /// Tells the connection its peer's address. It is used only as the
    /// `peer` field of the connection's log events (the sans-IO core never
    /// sees addresses); `Client` and the server endpoint set it.
    pub fn set_peer_addr(&mut self, peer: SocketAddr) {
        self.obs.set_peer(peer);
        self.engine.get_mut().set_peer(peer);
    }

    /// The address given to [`set_peer_addr`](Self::set_peer_addr), if any.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.obs.peer()
    }

    /// The wire protocol this connection speaks.
    pub fn protocol(&self) -> Protocol {
        self.engine.get().protocol()
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        self.engine.get().state()
    }

    /// Whether messages flow.
    pub fn is_connected(&self) -> bool {
        self.engine.get().is_connected()
    }

    /// Whether the connection has ended (it may still have DISCONNECT copies to send).
    pub fn is_closed(&self) -> bool {
        self.engine.get().is_closed()
    }

    /// Whether the connection has ended and has nothing left to send.
    pub fn is_drained(&self) -> bool {
        self.engine.get().is_drained()
    }

    /// This attempt's nonce (0 in legume v4 mode, which has none).
    pub fn nonce(&self) -> u64 {
        self.engine.get().nonce()
    }

    /// The session id the server assigned (0 before the handshake completes,
    /// and always in legume v4 mode).
    pub fn session(&self) -> u32 {
        self.engine.get().session()
    }

    /// The connection's metrics.
    pub fn stats(&self) -> Stats {
        self.engine.get().stats()
    }

    /// The connection's metrics at `now`, with rates over the last
    /// [`Config::stats_window`].
    ///
    /// The rates compare the current counters with samples the connection
    /// keeps by itself, at most every tenth of the window: before an input
    /// or output changes the counters, it notes how long they had held, so
    /// the rates stay exact (to a tenth of the window) however long the
    /// connection idles, with no periodic call. `now` should be the time of
    /// the latest input.
    pub fn live_stats(&self, now: Instant) -> LiveStats {
        self.obs.live(now, &self.stats())
    }

    /// Keeps a sample of the counters for [`live_stats`](Self::live_stats)
    /// if a tenth of the stats window has passed since the last one, and
    /// writes the periodic log summaries that are due. The rates do not
    /// need it (see `live_stats`); it only makes the log summaries of a
    /// connection that has no input come out sooner than its next
    /// keep-alive.
    pub fn sample_stats(&mut self, now: Instant) {
        self.before_timed_call(now);
    }

    /// At the start of every call that has a time and may change the
    /// counters: samples them (when due) as they held until now, and
    /// places the sends since the previous timed call at `now`. One
    /// comparison when nothing is due: this is on the per-datagram path.
    #[inline]
    fn before_timed_call(&mut self, now: Instant) {
        if self.obs.is_due(now) {
            self.observe(now);
        }
        self.obs.on_timed_call(now);
    }

    fn observe(&mut self, now: Instant) {
        let stats = self.engine.get().sampled_stats();
        let counters = self.engine.get().counters();
        self.obs.tick(now, &stats, &counters);
    }

    /// The smoothed round-trip time.
    pub fn rtt(&self) -> Duration {
        self.engine.get().rtt()
    }

    /// The largest unreliable message, which must fit in one packet.
    pub fn max_unreliable_size(&self) -> usize {
        self.engine.get().max_unreliable_size()
    }

    /// Queues a message. Nothing is queued when it returns an error.
    ///
    /// Messages may be queued while connecting; they are sent once the
    /// handshake completes.
    pub fn send(&mut self, msg: &dyn AnyMessage, delivery: Delivery) -> Result<(), SendError> {
        let result = self.engine.get_mut().send(msg, delivery);
        match result {
            Ok(()) => self.obs.on_untimed_send(),
            // Counted here, summarised at the next sample (debug).
            Err(SendError::QueueFull { .. }) => self.obs.queue_full += 1,
            Err(_) => {}
        }
        result
    }

    /// Queues a message on `channel`, one of [`Config::channels`], and
    /// returns its handle: the channel and the message's number on it, which
    /// [`Event::Acked`] and [`Event::Lost`] name on a channel with
    /// feedback. Nothing is queued when it returns an error; a channel id
    /// the list does not have is [`SendError::UnknownChannel`].
    ///
    /// `send(msg, delivery)` is `send_on` with the first channel of the
    /// delivery's kind (with the default list: [`ChannelId::UNRELIABLE`],
    /// [`ChannelId::RELIABLE`], [`ChannelId::ORDERED`]).
    pub fn send_on(
        &mut self,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError> {
        let result = self.engine.get_mut().send_on(channel, msg);
        if let Err(SendError::QueueFull { .. }) = result {
            self.obs.queue_full += 1;
        }
        result
    }

    /// Queues a message already encoded by `AnyMessage::encode_message`,
    /// with the checks of [`send`](Self::send): a server's broadcast
    /// encodes its message once for every peer.
    pub(crate) fn send_encoded(
        &mut self,
        message: &[u8],
        delivery: Delivery,
    ) -> Result<(), SendError> {
        let result = self.engine.get_mut().send_encoded(message, delivery);
        if let Err(SendError::QueueFull { .. }) = result {
            self.obs.queue_full += 1;
        }
        result
    }

    /// Closes the connection with `reason`, sending a disconnect to the peer
    /// (several copies, so that one lost datagram does not turn it into a
    /// timeout). Queued messages are dropped. legume v4 cannot carry the
    /// reason.
    pub fn disconnect(&mut self, reason: &str) {
        self.engine.get_mut().disconnect(reason)
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.engine.get_mut().poll_event()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.get().poll_timeout()
    }

    /// Runs the timers that are due at `now`: handshake retry and timeout,
    /// idle timeout, loss detection and resends, keep-alives.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.before_timed_call(now);
        self.engine.get_mut().handle_timeout(now);
        self.obs.on_change(now);
    }

    /// Processes one datagram from the peer. Invalid datagrams are dropped
    /// and counted; nothing the peer sends can make this panic.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.before_timed_call(now);
        self.engine.get_mut().handle_datagram(now, datagram);
        self.obs.on_change(now);
    }

    /// Writes the next datagram to send into `buf` (at least the MTU long)
    /// and returns its length, or `None` when nothing is left to send now.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.before_timed_call(now);
        let sent = self.engine.get_mut().poll_transmit(now, buf);
        if sent.is_some() {
            self.obs.on_change(now);
        }
        sent
    }
}

/// What the lazily allocated parts of a native connection hold, for the
/// tests that pin an idle connection's size.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct LazyStorage {
    /// Slots of the sent-packet ring.
    pub(crate) sent_slots: usize,
    /// Stats samples held and allocated.
    pub(crate) samples: (usize, usize),
    /// Whether the send and the receive channels exist.
    pub(crate) channels: (bool, bool),
    /// Capacity of the event, received-message and scratch buffers.
    pub(crate) buffers: usize,
}

#[cfg(test)]
impl Connection {
    /// What a native connection's lazily allocated parts hold.
    pub(crate) fn lazy_storage(&self) -> Option<LazyStorage> {
        match &self.engine {
            AnyEngine::Native(c) => Some(LazyStorage {
                samples: self.obs.samples(),
                ..c.lazy_storage()
            }),
            AnyEngine::LegumeV4(_) => None,
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.engine.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_keeps_its_auto_traits() {
        // The engines sit in an enum, not a `Box<dyn Engine>`, so that a
        // `Connection` keeps its engines' auto traits; this fails to
        // compile if it could no longer move to another thread or be shared.
        fn assert_auto<T: Send + Sync>() {}
        assert_auto::<Connection>();
    }
}
