//! Test support: a database per test (owned by a schema-owner role, used through a runtime role
//! that is neither superuser nor BYPASSRLS, so row-level security is really exercised), a
//! service started on port 0, isolated broker names, and token minting.
//!
//! Needs `TEST_PG_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), a role
//! allowed to create roles and databases, and `TEST_AMQP_URL` (default the local broker).

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{Permission, claims_for, sign_hs256};
use crate::config::{
    AmqpConfig, AuthConfig, DatabaseConfig, HttpConfig, KitConfig, LogConfig, OutboxConfig, Secret,
    SnapshotConfig,
};
use crate::ids::CustomerId;
use crate::service::ServiceSpec;

mod broker;
mod client;
pub mod events;
mod harness;
mod responses;

pub use broker::{delete_broker_names, delete_queues, listen, publish, receive, service_queues};
pub use client::{Answer, Client};
pub use harness::Harness;
pub use responses::{invalid, ok, problem};

pub const OWNER_ROLE: &str = "cp_test_owner";
pub const APP_ROLE: &str = "cp_test_app";
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";

pub fn admin_url() -> String {
    std::env::var("TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn db_url(role: &str, db: &str) -> String {
    let base = reqwest::Url::parse(&admin_url()).expect("TEST_PG_ADMIN_URL is a URL");
    let host = base.host_str().unwrap_or("127.0.0.1");
    let port = base.port().unwrap_or(5432);
    // Loopback: no TLS (the default `prefer` would negotiate it with a local server).
    format!("postgres://{role}@{host}:{port}/{db}?sslmode=disable")
}

/// A database that exists for one test and is dropped with it.
pub struct TestDb {
    pub name: String,
    /// Runtime role (RLS applies).
    pub pool: PgPool,
    pub app_url: String,
    pub owner_url: String,
}

async fn ensure_roles(admin: &mut PgConnection) {
    for (role, extra) in [(OWNER_ROLE, ""), (APP_ROLE, "")] {
        let stmt = format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE {extra};
               END IF;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$"
        );
        sqlx::query(sqlx::AssertSqlSafe(stmt))
            .execute(&mut *admin)
            .await
            .expect("creating test roles");
    }
}

impl TestDb {
    /// Creates a fresh database and applies the kit's and `migrations`.
    pub async fn new(migrations: &Migrator) -> TestDb {
        let name = format!("cp_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("connecting as the test admin");
        ensure_roles(&mut admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} OWNER {OWNER_ROLE}"
        )))
        .execute(&mut admin)
        .await
        .expect("creating the test database");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "REVOKE CONNECT ON DATABASE {name} FROM PUBLIC"
        )))
        .execute(&mut admin)
        .await
        .expect("revoking public connect");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}"
        )))
        .execute(&mut admin)
        .await
        .expect("granting connect");
        admin.close().await.ok();
        let app_url = db_url(APP_ROLE, &name);
        let owner_url = db_url(OWNER_ROLE, &name);
        let cfg = database_config(&app_url, &owner_url);
        crate::db::migrate(&cfg, migrations)
            .await
            .expect("migrating the test database");
        let pool = crate::db::connect(&cfg).expect("test pool");
        TestDb {
            name,
            pool,
            app_url,
            owner_url,
        }
    }

    /// The database settings a service under test would use (runtime role, owner for
    /// migrations).
    pub fn config(&self) -> DatabaseConfig {
        database_config(&self.app_url, &self.owner_url)
    }

    /// A superuser connection to this database, for assertions that must see every row.
    pub async fn superuser(&self) -> PgConnection {
        let mut url = reqwest::Url::parse(&admin_url()).expect("admin url");
        url.set_path(&self.name);
        PgConnection::connect(url.as_str())
            .await
            .expect("superuser connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Runs on its own thread: Drop may run inside a runtime that cannot block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = PgConnection::connect(&admin_url()).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut c)
                        .await;
                    }
                });
            }
        })
        .join();
    }
}

fn database_config(app_url: &str, owner_url: &str) -> DatabaseConfig {
    DatabaseConfig {
        url: Secret::new(app_url.into()),
        migrate_url: Some(Secret::new(owner_url.into())),
        max_connections: 8,
        min_connections: 0,
        acquire_timeout_ms: 5000,
    }
}

