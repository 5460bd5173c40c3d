//! The send side of a reliable channel (reliable or reliable-ordered).
//!
//! Messages are copied once into a byte ring, in id order, and stay there
//! until every message before them is acked; nothing is allocated per
//! message. Ids from the oldest unacked one up to 1024 past it form the send
//! window; later messages wait in the same ring. A message longer than the
//! fragment size is sent as fragments, each acked and resent on its own.
//! With feedback on, a message's number is reported once all its parts are
//! acked.

use std::collections::VecDeque;

use legume_core::{EncodeError, Writer};

use crate::packet::{self, Channel, FrameKind};
use crate::seq::seq_diff;

/// Ids a channel may have in flight past its oldest unacked message.
pub(crate) const WINDOW: u16 = 1024;

/// A reference from a sent packet to what it carried: a message (id) or
/// fragment (id, frag) of a reliable channel, or on an unreliable channel
/// with feedback the low 32 bits of a message's number (`id` the low half,
/// `frag` the high half).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct MsgRef {
    pub(crate) channel: Channel,
    pub(crate) id: u16,
    pub(crate) frag: u16,
}

/// The send state of one message or one fragment.
#[derive(Clone, Copy, Debug, Default)]
struct Part {
    acked: bool,
    /// Waiting in the resend queue.
    queued: bool,
    /// The packet of its latest transmission, once sent.
    last_packet: Option<u16>,
}

#[derive(Debug)]
struct OutMessage {
    /// Offset of the first byte in the ring, counted since the channel began.
    start: u64,
    len: usize,
    /// One part for a whole message, one per fragment otherwise.
    parts: Vec<Part>,
    unacked_parts: usize,
    /// Parts sent at least once.
    sent_parts: usize,
}

/// The send side of one reliable channel.
#[derive(Debug)]
pub(crate) struct SendChannel {
    channel: Channel,
    frag_size: usize,
    byte_window: usize,
    ring: VecDeque<u8>,
    /// Offset of `ring[0]` since the channel began.
    ring_start: u64,
    /// Messages from the oldest unacked (`base_id`) to the newest queued.
    messages: VecDeque<OutMessage>,
    base_id: u16,
    /// Index in `messages` of the first message with unsent parts.
    next_unsent: usize,
    resend: VecDeque<(u16, u16)>,
    /// Spare part vectors, so steady state allocates nothing.
    spare_parts: Vec<Vec<Part>>,
    /// Messages sent at least once and not yet fully acked.
    pending_acks: usize,
    /// Retransmissions (of messages or fragments).
    pub(crate) resends: u64,
    /// First transmissions (of messages or fragments).
    pub(crate) first_sends: u64,
    /// Messages whose every part has been sent at least once.
    pub(crate) sent_messages: u64,
    /// The number of the message `base_id` (numbers do not wrap).
    base_number: u64,
    /// Report fully acked messages in `acked`.
    feedback: bool,
    /// Numbers of messages fully acked since the owner last took them.
    pub(crate) acked: Vec<u64>,
}

impl SendChannel {
    /// A channel that splits messages longer than `frag_size` and keeps at
    /// most `byte_window` bytes of messages past its oldest unacked one in
    /// flight (so the peer's reassembly and reorder buffers never overflow).
    pub(crate) fn new(
        channel: Channel,
        frag_size: usize,
        byte_window: usize,
        feedback: bool,
    ) -> Self {
        SendChannel {
            channel,
            frag_size,
            byte_window,
            ring: VecDeque::new(),
            ring_start: 0,
            messages: VecDeque::new(),
            base_id: 0,
            next_unsent: 0,
            resend: VecDeque::new(),
            spare_parts: Vec::new(),
            pending_acks: 0,
            resends: 0,
            first_sends: 0,
            sent_messages: 0,
            base_number: 0,
            feedback,
            acked: Vec::new(),
        }
    }

    /// Messages queued and not yet sent in full once.
    pub(crate) fn unsent_messages(&self) -> usize {
        self.messages.len() - self.next_unsent
    }

