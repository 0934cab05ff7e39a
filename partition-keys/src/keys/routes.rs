//! `/v1/customers/{customerId}/partitions/{partitionId}/keys`: API keys, and
//! `POST /v1/keys/verify` for gateways and platform services.
//!
//! **Scopes.** An `admin` key has `*:read` and `*:write`. A `custom` key lists scopes of the form
//! `resource:action`, with `resource` one of `scopes::SCOPE_RESOURCES` (or `*`) and `action` `read` or
//! `write`; anything else is refused.
//!
//! The secret is in the response that creates (or rotates) a key and nowhere else: it is
//! stored only as HMAC-SHA256 under the server-side pepper, never logged, never in an event.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::partition::{self as ev, ApiKey};
use shared_model::http::idempotency::no_replay;
use shared_model::http::{
    ApiPath, ApiQuery, Page, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{ApiKeyId, CustomerId, PartitionId};
use shared_model::outbox::{self, Cause};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::scopes::{ScopeName, validate_scopes};
use super::{secret, store};
use crate::AppState;
use crate::known_customers::store::ensure_active;
use crate::partitions::routes::{edit_scope, read_scope};
use crate::partitions::store as partitions;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key))
        .routes(routes!(rotate_key))
        .routes(routes!(revoke_key))
}

/// The longest lifetime and rotation overlap a key may be given.
const MAX_TTL_SECONDS: i64 = 5 * 365 * 86_400;
const MAX_OVERLAP_SECONDS: i64 = 30 * 86_400;

/// Body of `POST .../keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKey {
    /// 1 to 100 characters (not blank).
    #[schema(value_type = shared_model::schema::Text100)]
    pub name: String,
    /// `admin` (read and write everything) or `custom` (the listed scopes).
    #[schema(pattern = "^(admin|custom)$")]
    pub kind: String,
    /// For custom keys: 1 to 50 distinct `resource:action` (resource `*`, `customers`,
    /// `clients`, `partitions`, `departments`, `locations`, `contacts`, `search` or `events`;
    /// action `read` or `write`); none for an admin key.
    #[serde(default)]
    #[schema(value_type = Vec<ScopeName>, max_items = 50)]
    pub scopes: Vec<String>,
    /// RFC 3339, in the future; or give `ttlSeconds`. Neither: the key does not expire.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// 60 seconds to 5 years.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 157_680_000)]
    pub ttl_seconds: Option<i64>,
    /// An id in an external system the key belongs to (1 to 200 characters, not blank).
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text200>)]
    pub foreign_key: Option<String>,
}

/// Body of `POST .../keys/{keyId}/rotate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rotate {
    /// How long the old key keeps working: 0 to 2,592,000 seconds.
    #[schema(minimum = 0, maximum = 2_592_000)]
    pub overlap_seconds: i64,
}

/// A key with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedKey {
    pub key: ApiKey,
    /// The key itself. Store it now: it cannot be shown again.
    pub secret: String,
    /// For a rotation: the replaced key, with its new expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ApiKey>,
}

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
}

#[derive(Serialize, Deserialize)]
struct Position(
    #[serde(with = "time::serde::rfc3339")] OffsetDateTime,
    ApiKeyId,
);

