//! Fuzzing of the legume v4 mode on the stable toolchain: seeded,
//! structure-aware datagrams (legume transport headers with ids and
//! sequences near and far, every protocol message with right and wrong
//! field lengths, valid, mutated and unknown user messages, truncations,
//! random bytes) thrown at a live v4 client connection and at a v4 server
//! endpoint, from the peer's address and from strangers, with honest traffic
//! and clock steps in between.
//!
//! legume v4 has no session id, so a datagram from the peer's address can
//! speak for it: end the connection, ack what never arrived, or move the
//! receiver's id window so that a resend is delivered again
//! (`LEGUME_COMPAT.md` section 5). In the episodes that forge, what must
//! hold is: no panic; queues, reorder buffer and peer table within their
//! limits; only events a peer can cause. In the others the fuzz comes from
//! strangers, and the honest reliable messages must also arrive exactly once.
//! Always: a stranger never gets more bytes back than it sent until it
//! answers.
//!
//! `cargo test -p legume-net --test fuzz_v4` runs a short fixed-seed pass (the
//! CI run); `LEGUME_FUZZ_ITERS=2000000 cargo test --release -p legume-net
//! --test fuzz_v4 -- --ignored --nocapture` a long one (`LEGUME_FUZZ_SEED`
//! picks the seed, printed either way).

mod util;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use legume_core::Message;
use legume_net::sim::{LinkConditions, Rng};
use legume_net::{Config, Delivery, Event, Protocol};
use util::*;

const MS: Duration = Duration::from_millis(1);

fn v4() -> Config {
    Config {
        protocol: Protocol::LegumeV4,
        timeout: Duration::from_secs(5),
        limits: legume_net::Limits {
            max_reorder_bytes: 64 * 1024,
            max_send_queue_bytes: 256 * 1024,
            ..legume_net::Limits::default()
        },
        ..Config::default()
    }
}

fn header(out: &mut Vec<u8>, id: u16, seq: u16, flags: u8) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(flags);
}

/// One message: a transport header, then a body that is right, wrong or
/// random.
fn gen_message(rng: &mut Rng, out: &mut Vec<u8>, near_id: u16, near_seq: u16) {
    let id = match rng.gen_range(0..4) {
        0 => rng.gen_range(0..65_536) as u16,
        1 => near_id.wrapping_sub(rng.gen_range(0..64) as u16),
        _ => near_id.wrapping_add(rng.gen_range(0..64) as u16),
    };
    let seq = match rng.gen_range(0..3) {
        0 => 0,
        1 => near_seq.wrapping_add(rng.gen_range(0..128) as u16),
        _ => rng.gen_range(0..65_536) as u16,
    };
    let flags = match rng.gen_range(0..5) {
        0 => rng.gen_range(0..256) as u8,
        k => (k - 1) as u8,
    };
    header(out, id, seq, flags);
    match rng.gen_range(0..12) {
        // Protocol messages with their right field lengths.
        0 => out.extend_from_slice(&[2, 4]),
        1 => out.push(3),
        2 => out.push(4),
        3 => {
            let kind = [5u8, 6, 9, 10][rng.gen_range(0..4) as usize];
            out.push(kind);
            out.extend_from_slice(&(rng.gen_range(0..65_536) as u16).to_be_bytes());
        }
        4 => {
            out.push(8);
            let acked = match rng.gen_range(0..3) {
                0 => rng.next_u64() as u32,
                _ => u32::from(near_id.wrapping_sub(rng.gen_range(0..600) as u16)),
            };
            out.extend_from_slice(&acked.to_be_bytes());
        }
        5 if rng.chance(0.1) => out.push(7),
        // A user message, valid or with a corrupted length.
        6..=8 => {
            let max = if rng.chance(0.1) { 1300 } else { 40 };
            let pad = rng.gen_range(0..max) as usize;
            let mut b = vec![0u8; 1500];
            let n = padded(rng.next_u64() as u32, pad)
                .encode_message(&mut b)
                .expect("fits");
            b.truncate(n);
            if rng.chance(0.3) {
                let i = rng.gen_range(0..b.len() as u64) as usize;
                b[i] ^= 1 << rng.gen_range(0..8);
            }
            out.extend_from_slice(&b);
        }
        // Unknown and reserved type ids, then whatever.
        9 => {
            out.push([0u8, 1, 11, 19, 21, 99, 255][rng.gen_range(0..7) as usize]);
            let n = rng.gen_range(0..20) as usize;
            out.extend((0..n).map(|_| rng.next_u64() as u8));
        }
        // Protocol messages cut short.
        _ => out.push([2u8, 5, 6, 8, 9, 10][rng.gen_range(0..6) as usize]),
    }
}

