//! Packet layouts of `docs/PROTOCOL.md`: parsing and emitting whole
//! datagrams, plain and secure.
//!
//! The frames inside a DATA packet are in `frame`; every fixed number of
//! the wire format (type bytes, sizes, the secure mode's fixed nonces) is in
//! `layout`, which this module and `secure` both build on.
//!
//! # Panic contract
//!
//! Parsing never panics on any input; it returns [`PacketError`]. Emitting
//! returns an error when the buffer is too small.

mod frame;
pub(crate) mod layout;

use legume_core::{DecodeError, EncodeError, Reader, Writer};
use thiserror::Error;

use crate::Config;
// `layout` holds only wire constants; they read best unqualified here.
use layout::*;

pub(crate) use frame::{
    frame_overhead, write_fragment_header, write_message_header, write_ping,
    write_sequenced_header, write_unreliable_header, Channel, Frame, FrameKind, Frames,
};
pub(crate) use layout::{
    CHALLENGE_EXTENSION_LEN, CHANNEL_FRAGMENT_OVERHEAD, DATA_HEADER_LEN, FRAGMENT_OVERHEAD,
    HANDSHAKE_LEN, MAX_REASON_LEN,
};

/// Why a datagram was not a valid packet.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub(crate) enum PacketError {
    /// Not a legume-rs datagram.
    #[error("bad magic")]
    BadMagic,
    /// Another protocol version.
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// An unknown packet type byte.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A handshake packet not of its fixed size, or any datagram longer
    /// than [`Config::MAX_MTU`](crate::Config::MAX_MTU).
    #[error("packet has the wrong length")]
    BadLength,
    /// An unknown frame type byte.
    #[error("unknown frame type {0:#04x}")]
    UnknownFrame(u8),
    /// A fragment frame with an impossible index or count.
    #[error("invalid fragment header")]
    BadFragment,
    /// A field failed to parse.
    #[error("malformed packet: {0}")]
    Malformed(#[from] DecodeError),
}

/// The header of a DATA packet.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct DataHeader {
    pub(crate) session: u32,
    pub(crate) seq: u16,
    pub(crate) ack: u16,
    pub(crate) ack_bits: u32,
    /// In units of 10 µs.
    pub(crate) ack_delay: u16,
}

/// A parsed datagram, borrowing its variable parts from the input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Packet<'a> {
    ConnectRequest {
        protocol_id: u64,
        nonce: u64,
    },
    Challenge {
        nonce: u64,
        issued_at: u64,
        cookie: [u8; 16],
    },
    ChallengeResponse {
        protocol_id: u64,
        nonce: u64,
        issued_at: u64,
        cookie: [u8; 16],
        /// The bytes after the cookie (zero padding, or an extension such
        /// as the client's schema summary; see `handshake::SchemaExtension`).
        extension: &'a [u8],
    },
    Accept {
        nonce: u64,
        session: u32,
    },
    Reject {
        nonce: u64,
        reason: &'a str,
    },
    Data {
        header: DataHeader,
        frames: &'a [u8],
    },
    Disconnect {
        session: u32,
        reason: &'a str,
    },
    /// Secure mode: a connect request carrying the sealed token.
    SecureConnectRequest {
        nonce: u64,
        token: &'a [u8],
    },
    /// Secure mode: a challenge response sealed with the client's key over
    /// the first `SECURE_RESPONSE_AAD_LEN` bytes of the datagram.
    SecureChallengeResponse {
        nonce: u64,
        /// The sequence number of the seal's nonce (session 0).
        seq: u64,
        issued_at: u64,
        cookie: [u8; 16],
        token: &'a [u8],
        /// The encrypted extension and its tag (parse only; empty to emit).
        sealed: &'a [u8],
    },
    /// Secure mode: an ACCEPT whose tag (server key, nonce
    /// `session ‖ 2^64-1`) authenticates its first 16 bytes.
    SecureAccept {
        nonce: u64,
        session: u32,
        tag: [u8; 16],
    },
    /// Secure mode: a DISCONNECT; `sealed` is the encrypted reason (length
    /// byte and text) and its tag (parse only; empty to emit).
    SecureDisconnect {
        session: u32,
        sealed: &'a [u8],
    },
}

