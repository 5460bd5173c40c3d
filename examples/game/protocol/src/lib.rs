//! The shared crate of the example game: what the client and the server
//! must agree on.
//!
//! A real game on legume-rs keeps its messages in one crate that both its
//! client and its server depend on; this is that crate for the terminal grid
//! game in `examples/game`. It holds:
//!
//! - the messages, derived with `#[derive(Message)]`, gathered in two
//!   `MessageSet` enums: [`ToServer`] (what a client sends) and [`ToClient`]
//!   (what the server sends), and the shared [`factory`];
//! - the world both sides simulate: the grid, its walls and the movement
//!   rule ([`world`]), so that a client can predict its own moves exactly;
//! - the constants of the game ([`TICK_RATE`], [`DEFAULT_PORT`], limits);
//! - the command-line flags both binaries take, network conditioner
//!   included ([`cli`]), and byte rates for people ([`rates`]).
//!
//! # Deliveries
//!
//! | message | direction | delivery | why |
//! |---|---|---|---|
//! | [`Hello`] | client → server | reliable ordered | once, before anything else |
//! | [`Input`] | client → server | unreliable, every tick | see below |
//! | [`ChatSend`] | client → server | reliable ordered | lines in the order typed |
//! | [`Welcome`], [`PlayerJoined`], [`PlayerLeft`], [`ChatLine`] | server → client | reliable ordered | events: each exactly once, and a join before that player's chat or leave |
//! | [`Snapshot`], [`SnapshotDelta`] | server → client | channel 3 ([`SNAPSHOT_CHANNEL`]): unreliable with delivery feedback, every tick | the next one replaces a lost one; stale ones are dropped by tick; a delta is against the newest snapshot the client acknowledged ([`delta`]) |
//!
//! Inputs are moves, numbered from 1. A client sends every move the server
//! has not yet applied ([`Snapshot`] carries each player's last applied
//! move) in one unreliable message per tick. A lost input message costs one
//! tick (33 ms), not a retransmission timeout (an RTT and more) as it would
//! on a reliable channel, and a late one never holds back newer moves
//! (no head-of-line blocking). The server applies each move once, by its
//! number, so duplicates and reordering are harmless. This is the usual
//! redundant-input scheme of action games, and it lets the client show its
//! own moves at once (prediction) and replay the unapplied ones over each
//! snapshot (reconciliation).
//!
//! ```
//! use legume::prelude::*;
//! use legume_game_protocol::{factory, Dir, Input, ToServer};
//!
//! let factory = factory()?;
//! let bytes = Input { first_seq: 7, moves: vec![Dir::Up, Dir::Left] }.to_bytes()?;
//! match ToServer::from_any(factory.decode(&bytes)?) {
//!     Ok(ToServer::Input(input)) => assert_eq!(input.moves.len(), 2),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, unreachable_pub)]

use std::sync::Arc;

use legume::prelude::*;

// The helpers every example's `main` uses, shared with the single-file
// examples (re-exported by `cli`).
#[path = "../../../support/args.rs"]
mod args;
pub mod cli;
pub mod delta;
#[path = "../../../support/logging.rs"]
mod logging;
pub mod rates;
pub mod world;

pub use world::{Dir, Pos};

/// A player's number, given by the server; 0 is never used.
pub type PlayerId = u16;

/// Simulation ticks per second, on the server; snapshots go out every tick,
/// and clients send their inputs at the same rate.
pub const TICK_RATE: u32 = 30;

/// The UDP port the server listens on and the client connects to by default.
pub const DEFAULT_PORT: u16 = 40200;

/// `Config::protocol_id` of this game, version 2 (delta snapshots): a
/// server drops connect requests with another id. Change it whenever a
/// message changes, so that an old client cannot join a new server.
pub const PROTOCOL_ID: u64 = 0x6C65_6775_6D65_0002;

/// The channel snapshots travel on: unreliable, with delivery feedback, so
/// that the server learns which snapshots each client has.
pub const SNAPSHOT_CHANNEL: ChannelId = ChannelId(3);

