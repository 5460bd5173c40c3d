//! 16-bit sequence arithmetic across wraparound, and a ring indexed by sequence.
//!
//! Packet sequence numbers and message ids are `u16` and wrap. Two values are
//! compared by the shorter way round the circle: `a` is newer than `b` when
//! it is less than half the circle ahead of it.

/// How far past the newest packet accepted a DATA packet's sequence number
/// may be and still be accepted, and how far behind it received sequence
/// numbers are remembered (`docs/PROTOCOL.md` 4, "Sequence window").
pub(crate) const SEQ_WINDOW: u16 = 4096;

/// Whether `a` is newer than `b`, across wraparound.
#[inline]
pub(crate) fn seq_newer(a: u16, b: u16) -> bool {
    (a > b && a - b <= 32768) || (a < b && b - a > 32768)
}

/// How far `a` is ahead of `b` (negative when behind), across wraparound.
#[inline]
pub(crate) fn seq_diff(a: u16, b: u16) -> i32 {
    // Reinterpreting the wrapped difference as signed is the serial arithmetic.
    i32::from(a.wrapping_sub(b) as i16)
}

/// A fixed-size ring of entries keyed by sequence number (a "sequence buffer").
///
/// Slot `seq % N` holds the entry for `seq`; an entry for an older sequence
/// that maps to the same slot is simply replaced. Lookups check the stored
/// sequence, so a stale slot is never mistaken for a newer one.
#[derive(Debug)]
pub(crate) struct SeqRing<T> {
    slots: Vec<Option<(u16, T)>>,
}

impl<T> SeqRing<T> {
    /// A ring of `size` slots; `size` must divide 65,536 so that slots stay
    /// consistent across wraparound.
    pub(crate) fn new(size: usize) -> Self {
        debug_assert!(size.is_power_of_two() && size <= 65536);
        SeqRing {
            slots: (0..size).map(|_| None).collect(),
        }
    }

    fn index(&self, seq: u16) -> usize {
        usize::from(seq) % self.slots.len()
    }

    /// The entry for `seq`, if the slot holds that sequence.
    pub(crate) fn get(&self, seq: u16) -> Option<&T> {
        match &self.slots[self.index(seq)] {
            Some((s, v)) if *s == seq => Some(v),
            _ => None,
        }
    }

    /// The entry for `seq`, mutably.
    pub(crate) fn get_mut(&mut self, seq: u16) -> Option<&mut T> {
        let i = self.index(seq);
        match &mut self.slots[i] {
            Some((s, v)) if *s == seq => Some(v),
            _ => None,
        }
    }

    /// Stores `value` for `seq`, returning the slot's previous entry.
    pub(crate) fn insert(&mut self, seq: u16, value: T) -> Option<(u16, T)> {
        let i = self.index(seq);
        self.slots[i].replace((seq, value))
    }

    /// Removes and returns the entry for `seq`.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, seq: u16) -> Option<T> {
        let i = self.index(seq);
        match &self.slots[i] {
            Some((s, _)) if *s == seq => self.slots[i].take().map(|(_, v)| v),
            _ => None,
        }
    }

    /// The slot for `seq` whatever sequence it holds, for reuse of its storage.
    pub(crate) fn slot_mut(&mut self, seq: u16) -> &mut Option<(u16, T)> {
        let i = self.index(seq);
        &mut self.slots[i]
    }
}

/// Which of the `SEQ_WINDOW` sequence numbers up to a moving newest one
/// have been seen: one bit each, in slot `seq % SEQ_WINDOW`.
///
/// A bit means something only for a sequence number less than
/// `SEQ_WINDOW` behind the newest; the owner keeps the newest and calls
/// [`advance`](Self::advance) before moving it, which clears the slots that
/// the new sequence numbers take over. 512 bytes.
#[derive(Debug)]
pub(crate) struct SeqBits {
    words: Box<[u64; SEQ_WINDOW as usize / 64]>,
}

impl SeqBits {
    pub(crate) fn new() -> Self {
        SeqBits {
            words: Box::new([0; SEQ_WINDOW as usize / 64]),
        }
    }

    fn slot(seq: u16) -> (usize, u64) {
        let i = usize::from(seq % SEQ_WINDOW);
        (i / 64, 1 << (i % 64))
    }

    /// Whether `seq`'s slot is marked (meaningful only within the window).
    pub(crate) fn get(&self, seq: u16) -> bool {
        let (w, bit) = Self::slot(seq);
        self.words[w] & bit != 0
    }

    /// Marks `seq` seen.
    pub(crate) fn set(&mut self, seq: u16) {
        let (w, bit) = Self::slot(seq);
        self.words[w] |= bit;
    }

    /// The newest moves from `from` to `to` (newer): the sequence numbers
    /// after `from` up to `to` are not seen yet, whatever their slots held
    /// for the numbers one window earlier.
    pub(crate) fn advance(&mut self, from: u16, to: u16) {
        let ahead = to.wrapping_sub(from);
        if ahead >= SEQ_WINDOW {
            *self.words = [0; SEQ_WINDOW as usize / 64];
            return;
        }
        for k in 1..=ahead {
            let (w, bit) = Self::slot(from.wrapping_add(k));
            self.words[w] &= !bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_across_wrap() {
        assert!(seq_newer(1, 0));
        assert!(!seq_newer(0, 1));
        assert!(seq_newer(0, 65535));
        assert!(!seq_newer(65535, 0));
        assert!(seq_newer(100, 65500));
        assert!(seq_newer(32768, 0));
        assert!(!seq_newer(32769, 0));
        assert!(!seq_newer(5, 5));
        for b in (0..=65535u16).step_by(97) {
            for d in [1u16, 2, 100, 32767] {
                let a = b.wrapping_add(d);
                assert!(seq_newer(a, b) && !seq_newer(b, a), "{b}+{d}");
                assert_eq!(seq_diff(a, b), i32::from(d));
                assert_eq!(seq_diff(b, a), -i32::from(d));
            }
        }
    }

    #[test]
    fn seq_bits_forget_what_the_window_passes() {
        let mut b = SeqBits::new();
        b.set(65535);
        b.advance(65535, 3);
        b.set(3);
        assert!(b.get(3) && b.get(65535) && !b.get(2));
        b.advance(3, 3 + SEQ_WINDOW - 1);
        assert!(b.get(3), "still one window behind the newest");
        b.advance(3 + SEQ_WINDOW - 1, 3 + SEQ_WINDOW);
        assert!(!b.get(3 + SEQ_WINDOW), "the slot of 3 is taken over");
        b.set(9);
        b.advance(9, 9u16.wrapping_add(40_000));
        assert!(!b.get(9), "a jump past the window clears everything");
    }

    #[test]
    fn diff_is_signed() {
        assert_eq!(seq_diff(3, 65534), 5);
        assert_eq!(seq_diff(65534, 3), -5);
        assert_eq!(seq_diff(7, 7), 0);
    }

    #[test]
    fn ring_checks_stored_sequence() {
        let mut ring = SeqRing::new(8);
        ring.insert(3, "a");
        assert_eq!(ring.get(3), Some(&"a"));
        assert_eq!(ring.get(11), None);
        assert_eq!(ring.insert(11, "b"), Some((3, "a")));
        assert_eq!(ring.get(3), None);
        assert_eq!(ring.remove(11), Some("b"));
        assert_eq!(ring.remove(11), None);
        ring.insert(65535, "w");
        ring.insert(0, "z");
        assert_eq!(ring.get(65535), Some(&"w"));
        assert_eq!(ring.get(0), Some(&"z"));
    }
}
