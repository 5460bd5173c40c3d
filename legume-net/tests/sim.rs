//! Protocol scenarios on the simulated network: handshake, delivery under
//! loss, wraparound, fragmentation, limits, timeouts and disconnects.
//!
//! Each run is deterministic (seeded). Figures are printed; see them with
//! `cargo test -p legume-net --test sim -- --nocapture`.

mod util;

use std::time::Duration;

use legume_net::sim::LinkConditions;
use legume_net::{Config, Delivery, DisconnectReason, Event, SendError, State};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn lossy(loss: f64) -> LinkConditions {
    LinkConditions::perfect()
        .with_loss(loss)
        .with_duplicate(0.02)
        .with_latency(20 * MS)
        .with_jitter(10 * MS)
        .with_reorder(0.05)
}

#[test]
fn handshake_then_messages_both_ways() {
    let mut w = World::new(
        1,
        Config::default(),
        LinkConditions::perfect().with_latency(10 * MS),
    );
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    assert!(matches!(w.clients[c].events[0], Event::Connected));
    assert_eq!(w.server.peer_count(), 1);
    let peer = w.clients[c].addr;
    assert!(w
        .server_events
        .iter()
        .any(|e| e.peer == peer && matches!(e.event, Event::Connected)));
    // The handshake measured the RTT: about 2 x 10 ms.
    let rtt = w.clients[c].conn.rtt();
    assert!(rtt >= 19 * MS && rtt <= 25 * MS, "{rtt:?}");

    for n in 0..3 {
        w.clients[c]
            .conn
            .send(&num(n), Delivery::ReliableOrdered)
            .unwrap();
        w.server
            .send(peer, &num(n + 100), Delivery::Reliable)
            .unwrap();
    }
    w.clients[c]
        .conn
        .send(&num(7), Delivery::Unreliable)
        .unwrap();
    w.run_for(SEC);
    let mut got = w.server_nums(peer);
    got.sort();
    assert_eq!(got, [0, 1, 2, 7]);
    let mut got = w.client_nums(c);
    got.sort();
    assert_eq!(got, [100, 101, 102]);
    assert!(w.max_datagram <= 1400);
}

/// Sends `n` messages each way (client: ordered, server: reliable) plus
/// unreliable ones, and checks exactly-once delivery and order.
fn exchange(seed: u64, loss: f64, n: u32) -> (Duration, f64) {
    // At 50% loss each way a handshake round trip succeeds one time in four.
    let config = Config {
        connect_timeout: 60 * SEC,
        ..Config::default()
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
    }
    let sent_before = w.datagrams_sent;
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let done = w.run_until(600 * SEC, |w| {
        to_server.extend(w.server_nums(peer));
        to_client.extend(w.client_nums(c));
        to_server.len() >= n as usize
            && to_client.len() >= n as usize
            && w.clients[c].conn.stats().out_buffer_bytes == 0
            && w.server
                .peer(peer)
                .is_some_and(|p| p.stats().out_buffer_bytes == 0)
    });
    assert!(
        done,
        "loss {loss}: queues did not drain ({} / {} delivered); client {:?} {:?}; server {:?}",
        to_server.len(),
        to_client.len(),
        w.clients[c].conn.state(),
        w.clients[c].conn.stats(),
        w.server.peer(peer).map(|p| p.stats())
    );
    // Let stray duplicates arrive, then check nothing extra was delivered.
    w.run_for(2 * SEC);
    to_server.extend(w.server_nums(peer));
    to_client.extend(w.client_nums(c));
    assert_exactly_once(&to_server, n, true, "ordered to server");
    assert_exactly_once(&to_client, n, false, "reliable to client");
    assert!(w.max_datagram <= 1400);
    let drained = w.now - t0 - 2 * SEC;
    let packets = (w.datagrams_sent - sent_before) as f64 / (2 * n) as f64;
    (drained, packets)
}

#[test]
fn exactly_once_and_in_order_under_loss() {
    println!("| loss | messages each way | simulated drain time | datagrams per message |");
    println!("|---|---|---|---|");
    for (seed, loss) in [(11, 0.0), (12, 0.05), (13, 0.20), (14, 0.50)] {
        let (t, per_msg) = exchange(seed, loss, 10_000);
        println!(
            "| {:.0}% | 10000 | {:.2} s | {per_msg:.3} |",
            loss * 100.0,
            t.as_secs_f64()
        );
    }
}

