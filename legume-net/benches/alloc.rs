//! Allocation accounting of the sans-IO core, with a counting global
//! allocator (no criterion: this counts, it does not time).
//!
//! - **Per message, steady state.** A client `Connection` and a
//!   `ServerEndpoint` on a [`SimNetwork`] link (1 ms one way, no loss) run
//!   on a simulated clock in 1 ms steps; each step the client app queues 32
//!   messages of 32 bytes (type id included). After a warm-up, every call
//!   into the two state machines is counted in one of five windows:
//!   `send` (`Connection::send`), `tx` (client `poll_transmit`), `rx`
//!   (server `handle_datagram` + `poll_event`), `ack tx` (server
//!   `poll_transmit`), `ack rx` (client `handle_datagram` + `poll_event`),
//!   and `timers` (both `handle_timeout`s). The simulated network's own work
//!   is outside every window. Figures are allocations (and bytes) per
//!   message, for unreliable, reliable and ordered delivery. A `realloc`
//!   counts as one allocation of its new size.
//! - **Packing.** 100,000 ordered 32-byte messages queued at once: client
//!   datagrams per message, messages per datagram, wire bytes per message.
//! - **Idle connections.** Live heap bytes the server holds after 1,000
//!   clients connected and idled for 3 s, divided by 1,000 (the clients and
//!   the network are dropped before the count).
//!
//! Run: `cargo bench -p legume-net --bench alloc`. Without `--bench` (as
//! under `cargo test --all-targets`) it runs a quick, smaller version.
//! With `--trace`, it also captures a `std::backtrace::Backtrace` of the
//! first allocations in each window and prints their call sites, grouped;
//! a debug build gives exact lines:
//! `cargo test -p legume-net --bench alloc -- --trace`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use legume_core::{Message, MessageFactory};
use legume_derive::Message;
use legume_net::sim::{LinkConditions, SimNetwork};
use legume_net::{Config, Connection, Delivery, Event, ServerEndpoint};

// ---- the counting allocator --------------------------------------------------------------

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocation calls (alloc, alloc_zeroed, realloc) since the start.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes requested by those calls.
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// While set, allocations capture backtraces (up to `TRACE_BUDGET`).
static TRACING: AtomicBool = AtomicBool::new(false);
static TRACE_BUDGET: AtomicUsize = AtomicUsize::new(0);
/// Captured (size, backtrace) pairs.
static TRACES: Mutex<Vec<(usize, Backtrace)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread captures a backtrace: its own allocations are
    /// neither counted nor traced.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

fn on_alloc(size: usize) {
    LIVE.fetch_add(size, Relaxed);
    if BUSY.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    ALLOCS.fetch_add(1, Relaxed);
    ALLOC_BYTES.fetch_add(size as u64, Relaxed);
    if TRACING.load(Relaxed) {
        capture(size);
    }
}

