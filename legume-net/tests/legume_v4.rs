//! legume v4 compatibility mode on the simulated network: legume-rs on both
//! ends of legume 0.5's wire protocol (the Python interop runs are in the
//! root `tests/legume_interop.rs`). See `docs/LEGUME_COMPAT.md`.

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use legume_net::sim::{LinkConditions, Rng};
use legume_net::{
    Config, Connection, Decision, Delivery, DisconnectReason, Event, Protocol, SendError, State,
};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn v4() -> Config {
    Config {
        protocol: Protocol::LegumeV4,
        ..Config::default()
    }
}

fn lossy(loss: f64) -> LinkConditions {
    LinkConditions::perfect()
        .with_loss(loss)
        .with_duplicate(0.05)
        .with_latency(20 * MS)
        .with_jitter(10 * MS)
        .with_reorder(0.05)
}

#[test]
fn handshake_bytes_are_legumes() {
    let mut w = World::new(1, v4(), LinkConditions::perfect().with_latency(5 * MS));
    w.tap = Some(Vec::new());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    assert!(matches!(w.clients[c].events[0], Event::Connected));
    w.run_for(100 * MS);
    let tap = w.tap.take().unwrap();
    let first = tap.iter().find(|t| !t.delivered).unwrap();
    // id 1, sequence 0, flags reliable; ConnectRequest (2), version 4.
    assert_eq!(first.bytes, [0, 1, 0, 0, 2, 2, 4]);
    let reply = tap
        .iter()
        .find(|t| !t.delivered && t.from == server_addr())
        .unwrap();
    // The server's first datagram: ConnectRequestAccepted (4), reliable,
    // alone, smaller than the request; the ack of message 1 (MessageAck 8,
    // int 1) follows once the client answered.
    assert_eq!(reply.bytes, [0, 1, 0, 0, 2, 4]);
    assert!(tap.iter().any(|t| !t.delivered
        && t.from == server_addr()
        && t.bytes.windows(8).any(|x| x == [0, 0, 0, 8, 0, 0, 0, 1])));
    assert_eq!(w.clients[c].conn.protocol(), Protocol::LegumeV4);
}

/// `n` messages each way: client to server in order, server to client
/// reliable, plus unreliable ones; exactly once, order kept.
fn exchange(seed: u64, loss: f64, n: u32) -> (Duration, u64) {
    let config = Config {
        connect_timeout: 60 * SEC,
        ..v4()
    };
    let mut w = World::new(seed, config, lossy(loss));
    let c = w.add_client();
    assert!(w.connect_all(30 * SEC), "handshake at {loss} loss");
    let peer = w.clients[c].addr;
    let t0 = w.now;
    for i in 0..n {
        w.clients[c]
            .conn
            .send(&num(i), Delivery::ReliableOrdered)
            .unwrap();
        w.server.send(peer, &num(i), Delivery::Reliable).unwrap();
        w.clients[c]
            .conn
            .send(&num(1_000_000 + i), Delivery::Unreliable)
            .unwrap();
    }
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let done = w.run_until(900 * SEC, |w| {
        to_server.extend(w.server_nums(peer));
        to_client.extend(w.client_nums(c));
        w.clients[c].conn.stats().out_buffer_bytes == 0
            && w.server
                .peer(peer)
                .is_some_and(|p| p.stats().out_buffer_bytes == 0)
    });
    assert!(
        done,
        "loss {loss}: not drained; client {:?}; server {:?}",
        w.clients[c].conn.stats(),
        w.server.peer(peer).map(|p| p.stats())
    );
    let drained = w.now - t0;
    w.run_for(3 * SEC);
    to_server.extend(w.server_nums(peer));
    to_client.extend(w.client_nums(c));
    let (reliable, unreliable): (Vec<u32>, Vec<u32>) =
        to_server.iter().partition(|&&x| x < 1_000_000);
    assert_exactly_once(&reliable, n, true, "in-order to server");
    assert_exactly_once(&to_client, n, false, "reliable to client");
    let mut seen = std::collections::HashSet::new();
    assert!(
        unreliable.iter().all(|x| seen.insert(*x)),
        "unreliable twice"
    );
    assert!(w.max_datagram <= 1400);
    assert!(w.clients[c].conn.is_connected());
    (drained, w.clients[c].conn.stats().resends)
}

#[test]
fn exactly_once_and_in_order_under_loss() {
    println!("| loss | messages each way | simulated drain time | client resends |");
    println!("|---|---|---|---|");
    for (seed, loss) in [(21, 0.0), (22, 0.05), (23, 0.20), (24, 0.50)] {
        let (t, resends) = exchange(seed, loss, 2_000);
        println!(
            "| {:.0}% | 2000 | {:.2} s | {resends} |",
            loss * 100.0,
            t.as_secs_f64()
        );
    }
}

