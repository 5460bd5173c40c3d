//! Peer identity on a server: every connection has a stable `ClientId`
//! (the token's client id in the secure mode, assigned otherwise) that
//! events carry and every per-peer method takes; the token's user data and
//! the app's own per-peer value live with the peer; broadcasts encode once
//! and say who could not take them. Simulated clock and network.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use legume_core::schema::SchemaContext;
use legume_core::{Decode, DecodeError, Encode, EncodeError, Reader, WireSchema, WireType, Writer};
use legume_derive::Message;
use legume_net::sim::LinkConditions;
use legume_net::{ClientId, Config, Delivery, Event, Limits, SendError};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn link() -> LinkConditions {
    LinkConditions::perfect().with_latency(10 * MS)
}

/// The `ClientId` the server reported in the `Connected` event of the
/// client at `addr`.
fn connected_id(w: &World, addr: std::net::SocketAddr) -> ClientId {
    w.server_events
        .iter()
        .find(|e| e.peer == addr && matches!(e.event, Event::Connected))
        .map(|e| e.client)
        .expect("a Connected event")
}

#[test]
fn plain_peers_get_ids_in_order_and_events_carry_them() {
    let mut w = World::new(1, Config::default(), link());
    let a = w.add_client();
    let b = w.add_client();
    assert!(w.connect_all(5 * SEC));
    let (addr_a, addr_b) = (w.clients[a].addr, w.clients[b].addr);
    let (id_a, id_b) = (connected_id(&w, addr_a), connected_id(&w, addr_b));
    let mut ids = [id_a.get(), id_b.get()];
    ids.sort_unstable();
    assert_eq!(ids, [1, 2], "assigned 1, 2 in order of connection");
    assert_eq!(w.server.client_id(addr_a), Some(id_a));
    assert_eq!(w.server.peer_addr(id_b), Some(addr_b));
    assert_eq!(w.server.clients().count(), 2);
    assert_eq!(w.server.user_data(id_a), None, "plain peers have no token");

    // Sending by id reaches that client, and the reply's event names it.
    w.server.send(id_b, &num(7), Delivery::Reliable).unwrap();
    w.clients[a].conn.send(&num(8), Delivery::Reliable).unwrap();
    w.run_for(SEC);
    assert_eq!(w.client_nums(b), [7]);
    assert!(w.client_nums(a).is_empty());
    let from_a: Vec<ClientId> = w
        .server_events
        .iter()
        .filter(|e| matches!(e.event, Event::Message(_)))
        .map(|e| e.client)
        .collect();
    assert_eq!(from_a, [id_a]);

    // Disconnecting by id ends that connection only.
    w.server.disconnect(id_a, "bye");
    w.run_for(SEC);
    assert!(w.clients[a].conn.is_closed());
    assert!(w.clients[b].conn.is_connected());
    assert_eq!(w.server.peer(id_a).map(|c| c.is_connected()), None);
    assert_eq!(
        w.server.send(id_a, &num(1), Delivery::Reliable),
        Err(SendError::NotConnected)
    );
}

#[test]
fn a_new_connection_never_reuses_an_id() {
    let mut w = World::new(2, Config::default(), link());
    let a = w.add_client();
    assert!(w.connect_all(5 * SEC));
    let first = connected_id(&w, w.clients[a].addr);
    w.clients[a].conn.disconnect("leaving");
    w.run_for(2 * SEC);
    assert_eq!(w.server.peer_count(), 0);
    let b = w.add_client();
    assert!(w.run_until(5 * SEC, |w| w.clients[b].conn.is_connected()));
    let second = connected_id(&w, w.clients[b].addr);
    assert_ne!(first, second);
    assert!(second > first);
}

#[test]
fn secure_peers_are_known_by_their_token_and_keep_its_user_data() {
    let mut w = World::new(3, Config::default(), link());
    w.require_tokens(backend_key());
    let c = w.add_client_with_token(&token_for(4242));
    assert!(w.connect_all(5 * SEC));
    let addr = w.clients[c].addr;
    let id = connected_id(&w, addr);
    assert_eq!(id, ClientId::new(4242));
    assert_eq!(w.server.peer_addr(id), Some(addr));
    w.run_for(3 * SEC);
    let data = w
        .server
        .user_data(id)
        .expect("kept for the connection's life");
    assert_eq!(data[..8], 4242u64.to_be_bytes());

    // A second connection with the same client id (another token, another
    // address) is refused while the first is connected.
    let twin = w.add_client_with_token(&token_for(4242));
    w.run_for(3 * SEC);
    assert!(!w.clients[twin].conn.is_connected());
    let refused = w.clients[twin].events.iter().any(|e| {
        matches!(e, Event::Rejected { reason } if reason.contains("client 4242 is already connected"))
    });
    assert!(refused, "{:?}", w.clients[twin].events);
    assert!(w.clients[c].conn.is_connected(), "the first one stays");
}

