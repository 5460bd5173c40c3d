//! Convenience draws on the simulator's [`Rng`] for the generators.

use legume_net::sim::Rng;

/// Convenience draws on a [`Rng`].
pub(crate) trait Draw {
    fn below(&mut self, n: u64) -> u64;
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T;
    fn byte(&mut self) -> u8;
    fn bytes(&mut self, len: usize) -> Vec<u8>;
    /// Random bytes, between `lo` and `hi` (excluded) of them.
    fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8>;
    /// A number drawn for its edge cases: 0, 1, max, max - 1, or uniform.
    fn edgy(&mut self, max: u64) -> u64;
    fn text(&mut self, max_bytes: usize) -> String;
}

impl Draw for Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.gen_range(0..n)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.fill_bytes(&mut b);
        b
    }

    fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let len = self.gen_range(lo..hi) as usize;
        self.bytes(len)
    }

    fn edgy(&mut self, max: u64) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => 1.min(max),
            2 => max,
            3 => max.saturating_sub(1),
            _ => self.next_u64() & max,
        }
    }

    /// UTF-8 text of at most `max_bytes` bytes, with no NUL: ASCII and 2-,
    /// 3- and 4-byte characters.
    fn text(&mut self, max_bytes: usize) -> String {
        const CHARS: [char; 10] = ['a', 'Z', '0', ' ', '~', '\u{7f}', 'é', 'ß', '€', '🦀'];
        let target = self.below(max_bytes as u64 + 1) as usize;
        let mut s = String::new();
        for _ in 0..target {
            let c = *self.pick(&CHARS);
            if s.len() + c.len_utf8() > target {
                break;
            }
            s.push(c);
        }
        s
    }
}
