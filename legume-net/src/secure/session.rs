//! The secure mode inside a connection: the two packet keys, the 64-bit
//! sequence numbers, the replay window, and the sealed handshake packets
//! (`docs/PROTOCOL.md` 8.8).
//!
//! A native connection reaches it only through `connection::Protection`
//! (the server endpoint also builds SECURE_ACCEPT and opens challenge
//! responses here). The packets' fixed sizes and nonces come from
//! `packet::layout`.

use legume_core::Reader;

use super::protect::{extend_seq, AuthError, PacketKey, ReplayWindow};
use super::token::ConnectToken;
use crate::packet::layout::{
    ACCEPT_SEQ, DATA_HEADER_LEN, DISCONNECT_SEQ, HANDSHAKE_SESSION, MAX_REASON_LEN,
    SEALED_TOKEN_LEN, SECURE_ACCEPT_AAD_LEN, SECURE_ACCEPT_LEN, SECURE_DISCONNECT_HEADER_LEN,
    SECURE_EXTENSION_LEN, SECURE_HANDSHAKE_LEN, SECURE_RESPONSE_AAD_LEN, SECURE_RESPONSE_END,
    TAG_LEN,
};
use crate::packet::Packet;

/// Why a sealed packet was not processed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Refused {
    /// Seen before, or too old for the replay window.
    Duplicate,
    /// Failed authentication.
    Unauthenticated,
}

/// One connection's keys and counters.
pub(crate) struct SecureSession {
    send: PacketKey,
    recv: PacketKey,
    /// The 64-bit sequence number of the last DATA packet sealed.
    last_sent: Option<u64>,
    replay: ReplayWindow,
    /// Client: the sealed token it sends in its handshake.
    token: Option<Box<[u8; SEALED_TOKEN_LEN]>>,
    /// Client: the nonce sequence number of its current challenge response.
    handshake_seq: u64,
    /// Client: the challenge the current response answers.
    answering: Option<(u64, [u8; 16])>,
    /// Scratch space for opening packets.
    scratch: Vec<u8>,
}

impl SecureSession {
    /// A client's session from its token; `nonce` (random per attempt)
    /// starts its handshake sequence numbers.
    pub(crate) fn client(token: &ConnectToken, nonce: u64) -> Self {
        let mut s = Self::new(
            token.client_to_server_key().clone(),
            token.server_to_client_key().clone(),
        );
        s.token = Some(Box::new(token.sealed()));
        s.handshake_seq = nonce;
        s
    }

    /// A server's session: it sends with `send`, receives with `recv`.
    pub(crate) fn new(send: PacketKey, recv: PacketKey) -> Self {
        SecureSession {
            send,
            recv,
            last_sent: None,
            replay: ReplayWindow::new(),
            token: None,
            handshake_seq: 0,
            answering: None,
            scratch: Vec::new(),
        }
    }

    /// Client: SECURE_CONNECT_REQUEST into `buf`.
    pub(crate) fn emit_request(&self, nonce: u64, buf: &mut [u8]) -> Option<usize> {
        let token = self.token.as_deref()?;
        Packet::SecureConnectRequest { nonce, token }.emit(buf).ok()
    }

    /// Client: SECURE_CHALLENGE_RESPONSE into `buf`, the extension sealed
    /// with the client's key. A new challenge gets a new sequence number; a
    /// resend of the same one is the same bytes.
    pub(crate) fn emit_response(
        &mut self,
        nonce: u64,
        issued_at: u64,
        cookie: [u8; 16],
        extension: &[u8],
        buf: &mut [u8],
    ) -> Option<usize> {
        if self.answering != Some((issued_at, cookie)) {
            if self.answering.is_some() {
                self.handshake_seq = self.handshake_seq.wrapping_add(1);
            }
            self.answering = Some((issued_at, cookie));
        }
        let token = self.token.as_deref()?;
        if buf.len() < SECURE_HANDSHAKE_LEN || extension.len() > SECURE_EXTENSION_LEN {
            return None;
        }
        Packet::SecureChallengeResponse {
            nonce,
            seq: self.handshake_seq,
            issued_at,
            cookie,
            token,
            sealed: &[],
        }
        .emit(buf)
        .ok()?;
        let ext = &mut buf[SECURE_RESPONSE_AAD_LEN..SECURE_RESPONSE_AAD_LEN + SECURE_EXTENSION_LEN];
        ext.fill(0);
        ext[..extension.len()].copy_from_slice(extension);
        self.send.seal_packet(
            HANDSHAKE_SESSION,
            self.handshake_seq,
            buf,
            SECURE_RESPONSE_AAD_LEN,
            SECURE_RESPONSE_AAD_LEN + SECURE_EXTENSION_LEN,
        )?;
        Some(SECURE_HANDSHAKE_LEN)
    }

