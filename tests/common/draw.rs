//! Random draws on the simulator's [`Rng`]: numbers in a range, bytes,
//! elements of a slice.

use legume::net::sim::Rng;

pub fn below(rng: &mut Rng, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        rng.gen_range(0..n)
    }
}

pub fn between(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + below(rng, (hi - lo + 1) as u64) as usize
}

pub fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rng.fill_bytes(&mut b);
    b
}

/// Between `lo` and `hi` random bytes.
pub fn bytes_in(rng: &mut Rng, lo: usize, hi: usize) -> Vec<u8> {
    let n = between(rng, lo, hi);
    random_bytes(rng, n)
}

pub fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[below(rng, xs.len() as u64) as usize]
}
