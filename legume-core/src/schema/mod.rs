//! Schema fingerprints: a canonical description of each message's wire
//! shape, and a stable hash of it that two peers compare before they talk.
//!
//! Every field type describes its wire form through [`WireSchema`], as a
//! [`WireType`] tree. The tree describes what goes on the wire, not how the
//! Rust source spells it: `Vec<u8>`, `std::vec::Vec<u8>` and a
//! `type Bytes = Vec<u8>` alias are all `vec<u8>`, and `Box<T>` is `T`. What
//! changes the bytes or the rules for them changes the description: a `u16`
//! that becomes a `u32`, a `#[field(fixed = N)]` or `#[field(max_len = N)]`
//! that changes, a field renamed, added or moved. Field, variant and nested
//! type names are part of it too, since two peers whose definitions use
//! different names are not running the same protocol.
//!
//! A [`Message`] adds its type id and name to its shape in a
//! [`MessageSchema`], whose canonical text is one line such as
//!
//! ```text
//! 21 "Chat" struct{sender:fixed(24,string),text:max_len(256,string)}
//! ```
//!
//! The [`SchemaFingerprint`] of a message is the 64-bit FNV-1a hash of that
//! line; the fingerprint of a [`MessageFactory`](crate::MessageFactory)
//! hashes the id and fingerprint of every registered message in id order, so
//! it depends neither on the order of registration nor on the order in which
//! factories were merged. `docs/WIRE_TYPES.md` ("Schema fingerprint") defines
//! the text and both hashes precisely enough for another implementation to
//! compute them.
//!
//! # In a handshake
//!
//! A connecting peer sends
//! [`MessageFactory::schema_summary`](crate::MessageFactory::schema_summary),
//! a [`SchemaSummary`]: the 64-bit
//! factory fingerprint plus, when it fits, one `(id, 32-bit fingerprint)`
//! entry per message, 5 bytes each. The summary implements
//! [`Encode`](crate::Encode) and [`Decode`](crate::Decode), and
//! [`SchemaSummary::within`] drops the per-message list when the whole
//! summary would not fit the room the handshake has for it. The receiver
//! compares with [`MessageFactory::schema_diff`](crate::MessageFactory::schema_diff):
//!
//! ```
//! use legume_core::{MessageFactory, SchemaSummary};
//!
//! mod v1 {
//!     use legume_derive::Message;
//!     #[derive(Debug, Message)]
//!     #[legume(crate = "legume_core")]
//!     #[message(id = 22)]
//!     pub struct Chat { pub text: String }
//! }
//!
//! mod v2 {
//!     use legume_derive::Message;
//!     #[derive(Debug, Message)]
//!     #[legume(crate = "legume_core")]
//!     #[message(id = 22)]
//!     pub struct Chat { pub channel: u8, pub text: String }
//! }
//!
//! let mut server = MessageFactory::new();
//! server.register::<v1::Chat>()?;
//! let mut client = MessageFactory::new();
//! client.register::<v2::Chat>()?;
//!
//! // The client sends its summary (here: 8 + 1 + 1 + 5 bytes).
//! let summary = client.schema_summary().within(250);
//! let bytes = legume_core::codec::to_vec(&summary)?;
//! let received: SchemaSummary = legume_core::codec::from_bytes(&bytes)?;
//!
//! let diff = server.schema_diff(&received).with_sides("server", "client");
//! assert!(!diff.is_match());
//! assert_eq!(diff.to_string(), "schema mismatch: message `Chat` (id 22) differs");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The summary carries no names, so a message that only the peer has is
//! reported by its id alone; the peer, given this side's summary, names it.
//!
//! # Hand-written codec types
//!
//! `#[derive(Codec)]` and `#[derive(Message)]` implement [`WireSchema`]. A
//! type with a hand-written [`Encode`](crate::Encode) /
//! [`Decode`](crate::Decode) used as a field of a derived message implements
//! it by hand, composing the built-in descriptions or, for a layout they
//! cannot express, naming it with [`WireType::Opaque`] (change the name
//! whenever the layout changes):
//!
//! ```
//! # #![allow(dead_code)]
//! use legume_core::schema::{Fields, SchemaContext};
//! use legume_core::{WireSchema, WireType};
//!
//! /// Up to 32 flags, written as a `u32` by a hand-written codec.
//! struct Flags(u32);
//!
//! impl WireSchema for Flags {
//!     fn wire_type(cx: &mut SchemaContext) -> WireType {
//!         cx.composite::<Self>("Flags", |cx| WireType::Struct {
//!             name: "Flags",
//!             fields: Fields::Tuple(vec![u32::wire_type(cx)]),
//!         })
//!     }
//! }
//!
//! /// Three 21-bit coordinates packed into 8 bytes.
//! struct Packed([u8; 8]);
//!
//! impl WireSchema for Packed {
//!     fn wire_type(_: &mut SchemaContext) -> WireType {
//!         WireType::Opaque("Packed v2")
//!     }
//! }
//!
//! let mut cx = SchemaContext::new();
//! assert_eq!(Flags::wire_type(&mut cx).to_string(), "struct Flags(u32)");
//! assert_eq!(Packed::wire_type(&mut cx).to_string(), r#"opaque("Packed v2")"#);
//! ```
//!
//! A hand-written [`Message`] that does not override
//! [`Message::wire_shape`] is opaque: its
//! fingerprint covers its id and name only.

