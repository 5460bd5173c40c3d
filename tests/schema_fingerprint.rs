//! Schema fingerprints: what they cover, what they ignore, and how two
//! peers built from different message definitions find out which messages
//! differ. The modules below stand for protocol crates.

use std::collections::HashSet;

use legume::codec::{from_bytes, to_vec};
use legume::prelude::*;
use legume::schema::{DiffEntry, SchemaContext};
use legume::{MessageSchema, SchemaFingerprint, SchemaSummary, WireSchema};

/// FNV-1a 64, written out again from its definition so that the golden
/// values below do not rest on the library's own hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The factory fingerprint from the documented canonical lines, computed
/// independently: each line hashed alone, then the id byte and the line's
/// hash (8 big-endian bytes) of every message, in id order, hashed together.
fn factory_fingerprint_of(lines: &[(u8, &str)]) -> u64 {
    let mut bytes = Vec::new();
    for &(id, line) in lines {
        bytes.push(id);
        bytes.extend_from_slice(&fnv1a(line.as_bytes()).to_be_bytes());
    }
    fnv1a(&bytes)
}

fn fp<T: Message>() -> SchemaFingerprint {
    MessageSchema::of::<T>().fingerprint()
}

fn text<T: Message>() -> String {
    MessageSchema::of::<T>().to_string()
}

mod golden {
    use legume::prelude::*;

    #[derive(Debug, Codec)]
    pub enum Team {
        Red,
        Blue,
    }

    #[derive(Debug, Codec)]
    pub struct Pos {
        pub x: f32,
        pub y: f32,
    }

    #[derive(Debug, Message)]
    #[message(id = 21)]
    pub struct Chat {
        #[field(fixed = 24)]
        pub sender: String,
        #[field(max_len = 256)]
        pub text: String,
    }

    #[derive(Debug, Message)]
    #[message(id = 22, name = "Spawn")]
    pub struct SpawnPlayer {
        pub player: u32,
        pub team: Team,
        pub at: Pos,
        pub loadout: Option<Vec<u16>>,
    }

    #[derive(Debug, Message)]
    #[message(id = 23)]
    pub struct Leave;

    #[derive(Debug, Message)]
    #[message(id = 24)]
    pub enum Input {
        Move([i8; 2]),
        Say {
            r#type: u8,
            #[field(max_len = 64)]
            text: String,
        },
        Quit,
    }

    #[derive(Debug, MessageSet)]
    pub enum All {
        Chat(Chat),
        Spawn(SpawnPlayer),
        Leave(Leave),
        Input(Input),
    }
}