fn issue(
    customer_id: CustomerId,
    partition_id: PartitionId,
    environment: &str,
    template: (&str, &str, Vec<String>, Option<String>),
    expires_at: Option<OffsetDateTime>,
    rotated_from: Option<ApiKeyId>,
    actor: &str,
) -> (ApiKey, String) {
    let (secret_key, prefix) = secret::generate(environment);
    let (name, kind, scopes, foreign_key) = template;
    let key = ApiKey {
        id: ApiKeyId::new(),
        customer_id,
        partition_id,
        name: name.to_string(),
        kind: kind.to_string(),
        scopes,
        prefix,
        foreign_key,
        status: "active".into(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        rotated_from,
        version: 1,
        created_at: db::now(),
        created_by: actor.to_string(),
    };
    (key, secret_key)
}

/// Create a key; the response holds its secret, shown this once. `Idempotency-Key` is refused
/// (422): replaying the response would mean storing the secret.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/partitions/{partitionId}/keys", tag = "keys",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path)),
    request_body = CreateKey,
    responses(
        (status = 201, body = IssuedKey),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CUSTOMER_DEACTIVATED; PARTITION_DISABLED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    headers: axum::http::HeaderMap,
    ApiPath((customer_id, partition_id)): ApiPath<(CustomerId, PartitionId)>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    no_replay(&headers)?;
    let now = db::now();
    let mut v = Validator::new();
    let name = v.text("name", &body.name, 1, 100);
    let scopes = match body.kind.as_str() {
        "admin" => {
            if !body.scopes.is_empty() {
                v.add("scopes", "an admin key has all scopes; give none");
            }
            vec!["*:read".to_string(), "*:write".to_string()]
        }
        "custom" => {
            validate_scopes(&mut v, &body.scopes);
            body.scopes.clone()
        }
        _ => {
            v.add("kind", "must be admin or custom");
            Vec::new()
        }
    };
    let expires_at = match (body.expires_at, body.ttl_seconds) {
        (Some(_), Some(_)) => {
            v.add("ttlSeconds", "give expiresAt or ttlSeconds, not both");
            None
        }
        (Some(at), None) => {
            if at <= now {
                v.add("expiresAt", "must be in the future");
            } else if at > now + time::Duration::seconds(MAX_TTL_SECONDS) {
                v.add("expiresAt", "must be at most 5 years ahead");
            }
            Some(at)
        }
        (None, Some(ttl)) => {
            // Only a bounded ttl is added to a time (a huge one would overflow it).
            if (60..=MAX_TTL_SECONDS).contains(&ttl) {
                Some(now + time::Duration::seconds(ttl))
            } else {
                v.add("ttlSeconds", format!("must be 60 to {MAX_TTL_SECONDS}"));
                None
            }
        }
        (None, None) => None,
    };
    let foreign_key = body.foreign_key.map(|f| v.text("foreignKey", &f, 1, 200));
    v.finish()?;

    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_active(&mut tx, customer_id).await?;
    let p = partitions::find(&mut tx, customer_id, partition_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("partition"))?;
    if p.status != "active" {
        return Err(ApiError::conflict(
            "PARTITION_DISABLED",
            "keys cannot be issued for a disabled partition",
        ));
    }
    let (key, secret_key) = issue(
        customer_id,
        partition_id,
        &p.environment,
        (&name, &body.kind, scopes, foreign_key),
        expires_at,
        None,
        caller.sub(),
    );
    store::insert(
        &mut tx,
        &key,
        &p.environment,
        &state.state.verifier.hash(&secret_key),
    )
    .await?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::KEY_CREATED, key.id, key.customer_id, &key)
        .await?;
    tx.commit().await?;
    tracing::info!(customer_id = %customer_id, key_id = %key.id, prefix = %key.prefix, "API key created");
    Ok((
        StatusCode::CREATED,
        axum::Json(IssuedKey {
            key,
            secret: secret_key,
            previous: None,
        }),
    )
        .into_response())
}

/// List a partition's keys, newest first (never their secrets).
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/partitions/{partitionId}/keys", tag = "keys",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path), ListQuery),
    responses(
        (status = 200, body = Page<ApiKey>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_keys(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, partition_id)): ApiPath<(CustomerId, PartitionId)>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&caller, customer_id)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    partitions::find(&mut tx, customer_id, partition_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("partition"))?;
    let rows = store::list(
        &mut tx,
        customer_id,
        partition_id,
        after.map(|p| (p.0, p.1)),
        limit,
    )
    .await?;
    drop(tx);
    let body: Page<ApiKey> = page(rows, limit, |k| Position(k.created_at, k.id));
    Ok(axum::Json(body).into_response())
}

/// Get a key (never its secret).
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/partitions/{partitionId}/keys/{keyId}", tag = "keys",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path), ("keyId" = ApiKeyId, Path)),
    responses(
        (status = 200, body = ApiKey, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_key(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, partition_id, key_id)): ApiPath<(CustomerId, PartitionId, ApiKeyId)>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let k = store::find(&mut tx, customer_id, partition_id, key_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, k.version, &k))
}