#[test]
fn peer_data_lives_with_the_peer_and_comes_back_with_its_disconnect() {
    let mut w = World::new(4, Config::default(), link());
    let a = w.add_client();
    assert!(w.connect_all(5 * SEC));
    let id = connected_id(&w, w.clients[a].addr);
    assert!(w.server.set_peer_data(id, String::from("ann")));
    assert!(
        !w.server.set_peer_data(ClientId::new(999), 1u8),
        "no such peer"
    );
    assert_eq!(
        w.server.peer_data::<String>(id).map(String::as_str),
        Some("ann")
    );
    assert_eq!(w.server.peer_data::<u32>(id), None, "another type");
    w.server
        .peer_data_mut::<String>(id)
        .expect("attached")
        .push_str(" the brave");

    // The app polls the events of the client's last message and of its
    // disconnect only after the peer has left the table (the UDP driver
    // sends, and so removes drained peers, before the app polls): the name
    // is still there while it handles them.
    w.collect_server_events = false;
    w.clients[a].conn.send(&num(5), Delivery::Reliable).unwrap();
    w.run_for(200 * MS);
    w.clients[a].conn.disconnect("gone");
    w.run_for(2 * SEC);
    assert_eq!(w.server.peer_count(), 0);
    let mut saw_message = false;
    let mut handed_back = None;
    while let Some(e) = w.server.poll_event() {
        assert_eq!(e.client, id);
        match e.event {
            Event::Message(_) => {
                let name = w.server.peer_data::<String>(id).cloned();
                assert_eq!(name.as_deref(), Some("ann the brave"), "while handling");
                saw_message = true;
            }
            Event::Disconnected(_) => handed_back = e.data,
            _ => {}
        }
    }
    assert!(saw_message);
    let data = handed_back.expect("handed back with the Disconnected event");
    assert_eq!(*data.downcast::<String>().unwrap(), "ann the brave");
    assert_eq!(w.server.peer_data::<String>(id), None, "forgotten after");
}

/// How many times [`Counted`] was encoded.
static ENCODES: AtomicUsize = AtomicUsize::new(0);

/// A field that counts its encodings.
#[derive(Debug, Default)]
struct Counted(u32);

impl Encode for Counted {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        ENCODES.fetch_add(1, Ordering::Relaxed);
        self.0.encode(w)
    }
}

impl Decode for Counted {
    const MIN_LEN: usize = 4;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        u32::decode(r).map(Counted)
    }
}

impl WireSchema for Counted {
    fn wire_type(cx: &mut SchemaContext) -> WireType {
        u32::wire_type(cx)
    }
}

#[derive(Debug, Message)]
#[legume(crate = "legume_core")]
#[message(id = 40)]
struct Announcement {
    counted: Counted,
}

#[test]
fn a_broadcast_encodes_once_and_names_who_could_not_take_it() {
    // A small send queue: one client that never acks fills it.
    let config = Config {
        limits: Limits {
            max_send_queue_bytes: 2_000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut w = World::new(5, config, link());
    for _ in 0..4 {
        w.add_client();
    }
    assert!(w.connect_all(5 * SEC));
    let ids: Vec<ClientId> = (0..4)
        .map(|i| connected_id(&w, w.clients[i].addr))
        .collect();

    let before = ENCODES.load(Ordering::Relaxed);
    let sent = w
        .server
        .send_to_all_except(
            ids[0],
            &Announcement {
                counted: Counted(1),
            },
            Delivery::Reliable,
        )
        .unwrap();
    assert_eq!(ENCODES.load(Ordering::Relaxed) - before, 1, "encoded once");
    assert_eq!((sent.sent, sent.refused.len()), (3, 0));

    // Fill one peer's queue: it is named, the others still take it.
    let full = ids[2];
    while w.server.send(full, &num(0), Delivery::Reliable).is_ok() {}
    let sent = w.server.send_to_all(&num(9), Delivery::Reliable).unwrap();
    assert_eq!(sent.sent, 3);
    assert_eq!(sent.refused.len(), 1);
    assert_eq!(sent.refused[0].0, full);
    assert!(matches!(sent.refused[0].1, SendError::QueueFull { .. }));
    w.run_for(2 * SEC);
    for i in [0, 1, 3] {
        assert!(w.client_nums(i).contains(&9), "client {i}");
    }
}