pub(crate) mod fingerprint;
mod impls;

pub use fingerprint::{
    fnv1a_64, DiffEntry, SchemaDiff, SchemaEntry, SchemaFingerprint, SchemaSummary,
};

use std::any::TypeId;
use std::fmt;

use crate::message::Message;

/// A type whose wire form can be described, for schema fingerprints.
///
/// Implemented for every built-in field type and by `#[derive(Codec)]` and
/// `#[derive(Message)]`. See the [module docs](self) for a hand-written
/// implementation.
#[diagnostic::on_unimplemented(
    note = "`#[derive(Codec)]` implements `WireSchema`; a type with a hand-written codec implements it by hand (see `legume::schema`)"
)]
pub trait WireSchema {
    /// The canonical description of the type's wire form.
    ///
    /// `cx` tracks the named types being described, so that a recursive
    /// type is written as a reference to itself instead of forever; pass it
    /// on to the descriptions of inner types, and wrap a struct or enum in
    /// [`SchemaContext::composite`].
    fn wire_type(cx: &mut SchemaContext) -> WireType;
}

/// The canonical description of a field type's wire form.
///
/// [`Display`](fmt::Display) writes the canonical text that fingerprints
/// hash (grammar in `docs/WIRE_TYPES.md`), for example `vec<u8>`,
/// `option<string>`, `[f32;3]`, `(u8,i16)`, `max_len(16,vec<u32>)`,
/// `fixed(24,string)` or `struct Pos{x:f32,y:f32}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireType {
    /// A fixed-width number, `bool` or `char`.
    Scalar(Scalar),
    /// A `String`: a `u16` byte length, then UTF-8. Text: `string`.
    Str,
    /// A `Vec<T>`: a varint count, then the elements. Text: `vec<T>`.
    Seq(Box<WireType>),
    /// An `Option<T>`: a tag byte, then the value when present. Text: `option<T>`.
    Optional(Box<WireType>),
    /// A `[T; N]`: N elements, no prefix. Text: `[T;N]`.
    Array(Box<WireType>, usize),
    /// A tuple, its elements in order; `()` is the empty tuple. Text: `(A,B)`, `()`.
    Tuple(Vec<WireType>),
    /// A field under `#[field(max_len = N)]`. Text: `max_len(N,T)`.
    MaxLen(usize, Box<WireType>),
    /// A field under `#[field(fixed = N)]`. Text: `fixed(N,T)`.
    Fixed(usize, Box<WireType>),
    /// A struct: its fields in order. Text: `struct Name`, `struct Name(A,B)`
    /// or `struct Name{a:A,b:B}`.
    Struct {
        /// The type's name, a Rust identifier without `r#`.
        name: &'static str,
        /// The fields in wire order.
        fields: Fields,
    },
    /// An enum: a tag byte (the variant's position), then the variant's
    /// fields. Text: `enum Name{A,B(u8),C{x:u8}}`.
    Enum {
        /// The type's name, a Rust identifier without `r#`.
        name: &'static str,
        /// The variants in tag order.
        variants: Vec<Variant>,
    },
    /// A struct or enum met again inside its own description (a recursive
    /// type), referred to by name. Text: `rec Name`.
    Recursive(&'static str),
    /// A layout the other variants cannot express, known by a name that the
    /// implementation changes whenever the layout changes. Text: `opaque` for
    /// an empty name, otherwise `opaque("name")`.
    Opaque(&'static str),
}

/// The fixed-size scalar field types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scalar {
    /// `u8`
    U8,
    /// `i8`
    I8,
    /// `u16`
    U16,
    /// `i16`
    I16,
    /// `u32`
    U32,
    /// `i32`
    I32,
    /// `u64`
    U64,
    /// `i64`
    I64,
    /// `u128`
    U128,
    /// `i128`
    I128,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `bool`
    Bool,
    /// `char`
    Char,
}

