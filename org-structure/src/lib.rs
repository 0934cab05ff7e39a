//! org-structure: departments, locations and contacts of customers and clients.
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
bind = "0.0.0.0:8083"

[database]
url = "postgres://org_structure_app@127.0.0.1:5432/org_structure"
migrate_url = "postgres://org_structure_owner@127.0.0.1:5432/org_structure"

[amqp]
queue_prefix = "org-structure"
"#;

pub static SERVICE: ServiceSpec = ServiceSpec {
    name: "org-structure",
    env_prefix: "ORG_STRUCTURE",
    defaults: DEFAULTS,
    migrations: || Migrator::with_migrations(Vec::new()),
    routes: |_| Router::new(),
    openapi: || ApiDoc::openapi(),
    subscriptions: |_| Vec::new(),
    background: |_, _| Vec::new(),
    check_config: |_| Ok(()),
};

#[derive(OpenApi)]
#[openapi(info(title = "org-structure", description = "departments, locations and contacts of customers and clients."), modifiers(&KitDoc))]
pub struct ApiDoc;
