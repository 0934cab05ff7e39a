//! Rules of a customer's fields that serde cannot state (products, session expiration, the
//! business profile's type, the bootstrap tenant key), shared with client provisioning.

use shared_model::error::Validator;
use shared_model::events::customer::BusinessProfile;
use shared_model::model::CustomerType;

pub const SESSION_EXPIRATION_MIN: i32 = 300;
pub const SESSION_EXPIRATION_MAX: i32 = 2_592_000;
const MAX_PRODUCTS: usize = 50;

pub fn validate_products(v: &mut Validator, products: &[String]) {
    if products.len() > MAX_PRODUCTS {
        v.add(
            "products",
            format!("must have at most {MAX_PRODUCTS} entries"),
        );
    }
    for (i, p) in products.iter().enumerate() {
        let ok = (1..=64).contains(&p.len())
            && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ok {
            v.add(
                format!("products[{i}]"),
                "must be 1 to 64 of a-z 0-9 . _ - starting with a letter or digit",
            );
        } else if products[..i].contains(p) {
            v.add(format!("products[{i}]"), "must not repeat a product");
        }
    }
}

/// Whether two lists hold the same items, in any order (duplicates are refused elsewhere).
pub fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

pub fn validate_session(v: &mut Validator, s: Option<i32>) {
    if let Some(s) = s
        && !(SESSION_EXPIRATION_MIN..=SESSION_EXPIRATION_MAX).contains(&s)
    {
        v.add(
            "sessionExpirationSeconds",
            format!("must be {SESSION_EXPIRATION_MIN} to {SESSION_EXPIRATION_MAX} or null"),
        );
    }
}

pub fn validate_profile_allowed(v: &mut Validator, t: CustomerType, p: &Option<BusinessProfile>) {
    if t == CustomerType::Consumer && p.is_some() {
        v.add(
            "businessProfile",
            "only business customers have a business profile",
        );
    }
}

pub fn validate_bootstrap_key(v: &mut Validator, key: &str) {
    let ok = (3..=128).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
    if !ok {
        v.add(
            "bootstrapTenantKey",
            "must be 3 to 128 of A-Z a-z 0-9 . _ : -",
        );
    }
}