impl Scalar {
    /// The canonical name, the Rust type's name: `u8`, `f32`, `bool`, ...
    pub fn name(self) -> &'static str {
        match self {
            Scalar::U8 => "u8",
            Scalar::I8 => "i8",
            Scalar::U16 => "u16",
            Scalar::I16 => "i16",
            Scalar::U32 => "u32",
            Scalar::I32 => "i32",
            Scalar::U64 => "u64",
            Scalar::I64 => "i64",
            Scalar::U128 => "u128",
            Scalar::I128 => "i128",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
            Scalar::Bool => "bool",
            Scalar::Char => "char",
        }
    }
}

/// The fields of a struct or of an enum variant, in wire order.
///
/// A struct or variant with no fields is written the same whichever way the
/// source spells it (`struct A;`, `struct A();`, `struct A {}`): the wire
/// holds nothing for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Fields {
    /// No fields.
    Unit,
    /// Positional fields. Text: `(A,B)`.
    Tuple(Vec<WireType>),
    /// Named fields. Text: `{a:A,b:B}`.
    Named(Vec<(&'static str, WireType)>),
}

/// One enum variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    /// The variant's name, a Rust identifier without `r#`.
    pub name: &'static str,
    /// The variant's fields.
    pub fields: Fields,
}

impl WireType {
    /// `#[field(max_len = max)]` applied to `inner`.
    pub fn max_len(max: usize, inner: WireType) -> Self {
        WireType::MaxLen(max, Box::new(inner))
    }

    /// `#[field(fixed = width)]` applied to `inner`.
    pub fn fixed(width: usize, inner: WireType) -> Self {
        WireType::Fixed(width, Box::new(inner))
    }

