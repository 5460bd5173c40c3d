//! Round-trip time estimation (RFC 6298 / RFC 9002 §5).

use std::time::Duration;

/// Smoothed RTT, its variance, and the timeouts derived from them.
#[derive(Clone, Debug)]
pub(crate) struct RttEstimator {
    srtt: Duration,
    rttvar: Duration,
    latest: Duration,
    min: Duration,
    has_sample: bool,
}

impl RttEstimator {
    /// An estimator that reports `initial` until the first sample.
    pub(crate) fn new(initial: Duration) -> Self {
        RttEstimator {
            srtt: initial,
            rttvar: initial / 2,
            latest: initial,
            min: Duration::MAX,
            has_sample: false,
        }
    }

    /// Adds a sample measured from send to ack, with the peer's reported ack
    /// delay, which is subtracted only while that keeps the sample above the
    /// minimum RTT seen.
    pub(crate) fn update(&mut self, measured: Duration, ack_delay: Duration) {
        self.min = self.min.min(measured);
        let adjusted = if measured >= self.min + ack_delay {
            measured - ack_delay
        } else {
            measured
        };
        self.latest = adjusted;
        if !self.has_sample {
            self.has_sample = true;
            self.srtt = adjusted;
            self.rttvar = adjusted / 2;
            return;
        }
        let deviation = self.srtt.abs_diff(adjusted);
        self.rttvar = (self.rttvar * 3 + deviation) / 4;
        self.srtt = (self.srtt * 7 + adjusted) / 8;
    }

    /// The smoothed RTT.
    pub(crate) fn srtt(&self) -> Duration {
        self.srtt
    }

    /// The RTT variance.
    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The most recent adjusted sample.
    #[cfg(test)]
    pub(crate) fn latest(&self) -> Duration {
        self.latest
    }

    /// How long an unacked packet older than an acked one may wait before it
    /// is declared lost: `eighths`/8 · max(srtt, latest), at least 1 ms
    /// (RFC 9002 uses 9/8; more tolerates more reordering).
    pub(crate) fn loss_delay(&self, eighths: u32) -> Duration {
        (self.srtt.max(self.latest) * eighths / 8).max(Duration::from_millis(1))
    }

    /// The base probe timeout: srtt + max(4 · rttvar, 1 ms) + max ack delay.
    pub(crate) fn pto(&self, max_ack_delay: Duration) -> Duration {
        self.srtt + (self.rttvar * 4).max(Duration::from_millis(1)) + max_ack_delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_sample_then_smoothing() {
        let mut rtt = RttEstimator::new(100 * MS);
        assert_eq!(rtt.srtt(), 100 * MS);
        rtt.update(40 * MS, Duration::ZERO);
        assert_eq!((rtt.srtt(), rtt.rttvar()), (40 * MS, 20 * MS));
        rtt.update(80 * MS, Duration::ZERO);
        assert_eq!(rtt.srtt(), 45 * MS);
        assert_eq!(rtt.rttvar(), 25 * MS);
        assert_eq!(rtt.pto(5 * MS), 45 * MS + 100 * MS + 5 * MS);
    }

    #[test]
    fn loss_delay_is_eighths_of_the_larger_rtt_with_a_floor() {
        let mut rtt = RttEstimator::new(100 * MS);
        rtt.update(40 * MS, Duration::ZERO);
        assert_eq!(rtt.loss_delay(9), 45 * MS);
        assert_eq!(rtt.loss_delay(17), 85 * MS);
        // The latest sample counts when it is above the smoothed RTT.
        rtt.update(80 * MS, Duration::ZERO);
        assert_eq!((rtt.srtt(), rtt.latest()), (45 * MS, 80 * MS));
        assert_eq!(rtt.loss_delay(8), 80 * MS);
        // Never under a millisecond.
        let mut fast = RttEstimator::new(100 * MS);
        fast.update(Duration::from_micros(200), Duration::ZERO);
        assert_eq!(fast.loss_delay(9), MS);
    }

    #[test]
    fn converges_and_subtracts_ack_delay_safely() {
        let mut rtt = RttEstimator::new(100 * MS);
        for _ in 0..100 {
            rtt.update(30 * MS, Duration::ZERO);
        }
        assert!(rtt.srtt().abs_diff(30 * MS) < MS);
        // An ack delay that would push the sample below the minimum is ignored.
        rtt.update(31 * MS, 10 * MS);
        assert_eq!(rtt.latest(), 31 * MS);
        rtt.update(45 * MS, 10 * MS);
        assert_eq!(rtt.latest(), 35 * MS);
        assert!(rtt.loss_delay(9) >= rtt.srtt());
        assert!(rtt.loss_delay(17) > rtt.loss_delay(9));
    }
}
