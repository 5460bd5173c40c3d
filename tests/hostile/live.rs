//! The live system: a server thread, a thread of honest clients, a capture
//! proxy in front of one of them, and the attackers, sharing one state.

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use legume::net::sim::Rng;
use legume::net::{EndpointStats, SocketStats, Stats};
use legume::prelude::*;

use crate::common::draw::below;
use crate::common::system::{kernel_drops, wait_for};
use crate::common::wire::*;
use crate::forge::{stranger_outcome, Expected, SpoofGen, StrangerGen, KINDS};
use crate::messages::{delivery_of, factory, pad_of, Note, UNRELIABLE_BIT};

// Phases, in order, from 0 (connecting).
/// The server and clients take their baseline counters.
pub(crate) const BASELINE: u8 = 1;
/// The attack (or the soak's steady traffic) runs.
pub(crate) const RUN: u8 = 2;
/// Traffic winds down; threads keep updating.
pub(crate) const SETTLE: u8 = 3;
pub(crate) const STOP: u8 = 4;

#[derive(Default)]
pub(crate) struct Shared {
    phase: AtomicU8,
    pub(crate) server_baseline: AtomicBool,
    pub(crate) client_baseline: AtomicBool,
    /// The server's `handshake_outcomes`, after its latest update.
    pub(crate) outcomes: AtomicU64,
    /// The proxied connection's `dropped_invalid + dropped_duplicate`, plus
    /// the server's `repeated_accepts`, after its latest update.
    proxied_drops: AtomicU64,
    pub(crate) peers: AtomicUsize,
    pub(crate) connected: AtomicUsize,
    pub(crate) attack_total: AtomicU64,
    pub(crate) attack_sent: AtomicU64,
    pub(crate) attack_done: AtomicBool,
    pub(crate) proxy_done: AtomicBool,
    pub(crate) clients_done: AtomicBool,
    /// Real datagrams the proxy saw (both directions), at most `CAPTURE`.
    pub(crate) captured: Mutex<Vec<Vec<u8>>>,
    /// The proxied client's session id, once the proxy saw its ACCEPT.
    pub(crate) session: Mutex<Option<u32>>,
    /// The server's endpoint counters after its latest update.
    pub(crate) endpoint: Mutex<EndpointStats>,
}

const CAPTURE: usize = 512;

impl Shared {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::SeqCst)
    }

    pub(crate) fn set_phase(&self, p: u8) {
        self.phase.store(p, Ordering::SeqCst);
    }
}

/// Stops every thread when the test ends, even by a failed assertion.
pub(crate) struct StopOnDrop(pub(crate) Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.set_phase(STOP);
    }
}

/// Which notes of one sender arrived: bits, duplicates, order of the
/// ordered ones (odd sequence numbers).
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) seen: Vec<u64>,
    pub(crate) unique: u64,
    pub(crate) duplicates: u64,
    last_ordered: Option<u32>,
    pub(crate) out_of_order: u64,
}

impl Tally {
    fn record(&mut self, seq: u32) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        if seq % 2 == 1 {
            if self.last_ordered.is_some_and(|l| seq < l) {
                self.out_of_order += 1;
            }
            self.last_ordered = Some(seq);
        }
    }
}

/// The server's counters at one instant.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub(crate) endpoint: EndpointStats,
    pub(crate) socket: SocketStats,
    pub(crate) peers: HashMap<SocketAddr, Stats>,
}

fn snapshot(server: &Server) -> Snapshot {
    Snapshot {
        endpoint: server.stats(),
        socket: server.socket_stats(),
        peers: server.peers().map(|(a, c)| (a, c.stats())).collect(),
    }
}

/// What a connection counts for every datagram it is handed, once.
pub(crate) fn accounted(s: &Stats) -> u64 {
    s.in_packets + s.dropped_invalid + s.dropped_duplicate
}

pub(crate) fn drops(s: &Stats) -> u64 {
    s.dropped_invalid + s.dropped_duplicate
}

