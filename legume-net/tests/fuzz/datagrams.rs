//! Target 2, datagrams: episodes of forged datagrams into a connected
//! client `Connection` and `ServerEndpoint` pair, with its two tests.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::Message;
use legume_net::sim::Rng;
use legume_net::{Config, Connection, Delivery, DisconnectReason, Event, ServerEndpoint, State};

use crate::checks::{
    accounted, check_counted, endpoint_counted, hits_replay_bug, is_response_for, stranger, Ending,
};
use crate::decode::fuzz_factory;
use crate::draw::Draw;
use crate::forge::{Gen, CLIENT, SERVER};
use crate::heap::{live_bytes, peak_bytes, reset_peak};
use crate::runner::{for_each_case, iters_or, long_run, on_input, trace};
use crate::util::*;
use crate::{MS, SEC};

/// Datagrams per episode: one connected pair takes this many.
const EPISODE: u64 = 256;

/// A client connected to a server endpoint by plain function calls.
pub(crate) struct Pair {
    pub(crate) now: Instant,
    /// When the server endpoint's clock started.
    epoch: Instant,
    config: Config,
    pub(crate) server: ServerEndpoint,
    pub(crate) client: Connection,
    pub(crate) peer: SocketAddr,
    buf: Vec<u8>,
    pub(crate) gen: Gen,
    client_end: Ending,
    server_end: Ending,
    /// Bytes of messages each side queued: [client, server].
    queued: [usize; 2],
    /// Whether events are checked (after the warm-up).
    checking: bool,
    /// Messages and message errors delivered on both sides while checking.
    messages: u64,
    errors: u64,
    /// Datagrams not fed because they would hit a known bug.
    skipped: u64,
}

impl Pair {
    /// Connects, then runs a warm-up exchange, capturing every datagram.
    pub(crate) fn new(rng: &mut Rng, config: Config) -> Pair {
        let factory = fuzz_factory();
        let now = Instant::now();
        let server = ServerEndpoint::with_insecure_seed(
            config.clone(),
            Arc::clone(&factory),
            now,
            rng.next_u64(),
        );
        let client = Connection::connect(config.clone(), factory, now, rng.next_u64());
        let mut p = Pair {
            now,
            epoch: now,
            server,
            peer: SocketAddr::from(([10, 1, 0, 1], 5000)),
            buf: vec![0; 65_536],
            gen: Gen::new(0, client.nonce()),
            client,
            client_end: Ending::default(),
            server_end: Ending::default(),
            queued: [0, 0],
            checking: false,
            messages: 0,
            errors: 0,
            skipped: 0,
            config,
        };
        for _ in 0..8 {
            p.pump(rng, 1.0);
            if p.client.is_connected() {
                break;
            }
            p.advance(100 * MS);
        }
        assert!(p.client.is_connected(), "handshake");
        p.gen.session = p.client.session();
        p.gen.max_frame = p.config.mtu.min(1400);
        // Warm-up: messages both ways, some fragmented, 70% delivered.
        p.send_some(rng, 30);
        for _ in 0..rng.below(6) {
            p.pump(rng, 0.7);
            p.advance(MS * rng.below(30) as u32);
        }
        p.collect_events();
        p.checking = true;
        p
    }

    /// Queues up to `max` honest messages on either side, some fragmented.
    fn send_some(&mut self, rng: &mut Rng, max: u64) {
        for _ in 0..rng.below(max) {
            let pad = if rng.chance(0.1) {
                3000
            } else {
                rng.below(64) as usize
            };
            let m = padded(rng.next_u64() as u32, pad);
            let delivery = *rng.pick(&[Delivery::Reliable, Delivery::ReliableOrdered]);
            let channel = usize::from(delivery == Delivery::ReliableOrdered);
            let to_server = rng.chance(0.5);
            let sent = if to_server {
                self.client.send(&m, delivery)
            } else {
                self.server.send(self.peer, &m, delivery)
            };
            if sent.is_ok() {
                let from = if to_server { CLIENT } else { SERVER };
                self.queued[from] += m.message_len();
                self.gen.ids[from][channel] = self.gen.ids[from][channel].wrapping_add(1);
            }
        }
    }

