//! Parsing of `#[message(..)]`, `#[legume(..)]` and `#[field(..)]` attributes.
//!
//! Each parser returns `syn::Result`, with every error spanned on the
//! offending token; several errors on one item are combined.

use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Error, LitInt, LitStr, Path, Result};

/// The `#[message(id = N, name = "..")]` container attribute.
pub(crate) struct MessageAttr {
    pub(crate) id: Option<u8>,
    pub(crate) name: Option<String>,
}

/// How a field is laid out on the wire, chosen by `#[field(..)]`.
#[derive(Clone, Copy)]
pub(crate) enum FieldForm {
    /// The type's own `Encode`/`Decode`.
    Plain,
    /// legume's `string N`: exactly N bytes, zero-padded.
    Fixed(usize),
    /// The type's own form, with its length capped at N.
    MaxLen(usize),
}

/// Collects errors so that one pass reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn check(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Reads `#[legume(crate = "path")]`; the default path is `::legume`.
pub(crate) fn crate_path(attrs: &[Attribute], errors: &mut Errors) -> Path {
    let mut path: Path = syn::parse_quote!(::legume);
    for attr in attrs.iter().filter(|a| a.path().is_ident("legume")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                path = lit.parse()?;
                Ok(())
            } else {
                Err(meta.error("unknown legume attribute; expected `crate = \"path\"`"))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    path
}

/// Reads `#[message(id = N, name = "..")]`.
pub(crate) fn message_attr(attrs: &[Attribute], errors: &mut Errors) -> MessageAttr {
    let mut out = MessageAttr {
        id: None,
        name: None,
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("message")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("id") {
                let lit: LitInt = meta.value()?.parse()?;
                let id = parse_type_id(&lit)?;
                set_once(&meta, &mut out.id, id)
            } else if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(Error::new(lit.span(), "message name must not be empty"));
                }
                set_once(&meta, &mut out.name, lit.value())
            } else {
                Err(meta.error("unknown message attribute; expected `id` or `name`"))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

/// Reads the `#[field(..)]` attributes of one field.
pub(crate) fn field_form(attrs: &[Attribute], errors: &mut Errors) -> FieldForm {
    let mut form: Option<FieldForm> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("field")) {
        let result = attr.parse_nested_meta(|meta| {
            let next = if meta.path.is_ident("fixed") {
                FieldForm::Fixed(parse_width(&meta, "fixed")?)
            } else if meta.path.is_ident("max_len") {
                FieldForm::MaxLen(parse_width(&meta, "max_len")?)
            } else {
                return Err(meta.error("unknown field attribute; expected `fixed` or `max_len`"));
            };
            if form.is_some() {
                return Err(meta.error("a field takes one of `fixed` or `max_len`, once"));
            }
            form = Some(next);
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    form.unwrap_or(FieldForm::Plain)
}

/// Parses an id literal and checks it is in the user range 20..=255.
fn parse_type_id(lit: &LitInt) -> Result<u8> {
    let value: u64 = lit.base10_parse()?;
    match u8::try_from(value) {
        Ok(id) if id >= 20 => Ok(id),
        _ => Err(Error::new(
            lit.span(),
            format!(
                "message type id {value} is out of range: use 20..=255 \
                 (0 to 19 are reserved for protocol messages)"
            ),
        )),
    }
}

/// Parses the positive integer after `fixed =` or `max_len =`.
fn parse_width(meta: &ParseNestedMeta<'_>, key: &str) -> Result<usize> {
    let lit: LitInt = meta.value()?.parse()?;
    let value: usize = lit.base10_parse()?;
    if value == 0 {
        return Err(Error::new(
            lit.span(),
            format!("`{key}` must be at least 1"),
        ));
    }
    Ok(value)
}

fn set_once<T>(meta: &ParseNestedMeta<'_>, slot: &mut Option<T>, value: T) -> Result<()> {
    if slot.is_some() {
        let key = meta.path.to_token_stream();
        return Err(meta.error(format!("duplicate `{key}` in `#[message(..)]`")));
    }
    *slot = Some(value);
    Ok(())
}
