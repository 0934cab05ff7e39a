//! search-sync: search index projections, search API, scoped search keys and event history.
//!
//! Its resources arrive as folders beside this file, each with its routes, store, reactions
//! and jobs, and are listed in the definition below.
#![forbid(unsafe_code)]

pub mod documents;
pub mod index;
pub mod keys;
pub mod reindex;
pub mod search;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use shared_model::bus::Subscription;
use shared_model::error::{FieldError, Problem};
use shared_model::http::Kit;
use shared_model::keys::{KeyHasher, Pepper};
use shared_model::service::{App, Service, ServiceSpec};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The `source` of search-sync's events.
pub const SOURCE: &str = "/search-sync";

/// search-sync, as the kit runs it.
pub struct SearchSync;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<SearchSync>();

/// The routes' state.
pub type AppState = App<SearchSync>;

impl Service for SearchSync {
    const NAME: &'static str = "search-sync";
    const PORT: u16 = 8085;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = Settings;
    type State = State;

    fn routes() -> OpenApiRouter<AppState> {
        search::routes::router()
            .merge(keys::routes::router())
            .merge(reindex::routes::router())
    }

    fn openapi() -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    fn subscriptions(_: &AppState) -> Vec<Subscription> {
        let mut subs = documents::reactions::subscriptions();
        subs.push(reindex::reactions::subscription());
        subs
    }

    fn jobs(app: &AppState, stop: CancellationToken) -> Vec<BoxFuture<'static, ()>> {
        app.settings
            .key_pepper
            .warn_if_dev(DEV_PEPPER, "SEARCH_SYNC__SERVICE__KEY_PEPPER");
        vec![Box::pin(reindex::stall_loop(
            app.kit.pool.clone(),
            app.settings.reindex_stall_seconds,
            stop,
        ))]
    }
}

/// What search-sync's routes share: the search keys' hasher and rate limiters.
pub struct State {
    pub hasher: KeyHasher,
    pub limits: keys::access::Limits,
}

impl shared_model::service::State<Settings> for State {
    fn make(_: &Kit, s: &Settings) -> anyhow::Result<State> {
        Ok(State {
            hasher: s.key_pepper.hasher(),
            limits: keys::access::Limits::default(),
        })
    }
}

/// search-sync's own settings: `[service]` in TOML, `SEARCH_SYNC__SERVICE__<KEY>` in the
/// environment.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The server-side secret search keys are hashed with (HMAC-SHA256), at least 32
    /// characters. Changing it invalidates every search key.
    pub key_pepper: Pepper,
    /// A reindex that receives no snapshot page for this long fails (10 to 86,400).
    pub reindex_stall_seconds: u64,
}

/// The pepper used when none is configured, for local development; every deployment sets its
/// own, and the service warns at start when it is used.
const DEV_PEPPER: &str = "local-dev-search-pepper-not-for-production-0123";

impl Default for Settings {
    fn default() -> Self {
        Self {
            key_pepper: Pepper::dev(DEV_PEPPER),
            reindex_stall_seconds: 300,
        }
    }
}

impl shared_model::service::Settings for Settings {
    fn validate(&self) -> anyhow::Result<()> {
        self.key_pepper.validate()?;
        if !(10..=86_400).contains(&self.reindex_stall_seconds) {
            anyhow::bail!(
                "invalid configuration: service.reindex_stall_seconds: must be 10 to 86400"
            );
        }
        Ok(())
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "search-sync",
        description = "Real-time search of customers, clients and contacts, kept from the \
            platform's events. Errors are RFC 9457 problem details with a stable `code`.",
    ),
    components(schemas(
        Problem, FieldError, search::request::SearchRequest, keys::bodies::CreateSearchKey,
        keys::bodies::SearchKey, keys::bodies::IssuedSearchKey, reindex::routes::StartReindex,
        reindex::routes::Reindex, reindex::routes::ReindexPart,
    )),
    tags(
        (name = "search", description = "Search customers, clients and contacts"),
        (name = "search-keys", description = "Scoped search keys for browser front ends"),
        (name = "reindexes", description = "Rebuild the index from the owning services"),
    ),
    modifiers(&SearchKeyScheme),
)]
pub struct ApiDoc;

/// The `searchKey` security scheme: a search key in `X-Search-Key`.
struct SearchKeyScheme;

impl utoipa::Modify for SearchKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "searchKey",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Search-Key"))),
            );
    }
}
