//! Target 3, state machine sequences: honest traffic over a lossy link
//! interleaved with fuzz and clock jumps, with its two tests.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use legume_core::Message;
use legume_net::sim::{LinkConditions, Rng};
use legume_net::{Config, Connection, Delivery, DisconnectReason, Event, ServerEndpoint};

use crate::checks::{
    accounted, check_counted, endpoint_counted, hits_replay_bug, is_response_for, stranger, Ending,
};
use crate::draw::Draw;
use crate::forge::{Gen, CLIENT, SERVER};
use crate::runner::{env_u64, for_each_case, long_run, on_input, trace};
use crate::util::*;
use crate::{MS, SEC};

/// The delivery kinds, by the index used in message numbers.
const KINDS: [Delivery; 3] = [
    Delivery::Unreliable,
    Delivery::Reliable,
    Delivery::ReliableOrdered,
];
/// A message's number is `kind * KIND_BASE + i`, `i` counting per kind and direction.
const KIND_BASE: u32 = 1_000_000;

/// Honest messages of one direction: each accepted message's pad length, per kind.
#[derive(Debug, Default)]
struct Sent {
    pads: [Vec<usize>; 3],
    bytes: usize,
}

/// What the sequence target saw.
#[derive(Debug, Default)]
struct SequenceTally {
    sequences: u64,
    forging: u64,
    survived: u64,
    /// Sequences with harmless datagrams only that survived: checked for
    /// exactly-once, in-order delivery.
    checked_complete: u64,
    timed_out: u64,
    other_close: u64,
    injected: u64,
    jumps: u64,
    honest_sent: u64,
    honest_delivered: u64,
}

impl fmt::Display for SequenceTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sequences ({} forging the session): {} survived ({} of them checked for \
             exactly-once delivery), {} timed out, {} closed \
             otherwise; {} datagrams injected, {} clock jumps; {} honest messages sent, {} delivered",
            self.sequences,
            self.forging,
            self.survived,
            self.checked_complete,
            self.timed_out,
            self.other_close,
            self.injected,
            self.jumps,
            self.honest_sent,
            self.honest_delivered
        )
    }
}

/// Checks the honest messages of one direction: never a message that was
/// not sent or arrived corrupted, reliable ones at most once (exactly once
/// with `complete`), ordered ones in order (all of them with `complete`),
/// unreliable ones at most once.
fn check_honest(what: &str, sent: &Sent, got: &[Num], complete: bool) {
    let mut by_kind: [Vec<u32>; 3] = Default::default();
    for m in got {
        let kind = (m.n / KIND_BASE) as usize;
        let i = m.n % KIND_BASE;
        assert!(
            kind < 3 && (i as usize) < sent.pads[kind].len(),
            "{what}: message {} was never sent",
            m.n
        );
        assert!(
            pad_ok(m, sent.pads[kind][i as usize]),
            "{what}: message {} arrived corrupted",
            m.n
        );
        by_kind[kind].push(i);
    }
    let count = |k: usize| sent.pads[k].len() as u32;
    if complete {
        assert_exactly_once(&by_kind[1], count(1), false, what);
        assert_exactly_once(&by_kind[2], count(2), true, what);
    } else {
        let ordered: Vec<u32> = (0..by_kind[2].len() as u32).collect();
        assert_eq!(by_kind[2], ordered, "{what}: ordered messages out of order");
    }
    for (k, v) in by_kind.iter_mut().enumerate() {
        let before = v.len();
        v.sort_unstable();
        v.dedup();
        assert_eq!(before, v.len(), "{what}: kind {k} delivered twice");
    }
}

/// The `Num` an event carries, if it is one.
fn as_num(e: &Event) -> Option<Num> {
    match e {
        Event::Message(m) => m.downcast_ref::<Num>().cloned(),
        _ => None,
    }
}

/// A sequence: honest traffic, fuzz bursts and clock jumps on a World.
struct Sequence {
    w: World,
    c: usize,
    peer: SocketAddr,
    gen: Gen,
    forging: bool,
    /// [to the server, to the client].
    sent: [Sent; 2],
    got: [Vec<Num>; 2],
    client_end: Ending,
    server_end: Ending,
    /// Message errors reported on both sides.
    errors: u64,
    /// Whether [client, server] was seen closed.
    closed: [bool; 2],
    /// When the clock last jumped or a side was seen closed.
    disrupted: Instant,
    tally_injected: u64,
    tally_jumps: u64,
}

