//! Code generation from the validated AST. Infallible: every check is in `ast`.
//!
//! Field code is spanned on the field's type, so a type without `Encode` /
//! `Decode` (or without `FixedWidth` / `LenBounded` for the attribute forms)
//! is reported at the field that uses it.
//!
//! Every container also gets `WireSchema`: the struct's fields or the enum's
//! variants described in order, with the names written without `r#`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, Member, Path};

use crate::ast::{Container, Field, Fields, MessageDef, SetDef, Shape, Style};
use crate::attr::FieldForm;

/// `Encode`, `Decode` and `WireSchema` for a struct or enum.
pub(crate) fn codec(c: &Container) -> TokenStream {
    let Container {
        ident,
        krate,
        shape,
    } = c;
    let (len, encode, min_len, decode) = match shape {
        Shape::Struct(fields) => struct_body(krate, fields),
        Shape::Enum(variants) => enum_body(krate, ident, variants),
    };
    let schema = wire_schema(c);
    // The `Ok(())` after an enum without variants' `match *self {}` is unreachable.
    let allow = match shape {
        Shape::Enum(variants) if variants.is_empty() => quote!(#[allow(unreachable_code)]),
        _ => quote!(),
    };
    quote! {
        #[automatically_derived]
        impl #krate::Encode for #ident {
            #[inline]
            fn encoded_len(&self) -> usize {
                #len
            }

            #allow
            fn encode(
                &self,
                __legume_w: &mut #krate::Writer<'_>,
            ) -> ::core::result::Result<(), #krate::EncodeError> {
                #encode
                ::core::result::Result::Ok(())
            }
        }

        #[automatically_derived]
        impl #krate::Decode for #ident {
            const MIN_LEN: usize = #min_len;

            fn decode(
                __legume_r: &mut #krate::Reader<'_>,
            ) -> ::core::result::Result<Self, #krate::DecodeError> {
                #decode
            }
        }

        #schema
    }
}

/// `Encode`, `Decode` and `Message`.
pub(crate) fn message(def: &MessageDef) -> TokenStream {
    let codec = codec(&def.container);
    let Container { ident, krate, .. } = &def.container;
    let (id, name) = (def.id, &def.name);
    quote! {
        #codec

        #[automatically_derived]
        impl #krate::Message for #ident {
            const TYPE_ID: u8 = #id;
            const NAME: &'static str = #name;

            fn wire_shape() -> #krate::WireType {
                <Self as #krate::WireSchema>::wire_type(
                    &mut #krate::schema::SchemaContext::new(),
                )
            }
        }
    }
}

/// `MessageSet`, `From` for each variant, and a compile-time check that the
/// variants' type ids are distinct.
pub(crate) fn message_set(def: &SetDef) -> TokenStream {
    let SetDef {
        ident,
        krate,
        variants,
    } = def;
    let names: Vec<&Ident> = variants.iter().map(|(v, _)| v).collect();
    let tys: Vec<&syn::Type> = variants.iter().map(|(_, t)| t).collect();
    let mut clashes = Vec::new();
    for (i, (va, ta)) in variants.iter().enumerate() {
        for (vb, tb) in &variants[i + 1..] {
            let msg = format!("MessageSet {ident}: variants {va} and {vb} have the same type id");
            // One check per pair, spanned on the later variant, so that every
            // clash is reported where it is.
            clashes.push(quote_spanned! {vb.span()=>
                const _: () = if <#ta as #krate::Message>::TYPE_ID == <#tb as #krate::Message>::TYPE_ID {
                    ::core::panic!(#msg);
                };
            });
        }
    }
    quote! {
        #(#clashes)*

        #[automatically_derived]
        impl #krate::MessageSet for #ident {
            fn register_all(
                factory: &mut #krate::MessageFactory,
            ) -> ::core::result::Result<(), #krate::RegistryError> {
                #( factory.register::<#tys>()?; )*
                ::core::result::Result::Ok(())
            }

            fn from_any(
                msg: ::std::boxed::Box<dyn #krate::AnyMessage>,
            ) -> ::core::result::Result<Self, ::std::boxed::Box<dyn #krate::AnyMessage>> {
                #(
                    let msg = match msg.downcast::<#tys>() {
                        ::core::result::Result::Ok(m) => {
                            return ::core::result::Result::Ok(Self::#names(*m));
                        }
                        ::core::result::Result::Err(m) => m,
                    };
                )*
                ::core::result::Result::Err(msg)
            }

            fn decode_message(
                bytes: &[u8],
            ) -> ::core::result::Result<Self, #krate::DecodeError> {
                let mut r = #krate::Reader::new(bytes);
                let id = r.read_u8()?;
                let msg = #(
                    if id == <#tys as #krate::Message>::TYPE_ID {
                        Self::#names(<#tys as #krate::Decode>::decode(&mut r)?)
                    } else
                )* {
                    return ::core::result::Result::Err(#krate::DecodeError::UnknownTypeId(id));
                };
                r.finish()?;
                ::core::result::Result::Ok(msg)
            }

            fn as_message(&self) -> &dyn #krate::AnyMessage {
                match self {
                    #( Self::#names(m) => m, )*
                }
            }
        }

        #(
            #[automatically_derived]
            impl ::core::convert::From<#tys> for #ident {
                fn from(m: #tys) -> Self {
                    Self::#names(m)
                }
            }
        )*
    }
}

