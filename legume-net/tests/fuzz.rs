//! Fuzzing on the stable toolchain: seeded, structure-aware input generators
//! (the simulator's xoshiro [`Rng`], no new dependencies) driving three
//! targets. Every case draws from its own generator, derived from (seed,
//! case), and runs under `catch_unwind`, so a failure prints the seed and
//! case that replay it alone (and the offending input, when a decode or
//! `handle_datagram` panics).
//!
//! 1. **Message decode** ([`target_message_decode`], one input an
//!    iteration): `MessageFactory::decode` on a registered type id and field
//!    bytes: valid encodings of the derived types below (strings, fixed
//!    strings, bounded and nested vectors, options, tuples, arrays, floats,
//!    nested and recursive enums), as they are or mutated (bit flips, edge
//!    bytes and varints, insertions, deletions, truncation, duplicated
//!    regions, splices with another type's encoding, another type id).
//!    Checks: no panic; a valid encoding decodes to its value; an `Ok` value
//!    re-encodes to `message_len` bytes that decode to the same value and
//!    encode to the same bytes, which are the input itself unless a
//!    fixed-width string had NUL bytes inside.
//! 2. **Datagrams** ([`target_datagrams`], one datagram an iteration, 256 an
//!    episode on a new client `Connection` and `ServerEndpoint`, connected
//!    by plain calls; 15% of episodes fuzz the handshake instead): every
//!    packet type with right and wrong lengths; DATA with the live session id
//!    (and wrong ones), sequence numbers near, behind and far ahead of the
//!    receiver's, acks of sent and unsent packets, random ack bits and delays;
//!    frame sequences of every type with absurd lengths (overlong varints,
//!    2^32 - 1), fragment counts 0, 1, 2, 65,535, index ≥ count, message ids
//!    in, behind and past the receive window, truncated frames, unknown
//!    types; whole fragment sets (shuffled, repeated, missing, inconsistent)
//!    and storms of fragments that fill reassembly; mutations and splices of
//!    captured real datagrams; replays; honest traffic and clock steps in
//!    between, up to an hour. Checks: no panic; each datagram moves the
//!    receiving connection's `in_packets + dropped_invalid +
//!    dropped_duplicate` by one (plus one per out-of-window frame, see
//!    [`out_of_window_frames_count_as_datagrams`]) or the endpoint's counters
//!    for an address with no connection; never an unexpected event or state
//!    (connected, or closed with a reason a peer can cause); send and reorder
//!    queues bounded; the thread's peak heap (a counting allocator) bounded
//!    by the reassembly and reorder limits.
//! 3. **Sequences** ([`target_sequences`], one sequence an iteration): a
//!    client and the server exchange unreliable, reliable and ordered
//!    messages (some fragmented) over a seeded lossy, duplicating,
//!    reordering link of the simulator, interleaved with bursts of fuzzed
//!    datagrams injected into both sides and clock jumps (`handle_timeout`
//!    at future instants, from 1 ms to a century). In 70% of sequences the
//!    fuzz cannot pass for a packet of the session (another session id,
//!    invalid frames, replays of delivered datagrams); then the connection
//!    must only ever time out, within a timeout of a clock jump, and the
//!    honest messages must arrive exactly once and in order if it survives,
//!    at most once and in order if not. The other 30% forge the session
//!    (which the unauthenticated protocol allows, `PROTOCOL.md` section 7):
//!    no panic and no unexpected state.
//!
//! # Running
//!
//! `cargo test -p legume-net --test fuzz` runs each target with a fixed
//! seed for about a second in a debug build (the CI run). The long runs are
//! ignored tests named `*_long`:
//!
//! ```text
//! LEGUME_FUZZ_ITERS=2000000 cargo test --release -p legume-net --test fuzz -- --ignored _long --nocapture
//! ```
//!
//! - `LEGUME_FUZZ_ITERS`: iterations of the two decode targets (default
//!   1,000,000 each); target 3 runs one sequence per 200 of them (default
//!   10,000 sequences) unless `LEGUME_FUZZ_SEQUENCES` is set.
//! - `LEGUME_FUZZ_SEED`: the run's seed (default: from the clock; printed).
//! - `LEGUME_FUZZ_CASE`: with a `*_long` test, replay only this case of the
//!   seed.
//! - `LEGUME_FUZZ_DEBUG`: trace the sequence target's steps.
//!
//! Bugs found are kept at the end of this file as regression tests, ignored
//! (and failing) until the library is fixed: `-- --ignored` without the
//! `_long` filter runs them too. Until then the targets allow for two of
//! them: the counters' extra count of out-of-window frames, and (skipped,
//! see [`hits_replay_bug`]) a challenge response replayed at the exact end
//! of its cookie's lifetime.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use legume_core::{AnyMessage, DecodeError, Message, MessageFactory};
use legume_derive::{Codec, Message};
use legume_net::sim::{LinkConditions, Rng};
use legume_net::{
    Config, Connection, Delivery, DisconnectReason, Event, ServerEndpoint, State, Stats,
};
use util::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------
// A per-thread counting allocator: live and peak heap bytes of this thread.
// ---------------------------------------------------------------------------

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn track(delta: i64) {
    // `try_with`: nothing to count during thread teardown.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// wrapper only counts sizes in thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed through.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Heap bytes this thread allocated and has not freed.
fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}

/// Starts a new peak measurement at the current live count.
fn reset_peak() {
    let live = live_bytes();
    PEAK.with(|p| p.set(live));
}

fn peak_bytes() -> i64 {
    PEAK.with(Cell::get)
}

// ---------------------------------------------------------------------------
// The runner: seeds, cases, replay, rates.
// ---------------------------------------------------------------------------

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of one case: a function of (seed, case) only.
fn case_rng(seed: u64, case: u64) -> Rng {
    Rng::new(mix(seed ^ mix(case.wrapping_add(0x9E37_79B9_7F4A_7C15))))
}

fn env_u64(name: &str) -> Option<u64> {
    let s = std::env::var(name).ok()?;
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `LEGUME_FUZZ_SEED`, or one from the clock.
fn chosen_seed() -> u64 {
    env_u64("LEGUME_FUZZ_SEED").unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        mix(t ^ u64::from(std::process::id()))
    })
}

/// The ignored long-run test of each target, for the replay hint.
fn long_test(target: &str) -> &'static str {
    match target {
        "message decode" => "message_decode_long",
        "datagrams" => "datagrams_long",
        _ => "sequences_long",
    }
}

/// Runs cases `0..cases` of `one` (or only `LEGUME_FUZZ_CASE`), each on the
/// generator of (seed, case). `one` may record how far it got in its third
/// argument; a failing case prints that, the seed and how to replay it.
fn for_each_case(
    target: &str,
    seed: u64,
    cases: u64,
    mut one: impl FnMut(u64, &mut Rng, &mut u64),
) {
    let only = env_u64("LEGUME_FUZZ_CASE");
    let range = match only {
        Some(case) => case..case + 1,
        None => 0..cases,
    };
    for case in range {
        let mut rng = case_rng(seed, case);
        let mut step = 0u64;
        let result = catch_unwind(AssertUnwindSafe(|| one(case, &mut rng, &mut step)));
        if let Err(panic) = result {
            eprintln!(
                "\nfuzz {target}: case {case} (step {step}) of seed {seed:#x} failed. Replay it with\n  \
                 LEGUME_FUZZ_SEED={seed:#x} LEGUME_FUZZ_CASE={case} cargo test -p legume-net \
                 --test fuzz -- --ignored --exact {} --nocapture\n",
                long_test(target)
            );
            resume_unwind(panic);
        }
    }
}

/// Runs `f`; if it panics, prints the input it was given first.
fn on_input<R>(what: &str, input: &[u8], f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            eprintln!("{what} panicked on {} bytes: {input:02x?}", input.len());
            resume_unwind(panic)
        }
    }
}

/// An ignored long run: seed and count from the environment, rate printed.
fn long_run<T: fmt::Display>(name: &str, iters: u64, unit: &str, target: fn(u64, u64) -> T) {
    let seed = chosen_seed();
    if let Some(case) = env_u64("LEGUME_FUZZ_CASE") {
        println!("fuzz {name}: replaying case {case} of seed {seed:#x}");
        println!("  {}", target(seed, iters));
        return;
    }
    println!(
        "fuzz {name}: seed {seed:#x}, {iters} {unit} (LEGUME_FUZZ_SEED={seed:#x} repeats this run)"
    );
    let t0 = Instant::now();
    let tally = target(seed, iters);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "fuzz {name}: {iters} {unit} in {secs:.1} s, {:.0} {unit}/s\n  {tally}",
        iters as f64 / secs.max(1e-9)
    );
}

