//! `/v1/customers/{customerId}/departments` and, the same operations,
//! `/v1/customers/{customerId}/clients/{clientId}/departments`: an owner's departments; and a
//! location's departments at `.../locations/{locationId}/departments`.
//!
//! Authorization and owner rules: [`crate::owners`]. `parentId` and `locationId` name a
//! department and a location of the same owner (422 otherwise); the tree has at most five
//! levels and no cycles ([`super::tree`]). Codes are unique per owner (409 `CODE_IN_USE`).
//! Deleting a department with sub-departments is 409 `DEPARTMENT_IN_USE` (naming them), or
//! with `?detach=true` makes them top-level, each with its `department.updated`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Validator};
use shared_model::events::Updated;
use shared_model::events::org::{self as ev, Department};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::nested::nested;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Patch, Trace, created, decode_cursor, page, page_limit,
    with_etag,
};
use shared_model::ids::{CustomerId, DepartmentId, LocationId};
use shared_model::outbox::Cause;
use shared_model::schema::{Code, Text200};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{store, tree};
use crate::AppState;
use crate::contacts::store as contacts;
use crate::entity;
use crate::owners::{CLIENT_LEVEL, EntityPath, Owner, OwnerPath};
use crate::values::{self, DetachQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(nested(
            routes!(list_departments, create_department),
            &CLIENT_LEVEL,
        ))
        .routes(nested(
            routes!(get_department, update_department, delete_department),
            &CLIENT_LEVEL,
        ))
        .routes(nested(routes!(list_location_departments), &CLIENT_LEVEL))
}

/// Body of `POST .../departments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDepartment {
    #[schema(value_type = Text200)]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<Code>)]
    pub code: Option<String>,
    /// A department of the same owner; the tree has at most 5 levels.
    #[serde(default)]
    pub parent_id: Option<DepartmentId>,
    /// A location of the same owner.
    #[serde(default)]
    pub location_id: Option<LocationId>,
    /// Default true.
    #[serde(default)]
    pub active: Option<bool>,
}

/// Body of `PATCH .../departments/{departmentId}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDepartment {
    #[serde(default)]
    #[schema(value_type = Option<Text200>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Code>)]
    pub code: Patch<String>,
    /// Moves the department (with what is below it); null makes it top-level.
    #[serde(default)]
    #[schema(value_type = Option<DepartmentId>)]
    pub parent_id: Patch<DepartmentId>,
    #[serde(default)]
    #[schema(value_type = Option<LocationId>)]
    pub location_id: Patch<LocationId>,
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
    #[param(value_type = Option<Code>)]
    pub code: Option<String>,
    /// Only the departments at this location.
    #[param(value_type = Option<LocationId>)]
    pub location_id: Option<LocationId>,
    /// Only the direct sub-departments of this department.
    #[param(value_type = Option<DepartmentId>)]
    pub parent_id: Option<DepartmentId>,
    /// Text found (case-insensitive) in the name or code.
    #[param(value_type = Option<Text200>)]
    pub q: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position(String, DepartmentId);

/// The location exists for the owner (422 on `locationId` otherwise); locks it.
async fn ensure_location(
    conn: &mut PgConnection,
    owner: &Owner,
    location: LocationId,
) -> Result<(), ApiError> {
    match entity::find(conn, owner, location, true).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::field(
            "locationId",
            "must name a location of the same owner",
        )),
    }
}