    /// Writes the canonical text.
    fn write(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            WireType::Scalar(s) => out.write_str(s.name()),
            WireType::Str => out.write_str("string"),
            WireType::Seq(t) => {
                out.write_str("vec<")?;
                t.write(out)?;
                out.write_char('>')
            }
            WireType::Optional(t) => {
                out.write_str("option<")?;
                t.write(out)?;
                out.write_char('>')
            }
            WireType::Array(t, n) => {
                out.write_char('[')?;
                t.write(out)?;
                write!(out, ";{n}]")
            }
            WireType::Tuple(items) => {
                write_list(out, '(', items.iter(), ')', |out, t| t.write(out))
            }
            WireType::MaxLen(n, t) => {
                write!(out, "max_len({n},")?;
                t.write(out)?;
                out.write_char(')')
            }
            WireType::Fixed(n, t) => {
                write!(out, "fixed({n},")?;
                t.write(out)?;
                out.write_char(')')
            }
            WireType::Struct { name, fields } => {
                write!(out, "struct {name}")?;
                fields.write(out)
            }
            WireType::Enum { name, variants } => {
                write!(out, "enum {name}")?;
                write_variants(out, variants)
            }
            WireType::Recursive(name) => write!(out, "rec {name}"),
            WireType::Opaque("") => out.write_str("opaque"),
            WireType::Opaque(name) => {
                out.write_str("opaque(")?;
                write_quoted(out, name)?;
                out.write_char(')')
            }
        }
    }

    /// Writes the canonical text of a message body: a struct or enum
    /// without its Rust name (the message's name stands for it), any other
    /// type as usual.
    fn write_body(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            WireType::Struct { fields, .. } => {
                out.write_str("struct")?;
                fields.write(out)
            }
            WireType::Enum { variants, .. } => {
                out.write_str("enum")?;
                write_variants(out, variants)
            }
            other => other.write(out),
        }
    }
}

impl fmt::Display for WireType {
    /// The canonical text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

impl Fields {
    /// The number of fields.
    pub fn len(&self) -> usize {
        match self {
            Fields::Unit => 0,
            Fields::Tuple(v) => v.len(),
            Fields::Named(v) => v.len(),
        }
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fields as `(name, type)` pairs; positional fields are named by
    /// their index (`"0"`, `"1"`, ...).
    pub fn iter(&self) -> impl Iterator<Item = (String, &WireType)> + '_ {
        let (tuple, named): (&[WireType], &[(&str, WireType)]) = match self {
            Fields::Unit => (&[], &[]),
            Fields::Tuple(v) => (v, &[]),
            Fields::Named(v) => (&[], v),
        };
        tuple
            .iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), t))
            .chain(named.iter().map(|(n, t)| ((*n).to_owned(), t)))
    }

    fn write(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Fields::Tuple(v) if !v.is_empty() => {
                write_list(out, '(', v.iter(), ')', |out, t| t.write(out))
            }
            Fields::Named(v) if !v.is_empty() => {
                write_list(out, '{', v.iter(), '}', |out, (n, t)| {
                    write!(out, "{n}:")?;
                    t.write(out)
                })
            }
            _ => Ok(()),
        }
    }
}

fn write_variants(out: &mut impl fmt::Write, variants: &[Variant]) -> fmt::Result {
    write_list(out, '{', variants.iter(), '}', |out, v| {
        out.write_str(v.name)?;
        v.fields.write(out)
    })
}

/// Writes `open`, the items separated by commas, then `close`.
fn write_list<W: fmt::Write, T>(
    out: &mut W,
    open: char,
    items: impl Iterator<Item = T>,
    close: char,
    mut each: impl FnMut(&mut W, T) -> fmt::Result,
) -> fmt::Result {
    out.write_char(open)?;
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.write_char(',')?;
        }
        each(out, item)?;
    }
    out.write_char(close)
}

/// Writes `s` between double quotes, with `"` and `\` escaped by a
/// backslash and control characters (U+0000 to U+001F, U+007F) as
/// `\u{hex}`, lowercase hex without leading zeros.
fn write_quoted(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            '\u{0}'..='\u{1f}' | '\u{7f}' => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            _ => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// The named types being described, innermost last: how a recursive type's
/// description ends.
///
/// A new context starts each top-level description; [`WireSchema`]
/// implementations pass it down to the types they contain.
#[derive(Debug, Default)]
pub struct SchemaContext {
    stack: Vec<TypeId>,
}

impl SchemaContext {
    /// A context with nothing being described yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Describes the struct or enum `T` with `describe`, or, when `T` is
    /// already being described further out (a recursive type), returns
    /// [`WireType::Recursive`]`(name)` instead.
    pub fn composite<T: ?Sized + 'static>(
        &mut self,
        name: &'static str,
        describe: impl FnOnce(&mut Self) -> WireType,
    ) -> WireType {
        let id = TypeId::of::<T>();
        if self.stack.contains(&id) {
            return WireType::Recursive(name);
        }
        self.stack.push(id);
        let described = describe(self);
        self.stack.pop();
        described
    }
}

