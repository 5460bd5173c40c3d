//! The send queue: user messages waiting for their first transmission,
//! and that transmission (plus the client's ConnectRequest, sent at the
//! handshake rate).

use std::cmp::Reverse;
use std::time::Instant;

use legume_core::Writer;

use super::{InFlight, Phase, V4Connection, CONNECT_REQUEST_ID, MAX_ID_SPAN, MAX_IN_FLIGHT_BYTES};
use crate::connection::Engine;
use crate::delivery::Delivery;
use crate::event::SendError;
use crate::legacy::wire::{Header, FLAG_ORDERED, FLAG_RELIABLE, HEADER_LEN};

/// A user message waiting for its first transmission.
pub(super) struct Queued {
    /// Type id and fields.
    bytes: Vec<u8>,
    flags: u8,
    seq: u16,
}

impl V4Connection {
    /// Whether a message of `len` encoded bytes may be queued now: legume
    /// 0.5 cannot fragment, so every delivery is bound by one datagram.
    pub(super) fn check_send(&self, len: usize) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::NotConnected);
        }
        let max = self.max_unreliable_size();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let queued = self.unsent_bytes + self.in_flight_bytes;
        if queued + len > self.config.limits.max_send_queue_bytes {
            return Err(SendError::QueueFull {
                queued,
                max: self.config.limits.max_send_queue_bytes,
            });
        }
        Ok(())
    }

    /// Queues an encoded message that passed [`check_send`](Self::check_send),
    /// with legume's flags for its delivery.
    pub(super) fn push_message(&mut self, bytes: Vec<u8>, delivery: Delivery) {
        let (flags, seq) = match delivery {
            Delivery::Unreliable => (0, 0),
            Delivery::Reliable => (FLAG_RELIABLE, 0),
            // As legume's send_inorder_message: the in-order flag alone,
            // which legume treats as reliable too.
            Delivery::ReliableOrdered => {
                self.last_seq = self.last_seq.wrapping_add(1);
                (FLAG_ORDERED, self.last_seq)
            }
        };
        self.queue(bytes, flags, seq);
        self.stats.out_messages += 1;
    }

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
