//! Client and Server over real UDP on loopback (127.0.0.1 and [::1]),
//! porting the semantics of legume 0.5's own test suite.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume::prelude::*;

#[derive(Clone, Debug, PartialEq, Message)]
#[message(id = 21)]
struct Chat {
    seq: u32,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Message)]
#[message(id = 22)]
struct Blob {
    data: Vec<u8>,
}

fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Chat>().unwrap().register::<Blob>().unwrap();
    Arc::new(f)
}

fn short_timeouts() -> Config {
    Config {
        timeout: Duration::from_millis(1500),
        connect_timeout: Duration::from_secs(3),
        ping_interval: Duration::from_millis(300),
        ..Config::default()
    }
}

/// A server and its clients, updated together, with their events collected.
struct Net {
    server: Server,
    server_events: Vec<ServerEvent>,
    clients: Vec<Client>,
    client_events: Vec<Vec<Event>>,
}

impl Net {
    fn new(bind: &str, config: Config) -> Self {
        let mut server = Server::new(factory(), config);
        server.listen(bind).expect("listen on loopback");
        Net {
            server,
            server_events: Vec::new(),
            clients: Vec::new(),
            client_events: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr().expect("bound")
    }

    fn add_client(&mut self, config: Config) -> usize {
        let mut c = Client::new(factory(), config);
        c.connect(self.addr()).expect("connect");
        self.clients.push(c);
        self.client_events.push(Vec::new());
        self.clients.len() - 1
    }

    fn pump(&mut self) {
        self.server.update();
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
        for (c, events) in self.clients.iter_mut().zip(&mut self.client_events) {
            c.update();
            while let Some(e) = c.poll_event() {
                events.push(e);
            }
        }
        std::thread::sleep(Duration::from_micros(300));
    }

    /// Pumps until `done` or `max` passes; returns whether `done` held.
    fn pump_until(&mut self, max: Duration, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        let end = Instant::now() + max;
        while Instant::now() < end {
            self.pump();
            if done(self) {
                return true;
            }
        }
        done(self)
    }

    fn pump_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.pump();
        }
    }

    fn connect_all(&mut self) {
        let ok = self.pump_until(Duration::from_secs(3), |n| {
            n.clients.iter().all(Client::connected)
        });
        assert!(ok, "clients did not connect");
    }

    fn server_chats(&mut self) -> Vec<(SocketAddr, Chat)> {
        let mut out = Vec::new();
        self.server_events.retain(|e| match &e.event {
            Event::Message(m) => match m.downcast_ref::<Chat>() {
                Some(c) => {
                    out.push((e.peer, c.clone()));
                    false
                }
                None => true,
            },
            _ => true,
        });
        out
    }

    fn client_chats(&mut self, i: usize) -> Vec<Chat> {
        let mut out = Vec::new();
        self.client_events[i].retain(|e| match e {
            Event::Message(m) => match m.downcast_ref::<Chat>() {
                Some(c) => {
                    out.push(c.clone());
                    false
                }
                None => true,
            },
            _ => true,
        });
        out
    }
}

/// Updates a client whose server is gone until it reports the timeout (or `max` passes).
fn update_until_errored(client: &mut Client, events: &mut Vec<Event>, max: Duration) {
    let start = Instant::now();
    while !client.errored() && start.elapsed() < max {
        client.update();
        while let Some(e) = client.poll_event() {
            events.push(e);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn chat(seq: u32) -> Chat {
    Chat {
        seq,
        text: format!("message {seq}"),
    }
}

#[test]
fn connect_is_accepted_over_ipv4_and_ipv6() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let mut net = Net::new(bind, Config::default());
        let c = net.add_client(Config::default());
        net.connect_all();
        assert!(matches!(net.client_events[c][0], Event::Connected));
        assert_eq!(net.clients[c].state(), State::Connected);
        assert_eq!(net.server.peer_count(), 1);
        let local = net.clients[c].local_addr().unwrap();
        assert_eq!(local.is_ipv6(), bind.starts_with('['));
        assert!(net
            .server
            .peer(net.server.peers().next().unwrap().0)
            .is_some());
    }
}

#[test]
fn rejection_by_the_hook_reaches_the_client() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    net.server
        .set_connect_hook(|_| Decision::Reject("invite only".into()));
    let c = net.add_client(Config::default());
    assert!(net.pump_until(Duration::from_secs(3), |n| n.clients[c].disconnected()));
    assert!(matches!(
        &net.client_events[c][0],
        Event::Rejected { reason } if reason == "invite only"
    ));
    assert_eq!(net.server.peer_count(), 0);
}

