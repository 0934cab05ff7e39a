//! `/v1/customers/{customerId}/clients`: the accounts a customer serves, with their
//! relationship data (status, source, assignee, tags, revenue), lead conversion, purchases,
//! disable/enable and statistics.
//!
//! Tenant callers need ViewClient / EditClient; platform admins PlatformAdmin*AllCustomers. A
//! token bound to a client (`client_id` claim) reaches only that client: another client's id is
//! 400 KEY_MISMATCH, listings show only its own client; it may edit the client's contact
//! details but not the relationship (status, source, assignee, externalId, tags, purchases,
//! conversion), and it cannot create, disable, delete or provision clients or read statistics.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db::{self};
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::client::{self as ev, Client};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{ClientId, CustomerId};
use shared_model::model::{ClientSource, ClientStatus, ClientType};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::changes::{lock_client, save};
use super::requests::{CreateClient, ListQuery, UpdateClient};
use super::store;
use super::validate::{validate_client, validate_tags};
use crate::AppState;
use crate::access::{client_scope, not_client_bound, scope};
use crate::common::{ensure_visible, ensure_writable, optional_text};
use shared_model::http::created;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, create_client))
        .routes(routes!(get_client, update_client, delete_client))
        .merge(super::actions::router())
}

#[derive(Serialize, Deserialize)]
struct Position(
    #[serde(with = "time::serde::rfc3339")] OffsetDateTime,
    ClientId,
);

/// Resolves tag names to ids (422 naming the missing ones).
async fn resolve_tags(
    conn: &mut PgConnection,
    customer: CustomerId,
    names: &[String],
) -> Result<Vec<shared_model::ids::TagId>, ApiError> {
    let (ids, missing) = store::tag_ids(conn, customer, names).await?;
    if !missing.is_empty() {
        let mut v = Validator::new();
        for i in missing {
            v.add(
                format!("tags[{i}]"),
                "must name an existing tag of this customer",
            );
        }
        v.finish()?;
    }
    Ok(ids)
}

/// Create a client.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/clients", tag = "clients",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = CreateClient,
    responses(
        (status = 201, body = Client, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "externalId in use; CUSTOMER_DEACTIVATED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<CreateClient>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    not_client_bound(&caller)?;
    let mut v = Validator::new();
    let now = db::now();
    let mut c = Client {
        id: ClientId::new(),
        customer_id,
        client_type: body.client_type,
        name: String::new(),
        first_name: optional_text(&mut v, "firstName", body.first_name, 100),
        last_name: optional_text(&mut v, "lastName", body.last_name, 100),
        email: body.email,
        phone: body.phone,
        locale: body.locale,
        business_profile: body.business_profile,
        external_id: optional_text(&mut v, "externalId", body.external_id, 128),
        status: body.status.unwrap_or(ClientStatus::Active),
        source: body.source.unwrap_or(ClientSource::Direct),
        assignee: optional_text(&mut v, "assignee", body.assignee, 200),
        tags: Vec::new(),
        revenue: None,
        disabled: false,
        provisioned_customer_id: None,
        logo: None,
        version: 1,
        created_at: now,
        created_by: caller.sub().to_string(),
        updated_at: now,
        updated_by: caller.sub().to_string(),
    };
    match (c.client_type, &body.name) {
        (ClientType::Business, Some(n)) => c.name = v.text("name", n, 1, 200),
        (ClientType::Business, None) => v.add("name", "is required for a business client"),
        (ClientType::Individual, Some(_)) => v.add(
            "name",
            "is derived from firstName and lastName for an individual",
        ),
        (ClientType::Individual, None) => {}
    }
    validate_client(&mut v, &mut c);
    validate_tags(&mut v, &body.tags);
    v.finish()?;

    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let tag_ids = resolve_tags(&mut tx, customer_id, &body.tags).await?;
    store::insert(&mut tx, &c).await?;
    if !tag_ids.is_empty() {
        store::set_tags(&mut tx, customer_id, c.id, &tag_ids, caller.sub(), now).await?;
        c = store::find(&mut tx, customer_id, c.id, false)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("client vanished")))?;
    }
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::CREATED, c.id, c.customer_id, &c)
        .await?;
    let res = idem
        .commit(
            tx,
            created(
                format!("/v1/customers/{customer_id}/clients/{}", c.id),
                c.version,
                &c,
            ),
        )
        .await?;
    tracing::info!(customer_id = %customer_id, client_id = %c.id, "client created");
    Ok(res)
}

