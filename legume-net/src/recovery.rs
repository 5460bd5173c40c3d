//! The sending side of packet acks: the ring of sent packets, loss detection
//! (packet threshold, time threshold, probe timeout), RTT, and the events
//! that feed rate control (`congestion`): each packet sent, acked or lost,
//! and the end of each ack with its RTT sample.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::channel::MsgRef;
use crate::congestion::Congestion;
use crate::rtt::RttEstimator;
use crate::seq::{seq_diff, seq_newer, SeqRing, SEQ_WINDOW};
use crate::time::earliest;

/// Sent packets remembered for acks; also the most ack-eliciting packets in flight.
pub(crate) const SENT_WINDOW: usize = 1024;
/// A packet is lost when one sent this many sequence numbers later is acked
/// (RFC 9002); raised when reordering proves a loss spurious.
const PACKET_THRESHOLD: i32 = 3;
/// The packet threshold never grows past this.
const MAX_PACKET_THRESHOLD: i32 = 32;
/// The time threshold in eighths of the RTT: RFC 9002's 9/8 at first, up to
/// 17/8 after spurious losses.
const TIME_THRESHOLD_EIGHTHS: u32 = 9;
const MAX_TIME_THRESHOLD_EIGHTHS: u32 = 17;
/// Packets a probe timeout declares lost (and so resends), oldest first;
/// the acks of their resends then let the thresholds judge the rest.
const PTO_PROBES: usize = 2;
/// Ack-eliciting packets wait while this many sequence numbers separate the
/// next one from the newest the peer has acknowledged: half the peer's
/// sequence window, the other half left for ack-only packets and probes
/// (`docs/PROTOCOL.md` 5, "Sequence span").
const SEND_SPAN: u16 = SEQ_WINDOW / 2;
/// Spare refs vectors kept for reuse, at most.
const MAX_SPARE_REFS: usize = 64;
/// Capacity of the in-flight queue kept once nothing is in flight; a
/// larger one (from a burst) is given back.
const MAX_IDLE_IN_FLIGHT_CAPACITY: usize = 64;
/// The probe timeout doubles at most this many times.
const MAX_PTO_BACKOFF: u32 = 6;
/// The probe timeout never grows past this, so that a lossy but live link
/// is probed several times within the idle timeout.
const MAX_PTO: Duration = Duration::from_secs(1);

/// What became of a message part when its packet's fate was decided.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    Acked(MsgRef),
    /// Lost in the packet with this sequence number.
    Lost(u16, MsgRef),
}

#[derive(Debug)]
struct SentPacket {
    sent_at: Instant,
    size: usize,
    /// What it carried; kept after a loss in case the loss was spurious.
    refs: Vec<MsgRef>,
    in_flight: bool,
    /// Declared lost and not (yet) acked.
    lost: bool,
}

/// Loss recovery and congestion control for one connection.
#[derive(Debug)]
pub(crate) struct Recovery {
    sent: SeqRing<SentPacket>,
    /// Ack-eliciting packets in send order; entries no longer in flight are
    /// skipped lazily.
    in_flight: VecDeque<u16>,
    next_seq: u16,
    largest_acked: Option<u16>,
    /// The newest `ack` field from the peer that names a packet we sent
    /// (ack-only ones included): the peer's sequence window reaches
    /// `SEQ_WINDOW` past it. `0xFFFF`, one before our first, until then.
    peer_newest: u16,
    pub(crate) rtt: RttEstimator,
    pub(crate) cc: Congestion,
    max_ack_delay: Duration,
    pto_count: u32,
    last_eliciting_sent: Option<Instant>,
    loss_time: Option<Instant>,
    spare_refs: Vec<Vec<MsgRef>>,
    pub(crate) lost_packets: u64,
    /// Losses later disproved by an ack (reordering, not loss).
    pub(crate) spurious_losses: u64,
    /// Recent-weighted fraction of packets lost.
    pub(crate) loss_rate: f64,
    /// The current packet and time thresholds, widened by spurious losses.
    packet_threshold: i32,
    time_threshold: u32,
    /// Packets that may still go out past the window after a probe timeout.
    probe_credit: usize,
}

