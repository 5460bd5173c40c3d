//! Sequence numbers that no honest sender uses: DATA packets forged with the
//! live session id (what an on-path observer can send in the plain mode)
//! injected into a 10,000-message exchange, and a sender whose packets all
//! vanish for longer than the peer's sequence window reaches
//! (`docs/PROTOCOL.md` 4 "Sequence window", 5 "Sequence span", 7).
//!
//! Deterministic: the simulated network and clock.

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use legume_net::sim::LinkConditions;
use legume_net::{Config, Delivery, DisconnectReason, Event, Stats};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// The receiver's sequence window (`docs/PROTOCOL.md` 4).
const WINDOW: u16 = 4096;
/// Messages each way.
const MESSAGES: u32 = 10_000;
/// Padding per message: about ten messages to a packet, so the exchange
/// takes about a thousand packets each way and many round trips.
const PAD: usize = 120;
const PING_FRAME: u8 = 0x01;

fn link() -> LinkConditions {
    LinkConditions::perfect()
        .with_loss(0.02)
        .with_duplicate(0.01)
        .with_latency(20 * MS)
        .with_jitter(5 * MS)
        .with_reorder(0.02)
}

/// The sequence number of a DATA datagram.
fn data_seq(d: &[u8]) -> Option<u16> {
    (d.len() >= 18 && d[..4] == [0x4C, 0x47, 0x02, 0x06]).then(|| u16::from_be_bytes([d[8], d[9]]))
}

fn newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) <= 32768
}

/// A plain-mode DATA packet: the 18-byte header, then `frames`.
fn forged_data(session: u32, seq: u16, ack: u16, ack_bits: u32, frames: &[u8]) -> Vec<u8> {
    let mut d = vec![0x4C, 0x47, 0x02, 0x06];
    d.extend(session.to_be_bytes());
    d.extend(seq.to_be_bytes());
    d.extend(ack.to_be_bytes());
    d.extend(ack_bits.to_be_bytes());
    d.extend(0u16.to_be_bytes());
    d.extend(frames);
    d
}

/// One kind of forged packet, sent to both ends of the connection.
#[derive(Clone, Copy, Debug)]
struct Forgery {
    /// How far past the newest sequence number the receiver accepted.
    ahead: u16,
    /// Its ack field: how far past the newest packet the receiver sent
    /// (0: a genuine ack; more: sequence numbers the receiver never sent).
    ack_ahead: u16,
    /// Whether it carries a PING frame (so the receiver acks it).
    ping: bool,
}

impl Forgery {
    /// Whether the receiver's window drops it as too far ahead (counted in
    /// `dropped_invalid`). Past 32,768 ahead a sequence number is behind by
    /// serial arithmetic, and dropped as too old (`dropped_duplicate`).
    fn too_far_ahead(&self) -> bool {
        self.ahead > WINDOW && self.ahead <= 32768
    }

    /// Whether serial arithmetic puts it behind the newest packet.
    fn behind(&self) -> bool {
        self.ahead > 32768
    }
}

/// The newest DATA sequence number [to the server, to the client] that
/// arrived, from the tap; the tap is emptied.
fn note_arrivals(w: &mut World, newest: &mut [Option<u16>; 2]) {
    let Some(tap) = w.tap.as_mut() else { return };
    for t in tap.drain(..) {
        let Some(seq) = data_seq(&t.bytes).filter(|_| t.delivered) else {
            continue;
        };
        let dir = usize::from(t.to != server_addr());
        if newest[dir].is_none_or(|n| newer(seq, n)) {
            newest[dir] = Some(seq);
        }
    }
}

/// Dropped-packet counters that a forged packet may land in.
fn dropped(s: &Stats) -> u64 {
    s.dropped_invalid + s.dropped_unauthenticated
}