impl<'a> Packet<'a> {
    /// Parses a whole datagram.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, PacketError> {
        if bytes.len() > Config::MAX_MTU {
            return Err(PacketError::BadLength);
        }
        let mut r = Reader::new(bytes);
        if r.take(2)? != MAGIC {
            return Err(PacketError::BadMagic);
        }
        let version = r.read_u8()?;
        if version != VERSION {
            return Err(PacketError::BadVersion(version));
        }
        let kind = r.read_u8()?;
        let packet = if kind < TYPE_SECURE_CONNECT_REQUEST {
            Self::parse_plain(kind, bytes.len(), &mut r)?
        } else {
            Self::parse_secure(kind, bytes.len(), &mut r)?
        };
        if packet.ends_at_last_field() {
            r.finish()?;
        }
        Ok(packet)
    }

    /// The fields of a plain packet of type `kind` in a datagram of `len`
    /// bytes, after the 4-byte prefix.
    fn parse_plain(kind: u8, len: usize, r: &mut Reader<'a>) -> Result<Self, PacketError> {
        let packet = match kind {
            TYPE_CONNECT_REQUEST => {
                check_len(len, HANDSHAKE_LEN)?;
                Packet::ConnectRequest {
                    protocol_id: r.read_u64()?,
                    nonce: r.read_u64()?,
                }
            }
            TYPE_CHALLENGE => Packet::Challenge {
                nonce: r.read_u64()?,
                issued_at: r.read_u64()?,
                cookie: read_cookie(r)?,
            },
            TYPE_CHALLENGE_RESPONSE => {
                check_len(len, HANDSHAKE_LEN)?;
                Packet::ChallengeResponse {
                    protocol_id: r.read_u64()?,
                    nonce: r.read_u64()?,
                    issued_at: r.read_u64()?,
                    cookie: read_cookie(r)?,
                    extension: r.rest(),
                }
            }
            TYPE_ACCEPT => Packet::Accept {
                nonce: r.read_u64()?,
                session: r.read_u32()?,
            },
            TYPE_REJECT => Packet::Reject {
                nonce: r.read_u64()?,
                reason: read_reason(r)?,
            },
            TYPE_DATA => Packet::Data {
                header: DataHeader::read(r)?,
                frames: r.rest(),
            },
            TYPE_DISCONNECT => Packet::Disconnect {
                session: r.read_u32()?,
                reason: read_reason(r)?,
            },
            other => return Err(PacketError::UnknownType(other)),
        };
        Ok(packet)
    }

    /// The fields of a secure packet of type `kind` in a datagram of `len`
    /// bytes, after the 4-byte prefix (`docs/PROTOCOL.md` 8.8).
    fn parse_secure(kind: u8, len: usize, r: &mut Reader<'a>) -> Result<Self, PacketError> {
        let packet = match kind {
            TYPE_SECURE_CONNECT_REQUEST => {
                check_len(len, SECURE_HANDSHAKE_LEN)?;
                Packet::SecureConnectRequest {
                    nonce: r.read_u64()?,
                    token: r.take(SEALED_TOKEN_LEN)?,
                }
            }
            TYPE_SECURE_CHALLENGE_RESPONSE => {
                check_len(len, SECURE_HANDSHAKE_LEN)?;
                Packet::SecureChallengeResponse {
                    nonce: r.read_u64()?,
                    seq: r.read_u64()?,
                    issued_at: r.read_u64()?,
                    cookie: read_cookie(r)?,
                    token: r.take(SEALED_TOKEN_LEN)?,
                    sealed: r.take(SECURE_RESPONSE_END - SECURE_RESPONSE_AAD_LEN)?,
                }
            }
            TYPE_SECURE_ACCEPT => Packet::SecureAccept {
                nonce: r.read_u64()?,
                session: r.read_u32()?,
                tag: read_cookie(r)?,
            },
            TYPE_SECURE_DISCONNECT => {
                let session = r.read_u32()?;
                let sealed = r.rest();
                if sealed.len() <= TAG_LEN {
                    return Err(PacketError::BadLength);
                }
                Packet::SecureDisconnect { session, sealed }
            }
            other => return Err(PacketError::UnknownType(other)),
        };
        Ok(packet)
    }

    /// Whether the datagram must end with the packet's last field: the
    /// others end with zero padding, or with a payload that runs to the end.
    fn ends_at_last_field(&self) -> bool {
        matches!(
            self,
            Packet::Challenge { .. }
                | Packet::Accept { .. }
                | Packet::Reject { .. }
                | Packet::Disconnect { .. }
                | Packet::SecureAccept { .. }
        )
    }

    /// The packet's type byte.
    fn type_byte(&self) -> u8 {
        match self {
            Packet::ConnectRequest { .. } => TYPE_CONNECT_REQUEST,
            Packet::Challenge { .. } => TYPE_CHALLENGE,
            Packet::ChallengeResponse { .. } => TYPE_CHALLENGE_RESPONSE,
            Packet::Accept { .. } => TYPE_ACCEPT,
            Packet::Reject { .. } => TYPE_REJECT,
            Packet::Data { .. } => TYPE_DATA,
            Packet::Disconnect { .. } => TYPE_DISCONNECT,
            Packet::SecureConnectRequest { .. } => TYPE_SECURE_CONNECT_REQUEST,
            Packet::SecureChallengeResponse { .. } => TYPE_SECURE_CHALLENGE_RESPONSE,
            Packet::SecureAccept { .. } => TYPE_SECURE_ACCEPT,
            Packet::SecureDisconnect { .. } => TYPE_SECURE_DISCONNECT,
        }
    }

    /// Writes the packet (for DATA, the header only; for the sealed secure
    /// packets, everything before the sealed part) and returns its length.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(buf);
        w.put_slice(&MAGIC)?;
        w.put_u8(VERSION)?;
        w.put_u8(self.type_byte())?;
        match *self {
            Packet::ConnectRequest { protocol_id, nonce } => {
                w.put_u64(protocol_id)?;
                w.put_u64(nonce)?;
                pad_to(&mut w, HANDSHAKE_LEN)?;
            }
            Packet::Challenge {
                nonce,
                issued_at,
                cookie,
            } => {
                w.put_u64(nonce)?;
                w.put_u64(issued_at)?;
                w.put_slice(&cookie)?;
            }
            Packet::ChallengeResponse {
                protocol_id,
                nonce,
                issued_at,
                cookie,
                extension,
            } => {
                w.put_u64(protocol_id)?;
                w.put_u64(nonce)?;
                w.put_u64(issued_at)?;
                w.put_slice(&cookie)?;
                put_padded(&mut w, extension, HANDSHAKE_LEN)?;
            }
            Packet::Accept { nonce, session } => {
                w.put_u64(nonce)?;
                w.put_u32(session)?;
            }
            Packet::Reject { nonce, reason } => {
                w.put_u64(nonce)?;
                write_reason(&mut w, reason)?;
            }
            Packet::Data { header, .. } => header.write(&mut w)?,
            Packet::Disconnect { session, reason } => {
                w.put_u32(session)?;
                write_reason(&mut w, reason)?;
            }
            _ => self.emit_secure(&mut w)?,
        }
        Ok(w.position())
    }

    /// The secure packets' part of [`emit`](Self::emit): the fields in the
    /// clear. The sealing caller writes the sealed part.
    fn emit_secure(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match *self {
            Packet::SecureConnectRequest { nonce, token } => {
                w.put_u64(nonce)?;
                put_exact(w, token, SEALED_TOKEN_LEN)?;
                pad_to(w, SECURE_HANDSHAKE_LEN)
            }
            Packet::SecureChallengeResponse {
                nonce,
                seq,
                issued_at,
                cookie,
                token,
                ..
            } => {
                w.put_u64(nonce)?;
                w.put_u64(seq)?;
                w.put_u64(issued_at)?;
                w.put_slice(&cookie)?;
                put_exact(w, token, SEALED_TOKEN_LEN)?;
                pad_to(w, SECURE_HANDSHAKE_LEN)
            }
            Packet::SecureAccept {
                nonce,
                session,
                tag,
            } => {
                w.put_u64(nonce)?;
                w.put_u32(session)?;
                w.put_slice(&tag)
            }
            Packet::SecureDisconnect { session, .. } => w.put_u32(session),
            // The plain packets are written by `emit` itself.
            _ => Ok(()),
        }
    }
}