    /// Sends what both sides have to send, delivering each datagram with
    /// probability `deliver`; collects events.
    pub(crate) fn pump(&mut self, rng: &mut Rng, deliver: f64) {
        for _ in 0..4 {
            let mut moved = 0;
            while let Some(n) = self.client.poll_transmit(self.now, &mut self.buf) {
                moved += 1;
                assert!(moved < 100_000, "the client never stops sending");
                let d = &self.buf[..n];
                self.gen.saw_sent(rng, CLIENT, d);
                if rng.chance(deliver) {
                    self.gen.saw_delivered(rng, CLIENT, d);
                    self.server.handle_datagram(self.now, self.peer, d);
                }
            }
            while let Some((to, n)) = self.server.poll_transmit(self.now, &mut self.buf) {
                moved += 1;
                assert!(moved < 100_000, "the server never stops sending");
                if to != self.peer {
                    continue; // a reply to a stranger
                }
                let d = &self.buf[..n];
                self.gen.saw_sent(rng, SERVER, d);
                if rng.chance(deliver) {
                    self.gen.saw_delivered(rng, SERVER, d);
                    self.client.handle_datagram(self.now, d);
                }
            }
            self.collect_events();
            if moved == 0 {
                break;
            }
        }
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.client.poll_event() {
            if self.checking {
                self.messages += u64::from(matches!(e, Event::Message(_)));
                self.errors += u64::from(matches!(e, Event::Error(_)));
                self.client_end.on_event("client", &e);
            }
        }
        while let Some(e) = self.server.poll_event() {
            assert_eq!(e.peer, self.peer, "an event for another peer: {e:?}");
            if self.checking {
                self.messages += u64::from(matches!(e.event, Event::Message(_)));
                self.errors += u64::from(matches!(e.event, Event::Error(_)));
                self.server_end.on_event("server peer", &e.event);
            }
        }
    }

    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.collect_events();
    }

    /// Feeds one datagram to the client and checks it was counted once.
    fn feed_client(&mut self, d: &[u8]) {
        self.gen.saw_fuzzed(SERVER, d);
        let before = accounted(&self.client.stats());
        let now = self.now;
        on_input("client handle_datagram", d, || {
            self.client.handle_datagram(now, d)
        });
        let after = accounted(&self.client.stats());
        check_counted("client", before, after, d);
        self.collect_events();
        self.client_end.check_state("client", self.client.state());
    }

    /// Feeds one datagram to the server from `from` and checks it was counted.
    fn feed_server(&mut self, from: SocketAddr, d: &[u8]) {
        let lifetime = self.config.server.challenge_lifetime;
        if self.server.peer(from).is_none() && hits_replay_bug(d, self.now, self.epoch, lifetime) {
            self.skipped += 1;
            return;
        }
        if from == self.peer {
            self.gen.saw_fuzzed(CLIENT, d);
        }
        let peer_stats = |s: &ServerEndpoint| s.peer(from).map(|c| accounted(&c.stats()));
        let before = peer_stats(&self.server);
        let endpoint_before = endpoint_counted(&self.server.stats());
        let now = self.now;
        trace!(
            "  to server from {from} (peer {:?}): {d:02x?}",
            before.is_some()
        );
        on_input("server handle_datagram", d, || {
            self.server.handle_datagram(now, from, d)
        });
        match before {
            Some(before) => {
                let after = peer_stats(&self.server).expect("a peer stays until drained");
                if is_response_for(d, self.gen.nonce) {
                    assert_eq!(
                        after, before,
                        "server peer: a retransmitted response reached it"
                    );
                } else {
                    check_counted("server peer", before, after, d);
                }
            }
            None => assert!(
                endpoint_counted(&self.server.stats()) > endpoint_before,
                "server: a datagram from {from} not counted: {d:02x?}"
            ),
        }
        assert!(
            self.server.peer_count() <= 1,
            "a fuzzed datagram opened a connection"
        );
        self.collect_events();
        if let Some(conn) = self.server.peer(self.peer) {
            self.server_end.check_state("server peer", conn.state());
        }
    }
}

