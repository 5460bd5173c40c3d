//! Logs and live statistics on the simulated network: which `tracing`
//! events the library writes (level, target, `peer` field), that floods are
//! summarised rather than logged per packet, and that the live rates match
//! the traffic. Deterministic: simulated time, seeded loss, and a capturing
//! subscriber installed for the test's thread only.

mod util;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use legume_net::sim::LinkConditions;
use legume_net::{Config, Decision, Delivery, SendError};
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// One captured event.
#[derive(Clone, Debug)]
struct Record {
    level: Level,
    target: String,
    message: String,
    fields: HashMap<String, String>,
}

impl Record {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    fn count(&self) -> u64 {
        self.field("count")
            .and_then(|c| c.parse().ok())
            .expect("a count field")
    }
}

struct Fields<'a>(&'a mut Record);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.0.message = value;
        } else {
            self.0.fields.insert(field.name().to_owned(), value);
        }
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Record>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut r = Record {
            level: *meta.level(),
            target: meta.target().to_owned(),
            message: String::new(),
            fields: HashMap::new(),
        };
        event.record(&mut Fields(&mut r));
        self.0.lock().expect("not poisoned").push(r);
    }
}

/// Runs `f` with every event of this thread captured (all levels).
fn captured<R>(f: impl FnOnce() -> R) -> (R, Vec<Record>) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    let records = capture.0.lock().expect("not poisoned").clone();
    (out, records)
}

fn find<'a>(records: &'a [Record], level: Level, target: &str, text: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| r.level == level && r.target == target && r.message.contains(text))
        .collect()
}

/// The targets: every connection event, and the server endpoint's own.
const CONN: &str = "legume_net::connection";
const ENDPOINT: &str = "legume_net::server";

fn link() -> LinkConditions {
    LinkConditions::perfect().with_latency(10 * MS)
}

#[test]
fn connect_accept_and_disconnect_are_logged_with_the_peer() {
    let ((client, peer), logs) = captured(|| {
        let mut w = World::new(1, Config::default(), link());
        let c = w.add_client();
        assert!(w.connect_all(SEC));
        for n in 0..100 {
            w.clients[c]
                .conn
                .send(&num(n), Delivery::ReliableOrdered)
                .unwrap();
            w.run_for(10 * MS);
        }
        w.clients[c].conn.disconnect("bye");
        w.run_for(SEC);
        (w.clients[c].addr, server_addr())
    });
    let accepted = find(&logs, Level::INFO, ENDPOINT, "accepted");
    assert_eq!(accepted.len(), 1, "{logs:#?}");
    assert_eq!(accepted[0].field("peer"), Some(client.to_string().as_str()));
    let connected = find(&logs, Level::INFO, CONN, "connected to");
    assert_eq!(connected.len(), 1, "{logs:#?}");
    assert_eq!(connected[0].field("peer"), Some(peer.to_string().as_str()));
    let leaving = find(&logs, Level::INFO, CONN, "disconnecting from");
    assert_eq!(leaving.len(), 1);
    assert_eq!(leaving[0].field("reason"), Some("bye"));
    let left = find(&logs, Level::INFO, CONN, "disconnected: bye");
    assert_eq!(left.len(), 1, "{logs:#?}");
    assert_eq!(left[0].field("peer"), Some(client.to_string().as_str()));
    assert_eq!(find(&logs, Level::DEBUG, ENDPOINT, "removed").len(), 1);
    // A hundred messages, and nothing per message or per packet above trace.
    let above_trace = logs.iter().filter(|r| r.level != Level::TRACE).count();
    assert!(above_trace <= 8, "{logs:#?}");
    assert!(logs.iter().all(|r| r.level > Level::WARN), "{logs:#?}");
}

