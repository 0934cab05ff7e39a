//! Every service binary migrates its database and serves the operational endpoints.

use serde_json::Value;
use shared_model::testkit::{self, TestDb};
use sqlx::migrate::Migrator;
use tests::{ServiceProcess, binary, free_port, service_env};

async fn check(name: &str, prefix: &str) {
    // The kit's tables only; the binary's `migrate` applies the rest and grants the runtime role.
    let db = TestDb::new(&Migrator::with_migrations(Vec::new())).await;
    let amqp = testkit::amqp_config(name);
    let port = free_port();
    let env = service_env(&db, &amqp, prefix, port, "warn");

    let migrate = tokio::process::Command::new(binary(name))
        .arg("migrate")
        .envs(env.iter().cloned())
        .output()
        .await
        .unwrap();
    assert!(
        migrate.status.success(),
        "{name} migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    // Invalid configuration fails fast, naming the key.
    let bad = tokio::process::Command::new(binary(name))
        .arg("serve")
        .envs(env.iter().cloned())
        .env(format!("{prefix}__AUTH__LEEWAY_SECONDS"), "600")
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("auth.leeway_seconds"),
        "{name}"
    );

    let svc = ServiceProcess::start(name, port, &env).await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", svc.base)).send();
    assert_eq!(get("/health/live").await.unwrap().status(), 200);
    let ready: Value = get("/health/ready").await.unwrap().json().await.unwrap();
    assert_eq!(ready["database"], "up");
    assert_eq!(ready["broker"], "up");
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{name}: {metrics}");
    let doc: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    assert_eq!(doc["info"]["title"], name);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(get("/docs/").await.unwrap().status(), 200);
    // The client keeps its keep-alive connection open: SIGTERM closes it and exits at once.
    let asked = std::time::Instant::now();
    let status = svc.terminate().await.unwrap();
    assert!(
        status.success(),
        "{name} did not stop cleanly on SIGTERM: {status:?}"
    );
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(2),
        "{name} took {:?} to exit after SIGTERM",
        asked.elapsed()
    );
    tests::delete_services_broker_names(&[name], &db, &amqp, &[]).await;
}

#[tokio::test]
async fn customer_api_binary() {
    check("customer-api", "CUSTOMER_API").await;
}

#[tokio::test]
async fn partition_keys_binary() {
    check("partition-keys", "PARTITION_KEYS").await;
}

#[tokio::test]
async fn org_structure_binary() {
    check("org-structure", "ORG_STRUCTURE").await;
}

#[tokio::test]
async fn gdpr_worker_binary() {
    check("gdpr-worker", "GDPR_WORKER").await;
}

#[tokio::test]
async fn search_sync_binary() {
    check("search-sync", "SEARCH_SYNC").await;
}
