//! A server endpoint's update cost with 10, 1,000 and 10,000 connected idle
//! peers. The endpoint keeps its peers' timers in a heap, so an update must
//! cost work for the peers that are due, not for every peer.
//!
//! Setup: N client `Connection`s connect through the endpoint from fake
//! addresses over a `SimNetwork` with 1 ms one-way latency, their starts
//! spread evenly over one ping interval (2 s), so that their keep-alive
//! timers are spread too, as on a real server. Then the world runs in 1 ms
//! ticks (a 1 kHz frame loop). Nobody sends messages: the only traffic is
//! keep-alive pings and their acks, both ways.
//!
//! - **quiet**: `handle_timeout(now)` plus draining `poll_transmit` at an
//!   instant when no peer's timer is due. Must be flat in N.
//! - **tick_1ms**: one 1 ms tick of the running world, measuring only the
//!   server's share: `handle_datagram` for what arrived, `handle_timeout`,
//!   draining `poll_transmit` (copying each datagram out) and
//!   `poll_event`. The clients' work and the simulated network are not
//!   timed. On average N / 2000 peers ping per tick in each direction, so
//!   this grows with N by the keep-alive work of those peers alone; the
//!   per-tick counts are printed at start to divide by. One `Instant::now()`
//!   pair per tick (about 25 ns) is included.
//!
//! At start it also prints the memory of a fresh connection (resident set
//! growth over 2,000 `Connection::connect` calls; Linux only).
//!
//! Run with `cargo bench -p legume-net --bench server_idle`.

mod common;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use legume_core::MessageFactory;
use legume_net::sim::{LinkConditions, SimDatagram, SimNetwork};
use legume_net::{Config, Connection, ServerEndpoint};

use common::{check_event, factory, server_addr};

const TICK: Duration = Duration::from_millis(1);

fn peer_addr(i: usize) -> SocketAddr {
    let i = u32::try_from(i).expect("small index");
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 5000))
}

fn peer_index(addr: SocketAddr) -> usize {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let [_, a, b, c] = ip.octets();
            (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c)
        }
        IpAddr::V6(_) => unreachable!("bench peers are IPv4"),
    }
}

/// Per-tick counters of the server's traffic.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    ticks: u64,
    server_in: u64,
    server_out: u64,
}

/// One server endpoint and N idle clients on a simulated network.
struct IdleWorld {
    now: Instant,
    net: SimNetwork,
    server: ServerEndpoint,
    clients: Vec<Connection>,
    /// Each client's scheduled timer, and the heap of them (stale entries
    /// are skipped), so that a tick costs the untimed side O(due) too.
    scheduled: Vec<Option<Instant>>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    touched: Vec<usize>,
    is_touched: Vec<bool>,
    arrived: Vec<SimDatagram>,
    /// The server's datagrams of this tick: (to, start, len) in `arena`.
    outbox: Vec<(SocketAddr, usize, usize)>,
    arena: Vec<u8>,
    buf: Vec<u8>,
    counts: Counts,
}

impl IdleWorld {
    /// N clients whose handshakes start evenly over `spread`, all connected
    /// and past their first keep-alive when this returns.
    fn connected(n: usize, spread: Duration) -> Self {
        let start = Instant::now();
        let config = Config::default();
        let f: Arc<MessageFactory> = factory();
        let mut net = SimNetwork::new(n as u64);
        net.set_default_conditions(LinkConditions::perfect().with_latency(TICK));
        let server =
            ServerEndpoint::with_insecure_seed(config.clone(), Arc::clone(&f), start, 0x5EED);
        let mut w = IdleWorld {
            now: start,
            net,
            server,
            clients: Vec::with_capacity(n),
            scheduled: Vec::with_capacity(n),
            timers: BinaryHeap::with_capacity(2 * n),
            touched: Vec::new(),
            is_touched: vec![false; n],
            arrived: Vec::new(),
            outbox: Vec::new(),
            arena: Vec::new(),
            buf: vec![0; 65_536],
            counts: Counts::default(),
        };
        let gap = spread / u32::try_from(n).expect("small n");
        for i in 0..n {
            let at = start + gap * u32::try_from(i).expect("small n");
            let conn =
                Connection::connect(config.clone(), Arc::clone(&f), at, 0xC11E_0000 + i as u64);
            let t = conn
                .poll_timeout()
                .expect("a connecting client has a timer");
            w.clients.push(conn);
            w.scheduled.push(Some(t));
            w.timers.push(Reverse((t, i)));
        }
        // Every handshake, then a whole ping interval so that each peer has
        // pinged and been pinged at least once.
        let settle = spread + config.ping_interval + Duration::from_millis(500);
        while w.now < start + settle {
            w.tick();
        }
        assert!(
            w.clients.iter().all(Connection::is_connected),
            "not every client connected"
        );
        assert_eq!(w.server.peer_count(), n);
        w
    }

    fn touch(&mut self, i: usize) {
        if !self.is_touched[i] {
            self.is_touched[i] = true;
            self.touched.push(i);
        }
    }

