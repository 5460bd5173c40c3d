//! Stateless connect cookies: a keyed MAC over the client's address, nonce,
//! issue time and app protocol id, and in the secure mode the connect
//! token's id (SipHash-2-4, 128-bit output).

use std::hash::Hasher;
use std::net::SocketAddr;
use std::time::Duration;

use siphasher::sip128::{Hasher128, SipHasher24};

/// The server's secret for cookies.
#[derive(Clone)]
pub(crate) struct CookieKey([u8; 16]);

impl CookieKey {
    pub(crate) fn new(key: [u8; 16]) -> Self {
        CookieKey(key)
    }

    /// The cookie for a client at `addr`; `token_id` is the connect token's
    /// id in the secure mode, empty otherwise.
    pub(crate) fn cookie(
        &self,
        addr: SocketAddr,
        nonce: u64,
        issued_at: u64,
        protocol_id: u64,
        token_id: &[u8],
    ) -> [u8; 16] {
        let mut h = SipHasher24::new_with_key(&self.0);
        let ip = match addr {
            SocketAddr::V4(a) => a.ip().to_ipv6_mapped(),
            SocketAddr::V6(a) => *a.ip(),
        };
        h.write(&ip.octets());
        h.write(&addr.port().to_be_bytes());
        h.write(&nonce.to_be_bytes());
        h.write(&issued_at.to_be_bytes());
        h.write(&protocol_id.to_be_bytes());
        if !token_id.is_empty() {
            h.write(token_id);
        }
        h.finish128().as_bytes()
    }

    /// Whether `cookie` is one this key issued to `addr`, no older than
    /// `lifetime` at `now_ms` and not from the future.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn verify(
        &self,
        addr: SocketAddr,
        nonce: u64,
        issued_at: u64,
        protocol_id: u64,
        token_id: &[u8],
        cookie: &[u8; 16],
        now_ms: u64,
        lifetime: Duration,
    ) -> bool {
        let fresh = issued_at <= now_ms && u128::from(now_ms - issued_at) <= lifetime.as_millis();
        let expected = self.cookie(addr, nonce, issued_at, protocol_id, token_id);
        // Compare without an early exit, so timing does not reveal a prefix.
        let same = expected
            .iter()
            .zip(cookie)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        fresh && same
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_binds_every_input() {
        let key = CookieKey::new([7; 16]);
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let life = Duration::from_secs(10);
        let c = key.cookie(a, 1, 1000, 0, &[]);
        assert!(key.verify(a, 1, 1000, 0, &[], &c, 1500, life));
        assert!(
            !key.verify(b, 1, 1000, 0, &[], &c, 1500, life),
            "other address"
        );
        assert!(
            !key.verify(a, 2, 1000, 0, &[], &c, 1500, life),
            "other nonce"
        );
        assert!(
            !key.verify(a, 1, 1001, 0, &[], &c, 1500, life),
            "other time"
        );
        assert!(
            !key.verify(a, 1, 1000, 9, &[], &c, 1500, life),
            "other protocol"
        );
        assert!(
            !key.verify(a, 1, 1000, 0, &[1; 16], &c, 1500, life),
            "a token"
        );
        assert!(!key.verify(a, 1, 1000, 0, &[], &c, 11_001, life), "expired");
        assert!(
            !key.verify(a, 1, 1000, 0, &[], &c, 999, life),
            "from the future"
        );
        let other = CookieKey::new([8; 16]);
        assert!(
            !other.verify(a, 1, 1000, 0, &[], &c, 1500, life),
            "other key"
        );
        let t = key.cookie(a, 1, 1000, 0, &[1; 16]);
        assert!(key.verify(a, 1, 1000, 0, &[1; 16], &t, 1500, life));
        assert!(
            !key.verify(a, 1, 1000, 0, &[2; 16], &t, 1500, life),
            "other token"
        );
    }
}

/// The CHALLENGE_RESPONSE extension (the bytes after the cookie): a kind
/// byte, then its payload, then zero padding (`docs/PROTOCOL.md` 2.3).
pub(crate) mod extension {
    use legume_core::{Decode, Encode, MessageFactory, Reader, SchemaSummary, Writer};

    use crate::packet::CHALLENGE_EXTENSION_LEN;

    /// No extension: all padding.
    pub(crate) const NONE: u8 = 0;
    /// The client's schema summary (`SchemaSummary` encoding).
    pub(crate) const SCHEMA: u8 = 1;
    /// The longest reason a REJECT carries.
    const MAX_REASON: usize = 255;

    /// The client's extension: its factory's schema summary, with the
    /// per-message list when it fits.
    pub(crate) fn schema_of(factory: &MessageFactory) -> Vec<u8> {
        let summary = factory.schema_summary().within(CHALLENGE_EXTENSION_LEN - 1);
        let mut buf = vec![0u8; CHALLENGE_EXTENSION_LEN];
        let mut w = Writer::new(&mut buf);
        // The fingerprint alone (9 bytes) always fits; `within` dropped the
        // list if it did not.
        if w.put_u8(SCHEMA).is_ok() && summary.encode(&mut w).is_ok() {
            let n = w.position();
            buf.truncate(n);
            return buf;
        }
        vec![NONE]
    }

    /// The server's verdict on a client's extension: `Ok` to go on, or the
    /// rejection reason naming the messages that differ. A client that sent
    /// no summary is not checked; a malformed one is refused.
    pub(crate) fn check_schema(factory: &MessageFactory, ext: &[u8]) -> Result<(), String> {
        match ext.first() {
            None | Some(&NONE) => Ok(()),
            Some(&SCHEMA) => {
                // Zero padding follows the summary.
                let Ok(summary) = SchemaSummary::decode(&mut Reader::new(&ext[1..])) else {
                    return Err("malformed schema summary".into());
                };
                let diff = factory.schema_diff(&summary).with_sides("server", "client");
                if diff.is_match() {
                    Ok(())
                } else {
                    Err(truncate(diff.to_string()))
                }
            }
            Some(other) => Err(format!("unknown handshake extension {other}")),
        }
    }

    fn truncate(mut reason: String) -> String {
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON - 3;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push_str("...");
        }
        reason
    }
}
