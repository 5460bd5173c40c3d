//! The send side of an unreliable or unreliable-sequenced channel: messages
//! waiting for a packet, back to back in one byte ring, each with its number
//! and the time it was queued; the lifetime that drops stale ones before
//! they are sent; and, with feedback on, the numbers of the messages whose
//! packets are still in flight (`docs/PROTOCOL.md` section 4).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use legume_core::{EncodeError, Writer};

use super::MsgRef;
use crate::packet::{self, Channel, FrameKind};

/// A queued message: its length in the ring, number and queue time.
#[derive(Clone, Copy, Debug)]
struct Entry {
    len: usize,
    number: u64,
    queued_at: Instant,
}

/// What became of an unreliable message the channel reports on.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Fate {
    Acked(u64),
    Lost(u64),
}

/// The send side of one unreliable or unreliable-sequenced channel.
#[derive(Debug)]
pub(crate) struct UnreliableQueue {
    channel: Channel,
    /// Sequenced: frames carry the message number, and the receiver drops
    /// messages older than one it delivered.
    sequenced: bool,
    lifetime: Option<Duration>,
    feedback: bool,
    bytes: VecDeque<u8>,
    entries: VecDeque<Entry>,
    /// The number the next message queued gets.
    next_number: u64,
    /// Feedback: numbers sent and not yet acked or lost, increasing.
    in_flight: VecDeque<u64>,
    /// Feedback: fates decided since the owner last took them.
    pub(crate) fates: Vec<Fate>,
    /// Messages written into a packet.
    pub(crate) sent: u64,
    /// Messages dropped for their lifetime before being sent.
    pub(crate) dropped_lifetime: u64,
}

impl UnreliableQueue {
    pub(crate) fn new(
        channel: Channel,
        sequenced: bool,
        lifetime: Option<Duration>,
        feedback: bool,
    ) -> Self {
        UnreliableQueue {
            channel,
            sequenced,
            lifetime,
            feedback,
            bytes: VecDeque::new(),
            entries: VecDeque::new(),
            next_number: 0,
            in_flight: VecDeque::new(),
            fates: Vec::new(),
            sent: 0,
            dropped_lifetime: 0,
        }
    }

    /// The frame overhead of a message of `len` bytes on this channel.
    pub(crate) fn overhead(&self, len: usize) -> usize {
        if self.sequenced {
            packet::frame_overhead(FrameKind::Sequenced, len, false)
        } else {
            packet::frame_overhead(FrameKind::Unreliable, len, self.channel.short)
        }
    }

