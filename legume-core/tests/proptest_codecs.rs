//! Property tests of every field codec, the derived codecs and the message
//! framing.
//!
//! For each value: `encoded_len` matches the bytes written, decoding gives the
//! value back, re-encoding gives the same bytes (one encoding per value),
//! every strict prefix fails, and the decoder reads exactly the value's bytes.
//! Random and mutated inputs must decode to `Ok` or `Err`, never panic, and
//! never allocate far beyond their own size.
//!
//! Run with `cargo test -p legume-core --test proptest_codecs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;

use legume_core::codec::{from_bytes, to_vec, STRING_MAX_LEN};
use legume_core::varint::{varint_len, write_varint, MAX_VARINT_LEN};
use legume_core::{
    AnyMessage, Decode, DecodeError, Encode, EncodeError, Message, MessageFactory, MessageSet,
    Reader, Writer,
};
use legume_derive::{Codec, Message, MessageSet};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// Allocation accounting: bytes allocated by the current thread.
// ---------------------------------------------------------------------------

/// The system allocator, counting the bytes each thread asks for so that a
/// test can measure what one decode call allocates.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with` fails only while the thread is being torn down.
    let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(bytes)));
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a
// const-initialised thread-local `Cell` that neither allocates nor has a destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the bytes this thread allocated meanwhile.
fn allocated_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATED.with(Cell::get);
    let result = f();
    let after = ALLOCATED.with(Cell::get);
    (result, after - before)
}

/// The most a decode of `input_len` bytes may allocate: a generous constant
/// for boxes and small buffers plus a bounded factor per input byte (a
/// 24-byte `String` header per 1-byte empty-string prefix, and the like).
/// A length prefix that allocated what it announced would blow through this.
fn alloc_budget(input_len: usize) -> usize {
    2048 + 64 * input_len
}

// ---------------------------------------------------------------------------
// Derived types under test.
// ---------------------------------------------------------------------------

/// A nested struct with scalars, a string, a tuple, a byte vector and a float.
#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
struct Stats {
    hp: u16,
    name: String,
    pos: (i32, i32),
    tags: Vec<u8>,
    ratio: f32,
    #[field(max_len = 20)]
    title: String,
}

/// A unit struct: zero bytes on the wire.
#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
struct Marker;

/// A tuple struct.
#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
struct Pair(u8, char);

/// An enum with unit, tuple and named variants, nesting other derived types.
#[derive(Clone, Debug, PartialEq, Codec)]
#[legume(crate = "legume_core")]
enum Action {
    Idle,
    Move(i16, i16),
    Say {
        text: String,
        loud: bool,
    },
    Attack {
        target: u32,
        power: Option<u8>,
    },
    Inspect(Box<Stats>),
    Tagged(Pair, [u8; 3]),
    Rename {
        #[field(fixed = 8)]
        name: String,
    },
}

/// The main message: nested structs, an option of one, a vector of enums,
/// a fixed-width string and a capped vector (last, so that tests can
/// hand-build its length prefix).
#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 40)]
struct Snapshot {
    tick: u64,
    #[field(fixed = 12)]
    player: String,
    stats: Stats,
    backup: Option<Stats>,
    actions: Vec<Action>,
    #[field(max_len = 5)]
    scores: Vec<u32>,
}

/// A tuple-struct message.
#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 41)]
struct Ping(u32, i64);

/// A message with no fields.
#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 42, name = "Bye")]
struct Goodbye;

