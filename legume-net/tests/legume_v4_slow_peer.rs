//! legume v4 mode against a model of a slow Python legume 0.5 peer, on a
//! simulated clock (`docs/LEGUME_COMPAT.md` section 4, `docs/RELIABILITY.md`).
//!
//! The model follows legume 0.5's `Connection` (`legume/connection.py`) step
//! by step, with a cost in simulated time for each step, so that a peer
//! starved of CPU behaves as the real one does on a loaded machine:
//!
//! - one `update()` reads the socket until it is empty (including what
//!   arrives while it reads), drops a message whose id is among the ids in
//!   its recent-id list, and truncates that list to its last 1,000 entries
//!   only once the read is over;
//! - it acks each new reliable message once, never a duplicate;
//! - its write loop builds datagrams by scanning its whole outgoing list for
//!   each one, resending every reliable message unacked for 0.3 s, so a
//!   long list makes the loop so slow that it resends its own messages
//!   several times inside one `update()`;
//! - Pongs answer Pings one `update()` later (legume queues them after its
//!   write);
//! - its socket holds a bounded number of bytes (Linux's default 208 KiB
//!   receive buffer, each datagram charged with a fixed overhead); what
//!   does not fit is dropped.

mod util;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use legume_core::{Message, Reader};
use legume_net::{Config, Connection, Delivery, Event, Protocol};
use util::*;

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

/// legume's datagram size and its memory of received ids.
const MTU: usize = 1400;
const RECENT: usize = 1000;
/// legume's resend delay before it has a ping estimate (`_transport_latency`).
const RESEND: Duration = Duration::from_millis(300);
/// Linux's default `rmem_default`, and what a datagram costs in it beyond its
/// payload (the socket buffer's per-packet overhead).
const RCVBUF: usize = 212_992;
const DATAGRAM_OVERHEAD: usize = 768;
/// Padding of user message `n`: 0 to 159 bytes, varied as the interop
/// vectors are (legume packs smaller messages into what a datagram has left,
/// which is what lets its write loop finish), 1,000 of them in about 70
/// datagrams.
fn pad(n: u32) -> usize {
    (n as usize * 37) % 160
}
/// Reliable messages the model keeps unacked at most, as the interop
/// program's `--window`: with 1,200 queued at once, legume 0.5's own write
/// loop never ends once scanning its outgoing list for one datagram takes
/// more than about 5 µs an entry (each datagram's scan then outlasts the
/// stream of resends coming due after 0.3 s).
const WINDOW: usize = 100;
/// The model's unreliable messages carry numbers from here.
const UNRELIABLE: u32 = 1_000_000;
/// One way, on loopback.
const LATENCY: Duration = Duration::from_micros(50);

/// The message types legume 0.5 itself defines (`messages.py`).
mod kind {
    pub const CONNECT_REQUEST: u8 = 2;
    pub const ACCEPTED: u8 = 4;
    pub const KEEPALIVE_REQUEST: u8 = 5;
    pub const KEEPALIVE_RESPONSE: u8 = 6;
    pub const DISCONNECTED: u8 = 7;
    pub const ACK: u8 = 8;
    pub const PING: u8 = 9;
    pub const PONG: u8 = 10;
}

/// How slow the model is: simulated time per step.
#[derive(Clone, Copy)]
struct Costs {
    /// Parsing and filing one received message.
    read: Duration,
    /// Looking at one entry of the outgoing list while building a datagram.
    scan: Duration,
    /// The model runs this long, then waits `pause` for the CPU.
    run: Duration,
    pause: Duration,
    /// Reliable messages the model keeps unacked at most.
    window: usize,
}

/// One entry of legume's `_outgoing` list (header and body bytes).
struct Outgoing {
    id: u16,
    bytes: Vec<u8>,
    reliable: bool,
    last_sent: Option<Instant>,
}

/// A received message: header, type id and the body's fields.
struct Incoming {
    id: u16,
    reliable: bool,
    kind: u8,
    /// Ack: the acked id; Ping: the ping id; user: `Num::n`.
    value: i64,
}

/// What the model does next.
enum Phase {
    Sleep(Instant),
    Read,
    Write,
}

