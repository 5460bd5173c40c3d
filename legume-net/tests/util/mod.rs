//! A simulated world for protocol tests: one server endpoint and any number
//! of client connections on a seeded lossy in-memory network, driven on a
//! virtual clock that jumps straight to the next thing that happens; and
//! [`wire`], the plain wire format built by hand for the fuzz and attack
//! tests.

#![allow(dead_code)]

pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::MessageFactory;
use legume_derive::Message;
use legume_net::sim::{LinkConditions, SimNetwork};
use legume_net::{
    Config, ConnectToken, Connection, Event, PrivateKey, ServerEndpoint, ServerEvent, TokenParams,
};

/// A numbered test message with optional padding.
#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 20)]
pub struct Num {
    pub n: u32,
    pub pad: Vec<u8>,
}

/// A message type the receiver does not know (not in the factory).
#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 99)]
pub struct Unknown;

pub fn num(n: u32) -> Num {
    Num { n, pad: Vec::new() }
}

pub fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Num>().expect("no clash");
    Arc::new(f)
}

pub const SERVER: &str = "10.0.0.1:4000";

/// The wall-clock time (Unix seconds) of a secure world's start.
pub const UNIX_START: u64 = 1_700_000_000;

/// The private key of the secure tests' backend.
pub fn backend_key() -> PrivateKey {
    PrivateKey::from_bytes([0x5E; 32])
}

/// A token for [`SERVER`], issued at [`UNIX_START`] for client `client_id`,
/// with `user_data` starting with the id's bytes.
pub fn token_for(client_id: u64) -> ConnectToken {
    let mut params = TokenParams::new(
        Config::default().protocol_id,
        client_id,
        vec![server_addr()],
    );
    params.user_data[..8].copy_from_slice(&client_id.to_be_bytes());
    ConnectToken::issue_at(&backend_key(), &params, UNIX_START).expect("valid parameters")
}

pub fn server_addr() -> SocketAddr {
    SERVER.parse().expect("valid address")
}

pub fn client_addr(i: usize) -> SocketAddr {
    let i = u32::try_from(i).expect("small index");
    SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 5000))
}

/// A datagram the harness saw, recorded while [`World::tap`] is `Some`.
#[derive(Clone, Debug)]
pub struct Tapped {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
    /// False when recorded as its sender sent it, true when delivered.
    pub delivered: bool,
    /// For a delivery to the server: whether `from` had a connection there
    /// at that moment. False otherwise.
    pub peer_known: bool,
}

impl Tapped {
    /// The packet type byte (`docs/PROTOCOL.md` section 2), if present.
    pub fn kind(&self) -> Option<u8> {
        self.bytes.get(3).copied()
    }
}

pub struct SimClient {
    pub addr: SocketAddr,
    pub conn: Connection,
    pub events: Vec<Event>,
}

pub struct World {
    pub now: Instant,
    pub start: Instant,
    pub net: SimNetwork,
    pub server: ServerEndpoint,
    pub server_events: Vec<ServerEvent>,
    /// Whether `flush` moves the server's events into `server_events`
    /// (true); false leaves them in the endpoint for the test to poll.
    pub collect_server_events: bool,
    pub clients: Vec<SimClient>,
    pub config: Config,
    buf: Vec<u8>,
    /// Every datagram sent, by its sender; checked against the MTU.
    pub datagrams_sent: u64,
    /// Steps taken without the clock moving; a guard against busy loops.
    stalled_steps: u32,
    pub max_datagram: usize,
    /// When `Some`, every datagram sent and every datagram delivered is
    /// appended here (off by default: it copies each datagram).
    pub tap: Option<Vec<Tapped>>,
}

impl World {
    pub fn new(seed: u64, config: Config, conditions: LinkConditions) -> Self {
        let start = Instant::now();
        let mut net = SimNetwork::new(seed);
        net.set_default_conditions(conditions);
        let server =
            ServerEndpoint::with_insecure_seed(config.clone(), factory(), start, seed ^ 0x5EED);
        World {
            now: start,
            start,
            net,
            server,
            server_events: Vec::new(),
            collect_server_events: true,
            clients: Vec::new(),
            buf: vec![0; 65_536],
            datagrams_sent: 0,
            stalled_steps: 0,
            max_datagram: 0,
            tap: None,
            config,
        }
    }

