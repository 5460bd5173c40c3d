//! A program's arguments, looked up by flag: strictly ([`Args::check`],
//! [`Args::value`]) for the game's binaries, leniently ([`Args::get`]) for
//! the single-file examples, which ignore what they do not know.

use std::str::FromStr;

/// A program's arguments (without the program name), looked up by flag.
#[derive(Clone, Debug, Default)]
pub struct Args {
    args: Vec<String>,
}

impl Args {
    /// The given arguments, without the program name.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Args {
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The process's arguments, without the program name.
    pub fn from_env() -> Self {
        Args::new(std::env::args().skip(1))
    }

    /// Checks that every argument is one of `with_value` followed by a value,
    /// or one of `switches`; the error names the first that is not.
    pub fn check(&self, with_value: &[&str], switches: &[&str]) -> Result<(), String> {
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if switches.contains(&a.as_str()) {
                continue;
            }
            if with_value.contains(&a.as_str()) {
                if it.next().is_none() {
                    return Err(format!("{a} needs a value"));
                }
                continue;
            }
            return Err(format!("unknown argument {a:?}"));
        }
        Ok(())
    }

    /// The first argument: the subcommand of `echo server`, `token keygen`.
    pub fn command(&self) -> Option<&str> {
        self.args.first().map(String::as_str)
    }

    /// Whether the switch `name` is present.
    pub fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }

    /// The value after `name`, parsed; `Ok(None)` when the flag is absent,
    /// an error naming the flag when the value does not parse.
    pub fn value<T: FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        let Some(i) = self.args.iter().position(|a| a == name) else {
            return Ok(None);
        };
        let raw = self
            .args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?;
        raw.parse()
            .map(Some)
            .map_err(|_| format!("{name}: cannot parse {raw:?}"))
    }

    /// The value after the first `name`, if there is one and it parses.
    pub fn get<T: FromStr>(&self, name: &str) -> Option<T> {
        self.value(name).ok().flatten()
    }

    /// The value after each `name`, in order (`--server A --server B`).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.args
            .windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].clone())
            .collect()
    }
}
