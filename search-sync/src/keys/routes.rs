//! `/v1/search-keys`: create (the secret shown once), list, get and revoke search keys.
//!
//! A caller manages the keys it could create: platform admins (PlatformAdminSearchAllCustomers)
//! every key; a tenant's token (not bound to a client) its own customer's keys of the kinds
//! its permissions allow (`tenantCustomers`: SearchTenants; `clients`: ViewClient). Another
//! tenant's key is 404.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db::{self, Scope};
use shared_model::error::{ApiError, ApiJson, Validator};
use shared_model::events::search::{SEARCH_KEY_CREATED, SEARCH_KEY_REVOKED};
use shared_model::http::idempotency::no_replay;
use shared_model::http::{
    ApiPath, ApiQuery, Page, Trace, created, decode_cursor, page, page_limit,
};
use shared_model::ids::CustomerId;
use shared_model::outbox::Cause;
use time::{Duration, OffsetDateTime};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bodies::{
    CreateSearchKey, DEFAULT_RATE, IssuedSearchKey, MAX_ORIGINS, MAX_RATE, MAX_TTL, MIN_TTL,
    SearchKey, is_origin,
};
use super::store::{self, Row};
use super::{FORMAT, KeyKind, LABEL};
use crate::AppState;
use crate::search::filter::filter_expr;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(get_key, revoke_key))
}

/// The scope a caller manages keys of `kind` (of `customer`) in; 403 or 400 KEY_MISMATCH if
/// it may not.
fn manage_scope(
    caller: &Caller,
    kind: KeyKind,
    customer: Option<CustomerId>,
) -> Result<Scope, ApiError> {
    if caller.has(Permission::PlatformAdminSearchAllCustomers) {
        return Ok(Scope::PlatformAdmin);
    }
    let Some(permission) = kind.tenant_permission() else {
        return Err(ApiError::forbidden(format!(
            "{} keys need PlatformAdminSearchAllCustomers",
            kind.as_str()
        )));
    };
    let Some(customer) = customer else {
        return Err(ApiError::forbidden(format!(
            "{} keys belong to a customer, and the token is not bound to one",
            kind.as_str()
        )));
    };
    caller.for_customer(
        customer,
        permission,
        Permission::PlatformAdminSearchAllCustomers,
    )
}

