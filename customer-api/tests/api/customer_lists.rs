use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::{Ctx, business, consumer, invalid, problem};

#[tokio::test]
async fn list_pages_filters_and_orders_by_most_recently_updated() {
    let ctx = Ctx::new().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            ctx.create(consumer(&format!("cust-{i}"), &format!("Person {i}")))
                .await["id"]
                .clone(),
        );
    }
    let b = ctx.create(business("biz")).await;
    let admin = ctx.admin();

    // Pages of 2 over the 5 consumers, newest first, no overlap.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/customers?type=consumer&limit=2".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = ctx
            .req(Method::GET, &path, Some(&admin))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["type"], "consumer");
            seen.push(item["id"].clone());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    let page: Value = ctx
        .req(Method::GET, "/v1/customers?q=ACME", Some(&admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], b["id"]);

    let future = "2999-01-01T00:00:00Z";
    let page: Value = ctx
        .req(
            Method::GET,
            &format!("/v1/customers?updatedSince={future}"),
            Some(&admin),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["items"].as_array().unwrap().is_empty());
    let page: Value = ctx
        .req(Method::GET, "/v1/customers?status=active", Some(&admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 6);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("type=robot", "type"),
        ("updatedSince=yesterday", "updatedSince"),
        ("cursor=zzz", "cursor"),
        ("bogus=1", "bogus"),
    ] {
        let res = ctx
            .req(Method::GET, &format!("/v1/customers?{query}"), Some(&admin))
            .send()
            .await
            .unwrap();
        invalid(res, field).await;
    }
    let res = ctx
        .req(Method::GET, "/v1/customers", None)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED").await;
    let no_perm = testkit::token(
        "u",
        Some(ids[0].as_str().unwrap().parse().unwrap()),
        &[Permission::EditClient],
    );
    let res = ctx
        .req(Method::GET, "/v1/customers", Some(&no_perm))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
}