/// Whether `LEGUME_FUZZ_DEBUG` is set: the sequence target then traces its steps.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LEGUME_FUZZ_DEBUG").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

fn iters_or(default: u64) -> u64 {
    env_u64("LEGUME_FUZZ_ITERS").unwrap_or(default)
}

// ---------------------------------------------------------------------------
// Random values.
// ---------------------------------------------------------------------------

/// Convenience draws on a [`Rng`].
trait Draw {
    fn below(&mut self, n: u64) -> u64;
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T;
    fn byte(&mut self) -> u8;
    fn bytes(&mut self, len: usize) -> Vec<u8>;
    /// Random bytes, between `lo` and `hi` (excluded) of them.
    fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8>;
    /// A number drawn for its edge cases: 0, 1, max, max - 1, or uniform.
    fn edgy(&mut self, max: u64) -> u64;
    fn text(&mut self, max_bytes: usize) -> String;
}

impl Draw for Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.gen_range(0..n)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.fill_bytes(&mut b);
        b
    }

    fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let len = self.gen_range(lo..hi) as usize;
        self.bytes(len)
    }

    fn edgy(&mut self, max: u64) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => 1.min(max),
            2 => max,
            3 => max.saturating_sub(1),
            _ => self.next_u64() & max,
        }
    }

    /// UTF-8 text of at most `max_bytes` bytes, with no NUL: ASCII and 2-,
    /// 3- and 4-byte characters.
    fn text(&mut self, max_bytes: usize) -> String {
        const CHARS: [char; 10] = ['a', 'Z', '0', ' ', '~', '\u{7f}', 'é', 'ß', '€', '🦀'];
        let target = self.below(max_bytes as u64 + 1) as usize;
        let mut s = String::new();
        for _ in 0..target {
            let c = *self.pick(&CHARS);
            if s.len() + c.len_utf8() > target {
                break;
            }
            s.push(c);
        }
        s
    }
}

