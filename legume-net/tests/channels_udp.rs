//! Four channels over real UDP on loopback, through the driver's network
//! conditioner (10% loss and some reordering both ways): every channel
//! keeps its guarantee, the short and the long frame forms both travel,
//! and feedback names each sequenced message once.

mod util;

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use legume_net::sim::{Conditioner, LinkConditions};
use legume_net::{
    ChannelConfig, ChannelId, ChannelKind, Client, Config, Delivery, DriverConfig, Event, Server,
};
use util::{factory, Num};

const BASE: u32 = 1_000_000;

fn config(seed: u64) -> Config {
    let kinds = [
        ChannelKind::Unreliable,
        ChannelKind::UnreliableSequenced,
        ChannelKind::Reliable,
        ChannelKind::ReliableOrdered,
    ];
    let mut channels: Vec<ChannelConfig> = kinds.iter().map(|&k| ChannelConfig::new(k)).collect();
    channels[1].feedback = true;
    let conditions = LinkConditions {
        loss: 0.1,
        duplicate: 0.02,
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(3),
        reorder: 0.1,
    };
    Config {
        channels,
        driver: DriverConfig {
            conditioner: Some(Conditioner::symmetric(conditions, seed)),
            ..DriverConfig::default()
        },
        ..Config::default()
    }
}

fn num(channel: u32, i: u32) -> Num {
    Num {
        n: channel * BASE + i,
        // Reliable ones up to 3,040 bytes (fragmented), unreliable ones
        // within a packet.
        pad: vec![7; 40 + (i as usize % 7) * if channel >= 2 { 500 } else { 150 }],
    }
}

/// Updates both ends once, collecting the numbers the server got and the
/// client's events.
fn pump(server: &mut Server, client: &mut Client, got: &mut Vec<u32>, events: &mut Vec<Event>) {
    server.update();
    while let Some(e) = server.poll_event() {
        if let Event::Message(m) = e.event {
            if let Some(n) = m.downcast_ref::<Num>() {
                got.push(n.n);
            }
        }
    }
    client.update();
    while let Some(e) = client.poll_event() {
        events.push(e);
    }
    std::thread::sleep(Duration::from_micros(500));
}

#[test]
fn four_channels_over_a_lossy_loopback() {
    let mut server = Server::new(factory(), config(1));
    server.listen("127.0.0.1:0").expect("listen on loopback");
    let mut client = Client::new(factory(), config(2));
    client
        .connect(server.local_addr().expect("bound"))
        .expect("connect");
    let mut server_got = Vec::new();
    let mut client_events = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while !client.connected() && Instant::now() < end {
        pump(
            &mut server,
            &mut client,
            &mut server_got,
            &mut client_events,
        );
    }
    assert!(client.connected(), "no connection: {client_events:?}");
    const N: u32 = 200;
    let mut handles = Vec::new();
    for i in 0..N {
        client.send(&num(0, i), Delivery::Unreliable).unwrap();
        handles.push(client.send_on(ChannelId(1), &num(1, i)).unwrap());
        // `Delivery::Reliable` and `ReliableOrdered` go to channels 2 and 3,
        // the first of their kinds.
        client.send(&num(2, i), Delivery::Reliable).unwrap();
        client.send_on(ChannelId(3), &num(3, i)).unwrap();
        if i % 20 == 0 {
            pump(
                &mut server,
                &mut client,
                &mut server_got,
                &mut client_events,
            );
        }
    }
    let fates = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Acked(_) | Event::Lost(_)))
            .count()
    };
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        pump(
            &mut server,
            &mut client,
            &mut server_got,
            &mut client_events,
        );
        let reliable = server_got.iter().filter(|&&n| n >= 2 * BASE).count();
        if reliable == 2 * N as usize && fates(&client_events) == N as usize {
            break;
        }
    }
    let on = |ch: u32| -> Vec<u32> {
        server_got
            .iter()
            .filter(|&&n| n / BASE == ch)
            .map(|&n| n % BASE)
            .collect()
    };
    assert_eq!(on(3), (0..N).collect::<Vec<_>>(), "ordered: all, in order");
    let mut reliable = on(2);
    reliable.sort_unstable();
    assert_eq!(reliable, (0..N).collect::<Vec<_>>(), "reliable: all, once");
    let seq = on(1);
    assert!(seq.windows(2).all(|p| p[0] < p[1]), "sequenced: {seq:?}");
    let unreliable = on(0);
    let distinct: BTreeSet<u32> = unreliable.iter().copied().collect();
    assert_eq!(distinct.len(), unreliable.len(), "unreliable: at most once");
    assert!(!seq.is_empty() && !unreliable.is_empty());
    // Feedback: one fate per sequenced handle, none for other channels.
    let mut seen = HashSet::new();
    for e in &client_events {
        if let Event::Acked(h) | Event::Lost(h) = e {
            assert_eq!(h.channel, ChannelId(1));
            assert!(seen.insert(*h), "{h:?} twice");
            if matches!(e, Event::Acked(_)) {
                // Acked means its packet arrived; the sequenced channel may
                // still have dropped it as stale.
                assert!(handles.contains(h));
            }
        }
    }
    assert_eq!(seen.len(), N as usize, "every sequenced message has a fate");
}
