//! `/v1/customers/{customerId}/tags`: tag definitions, and applying them to clients.
//!
//! A tag's colour is given (`#rrggbb`) or derived from its name: the first byte of the SHA-256
//! of the lower-cased name picks one of `PALETTE`'s 16 colours, so the same name always gets
//! the same colour. Renaming or deleting a tag changes every client carrying it: each gets a new
//! version and a `client.updated` event, so projections of clients stay right.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::Updated;
use shared_model::events::client::{self as client_ev, Client};
use shared_model::events::tenant::{self as ev, Tag};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{ClientId, CustomerId, TagId};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::access::{client_scope, scope};
use crate::clients::changes::{lock_client, save};
use crate::clients::store as clients;
use crate::common::{ensure_visible, ensure_writable};
use shared_model::http::created;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tags, create_tag))
        .routes(routes!(get_tag, update_tag, delete_tag))
        .routes(routes!(apply_tag, remove_tag))
}

/// The colours a tag without an explicit colour gets.
pub const PALETTE: [&str; 16] = [
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
    "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000", "#808000", "#000075",
];

/// The colour derived from a tag name.
pub fn derived_color(name: &str) -> &'static str {
    let digest = Sha256::digest(name.to_lowercase().as_bytes());
    PALETTE[usize::from(digest[0]) % PALETTE.len()]
}

/// Body of `POST .../tags`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTag {
    /// 1 to 50 characters, unique per customer (case-insensitive).
    #[schema(value_type = shared_model::schema::Text50)]
    pub name: String,
    /// `#rrggbb`; derived from the name when absent.
    #[serde(default)]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub color: Option<String>,
}

/// Body of `PATCH .../tags/{tagId}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTag {
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text50>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(pattern = "^#[0-9A-Fa-f]{6}$")]
    pub color: Option<String>,
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
struct Position(String, TagId);

fn color(v: &mut Validator, c: &str) -> String {
    let c = c.trim().to_ascii_lowercase();
    let ok = c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit());
    if !ok {
        v.add("color", "must be #rrggbb");
    }
    c
}

/// Re-reads the listed clients after a tag change and gives each a new version and event.
async fn touch_clients(
    tx: &mut PgConnection,
    befores: Vec<Client>,
    caller: &Caller,
    trace: &Trace,
) -> Result<(), ApiError> {
    for before in befores {
        if let Some(after) = clients::find(tx, before.customer_id, before.id, false).await? {
            save(tx, &before, after, client_ev::UPDATED, caller, trace, None).await?;
        }
    }
    Ok(())
}