fn capture(size: usize) {
    let _ = BUSY.try_with(|busy| {
        busy.set(true);
        if TRACE_BUDGET
            .fetch_update(Relaxed, Relaxed, |b| b.checked_sub(1))
            .is_ok()
        {
            let bt = Backtrace::force_capture();
            if let Ok(mut traces) = TRACES.lock() {
                traces.push((size, bt));
            }
        }
        busy.set(false);
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// atomics and the capture path cannot recurse (see `BUSY`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        on_alloc(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn counters() -> (u64, u64) {
    (ALLOCS.load(Relaxed), ALLOC_BYTES.load(Relaxed))
}

fn live() -> usize {
    LIVE.load(Relaxed)
}

// ---- windows -----------------------------------------------------------------------------

/// The measured windows of the steady-state run.
#[derive(Clone, Copy, Debug)]
enum W {
    Send,
    Tx,
    Rx,
    AckTx,
    AckRx,
    Timers,
}

const WINDOWS: [(W, &str); 6] = [
    (W::Send, "client send()"),
    (W::Tx, "client poll_transmit"),
    (W::Rx, "server handle_datagram + poll_event"),
    (W::AckTx, "server poll_transmit (acks)"),
    (W::AckRx, "client handle_datagram + poll_event (acks)"),
    (W::Timers, "handle_timeout, both ends"),
];

/// Allocation counts per window, and backtraces when tracing.
struct Tally {
    on: bool,
    allocs: [u64; 6],
    bytes: [u64; 6],
    traces: [Vec<(usize, Backtrace)>; 6],
    left: [usize; 6],
}

impl Tally {
    fn new(trace_budget: usize) -> Self {
        Tally {
            on: false,
            allocs: [0; 6],
            bytes: [0; 6],
            traces: Default::default(),
            left: [trace_budget; 6],
        }
    }

    /// Runs `f`, counting its allocations in window `w` while `on`.
    #[inline]
    fn m<R>(&mut self, w: W, f: impl FnOnce() -> R) -> R {
        if !self.on {
            return f();
        }
        let i = w as usize;
        let tracing = self.left[i] > 0;
        if tracing {
            TRACE_BUDGET.store(self.left[i], Relaxed);
            TRACING.store(true, Relaxed);
        }
        let (a0, b0) = counters();
        let r = f();
        let (a1, b1) = counters();
        if tracing {
            TRACING.store(false, Relaxed);
            let got = std::mem::take(&mut *TRACES.lock().expect("trace lock"));
            self.left[i] = self.left[i].saturating_sub(got.len());
            self.traces[i].extend(got);
        }
        self.allocs[i] += a1 - a0;
        self.bytes[i] += b1 - b0;
        r
    }
}

// ---- the simulated pair ------------------------------------------------------------------

/// 31 bytes of fields plus the one-byte type id: 32 bytes encoded.
#[derive(Debug, Message)]
#[legume(crate = "legume_core")]
#[message(id = 20)]
struct Small {
    data: [u8; 31],
}

const MSG_LEN: usize = 32;
const STEP: Duration = Duration::from_millis(1);

fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Small>().expect("no clash");
    Arc::new(f)
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 4000))
}

fn client_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 5000))
}

fn link() -> LinkConditions {
    LinkConditions::perfect().with_latency(STEP)
}

fn check(e: &Event) {
    match e {
        Event::Disconnected(r) => panic!("connection closed: {r:?}"),
        Event::Error(e) => panic!("message error: {e}"),
        Event::Rejected { reason } => panic!("rejected: {reason}"),
        _ => {}
    }
}

/// One client and one server endpoint.
struct Pair {
    now: Instant,
    net: SimNetwork,
    server: ServerEndpoint,
    client: Connection,
    buf: Vec<u8>,
    /// Messages the server app received.
    received: u64,
    /// Datagrams the client sent.
    client_datagrams: u64,
    /// Datagrams the server sent.
    server_datagrams: u64,
}

impl Pair {
    fn connected(seed: u64) -> Self {
        let now = Instant::now();
        let mut net = SimNetwork::new(seed);
        net.set_default_conditions(link());
        let config = Config::default();
        let server = ServerEndpoint::with_insecure_seed(config.clone(), factory(), now, seed);
        let client = Connection::connect(config, factory(), now, seed ^ 0xC11E);
        let mut pair = Pair {
            now,
            net,
            server,
            client,
            buf: vec![0; 65_536],
            received: 0,
            client_datagrams: 0,
            server_datagrams: 0,
        };
        let mut off = Tally::new(0);
        for _ in 0..1000 {
            if pair.client.is_connected() && pair.server.peer_count() == 1 {
                return pair;
            }
            pair.step(&mut off);
        }
        panic!("no handshake after 1 s");
    }