impl Sequence {
    fn new(rng: &mut Rng, forging: bool) -> Sequence {
        let link = LinkConditions::perfect()
            .with_loss(rng.gen_f64() * 0.15)
            .with_duplicate(rng.gen_f64() * 0.05)
            .with_latency(MS * rng.below(30) as u32)
            .with_jitter(MS * rng.below(10) as u32)
            .with_reorder(rng.gen_f64() * 0.1);
        let config = Config {
            connect_timeout: 60 * SEC,
            ..Config::default()
        };
        let mut w = World::new(rng.next_u64(), config, link);
        w.tap = Some(Vec::new());
        let c = w.add_client();
        assert!(w.connect_all(60 * SEC), "handshake");
        let peer = w.clients[c].addr;
        let conn = &w.clients[c].conn;
        let gen = Gen::new(conn.session(), conn.nonce());
        let w_now = w.now;
        let mut s = Sequence {
            w,
            c,
            peer,
            gen,
            forging,
            sent: Default::default(),
            got: Default::default(),
            client_end: Ending::default(),
            server_end: Ending::default(),
            errors: 0,
            closed: [false, false],
            disrupted: w_now,
            tally_injected: 0,
            tally_jumps: 0,
        };
        // The handshake's own events.
        s.w.clients[c].events.clear();
        s.w.server_events.clear();
        s.absorb(rng);
        s
    }

    /// Takes the tapped datagrams into the generator, the messages into
    /// the inboxes, and checks new events and states.
    fn absorb(&mut self, rng: &mut Rng) {
        let tapped = self.w.tap.as_mut().map(std::mem::take).unwrap_or_default();
        for t in tapped {
            let from = if t.from == self.peer { CLIENT } else { SERVER };
            if t.delivered {
                self.gen.saw_delivered(rng, from, &t.bytes);
            } else {
                self.gen.saw_sent(rng, from, &t.bytes);
            }
        }
        let (c, peer) = (self.c, self.peer);
        for e in std::mem::take(&mut self.w.clients[c].events) {
            if let Some(m) = as_num(&e) {
                self.got[1].push(m);
                continue;
            }
            self.errors += u64::from(matches!(e, Event::Error(_)));
            self.client_end.on_event("client", &e);
        }
        for e in std::mem::take(&mut self.w.server_events) {
            assert_eq!(e.peer, peer, "an event for another peer: {e:?}");
            if let Some(m) = as_num(&e.event) {
                self.got[0].push(m);
                continue;
            }
            self.errors += u64::from(matches!(e.event, Event::Error(_)));
            self.server_end.on_event("server peer", &e.event);
        }
        self.client_end
            .check_state("client", self.w.clients[c].conn.state());
        if let Some(conn) = self.w.server.peer(peer) {
            self.server_end.check_state("server peer", conn.state());
        }
        if !self.forging {
            let now = self.w.now;
            let timeout = self.w.config.timeout;
            let ends = [("client", &self.client_end), ("server", &self.server_end)];
            for (side, (who, end)) in ends.into_iter().enumerate() {
                let Some(r) = &end.reason else { continue };
                assert_eq!(
                    *r,
                    DisconnectReason::TimedOut,
                    "{who}: harmless datagrams closed it"
                );
                if !self.closed[side] {
                    // Only a clock jump, or the other side's end, starves a
                    // live connection for a whole timeout.
                    self.closed[side] = true;
                    let since = now - self.disrupted;
                    assert!(
                        since <= timeout + SEC,
                        "{who}: timed out {since:?} after the last clock jump or close"
                    );
                    self.disrupted = now;
                }
            }
            assert_eq!(self.errors, 0, "harmless datagrams caused message errors");
        }
    }

    fn send_burst(&mut self, rng: &mut Rng) {
        for _ in 0..1 + rng.below(20) {
            let kind = match rng.below(10) {
                0..=1 => 0,
                2..=5 => 1,
                _ => 2,
            };
            let pad = match rng.below(20) {
                0..=15 => rng.below(64) as usize,
                16..=18 => 100 + rng.below(1200) as usize,
                _ if kind == 0 => 200,
                _ => 1400 + rng.below(3000) as usize,
            };
            let dir = rng.below(2) as usize;
            let n = kind as u32 * KIND_BASE + self.sent[dir].pads[kind].len() as u32;
            let m = padded(n, pad);
            let result = if dir == 0 {
                self.w.clients[self.c].conn.send(&m, KINDS[kind])
            } else {
                self.w.server.send(self.peer, &m, KINDS[kind])
            };
            if result.is_ok() {
                self.sent[dir].pads[kind].push(pad);
                self.sent[dir].bytes += m.message_len();
                if kind > 0 {
                    let from = if dir == 0 { CLIENT } else { SERVER };
                    let ch = kind - 1;
                    self.gen.ids[from][ch] = self.gen.ids[from][ch].wrapping_add(1);
                }
            }
        }
    }