    /// Bytes of messages queued or sent but not yet acked.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.ring.len()
    }

    /// Messages sent at least once and not yet acked.
    pub(crate) fn pending_acks(&self) -> usize {
        self.pending_acks
    }

    /// Queues an encoded message (type id and fields); returns its number.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> u64 {
        let count = if bytes.len() > self.frag_size {
            bytes.len().div_ceil(self.frag_size)
        } else {
            1
        };
        let mut parts = self.spare_parts.pop().unwrap_or_default();
        parts.clear();
        parts.resize(count, Part::default());
        self.messages.push_back(OutMessage {
            start: self.ring_start + self.ring.len() as u64,
            len: bytes.len(),
            parts,
            unacked_parts: count,
            sent_parts: 0,
        });
        self.ring.extend(bytes);
        self.base_number + self.messages.len() as u64 - 1
    }

    /// Whether anything is waiting to be sent (resends or new parts in the window).
    pub(crate) fn has_sendable(&self) -> bool {
        !self.resend.is_empty() || self.new_sendable()
    }

    /// Whether the next unsent part may go out: its message is inside the
    /// 1024-id window and ends inside the byte window (the oldest unacked
    /// message may always go, so progress never stops).
    fn new_sendable(&self) -> bool {
        let Some(msg) = self.messages.get(self.next_unsent) else {
            return false;
        };
        let end = msg.start + msg.len as u64 - self.ring_start;
        self.next_unsent < usize::from(WINDOW)
            && (self.next_unsent == 0 || end <= self.byte_window as u64)
    }

    /// Writes the channel's next frame if it fits: its oldest queued
    /// resend, else its next new part; records what it carried in `refs`.
    /// Returns the frame's length, or `None` when nothing was written.
    pub(crate) fn write_next(
        &mut self,
        w: &mut Writer<'_>,
        packet_seq: u16,
        refs: &mut Vec<MsgRef>,
    ) -> Result<Option<usize>, EncodeError> {
        let before = w.position();
        while let Some(&(id, frag)) = self.resend.front() {
            let Some(index) = self.index_of(id) else {
                self.resend.pop_front();
                continue;
            };
            let part = self.messages[index].parts[usize::from(frag)];
            if part.acked {
                self.messages[index].parts[usize::from(frag)].queued = false;
                self.resend.pop_front();
                continue;
            }
            if !self.write_part(w, index, frag, packet_seq)? {
                return Ok(None);
            }
            self.resend.pop_front();
            let msg = &mut self.messages[index];
            msg.parts[usize::from(frag)].queued = false;
            self.resends += 1;
            refs.push(self.msg_ref(id, frag));
            return Ok(Some(w.position() - before));
        }
        if !self.new_sendable() {
            return Ok(None);
        }
        let index = self.next_unsent;
        debug_assert!(index < usize::from(WINDOW), "sending past the window");
        let msg = &self.messages[index];
        let frag = msg.sent_parts as u16;
        if !self.write_part(w, index, frag, packet_seq)? {
            return Ok(None);
        }
        let msg = &mut self.messages[index];
        if msg.sent_parts == 0 {
            self.pending_acks += 1;
        }
        msg.sent_parts += 1;
        self.first_sends += 1;
        if msg.sent_parts == msg.parts.len() {
            self.next_unsent += 1;
            self.sent_messages += 1;
        }
        let id = self.id_at(index);
        refs.push(self.msg_ref(id, frag));
        Ok(Some(w.position() - before))
    }

    /// Writes one message or fragment if it fits; returns whether it did.
    fn write_part(
        &mut self,
        w: &mut Writer<'_>,
        index: usize,
        frag: u16,
        packet_seq: u16,
    ) -> Result<bool, EncodeError> {
        let id = self.id_at(index);
        let msg = &self.messages[index];
        let fragmented = msg.parts.len() > 1;
        let (offset, len) = if fragmented {
            let offset = usize::from(frag) * self.frag_size;
            (offset, self.frag_size.min(msg.len - offset))
        } else {
            (0, msg.len)
        };
        let kind = if fragmented {
            FrameKind::Fragment
        } else {
            FrameKind::Message
        };
        if packet::frame_overhead(kind, len, self.channel.short) + len > w.remaining() {
            return Ok(false);
        }
        if fragmented {
            // Invariant: max_message_size / frag_size keeps the count within u16.
            let count = msg.parts.len() as u16;
            packet::write_fragment_header(w, self.channel, id, frag, count, len)?;
        } else {
            packet::write_message_header(w, self.channel, id, len)?;
        }
        let from = usize::try_from(msg.start - self.ring_start).unwrap_or(usize::MAX) + offset;
        copy_from_ring(&self.ring, from, w.reserve(len)?);
        self.messages[index].parts[usize::from(frag)].last_packet = Some(packet_seq);
        Ok(true)
    }

    /// The part was in an acked packet.
    pub(crate) fn on_acked(&mut self, id: u16, frag: u16) {
        let Some(index) = self.index_of(id) else {
            return;
        };
        let msg = &mut self.messages[index];
        let Some(part) = msg.parts.get_mut(usize::from(frag)) else {
            return;
        };
        if part.acked {
            return;
        }
        part.acked = true;
        msg.unacked_parts -= 1;
        if msg.unacked_parts == 0 {
            self.pending_acks = self.pending_acks.saturating_sub(1);
            if self.feedback {
                self.acked.push(self.base_number + index as u64);
            }
        }
        self.drop_acked_front();
    }

    /// The packet `packet_seq` that carried the part was declared lost.
    pub(crate) fn on_lost(&mut self, id: u16, frag: u16, packet_seq: u16) {
        let Some(index) = self.index_of(id) else {
            return;
        };
        let Some(part) = self.messages[index].parts.get_mut(usize::from(frag)) else {
            return;
        };
        if part.acked || part.queued || part.last_packet != Some(packet_seq) {
            return;
        }
        part.queued = true;
        self.resend.push_back((id, frag));
    }

    /// Releases fully acked messages at the front of the window.
    fn drop_acked_front(&mut self) {
        while self.messages.front().is_some_and(|m| m.unacked_parts == 0) {
            let Some(msg) = self.messages.pop_front() else {
                break;
            };
            self.ring.drain(..msg.len);
            self.ring_start += msg.len as u64;
            self.base_id = self.base_id.wrapping_add(1);
            self.base_number += 1;
            self.next_unsent = self.next_unsent.saturating_sub(1);
            self.spare_parts.push(msg.parts);
        }
        debug_assert!(self.next_unsent <= self.messages.len());
    }

    fn index_of(&self, id: u16) -> Option<usize> {
        let d = seq_diff(id, self.base_id);
        usize::try_from(d).ok().filter(|&i| i < self.messages.len())
    }

    fn id_at(&self, index: usize) -> u16 {
        // Invariant: index < WINDOW for any sent message, so it fits in u16.
        self.base_id.wrapping_add(index as u16)
    }

    fn msg_ref(&self, id: u16, frag: u16) -> MsgRef {
        MsgRef {
            channel: self.channel,
            id,
            frag,
        }
    }
}

