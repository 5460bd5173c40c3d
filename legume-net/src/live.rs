//! Live statistics: a connection's metrics with rates over a sliding window,
//! computed from the cumulative [`Stats`] counters at instants the caller
//! passes in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::event::{ChannelStats, Stats};

/// A connection's metrics as of one instant: the current round-trip time,
/// loss, congestion window, rate estimates and queue lengths, and per-second rates over the
/// last [window](crate::Config::stats_window) (one second by default).
///
/// Get one from [`Client::live_stats`](crate::Client::live_stats),
/// [`Server::live_stats`](crate::Server::live_stats) or
/// [`Server::peer_live_stats`](crate::Server::peer_live_stats) with the UDP
/// driver, or from [`Connection::live_stats`](crate::Connection::live_stats)
/// with the sans-IO core. [`StatsWindow`] computes it from any series of
/// [`Stats`].
///
/// The rates divide the increase of a cumulative counter by the time it
/// took, between the current counters and the recorded sample whose age is
/// closest to the window; [`span`](Self::span) is that time, and is zero
/// (with every rate zero) until a sample older than `now` exists.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct LiveStats {
    /// Smoothed round-trip time in milliseconds.
    pub rtt_ms: f64,
    /// Round-trip time variation in milliseconds (RFC 6298 `rttvar`).
    pub rtt_var_ms: f64,
    /// Packets declared lost over packets sent, recent-weighted (0 to 1).
    pub packet_loss: f64,
    /// UDP payload bytes received per second.
    pub in_bytes_per_s: f64,
    /// UDP payload bytes sent per second.
    pub out_bytes_per_s: f64,
    /// Valid packets received per second.
    pub in_packets_per_s: f64,
    /// Packets sent per second.
    pub out_packets_per_s: f64,
    /// Messages delivered to the app per second.
    pub in_messages_per_s: f64,
    /// Messages accepted by `send` per second.
    pub out_messages_per_s: f64,
    /// Message (or fragment) retransmissions per second.
    pub resends_per_s: f64,
    /// The congestion window in bytes (0 in legume v4 mode, which has none).
    pub congestion_window: usize,
    /// Bytes in flight (sent, neither acked nor lost).
    pub bytes_in_flight: usize,
    /// The estimated bottleneck bandwidth, bytes per second (0 if none).
    pub bandwidth_estimate: u64,
    /// The pacing rate, bytes per second (0 when unpaced).
    pub pacing_rate: u64,
    /// The smallest recent round-trip time in milliseconds.
    pub min_rtt_ms: f64,
    /// Bytes queued to send or sent and awaiting an ack.
    pub out_buffer_bytes: usize,
    /// Reliable messages sent and not yet acked.
    pub pending_acks: usize,
    /// Ordered messages received early, waiting for earlier ones.
    pub reorder_queue: usize,
    /// The time the rates cover (zero when there is no sample to compare with yet).
    pub span: Duration,
    /// Each channel's counters as of now (queued, sent, delivered, dropped
    /// for lifetime, dropped as stale), in id order: the same as
    /// [`Stats::channels`], without rates.
    pub channels: Vec<ChannelStats>,
}

/// The cumulative counters a rate is computed from, and the stretch of
/// time over which they held.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    /// How long past `at` the counters were still these, in microseconds
    /// (saturating): any instant in between is as good a base.
    held_us: u32,
    counters: Counters,
}

/// The cumulative counters of [`Stats`] that rates are computed from.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
struct Counters {
    in_bytes: u64,
    out_bytes: u64,
    in_packets: u64,
    out_packets: u64,
    in_messages: u64,
    out_messages: u64,
    resends: u64,
}

impl Counters {
    fn of(s: &Stats) -> Self {
        Counters {
            in_bytes: s.in_bytes,
            out_bytes: s.out_bytes,
            in_packets: s.in_packets,
            out_packets: s.out_packets,
            in_messages: s.in_messages,
            out_messages: s.out_messages,
            resends: s.resends,
        }
    }
}