#[test]
fn sequence_numbers_wrap_past_65536() {
    // A small MTU and large messages: one message per packet, so both the
    // packet sequence and the message ids wrap.
    let config = Config {
        mtu: 576,
        ..Config::default()
    };
    let mut w = World::new(
        3,
        config,
        LinkConditions::perfect().with_latency(MS).with_loss(0.01),
    );
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let n = 70_000u32;
    let peer = w.clients[c].addr;
    let mut got = Vec::new();
    let mut next = 0u32;
    let done = w.run_until(600 * SEC, |w| {
        // Keep the queue topped up rather than queueing 28 MB at once.
        while next < n && w.clients[c].conn.stats().out_buffer_bytes < 200_000 {
            let m = Num {
                n: next,
                pad: vec![7; 400],
            };
            w.clients[c]
                .conn
                .send(&m, Delivery::ReliableOrdered)
                .unwrap();
            next += 1;
        }
        got.extend(w.server_nums(peer));
        got.len() == n as usize
    });
    assert!(done, "only {} of {n} arrived", got.len());
    assert_exactly_once(&got, n, true, "ordered across wraparound");
    let stats = w.clients[c].conn.stats();
    assert!(stats.out_packets > 70_000, "{} packets", stats.out_packets);
}

#[test]
fn one_mebibyte_message_at_20_percent_loss() {
    let mut w = World::new(4, Config::default(), lossy(0.20));
    let c = w.add_client();
    assert!(w.connect_all(30 * SEC));
    let max = w.config.limits.max_message_size;
    // type id (1) + n (4) + varint count (3) + pad = max
    let big = Num {
        n: 1,
        pad: (0..max - 8).map(|i| i as u8).collect(),
    };
    assert_eq!(legume_core::Message::message_len(&big), max);
    w.clients[c]
        .conn
        .send(&big, Delivery::ReliableOrdered)
        .unwrap();
    w.clients[c]
        .conn
        .send(&num(2), Delivery::ReliableOrdered)
        .unwrap();
    let mut got = Vec::new();
    let done = w.run_until(120 * SEC, |w| {
        w.server_events.retain(|e| match &e.event {
            Event::Message(m) => {
                got.push(m.downcast_ref::<Num>().cloned().expect("a Num"));
                false
            }
            _ => true,
        });
        got.len() == 2
    });
    assert!(done, "the large message did not arrive");
    assert_eq!(got[0], big);
    assert_eq!(got[1], num(2));
    println!(
        "1 MiB at 20% loss: {:.2} s simulated",
        (w.now - w.start).as_secs_f64()
    );
    assert!(w.max_datagram <= 1400);
}

#[test]
fn over_the_limits_is_an_error() {
    let mut w = World::new(5, Config::default(), LinkConditions::perfect());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let max = w.config.limits.max_message_size;
    let too_big = Num {
        n: 0,
        pad: vec![0; max - 7],
    };
    assert_eq!(
        w.clients[c].conn.send(&too_big, Delivery::Reliable),
        Err(SendError::TooLarge { len: max + 1, max })
    );
    let unreliable_max = w.clients[c].conn.max_unreliable_size();
    let big = Num {
        n: 0,
        pad: vec![0; unreliable_max],
    };
    assert!(matches!(
        w.clients[c].conn.send(&big, Delivery::Unreliable),
        Err(SendError::TooLarge { .. })
    ));

    let config = Config {
        limits: legume_net::Limits {
            max_send_queue_bytes: 1000,
            ..legume_net::Limits::default()
        },
        ..Config::default()
    };
    let mut w = World::new(6, config, LinkConditions::perfect());
    let c = w.add_client();
    let m = Num {
        n: 0,
        pad: vec![0; 400],
    };
    w.clients[c].conn.send(&m, Delivery::Reliable).unwrap();
    w.clients[c].conn.send(&m, Delivery::Reliable).unwrap();
    assert!(matches!(
        w.clients[c].conn.send(&m, Delivery::Reliable),
        Err(SendError::QueueFull { max: 1000, .. })
    ));
}

