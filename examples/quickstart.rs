//! The smallest complete program: a server and a client in one process
//! exchange a derived message over UDP on 127.0.0.1.
//!
//! Run: `cargo run --example quickstart`, or with the library's logs:
//! `RUST_LOG=legume_net=debug cargo run --example quickstart`

mod support;

use std::sync::Arc;
use std::time::Duration;

use legume::prelude::*;

#[derive(Debug, Message)]
#[message(id = 21)]
struct Greeting {
    #[field(max_len = 64)]
    text: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // legume logs through `tracing`; this prints its events on stderr,
    // filtered by RUST_LOG (warnings when it is unset).
    support::init_logging(Some("warn"));

    let mut factory = MessageFactory::new();
    factory.register::<Greeting>()?;
    let factory = Arc::new(factory);

    let mut server = Server::new(Arc::clone(&factory), Config::default());
    server.listen("127.0.0.1:0")?;
    let addr = server.local_addr().ok_or("server has no address")?;

    let mut client = Client::new(factory, Config::default());
    client.connect(addr)?;

    let mut was_connected = false;
    for _frame in 0..500 {
        server.update();
        // Every event names the peer by its `ClientId` (and address).
        while let Some(ServerEvent {
            client,
            peer,
            event,
            ..
        }) = server.poll_event()
        {
            match event {
                Event::Connected => println!("server: {client} connected from {peer}"),
                Event::Message(msg) => {
                    if let Some(g) = msg.downcast_ref::<Greeting>() {
                        println!("server: {client} says {:?}", g.text);
                        let reply = Greeting {
                            text: format!("welcome, {client}"),
                        };
                        server.send(client, &reply, Delivery::Reliable)?;
                    }
                }
                other => println!("server: {client}: {other:?}"),
            }
        }

        client.update();
        while let Some(event) = client.poll_event() {
            match event {
                // The handshake failed: say why and stop (exit code 1).
                Event::Rejected { reason } => {
                    return Err(format!("cannot connect: rejected by the server: {reason}").into());
                }
                Event::Disconnected(reason) if !was_connected => {
                    return Err(format!("cannot connect: {reason}").into());
                }
                Event::Connected => {
                    was_connected = true;
                    println!("client: connected, rtt {:.2} ms", client.latency());
                    client.send_reliable_message(&Greeting {
                        text: "hello, legume".into(),
                    })?;
                }
                Event::Message(msg) => {
                    if let Some(g) = msg.downcast_ref::<Greeting>() {
                        println!("client: server says {:?}", g.text);
                        client.disconnect();
                    }
                }
                Event::Disconnected(reason) => println!("client: disconnected ({reason})"),
                other => println!("client: {other:?}"),
            }
        }
        if client.disconnected() && server.peer_count() == 0 {
            println!("done");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err("the exchange did not finish in time".into())
}
