//! The hash, the fingerprints built with it, the compact per-message
//! summary a peer sends, and the comparison of two schemas.

use std::fmt;

use crate::codec::{Decode, Encode, Reader, Writer};
use crate::error::{DecodeError, EncodeError};

/// The FNV-1a 64-bit offset basis.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// The FNV-1a 64-bit prime, 2^40 + 2^8 + 0xb3.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The 64-bit FNV-1a hash of `bytes`.
///
/// Starting from the offset basis `0xcbf29ce484222325`, for each byte: XOR
/// the byte into the low 8 bits, then multiply by the prime
/// `0x100000001b3`, wrapping modulo 2^64. The same on every platform, build
/// and Rust version, unlike `std`'s `DefaultHasher`. Not cryptographic: it
/// detects accidental mismatches, not forgeries.
///
/// ```
/// use legume_core::schema::fnv1a_64;
/// assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
/// assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
/// ```
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    Fnv1a64::new().write(bytes).finish()
}

/// A running FNV-1a 64 hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fnv1a64(u64);

impl Fnv1a64 {
    pub(crate) fn new() -> Self {
        Fnv1a64(FNV_OFFSET_BASIS)
    }

    pub(crate) fn write(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        self
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// A 64-bit schema fingerprint, of one message or of a whole factory.
///
/// Equal fingerprints mean (up to a 1 in 2^64 accident) equal canonical
/// schema text. [`Display`](fmt::Display) writes 16 lowercase hex digits. On
/// the wire it is a big-endian `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaFingerprint(u64);

impl SchemaFingerprint {
    /// The fingerprint with the given value.
    pub const fn from_u64(value: u64) -> Self {
        SchemaFingerprint(value)
    }

    /// The fingerprint's value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The FNV-1a 64 hash of `text`'s UTF-8 bytes.
    pub fn of_text(text: &str) -> Self {
        SchemaFingerprint(fnv1a_64(text.as_bytes()))
    }

    /// The 32-bit form sent in a [`SchemaSummary`]: the two halves XORed,
    /// `(fp >> 32) ^ (fp & 0xffff_ffff)` (FNV's recommended way to shorten
    /// a hash).
    pub const fn compact(self) -> u32 {
        ((self.0 >> 32) ^ self.0) as u32
    }
}

impl From<u64> for SchemaFingerprint {
    fn from(value: u64) -> Self {
        SchemaFingerprint(value)
    }
}

impl From<SchemaFingerprint> for u64 {
    fn from(fp: SchemaFingerprint) -> Self {
        fp.0
    }
}

impl fmt::Display for SchemaFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Encode for SchemaFingerprint {
    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u64(self.0)
    }
}

impl Decode for SchemaFingerprint {
    const MIN_LEN: usize = 8;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_u64().map(SchemaFingerprint)
    }
}

/// One message in a [`SchemaSummary`]: its type id and its compact (32-bit)
/// fingerprint. On the wire: the id byte, then the fingerprint as a
/// big-endian `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchemaEntry {
    /// The message's type id.
    pub id: u8,
    /// [`SchemaFingerprint::compact`] of the message's fingerprint.
    pub fingerprint: u32,
}

impl Encode for SchemaEntry {
    fn encoded_len(&self) -> usize {
        5
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u8(self.id)?;
        w.put_u32(self.fingerprint)
    }
}

impl Decode for SchemaEntry {
    const MIN_LEN: usize = 5;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SchemaEntry {
            id: r.read_u8()?,
            fingerprint: r.read_u32()?,
        })
    }
}

