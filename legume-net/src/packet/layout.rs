//! Every fixed number of the wire format, the plain and the secure mode
//! alike: magic, version, type bytes, sizes, offsets and the secure mode's
//! fixed nonces (`docs/PROTOCOL.md` sections 2, 3 and 8.8).
//!
//! It imports nothing from the crate, so the packet parser and the secure
//! mode's sealing code both build on it without importing each other:
//! `packet` never imports `secure`, and `secure` imports `packet`.

/// The first two bytes of every datagram.
pub(crate) const MAGIC: [u8; 2] = *b"LG";
/// The protocol version in byte 2.
pub(crate) const VERSION: u8 = 2;
/// The padded size of the client's handshake packets.
pub(crate) const HANDSHAKE_LEN: usize = 300;
/// Bytes after the cookie in a CHALLENGE_RESPONSE.
pub(crate) const CHALLENGE_EXTENSION_LEN: usize = HANDSHAKE_LEN - 44;
/// The size of a DATA packet's header.
pub(crate) const DATA_HEADER_LEN: usize = 18;
/// The most bytes of a reason string (REJECT, DISCONNECT).
pub(crate) const MAX_REASON_LEN: usize = 255;
/// The frame overhead of a short fragment frame: type, id, index, count, a
/// 2-byte length.
pub(crate) const FRAGMENT_OVERHEAD: usize = 9;
/// The frame overhead of a CHANNEL_FRAGMENT: a channel byte more.
pub(crate) const CHANNEL_FRAGMENT_OVERHEAD: usize = 10;

// Packet type bytes (byte 3).
pub(super) const TYPE_CONNECT_REQUEST: u8 = 0x01;
pub(super) const TYPE_CHALLENGE: u8 = 0x02;
pub(super) const TYPE_CHALLENGE_RESPONSE: u8 = 0x03;
pub(super) const TYPE_ACCEPT: u8 = 0x04;
pub(super) const TYPE_REJECT: u8 = 0x05;
pub(super) const TYPE_DATA: u8 = 0x06;
pub(super) const TYPE_DISCONNECT: u8 = 0x07;
pub(super) const TYPE_SECURE_CONNECT_REQUEST: u8 = 0x08;
pub(super) const TYPE_SECURE_CHALLENGE_RESPONSE: u8 = 0x09;
pub(super) const TYPE_SECURE_ACCEPT: u8 = 0x0A;
pub(super) const TYPE_SECURE_DISCONNECT: u8 = 0x0B;

// Frame type bytes (the first byte of each frame of a DATA packet).
pub(super) const FRAME_PING: u8 = 0x01;
pub(super) const FRAME_UNRELIABLE: u8 = 0x02;
pub(super) const FRAME_RELIABLE: u8 = 0x03;
pub(super) const FRAME_ORDERED: u8 = 0x04;
pub(super) const FRAME_RELIABLE_FRAGMENT: u8 = 0x05;
pub(super) const FRAME_ORDERED_FRAGMENT: u8 = 0x06;
pub(super) const FRAME_CHANNEL_UNRELIABLE: u8 = 0x07;
pub(super) const FRAME_SEQUENCED: u8 = 0x08;
pub(super) const FRAME_CHANNEL_MESSAGE: u8 = 0x09;
pub(super) const FRAME_CHANNEL_FRAGMENT: u8 = 0x0A;

// The secure mode (`docs/PROTOCOL.md` 8.2 and 8.8).

/// The size of a Poly1305 authentication tag, in bytes.
pub const TAG_LEN: usize = 16;
/// The sealed part of a connect token (token bytes 0..576, which the client
/// sends in its secure handshake): header, nonce, encrypted private token
/// and its tag. The `secure` module asserts at compile time that the
/// token layout it defines adds up to it.
pub(crate) const SEALED_TOKEN_LEN: usize = 24 + 24 + 512 + TAG_LEN;
/// The padded size of the client's secure handshake packets.
pub(crate) const SECURE_HANDSHAKE_LEN: usize = 1200;
/// SECURE_CHALLENGE_RESPONSE: where the encrypted extension starts (the end
/// of the associated data).
pub(crate) const SECURE_RESPONSE_AAD_LEN: usize = 44 + SEALED_TOKEN_LEN;
/// SECURE_CHALLENGE_RESPONSE: the extension's size (encrypted, zero-padded).
pub(crate) const SECURE_EXTENSION_LEN: usize = 256;
/// SECURE_CHALLENGE_RESPONSE: the end of the extension's tag.
pub(crate) const SECURE_RESPONSE_END: usize =
    SECURE_RESPONSE_AAD_LEN + SECURE_EXTENSION_LEN + TAG_LEN;
/// The size of a SECURE_ACCEPT: prefix, nonce, session, tag.
pub(crate) const SECURE_ACCEPT_LEN: usize = 32;
/// The authenticated header of a SECURE_ACCEPT: everything before the tag.
pub(crate) const SECURE_ACCEPT_AAD_LEN: usize = SECURE_ACCEPT_LEN - TAG_LEN;
/// The authenticated header of a SECURE_DISCONNECT: prefix, session.
pub(crate) const SECURE_DISCONNECT_HEADER_LEN: usize = 8;
/// The session part of the nonce of the client's sealed handshake packet;
/// connections use their session id, which is never 0.
pub(crate) const HANDSHAKE_SESSION: u32 = 0;
/// The sequence part of a SECURE_ACCEPT's nonce (DATA never reaches it).
pub(crate) const ACCEPT_SEQ: u64 = u64::MAX;
/// The sequence part of a SECURE_DISCONNECT's nonce.
pub(crate) const DISCONNECT_SEQ: u64 = u64::MAX - 1;