/// Copies `out.len()` bytes starting at `from` out of the ring.
fn copy_from_ring(ring: &VecDeque<u8>, from: usize, out: &mut [u8]) {
    let (a, b) = ring.as_slices();
    let end = from + out.len();
    if end <= a.len() {
        out.copy_from_slice(&a[from..end]);
    } else if from >= a.len() {
        out.copy_from_slice(&b[from - a.len()..end - a.len()]);
    } else {
        let split = a.len() - from;
        out[..split].copy_from_slice(&a[from..]);
        out[split..].copy_from_slice(&b[..end - a.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Frame, Frames};

    fn packet(ch: &mut SendChannel, seq: u16, size: usize) -> (Vec<u8>, Vec<MsgRef>) {
        let mut buf = vec![0u8; size];
        let mut w = Writer::new(&mut buf);
        let mut refs = Vec::new();
        while ch.write_next(&mut w, seq, &mut refs).unwrap().is_some() {}
        let n = w.position();
        buf.truncate(n);
        (buf, refs)
    }

    #[test]
    fn sends_acks_and_frees() {
        let mut ch = SendChannel::new(Channel::short(2), 100, usize::MAX, false);
        ch.push(&[20, 1]);
        ch.push(&[20, 2]);
        let (bytes, refs) = packet(&mut ch, 0, 1000);
        assert_eq!(refs.len(), 2);
        let frames: Vec<_> = Frames::new(&bytes).map(Result::unwrap).collect();
        assert_eq!(
            frames[1],
            Frame::Message {
                channel: Channel::short(2),
                id: 1,
                msg: &[20, 2]
            }
        );
        assert_eq!(ch.pending_acks(), 2);
        ch.on_acked(1, 0);
        assert_eq!(ch.buffered_bytes(), 4, "id 0 still holds the front");
        ch.on_acked(0, 0);
        assert_eq!((ch.buffered_bytes(), ch.pending_acks()), (0, 0));
    }

    #[test]
    fn lost_parts_are_resent_once() {
        let mut ch = SendChannel::new(Channel::short(1), 100, usize::MAX, false);
        ch.push(&[20; 10]);
        let (_, refs) = packet(&mut ch, 5, 1000);
        assert_eq!(refs.len(), 1);
        ch.on_lost(0, 0, 5);
        ch.on_lost(0, 0, 5);
        assert!(ch.has_sendable());
        let (_, refs) = packet(&mut ch, 6, 1000);
        assert_eq!(refs.len(), 1, "queued once");
        // A loss report for the older transmission is stale now.
        ch.on_lost(0, 0, 5);
        assert!(!ch.has_sendable());
        assert_eq!(ch.resends, 1);
    }

    #[test]
    fn fragments_large_messages() {
        let mut ch = SendChannel::new(Channel::short(1), 100, usize::MAX, false);
        let big: Vec<u8> = (0..250).map(|i| i as u8).collect();
        ch.push(&big);
        let (bytes, refs) = packet(&mut ch, 0, 1000);
        assert_eq!(refs.len(), 3);
        let mut joined = Vec::new();
        for f in Frames::new(&bytes) {
            let Frame::Fragment { count, bytes, .. } = f.unwrap() else {
                panic!("fragment frames");
            };
            assert_eq!(count, 3);
            joined.extend_from_slice(bytes);
        }
        assert_eq!(joined, big);
    }

    #[test]
    fn counts_first_sends_and_resends_per_part() {
        // `first_sends` against `resends` is what the retransmission-storm
        // warning (observe.rs) compares.
        let mut ch = SendChannel::new(Channel::short(2), 100, usize::MAX, false);
        ch.push(&[20; 250]);
        ch.push(&[20; 10]);
        let (_, refs) = packet(&mut ch, 0, 1000);
        assert_eq!(refs.len(), 4);
        assert_eq!((ch.first_sends, ch.resends), (4, 0));
        ch.on_lost(0, 1, 0);
        ch.on_lost(1, 0, 0);
        let (_, refs) = packet(&mut ch, 1, 1000);
        assert_eq!(refs.len(), 2);
        assert_eq!((ch.first_sends, ch.resends), (4, 2));
        ch.push(&[20; 10]);
        packet(&mut ch, 2, 1000);
        assert_eq!((ch.first_sends, ch.resends), (5, 2));
    }

    #[test]
    fn acks_and_losses_of_ids_never_queued_are_ignored() {
        let mut ch = SendChannel::new(Channel::short(1), 100, usize::MAX, false);
        ch.push(&[20; 10]);
        ch.push(&[20; 10]);
        packet(&mut ch, 0, 1000);
        // Ids 0 and 1 are queued; 2 (just past them), 1023 and 65535 are not.
        for id in [2, 1023, u16::MAX] {
            ch.on_acked(id, 0);
            ch.on_lost(id, 0, 0);
        }
        assert!(!ch.has_sendable());
        assert_eq!((ch.pending_acks(), ch.buffered_bytes()), (2, 20));
        // A part index past the message's parts is ignored too.
        ch.on_acked(0, 1);
        ch.on_lost(1, 1, 0);
        assert!(!ch.has_sendable());
        assert_eq!(ch.pending_acks(), 2);
    }

    #[test]
    fn window_limits_new_ids() {
        let mut ch = SendChannel::new(Channel::short(1), 100, usize::MAX, false);
        for _ in 0..1100 {
            ch.push(&[20]);
        }
        let (_, refs) = packet(&mut ch, 0, 100_000);
        assert_eq!(refs.len(), usize::from(WINDOW));
        assert!(!ch.has_sendable());
        ch.on_acked(0, 0);
        let (_, refs) = packet(&mut ch, 1, 100_000);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].id, WINDOW);
    }

    #[test]
    fn byte_window_limits_large_messages() {
        let mut ch = SendChannel::new(Channel::short(1), 100, 250, false);
        for _ in 0..3 {
            ch.push(&[20; 200]);
        }
        // The first message (2 fragments) always goes; the second would end
        // at byte 400, past the 250-byte window.
        let (_, refs) = packet(&mut ch, 0, 100_000);
        assert_eq!(refs.len(), 2);
        assert!(!ch.has_sendable());
        ch.on_acked(0, 0);
        ch.on_acked(0, 1);
        let (_, refs) = packet(&mut ch, 1, 100_000);
        assert_eq!(refs.len(), 2, "the second message moves into the window");
    }

    #[test]
    fn ring_copy_across_wrap() {
        let mut ring: VecDeque<u8> = VecDeque::with_capacity(8);
        ring.extend([0, 0, 0, 0, 0, 0]);
        ring.drain(..5);
        ring.extend([1, 2, 3, 4, 5]);
        let mut out = [0u8; 4];
        copy_from_ring(&ring, 1, &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
    }
}
