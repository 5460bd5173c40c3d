//! The secure mode (`docs/PROTOCOL.md` section 8) on the simulated link:
//! connect tokens accepted and refused, every packet authenticated,
//! replays dropped, and the loss torture passing as in the plain mode.

mod util;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use legume_net::secure::SEALED_TOKEN_LEN;
use legume_net::sim::{LinkConditions, Rng};
use legume_net::{
    Config, ConnectToken, Connection, Decision, Delivery, DisconnectReason, Event, PrivateKey,
    ServerEndpoint, TokenParams,
};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn secure_world(seed: u64, config: Config, link: LinkConditions) -> World {
    let mut w = World::new(seed, config, link);
    w.require_tokens(backend_key());
    w
}

fn link() -> LinkConditions {
    LinkConditions::perfect().with_latency(10 * MS)
}

#[test]
fn a_valid_token_connects_and_the_hook_sees_who() {
    let mut w = secure_world(1, Config::default(), link());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    w.server.set_connect_hook(Box::new(move |r| {
        log.lock().unwrap().push((r.client_id, r.user_data));
        Decision::Accept
    }));
    w.tap = Some(Vec::new());
    let c = w.add_client_with_token(&token_for(4242));
    assert!(w.connect_all(5 * SEC));
    let peer = w.clients[c].addr;
    assert!(w.clients[c].conn.is_secure());
    assert!(w.server.peer(peer).unwrap().is_secure());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, Some(4242));
    assert_eq!(seen[0].1.unwrap()[..8], 4242u64.to_be_bytes());

    // Messages flow both ways, and none of their bytes is on the wire.
    let secret = |n: u32| Num {
        n,
        pad: b"attack at dawn, bring the cheese".to_vec(),
    };
    for n in 0..50 {
        w.clients[c]
            .conn
            .send(&secret(n), Delivery::ReliableOrdered)
            .unwrap();
        w.server.send(peer, &secret(n), Delivery::Reliable).unwrap();
    }
    w.run_for(2 * SEC);
    assert_exactly_once(&w.server_nums(peer), 50, true, "client to server");
    assert_exactly_once(&w.client_nums(c), 50, false, "server to client");
    let tap = w.tap.take().unwrap();
    assert!(tap.len() > 10);
    for d in &tap {
        let leaked = d.bytes.windows(14).any(|win| win == b"attack at dawn");
        assert!(!leaked, "plaintext on the wire: {:?}", d.bytes);
        // Every datagram is a handshake packet or sealed (at least a tag).
        assert!(
            matches!(d.kind(), Some(0x02 | 0x06 | 0x08 | 0x09 | 0x0A)),
            "{d:?}"
        );
    }
    let (cs, ss) = (
        w.clients[c].conn.stats(),
        w.server.peer(peer).unwrap().stats(),
    );
    assert_eq!(
        (cs.dropped_unauthenticated, ss.dropped_unauthenticated),
        (0, 0)
    );
    assert_eq!(w.clients[c].conn.state(), legume_net::State::Connected);
}

/// The reason a client was refused, if it was.
fn rejection(w: &World, c: usize) -> Option<String> {
    w.clients[c].events.iter().find_map(|e| match e {
        Event::Rejected { reason } => Some(reason.clone()),
        _ => None,
    })
}

fn issue(key: &PrivateKey, params: &TokenParams, at: u64) -> ConnectToken {
    ConnectToken::issue_at(key, params, at).unwrap()
}