impl DataHeader {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DataHeader {
            session: r.read_u32()?,
            seq: r.read_u16()?,
            ack: r.read_u16()?,
            ack_bits: r.read_u32()?,
            ack_delay: r.read_u16()?,
        })
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u32(self.session)?;
        w.put_u16(self.seq)?;
        w.put_u16(self.ack)?;
        w.put_u32(self.ack_bits)?;
        w.put_u16(self.ack_delay)
    }
}

/// A fixed-size packet must be exactly `expected` bytes long.
fn check_len(len: usize, expected: usize) -> Result<(), PacketError> {
    if len == expected {
        Ok(())
    } else {
        Err(PacketError::BadLength)
    }
}

/// Writes `bytes`, then zeros up to `len` bytes from the packet's start;
/// `bytes` must fit.
fn put_padded(w: &mut Writer<'_>, bytes: &[u8], len: usize) -> Result<(), EncodeError> {
    if w.position() + bytes.len() > len {
        return Err(EncodeError::TooLong {
            len: bytes.len(),
            max: len - w.position(),
        });
    }
    w.put_slice(bytes)?;
    pad_to(w, len)
}

fn put_exact(w: &mut Writer<'_>, bytes: &[u8], len: usize) -> Result<(), EncodeError> {
    if bytes.len() != len {
        return Err(EncodeError::TooLong {
            len: bytes.len(),
            max: len,
        });
    }
    w.put_slice(bytes)
}

