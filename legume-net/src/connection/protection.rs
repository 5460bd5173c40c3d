//! Packet protection for a native connection: the one seam between the
//! plain mode (`docs/PROTOCOL.md` section 2) and the secure mode (section 8).
//!
//! The native connection sends and receives the same kinds of packets in
//! both modes and hands every step that differs to [`Protection`]: writing
//! the handshake and DISCONNECT packets, sealing and opening DATA, and
//! checking ACCEPT and DISCONNECT. In the plain mode each step writes or
//! reads a plain packet and DATA passes through unchanged; in the secure
//! mode each is a [`SecureSession`] call. Reading the plain arms alone gives
//! the plain protocol.

use std::borrow::Cow;

use crate::event::Stats;
use crate::packet::layout::TAG_LEN;
use crate::packet::{DataHeader, Packet};
use crate::secure::session::{Refused, SecureSession};

/// How a native connection protects its packets.
pub(crate) enum Protection {
    /// Nothing is sealed: the plain packets, with the app's protocol id in
    /// the handshake.
    Plain { protocol_id: u64 },
    /// The secure mode: the connection's keys and counters. Boxed, as it is
    /// large and the plain mode is the common one.
    Sealed(Box<SecureSession>),
}

/// Why a received packet was dropped before the connection acted on it.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Dropped {
    /// A packet of the other mode, or an authentic one that is malformed.
    Invalid,
    /// Seen before, or too old for the replay window.
    Duplicate,
    /// Failed authentication.
    Unauthenticated,
}

impl Dropped {
    /// Counts the drop in the connection's metrics.
    pub(crate) fn count(self, stats: &mut Stats) {
        match self {
            Dropped::Invalid => stats.dropped_invalid += 1,
            Dropped::Duplicate => stats.dropped_duplicate += 1,
            Dropped::Unauthenticated => stats.dropped_unauthenticated += 1,
        }
    }
}

impl From<Refused> for Dropped {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Duplicate => Dropped::Duplicate,
            Refused::Unauthenticated => Dropped::Unauthenticated,
        }
    }
}

impl Protection {
    /// The plain mode for `protocol_id`, or the secure mode with `session`.
    pub(crate) fn new(protocol_id: u64, session: Option<Box<SecureSession>>) -> Self {
        match session {
            Some(s) => Protection::Sealed(s),
            None => Protection::Plain { protocol_id },
        }
    }

    /// Whether packets are sealed (the secure mode).
    pub(crate) fn is_sealed(&self) -> bool {
        matches!(self, Protection::Sealed(_))
    }

    /// Bytes every DATA packet carries past its frames: the tag, if sealed.
    pub(crate) fn overhead(&self) -> usize {
        match self {
            Protection::Plain { .. } => 0,
            Protection::Sealed(_) => TAG_LEN,
        }
    }

    /// Server, secure mode: the SECURE_ACCEPT for this connection (the
    /// plain ACCEPT is the endpoint's to write).
    pub(crate) fn accept_packet(&self, nonce: u64, session: u32) -> Option<Vec<u8>> {
        match self {
            Protection::Plain { .. } => None,
            Protection::Sealed(s) => Some(s.accept_packet(nonce, session)),
        }
    }

    /// Client: the connect request, or the response to `challenge` (issued
    /// at, cookie) carrying `extension`, into `buf`.
    pub(crate) fn emit_handshake(
        &mut self,
        nonce: u64,
        challenge: Option<(u64, [u8; 16])>,
        extension: &[u8],
        buf: &mut [u8],
    ) -> Option<usize> {
        match self {
            Protection::Plain { protocol_id } => {
                let protocol_id = *protocol_id;
                let packet = match challenge {
                    None => Packet::ConnectRequest { protocol_id, nonce },
                    Some((issued_at, cookie)) => Packet::ChallengeResponse {
                        protocol_id,
                        nonce,
                        issued_at,
                        cookie,
                        extension,
                    },
                };
                packet.emit(buf).ok()
            }
            Protection::Sealed(s) => match challenge {
                None => s.emit_request(nonce, buf),
                Some((issued_at, cookie)) => {
                    s.emit_response(nonce, issued_at, cookie, extension, buf)
                }
            },
        }
    }

