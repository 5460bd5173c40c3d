//! Stateless connect cookies: a keyed MAC over the client's address, nonce,
//! issue time and app protocol id (SipHash-2-4, 128-bit output).

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

    /// The cookie for a client at `addr`.
    pub(crate) fn cookie(
        &self,
        addr: SocketAddr,
        nonce: u64,
        issued_at: u64,
        protocol_id: u64,
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
        cookie: &[u8; 16],
        now_ms: u64,
        lifetime: Duration,
    ) -> bool {
        let fresh = issued_at <= now_ms && u128::from(now_ms - issued_at) <= lifetime.as_millis();
        let expected = self.cookie(addr, nonce, issued_at, protocol_id);
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
        let c = key.cookie(a, 1, 1000, 0);
        assert!(key.verify(a, 1, 1000, 0, &c, 1500, life));
        assert!(!key.verify(b, 1, 1000, 0, &c, 1500, life), "other address");
        assert!(!key.verify(a, 2, 1000, 0, &c, 1500, life), "other nonce");
        assert!(!key.verify(a, 1, 1001, 0, &c, 1500, life), "other time");
        assert!(!key.verify(a, 1, 1000, 9, &c, 1500, life), "other protocol");
        assert!(!key.verify(a, 1, 1000, 0, &c, 11_001, life), "expired");
        assert!(!key.verify(a, 1, 1000, 0, &c, 999, life), "from the future");
        let other = CookieKey::new([8; 16]);
        assert!(!other.verify(a, 1, 1000, 0, &c, 1500, life), "other key");
    }
}