#[derive(Debug, Default)]
pub(crate) struct ServerReport {
    pub(crate) base: Option<Snapshot>,
    pub(crate) last: Option<Snapshot>,
    /// Honest reliable notes received, by client.
    pub(crate) received: HashMap<u32, Tally>,
    pub(crate) unreliable: u64,
    /// Notes of one client that came from a second address.
    pub(crate) wrong_peer: u64,
    pub(crate) disconnects: Vec<(SocketAddr, DisconnectReason)>,
    pub(crate) errors: u64,
    pub(crate) echo_failures: u64,
    pub(crate) updates: u64,
    /// Datagrams the kernel dropped at the server's socket, at the end.
    pub(crate) kernel_drops: Option<u64>,
}

/// Runs [`serve`] on a thread of its own.
pub(crate) fn spawn_server(
    server: Server,
    shared: &Arc<Shared>,
    proxied: Option<SocketAddr>,
) -> JoinHandle<ServerReport> {
    let sh = Arc::clone(shared);
    thread::spawn(move || serve(server, sh, proxied))
}

/// Runs the server until `STOP`: echoes every honest reliable note with its
/// delivery, counts the rest, publishes counters after every update.
pub(crate) fn serve(
    mut server: Server,
    shared: Arc<Shared>,
    proxied: Option<SocketAddr>,
) -> ServerReport {
    let mut r = ServerReport::default();
    let mut owners: HashMap<u32, SocketAddr> = HashMap::new();
    loop {
        server.update_timeout(Duration::from_millis(2));
        r.updates += 1;
        while let Some(ServerEvent { peer, event, .. }) = server.poll_event() {
            match event {
                Event::Message(m) => {
                    let Some(n) = m.downcast_ref::<Note>() else {
                        r.errors += 1;
                        continue;
                    };
                    if n.seq & UNRELIABLE_BIT != 0 {
                        r.unreliable += 1;
                        continue;
                    }
                    if *owners.entry(n.client).or_insert(peer) != peer {
                        r.wrong_peer += 1;
                    }
                    r.received.entry(n.client).or_default().record(n.seq);
                    if server.send(peer, n, delivery_of(n.seq)).is_err() {
                        r.echo_failures += 1;
                    }
                }
                Event::Disconnected(reason) => r.disconnects.push((peer, reason)),
                Event::Error(_) | Event::Io(_) => r.errors += 1,
                _ => {}
            }
        }
        let stats = server.stats();
        shared
            .outcomes
            .store(stats.handshake_outcomes(), Ordering::SeqCst);
        if let Some(p) = proxied {
            let d = server.peer(p).map_or(0, |c| drops(&c.stats()));
            shared
                .proxied_drops
                .store(d + stats.repeated_accepts, Ordering::SeqCst);
        }
        shared.peers.store(server.peer_count(), Ordering::SeqCst);
        *shared.endpoint.lock().unwrap() = stats;
        let phase = shared.phase();
        if phase >= BASELINE && r.base.is_none() {
            r.base = Some(snapshot(&server));
            shared.server_baseline.store(true, Ordering::SeqCst);
        }
        if phase == STOP {
            break;
        }
    }
    r.last = Some(snapshot(&server));
    r.kernel_drops = server.local_addr().and_then(kernel_drops);
    r
}

