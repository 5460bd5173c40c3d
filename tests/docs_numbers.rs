//! The numbers the documents state, read back from the code so that they
//! cannot drift: `docs/PROTOCOL.md`'s packet sizes (section 2), DATA
//! header (2.6), frame overheads (3), largest unreliable message and
//! fragment size (4), connection states and timer defaults (6), connect
//! token sizes (8.2) and the `Config` defaults quoted in its prose;
//! `docs/WIRE_TYPES.md`'s field sizes (2 to 12), golden fingerprints and
//! schema summary sizes (13); README's MTU, message size, statistics
//! window and first app type id.
//!
//! Sizes are measured on the wire: a client and a server endpoint talk
//! through plain function calls and every datagram is recorded, so only
//! public API is used and the test reads what is sent, not a constant that
//! might not be the one used. Rows are found by their label (a table cell,
//! a heading number, a backticked name), never by line number, and every
//! failure names the document, row and both values.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use legume::net::{ConnectToken, Connection, PrivateKey, ServerEndpoint, TokenParams};
use legume::prelude::*;
use legume::{SchemaFingerprint, FIRST_USER_TYPE_ID};

const PROTOCOL: &str = include_str!("../docs/PROTOCOL.md");
const WIRE_TYPES: &str = include_str!("../docs/WIRE_TYPES.md");
const README: &str = include_str!("../README.md");
/// The test that pins the golden schema lines against derived messages.
const SCHEMA_FINGERPRINT_TEST: &str = include_str!("schema_fingerprint.rs");

// ---- reading the documents -------------------------------------------------------------------

/// The text of the section whose heading starts with `heading` (for
/// example `"## 6."` or `"### 2.6"`), up to the next heading of the same or
/// a higher level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let start = doc
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain([0])
        .find(|&i| doc[i..].starts_with(heading) && doc[i + heading.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no section `{heading}` in the document"));
    let body = &doc[start..];
    let mut end = body.len();
    let mut offset = body.find('\n').map_or(body.len(), |i| i + 1);
    let mut in_code = false;
    for line in body[offset..].split_inclusive('\n') {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            end = offset;
            break;
        }
        offset += line.len();
    }
    &body[..end]
}

/// The cells of a markdown table line, trimmed, with backticks removed.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    let inner = line.strip_prefix('|').unwrap_or(line);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner
        .split('|')
        .map(|c| c.trim().replace('`', ""))
        .collect()
}

/// The cell in column `column` (by header) of the row one of whose cells is
/// exactly `label`, in the first table of `text` that has such a row.
fn table_cell(text: &str, label: &str, column: &str, what: &str) -> String {
    let mut header: Option<Vec<String>> = None;
    let mut previous_was_table = false;
    for line in text.lines() {
        let is_table = line.trim_start().starts_with('|');
        if !is_table {
            previous_was_table = false;
            header = None;
            continue;
        }
        let row = cells(line);
        if !previous_was_table {
            header = Some(row);
            previous_was_table = true;
            continue;
        }
        previous_was_table = true;
        if row.iter().any(|c| c == label) {
            let header = header.as_ref().expect("a table has a header");
            let col = header.iter().position(|h| h == column).unwrap_or_else(|| {
                panic!("{what}: the table with row `{label}` has no column `{column}`")
            });
            return row
                .get(col)
                .unwrap_or_else(|| panic!("{what}: row `{label}` has no cell in column `{column}`"))
                .clone();
        }
    }
    panic!("{what}: no table row labelled `{label}`")
}

/// The integers of `text` in order (`1,200` is 1200; `2⁻³²` is 2).
fn integers(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut digits = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let separator =
            c == ',' && !digits.is_empty() && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !separator && !digits.is_empty() {
            out.push(digits.parse().expect("digits"));
            digits.clear();
        }
    }
    if !digits.is_empty() {
        out.push(digits.parse().expect("digits"));
    }
    out
}

/// `text` with every run of whitespace made one space, so that phrases
/// are found wherever the lines break.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The number right after the first `prefix` in `text` (thousands
/// separators allowed), or a panic naming `what`.
fn number_after(text: &str, prefix: &str, what: &str) -> u64 {
    let text = &flat(text);
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{what}: `{prefix}` not found"));
    let rest = &text[at + prefix.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ','))
        .unwrap_or(rest.len());
    rest[..end]
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{what}: no number after `{prefix}`"))
}

/// A default as the documents write it: `100 ms`, `10 s`, `1 MiB`,
/// `16 × 1400 bytes`, `256`; in milliseconds, bytes or a plain count.
fn quantity(text: &str, what: &str) -> u128 {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == ' ' || c == '×'))
        .unwrap_or(text.len());
    let factors: Vec<u128> = text[..end]
        .split('×')
        .map(|f| {
            f.trim()
                .replace(',', "")
                .parse()
                .unwrap_or_else(|_| panic!("{what}: `{text}` does not start with a number"))
        })
        .collect();
    let n: u128 = factors.iter().product();
    let unit = text[end..]
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    n * match unit {
        "ms" => 1,
        "s" => 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => 1,
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---- measuring the wire ----------------------------------------------------------------------

#[derive(Debug, Message)]
#[message(id = 20)]
struct Blob {
    data: Vec<u8>,
}

/// A message whose encoding is exactly `len` bytes.
fn blob(len: usize) -> Blob {
    (0..len)
        .rev()
        .map(|n| Blob { data: vec![7; n] })
        .find(|b| b.message_len() == len)
        .unwrap_or_else(|| panic!("no blob of {len} bytes"))
}

fn factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Blob>().expect("one message");
    Arc::new(f)
}

