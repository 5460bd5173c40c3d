//! One legume v4 connection as a sans-IO state machine: the legume v4
//! engine behind `Connection` (it implements `connection::Engine`).
//!
//! The engine is spread over modules of one job each, as `impl V4Connection`
//! blocks: `send_queue` (first sends), `in_flight` (resends, acks and proofs
//! of lost acks), `control` (acks, pings, keep-alives and the id-bound
//! exceptions) and `receive` (incoming messages). This module holds the state,
//! the lifecycle and the `Engine` implementation that drives them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::{AnyMessage, MessageFactory, Writer};

use super::ids::IdWindow;
use super::wire::{Body, Control, Header, Messages, ParseFault, FLAG_RELIABLE, HEADER_LEN};
use crate::channel::{ChannelId, MessageHandle};
use crate::config::{Config, Protocol};
use crate::connection::Engine;
use crate::delivery::Delivery;
use crate::event::{DisconnectReason, Event, MessageError, SendError, State, Stats};
use crate::observe::{self, EngineCounters, Faults};
use crate::rtt::RttEstimator;

mod control;
mod in_flight;
mod receive;
mod send_queue;

use control::SentPing;
use in_flight::InFlight;
use send_queue::Queued;

/// The largest datagram legume 0.5 reads (`recvfrom(MTU)`).
const LEGUME_MTU: usize = 1400;
/// Reliable bytes in flight at most; more wait in the send queue, so a
/// legume 0.5 peer's socket buffer is not flooded.
const MAX_IN_FLIGHT_BYTES: usize = 64 * 1024;
/// Ids from the oldest unacked reliable message to the newest message sent,
/// at most, for new messages. legume 0.5 remembers the last 1,000 ids it
/// received; within this span, a resend is always among them. Messages whose
/// ack is proved lost (`InFlight::passed`) do not count.
const MAX_ID_SPAN: u16 = 512;
/// The hard bound: ids never lap an unacked one.
const MAX_ID_SPAN_EVER: u16 = 32_000;
/// Doublings of the resend delay, at most, while resends go unanswered.
const MAX_BACKOFF: u32 = 5;
/// Copies of Disconnected sent on a local disconnect, all with one id.
const DISCONNECT_COPIES: u8 = 3;
/// The id of a client's ConnectRequest: the first message it sends.
const CONNECT_REQUEST_ID: u16 = 1;

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Role {
    Client,
    Server,
}

#[derive(Debug)]
enum Phase {
    Connecting {
        started: Instant,
        /// When the ConnectRequest goes out next: at a fixed rate, like the
        /// native handshake's packets, not on the backing-off resend timer.
        next_request: Instant,
    },
    Connected,
    Closed {
        reason: DisconnectReason,
        copies: u8,
    },
}

