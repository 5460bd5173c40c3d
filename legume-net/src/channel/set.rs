//! [`Channels`]: a connection's channels as one unit: each channel's send
//! and receive side, the scheduler that shares packets between them, the
//! routing of acks and losses, delivery feedback and per-channel counters
//! (`docs/PROTOCOL.md` sections 3 and 4).

use std::collections::VecDeque;
use std::time::Instant;

use legume_core::{EncodeError, MessageFactory, Writer};

use super::config::{ChannelConfig, ChannelId, ChannelKind, MessageHandle};
use super::recv::{Arrival, Reassembly, Received, RecvChannel};
use super::send::{MsgRef, SendChannel};
use super::unreliable::{Fate, UnreliableQueue};
use crate::config::Config;
use crate::delivery::Delivery;
use crate::event::{ChannelStats, Event, SendError};
use crate::packet::{self, Channel, Frame, FrameKind};
use crate::recovery::Outcome;

/// Virtual time per byte sent at weight 1 (`docs/PROTOCOL.md` 4, "Scheduling").
const VTIME_PER_BYTE: u64 = 1 << 16;

/// A ready channel's place in the scheduler's order: virtual time, then
/// priority, then id.
type Key = (u64, u8, usize);

/// The send side of one channel.
#[derive(Debug)]
enum SendSide {
    Unreliable(UnreliableQueue),
    Reliable(SendChannel),
}

/// The receive side of one channel.
enum RecvSide {
    Unreliable,
    /// The number of the newest message delivered, once one was.
    Sequenced(Option<u32>),
    Reliable(RecvChannel),
}

/// One channel's state on a connection.
struct ChannelState {
    config: ChannelConfig,
    send: SendSide,
    recv: RecvSide,
    /// The scheduler's virtual time of the channel.
    vtime: u64,
    /// What one byte sent adds to `vtime`: [`VTIME_PER_BYTE`] / weight.
    vtime_per_byte: u64,
    delivered: u64,
    dropped_stale: u64,
}

/// Sizes the channels are built with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// The room for frames in a packet: MTU less the DATA header and the
    /// secure mode's tag.
    pub(crate) room: usize,
}

/// A connection's channels.
pub(crate) struct Channels {
    list: Vec<ChannelState>,
    /// The virtual time of the frame chosen last.
    vnow: u64,
    /// Reassembly limits, shared by every reliable channel.
    pub(crate) reassembly: Reassembly,
    max_message_size: usize,
    room: usize,
    /// Whether any channel reports feedback (most lists have none).
    any_feedback: bool,
    /// Whether any channel has a lifetime.
    any_lifetime: bool,
}

impl Channels {
    /// The channels of `config.channels`, which must have passed
    /// `Config::validate`.
    pub(crate) fn new(config: &Config, sizes: Sizes) -> Self {
        let kinds = || config.channels.iter().map(|c| c.kind);
        let reliable = kinds().filter(|k| k.is_reliable()).count().max(1);
        let ordered = kinds()
            .filter(|&k| k == ChannelKind::ReliableOrdered)
            .count()
            .max(1);
        let limits = &config.limits;
        // Each reliable channel keeps its share of the peer's buffers in
        // flight past its oldest unacked message (the peer configured
        // alike), so that all of them together never overflow them.
        let reorder_limit = limits.max_reorder_bytes / ordered;
        let byte_window = (limits.max_reassembly_bytes / reliable).min(reorder_limit / 2);
        let list = config
            .channels
            .iter()
            .enumerate()
            // Invariant: validated lists have at most 32 channels.
            .map(|(i, c)| ChannelState::new(i as u8, c, sizes.room, byte_window, reorder_limit))
            .collect::<Vec<_>>();
        Channels {
            list,
            vnow: 0,
            reassembly: Reassembly {
                max_message_size: limits.max_message_size,
                max_bytes: limits.max_reassembly_bytes,
                in_use: 0,
            },
            max_message_size: limits.max_message_size,
            room: sizes.room,
            any_feedback: config.channels.iter().any(|c| c.feedback),
            any_lifetime: config.channels.iter().any(|c| c.lifetime.is_some()),
        }
    }