#[test]
fn accept_new_connections_off_rejects() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    net.server.set_accept_new_connections(false);
    assert!(!net.server.accept_new_connections());
    let c = net.add_client(Config::default());
    assert!(net.pump_until(Duration::from_secs(3), |n| n.clients[c].disconnected()));
    assert!(matches!(net.client_events[c][0], Event::Rejected { .. }));
}

#[test]
fn disconnects_are_seen_on_the_other_side() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let a = net.add_client(Config::default());
    let b = net.add_client(Config::default());
    net.connect_all();
    // Client disconnect, seen by the server.
    let a_addr = net.clients[a].local_addr().unwrap();
    net.clients[a].disconnect_with("gotta go");
    assert!(net.pump_until(Duration::from_secs(2), |n| n.server.peer_count() == 1));
    assert!(net.server_events.iter().any(|e| e.peer.port() == a_addr.port()
        && matches!(&e.event, Event::Disconnected(DisconnectReason::Remote(r)) if r == "gotta go")));
    // Server disconnect, seen by the client.
    net.server.disconnect_all("closing time");
    assert!(net.pump_until(Duration::from_secs(2), |n| n.clients[b].disconnected()));
    assert!(net.client_events[b].iter().any(|e| matches!(
        e,
        Event::Disconnected(DisconnectReason::Remote(r)) if r == "closing time"
    )));
}

#[test]
fn a_vanished_server_is_a_timeout_error() {
    let mut net = Net::new("127.0.0.1:0", short_timeouts());
    let c = net.add_client(short_timeouts());
    net.connect_all();
    let Net {
        server,
        mut clients,
        mut client_events,
        ..
    } = net;
    drop(server); // its socket closes: datagrams now meet ICMP port unreachable
    let start = Instant::now();
    update_until_errored(
        &mut clients[c],
        &mut client_events[c],
        Duration::from_secs(5),
    );
    assert!(
        clients[c].errored(),
        "client state {:?}",
        clients[c].state()
    );
    assert!(client_events[c]
        .iter()
        .any(|e| matches!(e, Event::Disconnected(DisconnectReason::TimedOut))));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "timed out after {waited:?}"
    );
}

#[test]
fn keep_alive_holds_an_idle_connection_past_the_timeout() {
    let mut net = Net::new("127.0.0.1:0", short_timeouts());
    let c = net.add_client(short_timeouts());
    net.connect_all();
    net.pump_for(Duration::from_secs(3));
    assert!(net.clients[c].connected());
    assert_eq!(net.server.peer_count(), 1);
    assert!(net.clients[c].stats().keepalive_count >= 4);
}

#[test]
fn mixed_messages_both_ways_and_metrics_move() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let c = net.add_client(Config::default());
    net.connect_all();
    let before = net.clients[c].stats();
    let peer = net.server.peers().next().unwrap().0;
    for i in 0..300 {
        let delivery = [
            Delivery::Unreliable,
            Delivery::Reliable,
            Delivery::ReliableOrdered,
        ][i % 3];
        net.clients[c].send(&chat(i as u32), delivery).unwrap();
        net.server
            .send(peer, &chat(1000 + i as u32), delivery)
            .unwrap();
    }
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    assert!(net.pump_until(Duration::from_secs(3), |n| {
        to_server.extend(n.server_chats().into_iter().map(|(_, m)| m.seq));
        to_client.extend(n.client_chats(c).into_iter().map(|m| m.seq));
        to_server.len() >= 200 && to_client.len() >= 200 && n.clients[c].stats().pending_acks == 0
    }));
    net.pump_for(Duration::from_millis(100));
    to_server.extend(net.server_chats().into_iter().map(|(_, m)| m.seq));
    // Every reliable and ordered message arrived once; ordered ones in order.
    let reliable: Vec<u32> = to_server.iter().copied().filter(|s| s % 3 != 0).collect();
    assert_eq!(reliable.len(), 200);
    let ordered: Vec<u32> = to_server.iter().copied().filter(|s| s % 3 == 2).collect();
    assert!(ordered.windows(2).all(|w| w[0] < w[1]));
    let after = net.clients[c].stats();
    assert!(after.out_messages >= before.out_messages + 300);
    assert!(after.in_messages >= before.in_messages + 200);
    assert!(after.out_bytes > before.out_bytes && after.in_bytes > before.in_bytes);
    assert!(after.out_packets > before.out_packets && after.in_packets > before.in_packets);
    assert!(net.clients[c].latency() > 0.0);
}