async fn lock_carriers(
    tx: &mut PgConnection,
    customer: CustomerId,
    tag: TagId,
) -> Result<Vec<Client>, ApiError> {
    let mut out = Vec::new();
    for id in store::clients_with(tx, customer, tag).await? {
        if let Some(c) = clients::find(tx, customer, id, true).await? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Create a tag.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/tags", tag = "tags",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = CreateTag,
    responses(
        (status = 201, body = Tag, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_tag(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<CreateTag>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut v = Validator::new();
    let name = v.text("name", &body.name, 1, 50);
    let color = match &body.color {
        Some(c) => color(&mut v, c),
        None => derived_color(&name).to_string(),
    };
    v.finish()?;
    let now = db::now();
    let tag = Tag {
        id: TagId::new(),
        customer_id,
        name,
        color,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    store::upsert(&mut tx, &tag).await?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::TAG_CREATED, tag.id, customer_id, &tag)
        .await?;
    idem.commit(
        tx,
        created(
            format!("/v1/customers/{customer_id}/tags/{}", tag.id),
            tag.version,
            &tag,
        ),
    )
    .await
}

/// Get a tag.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/tags/{tagId}", tag = "tags",
    params(("customerId" = CustomerId, Path), ("tagId" = TagId, Path)),
    responses(
        (status = 200, body = Tag, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_tag(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, tag_id)): ApiPath<(CustomerId, TagId)>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, false)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let tag = store::find(&mut tx, customer_id, tag_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("tag"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, tag.version, &tag))
}

/// List tags by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/tags", tag = "tags",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Tag>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_tags(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, false)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_visible(&mut tx, customer_id).await?;
    let rows = store::list(&mut tx, customer_id, after.map(|p| (p.0, p.1)), limit).await?;
    drop(tx);
    let body: Page<Tag> = page(rows, limit, |t| Position(t.name.to_lowercase(), t.id));
    Ok(axum::Json(body).into_response())
}

/// Rename or recolour a tag (`If-Match` honoured); clients carrying it get `client.updated`.
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/tags/{tagId}", tag = "tags",
    params(("customerId" = CustomerId, Path), ("tagId" = TagId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateTag,
    responses(
        (status = 200, body = Tag, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_tag(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, tag_id)): ApiPath<(CustomerId, TagId)>,
    ApiJson(body): ApiJson<UpdateTag>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut v = Validator::new();
    let name = body.name.map(|n| v.text("name", &n, 1, 50));
    let new_color = body.color.map(|c| color(&mut v, &c));
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let before = store::find(&mut tx, customer_id, tag_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("tag"))?;
    if_match.check(before.version)?;
    let mut tag = before.clone();
    if let Some(n) = name {
        tag.name = n;
    }
    if let Some(c) = new_color {
        tag.color = c;
    }
    if tag == before {
        return Ok(with_etag(StatusCode::OK, tag.version, &tag));
    }
    let renamed = tag.name != before.name;
    let carriers = if renamed {
        lock_carriers(&mut tx, customer_id, tag_id).await?
    } else {
        Vec::new()
    };
    tag.version += 1;
    tag.updated_at = db::now();
    store::upsert(&mut tx, &tag).await?;
    touch_clients(&mut tx, carriers, &caller, &trace).await?;
    let data = Updated::new(&before, &tag).map_err(ApiError::internal)?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::TAG_UPDATED, tag.id, customer_id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, tag.version, &tag))
}

/// Delete a tag: it is removed from every client (each gets `client.updated`).
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/tags/{tagId}", tag = "tags",
    params(("customerId" = CustomerId, Path), ("tagId" = TagId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_tag(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, tag_id)): ApiPath<(CustomerId, TagId)>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let mut tag = store::find(&mut tx, customer_id, tag_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("tag"))?;
    if_match.check(tag.version)?;
    let carriers = lock_carriers(&mut tx, customer_id, tag_id).await?;
    store::delete(&mut tx, customer_id, tag_id).await?;
    touch_clients(&mut tx, carriers, &caller, &trace).await?;
    tag.version += 1;
    tag.updated_at = db::now();
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::TAG_DELETED, tag.id, customer_id, &tag)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_applied(
    state: AppState,
    caller: Caller,
    trace: Trace,
    (customer_id, client_id, tag_id): (CustomerId, ClientId, TagId),
    on: bool,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    if caller.is_client_bound() {
        return Err(ApiError::forbidden(
            "a token bound to a client may not tag its client (tags are the tenant's)",
        ));
    }
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let before = lock_client(&mut tx, customer_id, client_id).await?;
    store::find(&mut tx, customer_id, tag_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("tag"))?;
    let c = if store::set_applied(&mut tx, customer_id, client_id, tag_id, on, caller.sub()).await?
    {
        let after = clients::find(&mut tx, customer_id, client_id, false)
            .await?
            .ok_or_else(|| ApiError::not_found("client"))?;
        save(
            &mut tx,
            &before,
            after,
            client_ev::UPDATED,
            &caller,
            &trace,
            None,
        )
        .await?
    } else {
        before
    };
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, c.version, &c))
}

/// Apply a tag to a client (applying it twice changes nothing).
#[utoipa::path(
    put, path = "/v1/customers/{customerId}/clients/{clientId}/tags/{tagId}", tag = "tags",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("tagId" = TagId, Path)),
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn apply_tag(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath(ids): ApiPath<(CustomerId, ClientId, TagId)>,
) -> Result<Response, ApiError> {
    set_applied(state, caller, trace, ids, true).await
}

/// Remove a tag from a client (removing an absent tag changes nothing).
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/clients/{clientId}/tags/{tagId}", tag = "tags",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("tagId" = TagId, Path)),
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn remove_tag(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath(ids): ApiPath<(CustomerId, ClientId, TagId)>,
) -> Result<Response, ApiError> {
    set_applied(state, caller, trace, ids, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_colours_are_stable_and_case_blind() {
        assert_eq!(derived_color("VIP"), derived_color("vip"));
        assert!(PALETTE.contains(&derived_color("wholesale")));
    }
}
