//! customer-api and org-structure together: a business customer created over customer-api's
//! API gets its HQ in org-structure; a redelivered `customer.created` makes no second one;
//! deleting the customer removes its whole organisation.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit::{self, TestDb};
use tests::{ServiceProcess, free_port, service_env};

use crate::{listen, receive};

/// Polls `url` with `token` until `done` holds for its JSON (10 s at most).
async fn until(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(res) = http.get(url).bearer_auth(token).send().await
            && let Ok(v) = res.json::<Value>().await
            && done(&v)
        {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{url} did not get there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_business_customer_gets_its_hq_once_and_its_deletion_removes_its_organisation() {
    let customers_db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
    let org_db = TestDb::new(&(org_structure::SERVICE.migrations)()).await;
    let amqp = testkit::amqp_config("e2e-org");
    let observer = format!("{}.observer", amqp.queue_prefix);
    let (_conn, mut created_events) = listen(&amqp, &observer, &["customer.created"]).await;
    let (api_port, org_port) = (free_port(), free_port());
    let api = ServiceProcess::start(
        "customer-api",
        api_port,
        &service_env(&customers_db, &amqp, "CUSTOMER_API", api_port, "warn"),
    )
    .await
    .unwrap();
    let org = ServiceProcess::start(
        "org-structure",
        org_port,
        &service_env(&org_db, &amqp, "ORG_STRUCTURE", org_port, "warn"),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let admin = testkit::token(
        "e2e-admin",
        None,
        &[
            Permission::PlatformAdminEditAllCustomers,
            Permission::PlatformAdminViewAllCustomers,
        ],
    );

    let res = http
        .post(format!("{}/v1/customers", api.base))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "Initech", "type": "business", "bootstrapTenantKey": "initech-e2e",
            "address": {"lines": ["4120 Freidrich Ln"], "city": "Austin", "country": "US"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let customer: Value = res.json().await.unwrap();
    let id = customer["id"].as_str().unwrap();
    let hqs = format!("{}/v1/customers/{id}/locations?kind=hq", org.base);
    let page = until(&http, &hqs, &admin, |v| {
        v["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let hq = &page["items"][0];
    assert_eq!(hq["name"], "Initech");
    assert_eq!(hq["derivedFrom"], "customer");
    assert_eq!(hq["address"]["city"], "Austin");

    // The same event again, under a new id as a replayed dead letter carries it (so the
    // consumer's inbox does not catch it): the projection finds it stale and makes no HQ.
    let event = receive(&mut created_events, 1, Duration::from_secs(10))
        .await
        .remove(0);
    let mut again: shared_model::events::CloudEvent = serde_json::from_slice(&event.data).unwrap();
    again.id = shared_model::ids::EventId::new();
    testkit::publish(&amqp, &[again]).await;
    let metrics = format!("{}/metrics", org.base);
    let start = Instant::now();
    loop {
        let text = http
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let stale = text.lines().any(|l| {
            l.starts_with("projection_events_total")
                && l.contains("known_customers")
                && l.contains("outcome=\"stale\"")
        });
        if stale {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the replay was not seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page: Value = http
        .get(&hqs)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    // An organisation to remove: a department and a contact at the HQ.
    for (path, body) in [
        (
            "departments",
            json!({"name": "TPS Reports", "locationId": hq["id"]}),
        ),
        (
            "contacts",
            json!({"type": "account_owner", "lastName": "Lumbergh", "locationId": hq["id"]}),
        ),
    ] {
        let res = http
            .post(format!("{}/v1/customers/{id}/{path}", org.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{path}");
    }

    let res = http
        .delete(format!("{}/v1/customers/{id}", api.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    until(
        &http,
        &format!("{}/v1/customers/{id}/locations", org.base),
        &admin,
        |v| v["code"] == "NOT_FOUND",
    )
    .await;
    let mut su = org_db.superuser().await;
    for table in ["locations", "departments", "contacts"] {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE customer_id = $1"
        )))
        .bind(uuid::Uuid::parse_str(id).unwrap())
        .fetch_one(&mut su)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    let _ = api.terminate().await;
    let _ = org.terminate().await;
    tests::delete_services_broker_names(&["customer-api"], &customers_db, &amqp, &[observer]).await;
    tests::delete_services_broker_names(&["org-structure"], &org_db, &amqp, &[]).await;
}
