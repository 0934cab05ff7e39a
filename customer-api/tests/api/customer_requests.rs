//! How a customer write treats the request around its fields: an Idempotency-Key's replay,
//! a change that changes nothing, a body of the wrong shape.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_model::testkit;

use crate::{Ctx, business, consumer, invalid, problem};

#[tokio::test]
async fn idempotency_key_replays_the_first_response_and_rejects_another_body() {
    let ctx = Ctx::new().await;
    let admin = ctx.admin();
    let send = |body: Value| {
        ctx.req(Method::POST, "/v1/customers", Some(&admin))
            .header("idempotency-key", "create-ada-1")
            .json(&body)
            .send()
    };
    let first = send(consumer("idem", "Ada")).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(consumer("idem", "Ada")).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["etag"], "\"1\"");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = send(consumer("idem-other", "Bob")).await.unwrap();
    problem(other, StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED").await;
    assert_eq!(ctx.events().await.len(), 1, "the retry created nothing");

    // The same key from another caller is a different request.
    let other_admin = testkit::token("another-admin", None, crate::ADMIN_PERMS);
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&other_admin))
        .header("idempotency-key", "create-ada-1")
        .json(&consumer("idem-2", "Cy"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    // A failed validation is stored too: the same retry gets the same 422.
    let bad = json!({"name": "", "type": "consumer", "bootstrapTenantKey": "zz1"});
    for _ in 0..2 {
        let res = ctx
            .req(Method::POST, "/v1/customers", Some(&admin))
            .header("idempotency-key", "bad-1")
            .json(&bad)
            .send()
            .await
            .unwrap();
        invalid(res, "name").await;
    }
}

#[tokio::test]
async fn the_same_products_in_another_order_are_no_change() {
    let ctx = Ctx::new().await;
    let mut body = business("products-order");
    body["products"] = json!(["crm", "erp"]);
    let c = ctx.create(body).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");
    let tenant = ctx.tenant(id);
    let patch = |products: Value| {
        ctx.req(Method::PATCH, &path, Some(&tenant))
            .json(&json!({ "products": products }))
            .send()
    };
    let same = crate::ok(patch(json!(["erp", "crm"])).await.unwrap(), StatusCode::OK).await;
    assert_eq!(same["version"], 1);
    assert_eq!(same["products"], json!(["crm", "erp"]));
    let fewer = crate::ok(patch(json!(["erp"])).await.unwrap(), StatusCode::OK).await;
    assert_eq!(fewer["version"], 2);
    let updates: Vec<_> = ctx
        .events()
        .await
        .into_iter()
        .filter(|(key, _)| key == "customer.updated")
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].1["data"]["changedFields"], json!(["products"]));
}

#[tokio::test]
async fn an_object_given_as_an_array_is_422_before_if_match_is_looked_at() {
    let ctx = Ctx::new().await;
    let c = ctx.create(business("array-profile")).await;
    let id = c["id"].as_str().unwrap();
    let res = ctx
        .req(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            Some(&ctx.admin()),
        )
        .header("if-match", "\"99\"")
        .json(&json!({"businessProfile": [null, null]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "businessProfile", "{body}");
    let res = ctx
        .req(Method::POST, "/v1/customers", Some(&ctx.admin()))
        .json(
            &json!({"name": "A", "type": "business", "bootstrapTenantKey": "array-address",
            "address": [["1 Main St"], "Springfield"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "address", "{body}");
}
