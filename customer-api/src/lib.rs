//! customer-api: customers (tenant accounts) and, as the platform grows, their clients,
//! groups, tags, roles, registration settings and lifecycle.
//!
//! `app` builds the router for a kit; `SERVICE` describes the binary to the kit's runner, so
//! tests start the real service on port 0 with `shared_model::service::run`.
#![forbid(unsafe_code)]

pub mod access;
pub mod claims;
pub mod clients;
pub mod common;
pub mod customers;
pub mod groups;
pub mod lifecycle;
pub mod logos;
pub mod registration;
pub mod roles;
pub mod snapshots;
pub mod tags;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use shared_model::bus::Subscription;
use shared_model::config::Secret;
use shared_model::error::{FieldError, Problem};
use shared_model::events::client::{Client, ClientAddress, Membership, Revenue};
use shared_model::events::customer::{
    Address, BusinessProfile, Customer, LogoReceipt, SocialProfile,
};
use shared_model::events::tenant::{Group, Role, Tag};
use shared_model::http::Kit;
use shared_model::service::{App, Service, ServiceSpec};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The `source` of this service's events.
pub const SOURCE: &str = "/customer-api";

/// customer-api, as the kit runs it.
pub struct CustomerApi;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<CustomerApi>();

/// The routes' state.
pub type AppState = App<CustomerApi>;

/// What customer-api's routes share besides the kit and the settings.
pub struct State {
    pub resolve_limiter: registration::routes::RateLimiter,
}

impl shared_model::service::State<Settings> for State {
    fn make(_: &Kit, settings: &Settings) -> anyhow::Result<State> {
        Ok(State {
            resolve_limiter: registration::routes::RateLimiter::new(settings.resolve_per_minute),
        })
    }
}

impl Service for CustomerApi {
    const NAME: &'static str = "customer-api";
    const PORT: u16 = 8081;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = Settings;
    type State = State;

    fn routes() -> OpenApiRouter<AppState> {
        customers::routes::router()
            .merge(clients::routes::router())
            .merge(clients::addresses::routes::router())
            .merge(clients::provisioning::routes::router())
            .merge(tags::routes::router())
            .merge(groups::routes::router())
            .merge(roles::routes::router())
            .merge(lifecycle::routes::router())
            .merge(registration::routes::router())
            .merge(logos::routes::router())
    }

    fn openapi() -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    fn subscriptions(app: &AppState) -> Vec<Subscription> {
        vec![
            lifecycle::reactions::subscription(app.settings.max_window_days),
            claims::reactions::subscription(app.settings.claims_webhook_url.is_some()),
        ]
    }

    fn snapshots() -> Vec<std::sync::Arc<dyn shared_model::snapshot::Source>> {
        snapshots::sources()
    }

    fn jobs(app: &AppState, stop: CancellationToken) -> Vec<BoxFuture<'static, ()>> {
        let pool = app.kit.pool.clone();
        let mut jobs: Vec<BoxFuture<'static, ()>> = vec![Box::pin(lifecycle::jobs::purge_loop(
            pool.clone(),
            Duration::from_millis(app.settings.purge_interval_ms),
            stop.clone(),
        ))];
        match app.settings.webhook() {
            Ok(Some(w)) => jobs.push(Box::pin(claims::delivery::run(pool, w, stop))),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "claims webhook not started"),
        }
        jobs
    }
}

/// customer-api's own settings: `[service]` in TOML, `CUSTOMER_API__SERVICE__<KEY>` in the
/// environment.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The longest deactivation window a caller may ask for, in days.
    pub max_window_days: u32,
    /// How often the purge job looks for customers whose window has ended.
    pub purge_interval_ms: u64,
    /// Calls of `POST /v1/registrations/resolve` each caller may make per minute.
    pub resolve_per_minute: u32,
    /// The auth service's claims webhook; without it claims changes are only published as
    /// `customer.claims_changed` events.
    pub claims_webhook_url: Option<String>,
    /// `whsec_<base64 key>` (Standard Webhooks); required with the URL.
    pub claims_webhook_secret: Option<Secret<String>>,
    /// First retry delay of a failed delivery; doubles per attempt up to `claims_retry_max_ms`.
    pub claims_retry_base_ms: u64,
    pub claims_retry_max_ms: u64,
    /// How often the deliverer looks for due deliveries.
    pub claims_poll_ms: u64,
    /// Prefix of logo URLs in receipts, e.g. `https://cdn.example.com` (no trailing slash);
    /// empty means URLs relative to this service.
    pub public_base_url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_window_days: 90,
            purge_interval_ms: 60_000,
            resolve_per_minute: 600,
            claims_webhook_url: None,
            claims_webhook_secret: None,
            claims_retry_base_ms: 1_000,
            claims_retry_max_ms: 300_000,
            claims_poll_ms: 200,
            public_base_url: String::new(),
        }
    }
}

