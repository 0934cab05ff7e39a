use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::testkit::{self, TestApp};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

fn in_secs(s: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(s))
        .format(&Rfc3339)
        .unwrap()
}

fn deactivation(window: String, reason: &str, score: Option<i64>) -> Value {
    json!({"windowEndsAt": window, "feedback": {"reasonCode": reason, "text": "moving on", "recommendationScore": score, "context": {"plan": "pro"}}})
}

#[tokio::test]
async fn deactivate_keeps_data_readable_refuses_writes_and_reactivates() {
    let ctx = Ctx::new().await;
    let (cid, t, clients) = tenant_setup(&ctx, "life").await;
    let c = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let cloc = format!("{clients}/{}", c["id"].as_str().unwrap());
    let me = format!("/v1/customers/{cid}");

    for (body, field) in [
        (deactivation(in_secs(-10), "other", None), "windowEndsAt"),
        (
            deactivation(in_secs(91 * 86_400), "other", None),
            "windowEndsAt",
        ),
        (
            deactivation(in_secs(3600), "bored", None),
            "feedback.reasonCode",
        ),
        (
            deactivation(in_secs(3600), "other", Some(11)),
            "feedback.recommendationScore",
        ),
        (json!({"windowEndsAt": in_secs(3600)}), "feedback"),
    ] {
        invalid(
            send(
                &ctx,
                Method::POST,
                &format!("{me}/deactivate"),
                &t,
                Some(body),
            )
            .await,
            field,
        )
        .await;
    }
    // The document says int32 0 to 10: an int32 beyond i16 gets that rule, not a type error.
    let e = invalid(
        send(
            &ctx,
            Method::POST,
            &format!("{me}/deactivate"),
            &t,
            Some(deactivation(in_secs(3600), "other", Some(40_000))),
        )
        .await,
        "feedback.recommendationScore",
    )
    .await;
    assert_eq!(e["errors"][0]["rule"], "must be 0 to 10", "{e}");
    let d = ok(
        send(
            &ctx,
            Method::POST,
            &format!("{me}/deactivate"),
            &t,
            Some(deactivation(in_secs(3600), "too_expensive", Some(6))),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["status"], "deactivated");
    assert!(d["windowEndsAt"].is_string());
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("{me}/deactivate"),
            &t,
            Some(deactivation(in_secs(3600), "other", None)),
        )
        .await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;

    // Readable, not writable.
    ok(send(&ctx, Method::GET, &me, &t, None).await, StatusCode::OK).await;
    ok(
        send(&ctx, Method::GET, &cloc, &t, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(&ctx, Method::PATCH, &me, &t, Some(json!({"name": "New"}))).await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &cloc,
            &t,
            Some(json!({"assignee": "x"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("/v1/customers/{cid}/tags"),
            &t,
            Some(json!({"name": "x"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;

    let r = ok(
        send(&ctx, Method::POST, &format!("{me}/reactivate"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(r["status"], "active");
    assert_eq!(r["windowEndsAt"], Value::Null);
    problem(
        send(&ctx, Method::POST, &format!("{me}/reactivate"), &t, None).await,
        StatusCode::CONFLICT,
        "NOT_DEACTIVATED",
    )
    .await;
    ok(
        send(
            &ctx,
            Method::PATCH,
            &cloc,
            &t,
            Some(json!({"assignee": "x"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let events = ctx.events().await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("customer."))
        .collect();
    assert_eq!(
        kinds,
        [
            "customer.created",
            "customer.deactivated",
            "customer.reactivated"
        ]
    );
    let deact = &events
        .iter()
        .find(|(k, _)| k == "customer.deactivated")
        .unwrap()
        .1;
    assert_eq!(deact["data"]["status"], "deactivated");
    assert_eq!(deact["actor"], "editor");

    // The audit trail, for platform admins only.
    let report = ok(
        send(&ctx, Method::GET, "/v1/deactivations", &ctx.admin(), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(report["total"], 1);
    assert_eq!(report["byReason"]["too_expensive"], 1);
    assert_eq!(report["averageRecommendationScore"], 6.0);
    let item = &report["items"][0];
    assert_eq!(item["customerId"], cid);
    assert_eq!(item["requestedBy"], "editor");
    assert_eq!(item["text"], "moving on");
    assert_eq!(item["context"], json!({"plan": "pro"}));
    assert!(item["reactivatedAt"].is_string());
    problem(
        send(&ctx, Method::GET, "/v1/deactivations", &t, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::GET,
            "/v1/deactivations?from=yesterday",
            &ctx.admin(),
            None,
        )
        .await,
        "from",
    )
    .await;

    // Authorization of the lifecycle endpoints.
    let (_, other, _) = tenant_setup(&ctx, "life-2").await;
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("{me}/deactivate"),
            &other,
            Some(deactivation(in_secs(3600), "other", None)),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let viewer = testkit::token(
        "v",
        Some(cid.parse().unwrap()),
        &[shared_model::auth::Permission::ViewCustomer],
    );
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("{me}/deactivate"),
            &viewer,
            Some(deactivation(in_secs(3600), "other", None)),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        ctx.req(Method::POST, &format!("{me}/reactivate"), None)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn reactivation_after_the_window_is_refused() {
    let ctx = Ctx::new().await;
    let (cid, t, _) = tenant_setup(&ctx, "life-late").await;
    let me = format!("/v1/customers/{cid}");
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("{me}/deactivate"),
            &t,
            Some(deactivation(in_secs(1), "not_using", None)),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The purge job of this instance runs every minute, so the customer is still there.
    problem(
        send(&ctx, Method::POST, &format!("{me}/reactivate"), &t, None).await,
        StatusCode::CONFLICT,
        "GRACE_PERIOD_ENDED",
    )
    .await;
}

#[tokio::test]
async fn purge_after_the_window_happens_once_with_two_instances() {
    let ctx = Ctx::new().await;
    let mut cfg = testkit::config(&ctx.db, testkit::amqp_config("customer-api-purge"), false);
    cfg.service = json!({"purge_interval_ms": 100});
    let a = TestApp::spawn(&customer_api::SERVICE, cfg.clone()).await;
    let b = TestApp::spawn(&customer_api::SERVICE, cfg).await;
    let (cid, t, clients) = tenant_setup(&ctx, "life-purge").await;
    ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let (keep, _, _) = tenant_setup(&ctx, "life-keep").await;
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("/v1/customers/{cid}/deactivate"),
            &t,
            Some(deactivation(in_secs(1), "business_closed", None)),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = send(
            &ctx,
            Method::GET,
            &format!("/v1/customers/{cid}"),
            &ctx.admin(),
            None,
        )
        .await;
        if res.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not purged in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let both purgers run a few more rounds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleted: Vec<Value> = ctx
        .events()
        .await
        .into_iter()
        .filter(|(k, _)| k == "customer.deleted")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["subject"], cid);
    assert_eq!(deleted[0]["actor"], "system");
    // The purge's run is a trace of its own.
    let tp = deleted[0]["traceparent"].as_str().unwrap_or_default();
    assert!(
        shared_model::telemetry::TraceContext::parse(tp).is_some(),
        "{}",
        deleted[0]
    );
    // Its clients went with it; the other customer stays; the audit row is marked purged.
    let mut su = ctx.db.superuser().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM clients WHERE customer_id = $1::uuid")
        .bind(&cid)
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(left, 0);
    ok(
        send(
            &ctx,
            Method::GET,
            &format!("/v1/customers/{keep}"),
            &ctx.admin(),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let purged: bool = sqlx::query_scalar(
        "SELECT purged_at IS NOT NULL FROM deactivations WHERE customer_id = $1::uuid",
    )
    .bind(&cid)
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert!(purged);
    a.stop().await;
    b.stop().await;
}
