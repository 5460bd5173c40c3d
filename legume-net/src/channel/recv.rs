//! The receive side of a reliable channel: duplicate suppression over a
//! 1024-id window, in-order release for the ordered channel, and bounded
//! reassembly of fragments.

use legume_core::{AnyMessage, MessageFactory};

use super::send::WINDOW;
use crate::event::MessageError;
use crate::seq::seq_diff;

/// A message the channel has completed, in delivery order.
pub(crate) type Received = Result<Box<dyn AnyMessage>, MessageError>;

/// Bytes charged per buffered ordered message on top of its length: the
/// box and vector that hold it, so that tiny messages cannot multiply the
/// reorder buffer's real memory.
const BUFFERED_OVERHEAD: usize = 64;

/// A completed message, before it is decoded.
enum Completed<'a> {
    Bytes(&'a [u8]),
    Owned(Vec<u8>),
    Failed(MessageError),
}

impl Completed<'_> {
    fn len(&self) -> usize {
        match self {
            Completed::Bytes(b) => b.len(),
            Completed::Owned(v) => v.len(),
            Completed::Failed(_) => 0,
        }
    }

    fn into_raw(self) -> Result<Vec<u8>, MessageError> {
        match self {
            Completed::Bytes(b) => Ok(b.to_vec()),
            Completed::Owned(v) => Ok(v),
            Completed::Failed(e) => Err(e),
        }
    }

    fn decode(self, factory: &MessageFactory) -> Received {
        let bytes = match &self {
            Completed::Bytes(b) => *b,
            Completed::Owned(v) => v.as_slice(),
            Completed::Failed(e) => return Err(e.clone()),
        };
        factory.decode(bytes).map_err(MessageError::Decode)
    }
}

/// Limits on reassembly, shared by a connection's channels.
#[derive(Debug)]
pub(crate) struct Reassembly {
    pub(crate) max_message_size: usize,
    pub(crate) max_bytes: usize,
    pub(crate) in_use: usize,
}

/// What happened to an incoming message or fragment.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Arrival {
    /// New data, accepted.
    New,
    /// Already received: dropped.
    Duplicate,
    /// Outside the receive window; a correct peer never sends it.
    OutOfWindow,
    /// Buffering it would pass the reorder-buffer byte limit.
    OverLimit,
}

#[derive(Default)]
enum Slot {
    #[default]
    Empty,
    /// Delivered, or (ordered) released; remembered to drop duplicates.
    Done,
    /// Ordered only: complete, waiting for earlier ids, still encoded; with
    /// the bytes charged to the reorder buffer. Boxed, like `Partial`, so
    /// that an idle slot stays small.
    Buffered(Box<(Result<Vec<u8>, MessageError>, usize)>),
    Partial(Box<Partial>),
}

struct Partial {
    count: u16,
    frags: Vec<Option<Vec<u8>>>,
    received: u16,
    bytes: usize,
    /// Bytes charged to the reassembly budget, including bookkeeping.
    charged: usize,
}

/// The receive side of one reliable channel.
pub(crate) struct RecvChannel {
    ordered: bool,
    /// The oldest id not yet delivered (ordered) or not yet received (unordered).
    base: u16,
    slots: Vec<(u16, Slot)>,
    buffered: usize,
    buffered_bytes: usize,
    max_buffered_bytes: usize,
}

impl RecvChannel {
    /// A channel whose reorder buffer holds at most `max_buffered_bytes` of
    /// messages waiting for earlier ones (ordered channels only).
    pub(crate) fn new(ordered: bool, max_buffered_bytes: usize) -> Self {
        RecvChannel {
            ordered,
            base: 0,
            // Allocated on first use: many connections never use a channel.
            slots: Vec::new(),
            buffered: 0,
            buffered_bytes: 0,
            max_buffered_bytes,
        }
    }

    /// Ordered messages complete but waiting for earlier ones.
    pub(crate) fn reorder_queue(&self) -> usize {
        self.buffered
    }

    /// A whole message with id `id` arrived.
    pub(crate) fn on_message(
        &mut self,
        id: u16,
        bytes: &[u8],
        factory: &MessageFactory,
        out: &mut Vec<Received>,
    ) -> Arrival {
        if let Err(arrival) = self.check(id) {
            return arrival;
        }
        let slot = self.slot_mut(id);
        if !matches!(slot, Slot::Empty) {
            return Arrival::Duplicate;
        }
        self.complete(id, Completed::Bytes(bytes), factory, out)
    }