    fn inject_burst(&mut self, rng: &mut Rng) {
        for _ in 0..1 + rng.below(30) {
            self.tally_injected += 1;
            let to_client = rng.chance(0.5);
            let from = if to_client { SERVER } else { CLIENT };
            let d = if self.forging {
                self.gen.datagram(rng, from, 0.85)
            } else {
                self.gen.harmless(rng, from)
            };
            let now = self.w.now;
            trace!(
                "  inject to {}: {d:02x?}",
                if to_client { "client" } else { "server" }
            );
            if to_client {
                let conn = &mut self.w.clients[self.c].conn;
                let before = accounted(&conn.stats());
                on_input("client handle_datagram", &d, || {
                    conn.handle_datagram(now, &d)
                });
                check_counted("client", before, accounted(&conn.stats()), &d);
            } else {
                let addr = if rng.chance(0.85) {
                    self.peer
                } else {
                    stranger(rng)
                };
                let peer_stats = |s: &ServerEndpoint| s.peer(addr).map(|c| accounted(&c.stats()));
                let before = peer_stats(&self.w.server);
                let (epoch, lifetime) = (self.w.start, self.w.config.server.challenge_lifetime);
                if before.is_none() && hits_replay_bug(&d, now, epoch, lifetime) {
                    continue;
                }
                let endpoint_before = endpoint_counted(&self.w.server.stats());
                let server = &mut self.w.server;
                on_input("server handle_datagram", &d, || {
                    server.handle_datagram(now, addr, &d)
                });
                match before {
                    Some(before) => {
                        let after = peer_stats(&self.w.server).expect("a peer stays until drained");
                        if is_response_for(&d, self.gen.nonce) {
                            assert_eq!(
                                after, before,
                                "server peer: a retransmitted response reached it"
                            );
                        } else {
                            check_counted("server peer", before, after, &d);
                        }
                    }
                    None => assert!(
                        endpoint_counted(&self.w.server.stats()) > endpoint_before,
                        "server: not counted: {d:02x?}"
                    ),
                }
                assert!(
                    self.w.server.peer_count() <= 1,
                    "a fuzzed datagram opened a connection"
                );
            }
            if rng.chance(0.2) {
                self.w.flush();
                self.absorb(rng);
            }
        }
        self.w.flush();
    }

    /// Moves the clock forward and runs both sides' timers at once, due or not.
    fn jump(&mut self, rng: &mut Rng) {
        self.tally_jumps += 1;
        let d = match rng.below(100) {
            0..=49 => MS * (1 + rng.below(100) as u32),
            50..=84 => MS * (100 + rng.below(2900) as u32),
            85..=94 => MS * (3000 + rng.below(6900) as u32),
            95..=98 => SEC * (10 + rng.below(3600) as u32),
            _ => Duration::from_secs(86_400 * (1 + rng.below(36_500))),
        };
        trace!("  jump {d:?}");
        self.w.now += d;
        let now = self.w.now;
        self.disrupted = now;
        self.w.clients[self.c].conn.handle_timeout(now);
        self.w.server.handle_timeout(now);
        self.w.step();
    }

    fn alive(&self) -> bool {
        self.w.clients[self.c].conn.is_connected()
            && self
                .w
                .server
                .peer(self.peer)
                .is_some_and(Connection::is_connected)
    }
}

