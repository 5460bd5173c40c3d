//! The native engine's transmit path: the handshake, DATA and DISCONNECT
//! packets it writes. `Engine::poll_transmit` in `native.rs` picks which.

use std::time::Instant;

use legume_core::Writer;

use super::{NativeConnection, Phase};
use crate::channel::MsgRef;
use crate::event::DisconnectReason;
use crate::observe::{PeerLabel, CONNECTION};
use crate::packet::{self, DataHeader, Packet, DATA_HEADER_LEN};

impl NativeConnection {
    /// Closed: the next of the DISCONNECT copies still to send.
    pub(super) fn transmit_disconnect(&mut self, buf: &mut [u8]) -> Option<usize> {
        let Phase::Closed { reason, copies } = &mut self.state else {
            return None;
        };
        *copies = copies.checked_sub(1)?;
        let reason = match reason {
            DisconnectReason::Local(r) => r.as_str(),
            _ => "",
        };
        self.protection.emit_disconnect(self.session, reason, buf)
    }

    /// Connecting: the connect request or challenge response, when a retry
    /// is due or a first challenge has just come.
    pub(super) fn transmit_handshake(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let Phase::Connecting {
            send_now,
            next_retry,
            challenge,
            only_request_sent,
            requests_sent,
            ..
        } = &mut self.state
        else {
            return None;
        };
        if !*send_now {
            return None;
        }
        *send_now = false;
        // A fixed rate, no backoff: each handshake round trip must get
        // through loss in both directions, twice, within the connect
        // timeout (`docs/PROTOCOL.md` section 6).
        *next_retry = now + self.config.effective_connect_retry();
        if challenge.is_none() {
            *requests_sent += 1;
            *only_request_sent = (*requests_sent == 1).then_some(now);
        }
        let challenge = *challenge;
        self.handshake_sends += 1;
        let attempt = self.handshake_sends;
        let kind = if challenge.is_some() {
            "challenge response"
        } else {
            "connect request"
        };
        // The first packet, then one line a second at the default rate:
        // enough to follow a slow handshake.
        if attempt == 1 || attempt % 10 == 0 {
            tracing::debug!(target: CONNECTION, peer = %PeerLabel(self.peer), attempt,
                "handshake: sending {kind} to {} (packet {attempt})", PeerLabel(self.peer));
        }
        self.protection
            .emit_handshake(self.nonce, challenge, &self.handshake_extension, buf)
    }

    /// Whether anything waits for a DATA packet: a ping or messages.
    fn has_data(&self) -> bool {
        self.ping_due || self.channels.as_ref().is_some_and(|c| c.has_data())
    }

    /// When the pacer will let waiting data out, if it alone holds it back
    /// (the window has room): a deadline for `poll_timeout`, so the driver
    /// wakes to send it.
    pub(super) fn paced_send_time(&self) -> Option<Instant> {
        // Cheapest test first: this runs on every poll_timeout.
        let mtu = self.config.effective_mtu();
        let at = self.recovery.cc.next_paced_send(mtu)?;
        (self.has_data() && self.recovery.can_send(mtu)).then_some(at)
    }

    /// Whether the due ack waits for the DATA packet the pacer lets out
    /// within `max_ack_delay` of the ack's deadline, instead of going alone:
    /// pacing must not double the packets a two-way exchange sends.
    pub(super) fn ack_rides_paced_data(&self) -> bool {
        let (Some(paced), Some(due)) = (self.paced_send_time(), self.acks.deadline()) else {
            return false;
        };
        paced <= due + self.config.max_ack_delay
    }

    /// Connected: the next DATA packet, sealed, if there is data the
    /// congestion window and the pacer let out, or an ack is due.
    pub(super) fn transmit_data(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mtu = self.config.effective_mtu().min(buf.len());
        // Stale unreliable messages go before they can count as data.
        if let Some(channels) = self.channels.as_deref_mut() {
            channels.drop_expired(now);
            channels.take_feedback(&mut self.events);
        }
        let overhead = self.protection.overhead();
        if mtu < DATA_HEADER_LEN + overhead + self.frag_size.min(64) {
            return None;
        }
        // Acks owed for packets a burst pushed out of the current ack's
        // reach go first, each alone in an ack-only packet.
        let owed = self.acks.take_pending(now);
        let has_data = self.has_data();
        if !has_data {
            self.recovery.cc.on_app_limited();
        }
        let send_data = owed.is_none()
            && has_data
            && self.recovery.can_send(mtu)
            && self.recovery.pacing_allows(now, mtu);
        if owed.is_none() && !send_data && (!self.acks.ack_due(now) || self.ack_rides_paced_data())
        {
            return None;
        }
        let (ack, ack_bits, ack_delay) = owed.unwrap_or_else(|| self.acks.fields(now));
        let header = DataHeader {
            session: self.session,
            seq: self.recovery.next_seq(),
            ack,
            ack_bits,
            ack_delay,
        };
        let header_len = Packet::Data {
            header,
            frames: &[],
        }
        .emit(buf)
        .ok()?;
        let mut refs = self.recovery.take_refs();
        let mut w = Writer::new(&mut buf[header_len..mtu - overhead]);
        if send_data
            && self
                .write_frames(&mut w, header.seq, now, &mut refs)
                .is_err()
        {
            // Invariant: writers check room before each frame; an error here
            // would be a bug, and sending nothing is the safe reaction.
            self.recovery.recycle_refs(refs);
            return None;
        }
        let ack_eliciting = w.position() > 0;
        let plain_len = header_len + w.position();
        let sealed = self
            .protection
            .seal_data(self.session, header.seq, buf, plain_len);
        let Some(len) = sealed else {
            // Invariant: room for the overhead was left above.
            self.recovery.recycle_refs(refs);
            return None;
        };
        if owed.is_none() {
            self.acks.on_ack_sent();
        }
        match self.channels.as_deref_mut() {
            Some(channels) => {
                self.recovery
                    .on_sent(now, len, refs, ack_eliciting, &mut |o| {
                        channels.on_outcome(o)
                    });
                channels.take_feedback(&mut self.events);
            }
            None => self
                .recovery
                .on_sent(now, len, refs, ack_eliciting, &mut |_| {}),
        }
        if ack_eliciting {
            self.last_eliciting_sent = now;
        }
        self.stats.out_packets += 1;
        self.stats.out_bytes += len as u64;
        Some(len)
    }

    /// Fills a packet: a due ping, then the channels' frames as their
    /// scheduler picks them (`docs/PROTOCOL.md` 4, "Scheduling").
    fn write_frames(
        &mut self,
        w: &mut Writer<'_>,
        seq: u16,
        now: Instant,
        refs: &mut Vec<MsgRef>,
    ) -> Result<(), legume_core::EncodeError> {
        if self.ping_due {
            packet::write_ping(w)?;
            self.ping_due = false;
            self.stats.keepalive_count += 1;
        }
        match self.channels.as_deref_mut() {
            Some(channels) => channels.write_frames(w, seq, now, refs),
            None => Ok(()),
        }
    }
}
