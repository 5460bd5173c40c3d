//! The message schema of legume-rs: field codecs, the [`Message`] trait and
//! the [`MessageFactory`] registry.
//!
//! This crate turns typed messages into bytes and back. It does no I/O and
//! knows nothing of packets, connections or time; that is `legume-net`.
//! Apps normally use it through the `legume` facade crate and
//! `#[derive(Message)]`.
//!
//! - [`Encode`] / [`Decode`]: the wire form of each field type, big-endian,
//!   written into a caller-provided buffer with no allocation.
//! - [`Message`]: a type with a one-byte type id and a name.
//! - [`MessageFactory`]: the registry that decodes any registered message
//!   from its bytes, with clash errors that name both types.
//! - [`schema`]: a canonical description of every message's wire shape
//!   ([`WireSchema`], [`MessageSchema`]) and a stable [`SchemaFingerprint`]
//!   of a factory, so that two peers can tell, before they exchange
//!   messages, whether they were built from the same definitions, and if not
//!   which messages differ ([`SchemaSummary`], [`SchemaDiff`]).
//!
//! Every decode returns a [`DecodeError`] on bad input; none panics, and no
//! length prefix allocates more than the remaining input can hold.
//!
//! # Example
//!
//! ```
//! use legume_core::{Message, MessageFactory};
//! use legume_derive::Message;
//!
//! #[derive(Debug, PartialEq, Message)]
//! #[legume(crate = "legume_core")] // apps using the `legume` facade omit this line
//! #[message(id = 21)]
//! struct Chat {
//!     #[field(fixed = 24)]
//!     sender: String,
//!     #[field(max_len = 256)]
//!     text: String,
//! }
//!
//! let mut factory = MessageFactory::new();
//! factory.register::<Chat>()?;
//!
//! let chat = Chat { sender: "JoeUser".into(), text: "hi".into() };
//! let mut buf = [0u8; 64];
//! let n = chat.encode_message(&mut buf)?;
//! assert_eq!(n, chat.message_len());
//!
//! let msg = factory.decode(&buf[..n])?;
//! assert_eq!(msg.downcast_ref::<Chat>(), Some(&chat));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

pub mod codec;
mod error;
mod message;
mod registry;
pub mod schema;
pub mod varint;

pub use codec::{Decode, Encode, Reader, Writer};
pub use error::{DecodeError, EncodeError, RegistryError};
pub use message::{AnyMessage, Message, MessageSet, FIRST_USER_TYPE_ID};
pub use registry::{MessageFactory, MessageInfo};
pub use schema::{
    MessageSchema, SchemaDiff, SchemaFingerprint, SchemaSummary, WireSchema, WireType,
};