#[test]
fn rejections_are_logged_with_their_reason_on_both_sides() {
    let ((), logs) = captured(|| {
        let mut w = World::new(2, Config::default(), link());
        w.server
            .set_connect_hook(Box::new(|_| Decision::Reject("invite only".into())));
        w.add_client();
        w.run_for(SEC);
    });
    let rejected = find(&logs, Level::INFO, ENDPOINT, "rejected");
    assert_eq!(rejected.len(), 1, "{logs:#?}");
    assert_eq!(rejected[0].field("reason"), Some("invite only"));
    let refused = find(&logs, Level::INFO, CONN, "refused by");
    assert_eq!(refused.len(), 1, "{logs:#?}");
    assert_eq!(refused[0].field("reason"), Some("invite only"));
}

#[test]
fn timeouts_are_warnings() {
    let ((), logs) = captured(|| {
        let mut w = World::new(3, Config::default(), link());
        w.add_client();
        assert!(w.connect_all(SEC));
        w.net
            .set_default_conditions(LinkConditions::perfect().with_loss(1.0));
        w.run_for(12 * SEC);
    });
    let timeouts = find(&logs, Level::WARN, CONN, "timed out");
    assert_eq!(timeouts.len(), 2, "client and server side: {logs:#?}");
    assert!(timeouts.iter().all(|r| r.field("peer").is_some()));
}

#[test]
fn a_client_that_is_never_answered_warns_once() {
    let ((), logs) = captured(|| {
        let mut w = World::new(
            4,
            Config::default(),
            LinkConditions::perfect().with_loss(1.0),
        );
        w.add_client();
        w.run_for(12 * SEC);
    });
    assert_eq!(
        find(&logs, Level::WARN, CONN, "no answer to the handshake").len(),
        1
    );
    // The first handshake packet is a debug line, then every tenth (one a
    // second at the default rate), so they stay few.
    let attempts = find(
        &logs,
        Level::DEBUG,
        CONN,
        "handshake: sending connect request",
    );
    assert!((5..=20).contains(&attempts.len()), "{}", attempts.len());
}

#[test]
fn invalid_datagrams_are_summarised_per_peer_and_interval() {
    let ((), logs) = captured(|| {
        let mut w = World::new(5, Config::default(), link());
        let c = w.add_client();
        assert!(w.connect_all(SEC));
        let peer = w.clients[c].addr;
        // 1000 junk datagrams from the peer's address over 10 s, and 1000
        // from a thousand other addresses.
        for i in 0..1000u32 {
            w.run_for(10 * MS);
            let now = w.now;
            w.server.handle_datagram(now, peer, b"not a legume packet");
            let stranger = SocketAddr::from(([192, 0, 2, (i % 250) as u8], 1000 + i as u16));
            w.server.handle_datagram(now, stranger, b"nor this");
        }
        w.run_for(SEC);
        // Bring the log summaries forward (a connection writes them itself
        // at its next input or output): the flood's tail is reported.
        let now = w.now;
        w.server.sample_stats(now);
    });
    let from_peer = find(&logs, Level::DEBUG, CONN, "invalid datagrams from");
    assert!(
        (2..=3).contains(&from_peer.len()),
        "one summary per 5 s: {from_peer:#?}"
    );
    let total: u64 = from_peer.iter().map(|r| r.count()).sum();
    assert!((990..=1000).contains(&total), "{total}");
    // The first is reported at the next sample (100 ms), the rest 5 s apart.
    assert!(from_peer[0].count() <= 10, "{from_peer:#?}");
    let strangers = find(&logs, Level::DEBUG, ENDPOINT, "from unknown sources");
    assert!((2..=3).contains(&strangers.len()), "{strangers:#?}");
    assert!(strangers.iter().all(|r| r.field("latest").is_some()));
    let total: u64 = strangers.iter().map(|r| r.count()).sum();
    assert!((990..=1000).contains(&total), "{total}");
    // Above debug: the handshake's two lines, nothing for the junk.
    let loud: Vec<_> = logs.iter().filter(|r| r.level <= Level::INFO).collect();
    assert_eq!(loud.len(), 2, "{loud:#?}");
}

