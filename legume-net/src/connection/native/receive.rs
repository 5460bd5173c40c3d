//! The native engine's receive path: a parsed packet's effect on the
//! connection (handshake replies, DATA and its frames, delivery to the app).
//! `Engine::handle_datagram` in `native.rs` routes each packet here.

use std::time::{Duration, Instant};

use super::{NativeConnection, Phase, DISCONNECT_COPIES};
use crate::ack::SeqCheck;
use crate::channel::{frame_fits, Arrival, ChannelConfig, Channels};
use crate::connection::Engine;
use crate::event::{DisconnectReason, Event};
use crate::observe::{self, PeerLabel, CONNECTION};
use crate::packet::{DataHeader, Frame, Frames};

impl NativeConnection {
    /// Client: a CHALLENGE to this attempt; its cookie goes into the next
    /// response, and the first one gives the first round-trip sample.
    pub(super) fn handle_challenge(&mut self, now: Instant, issued_at: u64, cookie: [u8; 16]) {
        let Phase::Connecting {
            challenge,
            send_now,
            only_request_sent,
            ..
        } = &mut self.state
        else {
            return;
        };
        self.stats.in_packets += 1;
        if challenge.is_none() {
            tracing::debug!(target: CONNECTION, peer = %PeerLabel(self.peer),
                "challenge received; answering it");
            if let Some(sent) = only_request_sent.take() {
                self.recovery
                    .rtt
                    .update(now.saturating_duration_since(sent), Duration::ZERO);
            }
            // The first challenge is answered at once; challenges to other
            // copies of the request only refresh the cookie, so the rate
            // stays one packet per retry interval.
            *send_now = true;
        }
        *challenge = Some((issued_at, cookie));
    }

    /// Client: the server accepted the connection (an authentic ACCEPT).
    pub(super) fn handle_accept(&mut self, now: Instant, session: u32) {
        if let Phase::Connecting { .. } = self.state {
            self.stats.in_packets += 1;
            self.session = session;
            self.state = Phase::Connected;
            self.last_recv = now;
            self.last_eliciting_sent = now;
            self.events.push_back(Event::Connected);
            observe::log_connected(self.peer, session, self.rtt());
        }
    }

    /// Client: the server refused the connection (REJECT with `reason`).
    pub(super) fn handle_reject(&mut self, reason: &str) {
        if let Phase::Connecting { .. } = self.state {
            self.stats.in_packets += 1;
            observe::log_rejected(self.peer, reason);
            self.events.push_back(Event::Rejected {
                reason: reason.to_owned(),
            });
            self.state = Phase::Closed {
                reason: DisconnectReason::Remote(reason.to_owned()),
                copies: 0,
            };
        }
    }

    /// A DATA packet: checked against the session and the sequence window,
    /// opened, then its frames handled. One that fails a check is dropped,
    /// counted, and moves nothing.
    pub(super) fn handle_data(
        &mut self,
        now: Instant,
        header: DataHeader,
        datagram: &[u8],
        frames: &[u8],
    ) {
        if header.session != self.session {
            self.stats.dropped_invalid += 1;
            return;
        }
        // The window is checked before opening, like the replay window: a
        // packet it refuses costs nothing and moves nothing.
        if !self.in_window(header.seq) {
            return;
        }
        match self.protection.open_data(header, datagram, frames) {
            Ok(frames) => {
                self.handle_frames(now, header, &frames);
                self.protection.recycle(frames);
            }
            Err(dropped) => dropped.count(&mut self.stats),
        }
    }

    /// Whether a DATA packet's sequence number is new and within the
    /// sequence window; a packet outside it is counted here and must then
    /// be dropped whole: its frames and ack fields are never looked at.
    fn in_window(&mut self, seq: u16) -> bool {
        match self.acks.check(seq) {
            SeqCheck::New => true,
            SeqCheck::Duplicate => {
                self.stats.dropped_duplicate += 1;
                false
            }
            SeqCheck::TooFarAhead => {
                self.stats.dropped_invalid += 1;
                false
            }
        }
    }

    /// The plaintext frames of a DATA packet that passed every check.
    fn handle_frames(&mut self, now: Instant, header: DataHeader, frames: &[u8]) {
        // Validate every frame before acting on any, so a malformed packet
        // (or one naming a channel we lack, or of another kind) is dropped
        // whole and never acked.
        if !all_fit(&self.config.channels, frames) {
            self.stats.dropped_invalid += 1;
            return;
        }
        let ack_eliciting = !frames.is_empty();
        self.acks
            .record(header.seq, now, ack_eliciting, self.config.max_ack_delay);
        self.last_recv = now;
        self.stats.in_packets += 1;
        let ack_delay = Duration::from_micros(u64::from(header.ack_delay) * 10);
        match self.channels.as_deref_mut() {
            Some(channels) => {
                self.recovery
                    .on_ack(now, header.ack, header.ack_bits, ack_delay, &mut |o| {
                        channels.on_outcome(o)
                    });
                channels.take_feedback(&mut self.events);
            }
            // Nothing was ever sent: acks can name no message part.
            None => self
                .recovery
                .on_ack(now, header.ack, header.ack_bits, ack_delay, &mut |_| {}),
        }
        let mut it = Frames::new(frames);
        while let Some(Ok(ref frame)) = it.next() {
            self.handle_frame(frame);
            if !self.is_connected() {
                break; // a limit closed the connection
            }
        }
        self.deliver_received();
    }

    fn handle_frame(&mut self, frame: &Frame<'_>) {
        if matches!(frame, Frame::Ping) {
            self.stats.keepalive_count += 1;
            return;
        }
        let channels = self
            .channels
            .get_or_insert_with(|| Channels::boxed(&self.config, &self.protection));
        let arrival = channels.on_frame(frame, &self.factory, &mut self.received);
        match arrival {
            Arrival::OutOfWindow => self.stats.dropped_frames += 1,
            Arrival::OverLimit if self.is_connected() => {
                let reason = DisconnectReason::LimitExceeded("reorder buffer".into());
                self.close(reason, DISCONNECT_COPIES);
            }
            _ => {}
        }
    }

    fn deliver_received(&mut self) {
        for msg in self.received.drain(..) {
            match msg {
                Ok(msg) => {
                    self.stats.in_messages += 1;
                    self.events.push_back(Event::Message(msg));
                }
                Err(e) => {
                    self.faults.count(&e);
                    self.events.push_back(Event::Error(e));
                }
            }
        }
    }
}

/// Whether every frame of a payload parses and names a channel of `list`
/// of its kind. (A loop over borrowed items rather than `Iterator::any`,
/// which would copy each frame out.)
fn all_fit(list: &[ChannelConfig], frames: &[u8]) -> bool {
    let mut it = Frames::new(frames);
    loop {
        match it.next() {
            None => return true,
            Some(Ok(ref frame)) if frame_fits(list, frame) => {}
            Some(_) => return false,
        }
    }
}
