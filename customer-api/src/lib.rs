//! customer-api: customers (tenant accounts) and, as the platform grows, their clients,
//! groups, tags, roles, registration settings and lifecycle.
//!
//! `app` builds the router for a kit; `SERVICE` describes the binary to the kit's runner, so
//! tests start the real service on port 0 with `shared_model::service::run`.
#![forbid(unsafe_code)]

pub mod customers;

use axum::Router;
use axum::extract::FromRef;
use shared_model::auth::Verifier;
use shared_model::error::{FieldError, Problem};
use shared_model::events::customer::{Address, BusinessProfile, Customer, SocialProfile};
use shared_model::http::{Kit, KitDoc};
use shared_model::service::ServiceSpec;
use utoipa::OpenApi;

/// The `source` of this service's events.
pub const SOURCE: &str = "/customer-api";

const DEFAULTS: &str = r#"
[http]
bind = "0.0.0.0:8081"

[database]
url = "postgres://customer_api_app@127.0.0.1:5432/customer_api"
migrate_url = "postgres://customer_api_owner@127.0.0.1:5432/customer_api"

[amqp]
queue_prefix = "customer-api"
"#;

pub static SERVICE: ServiceSpec = ServiceSpec {
    name: "customer-api",
    env_prefix: "CUSTOMER_API",
    defaults: DEFAULTS,
    migrations: || sqlx::migrate!("./migrations"),
    routes,
    openapi: || ApiDoc::openapi(),
    subscriptions: |_| Vec::new(),
};

#[derive(Clone)]
pub struct AppState {
    pub kit: Kit,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(s: &AppState) -> Verifier {
        s.kit.verifier.clone()
    }
}

fn routes(kit: &Kit) -> Router {
    customers::routes::router().with_state(AppState { kit: kit.clone() })
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "customer-api",
        description = "Tenant accounts (customers) of the customer platform. Errors are RFC 9457 \
            problem details with a stable `code`.",
    ),
    paths(
        customers::routes::create_customer,
        customers::routes::get_customer,
        customers::routes::update_customer,
        customers::routes::delete_customer,
        customers::routes::list_customers,
    ),
    components(schemas(
        Customer, Address, BusinessProfile, SocialProfile, Problem, FieldError,
        customers::routes::CreateCustomer, customers::routes::UpdateCustomer,
    )),
    modifiers(&KitDoc),
    tags((name = "customers", description = "Tenant accounts"))
)]
pub struct ApiDoc;
