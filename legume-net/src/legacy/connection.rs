//! One legume v4 connection as a sans-IO state machine: the legume v4
//! engine behind `Connection` (it implements `connection::Engine`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::{AnyMessage, MessageFactory, Writer};

use super::ids::IdWindow;
use super::wire::{
    Body, Control, Header, Messages, ParseFault, FLAG_ORDERED, FLAG_RELIABLE, HEADER_LEN,
};
use crate::config::{Config, Protocol};
use crate::connection::Engine;
use crate::delivery::Delivery;
use crate::event::{DisconnectReason, Event, MessageError, SendError, State, Stats};
use crate::observe::{self, EngineCounters, Faults};
use crate::rtt::RttEstimator;

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
/// The bound for acks, pings and keep-alive answers, still inside legume
/// 0.5's memory of 1,000 ids (acks take ids too). There is no time limit on
/// the wait: a slow legume 0.5 peer (one `update()` can take seconds on a
/// loaded machine, while it resends its own messages, each copy of which
/// legume-rs acks) acks late but acks, and letting ids run past its memory
/// meanwhile made it deliver resends twice. What ends a wait is an ack, a
/// Pong proving an ack lost (see `V4Connection::prove`), or, between two
/// legume-rs peers both at the bound, the occasional ack let through by
/// `write_exempt_ack`.
const MAX_CONTROL_ID_SPAN: u16 = 900;
/// The hard bound: ids never lap an unacked one.
const MAX_ID_SPAN_EVER: u16 = 32_000;
/// legume 0.5's memory of received ids, with a margin: ids this far past a
/// message are past its memory.
const LEGUME_MEMORY: u16 = 1024;
/// legume 0.5's memory exactly (`RECENT_MESSAGE_LIST_SIZE`): it cannot ack
/// one of our ids twice before we have sent this many more.
const LEGUME_RECENT: u16 = 1000;
/// Pings remembered until their Pong comes back (older ones are forgotten).
const MAX_PINGS: usize = 16;
/// Control messages queued at most; more are dropped (a peer resends what
/// is not acked, and answers to pings are only measurements). Acks are
/// queued once per id.
const MAX_CONTROL_QUEUE: usize = 4096;
/// Shortest resend delay. legume's `MINIMUM_RESEND_DELAY_MS` is 10 ms, but
/// legume's delay is in effect about 1000 x the RTT (a unit mix-up), and a
/// Python peer takes tens of milliseconds to work through a burst: shorter
/// delays only resend what is still being read.
const MIN_RESEND_DELAY: Duration = Duration::from_millis(50);
/// Longest resend delay after repeated losses of one message.
const MAX_RESEND_DELAY: Duration = Duration::from_secs(1);
/// Datagrams of resends per resend delay while acks come back; one while
/// they do not. Resending everything that is due at once would bury a slow
/// peer: legume 0.5 reads its socket until it is empty before it writes
/// a single ack, so a flood of resends keeps it from ever acking.
const RESEND_DATAGRAMS: usize = 4;
/// Doublings of the resend delay, at most, while resends go unanswered.
const MAX_BACKOFF: u32 = 5;
/// Copies of Disconnected sent on a local disconnect, all with one id.
const DISCONNECT_COPIES: u8 = 3;
/// The id of a client's ConnectRequest: the first message it sends.
const CONNECT_REQUEST_ID: u16 = 1;
/// The reason reported for a legume rejection, which carries none.
const REJECTED_REASON: &str = "rejected by server (legume v4 has no reason field)";

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

/// A user message waiting for its first transmission.
struct Queued {
    /// Type id and fields.
    bytes: Vec<u8>,
    flags: u8,
    seq: u16,
}

/// A reliable message sent and not yet acked.
struct InFlight {
    header: Header,
    bytes: Vec<u8>,
    sent_at: Option<Instant>,
    sends: u32,
    /// The datagram (`V4Connection::next_tx`) of the last copy.
    last_tx: u64,
    /// When it is resent; entries of `V4Connection::resend` with another
    /// time are stale.
    due: Instant,
    /// Proved unacked by a Pong: the peer read everything sent before the
    /// Ping, so the message's copies or the peer's one ack of it were lost.
    /// It is still resent, but no longer holds the ids back.
    passed: bool,
}

