//! Defines a game's messages, registers them, and shows their wire bytes.
//!
//! Run: `cargo run --example schema`
//!
//! No networking: it encodes each message as `send` would put it in a
//! packet (`docs/WIRE_TYPES.md`), decodes it through the shared factory as a
//! receiver does, and matches it exhaustively through a `MessageSet` enum.
//! `quickstart` and `chat` send such messages over UDP.

use std::sync::Arc;

use legume::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Codec)]
enum Team {
    Red,
    Blue,
}

/// legume's chat message, byte-compatible with its `string 24/256/24` fields.
#[derive(Debug, PartialEq, Message)]
#[message(id = 21)]
struct Chat {
    #[field(fixed = 24)]
    sender_name: String,
    #[field(fixed = 256)]
    message: String,
    #[field(fixed = 24)]
    channel: String,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 22)]
struct Spawn {
    player: u32,
    team: Team,
    position: [f32; 3],
    #[field(max_len = 8)]
    loadout: Vec<u16>,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 23)]
struct Leave;

/// Every message the game sends, for exhaustive matching.
#[derive(Debug, MessageSet)]
enum GameMsg {
    Chat(Chat),
    Spawn(Spawn),
    Leave(Leave),
}

fn describe(msg: GameMsg) -> String {
    match msg {
        GameMsg::Chat(c) => format!("{} says {:?} on #{}", c.sender_name, c.message, c.channel),
        GameMsg::Spawn(s) => format!(
            "player {} spawns for {:?} at {:?}",
            s.player, s.team, s.position
        ),
        GameMsg::Leave(Leave) => "someone left".to_string(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Built once, shared by every client and server of the process.
    let factory = Arc::new(GameMsg::factory()?);
    for info in factory.iter() {
        println!(
            "registered id {:>3} {:<6} ({})",
            info.type_id(),
            info.name(),
            info.rust_type()
        );
    }

    let outgoing: Vec<GameMsg> = vec![
        Chat {
            sender_name: "JoeUser".into(),
            message: "This is a test message.".into(),
            channel: "newbies".into(),
        }
        .into(),
        Spawn {
            player: 7,
            team: Team::Blue,
            position: [1.0, 0.5, -2.0],
            loadout: vec![3, 9],
        }
        .into(),
        Leave.into(),
    ];

    let mut buf = [0u8; 1400];
    for msg in &outgoing {
        let n = msg.as_message().encode_message(&mut buf)?;
        let preview: String = buf[..n.min(16)]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!(
            "{:<5} {:>3} bytes  {preview}{}",
            msg.as_message().message_name(),
            n,
            if n > 16 { "..." } else { "" }
        );
        let decoded = factory.decode(&buf[..n])?;
        let typed = GameMsg::from_any(decoded).map_err(|m| format!("not a game message: {m:?}"))?;
        println!("      -> {}", describe(typed));
    }

    // What a peer that sends too much gets: a typed error, never a panic.
    let too_big = Spawn {
        player: 1,
        team: Team::Red,
        position: [0.0; 3],
        loadout: vec![0; 9],
    };
    println!(
        "encoding 9 loadout slots: {}",
        too_big.to_bytes().unwrap_err()
    );
    println!(
        "decoding garbage: {}",
        factory.decode(&[99, 1, 2]).unwrap_err()
    );
    Ok(())
}
