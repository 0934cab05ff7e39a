//! `/v1/customers/{customerId}/contacts` and, the same operations,
//! `/v1/customers/{customerId}/clients/{clientId}/contacts`: an owner's contact persons; and
//! those at a location or in a department at `.../locations/{locationId}/contacts` and
//! `.../departments/{departmentId}/contacts`.
//!
//! Authorization and owner rules: [`crate::owners`]. `locationId` and `departmentId` name a
//! location and a department of the same owner (422 otherwise). At most one primary contact per
//! owner and type (the database enforces it): making a contact primary makes the previous
//! primary of its type an ordinary one in the same transaction (with its `contact.updated`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Validator};
use shared_model::events::Updated;
use shared_model::events::org::{self as ev, Contact};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::nested::nested;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Trace, created, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{ContactId, CustomerId, DepartmentId, LocationId};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::requests::{CreateContact, ListQuery, UpdateContact, contact_type};
use super::store;
use crate::AppState;
use crate::entity;
use crate::owners::{CLIENT_LEVEL, EntityPath, Owner, OwnerPath};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(nested(
            routes!(list_contacts, create_contact),
            &CLIENT_LEVEL,
        ))
        .routes(nested(
            routes!(get_contact, update_contact, delete_contact),
            &CLIENT_LEVEL,
        ))
        .routes(nested(routes!(list_location_contacts), &CLIENT_LEVEL))
        .routes(nested(routes!(list_department_contacts), &CLIENT_LEVEL))
}

#[derive(Serialize, Deserialize)]
struct Position(String, ContactId);

/// The references exist for the owner (422 naming the field otherwise); locks them.
async fn ensure_references(
    conn: &mut PgConnection,
    owner: &Owner,
    location: Option<LocationId>,
    department: Option<DepartmentId>,
) -> Result<(), ApiError> {
    if let Some(l) = location
        && entity::find(conn, owner, l, true).await?.is_none()
    {
        return Err(ApiError::field(
            "locationId",
            "must name a location of the same owner",
        ));
    }
    if let Some(d) = department
        && entity::find(conn, owner, d, true).await?.is_none()
    {
        return Err(ApiError::field(
            "departmentId",
            "must name a department of the same owner",
        ));
    }
    Ok(())
}

/// Makes `contact` the owner's primary of `contact_type`: the current one, if another, stops
/// being primary (and publishes its update). Serialized per owner and type.
async fn take_primary(
    conn: &mut PgConnection,
    owner: &Owner,
    contact_type: &str,
    contact: ContactId,
    cause: &Cause,
) -> Result<(), ApiError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/contacts/' || $2, 0))",
    )
    .bind(owner.id())
    .bind(contact_type)
    .execute(&mut *conn)
    .await?;
    let Some(before) = store::primary(conn, owner, contact_type).await? else {
        return Ok(());
    };
    if before.id == contact {
        return Ok(());
    }
    let mut c = before.clone();
    c.primary = false;
    c.version += 1;
    c.updated_at = db::now();
    store::save(conn, &c).await?;
    let data = Updated::new(&before, &c).map_err(ApiError::internal)?;
    cause
        .emit(conn, ev::CONTACT_UPDATED, c.id, c.customer_id, &data)
        .await?;
    Ok(())
}