#[test]
fn non_ascii_text_arrives_intact() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let c = net.add_client(Config::default());
    net.connect_all();
    let text = "héllo wörld — ünïcødé 🎮 игра 游戏";
    let m = Chat {
        seq: 1,
        text: text.into(),
    };
    net.clients[c].send_reliable_message(&m).unwrap();
    let mut got = Vec::new();
    assert!(net.pump_until(Duration::from_secs(2), |n| {
        got.extend(n.server_chats());
        !got.is_empty()
    }));
    assert_eq!(got[0].1.text, text);
}

#[test]
fn many_clients_at_once() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    for _ in 0..24 {
        net.add_client(Config::default());
    }
    net.connect_all();
    assert_eq!(net.server.peer_count(), 24);
    for c in 0..24 {
        for i in 0..50 {
            net.clients[c].send_ordered_message(&chat(i)).unwrap();
        }
    }
    let mut got = Vec::new();
    assert!(net.pump_until(Duration::from_secs(5), |n| {
        got.extend(n.server_chats());
        got.len() >= 24 * 50
    }));
    for (peer, _) in net.server.peers() {
        let seqs: Vec<u32> = got
            .iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, m)| m.seq)
            .collect();
        assert_eq!(seqs, (0..50).collect::<Vec<_>>(), "peer {peer}");
    }
    let sent = net
        .server
        .send_to_all(&chat(7), Delivery::Reliable)
        .expect("encodes");
    assert_eq!((sent.sent, sent.refused.len()), (24, 0));
}

#[test]
fn a_message_larger_than_the_mtu_arrives_whole() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let c = net.add_client(Config::default());
    net.connect_all();
    let blob = Blob {
        data: (0..200_000u32).map(|i| (i % 251) as u8).collect(),
    };
    net.clients[c].send_reliable_message(&blob).unwrap();
    let mut got = None;
    assert!(net.pump_until(Duration::from_secs(5), |n| {
        for e in n.server_events.drain(..) {
            if let Event::Message(m) = e.event {
                if let Some(b) = m.downcast_ref::<Blob>() {
                    got = Some(b.clone());
                }
            }
        }
        got.is_some()
    }));
    assert_eq!(got.as_ref(), Some(&blob));
}

/// Bursts both ways with UDP offload (Linux GSO and GRO) on either side,
/// both, or neither: the datagrams are the same, so every combination
/// delivers everything once and in order, including a message fragmented
/// into 143 datagrams sent as one burst.
#[test]
fn offload_on_either_side_delivers_the_same() {
    for (bind, server_offload, client_offload) in [
        ("127.0.0.1:0", true, true),
        ("127.0.0.1:0", true, false),
        ("127.0.0.1:0", false, true),
        ("127.0.0.1:0", false, false),
        ("[::1]:0", true, true),
    ] {
        let config = |offload| Config {
            driver: legume::net::DriverConfig {
                udp_offload: offload,
                ..legume::net::DriverConfig::default()
            },
            ..Config::default()
        };
        let mut net = Net::new(bind, config(server_offload));
        let c = net.add_client(config(client_offload));
        net.connect_all();
        let peer = net.clients[c].local_addr().unwrap();
        let (peer, _) = net
            .server
            .peers()
            .find(|(p, _)| p.port() == peer.port())
            .expect("the client is a peer");
        let blob = Blob {
            data: (0..200_000u32).map(|i| (i % 251) as u8).collect(),
        };
        net.clients[c].send_reliable_message(&blob).unwrap();
        for i in 0..3_000 {
            net.clients[c].send_ordered_message(&chat(i)).unwrap();
            net.server
                .send(peer, &chat(i), Delivery::ReliableOrdered)
                .unwrap();
        }
        let (mut up, mut down, mut blobs) = (Vec::new(), Vec::new(), 0);
        let done = net.pump_until(Duration::from_secs(10), |n| {
            up.extend(n.server_chats().into_iter().map(|(_, m)| m.seq));
            down.extend(n.client_chats(c).into_iter().map(|m| m.seq));
            for e in n.server_events.drain(..) {
                if let Event::Message(m) = e.event {
                    blobs += usize::from(m.downcast_ref::<Blob>() == Some(&blob));
                }
            }
            up.len() >= 3_000 && down.len() >= 3_000 && blobs == 1
        });
        let case = format!("{bind} server offload {server_offload}, client {client_offload}");
        assert!(
            done,
            "{case}: {} up, {} down, {blobs} blobs",
            up.len(),
            down.len()
        );
        assert_eq!(up, (0..3_000).collect::<Vec<_>>(), "{case}");
        assert_eq!(down, (0..3_000).collect::<Vec<_>>(), "{case}");
        let s = net.server.socket_stats();
        assert!(
            s.datagrams_received > 150 && s.datagrams_sent > 25,
            "{case}: {s:?}"
        );
    }
}