/// The game's channels: legume's default three (unreliable inputs,
/// reliable-ordered events) and [`SNAPSHOT_CHANNEL`]. Both sides must use
/// this list.
pub fn channels() -> Vec<ChannelConfig> {
    let mut channels = ChannelConfig::defaults();
    channels.push(ChannelConfig {
        feedback: true,
        ..ChannelConfig::new(ChannelKind::Unreliable)
    });
    channels
}

/// The game's connection config: [`PROTOCOL_ID`] and [`channels`], the
/// rest legume's defaults.
pub fn net_config() -> Config {
    Config {
        protocol_id: PROTOCOL_ID,
        channels: channels(),
        ..Config::default()
    }
}

/// The most players a server takes; a snapshot of this many fits in one packet.
pub const MAX_PLAYERS: usize = 64;

/// The longest player name, in bytes.
pub const MAX_NAME_LEN: usize = 16;

/// The longest chat line, in bytes.
pub const MAX_CHAT_LEN: usize = 200;

/// The most moves in one [`Input`]; a client does not queue more unapplied moves.
pub const MAX_PENDING_MOVES: usize = 32;

/// The most queued moves a server applies for one player in one tick
/// (a speed limit of 120 cells a second).
pub const MOVES_PER_TICK: usize = 4;

/// A player as events name it.
#[derive(Clone, Debug, PartialEq, Eq, Codec)]
pub struct PlayerInfo {
    /// The player's id.
    pub id: PlayerId,
    /// The player's name, as the server accepted it.
    #[field(max_len = 16)]
    pub name: String,
}

/// A player in a [`Snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Codec)]
pub struct PlayerState {
    /// The player's id.
    pub id: PlayerId,
    /// Where the player is.
    pub pos: Pos,
    /// The number of the player's last move the server applied (0: none).
    pub last_move: u32,
}

/// Client → server, once connected: the player's name. Reliable ordered.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 40)]
pub struct Hello {
    /// The wanted name; the server strips control characters and shortens it.
    #[field(max_len = 16)]
    pub name: String,
}

/// Client → server, every tick while moves are unapplied: moves numbered
/// `first_seq`, `first_seq + 1`, ... Unreliable.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 41)]
pub struct Input {
    /// The number of the first move.
    pub first_seq: u32,
    /// The moves, oldest first.
    #[field(max_len = 32)]
    pub moves: Vec<Dir>,
}

/// Client → server: a chat line. Reliable ordered.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 42)]
pub struct ChatSend {
    /// The sender's number for this line, unique per sender (from 1).
    pub chat_id: u32,
    /// The text.
    #[field(max_len = 200)]
    pub text: String,
}

/// Server → client, after [`Hello`]: who you are and who is here. Reliable ordered.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 43)]
pub struct Welcome {
    /// Your player id.
    pub your_id: PlayerId,
    /// Your name as the server accepted it.
    #[field(max_len = 16)]
    pub your_name: String,
    /// The server's tick rate.
    pub tick_rate: u8,
    /// The players already in the game.
    #[field(max_len = 64)]
    pub players: Vec<PlayerInfo>,
}

/// Server → clients: a player joined. Reliable ordered.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 44)]
pub struct PlayerJoined {
    /// Who.
    pub player: PlayerInfo,
}

/// Server → clients: a player left. Reliable ordered.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 45)]
pub struct PlayerLeft {
    /// Who.
    pub id: PlayerId,
    /// Why, for people ("quit", "timed out").
    #[field(max_len = 64)]
    pub reason: String,
}

/// Server → clients, every tick: where everyone is. Unreliable.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 46)]
pub struct Snapshot {
    /// The server tick it was taken at; a client drops snapshots older than one it has.
    pub tick: u32,
    /// Every player.
    #[field(max_len = 64)]
    pub players: Vec<PlayerState>,
}

/// Server → client, every tick once the client has acknowledged a
/// snapshot: what changed since the snapshot of `base_tick` (see
/// [`delta`]). Unreliable, on [`SNAPSHOT_CHANNEL`].
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 48)]
pub struct SnapshotDelta {
    /// The server tick it describes.
    pub tick: u32,
    /// The tick of the snapshot it is relative to, one the client acknowledged.
    pub base_tick: u32,
    /// The players that are new or changed since the base.
    #[field(max_len = 64)]
    pub changed: Vec<PlayerState>,
    /// The players gone since the base.
    #[field(max_len = 64)]
    pub removed: Vec<PlayerId>,
}

