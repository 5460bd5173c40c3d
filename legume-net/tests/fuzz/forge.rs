//! Datagram generation shared by targets 2 and 3: [`Gen`] knows the live
//! session and the real datagrams seen, and forges packets and frames from
//! them (right and wrong lengths, sequence numbers, fragments, replays).

use legume_net::sim::Rng;

use crate::decode::{encode, gen_message, mutate};
use crate::draw::Draw;
use crate::util::wire::*;
use crate::util::*;

pub(crate) const CLIENT: usize = 0;
pub(crate) const SERVER: usize = 1;

/// What the generator knows of the live connection, and the real datagrams
/// it has seen, by sender.
#[derive(Debug, Default)]
pub(crate) struct Gen {
    pub(crate) session: u32,
    pub(crate) nonce: u64,
    /// Newest DATA sequence number sent by [client, server].
    pub(crate) seq: [u16; 2],
    /// Next message id of each sender's [reliable, ordered] channel, roughly.
    pub(crate) ids: [[u16; 2]; 2],
    /// Datagrams sent, by sender (bounded, replaced at random when full).
    pub(crate) sent: [Vec<Vec<u8>>; 2],
    /// Datagrams delivered, by sender.
    pub(crate) delivered: [Vec<Vec<u8>>; 2],
    /// Fragment frames still to send, by sender.
    pending: [Vec<Vec<u8>>; 2],
    /// The size a DATA packet is filled to, normally (the MTU).
    pub(crate) max_frame: usize,
}

const POOL: usize = 256;

fn keep(rng: &mut Rng, pool: &mut Vec<Vec<u8>>, d: &[u8]) {
    if pool.len() < POOL {
        pool.push(d.to_vec());
    } else {
        let i = rng.below(POOL as u64) as usize;
        pool[i].clear();
        pool[i].extend_from_slice(d);
    }
}

impl Gen {
    pub(crate) fn new(session: u32, nonce: u64) -> Self {
        Gen {
            session,
            nonce,
            max_frame: 1400,
            ..Gen::default()
        }
    }

    /// Records a real datagram sent by `from`.
    pub(crate) fn saw_sent(&mut self, rng: &mut Rng, from: usize, d: &[u8]) {
        if let Some(seq) = data_seq(d) {
            if seq_newer(seq, self.seq[from]) {
                self.seq[from] = seq;
            }
        }
        keep(rng, &mut self.sent[from], d);
    }

    pub(crate) fn saw_delivered(&mut self, rng: &mut Rng, from: usize, d: &[u8]) {
        keep(rng, &mut self.delivered[from], d);
    }

    /// A session id that is not the live one.
    fn wrong_session(&self, rng: &mut Rng) -> u32 {
        let s = match rng.below(4) {
            0 => 0,
            1 => self.session ^ (1 << rng.below(32)),
            _ => rng.next_u64() as u32,
        };
        if s == self.session {
            !s
        } else {
            s
        }
    }

    /// A message for a frame: valid, damaged, or of no registered type.
    pub(crate) fn message(&self, rng: &mut Rng) -> Vec<u8> {
        match rng.below(10) {
            0..=3 => encode(&padded(rng.next_u64() as u32, rng.below(48) as usize)),
            4..=6 => encode(gen_message(rng).as_ref()),
            7 => {
                let mut m = encode(gen_message(rng).as_ref());
                mutate(rng, &mut m, &[], 600);
                m
            }
            8 => {
                let mut m = vec![*rng.pick(&[0, 19, 99, 255])];
                m.extend(rng.bytes_in(0, 16));
                m
            }
            _ => Vec::new(),
        }
    }

    /// A message id for a frame from `from` on `channel`: around where the
    /// receiver's window is, just past it, behind it, or anywhere.
    fn message_id(&self, rng: &mut Rng, from: usize, channel: usize) -> u16 {
        let next = self.ids[from][channel];
        match rng.below(10) {
            0..=4 => next.wrapping_add(rng.below(40) as u16),
            5 => next.wrapping_sub(1 + rng.below(40) as u16),
            6 => next.wrapping_add(1000 + rng.below(48) as u16),
            7 => next.wrapping_add(1024),
            8 => next.wrapping_add(0x8000),
            _ => rng.next_u64() as u16,
        }
    }

    /// A length field for `len` bytes: right, or wrong in one of many ways.
    pub(crate) fn length(rng: &mut Rng, out: &mut Vec<u8>, len: usize, honest: bool) {
        if honest || rng.chance(0.85) {
            put_varint(out, len as u32);
            return;
        }
        match rng.below(6) {
            0 => put_varint(out, len as u32 + 1 + rng.below(8) as u32),
            1 => put_varint(out, (len as u32).saturating_sub(1 + rng.below(4) as u32)),
            2 => put_varint(out, u32::MAX),
            3 => out.extend_from_slice(&[0x80, 0x00]),
            4 => out.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            _ => put_varint(out, rng.next_u64() as u32),
        }
    }

