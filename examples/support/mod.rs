//! What the examples share: what every `main` starts with, its arguments
//! ([`Args`]) and legume's logs on stderr ([`init_logging`]), and why a
//! client's connect failed ([`connect_failure`]). The single-file examples
//! include this module (`mod support;`); the game's binaries get `args.rs`
//! and `logging.rs` through `legume_game_protocol::cli`.

// Each example uses part of this module.
#![allow(dead_code, unused_imports)]

mod args;
mod connect;
mod logging;

pub use args::Args;
pub use connect::connect_failure;
pub use logging::init_logging;
