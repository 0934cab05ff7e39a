use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit::{self, TestApp};

use crate::fixtures::{CLIENT_PERMS, acme_client, send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

fn far_window() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn client(ctx: &Ctx, t: &str, clients: &str, name: &str) -> String {
    let c = ok(
        send(
            ctx,
            Method::POST,
            clients,
            t,
            Some(json!({"type": "business", "name": name})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    c["id"].as_str().unwrap().to_string()
}

async fn provision(ctx: &Ctx, t: &str, clients: &str, client: &str, key: &str) -> String {
    let p = ok(
        send(
            ctx,
            Method::POST,
            &format!("{clients}/{client}/provision"),
            t,
            Some(json!({"bootstrapTenantKey": key, "products": ["shop"]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    p["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn provisioning_links_both_ways_once() {
    let ctx = Ctx::new().await;
    let (rid, t, clients) = tenant_setup(&ctx, "prov").await;
    let c = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let cid = c["id"].as_str().unwrap();
    let path = format!("{clients}/{cid}/provision");

    invalid(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"bootstrapTenantKey": "x"})),
        )
        .await,
        "bootstrapTenantKey",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"bootstrapTenantKey": "sub-1", "products": ["BAD"]})),
        )
        .await,
        "products[0]",
    )
    .await;

    let res = send(
        &ctx,
        Method::POST,
        &path,
        &t,
        Some(json!({"bootstrapTenantKey": "sub-1", "products": ["shop"]})),
    )
    .await;
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let sub = ok(res, StatusCode::CREATED).await;
    let sid = sub["id"].as_str().unwrap();
    assert_eq!(loc, format!("/v1/customers/{sid}"));
    assert_eq!(sub["parentCustomerId"], rid);
    assert_eq!(sub["parentClientId"], cid);
    assert_eq!(sub["name"], "Globex");
    assert_eq!(sub["type"], "business");
    assert_eq!(sub["businessProfile"]["externalId"], Value::Null);
    let c = ok(
        send(&ctx, Method::GET, &format!("{clients}/{cid}"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(c["provisionedCustomerId"], sid);
    // The new customer is its own tenant, with default roles.
    let own = testkit::token("sub-admin", Some(sid.parse().unwrap()), CLIENT_PERMS);
    let roles = ok(
        send(
            &ctx,
            Method::GET,
            &format!("/v1/customers/{sid}/roles"),
            &own,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(roles["items"].as_array().unwrap().len(), 3);
    problem(
        send(&ctx, Method::GET, &format!("/v1/customers/{sid}"), &t, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;

    problem(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"bootstrapTenantKey": "sub-2"})),
        )
        .await,
        StatusCode::CONFLICT,
        "ALREADY_PROVISIONED",
    )
    .await;

    // Concurrent attempts yield one account.
    let c2 = client(&ctx, &t, &clients, "Initech").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let req = ctx
            .req(Method::POST, &format!("{clients}/{c2}/provision"), Some(&t))
            .json(&json!({"bootstrapTenantKey": format!("race-{i}")}));
        tasks.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        5,
        "{statuses:?}"
    );
    let mut su = ctx.db.superuser().await;
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers WHERE parent_client_id = $1::uuid")
            .bind(&c2)
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert_eq!(n, 1);

    // Authorization: another tenant, a client-bound token, a viewer.
    let (_, other, _) = tenant_setup(&ctx, "prov-2").await;
    problem(
        send(
            &ctx,
            Method::POST,
            &path,
            &other,
            Some(json!({"bootstrapTenantKey": "sub-9"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let bound = testkit::client_token(
        "u",
        rid.parse::<CustomerId>().unwrap(),
        cid.parse::<ClientId>().unwrap(),
        CLIENT_PERMS,
    );
    problem(
        send(
            &ctx,
            Method::POST,
            &path,
            &bound,
            Some(json!({"bootstrapTenantKey": "sub-9"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let viewer = testkit::token("v", Some(rid.parse().unwrap()), &[Permission::ViewClient]);
    problem(
        send(
            &ctx,
            Method::POST,
            &path,
            &viewer,
            Some(json!({"bootstrapTenantKey": "sub-9"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    let kinds: Vec<String> = ctx.events().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "customer.created").count(), 4);
}

async fn wait_status(ctx: &Ctx, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = ok(
            send(
                ctx,
                Method::GET,
                &format!("/v1/customers/{id}"),
                &ctx.admin(),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        if c["status"] == status {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "customer {id} never became {status}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets in-flight cascades settle, then checks a customer's status has not changed.
async fn still(ctx: &Ctx, id: &str, status: &str) {
    tokio::time::sleep(Duration::from_millis(700)).await;
    let c = ok(
        send(
            ctx,
            Method::GET,
            &format!("/v1/customers/{id}"),
            &ctx.admin(),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(c["status"], status, "{c}");
}

#[tokio::test]
async fn cascades_over_rabbitmq_follow_the_hierarchy() {
    let ctx = Ctx::new().await;
    // A second instance with the relay on: events reach RabbitMQ and come back to the
    // cascade consumer.
    let relay = TestApp::spawn(
        &customer_api::SERVICE,
        testkit::config(&ctx.db, ctx.amqp.clone(), true),
    )
    .await;
    let (rid, t, clients) = tenant_setup(&ctx, "casc").await;
    let c1 = client(&ctx, &t, &clients, "One").await;
    let c2 = client(&ctx, &t, &clients, "Two").await;
    let c3 = client(&ctx, &t, &clients, "Three").await;
    let p1 = provision(&ctx, &t, &clients, &c1, "casc-1").await;
    let p2 = provision(&ctx, &t, &clients, &c2, "casc-2").await;
    let p3 = provision(&ctx, &t, &clients, &c3, "casc-3").await;
    // A sub-tenant of P2, to see the cascade recurse.
    let p2_token = testkit::token("p2-admin", Some(p2.parse().unwrap()), CLIENT_PERMS);
    let p2_clients = format!("/v1/customers/{p2}/clients");
    let c21 = client(&ctx, &p2_token, &p2_clients, "Two-One").await;
    let p21 = provision(&ctx, &p2_token, &p2_clients, &c21, "casc-21").await;
    // P3 leaves on its own.
    let p3_token = testkit::token("p3-admin", Some(p3.parse().unwrap()), CLIENT_PERMS);
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("/v1/customers/{p3}/deactivate"),
            &p3_token,
            Some(json!({"windowEndsAt": far_window(), "feedback": {"reasonCode": "not_using"}})),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    // Disabling a client deactivates its provisioned customer.
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("{clients}/{c1}/disable"),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    wait_status(&ctx, &p1, "deactivated").await;

    // Deactivating the reseller deactivates its sub-tenants, recursively.
    ok(
        send(&ctx, Method::POST, &format!("/v1/customers/{rid}/deactivate"), &t, Some(json!({"windowEndsAt": far_window(), "feedback": {"reasonCode": "switched_provider", "recommendationScore": 3}}))).await,
        StatusCode::OK,
    )
    .await;
    wait_status(&ctx, &p2, "deactivated").await;
    wait_status(&ctx, &p21, "deactivated").await;

    // Reactivating it restores exactly those the cascade deactivated.
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("/v1/customers/{rid}/reactivate"),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    wait_status(&ctx, &p2, "active").await;
    wait_status(&ctx, &p21, "active").await;
    still(&ctx, &p1, "deactivated").await;
    still(&ctx, &p3, "deactivated").await;

    // Enabling the client brings its account back.
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("{clients}/{c1}/enable"),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    wait_status(&ctx, &p1, "active").await;

    // Deleting a client detaches and deactivates its account; the data stays.
    assert_eq!(
        send(&ctx, Method::DELETE, &format!("{clients}/{c2}"), &t, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let p2_now = wait_status(&ctx, &p2, "deactivated").await;
    assert_eq!(p2_now["parentCustomerId"], Value::Null);
    assert_eq!(p2_now["parentClientId"], Value::Null);
    ok(
        send(
            &ctx,
            Method::GET,
            &format!("{p2_clients}/{c21}"),
            &p2_token,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;

    // The cascades are in the audit trail with their cause.
    let report = ok(
        send(
            &ctx,
            Method::GET,
            "/v1/deactivations?reasonCode=cascade",
            &ctx.admin(),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let causes: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["cause"].as_str().unwrap())
        .collect();
    assert!(
        causes.contains(&format!("client:{c1}").as_str()),
        "{causes:?}"
    );
    assert!(
        causes.contains(&format!("customer:{rid}").as_str()),
        "{causes:?}"
    );
    assert!(
        causes.contains(&format!("customer:{p2}").as_str()),
        "{causes:?}"
    );
    relay.stop().await;
}
