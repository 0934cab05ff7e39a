//! The bodies `/v1/search-keys` takes and answers, and the bounds a new key is held to.

use serde::{Deserialize, Serialize};
use shared_model::db;
use shared_model::error::ApiError;
use shared_model::ids::CustomerId;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::KeyKind;
use super::store::Row;
use crate::search::filter::Filter;

/// The longest a key may live, and the shortest.
pub const MAX_TTL: i64 = 366 * 24 * 3600;
pub const MIN_TTL: i64 = 60;
/// Searches a key may make a minute, per replica, by default and at most.
pub const DEFAULT_RATE: i32 = 600;
pub const MAX_RATE: i32 = 6000;
pub const MAX_ORIGINS: usize = 20;

/// Body of `POST /v1/search-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSearchKey {
    /// 1 to 100 characters, not blank.
    #[schema(value_type = shared_model::schema::Text100)]
    pub name: String,
    pub kind: KeyKind,
    /// The customer of a `tenantCustomers` or `clients` key (default: the token's); absent for
    /// the platform-wide kinds.
    pub customer_id: Option<CustomerId>,
    /// When the key stops working, 60 s to 366 days from now; or `ttlSeconds`, not both.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Seconds the key works, 60 to 31,622,400 (366 days); or `expiresAt`.
    #[schema(minimum = 60, maximum = 31_622_400)]
    pub ttl_seconds: Option<i64>,
    /// A filter every search with the key is combined with (AND): it can only narrow what the
    /// kind reaches.
    pub filter: Option<Filter>,
    /// The origins (`https://shop.example`, `http://localhost:3000`) a browser may use the key
    /// from, at most 20; none: the key is refused whenever a request names an origin, so it
    /// serves servers only.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub allowed_origins: Vec<String>,
    /// Searches a minute, per replica: 1 to 6,000 (default 600).
    #[schema(minimum = 1, maximum = 6000)]
    pub rate_per_minute: Option<i32>,
}

/// A search key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchKey {
    pub id: uuid::Uuid,
    pub kind: KeyKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    pub name: String,
    /// The secret's public start, to recognise it by.
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Filter>)]
    pub filter: Option<serde_json::Value>,
    pub allowed_origins: Vec<String>,
    pub rate_per_minute: i32,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

/// A new key with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedSearchKey {
    pub key: SearchKey,
    /// Present it in `X-Search-Key`. Store it now: it cannot be shown again.
    pub secret: String,
}

impl SearchKey {
    pub(super) fn of(r: Row) -> Result<SearchKey, ApiError> {
        let now = db::now();
        let status = if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at <= now {
            "expired"
        } else {
            "active"
        };
        Ok(SearchKey {
            id: r.id,
            kind: r.kind()?,
            customer_id: r.customer_id,
            name: r.name,
            prefix: r.prefix,
            filter: r.filter,
            allowed_origins: r.allowed_origins,
            rate_per_minute: r.rate_per_minute,
            status,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            created_at: r.created_at,
            created_by: r.created_by,
        })
    }
}

/// Whether `o` is an origin as browsers send it: `scheme://host[:port]`, lower case, nothing
/// after.
pub fn is_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    if !matches!(scheme, "https" | "http") || rest.is_empty() || o.len() > 255 {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n > 0));
    host_ok && port_ok
}
