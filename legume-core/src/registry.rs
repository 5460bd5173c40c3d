//! [`MessageFactory`]: the registry that maps type ids to message types.
//!
//! A factory is built once at start-up, then shared (it is `Send + Sync`;
//! wrap it in an `Arc`) by every client, server and connection that decodes
//! with it. Lookups by id are an array index.
//!
//! The factory also fingerprints its messages' schemas (see [`crate::schema`]):
//! each message's fingerprint is computed once, when it is registered.

use std::any::{type_name, TypeId};
use std::collections::HashMap;
use std::fmt;

use crate::codec::Reader;
use crate::error::{DecodeError, RegistryError};
use crate::message::{AnyMessage, Message, FIRST_USER_TYPE_ID};
use crate::schema::fingerprint::Fnv1a64;
use crate::schema::{MessageSchema, SchemaDiff, SchemaEntry, SchemaFingerprint, SchemaSummary};

/// Decodes the fields of one registered type into a boxed message.
type DecodeFn = fn(&mut Reader<'_>) -> Result<Box<dyn AnyMessage>, DecodeError>;

/// What a factory knows about one registered message type.
#[derive(Clone, Copy)]
pub struct MessageInfo {
    type_id: u8,
    name: &'static str,
    rust_type: &'static str,
    key: TypeId,
    decode: DecodeFn,
    schema: fn() -> MessageSchema,
    fingerprint: SchemaFingerprint,
}

impl MessageInfo {
    fn of<T: Message>() -> Self {
        MessageInfo {
            type_id: T::TYPE_ID,
            name: T::NAME,
            rust_type: type_name::<T>(),
            key: TypeId::of::<T>(),
            decode: |r| Ok(Box::new(T::decode(r)?)),
            schema: MessageSchema::of::<T>,
            fingerprint: MessageSchema::of::<T>().fingerprint(),
        }
    }

    /// The message's one-byte type id.
    pub fn type_id(&self) -> u8 {
        self.type_id
    }

    /// The message's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The full path of the Rust type, as `std::any::type_name` gives it.
    pub fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    /// Whether this entry describes the Rust type `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.key == TypeId::of::<T>()
    }

    /// Decodes this message's fields (no type id byte) from the reader.
    pub fn decode_fields(&self, r: &mut Reader<'_>) -> Result<Box<dyn AnyMessage>, DecodeError> {
        (self.decode)(r)
    }

    /// The message's schema: id, name and the wire shape of its fields.
    pub fn schema(&self) -> MessageSchema {
        (self.schema)()
    }

    /// The message's fingerprint: FNV-1a 64 over its schema's canonical line.
    pub fn fingerprint(&self) -> SchemaFingerprint {
        self.fingerprint
    }
}

impl fmt::Debug for MessageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageInfo")
            .field("type_id", &self.type_id)
            .field("name", &self.name)
            .field("rust_type", &self.rust_type)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// The registry of an app's message types (legume's `MessageFactory`).
///
/// ```
/// use legume_core::{Decode, Encode, Message, MessageFactory};
/// # use legume_core::{DecodeError, EncodeError, Reader, Writer};
/// #[derive(Debug, PartialEq)]
/// struct Ping(u32);
/// # impl Encode for Ping {
/// #     fn encoded_len(&self) -> usize { 4 }
/// #     fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> { self.0.encode(w) }
/// # }
/// # impl Decode for Ping {
/// #     const MIN_LEN: usize = 4;
/// #     fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> { Ok(Ping(u32::decode(r)?)) }
/// # }
/// impl Message for Ping {
///     const TYPE_ID: u8 = 30;
///     const NAME: &'static str = "Ping";
/// }
///
/// let mut factory = MessageFactory::new();
/// factory.register::<Ping>()?;
/// let bytes = Ping(7).to_bytes()?;
/// let msg = factory.decode(&bytes)?;
/// assert_eq!(msg.downcast_ref::<Ping>(), Some(&Ping(7)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MessageFactory {
    by_id: Vec<Option<MessageInfo>>,
    by_name: HashMap<&'static str, u8>,
}

impl MessageFactory {
    /// An empty factory.
    pub fn new() -> Self {
        MessageFactory {
            by_id: vec![None; 256],
            by_name: HashMap::new(),
        }
    }

    /// Adds the message type `T`.
    ///
    /// Registering the same type again is a no-op. Fails, naming both Rust
    /// types, when another type holds `T`'s id or name, and fails for the
    /// reserved ids 0 to 19. Returns the factory for chaining.
    pub fn register<T: Message>(&mut self) -> Result<&mut Self, RegistryError> {
        let info = MessageInfo::of::<T>();
        self.check(&info)?;
        self.insert(info);
        Ok(self)
    }

    /// Adds every type of `other` to this factory, as when each crate of an
    /// app builds the factory of its own messages.
    ///
    /// Either every entry is added or, on the first clash, none is.
    pub fn merge(&mut self, other: &MessageFactory) -> Result<&mut Self, RegistryError> {
        for info in other.iter() {
            self.check(info)?;
        }
        for info in other.iter() {
            self.insert(*info);
        }
        Ok(self)
    }