impl Recovery {
    pub(crate) fn new(initial_rtt: Duration, max_ack_delay: Duration, cc: Congestion) -> Self {
        Recovery {
            sent: SeqRing::new(SENT_WINDOW),
            in_flight: VecDeque::new(),
            next_seq: 0,
            largest_acked: None,
            peer_newest: u16::MAX,
            rtt: RttEstimator::new(initial_rtt),
            cc,
            max_ack_delay,
            pto_count: 0,
            last_eliciting_sent: None,
            loss_time: None,
            spare_refs: Vec::new(),
            lost_packets: 0,
            spurious_losses: 0,
            loss_rate: 0.0,
            packet_threshold: PACKET_THRESHOLD,
            time_threshold: TIME_THRESHOLD_EIGHTHS,
            probe_credit: 0,
        }
    }

    /// Slots of the sent-packet ring allocated (for the idle-footprint test).
    #[cfg(test)]
    pub(crate) fn sent_slots(&self) -> usize {
        self.sent.allocated_slots()
    }

    /// The sequence number the next packet will carry.
    pub(crate) fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// An empty vector for the refs of the next packet.
    pub(crate) fn take_refs(&mut self) -> Vec<MsgRef> {
        let mut refs = self.spare_refs.pop().unwrap_or_default();
        refs.clear();
        refs
    }

    /// Returns an unused refs vector.
    pub(crate) fn recycle_refs(&mut self, refs: Vec<MsgRef>) {
        // Only vectors with storage are worth keeping, and only a few: an
        // empty one saves nothing, and an unbounded pool would leak.
        if refs.capacity() > 0 && self.spare_refs.len() < MAX_SPARE_REFS {
            self.spare_refs.push(refs);
        }
    }

    /// Bytes in flight are below the window by at least `size` and the
    /// sequence span has room, or a probe is owed, or nothing is in flight.
    pub(crate) fn can_send(&self, size: usize) -> bool {
        self.probe_credit > 0
            || self.cc.in_flight() == 0
            || (self.cc.can_send(size) && self.span() < SEND_SPAN)
    }

    /// Whether the pacer lets a packet of `size` bytes leave at `now`;
    /// probes owed after a probe timeout are not held back.
    pub(crate) fn pacing_allows(&mut self, now: Instant, size: usize) -> bool {
        self.probe_credit > 0 || self.cc.pacing_ready(now, size)
    }

    /// Sequence numbers sent since the newest one the peer acknowledged.
    fn span(&self) -> u16 {
        self.next_seq.wrapping_sub(self.peer_newest).wrapping_sub(1)
    }

    /// Whether the peer's sequence window is sure to accept the next
    /// packet. When it is not, the peer has acknowledged none of the last
    /// `SEQ_WINDOW` packets, and what is sent next would be refused.
    pub(crate) fn peer_accepts_next(&self) -> bool {
        self.span() < SEQ_WINDOW
    }

