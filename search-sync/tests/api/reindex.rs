//! `/v1/reindexes`: a tenant's index rebuilt from snapshot pages (here published as customer-api
//! and org-structure would), switched in without losing what events wrote meanwhile.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::events::snapshot::{SNAPSHOT_PAGE, SNAPSHOT_STARTED};
use shared_model::events::{CloudEvent, EventType};
use shared_model::ids::{ClientId, ContactId, CustomerId, GroupId};
use shared_model::testkit::{self, Client, events};

use crate::{Ctx, document};
use search_sync::index::Kind;

fn admin(ctx: &Ctx) -> Client {
    ctx.client().as_user(&testkit::token(
        "admin",
        None,
        &[Permission::PlatformAdminSearchAllCustomers],
    ))
}

fn answer(source: &str, kind: EventType, id: &str, c: CustomerId, data: Value) -> CloudEvent {
    events::event(source, kind, id, c, &data)
}

fn page(source: &str, id: &str, c: CustomerId, entity: &str, items: Vec<Value>) -> CloudEvent {
    let data = json!({"snapshotId": id, "source": source, "customerId": c, "entity": entity,
        "sequence": 1, "items": items, "last": true});
    answer(source, SNAPSHOT_PAGE, id, c, data)
}

async fn until_done(c: &Client, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let r: Value = c
            .send::<Value>(Method::GET, &format!("/v1/reindexes/{id}"), None)
            .await
            .expect(StatusCode::OK);
        if r["state"] != "running" {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_tenant_is_rebuilt_from_snapshots_and_what_events_wrote_meanwhile_is_kept() {
    let ctx = Ctx::new().await;
    let admin = admin(&ctx);
    let c = CustomerId::new();
    let (kept, gone, later) = (ClientId::new(), ClientId::new(), ClientId::new());
    let (p, g) = (ContactId::new(), GroupId::new());
    let other = CustomerId::new();
    let doc = |kind, id, client, name: &str| document(kind, id, c, client, name);
    ctx.index(&[
        doc(Kind::Customer, c.as_uuid(), None, "Old Name"),
        doc(Kind::Client, kept.as_uuid(), Some(kept), "Kept"),
        // No owning service has it any more: its deletion was lost.
        doc(Kind::Client, gone.as_uuid(), Some(gone), "Gone"),
        // Another tenant's: outside the reindex.
        document(Kind::Customer, other.as_uuid(), other, None, "Other"),
    ])
    .await;

    let started: Value = admin
        .send(
            Method::POST,
            "/v1/reindexes",
            Some(&json!({"customerId": c})),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["state"], "running");
    assert_eq!(started["customerId"], json!(c));
    let entities: Vec<&str> = started["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entity"].as_str().unwrap())
        .collect();
    assert_eq!(
        entities,
        ["customer", "client", "client_address", "contact"]
    );
    let outbox = ctx.outbox().await;
    let (kind, event) = outbox.last().unwrap();
    assert_eq!(kind, "snapshot.requested");
    let data = &event["data"];
    assert_eq!(data["snapshotId"], id.as_str());
    assert_eq!(data["customerId"], json!(c));

    // One at a time.
    let again = admin
        .send(Method::POST, "/v1/reindexes", Some(&json!({})))
        .await
        .expect_problem(StatusCode::CONFLICT, "REINDEX_RUNNING");
    assert!(again["detail"].as_str().unwrap().contains(&id), "{again}");

    // Events keep applying while the snapshots arrive: a client created and one updated
    // past the version its snapshot will carry.
    let mut newer = doc(Kind::Client, kept.as_uuid(), Some(kept), "Newer");
    newer.version = 3;
    ctx.index(&[doc(Kind::Client, later.as_uuid(), Some(later), "Later")])
        .await;
    {
        use search_sync::index::SearchBackend;
        let mut tx = shared_model::db::begin(&ctx.db.pool, shared_model::db::Scope::System)
            .await
            .unwrap();
        assert!(
            search_sync::index::postgres::Postgres::upsert(&mut tx, &newer)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();
    }

    let mut customer = events::customer_data(c, 2);
    customer["name"] = json!("Renamed");
    let mut client = events::client_data(c, kept, 2);
    client["name"] = json!("Kept v2");
    client["groups"] = json!([g]);
    let contact = events::contact_data(c, Some(kept), p, 1);
    testkit::publish(
        &ctx.amqp,
        &[
            answer(
                "/customer-api",
                SNAPSHOT_STARTED,
                &id,
                c,
                json!({"snapshotId": id,
                "source": "customer-api", "customerId": c, "counts": json!([
                    {"entity": "customer", "count": 1}, {"entity": "client", "count": 1},
                    {"entity": "client_address", "count": 0}])}),
            ),
            answer(
                "/org-structure",
                SNAPSHOT_STARTED,
                &id,
                c,
                json!({"snapshotId": id,
                "source": "org-structure", "customerId": c,
                "counts": [{"entity": "contact", "count": 1}]}),
            ),
            page("customer-api", &id, c, "customer", vec![customer]),
            page("customer-api", &id, c, "client", vec![client]),
            page("customer-api", &id, c, "client_address", vec![]),
            page("org-structure", &id, c, "contact", vec![contact]),
        ],
    )
    .await;

    let done = until_done(&admin, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["received"], 3);
    assert_eq!(done["expected"], 3);
    assert_eq!(done["removed"], 1, "{done}");
    assert_eq!(done["etaSeconds"], Value::Null);
    assert!(done["completedAt"].is_string());

    let by_id = |id: uuid::Uuid| {
        let ctx = &ctx;
        async move { ctx.document(id).await.unwrap() }
    };
    let cd = by_id(c.as_uuid()).await;
    assert_eq!(
        (cd.name.as_str(), cd.version),
        ("Renamed", 2),
        "the snapshot's newer state"
    );
    let kd = by_id(kept.as_uuid()).await;
    assert_eq!(
        (kd.name.as_str(), kd.version),
        ("Newer", 3),
        "the live, newer state"
    );
    assert!(
        by_id(gone.as_uuid()).await.deleted,
        "no source has it: a tombstone"
    );
    assert!(
        !by_id(later.as_uuid()).await.deleted,
        "written by an event meanwhile"
    );
    let pd = by_id(p.as_uuid()).await;
    assert_eq!((pd.kind.as_str(), pd.deleted), ("contact", false));
    let od = by_id(other.as_uuid()).await;
    assert_eq!(
        (od.name.as_str(), od.deleted),
        ("Other", false),
        "another tenant's"
    );

    // A new reindex may start now; a late page of the finished one changes nothing.
    let mut stale = events::customer_data(c, 9);
    stale["name"] = json!("Late");
    testkit::publish(
        &ctx.amqp,
        &[page("customer-api", &id, c, "customer", vec![stale])],
    )
    .await;
    let next: Value = admin
        .send(Method::POST, "/v1/reindexes", Some(&json!({})))
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(next["customerId"], Value::Null);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(by_id(c.as_uuid()).await.name, "Renamed");
}

#[tokio::test]
async fn reindexes_are_for_platform_admins_and_bodies_are_checked() {
    let ctx = Ctx::new().await;
    let admin = admin(&ctx);
    let anonymous = ctx.client();
    anonymous
        .send(Method::POST, "/v1/reindexes", Some(&json!({})))
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
    let c = CustomerId::new();
    let tenant = ctx.client().as_user(&testkit::token(
        "tenant",
        Some(c),
        &[Permission::SearchTenants, Permission::ViewClient],
    ));
    tenant
        .send(
            Method::POST,
            "/v1/reindexes",
            Some(&json!({"customerId": c})),
        )
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    admin
        .send(
            Method::POST,
            "/v1/reindexes",
            Some(&json!({"customerId": "nope"})),
        )
        .await
        .expect_invalid("customerId");
    admin
        .send(Method::POST, "/v1/reindexes", Some(&json!({"all": true})))
        .await
        .expect_invalid("all");
    let started: Value = admin
        .send(Method::POST, "/v1/reindexes", Some(&json!({})))
        .await
        .expect(StatusCode::ACCEPTED);
    let path = format!("/v1/reindexes/{}", started["id"].as_str().unwrap());
    tenant
        .send::<Value>(Method::GET, &path, None)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    let got: Value = admin
        .send::<Value>(Method::GET, &path, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(got["state"], "running");
    assert_eq!(got["expected"], Value::Null, "no source has answered");
    admin
        .send::<Value>(
            Method::GET,
            &format!("/v1/reindexes/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn a_part_is_done_only_once_every_page_up_to_its_last_has_arrived() {
    let ctx = Ctx::new().await;
    let admin = admin(&ctx);
    let c = CustomerId::new();
    let started: Value = admin
        .send(
            Method::POST,
            "/v1/reindexes",
            Some(&json!({"customerId": c})),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let id = started["id"].as_str().unwrap().to_string();
    let numbered = |entity: &str, sequence: i64, last: bool, items: Vec<Value>| {
        let data = json!({"snapshotId": id, "source": "customer-api", "customerId": c,
            "entity": entity, "sequence": sequence, "items": items, "last": last});
        answer("/customer-api", SNAPSHOT_PAGE, &id, c, data)
    };
    let client = |k: ClientId| {
        let mut data = events::client_data(c, k, 1);
        data["groups"] = json!([]);
        data
    };
    let (one, two) = (ClientId::new(), ClientId::new());
    // Another replica applied the clients' last page before their first.
    let early = vec![
        numbered("customer", 1, true, vec![events::customer_data(c, 1)]),
        numbered("client", 2, true, vec![client(two)]),
        numbered("client_address", 1, true, vec![]),
        page("org-structure", &id, c, "contact", vec![]),
    ];
    testkit::publish(&ctx.amqp, &early).await;
    ctx.consumed(&early).await;
    let path = format!("/v1/reindexes/{id}");
    let r: Value = admin
        .send::<Value>(Method::GET, &path, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r["state"], "running", "the clients' page 1 is missing: {r}");
    testkit::publish(
        &ctx.amqp,
        &[numbered("client", 1, false, vec![client(one)])],
    )
    .await;
    let done = until_done(&admin, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["received"], 3);
    for k in [one, two] {
        let d = ctx.document(k.as_uuid()).await;
        assert!(d.is_some_and(|d| !d.deleted), "client {k} indexed");
    }
}

#[tokio::test]
async fn a_retried_start_with_its_idempotency_key_gets_the_first_answer() {
    let ctx = Ctx::new().await;
    let token = testkit::token(
        "admin",
        None,
        &[Permission::PlatformAdminSearchAllCustomers],
    );
    let start = || {
        ctx.req(Method::POST, "/v1/reindexes", Some(&token))
            .header("idempotency-key", "reindex-once")
            .json(&json!({}))
    };
    let first = start().send().await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let again = start().send().await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED, "replayed, not 409");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let requested = ctx
        .outbox()
        .await
        .into_iter()
        .filter(|(k, _)| k == "snapshot.requested")
        .count();
    assert_eq!(requested, 1, "one request published");
}
