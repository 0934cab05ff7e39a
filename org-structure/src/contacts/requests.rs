//! Request bodies and query of the contacts routes, and the contact type rule.

use serde::Deserialize;
use shared_model::error::Validator;
use shared_model::http::Patch;
use shared_model::ids::{DepartmentId, LocationId};
use shared_model::model::{Email, Locale, Phone};
use shared_model::schema::{Text20, Text100, Text200};
use utoipa::{IntoParams, ToSchema};

/// The standard contact types; any other label of `[a-z][a-z0-9_]{0,31}` is a custom one.
pub const TYPES: [&str; 3] = ["account_owner", "billing", "technical"];

/// Body of `POST .../contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateContact {
    /// `account_owner`, `billing`, `technical`, or a custom label.
    #[serde(rename = "type")]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    pub contact_type: String,
    /// Default false. true makes the owner's previous primary contact of this type an ordinary
    /// one.
    #[serde(default)]
    pub primary: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Text20>)]
    pub salutation: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Text100>)]
    pub first_name: Option<String>,
    #[schema(value_type = Text100)]
    pub last_name: String,
    #[serde(default)]
    #[schema(value_type = Option<Text100>)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default)]
    pub mobile: Option<Phone>,
    #[serde(default)]
    pub location_id: Option<LocationId>,
    #[serde(default)]
    pub department_id: Option<DepartmentId>,
    #[serde(default)]
    pub locale: Option<Locale>,
    /// Default true.
    #[serde(default)]
    pub active: Option<bool>,
}

/// Body of `PATCH .../contacts/{contactId}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateContact {
    #[serde(default, rename = "type")]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    pub contact_type: Option<String>,
    #[serde(default)]
    pub primary: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Text20>)]
    pub salutation: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Text100>)]
    pub first_name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Text100>)]
    pub last_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Text100>)]
    pub job_title: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Email>)]
    pub email: Patch<Email>,
    #[serde(default)]
    #[schema(value_type = Option<Phone>)]
    pub phone: Patch<Phone>,
    #[serde(default)]
    #[schema(value_type = Option<Phone>)]
    pub mobile: Patch<Phone>,
    #[serde(default)]
    #[schema(value_type = Option<LocationId>)]
    pub location_id: Patch<LocationId>,
    #[serde(default)]
    #[schema(value_type = Option<DepartmentId>)]
    pub department_id: Patch<DepartmentId>,
    #[serde(default)]
    #[schema(value_type = Option<Locale>)]
    pub locale: Patch<Locale>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page, as returned (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    pub active: Option<bool>,
    #[serde(rename = "type")]
    #[param(rename = "type", pattern = "^[a-z][a-z0-9_]{0,31}$")]
    pub contact_type: Option<String>,
    pub primary: Option<bool>,
    #[param(value_type = Option<LocationId>)]
    pub location_id: Option<LocationId>,
    #[param(value_type = Option<DepartmentId>)]
    pub department_id: Option<DepartmentId>,
    /// Text found (case-insensitive) in the names, job title or e-mail.
    #[param(value_type = Option<Text200>)]
    pub q: Option<String>,
}

/// The contact type at `type`: a standard one or a custom label.
pub fn contact_type(v: &mut Validator, t: &str) -> String {
    let ok = (1..=32).contains(&t.len())
        && t.starts_with(|c: char| c.is_ascii_lowercase())
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        v.add(
            "type",
            "must be account_owner, billing, technical or a custom label of [a-z][a-z0-9_]{0,31}",
        );
    }
    t.to_string()
}
