//! `/v1/customers/{customerId}/clients/{clientId}/addresses`: a client's address book.
//!
//! A client has at most one default shipping and one default billing address: marking an
//! address as a default takes the flag from the address that had it (which gets a new version
//! and its own `client_address.updated` event). At most `MAX_ADDRESSES` per client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::Updated;
use shared_model::events::client::{self as ev, ClientAddress};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{ApiPath, IfMatch, Patch, Trace, with_etag};
use shared_model::ids::{AddressId, ClientId, CustomerId};
use shared_model::model::CountryCode;
use shared_model::outbox::Cause;
use shared_model::schema::AddressLine;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::access::client_scope;
use crate::clients::changes::lock_client;
use crate::clients::store as clients;
use shared_model::http::created;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_addresses, create_address))
        .routes(routes!(get_address, update_address, delete_address))
}

pub const MAX_ADDRESSES: i64 = 50;

/// Body of `POST .../addresses`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAddress {
    /// At most 100 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub label: Option<String>,
    /// 1 to 4 lines of at most 200 characters.
    #[schema(value_type = Vec<AddressLine>, min_items = 1, max_items = 4)]
    pub lines: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub city: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub region: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text20>)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<CountryCode>,
    #[serde(default)]
    pub default_shipping: bool,
    #[serde(default)]
    pub default_billing: bool,
}

/// Body of `PATCH .../addresses/{addressId}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAddress {
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub label: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<AddressLine>>, min_items = 1, max_items = 4)]
    pub lines: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub city: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub region: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text20>)]
    pub postal_code: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<CountryCode>)]
    pub country: Patch<CountryCode>,
    #[serde(default)]
    pub default_shipping: Option<bool>,
    #[serde(default)]
    pub default_billing: Option<bool>,
}

/// `GET .../addresses`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AddressBook {
    pub items: Vec<ClientAddress>,
}

fn validate(v: &mut Validator, a: &mut ClientAddress) {
    a.label = a.label.take().map(|l| v.text("label", &l, 1, 100));
    // The shared validator names fields under a prefix; `rename_fields` lifts them to the top
    // level, where an address book entry has them.
    a.postal().validate(v, "address");
    for line in a.lines.iter_mut() {
        *line = line.trim().to_string();
    }
}

fn rename_fields(e: ApiError) -> ApiError {
    let mut e = e;
    for f in e.errors.iter_mut() {
        if let Some(rest) = f.field.strip_prefix("address.") {
            f.field = rest.to_string();
        }
    }
    e
}

/// Stores `a` (new, or changed from `before`), taking default flags from the client's other
/// addresses; each address changed gets its event.
async fn store_address(
    tx: &mut PgConnection,
    a: &ClientAddress,
    before: Option<&ClientAddress>,
    cause: &Cause,
) -> Result<(), ApiError> {
    let book = if a.default_shipping || a.default_billing {
        store::addresses(tx, a.customer_id, a.client_id).await?
    } else {
        Vec::new()
    };
    for other in store::take_defaults(tx, a).await? {
        let data = match book.iter().find(|b| b.id == other.id) {
            Some(was) => Updated::new(was, &other).map_err(ApiError::internal)?,
            None => Updated::of(&other, &["defaultShipping", "defaultBilling"]),
        };
        cause
            .emit(tx, ev::ADDRESS_UPDATED, other.id, other.customer_id, &data)
            .await?;
    }
    store::upsert_address(tx, a).await?;
    match before {
        Some(before) => {
            let data = Updated::new(before, a).map_err(ApiError::internal)?;
            cause
                .emit(tx, ev::ADDRESS_UPDATED, a.id, a.customer_id, &data)
                .await?;
        }
        None => {
            cause
                .emit(tx, ev::ADDRESS_CREATED, a.id, a.customer_id, a)
                .await?
        }
    }
    Ok(())
}

