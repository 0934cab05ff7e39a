//! The rules of a client's fields that depend on each other (type, names, profile) and of its
//! tag list.

use shared_model::error::Validator;
use shared_model::events::client::Client;
use shared_model::model::ClientType;

use crate::common::validate_profile;

/// The most tags a client carries.
pub const MAX_TAGS: usize = 50;

pub fn validate_tags(v: &mut Validator, tags: &[String]) {
    if tags.len() > MAX_TAGS {
        v.add("tags", format!("must have at most {MAX_TAGS} entries"));
    }
    for (i, t) in tags.iter().enumerate() {
        v.text(&format!("tags[{i}]"), t, 1, 50);
        if tags[..i].iter().any(|o| o.eq_ignore_ascii_case(t)) {
            v.add(format!("tags[{i}]"), "must not repeat a tag");
        }
    }
}

/// Checks the shape rules that depend on the type, and derives an individual's name.
pub fn validate_client(v: &mut Validator, c: &mut Client) {
    match c.client_type {
        ClientType::Business => {
            if c.first_name.is_some() || c.last_name.is_some() {
                v.add(
                    "firstName",
                    "only individual clients have first and last names",
                );
            }
        }
        ClientType::Individual => {
            if c.business_profile.is_some() {
                v.add(
                    "businessProfile",
                    "only business clients have a business profile",
                );
            }
            match (&c.first_name, &c.last_name) {
                (Some(f), Some(l)) => c.name = format!("{f} {l}"),
                (None, _) => v.add("firstName", "is required for an individual client"),
                (_, None) => v.add("lastName", "is required for an individual client"),
            }
        }
    }
    if let Some(p) = &mut c.business_profile {
        validate_profile(v, p, "businessProfile");
    }
}