#[test]
fn server_and_client_run_over_sockets_the_app_made() {
    let server_socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let server_addr = server_socket.local_addr().expect("bound");
    let mut server = Server::new(factory(), Config::default());
    server.listen_on(server_socket).expect("serve on it");
    assert_eq!(server.local_addr(), Some(server_addr));
    assert!(matches!(
        server.listen_on(std::net::UdpSocket::bind("127.0.0.1:0").expect("bind")),
        Err(ListenError::AlreadyListening)
    ));

    let client_socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let client_addr = client_socket.local_addr().expect("bound");
    let mut client = Client::new(factory(), Config::default());
    client.use_socket(client_socket).expect("take it");
    client.connect(server_addr).expect("connect");
    assert_eq!(client.local_addr(), Some(client_addr));
    let mut net = Net {
        server,
        server_events: Vec::new(),
        clients: vec![client],
        client_events: vec![Vec::new()],
    };
    net.connect_all();
    net.clients[0]
        .send(&chat(1), Delivery::ReliableOrdered)
        .expect("queued");
    assert!(net.pump_until(Duration::from_secs(3), |n| !n.server_chats().is_empty()));
    let peer = net.server.peers().next().map(|(a, _)| a);
    assert_eq!(peer, Some(client_addr), "the server saw the app's socket");

    // The client keeps the app's socket across connections.
    net.clients[0].disconnect();
    net.pump_for(Duration::from_millis(200));
    net.clients[0].connect(server_addr).expect("again");
    net.connect_all();
    assert_eq!(net.clients[0].local_addr(), Some(client_addr));
}

#[test]
fn bad_addresses_are_errors_not_panics() {
    let mut c = Client::new(factory(), Config::default());
    assert!(c.connect("not an address").is_err());
    assert!(c.connect("no-such-host.invalid:9000").is_err());
    assert!(c.send_message(&chat(0)).is_err());
    let mut s = Server::new(factory(), Config::default());
    assert!(s.listen("256.0.0.1:0").is_err());
}

#[test]
fn garbage_datagrams_do_not_disturb_the_server() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let c = net.add_client(Config::default());
    net.connect_all();
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x: u32 = 12345;
    for i in 0..2000u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let len = (x >> 16) as usize % 1400;
        let bytes: Vec<u8> = (0..len).map(|j| (x >> (j % 24)) as u8 ^ i as u8).collect();
        junk.send_to(&bytes, net.addr()).unwrap();
    }
    for i in 0..100 {
        net.clients[c].send_reliable_message(&chat(i)).unwrap();
    }
    let mut got = Vec::new();
    assert!(net.pump_until(Duration::from_secs(3), |n| {
        got.extend(n.server_chats());
        got.len() >= 100
    }));
    assert_eq!(got.len(), 100);
    assert_eq!(net.server.peer_count(), 1);
    assert!(net.server.stats().dropped_invalid > 0);
}

#[test]
fn datagrams_over_the_largest_mtu_are_counted_as_invalid() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let c = net.add_client(Config::default());
    net.connect_all();
    let before = net.server.stats().dropped_invalid;
    let big = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Longer than any peer may send, the largest being what the kernel cuts
    // down to the driver's receive slot.
    let sizes = [Config::MAX_MTU + 1, Config::MAX_MTU + 2, 20_000, 65_000];
    for len in sizes {
        let mut bytes = vec![0x01; len];
        bytes[..4].copy_from_slice(b"LG\x02\x06");
        big.send_to(&bytes, net.addr()).unwrap();
    }
    for i in 0..20 {
        net.clients[c].send_reliable_message(&chat(i)).unwrap();
    }
    let mut got = Vec::new();
    assert!(net.pump_until(Duration::from_secs(3), |n| {
        got.extend(n.server_chats());
        got.len() >= 20 && n.server.stats().dropped_invalid >= before + sizes.len() as u64
    }));
    assert_eq!(
        net.server.stats().dropped_invalid - before,
        sizes.len() as u64
    );
    assert_eq!(net.server.peer_count(), 1);
}