    /// Advances the clock by one step and runs everything that is due.
    fn step(&mut self, t: &mut Tally) {
        self.now += STEP;
        let now = self.now;
        let client = client_addr(0);
        while let Some(n) = t.m(W::Tx, || self.client.poll_transmit(now, &mut self.buf)) {
            self.client_datagrams += 1;
            self.net.send(now, client, server_addr(), &self.buf[..n]);
        }
        while let Some(d) = self.net.pop_due(now) {
            if d.to == server_addr() {
                t.m(W::Rx, || self.server.handle_datagram(now, d.from, &d.bytes));
            } else {
                t.m(W::AckRx, || self.client.handle_datagram(now, &d.bytes));
            }
            self.net.recycle(d.bytes);
        }
        if self.server.poll_timeout().is_some_and(|x| x <= now) {
            t.m(W::Timers, || self.server.handle_timeout(now));
        }
        if self.client.poll_timeout().is_some_and(|x| x <= now) {
            t.m(W::Timers, || self.client.handle_timeout(now));
        }
        while let Some(e) = t.m(W::Rx, || self.server.poll_event()) {
            check(&e.event);
            if let Event::Message(_) = e.event {
                self.received += 1;
            }
        }
        while let Some((to, n)) = t.m(W::AckTx, || self.server.poll_transmit(now, &mut self.buf)) {
            self.server_datagrams += 1;
            self.net.send(now, server_addr(), to, &self.buf[..n]);
        }
        while let Some(e) = t.m(W::AckRx, || self.client.poll_event()) {
            check(&e);
        }
    }
}

// ---- 1. per message, steady state --------------------------------------------------------

const PER_STEP: u64 = 32;

struct Steady {
    tally: Tally,
    messages: u64,
    datagrams: u64,
    wire_bytes: u64,
    /// Live heap bytes at the end of the measured steps minus at their start.
    live_growth: i64,
}

fn steady(delivery: Delivery, warm: u64, measured: u64, trace_budget: usize) -> Steady {
    let mut pair = Pair::connected(7);
    let msg = Small { data: [0x5A; 31] };
    assert_eq!(msg.message_len(), MSG_LEN);
    let mut t = Tally::new(trace_budget);
    let mut d0 = 0;
    let mut b0 = 0;
    let mut live0 = 0;
    for step in 0..warm + measured {
        if step == warm {
            t.on = true;
            d0 = pair.client_datagrams;
            b0 = pair.client.stats().out_bytes;
            live0 = live();
        }
        for _ in 0..PER_STEP {
            t.m(W::Send, || pair.client.send(&msg, delivery))
                .expect("queue has room");
        }
        pair.step(&mut t);
    }
    t.on = false;
    let live_growth = live() as i64 - live0 as i64;
    let messages = PER_STEP * measured;
    let stats = pair.client.stats();
    // The load must be sustainable, or the queues grow and the counts mean growth.
    assert!(
        stats.out_buffer_bytes < 64 * 1024,
        "{delivery:?}: the client's queue grew to {} bytes",
        stats.out_buffer_bytes
    );
    if delivery != Delivery::Unreliable {
        let sent = PER_STEP * (warm + measured);
        assert!(
            pair.received + 4 * PER_STEP >= sent,
            "{delivery:?}: only {} of {sent} arrived",
            pair.received
        );
    }
    Steady {
        datagrams: pair.client_datagrams - d0,
        wire_bytes: stats.out_bytes - b0,
        tally: t,
        messages,
        live_growth,
    }
}

// ---- 2. packing --------------------------------------------------------------------------

struct Packing {
    messages: u64,
    client_datagrams: u64,
    server_datagrams: u64,
    wire_bytes: u64,
    sim_time: Duration,
}

fn packing(messages: u64) -> Packing {
    let mut pair = Pair::connected(11);
    let msg = Small { data: [0xA5; 31] };
    let (d0, s0, b0) = (
        pair.client_datagrams,
        pair.server_datagrams,
        pair.client.stats().out_bytes,
    );
    let start = pair.now;
    for _ in 0..messages {
        pair.client
            .send(&msg, Delivery::ReliableOrdered)
            .expect("queue has room");
    }
    let mut off = Tally::new(0);
    while pair.received < messages {
        pair.step(&mut off);
        assert!(
            pair.now - start < Duration::from_secs(600),
            "packing run stalled"
        );
    }
    Packing {
        messages,
        client_datagrams: pair.client_datagrams - d0,
        server_datagrams: pair.server_datagrams - s0,
        wire_bytes: pair.client.stats().out_bytes - b0,
        sim_time: pair.now - start,
    }
}

