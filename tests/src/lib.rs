//! Cross-service end-to-end tests and the load generator live in this crate. The library holds
//! what both share: starting service binaries and talking to the broker.
#![forbid(unsafe_code)]

pub mod bench;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Path of a workspace binary built next to the running test or bench executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` before the tests (the README's test command does)",
        path.display()
    );
    path
}

/// The environment that points service `prefix` (e.g. `CUSTOMER_API`) at a test database and
/// the test's own exchanges, listening on `port`, with the test signing secret.
pub fn service_env(
    db: &shared_model::testkit::TestDb,
    amqp: &shared_model::config::AmqpConfig,
    prefix: &str,
    port: u16,
    log_level: &str,
) -> Vec<(String, String)> {
    use shared_model::testkit;
    [
        ("HTTP__BIND", format!("127.0.0.1:{port}")),
        ("DATABASE__URL", db.app_url.clone()),
        ("DATABASE__MIGRATE_URL", db.owner_url.clone()),
        ("AMQP__URL", testkit::amqp_url()),
        ("AMQP__EXCHANGE", amqp.exchange.clone()),
        (
            "AMQP__DEAD_LETTER_EXCHANGE",
            amqp.dead_letter_exchange.clone(),
        ),
        ("AMQP__QUEUE_PREFIX", amqp.queue_prefix.clone()),
        ("AUTH__ISSUER", testkit::auth_config().issuer),
        ("AUTH__HS256_SECRET", testkit::TEST_SECRET.to_string()),
        ("LOG__LEVEL", log_level.to_string()),
        ("LOG__FORMAT", "json".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{prefix}__{k}"), v))
    .collect()
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768–60999), from which the
/// kernel picks both `bind(0)` ports and the local ports of outgoing connections. A port taken
/// from there could be given to another test's connection to PostgreSQL before the service
/// binds it.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free TCP port on the loopback interface, outside the ephemeral range.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORTS.end - PORTS.start);
    // Test processes start at different places: nextest runs each test in its own.
    let seed = std::process::id().wrapping_mul(7_919);
    for _ in 0..span {
        let n = seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = PORTS.start + n as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORTS:?}")
}

/// A service binary running as a child process.
pub struct ServiceProcess {
    pub child: Child,
    pub base: String,
}

impl ServiceProcess {
    /// Starts `name serve` with `env` and waits until `/health/ready` answers 200.
    pub async fn start(name: &str, port: u16, env: &[(String, String)]) -> anyhow::Result<Self> {
        Self::start_logged(name, port, env, None).await
    }

    /// As [`ServiceProcess::start`], appending the service's log to `log`.
    pub async fn start_logged(
        name: &str,
        port: u16,
        env: &[(String, String)],
        log: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(binary(name));
        let stdout = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Stdio::null(),
        };
        cmd.arg("serve")
            .envs(env.iter().cloned())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            // A child that stopped (its port taken, say) must not pass for ready because
            // something else answers on the port.
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("{name} exited while starting on port {port}: {status}");
            }
            if let Ok(r) = http.get(format!("{base}/health/ready")).send().await
                && r.status().is_success()
            {
                return Ok(Self { child, base });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{name} did not become ready on port {port}")
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await?;
        }
        Ok(tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await??)
    }
}

/// The service spec of a binary.
pub fn spec(name: &str) -> &'static shared_model::service::ServiceSpec {
    match name {
        "customer-api" => &customer_api::SERVICE,
        "partition-keys" => &partition_keys::SERVICE,
        "org-structure" => &org_structure::SERVICE,
        "gdpr-worker" => &gdpr_worker::SERVICE,
        "search-sync" => &search_sync::SERVICE,
        other => panic!("no service {other}"),
    }
}

/// Deletes what services (by binary name) declared on the broker for a test, plus `extra`
/// queues of the test's own: their consumers' queues and the test's exchanges.
pub async fn delete_services_broker_names(
    names: &[&str],
    db: &shared_model::testkit::TestDb,
    amqp: &shared_model::config::AmqpConfig,
    extra: &[String],
) {
    let mut queues: Vec<String> = extra.to_vec();
    for n in names {
        queues.extend(shared_model::testkit::service_queues(spec(n), db, amqp));
    }
    shared_model::testkit::delete_broker_names(amqp, &queues).await;
}

/// customer-api, org-structure and search-sync as processes, each on a database of its own,
/// sharing one broker (names unique to the test); `settings` (`SECTION__KEY`, value) are given
/// to all three.
pub struct SearchPlatform {
    pub api: ServiceProcess,
    pub org: ServiceProcess,
    pub search: ServiceProcess,
    pub customers_db: shared_model::testkit::TestDb,
    pub org_db: shared_model::testkit::TestDb,
    pub search_db: shared_model::testkit::TestDb,
    pub amqp: shared_model::config::AmqpConfig,
}

impl SearchPlatform {
    pub async fn start(tag: &str, settings: &[(&str, &str)]) -> SearchPlatform {
        use shared_model::testkit::{self, TestDb};
        let customers_db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
        let org_db = TestDb::new(&(org_structure::SERVICE.migrations)()).await;
        let search_db = TestDb::new(&(search_sync::SERVICE.migrations)()).await;
        let amqp = testkit::amqp_config(tag);
        // With E2E_LOG_DIR set, each service's log (at info) goes to <dir>/<service>.log.
        let logs = std::env::var_os("E2E_LOG_DIR").map(std::path::PathBuf::from);
        let start = |name: &'static str, db: &TestDb, prefix: &'static str| {
            let port = free_port();
            let level = if logs.is_some() { "info" } else { "warn" };
            let mut env = service_env(db, &amqp, prefix, port, level);
            env.extend(
                settings
                    .iter()
                    .map(|(k, v)| (format!("{prefix}__{k}"), v.to_string())),
            );
            let log = logs.as_ref().map(|d| d.join(format!("{name}.log")));
            async move {
                ServiceProcess::start_logged(name, port, &env, log.as_deref())
                    .await
                    .unwrap()
            }
        };
        let api = start("customer-api", &customers_db, "CUSTOMER_API").await;
        let org = start("org-structure", &org_db, "ORG_STRUCTURE").await;
        let search = start("search-sync", &search_db, "SEARCH_SYNC").await;
        SearchPlatform {
            api,
            org,
            search,
            customers_db,
            org_db,
            search_db,
            amqp,
        }
    }

    /// Stops the three and deletes their queues and the test's exchanges.
    pub async fn stop(self) {
        let _ = self.api.terminate().await;
        let _ = self.org.terminate().await;
        let _ = self.search.terminate().await;
        let mut queues = Vec::new();
        for (name, db) in [
            ("customer-api", &self.customers_db),
            ("org-structure", &self.org_db),
            ("search-sync", &self.search_db),
        ] {
            queues.extend(shared_model::testkit::service_queues(
                spec(name),
                db,
                &self.amqp,
            ));
        }
        shared_model::testkit::delete_broker_names(&self.amqp, &queues).await;
    }
}