/// A legume 0.5 server with one client, stepped on the simulated clock.
struct Legume05 {
    costs: Costs,
    /// The model's own clock: the end of the step it is in.
    clock: Instant,
    phase: Phase,
    /// Datagrams in its socket, with their arrival times.
    socket: VecDeque<(Instant, Vec<u8>)>,
    socket_bytes: usize,
    socket_drops: u64,
    recent: Vec<u16>,
    /// Messages read in this update, processed after its write.
    read: Vec<Incoming>,
    outgoing: Vec<Outgoing>,
    last_id: u16,
    connected: bool,
    /// Reliable messages to send once connected (`--count`).
    to_send: u32,
    /// Reliable messages queued so far.
    queued: u32,
    sent_payload: bool,
    /// The end of the current stretch of CPU time.
    running_until: Instant,
    /// Datagrams sent, with the time they leave.
    sent: Vec<(Instant, Vec<u8>)>,
    /// `Num::n` of every user message delivered, in order, duplicates too.
    delivered: Vec<u32>,
    /// User messages (`Num::n`) whose first MessageAck this model loses
    /// instead of sending (a lost ack on the way back).
    lose_acks_of: Vec<u32>,
    /// How many of those acks were lost.
    acks_lost: u32,
}

impl Legume05 {
    fn new(now: Instant, costs: Costs, to_send: u32) -> Self {
        Legume05 {
            costs,
            clock: now,
            phase: Phase::Read,
            socket: VecDeque::new(),
            socket_bytes: 0,
            socket_drops: 0,
            recent: Vec::new(),
            read: Vec::new(),
            outgoing: Vec::new(),
            last_id: 0,
            connected: false,
            to_send,
            queued: 0,
            sent_payload: false,
            running_until: now + costs.run,
            sent: Vec::new(),
            delivered: Vec::new(),
            lose_acks_of: Vec::new(),
            acks_lost: 0,
        }
    }

    /// A datagram reaches the socket at `at`, or is dropped when it is full.
    fn arrive(&mut self, at: Instant, bytes: Vec<u8>) {
        let size = bytes.len() + DATAGRAM_OVERHEAD;
        if self.socket_bytes + size > RCVBUF {
            self.socket_drops += 1;
            return;
        }
        self.socket_bytes += size;
        self.socket.push_back((at, bytes));
    }

