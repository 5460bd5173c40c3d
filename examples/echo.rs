//! Echo benchmark program, with the command line shared by the peer
//! programs `bench/compare.sh` compares it with (renet, laminar, raw UDP,
//! legume 0.5; not part of this repository, see that script).
//!
//! Run:
//!
//! ```text
//! cargo run --release --example echo -- server --listen 127.0.0.1:40000 --seconds 30 [--stats]
//! cargo run --release --example echo -- client --connect 127.0.0.1:40000 \
//!     --messages 100000 --size 32 --delivery ordered --timeout 60 [--clients C] [--window W]
//! ```
//!
//! Either side takes `--loss P --dup P --latency-ms MS --jitter-ms MS`
//! (each direction of that side's traffic) to run through the driver's
//! network conditioner instead of a proxy.
//!
//! The server echoes every message to its sender with the same delivery;
//! with `--stats` it prints a table of its peers' live statistics every
//! second (RTT, loss, bytes and messages per second each way, resends per
//! second, congestion window, queues). The client prints one JSON line and
//! exits 0 when every reliable or ordered message came back exactly once
//! (always 0 for unreliable). A client that cannot connect (rejected, no
//! answer within the connect timeout, or not connected by `--timeout`)
//! says why on stderr and exits 1 at once, printing no result line.
//!
//! `--bbr` on either side makes that side's connections use the BBR-style
//! rate control, `--newreno` NewReno (the library's default), for
//! comparisons.
//!
//! `--no-offload` on either side turns off that side's UDP segmentation and
//! receive offload (Linux GSO/GRO; `DriverConfig::udp_offload`), for comparisons.
//!
//! Both sides also take `--secure-key KEY` (a base64 private key from
//! `cargo run --example token -- keygen`): the server then requires connect
//! tokens and every packet is encrypted and authenticated; the client issues
//! its own token from the key (a shortcut for benchmarking the secure mode;
//! a real client gets its token from a backend).
//!
//! The library's logs go to stderr, filtered by `RUST_LOG` (default
//! `warn`): `RUST_LOG=legume_net=debug` adds handshakes, disconnects and
//! summaries of invalid traffic.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume::net::{ConnectToken, LiveStats, PrivateKey, TokenParams};
use legume::prelude::*;

use support::{connect_failure, init_logging, Args};

/// One echoed payload: the delivery kind, then the bytes (u32 LE sequence first).
#[derive(Debug, Message)]
#[message(id = 20)]
struct Echo {
    kind: u8,
    data: Vec<u8>,
}

const KINDS: [(&str, Delivery); 3] = [
    ("unreliable", Delivery::Unreliable),
    ("reliable", Delivery::Reliable),
    ("ordered", Delivery::ReliableOrdered),
];

fn delivery_of(kind: u8) -> Delivery {
    KINDS
        .get(usize::from(kind))
        .map_or(Delivery::Reliable, |k| k.1)
}

fn factory() -> Result<Arc<MessageFactory>, RegistryError> {
    let mut f = MessageFactory::new();
    f.register::<Echo>()?;
    Ok(Arc::new(f))
}

/// The config, with the conditioner when any impairment flag is given.
fn config(args: &Args) -> Config {
    let loss: f64 = args.get("--loss").unwrap_or(0.0);
    let dup: f64 = args.get("--dup").unwrap_or(0.0);
    let latency: u64 = args.get("--latency-ms").unwrap_or(0);
    let jitter: u64 = args.get("--jitter-ms").unwrap_or(0);
    let mut config = Config {
        driver: legume::net::DriverConfig {
            udp_offload: !args.flag("--no-offload"),
            ..legume::net::DriverConfig::default()
        },
        congestion: legume::net::CongestionConfig {
            controller: if args.flag("--bbr") {
                legume::net::CongestionController::Bbr
            } else if args.flag("--newreno") {
                legume::net::CongestionController::NewReno
            } else {
                legume::net::CongestionConfig::default().controller
            },
            ..legume::net::CongestionConfig::default()
        },
        ..Config::default()
    };
    if loss > 0.0 || dup > 0.0 || latency > 0 || jitter > 0 {
        let link = legume::net::sim::LinkConditions::perfect()
            .with_loss(loss)
            .with_duplicate(dup)
            .with_latency(Duration::from_millis(latency))
            .with_jitter(Duration::from_millis(jitter));
        config.driver.conditioner = Some(legume::net::sim::Conditioner::symmetric(link, 7));
    }
    config
}

/// The `--secure-key` private key, if given.
fn secure_key(args: &Args) -> Result<Option<PrivateKey>, Box<dyn std::error::Error>> {
    match args.get::<String>("--secure-key") {
        Some(k) => Ok(Some(
            PrivateKey::from_base64(k.trim()).ok_or("--secure-key is not a base64 32-byte key")?,
        )),
        None => Ok(None),
    }
}

