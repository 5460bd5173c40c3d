//! Throughput of the sans-IO core alone: a client `Connection` and a
//! `ServerEndpoint` on an in-memory link (`SimNetwork`, 1 ms one-way
//! latency), driven on a simulated clock that jumps to the next event. No
//! socket and no system call is involved, so this is the ceiling the UDP
//! driver can approach.
//!
//! Each iteration queues 10,000 messages of 32 bytes on the client and runs
//! the simulation until they are through: for reliable and ordered delivery,
//! until the server app has all of them and the client has every ack; for
//! unreliable delivery, until the client's queue and the network are empty
//! (under loss some are gone). The measured time covers both state machines
//! (encode, assemble, parse, decode, acks, loss recovery, event boxes) plus
//! the simulated network's queue. Throughput is in messages offered; bytes
//! per second are 32 × that (payload) or the wire figures printed at start.
//!
//! Run with `cargo bench -p legume-net --bench core`.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use legume_net::sim::LinkConditions;
use legume_net::Delivery;

use common::{msg32, Msg32, Pair, MSG_LEN};

/// Messages per iteration.
const BATCH: u64 = 10_000;

/// Queues `BATCH` messages and runs until they are through (see the module docs).
fn run_batch(pair: &mut Pair, msg: &Msg32, delivery: Delivery) {
    for _ in 0..BATCH {
        pair.client.send(msg, delivery).expect("queue has room");
    }
    let target = pair.server_msgs + BATCH;
    loop {
        let through = match delivery {
            Delivery::Unreliable => {
                pair.client.stats().out_buffer_bytes == 0 && pair.net.in_flight() == 0
            }
            _ => pair.server_msgs >= target && pair.client.stats().out_buffer_bytes == 0,
        };
        if through {
            break;
        }
        assert!(
            pair.advance(),
            "simulation ran dry before the batch was through"
        );
    }
}

fn bench_core(c: &mut Criterion) {
    let msg = msg32();
    let mut group = c.benchmark_group("core");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(BATCH));
    let deliveries = [
        ("unreliable", Delivery::Unreliable),
        ("reliable", Delivery::Reliable),
        ("ordered", Delivery::ReliableOrdered),
    ];
    for (loss_name, loss) in [("loss0", 0.0), ("loss5", 0.05)] {
        for (name, delivery) in deliveries {
            let conditions = LinkConditions::lossy(loss).with_latency(Duration::from_millis(1));
            let mut pair = Pair::connected(7, conditions);
            // One batch outside the measurement, to warm the connection up
            // and to print what a batch costs on the (simulated) wire.
            run_batch(&mut pair, &msg, delivery);
            let (t0, s0, n0, m0) = (
                pair.now,
                pair.client.stats(),
                pair.net.stats(),
                pair.server_msgs,
            );
            run_batch(&mut pair, &msg, delivery);
            let (s1, n1) = (pair.client.stats(), pair.net.stats());
            eprintln!(
                "core/{name}/{loss_name}: one batch of {BATCH} x {MSG_LEN} B: {} delivered, \
                 {} client packets ({} B), {} datagrams dropped by the link, {} resends, \
                 {} packets declared lost ({} spuriously), {:?} simulated, cwnd {} B",
                pair.server_msgs - m0,
                s1.out_packets - s0.out_packets,
                s1.out_bytes - s0.out_bytes,
                n1.dropped - n0.dropped,
                s1.resends - s0.resends,
                s1.lost_packets - s0.lost_packets,
                s1.spurious_losses - s0.spurious_losses,
                pair.now - t0,
                s1.congestion_window,
            );
            group.bench_function(format!("{name}/{loss_name}"), |b| {
                b.iter(|| run_batch(&mut pair, &msg, delivery))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_core);
criterion_main!(benches);