/// Get a client.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/clients/{clientId}", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path)),
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, false)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let c = store::find(&mut tx, customer_id, client_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, c.version, &c))
}

/// Update a client (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/clients/{clientId}", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateClient,
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
    ApiJson(body): ApiJson<UpdateClient>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    if caller.client_id().is_some()
        && (body.status.is_some()
            || body.source.is_some()
            || !body.assignee.is_absent()
            || !body.external_id.is_absent()
            || body.tags.is_some())
    {
        return Err(ApiError::forbidden(
            "a token bound to a client may edit its contact details, not the relationship \
             (status, source, assignee, externalId, tags)",
        ));
    }
    let mut v = Validator::new();
    if let Some(tags) = &body.tags {
        validate_tags(&mut v, tags);
    }
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let before = lock_client(&mut tx, customer_id, client_id).await?;

    let mut v = Validator::new();
    let mut c = before.clone();
    if let Some(t) = body.client_type
        && t != before.client_type
    {
        v.add(
            "type",
            "is immutable (a lead becomes a business through convert)",
        );
    }
    if let Some(name) = &body.name {
        if c.client_type == ClientType::Individual {
            v.add(
                "name",
                "is derived from firstName and lastName for an individual",
            );
        } else {
            c.name = v.text("name", name, 1, 200);
        }
    }
    body.first_name
        .map(|s| v.text("firstName", &s, 1, 100))
        .apply(&mut c.first_name);
    body.last_name
        .map(|s| v.text("lastName", &s, 1, 100))
        .apply(&mut c.last_name);
    body.email.apply(&mut c.email);
    body.phone.apply(&mut c.phone);
    body.locale.apply(&mut c.locale);
    body.business_profile.apply(&mut c.business_profile);
    body.external_id
        .map(|s| v.text("externalId", &s, 1, 128))
        .apply(&mut c.external_id);
    body.assignee
        .map(|s| v.text("assignee", &s, 1, 200))
        .apply(&mut c.assignee);
    if let Some(s) = body.status {
        c.status = s;
    }
    if let Some(s) = body.source {
        c.source = s;
    }
    validate_client(&mut v, &mut c);
    v.finish()?;
    // An invalid body is 422 whatever its precondition says: checked after the fields.
    if_match.check(before.version)?;
    let tags = match &body.tags {
        Some(names) => Some(resolve_tags(&mut tx, customer_id, names).await?),
        None => None,
    };
    let c = save(&mut tx, &before, c, ev::UPDATED, &caller, &trace, tags).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, c.version, &c))
}

/// Delete a client (`If-Match` honoured). Its provisioned customer, if any, is deactivated and
/// detached by the reaction to `client.deleted`.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/clients/{clientId}", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    not_client_bound(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let mut c = lock_client(&mut tx, customer_id, client_id).await?;
    if_match.check(c.version)?;
    store::delete(&mut tx, customer_id, client_id).await?;
    c.version += 1;
    c.updated_at = db::now();
    c.updated_by = caller.sub().to_string();
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::DELETED, c.id, c.customer_id, &c)
        .await?;
    tx.commit().await?;
    tracing::info!(customer_id = %customer_id, client_id = %client_id, "client deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List clients, most recently updated first.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/clients", tag = "clients",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Client>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_clients(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    // A token bound to a client lists that client alone.
    let scope = match caller.client_id() {
        Some(own) => client_scope(&caller, customer_id, own, false)?,
        None => scope(&caller, customer_id, false)?,
    };
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut v = Validator::new();
    let text = q.q.map(|t| v.text("q", &t, 1, 100));
    let tag = q.tag.map(|t| v.text("tag", &t, 1, 50));
    let assignee = q.assignee.map(|t| v.text("assignee", &t, 1, 200));
    let updated_since = q.updated_since.and_then(|s| {
        v.check(
            "updatedSince",
            OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| "must be an RFC 3339 time"),
        )
    });
    v.finish()?;
    let filter = store::Filter {
        customer: Some(customer_id),
        only: caller.client_id(),
        status: q.status,
        client_type: q.client_type,
        assignee,
        tag,
        group: q.group,
        text,
        updated_since,
        after: after.map(|p| (p.0, p.1)),
    };
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_visible(&mut tx, customer_id).await?;
    let rows = store::list(&mut tx, &filter, limit).await?;
    drop(tx);
    let body: Page<Client> = page(rows, limit, |c| Position(c.updated_at, c.id));
    Ok(axum::Json(body).into_response())
}
