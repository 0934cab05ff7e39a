//! partition-keys: data partitions, partition groups, API keys and key verification.
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
bind = "0.0.0.0:8082"

[database]
url = "postgres://partition_keys_app@127.0.0.1:5432/partition_keys"
migrate_url = "postgres://partition_keys_owner@127.0.0.1:5432/partition_keys"

[amqp]
queue_prefix = "partition-keys"
"#;

pub static SERVICE: ServiceSpec = ServiceSpec {
    name: "partition-keys",
    env_prefix: "PARTITION_KEYS",
    defaults: DEFAULTS,
    migrations: || Migrator::with_migrations(Vec::new()),
    routes: |_| Router::new(),
    openapi: || ApiDoc::openapi(),
    subscriptions: |_| Vec::new(),
    background: |_, _| Vec::new(),
    check_config: |_| Ok(()),
};

#[derive(OpenApi)]
#[openapi(info(title = "partition-keys", description = "data partitions, partition groups, API keys and key verification."), modifiers(&KitDoc))]
pub struct ApiDoc;
