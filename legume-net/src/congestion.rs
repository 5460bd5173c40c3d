//! NewReno congestion control (RFC 9002 §7), counted in bytes.

use std::time::Instant;

/// The congestion window and the bytes in flight it limits.
#[derive(Clone, Debug)]
pub(crate) struct Congestion {
    cwnd: usize,
    ssthresh: usize,
    in_flight: usize,
    min_window: usize,
    max_window: usize,
    mtu: usize,
    recovery_start: Option<Instant>,
    /// The window and threshold before the last reduction, for undoing it
    /// when the loss turns out to be spurious.
    before_reduction: Option<(usize, usize)>,
}

impl Congestion {
    /// A window of 10 datagrams (or `min_window` if larger), never below
    /// `min_window` (at least 2 datagrams) nor above `max_window` bytes.
    pub(crate) fn new(mtu: usize, min_window: usize, max_window: usize) -> Self {
        let min_window = min_window.max(2 * mtu);
        let max_window = max_window.max(min_window);
        Congestion {
            cwnd: (10 * mtu).max(min_window).min(max_window),
            ssthresh: usize::MAX,
            in_flight: 0,
            min_window,
            max_window,
            mtu,
            recovery_start: None,
            before_reduction: None,
        }
    }

    /// The congestion window in bytes.
    pub(crate) fn window(&self) -> usize {
        self.cwnd
    }

    /// Bytes sent in ack-eliciting packets, neither acked nor lost.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether a packet of `size` bytes may be sent now.
    pub(crate) fn can_send(&self, size: usize) -> bool {
        self.in_flight + size <= self.cwnd
    }

    pub(crate) fn on_sent(&mut self, size: usize) {
        debug_assert!(self.cwnd >= self.min_window && self.cwnd <= self.max_window);
        self.in_flight += size;
    }

    /// A packet of `size` bytes sent at `sent_at` was acked.
    pub(crate) fn on_acked(&mut self, size: usize, sent_at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(size);
        if self.recovery_start.is_some_and(|start| sent_at <= start) {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += size;
        } else {
            self.cwnd += (self.mtu * size / self.cwnd).max(1);
        }
        self.cwnd = self.cwnd.min(self.max_window);
    }

    /// A packet of `size` bytes sent at `sent_at` was declared lost at `now`.
    /// A packet declared lost was acked after all: the last reduction was
    /// a reaction to reordering, not congestion, and is undone.
    pub(crate) fn on_spurious_loss(&mut self) {
        if let Some((cwnd, ssthresh)) = self.before_reduction.take() {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = ssthresh;
        }
    }

    pub(crate) fn on_lost(&mut self, size: usize, sent_at: Instant, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(size);
        if self.recovery_start.is_some_and(|start| sent_at <= start) {
            // Part of a loss event already reacted to.
            return;
        }
        self.recovery_start = Some(now);
        self.before_reduction = Some((self.cwnd, self.ssthresh));
        self.cwnd = (self.cwnd / 2).max(self.min_window);
        self.ssthresh = self.cwnd;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn slow_start_then_halving() {
        let t0 = Instant::now();
        let mut cc = Congestion::new(1000, 0, 1_000_000);
        assert_eq!(cc.window(), 10_000);
        assert!(cc.can_send(10_000) && !cc.can_send(10_001));
        cc.on_sent(1000);
        cc.on_acked(1000, t0);
        assert_eq!(cc.window(), 11_000);
        cc.on_sent(2000);
        cc.on_lost(1000, t0, t0 + Duration::from_millis(1));
        assert_eq!(cc.window(), 5_500);
        // A second loss from the same flight does not halve again.
        cc.on_lost(1000, t0, t0 + Duration::from_millis(2));
        assert_eq!(cc.window(), 5_500);
        // A spurious loss restores the window once.
        cc.on_spurious_loss();
        assert_eq!(cc.window(), 11_000);
        cc.on_spurious_loss();
        assert_eq!(cc.window(), 11_000);
        cc.on_lost(
            1000,
            t0 + Duration::from_millis(3),
            t0 + Duration::from_millis(4),
        );
        assert_eq!(cc.window(), 5_500);
        assert_eq!(cc.in_flight(), 0);
        // Congestion avoidance: about one MTU per window of acks.
        let later = t0 + Duration::from_millis(10);
        for _ in 0..5 {
            cc.on_sent(1100);
            cc.on_acked(1100, later);
        }
        assert!(
            cc.window() > 5_500 && cc.window() < 7_000,
            "{}",
            cc.window()
        );
    }

    #[test]
    fn window_stays_within_bounds() {
        let t0 = Instant::now();
        let mut cc = Congestion::new(1000, 0, 12_000);
        for i in 0..20u64 {
            cc.on_lost(
                1000,
                t0 + Duration::from_millis(i),
                t0 + Duration::from_millis(i + 1),
            );
        }
        assert_eq!(cc.window(), 2000);
        for _ in 0..100 {
            cc.on_sent(1000);
            cc.on_acked(1000, t0 + Duration::from_secs(1));
        }
        assert_eq!(cc.window(), 12_000);
    }
}