    /// A packet with sequence `next_seq()` was sent.
    pub(crate) fn on_sent(
        &mut self,
        now: Instant,
        size: usize,
        refs: Vec<MsgRef>,
        ack_eliciting: bool,
        outcome: &mut impl FnMut(Outcome),
    ) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        if !ack_eliciting {
            self.recycle_refs(refs);
            // The slot may still hold the packet that had this very number
            // one lap (65,536 packets) ago; an ack of this one must not
            // pass for an ack of that one.
            if self.sent.get(seq).is_some() {
                if let Some((_, old)) = self.sent.take_slot(seq) {
                    self.recycle_refs(old.refs);
                }
            }
            return;
        }
        // The slot's previous packet is 1024 sequence numbers old: if it is
        // still in flight, it is long lost.
        if let Some((old_seq, old)) = self.sent.take_slot(seq) {
            if old.in_flight {
                self.count_loss(old.size, old.sent_at, now);
                report(old_seq, &old.refs, outcome);
            }
            self.recycle_refs(old.refs);
        }
        self.sent.insert(
            seq,
            SentPacket {
                sent_at: now,
                size,
                refs,
                in_flight: true,
                lost: false,
            },
        );
        self.in_flight.push_back(seq);
        self.probe_credit = self.probe_credit.saturating_sub(1);
        self.cc.on_sent(now, size);
        self.last_eliciting_sent = Some(now);
    }

    /// Processes a received header's ack fields.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        ack: u16,
        ack_bits: u32,
        ack_delay: Duration,
        outcome: &mut impl FnMut(Outcome),
    ) {
        // An ack of a sequence number never sent is ignored entirely.
        if seq_diff(ack, self.next_seq.wrapping_sub(1)) > 0 {
            return;
        }
        if seq_newer(ack, self.peer_newest) {
            self.peer_newest = ack;
        }
        if self.last_eliciting_sent.is_none() {
            return;
        }
        let mut newly_acked = false;
        let mut rtt_sample = None;
        for n in 0..=32u16 {
            if n > 0 && ack_bits & (1 << (n - 1)) == 0 {
                continue;
            }
            let seq = ack.wrapping_sub(n);
            let Some(p) = self.sent.get_mut(seq) else {
                continue;
            };
            if p.lost {
                // It arrived after all: undo what its loss did.
                p.lost = false;
                let refs = std::mem::take(&mut p.refs);
                for r in &refs {
                    outcome(Outcome::Acked(*r));
                }
                let size = p.size;
                self.recycle_refs(refs);
                self.on_spurious_loss(seq, size);
                continue;
            }
            if !p.in_flight {
                continue;
            }
            p.in_flight = false;
            if n == 0 {
                let measured = now.saturating_duration_since(p.sent_at);
                self.rtt.update(measured, ack_delay);
                self.cc.on_rtt_sample(measured, self.rtt.rttvar());
                rtt_sample = Some(measured);
            }
            let (size, sent_at) = (p.size, p.sent_at);
            self.cc.on_acked(now, size, sent_at);
            self.loss_rate -= self.loss_rate / 64.0;
            let refs = std::mem::take(&mut p.refs);
            for r in &refs {
                outcome(Outcome::Acked(*r));
            }
            self.recycle_refs(refs);
            newly_acked = true;
        }
        if !newly_acked {
            return;
        }
        if self.largest_acked.is_none_or(|l| seq_newer(ack, l)) {
            self.largest_acked = Some(ack);
        }
        self.pto_count = 0;
        self.detect_lost(now, outcome);
        self.cc.on_ack_event(now, rtt_sample, self.rtt.srtt());
    }

    /// Declares lost the in-flight packets that the packet or time threshold condemns.
    fn detect_lost(&mut self, now: Instant, outcome: &mut impl FnMut(Outcome)) {
        self.drop_settled_front();
        self.loss_time = None;
        let Some(largest) = self.largest_acked else {
            return;
        };
        let loss_delay = self.rtt.loss_delay(self.time_threshold);
        let mut i = 0;
        while i < self.in_flight.len() {
            let seq = self.in_flight[i];
            let behind = seq_diff(largest, seq);
            if behind <= 0 {
                break;
            }
            i += 1;
            let Some(p) = self.sent.get(seq) else {
                continue;
            };
            if !p.in_flight {
                continue;
            }
            let deadline = p.sent_at + loss_delay;
            if behind >= self.packet_threshold || deadline <= now {
                self.declare_lost(seq, now, outcome);
            } else {
                self.loss_time = Some(self.loss_time.map_or(deadline, |t| t.min(deadline)));
            }
        }
        self.drop_settled_front();
    }

    /// Marks an in-flight packet lost, keeping its record so that a late
    /// ack can prove the loss spurious.
    fn declare_lost(&mut self, seq: u16, now: Instant, outcome: &mut impl FnMut(Outcome)) {
        let Some(p) = self.sent.get_mut(seq) else {
            return;
        };
        if !p.in_flight {
            return;
        }
        p.in_flight = false;
        p.lost = true;
        let (size, sent_at) = (p.size, p.sent_at);
        report(seq, &p.refs, outcome);
        self.count_loss(size, sent_at, now);
    }

    fn count_loss(&mut self, size: usize, sent_at: Instant, now: Instant) {
        self.cc.on_lost(now, size, sent_at);
        self.lost_packets += 1;
        self.loss_rate += (1.0 - self.loss_rate) / 64.0;
    }

    /// A packet declared lost was acked: the link reorders more than the
    /// thresholds allowed. Widen them (as RACK does) and undo the window cut.
    fn on_spurious_loss(&mut self, seq: u16, size: usize) {
        self.spurious_losses += 1;
        self.lost_packets = self.lost_packets.saturating_sub(1);
        self.loss_rate -= self.loss_rate / 64.0;
        if let Some(largest) = self.largest_acked {
            let distance = seq_diff(largest, seq).saturating_add(1);
            self.packet_threshold = self
                .packet_threshold
                .max(distance.min(MAX_PACKET_THRESHOLD));
        }
        self.time_threshold = (self.time_threshold + 2).min(MAX_TIME_THRESHOLD_EIGHTHS);
        self.cc.on_spurious_loss(size);
    }

    fn drop_settled_front(&mut self) {
        while let Some(&seq) = self.in_flight.front() {
            if self.sent.get(seq).is_some_and(|p| p.in_flight) {
                return;
            }
            self.in_flight.pop_front();
        }
        self.release_settled();
    }

    /// Storage only, once nothing is in flight: forgets the packets whose
    /// fate is settled (acked, or lost and then acked), which every lookup
    /// treats as it treats a packet never recorded, and gives back the
    /// storage of the last burst (see `SeqRing::compact`). Packets declared
    /// lost stay, for a late ack to prove the loss spurious.
    fn release_settled(&mut self) {
        self.sent.compact(|p| p.in_flight || p.lost);
        if self.in_flight.capacity() > MAX_IDLE_IN_FLIGHT_CAPACITY {
            self.in_flight = VecDeque::new();
        }
    }

    /// The probe timeout with its current backoff.
    fn pto(&self) -> Duration {
        let base = self.rtt.pto(self.max_ack_delay);
        (base * (1 << self.pto_count)).min(MAX_PTO.max(base))
    }

    /// When `on_timeout` must run next.
    pub(crate) fn timer(&self) -> Option<Instant> {
        if self.cc.in_flight() == 0 {
            return None;
        }
        let pto = self.last_eliciting_sent.map(|t| t + self.pto());
        earliest(self.loss_time, pto)
    }

    /// Runs the time-threshold loss check and, when it expires, the probe timeout.
    pub(crate) fn on_timeout(&mut self, now: Instant, outcome: &mut impl FnMut(Outcome)) {
        if self.loss_time.is_some_and(|t| t <= now) {
            self.detect_lost(now, outcome);
        }
        let pto_due = self
            .last_eliciting_sent
            .is_some_and(|t| t + self.pto() <= now);
        if !pto_due || self.cc.in_flight() == 0 {
            return;
        }
        // Tail loss: nothing acked for a whole PTO. The oldest packets are
        // resent as probes, allowed past the congestion window; once their
        // resends are acked, the packet threshold condemns what else was
        // lost. The next probe waits twice as long.
        self.drop_settled_front();
        let probes: Vec<u16> = self.in_flight.iter().take(PTO_PROBES).copied().collect();
        for seq in probes {
            self.declare_lost(seq, now, outcome);
        }
        self.drop_settled_front();
        self.probe_credit = PTO_PROBES;
        self.pto_count = (self.pto_count + 1).min(MAX_PTO_BACKOFF);
        self.loss_time = None;
    }
}