/// Queues 10,000 ordered messages each way and, each time another tenth of
/// them has arrived, injects the next forgery into both ends (claiming to
/// come from the other end). Checks exactly-once in-order delivery, no
/// disconnect, and that each forgery outside the window was counted.
fn exchange_with_forgeries(seed: u64, secure: bool, forgeries: &[Forgery]) {
    let mut w = World::new(seed, Config::default(), link());
    let c = if secure {
        w.require_tokens(backend_key());
        w.add_client_with_token(&token_for(7))
    } else {
        w.add_client()
    };
    assert!(w.connect_all(10 * SEC), "handshake");
    let peer: SocketAddr = w.clients[c].addr;
    let session = w.clients[c].conn.session();
    for i in 0..MESSAGES {
        let m = padded(i, PAD);
        w.clients[c]
            .conn
            .send(&m, Delivery::ReliableOrdered)
            .unwrap();
        w.server.send(peer, &m, Delivery::ReliableOrdered).unwrap();
    }
    w.tap = Some(Vec::new());
    let mut newest: [Option<u16>; 2] = [None, None];
    let (mut to_server, mut to_client) = (Vec::<u32>::new(), Vec::<u32>::new());
    let mut pending = forgeries.iter().copied().enumerate().peekable();
    // Sequence numbers [to the server, to the client] that forgeries the
    // window accepted have taken.
    let mut claimed: [Vec<u16>; 2] = [Vec::new(), Vec::new()];
    let done = w.run_until(120 * SEC, |w| {
        note_arrivals(w, &mut newest);
        to_server.extend(w.server_nums(peer));
        to_client.extend(w.client_nums(c));
        let progress = to_server.len().min(to_client.len());
        if let Some(&(k, f)) = pending.peek() {
            let due = (k + 1) * MESSAGES as usize / (forgeries.len() + 1);
            if progress >= due {
                pending.next();
                let [Some(at_server), Some(at_client)] = newest else {
                    panic!("no DATA arrived before forgery {k}");
                };
                let frames: &[u8] = if f.ping { &[PING_FRAME] } else { &[] };
                if !f.too_far_ahead() && !f.behind() {
                    claimed[0].push(at_server.wrapping_add(f.ahead));
                    claimed[1].push(at_client.wrapping_add(f.ahead));
                }
                let now = w.now;
                let to_srv = forged_data(
                    session,
                    at_server.wrapping_add(f.ahead),
                    at_client.wrapping_add(f.ack_ahead),
                    u32::MAX,
                    frames,
                );
                w.server.handle_datagram(now, peer, &to_srv);
                let to_cli = forged_data(
                    session,
                    at_client.wrapping_add(f.ahead),
                    at_server.wrapping_add(f.ack_ahead),
                    u32::MAX,
                    frames,
                );
                w.clients[c].conn.handle_datagram(now, &to_cli);
            }
        }
        let drained = |s: Option<Stats>| s.is_some_and(|s| s.out_buffer_bytes == 0);
        to_server.len() >= MESSAGES as usize
            && to_client.len() >= MESSAGES as usize
            && drained(Some(w.clients[c].conn.stats()))
            && drained(w.server.peer(peer).map(|p| p.stats()))
    });
    let client = w.clients[c].conn.stats();
    let server = w.server.peer(peer).map(|p| p.stats());
    assert!(
        done,
        "{forgeries:?}: the exchange stalled at {} / {} messages; client {:?} {:?}; server {:?}",
        to_server.len(),
        to_client.len(),
        w.clients[c].conn.state(),
        client,
        server,
    );
    assert!(pending.next().is_none(), "every forgery was injected");
    // Stray duplicates still in flight must not deliver anything twice.
    w.run_for(2 * SEC);
    to_server.extend(w.server_nums(peer));
    to_client.extend(w.client_nums(c));
    assert_exactly_once(&to_server, MESSAGES, true, "ordered to server");
    assert_exactly_once(&to_client, MESSAGES, true, "ordered to client");
    let disconnects = w.clients[c]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Disconnected(_)))
        .count();
    assert_eq!(disconnects, 0, "the client was disconnected");
    assert!(w.clients[c].conn.is_connected());
    let server = w.server.peer(peer).map(|p| p.stats()).expect("server peer");
    // Forgeries too far ahead are dropped and counted. In the secure mode
    // every forgery is dropped: outside the window unread, inside it when
    // it fails authentication (and one behind as a duplicate, uncounted here).
    let expected = forgeries
        .iter()
        .filter(|f| f.too_far_ahead() || (secure && !f.behind()))
        .count() as u64;
    for (who, s) in [("client", &client), ("server", &server)] {
        assert_eq!(
            dropped(s),
            expected,
            "{who}: forged packets counted as dropped ({forgeries:?}): {s:?}"
        );
    }
    // The honest senders never reached a sequence number that a forgery
    // inside the window claimed: that real packet would have been dropped
    // as a duplicate, which the plain mode cannot prevent (PROTOCOL.md 7).
    note_arrivals(&mut w, &mut newest);
    for (dir, claimed) in claimed.iter().enumerate() {
        let last = newest[dir].expect("DATA arrived");
        for &seq in claimed {
            assert!(newer(seq, last), "test setup: sequence {seq} was reached");
        }
    }
}

