//! Live statistics: a connection's metrics with rates over a sliding window,
//! computed from the cumulative [`Stats`] counters at instants the caller
//! passes in.

use std::time::{Duration, Instant};

use crate::event::Stats;

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
}

/// The cumulative counters a rate is computed from, as of one instant.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    in_bytes: u64,
    out_bytes: u64,
    in_packets: u64,
    out_packets: u64,
    in_messages: u64,
    out_messages: u64,
    resends: u64,
}

impl Sample {
    fn of(at: Instant, s: &Stats) -> Self {
        Sample {
            at,
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

/// Samples of cumulative [`Stats`] counters in a fixed ring, turned into
/// [`LiveStats`] with rates over a sliding window.
///
/// [`record`](Self::record) keeps a sample at most every tenth of the
/// window (older samples are overwritten; the ring holds
/// [`CAPACITY`](Self::CAPACITY), one and a half windows), so calling it
/// every frame is cheap. Time comes only from the caller: the same calls
/// give the same numbers. Each [`Connection`](crate::Connection) keeps one,
/// fed as it runs; use this type directly for counters from elsewhere.
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
    ring: [Option<Sample>; StatsWindow::CAPACITY],
    /// Where the next sample goes.
    next: usize,
    last: Option<Instant>,
}

impl Default for StatsWindow {
    /// A one-second window.
    fn default() -> Self {
        StatsWindow::new(Duration::from_secs(1))
    }
}

impl StatsWindow {
    /// Samples kept.
    pub const CAPACITY: usize = 16;

    /// Rates over `window` (at least 10 ms), sampled every tenth of it.
    pub fn new(window: Duration) -> Self {
        let window = window.max(Duration::from_millis(10));
        StatsWindow {
            window,
            interval: window / 10,
            ring: [None; Self::CAPACITY],
            next: 0,
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
        self.ring[self.next] = Some(Sample::of(now, stats));
        self.next = (self.next + 1) % Self::CAPACITY;
        self.last = Some(now);
        true
    }

    /// The live statistics at `now`, where `stats` are the counters as of
    /// `now`: gauges from `stats`, rates against the kept sample whose age is
    /// closest to the window (samples not older than `now` are skipped).
    pub fn live(&self, now: Instant, stats: &Stats) -> LiveStats {
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
            ..LiveStats::default()
        };
        let Some(base) = self.base(now) else {
            return live;
        };
        let span = now.saturating_duration_since(base.at);
        let secs = span.as_secs_f64();
        let per_s = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
        live.in_bytes_per_s = per_s(stats.in_bytes, base.in_bytes);
        live.out_bytes_per_s = per_s(stats.out_bytes, base.out_bytes);
        live.in_packets_per_s = per_s(stats.in_packets, base.in_packets);
        live.out_packets_per_s = per_s(stats.out_packets, base.out_packets);
        live.in_messages_per_s = per_s(stats.in_messages, base.in_messages);
        live.out_messages_per_s = per_s(stats.out_messages, base.out_messages);
        live.resends_per_s = per_s(stats.resends, base.resends);
        live.span = span;
        live
    }

    /// The sample older than `now` whose age is closest to the window (the
    /// older one on a tie).
    fn base(&self, now: Instant) -> Option<Sample> {
        let distance = |s: &Sample| now.saturating_duration_since(s.at).abs_diff(self.window);
        self.ring
            .iter()
            .flatten()
            .filter(|s| s.at < now)
            .min_by(|a, b| distance(a).cmp(&distance(b)).then(a.at.cmp(&b.at)))
            .copied()
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
