//! Shared by the legume-net benches: a 32-byte message, and one client
//! connection plus a server endpoint driven on a simulated clock over a
//! [`SimNetwork`] (the same loop as `tests/util`'s `World`, for one client).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::{Message, MessageFactory};
use legume_derive::Message;
use legume_net::sim::{LinkConditions, SimNetwork};
use legume_net::{
    Config, ConnectToken, Connection, Event, PrivateKey, ServerEndpoint, TokenParams,
};

/// 31 bytes of fields plus the one-byte type id: 32 bytes on the wire.
#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 20)]
pub struct Msg32 {
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub d: u32,
    pub e: u16,
    pub f: u8,
}

/// The encoded size of [`Msg32`], type id included.
pub const MSG_LEN: usize = 32;

pub fn msg32() -> Msg32 {
    let m = Msg32 {
        a: 1,
        b: 2,
        c: 3,
        d: 4,
        e: 5,
        f: 6,
    };
    assert_eq!(m.message_len(), MSG_LEN, "Msg32 must encode to 32 bytes");
    m
}

pub fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Msg32>().expect("no clash");
    Arc::new(f)
}

pub fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 4000))
}

pub fn client_addr() -> SocketAddr {
    SocketAddr::from(([10, 1, 0, 1], 5000))
}

/// Panics on an event that means the benchmark is no longer measuring what
/// it claims (a connection that ended, a message that did not decode).
pub fn check_event(e: &Event) {
    match e {
        Event::Disconnected(r) => panic!("bench connection closed: {r:?}"),
        Event::Error(e) => panic!("bench message error: {e}"),
        Event::Rejected { reason } => panic!("bench connection rejected: {reason}"),
        _ => {}
    }
}

/// One client and one server endpoint on an in-memory link.
pub struct Pair {
    pub now: Instant,
    pub net: SimNetwork,
    pub server: ServerEndpoint,
    pub client: Connection,
    /// Messages the server has delivered to the app so far.
    pub server_msgs: u64,
    buf: Vec<u8>,
    stalled: u32,
}

impl Pair {
    /// A connected pair; `conditions` apply to both directions.
    pub fn connected(seed: u64, conditions: LinkConditions) -> Self {
        Self::connect(seed, conditions, false)
    }

    /// A connected pair in the secure mode (a connect token, every packet
    /// sealed).
    pub fn connected_secure(seed: u64, conditions: LinkConditions) -> Self {
        Self::connect(seed, conditions, true)
    }

    fn connect(seed: u64, conditions: LinkConditions, secure: bool) -> Self {
        let now = Instant::now();
        let mut net = SimNetwork::new(seed);
        net.set_default_conditions(conditions);
        let config = Config::default();
        let mut server =
            ServerEndpoint::with_insecure_seed(config.clone(), factory(), now, seed ^ 0x5EED);
        let client = if secure {
            let key = PrivateKey::from_bytes([7; 32]);
            let unix = 1_700_000_000;
            server.require_connect_tokens(key.clone(), server_addr(), now, unix);
            let params = TokenParams::new(config.protocol_id, 1, vec![server_addr()]);
            let token = ConnectToken::issue_at(&key, &params, unix).expect("a token");
            Connection::connect_with_token(config, factory(), now, 0xC11E_0001, &token)
        } else {
            Connection::connect(config, factory(), now, 0xC11E_0001)
        };
        let mut pair = Pair {
            now,
            net,
            server,
            client,
            server_msgs: 0,
            buf: vec![0; 65_536],
            stalled: 0,
        };
        let limit = now + Duration::from_secs(10);
        while !pair.client.is_connected() {
            assert!(pair.advance(), "no progress while connecting");
            assert!(pair.now < limit, "handshake did not complete");
        }
        pair
    }

    /// Feeds due datagrams, runs due timers, then flushes.
    pub fn step(&mut self) {
        let now = self.now;
        let server = server_addr();
        while let Some(d) = self.net.pop_due(now) {
            if d.to == server {
                self.server.handle_datagram(now, d.from, &d.bytes);
            } else {
                self.client.handle_datagram(now, &d.bytes);
            }
            self.net.recycle(d.bytes);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        self.flush();
    }

    /// Sends what both ends have to send and drains their events.
    pub fn flush(&mut self) {
        let now = self.now;
        let (server, client) = (server_addr(), client_addr());
        while let Some((to, n)) = self.server.poll_transmit(now, &mut self.buf) {
            self.net.send(now, server, to, &self.buf[..n]);
        }
        while let Some(e) = self.server.poll_event() {
            check_event(&e.event);
            if matches!(e.event, Event::Message(_)) {
                self.server_msgs += 1;
            }
        }
        while let Some(n) = self.client.poll_transmit(now, &mut self.buf) {
            self.net.send(now, client, server, &self.buf[..n]);
        }
        while let Some(e) = self.client.poll_event() {
            check_event(&e);
        }
    }

    /// Flushes, jumps the clock to the next thing that happens and steps.
    /// Returns false when nothing is left to happen.
    pub fn advance(&mut self) -> bool {
        self.flush();
        let next = [
            self.net.next_delivery(),
            self.server.poll_timeout(),
            self.client.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        if next <= self.now {
            self.stalled += 1;
            assert!(self.stalled < 100_000, "the simulated clock stopped");
        } else {
            self.stalled = 0;
            self.now = next;
        }
        self.step();
        true
    }
}
