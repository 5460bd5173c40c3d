//! The [`Message`] trait, its object-safe form [`AnyMessage`], and
//! [`MessageSet`] for an app's enum of messages.
//!
//! A message on the wire is its one-byte type id followed by its fields, as
//! in legume: `[type id][field 1][field 2]...`.

use std::any::Any;
use std::fmt::Debug;

use crate::codec::{Decode, Encode, Reader, Writer};
use crate::error::{DecodeError, EncodeError, RegistryError};
use crate::registry::MessageFactory;
use crate::schema::WireType;

/// The first type id available to applications; 0 to 19 belong to the protocol.
pub const FIRST_USER_TYPE_ID: u8 = 20;

/// A typed message an application sends and receives.
///
/// Usually derived with `#[derive(Message)]` and `#[message(id = N)]`. The
/// provided methods frame the fields with the type id byte.
///
/// A hand-written implementation needs only the two constants; it may
/// also describe its fields in [`wire_shape`](Message::wire_shape) so that
/// schema fingerprints cover them.
pub trait Message: Encode + Decode + Debug + Send + Sync + 'static {
    /// The one-byte type id that tells receivers which message this is.
    /// Ids 0 to 19 are reserved for the protocol's own messages.
    const TYPE_ID: u8;

    /// The message name, unique within a factory (by default the struct name).
    const NAME: &'static str;

    /// The wire shape of the message's fields, which its
    /// [schema fingerprint](crate::schema) covers along with its id and name.
    ///
    /// `#[derive(Message)]` describes the struct or enum field by field, as
    /// `<Self as WireSchema>::wire_type(&mut SchemaContext::new())`. The
    /// default, for hand-written messages, is [`WireType::Opaque`]`("")`: the
    /// fingerprint then covers only the id and the name, and a change to the
    /// fields goes unnoticed until a decode fails. Override it to describe
    /// the fields:
    ///
    /// ```
    /// use legume_core::schema::{Fields, SchemaContext};
    /// use legume_core::{Message, MessageSchema, WireSchema, WireType};
    /// # use legume_core::{Decode, DecodeError, Encode, EncodeError, Reader, Writer};
    /// #[derive(Debug)]
    /// struct Ping(u32);
    /// # impl Encode for Ping {
    /// #     fn encoded_len(&self) -> usize { 4 }
    /// #     fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> { self.0.encode(w) }
    /// # }
    /// # impl Decode for Ping {
    /// #     const MIN_LEN: usize = 4;
    /// #     fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> { Ok(Ping(u32::decode(r)?)) }
    /// # }
    ///
    /// impl Message for Ping {
    ///     const TYPE_ID: u8 = 30;
    ///     const NAME: &'static str = "Ping";
    ///
    ///     fn wire_shape() -> WireType {
    ///         WireType::Struct {
    ///             name: "Ping",
    ///             fields: Fields::Tuple(vec![u32::wire_type(&mut SchemaContext::new())]),
    ///         }
    ///     }
    /// }
    ///
    /// assert_eq!(MessageSchema::of::<Ping>().to_string(), r#"30 "Ping" struct(u32)"#);
    /// ```
    fn wire_shape() -> WireType {
        WireType::Opaque("")
    }

    /// The exact length of [`encode_message`](Message::encode_message)'s output:
    /// the type id byte plus the fields.
    fn message_len(&self) -> usize {
        1 + self.encoded_len()
    }

    /// Writes the type id and the fields into `buf`; returns the bytes written.
    fn encode_message(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(buf);
        w.put_u8(Self::TYPE_ID)?;
        self.encode(&mut w)?;
        Ok(w.position())
    }

    /// Encodes the message into a new vector (a convenience off the hot path).
    fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = vec![0; self.message_len()];
        let n = self.encode_message(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Decodes a message of this type from `bytes`, which must hold exactly
    /// its type id and fields.
    fn decode_message(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let found = r.read_u8()?;
        if found != Self::TYPE_ID {
            return Err(DecodeError::WrongTypeId {
                expected: Self::TYPE_ID,
                found,
            });
        }
        let msg = Self::decode(&mut r)?;
        r.finish()?;
        Ok(msg)
    }
}

