//! Under faults: a writer at a fixed rate while customer-api is killed with SIGKILL and
//! restarted, and while PostgreSQL restarts. Every answered write has exactly one event, every
//! retry of a failed write with its key gets the original answer (never a second write), and no
//! key stays locked. The database restart touches every test's connections, so this runs alone
//! (`deploy/local/test.sh` runs it after the suite with `--run-ignored only`).
//!
//! Also: errors answered while the process runs with `RUST_BACKTRACE=1` do not make it load its
//! debug information (which cost about 200 MB per service).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::BasicAckOptions;
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit::{self, TestDb};
use tests::{ServiceProcess, free_port, service_env};

use super::TENANT_ALL;

/// Restarts the local PostgreSQL cluster (`TEST_PG_RESTART` overrides the command).
async fn restart_postgres() {
    let cmd = std::env::var("TEST_PG_RESTART").unwrap_or_else(|_| {
        "pg_ctlcluster --skip-systemctl-redirect \"$(ls /etc/postgresql | sort -V | tail -n1)\" \
         main restart"
            .to_string()
    });
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "{cmd} failed");
}

async fn kill_9(svc: &mut ServiceProcess) {
    let pid = svc.child.id().expect("running");
    tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await
        .unwrap();
    let _ = svc.child.wait().await;
}

/// How one write ended: the client id answered and whether that answer was a replay, and how
/// many attempts before it failed with a 5xx or no answer.
#[derive(Debug)]
struct Write {
    id: Option<String>,
    status: u16,
    replayed: bool,
    failures: u32,
}

async fn write(http: &reqwest::Client, url: &str, token: &str, i: usize) -> Write {
    let mut failures = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = http
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", format!("write-{i}"))
            .json(&json!({"type": "business", "name": format!("Writer {i}")}))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_server_error() => failures += 1,
            Ok(r) => {
                let status = r.status().as_u16();
                let replayed = r.headers().contains_key("idempotent-replayed");
                let body: Value = r.json().await.unwrap_or(Value::Null);
                return Write {
                    id: body["id"].as_str().map(str::to_string),
                    status,
                    replayed,
                    failures,
                };
            }
            Err(_) => failures += 1,
        }
        assert!(Instant::now() < deadline, "write {i} never got an answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts the local PostgreSQL cluster; run alone"]
