//! Logging and live statistics for a connection, kept off the per-message
//! hot path: counters are compared at most once per sample interval (a
//! tenth of [`Config::stats_window`](crate::Config::stats_window)), with the
//! time the caller passes in, and summaries go out at most once per
//! [`LOG_INTERVAL`] per peer. The `tracing` macros format nothing unless a
//! subscriber enables their level.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::event::{DisconnectReason, MessageError, Stats};
use crate::live::{LiveStats, StatsWindow};

/// The target of every per-connection event, whichever protocol it speaks.
pub(crate) const CONNECTION: &str = "legume_net::connection";

/// The shortest time between two summaries of one kind for one peer (or,
/// on the server endpoint, for all unknown sources together).
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The interval over which resends are compared with first transmissions.
const STORM_WINDOW: Duration = Duration::from_secs(1);
/// Resends in one storm window, at least, for a warning.
const STORM_MIN_RESENDS: u64 = 20;
/// The share of reliable transmissions that are resends, at least, for a
/// warning (a quarter: at 10% random loss about a tenth are).
const STORM_FRACTION: f64 = 0.25;

/// A peer address in a log field: the address, or `-` when unknown (a
/// sans-IO connection that was not told).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerLabel(pub(crate) Option<SocketAddr>);

impl fmt::Display for PeerLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Logs a completed handshake (info).
pub(crate) fn log_connected(peer: Option<SocketAddr>, session: u32, rtt: Duration) {
    let peer = PeerLabel(peer);
    let rtt_ms = rtt.as_secs_f64() * 1000.0;
    info!(target: CONNECTION, %peer, session, rtt_ms, "connected to {peer}");
}

/// Logs a refusal the server sent (info).
pub(crate) fn log_rejected(peer: Option<SocketAddr>, reason: &str) {
    let peer = PeerLabel(peer);
    info!(target: CONNECTION, %peer, reason, "connection refused by {peer}: {reason}");
}

/// Logs the end of a connection: info when one side closed it, warn for a
/// timeout or a limit the peer made this side pass.
pub(crate) fn log_closed(peer: Option<SocketAddr>, reason: &DisconnectReason, stats: &Stats) {
    let peer = PeerLabel(peer);
    let (sent, received) = (stats.out_bytes, stats.in_bytes);
    match reason {
        DisconnectReason::Local(r) => info!(target: CONNECTION, %peer, reason = r.as_str(),
            sent, received, "disconnecting from {peer}: {r}"),
        DisconnectReason::Remote(r) => info!(target: CONNECTION, %peer, reason = r.as_str(),
            sent, received, "{peer} disconnected: {r}"),
        DisconnectReason::TimedOut => warn!(target: CONNECTION, %peer, reason = "timed out",
            sent, received, "connection to {peer} timed out: nothing received"),
        DisconnectReason::ConnectTimedOut => warn!(target: CONNECTION, %peer,
            reason = "handshake timed out", sent, received,
            "connecting to {peer} timed out: no answer to the handshake"),
        DisconnectReason::LimitExceeded(limit) => warn!(target: CONNECTION, %peer,
            reason = "limit exceeded", limit = limit.as_str(), sent, received,
            "closing the connection to {peer}: it made this side pass {limit}"),
        DisconnectReason::InvalidConfig(e) => warn!(target: CONNECTION, %peer,
            reason = "invalid config", error = %e, "not connecting to {peer}: invalid config: {e}"),
    }
}

/// Turns a cumulative counter into summaries at most once per
/// [`LOG_INTERVAL`]: the first increase is reported at once, later ones
/// together, with the first call after the interval.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    reported: u64,
    last_at: Option<Instant>,
}

impl Tally {
    /// When `total` grew and the interval since the last report has passed:
    /// the increase and the time since the last report (`since` for the
    /// first one). Marks it reported.
    pub(crate) fn due(&mut self, now: Instant, since: Instant, total: u64) -> Option<(u64, f64)> {
        if total <= self.reported {
            return None;
        }
        if self
            .last_at
            .is_some_and(|t| now.saturating_duration_since(t) < LOG_INTERVAL)
        {
            return None;
        }
        let n = total - self.reported;
        let over = now
            .saturating_duration_since(self.last_at.unwrap_or(since))
            .as_secs_f64();
        self.reported = total;
        self.last_at = Some(now);
        Some((n, over))
    }
}

/// Lets up to `burst` events of one kind through per [`LOG_INTERVAL`] and
/// counts the rest, for events that are logged one by one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Gate {
    window_end: Option<Instant>,
    passed: u32,
    suppressed: u64,
}