    /// A DISCONNECT with `reason` into `buf`; every copy is the same.
    pub(crate) fn emit_disconnect(
        &self,
        session: u32,
        reason: &str,
        buf: &mut [u8],
    ) -> Option<usize> {
        match self {
            Protection::Plain { .. } => Packet::Disconnect { session, reason }.emit(buf).ok(),
            Protection::Sealed(s) => s.emit_disconnect(session, reason, buf),
        }
    }

    /// Seals the DATA packet `buf[..len]` (header first, room for the
    /// overhead after it) in place; returns its length on the wire.
    pub(crate) fn seal_data(
        &mut self,
        session: u32,
        seq: u16,
        buf: &mut [u8],
        len: usize,
    ) -> Option<usize> {
        match self {
            Protection::Plain { .. } => Some(len),
            Protection::Sealed(s) => s.seal_data(session, seq, buf, len),
        }
    }

    /// The plaintext frames of a DATA `datagram` whose header and (still
    /// sealed, in the secure mode) frames were parsed as `header` and
    /// `frames`. Hand them back with [`recycle`](Self::recycle).
    pub(crate) fn open_data<'a>(
        &mut self,
        header: DataHeader,
        datagram: &'a [u8],
        frames: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, Dropped> {
        match self {
            Protection::Plain { .. } => Ok(Cow::Borrowed(frames)),
            Protection::Sealed(s) => Ok(Cow::Owned(s.open_data(
                header.session,
                header.seq,
                datagram,
            )?)),
        }
    }

    /// Takes back the frames [`open_data`](Self::open_data) returned, to
    /// reuse their buffer.
    pub(crate) fn recycle(&mut self, frames: Cow<'_, [u8]>) {
        if let (Protection::Sealed(s), Cow::Owned(buf)) = (self, frames) {
            s.recycle(buf);
        }
    }

    /// Client: the session id of an ACCEPT `packet` (parsed from
    /// `datagram`) of this connection's mode, if authentic.
    pub(crate) fn open_accept(
        &mut self,
        packet: &Packet<'_>,
        datagram: &[u8],
    ) -> Result<u32, Dropped> {
        match (self, packet) {
            (Protection::Plain { .. }, Packet::Accept { session, .. }) => Ok(*session),
            (Protection::Sealed(s), Packet::SecureAccept { session, .. }) => {
                if s.verify_accept(datagram, *session) && *session != 0 {
                    Ok(*session)
                } else {
                    Err(Dropped::Unauthenticated)
                }
            }
            _ => Err(Dropped::Invalid),
        }
    }

