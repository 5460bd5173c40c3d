//! Variable-size and composite fields: strings, vectors, options, arrays,
//! boxes and tuples.

use super::{Decode, Encode, Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::varint::{read_varint, varint_len, write_varint};

/// The longest string a `u16` length prefix can describe, in bytes.
pub const STRING_MAX_LEN: usize = u16::MAX as usize;

/// legume's `varstring`: a big-endian `u16` byte length, then the UTF-8 bytes.
///
/// legume 0.5 writes the length in characters; this port writes bytes, so
/// non-ASCII text is not cut short.
impl Encode for str {
    #[inline]
    fn encoded_len(&self) -> usize {
        2 + self.len()
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let len = u16::try_from(self.len()).map_err(|_| EncodeError::TooLong {
            len: self.len(),
            max: STRING_MAX_LEN,
        })?;
        w.put_u16(len)?;
        w.put_slice(self.as_bytes())
    }
}

impl Encode for String {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.as_str().encoded_len()
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.as_str().encode(w)
    }
}

impl Decode for String {
    const MIN_LEN: usize = 2;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = usize::from(r.read_u16()?);
        decode_utf8(r.take(len)?)
    }
}

/// Copies bytes into a `String` after checking they are UTF-8.
pub(crate) fn decode_utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidUtf8)
}

/// A sequence: the element count as a varint (one byte below 128), then the elements.
impl<T: Encode> Encode for [T] {
    fn encoded_len(&self) -> usize {
        // A count over u32::MAX cannot be encoded; its length is still reported
        // as the varint maximum so that encoded_len stays total.
        let count = u32::try_from(self.len()).unwrap_or(u32::MAX);
        varint_len(count) + self.iter().map(Encode::encoded_len).sum::<usize>()
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let count = u32::try_from(self.len()).map_err(|_| EncodeError::TooLong {
            len: self.len(),
            max: u32::MAX as usize,
        })?;
        write_varint(w, count)?;
        let start = w.position();
        T::encode_slice(self, w)?;
        // The decoder charges every element at least one byte (see
        // `Reader::check_count`), so a sequence of zero-length elements longer
        // than its own bytes could not be read back.
        let used = w.position() - start;
        if used < self.len() {
            return Err(EncodeError::TooLong {
                len: self.len(),
                max: used,
            });
        }
        Ok(())
    }
}

impl<T: Encode> Encode for Vec<T> {
    #[inline]
    fn encoded_len(&self) -> usize {
        self.as_slice().encoded_len()
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.as_slice().encode(w)
    }
}

impl<T: Decode> Decode for Vec<T> {
    const MIN_LEN: usize = 1;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = read_varint(r)? as usize;
        r.nested(|r| decode_elements(r, count))
    }
}

/// Reads the `count` elements of a sequence whose prefix has been read.
///
/// The count is checked against the input before anything is allocated, with
/// every element charged at least one byte. The elements must then have
/// used at least `count` bytes, the rule the encoder applies: a sequence of
/// zero-length elements is never longer than its bytes, whatever follows it.
pub(crate) fn decode_elements<T: Decode>(
    r: &mut Reader<'_>,
    count: usize,
) -> Result<Vec<T>, DecodeError> {
    r.check_count(count, T::MIN_LEN)?;
    let before = r.remaining();
    let items = T::decode_vec(r, count)?;
    let used = before - r.remaining();
    if used < count {
        return Err(DecodeError::LengthOverrun {
            len: count,
            remaining: used,
        });
    }
    Ok(items)
}

