//! `/v1/customers/{customerId}/locations` and, the same operations,
//! `/v1/customers/{customerId}/clients/{clientId}/locations`: an owner's locations (sites).
//!
//! Authorization and owner rules: [`crate::owners`]. An owner has at most one HQ (the
//! database enforces it): creating an HQ, or changing a location's kind to `hq`, makes the
//! previous HQ a `branch` in the same transaction (with its `location.updated`). Codes are
//! unique per owner (409 `CODE_IN_USE`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Validator};
use shared_model::events::Updated;
use shared_model::events::customer::Address;
use shared_model::events::org::{self as ev, Location};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::nested::nested;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Patch, Trace, created, decode_cursor, page, page_limit,
    with_etag,
};
use shared_model::ids::{CustomerId, LocationId};
use shared_model::model::{Email, LocationKind, Phone, WebUrl};
use shared_model::outbox::Cause;
use shared_model::schema::{Code, Text200, Text2000, TimeZoneName};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{hq, store};
use crate::AppState;
use crate::contacts::store as contacts;
use crate::departments::store as departments;
use crate::entity;
use crate::owners::{CLIENT_LEVEL, EntityPath, OwnerPath};
use crate::values::{self, DetachQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(nested(
            routes!(list_locations, create_location),
            &CLIENT_LEVEL,
        ))
        .routes(nested(
            routes!(get_location, update_location, delete_location),
            &CLIENT_LEVEL,
        ))
}

/// Body of `POST .../locations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateLocation {
    #[schema(value_type = Text200)]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<Text200>)]
    pub secondary_name: Option<String>,
    /// Default `branch`. `hq` makes the owner's previous HQ a `branch`.
    #[serde(default)]
    pub kind: Option<LocationKind>,
    #[serde(default)]
    #[schema(value_type = Option<Code>)]
    pub code: Option<String>,
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub website: Option<WebUrl>,
    #[serde(default)]
    #[schema(value_type = Option<TimeZoneName>)]
    pub time_zone: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Text2000>)]
    pub notes: Option<String>,
    /// Default true.
    #[serde(default)]
    pub active: Option<bool>,
}

/// Body of `PATCH .../locations/{locationId}` (JSON merge patch). Changing the address or the
/// kind of an HQ made from the owner's address ends its derivation (`derivedFrom` null).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateLocation {
    #[serde(default)]
    #[schema(value_type = Option<Text200>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Text200>)]
    pub secondary_name: Patch<String>,
    #[serde(default)]
    pub kind: Option<LocationKind>,
    #[serde(default)]
    #[schema(value_type = Option<Code>)]
    pub code: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Address>)]
    pub address: Patch<Address>,
    #[serde(default)]
    #[schema(value_type = Option<Phone>)]
    pub phone: Patch<Phone>,
    #[serde(default)]
    #[schema(value_type = Option<Email>)]
    pub email: Patch<Email>,
    #[serde(default)]
    #[schema(value_type = Option<WebUrl>)]
    pub website: Patch<WebUrl>,
    #[serde(default)]
    #[schema(value_type = Option<TimeZoneName>)]
    pub time_zone: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Text2000>)]
    pub notes: Patch<String>,
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
    pub kind: Option<LocationKind>,
    #[param(value_type = Option<Code>)]
    pub code: Option<String>,
    /// Text found (case-insensitive) in the name, secondary name, code or e-mail.
    #[param(value_type = Option<Text200>)]
    pub q: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position(String, LocationId);

