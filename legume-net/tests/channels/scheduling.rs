//! How channels share a connection: no head-of-line blocking across
//! channels, sequenced delivery that never goes backwards, lifetimes that
//! bound the age of snapshots, and weighted fairness between two backlogged
//! reliable channels.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use legume_net::sim::LinkConditions;
use legume_net::{ChannelConfig, ChannelId, ChannelKind, Config};

use crate::link::{LinkSpec, Pair, MS, SEC};
use crate::util::World;
use crate::{ch, channels_with, msg, nums, CHANNEL_BASE};

/// The time from sending a chat line on `chat` while a 4 MiB transfer on
/// channel 2 is a second along, at 5% loss each way, to its delivery; and
/// the client's smoothed RTT when it was sent.
fn chat_delay(chat: u8) -> (Duration, Duration) {
    let config = Config {
        channels: channels_with(&[ch(ChannelKind::ReliableOrdered)]),
        ..Config::default()
    };
    let link = LinkSpec::plain(25 * MS, 0.05);
    let mut p = Pair::connected(18, config, link, link);
    for i in 0..64 {
        p.client
            .send_on(ChannelId::ORDERED, &msg(2, i, 64 << 10))
            .unwrap();
    }
    p.run_for(SEC);
    let bulk_done = nums(&p.server_events).len();
    assert!(
        bulk_done < 64,
        "the transfer is still going: {bulk_done}/64"
    );
    let rtt = p.client.rtt();
    let sent_at = p.now;
    let chat_n = u32::from(chat) * CHANNEL_BASE + 1000;
    p.client
        .send_on(ChannelId(chat), &msg(chat, 1000, 40))
        .unwrap();
    let delivered = p.run_until(60 * SEC, |p| {
        nums(&p.server_events).iter().any(|&(_, n)| n == chat_n)
    });
    assert!(delivered, "the chat line never came");
    let at = nums(&p.server_events)
        .into_iter()
        .find(|&(_, n)| n == chat_n)
        .map(|(t, _)| t)
        .unwrap();
    (at - sent_at, rtt)
}

#[test]
fn a_chat_line_is_not_held_behind_a_transfer_on_another_channel() {
    let (own, rtt) = chat_delay(3);
    println!("chat on its own channel: {own:?} (srtt {rtt:?})");
    assert!(
        own <= 3 * rtt,
        "chat on its own channel took {own:?}, over 3 RTT ({rtt:?})"
    );
    // The same line on the transfer's channel waits for all of it.
    let (behind, rtt) = chat_delay(2);
    println!("chat behind the transfer: {behind:?} (srtt {rtt:?})");
    assert!(behind > 10 * rtt, "{behind:?}");
}

#[test]
fn sequenced_delivery_never_goes_backwards() {
    let config = Config {
        channels: channels_with(&[ch(ChannelKind::UnreliableSequenced)]),
        ..Config::default()
    };
    let conditions = LinkConditions {
        loss: 0.1,
        duplicate: 0.05,
        latency: 30 * MS,
        jitter: 20 * MS,
        reorder: 0.2,
    };
    let mut w = World::new(19, config, conditions);
    let c = w.add_client();
    assert!(w.connect_all(5 * SEC));
    let peer = w.clients[c].addr;
    let sent = 2000u32;
    for i in 0..sent {
        w.clients[c]
            .conn
            .send_on(ChannelId(3), &msg(3, i, 100))
            .unwrap();
        w.run_for(5 * MS);
    }
    w.run_for(SEC);
    let got = w.server_nums(peer);
    assert!(
        got.windows(2).all(|p| p[0] < p[1]),
        "went backwards: {got:?}"
    );
    let stats = w.server.peer(peer).unwrap().stats();
    let ch3 = &stats.channels[3];
    println!(
        "sequenced: {} sent, {} delivered, {} stale",
        sent, ch3.delivered, ch3.dropped_stale
    );
    assert_eq!(ch3.delivered, got.len() as u64);
    assert!(ch3.dropped_stale > 0, "the link reordered: some came late");
    assert!(ch3.delivered + ch3.dropped_stale <= u64::from(sent));
    assert!(ch3.delivered > u64::from(sent) / 2);
}

/// Ages of the snapshots delivered from a 60 Hz stream of `size`-byte
/// snapshots on channel 3 for `secs`, beside an optional bulk transfer on
/// channel 2; with the client's final srtt and its channel-3 drop count.
struct Snapshots {
    ages: Vec<Duration>,
    queue_drops: u64,
    srtt: Duration,
    dropped_lifetime: u64,
    sent: u32,
}

fn snapshots(
    seed: u64,
    lifetime: Option<Duration>,
    link: LinkSpec,
    bulk: bool,
    secs: u32,
) -> Snapshots {
    let stream = ChannelConfig {
        lifetime,
        ..ch(ChannelKind::UnreliableSequenced)
    };
    let config = Config {
        channels: channels_with(&[stream]),
        ..Config::default()
    };
    let back = LinkSpec::plain(link.delay, link.loss);
    let mut p = Pair::connected(seed, config, link, back);
    if bulk {
        for i in 0..64 {
            p.client
                .send_on(ChannelId::ORDERED, &msg(2, i, 64 << 10))
                .unwrap();
        }
    }
    let tick = Duration::from_micros(16_667);
    let mut sent_at: HashMap<u32, Instant> = HashMap::new();
    let start = p.now;
    let mut next = start;
    let mut i = 0;
    while p.now < start + secs * SEC {
        if p.now >= next {
            p.client
                .send_on(ChannelId(3), &msg(3, i, 1200))
                .expect("queue room");
            sent_at.insert(3 * CHANNEL_BASE + i, p.now);
            i += 1;
            next += tick;
        }
        p.tick();
    }
    let ages = nums(&p.server_events)
        .into_iter()
        .filter_map(|(t, n)| sent_at.get(&n).map(|&s| t - s))
        .collect();
    Snapshots {
        ages,
        queue_drops: p.up_queue_drops(),
        srtt: p.client.rtt(),
        dropped_lifetime: p.client.stats().channels[3].dropped_lifetime,
        sent: i,
    }
}

