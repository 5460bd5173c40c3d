//! The schema fingerprint in the handshake: a client whose messages differ
//! from the server's is refused with a reason that names them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use legume::net::{Config, Connection, Event, ServerEndpoint};
use legume::prelude::*;

/// Version 1 of a game's protocol.
mod v1 {
    use legume::prelude::*;

    #[derive(Debug, Message)]
    #[message(id = 21)]
    pub struct Chat {
        pub from: String,
        pub text: String,
    }

    #[derive(Debug, Message)]
    #[message(id = 22)]
    pub struct Move {
        pub x: i16,
        pub y: i16,
    }

    #[derive(Debug, MessageSet)]
    pub enum Protocol {
        Chat(Chat),
        Move(Move),
    }
}

/// Version 2: `Move` widened its fields, everything else is the same.
mod v2 {
    use legume::prelude::*;

    #[derive(Debug, Message)]
    #[message(id = 21)]
    pub struct Chat {
        pub from: String,
        pub text: String,
    }

    #[derive(Debug, Message)]
    #[message(id = 22)]
    pub struct Move {
        pub x: i32,
        pub y: i32,
    }

    #[derive(Debug, Message)]
    #[message(id = 23)]
    pub struct Emote {
        pub id: u8,
    }

    #[derive(Debug, MessageSet)]
    pub enum Protocol {
        Chat(Chat),
        Move(Move),
    }

    #[derive(Debug, MessageSet)]
    pub enum WithEmote {
        Chat(Chat),
        Move(Move),
        Emote(Emote),
    }
}

/// Runs the handshake between a client and a server endpoint with no loss;
/// returns the client's events.
fn handshake(server: MessageFactory, client: MessageFactory, config: Config) -> Vec<Event> {
    let now = Instant::now();
    let addr: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let mut endpoint = ServerEndpoint::with_insecure_seed(config.clone(), Arc::new(server), now, 1);
    let mut conn = Connection::connect(config, Arc::new(client), now, 7);
    let mut buf = vec![0u8; 2048];
    let mut events = Vec::new();
    for _ in 0..10 {
        while let Some(n) = conn.poll_transmit(now, &mut buf) {
            endpoint.handle_datagram(now, addr, &buf[..n]);
        }
        while let Some((to, n)) = endpoint.poll_transmit(now, &mut buf) {
            assert_eq!(to, addr);
            conn.handle_datagram(now, &buf[..n]);
        }
        while let Some(e) = conn.poll_event() {
            events.push(e);
        }
        while endpoint.poll_event().is_some() {}
    }
    events
}

fn rejection(events: &[Event]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        Event::Rejected { reason } => Some(reason.as_str()),
        _ => None,
    })
}

#[test]
fn the_same_protocol_connects() {
    let events = handshake(
        v1::Protocol::factory().unwrap(),
        v1::Protocol::factory().unwrap(),
        Config::default(),
    );
    assert!(matches!(events[..], [Event::Connected]), "{events:?}");
}

#[test]
fn a_changed_message_is_named_in_the_rejection() {
    let events = handshake(
        v1::Protocol::factory().unwrap(),
        v2::Protocol::factory().unwrap(),
        Config::default(),
    );
    let reason = rejection(&events).expect("refused");
    assert!(reason.contains("`Move` (id 22) differs"), "{reason}");
    assert!(!reason.contains("Chat"), "{reason}");
}

#[test]
fn a_message_only_the_client_has_is_named_by_id() {
    let events = handshake(
        v2::Protocol::factory().unwrap(),
        v2::WithEmote::factory().unwrap(),
        Config::default(),
    );
    let reason = rejection(&events).expect("refused");
    assert!(reason.contains("id 23"), "{reason}");
    assert!(reason.contains("missing on server"), "{reason}");
}

#[test]
fn the_check_can_be_turned_off() {
    let config = Config {
        server: legume::net::ServerConfig {
            check_schema: false,
            ..legume::net::ServerConfig::default()
        },
        ..Config::default()
    };
    let events = handshake(
        v1::Protocol::factory().unwrap(),
        v2::Protocol::factory().unwrap(),
        config,
    );
    assert!(matches!(events[..], [Event::Connected]), "{events:?}");
}

#[test]
fn a_large_schema_still_carries_its_fingerprint() {
    // More messages than fit a per-message list in the handshake: the
    // fingerprint alone still tells the two apart.
    let mut big = MessageFactory::new();
    let mut other = MessageFactory::new();
    macro_rules! many {
        ($($name:ident = $id:literal),*) => {
            $(
                #[derive(Debug, Message)]
                #[message(id = $id)]
                struct $name { _a: u32 }
                big.register::<$name>().unwrap();
                other.register::<$name>().unwrap();
            )*
        };
    }
    many!(
        M30 = 30,
        M31 = 31,
        M32 = 32,
        M33 = 33,
        M34 = 34,
        M35 = 35,
        M36 = 36,
        M37 = 37,
        M38 = 38,
        M39 = 39,
        M40 = 40,
        M41 = 41,
        M42 = 42,
        M43 = 43,
        M44 = 44,
        M45 = 45,
        M46 = 46,
        M47 = 47,
        M48 = 48,
        M49 = 49,
        M50 = 50,
        M51 = 51,
        M52 = 52,
        M53 = 53,
        M54 = 54,
        M55 = 55,
        M56 = 56,
        M57 = 57,
        M58 = 58,
        M59 = 59,
        M60 = 60,
        M61 = 61,
        M62 = 62,
        M63 = 63,
        M64 = 64,
        M65 = 65,
        M66 = 66,
        M67 = 67,
        M68 = 68,
        M69 = 69,
        M70 = 70,
        M71 = 71,
        M72 = 72,
        M73 = 73,
        M74 = 74,
        M75 = 75,
        M76 = 76,
        M77 = 77,
        M78 = 78,
        M79 = 79
    );
    other.register::<v1::Chat>().unwrap();
    let events = handshake(big, other, Config::default());
    let reason = rejection(&events).expect("refused");
    assert!(reason.contains("schema mismatch"), "{reason}");
}
