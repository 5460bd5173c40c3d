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

    use crate::channel::{ChannelConfig, ChannelKind, MAX_CHANNELS};
    use crate::packet::CHALLENGE_EXTENSION_LEN;

    /// No extension: all padding; the default channel list.
    pub(crate) const NONE: u8 = 0;
    /// A schema summary alone (`SchemaSummary` encoding); the default
    /// channel list.
    pub(crate) const SCHEMA: u8 = 1;
    /// The channel list, then the schema summary.
    pub(crate) const CHANNELS_AND_SCHEMA: u8 = 2;
    /// The longest reason a REJECT carries.
    const MAX_REASON: usize = 255;

    /// The client's extension: its channel list and its factory's schema
    /// summary, with the per-message list when it fits.
    pub(crate) fn of(factory: &MessageFactory, channels: &[ChannelConfig]) -> Vec<u8> {
        let kinds = channels.len().min(MAX_CHANNELS);
        let budget = CHALLENGE_EXTENSION_LEN - 2 - kinds;
        let summary = factory.schema_summary().within(budget);
        let mut buf = vec![0u8; CHALLENGE_EXTENSION_LEN];
        let mut w = Writer::new(&mut buf);
        // Invariant: at most 32 channels; the fingerprint alone (9 bytes)
        // always fits after them, and `within` dropped the list if it did
        // not.
        let written = w.put_u8(CHANNELS_AND_SCHEMA).is_ok()
            && w.put_u8(kinds as u8).is_ok()
            && channels[..kinds]
                .iter()
                .all(|c| w.put_u8(c.kind.wire_byte()).is_ok())
            && summary.encode(&mut w).is_ok();
        if written {
            let n = w.position();
            buf.truncate(n);
            return buf;
        }
        vec![NONE]
    }

    /// What a client's extension says.
    struct Claims {
        channels: Vec<ChannelKind>,
        summary: Option<SchemaSummary>,
    }

    fn parse(ext: &[u8]) -> Result<Claims, String> {
        let defaults = || ChannelConfig::defaults().iter().map(|c| c.kind).collect();
        let summary = |r: &mut Reader<'_>| {
            // Zero padding follows the summary.
            SchemaSummary::decode(r).map_err(|_| String::from("malformed schema summary"))
        };
        match ext.first() {
            None | Some(&NONE) => Ok(Claims {
                channels: defaults(),
                summary: None,
            }),
            Some(&SCHEMA) => Ok(Claims {
                channels: defaults(),
                summary: Some(summary(&mut Reader::new(&ext[1..]))?),
            }),
            Some(&CHANNELS_AND_SCHEMA) => {
                let mut r = Reader::new(&ext[1..]);
                let bad = || String::from("malformed channel list");
                let count = usize::from(r.read_u8().map_err(|_| bad())?);
                if count == 0 || count > MAX_CHANNELS {
                    return Err(bad());
                }
                let mut channels = Vec::with_capacity(count);
                for _ in 0..count {
                    let byte = r.read_u8().map_err(|_| bad())?;
                    channels.push(ChannelKind::from_wire_byte(byte).ok_or_else(bad)?);
                }
                Ok(Claims {
                    channels,
                    summary: Some(summary(&mut r)?),
                })
            }
            Some(other) => Err(format!("unknown handshake extension {other}")),
        }
    }

    /// The server's verdict on a client's extension: `Ok` to go on, or the
    /// rejection reason naming what differs. The channel lists are always
    /// compared (frames name channels by id); the schemas when
    /// `check_schema`. A malformed extension is refused.
    pub(crate) fn check(
        factory: &MessageFactory,
        channels: &[ChannelConfig],
        ext: &[u8],
        check_schema: bool,
    ) -> Result<(), String> {
        let claims = parse(ext)?;
        let ours: Vec<ChannelKind> = channels.iter().map(|c| c.kind).collect();
        if let Some(reason) = channel_diff(&ours, &claims.channels) {
            return Err(truncate(reason));
        }
        let Some(summary) = claims.summary.filter(|_| check_schema) else {
            return Ok(());
        };
        let diff = factory.schema_diff(&summary).with_sides("server", "client");
        if diff.is_match() {
            Ok(())
        } else {
            Err(truncate(diff.to_string()))
        }
    }

    /// The differences between the server's and the client's channel
    /// lists, as a reason, or `None` when they agree.
    fn channel_diff(server: &[ChannelKind], client: &[ChannelKind]) -> Option<String> {
        let mut parts = Vec::new();
        for i in 0..server.len().max(client.len()) {
            match (server.get(i), client.get(i)) {
                (Some(s), Some(c)) if s != c => {
                    parts.push(format!("channel {i} is {s} on server, {c} on client"));
                }
                (Some(_), None) => parts.push(format!("channel {i} missing on client")),
                (None, Some(_)) => parts.push(format!("channel {i} missing on server")),
                _ => {}
            }
        }
        (!parts.is_empty()).then(|| format!("channel mismatch: {}", parts.join("; ")))
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

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::channel::ChannelKind::*;

        fn list(kinds: &[ChannelKind]) -> Vec<ChannelConfig> {
            kinds.iter().map(|&k| ChannelConfig::new(k)).collect()
        }

        #[test]
        fn the_same_list_passes_and_a_different_one_is_named() {
            let f = MessageFactory::new();
            let client = list(&[Unreliable, UnreliableSequenced, ReliableOrdered, Reliable]);
            let ext = of(&f, &client);
            assert_eq!(&ext[..6], &[2, 4, 0, 1, 3, 2]);
            assert_eq!(check(&f, &client, &ext, true), Ok(()));
            let server = list(&[Unreliable, Reliable, ReliableOrdered]);
            assert_eq!(
                check(&f, &server, &ext, false),
                Err("channel mismatch: channel 1 is reliable on server, \
                     unreliable-sequenced on client; channel 3 missing on server"
                    .into())
            );
        }

        #[test]
        fn no_list_means_the_default_list() {
            let f = MessageFactory::new();
            assert_eq!(
                check(&f, &ChannelConfig::defaults(), &[0; 256], true),
                Ok(())
            );
            let four = list(&[Unreliable, Reliable, ReliableOrdered, Reliable]);
            assert_eq!(
                check(&f, &four, &[0; 256], true),
                Err("channel mismatch: channel 3 missing on client".into())
            );
        }

        #[test]
        fn malformed_lists_are_refused() {
            let f = MessageFactory::new();
            let d = ChannelConfig::defaults();
            for ext in [&[2u8, 0][..], &[2, 33], &[2, 1, 9], &[2, 2, 0]] {
                assert!(check(&f, &d, ext, false).is_err(), "{ext:?}");
            }
        }
    }
}