    /// Server: SECURE_ACCEPT, authenticated with the server's key.
    pub(crate) fn accept_packet(&self, nonce: u64, session: u32) -> Vec<u8> {
        let mut buf = vec![0u8; SECURE_ACCEPT_LEN];
        let header = Packet::SecureAccept {
            nonce,
            session,
            tag: [0; TAG_LEN],
        }
        .emit(&mut buf)
        .map(|n| n - TAG_LEN);
        if let Ok(n) = header {
            // Invariant: the buffer holds the 16-byte header and the tag.
            let _ = self.send.seal_packet(session, ACCEPT_SEQ, &mut buf, n, n);
        }
        buf
    }

    /// Client: whether a SECURE_ACCEPT is the server's.
    pub(crate) fn verify_accept(&mut self, datagram: &[u8], session: u32) -> bool {
        self.scratch.clear();
        self.scratch.extend_from_slice(datagram);
        self.recv
            .open_packet(
                session,
                ACCEPT_SEQ,
                &mut self.scratch,
                SECURE_ACCEPT_AAD_LEN,
            )
            .is_ok()
    }

    /// Seals the DATA packet `buf[..len]` (header first) in place; returns
    /// its sealed length.
    pub(crate) fn seal_data(
        &mut self,
        session: u32,
        wire_seq: u16,
        buf: &mut [u8],
        len: usize,
    ) -> Option<usize> {
        let seq = extend_seq(self.last_sent.unwrap_or(0), wire_seq);
        let n = self
            .send
            .seal_packet(session, seq, buf, DATA_HEADER_LEN, len)?;
        self.last_sent = Some(seq);
        Some(n)
    }

    /// Opens a DATA datagram: the plaintext frames, in a buffer to hand back
    /// with [`recycle`](Self::recycle). Only an authenticated packet moves
    /// the replay window.
    pub(crate) fn open_data(
        &mut self,
        session: u32,
        wire_seq: u16,
        datagram: &[u8],
    ) -> Result<Vec<u8>, Refused> {
        let seq = extend_seq(self.replay.newest().unwrap_or(0), wire_seq);
        if !self.replay.check(seq) {
            return Err(Refused::Duplicate);
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(datagram);
        match self
            .recv
            .open_packet(session, seq, &mut buf, DATA_HEADER_LEN)
        {
            Ok(n) => {
                self.replay.accept(seq);
                buf.truncate(n);
                buf.drain(..DATA_HEADER_LEN);
                Ok(buf)
            }
            Err(AuthError) => {
                self.scratch = buf;
                Err(Refused::Unauthenticated)
            }
        }
    }

    /// Gives back the buffer [`open_data`](Self::open_data) returned.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        self.scratch = buf;
    }

    /// SECURE_DISCONNECT with `reason` into `buf`; every copy is the same.
    pub(crate) fn emit_disconnect(
        &self,
        session: u32,
        reason: &str,
        buf: &mut [u8],
    ) -> Option<usize> {
        let reason = crate::packet::truncate_str(reason, MAX_REASON_LEN);
        let header = Packet::SecureDisconnect {
            session,
            sealed: &[],
        }
        .emit(buf)
        .ok()?;
        let len = header + 1 + reason.len();
        if buf.len() < len + TAG_LEN {
            return None;
        }
        // Invariant: truncate_str returned at most 255 bytes.
        buf[header] = reason.len() as u8;
        buf[header + 1..len].copy_from_slice(reason.as_bytes());
        self.send
            .seal_packet(session, DISCONNECT_SEQ, buf, header, len)
    }

    /// Opens a SECURE_DISCONNECT: its reason.
    pub(crate) fn open_disconnect(
        &mut self,
        session: u32,
        datagram: &[u8],
    ) -> Result<String, Refused> {
        self.scratch.clear();
        self.scratch.extend_from_slice(datagram);
        let n = self
            .recv
            .open_packet(
                session,
                DISCONNECT_SEQ,
                &mut self.scratch,
                SECURE_DISCONNECT_HEADER_LEN,
            )
            .map_err(|_| Refused::Unauthenticated)?;
        let mut r = Reader::new(&self.scratch[SECURE_DISCONNECT_HEADER_LEN..n]);
        let reason = r
            .read_u8()
            .ok()
            .and_then(|len| r.take(usize::from(len)).ok())
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_owned);
        // Authentic but malformed: only a broken peer sends it.
        reason.ok_or(Refused::Unauthenticated)
    }
}

/// Server: opens a SECURE_CHALLENGE_RESPONSE's extension with the client's
/// key; returns the plaintext extension.
pub(crate) fn open_response(
    client_key: &PacketKey,
    seq: u64,
    datagram: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let mut buf = datagram
        .get(..SECURE_RESPONSE_END)
        .ok_or(AuthError)?
        .to_vec();
    let n = client_key.open_packet(HANDSHAKE_SESSION, seq, &mut buf, SECURE_RESPONSE_AAD_LEN)?;
    buf.truncate(n);
    buf.drain(..SECURE_RESPONSE_AAD_LEN);
    Ok(buf)
}
