//! Per-second rates from legume's cumulative `Stats` counters, for the
//! client's status line and the server's `--stats` table.
//!
//! `Stats` counts bytes, messages and resends since the connection began;
//! a [`RateMeter`] samples it and reports the increase over the last
//! window (one second by default).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use legume::net::Stats;
//! use legume_game_protocol::rates::RateMeter;
//!
//! let mut meter = RateMeter::default();
//! let start = Instant::now();
//! let mut stats = Stats::default();
//! meter.sample(start, &stats);
//! stats.in_bytes = 3000;
//! let rates = meter.sample(start + Duration::from_secs(2), &stats);
//! assert_eq!(rates.in_bytes_per_s, 1500.0);
//! ```

use std::time::{Duration, Instant};

use legume::net::Stats;

/// Rates over the last completed window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// UDP payload bytes received per second.
    pub in_bytes_per_s: f64,
    /// UDP payload bytes sent per second.
    pub out_bytes_per_s: f64,
    /// Messages delivered per second.
    pub in_msgs_per_s: f64,
    /// Messages sent per second.
    pub out_msgs_per_s: f64,
    /// Resends per second.
    pub resends_per_s: f64,
}

/// Turns cumulative counters into rates over a window.
#[derive(Clone, Debug)]
pub struct RateMeter {
    window: Duration,
    last: Option<(Instant, Stats)>,
    rates: Rates,
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter::new(Duration::from_secs(1))
    }
}

impl RateMeter {
    /// A meter whose rates cover at least `window`.
    pub fn new(window: Duration) -> Self {
        RateMeter {
            window,
            last: None,
            rates: Rates::default(),
        }
    }

    /// Records `stats` as of `now` and returns the rates: recomputed once a
    /// window has passed since the previous recomputation, else the last ones.
    pub fn sample(&mut self, now: Instant, stats: &Stats) -> Rates {
        match &self.last {
            None => self.last = Some((now, stats.clone())),
            Some((then, old)) => {
                let dt = now.saturating_duration_since(*then);
                if dt >= self.window {
                    let secs = dt.as_secs_f64();
                    let per_s = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
                    self.rates = Rates {
                        in_bytes_per_s: per_s(stats.in_bytes, old.in_bytes),
                        out_bytes_per_s: per_s(stats.out_bytes, old.out_bytes),
                        in_msgs_per_s: per_s(stats.in_messages, old.in_messages),
                        out_msgs_per_s: per_s(stats.out_messages, old.out_messages),
                        resends_per_s: per_s(stats.resends, old.resends),
                    };
                    self.last = Some((now, stats.clone()));
                }
            }
        }
        self.rates
    }

    /// The last computed rates.
    pub fn rates(&self) -> Rates {
        self.rates
    }
}

/// A byte rate for people: `812 B/s`, `3.4 kB/s`, `1.2 MB/s`.
pub fn human_rate(bytes_per_s: f64) -> String {
    if bytes_per_s < 1000.0 {
        format!("{bytes_per_s:.0} B/s")
    } else if bytes_per_s < 1e6 {
        format!("{:.1} kB/s", bytes_per_s / 1e3)
    } else {
        format!("{:.1} MB/s", bytes_per_s / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_update_once_per_window() {
        let mut meter = RateMeter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let mut s = Stats::default();
        assert_eq!(meter.sample(t0, &s), Rates::default());
        s.out_bytes = 500;
        s.resends = 4;
        // Half a window: unchanged.
        assert_eq!(
            meter.sample(t0 + Duration::from_millis(500), &s),
            Rates::default()
        );
        let r = meter.sample(t0 + Duration::from_secs(2), &s);
        assert_eq!(r.out_bytes_per_s, 250.0);
        assert_eq!(r.resends_per_s, 2.0);
        assert_eq!(meter.rates(), r);
        // Nothing new over the next window: back to zero.
        let r = meter.sample(t0 + Duration::from_secs(3), &s);
        assert_eq!(r.out_bytes_per_s, 0.0);
    }

    #[test]
    fn human_rates() {
        assert_eq!(human_rate(812.0), "812 B/s");
        assert_eq!(human_rate(3400.0), "3.4 kB/s");
        assert_eq!(human_rate(1_234_000.0), "1.2 MB/s");
    }
}
