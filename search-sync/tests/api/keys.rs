//! `/v1/search-keys` and searching with a key: kinds, narrowing filters, origins and CORS, rate
//! limits, revocation on every replica, and a deleted customer's keys.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::events::customer as cu;
use shared_model::testkit::{self, Client, TestApp, events};

use crate::search::{World, names, sorted};

const SHOP: &str = "https://shop.example";

fn admin(w: &World) -> Client {
    w.ctx.client().as_user(&testkit::token(
        "admin",
        None,
        &[Permission::PlatformAdminSearchAllCustomers],
    ))
}

/// Creates a key; (its id, its secret).
async fn create(c: &Client, body: Value) -> (String, String) {
    let issued: Value = c
        .send(Method::POST, "/v1/search-keys", Some(&body))
        .await
        .expect(StatusCode::CREATED);
    (
        issued["key"]["id"].as_str().unwrap().to_string(),
        issued["secret"].as_str().unwrap().to_string(),
    )
}

/// A search with `secret` from `origin`: (status, headers, body).
async fn search_with(
    base: &str,
    secret: &str,
    origin: Option<&str>,
    body: Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{base}/v1/search"))
        .header("x-search-key", secret)
        .json(&body);
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    let res = r.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn keys_are_created_shown_once_listed_and_revoked() {
    let w = World::new().await;
    let tenant = w.as_tenant(&[Permission::ViewClient]);
    let issued: Value = tenant
        .send(
            Method::POST,
            "/v1/search-keys",
            Some(
                &json!({"name": "Shop", "kind": "clients", "ttlSeconds": 3600,
                "filter": {"tags": {"any": ["vip"]}}, "allowedOrigins": [SHOP]}),
            ),
        )
        .await
        .expect(StatusCode::CREATED);
    let secret = issued["secret"].as_str().unwrap();
    let key = &issued["key"];
    assert!(secret.starts_with("csk_search_"), "{secret}");
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(key["status"], "active");
    assert_eq!(key["customerId"], w.tenant.to_string());
    assert_eq!(key["ratePerMinute"], 600);
    assert_eq!(key["filter"], json!({"tags": {"any": ["vip"]}}));
    let id = key["id"].as_str().unwrap();

    let list: Value = tenant
        .send::<()>(Method::GET, "/v1/search-keys", None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("secret").is_none());
    let path = format!("/v1/search-keys/{id}");
    let got: Value = tenant
        .send::<()>(Method::GET, &path, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(got["name"], "Shop");

    // Another tenant neither sees nor revokes it; a token without the kind's permission
    // neither.
    let other = w.ctx.client().as_user(&testkit::token(
        "o",
        Some(w.other),
        &[Permission::ViewClient],
    ));
    let list: Value = other
        .send::<()>(Method::GET, "/v1/search-keys", None)
        .await
        .expect(StatusCode::OK);
    assert!(list["items"].as_array().unwrap().is_empty());
    other
        .send::<()>(Method::DELETE, &path, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    w.as_tenant(&[Permission::SearchTenants])
        .send::<()>(Method::GET, &path, None)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    w.ctx
        .client()
        .send::<()>(Method::GET, "/v1/search-keys", None)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");

    let (s, _, _) = search_with(&w.ctx.app.base, secret, Some(SHOP), json!({"q": "acme"})).await;
    assert_eq!(s, StatusCode::OK);
    tenant
        .send::<()>(Method::DELETE, &path, None)
        .await
        .expect::<()>(StatusCode::NO_CONTENT);
    tenant
        .send::<()>(Method::DELETE, &path, None)
        .await
        .expect::<()>(StatusCode::NO_CONTENT);
    let got: Value = admin(&w)
        .send::<()>(Method::GET, &path, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(got["status"], "revoked");
    let (s, _, body) = search_with(&w.ctx.app.base, secret, Some(SHOP), json!({"q": "acme"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");

    // The key's life in events: created, then revoked once (the second DELETE changed nothing).
    let events = key_events(&w, id).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["search_key.created", "search_key.revoked"]);
    let (_, created) = &events[0];
    assert_eq!(created["data"]["name"], "Shop");
    assert_eq!(created["data"]["kind"], "clients");
    assert_eq!(created["customerid"], w.tenant.to_string());
    assert!(created["data"]["revokedAt"].is_null());
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(secret), "never the secret");
    assert!(!text.contains("hash"), "never its hash");
    assert!(events[1].1["data"]["revokedAt"].is_string());
}

/// The outbox's `search_key.*` events about key `id`, oldest first.
async fn key_events(w: &World, id: &str) -> Vec<(String, Value)> {
    w.ctx
        .outbox()
        .await
        .into_iter()
        .filter(|(k, e)| k.starts_with("search_key.") && e["data"]["id"] == id)
        .collect()
}

#[tokio::test]
async fn a_key_reaches_its_kind_narrowed_by_its_filter_and_no_request_widens_it() {
    let w = World::new().await;
    let base = w.ctx.app.base.clone();
    let (_, shop) = create(
        &w.as_tenant(&[Permission::ViewClient]),
        json!({"name": "vip", "kind": "clients", "ttlSeconds": 600,
            "filter": {"tags": {"any": ["vip"]}}, "allowedOrigins": [SHOP, "http://localhost:3000"]}),
    )
    .await;
    let (s, headers, res) = search_with(&base, &shop, Some(SHOP), json!({"q": "acme"})).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(sorted(names(&res)), ["Acme Bakery", "Acme Plumbing"]);
    assert_eq!(headers["access-control-allow-origin"], SHOP);
    for widen in [
        json!({"q": "acme", "filter": {"or": [{"enabled": true}, {"enabled": false}]}}),
        json!({"q": "acme", "filter": {"not": {"tags": {"any": ["vip"]}}}}),
        json!({"q": "acme", "filter": {"eq": {"field": "customerId", "value": w.other.to_string()}}}),
        json!({"q": "acme", "kinds": ["customer"]}),
    ] {
        let (s, _, res) = search_with(&base, &shop, Some(SHOP), widen.clone()).await;
        assert_eq!(s, StatusCode::OK);
        let got = names(&res);
        assert!(
            got.iter()
                .all(|n| n == "Acme Bakery" || n == "Acme Plumbing"),
            "{widen}: {got:?}"
        );
    }

    // Origins: another one, or none, is refused; the preflight answers any origin.
    let (s, headers, res) =
        search_with(&base, &shop, Some("https://evil.example"), json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(res["code"], "ORIGIN_NOT_ALLOWED");
    assert!(headers.get("access-control-allow-origin").is_none());
    let (s, _, _) = search_with(&base, &shop, None, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let pre = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{base}/v1/search"))
        .header("origin", SHOP)
        .header("access-control-request-headers", "x-search-key")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    assert_eq!(pre.headers()["access-control-allow-origin"], SHOP);
    assert!(
        pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-search-key")
    );

    // The other kinds.
    let mut all = String::new();
    for (maker, kind, expected) in [
        (
            w.as_tenant(&[Permission::SearchTenants]),
            "tenantCustomers",
            vec!["Acme Subsidiary"],
        ),
        (
            admin(&w),
            "businessCustomers",
            vec!["Acme Elsewhere", "Acme Holding"],
        ),
        (admin(&w), "consumerCustomers", vec!["Acme Subsidiary"]),
        (
            admin(&w),
            "allCustomers",
            vec!["Acme Elsewhere", "Acme Holding", "Acme Subsidiary"],
        ),
    ] {
        let (_, secret) = create(
            &maker,
            json!({"name": kind, "kind": kind, "ttlSeconds": 600}),
        )
        .await;
        let (_, _, res) = search_with(&base, &secret, None, json!({"q": "acme"})).await;
        assert_eq!(sorted(names(&res)), expected, "{kind}");
        all = secret;
    }

    // Malformed, unknown, or beside a bearer token.
    let (s, _, res) = search_with(&base, "csk_search_nope", None, json!({})).await;
    assert_eq!(
        (s, res["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("NOT_AUTHORIZED"))
    );
    let (unknown, _) = shared_model::keys::KeyFormat::new("csk_").generate("search");
    let (s, _, _) = search_with(&base, &unknown, None, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/search"))
        .header("x-search-key", &all)
        .bearer_auth(testkit::token(
            "t",
            Some(w.tenant),
            &[Permission::ViewClient],
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn key_creation_refuses_what_it_cannot_honour() {
    let w = World::new().await;
    let tenant = w.as_tenant(&[Permission::ViewClient, Permission::SearchTenants]);
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for (body, field) in [
        (json!({"name": "k", "kind": "clients"}), "expiresAt"),
        (
            json!({"name": "k", "kind": "clients", "ttlSeconds": 600, "expiresAt": soon}),
            "ttlSeconds",
        ),
        (
            json!({"name": "k", "kind": "clients", "expiresAt": soon}),
            "expiresAt",
        ),
        (
            json!({"name": "k", "kind": "clients", "ttlSeconds": 59}),
            "ttlSeconds",
        ),
        (
            json!({"name": " ", "kind": "clients", "ttlSeconds": 600}),
            "name",
        ),
        (
            json!({"name": "k", "kind": "clients", "ttlSeconds": 600, "allowedOrigins": ["https://Shop.example/"]}),
            "allowedOrigins[0]",
        ),
        (
            json!({"name": "k", "kind": "clients", "ttlSeconds": 600, "allowedOrigins": [SHOP, SHOP]}),
            "allowedOrigins[1]",
        ),
        (
            json!({"name": "k", "kind": "clients", "ttlSeconds": 600, "ratePerMinute": 0}),
            "ratePerMinute",
        ),
        (
            json!({"name": "k", "kind": "clients", "ttlSeconds": 600, "filter": {"groups": {"any": ["x"]}}}),
            "filter.groups.any[0]",
        ),
        (
            json!({"name": "k", "kind": "everything", "ttlSeconds": 600}),
            "kind",
        ),
    ] {
        tenant
            .send(Method::POST, "/v1/search-keys", Some(&body))
            .await
            .expect_invalid(field);
    }
    let ok = json!({"name": "k", "kind": "clients", "ttlSeconds": 600});
    let res = w
        .ctx
        .req(
            Method::POST,
            "/v1/search-keys",
            Some(&testkit::token(
                "t",
                Some(w.tenant),
                &[Permission::ViewClient],
            )),
        )
        .header("idempotency-key", "once")
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Permissions: the kind's, never a platform kind for a tenant, never a client-bound token,
    // never another tenant's customer.
    for (token, body, status) in [
        (
            testkit::token("t", Some(w.tenant), &[Permission::ViewClient]),
            json!({"name": "k", "kind": "tenantCustomers", "ttlSeconds": 600}),
            StatusCode::FORBIDDEN,
        ),
        (
            testkit::token(
                "t",
                Some(w.tenant),
                &[Permission::ViewClient, Permission::SearchTenants],
            ),
            json!({"name": "k", "kind": "allCustomers", "ttlSeconds": 600}),
            StatusCode::FORBIDDEN,
        ),
        (
            testkit::client_token("k", w.tenant, w.bakery, &[Permission::ViewClient]),
            ok.clone(),
            StatusCode::FORBIDDEN,
        ),
        (
            testkit::token("t", Some(w.tenant), &[Permission::ViewClient]),
            json!({"name": "k", "kind": "clients", "ttlSeconds": 600, "customerId": w.other.to_string()}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = w
            .ctx
            .client()
            .as_user(&token)
            .send(Method::POST, "/v1/search-keys", Some(&body))
            .await;
        assert_eq!(res.status, status, "{body}: {}", res.body);
    }
    // Platform admins name the customer of a tenant kind, one the index knows.
    admin(&w)
        .send(Method::POST, "/v1/search-keys", Some(&ok))
        .await
        .expect_invalid("customerId");
    admin(&w)
        .send(
            Method::POST,
            "/v1/search-keys",
            Some(&json!({"name": "k", "kind": "allCustomers", "ttlSeconds": 600, "customerId": w.tenant.to_string()})),
        )
        .await
        .expect_invalid("customerId");
    admin(&w)
        .send(
            Method::POST,
            "/v1/search-keys",
            Some(&json!({"name": "k", "kind": "clients", "ttlSeconds": 600,
                "customerId": shared_model::ids::CustomerId::new().to_string()})),
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    create(
        &admin(&w),
        json!({"name": "k", "kind": "clients", "ttlSeconds": 600, "customerId": w.sub.to_string()}),
    )
    .await;
}

#[tokio::test]
async fn a_key_is_rate_limited() {
    let w = World::new().await;
    let (_, secret) = create(
        &w.as_tenant(&[Permission::ViewClient]),
        json!({"name": "slow", "kind": "clients", "ttlSeconds": 600, "ratePerMinute": 2}),
    )
    .await;
    for _ in 0..2 {
        let (s, _, _) = search_with(&w.ctx.app.base, &secret, None, json!({})).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, headers, res) = search_with(&w.ctx.app.base, &secret, None, json!({})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{res}");
    assert_eq!(res["code"], "RATE_LIMITED");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_a_second_replica_within_a_second() {
    let w = World::new().await;
    let second = TestApp::spawn(&search_sync::SERVICE, w.ctx.cfg.clone()).await;
    let tenant = w.as_tenant(&[Permission::ViewClient]);
    let (id, secret) = create(
        &tenant,
        json!({"name": "k", "kind": "clients", "ttlSeconds": 600}),
    )
    .await;
    let (s, _, _) = search_with(&second.base, &secret, None, json!({"q": "acme"})).await;
    assert_eq!(s, StatusCode::OK);
    tenant
        .send::<()>(Method::DELETE, &format!("/v1/search-keys/{id}"), None)
        .await
        .expect::<()>(StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    loop {
        let (s, _, _) = search_with(&second.base, &secret, None, json!({"q": "acme"})).await;
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "the second replica still answers {s}"
        );
    }
}

#[tokio::test]
async fn deleting_a_customer_revokes_its_keys() {
    let w = World::new().await;
    let (id, secret) = create(
        &w.as_tenant(&[Permission::ViewClient]),
        json!({"name": "k", "kind": "clients", "ttlSeconds": 600}),
    )
    .await;
    let deleted = events::event(
        "/customer-api",
        cu::DELETED,
        w.tenant.to_string(),
        w.tenant,
        &events::customer_data(w.tenant, 2),
    );
    testkit::publish(&w.ctx.amqp, std::slice::from_ref(&deleted)).await;
    w.ctx.consumed(&[deleted]).await;
    let (s, _, _) = search_with(&w.ctx.app.base, &secret, None, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let got: Value = admin(&w)
        .send::<()>(Method::GET, &format!("/v1/search-keys/{id}"), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(got["status"], "revoked");
    let events = key_events(&w, &id).await;
    assert_eq!(events.last().unwrap().0, "search_key.revoked", "{events:?}");
}
