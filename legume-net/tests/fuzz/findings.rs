//! Bugs the targets found, kept as regression tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use legume_core::{DecodeError, Message};
use legume_net::sim::{LinkConditions, Rng};
use legume_net::{Config, Connection, Delivery, ServerEndpoint};

use crate::checks::accounted;
use crate::datagrams::Pair;
use crate::decode::{fuzz_factory, Blob, Tree};
use crate::forge::CLIENT;
use crate::heap::live_bytes;
use crate::runner::env_u64;
use crate::util::wire::*;
use crate::util::*;
use crate::{MS, SEC};

/// A cookie is valid up to and including `challenge_lifetime` after it was
/// issued (`issued_at <= now_ms && now_ms - issued_at <= lifetime`), but
/// the completed handshake that refuses its replay is forgotten at that
/// very millisecond (`CompletedHandshakes::contains` drops entries whose
/// `issued_at + lifetime <= now_ms`). A CHALLENGE_RESPONSE replayed exactly
/// then, from the client's address, after its connection has closed, opens
/// a new connection: what `PROTOCOL.md` section 7 says an on-path attacker
/// cannot do (it can send a replay every millisecond around the 10 s mark).
/// Found by the datagram target (a replayed response after a DISCONNECT).
#[test]
fn a_replayed_response_at_the_cookie_lifetime_opens_nothing() {
    let t0 = Instant::now();
    let factory = fuzz_factory();
    let mut server =
        ServerEndpoint::with_insecure_seed(Config::default(), Arc::clone(&factory), t0, 1);
    let mut client = Connection::connect(Config::default(), factory, t0, 99);
    let addr = SocketAddr::from(([10, 1, 0, 1], 5000));
    let mut buf = [0u8; 2048];
    let mut response = Vec::new();
    for _ in 0..4 {
        while let Some(n) = client.poll_transmit(t0, &mut buf) {
            if buf[3] == CHALLENGE_RESPONSE {
                response = buf[..n].to_vec();
            }
            server.handle_datagram(t0, addr, &buf[..n]);
        }
        while let Some((_, n)) = server.poll_transmit(t0, &mut buf) {
            client.handle_datagram(t0, &buf[..n]);
        }
    }
    assert!(client.is_connected() && response.len() == 300);
    server.disconnect(addr, "bye");
    while server.poll_transmit(t0, &mut buf).is_some() {}
    assert_eq!(server.peer_count(), 0);
    // The challenge was issued at t0: its cookie is valid until t0 + 10 s inclusive.
    let lifetime = Config::default().server.challenge_lifetime;
    for at in [lifetime - MS, lifetime] {
        server.handle_datagram(t0 + at, addr, &response);
        assert_eq!(
            server.peer_count(),
            0,
            "the response replayed {at:?} after its challenge opened a connection"
        );
    }
    assert_eq!(server.stats().replayed, 2);
}

/// A frame whose message id is outside the receive window is dropped and
/// counted in `dropped_invalid`, but the packet carrying it is valid (its
/// other frames are delivered, it is acked) and counted in `in_packets`
/// too: one datagram moves `in_packets + dropped_invalid +
/// dropped_duplicate` by two, or by 1 + n for n such frames, so the
/// counters no longer account for datagrams one to one (`dropped_invalid`
/// is documented as datagrams dropped). Found by the datagram target.
#[test]
fn out_of_window_frames_count_as_datagrams() {
    let mut w = World::new(41, Config::default(), LinkConditions::perfect());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let session = w.clients[c].conn.session();
    let mut d = vec![b'L', b'G', 2, DATA];
    d.extend(session.to_be_bytes());
    d.extend(500u16.to_be_bytes()); // a sequence number not seen yet
    d.extend(u16::MAX.to_be_bytes()); // acks nothing
    d.extend(0u32.to_be_bytes());
    d.extend(0u16.to_be_bytes());
    d.push(PING);
    // RELIABLE, message id 2000: past the 1024-id window (the next id is 0).
    d.extend([RELIABLE_MSG, 0x07, 0xD0, 1, 20]);
    let before = w.clients[c].conn.stats();
    let now = w.now;
    w.clients[c].conn.handle_datagram(now, &d);
    let after = w.clients[c].conn.stats();
    assert_eq!(after.in_packets, before.in_packets + 1, "a valid packet");
    assert_eq!(
        accounted(&after),
        accounted(&before) + 1,
        "one datagram: in_packets {} → {}, dropped_invalid {} → {}",
        before.in_packets,
        after.in_packets,
        before.dropped_invalid,
        after.dropped_invalid
    );
}

/// A message whose bytes are given verbatim, under `Tree`'s type id: what a
/// hostile peer can send.
#[derive(Debug)]
struct Raw(Vec<u8>);

impl legume_core::Encode for Raw {
    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, w: &mut legume_core::Writer<'_>) -> Result<(), legume_core::EncodeError> {
        w.put_slice(&self.0)
    }
}

impl legume_core::Decode for Raw {
    const MIN_LEN: usize = 0;

    fn decode(r: &mut legume_core::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Raw(r.take(r.remaining())?.to_vec()))
    }
}

impl Message for Raw {
    const TYPE_ID: u8 = Tree::TYPE_ID;
    const NAME: &'static str = "Raw";
}