// ---- 3. idle connections -----------------------------------------------------------------

struct Idle {
    clients: usize,
    live_bytes: usize,
    /// Allocations and bytes while the server admitted one more client
    /// (its `handle_datagram` of the challenge response, and the rest of
    /// that handshake's server calls).
    accept_allocs: u64,
    accept_bytes: u64,
    accept_traces: Vec<(usize, Backtrace)>,
}

/// Live bytes the server gains from `n` idle clients, and the cost of one accept.
fn idle(n: usize, trace: bool) -> Idle {
    let config = Config::default();
    let factory = factory();
    let start = Instant::now();
    let mut server =
        ServerEndpoint::with_insecure_seed(config.clone(), Arc::clone(&factory), start, 3);
    let baseline = live();
    let mut accept = Tally::new(if trace { 400 } else { 0 });
    {
        let mut net = SimNetwork::new(5);
        net.set_default_conditions(link());
        let mut buf = vec![0u8; 65_536];
        let mut clients: Vec<Connection> = Vec::with_capacity(n + 1);
        let index: HashMap<SocketAddr, usize> = (0..=n).map(|i| (client_addr(i), i)).collect();
        let mut now = start;
        let add = |clients: &mut Vec<Connection>, now: Instant| {
            let i = clients.len();
            clients.push(Connection::connect(
                config.clone(),
                Arc::clone(&factory),
                now,
                0xC11E_0000 + i as u64,
            ));
        };
        for _ in 0..n {
            add(&mut clients, now);
        }
        // Runs the world to `until`, jumping to each next event; with
        // `counted`, the server calls go into `accept`'s window.
        let mut run = |clients: &mut Vec<Connection>,
                       server: &mut ServerEndpoint,
                       now: &mut Instant,
                       until: Instant,
                       t: &mut Tally| {
            loop {
                for (i, c) in clients.iter_mut().enumerate() {
                    while let Some(len) = c.poll_transmit(*now, &mut buf) {
                        net.send(*now, client_addr(i), server_addr(), &buf[..len]);
                    }
                    while let Some(e) = c.poll_event() {
                        check(&e);
                    }
                }
                while let Some((to, len)) = t.m(W::Rx, || server.poll_transmit(*now, &mut buf)) {
                    net.send(*now, server_addr(), to, &buf[..len]);
                }
                while let Some(e) = t.m(W::Rx, || server.poll_event()) {
                    check(&e.event);
                }
                let mut next = net.next_delivery();
                let mut consider = |x: Option<Instant>| {
                    if let Some(x) = x {
                        next = Some(next.map_or(x, |t: Instant| t.min(x)));
                    }
                };
                consider(server.poll_timeout());
                for c in clients.iter() {
                    consider(c.poll_timeout());
                }
                let Some(next) = next.filter(|&x| x <= until) else {
                    *now = until;
                    return;
                };
                *now = (*now).max(next);
                while let Some(d) = net.pop_due(*now) {
                    if d.to == server_addr() {
                        t.m(W::Rx, || server.handle_datagram(*now, d.from, &d.bytes));
                    } else if let Some(&i) = index.get(&d.to) {
                        clients[i].handle_datagram(*now, &d.bytes);
                    }
                    net.recycle(d.bytes);
                }
                if server.poll_timeout().is_some_and(|x| x <= *now) {
                    t.m(W::Rx, || server.handle_timeout(*now));
                }
                for c in clients.iter_mut() {
                    if c.poll_timeout().is_some_and(|x| x <= *now) {
                        c.handle_timeout(*now);
                    }
                }
            }
        };
        let mut off = Tally::new(0);
        let until = now + Duration::from_secs(1);
        run(&mut clients, &mut server, &mut now, until, &mut off);
        assert!(
            clients.iter().all(Connection::is_connected),
            "clients connected"
        );
        // Idle long enough for keep-alive pings (every 2 s) to go both ways.
        let until = now + Duration::from_secs(3);
        run(&mut clients, &mut server, &mut now, until, &mut off);
        assert_eq!(server.peer_count(), n);
        // One more client, its handshake counted on the server side.
        add(&mut clients, now);
        accept.on = true;
        let until = now + Duration::from_millis(50);
        run(&mut clients, &mut server, &mut now, until, &mut accept);
        accept.on = false;
        assert_eq!(server.peer_count(), n + 1);
        drop(clients);
    }
    while server.poll_event().is_some() {}
    let live_bytes = live().saturating_sub(baseline);
    let i = W::Rx as usize;
    let result = Idle {
        clients: n + 1,
        live_bytes,
        accept_allocs: accept.allocs[i],
        accept_bytes: accept.bytes[i],
        accept_traces: std::mem::take(&mut accept.traces[i]),
    };
    drop(server);
    result
}

