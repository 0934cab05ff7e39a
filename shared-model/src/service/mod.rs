//! The life of a service process: command line (`serve`, `migrate`), configuration, telemetry,
//! background tasks (outbox relay, consumers, broker health, housekeeping), the HTTP server and
//! graceful shutdown. Each binary's `main` is a call to [`main`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Verifier;
use crate::bus::{self, BrokerHealth};
use crate::config::{self, KitConfig};
use crate::db;
use crate::http::{self, Kit};
use crate::outbox::Relay;
use crate::telemetry;

mod definition;

pub use definition::{App, AppParts, Built, NoSettings, Service, Settings, State};

/// What the runner knows of a service binary: made from its [`Service`] definition with
/// [`ServiceSpec::of`].
pub struct ServiceSpec {
    pub name: &'static str,
    pub port: u16,
    pub migrations: fn() -> Migrator,
    /// Checks the settings, makes the state and collects routes, consumers and jobs.
    pub build: fn(&Kit) -> anyhow::Result<Built>,
    /// The service's whole OpenAPI document.
    pub document: fn() -> utoipa::openapi::OpenApi,
}

impl ServiceSpec {
    /// The environment prefix of its configuration: `customer-api` → `CUSTOMER_API`.
    pub fn env_prefix(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }

    /// Its compiled-in configuration defaults: its port, its database and roles (the name with
    /// `_` for `-`), its queue prefix (the name).
    pub fn defaults(&self) -> String {
        let db = self.name.replace('-', "_");
        format!(
            "[http]\nbind = \"0.0.0.0:{port}\"\n\n\
             [database]\nurl = \"postgres://{db}_app@127.0.0.1:5432/{db}\"\n\
             migrate_url = \"postgres://{db}_owner@127.0.0.1:5432/{db}\"\n\n\
             [amqp]\nqueue_prefix = \"{name}\"\n",
            port = self.port,
            name = self.name,
        )
    }
}

#[derive(Parser)]
#[command(about = "A customer-platform service")]
struct Cli {
    /// Optional TOML configuration file (environment variables override it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and run background work (the default).
    Serve,
    /// Apply database migrations as the schema owner, grant the runtime role, and exit.
    Migrate,
    /// Print a bearer token signed with the configured HS256 secret (local development only).
    DevToken {
        /// The token subject (user id).
        #[arg(long, default_value = "local-dev")]
        sub: String,
        /// Bind the token to this customer (tenant token); omit for a platform-admin token.
        #[arg(long)]
        customer_id: Option<crate::ids::CustomerId>,
        /// Bind the token to this client of the customer (a client-bound token).
        #[arg(long, requires = "customer_id")]
        client_id: Option<crate::ids::ClientId>,
        /// Comma-separated permissions; default: every permission (for a token bound to a
        /// customer, every permission but the services' own).
        #[arg(long, value_delimiter = ',')]
        permissions: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
}

/// Entry point of a service binary.
pub fn main(spec: &'static ServiceSpec) -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg: KitConfig = config::load(&spec.env_prefix(), &spec.defaults(), cli.config.as_deref())?;
    if let Some(Command::DevToken {
        sub,
        customer_id,
        client_id,
        permissions,
        ttl,
    }) = &cli.command
    {
        return print_dev_token(&cfg, sub, (*customer_id, *client_id), permissions, *ttl);
    }
    let _guard = telemetry::init(spec.name, &cfg.log)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => {
                db::migrate(&cfg.database, &(spec.migrations)()).await?;
                tracing::info!(service = spec.name, "migrations applied");
                Ok(())
            }
            Command::DevToken { .. } => Ok(()),
            Command::Serve => {
                let listener = TcpListener::bind(&cfg.http.bind)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding http.bind {}: {e}", cfg.http.bind))?;
                let shutdown = CancellationToken::new();
                http::serve::cancel_on_signal(shutdown.clone());
                run(spec, cfg, listener, shutdown).await
            }
        }
    })
}

