//! customer-api: customers (tenant accounts) and, as the platform grows, their clients,
//! groups, tags, roles, registration settings and lifecycle.
//!
//! `app` builds the router for a kit; `SERVICE` describes the binary to the kit's runner, so
//! tests start the real service on port 0 with `shared_model::service::run`.
#![forbid(unsafe_code)]

pub mod clients;
pub mod common;
pub mod customers;
pub mod groups;
pub mod roles;
pub mod tags;

use axum::Router;
use axum::extract::FromRef;
use shared_model::auth::Verifier;
use shared_model::error::{FieldError, Problem};
use shared_model::events::client::{Client, ClientAddress, Membership, Revenue};
use shared_model::events::customer::{Address, BusinessProfile, Customer, SocialProfile};
use shared_model::events::tenant::{Group, Role, Tag};
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
    customers::routes::router()
        .merge(clients::routes::router())
        .merge(clients::addresses::router())
        .merge(tags::routes::router())
        .merge(groups::routes::router())
        .merge(roles::routes::router())
        .with_state(AppState { kit: kit.clone() })
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
        clients::routes::create_client,
        clients::routes::get_client,
        clients::routes::update_client,
        clients::routes::delete_client,
        clients::routes::list_clients,
        clients::routes::client_stats,
        clients::routes::add_purchase,
        clients::routes::convert_client,
        clients::routes::disable_client,
        clients::routes::enable_client,
        tags::routes::create_tag,
        tags::routes::get_tag,
        tags::routes::list_tags,
        tags::routes::update_tag,
        tags::routes::delete_tag,
        tags::routes::apply_tag,
        tags::routes::remove_tag,
        clients::addresses::create_address,
        clients::addresses::list_addresses,
        clients::addresses::get_address,
        clients::addresses::update_address,
        clients::addresses::delete_address,
        groups::routes::create_group,
        groups::routes::get_group,
        groups::routes::list_groups,
        groups::routes::update_group,
        groups::routes::delete_group,
        groups::routes::list_members,
        groups::routes::add_member,
        groups::routes::remove_member,
        groups::routes::client_pricing,
        groups::routes::client_snapshot,
        roles::routes::create_role,
        roles::routes::list_roles,
        roles::routes::get_role,
        roles::routes::update_role,
        roles::routes::delete_role,
    ),
    components(schemas(
        Customer, Address, BusinessProfile, SocialProfile, Problem, FieldError,
        customers::routes::CreateCustomer, customers::routes::UpdateCustomer,
        Client, Revenue, clients::routes::CreateClient, clients::routes::UpdateClient,
        clients::routes::Purchase, clients::routes::ConvertLead, clients::routes::ClientStats,
        clients::routes::CurrencyTotal, Tag, tags::routes::CreateTag, tags::routes::UpdateTag,
        ClientAddress, clients::addresses::CreateAddress, clients::addresses::UpdateAddress,
        clients::addresses::AddressBook, Group, Membership, groups::routes::CreateGroup,
        groups::routes::UpdateGroup, groups::routes::ClientPricing,
        groups::routes::ClientGroupEntry, groups::routes::ClientSnapshot, Role,
        roles::routes::CreateRole, roles::routes::UpdateRole, roles::routes::RoleList,
    )),
    modifiers(&KitDoc),
    tags(
        (name = "customers", description = "Tenant accounts"),
        (name = "clients", description = "The accounts a customer serves"),
        (name = "tags", description = "Tag definitions and their use on clients"),
        (name = "groups", description = "Client groups (shopper groups) and memberships"),
        (name = "roles", description = "Tenant roles: named permission sets"),
        (name = "internal", description = "For other platform services, not integrators"),
    )
)]
pub struct ApiDoc;
