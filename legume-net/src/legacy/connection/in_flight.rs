//! Reliable messages in flight, from their first send to their ack:
//! the resend schedule and its budget, the handling of acks, and the
//! proofs (an ack of a later message, a Pong) that a message or its one
//! ack was lost.

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use legume_core::Writer;

use super::{V4Connection, MAX_BACKOFF, MAX_IN_FLIGHT_BYTES};
use crate::legacy::wire::{Header, HEADER_LEN};

/// legume 0.5's memory of received ids, with a margin: ids this far past a
/// message are past its memory.
const LEGUME_MEMORY: u16 = 1024;
/// legume 0.5's memory exactly (`RECENT_MESSAGE_LIST_SIZE`): it cannot ack
/// one of our ids twice before we have sent this many more.
const LEGUME_RECENT: u16 = 1000;
/// Shortest resend delay. legume's `MINIMUM_RESEND_DELAY_MS` is 10 ms, but
/// legume's delay is in effect about 1000 x the RTT (a unit mix-up), and a
/// Python peer takes tens of milliseconds to work through a burst: shorter
/// delays only resend what is still being read.
const MIN_RESEND_DELAY: Duration = Duration::from_millis(50);
/// Longest resend delay after repeated losses of one message.
const MAX_RESEND_DELAY: Duration = Duration::from_secs(1);
/// Datagrams of resends per resend delay while acks come back; one while
/// they do not. Resending everything that is due at once would bury a slow
/// peer: legume 0.5 reads its socket until it is empty before it writes
/// a single ack, so a flood of resends keeps it from ever acking.
const RESEND_DATAGRAMS: usize = 4;

/// A reliable message sent and not yet acked.
pub(super) struct InFlight {
    pub(super) header: Header,
    pub(super) bytes: Vec<u8>,
    pub(super) sent_at: Option<Instant>,
    pub(super) sends: u32,
    /// The datagram (`V4Connection::next_tx`) of the last copy.
    pub(super) last_tx: u64,
    /// When it is resent; entries of `V4Connection::resend` with another
    /// time are stale.
    pub(super) due: Instant,
    /// Proved unacked by a Pong: the peer read everything sent before the
    /// Ping, so the message's copies or the peer's one ack of it were lost.
    /// It is still resent, but no longer holds the ids back.
    pub(super) passed: bool,
}

impl V4Connection {
    /// The peer acked our message `id`: it leaves the in-flight list, and
    /// an ack of a message sent once also proves which datagram was read
    /// and gives a round-trip sample.
    pub(super) fn handle_ack(&mut self, now: Instant, id: i32) {
        let Ok(id) = u16::try_from(id) else {
            self.stats.dropped_invalid += 1;
            return;
        };
        let again = !self.acked.insert(id);
        if again && self.last_id.wrapping_sub(id) < LEGUME_RECENT {
            self.peer_reacks = true;
        }
        let Some(m) = self.in_flight.remove(&id) else {
            // A late ack of a message already acked.
            return;
        };
        self.in_flight_bytes -= m.bytes.len();
        self.acked_in_window = true;
        // The peer took these bytes in: as many may be resent now.
        self.ack_credit = (self.ack_credit + HEADER_LEN + m.bytes.len()).min(MAX_IN_FLIGHT_BYTES);
        if m.sends == 1 {
            // Only a message sent once says which datagram was read.
            self.prove(m.last_tx, false);
            self.backoff = 0;
            if let Some(sent) = m.sent_at {
                self.rtt
                    .update(now.saturating_duration_since(sent), Duration::ZERO);
            }
            self.loss *= 0.95;
        }
        self.pop_acked_front();
    }

    /// Drops acked and passed ids from the front of the send order.
    pub(super) fn pop_acked_front(&mut self) {
        while let Some(front) = self.in_flight_order.front() {
            if self.in_flight.get(front).is_some_and(|m| !m.passed) {
                break;
            }
            self.in_flight_order.pop_front();
        }
    }

    /// Records that the peer has read every datagram before `tx`: with
    /// `pass`, proved by a Pong, otherwise by the ack of a message sent once
    /// in `tx`. Applied by `apply_proofs`.
    pub(super) fn prove(&mut self, tx: u64, pass: bool) {
        self.proof_tx = self.proof_tx.max(tx);
        if pass {
            self.pass_tx = self.pass_tx.max(tx);
        }
    }

