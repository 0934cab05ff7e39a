//! search-sync: search index projections, search API, scoped search keys and event history.
//!
//! This service runs on the platform kit (health, readiness, metrics, OpenAPI, outbox relay);
//! its resources arrive with their own issues.
#![forbid(unsafe_code)]

use axum::Router;
use shared_model::http::KitDoc;
use shared_model::service::ServiceSpec;
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

const DEFAULTS: &str = r#"
[http]
bind = "0.0.0.0:8085"

[database]
url = "postgres://search_sync_app@127.0.0.1:5432/search_sync"
migrate_url = "postgres://search_sync_owner@127.0.0.1:5432/search_sync"

[amqp]
queue_prefix = "search-sync"
"#;

pub static SERVICE: ServiceSpec = ServiceSpec {
    name: "search-sync",
    env_prefix: "SEARCH_SYNC",
    defaults: DEFAULTS,
    migrations: || Migrator::with_migrations(Vec::new()),
    routes: |_| Router::new(),
    openapi: || ApiDoc::openapi(),
    subscriptions: |_| Vec::new(),
    background: |_, _| Vec::new(),
    check_config: |_| Ok(()),
};

#[derive(OpenApi)]
#[openapi(info(title = "search-sync", description = "search index projections, search API, scoped search keys and event history."), modifiers(&KitDoc))]
pub struct ApiDoc;
