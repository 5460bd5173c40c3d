//! A tiny connect-token service: what a game's backend does in the secure
//! mode (`docs/PROTOCOL.md` section 8), as a command line.
//!
//! ```text
//! # once: the private key the backend and the game servers share
//! cargo run --example token -- keygen > chat.key
//! # per player, after the backend has authenticated them its own way
//! cargo run --example token -- issue --key "$(cat chat.key)" \
//!     --server 127.0.0.1:40100 --client-id 7 --name ann
//! ```
//!
//! `issue` prints one connect token as base64. The player's name rides in
//! the token's user data, sealed with the private key, so the game server
//! can trust it; the `chat` example uses it:
//!
//! ```text
//! cargo run --example chat -- server --listen 127.0.0.1:40100 --key "$(cat chat.key)"
//! cargo run --example chat -- client --token "$(cargo run -q --example token -- issue ...)"
//! ```

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use legume::net::secure::USER_DATA_LEN;
use legume::net::{ConnectToken, PrivateKey, TokenParams};
use legume::prelude::*;

use support::Args;

/// The longest name the user data carries.
const MAX_NAME: usize = 32;

/// Issues a token for `client_id` named `name`, good for `servers` for
/// `lifetime`: the whole of a token service, minus authenticating the
/// player and serving HTTPS.
fn issue(
    key: &PrivateKey,
    servers: Vec<SocketAddr>,
    client_id: u64,
    name: &str,
    lifetime: Duration,
) -> Result<String, Box<dyn std::error::Error>> {
    if name.len() > MAX_NAME {
        return Err(format!("a name has at most {MAX_NAME} bytes").into());
    }
    let mut params = TokenParams::new(Config::default().protocol_id, client_id, servers);
    params.lifetime = lifetime;
    let mut user_data = [0u8; USER_DATA_LEN];
    user_data[..name.len()].copy_from_slice(name.as_bytes());
    params.user_data = user_data;
    Ok(ConnectToken::issue(key, &params)?.to_base64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::from_env();
    let usage = "usage: token keygen | token issue --key KEY --server ADDR [--server ADDR ...] \
                 --client-id N --name NAME [--lifetime SECONDS]";
    match args.command() {
        Some("keygen") => {
            println!("{}", PrivateKey::generate()?.to_base64());
            Ok(())
        }
        Some("issue") => {
            let key = args.get::<String>("--key").ok_or(usage)?;
            let key = PrivateKey::from_base64(&key).ok_or("--key is not a base64 32-byte key")?;
            let servers = args
                .all("--server")
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<SocketAddr>, _>>()?;
            let client_id = args.get::<String>("--client-id").ok_or(usage)?.parse()?;
            let name = args.get::<String>("--name").ok_or(usage)?;
            let lifetime = match args.get::<String>("--lifetime") {
                Some(s) => Duration::from_secs(s.parse()?),
                None => Duration::from_secs(60),
            };
            println!("{}", issue(&key, servers, client_id, &name, lifetime)?);
            Ok(())
        }
        _ => Err(usage.into()),
    }
}