#[test]
fn refused_tokens_say_why_where_safe() {
    let params = |protocol_id, servers: Vec<SocketAddr>| TokenParams::new(protocol_id, 1, servers);
    let other_server: SocketAddr = "10.0.0.2:4000".parse().unwrap();
    let cases: Vec<(&str, ConnectToken, Option<&str>)> = vec![
        (
            "expired",
            issue(
                &backend_key(),
                &params(0, vec![server_addr()]),
                UNIX_START - 31,
            ),
            Some("connect token has expired"),
        ),
        (
            "wrong server",
            issue(&backend_key(), &params(0, vec![other_server]), UNIX_START),
            Some("connect token is not valid for this server"),
        ),
        (
            "wrong protocol",
            issue(&backend_key(), &params(7, vec![server_addr()]), UNIX_START),
            Some("connect token is for protocol id 0x7, not this server's"),
        ),
        (
            "forged: another key",
            issue(
                &PrivateKey::from_bytes([1; 32]),
                &params(0, vec![server_addr()]),
                UNIX_START,
            ),
            None,
        ),
    ];
    for (what, token, reason) in cases {
        let config = Config {
            connect_timeout: 3 * SEC,
            ..Config::default()
        };
        let mut w = secure_world(2, config, link());
        let c = w.add_client_with_token(&token);
        w.run_for(5 * SEC);
        assert_eq!(w.server.peer_count(), 0, "{what}");
        assert!(w.server.stats().bad_tokens >= 1, "{what}");
        assert_eq!(w.server.stats().challenges_sent, 0, "{what}");
        assert_eq!(rejection(&w, c).as_deref(), reason, "{what}");
        if reason.is_none() {
            // A forgery gets no answer: the attempt times out.
            assert!(
                w.clients[c]
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Disconnected(DisconnectReason::ConnectTimedOut))),
                "{what}"
            );
        }
    }
}

#[test]
fn a_plain_client_is_told_to_bring_a_token() {
    let mut w = secure_world(3, Config::default(), link());
    let c = w.add_client();
    w.run_for(2 * SEC);
    assert_eq!(
        rejection(&w, c).as_deref(),
        Some("this server requires a connect token")
    );
    assert_eq!(w.server.peer_count(), 0);
}

/// A SECURE_CONNECT_REQUEST as `docs/PROTOCOL.md` 8.8 lays it out.
fn request_bytes(nonce: u64, sealed: &[u8]) -> Vec<u8> {
    let mut d = b"LG\x02\x08".to_vec();
    d.extend_from_slice(&nonce.to_be_bytes());
    d.extend_from_slice(sealed);
    d.resize(1200, 0);
    d
}

fn secure_endpoint(now: Instant, config: Config) -> ServerEndpoint {
    let mut s = ServerEndpoint::with_insecure_seed(config, factory(), now, 9);
    s.require_connect_tokens(backend_key(), server_addr(), now, UNIX_START);
    s
}

/// The packet type bytes the endpoint has queued to send.
fn replies(s: &mut ServerEndpoint, now: Instant) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let mut kinds = Vec::new();
    while s.poll_transmit(now, &mut buf).is_some() {
        kinds.push(buf[3]);
    }
    kinds
}

#[test]
fn a_token_with_any_bit_flipped_gets_no_challenge() {
    let now = Instant::now();
    let mut s = secure_endpoint(now, Config::default());
    let sealed = token_for(1).sealed();
    s.handle_datagram(now, client_addr(0), &request_bytes(1, &sealed));
    assert_eq!(
        replies(&mut s, now),
        vec![0x02],
        "the genuine token is challenged"
    );
    for bit in 0..SEALED_TOKEN_LEN * 8 {
        let mut t = sealed;
        t[bit / 8] ^= 1 << (bit % 8);
        s.handle_datagram(now, client_addr(1 + bit), &request_bytes(1, &t));
        for kind in replies(&mut s, now) {
            // At most a REJECT (expired, other protocol or version), never a challenge.
            assert_eq!(kind, 0x05, "bit {bit}");
        }
    }
    let st = s.stats();
    assert_eq!(st.bad_tokens, SEALED_TOKEN_LEN as u64 * 8);
    assert_eq!(st.challenges_sent, 1);
    assert_eq!(s.peer_count(), 0);
    assert_eq!(st.handshake_outcomes(), 1 + SEALED_TOKEN_LEN as u64 * 8);
}

/// Runs a client's handshake by hand up to its SECURE_CHALLENGE_RESPONSE.
fn captured_response(s: &mut ServerEndpoint, c: &mut Connection, now: Instant) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    for _ in 0..4 {
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            if buf[3] == 0x09 {
                return buf[..n].to_vec();
            }
            s.handle_datagram(now, client_addr(0), &buf[..n]);
        }
        while let Some((_, n)) = s.poll_transmit(now, &mut buf) {
            c.handle_datagram(now, &buf[..n]);
        }
    }
    panic!("no challenge response");
}

