//! Command-line flags shared by `game-server` and `game-client`: a small
//! strict parser and logging (the helpers every example's `main` uses,
//! from `examples/support/`), the rest of their `main` ([`run_main`]) and
//! the network conditioner's flags.
//!
//! ```
//! use legume_game_protocol::cli::{Args, NetFlags};
//!
//! let args = Args::new(["--loss", "0.1", "--latency-ms", "100", "--bot"]);
//! args.check(&["--loss", "--latency-ms", "--jitter-ms", "--dup"], &["--bot"])?;
//! let net = NetFlags::from_args(&args)?;
//! assert!(args.flag("--bot"));
//! assert_eq!(net.describe(), "loss 10%, latency 100 ms, jitter 0 ms, dup 0%");
//! let config = net.config(1);
//! assert!(config.driver.conditioner.is_some());
//! # Ok::<(), String>(())
//! ```

use std::process::ExitCode;
use std::time::Duration;

use legume::net::sim::Conditioner;
use legume::net::sim::LinkConditions;
use legume::prelude::*;

pub use crate::args::Args;
pub use crate::logging::init_logging;

/// The flags of the network conditioner, as both binaries name them.
pub const NET_FLAGS: [&str; 4] = ["--loss", "--latency-ms", "--jitter-ms", "--dup"];

/// Help text for [`NET_FLAGS`].
pub const NET_USAGE: &str =
    "  --loss P          drop each datagram with probability P (0..1), each direction\n  \
     --latency-ms MS   delay each datagram by MS milliseconds, each direction\n  \
     --jitter-ms MS    add a random 0..MS milliseconds to each delay\n  \
     --dup P           deliver each datagram twice with probability P";

/// The rest of a game binary's `main` once logging is set up: `--help` or
/// `-h` prints `usage()`; otherwise `run` runs, and its error is printed as
/// `program: error` followed by the usage, with exit code 2.
pub fn run_main(
    program: &str,
    args: &Args,
    usage: fn() -> String,
    run: fn(&Args) -> Result<ExitCode, String>,
) -> ExitCode {
    if args.flag("--help") || args.flag("-h") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{program}: {e}\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}

/// Impairments for one endpoint's traffic, applied by legume's network
/// conditioner (`DriverConfig::conditioner`) in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetFlags {
    /// Probability of dropping a datagram (`--loss`).
    pub loss: f64,
    /// One-way delay in milliseconds (`--latency-ms`).
    pub latency_ms: u64,
    /// Extra random delay up to this many milliseconds (`--jitter-ms`).
    pub jitter_ms: u64,
    /// Probability of duplicating a datagram (`--dup`).
    pub dup: f64,
}

impl NetFlags {
    /// Reads [`NET_FLAGS`]; probabilities must be within 0..=1.
    pub fn from_args(args: &Args) -> Result<Self, String> {
        let flags = NetFlags {
            loss: args.value("--loss")?.unwrap_or(0.0),
            latency_ms: args.value("--latency-ms")?.unwrap_or(0),
            jitter_ms: args.value("--jitter-ms")?.unwrap_or(0),
            dup: args.value("--dup")?.unwrap_or(0.0),
        };
        for (name, p) in [("--loss", flags.loss), ("--dup", flags.dup)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be between 0 and 1, not {p}"));
            }
        }
        Ok(flags)
    }

    /// Whether any impairment is set.
    pub fn is_active(&self) -> bool {
        self.loss > 0.0 || self.dup > 0.0 || self.latency_ms > 0 || self.jitter_ms > 0
    }

    /// The conditioner for these flags, seeded with `seed`; `None` when no
    /// impairment is set.
    pub fn conditioner(&self, seed: u64) -> Option<Conditioner> {
        self.is_active().then(|| {
            let link = LinkConditions::perfect()
                .with_loss(self.loss)
                .with_duplicate(self.dup)
                .with_latency(Duration::from_millis(self.latency_ms))
                .with_jitter(Duration::from_millis(self.jitter_ms));
            Conditioner::symmetric(link, seed)
        })
    }

    /// The game's connection config ([`net_config`](crate::net_config):
    /// its protocol id and channels) with these impairments (seeded with
    /// `seed`).
    pub fn config(&self, seed: u64) -> Config {
        Config {
            driver: legume::net::DriverConfig {
                conditioner: self.conditioner(seed),
                ..legume::net::DriverConfig::default()
            },
            ..crate::net_config()
        }
    }

    /// A short description for people, such as
    /// `loss 10%, latency 100 ms, jitter 0 ms, dup 0%`.
    pub fn describe(&self) -> String {
        format!(
            "loss {}%, latency {} ms, jitter {} ms, dup {}%",
            self.loss * 100.0,
            self.latency_ms,
            self.jitter_ms,
            self.dup * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_rejects_unknown_flags_and_missing_values() {
        let args = Args::new(["--port", "1", "--stats", "--bogus"]);
        assert_eq!(
            args.check(&["--port"], &["--stats"]),
            Err("unknown argument \"--bogus\"".into())
        );
        assert_eq!(
            Args::new(["--port"]).check(&["--port"], &[]),
            Err("--port needs a value".into())
        );
        assert_eq!(Args::new(["--port", "1"]).check(&["--port"], &[]), Ok(()));
    }

    #[test]
    fn values_parse_or_name_the_flag() {
        let args = Args::new(["--port", "x", "--seconds", "2.5"]);
        assert_eq!(args.value::<f64>("--seconds"), Ok(Some(2.5)));
        assert_eq!(args.value::<u16>("--missing"), Ok(None));
        assert_eq!(
            args.value::<u16>("--port"),
            Err("--port: cannot parse \"x\"".into())
        );
    }

    #[test]
    fn lenient_lookups_take_what_parses_and_every_repeat() {
        let args = Args::new(["issue", "--server", "a", "--n", "x", "--server", "b"]);
        assert_eq!(args.command(), Some("issue"));
        assert_eq!(args.get::<String>("--server"), Some("a".into()));
        assert_eq!(args.get::<u32>("--n"), None);
        assert_eq!(args.get::<u32>("--missing"), None);
        assert_eq!(args.all("--server"), ["a", "b"]);
        assert_eq!(Args::default().command(), None);
    }

    #[test]
    fn net_flags_build_the_conditioner_only_when_set() {
        let none = NetFlags::from_args(&Args::default()).unwrap();
        assert!(!none.is_active());
        assert_eq!(none.config(1).driver.conditioner, None);
        assert_eq!(none.config(1).protocol_id, crate::PROTOCOL_ID);

        let args = Args::new(["--loss", "0.1", "--latency-ms", "50"]);
        let c = NetFlags::from_args(&args).unwrap().conditioner(9).unwrap();
        assert_eq!(c.seed, 9);
        assert_eq!(c.outgoing, c.incoming);
        assert_eq!(c.outgoing.loss, 0.1);
        assert_eq!(c.outgoing.latency, Duration::from_millis(50));

        assert!(NetFlags::from_args(&Args::new(["--loss", "1.5"])).is_err());
    }
}
