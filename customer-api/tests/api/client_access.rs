//! Who may read and change clients: tenant permissions, client-bound tokens, other tenants.

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit;

use crate::fixtures::{CLIENT_PERMS, acme_client, send, tenant_setup};
use crate::{Ctx, ok, problem};

#[tokio::test]
async fn authorization_rules() {
    let ctx = Ctx::new().await;
    let (cid, t, path) = tenant_setup(&ctx, "cl-auth").await;
    let (_, other_t, other_path) = tenant_setup(&ctx, "cl-auth-other").await;
    let c = ok(
        send(&ctx, Method::POST, &path, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let loc = format!("{path}/{id}");

    // No token.
    let res = ctx.req(Method::GET, &loc, None).send().await.unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED").await;
    // Missing permission: a viewer cannot edit, a customer-only token cannot read clients.
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewClient]);
    ok(
        send(&ctx, Method::GET, &loc, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &loc,
            &viewer,
            Some(json!({"assignee": "x"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let no_client = ctx.tenant(&cid);
    problem(
        send(&ctx, Method::GET, &path, &no_client, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    // Another tenant's token: KEY_MISMATCH on this tenant's paths, and its own paths hold nothing.
    problem(
        send(&ctx, Method::GET, &loc, &other_t, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        send(&ctx, Method::GET, &path, &other_t, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let foreign = format!("{other_path}/{id}");
    problem(
        send(&ctx, Method::GET, &foreign, &other_t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &foreign,
            &other_t,
            Some(json!({"assignee": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        send(&ctx, Method::DELETE, &foreign, &other_t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let theirs = ok(
        send(&ctx, Method::GET, &other_path, &other_t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["items"], json!([]));

    // A platform admin reaches every tenant's clients.
    ok(
        send(&ctx, Method::GET, &loc, &ctx.admin(), None).await,
        StatusCode::OK,
    )
    .await;

    // A client-bound token reaches only its own client.
    let second = ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"type": "business", "name": "Initech"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let bound = testkit::client_token(
        "portal-user",
        cid.parse::<CustomerId>().unwrap(),
        id.parse::<ClientId>().unwrap(),
        CLIENT_PERMS,
    );
    ok(
        send(&ctx, Method::GET, &loc, &bound, None).await,
        StatusCode::OK,
    )
    .await;
    let second_loc = format!("{path}/{}", second["id"].as_str().unwrap());
    problem(
        send(&ctx, Method::GET, &second_loc, &bound, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let listed = ok(
        send(&ctx, Method::GET, &path, &bound, None).await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    problem(
        send(&ctx, Method::POST, &path, &bound, Some(acme_client())).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        send(&ctx, Method::GET, &format!("{path}/stats"), &bound, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    // It edits contact details, not the relationship.
    ok(
        send(
            &ctx,
            Method::PATCH,
            &loc,
            &bound,
            Some(json!({"phone": "+4930123456"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    for body in [
        json!({"status": "churned"}),
        json!({"assignee": "me"}),
        json!({"tags": []}),
    ] {
        problem(
            send(&ctx, Method::PATCH, &loc, &bound, Some(body)).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/purchases"),
            &bound,
            Some(json!({"amountMinor": 5, "currency": "EUR"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        send(&ctx, Method::POST, &format!("{loc}/disable"), &bound, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
}
