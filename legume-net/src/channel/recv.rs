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

/// What one fragment did to its message's reassembly.
enum FragmentStep {
    /// That fragment is already held.
    Duplicate,
    /// Stored; others are still missing.
    Stored,
    /// The last one missing: the whole message, its charge released.
    Whole(Vec<u8>),
    /// The message fails; its charge is released.
    Failed(MessageError),
}

impl Partial {
    /// A reassembly of `count` fragments, its bookkeeping charged to
    /// `limits` up front; `None` when that does not fit.
    fn start(count: u16, limits: &mut Reassembly) -> Option<Self> {
        let charged = usize::from(count) * std::mem::size_of::<Option<Vec<u8>>>();
        if limits.in_use + charged > limits.max_bytes {
            return None;
        }
        limits.in_use += charged;
        Some(Partial {
            count,
            frags: vec![None; usize::from(count)],
            received: 0,
            bytes: 0,
            charged,
        })
    }

    /// Stores fragment `index` of a message said to have `count`, charging
    /// its bytes to `limits`. A mismatched count or a fragment past the
    /// size or memory limits fails the whole message.
    fn add(
        &mut self,
        index: u16,
        count: u16,
        bytes: &[u8],
        limits: &mut Reassembly,
    ) -> FragmentStep {
        if self.count != count {
            limits.in_use -= self.charged;
            return FragmentStep::Failed(MessageError::BadFragment);
        }
        if self.frags[usize::from(index)].is_some() {
            return FragmentStep::Duplicate;
        }
        let too_big = self.bytes + bytes.len() > limits.max_message_size;
        let no_room = limits.in_use + bytes.len() > limits.max_bytes;
        if too_big || no_room {
            limits.in_use -= self.charged;
            let err = if too_big {
                MessageError::TooLarge
            } else {
                MessageError::ReassemblyFull
            };
            return FragmentStep::Failed(err);
        }
        self.frags[usize::from(index)] = Some(bytes.to_vec());
        self.received += 1;
        self.bytes += bytes.len();
        self.charged += bytes.len();
        limits.in_use += bytes.len();
        if self.received < self.count {
            return FragmentStep::Stored;
        }
        let mut whole = Vec::with_capacity(self.bytes);
        for frag in self.frags.iter().flatten() {
            whole.extend_from_slice(frag);
        }
        limits.in_use -= self.charged;
        FragmentStep::Whole(whole)
    }
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
            Slot::Empty => match Partial::start(count, limits) {
                Some(p) => *slot = Slot::Partial(Box::new(p)),
                None => {
                    return self.complete(
                        id,
                        Completed::Failed(MessageError::ReassemblyFull),
                        factory,
                        out,
                    );
                }
            },
            Slot::Partial(_) => {}
        }
        let Slot::Partial(p) = self.slot_mut(id) else {
            return Arrival::Duplicate;
        };
        match p.add(index, count, bytes, limits) {
            FragmentStep::Duplicate => Arrival::Duplicate,
            FragmentStep::Stored => Arrival::New,
            FragmentStep::Whole(whole) => self.complete(id, Completed::Owned(whole), factory, out),
            FragmentStep::Failed(e) => self.complete(id, Completed::Failed(e), factory, out),
        }
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

    /// A message of any length: its fields are the bytes after the type id.
    #[derive(Debug, PartialEq)]
    struct Blob(Vec<u8>);
    impl Encode for Blob {
        fn encoded_len(&self) -> usize {
            self.0.len()
        }
        fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
            w.put_slice(&self.0)
        }
    }
    impl Decode for Blob {
        const MIN_LEN: usize = 0;
        fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            Ok(Blob(r.take(r.remaining())?.to_vec()))
        }
    }
    impl Message for Blob {
        const TYPE_ID: u8 = 21;
        const NAME: &'static str = "Blob";
    }

    fn factory() -> MessageFactory {
        let mut f = MessageFactory::new();
        f.register::<Num>().unwrap();
        f.register::<Blob>().unwrap();
        f
    }

    /// An encoded `Blob` of `len` bytes in all (type id included), each
    /// field byte `fill`.
    fn blob(len: usize, fill: u8) -> Vec<u8> {
        let mut m = vec![fill; len];
        m[0] = Blob::TYPE_ID;
        m
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

    #[test]
    fn the_reorder_buffer_counts_the_length_of_large_messages() {
        let f = factory();
        // Room for four waiting 1,000-byte messages with their overhead: the
        // length, not only the per-message overhead, fills the buffer.
        let mut ch = RecvChannel::new(true, 4 * (1000 + BUFFERED_OVERHEAD));
        let mut out = Vec::new();
        for id in 1..=4u16 {
            let m = blob(1000, id as u8);
            assert_eq!(ch.on_message(id, &m, &f, &mut out), Arrival::New);
        }
        for id in 5..=20u16 {
            let m = blob(1000, id as u8);
            assert_eq!(
                ch.on_message(id, &m, &f, &mut out),
                Arrival::OverLimit,
                "message {id} past the byte limit"
            );
        }
        assert_eq!(ch.reorder_queue(), 4);
        // A 1-byte message beside a waiting 1,000-byte one, one byte past
        // the limit with both lengths counted, is refused.
        let mut ch2 = RecvChannel::new(true, 1000 + BUFFERED_OVERHEAD + 64);
        assert_eq!(
            ch2.on_message(1, &blob(1000, 1), &f, &mut out),
            Arrival::New
        );
        assert_eq!(
            ch2.on_message(2, &blob(1, 2), &f, &mut out),
            Arrival::OverLimit
        );
        assert!(out.is_empty());

        // The awaited message releases the four, whole and in order, and
        // frees their bytes: four more fit again.
        assert_eq!(ch.on_message(0, &blob(1000, 0), &f, &mut out), Arrival::New);
        let got: Vec<Blob> = out
            .drain(..)
            .map(|m| {
                let m = m.unwrap();
                let b = m.downcast_ref::<Blob>().unwrap();
                Blob(b.0.clone())
            })
            .collect();
        assert_eq!(got.len(), 5);
        for (i, b) in got.iter().enumerate() {
            assert_eq!(b.0.len(), 999);
            assert!(b.0.iter().all(|&x| x == i as u8), "message {i}");
        }
        assert_eq!(ch.reorder_queue(), 0);
        for id in 6..=9u16 {
            assert_eq!(
                ch.on_message(id, &blob(1000, 0), &f, &mut out),
                Arrival::New
            );
        }
        assert_eq!(
            ch.on_message(10, &blob(1000, 0), &f, &mut out),
            Arrival::OverLimit
        );
    }

    #[test]
    fn huge_fragment_counts_are_charged_their_slot_tables() {
        let f = factory();
        let max_bytes = 4 << 20;
        let mut limits = Reassembly {
            max_message_size: usize::MAX,
            max_bytes,
            in_use: 0,
        };
        // The first fragment of each message announces 65,535 fragments: a
        // table of 65,535 slots (over 1.5 MB) is allocated for it, so only
        // two such messages fit in 4 MiB, whatever their bytes.
        let slot_table = usize::from(u16::MAX) * std::mem::size_of::<Option<Vec<u8>>>();
        assert!(slot_table > 1_500_000);
        let mut ch = RecvChannel::new(false, usize::MAX);
        let mut out = Vec::new();
        let mut accepted = 0;
        for id in 0..200u16 {
            let arrival = ch.on_fragment(id, 7, u16::MAX, &[1], &f, &mut limits, &mut out);
            assert_eq!(arrival, Arrival::New);
            assert!(limits.in_use <= max_bytes, "{} in use", limits.in_use);
            if out.is_empty() {
                accepted += 1;
            } else {
                assert!(matches!(out.pop(), Some(Err(MessageError::ReassemblyFull))));
            }
        }
        assert_eq!(accepted, max_bytes / slot_table);
        assert_eq!(accepted, 2);
        assert!(limits.in_use >= accepted * slot_table);
    }

    #[test]
    fn the_reassembly_budget_refuses_fragments_that_cross_it() {
        let f = factory();
        let mut limits = Reassembly {
            max_message_size: 100_000,
            max_bytes: 10_000,
            in_use: 0,
        };
        let mut ch = RecvChannel::new(false, usize::MAX);
        let mut out = Vec::new();
        let a = blob(6000, 1);
        assert_eq!(
            ch.on_fragment(0, 0, 2, &a[..4000], &f, &mut limits, &mut out),
            Arrival::New
        );
        let held = limits.in_use;
        assert!(held >= 4000);
        // 4,000 more bytes would pass the budget by about 2,000: the message
        // is refused, with its charge returned, and the first one goes on.
        let b = blob(8000, 2);
        ch.on_fragment(1, 0, 2, &b[..4000], &f, &mut limits, &mut out);
        assert!(out.is_empty());
        ch.on_fragment(1, 1, 2, &b[4000..], &f, &mut limits, &mut out);
        assert!(
            matches!(out.pop(), Some(Err(MessageError::ReassemblyFull))),
            "{} bytes in use of {}",
            limits.in_use,
            limits.max_bytes
        );
        assert_eq!(limits.in_use, held);
        // Completing the first message frees its bytes.
        ch.on_fragment(0, 1, 2, &a[4000..], &f, &mut limits, &mut out);
        let m = out.pop().unwrap().unwrap();
        assert_eq!(m.downcast_ref::<Blob>().unwrap().0, a[1..]);
        assert_eq!(limits.in_use, 0);
        // A fragment that fills the budget exactly is accepted; then not
        // even a new message's slot table fits.
        ch.on_fragment(2, 0, 3, &[Blob::TYPE_ID], &f, &mut limits, &mut out);
        let rest = limits.max_bytes - limits.in_use;
        ch.on_fragment(2, 1, 3, &vec![3; rest], &f, &mut limits, &mut out);
        assert!(out.is_empty());
        assert_eq!(limits.in_use, limits.max_bytes);
        ch.on_fragment(3, 0, 2, &[Blob::TYPE_ID], &f, &mut limits, &mut out);
        assert!(matches!(out.pop(), Some(Err(MessageError::ReassemblyFull))));
        assert_eq!(limits.in_use, limits.max_bytes);
    }

    #[test]
    fn a_fragment_count_mismatch_returns_the_charge() {
        let f = factory();
        let mut limits = Reassembly {
            max_message_size: 100_000,
            max_bytes: 100_000,
            in_use: 0,
        };
        let mut ch = RecvChannel::new(false, usize::MAX);
        let mut out = Vec::new();
        ch.on_fragment(0, 0, 2, &[Blob::TYPE_ID; 500], &f, &mut limits, &mut out);
        let held = limits.in_use;
        assert!(held >= 500);
        ch.on_fragment(1, 0, 3, &[Blob::TYPE_ID; 700], &f, &mut limits, &mut out);
        assert!(limits.in_use >= held + 700);
        // Message 1's next fragment disagrees about the count: the message
        // is dropped as an error and all it was charged is returned.
        ch.on_fragment(1, 1, 4, &[1; 700], &f, &mut limits, &mut out);
        assert!(matches!(out.pop(), Some(Err(MessageError::BadFragment))));
        assert_eq!(limits.in_use, held);
        assert_eq!(
            ch.on_fragment(1, 2, 3, &[1; 700], &f, &mut limits, &mut out),
            Arrival::Duplicate
        );
        ch.on_fragment(0, 1, 2, &[2; 500], &f, &mut limits, &mut out);
        assert_eq!(
            out.pop()
                .unwrap()
                .unwrap()
                .downcast_ref::<Blob>()
                .unwrap()
                .0
                .len(),
            999
        );
        assert_eq!(limits.in_use, 0);
    }

    #[test]
    fn a_partial_release_keeps_counting_the_messages_still_waiting() {
        let f = factory();
        let charge = 1000 + BUFFERED_OVERHEAD;
        let mut ch = RecvChannel::new(true, 3 * charge);
        let mut out = Vec::new();
        // 1 and 2 wait for 0; 4 waits for 3.
        for id in [1, 2, 4] {
            assert_eq!(
                ch.on_message(id, &blob(1000, 0), &f, &mut out),
                Arrival::New
            );
        }
        assert_eq!(ch.on_message(0, &blob(1000, 0), &f, &mut out), Arrival::New);
        assert_eq!(out.len(), 3);
        assert_eq!(ch.reorder_queue(), 1);
        // Message 4 still holds a third of the buffer: two more fit, not three.
        assert_eq!(ch.on_message(5, &blob(1000, 0), &f, &mut out), Arrival::New);
        assert_eq!(ch.on_message(6, &blob(1000, 0), &f, &mut out), Arrival::New);
        assert_eq!(
            ch.on_message(7, &blob(1000, 0), &f, &mut out),
            Arrival::OverLimit
        );
    }
}
