//! The sans-IO server endpoint: the stateless handshake and many
//! connections keyed by address.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use legume_core::{AnyMessage, MessageFactory, Writer};
use tracing::{debug, info, trace, warn};

use crate::config::{Config, Protocol};
use crate::connection::Connection;
use crate::event::{Event, SendError};
use crate::handshake::{extension, CookieKey};
use crate::legacy::wire;
use crate::live::LiveStats;
use crate::observe::{Gate, Tally};
use crate::packet::{Packet, HANDSHAKE_LEN};
use crate::secret_rng::SecretRng;
use crate::secure::session::{open_response, SecureSession};
use crate::secure::token::SealedToken;
use crate::secure::{
    open_private_token, PrivateKey, PrivateToken, RandomError, TokenError, USER_DATA_LEN,
};
use crate::Delivery;

/// Handshake replies waiting to be sent, at most.
const MAX_PENDING_REPLIES: usize = 4096;
/// Completed handshakes remembered to refuse replays, at most.
const MAX_REMEMBERED_HANDSHAKES: usize = 65_536;
/// Source addresses tracked for the connect rate per second, at most; past
/// it, new sources go untracked rather than growing the table.
const MAX_RATE_SOURCES: usize = 8192;
/// Rejections logged one by one per log interval, at most; the rest are
/// counted and the number given with the next one logged.
const REJECTS_LOGGED: u32 = 32;
/// Connect tokens remembered as used (secure mode), at most.
const MAX_REMEMBERED_TOKENS: usize = 65_536;

/// What the app decided about a connect request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Decision {
    /// Let the client in.
    Accept,
    /// Refuse, telling the client why (at most 255 bytes are sent).
    Reject(String),
}

/// A client asking to connect, as the connect-request hook sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ConnectRequest {
    /// The client's address (proven: it received the challenge there).
    pub addr: SocketAddr,
    /// Peers connected now.
    pub peer_count: usize,
    /// Secure mode: the client id from the client's connect token (who the
    /// backend says it is). `None` in the plain mode.
    pub client_id: Option<u64>,
    /// Secure mode: the backend's user data from the connect token. `None`
    /// in the plain mode.
    pub user_data: Option<[u8; USER_DATA_LEN]>,
}

/// Decides on connect requests (legume's `OnConnectRequest`).
pub type ConnectHook = Box<dyn FnMut(&ConnectRequest) -> Decision + Send>;

/// An event on one peer's connection.
#[derive(Debug)]
pub struct ServerEvent {
    /// The peer.
    pub peer: SocketAddr,
    /// What happened.
    pub event: Event,
}

/// Counters and gauges of the endpoint itself (per-peer metrics are in each
/// connection's stats).
///
/// Every datagram is counted once: one from an address with no connection
/// moves [`handshake_outcomes`](Self::handshake_outcomes) by one; one from a
/// connected address moves that connection's `in_packets`,
/// `dropped_invalid` or `dropped_duplicate` (see [`Stats`](crate::Stats)), or
/// [`repeated_accepts`](Self::repeated_accepts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams from unknown addresses that were not valid handshake packets.
    pub dropped_invalid: u64,
    /// Challenges sent (answers to connect requests, plus `rechallenges`).
    pub challenges_sent: u64,
    /// Of `challenges_sent`, those answering a refused challenge response
    /// (a fresh cookie for an expired or forged one).
    pub rechallenges: u64,
    /// Challenge responses refused (bad or expired cookie, other protocol id).
    pub bad_cookies: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connect requests rejected because the client's message schema
    /// differs (also counted in `rejected`).
    pub schema_mismatches: u64,
    /// Connect requests rejected (by the hook, the peer limit or the accept switch).
    pub rejected: u64,
    /// Handshake replies dropped because too many were waiting.
    pub dropped_replies: u64,
    /// Challenge responses refused as replays of a completed handshake.
    pub replayed: u64,
    /// Handshake packets dropped by the per-source connect rate.
    pub rate_limited: u64,
    /// Retransmitted challenge responses from connected clients, answered
    /// by repeating the ACCEPT.
    pub repeated_accepts: u64,
    /// Secure mode: handshake packets refused for their connect token
    /// (malformed, forged or tampered with, expired, for another server,
    /// protocol or version) or for a challenge response whose seal fails.
    /// The expired, wrong-server, wrong-protocol and wrong-version ones are
    /// answered with a REJECT naming the reason; the others get no answer.
    pub bad_tokens: u64,
    /// Secure mode: handshake packets refused because their (valid) token
    /// is already in use from another address.
    pub reused_tokens: u64,
    /// Gauge: handshake replies queued, not yet handed to the socket (at
    /// most 4,096).
    pub queued_replies: usize,
    /// Gauge: source IPs in the current one-second connect-rate window (at
    /// most 8,192; the table is cleared when the next window starts).
    pub rate_tracked_sources: usize,
    /// Gauge: completed handshakes remembered to refuse replays, one per
    /// accepted connection, dropped once its cookie has expired (when the
    /// next valid challenge response arrives); at most 65,536.
    pub remembered_handshakes: usize,
}

