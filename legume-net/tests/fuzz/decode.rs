//! Target 1, message decode: valid and mutated encodings of derived types
//! through `MessageFactory::decode`, with its two tests.

use std::fmt;
use std::sync::Arc;

use legume_core::{AnyMessage, DecodeError, Message, MessageFactory};
use legume_derive::{Codec, Message};
use legume_net::sim::Rng;

use crate::draw::Draw;
use crate::runner::{for_each_case, iters_or, long_run, on_input};
use crate::util::*;

#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
enum Team {
    Red,
    Blue,
    Spectator,
}

#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
enum Shape {
    Empty,
    Circle {
        r: u16,
    },
    Poly(#[field(max_len = 16)] Vec<(i16, i16)>),
    Tagged {
        #[field(fixed = 6)]
        tag: String,
        team: Option<Team>,
    },
}

#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
struct Entity {
    id: u16,
    shape: Shape,
    hp: Option<u8>,
    name: Option<String>,
    alive: bool,
}

/// Recursive: its nesting is bounded only by the input's length.
#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
enum Node {
    Leaf(u8),
    Branch(Vec<Node>),
    Named {
        #[field(fixed = 4)]
        tag: String,
        child: Option<Box<Node>>,
    },
}

#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 40)]
struct Chat {
    #[field(fixed = 16)]
    sender: String,
    #[field(max_len = 64)]
    text: String,
    team: Team,
    mentions: Vec<String>,
    reply_to: Option<u32>,
    mood: char,
}

#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 41)]
struct Snapshot {
    tick: u64,
    entities: Vec<Entity>,
    #[field(max_len = 8)]
    flags: Vec<bool>,
    pos: [i16; 3],
    origin: Option<(i32, i32)>,
}

#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 42)]
enum Command {
    Noop,
    Move { dx: i8, dy: i8 },
    Say(String),
    Batch(#[field(max_len = 4)] Vec<Command>),
}

#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 43)]
pub(crate) struct Tree {
    root: Node,
    #[field(max_len = 3)]
    forest: Vec<Node>,
}

/// Floats: compared by their bytes (NaN is not equal to itself).
#[derive(Clone, Debug, Message)]
#[legume(crate = "legume_core")]
#[message(id = 44)]
struct Physics {
    a: f32,
    b: f64,
    v: Vec<f32>,
    big: u128,
    small: i128,
}

#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 45)]
struct Bare;

#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 46)]
pub(crate) struct Blob {
    data: Vec<u8>,
    #[field(max_len = 300)]
    more: Vec<u8>,
    nested: Vec<Vec<u8>>,
    tuple: (u8, u16, u32, u64, i8, bool),
}

/// The type ids registered in [`fuzz_factory`], the test harness's `Num` included.
const TYPE_IDS: [u8; 8] = [20, 40, 41, 42, 43, 44, 45, 46];

/// The harness's `Num` and the types above.
pub(crate) fn fuzz_factory() -> Arc<MessageFactory> {
    let mut f = MessageFactory::new();
    f.register::<Num>()
        .and_then(|f| f.register::<Chat>())
        .and_then(|f| f.register::<Snapshot>())
        .and_then(|f| f.register::<Command>())
        .and_then(|f| f.register::<Tree>())
        .and_then(|f| f.register::<Physics>())
        .and_then(|f| f.register::<Bare>())
        .and_then(|f| f.register::<Blob>())
        .expect("distinct ids and names");
    Arc::new(f)
}

fn gen_team(rng: &mut Rng) -> Team {
    match rng.below(3) {
        0 => Team::Red,
        1 => Team::Blue,
        _ => Team::Spectator,
    }
}

fn gen_shape(rng: &mut Rng) -> Shape {
    match rng.below(4) {
        0 => Shape::Empty,
        1 => Shape::Circle {
            r: rng.edgy(u64::from(u16::MAX)) as u16,
        },
        2 => Shape::Poly(
            (0..rng.below(17))
                .map(|_| (rng.next_u64() as i16, rng.next_u64() as i16))
                .collect(),
        ),
        _ => Shape::Tagged {
            tag: rng.text(6),
            team: rng.chance(0.5).then(|| gen_team(rng)),
        },
    }
}

fn gen_node(rng: &mut Rng, depth: u32) -> Node {
    let leaf = depth == 0 || rng.chance(0.4);
    match rng.below(3) {
        _ if leaf => Node::Leaf(rng.byte()),
        0 => Node::Branch(
            (0..rng.below(4))
                .map(|_| gen_node(rng, depth - 1))
                .collect(),
        ),
        _ => Node::Named {
            tag: rng.text(4),
            child: rng.chance(0.7).then(|| Box::new(gen_node(rng, depth - 1))),
        },
    }
}

/// A chain of `depth` nested `Named` nodes (6 bytes a level).
fn chain(depth: u32) -> Node {
    let mut node = Node::Leaf(7);
    for _ in 0..depth {
        node = Node::Named {
            tag: "ab".into(),
            child: Some(Box::new(node)),
        };
    }
    node
}

fn gen_command(rng: &mut Rng, depth: u32) -> Command {
    match rng.below(4) {
        0 => Command::Noop,
        1 => Command::Move {
            dx: rng.next_u64() as i8,
            dy: rng.next_u64() as i8,
        },
        2 => Command::Say(rng.text(40)),
        _ if depth == 0 => Command::Noop,
        _ => Command::Batch(
            (0..rng.below(5))
                .map(|_| gen_command(rng, depth - 1))
                .collect(),
        ),
    }
}

/// A random value of one of the registered types, whose encoding is valid.
pub(crate) fn gen_message(rng: &mut Rng) -> Box<dyn AnyMessage> {
    match rng.below(8) {
        0 => Box::new(padded(rng.next_u64() as u32, rng.below(40) as usize)),
        1 => Box::new(Chat {
            sender: rng.text(16),
            text: rng.text(64),
            team: gen_team(rng),
            mentions: (0..rng.below(4)).map(|_| rng.text(12)).collect(),
            reply_to: rng
                .chance(0.5)
                .then(|| rng.edgy(u64::from(u32::MAX)) as u32),
            mood: char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'),
        }),
        2 => Box::new(Snapshot {
            tick: rng.edgy(u64::MAX),
            entities: (0..rng.below(5))
                .map(|_| Entity {
                    id: rng.next_u64() as u16,
                    shape: gen_shape(rng),
                    hp: rng.chance(0.5).then(|| rng.byte()),
                    name: rng.chance(0.5).then(|| rng.text(10)),
                    alive: rng.chance(0.5),
                })
                .collect(),
            flags: (0..rng.below(9)).map(|_| rng.chance(0.5)).collect(),
            pos: [rng.next_u64() as i16, 0, -1],
            origin: rng
                .chance(0.5)
                .then(|| (rng.next_u64() as i32, rng.next_u64() as i32)),
        }),
        3 => Box::new(gen_command(rng, 3)),
        4 => Box::new(Tree {
            root: if rng.chance(0.1) {
                chain(rng.below(120) as u32)
            } else {
                gen_node(rng, 5)
            },
            forest: (0..rng.below(4)).map(|_| gen_node(rng, 2)).collect(),
        }),
        5 => Box::new(Physics {
            a: f32::from_bits(rng.next_u64() as u32),
            b: f64::from_bits(rng.next_u64()),
            v: (0..rng.below(6))
                .map(|_| f32::from_bits(rng.next_u64() as u32))
                .collect(),
            big: u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
            small: rng.next_u64() as i64 as i128,
        }),
        6 => Box::new(Bare),
        _ => Box::new(Blob {
            data: rng.bytes_in(0, 64),
            more: rng.bytes_in(0, 301),
            nested: (0..rng.below(6)).map(|_| rng.bytes_in(0, 5)).collect(),
            tuple: (
                rng.byte(),
                rng.next_u64() as u16,
                rng.next_u64() as u32,
                rng.edgy(u64::MAX),
                rng.next_u64() as i8,
                rng.chance(0.5),
            ),
        }),
    }
}

pub(crate) fn encode(msg: &dyn AnyMessage) -> Vec<u8> {
    let mut buf = vec![0; msg.message_len()];
    let n = msg
        .encode_message(&mut buf)
        .unwrap_or_else(|e| panic!("{msg:?} does not encode: {e}"));
    assert_eq!(
        n,
        buf.len(),
        "message_len disagrees with encode for {msg:?}"
    );
    buf
}

fn same<T: Message + PartialEq>(a: &dyn AnyMessage, b: &dyn AnyMessage) -> Option<bool> {
    Some(a.downcast_ref::<T>()? == b.downcast_ref::<T>()?)
}

/// Whether two decoded messages are the same value (floats by their bytes).
fn same_value(a: &dyn AnyMessage, b: &dyn AnyMessage) -> bool {
    if a.message_type_id() == Physics::TYPE_ID {
        return b.is::<Physics>() && encode(a) == encode(b);
    }
    same::<Num>(a, b)
        .or_else(|| same::<Chat>(a, b))
        .or_else(|| same::<Snapshot>(a, b))
        .or_else(|| same::<Command>(a, b))
        .or_else(|| same::<Tree>(a, b))
        .or_else(|| same::<Bare>(a, b))
        .or_else(|| same::<Blob>(a, b))
        .unwrap_or(false)
}

/// Types whose decoding is canonical: the only non-canonical form is a
/// fixed-width string with NUL bytes inside (decoding drops them).
fn canonical(type_id: u8) -> bool {
    !matches!(type_id, 40 | 41 | 43)
}

/// Interesting byte values: tags, varint edges, length prefixes.
const EDGE_BYTES: [u8; 10] = [0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x40];

/// Length prefixes and varints worth splicing in.
const EDGE_RUNS: [&[u8]; 9] = [
    &[0xFF, 0xFF],
    &[0x00, 0x00],
    &[0x80, 0x00],
    &[0x80, 0x80, 0x00],
    &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
    &[0xFF, 0xFF, 0xFF, 0xFF, 0x1F],
    &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    &[0x00, 0x00, 0xD8, 0x00],
    &[0xC0, 0xAF],
];

/// Applies one random mutation; `donor` is another input to splice from.
pub(crate) fn mutate(rng: &mut Rng, b: &mut Vec<u8>, donor: &[u8], max_len: usize) {
    let len = b.len() as u64;
    let at = |rng: &mut Rng| rng.below(len.max(1)) as usize;
    match rng.below(11) {
        0 if !b.is_empty() => {
            let i = at(rng);
            b[i] ^= 1 << rng.below(8);
        }
        1 if !b.is_empty() => {
            let i = at(rng);
            b[i] = *rng.pick(&EDGE_BYTES);
        }
        2 => {
            let i = rng.below(len + 1) as usize;
            let extra = rng.bytes_in(1, 9);
            b.splice(i..i, extra);
        }
        3 if !b.is_empty() => {
            let i = at(rng);
            let n = 1 + rng.below((len - i as u64).min(16)) as usize;
            b.drain(i..i + n);
        }
        4 => b.truncate(rng.below(len + 1) as usize),
        5 => b.extend(rng.bytes_in(1, 33)),
        6 if !b.is_empty() => {
            // Duplicate a region somewhere else.
            let i = at(rng);
            let n = 1 + rng.below((len - i as u64).min(64)) as usize;
            let region = b[i..i + n].to_vec();
            let j = rng.below(len + 1) as usize;
            b.splice(j..j, region);
        }
        7 if !donor.is_empty() => {
            // This input's prefix, the donor's suffix.
            let cut = rng.below(len + 1) as usize;
            let from = rng.below(donor.len() as u64) as usize;
            b.truncate(cut);
            b.extend_from_slice(&donor[from..]);
        }
        8 => {
            let i = rng.below(len + 1) as usize;
            let run = *rng.pick(&EDGE_RUNS);
            let overwrite = rng.chance(0.5);
            for (k, &v) in run.iter().enumerate() {
                match b.get_mut(i + k) {
                    Some(x) if overwrite => *x = v,
                    _ => b.insert((i + k).min(b.len()), v),
                }
            }
        }
        9 if !b.is_empty() => {
            // Another type id: these fields read as another type's.
            b[0] = if rng.chance(0.8) {
                *rng.pick(&TYPE_IDS)
            } else {
                *rng.pick(&[0, 1, 19, 21, 99, 255])
            };
        }
        _ if !b.is_empty() => {
            let i = at(rng);
            b[i] = rng.byte();
        }
        _ => b.push(rng.byte()),
    }
    b.truncate(max_len);
}

/// What the decode target saw.
#[derive(Debug, Default)]
struct DecodeTally {
    inputs: u64,
    ok: u64,
    ok_mutated: u64,
    /// Errors by `DecodeError` variant, in declaration order.
    errors: [u64; 13],
}

impl fmt::Display for DecodeTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 13] = [
            "end", "too_long", "overrun", "utf8", "bool", "option", "enum", "char", "varint",
            "type_id", "wrong_id", "trailing", "other",
        ];
        write!(
            f,
            "{} inputs: {} decoded ({} of them mutated); errors",
            self.inputs, self.ok, self.ok_mutated
        )?;
        for (name, n) in NAMES.iter().zip(self.errors) {
            write!(f, " {name} {n}")?;
        }
        Ok(())
    }
}

