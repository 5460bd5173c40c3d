//! The endpoint's own counters and gauges, and the invariant that ties
//! them to the datagrams from addresses with no connection.

/// Counters and gauges of the endpoint itself (per-peer metrics are in each
/// connection's stats).
///
/// Every datagram is counted once: one from an address with no connection
/// moves [`handshake_outcomes`](Self::handshake_outcomes) by one; one from a
/// connected address moves that connection's `in_packets`,
/// `dropped_invalid` or `dropped_duplicate` (see [`Stats`](crate::Stats)), or
/// [`repeated_accepts`](Self::repeated_accepts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams from unknown addresses that were not valid handshake packets.
    pub dropped_invalid: u64,
    /// Challenges sent (answers to connect requests, plus `rechallenges`).
    pub challenges_sent: u64,
    /// Of `challenges_sent`, those answering a refused challenge response
    /// (a fresh cookie for an expired or forged one).
    pub rechallenges: u64,
    /// Challenge responses refused (bad or expired cookie, other protocol id).
    pub bad_cookies: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connect requests rejected because the client's message schema
    /// differs (also counted in `rejected`).
    pub schema_mismatches: u64,
    /// Connect requests rejected (by the hook, the peer limit or the accept switch).
    pub rejected: u64,
    /// Handshake replies dropped because too many were waiting.
    pub dropped_replies: u64,
    /// Challenge responses refused as replays of a completed handshake.
    pub replayed: u64,
    /// Handshake packets dropped by the per-source connect rate.
    pub rate_limited: u64,
    /// Retransmitted challenge responses from connected clients, answered
    /// by repeating the ACCEPT.
    pub repeated_accepts: u64,
    /// Secure mode: handshake packets refused for their connect token
    /// (malformed, forged or tampered with, expired, for another server,
    /// protocol or version) or for a challenge response whose seal fails.
    /// The expired, wrong-server, wrong-protocol and wrong-version ones are
    /// answered with a REJECT naming the reason; the others get no answer.
    pub bad_tokens: u64,
    /// Secure mode: handshake packets refused because their (valid) token
    /// is already in use from another address.
    pub reused_tokens: u64,
    /// Gauge: handshake replies queued, not yet handed to the socket (at
    /// most 4,096).
    pub queued_replies: usize,
    /// Gauge: source IPs in the current one-second connect-rate window (at
    /// most 8,192; the table is cleared when the next window starts).
    pub rate_tracked_sources: usize,
    /// Gauge: completed handshakes remembered to refuse replays, one per
    /// accepted connection, dropped once its cookie has expired (at the
    /// endpoint's next timer or valid challenge response); at most 65,536.
    pub remembered_handshakes: usize,
}

impl EndpointStats {
    /// Datagrams from addresses with no connection, each counted once by
    /// its outcome: dropped as invalid, rate-limited, answered with a
    /// challenge, refused as a bad cookie or a replay, accepted or rejected,
    /// or (secure mode) refused for a bad or reused token.
    pub fn handshake_outcomes(&self) -> u64 {
        self.dropped_invalid
            + self.rate_limited
            + (self.challenges_sent - self.rechallenges)
            + self.bad_cookies
            + self.replayed
            + self.accepted
            + self.rejected
            + self.bad_tokens
            + self.reused_tokens
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::test_util::{endpoint, request};
    use crate::packet::{Packet, HANDSHAKE_LEN};

    #[test]
    fn each_datagram_from_a_stranger_is_one_outcome() {
        let now = Instant::now();
        let mut s = endpoint(now);
        let from: std::net::SocketAddr = "192.0.2.9:4000".parse().unwrap();
        let mut response = vec![0u8; HANDSHAKE_LEN];
        let n = Packet::ChallengeResponse {
            protocol_id: 0,
            nonce: 5,
            issued_at: 0,
            cookie: [1; 16],
            extension: &[],
        }
        .emit(&mut response)
        .unwrap();
        assert_eq!(n, HANDSHAKE_LEN);
        let mut other_protocol = response.clone();
        other_protocol[4..12].copy_from_slice(&9u64.to_be_bytes());
        let datagrams = [
            request(1),
            response,
            other_protocol,
            b"LG\x02\x06junk".to_vec(),
            Vec::new(),
        ];
        for (i, d) in datagrams.iter().enumerate() {
            s.handle_datagram(now, from, d);
            assert_eq!(s.stats().handshake_outcomes(), i as u64 + 1, "{d:02x?}");
        }
        let st = s.stats();
        assert_eq!((st.challenges_sent, st.rechallenges), (2, 1));
        assert_eq!((st.bad_cookies, st.dropped_invalid), (2, 2));
        assert_eq!((st.queued_replies, st.rate_tracked_sources), (2, 1));
        assert_eq!(st.remembered_handshakes, 0);
        let mut buf = [0u8; 1500];
        while s.poll_transmit(now, &mut buf).is_some() {}
        assert_eq!(s.stats().queued_replies, 0);
    }
}