/// Create a department.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/departments", tag = "departments",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer")),
    request_body = CreateDepartment,
    responses(
        (status = 201, body = Department, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CODE_IN_USE; CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_department(
    State(state): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(path): ApiPath<OwnerPath>,
    ApiJson(body): ApiJson<CreateDepartment>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut v = Validator::new();
    let name = v.text("name", &body.name, 1, 200);
    let code = body.code.and_then(|c| values::code(&mut v, "code", &c));
    v.finish()?;
    let now = db::now();
    let d = Department {
        id: DepartmentId::new(),
        customer_id: owner.customer,
        client_id: owner.client,
        name,
        code,
        parent_id: body.parent_id,
        location_id: body.location_id,
        active: body.active.unwrap_or(true),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    if let Some(parent) = d.parent_id {
        tree::lock(&mut tx, &owner).await?;
        tree::check_parent(&mut tx, &owner, None, parent).await?;
    }
    if let Some(l) = d.location_id {
        ensure_location(&mut tx, &owner, l).await?;
    }
    store::save(&mut tx, &d).await?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::DEPARTMENT_CREATED, d.id, d.customer_id, &d)
        .await?;
    let res = created(
        format!("{}/departments/{}", owner.path(), d.id),
        d.version,
        &d,
    );
    idem.commit(tx, res).await
}

/// Get a department.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/departments/{departmentId}", tag = "departments",
    params(("customerId" = CustomerId, Path), ("departmentId" = DepartmentId, Path)),
    responses(
        (status = 200, body = Department, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_department(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<EntityPath<DepartmentId>>,
) -> Result<Response, ApiError> {
    entity::get(&state.kit.pool, &caller, path).await
}

/// List departments by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/departments", tag = "departments",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Department>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_departments(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OwnerPath>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, &caller, path.owner(), q).await
}

/// List a location's departments by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/locations/{locationId}/departments", tag = "departments",
    params(("customerId" = CustomerId, Path), ("locationId" = LocationId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Department>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_location_departments(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<EntityPath<LocationId>>,
    ApiQuery(mut q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.read_scope(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    entity::existing(&mut tx, &owner, path.id(), false).await?;
    drop(tx);
    q.location_id = Some(path.id());
    list(&state, &caller, owner, q).await
}

async fn list(
    state: &AppState,
    caller: &Caller,
    owner: Owner,
    q: ListQuery,
) -> Result<Response, ApiError> {
    let scope = owner.read_scope(caller)?;
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
        code: code.as_deref(),
        location: q.location_id,
        parent: q.parent_id,
        q: text.as_deref(),
    };
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_known(&mut tx).await?;
    let rows = store::list(&mut tx, &owner, &filter, after.map(|p| (p.0, p.1)), limit).await?;
    drop(tx);
    let body: Page<Department> = page(rows, limit, |d| Position(d.name.to_lowercase(), d.id));
    Ok(axum::Json(body).into_response())
}

/// Update a department (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/departments/{departmentId}", tag = "departments",
    params(("customerId" = CustomerId, Path), ("departmentId" = DepartmentId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateDepartment,
    responses(
        (status = 200, body = Department, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CODE_IN_USE; CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_department(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(path): ApiPath<EntityPath<DepartmentId>>,
    ApiJson(body): ApiJson<UpdateDepartment>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut v = Validator::new();
    let name = body.name.map(|n| v.text("name", &n, 1, 200));
    let code = body
        .code
        .map(|c| values::code(&mut v, "code", &c).unwrap_or_default());
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    if !matches!(body.parent_id, Patch::Absent) {
        tree::lock(&mut tx, &owner).await?;
    }
    let before = entity::existing(&mut tx, &owner, path.id(), true).await?;
    if_match.check(before.version)?;
    let mut d = before.clone();
    if let Some(n) = name {
        d.name = n;
    }
    code.apply(&mut d.code);
    body.parent_id.apply(&mut d.parent_id);
    body.location_id.apply(&mut d.location_id);
    if let Some(a) = body.active {
        d.active = a;
    }
    if d == before {
        return Ok(with_etag(StatusCode::OK, d.version, &d));
    }
    if let Some(parent) = d.parent_id
        && d.parent_id != before.parent_id
    {
        tree::check_parent(&mut tx, &owner, Some(d.id), parent).await?;
    }
    if let Some(l) = d.location_id
        && d.location_id != before.location_id
    {
        ensure_location(&mut tx, &owner, l).await?;
    }
    d.version += 1;
    d.updated_at = db::now();
    store::save(&mut tx, &d).await?;
    let data = Updated::new(&before, &d).map_err(ApiError::internal)?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::DEPARTMENT_UPDATED, d.id, d.customer_id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, d.version, &d))
}

/// Delete a department (`?detach=true`: its sub-departments become top-level, its contacts
/// leave it).
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/departments/{departmentId}", tag = "departments",
    params(("customerId" = CustomerId, Path), ("departmentId" = DepartmentId, Path), DetachQuery, ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, description = "DEPARTMENT_IN_USE (names what points to it); CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_department(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(path): ApiPath<EntityPath<DepartmentId>>,
    ApiQuery(q): ApiQuery<DetachQuery>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    tree::lock(&mut tx, &owner).await?;
    let d = entity::existing(&mut tx, &owner, path.id(), true).await?;
    if_match.check(d.version)?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let children = store::children(&mut tx, &owner, d.id).await?;
    let members = contacts::in_department(&mut tx, &owner, d.id).await?;
    if !children.is_empty() || !members.is_empty() {
        if !q.detach() {
            return Err(values::in_use(
                "DEPARTMENT_IN_USE",
                "department",
                &[
                    (
                        "sub-departments",
                        children.iter().map(|c| c.id.to_string()).collect(),
                    ),
                    (
                        "contacts",
                        members.iter().map(|c| c.id.to_string()).collect(),
                    ),
                ],
            ));
        }
        entity::detach(
            &mut tx,
            children,
            "parentId",
            |c| c.parent_id = None,
            &cause,
        )
        .await?;
        entity::detach(
            &mut tx,
            members,
            "departmentId",
            |c| c.department_id = None,
            &cause,
        )
        .await?;
    }
    entity::delete(&mut tx, &d, &cause).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