/// Server → clients: a chat line, relayed to every player, the sender included.
/// Reliable ordered.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[message(id = 47)]
pub struct ChatLine {
    /// The sender's player id.
    pub from: PlayerId,
    /// The sender's number for the line ([`ChatSend::chat_id`]).
    pub chat_id: u32,
    /// The text, control characters removed.
    #[field(max_len = 200)]
    pub text: String,
}

/// Every message a client sends.
#[derive(Debug, MessageSet)]
pub enum ToServer {
    /// [`Hello`].
    Hello(Hello),
    /// [`Input`].
    Input(Input),
    /// [`ChatSend`].
    ChatSend(ChatSend),
}

/// Every message the server sends.
#[derive(Debug, MessageSet)]
pub enum ToClient {
    /// [`Welcome`].
    Welcome(Welcome),
    /// [`PlayerJoined`].
    PlayerJoined(PlayerJoined),
    /// [`PlayerLeft`].
    PlayerLeft(PlayerLeft),
    /// [`Snapshot`].
    Snapshot(Snapshot),
    /// [`SnapshotDelta`].
    SnapshotDelta(SnapshotDelta),
    /// [`ChatLine`].
    ChatLine(ChatLine),
}

/// The factory of the game's messages, both directions, shared by every
/// client and server of a process.
pub fn factory() -> Result<Arc<MessageFactory>, RegistryError> {
    let mut factory = ToServer::factory()?;
    factory.merge(&ToClient::factory()?)?;
    Ok(Arc::new(factory))
}

/// `text` with control characters (terminal escapes among them) removed
/// and cut to at most `max` bytes on a character boundary. The server
/// applies it to names and chat, and the client to everything it prints.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_snapshot_fits_in_one_packet() {
        let snap = Snapshot {
            tick: u32::MAX,
            players: vec![
                PlayerState {
                    id: u16::MAX,
                    pos: Pos { x: 1, y: 1 },
                    last_move: u32::MAX,
                };
                MAX_PLAYERS
            ],
        };
        let len = snap.to_bytes().unwrap().len();
        assert!(
            len < 1200,
            "snapshot of {MAX_PLAYERS} players is {len} bytes"
        );
    }

    #[test]
    fn limits_match_the_field_attributes() {
        let long = Hello {
            name: "x".repeat(MAX_NAME_LEN + 1),
        };
        assert!(long.to_bytes().is_err());
        let input = Input {
            first_seq: 1,
            moves: vec![Dir::Up; MAX_PENDING_MOVES + 1],
        };
        assert!(input.to_bytes().is_err());
        let chat = ChatSend {
            chat_id: 1,
            text: "y".repeat(MAX_CHAT_LEN + 1),
        };
        assert!(chat.to_bytes().is_err());
    }

    #[test]
    fn sets_round_trip_through_the_factory() {
        let f = factory().unwrap();
        let bytes = ChatLine {
            from: 3,
            chat_id: 9,
            text: "hi".into(),
        }
        .to_bytes()
        .unwrap();
        match ToClient::from_any(f.decode(&bytes).unwrap()) {
            Ok(ToClient::ChatLine(c)) => {
                assert_eq!((c.from, c.chat_id, c.text.as_str()), (3, 9, "hi"))
            }
            other => panic!("{other:?}"),
        }
        let bytes = Hello { name: "ann".into() }.to_bytes().unwrap();
        assert!(ToClient::from_any(f.decode(&bytes).unwrap()).is_err());
    }

    #[test]
    fn sanitize_strips_escapes_and_cuts_on_char_boundaries() {
        assert_eq!(sanitize("a\x1b[2Jb\nc", 100), "a[2Jbc");
        assert_eq!(sanitize("héllo", 2), "h");
        assert_eq!(sanitize("héllo", 3), "hé");
    }
}
