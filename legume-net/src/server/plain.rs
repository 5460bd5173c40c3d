//! The plain handshake (`docs/PROTOCOL.md` 2.1–2.5) of a client with no
//! connection yet: CONNECT_REQUEST is answered with a stateless CHALLENGE,
//! and a CHALLENGE_RESPONSE whose cookie is fresh, and no replay, is
//! admitted.

use std::net::SocketAddr;
use std::time::Instant;

use crate::packet::{Packet, PacketError};

use super::ServerEndpoint;

impl ServerEndpoint {
    /// One datagram from an address with no connection, in the plain mode.
    pub(super) fn handle_plain_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: Result<Packet<'_>, PacketError>,
    ) {
        match packet {
            Ok(Packet::ConnectRequest { protocol_id, nonce })
                if protocol_id == self.config.protocol_id =>
            {
                self.challenge(now, from, nonce, &[]);
            }
            Ok(Packet::ChallengeResponse {
                protocol_id,
                nonce,
                issued_at,
                cookie,
                extension,
            }) => {
                let ours = protocol_id == self.config.protocol_id;
                if !(ours && self.cookie_is_fresh(now, from, nonce, issued_at, &[], &cookie)) {
                    self.stats.bad_cookies += 1;
                    self.log_refused(now, from);
                    // An expired cookie (say, from an attempt whose ACCEPT
                    // was lost until the connection timed out) gets a fresh one.
                    if ours {
                        self.rechallenge(now, from, nonce, &[]);
                    }
                } else if self.completed.contains(self.now_ms(now), from, nonce) {
                    // The connection this response opened has ended: a replay.
                    self.stats.replayed += 1;
                    self.log_refused(now, from);
                } else {
                    let schema = self.check_schema(extension);
                    self.admit(now, from, nonce, issued_at, schema, None);
                }
            }
            _ => {
                self.stats.dropped_invalid += 1;
                self.log_invalid(now, from);
            }
        }
    }
}
