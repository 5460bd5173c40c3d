//! The message types of `tests/data/legume05_messages.json` (encoded by the
//! real Python legume 0.5), shared by the vector and interop tests.

use legume::prelude::*;

#[derive(Debug, PartialEq, Message)]
#[message(id = 20)]
pub struct Empty;

#[derive(Debug, PartialEq, Message)]
#[message(id = 21)]
pub struct Chat {
    #[field(fixed = 24)]
    pub sender_name: String,
    #[field(fixed = 256)]
    pub message: String,
    #[field(fixed = 24)]
    pub channel: String,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 22)]
pub struct Position {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub id: i32,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 23)]
pub struct Flags {
    pub alive: bool,
    pub team: u8,
    pub score: u16,
    pub hp: i32,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 24)]
pub struct Text {
    pub body: String,
    #[field(fixed = 4)]
    pub tag: String,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 25)]
pub struct EmptyText {
    pub body: String,
    #[field(fixed = 1)]
    pub tag: String,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 26)]
pub struct IntEdges {
    pub a: i32,
    pub b: i32,
    pub c: u16,
    pub d: u8,
}

#[derive(Debug, PartialEq, Message)]
#[message(id = 200)]
pub struct Mixed {
    pub n: i32,
    pub name: String,
    pub f: f64,
    pub ok: bool,
    #[field(fixed = 8)]
    pub pad: String,
}

/// All the vector messages, so a case can be matched by type after decoding.
#[derive(Debug, PartialEq, MessageSet)]
pub enum Vectors {
    Empty(Empty),
    Chat(Chat),
    Position(Position),
    Flags(Flags),
    Text(Text),
    EmptyText(EmptyText),
    IntEdges(IntEdges),
    Mixed(Mixed),
}
