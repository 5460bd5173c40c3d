//! Family 1, bad input thrown at a live server (from strangers, and into a
//! live session through a capture proxy) while honest clients exchange
//! reliable traffic.

use std::collections::HashSet;
use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use legume::net::EndpointStats;
use legume::prelude::*;

use crate::common::system::{env_u64, mib, rss_kib, seed_from_clock, status_kib, wait_for};
use crate::common::wire::*;
use crate::forge::{Expected, KINDS};
use crate::live::{
    accounted, attack, drops, proxy, spawn_clients, spawn_server, ClientSpec, Pacing, Shared,
    StopOnDrop, BASELINE, RUN, SETTLE, STOP,
};
use crate::messages::factory;
use crate::serial;

struct BadInputPlan {
    /// Datagrams from stranger addresses.
    strangers: u64,
    /// Stranger sockets (distinct source addresses).
    sockets: usize,
    clients: usize,
    /// Reliable notes each honest client sends (and gets echoed).
    per_client: u32,
    deadline: Duration,
    seed: u64,
    /// Send as fast as the sockets take it, overflowing the server's socket
    /// buffer, instead of keeping at most 512 datagrams unhandled. The
    /// kernel then drops datagrams, honest ones included, and the checks
    /// of the counters become bounds.
    blast: bool,
}