/// Create a contact.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/contacts", tag = "contacts",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer")),
    request_body = CreateContact,
    responses(
        (status = 201, body = Contact, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_contact(
    State(state): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(path): ApiPath<OwnerPath>,
    ApiJson(body): ApiJson<CreateContact>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut v = Validator::new();
    let kind = contact_type(&mut v, &body.contact_type);
    let salutation = body.salutation.map(|s| v.text("salutation", &s, 1, 20));
    let first_name = body.first_name.map(|s| v.text("firstName", &s, 1, 100));
    let last_name = v.text("lastName", &body.last_name, 1, 100);
    let job_title = body.job_title.map(|s| v.text("jobTitle", &s, 1, 100));
    v.finish()?;
    let now = db::now();
    let c = Contact {
        id: ContactId::new(),
        customer_id: owner.customer,
        client_id: owner.client,
        contact_type: kind,
        primary: body.primary.unwrap_or(false),
        salutation,
        first_name,
        last_name,
        job_title,
        email: body.email,
        phone: body.phone,
        mobile: body.mobile,
        location_id: body.location_id,
        department_id: body.department_id,
        locale: body.locale,
        active: body.active.unwrap_or(true),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    ensure_references(&mut tx, &owner, c.location_id, c.department_id).await?;
    if c.primary {
        take_primary(&mut tx, &owner, &c.contact_type, c.id, &cause).await?;
    }
    store::save(&mut tx, &c).await?;
    cause
        .emit(&mut tx, ev::CONTACT_CREATED, c.id, c.customer_id, &c)
        .await?;
    let res = created(format!("{}/contacts/{}", owner.path(), c.id), c.version, &c);
    idem.commit(tx, res).await
}

/// Get a contact.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/contacts/{contactId}", tag = "contacts",
    params(("customerId" = CustomerId, Path), ("contactId" = ContactId, Path)),
    responses(
        (status = 200, body = Contact, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_contact(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<EntityPath<ContactId>>,
) -> Result<Response, ApiError> {
    entity::get(&state.kit.pool, &caller, path).await
}

/// List contacts by last name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/contacts", tag = "contacts",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Contact>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_contacts(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<OwnerPath>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    list(&state, &caller, path.owner(), q).await
}

/// List a location's contacts by last name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/locations/{locationId}/contacts", tag = "contacts",
    params(("customerId" = CustomerId, Path), ("locationId" = LocationId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Contact>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_location_contacts(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<EntityPath<LocationId>>,
    ApiQuery(mut q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let mut tx = db::begin(&state.kit.pool, owner.read_scope(&caller)?).await?;
    entity::existing(&mut tx, &owner, path.id(), false).await?;
    drop(tx);
    q.location_id = Some(path.id());
    list(&state, &caller, owner, q).await
}

/// List a department's contacts by last name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/departments/{departmentId}/contacts", tag = "contacts",
    params(("customerId" = CustomerId, Path), ("departmentId" = DepartmentId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Contact>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_department_contacts(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<EntityPath<DepartmentId>>,
    ApiQuery(mut q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let mut tx = db::begin(&state.kit.pool, owner.read_scope(&caller)?).await?;
    entity::existing(&mut tx, &owner, path.id(), false).await?;
    drop(tx);
    q.department_id = Some(path.id());
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
    let kind = q.contact_type.as_deref().map(|t| contact_type(&mut v, t));
    let text = q.q.as_deref().map(|t| v.text("q", t, 1, 200));
    v.finish()?;
    let filter = store::Filter {
        active: q.active,
        contact_type: kind.as_deref(),
        primary: q.primary,
        location: q.location_id,
        department: q.department_id,
        q: text.as_deref(),
    };
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_known(&mut tx).await?;
    let rows = store::list(&mut tx, &owner, &filter, after.map(|p| (p.0, p.1)), limit).await?;
    drop(tx);
    let body: Page<Contact> = page(rows, limit, |c| Position(c.last_name.to_lowercase(), c.id));
    Ok(axum::Json(body).into_response())
}

/// Update a contact (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/contacts/{contactId}", tag = "contacts",
    params(("customerId" = CustomerId, Path), ("contactId" = ContactId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateContact,
    responses(
        (status = 200, body = Contact, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_contact(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(path): ApiPath<EntityPath<ContactId>>,
    ApiJson(body): ApiJson<UpdateContact>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut v = Validator::new();
    let kind = body.contact_type.map(|t| contact_type(&mut v, &t));
    let salutation = body.salutation.map(|s| v.text("salutation", &s, 1, 20));
    let first_name = body.first_name.map(|s| v.text("firstName", &s, 1, 100));
    let last_name = body.last_name.map(|s| v.text("lastName", &s, 1, 100));
    let job_title = body.job_title.map(|s| v.text("jobTitle", &s, 1, 100));
    v.finish()?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    let before = entity::existing(&mut tx, &owner, path.id(), true).await?;
    if_match.check(before.version)?;
    let mut c = before.clone();
    if let Some(k) = kind {
        c.contact_type = k;
    }
    if let Some(p) = body.primary {
        c.primary = p;
    }
    salutation.apply(&mut c.salutation);
    first_name.apply(&mut c.first_name);
    if let Some(n) = last_name {
        c.last_name = n;
    }
    job_title.apply(&mut c.job_title);
    body.email.apply(&mut c.email);
    body.phone.apply(&mut c.phone);
    body.mobile.apply(&mut c.mobile);
    body.location_id.apply(&mut c.location_id);
    body.department_id.apply(&mut c.department_id);
    body.locale.apply(&mut c.locale);
    if let Some(a) = body.active {
        c.active = a;
    }
    if c == before {
        return Ok(with_etag(StatusCode::OK, c.version, &c));
    }
    let location = c
        .location_id
        .filter(|_| c.location_id != before.location_id);
    let department = c
        .department_id
        .filter(|_| c.department_id != before.department_id);
    ensure_references(&mut tx, &owner, location, department).await?;
    if c.primary && (!before.primary || c.contact_type != before.contact_type) {
        take_primary(&mut tx, &owner, &c.contact_type, c.id, &cause).await?;
    }
    c.version += 1;
    c.updated_at = db::now();
    store::save(&mut tx, &c).await?;
    let data = Updated::new(&before, &c).map_err(ApiError::internal)?;
    cause
        .emit(&mut tx, ev::CONTACT_UPDATED, c.id, c.customer_id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, c.version, &c))
}

/// Delete a contact.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/contacts/{contactId}", tag = "contacts",
    params(("customerId" = CustomerId, Path), ("contactId" = ContactId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        (status = 409, description = "CUSTOMER_DEACTIVATED; CLIENT_DISABLED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_contact(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(path): ApiPath<EntityPath<ContactId>>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let scope = owner.edit_scope(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    owner.ensure_writable(&mut tx).await?;
    let c = entity::existing(&mut tx, &owner, path.id(), true).await?;
    if_match.check(c.version)?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    entity::delete(&mut tx, &c, &cause).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