#[test]
fn connect_rate_limiting_warns_once_per_interval() {
    let ((), logs) = captured(|| {
        let mut w = World::new(6, Config::default(), link());
        let flooder: SocketAddr = "198.51.100.9:7000".parse().unwrap();
        let mut buf = [0u8; 1500];
        // A client's connect request, replayed 300 times a second for 12 s.
        let mut conn = legume_net::Connection::connect(Config::default(), factory(), w.now, 77);
        let n = conn.poll_transmit(w.now, &mut buf).unwrap();
        let request = buf[..n].to_vec();
        for _ in 0..12 {
            for _ in 0..300 {
                let now = w.now;
                w.server.handle_datagram(now, flooder, &request);
            }
            // No connection, so no timer moves the clock: move it by hand.
            w.now += SEC;
            w.step();
        }
        assert_eq!(w.server.stats().rate_limited, 12 * 44);
    });
    let warns = find(&logs, Level::WARN, ENDPOINT, "over the connect rate");
    assert_eq!(warns.len(), 3, "at 0, 5 and 10 s: {warns:#?}");
    assert_eq!(warns.iter().map(|r| r.count()).sum::<u64>(), 10 * 44 + 1);
    assert_eq!(warns[0].field("latest"), Some("198.51.100.9:7000"));
}

#[test]
fn resend_storms_warn_at_most_once_per_interval_per_peer() {
    let ((), logs) = captured(|| {
        let lossy = LinkConditions::perfect()
            .with_loss(0.4)
            .with_latency(20 * MS);
        let mut w = World::new(7, Config::default(), lossy);
        let c = w.add_client();
        assert!(w.connect_all(5 * SEC));
        // 200 reliable messages a second for 12 s.
        for n in 0..2400 {
            w.clients[c]
                .conn
                .send(&padded(n, 100), Delivery::Reliable)
                .unwrap();
            w.run_for(5 * MS);
        }
    });
    let storms = find(&logs, Level::WARN, CONN, "resend storm");
    assert!(
        (2..=3).contains(&storms.len()),
        "40% loss storms all along, warned once per 5 s: {storms:#?}"
    );
    let server = server_addr().to_string();
    assert!(storms
        .iter()
        .all(|r| r.field("peer") == Some(server.as_str())));
}

#[test]
fn ten_percent_loss_is_no_storm() {
    let ((), logs) = captured(|| {
        let lossy = LinkConditions::perfect()
            .with_loss(0.1)
            .with_latency(20 * MS);
        let mut w = World::new(8, Config::default(), lossy);
        let c = w.add_client();
        assert!(w.connect_all(5 * SEC));
        for n in 0..2400 {
            w.clients[c]
                .conn
                .send(&padded(n, 100), Delivery::Reliable)
                .unwrap();
            w.run_for(5 * MS);
        }
    });
    assert!(find(&logs, Level::WARN, CONN, "resend storm").is_empty());
}

#[test]
fn a_full_send_queue_is_a_debug_summary() {
    let ((), logs) = captured(|| {
        let config = Config {
            limits: legume_net::Limits {
                max_send_queue_bytes: 1000,
                ..legume_net::Limits::default()
            },
            ..Config::default()
        };
        let mut w = World::new(9, config, LinkConditions::perfect().with_loss(1.0));
        let c = w.add_client();
        // Queued while connecting, never sent: the queue fills and stays full.
        let mut refused = 0;
        for n in 0..100 {
            if let Err(SendError::QueueFull { .. }) =
                w.clients[c].conn.send(&padded(n, 100), Delivery::Reliable)
            {
                refused += 1;
            }
        }
        assert!(refused > 80);
        w.run_for(SEC);
    });
    let full = find(&logs, Level::DEBUG, CONN, "queue to");
    assert_eq!(full.len(), 1, "{logs:#?}");
    assert!(full[0].count() > 80);
}