    /// Advances the clock by one tick and runs everything due; returns the
    /// time spent in the server endpoint's calls.
    fn tick(&mut self) -> Duration {
        self.now += TICK;
        let now = self.now;
        let server = server_addr();
        self.arrived.clear();
        while let Some(d) = self.net.pop_due(now) {
            self.arrived.push(d);
        }

        // The server's update, as the UDP driver does it: what arrived,
        // the timers, then transmit everything and drain events.
        let t = Instant::now();
        for d in self.arrived.iter().filter(|d| d.to == server) {
            self.server.handle_datagram(now, d.from, &d.bytes);
            self.counts.server_in += 1;
        }
        self.server.handle_timeout(now);
        while let Some((to, n)) = self.server.poll_transmit(now, &mut self.buf) {
            let at = self.arena.len();
            self.arena.extend_from_slice(&self.buf[..n]);
            self.outbox.push((to, at, n));
        }
        while let Some(e) = self.server.poll_event() {
            check_event(&e.event);
        }
        let spent = t.elapsed();

        self.counts.ticks += 1;
        self.counts.server_out += self.outbox.len() as u64;
        for &(to, at, n) in &self.outbox {
            self.net.send(now, server, to, &self.arena[at..at + n]);
        }
        self.outbox.clear();
        self.arena.clear();

        // The clients' side, not timed.
        let mut arrived = std::mem::take(&mut self.arrived);
        for d in arrived.drain(..) {
            if d.to != server {
                let i = peer_index(d.to);
                self.clients[i].handle_datagram(now, &d.bytes);
                self.touch(i);
            }
            self.net.recycle(d.bytes);
        }
        self.arrived = arrived;
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.scheduled[i] == Some(t) {
                self.scheduled[i] = None;
                self.clients[i].handle_timeout(now);
                self.touch(i);
            }
        }
        let touched = std::mem::take(&mut self.touched);
        for &i in &touched {
            self.is_touched[i] = false;
            let conn = &mut self.clients[i];
            while let Some(n) = conn.poll_transmit(now, &mut self.buf) {
                self.net.send(now, peer_addr(i), server, &self.buf[..n]);
            }
            while let Some(e) = conn.poll_event() {
                check_event(&e);
            }
            if let Some(t) = conn.poll_timeout() {
                if self.scheduled[i].is_none_or(|s| t < s) {
                    self.scheduled[i] = Some(t);
                    self.timers.push(Reverse((t, i)));
                }
            }
        }
        self.touched = touched;
        self.touched.clear();
        spent
    }
}

/// The resident set size in bytes, where `/proc` has it.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn print_connection_memory() {
    const COUNT: usize = 2_000;
    let f = factory();
    let now = Instant::now();
    let before = resident_bytes();
    let t = Instant::now();
    let conns: Vec<Connection> = (0..COUNT)
        .map(|i| Connection::connect(Config::default(), Arc::clone(&f), now, i as u64))
        .collect();
    let took = t.elapsed();
    let after = resident_bytes();
    if let (Some(b), Some(a)) = (before, after) {
        eprintln!(
            "memory: a fresh Connection holds about {} KiB resident ({COUNT} connections: \
             +{} MiB, created in {took:.2?})",
            a.saturating_sub(b) / COUNT as u64 / 1024,
            a.saturating_sub(b) / (1024 * 1024),
        );
    }
    drop(conns);
}

fn bench_server_idle(c: &mut Criterion) {
    print_connection_memory();
    let mut quiet = c.benchmark_group("server_idle/quiet");
    quiet.sample_size(20);
    quiet.warm_up_time(Duration::from_secs(1));
    quiet.measurement_time(Duration::from_secs(2));
    let mut worlds = Vec::new();
    for n in [10, 1_000, 10_000] {
        let built = Instant::now();
        let mut w = IdleWorld::connected(n, Config::default().ping_interval);
        let setup = built.elapsed();
        // Steady state over one whole ping interval: what a tick costs and
        // how much traffic the server sees per tick.
        let before = w.counts;
        // Each tick's (time, datagrams in, datagrams out), to tell a slow
        // tick that did much from one that was preempted.
        let mut log = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            let c = w.counts;
            let d = w.tick();
            log.push((
                d,
                w.counts.server_in - c.server_in,
                w.counts.server_out - c.server_out,
            ));
        }
        let ticks = w.counts.ticks - before.ticks;
        let spent: Duration = log.iter().map(|l| l.0).sum();
        log.sort_by_key(|l| Reverse(l.0));
        let slowest: Vec<String> = log[..3]
            .iter()
            .map(|(d, i, o)| format!("{d:.2?} ({i} in, {o} out)"))
            .collect();
        eprintln!(
            "server_idle/{n}: setup {setup:.2?}; over {ticks} ticks: {:.2} datagrams in and {:.2} out \
             per tick, {:.2?} per tick in the server on average; slowest ticks {}",
            (w.counts.server_in - before.server_in) as f64 / ticks as f64,
            (w.counts.server_out - before.server_out) as f64 / ticks as f64,
            spent / u32::try_from(ticks).expect("few ticks"),
            slowest.join(", "),
        );

        // An instant at which nothing is due: the last tick ran every timer
        // that was, and nothing arrives before the next tick.
        let now = w.now;
        let mut buf = vec![0u8; 1500];
        w.server.handle_timeout(now);
        assert!(w.server.poll_transmit(now, &mut buf).is_none());
        assert!(w.server.poll_timeout().is_some_and(|t| t > now));
        let mut sent = 0u64;
        quiet.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                w.server.handle_timeout(now);
                while w.server.poll_transmit(now, &mut buf).is_some() {
                    sent += 1;
                }
            })
        });
        assert_eq!(sent, 0, "a quiet update sent something");
        worlds.push((n, w));
    }
    quiet.finish();

    let mut tick = c.benchmark_group("server_idle/tick_1ms");
    tick.sample_size(20);
    tick.warm_up_time(Duration::from_secs(1));
    tick.measurement_time(Duration::from_secs(3));
    for (n, mut w) in worlds {
        tick.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| (0..iters).map(|_| w.tick()).sum())
        });
        assert_eq!(
            w.server.peer_count(),
            n,
            "idle peers dropped during the bench"
        );
    }
    tick.finish();
}

criterion_group!(benches, bench_server_idle);
criterion_main!(benches);