/// The schema of one message type: its type id, its name and the wire shape
/// of its body.
///
/// [`Display`](fmt::Display) writes the canonical line that the message's
/// fingerprint hashes: the decimal id, a space, the name in double quotes, a
/// space, then the body's canonical text, where a struct or enum body is
/// written without its Rust name (`struct{..}`, `enum{..}`):
///
/// ```text
/// 22 "Spawn" struct{name:fixed(24,string),team:enum Team{Red,Blue},position:[f32;3]}
/// 30 "Ping" opaque
/// ```
///
/// The alternate form (`{:#}`) is a multi-line listing for people, one
/// field per line, with the fingerprint; it is not hashed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageSchema {
    id: u8,
    name: &'static str,
    body: WireType,
}

impl MessageSchema {
    /// The schema of a message with the given id, name and body.
    pub fn new(id: u8, name: &'static str, body: WireType) -> Self {
        MessageSchema { id, name, body }
    }

    /// The schema of the message type `T`: its [`TYPE_ID`](Message::TYPE_ID),
    /// [`NAME`](Message::NAME) and [`wire_shape`](Message::wire_shape).
    pub fn of<T: Message>() -> Self {
        Self::new(T::TYPE_ID, T::NAME, T::wire_shape())
    }

    /// The message's type id.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The message's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The wire shape of the message's body.
    pub fn body(&self) -> &WireType {
        &self.body
    }

    /// The fields of a struct message, in wire order; `None` for an enum or
    /// opaque message.
    pub fn fields(&self) -> Option<&Fields> {
        match &self.body {
            WireType::Struct { fields, .. } => Some(fields),
            _ => None,
        }
    }

    /// Whether the body is opaque: only the id and name are covered by the
    /// fingerprint (a hand-written message without
    /// [`wire_shape`](Message::wire_shape)).
    pub fn is_opaque(&self) -> bool {
        matches!(self.body, WireType::Opaque(_))
    }

    /// The canonical line, as [`Display`](fmt::Display) writes it.
    pub fn canonical_text(&self) -> String {
        self.to_string()
    }

    /// The message's fingerprint: FNV-1a 64 over the canonical line's UTF-8 bytes.
    pub fn fingerprint(&self) -> SchemaFingerprint {
        SchemaFingerprint::of_text(&self.canonical_text())
    }

    fn write_canonical(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write!(out, "{} ", self.id)?;
        write_quoted(out, self.name)?;
        out.write_char(' ')?;
        self.body.write_body(out)
    }

    fn write_pretty(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.body {
            WireType::Struct { .. } => "struct",
            WireType::Enum { .. } => "enum",
            WireType::Opaque(_) => "opaque",
            _ => "type",
        };
        write!(
            f,
            "message {} `{}` ({kind}, fingerprint {})",
            self.id,
            self.name,
            self.fingerprint()
        )?;
        match &self.body {
            WireType::Struct { fields, .. } => {
                for (name, ty) in fields.iter() {
                    write!(f, "\n    {name}: {ty}")?;
                }
            }
            WireType::Enum { variants, .. } => {
                for v in variants {
                    let mut text = String::from(v.name);
                    v.fields.write(&mut text)?;
                    write!(f, "\n    {text}")?;
                }
            }
            WireType::Opaque("") => {}
            other => write!(f, "\n    {other}")?,
        }
        Ok(())
    }
}