    /// `send_message`: a new id, header and body appended to `_outgoing`.
    fn send(&mut self, kind: u8, body: &[u8], reliable: bool) {
        self.last_id += 1;
        let mut bytes = self.last_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0, 0, if reliable { 2 } else { 0 }, kind]);
        bytes.extend_from_slice(body);
        self.outgoing.push(Outgoing {
            id: self.last_id,
            bytes,
            reliable,
            last_sent: None,
        });
    }

    fn send_user(&mut self, n: u32, reliable: bool) {
        let m = padded(n, pad(n));
        let mut bytes = vec![0; m.message_len()];
        let len = m.encode_message(&mut bytes).expect("fits");
        self.last_id += 1;
        let mut out = self.last_id.to_be_bytes().to_vec();
        out.extend_from_slice(&[0, 0, if reliable { 2 } else { 0 }]);
        out.extend_from_slice(&bytes[..len]);
        self.outgoing.push(Outgoing {
            id: self.last_id,
            bytes: out,
            reliable,
            last_sent: None,
        });
    }

    /// Runs the model's steps that begin before `until`.
    fn run(&mut self, until: Instant) {
        while self.clock < until {
            if self.clock >= self.running_until {
                // Descheduled: the other processes have the CPU.
                self.clock += self.costs.pause;
                self.running_until = self.clock + self.costs.run;
                continue;
            }
            match self.phase {
                Phase::Sleep(t) => {
                    if t > until {
                        self.clock = until;
                        return;
                    }
                    self.clock = self.clock.max(t);
                    self.phase = Phase::Read;
                }
                Phase::Read => self.read_one(),
                Phase::Write => self.write_one(),
            }
        }
    }

    /// `do_read`: one datagram that has arrived by now, or the end of the
    /// read (`_do_read` queues the acks, the recent list is truncated).
    fn read_one(&mut self) {
        let Some((at, _)) = self.socket.front() else {
            return self.end_read();
        };
        if *at > self.clock {
            return self.end_read();
        }
        let (_, d) = self.socket.pop_front().expect("front exists");
        self.socket_bytes -= d.len() + DATAGRAM_OVERHEAD;
        let factory = factory();
        let mut r = Reader::new(&d);
        while r.remaining() > 0 {
            self.clock += self.costs.read;
            let id = r.read_u16().expect("header");
            let _seq = r.read_u16().expect("header");
            let flags = r.read_u8().expect("header");
            let kind = r.read_u8().expect("type id");
            let value = match kind {
                kind::CONNECT_REQUEST => i64::from(r.read_u8().expect("version")),
                kind::ACCEPTED | kind::DISCONNECTED => 0,
                kind::KEEPALIVE_REQUEST | kind::KEEPALIVE_RESPONSE | kind::PING | kind::PONG => {
                    i64::from(r.read_u16().expect("id"))
                }
                kind::ACK => i64::from(r.read_u32().expect("acked id") as i32),
                _ => {
                    let msg = factory.decode_fields(kind, &mut r).expect("a Num");
                    let n = msg.downcast_ref::<Num>().expect("a Num");
                    assert!(pad_ok(n, pad(n.n)), "{n:?}");
                    i64::from(n.n)
                }
            };
            if self.recent.contains(&id) {
                continue;
            }
            self.recent.push(id);
            self.read.push(Incoming {
                id,
                reliable: flags & 3 != 0,
                kind,
                value,
            });
        }
    }

    fn end_read(&mut self) {
        let acks: Vec<(u16, Option<u32>)> = self
            .read
            .iter()
            .filter(|m| m.reliable)
            .map(|m| (m.id, (m.kind >= 20).then_some(m.value as u32)))
            .collect();
        for (id, n) in acks {
            let lose = n.and_then(|n| self.lose_acks_of.iter().position(|&l| l == n));
            if let Some(i) = lose {
                // The ack is made (it takes an id) and lost on the way, once.
                self.lose_acks_of.remove(i);
                self.last_id += 1;
                self.acks_lost += 1;
                continue;
            }
            self.send(kind::ACK, &i32::from(id).to_be_bytes(), false);
        }
        if self.recent.len() > RECENT {
            let cut = self.recent.len() - RECENT;
            self.recent.drain(..cut);
        }
        self.phase = Phase::Write;
    }

    /// `_create_packet` and its send: one datagram, or the end of the write.
    fn write_one(&mut self) {
        let mut packet = Vec::new();
        let mut sent = Vec::new();
        for (i, m) in self.outgoing.iter_mut().enumerate() {
            self.clock += self.costs.scan;
            if m.reliable && m.last_sent.is_some_and(|t| t + RESEND >= self.clock) {
                continue;
            }
            if packet.len() + m.bytes.len() <= MTU {
                packet.extend_from_slice(&m.bytes);
                m.last_sent = Some(self.clock);
                sent.push(i);
            }
        }
        for &i in sent.iter().rev() {
            if !self.outgoing[i].reliable {
                self.outgoing.remove(i);
            }
        }
        if packet.is_empty() {
            return self.process();
        }
        self.sent.push((self.clock, packet));
    }

    /// What `update()` does with the messages read, then the test program's
    /// loop (send the payload once connected, sleep 1 ms).
    fn process(&mut self) {
        for m in std::mem::take(&mut self.read) {
            match m.kind {
                kind::CONNECT_REQUEST => {
                    self.connected = true;
                    self.send(kind::ACCEPTED, &[], true);
                }
                kind::KEEPALIVE_REQUEST => self.send(
                    kind::KEEPALIVE_RESPONSE,
                    &(m.value as u16).to_be_bytes(),
                    false,
                ),
                kind::PING => self.send(kind::PONG, &(m.value as u16).to_be_bytes(), false),
                kind::ACK => {
                    if let Some(i) = self
                        .outgoing
                        .iter()
                        .position(|o| i64::from(o.id) == m.value)
                    {
                        self.outgoing.remove(i);
                    }
                }
                kind::KEEPALIVE_RESPONSE | kind::PONG | kind::DISCONNECTED | kind::ACCEPTED => {}
                _ => self.delivered.push(m.value as u32),
            }
        }
        if self.connected && !self.sent_payload {
            // As the interop program: at most WINDOW unacked at a time,
            // then 200 unreliable ones.
            while self.queued < self.to_send && self.unacked() < self.costs.window {
                self.send_user(self.queued, true);
                self.queued += 1;
            }
            if self.queued == self.to_send {
                self.sent_payload = true;
                for n in 0..200 {
                    self.send_user(UNRELIABLE + n, false);
                }
            }
        }
        self.phase = Phase::Sleep(self.clock + MS);
    }

    /// Reliable messages not yet acked by the other side.
    fn unacked(&self) -> usize {
        self.outgoing.iter().filter(|o| o.reliable).count()
    }
}