    /// Adds a client that starts connecting now; returns its index.
    pub fn add_client(&mut self) -> usize {
        let i = self.clients.len();
        let nonce = 0xC11E_0000_0000 + i as u64;
        let mut conn = Connection::connect(self.config.clone(), factory(), self.now, nonce);
        conn.set_peer_addr(server_addr());
        self.clients.push(SimClient {
            addr: client_addr(i),
            conn,
            events: Vec::new(),
        });
        i
    }

    /// Secure mode: the server requires tokens sealed with `key` naming
    /// [`SERVER`]; its wall clock reads [`UNIX_START`] now.
    pub fn require_tokens(&mut self, key: PrivateKey) {
        let unix = UNIX_START + self.elapsed().as_secs();
        self.server
            .require_connect_tokens(key, server_addr(), self.now, unix);
    }

    /// Adds a secure client that starts connecting now with `token`.
    pub fn add_client_with_token(&mut self, token: &ConnectToken) -> usize {
        let i = self.clients.len();
        let nonce = 0x5EC0_0000_0000 + i as u64;
        let conn =
            Connection::connect_with_token(self.config.clone(), factory(), self.now, nonce, token);
        self.clients.push(SimClient {
            addr: client_addr(i),
            conn,
            events: Vec::new(),
        });
        i
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Feeds due datagrams, runs due timers, flushes transmits and events.
    pub fn step(&mut self) {
        let now = self.now;
        while let Some(d) = self.net.pop_due(now) {
            if let Some(tap) = &mut self.tap {
                tap.push(Tapped {
                    from: d.from,
                    to: d.to,
                    bytes: d.bytes.clone(),
                    delivered: true,
                    peer_known: d.to == server_addr() && self.server.peer(d.from).is_some(),
                });
            }
            if d.to == server_addr() {
                self.server.handle_datagram(now, d.from, &d.bytes);
            } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == d.to) {
                c.conn.handle_datagram(now, &d.bytes);
            }
            self.net.recycle(d.bytes);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        for c in &mut self.clients {
            if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                c.conn.handle_timeout(now);
            }
        }
        self.flush();
    }

    /// Sends everything the endpoints have to send and collects events.
    pub fn flush(&mut self) {
        let now = self.now;
        let server = server_addr();
        while let Some((to, n)) = self.server.poll_transmit(now, &mut self.buf) {
            self.datagrams_sent += 1;
            self.max_datagram = self.max_datagram.max(n);
            record_send(&mut self.tap, server, to, &self.buf[..n]);
            self.net.send(now, server, to, &self.buf[..n]);
        }
        while self.collect_server_events {
            let Some(e) = self.server.poll_event() else {
                break;
            };
            self.server_events.push(e);
        }
        for c in &mut self.clients {
            while let Some(n) = c.conn.poll_transmit(now, &mut self.buf) {
                self.datagrams_sent += 1;
                self.max_datagram = self.max_datagram.max(n);
                record_send(&mut self.tap, c.addr, server, &self.buf[..n]);
                self.net.send(now, c.addr, server, &self.buf[..n]);
            }
            while let Some(e) = c.conn.poll_event() {
                c.events.push(e);
            }
        }
    }

    /// The next instant anything happens, if anything will.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let mut t = self.net.next_delivery();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        consider(self.server.poll_timeout());
        for c in &self.clients {
            consider(c.conn.poll_timeout());
        }
        t
    }

    /// Advances the clock to the next wake-up (never past `limit`) and steps.
    /// Returns false when nothing is left to happen before `limit`.
    pub fn advance(&mut self, limit: Instant) -> bool {
        // Whatever the test queued since the last step goes out first.
        self.flush();
        let Some(next) = self.next_wakeup() else {
            return false;
        };
        if next > limit {
            self.now = limit;
            self.step();
            return false;
        }
        if next <= self.now {
            self.stalled_steps += 1;
            assert!(
                self.stalled_steps < 100_000,
                "the clock stopped at {:?}: a timer keeps firing with nothing to do",
                self.elapsed()
            );
        } else {
            self.stalled_steps = 0;
        }
        self.now = self.now.max(next);
        self.step();
        true
    }

    /// Runs until `done` holds or `max` of simulated time passes; returns
    /// whether `done` held.
    pub fn run_until(&mut self, max: Duration, mut done: impl FnMut(&mut World) -> bool) -> bool {
        let limit = self.now + max;
        self.step();
        loop {
            if done(self) {
                return true;
            }
            if !self.advance(limit) {
                return done(self);
            }
        }
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        while self.advance(limit) {}
    }

    pub fn connect_all(&mut self, max: Duration) -> bool {
        self.run_until(max, |w| w.clients.iter().all(|c| c.conn.is_connected()))
    }

    /// Removes and returns the `Num` values client `i` received, in order.
    pub fn client_nums(&mut self, i: usize) -> Vec<u32> {
        take_nums(&mut self.clients[i].events)
    }

    /// Removes and returns the `Num` values the server received from `peer`, in order.
    pub fn server_nums(&mut self, peer: SocketAddr) -> Vec<u32> {
        let mut out = Vec::new();
        self.server_events.retain(|e| match num_of(&e.event) {
            Some(n) if e.peer == peer => {
                out.push(n);
                false
            }
            _ => true,
        });
        out
    }
}

