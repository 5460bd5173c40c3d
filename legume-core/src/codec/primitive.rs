//! Fixed-size scalars: integers, floats, `bool`, `char` and `()`.

use byteorder::{ByteOrder, NetworkEndian};

use super::{Decode, Encode, Reader, Writer};
use crate::error::{DecodeError, EncodeError};

/// Implements the codecs of a fixed-width number through byteorder's
/// big-endian slice functions.
macro_rules! number {
    ($($ty:ty, $len:expr, $write:path, $read:path;)*) => {$(
        impl Encode for $ty {
            #[inline]
            fn encoded_len(&self) -> usize {
                $len
            }

            #[inline]
            fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
                $write(w.reserve($len)?, *self);
                Ok(())
            }
        }

        impl Decode for $ty {
            const MIN_LEN: usize = $len;

            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($read(r.take($len)?))
            }
        }
    )*};
}

number! {
    u16, 2, NetworkEndian::write_u16, NetworkEndian::read_u16;
    i16, 2, NetworkEndian::write_i16, NetworkEndian::read_i16;
    u32, 4, NetworkEndian::write_u32, NetworkEndian::read_u32;
    i32, 4, NetworkEndian::write_i32, NetworkEndian::read_i32;
    u64, 8, NetworkEndian::write_u64, NetworkEndian::read_u64;
    i64, 8, NetworkEndian::write_i64, NetworkEndian::read_i64;
    u128, 16, NetworkEndian::write_u128, NetworkEndian::read_u128;
    i128, 16, NetworkEndian::write_i128, NetworkEndian::read_i128;
    f32, 4, NetworkEndian::write_f32, NetworkEndian::read_f32;
    f64, 8, NetworkEndian::write_f64, NetworkEndian::read_f64;
}

impl Encode for u8 {
    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u8(*self)
    }

    fn encode_slice(items: &[Self], w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_slice(items)
    }
}

impl Decode for u8 {
    const MIN_LEN: usize = 1;

    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_u8()
    }

    fn decode_vec(r: &mut Reader<'_>, count: usize) -> Result<Vec<Self>, DecodeError> {
        Ok(r.take(count)?.to_vec())
    }
}

impl Encode for i8 {
    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u8(self.to_be_bytes()[0])
    }
}

impl Decode for i8 {
    const MIN_LEN: usize = 1;

    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(i8::from_be_bytes([r.read_u8()?]))
    }
}

/// legume's `bool`: one signed byte, 0 or 1. Any other byte is an error.
impl Encode for bool {
    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u8(u8::from(*self))
    }
}

impl Decode for bool {
    const MIN_LEN: usize = 1;

    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidBool(other)),
        }
    }
}

/// A Unicode scalar value as a big-endian `u32`.
impl Encode for char {
    #[inline]
    fn encoded_len(&self) -> usize {
        4
    }

    #[inline]
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.put_u32(u32::from(*self))
    }
}

impl Decode for char {
    const MIN_LEN: usize = 4;

    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = r.read_u32()?;
        char::from_u32(v).ok_or(DecodeError::InvalidChar(v))
    }
}

/// Nothing on the wire.
impl Encode for () {
    #[inline]
    fn encoded_len(&self) -> usize {
        0
    }

    #[inline]
    fn encode(&self, _: &mut Writer<'_>) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl Decode for () {
    const MIN_LEN: usize = 0;

    #[inline]
    fn decode(_: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::{from_bytes, to_vec};
    use crate::error::DecodeError;

    #[test]
    fn numbers_are_big_endian() {
        assert_eq!(to_vec(&0x0102_0304u32).unwrap(), [1, 2, 3, 4]);
        assert_eq!(to_vec(&-2i16).unwrap(), [0xFF, 0xFE]);
        assert_eq!(to_vec(&-1i8).unwrap(), [0xFF]);
        assert_eq!(to_vec(&1.5f64).unwrap(), [0x3F, 0xF8, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn negative_zero_survives() {
        let back: f64 = from_bytes(&to_vec(&-0.0f64).unwrap()).unwrap();
        assert!(back == 0.0 && back.is_sign_negative());
    }

    #[test]
    fn bool_is_strict() {
        assert_eq!(from_bytes::<bool>(&[1]), Ok(true));
        assert_eq!(from_bytes::<bool>(&[0]), Ok(false));
        assert_eq!(from_bytes::<bool>(&[2]), Err(DecodeError::InvalidBool(2)));
    }

    #[test]
    fn char_rejects_surrogates() {
        assert_eq!(
            from_bytes::<char>(&[0, 0, 0xD8, 0]),
            Err(DecodeError::InvalidChar(0xD800))
        );
        assert_eq!(from_bytes::<char>(&[0, 0, 0, 0x41]), Ok('A'));
    }
}