fn run_sequence(rng: &mut Rng, at: &mut u64, tally: &mut SequenceTally) {
    let forging = rng.chance(0.3);
    let mut s = Sequence::new(rng, forging);
    let steps = 8 + rng.below(32);
    trace!(
        "sequence: forging {forging}, {steps} steps, link {:?}",
        s.w.net.conditions(s.peer, server_addr())
    );
    for step in 0..steps {
        *at = step;
        let t = s.w.elapsed();
        match rng.below(100) {
            0..=29 => s.send_burst(rng),
            30..=59 => {
                let d = MS * rng.below(300) as u32;
                s.w.run_for(d);
            }
            60..=84 => s.inject_burst(rng),
            _ => s.jump(rng),
        }
        s.absorb(rng);
        trace!(
            "step {step} at {t:?} → {:?}: client {:?} {:?}, server {:?}",
            s.w.elapsed(),
            s.w.clients[s.c].conn.state(),
            s.client_end.reason,
            s.w.server
                .peer(s.peer)
                .map(|p| (p.state(), p.stats().in_packets))
        );
    }
    *at = steps;
    if s.alive() {
        // Let the honest exchange finish, with no more fuzz. A clock jump
        // may still time the connection out (a side left with less than a
        // round trip before its idle timeout): stop there.
        let want = [
            s.sent[0].pads[1].len() + s.sent[0].pads[2].len(),
            s.sent[1].pads[1].len() + s.sent[1].pads[2].len(),
        ];
        let (c, peer) = (s.c, s.peer);
        let limit = if forging { 20 * SEC } else { 300 * SEC };
        let reliable = |v: &[Num]| v.iter().filter(|m| m.n >= KIND_BASE).count();
        let mut have = [reliable(&s.got[0]), reliable(&s.got[1])];
        let alive = |w: &World| {
            w.clients[c].conn.is_connected()
                && w.server.peer(peer).is_some_and(Connection::is_connected)
        };
        let got = &mut s.got;
        s.w.run_until(limit, |w| {
            let (a, b) = (w.server_msgs(peer), w.client_msgs(c));
            have[0] += reliable(&a);
            have[1] += reliable(&b);
            got[0].extend(a);
            got[1].extend(b);
            let finished = have[0] >= want[0]
                && have[1] >= want[1]
                && w.clients[c].conn.stats().out_buffer_bytes == 0
                && w.server
                    .peer(peer)
                    .is_some_and(|p| p.stats().out_buffer_bytes == 0);
            finished || !alive(w)
        });
        s.absorb(rng);
        if s.alive() {
            // Stray duplicates still in flight must not deliver anything twice.
            s.w.run_for(2 * SEC);
            s.absorb(rng);
        }
        let finished = have[0] >= want[0] && have[1] >= want[1];
        if !forging && s.alive() {
            assert!(
                finished,
                "the honest exchange did not complete: {}/{} to the server, {}/{} to the client; \
                 client {:?}, server {:?}",
                have[0],
                want[0],
                have[1],
                want[1],
                s.w.clients[c].conn.stats(),
                s.w.server.peer(peer).map(Connection::stats)
            );
        }
    }
    let complete = s.alive();
    if !forging {
        check_honest("client → server", &s.sent[0], &s.got[0], complete);
        check_honest("server → client", &s.sent[1], &s.got[1], complete);
    }
    // Bounded queues: never more than the honest messages queued.
    let client = s.w.clients[s.c].conn.stats();
    let server = s.w.server.peer(s.peer).map(Connection::stats);
    for (who, st, queued) in [
        ("client", Some(&client), s.sent[0].bytes),
        ("server", server.as_ref(), s.sent[1].bytes),
    ] {
        let Some(st) = st else { continue };
        assert!(
            st.out_buffer_bytes <= queued,
            "{who}: {} bytes buffered of {queued} queued",
            st.out_buffer_bytes
        );
        assert!(
            st.reorder_queue <= 1024,
            "{who}: reorder queue {}",
            st.reorder_queue
        );
    }
    tally.sequences += 1;
    tally.forging += u64::from(forging);
    tally.survived += u64::from(complete);
    tally.checked_complete += u64::from(complete && !forging);
    let ends = [&s.client_end.reason, &s.server_end.reason];
    if ends.iter().any(|r| **r == Some(DisconnectReason::TimedOut)) {
        tally.timed_out += 1;
    } else if ends.iter().any(|r| r.is_some()) {
        tally.other_close += 1;
    }
    tally.injected += s.tally_injected;
    tally.jumps += s.tally_jumps;
    tally.honest_sent += s
        .sent
        .iter()
        .flat_map(|d| &d.pads)
        .map(|p| p.len() as u64)
        .sum::<u64>();
    tally.honest_delivered += (s.got[0].len() + s.got[1].len()) as u64;
}

/// Target 3: `iters` sequences of honest traffic, fuzz and clock jumps.
fn target_sequences(seed: u64, iters: u64) -> SequenceTally {
    let mut tally = SequenceTally::default();
    for_each_case("sequences", seed, iters, |_, rng, at| {
        run_sequence(rng, at, &mut tally);
    });
    tally
}

#[test]
fn sequences() {
    let tally = target_sequences(0x5E0_0E4CE, 300);
    println!("{tally}");
    assert!(
        tally.checked_complete >= 100 && tally.forging >= 50,
        "{tally}"
    );
}

#[test]
#[ignore = "long fuzz run: LEGUME_FUZZ_ITERS (/ 200), LEGUME_FUZZ_SEQUENCES, LEGUME_FUZZ_SEED"]
fn sequences_long() {
    let n = env_u64("LEGUME_FUZZ_SEQUENCES")
        .or_else(|| env_u64("LEGUME_FUZZ_ITERS").map(|n| (n / 200).max(1)))
        .unwrap_or(10_000);
    long_run("sequences", n, "sequences", target_sequences);
}