// ---- call sites from backtraces ----------------------------------------------------------

/// Frames of a backtrace as (function, location).
fn frames(bt: &Backtrace) -> Vec<(String, String)> {
    let text = bt.to_string();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(at) = line.strip_prefix("at ") {
            if let Some(last) = out.last_mut() {
                last.1 = short_path(at);
            }
        } else if let Some((num, name)) = line.split_once(": ") {
            if num.chars().all(|c| c.is_ascii_digit()) {
                out.push((name.to_string(), String::new()));
            }
        }
    }
    out
}

fn short_path(at: &str) -> String {
    for marker in ["legume-net/", "legume-core/", "library/"] {
        if let Some(i) = at.find(marker) {
            return at[i..].to_string();
        }
    }
    at.to_string()
}

fn is_ours(frame: &(String, String)) -> bool {
    frame.1.contains("benches/alloc.rs")
}

fn is_legume(frame: &(String, String)) -> bool {
    (frame.0.contains("legume_net::") || frame.0.contains("legume_core::")) && !is_ours(frame)
}

/// The call chain of one allocation: the library frame that allocated (the
/// one just inside the first legume frame), then legume frames out to the
/// bench's own call.
fn site(bt: &Backtrace) -> String {
    let fs = frames(bt);
    let Some(first) = fs.iter().position(is_legume) else {
        return "(no legume frame: the bench itself or an inlined call)".into();
    };
    let mut s = String::new();
    if first > 0 {
        let (name, at) = &fs[first - 1];
        let _ = writeln!(s, "      {name}  {at}");
    }
    for f in fs[first..].iter().take(8) {
        if is_ours(f) {
            break;
        }
        let _ = writeln!(s, "      {}  {}", f.0, f.1);
    }
    s
}

fn print_sites(title: &str, traces: &[(usize, Backtrace)]) {
    if traces.is_empty() {
        return;
    }
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    for (size, bt) in traces {
        let key = site(bt);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                g.1 += 1;
                g.2 += *size as u64;
            }
            None => groups.push((key, 1, *size as u64)),
        }
    }
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    println!(
        "\n{title}: the first {} allocations captured, by call site",
        traces.len()
    );
    for (key, count, bytes) in groups.iter().take(8) {
        println!("  {count} allocation(s), {bytes} B:\n{key}");
    }
}

// ---- main --------------------------------------------------------------------------------