#[test]
fn message_ids_and_sequences_wrap() {
    // Every message takes an id (acks and pings too): 70,000 in-order
    // messages take both the ids and the in-order sequence past 65,535.
    let (t, _) = exchange(25, 0.02, 70_000);
    println!(
        "70000 each way at 2% loss: {:.2} s simulated",
        t.as_secs_f64()
    );
}

#[test]
fn a_message_must_fit_one_datagram() {
    let mut w = World::new(2, v4(), LinkConditions::perfect());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let conn = &mut w.clients[c].conn;
    assert_eq!(conn.max_unreliable_size(), 1395);
    // Num: type id, u32, varint length, pad.
    let fits = padded(1, 1395 - 1 - 4 - 2);
    conn.send(&fits, Delivery::Reliable).unwrap();
    let big = padded(2, 1395 - 1 - 4 - 2 + 1);
    assert!(matches!(
        conn.send(&big, Delivery::Reliable),
        Err(SendError::TooLarge { max: 1395, .. })
    ));
    w.run_for(SEC);
    let peer = w.clients[c].addr;
    let got = w.server_msgs(peer);
    assert_eq!(got.len(), 1);
    assert!(pad_ok(&got[0], fits.pad.len()));
    assert_eq!(w.max_datagram, 1400);
}

#[test]
fn rejection_is_stateless_and_smaller_than_the_request() {
    let mut w = World::new(3, v4(), LinkConditions::perfect().with_latency(MS));
    w.server
        .set_connect_hook(Box::new(|_| Decision::Reject("no".into())));
    w.tap = Some(Vec::new());
    let c = w.add_client();
    w.run_for(SEC);
    assert!(w.clients[c]
        .events
        .iter()
        .any(|e| matches!(e, Event::Rejected { .. })));
    assert_eq!(w.clients[c].conn.state(), State::Disconnected);
    assert_eq!(w.server.peer_count(), 0);
    let tap = w.tap.take().unwrap();
    let reply = tap
        .iter()
        .find(|t| !t.delivered && t.from == server_addr())
        .unwrap();
    assert_eq!(reply.bytes, [0, 1, 0, 0, 2, 3]);
    assert_eq!(w.server.stats().rejected, 1);
}

#[test]
fn a_wrong_version_is_rejected() {
    let mut w = World::new(4, v4(), LinkConditions::perfect());
    let from: SocketAddr = "10.9.9.9:9".parse().unwrap();
    // legume 0.4's version 3.
    w.server
        .handle_datagram(w.now, from, &[0, 1, 0, 0, 2, 2, 3]);
    let mut buf = [0u8; 1500];
    let (to, n) = w.server.poll_transmit(w.now, &mut buf).unwrap();
    assert_eq!((to, &buf[..n]), (from, &[0, 1, 0, 0, 2, 3][..]));
    assert_eq!(w.server.peer_count(), 0);
}

#[test]
fn garbage_from_strangers_creates_no_state() {
    let mut w = World::new(5, v4(), LinkConditions::perfect());
    let mut rng = Rng::new(5);
    let mut buf = [0u8; 1500];
    for i in 0..20_000u32 {
        let from = SocketAddr::from(([10, 7, (i >> 8) as u8, i as u8], 7));
        let len = rng.gen_range(0..40) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rng.gen_range(0..256) as u8).collect();
        if d.len() > 5 && i % 2 == 0 {
            d[5] = 2; // looks like a ConnectRequest half the time
        }
        w.server.handle_datagram(w.now, from, &d);
        while let Some((_, n)) = w.server.poll_transmit(w.now, &mut buf) {
            // Never more bytes back than came in.
            assert!(n <= d.len(), "{n} > {}", d.len());
        }
    }
    // Only well-formed version-4 ConnectRequests open connections, and
    // those time out like any other idle peer.
    let opened = w.server.peer_count();
    assert!(opened < 2_000, "{opened}");
    w.run_for(11 * SEC);
    assert_eq!(w.server.peer_count(), 0);
}