#[test]
fn a_challenge_response_with_any_bit_flipped_is_not_admitted() {
    let now = Instant::now();
    let config = Config {
        server: legume_net::ServerConfig {
            connect_rate_per_source: u32::MAX,
            ..legume_net::ServerConfig::default()
        },
        ..Config::default()
    };
    let mut s = secure_endpoint(now, config.clone());
    let mut c = Connection::connect_with_token(config, factory(), now, 3, &token_for(1));
    let response = captured_response(&mut s, &mut c, now);
    assert_eq!(response.len(), 1200);
    // The authenticated and encrypted part: everything before the padding.
    for bit in 0..892 * 8 {
        let mut r = response.clone();
        r[bit / 8] ^= 1 << (bit % 8);
        s.handle_datagram(now, client_addr(0), &r);
        assert_eq!(s.peer_count(), 0, "bit {bit} admitted");
    }
    let _ = replies(&mut s, now);
    assert_eq!(s.stats().accepted, 0);
    s.handle_datagram(now, client_addr(0), &response);
    assert_eq!(s.stats().accepted, 1, "the genuine response");
    // From another address the genuine response is refused: its cookie is
    // for the first address; and a request with its token is refused, the
    // token being in use now.
    let before = s.stats();
    s.handle_datagram(now, client_addr(9), &response);
    assert_eq!(s.stats().bad_cookies, before.bad_cookies + 1);
    let mut request = request_bytes(3, &response[44..44 + SEALED_TOKEN_LEN]);
    s.handle_datagram(now, client_addr(9), &request);
    assert_eq!(s.stats().reused_tokens, 1);
    request[4] ^= 1; // another nonce: still the same token
    s.handle_datagram(now, client_addr(10), &request);
    assert_eq!(s.stats().reused_tokens, 2);
    assert_eq!(s.peer_count(), 1);
}

#[test]
fn a_token_in_use_is_refused_from_another_address() {
    let mut w = secure_world(4, Config::default(), link());
    w.tap = Some(Vec::new());
    let token = token_for(8);
    let a = w.add_client_with_token(&token);
    assert!(w.connect_all(5 * SEC));
    let captured = w
        .tap
        .take()
        .unwrap()
        .into_iter()
        .find(|d| d.kind() == Some(0x08) && !d.delivered)
        .expect("a connect request");
    // An observer replays the request from its own address: no challenge.
    let attacker: SocketAddr = "10.9.9.9:666".parse().unwrap();
    let before = w.server.stats();
    w.server.handle_datagram(w.now, attacker, &captured.bytes);
    let after = w.server.stats();
    assert_eq!(after.reused_tokens, before.reused_tokens + 1);
    assert_eq!(after.challenges_sent, before.challenges_sent);
    // Another client with the same token, from another address: refused,
    // while the first stays connected.
    let config = Config {
        connect_timeout: 2 * SEC,
        ..Config::default()
    };
    w.config = config;
    let b = w.add_client_with_token(&token);
    w.run_for(4 * SEC);
    assert!(w.clients[a].conn.is_connected());
    assert!(!w.clients[b].conn.is_connected());
    assert_eq!(w.server.peer_count(), 1);
    assert!(w.server.stats().reused_tokens >= 2);
}

/// A client and a secure server wired directly (no delay, no loss); each
/// datagram can be preceded by a corrupted copy.
struct Pair {
    now: Instant,
    server: ServerEndpoint,
    client: Connection,
    rng: Rng,
    /// Corrupted copies delivered: (to the server, to the client).
    corrupted: (u64, u64),
    corrupt: bool,
    /// DATA datagrams the client sent, when recording.
    recorded: Option<Vec<Vec<u8>>>,
}

impl Pair {
    fn new(seed: u64) -> Self {
        let now = Instant::now();
        let server = secure_endpoint(now, Config::default());
        let client =
            Connection::connect_with_token(Config::default(), factory(), now, seed, &token_for(2));
        Pair {
            now,
            server,
            client,
            rng: Rng::new(seed),
            corrupted: (0, 0),
            corrupt: false,
            recorded: None,
        }
    }

    fn flipped(&mut self, d: &[u8]) -> Vec<u8> {
        let mut bad = d.to_vec();
        let bit = self.rng.gen_range(0..d.len() as u64 * 8) as usize;
        bad[bit / 8] ^= 1 << (bit % 8);
        bad
    }

