//! Byte-exact checks against messages encoded by the real Python legume 0.5.
//!
//! `tests/data/legume05_messages.json` was produced by legume 0.5's
//! `BaseMessage.get_packet_bytes()`. For every case, the equivalent derived
//! struct built from the case's values must encode to exactly those bytes,
//! and decoding those bytes must give the values back.

use legume::prelude::*;
use serde_json::Value;

#[derive(Debug, PartialEq, Message)]
#[message(id = 20)]
struct Empty;

#[derive(Debug, PartialEq, Message)]
#[message(id = 21)]
struct Chat {
    #[field(fixed = 24)]
    sender_name: String,
    #[field(fixed = 256)]
    message: String,
    #[field(fixed = 24)]
    channel: String,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 22)]
struct Position {
    x: f64,
    y: f64,
    z: f64,
    id: i32,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 23)]
struct Flags {
    alive: bool,
    team: u8,
    score: u16,
    hp: i32,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 24)]
struct Text {
    body: String,
    #[field(fixed = 4)]
    tag: String,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 25)]
struct EmptyText {
    body: String,
    #[field(fixed = 1)]
    tag: String,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 26)]
struct IntEdges {
    a: i32,
    b: i32,
    c: u16,
    d: u8,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 200)]
struct Mixed {
    n: i32,
    name: String,
    f: f64,
    ok: bool,
    #[field(fixed = 8)]
    pad: String,
}

/// All the vector messages, so a case can be matched by type after decoding.
#[derive(Debug, PartialEq, MessageSet)]
enum Vectors {
    Empty(Empty),
    Chat(Chat),
    Position(Position),
    Flags(Flags),
    Text(Text),
    EmptyText(EmptyText),
    IntEdges(IntEdges),
    Mixed(Mixed),
}

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
