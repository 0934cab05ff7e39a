//! search-sync: search index projections, search API, scoped search keys and event history.
//!
//! Its resources arrive as folders beside this file, each with its routes, store, reactions
//! and jobs, and are listed in the definition below.
#![forbid(unsafe_code)]

pub mod documents;
pub mod index;
pub mod search;

use shared_model::bus::Subscription;
use shared_model::error::{FieldError, Problem};
use shared_model::service::{App, NoSettings, Service, ServiceSpec};
use sqlx::migrate::Migrator;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// search-sync, as the kit runs it.
pub struct SearchSync;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<SearchSync>();

/// The routes' state.
pub type AppState = App<SearchSync>;

impl Service for SearchSync {
    const NAME: &'static str = "search-sync";
    const PORT: u16 = 8085;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = NoSettings;
    type State = ();

    fn routes() -> OpenApiRouter<AppState> {
        search::routes::router()
    }

    fn openapi() -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    fn subscriptions(_: &AppState) -> Vec<Subscription> {
        documents::reactions::subscriptions()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "search-sync",
        description = "Real-time search of customers, clients and contacts, kept from the \
            platform's events. Errors are RFC 9457 problem details with a stable `code`.",
    ),
    components(schemas(Problem, FieldError, search::request::SearchRequest)),
    tags((name = "search", description = "Search customers, clients and contacts")),
)]
pub struct ApiDoc;
