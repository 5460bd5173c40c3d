//! The native protocol's engine (`docs/PROTOCOL.md`): one connection's
//! state, its timers, and the routing of each datagram in and out.
//!
//! The receive path (handshake replies, DATA frames, delivery) is in
//! `native/receive.rs`, the transmit path (handshake, DATA, DISCONNECT
//! packets) in `native/transmit.rs`. Everything the secure mode changes sits
//! behind `Protection` (`connection/protection.rs`), so this file and those
//! two read the same in both modes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::{AnyMessage, MessageFactory};

use crate::ack::AckTracker;
use crate::channel::{
    channel_for, max_unreliable_size, ChannelId, Channels, MessageHandle, Received, Sizes,
};
use crate::config::{Config, Protocol};
use crate::congestion::Congestion;
use crate::delivery::Delivery;
use crate::event::{DisconnectReason, Event, SendError, State, Stats};
use crate::observe::{self, EngineCounters, Faults};
use crate::packet::{Packet, DATA_HEADER_LEN, FRAGMENT_OVERHEAD};
use crate::recovery::Recovery;
use crate::secure::session::SecureSession;
use crate::secure::ConnectToken;

use super::protection::Protection;
use super::Engine;

mod receive;
mod transmit;

/// Copies of DISCONNECT sent on a local disconnect.
const DISCONNECT_COPIES: u8 = 10;

/// The native protocol's connection state machine (see `docs/PROTOCOL.md`).
pub(crate) struct NativeConnection {
    /// Shared with the endpoint's other peers on a server.
    config: Arc<Config>,
    factory: Arc<MessageFactory>,
    state: Phase,
    nonce: u64,
    session: u32,
    frag_size: usize,
    recovery: Recovery,
    acks: AckTracker,
    /// Every channel's send and receive side, and the scheduler; allocated
    /// on the first send or message frame (an idle connection holds none).
    channels: Option<Box<Channels>>,
    events: VecDeque<Event>,
    received: Vec<Received>,
    scratch: Vec<u8>,
    last_recv: Instant,
    last_eliciting_sent: Instant,
    /// The latest `now` the connection was given: when a message sent now
    /// counts as queued, for channel lifetimes.
    clock: Instant,
    ping_due: bool,
    /// What the client sends after the cookie: its schema summary.
    handshake_extension: Vec<u8>,
    /// Plain or sealed packets: everything the secure mode changes.
    protection: Protection,
    stats: Stats,
    /// The peer's address, for log fields only.
    peer: Option<SocketAddr>,
    /// Handshake packets sent (connect requests and challenge responses).
    handshake_sends: u32,
    faults: Faults,
}

/// The handshake and lifetime phases.
#[derive(Debug)]
enum Phase {
    /// Client: waiting for CHALLENGE (no cookie yet) or ACCEPT.
    Connecting {
        started: Instant,
        next_retry: Instant,
        send_now: bool,
        challenge: Option<(u64, [u8; 16])>,
        /// When the one CONNECT_REQUEST sent so far went out, or `None`
        /// once a second copy has: the first challenge is timed from it only
        /// when it cannot be answering another copy (Karn's rule). Timing
        /// from the latest copy would give less than the round trip once
        /// that exceeds the retry interval, and from the first more than it
        /// when the first was lost; the first data ack gives the first
        /// sample then.
        only_request_sent: Option<Instant>,
        requests_sent: u32,
    },
    Connected,
    /// Closed; `copies` DISCONNECT packets are still to be sent.
    Closed {
        reason: DisconnectReason,
        copies: u8,
    },
}

