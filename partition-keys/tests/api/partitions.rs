use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::{Ctx, invalid, ok, problem};

/// A customer with two partitions, "Production" (prod, returned) and "EU" (euwest2), created
/// in that order.
struct TwoPartitions {
    ctx: Ctx,
    t: String,
    path: String,
    /// The "Production" partition as created, and its address.
    p: serde_json::Value,
    loc: String,
}

async fn two_partitions() -> TwoPartitions {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let path = format!("/v1/customers/{cid}/partitions");
    let res = ctx
        .send(
            Method::POST,
            &path,
            &t,
            Some(json!({"name": "Production", "environment": "prod", "description": "live"})),
        )
        .await;
    assert_eq!(res.headers()["etag"], "\"1\"");
    let p = ok(res, StatusCode::CREATED).await;
    let loc = format!("{path}/{}", p["id"].as_str().unwrap());
    assert_eq!(p["status"], "active");
    ok(
        ctx.send(
            Method::POST,
            &path,
            &t,
            Some(json!({"name": "EU", "environment": "euwest2"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    TwoPartitions {
        ctx,
        t,
        path,
        p,
        loc,
    }
}

#[tokio::test]
async fn partitions_are_created_with_unique_names_and_valid_fields() {
    let TwoPartitions { ctx, t, path, .. } = two_partitions().await;
    problem(
        ctx.send(
            Method::POST,
            &path,
            &t,
            Some(json!({"name": "production", "environment": "dev"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    for (body, field) in [
        (json!({"name": "", "environment": "dev"}), "name"),
        (json!({"name": "x", "environment": "Prod!"}), "environment"),
        (
            json!({"name": "x", "environment": "averyveryverylonglabel"}),
            "environment",
        ),
        (json!({"name": "x"}), "environment"),
        (
            json!({"name": "x", "environment": "dev", "colour": 1}),
            "colour",
        ),
    ] {
        invalid(ctx.send(Method::POST, &path, &t, Some(body)).await, field).await;
    }
}

#[tokio::test]
async fn partitions_are_read_and_listed_by_page_and_environment() {
    let TwoPartitions {
        ctx,
        t,
        path,
        p,
        loc,
    } = two_partitions().await;
    let got = ok(ctx.send(Method::GET, &loc, &t, None).await, StatusCode::OK).await;
    assert_eq!(got, p);
    let listed = ok(
        ctx.send(Method::GET, &format!("{path}?limit=1"), &t, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"][0]["name"], "EU");
    let cursor = listed["nextCursor"].as_str().unwrap();
    let next = ok(
        ctx.send(
            Method::GET,
            &format!("{path}?limit=1&cursor={cursor}"),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(next["items"][0]["name"], "Production");
    let prod = ok(
        ctx.send(Method::GET, &format!("{path}?environment=prod"), &t, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(prod["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn partition_updates_honour_if_match_and_validate() {
    let TwoPartitions { ctx, t, loc, .. } = two_partitions().await;
    let stale = ctx
        .req(Method::PATCH, &loc, Some(&t))
        .header("if-match", "\"9\"")
        .json(&json!({"description": null}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    let u = ok(
        ctx.send(
            Method::PATCH,
            &loc,
            &t,
            Some(json!({"description": null, "status": "disabled"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(u["version"], 2);
    assert_eq!(u["status"], "disabled");
    invalid(
        ctx.send(Method::PATCH, &loc, &t, Some(json!({"status": "gone"})))
            .await,
        "status",
    )
    .await;
    invalid(
        ctx.send(Method::PATCH, &loc, &t, Some(json!({"environment": "dev"})))
            .await,
        "environment",
    )
    .await;
}

#[tokio::test]
async fn partitions_are_deleted_and_every_change_has_its_event() {
    let TwoPartitions { ctx, t, loc, .. } = two_partitions().await;
    ok(
        ctx.send(Method::PATCH, &loc, &t, Some(json!({"description": null})))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        ctx.send(Method::DELETE, &loc, &t, None).await.status(),
        StatusCode::NO_CONTENT
    );
    problem(
        ctx.send(Method::GET, &loc, &t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let kinds: Vec<String> = ctx.outbox().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        [
            "partition.created",
            "partition.created",
            "partition.updated",
            "partition.deleted"
        ]
    );
    ctx.assert_updates_name_their_changes().await;
}

#[tokio::test]
async fn partitions_need_a_known_active_customer() {
    let ctx = Ctx::new().await;
    let (gone, gone_t) = ctx.customer("deactivated").await;
    problem(
        ctx.send(
            Method::POST,
            &format!("/v1/customers/{gone}/partitions"),
            &gone_t,
            Some(json!({"name": "x", "environment": "dev"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;
    let admin = testkit::token("admin", None, &[Permission::PlatformAdminEditAllCustomers]);
    problem(
        ctx.send(
            Method::POST,
            &format!(
                "/v1/customers/{}/partitions",
                shared_model::ids::CustomerId::new()
            ),
            &admin,
            Some(json!({"name": "x", "environment": "dev"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn partitions_authorization() {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let (other, other_t) = ctx.customer("active").await;
    let path = format!("/v1/customers/{cid}/partitions");
    let p = ok(
        ctx.send(
            Method::POST,
            &path,
            &t,
            Some(json!({"name": "Main", "environment": "prod"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{path}/{}", p["id"].as_str().unwrap());
    problem(
        ctx.req(Method::GET, &loc, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewCustomer]);
    problem(
        ctx.send(Method::GET, &loc, &viewer, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        ctx.send(Method::GET, &loc, &other_t, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    // The other tenant's own paths show nothing of this one.
    let foreign = format!(
        "/v1/customers/{other}/partitions/{}",
        p["id"].as_str().unwrap()
    );
    problem(
        ctx.send(Method::GET, &foreign, &other_t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let theirs = ok(
        ctx.send(
            Method::GET,
            &format!("/v1/customers/{other}/partitions"),
            &other_t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["items"], json!([]));
    let reader = testkit::token("r", None, &[Permission::PlatformAdminViewAllCustomers]);
    ok(
        ctx.send(Method::GET, &loc, &reader, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        ctx.send(Method::DELETE, &loc, &reader, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_is_applied_once() {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let path = format!("/v1/customers/{cid}/partitions");
    let send = |body: serde_json::Value| {
        ctx.req(Method::POST, &path, Some(&t))
            .header("idempotency-key", "create-live")
            .json(&body)
            .send()
    };
    let first = ok(
        send(json!({"name": "Live", "environment": "prod"}))
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let again = ok(
        send(json!({"name": "Live", "environment": "prod"}))
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(first, again);
    problem(
        send(json!({"name": "Other", "environment": "prod"}))
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    let listed = ok(ctx.send(Method::GET, &path, &t, None).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let created = ctx
        .outbox()
        .await
        .into_iter()
        .filter(|(k, _)| k == "partition.created")
        .count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn collections_of_an_unknown_customer_are_404_not_empty() {
    let ctx = Ctx::new().await;
    let unknown = shared_model::ids::CustomerId::new();
    let t = testkit::token("owner", Some(unknown), &[Permission::ManagePartitions]);
    for path in [
        format!("/v1/customers/{unknown}/partitions"),
        format!("/v1/customers/{unknown}/partition-groups"),
    ] {
        problem(
            ctx.send(Method::GET, &path, &t, None).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        )
        .await;
    }
    // A known customer without partitions has an empty page.
    let (cid, t) = ctx.customer("active").await;
    let page = ok(
        ctx.send(
            Method::GET,
            &format!("/v1/customers/{cid}/partitions"),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["items"], json!([]));
}
