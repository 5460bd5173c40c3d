//! Field codecs: how each field type is laid out on the wire.
//!
//! All integers and floats are big-endian (network byte order), as in legume.
//! [`Encode`] writes into a caller-provided [`Writer`] over a byte slice, so
//! encoding allocates nothing; [`Decode`] reads from a [`Reader`] over the
//! received bytes.
//!
//! # Panic contract
//!
//! No function in this module panics on any input bytes or on any value.
//! Reads past the end return [`DecodeError::UnexpectedEnd`], writes past the
//! end return [`EncodeError::BufferTooSmall`], and a length prefix is checked
//! against the bytes that remain before anything is allocated for it.
//!
//! The layout of every type is written down in `docs/WIRE_TYPES.md`.

mod bounded;
mod collections;
mod primitive;

pub use bounded::{decode_bounded, decode_fixed, encode_bounded, encode_fixed, fixed_len};
pub use bounded::{FixedWidth, LenBounded};
pub use collections::STRING_MAX_LEN;

use byteorder::{ByteOrder, NetworkEndian};

use crate::error::{DecodeError, EncodeError};

/// A value that can be written to the wire.
pub trait Encode {
    /// The exact number of bytes [`encode`](Encode::encode) writes for this value.
    ///
    /// Computed without encoding, so a packet builder can decide where a value
    /// fits before writing it.
    fn encoded_len(&self) -> usize;

    /// Writes the value at the writer's position.
    ///
    /// Fails when the buffer is too small or the value breaks a wire limit
    /// (such as a string over 65,535 bytes); the writer may then hold a
    /// partial value and should be discarded or rewound.
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;

    /// Writes a slice of values, as `Vec<T>` and `[T; N]` do.
    ///
    /// The default writes one value after another; byte-sized types override
    /// it with a single copy.
    fn encode_slice(items: &[Self], w: &mut Writer<'_>) -> Result<(), EncodeError>
    where
        Self: Sized,
    {
        items.iter().try_for_each(|item| item.encode(w))
    }
}

/// A value that can be read from the wire.
pub trait Decode: Sized {
    /// The fewest bytes any value of this type encodes to.
    ///
    /// Sequence decoders multiply a length prefix by this to reject prefixes
    /// the input cannot justify before allocating.
    const MIN_LEN: usize;

    /// Reads one value from the reader's position.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Reads `count` values into a vector, as `Vec<T>` does.
    ///
    /// The caller has checked that the input can hold `count` values. The
    /// default reads one value after another; byte-sized types override it
    /// with a single copy.
    fn decode_vec(r: &mut Reader<'_>, count: usize) -> Result<Vec<Self>, DecodeError> {
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(Self::decode(r)?);
        }
        Ok(items)
    }
}

/// A cursor that writes into a caller-provided byte slice.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes still free in the buffer.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// Moves the position back to `pos`, discarding what was written after it.
    ///
    /// A `pos` beyond the current position is ignored.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    /// Hands out the next `n` bytes of the buffer and advances past them.
    pub fn reserve(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        let available = self.remaining();
        if n > available {
            return Err(EncodeError::BufferTooSmall {
                needed: n,
                available,
            });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&mut self.buf[start..start + n])
    }

    /// Writes one byte.
    pub fn put_u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.reserve(1)?[0] = v;
        Ok(())
    }

    /// Writes a big-endian `u16`.
    pub fn put_u16(&mut self, v: u16) -> Result<(), EncodeError> {
        NetworkEndian::write_u16(self.reserve(2)?, v);
        Ok(())
    }

    /// Writes a big-endian `u32`.
    pub fn put_u32(&mut self, v: u32) -> Result<(), EncodeError> {
        NetworkEndian::write_u32(self.reserve(4)?, v);
        Ok(())
    }

    /// Writes a big-endian `u64`.
    pub fn put_u64(&mut self, v: u64) -> Result<(), EncodeError> {
        NetworkEndian::write_u64(self.reserve(8)?, v);
        Ok(())
    }

    /// Writes bytes as they are.
    pub fn put_slice(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.reserve(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes `n` zero bytes.
    pub fn put_zeros(&mut self, n: usize) -> Result<(), EncodeError> {
        self.reserve(n)?.fill(0);
        Ok(())
    }
}

/// How deep `Vec`, `Option` and `Box` values may nest while decoding.
/// Recursive types (a tree of enums) recurse through them; without a limit a
/// small hostile message could exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// A cursor that reads from received bytes.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    depth: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, depth: 0 }
    }

    /// Decodes a nested value with `f` one level deeper, failing with
    /// [`DecodeError::TooDeep`] past [`MAX_DEPTH`].
    pub fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep(MAX_DEPTH));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Consumes and returns the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn read_u16(&mut self) -> Result<u16, DecodeError> {
        Ok(NetworkEndian::read_u16(self.take(2)?))
    }

    /// Reads a big-endian `u32`.
    pub fn read_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(NetworkEndian::read_u32(self.take(4)?))
    }

    /// Reads a big-endian `u64`.
    pub fn read_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(NetworkEndian::read_u64(self.take(8)?))
    }

    /// Checks that a length prefix of `count` elements, each at least
    /// `min_len` bytes, can fit in what is left, before anything is allocated.
    pub fn check_count(&self, count: usize, min_len: usize) -> Result<(), DecodeError> {
        // Zero-sized elements still cost a loop iteration each, so they are
        // charged one byte: a count can never exceed the bytes that remain.
        // The encoder refuses such sequences to match, so every encoded
        // sequence passes this check.
        let needed = count.checked_mul(min_len.max(1));
        match needed {
            Some(n) if n <= self.buf.len() => Ok(()),
            _ => Err(DecodeError::LengthOverrun {
                len: count,
                remaining: self.buf.len(),
            }),
        }
    }

    /// Succeeds only if every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Encodes `value` into a new vector of exactly its encoded length.
///
/// A convenience for tests and tools; the hot path encodes into a reused
/// buffer through [`Writer`].
pub fn to_vec<T: Encode + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut buf = vec![0; value.encoded_len()];
    let mut w = Writer::new(&mut buf);
    value.encode(&mut w)?;
    debug_assert_eq!(w.position(), buf.len(), "encoded_len disagrees with encode");
    Ok(buf)
}

/// Decodes one `T` that must span all of `bytes`.
pub fn from_bytes<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_refuses_to_overrun() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.put_u16(0xABCD).unwrap();
        assert_eq!(
            w.put_u16(1),
            Err(EncodeError::BufferTooSmall {
                needed: 2,
                available: 1
            })
        );
        assert_eq!(w.written(), &[0xAB, 0xCD]);
    }

    #[test]
    fn reader_reports_shortfall() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.read_u16(), Ok(0x0102));
        assert_eq!(
            r.read_u32(),
            Err(DecodeError::UnexpectedEnd {
                needed: 4,
                remaining: 1
            })
        );
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn count_check_rejects_unjustified_prefix() {
        let r = Reader::new(&[0; 10]);
        assert!(r.check_count(10, 1).is_ok());
        assert!(r.check_count(5, 2).is_ok());
        assert!(r.check_count(6, 2).is_err());
        assert!(r.check_count(11, 0).is_err());
        assert!(r.check_count(usize::MAX, 8).is_err());
    }
}
