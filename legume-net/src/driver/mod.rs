//! The UDP driver: `Client` and `Server` run the sans-IO core over a real
//! non-blocking socket (socket2). All protocol logic is in the core; this
//! layer only moves datagrams and reads the clock.

mod batch;
mod client;
mod impairment;
#[cfg(target_os = "linux")]
mod mmsg;
mod server;
mod socket;

pub use client::{Client, ConnectError};
pub use server::{ListenError, Server};
pub use socket::{BufferSizes, SocketStats};