/// Broker names unique to one test: their own exchanges and queue prefix.
pub fn amqp_config(tag: &str) -> AmqpConfig {
    let id = uuid::Uuid::new_v4().simple().to_string();
    AmqpConfig {
        url: Secret::new(amqp_url()),
        exchange: format!("test.{tag}.{id}.events"),
        dead_letter_exchange: format!("test.{tag}.{id}.dlx"),
        queue_prefix: format!("test.{tag}.{id}"),
        prefetch: 32,
        consumer_lanes: 4,
    }
}

pub fn auth_config() -> AuthConfig {
    AuthConfig {
        issuer: "https://auth.test".into(),
        audience: "customer-platform".into(),
        hs256_secret: Some(Secret::new(TEST_SECRET.into())),
        jwks_url: None,
        leeway_seconds: 5,
    }
}

/// A configuration for a service under test on `db`, relay off unless `relay`.
pub fn config(db: &TestDb, amqp: AmqpConfig, relay: bool) -> KitConfig {
    KitConfig {
        http: HttpConfig {
            bind: "127.0.0.1:0".into(),
            request_timeout_ms: 15_000,
            body_limit_bytes: 1 << 20,
            shutdown_grace_ms: 5_000,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 10_000,
            max_connections: 1024,
        },
        database: database_config(&db.app_url, &db.owner_url),
        amqp,
        auth: auth_config(),
        log: LogConfig {
            format: "pretty".into(),
            level: "warn".into(),
        },
        outbox: OutboxConfig {
            enabled: relay,
            batch_size: 500,
            poll_interval_ms: 200,
            max_unconfirmed: 10_000,
        },
        snapshot: SnapshotConfig {
            rows_per_second: 20_000,
            page_size: 100,
            poll_interval_ms: 50,
        },
        service: serde_json::Value::Null,
    }
}

/// A token signed with the test secret.
pub fn token(sub: &str, customer: Option<CustomerId>, permissions: &[Permission]) -> String {
    let claims = claims_for(
        &auth_config(),
        sub,
        customer,
        permissions,
        Duration::from_secs(600),
    );
    sign_hs256(&claims, &Secret::new(TEST_SECRET.into())).expect("signing a test token")
}

/// A test token bound to one client of a customer.
pub fn client_token(
    sub: &str,
    customer: CustomerId,
    client: crate::ids::ClientId,
    permissions: &[Permission],
) -> String {
    let mut claims = claims_for(
        &auth_config(),
        sub,
        Some(customer),
        permissions,
        Duration::from_secs(600),
    );
    claims.client_id = Some(client);
    sign_hs256(&claims, &Secret::new(TEST_SECRET.into())).expect("signing a test token")
}

/// A service running in this process on an ephemeral port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub shutdown: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub http: reqwest::Client,
    /// The broker names the service declares (its consumers' queues and the exchanges),
    /// deleted when the app is dropped.
    broker: Option<(AmqpConfig, Vec<String>)>,
}

impl TestApp {
    pub async fn spawn(spec: &'static ServiceSpec, cfg: KitConfig) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding port 0");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let queues = crate::service::kit(spec, cfg.clone())
            .map(|k| {
                k.consumers()
                    .iter()
                    .map(|c| crate::bus::queue_name(&cfg.amqp, c))
                    .collect()
            })
            .unwrap_or_default();
        let broker = Some((cfg.amqp.clone(), queues));
        let task = tokio::spawn(crate::service::run(spec, cfg, listener, shutdown.clone()));
        let app = TestApp {
            addr,
            base: format!("http://{addr}"),
            shutdown,
            task: Some(task),
            http: reqwest::Client::new(),
            broker,
        };
        app.wait_ready(Duration::from_secs(15)).await;
        app
    }

    /// Waits until `/health/ready` answers 200 (database, broker and consumers), or the
    /// timeout passes (tests of failure modes then see the failure themselves).
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = self.http.get(self.url("/health/ready")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A typed client of this service (no token until [`Client::as_user`]).
    pub fn client(&self) -> Client {
        Client::new(self.http.clone(), self.base.clone())
    }

    /// Cancels the service and waits for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let Some((amqp, queues)) = self.broker.take() else {
            return;
        };
        // On its own thread, joined: Drop may run inside a runtime that cannot block. The
        // pause lets the service's consumers stop before their queues go, so none redeclares.
        let _ = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(delete_broker_names(&amqp, &queues));
            }
        })
        .join();
    }
}
