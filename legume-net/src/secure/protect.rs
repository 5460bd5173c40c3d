//! Packet protection: ChaCha20-Poly1305 with a sequence-number nonce, the
//! 16-bit wire sequence extended to 64 bits, and a replay window.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use thiserror::Error;
use zeroize::Zeroize;

use super::key::{random_bytes, RandomError, KEY_LEN};
pub use crate::packet::layout::TAG_LEN;

/// Packets a [`ReplayWindow`] remembers below the newest one.
pub const REPLAY_WINDOW: u64 = 1024;

/// A packet failed authentication: a wrong key, sequence number, header,
/// payload or tag. It must be dropped unread.
#[derive(Clone, Copy, Debug, Eq, Error, PartialEq)]
#[error("packet failed authentication")]
pub struct AuthError;

/// A key that seals the packets of one direction of a connection with
/// ChaCha20-Poly1305 (RFC 8439).
///
/// The 12-byte nonce is the connection's 32-bit session id, then the
/// packet's 64-bit sequence number, both big-endian: `session ‖ seq`
/// (`docs/PROTOCOL.md` 8.4). The sender must never seal two different
/// packets with the same session and sequence number under one key. Each
/// direction has its own key, so both ends may count from 0; the session
/// id, drawn by the server for each connection, keeps the nonces of two
/// connections made with one token apart.
///
/// ```
/// use legume_net::secure::PacketKey;
///
/// let key = PacketKey::from_bytes([7; 32]);
/// let header = b"header";
/// let mut payload = *b"hello";
/// let tag = key.seal(0xC0FFEE, 42, header, &mut payload);
/// assert_ne!(&payload, b"hello");
/// key.open(0xC0FFEE, 42, header, &mut payload, &tag)?;
/// assert_eq!(&payload, b"hello");
/// assert!(key.open(0xC0FFEE, 43, header, &mut payload, &tag).is_err());
/// assert!(key.open(0xC0FFEF, 42, header, &mut payload, &tag).is_err());
/// # Ok::<(), legume_net::secure::AuthError>(())
/// ```
#[derive(Clone)]
pub struct PacketKey {
    bytes: [u8; KEY_LEN],
    /// Zeroed on drop by the crate (its `zeroize` feature).
    cipher: ChaCha20Poly1305,
}

impl Drop for PacketKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl PacketKey {
    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let cipher = ChaCha20Poly1305::new(&Key::from(bytes));
        PacketKey { bytes, cipher }
    }

    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, RandomError> {
        let mut bytes = random_bytes::<KEY_LEN>()?;
        let key = PacketKey::from_bytes(bytes);
        bytes.zeroize();
        Ok(key)
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.bytes
    }

    /// Encrypts `payload` in place as packet `seq` of connection `session`,
    /// authenticating `header` (sent in the clear) with it; returns the tag
    /// to send after it.
    ///
    /// # Panics
    ///
    /// Only for a payload longer than the AEAD's limit of about 256 GiB.
    pub fn seal(&self, session: u32, seq: u64, header: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
        seal_with_nonce(&self.cipher, &nonce(session, seq), header, payload)
    }

    /// Decrypts `payload` in place if `tag` authenticates it, `header`,
    /// `session` and `seq` under this key; on failure `payload` is left
    /// encrypted.
    pub fn open(
        &self,
        session: u32,
        seq: u64,
        header: &[u8],
        payload: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthError> {
        open_with_nonce(&self.cipher, &nonce(session, seq), header, payload, tag)
    }

    /// Seals the packet `buf[..len]` in place: `buf[..header_len]` is the
    /// header (authenticated), the rest is encrypted, and the tag is written
    /// at `buf[len..len + 16]`. Returns the sealed length, or `None` when
    /// `buf` has no room for the tag or `header_len > len`.
    pub(crate) fn seal_packet(
        &self,
        session: u32,
        seq: u64,
        buf: &mut [u8],
        header_len: usize,
        len: usize,
    ) -> Option<usize> {
        if header_len > len || buf.len() < len + TAG_LEN {
            return None;
        }
        let (header, rest) = buf.split_at_mut(header_len);
        let (payload, tail) = rest.split_at_mut(len - header_len);
        let tag = seal_with_nonce(&self.cipher, &nonce(session, seq), header, payload);
        tail[..TAG_LEN].copy_from_slice(&tag);
        Some(len + TAG_LEN)
    }

    /// Opens a packet sealed by [`seal_packet`](Self::seal_packet): returns
    /// the plaintext length (header included; the tag is gone).
    pub(crate) fn open_packet(
        &self,
        session: u32,
        seq: u64,
        buf: &mut [u8],
        header_len: usize,
    ) -> Result<usize, AuthError> {
        let body_end = buf
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&end| end >= header_len)
            .ok_or(AuthError)?;
        let (header, rest) = buf.split_at_mut(header_len);
        let (payload, tag) = rest.split_at_mut(body_end - header_len);
        let tag = <[u8; TAG_LEN]>::try_from(&*tag).map_err(|_| AuthError)?;
        open_with_nonce(&self.cipher, &nonce(session, seq), header, payload, &tag)?;
        Ok(body_end)
    }
}

