//! `docs/PROTOCOL.md`: packet sizes (section 2), the DATA header (2.6),
//! frame overheads (3), the largest unreliable message and the fragment
//! size (4), states and timers (6), `Config` defaults in the prose, connect
//! token sizes (8.2).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use legume::net::{ConnectToken, Connection, PrivateKey, TokenParams};
use legume::prelude::*;

use crate::markdown::{cells, flat, integers, ms, number_after, quantity, section, table_cell};
use crate::wire::{blob, factory, Pair, DATA_HEADER, PACKET_DATA, SERVER_ADDR, UNIX_NOW};
use crate::PROTOCOL;

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
    // An ack-only packet is the header alone, and no DATA packet is shorter.
    let mut p = Pair::connected(Config::default(), false);
    p.send_one(&blob(10), Delivery::Reliable);
    p.run(Duration::from_millis(20));
    let header = p
        .wire
        .iter()
        .filter(|(_, d)| d[3] == PACKET_DATA)
        .map(|(_, d)| d.len())
        .min()
        .expect("DATA packets were sent");
    assert_eq!(
        header, DATA_HEADER,
        "the test's DATA_HEADER is the ack-only packet's size"
    );

    let what = "PROTOCOL.md 2.6, `The header is N bytes`";
    let doc = number_after(section(PROTOCOL, "### 2.6"), "The header is ", what) as usize;
    assert_eq!(
        doc, header,
        "{what}: the doc says {doc}, an ack-only DATA packet (the header alone) is {header} bytes"
    );
    let Size::Plus { base, max: None } = packet_size("DATA") else {
        panic!("PROTOCOL.md section 2, packet `DATA`: should be `N + frames, at most MTU`");
    };
    assert_eq!(
        base, header,
        "PROTOCOL.md section 2, packet `DATA`: the doc says {base} + frames, the header is {header} bytes"
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
        ("challenge lifetime", ms(c.server.challenge_lifetime)),
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
        ("challenge_lifetime", ms(c.server.challenge_lifetime)),
        ("max_message_size", c.limits.max_message_size as u128),
        (
            "max_reassembly_bytes",
            c.limits.max_reassembly_bytes as u128,
        ),
        ("max_reorder_bytes", c.limits.max_reorder_bytes as u128),
        (
            "max_send_queue_bytes",
            c.limits.max_send_queue_bytes as u128,
        ),
        ("congestion.min_window", c.congestion.min_window as u128),
        ("congestion.max_window", c.congestion.max_window as u128),
        (
            "connect_rate_per_source",
            u128::from(c.server.connect_rate_per_source),
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
        "congestion.min_window",
        "congestion.max_window",
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
