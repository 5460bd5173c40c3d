//! Hostile networks against the real UDP driver on loopback (127.0.0.0/8):
//! bad input thrown at a live server while honest clients exchange reliable
//! traffic, a spoofed-source connect flood, a soak of many clients, and
//! faults (a server process killed and restarted, a client that vanishes
//! halfway through a fragmented message).
//!
//! The CI versions run by default and take a few seconds in a debug build.
//! The full versions are ignored; run them in release (they take the
//! `SERIAL` lock, so they run one at a time anyway):
//!
//! ```text
//! cargo test --release --test hostile -- --ignored --nocapture bad_input_full
//! cargo test --release --test hostile -- --ignored --nocapture bad_input_blast
//! cargo test --release --test hostile -- --ignored --nocapture flood_full
//! cargo test --release --test hostile -- --ignored --nocapture soak
//! ```
//!
//! - `LEGUME_ATTACK_DATAGRAMS` (default 1,000,000), `LEGUME_ATTACK_NOTES`
//!   (reliable notes per honest client, default 2,000) and
//!   `LEGUME_ATTACK_SEED` (printed; decimal or `0x` hex) for the two
//!   `bad_input_*` runs. The seed fixes the generators, not the captured
//!   datagrams or the thread interleaving.
//! - `LEGUME_FLOOD_SECS` (default 10), `LEGUME_FLOOD_RATE` (requests per
//!   second, default 10,000) and `LEGUME_FLOOD_SEED` for `flood_full`.
//! - `LEGUME_SOAK_SECS` (default 300) and `LEGUME_SOAK_CLIENTS` (default
//!   200) for `soak`.
//!
//! Datagrams are built by hand from `docs/PROTOCOL.md`, so these tests also
//! check the document against the implementation. Every test takes the
//! `SERIAL` lock: they measure the process's memory and share two cores.
//!
//! One test binary (each file under `tests/` would be its own link in CI),
//! a module per attack family: [`bad_input`], [`flood`], [`soak`] and
//! [`faults`], on the shared [`live`] system, the [`forge`] of attack
//! datagrams and the honest [`messages`]. The hand-built wire format is
//! `common::wire` (`legume-net/tests/util/wire.rs`).

mod bad_input;
#[path = "../common/mod.rs"]
mod common;
mod faults;
mod flood;
mod forge;
mod live;
mod messages;
mod soak;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Taken by every test: they measure the process's memory and share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}
