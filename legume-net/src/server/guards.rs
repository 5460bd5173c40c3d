//! Admission guards: the bounded tables that stop a handshake from being
//! replayed, a connect token from being used from two addresses, and one
//! source from flooding the endpoint with handshakes. Each is capped, so an
//! attacker cannot grow them without limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::ServerEndpoint;

/// Completed handshakes remembered to refuse replays, at most.
const MAX_REMEMBERED_HANDSHAKES: usize = 65_536;
/// Connect tokens remembered as used (secure mode), at most.
const MAX_REMEMBERED_TOKENS: usize = 65_536;
/// Source addresses tracked for the connect rate per second, at most; past
/// it, new sources go untracked rather than growing the table.
const MAX_RATE_SOURCES: usize = 8192;

/// Handshakes that created a connection, kept until their cookie expires so
/// that a replayed response cannot open a second connection.
#[derive(Debug, Default)]
pub(super) struct CompletedHandshakes {
    set: HashSet<(SocketAddr, u64)>,
    /// (expiry in endpoint ms, address, nonce), oldest first.
    order: VecDeque<(u64, SocketAddr, u64)>,
}

impl CompletedHandshakes {
    /// Whether the handshake of `nonce` from `addr` opened a connection
    /// already; forgets those whose cookie has expired at `now_ms` first.
    pub(super) fn contains(&mut self, now_ms: u64, addr: SocketAddr, nonce: u64) -> bool {
        self.forget_expired(now_ms);
        self.set.contains(&(addr, nonce))
    }

    /// Forgets the handshakes whose cookie has expired at `now_ms`, and
    /// gives back the storage of a connect wave once most of it is unused.
    /// Costs the expired entries, not the remembered ones: the endpoint
    /// calls it with its timers, so that an idle server does not keep a
    /// connect wave's handshakes until the next one.
    pub(super) fn forget_expired(&mut self, now_ms: u64) {
        let before = self.order.len();
        while let Some(&(expiry, a, n)) = self.order.front() {
            // A cookie is valid up to and including its expiry instant.
            if expiry >= now_ms && self.order.len() <= MAX_REMEMBERED_HANDSHAKES {
                break;
            }
            self.order.pop_front();
            self.set.remove(&(a, n));
        }
        if self.order.len() < before && self.order.capacity() > 4 * self.order.len().max(16) {
            self.order.shrink_to(2 * self.order.len());
            self.set.shrink_to(2 * self.set.len());
        }
    }

    /// Remembers a handshake that opened a connection, until `expiry_ms`.
    pub(super) fn insert(&mut self, expiry_ms: u64, addr: SocketAddr, nonce: u64) {
        if self.set.insert((addr, nonce)) {
            self.order.push_back((expiry_ms, addr, nonce));
        }
    }

    /// The number remembered.
    pub(super) fn len(&self) -> usize {
        self.set.len()
    }
}

/// Connect tokens that opened a connection, kept until they expire, so that
/// a token cannot be used from a second address.
#[derive(Debug, Default)]
pub(super) struct UsedTokens {
    map: HashMap<[u8; 16], (SocketAddr, u64)>,
    /// (token id, expiry), oldest first.
    order: VecDeque<([u8; 16], u64)>,
}

impl UsedTokens {
    /// Whether the token is in use from another address than `addr`.
    pub(super) fn used_by_other(&mut self, id: &[u8; 16], addr: SocketAddr, unix_now: u64) -> bool {
        while let Some(&(old, expiry)) = self.order.front() {
            if expiry > unix_now {
                break;
            }
            self.order.pop_front();
            self.map.remove(&old);
        }
        self.map.get(id).is_some_and(|&(a, _)| a != addr)
    }

