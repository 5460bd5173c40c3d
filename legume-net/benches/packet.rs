//! Packet assembly and parsing, measured through the public API (the
//! `packet` module is private).
//!
//! - **assemble**: `Connection::poll_transmit` writing one full DATA packet
//!   from queued messages: 40 unreliable 32-byte messages (18 + 40 × 34 =
//!   1,378 bytes), or 38 reliable or ordered ones (18 + 38 × 36 = 1,386
//!   bytes), with the bookkeeping a sent packet needs (sent-packet record,
//!   message refs, congestion accounting).
//! - **parse**: `ServerEndpoint::handle_datagram` taking that packet plus
//!   draining its events: address lookup, header and frame parsing, ack
//!   processing, duplicate and window checks, decoding the messages through
//!   the factory into boxed events.
//!
//! Each iteration queues the messages (not measured), assembles a packet on
//! the client, hands it straight to the server, and feeds the server's acks
//! back (not measured); the clock advances 100 µs per packet. Only the call
//! named by the benchmark is timed, with `Instant::now()` around it (about
//! 20–30 ns of the figure on a TSC clock).
//!
//! Run with `cargo bench -p legume-net --bench packet`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use legume_net::sim::LinkConditions;
use legume_net::{Delivery, Event};

use common::{check_event, client_addr, msg32, Msg32, Pair};

/// What one round measured.
struct Round {
    assemble: Duration,
    parse: Duration,
    len: usize,
    messages: u64,
}

/// Queues `count` messages, assembles one packet on the client, parses it on
/// the server, returns the server's acks to the client.
fn round(pair: &mut Pair, buf: &mut [u8], msg: &Msg32, delivery: Delivery, count: usize) -> Round {
    pair.now += Duration::from_micros(100);
    let now = pair.now;
    for _ in 0..count {
        pair.client.send(msg, delivery).expect("queue has room");
    }
    if pair.client.poll_timeout().is_some_and(|t| t <= now) {
        pair.client.handle_timeout(now);
    }
    let t = Instant::now();
    let n = pair.client.poll_transmit(now, buf);
    let assemble = t.elapsed();
    let len = n.expect("a packet to send");
    let t = Instant::now();
    pair.server
        .handle_datagram(now, client_addr(), black_box(&buf[..len]));
    let mut messages = 0;
    while let Some(e) = pair.server.poll_event() {
        check_event(&e.event);
        if matches!(e.event, Event::Message(_)) {
            messages += 1;
        }
    }
    let parse = t.elapsed();
    // Anything else the client had (there should be nothing) goes the same way.
    while let Some(n) = pair.client.poll_transmit(now, buf) {
        pair.server.handle_datagram(now, client_addr(), &buf[..n]);
    }
    while pair.server.poll_event().is_some() {}
    if pair.server.poll_timeout().is_some_and(|t| t <= now) {
        pair.server.handle_timeout(now);
    }
    while let Some((to, n)) = pair.server.poll_transmit(now, buf) {
        assert_eq!(to, client_addr());
        pair.client.handle_datagram(now, &buf[..n]);
    }
    while let Some(e) = pair.client.poll_event() {
        check_event(&e);
    }
    Round {
        assemble,
        parse,
        len,
        messages,
    }
}

fn bench_packet(c: &mut Criterion) {
    let msg = msg32();
    let mut buf = vec![0u8; 1500];
    let cases = [
        ("unreliable", Delivery::Unreliable, 40, 1378),
        ("reliable", Delivery::Reliable, 38, 1386),
        ("ordered", Delivery::ReliableOrdered, 38, 1386),
    ];
    for (stage, pick) in [
        (
            "assemble",
            (|r: &Round| r.assemble) as fn(&Round) -> Duration,
        ),
        ("parse", |r: &Round| r.parse),
    ] {
        let mut group = c.benchmark_group(format!("packet/{stage}"));
        group.sample_size(20);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for (name, delivery, count, expect_len) in cases {
            let mut pair = Pair::connected(11, LinkConditions::perfect());
            // The pair talks directly from here on; the network stays empty.
            assert_eq!(pair.net.in_flight(), 0);
            for _ in 0..100 {
                let r = round(&mut pair, &mut buf, &msg, delivery, count);
                assert_eq!(
                    (r.len, r.messages),
                    (expect_len, count as u64),
                    "{name}: expected one packet of {expect_len} B with {count} messages"
                );
            }
            group.throughput(Throughput::Bytes(expect_len as u64));
            group.bench_function(format!("{name}/{count}x32B"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let r = round(&mut pair, &mut buf, &msg, delivery, count);
                        debug_assert_eq!(r.messages, count as u64);
                        total += pick(&r);
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_packet);
criterion_main!(benches);