impl EndpointStats {
    /// Datagrams from addresses with no connection, each counted once by
    /// its outcome: dropped as invalid, rate-limited, answered with a
    /// challenge, refused as a bad cookie or a replay, accepted or rejected,
    /// or (secure mode) refused for a bad or reused token.
    pub fn handshake_outcomes(&self) -> u64 {
        self.dropped_invalid
            + self.rate_limited
            + (self.challenges_sent - self.rechallenges)
            + self.bad_cookies
            + self.replayed
            + self.accepted
            + self.rejected
            + self.bad_tokens
            + self.reused_tokens
    }
}

struct Peer {
    conn: Connection,
    scheduled: Option<Instant>,
    dirty: bool,
}

/// A server: many [`Connection`]s behind one address, sans-IO.
///
/// The same four method families as `Connection`, with addresses:
/// [`handle_datagram`](Self::handle_datagram), [`handle_timeout`](Self::handle_timeout),
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`poll_timeout`](Self::poll_timeout). Timers live in a heap, so an update
/// costs work for the peers whose timers are due, not for every peer.
pub struct ServerEndpoint {
    config: Config,
    factory: Arc<MessageFactory>,
    key: CookieKey,
    epoch: Instant,
    /// Draws the cookie key and session ids (`docs/PROTOCOL.md` 2.2, 2.4).
    rng: SecretRng,
    peers: HashMap<SocketAddr, Peer>,
    timers: BinaryHeap<Reverse<(Instant, SocketAddr)>>,
    dirty: VecDeque<SocketAddr>,
    /// Scratch list of peers whose timers are due.
    due: Vec<SocketAddr>,
    replies: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<ServerEvent>,
    hook: Option<ConnectHook>,
    accept_new: bool,
    max_peers: usize,
    completed: CompletedHandshakes,
    rate: SourceRate,
    security: Option<Box<ServerSecurity>>,
    stats: EndpointStats,
    logs: EndpointLogs,
}

/// Rate limits of the endpoint's own log events: summaries for all sources
/// that are not peers together, so a flood from many addresses writes one
/// line per interval, not one per address.
#[derive(Debug, Default)]
struct EndpointLogs {
    invalid: Tally,
    refused: Tally,
    rate_limited: Tally,
    dropped_replies: Tally,
    rejects: Gate,
    /// The latest source summarised, named again when a summary is flushed.
    latest: Option<SocketAddr>,
}

/// The secure mode of an endpoint.
struct ServerSecurity {
    key: PrivateKey,
    /// The address clients' tokens must name.
    addr: SocketAddr,
    /// Seconds since the Unix epoch at the endpoint's epoch.
    unix_at_epoch: u64,
    tokens: UsedTokens,
}

/// Connect tokens that opened a connection, kept until they expire, so that
/// a token cannot be used from a second address.
#[derive(Debug, Default)]
struct UsedTokens {
    map: HashMap<[u8; 16], (SocketAddr, u64)>,
    /// (token id, expiry), oldest first.
    order: VecDeque<([u8; 16], u64)>,
}

impl UsedTokens {
    /// Whether the token is in use from another address than `addr`.
    fn used_by_other(&mut self, id: &[u8; 16], addr: SocketAddr, unix_now: u64) -> bool {
        while let Some(&(old, expiry)) = self.order.front() {
            if expiry > unix_now {
                break;
            }
            self.order.pop_front();
            self.map.remove(&old);
        }
        self.map.get(id).is_some_and(|&(a, _)| a != addr)
    }

