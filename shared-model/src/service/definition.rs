//! The typed definition of a service: what a service implements ([`Service`]) and what the kit
//! gives it in return (the state wrapper [`App`], its extractors, the runner).
//!
//! ```ignore
//! pub struct OrgStructure;
//!
//! impl Service for OrgStructure {
//!     const NAME: &'static str = "org-structure";
//!     const PORT: u16 = 8083;
//!     const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
//!     type Settings = NoSettings;
//!     type State = ();
//!     fn routes() -> OpenApiRouter<App<Self>> { locations::routes::router() }
//! }
//!
//! pub static SERVICE: ServiceSpec = ServiceSpec::of::<OrgStructure>();
//! ```

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use utoipa::Modify;
use utoipa_axum::router::OpenApiRouter;

use super::ServiceSpec;
use crate::auth::Verifier;
use crate::bus::Subscription;
use crate::http::Kit;

/// A service's own settings: `[service]` in TOML, `<PREFIX>__SERVICE__<KEY>` in the
/// environment; absent keys take the type's defaults. Deserialised and validated once, at start:
/// an error stops the process with the key at fault.
pub trait Settings: DeserializeOwned + Default + Send + Sync + 'static {
    /// Rules serde cannot state (ranges, keys required together, ...).
    fn validate(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The settings of a service that has none (any key in `[service]` is refused).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Settings for NoSettings {}

/// A service's shared state, made once per process from the kit and the settings.
pub trait State<S>: Send + Sync + Sized + 'static {
    fn make(kit: &Kit, settings: &S) -> anyhow::Result<Self>;
}

impl<S> State<S> for () {
    fn make(_: &Kit, _: &S) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A platform service, as the kit runs it.
pub trait Service: Sized + Send + Sync + 'static {
    /// Service name, e.g. `customer-api`: its queue prefix, its environment prefix
    /// (`CUSTOMER_API__...`) and its default database (`customer_api`, roles
    /// `customer_api_app` and `customer_api_owner`).
    const NAME: &'static str;
    /// The port it listens on by default.
    const PORT: u16;
    /// Its migrations, `sqlx::migrate!("./migrations")` (numbered from 1000; the kit's are
    /// added).
    const MIGRATIONS: Migrator;
    /// Its own settings.
    type Settings: Settings;
    /// What its routes, consumers and jobs share besides the kit and the settings (caches,
    /// limiters); made once per process. `()` for none.
    type State: State<Self::Settings>;
    /// Its API operations, each declared once with its document (`utoipa-axum`).
    fn routes() -> OpenApiRouter<App<Self>> {
        OpenApiRouter::new()
    }
    /// Its document's info, tags and extra components; the operations come from
    /// [`Service::routes`], the kit's operational endpoints and error sets are added.
    fn openapi() -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApiBuilder::new()
            .info(
                utoipa::openapi::InfoBuilder::new()
                    .title(Self::NAME)
                    .version(env!("CARGO_PKG_VERSION")),
            )
            .build()
    }
    /// Its event consumers.
    fn subscriptions(app: &App<Self>) -> Vec<Subscription> {
        let _ = app;
        Vec::new()
    }
    /// The entities it sends when a snapshot of them is asked for ([`crate::snapshot`]); with
    /// any, the kit binds `snapshot.requested` and runs the answering job.
    fn snapshots() -> Vec<Arc<dyn crate::snapshot::Source>> {
        Vec::new()
    }
    /// Background jobs run beside the API until `stop`; each returns soon after it.
    fn jobs(app: &App<Self>, stop: CancellationToken) -> Vec<BoxFuture<'static, ()>> {
        let _ = (app, stop);
        Vec::new()
    }
}

/// A running service's state: the kit, the settings and the service's own state, behind one
/// pointer (the routes clone it for every request).
pub struct App<S: Service>(Arc<AppParts<S>>);

/// The parts of an [`App`] (reached through it by `Deref`).
pub struct AppParts<S: Service> {
    pub kit: Kit,
    pub settings: S::Settings,
    pub state: S::State,
}

impl<S: Service> Clone for App<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: Service> std::ops::Deref for App<S> {
    type Target = AppParts<S>;
    fn deref(&self) -> &AppParts<S> {
        &self.0
    }
}

impl<S: Service> FromRef<App<S>> for Verifier {
    fn from_ref(app: &App<S>) -> Verifier {
        app.kit.verifier.clone()
    }
}

impl<S: Service> FromRef<App<S>> for Kit {
    fn from_ref(app: &App<S>) -> Kit {
        app.kit.clone()
    }
}

/// A service made ready to run: built once per process from its definition.
pub struct Built {
    /// Its routes, with their state.
    pub router: Router,
    /// Its document (the kit's parts are added when the router is finished).
    pub openapi: utoipa::openapi::OpenApi,
    pub subscriptions: Vec<Subscription>,
    /// Starts its jobs.
    pub jobs: Box<dyn FnOnce(CancellationToken) -> Vec<BoxFuture<'static, ()>> + Send>,
}

/// The whole document of `S`: its operations and info, and the kit's endpoints and error sets.
fn document<S: Service>() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::<App<S>>::with_openapi(S::openapi())
        .merge(S::routes())
        .into_openapi();
    crate::http::KitDoc.modify(&mut doc);
    doc
}

/// Reads and checks `S`'s settings, makes its state and collects its parts.
fn build<S: Service>(kit: &Kit) -> anyhow::Result<Built> {
    let settings: S::Settings = kit.config.service_settings()?;
    settings.validate()?;
    let state = S::State::make(kit, &settings)?;
    let app = App::<S>(Arc::new(AppParts {
        kit: kit.clone(),
        settings,
        state,
    }));
    let (router, mut openapi) = OpenApiRouter::with_openapi(S::openapi())
        .merge(S::routes())
        .split_for_parts();
    crate::http::KitDoc.modify(&mut openapi);
    let mut subscriptions = S::subscriptions(&app);
    let sources: crate::snapshot::Sources = Arc::new(S::snapshots());
    if !sources.is_empty() {
        subscriptions.push(crate::snapshot::subscription(S::NAME, sources.clone()));
    }
    let router = router.with_state(app.clone());
    Ok(Built {
        router,
        openapi,
        subscriptions,
        jobs: Box::new(move |stop| {
            let mut jobs = S::jobs(&app, stop.clone());
            if !sources.is_empty() {
                jobs.push(Box::pin(crate::snapshot::run(
                    app.kit.pool.clone(),
                    S::NAME,
                    sources,
                    app.kit.config.snapshot.clone(),
                    stop,
                )));
            }
            jobs
        }),
    })
}

fn migrations<S: Service>() -> Migrator {
    S::MIGRATIONS
}

impl ServiceSpec {
    /// The runner's description of `S`.
    pub const fn of<S: Service>() -> ServiceSpec {
        ServiceSpec {
            name: S::NAME,
            port: S::PORT,
            migrations: migrations::<S>,
            build: build::<S>,
            document: document::<S>,
        }
    }
}
