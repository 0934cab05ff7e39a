use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_model::auth::{Claims, Permission, sign_hs256};
use shared_model::config::Secret;
use shared_model::testkit;

use crate::{Ctx, business, consumer, invalid, problem};

#[tokio::test]
async fn create_returns_the_customer_with_etag_location_and_writes_customer_created() {
    let ctx = Ctx::new().await;
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&ctx.admin()))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&business("acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let c: Value = res.json().await.unwrap();
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["status"], "active");
    assert_eq!(c["version"], 1);
    assert_eq!(c["phone"], "+14155550100");
    assert_eq!(c["address"]["country"], "US");
    // The sector is derived from the industry group.
    assert_eq!(
        c["businessProfile"]["industrySector"],
        "information_technology"
    );
    assert_eq!(c["createdBy"], "platform-admin");

    let got: Value = ctx
        .req(
            Method::GET,
            &format!("/v1/customers/{id}"),
            Some(&ctx.admin()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, c);

    let events = ctx.events().await;
    assert_eq!(events.len(), 1);
    let (key, e) = &events[0];
    assert_eq!(key, "customer.created");
    assert_eq!(e["type"], "customer.created");
    assert_eq!(e["source"], "/customer-api");
    assert_eq!(e["subject"], id);
    assert_eq!(e["customerid"], id);
    assert_eq!(e["actor"], "platform-admin");
    assert_eq!(e["data"]["name"], "Acme Industries");
    assert_eq!(e["data"]["version"], 1);
    assert!(
        e["traceparent"]
            .as_str()
            .unwrap()
            .contains("4bf92f3577b34da6a3ce929d0e0e4736")
    );
}

#[tokio::test]
async fn create_rejects_invalid_fields_with_422_naming_the_field_and_writes_nothing() {
    let ctx = Ctx::new().await;
    let admin = ctx.admin();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": " ", "type": "consumer", "bootstrapTenantKey": "k1"}),
            "name",
        ),
        (
            json!({"name": "x", "type": "robot", "bootstrapTenantKey": "k1x"}),
            "type",
        ),
        (
            json!({"name": "x", "type": "consumer"}),
            "bootstrapTenantKey",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k 1"}),
            "bootstrapTenantKey",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "email": "nope"}),
            "email",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "phone": "12"}),
            "phone",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "website": "ftp://x.io"}),
            "website",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "locale": "english"}),
            "locale",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "colour": "red"}),
            "colour",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "address": {"lines": ["a"], "country": "XX"}}),
            "address.country",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "address": {"lines": []}}),
            "address.lines",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "sessionExpirationSeconds": 10}),
            "sessionExpirationSeconds",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "products": ["Bad Code"]}),
            "products[0]",
        ),
        (
            json!({"name": "x", "type": "consumer", "bootstrapTenantKey": "k1x", "businessProfile": {}}),
            "businessProfile",
        ),
        (
            json!({"name": "x", "type": "business", "bootstrapTenantKey": "k1x", "businessProfile": {"industrySector": "energy", "industryGroup": "banks"}}),
            "businessProfile.industryGroup",
        ),
        (
            json!({"name": "x", "type": "business", "bootstrapTenantKey": "k1x", "businessProfile": {"sizeRange": "2-3"}}),
            "businessProfile.sizeRange",
        ),
        (
            json!({"name": "x", "type": "business", "bootstrapTenantKey": "k1x", "businessProfile": {"socialProfiles": [{"platform": "x", "url": "https://x.com/a"}, {"platform": "x", "url": "https://x.com/b"}]}}),
            "businessProfile.socialProfiles[1].platform",
        ),
    ];
    for (body, field) in cases {
        let res = ctx
            .req(Method::POST, "/v1/customers", Some(&admin))
            .json(&body)
            .send()
            .await
            .unwrap();
        invalid(res, field).await;
    }
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&admin))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    assert!(ctx.events().await.is_empty());
}

#[tokio::test]
async fn duplicate_bootstrap_key_or_external_id_is_409() {
    let ctx = Ctx::new().await;
    ctx.create(business("dup")).await;
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&ctx.admin()))
        .json(&consumer("dup", "Other"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::CONFLICT, "CONFLICT").await;
    let mut again = business("dup2");
    again["businessProfile"]["externalId"] = json!("crm-dup");
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&ctx.admin()))
        .json(&again)
        .send()
        .await
        .unwrap();
    let body = problem(res, StatusCode::CONFLICT, "CONFLICT").await;
    assert!(body["detail"].as_str().unwrap().contains("externalId"));
    assert_eq!(ctx.events().await.len(), 1);
}

