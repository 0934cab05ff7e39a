use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::testkit;

use crate::fixtures::{CLIENT_PERMS, send};
use crate::ok;
use crate::{Ctx, consumer};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Clone, Debug)]
struct Attempt {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    accepted: bool,
}

/// A webhook receiver that refuses its first `fail` requests.
async fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<Attempt>>>) {
    let seen: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/claims",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                let accepted = log.len() >= fail;
                let h = |n: &str| {
                    headers
                        .get(n)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                log.push(Attempt {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signature: h("webhook-signature"),
                    body: body.to_vec(),
                    accepted,
                });
                if accepted {
                    AxumStatus::NO_CONTENT
                } else {
                    AxumStatus::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/claims"), seen)
}

fn verify(a: &Attempt) {
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", a.id, a.timestamp).as_bytes());
    mac.update(&a.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(a.signature, format!("v1,{expected}"));
    let ts: i64 = a.timestamp.parse().unwrap();
    assert!((time::OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 60);
}

fn delivered_versions(seen: &Arc<Mutex<Vec<Attempt>>>) -> Vec<i64> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|a| a.accepted)
        .map(|a| {
            serde_json::from_slice::<Value>(&a.body).unwrap()["version"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

async fn wait_versions(seen: &Arc<Mutex<Vec<Attempt>>>, want: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered_versions(seen) != want {
        assert!(
            Instant::now() < deadline,
            "delivered {:?}, want {want:?}",
            delivered_versions(seen)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn claims_reach_the_webhook_signed_once_per_version_in_order() {
    let (url, seen) = receiver(2).await;
    let ctx = Ctx::with(|cfg| {
        cfg.outbox.enabled = true;
        cfg.service = json!({
            "claims_webhook_url": url, "claims_webhook_secret": SECRET,
            "claims_retry_base_ms": 100, "claims_poll_ms": 50
        });
    })
    .await;
    let queue = format!("{}.claims-listener", ctx.amqp.queue_prefix);
    let (_conn, mut listener) =
        testkit::listen(&ctx.amqp, &queue, &["customer.claims_changed"]).await;
    let c = ctx.create(consumer("claims-1", "Claimant")).await;
    let id = c["id"].as_str().unwrap().to_string();

    // Version 1 arrives after two refused attempts, all under one webhook-id.
    wait_versions(&seen, &[1]).await;
    {
        let log = seen.lock().unwrap();
        assert_eq!(log.len(), 3);
        assert!(
            log.iter()
                .all(|a| a.id == log[0].id && a.id.starts_with("msg_"))
        );
        log.iter().for_each(verify);
        let doc: Value = serde_json::from_slice(&log[2].body).unwrap();
        assert_eq!(doc["customerId"], id);
        assert_eq!(doc["products"], json!([]));
        assert_eq!(doc["sessionExpirationSeconds"], Value::Null);
        let roles: Vec<&str> = doc["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["ClientEditor", "ClientViewer", "TenantAdmin"]);
    }

    // A change that leaves the document as it was sends nothing.
    let me = format!("/v1/customers/{id}");
    ok(
        send(
            &ctx,
            Method::PATCH,
            &me,
            &ctx.admin(),
            Some(json!({"name": "Renamed"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut su = ctx.db.superuser().await;
    let unchanged: i64 =
        sqlx::query_scalar("SELECT version FROM claims_documents WHERE customer_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert_eq!(unchanged, 1);
    assert_eq!(delivered_versions(&seen), [1]);
    // Products, then roles.
    ok(
        send(
            &ctx,
            Method::PATCH,
            &me,
            &ctx.admin(),
            Some(json!({"products": ["shop", "crm"]})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let t = testkit::token("admin", Some(id.parse().unwrap()), CLIENT_PERMS);
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("{me}/roles"),
            &t,
            Some(json!({"name": "Auditor", "permissions": ["ViewClient"]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // The reaction reads the current state, so changes that land close together may share a
    // version; whatever the grouping, the newest document arrives and versions only go up.
    let last_accepted = || -> Option<Value> {
        let log = seen.lock().unwrap();
        log.iter()
            .rev()
            .find(|a| a.accepted)
            .map(|a| serde_json::from_slice(&a.body).unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = last_accepted().unwrap();
        if last["products"] == json!(["crm", "shop"])
            && last["roles"].as_array().unwrap().len() == 4
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "delivered {:?}",
            delivered_versions(&seen)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let current: i64 =
        sqlx::query_scalar("SELECT version FROM claims_documents WHERE customer_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert!((2..=3).contains(&current), "{current}");
    let v = delivered_versions(&seen);
    assert_eq!(v.first(), Some(&1));
    assert_eq!(v.last(), Some(&current));
    assert!(
        v.windows(2).all(|w| w[0] < w[1]),
        "out of order or repeated: {v:?}"
    );
    seen.lock().unwrap().iter().for_each(verify);

    // Every version is published, in order.
    let versions: Vec<i64> =
        testkit::receive(&mut listener, current as usize, Duration::from_secs(10))
            .await
            .iter()
            .map(|d| {
                serde_json::from_slice::<Value>(&d.data).unwrap()["data"]["version"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
    assert_eq!(versions, (1..=current).collect::<Vec<_>>());
    testkit::delete_queues(&ctx.amqp, &[queue]).await;
}

#[tokio::test]
async fn without_a_webhook_claims_changes_are_only_published() {
    let ctx = Ctx::with(|cfg| cfg.outbox.enabled = true).await;
    ctx.create(consumer("claims-2", "Quiet")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut su = ctx.db.superuser().await;
        let docs: i64 = sqlx::query_scalar("SELECT count(*) FROM claims_documents")
            .fetch_one(&mut su)
            .await
            .unwrap();
        if docs == 1 {
            let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM claims_deliveries")
                .fetch_one(&mut su)
                .await
                .unwrap();
            assert_eq!(deliveries, 0);
            break;
        }
        assert!(Instant::now() < deadline, "no claims document");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