fn print_dev_token(
    cfg: &KitConfig,
    sub: &str,
    (customer_id, client_id): (Option<crate::ids::CustomerId>, Option<crate::ids::ClientId>),
    permissions: &[String],
    ttl: u64,
) -> anyhow::Result<()> {
    use crate::auth::Permission;
    let secret =
        cfg.auth.hs256_secret.as_ref().ok_or_else(|| {
            anyhow::anyhow!("dev-token needs auth.hs256_secret (local development)")
        })?;
    let perms: Vec<Permission> = if permissions.is_empty() {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| customer_id.is_none() || !p.is_service())
            .collect()
    } else {
        permissions
            .iter()
            .map(|p| {
                Permission::parse(p.trim()).ok_or_else(|| anyhow::anyhow!("unknown permission {p}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut claims = crate::auth::claims_for(
        &cfg.auth,
        sub,
        customer_id,
        &perms,
        Duration::from_secs(ttl),
    );
    claims.client_id = client_id;
    println!("{}", crate::auth::sign_hs256(&claims, secret)?);
    Ok(())
}

/// Builds the kit (pool, verifier, broker health) for a configuration, and the service on it.
pub fn start(spec: &ServiceSpec, cfg: KitConfig) -> anyhow::Result<(Kit, Built)> {
    telemetry::metrics_handle();
    let kit = Kit::new(
        spec.name,
        db::connect(&cfg.database)?,
        Verifier::from_config(&cfg.auth)?,
        BrokerHealth::default(),
        Arc::new(cfg),
    );
    let built = (spec.build)(&kit)?;
    kit.set_consumers(built.subscriptions.iter().map(|s| s.name.clone()));
    Ok((kit, built))
}

/// The kit of a service for a configuration (its settings checked).
pub fn kit(spec: &ServiceSpec, cfg: KitConfig) -> anyhow::Result<Kit> {
    start(spec, cfg).map(|(kit, _)| kit)
}

/// Runs the service on `listener` until `shutdown`: serves HTTP and runs the relay and the
/// consumers; on shutdown drains requests, lets consumers finish the delivery in hand and the
/// relay publish what is committed.
pub async fn run(
    spec: &'static ServiceSpec,
    cfg: KitConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let grace = Duration::from_millis(cfg.http.shutdown_grace_ms);
    let (kit, built) = start(spec, cfg)?;
    let Built {
        router,
        openapi,
        subscriptions,
        jobs,
    } = built;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(
        kit.broker
            .clone()
            .monitor(kit.config.amqp.clone(), spec.name, shutdown.clone()),
    );
    tasks.spawn(
        Relay {
            service: spec.name,
            pool: kit.pool.clone(),
            amqp: kit.config.amqp.clone(),
            outbox: kit.config.outbox.clone(),
        }
        .run(shutdown.clone()),
    );
    for sub in subscriptions {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let started = kit.consumers_started.clone();
        tasks.spawn(async move {
            if ready_rx.await.is_ok() {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        tasks.spawn(bus::run_consumer(
            kit.config.amqp.clone(),
            kit.pool.clone(),
            sub,
            Some(ready_tx),
            shutdown.clone(),
        ));
    }
    // Histogram samples accumulate in the recorder until upkeep folds them in; without it a
    // service that is never scraped would grow without bound.
    let stop = shutdown.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => telemetry::metrics_handle().run_upkeep(),
                _ = stop.cancelled() => return,
            }
        }
    });
    for job in jobs(shutdown.clone()) {
        tasks.spawn(job);
    }
    let pool = kit.pool.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        loop {
            match crate::http::idempotency::expire(&pool).await {
                Ok(n) if n > 0 => tracing::info!(n, "expired idempotency records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiring idempotency records failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
    let served = http::serve::serve(
        listener,
        http::finish(router, &kit, openapi),
        shutdown.clone(),
        &kit.config.http,
    )
    .await;
    shutdown.cancel();
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    kit.pool.close().await;
    tracing::info!(service = spec.name, "stopped");
    served
}
