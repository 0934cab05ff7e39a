use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::events::CloudEvent;
use shared_model::events::customer as ev;
use shared_model::ids::CustomerId;
use shared_model::testkit;

use crate::{Ctx, ok, problem};

/// A `customer.*` event as customer-api publishes it.
fn customer_event(
    kind: shared_model::events::EventType,
    id: CustomerId,
    status: &str,
    version: i64,
) -> CloudEvent {
    let data = json!({
        "id": id, "name": "Acme", "type": "business", "email": null, "phone": null,
        "website": null, "address": null, "locale": null, "businessProfile": null,
        "sessionExpirationSeconds": null, "bootstrapTenantKey": format!("k-{id}"),
        "products": [], "status": status, "parentCustomerId": null, "parentClientId": null,
        "deactivatedAt": null, "windowEndsAt": null, "logo": null, "version": version,
        "createdAt": "2026-01-01T00:00:00Z", "createdBy": "admin",
        "updatedAt": "2026-01-01T00:00:00Z", "updatedBy": "admin"
    });
    CloudEvent::new("/customer-api", kind, id, Some(id), "admin", None, &data).unwrap()
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} did not happen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn customer_lifecycle_cascades_onto_partitions_and_keys() {
    let ctx = Ctx::new().await;
    let id = CustomerId::new();
    let t = testkit::token("tenant-admin", Some(id), &[Permission::ManagePartitions]);
    let partitions = format!("/v1/customers/{id}/partitions");

    // Unknown until its creation event arrives.
    problem(
        ctx.send(
            Method::POST,
            &partitions,
            &t,
            Some(json!({"name": "Live", "environment": "prod"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    testkit::publish(&ctx.amqp, &[customer_event(ev::CREATED, id, "active", 1)]).await;
    wait_for("the projection", async || {
        ctx.send(Method::GET, &partitions, &t, None).await.status() == StatusCode::OK
            && ctx
                .send(
                    Method::POST,
                    &partitions,
                    &t,
                    Some(json!({"name": "Live", "environment": "prod"})),
                )
                .await
                .status()
                == StatusCode::CREATED
    })
    .await;
    let live = ok(
        ctx.send(Method::GET, &partitions, &t, None).await,
        StatusCode::OK,
    )
    .await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let keys = format!("{partitions}/{live}/keys");
    let secret = ok(
        ctx.send(
            Method::POST,
            &keys,
            &t,
            Some(json!({"name": "k", "kind": "admin"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ctx.verify(&secret).await["valid"], true);

    // Deactivation: every key fails verification within a second, and is announced expired.
    testkit::publish(
        &ctx.amqp,
        &[customer_event(ev::DEACTIVATED, id, "deactivated", 2)],
    )
    .await;
    let took = wait_for("keys failing", async || {
        ctx.verify(&secret).await["valid"] == false
    })
    .await;
    assert!(took < Duration::from_millis(1500), "{took:?}");
    wait_for("apikey.expired", async || {
        ctx.outbox()
            .await
            .iter()
            .any(|(k, _)| k == "apikey.expired")
    })
    .await;
    problem(
        ctx.send(
            Method::POST,
            &keys,
            &t,
            Some(json!({"name": "k2", "kind": "admin"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;
    // A stale event (older version) changes nothing.
    testkit::publish(&ctx.amqp, &[customer_event(ev::UPDATED, id, "active", 1)]).await;

    // Reactivation: partitions are usable again; expired keys stay expired.
    testkit::publish(
        &ctx.amqp,
        &[customer_event(ev::REACTIVATED, id, "active", 3)],
    )
    .await;
    wait_for("reactivation", async || {
        ctx.send(
            Method::POST,
            &keys,
            &t,
            Some(json!({"name": "k3", "kind": "admin"})),
        )
        .await
        .status()
            == StatusCode::CREATED
    })
    .await;
    assert_eq!(ctx.verify(&secret).await["valid"], false);

    // Deletion: partitions go, each with partition.deleted; keys expire.
    ok(
        ctx.send(
            Method::POST,
            &partitions,
            &t,
            Some(json!({"name": "Test", "environment": "qa"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // The deletion arrives in a trace; what reacts to it continues that trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut deleted = customer_event(ev::DELETED, id, "active", 4);
    deleted.traceparent = Some(format!("00-{trace}-00f067aa0ba902b7-01"));
    testkit::publish(&ctx.amqp, &[deleted]).await;
    wait_for("partitions deleted", async || {
        ctx.outbox()
            .await
            .iter()
            .filter(|(k, _)| k == "partition.deleted")
            .count()
            == 2
    })
    .await;
    for (_, e) in ctx
        .outbox()
        .await
        .iter()
        .filter(|(k, _)| k == "partition.deleted")
    {
        let tp = e["traceparent"].as_str().unwrap_or_default();
        assert!(tp.starts_with(&format!("00-{trace}-")), "{e}");
        assert!(!tp.contains("00f067aa0ba902b7"), "a span of its own: {tp}");
    }
    let mut su = ctx.db.superuser().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM partitions")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let live_keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(live_keys, 0);
}

#[tokio::test]
async fn a_deleted_customer_stays_deleted_when_stale_events_arrive_after_it() {
    let ctx = Ctx::new().await;
    let id = CustomerId::new();
    let t = testkit::token("tenant-admin", Some(id), &[Permission::ManagePartitions]);
    let partitions = format!("/v1/customers/{id}/partitions");
    let created = customer_event(ev::CREATED, id, "active", 1);
    testkit::publish(&ctx.amqp, std::slice::from_ref(&created)).await;
    wait_for("creation", async || {
        ctx.send(Method::GET, &partitions, &t, None).await.status() == StatusCode::OK
    })
    .await;
    ok(
        ctx.send(
            Method::POST,
            &format!("/v1/customers/{id}/partition-groups"),
            &t,
            Some(json!({"name": "Regions"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    testkit::publish(&ctx.amqp, &[customer_event(ev::DELETED, id, "active", 3)]).await;
    wait_for("deletion", async || {
        ctx.send(Method::GET, &partitions, &t, None).await.status() == StatusCode::NOT_FOUND
    })
    .await;

    // An update older than the deletion, and the creation published again under a new event
    // id (as a replayed dead letter would be): both are stale against the tombstone.
    let stale = customer_event(ev::UPDATED, id, "active", 2);
    let mut replayed = created.clone();
    replayed.id = shared_model::ids::EventId::new();
    testkit::publish(&ctx.amqp, &[stale.clone(), replayed.clone()]).await;
    let mut su = ctx.db.superuser().await;
    wait_for("the stale events to be consumed", async || {
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = ANY($1)")
            .bind(vec![stale.id.0, replayed.id.0])
            .fetch_one(&mut su)
            .await
            .unwrap();
        seen == 2
    })
    .await;
    problem(
        ctx.send(Method::GET, &partitions, &t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        ctx.send(
            Method::POST,
            &partitions,
            &t,
            Some(json!({"name": "Live", "environment": "prod"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let groups: i64 = sqlx::query_scalar("SELECT count(*) FROM partition_groups")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(groups, 0, "the customer's partition groups went with it");
}
