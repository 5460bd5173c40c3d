//! The fuzz runner: seeds, per-case generators, replay hints for a failing
//! case, long runs with their rates, and the `LEGUME_FUZZ_*` environment.

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use legume_net::sim::Rng;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of one case: a function of (seed, case) only.
fn case_rng(seed: u64, case: u64) -> Rng {
    Rng::new(mix(seed ^ mix(case.wrapping_add(0x9E37_79B9_7F4A_7C15))))
}

pub(crate) fn env_u64(name: &str) -> Option<u64> {
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
        "message decode" => "decode::message_decode_long",
        "datagrams" => "datagrams::datagrams_long",
        _ => "sequences::sequences_long",
    }
}

/// Runs cases `0..cases` of `one` (or only `LEGUME_FUZZ_CASE`), each on the
/// generator of (seed, case). `one` may record how far it got in its third
/// argument; a failing case prints that, the seed and how to replay it.
pub(crate) fn for_each_case(
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
pub(crate) fn on_input<R>(what: &str, input: &[u8], f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            eprintln!("{what} panicked on {} bytes: {input:02x?}", input.len());
            resume_unwind(panic)
        }
    }
}

/// An ignored long run: seed and count from the environment, rate printed.
pub(crate) fn long_run<T: fmt::Display>(
    name: &str,
    iters: u64,
    unit: &str,
    target: fn(u64, u64) -> T,
) {
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
pub(crate) fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LEGUME_FUZZ_DEBUG").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::runner::tracing() {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use trace;

pub(crate) fn iters_or(default: u64) -> u64 {
    env_u64("LEGUME_FUZZ_ITERS").unwrap_or(default)
}
