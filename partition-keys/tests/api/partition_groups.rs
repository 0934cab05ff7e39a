use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::{Ctx, invalid, ok, problem};

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
        .outbox()
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
