//! Driving the sans-IO [`ServerEndpoint`] from an event loop of your own
//! (mio here; tokio, an engine's reactor or a hand-written `epoll` loop
//! work the same way).
//!
//! The endpoint never touches a socket or a clock. The loop owns both and
//! does four things, in any order it likes, as often as it likes:
//!
//! 1. hand every datagram that arrives to `handle_datagram(now, from, bytes)`;
//! 2. call `handle_timeout(now)` once `poll_timeout()` has passed;
//! 3. drain `poll_event()` and answer with `send`;
//! 4. send what `poll_transmit(now, buf)` gives until it gives nothing,
//!    keeping a datagram the socket would not take for when it is writable.
//!
//! and sleeps until the socket is readable or `poll_timeout()` comes.
//!
//! Run: `cargo run --example event_loop`. It serves on 127.0.0.1, connects
//! one UDP `Client` from another thread, echoes its messages back, and
//! exits once the client has all its echoes (`--messages N`, default 200).

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use legume::net::{ServerEndpoint, MTU};
use legume::prelude::*;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

#[derive(Debug, Message)]
#[message(id = 30)]
struct Line {
    n: u32,
}

const SOCKET: Token = Token(0);

/// The longest the loop sleeps without a timer due: it also watches for
/// the client thread finishing.
const IDLE_WAIT: Duration = Duration::from_millis(50);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_logging(Some("warn"));
    let args = support::Args::from_env();
    let messages: u32 = args.value("--messages")?.unwrap_or(200);

    let mut factory = MessageFactory::new();
    factory.register::<Line>()?;
    let factory = Arc::new(factory);

    let mut socket = UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let addr = socket.local_addr()?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)?;
    let mut endpoint =
        ServerEndpoint::new(Config::default(), Arc::clone(&factory), Instant::now())?;

    let (done_tx, done_rx) = mpsc::channel();
    let client = thread::spawn(move || run_client(factory, addr, messages, done_tx));

    let mut events = Events::with_capacity(64);
    let mut buf = vec![0u8; 65_536];
    // A datagram the socket refused (WouldBlock), sent once it is writable.
    let mut held: Option<(SocketAddr, Vec<u8>)> = None;
    let mut echoed = 0u32;
    loop {
        let wait = endpoint
            .poll_timeout()
            .map_or(IDLE_WAIT, |t| t.saturating_duration_since(Instant::now()))
            .min(IDLE_WAIT);
        poll.poll(&mut events, Some(wait))?;

        // 1. Everything that arrived.
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => endpoint.handle_datagram(Instant::now(), from, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // ICMP errors and the like: one peer's trouble, not the server's.
                Err(_) => break,
            }
        }
        // 2. Timers.
        let now = Instant::now();
        if endpoint.poll_timeout().is_some_and(|t| t <= now) {
            endpoint.handle_timeout(now);
        }
        // 3. Events.
        while let Some(ServerEvent { client, event, .. }) = endpoint.poll_event() {
            if let Event::Message(m) = event {
                if let Some(line) = m.downcast_ref::<Line>() {
                    endpoint.send(client, line, Delivery::ReliableOrdered)?;
                    echoed += 1;
                }
            }
        }
        // 4. Datagrams out.
        let mut blocked = false;
        if let Some((to, bytes)) = held.take() {
            match socket.send_to(&bytes, to) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    held = Some((to, bytes));
                    blocked = true;
                }
                _ => {}
            }
        }
        while !blocked {
            let Some((to, n)) = endpoint.poll_transmit(Instant::now(), &mut buf[..MTU]) else {
                break;
            };
            if let Err(e) = socket.send_to(&buf[..n], to) {
                if e.kind() == ErrorKind::WouldBlock {
                    held = Some((to, buf[..n].to_vec()));
                    blocked = true;
                }
            }
        }
        let interest = if blocked {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        poll.registry().reregister(&mut socket, SOCKET, interest)?;

        if let Ok(result) = done_rx.try_recv() {
            client.join().map_err(|_| "the client thread panicked")?;
            let got: u32 = result?;
            println!(
                "event loop: echoed {echoed} messages; the client got {got} of {messages} back"
            );
            return if got == messages {
                Ok(())
            } else {
                Err("the client did not get every echo".into())
            };
        }
    }
}

/// A UDP `Client` that sends `messages` lines and waits for every echo.
fn run_client(
    factory: Arc<MessageFactory>,
    server: SocketAddr,
    messages: u32,
    done: mpsc::Sender<Result<u32, String>>,
) {
    let result = (|| {
        let mut client = Client::new(factory, Config::default());
        client.connect(server).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut sent, mut got) = (false, 0u32);
        while got < messages && Instant::now() < deadline {
            client.update_timeout(Duration::from_millis(5));
            if client.connected() && !sent {
                for n in 0..messages {
                    client
                        .send(&Line { n }, Delivery::ReliableOrdered)
                        .map_err(|e| e.to_string())?;
                }
                sent = true;
            }
            while let Some(event) = client.poll_event() {
                match event {
                    Event::Message(m) if m.downcast_ref::<Line>().is_some_and(|l| l.n == got) => {
                        got += 1;
                    }
                    Event::Disconnected(reason) => return Err(reason.to_string()),
                    _ => {}
                }
            }
        }
        client.disconnect();
        client.update();
        Ok(got)
    })();
    // The receiver is gone only if main already failed.
    let _ = done.send(result);
}
