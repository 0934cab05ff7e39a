//! The internal endpoints other platform services read a client's pricing and shipping facts
//! from (a service token with ReadClientSnapshots): its groups in precedence order with the
//! effective price list, and its snapshot.

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db;
use shared_model::error::ApiError;
use shared_model::events::client::ClientAddress;
use shared_model::http::ApiPath;
use shared_model::ids::{ClientId, CustomerId, GroupId};
use shared_model::model::{Email, Locale};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::clients::store as clients;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(client_pricing))
        .routes(routes!(client_snapshot))
}

/// A group of a client, as pricing sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientGroupEntry {
    pub group_id: GroupId,
    pub name: String,
    pub price_list_id: Option<String>,
    pub priority: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub assigned_at: OffsetDateTime,
}

/// `GET /internal/v1/customers/{customerId}/clients/{clientId}/groups`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPricing {
    pub customer_id: CustomerId,
    pub client_id: ClientId,
    /// In precedence order (see the effective price list rule).
    pub groups: Vec<ClientGroupEntry>,
    pub effective_price_list_id: Option<String>,
}

/// `GET /internal/v1/customers/{customerId}/clients/{clientId}/snapshot`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSnapshot {
    pub customer_id: CustomerId,
    pub client_id: ClientId,
    pub name: String,
    pub email: Option<Email>,
    pub locale: Option<Locale>,
    pub disabled: bool,
    pub default_shipping_address: Option<ClientAddress>,
    pub default_billing_address: Option<ClientAddress>,
}

/// Internal endpoints answer the platform's services only: a service token (bound to no
/// customer, so no tenant user's token) holding ReadClientSnapshots. It reads any tenant's
/// client, so its transaction runs with the platform-admin scope.
fn internal_scope(caller: &Caller) -> Result<db::Scope, ApiError> {
    caller.require(Permission::ReadClientSnapshots)?;
    if caller.customer_id().is_some() || caller.is_client_bound() {
        return Err(ApiError::forbidden(
            "internal endpoints take a service token, not a tenant's",
        ));
    }
    Ok(db::Scope::PlatformAdmin)
}

/// A client's groups and effective price list (for pricing and checkout services; a service
/// token with ReadClientSnapshots).
#[utoipa::path(
    get, path = "/internal/v1/customers/{customerId}/clients/{clientId}/groups", tag = "internal",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path)),
    responses(
        (status = 200, body = ClientPricing),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn client_pricing(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    let scope = internal_scope(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    clients::find(&mut tx, customer_id, client_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let groups = store::client_groups(&mut tx, customer_id, client_id).await?;
    drop(tx);
    let effective = groups.iter().find_map(|g| g.price_list_id.clone());
    Ok(axum::Json(ClientPricing {
        customer_id,
        client_id,
        groups: groups
            .into_iter()
            .map(|g| ClientGroupEntry {
                group_id: g.group_id,
                name: g.name,
                price_list_id: g.price_list_id,
                priority: g.priority,
                assigned_at: g.assigned_at,
            })
            .collect(),
        effective_price_list_id: effective,
    })
    .into_response())
}

/// A client's name, e-mail, locale and default addresses (for order and shipping services; a
/// service token with ReadClientSnapshots).
#[utoipa::path(
    get, path = "/internal/v1/customers/{customerId}/clients/{clientId}/snapshot", tag = "internal",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path)),
    responses(
        (status = 200, body = ClientSnapshot),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn client_snapshot(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    let scope = internal_scope(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let c = clients::find(&mut tx, customer_id, client_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let addresses =
        crate::clients::addresses::store::addresses(&mut tx, customer_id, client_id).await?;
    drop(tx);
    Ok(axum::Json(ClientSnapshot {
        customer_id,
        client_id,
        name: c.name,
        email: c.email,
        locale: c.locale,
        disabled: c.disabled,
        default_shipping_address: addresses.iter().find(|a| a.default_shipping).cloned(),
        default_billing_address: addresses.iter().find(|a| a.default_billing).cloned(),
    })
    .into_response())
}