const PACKET_DATA: u8 = 0x06;
const DATA_HEADER: usize = 18;

/// A client and a server endpoint joined by function calls on a test
/// clock; every datagram is recorded.
struct Pair {
    now: Instant,
    client: Connection,
    server: ServerEndpoint,
    addr: SocketAddr,
    /// (from the client?, bytes) of every datagram, in order.
    wire: Vec<(bool, Vec<u8>)>,
}

const SERVER_ADDR: &str = "192.0.2.1:4000";
const UNIX_NOW: u64 = 1_700_000_000;

impl Pair {
    fn plain(config: Config) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            client: Connection::connect(config.clone(), factory(), now, 42),
            server: ServerEndpoint::with_insecure_seed(config, factory(), now, 7),
            addr: "192.0.2.2:5000".parse().expect("address"),
            wire: Vec::new(),
        }
    }

    fn secure(config: Config) -> Pair {
        let now = Instant::now();
        let key = PrivateKey::from_bytes([0x11; 32]);
        let server_addr: SocketAddr = SERVER_ADDR.parse().expect("address");
        let params = TokenParams::new(config.protocol_id, 1, vec![server_addr]);
        let token = ConnectToken::issue_at(&key, &params, UNIX_NOW).expect("token");
        let mut server = ServerEndpoint::with_insecure_seed(config.clone(), factory(), now, 7);
        server.require_connect_tokens(key, server_addr, now, UNIX_NOW);
        Pair {
            now,
            client: Connection::connect_with_token(config, factory(), now, 42, &token),
            server,
            addr: "192.0.2.2:5000".parse().expect("address"),
            wire: Vec::new(),
        }
    }

    /// Everything either side sends now, delivered and recorded, until
    /// both are quiet.
    fn exchange(&mut self) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut moved = false;
            while let Some(n) = self.client.poll_transmit(self.now, &mut buf) {
                self.wire.push((true, buf[..n].to_vec()));
                self.server.handle_datagram(self.now, self.addr, &buf[..n]);
                moved = true;
            }
            while let Some((_, n)) = self.server.poll_transmit(self.now, &mut buf) {
                self.wire.push((false, buf[..n].to_vec()));
                self.client.handle_datagram(self.now, &buf[..n]);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Runs for `span` in 1 ms steps.
    fn run(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.now += Duration::from_millis(1);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
            self.exchange();
        }
        while self.server.poll_event().is_some() {}
        while self.client.poll_event().is_some() {}
    }

    fn connected(config: Config, secure: bool) -> Pair {
        let mut p = if secure {
            Pair::secure(config)
        } else {
            Pair::plain(config)
        };
        p.run(Duration::from_millis(50));
        assert!(p.client.is_connected(), "the test pair connects");
        p
    }

    /// The one datagram the client sends right away after queueing `msg`.
    fn send_one(&mut self, msg: &Blob, delivery: Delivery) -> Vec<u8> {
        self.client.send(msg, delivery).expect("send");
        let mut buf = vec![0u8; 65_536];
        let n = self
            .client
            .poll_transmit(self.now, &mut buf)
            .expect("a packet goes out at once");
        self.server.handle_datagram(self.now, self.addr, &buf[..n]);
        buf.truncate(n);
        buf
    }

    /// Sizes of the datagrams seen, by packet type byte.
    fn sizes(&self) -> BTreeMap<u8, Vec<usize>> {
        let mut out: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for (_, d) in &self.wire {
            out.entry(d[3]).or_default().push(d.len());
        }
        out
    }
}

// ---- PROTOCOL.md section 2: packet sizes -----------------------------------------------------

/// A size cell of section 2: `exactly 300 (padded)`, `36`, `13 + reason,
/// at most 268`, `18 + frames, at most MTU`.
#[derive(Debug, PartialEq)]
enum Size {
    Exact(usize),
    /// A fixed part plus a variable one, and the most in all (`None`: the MTU).
    Plus {
        base: usize,
        max: Option<usize>,
    },
}

fn packet_size(name: &str) -> Size {
    let what = format!("PROTOCOL.md section 2, packet `{name}`, column `size`");
    let cell = table_cell(section(PROTOCOL, "## 2."), name, "size", &what);
    let cell = cell.split(';').next().expect("split gives one part");
    let n = integers(cell);
    if cell.contains('+') {
        let max = if cell.contains("at most MTU") {
            None
        } else {
            Some(number_after(cell, "at most ", &what) as usize)
        };
        Size::Plus {
            base: *n
                .first()
                .unwrap_or_else(|| panic!("{what}: no number in `{cell}`"))
                as usize,
            max,
        }
    } else {
        Size::Exact(
            *n.first()
                .unwrap_or_else(|| panic!("{what}: no number in `{cell}`")) as usize,
        )
    }
}

