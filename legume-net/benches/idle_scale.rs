//! Idle-scale probe: the memory and update cost of a real `Server` with N
//! idle `Client`s in another process, over loopback UDP.
//!
//! Not a criterion bench: a program with subcommands, run by hand (Linux
//! only: it reads `/proc/self/status`). `bench/idle_scale.sh` runs the
//! sweep; by hand:
//!
//! ```text
//! cargo bench -p legume-net --bench idle_scale -- sweep [--ns 0,100,1000,10000] [--reps 2]
//!     [--sleep-us 16667] [--port 41000]
//! cargo bench -p legume-net --bench idle_scale -- run --n N --port P [--sleep-us U]
//! ```
//!
//! `run` starts two children of this same program: `server` and, when
//! N > 0, `clients`; each prints one JSON line and ends by itself (the
//! runner kills the clients child by its id only if it is still alive 5 s
//! after the server ended).
//!
//! - **clients**: N `Client`s with the default `Config`, each on its own
//!   socket, driven by one loop (`update` each, drain events, sleep 10 ms)
//!   that adds 64 new clients per pass. Nobody sends a message: the only
//!   traffic is keep-alives (one per `Config::ping_interval`, 2 s, each
//!   way) and their acks. It reads `RssAnon` and `VmRSS` of its own
//!   process before the first client and again once all N have been
//!   connected for 3 s: the difference over N is the bytes per idle client.
//! - **server**: a `Server` with the default `Config` except
//!   `server.connect_rate_per_source` (every client shares 127.0.0.1, and
//!   the default 256 handshake packets per second would stretch the ramp to
//!   a minute at 10,000). Its loop is a 60 Hz frame by default: `update`,
//!   drain events, sleep until the next frame (`--sleep-us` is the frame
//!   period). Once all N are connected and have stayed so for 3 s, it reads
//!   `VmRSS` and `RssAnon`, then times every iteration's `update` plus the
//!   event drain (not the sleep) for `--measure` s (default 5) and reports
//!   mean, p50, p99 (nearest rank) and max, its CPU share, then
//!   `disconnect_all`.
//! - **sweep**: `run` for every N, `--reps` times, interleaved (rep 1 of
//!   every N, then rep 2); then a table of medians. Bytes per idle server
//!   connection = (median RSS(N) - median RSS(0)) / N; per idle client =
//!   the median of the clients' own deltas.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume_core::MessageFactory;
use legume_net::{Client, Config, Event, Server};

/// Clients added per pass of the clients' loop.
const RAMP: usize = 64;
/// The clients' loop period.
const CLIENT_TICK: Duration = Duration::from_millis(10);
/// All N connected this long before memory is read.
const SETTLE: Duration = Duration::from_secs(3);

fn arg<T: FromStr>(name: &str, default: Option<T>) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
    {
        Some(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value for {name}: {v}")),
        None => default.unwrap_or_else(|| panic!("missing {name}")),
    }
}

/// A "Key:   123 kB" line of this process's `/proc/self/status`, in kB.
fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User plus system time of this process, in clock ticks (USER_HZ, 100).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    let after_name = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn config() -> Config {
    let mut config = Config::default();
    config.server.connect_rate_per_source = 1_000_000;
    config
}

/// Nearest-rank percentile of sorted nanoseconds, in µs.
fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e3
}

