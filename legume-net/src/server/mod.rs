//! The sans-IO server endpoint: many connections behind one address, keyed
//! by the peer's address, and the handshakes that open them.
//!
//! [`ServerEndpoint::handle_datagram`] routes each datagram. One from a peer
//! goes to its connection (`peers`). One from any other address passes the
//! per-source connect rate (`guards`) to the handshake of the endpoint's
//! mode: the plain cookie handshake (`plain`), the secure token handshake
//! (`secure`), both built on the stateless cookie (`cookie`), or legume
//! v4's (`legacy`). Every handshake ends in the app's verdict and, for a
//! client let in, a new connection (`admit`). Replies to addresses that are
//! not peers wait in a bounded queue (`replies`); the endpoint's own log
//! lines are rate limited (`logs`); its counters are in `stats`.

mod admit;
mod cookie;
mod guards;
mod legacy;
mod logs;
mod peers;
mod plain;
mod replies;
mod secure;
mod stats;
#[cfg(test)]
mod test_util;

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use legume_core::{AnyMessage, MessageFactory};

use crate::channel::{ChannelId, MessageHandle};
use crate::client_id::{ClientId, PeerRef};
use crate::config::{Config, Protocol};
use crate::connection::Connection;
use crate::delivery::Delivery;
use crate::event::SendError;
use crate::handshake::CookieKey;
use crate::live::LiveStats;
use crate::packet::{Packet, PacketError};
use crate::secret_rng::SecretRng;
use crate::secure::{PrivateKey, RandomError, USER_DATA_LEN};

pub(crate) use admit::HeldHook;
pub use admit::{ConnectHook, ConnectRequest, Decision};
pub use peers::{Broadcast, PeerData, ServerEvent};
pub use stats::EndpointStats;

use guards::{CompletedHandshakes, SourceRate};
use logs::EndpointLogs;
use peers::{Offered, PeerTable};
use replies::ReplyQueue;
use secure::ServerSecurity;

/// The target of the endpoint's log events, whichever file writes them:
/// `legume_net::server`, the one apps filter by.
const LOG_TARGET: &str = module_path!();

/// A server: many [`Connection`]s behind one address, sans-IO.
///
/// The same four method families as `Connection`, with addresses:
/// [`handle_datagram`](Self::handle_datagram), [`handle_timeout`](Self::handle_timeout),
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`poll_timeout`](Self::poll_timeout). Timers live in a heap, so an update
/// costs work for the peers whose timers are due, not for every peer.
pub struct ServerEndpoint {
    /// Shared with every plain-mode peer's connection.
    config: Arc<Config>,
    factory: Arc<MessageFactory>,
    key: CookieKey,
    epoch: Instant,
    /// Draws the cookie key and session ids (`docs/PROTOCOL.md` 2.2, 2.4).
    rng: SecretRng,
    peers: PeerTable,
    replies: ReplyQueue,
    hook: Option<HeldHook>,
    accept_new: bool,
    max_peers: usize,
    completed: CompletedHandshakes,
    rate: SourceRate,
    security: Option<Box<ServerSecurity>>,
    stats: EndpointStats,
    logs: EndpointLogs,
}

impl ServerEndpoint {
    /// A server endpoint whose clock starts at `now`.
    ///
    /// Its cookie key and the session ids it hands out come from a ChaCha20
    /// generator keyed with 256 bits from the operating system; it fails
    /// only when the operating system cannot supply them, rather than run
    /// with predictable secrets.
    pub fn new(
        config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
    ) -> Result<Self, RandomError> {
        Ok(Self::with_secrets(
            config,
            factory,
            now,
            SecretRng::from_os()?,
        ))
    }