    fn get(&self, channel: ChannelId) -> Result<&ChannelState, SendError> {
        self.list
            .get(usize::from(channel.0))
            .ok_or(SendError::UnknownChannel {
                channel: channel.0,
                count: self.list.len(),
            })
    }

    /// The channel's own checks of a message of `len` bytes: its size and
    /// the channel's queue limit.
    pub(crate) fn check_send(&self, channel: ChannelId, len: usize) -> Result<(), SendError> {
        let c = self.get(channel)?;
        let max = match &c.send {
            SendSide::Unreliable(q) => self.room - q.overhead(self.room),
            SendSide::Reliable(_) => self.max_message_size,
        };
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let queued = c.buffered_bytes();
        if queued + len > c.config.max_queued_bytes {
            return Err(SendError::QueueFull {
                queued,
                max: c.config.max_queued_bytes,
            });
        }
        Ok(())
    }

    /// Queues a message that passed [`check_send`](Self::check_send).
    pub(crate) fn push(&mut self, channel: ChannelId, msg: &[u8], now: Instant) -> MessageHandle {
        let number = match &mut self.list[usize::from(channel.0)].send {
            SendSide::Unreliable(q) => q.push(msg, now),
            SendSide::Reliable(s) => s.push(msg),
        };
        MessageHandle { channel, number }
    }