impl Gate {
    /// `Some(suppressed)` when an event may be logged at `now`, with the
    /// number held back since the last one that was; `None` when it is held back.
    pub(crate) fn allow(&mut self, now: Instant, burst: u32) -> Option<u64> {
        if self.window_end.is_none_or(|end| now >= end) {
            self.window_end = Some(now + LOG_INTERVAL);
            self.passed = 0;
        }
        if self.passed >= burst {
            self.suppressed += 1;
            return None;
        }
        self.passed += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Received messages dropped, by cause (each becomes an `Event::Error`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    /// Reassembly would have passed `max_reassembly_bytes`.
    pub(crate) reassembly_full: u64,
    /// A fragmented message was over `max_message_size`.
    pub(crate) too_large: u64,
    /// The bytes did not decode.
    pub(crate) undecodable: u64,
    /// Fragments of one message disagreed.
    pub(crate) bad_fragments: u64,
}

impl Faults {
    /// Counts one dropped message.
    pub(crate) fn count(&mut self, e: &MessageError) {
        match e {
            MessageError::ReassemblyFull => self.reassembly_full += 1,
            MessageError::TooLarge => self.too_large += 1,
            MessageError::Decode(_) => self.undecodable += 1,
            MessageError::BadFragment => self.bad_fragments += 1,
        }
    }
}

/// What an engine counts for the observer beyond its [`Stats`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EngineCounters {
    /// Reliable messages or fragments sent for the first time.
    pub(crate) first_sends: u64,
    /// Received messages dropped.
    pub(crate) faults: Faults,
}

/// One connection's live statistics and periodic log summaries.
#[derive(Clone, Debug)]
pub(crate) struct Observer {
    peer: Option<SocketAddr>,
    started: Instant,
    next_tick: Instant,
    window: StatsWindow,
    /// Since when the counters have been what they are now: the time of the
    /// latest input or output that may have changed them.
    held_since: Instant,
    /// Messages queued by `send` (which has no time) since the latest
    /// timed call: counted in `Stats::out_messages` already, but not yet
    /// placed in time.
    untimed_sends: u64,
    /// `send` calls refused with `QueueFull`.
    pub(crate) queue_full: u64,
    invalid: Tally,
    frames: Tally,
    refused: Tally,
    over_limit: Tally,
    undecodable: Tally,
    storm_start: Instant,
    storm_base: (u64, u64),
    storms: Gate,
}

impl Observer {
    /// An observer of a connection created at `now`, with rates over `window`.
    pub(crate) fn new(now: Instant, window: Duration) -> Self {
        let mut window = StatsWindow::new(window);
        window.record(now, &Stats::default());
        Observer {
            peer: None,
            started: now,
            next_tick: now + window.sample_interval(),
            window,
            held_since: now,
            untimed_sends: 0,
            queue_full: 0,
            invalid: Tally::default(),
            frames: Tally::default(),
            refused: Tally::default(),
            over_limit: Tally::default(),
            undecodable: Tally::default(),
            storm_start: now,
            storm_base: (0, 0),
            storms: Gate::default(),
        }
    }

    /// Stats samples held and allocated (for the idle-footprint test).
    #[cfg(test)]
    pub(crate) fn samples(&self) -> (usize, usize) {
        self.window.footprint()
    }

    /// The peer's address, for log fields.
    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    pub(crate) fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = Some(peer);
    }