    fn insert(&mut self, id: [u8; 16], addr: SocketAddr, expiry: u64) {
        if self.map.insert(id, (addr, expiry)).is_none() {
            self.order.push_back((id, expiry));
        }
        while self.order.len() > MAX_REMEMBERED_TOKENS {
            if let Some((old, _)) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// Handshakes that created a connection, kept until their cookie expires so
/// that a replayed response cannot open a second connection.
#[derive(Debug, Default)]
struct CompletedHandshakes {
    set: std::collections::HashSet<(SocketAddr, u64)>,
    /// (expiry in endpoint ms, address, nonce), oldest first.
    order: VecDeque<(u64, SocketAddr, u64)>,
}

impl CompletedHandshakes {
    fn contains(&mut self, now_ms: u64, addr: SocketAddr, nonce: u64) -> bool {
        while let Some(&(expiry, a, n)) = self.order.front() {
            // A cookie is valid up to and including its expiry instant.
            if expiry >= now_ms && self.order.len() <= MAX_REMEMBERED_HANDSHAKES {
                break;
            }
            self.order.pop_front();
            self.set.remove(&(a, n));
        }
        self.set.contains(&(addr, nonce))
    }

    fn insert(&mut self, expiry_ms: u64, addr: SocketAddr, nonce: u64) {
        if self.set.insert((addr, nonce)) {
            self.order.push_back((expiry_ms, addr, nonce));
        }
    }
}

/// Handshake packets per source IP in the current one-second window.
#[derive(Debug, Default)]
struct SourceRate {
    window_start_ms: u64,
    counts: HashMap<IpAddr, u32>,
}

impl SourceRate {
    fn allow(&mut self, ip: IpAddr, now_ms: u64, per_second: u32) -> bool {
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            self.window_start_ms = now_ms;
            self.counts.clear();
        }
        if self.counts.len() >= MAX_RATE_SOURCES && !self.counts.contains_key(&ip) {
            return true;
        }
        let count = self.counts.entry(ip).or_insert(0);
        *count = count.saturating_add(1);
        *count <= per_second
    }
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
            config,
            factory,
            key: CookieKey::new(key),
            epoch: now,
            rng,
            peers: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: VecDeque::new(),
            due: Vec::new(),
            replies: VecDeque::new(),
            events: VecDeque::new(),
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
        self.security = Some(Box::new(ServerSecurity {
            key,
            addr: public_addr,
            unix_at_epoch: unix_now_secs.saturating_sub(since_epoch),
            tokens: UsedTokens::default(),
        }));
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
        self.hook = Some(hook);
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
        s.rate_tracked_sources = self.rate.counts.len();
        s.remembered_handshakes = self.completed.set.len();
        s
    }

    /// Connected (and closing) peers.
    pub fn peers(&self) -> impl Iterator<Item = (SocketAddr, &Connection)> + '_ {
        self.peers.iter().map(|(a, p)| (*a, &p.conn))
    }

    /// The number of peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The connection of the peer at `addr` (legume's `get_peer_by_address`).
    pub fn peer(&self, addr: SocketAddr) -> Option<&Connection> {
        self.peers.get(&addr).map(|p| &p.conn)
    }

    /// The live statistics of the peer at `addr` at `now` (see
    /// [`Connection::live_stats`]).
    pub fn peer_live_stats(&self, addr: SocketAddr, now: Instant) -> Option<LiveStats> {
        self.peer(addr).map(|c| c.live_stats(now))
    }

    /// Keeps a stats sample for every peer that is due one (see
    /// [`Connection::sample_stats`]), so that idle peers' rates stay exact,
    /// and writes the log summaries that are due. It costs a pass over the
    /// peers: call it every tenth of [`Config::stats_window`] or so, not
    /// every datagram (the UDP driver does, in `update`).
    pub fn sample_stats(&mut self, now: Instant) {
        for p in self.peers.values_mut() {
            p.conn.sample_stats(now);
        }
        self.flush_logs(now);
    }

    /// Writes the endpoint's summaries whose interval has passed (a flood
    /// that stopped is reported here rather than with its next datagram).
    fn flush_logs(&mut self, now: Instant) {
        if let Some(from) = self.logs.latest {
            self.log_invalid(now, from);
            self.log_refused(now, from);
            self.log_rate_limited(now, from);
        }
    }

    /// Queues a message to one peer.
    pub fn send(
        &mut self,
        peer: SocketAddr,
        msg: &dyn AnyMessage,
        delivery: Delivery,
    ) -> Result<(), SendError> {
        let p = self.peers.get_mut(&peer).ok_or(SendError::NotConnected)?;
        p.conn.send(msg, delivery)?;
        // One map lookup per send: a server echoing many small messages
        // spent an eighth of its time hashing addresses.
        touch_peer(&mut self.events, &mut self.dirty, &mut self.timers, peer, p);
        self.compact_timers_if_stale();
        Ok(())
    }

    /// Queues a message to every connected peer; returns how many took it.
    /// A peer whose queue is full is skipped (its error is not fatal to the others).
    pub fn send_to_all(&mut self, msg: &dyn AnyMessage, delivery: Delivery) -> usize {
        let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
        addrs
            .into_iter()
            .filter(|&a| self.send(a, msg, delivery).is_ok())
            .count()
    }

