//! Slow and hostile connections, and a database that goes away: what the server answers, and
//! that it lets go of what a client holds.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Platform, TENANT_ALL, assert_problem};

/// Reads what the server sends until it closes the connection or `limit` passes; returns the
/// bytes and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

fn status_and_json(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{text}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let p = Platform::with("audit-slow", |cfg| {
        cfg.http.header_read_timeout_ms = 500;
        cfg.http.body_read_timeout_ms = 500;
        cfg.http.max_connections = 4;
    })
    .await;
    let addr = p.customers.addr;

    // A head that never ends: the connection is closed after the header read timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "a slow head kept its connection");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A body that stops arriving: 408 with a problem document.
    let (cid, owner) = p.customer("slowbody", TENANT_ALL).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/customers/{cid}/clients HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {owner}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\":"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let (raw, _) = read_until_closed(&mut stalled, Duration::from_secs(5)).await;
    let (status, problem) = status_and_json(&raw);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(problem["code"], "REQUEST_TIMEOUT");

    // With every connection taken, a new one waits; once they go, it is served.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = reqwest::Client::new()
        .get(p.customers.url("/health/live"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(waiting.is_err(), "a connection over the cap was served");
    drop(held);
    let served = reqwest::Client::new()
        .get(p.customers.url("/health/live"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
}

#[tokio::test]
async fn long_targets_and_many_headers_get_a_problem_document() {
    let p = Platform::start("audit-heads").await;
    let long = format!("/v1/customers?q={}", "a".repeat(9000));
    let answer = p
        .call(&p.customers, Method::GET, &long, None, None, &[])
        .await;
    assert_problem(&answer, StatusCode::URI_TOO_LONG, "URI_TOO_LONG");
    let mut r = p.http.get(p.customers.url("/health/live"));
    for i in 0..150 {
        r = r.header(format!("x-h{i}"), "v");
    }
    let res = r.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "HEADERS_TOO_LARGE");
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let p = Platform::start("audit-shutdown").await;
    let mut idle = TcpStream::connect(p.customers.addr).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    p.customers.shutdown.cancel();
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert!(closed, "the idle connection was kept open");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_lost_database_connection_is_a_retryable_503() {
    let p = Platform::start("audit-db-lost").await;
    let (cid, owner) = p.customer("dblost", TENANT_ALL).await;
    let roles = format!("/v1/customers/{cid}/roles");
    let burst = || {
        futures_util::future::join_all(
            (0..8).map(|_| p.call(&p.customers, Method::GET, &roles, Some(&owner), None, &[])),
        )
    };
    // Several requests at once, so the pool holds several idle connections.
    for (s, _, _) in burst().await {
        assert_eq!(s, StatusCode::OK);
    }
    // Every connection of the service is closed by the server, as in a database restart.
    let mut admin = p.customers_db.superuser().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    // A request on a dead connection is a retryable 503, never a 500. (The relay may have
    // taken some of the dead ones first, so not every request meets one.)
    let answers = burst().await;
    let unavailable: Vec<_> = answers
        .iter()
        .filter(|(s, _, _)| *s != StatusCode::OK)
        .collect();
    assert!(!unavailable.is_empty(), "no request met a dead connection");
    for answer in unavailable {
        assert_problem(answer, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
        assert_eq!(answer.1["retry-after"], "1");
    }
    // The pool recovers by itself.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, _, _) = p
            .call(&p.customers, Method::GET, &roles, Some(&owner), None, &[])
            .await;
        if s == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the pool did not recover: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readiness_answers_within_its_timeout_when_the_database_is_unreachable() {
    // A database that accepts connections and never answers (a stalled network path).
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = blackhole.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = blackhole.accept().await {
            open.push(s);
        }
    });
    let db = shared_model::testkit::TestDb::new(&(customer_api::SERVICE.migrations)()).await;
    let amqp = shared_model::testkit::amqp_config("audit-ready");
    let amqp_names = amqp.clone();
    let mut cfg = shared_model::testkit::config(&db, amqp, false);
    cfg.database.url =
        shared_model::config::Secret::new(format!("postgres://nobody@127.0.0.1:{port}/none"));
    cfg.database.min_connections = 0;
    cfg.database.acquire_timeout_ms = 5_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(shared_model::service::run(
        &customer_api::SERVICE,
        cfg,
        listener,
        shutdown.clone(),
    ));
    let http = reqwest::Client::new();
    let mut answered = None;
    for _ in 0..100 {
        let started = Instant::now();
        if let Ok(r) = http.get(format!("http://{addr}/health/ready")).send().await {
            answered = Some((
                r.status(),
                started.elapsed(),
                r.json::<Value>().await.unwrap(),
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, took, body) = answered.expect("readiness never answered");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["database"], "down");
    assert!(
        took < Duration::from_millis(1800),
        "readiness took {took:?}"
    );
    shutdown.cancel();
    task.abort();
    hold.abort();
    let _ = task.await;
    tests::delete_services_broker_names(&["customer-api"], &db, &amqp_names, &[]).await;
}
