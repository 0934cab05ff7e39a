//! Who reaches a client group (token, permission, tenant), what may join it, and the client
//! snapshot platform services read.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::groups::service_token;
use crate::{Ctx, ok, problem};

/// Two tenants, the first with a group "Gold".
struct GoldGroup {
    ctx: Ctx,
    cid: String,
    /// The second tenant's token and its clients' collection.
    other: String,
    other_clients: String,
    /// The group's address.
    gloc: String,
}

async fn gold_group() -> GoldGroup {
    let ctx = Ctx::new().await;
    let (cid, t, _) = tenant_setup(&ctx, "groups-auth").await;
    let (_, other, other_clients) = tenant_setup(&ctx, "groups-auth-2").await;
    let groups = format!("/v1/customers/{cid}/groups");
    let g = ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(json!({"name": "Gold"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let gloc = format!("{groups}/{}", g["id"].as_str().unwrap());
    GoldGroup {
        ctx,
        cid,
        other,
        other_clients,
        gloc,
    }
}

#[tokio::test]
async fn groups_need_a_token_the_permission_and_the_tenant() {
    let GoldGroup {
        ctx,
        cid,
        other,
        gloc,
        ..
    } = gold_group().await;
    problem(
        ctx.req(Method::GET, &gloc, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewClient]);
    ok(
        send(&ctx, Method::GET, &gloc, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &gloc,
            &viewer,
            Some(json!({"priority": 1})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        send(&ctx, Method::GET, &gloc, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let members = format!("{gloc}/members");
    ok(
        send(&ctx, Method::GET, &members, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(&ctx, Method::GET, &members, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        ctx.req(Method::GET, &members, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn another_tenants_client_cannot_join_a_group() {
    let GoldGroup {
        ctx,
        other,
        other_clients,
        gloc,
        ..
    } = gold_group().await;
    let foreign = ok(
        send(
            &ctx,
            Method::POST,
            &other_clients,
            &other,
            Some(acme_client()),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let admin = ctx.admin();
    problem(
        send(
            &ctx,
            Method::PUT,
            &format!("{gloc}/members/{}", foreign["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn client_snapshots_carry_default_addresses_for_platform_services_only() {
    let ctx = Ctx::new().await;
    let (cid, t, clients) = tenant_setup(&ctx, "groups-auth").await;
    let (_, other, _) = tenant_setup(&ctx, "groups-auth-2").await;
    let c = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let cloc = format!("{clients}/{}", c["id"].as_str().unwrap());
    let ship = ok(
        send(
            &ctx,
            Method::POST,
            &format!("{cloc}/addresses"),
            &t,
            Some(json!({"lines": ["1 Dock Rd"], "country": "gb", "defaultShipping": true})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let snap_path = format!(
        "/internal/v1/customers/{cid}/clients/{}/snapshot",
        c["id"].as_str().unwrap()
    );
    let snap = ok(
        send(&ctx, Method::GET, &snap_path, &service_token(), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(snap["name"], "Globex");
    assert_eq!(snap["email"], "buyer@globex.example");
    assert_eq!(snap["defaultShippingAddress"]["id"], ship["id"]);
    assert_eq!(snap["defaultBillingAddress"], Value::Null);
    for tenant in [&t, &other] {
        problem(
            send(&ctx, Method::GET, &snap_path, tenant, None).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
}
