//! `POST /v1/customers/{customerId}/clients/{clientId}/provision`: creates a customer account
//! (its own tenant) for a client and links both ways: the client gets
//! `provisionedCustomerId`, the new customer `parentCustomerId` and `parentClientId`.
//!
//! The client row is locked for the whole transaction, so concurrent attempts serialize: the
//! first creates the account, the others see it and get 409 `ALREADY_PROVISIONED` (and the
//! unique constraint on `provisioned_customer_id` backs that up).

use axum::response::Response;
use serde::Deserialize;
use shared_model::auth::Caller;
use shared_model::db::{self, Scope};
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::client as client_ev;
use shared_model::events::customer::Customer;
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{ApiPath, Trace};
use shared_model::ids::{ClientId, CustomerId};
use shared_model::model::{ClientType, CustomerStatus, CustomerType};
use shared_model::outbox::Cause;
use shared_model::schema::ProductCodes;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::access::client_scope;
use crate::clients::changes::{lock_client, save};
use crate::customers::store as customers;
use crate::customers::validate as customer_rules;
use shared_model::http::created;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(provision_client))
}

/// Body of `POST .../provision`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provision {
    /// The new customer's authentication tenant key: 3 to 128 of `A-Z a-z 0-9 . _ : -`,
    /// unique.
    #[schema(pattern = "^[A-Za-z0-9._:-]{3,128}$")]
    pub bootstrap_tenant_key: String,
    /// Product codes of the new customer.
    #[serde(default)]
    #[schema(value_type = ProductCodes)]
    pub products: Vec<String>,
    /// 300 to 2,592,000 seconds; null means the platform default.
    #[serde(default)]
    #[schema(minimum = 300, maximum = 2_592_000)]
    pub session_expiration_seconds: Option<i32>,
}

/// Provision a customer account for a client.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/clients/{clientId}/provision", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = Provision,
    responses(
        (status = 201, description = "The new customer", body = Customer, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "ALREADY_PROVISIONED; CLIENT_DISABLED; CUSTOMER_DEACTIVATED; bootstrapTenantKey in use", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn provision_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
    ApiJson(body): ApiJson<Provision>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    if caller.client_id().is_some() {
        return Err(ApiError::forbidden(
            "a token bound to a client cannot provision accounts",
        ));
    }
    let mut v = Validator::new();
    customer_rules::validate_bootstrap_key(&mut v, &body.bootstrap_tenant_key);
    customer_rules::validate_products(&mut v, &body.products);
    customer_rules::validate_session(&mut v, body.session_expiration_seconds);
    v.finish()?;

    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    let before = lock_client(&mut tx, customer_id, client_id).await?;
    if let Some(existing) = before.provisioned_customer_id {
        return Err(ApiError::conflict(
            "ALREADY_PROVISIONED",
            format!("the client already has the customer account {existing}"),
        ));
    }
    if before.disabled {
        return Err(ApiError::conflict(
            "CLIENT_DISABLED",
            "a disabled client cannot be provisioned",
        ));
    }
    let now = db::now();
    let account = Customer {
        id: CustomerId::new(),
        name: before.name.clone(),
        customer_type: match before.client_type {
            ClientType::Business => CustomerType::Business,
            ClientType::Individual => CustomerType::Consumer,
        },
        email: before.email.clone(),
        phone: before.phone.clone(),
        website: None,
        address: None,
        locale: before.locale.clone(),
        business_profile: before.business_profile.clone().map(|mut p| {
            // External ids are unique platform-wide among customers; the client's id in the
            // reseller's systems is not the new customer's.
            p.external_id = None;
            p
        }),
        session_expiration_seconds: body.session_expiration_seconds,
        bootstrap_tenant_key: body.bootstrap_tenant_key,
        products: body.products,
        status: CustomerStatus::Active,
        parent_customer_id: Some(customer_id),
        parent_client_id: Some(client_id),
        deactivated_at: None,
        window_ends_at: None,
        logo: None,
        version: 1,
        created_at: now,
        created_by: caller.sub().to_string(),
        updated_at: now,
        updated_by: caller.sub().to_string(),
    };
    // The new customer is another tenant: this transaction writes it explicitly as the system,
    // after the caller was authorized for the client above.
    db::set_scope(&mut tx, Scope::System).await?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let deliver_claims = state.settings.claims_webhook_url.is_some();
    customers::insert(&mut tx, &account, &cause, deliver_claims).await?;
    let mut after = before.clone();
    after.provisioned_customer_id = Some(account.id);
    save(
        &mut tx,
        &before,
        after,
        client_ev::UPDATED,
        &caller,
        &trace,
        None,
    )
    .await?;
    let res = idem
        .commit(
            tx,
            created(
                format!("/v1/customers/{}", account.id),
                account.version,
                &account,
            ),
        )
        .await?;
    tracing::info!(customer_id = %customer_id, client_id = %client_id, provisioned = %account.id, "client provisioned");
    Ok(res)
}
