//! What the attackers send and what the server should make of it: the
//! expected outcome of a stranger's datagram, frames honest and corrupt,
//! mutations, and the generators of the bad-input and flood attacks.

use std::collections::VecDeque;

use legume::net::sim::Rng;
use legume::net::EndpointStats;
use legume::prelude::*;

use crate::common::draw::{below, between, bytes_in, pick, random_bytes};
use crate::common::wire::*;
use crate::messages::Note;

/// The largest datagram the attackers send.
const MAX_ATTACK_DATAGRAM: usize = 9000;

/// What a server endpoint does with a datagram from an address that has no
/// connection (`docs/PROTOCOL.md` section 2), for a server whose app
/// protocol id is `protocol_id` and whose connect rate is never reached.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Outcome {
    /// Not a well-formed handshake packet: `dropped_invalid`.
    Invalid,
    /// A CONNECT_REQUEST for this protocol: answered, `challenges_sent`.
    Challenged,
    /// A CHALLENGE_RESPONSE for this protocol with a cookie the server did
    /// not issue to this address: `bad_cookies`, and a fresh challenge
    /// (`challenges_sent`, `rechallenges`).
    Rechallenged,
    /// A CHALLENGE_RESPONSE for another protocol: `bad_cookies` only.
    BadCookie,
}

pub(crate) fn stranger_outcome(d: &[u8], protocol_id: u64) -> Outcome {
    if d.len() != HANDSHAKE_LEN || d[..3] != PREFIX {
        return Outcome::Invalid;
    }
    let ours = d[4..12] == protocol_id.to_be_bytes();
    match (d[3], ours) {
        (CONNECT_REQUEST, true) => Outcome::Challenged,
        (CHALLENGE_RESPONSE, true) => Outcome::Rechallenged,
        (CHALLENGE_RESPONSE, false) => Outcome::BadCookie,
        _ => Outcome::Invalid,
    }
}

/// Expected endpoint counters, from the outcomes of the datagrams sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) dropped_invalid: u64,
    pub(crate) challenges_sent: u64,
    pub(crate) rechallenges: u64,
    pub(crate) bad_cookies: u64,
}

impl Expected {
    pub(crate) fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Invalid => self.dropped_invalid += 1,
            Outcome::Challenged => self.challenges_sent += 1,
            Outcome::Rechallenged => {
                self.challenges_sent += 1;
                self.rechallenges += 1;
                self.bad_cookies += 1;
            }
            Outcome::BadCookie => self.bad_cookies += 1,
        }
    }

    pub(crate) fn observed(before: &EndpointStats, after: &EndpointStats) -> Self {
        Expected {
            dropped_invalid: after.dropped_invalid - before.dropped_invalid,
            challenges_sent: after.challenges_sent - before.challenges_sent,
            rechallenges: after.rechallenges - before.rechallenges,
            bad_cookies: after.bad_cookies - before.bad_cookies,
        }
    }
}

/// Bytes for a message inside a frame: a valid note, one of an unknown
/// type, a truncated one, or noise.
fn message_bytes(rng: &mut Rng) -> Vec<u8> {
    match below(rng, 5) {
        0 | 1 => Note {
            client: rng.next_u64() as u32,
            seq: rng.next_u64() as u32,
            pad: bytes_in(rng, 0, 80),
        }
        .to_bytes()
        .expect("encodes"),
        2 => {
            let mut m = vec![*pick(rng, &[0u8, 1, 99, 255])];
            m.extend(bytes_in(rng, 0, 40));
            m
        }
        3 => {
            let mut m = Note {
                client: 1,
                seq: 2,
                pad: random_bytes(rng, 30),
            }
            .to_bytes()
            .expect("encodes");
            m.truncate(between(rng, 1, m.len() - 1));
            m
        }
        _ => bytes_in(rng, 0, 120),
    }
}

