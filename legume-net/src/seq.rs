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

/// A ring of entries keyed by sequence number (a "sequence buffer") that
/// behaves as one of `window` slots but holds only as many as its entries
/// need.
///
/// Slot `seq % window` holds the entry for `seq`; an entry for an older
/// sequence that maps to the same slot is simply replaced. Lookups check the
/// stored sequence, so a stale slot is never mistaken for a newer one.
///
/// The storage is a power of two of slots up to `window`, allocated on first
/// insert: entries sit at `seq % len`, and an insert that would land on
/// another entry that the full window keeps apart doubles the storage
/// first. So the ring always holds exactly what a `window`-slot ring would,
/// while an idle connection's ring holds a few slots instead of `window`.
/// [`compact`](Self::compact) drops entries the owner no longer needs and
/// gives back storage after a burst (see there for the bound).
#[derive(Debug)]
pub(crate) struct SeqRing<T> {
    slots: Vec<Option<(u16, T)>>,
    /// The slots of the ring this one behaves as.
    window: usize,
    /// Entries held.
    len: usize,
    /// The most entries held at once since the last `compact` that
    /// followed an insert.
    peak: usize,
    /// Whether an entry was inserted since the last `compact`.
    inserted: bool,
}

impl<T> SeqRing<T> {
    /// Slots allocated on the first insert.
    const MIN_SLOTS: usize = 4;

    /// A ring that behaves as one of `window` slots; `window` must divide
    /// 65,536 so that slots stay consistent across wraparound. Allocates
    /// nothing until the first insert.
    pub(crate) fn new(window: usize) -> Self {
        debug_assert!(window.is_power_of_two() && window <= 65536);
        SeqRing {
            slots: Vec::new(),
            window,
            len: 0,
            peak: 0,
            inserted: false,
        }
    }

    fn index(&self, seq: u16) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        Some(usize::from(seq) & mask)
    }

    /// The entry for `seq`, if the slot holds that sequence.
    pub(crate) fn get(&self, seq: u16) -> Option<&T> {
        match &self.slots[self.index(seq)?] {
            Some((s, v)) if *s == seq => Some(v),
            _ => None,
        }
    }

    /// The entry for `seq`, mutably.
    pub(crate) fn get_mut(&mut self, seq: u16) -> Option<&mut T> {
        let i = self.index(seq)?;
        match &mut self.slots[i] {
            Some((s, v)) if *s == seq => Some(v),
            _ => None,
        }
    }

    /// Stores `value` for `seq`, returning the slot's previous entry.
    pub(crate) fn insert(&mut self, seq: u16, value: T) -> Option<(u16, T)> {
        let window = self.window;
        let old = self.slot_mut(seq).replace((seq, value));
        if old.is_none() {
            self.len += 1;
            self.peak = self.peak.max(self.len);
        }
        self.inserted = true;
        debug_assert!(old.as_ref().is_none_or(|(s, _)| same_slot(*s, seq, window)));
        old
    }

    /// Removes and returns the entry for `seq`.
    #[cfg(test)]
    pub(crate) fn remove(&mut self, seq: u16) -> Option<T> {
        let i = self.index(seq)?;
        match &self.slots[i] {
            Some((s, _)) if *s == seq => {
                self.len -= 1;
                self.slots[i].take().map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// Takes the entry of `seq`'s slot in the full window, whatever
    /// sequence it holds (the entry an insert of `seq` would replace).
    pub(crate) fn take_slot(&mut self, seq: u16) -> Option<(u16, T)> {
        let i = self.index(seq)?;
        let (s, _) = self.slots[i].as_ref()?;
        if !same_slot(*s, seq, self.window) {
            return None;
        }
        self.len -= 1;
        self.slots[i].take()
    }

    /// The slot for `seq` in the full window, whatever sequence it holds,
    /// after growing the storage until no other entry shares it.
    fn slot_mut(&mut self, seq: u16) -> &mut Option<(u16, T)> {
        loop {
            match self.index(seq) {
                None => self.resize(Self::MIN_SLOTS.min(self.window)),
                Some(i) => match &self.slots[i] {
                    Some((s, _)) if !same_slot(*s, seq, self.window) => {
                        self.resize(self.slots.len() * 2);
                    }
                    _ => return &mut self.slots[i],
                },
            }
        }
    }

    /// Moves the entries into `slots` slots, where they fall on distinct
    /// slots (the caller checks).
    fn resize(&mut self, slots: usize) {
        let old = std::mem::take(&mut self.slots);
        if slots == 0 {
            return;
        }
        self.slots = (0..slots).map(|_| None).collect();
        for (s, v) in old.into_iter().flatten() {
            let i = usize::from(s) & (slots - 1);
            debug_assert!(self.slots[i].is_none());
            self.slots[i] = Some((s, v));
        }
    }

    /// Drops the entries `keep` refuses, then, if anything was inserted
    /// since the last call, gives back storage when the ring is four times
    /// larger than the most entries it held since then (all of it once
    /// empty): a burst's storage stays for
    /// the next burst of its size, and goes once the traffic is smaller.
    /// It costs a pass over the slots: call it when the owner's entries
    /// settle (for the sent-packet ring, when nothing is in flight), not
    /// per entry.
    pub(crate) fn compact(&mut self, mut keep: impl FnMut(&T) -> bool) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|(_, v)| !keep(v)) {
                *slot = None;
                self.len -= 1;
            }
        }
        if !std::mem::take(&mut self.inserted) {
            // Nothing new since the last call: its decision stands.
            return;
        }
        let high_water = self.peak.max(1).next_power_of_two();
        if self.slots.len() >= 4 * high_water {
            let fit = self.smallest_fit();
            if fit < self.slots.len() {
                self.resize(fit);
            }
        }
        self.peak = self.len;
    }

    /// The fewest slots (a power of two, at least `MIN_SLOTS`, or none when
    /// empty) on which the entries fall on distinct slots.
    fn smallest_fit(&self) -> usize {
        if self.len == 0 {
            return 0;
        }
        let mut slots = Self::MIN_SLOTS
            .max(self.len.next_power_of_two())
            .min(self.window);
        while slots < self.slots.len() {
            let mut taken = vec![false; slots];
            let distinct = self.slots.iter().flatten().all(|(s, _)| {
                let i = usize::from(*s) & (slots - 1);
                !std::mem::replace(&mut taken[i], true)
            });
            if distinct {
                break;
            }
            slots *= 2;
        }
        slots
    }

    /// Slots allocated (for the tests of what an idle connection holds).
    #[cfg(test)]
    pub(crate) fn allocated_slots(&self) -> usize {
        self.slots.len()
    }
}

