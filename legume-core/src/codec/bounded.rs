//! Field forms chosen by attributes: a declared maximum length
//! (`#[field(max_len = N)]`) and legume's fixed-width `string N`
//! (`#[field(fixed = N)]`).
//!
//! The derive macro calls the free functions here; they are public so that
//! hand-written [`Encode`]/[`Decode`] impls can use the same forms.

use super::collections::{decode_elements, decode_utf8};
use super::{Decode, Encode, Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::varint::read_varint;

/// A field whose length can be capped by `#[field(max_len = N)]`.
///
/// The length is counted in bytes for strings and in elements for vectors.
/// The cap is enforced on both sides: encoding a longer value fails, and a
/// longer length prefix fails before its contents are read.
pub trait LenBounded: Encode + Decode {
    /// The length the cap applies to.
    fn bounded_len(&self) -> usize;

    /// Decodes a value, refusing a length prefix over `max`.
    fn decode_bounded(r: &mut Reader<'_>, max: usize) -> Result<Self, DecodeError>;
}

impl LenBounded for String {
    fn bounded_len(&self) -> usize {
        self.len()
    }

    fn decode_bounded(r: &mut Reader<'_>, max: usize) -> Result<Self, DecodeError> {
        let len = usize::from(r.read_u16()?);
        if len > max {
            return Err(DecodeError::TooLong { len, max });
        }
        decode_utf8(r.take(len)?)
    }
}

impl<T: Encode + Decode> LenBounded for Vec<T> {
    fn bounded_len(&self) -> usize {
        self.len()
    }

    fn decode_bounded(r: &mut Reader<'_>, max: usize) -> Result<Self, DecodeError> {
        let count = read_varint(r)? as usize;
        if count > max {
            return Err(DecodeError::TooLong { len: count, max });
        }
        r.nested(|r| decode_elements(r, count))
    }
}

/// Encodes `value` after checking it against the declared maximum `max`.
pub fn encode_bounded<T: LenBounded>(
    value: &T,
    max: usize,
    w: &mut Writer<'_>,
) -> Result<(), EncodeError> {
    let len = value.bounded_len();
    if len > max {
        return Err(EncodeError::TooLong { len, max });
    }
    value.encode(w)
}

/// Decodes a value whose length may not exceed `max`.
pub fn decode_bounded<T: LenBounded>(r: &mut Reader<'_>, max: usize) -> Result<T, DecodeError> {
    T::decode_bounded(r, max)
}

/// A field that can take legume's fixed-width form (`#[field(fixed = N)]`).
pub trait FixedWidth: Sized {
    /// Writes the value in exactly `width` bytes.
    fn encode_fixed(&self, width: usize, w: &mut Writer<'_>) -> Result<(), EncodeError>;

    /// Reads a value from exactly `width` bytes.
    fn decode_fixed(r: &mut Reader<'_>, width: usize) -> Result<Self, DecodeError>;
}

/// legume's `string N`: the UTF-8 bytes, zero-padded to `N`.
///
/// A longer string is refused on encode (legume refuses it too), as is a NUL
/// byte, which the padding could not be told apart from. On decode every NUL
/// byte is removed, as legume does, and the rest must be UTF-8.
impl FixedWidth for String {
    fn encode_fixed(&self, width: usize, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let bytes = self.as_bytes();
        if bytes.len() > width {
            return Err(EncodeError::TooLong {
                len: bytes.len(),
                max: width,
            });
        }
        if bytes.contains(&0) {
            return Err(EncodeError::NulInFixedString);
        }
        w.put_slice(bytes)?;
        w.put_zeros(width - bytes.len())
    }

    fn decode_fixed(r: &mut Reader<'_>, width: usize) -> Result<Self, DecodeError> {
        let raw = r.take(width)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        if raw[end..].iter().all(|&b| b == 0) {
            // The usual case: text, then padding.
            return decode_utf8(&raw[..end]);
        }
        let kept: Vec<u8> = raw.iter().copied().filter(|&b| b != 0).collect();
        String::from_utf8(kept).map_err(|_| DecodeError::InvalidUtf8)
    }
}

/// The encoded length of a fixed-width field: always `width`.
///
/// Takes the value so that the derive checks the field's type at this call.
pub fn fixed_len<T: FixedWidth>(_value: &T, width: usize) -> usize {
    width
}

/// Encodes `value` in exactly `width` bytes.
pub fn encode_fixed<T: FixedWidth>(
    value: &T,
    width: usize,
    w: &mut Writer<'_>,
) -> Result<(), EncodeError> {
    value.encode_fixed(width, w)
}

/// Decodes a value from exactly `width` bytes.
pub fn decode_fixed<T: FixedWidth>(r: &mut Reader<'_>, width: usize) -> Result<T, DecodeError> {
    T::decode_fixed(r, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(s: &str, width: usize) -> Result<Vec<u8>, EncodeError> {
        let mut buf = vec![0xAA; width];
        let mut w = Writer::new(&mut buf);
        String::from(s).encode_fixed(width, &mut w)?;
        Ok(buf)
    }

    #[test]
    fn fixed_pads_and_strips() {
        assert_eq!(fixed("ab", 4).unwrap(), b"ab\0\0");
        let back: String = decode_fixed(&mut Reader::new(b"ab\0\0"), 4).unwrap();
        assert_eq!(back, "ab");
        let inner: String = decode_fixed(&mut Reader::new(b"a\0b\0"), 4).unwrap();
        assert_eq!(inner, "ab");
    }

    #[test]
    fn fixed_refuses_long_and_nul() {
        assert_eq!(
            fixed("abcde", 4),
            Err(EncodeError::TooLong { len: 5, max: 4 })
        );
        assert_eq!(fixed("a\0", 4), Err(EncodeError::NulInFixedString));
        assert!(fixed("abcd", 4).is_ok());
    }

    #[test]
    fn bounded_checks_both_sides() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf);
        assert_eq!(
            encode_bounded(&String::from("hello"), 4, &mut w),
            Err(EncodeError::TooLong { len: 5, max: 4 })
        );
        let mut r = Reader::new(&[0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert_eq!(
            decode_bounded::<String>(&mut r, 4),
            Err(DecodeError::TooLong { len: 5, max: 4 })
        );
        let mut r = Reader::new(&[3, 1, 2, 3]);
        assert_eq!(decode_bounded::<Vec<u8>>(&mut r, 3), Ok(vec![1, 2, 3]));
        let mut r = Reader::new(&[3, 1, 2, 3]);
        assert_eq!(
            decode_bounded::<Vec<u8>>(&mut r, 2),
            Err(DecodeError::TooLong { len: 3, max: 2 })
        );
    }
}