impl Sample {
    fn until(&self) -> Instant {
        self.at + Duration::from_micros(u64::from(self.held_us))
    }

    fn hold_until(&mut self, t: Instant) {
        let us = t.saturating_duration_since(self.at).as_micros();
        self.held_us = self.held_us.max(u32::try_from(us).unwrap_or(u32::MAX));
    }
}

/// Samples of cumulative [`Stats`] counters, turned into [`LiveStats`] with
/// rates over a sliding window.
///
/// [`record`](Self::record) keeps a sample at most every tenth of the
/// window, so calling it every frame is cheap. Cumulative counters never go
/// back, so when a sample finds them as the previous one left them, they
/// held all along: the previous sample is stretched rather than a new one
/// kept, and an idle series costs one sample however long it idles.
/// Samples older than what the window needs are dropped; at most
/// [`CAPACITY`](Self::CAPACITY) are kept, allocated as needed. Time comes
/// only from the caller: the same calls give the same numbers. Each
/// [`Connection`](crate::Connection) keeps one, fed as it runs; use this type
/// directly for counters from elsewhere.
///
/// ```
/// use std::time::{Duration, Instant};
/// use legume_net::{Stats, StatsWindow};
///
/// let start = Instant::now();
/// let mut window = StatsWindow::new(Duration::from_secs(1));
/// let mut stats = Stats::default();
/// window.record(start, &stats);
/// stats.out_bytes = 3000;
/// let live = window.live(start + Duration::from_secs(1), &stats);
/// assert_eq!(live.out_bytes_per_s, 3000.0);
/// assert_eq!(live.span, Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
pub struct StatsWindow {
    window: Duration,
    interval: Duration,
    /// Oldest first; only the newest may still be stretched.
    samples: VecDeque<Sample>,
    last: Option<Instant>,
}

impl Default for StatsWindow {
    /// A one-second window.
    fn default() -> Self {
        StatsWindow::new(Duration::from_secs(1))
    }
}

impl StatsWindow {
    /// Samples kept at most (a window needs eleven or twelve).
    pub const CAPACITY: usize = 16;

    /// Rates over `window` (at least 10 ms), sampled every tenth of it.
    pub fn new(window: Duration) -> Self {
        let window = window.max(Duration::from_millis(10));
        StatsWindow {
            window,
            interval: window / 10,
            samples: VecDeque::new(),
            last: None,
        }
    }

    /// The window the rates cover.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The shortest time between two recorded samples (a tenth of the window).
    pub fn sample_interval(&self) -> Duration {
        self.interval
    }