/// A configuration for one episode: the defaults, or small limits the
/// fuzzer can reach.
fn episode_config(rng: &mut Rng) -> Config {
    if rng.chance(0.5) {
        return Config::default();
    }
    Config {
        mtu: *rng.pick(&[576, 1200, 1400]),
        limits: legume_net::Limits {
            max_message_size: 4096,
            max_reassembly_bytes: 8192,
            max_reorder_bytes: 8192,
            ..legume_net::Limits::default()
        },
        ..Config::default()
    }
}

/// What the datagram target saw.
#[derive(Debug, Default)]
struct DatagramTally {
    episodes: u64,
    /// Episodes that fuzz the handshake, and how many of them connected.
    handshakes: u64,
    handshakes_connected: u64,
    datagrams: u64,
    client_valid: u64,
    client_invalid: u64,
    client_duplicate: u64,
    messages: u64,
    message_errors: u64,
    closed: u64,
    /// The largest heap growth of an episode, with default limits and with
    /// 8 KiB reassembly and reorder limits.
    max_heap_growth: i64,
    max_heap_growth_small: i64,
    /// Datagrams not fed because they would hit a known bug.
    skipped: u64,
}

impl fmt::Display for DatagramTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} episodes ({} fuzzing the handshake, {} of them connected), {} datagrams; client: {} valid, {} invalid, {} duplicate; \
             server and client delivered {} messages and {} errors; {} episodes ended \
             closed; largest heap growth {} KiB (default limits), {} KiB (8 KiB limits); \
             {} datagrams skipped (known replay bug)",
            self.episodes,
            self.handshakes,
            self.handshakes_connected,
            self.datagrams,
            self.client_valid,
            self.client_invalid,
            self.client_duplicate,
            self.messages,
            self.message_errors,
            self.closed,
            self.max_heap_growth / 1024,
            self.max_heap_growth_small / 1024,
            self.skipped
        )
    }
}

fn run_episode(rng: &mut Rng, datagrams: u64, at: &mut u64, tally: &mut DatagramTally) {
    let config = episode_config(rng);
    let mut p = Pair::new(rng, config.clone());
    let start_stats = p.client.stats();
    let base = live_bytes();
    reset_peak();
    for i in 0..datagrams {
        *at = i;
        match rng.below(100) {
            0..=1 => p.send_some(rng, 6),
            2..=5 => p.pump(rng, 0.8),
            6..=9 => p.advance(MS * rng.below(50) as u32),
            10 if rng.chance(0.25) => {
                let jump = *rng.pick(&[SEC, 2 * SEC, 5 * SEC, 9 * SEC, 11 * SEC, 3600 * SEC]);
                p.advance(jump);
            }
            _ => {}
        }
        match rng.below(100) {
            0..=44 => {
                let d = p.gen.datagram(rng, SERVER, 0.85);
                p.feed_client(&d);
            }
            45..=89 => {
                let d = p.gen.datagram(rng, CLIENT, 0.85);
                let peer = p.peer;
                p.feed_server(peer, &d);
            }
            _ => {
                let d = p.gen.datagram(rng, CLIENT, 0.5);
                let from = stranger(rng);
                p.feed_server(from, &d);
            }
        }
    }
    p.pump(rng, 1.0);
    // Bounded queues and heap.
    let client = p.client.stats();
    let server = p.server.peer(p.peer).map(Connection::stats);
    for (who, s, queued) in [
        ("client", Some(&client), p.queued[CLIENT]),
        ("server", server.as_ref(), p.queued[SERVER]),
    ] {
        let Some(s) = s else { continue };
        assert!(
            s.out_buffer_bytes <= queued,
            "{who}: {} bytes buffered of {queued} queued",
            s.out_buffer_bytes
        );
        assert!(
            s.reorder_queue <= 1024,
            "{who}: reorder queue {}",
            s.reorder_queue
        );
    }
    let growth = peak_bytes() - base;
    let limits = config.limits.max_reassembly_bytes + config.limits.max_reorder_bytes;
    // Both connections' reassembly and reorder buffers (decoded messages
    // may take more room than their bytes: a 24-byte `Vec` for a 1-byte
    // empty one), plus the captured datagrams (4 pools of 256 datagrams of
    // at most 1,400 bytes), the receive windows' tables and transient copies.
    let bound = (2 * (config.limits.max_reassembly_bytes + 24 * config.limits.max_reorder_bytes)
        + (3 << 20)) as i64;
    assert!(
        growth <= bound,
        "the heap grew by {growth} bytes (limits {limits} per connection)"
    );
    tally.episodes += 1;
    tally.datagrams += datagrams;
    tally.client_valid += client.in_packets - start_stats.in_packets;
    tally.client_invalid += client.dropped_invalid - start_stats.dropped_invalid;
    tally.client_duplicate += client.dropped_duplicate - start_stats.dropped_duplicate;
    tally.messages += p.messages;
    tally.message_errors += p.errors;
    tally.skipped += p.skipped;
    tally.closed += u64::from(!p.client.is_connected());
    if std::env::var_os("LEGUME_FUZZ_DEBUG").is_some() {
        eprintln!(
            "episode: client {:?} server {:?}",
            p.client_end.reason, p.server_end.reason
        );
    }
    if config.limits.max_reorder_bytes < Config::default().limits.max_reorder_bytes {
        tally.max_heap_growth_small = tally.max_heap_growth_small.max(growth);
    } else {
        tally.max_heap_growth = tally.max_heap_growth.max(growth);
    }
}

