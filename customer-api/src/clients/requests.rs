//! The request bodies and query of the client endpoints, with the rules the document states
//! (the handlers check them again, with the rules a schema cannot state: see `validate`).

use serde::Deserialize;
use shared_model::events::customer::BusinessProfile;
use shared_model::http::Patch;
use shared_model::ids::GroupId;
use shared_model::model::{ClientSource, ClientStatus, ClientType, Email, Locale, Phone};
use shared_model::schema::TagNames;
use utoipa::{IntoParams, ToSchema};

/// Body of `POST .../clients`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateClient {
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// Business clients: 1 to 200 characters (required). Individuals: derived from first and
    /// last name.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text200>)]
    pub name: Option<String>,
    /// Individuals (required): 1 to 100 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub first_name: Option<String>,
    /// Individuals (required): 1 to 100 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default)]
    pub locale: Option<Locale>,
    /// Business clients only.
    #[serde(default)]
    pub business_profile: Option<BusinessProfile>,
    /// 1 to 128 characters, unique per customer.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text128>)]
    pub external_id: Option<String>,
    /// Default `active`.
    #[serde(default)]
    pub status: Option<ClientStatus>,
    /// Default `direct`.
    #[serde(default)]
    pub source: Option<ClientSource>,
    /// A user id, 1 to 200 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text200>)]
    pub assignee: Option<String>,
    /// Names of existing tags (at most 50).
    #[serde(default)]
    #[schema(value_type = TagNames)]
    pub tags: Vec<String>,
}

/// Body of `PATCH .../clients/{clientId}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateClient {
    /// Immutable here: a lead becomes a business through `convert`.
    #[serde(default, rename = "type")]
    pub client_type: Option<ClientType>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text200>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub first_name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub last_name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Email>)]
    pub email: Patch<Email>,
    #[serde(default)]
    #[schema(value_type = Option<Phone>)]
    pub phone: Patch<Phone>,
    #[serde(default)]
    #[schema(value_type = Option<Locale>)]
    pub locale: Patch<Locale>,
    #[serde(default)]
    #[schema(value_type = Option<BusinessProfile>)]
    pub business_profile: Patch<BusinessProfile>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text128>)]
    pub external_id: Patch<String>,
    #[serde(default)]
    pub status: Option<ClientStatus>,
    #[serde(default)]
    pub source: Option<ClientSource>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text200>)]
    pub assignee: Patch<String>,
    /// Replaces the client's tags (names of existing tags).
    #[serde(default)]
    #[schema(value_type = Option<TagNames>)]
    pub tags: Option<Vec<String>>,
}

/// Query of `GET .../clients`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page, as returned (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    #[param(value_type = Option<ClientStatus>)]
    pub status: Option<ClientStatus>,
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<ClientType>)]
    pub client_type: Option<ClientType>,
    #[param(value_type = Option<shared_model::schema::Text200>)]
    pub assignee: Option<String>,
    /// A tag name (case-insensitive).
    #[param(value_type = Option<shared_model::schema::Text50>)]
    pub tag: Option<String>,
    /// A group id.
    #[param(value_type = Option<GroupId>)]
    pub group: Option<GroupId>,
    /// Case-insensitive text in name, e-mail or external id (1 to 100 characters).
    #[param(value_type = Option<shared_model::schema::Text100>)]
    pub q: Option<String>,
    /// RFC 3339 time: only clients updated at or after it.
    #[param(format = DateTime)]
    pub updated_since: Option<String>,
}
