//! A terminal chat room.
//!
//! Run the server, then clients in other terminals:
//!
//! ```text
//! cargo run --example chat -- server --listen 127.0.0.1:40100
//! cargo run --example chat -- client --connect 127.0.0.1:40100 --name ann
//! ```
//!
//! Lines typed in a client are sent reliably and in order, and shown on
//! every other client with the sender's name; joins and leaves are
//! announced. Ctrl-D leaves gracefully.
//!
//! The library's logs go to stderr, filtered by `RUST_LOG` (default
//! `warn`); `RUST_LOG=legume_net=debug` shows handshakes and disconnects.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use legume::prelude::*;

/// Client → server: who I am (sent once connected).
#[derive(Debug, Message)]
#[message(id = 30)]
struct Join {
    #[field(max_len = 32)]
    name: String,
}

/// Client → server: a line typed.
#[derive(Debug, Message)]
#[message(id = 31)]
struct Say {
    #[field(max_len = 1000)]
    text: String,
}

/// Server → clients: a line from someone.
#[derive(Debug, Message)]
#[message(id = 32)]
struct Line {
    #[field(max_len = 32)]
    from: String,
    #[field(max_len = 1000)]
    text: String,
}

/// Server → clients: someone joined or left.
#[derive(Debug, Message)]
#[message(id = 33)]
struct Notice {
    text: String,
}

#[derive(Debug, MessageSet)]
enum ChatMsg {
    Join(Join),
    Say(Say),
    Line(Line),
    Notice(Notice),
}

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: chat server --listen ADDR | chat client --connect ADDR --name NAME";
    let factory = Arc::new(ChatMsg::factory()?);
    match args.get(1).map(String::as_str) {
        Some("server") => server(factory, &arg(&args, "--listen").ok_or(usage)?),
        Some("client") => client(
            factory,
            &arg(&args, "--connect").ok_or(usage)?,
            &arg(&args, "--name").ok_or(usage)?,
        ),
        _ => Err(usage.into()),
    }
}

fn server(factory: Arc<MessageFactory>, listen: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut server = Server::new(factory, Config::default());
    server.listen(listen)?;
    println!(
        "chat server on {}",
        server.local_addr().ok_or("no address")?
    );
    let mut names: HashMap<SocketAddr, String> = HashMap::new();
    loop {
        server.update_timeout(Duration::from_millis(50));
        while let Some(ServerEvent { peer, event }) = server.poll_event() {
            match event {
                Event::Message(msg) => match ChatMsg::from_any(msg) {
                    Ok(ChatMsg::Join(j)) => {
                        println!("{peer} is {}", j.name);
                        let text = format!("* {} joined", j.name);
                        names.insert(peer, j.name);
                        server.send_to_all(&Notice { text }, Delivery::ReliableOrdered);
                    }
                    Ok(ChatMsg::Say(s)) => {
                        let from = names
                            .get(&peer)
                            .cloned()
                            .unwrap_or_else(|| peer.to_string());
                        let line = Line { from, text: s.text };
                        for other in names.keys().filter(|&&a| a != peer) {
                            let _ = server.send(*other, &line, Delivery::ReliableOrdered);
                        }
                    }
                    Ok(other) => println!("{peer} sent an unexpected {other:?}"),
                    Err(m) => println!("{peer} sent an unknown {m:?}"),
                },
                Event::Disconnected(reason) => {
                    if let Some(name) = names.remove(&peer) {
                        println!("{name} left ({reason:?})");
                        let text = format!("* {name} left");
                        server.send_to_all(&Notice { text }, Delivery::ReliableOrdered);
                    }
                }
                other => println!("{peer}: {other:?}"),
            }
        }
    }
}

fn client(
    factory: Arc<MessageFactory>,
    connect: &str,
    name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::new(factory, Config::default());
    client.connect(connect)?;
    // Stdin blocks, so a thread reads it; None means end of input (Ctrl-D).
    let (tx, rx) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(None);
    });
    let mut leaving = false;
    loop {
        client.update_timeout(Duration::from_millis(20));
        while let Some(event) = client.poll_event() {
            match event {
                Event::Connected => {
                    println!("* connected to {connect} as {name}");
                    client.send(&Join { name: name.into() }, Delivery::ReliableOrdered)?;
                }
                Event::Rejected { reason } => return Err(format!("rejected: {reason}").into()),
                Event::Message(msg) => match ChatMsg::from_any(msg) {
                    Ok(ChatMsg::Line(l)) => println!("<{}> {}", l.from, l.text),
                    Ok(ChatMsg::Notice(n)) => println!("{}", n.text),
                    Ok(other) => println!("unexpected {other:?}"),
                    Err(m) => println!("unknown {m:?}"),
                },
                Event::Disconnected(reason) => {
                    if !leaving {
                        println!("* disconnected: {reason:?}");
                    }
                    return Ok(());
                }
                other => println!("* {other:?}"),
            }
        }
        while let Ok(line) = rx.try_recv() {
            match line {
                Some(text) if client.connected() => {
                    if let Err(e) = client.send(&Say { text }, Delivery::ReliableOrdered) {
                        println!("* not sent: {e}");
                    }
                }
                Some(_) => println!("* not connected yet"),
                None => {
                    leaving = true;
                    client.disconnect_with(&format!("{name} said goodbye"));
                }
            }
        }
    }
}