fn server(
    listen: SocketAddr,
    expect: usize,
    measure: Duration,
    timeout: Duration,
    frame: Duration,
) {
    let mut server = Server::new(Arc::new(MessageFactory::new()), config());
    server.listen(listen).expect("bind the server");
    let mut samples: Vec<u64> = Vec::with_capacity(1 << 16);
    let started = Instant::now();
    let deadline = started + timeout;
    let (mut connects, mut disconnects) = (0u64, 0u64);
    let mut all_since: Option<Instant> = None;
    let mut all_after: Option<f64> = None;
    let (mut rss_kb, mut anon_kb) = (0, 0);
    let mut measuring: Option<(Instant, u64)> = None;
    let mut next_frame = Instant::now();
    let timed_out = loop {
        let start = Instant::now();
        server.update();
        while let Some(e) = server.poll_event() {
            match e.event {
                Event::Connected => connects += 1,
                Event::Disconnected(_) => disconnects += 1,
                _ => {}
            }
        }
        let elapsed = start.elapsed();
        let now = Instant::now();
        match measuring {
            Some((from, _)) => {
                samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
                if now - from >= measure {
                    break false;
                }
            }
            None if server.peer_count() == expect => {
                let since = *all_since.get_or_insert(now);
                all_after.get_or_insert((now - started).as_secs_f64());
                if now - since >= SETTLE {
                    (rss_kb, anon_kb) = (status_kb("VmRSS:"), status_kb("RssAnon:"));
                    measuring = Some((Instant::now(), cpu_ticks()));
                }
            }
            None => all_since = None,
        }
        if now >= deadline {
            break true;
        }
        next_frame += frame;
        match next_frame.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            // Behind: the next frame starts now rather than in a burst.
            None => next_frame = Instant::now(),
        }
    };
    let (cpu_pct, wall) = match measuring {
        Some((from, ticks)) => {
            let wall = from.elapsed().as_secs_f64().max(1e-9);
            ((cpu_ticks() - ticks) as f64 / 100.0 / wall * 100.0, wall)
        }
        None => (0.0, 0.0),
    };
    samples.sort_unstable();
    let mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64 / 1e3;
    println!(
        "{{\"role\":\"server\",\"n\":{expect},\"timed_out\":{timed_out},\"all_connected_after_s\":{:.2},\
         \"peers_end\":{},\"connects\":{connects},\"disconnects\":{disconnects},\
         \"rss_kb\":{rss_kb},\"rss_anon_kb\":{anon_kb},\"iters\":{},\"measured_s\":{wall:.2},\
         \"mean_us\":{mean:.2},\"p50_us\":{:.2},\"p99_us\":{:.2},\"max_us\":{:.2},\
         \"cpu_pct\":{cpu_pct:.1},\"frame_us\":{}}}",
        all_after.unwrap_or(-1.0),
        server.peer_count(),
        samples.len(),
        percentile_us(&samples, 0.5),
        percentile_us(&samples, 0.99),
        percentile_us(&samples, 1.0),
        frame.as_micros(),
    );
    server.disconnect_all("probe over");
}

fn clients(connect: SocketAddr, n: usize, timeout: Duration) {
    let factory = Arc::new(MessageFactory::new());
    let deadline = Instant::now() + timeout;
    let (rss0, anon0) = (status_kb("VmRSS:"), status_kb("RssAnon:"));
    let mut peers: Vec<(Client, bool)> = Vec::with_capacity(n);
    let (mut max_connected, mut ended) = (0usize, 0usize);
    let mut all_since: Option<Instant> = None;
    let mut per_client: Option<(f64, f64)> = None;
    loop {
        for _ in 0..RAMP.min(n - peers.len()) {
            let mut client = Client::new(Arc::clone(&factory), config());
            client.connect(connect).expect("client socket");
            peers.push((client, false));
        }
        for (client, over) in peers.iter_mut().filter(|(_, over)| !over) {
            client.update();
            while let Some(e) = client.poll_event() {
                if let Event::Disconnected(_) = e {
                    *over = true;
                    ended += 1;
                }
            }
        }
        let connected = peers.iter().filter(|(c, _)| c.connected()).count();
        max_connected = max_connected.max(connected);
        let now = Instant::now();
        if connected == n && per_client.is_none() {
            let since = *all_since.get_or_insert(now);
            if now - since >= SETTLE {
                let delta = |after: u64, before: u64| {
                    after.saturating_sub(before) as f64 * 1024.0 / n.max(1) as f64
                };
                per_client = Some((
                    delta(status_kb("VmRSS:"), rss0),
                    delta(status_kb("RssAnon:"), anon0),
                ));
            }
        } else if connected < n {
            all_since = None;
        }
        if (peers.len() == n && ended == n) || now >= deadline {
            break;
        }
        std::thread::sleep(CLIENT_TICK);
    }
    let (rss_b, anon_b) = per_client.unwrap_or((-1.0, -1.0));
    println!(
        "{{\"role\":\"clients\",\"n\":{n},\"max_connected\":{max_connected},\"ended\":{ended},\
         \"rss_bytes_per_client\":{rss_b:.0},\"anon_bytes_per_client\":{anon_b:.0}}}"
    );
}

