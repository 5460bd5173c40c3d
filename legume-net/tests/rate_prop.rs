//! Property tests of rate control (`docs/PROTOCOL.md` section 5): over
//! random links (loss, delay, jitter, a bottleneck or none), controllers,
//! rate caps and workloads, a connection never has more bytes in flight
//! than its window lets out (bar the two probes a probe timeout allows),
//! the BBR controller's pacing rate never drops to zero, a rate cap is
//! kept, and every reliable message arrives exactly once.

mod util;

use std::time::Duration;

use legume_net::sim::{Bottleneck, LinkConditions};
use legume_net::{Config, CongestionConfig, CongestionController, Delivery, MTU};
use proptest::prelude::*;
use util::*;

const SEC: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    loss: f64,
    latency_ms: u64,
    jitter_ms: u64,
    bottleneck: Option<Bottleneck>,
    controller: CongestionController,
    max_rate: Option<u64>,
    /// (payload bytes, ordered) per message.
    messages: Vec<(usize, bool)>,
}

fn case() -> impl Strategy<Value = Case> {
    let bottleneck =
        prop::option::of(
            (50_000u64..4_000_000, 4usize..256).prop_map(|(rate, k)| Bottleneck {
                rate,
                queue: k << 10,
            }),
        );
    let controller = prop_oneof![
        Just(CongestionController::Bbr),
        Just(CongestionController::NewReno)
    ];
    (
        any::<u64>(),
        0.0f64..0.3,
        1u64..80,
        0u64..20,
        bottleneck,
        controller,
        prop::option::of(20_000u64..2_000_000),
        prop::collection::vec((1usize..3000, any::<bool>()), 50..400),
    )
        .prop_map(
            |(seed, loss, latency_ms, jitter_ms, bottleneck, controller, max_rate, messages)| {
                Case {
                    seed,
                    loss,
                    latency_ms,
                    jitter_ms,
                    bottleneck,
                    controller,
                    max_rate,
                    messages,
                }
            },
        )
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let config = Config {
        congestion: CongestionConfig {
            controller: case.controller,
            max_rate: case.max_rate,
            ..CongestionConfig::default()
        },
        timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let link = LinkConditions::perfect()
        .with_loss(case.loss)
        .with_latency(Duration::from_millis(case.latency_ms))
        .with_jitter(Duration::from_millis(case.jitter_ms));
    let mut w = World::new(case.seed, config, link);
    let c = w.add_client();
    if let Some(b) = case.bottleneck {
        let id = w.net.add_bottleneck(b);
        w.net.route_through(w.clients[c].addr, server_addr(), id);
    }
    prop_assert!(w.connect_all(30 * SEC), "handshake");
    for (i, &(len, ordered)) in case.messages.iter().enumerate() {
        let delivery = if ordered {
            Delivery::ReliableOrdered
        } else {
            Delivery::Reliable
        };
        w.clients[c]
            .conn
            .send(&padded(i as u32, len), delivery)
            .expect("room");
    }
    let peer = w.clients[c].addr;
    let n = case.messages.len();
    let mut got = Vec::new();
    let limit = w.now + 600 * SEC;
    let mut before = w.clients[c].conn.stats();
    loop {
        got.extend(w.server_nums(peer));
        if got.len() >= n || !w.advance(limit) {
            break;
        }
        let s = w.clients[c].conn.stats();
        // A step processes acks, then sends: if the bytes in flight grew,
        // what went out was let out by the window as it is now, unless a
        // loss found while sending (a packet a lap of the sent ring old)
        // cut the window after it.
        if s.bytes_in_flight > before.bytes_in_flight && s.lost_packets == before.lost_packets {
            prop_assert!(
                s.bytes_in_flight <= s.congestion_window + 2 * MTU,
                "{} bytes in flight, window {}",
                s.bytes_in_flight,
                s.congestion_window
            );
        }
        match (case.controller, case.max_rate) {
            (_, Some(cap)) => prop_assert!(
                s.pacing_rate > 0 && s.pacing_rate <= cap,
                "rate {}",
                s.pacing_rate
            ),
            (CongestionController::Bbr, None) => {
                prop_assert!(s.pacing_rate > 0, "the rate fell to zero")
            }
            _ => prop_assert_eq!(s.pacing_rate, 0),
        }
        before = s;
    }
    let ids: Vec<u32> = got.clone();
    prop_assert!(
        w.clients[c].conn.is_connected(),
        "{:?}",
        w.clients[c].conn.state()
    );
    assert_exactly_once(&ids, n as u32, false, "rate_prop");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_window_the_rate_and_exactly_once_hold(case in case()) {
        run(&case)?;
    }
}
