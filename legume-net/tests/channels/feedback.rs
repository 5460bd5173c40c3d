//! Delivery feedback: every message on a channel with feedback gets exactly
//! one `Acked` or `Lost`, consistent with what arrived.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use legume_net::sim::LinkConditions;
use legume_net::{ChannelConfig, ChannelId, ChannelKind, Config, Event, MessageHandle};
use proptest::prelude::*;

use crate::link::{LinkSpec, Pair, MS, SEC};
use crate::util::World;
use crate::{ch, channels_with, msg, nums, CHANNEL_BASE};

fn with_feedback(kind: ChannelKind, lifetime: Option<Duration>) -> ChannelConfig {
    ChannelConfig {
        feedback: true,
        lifetime,
        ..ch(kind)
    }
}

/// Each handle's fates: `true` for `Acked`, `false` for `Lost`.
fn fates<'a>(events: impl IntoIterator<Item = &'a Event>) -> HashMap<MessageHandle, Vec<bool>> {
    let mut out: HashMap<MessageHandle, Vec<bool>> = HashMap::new();
    for e in events {
        match e {
            Event::Acked(h) => out.entry(*h).or_default().push(true),
            Event::Lost(h) => out.entry(*h).or_default().push(false),
            _ => {}
        }
    }
    out
}

#[test]
fn every_handle_gets_one_fate_consistent_with_what_arrived() {
    let config = Config {
        channels: channels_with(&[
            with_feedback(ChannelKind::Unreliable, Some(30 * MS)),
            with_feedback(ChannelKind::Reliable, None),
        ]),
        ..Config::default()
    };
    let link = LinkSpec::plain(20 * MS, 0.1);
    let mut p = Pair::connected(30, config, link, link);
    let mut handles = Vec::new();
    for i in 0..300 {
        handles.push(p.client.send_on(ChannelId(3), &msg(3, i, 300)).unwrap());
        if i % 3 == 0 {
            // Every third a reliable one, some of them fragmented.
            let len = if i % 30 == 0 { 5000 } else { 200 };
            handles.push(p.client.send_on(ChannelId(4), &msg(4, i, len)).unwrap());
        }
        p.run_for(17 * MS);
    }
    p.run_for(3 * SEC);
    let fates = fates(p.client_events.iter().map(|(_, e)| e));
    let arrived: BTreeSet<u32> = nums(&p.server_events).into_iter().map(|(_, n)| n).collect();
    let (mut acked, mut lost, mut lost_arrived) = (0, 0, 0);
    for h in &handles {
        let f = fates.get(h).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(f.len(), 1, "{h:?}: {f:?}");
        // Numbers count from 0 per channel in send order: the message's `i`
        // is its handle's position among the channel's sends.
        let i = handles
            .iter()
            .filter(|o| o.channel == h.channel && o.number < h.number)
            .count();
        let n = u32::from(h.channel.0) * CHANNEL_BASE
            + if h.channel.0 == 3 {
                i as u32
            } else {
                i as u32 * 3
            };
        if f[0] {
            acked += 1;
            assert!(arrived.contains(&n), "{h:?} acked but never delivered");
        } else {
            assert_eq!(h.channel, ChannelId(3), "a reliable message reported lost");
            lost += 1;
            lost_arrived += u32::from(arrived.contains(&n));
        }
    }
    println!("feedback at 10% loss: {acked} acked, {lost} lost ({lost_arrived} of them arrived)");
    assert!(lost > 10 && acked > 200, "{acked} {lost}");
    assert!(
        fates.keys().all(|h| handles.contains(h)),
        "a fate for a handle never given"
    );
}

#[test]
fn a_message_dropped_for_its_lifetime_is_lost() {
    let config = Config {
        channels: channels_with(&[with_feedback(ChannelKind::UnreliableSequenced, Some(MS))]),
        ..Config::default()
    };
    let link = LinkSpec::plain(10 * MS, 0.0);
    let mut p = Pair::connected(31, config, link, link);
    let first = p.client.send_on(ChannelId(3), &msg(3, 0, 100)).unwrap();
    // Not polled for 5 ms: it outlives its 1 ms lifetime before a packet.
    // (The connection's clock is the latest `now` it was given.)
    p.now += 5 * MS;
    p.client.handle_timeout(p.now);
    let second = p.client.send_on(ChannelId(3), &msg(3, 1, 100)).unwrap();
    p.run_for(200 * MS);
    let f = fates(p.client_events.iter().map(|(_, e)| e));
    assert_eq!(f.get(&first), Some(&vec![false]));
    assert_eq!(f.get(&second), Some(&vec![true]));
    assert_eq!(p.client.stats().channels[3].dropped_lifetime, 1);
    let got: Vec<u32> = nums(&p.server_events).into_iter().map(|(_, n)| n).collect();
    assert_eq!(got, [3 * CHANNEL_BASE + 1]);
}

