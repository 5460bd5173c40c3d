//! Family 4, faults: a server process killed and restarted, a client gone
//! halfway through a fragmented message.

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use legume::prelude::*;

use crate::common::wire::*;
use crate::messages::{echo_factory, factory, Echo};
use crate::serial;

/// A child process killed (SIGKILL on Unix) when dropped.
struct Child(std::process::Child);

impl Child {
    fn echo_server(bin: &std::path::Path, addr: SocketAddr) -> Self {
        let child = std::process::Command::new(bin)
            .args(["server", "--listen", &addr.to_string(), "--seconds", "60"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the echo server");
        Child(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

fn fault_config() -> Config {
    Config {
        timeout: Duration::from_millis(1500),
        ping_interval: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// Updates every client until `done` holds for all (or `max` passes),
/// collecting their events.
fn pump_clients(
    clients: &mut [Client],
    events: &mut [Vec<Event>],
    max: Duration,
    done: impl Fn(&Client, &[Event]) -> bool,
) -> bool {
    let end = Instant::now() + max;
    loop {
        for (c, ev) in clients.iter_mut().zip(events.iter_mut()) {
            c.update();
            while let Some(e) = c.poll_event() {
                ev.push(e);
            }
        }
        if clients.iter().zip(events.iter()).all(|(c, e)| done(c, e)) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Pumps every client for up to 10 s until `done` holds for each, asserting
/// that it does (`what` says what did not happen otherwise); returns the
/// events they had meanwhile.
fn pump_until(clients: &mut [Client], done: fn(&Client) -> bool, what: &str) -> Vec<Vec<Event>> {
    let mut events: Vec<Vec<Event>> = clients.iter().map(|_| Vec::new()).collect();
    assert!(
        pump_clients(clients, &mut events, Duration::from_secs(10), |c, _| done(
            c
        )),
        "{what}"
    );
    events
}

/// Each client sends `n` reliable echoes numbered from `from`; every one
/// must come back exactly once.
fn echo_round(clients: &mut [Client], from: u32, n: u32) {
    let mut events: Vec<Vec<Event>> = clients.iter().map(|_| Vec::new()).collect();
    for c in clients.iter_mut() {
        for seq in from..from + n {
            let msg = Echo {
                kind: 1,
                data: seq.to_le_bytes().to_vec(),
            };
            c.send(&msg, Delivery::Reliable).expect("queue an echo");
        }
    }
    let echoes = |e: &[Event]| {
        e.iter()
            .filter_map(|e| match e {
                Event::Message(m) => m.downcast_ref::<Echo>(),
                _ => None,
            })
            .map(|m| u32::from_le_bytes(m.data[..4].try_into().unwrap()))
            .collect::<Vec<u32>>()
    };
    let all = pump_clients(clients, &mut events, Duration::from_secs(10), |_, e| {
        echoes(e).len() >= n as usize
    });
    assert!(all, "echoes missing");
    for e in &events {
        let mut got = echoes(e);
        got.sort_unstable();
        assert_eq!(got, (from..from + n).collect::<Vec<_>>(), "each echo once");
    }
}

#[test]
fn a_killed_server_process_is_a_timeout_and_its_successor_takes_the_clients_back() {
    let _serial = serial();
    let bin = crate::common::example_binary("echo");
    let addr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = Child::echo_server(&bin, addr);
    let mut clients: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::new(echo_factory(), fault_config());
            c.connect(addr).expect("connect");
            c
        })
        .collect();
    pump_until(
        &mut clients,
        Client::connected,
        "clients did not connect to the echo process",
    );
    echo_round(&mut clients, 0, 50);

    // SIGKILL: no DISCONNECT is sent; the clients notice by the timeout.
    server.kill();
    let killed = Instant::now();
    let events = pump_until(&mut clients, Client::errored, "clients did not time out");
    let noticed = killed.elapsed();
    for e in &events {
        assert!(
            e.iter()
                .any(|e| matches!(e, Event::Disconnected(DisconnectReason::TimedOut))),
            "{e:?}"
        );
    }

    // A new process on the same port: the clients connect again.
    let _successor = Child::echo_server(&bin, addr);
    for c in &mut clients {
        c.connect(addr).expect("reconnect");
    }
    pump_until(
        &mut clients,
        Client::connected,
        "clients did not reconnect to the new process",
    );
    echo_round(&mut clients, 1000, 50);
    println!(
        "killed server: 3 clients reported the timeout {:.2} s after SIGKILL (timeout {:?}) and reconnected to the restarted process",
        noticed.as_secs_f64(),
        fault_config().timeout
    );
}

#[test]
fn a_client_gone_mid_fragment_frees_its_reassembly_at_timeout() {
    let _serial = serial();
    let mut server = Server::new(factory(), fault_config());
    server.listen("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_nonblocking(true).unwrap();
    let me = raw.local_addr().unwrap();
    let mut server_events = Vec::new();
    let mut buf = [0u8; 2048];
    // The handshake, by hand.
    let mut pump_until =
        |server: &mut Server, max: Duration, f: &mut dyn FnMut(&Server) -> bool| {
            let end = Instant::now() + max;
            while Instant::now() < end {
                server.update();
                while let Some(e) = server.poll_event() {
                    server_events.push(e);
                }
                if f(server) {
                    return true;
                }
                thread::sleep(Duration::from_millis(1));
            }
            false
        };
    let nonce = 0x5EED_u64;
    raw.send_to(&connect_request(0, nonce), server_addr)
        .unwrap();
    let mut challenge = None;
    pump_until(&mut server, Duration::from_secs(3), &mut |_| {
        if let Ok((n, _)) = raw.recv_from(&mut buf) {
            if n == 36 && buf[3] == CHALLENGE && buf[4..12] == nonce.to_be_bytes() {
                challenge = Some(buf[12..36].to_vec());
            }
        }
        challenge.is_some()
    });
    let challenge = challenge.expect("a CHALLENGE");
    let issued_at = u64::from_be_bytes(challenge[..8].try_into().unwrap());
    raw.send_to(
        &challenge_response(0, nonce, issued_at, &challenge[8..]),
        server_addr,
    )
    .unwrap();
    let mut session = None;
    pump_until(&mut server, Duration::from_secs(3), &mut |_| {
        if let Ok((n, _)) = raw.recv_from(&mut buf) {
            if n == 16 && buf[3] == ACCEPT {
                session = Some(u32::from_be_bytes(buf[12..16].try_into().unwrap()));
            }
        }
        session.is_some()
    });
    let session = session.expect("an ACCEPT");
    // A quarter of a 400 KB message: 100 fragments of 400.
    for index in 0..100u16 {
        let mut d = data_header(session, index, 0xFFFF, 0, 0);
        d.extend(fragment_frame(false, 0, index, 400, &[index as u8; 1000]));
        raw.send_to(&d, server_addr).unwrap();
    }
    let mut held = 0;
    pump_until(&mut server, Duration::from_secs(3), &mut |s| {
        held = s.peer(me).map_or(0, |p| p.stats().reassembly_bytes);
        held >= 100_000
    });
    assert!(held >= 100_000, "{held} bytes held for reassembly");
    // The client vanishes.
    drop(raw);
    let gone = Instant::now();
    let freed = pump_until(&mut server, Duration::from_secs(10), &mut |s| {
        s.peer(me).is_none()
    });
    assert!(freed, "the connection was not dropped");
    assert!(server_events.iter().any(
        |e| e.peer == me && matches!(e.event, Event::Disconnected(DisconnectReason::TimedOut))
    ));
    assert_eq!(server.peer_count(), 0);
    println!(
        "vanished client: {held} B held for reassembly, freed with the connection {:.2} s later (timeout {:?})",
        gone.elapsed().as_secs_f64(),
        fault_config().timeout
    );
}