fn p99(ages: &[Duration]) -> Duration {
    let mut a = ages.to_vec();
    a.sort_unstable();
    a[(a.len() * 99 / 100).min(a.len() - 1)]
}

#[test]
fn lifetimes_bound_snapshot_age_on_a_slow_link() {
    // 60 Hz × 1,200 bytes is 72 kB/s; the link carries a quarter of it.
    let slow = LinkSpec {
        rate: Some(18_000),
        delay: 20 * MS,
        loss: 0.0,
        max_queue: 200 * MS,
    };
    let lifetime = 50 * MS;
    let s = snapshots(20, Some(lifetime), slow, false, 10);
    let bound = 2 * s.srtt + lifetime;
    println!(
        "slow link, lifetime {lifetime:?}: {} of {} delivered, {} dropped for lifetime, \
         {} datagrams dropped at the bottleneck, p99 age {:?}, srtt {:?}, bound {bound:?}",
        s.ages.len(),
        s.sent,
        s.dropped_lifetime,
        s.queue_drops,
        p99(&s.ages),
        s.srtt
    );
    assert!(s.ages.len() > 100, "snapshots get through");
    // The rest were dropped at the bottleneck, which the congestion
    // window's floor (16 datagrams) overruns.
    assert!(s.dropped_lifetime > 0, "stale snapshots are dropped unsent");
    assert!(
        p99(&s.ages) < bound,
        "p99 {:?} over {bound:?}",
        p99(&s.ages)
    );
    let with_lifetime = p99(&s.ages);
    // Without a lifetime they wait in the send queue behind one another.
    let s = snapshots(20, None, slow, false, 10);
    println!(
        "slow link, no lifetime: {} delivered, p99 age {:?}, srtt {:?}",
        s.ages.len(),
        p99(&s.ages),
        s.srtt
    );
    assert!(
        p99(&s.ages) > 2 * with_lifetime,
        "{:?} against {with_lifetime:?}",
        p99(&s.ages)
    );
}

#[test]
fn lifetimes_bound_snapshot_age_beside_a_transfer_at_20_percent_loss() {
    let lossy = LinkSpec::plain(20 * MS, 0.2);
    let lifetime = 50 * MS;
    let s = snapshots(21, Some(lifetime), lossy, true, 5);
    let bound = 2 * s.srtt + lifetime;
    println!(
        "20% loss beside 4 MiB: {} of {} delivered, {} dropped for lifetime, p99 age {:?}, \
         srtt {:?}, bound {bound:?}",
        s.ages.len(),
        s.sent,
        s.dropped_lifetime,
        p99(&s.ages),
        s.srtt
    );
    assert!(s.ages.len() > usize::try_from(s.sent).unwrap() / 3);
    assert!(
        p99(&s.ages) < bound,
        "p99 {:?} over {bound:?}",
        p99(&s.ages)
    );
}

/// Bytes delivered on channels 3 and 4, both reliable and backlogged with
/// 1,000-byte messages, over 3 s of a 200 kB/s link at 5% loss, with
/// weights `w3` and `w4`.
fn shares(w3: u16, w4: u16) -> (u64, u64) {
    let channel = |weight| ChannelConfig {
        weight,
        ..ch(ChannelKind::Reliable)
    };
    let config = Config {
        channels: channels_with(&[channel(w3), channel(w4)]),
        ..Config::default()
    };
    let link = LinkSpec {
        rate: Some(200_000),
        delay: 20 * MS,
        loss: 0.05,
        max_queue: 100 * MS,
    };
    let mut p = Pair::connected(22, config, link, LinkSpec::plain(20 * MS, 0.05));
    for i in 0..2000 {
        p.client.send_on(ChannelId(3), &msg(3, i, 1000)).unwrap();
        p.client.send_on(ChannelId(4), &msg(4, i, 1000)).unwrap();
    }
    p.run_for(3 * SEC);
    let stats = p.server.peer(p.peer).unwrap().stats();
    (stats.channels[3].delivered, stats.channels[4].delivered)
}

#[test]
fn two_backlogged_channels_share_by_weight() {
    let (a, b) = shares(1, 1);
    println!("weights 1:1: {a} and {b} messages in 3 s");
    let ratio = a as f64 / b as f64;
    assert!((0.8..1.25).contains(&ratio), "{a} / {b}");
    let (a, b) = shares(3, 1);
    println!("weights 3:1: {a} and {b} messages in 3 s");
    let ratio = a as f64 / b as f64;
    assert!((2.4..3.6).contains(&ratio), "{a} / {b}");
    assert!(b > 50, "the light channel is not starved: {b}");
}