    /// Remembers that the token `id` is used from `addr` until `expiry`
    /// (seconds since the Unix epoch).
    pub(super) fn insert(&mut self, id: [u8; 16], addr: SocketAddr, expiry: u64) {
        if self.map.insert(id, (addr, expiry)).is_none() {
            self.order.push_back((id, expiry));
        }
        while self.order.len() > MAX_REMEMBERED_TOKENS {
            if let Some((old, _)) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// Handshake packets per source IP in the current one-second window.
#[derive(Debug, Default)]
pub(super) struct SourceRate {
    window_start_ms: u64,
    counts: HashMap<IpAddr, u32>,
}

impl SourceRate {
    /// Counts one handshake packet from `ip`; whether it is within
    /// `per_second`.
    fn allow(&mut self, ip: IpAddr, now_ms: u64, per_second: u32) -> bool {
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 {
            self.window_start_ms = now_ms;
            self.counts.clear();
        }
        if self.counts.len() >= MAX_RATE_SOURCES && !self.counts.contains_key(&ip) {
            return true;
        }
        let count = self.counts.entry(ip).or_insert(0);
        *count = count.saturating_add(1);
        *count <= per_second
    }

    /// The sources counted in the current window.
    pub(super) fn tracked_sources(&self) -> usize {
        self.counts.len()
    }
}

impl ServerEndpoint {
    /// Counts a handshake packet from `from` against the per-source connect
    /// rate; when it is over, counts and logs it as rate-limited.
    pub(super) fn over_connect_rate(&mut self, now: Instant, from: SocketAddr) -> bool {
        let now_ms = self.now_ms(now);
        if self.rate.allow(
            from.ip(),
            now_ms,
            self.config.server.connect_rate_per_source,
        ) {
            return false;
        }
        self.stats.rate_limited += 1;
        self.log_rate_limited(now, from);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use legume_core::MessageFactory;

    use super::super::test_util::{endpoint, handshake, request};
    use crate::{Config, Connection};

    #[test]
    fn a_replayed_response_opens_nothing() {
        let now = Instant::now();
        let mut s = endpoint(now);
        let addr: std::net::SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let mut c =
            Connection::connect(Config::default(), Arc::new(MessageFactory::new()), now, 99);
        let response = handshake(&mut s, &mut c, addr, now);
        assert!(c.is_connected() && s.peer_count() == 1);
        s.disconnect(addr, "bye");
        let mut buf = [0u8; 1500];
        while s.poll_transmit(now, &mut buf).is_some() {}
        assert_eq!(s.peer_count(), 0);
        // An on-path attacker replays the captured response within its lifetime.
        let later = now + Duration::from_secs(1);
        s.handle_datagram(later, addr, &response);
        assert_eq!(s.peer_count(), 0);
        assert_eq!(s.stats().replayed, 1);
        // After the cookie expires it is refused as expired instead.
        let expired = now + Duration::from_secs(11);
        s.handle_datagram(expired, addr, &response);
        assert_eq!(s.peer_count(), 0);
        assert_eq!(s.stats().bad_cookies, 1);
    }

    #[test]
    fn one_source_is_rate_limited_others_are_not() {
        let now = Instant::now();
        let mut s = endpoint(now);
        let one: std::net::SocketAddr = "192.0.2.1:4000".parse().unwrap();
        for nonce in 0..300 {
            s.handle_datagram(now, one, &request(nonce));
        }
        let limit = u64::from(Config::default().server.connect_rate_per_source);
        assert_eq!(s.stats().challenges_sent, limit);
        assert_eq!(s.stats().rate_limited, 300 - limit);
        for i in 0..300u32 {
            let other = std::net::SocketAddr::from(([198, 51, (i >> 8) as u8, i as u8], 4000));
            s.handle_datagram(now, other, &request(1));
        }
        assert_eq!(s.stats().challenges_sent, limit + 300);
        // A new second opens a new window for the first source.
        s.handle_datagram(now + Duration::from_secs(1), one, &request(1));
        assert_eq!(s.stats().challenges_sent, limit + 301);
        assert_eq!(s.peer_count(), 0, "requests alone create no state");
    }
}