impl NativeConnection {
    /// Whether a message of `len` encoded bytes may be queued on `channel` now.
    fn check_send(&mut self, len: usize, channel: ChannelId) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::NotConnected);
        }
        self.channels().check_send(channel, len)?;
        let queued = self.queued_bytes();
        if queued + len > self.config.limits.max_send_queue_bytes {
            return Err(SendError::QueueFull {
                queued,
                max: self.config.limits.max_send_queue_bytes,
            });
        }
        Ok(())
    }

    /// Queues an encoded message that passed [`check_send`](Self::check_send).
    fn push_message(&mut self, message: &[u8], channel: ChannelId) -> MessageHandle {
        let clock = self.clock;
        let handle = self.channels().push(channel, message, clock);
        // Queueing drops the channel's expired messages: report them.
        if let Some(channels) = self.channels.as_deref_mut() {
            channels.take_feedback(&mut self.events);
        }
        self.stats.out_messages += 1;
        debug_assert!(self.queued_bytes() <= self.config.limits.max_send_queue_bytes);
        handle
    }

    /// Encodes and queues a message on `channel`.
    fn send_message(
        &mut self,
        msg: &dyn AnyMessage,
        channel: ChannelId,
    ) -> Result<MessageHandle, SendError> {
        let len = msg.message_len();
        self.check_send(len, channel)?;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(len, 0);
        let encoded = msg.encode_message(&mut scratch);
        let handle = encoded.map(|n| self.push_message(&scratch[..n], channel));
        self.scratch = scratch;
        handle.map_err(SendError::from)
    }

    /// A client connection that starts its handshake at `now`.
    ///
    /// `nonce` identifies this connection attempt; pass a random value (the
    /// UDP driver draws one from the OS). Sends queued before the handshake
    /// completes go out once it does.
    pub(crate) fn connect(
        config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
        nonce: u64,
    ) -> Self {
        let protection = Protection::Plain {
            protocol_id: config.protocol_id,
        };
        Self::client(config, factory, now, nonce, protection)
    }

    /// A secure-mode client connection with a connect token: the token's
    /// timeout replaces `config.timeout`.
    pub(crate) fn connect_with_token(
        mut config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
        nonce: u64,
        token: &ConnectToken,
    ) -> Self {
        config.timeout = token.timeout();
        let secure = Box::new(SecureSession::client(token, nonce));
        let protection = Protection::Sealed(secure);
        Self::client(config, factory, now, nonce, protection)
    }

    fn client(
        config: Config,
        factory: Arc<MessageFactory>,
        now: Instant,
        nonce: u64,
        protection: Protection,
    ) -> Self {
        let phase = Phase::Connecting {
            started: now,
            next_retry: now,
            send_now: true,
            challenge: None,
            only_request_sent: None,
            requests_sent: 0,
        };
        Self::new(Arc::new(config), factory, now, nonce, 0, phase, protection)
    }

    /// The server side of a connection the endpoint has just accepted.
    pub(crate) fn accepted(
        config: Arc<Config>,
        factory: Arc<MessageFactory>,
        now: Instant,
        nonce: u64,
        session: u32,
        secure: Option<SecureSession>,
    ) -> Self {
        let protection = Protection::new(config.protocol_id, secure.map(Box::new));
        let mut conn = Self::new(
            config,
            factory,
            now,
            nonce,
            session,
            Phase::Connected,
            protection,
        );
        if !conn.is_closed() {
            conn.events.push_back(Event::Connected);
        }
        conn
    }

    fn new(
        config: Arc<Config>,
        factory: Arc<MessageFactory>,
        now: Instant,
        nonce: u64,
        session: u32,
        state: Phase,
        protection: Protection,
    ) -> Self {
        let mtu = config.effective_mtu();
        let frag_size = mtu - DATA_HEADER_LEN - FRAGMENT_OVERHEAD - protection.overhead();
        let invalid = config.validate().err();
        // The sent-packet ring must outlast every packet in flight, or
        // packets still in flight would be overwritten and counted lost.
        let ring_limit = (crate::recovery::SENT_WINDOW - 64) * mtu;
        let cc = Congestion::new(
            now,
            mtu,
            &config.congestion,
            ring_limit,
            config.initial_rtt,
            nonce,
        );
        let mut conn = NativeConnection {
            recovery: Recovery::new(config.initial_rtt, config.max_ack_delay, cc),
            acks: AckTracker::new(),
            channels: None,
            events: VecDeque::new(),
            received: Vec::new(),
            scratch: Vec::new(),
            last_recv: now,
            last_eliciting_sent: now,
            clock: now,
            ping_due: false,
            handshake_extension: match state {
                Phase::Connecting { .. } => {
                    crate::handshake::extension::of(&factory, &config.channels)
                }
                _ => Vec::new(),
            },
            protection,
            stats: Stats::default(),
            peer: None,
            handshake_sends: 0,
            faults: Faults::default(),
            config,
            factory,
            state,
            nonce,
            session,
            frag_size,
        };
        if let Some(e) = invalid {
            conn.close(DisconnectReason::InvalidConfig(e), 0);
        }
        conn
    }

    /// The channels, created on first use. A connection whose config
    /// failed validation is closed at once and never sends or receives.
    fn channels(&mut self) -> &mut Channels {
        self.channels
            .get_or_insert_with(|| Channels::boxed(&self.config, &self.protection))
    }

    /// What the lazily allocated parts hold (for the idle-footprint test).
    #[cfg(test)]
    pub(crate) fn lazy_storage(&self) -> super::LazyStorage {
        let channels = self.channels.is_some();
        super::LazyStorage {
            sent_slots: self.recovery.sent_slots(),
            samples: (0, 0),
            channels: (channels, channels),
            buffers: self.events.capacity() + self.received.capacity() + self.scratch.capacity(),
        }
    }

    fn queued_bytes(&self) -> usize {
        self.channels.as_ref().map_or(0, |c| c.queued_bytes())
    }

    fn close(&mut self, reason: DisconnectReason, copies: u8) {
        observe::log_closed(self.peer, &reason, &self.stats);
        self.events.push_back(Event::Disconnected(reason.clone()));
        self.state = Phase::Closed { reason, copies };
    }
}