impl fmt::Display for MessageSchema {
    /// The canonical line, or with `{:#}` a listing for people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            self.write_pretty(f)
        } else {
            self.write_canonical(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<T: WireSchema>() -> String {
        T::wire_type(&mut SchemaContext::new()).to_string()
    }

    #[test]
    fn built_in_types() {
        assert_eq!(text::<u8>(), "u8");
        assert_eq!(text::<i128>(), "i128");
        assert_eq!(text::<char>(), "char");
        assert_eq!(text::<()>(), "()");
        assert_eq!(text::<String>(), "string");
        assert_eq!(text::<Vec<u8>>(), "vec<u8>");
        assert_eq!(text::<Option<String>>(), "option<string>");
        assert_eq!(text::<[u8; 4]>(), "[u8;4]");
        assert_eq!(text::<(u8, i16)>(), "(u8,i16)");
        assert_eq!(text::<(u8,)>(), "(u8)");
        assert_eq!(text::<Box<u32>>(), "u32");
        assert_eq!(
            text::<Vec<Option<[(bool, f64); 2]>>>(),
            "vec<option<[(bool,f64);2]>>"
        );
    }

    #[test]
    fn composite_types() {
        let t = WireType::Struct {
            name: "P",
            fields: Fields::Named(vec![
                ("x", WireType::fixed(4, WireType::Str)),
                (
                    "y",
                    WireType::max_len(3, WireType::Seq(Box::new(WireType::Scalar(Scalar::U8)))),
                ),
            ]),
        };
        assert_eq!(
            t.to_string(),
            "struct P{x:fixed(4,string),y:max_len(3,vec<u8>)}"
        );
        let e = WireType::Enum {
            name: "E",
            variants: vec![
                Variant {
                    name: "A",
                    fields: Fields::Unit,
                },
                Variant {
                    name: "B",
                    fields: Fields::Tuple(vec![WireType::Recursive("E")]),
                },
                Variant {
                    name: "C",
                    fields: Fields::Named(vec![]),
                },
            ],
        };
        assert_eq!(e.to_string(), "enum E{A,B(rec E),C}");
        let empty = WireType::Struct {
            name: "U",
            fields: Fields::Tuple(vec![]),
        };
        assert_eq!(empty.to_string(), "struct U");
    }

    #[test]
    fn message_lines_quote_names() {
        let m = MessageSchema::new(20, "a \"b\"\\\n", WireType::Opaque(""));
        assert_eq!(m.to_string(), r#"20 "a \"b\"\\\u{a}" opaque"#);
        let o = MessageSchema::new(21, "X", WireType::Opaque("v\u{7f}2"));
        assert_eq!(o.to_string(), r#"21 "X" opaque("v\u{7f}2")"#);
        let s = MessageSchema::new(
            22,
            "S",
            WireType::Struct {
                name: "Rust",
                fields: Fields::Unit,
            },
        );
        assert_eq!(s.to_string(), r#"22 "S" struct"#);
        let n = MessageSchema::new(23, "N", WireType::Scalar(Scalar::U32));
        assert_eq!(n.to_string(), r#"23 "N" u32"#);
    }

    #[test]
    fn recursion_ends_at_the_second_visit() {
        struct Tree;
        impl WireSchema for Tree {
            fn wire_type(cx: &mut SchemaContext) -> WireType {
                cx.composite::<Self>("Tree", |cx| WireType::Enum {
                    name: "Tree",
                    variants: vec![
                        Variant {
                            name: "Leaf",
                            fields: Fields::Unit,
                        },
                        Variant {
                            name: "Node",
                            fields: Fields::Tuple(vec![Vec::<Tree>::wire_type(cx)]),
                        },
                    ],
                })
            }
        }
        assert_eq!(text::<Tree>(), "enum Tree{Leaf,Node(vec<rec Tree>)}");
        assert_eq!(
            text::<(Tree, Tree)>(),
            "(enum Tree{Leaf,Node(vec<rec Tree>)},enum Tree{Leaf,Node(vec<rec Tree>)})"
        );
    }
}
