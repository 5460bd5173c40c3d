//! The send queue: user messages waiting for their first transmission,
//! and that transmission (plus the client's ConnectRequest, sent at the
//! handshake rate).

use std::cmp::Reverse;
use std::time::Instant;

use legume_core::Writer;

use super::{InFlight, Phase, V4Connection, CONNECT_REQUEST_ID, MAX_ID_SPAN, MAX_IN_FLIGHT_BYTES};
use crate::legacy::wire::{Header, HEADER_LEN};

/// A user message waiting for its first transmission.
pub(super) struct Queued {
    /// Type id and fields.
    bytes: Vec<u8>,
    flags: u8,
    seq: u16,
}

impl V4Connection {
    /// Queues a message for its first transmission.
    pub(super) fn queue(&mut self, bytes: Vec<u8>, flags: u8, seq: u16) {
        self.unsent_bytes += bytes.len();
        self.unsent.push_back(Queued { bytes, flags, seq });
    }

    /// Client, connecting: the ConnectRequest when it is due, resent at the
    /// fixed handshake rate until the accept (or its ack) arrives. At 50%
    /// loss each way a request and its answer both get through one time in
    /// four; the resend timer's backoff to 1 s left too few tries within the
    /// connect timeout.
    pub(super) fn write_connect_request(&mut self, now: Instant, w: &mut Writer<'_>) {
        let Phase::Connecting { next_request, .. } = &mut self.phase else {
            return;
        };
        if now < *next_request {
            return;
        }
        let Some(m) = self.in_flight.get_mut(&CONNECT_REQUEST_ID) else {
            return;
        };
        if w.remaining() < HEADER_LEN + m.bytes.len() {
            return;
        }
        *next_request = now + self.config.effective_connect_retry();
        let _ = m.header.write(w);
        let _ = w.put_slice(&m.bytes);
        if m.sends > 0 {
            self.stats.resends += 1;
        }
        m.sends += 1;
        m.sent_at = Some(now);
    }

    /// Writes queued messages for the first time, in order, while they fit
    /// in the datagram and under the id span and in-flight byte bounds;
    /// reliable ones enter the in-flight list.
    pub(super) fn write_new(&mut self, now: Instant, w: &mut Writer<'_>) {
        while let Some(q) = self.unsent.front() {
            let reliable = q.flags != 0;
            if w.remaining() < HEADER_LEN + q.bytes.len()
                || self.id_span() >= MAX_ID_SPAN
                || (reliable && self.in_flight_bytes + q.bytes.len() > MAX_IN_FLIGHT_BYTES)
            {
                return;
            }
            let Some(q) = self.unsent.pop_front() else {
                return;
            };
            self.unsent_bytes -= q.bytes.len();
            let header = Header {
                id: self.next_id(),
                seq: q.seq,
                flags: q.flags,
            };
            let _ = header.write(w);
            let _ = w.put_slice(&q.bytes);
            if reliable {
                self.first_sends += 1;
                self.in_flight_bytes += q.bytes.len();
                self.in_flight_order.push_back(header.id);
                let due = now + self.resend_delay(1);
                self.resend.push(Reverse((due, header.id)));
                self.in_flight.insert(
                    header.id,
                    InFlight {
                        header,
                        bytes: q.bytes,
                        sent_at: Some(now),
                        sends: 1,
                        last_tx: self.next_tx,
                        due,
                        passed: false,
                    },
                );
            }
        }
    }
}
