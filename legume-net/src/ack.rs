//! The receiving side of packet acks: which sequence numbers arrived, the
//! ack fields to put in the next header, and when an ack-only packet is due.

use std::time::{Duration, Instant};

use crate::seq::{seq_diff, seq_newer, SeqRing};

/// How many received sequence numbers are remembered to drop duplicates.
const RECEIVED_WINDOW: usize = 1024;
/// Ack-eliciting packets received before an ack is sent without waiting.
const ACK_EVERY: u32 = 4;

#[derive(Debug)]
pub(crate) struct AckTracker {
    received: SeqRing<()>,
    latest: Option<(u16, Instant)>,
    unacked_eliciting: u32,
    deadline: Option<Instant>,
}

impl AckTracker {
    pub(crate) fn new() -> Self {
        AckTracker {
            received: SeqRing::new(RECEIVED_WINDOW),
            latest: None,
            unacked_eliciting: 0,
            deadline: None,
        }
    }

    /// Whether `seq` has not been received before and is recent enough to tell.
    pub(crate) fn is_new(&self, seq: u16) -> bool {
        match self.latest {
            None => true,
            Some((latest, _)) => {
                seq_diff(latest, seq) < RECEIVED_WINDOW as i32 && self.received.get(seq).is_none()
            }
        }
    }

    /// Records a valid packet. Out-of-order arrivals are acked at once, so
    /// the sender learns of the gap quickly.
    pub(crate) fn record(
        &mut self,
        seq: u16,
        now: Instant,
        ack_eliciting: bool,
        max_delay: Duration,
    ) {
        self.received.insert(seq, ());
        let in_order = match self.latest {
            None => true,
            Some((latest, _)) => seq == latest.wrapping_add(1),
        };
        if self.latest.is_none_or(|(latest, _)| seq_newer(seq, latest)) {
            self.latest = Some((seq, now));
        }
        if !ack_eliciting {
            return;
        }
        self.unacked_eliciting += 1;
        let by = if !in_order || self.unacked_eliciting >= ACK_EVERY {
            now
        } else {
            now + max_delay
        };
        self.deadline = Some(self.deadline.map_or(by, |d| d.min(by)));
    }

    /// The header's ack, ack bits and ack delay (in 10 µs units) for a packet sent at `now`.
    pub(crate) fn fields(&self, now: Instant) -> (u16, u32, u16) {
        let Some((latest, at)) = self.latest else {
            return (u16::MAX, 0, 0);
        };
        let mut bits = 0u32;
        for n in 0..32u16 {
            if self.received.get(latest.wrapping_sub(n + 1)).is_some() {
                bits |= 1 << n;
            }
        }
        let delay = now.saturating_duration_since(at).as_micros() / 10;
        (latest, bits, u16::try_from(delay).unwrap_or(u16::MAX))
    }

    /// Whether an ack should go out now even with nothing else to send.
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    /// When an ack-only packet will be due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A packet carrying the current ack fields was sent.
    pub(crate) fn on_ack_sent(&mut self) {
        self.unacked_eliciting = 0;
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_bits_and_duplicates() {
        let t = Instant::now();
        let d = Duration::from_millis(5);
        let mut a = AckTracker::new();
        assert_eq!(a.fields(t), (u16::MAX, 0, 0));
        for seq in [65534u16, 65535, 1, 2] {
            assert!(a.is_new(seq));
            a.record(seq, t, true, d);
        }
        assert!(!a.is_new(1));
        let (ack, bits, _) = a.fields(t);
        assert_eq!(ack, 2);
        // bit 0 = seq 1, bit 1 = seq 0 (missing), bit 2 = 65535, bit 3 = 65534
        assert_eq!(bits & 0b1111, 0b1101);
        assert!(!a.is_new(2u16.wrapping_sub(1500)), "too old to tell");
    }

    #[test]
    fn ack_scheduling() {
        let t = Instant::now();
        let d = Duration::from_millis(5);
        let mut a = AckTracker::new();
        a.record(0, t, true, d);
        assert!(!a.ack_due(t));
        assert!(a.ack_due(t + d));
        a.on_ack_sent();
        a.record(1, t, false, d);
        assert_eq!(a.deadline(), None, "ack-only packets are not acked");
        for seq in 2..6 {
            a.record(seq, t, true, d);
        }
        assert!(
            a.ack_due(t),
            "every 4th ack-eliciting packet is acked at once"
        );
        a.on_ack_sent();
        a.record(9, t, true, d);
        assert!(a.ack_due(t), "a gap is acked at once");
    }
}