    /// Bytes queued or unacked over all channels.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.list.iter().map(ChannelState::buffered_bytes).sum()
    }

    /// Whether any channel has something to send.
    pub(crate) fn has_data(&self) -> bool {
        self.list.iter().any(ChannelState::is_ready)
    }

    /// Fills the rest of a packet from the channels, one frame at a time, by
    /// start-time fair queuing (`docs/PROTOCOL.md` 4, "Scheduling"): the
    /// ready channel whose next frame fits with the least virtual time goes
    /// next, ties to the lower priority number, then the lower id.
    pub(crate) fn write_frames(
        &mut self,
        w: &mut Writer<'_>,
        seq: u16,
        now: Instant,
        refs: &mut Vec<MsgRef>,
    ) -> Result<(), EncodeError> {
        // Channels whose next frame did not fit in this packet.
        let mut full: u64 = 0;
        loop {
            // The least key goes next; it keeps going while its key stays
            // below the runner-up's (the others' keys do not move meanwhile).
            let (mut best, mut second): (Option<Key>, Option<Key>) = (None, None);
            for (i, c) in self.list.iter_mut().enumerate() {
                if full & (1 << i) != 0 || !c.is_ready() {
                    continue;
                }
                // A channel that was idle joins at the current virtual time.
                c.vtime = c.vtime.max(self.vnow);
                let key = (c.vtime, c.config.priority, i);
                if best.is_none_or(|b| key < b) {
                    second = best;
                    best = Some(key);
                } else if second.is_none_or(|s| key < s) {
                    second = Some(key);
                }
            }
            let Some((vtime, priority, i)) = best else {
                return Ok(());
            };
            let c = &mut self.list[i];
            let per_byte = c.vtime_per_byte;
            // It stays first while its virtual time is below the runner-up's,
            // or equal to it when it wins the tie.
            let limit = second.map_or(u64::MAX, |s| s.0 + u64::from((priority, i) < (s.1, s.2)));
            let mut start = vtime;
            while start < limit {
                let written = match &mut c.send {
                    SendSide::Unreliable(q) => q.write_next(w, now, refs)?,
                    SendSide::Reliable(s) => s.write_next(w, seq, refs)?,
                };
                let Some(n) = written else {
                    // Nothing more that fits (or nothing more at all).
                    full |= 1 << i;
                    break;
                };
                self.vnow = start;
                start += n as u64 * per_byte;
            }
            c.vtime = start;
        }
    }

    /// Drops the unreliable messages that have outlived their lifetime.
    #[inline]
    pub(crate) fn drop_expired(&mut self, now: Instant) {
        if self.any_lifetime {
            self.drop_expired_on_all(now);
        }
    }

    fn drop_expired_on_all(&mut self, now: Instant) {
        for c in &mut self.list {
            if let SendSide::Unreliable(q) = &mut c.send {
                q.drop_expired(now);
            }
        }
    }

    /// Routes an ack or loss outcome to the channel that sent the part.
    pub(crate) fn on_outcome(&mut self, o: Outcome) {
        let (r, lost_in) = match o {
            Outcome::Acked(r) => (r, None),
            Outcome::Lost(seq, r) => (r, Some(seq)),
        };
        let Some(c) = self.list.get_mut(usize::from(r.channel.id)) else {
            return;
        };
        match (&mut c.send, lost_in) {
            (SendSide::Reliable(s), None) => s.on_acked(r.id, r.frag),
            (SendSide::Reliable(s), Some(seq)) => s.on_lost(r.id, r.frag, seq),
            (SendSide::Unreliable(q), lost) => q.on_outcome(r, lost.is_some()),
        }
    }

    /// Moves the feedback decided since the last call into `events`.
    #[inline]
    pub(crate) fn take_feedback(&mut self, events: &mut VecDeque<Event>) {
        if self.any_feedback {
            self.take_feedback_from_all(events);
        }
    }

    fn take_feedback_from_all(&mut self, events: &mut VecDeque<Event>) {
        for (i, c) in self.list.iter_mut().enumerate() {
            if !c.config.feedback {
                continue;
            }
            let channel = ChannelId(i as u8);
            let handle = |number| MessageHandle { channel, number };
            match &mut c.send {
                SendSide::Reliable(s) => {
                    events.extend(s.acked.drain(..).map(|n| Event::Acked(handle(n))));
                }
                SendSide::Unreliable(q) => {
                    events.extend(q.fates.drain(..).map(|f| match f {
                        Fate::Acked(n) => Event::Acked(handle(n)),
                        Fate::Lost(n) => Event::Lost(handle(n)),
                    }));
                }
            }
        }
    }

    /// Delivers a frame that passed [`frame_fits`] into
    /// `out`, counting what its channel delivered.
    pub(crate) fn on_frame(
        &mut self,
        frame: &Frame<'_>,
        factory: &MessageFactory,
        out: &mut Vec<Received>,
    ) -> Arrival {
        let before = out.len();
        let id = match *frame {
            Frame::Ping => return Arrival::New,
            Frame::Unreliable { channel, .. } => channel.id,
            Frame::Sequenced { channel, .. } => channel,
            Frame::Message { channel, .. } | Frame::Fragment { channel, .. } => channel.id,
        };
        let Some(c) = self.list.get_mut(usize::from(id)) else {
            return Arrival::OutOfWindow;
        };
        let arrival = match (&mut c.recv, frame) {
            (RecvSide::Unreliable, Frame::Unreliable { msg, .. }) => {
                out.push(
                    factory
                        .decode(msg)
                        .map_err(crate::event::MessageError::Decode),
                );
                Arrival::New
            }
            (RecvSide::Sequenced(newest), Frame::Sequenced { number, msg, .. }) => {
                // Serial order on 32 bits: newer when less than 2^31 ahead.
                let number = *number;
                let newer = newest.is_none_or(|n| (number.wrapping_sub(n) as i32) > 0);
                if newer {
                    *newest = Some(number);
                    out.push(
                        factory
                            .decode(msg)
                            .map_err(crate::event::MessageError::Decode),
                    );
                } else {
                    c.dropped_stale += 1;
                }
                Arrival::New
            }
            (RecvSide::Reliable(r), Frame::Message { id, msg, .. }) => {
                r.on_message(*id, msg, factory, out)
            }
            (
                RecvSide::Reliable(r),
                Frame::Fragment {
                    id,
                    index,
                    count,
                    bytes,
                    ..
                },
            ) => r.on_fragment(
                *id,
                *index,
                *count,
                bytes,
                factory,
                &mut self.reassembly,
                out,
            ),
            // `frame_fits` refused every other pairing.
            _ => Arrival::OutOfWindow,
        };
        c.delivered += out[before..].iter().filter(|m| m.is_ok()).count() as u64;
        arrival
    }

    /// Each channel's counters, in id order.
    pub(crate) fn stats(&self) -> Vec<ChannelStats> {
        self.list.iter().map(ChannelState::stats).collect()
    }

    /// The counters of channels never used: all zero.
    pub(crate) fn unused_stats(list: &[ChannelConfig]) -> Vec<ChannelStats> {
        list.iter()
            .map(|c| ChannelStats {
                kind: c.kind,
                queued_messages: 0,
                queued_bytes: 0,
                sent: 0,
                delivered: 0,
                dropped_lifetime: 0,
                dropped_stale: 0,
            })
            .collect()
    }

    /// Totals over the reliable channels: resends, first sends of parts,
    /// messages awaiting an ack, and ordered messages waiting in reorder
    /// buffers.
    pub(crate) fn reliable_totals(&self) -> (u64, u64, usize, usize) {
        let mut t = (0, 0, 0, 0);
        for c in &self.list {
            if let SendSide::Reliable(s) = &c.send {
                t.0 += s.resends;
                t.1 += s.first_sends;
                t.2 += s.pending_acks();
            }
            if let RecvSide::Reliable(r) = &c.recv {
                t.3 += r.reorder_queue();
            }
        }
        t
    }
}