/// Whether `a` and `b` share a slot in a ring of `window` slots.
fn same_slot(a: u16, b: u16, window: usize) -> bool {
    usize::from(a) % window == usize::from(b) % window
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

    /// The ring against a plain one of `window` slots: the same inserts
    /// (at a moving sequence, now and then far ahead, and jumping whole
    /// laps), takes and compactions give the same entries, whatever the
    /// storage holds.
    #[test]
    fn a_growing_ring_holds_what_a_full_ring_holds() {
        const WINDOW: usize = 64;
        let mut rng = crate::sim::Rng::new(7);
        let mut ring = SeqRing::new(WINDOW);
        let mut full: Vec<Option<(u16, u32)>> = vec![None; WINDOW];
        let mut seq = 65_500u16;
        for step in 0..20_000u32 {
            seq = seq.wrapping_add(match rng.gen_range(0..100) {
                0 => 40_000,
                1..=3 => 1 + rng.gen_range(0..200) as u16,
                _ => 1,
            });
            match rng.gen_range(0..10) {
                0 => {
                    let want = full[usize::from(seq) % WINDOW].take();
                    assert_eq!(ring.take_slot(seq), want, "take {seq} at {step}");
                }
                1 => {
                    // Drop odd values, as an owner drops settled entries.
                    ring.compact(|v| v % 2 == 0);
                    for slot in &mut full {
                        if slot.is_some_and(|(_, v)| v % 2 == 1) {
                            *slot = None;
                        }
                    }
                }
                _ => {
                    let want = full[usize::from(seq) % WINDOW].replace((seq, step));
                    assert_eq!(ring.insert(seq, step), want, "insert {seq} at {step}");
                }
            }
            for probe in [seq, seq.wrapping_sub(1), seq.wrapping_sub(WINDOW as u16)] {
                let want = full[usize::from(probe) % WINDOW]
                    .filter(|(s, _)| *s == probe)
                    .map(|(_, v)| v);
                assert_eq!(ring.get(probe).copied(), want, "get {probe} at {step}");
            }
            assert!(ring.allocated_slots() <= WINDOW);
        }
    }

    #[test]
    fn a_ring_gives_back_a_burst_s_storage() {
        let mut ring = SeqRing::new(1024);
        assert_eq!(ring.allocated_slots(), 0, "nothing before the first insert");
        ring.insert(0, ());
        assert_eq!(ring.allocated_slots(), 4);
        for seq in 1..600 {
            ring.insert(seq, ());
        }
        assert_eq!(ring.allocated_slots(), 1024);
        // The burst's storage stays while bursts of its size go on.
        ring.compact(|_| false);
        assert_eq!(ring.allocated_slots(), 1024);
        for seq in 600..1000 {
            ring.insert(seq, ());
        }
        ring.compact(|_| false);
        assert_eq!(ring.allocated_slots(), 1024);
        // A quiet period (one entry at a time) gives it back, and an empty
        // ring holds nothing.
        ring.insert(1000, ());
        ring.compact(|_| false);
        assert_eq!(ring.allocated_slots(), 0);
        // Two entries 512 apart need the full window; once one goes, the
        // other fits in the smallest ring.
        ring.insert(2000, ());
        ring.insert(2512, ());
        assert_eq!(ring.allocated_slots(), 1024);
        ring.compact(|_| true);
        assert_eq!(ring.allocated_slots(), 1024, "both kept, still apart");
        assert!(ring.take_slot(2512).is_some());
        ring.insert(2001, ());
        ring.compact(|_| true);
        assert_eq!(ring.allocated_slots(), 4);
        assert!(ring.get(2000).is_some() && ring.get(2001).is_some());
        // With nothing inserted since, a second call changes nothing.
        ring.compact(|_| true);
        assert_eq!(ring.allocated_slots(), 4);
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
