//! The plain wire format built by hand from `docs/PROTOCOL.md` (sections 1
//! to 3): packet and frame type bytes, varints and the packets the attack
//! and fuzz tests forge. Written from the document rather than the crate so
//! that those tests also check the one against the other.
//!
//! Shared by `legume-net/tests/fuzz/` and the root `tests/hostile/` (which
//! includes this file through `tests/common`), so it uses nothing but `std`.

/// The first three bytes of every plain packet: magic `LG` and version 2.
pub const PREFIX: [u8; 3] = [b'L', b'G', 2];
/// The padded length of CONNECT_REQUEST and CHALLENGE_RESPONSE.
pub const HANDSHAKE_LEN: usize = 300;
/// The length of a DATA packet's header, before its frames.
pub const DATA_HEADER_LEN: usize = 18;

// Packet type bytes (`PROTOCOL.md` section 2).
pub const CONNECT_REQUEST: u8 = 0x01;
pub const CHALLENGE: u8 = 0x02;
pub const CHALLENGE_RESPONSE: u8 = 0x03;
pub const ACCEPT: u8 = 0x04;
pub const REJECT: u8 = 0x05;
pub const DATA: u8 = 0x06;
pub const DISCONNECT: u8 = 0x07;

// Frame type bytes inside a DATA packet (`PROTOCOL.md` section 3).
pub const PING: u8 = 0x01;
pub const UNRELIABLE: u8 = 0x02;
pub const RELIABLE_MSG: u8 = 0x03;
pub const ORDERED_MSG: u8 = 0x04;
pub const RELIABLE_FRAG: u8 = 0x05;
pub const ORDERED_FRAG: u8 = 0x06;

/// Whether sequence number `a` is newer than `b`, modulo 2^16.
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Appends `v` as a little-endian base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the prefix and type byte of a packet of type `kind`.
pub fn prefix(out: &mut Vec<u8>, kind: u8) {
    out.extend_from_slice(&PREFIX);
    out.push(kind);
}

/// A new packet of type `kind`: its prefix and type byte.
pub fn packet(kind: u8) -> Vec<u8> {
    let mut p = Vec::new();
    prefix(&mut p, kind);
    p
}

/// The DATA sequence number of a datagram, if it is one.
pub fn data_seq(d: &[u8]) -> Option<u16> {
    (d.len() >= DATA_HEADER_LEN && d[..3] == PREFIX && d[3] == DATA)
        .then(|| u16::from_be_bytes([d[8], d[9]]))
}

/// A CONNECT_REQUEST for app protocol `protocol_id`.
pub fn connect_request(protocol_id: u64, nonce: u64) -> Vec<u8> {
    let mut p = packet(CONNECT_REQUEST);
    p.extend(protocol_id.to_be_bytes());
    p.extend(nonce.to_be_bytes());
    p.resize(HANDSHAKE_LEN, 0);
    p
}

/// A CHALLENGE_RESPONSE echoing a challenge's timestamp and 16-byte cookie.
pub fn challenge_response(protocol_id: u64, nonce: u64, issued_at: u64, cookie: &[u8]) -> Vec<u8> {
    let mut p = packet(CHALLENGE_RESPONSE);
    p.extend(protocol_id.to_be_bytes());
    p.extend(nonce.to_be_bytes());
    p.extend(issued_at.to_be_bytes());
    p.extend_from_slice(&cookie[..16]);
    p.resize(HANDSHAKE_LEN, 0);
    p
}

/// The header of a DATA packet, ready for frames.
pub fn data_header(session: u32, seq: u16, ack: u16, ack_bits: u32, ack_delay: u16) -> Vec<u8> {
    let mut p = packet(DATA);
    p.extend(session.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend(ack.to_be_bytes());
    p.extend(ack_bits.to_be_bytes());
    p.extend(ack_delay.to_be_bytes());
    p
}

/// A RELIABLE_FRAG or ORDERED_FRAG frame carrying `bytes`.
pub fn fragment_frame(ordered: bool, id: u16, index: u16, count: u16, bytes: &[u8]) -> Vec<u8> {
    let mut f = vec![if ordered { ORDERED_FRAG } else { RELIABLE_FRAG }];
    f.extend(id.to_be_bytes());
    f.extend(index.to_be_bytes());
    f.extend(count.to_be_bytes());
    put_varint(&mut f, bytes.len() as u32);
    f.extend_from_slice(bytes);
    f
}

/// Whether `d` is a DATA or DISCONNECT packet of `session`.
pub fn of_session(d: &[u8], session: u32) -> bool {
    d.len() >= 8
        && d[..3] == PREFIX
        && matches!(d[3], DATA | DISCONNECT)
        && d[4..8] == session.to_be_bytes()
}