impl ChannelState {
    /// Channel `id` as `c` configures it, in packets with `room` bytes for
    /// frames; a reliable one keeps at most `byte_window` bytes in flight
    /// past its oldest unacked message and, ordered, at most
    /// `reorder_limit` bytes waiting in its reorder buffer.
    fn new(
        id: u8,
        c: &ChannelConfig,
        room: usize,
        byte_window: usize,
        reorder_limit: usize,
    ) -> Self {
        let channel = frame_channel(id, c.kind);
        let (send, recv) = match c.kind {
            ChannelKind::Unreliable | ChannelKind::UnreliableSequenced => {
                let sequenced = c.kind == ChannelKind::UnreliableSequenced;
                let q = UnreliableQueue::new(channel, sequenced, c.lifetime, c.feedback);
                let recv = if sequenced {
                    RecvSide::Sequenced(None)
                } else {
                    RecvSide::Unreliable
                };
                (SendSide::Unreliable(q), recv)
            }
            ChannelKind::Reliable | ChannelKind::ReliableOrdered => {
                let ordered = c.kind == ChannelKind::ReliableOrdered;
                let frag_size = room - frag_overhead(channel);
                let s = SendChannel::new(channel, frag_size, byte_window, c.feedback);
                let r = RecvChannel::new(ordered, reorder_limit);
                (SendSide::Reliable(s), RecvSide::Reliable(r))
            }
        };
        ChannelState {
            config: *c,
            send,
            recv,
            vtime: 0,
            vtime_per_byte: VTIME_PER_BYTE / u64::from(c.weight.max(1)),
            delivered: 0,
            dropped_stale: 0,
        }
    }

    fn buffered_bytes(&self) -> usize {
        match &self.send {
            SendSide::Unreliable(q) => q.buffered_bytes(),
            SendSide::Reliable(s) => s.buffered_bytes(),
        }
    }

    fn is_ready(&self) -> bool {
        match &self.send {
            SendSide::Unreliable(q) => !q.is_empty(),
            SendSide::Reliable(s) => s.has_sendable(),
        }
    }