/// What a peer sends so that the other side can check its schema: the
/// factory fingerprint and, optionally, every message's compact fingerprint.
///
/// Built by
/// [`MessageFactory::schema_summary`](crate::MessageFactory::schema_summary)
/// and compared by
/// [`MessageFactory::schema_diff`](crate::MessageFactory::schema_diff).
/// The 64-bit factory fingerprint decides whether the schemas match; the
/// per-message list only says which messages differ.
///
/// # Wire form
///
/// | bytes | content |
/// |---|---|
/// | 8 | the factory fingerprint, `u64` |
/// | 1 | `0`: no per-message list follows; `1`: it does |
/// | 1-2 | (list only) the entry count, varint |
/// | 5 each | (list only) type id `u8`, compact fingerprint `u32`, ids strictly increasing |
///
/// That is `10 + 5 n` bytes for n < 128 messages with the list, 9 without.
/// Decoding refuses ids that are not strictly increasing
/// ([`DecodeError::IdsOutOfOrder`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SchemaSummary {
    fingerprint: SchemaFingerprint,
    entries: Option<Vec<SchemaEntry>>,
}

impl SchemaSummary {
    /// A summary of a factory's fingerprint and entries, sorted by id.
    pub(crate) fn new(fingerprint: SchemaFingerprint, entries: Vec<SchemaEntry>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
        SchemaSummary {
            fingerprint,
            entries: Some(entries),
        }
    }

    /// A summary holding the factory fingerprint alone.
    pub fn fingerprint_only(fingerprint: SchemaFingerprint) -> Self {
        SchemaSummary {
            fingerprint,
            entries: None,
        }
    }

    /// The factory fingerprint.
    pub fn fingerprint(&self) -> SchemaFingerprint {
        self.fingerprint
    }

    /// The per-message list, in id order, when the summary carries it.
    pub fn entries(&self) -> Option<&[SchemaEntry]> {
        self.entries.as_deref()
    }

    /// The summary without its per-message list.
    pub fn without_entries(self) -> Self {
        Self::fingerprint_only(self.fingerprint)
    }

    /// The summary, without its per-message list unless the whole summary
    /// encodes in at most `max_len` bytes.
    ///
    /// The list is kept whole or dropped, never cut: a partial list would
    /// report the left-out messages as missing. The fingerprint is always
    /// kept, so the result may still be longer than `max_len` (9 bytes).
    pub fn within(self, max_len: usize) -> Self {
        if self.encoded_len() <= max_len {
            self
        } else {
            self.without_entries()
        }
    }

    /// Compares this (local) summary with a `remote` one. Entries carry no
    /// names; [`MessageFactory::schema_diff`](crate::MessageFactory::schema_diff)
    /// names the local side's messages.
    pub fn diff(&self, remote: &SchemaSummary) -> SchemaDiff {
        let mut diff = SchemaDiff {
            local: self.fingerprint,
            remote: remote.fingerprint,
            compared: false,
            differing: Vec::new(),
            missing_on_remote: Vec::new(),
            missing_on_local: Vec::new(),
            sides: ("local", "remote"),
        };
        if diff.is_match() {
            return diff;
        }
        let (Some(local), Some(theirs)) = (self.entries(), remote.entries()) else {
            return diff;
        };
        diff.compared = true;
        let entry = |e: &SchemaEntry| DiffEntry {
            id: e.id,
            name: None,
        };
        let (mut a, mut b) = (local.iter().peekable(), theirs.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.id == y.id => {
                    if x.fingerprint != y.fingerprint {
                        diff.differing.push(entry(x));
                    }
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.id < y.id => {
                    diff.missing_on_remote.push(entry(x));
                    a.next();
                }
                (Some(x), None) => {
                    diff.missing_on_remote.push(entry(x));
                    a.next();
                }
                (_, Some(y)) => {
                    diff.missing_on_local.push(entry(y));
                    b.next();
                }
                (None, None) => break,
            }
        }
        diff
    }
}

impl Encode for SchemaSummary {
    fn encoded_len(&self) -> usize {
        self.fingerprint.encoded_len() + self.entries.encoded_len()
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.fingerprint.encode(w)?;
        self.entries.encode(w)
    }
}