/// A tag byte (0 = `None`, 1 = `Some`), then the value when present.
impl<T: Encode> Encode for Option<T> {
    #[inline]
    fn encoded_len(&self) -> usize {
        1 + self.as_ref().map_or(0, Encode::encoded_len)
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            None => w.put_u8(0),
            Some(v) => {
                w.put_u8(1)?;
                v.encode(w)
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    const MIN_LEN: usize = 1;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_u8()? {
            0 => Ok(None),
            1 => r.nested(T::decode).map(Some),
            tag => Err(DecodeError::InvalidOptionTag(tag)),
        }
    }
}

/// `N` elements one after another, with no length prefix.
impl<T: Encode, const N: usize> Encode for [T; N] {
    fn encoded_len(&self) -> usize {
        self.iter().map(Encode::encoded_len).sum()
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        T::encode_slice(self, w)
    }
}

impl<T: Decode, const N: usize> Decode for [T; N] {
    const MIN_LEN: usize = N * T::MIN_LEN;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut failure = None;
        let items: [Option<T>; N] = std::array::from_fn(|_| {
            if failure.is_some() {
                return None;
            }
            T::decode(r).map_err(|e| failure = Some(e)).ok()
        });
        if let Some(e) = failure {
            return Err(e);
        }
        // Invariant: with no failure recorded, the closure returned Some for every element.
        Ok(items.map(|item| item.expect("every element decoded")))
    }
}

/// The boxed value's own encoding.
impl<T: Encode + ?Sized> Encode for Box<T> {
    #[inline]
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        (**self).encode(w)
    }
}

impl<T: Decode> Decode for Box<T> {
    const MIN_LEN: usize = T::MIN_LEN;

    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.nested(T::decode).map(Box::new)
    }
}

/// Implements the codecs of a tuple: its elements in order.
macro_rules! tuple {
    ($(($($name:ident $idx:tt),+))*) => {$(
        impl<$($name: Encode),+> Encode for ($($name,)+) {
            fn encoded_len(&self) -> usize {
                0 $(+ self.$idx.encoded_len())+
            }

            fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                $(self.$idx.encode(w)?;)+
                Ok(())
            }
        }

        impl<$($name: Decode),+> Decode for ($($name,)+) {
            const MIN_LEN: usize = 0 $(+ $name::MIN_LEN)+;

            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(($($name::decode(r)?,)+))
            }
        }
    )*};
}

tuple! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
}

#[cfg(test)]
mod tests {
    use crate::codec::{from_bytes, to_vec};
    use crate::error::{DecodeError, EncodeError};

    #[test]
    fn string_counts_bytes() {
        let bytes = to_vec(&String::from("héllo")).unwrap();
        assert_eq!(&bytes[..2], &[0, 6]);
        assert_eq!(from_bytes::<String>(&bytes).unwrap(), "héllo");
    }

    #[test]
    fn string_over_u16_is_refused() {
        let long = "x".repeat(65_536);
        assert_eq!(
            to_vec(&long),
            Err(EncodeError::TooLong {
                len: 65_536,
                max: 65_535
            })
        );
        assert!(to_vec(&"x".repeat(65_535)).is_ok());
    }

    #[test]
    fn huge_prefix_fails_before_allocating() {
        // 65,535 announced, 8 present.
        let bytes = [0xFF, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8];
        assert!(matches!(
            from_bytes::<String>(&bytes),
            Err(DecodeError::UnexpectedEnd { needed: 65_535, .. })
        ));
        // A vector of u64 announcing 2^28 elements.
        let bytes = [0xFF, 0xFF, 0xFF, 0x7F, 0];
        assert!(matches!(
            from_bytes::<Vec<u64>>(&bytes),
            Err(DecodeError::LengthOverrun { .. })
        ));
    }

    #[test]
    fn composite_layout() {
        let v: (Option<u8>, [i16; 2], Vec<bool>) = (Some(7), [-1, 2], vec![true, false]);
        let bytes = to_vec(&v).unwrap();
        assert_eq!(bytes, [1, 7, 0xFF, 0xFF, 0, 2, 2, 1, 0]);
        assert_eq!(
            from_bytes::<(Option<u8>, [i16; 2], Vec<bool>)>(&bytes),
            Ok(v)
        );
    }

    #[test]
    fn invalid_utf8_and_tags() {
        assert_eq!(
            from_bytes::<String>(&[0, 1, 0xFF]),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            from_bytes::<Option<u8>>(&[2, 0]),
            Err(DecodeError::InvalidOptionTag(2))
        );
        assert!(from_bytes::<[u32; 2]>(&[0, 0, 0, 1, 0, 0]).is_err());
    }
}