/// A well-formed frame of any type (its contents may be nonsense).
fn honest_frame(rng: &mut Rng) -> Vec<u8> {
    let mut f = Vec::new();
    let ordered = rng.chance(0.5);
    match below(rng, 5) {
        0 => f.push(PING),
        1 => {
            let m = message_bytes(rng);
            f.push(UNRELIABLE);
            put_varint(&mut f, m.len() as u32);
            f.extend(m);
        }
        2 => {
            let m = message_bytes(rng);
            f.push(if ordered { ORDERED_MSG } else { RELIABLE_MSG });
            f.extend((rng.next_u64() as u16).to_be_bytes());
            put_varint(&mut f, m.len() as u32);
            f.extend(m);
        }
        _ => {
            let count = *pick(rng, &[2u16, 3, 17, 600, 5000, u16::MAX]);
            let index = below(rng, u64::from(count)) as u16;
            let bytes = bytes_in(rng, 1, 200);
            f = fragment_frame(ordered, rng.next_u64() as u16, index, count, &bytes);
        }
    }
    f
}

/// A frame that makes its packet invalid: wrong or absurd lengths, fragment
/// counts 0 and 1, an index past the count, an empty fragment, an unknown
/// type, or a frame cut short.
fn corrupt_frame(rng: &mut Rng) -> Vec<u8> {
    let ordered = rng.chance(0.5);
    match below(rng, 6) {
        0 => {
            // A length running past the end, or an absurd or malformed one.
            let m = message_bytes(rng);
            let mut f = vec![*pick(rng, &[UNRELIABLE, RELIABLE_MSG, ORDERED_MSG])];
            if f[0] != UNRELIABLE {
                f.extend((rng.next_u64() as u16).to_be_bytes());
            }
            match below(rng, 4) {
                0 => put_varint(&mut f, m.len() as u32 + 1 + below(rng, 1000) as u32),
                1 => put_varint(&mut f, u32::MAX),
                2 => f.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
                _ => f.extend_from_slice(&[0x80, 0x80, 0x80]),
            }
            f.extend(m);
            f
        }
        1 => {
            let (index, count) = *pick(rng, &[(0u16, 0u16), (0, 1), (5, 5), (9, 3), (u16::MAX, 2)]);
            fragment_frame(ordered, rng.next_u64() as u16, index, count, &[7; 40])
        }
        2 => fragment_frame(ordered, 0, 0, 2, &[]),
        3 => vec![*pick(rng, &[0x00, 0x07, 0x08, 0x7F, 0x80, 0xFF])],
        _ => {
            // A fragment (or message) frame truncated mid-header or mid-body.
            let mut f = honest_frame(rng);
            while f.len() < 2 {
                f = honest_frame(rng);
            }
            f.truncate(between(rng, 1, f.len() - 1));
            f
        }
    }
}

/// Flips, overwrites, cuts, inserts, deletes, duplicates or splices.
fn mutate(rng: &mut Rng, d: &mut Vec<u8>, donor: &[u8]) {
    for _ in 0..between(rng, 1, 3) {
        let len = d.len();
        match below(rng, 8) {
            0 if len > 0 => {
                let i = below(rng, len as u64) as usize;
                d[i] ^= 1 << below(rng, 8);
            }
            1 if len > 0 => {
                let i = below(rng, len as u64) as usize;
                d[i] = *pick(rng, &[0x00, 0x01, 0x7F, 0x80, 0xFF]);
            }
            2 => d.truncate(below(rng, len as u64 + 1) as usize),
            3 => {
                let at = below(rng, len as u64 + 1) as usize;
                let extra = bytes_in(rng, 1, 64);
                d.splice(at..at, extra);
            }
            4 if len > 0 => {
                let a = below(rng, len as u64) as usize;
                let b = (a + between(rng, 1, 64)).min(len);
                d.drain(a..b);
            }
            5 if len > 0 => {
                let a = below(rng, len as u64) as usize;
                let b = (a + between(rng, 1, 256)).min(len);
                let copy = d[a..b].to_vec();
                d.splice(a..a, copy);
            }
            6 if !donor.is_empty() => {
                let at = below(rng, len as u64 + 1) as usize;
                let from = below(rng, donor.len() as u64) as usize;
                d.truncate(at);
                d.extend_from_slice(&donor[from..]);
            }
            _ if len >= DATA_HEADER_LEN => {
                // A header field: session, seq, ack, ack bits or ack delay.
                let at = *pick(rng, &[4usize, 6, 8, 10, 12, 14, 16]);
                let v = rng.next_u64().to_be_bytes();
                d[at..at + 2].copy_from_slice(&v[..2]);
            }
            _ => d.push(rng.next_u64() as u8),
        }
    }
    d.truncate(MAX_ATTACK_DATAGRAM);
}

