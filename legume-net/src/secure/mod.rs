//! Building blocks of the secure mode: connect tokens and packet protection.
//!
//! The model is netcode.io's. A backend (a matchmaker or web service) and
//! the game servers share a [`PrivateKey`]. The backend issues a
//! [`ConnectToken`] to a client it has authenticated its own way; the token
//! names the servers the client may join, expires, and carries two fresh
//! [`PacketKey`]s (client-to-server and server-to-client) twice: in the clear
//! for the client, and sealed with the private key, together with the
//! client id and app user data, for the server. A game server opens the
//! sealed part with [`open_private_token`] and so learns who the client is
//! and which keys to use, without ever talking to the backend.
//!
//! After the handshake every packet is sealed with the sender's
//! [`PacketKey`]: ChaCha20-Poly1305 (RFC 8439) with the packet sequence
//! number, extended to 64 bits by [`extend_seq`], as the nonce and the
//! packet header as associated data. A [`ReplayWindow`] refuses a packet
//! seen before or too old to tell.
//!
//! The primitives come from the RustCrypto `chacha20poly1305` crate
//! (XChaCha20-Poly1305 for tokens, whose random 24-byte nonces cannot
//! collide; ChaCha20-Poly1305 for packets, whose nonces are counters), and
//! randomness from the operating system through `getrandom`. Nothing here
//! implements a cipher, a MAC or a tag comparison itself: tags are checked
//! in constant time by the crate.
//!
//! Every byte layout, with known-answer values, is in `docs/PROTOCOL.md`,
//! section 8. The fixed sizes and nonces of the secure packets live with
//! the other wire constants in `packet::layout`, which this module builds
//! on (and which never imports it back).

mod key;
mod protect;
pub(crate) mod session;
pub(crate) mod token;

pub(crate) use key::random_bytes;
pub use key::{PrivateKey, RandomError, KEY_LEN};
pub use protect::{extend_seq, AuthError, PacketKey, ReplayWindow, REPLAY_WINDOW, TAG_LEN};
pub use token::{
    open_private_token, ConnectToken, IssueError, PrivateToken, TokenError, TokenParams,
    CONNECT_TOKEN_LEN, MAX_SERVER_ADDRESSES, SEALED_TOKEN_LEN, TOKEN_VERSION, USER_DATA_LEN,
};

// The packet layout sizes the token field of the secure handshake packets
// without importing the token module: the two must agree.
const _: () = assert!(SEALED_TOKEN_LEN == crate::packet::layout::SEALED_TOKEN_LEN);

#[cfg(test)]
mod kat;