    /// One frame from `from`; with `honest`, always well-formed (its
    /// contents may still be nonsense to the receiver).
    pub(crate) fn frame(&self, rng: &mut Rng, from: usize, honest: bool) -> Vec<u8> {
        let mut f = Vec::new();
        let channel = rng.below(2) as usize;
        match rng.below(if honest { 10 } else { 12 }) {
            0 => f.push(PING),
            1..=2 => {
                let m = self.message(rng);
                f.push(UNRELIABLE);
                Self::length(rng, &mut f, m.len(), honest);
                f.extend(m);
            }
            3..=5 => {
                let m = self.message(rng);
                f.push([RELIABLE_MSG, ORDERED_MSG][channel]);
                f.extend(self.message_id(rng, from, channel).to_be_bytes());
                Self::length(rng, &mut f, m.len(), honest);
                f.extend(m);
            }
            6..=9 => {
                let count: u16 = match rng.below(8) {
                    0 => 0,
                    1 => 1,
                    2 => u16::MAX,
                    3 => 2,
                    4 => 2 + rng.below(8) as u16,
                    _ => rng.next_u64() as u16,
                };
                let index: u16 = match rng.below(6) {
                    0 => count,
                    1 => count.wrapping_add(1),
                    2 => u16::MAX,
                    _ => rng.below(u64::from(count).max(1)) as u16,
                };
                let len = match rng.below(6) {
                    0 => 0,
                    1 => 1,
                    _ => rng.below(300) as usize,
                };
                f.push([RELIABLE_FRAG, ORDERED_FRAG][channel]);
                f.extend(self.message_id(rng, from, channel).to_be_bytes());
                f.extend(index.to_be_bytes());
                f.extend(count.to_be_bytes());
                Self::length(rng, &mut f, len, honest);
                f.extend(rng.bytes(len));
            }
            10 => f.push(*rng.pick(&[0x00, 0x07, 0x08, 0x7F, 0x80, 0xFF])),
            _ => {
                // A frame cut short.
                let mut whole = self.frame(rng, from, true);
                whole.truncate(rng.below(whole.len() as u64) as usize);
                f = whole;
            }
        }
        f
    }

    /// The frames of a whole fragmented message, shuffled, some repeated,
    /// some missing, one maybe disagreeing about the count.
    fn fragment_set(&self, rng: &mut Rng, from: usize) -> Vec<Vec<u8>> {
        let msg = match rng.below(4) {
            0 => encode(&padded(
                rng.next_u64() as u32,
                100 + rng.below(4000) as usize,
            )),
            1 => rng.bytes_in(50, 3050),
            _ => {
                let mut m = self.message(rng);
                m.extend(std::iter::repeat_n(0u8, rng.below(64) as usize));
                m
            }
        };
        let size = 1 + rng.below(600) as usize;
        let count = msg.len().div_ceil(size).max(2).min(usize::from(u16::MAX)) as u16;
        let channel = rng.below(2) as usize;
        let id = self.message_id(rng, from, channel);
        let mut frames = Vec::new();
        for index in 0..count {
            let start = usize::from(index) * size;
            let part = msg.get(start..(start + size).min(msg.len())).unwrap_or(&[]);
            let part = if part.is_empty() { &[0u8][..] } else { part };
            let copies = match rng.below(20) {
                0 => 0,
                1 => 2,
                _ => 1,
            };
            for _ in 0..copies {
                let mut f = vec![[RELIABLE_FRAG, ORDERED_FRAG][channel]];
                f.extend(id.to_be_bytes());
                f.extend(index.to_be_bytes());
                let c = if rng.chance(0.02) { count + 1 } else { count };
                f.extend(c.to_be_bytes());
                put_varint(&mut f, part.len() as u32);
                f.extend_from_slice(part);
                frames.push(f);
            }
        }
        for i in (1..frames.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            frames.swap(i, j);
        }
        frames
    }

    /// Fragments of many messages at once, each announcing many fragments:
    /// what fills a reassembly budget fastest.
    fn fragment_storm(&self, rng: &mut Rng, from: usize) -> Vec<Vec<u8>> {
        let channel = rng.below(2) as usize;
        let next = self.ids[from][channel];
        let count = *rng.pick(&[u16::MAX, 5000, 600]);
        (0..rng.below(60))
            .map(|k| {
                let mut f = vec![[RELIABLE_FRAG, ORDERED_FRAG][channel]];
                f.extend(next.wrapping_add(k as u16).to_be_bytes());
                f.extend((rng.below(u64::from(count)) as u16).to_be_bytes());
                f.extend(count.to_be_bytes());
                let len = 1 + rng.below(8) as usize;
                put_varint(&mut f, len as u32);
                f.extend(rng.bytes(len));
                f
            })
            .collect()
    }

