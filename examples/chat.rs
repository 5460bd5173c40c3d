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
//!
//! **Secure mode** (`docs/PROTOCOL.md` section 8): give the server the
//! private key of a token service (the `token` example) and the clients a
//! connect token each. Only token holders get in, all traffic is encrypted
//! and authenticated, and names come from the tokens (sealed by the
//! backend), not from the clients:
//!
//! ```text
//! cargo run --example token -- keygen > chat.key
//! cargo run --example chat -- server --listen 127.0.0.1:40100 --key "$(cat chat.key)"
//! cargo run --example chat -- client --token "$(cargo run -q --example token -- issue \
//!     --key "$(cat chat.key)" --server 127.0.0.1:40100 --client-id 1 --name ann)"
//! ```

mod support;

use std::io::BufRead;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use legume::net::{ConnectToken, PrivateKey};
use legume::prelude::*;

use support::{connect_failure, init_logging, Args};

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging(Some("warn"));
    let args = Args::from_env();
    let usage = "usage: chat server --listen ADDR [--key KEY [--public ADDR]] \
                 | chat client --connect ADDR --name NAME | chat client --token TOKEN";
    let factory = Arc::new(ChatMsg::factory()?);
    match args.command() {
        Some("server") => server(
            factory,
            &args.get::<String>("--listen").ok_or(usage)?,
            args.get::<String>("--key").as_deref(),
            args.get::<String>("--public").as_deref(),
        ),
        Some("client") => match args.get::<String>("--token") {
            Some(token) => {
                let token = ConnectToken::from_base64(&token)?;
                client(factory, Target::Token(token), "")
            }
            None => client(
                factory,
                Target::Addr(args.get::<String>("--connect").ok_or(usage)?),
                &args.get::<String>("--name").ok_or(usage)?,
            ),
        },
        _ => Err(usage.into()),
    }
}

/// Where a client connects.
enum Target {
    Addr(String),
    Token(ConnectToken),
}

/// The name a `token` example token carries in its user data.
fn token_name(user_data: &[u8]) -> String {
    let end = user_data.iter().position(|&b| b == 0).unwrap_or(32).min(32);
    String::from_utf8_lossy(&user_data[..end]).into_owned()
}

fn server(
    factory: Arc<MessageFactory>,
    listen: &str,
    key: Option<&str>,
    public: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut server = Server::new(factory, Config::default());
    server.listen(listen)?;
    let local = server.local_addr().ok_or("no address")?;
    if let Some(key) = key {
        let key = PrivateKey::from_base64(key).ok_or("--key is not a base64 32-byte key")?;
        let public = match public {
            Some(p) => p.parse()?,
            None => local,
        };
        server.require_connect_tokens(key, public);
        println!("secure chat server on {local} (tokens for {public})");
    } else {
        println!("chat server on {local}");
    }
    loop {
        server.update_timeout(Duration::from_millis(50));
        while let Some(ServerEvent {
            client,
            event,
            data,
            ..
        }) = server.poll_event()
        {
            match event {
                Event::Message(msg) => match ChatMsg::from_any(msg) {
                    Ok(ChatMsg::Join(j)) => {
                        // Secure mode: the name in the player's token, which
                        // the server keeps for the life of the connection.
                        let name = server.user_data(client).map_or(j.name, |d| token_name(d));
                        println!("{client} is {name}");
                        let text = format!("* {name} joined");
                        // The name rides with the peer: no map of our own.
                        server.set_peer_data(client, Name(name));
                        let _ = server.send_to_all(&Notice { text }, Delivery::ReliableOrdered);
                    }
                    Ok(ChatMsg::Say(s)) => {
                        let Some(Name(from)) = server.peer_data::<Name>(client).cloned() else {
                            continue; // not joined yet
                        };
                        let line = Line { from, text: s.text };
                        // Everyone who joined, but the speaker.
                        let others: Vec<ClientId> = server
                            .clients()
                            .map(|(id, _)| id)
                            .filter(|&id| id != client && server.peer_data::<Name>(id).is_some())
                            .collect();
                        for other in others {
                            let _ = server.send(other, &line, Delivery::ReliableOrdered);
                        }
                    }
                    Ok(other) => println!("{client} sent an unexpected {other:?}"),
                    Err(m) => println!("{client} sent an unknown {m:?}"),
                },
                Event::Disconnected(reason) => {
                    // The peer's data comes back with its last event.
                    if let Some(Name(name)) =
                        data.and_then(|d| d.downcast::<Name>().ok()).map(|b| *b)
                    {
                        println!("{name} left ({reason})");
                        let text = format!("* {name} left");
                        let _ = server.send_to_all(&Notice { text }, Delivery::ReliableOrdered);
                    }
                }
                other => println!("{client}: {other:?}"),
            }
        }
    }
}

/// A player's name, attached to their peer on the server.
#[derive(Clone, Debug)]
struct Name(String);

fn client(
    factory: Arc<MessageFactory>,
    target: Target,
    name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::new(factory, Config::default());
    let connect = match target {
        Target::Addr(addr) => {
            client.connect(addr.as_str())?;
            addr
        }
        Target::Token(token) => {
            client.connect_with_token(&token)?;
            format!("{} (secure)", token.server_addresses()[0])
        }
    };
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
    let mut connected = false;
    loop {
        client.update_timeout(Duration::from_millis(20));
        while let Some(event) = client.poll_event() {
            if !connected {
                if let Some(why) = connect_failure(&event) {
                    eprintln!("chat: cannot connect to {connect}: {why}");
                    std::process::exit(1);
                }
            }
            match event {
                Event::Connected => {
                    connected = true;
                    if name.is_empty() {
                        println!("* connected to {connect}");
                    } else {
                        println!("* connected to {connect} as {name}");
                    }
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
                        println!("* disconnected: {reason}");
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
                    let reason = match name {
                        "" => "goodbye".to_owned(),
                        _ => format!("{name} said goodbye"),
                    };
                    client.disconnect_with(&reason);
                }
            }
        }
    }
}