fn packet_type(name: &str) -> u8 {
    let what = format!("PROTOCOL.md section 2, packet `{name}`, column `type`");
    let cell = table_cell(section(PROTOCOL, "## 2."), name, "type", &what);
    let hex = cell
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("{what}: `{cell}` is not 0x.."));
    u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("{what}: `{cell}` is not hex"))
}

fn assert_exact(sizes: &BTreeMap<u8, Vec<usize>>, name: &str) {
    let ty = packet_type(name);
    let seen = sizes
        .get(&ty)
        .unwrap_or_else(|| panic!("no {name} (type {ty:#04x}) was sent in the test"));
    let Size::Exact(doc) = packet_size(name) else {
        panic!("PROTOCOL.md section 2: `{name}` should have an exact size");
    };
    for &n in seen {
        assert_eq!(
            n, doc,
            "PROTOCOL.md section 2, packet `{name}`: the doc says {doc} bytes, the code sends {n}"
        );
    }
}

/// A packet with a reason: `base + reason, at most max`, checked with a
/// short and an over-long reason.
fn assert_reason_size(name: &str, short: (usize, usize), long: usize) {
    let Size::Plus { base, max } = packet_size(name) else {
        panic!("PROTOCOL.md section 2: `{name}` should be `N + reason, at most M`");
    };
    let (reason_len, n) = short;
    assert_eq!(
        base,
        n - reason_len,
        "PROTOCOL.md section 2, packet `{name}`: the doc says {base} + reason, the code sends {n} bytes for a {reason_len}-byte reason"
    );
    assert_eq!(
        max,
        Some(long),
        "PROTOCOL.md section 2, packet `{name}`: the doc's `at most` is {max:?}, the code sends {long} bytes for a 1000-byte reason"
    );
}

#[test]
fn plain_handshake_packet_sizes() {
    let mut p = Pair::connected(Config::default(), false);
    let sizes = p.sizes();
    for name in [
        "CONNECT_REQUEST",
        "CHALLENGE",
        "CHALLENGE_RESPONSE",
        "ACCEPT",
    ] {
        assert_exact(&sizes, name);
    }
    // DISCONNECT: short and long reasons.
    let short = disconnect_size(&mut p, "bye");
    let mut p = Pair::connected(Config::default(), false);
    let long = disconnect_size(&mut p, &"x".repeat(1000));
    assert_reason_size("DISCONNECT", (3, short), long);
}

/// The size of the DISCONNECT the client sends with `reason`.
fn disconnect_size(p: &mut Pair, reason: &str) -> usize {
    let from = p.wire.len();
    p.client.disconnect(reason);
    p.exchange();
    let ty = [packet_type("DISCONNECT"), packet_type("SECURE_DISCONNECT")];
    let sizes: Vec<usize> = p.wire[from..]
        .iter()
        .filter(|(c, d)| *c && ty.contains(&d[3]))
        .map(|(_, d)| d.len())
        .collect();
    assert!(!sizes.is_empty(), "disconnect() sends DISCONNECT");
    assert!(sizes.iter().all(|&n| n == sizes[0]), "copies are identical");
    sizes[0]
}

#[test]
fn reject_size() {
    let mut sizes = Vec::new();
    for reason in ["no".to_owned(), "x".repeat(1000)] {
        let mut p = Pair::plain(Config::default());
        let r = reason.clone();
        p.server
            .set_connect_hook(Box::new(move |_| Decision::Reject(r.clone())));
        p.run(Duration::from_millis(50));
        assert_eq!(
            p.client.state(),
            State::Disconnected,
            "the client is refused"
        );
        let ty = packet_type("REJECT");
        let n = p
            .wire
            .iter()
            .find(|(c, d)| !*c && d[3] == ty)
            .map(|(_, d)| d.len())
            .expect("the server sends REJECT");
        sizes.push(n);
    }
    assert_reason_size("REJECT", (2, sizes[0]), sizes[1]);
}

#[test]
fn secure_packet_sizes() {
    let mut p = Pair::connected(Config::default(), true);
    let sizes = p.sizes();
    for name in [
        "SECURE_CONNECT_REQUEST",
        "CHALLENGE",
        "SECURE_CHALLENGE_RESPONSE",
        "SECURE_ACCEPT",
    ] {
        assert_exact(&sizes, name);
    }
    let short = disconnect_size(&mut p, "bye");
    let mut p = Pair::connected(Config::default(), true);
    let long = disconnect_size(&mut p, &"x".repeat(1000));
    assert_reason_size("SECURE_DISCONNECT", (3, short), long);

    // DATA in the secure mode: 18 + frames + 16, at most the MTU.
    let secure_max = p.client.max_unreliable_size();
    let plain_max = Pair::connected(Config::default(), false)
        .client
        .max_unreliable_size();
    let tag = number_after(
        section(PROTOCOL, "### 8.8"),
        "the largest unreliable message are ",
        "PROTOCOL.md 8.8, the secure mode's smaller frame budget",
    ) as usize;
    assert_eq!(
        plain_max - secure_max,
        tag,
        "PROTOCOL.md 8.8: the largest unreliable message is {tag} bytes less in the secure mode, says the doc; the code gives {plain_max} and {secure_max}"
    );
    let mut p = Pair::connected(Config::default(), true);
    let n = p.send_one(&blob(secure_max), Delivery::Unreliable).len();
    assert_eq!(
        n,
        Config::default().mtu,
        "a secure DATA packet with the largest unreliable message fills the MTU"
    );
}