/// Rotate a key: a new key with the same name, kind, scopes and foreign key; the old one keeps
/// working for `overlapSeconds`. `Idempotency-Key` is refused, as for creation.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/partitions/{partitionId}/keys/{keyId}/rotate", tag = "keys",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path), ("keyId" = ApiKeyId, Path)),
    request_body = Rotate,
    responses(
        (status = 201, body = IssuedKey),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "KEY_NOT_ACTIVE; CUSTOMER_DEACTIVATED; PARTITION_DISABLED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_key(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    headers: axum::http::HeaderMap,
    ApiPath((customer_id, partition_id, key_id)): ApiPath<(CustomerId, PartitionId, ApiKeyId)>,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    no_replay(&headers)?;
    if !(0..=MAX_OVERLAP_SECONDS).contains(&body.overlap_seconds) {
        return Err(ApiError::field(
            "overlapSeconds",
            format!("must be 0 to {MAX_OVERLAP_SECONDS}"),
        ));
    }
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_active(&mut tx, customer_id).await?;
    let p = partitions::find(&mut tx, customer_id, partition_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("partition"))?;
    if p.status != "active" {
        return Err(ApiError::conflict(
            "PARTITION_DISABLED",
            "keys cannot be issued for a disabled partition",
        ));
    }
    let mut old = store::find(&mut tx, customer_id, partition_id, key_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    if old.status != "active" {
        return Err(ApiError::conflict(
            "KEY_NOT_ACTIVE",
            format!(
                "only an active key can be rotated; this one is {}",
                old.status
            ),
        ));
    }
    let now = db::now();
    let overlap_end = now + time::Duration::seconds(body.overlap_seconds);
    // The new key keeps the old one's remaining lifetime policy: the same expiry if it had one.
    let (key, secret_key) = issue(
        customer_id,
        partition_id,
        &p.environment,
        (
            &old.name,
            &old.kind,
            old.scopes.clone(),
            old.foreign_key.clone(),
        ),
        old.expires_at,
        Some(old.id),
        caller.sub(),
    );
    old.expires_at = Some(old.expires_at.map_or(overlap_end, |e| e.min(overlap_end)));
    old.version += 1;
    old.status = store::status(old.revoked_at, old.expires_at, now).to_string();
    store::update(&mut tx, &old).await?;
    store::insert(
        &mut tx,
        &key,
        &p.environment,
        &state.state.verifier.hash(&secret_key),
    )
    .await?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let events = [
        cause.event(ev::KEY_ROTATED, old.id, customer_id, &old)?,
        cause.event(ev::KEY_CREATED, key.id, customer_id, &key)?,
    ];
    outbox::write(&mut tx, &events).await?;
    tx.commit().await?;
    tracing::info!(customer_id = %customer_id, old = %old.id, new = %key.id, "API key rotated");
    Ok((
        StatusCode::CREATED,
        axum::Json(IssuedKey {
            key,
            secret: secret_key,
            previous: Some(old),
        }),
    )
        .into_response())
}

/// Revoke a key: it stops working at once (on every replica within 1 s).
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/partitions/{partitionId}/keys/{keyId}/revoke", tag = "keys",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path), ("keyId" = ApiKeyId, Path)),
    responses(
        (status = 200, body = ApiKey, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_key(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath((customer_id, partition_id, key_id)): ApiPath<(CustomerId, PartitionId, ApiKeyId)>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let mut k = store::find(&mut tx, customer_id, partition_id, key_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    if k.revoked_at.is_none() {
        k.revoked_at = Some(db::now());
        k.status = "revoked".into();
        k.version += 1;
        store::update(&mut tx, &k).await?;
        Cause::request(crate::SOURCE, caller.sub(), &trace.0)
            .emit(&mut tx, ev::KEY_REVOKED, k.id, k.customer_id, &k)
            .await?;
        tracing::info!(customer_id = %customer_id, key_id = %key_id, "API key revoked");
    }
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, k.version, &k))
}