    /// The reason of a DISCONNECT `packet` (parsed from `datagram`) of this
    /// connection's mode, if authentic.
    pub(crate) fn open_disconnect(
        &mut self,
        packet: &Packet<'_>,
        datagram: &[u8],
    ) -> Result<String, Dropped> {
        match (self, packet) {
            (Protection::Plain { .. }, Packet::Disconnect { reason, .. }) => {
                Ok((*reason).to_owned())
            }
            (Protection::Sealed(s), Packet::SecureDisconnect { session, .. }) => s
                .open_disconnect(*session, datagram)
                .map_err(|_| Dropped::Unauthenticated),
            _ => Err(Dropped::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::DATA_HEADER_LEN;
    use crate::secure::PacketKey;

    const HEADER: DataHeader = DataHeader {
        session: 7,
        seq: 1,
        ack: 0,
        ack_bits: 0,
        ack_delay: 0,
    };

    /// A DATA packet with `frames` written and protected by `p`.
    fn data_packet(p: &mut Protection, frames: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let header = Packet::Data {
            header: HEADER,
            frames: &[],
        };
        let n = header.emit(&mut buf).unwrap();
        buf[n..n + frames.len()].copy_from_slice(frames);
        let len = p.seal_data(HEADER.session, HEADER.seq, &mut buf, n + frames.len());
        buf.truncate(len.unwrap());
        buf
    }

    fn open(p: &mut Protection, datagram: &[u8]) -> Result<Vec<u8>, Dropped> {
        let frames = p.open_data(HEADER, datagram, &datagram[DATA_HEADER_LEN..])?;
        let plain = frames.to_vec();
        p.recycle(frames);
        Ok(plain)
    }

    fn sealed_pair() -> (Protection, Protection) {
        let (k1, k2) = (
            PacketKey::from_bytes([1; 32]),
            PacketKey::from_bytes([2; 32]),
        );
        let a = SecureSession::new(k1.clone(), k2.clone());
        let b = SecureSession::new(k2, k1);
        (
            Protection::new(0, Some(Box::new(a))),
            Protection::new(0, Some(Box::new(b))),
        )
    }

    #[test]
    fn plain_data_passes_through() {
        let mut p = Protection::new(7, None);
        assert!(!p.is_sealed());
        assert_eq!(p.overhead(), 0);
        let datagram = data_packet(&mut p, &[1, 2, 3]);
        assert_eq!(datagram.len(), DATA_HEADER_LEN + 3);
        assert_eq!(open(&mut p, &datagram), Ok(vec![1, 2, 3]));
    }

    #[test]
    fn sealed_data_opens_once_on_the_other_side() {
        let (mut a, mut b) = sealed_pair();
        assert_eq!(a.overhead(), TAG_LEN);
        let datagram = data_packet(&mut a, &[1, 2, 3]);
        assert_eq!(datagram.len(), DATA_HEADER_LEN + 3 + TAG_LEN);
        assert_ne!(&datagram[DATA_HEADER_LEN..DATA_HEADER_LEN + 3], &[1, 2, 3]);
        assert_eq!(open(&mut a, &datagram), Err(Dropped::Unauthenticated));
        assert_eq!(open(&mut b, &datagram), Ok(vec![1, 2, 3]));
        assert_eq!(open(&mut b, &datagram), Err(Dropped::Duplicate));
    }

    #[test]
    fn packets_of_the_other_mode_are_invalid() {
        let (mut sealed, _) = sealed_pair();
        let mut plain = Protection::new(7, None);
        let accept = Packet::Accept {
            nonce: 1,
            session: 2,
        };
        let disconnect = Packet::Disconnect {
            session: 2,
            reason: "bye",
        };
        assert_eq!(plain.open_accept(&accept, &[]), Ok(2));
        assert_eq!(sealed.open_accept(&accept, &[]), Err(Dropped::Invalid));
        assert_eq!(plain.open_disconnect(&disconnect, &[]), Ok("bye".into()));
        assert_eq!(
            sealed.open_disconnect(&disconnect, &[]),
            Err(Dropped::Invalid)
        );
        let secure_accept = Packet::SecureAccept {
            nonce: 1,
            session: 2,
            tag: [0; TAG_LEN],
        };
        assert_eq!(
            plain.open_accept(&secure_accept, &[]),
            Err(Dropped::Invalid)
        );
    }

    #[test]
    fn a_sealed_disconnect_opens_with_its_reason() {
        let (a, mut b) = sealed_pair();
        let mut buf = [0u8; 64];
        let n = a.emit_disconnect(9, "bye", &mut buf).unwrap();
        let packet = Packet::parse(&buf[..n]).unwrap();
        assert_eq!(b.open_disconnect(&packet, &buf[..n]), Ok("bye".into()));
        buf[n - 1] ^= 1;
        let packet = Packet::parse(&buf[..n]).unwrap();
        assert_eq!(
            b.open_disconnect(&packet, &buf[..n]),
            Err(Dropped::Unauthenticated)
        );
    }
}