/// Levels of nesting in [`deep_nesting_child`]: 400 KB, well under the
/// default `max_message_size` of 1 MiB.
const DEPTH: usize = 200_000;

/// Decoding recurses once per level of a recursive field type
/// (`Node::Branch(Vec<Node>)`, two bytes a level) with no depth limit, so
/// one deeply nested message overflows the decoding thread's stack, and a
/// stack overflow aborts the whole process (it is not a panic). Here a
/// client sends the server one reliable message of 400 KB (fragmented,
/// within every limit) and the server process dies; a client's process
/// dies the same way. Any app with a recursive message type is exposed: a
/// release build on a 2 MiB thread stack dies between 2,000 and 5,000
/// levels (a 10 KB message), a debug build near 1,200. Found while adding
/// the recursive `Node` to the message decode target, which keeps its own
/// nesting shallow (at most a few hundred levels) so as not to crash; the
/// crash here runs in a child process (`LEGUME_FUZZ_DEEP_DEPTH` sets the
/// depth).
#[test]
fn deeply_nested_messages_do_not_crash_the_receiver() {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "findings::deep_nesting_child",
            "--ignored",
            "--nocapture",
        ])
        .env("LEGUME_FUZZ_DEEP_CHILD", "1")
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "receiving {DEPTH} levels of nesting killed the receiver ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "helper of deeply_nested_messages_do_not_crash_the_receiver (runs in a child process)"]
fn deep_nesting_child() {
    if std::env::var_os("LEGUME_FUZZ_DEEP_CHILD").is_none() {
        return;
    }
    // Tree { root: Branch([Branch([... Leaf(0) ...])]), forest: [] }.
    let depth = env_u64("LEGUME_FUZZ_DEEP_DEPTH").map_or(DEPTH, |d| d as usize);
    let mut fields = Vec::with_capacity(2 * depth + 3);
    for _ in 0..depth {
        fields.extend([1, 1]);
    }
    fields.extend([0, 0, 0]);
    let mut rng = Rng::new(7);
    let mut p = Pair::new(&mut rng, Config::default());
    p.client
        .send(&Raw(fields), Delivery::Reliable)
        .expect("within max_message_size");
    for _ in 0..2_000 {
        p.pump(&mut rng, 1.0);
        p.advance(MS);
        if p.client.stats().out_buffer_bytes == 0 {
            break;
        }
    }
    assert_eq!(p.client.stats().out_buffer_bytes, 0, "delivered");
}

/// `max_reorder_bytes` bounds the *encoded* bytes of the ordered messages
/// waiting for an earlier one, but they wait decoded, and a decoded message
/// can take many times its bytes: an empty `Vec` or `String` is one byte on
/// the wire and 24 bytes of `Vec` in memory. A peer that holds back one
/// ordered message and sends the next 180, each a `Blob` of 1,300 empty
/// vectors (1.3 KB), stays within a 256 KiB limit while the receiver holds
/// about 6 MB, 23 times the limit; with the default 16 MiB limit that is
/// some 380 MB per connection. Keeping the waiting messages as bytes and
/// decoding them when released bounds the memory by the limit (each is
/// charged its length plus 64 bytes of overhead). Found
/// while checking the datagram target's heap bound.
#[test]
fn reorder_buffer_memory_is_bounded_by_its_limit() {
    let mut rng = Rng::new(3);
    let limit = 256 << 10;
    let config = Config {
        limits: legume_net::Limits {
            max_reorder_bytes: limit,
            ..legume_net::Limits::default()
        },
        ..Config::default()
    };
    let mut p = Pair::new(&mut rng, config);
    let next = p.gen.ids[CLIENT][1];
    let mut seq = p.gen.seq[CLIENT];
    let base = live_bytes();
    for k in 1..=180u16 {
        // Blob { data: [], more: [], nested: [[]; 1300], tuple: zeros }.
        let mut m = vec![Blob::TYPE_ID, 0, 0];
        put_varint(&mut m, 1300);
        m.extend([0u8; 1300 + 17]);
        let mut d = vec![b'L', b'G', 2, DATA];
        d.extend(p.gen.session.to_be_bytes());
        seq = seq.wrapping_add(1);
        d.extend(seq.to_be_bytes());
        d.extend(u16::MAX.to_be_bytes()); // acks nothing
        d.extend([0; 6]);
        // ORDERED, one past the id the receiver waits for.
        d.push(ORDERED_MSG);
        d.extend(next.wrapping_add(k).to_be_bytes());
        put_varint(&mut d, m.len() as u32);
        d.extend(m);
        let (now, peer) = (p.now, p.peer);
        p.server.handle_datagram(now, peer, &d);
    }
    let conn = p.server.peer(p.peer).expect("the peer");
    assert!(conn.is_connected(), "within the limit");
    assert_eq!(conn.stats().reorder_queue, 180);
    let held = live_bytes() - base;
    assert!(
        held <= 2 * limit as i64,
        "180 messages of 1,322 bytes waiting ({} KiB counted against a {} KiB limit) hold {} KiB",
        180 * (1322 + 64) / 1024,
        limit / 1024,
        held / 1024
    );
}
