//! The receiving side of packet acks: which sequence numbers arrived, the
//! ack fields to put in the next header, and when an ack-only packet is due.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::seq::{seq_diff, seq_newer, SeqBits, SEQ_WINDOW};
/// Ack-eliciting packets received before an ack is sent without waiting.
const ACK_EVERY: u32 = 4;
/// How far behind the ack field the ack bits reach.
const ACK_RANGE: i32 = 32;
/// Kept ack fields at most (about the sender's 1024-packet window).
const MAX_PENDING: usize = 32;

/// What the sequence window (`docs/PROTOCOL.md` 4) makes of a DATA packet.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum SeqCheck {
    /// Not received before, and within the window: process it.
    New,
    /// Received before, or too far behind the newest to tell.
    Duplicate,
    /// More than `SEQ_WINDOW` ahead of the newest accepted packet: no
    /// correct peer sends it (its sender keeps within the window).
    TooFarAhead,
}

#[derive(Debug)]
pub(crate) struct AckTracker {
    /// The sequence numbers received among the `SEQ_WINDOW` up to `latest`.
    received: SeqBits,
    latest: Option<(u16, Instant)>,
    unacked_eliciting: u32,
    deadline: Option<Instant>,
    /// The oldest ack-eliciting packet no sent ack has covered yet.
    oldest_unacked: Option<u16>,
    /// Earlier values of `latest` to ack in extra ack-only packets: a burst
    /// of arrivals handled before the next transmit would otherwise push
    /// packets out of the one ack's 33-packet reach unacked, and the sender
    /// would take them for lost.
    pending: VecDeque<(u16, Instant)>,
}

impl AckTracker {
    pub(crate) fn new() -> Self {
        AckTracker {
            received: SeqBits::new(),
            latest: None,
            unacked_eliciting: 0,
            deadline: None,
            oldest_unacked: None,
            pending: VecDeque::new(),
        }
    }

    /// The newest sequence number accepted; before any, the one before the
    /// first a sender uses (0), so that the window starts there too.
    fn newest(&self) -> u16 {
        self.latest.map_or(u16::MAX, |(latest, _)| latest)
    }

    /// Whether a packet with sequence number `seq` is new and in the window.
    pub(crate) fn check(&self, seq: u16) -> SeqCheck {
        let newest = self.newest();
        if seq_newer(seq, newest) {
            if seq.wrapping_sub(newest) > SEQ_WINDOW {
                return SeqCheck::TooFarAhead;
            }
            return SeqCheck::New;
        }
        if self.was_received(seq) || self.latest.is_none() || newest.wrapping_sub(seq) >= SEQ_WINDOW
        {
            SeqCheck::Duplicate
        } else {
            SeqCheck::New
        }
    }

    /// Whether `seq` is known to have arrived: a bit counts only within the
    /// window behind the newest, since older numbers share its slots.
    fn was_received(&self, seq: u16) -> bool {
        self.latest.is_some()
            && self.newest().wrapping_sub(seq) < SEQ_WINDOW
            && self.received.get(seq)
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
        self.keep_fields_in_reach(seq);
        let newest = self.newest();
        let in_order = match self.latest {
            None => true,
            Some((latest, _)) => seq == latest.wrapping_add(1),
        };
        if self.latest.is_none() || seq_newer(seq, newest) {
            self.received.advance(newest, seq);
            self.latest = Some((seq, now));
        }
        self.received.set(seq);
        if !ack_eliciting {
            return;
        }
        self.note_unacked(seq, now);
        self.unacked_eliciting += 1;
        let by = if !in_order || self.unacked_eliciting >= ACK_EVERY {
            now
        } else {
            now + max_delay
        };
        self.deadline = Some(self.deadline.map_or(by, |d| d.min(by)));
    }

    /// Before `seq` becomes the newest, keeps the current ack fields if
    /// acking `seq` would leave an unacked packet out of reach.
    fn keep_fields_in_reach(&mut self, seq: u16) {
        let (Some((latest, at)), Some(oldest)) = (self.latest, self.oldest_unacked) else {
            return;
        };
        if !seq_newer(seq, latest) || seq_diff(seq, oldest) <= ACK_RANGE {
            return;
        }
        self.owe_ack(latest, at);
        self.oldest_unacked = None;
    }

    /// Queues an extra ack-only packet whose ack field is `seq`.
    fn owe_ack(&mut self, seq: u16, at: Instant) {
        if self.pending.len() == MAX_PENDING {
            // More than this between two transmits is past what acks can
            // describe; those packets fall back to loss recovery.
            self.pending.pop_front();
        }
        self.pending.push_back((seq, at));
    }

    /// Remembers an ack-eliciting packet in reach of the ack fields until
    /// an ack covers it; a late one beyond their reach gets an ack-only
    /// packet of its own (its `ack` field older than the newest is harmless
    /// to the sender, and tells it the loss it declared was reordering).
    fn note_unacked(&mut self, seq: u16, now: Instant) {
        let Some((latest, _)) = self.latest else {
            return;
        };
        if seq_diff(latest, seq) > ACK_RANGE {
            self.owe_ack(seq, now);
            return;
        }
        if self.oldest_unacked.is_none_or(|o| seq_newer(o, seq)) {
            self.oldest_unacked = Some(seq);
        }
    }