    /// The entry for type id `id`.
    pub fn by_id(&self, id: u8) -> Option<&MessageInfo> {
        self.by_id[usize::from(id)].as_ref()
    }

    /// The entry for the message named `name`.
    pub fn by_name(&self, name: &str) -> Option<&MessageInfo> {
        self.by_name.get(name).and_then(|&id| self.by_id(id))
    }

    /// Whether the Rust type `T` is registered.
    pub fn contains<T: Message>(&self) -> bool {
        self.by_id(T::TYPE_ID).is_some_and(MessageInfo::is::<T>)
    }

    /// The registered types in type-id order.
    pub fn iter(&self) -> impl Iterator<Item = &MessageInfo> + '_ {
        self.by_id.iter().flatten()
    }

    /// The number of registered types.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no type is registered.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Decodes a whole message: its type id byte, then its fields, with
    /// nothing after them.
    pub fn decode(&self, bytes: &[u8]) -> Result<Box<dyn AnyMessage>, DecodeError> {
        let mut r = Reader::new(bytes);
        let id = r.read_u8()?;
        let msg = self.decode_fields(id, &mut r)?;
        r.finish()?;
        Ok(msg)
    }

    /// Decodes the fields of a message whose type id was read separately.
    pub fn decode_fields(
        &self,
        id: u8,
        r: &mut Reader<'_>,
    ) -> Result<Box<dyn AnyMessage>, DecodeError> {
        self.by_id(id)
            .ok_or(DecodeError::UnknownTypeId(id))?
            .decode_fields(r)
    }

    /// The fingerprint of every registered message's schema.
    ///
    /// FNV-1a 64 over, for each message in increasing id order, its id byte
    /// followed by its [fingerprint](MessageInfo::fingerprint) as 8
    /// big-endian bytes. It depends on the set of messages only, not on the
    /// order they were registered or merged in. Two peers whose factories
    /// have equal fingerprints encode and decode every message alike, as far
    /// as the messages describe their fields (derived ones do; a
    /// hand-written one is covered by its id and name only, see
    /// [`Message::wire_shape`]). An empty factory's fingerprint is the FNV
    /// offset basis, `cbf29ce484222325`.
    pub fn fingerprint(&self) -> SchemaFingerprint {
        let hash = self.iter().fold(Fnv1a64::new(), |h, info| {
            h.write(&[info.type_id])
                .write(&info.fingerprint.as_u64().to_be_bytes())
        });
        SchemaFingerprint::from_u64(hash.finish())
    }

    /// The schema of every registered message, in id order.
    pub fn schemas(&self) -> impl Iterator<Item = MessageSchema> + '_ {
        self.iter().map(MessageInfo::schema)
    }

    /// The canonical schema text: one line per message in id order, each
    /// ending in `\n`. Each line, without its newline, is what that
    /// message's fingerprint hashes.
    ///
    /// Meant for finding a mismatch by eye: print it on both sides and
    /// `diff` the two. `{:#}` on each of [`schemas`](Self::schemas) gives a
    /// longer listing with one field per line.
    pub fn schema_text(&self) -> String {
        self.schemas().map(|s| format!("{s}\n")).collect()
    }

    /// The summary a peer sends in a handshake: the factory fingerprint and
    /// every message's id and compact fingerprint. Shorten it to the room
    /// available with [`SchemaSummary::within`].
    pub fn schema_summary(&self) -> SchemaSummary {
        let entries = self
            .iter()
            .map(|info| SchemaEntry {
                id: info.type_id,
                fingerprint: info.fingerprint.compact(),
            })
            .collect();
        SchemaSummary::new(self.fingerprint(), entries)
    }

    /// Compares this factory's schema with a peer's summary, naming this
    /// side's messages.
    ///
    /// [`SchemaDiff::is_match`] tells whether the schemas match; the
    /// `Display` of the diff is a reason for a rejection, such as
    /// ``schema mismatch: message `Chat` (id 22) differs``.
    pub fn schema_diff(&self, remote: &SchemaSummary) -> SchemaDiff {
        self.schema_summary()
            .diff(remote)
            .name_with(|id| self.by_id(id).map(MessageInfo::name))
    }

    /// Checks that `info` can be inserted without a clash.
    fn check(&self, info: &MessageInfo) -> Result<(), RegistryError> {
        if info.type_id < FIRST_USER_TYPE_ID {
            return Err(RegistryError::ReservedId {
                id: info.type_id,
                ty: info.rust_type,
            });
        }
        if let Some(existing) = self.by_id(info.type_id) {
            if existing.key != info.key {
                return Err(RegistryError::IdTaken {
                    id: info.type_id,
                    existing: existing.rust_type,
                    new: info.rust_type,
                });
            }
        }
        if let Some(existing) = self.by_name(info.name) {
            if existing.key != info.key {
                return Err(RegistryError::NameTaken {
                    name: info.name,
                    existing: existing.rust_type,
                    new: info.rust_type,
                });
            }
        }
        Ok(())
    }

    fn insert(&mut self, info: MessageInfo) {
        self.by_name.insert(info.name, info.type_id);
        self.by_id[usize::from(info.type_id)] = Some(info);
    }
}

impl Default for MessageFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MessageFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
