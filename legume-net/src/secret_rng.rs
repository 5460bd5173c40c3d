//! The random numbers a server's security rests on: its cookie key and the
//! session ids it hands out.
//!
//! They come from ChaCha20 (the `rand_chacha` crate), a cryptographically
//! secure generator: collecting any number of its outputs reveals nothing
//! about the others or about its key. In production it is keyed with 256
//! bits from the operating system (`getrandom`); tests and simulations may
//! key it from a 64-bit seed through the constructor whose name says that is
//! insecure. The simulator's fast [`Rng`](crate::sim::Rng) never keys a
//! server: its outputs are linear in its state and would give that state,
//! and with it every secret, away.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::secure::{random_bytes, RandomError};

/// A ChaCha20 stream for server secrets.
pub(crate) struct SecretRng(ChaCha20Rng);

impl SecretRng {
    /// A generator keyed with 256 bits from the operating system's CSPRNG.
    pub(crate) fn from_os() -> Result<Self, RandomError> {
        Ok(SecretRng(ChaCha20Rng::from_seed(random_bytes::<32>()?)))
    }

    /// A generator whose whole output follows from `seed`: for repeatable
    /// tests and simulations only, since anyone who knows or guesses the
    /// seed knows every secret drawn from it.
    pub(crate) fn from_insecure_seed(seed: u64) -> Self {
        SecretRng(ChaCha20Rng::seed_from_u64(seed))
    }

    /// Fills `dest` with secret bytes.
    pub(crate) fn fill(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    /// 32 secret bits.
    pub(crate) fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
}

impl std::fmt::Debug for SecretRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state is the secret: never print it.
        f.write_str("SecretRng(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_keyed_generators_differ() {
        let mut a = SecretRng::from_os().expect("OS randomness");
        let mut b = SecretRng::from_os().expect("OS randomness");
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_ne!(x, y);
    }

    #[test]
    fn an_insecure_seed_is_repeatable_and_is_chacha20() {
        let mut a = SecretRng::from_insecure_seed(7);
        let mut b = SecretRng::from_insecure_seed(7);
        assert_eq!(a.next_u32(), b.next_u32());
        // The stream is ChaCha20's for that seed, not the simulator's xoshiro.
        let mut chacha = ChaCha20Rng::seed_from_u64(7);
        chacha.next_u32();
        assert_eq!(a.next_u32(), chacha.next_u32());
    }

    #[test]
    fn debug_prints_no_state() {
        assert_eq!(
            format!("{:?}", SecretRng::from_insecure_seed(1)),
            "SecretRng(..)"
        );
    }
}