fn cell(allocs: u64, bytes: u64, messages: u64) -> String {
    let m = messages as f64;
    format!("{:.4} / {:.1} B", allocs as f64 / m, bytes as f64 / m)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench" || a == "--full");
    let trace = args.iter().any(|a| a == "--trace");
    let (warm, measured, pack_n, idle_n) = if full {
        (2_000, 2_000, 100_000, 1_000)
    } else {
        (300, 300, 10_000, 100)
    };
    let budget = if trace { 200 } else { 0 };

    println!(
        "Allocation accounting (legume-net, {} build{}): {PER_STEP} messages of {MSG_LEN} B per 1 ms step, \
         1 ms link, {warm} warm-up + {measured} measured steps",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        if full { "" } else { ", quick run: pass --bench for the full sizes" },
    );
    println!();
    println!(
        "Allocations / bytes per message, by window (`send + poll_transmit` is the send path, \
         `handle_datagram + poll_event` on the server the receive path):"
    );
    println!();
    let mut head = String::from("| delivery |");
    for (_, name) in WINDOWS {
        head += &format!(" {name} |");
    }
    head += " live heap growth / msg | client datagrams / msg | wire B / msg |";
    println!("{head}");
    println!("|---|{}---|---|---|", "---|".repeat(WINDOWS.len()));
    let mut all = Vec::new();
    for (delivery, name) in [
        (Delivery::Unreliable, "unreliable"),
        (Delivery::Reliable, "reliable"),
        (Delivery::ReliableOrdered, "ordered"),
    ] {
        let s = steady(delivery, warm, measured, budget);
        let mut row = format!("| {name} |");
        for (w, _) in WINDOWS {
            let i = w as usize;
            row += &format!(
                " {} |",
                cell(s.tally.allocs[i], s.tally.bytes[i], s.messages)
            );
        }
        row += &format!(
            " {:+.2} B | {:.4} | {:.2} |",
            s.live_growth as f64 / s.messages as f64,
            s.datagrams as f64 / s.messages as f64,
            s.wire_bytes as f64 / s.messages as f64
        );
        println!("{row}");
        all.push((name, s));
    }
    println!();
    println!(
        "Totals in the measured window ({} messages): allocations (bytes)",
        PER_STEP * measured
    );
    println!();
    let mut head = String::from("| delivery |");
    for (_, name) in WINDOWS {
        head += &format!(" {name} |");
    }
    println!("{head}");
    println!("|---|{}", "---|".repeat(WINDOWS.len()));
    for (name, s) in &all {
        let mut row = format!("| {name} |");
        for (w, _) in WINDOWS {
            let i = w as usize;
            row += &format!(" {} ({}) |", s.tally.allocs[i], s.tally.bytes[i]);
        }
        println!("{row}");
    }
    println!();
    let send_path: Vec<String> = all
        .iter()
        .map(|(name, s)| {
            let a = s.tally.allocs[W::Send as usize] + s.tally.allocs[W::Tx as usize];
            let b = s.tally.bytes[W::Send as usize] + s.tally.bytes[W::Tx as usize];
            format!("{name} {}", cell(a, b, s.messages))
        })
        .collect();
    println!(
        "Send path (send + poll_transmit), per message: {}",
        send_path.join("; ")
    );

    let p = packing(pack_n);
    println!();
    println!(
        "| packing: {} ordered {MSG_LEN}-byte messages queued at once | value |",
        p.messages
    );
    println!("|---|---|");
    println!("| client datagrams | {} |", p.client_datagrams);
    println!(
        "| datagrams per message | {:.4} |",
        p.client_datagrams as f64 / p.messages as f64
    );
    println!(
        "| messages per datagram | {:.1} |",
        p.messages as f64 / p.client_datagrams as f64
    );
    println!(
        "| client wire bytes per message | {:.2} |",
        p.wire_bytes as f64 / p.messages as f64
    );
    println!("| server datagrams (acks) | {} |", p.server_datagrams);
    println!("| simulated time | {:.3} s |", p.sim_time.as_secs_f64());

    let idle = idle(idle_n, trace);
    println!();
    println!("| idle connections on the server | value |");
    println!("|---|---|");
    println!("| clients connected, then idle 3 s | {} |", idle.clients);
    println!("| server live heap bytes | {} |", idle.live_bytes);
    println!(
        "| **bytes per idle connection** | **{:.0}** |",
        idle.live_bytes as f64 / idle.clients as f64
    );
    println!(
        "| `size_of::<Connection>()` (inline part) | {} |",
        std::mem::size_of::<Connection>()
    );
    println!(
        "| one accept: server allocations / bytes allocated | {} / {} |",
        idle.accept_allocs, idle.accept_bytes
    );

    if trace {
        for (name, s) in &all {
            for (w, wname) in WINDOWS {
                print_sites(&format!("{name}, {wname}"), &s.tally.traces[w as usize]);
            }
        }
        print_sites("one accept, server calls", &idle.accept_traces);
    } else {
        println!("\n(pass --trace for the call sites of these allocations)");
    }
}