async fn database_restart_and_sigkill_under_writes_lose_and_duplicate_nothing() {
    let amqp = testkit::amqp_config("audit-faults");
    let db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
    let port = free_port();
    let env = service_env(&db, &amqp, "CUSTOMER_API", port, "warn");
    let (_conn, mut events) = testkit::listen(
        &amqp,
        &format!("{}-faults-events", amqp.queue_prefix),
        &["client.created"],
    )
    .await;
    let mut svc = ServiceProcess::start("customer-api", port, &env)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let admin = testkit::token("admin", None, &[Permission::PlatformAdminEditAllCustomers]);
    let created: Value = http
        .post(format!("{}/v1/customers", svc.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "Faults", "type": "business", "bootstrapTenantKey": "faults"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = created["id"].as_str().unwrap().to_string();
    let owner = testkit::token("owner", Some(cid.parse().unwrap()), TENANT_ALL);
    let url = Arc::new(format!("{}/v1/customers/{cid}/clients", svc.base));

    // 40 writes a second for 20 seconds.
    const WRITES: usize = 800;
    let writer = {
        let (http, url, owner) = (http.clone(), url.clone(), owner.clone());
        tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(WRITES);
            let mut tick = tokio::time::interval(Duration::from_millis(25));
            for i in 0..WRITES {
                tick.tick().await;
                let (http, url, owner) = (http.clone(), url.clone(), owner.clone());
                tasks.push(tokio::spawn(
                    async move { write(&http, &url, &owner, i).await },
                ));
            }
            let mut out = Vec::with_capacity(WRITES);
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    kill_9(&mut svc).await;
    svc = ServiceProcess::start("customer-api", port, &env)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    restart_postgres().await;
    let writes = writer.await.unwrap();

    let answered: BTreeMap<String, usize> = writes
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.id.clone().map(|id| (id, i)))
        .collect();
    let failed_then_answered = writes.iter().filter(|w| w.failures > 0).count();
    for (i, w) in writes.iter().enumerate() {
        assert_eq!(w.status, 201, "write {i} ended with {w:?}");
    }
    assert_eq!(answered.len(), WRITES, "every write has its own client");
    assert!(
        failed_then_answered > 0,
        "the faults failed no request: the test did not test"
    );
    let replayed_after_failure = writes
        .iter()
        .filter(|w| w.failures > 0 && w.replayed)
        .count();
    eprintln!(
        "{WRITES} writes: {failed_then_answered} failed (5xx or no answer) before their answer, \
         {replayed_after_failure} of them answered by a replay of a committed first attempt"
    );

    // Every answered write has exactly one client.created event; nothing else was created.
    let mut by_client: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut settle: Option<tokio::time::Instant> = None;
    loop {
        let until = settle.unwrap_or(deadline).min(deadline);
        let Ok(Some(Ok(d))) = tokio::time::timeout_at(until, events.next()).await else {
            break;
        };
        d.ack(BasicAckOptions::default()).await.unwrap();
        let e: Value = serde_json::from_slice(&d.data).unwrap();
        if e["customerid"] != cid.as_str() {
            continue;
        }
        by_client
            .entry(e["subject"].as_str().unwrap().to_string())
            .or_default()
            .insert(e["id"].as_str().unwrap().to_string());
        if by_client.len() == WRITES && settle.is_none() {
            // Wait a little longer for a duplicate that might still come.
            settle = Some(tokio::time::Instant::now() + Duration::from_secs(3));
        }
    }
    let evented: BTreeSet<&String> = by_client.keys().collect();
    let expected: BTreeSet<&String> = answered.keys().collect();
    assert_eq!(evented, expected, "events and answered writes differ");
    for (client, ids) in &by_client {
        assert_eq!(ids.len(), 1, "client {client} has events {ids:?}");
    }
    let mut su = db.superuser().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM clients")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(
        stored as usize, WRITES,
        "a write committed without its answer"
    );

    // No key is locked: every one replays its answer at once.
    for (i, w) in writes.iter().enumerate().step_by(7) {
        let started = Instant::now();
        let res = http
            .post(url.as_str())
            .bearer_auth(&owner)
            .header("Idempotency-Key", format!("write-{i}"))
            .json(&json!({"type": "business", "name": format!("Writer {i}")}))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["id"].as_str(), w.id.as_deref());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let status = svc.terminate().await.unwrap();
    assert!(status.success());
    tests::delete_services_broker_names(
        &["customer-api"],
        &db,
        &amqp,
        &[format!("{}-faults-events", amqp.queue_prefix)],
    )
    .await;
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn errors_answered_with_backtraces_enabled_do_not_load_debug_information() {
    let amqp = testkit::amqp_config("audit-backtrace");
    let db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
    let port = free_port();
    let mut env = service_env(&db, &amqp, "CUSTOMER_API", port, "warn");
    env.push(("RUST_BACKTRACE".into(), "1".into()));
    let svc = ServiceProcess::start("customer-api", port, &env)
        .await
        .unwrap();
    let pid = svc.child.id().unwrap();
    let http = reqwest::Client::new();
    let admin = testkit::token("admin", None, &[Permission::PlatformAdminViewAllCustomers]);
    let list = format!("{}/v1/customers", svc.base);
    for _ in 0..20 {
        http.get(&list).bearer_auth(&admin).send().await.unwrap();
    }
    let before = rss_kib(pid);
    // The database drops every connection (the relay's and the pool's): the relay fails and
    // retries, requests on dead connections are answered 503, all of it logged.
    let mut su = db.superuser().await;
    for _ in 0..3 {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&mut su)
        .await
        .unwrap();
        for _ in 0..20 {
            http.get(&list).bearer_auth(&admin).send().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let after = rss_kib(pid);
    assert!(
        after < before + 30 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    let _ = svc.terminate().await;
    tests::delete_services_broker_names(&["customer-api"], &db, &amqp, &[]).await;
}