fn read_cookie(r: &mut Reader<'_>) -> Result<[u8; 16], DecodeError> {
    let mut cookie = [0u8; 16];
    cookie.copy_from_slice(r.take(16)?);
    Ok(cookie)
}

fn read_reason<'a>(r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let len = usize::from(r.read_u8()?);
    std::str::from_utf8(r.take(len)?).map_err(|_| DecodeError::InvalidUtf8)
}

/// Writes a reason, cut at a character boundary to at most 255 bytes.
fn write_reason(w: &mut Writer<'_>, reason: &str) -> Result<(), EncodeError> {
    let reason = truncate_str(reason, MAX_REASON_LEN);
    // Invariant: truncate_str returned at most 255 bytes.
    w.put_u8(reason.len() as u8)?;
    w.put_slice(reason.as_bytes())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn pad_to(w: &mut Writer<'_>, len: usize) -> Result<(), EncodeError> {
    let pad = len.saturating_sub(w.position());
    w.put_zeros(pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(p: Packet<'_>) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let n = p.emit(&mut buf).unwrap();
        assert_eq!(Packet::parse(&buf[..n]).unwrap(), p);
        buf[..n].to_vec()
    }

    #[test]
    fn handshake_packets_are_padded_and_roundtrip() {
        let req = roundtrip(Packet::ConnectRequest {
            protocol_id: 7,
            nonce: 0x0102_0304_0506_0708,
        });
        assert_eq!(req.len(), HANDSHAKE_LEN);
        assert_eq!(&req[..4], b"LG\x02\x01");
        let resp = roundtrip(Packet::ChallengeResponse {
            protocol_id: 7,
            nonce: 1,
            issued_at: 99,
            cookie: [5; 16],
            extension: &[0; CHALLENGE_EXTENSION_LEN],
        });
        assert_eq!(resp.len(), HANDSHAKE_LEN);
        assert_eq!(
            roundtrip(Packet::Challenge {
                nonce: 1,
                issued_at: 2,
                cookie: [9; 16]
            })
            .len(),
            36
        );
        assert_eq!(
            roundtrip(Packet::Accept {
                nonce: 1,
                session: 2
            })
            .len(),
            16
        );
        let reject = roundtrip(Packet::Reject {
            nonce: 1,
            reason: "server full",
        });
        assert_eq!(reject.len(), 13 + 11);
    }

    #[test]
    fn secure_packets_roundtrip() {
        let token = [7u8; SEALED_TOKEN_LEN];
        let mut buf = vec![0u8; Config::MAX_MTU];
        let n = Packet::SecureConnectRequest {
            nonce: 5,
            token: &token,
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(n, SECURE_HANDSHAKE_LEN);
        assert_eq!(&buf[..4], b"LG\x02\x08");
        assert_eq!(
            Packet::parse(&buf[..n]).unwrap(),
            Packet::SecureConnectRequest {
                nonce: 5,
                token: &token
            }
        );
        let accept = Packet::SecureAccept {
            nonce: 1,
            session: 2,
            tag: [3; TAG_LEN],
        };
        let n = accept.emit(&mut buf).unwrap();
        assert_eq!(n, SECURE_ACCEPT_LEN);
        assert_eq!(Packet::parse(&buf[..n]).unwrap(), accept);
        let n = Packet::SecureDisconnect {
            session: 9,
            sealed: &[],
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(n, SECURE_DISCONNECT_HEADER_LEN);
        assert_eq!(&buf[..n], b"LG\x02\x0B\0\0\0\x09");
    }

    #[test]
    fn replies_never_exceed_the_request() {
        let long = "é".repeat(200);
        let mut buf = [0u8; 512];
        let n = Packet::Reject {
            nonce: 1,
            reason: &long,
        }
        .emit(&mut buf)
        .unwrap();
        assert!(n <= HANDSHAKE_LEN, "{n}");
        assert!(Packet::parse(&buf[..n]).is_ok(), "cut at a char boundary");
    }

    #[test]
    fn data_header_layout() {
        let header = DataHeader {
            session: 0xAABB_CCDD,
            seq: 0x0102,
            ack: 0x0304,
            ack_bits: 0x0506_0708,
            ack_delay: 0x090A,
        };
        let mut buf = [0u8; 64];
        let n = Packet::Data {
            header,
            frames: &[],
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(n, DATA_HEADER_LEN);
        assert_eq!(
            &buf[..n],
            &[b'L', b'G', 2, 6, 0xAA, 0xBB, 0xCC, 0xDD, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        );
    }

    #[test]
    fn datagrams_over_the_largest_mtu_are_invalid() {
        // A DATA packet of ping frames, exactly as long as the largest MTU,
        // then one byte longer (what the driver hands over for a datagram
        // the kernel truncated to its receive slot).
        let mut buf = vec![FRAME_PING; Config::MAX_MTU + 1];
        let header = DataHeader {
            session: 7,
            seq: 1,
            ack: 0,
            ack_bits: 0,
            ack_delay: 0,
        };
        Packet::Data {
            header,
            frames: &[],
        }
        .emit(&mut buf)
        .unwrap();
        assert!(matches!(
            Packet::parse(&buf[..Config::MAX_MTU]),
            Ok(Packet::Data { .. })
        ));
        assert_eq!(Packet::parse(&buf), Err(PacketError::BadLength));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(Packet::parse(b"XX\x01\x06"), Err(PacketError::BadMagic));
        assert_eq!(
            Packet::parse(b"LG\x03\x06"),
            Err(PacketError::BadVersion(3))
        );
        assert_eq!(
            Packet::parse(b"LG\x02\x0C"),
            Err(PacketError::UnknownType(12))
        );
        assert_eq!(Packet::parse(b"LG\x02\x08"), Err(PacketError::BadLength));
        assert_eq!(Packet::parse(b"LG\x02\x09"), Err(PacketError::BadLength));
        assert!(Packet::parse(b"LG\x02\x0A").is_err());
        assert_eq!(
            Packet::parse(b"LG\x02\x0B\0\0\0\x01tagtagtagtagtagt"),
            Err(PacketError::BadLength),
            "a sealed disconnect needs more than a tag"
        );
        assert_eq!(Packet::parse(b"LG\x02\x01"), Err(PacketError::BadLength));
        assert!(Packet::parse(b"LG\x02\x06\0\0").is_err());
        assert!(Packet::parse(b"L").is_err());
    }
}
