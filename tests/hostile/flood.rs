//! Family 2, a spoofed-source connect flood, while honest clients connect.

use std::collections::{HashSet, VecDeque};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use legume::net::sim::Rng;
use legume::net::EndpointStats;
use legume::prelude::*;

use crate::common::draw::random_bytes;
use crate::common::system::{env_u64, mib, rss_kib, seed_from_clock, wait_for};
use crate::common::wire::*;
use crate::live::{
    spawn_clients, spawn_server, ClientSpec, Pacing, Shared, StopOnDrop, BASELINE, RUN, STOP,
};
use crate::messages::factory;
use crate::serial;

struct FloodPlan {
    secs: f64,
    /// Requests per second, all sources together.
    rate: u64,
    honest: usize,
    per_client: u32,
    /// Sockets bound on each of 127.0.0.2 to 127.0.0.250 per generation.
    ports_per_ip: usize,
    /// How long one generation of source sockets sends before the next.
    generation: Duration,
    seed: u64,
}

#[derive(Debug, Default)]
struct FloodSide {
    sent: u64,
    bytes_out: u64,
    replies: u64,
    bytes_in: u64,
    largest_reply: usize,
}

impl FloodSide {
    fn drain(&mut self, s: &UdpSocket, buf: &mut [u8]) {
        while let Ok((n, _)) = s.recv_from(buf) {
            self.replies += 1;
            self.bytes_in += n as u64;
            self.largest_reply = self.largest_reply.max(n);
        }
    }

    fn send(&mut self, s: &UdpSocket, d: &[u8], to: SocketAddr) {
        match s.send_to(d, to) {
            Ok(_) => {
                self.sent += 1;
                self.bytes_out += d.len() as u64;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("flood send: {e}"),
        }
    }
}

fn flood_generation(ports_per_ip: usize, sources: &mut HashSet<SocketAddr>) -> Vec<UdpSocket> {
    let mut gen = Vec::with_capacity(249 * ports_per_ip);
    for last in 2..=250u8 {
        for _ in 0..ports_per_ip {
            let s = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, last), 0)).expect("bind a source");
            s.set_nonblocking(true).unwrap();
            sources.insert(s.local_addr().unwrap());
            gen.push(s);
        }
    }
    gen
}

