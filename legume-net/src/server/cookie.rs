//! The stateless cookie both native handshakes share (`docs/PROTOCOL.md`
//! 2.2 and 2.3): the CHALLENGE that proves a client's address before the
//! endpoint keeps any state for it, and the check of the cookie the client
//! returns. In the secure mode the cookie also binds the token's id.

use std::net::SocketAddr;
use std::time::Instant;

use tracing::trace;

use crate::packet::Packet;

use super::{ServerEndpoint, LOG_TARGET};

impl ServerEndpoint {
    /// Answers a connect request with a stateless challenge.
    pub(super) fn challenge(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        token_id: &[u8],
    ) {
        let issued_at = self.now_ms(now);
        let protocol_id = self.config.protocol_id;
        let cookie = self
            .key
            .cookie(from, nonce, issued_at, protocol_id, token_id);
        self.stats.challenges_sent += 1;
        trace!(target: LOG_TARGET, peer = %from, "challenge sent to {from}");
        self.reply(
            now,
            from,
            &Packet::Challenge {
                nonce,
                issued_at,
                cookie,
            },
        );
    }

    /// Answers a refused cookie with a fresh one: still stateless, and
    /// smaller than the response it answers.
    pub(super) fn rechallenge(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        token_id: &[u8],
    ) {
        self.stats.rechallenges += 1;
        self.challenge(now, from, nonce, token_id);
    }

    /// Whether `cookie` is one this endpoint issued to `from` for this
    /// game, `nonce` and `token_id` at `issued_at`, and is unexpired at `now`.
    pub(super) fn cookie_is_fresh(
        &self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        issued_at: u64,
        token_id: &[u8],
        cookie: &[u8; 16],
    ) -> bool {
        self.key.verify(
            from,
            nonce,
            issued_at,
            self.config.protocol_id,
            token_id,
            cookie,
            self.now_ms(now),
            self.config.server.challenge_lifetime,
        )
    }

    /// The last instant, in endpoint milliseconds, at which a cookie issued
    /// at `issued_at` is valid.
    pub(super) fn cookie_expiry(&self, issued_at: u64) -> u64 {
        let lifetime =
            u64::try_from(self.config.server.challenge_lifetime.as_millis()).unwrap_or(u64::MAX);
        issued_at.saturating_add(lifetime)
    }
}