/// A legume v4 connection (`docs/LEGUME_COMPAT.md`).
pub(crate) struct V4Connection {
    config: Config,
    factory: Arc<MessageFactory>,
    role: Role,
    phase: Phase,
    mtu: usize,
    /// The id of the last message sent (legume's first is 1).
    last_id: u16,
    /// The sequence of the last in-order message queued (legume's first is 2).
    last_seq: u16,
    unsent: VecDeque<Queued>,
    unsent_bytes: usize,
    control: VecDeque<Control>,
    in_flight: HashMap<u16, InFlight>,
    /// In-flight ids in send order, with acked ones still in it until they
    /// reach the front: the front is the oldest unacked id.
    in_flight_order: VecDeque<u16>,
    in_flight_bytes: usize,
    /// Resend deadlines, earliest first; entries of acked or already resent
    /// messages are skipped when they come up.
    resend: BinaryHeap<Reverse<(Instant, u16)>>,
    /// Server: whether the client sent a datagram without a ConnectRequest
    /// (such as the ack of the accept). Until then it gets no more bytes than
    /// it sent, so a spoofed ConnectRequest is not amplified.
    validated: bool,
    /// Bytes that may still be resent before `resend_window_end`.
    resend_budget: usize,
    resend_window_end: Instant,
    /// Whether an ack arrived since the resend window began.
    acked_in_window: bool,
    /// Doublings of the resend delay since the last ack of a message sent
    /// once (TCP's RTO backoff).
    backoff: u32,
    /// Resend bytes earned by acks: what the peer has taken in may be
    /// resent at once, on top of the per-window budget.
    ack_credit: usize,
    /// The number of the next datagram sent.
    next_tx: u64,
    /// Datagrams before this one are known to have been read by the peer
    /// (a message sent once in it was acked; legume acks in the order it
    /// reads): a message last sent before it and still unacked was lost, or
    /// its ack was.
    proof_tx: u64,
    /// The same, proved by a Pong (legume answers a Ping after it has acked
    /// everything read before it): such messages are passed.
    pass_tx: u64,
    /// `proof_tx` and `pass_tx` as of the last scan of the in-flight list.
    scanned: (u64, u64),
    /// Acks queued in `control`, by acked id.
    queued_acks: HashSet<u16>,
    /// Ids of ours the peer has acked.
    acked: IdWindow,
    /// Whether the peer acked an id twice within legume 0.5's memory of
    /// it, which legume 0.5 never does and legume-rs does (it acks every
    /// copy): a legume-rs peer remembers 32,768 ids, so the bounds that
    /// protect legume 0.5's memory of 1,000 are lifted.
    peer_reacks: bool,
    /// While `last_id` is before this id, `write_fillers` sends Pings to
    /// move legume 0.5's memory of ids past a message whose one ack it lost.
    filler_target: Option<u16>,
    /// When `write_exempt_ack` may next let an ack past the id bound.
    next_exempt: Instant,
    exempt_backoff: u32,
    seen: IdWindow,
    /// The in-order sequence delivered next.
    expected_seq: u16,
    reorder: HashMap<u16, (Box<dyn AnyMessage>, usize)>,
    reorder_bytes: usize,
    rtt: RttEstimator,
    loss: f64,
    /// The id of the last Ping queued.
    ping_id: u16,
    pings: VecDeque<SentPing>,
    /// The datagram of the last Ping sent.
    last_ping_tx: u64,
    keepalive: (u16, Option<Instant>),
    next_ping: Instant,
    next_keepalive: Instant,
    last_recv: Instant,
    disconnect_id: u16,
    events: VecDeque<Event>,
    stats: Stats,
    /// The peer's address, for log fields only.
    peer: Option<SocketAddr>,
    /// Reliable messages sent for the first time.
    first_sends: u64,
    faults: Faults,
    /// Messages sent on each default channel: the next handle's number.
    sent_on_channel: [u64; 3],
}

impl V4Connection {
    /// A client connection: ConnectRequest goes out on the first transmit
    /// and is resent every `connect_retry` until acked, accepted or
    /// `connect_timeout`.
    pub(crate) fn connect(config: Config, factory: Arc<MessageFactory>, now: Instant) -> Self {
        let mut c = Self::new(config, factory, now, Role::Client);
        c.phase = Phase::Connecting {
            started: now,
            next_request: now,
        };
        let mut bytes = vec![0; Control::ConnectRequest.len()];
        // Two bytes into a two-byte buffer cannot fail.
        let _ = Control::ConnectRequest.write(&mut Writer::new(&mut bytes));
        // In flight from the start (sent by `write_connect_request`, not
        // from the resend heap): user messages queued meanwhile wait for the
        // accept (legume drops a peer that sends them earlier).
        let header = Header {
            id: c.next_id(),
            seq: 0,
            flags: FLAG_RELIABLE,
        };
        c.in_flight_bytes += bytes.len();
        c.in_flight_order.push_back(header.id);
        c.in_flight.insert(
            header.id,
            InFlight {
                header,
                bytes,
                sent_at: None,
                sends: 0,
                last_tx: 0,
                due: now,
                passed: false,
            },
        );
        c.refuse_invalid_config();
        c
    }

