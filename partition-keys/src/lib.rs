//! partition-keys: data partitions, API keys with rotation and TTL, key verification, and the
//! cascades of customer lifecycle onto them.
//!
//! `SERVICE` describes the binary to the kit's runner, so tests start the real service on port
//! 0 with `shared_model::service::run`.
#![forbid(unsafe_code)]

pub mod keys;
pub mod known_customers;
pub mod partition_groups;
pub mod partitions;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use shared_model::bus::Subscription;
use shared_model::error::{FieldError, Problem};
use shared_model::events::partition::{ApiKey, Partition, PartitionGroup};
use shared_model::http::Kit;
use shared_model::keys::Pepper;
use shared_model::service::{App, Service, ServiceSpec};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// The `source` of this service's events.
pub const SOURCE: &str = "/partition-keys";

/// partition-keys, as the kit runs it.
pub struct PartitionKeys;

pub static SERVICE: ServiceSpec = ServiceSpec::of::<PartitionKeys>();

/// The routes' state.
pub type AppState = App<PartitionKeys>;

/// What partition-keys' routes and jobs share: the key verifier (its cache, change feed and
/// usage buffer).
pub struct State {
    pub verifier: Arc<keys::verify::KeyVerifier>,
}

impl shared_model::service::State<Settings> for State {
    fn make(kit: &Kit, s: &Settings) -> anyhow::Result<State> {
        Ok(State {
            verifier: Arc::new(keys::verify::KeyVerifier::new(
                kit.pool.clone(),
                s.key_pepper.expose().to_vec(),
                keys::verify::FeedTiming {
                    max_age: Duration::from_millis(s.cache_max_age_ms),
                    heartbeat: Duration::from_millis(s.feed_heartbeat_ms),
                    stale_after: Duration::from_millis(s.feed_stale_ms),
                },
            )),
        })
    }
}

impl Service for PartitionKeys {
    const NAME: &'static str = "partition-keys";
    const PORT: u16 = 8082;
    const MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
    type Settings = Settings;
    type State = State;

    fn routes() -> OpenApiRouter<AppState> {
        partitions::routes::router()
            .merge(partition_groups::routes::router())
            .merge(keys::routes::router())
            .merge(keys::gateway::router())
    }

    fn openapi() -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    fn subscriptions(_: &AppState) -> Vec<Subscription> {
        vec![known_customers::reactions::subscription()]
    }

    fn jobs(app: &AppState, stop: CancellationToken) -> Vec<BoxFuture<'static, ()>> {
        let s = &app.settings;
        s.key_pepper
            .warn_if_dev(DEV_PEPPER, "PARTITION_KEYS__SERVICE__KEY_PEPPER");
        let verifier = &app.state.verifier;
        vec![
            Box::pin(keys::jobs::flush_usage_loop(
                verifier.clone(),
                Duration::from_millis(s.last_used_flush_ms),
                stop.clone(),
            )),
            Box::pin(keys::jobs::feed_loop(verifier.clone(), stop.clone())),
            Box::pin(keys::jobs::heartbeat_loop(verifier.clone(), stop.clone())),
            Box::pin(keys::jobs::expiry_loop(
                app.kit.pool.clone(),
                Duration::from_millis(s.expiry_interval_ms),
                stop,
            )),
        ]
    }
}

/// partition-keys' own settings: `[service]` in TOML, `PARTITION_KEYS__SERVICE__<KEY>` in the
/// environment.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The server-side secret keys are hashed with (HMAC-SHA256), at least 32 characters.
    /// Changing it invalidates every key.
    pub key_pepper: Pepper,
    /// The longest a verification result stays cached, even while the change feed reports
    /// nothing about it.
    pub cache_max_age_ms: u64,
    /// How often each replica proves its change feed alive with a heartbeat.
    pub feed_heartbeat_ms: u64,
    /// How long after its newest heartbeat was sent a replica still serves cached results:
    /// the bound on how late a revocation or cascade can reach a replica whose feed broke.
    pub feed_stale_ms: u64,
    /// How often `lastUsedAt` is written (in one batch).
    pub last_used_flush_ms: u64,
    /// How often keys past `expiresAt` are marked expired (and `apikey.expired` published).
    pub expiry_interval_ms: u64,
}

/// The pepper used when none is configured, for local development; every deployment sets its
/// own (`PARTITION_KEYS__SERVICE__KEY_PEPPER`), and the service warns at start when it is used.
const DEV_PEPPER: &str = "local-dev-pepper-not-for-production-0123456789";

impl Default for Settings {
    fn default() -> Self {
        Self {
            key_pepper: Pepper::dev(DEV_PEPPER),
            cache_max_age_ms: 60_000,
            feed_heartbeat_ms: 200,
            feed_stale_ms: 750,
            last_used_flush_ms: 1_000,
            expiry_interval_ms: 1_000,
        }
    }
}

impl shared_model::service::Settings for Settings {
    fn validate(&self) -> anyhow::Result<()> {
        self.key_pepper.validate()?;
        if !(1..=3_600_000).contains(&self.cache_max_age_ms) {
            anyhow::bail!("invalid configuration: service.cache_max_age_ms: must be 1 to 3600000");
        }
        if !(1..=1_000).contains(&self.feed_stale_ms) {
            anyhow::bail!(
                "invalid configuration: service.feed_stale_ms: must be 1 to 1000 (revocations must reach every replica within 1 s)"
            );
        }
        if self.feed_heartbeat_ms == 0 || self.feed_heartbeat_ms * 2 > self.feed_stale_ms {
            anyhow::bail!(
                "invalid configuration: service.feed_heartbeat_ms: must be > 0 and at most half of feed_stale_ms"
            );
        }
        if self.last_used_flush_ms == 0 || self.expiry_interval_ms == 0 {
            anyhow::bail!(
                "invalid configuration: service.last_used_flush_ms and expiry_interval_ms must be > 0"
            );
        }
        Ok(())
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "partition-keys",
        description = "Data partitions of customers, their API keys (shown once, stored as a \
            keyed hash, rotated with overlap, revoked, expiring) and key verification for \
            gateways. Errors are RFC 9457 problem details with a stable `code`.",
    ),
    components(schemas(
        Partition, PartitionGroup, ApiKey, Problem, FieldError,
        partition_groups::routes::CreateGroup, partition_groups::routes::UpdateGroup,
        partitions::routes::CreatePartition, partitions::routes::UpdatePartition,
        keys::routes::CreateKey, keys::routes::Rotate, keys::routes::IssuedKey,
        keys::gateway::Verify, keys::gateway::Verification,
    )),
    tags(
        (name = "partitions", description = "Data partitions of a customer"),
        (name = "keys", description = "API keys of a partition, and their verification"),
    )
)]
pub struct ApiDoc;