/// Create a search key; the response holds its secret, shown this once. `Idempotency-Key` is
/// refused (422): replaying the response would mean storing the secret.
///
/// Rules the schema cannot state: `expiresAt` is 60 s to 366 days from now, and exactly one of
/// `expiresAt` and `ttlSeconds` is given; `customerId` is absent for the platform-wide kinds and
/// needed (from the body or the token) for the others; origins are `scheme://host[:port]` in
/// lower case, none twice; the filter follows `POST /v1/search`'s rules.
#[utoipa::path(
    post, path = "/v1/search-keys", tag = "search-keys",
    request_body = CreateSearchKey,
    responses(
        (status = 201, body = IssuedSearchKey, headers(("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateSearchKey>,
) -> Result<Response, ApiError> {
    no_replay(&headers)?;
    let customer = if body.kind.is_tenant() {
        body.customer_id.or(caller.customer_id())
    } else {
        body.customer_id
    };
    let scope = manage_scope(&caller, body.kind, customer)?;
    let mut v = Validator::new();
    let name = v.text("name", &body.name, 1, 100);
    match (body.kind.is_tenant(), customer) {
        (true, None) => v.add(
            "customerId",
            format!("is required for {} keys", body.kind.as_str()),
        ),
        (false, Some(_)) => v.add(
            "customerId",
            format!("must be absent for {} keys", body.kind.as_str()),
        ),
        _ => {}
    }
    let now = db::now();
    let expires_at = match (body.expires_at, body.ttl_seconds) {
        (Some(at), None) => {
            let ahead = (at - now).whole_seconds();
            if !(MIN_TTL..=MAX_TTL).contains(&ahead) {
                v.add("expiresAt", "must be 60 s to 366 days from now");
            }
            at
        }
        (None, Some(ttl)) => {
            if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
                v.add("ttlSeconds", format!("must be {MIN_TTL} to {MAX_TTL}"));
            }
            now + Duration::seconds(ttl.clamp(MIN_TTL, MAX_TTL))
        }
        (Some(_), Some(_)) => {
            v.add("ttlSeconds", "must not be given with expiresAt");
            now
        }
        (None, None) => {
            v.add("expiresAt", "or ttlSeconds is required");
            now
        }
    };
    if let Some(f) = &body.filter {
        filter_expr(f, "filter", &mut v);
    }
    if body.allowed_origins.len() > MAX_ORIGINS {
        v.add(
            "allowedOrigins",
            format!("must hold at most {MAX_ORIGINS} origins"),
        );
    }
    for (i, o) in body.allowed_origins.iter().enumerate() {
        if !is_origin(o) {
            v.add(
                format!("allowedOrigins[{i}]"),
                "must be an origin such as https://shop.example (lower case, no path)",
            );
        } else if body.allowed_origins[..i].contains(o) {
            v.add(format!("allowedOrigins[{i}]"), "must not repeat an origin");
        }
    }
    let rate = body.rate_per_minute.unwrap_or(DEFAULT_RATE);
    if !(1..=MAX_RATE).contains(&rate) {
        v.add("ratePerMinute", format!("must be 1 to {MAX_RATE}"));
    }
    v.finish()?;

    let mut tx = db::begin(&state.kit.pool, scope).await?;
    if let Some(c) = customer {
        ensure_customer(&mut tx, c, scope).await?;
    }
    let (secret, prefix) = FORMAT.generate(LABEL);
    let row = Row {
        id: uuid::Uuid::now_v7(),
        customer_id: customer,
        kind: body.kind.as_str().to_string(),
        name,
        prefix,
        filter: body
            .filter
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(ApiError::internal)?,
        allowed_origins: body.allowed_origins.clone(),
        rate_per_minute: rate,
        expires_at,
        revoked_at: None,
        created_at: now,
        created_by: caller.sub().to_string(),
    };
    store::insert(&mut tx, &row, &state.state.hasher.hash(&secret)).await?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(
            &mut tx,
            SEARCH_KEY_CREATED,
            row.id,
            row.customer_id,
            &row.event(),
        )
        .await?;
    tx.commit().await?;
    tracing::info!(key_id = %row.id, kind = %row.kind, customer_id = ?row.customer_id,
        "search key created");
    let location = format!("/v1/search-keys/{}", row.id);
    let issued = IssuedSearchKey {
        key: SearchKey::of(row)?,
        secret,
    };
    Ok(created(location, 1, &issued))
}

/// 404 unless the customer is one the index knows and has not seen deleted (platform admins),
/// or, for the customer's own token, has not seen deleted.
async fn ensure_customer(
    conn: &mut sqlx::PgConnection,
    customer: CustomerId,
    scope: Scope,
) -> Result<(), ApiError> {
    let deleted: Option<bool> =
        sqlx::query_scalar("SELECT deleted FROM documents WHERE kind = 'customer' AND id = $1")
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?;
    match deleted {
        Some(true) => Err(ApiError::not_found("customer")),
        None if scope == Scope::PlatformAdmin => Err(ApiError::not_found("customer")),
        _ => Ok(()),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this customer's keys (platform admins; a tenant's token lists its own).
    pub customer_id: Option<CustomerId>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `nextCursor` of the previous page, as returned (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position(
    #[serde(with = "time::serde::rfc3339")] OffsetDateTime,
    uuid::Uuid,
);

/// The customer and kinds a caller lists; 403 if none.
fn listable(
    caller: &Caller,
    customer: Option<CustomerId>,
) -> Result<(Scope, Option<CustomerId>, Vec<&'static str>), ApiError> {
    if caller.has(Permission::PlatformAdminSearchAllCustomers) {
        let kinds = KeyKind::ALL.iter().map(|k| k.as_str()).collect();
        return Ok((Scope::PlatformAdmin, customer, kinds));
    }
    let own = caller
        .customer_id()
        .ok_or_else(|| ApiError::forbidden("the token is not bound to a customer"))?;
    if customer.is_some_and(|c| c != own) {
        return Err(ApiError::key_mismatch(
            "customerId names another customer than the token",
        ));
    }
    if caller.is_client_bound() {
        return Err(ApiError::forbidden(
            "a token bound to a client cannot manage search keys",
        ));
    }
    let kinds: Vec<&str> = KeyKind::ALL
        .iter()
        .filter(|k| k.tenant_permission().is_some_and(|p| caller.has(p)))
        .map(|k| k.as_str())
        .collect();
    if kinds.is_empty() {
        return Err(ApiError::forbidden(
            "search keys need SearchTenants or ViewClient",
        ));
    }
    Ok((Scope::Tenant(own), Some(own), kinds))
}

/// List the search keys the caller manages, newest first.
#[utoipa::path(
    get, path = "/v1/search-keys", tag = "search-keys",
    params(ListQuery),
    responses(
        (status = 200, body = Page<SearchKey>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let (scope, customer, kinds) = listable(&caller, q.customer_id)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let rows = store::list(&mut tx, customer, &kinds, after.map(|p| (p.0, p.1)), limit).await?;
    drop(tx);
    let keys = rows
        .into_iter()
        .map(SearchKey::of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(page(keys, limit, |k| Position(k.created_at, k.id))).into_response())
}

/// The key, if the caller manages it (else 404: another tenant's key is not told apart from
/// none).
async fn managed(state: &AppState, caller: &Caller, id: uuid::Uuid) -> Result<Row, ApiError> {
    let (scope, customer, kinds) = listable(caller, None)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let row = store::get(&mut tx, id).await?;
    drop(tx);
    row.filter(|r| {
        kinds.contains(&r.kind.as_str()) && (customer.is_none() || r.customer_id == customer)
    })
    .ok_or_else(|| ApiError::not_found("search key"))
}

/// Get a search key (never its secret).
#[utoipa::path(
    get, path = "/v1/search-keys/{keyId}", tag = "search-keys",
    params(("keyId" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = SearchKey),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<Response, ApiError> {
    let row = managed(&state, &caller, id).await?;
    Ok(axum::Json(SearchKey::of(row)?).into_response())
}

/// Revoke a search key: every replica refuses it from the moment this answers. Revoking a
/// revoked key changes nothing (204).
#[utoipa::path(
    delete, path = "/v1/search-keys/{keyId}", tag = "search-keys",
    params(("keyId" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Revoked"),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<Response, ApiError> {
    let row = managed(&state, &caller, id).await?;
    let scope = match row.customer_id {
        Some(c) if !caller.has(Permission::PlatformAdminSearchAllCustomers) => Scope::Tenant(c),
        _ => Scope::PlatformAdmin,
    };
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    if let Some(revoked) = store::revoke(&mut tx, row.id).await? {
        Cause::request(crate::SOURCE, caller.sub(), &trace.0)
            .emit(
                &mut tx,
                SEARCH_KEY_REVOKED,
                revoked.id,
                revoked.customer_id,
                &revoked.event(),
            )
            .await?;
        tracing::info!(key_id = %row.id, "search key revoked");
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