    /// The server side, for a ConnectRequest the endpoint accepted: answers
    /// ConnectRequestAccepted, reliably.
    pub(crate) fn accepted(config: Config, factory: Arc<MessageFactory>, now: Instant) -> Self {
        let mut c = Self::new(config, factory, now, Role::Server);
        let mut bytes = vec![0; Control::Accepted.len()];
        let _ = Control::Accepted.write(&mut Writer::new(&mut bytes));
        c.queue(bytes, FLAG_RELIABLE, 0);
        c.validated = false;
        c.refuse_invalid_config();
        if !c.is_closed() {
            c.events.push_back(Event::Connected);
        }
        c
    }

    /// Closes at once a connection whose config legume v4 cannot carry
    /// (another channel list than the default one: `docs/PROTOCOL.md` 4).
    fn refuse_invalid_config(&mut self) {
        if let Err(e) = self.config.validate() {
            self.close(DisconnectReason::InvalidConfig(e), 0);
        }
    }

    /// The state shared by both roles, connected until the caller says
    /// otherwise.
    fn new(config: Config, factory: Arc<MessageFactory>, now: Instant, role: Role) -> Self {
        let mtu = config.effective_mtu().min(LEGUME_MTU);
        V4Connection {
            rtt: RttEstimator::new(config.initial_rtt),
            next_ping: now + config.keepalive_interval(),
            next_keepalive: now + config.timeout / 2,
            config,
            factory,
            role,
            phase: Phase::Connected,
            mtu,
            last_id: 0,
            last_seq: 1,
            unsent: VecDeque::new(),
            unsent_bytes: 0,
            control: VecDeque::new(),
            in_flight: HashMap::new(),
            in_flight_order: VecDeque::new(),
            in_flight_bytes: 0,
            resend: BinaryHeap::new(),
            validated: true,
            ack_credit: 0,
            next_tx: 1,
            proof_tx: 0,
            pass_tx: 0,
            scanned: (0, 0),
            queued_acks: HashSet::new(),
            acked: IdWindow::new(),
            peer_reacks: false,
            filler_target: None,
            next_exempt: now,
            exempt_backoff: 0,
            resend_budget: 0,
            resend_window_end: now,
            acked_in_window: false,
            backoff: 0,
            seen: IdWindow::new(),
            expected_seq: 2,
            reorder: HashMap::new(),
            reorder_bytes: 0,
            loss: 0.0,
            ping_id: 0,
            pings: VecDeque::new(),
            last_ping_tx: 0,
            keepalive: (0, None),
            last_recv: now,
            disconnect_id: 0,
            events: VecDeque::new(),
            stats: Stats::default(),
            peer: None,
            first_sends: 0,
            faults: Faults::default(),
            sent_on_channel: [0; 3],
        }
    }
}

impl Engine for V4Connection {
    fn protocol(&self) -> Protocol {
        Protocol::LegumeV4
    }

    fn state(&self) -> State {
        match &self.phase {
            Phase::Connecting { .. } => State::Connecting,
            Phase::Connected => State::Connected,
            Phase::Closed { reason, .. } if reason.is_error() => State::Errored,
            Phase::Closed { .. } => State::Disconnected,
        }
    }

    fn is_drained(&self) -> bool {
        matches!(self.phase, Phase::Closed { copies: 0, .. }) && self.control.is_empty()
    }

    fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.latency_ms = self.rtt.srtt().as_secs_f64() * 1000.0;
        s.latency_variation_ms = self.rtt.rttvar().as_secs_f64() * 1000.0;
        s.packet_loss = self.loss;
        s.pending_acks = self.in_flight.len();
        s.out_buffer_bytes = self.unsent_bytes + self.in_flight_bytes;
        s.reorder_queue = self.reorder.len();
        s.bytes_in_flight = self.in_flight_bytes;
        s
    }

    fn rtt(&self) -> Duration {
        self.rtt.srtt()
    }

    /// Sets the peer's address, used only in log fields.
    fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = Some(peer);
    }

    /// Counters for the observer beyond the stats.
    fn counters(&self) -> EngineCounters {
        EngineCounters {
            first_sends: self.first_sends,
            faults: self.faults,
        }
    }

    /// Any message must fit in one datagram after its transport header.
    fn max_unreliable_size(&self) -> usize {
        self.mtu - HEADER_LEN
    }

    fn send(&mut self, msg: &dyn AnyMessage, delivery: Delivery) -> Result<(), SendError> {
        let len = msg.message_len();
        self.check_send(len)?;
        let mut bytes = vec![0; len];
        let n = msg.encode_message(&mut bytes)?;
        bytes.truncate(n);
        self.push_message(bytes, delivery);
        Ok(())
    }

    /// Channels 0, 1 and 2 of the default list, the only list legume v4
    /// carries, send as `Delivery::{Unreliable, Reliable, ReliableOrdered}`.
    fn send_on(
        &mut self,
        channel: ChannelId,
        msg: &dyn AnyMessage,
    ) -> Result<MessageHandle, SendError> {
        let delivery = match channel.0 {
            0 => Delivery::Unreliable,
            1 => Delivery::Reliable,
            2 => Delivery::ReliableOrdered,
            other => {
                return Err(SendError::UnknownChannel {
                    channel: other,
                    count: self.sent_on_channel.len(),
                })
            }
        };
        self.send(msg, delivery)?;
        let number = &mut self.sent_on_channel[usize::from(channel.0)];
        *number += 1;
        Ok(MessageHandle {
            channel,
            number: *number - 1,
        })
    }

    fn send_encoded(&mut self, message: &[u8], delivery: Delivery) -> Result<(), SendError> {
        self.check_send(message.len())?;
        self.push_message(message.to_vec(), delivery);
        Ok(())
    }

    fn disconnect(&mut self, reason: &str) {
        if self.is_closed() {
            return;
        }
        let copies = if self.is_connected() {
            DISCONNECT_COPIES
        } else {
            0
        };
        self.disconnect_id = self.next_id();
        let reason = DisconnectReason::Local(reason.to_owned());
        self.close(reason, copies);
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let resend = self.resend.peek().map(|&Reverse((t, _))| t);
        match &self.phase {
            Phase::Connecting {
                started,
                next_request,
            } => {
                let mut t = *started + self.config.connect_timeout;
                if self.in_flight.contains_key(&CONNECT_REQUEST_ID) {
                    t = t.min(*next_request);
                }
                Some(resend.map_or(t, |r| r.min(t)))
            }
            Phase::Connected => {
                let mut t = (self.last_recv + self.config.timeout).min(self.next_ping);
                if self.exempt_ack_waiting() {
                    t = t.min(self.next_exempt);
                }
                if self.role == Role::Server {
                    t = t.min(self.next_keepalive);
                }
                Some(resend.map_or(t, |r| r.min(t)))
            }
            Phase::Closed { .. } => None,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Connecting { started, .. } => {
                if now >= started + self.config.connect_timeout {
                    self.close(DisconnectReason::ConnectTimedOut, 0);
                }
            }
            Phase::Connected => {
                if now >= self.last_recv + self.config.timeout {
                    self.close(DisconnectReason::TimedOut, 0);
                    return;
                }
                if now >= self.next_ping {
                    self.ping_id = self.ping_id.wrapping_add(1);
                    self.push_control(Control::Ping(self.ping_id));
                    self.next_ping = now + self.config.keepalive_interval();
                    self.stats.keepalive_count += 1;
                }
                if self.role == Role::Server && now >= self.next_keepalive {
                    self.keepalive.0 = self.keepalive.0.wrapping_add(1);
                    self.keepalive.1 = Some(now);
                    self.push_control(Control::KeepAliveRequest(self.keepalive.0));
                    self.next_keepalive = now + self.config.timeout / 2;
                    self.stats.keepalive_count += 1;
                }
            }
            Phase::Closed { .. } => {}
        }
    }

    fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        if self.is_connected() && now >= self.last_recv + self.config.timeout {
            self.close(DisconnectReason::TimedOut, 0);
        }
        self.stats.in_bytes += datagram.len() as u64;
        if self.is_closed() {
            return;
        }
        let factory = Arc::clone(&self.factory);
        let mut valid = false;
        let mut connect_request = false;
        for item in Messages::new(datagram, &factory) {
            match item {
                Ok((header, body)) => {
                    valid = true;
                    connect_request |= matches!(body, Body::ConnectRequest);
                    self.handle_message(now, header, body);
                }
                Err(ParseFault::Malformed) => self.stats.dropped_invalid += 1,
                Err(ParseFault::Message(header, e)) => {
                    valid = true;
                    // Never decodable, so never worth a resend: ack it.
                    if self.seen.insert(header.id) && header.wants_ack() {
                        self.push_control(Control::Ack(header.id));
                    }
                    self.faults.undecodable += 1;
                    self.events.push_back(Event::Error(MessageError::Decode(e)));
                }
            }
            if self.is_closed() {
                break;
            }
        }
        if valid {
            self.stats.in_packets += 1;
            self.last_recv = now;
            // A datagram that is not a (re)sent request: the client answers
            // from its address (the ack of the accept, a ping), so replies
            // are not reflected at someone else.
            self.validated |= !connect_request;
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mut limit = self.mtu.min(buf.len());
        if !self.validated {
            let budget = self.stats.in_bytes.saturating_sub(self.stats.out_bytes);
            limit = limit.min(usize::try_from(budget).unwrap_or(usize::MAX));
        }
        let mut w = Writer::new(&mut buf[..limit]);
        if let Phase::Closed { copies, .. } = &mut self.phase {
            if *copies > 0 {
                *copies -= 1;
                let header = Header {
                    id: self.disconnect_id,
                    seq: 0,
                    flags: 0,
                };
                // Six bytes always fit in the MTU.
                let _ = header.write(&mut w);
                let _ = Control::Disconnected.write(&mut w);
            }
        }
        self.apply_proofs(now);
        if self.validated {
            self.write_control(now, &mut w);
        }
        if !self.is_closed() {
            self.write_connect_request(now, &mut w);
            self.write_resends(now, &mut w);
            if self.is_connected() {
                self.write_new(now, &mut w);
                self.write_fillers(&mut w);
            }
        }
        let n = w.position();
        if n == 0 {
            return None;
        }
        self.next_tx += 1;
        self.stats.out_packets += 1;
        self.stats.out_bytes += n as u64;
        Some(n)
    }
}