impl Decode for SchemaSummary {
    const MIN_LEN: usize = 9;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let fingerprint = SchemaFingerprint::decode(r)?;
        let entries = Option::<Vec<SchemaEntry>>::decode(r)?;
        if let Some(list) = &entries {
            if let Some(w) = list.windows(2).find(|w| w[0].id >= w[1].id) {
                return Err(DecodeError::IdsOutOfOrder {
                    previous: w[0].id,
                    found: w[1].id,
                });
            }
        }
        Ok(SchemaSummary {
            fingerprint,
            entries,
        })
    }
}

/// A message named in a [`SchemaDiff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DiffEntry {
    /// The message's type id.
    pub id: u8,
    /// The message's name, when the local side has a message with this id.
    pub name: Option<&'static str>,
}

impl fmt::Display for DiffEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(name) => write!(f, "message `{name}` (id {})", self.id),
            None => write!(f, "message id {}", self.id),
        }
    }
}

/// The comparison of a local schema with a peer's [`SchemaSummary`].
///
/// [`Display`](fmt::Display) gives a reason fit for a rejection, naming
/// messages by name and id, with the sides named by
/// [`with_sides`](SchemaDiff::with_sides) (by default `local` and `remote`):
///
/// ```text
/// schema mismatch: message `Chat` (id 22) differs; message `Ping` (id 25) missing on client; message id 26 missing on server
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaDiff {
    local: SchemaFingerprint,
    remote: SchemaFingerprint,
    compared: bool,
    differing: Vec<DiffEntry>,
    missing_on_remote: Vec<DiffEntry>,
    missing_on_local: Vec<DiffEntry>,
    sides: (&'static str, &'static str),
}

impl SchemaDiff {
    /// Whether the two factory fingerprints are equal: the schemas match.
    pub fn is_match(&self) -> bool {
        self.local == self.remote
    }

    /// The local factory fingerprint.
    pub fn local_fingerprint(&self) -> SchemaFingerprint {
        self.local
    }

    /// The remote factory fingerprint.
    pub fn remote_fingerprint(&self) -> SchemaFingerprint {
        self.remote
    }

    /// Messages both sides have, with different schemas, in id order.
    pub fn differing(&self) -> &[DiffEntry] {
        &self.differing
    }

    /// Messages only the local side has, in id order.
    pub fn missing_on_remote(&self) -> &[DiffEntry] {
        &self.missing_on_remote
    }

    /// Messages only the remote side has, in id order (named by id only).
    pub fn missing_on_local(&self) -> &[DiffEntry] {
        &self.missing_on_local
    }

    /// Whether the schemas differ and the diff names at least one message.
    ///
    /// A mismatch stays unexplained when either summary has no per-message
    /// list, or, about once in 2^32 changes, when every message's compact
    /// fingerprint agrees although a full one does not.
    pub fn is_explained(&self) -> bool {
        !(self.differing.is_empty()
            && self.missing_on_remote.is_empty()
            && self.missing_on_local.is_empty())
    }

    /// The same diff, naming the sides `local` and `remote` in its text (as
    /// in `.with_sides("server", "client")`).
    pub fn with_sides(mut self, local: &'static str, remote: &'static str) -> Self {
        self.sides = (local, remote);
        self
    }

    /// Fills in the names of the messages `name` knows by id.
    pub(crate) fn name_with(mut self, name: impl Fn(u8) -> Option<&'static str>) -> Self {
        for e in self
            .differing
            .iter_mut()
            .chain(&mut self.missing_on_remote)
            .chain(&mut self.missing_on_local)
        {
            e.name = e.name.or_else(|| name(e.id));
        }
        self
    }
}

impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (local, remote) = self.sides;
        if self.is_match() {
            return write!(f, "message schemas match (fingerprint {})", self.local);
        }
        f.write_str("schema mismatch: ")?;
        if !self.is_explained() {
            write!(
                f,
                "fingerprint {} on {local}, {} on {remote}",
                self.local, self.remote
            )?;
            return f.write_str(if self.compared {
                ", yet every message's 32-bit fingerprint agrees"
            } else {
                "; no per-message list to tell which message differs"
            });
        }
        let parts = self
            .differing
            .iter()
            .map(|e| (e, "differs", ""))
            .chain(
                self.missing_on_remote
                    .iter()
                    .map(|e| (e, "missing on ", remote)),
            )
            .chain(
                self.missing_on_local
                    .iter()
                    .map(|e| (e, "missing on ", local)),
            );
        for (i, (entry, what, side)) in parts.enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{entry} {what}{side}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{from_bytes, to_vec};

    #[test]
    fn fnv_reference_values() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn compact_folds_halves() {
        let fp = SchemaFingerprint::from_u64(0x1234_5678_9abc_def0);
        assert_eq!(fp.compact(), 0x1234_5678 ^ 0x9abc_def0);
        assert_eq!(fp.to_string(), "123456789abcdef0");
    }

    fn summary(fp: u64, entries: &[(u8, u32)]) -> SchemaSummary {
        SchemaSummary::new(
            SchemaFingerprint::from_u64(fp),
            entries
                .iter()
                .map(|&(id, fingerprint)| SchemaEntry { id, fingerprint })
                .collect(),
        )
    }

    #[test]
    fn summary_round_trips_and_checks_order() {
        let s = summary(7, &[(20, 1), (30, 2)]);
        let bytes = to_vec(&s).unwrap();
        assert_eq!(bytes.len(), 10 + 2 * 5);
        assert_eq!(bytes[..10], [0, 0, 0, 0, 0, 0, 0, 7, 1, 2]);
        assert_eq!(from_bytes::<SchemaSummary>(&bytes), Ok(s.clone()));

        let short = s.clone().within(19);
        assert_eq!(short, SchemaSummary::fingerprint_only(s.fingerprint()));
        assert_eq!(to_vec(&short).unwrap(), [0, 0, 0, 0, 0, 0, 0, 7, 0]);
        assert_eq!(s.clone().within(20), s);

        let mut swapped = bytes.clone();
        swapped[10] = 40;
        assert_eq!(
            from_bytes::<SchemaSummary>(&swapped),
            Err(DecodeError::IdsOutOfOrder {
                previous: 40,
                found: 30
            })
        );
        let mut dup = bytes;
        dup[15] = 20;
        assert!(from_bytes::<SchemaSummary>(&dup).is_err());
    }

    #[test]
    fn diff_walks_both_lists() {
        let local = summary(1, &[(20, 1), (21, 2), (23, 4)]);
        let remote = summary(2, &[(21, 9), (22, 3), (23, 4)]);
        let diff = local
            .diff(&remote)
            .name_with(|id| (id == 21).then_some("B"));
        assert_eq!(
            diff.differing(),
            [DiffEntry {
                id: 21,
                name: Some("B")
            }]
        );
        assert_eq!(diff.missing_on_remote(), [DiffEntry { id: 20, name: None }]);
        assert_eq!(diff.missing_on_local(), [DiffEntry { id: 22, name: None }]);
        assert_eq!(
            diff.to_string(),
            "schema mismatch: message `B` (id 21) differs; message id 20 missing on remote; \
             message id 22 missing on local"
        );
    }

    #[test]
    fn unexplained_mismatches_say_why() {
        let local = summary(1, &[(20, 1)]);
        let diff = local
            .diff(&summary(2, &[(20, 1)]))
            .with_sides("server", "client");
        assert!(!diff.is_match() && !diff.is_explained());
        assert_eq!(
            diff.to_string(),
            "schema mismatch: fingerprint 0000000000000001 on server, 0000000000000002 on client, \
             yet every message's 32-bit fingerprint agrees"
        );
        let bare = SchemaSummary::fingerprint_only(SchemaFingerprint::from_u64(2));
        assert_eq!(
            local.diff(&bare).to_string(),
            "schema mismatch: fingerprint 0000000000000001 on local, 0000000000000002 on remote; \
             no per-message list to tell which message differs"
        );
        let same = local.diff(&summary(1, &[]));
        assert!(same.is_match());
        assert_eq!(
            same.to_string(),
            "message schemas match (fingerprint 0000000000000001)"
        );
    }
}