impl std::fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketKey(..)")
    }
}

/// The 12-byte nonce: `session` big-endian, then `seq` big-endian.
pub(crate) fn nonce(session: u32, seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&session.to_be_bytes());
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

/// ChaCha20-Poly1305 encryption in place with a detached tag.
pub(crate) fn seal_with_nonce(
    cipher: &ChaCha20Poly1305,
    nonce: &[u8; 12],
    aad: &[u8],
    payload: &mut [u8],
) -> [u8; TAG_LEN] {
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, payload.into())
        // The only error is a payload over the AEAD's ~256 GiB limit.
        .expect("payload within the ChaCha20-Poly1305 length limit");
    tag.into()
}

/// ChaCha20-Poly1305 decryption in place; the crate compares the tag in
/// constant time and leaves `payload` untouched when it does not match.
pub(crate) fn open_with_nonce(
    cipher: &ChaCha20Poly1305,
    nonce: &[u8; 12],
    aad: &[u8],
    payload: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), AuthError> {
    cipher
        .decrypt_inout_detached(&Nonce::from(*nonce), aad, payload.into(), &Tag::from(*tag))
        .map_err(|_| AuthError)
}

/// The 64-bit sequence number that the 16-bit `wire` sequence stands for,
/// given `last`, the newest 64-bit sequence number authenticated so far
/// (0 before any).
///
/// The rule (`docs/PROTOCOL.md` 8.5): the result is the number congruent to
/// `wire` modulo 2¹⁶ that is nearest to `last`, within
/// `last - 32767 ..= last + 32768`, so serial order matches section 4's
/// (a tie at distance 32768 counts as newer). Where the older candidate
/// would be negative, the newer one is taken.
///
/// A wrong guess, such as from a packet delayed by more than 32,767
/// packets, or a forged sequence number, yields a nonce under which the
/// packet fails authentication; only authenticated packets should move
/// `last`.
///
/// ```
/// use legume_net::secure::extend_seq;
///
/// assert_eq!(extend_seq(0, 5), 5);
/// assert_eq!(extend_seq(0xFFFF, 0x0002), 0x1_0002); // across the wrap
/// assert_eq!(extend_seq(0x1_0002, 0xFFFF), 0xFFFF); // a late packet
/// ```
pub fn extend_seq(last: u64, wire: u16) -> u64 {
    // Invariant: `as u16` keeps the low 16 bits, the wire form.
    let ahead = u64::from(wire.wrapping_sub(last as u16));
    if ahead <= 0x8000 {
        last.saturating_add(ahead)
    } else {
        let behind = 0x1_0000 - ahead;
        last.checked_sub(behind)
            .unwrap_or_else(|| last.saturating_add(ahead))
    }
}

