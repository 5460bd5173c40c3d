//! Which message ids have arrived: a bitmap over the 16-bit id space that
//! slides with the newest id, so duplicate detection costs O(1) per message
//! (legume 0.5 scans a list of the last 1,000 ids).

/// Ids within this distance behind the newest are remembered; an id further
/// away counts as ahead (new).
const HALF: u16 = 1 << 15;

/// The set of ids received among the 32,768 before the newest.
pub(crate) struct IdWindow {
    bits: Box<[u64; 1024]>,
    newest: Option<u16>,
}

impl IdWindow {
    pub(crate) fn new() -> Self {
        IdWindow {
            bits: Box::new([0; 1024]),
            newest: None,
        }
    }

    fn get(&self, id: u16) -> bool {
        self.bits[usize::from(id >> 6)] & (1 << (id & 63)) != 0
    }

    fn set(&mut self, id: u16, on: bool) {
        let word = &mut self.bits[usize::from(id >> 6)];
        if on {
            *word |= 1 << (id & 63);
        } else {
            *word &= !(1 << (id & 63));
        }
    }

    /// The newest id received, if any.
    pub(crate) fn newest(&self) -> Option<u16> {
        self.newest
    }

    /// Records `id`; returns whether it is new (not a duplicate).
    pub(crate) fn insert(&mut self, id: u16) -> bool {
        let Some(newest) = self.newest else {
            self.newest = Some(id);
            self.set(id, true);
            return true;
        };
        let ahead = id.wrapping_sub(newest);
        if ahead != 0 && ahead < HALF {
            // Forget what these ids meant one lap ago before reusing them.
            for k in 1..=ahead {
                self.set(newest.wrapping_add(k), false);
            }
            self.newest = Some(id);
            self.set(id, true);
            return true;
        }
        let fresh = !self.get(id);
        self.set(id, true);
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_caught_across_the_wrap() {
        let mut w = IdWindow::new();
        for lap in 0..3u32 {
            for i in 0..=u16::MAX {
                // A late copy of an id 500 back, then the id itself, twice.
                assert!(!w.insert(i.wrapping_sub(500)) || (lap == 0 && i < 500));
                assert!(w.insert(i), "lap {lap} id {i}");
                assert!(!w.insert(i));
            }
        }
    }

    #[test]
    fn reordered_ids_arrive_once() {
        let mut w = IdWindow::new();
        let order = [5u16, 3, 4, 1, 2, 9, 6, 8, 7];
        for id in order {
            assert!(w.insert(id));
        }
        for id in order {
            assert!(!w.insert(id));
        }
        // Far ahead: a new lap; the old ids there are forgotten.
        assert!(w.insert(5 + 30_000));
        assert!(w.insert(5 + 60_000));
        assert!(w.insert(5 + 60_000 - 40_000));
    }
}