/// Runs one server and its clients; returns their JSON lines.
fn run(n: usize, port: u16, frame_us: u64, measure_s: u64) -> String {
    let exe = std::env::current_exe().expect("own path");
    let addr = format!("127.0.0.1:{port}");
    let timeout_s = 60 + n / 200;
    let (ns, fs, ms, ts) = (
        n.to_string(),
        frame_us.to_string(),
        measure_s.to_string(),
        timeout_s.to_string(),
    );
    let server_args = [
        "server",
        "--listen",
        &addr,
        "--n",
        &ns,
        "--sleep-us",
        &fs,
        "--measure",
        &ms,
        "--timeout",
        &ts,
    ];
    let mut srv = Command::new(&exe)
        .args(server_args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    std::thread::sleep(Duration::from_millis(300));
    let cts = (timeout_s + 5).to_string();
    let mut cli = (n > 0).then(|| {
        Command::new(&exe)
            .args(["clients", "--connect", &addr, "--n", &ns, "--timeout", &cts])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the clients")
    });
    let mut out = String::new();
    if let Some(mut stdout) = srv.stdout.take() {
        stdout.read_to_string(&mut out).expect("server output");
    }
    srv.wait().expect("server exit");
    if let Some(c) = cli.as_mut() {
        let waited = Instant::now();
        while c.try_wait().ok().flatten().is_none() && waited.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if c.try_wait().ok().flatten().is_none() {
            eprintln!(
                "clients (pid {}) still running 5 s after the server; killing it",
                c.id()
            );
            let _ = c.kill();
        }
        let _ = c.wait();
        if let Some(mut stdout) = c.stdout.take() {
            stdout.read_to_string(&mut out).expect("clients output");
        }
    }
    out
}

/// A number field of a one-line JSON object written above.
fn field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn sweep(ns: &[usize], reps: usize, port: u16, frame_us: u64, measure_s: u64) {
    let mut lines: Vec<(usize, String, String)> = Vec::new();
    let mut port = port;
    for rep in 0..reps {
        for &n in ns {
            eprintln!("rep {} n {n}", rep + 1);
            let out = run(n, port, frame_us, measure_s);
            port = port.wrapping_add(1).max(1024);
            print!("{out}");
            let server = out
                .lines()
                .find(|l| l.contains("\"server\""))
                .unwrap_or("")
                .to_string();
            let clients = out
                .lines()
                .find(|l| l.contains("\"clients\""))
                .unwrap_or("")
                .to_string();
            lines.push((n, server, clients));
        }
    }
    let med = |n: usize, role: u8, key: &str| {
        median(
            lines
                .iter()
                .filter(|(m, ..)| *m == n)
                .filter_map(|(_, s, c)| field(if role == 0 { s } else { c }, key))
                .collect(),
        )
    };
    let (rss0, anon0) = (med(0, 0, "rss_kb"), med(0, 0, "rss_anon_kb"));
    println!();
    println!(
        "| N | server VmRSS MiB | B per server connection (VmRSS / RssAnon) | B per client (VmRSS / RssAnon) | update mean µs | p99 µs | max µs | server CPU % |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &n in ns {
        let (rss, anon) = (med(n, 0, "rss_kb"), med(n, 0, "rss_anon_kb"));
        let per = |kb: f64, kb0: f64| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.0}", (kb - kb0) * 1024.0 / n as f64)
            }
        };
        let client = if n == 0 {
            "-".to_string()
        } else {
            format!(
                "{:.0} / {:.0}",
                med(n, 1, "rss_bytes_per_client"),
                med(n, 1, "anon_bytes_per_client")
            )
        };
        println!(
            "| {n} | {:.2} | {} / {} | {client} | {:.1} | {:.1} | {:.1} | {:.1} |",
            rss / 1024.0,
            per(rss, rss0),
            per(anon, anon0),
            med(n, 0, "mean_us"),
            med(n, 0, "p99_us"),
            med(n, 0, "max_us"),
            med(n, 0, "cpu_pct"),
        );
    }
}

fn main() {
    let secs = |s: u64| Duration::from_secs(s);
    match std::env::args().nth(1).as_deref() {
        Some("sweep") => {
            let ns: String = arg("--ns", Some("0,100,1000,10000".to_string()));
            let ns: Vec<usize> = ns
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .collect();
            sweep(
                &ns,
                arg("--reps", Some(2)),
                arg("--port", Some(41000)),
                arg("--sleep-us", Some(16_667)),
                arg("--measure", Some(5)),
            );
        }
        Some("run") => print!(
            "{}",
            run(
                arg("--n", None),
                arg("--port", None),
                arg("--sleep-us", Some(16_667)),
                arg("--measure", Some(5)),
            )
        ),
        Some("server") => server(
            arg("--listen", None),
            arg("--n", None),
            secs(arg("--measure", Some(5))),
            secs(arg("--timeout", Some(60))),
            Duration::from_micros(arg("--sleep-us", Some(16_667))),
        ),
        Some("clients") => clients(
            arg("--connect", None),
            arg("--n", None),
            secs(arg("--timeout", Some(65))),
        ),
        // `cargo bench` with no arguments (or `--bench` alone): nothing to
        // measure by default, so that a plain `cargo bench` stays quick.
        _ => eprintln!("idle_scale: pass `sweep` or `run` (see the file's header)"),
    }
}
