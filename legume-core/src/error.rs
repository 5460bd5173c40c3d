//! Typed errors for encoding, decoding and registering messages.
//!
//! Every decode path returns [`DecodeError`]; nothing in this crate panics on
//! input bytes. [`EncodeError`] reports values the wire cannot carry (a string
//! over its declared maximum, a buffer too small). [`RegistryError`] reports
//! clashes in a [`MessageFactory`](crate::MessageFactory) and names both types.

use thiserror::Error;

/// Why bytes could not be decoded into a value.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value was complete.
    #[error("input ended early: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd {
        /// Bytes the next read needed.
        needed: usize,
        /// Bytes that were left in the input.
        remaining: usize,
    },
    /// A length prefix exceeds the field's declared maximum.
    #[error("length {len} is over the declared maximum of {max}")]
    TooLong {
        /// The length read from the input.
        len: usize,
        /// The maximum the schema allows.
        max: usize,
    },
    /// A length prefix announces more elements than the rest of the input can hold.
    #[error("length prefix of {len} cannot fit in the {remaining} bytes left")]
    LengthOverrun {
        /// The element count read from the input.
        len: usize,
        /// Bytes that were left in the input.
        remaining: usize,
    },
    /// String bytes are not valid UTF-8.
    #[error("string is not valid utf-8")]
    InvalidUtf8,
    /// A `bool` byte was neither 0 nor 1.
    #[error("invalid bool byte {0:#04x}")]
    InvalidBool(u8),
    /// An `Option` tag byte was neither 0 nor 1.
    #[error("invalid option tag {0:#04x}")]
    InvalidOptionTag(u8),
    /// An enum tag names no variant.
    #[error("invalid tag {tag} for enum {ty}")]
    InvalidEnumTag {
        /// The tag read from the input.
        tag: u8,
        /// The enum being decoded.
        ty: &'static str,
    },
    /// A `char` field holds a value that is not a Unicode scalar value.
    #[error("invalid char value {0:#x}")]
    InvalidChar(u32),
    /// A variable-length integer is longer than its maximum width or not minimally encoded.
    #[error("invalid variable-length integer")]
    InvalidVarint,
    /// The message type id is not registered in the factory or message set.
    #[error("unknown message type id {0}")]
    UnknownTypeId(u8),
    /// The message type id is not the one the decoder expected.
    #[error("expected message type id {expected}, found {found}")]
    WrongTypeId {
        /// The type id of the message being decoded.
        expected: u8,
        /// The type id found in the input.
        found: u8,
    },
    /// Values are nested deeper than the decoder allows (a guard against
    /// stack exhaustion from recursive types).
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    /// Bytes were left over after the message was complete.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A list keyed by message type id (a
    /// [`SchemaSummary`](crate::SchemaSummary)) has an id that does not
    /// follow the previous one in strictly increasing order.
    #[error("type id {found} follows type id {previous}; ids must be strictly increasing")]
    IdsOutOfOrder {
        /// The id before the offending one.
        previous: u8,
        /// The id that is not greater than `previous`.
        found: u8,
    },
}

/// Why a value could not be encoded.
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer cannot hold the encoded value.
    #[error("buffer too small: needed {needed} bytes, {available} available")]
    BufferTooSmall {
        /// Bytes the write needed.
        needed: usize,
        /// Bytes that were left in the buffer.
        available: usize,
    },
    /// A string or sequence is longer than its declared or wire maximum.
    #[error("length {len} is over the maximum of {max}")]
    TooLong {
        /// The value's length (bytes for strings, elements for sequences).
        len: usize,
        /// The maximum the schema or the length prefix allows.
        max: usize,
    },
    /// A fixed-width string contains a NUL byte, which the zero padding could not tell apart.
    #[error("fixed-width string contains a NUL byte")]
    NulInFixedString,
}

/// Why a message type could not be added to a [`MessageFactory`](crate::MessageFactory).
#[derive(Clone, Debug, Eq, Error, PartialEq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The type id is reserved for the protocol's own messages (0 to 19).
    #[error("type id {id} of `{ty}` is reserved for protocol messages (user ids are 20..=255)")]
    ReservedId {
        /// The reserved id.
        id: u8,
        /// The Rust type that asked for it.
        ty: &'static str,
    },
    /// Another type already holds this type id.
    #[error("type id {id} is already taken by `{existing}`; cannot register `{new}`")]
    IdTaken {
        /// The contested id.
        id: u8,
        /// The Rust type registered first.
        existing: &'static str,
        /// The Rust type that clashed.
        new: &'static str,
    },
    /// Another type already holds this message name.
    #[error("message name \"{name}\" is already taken by `{existing}`; cannot register `{new}`")]
    NameTaken {
        /// The contested name.
        name: &'static str,
        /// The Rust type registered first.
        existing: &'static str,
        /// The Rust type that clashed.
        new: &'static str,
    },
}