impl V4Connection {
    /// Closes with `reason`, sending `copies` of Disconnected; drops every
    /// queue but the acks owed to a validated peer.
    fn close(&mut self, reason: DisconnectReason, copies: u8) {
        observe::log_closed(self.peer, &reason, &self.stats);
        self.events.push_back(Event::Disconnected(reason.clone()));
        self.phase = Phase::Closed { reason, copies };
        // Only acks still go out, to a peer that proved its address: it may
        // be waiting for them.
        if self.validated {
            self.control.retain(|c| matches!(c, Control::Ack(_)));
        } else {
            self.control.clear();
            self.queued_acks.clear();
        }
        self.unsent.clear();
        self.unsent_bytes = 0;
        self.in_flight.clear();
        self.in_flight_order.clear();
        self.in_flight_bytes = 0;
        self.resend.clear();
        self.reorder.clear();
        self.reorder_bytes = 0;
    }

    /// Takes the next message id.
    fn next_id(&mut self) -> u16 {
        self.last_id = self.last_id.wrapping_add(1);
        self.last_id
    }

    /// Ids from the oldest unacked reliable message to the last id used.
    fn id_span(&self) -> u16 {
        self.in_flight_order
            .front()
            .map_or(0, |&oldest| self.last_id.wrapping_sub(oldest))
    }
}

impl std::fmt::Debug for V4Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4Connection")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("in_flight", &self.in_flight.len())
            .field("unsent", &self.unsent.len())
            .finish_non_exhaustive()
    }
}
