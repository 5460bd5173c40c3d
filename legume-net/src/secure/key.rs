//! The private key shared by the backend and the game servers, and the
//! operating system's random numbers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use thiserror::Error;
use zeroize::Zeroize;

/// The size of every key in the secure mode, in bytes (256 bits).
pub const KEY_LEN: usize = 32;

/// The operating system could not supply random bytes.
///
/// Keys and token nonces come only from the OS (`getrandom`); when it
/// fails, nothing is issued rather than something predictable.
#[derive(Clone, Copy, Debug, Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(getrandom::Error);

/// `N` random bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(RandomError)?;
    Ok(bytes)
}

/// The secret a backend and its game servers share: it seals the private
/// part of every [`ConnectToken`](super::ConnectToken) (XChaCha20-Poly1305).
///
/// Anyone who has it can issue tokens for every server that trusts it, so
/// keep it out of clients, logs and version control: its `Debug` prints no
/// key bytes, and its memory is zeroed when it is dropped.
///
/// ```
/// use legume_net::PrivateKey;
///
/// let key = PrivateKey::generate()?;
/// let text = key.to_base64(); // for the servers' configuration
/// let same = PrivateKey::from_base64(&text).ok_or("not a key")?;
/// assert_eq!(same.to_bytes(), key.to_bytes());
/// assert_eq!(format!("{key:?}"), "PrivateKey(..)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PrivateKey([u8; KEY_LEN]);

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, RandomError> {
        random_bytes().map(PrivateKey)
    }

    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PrivateKey(bytes)
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    /// The key as standard base64 with padding (44 characters).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key from standard base64 (surrounding whitespace is ignored);
    /// `None` unless it decodes to exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        let mut bytes = STANDARD.decode(text.trim()).ok()?;
        let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice())
            .ok()
            .map(PrivateKey);
        bytes.zeroize();
        key
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ_and_roundtrip() {
        let a = PrivateKey::generate().unwrap();
        let b = PrivateKey::generate().unwrap();
        assert_ne!(a.to_bytes(), b.to_bytes());
        assert_eq!(
            PrivateKey::from_bytes(a.to_bytes()).to_bytes(),
            a.to_bytes()
        );
        let text = a.to_base64();
        assert_eq!(text.len(), 44);
        let again = PrivateKey::from_base64(&format!(" {text}\n")).unwrap();
        assert_eq!(again.to_bytes(), a.to_bytes());
    }

    #[test]
    fn base64_of_a_known_key() {
        let key = PrivateKey::from_bytes(std::array::from_fn(|i| i as u8));
        assert_eq!(
            key.to_base64(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        );
        assert!(PrivateKey::from_base64("AAEC").is_none(), "too short");
        assert!(PrivateKey::from_base64("not base64!").is_none());
    }

    #[test]
    fn debug_prints_no_key_bytes() {
        let key = PrivateKey::from_bytes([0xAB; KEY_LEN]);
        let text = format!("{key:?} {key:#?}");
        assert!(
            !text.contains("171") && !text.to_lowercase().contains("ab"),
            "{text}"
        );
    }
}