/// The kinds of datagram the off-path attackers send.
pub(crate) const KINDS: [&str; 11] = [
    "random bytes",
    "valid prefix, random type and body",
    "wrong magic or version",
    "DATA with corrupted frames",
    "DATA with truncated fragments",
    "DATA with absurd lengths, counts, sequences and ids",
    "handshake with bad cookie, size or protocol id",
    "server-side packets (CHALLENGE, ACCEPT, REJECT, DISCONNECT)",
    "captured datagram, mutated",
    "captured datagram, replayed from another address",
    "forged DATA of the live session, valid frames",
];

/// Datagrams from addresses that have no connection: garbage of every
/// kind, built by hand or from captured real traffic.
pub(crate) struct StrangerGen {
    pub(crate) rng: Rng,
    /// Real datagrams captured between an honest client and the server.
    pub(crate) captured: Vec<Vec<u8>>,
    /// The captured client's session id, once seen.
    pub(crate) session: Option<u32>,
}

impl StrangerGen {
    pub(crate) fn session(&mut self) -> u32 {
        match self.session {
            Some(s) if self.rng.chance(0.7) => s,
            _ => self.rng.next_u64() as u32,
        }
    }

    pub(crate) fn seq(&mut self) -> u16 {
        let base = self.rng.next_u64() as u16;
        match below(&mut self.rng, 4) {
            0 => 0,
            1 => u16::MAX,
            2 => base.wrapping_add(0x8000),
            _ => base,
        }
    }

    fn header(&mut self) -> Vec<u8> {
        let session = self.session();
        let seq = self.seq();
        let ack = self.seq();
        let bits = *pick(&mut self.rng, &[0, u32::MAX, 0x5555_5555]);
        data_header(session, seq, ack, bits, self.rng.next_u64() as u16)
    }