/// What one run gave.
struct Outcome {
    /// `Num::n` delivered by the model, duplicates included.
    model_got: Vec<u32>,
    /// `Num::n` delivered by legume-rs.
    rust_got: Vec<u32>,
    drained_after: Option<Duration>,
    lost_acks: u64,
    socket_drops: u64,
    model_acks_lost: u32,
}

/// A legume-rs client sends `n` reliable messages to the model, which sends
/// `n` back, until both sides have everything acked or `limit` passes.
fn run(costs: Costs, n: u32, lose_acks_of: Vec<u32>, limit: Duration) -> Outcome {
    let start = Instant::now();
    let config = Config {
        protocol: Protocol::LegumeV4,
        ..Config::default()
    };
    let mut client = Connection::connect(config, factory(), start, 0);
    let mut model = Legume05::new(start, costs, n);
    model.lose_acks_of = lose_acks_of;
    let mut to_client: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut rust_got = Vec::new();
    let mut buf = vec![0u8; 1500];
    let mut now = start;
    let mut queued = false;
    let mut drained_after = None;
    while now - start < limit {
        while to_client.front().is_some_and(|(t, _)| *t <= now) {
            let (_, d) = to_client.pop_front().expect("front exists");
            client.handle_datagram(now, &d);
        }
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        while let Some(e) = client.poll_event() {
            match e {
                Event::Connected if !queued => {
                    queued = true;
                    for i in 0..n {
                        client
                            .send(&padded(i, pad(i)), Delivery::Reliable)
                            .expect("queued");
                    }
                }
                Event::Message(m) => {
                    let m = m.downcast_ref::<Num>().expect("a Num");
                    assert!(pad_ok(m, pad(m.n)), "{m:?}");
                    if m.n < UNRELIABLE {
                        rust_got.push(m.n);
                    }
                }
                Event::Connected => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        while let Some(len) = client.poll_transmit(now, &mut buf) {
            model.arrive(now + LATENCY, buf[..len].to_vec());
        }
        model.run(now + 100 * US);
        for (t, d) in model.sent.drain(..) {
            to_client.push_back((t + LATENCY, d));
        }
        if queued
            && drained_after.is_none()
            && client.stats().out_buffer_bytes == 0
            && model.sent_payload
            && model.unacked() == 0
        {
            drained_after = Some(now - start);
            break;
        }
        now += 100 * US;
        // A timeline every 0.5 s (simulated) with SLOW_PEER_TRACE set.
        if std::env::var("SLOW_PEER_TRACE").is_ok() && (now - start).as_micros() % 500_000 == 0 {
            let st = client.stats();
            eprintln!(
                "{:>6.1} s | rust: pending {} resends {} out_buf {} last_in {} lost_acks {} rtt {:.1} | legume: got {} ({} distinct) unacked {} outgoing {} last id {} socket {} drops {} phase {}",
                (now - start).as_secs_f64(), st.pending_acks, st.resends, st.out_buffer_bytes, st.in_messages, st.lost_acks, st.latency_ms,
                model.delivered.len(), distinct(&model.delivered), model.unacked(), model.outgoing.len(), model.last_id, model.socket_bytes, model.socket_drops,
                match model.phase { Phase::Sleep(_) => "sleep", Phase::Read => "read", Phase::Write => "write" }
            );
        }
    }
    assert!(client.is_connected(), "{:?}", client.stats());
    Outcome {
        model_got: model.delivered,
        rust_got,
        drained_after,
        lost_acks: client.stats().lost_acks,
        socket_drops: model.socket_drops,
        model_acks_lost: model.acks_lost,
    }
}

fn duplicates(got: &[u32]) -> usize {
    let mut seen = std::collections::HashSet::new();
    got.iter().filter(|n| !seen.insert(**n)).count()
}

fn distinct(got: &[u32]) -> usize {
    got.iter().collect::<std::collections::HashSet<_>>().len()
}

/// legume 0.5 queues 1,000 reliable messages at once (as the interop
/// program does) on a CPU so slow that its write loop, which rescans its
/// whole outgoing list for every datagram and resends what has waited
/// 0.3 s, runs for seconds, resending its own messages over and over and
/// reading nothing meanwhile; its socket overflows. Once it reads again,
/// legume-rs gets everything to it within seconds: acks prove which of its
/// datagrams were read, so what was dropped in the overflow is resent at
/// once, paced by what legume has taken in, instead of one datagram per
/// resend delay of several seconds (the round trips measured across the
/// stall). Before, these runs drained in 39 to 82 s, as the interop test
/// did under load.
#[test]
fn a_stalled_legume_peer_catches_up_soon_after_it_reads_again() {
    let cases = [
        (2600, 20, 3),
        (2600, 50, 3),
        (2600, 100, 3),
        (2900, 20, 2),
        (2900, 50, 2),
        (3200, 20, 1),
        (2300, 20, 5),
    ];
    for (scan_ns, read_us, pause_ms) in cases {
        let costs = Costs {
            read: read_us * US,
            scan: scan_ns * Duration::from_nanos(1),
            run: 10 * MS,
            pause: pause_ms * MS,
            window: 2000,
        };
        let out = run(costs, 1000, Vec::new(), Duration::from_secs(20));
        let case = format!("scan {scan_ns} ns, read {read_us} µs, pause {pause_ms} ms");
        println!(
            "{case}: drained after {:?}, socket drops {}",
            out.drained_after, out.socket_drops
        );
        assert!(out.drained_after.is_some(), "{case}: not drained in 20 s");
        assert_eq!(distinct(&out.model_got), 1000, "{case}");
        assert_eq!(duplicates(&out.model_got), 0, "{case}");
        assert_eq!(distinct(&out.rust_got), 1000, "{case}");
        assert_eq!(duplicates(&out.rust_got), 0, "{case}");
    }
}

/// A legume 0.5 peer at several speeds, from quick to one that gets a
/// tenth of a CPU, sending with the interop program's window: exactly once
/// every time, and drained within 120 s (the slowest took 174 s before).
#[test]
fn every_speed_of_legume_peer_gets_every_message_once() {
    for (read_us, scan_us, pause_ms) in [(5, 1, 0), (20, 5, 10), (50, 10, 40), (100, 20, 100)] {
        let costs = Costs {
            read: read_us * US,
            scan: scan_us * US,
            run: 10 * MS,
            window: WINDOW,
            pause: pause_ms * MS,
        };
        let out = run(costs, 1000, Vec::new(), Duration::from_secs(120));
        println!(
            "read {read_us} µs, scan {scan_us} µs: drained after {:?}, socket drops {}",
            out.drained_after, out.socket_drops
        );
        assert!(
            out.drained_after.is_some(),
            "{read_us}/{scan_us}: not drained in 120 s"
        );
        assert_eq!(distinct(&out.model_got), 1000, "{read_us}/{scan_us}");
        assert_eq!(duplicates(&out.model_got), 0, "{read_us}/{scan_us}");
        assert_eq!(distinct(&out.rust_got), 1000, "{read_us}/{scan_us}");
        assert_eq!(duplicates(&out.rust_got), 0, "{read_us}/{scan_us}");
    }
}

/// legume 0.5 acks a message once and never again: when that ack is lost,
/// resending the message cannot get another. legume-rs proves the loss (a
/// Pong to a Ping sent after the message's last copy came back, and legume
/// sends an ack before any later Pong), counts it in `Stats::lost_acks`, and
/// lets its ids move on, after which legume delivers the message again and
/// acks it. Nothing is lost, the connection does not stall, and the
/// duplicates legume 0.5 makes are at most the acks it lost.
#[test]
fn an_ack_legume_loses_costs_at_most_a_duplicate_never_a_stall() {
    let costs = Costs {
        read: 20 * US,
        scan: 5 * US,
        run: 10 * MS,
        window: WINDOW,
        pause: 10 * MS,
    };
    // The first two messages, one in the middle and the last.
    let lose = vec![0, 1, 500, 999];
    let out = run(costs, 1000, lose, Duration::from_secs(120));
    println!(
        "drained after {:?}; acks lost by the model {}; presumed lost {}; duplicates {}",
        out.drained_after,
        out.model_acks_lost,
        out.lost_acks,
        duplicates(&out.model_got)
    );
    assert!(out.drained_after.is_some(), "stalled");
    assert_eq!(distinct(&out.model_got), 1000);
    assert!(out.model_acks_lost >= 4);
    assert!(out.lost_acks >= 1);
    assert!(
        duplicates(&out.model_got) as u64 <= out.lost_acks,
        "{} duplicates, {} presumed lost acks",
        duplicates(&out.model_got),
        out.lost_acks
    );
    assert_eq!(distinct(&out.rust_got), 1000);
    assert_eq!(duplicates(&out.rust_got), 0);
}