/// An enum message, with attributes on variant fields.
#[derive(Clone, Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 43)]
enum Command {
    Quit,
    Kick(u32),
    Rename {
        #[field(fixed = 8)]
        name: String,
    },
    Broadcast(#[field(max_len = 3)] Vec<String>),
}

/// Every message type of this file as one set.
// MessageSet variants wrap message types themselves, so they cannot be boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, MessageSet)]
#[legume(crate = "legume_core")]
enum AnyMsg {
    Snapshot(Snapshot),
    Ping(Ping),
    Goodbye(Goodbye),
    Command(Command),
}

fn factory() -> MessageFactory {
    let mut f = MessageFactory::new();
    f.register::<Snapshot>()
        .and_then(|f| f.register::<Ping>())
        .and_then(|f| f.register::<Goodbye>())
        .and_then(|f| f.register::<Command>())
        .expect("test messages do not clash");
    f
}

// ---------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------

/// Lengths of the strict prefixes to try: all of them for short encodings,
/// otherwise the first and last 24 and about 48 in between (keeps the
/// quadratic cost of re-decoding prefixes down).
fn prefix_lengths(len: usize) -> Vec<usize> {
    if len <= 96 {
        return (0..len).collect();
    }
    let step = len / 48;
    let mut out: Vec<usize> = (0..24).chain((24..len - 24).step_by(step)).collect();
    out.extend(len - 24..len);
    out
}

/// Encodes `value` and checks everything that must hold of one value's
/// encoding; returns the bytes.
fn check_codec<T, F>(value: &T, eq: F) -> Result<Vec<u8>, TestCaseError>
where
    T: Encode + Decode + Debug,
    F: Fn(&T, &T) -> bool,
{
    let len = value.encoded_len();

    // encode into a larger, dirty buffer: exactly `len` bytes are written.
    let mut big = vec![0xA5u8; len + 32];
    let mut w = Writer::new(&mut big);
    value
        .encode(&mut w)
        .map_err(|e| TestCaseError::fail(format!("encode failed: {e:?}")))?;
    prop_assert_eq!(w.position(), len, "encoded_len disagrees with encode");
    let written = w.written().to_vec();

    // to_vec agrees, and encoding into exactly `len - 1` bytes fails.
    let bytes = to_vec(value).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(&bytes, &written);
    if len > 0 {
        let mut short = vec![0u8; len - 1];
        let err = value.encode(&mut Writer::new(&mut short));
        prop_assert!(
            matches!(err, Err(EncodeError::BufferTooSmall { .. })),
            "encode into {} bytes gave {:?}",
            len - 1,
            err
        );
    }

    // decode gives the value back.
    let back: T = from_bytes(&bytes).map_err(|e| {
        TestCaseError::fail(format!("decode of {value:?} ({bytes:02x?}) failed: {e:?}"))
    })?;
    prop_assert!(eq(&back, value), "decoded {:?}, expected {:?}", back, value);

    // decode -> encode gives the same bytes.
    let again = to_vec(&back).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(&again, &bytes, "re-encoding is not canonical");

    // the decoder reads exactly the value's bytes and leaves what follows.
    let mut followed = bytes.clone();
    followed.extend_from_slice(&[0xEE, 0x00, 0x7F]);
    let mut r = Reader::new(&followed);
    let back2 = T::decode(&mut r).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert!(eq(&back2, value));
    prop_assert_eq!(r.rest(), &[0xEE, 0x00, 0x7F][..]);

    // from_bytes refuses a trailing byte.
    prop_assert_eq!(
        from_bytes::<T>(&followed[..len + 1]).err(),
        Some(DecodeError::TrailingBytes(1))
    );

    // every strict prefix fails.
    for cut in prefix_lengths(len) {
        let got = from_bytes::<T>(&bytes[..cut]);
        prop_assert!(
            got.is_err(),
            "prefix of {} of {} bytes decoded: {:?}",
            cut,
            len,
            got
        );
    }
    Ok(bytes)
}

/// [`check_codec`] with `PartialEq`.
fn check_eq<T>(value: &T) -> Result<Vec<u8>, TestCaseError>
where
    T: Encode + Decode + Debug + PartialEq,
{
    check_codec(value, T::eq)
}

/// [`check_codec`] plus the message framing: `message_len`, `to_bytes`,
/// `encode_message`, `decode_message`, the factory, the dyn path, the
/// message set, truncation and a trailing byte.
fn check_message<M>(msg: &M, factory: &MessageFactory) -> Result<Vec<u8>, TestCaseError>
where
    M: Message + PartialEq + Clone,
{
    let fields = check_eq(msg)?;
    let bytes = msg
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(bytes.len(), msg.message_len());
    prop_assert_eq!(msg.message_len(), 1 + msg.encoded_len());
    prop_assert_eq!(bytes[0], M::TYPE_ID);
    prop_assert_eq!(&bytes[1..], &fields[..]);

    let mut buf = vec![0u8; bytes.len() + 8];
    let n = msg
        .encode_message(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(&buf[..n], &bytes[..]);
    let mut short = vec![0u8; bytes.len() - 1];
    let err = msg.encode_message(&mut short);
    prop_assert!(
        matches!(err, Err(EncodeError::BufferTooSmall { .. })),
        "encode_message into {} bytes gave {:?}",
        short.len(),
        err
    );

    prop_assert_eq!(M::decode_message(&bytes), Ok(msg.clone()));

    let any = factory
        .decode(&bytes)
        .map_err(|e| TestCaseError::fail(format!("factory: {e:?}")))?;
    prop_assert_eq!(any.message_type_id(), M::TYPE_ID);
    prop_assert_eq!(any.message_name(), M::NAME);
    prop_assert_eq!(any.message_len(), bytes.len());
    let n = any
        .encode_message(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(&buf[..n], &bytes[..]);
    prop_assert_eq!(any.downcast_ref::<M>(), Some(msg));

    let set = AnyMsg::decode_message(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(set.as_message().message_type_id(), M::TYPE_ID);
    let set_any: Box<dyn AnyMessage> = factory
        .decode(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert!(AnyMsg::from_any(set_any).is_ok());

    // Truncation: every strict prefix fails, on every decode path.
    for cut in prefix_lengths(bytes.len()) {
        let part = &bytes[..cut];
        prop_assert!(M::decode_message(part).is_err(), "prefix {} decoded", cut);
        prop_assert!(factory.decode(part).is_err(), "prefix {} decoded", cut);
        prop_assert!(
            AnyMsg::decode_message(part).is_err(),
            "prefix {} decoded",
            cut
        );
    }

    // One byte too many.
    for extra in [0u8, 0xFF] {
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert_eq!(
            M::decode_message(&longer).err(),
            Some(DecodeError::TrailingBytes(1))
        );
        prop_assert_eq!(
            factory.decode(&longer).err(),
            Some(DecodeError::TrailingBytes(1))
        );
        prop_assert_eq!(
            AnyMsg::decode_message(&longer).err(),
            Some(DecodeError::TrailingBytes(1))
        );
    }
    Ok(bytes)
}

/// Decodes arbitrary bytes as `T`: no panic, a bounded allocation, and any
/// value it accepts re-encodes to exactly the input (one encoding per value).
fn check_arbitrary<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: Encode + Decode + Debug + PartialEq,
{
    let (result, allocated) = allocated_during(|| from_bytes::<T>(bytes));
    prop_assert!(
        allocated <= alloc_budget(bytes.len()),
        "decoding {} bytes allocated {} bytes",
        bytes.len(),
        allocated
    );
    if let Ok(value) = result {
        let again = to_vec(&value).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(&again[..], bytes, "accepted a non-canonical encoding");
    }
    Ok(())
}

/// Decodes arbitrary bytes on every message path: the types, the factory and
/// the set. Accepted messages re-encode and decode to the same value (not
/// necessarily the same bytes: fixed-width strings drop NUL bytes, as legume does).
fn check_arbitrary_message(bytes: &[u8], factory: &MessageFactory) -> Result<(), TestCaseError> {
    fn one<M: Message>(bytes: &[u8]) -> Result<(), TestCaseError> {
        let (result, allocated) = allocated_during(|| M::decode_message(bytes));
        prop_assert!(allocated <= alloc_budget(bytes.len()));
        if let Ok(msg) = result {
            let again = msg
                .to_bytes()
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            // Compared as bytes, not values: corrupted input decodes to NaN
            // floats now and then, and a NaN is not equal to itself.
            let back =
                M::decode_message(&again).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(back.to_bytes().ok(), Some(again));
        }
        Ok(())
    }
    one::<Snapshot>(bytes)?;
    one::<Ping>(bytes)?;
    one::<Goodbye>(bytes)?;
    one::<Command>(bytes)?;

    let (result, allocated) = allocated_during(|| factory.decode(bytes));
    prop_assert!(allocated <= alloc_budget(bytes.len()));
    if let Ok(msg) = result {
        prop_assert_eq!(Some(msg.message_type_id()), bytes.first().copied());
        let mut buf = vec![0u8; msg.message_len()];
        let n = msg
            .encode_message(&mut buf)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(n, buf.len());
        prop_assert!(factory.decode(&buf).is_ok());
    }
    let (result, allocated) = allocated_during(|| AnyMsg::decode_message(bytes));
    prop_assert!(allocated <= alloc_budget(bytes.len()));
    if let Ok(set) = result {
        prop_assert_eq!(
            Some(set.as_message().message_type_id()),
            bytes.first().copied()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Failures are kept as unit tests in this file, not as files beside it.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any `f32` bit pattern (every NaN payload, subnormals, infinities), with
/// the edge values drawn often.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => any::<u32>().prop_map(f32::from_bits),
        1 => prop::sample::select(vec![
            0.0f32,
            -0.0,
            f32::MIN,
            f32::MAX,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::EPSILON,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(1),
            f32::from_bits(0x8000_0001),
            f32::from_bits(0x7F80_0001),
        ]),
    ]
}

/// Any `f64` bit pattern, with the edge values drawn often.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits),
        1 => prop::sample::select(vec![
            0.0f64,
            -0.0,
            f64::MIN,
            f64::MAX,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::EPSILON,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(1),
            f64::from_bits(0x8000_0000_0000_0001),
            f64::from_bits(0x7FF0_0000_0000_0001),
        ]),
    ]
}

/// An `f32` that is not NaN, for types compared with `PartialEq`. The
/// canonical-bytes check still tells -0.0 from 0.0.
fn plain_f32() -> impl Strategy<Value = f32> {
    any_f32().prop_filter("NaN != NaN", |f| !f.is_nan())
}

/// Text of up to 100 chars of any script (up to 400 bytes).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        vec(any::<char>(), 0..100).prop_map(String::from_iter),
        "[a-z ]{0,40}",
        "\\PC{0,60}",
    ]
}

/// Text of at most `max` bytes, cut at a char boundary.
fn text_up_to(max: usize) -> impl Strategy<Value = String> {
    text().prop_map(move |s| {
        let mut out = String::new();
        for c in s.chars() {
            if out.len() + c.len_utf8() > max {
                break;
            }
            out.push(c);
        }
        out
    })
}

/// Text for a `fixed = width` field: at most `width` bytes, no NUL.
fn fixed_text(width: usize) -> impl Strategy<Value = String> {
    text_up_to(width).prop_map(|s| s.replace('\0', ""))
}

fn stats() -> impl Strategy<Value = Stats> {
    (
        any::<u16>(),
        text(),
        any::<(i32, i32)>(),
        vec(any::<u8>(), 0..40),
        plain_f32(),
        text_up_to(20),
    )
        .prop_map(|(hp, name, pos, tags, ratio, title)| Stats {
            hp,
            name,
            pos,
            tags,
            ratio,
            title,
        })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Idle),
        any::<(i16, i16)>().prop_map(|(x, y)| Action::Move(x, y)),
        (text(), any::<bool>()).prop_map(|(text, loud)| Action::Say { text, loud }),
        (any::<u32>(), any::<Option<u8>>())
            .prop_map(|(target, power)| Action::Attack { target, power }),
        stats().prop_map(|s| Action::Inspect(Box::new(s))),
        (any::<u8>(), any::<char>(), any::<[u8; 3]>())
            .prop_map(|(a, c, t)| Action::Tagged(Pair(a, c), t)),
        fixed_text(8).prop_map(|name| Action::Rename { name }),
    ]
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        any::<u64>(),
        fixed_text(12),
        stats(),
        prop::option::of(stats()),
        vec(action(), 0..6),
        vec(any::<u32>(), 0..=5),
    )
        .prop_map(|(tick, player, stats, backup, actions, scores)| Snapshot {
            tick,
            player,
            stats,
            backup,
            actions,
            scores,
        })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Quit),
        any::<u32>().prop_map(Command::Kick),
        fixed_text(8).prop_map(|name| Command::Rename { name }),
        vec(text(), 0..=3).prop_map(Command::Broadcast),
    ]
}