#[test]
fn a_forged_packet_5000_ahead_is_dropped_and_counted() {
    exchange_with_forgeries(
        51,
        false,
        &[Forgery {
            ahead: 5000,
            ack_ahead: 0,
            ping: false,
        }],
    );
}

#[test]
fn a_forged_packet_half_the_sequence_space_ahead_is_dropped_and_counted() {
    exchange_with_forgeries(
        52,
        false,
        &[Forgery {
            ahead: 32768,
            ack_ahead: 0,
            ping: true,
        }],
    );
}

#[test]
fn a_forged_packet_just_outside_the_window_is_dropped_and_counted() {
    exchange_with_forgeries(
        53,
        false,
        &[Forgery {
            ahead: WINDOW + 1,
            ack_ahead: 0,
            ping: true,
        }],
    );
}

/// Inside the window a forged packet is processed (the plain mode cannot
/// tell it from a real one), but its ack of packets never sent is ignored,
/// and a jump to the window's edge leaves every real packet acceptable.
#[test]
fn forged_packets_inside_the_window_stall_nothing() {
    exchange_with_forgeries(
        54,
        false,
        &[
            Forgery {
                ahead: 3000,
                ack_ahead: 5000,
                ping: true,
            },
            Forgery {
                ahead: 3001,
                ack_ahead: 32768,
                ping: false,
            },
            Forgery {
                ahead: WINDOW,
                ack_ahead: 0,
                ping: true,
            },
        ],
    );
}

#[test]
fn every_forgery_at_once_in_the_plain_mode() {
    exchange_with_forgeries(
        55,
        false,
        &[
            Forgery {
                ahead: 5000,
                ack_ahead: 0,
                ping: false,
            },
            Forgery {
                ahead: 32768,
                ack_ahead: 32768,
                ping: true,
            },
            Forgery {
                ahead: 40_000,
                ack_ahead: 5000,
                ping: true,
            },
            Forgery {
                ahead: WINDOW + 1,
                ack_ahead: 0,
                ping: true,
            },
            Forgery {
                ahead: WINDOW,
                ack_ahead: 5000,
                ping: true,
            },
        ],
    );
}

#[test]
fn forged_packets_in_the_secure_mode_are_dropped_and_counted() {
    exchange_with_forgeries(
        56,
        true,
        &[
            Forgery {
                ahead: 5000,
                ack_ahead: 0,
                ping: false,
            },
            Forgery {
                ahead: 32768,
                ack_ahead: 0,
                ping: true,
            },
            Forgery {
                ahead: WINDOW,
                ack_ahead: 5000,
                ping: true,
            },
        ],
    );
}

/// A one-way outage long enough for a sender to use up the peer's whole
/// sequence window (possible only with an idle timeout of many minutes):
/// the sender closes with `TimedOut` rather than send packets the peer's
/// window would refuse, and never sends one past the window.
#[test]
fn a_sender_cut_off_for_a_whole_window_closes_instead_of_leaving_it() {
    let config = Config {
        timeout: 3600 * SEC,
        ..Config::default()
    };
    let conditions = LinkConditions::perfect().with_latency(10 * MS);
    let mut w = World::new(57, config, conditions);
    let c = w.add_client();
    assert!(w.connect_all(SEC), "handshake");
    let peer = w.clients[c].addr;
    w.tap = Some(Vec::new());
    for i in 0..100 {
        w.clients[c]
            .conn
            .send(&num(i), Delivery::ReliableOrdered)
            .unwrap();
        w.server.send(peer, &num(i), Delivery::Reliable).unwrap();
    }
    w.run_for(2 * SEC);
    assert_eq!(w.server_nums(peer).len(), 100);

    // From now on nothing from the client arrives; the server's packets
    // (probes, pings) still reach the client, which acks each of them.
    w.net
        .set_conditions(peer, server_addr(), conditions.with_loss(1.0));
    for i in 100..200 {
        w.clients[c]
            .conn
            .send(&num(i), Delivery::ReliableOrdered)
            .unwrap();
        w.server.send(peer, &num(i), Delivery::Reliable).unwrap();
    }
    let cut_at = w.elapsed();
    let closed = w.run_until(3000 * SEC, |w| w.clients[c].conn.is_closed());
    println!(
        "cut off for {:.0} s simulated: closed after {} packets sent",
        (w.elapsed() - cut_at).as_secs_f64(),
        w.clients[c].conn.stats().out_packets
    );
    assert!(
        closed,
        "the client still sends after {:?}: {:?}",
        w.elapsed(),
        w.clients[c].conn.stats()
    );
    assert!(
        w.clients[c]
            .events
            .iter()
            .any(|e| matches!(e, Event::Disconnected(DisconnectReason::TimedOut))),
        "{:?}",
        w.clients[c].events
    );
    let tap = w.tap.take().unwrap_or_default();
    let newest = |delivered: bool| {
        tap.iter()
            .filter(|t| t.delivered == delivered && t.from == peer)
            .filter_map(|t| data_seq(&t.bytes))
            .reduce(|a, b| if newer(b, a) { b } else { a })
    };
    let newest_sent = newest(false).expect("the client sent DATA");
    let at_server = newest(true).expect("DATA reached the server");
    assert_eq!(
        newest_sent.wrapping_sub(at_server),
        WINDOW,
        "the client used the server's whole window and not one packet more"
    );
}

