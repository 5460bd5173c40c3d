//! What the targets check after each forged datagram: the counters it
//! moved, what the endpoint answers itself, and how a connection may end.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use legume_net::sim::Rng;
use legume_net::{DisconnectReason, Event, State, Stats};

use crate::draw::Draw;
use crate::util::wire::*;

/// Valid packets plus dropped ones: every datagram a connection is handed
/// moves this by one, and by one more for each frame of an accepted packet
/// whose message id is outside the receive window (see
/// [`crate::findings::out_of_window_frames_count_as_datagrams`]).
pub(crate) fn accounted(s: &Stats) -> u64 {
    s.in_packets + s.dropped_invalid + s.dropped_duplicate
}

/// The frames of a well-formed DATA packet that carry a message id
/// (RELIABLE, ORDERED and fragments): each may be dropped as out of window
/// and counted in `dropped_invalid`. Zero for anything else, which is
/// dropped or taken whole.
fn id_frames(d: &[u8]) -> u64 {
    fn varint(r: &mut &[u8]) -> Option<usize> {
        let mut v = 0u32;
        for i in 0..5 {
            let (&b, rest) = r.split_first()?;
            *r = rest;
            let group = u32::from(b & 0x7F);
            if i == 4 && group > 0x0F {
                return None;
            }
            v |= group << (7 * i);
            if b & 0x80 == 0 {
                return (i == 0 || group != 0).then_some(v as usize);
            }
        }
        None
    }
    fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        (r.len() >= n).then(|| {
            let (head, rest) = r.split_at(n);
            *r = rest;
            head
        })
    }
    fn frames(mut r: &[u8]) -> Option<u64> {
        let mut n = 0;
        while let Some((&kind, rest)) = r.split_first() {
            r = rest;
            match kind {
                PING => {}
                UNRELIABLE => {
                    let len = varint(&mut r)?;
                    take(&mut r, len)?;
                }
                RELIABLE_MSG | ORDERED_MSG => {
                    take(&mut r, 2)?;
                    let len = varint(&mut r)?;
                    take(&mut r, len)?;
                    n += 1;
                }
                RELIABLE_FRAG | ORDERED_FRAG => {
                    let h = take(&mut r, 6)?;
                    let index = u16::from_be_bytes([h[2], h[3]]);
                    let count = u16::from_be_bytes([h[4], h[5]]);
                    let len = varint(&mut r)?;
                    take(&mut r, len)?;
                    if count < 2 || index >= count || len == 0 {
                        return None;
                    }
                    n += 1;
                }
                _ => return None,
            }
        }
        Some(n)
    }
    if data_seq(d).is_none() {
        return 0;
    }
    frames(&d[18..]).unwrap_or(0)
}

/// Checks that handing `d` to a connection moved its counters as it should.
pub(crate) fn check_counted(who: &str, before: u64, after: u64, d: &[u8]) {
    let extra = id_frames(d);
    assert!(
        after > before && after - before <= 1 + extra,
        "{who}: a datagram moved the counters by {} (at most {} out-of-window frames): {d:02x?}",
        after as i64 - before as i64,
        extra
    );
}

/// What the endpoint counts for datagrams from addresses with no connection.
pub(crate) fn endpoint_counted(s: &legume_net::EndpointStats) -> u64 {
    s.dropped_invalid
        + s.bad_cookies
        + s.challenges_sent
        + s.accepted
        + s.rejected
        + s.replayed
        + s.rate_limited
}

/// Whether the endpoint answers `d` itself from the connected address: a
/// CHALLENGE_RESPONSE with the connection's nonce (a lost ACCEPT's
/// retransmission) gets the ACCEPT again and reaches no connection.
pub(crate) fn is_response_for(d: &[u8], nonce: u64) -> bool {
    d.len() == 300
        && d[..4] == [b'L', b'G', 2, CHALLENGE_RESPONSE]
        && d[12..20] == nonce.to_be_bytes()
}

/// Whether `d`, handed to a server endpoint whose clock started at `epoch`
/// from an address with no connection, is a CHALLENGE_RESPONSE replayed
/// exactly `lifetime` after its challenge was issued: it reopens a closed
/// connection (see
/// [`crate::findings::a_replayed_response_at_the_cookie_lifetime_opens_nothing`]).
/// The fuzz targets skip such datagrams so that they go on finding other
/// things; remove this once that bug is fixed.
pub(crate) fn hits_replay_bug(d: &[u8], now: Instant, epoch: Instant, lifetime: Duration) -> bool {
    if d.len() != 300 || d[..4] != [b'L', b'G', 2, CHALLENGE_RESPONSE] {
        return false;
    }
    let issued_at = u64::from_be_bytes(d[20..28].try_into().expect("8 bytes"));
    let now_ms = now.saturating_duration_since(epoch).as_millis();
    issued_at.checked_add(lifetime.as_millis() as u64) == Some(now_ms as u64)
}

pub(crate) fn stranger(rng: &mut Rng) -> SocketAddr {
    SocketAddr::from(([10, 9, 0, rng.below(4) as u8], 6000 + rng.below(3) as u16))
}

/// How a connection that was connected may have ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Ending {
    pub(crate) reason: Option<DisconnectReason>,
}

impl Ending {
    /// Records an event of a connection that has completed its handshake.
    pub(crate) fn on_event(&mut self, who: &str, e: &Event) {
        match e {
            Event::Message(_) | Event::Error(_) => {}
            Event::Disconnected(reason) => {
                assert!(
                    self.reason.is_none(),
                    "{who}: a second Disconnected ({reason:?} after {:?})",
                    self.reason
                );
                assert!(
                    matches!(
                        reason,
                        DisconnectReason::Remote(_)
                            | DisconnectReason::TimedOut
                            | DisconnectReason::LimitExceeded(_)
                    ),
                    "{who}: closed by a fuzzed datagram with {reason:?}"
                );
                self.reason = Some(reason.clone());
            }
            other => panic!("{who}: unexpected event {other:?} after the handshake"),
        }
    }

    /// Checks that the state agrees with the events seen.
    pub(crate) fn check_state(&self, who: &str, state: State) {
        match (&self.reason, state) {
            (None, State::Connected) => {}
            (Some(r), State::Errored) if r.is_error() => {}
            (Some(r), State::Disconnected) if !r.is_error() => {}
            (r, s) => panic!("{who}: state {s:?} after {r:?}"),
        }
    }
}