/// A valid message of any of the registered types, as bytes.
fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    let bytes = |r: Result<Vec<u8>, EncodeError>| r.expect("generated messages encode");
    prop_oneof![
        snapshot().prop_map(move |m| bytes(m.to_bytes())),
        any::<(u32, i64)>().prop_map(move |(a, b)| bytes(Ping(a, b).to_bytes())),
        Just(bytes(Goodbye.to_bytes())),
        command().prop_map(move |m| bytes(m.to_bytes())),
    ]
}

/// One edit to a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Cut { at: usize },
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
        match *self {
            Mutation::Flip { at, mask } if !bytes.is_empty() => {
                let i = pos(at, bytes.len());
                bytes[i] ^= mask;
            }
            Mutation::Set { at, byte } if !bytes.is_empty() => {
                let i = pos(at, bytes.len());
                bytes[i] = byte;
            }
            Mutation::Insert { at, byte } => {
                let i = pos(at, bytes.len() + 1);
                bytes.insert(i, byte);
            }
            Mutation::Remove { at } if !bytes.is_empty() => {
                let i = pos(at, bytes.len());
                bytes.remove(i);
            }
            Mutation::Cut { at } => {
                let i = pos(at, bytes.len() + 1);
                bytes.truncate(i);
            }
            _ => {}
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (
            any::<usize>(),
            prop::sample::select(vec![0u8, 1, 2, 0x7F, 0x80, 0xFF])
        )
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
    ]
}

/// A valid message with one to four edits.
fn mutated_message() -> impl Strategy<Value = Vec<u8>> {
    (message_bytes(), vec(mutation(), 1..4)).prop_map(|(mut bytes, edits)| {
        for m in &edits {
            m.apply(&mut bytes);
        }
        bytes
    })
}

fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..2048)
}

// ---------------------------------------------------------------------------
// 1. Roundtrips.
// ---------------------------------------------------------------------------