fn error_index(e: &DecodeError) -> usize {
    match e {
        DecodeError::UnexpectedEnd { .. } => 0,
        DecodeError::TooLong { .. } => 1,
        DecodeError::LengthOverrun { .. } => 2,
        DecodeError::InvalidUtf8 => 3,
        DecodeError::InvalidBool(_) => 4,
        DecodeError::InvalidOptionTag(_) => 5,
        DecodeError::InvalidEnumTag { .. } => 6,
        DecodeError::InvalidChar(_) => 7,
        DecodeError::InvalidVarint => 8,
        DecodeError::UnknownTypeId(_) => 9,
        DecodeError::WrongTypeId { .. } => 10,
        DecodeError::TrailingBytes(_) => 11,
        _ => 12,
    }
}

/// Decodes one input and checks what came out.
fn check_decode(factory: &MessageFactory, input: &[u8]) -> Result<(), DecodeError> {
    let msg = on_input("MessageFactory::decode", input, || factory.decode(input))?;
    let bytes = encode(msg.as_ref());
    let back = factory.decode(&bytes).unwrap_or_else(|e| {
        panic!("{msg:?} (from {input:02x?}) re-encodes to {bytes:02x?}, which fails: {e}")
    });
    assert!(
        same_value(msg.as_ref(), back.as_ref()),
        "{msg:?} re-encoded and decoded as {back:?}"
    );
    assert_eq!(
        encode(back.as_ref()),
        bytes,
        "{msg:?}: encoding is not stable"
    );
    if canonical(msg.message_type_id()) {
        assert_eq!(
            bytes, input,
            "{msg:?} decoded from a non-canonical encoding"
        );
    } else {
        assert_eq!(
            bytes.len(),
            input.len(),
            "{msg:?}: re-encoding changed the length"
        );
    }
    Ok(())
}