    /// Disconnects one peer with a reason.
    pub fn disconnect(&mut self, peer: SocketAddr, reason: &str) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.conn.disconnect(reason);
            self.touch(peer);
        }
    }

    /// Disconnects every peer.
    pub fn disconnect_all(&mut self, reason: &str) {
        let addrs: Vec<SocketAddr> = self.peers.keys().copied().collect();
        for a in addrs {
            self.disconnect(a, reason);
        }
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Runs the timers of every peer that is due.
    ///
    /// Each due peer runs once per call: a deadline that is still due
    /// afterwards (an ack waiting for `poll_transmit`) waits for the next call.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_logs(now);
        let mut due = std::mem::take(&mut self.due);
        while let Some(&Reverse((t, addr))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if let Some(p) = self.peers.get_mut(&addr) {
                if p.scheduled == Some(t) {
                    p.scheduled = None;
                    due.push(addr);
                }
            }
        }
        for &addr in &due {
            if let Some(p) = self.peers.get_mut(&addr) {
                p.conn.handle_timeout(now);
                touch_peer(&mut self.events, &mut self.dirty, &mut self.timers, addr, p);
            }
        }
        self.compact_timers_if_stale();
        due.clear();
        self.due = due;
    }

    /// Processes one datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        // The secure mode is native-only: it never falls back to legume v4.
        if self.config.protocol == Protocol::LegumeV4 && self.security.is_none() {
            self.handle_v4_datagram(now, from, datagram);
            return;
        }
        if let Some(p) = self.peers.get_mut(&from) {
            // A retransmitted response from this client means our ACCEPT was lost.
            match Packet::parse(datagram) {
                Ok(Packet::ChallengeResponse { nonce, .. })
                    if nonce == p.conn.nonce() && !p.conn.is_secure() =>
                {
                    self.stats.repeated_accepts += 1;
                    let session = p.conn.session();
                    self.reply(now, from, &Packet::Accept { nonce, session });
                    return;
                }
                Ok(Packet::SecureChallengeResponse { nonce, .. }) if nonce == p.conn.nonce() => {
                    if let Some(accept) = p.conn.secure_accept() {
                        self.stats.repeated_accepts += 1;
                        self.reply_bytes(now, from, accept);
                        return;
                    }
                }
                _ => {}
            }
            // Anything else, another attempt's response included, is the
            // connection's to process or to drop and count.
            p.conn.handle_datagram(now, datagram);
            touch_peer(&mut self.events, &mut self.dirty, &mut self.timers, from, p);
            self.compact_timers_if_stale();
            return;
        }
        let packet = Packet::parse(datagram);
        let handshake = matches!(
            packet,
            Ok(Packet::ConnectRequest { .. }
                | Packet::ChallengeResponse { .. }
                | Packet::SecureConnectRequest { .. }
                | Packet::SecureChallengeResponse { .. })
        );
        let now_ms = self.now_ms(now);
        if handshake
            && !self
                .rate
                .allow(from.ip(), now_ms, self.config.connect_rate_per_source)
        {
            self.stats.rate_limited += 1;
            self.log_rate_limited(now, from);
            return;
        }
        if self.security.is_some() {
            self.handle_secure_handshake(now, from, packet, datagram);
            return;
        }
        match packet {
            Ok(Packet::ConnectRequest { protocol_id, nonce })
                if protocol_id == self.config.protocol_id =>
            {
                self.challenge(now, from, nonce, &[]);
            }
            Ok(Packet::ChallengeResponse {
                protocol_id,
                nonce,
                issued_at,
                cookie,
                extension,
            }) => {
                let valid = protocol_id == self.config.protocol_id
                    && self.key.verify(
                        from,
                        nonce,
                        issued_at,
                        protocol_id,
                        &[],
                        &cookie,
                        self.now_ms(now),
                        self.config.challenge_lifetime,
                    );
                if valid && self.completed.contains(now_ms, from, nonce) {
                    // The connection this response opened has ended: a replay.
                    self.stats.replayed += 1;
                    self.log_refused(now, from);
                } else if valid {
                    let schema = if self.config.check_schema {
                        extension::check_schema(&self.factory, extension)
                    } else {
                        Ok(())
                    };
                    self.admit(now, from, nonce, issued_at, schema, None);
                } else {
                    self.stats.bad_cookies += 1;
                    self.log_refused(now, from);
                    // An expired cookie (say, from an attempt whose ACCEPT was
                    // lost until the connection timed out) gets a fresh one:
                    // still stateless, and smaller than the response.
                    if protocol_id == self.config.protocol_id {
                        self.stats.rechallenges += 1;
                        self.challenge(now, from, nonce, &[]);
                    }
                }
            }
            _ => {
                self.stats.dropped_invalid += 1;
                self.log_invalid(now, from);
            }
        }
    }

    /// Summarises datagrams from sources that are not peers and are no
    /// handshake (debug, once per log interval for all such sources).
    fn log_invalid(&mut self, now: Instant, from: SocketAddr) {
        self.logs.latest = Some(from);
        if let Some((n, secs)) = self
            .logs
            .invalid
            .due(now, self.epoch, self.stats.dropped_invalid)
        {
            debug!(latest = %from, count = n, secs,
                "{n} invalid datagrams from unknown sources in the last {secs:.1} s (latest from {from})");
        }
    }

    /// Summarises refused challenge responses: bad or expired cookies and
    /// replays (debug, once per log interval).
    fn log_refused(&mut self, now: Instant, from: SocketAddr) {
        self.logs.latest = Some(from);
        let total = self.stats.bad_cookies + self.stats.replayed;
        if let Some((n, secs)) = self.logs.refused.due(now, self.epoch, total) {
            debug!(latest = %from, count = n, secs, bad_cookies = self.stats.bad_cookies,
                replayed = self.stats.replayed,
                "{n} challenge responses refused (bad, expired or replayed cookie) \
                 in the last {secs:.1} s (latest from {from})");
        }
    }

    /// Summarises handshake packets over the per-source rate (warn, once
    /// per log interval).
    fn log_rate_limited(&mut self, now: Instant, from: SocketAddr) {
        self.logs.latest = Some(from);
        if let Some((n, secs)) =
            self.logs
                .rate_limited
                .due(now, self.epoch, self.stats.rate_limited)
        {
            let limit = self.config.connect_rate_per_source;
            warn!(latest = %from, count = n, secs, limit,
                "{n} handshake packets over the connect rate ({limit}/s per source) dropped \
                 in the last {secs:.1} s (latest from {from})");
        }
    }

    /// Logs one rejection (info), at most [`REJECTS_LOGGED`] per log interval.
    fn log_reject(&mut self, now: Instant, from: SocketAddr, reason: &str) {
        if let Some(suppressed) = self.logs.rejects.allow(now, REJECTS_LOGGED) {
            info!(peer = %from, reason, suppressed,
                "rejected the connection from {from}: {reason}");
        }
    }

    /// The secure handshake (`docs/PROTOCOL.md` 8.8) of a client with no
    /// connection yet.
    fn handle_secure_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: Result<Packet<'_>, crate::PacketError>,
        datagram: &[u8],
    ) {
        match packet {
            Ok(Packet::SecureConnectRequest { nonce, token }) => {
                match self.open_token(now, from, token) {
                    Ok(private) => self.challenge(now, from, nonce, &private.token_id()),
                    Err(refusal) => self.refuse_token(now, from, nonce, refusal),
                }
            }
            Ok(Packet::SecureChallengeResponse {
                nonce,
                seq,
                issued_at,
                cookie,
                token,
                ..
            }) => {
                let Some(sealed) = SealedToken::new(token) else {
                    // Not reached: the packet layer parses exactly
                    // SEALED_TOKEN_LEN token bytes.
                    self.stats.dropped_invalid += 1;
                    return;
                };
                // The cookie binds the token's id, its tag: checked before
                // any decryption.
                let token_id = sealed.id();
                let now_ms = self.now_ms(now);
                let fresh = self.key.verify(
                    from,
                    nonce,
                    issued_at,
                    self.config.protocol_id,
                    &token_id,
                    &cookie,
                    now_ms,
                    self.config.challenge_lifetime,
                );
                if !fresh {
                    // As in the plain mode: a fresh cookie for a stale one,
                    // if the token is for this game (its header's protocol
                    // id); its seal is checked when the new response comes.
                    self.stats.bad_cookies += 1;
                    if sealed.protocol_id() == self.config.protocol_id {
                        self.stats.rechallenges += 1;
                        self.challenge(now, from, nonce, &token_id);
                    }
                    return;
                }
                let private = match self.open_token(now, from, token) {
                    Ok(private) => private,
                    Err(refusal) => return self.refuse_token(now, from, nonce, refusal),
                };
                let Ok(ext) = open_response(private.client_to_server_key(), seq, datagram) else {
                    self.stats.bad_tokens += 1;
                    return;
                };
                if self.completed.contains(now_ms, from, nonce) {
                    self.stats.replayed += 1;
                    return;
                }
                let schema = if self.config.check_schema {
                    extension::check_schema(&self.factory, &ext)
                } else {
                    Ok(())
                };
                self.admit(now, from, nonce, issued_at, schema, Some(private));
            }
            Ok(Packet::ConnectRequest { protocol_id, nonce })
                if protocol_id == self.config.protocol_id =>
            {
                self.stats.rejected += 1;
                let reason = "this server requires a connect token";
                self.reply(now, from, &Packet::Reject { nonce, reason });
            }
            _ => self.stats.dropped_invalid += 1,
        }
    }

    /// Opens a client's connect token: valid, and not in use from another
    /// address. Counts nothing.
    fn open_token(
        &mut self,
        now: Instant,
        from: SocketAddr,
        token: &[u8],
    ) -> Result<PrivateToken, Option<TokenError>> {
        let epoch = self.epoch;
        let Some(sec) = self.security.as_mut() else {
            return Err(Some(TokenError::Malformed));
        };
        let unix_now = sec
            .unix_at_epoch
            .saturating_add(now.saturating_duration_since(epoch).as_secs());
        let private =
            open_private_token(&sec.key, token, self.config.protocol_id, unix_now, sec.addr)
                .map_err(Some)?;
        if sec
            .tokens
            .used_by_other(&private.token_id(), from, unix_now)
        {
            return Err(None);
        }
        Ok(private)
    }

    /// Counts a refused token (`None`: in use from another address) and
    /// answers with a REJECT where telling is safe.
    fn refuse_token(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        refusal: Option<TokenError>,
    ) {
        let Some(e) = refusal else {
            self.stats.reused_tokens += 1;
            return;
        };
        self.stats.bad_tokens += 1;
        // A forged or malformed token gets no answer; the others are genuine
        // tokens whose holder should learn why (and a REJECT is far smaller
        // than the request).
        if matches!(
            e,
            TokenError::Expired
                | TokenError::WrongServer
                | TokenError::ProtocolMismatch(_)
                | TokenError::VersionMismatch(_)
        ) {
            let reason = e.to_string();
            self.reply(
                now,
                from,
                &Packet::Reject {
                    nonce,
                    reason: &reason,
                },
            );
        }
    }

    /// legume v4: no cookie exchange exists, so a connection is created for
    /// a datagram that opens with a well-formed ConnectRequest, within the
    /// same limits as a native handshake (`docs/LEGUME_COMPAT.md`).
    fn handle_v4_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if let Some(p) = self.peers.get_mut(&from) {
            p.conn.handle_datagram(now, datagram);
            touch_peer(&mut self.events, &mut self.dirty, &mut self.timers, from, p);
            self.compact_timers_if_stale();
            return;
        }
        let Some((request, version)) = wire::connect_request(datagram) else {
            self.stats.dropped_invalid += 1;
            self.log_invalid(now, from);
            return;
        };
        let now_ms = self.now_ms(now);
        if !self
            .rate
            .allow(from.ip(), now_ms, self.config.connect_rate_per_source)
        {
            self.stats.rate_limited += 1;
            self.log_rate_limited(now, from);
            return;
        }
        let decision = if version != wire::PROTOCOL_VERSION {
            Decision::Reject(format!("legume protocol version {version} is not 4"))
        } else {
            self.decide(from, None)
        };
        match decision {
            Decision::Reject(reason) => {
                // Stateless, reliable as legume's, and 6 bytes: smaller than
                // the 7-byte request. A lost one is answered again when the
                // client resends its request.
                self.stats.rejected += 1;
                self.log_reject(now, from, &reason);
                let mut buf = [0u8; 6];
                let mut w = Writer::new(&mut buf);
                let header = wire::Header {
                    id: request.id,
                    seq: 0,
                    flags: wire::FLAG_RELIABLE,
                };
                if header.write(&mut w).is_ok() && wire::Control::Rejected.write(&mut w).is_ok() {
                    self.reply_bytes(now, from, buf.to_vec());
                }
            }
            Decision::Accept => {
                self.stats.accepted += 1;
                info!(peer = %from, peers = self.peers.len() + 1, protocol = "legume v4",
                    "accepted the connection from {from}");
                let mut conn = Connection::accepted_v4(
                    self.config.clone(),
                    Arc::clone(&self.factory),
                    now,
                    from,
                );
                conn.handle_datagram(now, datagram);
                self.peers.insert(
                    from,
                    Peer {
                        conn,
                        scheduled: None,
                        dirty: false,
                    },
                );
                self.touch(from);
            }
        }
    }

    /// The app's and the limits' verdict on a client that asks to connect.
    fn decide(&mut self, from: SocketAddr, token: Option<&PrivateToken>) -> Decision {
        if self.peers.len() >= self.max_peers {
            Decision::Reject("server is full".into())
        } else if !self.accept_new {
            Decision::Reject("server is not accepting new connections".into())
        } else if let Some(hook) = &mut self.hook {
            hook(&ConnectRequest {
                addr: from,
                peer_count: self.peers.len(),
                client_id: token.map(PrivateToken::client_id),
                user_data: token.map(|t| *t.user_data()),
            })
        } else {
            Decision::Accept
        }
    }

    /// Answers a connect request with a stateless challenge.
    fn challenge(&mut self, now: Instant, from: SocketAddr, nonce: u64, token_id: &[u8]) {
        let issued_at = self.now_ms(now);
        let protocol_id = self.config.protocol_id;
        let cookie = self
            .key
            .cookie(from, nonce, issued_at, protocol_id, token_id);
        self.stats.challenges_sent += 1;
        trace!(peer = %from, "challenge sent to {from}");
        self.reply(
            now,
            from,
            &Packet::Challenge {
                nonce,
                issued_at,
                cookie,
            },
        );
    }

    /// A client proved its address: ask the app, then accept or reject.
    fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        issued_at: u64,
        schema: Result<(), String>,
        token: Option<PrivateToken>,
    ) {
        let decision = match schema {
            Err(reason) => {
                self.stats.schema_mismatches += 1;
                Decision::Reject(reason)
            }
            Ok(()) => self.decide(from, token.as_ref()),
        };
        match decision {
            Decision::Reject(reason) => {
                self.stats.rejected += 1;
                self.log_reject(now, from, &reason);
                self.reply(
                    now,
                    from,
                    &Packet::Reject {
                        nonce,
                        reason: &reason,
                    },
                );
            }
            Decision::Accept => {
                self.stats.accepted += 1;
                let lifetime =
                    u64::try_from(self.config.challenge_lifetime.as_millis()).unwrap_or(u64::MAX);
                self.completed
                    .insert(issued_at.saturating_add(lifetime), from, nonce);
                let mut session = self.rng.next_u32();
                while token.is_some() && session == 0 {
                    // Session 0 is the secure handshake's nonce prefix.
                    session = self.rng.next_u32();
                }
                let mut config = self.config.clone();
                let secure = token.map(|t| {
                    config.timeout = t.timeout();
                    if let Some(sec) = &mut self.security {
                        sec.tokens.insert(t.token_id(), from, t.expire_timestamp());
                    }
                    SecureSession::new(
                        t.server_to_client_key().clone(),
                        t.client_to_server_key().clone(),
                    )
                });
                info!(peer = %from, session, peers = self.peers.len() + 1,
                    "accepted the connection from {from}");
                let accept = secure.as_ref().map(|s| s.accept_packet(nonce, session));
                let conn = Connection::accepted(
                    config,
                    Arc::clone(&self.factory),
                    now,
                    from,
                    nonce,
                    session,
                    secure,
                );
                self.peers.insert(
                    from,
                    Peer {
                        conn,
                        scheduled: None,
                        dirty: false,
                    },
                );
                match accept {
                    Some(bytes) => self.reply_bytes(now, from, bytes),
                    None => self.reply(now, from, &Packet::Accept { nonce, session }),
                }
                self.touch(from);
            }
        }
    }

    fn now_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn reply(&mut self, now: Instant, to: SocketAddr, packet: &Packet<'_>) {
        let mut buf = vec![0u8; HANDSHAKE_LEN];
        if let Ok(n) = packet.emit(&mut buf) {
            buf.truncate(n);
            self.reply_bytes(now, to, buf);
        }
    }

    fn reply_bytes(&mut self, now: Instant, to: SocketAddr, bytes: Vec<u8>) {
        if self.replies.len() >= MAX_PENDING_REPLIES {
            self.stats.dropped_replies += 1;
            if let Some((n, secs)) =
                self.logs
                    .dropped_replies
                    .due(now, self.epoch, self.stats.dropped_replies)
            {
                warn!(latest = %to, count = n, secs, limit = MAX_PENDING_REPLIES,
                    "{n} handshake replies dropped in the last {secs:.1} s: \
                     {MAX_PENDING_REPLIES} were waiting to be sent (latest to {to})");
            }
            return;
        }
        self.replies.push_back((to, bytes));
    }

    /// After any change to a peer: collect its events, queue it for
    /// transmission and reschedule its timer.
    fn touch(&mut self, addr: SocketAddr) {
        if let Some(p) = self.peers.get_mut(&addr) {
            touch_peer(&mut self.events, &mut self.dirty, &mut self.timers, addr, p);
        }
        self.compact_timers_if_stale();
    }

    /// Rebuilds the heap from the live schedules, dropping stale entries.
    fn compact_timers(&mut self) {
        self.timers = self
            .peers
            .iter()
            .filter_map(|(a, p)| p.scheduled.map(|t| Reverse((t, *a))))
            .collect();
    }

    /// Writes the next datagram to send into `buf`; returns its destination
    /// and length, or `None` when nothing is left to send now.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        while let Some((to, bytes)) = self.replies.pop_front() {
            if bytes.len() <= buf.len() {
                buf[..bytes.len()].copy_from_slice(&bytes);
                return Some((to, bytes.len()));
            }
        }
        while let Some(&addr) = self.dirty.front() {
            let Some(p) = self.peers.get_mut(&addr) else {
                self.dirty.pop_front();
                continue;
            };
            if let Some(n) = p.conn.poll_transmit(now, buf) {
                return Some((addr, n));
            }
            self.dirty.pop_front();
            p.dirty = false;
            if p.conn.is_drained() {
                self.peers.remove(&addr);
                debug!(peer = %addr, peers = self.peers.len(), "removed {addr}");
                continue;
            }
            // Sending moves timers (acks cleared, probes armed).
            schedule_peer(&mut self.timers, addr, p);
            self.compact_timers_if_stale();
        }
        None
    }

    /// Drops stale heap entries when they pile up.
    fn compact_timers_if_stale(&mut self) {
        if self.timers.len() > 4 * self.peers.len() + 1024 {
            self.compact_timers();
        }
    }
}