fn bits32(a: &f32, b: &f32) -> bool {
    a.to_bits() == b.to_bits()
}

fn bits64(a: &f64, b: &f64) -> bool {
    a.to_bits() == b.to_bits()
}

macro_rules! integer_roundtrips {
    ($($name:ident: $ty:ty, $width:expr;)*) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(v in any::<$ty>()) {
                    let bytes = check_eq(&v)?;
                    prop_assert_eq!(bytes.len(), $width);
                    prop_assert_eq!(&bytes[..], &v.to_be_bytes()[..]);
                }
            )*
        }
    };
}

integer_roundtrips! {
    roundtrip_i8: i8, 1;
    roundtrip_i16: i16, 2;
    roundtrip_i32: i32, 4;
    roundtrip_i64: i64, 8;
    roundtrip_i128: i128, 16;
    roundtrip_u8: u8, 1;
    roundtrip_u16: u16, 2;
    roundtrip_u32: u32, 4;
    roundtrip_u64: u64, 8;
    roundtrip_u128: u128, 16;
}

#[test]
fn integer_edges() -> Result<(), TestCaseError> {
    macro_rules! edges {
        ($($ty:ty),*) => {$(
            for v in [<$ty>::MIN, <$ty>::MAX, 0, 1, <$ty>::MAX - 1, <$ty>::MIN + 1] {
                prop_assert_eq!(check_eq(&v)?, v.to_be_bytes().to_vec());
            }
        )*};
    }
    edges!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128);
    check_eq(&-1i8)?;
    check_eq(&-1i128)?;
    Ok(())
}

#[test]
fn float_edges() -> Result<(), TestCaseError> {
    let neg_zero = check_codec(&-0.0f32, bits32)?;
    assert_eq!(neg_zero, [0x80, 0, 0, 0]);
    let back: f32 = from_bytes(&neg_zero).unwrap();
    assert!(back == 0.0 && back.is_sign_negative());
    let neg_zero = check_codec(&-0.0f64, bits64)?;
    assert_eq!(neg_zero, [0x80, 0, 0, 0, 0, 0, 0, 0]);

    for v in [
        0.0f32,
        f32::MIN,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(1),
        f32::from_bits(0x7FC0_1234),
        f32::from_bits(0xFF80_0001),
    ] {
        assert_eq!(check_codec(&v, bits32)?, v.to_bits().to_be_bytes());
    }
    for v in [
        0.0f64,
        f64::MIN,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(1),
        f64::from_bits(0x7FF8_0000_DEAD_BEEF),
        f64::from_bits(0xFFF0_0000_0000_0001),
    ] {
        assert_eq!(check_codec(&v, bits64)?, v.to_bits().to_be_bytes());
    }
    Ok(())
}

