//! The scopes of a custom key: `resource:action`, with `resource` one of [`SCOPE_RESOURCES`]
//! (or `*`) and `action` `read` or `write`.

use shared_model::error::Validator;

/// The resources a custom key's scopes may name.
pub const SCOPE_RESOURCES: [&str; 8] = [
    "customers",
    "clients",
    "partitions",
    "departments",
    "locations",
    "contacts",
    "search",
    "events",
];

/// A scope in the document: the grammar below as a pattern (kept equal to it by a test).
pub struct ScopeName;

/// `^(\*|customers|...):(read|write)$`.
pub fn scope_pattern() -> String {
    format!("^(\\*|{}):(read|write)$", SCOPE_RESOURCES.join("|"))
}

impl utoipa::PartialSchema for ScopeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(scope_pattern()))
            .into()
    }
}

impl utoipa::ToSchema for ScopeName {}

/// Checks a custom key's scopes against the grammar.
pub fn validate_scopes(v: &mut Validator, scopes: &[String]) {
    if scopes.is_empty() {
        v.add("scopes", "a custom key needs at least one scope");
    }
    if scopes.len() > 50 {
        v.add("scopes", "must have at most 50 scopes");
    }
    for (i, s) in scopes.iter().enumerate() {
        let ok = s.split_once(':').is_some_and(|(r, a)| {
            (r == "*" || SCOPE_RESOURCES.contains(&r)) && (a == "read" || a == "write")
        });
        if !ok {
            v.add(
                format!("scopes[{i}]"),
                format!(
                    "must be resource:action with resource one of *, {} and action read or write",
                    SCOPE_RESOURCES.join(", ")
                ),
            );
        } else if scopes[..i].contains(s) {
            v.add(format!("scopes[{i}]"), "must not repeat a scope");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_pattern_is_the_grammar() {
        let re = regex::Regex::new(&scope_pattern()).unwrap();
        for s in ["*:read", "customers:write", "events:read", "search:write"] {
            assert!(re.is_match(s), "{s}");
            let mut v = Validator::new();
            validate_scopes(&mut v, &[s.to_string()]);
            assert!(v.is_ok(), "{s}");
        }
        for s in [
            "*:delete",
            "customer:read",
            " *:read",
            "*:read ",
            "*",
            "customers:",
        ] {
            assert!(!re.is_match(s), "{s}");
            let mut v = Validator::new();
            validate_scopes(&mut v, &[s.to_string()]);
            assert!(!v.is_ok(), "{s}");
        }
    }
}
