//! Idle connections with a timeout shorter than the ping interval stay up:
//! keep-alives go out at least three times per timeout, in the native
//! protocol (plain and secure) and in legume v4 mode, on the simulated clock.

mod util;

use std::time::Duration;

use legume_net::sim::LinkConditions;
use legume_net::{Config, ConnectToken, Event, Protocol, TokenParams};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// The default config with a 300 ms timeout (the ping interval stays 2 s).
fn short(protocol: Protocol) -> Config {
    Config {
        protocol,
        timeout: 300 * MS,
        ..Config::default()
    }
}

fn link(loss: f64) -> LinkConditions {
    LinkConditions::perfect()
        .with_loss(loss)
        .with_latency(10 * MS)
        .with_jitter(5 * MS)
}

/// Connects one client, leaves the connection idle for a minute and checks
/// that neither side saw it end.
fn stays_up_idle(mut w: World, c: usize) {
    assert!(w.connect_all(5 * SEC));
    w.run_for(60 * SEC);
    let peer = w.clients[c].addr;
    let client_ends: Vec<_> = w.clients[c]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Disconnected(_)))
        .collect();
    let server_ends: Vec<_> = w
        .server_events
        .iter()
        .filter(|e| matches!(e.event, Event::Disconnected(_)))
        .map(|e| &e.event)
        .collect();
    assert!(
        client_ends.is_empty() && server_ends.is_empty(),
        "client: {client_ends:?}, server: {server_ends:?}"
    );
    assert!(w.clients[c].conn.is_connected());
    assert!(w.server.peer(peer).is_some_and(|p| p.is_connected()));
}

/// Ten seeded runs: at 10% loss one unlucky run in a minute would be a
/// timeout a user sees.
fn stays_up(protocol: Protocol, loss: f64) {
    for seed in 0..10 {
        let mut w = World::new(seed, short(protocol), link(loss));
        let c = w.add_client();
        stays_up_idle(w, c);
    }
}

#[test]
fn an_idle_native_connection_with_a_300_ms_timeout_stays_up() {
    stays_up(Protocol::Native, 0.0);
}

#[test]
fn an_idle_native_connection_with_a_300_ms_timeout_stays_up_at_10_percent_loss() {
    stays_up(Protocol::Native, 0.1);
}

#[test]
fn an_idle_legume_v4_connection_with_a_300_ms_timeout_stays_up() {
    stays_up(Protocol::LegumeV4, 0.0);
}

#[test]
fn an_idle_legume_v4_connection_with_a_300_ms_timeout_stays_up_at_10_percent_loss() {
    stays_up(Protocol::LegumeV4, 0.1);
}

#[test]
fn an_idle_secure_connection_with_a_1_s_token_timeout_stays_up() {
    // A token's timeout is whole seconds: 1 s, still under the 2 s pings.
    let mut params = TokenParams::new(Config::default().protocol_id, 1, vec![server_addr()]);
    params.timeout = SEC;
    let token = ConnectToken::issue_at(&backend_key(), &params, UNIX_START).expect("valid");
    let mut w = World::new(12, Config::default(), link(0.1));
    w.require_tokens(backend_key());
    let c = w.add_client_with_token(&token);
    stays_up_idle(w, c);
}