/// Create a location.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/locations", tag = "locations",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer")),
    request_body = CreateLocation,
    responses(
        (status = 201, body = Location, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CODE_IN_USE; CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_location(
    State(state): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(path): ApiPath<OwnerPath>,
    ApiJson(body): ApiJson<CreateLocation>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut v = Validator::new();
    let name = v.text("name", &body.name, 1, 200);
    let secondary_name = body
        .secondary_name
        .map(|n| v.text("secondaryName", &n, 1, 200));
    let code = body.code.and_then(|c| values::code(&mut v, "code", &c));
    if let Some(a) = &body.address {
        a.validate(&mut v, "address");
    }
    let time_zone = body
        .time_zone
        .and_then(|z| values::time_zone(&mut v, "timeZone", &z));
    let notes = body.notes.map(|n| v.text("notes", &n, 1, 2000));
    v.finish()?;
    let now = db::now();
    let l = Location {
        id: LocationId::new(),
        customer_id: owner.customer,
        client_id: owner.client,
        name,
        secondary_name,
        kind: body.kind.unwrap_or(LocationKind::Branch),
        code,
        address: body.address,
        phone: body.phone,
        email: body.email,
        website: body.website,
        time_zone,
        notes,
        active: body.active.unwrap_or(true),
        derived_from: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    if l.kind == LocationKind::Hq {
        hq::take_designation(&mut tx, &owner, l.id, &cause).await?;
    }
    store::save(&mut tx, &l).await?;
    cause
        .emit(&mut tx, ev::LOCATION_CREATED, l.id, l.customer_id, &l)
        .await?;
    let res = created(
        format!("{}/locations/{}", owner.path(), l.id),
        l.version,
        &l,
    );
    idem.commit(tx, res).await
}

/// Get a location.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/locations/{locationId}", tag = "locations",
    params(("customerId" = CustomerId, Path), ("locationId" = LocationId, Path)),
    responses(
        (status = 200, body = Location, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_location(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<EntityPath<LocationId>>,
) -> Result<Response, ApiError> {
    entity::get(&state.kit.pool, &caller, path).await
}

/// List locations by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/locations", tag = "locations",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Location>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_locations(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OwnerPath>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.read_scope(&caller)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut v = Validator::new();
    let code = q
        .code
        .as_deref()
        .and_then(|c| values::code(&mut v, "code", c));
    let text = q.q.as_deref().map(|t| v.text("q", t, 1, 200));
    v.finish()?;
    let filter = store::Filter {
        active: q.active,
        kind: q.kind,
        code: code.as_deref(),
        q: text.as_deref(),
    };
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_known(&mut tx).await?;
    let rows = store::list(&mut tx, &owner, &filter, after.map(|p| (p.0, p.1)), limit).await?;
    drop(tx);
    let body: Page<Location> = page(rows, limit, |l| Position(l.name.to_lowercase(), l.id));
    Ok(axum::Json(body).into_response())
}

/// Update a location (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/locations/{locationId}", tag = "locations",
    params(("customerId" = CustomerId, Path), ("locationId" = LocationId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateLocation,
    responses(
        (status = 200, body = Location, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CODE_IN_USE; CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_location(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(path): ApiPath<EntityPath<LocationId>>,
    ApiJson(body): ApiJson<UpdateLocation>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut v = Validator::new();
    let name = body.name.map(|n| v.text("name", &n, 1, 200));
    let secondary_name = body
        .secondary_name
        .map(|n| v.text("secondaryName", &n, 1, 200));
    let code = body
        .code
        .map(|c| values::code(&mut v, "code", &c).unwrap_or_default());
    if let Patch::Value(a) = &body.address {
        a.validate(&mut v, "address");
    }
    let time_zone = body
        .time_zone
        .map(|z| values::time_zone(&mut v, "timeZone", &z).unwrap_or_default());
    let notes = body.notes.map(|n| v.text("notes", &n, 1, 2000));
    v.finish()?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    let before = entity::existing(&mut tx, &owner, path.id(), true).await?;
    if_match.check(before.version)?;
    let mut l = before.clone();
    if let Some(n) = name {
        l.name = n;
    }
    secondary_name.apply(&mut l.secondary_name);
    if let Some(k) = body.kind {
        l.kind = k;
    }
    code.apply(&mut l.code);
    body.address.apply(&mut l.address);
    body.phone.apply(&mut l.phone);
    body.email.apply(&mut l.email);
    body.website.apply(&mut l.website);
    time_zone.apply(&mut l.time_zone);
    notes.apply(&mut l.notes);
    if let Some(a) = body.active {
        l.active = a;
    }
    if l.address != before.address || l.kind != before.kind {
        l.derived_from = None;
    }
    if l == before {
        return Ok(with_etag(StatusCode::OK, l.version, &l));
    }
    if l.kind == LocationKind::Hq && before.kind != LocationKind::Hq {
        hq::take_designation(&mut tx, &owner, l.id, &cause).await?;
    }
    l.version += 1;
    l.updated_at = db::now();
    store::save(&mut tx, &l).await?;
    let data = Updated::new(&before, &l).map_err(ApiError::internal)?;
    cause
        .emit(&mut tx, ev::LOCATION_UPDATED, l.id, l.customer_id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, l.version, &l))
}

/// Delete a location (`?detach=true`: its departments and contacts are detached from it first).
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/locations/{locationId}", tag = "locations",
    params(("customerId" = CustomerId, Path), ("locationId" = LocationId, Path), DetachQuery, ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, description = "LOCATION_IN_USE (names what points to it); CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_location(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(path): ApiPath<EntityPath<LocationId>>,
    ApiQuery(q): ApiQuery<DetachQuery>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    let l = entity::existing(&mut tx, &owner, path.id(), true).await?;
    if_match.check(l.version)?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let departments = departments::at_location(&mut tx, &owner, l.id).await?;
    let contacts = contacts::at_location(&mut tx, &owner, l.id).await?;
    if !departments.is_empty() || !contacts.is_empty() {
        if !q.detach() {
            return Err(values::in_use(
                "LOCATION_IN_USE",
                "location",
                &[
                    (
                        "departments",
                        departments.iter().map(|d| d.id.to_string()).collect(),
                    ),
                    (
                        "contacts",
                        contacts.iter().map(|c| c.id.to_string()).collect(),
                    ),
                ],
            ));
        }
        entity::detach(
            &mut tx,
            departments,
            "locationId",
            |d| d.location_id = None,
            &cause,
        )
        .await?;
        entity::detach(
            &mut tx,
            contacts,
            "locationId",
            |c| c.location_id = None,
            &cause,
        )
        .await?;
    }
    entity::delete(&mut tx, &l, &cause).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