/// A client's events during its handshake: one ending at most, and only
/// in an order the state machine allows.
#[derive(Debug, Default)]
struct HandshakeWatch {
    connected: bool,
    ended: Option<String>,
}

impl HandshakeWatch {
    fn on_event(&mut self, e: &Event) {
        assert!(self.ended.is_none(), "client: {e:?} after {:?}", self.ended);
        match e {
            Event::Connected => {
                assert!(!self.connected, "client: connected twice");
                self.connected = true;
            }
            Event::Rejected { .. } => {
                assert!(!self.connected, "client: rejected after connecting");
                self.ended = Some(format!("{e:?}"));
            }
            Event::Disconnected(DisconnectReason::ConnectTimedOut) => {
                assert!(!self.connected, "client: connect timeout after connecting");
                self.ended = Some(format!("{e:?}"));
            }
            Event::Disconnected(
                DisconnectReason::Remote(_)
                | DisconnectReason::TimedOut
                | DisconnectReason::LimitExceeded(_),
            ) => {
                assert!(self.connected, "client: {e:?} before connecting");
                self.ended = Some(format!("{e:?}"));
            }
            Event::Message(_) | Event::Error(_) => {
                assert!(self.connected, "client: {e:?} before connecting");
            }
            other => panic!("client: unexpected event {other:?}"),
        }
    }

    fn check_state(&self, state: State) {
        let ok = match state {
            State::Connecting => !self.connected && self.ended.is_none(),
            State::Connected => self.connected && self.ended.is_none(),
            State::Disconnected | State::Errored => self.ended.is_some(),
        };
        assert!(ok, "client: state {state:?} after {self:?}");
    }
}