#[tokio::test]
async fn authentication_failures_are_401_and_missing_permission_403() {
    let ctx = Ctx::new().await;
    let c = ctx.create(consumer("auth", "Ada")).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");

    let res = ctx.req(Method::GET, &path, None).send().await.unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED").await;

    let base = shared_model::auth::claims_for(
        &testkit::auth_config(),
        "u",
        Some(id.parse().unwrap()),
        &[Permission::ViewCustomer],
        std::time::Duration::from_secs(60),
    );
    let secret = Secret::new(testkit::TEST_SECRET.to_string());
    let sign = |c: &Claims| sign_hs256(c, &secret).unwrap();
    let mut expired = base.clone();
    expired.exp -= 3600;
    let mut wrong_aud = base.clone();
    wrong_aud.aud = "another-api".into();
    let mut wrong_iss = base.clone();
    wrong_iss.iss = "https://evil".into();
    let forged = sign_hs256(&base, &Secret::new("x".repeat(40))).unwrap();
    for token in [
        sign(&expired),
        sign(&wrong_aud),
        sign(&wrong_iss),
        forged,
        "garbage".into(),
    ] {
        let res = ctx
            .req(Method::GET, &path, Some(&token))
            .send()
            .await
            .unwrap();
        problem(res, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED").await;
    }
    // Right tenant, wrong permission.
    let viewer_only = sign(&base);
    let res = ctx
        .req(Method::PATCH, &path, Some(&viewer_only))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    // Tenants cannot create or delete customers.
    let tenant = ctx.tenant(id);
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&tenant))
        .json(&consumer("t2", "B"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let res = ctx
        .req(Method::DELETE, &path, Some(&tenant))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let ok = ctx
        .req(Method::GET, &path, Some(&viewer_only))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn get_unknown_or_malformed_id() {
    let ctx = Ctx::new().await;
    let api = ctx.app.client().as_user(&ctx.admin());
    let unknown = format!("/v1/customers/{}", uuid::Uuid::now_v7());
    api.send(Method::GET, &unknown, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    api.send(Method::GET, "/v1/customers/not-a-uuid", None::<&()>)
        .await
        .expect_invalid("customerId");
}

#[tokio::test]
async fn patch_changes_fields_bumps_version_and_writes_changed_fields() {
    let ctx = Ctx::new().await;
    let c = ctx.create(business("patch")).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");
    let tenant = ctx.tenant(id);

    let res = ctx
        .req(Method::PATCH, &path, Some(&tenant))
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Acme Corp", "phone": null, "products": ["crm"], "sessionExpirationSeconds": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["name"], "Acme Corp");
    assert_eq!(u["phone"], Value::Null);
    assert_eq!(u["email"], c["email"]);
    assert_eq!(u["version"], 2);
    assert_eq!(u["updatedBy"], "tenant-admin");

    let events = ctx.events().await;
    assert_eq!(events.len(), 2);
    let (key, e) = &events[1];
    assert_eq!(key, "customer.updated");
    let mut changed: Vec<&str> = e["data"]["changedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        ["name", "phone", "products", "sessionExpirationSeconds"]
    );
    assert_eq!(e["data"]["version"], 2);
    assert_eq!(e["actor"], "tenant-admin");

    // A stale If-Match is 412 and changes nothing.
    let res = ctx
        .req(Method::PATCH, &path, Some(&tenant))
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED").await;

    // Immutable fields and invalid values are 422.
    let res = ctx
        .req(Method::PATCH, &path, Some(&tenant))
        .json(&json!({"bootstrapTenantKey": "other"}))
        .send()
        .await
        .unwrap();
    invalid(res, "bootstrapTenantKey").await;
    let res = ctx
        .req(Method::PATCH, &path, Some(&tenant))
        .json(&json!({"type": "consumer"}))
        .send()
        .await
        .unwrap();
    invalid(res, "type").await;
    let res = ctx
        .req(Method::PATCH, &path, Some(&tenant))
        .json(&json!({"email": "bad"}))
        .send()
        .await
        .unwrap();
    invalid(res, "email").await;
    let res = ctx
        .req(Method::PATCH, &path, Some(&tenant))
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    invalid(res, "name").await;

    // A patch that changes nothing writes no event and keeps the version.
    let res = ctx
        .req(Method::PATCH, &path, Some(&tenant))
        .json(&json!({"name": "Acme Corp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    assert_eq!(ctx.events().await.len(), 2);
}

#[tokio::test]
async fn delete_removes_the_customer_and_writes_customer_deleted() {
    let ctx = Ctx::new().await;
    let c = ctx.create(consumer("del", "Bo")).await;
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());
    let admin = ctx.admin();
    let res = ctx
        .req(Method::DELETE, &path, Some(&admin))
        .header("if-match", "\"7\"")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED").await;
    let res = ctx
        .req(Method::DELETE, &path, Some(&admin))
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = ctx
        .req(Method::GET, &path, Some(&admin))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let res = ctx
        .req(Method::DELETE, &path, Some(&admin))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let events = ctx.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].0, "customer.deleted");
    assert_eq!(events[1].1["data"]["id"], c["id"]);
    assert_eq!(events[1].1["data"]["version"], 2);
}