fn usage() -> Box<dyn std::error::Error> {
    "usage: echo server --listen ADDR --seconds S [--stats]\n       \
     echo client --connect ADDR --messages N --size B --delivery reliable|ordered|unreliable \
     --timeout S [--clients C] [--window W]\n       \
     either side: [--loss P] [--dup P] [--latency-ms MS] [--jitter-ms MS] [--secure-key KEY] [--no-offload] [--bbr] [--newreno]"
        .into()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging(Some("warn"));
    let args = Args::from_env();
    match args.command() {
        Some("server") => {
            let listen: SocketAddr = args.get("--listen").ok_or_else(usage)?;
            let seconds: f64 = args.get("--seconds").ok_or_else(usage)?;
            let stats = args.flag("--stats");
            run_server(
                listen,
                Duration::from_secs_f64(seconds),
                config(&args),
                stats,
                secure_key(&args)?,
            )
        }
        Some("client") => run_client(&args),
        _ => Err(usage()),
    }
}

fn run_server(
    listen: SocketAddr,
    life: Duration,
    config: Config,
    stats: bool,
    key: Option<PrivateKey>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut server = Server::new(factory()?, config);
    server.listen(listen)?;
    if let Some(key) = key {
        server.require_connect_tokens(key, listen);
    }
    if let Some(b) = server.socket_buffers() {
        eprintln!(
            "echo server on {listen}; socket buffers granted: recv {} B, send {} B",
            b.recv, b.send
        );
    }
    let start = Instant::now();
    let end = start + life;
    let mut next_table = start + Duration::from_secs(1);
    while Instant::now() < end {
        server.update_timeout(Duration::from_millis(5));
        if stats && Instant::now() >= next_table {
            print!("{}", stats_table(&server, start));
            next_table = (next_table + Duration::from_secs(1)).max(Instant::now());
        }
        while let Some(ServerEvent { client, event, .. }) = server.poll_event() {
            if let Event::Message(msg) = event {
                if let Some(e) = msg.downcast_ref::<Echo>() {
                    // A full queue drops this echo; the client's count shows it.
                    let _ = server.send(client, e, delivery_of(e.kind));
                }
            }
        }
    }
    Ok(())
}

/// The `--stats` table: the endpoint's counters, then one line per peer
/// from its live statistics (rates over the last second).
fn stats_table(server: &Server, start: Instant) -> String {
    let e = server.stats();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- {:.1} s  peers {}  accepted {}  rejected {}  invalid {}",
        start.elapsed().as_secs_f64(),
        server.peer_count(),
        e.accepted,
        e.rejected,
        e.dropped_invalid
    );
    let _ = writeln!(
        out,
        "{:<21} {:>7} {:>6} {:>6} {:>10} {:>10} {:>15} {:>8} {:>7} {:>9} {:>7} {:>7}",
        "peer",
        "rtt ms",
        "±ms",
        "loss%",
        "in/s",
        "out/s",
        "msg/s in/out",
        "resend/s",
        "cwnd kB",
        "queue B",
        "unacked",
        "reorder"
    );
    let peers: BTreeMap<SocketAddr, LiveStats> = server.live_stats().collect();
    for (peer, s) in peers {
        let _ = writeln!(
            out,
            "{:<21} {:>7.1} {:>6.1} {:>6.1} {:>10} {:>10} {:>15} {:>8.1} {:>7.1} {:>9} {:>7} {:>7}",
            peer.to_string(),
            s.rtt_ms,
            s.rtt_var_ms,
            s.packet_loss * 100.0,
            human_rate(s.in_bytes_per_s),
            human_rate(s.out_bytes_per_s),
            format!("{:.0}/{:.0}", s.in_messages_per_s, s.out_messages_per_s),
            s.resends_per_s,
            s.congestion_window as f64 / 1000.0,
            s.out_buffer_bytes,
            s.pending_acks,
            s.reorder_queue
        );
    }
    out
}

/// A byte rate for people: `812 B`, `3.4 kB`, `1.2 MB` (per second).
fn human_rate(bytes_per_s: f64) -> String {
    if bytes_per_s < 1000.0 {
        format!("{bytes_per_s:.0} B")
    } else if bytes_per_s < 1e6 {
        format!("{:.1} kB", bytes_per_s / 1e3)
    } else {
        format!("{:.1} MB", bytes_per_s / 1e6)
    }
}

/// Per-client bookkeeping of echoes.
struct Tracker {
    client: Client,
    seen: Vec<bool>,
    sent: u32,
    echoed: u64,
    duplicates: u64,
    out_of_order: u64,
    highest: Option<u32>,
}

