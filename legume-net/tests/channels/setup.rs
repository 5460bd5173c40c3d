//! What a channel list does before any message flows: the handshake
//! refuses a mismatch with a reason naming it, legume v4 mode refuses what
//! it cannot carry, a bad list or an unknown channel is a typed error, and
//! the `Delivery` sends keep working on the default channels.

use std::time::Instant;

use legume_net::{
    ChannelConfigError, ChannelId, ChannelKind, Config, Connection, Delivery, DisconnectReason,
    Event, Protocol, SendError,
};

use crate::link::{LinkSpec, Pair, MS, SEC};
use crate::util::factory;
use crate::{ch, channels_with, msg, nums};

fn clean() -> LinkSpec {
    LinkSpec::plain(10 * MS, 0.0)
}

#[test]
fn a_channel_list_mismatch_is_refused_with_the_difference_named() {
    let server = Config {
        channels: channels_with(&[ch(ChannelKind::UnreliableSequenced)]),
        ..Config::default()
    };
    let client = Config {
        channels: channels_with(&[ch(ChannelKind::Reliable), ch(ChannelKind::Reliable)]),
        ..Config::default()
    };
    let mut p = Pair::new(1, client, server, clean(), clean());
    p.run_for(SEC);
    let reason = p.client_events.iter().find_map(|(_, e)| match e {
        Event::Rejected { reason } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some(
            "channel mismatch: channel 3 is unreliable-sequenced on server, reliable on client; \
             channel 4 missing on server"
        )
    );
    assert_eq!(p.server.peer_count(), 0);
}

#[test]
fn only_the_kinds_must_agree() {
    // Priorities, weights, limits, lifetimes and feedback are each end's
    // own sending policy.
    let mut mine = ch(ChannelKind::UnreliableSequenced);
    mine.weight = 7;
    mine.feedback = true;
    mine.lifetime = Some(50 * MS);
    let client = Config {
        channels: channels_with(&[mine]),
        ..Config::default()
    };
    let server = Config {
        channels: channels_with(&[ch(ChannelKind::UnreliableSequenced)]),
        ..Config::default()
    };
    let p = Pair::connected_with(2, client, server, clean(), clean());
    assert!(p.server.peer(p.peer).is_some());
}

#[test]
fn delivery_sends_use_the_default_channels_and_send_on_the_rest() {
    let config = Config {
        channels: channels_with(&[ch(ChannelKind::ReliableOrdered)]),
        ..Config::default()
    };
    let mut p = Pair::connected(3, config, clean(), clean());
    p.client.send(&msg(0, 0, 10), Delivery::Unreliable).unwrap();
    p.client.send(&msg(1, 0, 10), Delivery::Reliable).unwrap();
    p.client
        .send(&msg(2, 0, 10), Delivery::ReliableOrdered)
        .unwrap();
    let h = p.client.send_on(ChannelId(3), &msg(3, 0, 10)).unwrap();
    assert_eq!((h.channel, h.number), (ChannelId(3), 0));
    let h = p
        .client
        .send_on(ChannelId::ORDERED, &msg(2, 1, 10))
        .unwrap();
    assert_eq!(
        (h.channel, h.number),
        (ChannelId(2), 1),
        "numbers count per channel"
    );
    assert_eq!(
        p.client.send_on(ChannelId(4), &msg(4, 0, 10)),
        Err(SendError::UnknownChannel {
            channel: 4,
            count: 4
        })
    );
    p.run_for(200 * MS);
    let got: Vec<u32> = nums(&p.server_events).into_iter().map(|(_, n)| n).collect();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1_000_000, 2_000_000, 2_000_001, 3_000_000]);
    let stats = p.server.peer(p.peer).unwrap().stats();
    let delivered: Vec<u64> = stats.channels.iter().map(|c| c.delivered).collect();
    assert_eq!(delivered, [1, 1, 2, 1]);
    let sent: Vec<u64> = p.client.stats().channels.iter().map(|c| c.sent).collect();
    assert_eq!(sent, [1, 1, 2, 1]);
}

#[test]
fn a_list_without_a_kind_refuses_its_delivery() {
    let config = Config {
        channels: vec![ch(ChannelKind::ReliableOrdered)],
        ..Config::default()
    };
    let mut p = Pair::connected(4, config, clean(), clean());
    assert_eq!(
        p.client.send(&msg(0, 0, 10), Delivery::Unreliable),
        Err(SendError::NoChannel(Delivery::Unreliable))
    );
    p.client
        .send(&msg(0, 0, 10), Delivery::ReliableOrdered)
        .unwrap();
    p.run_for(100 * MS);
    assert_eq!(nums(&p.server_events).len(), 1);
}

#[test]
fn an_invalid_list_closes_the_connection_at_once() {
    let now = Instant::now();
    let bad = Config {
        channels: Vec::new(),
        ..Config::default()
    };
    assert_eq!(bad.validate(), Err(ChannelConfigError::Empty));
    let mut c = Connection::connect(bad, factory(), now, 1);
    assert!(matches!(
        c.poll_event(),
        Some(Event::Disconnected(DisconnectReason::InvalidConfig(
            ChannelConfigError::Empty
        )))
    ));
    assert!(c.is_closed());
    assert_eq!(
        c.send(&msg(0, 0, 10), Delivery::Reliable),
        Err(SendError::NotConnected)
    );
}

#[test]
fn legume_v4_mode_carries_only_the_default_channels() {
    let now = Instant::now();
    let v4 = Config {
        protocol: Protocol::LegumeV4,
        channels: channels_with(&[ch(ChannelKind::Reliable)]),
        ..Config::default()
    };
    let mut c = Connection::connect(v4, factory(), now, 1);
    assert!(matches!(
        c.poll_event(),
        Some(Event::Disconnected(DisconnectReason::InvalidConfig(
            ChannelConfigError::NotInLegumeV4(3)
        )))
    ));
    // With the default list, send_on works on channels 0 to 2 and refuses
    // the rest.
    let v4 = Config {
        protocol: Protocol::LegumeV4,
        ..Config::default()
    };
    let mut c = Connection::connect(v4, factory(), now, 1);
    assert!(c.poll_event().is_none());
    let h = c.send_on(ChannelId::RELIABLE, &msg(1, 0, 10)).unwrap();
    assert_eq!((h.channel, h.number), (ChannelId(1), 0));
    assert_eq!(
        c.send_on(ChannelId(3), &msg(3, 0, 10)),
        Err(SendError::UnknownChannel {
            channel: 3,
            count: 3
        })
    );
}