impl shared_model::service::Settings for Settings {
    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=365).contains(&self.max_window_days) {
            anyhow::bail!("invalid configuration: service.max_window_days: must be 1 to 365");
        }
        if !(50..=86_400_000).contains(&self.purge_interval_ms) {
            anyhow::bail!(
                "invalid configuration: service.purge_interval_ms: must be 50 to 86400000"
            );
        }
        if self.resolve_per_minute == 0 {
            anyhow::bail!("invalid configuration: service.resolve_per_minute: must be > 0");
        }
        if self.claims_retry_base_ms == 0
            || self.claims_retry_max_ms < self.claims_retry_base_ms
            || self.claims_poll_ms == 0
        {
            anyhow::bail!(
                "invalid configuration: service.claims_retry_base_ms, claims_retry_max_ms, \
                 claims_poll_ms: must be > 0 with max >= base"
            );
        }
        self.webhook()?;
        if !self.public_base_url.is_empty() {
            let ok = reqwest::Url::parse(&self.public_base_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                && !self.public_base_url.ends_with('/');
            if !ok {
                anyhow::bail!(
                    "invalid configuration: service.public_base_url: must be an http(s) URL without a trailing slash"
                );
            }
        }
        Ok(())
    }
}

impl Settings {
    /// The claims webhook, if one is configured.
    pub fn webhook(&self) -> anyhow::Result<Option<claims::delivery::Webhook>> {
        let Some(url) = &self.claims_webhook_url else {
            return Ok(None);
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            anyhow::anyhow!("invalid configuration: service.claims_webhook_url: {e}")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("invalid configuration: service.claims_webhook_url: must be http(s)");
        }
        let secret = self.claims_webhook_secret.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "invalid configuration: service.claims_webhook_secret: required with claims_webhook_url"
            )
        })?;
        let key = claims::delivery::secret_key(secret.expose()).map_err(|e| {
            anyhow::anyhow!("invalid configuration: service.claims_webhook_secret: {e}")
        })?;
        Ok(Some(claims::delivery::Webhook {
            url: url.clone(),
            key,
            retry_base: Duration::from_millis(self.claims_retry_base_ms),
            retry_max: Duration::from_millis(self.claims_retry_max_ms),
            poll: Duration::from_millis(self.claims_poll_ms),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        }))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "customer-api",
        description = "Tenant accounts (customers) of the customer platform. Errors are RFC 9457 \
            problem details with a stable `code`.",
    ),
    components(schemas(
        Customer, Address, BusinessProfile, SocialProfile, Problem, FieldError,
        customers::routes::CreateCustomer, customers::routes::UpdateCustomer,
        Client, Revenue, clients::requests::CreateClient, clients::requests::UpdateClient,
        clients::actions::Purchase, clients::actions::ConvertLead, clients::actions::ClientStats,
        clients::actions::CurrencyTotal, Tag, tags::routes::CreateTag, tags::routes::UpdateTag,
        ClientAddress, clients::addresses::routes::CreateAddress, clients::addresses::routes::UpdateAddress,
        clients::addresses::routes::AddressBook, clients::provisioning::routes::Provision, Group, Membership, groups::routes::CreateGroup,
        groups::routes::UpdateGroup, groups::snapshots::ClientPricing,
        groups::snapshots::ClientGroupEntry, groups::snapshots::ClientSnapshot, Role,
        roles::routes::CreateRole, roles::routes::UpdateRole, roles::routes::RoleList,
        lifecycle::routes::Deactivate, lifecycle::routes::FeedbackBody,
        lifecycle::routes::DeactivationReport, lifecycle::routes::DeactivationEntry,
        registration::routes::Registration, registration::routes::PutRegistration,
        registration::routes::Resolve, registration::routes::Resolution, LogoReceipt,
    )),
    tags(
        (name = "customers", description = "Tenant accounts"),
        (name = "clients", description = "The accounts a customer serves"),
        (name = "tags", description = "Tag definitions and their use on clients"),
        (name = "groups", description = "Client groups (shopper groups) and memberships"),
        (name = "roles", description = "Tenant roles: named permission sets"),
        (name = "lifecycle", description = "Deactivation, reactivation and purge"),
        (name = "registration", description = "Domain-based self-registration"),
        (name = "logos", description = "Logos of customers and clients"),
        (name = "internal", description = "For other platform services, not integrators"),
    )
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_carries_shared_error_responses() {
        let doc = serde_json::to_value((SERVICE.document)()).unwrap();
        let op = &doc["paths"]["/v1/customers/{customerId}/clients"]["post"]["responses"];
        let mut codes: Vec<&str> = op.as_object().unwrap().keys().map(String::as_str).collect();
        codes.sort();
        assert_eq!(
            codes,
            [
                "201", "400", "401", "403", "404", "408", "409", "413", "414", "415", "422", "431",
                "503"
            ]
        );
        assert_eq!(
            op["404"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        // The kit's operational endpoints are in the document too.
        assert!(doc["paths"]["/internal/v1/dead-letters"]["get"].is_object());
        assert!(doc["paths"]["/internal/v1/dead-letters/replay"]["post"].is_object());
        assert_eq!(
            doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
                .as_object()
                .map(|c| c.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["text/plain".to_string()])
        );
        // Every operation documents its errors, those of the HTTP stack included.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if path.starts_with("/v1/") && path != "/v1/logos/{sha256}" {
                    assert!(
                        op["responses"].get("401").is_some(),
                        "{method} {path} does not document 401"
                    );
                }
                let mut stack = vec!["414", "431", "503"];
                if op.get("requestBody").is_some() {
                    stack.extend(["400", "408", "413", "415", "422"]);
                }
                for status in stack {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}