/// How honest clients send their reliable notes (each even one also sends
/// an unreliable note).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pacing {
    /// `per_client` notes, spread over the attack in proportion to its progress.
    WithAttack { per_client: u32 },
    /// `per_client` notes as soon as connected.
    AtOnce { per_client: u32 },
    /// Two notes (one reliable, one ordered) every `every` during `RUN`.
    Steady { every: Duration },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientSpec {
    pub(crate) target: SocketAddr,
    pub(crate) start_after: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct ClientOutcome {
    pub(crate) local: Option<SocketAddr>,
    pub(crate) sent: u32,
    pub(crate) unreliable_sent: u32,
    pub(crate) echoes: Tally,
    pub(crate) connected_after: Option<Duration>,
    pub(crate) disconnects: Vec<DisconnectReason>,
    pub(crate) rejected: bool,
    pub(crate) errors: u64,
    pub(crate) base: Option<Stats>,
    pub(crate) last: Stats,
}

/// Runs [`run_clients`] with the default config on a thread of its own.
pub(crate) fn spawn_clients(
    specs: Vec<ClientSpec>,
    pacing: Pacing,
    nap: Duration,
    shared: &Arc<Shared>,
) -> JoinHandle<Vec<ClientOutcome>> {
    let sh = Arc::clone(shared);
    thread::spawn(move || run_clients(specs, Config::default(), pacing, nap, sh))
}

/// Runs honest clients until `STOP`; sets `clients_done` once every client
/// has sent all its notes and got every echo back.
pub(crate) fn run_clients(
    specs: Vec<ClientSpec>,
    config: Config,
    pacing: Pacing,
    nap: Duration,
    shared: Arc<Shared>,
) -> Vec<ClientOutcome> {
    let start = Instant::now();
    let n = specs.len();
    let mut clients: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    let mut started = vec![start; n];
    let mut out: Vec<ClientOutcome> = (0..n).map(|_| ClientOutcome::default()).collect();
    let mut run_start: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let phase = shared.phase();
        if phase >= RUN && run_start.is_none() {
            run_start = Some(now);
        }
        let mut all_done = true;
        for (i, spec) in specs.iter().enumerate() {
            let o = &mut out[i];
            if clients[i].is_none() {
                if now < start + spec.start_after {
                    all_done = false;
                    continue;
                }
                let mut c = Client::new(factory(), config.clone());
                c.connect(spec.target).expect("connect");
                o.local = c.local_addr();
                started[i] = now;
                clients[i] = Some(c);
            }
            let c = clients[i].as_mut().expect("started");
            c.update();
            while let Some(e) = c.poll_event() {
                match e {
                    Event::Connected => {
                        o.connected_after = Some(now.saturating_duration_since(started[i]));
                        shared.connected.fetch_add(1, Ordering::SeqCst);
                    }
                    Event::Message(m) => match m.downcast_ref::<Note>() {
                        Some(note) => o.echoes.record(note.seq),
                        None => o.errors += 1,
                    },
                    Event::Disconnected(reason) => o.disconnects.push(reason),
                    Event::Rejected { .. } => o.rejected = true,
                    _ => o.errors += 1,
                }
            }
            let (target, last_target) = match pacing {
                Pacing::WithAttack { per_client } => {
                    let total = shared.attack_total.load(Ordering::SeqCst).max(1);
                    let sent = shared.attack_sent.load(Ordering::SeqCst);
                    let t = if phase < RUN {
                        0
                    } else if shared.attack_done.load(Ordering::SeqCst) {
                        per_client
                    } else {
                        (u64::from(per_client) * sent / total) as u32
                    };
                    (t, per_client)
                }
                Pacing::AtOnce { per_client } => (per_client, per_client),
                Pacing::Steady { every } => match run_start {
                    Some(t0) if phase == RUN => {
                        let batches = now.duration_since(t0).as_nanos() / every.as_nanos() + 1;
                        let t = 2 * batches as u32;
                        (t, u32::MAX)
                    }
                    _ if phase > RUN => (o.sent, o.sent),
                    _ => (0, u32::MAX),
                },
            };
            if c.connected() {
                while o.sent < target {
                    let seq = o.sent;
                    let note = Note {
                        client: i as u32,
                        seq,
                        pad: pad_of(seq),
                    };
                    if c.send(&note, delivery_of(seq)).is_err() {
                        break;
                    }
                    o.sent += 1;
                    if seq % 2 == 0 {
                        let extra = Note {
                            client: i as u32,
                            seq: UNRELIABLE_BIT | o.unreliable_sent,
                            pad: Vec::new(),
                        };
                        if c.send(&extra, Delivery::Unreliable).is_ok() {
                            o.unreliable_sent += 1;
                        }
                    }
                }
            }
            all_done &=
                c.connected() && o.sent == last_target && o.echoes.unique == u64::from(o.sent);
        }
        if all_done {
            shared.clients_done.store(true, Ordering::SeqCst);
        }
        if phase >= BASELINE && out[0].base.is_none() {
            for (o, c) in out.iter_mut().zip(&clients) {
                o.base = c.as_ref().map(Client::stats);
            }
            shared.client_baseline.store(true, Ordering::SeqCst);
        }
        if phase == STOP {
            break;
        }
        thread::sleep(nap);
    }
    for (o, c) in out.iter_mut().zip(&clients) {
        if let Some(c) = c {
            o.last = c.stats();
        }
    }
    out
}