    /// Queues a message at `now`; returns its number.
    pub(crate) fn push(&mut self, msg: &[u8], now: Instant) -> u64 {
        if self.lifetime.is_some() {
            self.drop_expired(now);
        }
        let number = self.next_number;
        self.next_number += 1;
        self.bytes.extend(msg);
        self.entries.push_back(Entry {
            len: msg.len(),
            number,
            queued_at: now,
        });
        number
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Messages queued.
    pub(crate) fn queued(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Drops the queued messages that have outlived the lifetime at `now`.
    pub(crate) fn drop_expired(&mut self, now: Instant) {
        let Some(lifetime) = self.lifetime else {
            return;
        };
        while let Some(e) = self.entries.front() {
            if now.saturating_duration_since(e.queued_at) < lifetime {
                break;
            }
            let e = *e;
            self.entries.pop_front();
            self.bytes.drain(..e.len);
            self.dropped_lifetime += 1;
            if self.feedback {
                self.fates.push(Fate::Lost(e.number));
            }
        }
    }

    /// Writes the oldest message still within its lifetime at `now` if it
    /// fits; returns the frame's length, or `None` when nothing was written.
    pub(crate) fn write_next(
        &mut self,
        w: &mut Writer<'_>,
        now: Instant,
        refs: &mut Vec<MsgRef>,
    ) -> Result<Option<usize>, EncodeError> {
        if self.lifetime.is_some() {
            self.drop_expired(now);
        }
        let Some(&e) = self.entries.front() else {
            return Ok(None);
        };
        let overhead = self.overhead(e.len);
        if overhead + e.len > w.remaining() {
            return Ok(None);
        }
        // The wire carries the low 32 bits; the receiver compares serially.
        let low = e.number as u32;
        if self.sequenced {
            packet::write_sequenced_header(w, self.channel.id, low, e.len)?;
        } else {
            packet::write_unreliable_header(w, self.channel, e.len)?;
        }
        let out = w.reserve(e.len)?;
        for (dst, src) in out.iter_mut().zip(self.bytes.drain(..e.len)) {
            *dst = src;
        }
        self.entries.pop_front();
        self.sent += 1;
        if self.feedback {
            self.in_flight.push_back(e.number);
            refs.push(MsgRef {
                channel: self.channel,
                id: low as u16,
                frag: (low >> 16) as u16,
            });
        }
        Ok(Some(overhead + e.len))
    }

    /// The packet that carried the message of `r` was acked (`lost` false)
    /// or declared lost. The first of the two decides its fate; a later
    /// one (an ack after a spurious loss) is ignored.
    pub(crate) fn on_outcome(&mut self, r: MsgRef, lost: bool) {
        let low = u32::from(r.id) | (u32::from(r.frag) << 16);
        // Numbers in flight are far fewer than 2^32 behind the next one, so
        // the low 32 bits name exactly one of them.
        let behind = u64::from((self.next_number as u32).wrapping_sub(low));
        let Some(number) = self.next_number.checked_sub(behind) else {
            return;
        };
        let Ok(at) = self.in_flight.binary_search(&number) else {
            return;
        };
        self.in_flight.remove(at);
        self.fates.push(if lost {
            Fate::Lost(number)
        } else {
            Fate::Acked(number)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Frame, Frames};

    fn packet(q: &mut UnreliableQueue, now: Instant, size: usize) -> (Vec<u8>, Vec<MsgRef>) {
        let mut buf = vec![0u8; size];
        let mut w = Writer::new(&mut buf);
        let mut refs = Vec::new();
        while q.write_next(&mut w, now, &mut refs).unwrap().is_some() {}
        let n = w.position();
        buf.truncate(n);
        (buf, refs)
    }

    #[test]
    fn expired_messages_are_dropped_before_sending() {
        let t0 = Instant::now();
        let life = Duration::from_millis(50);
        let mut q = UnreliableQueue::new(Channel::long(3), true, Some(life), true);
        assert_eq!(q.push(&[20, 0], t0), 0);
        assert_eq!(q.push(&[20, 1], t0 + Duration::from_millis(30)), 1);
        let (bytes, refs) = packet(&mut q, t0 + life, 100);
        assert_eq!(q.dropped_lifetime, 1);
        assert_eq!(q.fates, vec![Fate::Lost(0)]);
        let frames: Vec<_> = Frames::new(&bytes).map(Result::unwrap).collect();
        assert_eq!(
            frames,
            vec![Frame::Sequenced {
                channel: 3,
                number: 1,
                msg: &[20, 1]
            }]
        );
        q.fates.clear();
        q.on_outcome(refs[0], false);
        q.on_outcome(refs[0], true);
        assert_eq!(q.fates, vec![Fate::Acked(1)], "the first outcome decides");
        assert!(q.is_empty() && q.buffered_bytes() == 0);
    }

    #[test]
    fn without_a_lifetime_messages_wait() {
        let t0 = Instant::now();
        let mut q = UnreliableQueue::new(Channel::short(0), false, None, false);
        q.push(&[20; 10], t0);
        let (bytes, refs) = packet(&mut q, t0 + Duration::from_secs(60), 5);
        assert!(bytes.is_empty() && refs.is_empty(), "does not fit");
        let (bytes, refs) = packet(&mut q, t0 + Duration::from_secs(60), 100);
        assert_eq!(bytes.len(), 12);
        assert!(refs.is_empty(), "no feedback, no refs");
        assert_eq!((q.sent, q.dropped_lifetime), (1, 0));
    }

    #[test]
    fn outcomes_map_back_across_32_bit_wrap() {
        let t0 = Instant::now();
        let mut q = UnreliableQueue::new(Channel::long(1), false, None, true);
        q.next_number = u64::from(u32::MAX) - 1;
        for _ in 0..4 {
            q.push(&[20], t0);
        }
        let (_, refs) = packet(&mut q, t0, 100);
        assert_eq!(refs.len(), 4);
        for r in refs.iter().rev() {
            q.on_outcome(*r, true);
        }
        let base = u64::from(u32::MAX) - 1;
        assert_eq!(
            q.fates,
            (0..4)
                .rev()
                .map(|i| Fate::Lost(base + i))
                .collect::<Vec<_>>()
        );
    }
}