    fn round(&mut self) {
        let addr = client_addr(0);
        let mut buf = [0u8; 1500];
        while let Some(n) = self.client.poll_transmit(self.now, &mut buf) {
            if self.corrupt {
                let bad = self.flipped(&buf[..n]);
                self.server.handle_datagram(self.now, addr, &bad);
                self.corrupted.0 += 1;
            }
            if let Some(r) = &mut self.recorded {
                if buf[3] == 0x06 {
                    r.push(buf[..n].to_vec());
                }
            }
            self.server.handle_datagram(self.now, addr, &buf[..n]);
        }
        while let Some((_, n)) = self.server.poll_transmit(self.now, &mut buf) {
            if self.corrupt {
                let bad = self.flipped(&buf[..n]);
                self.client.handle_datagram(self.now, &bad);
                self.corrupted.1 += 1;
            }
            self.client.handle_datagram(self.now, &buf[..n]);
        }
        self.now += 2 * MS;
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
    }

    fn connect(&mut self) {
        for _ in 0..50 {
            self.round();
        }
        assert!(self.client.is_connected());
    }

    fn server_stats(&self) -> legume_net::Stats {
        self.server.peer(client_addr(0)).expect("connected").stats()
    }
}

/// Dropped for any reason: what a corrupted datagram must end as.
fn dropped(s: &legume_net::Stats) -> u64 {
    s.dropped_unauthenticated + s.dropped_invalid + s.dropped_duplicate
}

#[test]
fn every_packet_with_a_flipped_bit_is_dropped_and_counted_and_traffic_goes_on() {
    let mut p = Pair::new(11);
    p.connect();
    p.corrupt = true;
    let (c0, s0) = (p.client.stats(), p.server_stats());
    assert_eq!((dropped(&c0), dropped(&s0)), (0, 0));
    let n = 300;
    for i in 0..n {
        let m = padded(i, (i as usize * 37) % 3000);
        p.client.send(&m, Delivery::ReliableOrdered).unwrap();
        p.server
            .send(client_addr(0), &m, Delivery::ReliableOrdered)
            .unwrap();
    }
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    for _ in 0..2000 {
        p.round();
        while let Some(e) = p.server.poll_event() {
            if let Event::Message(m) = e.event {
                let m = m.downcast_ref::<Num>().unwrap();
                assert!(pad_ok(m, (m.n as usize * 37) % 3000), "{}", m.n);
                to_server.push(m.n);
            }
        }
        while let Some(e) = p.client.poll_event() {
            if let Event::Message(m) = e {
                let m = m.downcast_ref::<Num>().unwrap();
                assert!(pad_ok(m, (m.n as usize * 37) % 3000), "{}", m.n);
                to_client.push(m.n);
            }
        }
        if to_server.len() == n as usize && to_client.len() == n as usize {
            break;
        }
    }
    assert_exactly_once(&to_server, n, true, "client to server");
    assert_exactly_once(&to_client, n, true, "server to client");
    // Each corrupted copy was dropped and counted, and nothing else was.
    let (cs, ss) = (p.client.stats(), p.server_stats());
    assert_eq!(dropped(&ss), p.corrupted.0, "server side: {ss:?}");
    assert_eq!(dropped(&cs), p.corrupted.1, "client side: {cs:?}");
    assert!(ss.dropped_unauthenticated > p.corrupted.0 / 2, "{ss:?}");
    assert!(cs.dropped_unauthenticated > p.corrupted.1 / 2, "{cs:?}");
    // A corrupted DISCONNECT is dropped too; the genuine one arrives intact.
    p.client.disconnect("bye for now");
    for _ in 0..5 {
        p.round();
    }
    let mut reason = None;
    while let Some(e) = p.server.poll_event() {
        if let Event::Disconnected(r) = e.event {
            reason = Some(r);
        }
    }
    assert_eq!(reason, Some(DisconnectReason::Remote("bye for now".into())));
}

