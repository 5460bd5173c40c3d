//! [`WireSchema`] for the built-in field types, matching their codecs in
//! `codec/primitive.rs` and `codec/collections.rs`.

use super::{Scalar, SchemaContext, WireSchema, WireType};

macro_rules! scalar {
    ($($ty:ty => $scalar:ident,)*) => {$(
        impl WireSchema for $ty {
            #[inline]
            fn wire_type(_: &mut SchemaContext) -> WireType {
                WireType::Scalar(Scalar::$scalar)
            }
        }
    )*};
}

scalar! {
    u8 => U8,
    i8 => I8,
    u16 => U16,
    i16 => I16,
    u32 => U32,
    i32 => I32,
    u64 => U64,
    i64 => I64,
    u128 => U128,
    i128 => I128,
    f32 => F32,
    f64 => F64,
    bool => Bool,
    char => Char,
}

/// Nothing on the wire: the empty tuple, `()`.
impl WireSchema for () {
    fn wire_type(_: &mut SchemaContext) -> WireType {
        WireType::Tuple(Vec::new())
    }
}

impl WireSchema for str {
    fn wire_type(_: &mut SchemaContext) -> WireType {
        WireType::Str
    }
}

impl WireSchema for String {
    fn wire_type(_: &mut SchemaContext) -> WireType {
        WireType::Str
    }
}

impl<T: WireSchema> WireSchema for [T] {
    fn wire_type(cx: &mut SchemaContext) -> WireType {
        WireType::Seq(Box::new(T::wire_type(cx)))
    }
}

impl<T: WireSchema> WireSchema for Vec<T> {
    fn wire_type(cx: &mut SchemaContext) -> WireType {
        WireType::Seq(Box::new(T::wire_type(cx)))
    }
}

impl<T: WireSchema> WireSchema for Option<T> {
    fn wire_type(cx: &mut SchemaContext) -> WireType {
        WireType::Optional(Box::new(T::wire_type(cx)))
    }
}

impl<T: WireSchema, const N: usize> WireSchema for [T; N] {
    fn wire_type(cx: &mut SchemaContext) -> WireType {
        WireType::Array(Box::new(T::wire_type(cx)), N)
    }
}

/// A box is its value on the wire, so `Box<T>` is described as `T`.
impl<T: WireSchema + ?Sized> WireSchema for Box<T> {
    fn wire_type(cx: &mut SchemaContext) -> WireType {
        T::wire_type(cx)
    }
}

macro_rules! tuple {
    ($(($($name:ident),+))*) => {$(
        impl<$($name: WireSchema),+> WireSchema for ($($name,)+) {
            fn wire_type(cx: &mut SchemaContext) -> WireType {
                WireType::Tuple(vec![$($name::wire_type(cx)),+])
            }
        }
    )*};
}

tuple! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
}
