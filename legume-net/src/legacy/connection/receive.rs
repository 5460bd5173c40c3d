//! The receive path: each message of a datagram, by kind, and in-order
//! delivery of user messages.

use std::time::{Duration, Instant};

use legume_core::AnyMessage;

use super::{Phase, Role, V4Connection, CONNECT_REQUEST_ID};
use crate::connection::Engine;
use crate::event::{DisconnectReason, Event};
use crate::legacy::wire::{Body, Control, Header};
use crate::observe;

/// The reason reported for a legume rejection, which carries none.
const REJECTED_REASON: &str = "rejected by server (legume v4 has no reason field)";

impl V4Connection {
    /// One message of a datagram: acked if it asks for it, then handled
    /// by kind unless it is a duplicate.
    pub(super) fn handle_message(&mut self, now: Instant, header: Header, body: Body) {
        let fresh = self.seen.insert(header.id);
        if header.wants_ack() {
            // Acked every time, duplicates included: the first ack may have
            // been lost (legume 0.5 acks once and leaves its peer resending).
            // Not twice while one is still queued.
            self.push_control(Control::Ack(header.id));
        }
        if !fresh {
            self.stats.dropped_duplicate += 1;
            return;
        }
        let connecting = matches!(self.phase, Phase::Connecting { .. });
        match body {
            Body::Ack(id) => self.handle_ack(now, id),
            Body::Ping(id) => self.push_control(Control::Pong(id)),
            Body::Pong(id) => self.handle_pong(now, id),
            Body::KeepAliveRequest(id) => {
                self.stats.keepalive_count += 1;
                self.push_control(Control::KeepAliveResponse(id));
            }
            Body::KeepAliveResponse(id) => self.handle_keepalive_response(now, id),
            Body::Accepted => {
                if connecting {
                    self.become_connected(now);
                }
            }
            Body::Rejected if connecting => self.handle_rejected(),
            Body::Disconnected if !connecting => {
                self.close(DisconnectReason::Remote("peer disconnected".to_owned()), 0);
            }
            // The server endpoint admitted this connection on it; a copy
            // is a resend whose ack was lost (acked again above).
            Body::ConnectRequest if self.role == Role::Server => {}
            Body::User(msg) if !self.is_closed() => {
                // A server sends messages only to peers it accepted: data
                // before the accept means the accept was lost or reordered.
                if connecting {
                    self.become_connected(now);
                }
                if header.is_ordered() {
                    self.receive_ordered(header.seq, msg);
                } else {
                    self.deliver(msg);
                }
            }
            _ => self.stats.dropped_invalid += 1,
        }
    }

    /// The answer to one of our Pings: a round-trip sample, and proof that
    /// the peer read every datagram sent before that Ping.
    fn handle_pong(&mut self, now: Instant, id: u16) {
        if let Some(i) = self.pings.iter().position(|p| p.id == id) {
            let ping = self.pings[i];
            self.pings.drain(..=i);
            self.rtt
                .update(now.saturating_duration_since(ping.at), Duration::ZERO);
            self.prove(ping.tx, true);
        }
    }

    /// The answer to the server's last keep-alive request: a round-trip
    /// sample (answers to older requests are ignored).
    fn handle_keepalive_response(&mut self, now: Instant, id: u16) {
        if self.keepalive.0 == id {
            if let Some(sent) = self.keepalive.1.take() {
                self.rtt
                    .update(now.saturating_duration_since(sent), Duration::ZERO);
            }
        }
    }

    /// The server refused our ConnectRequest: closed, with only acks left
    /// to send.
    fn handle_rejected(&mut self) {
        observe::log_rejected(self.peer, REJECTED_REASON);
        self.events.push_back(Event::Rejected {
            reason: REJECTED_REASON.to_owned(),
        });
        self.phase = Phase::Closed {
            reason: DisconnectReason::Remote(REJECTED_REASON.to_owned()),
            copies: 0,
        };
        self.control.retain(|c| matches!(c, Control::Ack(_)));
    }

    /// The client's handshake is over: the accept, or a message that
    /// implies it, arrived.
    fn become_connected(&mut self, now: Instant) {
        // The accept answers the request: stop resending it even if its ack
        // was lost, or a late copy could open a second connection on a
        // server that has since closed this one.
        if let Some(m) = self.in_flight.remove(&CONNECT_REQUEST_ID) {
            self.in_flight_bytes -= m.bytes.len();
            self.pop_acked_front();
        }
        self.phase = Phase::Connected;
        self.next_ping = now + self.config.keepalive_interval();
        self.events.push_back(Event::Connected);
        observe::log_connected(self.peer, 0, self.rtt());
    }

    /// An in-order message: delivered if it is the next sequence (with
    /// those buffered behind it), buffered if it is ahead (closing past
    /// `max_reorder_bytes`), dropped if already delivered.
    fn receive_ordered(&mut self, seq: u16, msg: Box<dyn AnyMessage>) {
        let ahead = seq.wrapping_sub(self.expected_seq);
        if ahead >= 1 << 15 {
            // Already delivered: a duplicate by sequence.
            self.stats.dropped_duplicate += 1;
            return;
        }
        if ahead > 0 {
            let size = msg.message_len();
            if self.reorder_bytes + size > self.config.limits.max_reorder_bytes {
                self.close(
                    DisconnectReason::LimitExceeded("max_reorder_bytes".to_owned()),
                    0,
                );
                return;
            }
            if self.reorder.insert(seq, (msg, size)).is_none() {
                self.reorder_bytes += size;
            }
            return;
        }
        self.deliver(msg);
        self.expected_seq = self.expected_seq.wrapping_add(1);
        while let Some((msg, size)) = self.reorder.remove(&self.expected_seq) {
            self.reorder_bytes -= size;
            self.deliver(msg);
            self.expected_seq = self.expected_seq.wrapping_add(1);
        }
    }

    /// Hands a user message to the application.
    fn deliver(&mut self, msg: Box<dyn AnyMessage>) {
        self.stats.in_messages += 1;
        self.events.push_back(Event::Message(msg));
    }
}
