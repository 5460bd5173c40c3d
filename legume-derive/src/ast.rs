//! The typed form of a derive input, built and validated before expansion.
//!
//! Every check that can fail happens here, so that `expand` is infallible.

use syn::{Data, DeriveInput, Error, Ident, Member, Path, Result, Type};

use crate::attr::{self, Errors, FieldForm};

/// A struct or enum whose fields get `Encode` and `Decode`.
pub(crate) struct Container {
    pub(crate) ident: Ident,
    pub(crate) krate: Path,
    pub(crate) shape: Shape,
}

/// The body of a container.
pub(crate) enum Shape {
    Struct(Fields),
    Enum(Vec<Variant>),
}

/// One enum variant.
pub(crate) struct Variant {
    pub(crate) ident: Ident,
    pub(crate) fields: Fields,
}

/// The fields of a struct or variant, in wire order.
pub(crate) struct Fields {
    pub(crate) style: Style,
    pub(crate) fields: Vec<Field>,
}

/// How the fields are written in Rust.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Style {
    Named,
    Tuple,
    Unit,
}

/// One field and its wire form.
pub(crate) struct Field {
    pub(crate) member: Member,
    pub(crate) ty: Type,
    pub(crate) form: FieldForm,
}

/// A `#[derive(Message)]` input: a container plus its id and name.
pub(crate) struct MessageDef {
    pub(crate) container: Container,
    pub(crate) id: u8,
    pub(crate) name: String,
}

/// A `#[derive(MessageSet)]` input: one variant per message type.
pub(crate) struct SetDef {
    pub(crate) ident: Ident,
    pub(crate) krate: Path,
    pub(crate) variants: Vec<(Ident, Type)>,
}

impl Container {
    pub(crate) fn from_input(input: &DeriveInput, errors: &mut Errors) -> Self {
        reject_generics(input, errors);
        let krate = attr::crate_path(&input.attrs, errors);
        let shape = match &input.data {
            Data::Struct(data) => Shape::Struct(Fields::from_syn(&data.fields, errors)),
            Data::Enum(data) => {
                if data.variants.len() > 256 {
                    errors.push(Error::new(
                        input.ident.span(),
                        "an enum field has at most 256 variants (its tag is one byte)",
                    ));
                }
                Shape::Enum(
                    data.variants
                        .iter()
                        .map(|v| {
                            if let Some((_, expr)) = &v.discriminant {
                                errors.push(Error::new_spanned(
                                    expr,
                                    "explicit discriminants are not used on the wire; \
                                     the tag is the variant's position",
                                ));
                            }
                            Variant {
                                ident: v.ident.clone(),
                                fields: Fields::from_syn(&v.fields, errors),
                            }
                        })
                        .collect(),
                )
            }
            Data::Union(data) => {
                errors.push(Error::new(
                    data.union_token.span,
                    "legume derives support structs and enums, not unions",
                ));
                Shape::Struct(Fields {
                    style: Style::Unit,
                    fields: Vec::new(),
                })
            }
        };
        Container {
            ident: input.ident.clone(),
            krate,
            shape,
        }
    }
}

impl Fields {
    fn from_syn(fields: &syn::Fields, errors: &mut Errors) -> Self {
        let style = match fields {
            syn::Fields::Named(_) => Style::Named,
            syn::Fields::Unnamed(_) => Style::Tuple,
            syn::Fields::Unit => Style::Unit,
        };
        let fields = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                check_type(&f.ty, errors);
                Field {
                    member: f
                        .ident
                        .clone()
                        .map_or_else(|| Member::from(i), Member::Named),
                    ty: f.ty.clone(),
                    form: attr::field_form(&f.attrs, errors),
                }
            })
            .collect();
        Fields { style, fields }
    }
}

impl MessageDef {
    pub(crate) fn from_input(input: &DeriveInput) -> Result<Self> {
        let mut errors = Errors::default();
        let container = Container::from_input(input, &mut errors);
        let attr = attr::message_attr(&input.attrs, &mut errors);
        if attr.id.is_none() && errors.is_empty() {
            let message_attr = input.attrs.iter().find(|a| a.path().is_ident("message"));
            errors.push(match message_attr {
                Some(a) => {
                    Error::new_spanned(a, "`#[message(..)]` needs `id = N` with N in 20..=255")
                }
                None => Error::new(
                    input.ident.span(),
                    "missing `#[message(id = N)]`: every message needs a type id in 20..=255",
                ),
            });
        }
        errors.check()?;
        let name = attr.name.unwrap_or_else(|| input.ident.to_string());
        Ok(MessageDef {
            container,
            // Invariant: errors.check() returned early when the id was missing.
            id: attr.id.unwrap_or_default(),
            name,
        })
    }
}

const SET_VARIANT: &str =
    "each MessageSet variant wraps exactly one message type, as in `Chat(Chat)`";

impl SetDef {
    pub(crate) fn from_input(input: &DeriveInput) -> Result<Self> {
        let mut errors = Errors::default();
        reject_generics(input, &mut errors);
        let krate = attr::crate_path(&input.attrs, &mut errors);
        let mut variants = Vec::new();
        match &input.data {
            Data::Enum(data) => {
                for v in &data.variants {
                    match &v.fields {
                        syn::Fields::Unnamed(f) if f.unnamed.len() == 1 => {
                            variants.push((v.ident.clone(), f.unnamed[0].ty.clone()));
                        }
                        // Spanned on the fields, or on the name of a unit variant.
                        syn::Fields::Unit => errors.push(Error::new(v.ident.span(), SET_VARIANT)),
                        fields => errors.push(Error::new_spanned(fields, SET_VARIANT)),
                    }
                }
            }
            _ => errors.push(Error::new(
                input.ident.span(),
                "MessageSet is derived for an enum whose variants wrap message types",
            )),
        }
        errors.check()?;
        Ok(SetDef {
            ident: input.ident.clone(),
            krate,
            variants,
        })
    }
}

fn reject_generics(input: &DeriveInput, errors: &mut Errors) {
    if !input.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &input.generics,
            "legume derives do not support generic parameters",
        ));
    }
}

/// Rejects field types that can never be decoded into an owned message.
/// Other unsupported types are caught by the trait bounds in the expansion,
/// which point at the field's type.
fn check_type(ty: &Type, errors: &mut Errors) {
    let reason = match ty {
        Type::Reference(_) => {
            "references cannot be decoded; use an owned type such as String or Vec"
        }
        Type::Ptr(_) => "raw pointers cannot be sent over the network",
        Type::BareFn(_) => "function pointers cannot be sent over the network",
        Type::TraitObject(_) | Type::ImplTrait(_) => {
            "trait objects cannot be decoded; use a concrete type"
        }
        Type::Slice(_) => "unsized slices cannot be fields; use Vec<T> or [T; N]",
        Type::Never(_) => "the never type cannot be a field",
        Type::Infer(_) | Type::Macro(_) | Type::Verbatim(_) => "this field type is not supported",
        Type::Array(a) => return check_type(&a.elem, errors),
        Type::Paren(p) => return check_type(&p.elem, errors),
        Type::Group(g) => return check_type(&g.elem, errors),
        Type::Tuple(t) => return t.elems.iter().for_each(|e| check_type(e, errors)),
        _ => return,
    };
    errors.push(Error::new_spanned(
        ty,
        format!("unsupported field type: {reason}"),
    ));
}
