use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

#[tokio::test]
async fn tags_crud_apply_rename_and_delete_everywhere() {
    let ctx = Ctx::new().await;
    let (cid, t, clients) = tenant_setup(&ctx, "tags-crud").await;
    let tags = format!("/v1/customers/{cid}/tags");

    let vip = ok(
        send(&ctx, Method::POST, &tags, &t, Some(json!({"name": "VIP"}))).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(vip["color"].as_str().unwrap().starts_with('#'));
    // The derived colour depends only on the (case-folded) name.
    let again = ok(
        send(
            &ctx,
            Method::POST,
            &format!("/v1/customers/{cid}/tags"),
            &t,
            Some(json!({"name": "wholesale", "color": "#00AA11"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(again["color"], "#00aa11");
    problem(
        send(&ctx, Method::POST, &tags, &t, Some(json!({"name": "vip"}))).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &tags,
            &t,
            Some(json!({"name": "x", "color": "red"})),
        )
        .await,
        "color",
    )
    .await;
    invalid(
        send(&ctx, Method::POST, &tags, &t, Some(json!({"name": ""}))).await,
        "name",
    )
    .await;

    let listed = ok(
        send(&ctx, Method::GET, &tags, &t, None).await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["VIP", "wholesale"]);

    let c = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{clients}/{}", c["id"].as_str().unwrap());
    let vip_id = vip["id"].as_str().unwrap();
    let tagged = ok(
        send(&ctx, Method::PUT, &format!("{loc}/tags/{vip_id}"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(tagged["tags"], json!(["VIP"]));
    assert_eq!(tagged["version"], 2);
    // Applying twice changes nothing.
    let same = ok(
        send(&ctx, Method::PUT, &format!("{loc}/tags/{vip_id}"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(same["version"], 2);

    // Renaming the tag renames it on the client, with a new client version.
    let renamed = ok(
        send(
            &ctx,
            Method::PATCH,
            &format!("{tags}/{vip_id}"),
            &t,
            Some(json!({"name": "Gold"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["version"], 2);
    let got = ok(
        send(&ctx, Method::GET, &loc, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["tags"], json!(["Gold"]));
    assert_eq!(got["version"], 3);

    // Deleting it removes it from every client.
    let res = send(&ctx, Method::DELETE, &format!("{tags}/{vip_id}"), &t, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let got = ok(
        send(&ctx, Method::GET, &loc, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["tags"], json!([]));
    assert_eq!(got["version"], 4);
    problem(
        send(&ctx, Method::GET, &format!("{tags}/{vip_id}"), &t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;

    let kinds: Vec<String> = ctx.events().await.into_iter().map(|(k, _)| k).collect();
    let tag_kinds: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| k.starts_with("tag."))
        .collect();
    assert_eq!(
        tag_kinds,
        ["tag.created", "tag.created", "tag.updated", "tag.deleted"]
    );
    assert_eq!(kinds.iter().filter(|k| *k == "client.updated").count(), 3);
    ctx.assert_updates_name_their_changes().await;
}

#[tokio::test]
async fn tags_authorization() {
    let ctx = Ctx::new().await;
    let (cid, t, _) = tenant_setup(&ctx, "tags-auth").await;
    let (_, other, _) = tenant_setup(&ctx, "tags-auth-2").await;
    let tags = format!("/v1/customers/{cid}/tags");
    let tag = ok(
        send(&ctx, Method::POST, &tags, &t, Some(json!({"name": "VIP"}))).await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{tags}/{}", tag["id"].as_str().unwrap());
    problem(
        ctx.req(Method::GET, &tags, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewClient]);
    ok(
        send(&ctx, Method::GET, &loc, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(&ctx, Method::DELETE, &loc, &viewer, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        send(&ctx, Method::GET, &loc, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let stale = ctx
        .req(Method::PATCH, &loc, Some(&t))
        .header("if-match", "\"9\"")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    // Applying a tag: another tenant's token, and a tenant's token on a foreign client.
    let clients = format!("/v1/customers/{cid}/clients");
    let c = ok(
        send(
            &ctx,
            Method::POST,
            &clients,
            &t,
            Some(crate::fixtures::acme_client()),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let apply = format!(
        "{clients}/{}/tags/{}",
        c["id"].as_str().unwrap(),
        tag["id"].as_str().unwrap()
    );
    problem(
        send(&ctx, Method::PUT, &apply, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        send(&ctx, Method::PUT, &apply, &viewer, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        ctx.req(Method::DELETE, &apply, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
}
