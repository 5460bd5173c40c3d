//! Variable-length unsigned integers (LEB128, at most 32 bits).
//!
//! Seven bits per byte, least significant group first, high bit set on every
//! byte but the last. Used for sequence lengths so that the common short
//! vector costs one byte of prefix. Only the minimal encoding of a value is
//! accepted, so every value has exactly one encoding.

use crate::codec::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};

/// The most bytes a 32-bit varint occupies.
pub const MAX_VARINT_LEN: usize = 5;

/// The number of bytes [`write_varint`] uses for `v`.
pub fn varint_len(v: u32) -> usize {
    match v {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        0x20_0000..=0xFFF_FFFF => 4,
        _ => 5,
    }
}

/// Writes `v` as a varint.
pub fn write_varint(w: &mut Writer<'_>, mut v: u32) -> Result<(), EncodeError> {
    let out = w.reserve(varint_len(v))?;
    let last = out.len() - 1;
    for (i, byte) in out.iter_mut().enumerate() {
        // Truncation to the low seven bits is the encoding itself.
        let group = (v & 0x7F) as u8;
        v >>= 7;
        *byte = if i == last { group } else { group | 0x80 };
    }
    Ok(())
}

/// Reads a varint, rejecting encodings that are over-long or wider than 32 bits.
pub fn read_varint(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..MAX_VARINT_LEN {
        let byte = r.read_u8()?;
        let group = u32::from(byte & 0x7F);
        if i == MAX_VARINT_LEN - 1 && group > 0x0F {
            return Err(DecodeError::InvalidVarint);
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            // A zero final group after the first byte means a shorter form existed.
            if i > 0 && group == 0 {
                return Err(DecodeError::InvalidVarint);
            }
            return Ok(value);
        }
    }
    Err(DecodeError::InvalidVarint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: u32) -> Vec<u8> {
        let mut buf = [0u8; MAX_VARINT_LEN];
        let mut w = Writer::new(&mut buf);
        write_varint(&mut w, v).unwrap();
        let bytes = w.written().to_vec();
        assert_eq!(bytes.len(), varint_len(v));
        let mut r = Reader::new(&bytes);
        assert_eq!(read_varint(&mut r), Ok(v));
        assert!(r.is_empty());
        bytes
    }

    #[test]
    fn known_encodings() {
        assert_eq!(roundtrip(0), [0]);
        assert_eq!(roundtrip(127), [0x7F]);
        assert_eq!(roundtrip(128), [0x80, 0x01]);
        assert_eq!(roundtrip(300), [0xAC, 0x02]);
        assert_eq!(roundtrip(u32::MAX), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
        for shift in 0..32 {
            roundtrip(1 << shift);
            roundtrip((1u32 << shift).wrapping_sub(1));
        }
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            &[0x80, 0x00][..],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x1F],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        ] {
            assert_eq!(
                read_varint(&mut Reader::new(bad)),
                Err(DecodeError::InvalidVarint)
            );
        }
        assert!(matches!(
            read_varint(&mut Reader::new(&[0x80])),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }
}
