//! gdpr-worker: data-subject requests (access, erasure, rectification, portability) and their orchestration.
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
bind = "0.0.0.0:8084"

[database]
url = "postgres://gdpr_worker_app@127.0.0.1:5432/gdpr_worker"
migrate_url = "postgres://gdpr_worker_owner@127.0.0.1:5432/gdpr_worker"

[amqp]
queue_prefix = "gdpr-worker"
"#;

pub static SERVICE: ServiceSpec = ServiceSpec {
    name: "gdpr-worker",
    env_prefix: "GDPR_WORKER",
    defaults: DEFAULTS,
    migrations: || Migrator::with_migrations(Vec::new()),
    routes: |_| Router::new(),
    openapi: || ApiDoc::openapi(),
    subscriptions: |_| Vec::new(),
    background: |_, _| Vec::new(),
    check_config: |_| Ok(()),
};

#[derive(OpenApi)]
#[openapi(info(title = "gdpr-worker", description = "data-subject requests (access, erasure, rectification, portability) and their orchestration."), modifiers(&KitDoc))]
pub struct ApiDoc;