    /// Resends every unacked message last sent before `proof_tx` (its copy
    /// or its ack was lost: the peer has read what came after it and acked
    /// that) once it is older than the loss delay, and passes those last
    /// sent before `pass_tx`: a legume 0.5 peer acks a message once, and
    /// when that ack is lost only ids moving on (after which it delivers the
    /// message again, and acks it) can end the wait. Messages whose copies
    /// were all lost are passed too, which is harmless: the peer never saw
    /// them.
    pub(super) fn apply_proofs(&mut self, now: Instant) {
        if (self.proof_tx, self.pass_tx) == self.scanned {
            return;
        }
        self.scanned = (self.proof_tx, self.pass_tx);
        let mut passed = 0;
        let delay = self.rtt.loss_delay(9);
        // All of them: passed ones have left `in_flight_order`.
        for (id, m) in &mut self.in_flight {
            if m.sends == 0 {
                continue;
            }
            if m.last_tx < self.pass_tx {
                if !m.passed {
                    m.passed = true;
                    passed += 1;
                } else {
                    // Proved unacked again by a later Pong: legume most
                    // likely has it and will not ack it until its memory of
                    // ids has moved past it (if it does not have it, the
                    // fillers cost 8 KiB and no duplicate).
                    let target = m.header.id.wrapping_add(LEGUME_MEMORY);
                    let later = |t: u16| t.wrapping_sub(target) < 1 << 15;
                    if !self.filler_target.is_some_and(later) {
                        self.filler_target = Some(target);
                    }
                }
            }
            if m.last_tx < self.proof_tx {
                // Lost once it is older than 9/8 of the round trip (RFC
                // 9002's time threshold), so that reordering is not loss.
                let lost_at = m.sent_at.map_or(now, |t| t + delay).max(now);
                if lost_at < m.due {
                    m.due = lost_at;
                    self.resend.push(Reverse((lost_at, *id)));
                }
            }
        }
        self.stats.lost_acks += passed;
        self.pop_acked_front();
    }

    /// Writes the messages whose resend is due, oldest deadline first,
    /// within the datagram's room and the resend budget.
    pub(super) fn write_resends(&mut self, now: Instant, w: &mut Writer<'_>) {
        while let Some(&Reverse((due, id))) = self.resend.peek() {
            if due > now {
                return;
            }
            let Some(m) = self.in_flight.get(&id) else {
                self.resend.pop();
                continue;
            };
            if m.due != due {
                // Rescheduled since this entry was pushed.
                self.resend.pop();
                continue;
            }
            let size = HEADER_LEN + m.bytes.len();
            let sends = m.sends;
            if w.remaining() < size {
                if w.position() == 0 {
                    // Held back by the amplification budget, not by a full
                    // datagram: try again later rather than spin.
                    self.resend.pop();
                    let delay = self.resend_delay(sends.max(1));
                    self.schedule(id, now + delay);
                }
                return;
            }
            if sends > 0 && !self.take_resend_budget(now, size) {
                // Over this window's budget: wait for the next window.
                self.resend.pop();
                let end = self.resend_window_end;
                self.schedule(id, end);
                continue;
            }
            self.resend.pop();
            let sends = sends + 1;
            if sends > 1 {
                self.stats.resends += 1;
                self.loss = self.loss * 0.95 + 0.05;
            }
            let delay = self.resend_delay(sends);
            let tx = self.next_tx;
            if let Some(m) = self.in_flight.get_mut(&id) {
                if m.passed {
                    self.stats.lost_ack_resends += 1;
                }
                let _ = m.header.write(w);
                let _ = w.put_slice(&m.bytes);
                m.sent_at = Some(now);
                m.sends = sends;
                m.last_tx = tx;
            }
            self.schedule(id, now + delay);
        }
    }

    /// Sets when message `id` is resent next.
    fn schedule(&mut self, id: u16, due: Instant) {
        if let Some(m) = self.in_flight.get_mut(&id) {
            m.due = due;
            self.resend.push(Reverse((due, id)));
        }
    }

    /// Takes `size` bytes from the resend budget, opening a new window (and
    /// backing off when the last one brought no ack) when this one is over.
    fn take_resend_budget(&mut self, now: Instant, size: usize) -> bool {
        if self.ack_credit >= size {
            self.ack_credit -= size;
            return true;
        }
        if now >= self.resend_window_end {
            if !self.acked_in_window {
                // Nothing taken in since: credit earned before a stall must
                // not flood the stalled peer.
                self.ack_credit = 0;
                if self.resend_budget == 0 {
                    self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
                }
            }
            self.acked_in_window = false;
            let datagrams = if self.backoff == 0 {
                RESEND_DATAGRAMS
            } else {
                1
            };
            self.resend_budget = datagrams * self.mtu;
            self.resend_window_end = now + self.resend_delay(1);
        }
        if self.resend_budget < size {
            self.resend_budget = 0;
            return false;
        }
        self.resend_budget -= size;
        true
    }

    /// How long a message sent `sends` times waits before its next copy.
    pub(super) fn resend_delay(&self, sends: u32) -> Duration {
        // 1.5 x srtt: legume resends after one RTT, which turns any late
        // datagram into a resend.
        let base = (self.rtt.srtt() * 3 / 2 + 4 * self.rtt.rttvar()).max(MIN_RESEND_DELAY);
        let doublings = (sends.saturating_sub(1) + self.backoff).min(6);
        base.saturating_mul(1 << doublings)
            .min(MAX_RESEND_DELAY.max(base))
    }
}