/// Add an address to a client's address book.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/clients/{clientId}/addresses", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = CreateAddress,
    responses(
        (status = 201, body = ClientAddress, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "ADDRESS_BOOK_FULL; CUSTOMER_DEACTIVATED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
    ApiJson(body): ApiJson<CreateAddress>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    let now = db::now();
    let mut a = ClientAddress {
        id: AddressId::new(),
        customer_id,
        client_id,
        label: body.label,
        lines: body.lines,
        city: body.city,
        region: body.region,
        postal_code: body.postal_code,
        country: body.country,
        default_shipping: body.default_shipping,
        default_billing: body.default_billing,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut v = Validator::new();
    validate(&mut v, &mut a);
    v.finish().map_err(rename_fields)?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    lock_client(&mut tx, customer_id, client_id).await?;
    if store::address_count(&mut tx, customer_id, client_id).await? >= MAX_ADDRESSES {
        return Err(ApiError::conflict(
            "ADDRESS_BOOK_FULL",
            format!("a client has at most {MAX_ADDRESSES} addresses"),
        ));
    }
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    store_address(&mut tx, &a, None, &cause).await?;
    idem.commit(
        tx,
        created(
            format!(
                "/v1/customers/{customer_id}/clients/{client_id}/addresses/{}",
                a.id
            ),
            a.version,
            &a,
        ),
    )
    .await
}

/// A client's addresses, oldest first.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/clients/{clientId}/addresses", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path)),
    responses(
        (status = 200, body = AddressBook),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_addresses(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, false)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    clients::find(&mut tx, customer_id, client_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let items = store::addresses(&mut tx, customer_id, client_id).await?;
    drop(tx);
    Ok(axum::Json(AddressBook { items }).into_response())
}

/// One address.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/clients/{clientId}/addresses/{addressId}", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("addressId" = AddressId, Path)),
    responses(
        (status = 200, body = ClientAddress, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, client_id, address_id)): ApiPath<(CustomerId, ClientId, AddressId)>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, false)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let a = store::find_address(&mut tx, customer_id, client_id, address_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, a.version, &a))
}

/// Change an address (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/clients/{clientId}/addresses/{addressId}", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("addressId" = AddressId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateAddress,
    responses(
        (status = 200, body = ClientAddress, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, client_id, address_id)): ApiPath<(CustomerId, ClientId, AddressId)>,
    ApiJson(body): ApiJson<UpdateAddress>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    lock_client(&mut tx, customer_id, client_id).await?;
    let before = store::find_address(&mut tx, customer_id, client_id, address_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    let mut a = before.clone();
    body.label.apply(&mut a.label);
    if let Some(lines) = body.lines {
        a.lines = lines;
    }
    body.city.apply(&mut a.city);
    body.region.apply(&mut a.region);
    body.postal_code.apply(&mut a.postal_code);
    body.country.apply(&mut a.country);
    if let Some(s) = body.default_shipping {
        a.default_shipping = s;
    }
    if let Some(b) = body.default_billing {
        a.default_billing = b;
    }
    let mut v = Validator::new();
    validate(&mut v, &mut a);
    v.finish().map_err(rename_fields)?;
    // An invalid body is 422 whatever its precondition says: checked after the fields.
    if_match.check(before.version)?;
    if a == before {
        return Ok(with_etag(StatusCode::OK, a.version, &a));
    }
    a.version += 1;
    a.updated_at = db::now();
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    store_address(&mut tx, &a, Some(&before), &cause).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, a.version, &a))
}

/// Remove an address.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/clients/{clientId}/addresses/{addressId}", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("addressId" = AddressId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, client_id, address_id)): ApiPath<(CustomerId, ClientId, AddressId)>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    lock_client(&mut tx, customer_id, client_id).await?;
    let mut a = store::find_address(&mut tx, customer_id, client_id, address_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("address"))?;
    if_match.check(a.version)?;
    store::delete_address(&mut tx, customer_id, address_id).await?;
    a.version += 1;
    a.updated_at = db::now();
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::ADDRESS_DELETED, a.id, a.customer_id, &a)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