fn bad_input(plan: &BadInputPlan) {
    // Exact accounting below needs every handshake packet classified
    // without timing; the per-source rate limit has its own test (the flood).
    let config = Config {
        server: legume::net::ServerConfig {
            connect_rate_per_source: u32::MAX,
            ..legume::net::ServerConfig::default()
        },
        ..Config::default()
    };
    let mut server = Server::new(factory(), config);
    server.listen("127.0.0.1:0").expect("listen");
    let server_addr = server.local_addr().unwrap();
    let buffers = server.socket_buffers().unwrap();
    let proxy_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy_socket.local_addr().unwrap();
    let shared = Arc::new(Shared::default());
    let _stop = StopOnDrop(Arc::clone(&shared));
    shared.attack_total.store(plan.strangers, Ordering::SeqCst);
    let (up_total, down_total) = (plan.strangers / 10, plan.strangers / 40);

    let server_thread = spawn_server(server, &shared, Some(proxy_addr));
    let sh = Arc::clone(&shared);
    let (seed, blast) = (plan.seed, plan.blast);
    let proxy_thread = thread::spawn(move || {
        let window = if blast { u64::MAX } else { 64 };
        proxy(
            proxy_socket,
            server_addr,
            sh,
            up_total,
            down_total,
            window,
            seed ^ 0xF00D,
        )
    });
    let specs = (0..plan.clients)
        .map(|i| ClientSpec {
            target: if i == 0 { proxy_addr } else { server_addr },
            start_after: Duration::ZERO,
        })
        .collect();
    let pacing = Pacing::WithAttack {
        per_client: plan.per_client,
    };
    let clients_thread = spawn_clients(specs, pacing, Duration::from_micros(500), &shared);

    let all_in = wait_for(Duration::from_secs(20), || {
        shared.connected.load(Ordering::SeqCst) == plan.clients
            && shared.peers.load(Ordering::SeqCst) == plan.clients
    });
    assert!(all_in, "honest clients did not connect");
    // Let handshake retransmissions in flight land before the baseline.
    thread::sleep(Duration::from_millis(200));
    shared.set_phase(BASELINE);
    assert!(wait_for(Duration::from_secs(5), || {
        shared.server_baseline.load(Ordering::SeqCst)
            && shared.client_baseline.load(Ordering::SeqCst)
    }));
    let rss_before = rss_kib();
    shared.set_phase(RUN);
    let sh = Arc::clone(&shared);
    let (sockets, strangers) = (plan.sockets, plan.strangers);
    let window = if blast { u64::MAX } else { 512 };
    let attack_thread =
        thread::spawn(move || attack(server_addr, sh, strangers, sockets, window, seed));

    let start = Instant::now();
    let mut rss_peak = rss_before;
    loop {
        rss_peak = rss_peak.max(rss_kib());
        let done = shared.attack_done.load(Ordering::SeqCst)
            && shared.proxy_done.load(Ordering::SeqCst)
            && shared.clients_done.load(Ordering::SeqCst);
        if done {
            break;
        }
        for (name, finished) in [
            ("server", server_thread.is_finished()),
            ("clients", clients_thread.is_finished()),
            ("proxy", proxy_thread.is_finished()),
        ] {
            assert!(!finished, "the {name} thread died");
        }
        assert!(
            start.elapsed() < plan.deadline,
            "not done after {:?}: attack {}/{} done {}, proxy done {}, clients done {}",
            plan.deadline,
            shared.attack_sent.load(Ordering::SeqCst),
            plan.strangers,
            shared.attack_done.load(Ordering::SeqCst),
            shared.proxy_done.load(Ordering::SeqCst),
            shared.clients_done.load(Ordering::SeqCst),
        );
        thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    shared.set_phase(SETTLE);
    thread::sleep(Duration::from_millis(500));
    rss_peak = rss_peak.max(rss_kib());
    shared.set_phase(STOP);
    let attack = attack_thread.join().expect("attacker");
    let proxy = proxy_thread.join().expect("proxy");
    let clients = clients_thread.join().expect("clients");
    let server = server_thread.join().expect("server");
    let hwm = status_kib("VmHWM");

    // Honest traffic: every note and every echo exactly once, ordered ones in order.
    let n = u64::from(plan.per_client);
    for (i, c) in clients.iter().enumerate() {
        let got = server
            .received
            .get(&(i as u32))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (got.unique, got.duplicates, got.out_of_order),
            (n, 0, 0),
            "client {i}'s notes at the server"
        );
        assert_eq!(
            (
                c.sent,
                c.echoes.unique,
                c.echoes.duplicates,
                c.echoes.out_of_order
            ),
            (plan.per_client, n, 0, 0),
            "client {i}'s echoes"
        );
        assert!(
            c.disconnects.is_empty() && !c.rejected,
            "client {i}: {:?}",
            c.disconnects
        );
        assert_eq!(c.errors, 0, "client {i} saw error events");
    }
    assert!(server.disconnects.is_empty(), "{:?}", server.disconnects);
    assert_eq!(
        (server.errors, server.wrong_peer, server.echo_failures),
        (0, 0, 0)
    );
    let unreliable_sent: u64 = clients.iter().map(|c| u64::from(c.unreliable_sent)).sum();
    assert!(server.unreliable <= unreliable_sent);

    // Every datagram the server read is counted once, by the endpoint or a connection.
    let (base, last) = (server.base.as_ref().unwrap(), server.last.as_ref().unwrap());
    assert_eq!(base.peers.len(), plan.clients);
    assert_eq!(
        base.peers.keys().collect::<HashSet<_>>(),
        last.peers.keys().collect::<HashSet<_>>(),
        "the honest peers, and only they, stay connected"
    );
    let read = last.socket.datagrams_received - base.socket.datagrams_received;
    let outcomes = last.endpoint.handshake_outcomes() - base.endpoint.handshake_outcomes();
    let repeated = last.endpoint.repeated_accepts - base.endpoint.repeated_accepts;
    let by_peers: u64 = last
        .peers
        .iter()
        .map(|(a, s)| accounted(s) - accounted(&base.peers[a]))
        .sum();
    assert_eq!(
        read,
        outcomes + by_peers + repeated,
        "datagrams read vs counted"
    );

    // The strangers' datagrams: each counted where its bytes say it should
    // be. When blasting, the kernel drops some before the server reads them.
    let kernel = server.kernel_drops.unwrap_or(0);
    let d = |f: fn(&EndpointStats) -> u64| f(&last.endpoint) - f(&base.endpoint);
    assert_eq!(
        (
            d(|s| s.accepted),
            d(|s| s.rejected),
            d(|s| s.replayed),
            d(|s| s.rate_limited)
        ),
        (0, 0, 0, 0)
    );
    let answered = d(|s| s.challenges_sent) - d(|s| s.dropped_replies);
    if plan.blast {
        assert!(outcomes <= attack.sent && attack.sent - outcomes <= kernel);
        assert!(attack.replies <= answered);
    } else {
        assert_eq!(
            outcomes, attack.sent,
            "stranger datagrams vs handshake outcomes"
        );
        assert_eq!(
            Expected::observed(&base.endpoint, &last.endpoint),
            attack.expected
        );
        assert_eq!(
            attack.replies, answered,
            "challenges received by the strangers"
        );
    }
    assert!(attack.largest_reply <= HANDSHAKE_LEN && attack.bytes_in <= attack.bytes_out);

    // Spoofed from the honest client's address: dropped by its connection.
    let proxied = &last.peers[&proxy_addr];
    let proxied_base = &base.peers[&proxy_addr];
    let counted_up = drops(proxied) - drops(proxied_base) + repeated;
    if plan.blast {
        assert!(counted_up <= proxy.injected_up && proxy.injected_up - counted_up <= kernel);
    } else {
        assert_eq!(
            counted_up, proxy.injected_up,
            "datagrams injected toward the server vs the connection's drops"
        );
    }
    for (a, s) in &last.peers {
        let b = &base.peers[a];
        assert_eq!(s.dropped_frames, b.dropped_frames, "peer {a}");
        if *a != proxy_addr {
            assert_eq!(drops(s), drops(b), "peer {a} dropped honest datagrams");
        }
    }
    // Toward the client nothing overflows; a repeated ACCEPT the server
    // sent may have been lost on the way (its socket toward the proxy).
    let c0 = &clients[0];
    let counted_down = drops(&c0.last) - drops(c0.base.as_ref().unwrap());
    if plan.blast {
        assert!((proxy.injected_down..=proxy.injected_down + repeated).contains(&counted_down));
    } else {
        assert_eq!(
            counted_down,
            proxy.injected_down + repeated,
            "datagrams injected toward the client (plus repeated ACCEPTs) vs its drops"
        );
    }
    for (i, c) in clients.iter().enumerate().skip(1) {
        assert_eq!(
            drops(&c.last),
            drops(c.base.as_ref().unwrap()),
            "client {i}"
        );
    }

    // Memory: whatever the attack, the process grows by a bounded amount.
    let growth = rss_peak.saturating_sub(rss_before);
    assert!(
        growth < 64 * 1024,
        "RSS grew by {:.1} MiB during the attack",
        mib(growth)
    );

    let thrown = attack.sent + proxy.injected_up + proxy.injected_down;
    println!(
        "bad input ({}, seed {:#x}): {thrown} datagrams thrown in {:.2} s ({:.0}/s; the strangers' in {:.2} s): {} from {} stranger addresses ({:.1} MB), {} spoofed from an honest client's address toward the server, {} toward that client",
        if plan.blast {
            "blast"
        } else {
            "windowed"
        },
        plan.seed,
        elapsed.as_secs_f64(),
        thrown as f64 / elapsed.as_secs_f64(),
        attack.elapsed.as_secs_f64(),
        attack.sent,
        plan.sockets,
        attack.bytes_out as f64 / 1e6,
        proxy.injected_up,
        proxy.injected_down,
    );
    for (kind, count) in KINDS.iter().zip(attack.kinds) {
        println!("  {count:>9}  {kind}");
    }
    let e = |f: fn(&EndpointStats) -> u64| d(f);
    println!(
        "  server endpoint: dropped_invalid {}, challenges_sent {} (rechallenges {}), bad_cookies {}, dropped_replies {}, rate_limited {}, accepted/rejected/replayed {}/{}/{}, repeated_accepts {}",
        e(|s| s.dropped_invalid),
        e(|s| s.challenges_sent),
        e(|s| s.rechallenges),
        e(|s| s.bad_cookies),
        e(|s| s.dropped_replies),
        e(|s| s.rate_limited),
        e(|s| s.accepted),
        e(|s| s.rejected),
        e(|s| s.replayed),
        repeated,
    );
    println!(
        "  proxied connection at the server: dropped_invalid +{}, dropped_duplicate +{}; client side: dropped_invalid +{}, dropped_duplicate +{}",
        proxied.dropped_invalid - proxied_base.dropped_invalid,
        proxied.dropped_duplicate - proxied_base.dropped_duplicate,
        c0.last.dropped_invalid - c0.base.as_ref().unwrap().dropped_invalid,
        c0.last.dropped_duplicate - c0.base.as_ref().unwrap().dropped_duplicate,
    );
    println!(
        "  server socket: {read} datagrams read = {outcomes} handshake outcomes + {by_peers} by connections + {repeated} repeated accepts; kernel drops at the server socket: {}; receive buffer {} B",
        server.kernel_drops.map_or("unknown".into(), |d| d.to_string()),
        buffers.recv,
    );
    println!(
        "  strangers got {} replies, {} B for {} B sent (largest {} B)",
        attack.replies, attack.bytes_in, attack.bytes_out, attack.largest_reply
    );
    println!(
        "  honest: {} clients x {} reliable notes (1 in 16 fragmented), each delivered once and echoed once; unreliable {}/{} arrived",
        plan.clients, plan.per_client, server.unreliable, unreliable_sent
    );
    println!(
        "  memory: VmRSS {:.1} MiB before the attack, peak {:.1} MiB during it, VmHWM {:.1} MiB; server updates {}",
        mib(rss_before),
        mib(rss_peak),
        mib(hwm),
        server.updates,
    );
}

#[test]
fn bad_input_against_a_live_server() {
    let _serial = serial();
    bad_input(&BadInputPlan {
        strangers: 30_000,
        sockets: 32,
        clients: 8,
        per_client: 100,
        deadline: Duration::from_secs(60),
        seed: 0x0BAD_1DEA,
        blast: false,
    });
}

/// The plan of the full runs, from the `LEGUME_ATTACK_*` environment.
fn full_plan(blast: bool) -> BadInputPlan {
    BadInputPlan {
        strangers: env_u64("LEGUME_ATTACK_DATAGRAMS", 1_000_000),
        sockets: 256,
        clients: 8,
        per_client: env_u64("LEGUME_ATTACK_NOTES", 2000) as u32,
        deadline: Duration::from_secs(1200),
        seed: env_u64("LEGUME_ATTACK_SEED", seed_from_clock()),
        blast,
    }
}

#[test]
#[ignore = "a million datagrams: run in release (see the module docs)"]
fn bad_input_full() {
    let _serial = serial();
    bad_input(&full_plan(false));
}

#[test]
#[ignore = "overflows the server's socket: run in release (see the module docs)"]
fn bad_input_blast() {
    let _serial = serial();
    bad_input(&full_plan(true));
}