/// Which 64-bit sequence numbers have been received: refuses duplicates
/// and numbers more than [`REPLAY_WINDOW`] − 1 below the newest.
///
/// Feed it only packets that passed authentication, or a forged one could
/// move the window; use [`check`](Self::check) first to drop duplicates
/// before paying for decryption.
///
/// ```
/// use legume_net::secure::ReplayWindow;
///
/// let mut w = ReplayWindow::new();
/// assert!(w.accept(10));
/// assert!(!w.accept(10), "a duplicate");
/// assert!(w.accept(3), "late but new");
/// assert!(w.accept(2000));
/// assert!(!w.check(3), "now too old to tell");
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ReplayWindow {
    /// The newest sequence number accepted, if any.
    newest: Option<u64>,
    /// Bit `s % REPLAY_WINDOW` is set when `s` (within the window) was seen.
    bits: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window: every sequence number is new.
    pub fn new() -> Self {
        ReplayWindow {
            newest: None,
            bits: [0; (REPLAY_WINDOW / 64) as usize],
        }
    }

    /// The newest sequence number accepted, if any.
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// Whether `seq` would be accepted: newer than the newest, or within the
    /// window and not seen.
    pub fn check(&self, seq: u64) -> bool {
        match self.newest {
            None => true,
            Some(newest) if seq > newest => true,
            Some(newest) => newest - seq < REPLAY_WINDOW && !self.bit(seq),
        }
    }

    /// Records `seq`; returns false (and records nothing) when it is a
    /// duplicate or too old.
    pub fn accept(&mut self, seq: u64) -> bool {
        if !self.check(seq) {
            return false;
        }
        match self.newest {
            Some(newest) if seq <= newest => {}
            Some(newest) if seq - newest < REPLAY_WINDOW => {
                // Forget the slots that now stand for newest+1 ..= seq.
                for s in newest + 1..=seq {
                    self.clear(s);
                }
                self.newest = Some(seq);
            }
            _ => {
                self.bits = [0; (REPLAY_WINDOW / 64) as usize];
                self.newest = Some(seq);
            }
        }
        let (word, mask) = Self::slot(seq);
        self.bits[word] |= mask;
        true
    }

    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn bit(&self, seq: u64) -> bool {
        let (word, mask) = Self::slot(seq);
        self.bits[word] & mask != 0
    }

    fn clear(&mut self, seq: u64) {
        let (word, mask) = Self::slot(seq);
        self.bits[word] &= !mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn extend_seq_edges() {
        // From the start.
        assert_eq!(extend_seq(0, 0), 0);
        assert_eq!(extend_seq(0, 0x8000), 0x8000);
        assert_eq!(extend_seq(0, 0x8001), 0x8001, "no negative numbers");
        assert_eq!(extend_seq(0, 0xFFFF), 0xFFFF, "no negative numbers");
        assert_eq!(extend_seq(5, 0xFFFF), 0xFFFF);
        // Around the first wrap.
        assert_eq!(extend_seq(0xFFFF, 0xFFFF), 0xFFFF);
        assert_eq!(extend_seq(0xFFFF, 0), 0x1_0000);
        assert_eq!(extend_seq(0xFFFF, 0x7FFF), 0x1_7FFF, "32768 ahead is newer");
        assert_eq!(extend_seq(0xFFFF, 0x8000), 0x8000, "32767 behind is older");
        assert_eq!(extend_seq(0x1_0000, 0xFFFF), 0xFFFF);
        assert_eq!(extend_seq(0x1_0000, 0x8001), 0x8001);
        assert_eq!(extend_seq(0x1_0000, 0x8000), 0x1_8000, "tie: newer");
        // Far along.
        let last = 0x1234_5678_9ABC_FFF0;
        assert_eq!(extend_seq(last, 0x0010), 0x1234_5678_9ABD_0010);
        assert_eq!(extend_seq(last, 0xFF00), 0x1234_5678_9ABC_FF00);
        assert_eq!(extend_seq(last, 0x7FF0), 0x1234_5678_9ABD_7FF0);
        assert_eq!(extend_seq(last, 0x7FF1), 0x1234_5678_9ABC_7FF1);
        // The end of the number space saturates instead of wrapping.
        assert_eq!(extend_seq(u64::MAX, 0xFFFF), u64::MAX);
        assert_eq!(extend_seq(u64::MAX - 1, 0x0005), u64::MAX);
    }

    proptest! {
        /// Every number within -32767..=32768 of `last` is recovered from
        /// its low 16 bits.
        #[test]
        fn extend_seq_recovers_nearby_numbers(last in 0x8000u64..u64::MAX / 2, delta in -32767i64..=32768) {
            let seq = last.checked_add_signed(delta).unwrap();
            prop_assert_eq!(extend_seq(last, seq as u16), seq);
        }

        /// The window agrees with a set-based model: a number is accepted
        /// iff it was never accepted and is less than the window below the
        /// newest accepted one.
        #[test]
        fn replay_window_matches_model(seqs in prop::collection::vec(
            prop_oneof![0u64..3000, 0u64..40, 1_000_000u64..1_000_100], 1..600)) {
            let mut w = ReplayWindow::new();
            let mut seen = HashSet::new();
            let mut newest: Option<u64> = None;
            for s in seqs {
                let fresh = !seen.contains(&s)
                    && newest.is_none_or(|n| s > n || n - s < REPLAY_WINDOW);
                prop_assert_eq!(w.check(s), fresh, "check {}", s);
                prop_assert_eq!(w.accept(s), fresh, "accept {}", s);
                if fresh {
                    seen.insert(s);
                    newest = Some(newest.map_or(s, |n| n.max(s)));
                }
                prop_assert_eq!(w.newest(), newest);
            }
        }

        /// Whatever the order, each number of a window-sized range is
        /// accepted exactly once.
        #[test]
        fn window_accepts_everything_in_it_once(
            base in 0u64..1 << 40,
            order in Just((0..REPLAY_WINDOW).collect::<Vec<_>>()).prop_shuffle(),
            dups in prop::collection::vec(0..REPLAY_WINDOW, 0..200),
        ) {
            let mut w = ReplayWindow::new();
            // The newest first, so the whole range is inside the window.
            prop_assert!(w.accept(base + REPLAY_WINDOW - 1));
            let mut accepted = 1;
            for i in order.into_iter().chain(dups) {
                if w.accept(base + i) {
                    accepted += 1;
                }
            }
            prop_assert_eq!(accepted, REPLAY_WINDOW);
            if let Some(below) = base.checked_sub(1) {
                prop_assert!(!w.accept(below), "just below the window");
            }
        }
    }

    #[test]
    fn window_edges() {
        let mut w = ReplayWindow::new();
        assert!(w.accept(REPLAY_WINDOW));
        assert!(w.accept(1), "exactly window-1 below the newest");
        assert!(!w.check(0), "window below: too old");
        assert!(w.accept(2 * REPLAY_WINDOW), "a jump of exactly the window");
        assert!(!w.check(REPLAY_WINDOW), "out of the window now");
        assert!(
            w.accept(REPLAY_WINDOW + 1),
            "slot reused, not confused with 1"
        );
        assert!(!w.accept(REPLAY_WINDOW + 1));
        assert!(w.accept(u64::MAX));
        assert!(!w.accept(u64::MAX));
    }

    #[test]
    fn sealed_packet_roundtrip_and_every_bit_matters() {
        let key = PacketKey::from_bytes([3; KEY_LEN]);
        let mut buf = [0u8; 64];
        buf[..10].copy_from_slice(b"HDRpayload");
        let n = key.seal_packet(0, 9, &mut buf, 3, 10).unwrap();
        assert_eq!(n, 10 + TAG_LEN);
        let sealed = buf[..n].to_vec();
        for bit in 0..n * 8 {
            let mut b = sealed.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.open_packet(0, 9, &mut b, 3),
                Err(AuthError),
                "bit {bit}"
            );
        }
        let mut b = sealed.clone();
        assert_eq!(key.open_packet(1, 9, &mut b, 3), Err(AuthError), "session");
        assert_eq!(key.open_packet(0, 8, &mut b, 3), Err(AuthError), "seq");
        assert_eq!(key.open_packet(0, 9, &mut b, 3), Ok(10));
        assert_eq!(&b[..10], b"HDRpayload");
        assert_eq!(key.open_packet(0, 9, &mut [0u8; 15], 0), Err(AuthError));
        assert_eq!(key.open_packet(0, 9, &mut [0u8; 16], 1), Err(AuthError));
        assert_eq!(key.seal_packet(0, 9, &mut [0u8; 20], 3, 10), None);
        assert_eq!(key.seal_packet(0, 9, &mut [0u8; 40], 11, 10), None);
    }

    #[test]
    fn a_failed_open_leaves_the_ciphertext() {
        let key = PacketKey::from_bytes([3; KEY_LEN]);
        let mut payload = *b"secret";
        let tag = key.seal(5, 1, b"", &mut payload);
        let sealed = payload;
        assert_eq!(key.open(5, 1, b"x", &mut payload, &tag), Err(AuthError));
        assert_eq!(payload, sealed);
        let other = PacketKey::from_bytes([4; KEY_LEN]);
        assert_eq!(other.open(5, 1, b"", &mut payload, &tag), Err(AuthError));
        assert_eq!(key.open(5, 1, b"", &mut payload, &tag), Ok(()));
        assert_eq!(&payload, b"secret");
        assert_eq!(format!("{key:?}"), "PacketKey(..)");
    }
}