impl Tracker {
    fn record(&mut self, data: &[u8]) -> bool {
        let Some(seq) = data
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return false;
        };
        let Some(seen) = self.seen.get_mut(seq as usize) else {
            return false;
        };
        if self.highest.is_some_and(|h| seq < h) {
            self.out_of_order += 1;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        if *seen {
            self.duplicates += 1;
            return false;
        }
        *seen = true;
        self.echoed += 1;
        true
    }
}

fn run_client(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let connect: SocketAddr = args.get("--connect").ok_or_else(usage)?;
    let messages: u32 = args.get("--messages").ok_or_else(usage)?;
    let size: usize = args.get("--size").ok_or_else(usage)?;
    let delivery_name: String = args.get("--delivery").ok_or_else(usage)?;
    let timeout: f64 = args.get("--timeout").ok_or_else(usage)?;
    let clients: usize = args.get("--clients").unwrap_or(1);
    let window: u64 = args.get("--window").unwrap_or(0);
    let kind = KINDS
        .iter()
        .position(|k| k.0 == delivery_name)
        .ok_or_else(usage)?;
    let delivery = KINDS[kind].1;
    if size < 4 {
        return Err("--size must be at least 4".into());
    }

    let factory = factory()?;
    let key = secure_key(args)?;
    let mut trackers = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut client = Client::new(Arc::clone(&factory), config(args));
        match &key {
            Some(key) => {
                let params = TokenParams::new(0, i as u64, vec![connect]);
                client.connect_with_token(&ConnectToken::issue(key, &params)?)?;
            }
            None => client.connect(connect)?,
        }
        trackers.push(Tracker {
            client,
            seen: vec![false; messages as usize],
            sent: 0,
            echoed: 0,
            duplicates: 0,
            out_of_order: 0,
            highest: None,
        });
    }
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    // Handshakes first; the measured interval starts at the first send. A
    // client that cannot connect ends the run at once, saying why.
    while !trackers.iter().all(|t| t.client.connected()) {
        for (index, t) in trackers.iter_mut().enumerate() {
            t.client.update_timeout(Duration::from_millis(1));
            while let Some(event) = t.client.poll_event() {
                if let Some(why) = connect_failure(&event) {
                    eprintln!("echo client {index}: cannot connect to {connect}: {why}");
                    std::process::exit(1);
                }
            }
        }
        if Instant::now() >= deadline {
            eprintln!("echo client: not connected to {connect} within --timeout {timeout} s");
            std::process::exit(1);
        }
    }
    let start = Instant::now();
    let mut last_echo = start;
    let mut echo = Echo {
        kind: kind as u8,
        data: vec![0xA5; size],
    };
    loop {
        let mut progressed = false;
        for (index, t) in trackers.iter_mut().enumerate() {
            // Tag the filler with the client index, as the peers do.
            let tag = format!("{index}:");
            let n = tag.len().min(size - 4);
            echo.data[4..4 + n].copy_from_slice(&tag.as_bytes()[..n]);
            while t.sent < messages && (window == 0 || (u64::from(t.sent) - t.echoed) < window) {
                echo.data[..4].copy_from_slice(&t.sent.to_le_bytes());
                if t.client.send(&echo, delivery).is_err() {
                    break; // queue full: try again after the next update
                }
                t.sent += 1;
                progressed = true;
            }
            t.client.update();
            while let Some(event) = t.client.poll_event() {
                if let Event::Message(msg) = event {
                    if let Some(e) = msg.downcast_ref::<Echo>() {
                        if t.record(&e.data) {
                            last_echo = Instant::now();
                            progressed = true;
                        }
                    }
                }
            }
        }
        let all_done = trackers.iter().all(|t| t.echoed == u64::from(messages));
        let idle_unreliable = delivery == Delivery::Unreliable
            && trackers.iter().all(|t| t.sent == messages)
            && last_echo.elapsed() >= Duration::from_secs(1);
        if all_done || idle_unreliable || Instant::now() >= deadline {
            break;
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    let echoed: u64 = trackers.iter().map(|t| t.echoed).sum();
    let dups: u64 = trackers.iter().map(|t| t.duplicates).sum();
    let ooo: u64 = trackers.iter().map(|t| t.out_of_order).sum();
    let secs = last_echo.duration_since(start).as_secs_f64().max(1e-9);
    println!(
        "{{\"impl\":\"legume-rs\",\"delivery\":\"{delivery_name}\",\"clients\":{clients},\"messages\":{messages},\
         \"size\":{size},\"echoed\":{echoed},\"duplicates\":{dups},\"out_of_order\":{ooo},\"seconds\":{secs:.4},\
         \"msgs_per_sec\":{:.1},\"mbit_per_sec\":{:.3}}}",
        echoed as f64 / secs,
        echoed as f64 * size as f64 * 8.0 / secs / 1e6
    );
    let complete = echoed == u64::from(messages) * clients as u64;
    std::process::exit(if delivery == Delivery::Unreliable || complete {
        0
    } else {
        1
    })
}