// ---- PROTOCOL.md 2.6, 3, 4: DATA header, frames, largest messages ----------------------------

#[test]
fn data_header_size() {
    let what = "PROTOCOL.md 2.6, `The header is N bytes`";
    let doc = number_after(section(PROTOCOL, "### 2.6"), "The header is ", what) as usize;
    assert_eq!(doc, DATA_HEADER, "{what}: the test's header size disagrees");
    let Size::Plus { base, max: None } = packet_size("DATA") else {
        panic!("PROTOCOL.md section 2, packet `DATA`: should be `N + frames, at most MTU`");
    };
    assert_eq!(
        base, doc,
        "PROTOCOL.md section 2, packet `DATA`: {base} + frames, but 2.6 says the header is {doc}"
    );
    // An ack-only packet is the header alone, and no DATA packet is shorter.
    let mut p = Pair::connected(Config::default(), false);
    p.send_one(&blob(10), Delivery::Reliable);
    p.run(Duration::from_millis(20));
    let data: Vec<usize> = p
        .wire
        .iter()
        .filter(|(_, d)| d[3] == PACKET_DATA)
        .map(|(_, d)| d.len())
        .collect();
    assert_eq!(
        data.iter().min(),
        Some(&doc),
        "PROTOCOL.md 2.6: an ack-only DATA packet should be the {doc}-byte header alone"
    );
}

/// The overhead column of section 3 for `frame`: (under 128 bytes, from 128).
fn frame_overheads(frame: &str) -> (usize, usize) {
    let what = format!("PROTOCOL.md section 3, frame `{frame}`, column `overhead`");
    let cell = table_cell(section(PROTOCOL, "## 3."), frame, "overhead", &what);
    let small = number_after(&cell, "", &what) as usize;
    let large = number_after(&cell, "under 128 bytes, ", &what) as usize;
    (small, large)
}

fn frame_type(frame: &str) -> u8 {
    let what = format!("PROTOCOL.md section 3, frame `{frame}`, column `type`");
    let cell = table_cell(section(PROTOCOL, "## 3."), frame, "type", &what);
    u8::from_str_radix(cell.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("{what}: `{cell}` is not hex"))
}

/// The overhead of the one frame in `packet`, which carries `len` bytes of
/// message, checking that it is a `frame`.
fn measured_overhead(packet: &[u8], frame: &str, len: usize) -> usize {
    assert_eq!(packet[3], PACKET_DATA, "a DATA packet");
    assert_eq!(
        packet[DATA_HEADER],
        frame_type(frame),
        "the packet's first frame is a {frame}"
    );
    packet.len() - DATA_HEADER - len
}

#[test]
fn frame_overheads_match_the_encoding() {
    for (frame, delivery) in [
        ("UNRELIABLE", Delivery::Unreliable),
        ("RELIABLE", Delivery::Reliable),
        ("ORDERED", Delivery::ReliableOrdered),
    ] {
        let (small, large) = frame_overheads(frame);
        for (len, doc) in [(127, small), (128, large), (1000, large)] {
            let mut p = Pair::connected(Config::default(), false);
            let packet = p.send_one(&blob(len), delivery);
            let got = measured_overhead(&packet, frame, len);
            assert_eq!(
                got, doc,
                "PROTOCOL.md section 3, frame `{frame}`, overhead for a {len}-byte message: the doc says {doc}, the code takes {got}"
            );
        }
    }
    // PING: an idle connection's keep-alive is the header and the frame.
    let ping = frame_overhead_of("PING");
    let mut p = Pair::connected(Config::default(), false);
    let from = p.wire.len();
    p.run(Config::default().ping_interval + Duration::from_millis(10));
    let ping_type = frame_type("PING");
    let n = p.wire[from..]
        .iter()
        .find(|(_, d)| d[3] == PACKET_DATA && d.get(DATA_HEADER) == Some(&ping_type))
        .map(|(_, d)| d.len())
        .expect("an idle connection sends a PING");
    assert_eq!(
        n - DATA_HEADER,
        ping,
        "PROTOCOL.md section 3, frame `PING`: the doc says {ping}, the code takes {}",
        n - DATA_HEADER
    );
}

/// The overhead column of section 3 for a frame with one size.
fn frame_overhead_of(frame: &str) -> usize {
    let what = format!("PROTOCOL.md section 3, frame `{frame}`, column `overhead`");
    let cell = table_cell(section(PROTOCOL, "## 3."), frame, "overhead", &what);
    number_after(&cell, "", &what) as usize
}

/// The fragment size of section 4 (`MTU − 18 − 9`) at `mtu`.
fn doc_fragment_size(mtu: usize) -> usize {
    let what = "PROTOCOL.md section 4, `fragment size (MTU − A − B`";
    let text = flat(section(PROTOCOL, "## 4."));
    let at = text
        .find("fragment size (MTU − ")
        .unwrap_or_else(|| panic!("{what}: not found"));
    let rest = &text[at..];
    let until = rest.find([',', ')']).unwrap_or(rest.len());
    let parts: u64 = integers(&rest[..until]).iter().sum();
    mtu - parts as usize
}