const GOLDEN_LINES: [(u8, &str); 4] = [
    (
        21,
        r#"21 "Chat" struct{sender:fixed(24,string),text:max_len(256,string)}"#,
    ),
    (
        22,
        r#"22 "Spawn" struct{player:u32,team:enum Team{Red,Blue},at:struct Pos{x:f32,y:f32},loadout:option<vec<u16>>}"#,
    ),
    (23, r#"23 "Leave" struct"#),
    (
        24,
        r#"24 "Input" enum{Move([i8;2]),Say{type:u8,text:max_len(64,string)},Quit}"#,
    ),
];

/// Pinned: a change here changes every deployed peer's fingerprint, so it
/// must come with a deliberate change to the documented canonical form.
const GOLDEN_FACTORY_FINGERPRINT: u64 = 0xf080_738b_b39a_0ee4;

/// Pinned per-message fingerprint of `Chat` (id 21) and its compact form.
const GOLDEN_CHAT_FINGERPRINT: (u64, u32) = (0xe88a_242a_79aa_10f4, 0x9120_34de);

#[test]
fn golden_text_and_fingerprint() {
    let factory = golden::All::factory().unwrap();
    let expected: String = GOLDEN_LINES.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert_eq!(factory.schema_text(), expected);

    for ((id, line), info) in GOLDEN_LINES.iter().zip(factory.iter()) {
        assert_eq!(info.type_id(), *id);
        assert_eq!(info.schema().to_string(), *line);
        assert_eq!(
            info.fingerprint().as_u64(),
            fnv1a(line.as_bytes()),
            "{line}"
        );
    }
    let independent = factory_fingerprint_of(&GOLDEN_LINES);
    assert_eq!(factory.fingerprint().as_u64(), independent);
    assert_eq!(
        factory.fingerprint().as_u64(),
        GOLDEN_FACTORY_FINGERPRINT,
        "fingerprint {} (independent {independent:016x})",
        factory.fingerprint()
    );
    let chat = fp::<golden::Chat>();
    assert_eq!((chat.as_u64(), chat.compact()), GOLDEN_CHAT_FINGERPRINT);
    assert_eq!(factory.fingerprint().to_string(), "f080738bb39a0ee4");
}

/// The same message spelled three ways: plain, with full paths and `Box`,
/// and through aliases.
mod spelled_plain {
    use legume::prelude::*;

    #[derive(Debug, Codec)]
    pub struct Point(pub i16, pub i16);

    #[derive(Debug, Message)]
    #[message(id = 40)]
    pub struct Blob {
        pub data: Vec<u8>,
        pub count: u32,
        #[field(max_len = 10)]
        pub label: String,
        pub pair: Option<(u8, i16)>,
        pub at: [Point; 2],
    }
}

mod spelled_paths {
    #[derive(Debug, legume::Codec)]
    pub struct Point(pub core::primitive::i16, pub ::std::primitive::i16);

    #[derive(Debug, legume::Message)]
    #[message(id = 40)]
    pub struct Blob {
        pub data: std::vec::Vec<u8>,
        pub count: Box<core::primitive::u32>,
        #[field(max_len = 10)]
        pub label: std::string::String,
        pub pair: ::core::option::Option<Box<(u8, i16)>>,
        pub at: [Box<Point>; 2],
    }
}

mod spelled_aliases {
    use legume::prelude::*;

    type Bytes = Vec<u8>;
    type Count = u32;
    type Label = String;
    type Pair = Option<(u8, Coord)>;
    type Coord = i16;

    #[derive(Debug, Codec)]
    pub struct Point(pub Coord, pub Coord);

    #[derive(Debug, Message)]
    #[message(id = 40)]
    pub struct Blob {
        pub data: Bytes,
        pub count: Count,
        #[field(max_len = 10)]
        pub label: Label,
        pub pair: Pair,
        pub at: [Point; 2],
    }
}

#[test]
fn spelling_does_not_change_the_fingerprint() {
    let line = text::<spelled_plain::Blob>();
    assert_eq!(
        line,
        r#"40 "Blob" struct{data:vec<u8>,count:u32,label:max_len(10,string),pair:option<(u8,i16)>,at:[struct Point(i16,i16);2]}"#
    );
    assert_eq!(text::<spelled_paths::Blob>(), line);
    assert_eq!(text::<spelled_aliases::Blob>(), line);
    assert_eq!(fp::<spelled_paths::Blob>(), fp::<spelled_plain::Blob>());
    assert_eq!(fp::<spelled_aliases::Blob>(), fp::<spelled_plain::Blob>());
}

/// One base message and, in each module, one change to it.
macro_rules! variants {
    ($($module:ident { $($item:item)* })*) => {
        $(mod $module {
            #![allow(dead_code)]
            use legume::prelude::*;
            $($item)*
        })*
    };
}

variants! {
    base {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    wider {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u32, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    signed {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: i16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    renamed {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { aa: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    reordered {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { #[field(fixed = 8)] b: String, a: u16, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    added {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind, d: bool }
    }
    fixed_width {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 9)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    not_fixed {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    max_len {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 5)] c: Vec<u8>, k: Kind }
    }
    unbounded {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, c: Vec<u8>, k: Kind }
    }
    new_id {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 31)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    new_name {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30, name = "N")]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    positional {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M(u16, #[field(fixed = 8)] String, #[field(max_len = 4)] Vec<u8>, Kind);
    }
    variant_payload {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u16) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    variant_order {
        #[derive(Debug, Codec)]
        pub enum Kind { B(u8), A }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    variant_added {
        #[derive(Debug, Codec)]
        pub enum Kind { A, B(u8), C }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
    nested_renamed {
        #[derive(Debug, Codec)]
        pub enum Sort { A, B(u8) }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Sort }
    }
    nested_struct {
        #[derive(Debug, Codec)]
        pub struct Kind { a: (), b: u8 }
        #[derive(Debug, Message)]
        #[message(id = 30)]
        pub struct M { a: u16, #[field(fixed = 8)] b: String, #[field(max_len = 4)] c: Vec<u8>, k: Kind }
    }
}

#[test]
fn every_kind_of_change_changes_the_fingerprint() {
    let all = [
        ("base", text::<base::M>(), fp::<base::M>()),
        ("wider", text::<wider::M>(), fp::<wider::M>()),
        ("signed", text::<signed::M>(), fp::<signed::M>()),
        ("renamed", text::<renamed::M>(), fp::<renamed::M>()),
        ("reordered", text::<reordered::M>(), fp::<reordered::M>()),
        ("added", text::<added::M>(), fp::<added::M>()),
        (
            "fixed_width",
            text::<fixed_width::M>(),
            fp::<fixed_width::M>(),
        ),
        ("not_fixed", text::<not_fixed::M>(), fp::<not_fixed::M>()),
        ("max_len", text::<max_len::M>(), fp::<max_len::M>()),
        ("unbounded", text::<unbounded::M>(), fp::<unbounded::M>()),
        ("new_id", text::<new_id::M>(), fp::<new_id::M>()),
        ("new_name", text::<new_name::M>(), fp::<new_name::M>()),
        ("positional", text::<positional::M>(), fp::<positional::M>()),
        (
            "variant_payload",
            text::<variant_payload::M>(),
            fp::<variant_payload::M>(),
        ),
        (
            "variant_order",
            text::<variant_order::M>(),
            fp::<variant_order::M>(),
        ),
        (
            "variant_added",
            text::<variant_added::M>(),
            fp::<variant_added::M>(),
        ),
        (
            "nested_renamed",
            text::<nested_renamed::M>(),
            fp::<nested_renamed::M>(),
        ),
        (
            "nested_struct",
            text::<nested_struct::M>(),
            fp::<nested_struct::M>(),
        ),
    ];
    assert_eq!(
        all[0].1,
        r#"30 "M" struct{a:u16,b:fixed(8,string),c:max_len(4,vec<u8>),k:enum Kind{A,B(u8)}}"#
    );
    let texts: HashSet<&str> = all.iter().map(|(_, t, _)| t.as_str()).collect();
    let fps: HashSet<SchemaFingerprint> = all.iter().map(|(_, _, f)| *f).collect();
    let compact: HashSet<u32> = all.iter().map(|(_, _, f)| f.compact()).collect();
    for (what, line, _) in &all {
        println!("{what:>16}: {line}");
    }
    assert_eq!(texts.len(), all.len(), "two changes gave the same text");
    assert_eq!(
        fps.len(),
        all.len(),
        "two changes gave the same fingerprint"
    );
    assert_eq!(
        compact.len(),
        all.len(),
        "two changes gave the same compact fingerprint"
    );
}

mod lobby {
    use legume::prelude::*;

    #[derive(Debug, Message)]
    #[message(id = 30)]
    pub struct Join {
        pub name: String,
    }

    #[derive(Debug, Message)]
    #[message(id = 31)]
    pub struct Leave;
}

mod combat {
    use legume::prelude::*;

    #[derive(Debug, Message)]
    #[message(id = 20)]
    pub struct Hit {
        pub target: u32,
        pub damage: u16,
    }

    #[derive(Debug, Message)]
    #[message(id = 40)]
    pub struct Shoot {
        pub aim: [f32; 2],
    }
}

#[test]
fn registration_and_merge_order_do_not_matter() {
    let mut forward = MessageFactory::new();
    forward
        .register::<lobby::Join>()
        .unwrap()
        .register::<lobby::Leave>()
        .unwrap()
        .register::<combat::Hit>()
        .unwrap()
        .register::<combat::Shoot>()
        .unwrap();
    let mut backward = MessageFactory::new();
    backward
        .register::<combat::Shoot>()
        .unwrap()
        .register::<lobby::Leave>()
        .unwrap()
        .register::<combat::Hit>()
        .unwrap()
        .register::<lobby::Join>()
        .unwrap();

    let lobby_only = {
        let mut f = MessageFactory::new();
        f.register::<lobby::Leave>()
            .unwrap()
            .register::<lobby::Join>()
            .unwrap();
        f
    };
    let combat_only = {
        let mut f = MessageFactory::new();
        f.register::<combat::Hit>()
            .unwrap()
            .register::<combat::Shoot>()
            .unwrap();
        f
    };
    let mut lobby_then_combat = lobby_only.clone();
    lobby_then_combat.merge(&combat_only).unwrap();
    let mut combat_then_lobby = combat_only.clone();
    combat_then_lobby.merge(&lobby_only).unwrap();

    let expected = forward.fingerprint();
    for f in [&backward, &lobby_then_combat, &combat_then_lobby] {
        assert_eq!(f.fingerprint(), expected);
        assert_eq!(f.schema_summary(), forward.schema_summary());
        assert_eq!(f.schema_text(), forward.schema_text());
        assert!(f.schema_diff(&forward.schema_summary()).is_match());
    }
    // Registering again or merging an overlap changes nothing.
    let mut again = forward.clone();
    again
        .register::<lobby::Join>()
        .unwrap()
        .merge(&lobby_only)
        .unwrap();
    assert_eq!(again.fingerprint(), expected);

    // Any one message more or less does.
    assert_ne!(lobby_only.fingerprint(), expected);
    assert_ne!(combat_only.fingerprint(), expected);
    assert_ne!(lobby_only.fingerprint(), combat_only.fingerprint());
    assert_eq!(
        MessageFactory::new().fingerprint().as_u64(),
        0xcbf2_9ce4_8422_2325
    );
}

/// Version 1 of a game's protocol, as the server was built.
mod proto_v1 {
    use legume::prelude::*;

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 20)]
    pub struct Join {
        #[field(max_len = 16)]
        pub name: String,
    }

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 21)]
    pub struct Input {
        pub tick: u32,
        pub dx: i8,
        pub dy: i8,
    }

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 22)]
    pub struct Chat {
        #[field(max_len = 200)]
        pub text: String,
    }

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 23)]
    pub struct Leave;

    #[derive(Debug, MessageSet)]
    pub enum Msg {
        Join(Join),
        Input(Input),
        Chat(Chat),
        Leave(Leave),
    }
}