fn record_send(tap: &mut Option<Vec<Tapped>>, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
    if let Some(tap) = tap {
        tap.push(Tapped {
            from,
            to,
            bytes: bytes.to_vec(),
            delivered: false,
            peer_known: false,
        });
    }
}

impl World {
    /// Removes and returns the whole `Num` messages client `i` received, in order.
    pub fn client_msgs(&mut self, i: usize) -> Vec<Num> {
        take_msgs(&mut self.clients[i].events)
    }

    /// Removes and returns the whole `Num` messages the server received from
    /// `peer`, in order.
    pub fn server_msgs(&mut self, peer: SocketAddr) -> Vec<Num> {
        drain_nums(&mut self.server_events, |e| {
            (e.peer == peer).then_some(&e.event)
        })
    }
}

/// Removes the `Num` messages from `events` and returns them, in order.
pub fn take_msgs(events: &mut Vec<Event>) -> Vec<Num> {
    drain_nums(events, |e| Some(e))
}

/// Removes from `items` each whose event (`event_of`) is a `Num` message,
/// and returns those messages, in order.
fn drain_nums<T>(items: &mut Vec<T>, event_of: impl Fn(&T) -> Option<&Event>) -> Vec<Num> {
    let mut out = Vec::new();
    items.retain(|item| match event_of(item) {
        Some(Event::Message(m)) => match m.downcast_ref::<Num>() {
            Some(num) => {
                out.push(num.clone());
                false
            }
            None => true,
        },
        _ => true,
    });
    out
}

/// A `Num` whose `pad` of `len` bytes is a pattern derived from `n`, so that
/// [`pad_ok`] can tell a message reassembled wrongly.
pub fn padded(n: u32, len: usize) -> Num {
    Num {
        n,
        pad: (0..len).map(|j| pad_byte(n, j)).collect(),
    }
}

/// Whether `m.pad` is the pattern [`padded`] gives for `m.n` and `len` bytes.
pub fn pad_ok(m: &Num, len: usize) -> bool {
    m.pad.len() == len
        && m.pad
            .iter()
            .enumerate()
            .all(|(j, &b)| b == pad_byte(m.n, j))
}

fn pad_byte(n: u32, j: usize) -> u8 {
    (n as usize).wrapping_mul(31).wrapping_add(j) as u8
}

pub fn take_nums(events: &mut Vec<Event>) -> Vec<u32> {
    let mut out = Vec::new();
    events.retain(|e| match num_of(e) {
        Some(n) => {
            out.push(n);
            false
        }
        None => true,
    });
    out
}

/// The number of a `Num` message event.
fn num_of(e: &Event) -> Option<u32> {
    match e {
        Event::Message(m) => m.downcast_ref::<Num>().map(|num| num.n),
        _ => None,
    }
}

/// Checks exactly-once delivery of `0..n`; with `ordered`, also the order.
pub fn assert_exactly_once(got: &[u32], n: u32, ordered: bool, what: &str) {
    if ordered {
        let expected: Vec<u32> = (0..n).collect();
        if got != expected.as_slice() {
            let first_bad = got
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected.len()));
            panic!(
                "{what}: got {} messages, expected {n} in order; first difference at index {first_bad}",
                got.len()
            );
        }
    } else {
        let mut seen = vec![0u32; n as usize];
        for &x in got {
            assert!(x < n, "{what}: unexpected message {x}");
            seen[x as usize] += 1;
        }
        let missing = seen.iter().filter(|&&c| c == 0).count();
        let dups = seen.iter().filter(|&&c| c > 1).count();
        assert!(
            missing == 0 && dups == 0,
            "{what}: {missing} missing, {dups} duplicated of {n}"
        );
    }
}
