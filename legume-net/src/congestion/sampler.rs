//! Round trips and the delivery rate measured over each: bytes acked and
//! lost between the ack that closed the previous round and the one that
//! closes this one (Westwood+'s ack-rate sampling, one sample per round),
//! so that no per-packet state is needed beyond each packet's send time.

use std::time::{Duration, Instant};

/// What one round trip delivered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RoundSample {
    /// Bytes newly acked during the round.
    pub(crate) acked: u64,
    /// Bytes declared lost during the round (less those acked after all).
    pub(crate) lost: u64,
    /// Of `lost`, the bytes lost while the RTT showed a queue: congestion.
    pub(crate) congestive: u64,
    /// From the ack that opened the round to the one that closed it.
    pub(crate) interval: Duration,
    /// The sender had nothing to send at some moment of the round, so the
    /// sample may understate what the path carries.
    pub(crate) app_limited: bool,
    /// The smallest RTT sample of the round, if it had one: above the min
    /// RTT, the queue stayed the whole round.
    pub(crate) min_rtt: Option<Duration>,
}

impl RoundSample {
    /// Bytes per second over the round: `bytes` / `interval`.
    pub(crate) fn rate(&self, bytes: u64) -> u64 {
        let nanos = self.interval.as_nanos().max(1);
        u64::try_from(u128::from(bytes) * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
    }

    /// The fraction of the round's bytes declared lost.
    pub(crate) fn loss_fraction(&self) -> f64 {
        self.fraction(self.lost)
    }

    /// The fraction of the round's bytes lost to congestion.
    pub(crate) fn congestive_fraction(&self) -> f64 {
        self.fraction(self.congestive)
    }

    fn fraction(&self, bytes: u64) -> f64 {
        let total = self.acked + self.lost;
        if total == 0 {
            0.0
        } else {
            bytes as f64 / total as f64
        }
    }
}

/// Counts bytes acked and lost per round trip.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeliverySampler {
    /// When the current round opened: the ack that closed the last one.
    /// `None` before the first ack.
    opened: Option<Instant>,
    acked: u64,
    lost: u64,
    congestive: u64,
    /// Acked in the current ack event, not yet added to the round.
    acked_now: u64,
    /// The newest send time among the packets the current ack event acked.
    newest_acked_sent: Option<Instant>,
    app_limited: bool,
    min_rtt: Option<Duration>,
    /// Rounds closed so far.
    pub(crate) rounds: u64,
}

impl DeliverySampler {
    /// A packet of `size` bytes sent at `sent_at` was newly acked.
    pub(crate) fn on_acked(&mut self, size: usize, sent_at: Instant) {
        self.acked_now += size as u64;
        if self.newest_acked_sent.is_none_or(|t| sent_at > t) {
            self.newest_acked_sent = Some(sent_at);
        }
    }

    /// A packet of `size` bytes was declared lost; `congestive` when the
    /// RTT showed a queue as it was.
    pub(crate) fn on_lost(&mut self, size: usize, congestive: bool) {
        self.lost += size as u64;
        if congestive {
            self.congestive += size as u64;
        }
    }

    /// A packet of `size` bytes declared lost was acked after all.
    pub(crate) fn on_spurious_loss(&mut self, size: usize) {
        self.lost = self.lost.saturating_sub(size as u64);
        self.congestive = self.congestive.min(self.lost);
    }

    /// The sender had room to send and nothing to send.
    pub(crate) fn on_app_limited(&mut self) {
        self.app_limited = true;
    }

    /// Ends an ack event at `now`, with its RTT sample if it gave one;
    /// returns the round's sample when the event closed a round: it acked a
    /// packet sent after the round opened.
    pub(crate) fn on_ack_event(
        &mut self,
        now: Instant,
        rtt: Option<Duration>,
    ) -> Option<RoundSample> {
        if let Some(rtt) = rtt {
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        let acked_now = std::mem::take(&mut self.acked_now);
        let newest = self.newest_acked_sent.take();
        let Some(opened) = self.opened else {
            // The first ack opens the first round; what it acked was sent
            // before any interval began.
            self.open(now);
            return None;
        };
        self.acked += acked_now;
        if newest.is_none_or(|sent| sent < opened) {
            return None;
        }
        let sample = RoundSample {
            acked: self.acked,
            lost: self.lost,
            congestive: self.congestive,
            interval: now.saturating_duration_since(opened),
            app_limited: self.app_limited,
            min_rtt: self.min_rtt,
        };
        self.open(now);
        self.rounds += 1;
        // An interval of zero (two acks at one instant) measures nothing.
        (!sample.interval.is_zero()).then_some(sample)
    }

    fn open(&mut self, now: Instant) {
        self.opened = Some(now);
        self.acked = 0;
        self.lost = 0;
        self.congestive = 0;
        self.app_limited = false;
        self.min_rtt = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_round_closes_when_a_packet_sent_after_it_opened_is_acked() {
        let t = Instant::now();
        let mut s = DeliverySampler::default();
        // The first ack opens the first round at t + 40 ms.
        s.on_acked(1000, t);
        assert_eq!(s.on_ack_event(t + 40 * MS, Some(40 * MS)), None);
        // Packets sent before it opened are acked: the round stays open.
        for i in 1..10u32 {
            s.on_acked(1000, t + i * MS);
            assert_eq!(s.on_ack_event(t + (40 + i) * MS, Some(40 * MS)), None);
        }
        s.on_lost(1000, false);
        s.on_acked(1000, t + 40 * MS);
        let sample = s
            .on_ack_event(t + 80 * MS, Some(45 * MS))
            .expect("round closed");
        assert_eq!(
            (sample.acked, sample.lost, sample.congestive),
            (10_000, 1000, 0)
        );
        assert_eq!(sample.interval, 40 * MS);
        assert_eq!(sample.min_rtt, Some(40 * MS));
        assert_eq!(sample.rate(sample.acked), 250_000);
        assert!(!sample.app_limited);
        assert!((sample.loss_fraction() - 1.0 / 11.0).abs() < 1e-12);
        assert_eq!(s.rounds, 1);
    }

    #[test]
    fn app_limited_and_spurious_losses_are_per_round() {
        let t = Instant::now();
        let mut s = DeliverySampler::default();
        assert_eq!(s.on_ack_event(t, None), None);
        s.on_app_limited();
        s.on_lost(500, true);
        s.on_spurious_loss(500);
        s.on_acked(700, t + MS);
        let a = s.on_ack_event(t + 10 * MS, None).expect("round closed");
        assert!(a.app_limited && a.lost == 0 && a.congestive == 0 && a.min_rtt.is_none());
        s.on_acked(700, t + 11 * MS);
        let b = s.on_ack_event(t + 20 * MS, None).expect("round closed");
        assert!(!b.app_limited);
        // Two acks at one instant close a round of no duration: no sample.
        s.on_acked(700, t + 20 * MS);
        assert_eq!(s.on_ack_event(t + 20 * MS, None), None);
        assert_eq!(s.rounds, 3);
    }
}