#[test]
fn fragment_size_and_overheads() {
    let mtu = Config::default().mtu;
    let frag = doc_fragment_size(mtu);
    for (frame, delivery) in [
        ("RELIABLE_FRAGMENT", Delivery::Reliable),
        ("ORDERED_FRAGMENT", Delivery::ReliableOrdered),
    ] {
        let (small, large) = frame_overheads(frame);
        let whole = if delivery == Delivery::Reliable {
            "RELIABLE"
        } else {
            "ORDERED"
        };
        // A message of the fragment size goes whole...
        let mut p = Pair::connected(Config::default(), false);
        let packet = p.send_one(&blob(frag), delivery);
        assert_eq!(
            packet[DATA_HEADER],
            frame_type(whole),
            "PROTOCOL.md section 4: a message of the fragment size ({frag} = MTU − 18 − 9) is not fragmented"
        );
        // ...one byte more is split: a full first piece, then the rest.
        let mut p = Pair::connected(Config::default(), false);
        let rest = 127;
        let first = p.send_one(&blob(frag + rest), delivery);
        assert_eq!(
            first.len(),
            mtu,
            "PROTOCOL.md section 4: a first fragment of the fragment size ({frag}) fills the {mtu}-byte MTU"
        );
        let got = measured_overhead(&first, frame, frag);
        assert_eq!(
            got, large,
            "PROTOCOL.md section 3, frame `{frame}`, overhead for a {frag}-byte piece: the doc says {large}, the code takes {got}"
        );
        let mut buf = vec![0u8; 65_536];
        let n = p
            .client
            .poll_transmit(p.now, &mut buf)
            .expect("the second piece");
        let got = measured_overhead(&buf[..n], frame, rest);
        assert_eq!(
            got, small,
            "PROTOCOL.md section 3, frame `{frame}`, overhead for a {rest}-byte piece: the doc says {small}, the code takes {got}"
        );
    }
}

#[test]
fn largest_unreliable_message() {
    let what = "PROTOCOL.md section 4, unreliable: `over MTU − N bytes`";
    let less = number_after(section(PROTOCOL, "## 4."), "over MTU − ", what) as usize;
    let mut p = Pair::connected(Config::default(), false);
    let mtu = Config::default().mtu;
    let max = p.client.max_unreliable_size();
    assert_eq!(
        mtu - max,
        less,
        "{what}: the doc says MTU − {less}, Connection::max_unreliable_size gives MTU − {}",
        mtu - max
    );
    assert!(
        matches!(
            p.client.send(&blob(max + 1), Delivery::Unreliable),
            Err(SendError::TooLarge { .. })
        ),
        "{what}: one byte more is refused"
    );
    let packet = p.send_one(&blob(max), Delivery::Unreliable);
    assert_eq!(packet.len(), mtu, "{what}: the largest one fills the MTU");
}

// ---- PROTOCOL.md section 6: states and timers ------------------------------------------------

#[test]
fn state_diagram_names_exist_in_the_code() {
    let six = section(PROTOCOL, "## 6.");
    let start = six.find("```").expect("section 6 has a diagram") + 3;
    let diagram = &six[start..start + six[start..].find("```").expect("closed")];
    let states = [
        State::Connecting,
        State::Connected,
        State::Disconnected,
        State::Errored,
    ]
    .map(|s| format!("{s:?}"));
    let reasons = [
        DisconnectReason::Local(String::new()),
        DisconnectReason::Remote(String::new()),
        DisconnectReason::TimedOut,
        DisconnectReason::ConnectTimedOut,
        DisconnectReason::LimitExceeded(String::new()),
    ]
    .map(|r| {
        let d = format!("{r:?}");
        d.split('(').next().expect("a name").to_owned()
    });
    let events = [
        Event::Connected,
        Event::Rejected {
            reason: String::new(),
        },
        Event::Disconnected(DisconnectReason::TimedOut),
    ]
    .map(|e| {
        let d = format!("{e:?}");
        d.split(['(', ' ', '{']).next().expect("a name").to_owned()
    });
    let packets: Vec<String> = section(PROTOCOL, "## 2.")
        .lines()
        .filter(|l| l.starts_with("| `0x"))
        .map(|l| cells(l)[1].clone())
        .collect();
    for word in diagram.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else { continue };
        if !first.is_uppercase() {
            continue;
        }
        let known = if word.chars().any(char::is_lowercase) {
            states.contains(&word.to_owned())
                || reasons.contains(&word.to_owned())
                || events.contains(&word.to_owned())
        } else {
            packets.contains(&word.to_owned())
        };
        assert!(
            known,
            "PROTOCOL.md section 6, state diagram: `{word}` is no state (State), disconnect reason (DisconnectReason), event or packet name of the code"
        );
    }
    for s in &states {
        assert!(
            diagram.contains(s.as_str()),
            "PROTOCOL.md section 6, state diagram: state `{s}` is missing"
        );
    }
    // An exit `──▶ State ... reason R` leads to the state a connection
    // closed with R reports.
    for (line, reason) in diagram
        .lines()
        .filter_map(|l| Some((l, l.split("reason ").nth(1)?)))
    {
        let reason_name = reason.split_whitespace().next().expect("a reason");
        let reason = [
            DisconnectReason::Local(String::new()),
            DisconnectReason::Remote(String::new()),
            DisconnectReason::TimedOut,
            DisconnectReason::ConnectTimedOut,
            DisconnectReason::LimitExceeded(String::new()),
        ]
        .into_iter()
        .find(|r| format!("{r:?}").split('(').next() == Some(reason_name))
        .unwrap_or_else(|| panic!("PROTOCOL.md section 6: `{reason_name}` is no DisconnectReason"));
        let state = if reason.is_error() {
            State::Errored
        } else {
            State::Disconnected
        };
        let shown = line
            .rsplit('▶')
            .next()
            .and_then(|after| after.split_whitespace().next())
            .unwrap_or("");
        assert_eq!(
            shown,
            format!("{state:?}"),
            "PROTOCOL.md section 6, state diagram line `{}`: a connection closed with {reason_name} is in state {state:?}",
            line.trim()
        );
    }
}