/// An episode that fuzzes the handshake: datagrams to a connecting client
/// and to the server while the real handshake goes on over a lossy link.
/// The client must end connected, rejected or timed out, never stuck.
fn run_handshake_episode(rng: &mut Rng, datagrams: u64, at: &mut u64, tally: &mut DatagramTally) {
    let config = Config {
        connect_timeout: SEC * (1 + rng.below(10) as u32),
        ..episode_config(rng)
    };
    let factory = fuzz_factory();
    let mut now = Instant::now();
    let deadline = now + config.connect_timeout;
    let epoch = now;
    let lifetime = config.server.challenge_lifetime;
    let mut server = ServerEndpoint::with_insecure_seed(
        config.clone(),
        Arc::clone(&factory),
        now,
        rng.next_u64(),
    );
    let mut client = Connection::connect(config, factory, now, rng.next_u64());
    let peer = SocketAddr::from(([10, 1, 0, 1], 5000));
    let mut gen = Gen::new(0, client.nonce());
    let mut watch = HandshakeWatch::default();
    let mut buf = vec![0u8; 65_536];
    for i in 0..datagrams {
        *at = i;
        if rng.chance(0.15) {
            now += MS * rng.below(400) as u32;
            client.handle_timeout(now);
            server.handle_timeout(now);
            while let Some(n) = client.poll_transmit(now, &mut buf) {
                gen.saw_sent(rng, CLIENT, &buf[..n]);
                if rng.chance(0.6) {
                    server.handle_datagram(now, peer, &buf[..n]);
                }
            }
            while let Some((to, n)) = server.poll_transmit(now, &mut buf) {
                if to == peer {
                    gen.saw_sent(rng, SERVER, &buf[..n]);
                    if rng.chance(0.6) {
                        client.handle_datagram(now, &buf[..n]);
                    }
                }
            }
            gen.session = client.session();
        }
        let to_client = rng.chance(0.6);
        let d = gen.datagram(rng, if to_client { SERVER } else { CLIENT }, 0.5);
        if to_client {
            let before = accounted(&client.stats());
            on_input("client handle_datagram", &d, || {
                client.handle_datagram(now, &d)
            });
            check_counted("client", before, accounted(&client.stats()), &d);
        } else {
            let from = if rng.chance(0.7) { peer } else { stranger(rng) };
            let before = server.peer(from).map(|c| accounted(&c.stats()));
            if before.is_none() && hits_replay_bug(&d, now, epoch, lifetime) {
                tally.skipped += 1;
                continue;
            }
            let endpoint_before = endpoint_counted(&server.stats());
            on_input("server handle_datagram", &d, || {
                server.handle_datagram(now, from, &d)
            });
            match before {
                Some(before) => {
                    let after = accounted(&server.peer(from).expect("kept").stats());
                    if !is_response_for(&d, gen.nonce) {
                        check_counted("server peer", before, after, &d);
                    }
                }
                None => assert!(
                    endpoint_counted(&server.stats()) > endpoint_before,
                    "server: not counted: {d:02x?}"
                ),
            }
            assert!(
                server.peer_count() <= 1,
                "a fuzzed datagram opened a connection"
            );
            assert!(
                server.peers().all(|(a, _)| a == peer),
                "a stranger got a connection"
            );
        }
        while let Some(e) = client.poll_event() {
            watch.on_event(&e);
        }
        while server.poll_event().is_some() {}
        watch.check_state(client.state());
    }
    // Past the connect timeout the attempt is over, one way or the other.
    now = now.max(deadline + MS);
    client.handle_timeout(now);
    while let Some(e) = client.poll_event() {
        watch.on_event(&e);
    }
    watch.check_state(client.state());
    assert_ne!(
        client.state(),
        State::Connecting,
        "still connecting past the timeout"
    );
    tally.episodes += 1;
    tally.handshakes += 1;
    tally.datagrams += datagrams;
    tally.handshakes_connected += u64::from(watch.connected);
}

/// Target 2: datagrams into a connected client and a server endpoint.
/// `iters` counts datagrams, fed in whole episodes of [`EPISODE`] (so that
/// any case replays alone), each to a new pair.
fn target_datagrams(seed: u64, iters: u64) -> DatagramTally {
    let mut tally = DatagramTally::default();
    let episodes = iters.div_ceil(EPISODE);
    for_each_case("datagrams", seed, episodes, |_, rng, at| {
        if rng.chance(0.15) {
            run_handshake_episode(rng, EPISODE, at, &mut tally);
        } else {
            run_episode(rng, EPISODE, at, &mut tally);
        }
    });
    tally
}

#[test]
fn datagrams() {
    let tally = target_datagrams(0xDA7A_6A3E, 300 * EPISODE);
    println!("{tally}");
    assert!(
        tally.client_valid > 500 && tally.client_invalid > 500 && tally.client_duplicate > 50,
        "{tally}"
    );
    assert!(tally.messages > 100, "{tally}");
}

#[test]
#[ignore = "long fuzz run: LEGUME_FUZZ_ITERS, LEGUME_FUZZ_SEED"]
fn datagrams_long() {
    long_run(
        "datagrams",
        iters_or(1_000_000),
        "datagrams",
        target_datagrams,
    );
}