fn gen_datagram(rng: &mut Rng, near_id: u16, near_seq: u16) -> Vec<u8> {
    let mut d = Vec::new();
    if rng.chance(0.1) {
        let n = rng.gen_range(0..64) as usize;
        d.extend((0..n).map(|_| rng.next_u64() as u8));
        return d;
    }
    for _ in 0..rng.gen_range(1..6) {
        gen_message(rng, &mut d, near_id, near_seq);
    }
    if rng.chance(0.2) && !d.is_empty() {
        d.truncate(rng.gen_range(0..d.len() as u64) as usize);
    }
    d.truncate(1400);
    d
}

/// What one run saw.
#[derive(Default, Debug)]
struct Tally {
    datagrams: u64,
    episodes: u64,
    closed_by_fuzz: u64,
    honest_delivered: u64,
}

/// One episode: a connected v4 pair, `n` fuzzed datagrams to both sides and
/// to the server from strangers, honest messages in between.
fn episode(rng: &mut Rng, n: u64, tally: &mut Tally) {
    let seed = rng.next_u64();
    let mut w = World::new(
        seed,
        v4(),
        LinkConditions::perfect()
            .with_latency(2 * MS)
            .with_loss(0.05),
    );
    let c = w.add_client();
    assert!(w.connect_all(Duration::from_secs(5)));
    let peer = w.clients[c].addr;
    // In some episodes the fuzz speaks for the peers (legume v4 cannot tell
    // a forged datagram from a real one); in the others it comes from
    // strangers, and the honest exchange must come out exactly right.
    let forge = rng.chance(0.4);
    let mut sent = 0u32;
    let mut got = HashSet::new();
    let mut buf = vec![0u8; 1500];
    for i in 0..n {
        let near = (i * 3) as u16;
        let d = gen_datagram(rng, near, (i / 4) as u16 + 2);
        let now = w.now;
        tally.datagrams += 1;
        let target = if forge { rng.gen_range(0..3) } else { 2 };
        match target {
            0 => w.clients[c].conn.handle_datagram(now, &d),
            1 => w.server.handle_datagram(now, peer, &d),
            _ => {
                let from = SocketAddr::from(([10, 9, (i >> 8) as u8, i as u8], 9));
                let peers = w.server.peer_count();
                w.server.handle_datagram(now, from, &d);
                // A stranger gets at most what it sent until it answers.
                while let Some((to, len)) = w.server.poll_transmit(now, &mut buf) {
                    if to == from {
                        assert!(len <= d.len(), "{len} bytes back for {}", d.len());
                    }
                }
                assert!(w.server.peer_count() <= peers + 1);
            }
        }
        if i % 8 == 0 && w.clients[c].conn.is_connected() {
            let _ = w.clients[c].conn.send(&num(sent), Delivery::Reliable);
            sent += 1;
        }
        if i % 16 == 0 {
            w.run_for(rng.gen_range(0..30) as u32 * MS);
        }
        let stats = w.clients[c].conn.stats();
        assert!(stats.out_buffer_bytes <= 256 * 1024, "{stats:?}");
        if let Some(p) = w.server.peer(peer) {
            let s = p.stats();
            assert!(s.reorder_queue <= 64 * 1024, "{s:?}");
        }
    }
    w.run_for(Duration::from_secs(2));
    for n in w.server_nums(peer) {
        // Forged ids can make the receiver forget which ids it has seen, so
        // only unforged episodes promise at-most-once.
        if !got.insert(n) {
            assert!(forge, "honest message {n} delivered twice");
        }
    }
    if !forge {
        assert_eq!(got.len() as u32, sent, "honest messages lost");
        assert!(w.clients[c].conn.is_connected());
    }
    // Every event is one a peer can cause.
    for e in w.clients[c].events.drain(..) {
        assert!(
            matches!(
                e,
                Event::Connected | Event::Message(_) | Event::Disconnected(_) | Event::Error(_)
            ),
            "{e:?}"
        );
    }
    tally.honest_delivered += got.len() as u64;
    if !w.clients[c].conn.is_connected() || w.server.peer(peer).is_none() {
        tally.closed_by_fuzz += 1;
    }
    tally.episodes += 1;
}

fn run(seed: u64, datagrams: u64) -> Tally {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    while tally.datagrams < datagrams {
        let n = rng.gen_range(64..512).min(datagrams - tally.datagrams);
        episode(&mut rng, n, &mut tally);
    }
    tally
}

#[test]
fn fuzzed_datagrams_never_break_a_v4_pair() {
    let tally = run(0x1E6_0004, 6_000);
    println!("{tally:?}");
    assert!(tally.episodes > 5);
}

#[test]
#[ignore = "long fuzz run: LEGUME_FUZZ_ITERS, LEGUME_FUZZ_SEED"]
fn fuzzed_datagrams_never_break_a_v4_pair_long() {
    let iters = std::env::var("LEGUME_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed = std::env::var("LEGUME_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed {seed}, {iters} datagrams");
    let start = Instant::now();
    let tally = run(seed, iters);
    println!("{tally:?} in {:?}", start.elapsed());
}