#[test]
fn timer_defaults() {
    let six = section(PROTOCOL, "## 6.");
    let c = Config::default();
    for (row, code) in [
        ("connect retry", ms(c.connect_retry)),
        ("connect timeout", ms(c.connect_timeout)),
        ("challenge lifetime", ms(c.challenge_lifetime)),
        ("max ack delay", ms(c.max_ack_delay)),
        ("ping", ms(c.ping_interval)),
        ("idle timeout", ms(c.timeout)),
    ] {
        let what = format!("PROTOCOL.md section 6, timer `{row}`, column `default`");
        let doc = quantity(&table_cell(six, row, "default", &what), &what);
        assert_eq!(
            doc, code,
            "{what}: the doc says {doc} ms, Config::default() {code} ms"
        );
    }
    // "never below 10 ms": a zero setting still waits 10 ms between packets.
    let what = "PROTOCOL.md section 6, timer `connect retry`: `never below N ms`";
    let cell = table_cell(six, "connect retry", "default", what);
    let floor = number_after(&cell, "never below ", what);
    let now = Instant::now();
    let config = Config {
        connect_retry: Duration::ZERO,
        ..Config::default()
    };
    let mut client = Connection::connect(config, factory(), now, 1);
    let mut buf = [0u8; 2048];
    assert!(client.poll_transmit(now, &mut buf).is_some());
    let next = client.poll_timeout().expect("a retry is due") - now;
    assert_eq!(
        ms(next),
        u128::from(floor),
        "{what}: the doc says {floor} ms, the client retries after {next:?}"
    );
}

/// Every `` `field` (default V `` (or `` `field` (V ``) of PROTOCOL.md's
/// prose that names a `Config` field agrees with `Config::default()`.
#[test]
fn config_defaults_in_the_prose() {
    let c = Config::default();
    let fields: [(&str, u128); 11] = [
        ("initial_rtt", ms(c.initial_rtt)),
        ("max_ack_delay", ms(c.max_ack_delay)),
        ("challenge_lifetime", ms(c.challenge_lifetime)),
        ("max_message_size", c.max_message_size as u128),
        ("max_reassembly_bytes", c.max_reassembly_bytes as u128),
        ("max_reorder_bytes", c.max_reorder_bytes as u128),
        ("max_send_queue_bytes", c.max_send_queue_bytes as u128),
        ("min_congestion_window", c.min_congestion_window as u128),
        ("max_congestion_window", c.max_congestion_window as u128),
        (
            "connect_rate_per_source",
            u128::from(c.connect_rate_per_source),
        ),
        ("connect_retry", ms(c.connect_retry)),
    ];
    let mut checked = BTreeMap::new();
    let doc = flat(PROTOCOL);
    for (name, code) in fields {
        let quoted = format!("`{name}`");
        for (at, _) in doc.match_indices(&quoted) {
            let after = &doc[at + quoted.len()..];
            // `name` (default V, `name` per connection (default V, `name` (V
            let Some(open) = after.find('(') else {
                continue;
            };
            if open > 16 || after[..open].contains(['.', ',', ';', ')', '`']) {
                continue;
            }
            let inside = &after[open + 1..];
            let inside = inside.strip_prefix("default ").unwrap_or(inside);
            if !inside.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            let what = format!(
                "PROTOCOL.md, `{name}` ({})",
                &inside[..inside.len().min(20)]
            );
            let doc = quantity(inside, &what);
            assert_eq!(
                doc, code,
                "{what}: the doc says {doc}, Config::default() {code}"
            );
            *checked.entry(name).or_insert(0) += 1;
        }
    }
    for name in [
        "initial_rtt",
        "max_message_size",
        "max_reassembly_bytes",
        "max_reorder_bytes",
        "max_send_queue_bytes",
        "min_congestion_window",
        "max_congestion_window",
        "connect_rate_per_source",
    ] {
        assert!(
            checked.contains_key(name),
            "PROTOCOL.md no longer states the default of `{name}` as `{name}` (default V): update this test"
        );
    }
}

