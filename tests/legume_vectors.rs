//! Byte-exact checks against messages encoded by the real Python legume 0.5.
//!
//! `tests/data/legume05_messages.json` was produced by legume 0.5's
//! `BaseMessage.get_packet_bytes()`. For every case, the equivalent derived
//! struct built from the case's values must encode to exactly those bytes,
//! and decoding those bytes must give the values back.

mod common;

use common::vectors::*;
use legume::prelude::*;
use serde_json::Value;

fn text(values: &Value, key: &str) -> String {
    values[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
        .to_owned()
}

fn float(values: &Value, key: &str) -> f64 {
    values[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number"))
}

fn int<T: TryFrom<i64>>(values: &Value, key: &str) -> T {
    let v = values[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is an integer"));
    T::try_from(v).unwrap_or_else(|_| panic!("{key} = {v} is out of range"))
}

fn boolean(values: &Value, key: &str) -> bool {
    values[key]
        .as_bool()
        .unwrap_or_else(|| panic!("{key} is a bool"))
}

/// Builds the Rust value of a vector case from its JSON values.
fn build(name: &str, v: &Value) -> Vectors {
    match name {
        "Empty" => Empty.into(),
        "Chat" => Chat {
            sender_name: text(v, "sender_name"),
            message: text(v, "message"),
            channel: text(v, "channel"),
        }
        .into(),
        "Position" => Position {
            x: float(v, "x"),
            y: float(v, "y"),
            z: float(v, "z"),
            id: int(v, "id"),
        }
        .into(),
        "Flags" => Flags {
            alive: boolean(v, "alive"),
            team: int(v, "team"),
            score: int(v, "score"),
            hp: int(v, "hp"),
        }
        .into(),
        "Text" => Text {
            body: text(v, "body"),
            tag: text(v, "tag"),
        }
        .into(),
        "EmptyText" => EmptyText {
            body: text(v, "body"),
            tag: text(v, "tag"),
        }
        .into(),
        "IntEdges" => IntEdges {
            a: int(v, "a"),
            b: int(v, "b"),
            c: int(v, "c"),
            d: int(v, "d"),
        }
        .into(),
        "Mixed" => Mixed {
            n: int(v, "n"),
            name: text(v, "name"),
            f: float(v, "f"),
            ok: boolean(v, "ok"),
            pad: text(v, "pad"),
        }
        .into(),
        other => panic!("vector {other} has no Rust counterpart; add one"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("vector hex is valid"))
        .collect()
}

fn cases() -> Vec<Value> {
    let file = include_str!("data/legume05_messages.json");
    let doc: Value = serde_json::from_str(file).expect("vector file is JSON");
    doc["vectors"]
        .as_array()
        .expect("vectors is a list")
        .clone()
}

#[test]
fn every_vector_encodes_to_legume_bytes() {
    let cases = cases();
    assert!(cases.len() >= 8, "expected the full vector set");
    for case in &cases {
        let name = case["name"].as_str().expect("case has a name");
        let expected = case["hex"].as_str().expect("case has hex");
        let value = build(name, &case["values"]);
        let msg = value.as_message();
        assert_eq!(
            u64::from(msg.message_type_id()),
            case["type_id"].as_u64().expect("type id"),
            "{name}: type id"
        );
        let mut buf = vec![0u8; msg.message_len()];
        let n = msg.encode_message(&mut buf).expect("vector value encodes");
        assert_eq!(n, buf.len(), "{name}: message_len is exact");
        assert_eq!(hex(&buf), expected, "{name}: bytes differ from legume 0.5");
    }
}

#[test]
fn every_vector_decodes_to_its_values() {
    let factory = Vectors::factory().expect("vector types do not clash");
    for case in cases() {
        let name = case["name"].as_str().expect("case has a name");
        let bytes = unhex(case["hex"].as_str().expect("case has hex"));
        let expected = build(name, &case["values"]);

        let direct = Vectors::decode_message(&bytes).expect("decodes via the set");
        assert_eq!(direct, expected, "{name}: decoded values");

        let dynamic = factory.decode(&bytes).expect("decodes via the factory");
        assert_eq!(dynamic.message_name(), name);
        let typed = Vectors::from_any(dynamic).expect("type is in the set");
        assert_eq!(typed, expected, "{name}: factory-decoded values");
    }
}

#[test]
fn negative_zero_and_int_edges_survive_exactly() {
    let cases = cases();
    let mixed = cases
        .iter()
        .find(|c| c["name"] == "Mixed")
        .expect("Mixed vector");
    let Ok(Vectors::Mixed(m)) = Vectors::decode_message(&unhex(mixed["hex"].as_str().unwrap()))
    else {
        panic!("Mixed decodes as Mixed");
    };
    assert_eq!(
        m.f.to_bits(),
        (-0.0f64).to_bits(),
        "-0.0 keeps its sign bit"
    );

    let edges = cases
        .iter()
        .find(|c| c["name"] == "IntEdges")
        .expect("IntEdges vector");
    let Ok(Vectors::IntEdges(e)) = Vectors::decode_message(&unhex(edges["hex"].as_str().unwrap()))
    else {
        panic!("IntEdges decodes as IntEdges");
    };
    assert_eq!((e.a, e.b), (i32::MAX, i32::MIN));
}

#[test]
fn fixed_string_over_its_width_is_refused() {
    let chat = Chat {
        sender_name: "x".repeat(25),
        message: String::new(),
        channel: String::new(),
    };
    assert_eq!(
        chat.to_bytes(),
        Err(EncodeError::TooLong { len: 25, max: 24 })
    );
}

/// In legume v4 mode each vector goes on the wire as legume 0.5 sends it:
/// a 5-byte transport header, then exactly the vector's bytes; and a legume
/// datagram carrying those bytes decodes to the vector's values.
#[test]
fn vectors_cross_a_legume_v4_connection_byte_exact() {
    use legume::net::{Config, Connection, Delivery, Event, Protocol};
    use std::sync::Arc;
    use std::time::Instant;

    let factory = Arc::new(Vectors::factory().expect("vector types do not clash"));
    let config = Config {
        protocol: Protocol::LegumeV4,
        ..Config::default()
    };
    let now = Instant::now();
    let mut conn = Connection::connect(config, factory, now, 0);
    let mut buf = [0u8; 1500];
    let n = conn.poll_transmit(now, &mut buf).expect("a ConnectRequest");
    assert_eq!(&buf[..n], [0, 1, 0, 0, 2, 2, 4]);
    // What legume 0.5's server answers: the ack of message 1, then
    // ConnectRequestAccepted, reliable.
    conn.handle_datagram(now, &[0, 1, 0, 0, 0, 8, 0, 0, 0, 1, 0, 2, 0, 0, 2, 4]);
    assert!(matches!(conn.poll_event(), Some(Event::Connected)));
    let n = conn
        .poll_transmit(now, &mut buf)
        .expect("the ack of the accept");
    assert_eq!(&buf[2..n], [0, 0, 0, 8, 0, 0, 0, 2]);

    for (k, case) in cases().iter().enumerate() {
        let name = case["name"].as_str().expect("case has a name");
        let bytes = unhex(case["hex"].as_str().expect("case has hex"));
        let value = build(name, &case["values"]);

        conn.send(value.as_message(), Delivery::Reliable)
            .expect("fits one datagram");
        let n = conn.poll_transmit(now, &mut buf).expect("the message");
        assert_eq!(&buf[2..5], [0, 0, 2], "{name}: sequence 0, reliable");
        assert_eq!(hex(&buf[5..n]), hex(&bytes), "{name}: bytes on the wire");

        let id = 3 + k as u16;
        let mut incoming = id.to_be_bytes().to_vec();
        incoming.extend_from_slice(&[0, 0, 2]);
        incoming.extend_from_slice(&bytes);
        conn.handle_datagram(now, &incoming);
        match conn.poll_event() {
            Some(Event::Message(m)) => {
                let got = Vectors::from_any(m).expect("a vector type");
                assert_eq!(got, value, "{name}: decoded values");
            }
            other => panic!("{name}: expected the message, got {other:?}"),
        }
        let n = conn.poll_transmit(now, &mut buf).expect("its ack");
        let mut ack = vec![0, 0, 0, 8, 0, 0];
        ack.extend_from_slice(&id.to_be_bytes());
        assert_eq!(&buf[2..n], ack, "{name}: MessageAck of id {id}");
    }
}