    /// A fragment of message `id` arrived.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_fragment(
        &mut self,
        id: u16,
        index: u16,
        count: u16,
        bytes: &[u8],
        factory: &MessageFactory,
        limits: &mut Reassembly,
        out: &mut Vec<Received>,
    ) -> Arrival {
        if let Err(arrival) = self.check(id) {
            return arrival;
        }
        let slot = self.slot_mut(id);
        match slot {
            Slot::Done | Slot::Buffered(..) => return Arrival::Duplicate,
            Slot::Empty => {
                // Bookkeeping for `count` fragments is charged up front.
                let charged = usize::from(count) * std::mem::size_of::<Option<Vec<u8>>>();
                if limits.in_use + charged > limits.max_bytes {
                    return self.complete(
                        id,
                        Completed::Failed(MessageError::ReassemblyFull),
                        factory,
                        out,
                    );
                }
                limits.in_use += charged;
                *slot = Slot::Partial(Box::new(Partial {
                    count,
                    frags: vec![None; usize::from(count)],
                    received: 0,
                    bytes: 0,
                    charged,
                }));
            }
            Slot::Partial(_) => {}
        }
        let Slot::Partial(p) = self.slot_mut(id) else {
            return Arrival::Duplicate;
        };
        if p.count != count {
            let charged = p.charged;
            limits.in_use -= charged;
            return self.complete(
                id,
                Completed::Failed(MessageError::BadFragment),
                factory,
                out,
            );
        }
        if p.frags[usize::from(index)].is_some() {
            return Arrival::Duplicate;
        }
        let too_big = p.bytes + bytes.len() > limits.max_message_size;
        let no_room = limits.in_use + bytes.len() > limits.max_bytes;
        if too_big || no_room {
            let charged = p.charged;
            limits.in_use -= charged;
            let err = if too_big {
                MessageError::TooLarge
            } else {
                MessageError::ReassemblyFull
            };
            return self.complete(id, Completed::Failed(err), factory, out);
        }
        p.frags[usize::from(index)] = Some(bytes.to_vec());
        p.received += 1;
        p.bytes += bytes.len();
        p.charged += bytes.len();
        limits.in_use += bytes.len();
        if p.received < p.count {
            return Arrival::New;
        }
        let mut whole = Vec::with_capacity(p.bytes);
        for frag in p.frags.iter().flatten() {
            whole.extend_from_slice(frag);
        }
        limits.in_use -= p.charged;
        self.complete(id, Completed::Owned(whole), factory, out)
    }

    /// Window check: duplicate below the base, violation past the window.
    fn check(&self, id: u16) -> Result<(), Arrival> {
        let d = seq_diff(id, self.base);
        if d < 0 {
            Err(Arrival::Duplicate)
        } else if d >= i32::from(WINDOW) {
            Err(Arrival::OutOfWindow)
        } else {
            Ok(())
        }
    }

    /// The slot of an id inside the window, reset if it held an older id.
    fn slot_mut(&mut self, id: u16) -> &mut Slot {
        if self.slots.is_empty() {
            self.slots = (0..WINDOW).map(|_| (0, Slot::Empty)).collect();
        }
        let entry = &mut self.slots[usize::from(id % WINDOW)];
        if entry.0 != id {
            *entry = (id, Slot::Empty);
        }
        &mut entry.1
    }

    /// Records a completed message and releases what can be delivered.
    ///
    /// An ordered message that must wait for an earlier one is kept as its
    /// encoded bytes, so that the reorder buffer's memory is what its limit
    /// counts; it is refused when the buffer is over that limit.
    fn complete(
        &mut self,
        id: u16,
        done: Completed<'_>,
        factory: &MessageFactory,
        out: &mut Vec<Received>,
    ) -> Arrival {
        if self.ordered && id != self.base {
            let charge = done.len() + BUFFERED_OVERHEAD;
            if self.buffered_bytes + charge > self.max_buffered_bytes {
                return Arrival::OverLimit;
            }
            *self.slot_mut(id) = Slot::Buffered(Box::new((done.into_raw(), charge)));
            self.buffered += 1;
            self.buffered_bytes += charge;
            debug_assert!(
                self.buffered <= usize::from(WINDOW),
                "reorder buffer past the window"
            );
            return Arrival::New;
        }
        let msg = done.decode(factory);
        if self.ordered {
            // The awaited message: delivered at once, never buffered.
            *self.slot_mut(id) = Slot::Empty;
            out.push(msg);
            self.base = id.wrapping_add(1);
            self.release_ordered(factory, out);
        } else {
            *self.slot_mut(id) = Slot::Done;
            out.push(msg);
            self.advance_done();
        }
        Arrival::New
    }

    fn release_ordered(&mut self, factory: &MessageFactory, out: &mut Vec<Received>) {
        loop {
            let base = self.base;
            let Some(entry) = self.slots.get_mut(usize::from(base % WINDOW)) else {
                return;
            };
            if entry.0 != base || !matches!(entry.1, Slot::Buffered(..)) {
                return;
            }
            if let Slot::Buffered(waiting) = std::mem::take(&mut entry.1) {
                let (raw, charge) = *waiting;
                out.push(raw.and_then(|b| factory.decode(&b).map_err(MessageError::Decode)));
                self.buffered_bytes -= charge;
            }
            self.buffered -= 1;
            self.base = base.wrapping_add(1);
        }
    }

    fn advance_done(&mut self) {
        loop {
            let base = self.base;
            let Some(entry) = self.slots.get_mut(usize::from(base % WINDOW)) else {
                return;
            };
            if entry.0 != base || !matches!(entry.1, Slot::Done) {
                return;
            }
            entry.1 = Slot::Empty;
            self.base = base.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legume_core::{Decode, DecodeError, Encode, EncodeError, Message, Reader, Writer};

    #[derive(Debug, PartialEq)]
    struct Num(u8);
    impl Encode for Num {
        fn encoded_len(&self) -> usize {
            1
        }
        fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
            w.put_u8(self.0)
        }
    }
    impl Decode for Num {
        const MIN_LEN: usize = 1;
        fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            Ok(Num(r.read_u8()?))
        }
    }
    impl Message for Num {
        const TYPE_ID: u8 = 20;
        const NAME: &'static str = "Num";
    }

    fn factory() -> MessageFactory {
        let mut f = MessageFactory::new();
        f.register::<Num>().unwrap();
        f
    }

    fn nums(out: &mut Vec<Received>) -> Vec<u8> {
        out.drain(..)
            .map(|m| m.unwrap().downcast_ref::<Num>().unwrap().0)
            .collect()
    }

    #[test]
    fn ordered_releases_in_order_once() {
        let f = factory();
        let mut ch = RecvChannel::new(true, usize::MAX);
        let mut out = Vec::new();
        assert_eq!(ch.on_message(2, &[20, 2], &f, &mut out), Arrival::New);
        assert_eq!(ch.on_message(1, &[20, 1], &f, &mut out), Arrival::New);
        assert_eq!(ch.reorder_queue(), 2);
        assert!(out.is_empty());
        assert_eq!(ch.on_message(2, &[20, 2], &f, &mut out), Arrival::Duplicate);
        ch.on_message(0, &[20, 0], &f, &mut out);
        assert_eq!(nums(&mut out), [0, 1, 2]);
        assert_eq!(ch.on_message(1, &[20, 1], &f, &mut out), Arrival::Duplicate);
        assert_eq!(
            ch.on_message(3 + WINDOW, &[20, 9], &f, &mut out),
            Arrival::OutOfWindow
        );
    }

    #[test]
    fn the_reorder_buffer_has_a_byte_limit() {
        let f = factory();
        // Room for two waiting 2-byte messages with their overhead.
        let mut ch = RecvChannel::new(true, 2 * (2 + BUFFERED_OVERHEAD));
        let mut out = Vec::new();
        assert_eq!(ch.on_message(1, &[20, 1], &f, &mut out), Arrival::New);
        assert_eq!(ch.on_message(2, &[20, 2], &f, &mut out), Arrival::New);
        assert_eq!(ch.on_message(3, &[20, 3], &f, &mut out), Arrival::OverLimit);
        // The awaited message itself is never refused, and frees the buffer.
        assert_eq!(ch.on_message(0, &[20, 0], &f, &mut out), Arrival::New);
        assert_eq!(nums(&mut out), [0, 1, 2]);
        assert_eq!(ch.on_message(4, &[20, 4], &f, &mut out), Arrival::New);
    }

    #[test]
    fn unordered_delivers_at_once_and_dedups_across_wrap() {
        let f = factory();
        let mut ch = RecvChannel::new(false, usize::MAX);
        let mut out = Vec::new();
        for id in 0..70_000u32 {
            let id = id as u16;
            ch.on_message(id, &[20, id as u8], &f, &mut out);
            assert_eq!(
                ch.on_message(id, &[20, 0], &f, &mut out),
                Arrival::Duplicate
            );
        }
        assert_eq!(out.len(), 70_000);
        assert!(out.iter().all(Result::is_ok));
    }

    #[test]
    fn fragments_reassemble_within_limits() {
        let f = factory();
        let mut ch = RecvChannel::new(true, usize::MAX);
        let mut limits = Reassembly {
            max_message_size: 100,
            max_bytes: 1000,
            in_use: 0,
        };
        let mut out = Vec::new();
        ch.on_fragment(0, 1, 2, &[7], &f, &mut limits, &mut out);
        assert!(limits.in_use > 0);
        assert_eq!(
            ch.on_fragment(0, 1, 2, &[7], &f, &mut limits, &mut out),
            Arrival::Duplicate
        );
        ch.on_fragment(0, 0, 2, &[20], &f, &mut limits, &mut out);
        assert_eq!(nums(&mut out), [7]);
        assert_eq!(limits.in_use, 0);

        // A message over the size limit is dropped as an error, in its place.
        ch.on_fragment(1, 0, 2, &[20; 60], &f, &mut limits, &mut out);
        ch.on_fragment(1, 1, 2, &[0; 60], &f, &mut limits, &mut out);
        assert!(matches!(out.pop(), Some(Err(MessageError::TooLarge))));
        assert_eq!(limits.in_use, 0);
        assert_eq!(
            ch.on_fragment(1, 0, 2, &[20; 60], &f, &mut limits, &mut out),
            Arrival::Duplicate
        );
        ch.on_message(2, &[20, 2], &f, &mut out);
        assert_eq!(nums(&mut out), [2]);
    }
}