/// One step of a random schedule: a send on a channel (with a size), or
/// time passing.
#[derive(Clone, Debug)]
enum Step {
    Send(u8, usize),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (3u8..7, prop_oneof![8 => 8usize..300, 1 => 1500usize..4000]).prop_map(|(c, n)| Step::Send(c, n)),
        1 => (1u64..40).prop_map(Step::Wait),
    ]
}

/// Channels 3 to 6: unreliable, sequenced, reliable, reliable-ordered,
/// all with feedback.
fn four_channels() -> Config {
    Config {
        channels: channels_with(&[
            with_feedback(ChannelKind::Unreliable, Some(40 * MS)),
            with_feedback(ChannelKind::UnreliableSequenced, None),
            with_feedback(ChannelKind::Reliable, None),
            with_feedback(ChannelKind::ReliableOrdered, None),
        ]),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_keep_every_channel_guarantee(
        seed in any::<u64>(),
        loss in 0.0f64..0.3,
        reorder in 0.0f64..0.3,
        steps in prop::collection::vec(step(), 1..120),
    ) {
        let conditions = LinkConditions {
            loss,
            duplicate: 0.05,
            latency: 20 * MS,
            jitter: 10 * MS,
            reorder,
        };
        let mut w = World::new(seed, four_channels(), conditions);
        let c = w.add_client();
        prop_assume!(w.connect_all(10 * SEC));
        let peer = w.clients[c].addr;
        let mut sent = [0u32; 7];
        let mut handles = Vec::new();
        for s in &steps {
            match *s {
                Step::Send(ch, len) => {
                    let unreliable = ch < 5;
                    let len = if unreliable { len.min(1000) } else { len };
                    let h = w.clients[c].conn.send_on(ChannelId(ch), &msg(ch, sent[usize::from(ch)], len));
                    let h = h.expect("room in every queue");
                    prop_assert_eq!(u64::from(sent[usize::from(ch)]), h.number);
                    handles.push(h);
                    sent[usize::from(ch)] += 1;
                }
                Step::Wait(ms) => w.run_for(Duration::from_millis(ms)),
            }
        }
        w.run_for(20 * SEC);
        prop_assert!(w.clients[c].conn.is_connected());
        let got = w.server_nums(peer);
        let on = |ch: u32| -> Vec<u32> {
            got.iter().filter(|&&n| n / CHANNEL_BASE == ch).map(|&n| n % CHANNEL_BASE).collect()
        };
        // Reliable: exactly once; ordered: exactly once, in order.
        let mut reliable = on(5);
        reliable.sort_unstable();
        prop_assert_eq!(reliable, (0..sent[5]).collect::<Vec<_>>());
        prop_assert_eq!(on(6), (0..sent[6]).collect::<Vec<_>>());
        // Sequenced: never backwards; unreliable: at most once.
        let seq = on(4);
        prop_assert!(seq.windows(2).all(|p| p[0] < p[1]), "{:?}", seq);
        let unreliable = on(3);
        let distinct: BTreeSet<u32> = unreliable.iter().copied().collect();
        prop_assert_eq!(distinct.len(), unreliable.len());
        prop_assert!(distinct.iter().all(|&n| n < sent[3]));
        // Feedback: at most one fate per handle, one for every reliable one
        // (acked), and Acked only for what arrived (unreliable channel).
        let f = fates(&w.clients[c].events);
        for h in &handles {
            let fate = f.get(h).map(Vec::as_slice).unwrap_or(&[]);
            prop_assert!(fate.len() <= 1, "{:?}: {:?}", h, fate);
            if h.channel.0 >= 5 {
                prop_assert_eq!(fate, &[true][..], "{:?}", h);
            }
            if h.channel.0 == 3 && fate == [true] {
                prop_assert!(distinct.contains(&(h.number as u32)), "{:?} acked, not delivered", h);
            }
        }
    }
}
