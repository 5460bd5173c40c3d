//! Derive macros for legume-rs messages. Use them through the `legume` crate.
//!
//! - `#[derive(Message)]`: a struct or enum becomes a message with a type id
//!   (`#[message(id = 21)]`, 20..=255) and a name (`name = ".."`, by default
//!   the type's name). It gets `Encode`, `Decode`, `WireSchema` and
//!   `Message`, whose `wire_shape` describes the fields for the schema
//!   fingerprint.
//! - `#[derive(Codec)]`: a struct or enum usable as a field of messages
//!   (`Encode`, `Decode` and `WireSchema`, no type id).
//! - `#[derive(MessageSet)]`: an enum whose variants each wrap one message
//!   type, for exhaustive `match`es on received messages.
//!
//! Field attributes: `#[field(fixed = N)]` writes a `String` as legume's
//! `string N` (exactly N bytes, zero-padded); `#[field(max_len = N)]` caps a
//! `String` (bytes) or `Vec` (elements), checked on encode and decode.
//!
//! Every field type must implement `WireSchema` as well as `Encode` and
//! `Decode`: the schema fingerprint (`legume::schema`) covers each field's
//! name, wire type and attribute, and the names of the message, of nested
//! types and of variants, so two peers built from different definitions can
//! tell before they exchange messages.
//!
//! The generated code names the `legume` crate; a crate that depends on
//! `legume-core` directly says so with `#[legume(crate = "legume_core")]`.
//!
//! Mistakes are compile errors pointing at the offending field or attribute.
//!
//! ```
//! use legume::prelude::*;
//!
//! #[derive(Debug, PartialEq, Codec)]
//! enum Team { Red, Blue }
//!
//! #[derive(Debug, PartialEq, Message)]
//! #[message(id = 22, name = "Spawn")]
//! struct SpawnPlayer {
//!     #[field(fixed = 24)]
//!     name: String,
//!     team: Team,
//!     position: [f32; 3],
//! }
//!
//! let spawn = SpawnPlayer { name: "ann".into(), team: Team::Blue, position: [1.0, 0.0, 2.5] };
//! let bytes = spawn.to_bytes()?;
//! assert_eq!(bytes.len(), 1 + 24 + 1 + 12);
//! assert_eq!(SpawnPlayer::decode_message(&bytes)?, spawn);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, unreachable_pub)]

mod ast;
mod attr;
mod expand;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `Encode`, `Decode`, `WireSchema` and `Message`; see the crate docs.
#[proc_macro_derive(Message, attributes(message, field, legume))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    ast::MessageDef::from_input(&input)
        .map_or_else(|e| e.to_compile_error(), |def| expand::message(&def))
        .into()
}

/// Derives `Encode`, `Decode` and `WireSchema` for a type used as a field; see the crate docs.
#[proc_macro_derive(Codec, attributes(field, legume))]
pub fn derive_codec(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut errors = attr::Errors::default();
    let container = ast::Container::from_input(&input, &mut errors);
    errors
        .check()
        .map_or_else(|e| e.to_compile_error(), |()| expand::codec(&container))
        .into()
}

/// Derives `MessageSet` and `From<Variant>` for an enum of message types; see the crate docs.
#[proc_macro_derive(MessageSet, attributes(legume))]
pub fn derive_message_set(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    ast::SetDef::from_input(&input)
        .map_or_else(|e| e.to_compile_error(), |def| expand::message_set(&def))
        .into()
}