    fn stats(&self) -> ChannelStats {
        let (queued_messages, sent, dropped_lifetime) = match &self.send {
            SendSide::Unreliable(q) => (q.queued(), q.sent, q.dropped_lifetime),
            SendSide::Reliable(s) => (s.unsent_messages(), s.sent_messages, 0),
        };
        ChannelStats {
            kind: self.config.kind,
            queued_messages,
            queued_bytes: self.buffered_bytes(),
            sent,
            delivered: self.delivered,
            dropped_lifetime,
            dropped_stale: self.dropped_stale,
        }
    }
}

/// How channel `id` of `kind` is named in frames: by a short frame type when
/// it is the default list's channel of that id and kind.
fn frame_channel(id: u8, kind: ChannelKind) -> Channel {
    let short = matches!(
        (id, kind),
        (0, ChannelKind::Unreliable)
            | (1, ChannelKind::Reliable)
            | (2, ChannelKind::ReliableOrdered)
    );
    Channel { id, short }
}

/// The overhead of a full-size fragment frame of the channel.
fn frag_overhead(channel: Channel) -> usize {
    if channel.short {
        packet::FRAGMENT_OVERHEAD
    } else {
        packet::CHANNEL_FRAGMENT_OVERHEAD
    }
}

/// The channel a [`Delivery`] sends on: the first of its kind in `list`.
pub(crate) fn channel_for(
    list: &[ChannelConfig],
    delivery: Delivery,
) -> Result<ChannelId, SendError> {
    let kind = match delivery {
        Delivery::Unreliable => ChannelKind::Unreliable,
        Delivery::Reliable => ChannelKind::Reliable,
        Delivery::ReliableOrdered => ChannelKind::ReliableOrdered,
    };
    list.iter()
        .position(|c| c.kind == kind)
        // Invariant: validated lists have at most 32 channels.
        .map(|i| ChannelId(i as u8))
        .ok_or(SendError::NoChannel(delivery))
}

/// The largest message an unreliable `channel` of `list` takes in packets
/// with `room` bytes for frames (0 for a reliable or unknown channel).
pub(crate) fn max_unreliable_size(
    list: &[ChannelConfig],
    channel: ChannelId,
    room: usize,
) -> usize {
    let Some(c) = list.get(usize::from(channel.0)) else {
        return 0;
    };
    let frame = frame_channel(channel.0, c.kind);
    let overhead = match c.kind {
        ChannelKind::Unreliable => packet::frame_overhead(FrameKind::Unreliable, room, frame.short),
        ChannelKind::UnreliableSequenced => {
            packet::frame_overhead(FrameKind::Sequenced, room, false)
        }
        _ => return 0,
    };
    room - overhead
}

/// Whether a frame names a channel of `list` with the frame's kind; a
/// packet with a frame that does not is invalid (`docs/PROTOCOL.md` 3).
#[inline]
pub(crate) fn frame_fits(list: &[ChannelConfig], frame: &Frame<'_>) -> bool {
    let (id, wanted): (u8, &[ChannelKind]) = match *frame {
        Frame::Ping => return true,
        Frame::Unreliable { channel, .. } => (channel.id, &[ChannelKind::Unreliable]),
        Frame::Sequenced { channel, .. } => (channel, &[ChannelKind::UnreliableSequenced]),
        Frame::Message { channel, .. } | Frame::Fragment { channel, .. } => {
            let kinds: &[ChannelKind] = match (channel.short, channel.id) {
                (true, 1) => &[ChannelKind::Reliable],
                (true, _) => &[ChannelKind::ReliableOrdered],
                (false, _) => &[ChannelKind::Reliable, ChannelKind::ReliableOrdered],
            };
            (channel.id, kinds)
        }
    };
    list.get(usize::from(id))
        .is_some_and(|c| wanted.contains(&c.kind))
}
