//! Control messages (acks, pings and keep-alives) and the exceptions
//! to the id bounds: the queue and its writer, the probe Ping after a
//! resend, the exempt ack, and the filler Pings.

use std::time::Instant;

use legume_core::Writer;

use super::{V4Connection, MAX_BACKOFF, MAX_ID_SPAN, MAX_ID_SPAN_EVER};
use crate::connection::Engine;
use crate::legacy::wire::{Control, Header, HEADER_LEN};

/// The bound for acks, pings and keep-alive answers, still inside legume
/// 0.5's memory of 1,000 ids (acks take ids too). There is no time limit on
/// the wait: a slow legume 0.5 peer (one `update()` can take seconds on a
/// loaded machine, while it resends its own messages, each copy of which
/// legume-rs acks) acks late but acks, and letting ids run past its memory
/// meanwhile made it deliver resends twice. What ends a wait is an ack, a
/// Pong proving an ack lost (see `V4Connection::prove`), or, between two
/// legume-rs peers both at the bound, the occasional ack let through by
/// `write_exempt_ack`.
const MAX_CONTROL_ID_SPAN: u16 = 900;
/// Pings remembered until their Pong comes back (older ones are forgotten).
const MAX_PINGS: usize = 16;
/// Control messages queued at most; more are dropped (a peer resends what
/// is not acked, and answers to pings are only measurements). Acks are
/// queued once per id.
const MAX_CONTROL_QUEUE: usize = 4096;

/// A Ping sent and not yet answered.
#[derive(Clone, Copy)]
pub(super) struct SentPing {
    pub(super) id: u16,
    pub(super) at: Instant,
    pub(super) tx: u64,
}

impl V4Connection {
    /// Queues a control message: an ack only if none for that id is queued,
    /// nothing once `MAX_CONTROL_QUEUE` are.
    pub(super) fn push_control(&mut self, c: Control) {
        if self.control.len() >= MAX_CONTROL_QUEUE {
            return;
        }
        if let Control::Ack(id) = c {
            if !self.queued_acks.insert(id) {
                return;
            }
        }
        self.control.push_back(c);
    }

    /// The id span at which control messages wait: `MAX_CONTROL_ID_SPAN`, or
    /// the hard bound for a peer that re-acks (`peer_reacks`), so that two
    /// legume-rs peers never hold each other's acks back.
    fn control_span_limit(&self) -> u16 {
        if self.peer_reacks {
            MAX_ID_SPAN_EVER
        } else {
            MAX_CONTROL_ID_SPAN
        }
    }

    /// Whether acks wait at the control bound, for `write_exempt_ack`.
    pub(super) fn exempt_ack_waiting(&self) -> bool {
        self.validated
            && self.is_connected()
            && !self.queued_acks.is_empty()
            && (self.control_span_limit()..MAX_ID_SPAN_EVER).contains(&self.id_span())
    }

    /// Writes queued control messages in order, with the probe Ping first,
    /// until the datagram is full or the ids reach the control bound
    /// (then only an exempt ack may go).
    pub(super) fn write_control(&mut self, now: Instant, w: &mut Writer<'_>) {
        self.write_probe(now, w);
        while let Some(&c) = self.control.front() {
            if w.remaining() < HEADER_LEN + c.len() {
                return;
            }
            if self.id_span() >= self.control_span_limit() {
                self.write_exempt_ack(now, w);
                return;
            }
            self.exempt_backoff = 0;
            self.control.pop_front();
            self.write_one_control(now, c, w);
        }
    }

    /// Writes `c` behind a new id, noting acks and pings as sent.
    fn write_one_control(&mut self, now: Instant, c: Control, w: &mut Writer<'_>) {
        match c {
            Control::Ack(id) => {
                self.queued_acks.remove(&id);
            }
            Control::Ping(id) => {
                if self.pings.len() == MAX_PINGS {
                    self.pings.pop_front();
                }
                self.pings.push_back(SentPing {
                    id,
                    at: now,
                    tx: self.next_tx,
                });
                self.last_ping_tx = self.next_tx;
            }
            _ => {}
        }
        let header = Header {
            id: self.next_id(),
            seq: 0,
            flags: 0,
        };
        let _ = header.write(w);
        let _ = c.write(w);
    }