    /// A DATA header from `from`.
    fn data_header(&self, rng: &mut Rng, from: usize, session: u32) -> Vec<u8> {
        let newest = self.seq[from];
        let seq = match rng.below(10) {
            0..=5 => newest.wrapping_add(1 + rng.below(5) as u16),
            6 => newest.wrapping_add(6 + rng.below(40) as u16),
            7 => newest.wrapping_sub(rng.below(40) as u16),
            8 => newest.wrapping_add(*rng.pick(&[1000, 1024, 1100, 0x8000, 0x8001])),
            _ => rng.next_u64() as u16,
        };
        // An ack names what the receiver sent.
        let theirs = self.seq[1 - from];
        let ack = match rng.below(6) {
            0..=2 => theirs.wrapping_sub(rng.below(40) as u16),
            3 => theirs.wrapping_add(1 + rng.below(4) as u16),
            4 => u16::MAX,
            _ => rng.next_u64() as u16,
        };
        let bits = match rng.below(4) {
            0 => 0,
            1 => u32::MAX,
            _ => rng.next_u64() as u32,
        };
        let delay = rng.edgy(u64::from(u16::MAX)) as u16;
        let mut d = Vec::with_capacity(self.max_frame + 64);
        prefix(&mut d, DATA);
        d.extend(session.to_be_bytes());
        d.extend(seq.to_be_bytes());
        d.extend(ack.to_be_bytes());
        d.extend(bits.to_be_bytes());
        d.extend(delay.to_be_bytes());
        d
    }

    /// A DATA packet from `from` with the given session and frames drawn
    /// from every kind; with `honest_frames`, every frame is well-formed.
    pub(crate) fn data(
        &mut self,
        rng: &mut Rng,
        from: usize,
        session: u32,
        honest_frames: bool,
    ) -> Vec<u8> {
        let mut d = self.data_header(rng, from, session);
        let room = if rng.chance(0.05) {
            8000
        } else {
            self.max_frame
        };
        if !self.pending[from].is_empty() && rng.chance(0.7) {
            while let Some(f) = self.pending[from].pop() {
                if d.len() + f.len() > room && d.len() > 18 {
                    self.pending[from].push(f);
                    break;
                }
                d.extend(f);
            }
            return d;
        }
        match rng.below(20) {
            0..=1 => {} // ack-only
            2..=3 => {
                self.pending[from] = self.fragment_set(rng, from);
                return self.data_with_pending(d, from, room);
            }
            4 => {
                self.pending[from] = self.fragment_storm(rng, from);
                return self.data_with_pending(d, from, room);
            }
            _ => {
                for _ in 0..1 + rng.below(8) {
                    let f = self.frame(rng, from, honest_frames);
                    if d.len() + f.len() > room {
                        break;
                    }
                    d.extend(f);
                }
            }
        }
        d
    }

    fn data_with_pending(&mut self, mut d: Vec<u8>, from: usize, room: usize) -> Vec<u8> {
        while let Some(f) = self.pending[from].pop() {
            if d.len() + f.len() > room && d.len() > 18 {
                self.pending[from].push(f);
                break;
            }
            d.extend(f);
        }
        d
    }

    /// A handshake or DISCONNECT packet, of the right size or not.
    fn other_packet(&self, rng: &mut Rng, session: u32) -> Vec<u8> {
        let nonce = if rng.chance(0.6) {
            self.nonce
        } else {
            rng.next_u64()
        };
        let mut d = Vec::new();
        match rng.below(6) {
            0 | 1 => {
                let kind = [CONNECT_REQUEST, CHALLENGE_RESPONSE][rng.below(2) as usize];
                prefix(&mut d, kind);
                d.extend(rng.edgy(1).to_be_bytes()); // protocol id 0 or 1
                d.extend(nonce.to_be_bytes());
                d.extend(rng.bytes(24));
                let size = *rng.pick(&[300, 300, 300, 299, 301, 44, 20]);
                d.resize(size, 0);
            }
            2 => {
                prefix(&mut d, CHALLENGE);
                d.extend(nonce.to_be_bytes());
                d.extend(rng.bytes(24));
                d.truncate(*rng.pick(&[36, 36, 35, 12]));
            }
            3 => {
                prefix(&mut d, ACCEPT);
                d.extend(nonce.to_be_bytes());
                d.extend(rng.next_u64().to_be_bytes()[..4].iter());
                d.truncate(*rng.pick(&[16, 16, 15]));
                if rng.chance(0.1) {
                    d.push(0);
                }
            }
            _ => {
                let disconnect = rng.chance(0.5);
                if disconnect {
                    // The live session's DISCONNECT ends the episode: rarely.
                    let session = if session == self.session && rng.chance(0.95) {
                        self.wrong_session(rng)
                    } else {
                        session
                    };
                    prefix(&mut d, DISCONNECT);
                    d.extend(session.to_be_bytes());
                } else {
                    prefix(&mut d, REJECT);
                    d.extend(nonce.to_be_bytes());
                }
                let reason: Vec<u8> = match rng.below(3) {
                    0 => rng.text(255).into_bytes(),
                    1 => rng.bytes_in(0, 255),
                    _ => vec![0xC3],
                };
                let len = if rng.chance(0.8) {
                    reason.len() as u8
                } else {
                    rng.byte()
                };
                d.push(len);
                d.extend(reason);
            }
        }
        d
    }