/// A Ping sent and not yet answered.
#[derive(Clone, Copy)]
struct SentPing {
    id: u16,
    at: Instant,
    tx: u64,
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
        c.events.push_back(Event::Connected);
        c
    }

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
        if self.is_closed() {
            return Err(SendError::NotConnected);
        }
        let len = msg.message_len();
        let max = self.max_unreliable_size();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let queued = self.unsent_bytes + self.in_flight_bytes;
        if queued + len > self.config.limits.max_send_queue_bytes {
            return Err(SendError::QueueFull {
                queued,
                max: self.config.limits.max_send_queue_bytes,
            });
        }
        let mut bytes = vec![0; len];
        let n = msg.encode_message(&mut bytes)?;
        bytes.truncate(n);
        let (flags, seq) = match delivery {
            Delivery::Unreliable => (0, 0),
            Delivery::Reliable => (FLAG_RELIABLE, 0),
            // As legume's send_inorder_message: the in-order flag alone,
            // which legume treats as reliable too.
            Delivery::ReliableOrdered => {
                self.last_seq = self.last_seq.wrapping_add(1);
                (FLAG_ORDERED, self.last_seq)
            }
        };
        self.queue(bytes, flags, seq);
        self.stats.out_messages += 1;
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
    fn queue(&mut self, bytes: Vec<u8>, flags: u8, seq: u16) {
        self.unsent_bytes += bytes.len();
        self.unsent.push_back(Queued { bytes, flags, seq });
    }

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

    fn handle_message(&mut self, now: Instant, header: Header, body: Body) {
        let fresh = self.seen.insert(header.id);
        if header.wants_ack() {
            // Acked every time, duplicates included: the first ack may have
            // been lost (legume 0.5 acks once and leaves its peer resending).
            // Not twice while one is still queued.
            self.push_control(Control::Ack(header.id));
        }
        if !fresh {
            self.stats.dropped_duplicate += 1;
            return;
        }
        let connecting = matches!(self.phase, Phase::Connecting { .. });
        match body {
            Body::Ack(id) => self.handle_ack(now, id),
            Body::Ping(id) => self.push_control(Control::Pong(id)),
            Body::Pong(id) => {
                if let Some(i) = self.pings.iter().position(|p| p.id == id) {
                    let ping = self.pings[i];
                    self.pings.drain(..=i);
                    self.rtt
                        .update(now.saturating_duration_since(ping.at), Duration::ZERO);
                    self.prove(ping.tx, true);
                }
            }
            Body::KeepAliveRequest(id) => {
                self.stats.keepalive_count += 1;
                self.push_control(Control::KeepAliveResponse(id));
            }
            Body::KeepAliveResponse(id) => {
                if self.keepalive.0 == id {
                    if let Some(sent) = self.keepalive.1.take() {
                        self.rtt
                            .update(now.saturating_duration_since(sent), Duration::ZERO);
                    }
                }
            }
            Body::Accepted => {
                if connecting {
                    self.become_connected(now);
                }
            }
            Body::Rejected if connecting => {
                observe::log_rejected(self.peer, REJECTED_REASON);
                self.events.push_back(Event::Rejected {
                    reason: REJECTED_REASON.to_owned(),
                });
                self.phase = Phase::Closed {
                    reason: DisconnectReason::Remote(REJECTED_REASON.to_owned()),
                    copies: 0,
                };
                self.control.retain(|c| matches!(c, Control::Ack(_)));
            }
            Body::Disconnected if !connecting => {
                self.close(DisconnectReason::Remote("peer disconnected".to_owned()), 0);
            }
            // The server endpoint admitted this connection on it; a copy
            // is a resend whose ack was lost (acked again above).
            Body::ConnectRequest if self.role == Role::Server => {}
            Body::User(msg) if !self.is_closed() => {
                // A server sends messages only to peers it accepted: data
                // before the accept means the accept was lost or reordered.
                if connecting {
                    self.become_connected(now);
                }
                if header.is_ordered() {
                    self.receive_ordered(header.seq, msg);
                } else {
                    self.deliver(msg);
                }
            }
            _ => self.stats.dropped_invalid += 1,
        }
    }

    fn become_connected(&mut self, now: Instant) {
        // The accept answers the request: stop resending it even if its ack
        // was lost, or a late copy could open a second connection on a
        // server that has since closed this one.
        if let Some(m) = self.in_flight.remove(&CONNECT_REQUEST_ID) {
            self.in_flight_bytes -= m.bytes.len();
            self.pop_acked_front();
        }
        self.phase = Phase::Connected;
        self.next_ping = now + self.config.keepalive_interval();
        self.events.push_back(Event::Connected);
        observe::log_connected(self.peer, 0, self.rtt());
    }

    fn handle_ack(&mut self, now: Instant, id: i32) {
        let Ok(id) = u16::try_from(id) else {
            self.stats.dropped_invalid += 1;
            return;
        };
        let again = !self.acked.insert(id);
        if again && self.last_id.wrapping_sub(id) < LEGUME_RECENT {
            self.peer_reacks = true;
        }
        let Some(m) = self.in_flight.remove(&id) else {
            // A late ack of a message already acked.
            return;
        };
        self.in_flight_bytes -= m.bytes.len();
        self.acked_in_window = true;
        // The peer took these bytes in: as many may be resent now.
        self.ack_credit = (self.ack_credit + HEADER_LEN + m.bytes.len()).min(MAX_IN_FLIGHT_BYTES);
        if m.sends == 1 {
            // Only a message sent once says which datagram was read.
            self.prove(m.last_tx, false);
            self.backoff = 0;
            if let Some(sent) = m.sent_at {
                self.rtt
                    .update(now.saturating_duration_since(sent), Duration::ZERO);
            }
            self.loss *= 0.95;
        }
        self.pop_acked_front();
    }

    /// Drops acked and passed ids from the front of the send order.
    fn pop_acked_front(&mut self) {
        while let Some(front) = self.in_flight_order.front() {
            if self.in_flight.get(front).is_some_and(|m| !m.passed) {
                break;
            }
            self.in_flight_order.pop_front();
        }
    }

    /// Records that the peer has read every datagram before `tx`: with
    /// `pass`, proved by a Pong, otherwise by the ack of a message sent once
    /// in `tx`. Applied by `apply_proofs`.
    fn prove(&mut self, tx: u64, pass: bool) {
        self.proof_tx = self.proof_tx.max(tx);
        if pass {
            self.pass_tx = self.pass_tx.max(tx);
        }
    }

    /// Resends every unacked message last sent before `proof_tx` (its copy
    /// or its ack was lost: the peer has read what came after it and acked
    /// that) once it is older than the loss delay, and passes those last
    /// sent before `pass_tx`: a legume 0.5 peer acks a message once, and
    /// when that ack is lost only ids moving on (after which it delivers the
    /// message again, and acks it) can end the wait. Messages whose copies
    /// were all lost are passed too, which is harmless: the peer never saw
    /// them.
    fn apply_proofs(&mut self, now: Instant) {
        if (self.proof_tx, self.pass_tx) == self.scanned {
            return;
        }
        self.scanned = (self.proof_tx, self.pass_tx);
        let mut passed = 0;
        let delay = self.rtt.loss_delay(9);
        // All of them: passed ones have left `in_flight_order`.
        for (id, m) in &mut self.in_flight {
            if m.sends == 0 {
                continue;
            }
            if m.last_tx < self.pass_tx {
                if !m.passed {
                    m.passed = true;
                    passed += 1;
                } else {
                    // Proved unacked again by a later Pong: legume most
                    // likely has it and will not ack it until its memory of
                    // ids has moved past it (if it does not have it, the
                    // fillers cost 8 KiB and no duplicate).
                    let target = m.header.id.wrapping_add(LEGUME_MEMORY);
                    let later = |t: u16| t.wrapping_sub(target) < 1 << 15;
                    if !self.filler_target.is_some_and(later) {
                        self.filler_target = Some(target);
                    }
                }
            }
            if m.last_tx < self.proof_tx {
                // Lost once it is older than 9/8 of the round trip (RFC
                // 9002's time threshold), so that reordering is not loss.
                let lost_at = m.sent_at.map_or(now, |t| t + delay).max(now);
                if lost_at < m.due {
                    m.due = lost_at;
                    self.resend.push(Reverse((lost_at, *id)));
                }
            }
        }
        self.stats.lost_acks += passed;
        self.pop_acked_front();
    }

    /// Queues a control message: an ack only if none for that id is queued,
    /// nothing once `MAX_CONTROL_QUEUE` are.
    fn push_control(&mut self, c: Control) {
        if self.control.len() >= MAX_CONTROL_QUEUE {
            return;
        }
        if let Control::Ack(id) = c {
            if !self.queued_acks.insert(id) {
                return;
            }
        }
        self.control.push_back(c);
    }

    /// The id span at which control messages wait: `MAX_CONTROL_ID_SPAN`, or
    /// the hard bound for a peer that re-acks (`peer_reacks`), so that two
    /// legume-rs peers never hold each other's acks back.
    fn control_span_limit(&self) -> u16 {
        if self.peer_reacks {
            MAX_ID_SPAN_EVER
        } else {
            MAX_CONTROL_ID_SPAN
        }
    }

    /// Whether acks wait at the control bound, for `write_exempt_ack`.
    fn exempt_ack_waiting(&self) -> bool {
        self.validated
            && self.is_connected()
            && !self.queued_acks.is_empty()
            && (self.control_span_limit()..MAX_ID_SPAN_EVER).contains(&self.id_span())
    }

    fn receive_ordered(&mut self, seq: u16, msg: Box<dyn AnyMessage>) {
        let ahead = seq.wrapping_sub(self.expected_seq);
        if ahead >= 1 << 15 {
            // Already delivered: a duplicate by sequence.
            self.stats.dropped_duplicate += 1;
            return;
        }
        if ahead > 0 {
            let size = msg.message_len();
            if self.reorder_bytes + size > self.config.limits.max_reorder_bytes {
                self.close(
                    DisconnectReason::LimitExceeded("max_reorder_bytes".to_owned()),
                    0,
                );
                return;
            }
            if self.reorder.insert(seq, (msg, size)).is_none() {
                self.reorder_bytes += size;
            }
            return;
        }
        self.deliver(msg);
        self.expected_seq = self.expected_seq.wrapping_add(1);
        while let Some((msg, size)) = self.reorder.remove(&self.expected_seq) {
            self.reorder_bytes -= size;
            self.deliver(msg);
            self.expected_seq = self.expected_seq.wrapping_add(1);
        }
    }

    fn deliver(&mut self, msg: Box<dyn AnyMessage>) {
        self.stats.in_messages += 1;
        self.events.push_back(Event::Message(msg));
    }

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

    fn resend_delay(&self, sends: u32) -> Duration {
        // 1.5 x srtt: legume resends after one RTT, which turns any late
        // datagram into a resend.
        let base = (self.rtt.srtt() * 3 / 2 + 4 * self.rtt.rttvar()).max(MIN_RESEND_DELAY);
        let doublings = (sends.saturating_sub(1) + self.backoff).min(6);
        base.saturating_mul(1 << doublings)
            .min(MAX_RESEND_DELAY.max(base))
    }

    /// Client, connecting: the ConnectRequest when it is due, resent at the
    /// fixed handshake rate until the accept (or its ack) arrives. At 50%
    /// loss each way a request and its answer both get through one time in
    /// four; the resend timer's backoff to 1 s left too few tries within the
    /// connect timeout.
    fn write_connect_request(&mut self, now: Instant, w: &mut Writer<'_>) {
        let Phase::Connecting { next_request, .. } = &mut self.phase else {
            return;
        };
        if now < *next_request {
            return;
        }
        let Some(m) = self.in_flight.get_mut(&CONNECT_REQUEST_ID) else {
            return;
        };
        if w.remaining() < HEADER_LEN + m.bytes.len() {
            return;
        }
        *next_request = now + self.config.effective_connect_retry();
        let _ = m.header.write(w);
        let _ = w.put_slice(&m.bytes);
        if m.sends > 0 {
            self.stats.resends += 1;
        }
        m.sends += 1;
        m.sent_at = Some(now);
    }

    fn write_control(&mut self, now: Instant, w: &mut Writer<'_>) {
        self.write_probe(now, w);
        while let Some(&c) = self.control.front() {
            if w.remaining() < HEADER_LEN + c.len() {
                return;
            }
            if self.id_span() >= self.control_span_limit() {
                self.write_exempt_ack(now, w);
                return;
            }
            self.exempt_backoff = 0;
            self.control.pop_front();
            self.write_one_control(now, c, w);
        }
    }

    /// Writes `c` behind a new id, noting acks and pings as sent.
    fn write_one_control(&mut self, now: Instant, c: Control, w: &mut Writer<'_>) {
        match c {
            Control::Ack(id) => {
                self.queued_acks.remove(&id);
            }
            Control::Ping(id) => {
                if self.pings.len() == MAX_PINGS {
                    self.pings.pop_front();
                }
                self.pings.push_back(SentPing {
                    id,
                    at: now,
                    tx: self.next_tx,
                });
                self.last_ping_tx = self.next_tx;
            }
            _ => {}
        }
        let header = Header {
            id: self.next_id(),
            seq: 0,
            flags: 0,
        };
        let _ = header.write(w);
        let _ = c.write(w);
    }

    /// While new messages wait at `MAX_ID_SPAN`: a Ping right after each
    /// resend of the oldest unacked message, past the control bound. Its
    /// Pong proves (`prove`) whether the peer read that copy without acking
    /// it, which for legume 0.5 means its one ack was lost.
    fn write_probe(&mut self, now: Instant, w: &mut Writer<'_>) {
        if !self.is_connected()
            || w.remaining() < HEADER_LEN + Control::Ping(0).len()
            || self.id_span() < MAX_ID_SPAN
            || self.id_span() >= MAX_ID_SPAN_EVER
        {
            return;
        }
        let Some(oldest) = self
            .in_flight_order
            .front()
            .and_then(|id| self.in_flight.get(id))
        else {
            return;
        };
        if oldest.sends < 2 || oldest.last_tx < self.last_ping_tx {
            return;
        }
        self.ping_id = self.ping_id.wrapping_add(1);
        self.write_one_control(now, Control::Ping(self.ping_id), w);
    }

    /// While acks wait at `MAX_CONTROL_ID_SPAN`: now and then (backing off
    /// to 32 resend delays) the ack of the oldest queued id goes anyway.
    /// The peer resends its oldest unacked message, so that is the ack it
    /// waits for; if it is a legume-rs peer held at its own bound by that
    /// message, this frees it, and its acks free this side. legume 0.5
    /// never waits, so there this costs an id per wait at most.
    fn write_exempt_ack(&mut self, now: Instant, w: &mut Writer<'_>) {
        if now < self.next_exempt
            || !self.exempt_ack_waiting()
            || w.remaining() < HEADER_LEN + Control::Ack(0).len()
        {
            return;
        }
        let newest = self.seen.newest().unwrap_or(0);
        let oldest = self
            .control
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Control::Ack(id) => Some((newest.wrapping_sub(*id), i)),
                _ => None,
            })
            .max();
        let Some((_, i)) = oldest else {
            return;
        };
        let Some(c) = self.control.remove(i) else {
            return;
        };
        self.write_one_control(now, c, w);
        let delay = self
            .resend_delay(1)
            .saturating_mul(1 << self.exempt_backoff);
        self.next_exempt = now + delay;
        self.exempt_backoff = (self.exempt_backoff + 1).min(MAX_BACKOFF);
    }

    /// Pings, answered and otherwise ignored by legume 0.5 (and by legume-rs,
    /// which matches Pongs by id), until the ids reach `filler_target`: the
    /// only way to make legume 0.5 take a message whose one ack it lost
    /// (delivering it a second time, which `Stats::lost_acks` counts) when
    /// no other traffic moves the ids on: they go only while every unacked
    /// message is passed and nothing waits to be sent. 8 bytes each.
    fn write_fillers(&mut self, w: &mut Writer<'_>) {
        let Some(target) = self.filler_target else {
            return;
        };
        while w.remaining() >= HEADER_LEN + Control::Ping(0).len() {
            let ahead = target.wrapping_sub(self.last_id);
            if ahead == 0 || ahead >= 1 << 15 {
                self.filler_target = None;
                return;
            }
            if !self.unsent.is_empty() || !self.in_flight_order.is_empty() {
                // Other messages are on their way: they move the ids on,
                // and fillers must not take their room under the bounds.
                return;
            }
            self.ping_id = self.ping_id.wrapping_add(1);
            let header = Header {
                id: self.next_id(),
                seq: 0,
                flags: 0,
            };
            let _ = header.write(w);
            let _ = Control::Ping(self.ping_id).write(w);
        }
    }

    /// Sets when message `id` is resent next.
    fn schedule(&mut self, id: u16, due: Instant) {
        if let Some(m) = self.in_flight.get_mut(&id) {
            m.due = due;
            self.resend.push(Reverse((due, id)));
        }
    }

    fn write_resends(&mut self, now: Instant, w: &mut Writer<'_>) {
        while let Some(&Reverse((due, id))) = self.resend.peek() {
            if due > now {
                return;
            }
            let Some(m) = self.in_flight.get(&id) else {
                self.resend.pop();
                continue;
            };
            if m.due != due {
                // Rescheduled since this entry was pushed.
                self.resend.pop();
                continue;
            }
            let size = HEADER_LEN + m.bytes.len();
            let sends = m.sends;
            if w.remaining() < size {
                if w.position() == 0 {
                    // Held back by the amplification budget, not by a full
                    // datagram: try again later rather than spin.
                    self.resend.pop();
                    let delay = self.resend_delay(sends.max(1));
                    self.schedule(id, now + delay);
                }
                return;
            }
            if sends > 0 && !self.take_resend_budget(now, size) {
                // Over this window's budget: wait for the next window.
                self.resend.pop();
                let end = self.resend_window_end;
                self.schedule(id, end);
                continue;
            }
            self.resend.pop();
            let sends = sends + 1;
            if sends > 1 {
                self.stats.resends += 1;
                self.loss = self.loss * 0.95 + 0.05;
            }
            let delay = self.resend_delay(sends);
            let tx = self.next_tx;
            if let Some(m) = self.in_flight.get_mut(&id) {
                if m.passed {
                    self.stats.lost_ack_resends += 1;
                }
                let _ = m.header.write(w);
                let _ = w.put_slice(&m.bytes);
                m.sent_at = Some(now);
                m.sends = sends;
                m.last_tx = tx;
            }
            self.schedule(id, now + delay);
        }
    }

    /// Takes `size` bytes from the resend budget, opening a new window (and
    /// backing off when the last one brought no ack) when this one is over.
    fn take_resend_budget(&mut self, now: Instant, size: usize) -> bool {
        if self.ack_credit >= size {
            self.ack_credit -= size;
            return true;
        }
        if now >= self.resend_window_end {
            if !self.acked_in_window {
                // Nothing taken in since: credit earned before a stall must
                // not flood the stalled peer.
                self.ack_credit = 0;
                if self.resend_budget == 0 {
                    self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
                }
            }
            self.acked_in_window = false;
            let datagrams = if self.backoff == 0 {
                RESEND_DATAGRAMS
            } else {
                1
            };
            self.resend_budget = datagrams * self.mtu;
            self.resend_window_end = now + self.resend_delay(1);
        }
        if self.resend_budget < size {
            self.resend_budget = 0;
            return false;
        }
        self.resend_budget -= size;
        true
    }

    fn write_new(&mut self, now: Instant, w: &mut Writer<'_>) {
        while let Some(q) = self.unsent.front() {
            let reliable = q.flags != 0;
            if w.remaining() < HEADER_LEN + q.bytes.len()
                || self.id_span() >= MAX_ID_SPAN
                || (reliable && self.in_flight_bytes + q.bytes.len() > MAX_IN_FLIGHT_BYTES)
            {
                return;
            }
            let Some(q) = self.unsent.pop_front() else {
                return;
            };
            self.unsent_bytes -= q.bytes.len();
            let header = Header {
                id: self.next_id(),
                seq: q.seq,
                flags: q.flags,
            };
            let _ = header.write(w);
            let _ = w.put_slice(&q.bytes);
            if reliable {
                self.first_sends += 1;
                self.in_flight_bytes += q.bytes.len();
                self.in_flight_order.push_back(header.id);
                let due = now + self.resend_delay(1);
                self.resend.push(Reverse((due, header.id)));
                self.in_flight.insert(
                    header.id,
                    InFlight {
                        header,
                        bytes: q.bytes,
                        sent_at: Some(now),
                        sends: 1,
                        last_tx: self.next_tx,
                        due,
                        passed: false,
                    },
                );
            }
        }
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