#[test]
fn rejection_carries_the_reason() {
    let mut w = World::new(7, Config::default(), lossy(0.2));
    w.server.set_connect_hook(Box::new(|req| {
        legume_net::Decision::Reject(format!("no room for {}", req.addr.ip()))
    }));
    let c = w.add_client();
    let done = w.run_until(30 * SEC, |w| w.clients[c].conn.is_closed());
    assert!(done);
    let reason = w.clients[c].events.iter().find_map(|e| match e {
        Event::Rejected { reason } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("no room for 10.1.0.0"));
    assert_eq!(w.clients[c].conn.state(), State::Disconnected);
    assert_eq!(w.server.peer_count(), 0);
}

#[test]
fn connect_times_out_without_a_server() {
    let mut w = World::new(8, Config::default(), LinkConditions::lossy(1.0));
    let c = w.add_client();
    w.run_for(11 * SEC);
    assert!(matches!(
        w.clients[c].events.last(),
        Some(Event::Disconnected(DisconnectReason::ConnectTimedOut))
    ));
    assert_eq!(w.clients[c].conn.state(), State::Errored);
    // A bounded rate: one request per `connect_retry` (100 ms) for the
    // 10 s connect timeout, not one per millisecond.
    let sent = w.clients[c].conn.stats().out_packets;
    assert!((95..=101).contains(&sent), "{sent} connect attempts");
}

#[test]
fn silent_peers_time_out_on_both_sides() {
    let mut w = World::new(
        9,
        Config::default(),
        LinkConditions::perfect().with_latency(5 * MS),
    );
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    // Idle for longer than the timeout: keep-alive pings hold it open.
    w.run_for(25 * SEC);
    assert!(w.clients[c].conn.is_connected());
    assert!(w.clients[c].conn.stats().keepalive_count >= 10);
    // Then the network dies.
    w.net.set_default_conditions(LinkConditions::lossy(1.0));
    w.run_for(11 * SEC);
    assert!(w.clients[c]
        .events
        .iter()
        .any(|e| matches!(e, Event::Disconnected(DisconnectReason::TimedOut))));
    assert!(w
        .server_events
        .iter()
        .any(|e| matches!(e.event, Event::Disconnected(DisconnectReason::TimedOut))));
    assert_eq!(w.server.peer_count(), 0, "the server forgot the peer");
}

#[test]
fn graceful_disconnect_survives_loss() {
    for seed in 0..20 {
        let mut w = World::new(100 + seed, Config::default(), lossy(0.5));
        let c = w.add_client();
        assert!(w.connect_all(60 * SEC));
        w.clients[c].conn.disconnect("bye now");
        w.run_for(2 * SEC);
        let reason = w.server_events.iter().find_map(|e| match &e.event {
            Event::Disconnected(r) => Some(r.clone()),
            _ => None,
        });
        assert_eq!(
            reason,
            Some(DisconnectReason::Remote("bye now".into())),
            "seed {seed}"
        );
        assert_eq!(w.server.peer_count(), 0);
    }
}

#[test]
fn undecodable_messages_are_reported_not_fatal() {
    let mut w = World::new(10, Config::default(), LinkConditions::perfect());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    w.clients[c]
        .conn
        .send(&Unknown, Delivery::ReliableOrdered)
        .unwrap();
    w.clients[c]
        .conn
        .send(&num(1), Delivery::ReliableOrdered)
        .unwrap();
    w.run_for(SEC);
    let peer = w.clients[c].addr;
    assert!(w
        .server_events
        .iter()
        .any(|e| matches!(e.event, Event::Error(_))));
    assert_eq!(w.server_nums(peer), [1]);
    assert!(w.clients[c].conn.is_connected());
}

#[test]
fn a_thousand_clients_on_one_server() {
    let mut w = World::new(12, Config::default(), lossy(0.05));
    for _ in 0..1000 {
        w.add_client();
    }
    assert!(w.connect_all(60 * SEC));
    assert_eq!(w.server.peer_count(), 1000);
    for i in 0..1000 {
        for n in 0..5 {
            w.clients[i]
                .conn
                .send(&num(n), Delivery::ReliableOrdered)
                .unwrap();
        }
    }
    let sent = w.server.send_to_all(&num(42), Delivery::Reliable).unwrap();
    assert_eq!((sent.sent, sent.refused.len()), (1000, 0));
    w.run_for(10 * SEC);
    for i in 0..1000 {
        let peer = w.clients[i].addr;
        assert!(w.clients[i].conn.is_connected());
        assert_eq!(w.server_nums(peer), [0, 1, 2, 3, 4], "client {i}");
        assert_eq!(w.client_nums(i), [42], "client {i}");
    }
}

#[test]
fn a_burst_of_200000_messages_drains() {
    let mut w = World::new(
        13,
        Config::default(),
        LinkConditions::perfect().with_latency(MS),
    );
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let n = 200_000u32;
    for i in 0..n {
        w.clients[c]
            .conn
            .send(&num(i), Delivery::ReliableOrdered)
            .unwrap();
    }
    let peer = w.clients[c].addr;
    let mut got = Vec::new();
    let t0 = w.now;
    assert!(w.run_until(60 * SEC, |w| {
        got.extend(w.server_nums(peer));
        got.len() == n as usize
    }));
    assert_exactly_once(&got, n, true, "burst");
    let stats = w.clients[c].conn.stats();
    println!(
        "200k burst: {:.3} s simulated, {} packets, {} resends",
        (w.now - t0).as_secs_f64(),
        stats.out_packets,
        stats.resends
    );
}

#[test]
fn heavy_jitter_is_reordering_not_loss() {
    // No loss at all, but 30 ms of jitter on 20 ms: packets overtake each
    // other constantly. Spurious losses must widen the thresholds and undo
    // the window cuts instead of collapsing throughput.
    let jittery = LinkConditions::perfect()
        .with_latency(20 * MS)
        .with_jitter(30 * MS);
    let mut w = World::new(15, Config::default(), jittery);
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let peer = w.clients[c].addr;
    let n = 2000u32;
    for i in 0..n {
        let m = Num {
            n: i,
            pad: vec![1; 1000],
        };
        w.clients[c]
            .conn
            .send(&m, Delivery::ReliableOrdered)
            .unwrap();
    }
    let t0 = w.now;
    let mut got = Vec::new();
    assert!(w.run_until(120 * SEC, |w| {
        got.extend(w.server_nums(peer));
        got.len() == n as usize
    }));
    assert_exactly_once(&got, n, true, "jittery link");
    let s = w.clients[c].conn.stats();
    let took = w.now - t0;
    println!(
        "2000 x 1 KB over 20 ms + 30 ms jitter: {:.2} s simulated, {} lost, {} spurious",
        took.as_secs_f64(),
        s.lost_packets,
        s.spurious_losses
    );
    assert!(s.spurious_losses > 0, "the link did reorder");
    // Deterministic (seeded): it took 48 s before spurious losses were undone.
    assert!(took < 10 * SEC, "{took:?}");
}

/// Size of torture message `i`: mostly small, some over a packet, a few up
/// to 64 KiB (deterministic in `i`).
fn torture_size(i: u32) -> usize {
    let h = (i.wrapping_mul(2_654_435_761) >> 8) as usize;
    match h % 100 {
        0..=79 => h % 200,
        80..=94 => 200 + h % 4_000,
        _ => 4_096 + h % (64 * 1024 - 4_096),
    }
}

fn torture_pad(i: u32) -> Vec<u8> {
    (0..torture_size(i))
        .map(|j| (i as usize + j) as u8)
        .collect()
}

/// Sends `n` reliable-ordered messages of mixed sizes (up to 64 KiB) through
/// `loss` with 5% duplication and 5% reordering; checks every byte, once, in
/// order. Returns the drain time and datagrams sent per message delivered.
fn torture(seed: u64, loss: f64, n: u32) -> (Duration, f64) {
    let link = LinkConditions::perfect()
        .with_loss(loss)
        .with_duplicate(0.05)
        .with_reorder(0.05)
        .with_latency(20 * MS)
        .with_jitter(5 * MS);
    let config = Config {
        connect_timeout: 60 * SEC,
        ..Config::default()
    };
    let mut w = World::new(seed, config, link);
    let c = w.add_client();
    assert!(w.connect_all(60 * SEC));
    let peer = w.clients[c].addr;
    let (t0, sent0) = (w.now, w.datagrams_sent);
    let mut next = 0u32;
    let mut got = Vec::new();
    let done = w.run_until(3600 * SEC, |w| {
        // Keep the send queue under its limit by topping it up.
        while next < n && w.clients[c].conn.stats().out_buffer_bytes < 8 << 20 {
            let m = Num {
                n: next,
                pad: torture_pad(next),
            };
            w.clients[c]
                .conn
                .send(&m, Delivery::ReliableOrdered)
                .unwrap();
            next += 1;
        }
        w.server_events.retain(|e| match &e.event {
            Event::Message(m) if e.peer == peer => {
                let num = m.downcast_ref::<Num>().expect("a Num");
                assert_eq!(num.pad, torture_pad(num.n), "message {} corrupted", num.n);
                got.push(num.n);
                false
            }
            _ => true,
        });
        got.len() == n as usize
    });
    assert!(done, "loss {loss}: {} of {n} delivered", got.len());
    w.run_for(2 * SEC);
    assert!(
        w.server_events
            .iter()
            .all(|e| !matches!(e.event, Event::Message(_))),
        "extra deliveries"
    );
    assert_exactly_once(&got, n, true, "torture");
    let drained = w.now - t0 - 2 * SEC;
    let per_msg = (w.datagrams_sent - sent0) as f64 / f64::from(n);
    if std::env::var("TORTURE_DEBUG").is_ok() {
        println!("client {:?}", w.clients[c].conn.stats());
        println!("server {:?}", w.server.peer(peer).map(|p| p.stats()));
    }
    (drained, per_msg)
}

#[test]
fn loss_torture_short() {
    let (t, per_msg) = torture(31, 0.2, 1_000);
    println!(
        "torture 1,000 mixed at 20%: {:.2} s simulated, {per_msg:.2} datagrams/message",
        t.as_secs_f64()
    );
}

/// The full torture run of docs/RELIABILITY.md:
/// `cargo test --release -p legume-net --test sim -- --ignored --nocapture loss_torture_full`
#[test]
#[ignore = "long: run by hand in release"]
fn loss_torture_full() {
    println!("| loss | messages | simulated drain time | datagrams per message |");
    println!("|---|---|---|---|");
    for (seed, loss) in [(41, 0.05), (42, 0.20), (43, 0.50)] {
        let (t, per_msg) = torture(seed, loss, 10_000);
        println!(
            "| {:.0}% | 10000 | {:.1} s | {per_msg:.2} |",
            loss * 100.0,
            t.as_secs_f64()
        );
    }
}

#[test]
fn a_client_gone_mid_fragment_is_freed_at_timeout() {
    let mut w = World::new(
        16,
        Config::default(),
        LinkConditions::perfect().with_latency(5 * MS),
    );
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let big = Num {
        n: 1,
        pad: vec![9; 500_000],
    };
    w.clients[c].conn.send(&big, Delivery::Reliable).unwrap();
    // Let part of it through, then the client vanishes.
    w.run_for(20 * MS);
    let peer = w.clients[c].addr;
    let partial = w.server.peer(peer).map(|p| p.stats().in_bytes).unwrap_or(0);
    assert!(
        partial > 10_000 && partial < 500_000,
        "{partial} bytes arrived"
    );
    let held = w
        .server
        .peer(peer)
        .map_or(0, |p| p.stats().reassembly_bytes);
    assert!(held > 10_000, "{held} bytes held for reassembly");
    w.net.set_default_conditions(LinkConditions::lossy(1.0));
    w.clients.clear();
    w.run_for(11 * SEC);
    assert_eq!(
        w.server.peer_count(),
        0,
        "the connection and its reassembly are gone"
    );
    assert!(w
        .server_events
        .iter()
        .any(|e| matches!(e.event, Event::Disconnected(DisconnectReason::TimedOut))));
}

#[test]
fn a_frozen_connection_times_out_instead_of_reviving() {
    let mut w = World::new(
        17,
        Config::default(),
        LinkConditions::perfect().with_latency(MS),
    );
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    // The client's app stops updating for 60 s; then one datagram arrives.
    let later = w.now + 60 * SEC;
    let mut buf = [0u8; 1500];
    let peer = w.clients[c].addr;
    w.server.send(peer, &num(1), Delivery::Reliable).unwrap();
    let (_, n) = w
        .server
        .poll_transmit(w.now, &mut buf)
        .expect("a data packet");
    w.clients[c].conn.handle_datagram(later, &buf[..n]);
    assert_eq!(w.clients[c].conn.state(), State::Errored);
    assert!(matches!(
        w.clients[c].conn.poll_event(),
        Some(Event::Disconnected(DisconnectReason::TimedOut))
    ));
}