    /// A server endpoint whose secrets all follow from `seed`, **for tests
    /// and simulations only**: whoever knows or guesses the seed can compute
    /// its cookie key (and so connect from spoofed addresses) and every
    /// session id it hands out (and so inject into or close plain-mode
    /// connections). Runs with the same seed and inputs are identical.
    /// Serve real clients with [`new`](Self::new).
    pub fn with_insecure_seed(
        config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
        seed: u64,
    ) -> Self {
        Self::with_secrets(config, factory, now, SecretRng::from_insecure_seed(seed))
    }

    fn with_secrets(
        config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
        mut rng: SecretRng,
    ) -> Self {
        let mut key = [0u8; 16];
        rng.fill(&mut key);
        ServerEndpoint {
            config: Arc::new(config),
            factory,
            key: CookieKey::new(key),
            epoch: now,
            rng,
            peers: PeerTable::default(),
            replies: ReplyQueue::default(),
            hook: None,
            accept_new: true,
            max_peers: usize::MAX,
            completed: CompletedHandshakes::default(),
            rate: SourceRate::default(),
            security: None,
            stats: EndpointStats::default(),
            logs: EndpointLogs::default(),
        }
    }

    /// Turns on the secure mode (`docs/PROTOCOL.md` section 8): from now on
    /// only clients with a valid connect token sealed with `key`, naming
    /// `public_addr` (this server's address as the backend writes it in
    /// tokens), for this `Config::protocol_id`, unexpired, and not in use
    /// from another address, are admitted; every packet after the handshake
    /// is encrypted and authenticated. Plain connect requests are refused
    /// with a reason. Connections already open stay as they are. The secure
    /// mode is part of the native protocol: with it on, a server configured
    /// for legume v4 speaks the native secure handshake instead (never
    /// legume v4's unauthenticated one).
    ///
    /// `unix_now_secs` is the wall-clock time (seconds since the Unix epoch)
    /// at `now`, for token expiry; the endpoint reads no clock itself (the
    /// UDP driver passes the system clock).
    pub fn require_connect_tokens(
        &mut self,
        key: PrivateKey,
        public_addr: SocketAddr,
        now: Instant,
        unix_now_secs: u64,
    ) {
        let since_epoch = now.saturating_duration_since(self.epoch).as_secs();
        let unix_at_epoch = unix_now_secs.saturating_sub(since_epoch);
        self.security = Some(Box::new(ServerSecurity::new(
            key,
            public_addr,
            unix_at_epoch,
        )));
    }

    /// Whether the endpoint requires connect tokens.
    pub fn is_secure(&self) -> bool {
        self.security.is_some()
    }

    /// A cookie for fixed inputs: equal for two endpoints exactly when they
    /// share a cookie key, without exposing the key.
    #[cfg(test)]
    pub(crate) fn cookie_key_fingerprint(&self) -> [u8; 16] {
        let addr = SocketAddr::from(([192, 0, 2, 1], 1));
        self.key.cookie(addr, 0, 0, 0, &[])
    }

    /// Sets the hook that accepts or rejects each connect request.
    pub fn set_connect_hook(&mut self, hook: ConnectHook) {
        self.hook = Some(HeldHook::new(hook));
    }

    /// Turns acceptance of new connections on or off (legume's `accept_new_connections`).
    pub fn set_accept_new_connections(&mut self, accept: bool) {
        self.accept_new = accept;
    }

    /// Whether new connections are accepted.
    pub fn accepts_new_connections(&self) -> bool {
        self.accept_new
    }

    /// Caps the number of connected peers; requests beyond it are rejected.
    pub fn set_max_peers(&mut self, max: usize) {
        self.max_peers = max;
    }

    /// The endpoint's own counters and gauges.
    pub fn stats(&self) -> EndpointStats {
        let mut s = self.stats.clone();
        s.queued_replies = self.replies.len();
        s.rate_tracked_sources = self.rate.tracked_sources();
        s.remembered_handshakes = self.completed.len();
        s
    }