/// legume v4 has no session id and no packet sequence: a message forged
/// from the peer's address with a message id far ahead moves the receiver's
/// window of seen ids, which forgets the ids it passes, so the real
/// messages behind it are still new (`docs/LEGUME_COMPAT.md` 5). Nothing
/// stalls; this checks that it stays so.
#[test]
fn legume_v4_message_ids_far_ahead_stall_nothing() {
    let config = Config {
        protocol: legume_net::Protocol::LegumeV4,
        ..Config::default()
    };
    let mut w = World::new(58, config, link());
    let c = w.add_client();
    assert!(w.connect_all(10 * SEC), "handshake");
    let peer = w.clients[c].addr;
    let n = 2000u32;
    for i in 0..n {
        w.clients[c]
            .conn
            .send(&num(i), Delivery::ReliableOrdered)
            .unwrap();
        w.server.send(peer, &num(i), Delivery::Reliable).unwrap();
    }
    w.tap = Some(Vec::new());
    // The newest message id [from the client, from the server] seen first
    // in a datagram (a datagram's first message has its lowest id).
    let mut newest_id = [0u16; 2];
    let mut injected = 0;
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let done = w.run_until(300 * SEC, |w| {
        for t in w.tap.as_mut().map(std::mem::take).unwrap_or_default() {
            if !t.delivered && t.bytes.len() >= 2 {
                let id = u16::from_be_bytes([t.bytes[0], t.bytes[1]]);
                let dir = usize::from(t.from == server_addr());
                if newer(id, newest_id[dir]) {
                    newest_id[dir] = id;
                }
            }
        }
        to_server.extend(w.server_nums(peer));
        to_client.extend(w.client_nums(c));
        let progress = to_server.len().min(to_client.len());
        // A Ping (type 9, unreliable) with a forged id, each way.
        let ping = |id: u16| {
            let id = id.to_be_bytes();
            [id[0], id[1], 0, 0, 0, 9, 0, 1]
        };
        for (k, ahead) in [5000u16, 32768, 40_000].into_iter().enumerate() {
            if injected == k && progress >= (k + 1) * n as usize / 4 {
                injected += 1;
                let now = w.now;
                let to_srv = ping(newest_id[0].wrapping_add(ahead));
                w.server.handle_datagram(now, peer, &to_srv);
                let to_cli = ping(newest_id[1].wrapping_add(ahead));
                w.clients[c].conn.handle_datagram(now, &to_cli);
            }
        }
        to_server.len() >= n as usize && to_client.len() >= n as usize
    });
    assert!(
        done && injected == 3,
        "stalled at {} / {} messages after {injected} forgeries: client {:?} {:?}",
        to_server.len(),
        to_client.len(),
        w.clients[c].conn.state(),
        w.clients[c].conn.stats()
    );
    w.run_for(2 * SEC);
    to_server.extend(w.server_nums(peer));
    to_client.extend(w.client_nums(c));
    assert_exactly_once(&to_server, n, true, "v4 ordered to server");
    assert_exactly_once(&to_client, n, false, "v4 reliable to client");
    assert!(w.clients[c].conn.is_connected());
}
