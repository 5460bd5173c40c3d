//! NewReno (RFC 9002 §7), counted in bytes: the window halves on each loss
//! event. Kept beside the BBR-style controller for comparison.

use std::time::Instant;

use super::{AckEvent, Controller};

/// NewReno's window and slow-start threshold.
#[derive(Clone, Debug)]
pub(crate) struct NewReno {
    cwnd: usize,
    ssthresh: usize,
    min_window: usize,
    max_window: usize,
    mtu: usize,
    recovery_start: Option<Instant>,
    /// The window and threshold before the last reduction, for undoing it
    /// when the loss turns out to be spurious.
    before_reduction: Option<(usize, usize)>,
}

impl NewReno {
    /// A window of 10 datagrams (or `min_window` if larger), within
    /// `min_window..=max_window` (already bounded by the caller).
    pub(crate) fn new(mtu: usize, min_window: usize, max_window: usize) -> Self {
        NewReno {
            cwnd: (10 * mtu).max(min_window).min(max_window),
            ssthresh: usize::MAX,
            min_window,
            max_window,
            mtu,
            recovery_start: None,
            before_reduction: None,
        }
    }
}

impl Controller for NewReno {
    fn window(&self) -> usize {
        self.cwnd
    }

    fn pacing_rate(&self) -> Option<u64> {
        None
    }

    fn on_acked(&mut self, _now: Instant, size: usize, sent_at: Instant) {
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

    fn on_lost(&mut self, now: Instant, _size: usize, sent_at: Instant) {
        if self.recovery_start.is_some_and(|start| sent_at <= start) {
            // Part of a loss event already reacted to.
            return;
        }
        self.recovery_start = Some(now);
        self.before_reduction = Some((self.cwnd, self.ssthresh));
        self.cwnd = (self.cwnd / 2).max(self.min_window);
        self.ssthresh = self.cwnd;
    }

    /// The last reduction was a reaction to reordering, not congestion: it
    /// is undone, once.
    fn on_spurious_loss(&mut self) {
        if let Some((cwnd, ssthresh)) = self.before_reduction.take() {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = ssthresh;
        }
    }

    fn on_ack_event(&mut self, _now: Instant, _event: &AckEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn slow_start_then_halving() {
        let t0 = Instant::now();
        let mut cc = NewReno::new(1000, 2000, 1_000_000);
        assert_eq!(cc.window(), 10_000);
        cc.on_acked(t0, 1000, t0);
        assert_eq!(cc.window(), 11_000);
        cc.on_lost(t0 + Duration::from_millis(1), 1000, t0);
        assert_eq!(cc.window(), 5_500);
        // A second loss from the same flight does not halve again.
        cc.on_lost(t0 + Duration::from_millis(2), 1000, t0);
        assert_eq!(cc.window(), 5_500);
        // A spurious loss restores the window once.
        cc.on_spurious_loss();
        assert_eq!(cc.window(), 11_000);
        cc.on_spurious_loss();
        assert_eq!(cc.window(), 11_000);
        cc.on_lost(
            t0 + Duration::from_millis(4),
            1000,
            t0 + Duration::from_millis(3),
        );
        assert_eq!(cc.window(), 5_500);
        // Congestion avoidance: about one MTU per window of acks.
        let later = t0 + Duration::from_millis(10);
        for _ in 0..5 {
            cc.on_acked(later, 1100, later);
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
        let mut cc = NewReno::new(1000, 2000, 12_000);
        for i in 0..20u64 {
            cc.on_lost(
                t0 + Duration::from_millis(i + 1),
                1000,
                t0 + Duration::from_millis(i),
            );
        }
        assert_eq!(cc.window(), 2000);
        for _ in 0..100 {
            cc.on_acked(
                t0 + Duration::from_secs(1),
                1000,
                t0 + Duration::from_secs(1),
            );
        }
        assert_eq!(cc.window(), 12_000);
    }
}
