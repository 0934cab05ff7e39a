//! Answering `snapshot.requested` (the kit's snapshot feature, customer-api's sources):
//! customers, clients with their groups and addresses, in pages of `snapshot.page_size`, one
//! tenant's or all, each request answered once.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::events::snapshot::SNAPSHOT_REQUESTED;
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, events};

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::{Ctx, ok};

/// The answer to snapshot `id` in the outbox once it is complete: (type, data) in order.
async fn answer(ctx: &Ctx, id: &str) -> Vec<(String, Value)> {
    let start = Instant::now();
    loop {
        let events: Vec<(String, Value)> = ctx
            .outbox()
            .await
            .into_iter()
            .filter(|(k, e)| k.starts_with("snapshot.") && e["data"]["snapshotId"] == id)
            .map(|(k, e)| (k, e["data"].clone()))
            .collect();
        if events.iter().any(|(k, _)| k == "snapshot.completed") {
            return events;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no answer yet: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn request(id: &str, customer: Option<&str>) -> shared_model::events::CloudEvent {
    let data = json!({"snapshotId": id, "customerId": customer,
        "entities": ["customer", "client", "client_address", "contact"]});
    let subject_customer: CustomerId = match customer {
        Some(c) => c.parse().unwrap(),
        None => CustomerId::new(),
    };
    let mut e = events::event(
        "/search-sync",
        SNAPSHOT_REQUESTED,
        id,
        subject_customer,
        &data,
    );
    e.customerid = customer.map(|c| c.parse().unwrap());
    e
}

/// Pages of `entity`: their items' ids, and whether each was marked last.
fn pages(answer: &[(String, Value)], entity: &str) -> Vec<(Vec<String>, bool)> {
    answer
        .iter()
        .filter(|(k, d)| k == "snapshot.page" && d["entity"] == entity)
        .map(|(_, d)| {
            let ids = d["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string())
                .collect();
            (ids, d["last"].as_bool().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn a_tenant_snapshot_is_sent_in_pages_once_and_a_platform_one_holds_every_tenant() {
    let ctx = Ctx::with(|c| c.snapshot.page_size = 2).await;
    let (cid, t, clients) = tenant_setup(&ctx, "snap-a").await;
    let mut client_ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        let mut body = acme_client();
        body["name"] = json!(name);
        body["externalId"] = json!(format!("ext-{name}"));
        let c = ok(
            send(&ctx, Method::POST, &clients, &t, Some(body)).await,
            StatusCode::CREATED,
        )
        .await;
        client_ids.push(c["id"].as_str().unwrap().to_string());
    }
    let book = format!("{clients}/{}/addresses", client_ids[0]);
    ok(
        send(
            &ctx,
            Method::POST,
            &book,
            &t,
            Some(json!({"lines": ["1 Main St"], "city": "Springfield"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let groups = format!("/v1/customers/{cid}/groups");
    let g = ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(json!({"name": "Gold", "priority": 1})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let gid = g["id"].as_str().unwrap().to_string();
    let member = format!("{groups}/{gid}/members/{}", client_ids[1]);
    ok(
        send(&ctx, Method::PUT, &member, &t, None).await,
        StatusCode::CREATED,
    )
    .await;
    let (other, t2, other_clients) = tenant_setup(&ctx, "snap-b").await;
    ok(
        send(&ctx, Method::POST, &other_clients, &t2, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;

    // The tenant's snapshot, asked for twice (a redelivery under a new event id).
    let id = uuid::Uuid::now_v7().to_string();
    testkit::publish(
        &ctx.amqp,
        &[request(&id, Some(&cid)), request(&id, Some(&cid))],
    )
    .await;
    let a = answer(&ctx, &id).await;
    let started: Vec<&Value> = a
        .iter()
        .filter(|(k, _)| k == "snapshot.started")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(started.len(), 1, "answered once: {a:?}");
    assert_eq!(
        started[0]["counts"],
        json!([{"entity": "customer", "count": 1}, {"entity": "client", "count": 3},
            {"entity": "client_address", "count": 1}]),
        "what customer-api owns of what was asked"
    );
    assert_eq!(started[0]["source"], "customer-api");
    assert_eq!(pages(&a, "customer"), vec![(vec![cid.clone()], true)]);
    let mut sorted = client_ids.clone();
    sorted.sort();
    let client_pages = pages(&a, "client");
    assert_eq!(
        client_pages,
        vec![(sorted[..2].to_vec(), false), (sorted[2..].to_vec(), true)],
        "pages of two in key order"
    );
    let items: Vec<Value> = a
        .iter()
        .filter(|(k, d)| k == "snapshot.page" && d["entity"] == "client")
        .flat_map(|(_, d)| d["items"].as_array().unwrap().clone())
        .collect();
    let gold = items
        .iter()
        .find(|i| i["id"] == client_ids[1].as_str())
        .unwrap();
    assert_eq!(gold["groups"], json!([gid]));
    assert_eq!(gold["name"], "Two", "a client as its events carry it");
    assert_eq!(pages(&a, "client_address").len(), 1);
    let sequences: Vec<i64> = a
        .iter()
        .filter(|(k, d)| k == "snapshot.page" && d["entity"] == "client")
        .map(|(_, d)| d["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2]);
    let (last, completed) = a.last().unwrap();
    assert_eq!(last, "snapshot.completed", "after every page");
    assert_eq!(completed["counts"], started[0]["counts"]);
    assert!(a.iter().all(|(_, d)| d["customerId"] == cid.as_str()));

    // The whole platform: both tenants.
    let all = uuid::Uuid::now_v7().to_string();
    testkit::publish(&ctx.amqp, &[request(&all, None)]).await;
    let a = answer(&ctx, &all).await;
    let customers: Vec<String> = pages(&a, "customer")
        .into_iter()
        .flat_map(|(ids, _)| ids)
        .collect();
    let mut both = vec![cid.clone(), other.clone()];
    both.sort();
    assert_eq!(customers, both);
    let (_, completed) = a.last().unwrap();
    assert_eq!(
        completed["counts"][1],
        json!({"entity": "client", "count": 4})
    );
    assert_eq!(completed["customerId"], Value::Null);
}
