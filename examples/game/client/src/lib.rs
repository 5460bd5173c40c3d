//! The example game's client: a terminal UI and a headless bot, over one
//! [`GameSession`](session::GameSession).
//!
//! - [`session`]: the connection to the game server and the world as this
//!   client knows it: players, names, chat, and this player's unapplied
//!   moves, replayed over each snapshot (client-side prediction);
//! - [`ui`]: the terminal client of `game-client` (crossterm);
//! - [`bot`]: the scripted player of `game-client --bot`, also run in
//!   threads by `game-server --bots N` and `--demo` and by the tests, and
//!   [`verify`](bot::verify), the checks over what a group of bots saw.
//!
//! ```text
//! cargo run -p legume-game-server                   # terminal 1
//! cargo run -p legume-game-client -- --name ann     # terminal 2, 3, ...
//! cargo run -p legume-game-client -- --loss 0.1 --latency-ms 100
//! cargo run -p legume-game-client -- --bot --seconds 20
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod bot;
pub mod session;
pub mod ui;