    /// While new messages wait at `MAX_ID_SPAN`: a Ping right after each
    /// resend of the oldest unacked message, past the control bound. Its
    /// Pong proves (`prove`) whether the peer read that copy without acking
    /// it, which for legume 0.5 means its one ack was lost.
    fn write_probe(&mut self, now: Instant, w: &mut Writer<'_>) {
        if !self.is_connected()
            || w.remaining() < HEADER_LEN + Control::Ping(0).len()
            || self.id_span() < MAX_ID_SPAN
            || self.id_span() >= MAX_ID_SPAN_EVER
        {
            return;
        }
        let Some(oldest) = self
            .in_flight_order
            .front()
            .and_then(|id| self.in_flight.get(id))
        else {
            return;
        };
        if oldest.sends < 2 || oldest.last_tx < self.last_ping_tx {
            return;
        }
        self.ping_id = self.ping_id.wrapping_add(1);
        self.write_one_control(now, Control::Ping(self.ping_id), w);
    }

    /// While acks wait at `MAX_CONTROL_ID_SPAN`: now and then (backing off
    /// to 32 resend delays) the ack of the oldest queued id goes anyway.
    /// The peer resends its oldest unacked message, so that is the ack it
    /// waits for; if it is a legume-rs peer held at its own bound by that
    /// message, this frees it, and its acks free this side. legume 0.5
    /// never waits, so there this costs an id per wait at most.
    fn write_exempt_ack(&mut self, now: Instant, w: &mut Writer<'_>) {
        if now < self.next_exempt
            || !self.exempt_ack_waiting()
            || w.remaining() < HEADER_LEN + Control::Ack(0).len()
        {
            return;
        }
        let newest = self.seen.newest().unwrap_or(0);
        let oldest = self
            .control
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Control::Ack(id) => Some((newest.wrapping_sub(*id), i)),
                _ => None,
            })
            .max();
        let Some((_, i)) = oldest else {
            return;
        };
        let Some(c) = self.control.remove(i) else {
            return;
        };
        self.write_one_control(now, c, w);
        let delay = self
            .resend_delay(1)
            .saturating_mul(1 << self.exempt_backoff);
        self.next_exempt = now + delay;
        self.exempt_backoff = (self.exempt_backoff + 1).min(MAX_BACKOFF);
    }

    /// Pings, answered and otherwise ignored by legume 0.5 (and by legume-rs,
    /// which matches Pongs by id), until the ids reach `filler_target`: the
    /// only way to make legume 0.5 take a message whose one ack it lost
    /// (delivering it a second time, which `Stats::lost_acks` counts) when
    /// no other traffic moves the ids on: they go only while every unacked
    /// message is passed and nothing waits to be sent. 8 bytes each.
    pub(super) fn write_fillers(&mut self, w: &mut Writer<'_>) {
        let Some(target) = self.filler_target else {
            return;
        };
        while w.remaining() >= HEADER_LEN + Control::Ping(0).len() {
            let ahead = target.wrapping_sub(self.last_id);
            if ahead == 0 || ahead >= 1 << 15 {
                self.filler_target = None;
                return;
            }
            if !self.unsent.is_empty() || !self.in_flight_order.is_empty() {
                // Other messages are on their way: they move the ids on,
                // and fillers must not take their room under the bounds.
                return;
            }
            self.ping_id = self.ping_id.wrapping_add(1);
            let header = Header {
                id: self.next_id(),
                seq: 0,
                flags: 0,
            };
            let _ = header.write(w);
            let _ = Control::Ping(self.ping_id).write(w);
        }
    }
}