/// `WireSchema`: the container described by name and shape, or referred to
/// by name when it is met again inside itself.
fn wire_schema(c: &Container) -> TokenStream {
    let Container {
        ident,
        krate,
        shape,
    } = c;
    let name = ident.unraw().to_string();
    let body = match shape {
        Shape::Struct(fields) => {
            let fields = describe_fields(krate, fields);
            quote!(#krate::WireType::Struct { name: #name, fields: #fields })
        }
        Shape::Enum(variants) => {
            let variants = variants.iter().map(|v| {
                let vname = v.ident.unraw().to_string();
                let fields = describe_fields(krate, &v.fields);
                quote!(#krate::schema::Variant { name: #vname, fields: #fields })
            });
            quote!(#krate::WireType::Enum {
                name: #name,
                variants: ::std::vec![#(#variants),*],
            })
        }
    };
    quote! {
        #[automatically_derived]
        impl #krate::WireSchema for #ident {
            fn wire_type(
                __legume_cx: &mut #krate::schema::SchemaContext,
            ) -> #krate::WireType {
                __legume_cx.composite::<Self>(#name, |__legume_cx| #body)
            }
        }
    }
}

/// A `schema::Fields` expression; no fields at all is `Fields::Unit`
/// whatever the style, as on the wire.
fn describe_fields(krate: &Path, fields: &Fields) -> TokenStream {
    let types = fields.fields.iter().map(|f| describe_field(krate, f));
    if fields.fields.is_empty() {
        return quote!(#krate::schema::Fields::Unit);
    }
    match fields.style {
        Style::Named => {
            let names = fields.fields.iter().map(|f| match &f.member {
                Member::Named(ident) => ident.unraw().to_string(),
                Member::Unnamed(index) => index.index.to_string(),
            });
            quote!(#krate::schema::Fields::Named(::std::vec![#((#names, #types)),*]))
        }
        Style::Tuple | Style::Unit => {
            quote!(#krate::schema::Fields::Tuple(::std::vec![#(#types),*]))
        }
    }
}

/// The `WireType` expression of one field, with its attribute form.
fn describe_field(krate: &Path, f: &Field) -> TokenStream {
    let ty = &f.ty;
    let inner = quote_spanned! {ty.span()=>
        <#ty as #krate::WireSchema>::wire_type(__legume_cx)
    };
    match f.form {
        FieldForm::Plain => inner,
        FieldForm::Fixed(n) => quote!(#krate::WireType::fixed(#n, #inner)),
        FieldForm::MaxLen(n) => quote!(#krate::WireType::max_len(#n, #inner)),
    }
}

/// The four pieces of a struct's codec: length, encode, minimum length, decode.
fn struct_body(
    krate: &Path,
    fields: &Fields,
) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let access: Vec<TokenStream> = fields
        .fields
        .iter()
        .map(|f| {
            let m = &f.member;
            quote!(&self.#m)
        })
        .collect();
    let len = sum_len(krate, fields, &access);
    let encode = encode_all(krate, fields, &access);
    let min_len = sum_min_len(krate, fields);
    let construct = construct(krate, quote!(Self), fields);
    (
        len,
        encode,
        min_len,
        quote!(::core::result::Result::Ok(#construct)),
    )
}

/// The four pieces of an enum's codec. The tag is one byte: the variant's position.
fn enum_body(
    krate: &Path,
    ident: &Ident,
    variants: &[crate::ast::Variant],
) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let mut len_arms = Vec::new();
    let mut encode_arms = Vec::new();
    let mut decode_arms = Vec::new();
    let mut min_lens = Vec::new();
    for (tag, v) in variants.iter().enumerate() {
        // Invariant: ast rejects enums with more than 256 variants.
        let tag = u8::try_from(tag).unwrap_or(u8::MAX);
        let name = &v.ident;
        let binds: Vec<Ident> = (0..v.fields.fields.len())
            .map(|i| format_ident!("__legume_f{}", i))
            .collect();
        let pattern = bind_pattern(&v.fields, &binds);
        let access: Vec<TokenStream> = binds.iter().map(|b| quote!(#b)).collect();
        let len = sum_len(krate, &v.fields, &access);
        let encode = encode_all(krate, &v.fields, &access);
        len_arms.push(quote!(Self::#name #pattern => 1 + #len,));
        encode_arms.push(quote! {
            Self::#name #pattern => {
                __legume_w.put_u8(#tag)?;
                #encode
            }
        });
        let construct = construct(krate, quote!(Self::#name), &v.fields);
        decode_arms.push(quote!(#tag => ::core::result::Result::Ok(#construct),));
        min_lens.push(sum_min_len(krate, &v.fields));
    }
    let ty_name = ident.to_string();
    let min_len = quote! {
        1 + {
            let mut min = usize::MAX;
            #( if #min_lens < min { min = #min_lens; } )*
            if min == usize::MAX { 0 } else { min }
        }
    };
    // An enum without variants has no values: `match *self {}` says so,
    // where `match self {}` on a reference would not compile.
    let scrutinee = if variants.is_empty() {
        quote!(*self)
    } else {
        quote!(self)
    };
    let len = quote!(match #scrutinee { #(#len_arms)* });
    let encode = quote!(match #scrutinee { #(#encode_arms)* });
    let decode = quote! {
        match __legume_r.read_u8()? {
            #(#decode_arms)*
            tag => ::core::result::Result::Err(#krate::DecodeError::InvalidEnumTag {
                tag,
                ty: #ty_name,
            }),
        }
    };
    (len, encode, min_len, decode)
}

/// A pattern binding a variant's fields to `binds`.
fn bind_pattern(fields: &Fields, binds: &[Ident]) -> TokenStream {
    match fields.style {
        Style::Unit => quote!(),
        Style::Tuple => quote!((#(#binds),*)),
        Style::Named => {
            let members: Vec<&Member> = fields.fields.iter().map(|f| &f.member).collect();
            quote!({ #(#members: #binds),* })
        }
    }
}

fn sum_len(krate: &Path, fields: &Fields, access: &[TokenStream]) -> TokenStream {
    let parts = fields.fields.iter().zip(access).map(|(f, v)| {
        let ty = &f.ty;
        match f.form {
            FieldForm::Fixed(n) => {
                quote_spanned!(ty.span()=> #krate::codec::fixed_len::<#ty>(#v, #n))
            }
            FieldForm::Plain | FieldForm::MaxLen(_) => {
                quote_spanned!(ty.span()=> <#ty as #krate::Encode>::encoded_len(#v))
            }
        }
    });
    quote!(0usize #(+ #parts)*)
}

fn sum_min_len(krate: &Path, fields: &Fields) -> TokenStream {
    let parts = fields.fields.iter().map(|f| {
        let ty = &f.ty;
        match f.form {
            FieldForm::Fixed(n) => quote!(#n),
            FieldForm::Plain | FieldForm::MaxLen(_) => {
                quote_spanned!(ty.span()=> <#ty as #krate::Decode>::MIN_LEN)
            }
        }
    });
    quote!((0usize #(+ #parts)*))
}

fn encode_all(krate: &Path, fields: &Fields, access: &[TokenStream]) -> TokenStream {
    let stmts = fields
        .fields
        .iter()
        .zip(access)
        .map(|(f, v)| encode_field(krate, f, v));
    quote!(#(#stmts)*)
}

fn encode_field(krate: &Path, f: &Field, v: &TokenStream) -> TokenStream {
    let ty = &f.ty;
    match f.form {
        FieldForm::Plain => quote_spanned! {ty.span()=>
            <#ty as #krate::Encode>::encode(#v, __legume_w)?;
        },
        FieldForm::Fixed(n) => quote_spanned! {ty.span()=>
            #krate::codec::encode_fixed::<#ty>(#v, #n, __legume_w)?;
        },
        FieldForm::MaxLen(n) => quote_spanned! {ty.span()=>
            #krate::codec::encode_bounded::<#ty>(#v, #n, __legume_w)?;
        },
    }
}

fn decode_field(krate: &Path, f: &Field) -> TokenStream {
    let ty = &f.ty;
    match f.form {
        FieldForm::Plain => quote_spanned! {ty.span()=>
            <#ty as #krate::Decode>::decode(__legume_r)?
        },
        FieldForm::Fixed(n) => quote_spanned! {ty.span()=>
            #krate::codec::decode_fixed::<#ty>(__legume_r, #n)?
        },
        FieldForm::MaxLen(n) => quote_spanned! {ty.span()=>
            #krate::codec::decode_bounded::<#ty>(__legume_r, #n)?
        },
    }
}

/// An expression building `path` from fields decoded in order.
fn construct(krate: &Path, path: TokenStream, fields: &Fields) -> TokenStream {
    let values = fields.fields.iter().map(|f| decode_field(krate, f));
    match fields.style {
        Style::Unit => path,
        Style::Tuple => quote!(#path(#(#values),*)),
        Style::Named => {
            let members = fields.fields.iter().map(|f| &f.member);
            quote!(#path { #(#members: #values),* })
        }
    }
}