#[test]
fn garbage_from_a_peer_is_counted_and_the_connection_lives() {
    let mut w = World::new(6, v4(), LinkConditions::perfect().with_latency(MS));
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let peer = w.clients[c].addr;
    let mut rng = Rng::new(6);
    for i in 0..5_000u32 {
        let len = rng.gen_range(0..64) as usize;
        let d: Vec<u8> = (0..len).map(|_| rng.gen_range(0..256) as u8).collect();
        let now = w.now;
        w.server.handle_datagram(now, peer, &d);
        w.clients[c].conn.handle_datagram(now, &d);
        if i % 100 == 0 {
            w.step();
        }
    }
    // Random bytes may carry a Disconnected (id 7) from the peer's
    // address, which legume v4 cannot tell from a real one; unless that
    // happened, traffic goes on.
    if w.clients[c].conn.is_connected() && w.server.peer(peer).is_some() {
        for i in 0..100 {
            w.clients[c].conn.send(&num(i), Delivery::Reliable).unwrap();
        }
        w.run_for(2 * SEC);
        let mut got = w.server_nums(peer);
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
    let stats = w.server.peer(peer).map(|p| p.stats());
    let client = w.clients[c].conn.stats();
    assert!(client.dropped_invalid > 0, "{client:?} {stats:?}");
}

#[test]
fn unknown_types_are_reported_and_acked() {
    let mut w = World::new(7, v4(), LinkConditions::perfect().with_latency(MS));
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let peer = w.clients[c].addr;
    // The server does not know type 99; the message is reliable.
    w.clients[c]
        .conn
        .send(&Unknown, Delivery::Reliable)
        .unwrap();
    w.clients[c].conn.send(&num(5), Delivery::Reliable).unwrap();
    w.run_for(2 * SEC);
    assert!(w.server_events.iter().any(|e| e.peer == peer
        && matches!(
            e.event,
            Event::Error(legume_net::MessageError::Decode(
                legume_core::DecodeError::UnknownTypeId(99)
            ))
        )));
    // num(5) was in the same datagram, after the unknown message, so it was
    // lost with the rest of it and arrives by resend.
    assert_eq!(w.server_nums(peer), [5]);
    // Both were acked: nothing left to resend.
    assert_eq!(w.clients[c].conn.stats().pending_acks, 0);
}

#[test]
fn timeouts_on_both_sides() {
    let config = Config {
        timeout: 3 * SEC,
        ..v4()
    };
    let mut w = World::new(8, config, LinkConditions::perfect().with_latency(MS));
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    // Idle for four timeouts: keep-alives and pings keep it up.
    w.run_for(12 * SEC);
    assert!(w.clients[c].conn.is_connected());
    assert!(w.clients[c].conn.stats().keepalive_count >= 4);
    let peer = w.clients[c].addr;
    // The link dies.
    w.net
        .set_default_conditions(LinkConditions::perfect().with_loss(1.0));
    w.run_for(5 * SEC);
    assert_eq!(w.clients[c].conn.state(), State::Errored);
    assert!(w
        .server_events
        .iter()
        .any(|e| e.peer == peer
            && matches!(e.event, Event::Disconnected(DisconnectReason::TimedOut))));
    assert_eq!(w.server.peer_count(), 0);
}

#[test]
fn disconnect_both_ways_under_loss() {
    let mut told = 0;
    for seed in 0..20 {
        let mut w = World::new(100 + seed, v4(), lossy(0.3));
        let c = w.add_client();
        assert!(w.connect_all(30 * SEC));
        let peer = w.clients[c].addr;
        // Some traffic first: until the client has sent a datagram besides
        // its request, the server may not send it more than it received.
        w.run_for(3 * SEC);
        let client_side = seed % 2 == 0;
        if client_side {
            w.clients[c].conn.disconnect("bye");
        } else {
            w.server.disconnect(peer, "bye");
        }
        w.run_for(SEC);
        // The other side was told, unless all three copies were lost (2.7%
        // at 30% loss); then it times out.
        let remote = |e: &Event| matches!(e, Event::Disconnected(DisconnectReason::Remote(_)));
        let heard = if client_side {
            w.server_events
                .iter()
                .any(|e| e.peer == peer && remote(&e.event))
        } else {
            w.clients[c].events.iter().any(remote)
        };
        told += u32::from(heard);
        w.run_for(11 * SEC);
        assert!(!w.clients[c].conn.is_connected(), "seed {seed}");
        assert_eq!(w.server.peer_count(), 0, "seed {seed}");
    }
    assert!(told >= 18, "{told} of 20 heard the disconnect");
}

#[test]
fn sends_before_the_accept_wait_for_it() {
    let mut w = World::new(9, v4(), LinkConditions::perfect().with_latency(10 * MS));
    w.tap = Some(Vec::new());
    let c = w.add_client();
    w.clients[c].conn.send(&num(1), Delivery::Reliable).unwrap();
    assert!(w.connect_all(SEC));
    w.run_for(SEC);
    let peer = w.clients[c].addr;
    assert_eq!(w.server_nums(peer), [1]);
    // The first datagram carried the ConnectRequest alone: legume 0.5 drops
    // a peer whose first messages are not a ConnectRequest.
    let tap = w.tap.take().unwrap();
    assert_eq!(tap[0].bytes.len(), 7);
}

#[test]
fn connection_without_a_server_times_out() {
    let config = Config {
        connect_timeout: 2 * SEC,
        ..v4()
    };
    let mut conn = Connection::connect(config, factory(), std::time::Instant::now(), 0);
    let mut now = std::time::Instant::now();
    let mut buf = [0u8; 1500];
    let mut sent = 0;
    while let Some(t) = conn.poll_timeout() {
        now = now.max(t);
        conn.handle_timeout(now);
        while conn.poll_transmit(now, &mut buf).is_some() {
            sent += 1;
        }
    }
    assert_eq!(conn.state(), State::Errored);
    // One request per `connect_retry` (100 ms): 20 in two seconds, not hundreds.
    assert!((3..=20).contains(&sent), "{sent}");
}