    pub(crate) fn datagram(&mut self) -> (usize, Vec<u8>) {
        let kind = below(&mut self.rng, KINDS.len() as u64) as usize;
        let rng = &mut self.rng;
        let d = match kind {
            0 => {
                let max = if rng.chance(0.05) {
                    MAX_ATTACK_DATAGRAM
                } else {
                    1500
                };
                bytes_in(rng, 0, max)
            }
            1 => {
                let mut d = packet(below(rng, 10) as u8);
                d.extend(bytes_in(rng, 0, 400));
                if rng.chance(0.2) {
                    d.resize(HANDSHAKE_LEN, 0);
                }
                d
            }
            2 => {
                let mut d = if rng.chance(0.5) {
                    connect_request(0, rng.next_u64())
                } else {
                    let mut d = self.header();
                    d.extend(honest_frame(&mut self.rng));
                    d
                };
                let rng = &mut self.rng;
                if rng.chance(0.5) {
                    d[2] = *pick(rng, &[0u8, 2, 3, 0x7F, 0xFF]);
                } else {
                    d[below(rng, 2) as usize] ^= 1 << below(rng, 8);
                }
                d
            }
            3 => {
                let mut d = self.header();
                for _ in 0..below(&mut self.rng, 4) {
                    d.extend(honest_frame(&mut self.rng));
                }
                d.extend(corrupt_frame(&mut self.rng));
                if self.rng.chance(0.5) {
                    d.extend(honest_frame(&mut self.rng));
                }
                d
            }
            4 => {
                let mut d = self.header();
                let rng = &mut self.rng;
                let (id, count) = (rng.next_u64() as u16, between(rng, 2, 40) as u16);
                for index in 0..between(rng, 1, 6) as u16 {
                    let mut f = fragment_frame(rng.chance(0.5), id, index, count, &[3; 200]);
                    if rng.chance(0.5) {
                        f.truncate(between(rng, 1, f.len() - 1));
                    }
                    d.extend(f);
                }
                d
            }
            5 => {
                let mut d = self.header();
                let rng = &mut self.rng;
                let id = *pick(rng, &[0u16, 1023, 1024, 0x8000, u16::MAX]);
                match below(rng, 3) {
                    0 => d.extend(fragment_frame(rng.chance(0.5), id, 1, u16::MAX, &[1; 100])),
                    1 => {
                        d.push(RELIABLE_MSG);
                        d.extend(id.to_be_bytes());
                        put_varint(&mut d, u32::MAX);
                    }
                    _ => {
                        for k in 0..between(rng, 1, 60) as u16 {
                            let count = *pick(rng, &[600u16, 5000, u16::MAX]);
                            let index = below(rng, u64::from(count)) as u16;
                            d.extend(fragment_frame(
                                false,
                                id.wrapping_add(k),
                                index,
                                count,
                                &[9],
                            ));
                        }
                    }
                }
                d
            }
            6 => {
                let protocol = if rng.chance(0.7) { 0 } else { rng.next_u64() };
                let mut d = if rng.chance(0.4) {
                    connect_request(protocol, rng.next_u64())
                } else {
                    let recent = rng.next_u64() % 100_000;
                    let now_ms = *pick(rng, &[0u64, 1, 5_000, u64::MAX, recent]);
                    challenge_response(protocol, rng.next_u64(), now_ms, &random_bytes(rng, 16))
                };
                if rng.chance(0.25) {
                    d.resize(*pick(rng, &[0usize, 4, 20, 44, 299, 301, 1400]), 0);
                }
                d
            }
            7 => {
                let nonce = rng.next_u64();
                match below(rng, 4) {
                    0 => {
                        let mut d = packet(CHALLENGE);
                        d.extend(nonce.to_be_bytes());
                        d.extend(random_bytes(rng, 24));
                        d
                    }
                    1 => {
                        let mut d = packet(ACCEPT);
                        d.extend(nonce.to_be_bytes());
                        d.extend(random_bytes(rng, 4));
                        d
                    }
                    2 => {
                        let mut d = packet(REJECT);
                        d.extend(nonce.to_be_bytes());
                        d.push(255);
                        d.extend(bytes_in(rng, 0, 255));
                        d
                    }
                    _ => {
                        let session = self.session();
                        let mut d = packet(DISCONNECT);
                        d.extend(session.to_be_bytes());
                        d.push(5);
                        d.extend_from_slice(b"bye!!");
                        d
                    }
                }
            }
            8 | 9 if !self.captured.is_empty() => {
                let mut d = pick(rng, &self.captured).clone();
                if kind == 8 {
                    let donor = pick(rng, &self.captured).clone();
                    mutate(rng, &mut d, &donor);
                }
                d
            }
            _ => {
                // What an off-path attacker who guessed the session sends:
                // a well-formed packet of it, from the wrong address.
                let mut d = self.header();
                for _ in 0..between(&mut self.rng, 0, 5) {
                    d.extend(honest_frame(&mut self.rng));
                }
                d
            }
        };
        (kind, d)
    }
}

/// Datagrams injected from an honest connection's own address (what an
/// off-path attacker spoofing that address, or an on-path one replaying,
/// can send) that must change nothing: another session id, invalid frames
/// under the live one, truncated headers, replays of delivered datagrams,
/// handshake packets, garbage, and mutations of real datagrams moved off
/// the live session. Each is dropped and counted by the connection (a
/// replayed CHALLENGE_RESPONSE by the endpoint, as a repeated ACCEPT). The
/// live session with valid frames is left out: an on-path attacker can
/// forge that (`docs/PROTOCOL.md` section 7).
pub(crate) struct SpoofGen {
    pub(crate) rng: Rng,
    pub(crate) session: u32,
    pub(crate) nonce: u64,
    /// Recent DATA packets of this direction, already forwarded.
    pub(crate) recent: VecDeque<Vec<u8>>,
    /// The client's handshake packets (toward the server only).
    pub(crate) handshake: Vec<Vec<u8>>,
}