/// Version 2 of the same protocol, as a newer client was built: identical
/// but for `Chat`, which gained a channel.
mod proto_v2 {
    use legume::prelude::*;

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 20)]
    pub struct Join {
        #[field(max_len = 16)]
        pub name: String,
    }

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 21)]
    pub struct Input {
        pub tick: u32,
        pub dx: i8,
        pub dy: i8,
    }

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 22)]
    pub struct Chat {
        pub channel: u8,
        #[field(max_len = 200)]
        pub text: String,
    }

    #[derive(Debug, PartialEq, Message)]
    #[message(id = 23)]
    pub struct Leave;

    #[derive(Debug, MessageSet)]
    pub enum Msg {
        Join(Join),
        Input(Input),
        Chat(Chat),
        Leave(Leave),
    }
}

#[test]
fn two_protocol_versions_differ_in_exactly_the_changed_message() {
    let server = proto_v1::Msg::factory().unwrap();
    let client = proto_v2::Msg::factory().unwrap();
    assert_ne!(server.fingerprint(), client.fingerprint());

    // The client's summary travels in the handshake, well under 250 bytes.
    let summary = client.schema_summary().within(250);
    let bytes = to_vec(&summary).unwrap();
    assert_eq!(bytes.len(), 8 + 1 + 1 + 4 * 5);
    let received: SchemaSummary = from_bytes(&bytes).unwrap();
    assert_eq!(received, client.schema_summary());

    let diff = server.schema_diff(&received).with_sides("server", "client");
    assert!(!diff.is_match() && diff.is_explained());
    assert_eq!(
        diff.differing(),
        [DiffEntry {
            id: 22,
            name: Some("Chat")
        }]
    );
    assert!(diff.missing_on_local().is_empty() && diff.missing_on_remote().is_empty());
    assert_eq!(
        diff.to_string(),
        "schema mismatch: message `Chat` (id 22) differs"
    );

    // The client, given the server's summary, reaches the same verdict.
    let back = client
        .schema_diff(&server.schema_summary())
        .with_sides("client", "server");
    assert_eq!(
        back.to_string(),
        "schema mismatch: message `Chat` (id 22) differs"
    );

    // The canonical texts show where, line by line.
    let (v1, v2) = (server.schema_text(), client.schema_text());
    let changed: Vec<(&str, &str)> = v1.lines().zip(v2.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(
        changed,
        [(
            r#"22 "Chat" struct{text:max_len(200,string)}"#,
            r#"22 "Chat" struct{channel:u8,text:max_len(200,string)}"#
        )]
    );

    // Same definitions on both sides: a match.
    let same = proto_v1::Msg::factory().unwrap();
    let ok = server.schema_diff(&same.schema_summary());
    assert!(ok.is_match() && !ok.is_explained());
}

mod server_side {
    use legume::prelude::*;

    #[derive(Debug, Message)]
    #[message(id = 22)]
    pub struct Chat {
        pub text: String,
    }

    #[derive(Debug, Message)]
    #[message(id = 25)]
    pub struct Ping;

    #[derive(Debug, Message)]
    #[message(id = 26)]
    pub struct Pong;
}

mod client_side {
    use legume::prelude::*;

    #[derive(Debug, Message)]
    #[message(id = 22)]
    pub struct Chat {
        pub text: Vec<char>,
    }

    #[derive(Debug, Message)]
    #[message(id = 26)]
    pub struct Pong;

    #[derive(Debug, Message)]
    #[message(id = 27)]
    pub struct Emote(pub u8);
}

#[test]
fn diff_names_differing_and_missing_messages() {
    let mut server = MessageFactory::new();
    server
        .register::<server_side::Chat>()
        .unwrap()
        .register::<server_side::Ping>()
        .unwrap()
        .register::<server_side::Pong>()
        .unwrap();
    let mut client = MessageFactory::new();
    client
        .register::<client_side::Chat>()
        .unwrap()
        .register::<client_side::Pong>()
        .unwrap()
        .register::<client_side::Emote>()
        .unwrap();

    let on_server = server
        .schema_diff(&client.schema_summary())
        .with_sides("server", "client");
    assert_eq!(
        on_server.to_string(),
        "schema mismatch: message `Chat` (id 22) differs; message `Ping` (id 25) missing on client; \
         message id 27 missing on server"
    );
    assert_eq!(
        on_server.missing_on_remote(),
        [DiffEntry {
            id: 25,
            name: Some("Ping")
        }]
    );
    assert_eq!(
        on_server.missing_on_local(),
        [DiffEntry { id: 27, name: None }]
    );

    let on_client = client
        .schema_diff(&server.schema_summary())
        .with_sides("client", "server");
    assert_eq!(
        on_client.to_string(),
        "schema mismatch: message `Chat` (id 22) differs; message `Emote` (id 27) missing on server; \
         message id 25 missing on client"
    );

    // A summary cut down to its fingerprint still detects the mismatch.
    let bare = client.schema_summary().within(9);
    assert_eq!(bare.entries(), None);
    assert_eq!(to_vec(&bare).unwrap().len(), 9);
    let unexplained = server.schema_diff(&bare).with_sides("server", "client");
    assert!(!unexplained.is_match() && !unexplained.is_explained());
    assert!(unexplained
        .to_string()
        .ends_with("no per-message list to tell which message differs"));
}

#[derive(Debug, Codec)]
enum Tree {
    Leaf(u8),
    Node(Vec<Tree>),
}

#[derive(Debug, Codec)]
struct Ping {
    pong: Option<Box<Pong>>,
}

#[derive(Debug, Codec)]
struct Pong {
    ping: Vec<Ping>,
}

#[derive(Debug, Message)]
#[message(id = 50)]
struct Forest {
    trees: Vec<Tree>,
    rally: Ping,
    parent: Option<Box<Forest>>,
}

#[test]
fn recursive_types_are_described_by_reference() {
    assert_eq!(
        Tree::wire_type(&mut SchemaContext::new()).to_string(),
        "enum Tree{Leaf(u8),Node(vec<rec Tree>)}"
    );
    assert_eq!(
        Ping::wire_type(&mut SchemaContext::new()).to_string(),
        "struct Ping{pong:option<struct Pong{ping:vec<rec Ping>}>}"
    );
    assert_eq!(
        text::<Forest>(),
        r#"50 "Forest" struct{trees:vec<enum Tree{Leaf(u8),Node(vec<rec Tree>)}>,rally:struct Ping{pong:option<struct Pong{ping:vec<rec Ping>}>},parent:option<rec Forest>}"#
    );
}

/// A message written by hand, without describing its fields.
#[derive(Debug)]
struct Legacy(u32);

impl Encode for Legacy {
    fn encoded_len(&self) -> usize {
        4
    }
    fn encode(&self, w: &mut legume::Writer<'_>) -> Result<(), EncodeError> {
        self.0.encode(w)
    }
}

impl Decode for Legacy {
    const MIN_LEN: usize = 4;
    fn decode(r: &mut legume::Reader<'_>) -> Result<Self, DecodeError> {
        u32::decode(r).map(Legacy)
    }
}

impl Message for Legacy {
    const TYPE_ID: u8 = 60;
    const NAME: &'static str = "Legacy";
}

#[test]
fn hand_written_messages_are_opaque_but_fingerprinted() {
    let schema = MessageSchema::of::<Legacy>();
    assert!(schema.is_opaque() && schema.fields().is_none());
    assert_eq!(schema.to_string(), r#"60 "Legacy" opaque"#);
    assert_eq!(
        format!("{schema:#}"),
        format!(
            "message 60 `Legacy` (opaque, fingerprint {})",
            schema.fingerprint()
        )
    );
    assert_eq!(
        schema.fingerprint().as_u64(),
        fnv1a(br#"60 "Legacy" opaque"#)
    );
    let mut f = MessageFactory::new();
    f.register::<Legacy>().unwrap();
    assert_eq!(f.by_id(60).unwrap().fingerprint(), schema.fingerprint());
    assert_eq!(
        f.fingerprint().as_u64(),
        factory_fingerprint_of(&[(60, r#"60 "Legacy" opaque"#)])
    );
}

#[test]
fn schemas_can_be_read_field_by_field_and_listed() {
    let factory = golden::All::factory().unwrap();
    let spawn = factory.by_name("Spawn").unwrap().schema();
    assert_eq!((spawn.id(), spawn.name()), (22, "Spawn"));
    let fields: Vec<(String, String)> = spawn
        .fields()
        .unwrap()
        .iter()
        .map(|(name, ty)| (name, ty.to_string()))
        .collect();
    assert_eq!(
        fields,
        [
            ("player".to_string(), "u32".to_string()),
            ("team".to_string(), "enum Team{Red,Blue}".to_string()),
            ("at".to_string(), "struct Pos{x:f32,y:f32}".to_string()),
            ("loadout".to_string(), "option<vec<u16>>".to_string()),
        ]
    );
    assert_eq!(
        format!("{spawn:#}"),
        "message 22 `Spawn` (struct, fingerprint d3c2f8031fa73130)\n    \
         player: u32\n    team: enum Team{Red,Blue}\n    at: struct Pos{x:f32,y:f32}\n    \
         loadout: option<vec<u16>>"
    );
    let input = factory.by_id(24).unwrap().schema();
    assert_eq!(
        format!("{input:#}"),
        "message 24 `Input` (enum, fingerprint b29f0d0bae19acd4)\n    Move([i8;2])\n    \
         Say{type:u8,text:max_len(64,string)}\n    Quit"
    );
}

mod odd_shapes {
    #![allow(dead_code)]
    use legume::prelude::*;

    #[derive(Debug, Codec)]
    pub enum Never {}

    #[derive(Debug, Codec)]
    pub struct Empty {}

    #[derive(Debug, Codec)]
    pub struct Nothing();

    #[derive(Debug, Message)]
    #[message(id = 70, name = "odd \"name\"")]
    pub struct r#Odd {
        pub r#match: Option<Never>,
        pub empty: Empty,
        pub nothing: Nothing,
        pub unit: (),
        pub one: (u8,),
    }
}

#[test]
fn empty_types_raw_identifiers_and_quoted_names() {
    assert_eq!(
        text::<odd_shapes::Odd>(),
        r#"70 "odd \"name\"" struct{match:option<enum Never{}>,empty:struct Empty,nothing:struct Nothing,unit:(),one:(u8)}"#
    );
    assert_eq!(
        odd_shapes::Odd::wire_type(&mut SchemaContext::new()).to_string(),
        "struct Odd{match:option<enum Never{}>,empty:struct Empty,nothing:struct Nothing,unit:(),one:(u8)}"
    );
    // An enum without variants has no values: only `None` travels.
    assert_eq!(to_vec(&Option::<odd_shapes::Never>::None).unwrap(), [0]);
    assert_eq!(
        from_bytes::<Option<odd_shapes::Never>>(&[1, 0]).unwrap_err(),
        DecodeError::InvalidEnumTag {
            tag: 0,
            ty: "Never"
        }
    );
}