type Timers = BinaryHeap<Reverse<(Instant, SocketAddr)>>;

/// After any change to a peer: collect its events, queue it for
/// transmission and reschedule its timer. Takes the fields it needs, so the
/// caller's one map lookup serves for all of it.
fn touch_peer(
    events: &mut VecDeque<ServerEvent>,
    dirty: &mut VecDeque<SocketAddr>,
    timers: &mut Timers,
    addr: SocketAddr,
    p: &mut Peer,
) {
    while let Some(event) = p.conn.poll_event() {
        events.push_back(ServerEvent { peer: addr, event });
    }
    if !p.dirty {
        p.dirty = true;
        dirty.push_back(addr);
    }
    schedule_peer(timers, addr, p);
}

/// Puts the peer's next deadline in the heap when it is earlier than the one
/// already there (a later one is found when the earlier fires).
fn schedule_peer(timers: &mut Timers, addr: SocketAddr, p: &mut Peer) {
    if let Some(t) = p.conn.poll_timeout() {
        if p.scheduled.is_none_or(|s| t < s) {
            p.scheduled = Some(t);
            timers.push(Reverse((t, addr)));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use std::time::Duration;

    fn endpoint(now: Instant) -> ServerEndpoint {
        ServerEndpoint::with_insecure_seed(
            Config::default(),
            Arc::new(MessageFactory::new()),
            now,
            1,
        )
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

    fn request(nonce: u64) -> Vec<u8> {
        let mut buf = vec![0u8; HANDSHAKE_LEN];
        let n = Packet::ConnectRequest {
            protocol_id: 0,
            nonce,
        }
        .emit(&mut buf)
        .unwrap();
        buf.truncate(n);
        buf
    }

    /// Runs a client through the handshake; returns its CHALLENGE_RESPONSE.
    fn handshake(
        s: &mut ServerEndpoint,
        c: &mut Connection,
        addr: SocketAddr,
        now: Instant,
    ) -> Vec<u8> {
        let mut buf = [0u8; 1500];
        let mut response = Vec::new();
        for _ in 0..4 {
            while let Some(n) = c.poll_transmit(now, &mut buf) {
                if matches!(
                    Packet::parse(&buf[..n]),
                    Ok(Packet::ChallengeResponse { .. })
                ) {
                    response = buf[..n].to_vec();
                }
                s.handle_datagram(now, addr, &buf[..n]);
            }
            while let Some((_, n)) = s.poll_transmit(now, &mut buf) {
                c.handle_datagram(now, &buf[..n]);
            }
        }
        response
    }

    #[test]
    fn a_replayed_response_opens_nothing() {
        let now = Instant::now();
        let mut s = endpoint(now);
        let addr: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let mut c =
            Connection::connect(Config::default(), Arc::new(MessageFactory::new()), now, 99);
        let response = handshake(&mut s, &mut c, addr, now);
        assert!(c.is_connected() && s.peer_count() == 1);
        s.disconnect(addr, "bye");
        let mut buf = [0u8; 1500];
        while s.poll_transmit(now, &mut buf).is_some() {}
        assert_eq!(s.peer_count(), 0);
        // An on-path attacker replays the captured response within its lifetime.
        let later = now + Duration::from_secs(1);
        s.handle_datagram(later, addr, &response);
        assert_eq!(s.peer_count(), 0);
        assert_eq!(s.stats().replayed, 1);
        // After the cookie expires it is refused as expired instead.
        let expired = now + Duration::from_secs(11);
        s.handle_datagram(expired, addr, &response);
        assert_eq!(s.peer_count(), 0);
        assert_eq!(s.stats().bad_cookies, 1);
    }

    #[test]
    fn each_datagram_from_a_stranger_is_one_outcome() {
        let now = Instant::now();
        let mut s = endpoint(now);
        let from: SocketAddr = "192.0.2.9:4000".parse().unwrap();
        let mut response = vec![0u8; HANDSHAKE_LEN];
        let n = Packet::ChallengeResponse {
            protocol_id: 0,
            nonce: 5,
            issued_at: 0,
            cookie: [1; 16],
            extension: &[],
        }
        .emit(&mut response)
        .unwrap();
        assert_eq!(n, HANDSHAKE_LEN);
        let mut other_protocol = response.clone();
        other_protocol[4..12].copy_from_slice(&9u64.to_be_bytes());
        let datagrams = [
            request(1),
            response,
            other_protocol,
            b"LG\x01\x06junk".to_vec(),
            Vec::new(),
        ];
        for (i, d) in datagrams.iter().enumerate() {
            s.handle_datagram(now, from, d);
            assert_eq!(s.stats().handshake_outcomes(), i as u64 + 1, "{d:02x?}");
        }
        let st = s.stats();
        assert_eq!((st.challenges_sent, st.rechallenges), (2, 1));
        assert_eq!((st.bad_cookies, st.dropped_invalid), (2, 2));
        assert_eq!((st.queued_replies, st.rate_tracked_sources), (2, 1));
        assert_eq!(st.remembered_handshakes, 0);
        let mut buf = [0u8; 1500];
        while s.poll_transmit(now, &mut buf).is_some() {}
        assert_eq!(s.stats().queued_replies, 0);
    }

    #[test]
    fn one_source_is_rate_limited_others_are_not() {
        let now = Instant::now();
        let mut s = endpoint(now);
        let one: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        for nonce in 0..300 {
            s.handle_datagram(now, one, &request(nonce));
        }
        let limit = u64::from(Config::default().connect_rate_per_source);
        assert_eq!(s.stats().challenges_sent, limit);
        assert_eq!(s.stats().rate_limited, 300 - limit);
        for i in 0..300u32 {
            let other = SocketAddr::from(([198, 51, (i >> 8) as u8, i as u8], 4000));
            s.handle_datagram(now, other, &request(1));
        }
        assert_eq!(s.stats().challenges_sent, limit + 300);
        // A new second opens a new window for the first source.
        s.handle_datagram(now + Duration::from_secs(1), one, &request(1));
        assert_eq!(s.stats().challenges_sent, limit + 301);
        assert_eq!(s.peer_count(), 0, "requests alone create no state");
    }
}