#[test]
fn scalar_edges() -> Result<(), TestCaseError> {
    assert_eq!(check_eq(&false)?, [0]);
    assert_eq!(check_eq(&true)?, [1]);
    for c in [
        '\0',
        'a',
        'é',
        '\u{D7FF}',
        '\u{E000}',
        '\u{FFFF}',
        char::MAX,
    ] {
        assert_eq!(check_eq(&c)?, u32::from(c).to_be_bytes());
    }
    assert_eq!(check_eq(&())?, Vec::<u8>::new());
    assert_eq!(check_eq(&String::new())?, [0, 0]);
    assert_eq!(check_eq(&Vec::<u8>::new())?, [0]);
    assert_eq!(check_eq(&None::<u8>)?, [0]);
    assert_eq!(check_eq(&[0u8; 0])?, Vec::<u8>::new());
    // The longest string the u16 prefix allows.
    let longest = "é".repeat(STRING_MAX_LEN / 2) + "x";
    assert_eq!(longest.len(), STRING_MAX_LEN);
    assert_eq!(check_eq(&longest)?[..2], [0xFF, 0xFF]);
    // Varint boundaries of the sequence count.
    for n in [127usize, 128, 16_383, 16_384] {
        let v = vec![7u8; n];
        let bytes = check_eq(&v)?;
        assert_eq!(bytes.len(), varint_len(n as u32) + n);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn roundtrip_f32(v in any_f32()) {
        let bytes = check_codec(&v, bits32)?;
        prop_assert_eq!(&bytes[..], &v.to_bits().to_be_bytes()[..]);
    }

    #[test]
    fn roundtrip_f64(v in any_f64()) {
        let bytes = check_codec(&v, bits64)?;
        prop_assert_eq!(&bytes[..], &v.to_bits().to_be_bytes()[..]);
    }

    #[test]
    fn roundtrip_bool(v in any::<bool>()) {
        check_eq(&v)?;
    }

    #[test]
    fn roundtrip_char(v in any::<char>()) {
        check_eq(&v)?;
    }

    #[test]
    fn char_accepts_exactly_scalar_values(v in prop_oneof![any::<u32>(), 0xD700..0xE100u32]) {
        let got = from_bytes::<char>(&v.to_be_bytes());
        match char::from_u32(v) {
            Some(c) => prop_assert_eq!(got, Ok(c)),
            None => prop_assert_eq!(got, Err(DecodeError::InvalidChar(v))),
        }
    }

    #[test]
    fn roundtrip_string(s in text()) {
        let bytes = check_eq(&s)?;
        prop_assert_eq!(&bytes[..2], &(s.len() as u16).to_be_bytes()[..]);
        // &str and Box<str> encode the same way.
        prop_assert_eq!(to_vec(s.as_str()).ok(), Some(bytes.clone()));
        prop_assert_eq!(to_vec(&s.clone().into_boxed_str()).ok(), Some(bytes));
    }

    #[test]
    fn roundtrip_vec_u8(v in vec(any::<u8>(), 0..600)) {
        let bytes = check_eq(&v)?;
        // The byte fast path writes the same layout as element by element.
        let n = v.len() as u32;
        prop_assert_eq!(&bytes[varint_len(n)..], &v[..]);
        let slow: Vec<u16> = v.iter().map(|&b| u16::from(b)).collect();
        prop_assert_eq!(varint_len(n), to_vec(&slow).unwrap().len() - 2 * v.len());
    }

    #[test]
    fn roundtrip_vec_i8_and_bool(a in vec(any::<i8>(), 0..300), b in vec(any::<bool>(), 0..300)) {
        check_eq(&a)?;
        check_eq(&b)?;
    }

    #[test]
    fn roundtrip_vec_numbers(
        a in vec(any::<i64>(), 0..50),
        b in vec(any::<u128>(), 0..20),
        c in vec(any_f32(), 0..50),
        d in vec(any_f64(), 0..20),
    ) {
        check_eq(&a)?;
        check_eq(&b)?;
        check_codec(&c, |x, y| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| bits32(p, q)))?;
        check_codec(&d, |x, y| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| bits64(p, q)))?;
    }

    #[test]
    fn roundtrip_vec_string(v in vec(text(), 0..12)) {
        check_eq(&v)?;
    }

    #[test]
    fn roundtrip_vec_vec_u16(v in vec(vec(any::<u16>(), 0..40), 0..20)) {
        check_eq(&v)?;
    }

    #[test]
    fn roundtrip_vec_char_and_options(
        a in vec(any::<char>(), 0..40),
        b in vec(any::<Option<i32>>(), 0..40),
    ) {
        check_eq(&a)?;
        check_eq(&b)?;
    }

    /// A sequence of zero-length elements cannot be longer than its bytes
    /// (the decoder charges each element one byte): the encoder refuses it,
    /// and the decoder refuses it whatever bytes follow. See
    /// `regression_vec_of_zero_sized_elements`.
    #[test]
    fn vec_of_zero_sized_elements(n in 1usize..200, tail in vec(any::<u8>(), 0..300)) {
        check_eq(&Vec::<()>::new())?;
        check_eq(&vec![vec![(); 0]; n])?;
        prop_assert_eq!(to_vec(&vec![(); n]), Err(EncodeError::TooLong { len: n, max: 0 }));
        prop_assert_eq!(to_vec(&vec![Marker; n]), Err(EncodeError::TooLong { len: n, max: 0 }));
        let mut bytes = varint(n as u32);
        bytes.extend_from_slice(&tail);
        let mut r = Reader::new(&bytes);
        prop_assert!(Vec::<()>::decode(&mut r).is_err());
        let mut r = Reader::new(&bytes);
        prop_assert!(Vec::<Marker>::decode(&mut r).is_err());
    }

    #[test]
    fn roundtrip_option(
        a in any::<Option<u32>>(),
        b in prop::option::of(text()),
        c in any::<Option<Option<bool>>>(),
        d in prop::option::of(vec(any::<u8>(), 0..40)),
        e in prop::option::of(any::<[u32; 4]>()),
    ) {
        check_eq(&a)?;
        check_eq(&b)?;
        check_eq(&c)?;
        check_eq(&d)?;
        check_eq(&e)?;
    }

    #[test]
    fn roundtrip_arrays(
        a in any::<[u8; 16]>(),
        b in [any_f64(), any_f64(), any_f64()],
        c in [text(), text()],
        d in any::<[[i16; 2]; 3]>(),
        e in [prop::option::of(any::<char>()), prop::option::of(any::<char>())],
    ) {
        let bytes = check_eq(&a)?;
        prop_assert_eq!(&bytes[..], &a[..]);
        check_codec(&b, |x, y| x.iter().zip(y).all(|(p, q)| bits64(p, q)))?;
        check_eq(&c)?;
        check_eq(&d)?;
        check_eq(&e)?;
        check_eq(&[(); 4])?;
    }

    #[test]
    fn roundtrip_tuples(
        a in any::<(u8,)>(),
        b in (any::<i16>(), text()),
        c in (any::<bool>(), any::<char>(), any::<Option<u64>>()),
        d in (any::<u8>(), any::<i32>(), vec(any::<u16>(), 0..10), text()),
        e in (any::<u8>(), any::<u16>(), any::<u32>(), any::<u64>(), any::<u128>()),
        f in (any::<i8>(), any::<i16>(), any::<i32>(), any::<i64>(), any::<i128>(), any::<bool>()),
    ) {
        check_eq(&a)?;
        check_eq(&b)?;
        check_eq(&c)?;
        check_eq(&d)?;
        check_eq(&e)?;
        check_eq(&f)?;
        check_eq(&((), a, ((b.0,), ())))?;
    }

    #[test]
    fn roundtrip_box(
        a in any::<u64>(),
        b in text(),
        c in vec(any::<i32>(), 0..20),
        d in stats(),
    ) {
        let boxed = check_eq(&Box::new(a))?;
        prop_assert_eq!(boxed, to_vec(&a).unwrap());
        check_eq(&Box::new(b))?;
        check_eq(&Box::new(Box::new(c)))?;
        check_eq(&Some(Box::new(d)))?;
    }

    #[test]
    fn roundtrip_derived_struct(s in stats(), p in (any::<u8>(), any::<char>())) {
        let bytes = check_eq(&s)?;
        // A struct is its fields, one after another.
        let fields = to_vec(&(s.hp, s.name.clone(), s.pos, s.tags.clone(), s.ratio, s.title.clone()));
        prop_assert_eq!(Ok(bytes), fields);
        let pair = Pair(p.0, p.1);
        prop_assert_eq!(check_eq(&pair)?, to_vec(&p).unwrap());
    }

    #[test]
    fn roundtrip_derived_enum(a in action(), all in vec(action(), 0..8)) {
        let bytes = check_eq(&a)?;
        let tag = match a {
            Action::Idle => 0,
            Action::Move(..) => 1,
            Action::Say { .. } => 2,
            Action::Attack { .. } => 3,
            Action::Inspect(_) => 4,
            Action::Tagged(..) => 5,
            Action::Rename { .. } => 6,
        };
        prop_assert_eq!(bytes[0], tag);
        check_eq(&all)?;
        check_eq(&Some(a))?;
    }

    #[test]
    fn roundtrip_snapshot(msg in snapshot()) {
        let bytes = check_message(&msg, &factory())?;
        // The fixed-width field is exactly 12 bytes after the tick.
        let player = &bytes[9..21];
        prop_assert_eq!(&player[..msg.player.len()], msg.player.as_bytes());
        prop_assert!(player[msg.player.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn roundtrip_other_messages(
        ping in any::<(u32, i64)>(),
        cmd in command(),
    ) {
        let factory = factory();
        check_message(&Ping(ping.0, ping.1), &factory)?;
        prop_assert_eq!(check_message(&Goodbye, &factory)?, [42]);
        check_message(&cmd, &factory)?;
    }
}

// ---------------------------------------------------------------------------
// 2. Robustness: arbitrary and corrupted input.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_plain_types(bytes in random_bytes()) {
        check_arbitrary::<String>(&bytes)?;
        check_arbitrary::<Vec<u64>>(&bytes)?;
        check_arbitrary::<Vec<Vec<String>>>(&bytes)?;
        check_arbitrary::<Option<[u32; 4]>>(&bytes)?;
        check_arbitrary::<Vec<u8>>(&bytes)?;
        check_arbitrary::<Vec<()>>(&bytes)?;
        check_arbitrary::<(Vec<Marker>, Vec<u8>)>(&bytes)?;
        check_arbitrary::<Vec<Option<bool>>>(&bytes)?;
        check_arbitrary::<(char, Box<String>, [i8; 3])>(&bytes)?;
        check_arbitrary::<Stats>(&bytes)?;
        check_arbitrary::<Vec<Pair>>(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_as_derived_types(bytes in random_bytes()) {
        // Action has fixed-width strings, so accepted input need not be canonical.
        let (result, allocated) = allocated_during(|| from_bytes::<Action>(&bytes));
        prop_assert!(allocated <= alloc_budget(bytes.len()));
        if let Ok(a) = result {
            prop_assert_eq!(from_bytes::<Action>(&to_vec(&a).unwrap()), Ok(a));
        }
        let (result, allocated) = allocated_during(|| from_bytes::<Vec<Action>>(&bytes));
        prop_assert!(allocated <= alloc_budget(bytes.len()));
        if let Ok(a) = result {
            prop_assert_eq!(from_bytes::<Vec<Action>>(&to_vec(&a).unwrap()), Ok(a));
        }
        let (result, allocated) = allocated_during(|| from_bytes::<Snapshot>(&bytes));
        prop_assert!(allocated <= alloc_budget(bytes.len()));
        if let Ok(s) = result {
            prop_assert_eq!(from_bytes::<Snapshot>(&to_vec(&s).unwrap()), Ok(s));
        }
    }

    #[test]
    fn arbitrary_bytes_as_messages(bytes in random_bytes(), id in 40u8..=43) {
        let factory = factory();
        check_arbitrary_message(&bytes, &factory)?;
        // The same bytes behind a registered type id reach the field decoders.
        let mut framed = vec![id];
        framed.extend_from_slice(&bytes);
        check_arbitrary_message(&framed, &factory)?;
    }

    #[test]
    fn corrupted_messages(bytes in mutated_message()) {
        check_arbitrary_message(&bytes, &factory())?;
    }

    #[test]
    fn corrupted_values(
        value in (vec(text(), 0..6), any::<Option<[u32; 4]>>(), vec(any::<u64>(), 0..8)),
        edits in vec(mutation(), 1..4),
    ) {
        let mut bytes = to_vec(&value).unwrap();
        for m in &edits {
            m.apply(&mut bytes);
        }
        check_arbitrary::<(Vec<String>, Option<[u32; 4]>, Vec<u64>)>(&bytes)?;
        check_arbitrary::<Vec<Vec<String>>>(&bytes)?;
    }

    #[test]
    fn unknown_type_ids_are_refused(id in any::<u8>(), rest in vec(any::<u8>(), 0..16)) {
        prop_assume!(!(40..=43).contains(&id));
        let mut bytes = vec![id];
        bytes.extend_from_slice(&rest);
        prop_assert_eq!(factory().decode(&bytes).err(), Some(DecodeError::UnknownTypeId(id)));
        prop_assert_eq!(AnyMsg::decode_message(&bytes).err(), Some(DecodeError::UnknownTypeId(id)));
        prop_assert_eq!(
            Snapshot::decode_message(&bytes).err(),
            Some(DecodeError::WrongTypeId { expected: 40, found: id })
        );
    }
}

/// Regression: `vec![(); 3]` encoded to `[3]`, which no decoder accepted
/// (`LengthOverrun`), while `(vec![(); 3], 7u32)` decoded, since the count
/// check charged the zero-sized elements the bytes of the field after them.
/// Found by `vec_of_zero_sized_elements` (then a roundtrip property) with n = 1.
#[test]
fn regression_vec_of_zero_sized_elements() {
    assert_eq!(
        to_vec(&vec![(); 1]),
        Err(EncodeError::TooLong { len: 1, max: 0 })
    );
    assert_eq!(
        to_vec(&(vec![(); 3], 7u32)),
        Err(EncodeError::TooLong { len: 3, max: 0 })
    );
    assert_eq!(
        from_bytes::<(Vec<()>, u32)>(&[3, 0, 0, 0, 7]),
        Err(DecodeError::LengthOverrun {
            len: 3,
            remaining: 0
        })
    );
    assert_eq!(
        from_bytes::<Vec<()>>(&[1]),
        Err(DecodeError::LengthOverrun {
            len: 1,
            remaining: 0
        })
    );
    // The same rule under a cap, and for a derived unit struct.
    let mut r = Reader::new(&[2, 0, 0]);
    assert_eq!(
        legume_core::codec::decode_bounded::<Vec<Marker>>(&mut r, 5),
        Err(DecodeError::LengthOverrun {
            len: 2,
            remaining: 0
        })
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        legume_core::codec::encode_bounded(&vec![Marker; 2], 5, &mut Writer::new(&mut buf)),
        Err(EncodeError::TooLong { len: 2, max: 0 })
    );
    // Empty sequences and fixed arrays of them are unaffected.
    assert_eq!(to_vec(&Vec::<()>::new()), Ok(vec![0]));
    assert_eq!(from_bytes::<Vec<()>>(&[0]), Ok(vec![]));
    assert_eq!(to_vec(&[Marker, Marker]), Ok(vec![]));
    assert_eq!(from_bytes::<[Marker; 2]>(&[]), Ok([Marker, Marker]));
    assert_eq!(from_bytes::<Vec<[(); 0]>>(&[0]), Ok(vec![]));
}

#[test]
fn empty_input_is_unexpected_end() {
    let end = Some(DecodeError::UnexpectedEnd {
        needed: 1,
        remaining: 0,
    });
    assert_eq!(factory().decode(&[]).err(), end);
    assert_eq!(Snapshot::decode_message(&[]).err(), end);
    assert_eq!(AnyMsg::decode_message(&[]).err(), end);
    assert_eq!(Goodbye::decode_message(&[42]), Ok(Goodbye));
}

// ---------------------------------------------------------------------------
// 3. `max_len` and `fixed`.
// ---------------------------------------------------------------------------

/// A valid snapshot whose `scores` field (the last) is empty.
fn snapshot_without_scores() -> Snapshot {
    Snapshot {
        tick: 9,
        player: "ann".into(),
        stats: Stats {
            hp: 100,
            name: "Ann".into(),
            pos: (-1, 1),
            tags: vec![1, 2],
            ratio: 0.5,
            title: "Knight".into(),
        },
        backup: None,
        actions: vec![Action::Idle],
        scores: Vec::new(),
    }
}

fn varint(n: u32) -> Vec<u8> {
    let mut buf = [0u8; MAX_VARINT_LEN];
    let mut w = Writer::new(&mut buf);
    write_varint(&mut w, n).unwrap();
    w.written().to_vec()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn max_len_vec_refused_on_encode(extra in vec(any::<u32>(), 6..40)) {
        let msg = Snapshot { scores: extra.clone(), ..snapshot_without_scores() };
        let too_long = Some(EncodeError::TooLong { len: extra.len(), max: 5 });
        prop_assert_eq!(msg.to_bytes().err(), too_long.clone());
        let mut buf = vec![0u8; 4096];
        prop_assert_eq!(msg.encode_message(&mut buf).err(), too_long.clone());
        prop_assert_eq!(to_vec(&msg).err(), too_long);
        // The same vector is fine where it is not capped.
        check_eq(&extra)?;
    }

    #[test]
    fn max_len_string_refused_on_encode(title in text().prop_filter("over 20 bytes", |s| s.len() > 20)) {
        let stats = Stats { title: title.clone(), ..snapshot_without_scores().stats };
        prop_assert_eq!(to_vec(&stats), Err(EncodeError::TooLong { len: title.len(), max: 20 }));
        let cmd = Command::Broadcast(vec![String::new(); 4]);
        prop_assert_eq!(cmd.to_bytes(), Err(EncodeError::TooLong { len: 4, max: 3 }));
    }

    #[test]
    fn fixed_string_refused_on_encode(player in text().prop_filter("over 12 bytes", |s| s.len() > 12)) {
        let msg = Snapshot { player: player.clone(), ..snapshot_without_scores() };
        prop_assert_eq!(msg.to_bytes(), Err(EncodeError::TooLong { len: player.len(), max: 12 }));
        let cmd = Command::Rename { name: player.clone() };
        prop_assert_eq!(cmd.to_bytes(), Err(EncodeError::TooLong { len: player.len(), max: 8 }));
    }

    #[test]
    fn fixed_string_refuses_nul(
        (head, tail) in (fixed_text(5), fixed_text(6)),
    ) {
        let player = format!("{head}\0{tail}");
        let msg = Snapshot { player, ..snapshot_without_scores() };
        prop_assert_eq!(msg.to_bytes(), Err(EncodeError::NulInFixedString));
    }

    #[test]
    fn fixed_string_at_the_limit(player in fixed_text(12)) {
        let msg = Snapshot { player, ..snapshot_without_scores() };
        check_message(&msg, &factory())?;
    }

    /// A prefix over the cap fails with TooLong before the body is read:
    /// there is no body at all, and a body-reading decoder would report the
    /// shortfall instead.
    #[test]
    fn max_len_vec_refused_before_body(n in prop_oneof![6u32..200, any::<u32>().prop_filter("> 5", |&n| n > 5)]) {
        let mut bytes = snapshot_without_scores().to_bytes().unwrap();
        prop_assert_eq!(bytes.pop(), Some(0));
        bytes.extend(varint(n));
        let too_long = DecodeError::TooLong { len: n as usize, max: 5 };
        prop_assert_eq!(Snapshot::decode_message(&bytes).err(), Some(too_long.clone()));
        prop_assert_eq!(factory().decode(&bytes).err(), Some(too_long.clone()));
        // ... even with a whole body present.
        let body_len = (n as usize).min(64) * 4;
        bytes.extend(std::iter::repeat_n(0u8, body_len));
        prop_assert_eq!(Snapshot::decode_message(&bytes).err(), Some(too_long));
    }

    #[test]
    fn max_len_string_refused_before_body(n in 21u16..=u16::MAX) {
        // Stats ends with the capped `title`; hand-build its prefix.
        let mut bytes = to_vec(&Stats { title: String::new(), ..snapshot_without_scores().stats }).unwrap();
        prop_assert_eq!(bytes.split_off(bytes.len() - 2), vec![0, 0]);
        bytes.extend(n.to_be_bytes());
        prop_assert_eq!(
            from_bytes::<Stats>(&bytes).err(),
            Some(DecodeError::TooLong { len: usize::from(n), max: 20 })
        );
    }

    #[test]
    fn max_len_vec_of_strings_refused_before_body(n in 4u32..1000) {
        // Command::Broadcast is variant 3, capped at 3 strings.
        let mut bytes = vec![43, 3];
        bytes.extend(varint(n));
        prop_assert_eq!(
            Command::decode_message(&bytes).err(),
            Some(DecodeError::TooLong { len: n as usize, max: 3 })
        );
    }

    #[test]
    fn within_max_len_decodes(scores in vec(any::<u32>(), 0..=5)) {
        let msg = Snapshot { scores, ..snapshot_without_scores() };
        check_message(&msg, &factory())?;
    }
}

#[test]
fn fixed_string_decoding_drops_nul_bytes() {
    // legume strips every NUL of a fixed-width string, not only the padding.
    let mut bytes = snapshot_without_scores().to_bytes().unwrap();
    bytes[9..21].copy_from_slice(b"a\0b\0c\0\0\0\0\0\0\0");
    let msg = Snapshot::decode_message(&bytes).unwrap();
    assert_eq!(msg.player, "abc");
    // Invalid UTF-8 inside the fixed width is refused.
    bytes[9..21].copy_from_slice(b"\xFFbc\0\0\0\0\0\0\0\0\0");
    assert_eq!(
        Snapshot::decode_message(&bytes),
        Err(DecodeError::InvalidUtf8)
    );
    // A fixed field needs all its bytes even when the text is short.
    let msg = Command::Rename { name: "x".into() };
    let bytes = msg.to_bytes().unwrap();
    assert_eq!(bytes, [43, 2, b'x', 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        Command::decode_message(&bytes[..9]),
        Err(DecodeError::UnexpectedEnd {
            needed: 8,
            remaining: 7
        })
    );
}

// ---------------------------------------------------------------------------
// 4. Allocation bound: huge length prefixes on tiny inputs.
// ---------------------------------------------------------------------------

/// Decodes `bytes` as `T`, asserts the error, and that the decode allocated
/// next to nothing.
fn assert_refused<T: Decode + Debug>(bytes: &[u8], expected: DecodeError) {
    let (result, allocated) = allocated_during(|| from_bytes::<T>(bytes));
    assert_eq!(
        result.err(),
        Some(expected),
        "{}",
        std::any::type_name::<T>()
    );
    assert!(
        allocated <= 256,
        "{} allocated {allocated} bytes on a {}-byte input",
        std::any::type_name::<T>(),
        bytes.len()
    );
}

#[test]
fn string_prefix_of_65535_on_10_bytes() {
    let bytes = [0xFF, 0xFF, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h'];
    assert_refused::<String>(
        &bytes,
        DecodeError::UnexpectedEnd {
            needed: 65_535,
            remaining: 8,
        },
    );
    assert_refused::<Box<String>>(
        &bytes,
        DecodeError::UnexpectedEnd {
            needed: 65_535,
            remaining: 8,
        },
    );
    // Inside a vector of strings, and as the capped field of a struct.
    let mut in_vec = vec![1];
    in_vec.extend_from_slice(&bytes[..9]);
    assert_refused::<Vec<String>>(
        &in_vec,
        DecodeError::UnexpectedEnd {
            needed: 65_535,
            remaining: 7,
        },
    );
}

#[test]
fn vec_prefix_of_65535_on_10_bytes() {
    // 65,535 as a varint is FF FF 03.
    assert_eq!(varint(65_535), [0xFF, 0xFF, 0x03]);
    let bytes = [0xFF, 0xFF, 0x03, 1, 2, 3, 4, 5, 6, 7];
    let overrun = DecodeError::LengthOverrun {
        len: 65_535,
        remaining: 7,
    };
    assert_refused::<Vec<u8>>(&bytes, overrun.clone());
    assert_refused::<Vec<u64>>(&bytes, overrun.clone());
    assert_refused::<Vec<String>>(&bytes, overrun.clone());
    assert_refused::<Vec<Vec<String>>>(&bytes, overrun.clone());
    assert_refused::<Vec<()>>(&bytes, overrun.clone());
    assert_refused::<Vec<[(); 8]>>(&bytes, overrun.clone());
    assert_refused::<Vec<Action>>(&bytes, overrun.clone());
    assert_refused::<Vec<Option<[u32; 4]>>>(&bytes, overrun);
}

#[test]
fn huge_varint_on_10_bytes() {
    // u32::MAX elements announced.
    let bytes = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3, 4, 5];
    let overrun = DecodeError::LengthOverrun {
        len: u32::MAX as usize,
        remaining: 5,
    };
    assert_refused::<Vec<u8>>(&bytes, overrun.clone());
    assert_refused::<Vec<u128>>(&bytes, overrun.clone());
    assert_refused::<Vec<String>>(&bytes, overrun.clone());
    assert_refused::<Vec<()>>(&bytes, overrun.clone());
    assert_refused::<Vec<Stats>>(&bytes, overrun);
    // Nested: one outer element whose inner vector announces 2^28 - 1.
    let nested = [1, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0, 0];
    assert_refused::<Vec<Vec<u64>>>(
        &nested,
        DecodeError::LengthOverrun {
            len: (1 << 28) - 1,
            remaining: 5,
        },
    );
    // Over-long and over-wide varints are refused outright.
    for bad in [
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0][..],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0, 0, 0, 0, 0],
        &[0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        assert_refused::<Vec<u8>>(bad, DecodeError::InvalidVarint);
    }
    // A varint cut short.
    assert_refused::<Vec<u8>>(
        &[0xFF, 0xFF],
        DecodeError::UnexpectedEnd {
            needed: 1,
            remaining: 0,
        },
    );
}

#[test]
fn huge_prefixes_in_messages() {
    // The capped vector refuses on its cap, before the count check.
    let mut bytes = snapshot_without_scores().to_bytes().unwrap();
    bytes.pop();
    bytes.extend([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
    let (result, allocated) = allocated_during(|| Snapshot::decode_message(&bytes));
    assert_eq!(
        result.err(),
        Some(DecodeError::TooLong {
            len: u32::MAX as usize,
            max: 5
        })
    );
    assert!(allocated < 1024, "{allocated}");
    // An uncapped vector of enums in a message: the factory refuses it too.
    let mut bytes = vec![40];
    bytes.extend(0u64.to_be_bytes());
    bytes.extend([0; 12]);
    bytes.extend(to_vec(&snapshot_without_scores().stats).unwrap());
    bytes.push(0); // backup: None
    bytes.extend([0xFF, 0xFF, 0x03]); // 65,535 actions
    bytes.extend([0; 7]);
    let factory = factory();
    let (result, allocated) = allocated_during(|| factory.decode(&bytes));
    assert_eq!(
        result.err(),
        Some(DecodeError::LengthOverrun {
            len: 65_535,
            remaining: 7
        })
    );
    assert!(allocated < 16 * 1024, "{allocated}");
}