#[test]
fn clients_reconnect_after_the_server_restarts() {
    let mut net = Net::new("127.0.0.1:0", short_timeouts());
    let addr = net.addr();
    let c = net.add_client(short_timeouts());
    net.connect_all();
    let Net {
        server,
        mut clients,
        mut client_events,
        ..
    } = net;
    drop(server); // the server process "dies"
    update_until_errored(
        &mut clients[c],
        &mut client_events[c],
        Duration::from_secs(5),
    );
    assert!(clients[c].errored(), "the client saw the timeout");
    // A new server on the same port; the client connects again.
    let mut server = Server::new(factory(), short_timeouts());
    server.listen(addr).expect("rebind the same port");
    clients[c].connect(addr).expect("reconnect");
    let start = Instant::now();
    while !clients[c].connected() && start.elapsed() < Duration::from_secs(3) {
        server.update();
        while server.poll_event().is_some() {}
        clients[c].update();
        while clients[c].poll_event().is_some() {}
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(clients[c].connected());
    assert_eq!(server.peer_count(), 1);
}

#[test]
fn secure_mode_over_udp_with_a_token() {
    use legume::net::{ConnectToken, PrivateKey, TokenParams};
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let key = PrivateKey::generate().unwrap();
    let addr = net.addr();
    net.server.require_connect_tokens(key.clone(), addr);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let log = Arc::clone(&seen);
    net.server.set_connect_hook(move |r| {
        *log.lock().unwrap() = r.client_id;
        Decision::Accept
    });
    // The backend issues a token; it travels to the client as base64.
    let params = TokenParams::new(Config::default().protocol_id, 77, vec![addr]);
    let text = ConnectToken::issue(&key, &params).unwrap().to_base64();
    let token = ConnectToken::from_base64(&text).unwrap();
    let mut client = Client::new(factory(), Config::default());
    client.connect_with_token(&token).unwrap();
    net.clients.push(client);
    net.client_events.push(Vec::new());
    net.connect_all();
    assert_eq!(*seen.lock().unwrap(), Some(77));
    let peer = net.server.peers().next().unwrap().0;
    assert!(net.server.peer(peer).unwrap().is_secure());
    for i in 0..50 {
        net.clients[0]
            .send(&chat(i), Delivery::ReliableOrdered)
            .unwrap();
        net.server
            .send(peer, &chat(100 + i), Delivery::Reliable)
            .unwrap();
    }
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    assert!(net.pump_until(Duration::from_secs(3), |n| {
        to_server.extend(n.server_chats().into_iter().map(|(_, m)| m.seq));
        to_client.extend(n.client_chats(0).into_iter().map(|m| m.seq));
        to_server.len() == 50 && to_client.len() == 50
    }));
    assert_eq!(to_server, (0..50).collect::<Vec<_>>());
    // A plain client is refused with the reason.
    let plain = net.add_client(short_timeouts());
    assert!(
        net.pump_until(Duration::from_secs(3), |n| n.client_events[plain]
            .iter()
            .any(
                |e| matches!(e, Event::Rejected { reason } if reason.contains("connect token"))
            ))
    );
}

/// A loopback address with nothing listening on it, on the family of `ip`.
fn unbound_addr(ip: &str) -> SocketAddr {
    let probe = std::net::UdpSocket::bind(format!("{ip}:0")).expect("bind probe");
    let addr = probe.local_addr().unwrap();
    drop(probe);
    addr
}

/// Pumps `net` plus one extra client until it reports connected or failed.
fn pump_client(net: &mut Net, client: &mut Client, max: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    let end = Instant::now() + max;
    while Instant::now() < end && !client.connected() {
        net.pump();
        client.update();
        while let Some(e) = client.poll_event() {
            events.push(e);
        }
        if events
            .iter()
            .any(|e| matches!(e, Event::Rejected { .. } | Event::Disconnected(_)))
        {
            break;
        }
    }
    events
}

#[test]
fn connect_tries_every_resolved_address_in_order() {
    // A name resolving to ::1 then 127.0.0.1 (and the other way round) must
    // reach a server listening on either; the first address here has no
    // server, so the OS reports it unreachable or the handshake times out.
    let config = Config {
        connect_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    for (bind, dead_ip) in [("127.0.0.1:0", "[::1]"), ("[::1]:0", "127.0.0.1")] {
        let mut net = Net::new(bind, config.clone());
        let server = net.addr();
        let dead = SocketAddr::new(unbound_addr(dead_ip).ip(), server.port());
        let mut client = Client::new(factory(), config.clone());
        client.connect(&[dead, server][..]).expect("connect");
        let events = pump_client(&mut net, &mut client, Duration::from_secs(30));
        assert!(client.connected(), "{bind}: {events:?}");
        assert_eq!(client.server_addr(), Some(server));
        assert_eq!(net.server.peer_count(), 1);
        // The first address's failure was absorbed, not reported.
        assert!(!events.iter().any(|e| matches!(e, Event::Disconnected(_))));
    }
}

#[test]
fn a_silent_first_address_is_left_after_the_connect_timeout() {
    let config = Config {
        connect_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let mut net = Net::new("127.0.0.1:0", config.clone());
    // Bound, so no ICMP error: it just never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut client = Client::new(factory(), config);
    client
        .connect(&[silent.local_addr().unwrap(), net.addr()][..])
        .expect("connect");
    let events = pump_client(&mut net, &mut client, Duration::from_secs(30));
    assert!(client.connected(), "{events:?}");
    assert_eq!(client.server_addr(), Some(net.addr()));
}

#[test]
fn the_last_address_failure_is_reported() {
    let config = Config {
        connect_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let mut net = Net::new("127.0.0.1:0", config.clone());
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent2 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut client = Client::new(factory(), config);
    client
        .connect(&[silent.local_addr().unwrap(), silent2.local_addr().unwrap()][..])
        .expect("connect");
    let events = pump_client(&mut net, &mut client, Duration::from_secs(30));
    let failures: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Disconnected(_)))
        .collect();
    assert!(
        matches!(
            failures[..],
            [Event::Disconnected(DisconnectReason::ConnectTimedOut)]
        ),
        "{events:?}"
    );
    assert_eq!(
        client.server_addr(),
        Some(silent2.local_addr().unwrap()),
        "both addresses were tried"
    );
}

#[test]
fn a_token_tries_its_server_addresses_in_order() {
    use legume::net::{ConnectToken, PrivateKey, TokenParams};
    let key = PrivateKey::generate().unwrap();
    let config = Config {
        connect_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    // The first server is full (its hook rejects), the second accepts: a
    // token's servers are interchangeable, so a rejection moves on too.
    let mut full = Net::new("127.0.0.1:0", config.clone());
    let full_addr = full.addr();
    full.server.require_connect_tokens(key.clone(), full_addr);
    full.server
        .set_connect_hook(|_| Decision::Reject("server full".into()));
    let mut net = Net::new("127.0.0.1:0", config.clone());
    let addr = net.addr();
    net.server.require_connect_tokens(key.clone(), addr);
    let dead = unbound_addr("127.0.0.1");
    let params = TokenParams::new(config.protocol_id, 5, vec![dead, full_addr, addr]);
    let token = ConnectToken::issue(&key, &params).unwrap();
    let mut client = Client::new(factory(), config);
    client.connect_with_token(&token).unwrap();
    let mut events = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end && !client.connected() {
        full.pump();
        events.extend(pump_client(&mut net, &mut client, Duration::from_millis(5)));
    }
    assert!(client.connected(), "{events:?}");
    assert_eq!(client.server_addr(), Some(addr));
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::Rejected { .. } | Event::Disconnected(_))));
}

#[test]
fn a_client_binds_the_local_address_it_is_given() {
    let mut net = Net::new("127.0.0.1:0", Config::default());
    let mut client = Client::new(factory(), Config::default());
    client.set_local_addr("127.0.0.1:0".parse().unwrap());
    client.connect(net.addr()).unwrap();
    let events = pump_client(&mut net, &mut client, Duration::from_secs(30));
    assert!(client.connected(), "{events:?}");
    let local = client.local_addr().unwrap();
    // The address the server reports for the peer is the client's own.
    assert_eq!(net.server.peers().next().unwrap().0, local);
    assert_eq!(local.ip().to_string(), "127.0.0.1");

    // A local address of the other family than every server address is a
    // typed error, not a silent failure.
    let mut v4_only = Client::new(factory(), Config::default());
    v4_only.set_local_addr("127.0.0.1:0".parse().unwrap());
    assert!(matches!(
        v4_only.connect("[::1]:9"),
        Err(legume::net::ConnectError::AddressFamily { .. })
    ));
}