// ---------------------------------------------------------------------------
// 1. Message decode.
// ---------------------------------------------------------------------------

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
struct Tree {
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
struct Blob {
    data: Vec<u8>,
    #[field(max_len = 300)]
    more: Vec<u8>,
    nested: Vec<Vec<u8>>,
    tuple: (u8, u16, u32, u64, i8, bool),
}

/// The type ids registered in [`fuzz_factory`], the test harness's `Num` included.
const TYPE_IDS: [u8; 8] = [20, 40, 41, 42, 43, 44, 45, 46];

/// The harness's `Num` and the types above.
fn fuzz_factory() -> Arc<MessageFactory> {
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
fn gen_message(rng: &mut Rng) -> Box<dyn AnyMessage> {
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

fn encode(msg: &dyn AnyMessage) -> Vec<u8> {
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
fn mutate(rng: &mut Rng, b: &mut Vec<u8>, donor: &[u8], max_len: usize) {
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

// ---------------------------------------------------------------------------
// Datagram generation, shared by targets 2 and 3.
// ---------------------------------------------------------------------------

const CLIENT: usize = 0;
const SERVER: usize = 1;

const CONNECT_REQUEST: u8 = 0x01;
const CHALLENGE: u8 = 0x02;
const CHALLENGE_RESPONSE: u8 = 0x03;
const ACCEPT: u8 = 0x04;
const REJECT: u8 = 0x05;
const DATA: u8 = 0x06;
const DISCONNECT: u8 = 0x07;

const PING: u8 = 0x01;
const UNRELIABLE: u8 = 0x02;
const RELIABLE_MSG: u8 = 0x03;
const ORDERED_MSG: u8 = 0x04;
const RELIABLE_FRAG: u8 = 0x05;
const ORDERED_FRAG: u8 = 0x06;

fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn prefix(out: &mut Vec<u8>, kind: u8) {
    out.extend_from_slice(&[b'L', b'G', 1, kind]);
}

/// The DATA sequence number of a datagram, if it is one.
fn data_seq(d: &[u8]) -> Option<u16> {
    (d.len() >= 18 && d[..4] == [b'L', b'G', 1, DATA]).then(|| u16::from_be_bytes([d[8], d[9]]))
}

/// What the generator knows of the live connection, and the real datagrams
/// it has seen, by sender.
#[derive(Debug, Default)]
struct Gen {
    session: u32,
    nonce: u64,
    /// Newest DATA sequence number sent by [client, server].
    seq: [u16; 2],
    /// Next message id of each sender's [reliable, ordered] channel, roughly.
    ids: [[u16; 2]; 2],
    /// Datagrams sent, by sender (bounded, replaced at random when full).
    sent: [Vec<Vec<u8>>; 2],
    /// Datagrams delivered, by sender.
    delivered: [Vec<Vec<u8>>; 2],
    /// Fragment frames still to send, by sender.
    pending: [Vec<Vec<u8>>; 2],
    /// The size a DATA packet is filled to, normally (the MTU).
    max_frame: usize,
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
    fn new(session: u32, nonce: u64) -> Self {
        Gen {
            session,
            nonce,
            max_frame: 1400,
            ..Gen::default()
        }
    }

    /// Records a real datagram sent by `from`.
    fn saw_sent(&mut self, rng: &mut Rng, from: usize, d: &[u8]) {
        if let Some(seq) = data_seq(d) {
            if seq_newer(seq, self.seq[from]) {
                self.seq[from] = seq;
            }
        }
        keep(rng, &mut self.sent[from], d);
    }

    fn saw_delivered(&mut self, rng: &mut Rng, from: usize, d: &[u8]) {
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
    fn message(&self, rng: &mut Rng) -> Vec<u8> {
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
    fn length(rng: &mut Rng, out: &mut Vec<u8>, len: usize, honest: bool) {
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
    fn frame(&self, rng: &mut Rng, from: usize, honest: bool) -> Vec<u8> {
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
    fn data(&mut self, rng: &mut Rng, from: usize, session: u32, honest_frames: bool) -> Vec<u8> {
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
    fn mutated(&self, rng: &mut Rng, session: Option<u32>) -> Vec<u8> {
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
    fn datagram(&mut self, rng: &mut Rng, from: usize, live: f64) -> Vec<u8> {
        let session = if rng.chance(live) {
            self.session
        } else {
            self.wrong_session(rng)
        };
        match rng.below(20) {
            0 => rng.bytes_in(0, 1500),
            1 => {
                let mut d = b"LG".to_vec();
                d.push(if rng.chance(0.8) { 1 } else { rng.byte() });
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
    fn saw_fuzzed(&mut self, from: usize, d: &[u8]) {
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
    fn harmless(&mut self, rng: &mut Rng, from: usize) -> Vec<u8> {
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
                    && d[..3] == [b'L', b'G', 1]
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

/// Valid packets plus dropped ones: every datagram a connection is handed
/// moves this by one, and (see [`out_of_window_frames_count_as_datagrams`])
/// by one more for each frame of an accepted packet whose message id is
/// outside the receive window.
fn accounted(s: &Stats) -> u64 {
    s.in_packets + s.dropped_invalid + s.dropped_duplicate
}

/// The frames of a well-formed DATA packet that carry a message id
/// (RELIABLE, ORDERED and fragments): each may be dropped as out of window
/// and counted in `dropped_invalid`. Zero for anything else, which is
/// dropped or taken whole.
fn id_frames(d: &[u8]) -> u64 {
    fn varint(r: &mut &[u8]) -> Option<usize> {
        let mut v = 0u32;
        for i in 0..5 {
            let (&b, rest) = r.split_first()?;
            *r = rest;
            let group = u32::from(b & 0x7F);
            if i == 4 && group > 0x0F {
                return None;
            }
            v |= group << (7 * i);
            if b & 0x80 == 0 {
                return (i == 0 || group != 0).then_some(v as usize);
            }
        }
        None
    }
    fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        (r.len() >= n).then(|| {
            let (head, rest) = r.split_at(n);
            *r = rest;
            head
        })
    }
    fn frames(mut r: &[u8]) -> Option<u64> {
        let mut n = 0;
        while let Some((&kind, rest)) = r.split_first() {
            r = rest;
            match kind {
                PING => {}
                UNRELIABLE => {
                    let len = varint(&mut r)?;
                    take(&mut r, len)?;
                }
                RELIABLE_MSG | ORDERED_MSG => {
                    take(&mut r, 2)?;
                    let len = varint(&mut r)?;
                    take(&mut r, len)?;
                    n += 1;
                }
                RELIABLE_FRAG | ORDERED_FRAG => {
                    let h = take(&mut r, 6)?;
                    let index = u16::from_be_bytes([h[2], h[3]]);
                    let count = u16::from_be_bytes([h[4], h[5]]);
                    let len = varint(&mut r)?;
                    take(&mut r, len)?;
                    if count < 2 || index >= count || len == 0 {
                        return None;
                    }
                    n += 1;
                }
                _ => return None,
            }
        }
        Some(n)
    }
    if data_seq(d).is_none() {
        return 0;
    }
    frames(&d[18..]).unwrap_or(0)
}

/// Checks that handing `d` to a connection moved its counters as it should.
fn check_counted(who: &str, before: u64, after: u64, d: &[u8]) {
    let extra = id_frames(d);
    assert!(
        after > before && after - before <= 1 + extra,
        "{who}: a datagram moved the counters by {} (at most {} out-of-window frames): {d:02x?}",
        after as i64 - before as i64,
        extra
    );
}

/// What the endpoint counts for datagrams from addresses with no connection.
fn endpoint_counted(s: &legume_net::EndpointStats) -> u64 {
    s.dropped_invalid
        + s.bad_cookies
        + s.challenges_sent
        + s.accepted
        + s.rejected
        + s.replayed
        + s.rate_limited
}

/// Whether the endpoint answers `d` itself from the connected address: a
/// CHALLENGE_RESPONSE with the connection's nonce (a lost ACCEPT's
/// retransmission) gets the ACCEPT again and reaches no connection.
fn is_response_for(d: &[u8], nonce: u64) -> bool {
    d.len() == 300
        && d[..4] == [b'L', b'G', 1, CHALLENGE_RESPONSE]
        && d[12..20] == nonce.to_be_bytes()
}

/// Whether `d`, handed to a server endpoint whose clock started at `epoch`
/// from an address with no connection, is a CHALLENGE_RESPONSE replayed
/// exactly `lifetime` after its challenge was issued: it reopens a closed
/// connection ([`a_replayed_response_at_the_cookie_lifetime_opens_nothing`]).
/// The fuzz targets skip such datagrams so that they go on finding other
/// things; remove this once that bug is fixed.
fn hits_replay_bug(d: &[u8], now: Instant, epoch: Instant, lifetime: Duration) -> bool {
    if d.len() != 300 || d[..4] != [b'L', b'G', 1, CHALLENGE_RESPONSE] {
        return false;
    }
    let issued_at = u64::from_be_bytes(d[20..28].try_into().expect("8 bytes"));
    let now_ms = now.saturating_duration_since(epoch).as_millis();
    issued_at.checked_add(lifetime.as_millis() as u64) == Some(now_ms as u64)
}

fn stranger(rng: &mut Rng) -> SocketAddr {
    SocketAddr::from(([10, 9, 0, rng.below(4) as u8], 6000 + rng.below(3) as u16))
}

/// How a connection that was connected may have ended.
#[derive(Clone, Debug, Default, PartialEq)]
struct Ending {
    reason: Option<DisconnectReason>,
}

impl Ending {
    /// Records an event of a connection that has completed its handshake.
    fn on_event(&mut self, who: &str, e: &Event) {
        match e {
            Event::Message(_) | Event::Error(_) => {}
            Event::Disconnected(reason) => {
                assert!(
                    self.reason.is_none(),
                    "{who}: a second Disconnected ({reason:?} after {:?})",
                    self.reason
                );
                assert!(
                    matches!(
                        reason,
                        DisconnectReason::Remote(_)
                            | DisconnectReason::TimedOut
                            | DisconnectReason::LimitExceeded(_)
                    ),
                    "{who}: closed by a fuzzed datagram with {reason:?}"
                );
                self.reason = Some(reason.clone());
            }
            other => panic!("{who}: unexpected event {other:?} after the handshake"),
        }
    }

    /// Checks that the state agrees with the events seen.
    fn check_state(&self, who: &str, state: State) {
        match (&self.reason, state) {
            (None, State::Connected) => {}
            (Some(r), State::Errored) if r.is_error() => {}
            (Some(r), State::Disconnected) if !r.is_error() => {}
            (r, s) => panic!("{who}: state {s:?} after {r:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Datagrams into a client Connection and a ServerEndpoint.
// ---------------------------------------------------------------------------

/// Datagrams per episode: one connected pair takes this many.
const EPISODE: u64 = 256;

/// A client connected to a server endpoint by plain function calls.
struct Pair {
    now: Instant,
    /// When the server endpoint's clock started.
    epoch: Instant,
    config: Config,
    server: ServerEndpoint,
    client: Connection,
    peer: SocketAddr,
    buf: Vec<u8>,
    gen: Gen,
    client_end: Ending,
    server_end: Ending,
    /// Bytes of messages each side queued: [client, server].
    queued: [usize; 2],
    /// Whether events are checked (after the warm-up).
    checking: bool,
    /// Messages and message errors delivered on both sides while checking.
    messages: u64,
    errors: u64,
    /// Datagrams not fed because they would hit a known bug.
    skipped: u64,
}

impl Pair {
    /// Connects, then runs a warm-up exchange, capturing every datagram.
    fn new(rng: &mut Rng, config: Config) -> Pair {
        let factory = fuzz_factory();
        let now = Instant::now();
        let server = ServerEndpoint::with_insecure_seed(
            config.clone(),
            Arc::clone(&factory),
            now,
            rng.next_u64(),
        );
        let client = Connection::connect(config.clone(), factory, now, rng.next_u64());
        let mut p = Pair {
            now,
            epoch: now,
            server,
            peer: SocketAddr::from(([10, 1, 0, 1], 5000)),
            buf: vec![0; 65_536],
            gen: Gen::new(0, client.nonce()),
            client,
            client_end: Ending::default(),
            server_end: Ending::default(),
            queued: [0, 0],
            checking: false,
            messages: 0,
            errors: 0,
            skipped: 0,
            config,
        };
        for _ in 0..8 {
            p.pump(rng, 1.0);
            if p.client.is_connected() {
                break;
            }
            p.advance(100 * MS);
        }
        assert!(p.client.is_connected(), "handshake");
        p.gen.session = p.client.session();
        p.gen.max_frame = p.config.mtu.min(1400);
        // Warm-up: messages both ways, some fragmented, 70% delivered.
        p.send_some(rng, 30);
        for _ in 0..rng.below(6) {
            p.pump(rng, 0.7);
            p.advance(MS * rng.below(30) as u32);
        }
        p.collect_events();
        p.checking = true;
        p
    }

    /// Queues up to `max` honest messages on either side, some fragmented.
    fn send_some(&mut self, rng: &mut Rng, max: u64) {
        for _ in 0..rng.below(max) {
            let pad = if rng.chance(0.1) {
                3000
            } else {
                rng.below(64) as usize
            };
            let m = padded(rng.next_u64() as u32, pad);
            let delivery = *rng.pick(&[Delivery::Reliable, Delivery::ReliableOrdered]);
            let channel = usize::from(delivery == Delivery::ReliableOrdered);
            let to_server = rng.chance(0.5);
            let sent = if to_server {
                self.client.send(&m, delivery)
            } else {
                self.server.send(self.peer, &m, delivery)
            };
            if sent.is_ok() {
                let from = if to_server { CLIENT } else { SERVER };
                self.queued[from] += m.message_len();
                self.gen.ids[from][channel] = self.gen.ids[from][channel].wrapping_add(1);
            }
        }
    }

    /// Sends what both sides have to send, delivering each datagram with
    /// probability `deliver`; collects events.
    fn pump(&mut self, rng: &mut Rng, deliver: f64) {
        for _ in 0..4 {
            let mut moved = 0;
            while let Some(n) = self.client.poll_transmit(self.now, &mut self.buf) {
                moved += 1;
                assert!(moved < 100_000, "the client never stops sending");
                let d = &self.buf[..n];
                self.gen.saw_sent(rng, CLIENT, d);
                if rng.chance(deliver) {
                    self.gen.saw_delivered(rng, CLIENT, d);
                    self.server.handle_datagram(self.now, self.peer, d);
                }
            }
            while let Some((to, n)) = self.server.poll_transmit(self.now, &mut self.buf) {
                moved += 1;
                assert!(moved < 100_000, "the server never stops sending");
                if to != self.peer {
                    continue; // a reply to a stranger
                }
                let d = &self.buf[..n];
                self.gen.saw_sent(rng, SERVER, d);
                if rng.chance(deliver) {
                    self.gen.saw_delivered(rng, SERVER, d);
                    self.client.handle_datagram(self.now, d);
                }
            }
            self.collect_events();
            if moved == 0 {
                break;
            }
        }
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.client.poll_event() {
            if self.checking {
                self.messages += u64::from(matches!(e, Event::Message(_)));
                self.errors += u64::from(matches!(e, Event::Error(_)));
                self.client_end.on_event("client", &e);
            }
        }
        while let Some(e) = self.server.poll_event() {
            assert_eq!(e.peer, self.peer, "an event for another peer: {e:?}");
            if self.checking {
                self.messages += u64::from(matches!(e.event, Event::Message(_)));
                self.errors += u64::from(matches!(e.event, Event::Error(_)));
                self.server_end.on_event("server peer", &e.event);
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.collect_events();
    }

    /// Feeds one datagram to the client and checks it was counted once.
    fn feed_client(&mut self, d: &[u8]) {
        self.gen.saw_fuzzed(SERVER, d);
        let before = accounted(&self.client.stats());
        let now = self.now;
        on_input("client handle_datagram", d, || {
            self.client.handle_datagram(now, d)
        });
        let after = accounted(&self.client.stats());
        check_counted("client", before, after, d);
        self.collect_events();
        self.client_end.check_state("client", self.client.state());
    }

    /// Feeds one datagram to the server from `from` and checks it was counted.
    fn feed_server(&mut self, from: SocketAddr, d: &[u8]) {
        let lifetime = self.config.challenge_lifetime;
        if self.server.peer(from).is_none() && hits_replay_bug(d, self.now, self.epoch, lifetime) {
            self.skipped += 1;
            return;
        }
        if from == self.peer {
            self.gen.saw_fuzzed(CLIENT, d);
        }
        let peer_stats = |s: &ServerEndpoint| s.peer(from).map(|c| accounted(&c.stats()));
        let before = peer_stats(&self.server);
        let endpoint_before = endpoint_counted(&self.server.stats());
        let now = self.now;
        trace!(
            "  to server from {from} (peer {:?}): {d:02x?}",
            before.is_some()
        );
        on_input("server handle_datagram", d, || {
            self.server.handle_datagram(now, from, d)
        });
        match before {
            Some(before) => {
                let after = peer_stats(&self.server).expect("a peer stays until drained");
                if is_response_for(d, self.gen.nonce) {
                    assert_eq!(
                        after, before,
                        "server peer: a retransmitted response reached it"
                    );
                } else {
                    check_counted("server peer", before, after, d);
                }
            }
            None => assert!(
                endpoint_counted(&self.server.stats()) > endpoint_before,
                "server: a datagram from {from} not counted: {d:02x?}"
            ),
        }
        assert!(
            self.server.peer_count() <= 1,
            "a fuzzed datagram opened a connection"
        );
        self.collect_events();
        if let Some(conn) = self.server.peer(self.peer) {
            self.server_end.check_state("server peer", conn.state());
        }
    }
}

/// A configuration for one episode: the defaults, or small limits the
/// fuzzer can reach.
fn episode_config(rng: &mut Rng) -> Config {
    if rng.chance(0.5) {
        return Config::default();
    }
    Config {
        mtu: *rng.pick(&[576, 1200, 1400]),
        max_message_size: 4096,
        max_reassembly_bytes: 8192,
        max_reorder_bytes: 8192,
        ..Config::default()
    }
}

/// What the datagram target saw.
#[derive(Debug, Default)]
struct DatagramTally {
    episodes: u64,
    /// Episodes that fuzz the handshake, and how many of them connected.
    handshakes: u64,
    handshakes_connected: u64,
    datagrams: u64,
    client_valid: u64,
    client_invalid: u64,
    client_duplicate: u64,
    messages: u64,
    message_errors: u64,
    closed: u64,
    /// The largest heap growth of an episode, with default limits and with
    /// 8 KiB reassembly and reorder limits.
    max_heap_growth: i64,
    max_heap_growth_small: i64,
    /// Datagrams not fed because they would hit a known bug.
    skipped: u64,
}

impl fmt::Display for DatagramTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} episodes ({} fuzzing the handshake, {} of them connected), {} datagrams; client: {} valid, {} invalid, {} duplicate; \
             server and client delivered {} messages and {} errors; {} episodes ended \
             closed; largest heap growth {} KiB (default limits), {} KiB (8 KiB limits); \
             {} datagrams skipped (known replay bug)",
            self.episodes,
            self.handshakes,
            self.handshakes_connected,
            self.datagrams,
            self.client_valid,
            self.client_invalid,
            self.client_duplicate,
            self.messages,
            self.message_errors,
            self.closed,
            self.max_heap_growth / 1024,
            self.max_heap_growth_small / 1024,
            self.skipped
        )
    }
}

fn run_episode(rng: &mut Rng, datagrams: u64, at: &mut u64, tally: &mut DatagramTally) {
    let config = episode_config(rng);
    let mut p = Pair::new(rng, config.clone());
    let start_stats = p.client.stats();
    let base = live_bytes();
    reset_peak();
    for i in 0..datagrams {
        *at = i;
        match rng.below(100) {
            0..=1 => p.send_some(rng, 6),
            2..=5 => p.pump(rng, 0.8),
            6..=9 => p.advance(MS * rng.below(50) as u32),
            10 if rng.chance(0.25) => {
                let jump = *rng.pick(&[SEC, 2 * SEC, 5 * SEC, 9 * SEC, 11 * SEC, 3600 * SEC]);
                p.advance(jump);
            }
            _ => {}
        }
        match rng.below(100) {
            0..=44 => {
                let d = p.gen.datagram(rng, SERVER, 0.85);
                p.feed_client(&d);
            }
            45..=89 => {
                let d = p.gen.datagram(rng, CLIENT, 0.85);
                let peer = p.peer;
                p.feed_server(peer, &d);
            }
            _ => {
                let d = p.gen.datagram(rng, CLIENT, 0.5);
                let from = stranger(rng);
                p.feed_server(from, &d);
            }
        }
    }
    p.pump(rng, 1.0);
    // Bounded queues and heap.
    let client = p.client.stats();
    let server = p.server.peer(p.peer).map(Connection::stats);
    for (who, s, queued) in [
        ("client", Some(&client), p.queued[CLIENT]),
        ("server", server.as_ref(), p.queued[SERVER]),
    ] {
        let Some(s) = s else { continue };
        assert!(
            s.out_buffer_bytes <= queued,
            "{who}: {} bytes buffered of {queued} queued",
            s.out_buffer_bytes
        );
        assert!(
            s.reorder_queue <= 1024,
            "{who}: reorder queue {}",
            s.reorder_queue
        );
    }
    let growth = peak_bytes() - base;
    let limits = config.max_reassembly_bytes + config.max_reorder_bytes;
    // Both connections' reassembly and reorder buffers (decoded messages
    // may take more room than their bytes: a 24-byte `Vec` for a 1-byte
    // empty one), plus the captured datagrams (4 pools of 256 datagrams of
    // at most 1,400 bytes), the receive windows' tables and transient copies.
    let bound =
        (2 * (config.max_reassembly_bytes + 24 * config.max_reorder_bytes) + (3 << 20)) as i64;
    assert!(
        growth <= bound,
        "the heap grew by {growth} bytes (limits {limits} per connection)"
    );
    tally.episodes += 1;
    tally.datagrams += datagrams;
    tally.client_valid += client.in_packets - start_stats.in_packets;
    tally.client_invalid += client.dropped_invalid - start_stats.dropped_invalid;
    tally.client_duplicate += client.dropped_duplicate - start_stats.dropped_duplicate;
    tally.messages += p.messages;
    tally.message_errors += p.errors;
    tally.skipped += p.skipped;
    tally.closed += u64::from(!p.client.is_connected());
    if std::env::var_os("LEGUME_FUZZ_DEBUG").is_some() {
        eprintln!(
            "episode: client {:?} server {:?}",
            p.client_end.reason, p.server_end.reason
        );
    }
    if config.max_reorder_bytes < Config::default().max_reorder_bytes {
        tally.max_heap_growth_small = tally.max_heap_growth_small.max(growth);
    } else {
        tally.max_heap_growth = tally.max_heap_growth.max(growth);
    }
}

/// A client's events during its handshake: one ending at most, and only
/// in an order the state machine allows.
#[derive(Debug, Default)]
struct HandshakeWatch {
    connected: bool,
    ended: Option<String>,
}

impl HandshakeWatch {
    fn on_event(&mut self, e: &Event) {
        assert!(self.ended.is_none(), "client: {e:?} after {:?}", self.ended);
        match e {
            Event::Connected => {
                assert!(!self.connected, "client: connected twice");
                self.connected = true;
            }
            Event::Rejected { .. } => {
                assert!(!self.connected, "client: rejected after connecting");
                self.ended = Some(format!("{e:?}"));
            }
            Event::Disconnected(DisconnectReason::ConnectTimedOut) => {
                assert!(!self.connected, "client: connect timeout after connecting");
                self.ended = Some(format!("{e:?}"));
            }
            Event::Disconnected(
                DisconnectReason::Remote(_)
                | DisconnectReason::TimedOut
                | DisconnectReason::LimitExceeded(_),
            ) => {
                assert!(self.connected, "client: {e:?} before connecting");
                self.ended = Some(format!("{e:?}"));
            }
            Event::Message(_) | Event::Error(_) => {
                assert!(self.connected, "client: {e:?} before connecting");
            }
            other => panic!("client: unexpected event {other:?}"),
        }
    }

    fn check_state(&self, state: State) {
        let ok = match state {
            State::Connecting => !self.connected && self.ended.is_none(),
            State::Connected => self.connected && self.ended.is_none(),
            State::Disconnected | State::Errored => self.ended.is_some(),
        };
        assert!(ok, "client: state {state:?} after {self:?}");
    }
}

/// An episode that fuzzes the handshake: datagrams to a connecting client
/// and to the server while the real handshake goes on over a lossy link.
/// The client must end connected, rejected or timed out, never stuck.
fn run_handshake_episode(rng: &mut Rng, datagrams: u64, at: &mut u64, tally: &mut DatagramTally) {
    let config = Config {
        connect_timeout: SEC * (1 + rng.below(10) as u32),
        ..episode_config(rng)
    };
    let factory = fuzz_factory();
    let mut now = Instant::now();
    let deadline = now + config.connect_timeout;
    let epoch = now;
    let lifetime = config.challenge_lifetime;
    let mut server = ServerEndpoint::with_insecure_seed(
        config.clone(),
        Arc::clone(&factory),
        now,
        rng.next_u64(),
    );
    let mut client = Connection::connect(config, factory, now, rng.next_u64());
    let peer = SocketAddr::from(([10, 1, 0, 1], 5000));
    let mut gen = Gen::new(0, client.nonce());
    let mut watch = HandshakeWatch::default();
    let mut buf = vec![0u8; 65_536];
    for i in 0..datagrams {
        *at = i;
        if rng.chance(0.15) {
            now += MS * rng.below(400) as u32;
            client.handle_timeout(now);
            server.handle_timeout(now);
            while let Some(n) = client.poll_transmit(now, &mut buf) {
                gen.saw_sent(rng, CLIENT, &buf[..n]);
                if rng.chance(0.6) {
                    server.handle_datagram(now, peer, &buf[..n]);
                }
            }
            while let Some((to, n)) = server.poll_transmit(now, &mut buf) {
                if to == peer {
                    gen.saw_sent(rng, SERVER, &buf[..n]);
                    if rng.chance(0.6) {
                        client.handle_datagram(now, &buf[..n]);
                    }
                }
            }
            gen.session = client.session();
        }
        let to_client = rng.chance(0.6);
        let d = gen.datagram(rng, if to_client { SERVER } else { CLIENT }, 0.5);
        if to_client {
            let before = accounted(&client.stats());
            on_input("client handle_datagram", &d, || {
                client.handle_datagram(now, &d)
            });
            check_counted("client", before, accounted(&client.stats()), &d);
        } else {
            let from = if rng.chance(0.7) { peer } else { stranger(rng) };
            let before = server.peer(from).map(|c| accounted(&c.stats()));
            if before.is_none() && hits_replay_bug(&d, now, epoch, lifetime) {
                tally.skipped += 1;
                continue;
            }
            let endpoint_before = endpoint_counted(&server.stats());
            on_input("server handle_datagram", &d, || {
                server.handle_datagram(now, from, &d)
            });
            match before {
                Some(before) => {
                    let after = accounted(&server.peer(from).expect("kept").stats());
                    if !is_response_for(&d, gen.nonce) {
                        check_counted("server peer", before, after, &d);
                    }
                }
                None => assert!(
                    endpoint_counted(&server.stats()) > endpoint_before,
                    "server: not counted: {d:02x?}"
                ),
            }
            assert!(
                server.peer_count() <= 1,
                "a fuzzed datagram opened a connection"
            );
            assert!(
                server.peers().all(|(a, _)| a == peer),
                "a stranger got a connection"
            );
        }
        while let Some(e) = client.poll_event() {
            watch.on_event(&e);
        }
        while server.poll_event().is_some() {}
        watch.check_state(client.state());
    }
    // Past the connect timeout the attempt is over, one way or the other.
    now = now.max(deadline + MS);
    client.handle_timeout(now);
    while let Some(e) = client.poll_event() {
        watch.on_event(&e);
    }
    watch.check_state(client.state());
    assert_ne!(
        client.state(),
        State::Connecting,
        "still connecting past the timeout"
    );
    tally.episodes += 1;
    tally.handshakes += 1;
    tally.datagrams += datagrams;
    tally.handshakes_connected += u64::from(watch.connected);
}

/// Target 2: datagrams into a connected client and a server endpoint.
/// `iters` counts datagrams, fed in whole episodes of [`EPISODE`] (so that
/// any case replays alone), each to a new pair.
fn target_datagrams(seed: u64, iters: u64) -> DatagramTally {
    let mut tally = DatagramTally::default();
    let episodes = iters.div_ceil(EPISODE);
    for_each_case("datagrams", seed, episodes, |_, rng, at| {
        if rng.chance(0.15) {
            run_handshake_episode(rng, EPISODE, at, &mut tally);
        } else {
            run_episode(rng, EPISODE, at, &mut tally);
        }
    });
    tally
}

#[test]
fn datagrams() {
    let tally = target_datagrams(0xDA7A_6A3E, 300 * EPISODE);
    println!("{tally}");
    assert!(
        tally.client_valid > 500 && tally.client_invalid > 500 && tally.client_duplicate > 50,
        "{tally}"
    );
    assert!(tally.messages > 100, "{tally}");
}

#[test]
#[ignore = "long fuzz run: LEGUME_FUZZ_ITERS, LEGUME_FUZZ_SEED"]
fn datagrams_long() {
    long_run(
        "datagrams",
        iters_or(1_000_000),
        "datagrams",
        target_datagrams,
    );
}

// ---------------------------------------------------------------------------
// 3. State machine sequences.
// ---------------------------------------------------------------------------

/// The delivery kinds, by the index used in message numbers.
const KINDS: [Delivery; 3] = [
    Delivery::Unreliable,
    Delivery::Reliable,
    Delivery::ReliableOrdered,
];
/// A message's number is `kind * KIND_BASE + i`, `i` counting per kind and direction.
const KIND_BASE: u32 = 1_000_000;

/// Honest messages of one direction: each accepted message's pad length, per kind.
#[derive(Debug, Default)]
struct Sent {
    pads: [Vec<usize>; 3],
    bytes: usize,
}

/// What the sequence target saw.
#[derive(Debug, Default)]
struct SequenceTally {
    sequences: u64,
    forging: u64,
    survived: u64,
    /// Sequences with harmless datagrams only that survived: checked for
    /// exactly-once, in-order delivery.
    checked_complete: u64,
    timed_out: u64,
    other_close: u64,
    injected: u64,
    jumps: u64,
    honest_sent: u64,
    honest_delivered: u64,
}

impl fmt::Display for SequenceTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sequences ({} forging the session): {} survived ({} of them checked for \
             exactly-once delivery), {} timed out, {} closed \
             otherwise; {} datagrams injected, {} clock jumps; {} honest messages sent, {} delivered",
            self.sequences,
            self.forging,
            self.survived,
            self.checked_complete,
            self.timed_out,
            self.other_close,
            self.injected,
            self.jumps,
            self.honest_sent,
            self.honest_delivered
        )
    }
}

/// Checks the honest messages of one direction: never a message that was
/// not sent or arrived corrupted, reliable ones at most once (exactly once
/// with `complete`), ordered ones in order (all of them with `complete`),
/// unreliable ones at most once.
fn check_honest(what: &str, sent: &Sent, got: &[Num], complete: bool) {
    let mut by_kind: [Vec<u32>; 3] = Default::default();
    for m in got {
        let kind = (m.n / KIND_BASE) as usize;
        let i = m.n % KIND_BASE;
        assert!(
            kind < 3 && (i as usize) < sent.pads[kind].len(),
            "{what}: message {} was never sent",
            m.n
        );
        assert!(
            pad_ok(m, sent.pads[kind][i as usize]),
            "{what}: message {} arrived corrupted",
            m.n
        );
        by_kind[kind].push(i);
    }
    let count = |k: usize| sent.pads[k].len() as u32;
    if complete {
        assert_exactly_once(&by_kind[1], count(1), false, what);
        assert_exactly_once(&by_kind[2], count(2), true, what);
    } else {
        let ordered: Vec<u32> = (0..by_kind[2].len() as u32).collect();
        assert_eq!(by_kind[2], ordered, "{what}: ordered messages out of order");
    }
    for (k, v) in by_kind.iter_mut().enumerate() {
        let before = v.len();
        v.sort_unstable();
        v.dedup();
        assert_eq!(before, v.len(), "{what}: kind {k} delivered twice");
    }
}

/// The `Num` an event carries, if it is one.
fn as_num(e: &Event) -> Option<Num> {
    match e {
        Event::Message(m) => m.downcast_ref::<Num>().cloned(),
        _ => None,
    }
}

/// A sequence: honest traffic, fuzz bursts and clock jumps on a World.
struct Sequence {
    w: World,
    c: usize,
    peer: SocketAddr,
    gen: Gen,
    forging: bool,
    /// [to the server, to the client].
    sent: [Sent; 2],
    got: [Vec<Num>; 2],
    client_end: Ending,
    server_end: Ending,
    /// Message errors reported on both sides.
    errors: u64,
    /// Whether [client, server] was seen closed.
    closed: [bool; 2],
    /// When the clock last jumped or a side was seen closed.
    disrupted: Instant,
    tally_injected: u64,
    tally_jumps: u64,
}

impl Sequence {
    fn new(rng: &mut Rng, forging: bool) -> Sequence {
        let link = LinkConditions::perfect()
            .with_loss(rng.gen_f64() * 0.15)
            .with_duplicate(rng.gen_f64() * 0.05)
            .with_latency(MS * rng.below(30) as u32)
            .with_jitter(MS * rng.below(10) as u32)
            .with_reorder(rng.gen_f64() * 0.1);
        let config = Config {
            connect_timeout: 60 * SEC,
            ..Config::default()
        };
        let mut w = World::new(rng.next_u64(), config, link);
        w.tap = Some(Vec::new());
        let c = w.add_client();
        assert!(w.connect_all(60 * SEC), "handshake");
        let peer = w.clients[c].addr;
        let conn = &w.clients[c].conn;
        let gen = Gen::new(conn.session(), conn.nonce());
        let w_now = w.now;
        let mut s = Sequence {
            w,
            c,
            peer,
            gen,
            forging,
            sent: Default::default(),
            got: Default::default(),
            client_end: Ending::default(),
            server_end: Ending::default(),
            errors: 0,
            closed: [false, false],
            disrupted: w_now,
            tally_injected: 0,
            tally_jumps: 0,
        };
        // The handshake's own events.
        s.w.clients[c].events.clear();
        s.w.server_events.clear();
        s.absorb(rng);
        s
    }

    /// Takes the tapped datagrams into the generator, the messages into
    /// the inboxes, and checks new events and states.
    fn absorb(&mut self, rng: &mut Rng) {
        let tapped = self.w.tap.as_mut().map(std::mem::take).unwrap_or_default();
        for t in tapped {
            let from = if t.from == self.peer { CLIENT } else { SERVER };
            if t.delivered {
                self.gen.saw_delivered(rng, from, &t.bytes);
            } else {
                self.gen.saw_sent(rng, from, &t.bytes);
            }
        }
        let (c, peer) = (self.c, self.peer);
        for e in std::mem::take(&mut self.w.clients[c].events) {
            if let Some(m) = as_num(&e) {
                self.got[1].push(m);
                continue;
            }
            self.errors += u64::from(matches!(e, Event::Error(_)));
            self.client_end.on_event("client", &e);
        }
        for e in std::mem::take(&mut self.w.server_events) {
            assert_eq!(e.peer, peer, "an event for another peer: {e:?}");
            if let Some(m) = as_num(&e.event) {
                self.got[0].push(m);
                continue;
            }
            self.errors += u64::from(matches!(e.event, Event::Error(_)));
            self.server_end.on_event("server peer", &e.event);
        }
        self.client_end
            .check_state("client", self.w.clients[c].conn.state());
        if let Some(conn) = self.w.server.peer(peer) {
            self.server_end.check_state("server peer", conn.state());
        }
        if !self.forging {
            let now = self.w.now;
            let timeout = self.w.config.timeout;
            let ends = [("client", &self.client_end), ("server", &self.server_end)];
            for (side, (who, end)) in ends.into_iter().enumerate() {
                let Some(r) = &end.reason else { continue };
                assert_eq!(
                    *r,
                    DisconnectReason::TimedOut,
                    "{who}: harmless datagrams closed it"
                );
                if !self.closed[side] {
                    // Only a clock jump, or the other side's end, starves a
                    // live connection for a whole timeout.
                    self.closed[side] = true;
                    let since = now - self.disrupted;
                    assert!(
                        since <= timeout + SEC,
                        "{who}: timed out {since:?} after the last clock jump or close"
                    );
                    self.disrupted = now;
                }
            }
            assert_eq!(self.errors, 0, "harmless datagrams caused message errors");
        }
    }

    fn send_burst(&mut self, rng: &mut Rng) {
        for _ in 0..1 + rng.below(20) {
            let kind = match rng.below(10) {
                0..=1 => 0,
                2..=5 => 1,
                _ => 2,
            };
            let pad = match rng.below(20) {
                0..=15 => rng.below(64) as usize,
                16..=18 => 100 + rng.below(1200) as usize,
                _ if kind == 0 => 200,
                _ => 1400 + rng.below(3000) as usize,
            };
            let dir = rng.below(2) as usize;
            let n = kind as u32 * KIND_BASE + self.sent[dir].pads[kind].len() as u32;
            let m = padded(n, pad);
            let result = if dir == 0 {
                self.w.clients[self.c].conn.send(&m, KINDS[kind])
            } else {
                self.w.server.send(self.peer, &m, KINDS[kind])
            };
            if result.is_ok() {
                self.sent[dir].pads[kind].push(pad);
                self.sent[dir].bytes += m.message_len();
                if kind > 0 {
                    let from = if dir == 0 { CLIENT } else { SERVER };
                    let ch = kind - 1;
                    self.gen.ids[from][ch] = self.gen.ids[from][ch].wrapping_add(1);
                }
            }
        }
    }

    fn inject_burst(&mut self, rng: &mut Rng) {
        for _ in 0..1 + rng.below(30) {
            self.tally_injected += 1;
            let to_client = rng.chance(0.5);
            let from = if to_client { SERVER } else { CLIENT };
            let d = if self.forging {
                self.gen.datagram(rng, from, 0.85)
            } else {
                self.gen.harmless(rng, from)
            };
            let now = self.w.now;
            trace!(
                "  inject to {}: {d:02x?}",
                if to_client { "client" } else { "server" }
            );
            if to_client {
                let conn = &mut self.w.clients[self.c].conn;
                let before = accounted(&conn.stats());
                on_input("client handle_datagram", &d, || {
                    conn.handle_datagram(now, &d)
                });
                check_counted("client", before, accounted(&conn.stats()), &d);
            } else {
                let addr = if rng.chance(0.85) {
                    self.peer
                } else {
                    stranger(rng)
                };
                let peer_stats = |s: &ServerEndpoint| s.peer(addr).map(|c| accounted(&c.stats()));
                let before = peer_stats(&self.w.server);
                let (epoch, lifetime) = (self.w.start, self.w.config.challenge_lifetime);
                if before.is_none() && hits_replay_bug(&d, now, epoch, lifetime) {
                    continue;
                }
                let endpoint_before = endpoint_counted(&self.w.server.stats());
                let server = &mut self.w.server;
                on_input("server handle_datagram", &d, || {
                    server.handle_datagram(now, addr, &d)
                });
                match before {
                    Some(before) => {
                        let after = peer_stats(&self.w.server).expect("a peer stays until drained");
                        if is_response_for(&d, self.gen.nonce) {
                            assert_eq!(
                                after, before,
                                "server peer: a retransmitted response reached it"
                            );
                        } else {
                            check_counted("server peer", before, after, &d);
                        }
                    }
                    None => assert!(
                        endpoint_counted(&self.w.server.stats()) > endpoint_before,
                        "server: not counted: {d:02x?}"
                    ),
                }
                assert!(
                    self.w.server.peer_count() <= 1,
                    "a fuzzed datagram opened a connection"
                );
            }
            if rng.chance(0.2) {
                self.w.flush();
                self.absorb(rng);
            }
        }
        self.w.flush();
    }

    /// Moves the clock forward and runs both sides' timers at once, due or not.
    fn jump(&mut self, rng: &mut Rng) {
        self.tally_jumps += 1;
        let d = match rng.below(100) {
            0..=49 => MS * (1 + rng.below(100) as u32),
            50..=84 => MS * (100 + rng.below(2900) as u32),
            85..=94 => MS * (3000 + rng.below(6900) as u32),
            95..=98 => SEC * (10 + rng.below(3600) as u32),
            _ => Duration::from_secs(86_400 * (1 + rng.below(36_500))),
        };
        trace!("  jump {d:?}");
        self.w.now += d;
        let now = self.w.now;
        self.disrupted = now;
        self.w.clients[self.c].conn.handle_timeout(now);
        self.w.server.handle_timeout(now);
        self.w.step();
    }

    fn alive(&self) -> bool {
        self.w.clients[self.c].conn.is_connected()
            && self
                .w
                .server
                .peer(self.peer)
                .is_some_and(Connection::is_connected)
    }
}

fn run_sequence(rng: &mut Rng, at: &mut u64, tally: &mut SequenceTally) {
    let forging = rng.chance(0.3);
    let mut s = Sequence::new(rng, forging);
    let steps = 8 + rng.below(32);
    trace!(
        "sequence: forging {forging}, {steps} steps, link {:?}",
        s.w.net.conditions(s.peer, server_addr())
    );
    for step in 0..steps {
        *at = step;
        let t = s.w.elapsed();
        match rng.below(100) {
            0..=29 => s.send_burst(rng),
            30..=59 => {
                let d = MS * rng.below(300) as u32;
                s.w.run_for(d);
            }
            60..=84 => s.inject_burst(rng),
            _ => s.jump(rng),
        }
        s.absorb(rng);
        trace!(
            "step {step} at {t:?} → {:?}: client {:?} {:?}, server {:?}",
            s.w.elapsed(),
            s.w.clients[s.c].conn.state(),
            s.client_end.reason,
            s.w.server
                .peer(s.peer)
                .map(|p| (p.state(), p.stats().in_packets))
        );
    }
    *at = steps;
    if s.alive() {
        // Let the honest exchange finish, with no more fuzz. A clock jump
        // may still time the connection out (a side left with less than a
        // round trip before its idle timeout): stop there.
        let want = [
            s.sent[0].pads[1].len() + s.sent[0].pads[2].len(),
            s.sent[1].pads[1].len() + s.sent[1].pads[2].len(),
        ];
        let (c, peer) = (s.c, s.peer);
        let limit = if forging { 20 * SEC } else { 300 * SEC };
        let reliable = |v: &[Num]| v.iter().filter(|m| m.n >= KIND_BASE).count();
        let mut have = [reliable(&s.got[0]), reliable(&s.got[1])];
        let alive = |w: &World| {
            w.clients[c].conn.is_connected()
                && w.server.peer(peer).is_some_and(Connection::is_connected)
        };
        let got = &mut s.got;
        s.w.run_until(limit, |w| {
            let (a, b) = (w.server_msgs(peer), w.client_msgs(c));
            have[0] += reliable(&a);
            have[1] += reliable(&b);
            got[0].extend(a);
            got[1].extend(b);
            let finished = have[0] >= want[0]
                && have[1] >= want[1]
                && w.clients[c].conn.stats().out_buffer_bytes == 0
                && w.server
                    .peer(peer)
                    .is_some_and(|p| p.stats().out_buffer_bytes == 0);
            finished || !alive(w)
        });
        s.absorb(rng);
        if s.alive() {
            // Stray duplicates still in flight must not deliver anything twice.
            s.w.run_for(2 * SEC);
            s.absorb(rng);
        }
        let finished = have[0] >= want[0] && have[1] >= want[1];
        if !forging && s.alive() {
            assert!(
                finished,
                "the honest exchange did not complete: {}/{} to the server, {}/{} to the client; \
                 client {:?}, server {:?}",
                have[0],
                want[0],
                have[1],
                want[1],
                s.w.clients[c].conn.stats(),
                s.w.server.peer(peer).map(Connection::stats)
            );
        }
    }
    let complete = s.alive();
    if !forging {
        check_honest("client → server", &s.sent[0], &s.got[0], complete);
        check_honest("server → client", &s.sent[1], &s.got[1], complete);
    }
    // Bounded queues: never more than the honest messages queued.
    let client = s.w.clients[s.c].conn.stats();
    let server = s.w.server.peer(s.peer).map(Connection::stats);
    for (who, st, queued) in [
        ("client", Some(&client), s.sent[0].bytes),
        ("server", server.as_ref(), s.sent[1].bytes),
    ] {
        let Some(st) = st else { continue };
        assert!(
            st.out_buffer_bytes <= queued,
            "{who}: {} bytes buffered of {queued} queued",
            st.out_buffer_bytes
        );
        assert!(
            st.reorder_queue <= 1024,
            "{who}: reorder queue {}",
            st.reorder_queue
        );
    }
    tally.sequences += 1;
    tally.forging += u64::from(forging);
    tally.survived += u64::from(complete);
    tally.checked_complete += u64::from(complete && !forging);
    let ends = [&s.client_end.reason, &s.server_end.reason];
    if ends.iter().any(|r| **r == Some(DisconnectReason::TimedOut)) {
        tally.timed_out += 1;
    } else if ends.iter().any(|r| r.is_some()) {
        tally.other_close += 1;
    }
    tally.injected += s.tally_injected;
    tally.jumps += s.tally_jumps;
    tally.honest_sent += s
        .sent
        .iter()
        .flat_map(|d| &d.pads)
        .map(|p| p.len() as u64)
        .sum::<u64>();
    tally.honest_delivered += (s.got[0].len() + s.got[1].len()) as u64;
}

/// Target 3: `iters` sequences of honest traffic, fuzz and clock jumps.
fn target_sequences(seed: u64, iters: u64) -> SequenceTally {
    let mut tally = SequenceTally::default();
    for_each_case("sequences", seed, iters, |_, rng, at| {
        run_sequence(rng, at, &mut tally);
    });
    tally
}

#[test]
fn sequences() {
    let tally = target_sequences(0x5E0_0E4CE, 300);
    println!("{tally}");
    assert!(
        tally.checked_complete >= 100 && tally.forging >= 50,
        "{tally}"
    );
}

#[test]
#[ignore = "long fuzz run: LEGUME_FUZZ_ITERS (/ 200), LEGUME_FUZZ_SEQUENCES, LEGUME_FUZZ_SEED"]
fn sequences_long() {
    let n = env_u64("LEGUME_FUZZ_SEQUENCES")
        .or_else(|| env_u64("LEGUME_FUZZ_ITERS").map(|n| (n / 200).max(1)))
        .unwrap_or(10_000);
    long_run("sequences", n, "sequences", target_sequences);
}

// ---------------------------------------------------------------------------
// Findings, kept as regression tests.
// ---------------------------------------------------------------------------

/// A cookie is valid up to and including `challenge_lifetime` after it was
/// issued (`issued_at <= now_ms && now_ms - issued_at <= lifetime`), but
/// the completed handshake that refuses its replay is forgotten at that
/// very millisecond (`CompletedHandshakes::contains` drops entries whose
/// `issued_at + lifetime <= now_ms`). A CHALLENGE_RESPONSE replayed exactly
/// then, from the client's address, after its connection has closed, opens
/// a new connection: what `PROTOCOL.md` section 7 says an on-path attacker
/// cannot do (it can send a replay every millisecond around the 10 s mark).
/// Found by the datagram target (a replayed response after a DISCONNECT).
#[test]
fn a_replayed_response_at_the_cookie_lifetime_opens_nothing() {
    let t0 = Instant::now();
    let factory = fuzz_factory();
    let mut server =
        ServerEndpoint::with_insecure_seed(Config::default(), Arc::clone(&factory), t0, 1);
    let mut client = Connection::connect(Config::default(), factory, t0, 99);
    let addr = SocketAddr::from(([10, 1, 0, 1], 5000));
    let mut buf = [0u8; 2048];
    let mut response = Vec::new();
    for _ in 0..4 {
        while let Some(n) = client.poll_transmit(t0, &mut buf) {
            if buf[3] == CHALLENGE_RESPONSE {
                response = buf[..n].to_vec();
            }
            server.handle_datagram(t0, addr, &buf[..n]);
        }
        while let Some((_, n)) = server.poll_transmit(t0, &mut buf) {
            client.handle_datagram(t0, &buf[..n]);
        }
    }
    assert!(client.is_connected() && response.len() == 300);
    server.disconnect(addr, "bye");
    while server.poll_transmit(t0, &mut buf).is_some() {}
    assert_eq!(server.peer_count(), 0);
    // The challenge was issued at t0: its cookie is valid until t0 + 10 s inclusive.
    let lifetime = Config::default().challenge_lifetime;
    for at in [lifetime - MS, lifetime] {
        server.handle_datagram(t0 + at, addr, &response);
        assert_eq!(
            server.peer_count(),
            0,
            "the response replayed {at:?} after its challenge opened a connection"
        );
    }
    assert_eq!(server.stats().replayed, 2);
}

/// A frame whose message id is outside the receive window is dropped and
/// counted in `dropped_invalid`, but the packet carrying it is valid (its
/// other frames are delivered, it is acked) and counted in `in_packets`
/// too: one datagram moves `in_packets + dropped_invalid +
/// dropped_duplicate` by two, or by 1 + n for n such frames, so the
/// counters no longer account for datagrams one to one (`dropped_invalid`
/// is documented as datagrams dropped). Found by the datagram target.
#[test]
fn out_of_window_frames_count_as_datagrams() {
    let mut w = World::new(41, Config::default(), LinkConditions::perfect());
    let c = w.add_client();
    assert!(w.connect_all(SEC));
    let session = w.clients[c].conn.session();
    let mut d = vec![b'L', b'G', 1, DATA];
    d.extend(session.to_be_bytes());
    d.extend(500u16.to_be_bytes()); // a sequence number not seen yet
    d.extend(u16::MAX.to_be_bytes()); // acks nothing
    d.extend(0u32.to_be_bytes());
    d.extend(0u16.to_be_bytes());
    d.push(PING);
    // RELIABLE, message id 2000: past the 1024-id window (the next id is 0).
    d.extend([RELIABLE_MSG, 0x07, 0xD0, 1, 20]);
    let before = w.clients[c].conn.stats();
    let now = w.now;
    w.clients[c].conn.handle_datagram(now, &d);
    let after = w.clients[c].conn.stats();
    assert_eq!(after.in_packets, before.in_packets + 1, "a valid packet");
    assert_eq!(
        accounted(&after),
        accounted(&before) + 1,
        "one datagram: in_packets {} → {}, dropped_invalid {} → {}",
        before.in_packets,
        after.in_packets,
        before.dropped_invalid,
        after.dropped_invalid
    );
}

/// A message whose bytes are given verbatim, under `Tree`'s type id: what a
/// hostile peer can send.
#[derive(Debug)]
struct Raw(Vec<u8>);

impl legume_core::Encode for Raw {
    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, w: &mut legume_core::Writer<'_>) -> Result<(), legume_core::EncodeError> {
        w.put_slice(&self.0)
    }
}

impl legume_core::Decode for Raw {
    const MIN_LEN: usize = 0;

    fn decode(r: &mut legume_core::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Raw(r.take(r.remaining())?.to_vec()))
    }
}

impl Message for Raw {
    const TYPE_ID: u8 = Tree::TYPE_ID;
    const NAME: &'static str = "Raw";
}

/// Levels of nesting in [`deep_nesting_child`]: 400 KB, well under the
/// default `max_message_size` of 1 MiB.
const DEPTH: usize = 200_000;

/// Decoding recurses once per level of a recursive field type
/// (`Node::Branch(Vec<Node>)`, two bytes a level) with no depth limit, so
/// one deeply nested message overflows the decoding thread's stack, and a
/// stack overflow aborts the whole process (it is not a panic). Here a
/// client sends the server one reliable message of 400 KB (fragmented,
/// within every limit) and the server process dies; a client's process
/// dies the same way. Any app with a recursive message type is exposed: a
/// release build on a 2 MiB thread stack dies between 2,000 and 5,000
/// levels (a 10 KB message), a debug build near 1,200. Found while adding
/// the recursive `Node` to the message decode target, which keeps its own
/// nesting shallow (at most a few hundred levels) so as not to crash; the
/// crash here runs in a child process (`LEGUME_FUZZ_DEEP_DEPTH` sets the
/// depth).
#[test]
fn deeply_nested_messages_do_not_crash_the_receiver() {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "deep_nesting_child", "--ignored", "--nocapture"])
        .env("LEGUME_FUZZ_DEEP_CHILD", "1")
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "receiving {DEPTH} levels of nesting killed the receiver ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "helper of deeply_nested_messages_do_not_crash_the_receiver (runs in a child process)"]
fn deep_nesting_child() {
    if std::env::var_os("LEGUME_FUZZ_DEEP_CHILD").is_none() {
        return;
    }
    // Tree { root: Branch([Branch([... Leaf(0) ...])]), forest: [] }.
    let depth = env_u64("LEGUME_FUZZ_DEEP_DEPTH").map_or(DEPTH, |d| d as usize);
    let mut fields = Vec::with_capacity(2 * depth + 3);
    for _ in 0..depth {
        fields.extend([1, 1]);
    }
    fields.extend([0, 0, 0]);
    let mut rng = Rng::new(7);
    let mut p = Pair::new(&mut rng, Config::default());
    p.client
        .send(&Raw(fields), Delivery::Reliable)
        .expect("within max_message_size");
    for _ in 0..2_000 {
        p.pump(&mut rng, 1.0);
        p.advance(MS);
        if p.client.stats().out_buffer_bytes == 0 {
            break;
        }
    }
    assert_eq!(p.client.stats().out_buffer_bytes, 0, "delivered");
}

/// `max_reorder_bytes` bounds the *encoded* bytes of the ordered messages
/// waiting for an earlier one, but they wait decoded, and a decoded message
/// can take many times its bytes: an empty `Vec` or `String` is one byte on
/// the wire and 24 bytes of `Vec` in memory. A peer that holds back one
/// ordered message and sends the next 180, each a `Blob` of 1,300 empty
/// vectors (1.3 KB), stays within a 256 KiB limit while the receiver holds
/// about 6 MB, 23 times the limit; with the default 16 MiB limit that is
/// some 380 MB per connection. Keeping the waiting messages as bytes and
/// decoding them when released bounds the memory by the limit (each is
/// charged its length plus 64 bytes of overhead). Found
/// while checking the datagram target's heap bound.
#[test]
fn reorder_buffer_memory_is_bounded_by_its_limit() {
    let mut rng = Rng::new(3);
    let limit = 256 << 10;
    let config = Config {
        max_reorder_bytes: limit,
        ..Config::default()
    };
    let mut p = Pair::new(&mut rng, config);
    let next = p.gen.ids[CLIENT][1];
    let mut seq = p.gen.seq[CLIENT];
    let base = live_bytes();
    for k in 1..=180u16 {
        // Blob { data: [], more: [], nested: [[]; 1300], tuple: zeros }.
        let mut m = vec![Blob::TYPE_ID, 0, 0];
        put_varint(&mut m, 1300);
        m.extend([0u8; 1300 + 17]);
        let mut d = vec![b'L', b'G', 1, DATA];
        d.extend(p.gen.session.to_be_bytes());
        seq = seq.wrapping_add(1);
        d.extend(seq.to_be_bytes());
        d.extend(u16::MAX.to_be_bytes()); // acks nothing
        d.extend([0; 6]);
        // ORDERED, one past the id the receiver waits for.
        d.push(ORDERED_MSG);
        d.extend(next.wrapping_add(k).to_be_bytes());
        put_varint(&mut d, m.len() as u32);
        d.extend(m);
        let (now, peer) = (p.now, p.peer);
        p.server.handle_datagram(now, peer, &d);
    }
    let conn = p.server.peer(p.peer).expect("the peer");
    assert!(conn.is_connected(), "within the limit");
    assert_eq!(conn.stats().reorder_queue, 180);
    let held = live_bytes() - base;
    assert!(
        held <= 2 * limit as i64,
        "180 messages of 1,322 bytes waiting ({} KiB counted against a {} KiB limit) hold {} KiB",
        180 * (1322 + 64) / 1024,
        limit / 1024,
        held / 1024
    );
}