#[derive(Debug, Default)]
pub(crate) struct ProxyReport {
    forwarded_up: u64,
    forwarded_down: u64,
    pub(crate) injected_up: u64,
    pub(crate) injected_down: u64,
}

/// Forwards between one client and the server, capturing real datagrams,
/// and once `RUN` starts injects `up_total` spoofed datagrams toward the
/// server and `down_total` toward the client, from the addresses each side
/// knows the other by, in step with the attack, at most `window` toward
/// the server unhandled.
pub(crate) fn proxy(
    socket: UdpSocket,
    server: SocketAddr,
    shared: Arc<Shared>,
    up_total: u64,
    down_total: u64,
    window: u64,
    seed: u64,
) -> ProxyReport {
    socket
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let mut r = ProxyReport::default();
    let mut rng = Rng::new(seed);
    let mut client: Option<SocketAddr> = None;
    let blank = |seed| SpoofGen {
        rng: Rng::new(seed),
        session: 0,
        nonce: 0,
        recent: VecDeque::new(),
        handshake: Vec::new(),
    };
    let (mut up, mut down) = (blank(seed ^ 1), blank(seed ^ 2));
    let mut live = false;
    let mut base_drops: Option<u64> = None;
    let mut buf = vec![0u8; 65_536];
    let keep = |q: &mut VecDeque<Vec<u8>>, d: &[u8]| {
        if q.len() == 64 {
            q.pop_front();
        }
        q.push_back(d.to_vec());
    };
    loop {
        let phase = shared.phase();
        if phase == STOP {
            break;
        }
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let d = &buf[..n];
            let is_data = n >= DATA_HEADER_LEN && d[..3] == PREFIX && d[3] == DATA;
            if from == server {
                if let Some(c) = client {
                    if socket.send_to(d, c).is_ok() {
                        r.forwarded_down += 1;
                    }
                }
                if n == 16 && d[..3] == PREFIX && d[3] == ACCEPT && !live {
                    let nonce = u64::from_be_bytes(d[4..12].try_into().unwrap());
                    let session = u32::from_be_bytes(d[12..16].try_into().unwrap());
                    for g in [&mut up, &mut down] {
                        g.session = session;
                        g.nonce = nonce;
                    }
                    *shared.session.lock().unwrap() = Some(session);
                    live = true;
                }
                if is_data {
                    keep(&mut down.recent, d);
                }
            } else {
                client = Some(from);
                if socket.send_to(d, server).is_ok() {
                    r.forwarded_up += 1;
                }
                if n == HANDSHAKE_LEN && up.handshake.len() < 8 {
                    up.handshake.push(d.to_vec());
                }
                if is_data {
                    keep(&mut up.recent, d);
                }
            }
            let mut pool = shared.captured.lock().unwrap();
            if pool.len() < CAPTURE {
                pool.push(d.to_vec());
            } else {
                let i = below(&mut rng, CAPTURE as u64) as usize;
                pool[i] = d.to_vec();
            }
        }
        let Some(c) = client else { continue };
        if phase < RUN || !live {
            continue;
        }
        let base = *base_drops.get_or_insert_with(|| shared.proxied_drops.load(Ordering::SeqCst));
        let done = shared.attack_done.load(Ordering::SeqCst);
        let (sent, total) = (
            shared.attack_sent.load(Ordering::SeqCst),
            shared.attack_total.load(Ordering::SeqCst).max(1),
        );
        let share = |of: u64| if done { of } else { of * sent / total };
        let mut burst = 0;
        while r.injected_up < share(up_total) && burst < 32 {
            // At most `window` not yet handled by the server: its socket
            // never overflows because of them.
            let handled = shared.proxied_drops.load(Ordering::SeqCst) - base;
            if r.injected_up.saturating_sub(handled) >= window {
                break;
            }
            let d = up.datagram(true);
            socket
                .send_to(&d, server)
                .expect("inject toward the server");
            r.injected_up += 1;
            burst += 1;
        }
        burst = 0;
        while r.injected_down < share(down_total) && burst < 8 {
            let d = down.datagram(false);
            socket.send_to(&d, c).expect("inject toward the client");
            r.injected_down += 1;
            burst += 1;
        }
        if done && r.injected_up == up_total && r.injected_down == down_total {
            shared.proxy_done.store(true, Ordering::SeqCst);
        }
    }
    r
}