/// Tells the channels that the parts a packet carried were lost in it.
fn report(seq: u16, refs: &[MsgRef], outcome: &mut impl FnMut(Outcome)) {
    for r in refs {
        outcome(Outcome::Lost(seq, *r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CongestionConfig, CongestionController};
    use crate::packet::Channel;

    fn r(id: u16) -> MsgRef {
        MsgRef {
            channel: Channel::short(1),
            id,
            frag: 0,
        }
    }

    fn recovery() -> Recovery {
        Recovery::new(
            Duration::from_millis(100),
            Duration::from_millis(5),
            Congestion::new(
                Instant::now(),
                1000,
                &CongestionConfig {
                    controller: CongestionController::NewReno,
                    min_window: 0,
                    max_window: 1 << 20,
                    ..CongestionConfig::default()
                },
                usize::MAX,
                Duration::from_millis(100),
                0,
            ),
        )
    }

    #[test]
    fn packet_threshold_declares_loss() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut log = Vec::new();
        let mut cb = |o: Outcome| log.push(o);
        for id in 0..5 {
            let mut refs = rec.take_refs();
            refs.push(r(id));
            rec.on_sent(t, 100, refs, true, &mut cb);
        }
        // Ack 1..=4 but not 0: packet 0 is 4 behind the largest.
        rec.on_ack(
            t + Duration::from_millis(30),
            4,
            0b0111,
            Duration::ZERO,
            &mut cb,
        );
        let lost: Vec<_> = log
            .iter()
            .filter_map(|o| match o {
                Outcome::Lost(seq, m) => Some((*seq, m.id)),
                Outcome::Acked(_) => None,
            })
            .collect();
        assert_eq!(lost, [(0, 0)]);
        assert_eq!(log.len(), 5);
        assert_eq!(rec.cc.in_flight(), 0);
        assert_eq!(rec.rtt.srtt(), Duration::from_millis(30));
    }

    #[test]
    fn tail_loss_is_caught_by_the_probe_timeout() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut lost = 0;
        let mut cb = |o: Outcome| {
            if matches!(o, Outcome::Lost(..)) {
                lost += 1;
            }
        };
        let refs = vec![r(0)];
        rec.on_sent(t, 100, refs, true, &mut cb);
        let deadline = rec.timer().expect("a packet is in flight");
        assert!(deadline > t);
        rec.on_timeout(deadline - Duration::from_millis(1), &mut cb);
        rec.on_timeout(deadline, &mut cb);
        assert_eq!(lost, 1);
        assert_eq!(rec.timer(), None);
    }

    #[test]
    fn a_late_ack_undoes_a_spurious_loss() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut log = Vec::new();
        let mut cb = |o: Outcome| log.push(o);
        for id in 0..6 {
            let mut refs = rec.take_refs();
            refs.push(r(id));
            rec.on_sent(t, 1000, refs, true, &mut cb);
        }
        let window = rec.cc.window();
        // 1..=5 arrive first: 0 is declared lost, the window halves.
        rec.on_ack(
            t + Duration::from_millis(30),
            5,
            0b1111,
            Duration::ZERO,
            &mut cb,
        );
        assert_eq!(rec.lost_packets, 1);
        assert!(rec.cc.window() < window);
        // Then 0 is acked too: the loss was reordering.
        rec.on_ack(
            t + Duration::from_millis(35),
            5,
            0b11111,
            Duration::ZERO,
            &mut cb,
        );
        assert_eq!((rec.lost_packets, rec.spurious_losses), (0, 1));
        assert!(rec.cc.window() >= window);
        assert!(rec.packet_threshold >= 6, "{}", rec.packet_threshold);
        assert!(rec.time_threshold > TIME_THRESHOLD_EIGHTHS);
        let acked_zero = log
            .iter()
            .filter(|o| matches!(o, Outcome::Acked(m) if m.id == 0))
            .count();
        assert_eq!(acked_zero, 1, "the late ack acks what packet 0 carried");
    }

    #[test]
    fn the_sequence_span_holds_back_data_but_not_acks() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut cb = |_| {};
        for _ in 0..SEND_SPAN {
            assert!(rec.can_send(1));
            rec.on_sent(t, 1, Vec::new(), true, &mut cb);
        }
        assert!(!rec.can_send(1), "2,048 unacknowledged sequence numbers");
        // Ack-only packets still go, up to the peer's whole window.
        while rec.peer_accepts_next() {
            rec.on_sent(t, 1, Vec::new(), false, &mut cb);
        }
        assert_eq!(rec.next_seq(), SEQ_WINDOW);
        // An ack naming a number never sent moves nothing.
        rec.on_ack(t, SEQ_WINDOW + 10, 0, Duration::ZERO, &mut cb);
        assert!(!rec.peer_accepts_next());
        // The peer's newest, even an ack-only packet, makes room again.
        rec.on_ack(t, SEQ_WINDOW - 1, 0, Duration::ZERO, &mut cb);
        assert!(rec.peer_accepts_next() && rec.can_send(1));
    }

    #[test]
    fn an_ack_of_a_number_used_a_lap_earlier_acks_nothing() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut log = Vec::new();
        rec.on_sent(t, 100, vec![r(7)], true, &mut |o| log.push(o));
        let deadline = rec.timer().expect("in flight");
        rec.on_timeout(deadline, &mut |o| log.push(o));
        assert!(matches!(log[..], [Outcome::Lost(0, _)]), "{log:?}");
        // A lap of ack-only packets later, number 0 is used again.
        for _ in 0..=u16::MAX {
            rec.on_sent(t, 1, Vec::new(), false, &mut |o| log.push(o));
        }
        rec.on_ack(t, 0, 0, Duration::ZERO, &mut |o| log.push(o));
        assert_eq!(
            log.len(),
            1,
            "the ack of the new 0 acked the old one: {log:?}"
        );
        assert_eq!(rec.spurious_losses, 0);
    }

    #[test]
    fn settled_packets_give_their_storage_back() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut log = Vec::new();
        assert_eq!(rec.sent.allocated_slots(), 0);
        // An idle connection: one keep-alive in flight at a time.
        for seq in 0..10u16 {
            rec.on_sent(t, 30, Vec::new(), true, &mut |o| log.push(o));
            assert!(rec.sent.allocated_slots() <= 4);
            rec.on_ack(t, seq, 0, Duration::ZERO, &mut |o| log.push(o));
            assert_eq!(rec.sent.allocated_slots(), 0, "idle after {seq}");
        }
        // A burst keeps its storage until the traffic is smaller.
        for _ in 0..300 {
            rec.on_sent(t, 30, vec![r(1)], true, &mut |o| log.push(o));
        }
        assert_eq!(rec.sent.allocated_slots(), 512);
        for ack in (41..310u16).step_by(33).chain([309]) {
            rec.on_ack(t, ack, u32::MAX, Duration::ZERO, &mut |o| log.push(o));
        }
        assert_eq!(rec.cc.in_flight(), 0, "{log:?}");
        assert_eq!(rec.sent.allocated_slots(), 512);
        rec.on_sent(t, 30, Vec::new(), true, &mut |o| log.push(o));
        rec.on_ack(t, 310, 0, Duration::ZERO, &mut |o| log.push(o));
        assert_eq!(rec.sent.allocated_slots(), 0);
        assert!(log.iter().all(|o| matches!(o, Outcome::Acked(_))));
    }

    #[test]
    fn refs_vectors_are_reused_and_the_pool_is_bounded() {
        let mut rec = recovery();
        // An empty vector saves nothing and is not kept.
        rec.recycle_refs(Vec::new());
        assert!(rec.spare_refs.is_empty());
        // One with storage comes back for the next packet.
        let v: Vec<MsgRef> = Vec::with_capacity(8);
        let storage = v.as_ptr();
        rec.recycle_refs(v);
        let again = rec.take_refs();
        assert_eq!(again.as_ptr(), storage);
        assert!(again.is_empty() && again.capacity() >= 8);
        // The pool keeps at most MAX_SPARE_REFS.
        for _ in 0..100 {
            rec.recycle_refs(Vec::with_capacity(4));
        }
        assert_eq!(rec.spare_refs.len(), MAX_SPARE_REFS);
    }

    #[test]
    fn an_ack_past_the_newest_sent_packet_is_ignored_whole() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut log = Vec::new();
        for id in 0..3 {
            rec.on_sent(t, 100, vec![r(id)], true, &mut |o| log.push(o));
        }
        // Sequence 3 was never sent; its ack bits name 0..=2, which were.
        let later = t + Duration::from_millis(10);
        rec.on_ack(later, 3, u32::MAX, Duration::ZERO, &mut |o| log.push(o));
        assert!(log.is_empty());
        assert_eq!(rec.cc.in_flight(), 300);
        rec.on_ack(later, 2, u32::MAX, Duration::ZERO, &mut |o| log.push(o));
        assert_eq!(log.len(), 3);
        assert_eq!(rec.cc.in_flight(), 0);
    }

    #[test]
    fn the_time_threshold_waits_nine_eighths_of_the_rtt() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut rec = recovery();
        let mut lost = Vec::new();
        let cb = |o: Outcome, lost: &mut Vec<u16>| {
            if let Outcome::Lost(seq, _) = o {
                lost.push(seq);
            }
        };
        rec.on_sent(t, 100, vec![r(0)], true, &mut |o| cb(o, &mut lost));
        rec.on_sent(t + ms(1), 100, vec![r(1)], true, &mut |o| cb(o, &mut lost));
        // Packet 1 is acked after 30 ms; packet 0, one behind it, is under
        // the packet threshold and lost only 9/8 of 30 ms after it was sent.
        rec.on_ack(t + ms(31), 1, 0, Duration::ZERO, &mut |o| cb(o, &mut lost));
        assert!(lost.is_empty());
        let deadline = t + Duration::from_micros(33_750);
        assert_eq!(rec.timer(), Some(deadline));
        rec.on_timeout(deadline - Duration::from_micros(1), &mut |o| {
            cb(o, &mut lost)
        });
        assert!(lost.is_empty());
        rec.on_timeout(deadline, &mut |o| cb(o, &mut lost));
        assert_eq!(lost, [0]);
    }

    #[test]
    fn probes_may_go_past_the_congestion_window() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut cb = |_: Outcome| {};
        for id in 0..20 {
            rec.on_sent(t, 1000, vec![r(id)], true, &mut cb);
        }
        assert!(!rec.can_send(1000));
        let deadline = rec.timer().expect("packets in flight");
        rec.on_timeout(deadline, &mut cb);
        // Two packets were declared lost; the rest still fill the window.
        assert!(rec.cc.in_flight() + 1000 > rec.cc.window());
        assert!(rec.can_send(1000), "a probe is owed");
        rec.on_sent(deadline, 1000, vec![r(20)], true, &mut cb);
        assert!(rec.can_send(1000), "two probes are owed");
        rec.on_sent(deadline, 1000, vec![r(21)], true, &mut cb);
        assert!(!rec.can_send(1000), "then the window applies again");
    }

    #[test]
    fn the_loss_rate_is_a_recent_weighted_average() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut cb = |_: Outcome| {};
        rec.on_sent(t, 100, vec![r(0)], true, &mut cb);
        rec.on_sent(t, 100, vec![r(1)], true, &mut cb);
        // The probe timeout declares both lost: two losses in an average
        // over about 64 packets.
        let deadline = rec.timer().expect("packets in flight");
        rec.on_timeout(deadline, &mut cb);
        assert_eq!(rec.lost_packets, 2);
        let two_losses = 1.0 - (63.0f64 / 64.0).powi(2);
        assert!(
            (rec.loss_rate - two_losses).abs() < 1e-12,
            "{}",
            rec.loss_rate
        );
        // Packet 1 arrives after all: that loss counts as a delivery.
        rec.on_ack(deadline, 1, 0, Duration::ZERO, &mut cb);
        assert_eq!((rec.lost_packets, rec.spurious_losses), (1, 1));
        let expected = two_losses * 63.0 / 64.0;
        assert!(
            (rec.loss_rate - expected).abs() < 1e-12,
            "{}",
            rec.loss_rate
        );
        // And the time threshold widens by 2/8 of the RTT, up to 17/8.
        assert_eq!(rec.time_threshold, TIME_THRESHOLD_EIGHTHS + 2);
        rec.on_ack(deadline, 1, 1, Duration::ZERO, &mut cb);
        assert_eq!(rec.time_threshold, TIME_THRESHOLD_EIGHTHS + 4);
        for _ in 0..10 {
            rec.on_spurious_loss(0, 100);
        }
        assert_eq!(rec.time_threshold, MAX_TIME_THRESHOLD_EIGHTHS);
    }

    #[test]
    fn each_probe_timeout_doubles_the_next_up_to_a_second() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut cb = |_: Outcome| {};
        for id in 0..10 {
            rec.on_sent(t, 100, vec![r(id)], true, &mut cb);
        }
        let base = rec.timer().expect("packets in flight") - t;
        assert!(base * 4 > MAX_PTO && base * 2 < MAX_PTO, "{base:?}");
        rec.on_timeout(t + base, &mut cb);
        assert_eq!(rec.timer(), Some(t + base * 2));
        rec.on_timeout(t + base * 2, &mut cb);
        assert_eq!(rec.timer(), Some(t + MAX_PTO));
        // An ack resets the backoff.
        rec.on_ack(t + MAX_PTO, 9, 0, Duration::ZERO, &mut cb);
        assert_eq!(rec.pto_count, 0);
    }

    #[test]
    fn acks_of_unsent_packets_are_ignored() {
        let t = Instant::now();
        let mut rec = recovery();
        let mut calls = 0;
        let mut cb = |_| calls += 1;
        rec.on_ack(t, 5, u32::MAX, Duration::ZERO, &mut cb);
        rec.on_sent(t, 100, vec![r(0)], true, &mut cb);
        rec.on_ack(t, 40, u32::MAX, Duration::ZERO, &mut cb);
        assert_eq!(calls, 0);
    }
}