impl Engine for NativeConnection {
    fn protocol(&self) -> Protocol {
        Protocol::Native
    }

    /// The connection's state.
    fn state(&self) -> State {
        match &self.state {
            Phase::Connecting { .. } => State::Connecting,
            Phase::Connected => State::Connected,
            Phase::Closed { reason, .. } if reason.is_error() => State::Errored,
            Phase::Closed { .. } => State::Disconnected,
        }
    }

    /// Whether the connection has ended and has nothing left to send.
    fn is_drained(&self) -> bool {
        matches!(self.state, Phase::Closed { copies: 0, .. })
    }

    /// This attempt's nonce.
    fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The session id the server assigned (0 before the handshake completes).
    fn session(&self) -> u32 {
        self.session
    }

    /// Whether the connection runs in the secure mode.
    fn is_secure(&self) -> bool {
        self.protection.is_sealed()
    }

    /// Server, secure mode: the SECURE_ACCEPT of this connection, to repeat
    /// when the client's response is retransmitted.
    fn secure_accept(&self) -> Option<Vec<u8>> {
        self.protection.accept_packet(self.nonce, self.session)
    }

    /// Sets the peer's address, used only in log fields.
    fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = Some(peer);
    }

    /// The connection's metrics.
    fn stats(&self) -> Stats {
        let mut s = self.sampled_stats();
        s.channels = match &self.channels {
            Some(channels) => channels.stats(),
            None => Channels::unused_stats(&self.config.channels),
        };
        s
    }

    fn sampled_stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.latency_ms = self.recovery.rtt.srtt().as_secs_f64() * 1000.0;
        s.latency_variation_ms = self.recovery.rtt.rttvar().as_secs_f64() * 1000.0;
        s.packet_loss = self.recovery.loss_rate;
        s.out_buffer_bytes = self.queued_bytes();
        if let Some(channels) = &self.channels {
            let (resends, _, pending_acks, reorder_queue) = channels.reliable_totals();
            s.resends = resends;
            s.pending_acks = pending_acks;
            s.reorder_queue = reorder_queue;
            s.reassembly_bytes = channels.reassembly.in_use;
        }
        s.lost_packets = self.recovery.lost_packets;
        s.spurious_losses = self.recovery.spurious_losses;
        s.congestion_window = self.recovery.cc.window();
        s.bytes_in_flight = self.recovery.cc.in_flight();
        s.bandwidth_estimate = self.recovery.cc.bandwidth();
        s.pacing_rate = self.recovery.cc.pacing_rate();
        s.min_rtt_ms = self
            .recovery
            .cc
            .min_rtt()
            .map_or(0.0, |rtt| rtt.as_secs_f64() * 1000.0);
        s
    }

    /// Counters for the observer beyond the stats.
    fn counters(&self) -> EngineCounters {
        EngineCounters {
            first_sends: self.channels.as_ref().map_or(0, |c| c.reliable_totals().1),
            faults: self.faults,
        }
    }

    /// The smoothed round-trip time.
    fn rtt(&self) -> Duration {
        self.recovery.rtt.srtt()
    }

    /// The largest unreliable message, which must fit in one packet.
    fn max_unreliable_size(&self) -> usize {
        let room = self.config.effective_mtu() - DATA_HEADER_LEN - self.protection.overhead();
        let list = &self.config.channels;
        channel_for(list, Delivery::Unreliable).map_or(0, |c| max_unreliable_size(list, c, room))
    }

    /// Queues a message on the channel `delivery` sends on. Nothing is
    /// queued when it returns an error.
    ///
    /// Messages may be queued while connecting; they are sent once the
    /// handshake completes.
    fn send(&mut self, msg: &dyn AnyMessage, delivery: Delivery) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::NotConnected);
        }
        let channel = channel_for(&self.config.channels, delivery)?;
        self.send_message(msg, channel).map(drop)
    }

    fn send_on(
        &mut self,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError> {
        self.send_message(msg, channel)
    }

    fn send_encoded(&mut self, message: &[u8], delivery: Delivery) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::NotConnected);
        }
        let channel = channel_for(&self.config.channels, delivery)?;
        self.check_send(message.len(), channel)?;
        self.push_message(message, channel);
        Ok(())
    }

    /// Closes the connection with `reason`, sending DISCONNECT to the peer
    /// (several copies, so that one lost datagram does not turn it into a
    /// timeout). Queued messages are dropped.
    fn disconnect(&mut self, reason: &str) {
        if self.is_closed() {
            return;
        }
        let copies = if self.is_connected() {
            DISCONNECT_COPIES
        } else {
            0
        };
        self.close(DisconnectReason::Local(reason.to_owned()), copies);
    }

    /// Processes one datagram from the peer. Invalid datagrams are dropped
    /// and counted; nothing the peer sends can make this panic.
    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        // After a freeze longer than the timeout (the app stopped updating),
        // the peer has given up on us: time out rather than revive.
        self.clock = self.clock.max(now);
        if self.is_connected() && now >= self.last_recv + self.config.timeout {
            self.close(DisconnectReason::TimedOut, 0);
        }
        self.stats.in_bytes += datagram.len() as u64;
        let Ok(packet) = Packet::parse(datagram) else {
            self.stats.dropped_invalid += 1;
            return;
        };
        let connecting = matches!(self.state, Phase::Connecting { .. });
        match packet {
            Packet::Data { header, frames } if self.is_connected() => {
                self.handle_data(now, header, datagram, frames);
            }
            Packet::Disconnect { session, .. } | Packet::SecureDisconnect { session, .. }
                if session == self.session && self.is_connected() =>
            {
                match self.protection.open_disconnect(&packet, datagram) {
                    Ok(reason) => {
                        self.stats.in_packets += 1;
                        self.close(DisconnectReason::Remote(reason), 0);
                    }
                    Err(dropped) => dropped.count(&mut self.stats),
                }
            }
            // A late copy of a handshake reply once the handshake is over
            // (a retry crossed the answer): counted like any duplicate.
            Packet::Challenge { nonce, .. }
            | Packet::Accept { nonce, .. }
            | Packet::SecureAccept { nonce, .. }
            | Packet::Reject { nonce, .. }
                if nonce == self.nonce && !connecting =>
            {
                self.stats.dropped_duplicate += 1;
            }
            Packet::Challenge {
                nonce,
                issued_at,
                cookie,
            } if nonce == self.nonce => self.handle_challenge(now, issued_at, cookie),
            Packet::Accept { nonce, .. } | Packet::SecureAccept { nonce, .. }
                if nonce == self.nonce =>
            {
                match self.protection.open_accept(&packet, datagram) {
                    Ok(session) => self.handle_accept(now, session),
                    Err(dropped) => dropped.count(&mut self.stats),
                }
            }
            Packet::Reject { nonce, reason } if nonce == self.nonce => self.handle_reject(reason),
            _ => self.stats.dropped_invalid += 1,
        }
    }

    /// Runs the timers that are due at `now`: handshake retry and timeout,
    /// idle timeout, loss detection and probes, keep-alive pings.
    fn handle_timeout(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        match &mut self.state {
            Phase::Connecting {
                started,
                next_retry,
                send_now,
                ..
            } => {
                if now >= *started + self.config.connect_timeout {
                    self.close(DisconnectReason::ConnectTimedOut, 0);
                } else if now >= *next_retry {
                    *send_now = true;
                }
            }
            Phase::Connected => {
                if now >= self.last_recv + self.config.timeout {
                    self.close(DisconnectReason::TimedOut, 0);
                    return;
                }
                match self.channels.as_deref_mut() {
                    Some(channels) => {
                        self.recovery
                            .on_timeout(now, &mut |o| channels.on_outcome(o));
                        channels.drop_expired(now);
                        channels.take_feedback(&mut self.events);
                    }
                    // Nothing was ever sent: no message part can be lost.
                    None => self.recovery.on_timeout(now, &mut |_| {}),
                }
                if now >= self.last_eliciting_sent + self.config.keepalive_interval() {
                    self.ping_due = true;
                }
            }
            Phase::Closed { .. } => {}
        }
    }

    /// Writes the next datagram to send into `buf` and returns its length,
    /// or `None` when there is nothing to send now. Call until `None`.
    ///
    /// `buf` should hold at least the configured MTU; a datagram never
    /// exceeds `min(buf.len(), mtu)` bytes.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.clock = self.clock.max(now);
        let len = match &self.state {
            Phase::Closed { copies: 0, .. } => return None,
            Phase::Closed { .. } => self.transmit_disconnect(buf)?,
            Phase::Connecting { .. } => self.transmit_handshake(now, buf)?,
            Phase::Connected if self.recovery.peer_accepts_next() => {
                return self.transmit_data(now, buf);
            }
            Phase::Connected => {
                // The peer acknowledged none of our last `SEQ_WINDOW`
                // packets: its sequence window would refuse the next one,
                // so the path is as good as gone (`docs/PROTOCOL.md` 5).
                // DISCONNECT carries no sequence number and still gets in.
                self.close(DisconnectReason::TimedOut, DISCONNECT_COPIES);
                return self.poll_transmit(now, buf);
            }
        };
        self.stats.out_packets += 1;
        self.stats.out_bytes += len as u64;
        Some(len)
    }

    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            Phase::Connecting {
                started,
                next_retry,
                ..
            } => Some((*next_retry).min(*started + self.config.connect_timeout)),
            Phase::Connected => {
                let mut t = self.last_recv + self.config.timeout;
                // A due ping waits for congestion room, not for a timer.
                if !self.ping_due {
                    t = t.min(self.last_eliciting_sent + self.config.keepalive_interval());
                }
                let paced = self.paced_send_time();
                // A due ack that rides on the next paced packet wakes with it.
                let ack = if self.ack_rides_paced_data() {
                    paced
                } else {
                    self.acks.deadline()
                };
                for other in [ack, self.recovery.timer(), paced].into_iter().flatten() {
                    t = t.min(other);
                }
                Some(t)
            }
            Phase::Closed { .. } => None,
        }
    }
}

impl Channels {
    /// A connection's channels, sized for its packets.
    fn boxed(config: &Config, protection: &Protection) -> Box<Channels> {
        let sizes = Sizes {
            room: config.effective_mtu() - DATA_HEADER_LEN - protection.overhead(),
        };
        Box::new(Channels::new(config, sizes))
    }
}

impl std::fmt::Debug for NativeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeConnection")
            .field("state", &self.state())
            .field("session", &self.session)
            .field("rtt", &self.rtt())
            .finish_non_exhaustive()
    }
}