    /// Connected (and closing) peers.
    pub fn peers(&self) -> impl Iterator<Item = (SocketAddr, &Connection)> + '_ {
        self.peers.iter()
    }

    /// Every peer's identity and address.
    pub fn clients(&self) -> impl Iterator<Item = (ClientId, SocketAddr)> + '_ {
        self.peers.clients()
    }

    /// The number of peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// A peer's connection, by identity or address (legume's
    /// `get_peer_by_address`).
    pub fn peer(&self, peer: impl Into<PeerRef>) -> Option<&Connection> {
        self.peers.get(peer.into())
    }

    /// The identity of the peer at `addr`.
    pub fn client_id(&self, addr: SocketAddr) -> Option<ClientId> {
        self.peers.client_id(addr)
    }

    /// The address of a peer.
    pub fn peer_addr(&self, peer: impl Into<PeerRef>) -> Option<SocketAddr> {
        self.peers.resolve(peer.into())
    }

    /// The user data the backend wrote in a peer's connect token (secure
    /// mode), for the life of the connection; `None` for a plain peer.
    pub fn user_data(&self, peer: impl Into<PeerRef>) -> Option<&[u8; USER_DATA_LEN]> {
        self.peers.user_data(peer.into())
    }

    /// Attaches a value of the app's to a peer (a player's name, an entity
    /// id), replacing any earlier one, so that the app needs no map of its
    /// own: read it back with [`peer_data`](Self::peer_data) while handling
    /// the peer's events; the peer's `Disconnected` event hands it back in
    /// [`ServerEvent::data`]. Returns false when there is no such peer.
    pub fn set_peer_data<T: Any + Send + Sync>(
        &mut self,
        peer: impl Into<PeerRef>,
        data: T,
    ) -> bool {
        self.peers.set_peer_data(peer.into(), Box::new(data))
    }

    /// The value attached to a peer with [`set_peer_data`](Self::set_peer_data),
    /// if there is one and it is a `T`. Readable until the peer's
    /// `Disconnected` event has been polled, even once the peer has left.
    pub fn peer_data<T: Any>(&self, peer: impl Into<PeerRef>) -> Option<&T> {
        self.peers.peer_data(peer.into())
    }

    /// The value attached to a peer, mutably (see [`peer_data`](Self::peer_data)).
    pub fn peer_data_mut<T: Any>(&mut self, peer: impl Into<PeerRef>) -> Option<&mut T> {
        self.peers.peer_data_mut(peer.into())
    }

    /// The live statistics of a peer at `now` (see [`Connection::live_stats`]).
    pub fn peer_live_stats(&self, peer: impl Into<PeerRef>, now: Instant) -> Option<LiveStats> {
        self.peer(peer).map(|c| c.live_stats(now))
    }

    /// Keeps a stats sample for every peer that is due one (see
    /// [`Connection::sample_stats`]) and writes the log summaries that are
    /// due. Peers' rates stay exact without it (each connection samples
    /// itself as its counters change); it only brings forward the log
    /// summaries of peers with no input since, which otherwise come with
    /// their next keep-alive. It costs a pass over the peers: the UDP
    /// driver does not call it, and a server with many peers should not
    /// call it every frame.
    pub fn sample_stats(&mut self, now: Instant) {
        self.peers.sample_stats(now);
        self.flush_logs(now);
    }

    /// Writes the endpoint's own log summaries that are due (its handshake
    /// counters); no pass over the peers. For the UDP driver's update.
    #[cfg(feature = "udp")]
    pub(crate) fn write_due_logs(&mut self, now: Instant) {
        self.flush_logs(now);
    }

    /// Queues a message to one peer, named by identity or address.
    pub fn send(
        &mut self,
        peer: impl Into<PeerRef>,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<(), SendError> {
        self.peers.send(peer.into(), msg, delivery)
    }

    /// Queues a message to one peer on a channel of
    /// [`Config::channels`](crate::Config::channels); returns its handle
    /// (see [`Connection::send_on`](crate::Connection::send_on)).
    pub fn send_on(
        &mut self,
        peer: impl Into<PeerRef>,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError> {
        self.peers.send_on(peer.into(), channel, msg)
    }

    /// Queues a message to every connected peer, encoding it once. The
    /// result counts the peers that took it and names those that could not
    /// (a full send queue, most likely), which stay connected; an error
    /// only when the message does not encode, and then no peer got it.
    pub fn send_to_all(
        &mut self,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<Broadcast, SendError> {
        self.broadcast(None, msg, delivery)
    }

    /// [`send_to_all`](Self::send_to_all) but one peer (the sender of a
    /// chat line, say).
    pub fn send_to_all_except(
        &mut self,
        except: impl Into<PeerRef>,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<Broadcast, SendError> {
        let except = self.peers.resolve(except.into());
        self.broadcast(except, msg, delivery)
    }

    fn broadcast(
        &mut self,
        except: Option<SocketAddr>,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<Broadcast, SendError> {
        let mut encoded = vec![0; msg.message_len()];
        let n = msg.encode_message(&mut encoded)?;
        Ok(self.peers.broadcast(except, &encoded[..n], delivery))
    }

    /// Disconnects one peer with a reason.
    pub fn disconnect(&mut self, peer: impl Into<PeerRef>, reason: &str) {
        self.peers.disconnect(peer.into(), reason);
    }

    /// Disconnects every peer.
    pub fn disconnect_all(&mut self, reason: &str) {
        for (_, a) in self.peers.clients().collect::<Vec<_>>() {
            self.disconnect(a, reason);
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.peers.poll_event()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers.poll_timeout()
    }

    /// Runs the timers of every peer that is due.
    ///
    /// Each due peer runs once per call: a deadline that is still due
    /// afterwards (an ack waiting for `poll_transmit`) waits for the next call.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_logs(now);
        let now_ms = self.now_ms(now);
        self.completed.forget_expired(now_ms);
        self.peers.handle_timeout(now);
    }

    /// Processes one datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        // The secure mode is native-only: it never falls back to legume v4.
        if self.config.protocol == Protocol::LegumeV4 && self.security.is_none() {
            return self.handle_v4_datagram(now, from, datagram);
        }
        let answer = |conn: &Connection| admit::repeated_accept(conn, datagram);
        match self.peers.handle_datagram(now, from, datagram, answer) {
            Offered::Processed => return,
            Offered::Answered(accept) => {
                self.stats.repeated_accepts += 1;
                return self.reply_bytes(now, from, accept);
            }
            Offered::NotAPeer => {}
        }
        let packet = Packet::parse(datagram);
        if is_handshake(&packet) && self.over_connect_rate(now, from) {
            return;
        }
        if self.security.is_some() {
            self.handle_secure_handshake(now, from, packet, datagram);
        } else {
            self.handle_plain_handshake(now, from, packet);
        }
    }

    /// Writes the next datagram to send into `buf`; returns its destination
    /// and length, or `None` when nothing is left to send now.
    ///
    /// Handshake replies go first, then the peers' packets.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        self.replies
            .poll_transmit(buf)
            .or_else(|| self.peers.poll_transmit(now, buf))
    }

    /// Milliseconds since the endpoint's epoch: the cookies' clock.
    fn now_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

impl std::fmt::Debug for ServerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerEndpoint")
            .field("peers", &self.peers.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Whether a packet opens or continues a native handshake: those count
/// against the per-source connect rate.
fn is_handshake(packet: &Result<Packet<'_>, PacketError>) -> bool {
    matches!(
        packet,
        Ok(Packet::ConnectRequest { .. }
            | Packet::ChallengeResponse { .. }
            | Packet::SecureConnectRequest { .. }
            | Packet::SecureChallengeResponse { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::test_util::endpoint;
    use super::*;

    /// What an idle peer holds (`docs/PERFORMANCE.md`, "What an idle
    /// connection holds"): after a handshake and a minute of keep-alives
    /// on the simulated clock, the server's connection has allocated no
    /// channels, at most the smallest sent-packet ring, at most three stats
    /// samples and an event queue of four, and its fixed parts stay small.
    #[test]
    fn an_idle_peer_holds_no_more_than_its_fixed_parts() {
        use std::time::Duration;
        let mut now = Instant::now();
        let mut s = endpoint(now);
        let addr: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let mut c = Connection::connect(Config::default(), Arc::new(MessageFactory::new()), now, 7);
        c.set_peer_addr(addr);
        super::test_util::handshake(&mut s, &mut c, addr, now);
        assert!(c.is_connected() && s.peer_count() == 1);
        let mut buf = [0u8; 1500];
        let mut datagrams = 0;
        let end = now + Duration::from_secs(60);
        while now < end {
            now += Duration::from_millis(10);
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            while let Some(n) = c.poll_transmit(now, &mut buf) {
                s.handle_datagram(now, addr, &buf[..n]);
                datagrams += 1;
            }
            while let Some((_, n)) = s.poll_transmit(now, &mut buf) {
                c.handle_datagram(now, &buf[..n]);
                datagrams += 1;
            }
            while s.poll_event().is_some() {}
            while c.poll_event().is_some() {}
        }
        // Keep-alives every 2 s and their acks, nothing else (89).
        assert!((60..200).contains(&datagrams), "{datagrams}");
        for conn in [s.peer(addr).expect("still a peer"), &c] {
            assert!(conn.is_connected());
            let lazy = conn.lazy_storage().expect("native");
            assert!(lazy.sent_slots <= 4, "{lazy:?}");
            assert!(lazy.samples.1 <= 3, "{lazy:?}");
            assert_eq!(lazy.channels, (false, false), "{lazy:?}");
            // The event queue keeps its first allocation (4 events).
            assert!(lazy.buffers <= 4, "{lazy:?}");
            // Rates stay exact with no periodic sampling: nothing but
            // keep-alives in the last second.
            let live = conn.live_stats(now);
            assert_eq!(live.in_messages_per_s, 0.0);
            assert!(live.span >= Duration::from_millis(900), "{live:?}");
        }
        // The rate controller's pacer, delivery sampler and bounds are
        // inline (about 160 bytes); its own state is boxed.
        let size = std::mem::size_of::<crate::connection::NativeConnection>();
        assert!(size <= 1300, "{size}");
        assert!(std::mem::size_of::<crate::observe::Observer>() <= 400);
    }

    #[test]
    fn secrets_come_from_chacha20_never_from_the_simulator_rng() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let now = Instant::now();
        // The cookie key is the first 16 bytes of ChaCha20 for the seed.
        let mut chacha = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut key = [0u8; 16];
        chacha.fill_bytes(&mut key);
        let expected =
            CookieKey::new(key).cookie(SocketAddr::from(([192, 0, 2, 1], 1)), 0, 0, 0, &[]);
        assert_eq!(endpoint(now).cookie_key_fingerprint(), expected);
        // Not the xoshiro stream of the same seed.
        let mut xoshiro = crate::sim::Rng::new(1);
        let mut weak = [0u8; 16];
        xoshiro.fill_bytes(&mut weak);
        assert_ne!(key, weak);
    }

    #[test]
    fn os_keyed_endpoints_never_share_a_cookie_key() {
        let now = Instant::now();
        let make = || {
            ServerEndpoint::new(Config::default(), Arc::new(MessageFactory::new()), now)
                .expect("OS randomness")
        };
        assert_ne!(
            make().cookie_key_fingerprint(),
            make().cookie_key_fingerprint()
        );
        // Seeded endpoints are repeatable, which is why that constructor is
        // for tests only.
        assert_eq!(
            endpoint(now).cookie_key_fingerprint(),
            endpoint(now).cookie_key_fingerprint()
        );
    }
}
