//! `GET|PUT /v1/customers/{customerId}/org-settings`: the customer's org-structure settings.
//! Reading needs ViewCustomer, changing ManageOrgStructure (platform admins:
//! PlatformAdminViewAllCustomers, PlatformAdminEditAllCustomers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson};
use shared_model::events::Updated;
use shared_model::events::org::{self as ev, OrgSettings};
use shared_model::http::{ApiPath, IfMatch, Trace, with_etag};
use shared_model::ids::CustomerId;
use shared_model::outbox::Cause;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::owners::Owner;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

/// Body of `PUT .../org-settings`: every setting.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutSettings {
    /// A client's first address makes the client's HQ (and the HQ follows it while derived).
    pub client_hq_from_address: bool,
}

fn owner(customer: CustomerId) -> Owner {
    Owner {
        customer,
        client: None,
    }
}

/// Get the customer's org-structure settings.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/org-settings", tag = "settings",
    params(("customerId" = CustomerId, Path)),
    responses(
        (status = 200, body = OrgSettings, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(customer): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    let owner = owner(customer);
    let mut tx = db::begin(&state.kit.pool, owner.read_scope(&caller)?).await?;
    owner.ensure_known(&mut tx).await?;
    let s = store::get(&mut tx, customer, false).await?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, s.version, &s))
}

/// Replace the customer's org-structure settings (`If-Match` honoured).
#[utoipa::path(
    put, path = "/v1/customers/{customerId}/org-settings", tag = "settings",
    params(("customerId" = CustomerId, Path), ("If-Match" = Option<String>, Header)),
    request_body = PutSettings,
    responses(
        (status = 200, body = OrgSettings, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CUSTOMER_DEACTIVATED", body = shared_model::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(customer): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<PutSettings>,
) -> Result<Response, ApiError> {
    let owner = owner(customer);
    let mut tx = db::begin(&state.kit.pool, owner.edit_scope(&caller)?).await?;
    owner.ensure_writable(&mut tx).await?;
    let before = store::get(&mut tx, customer, true).await?;
    if_match.check(before.version)?;
    let mut s = before.clone();
    s.client_hq_from_address = body.client_hq_from_address;
    if s == before {
        return Ok(with_etag(StatusCode::OK, s.version, &s));
    }
    s.version += 1;
    s.updated_at = db::now();
    store::save(&mut tx, &s).await?;
    let data = Updated::new(&before, &s).map_err(ApiError::internal)?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::SETTINGS_UPDATED, customer, customer, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, s.version, &s))
}