/// Target 1: `MessageFactory::decode` on structure-aware inputs.
fn target_message_decode(seed: u64, iters: u64) -> DecodeTally {
    let factory = fuzz_factory();
    let mut tally = DecodeTally::default();
    for_each_case("message decode", seed, iters, |_, rng, _| {
        let original = gen_message(rng);
        let mut input = encode(original.as_ref());
        let mutated = match rng.below(10) {
            0..=1 => false,
            2 => {
                // A registered id and random bytes.
                let n = rng.below(64) as usize;
                input.truncate(1);
                input.extend(rng.bytes(n));
                true
            }
            _ => {
                let donor = encode(gen_message(rng).as_ref());
                for _ in 0..1 + rng.below(4) {
                    mutate(rng, &mut input, &donor, 4096);
                }
                true
            }
        };
        tally.inputs += 1;
        match check_decode(&factory, &input) {
            Ok(()) => {
                tally.ok += 1;
                tally.ok_mutated += u64::from(mutated);
            }
            Err(e) => {
                // Values nested past the decoder's depth limit encode but are
                // refused on decode, by design (stack safety).
                let too_deep = matches!(e, DecodeError::TooDeep(_));
                assert!(
                    mutated || too_deep,
                    "{original:?} encodes to {input:02x?}, which fails: {e}"
                );
                tally.errors[error_index(&e)] += 1;
            }
        }
        if !mutated {
            if let Ok(back) = factory.decode(&input) {
                assert!(
                    same_value(original.as_ref(), back.as_ref()),
                    "{original:?} came back as {back:?}"
                );
            }
        }
    });
    tally
}

#[test]
fn message_decode() {
    let tally = target_message_decode(0x00DE_C0DE, 150_000);
    println!("{tally}");
    // The generator reaches both outcomes and most error kinds.
    assert!(tally.ok > 5_000 && tally.ok_mutated > 1_000, "{tally}");
    let kinds = tally.errors.iter().filter(|&&n| n > 0).count();
    assert!(kinds >= 10, "{tally}");
}

#[test]
#[ignore = "long fuzz run: LEGUME_FUZZ_ITERS, LEGUME_FUZZ_SEED"]
fn message_decode_long() {
    long_run(
        "message decode",
        iters_or(1_000_000),
        "inputs",
        target_message_decode,
    );
}