impl SpoofGen {
    fn wrong_session(&mut self) -> u32 {
        let s = match below(&mut self.rng, 3) {
            0 => 0,
            1 => self.session ^ (1 << below(&mut self.rng, 32)),
            _ => self.rng.next_u64() as u32,
        };
        if s == self.session {
            !s
        } else {
            s
        }
    }

    fn header(&mut self, session: u32) -> Vec<u8> {
        let rng = &mut self.rng;
        let seq = rng.next_u64() as u16;
        let ack = rng.next_u64() as u16;
        data_header(session, seq, ack, rng.next_u64() as u32, 0)
    }

    /// One datagram; `to_server` picks the direction's packet kinds.
    pub(crate) fn datagram(&mut self, to_server: bool) -> Vec<u8> {
        // Only two kinds may carry the live session: replays of forwarded
        // packets (duplicates) and packets whose last frame is invalid.
        let mut live_ok = false;
        let mut d = match below(&mut self.rng, 10) {
            0 => bytes_in(&mut self.rng, 0, 1400),
            1 | 2 => {
                let session = self.wrong_session();
                let mut d = self.header(session);
                for _ in 0..below(&mut self.rng, 4) {
                    d.extend(honest_frame(&mut self.rng));
                }
                if self.rng.chance(0.3) {
                    d.extend(corrupt_frame(&mut self.rng));
                }
                d
            }
            3 => {
                // Well-formed frames, then an unknown frame type: the
                // packet is dropped whole and never acked.
                live_ok = true;
                let mut d = self.header(self.session);
                for _ in 0..below(&mut self.rng, 4) {
                    d.extend(honest_frame(&mut self.rng));
                }
                d.push(*pick(&mut self.rng, &[0x00, 0x07, 0xFF]));
                d
            }
            4 => {
                let mut d = self.header(self.session);
                d.truncate(between(&mut self.rng, 4, DATA_HEADER_LEN - 1));
                d
            }
            5 | 6 if !self.recent.is_empty() => {
                live_ok = true;
                let i = below(&mut self.rng, self.recent.len() as u64) as usize;
                self.recent[i].clone()
            }
            7 => {
                let rng = &mut self.rng;
                let nonce = if rng.chance(0.5) {
                    self.nonce
                } else {
                    rng.next_u64()
                };
                match (to_server, below(rng, 3)) {
                    (true, 0) if !self.handshake.is_empty() => pick(rng, &self.handshake).clone(),
                    (true, 1) => connect_request(0, nonce),
                    (true, _) => challenge_response(0, rng.next_u64(), 0, &random_bytes(rng, 16)),
                    (false, k) => {
                        let mut d = packet([CHALLENGE, ACCEPT, REJECT][k as usize]);
                        d.extend(nonce.to_be_bytes());
                        match k {
                            0 => d.extend(random_bytes(rng, 24)),
                            1 => d.extend(random_bytes(rng, 4)),
                            _ => d.extend_from_slice(&[4, b'n', b'o', b'p', b'e']),
                        }
                        d
                    }
                }
            }
            8 => {
                let session = self.wrong_session();
                let mut d = packet(DISCONNECT);
                d.extend(session.to_be_bytes());
                d.extend_from_slice(&[3, b'b', b'y', b'e']);
                d
            }
            _ if !self.recent.is_empty() => {
                let i = below(&mut self.rng, self.recent.len() as u64) as usize;
                let mut d = self.recent[i].clone();
                let donor = self.recent[0].clone();
                mutate(&mut self.rng, &mut d, &donor);
                d
            }
            _ => random_bytes(&mut self.rng, 20),
        };
        // Chance or a mutation may have made a live packet of the session;
        // an off-path attacker cannot, so move it to another session.
        if !live_ok && of_session(&d, self.session) {
            d[4] ^= 0x5A;
        }
        d
    }
}