#[test]
fn replayed_packets_are_dropped() {
    let mut p = Pair::new(12);
    p.connect();
    p.recorded = Some(Vec::new());
    for i in 0..100 {
        p.client.send(&num(i), Delivery::Unreliable).unwrap();
        p.round();
    }
    for _ in 0..20 {
        p.round();
    }
    let recorded = p.recorded.take().unwrap();
    assert!(recorded.len() >= 100);
    let mut got = Vec::new();
    while let Some(e) = p.server.poll_event() {
        if let Event::Message(m) = e.event {
            got.push(m.downcast_ref::<Num>().unwrap().n);
        }
    }
    assert_exactly_once(&got, 100, false, "before the replay");
    let before = p.server_stats();
    for d in &recorded {
        p.server.handle_datagram(p.now, client_addr(0), d);
    }
    let after = p.server_stats();
    assert_eq!(
        after.dropped_duplicate - before.dropped_duplicate,
        recorded.len() as u64
    );
    assert_eq!(after.in_packets, before.in_packets);
    assert!(p.server.poll_event().is_none(), "nothing delivered twice");
    // After the window has moved on by more than 1,024 packets, old packets
    // are still refused (too old), not taken for new.
    for i in 0..1100 {
        p.client.send(&num(i), Delivery::Unreliable).unwrap();
        p.round();
    }
    while p.server.poll_event().is_some() {}
    let before = p.server_stats();
    for d in &recorded {
        p.server.handle_datagram(p.now, client_addr(0), d);
    }
    let after = p.server_stats();
    assert_eq!(
        dropped(&after) - dropped(&before),
        recorded.len() as u64,
        "{after:?}"
    );
    assert!(p.server.poll_event().is_none());
}

/// The loss torture of `tests/sim.rs`, in secure mode: 1,000 reliable-
/// ordered messages of mixed sizes (up to 64 KiB) through 20% loss, 5%
/// duplication and 5% reordering, every byte checked, once, in order.
#[test]
fn loss_torture_in_secure_mode() {
    let link = LinkConditions::perfect()
        .with_loss(0.2)
        .with_duplicate(0.05)
        .with_reorder(0.05)
        .with_latency(20 * MS)
        .with_jitter(5 * MS);
    let config = Config {
        connect_timeout: 60 * SEC,
        ..Config::default()
    };
    let mut w = secure_world(31, config, link);
    let c = w.add_client_with_token(&token_for(31));
    assert!(w.connect_all(60 * SEC));
    let peer = w.clients[c].addr;
    let n = 1_000u32;
    let size = |i: u32| {
        let h = (i.wrapping_mul(2_654_435_761) >> 8) as usize;
        match h % 100 {
            0..=79 => h % 200,
            80..=94 => 200 + h % 4_000,
            _ => 4_096 + h % (64 * 1024 - 4_096),
        }
    };
    let mut next = 0u32;
    let mut got = Vec::new();
    let done = w.run_until(3600 * SEC, |w| {
        while next < n && w.clients[c].conn.stats().out_buffer_bytes < 8 << 20 {
            let m = padded(next, size(next));
            w.clients[c]
                .conn
                .send(&m, Delivery::ReliableOrdered)
                .unwrap();
            next += 1;
        }
        for m in w.server_msgs(peer) {
            assert!(pad_ok(&m, size(m.n)), "message {} corrupted", m.n);
            got.push(m.n);
        }
        got.len() == n as usize
    });
    assert!(done, "{} of {n} delivered", got.len());
    w.run_for(2 * SEC);
    assert!(w.server_msgs(peer).is_empty(), "extra deliveries");
    assert_exactly_once(&got, n, true, "secure torture");
    let ss = w.server.peer(peer).unwrap().stats();
    assert_eq!(
        ss.dropped_unauthenticated, 0,
        "an honest lossy link forges nothing"
    );
    assert!(w.max_datagram <= Config::default().mtu.max(1200));
}

