//! Connecting over very lossy links with the default settings: the plain,
//! secure and legume v4 handshakes through 50% loss each way, 500 seeded
//! runs each, only the handshake (no data), on the simulated clock.
//!
//! The success rates and median connect times are printed; see them with
//! `cargo test -p legume-net --test lossy_connect -- --nocapture`.

mod util;

use std::time::Duration;

use legume_net::sim::LinkConditions;
use legume_net::{Config, Delivery, Protocol};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const RUNS: u64 = 500;

#[derive(Clone, Copy, Debug)]
enum Handshake {
    Plain,
    Secure,
    LegumeV4,
}

/// `loss` each way on a link with a 40 ms round trip and some jitter.
fn link(loss: f64) -> LinkConditions {
    LinkConditions::perfect()
        .with_loss(loss)
        .with_latency(20 * MS)
        .with_jitter(10 * MS)
}

/// One client connecting with the default settings: how long it took, or
/// `None` when it gave up (connect timeout) first.
fn connect_once(seed: u64, loss: f64, kind: Handshake) -> Option<Duration> {
    let config = match kind {
        Handshake::LegumeV4 => Config {
            protocol: Protocol::LegumeV4,
            ..Config::default()
        },
        Handshake::Plain | Handshake::Secure => Config::default(),
    };
    let mut w = World::new(seed, config.clone(), link(loss));
    let c = match kind {
        Handshake::Secure => {
            w.require_tokens(backend_key());
            w.add_client_with_token(&token_for(seed))
        }
        Handshake::Plain | Handshake::LegumeV4 => w.add_client(),
    };
    // Past the connect timeout, so that a failure is seen as one.
    let limit = config.connect_timeout + SEC;
    w.run_until(limit, |w| {
        w.clients[c].conn.is_closed() || w.clients[c].conn.is_connected()
    });
    w.clients[c].conn.is_connected().then(|| w.elapsed())
}

/// Connects `RUNS` seeded clients; returns the successes and the median
/// connect time of those that connected.
fn success_and_median(loss: f64, kind: Handshake) -> (u64, Duration) {
    let mut times: Vec<Duration> = (0..RUNS)
        .filter_map(|seed| connect_once(seed, loss, kind))
        .collect();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or(Duration::MAX);
    let ok = times.len() as u64;
    println!(
        "{kind:?} handshake at {:.0}% loss each way: {ok}/{RUNS} connected, median {median:?}",
        loss * 100.0
    );
    (ok, median)
}

/// At least 99% of the runs connect within the default connect timeout.
fn assert_connects_at_half_loss(kind: Handshake) {
    let (ok, _) = success_and_median(0.5, kind);
    assert!(
        ok * 100 >= RUNS * 99,
        "{kind:?}: only {ok} of {RUNS} runs connected at 50% loss"
    );
}

#[test]
fn plain_handshake_connects_through_50_percent_loss() {
    assert_connects_at_half_loss(Handshake::Plain);
    // And the figure for a merely bad link.
    let (ok, _) = success_and_median(0.2, Handshake::Plain);
    assert_eq!(ok, RUNS);
}

#[test]
fn secure_handshake_connects_through_50_percent_loss() {
    assert_connects_at_half_loss(Handshake::Secure);
    let (ok, _) = success_and_median(0.2, Handshake::Secure);
    assert_eq!(ok, RUNS);
}

#[test]
fn legume_v4_handshake_connects_through_50_percent_loss() {
    assert_connects_at_half_loss(Handshake::LegumeV4);
    let (ok, _) = success_and_median(0.2, Handshake::LegumeV4);
    assert_eq!(ok, RUNS);
}

#[test]
fn a_handshake_slower_than_the_retry_interval_gives_no_false_rtt() {
    // A 300 ms round trip: three copies of the request are out when the
    // first challenge comes back, and it cannot tell which it answers.
    // Timed from the latest copy it would look like 100 ms and make the
    // first resends spurious; no sample is taken, and the first ack of data
    // gives the real figure.
    let mut w = World::new(
        3,
        Config::default(),
        LinkConditions::perfect().with_latency(150 * MS),
    );
    let c = w.add_client();
    assert!(w.connect_all(2 * SEC));
    assert_eq!(w.clients[c].conn.rtt(), Config::default().initial_rtt);
    w.clients[c]
        .conn
        .send(&num(1), Delivery::Reliable)
        .expect("connected");
    w.run_for(700 * MS);
    assert_eq!(w.clients[c].conn.stats().pending_acks, 0);
    let rtt = w.clients[c].conn.rtt();
    assert!(rtt >= 295 * MS && rtt <= 310 * MS, "{rtt:?}");
}