/// A message of any registered type, as a factory decodes it.
///
/// Every [`Message`] is an `AnyMessage`. Recover the concrete type with
/// [`downcast`](trait.AnyMessage.html#method.downcast),
/// [`downcast_ref`](trait.AnyMessage.html#method.downcast_ref) or
/// [`is`](trait.AnyMessage.html#method.is), or convert into an enum that
/// derives [`MessageSet`] for an exhaustive `match`.
pub trait AnyMessage: Any + Debug + Send + Sync {
    /// The message's type id.
    fn message_type_id(&self) -> u8;

    /// The message's name.
    fn message_name(&self) -> &'static str;

    /// The length of the fields alone.
    fn fields_len(&self) -> usize;

    /// Writes the fields alone (no type id).
    fn encode_fields(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;

    /// Upcasts to `Any` for downcasting by reference.
    fn as_any(&self) -> &dyn Any;

    /// Upcasts a box to `Any` for downcasting by value.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync>;
}

impl<T: Message> AnyMessage for T {
    fn message_type_id(&self) -> u8 {
        T::TYPE_ID
    }

    fn message_name(&self) -> &'static str {
        T::NAME
    }

    fn fields_len(&self) -> usize {
        self.encoded_len()
    }

    fn encode_fields(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.encode(w)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync> {
        self
    }
}

impl dyn AnyMessage {
    /// Whether the message is a `T` (legume's `is_a`).
    pub fn is<T: Message>(&self) -> bool {
        self.as_any().is::<T>()
    }

    /// The message as a `T`, if it is one.
    pub fn downcast_ref<T: Message>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }

    /// The message as a `T`, or the message back unchanged if it is another type.
    pub fn downcast<T: Message>(self: Box<Self>) -> Result<Box<T>, Box<dyn AnyMessage>> {
        if self.is::<T>() {
            // Invariant: `is::<T>` just confirmed the concrete type.
            Ok(self.into_any().downcast().expect("type checked by is()"))
        } else {
            Err(self)
        }
    }

    /// The length of the type id byte plus the fields.
    pub fn message_len(&self) -> usize {
        1 + self.fields_len()
    }

    /// Writes the type id and the fields into `buf`; returns the bytes written.
    pub fn encode_message(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(buf);
        w.put_u8(self.message_type_id())?;
        self.encode_fields(&mut w)?;
        Ok(w.position())
    }
}

/// An app's closed set of messages as one enum, for exhaustive `match`es.
///
/// Derived with `#[derive(MessageSet)]` on an enum whose variants each wrap
/// one message type: `enum GameMsg { Chat(Chat), Move(Move) }`. The derive
/// also checks at compile time that no two variants share a type id.
pub trait MessageSet: Sized + Debug + Send + Sync + 'static {
    /// Registers every message type of the set in `factory`.
    fn register_all(factory: &mut MessageFactory) -> Result<(), RegistryError>;

    /// Converts a factory-decoded message into the set, or hands it back when
    /// its type is not in the set.
    fn from_any(msg: Box<dyn AnyMessage>) -> Result<Self, Box<dyn AnyMessage>>;

    /// Decodes a message of the set from its type id and fields.
    fn decode_message(bytes: &[u8]) -> Result<Self, DecodeError>;

    /// The message inside the variant, for sending.
    fn as_message(&self) -> &dyn AnyMessage;

    /// A factory holding exactly this set's messages.
    fn factory() -> Result<MessageFactory, RegistryError> {
        let mut factory = MessageFactory::new();
        Self::register_all(&mut factory)?;
        Ok(factory)
    }
}
