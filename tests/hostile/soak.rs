//! Family 3, soak: many clients, steady traffic, minutes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use legume::prelude::*;

use crate::common::system::{env_u64, mib, rss_kib, status_kib, wait_for};
use crate::live::{
    spawn_clients, spawn_server, ClientSpec, Pacing, Shared, StopOnDrop, BASELINE, RUN, SETTLE,
    STOP,
};
use crate::messages::factory;
use crate::serial;

#[test]
#[ignore = "minutes long: run in release (see the module docs)"]
fn soak() {
    let _serial = serial();
    let secs = env_u64("LEGUME_SOAK_SECS", 300);
    let n = env_u64("LEGUME_SOAK_CLIENTS", 200) as usize;
    let every = Duration::from_millis(100);
    let mut server = Server::new(factory(), Config::default());
    server.listen("127.0.0.1:0").expect("listen");
    let server_addr = server.local_addr().unwrap();
    let shared = Arc::new(Shared::default());
    let _stop = StopOnDrop(Arc::clone(&shared));
    let server_thread = spawn_server(server, &shared, None);
    let specs = (0..n)
        .map(|i| ClientSpec {
            target: server_addr,
            start_after: Duration::from_millis(5 * i as u64),
        })
        .collect();
    let clients_thread = spawn_clients(
        specs,
        Pacing::Steady { every },
        Duration::from_millis(1),
        &shared,
    );
    assert!(
        wait_for(Duration::from_secs(60), || {
            shared.connected.load(Ordering::SeqCst) == n && shared.peers.load(Ordering::SeqCst) == n
        }),
        "{} of {n} clients connected",
        shared.connected.load(Ordering::SeqCst)
    );
    shared.set_phase(BASELINE);
    assert!(wait_for(Duration::from_secs(5), || {
        shared.server_baseline.load(Ordering::SeqCst)
            && shared.client_baseline.load(Ordering::SeqCst)
    }));
    shared.set_phase(RUN);
    // RSS every 10 s (more often in short runs); compare the first and the
    // last fifth of the run (the first and last minute of five).
    let interval = if secs >= 120 {
        Duration::from_secs(10)
    } else {
        Duration::from_secs((secs / 12).max(1))
    };
    let start = Instant::now();
    let length = Duration::from_secs(secs);
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut next_sample = start + interval;
    while start.elapsed() < length {
        thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next_sample {
            samples.push((start.elapsed().as_secs_f64(), rss_kib()));
            next_sample += interval;
        }
        assert!(!server_thread.is_finished() && !clients_thread.is_finished());
        assert!(
            shared.peers.load(Ordering::SeqCst) == n,
            "a peer left after {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    shared.set_phase(SETTLE);
    let drained = wait_for(Duration::from_secs(60), || {
        shared.clients_done.load(Ordering::SeqCst)
    });
    shared.set_phase(STOP);
    let clients = clients_thread.join().expect("clients");
    let server = server_thread.join().expect("server");
    assert!(
        drained,
        "echoes still missing a minute after the traffic stopped"
    );

    let mut sent = 0u64;
    for (i, c) in clients.iter().enumerate() {
        assert!(c.disconnects.is_empty(), "client {i}: {:?}", c.disconnects);
        let got = server
            .received
            .get(&(i as u32))
            .cloned()
            .unwrap_or_default();
        let s = u64::from(c.sent);
        assert_eq!(
            (got.unique, got.duplicates, got.out_of_order),
            (s, 0, 0),
            "client {i} at the server"
        );
        assert_eq!(
            (c.echoes.unique, c.echoes.duplicates, c.echoes.out_of_order),
            (s, 0, 0),
            "client {i}'s echoes"
        );
        sent += s;
    }
    assert!(server.disconnects.is_empty(), "{:?}", server.disconnects);
    assert_eq!(server.errors, 0);
    let window = (secs as f64 / 5.0).min(60.0);
    let first = samples
        .iter()
        .filter(|(t, _)| *t <= window + 0.5)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let last = samples
        .iter()
        .filter(|(t, _)| *t >= secs as f64 - window - 0.5)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let unreliable_sent: u64 = clients.iter().map(|c| u64::from(c.unreliable_sent)).sum();
    let (base, end) = (server.base.as_ref().unwrap(), server.last.as_ref().unwrap());
    println!(
        "soak: {n} clients for {secs} s: {sent} reliable notes (half ordered; 1 in 16 fragmented) each delivered once and echoed once, {}/{unreliable_sent} unreliable arrived, 0 disconnects",
        server.unreliable
    );
    println!(
        "  server socket: {} datagrams in, {} out; {} updates",
        end.socket.datagrams_received - base.socket.datagrams_received,
        end.socket.datagrams_sent - base.socket.datagrams_sent,
        server.updates,
    );
    let listed: Vec<String> = samples
        .iter()
        .map(|(t, kib)| format!("{t:.0}s {:.1}", mib(*kib)))
        .collect();
    println!("  VmRSS (MiB): {}", listed.join(", "));
    println!(
        "  VmRSS max in the first {window:.0} s {:.1} MiB, in the last {window:.0} s {:.1} MiB; VmHWM {:.1} MiB",
        mib(first),
        mib(last),
        mib(status_kib("VmHWM"))
    );
    assert!(
        last <= first + 8 * 1024,
        "memory grew from {:.1} MiB to {:.1} MiB",
        mib(first),
        mib(last)
    );
}
