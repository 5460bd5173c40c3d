//! What the secure mode costs, measured against the plain mode in the same
//! run: the sans-IO core of `benches/core.rs` (a client and a server
//! endpoint on an in-memory link, 1 ms one-way) moving 10,000 messages of
//! 32 bytes, ordered (as the W1 echo workload) and reliable (as W2), plain
//! and secure; and sealing and opening one full-size DATA packet.
//!
//! Run with `cargo bench -p legume-net --bench secure`.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use legume_net::secure::PacketKey;
use legume_net::sim::LinkConditions;
use legume_net::Delivery;

use common::{msg32, Msg32, Pair};

/// Messages per iteration.
const BATCH: u64 = 10_000;

/// Queues `BATCH` messages and runs until the server app has them all and
/// the client every ack.
fn run_batch(pair: &mut Pair, msg: &Msg32, delivery: Delivery) {
    for _ in 0..BATCH {
        pair.client.send(msg, delivery).expect("queue has room");
    }
    let target = pair.server_msgs + BATCH;
    while pair.server_msgs < target || pair.client.stats().out_buffer_bytes > 0 {
        assert!(
            pair.advance(),
            "simulation ran dry before the batch was through"
        );
    }
}

fn bench_secure(c: &mut Criterion) {
    let msg = msg32();
    let mut group = c.benchmark_group("secure");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(BATCH));
    for (name, delivery) in [
        ("ordered", Delivery::ReliableOrdered),
        ("reliable", Delivery::Reliable),
    ] {
        for secure in [false, true] {
            let conditions = LinkConditions::perfect().with_latency(Duration::from_millis(1));
            let mut pair = if secure {
                Pair::connected_secure(7, conditions)
            } else {
                Pair::connected(7, conditions)
            };
            assert_eq!(pair.client.is_secure(), secure);
            run_batch(&mut pair, &msg, delivery);
            let mode = if secure { "secure" } else { "plain" };
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter(|| run_batch(&mut pair, &msg, delivery))
            });
        }
    }
    group.finish();

    // One DATA packet of 1,400 bytes: 18 header, 1,366 frames, 16 tag.
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(1366));
    let key = PacketKey::from_bytes([9; 32]);
    let header = [0u8; 18];
    let mut payload = vec![0u8; 1366];
    let mut seq = 0u64;
    group.bench_function("seal 1400 B packet", |b| {
        b.iter(|| {
            seq += 1;
            key.seal(1, seq, &header, &mut payload)
        })
    });
    let tag = key.seal(1, 1, &header, &mut payload);
    group.bench_function("open 1400 B packet", |b| {
        b.iter(|| {
            // Opening leaves the payload as it was, so each try is the same.
            let mut p = payload.clone();
            key.open(1, 1, &header, &mut p, &tag)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_secure);
criterion_main!(benches);
