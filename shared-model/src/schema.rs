//! Schema-only types: how the OpenAPI documents describe text whose rules the handlers check.
//! A request field names one with `#[schema(value_type = Text100)]` (or `Option<Text100>`);
//! each is registered in a document by the first request type that refers to it.
//!
//! [`NOT_BLANK`] is how the documents say "not blank": text is trimmed (of Unicode white space,
//! as Rust's `str::trim` does) before its length is counted, so it must hold a character
//! that is not white space. ECMA-262's `\\S` differs from that set (it counts U+FEFF as space
//! and U+0085 as not), so the class is spelt out.

/// Some character that `str::trim` keeps (Unicode's White_Space, spelt out).
pub const NOT_BLANK: &str = "[^\\t\\n\\u000B\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

macro_rules! text_schema {
    ($(#[doc = $doc:literal])* $name:ident, $min:expr, $max:expr, $pattern:expr) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!($($doc),*).trim()))
                    .min_length(Some($min))
                    .max_length(Some($max))
                    .pattern(Some($pattern))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

text_schema!(
    /// 1 to 20 characters, not blank.
    Text20, 1, 20, NOT_BLANK
);
text_schema!(
    /// 1 to 50 characters, not blank.
    Text50, 1, 50, NOT_BLANK
);
text_schema!(
    /// 1 to 100 characters, not blank.
    Text100, 1, 100, NOT_BLANK
);
text_schema!(
    /// 1 to 128 characters, not blank.
    Text128, 1, 128, NOT_BLANK
);
text_schema!(
    /// 1 to 200 characters, not blank.
    Text200, 1, 200, NOT_BLANK
);
text_schema!(
    /// 1 to 500 characters, not blank.
    Text500, 1, 500, NOT_BLANK
);
text_schema!(
    /// 1 to 2,000 characters, not blank.
    Text2000, 1, 2000, NOT_BLANK
);
text_schema!(
    /// A street line: 1 to 200 characters, not blank.
    AddressLine, 1, 200, NOT_BLANK
);
text_schema!(
    /// A product code: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    ProductCode, 1, 64, "^[a-z0-9][a-z0-9._-]*$"
);
text_schema!(
    /// The name of a tag of the customer: 1 to 50 characters, not blank (case-insensitive).
    TagName, 1, 50, NOT_BLANK
);
text_schema!(
    /// The name of a role of the customer: 1 to 64 of `A-Z a-z 0-9 _ -`.
    RoleName, 1, 64, "^[A-Za-z0-9_-]+$"
);
text_schema!(
    /// A domain name such as `example.com` (any case; a trailing dot is ignored).
    DomainName, 4, 254,
    "^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}\\.?$"
);

text_schema!(
    /// An internal code for external systems: 1 to 64 of `A-Z a-z 0-9 _ -`, unique per owner.
    Code, 1, 64, "^[A-Za-z0-9_-]+$"
);
text_schema!(
    /// An IANA time zone name such as `Europe/Berlin` or `UTC` (one the server's time zone
    /// database knows; any case, answered in its canonical spelling).
    TimeZoneName, 1, 64, "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
);

macro_rules! list_schema {
    ($(#[doc = $doc:literal])* $name:ident, $item:ty, $min:expr, $max:expr) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(<$item as utoipa::PartialSchema>::schema())
                    .description(Some(concat!($($doc),*).trim()))
                    .min_items(Some($min))
                    .max_items(Some($max))
                    .unique_items(true)
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

list_schema!(
    /// Product codes: at most 50, none repeated.
    ProductCodes, ProductCode, 0, 50
);
list_schema!(
    /// Names of existing tags of the customer: at most 50, none repeated.
    TagNames, TagName, 0, 50
);
list_schema!(
    /// Names of existing roles of the customer, none repeated.
    RoleNames, RoleName, 0, 100
);
list_schema!(
    /// Mail domains: at most 50, none repeated; not consumer mail domains (gmail.com, ...);
    /// unique platform-wide.
    DomainNames, DomainName, 0, 50
);

#[cfg(test)]
mod tests {
    use super::NOT_BLANK;

    #[test]
    fn not_blank_is_what_trim_keeps() {
        let re = regex::Regex::new(&format!("^{NOT_BLANK}$")).unwrap();
        for c in (0..=0x3000u32)
            .chain([0xFEFF, 0x1F600])
            .filter_map(char::from_u32)
        {
            let kept = !c.to_string().trim().is_empty();
            assert_eq!(re.is_match(&c.to_string()), kept, "U+{:04X}", c as u32);
        }
    }
}