    /// Whether [`tick`](Self::tick) has work at `now` (one comparison: the
    /// only cost on the per-datagram path).
    #[inline]
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        now >= self.next_tick
    }

    /// The live statistics at `now` for the counters `stats`.
    pub(crate) fn live(&self, now: Instant, stats: &Stats) -> LiveStats {
        // After an untimed send the counters changed at some unknown time.
        let held = (self.untimed_sends == 0).then_some(self.held_since);
        self.window.live_held(now, stats, held)
    }

    /// A message was queued (by `send`, which has no time).
    pub(crate) fn on_untimed_send(&mut self) {
        self.untimed_sends += 1;
    }

    /// Before a timed call at `now`: sends since the previous one are
    /// placed at `now`.
    pub(crate) fn on_timed_call(&mut self, now: Instant) {
        if self.untimed_sends > 0 {
            self.untimed_sends = 0;
            self.on_change(now);
        }
    }

    /// The counters may have changed at `now`.
    #[inline]
    pub(crate) fn on_change(&mut self, now: Instant) {
        self.held_since = self.held_since.max(now);
    }

    /// Records a stats sample and logs what is due: summaries of invalid
    /// datagrams, refused sends and dropped messages, and resend storms.
    ///
    /// Called before an input or output changes the counters, so `stats`
    /// have held since the latest change (minus the sends not yet placed in
    /// time, which came after it).
    pub(crate) fn tick(&mut self, now: Instant, stats: &Stats, counters: &EngineCounters) {
        self.next_tick = now + self.window.sample_interval();
        let mut held = stats.clone();
        held.out_messages = held.out_messages.saturating_sub(self.untimed_sends);
        self.window.record_held(self.held_since, now, &held);
        let peer = PeerLabel(self.peer);
        let since = self.started;
        if let Some((n, secs)) = self.invalid.due(now, since, stats.dropped_invalid) {
            debug!(target: CONNECTION, %peer, count = n, secs,
                "{n} invalid datagrams from {peer} in the last {secs:.1} s");
        }
        if let Some((n, secs)) = self.frames.due(now, since, stats.dropped_frames) {
            debug!(target: CONNECTION, %peer, count = n, secs,
                "{n} frames outside the receive window from {peer} in the last {secs:.1} s");
        }
        if let Some((n, secs)) = self.refused.due(now, since, self.queue_full) {
            debug!(target: CONNECTION, %peer, count = n, secs,
                queued = stats.out_buffer_bytes,
                "send refused {n} times in the last {secs:.1} s: the queue to {peer} is full");
        }
        let f = &counters.faults;
        if let Some((n, secs)) = self
            .over_limit
            .due(now, since, f.reassembly_full + f.too_large)
        {
            warn!(target: CONNECTION, %peer, count = n, secs,
                reassembly_full = f.reassembly_full, too_large = f.too_large,
                "{n} messages from {peer} dropped at a memory limit in the last {secs:.1} s \
                 (max_reassembly_bytes or max_message_size)");
        }
        if let Some((n, secs)) = self
            .undecodable
            .due(now, since, f.undecodable + f.bad_fragments)
        {
            debug!(target: CONNECTION, %peer, count = n, secs,
                "{n} messages from {peer} did not decode in the last {secs:.1} s");
        }
        if now.saturating_duration_since(self.storm_start) >= STORM_WINDOW {
            self.check_storm(now, stats, counters.first_sends);
        }
    }

    /// Warns when resends made up more than [`STORM_FRACTION`] of the
    /// reliable transmissions since the last check, at most once per
    /// [`LOG_INTERVAL`].
    fn check_storm(&mut self, now: Instant, stats: &Stats, first_sends: u64) {
        let (resends0, firsts0) = self.storm_base;
        let resends = stats.resends.saturating_sub(resends0);
        let firsts = first_sends.saturating_sub(firsts0);
        let secs = now
            .saturating_duration_since(self.storm_start)
            .as_secs_f64();
        self.storm_start = now;
        self.storm_base = (stats.resends, first_sends);
        let share = resends as f64 / (resends + firsts).max(1) as f64;
        if resends < STORM_MIN_RESENDS || share < STORM_FRACTION {
            return;
        }
        if let Some(suppressed) = self.storms.allow(now, 1) {
            let peer = PeerLabel(self.peer);
            warn!(target: CONNECTION, %peer, resends, first_sends = firsts, secs,
                rtt_ms = stats.latency_ms, loss = stats.packet_loss,
                cwnd = stats.congestion_window, suppressed,
                "resend storm to {peer}: {resends} resends against {firsts} first sends \
                 in the last {secs:.1} s ({:.0}% of reliable transmissions)",
                share * 100.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_tally_reports_the_first_at_once_then_once_per_interval() {
        let t0 = Instant::now();
        let mut t = Tally::default();
        assert_eq!(t.due(t0, t0, 0), None);
        assert_eq!(t.due(t0 + ms(100), t0, 1), Some((1, 0.1)));
        // More within the interval: held.
        assert_eq!(t.due(t0 + ms(200), t0, 5), None);
        assert_eq!(t.due(t0 + ms(5000), t0, 40), None);
        // Once the interval has passed, everything since the last report.
        assert_eq!(t.due(t0 + ms(5100), t0, 41), Some((40, 5.0)));
        // Nothing new: nothing, however long it has been.
        assert_eq!(t.due(t0 + ms(60_000), t0, 41), None);
    }

    #[test]
    fn a_gate_lets_a_burst_through_per_interval_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut g = Gate::default();
        assert_eq!(g.allow(t0, 2), Some(0));
        assert_eq!(g.allow(t0 + ms(1), 2), Some(0));
        assert_eq!(g.allow(t0 + ms(2), 2), None);
        assert_eq!(g.allow(t0 + ms(3), 2), None);
        assert_eq!(g.allow(t0 + ms(5000), 2), Some(2));
        assert_eq!(g.allow(t0 + ms(5001), 2), Some(0));
    }

    #[test]
    fn storms_are_checked_once_per_window_and_warned_once_per_interval() {
        let t0 = Instant::now();
        let mut o = Observer::new(t0, Duration::from_secs(1));
        let mut s = Stats::default();
        let mut c = EngineCounters::default();
        // 50 resends against 50 first sends in one second: a storm.
        s.resends = 50;
        c.first_sends = 50;
        o.tick(t0 + ms(1000), &s, &c);
        assert_eq!(o.storm_base, (50, 50));
        assert_eq!(o.storms.passed, 1);
        // The next second storms as hard: checked, held back by the gate.
        s.resends = 100;
        c.first_sends = 100;
        o.tick(t0 + ms(2000), &s, &c);
        assert_eq!((o.storms.passed, o.storms.suppressed), (1, 1));
        // 10% resends is no storm.
        s.resends = 130;
        c.first_sends = 370;
        o.tick(t0 + ms(3000), &s, &c);
        assert_eq!(o.storms.suppressed, 1);
    }

    #[test]
    fn ticks_come_once_per_sample_interval() {
        let t0 = Instant::now();
        let o = Observer::new(t0, Duration::from_secs(1));
        assert!(!o.is_due(t0 + ms(99)));
        assert!(o.is_due(t0 + ms(100)));
    }
}
