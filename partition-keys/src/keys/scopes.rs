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
