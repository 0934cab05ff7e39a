use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::{Ctx, invalid, ok, problem};

#[tokio::test]
async fn partitions_crud_with_events_and_rules() {
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
    let kinds: Vec<String> = ctx.events().await.into_iter().map(|(k, _)| k).collect();
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

    // Unknown and deactivated customers.
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
async fn partition_groups_form_a_tree_and_hold_partitions() {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let groups = format!("/v1/customers/{cid}/partition-groups");
    let partitions = format!("/v1/customers/{cid}/partitions");
    let region = ok(
        ctx.send(Method::POST, &groups, &t, Some(json!({"name": "EMEA"})))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let rid = region["id"].as_str().unwrap();
    let country = ok(
        ctx.send(
            Method::POST,
            &groups,
            &t,
            Some(json!({"name": "Germany", "parentGroupId": rid})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let cid_ = country["id"].as_str().unwrap();
    problem(
        ctx.send(Method::POST, &groups, &t, Some(json!({"name": "emea"})))
            .await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    invalid(
        ctx.send(
            Method::POST,
            &groups,
            &t,
            Some(json!({"name": "X", "parentGroupId": shared_model::ids::PartitionGroupId::new()})),
        )
        .await,
        "parentGroupId",
    )
    .await;
    // A cycle is refused: EMEA cannot move under its own child.
    invalid(
        ctx.send(
            Method::PATCH,
            &format!("{groups}/{rid}"),
            &t,
            Some(json!({"parentGroupId": cid_})),
        )
        .await,
        "parentGroupId",
    )
    .await;
    invalid(
        ctx.send(
            Method::PATCH,
            &format!("{groups}/{rid}"),
            &t,
            Some(json!({"parentGroupId": rid})),
        )
        .await,
        "parentGroupId",
    )
    .await;

    // Partitions join a group and are listed by it.
    let p = ok(
        ctx.send(
            Method::POST,
            &partitions,
            &t,
            Some(json!({"name": "Berlin", "environment": "prod", "groupId": cid_})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(p["groupId"], cid_);
    ok(
        ctx.send(
            Method::POST,
            &partitions,
            &t,
            Some(json!({"name": "Lab", "environment": "dev"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    invalid(ctx.send(Method::POST, &partitions, &t, Some(json!({"name": "Y", "environment": "dev", "groupId": shared_model::ids::PartitionGroupId::new()}))).await, "groupId").await;
    let members = ok(
        ctx.send(Method::GET, &format!("{partitions}?group={cid_}"), &t, None)
            .await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Berlin"]);
    let g = ok(
        ctx.send(Method::GET, &format!("{groups}/{cid_}"), &t, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(g["partitionCount"], 1);
    assert_eq!(g["parentGroupId"], rid);

    // Deleting the parent makes the child top-level; deleting the child frees its partition.
    assert_eq!(
        ctx.send(Method::DELETE, &format!("{groups}/{rid}"), &t, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let g = ok(
        ctx.send(Method::GET, &format!("{groups}/{cid_}"), &t, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(g["parentGroupId"], serde_json::Value::Null);
    assert_eq!(
        ctx.send(Method::DELETE, &format!("{groups}/{cid_}"), &t, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let p = ok(
        ctx.send(
            Method::GET,
            &format!("{partitions}/{}", p["id"].as_str().unwrap()),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(p["groupId"], serde_json::Value::Null);
    assert_eq!(p["version"], 2);

    let kinds: Vec<String> = ctx
        .events()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("partition_group."))
        .collect();
    assert_eq!(
        kinds,
        [
            "partition_group.created",
            "partition_group.created",
            "partition_group.updated",
            "partition_group.deleted",
            "partition_group.deleted"
        ]
    );
    ctx.assert_updates_name_their_changes().await;
    assert_eq!(g["version"], 2);

    // Authorization.
    let (_, other) = ctx.customer("active").await;
    problem(
        ctx.send(Method::GET, &groups, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        ctx.req(Method::GET, &groups, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewCustomer]);
    problem(
        ctx.send(Method::POST, &groups, &viewer, Some(json!({"name": "Z"})))
            .await,
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
        .events()
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