#[test]
fn the_secure_mode_never_falls_back_to_legume_v4() {
    let now = Instant::now();
    let v4 = Config {
        protocol: legume_net::Protocol::LegumeV4,
        ..Config::default()
    };
    // A client asked for v4 with a token still speaks the secure protocol.
    let mut c = Connection::connect_with_token(v4.clone(), factory(), now, 5, &token_for(5));
    assert_eq!(c.protocol(), legume_net::Protocol::Native);
    assert!(c.is_secure());
    // A v4 server that requires tokens admits no v4 client...
    let mut s = ServerEndpoint::with_insecure_seed(v4.clone(), factory(), now, 1);
    s.require_connect_tokens(backend_key(), server_addr(), now, UNIX_START);
    let mut plain = Connection::connect(v4, factory(), now, 6);
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        while let Some(n) = plain.poll_transmit(now, &mut buf) {
            s.handle_datagram(now, client_addr(1), &buf[..n]);
        }
    }
    assert_eq!(s.peer_count(), 0);
    assert!(s.stats().dropped_invalid > 0);
    // ...but a token holder gets in, securely.
    let response = captured_response(&mut s, &mut c, now);
    s.handle_datagram(now, client_addr(0), &response);
    let mut rounds = 0;
    while !c.is_connected() && rounds < 10 {
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            s.handle_datagram(now, client_addr(0), &buf[..n]);
        }
        while let Some((_, n)) = s.poll_transmit(now, &mut buf) {
            c.handle_datagram(now, &buf[..n]);
        }
        rounds += 1;
    }
    assert!(c.is_connected());
    assert!(s.peer(client_addr(0)).unwrap().is_secure());
}

/// Random datagrams, most of them starting like legume packets of every
/// type (secure ones included), at a live secure pair from strangers and
/// from the client's own address, and at the client: nothing panics,
/// nothing is admitted or delivered, the connection stays up and works.
#[test]
fn random_datagrams_at_a_secure_pair_change_nothing() {
    let mut p = Pair::new(13);
    p.connect();
    let mut rng = Rng::new(0xF022);
    let genuine = {
        // Real packets to mutate: a request, a response and DATA.
        let mut s = secure_endpoint(p.now, Config::default());
        let mut c =
            Connection::connect_with_token(Config::default(), factory(), p.now, 9, &token_for(9));
        let response = captured_response(&mut s, &mut c, p.now);
        vec![request_bytes(9, &token_for(9).sealed()), response]
    };
    let mut buf = [0u8; 1500];
    for i in 0..20_000u64 {
        let d: Vec<u8> = match i % 4 {
            0 => {
                let len = rng.gen_range(0..1300) as usize;
                let mut d = vec![0u8; len];
                rng.fill_bytes(&mut d);
                d
            }
            1 | 2 => {
                let len = rng.gen_range(4..1300) as usize;
                let mut d = vec![0u8; len];
                rng.fill_bytes(&mut d);
                d[..3].copy_from_slice(b"LG\x02");
                d[3] = rng.gen_range(0..16) as u8;
                if rng.chance(0.3) {
                    d.resize(1200, 0);
                }
                d
            }
            _ => {
                let mut d = genuine[(i / 4 % 2) as usize].clone();
                for _ in 0..rng.gen_range(1..8) {
                    let at = rng.gen_range(0..d.len() as u64) as usize;
                    d[at] = rng.next_u64() as u8;
                }
                d
            }
        };
        let stranger = SocketAddr::from(([192, 0, 2, (i % 250) as u8], 7000 + (i % 7) as u16));
        p.server.handle_datagram(p.now, stranger, &d);
        p.server.handle_datagram(p.now, client_addr(0), &d);
        p.client.handle_datagram(p.now, &d);
        while p.server.poll_transmit(p.now, &mut buf).is_some() {}
    }
    assert_eq!(p.server.peer_count(), 1);
    assert!(p.client.is_connected());
    assert_eq!(p.server.stats().accepted, 1);
    while let Some(e) = p.server.poll_event() {
        assert!(!matches!(e.event, Event::Message(_)), "{e:?}");
    }
    while let Some(e) = p.client.poll_event() {
        assert!(!matches!(e, Event::Message(_)), "{e:?}");
    }
    // Still working.
    p.client.send(&num(1), Delivery::Reliable).unwrap();
    p.server
        .send(client_addr(0), &num(2), Delivery::Reliable)
        .unwrap();
    let (mut to_server, mut to_client) = (false, false);
    for _ in 0..50 {
        p.round();
        while let Some(e) = p.server.poll_event() {
            to_server |= matches!(e.event, Event::Message(_));
        }
        while let Some(e) = p.client.poll_event() {
            to_client |= matches!(e, Event::Message(_));
        }
    }
    assert!(to_server && to_client);
}
