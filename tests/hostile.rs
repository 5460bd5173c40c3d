//! Hostile networks against the real UDP driver on loopback (127.0.0.0/8):
//! bad input thrown at a live server while honest clients exchange reliable
//! traffic, a spoofed-source connect flood, a soak of many clients, and
//! faults (a server process killed and restarted, a client that vanishes
//! halfway through a fragmented message).
//!
//! The CI versions run by default and take a few seconds in a debug build.
//! The full versions are ignored; run them in release (they take the
//! `SERIAL` lock, so they run one at a time anyway):
//!
//! ```text
//! cargo test --release --test hostile -- --ignored --nocapture bad_input_full
//! cargo test --release --test hostile -- --ignored --nocapture bad_input_blast
//! cargo test --release --test hostile -- --ignored --nocapture flood_full
//! cargo test --release --test hostile -- --ignored --nocapture soak
//! ```
//!
//! - `LEGUME_ATTACK_DATAGRAMS` (default 1,000,000), `LEGUME_ATTACK_NOTES`
//!   (reliable notes per honest client, default 2,000) and
//!   `LEGUME_ATTACK_SEED` (printed; decimal or `0x` hex) for the two
//!   `bad_input_*` runs. The seed fixes the generators, not the captured
//!   datagrams or the thread interleaving.
//! - `LEGUME_FLOOD_SECS` (default 10), `LEGUME_FLOOD_RATE` (requests per
//!   second, default 10,000) and `LEGUME_FLOOD_SEED` for `flood_full`.
//! - `LEGUME_SOAK_SECS` (default 300) and `LEGUME_SOAK_CLIENTS` (default
//!   200) for `soak`.
//!
//! Datagrams are built by hand from `docs/PROTOCOL.md`, so these tests also
//! check the document against the implementation. Every test takes the
//! `SERIAL` lock: they measure the process's memory and share two cores.

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use legume::net::sim::Rng;
use legume::net::{EndpointStats, SocketStats, Stats};
use legume::prelude::*;

// ---------------------------------------------------------------------------
// Shared helpers: serialisation, environment, memory, randomness.
// ---------------------------------------------------------------------------

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A number from the environment (decimal, or hex with `0x`), or `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(s) = std::env::var(name) else {
        return default;
    };
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
    .unwrap_or_else(|| panic!("{name}={s} is not a number"))
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`); 0 elsewhere.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Datagrams the kernel dropped at the UDP socket bound to `addr` (its
/// receive buffer was full), from `/proc/net/udp`; `None` if unknown.
fn kernel_drops(addr: SocketAddr) -> Option<u64> {
    let SocketAddr::V4(a) = addr else { return None };
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(a.ip().octets()),
        a.port()
    );
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.get(1) == Some(&local.as_str()))
            .then(|| cols.last()?.parse().ok())
            .flatten()
    })
}

fn below(rng: &mut Rng, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        rng.gen_range(0..n)
    }
}

fn between(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + below(rng, (hi - lo + 1) as u64) as usize
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rng.fill_bytes(&mut b);
    b
}

/// Between `lo` and `hi` random bytes.
fn bytes_in(rng: &mut Rng, lo: usize, hi: usize) -> Vec<u8> {
    let n = between(rng, lo, hi);
    random_bytes(rng, n)
}

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[below(rng, xs.len() as u64) as usize]
}

fn seed_from_clock() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ 0x9E37_79B9_7F4A_7C15
}

/// Waits for `done`, checking every millisecond, until `max` passes.
fn wait_for(max: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + max;
    while Instant::now() < end {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    done()
}

// ---------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------

/// An honest client's message: echoed by the server with the same delivery.
#[derive(Clone, Debug, PartialEq, Message)]
#[message(id = 30)]
struct Note {
    client: u32,
    seq: u32,
    pad: Vec<u8>,
}

/// Set in `Note::seq` of unreliable notes, which are counted, not echoed.
const UNRELIABLE_BIT: u32 = 1 << 31;

/// The `echo` example's message (`examples/echo.rs`).
#[derive(Debug, Message)]
#[message(id = 20)]
struct Echo {
    kind: u8,
    data: Vec<u8>,
}

fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Note>().unwrap().register::<Echo>().unwrap();
    Arc::new(f)
}

/// The `echo` example's messages and nothing else: its server refuses a
/// client whose schema differs.
fn echo_factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Echo>().unwrap();
    Arc::new(f)
}

/// The delivery of honest reliable note `seq`: even ones reliable, odd ones ordered.
fn delivery_of(seq: u32) -> Delivery {
    if seq % 2 == 0 {
        Delivery::Reliable
    } else {
        Delivery::ReliableOrdered
    }
}

/// Padding of honest note `seq`: one in 16 is fragmented (3,000 bytes).
fn pad_of(seq: u32) -> Vec<u8> {
    let len = if seq % 16 == 5 {
        3000
    } else {
        (seq % 61) as usize
    };
    (0..len).map(|i| (i as u32 ^ seq) as u8).collect()
}

// ---------------------------------------------------------------------------
// The wire format, by hand (docs/PROTOCOL.md sections 1 to 3).
// ---------------------------------------------------------------------------

const PREFIX: [u8; 3] = [b'L', b'G', 1];
const HANDSHAKE_LEN: usize = 300;
const DATA_HEADER_LEN: usize = 18;

const CONNECT_REQUEST: u8 = 0x01;
const CHALLENGE: u8 = 0x02;
const CHALLENGE_RESPONSE: u8 = 0x03;
const ACCEPT: u8 = 0x04;
const REJECT: u8 = 0x05;
const DATA: u8 = 0x06;
const DISCONNECT: u8 = 0x07;

const PING: u8 = 0x01;
const UNRELIABLE: u8 = 0x02;
const RELIABLE_MSG: u8 = 0x03;
const ORDERED_MSG: u8 = 0x04;
const RELIABLE_FRAG: u8 = 0x05;
const ORDERED_FRAG: u8 = 0x06;

/// The largest datagram the attackers send.
const MAX_ATTACK_DATAGRAM: usize = 9000;