#[derive(Debug, Default)]
pub(crate) struct AttackReport {
    pub(crate) sent: u64,
    pub(crate) bytes_out: u64,
    pub(crate) replies: u64,
    pub(crate) bytes_in: u64,
    pub(crate) largest_reply: usize,
    pub(crate) expected: Expected,
    pub(crate) kinds: [u64; KINDS.len()],
    pub(crate) elapsed: Duration,
}

impl AttackReport {
    pub(crate) fn drain(&mut self, s: &UdpSocket, buf: &mut [u8]) {
        while let Ok((n, _)) = s.recv_from(buf) {
            self.replies += 1;
            self.bytes_in += n as u64;
            self.largest_reply = self.largest_reply.max(n);
        }
    }
}

/// Sends `total` datagrams from `sockets` stranger addresses (127.3.x.y),
/// keeping at most `window` of them unhandled by the server so that none
/// is lost in the kernel and each can be accounted for (`u64::MAX`: as
/// fast as the sockets take them).
pub(crate) fn attack(
    server: SocketAddr,
    shared: Arc<Shared>,
    total: u64,
    sockets: usize,
    window: u64,
    seed: u64,
) -> AttackReport {
    let socks: Vec<UdpSocket> = (0..sockets)
        .map(|i| {
            let ip = Ipv4Addr::new(127, 3, (i / 250) as u8, (i % 250 + 1) as u8);
            let s = UdpSocket::bind((ip, 0)).expect("bind an attacker socket");
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut gen = StrangerGen {
        rng: Rng::new(seed),
        captured: Vec::new(),
        session: None,
    };
    let mut r = AttackReport::default();
    let mut buf = vec![0u8; 65_536];
    let base = shared.outcomes.load(Ordering::SeqCst);
    let start = Instant::now();
    for i in 0..total {
        if i % 1024 == 0 {
            gen.captured.clone_from(&shared.captured.lock().unwrap());
            gen.session = *shared.session.lock().unwrap();
            shared.attack_sent.store(i, Ordering::SeqCst);
        }
        let mut waits = 0u64;
        while i.saturating_sub(shared.outcomes.load(Ordering::SeqCst) - base) >= window {
            thread::yield_now();
            waits += 1;
            if waits % 100_000 == 0 {
                assert!(
                    shared.phase() != STOP,
                    "stopped with {i} datagrams sent, {} handled",
                    shared.outcomes.load(Ordering::SeqCst) - base
                );
            }
        }
        let (kind, d) = gen.datagram();
        r.kinds[kind] += 1;
        r.expected.add(stranger_outcome(&d, 0));
        let s = &socks[i as usize % sockets];
        loop {
            match s.send_to(&d, server) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => thread::yield_now(),
                Err(e) => panic!("attacker send of {} bytes: {e}", d.len()),
            }
        }
        r.sent += 1;
        r.bytes_out += d.len() as u64;
        if i % 8 == 0 {
            r.drain(&socks[(i / 8) as usize % sockets], &mut buf);
        }
    }
    shared.attack_sent.store(total, Ordering::SeqCst);
    r.elapsed = start.elapsed();
    // Until the server has handled them all, or (without a window, when
    // the kernel dropped some) until it stops finding more.
    let mut seen = (0, Instant::now());
    wait_for(Duration::from_secs(60), || {
        let handled = shared.outcomes.load(Ordering::SeqCst) - base;
        if handled != seen.0 {
            seen = (handled, Instant::now());
        }
        handled >= total || seen.1.elapsed() > Duration::from_millis(300)
    });
    thread::sleep(Duration::from_millis(50));
    for s in &socks {
        r.drain(s, &mut buf);
    }
    shared.attack_done.store(true, Ordering::SeqCst);
    r
}