fn flood(plan: &FloodPlan) {
    let mut server = Server::new(factory(), Config::default());
    server.listen("127.0.0.1:0").expect("listen");
    let server_addr = server.local_addr().unwrap();
    let shared = Arc::new(Shared::default());
    let _stop = StopOnDrop(Arc::clone(&shared));
    let server_thread = spawn_server(server, &shared, None);
    // Honest clients connect one after another while the flood runs.
    let specs = (0..plan.honest)
        .map(|i| ClientSpec {
            target: server_addr,
            start_after: Duration::from_secs_f64(plan.secs * (i as f64 + 0.5) / plan.honest as f64),
        })
        .collect();
    let pacing = Pacing::AtOnce {
        per_client: plan.per_client,
    };
    let clients_thread = spawn_clients(specs, pacing, Duration::from_micros(500), &shared);
    shared.set_phase(BASELINE);
    assert!(wait_for(Duration::from_secs(5), || {
        shared.server_baseline.load(Ordering::SeqCst)
    }));
    shared.set_phase(RUN);

    // The flood: spoofed sources answer nothing; one heavy source sends a
    // tenth of it, past the per-source rate.
    let mut rng = Rng::new(plan.seed);
    let mut sources = HashSet::new();
    let heavy_socket = UdpSocket::bind("127.0.0.251:0").unwrap();
    heavy_socket.set_nonblocking(true).unwrap();
    sources.insert(heavy_socket.local_addr().unwrap());
    let mut spoofed = FloodSide::default();
    let mut heavy = FloodSide::default();
    let mut buf = vec![0u8; 2048];
    let mut gens: VecDeque<Vec<UdpSocket>> = VecDeque::new();
    gens.push_back(flood_generation(plan.ports_per_ip, &mut sources));
    let mut gen_started = Instant::now();
    let mut next = 0usize;
    let start = Instant::now();
    let length = Duration::from_secs_f64(plan.secs);
    let mut rss_peak = rss_kib();
    let (mut requests, mut forged) = (0u64, 0u64);
    while start.elapsed() < length {
        let due = (plan.rate as f64 * start.elapsed().as_secs_f64()) as u64;
        while spoofed.sent + heavy.sent < due {
            let nonce = rng.next_u64();
            let d = if rng.chance(0.1) {
                forged += 1;
                challenge_response(
                    0,
                    nonce,
                    rng.next_u64() % 10_000,
                    &random_bytes(&mut rng, 16),
                )
            } else {
                requests += 1;
                connect_request(0, nonce)
            };
            if (spoofed.sent + heavy.sent) % 10 == 0 {
                heavy.send(&heavy_socket, &d, server_addr);
            } else {
                let gen = gens.back().unwrap();
                spoofed.send(&gen[next % gen.len()], &d, server_addr);
                next += 1;
            }
        }
        heavy.drain(&heavy_socket, &mut buf);
        if gen_started.elapsed() >= plan.generation {
            // The oldest generation has had a generation's time to get its replies.
            if gens.len() == 2 {
                for s in gens.pop_front().unwrap() {
                    spoofed.drain(&s, &mut buf);
                }
            }
            gens.push_back(flood_generation(plan.ports_per_ip, &mut sources));
            gen_started = Instant::now();
        }
        rss_peak = rss_peak.max(rss_kib());
        assert!(!server_thread.is_finished() && !clients_thread.is_finished());
        thread::sleep(Duration::from_millis(1));
    }
    let flood_time = start.elapsed();
    let after_flood = Instant::now();
    thread::sleep(Duration::from_millis(100));
    for gen in &gens {
        for s in gen {
            spoofed.drain(s, &mut buf);
        }
    }
    heavy.drain(&heavy_socket, &mut buf);
    drop(gens);
    let at_end = shared.endpoint.lock().unwrap().clone();
    let clients_ok = wait_for(Duration::from_secs(30), || {
        shared.clients_done.load(Ordering::SeqCst)
    });
    // A new second: the next handshake packet starts a new rate window,
    // and the table holds that source alone.
    thread::sleep(Duration::from_millis(1100).saturating_sub(after_flood.elapsed()));
    let probe = UdpSocket::bind("127.0.0.252:0").unwrap();
    let answered = shared.endpoint.lock().unwrap().challenges_sent;
    probe.send_to(&connect_request(0, 7), server_addr).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let probe_reply = probe.recv_from(&mut buf).map(|(n, _)| n);
    // The counters are published after the update that answered the probe.
    wait_for(Duration::from_secs(5), || {
        shared.endpoint.lock().unwrap().challenges_sent > answered
    });
    let after_probe = shared.endpoint.lock().unwrap().clone();
    shared.set_phase(STOP);
    let clients = clients_thread.join().expect("clients");
    let server = server_thread.join().expect("server");
    assert!(clients_ok, "honest clients did not finish during the flood");

    let (base, last) = (server.base.as_ref().unwrap(), server.last.as_ref().unwrap());
    let honest: HashSet<u16> = clients
        .iter()
        .map(|c| c.local.expect("bound").port())
        .collect();
    for (i, c) in clients.iter().enumerate() {
        assert!(
            c.connected_after.is_some(),
            "honest client {i} did not connect"
        );
        assert_eq!(
            (c.echoes.unique, c.echoes.duplicates, c.disconnects.len()),
            (u64::from(plan.per_client), 0, 0),
            "honest client {i}"
        );
    }
    assert!(server.disconnects.is_empty() && server.errors == 0);
    // No state for the spoofed sources: the peers are the honest clients,
    // the remembered handshakes theirs, nothing queued.
    assert_eq!(last.peers.len(), plan.honest);
    for a in last.peers.keys() {
        assert!(
            a.ip() == Ipv4Addr::LOCALHOST && honest.contains(&a.port()),
            "a peer that is not an honest client: {a}"
        );
    }
    let d = |f: fn(&EndpointStats) -> u64| f(&last.endpoint) - f(&base.endpoint);
    assert_eq!(d(|s| s.accepted), plan.honest as u64);
    assert!(at_end.remembered_handshakes <= plan.honest);
    assert_eq!(at_end.queued_replies, 0);
    assert!(at_end.rate_tracked_sources <= 8192);
    assert_eq!(
        probe_reply.ok(),
        Some(36),
        "the probe is answered with a challenge"
    );
    assert_eq!(after_probe.rate_tracked_sources, 1);
    assert!(
        d(|s| s.rate_limited) > 0,
        "the heavy source was not limited"
    );
    // Never more bytes back than came in.
    for side in [&spoofed, &heavy] {
        assert!(side.largest_reply <= HANDSHAKE_LEN && side.bytes_in <= side.bytes_out);
    }
    let total = spoofed.sent + heavy.sent;
    let connect_times: Vec<f64> = clients
        .iter()
        .filter_map(|c| c.connected_after.map(|t| t.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "flood (seed {:#x}): {total} handshake packets in {:.2} s ({:.0}/s; {requests} CONNECT_REQUEST, {forged} CHALLENGE_RESPONSE with forged cookies) from {} distinct source addresses; one source sent {} of them",
        plan.seed,
        flood_time.as_secs_f64(),
        total as f64 / flood_time.as_secs_f64(),
        sources.len(),
        heavy.sent,
    );
    println!(
        "  spoofed sources: {} B out, {} B back in {} replies (ratio {:.3}, largest {} B); heavy source: {} B out, {} B back in {} replies",
        spoofed.bytes_out,
        spoofed.bytes_in,
        spoofed.replies,
        spoofed.bytes_in as f64 / spoofed.bytes_out.max(1) as f64,
        spoofed.largest_reply,
        heavy.bytes_out,
        heavy.bytes_in,
        heavy.replies,
    );
    println!(
        "  server: challenges_sent {} (rechallenges {}), bad_cookies {}, rate_limited {}, dropped_invalid {}, dropped_replies {}, accepted {}",
        d(|s| s.challenges_sent),
        d(|s| s.rechallenges),
        d(|s| s.bad_cookies),
        d(|s| s.rate_limited),
        d(|s| s.dropped_invalid),
        d(|s| s.dropped_replies),
        d(|s| s.accepted),
    );
    println!(
        "  server state at the end of the flood: {} peers (all honest), {} remembered handshakes, {} queued replies, {} sources in the rate table ({} after one more second and one request)",
        last.peers.len(),
        at_end.remembered_handshakes,
        at_end.queued_replies,
        at_end.rate_tracked_sources,
        after_probe.rate_tracked_sources,
    );
    println!(
        "  server socket: {} datagrams / {} B in, {} datagrams / {} B out (honest traffic included); kernel drops {}",
        last.socket.datagrams_received - base.socket.datagrams_received,
        last.socket.bytes_received - base.socket.bytes_received,
        last.socket.datagrams_sent - base.socket.datagrams_sent,
        last.socket.bytes_sent - base.socket.bytes_sent,
        server.kernel_drops.map_or("unknown".into(), |d| d.to_string()),
    );
    println!(
        "  honest: {} clients connected during the flood in {:.1}..{:.1} ms, {} notes each echoed once; VmRSS peak {:.1} MiB",
        plan.honest,
        connect_times.iter().copied().fold(f64::INFINITY, f64::min),
        connect_times.iter().copied().fold(0.0, f64::max),
        plan.per_client,
        mib(rss_peak),
    );
}

#[test]
fn spoofed_connect_flood() {
    let _serial = serial();
    flood(&FloodPlan {
        secs: 1.0,
        rate: 10_000,
        honest: 4,
        per_client: 20,
        ports_per_ip: 2,
        generation: Duration::from_millis(250),
        seed: 0xF100D,
    });
}

#[test]
#[ignore = "10 s at 10,000 requests/s: run in release (see the module docs)"]
fn flood_full() {
    let _serial = serial();
    flood(&FloodPlan {
        secs: env_u64("LEGUME_FLOOD_SECS", 10) as f64,
        rate: env_u64("LEGUME_FLOOD_RATE", 10_000),
        honest: 8,
        per_client: 100,
        ports_per_ip: 4,
        generation: Duration::from_millis(500),
        seed: env_u64("LEGUME_FLOOD_SEED", seed_from_clock()),
    });
}
