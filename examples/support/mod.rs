//! What every example's `main` starts with: its arguments ([`Args`]) and
//! legume's logs on stderr ([`init_logging`]). The single-file examples
//! include this module (`mod support;`); the game's binaries get the same
//! two files through `legume_game_protocol::cli`.

// Each example uses part of this module.
#![allow(dead_code, unused_imports)]

mod args;
mod logging;

pub use args::Args;
pub use logging::init_logging;