fn packet(kind: u8) -> Vec<u8> {
    let mut p = PREFIX.to_vec();
    p.push(kind);
    p
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn connect_request(protocol_id: u64, nonce: u64) -> Vec<u8> {
    let mut p = packet(CONNECT_REQUEST);
    p.extend(protocol_id.to_be_bytes());
    p.extend(nonce.to_be_bytes());
    p.resize(HANDSHAKE_LEN, 0);
    p
}

fn challenge_response(protocol_id: u64, nonce: u64, issued_at: u64, cookie: &[u8]) -> Vec<u8> {
    let mut p = packet(CHALLENGE_RESPONSE);
    p.extend(protocol_id.to_be_bytes());
    p.extend(nonce.to_be_bytes());
    p.extend(issued_at.to_be_bytes());
    p.extend_from_slice(&cookie[..16]);
    p.resize(HANDSHAKE_LEN, 0);
    p
}

fn data_header(session: u32, seq: u16, ack: u16, ack_bits: u32, ack_delay: u16) -> Vec<u8> {
    let mut p = packet(DATA);
    p.extend(session.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend(ack.to_be_bytes());
    p.extend(ack_bits.to_be_bytes());
    p.extend(ack_delay.to_be_bytes());
    p
}

fn fragment_frame(ordered: bool, id: u16, index: u16, count: u16, bytes: &[u8]) -> Vec<u8> {
    let mut f = vec![if ordered { ORDERED_FRAG } else { RELIABLE_FRAG }];
    f.extend(id.to_be_bytes());
    f.extend(index.to_be_bytes());
    f.extend(count.to_be_bytes());
    put_varint(&mut f, bytes.len() as u32);
    f.extend_from_slice(bytes);
    f
}

/// Whether `d` is a DATA or DISCONNECT packet of `session`.
fn of_session(d: &[u8], session: u32) -> bool {
    d.len() >= 8
        && d[..3] == PREFIX
        && matches!(d[3], DATA | DISCONNECT)
        && d[4..8] == session.to_be_bytes()
}

/// What a server endpoint does with a datagram from an address that has no
/// connection (`docs/PROTOCOL.md` section 2), for a server whose app
/// protocol id is `protocol_id` and whose connect rate is never reached.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Outcome {
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

fn stranger_outcome(d: &[u8], protocol_id: u64) -> Outcome {
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
struct Expected {
    dropped_invalid: u64,
    challenges_sent: u64,
    rechallenges: u64,
    bad_cookies: u64,
}

impl Expected {
    fn add(&mut self, o: Outcome) {
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

    fn observed(before: &EndpointStats, after: &EndpointStats) -> Self {
        Expected {
            dropped_invalid: after.dropped_invalid - before.dropped_invalid,
            challenges_sent: after.challenges_sent - before.challenges_sent,
            rechallenges: after.rechallenges - before.rechallenges,
            bad_cookies: after.bad_cookies - before.bad_cookies,
        }
    }
}

// ---------------------------------------------------------------------------
// Datagram generators.
// ---------------------------------------------------------------------------

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
const KINDS: [&str; 11] = [
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
struct StrangerGen {
    rng: Rng,
    /// Real datagrams captured between an honest client and the server.
    captured: Vec<Vec<u8>>,
    /// The captured client's session id, once seen.
    session: Option<u32>,
}

impl StrangerGen {
    fn session(&mut self) -> u32 {
        match self.session {
            Some(s) if self.rng.chance(0.7) => s,
            _ => self.rng.next_u64() as u32,
        }
    }

    fn seq(&mut self) -> u16 {
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

    fn datagram(&mut self) -> (usize, Vec<u8>) {
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
struct SpoofGen {
    rng: Rng,
    session: u32,
    nonce: u64,
    /// Recent DATA packets of this direction, already forwarded.
    recent: VecDeque<Vec<u8>>,
    /// The client's handshake packets (toward the server only).
    handshake: Vec<Vec<u8>>,
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
    fn datagram(&mut self, to_server: bool) -> Vec<u8> {
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

// ---------------------------------------------------------------------------
// The live system: a server thread, a thread of honest clients, a capture
// proxy in front of one of them, and the attackers, sharing this state.
// ---------------------------------------------------------------------------

// Phases, in order, from 0 (connecting).
/// The server and clients take their baseline counters.
const BASELINE: u8 = 1;
/// The attack (or the soak's steady traffic) runs.
const RUN: u8 = 2;
/// Traffic winds down; threads keep updating.
const SETTLE: u8 = 3;
const STOP: u8 = 4;

#[derive(Default)]
struct Shared {
    phase: AtomicU8,
    server_baseline: AtomicBool,
    client_baseline: AtomicBool,
    /// The server's `handshake_outcomes`, after its latest update.
    outcomes: AtomicU64,
    /// The proxied connection's `dropped_invalid + dropped_duplicate`, plus
    /// the server's `repeated_accepts`, after its latest update.
    proxied_drops: AtomicU64,
    peers: AtomicUsize,
    connected: AtomicUsize,
    attack_total: AtomicU64,
    attack_sent: AtomicU64,
    attack_done: AtomicBool,
    proxy_done: AtomicBool,
    clients_done: AtomicBool,
    /// Real datagrams the proxy saw (both directions), at most `CAPTURE`.
    captured: Mutex<Vec<Vec<u8>>>,
    /// The proxied client's session id, once the proxy saw its ACCEPT.
    session: Mutex<Option<u32>>,
    /// The server's endpoint counters after its latest update.
    endpoint: Mutex<EndpointStats>,
}

const CAPTURE: usize = 512;

impl Shared {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::SeqCst)
    }

    fn set_phase(&self, p: u8) {
        self.phase.store(p, Ordering::SeqCst);
    }
}

/// Stops every thread when the test ends, even by a failed assertion.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.set_phase(STOP);
    }
}

/// Which notes of one sender arrived: bits, duplicates, order of the
/// ordered ones (odd sequence numbers).
#[derive(Clone, Debug, Default)]
struct Tally {
    seen: Vec<u64>,
    unique: u64,
    duplicates: u64,
    last_ordered: Option<u32>,
    out_of_order: u64,
}

impl Tally {
    fn record(&mut self, seq: u32) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        if seq % 2 == 1 {
            if self.last_ordered.is_some_and(|l| seq < l) {
                self.out_of_order += 1;
            }
            self.last_ordered = Some(seq);
        }
    }
}

/// The server's counters at one instant.
#[derive(Clone, Debug)]
struct Snapshot {
    endpoint: EndpointStats,
    socket: SocketStats,
    peers: HashMap<SocketAddr, Stats>,
}

fn snapshot(server: &Server) -> Snapshot {
    Snapshot {
        endpoint: server.stats(),
        socket: server.socket_stats(),
        peers: server.peers().map(|(a, c)| (a, c.stats())).collect(),
    }
}

/// What a connection counts for every datagram it is handed, once.
fn accounted(s: &Stats) -> u64 {
    s.in_packets + s.dropped_invalid + s.dropped_duplicate
}

fn drops(s: &Stats) -> u64 {
    s.dropped_invalid + s.dropped_duplicate
}

#[derive(Debug, Default)]
struct ServerReport {
    base: Option<Snapshot>,
    last: Option<Snapshot>,
    /// Honest reliable notes received, by client.
    received: HashMap<u32, Tally>,
    unreliable: u64,
    /// Notes of one client that came from a second address.
    wrong_peer: u64,
    disconnects: Vec<(SocketAddr, DisconnectReason)>,
    errors: u64,
    echo_failures: u64,
    updates: u64,
    /// Datagrams the kernel dropped at the server's socket, at the end.
    kernel_drops: Option<u64>,
}

/// Runs the server until `STOP`: echoes every honest reliable note with its
/// delivery, counts the rest, publishes counters after every update.
fn serve(mut server: Server, shared: Arc<Shared>, proxied: Option<SocketAddr>) -> ServerReport {
    let mut r = ServerReport::default();
    let mut owners: HashMap<u32, SocketAddr> = HashMap::new();
    loop {
        server.update_timeout(Duration::from_millis(2));
        r.updates += 1;
        while let Some(ServerEvent { peer, event }) = server.poll_event() {
            match event {
                Event::Message(m) => {
                    let Some(n) = m.downcast_ref::<Note>() else {
                        r.errors += 1;
                        continue;
                    };
                    if n.seq & UNRELIABLE_BIT != 0 {
                        r.unreliable += 1;
                        continue;
                    }
                    if *owners.entry(n.client).or_insert(peer) != peer {
                        r.wrong_peer += 1;
                    }
                    r.received.entry(n.client).or_default().record(n.seq);
                    if server.send(peer, n, delivery_of(n.seq)).is_err() {
                        r.echo_failures += 1;
                    }
                }
                Event::Disconnected(reason) => r.disconnects.push((peer, reason)),
                Event::Error(_) | Event::Io(_) => r.errors += 1,
                _ => {}
            }
        }
        let stats = server.stats();
        shared
            .outcomes
            .store(stats.handshake_outcomes(), Ordering::SeqCst);
        if let Some(p) = proxied {
            let d = server.peer(p).map_or(0, |c| drops(&c.stats()));
            shared
                .proxied_drops
                .store(d + stats.repeated_accepts, Ordering::SeqCst);
        }
        shared.peers.store(server.peer_count(), Ordering::SeqCst);
        *shared.endpoint.lock().unwrap() = stats;
        let phase = shared.phase();
        if phase >= BASELINE && r.base.is_none() {
            r.base = Some(snapshot(&server));
            shared.server_baseline.store(true, Ordering::SeqCst);
        }
        if phase == STOP {
            break;
        }
    }
    r.last = Some(snapshot(&server));
    r.kernel_drops = server.local_addr().and_then(kernel_drops);
    r
}

/// How honest clients send their reliable notes (each even one also sends
/// an unreliable note).
#[derive(Clone, Copy, Debug)]
enum Pacing {
    /// `per_client` notes, spread over the attack in proportion to its progress.
    WithAttack { per_client: u32 },
    /// `per_client` notes as soon as connected.
    AtOnce { per_client: u32 },
    /// Two notes (one reliable, one ordered) every `every` during `RUN`.
    Steady { every: Duration },
}

#[derive(Clone, Copy, Debug)]
struct ClientSpec {
    target: SocketAddr,
    start_after: Duration,
}

#[derive(Debug, Default)]
struct ClientOutcome {
    local: Option<SocketAddr>,
    sent: u32,
    unreliable_sent: u32,
    echoes: Tally,
    connected_after: Option<Duration>,
    disconnects: Vec<DisconnectReason>,
    rejected: bool,
    errors: u64,
    base: Option<Stats>,
    last: Stats,
}

/// Runs honest clients until `STOP`; sets `clients_done` once every client
/// has sent all its notes and got every echo back.
fn run_clients(
    specs: Vec<ClientSpec>,
    config: Config,
    pacing: Pacing,
    nap: Duration,
    shared: Arc<Shared>,
) -> Vec<ClientOutcome> {
    let start = Instant::now();
    let n = specs.len();
    let mut clients: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    let mut started = vec![start; n];
    let mut out: Vec<ClientOutcome> = (0..n).map(|_| ClientOutcome::default()).collect();
    let mut run_start: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let phase = shared.phase();
        if phase >= RUN && run_start.is_none() {
            run_start = Some(now);
        }
        let mut all_done = true;
        for (i, spec) in specs.iter().enumerate() {
            let o = &mut out[i];
            if clients[i].is_none() {
                if now < start + spec.start_after {
                    all_done = false;
                    continue;
                }
                let mut c = Client::new(factory(), config.clone());
                c.connect(spec.target).expect("connect");
                o.local = c.local_addr();
                started[i] = now;
                clients[i] = Some(c);
            }
            let c = clients[i].as_mut().expect("started");
            c.update();
            while let Some(e) = c.poll_event() {
                match e {
                    Event::Connected => {
                        o.connected_after = Some(now.saturating_duration_since(started[i]));
                        shared.connected.fetch_add(1, Ordering::SeqCst);
                    }
                    Event::Message(m) => match m.downcast_ref::<Note>() {
                        Some(note) => o.echoes.record(note.seq),
                        None => o.errors += 1,
                    },
                    Event::Disconnected(reason) => o.disconnects.push(reason),
                    Event::Rejected { .. } => o.rejected = true,
                    _ => o.errors += 1,
                }
            }
            let (target, last_target) = match pacing {
                Pacing::WithAttack { per_client } => {
                    let total = shared.attack_total.load(Ordering::SeqCst).max(1);
                    let sent = shared.attack_sent.load(Ordering::SeqCst);
                    let t = if phase < RUN {
                        0
                    } else if shared.attack_done.load(Ordering::SeqCst) {
                        per_client
                    } else {
                        (u64::from(per_client) * sent / total) as u32
                    };
                    (t, per_client)
                }
                Pacing::AtOnce { per_client } => (per_client, per_client),
                Pacing::Steady { every } => match run_start {
                    Some(t0) if phase == RUN => {
                        let batches = now.duration_since(t0).as_nanos() / every.as_nanos() + 1;
                        let t = 2 * batches as u32;
                        (t, u32::MAX)
                    }
                    _ if phase > RUN => (o.sent, o.sent),
                    _ => (0, u32::MAX),
                },
            };
            if c.connected() {
                while o.sent < target {
                    let seq = o.sent;
                    let note = Note {
                        client: i as u32,
                        seq,
                        pad: pad_of(seq),
                    };
                    if c.send(&note, delivery_of(seq)).is_err() {
                        break;
                    }
                    o.sent += 1;
                    if seq % 2 == 0 {
                        let extra = Note {
                            client: i as u32,
                            seq: UNRELIABLE_BIT | o.unreliable_sent,
                            pad: Vec::new(),
                        };
                        if c.send(&extra, Delivery::Unreliable).is_ok() {
                            o.unreliable_sent += 1;
                        }
                    }
                }
            }
            all_done &=
                c.connected() && o.sent == last_target && o.echoes.unique == u64::from(o.sent);
        }
        if all_done {
            shared.clients_done.store(true, Ordering::SeqCst);
        }
        if phase >= BASELINE && out[0].base.is_none() {
            for (o, c) in out.iter_mut().zip(&clients) {
                o.base = c.as_ref().map(Client::stats);
            }
            shared.client_baseline.store(true, Ordering::SeqCst);
        }
        if phase == STOP {
            break;
        }
        thread::sleep(nap);
    }
    for (o, c) in out.iter_mut().zip(&clients) {
        if let Some(c) = c {
            o.last = c.stats();
        }
    }
    out
}

#[derive(Debug, Default)]
struct ProxyReport {
    forwarded_up: u64,
    forwarded_down: u64,
    injected_up: u64,
    injected_down: u64,
}

/// Forwards between one client and the server, capturing real datagrams,
/// and once `RUN` starts injects `up_total` spoofed datagrams toward the
/// server and `down_total` toward the client, from the addresses each side
/// knows the other by, in step with the attack, at most `window` toward
/// the server unhandled.
fn proxy(
    socket: UdpSocket,
    server: SocketAddr,
    shared: Arc<Shared>,
    up_total: u64,
    down_total: u64,
    window: u64,
    seed: u64,
) -> ProxyReport {
    socket
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let mut r = ProxyReport::default();
    let mut rng = Rng::new(seed);
    let mut client: Option<SocketAddr> = None;
    let blank = |seed| SpoofGen {
        rng: Rng::new(seed),
        session: 0,
        nonce: 0,
        recent: VecDeque::new(),
        handshake: Vec::new(),
    };
    let (mut up, mut down) = (blank(seed ^ 1), blank(seed ^ 2));
    let mut live = false;
    let mut base_drops: Option<u64> = None;
    let mut buf = vec![0u8; 65_536];
    let keep = |q: &mut VecDeque<Vec<u8>>, d: &[u8]| {
        if q.len() == 64 {
            q.pop_front();
        }
        q.push_back(d.to_vec());
    };
    loop {
        let phase = shared.phase();
        if phase == STOP {
            break;
        }
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let d = &buf[..n];
            let is_data = n >= DATA_HEADER_LEN && d[..3] == PREFIX && d[3] == DATA;
            if from == server {
                if let Some(c) = client {
                    if socket.send_to(d, c).is_ok() {
                        r.forwarded_down += 1;
                    }
                }
                if n == 16 && d[..3] == PREFIX && d[3] == ACCEPT && !live {
                    let nonce = u64::from_be_bytes(d[4..12].try_into().unwrap());
                    let session = u32::from_be_bytes(d[12..16].try_into().unwrap());
                    for g in [&mut up, &mut down] {
                        g.session = session;
                        g.nonce = nonce;
                    }
                    *shared.session.lock().unwrap() = Some(session);
                    live = true;
                }
                if is_data {
                    keep(&mut down.recent, d);
                }
            } else {
                client = Some(from);
                if socket.send_to(d, server).is_ok() {
                    r.forwarded_up += 1;
                }
                if n == HANDSHAKE_LEN && up.handshake.len() < 8 {
                    up.handshake.push(d.to_vec());
                }
                if is_data {
                    keep(&mut up.recent, d);
                }
            }
            let mut pool = shared.captured.lock().unwrap();
            if pool.len() < CAPTURE {
                pool.push(d.to_vec());
            } else {
                let i = below(&mut rng, CAPTURE as u64) as usize;
                pool[i] = d.to_vec();
            }
        }
        let Some(c) = client else { continue };
        if phase < RUN || !live {
            continue;
        }
        let base = *base_drops.get_or_insert_with(|| shared.proxied_drops.load(Ordering::SeqCst));
        let done = shared.attack_done.load(Ordering::SeqCst);
        let (sent, total) = (
            shared.attack_sent.load(Ordering::SeqCst),
            shared.attack_total.load(Ordering::SeqCst).max(1),
        );
        let share = |of: u64| if done { of } else { of * sent / total };
        let mut burst = 0;
        while r.injected_up < share(up_total) && burst < 32 {
            // At most `window` not yet handled by the server: its socket
            // never overflows because of them.
            let handled = shared.proxied_drops.load(Ordering::SeqCst) - base;
            if r.injected_up.saturating_sub(handled) >= window {
                break;
            }
            let d = up.datagram(true);
            socket
                .send_to(&d, server)
                .expect("inject toward the server");
            r.injected_up += 1;
            burst += 1;
        }
        burst = 0;
        while r.injected_down < share(down_total) && burst < 8 {
            let d = down.datagram(false);
            socket.send_to(&d, c).expect("inject toward the client");
            r.injected_down += 1;
            burst += 1;
        }
        if done && r.injected_up == up_total && r.injected_down == down_total {
            shared.proxy_done.store(true, Ordering::SeqCst);
        }
    }
    r
}

#[derive(Debug, Default)]
struct AttackReport {
    sent: u64,
    bytes_out: u64,
    replies: u64,
    bytes_in: u64,
    largest_reply: usize,
    expected: Expected,
    kinds: [u64; KINDS.len()],
    elapsed: Duration,
}

impl AttackReport {
    fn drain(&mut self, s: &UdpSocket, buf: &mut [u8]) {
        while let Ok((n, _)) = s.recv_from(buf) {
            self.replies += 1;
            self.bytes_in += n as u64;
            self.largest_reply = self.largest_reply.max(n);
        }
    }
}

/// Sends `total` datagrams from `sockets` stranger addresses (127.3.x.y),
/// keeping at most `window` of them unhandled by the server so that none
/// is lost in the kernel and each can be accounted for (`u64::MAX`: as
/// fast as the sockets take them).
fn attack(
    server: SocketAddr,
    shared: Arc<Shared>,
    total: u64,
    sockets: usize,
    window: u64,
    seed: u64,
) -> AttackReport {
    let socks: Vec<UdpSocket> = (0..sockets)
        .map(|i| {
            let ip = Ipv4Addr::new(127, 3, (i / 250) as u8, (i % 250 + 1) as u8);
            let s = UdpSocket::bind((ip, 0)).expect("bind an attacker socket");
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut gen = StrangerGen {
        rng: Rng::new(seed),
        captured: Vec::new(),
        session: None,
    };
    let mut r = AttackReport::default();
    let mut buf = vec![0u8; 65_536];
    let base = shared.outcomes.load(Ordering::SeqCst);
    let start = Instant::now();
    for i in 0..total {
        if i % 1024 == 0 {
            gen.captured.clone_from(&shared.captured.lock().unwrap());
            gen.session = *shared.session.lock().unwrap();
            shared.attack_sent.store(i, Ordering::SeqCst);
        }
        let mut waits = 0u64;
        while i.saturating_sub(shared.outcomes.load(Ordering::SeqCst) - base) >= window {
            thread::yield_now();
            waits += 1;
            if waits % 100_000 == 0 {
                assert!(
                    shared.phase() != STOP,
                    "stopped with {i} datagrams sent, {} handled",
                    shared.outcomes.load(Ordering::SeqCst) - base
                );
            }
        }
        let (kind, d) = gen.datagram();
        r.kinds[kind] += 1;
        r.expected.add(stranger_outcome(&d, 0));
        let s = &socks[i as usize % sockets];
        loop {
            match s.send_to(&d, server) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => thread::yield_now(),
                Err(e) => panic!("attacker send of {} bytes: {e}", d.len()),
            }
        }
        r.sent += 1;
        r.bytes_out += d.len() as u64;
        if i % 8 == 0 {
            r.drain(&socks[(i / 8) as usize % sockets], &mut buf);
        }
    }
    shared.attack_sent.store(total, Ordering::SeqCst);
    r.elapsed = start.elapsed();
    // Until the server has handled them all, or (without a window, when
    // the kernel dropped some) until it stops finding more.
    let mut seen = (0, Instant::now());
    wait_for(Duration::from_secs(60), || {
        let handled = shared.outcomes.load(Ordering::SeqCst) - base;
        if handled != seen.0 {
            seen = (handled, Instant::now());
        }
        handled >= total || seen.1.elapsed() > Duration::from_millis(300)
    });
    thread::sleep(Duration::from_millis(50));
    for s in &socks {
        r.drain(s, &mut buf);
    }
    shared.attack_done.store(true, Ordering::SeqCst);
    r
}

// ---------------------------------------------------------------------------
// 1. Bad input against a live server with honest clients.
// ---------------------------------------------------------------------------

struct BadInputPlan {
    /// Datagrams from stranger addresses.
    strangers: u64,
    /// Stranger sockets (distinct source addresses).
    sockets: usize,
    clients: usize,
    /// Reliable notes each honest client sends (and gets echoed).
    per_client: u32,
    deadline: Duration,
    seed: u64,
    /// Send as fast as the sockets take it, overflowing the server's socket
    /// buffer, instead of keeping at most 512 datagrams unhandled. The
    /// kernel then drops datagrams, honest ones included, and the checks
    /// of the counters become bounds.
    blast: bool,
}

fn bad_input(plan: &BadInputPlan) {
    // Exact accounting below needs every handshake packet classified
    // without timing; the per-source rate limit has its own test (the flood).
    let config = Config {
        connect_rate_per_source: u32::MAX,
        ..Config::default()
    };
    let mut server = Server::new(factory(), config);
    server.listen("127.0.0.1:0").expect("listen");
    let server_addr = server.local_addr().unwrap();
    let buffers = server.socket_buffers().unwrap();
    let proxy_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy_socket.local_addr().unwrap();
    let shared = Arc::new(Shared::default());
    let _stop = StopOnDrop(Arc::clone(&shared));
    shared.attack_total.store(plan.strangers, Ordering::SeqCst);
    let (up_total, down_total) = (plan.strangers / 10, plan.strangers / 40);

    let sh = Arc::clone(&shared);
    let server_thread = thread::spawn(move || serve(server, sh, Some(proxy_addr)));
    let sh = Arc::clone(&shared);
    let (seed, blast) = (plan.seed, plan.blast);
    let proxy_thread = thread::spawn(move || {
        let window = if blast { u64::MAX } else { 64 };
        proxy(
            proxy_socket,
            server_addr,
            sh,
            up_total,
            down_total,
            window,
            seed ^ 0xF00D,
        )
    });
    let specs = (0..plan.clients)
        .map(|i| ClientSpec {
            target: if i == 0 { proxy_addr } else { server_addr },
            start_after: Duration::ZERO,
        })
        .collect();
    let sh = Arc::clone(&shared);
    let pacing = Pacing::WithAttack {
        per_client: plan.per_client,
    };
    let clients_thread = thread::spawn(move || {
        run_clients(
            specs,
            Config::default(),
            pacing,
            Duration::from_micros(500),
            sh,
        )
    });

    let all_in = wait_for(Duration::from_secs(20), || {
        shared.connected.load(Ordering::SeqCst) == plan.clients
            && shared.peers.load(Ordering::SeqCst) == plan.clients
    });
    assert!(all_in, "honest clients did not connect");
    // Let handshake retransmissions in flight land before the baseline.
    thread::sleep(Duration::from_millis(200));
    shared.set_phase(BASELINE);
    assert!(wait_for(Duration::from_secs(5), || {
        shared.server_baseline.load(Ordering::SeqCst)
            && shared.client_baseline.load(Ordering::SeqCst)
    }));
    let rss_before = rss_kib();
    shared.set_phase(RUN);
    let sh = Arc::clone(&shared);
    let (sockets, strangers) = (plan.sockets, plan.strangers);
    let window = if blast { u64::MAX } else { 512 };
    let attack_thread =
        thread::spawn(move || attack(server_addr, sh, strangers, sockets, window, seed));

    let start = Instant::now();
    let mut rss_peak = rss_before;
    loop {
        rss_peak = rss_peak.max(rss_kib());
        let done = shared.attack_done.load(Ordering::SeqCst)
            && shared.proxy_done.load(Ordering::SeqCst)
            && shared.clients_done.load(Ordering::SeqCst);
        if done {
            break;
        }
        for (name, finished) in [
            ("server", server_thread.is_finished()),
            ("clients", clients_thread.is_finished()),
            ("proxy", proxy_thread.is_finished()),
        ] {
            assert!(!finished, "the {name} thread died");
        }
        assert!(
            start.elapsed() < plan.deadline,
            "not done after {:?}: attack {}/{} done {}, proxy done {}, clients done {}",
            plan.deadline,
            shared.attack_sent.load(Ordering::SeqCst),
            plan.strangers,
            shared.attack_done.load(Ordering::SeqCst),
            shared.proxy_done.load(Ordering::SeqCst),
            shared.clients_done.load(Ordering::SeqCst),
        );
        thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    shared.set_phase(SETTLE);
    thread::sleep(Duration::from_millis(500));
    rss_peak = rss_peak.max(rss_kib());
    shared.set_phase(STOP);
    let attack = attack_thread.join().expect("attacker");
    let proxy = proxy_thread.join().expect("proxy");
    let clients = clients_thread.join().expect("clients");
    let server = server_thread.join().expect("server");
    let hwm = status_kib("VmHWM");

    // Honest traffic: every note and every echo exactly once, ordered ones in order.
    let n = u64::from(plan.per_client);
    for (i, c) in clients.iter().enumerate() {
        let got = server
            .received
            .get(&(i as u32))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (got.unique, got.duplicates, got.out_of_order),
            (n, 0, 0),
            "client {i}'s notes at the server"
        );
        assert_eq!(
            (
                c.sent,
                c.echoes.unique,
                c.echoes.duplicates,
                c.echoes.out_of_order
            ),
            (plan.per_client, n, 0, 0),
            "client {i}'s echoes"
        );
        assert!(
            c.disconnects.is_empty() && !c.rejected,
            "client {i}: {:?}",
            c.disconnects
        );
        assert_eq!(c.errors, 0, "client {i} saw error events");
    }
    assert!(server.disconnects.is_empty(), "{:?}", server.disconnects);
    assert_eq!(
        (server.errors, server.wrong_peer, server.echo_failures),
        (0, 0, 0)
    );
    let unreliable_sent: u64 = clients.iter().map(|c| u64::from(c.unreliable_sent)).sum();
    assert!(server.unreliable <= unreliable_sent);

    // Every datagram the server read is counted once, by the endpoint or a connection.
    let (base, last) = (server.base.as_ref().unwrap(), server.last.as_ref().unwrap());
    assert_eq!(base.peers.len(), plan.clients);
    assert_eq!(
        base.peers.keys().collect::<HashSet<_>>(),
        last.peers.keys().collect::<HashSet<_>>(),
        "the honest peers, and only they, stay connected"
    );
    let read = last.socket.datagrams_received - base.socket.datagrams_received;
    let outcomes = last.endpoint.handshake_outcomes() - base.endpoint.handshake_outcomes();
    let repeated = last.endpoint.repeated_accepts - base.endpoint.repeated_accepts;
    let by_peers: u64 = last
        .peers
        .iter()
        .map(|(a, s)| accounted(s) - accounted(&base.peers[a]))
        .sum();
    assert_eq!(
        read,
        outcomes + by_peers + repeated,
        "datagrams read vs counted"
    );

    // The strangers' datagrams: each counted where its bytes say it should
    // be. When blasting, the kernel drops some before the server reads them.
    let kernel = server.kernel_drops.unwrap_or(0);
    let d = |f: fn(&EndpointStats) -> u64| f(&last.endpoint) - f(&base.endpoint);
    assert_eq!(
        (
            d(|s| s.accepted),
            d(|s| s.rejected),
            d(|s| s.replayed),
            d(|s| s.rate_limited)
        ),
        (0, 0, 0, 0)
    );
    let answered = d(|s| s.challenges_sent) - d(|s| s.dropped_replies);
    if plan.blast {
        assert!(outcomes <= attack.sent && attack.sent - outcomes <= kernel);
        assert!(attack.replies <= answered);
    } else {
        assert_eq!(
            outcomes, attack.sent,
            "stranger datagrams vs handshake outcomes"
        );
        assert_eq!(
            Expected::observed(&base.endpoint, &last.endpoint),
            attack.expected
        );
        assert_eq!(
            attack.replies, answered,
            "challenges received by the strangers"
        );
    }
    assert!(attack.largest_reply <= HANDSHAKE_LEN && attack.bytes_in <= attack.bytes_out);

    // Spoofed from the honest client's address: dropped by its connection.
    let proxied = &last.peers[&proxy_addr];
    let proxied_base = &base.peers[&proxy_addr];
    let counted_up = drops(proxied) - drops(proxied_base) + repeated;
    if plan.blast {
        assert!(counted_up <= proxy.injected_up && proxy.injected_up - counted_up <= kernel);
    } else {
        assert_eq!(
            counted_up, proxy.injected_up,
            "datagrams injected toward the server vs the connection's drops"
        );
    }
    for (a, s) in &last.peers {
        let b = &base.peers[a];
        assert_eq!(s.dropped_frames, b.dropped_frames, "peer {a}");
        if *a != proxy_addr {
            assert_eq!(drops(s), drops(b), "peer {a} dropped honest datagrams");
        }
    }
    // Toward the client nothing overflows; a repeated ACCEPT the server
    // sent may have been lost on the way (its socket toward the proxy).
    let c0 = &clients[0];
    let counted_down = drops(&c0.last) - drops(c0.base.as_ref().unwrap());
    if plan.blast {
        assert!((proxy.injected_down..=proxy.injected_down + repeated).contains(&counted_down));
    } else {
        assert_eq!(
            counted_down,
            proxy.injected_down + repeated,
            "datagrams injected toward the client (plus repeated ACCEPTs) vs its drops"
        );
    }
    for (i, c) in clients.iter().enumerate().skip(1) {
        assert_eq!(
            drops(&c.last),
            drops(c.base.as_ref().unwrap()),
            "client {i}"
        );
    }

    // Memory: whatever the attack, the process grows by a bounded amount.
    let growth = rss_peak.saturating_sub(rss_before);
    assert!(
        growth < 64 * 1024,
        "RSS grew by {:.1} MiB during the attack",
        mib(growth)
    );

    let thrown = attack.sent + proxy.injected_up + proxy.injected_down;
    println!(
        "bad input ({}, seed {:#x}): {thrown} datagrams thrown in {:.2} s ({:.0}/s; the strangers' in {:.2} s): {} from {} stranger addresses ({:.1} MB), {} spoofed from an honest client's address toward the server, {} toward that client",
        if plan.blast {
            "blast"
        } else {
            "windowed"
        },
        plan.seed,
        elapsed.as_secs_f64(),
        thrown as f64 / elapsed.as_secs_f64(),
        attack.elapsed.as_secs_f64(),
        attack.sent,
        plan.sockets,
        attack.bytes_out as f64 / 1e6,
        proxy.injected_up,
        proxy.injected_down,
    );
    for (kind, count) in KINDS.iter().zip(attack.kinds) {
        println!("  {count:>9}  {kind}");
    }
    let e = |f: fn(&EndpointStats) -> u64| d(f);
    println!(
        "  server endpoint: dropped_invalid {}, challenges_sent {} (rechallenges {}), bad_cookies {}, dropped_replies {}, rate_limited {}, accepted/rejected/replayed {}/{}/{}, repeated_accepts {}",
        e(|s| s.dropped_invalid),
        e(|s| s.challenges_sent),
        e(|s| s.rechallenges),
        e(|s| s.bad_cookies),
        e(|s| s.dropped_replies),
        e(|s| s.rate_limited),
        e(|s| s.accepted),
        e(|s| s.rejected),
        e(|s| s.replayed),
        repeated,
    );
    println!(
        "  proxied connection at the server: dropped_invalid +{}, dropped_duplicate +{}; client side: dropped_invalid +{}, dropped_duplicate +{}",
        proxied.dropped_invalid - proxied_base.dropped_invalid,
        proxied.dropped_duplicate - proxied_base.dropped_duplicate,
        c0.last.dropped_invalid - c0.base.as_ref().unwrap().dropped_invalid,
        c0.last.dropped_duplicate - c0.base.as_ref().unwrap().dropped_duplicate,
    );
    println!(
        "  server socket: {read} datagrams read = {outcomes} handshake outcomes + {by_peers} by connections + {repeated} repeated accepts; kernel drops at the server socket: {}; receive buffer {} B",
        server.kernel_drops.map_or("unknown".into(), |d| d.to_string()),
        buffers.recv,
    );
    println!(
        "  strangers got {} replies, {} B for {} B sent (largest {} B)",
        attack.replies, attack.bytes_in, attack.bytes_out, attack.largest_reply
    );
    println!(
        "  honest: {} clients x {} reliable notes (1 in 16 fragmented), each delivered once and echoed once; unreliable {}/{} arrived",
        plan.clients, plan.per_client, server.unreliable, unreliable_sent
    );
    println!(
        "  memory: VmRSS {:.1} MiB before the attack, peak {:.1} MiB during it, VmHWM {:.1} MiB; server updates {}",
        mib(rss_before),
        mib(rss_peak),
        mib(hwm),
        server.updates,
    );
}

#[test]
fn bad_input_against_a_live_server() {
    let _serial = serial();
    bad_input(&BadInputPlan {
        strangers: 30_000,
        sockets: 32,
        clients: 8,
        per_client: 100,
        deadline: Duration::from_secs(60),
        seed: 0x0BAD_1DEA,
        blast: false,
    });
}

#[test]
#[ignore = "a million datagrams: run in release (see the module docs)"]
fn bad_input_full() {
    let _serial = serial();
    bad_input(&BadInputPlan {
        strangers: env_u64("LEGUME_ATTACK_DATAGRAMS", 1_000_000),
        sockets: 256,
        clients: 8,
        per_client: env_u64("LEGUME_ATTACK_NOTES", 2000) as u32,
        deadline: Duration::from_secs(1200),
        seed: env_u64("LEGUME_ATTACK_SEED", seed_from_clock()),
        blast: false,
    });
}

#[test]
#[ignore = "overflows the server's socket: run in release (see the module docs)"]
fn bad_input_blast() {
    let _serial = serial();
    bad_input(&BadInputPlan {
        strangers: env_u64("LEGUME_ATTACK_DATAGRAMS", 1_000_000),
        sockets: 256,
        clients: 8,
        per_client: env_u64("LEGUME_ATTACK_NOTES", 2000) as u32,
        deadline: Duration::from_secs(1200),
        seed: env_u64("LEGUME_ATTACK_SEED", seed_from_clock()),
        blast: true,
    });
}

// ---------------------------------------------------------------------------
// 2. A spoofed-source connect flood.
// ---------------------------------------------------------------------------

struct FloodPlan {
    secs: f64,
    /// Requests per second, all sources together.
    rate: u64,
    honest: usize,
    per_client: u32,
    /// Sockets bound on each of 127.0.0.2 to 127.0.0.250 per generation.
    ports_per_ip: usize,
    /// How long one generation of source sockets sends before the next.
    generation: Duration,
    seed: u64,
}

#[derive(Debug, Default)]
struct FloodSide {
    sent: u64,
    bytes_out: u64,
    replies: u64,
    bytes_in: u64,
    largest_reply: usize,
}

impl FloodSide {
    fn drain(&mut self, s: &UdpSocket, buf: &mut [u8]) {
        while let Ok((n, _)) = s.recv_from(buf) {
            self.replies += 1;
            self.bytes_in += n as u64;
            self.largest_reply = self.largest_reply.max(n);
        }
    }

    fn send(&mut self, s: &UdpSocket, d: &[u8], to: SocketAddr) {
        match s.send_to(d, to) {
            Ok(_) => {
                self.sent += 1;
                self.bytes_out += d.len() as u64;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("flood send: {e}"),
        }
    }
}

fn flood_generation(ports_per_ip: usize, sources: &mut HashSet<SocketAddr>) -> Vec<UdpSocket> {
    let mut gen = Vec::with_capacity(249 * ports_per_ip);
    for last in 2..=250u8 {
        for _ in 0..ports_per_ip {
            let s = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, last), 0)).expect("bind a source");
            s.set_nonblocking(true).unwrap();
            sources.insert(s.local_addr().unwrap());
            gen.push(s);
        }
    }
    gen
}

fn flood(plan: &FloodPlan) {
    let mut server = Server::new(factory(), Config::default());
    server.listen("127.0.0.1:0").expect("listen");
    let server_addr = server.local_addr().unwrap();
    let shared = Arc::new(Shared::default());
    let _stop = StopOnDrop(Arc::clone(&shared));
    let sh = Arc::clone(&shared);
    let server_thread = thread::spawn(move || serve(server, sh, None));
    // Honest clients connect one after another while the flood runs.
    let specs = (0..plan.honest)
        .map(|i| ClientSpec {
            target: server_addr,
            start_after: Duration::from_secs_f64(plan.secs * (i as f64 + 0.5) / plan.honest as f64),
        })
        .collect();
    let sh = Arc::clone(&shared);
    let pacing = Pacing::AtOnce {
        per_client: plan.per_client,
    };
    let clients_thread = thread::spawn(move || {
        run_clients(
            specs,
            Config::default(),
            pacing,
            Duration::from_micros(500),
            sh,
        )
    });
    shared.set_phase(BASELINE);
    assert!(wait_for(Duration::from_secs(5), || {
        shared.server_baseline.load(Ordering::SeqCst)
    }));
    shared.set_phase(RUN);

    // The flood: spoofed sources answer nothing; one heavy source sends a
    // tenth of it, past the per-source rate.
    let mut rng = Rng::new(plan.seed);
    let mut sources = HashSet::new();
    let heavy_socket = UdpSocket::bind("127.0.0.251:0").unwrap();
    heavy_socket.set_nonblocking(true).unwrap();
    sources.insert(heavy_socket.local_addr().unwrap());
    let mut spoofed = FloodSide::default();
    let mut heavy = FloodSide::default();
    let mut buf = vec![0u8; 2048];
    let mut gens: VecDeque<Vec<UdpSocket>> = VecDeque::new();
    gens.push_back(flood_generation(plan.ports_per_ip, &mut sources));
    let mut gen_started = Instant::now();
    let mut next = 0usize;
    let start = Instant::now();
    let length = Duration::from_secs_f64(plan.secs);
    let mut rss_peak = rss_kib();
    let (mut requests, mut forged) = (0u64, 0u64);
    while start.elapsed() < length {
        let due = (plan.rate as f64 * start.elapsed().as_secs_f64()) as u64;
        while spoofed.sent + heavy.sent < due {
            let nonce = rng.next_u64();
            let d = if rng.chance(0.1) {
                forged += 1;
                challenge_response(
                    0,
                    nonce,
                    rng.next_u64() % 10_000,
                    &random_bytes(&mut rng, 16),
                )
            } else {
                requests += 1;
                connect_request(0, nonce)
            };
            if (spoofed.sent + heavy.sent) % 10 == 0 {
                heavy.send(&heavy_socket, &d, server_addr);
            } else {
                let gen = gens.back().unwrap();
                spoofed.send(&gen[next % gen.len()], &d, server_addr);
                next += 1;
            }
        }
        heavy.drain(&heavy_socket, &mut buf);
        if gen_started.elapsed() >= plan.generation {
            // The oldest generation has had a generation's time to get its replies.
            if gens.len() == 2 {
                for s in gens.pop_front().unwrap() {
                    spoofed.drain(&s, &mut buf);
                }
            }
            gens.push_back(flood_generation(plan.ports_per_ip, &mut sources));
            gen_started = Instant::now();
        }
        rss_peak = rss_peak.max(rss_kib());
        assert!(!server_thread.is_finished() && !clients_thread.is_finished());
        thread::sleep(Duration::from_millis(1));
    }
    let flood_time = start.elapsed();
    let after_flood = Instant::now();
    thread::sleep(Duration::from_millis(100));
    for gen in &gens {
        for s in gen {
            spoofed.drain(s, &mut buf);
        }
    }
    heavy.drain(&heavy_socket, &mut buf);
    drop(gens);
    let at_end = shared.endpoint.lock().unwrap().clone();
    let clients_ok = wait_for(Duration::from_secs(30), || {
        shared.clients_done.load(Ordering::SeqCst)
    });
    // A new second: the next handshake packet starts a new rate window,
    // and the table holds that source alone.
    thread::sleep(Duration::from_millis(1100).saturating_sub(after_flood.elapsed()));
    let probe = UdpSocket::bind("127.0.0.252:0").unwrap();
    let answered = shared.endpoint.lock().unwrap().challenges_sent;
    probe.send_to(&connect_request(0, 7), server_addr).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let probe_reply = probe.recv_from(&mut buf).map(|(n, _)| n);
    // The counters are published after the update that answered the probe.
    wait_for(Duration::from_secs(5), || {
        shared.endpoint.lock().unwrap().challenges_sent > answered
    });
    let after_probe = shared.endpoint.lock().unwrap().clone();
    shared.set_phase(STOP);
    let clients = clients_thread.join().expect("clients");
    let server = server_thread.join().expect("server");
    assert!(clients_ok, "honest clients did not finish during the flood");

    let (base, last) = (server.base.as_ref().unwrap(), server.last.as_ref().unwrap());
    let honest: HashSet<u16> = clients
        .iter()
        .map(|c| c.local.expect("bound").port())
        .collect();
    for (i, c) in clients.iter().enumerate() {
        assert!(
            c.connected_after.is_some(),
            "honest client {i} did not connect"
        );
        assert_eq!(
            (c.echoes.unique, c.echoes.duplicates, c.disconnects.len()),
            (u64::from(plan.per_client), 0, 0),
            "honest client {i}"
        );
    }
    assert!(server.disconnects.is_empty() && server.errors == 0);
    // No state for the spoofed sources: the peers are the honest clients,
    // the remembered handshakes theirs, nothing queued.
    assert_eq!(last.peers.len(), plan.honest);
    for a in last.peers.keys() {
        assert!(
            a.ip() == Ipv4Addr::LOCALHOST && honest.contains(&a.port()),
            "a peer that is not an honest client: {a}"
        );
    }
    let d = |f: fn(&EndpointStats) -> u64| f(&last.endpoint) - f(&base.endpoint);
    assert_eq!(d(|s| s.accepted), plan.honest as u64);
    assert!(at_end.remembered_handshakes <= plan.honest);
    assert_eq!(at_end.queued_replies, 0);
    assert!(at_end.rate_tracked_sources <= 8192);
    assert_eq!(
        probe_reply.ok(),
        Some(36),
        "the probe is answered with a challenge"
    );
    assert_eq!(after_probe.rate_tracked_sources, 1);
    assert!(
        d(|s| s.rate_limited) > 0,
        "the heavy source was not limited"
    );
    // Never more bytes back than came in.
    for side in [&spoofed, &heavy] {
        assert!(side.largest_reply <= HANDSHAKE_LEN && side.bytes_in <= side.bytes_out);
    }
    let total = spoofed.sent + heavy.sent;
    let connect_times: Vec<f64> = clients
        .iter()
        .filter_map(|c| c.connected_after.map(|t| t.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "flood (seed {:#x}): {total} handshake packets in {:.2} s ({:.0}/s; {requests} CONNECT_REQUEST, {forged} CHALLENGE_RESPONSE with forged cookies) from {} distinct source addresses; one source sent {} of them",
        plan.seed,
        flood_time.as_secs_f64(),
        total as f64 / flood_time.as_secs_f64(),
        sources.len(),
        heavy.sent,
    );
    println!(
        "  spoofed sources: {} B out, {} B back in {} replies (ratio {:.3}, largest {} B); heavy source: {} B out, {} B back in {} replies",
        spoofed.bytes_out,
        spoofed.bytes_in,
        spoofed.replies,
        spoofed.bytes_in as f64 / spoofed.bytes_out.max(1) as f64,
        spoofed.largest_reply,
        heavy.bytes_out,
        heavy.bytes_in,
        heavy.replies,
    );
    println!(
        "  server: challenges_sent {} (rechallenges {}), bad_cookies {}, rate_limited {}, dropped_invalid {}, dropped_replies {}, accepted {}",
        d(|s| s.challenges_sent),
        d(|s| s.rechallenges),
        d(|s| s.bad_cookies),
        d(|s| s.rate_limited),
        d(|s| s.dropped_invalid),
        d(|s| s.dropped_replies),
        d(|s| s.accepted),
    );
    println!(
        "  server state at the end of the flood: {} peers (all honest), {} remembered handshakes, {} queued replies, {} sources in the rate table ({} after one more second and one request)",
        last.peers.len(),
        at_end.remembered_handshakes,
        at_end.queued_replies,
        at_end.rate_tracked_sources,
        after_probe.rate_tracked_sources,
    );
    println!(
        "  server socket: {} datagrams / {} B in, {} datagrams / {} B out (honest traffic included); kernel drops {}",
        last.socket.datagrams_received - base.socket.datagrams_received,
        last.socket.bytes_received - base.socket.bytes_received,
        last.socket.datagrams_sent - base.socket.datagrams_sent,
        last.socket.bytes_sent - base.socket.bytes_sent,
        server.kernel_drops.map_or("unknown".into(), |d| d.to_string()),
    );
    println!(
        "  honest: {} clients connected during the flood in {:.1}..{:.1} ms, {} notes each echoed once; VmRSS peak {:.1} MiB",
        plan.honest,
        connect_times.iter().copied().fold(f64::INFINITY, f64::min),
        connect_times.iter().copied().fold(0.0, f64::max),
        plan.per_client,
        mib(rss_peak),
    );
}

#[test]
fn spoofed_connect_flood() {
    let _serial = serial();
    flood(&FloodPlan {
        secs: 1.0,
        rate: 10_000,
        honest: 4,
        per_client: 20,
        ports_per_ip: 2,
        generation: Duration::from_millis(250),
        seed: 0xF100D,
    });
}

#[test]
#[ignore = "10 s at 10,000 requests/s: run in release (see the module docs)"]
fn flood_full() {
    let _serial = serial();
    flood(&FloodPlan {
        secs: env_u64("LEGUME_FLOOD_SECS", 10) as f64,
        rate: env_u64("LEGUME_FLOOD_RATE", 10_000),
        honest: 8,
        per_client: 100,
        ports_per_ip: 4,
        generation: Duration::from_millis(500),
        seed: env_u64("LEGUME_FLOOD_SEED", seed_from_clock()),
    });
}

// ---------------------------------------------------------------------------
// 3. Soak: many clients, steady traffic, minutes.
// ---------------------------------------------------------------------------

#[test]
#[ignore = "minutes long: run in release (see the module docs)"]
fn soak() {
    let _serial = serial();
    let secs = env_u64("LEGUME_SOAK_SECS", 300);
    let n = env_u64("LEGUME_SOAK_CLIENTS", 200) as usize;
    let every = Duration::from_millis(100);
    let mut server = Server::new(factory(), Config::default());
    server.listen("127.0.0.1:0").expect("listen");
    let server_addr = server.local_addr().unwrap();
    let shared = Arc::new(Shared::default());
    let _stop = StopOnDrop(Arc::clone(&shared));
    let sh = Arc::clone(&shared);
    let server_thread = thread::spawn(move || serve(server, sh, None));
    let specs = (0..n)
        .map(|i| ClientSpec {
            target: server_addr,
            start_after: Duration::from_millis(5 * i as u64),
        })
        .collect();
    let sh = Arc::clone(&shared);
    let clients_thread = thread::spawn(move || {
        run_clients(
            specs,
            Config::default(),
            Pacing::Steady { every },
            Duration::from_millis(1),
            sh,
        )
    });
    assert!(
        wait_for(Duration::from_secs(60), || {
            shared.connected.load(Ordering::SeqCst) == n && shared.peers.load(Ordering::SeqCst) == n
        }),
        "{} of {n} clients connected",
        shared.connected.load(Ordering::SeqCst)
    );
    shared.set_phase(BASELINE);
    assert!(wait_for(Duration::from_secs(5), || {
        shared.server_baseline.load(Ordering::SeqCst)
            && shared.client_baseline.load(Ordering::SeqCst)
    }));
    shared.set_phase(RUN);
    // RSS every 10 s (more often in short runs); compare the first and the
    // last fifth of the run (the first and last minute of five).
    let interval = if secs >= 120 {
        Duration::from_secs(10)
    } else {
        Duration::from_secs((secs / 12).max(1))
    };
    let start = Instant::now();
    let length = Duration::from_secs(secs);
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut next_sample = start + interval;
    while start.elapsed() < length {
        thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next_sample {
            samples.push((start.elapsed().as_secs_f64(), rss_kib()));
            next_sample += interval;
        }
        assert!(!server_thread.is_finished() && !clients_thread.is_finished());
        assert!(
            shared.peers.load(Ordering::SeqCst) == n,
            "a peer left after {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    shared.set_phase(SETTLE);
    let drained = wait_for(Duration::from_secs(60), || {
        shared.clients_done.load(Ordering::SeqCst)
    });
    shared.set_phase(STOP);
    let clients = clients_thread.join().expect("clients");
    let server = server_thread.join().expect("server");
    assert!(
        drained,
        "echoes still missing a minute after the traffic stopped"
    );

    let mut sent = 0u64;
    for (i, c) in clients.iter().enumerate() {
        assert!(c.disconnects.is_empty(), "client {i}: {:?}", c.disconnects);
        let got = server
            .received
            .get(&(i as u32))
            .cloned()
            .unwrap_or_default();
        let s = u64::from(c.sent);
        assert_eq!(
            (got.unique, got.duplicates, got.out_of_order),
            (s, 0, 0),
            "client {i} at the server"
        );
        assert_eq!(
            (c.echoes.unique, c.echoes.duplicates, c.echoes.out_of_order),
            (s, 0, 0),
            "client {i}'s echoes"
        );
        sent += s;
    }
    assert!(server.disconnects.is_empty(), "{:?}", server.disconnects);
    assert_eq!(server.errors, 0);
    let window = (secs as f64 / 5.0).min(60.0);
    let first = samples
        .iter()
        .filter(|(t, _)| *t <= window + 0.5)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let last = samples
        .iter()
        .filter(|(t, _)| *t >= secs as f64 - window - 0.5)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let unreliable_sent: u64 = clients.iter().map(|c| u64::from(c.unreliable_sent)).sum();
    let (base, end) = (server.base.as_ref().unwrap(), server.last.as_ref().unwrap());
    println!(
        "soak: {n} clients for {secs} s: {sent} reliable notes (half ordered; 1 in 16 fragmented) each delivered once and echoed once, {}/{unreliable_sent} unreliable arrived, 0 disconnects",
        server.unreliable
    );
    println!(
        "  server socket: {} datagrams in, {} out; {} updates",
        end.socket.datagrams_received - base.socket.datagrams_received,
        end.socket.datagrams_sent - base.socket.datagrams_sent,
        server.updates,
    );
    let listed: Vec<String> = samples
        .iter()
        .map(|(t, kib)| format!("{t:.0}s {:.1}", mib(*kib)))
        .collect();
    println!("  VmRSS (MiB): {}", listed.join(", "));
    println!(
        "  VmRSS max in the first {window:.0} s {:.1} MiB, in the last {window:.0} s {:.1} MiB; VmHWM {:.1} MiB",
        mib(first),
        mib(last),
        mib(status_kib("VmHWM"))
    );
    assert!(
        last <= first + 8 * 1024,
        "memory grew from {:.1} MiB to {:.1} MiB",
        mib(first),
        mib(last)
    );
}

// ---------------------------------------------------------------------------
// 4. Faults.
// ---------------------------------------------------------------------------

/// A child process killed (SIGKILL on Unix) when dropped.
struct Child(std::process::Child);

impl Child {
    fn echo_server(bin: &std::path::Path, addr: SocketAddr) -> Self {
        let child = std::process::Command::new(bin)
            .args(["server", "--listen", &addr.to_string(), "--seconds", "60"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the echo server");
        Child(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

fn fault_config() -> Config {
    Config {
        timeout: Duration::from_millis(1500),
        ping_interval: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// Updates every client until `done` holds for all (or `max` passes),
/// collecting their events.
fn pump_clients(
    clients: &mut [Client],
    events: &mut [Vec<Event>],
    max: Duration,
    done: impl Fn(&Client, &[Event]) -> bool,
) -> bool {
    let end = Instant::now() + max;
    loop {
        for (c, ev) in clients.iter_mut().zip(events.iter_mut()) {
            c.update();
            while let Some(e) = c.poll_event() {
                ev.push(e);
            }
        }
        if clients.iter().zip(events.iter()).all(|(c, e)| done(c, e)) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Each client sends `n` reliable echoes numbered from `from`; every one
/// must come back exactly once.
fn echo_round(clients: &mut [Client], from: u32, n: u32) {
    let mut events: Vec<Vec<Event>> = clients.iter().map(|_| Vec::new()).collect();
    for c in clients.iter_mut() {
        for seq in from..from + n {
            let msg = Echo {
                kind: 1,
                data: seq.to_le_bytes().to_vec(),
            };
            c.send(&msg, Delivery::Reliable).expect("queue an echo");
        }
    }
    let echoes = |e: &[Event]| {
        e.iter()
            .filter_map(|e| match e {
                Event::Message(m) => m.downcast_ref::<Echo>(),
                _ => None,
            })
            .map(|m| u32::from_le_bytes(m.data[..4].try_into().unwrap()))
            .collect::<Vec<u32>>()
    };
    let all = pump_clients(clients, &mut events, Duration::from_secs(10), |_, e| {
        echoes(e).len() >= n as usize
    });
    assert!(all, "echoes missing");
    for e in &events {
        let mut got = echoes(e);
        got.sort_unstable();
        assert_eq!(got, (from..from + n).collect::<Vec<_>>(), "each echo once");
    }
}

#[test]
fn a_killed_server_process_is_a_timeout_and_its_successor_takes_the_clients_back() {
    let _serial = serial();
    let bin = common::example_binary("echo");
    let addr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = Child::echo_server(&bin, addr);
    let mut clients: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::new(echo_factory(), fault_config());
            c.connect(addr).expect("connect");
            c
        })
        .collect();
    let mut events: Vec<Vec<Event>> = vec![Vec::new(), Vec::new(), Vec::new()];
    assert!(
        pump_clients(
            &mut clients,
            &mut events,
            Duration::from_secs(10),
            |c, _| c.connected()
        ),
        "clients did not connect to the echo process"
    );
    echo_round(&mut clients, 0, 50);

    // SIGKILL: no DISCONNECT is sent; the clients notice by the timeout.
    server.kill();
    let killed = Instant::now();
    let mut events: Vec<Vec<Event>> = vec![Vec::new(), Vec::new(), Vec::new()];
    assert!(
        pump_clients(
            &mut clients,
            &mut events,
            Duration::from_secs(10),
            |c, _| c.errored()
        ),
        "clients did not time out"
    );
    let noticed = killed.elapsed();
    for e in &events {
        assert!(
            e.iter()
                .any(|e| matches!(e, Event::Disconnected(DisconnectReason::TimedOut))),
            "{e:?}"
        );
    }

    // A new process on the same port: the clients connect again.
    let _successor = Child::echo_server(&bin, addr);
    for c in &mut clients {
        c.connect(addr).expect("reconnect");
    }
    let mut events: Vec<Vec<Event>> = vec![Vec::new(), Vec::new(), Vec::new()];
    assert!(
        pump_clients(
            &mut clients,
            &mut events,
            Duration::from_secs(10),
            |c, _| c.connected()
        ),
        "clients did not reconnect to the new process"
    );
    echo_round(&mut clients, 1000, 50);
    println!(
        "killed server: 3 clients reported the timeout {:.2} s after SIGKILL (timeout {:?}) and reconnected to the restarted process",
        noticed.as_secs_f64(),
        fault_config().timeout
    );
}

#[test]
fn a_client_gone_mid_fragment_frees_its_reassembly_at_timeout() {
    let _serial = serial();
    let mut server = Server::new(factory(), fault_config());
    server.listen("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_nonblocking(true).unwrap();
    let me = raw.local_addr().unwrap();
    let mut server_events = Vec::new();
    let mut buf = [0u8; 2048];
    // The handshake, by hand.
    let mut pump_until =
        |server: &mut Server, max: Duration, f: &mut dyn FnMut(&Server) -> bool| {
            let end = Instant::now() + max;
            while Instant::now() < end {
                server.update();
                while let Some(e) = server.poll_event() {
                    server_events.push(e);
                }
                if f(server) {
                    return true;
                }
                thread::sleep(Duration::from_millis(1));
            }
            false
        };
    let nonce = 0x5EED_u64;
    raw.send_to(&connect_request(0, nonce), server_addr)
        .unwrap();
    let mut challenge = None;
    pump_until(&mut server, Duration::from_secs(3), &mut |_| {
        if let Ok((n, _)) = raw.recv_from(&mut buf) {
            if n == 36 && buf[3] == CHALLENGE && buf[4..12] == nonce.to_be_bytes() {
                challenge = Some(buf[12..36].to_vec());
            }
        }
        challenge.is_some()
    });
    let challenge = challenge.expect("a CHALLENGE");
    let issued_at = u64::from_be_bytes(challenge[..8].try_into().unwrap());
    raw.send_to(
        &challenge_response(0, nonce, issued_at, &challenge[8..]),
        server_addr,
    )
    .unwrap();
    let mut session = None;
    pump_until(&mut server, Duration::from_secs(3), &mut |_| {
        if let Ok((n, _)) = raw.recv_from(&mut buf) {
            if n == 16 && buf[3] == ACCEPT {
                session = Some(u32::from_be_bytes(buf[12..16].try_into().unwrap()));
            }
        }
        session.is_some()
    });
    let session = session.expect("an ACCEPT");
    // A quarter of a 400 KB message: 100 fragments of 400.
    for index in 0..100u16 {
        let mut d = data_header(session, index, 0xFFFF, 0, 0);
        d.extend(fragment_frame(false, 0, index, 400, &[index as u8; 1000]));
        raw.send_to(&d, server_addr).unwrap();
    }
    let mut held = 0;
    pump_until(&mut server, Duration::from_secs(3), &mut |s| {
        held = s.peer(me).map_or(0, |p| p.stats().reassembly_bytes);
        held >= 100_000
    });
    assert!(held >= 100_000, "{held} bytes held for reassembly");
    // The client vanishes.
    drop(raw);
    let gone = Instant::now();
    let freed = pump_until(&mut server, Duration::from_secs(10), &mut |s| {
        s.peer(me).is_none()
    });
    assert!(freed, "the connection was not dropped");
    assert!(server_events.iter().any(
        |e| e.peer == me && matches!(e.event, Event::Disconnected(DisconnectReason::TimedOut))
    ));
    assert_eq!(server.peer_count(), 0);
    println!(
        "vanished client: {held} B held for reassembly, freed with the connection {:.2} s later (timeout {:?})",
        gone.elapsed().as_secs_f64(),
        fault_config().timeout
    );
}