    /// The header's ack, ack bits and ack delay (in 10 µs units) for a packet sent at `now`.
    pub(crate) fn fields(&self, now: Instant) -> (u16, u32, u16) {
        match self.latest {
            Some((latest, at)) => self.fields_for(latest, at, now),
            None => (u16::MAX, 0, 0),
        }
    }

    fn fields_for(&self, latest: u16, at: Instant, now: Instant) -> (u16, u32, u16) {
        let mut bits = 0u32;
        for n in 0..32u16 {
            if self.was_received(latest.wrapping_sub(n + 1)) {
                bits |= 1 << n;
            }
        }
        let delay = now.saturating_duration_since(at).as_micros() / 10;
        (latest, bits, u16::try_from(delay).unwrap_or(u16::MAX))
    }

    /// The ack fields of the next extra ack-only packet, if any is owed
    /// (see `pending`); they must be sent before any other packet.
    pub(crate) fn take_pending(&mut self, now: Instant) -> Option<(u16, u32, u16)> {
        let (latest, at) = self.pending.pop_front()?;
        Some(self.fields_for(latest, at, now))
    }

    /// Whether an ack should go out now even with nothing else to send.
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        !self.pending.is_empty() || self.deadline.is_some_and(|d| d <= now)
    }

    /// When an ack-only packet will be due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.pending.front() {
            Some(&(_, at)) => Some(self.deadline.map_or(at, |d| d.min(at))),
            None => self.deadline,
        }
    }

    /// A packet carrying the current ack fields was sent.
    pub(crate) fn on_ack_sent(&mut self) {
        self.unacked_eliciting = 0;
        self.deadline = None;
        self.oldest_unacked = None;
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
        // Walk up to the wrap; 65535 and 0 then go missing.
        for seq in 0..65534u16 {
            assert_eq!(a.check(seq), SeqCheck::New);
            a.record(seq, t, false, d);
        }
        for seq in [65534u16, 1, 2] {
            assert_eq!(a.check(seq), SeqCheck::New);
            a.record(seq, t, true, d);
        }
        assert_eq!(a.check(1), SeqCheck::Duplicate);
        let (ack, bits, _) = a.fields(t);
        assert_eq!(ack, 2);
        // bit 0 = seq 1, bit 1 = seq 0 (missing), bit 2 = 65535 (missing), bit 3 = 65534
        assert_eq!(bits & 0b1111, 0b1001);
        assert_eq!(a.check(0), SeqCheck::New, "late, in the window");
        let old = 2u16.wrapping_sub(SEQ_WINDOW);
        assert_eq!(a.check(old), SeqCheck::Duplicate, "too old to tell");
    }

    #[test]
    fn the_window_bounds_jumps_ahead() {
        let t = Instant::now();
        let d = Duration::from_millis(5);
        let mut a = AckTracker::new();
        // Before anything arrives the window starts before sequence 0.
        assert_eq!(a.check(SEQ_WINDOW - 1), SeqCheck::New);
        assert_eq!(a.check(SEQ_WINDOW), SeqCheck::TooFarAhead);
        assert_eq!(a.check(u16::MAX), SeqCheck::Duplicate);
        assert_eq!(a.check(40_000), SeqCheck::Duplicate, "behind the start");
        a.record(10, t, true, d);
        for ahead in [SEQ_WINDOW + 1, 5000, 32_767, 32_768] {
            assert_eq!(a.check(10 + ahead), SeqCheck::TooFarAhead, "+{ahead}");
        }
        assert_eq!(a.check(10 + SEQ_WINDOW), SeqCheck::New);
        // A jump to the edge of the window leaves everything after the old
        // newest acceptable, and acks nothing that did not arrive.
        a.record(10 + SEQ_WINDOW, t, true, d);
        for seq in 11..10 + SEQ_WINDOW {
            assert_eq!(a.check(seq), SeqCheck::New, "{seq}");
        }
        assert_eq!(a.check(10), SeqCheck::Duplicate, "one window behind");
        let (ack, bits, _) = a.fields(t);
        assert_eq!((ack, bits), (10 + SEQ_WINDOW, 0));
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

    #[test]
    fn a_burst_past_the_ack_range_keeps_earlier_fields() {
        let t = Instant::now();
        let d = Duration::from_millis(5);
        let mut a = AckTracker::new();
        // 80 packets handled before anything is sent: one ack reaches 33 of
        // them, so the fields of 32 and of 65 are kept for two extra acks.
        for seq in 0..80u16 {
            a.record(seq, t, true, d);
        }
        let mut covered = [false; 80];
        let mut cover = |(ack, bits, _): (u16, u32, u16)| {
            covered[usize::from(ack)] = true;
            for n in 0..32u16 {
                if bits & (1 << n) != 0 {
                    covered[usize::from(ack - n - 1)] = true;
                }
            }
        };
        let mut extra = 0;
        while let Some(fields) = a.take_pending(t) {
            cover(fields);
            extra += 1;
        }
        cover(a.fields(t));
        a.on_ack_sent();
        assert_eq!(extra, 2);
        assert!(covered.iter().all(|&c| c), "every packet acked once");
        assert!(!a.ack_due(t + d) && a.deadline().is_none());

        // Packets already acked, and ack-only packets, owe nothing.
        for seq in 80..200u16 {
            a.record(seq, t, false, d);
        }
        assert!(a.take_pending(t).is_none());
        a.record(200, t, true, d);
        a.on_ack_sent();
        a.record(240, t, true, d);
        assert!(a.take_pending(t).is_none());
    }
}
