//! The secure handshake (`docs/PROTOCOL.md` 8.8) of a client with no
//! connection yet: a connect token, opened with the endpoint's private key,
//! says who the client is and which keys its connection uses; the cookie
//! exchange binds the token's id; a token already in use from another
//! address is refused.

use std::net::SocketAddr;
use std::time::Instant;

use crate::packet::{Packet, PacketError};
use crate::secure::session::{open_response, SecureSession};
use crate::secure::token::SealedToken;
use crate::secure::{open_private_token, PrivateKey, PrivateToken, TokenError};

use super::guards::UsedTokens;
use super::ServerEndpoint;

/// The secure mode of an endpoint.
pub(super) struct ServerSecurity {
    key: PrivateKey,
    /// The address clients' tokens must name.
    addr: SocketAddr,
    /// Seconds since the Unix epoch at the endpoint's epoch.
    unix_at_epoch: u64,
    tokens: UsedTokens,
}

impl ServerSecurity {
    /// Admits tokens sealed with `key` that name `addr`; `unix_at_epoch` is
    /// the wall-clock time at the endpoint's epoch, for their expiry.
    pub(super) fn new(key: PrivateKey, addr: SocketAddr, unix_at_epoch: u64) -> Self {
        ServerSecurity {
            key,
            addr,
            unix_at_epoch,
            tokens: UsedTokens::default(),
        }
    }
}

/// What the endpoint checks in a SECURE_CHALLENGE_RESPONSE.
struct Response<'a> {
    nonce: u64,
    /// The sequence number of the seal's nonce.
    seq: u64,
    issued_at: u64,
    cookie: [u8; 16],
    token: SealedToken<'a>,
    /// The whole datagram, which the seal covers.
    datagram: &'a [u8],
}

impl ServerEndpoint {
    /// One datagram from an address with no connection, in the secure mode.
    pub(super) fn handle_secure_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: Result<Packet<'_>, PacketError>,
        datagram: &[u8],
    ) {
        match packet {
            Ok(Packet::SecureConnectRequest { nonce, token }) => {
                match self.open_token(now, from, token) {
                    Ok(private) => self.challenge(now, from, nonce, &private.token_id()),
                    Err(refusal) => self.refuse_token(now, from, nonce, refusal),
                }
            }
            Ok(Packet::SecureChallengeResponse {
                nonce,
                seq,
                issued_at,
                cookie,
                token,
                ..
            }) => match SealedToken::new(token) {
                Some(token) => {
                    let response = Response {
                        nonce,
                        seq,
                        issued_at,
                        cookie,
                        token,
                        datagram,
                    };
                    self.handle_secure_response(now, from, &response);
                }
                // Not reached: the packet layer parses exactly
                // SEALED_TOKEN_LEN token bytes.
                None => self.stats.dropped_invalid += 1,
            },
            Ok(Packet::ConnectRequest { protocol_id, nonce })
                if protocol_id == self.config.protocol_id =>
            {
                self.stats.rejected += 1;
                let reason = "this server requires a connect token";
                self.reply(now, from, &Packet::Reject { nonce, reason });
            }
            _ => self.stats.dropped_invalid += 1,
        }
    }

    /// A challenge response: the cookie first, then the token, then the
    /// seal over the response, then the replay table.
    fn handle_secure_response(&mut self, now: Instant, from: SocketAddr, r: &Response<'_>) {
        // The cookie binds the token's id, its tag: checked before any
        // decryption.
        let token_id = r.token.id();
        if !self.cookie_is_fresh(now, from, r.nonce, r.issued_at, &token_id, &r.cookie) {
            // As in the plain mode: a fresh cookie for a stale one, if the
            // token is for this game (its header's protocol id); its seal is
            // checked when the new response comes.
            self.stats.bad_cookies += 1;
            if r.token.protocol_id() == self.config.protocol_id {
                self.rechallenge(now, from, r.nonce, &token_id);
            }
            return;
        }
        let private = match self.open_token(now, from, r.token.as_bytes()) {
            Ok(private) => private,
            Err(refusal) => return self.refuse_token(now, from, r.nonce, refusal),
        };
        let Ok(ext) = open_response(private.client_to_server_key(), r.seq, r.datagram) else {
            self.stats.bad_tokens += 1;
            return;
        };
        if self.completed.contains(self.now_ms(now), from, r.nonce) {
            self.stats.replayed += 1;
            return;
        }
        let schema = self.check_schema(&ext);
        self.admit(now, from, r.nonce, r.issued_at, schema, Some(private));
    }

    /// Opens a client's connect token: valid, and not in use from another
    /// address. Counts nothing.
    fn open_token(
        &mut self,
        now: Instant,
        from: SocketAddr,
        token: &[u8],
    ) -> Result<PrivateToken, Option<TokenError>> {
        let epoch = self.epoch;
        let Some(sec) = self.security.as_mut() else {
            return Err(Some(TokenError::Malformed));
        };
        let unix_now = sec
            .unix_at_epoch
            .saturating_add(now.saturating_duration_since(epoch).as_secs());
        let private =
            open_private_token(&sec.key, token, self.config.protocol_id, unix_now, sec.addr)
                .map_err(Some)?;
        if sec
            .tokens
            .used_by_other(&private.token_id(), from, unix_now)
        {
            return Err(None);
        }
        Ok(private)
    }

    /// Counts a refused token (`None`: in use from another address) and
    /// answers with a REJECT where telling is safe.
    fn refuse_token(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        refusal: Option<TokenError>,
    ) {
        let Some(e) = refusal else {
            self.stats.reused_tokens += 1;
            return;
        };
        self.stats.bad_tokens += 1;
        // A forged or malformed token gets no answer; the others are genuine
        // tokens whose holder should learn why (and a REJECT is far smaller
        // than the request).
        if matches!(
            e,
            TokenError::Expired
                | TokenError::WrongServer
                | TokenError::ProtocolMismatch(_)
                | TokenError::VersionMismatch(_)
        ) {
            let reason = e.to_string();
            self.reply(
                now,
                from,
                &Packet::Reject {
                    nonce,
                    reason: &reason,
                },
            );
        }
    }

    /// The session of an admitted client's connection, keyed by its token,
    /// whose use from `from` is remembered until it expires.
    pub(super) fn open_session(&mut self, from: SocketAddr, token: &PrivateToken) -> SecureSession {
        if let Some(sec) = &mut self.security {
            sec.tokens
                .insert(token.token_id(), from, token.expire_timestamp());
        }
        SecureSession::new(
            token.server_to_client_key().clone(),
            token.client_to_server_key().clone(),
        )
    }
}