#[test]
fn mtu_bounds() {
    let c = Config::default();
    let conventions = PROTOCOL.split("## 1.").next().expect("a preamble");
    let what = "PROTOCOL.md conventions, `MTU` default and minimum";
    assert_eq!(
        number_after(conventions, "(default ", what) as usize,
        c.mtu,
        "{what}: default"
    );
    assert_eq!(
        number_after(conventions, "at least ", what) as usize,
        Config::MIN_MTU,
        "{what}: minimum"
    );
    let what = "PROTOCOL.md section 1, the length ceiling `over N bytes (Config::MAX_MTU`";
    assert_eq!(
        number_after(section(PROTOCOL, "## 1."), "a length over ", what) as usize,
        Config::MAX_MTU,
        "{what}"
    );
}

// ---- WIRE_TYPES.md section 13 ----------------------------------------------------------------

#[test]
fn golden_fingerprints() {
    let lines = section(WIRE_TYPES, "### 13.2");
    let start = lines.find("```text").expect("13.2 has the golden lines") + 7;
    let block = &lines[start..start + lines[start..].find("```").expect("closed")];
    let hashes = section(WIRE_TYPES, "### 13.3");
    let mut factory_bytes = Vec::new();
    for line in block.lines().filter(|l| !l.is_empty()) {
        let id = line.split(' ').next().expect("an id");
        let row = |column: &str| {
            table_cell(
                hashes,
                id,
                column,
                &format!("WIRE_TYPES.md 13.3, message {id}, column `{column}`"),
            )
        };
        // Messages without a row (the `opaque` example) are not golden.
        if !hashes.lines().any(|l| l.starts_with(&format!("| {id} |"))) {
            continue;
        }
        assert!(
            SCHEMA_FINGERPRINT_TEST.contains(line),
            "WIRE_TYPES.md 13.2: golden line `{line}` is not the one tests/schema_fingerprint.rs derives"
        );
        let fp = SchemaFingerprint::of_text(line);
        assert_eq!(
            row("message fingerprint"),
            format!("{:016x}", fp.as_u64()),
            "WIRE_TYPES.md 13.3, message {id}: fingerprint"
        );
        assert_eq!(
            row("compact"),
            format!("{:08x}", fp.compact()),
            "WIRE_TYPES.md 13.3, message {id}: compact fingerprint"
        );
        factory_bytes.push(id.parse::<u8>().expect("a u8 id"));
        factory_bytes.extend_from_slice(&fp.as_u64().to_be_bytes());
    }
    let what = "WIRE_TYPES.md 13.3, `the factory fingerprint is`";
    let at = hashes.find("the factory fingerprint is `").expect(what) + 28;
    let doc = &hashes[at..at + 16];
    assert_eq!(
        doc,
        format!("{:016x}", legume::schema::fnv1a_64(&factory_bytes)),
        "{what}"
    );
}

#[derive(Debug, Message)]
#[message(id = 21)]
struct Second;

#[derive(Debug, Message)]
#[message(id = 22)]
struct Third;

#[test]
fn schema_summary_sizes() {
    let what = "WIRE_TYPES.md 13.4, `The summary is `A + Bn` bytes ... and C bytes without`";
    let text = section(WIRE_TYPES, "### 13.4");
    let base = number_after(text, "The summary is `", what) as usize;
    let per = number_after(text, &format!("The summary is `{base} + "), what) as usize;
    let without = number_after(text, "messages with the list and ", what) as usize;
    let mut f = MessageFactory::new();
    for n in 1..=3 {
        match n {
            1 => f.register::<Blob>(),
            2 => f.register::<Second>(),
            _ => f.register::<Third>(),
        }
        .expect("free id");
        let summary = f.schema_summary();
        assert_eq!(
            summary.encoded_len(),
            base + per * n,
            "{what}: with {n} messages the doc gives {base} + {per}·{n}"
        );
        assert_eq!(
            summary.without_entries().encoded_len(),
            without,
            "{what}: without the list"
        );
    }
    // PROTOCOL.md 2.3: the most messages whose list fits in the extension.
    let what = "PROTOCOL.md 2.3, `fits in the N bytes; with more than M message types`";
    let text = section(PROTOCOL, "### 2.3");
    let room = number_after(text, "fits in the ", what) as usize;
    let most = number_after(text, "with more than ", what) as usize;
    assert!(
        base + per * most <= room && base + per * (most + 1) > room,
        "{what}: {room} bytes hold the list of {} messages, not {most}",
        (room - base) / per
    );
}