    /// A random captured datagram, changed.
    pub(crate) fn mutated(&self, rng: &mut Rng, session: Option<u32>) -> Vec<u8> {
        let pool = &self.sent[rng.below(2) as usize];
        if pool.is_empty() {
            return rng.bytes_in(0, 64);
        }
        let mut d = rng.pick(pool).clone();
        if let Some(s) = session {
            if d.len() >= 8 && matches!(d[3], DATA | DISCONNECT) {
                d[4..8].copy_from_slice(&s.to_be_bytes());
            }
        }
        let donor = rng.pick(pool).clone();
        for _ in 0..1 + rng.below(3) {
            match rng.below(4) {
                0 if d.len() >= 18 => {
                    // Overwrite a header field: seq, ack, ack bits or delay.
                    let at = *rng.pick(&[8usize, 10, 12, 14, 16]);
                    let v = rng.next_u64().to_be_bytes();
                    d[at..at + 2].copy_from_slice(&v[..2]);
                }
                _ => mutate(rng, &mut d, &donor, 9000),
            }
        }
        d
    }

    /// Any datagram from `from`. DATA and DISCONNECT carry the live session
    /// id with probability `live`.
    pub(crate) fn datagram(&mut self, rng: &mut Rng, from: usize, live: f64) -> Vec<u8> {
        let session = if rng.chance(live) {
            self.session
        } else {
            self.wrong_session(rng)
        };
        match rng.below(20) {
            0 => rng.bytes_in(0, 1500),
            1 => {
                let mut d = b"LG".to_vec();
                d.push(if rng.chance(0.8) { 2 } else { rng.byte() });
                d.push(rng.below(10) as u8);
                d.extend(rng.bytes_in(0, 400));
                d
            }
            2..=3 => self.other_packet(rng, session),
            4..=7 => {
                let keep_live = rng.chance(live).then_some(self.session);
                self.mutated(rng, keep_live)
            }
            8 if !self.delivered[from].is_empty() => rng.pick(&self.delivered[from]).clone(),
            _ => {
                let honest_frames = rng.chance(0.5);
                self.data(rng, from, session, honest_frames)
            }
        }
    }

    /// Records a fuzzed datagram handed to the receiver of `from`'s
    /// direction: a new sequence number moves where the receiver is.
    pub(crate) fn saw_fuzzed(&mut self, from: usize, d: &[u8]) {
        if let Some(seq) = data_seq(d) {
            if d[4..8] == self.session.to_be_bytes()
                && seq_newer(seq, self.seq[from])
                && seq.wrapping_sub(self.seq[from]) < 1000
            {
                self.seq[from] = seq;
            }
        }
    }

    /// A datagram that cannot pass for a live packet of the session: DATA
    /// or DISCONNECT with another session, a live-session DATA packet whose
    /// frames are invalid (so it is dropped whole), or a real datagram of
    /// this direction that was already delivered (a duplicate).
    pub(crate) fn harmless(&mut self, rng: &mut Rng, from: usize) -> Vec<u8> {
        match rng.below(10) {
            0..=2 if !self.delivered[from].is_empty() => rng.pick(&self.delivered[from]).clone(),
            3..=4 => {
                // Well-formed frames, then an unknown frame type: the
                // receiver validates every frame before acting on any.
                let mut d = self.data_header(rng, from, self.session);
                for _ in 0..rng.below(6) {
                    d.extend(self.frame(rng, from, true));
                }
                d.push(*rng.pick(&[0x00, 0x07, 0xFF]));
                d
            }
            5 => {
                let mut d = self.data_header(rng, from, self.session);
                d.truncate(rng.below(18) as usize);
                d
            }
            _ => {
                let pending = std::mem::take(&mut self.pending[from]);
                let mut d = self.datagram(rng, from, 0.0);
                self.pending[from] = pending;
                // A mutation may have made it a packet of the session again.
                if d.len() >= 8
                    && d[..3] == [b'L', b'G', 2]
                    && matches!(d[3], DATA | DISCONNECT)
                    && d[4..8] == self.session.to_be_bytes()
                {
                    d[4] ^= 0x5A;
                }
                d
            }
        }
    }
}