    /// Whether [`record`](Self::record) at `now` would keep a sample.
    pub fn is_due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval)
    }

    /// Keeps `stats`'s counters as of `now` if a sample interval has passed
    /// since the last one kept; returns whether it did.
    pub fn record(&mut self, now: Instant, stats: &Stats) -> bool {
        if !self.is_due(now) {
            return false;
        }
        self.record_held(now, now, stats);
        true
    }

    /// Keeps `stats`'s counters as they held from `since` through `now`
    /// (the caller knows nothing changed them in between), due or not.
    pub(crate) fn record_held(&mut self, since: Instant, now: Instant, stats: &Stats) {
        self.last = Some(now);
        let counters = Counters::of(stats);
        if let Some(newest) = self.samples.back_mut() {
            if newest.counters == counters {
                newest.hold_until(now);
                self.forget_old(now);
                return;
            }
        }
        if self.samples.len() == Self::CAPACITY {
            self.samples.pop_front();
        } else if self.samples.len() == self.samples.capacity() {
            // One at a time: an idle series needs two or three, and the
            // doubling growth would give it four.
            self.samples.reserve_exact(1);
        }
        let mut sample = Sample {
            at: since.min(now),
            held_us: 0,
            counters,
        };
        sample.hold_until(now);
        self.samples.push_back(sample);
        self.forget_old(now);
    }

    /// Drops the samples no later base needs: one whose successor started
    /// a window or more before `now` is no closer to the window's start
    /// than that successor, now and from then on. (When the one ended at
    /// the very instant the successor started, the two tie, and the
    /// successor's counters, the later ones at that instant, are used.)
    fn forget_old(&mut self, now: Instant) {
        let Some(start) = now.checked_sub(self.window) else {
            return;
        };
        while self.samples.len() >= 2 && self.samples[1].at <= start {
            self.samples.pop_front();
        }
        if self.samples.capacity() > 4 * self.samples.len().max(2) {
            self.samples.shrink_to(2 * self.samples.len());
        }
    }

    /// The live statistics at `now`, where `stats` are the counters as of
    /// `now`: gauges from `stats`, rates against the recorded counters whose
    /// age is closest to the window (samples not older than `now` are
    /// skipped).
    pub fn live(&self, now: Instant, stats: &Stats) -> LiveStats {
        self.live_held(now, stats, None)
    }

    /// As [`live`](Self::live), knowing that `stats`'s counters have held
    /// since `held_since`.
    pub(crate) fn live_held(
        &self,
        now: Instant,
        stats: &Stats,
        held_since: Option<Instant>,
    ) -> LiveStats {
        let mut live = LiveStats {
            rtt_ms: stats.latency_ms,
            rtt_var_ms: stats.latency_variation_ms,
            packet_loss: stats.packet_loss,
            congestion_window: stats.congestion_window,
            bytes_in_flight: stats.bytes_in_flight,
            bandwidth_estimate: stats.bandwidth_estimate,
            pacing_rate: stats.pacing_rate,
            min_rtt_ms: stats.min_rtt_ms,
            out_buffer_bytes: stats.out_buffer_bytes,
            pending_acks: stats.pending_acks,
            reorder_queue: stats.reorder_queue,
            channels: stats.channels.clone(),
            ..LiveStats::default()
        };
        let current = Counters::of(stats);
        let Some((at, base)) = self.base(now, current, held_since) else {
            return live;
        };
        let span = now.saturating_duration_since(at);
        let secs = span.as_secs_f64();
        let per_s = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
        live.in_bytes_per_s = per_s(current.in_bytes, base.in_bytes);
        live.out_bytes_per_s = per_s(current.out_bytes, base.out_bytes);
        live.in_packets_per_s = per_s(current.in_packets, base.in_packets);
        live.out_packets_per_s = per_s(current.out_packets, base.out_packets);
        live.in_messages_per_s = per_s(current.in_messages, base.in_messages);
        live.out_messages_per_s = per_s(current.out_messages, base.out_messages);
        live.resends_per_s = per_s(current.resends, base.resends);
        live.span = span;
        live
    }

    /// The instant before `now` whose age is closest to the window (the
    /// older one on a tie) among those whose counters are known, with
    /// them: within each sample's stretch, within the newest one stretched
    /// to `now` when the counters are still its, and since `held_since`.
    fn base(
        &self,
        now: Instant,
        current: Counters,
        held_since: Option<Instant>,
    ) -> Option<(Instant, Counters)> {
        let ideal = now.checked_sub(self.window);
        let newest = self.samples.len().checked_sub(1);
        let stretches = self.samples.iter().enumerate().map(|(i, s)| {
            let until = if Some(i) == newest && s.counters == current {
                now
            } else {
                s.until()
            };
            (s.at, until, s.counters)
        });
        let held = held_since.map(|since| (since.min(now), now, current));
        let distance = |t: Instant| now.saturating_duration_since(t).abs_diff(self.window);
        stretches
            .chain(held)
            .filter_map(|(from, until, counters)| {
                let t = ideal.map_or(from, |ideal| ideal.clamp(from, until.max(from)));
                (t < now).then_some((t, counters))
            })
            .min_by(|a, b| distance(a.0).cmp(&distance(b.0)).then(a.0.cmp(&b.0)))
    }

    /// Samples held and allocated (for the tests of what an idle
    /// connection holds).
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> (usize, usize) {
        (self.samples.len(), self.samples.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Counters that grow at fixed rates (whole counts every millisecond,
    /// so no rounding): 1000 B/s in, 2000 B/s out, 3000 and 4000 packets/s,
    /// 5000 and 6000 messages/s, 1000 resends/s.
    fn stats_at(t: Duration) -> Stats {
        let ms = t.as_millis() as u64;
        Stats {
            in_bytes: ms,
            out_bytes: 2 * ms,
            in_packets: 3 * ms,
            out_packets: 4 * ms,
            in_messages: 5 * ms,
            out_messages: 6 * ms,
            resends: ms,
            latency_ms: 42.0,
            congestion_window: 22_400,
            out_buffer_bytes: 7,
            ..Stats::default()
        }
    }

    #[test]
    fn no_rates_before_a_second_sample() {
        let t0 = Instant::now();
        let mut w = StatsWindow::default();
        let live = w.live(t0, &stats_at(ms(0)));
        assert_eq!(live.span, Duration::ZERO);
        assert_eq!(live.rtt_ms, 42.0);
        assert_eq!(live.congestion_window, 22_400);
        assert!(w.record(t0, &stats_at(ms(0))));
        // A sample at `now` itself is no base.
        let live = w.live(t0, &stats_at(ms(0)));
        assert_eq!((live.span, live.out_bytes_per_s), (Duration::ZERO, 0.0));
    }

    #[test]
    fn steady_rates_over_the_window() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(Duration::from_secs(1));
        // Updates every 16 ms for 5 s: a sample is kept every 100 ms or so.
        let mut kept = 0;
        for i in 0..=312u64 {
            let t = ms(i * 16);
            kept += u32::from(w.record(t0 + t, &stats_at(t)));
        }
        // Kept at 0, 112, 224, ... 4928 ms: every seventh update.
        assert_eq!(kept, 45);
        let t = ms(312 * 16);
        let live = w.live(t0 + t, &stats_at(t));
        // The sample closest to one second old is 960 ms old.
        assert_eq!(live.span, ms(960));
        let close = |x: f64, want: f64| (x - want).abs() < 1e-6 * want;
        assert!(close(live.in_bytes_per_s, 1000.0), "{live:?}");
        assert!(close(live.out_bytes_per_s, 2000.0), "{live:?}");
        assert!(close(live.in_packets_per_s, 3000.0), "{live:?}");
        assert!(close(live.out_packets_per_s, 4000.0), "{live:?}");
        assert!(close(live.in_messages_per_s, 5000.0), "{live:?}");
        assert!(close(live.out_messages_per_s, 6000.0), "{live:?}");
        assert!(close(live.resends_per_s, 1000.0), "{live:?}");
        assert_eq!(live.out_buffer_bytes, 7);
    }

    #[test]
    fn exact_rates_on_sample_boundaries() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(Duration::from_secs(1));
        let mut s = Stats::default();
        for i in 0..=20u64 {
            s.out_bytes = i * 100; // 1000 B/s
            s.in_messages = i * i; // accelerating
            assert!(w.record(t0 + ms(i * 100), &s));
        }
        let live = w.live(t0 + ms(2000), &s);
        assert_eq!(live.span, Duration::from_secs(1));
        assert_eq!(live.out_bytes_per_s, 1000.0);
        // 400 - 100 messages over the last second.
        assert_eq!(live.in_messages_per_s, 300.0);
    }

    #[test]
    fn a_burst_leaves_the_window() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(Duration::from_secs(1));
        let mut s = Stats::default();
        w.record(t0, &s);
        s.in_bytes = 50_000; // all at once, right after the start
        for i in 1..=5u64 {
            w.record(t0 + ms(i * 100), &s);
        }
        let during = w.live(t0 + ms(500), &s);
        assert_eq!(during.span, ms(500));
        assert_eq!(during.in_bytes_per_s, 100_000.0);
        for i in 6..=30u64 {
            w.record(t0 + ms(i * 100), &s);
        }
        // Three seconds on, nothing arrived within the window.
        let after = w.live(t0 + ms(3000), &s);
        assert_eq!(after.span, Duration::from_secs(1));
        assert_eq!(after.in_bytes_per_s, 0.0);
    }

    #[test]
    fn idle_gaps_widen_the_span() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(Duration::from_secs(1));
        let mut s = Stats::default();
        w.record(t0, &s);
        s.out_messages = 30;
        // Nothing recorded for 3 s (no traffic, no timers): the rate covers
        // all of it rather than pretending to cover one second.
        let live = w.live(t0 + ms(3000), &s);
        assert_eq!(live.span, ms(3000));
        assert_eq!(live.out_messages_per_s, 10.0);
    }

    #[test]
    fn samples_are_kept_at_most_every_tenth_of_the_window() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(ms(500));
        assert_eq!(w.sample_interval(), ms(50));
        assert!(w.record(t0, &Stats::default()));
        assert!(!w.is_due(t0 + ms(49)));
        assert!(!w.record(t0 + ms(49), &Stats::default()));
        assert!(w.record(t0 + ms(50), &Stats::default()));
        // The ring overwrites its oldest samples: after many, the base is
        // still about one window old.
        let mut s = Stats::default();
        for i in 2..200u64 {
            s.in_bytes = i * 10;
            w.record(t0 + ms(i * 50), &s);
        }
        let live = w.live(t0 + ms(199 * 50), &s);
        assert_eq!(live.span, ms(500));
        assert_eq!(live.in_bytes_per_s, 200.0);
    }

    #[test]
    fn unchanged_counters_stretch_one_sample() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(Duration::from_secs(1));
        let mut s = Stats::default();
        w.record(t0, &s);
        s.in_bytes = 4000;
        w.record(t0 + ms(500), &s);
        // An hour of the same counters, recorded now and then: one sample.
        for i in 1..=3600u64 {
            assert!(w.record(t0 + ms(500 + i * 1000), &s));
        }
        assert_eq!(w.footprint().0, 1);
        let now = t0 + ms(500 + 3600 * 1000);
        let live = w.live(now, &s);
        assert_eq!(
            (live.span, live.in_bytes_per_s),
            (Duration::from_secs(1), 0.0)
        );
        // Unrecorded idling: the counters as the newest sample left them
        // held until now, so the base is exactly a window old.
        let later = now + ms(12_345);
        let live = w.live(later, &s);
        assert_eq!(
            (live.span, live.in_bytes_per_s),
            (Duration::from_secs(1), 0.0)
        );
    }

    #[test]
    fn counters_known_to_hold_since_an_instant_give_an_exact_base() {
        let t0 = Instant::now();
        let mut w = StatsWindow::new(Duration::from_secs(1));
        let mut s = Stats::default();
        w.record(t0, &s);
        // 1000 bytes arrived at 5 s; nothing was recorded since t0.
        s.in_bytes = 1000;
        let at = |n: u64| t0 + ms(n);
        let unknown = w.live_held(at(5_500), &s, None);
        assert_eq!(unknown.span, ms(5_500));
        // Held since 5 s, 2 s before now: the base is exactly 1 s back.
        let held = w.live_held(at(7_000), &s, Some(at(5_000)));
        assert_eq!((held.span, held.in_bytes_per_s), (ms(1_000), 0.0));
        // A sample of the counters before the change, held until it.
        w.record_held(t0, at(5_000), &Stats::default());
        let held = w.live_held(at(5_500), &s, Some(at(5_000)));
        assert_eq!((held.span, held.in_bytes_per_s), (ms(1_000), 1000.0));
    }

    #[test]
    fn counters_that_go_back_give_zero_not_garbage() {
        let t0 = Instant::now();
        let mut w = StatsWindow::default();
        let s = Stats {
            in_bytes: 1000,
            ..Stats::default()
        };
        w.record(t0, &s);
        let live = w.live(t0 + ms(1000), &Stats::default());
        assert_eq!(live.in_bytes_per_s, 0.0);
    }
}
