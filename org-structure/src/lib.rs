//! org-structure: locations, departments and contacts of customers and of their
//! clients, the owners' projections from customer-api's events, and the HQ made from a new
//! business customer's address.
//!
//! `SERVICE` describes the binary to the kit's runner, so tests start the real service on port
//! 0 with `shared_model::service::run`.
#![forbid(unsafe_code)]

pub mod contacts;
pub mod departments;
pub mod entity;
pub mod locations;
pub mod owners;
pub mod settings;
pub mod values;

use shared_model::bus::Subscription;
use shared_model::error::{FieldError, Problem};
use shared_model::events::org::{Contact, Department, Location, OrgSettings};
use shared_model::service::{App, NoSettings, Service, ServiceSpec};
use sqlx::migrate::Migrator;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The `source` of this service's events.
pub const SOURCE: &str = "/org-structure";

/// org-structure, as the kit runs it.
pub struct OrgStructure;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<OrgStructure>();

/// The routes' state.
pub type AppState = App<OrgStructure>;

impl Service for OrgStructure {
    const NAME: &'static str = "org-structure";
    const PORT: u16 = 8083;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = NoSettings;
    type State = ();

    fn routes() -> OpenApiRouter<AppState> {
        locations::routes::router()
            .merge(departments::routes::router())
            .merge(contacts::routes::router())
            .merge(settings::routes::router())
    }

    fn openapi() -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    fn subscriptions(_: &AppState) -> Vec<Subscription> {
        owners::reactions::subscriptions()
    }

    fn snapshots() -> Vec<std::sync::Arc<dyn shared_model::snapshot::Source>> {
        vec![std::sync::Arc::new(contacts::snapshot::CONTACTS)]
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "org-structure",
        description = "Locations, departments and contacts of customers and of their clients, at both levels: \
            `/v1/customers/{customerId}/...` and `/v1/customers/{customerId}/clients/{clientId}/...`. \
            Errors are RFC 9457 problem details with a stable `code`.",
    ),
    components(schemas(
        Location, Department, Contact, OrgSettings, Problem, FieldError,
        locations::routes::CreateLocation, locations::routes::UpdateLocation,
        departments::routes::CreateDepartment, departments::routes::UpdateDepartment,
        contacts::requests::CreateContact, contacts::requests::UpdateContact,
        settings::routes::PutSettings,
    )),
    tags(
        (name = "locations", description = "Locations (sites) of a customer or of a client"),
        (name = "departments", description = "Departments of a customer or of a client: a tree of at most 5 levels"),
        (name = "contacts", description = "Contact persons of a customer or of a client"),
        (name = "settings", description = "A customer's org-structure settings"),
    )
)]
pub struct ApiDoc;