#[test]
fn messages_dropped_at_a_memory_limit_are_a_warning() {
    let (errors, logs) = captured(|| {
        // The server takes messages up to 1 MiB; this client sends 2 MiB ones.
        let mut w = World::new(13, Config::default(), link());
        w.config.limits.max_message_size = 4 << 20;
        let c = w.add_client();
        assert!(w.connect_all(SEC));
        for n in 0..3 {
            w.clients[c]
                .conn
                .send(&padded(n, 2 << 20), Delivery::Reliable)
                .unwrap();
        }
        w.run_for(10 * SEC);
        w.server_events
            .iter()
            .filter(|e| matches!(e.event, legume_net::Event::Error(_)))
            .count()
    });
    assert_eq!(errors, 3);
    let warns = find(&logs, Level::WARN, CONN, "memory limit");
    assert!(!warns.is_empty() && warns.len() <= 2, "{warns:#?}");
    assert_eq!(warns.iter().map(|r| r.count()).sum::<u64>(), 3);
    assert_eq!(
        warns[0].field("peer"),
        Some(client_addr(0).to_string().as_str())
    );
}

#[test]
fn live_stats_follow_the_traffic() {
    let mut w = World::new(10, Config::default(), link());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let peer = w.clients[c].addr;
    // 100 messages a second from the client for 3 s, then silence.
    for n in 0..300 {
        w.clients[c]
            .conn
            .send(&padded(n, 200), Delivery::ReliableOrdered)
            .unwrap();
        w.run_for(10 * MS);
    }
    let now = w.now;
    let client = w.clients[c].conn.live_stats(now);
    let server = w.server.peer_live_stats(peer, now).expect("a peer");
    let near = |x: f64, want: f64| (x - want).abs() <= want * 0.05;
    assert!(
        client.span >= 900 * MS && client.span <= 1100 * MS,
        "{client:?}"
    );
    assert!(near(client.out_messages_per_s, 100.0), "{client:?}");
    assert!(near(server.in_messages_per_s, 100.0), "{server:?}");
    // Each message is over 200 bytes on the wire.
    assert!(client.out_bytes_per_s > 20_000.0, "{client:?}");
    assert!(
        near(server.in_bytes_per_s, client.out_bytes_per_s),
        "{server:?} {client:?}"
    );
    assert_eq!(client.resends_per_s, 0.0);
    assert!(client.rtt_ms > 15.0 && client.rtt_ms < 40.0, "{client:?}");
    assert!(client.congestion_window > 0);
    // Two idle seconds later (only keep-alives and acks), the rates are gone.
    w.run_for(2 * SEC);
    w.clients[c].conn.sample_stats(w.now);
    let idle = w.clients[c].conn.live_stats(w.now);
    assert_eq!(idle.out_messages_per_s, 0.0, "{idle:?}");
    assert!(idle.out_bytes_per_s < 100.0, "{idle:?}");
}

#[test]
fn live_stats_of_a_legume_v4_connection() {
    let config = Config {
        protocol: legume_net::Protocol::LegumeV4,
        ..Config::default()
    };
    let mut w = World::new(11, config, link());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    for n in 0..200 {
        w.clients[c].conn.send(&num(n), Delivery::Reliable).unwrap();
        w.run_for(10 * MS);
    }
    let live = w.clients[c].conn.live_stats(w.now);
    assert!(
        (95.0..=105.0).contains(&live.out_messages_per_s),
        "{live:?}"
    );
    assert!(live.out_bytes_per_s > 0.0 && live.rtt_ms > 0.0, "{live:?}");
}

#[cfg(feature = "serde")]
#[test]
fn stats_serialize_with_the_serde_feature() {
    let mut w = World::new(12, Config::default(), link());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    w.run_for(SEC);
    let live = w.clients[c].conn.live_stats(w.now);
    let json = serde_json::to_value(&live).unwrap();
    assert_eq!(json["rtt_ms"], serde_json::json!(live.rtt_ms));
    assert_eq!(json["span"]["secs"], serde_json::json!(live.span.as_secs()));
    let stats = serde_json::to_value(w.clients[c].conn.stats()).unwrap();
    assert!(stats["out_bytes"].as_u64().unwrap() > 0);
    let endpoint = serde_json::to_value(w.server.stats()).unwrap();
    assert_eq!(endpoint["accepted"], serde_json::json!(1));
}