#[test]
fn user_type_ids() {
    let first = usize::from(FIRST_USER_TYPE_ID);
    let what = "WIRE_TYPES.md section 1, `apps use N to 255`";
    assert_eq!(
        number_after(section(WIRE_TYPES, "## 1."), "apps use ", what) as usize,
        first,
        "{what}"
    );
    let what = "README.md, `// N..=255; 0-M belong to the protocol`";
    let at = README
        .find("..=255; 0-")
        .unwrap_or_else(|| panic!("{what}: not found"));
    let digits = README[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .chars()
        .rev()
        .collect::<String>();
    assert_eq!(digits.parse::<usize>().ok(), Some(first), "{what}");
    assert_eq!(
        number_after(README, "..=255; 0-", what) as usize,
        first - 1,
        "{what}"
    );
}

#[test]
fn readme_defaults() {
    let c = Config::default();
    for phrase in [
        format!("at most {} bytes of UDP payload", c.mtu),
        format!(
            "a reliable message up to {} MiB (configurable)",
            c.max_message_size >> 20
        ),
        format!("(`Config::stats_window`, {} s)", c.stats_window.as_secs()),
    ] {
        assert!(
            flat(README).contains(&phrase),
            "README.md should say `{phrase}` (the value of Config::default())"
        );
    }
}

// ---- PROTOCOL.md section 8: connect tokens ---------------------------------------------------

#[test]
fn connect_token_sizes() {
    let key = PrivateKey::from_bytes([0x22; 32]);
    let params = TokenParams::new(0, 1, vec![SERVER_ADDR.parse().expect("address")]);
    let token = ConnectToken::issue_at(&key, &params, UNIX_NOW).expect("token");

    let what = "PROTOCOL.md 8.2 heading, `Connect token (N bytes; base64 M characters)`";
    let heading = section(PROTOCOL, "### 8.2");
    let bytes = number_after(heading, "Connect token (", what) as usize;
    let text = number_after(heading, "bytes; base64 ", what) as usize;
    assert_eq!(bytes, token.to_bytes().len(), "{what}: bytes");
    assert_eq!(text, token.to_base64().len(), "{what}: base64 characters");

    let what = "PROTOCOL.md 8.2, `Bytes 0..N, the sealed token`";
    let sealed = number_after(heading, "Bytes 0..", what) as usize;
    assert_eq!(sealed, token.sealed().len(), "{what}");

    let what = "PROTOCOL.md section 7, `short-lived tokens, N s by default`";
    let lifetime = number_after(PROTOCOL, "short-lived tokens, ", what);
    assert_eq!(
        u128::from(lifetime) * 1000,
        ms(params.lifetime),
        "{what}: TokenParams::new's lifetime"
    );
}

// ---- WIRE_TYPES.md sections 2 to 12: field sizes ---------------------------------------------

/// The encoded length of `value`.
fn encoded<T: Encode>(value: &T) -> usize {
    legume::codec::to_vec(value).expect("encodes").len()
}

#[test]
fn field_sizes() {
    // Signed and unsigned integers of one width take the same bytes.
    for (unsigned, signed) in [
        (encoded(&0u8), encoded(&0i8)),
        (encoded(&0u16), encoded(&0i16)),
        (encoded(&0u32), encoded(&0i32)),
        (encoded(&0u64), encoded(&0i64)),
        (encoded(&0u128), encoded(&0i128)),
    ] {
        assert_eq!(unsigned, signed);
    }
    for (heading, prefix, code) in [
        ("## 2.", "`u8`, `i8`: ", encoded(&0u8)),
        ("## 2.", "`u16`, `i16`: ", encoded(&0u16)),
        ("## 2.", "`u32`, `i32`: ", encoded(&0u32)),
        ("## 2.", "`u64`, `i64`: ", encoded(&0u64)),
        ("## 2.", "`u128`, `i128`: ", encoded(&0u128)),
        ("## 3.", "`f32`: ", encoded(&0f32)),
        ("## 3.", "`f64`: ", encoded(&0f64)),
        ("## 4.", "", encoded(&true)),
        ("## 5.", "", encoded(&'x')),
        ("## 9.", "", encoded(&None::<u8>)),
    ] {
        let text = section(WIRE_TYPES, heading);
        let title = text.lines().next().unwrap_or(heading);
        let doc = if prefix.is_empty() {
            // The section's first number after its heading line.
            let body = text.split_once('\n').map_or("", |(_, b)| b);
            integers_of_body(body, title)
        } else {
            number_after(text, prefix, title) as usize
        };
        assert_eq!(
            doc, code,
            "WIRE_TYPES.md `{title}`, `{prefix}N`: the doc says {doc} bytes, the code writes {code}"
        );
    }

    let what = "WIRE_TYPES.md section 6, String: `length in bytes` row";
    let prefix = table_cell(
        section(WIRE_TYPES, "## 6."),
        "length in **bytes**, u16",
        "bytes",
        what,
    );
    assert_eq!(
        prefix.parse::<usize>().ok(),
        Some(encoded(&"ab".to_owned()) - 2),
        "{what}"
    );
    let what = "WIRE_TYPES.md section 8, Vec: `element count` row";
    let count = table_cell(
        section(WIRE_TYPES, "## 8."),
        "element count, varint (section 12)",
        "bytes",
        what,
    );
    assert_eq!(
        count,
        format!(
            "{}-{}",
            encoded(&Vec::<u8>::new()),
            legume::varint::varint_len(u32::MAX)
        ),
        "{what}"
    );
    let what = "WIRE_TYPES.md section 12, `0 to N take one byte`";
    let one = number_after(section(WIRE_TYPES, "## 12."), "0 to ", what) as u32;
    assert!(
        legume::varint::varint_len(one) == 1 && legume::varint::varint_len(one + 1) == 2,
        "{what}: the doc says {one}"
    );
}

/// The first integer of `body`.
fn integers_of_body(body: &str, what: &str) -> usize {
    *integers(body)
        .first()
        .unwrap_or_else(|| panic!("{what}: no number")) as usize
}
